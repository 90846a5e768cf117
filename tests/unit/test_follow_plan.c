/* test_follow_plan.c - a follower's pure decisions (engine/follow_plan.c): which ListSecrets entry
 * belongs to which followed tenant, the labels of an entry, and the known state's step after a
 * pass (provisioned, rotated, rolled_back, revoked, nothing). */
#include "kb_test.h"

#include <stdio.h>
#include <string.h>

#include "engine/follow_plan.h"

#define ARN "arn:aws:secretsmanager:us-east-1:123456789012:secret:keybroker/alpha-AbCdEf"

static struct kb_tenant s_tenants[] = {
    {.name = "alpha", .secret_name = "keybroker/alpha", .rotate = false},
    {.name = "beta", .secret_name = "keybroker/beta", .rotate = true},
};

static struct kb_config s_cfg(void)
{
    struct kb_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.aws.secret_prefix = "keybroker/";
    cfg.tenants = s_tenants;
    cfg.ntenants = 2;
    return cfg;
}

static const struct kb_aws_tag s_ours[] = {{"keybroker:tenant", "alpha"},
                                           {"keybroker:managed", "true"}};
static const struct kb_aws_tag s_beta[] = {{"keybroker:tenant", "beta"},
                                           {"keybroker:managed", "true"}};
static const struct kb_aws_tag s_other[] = {{"keybroker:tenant", "beta"},
                                            {"keybroker:managed", "true"}};

static void test_entry_tenant(void **state)
{
    struct kb_config cfg = s_cfg();
    struct kb_sm_list_entry e = {
        .arn = ARN, .name = "keybroker/alpha", .tags = s_ours, .tag_count = 2};

    (void)state;
    assert_ptr_equal(kb_follow_entry_tenant(&cfg, &e), &s_tenants[0]);
    /* another tenant's tags under alpha's name: not ours */
    e.tags = s_other;
    assert_null(kb_follow_entry_tenant(&cfg, &e));
    /* no tags at all (a foreign secret with a look-alike name) */
    e.tags = NULL;
    e.tag_count = 0;
    assert_null(kb_follow_entry_tenant(&cfg, &e));
    e.tags = s_ours;
    e.tag_count = 2;
    /* scheduled for deletion, no ARN, no name */
    e.deleted_date = 1700000000;
    assert_null(kb_follow_entry_tenant(&cfg, &e));
    e.deleted_date = 0;
    e.arn = NULL;
    assert_null(kb_follow_entry_tenant(&cfg, &e));
    e.arn = ARN;
    e.name = NULL;
    assert_null(kb_follow_entry_tenant(&cfg, &e));
    /* a name only prefix-matching, an unknown tenant, the bare prefix, another prefix */
    e.name = "keybroker/alphabet";
    assert_null(kb_follow_entry_tenant(&cfg, &e));
    e.name = "keybroker/";
    assert_null(kb_follow_entry_tenant(&cfg, &e));
    e.name = "other/alpha";
    assert_null(kb_follow_entry_tenant(&cfg, &e));
    /* a tenant this broker rotates is not followed */
    e.name = "keybroker/beta";
    e.tags = s_beta;
    assert_null(kb_follow_entry_tenant(&cfg, &e));
    /* an empty secret_prefix: the name is the tenant */
    cfg.aws.secret_prefix = "";
    s_tenants[0].secret_name = "alpha";
    e.name = "alpha";
    e.tags = s_ours;
    assert_ptr_equal(kb_follow_entry_tenant(&cfg, &e), &s_tenants[0]);
    s_tenants[0].secret_name = "keybroker/alpha";
}

static void test_labels(void **state)
{
    static const char *const cur[] = {"AWSCURRENT"};
    static const char *const prev[] = {"AWSPREVIOUS", "custom"};
    static const char *const pend[] = {"AWSPENDING"};
    char toolong[80];
    struct kb_sm_version v[] = {
        {.version_id = "v1", .stages = prev, .stage_count = 2},
        {.version_id = "v3", .stages = pend, .stage_count = 1},
        {.version_id = "v2", .stages = cur, .stage_count = 1},
        {.version_id = "v0", .stages = NULL, .stage_count = 0},
    };
    char c[KB_FOLLOW_VERSION_SIZE], p[KB_FOLLOW_VERSION_SIZE];

    (void)state;
    kb_follow_labels(v, 4, c, p);
    assert_string_equal(c, "v2");
    assert_string_equal(p, "v1");
    kb_follow_labels(NULL, 0, c, p);
    assert_string_equal(c, "");
    assert_string_equal(p, "");
    memset(toolong, 'a', sizeof(toolong) - 1);
    toolong[sizeof(toolong) - 1] = '\0';
    v[2].version_id = toolong;
    kb_follow_labels(v, 4, c, p);
    assert_string_equal(c, "");
}

static struct kb_follow_known s_known(enum kb_follow_seen seen, const char *cur, const char *prev)
{
    struct kb_follow_known k = {.seen = seen};

    snprintf(k.current, sizeof(k.current), "%s", cur);
    snprintf(k.previous, sizeof(k.previous), "%s", prev);
    return k;
}

static struct kb_follow_listed s_listed(bool listed, const char *cur, const char *prev)
{
    struct kb_follow_listed l = {.listed = listed};

    snprintf(l.current, sizeof(l.current), "%s", cur);
    snprintf(l.previous, sizeof(l.previous), "%s", prev);
    return l;
}

static void test_step(void **state)
{
    struct kb_follow_known k = s_known(KB_FOLLOW_UNSEEN, "", ""), out;
    struct kb_follow_listed l;

    (void)state;
    /* not yet created by the rotator; then created without a key yet: still nothing */
    l = s_listed(false, "", "");
    assert_int_equal(kb_follow_step(&k, &l, &out), KB_FOLLOW_NONE);
    assert_int_equal(out.seen, KB_FOLLOW_UNSEEN);
    l = s_listed(true, "", "");
    assert_int_equal(kb_follow_step(&k, &l, &out), KB_FOLLOW_NONE);
    assert_int_equal(out.seen, KB_FOLLOW_UNSEEN);
    /* first seen with AWSCURRENT */
    l = s_listed(true, "v1", "");
    assert_int_equal(kb_follow_step(&k, &l, &k), KB_FOLLOW_PROVISIONED);
    assert_int_equal(k.seen, KB_FOLLOW_READY);
    assert_string_equal(k.current, "v1");
    /* the same again: nothing */
    assert_int_equal(kb_follow_step(&k, &l, &k), KB_FOLLOW_NONE);
    /* rotated: v2 current, v1 previous */
    l = s_listed(true, "v2", "v1");
    assert_int_equal(kb_follow_step(&k, &l, &k), KB_FOLLOW_ROTATED);
    assert_string_equal(k.current, "v2");
    assert_string_equal(k.previous, "v1");
    /* rolled back to the known previous */
    l = s_listed(true, "v1", "v2");
    assert_int_equal(kb_follow_step(&k, &l, &k), KB_FOLLOW_ROLLED_BACK);
    assert_string_equal(k.current, "v1");
    /* two rotations between polls: v3 is neither known version - rotated */
    l = s_listed(true, "v3", "v4");
    assert_int_equal(kb_follow_step(&k, &l, &k), KB_FOLLOW_ROTATED);
    /* AWSPREVIOUS moved alone: nothing to announce, but known */
    l = s_listed(true, "v3", "v9");
    assert_int_equal(kb_follow_step(&k, &l, &k), KB_FOLLOW_NONE);
    assert_string_equal(k.previous, "v9");
    /* listed without AWSCURRENT while ready: unchanged (AWS keeps AWSCURRENT on some version) */
    l = s_listed(true, "", "");
    assert_int_equal(kb_follow_step(&k, &l, &out), KB_FOLLOW_NONE);
    assert_int_equal(out.seen, KB_FOLLOW_READY);
    assert_string_equal(out.current, "v3");
    /* re-created under another ARN: provisioned */
    l = s_listed(true, "v3", "v9");
    l.arn_changed = true;
    assert_int_equal(kb_follow_step(&k, &l, &k), KB_FOLLOW_PROVISIONED);
    /* gone: revoked once, then nothing */
    l = s_listed(false, "", "");
    assert_int_equal(kb_follow_step(&k, &l, &k), KB_FOLLOW_REVOKED);
    assert_int_equal(k.seen, KB_FOLLOW_GONE);
    assert_string_equal(k.current, "");
    assert_int_equal(kb_follow_step(&k, &l, &k), KB_FOLLOW_NONE);
    /* provisioned again after a revoke */
    l = s_listed(true, "v7", "");
    assert_int_equal(kb_follow_step(&k, &l, &k), KB_FOLLOW_PROVISIONED);
    assert_int_equal(k.seen, KB_FOLLOW_READY);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry_tenant),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_step),
    };

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
