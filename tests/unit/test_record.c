/*
 * test_record.c - an audit record's body (broker/audit/record.c): the members in record.h's
 * order, each only when set, as the exact text (written out by hand from record.h, not from
 * record.c's output), the split into prefix and members the writer uses, and the timestamp form.
 */
#include "kb_test.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "audit/record.h"
#include "common/err.h"

#define S_TS_MS ((int64_t)1796354881123) /* calendar.timegm((2026,12,4,3,28,1)) * 1000 + 123 */

static void test_body_members_in_order(void **state)
{
    static const char want[] =
        "{\"seq\":5,\"epoch\":2,\"ts\":\"2026-12-04T03:28:01.123Z\",\"event\":\"step\","
        "\"tenant\":\"billing\",\"op\":\"provision\",\"step\":\"create_user\",\"result\":\"error\","
        "\"arn\":\"arn:aws:iam::123456789012:user/kb/billing\",\"version_id\":\"v-1\","
        "\"error\":\"it said \\\"no\\\"\",\"peer\":{\"uid\":1000,\"gid\":1001,\"pid\":42},"
        "\"aws\":{\"service\":\"iam\",\"operation\":\"CreateUser\",\"request_id\":\"rid-1\","
        "\"code\":\"Throttling\"},\"records\":7,\"note\":\"a/b\"}";
    struct kb_audit_peer peer = {1000, 1001, 42};
    struct kb_audit_field f[] = {{"records", NULL, 7}, {"note", "a/b", 0}};
    struct kb_audit_record r = {
        .event = "step",
        .tenant = "billing",
        .op = "provision",
        .step = "create_user",
        .result = "error",
        .arn = "arn:aws:iam::123456789012:user/kb/billing",
        .version_id = "v-1",
        .error = "it said \"no\"",
        .peer = &peer,
        .aws = {"iam", "CreateUser", "rid-1", "Throttling"},
        .fields = f,
        .nfields = 2,
    };
    char out[1024], pre[64];
    size_t len = 0, mlen = 0;
    int n;

    (void)state;
    assert_int_equal(kb_audit_record_body(&r, 5, 2, S_TS_MS, out, sizeof(out), &len), 0);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(out, want, len);
    /* the writer's halves: {"seq":N,"epoch":E, and the members from "ts" on */
    n = kb_audit_record_prefix(5, 2, pre, sizeof(pre));
    assert_int_equal(n, (int)strlen("{\"seq\":5,\"epoch\":2,"));
    assert_string_equal(pre, "{\"seq\":5,\"epoch\":2,");
    assert_int_equal(kb_audit_record_members(&r, S_TS_MS, out, sizeof(out), &mlen), 0);
    assert_int_equal((size_t)n + mlen, strlen(want));
    assert_memory_equal(out, want + n, mlen);
    assert_int_equal(kb_audit_record_prefix(5, 2, pre, 8), KB_ETOOBIG);
    assert_int_equal(kb_audit_record_body(&r, 5, 2, S_TS_MS, out, 40, &len), KB_ETOOBIG);
}

static void test_unset_members_are_left_out(void **state)
{
    static const char want[] = "{\"seq\":1,\"epoch\":0,\"ts\":\"1970-01-01T00:00:00.000Z\","
                               "\"event\":\"seal\",\"aws\":{\"service\":\"s3\"}}";
    struct kb_audit_record r = {
        .event = "seal", .tenant = "", .op = NULL, .aws = {"s3", "", NULL, ""}};
    char out[256];
    size_t len = 0;

    (void)state;
    assert_int_equal(kb_audit_record_body(&r, 1, 0, 0, out, sizeof(out), &len), 0);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(out, want, len);
    r.event = "";
    assert_int_equal(kb_audit_record_body(&r, 1, 0, 0, out, sizeof(out), &len), KB_EINVAL);
    r.event = NULL;
    assert_int_equal(kb_audit_record_body(&r, 1, 0, 0, out, sizeof(out), &len), KB_EINVAL);
}

static void test_timestamps(void **state)
{
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {S_TS_MS, "2026-12-04T03:28:01.123Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {951782400000, "2000-02-29T00:00:00.000Z"},
        {253402300799999, "9999-12-31T23:59:59.999Z"},
    };
    char ts[25];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kb_audit_format_ts(cases[i].ms, ts);
        assert_string_equal(ts, cases[i].want);
    }
    /* beyond year 9999: still 24 characters of the same shape (never a longer string) */
    kb_audit_format_ts(253402300800000, ts);
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[23], 'Z');
}

/* A record of plain strings is written without json-c; it must be exactly json-c's compact form:
 * parsing it and writing it again with json-c gives the same bytes. Strings of random printable
 * ASCII (without '"' and '\\', '/' included: json-c is told not to escape it), numbers of every
 * size. */
static void test_plain_path_is_json_c_s_form(void **state)
{
    static const char alphabet[] = " !#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "[]^_`abcdefghijklmnopqrstuvwxyz{|}~";
    char strs[12][40], out[4096];
    unsigned seed = 20261204;

    (void)state;
    for (int round = 0; round < 2000; round++) {
        struct kb_audit_peer peer = {(uid_t)rand_r(&seed), (gid_t)rand_r(&seed),
                                     (pid_t)(rand_r(&seed) % 100000)};
        struct kb_audit_field f[2];
        struct kb_audit_record r;
        struct json_object *o;
        const char *again;
        size_t len = 0, n2 = 0;

        for (int i = 0; i < 12; i++) {
            int n = rand_r(&seed) % 39; /* 0: the member is left out */

            for (int k = 0; k < n; k++)
                strs[i][k] = alphabet[(size_t)rand_r(&seed) % (sizeof(alphabet) - 1)];
            strs[i][n] = '\0';
        }
        f[0] = (struct kb_audit_field){
            "count", NULL, (int64_t)rand_r(&seed) * rand_r(&seed) - (int64_t)rand_r(&seed)};
        f[1] = (struct kb_audit_field){"note", strs[11], 0};
        r = (struct kb_audit_record){.event = strs[0][0] != '\0' ? strs[0] : "x",
                                     .tenant = strs[1],
                                     .op = strs[2],
                                     .step = strs[3],
                                     .result = strs[4],
                                     .arn = strs[5],
                                     .version_id = strs[6],
                                     .error = strs[7],
                                     .peer = round % 3 != 0 ? &peer : NULL,
                                     .fields = f,
                                     .nfields = (size_t)(round % 3)};
        if (round % 2 == 0)
            r.aws = (struct kb_audit_aws){strs[8], strs[9], strs[10], NULL};
        assert_int_equal(kb_audit_record_body(&r, (uint64_t)round, 3, S_TS_MS + round, out,
                                              sizeof(out) - 1, &len),
                         0);
        out[len] = '\0';
        o = json_tokener_parse(out);
        assert_non_null(o);
        again = json_object_to_json_string_length(
            o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n2);
        assert_string_equal(again, out);
        json_object_put(o);
    }
}

/* A string that JSON must escape sends the whole record through json-c. */
static void test_strings_that_need_escaping(void **state)
{
    struct kb_audit_record r = {.event = "aws_call",
                                .error = "line\nbreak \"quoted\" \\ \x01 \xc3\xa9"};
    char out[1024];
    size_t len = 0;
    struct json_object *o, *v;

    (void)state;
    assert_int_equal(kb_audit_record_body(&r, 1, 0, S_TS_MS, out, sizeof(out) - 1, &len), 0);
    out[len] = '\0';
    assert_null(memchr(out, '\n', len));
    o = json_tokener_parse(out);
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "error", &v));
    assert_string_equal(json_object_get_string(v), r.error);
    json_object_put(o);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_members_in_order),
        cmocka_unit_test(test_unset_members_are_left_out),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_plain_path_is_json_c_s_form),
        cmocka_unit_test(test_strings_that_need_escaping),
    };

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
