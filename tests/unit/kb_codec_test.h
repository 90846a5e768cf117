/*
 * kb_codec_test.h - what the request-parser tests share (test_codec.c, test_codec_format.c): one
 * request and error parsed into file statics, and REFUSED(), which checks that a line is refused
 * with its stable code, a message, and nothing left to release.
 */
#ifndef KB_CODEC_TEST_H
#define KB_CODEC_TEST_H

#include "proto/codec.h"
#include "common/err.h"

static struct kb_proto_request s_req;
static struct kb_proto_error s_err;

static inline int s_parse_len(const char *line, size_t len)
{
    kb_proto_request_cleanup(&s_req);
    return kb_proto_parse_request(line, len, &s_req, &s_err);
}

static inline void s_refused_len(const char *line, size_t len, enum kb_proto_err code, int lineno)
{
    int rc = s_parse_len(line, len);

    if (rc != KB_EPARSE || s_err.code != code)
        print_message("line %d: expected %s, got rc %d %s (%s)\n", lineno, kb_proto_err_name(code),
                      rc, kb_proto_err_name(s_err.code), s_err.message);
    assert_int_equal(rc, KB_EPARSE);
    assert_int_equal(s_err.code, code);
    assert_true(s_err.message[0] != '\0');
    /* nothing to release after a refusal */
    assert_null(s_req.owned_);
    assert_int_equal(s_req.op, KB_PROTO_OP_NONE);
}

#define REFUSED(lit, code) s_refused_len(lit, sizeof(lit) - 1, code, __LINE__)

/* Group teardown: releases the last parsed request. */
static inline int s_teardown(void **state)
{
    (void)state;
    kb_proto_request_cleanup(&s_req);
    return 0;
}

#endif
