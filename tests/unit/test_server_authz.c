/* test_server_authz.c - who may do what on the client socket: tenant ACLs by uid, primary gid and
 * supplementary group (names resolved at load), the admin ACL, and unknown tenants refused like
 * forbidden ones. */
#include "kb_test.h"

#include <string.h>

#include "config/config.h"
#include "common/err.h"
#include "server/server_authz.h"

/* users: alice=1000, bob=1001; groups: billing=2000, ops=3000 */
static int s_user(void *ctx, const char *name, uint32_t *uid)
{
    if (strcmp(name, "alice") == 0)
        *uid = 1000;
    else if (strcmp(name, "bob") == 0)
        *uid = 1001;
    else
        return KB_ENOTFOUND;
    return 0;
}

static int s_group(void *ctx, const char *name, uint32_t *gid)
{
    if (strcmp(name, "billing") == 0)
        *gid = 2000;
    else if (strcmp(name, "ops") == 0)
        *gid = 3000;
    else
        return KB_ENOTFOUND;
    return 0;
}

static const char s_doc[] =
    "{\"broker\": {\"admin\": {\"uids\": [0], \"groups\": [\"ops\"]}},"
    " \"tenants\": ["
    "  {\"name\": \"billing\", \"bucket\": \"acme-billing\", \"access\": \"read-only\","
    "   \"clients\": {\"users\": [\"alice\"], \"groups\": [\"billing\"]}},"
    "  {\"name\": \"search\", \"bucket\": \"acme-search\", \"access\": \"read-write\","
    "   \"clients\": {\"uids\": [1001], \"gids\": [4000]}},"
    "  {\"name\": \"closed\", \"bucket\": \"acme-closed\", \"access\": \"read-only\"}"
    "]}";

static int setup(void **state)
{
    static const struct kb_config_resolver r = {s_user, s_group, NULL};
    struct kb_config *cfg = NULL;
    struct kb_config_errors *errors = NULL;

    if (kb_config_load_string(s_doc, strlen(s_doc), &r, &cfg, &errors) != 0) {
        kb_config_errors_destroy(errors);
        return -1;
    }
    *state = cfg;
    return 0;
}

static int teardown(void **state)
{
    kb_config_destroy(*state);
    return 0;
}

static struct kb_server_peer peer(uint32_t uid, uint32_t gid, const uint32_t *groups, size_t n)
{
    struct kb_server_peer p = {.uid = uid, .gid = gid, .pid = 42, .groups = groups, .ngroups = n};
    return p;
}

static struct kb_proto_request req(enum kb_proto_op op, const char *tenant)
{
    struct kb_proto_request r;

    memset(&r, 0, sizeof(r));
    r.op = op;
    memcpy(r.id, "null", 5);
    if (tenant != NULL) {
        r.has_tenant = true;
        memcpy(r.tenant, tenant, strlen(tenant) + 1);
    }
    return r;
}

static bool allowed(void **state, enum kb_proto_op op, const char *tenant,
                    const struct kb_server_peer *p)
{
    struct kb_proto_request r = req(op, tenant);

    return kb_server_authz_request(*state, &r, p);
}

static void test_get_by_user_name(void **state)
{
    struct kb_server_peer alice = peer(1000, 1000, NULL, 0);

    assert_true(allowed(state, KB_PROTO_OP_GET, "billing", &alice));
    assert_false(allowed(state, KB_PROTO_OP_GET, "search", &alice));
    assert_false(allowed(state, KB_PROTO_OP_GET, "closed", &alice));
}

static void test_get_by_uid_and_gid(void **state)
{
    struct kb_server_peer bob = peer(1001, 1001, NULL, 0);
    struct kb_server_peer gid_only = peer(5555, 4000, NULL, 0);

    assert_true(allowed(state, KB_PROTO_OP_GET, "search", &bob));
    assert_false(allowed(state, KB_PROTO_OP_GET, "billing", &bob));
    assert_true(allowed(state, KB_PROTO_OP_GET, "search", &gid_only));
    assert_false(allowed(state, KB_PROTO_OP_GET, "billing", &gid_only));
}

static void test_get_by_supplementary_group(void **state)
{
    const uint32_t groups[] = {10, 2000, 20};
    const uint32_t other[] = {10, 20};
    struct kb_server_peer member = peer(7777, 7777, groups, 3);
    struct kb_server_peer nonmember = peer(7777, 7777, other, 2);

    assert_true(allowed(state, KB_PROTO_OP_GET, "billing", &member));
    assert_false(allowed(state, KB_PROTO_OP_GET, "billing", &nonmember));
    assert_false(allowed(state, KB_PROTO_OP_GET, "search", &member));
}

/* An unknown tenant is refused exactly like one the peer may not see (no existence oracle),
 * even for an admin. */
static void test_unknown_tenant_denied(void **state)
{
    struct kb_server_peer root = peer(0, 0, NULL, 0);
    struct kb_server_peer alice = peer(1000, 1000, NULL, 0);

    assert_false(allowed(state, KB_PROTO_OP_GET, "nosuch", &alice));
    assert_false(allowed(state, KB_PROTO_OP_GET, "nosuch", &root));
    assert_false(allowed(state, KB_PROTO_OP_STATUS, "nosuch", &root));
    assert_false(allowed(state, KB_PROTO_OP_PROVISION, "nosuch", &root));
    assert_false(kb_server_authz_tenant(*state, "nosuch", &root));
}

static void test_admin_ops_need_admin(void **state)
{
    const uint32_t ops_group[] = {3000};
    struct kb_server_peer root = peer(0, 0, NULL, 0);
    struct kb_server_peer operator= peer(1500, 1500, ops_group, 1);
    struct kb_server_peer alice = peer(1000, 1000, NULL, 0);
    const enum kb_proto_op admin_ops[] = {KB_PROTO_OP_PROVISION, KB_PROTO_OP_ROTATE,
                                          KB_PROTO_OP_REVOKE};

    for (size_t i = 0; i < sizeof(admin_ops) / sizeof(admin_ops[0]); i++) {
        assert_true(kb_server_op_is_admin(admin_ops[i]));
        assert_true(allowed(state, admin_ops[i], "billing", &root));
        assert_true(allowed(state, admin_ops[i], "billing", &operator));
        /* alice may read billing's ARN but not administer it */
        assert_false(allowed(state, admin_ops[i], "billing", &alice));
    }
    assert_true(allowed(state, KB_PROTO_OP_PROVISION, NULL, &root));
    assert_false(allowed(state, KB_PROTO_OP_PROVISION, NULL, &alice));
    assert_true(allowed(state, KB_PROTO_OP_METRICS, NULL, &operator));
    assert_false(allowed(state, KB_PROTO_OP_METRICS, NULL, &alice));
    assert_false(kb_server_op_is_admin(KB_PROTO_OP_GET));
    assert_false(kb_server_op_is_admin(KB_PROTO_OP_WATCH));
    assert_true(kb_server_authz_admin(*state, &operator));
    assert_false(kb_server_authz_admin(*state, &alice));
}

/* Being admin does not reveal an ARN: get and watch follow the tenant's ACL only. */
static void test_admin_cannot_get_arn(void **state)
{
    struct kb_server_peer root = peer(0, 0, NULL, 0);
    const char *names[] = {"closed"};
    struct kb_proto_request w = req(KB_PROTO_OP_WATCH, NULL);

    assert_false(allowed(state, KB_PROTO_OP_GET, "closed", &root));
    w.tenants = names;
    w.tenant_count = 1;
    assert_false(kb_server_authz_request(*state, &w, &root));
}

static void test_list_and_status_visibility(void **state)
{
    const struct kb_config *cfg = *state;
    struct kb_server_peer alice = peer(1000, 1000, NULL, 0);
    struct kb_server_peer nobody = peer(6000, 6000, NULL, 0);
    size_t seen = 0;

    struct kb_server_peer root = peer(0, 0, NULL, 0);

    assert_true(allowed(state, KB_PROTO_OP_LIST, NULL, &nobody)); /* filtered, not refused */
    assert_true(allowed(state, KB_PROTO_OP_STATUS, NULL, &nobody));
    for (size_t i = 0; i < cfg->ntenants; i++) {
        assert_false(kb_server_authz_visible(&cfg->tenants[i], &nobody));
        /* admin adds nothing: root is in no tenant's ACL here */
        assert_false(kb_server_authz_visible(&cfg->tenants[i], &root));
        seen += kb_server_authz_visible(&cfg->tenants[i], &alice);
    }
    assert_int_equal(seen, 1);
    assert_true(allowed(state, KB_PROTO_OP_STATUS, "billing", &alice));
    assert_false(allowed(state, KB_PROTO_OP_STATUS, "search", &alice));
    assert_false(allowed(state, KB_PROTO_OP_STATUS, "search", &root));
}

static void test_watch_names(void **state)
{
    struct kb_server_peer alice = peer(1000, 1000, NULL, 0);
    const char *mine[] = {"billing"};
    const char *mixed[] = {"billing", "search"};
    struct kb_proto_request w = req(KB_PROTO_OP_WATCH, NULL);

    assert_true(kb_server_authz_request(*state, &w, &alice)); /* all she may see */
    w.tenants = mine;
    w.tenant_count = 1;
    assert_true(kb_server_authz_request(*state, &w, &alice));
    w.tenants = mixed;
    w.tenant_count = 2;
    assert_false(kb_server_authz_request(*state, &w, &alice));
}

static void test_unknown_op_denied(void **state)
{
    struct kb_server_peer root = peer(0, 0, NULL, 0);

    assert_false(allowed(state, KB_PROTO_OP_NONE, NULL, &root));
    assert_false(allowed(state, KB_PROTO_OP_COUNT, NULL, &root));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_by_user_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_by_uid_and_gid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_by_supplementary_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_tenant_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_ops_need_admin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_cannot_get_arn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_and_status_visibility, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_op_denied, setup, teardown),
    };

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
