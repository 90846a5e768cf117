/*
 * test_codec_flat.c - the request parser's fast path (proto/codec_flat.c) against its reference,
 * the json-c path: every line the fast path accepts must parse to exactly the request the json-c
 * path gives, and every line it should leave alone it declines. The mutation test runs the
 * comparison over tens of thousands of lines derived from real requests; fuzz_codec runs it over
 * whatever libFuzzer finds.
 */
#include "kb_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/codec_internal.h"
#include "common/err.h"

/* Both paths on one line; returns whether the fast path accepted it (then both agree). */
static bool s_compare(const char *line, size_t len)
{
    struct kb_proto_request flat, ref, whole;
    struct kb_proto_error err;
    bool took = kb_proto_parse_flat(line, len, &flat);
    int rc = kb_proto_parse_json(line, len, &ref, &err);

    if (took) {
        if (rc != 0)
            print_message("fast path accepted what json-c refuses (%s): %.*s\n", err.message,
                          (int)len, line);
        assert_int_equal(rc, 0);
        assert_int_equal(flat.op, ref.op);
        assert_string_equal(flat.id, ref.id);
        assert_int_equal(flat.has_tenant, ref.has_tenant);
        assert_string_equal(flat.tenant, ref.tenant);
        assert_int_equal(flat.delete_bucket, ref.delete_bucket);
        assert_int_equal(flat.force_delete_secret, ref.force_delete_secret);
        assert_int_equal(ref.tenant_count, 0);
        assert_null(flat.tenants);
        assert_null(flat.owned_);
    }
    /* The public parser gives the reference's answer either way. */
    assert_int_equal(kb_proto_parse_request(line, len, &whole, &err), rc);
    if (rc == 0) {
        assert_int_equal(whole.op, ref.op);
        assert_string_equal(whole.id, ref.id);
        assert_string_equal(err.id, ref.id);
        assert_string_equal(whole.tenant, ref.tenant);
        kb_proto_request_cleanup(&whole);
        kb_proto_request_cleanup(&ref);
    }
    return took;
}

static void s_taken(const char *line)
{
    if (!s_compare(line, strlen(line)))
        print_message("declined: %s\n", line);
    assert_true(s_compare(line, strlen(line)));
}

static void s_declined(const char *line)
{
    if (s_compare(line, strlen(line)))
        print_message("taken: %s\n", line);
    assert_false(s_compare(line, strlen(line)));
}

/* Real requests of every op, as libkeybroker, kbctl and hand-written clients send them. */
static const char *const s_common[] = {
    "{\"v\":1,\"id\":1,\"op\":\"get\",\"tenant\":\"bench\"}",
    "{\"v\":1,\"id\":\"req-7\",\"op\":\"get\",\"tenant\":\"app.prod@eu_1\"}",
    "{\"op\":\"get\",\"tenant\":\"a\",\"v\":1}",
    " { \"v\" : 1 ,\t\"op\" : \"get\" , \"tenant\" : \"x\" , \"id\" : null }\r",
    "{\"v\":1,\"id\":-42,\"op\":\"list\"}",
    "{\"v\":1,\"id\":0,\"op\":\"status\"}",
    "{\"v\":1,\"id\":999999999999999,\"op\":\"status\",\"tenant\":\"t\"}",
    "{\"v\":1,\"op\":\"status\",\"tenant\":null}",
    "{\"v\":1,\"id\":\"\",\"op\":\"provision\"}",
    "{\"v\":1,\"id\":\"a/b c'd\",\"op\":\"provision\",\"tenant\":\"t-1\"}",
    "{\"v\":1,\"op\":\"rotate\",\"tenant\":\"t\"}",
    ("{\"v\":1,\"op\":\"revoke\",\"tenant\":\"t\",\"delete_bucket\":true,"
     "\"force_delete_secret\":false}"),
    "{\"v\":1,\"op\":\"revoke\",\"tenant\":\"t\",\"delete_bucket\":null}",
    "{\"v\":1,\"id\":3,\"op\":\"watch\"}",
    "{\"v\":1,\"id\":3,\"op\":\"watch\",\"tenants\":null}",
    "{\"v\":1,\"id\":4,\"op\":\"metrics\"}",
};

static void test_flat_takes_common_requests(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(s_common) / sizeof(s_common[0]); i++)
        s_taken(s_common[i]);
}

static void test_flat_declines_what_it_cannot_answer_for(void **state)
{
    static const char *const lines[] = {
        /* valid, but left to json-c */
        "{\"v\":1,\"id\":\"\\u0041\",\"op\":\"get\",\"tenant\":\"t\"}",      /* an escape */
        "{\"v\":1,\"id\":\"caf\xc3\xa9\",\"op\":\"get\",\"tenant\":\"t\"}",  /* UTF-8 */
        "{\"v\":1,\"op\":\"watch\",\"tenants\":[\"a\",\"b\"]}",              /* an array */
        "{\"v\":1,\"id\":1234567890123456,\"op\":\"get\",\"tenant\":\"t\"}", /* 16 digits */
        /* refused: the json-c path words the error */
        "{\"v\":1,\"id\":-0,\"op\":\"get\",\"tenant\":\"t\"}",
        "{\"v\":1,\"id\":01,\"op\":\"get\",\"tenant\":\"t\"}",
        "{\"v\":1,\"id\":1.5,\"op\":\"get\",\"tenant\":\"t\"}",
        "{\"v\":1,\"id\":1e3,\"op\":\"get\",\"tenant\":\"t\"}",
        "{\"v\":1,\"id\":true,\"op\":\"get\",\"tenant\":\"t\"}",
        "{\"v\":1,\"v\":1,\"op\":\"get\",\"tenant\":\"t\"}",
        "{\"v\":2,\"op\":\"get\",\"tenant\":\"t\"}",
        "{\"v\":1.0,\"op\":\"get\",\"tenant\":\"t\"}",
        "{\"v\":\"1\",\"op\":\"get\",\"tenant\":\"t\"}",
        "{\"op\":\"get\",\"tenant\":\"t\"}",
        "{\"v\":1,\"op\":\"fetch\",\"tenant\":\"t\"}",
        "{\"v\":1,\"op\":\"get\"}",
        "{\"v\":1,\"op\":\"get\",\"tenant\":null}",
        "{\"v\":1,\"op\":\"get\",\"tenant\":\"bad name\"}",
        "{\"v\":1,\"op\":\"get\",\"tenant\":\"t\",\"extra\":1}",
        "{\"v\":1,\"op\":\"list\",\"tenant\":\"t\"}",
        "{\"v\":1,\"op\":\"list\",\"tenant\":null}",
        "{\"v\":1,\"op\":\"get\",\"tenant\":\"t\",\"delete_bucket\":true}",
        "{\"v\":1,\"op\":\"revoke\",\"tenant\":\"t\",\"delete_bucket\":1}",
        "{\"v\":1,\"op\":\"get\",\"tenant\":\"t\"} x",
        "{\"v\":1,\"op\":\"get\",\"tenant\":\"t\",}",
        "{\"v\":1,\"op\":\"get\",\"tenant\":\"t\"",
        "{\"v\":1 \"op\":\"get\",\"tenant\":\"t\"}",
        "{'v':1,'op':'get','tenant':'t'}",
        "{\"v\":1,\"op\":\"get\",\"tenant\":\"t\"}\f",
        "{}",
        "",
        "[1]",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        s_declined(lines[i]);
    /* an id of 128 characters is taken, one of 129 is not */
    char line[300];
    char id[130];

    memset(id, 'i', sizeof(id) - 1);
    id[128] = '\0';
    snprintf(line, sizeof(line), "{\"v\":1,\"id\":\"%s\",\"op\":\"list\"}", id);
    s_taken(line);
    id[128] = 'i';
    id[129] = '\0';
    snprintf(line, sizeof(line), "{\"v\":1,\"id\":\"%s\",\"op\":\"list\"}", id);
    s_declined(line);
}

/* An embedded NUL, and a line that is too long even if it is a valid request. */
static void test_flat_nul_and_length(void **state)
{
    static const char nul[] = "{\"v\":1,\"op\":\"get\",\"tenant\":\"t\0\"}";
    size_t len = KB_PROTO_MAX_LINE;
    char *big = malloc(len);
    struct kb_proto_request req;

    (void)state;
    assert_false(s_compare(nul, sizeof(nul) - 1));
    assert_non_null(big);
    memset(big, ' ', len);
    memcpy(big, s_common[0], strlen(s_common[0]));
    assert_false(kb_proto_parse_flat(big, len, &req));
    assert_true(kb_proto_parse_flat(big, len - 1, &req));
    free(big);
}

/*
 * Every one-byte change of every common request - each byte replaced by each of 256 values, each
 * byte deleted, each of a set of JSON-significant bytes inserted before each byte - through both
 * paths. Most changes make a line the fast path declines; the rest must agree exactly.
 */
static void test_flat_agrees_with_json_c_on_mutations(void **state)
{
    static const char inserts[] = " \t\r\n\"\\{}[],:-01.e+tfnu\x7f\xc3\x80";
    char buf[512];
    size_t lines = 0, taken = 0;

    (void)state;
    for (size_t s = 0; s < sizeof(s_common) / sizeof(s_common[0]); s++) {
        const char *seed = s_common[s];
        size_t n = strlen(seed);

        assert_true(n + 1 < sizeof(buf));
        for (size_t i = 0; i < n; i++) {
            for (int b = 0; b < 256; b++) {
                memcpy(buf, seed, n);
                buf[i] = (char)b;
                taken += s_compare(buf, n);
                lines++;
            }
            memcpy(buf, seed, i);
            memcpy(buf + i, seed + i + 1, n - i - 1);
            taken += s_compare(buf, n - 1);
            lines++;
            for (size_t k = 0; k < sizeof(inserts) - 1; k++) {
                memcpy(buf, seed, i);
                buf[i] = inserts[k];
                memcpy(buf + i + 1, seed + i, n - i);
                taken += s_compare(buf, n + 1);
                lines++;
            }
        }
    }
    print_message("%zu lines, %zu taken by the fast path, all as json-c reads them\n", lines,
                  taken);
    /* The comparison must have had something to compare. */
    assert_true(taken > 1000);
    assert_true(taken < lines / 2);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat_takes_common_requests),
        cmocka_unit_test(test_flat_declines_what_it_cannot_answer_for),
        cmocka_unit_test(test_flat_nul_and_length),
        cmocka_unit_test(test_flat_agrees_with_json_c_on_mutations),
    };
    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
