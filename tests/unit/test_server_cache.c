/* test_server_cache.c - the cached get answer: a line spliced from the cache is byte for byte what
 * the codec writes for the same id, the cache follows the tenant's status, and a line that does
 * not start as expected is never spliced. */
#include "kb_test.h"

#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "common/err.h"
#include "server/server_internal.h"

static const struct kb_proto_tenant_info s_info = {
    .tenant = "billing",
    .arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keybroker/billing-AbCdEf",
    .bucket = "acme-billing",
    .prefix = "reports/",
    .region = "us-east-1",
    .version_id = "0d0fa086-ed3d-55e0-9868-315a47b4800d",
    .last_rotation = 1700000000,
    .state = "ready",
};

static void s_status(struct kb_tenant_status *st, const struct kb_proto_tenant_info *info)
{
    memset(st, 0, sizeof(*st));
    st->state = KB_TENANT_READY;
    st->secret_arn = info->arn;
    memcpy(st->version_id, info->version_id, strlen(info->version_id) + 1);
    st->last_rotation = info->last_rotation;
}

/* The cached line for id equals kb_proto_format_get's. */
static void assert_same(struct kb_srv_get_cache *g, const struct kb_proto_tenant_info *info,
                        const struct kb_tenant_status *st, const char *id)
{
    char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;

    assert_int_equal(kb_srv_get_line(g, info, st, id, &a, &alen), 0);
    assert_int_equal(kb_proto_format_get(id, info, &b, &blen), 0);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    assert_int_equal(a[alen], '\0');
    free(a);
    free(b);
}

static void test_spliced_equals_codec(void **state)
{
    struct kb_srv_get_cache g = {0};
    struct kb_tenant_status st;
    const char *ids[] = {NULL,
                         "null",
                         "0",
                         "-42",
                         "9007199254740991",
                         "\"abc\"",
                         "\"quote \\\" and \\\\ and \\u001f\"",
                         "\"\xc3\xa9t\xc3\xa9\""};

    s_status(&st, &s_info);
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        assert_same(&g, &s_info, &st, ids[i]);
    assert_non_null(g.tail);
    kb_srv_get_cache_free(NULL, 0);
    free(g.tail);
}

/* A new version id (a rotation, a re-provision) rebuilds the entry. */
static void test_cache_follows_status(void **state)
{
    struct kb_srv_get_cache g = {0};
    struct kb_proto_tenant_info info = s_info;
    struct kb_tenant_status st;
    char *line = NULL;
    size_t len = 0;

    s_status(&st, &info);
    assert_same(&g, &info, &st, "1");
    info.version_id = "11111111-2222-5333-8444-555555555555";
    info.last_rotation = 1800000000;
    s_status(&st, &info);
    assert_same(&g, &info, &st, "2");
    assert_int_equal(kb_srv_get_line(&g, &info, &st, "3", &line, &len), 0);
    assert_non_null(strstr(line, "11111111-2222-5333-8444-555555555555"));
    assert_null(strstr(line, "0d0fa086"));
    free(line);
    info.state = "provisioning";
    st.state = KB_TENANT_PROVISIONING;
    assert_same(&g, &info, &st, "4");
    free(g.tail);
}

static void test_unexpected_line_not_spliced(void **state)
{
    char *tail = NULL;
    size_t len = 0;
    const char good[] = "{\"v\":1,\"id\":null,\"ok\":true}\n";
    const char *bad[] = {"{\"v\":1,\"id\":1,\"ok\":true}\n", "{\"id\":null,\"v\":1}\n",
                         "{\"v\":1,\"id\":null}", "{\"v\":1,\"id\":nullx,\"ok\":true}\n", ""};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(kb_srv_splice_tail(bad[i], strlen(bad[i]), &tail, &len), KB_EINVAL);
        assert_null(tail);
    }
    assert_int_equal(kb_srv_splice_tail(good, strlen(good), &tail, &len), 0);
    assert_int_equal(len, strlen(",\"ok\":true}\n"));
    assert_memory_equal(tail, ",\"ok\":true}\n", len);
    free(tail);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spliced_equals_codec),
        cmocka_unit_test(test_cache_follows_status),
        cmocka_unit_test(test_unexpected_line_not_spliced),
    };

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
