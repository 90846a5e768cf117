/*
 * test_record.c - an audit record's body (broker/audit/record.c): the members in record.h's
 * order, each only when set, as the exact text (written out by hand from record.h, not from
 * record.c's output), the split into prefix and members the writer uses, and the timestamp form.
 */
#include "kb_test.h"

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

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_members_in_order),
        cmocka_unit_test(test_unset_members_are_left_out),
        cmocka_unit_test(test_timestamps),
    };

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
