/*
 * fuzz_codec.c - libFuzzer target for the wire protocol codec: every input is one line as a
 * client (kb_proto_parse_request) and as a broker (kb_proto_parse_reply) could send it.
 *
 * Beyond "no crash, no leak, no undefined behaviour" it checks the codec's promises: a refused
 * request has a known error code, a message and an id that is JSON; an accepted request formats
 * back into a line that parses to the same request; an error reply for any refusal is a valid
 * reply line with the same id; a line the parser's fast path (codec_flat.c) accepts parses to the
 * same request on the json-c path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/codec.h"
#include "proto/codec_internal.h"
#include "common/err.h"

#define S_CHECK(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* An accepted request formats back to a line that parses to the same request. */
static void s_roundtrip(const struct kb_proto_request *req)
{
    struct kb_proto_request again;
    struct kb_proto_error err;
    char *line = NULL;
    size_t len = 0;

    S_CHECK(kb_proto_format_request(req, &line, &len) == 0);
    S_CHECK(kb_proto_parse_request(line, len - 1, &again, &err) == 0);
    S_CHECK(again.op == req->op && strcmp(again.id, req->id) == 0);
    S_CHECK(again.has_tenant == req->has_tenant && strcmp(again.tenant, req->tenant) == 0);
    S_CHECK(again.delete_bucket == req->delete_bucket);
    S_CHECK(again.force_delete_secret == req->force_delete_secret);
    S_CHECK(again.tenant_count == req->tenant_count);
    S_CHECK(again.has_since == req->has_since && again.since_seq == req->since_seq);
    S_CHECK(!req->has_since || strcmp(again.since_epoch, req->since_epoch) == 0);
    for (size_t i = 0; i < req->tenant_count; i++)
        S_CHECK(strcmp(again.tenants[i], req->tenants[i]) == 0);
    kb_proto_request_cleanup(&again);
    free(line);
}

/* The error reply to a refusal is a reply line carrying the same id and code. */
static void s_error_reply(const struct kb_proto_error *err)
{
    struct kb_proto_reply reply;
    char *line = NULL;
    size_t len = 0;

    S_CHECK(err->code > KB_PROTO_OK && err->code < KB_PROTO_EUNKNOWN);
    S_CHECK(err->message[0] != '\0');
    S_CHECK(kb_proto_format_error(err->id, err->code, err->message, &line, &len) == 0);
    S_CHECK(kb_proto_parse_reply(line, len - 1, &reply, NULL, 0) == 0);
    S_CHECK(reply.kind == KB_PROTO_REPLY_ERROR && reply.code == err->code);
    S_CHECK(strcmp(reply.id, err->id) == 0);
    kb_proto_reply_cleanup(&reply);
    free(line);
}

/* The fast path answers only for lines the json-c path reads the same way. */
static void s_flat_agrees(const char *line, size_t len)
{
    struct kb_proto_request flat, ref;
    struct kb_proto_error err;

    if (!kb_proto_parse_flat(line, len, &flat))
        return;
    S_CHECK(kb_proto_parse_json(line, len, &ref, &err) == 0);
    S_CHECK(flat.op == ref.op && strcmp(flat.id, ref.id) == 0);
    S_CHECK(flat.has_tenant == ref.has_tenant && strcmp(flat.tenant, ref.tenant) == 0);
    S_CHECK(flat.delete_bucket == ref.delete_bucket);
    S_CHECK(flat.force_delete_secret == ref.force_delete_secret);
    S_CHECK(ref.tenant_count == 0 && flat.owned_ == NULL);
    S_CHECK(!flat.has_since && !ref.has_since); /* since is an object: json-c's */
    kb_proto_request_cleanup(&ref);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kb_proto_request req;
    struct kb_proto_error err;
    struct kb_proto_reply reply;
    int rc = kb_proto_parse_request((const char *)data, size, &req, &err);

    s_flat_agrees((const char *)data, size);
    if (rc == 0) {
        s_roundtrip(&req);
        kb_proto_request_cleanup(&req);
    } else {
        S_CHECK(rc == KB_EPARSE || rc == KB_ENOMEM);
        s_error_reply(&err);
    }
    if (kb_proto_parse_reply((const char *)data, size, &reply, NULL, 0) == 0)
        kb_proto_reply_cleanup(&reply);
    return 0;
}
