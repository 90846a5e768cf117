/*
 * test_verify_body.c - the verifier's record-body scanner (broker/audit/verify_body.c): the
 * header in record.c's order, JSON checked without json-c, the members the verifier reads, and
 * what it refuses so that one line cannot mean two things (duplicates, whitespace, bad UTF-8).
 * Bodies are given without their closing "}", as the verifier sees them in a line.
 */
#include "kb_test.h"

#include <string.h>

#include "audit/chain.h"
#include "audit/record.h"
#include "audit/verify_internal.h"
#include "common/err.h"

#define S_HEAD "{\"seq\":12,\"epoch\":3,\"ts\":\"2026-12-04T03:28:01.123Z\",\"event\":\"authz\""

static int s_scan(const char *body, struct kb_audit__body *b, const char **why)
{
    *why = NULL;
    return kb_audit__body_scan(body, strlen(body), false, b, why);
}

static void test_header_and_members(void **state)
{
    struct kb_audit__body b;
    const char *why;

    (void)state;
    assert_int_equal(s_scan(S_HEAD, &b, &why), 0);
    assert_int_equal(b.seq, 12);
    assert_int_equal(b.epoch, 3);
    assert_true(kb_audit__span_is(b.event, "authz"));
    assert_true(kb_audit__span_is(b.ts, "2026-12-04T03:28:01.123Z"));
    assert_memory_equal(&S_HEAD[b.seq_off], "12", b.seq_len);
    assert_null(b.chain.p);
    assert_int_equal(
        s_scan(S_HEAD ",\"tenant\":\"a\\\"b\\u00e9\",\"peer\":{\"uid\":0,\"gid\":-1,\"x\":[1.5e3,"
                      "true,false,null,{}]},\"chain\":\"sha256\",\"chain_id\":\"ab\",\"prev_h\":"
                      "\"00\",\"reason\":\"start\",\"epoch_seconds\":600,\"records\":7,\"count\""
                      ":2,\"cut_bytes\":0,\"caf\xc3\xa9\":\"\xe2\x82\xac\xf0\x9f\x94\x91\"",
               &b, &why),
        0);
    assert_true(kb_audit__span_is(b.chain, "sha256"));
    assert_true(kb_audit__span_is(b.chain_id, "ab"));
    assert_true(kb_audit__span_is(b.prev_h, "00"));
    assert_true(kb_audit__span_is(b.reason, "start"));
    assert_true(b.has_epoch_seconds && b.epoch_seconds == 600);
    assert_true(b.has_records && b.records == 7);
    assert_true(b.has_count && b.count == 2);
    assert_true(b.has_cut_bytes && b.cut_bytes == 0);
    /* a body record.c writes scans as it was written */
    {
        struct kb_audit_peer peer = {1000, 1000, 4242};
        struct kb_audit_field f = {"records", NULL, 99};
        struct kb_audit_record r = {.event = "seal",
                                    .tenant = "billing",
                                    .peer = &peer,
                                    .aws = {"iam", "CreateUser", "rid-1", NULL},
                                    .fields = &f,
                                    .nfields = 1};
        char body[1024];
        size_t len = 0;

        assert_int_equal(kb_audit_record_body(&r, 77, 5, 1796000000000, body, sizeof(body), &len),
                         0);
        assert_int_equal(kb_audit__body_scan(body, len - 1, false, &b, &why), 0);
        assert_int_equal(b.seq, 77);
        assert_int_equal(b.epoch, 5);
        assert_true(kb_audit__span_is(b.event, "seal"));
        assert_true(b.has_records && b.records == 99);
    }
}

static void test_refused(void **state)
{
    static const struct {
        const char *body, *why;
    } cases[] = {
        {"{\"ts\":\"x\"", "does not begin"},
        {"{\"seq\":012,\"epoch\":3", "leading zero"},
        {"{\"seq\":-1,\"epoch\":3", "integer was expected"},
        {"{\"seq\":1.5,\"epoch\":3", "integer was expected"},
        {"{\"seq\":9223372036854775808,\"epoch\":3", "too large"},
        {"{\"seq\":1,\"ts\":\"2026-12-04T03:28:01.123Z\",\"epoch\":3", "\"epoch\" does not"},
        {"{\"seq\":1,\"epoch\":3,\"ts\":\"2026-12-04 03:28:01.123Z\"", "UTC time"},
        {"{\"seq\":1,\"epoch\":3,\"ts\":\"2026-12-04T03:28:01.123Z\",\"event\":\"\"", "empty"},
        {"{\"seq\":1,\"epoch\":3,\"ts\":\"2026-12-04T03:28:01.123Z\",\"event\":\"a\\u0062\"",
         "escaped"},
        {S_HEAD ",\"seq\":13", "twice"},
        {S_HEAD ",\"records\":1,\"records\":2", "twice"},
        {S_HEAD ",\"chain\":\"sha\\u0032\"", "escaped"},
        {S_HEAD ",\"records\":\"7\"", "integer was expected"},
        {S_HEAD ", \"x\":1", "a string was expected"},
        {S_HEAD ",\"x\": 1", "a value was expected"},
        {S_HEAD ",\"x\":1,", "a string was expected"},
        {S_HEAD ",\"x\":tru", "a value was expected"},
        {S_HEAD ",\"x\":01", "',' was expected"},
        {S_HEAD ",\"x\":1.", "malformed"},
        {S_HEAD ",\"x\":1e", "malformed"},
        {S_HEAD ",\"x\":[1,]", "a value was expected"},
        {S_HEAD ",\"x\":{\"a\"}", "':' was expected"},
        {S_HEAD ",\"x\":\"a\tb\"", "control character"},
        {S_HEAD ",\"x\":\"\\q\"", "bad escape"},
        {S_HEAD ",\"x\":\"\\u12g4\"", "\\u escape"},
        {S_HEAD ",\"x\":\"\xc0\xaf\"", "UTF-8"},         /* overlong "/" */
        {S_HEAD ",\"x\":\"\xed\xa0\x80\"", "UTF-8"},     /* a surrogate */
        {S_HEAD ",\"x\":\"\xf4\x90\x80\x80\"", "UTF-8"}, /* beyond U+10FFFF */
        {S_HEAD ",\"x\":\"\xe2\x82\"", "UTF-8"},
        {S_HEAD ",\"x\":\"abc", "not closed"},
        {S_HEAD ",\"x\":" /* 40 levels */ "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]"
                "]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
         "nests too deeply"},
    };
    struct kb_audit__body b;
    const char *why;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (s_scan(cases[i].body, &b, &why) != KB_EPARSE || why == NULL ||
            strstr(why, cases[i].why) == NULL)
            fail_msg("case %zu (%s): want \"%s\", got \"%s\"", i, cases[i].body, cases[i].why,
                     why ? why : "(accepted)");
    }
}

static void test_line_seq(void **state)
{
    uint64_t seq = 0;
    const char *line = S_HEAD ",\"h\":\"00\"}";

    (void)state;
    assert_int_equal(kb_audit_line_seq(line, strlen(line), &seq), 0);
    assert_int_equal(seq, 12);
    assert_int_equal(kb_audit_line_seq("{\"seq\":x", 8, &seq), KB_EPARSE);
    assert_int_equal(kb_audit_line_seq("", 0, &seq), KB_EPARSE);
    /* the header only: the rest of the line is not read */
    assert_int_equal(kb_audit__body_scan(S_HEAD ",garbage", strlen(S_HEAD ",garbage"), true,
                                         &(struct kb_audit__body){0}, &line),
                     0);
}

/* The strict split reads what chain.c's reads, except uppercase hex; every byte value of a digit
 * is tried. */
static void test_split_strict(void **state)
{
    static const char body[] = S_HEAD "}";
    uint8_t prev[KB_AUDIT_HASH_LEN] = {1}, key[KB_AUDIT_KEY_LEN] = {2};
    struct kb_audit_line_parts a, b;
    char line[512];
    size_t len = 0;

    (void)state;
    for (int k = 0; k < 2; k++) {
        assert_int_equal(kb_audit_make_line(prev, k == 0 ? key : NULL, body, strlen(body), line,
                                            sizeof(line), &len, NULL),
                         0);
        len--; /* the "\n" */
        assert_int_equal(kb_audit_split_line(line, len, &a), 0);
        assert_int_equal(kb_audit__split_strict(line, len, &b), 0);
        assert_memory_equal(&a, &b, sizeof(a));
        for (int c = 0; c < 256; c++) {
            char save = line[len - 3];
            bool digit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');

            line[len - 3] = (char)c; /* the last digit of the tag (or h) */
            if ((kb_audit__split_strict(line, len, &b) == 0) != digit)
                fail_msg("byte 0x%02x: %s", c, digit ? "refused" : "accepted");
            if (digit)
                assert_int_equal(b.mode, k == 0 ? KB_AUDIT_MODE_HMAC : KB_AUDIT_MODE_SHA256);
            line[len - 3] = save;
        }
    }
    line[len - 3] = 'A'; /* uppercase: neither splitter reads it (one text, one meaning) */
    assert_int_equal(kb_audit_split_line(line, len, &a), KB_EPARSE);
    assert_int_equal(kb_audit__split_strict(line, len, &b), KB_EPARSE);
    assert_int_equal(kb_audit__split_strict("}", 1, &b), KB_EPARSE);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_and_members),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_line_seq),
        cmocka_unit_test(test_split_strict),
    };

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
