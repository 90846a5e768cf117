/* test_server_metrics.c - the metrics op's Prometheus text: every series keybroker promises,
 * counters by op and result, tenant states, and well-formed exposition lines. */
#include "kb_test.h"

#include <stdlib.h>
#include <string.h>

#include "server/server_metrics.h"

static const char *const s_states[KB_SRV_TENANT_STATES] = {
    "pending", "provisioning", "ready", "degraded", "error", "revoking", "revoked",
};

static char *render(const struct kb_srv_metrics *m, bool aws)
{
    struct kb_srv_gauges g = {.uptime_seconds = 93, .connections = 4, .watches = 2};

    for (size_t i = 0; i < KB_SRV_TENANT_STATES; i++)
        g.state_names[i] = s_states[i];
    g.tenants[2] = 3;
    g.tenants[4] = 1;
    g.has_aws_calls = aws;
    g.aws_calls = 57;
    g.has_audit = aws; /* the audit log's series come and go with the same flag */
    g.audit_written = 1234;
    g.audit_queued = 5;
    g.audit_lost = 6;
    g.audit_write_errors = 2;
    g.audit_unanchored = 40;
    g.audit_failing = true;
    return kb_srv_metrics_format(m, &g);
}

static void test_series(void **state)
{
    static struct kb_srv_metrics m;
    char *text;

    memset(&m, 0, sizeof(m));
    m.requests[KB_PROTO_OP_GET][KB_PROTO_OK] = 12;
    m.requests[KB_PROTO_OP_GET][KB_PROTO_EFORBIDDEN] = 2;
    m.requests[KB_PROTO_OP_NONE][KB_PROTO_EBAD_JSON] = 5;
    m.authz_allow = 14;
    m.authz_deny = 2;
    m.rejected = 1;
    m.rejected_uid = 6;
    m.rejected_reserved = 7;
    m.watch_refused = 8;
    m.cut_slow = 3;
    m.cut_request = 9;
    m.denials_unlogged = 10;
    text = render(&m, true);
    assert_non_null(text);
    assert_non_null(strstr(text, "\nkeybroker_up 1\n"));
    assert_non_null(strstr(text, "\nkeybroker_uptime_seconds 93\n"));
    assert_non_null(strstr(text, "\nkeybroker_connections 4\n"));
    assert_non_null(strstr(text, "keybroker_requests_total{op=\"get\",result=\"ok\"} 12\n"));
    assert_non_null(strstr(text, "keybroker_requests_total{op=\"get\",result=\"forbidden\"} 2\n"));
    assert_non_null(
        strstr(text, "keybroker_requests_total{op=\"invalid\",result=\"bad_json\"} 5\n"));
    assert_null(strstr(text, "op=\"list\"")); /* zero series are left out */
    assert_non_null(strstr(text, "keybroker_authz_total{result=\"allow\"} 14\n"));
    assert_non_null(strstr(text, "keybroker_authz_total{result=\"deny\"} 2\n"));
    assert_non_null(strstr(text, "keybroker_tenants{state=\"ready\"} 3\n"));
    assert_non_null(strstr(text, "keybroker_tenants{state=\"error\"} 1\n"));
    assert_non_null(strstr(text, "keybroker_tenants{state=\"pending\"} 0\n"));
    assert_non_null(
        strstr(text, "keybroker_connections_rejected_total{reason=\"max_connections\"} 1\n"));
    assert_non_null(strstr(
        text, "keybroker_connections_rejected_total{reason=\"max_connections_per_uid\"} 6\n"));
    assert_non_null(strstr(
        text, "keybroker_connections_rejected_total{reason=\"admin_reserved_connections\"} 7\n"));
    assert_non_null(strstr(text, "\nkeybroker_watches_refused_total 8\n"));
    assert_non_null(strstr(text, "\nkeybroker_watches 2\n"));
    assert_non_null(strstr(text, "keybroker_disconnects_total{reason=\"slow_reader\"} 3\n"));
    assert_non_null(strstr(text, "keybroker_disconnects_total{reason=\"request_timeout\"} 9\n"));
    assert_non_null(strstr(text, "\nkeybroker_authz_denials_unlogged_total 10\n"));
    assert_non_null(strstr(text, "\nkeybroker_aws_calls_total 57\n"));
    assert_non_null(strstr(text, "\nkeybroker_audit_records_total 1234\n"));
    assert_non_null(strstr(text, "\nkeybroker_audit_backlog 5\n"));
    assert_non_null(strstr(text, "\nkeybroker_audit_lost_total 6\n"));
    assert_non_null(strstr(text, "\nkeybroker_audit_write_errors_total 2\n"));
    assert_non_null(strstr(text, "\nkeybroker_audit_unanchored 40\n"));
    assert_non_null(strstr(text, "\nkeybroker_audit_failing 1\n"));
    free(text);
    text = render(&m, false);
    assert_null(strstr(text, "keybroker_aws_calls_total"));
    assert_null(strstr(text, "keybroker_audit_"));
    free(text);
}

/* Every line is a comment (# HELP / # TYPE) or "name[{labels}] value"; each TYPE comes once and
 * before its samples. */
static void test_exposition_format(void **state)
{
    static struct kb_srv_metrics m;
    char *text, *line, *save = NULL;
    char typed[64][64];
    size_t ntyped = 0;

    memset(&m, 0, sizeof(m));
    for (int op = 0; op < KB_PROTO_OP_COUNT; op++)
        m.requests[op][KB_PROTO_OK] = (uint64_t)op + 1;
    text = render(&m, true);
    assert_non_null(text);
    assert_int_equal(text[strlen(text) - 1], '\n');
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char name[64];
        size_t n = strcspn(line, "{ ");

        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_true(strstr(line, " counter") != NULL || strstr(line, " gauge") != NULL);
            assert_true(ntyped < 64);
            n = strcspn(line + 7, " ");
            assert_true(n < sizeof(name));
            memcpy(typed[ntyped], line + 7, n);
            typed[ntyped][n] = '\0';
            for (size_t i = 0; i < ntyped; i++)
                assert_string_not_equal(typed[i], typed[ntyped]);
            ntyped++;
            continue;
        }
        assert_true(n > 0 && n < sizeof(name));
        memcpy(name, line, n);
        name[n] = '\0';
        assert_true(ntyped > 0);
        assert_string_equal(name, typed[ntyped - 1]); /* samples follow their own TYPE */
        assert_non_null(strchr(line, ' '));
        assert_true(strspn(strrchr(line, ' ') + 1, "0123456789") == strlen(strrchr(line, ' ') + 1));
    }
    free(text);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_series),
        cmocka_unit_test(test_exposition_format),
    };

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
