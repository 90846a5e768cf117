/* test_reconcile.c - the pure decisions of provisioning: whose a resource is, missing tags, bucket
 * settings, which keys are current/orphans and what the key step does, whether a failed store
 * may hide a success, the probe's backoff, the background schedule's retry backoff and
 * reconcile jitter, and rotation's plan: which key may be deleted to free a slot (only the
 * superseded one past its windows), when the superseded key is deactivated and deleted, resuming
 * from AWSPENDING, rotate_every with its jitter. */
#include "kb_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "engine/reconcile.h"
#include "common/uuid.h"

#define NOW  1800000000
#define HOUR 3600

static void test_tags_ours(void **state)
{
    const struct kb_aws_tag ours[] = {
        {"team", "x"}, {"keybroker:managed", "true"}, {"keybroker:tenant", "billing"}};
    const struct kb_aws_tag other_tenant[] = {{"keybroker:managed", "true"},
                                              {"keybroker:tenant", "reports"}};
    const struct kb_aws_tag unmanaged[] = {{"keybroker:managed", "false"},
                                           {"keybroker:tenant", "billing"}};
    const struct kb_aws_tag case_differs[] = {{"keybroker:managed", "true"},
                                              {"keybroker:tenant", "Billing"}};

    assert_true(kb_rc_tags_ours(ours, 3, "billing"));
    assert_false(kb_rc_tags_ours(ours, 2, "billing"));
    assert_false(kb_rc_tags_ours(other_tenant, 2, "billing"));
    assert_false(kb_rc_tags_ours(unmanaged, 2, "billing"));
    assert_false(kb_rc_tags_ours(case_differs, 2, "billing"));
    assert_false(kb_rc_tags_ours(NULL, 0, "billing"));
}

static void test_tenant_tags_and_missing(void **state)
{
    struct kb_tag items[] = {{"team", "platform"}, {"app", "invoicer"}};
    struct kb_tenant t = {.name = "billing", .tags = {items, 2}};
    const struct kb_aws_tag have[] = {{"keybroker:tenant", "billing"},
                                      {"keybroker:managed", "true"},
                                      {"team", "finance"},
                                      {"other", "kept"}};
    struct kb_aws_tag *tags;
    size_t n, missing[4];

    assert_int_equal(kb_rc_tenant_tags(&t, &tags, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(tags[0].key, "keybroker:tenant");
    assert_string_equal(tags[0].value, "billing");
    assert_string_equal(tags[1].key, "keybroker:managed");
    assert_string_equal(tags[1].value, "true");
    assert_string_equal(tags[2].key, "team");
    assert_string_equal(tags[3].value, "invoicer");
    /* "team" has another value, "app" is absent; "other" is not ours to judge */
    assert_int_equal(kb_rc_tags_missing(have, 4, tags, n, missing), 2);
    assert_int_equal(missing[0], 2);
    assert_int_equal(missing[1], 3);
    assert_int_equal(kb_rc_tags_missing(tags, n, tags, n, missing), 0);
    free(tags);
}

static void test_bucket_settings(void **state)
{
    struct kb_s3_public_access_block pab = {true, true, true, true, NULL};
    struct kb_s3_bucket_encryption aes = {"AES256", NULL, false, NULL};
    struct kb_s3_bucket_encryption kms = {"aws:kms", "alias/kb", true, NULL};

    assert_true(kb_rc_pab_ok(&pab));
    pab.restrict_public_buckets = false;
    assert_false(kb_rc_pab_ok(&pab));
    assert_false(kb_rc_pab_ok(NULL));
    assert_true(kb_rc_encryption_ok(&aes, NULL));
    assert_false(kb_rc_encryption_ok(&aes, "alias/kb"));
    assert_false(kb_rc_encryption_ok(&kms, NULL));
    assert_true(kb_rc_encryption_ok(&kms, "alias/kb"));
    assert_false(kb_rc_encryption_ok(&kms, "alias/other"));
    kms.kms_key_id = NULL; /* aws:kms with the AWS managed key is not the configured key */
    assert_false(kb_rc_encryption_ok(&kms, "alias/kb"));
    assert_false(kb_rc_encryption_ok(NULL, NULL));
    assert_true(kb_rc_ownership_ok("BucketOwnerEnforced"));
    assert_false(kb_rc_ownership_ok("ObjectWriter"));
    assert_false(kb_rc_ownership_ok(NULL));
}

static void test_grants_list(void **state)
{
    char *list[] = {"s3:GetObject", "s3:List*"};
    char *get_only[] = {"s3:GetObject", "s3:ListBucketVersions"};
    char *any[] = {"S3:*"};
    struct kb_tenant t = {.access = KB_ACCESS_READ_ONLY};

    assert_true(kb_rc_grants_list(&t));
    t.access = KB_ACCESS_CUSTOM;
    t.actions = list;
    t.nactions = 2;
    assert_true(kb_rc_grants_list(&t));
    t.actions = get_only;
    assert_false(kb_rc_grants_list(&t));
    t.actions = any;
    t.nactions = 1;
    assert_true(kb_rc_grants_list(&t));
}

/* A snapshot of tenant "billing" with keys AKIA0..; label[i] puts key i's version under a label
 * ("C", "P", "V" for previous, "" none). */
static void snap(struct kb_rc_snapshot *s, size_t n, const char *const *labels,
                 const time_t *created, const enum kb_iam_key_status *status)
{
    memset(s, 0, sizeof(*s));
    s->tenant = "billing";
    s->nkeys = n;
    for (size_t i = 0; i < n; i++) {
        char version[KB_UUID_STR_SIZE];

        snprintf(s->keys[i].id, sizeof(s->keys[i].id), "AKIA%016zu", i);
        s->keys[i].created = created[i];
        s->keys[i].status = status != NULL ? status[i] : KB_IAM_KEY_ACTIVE;
        assert_int_equal(kb_uuid_key_version("billing", s->keys[i].id, version), 0);
        if (strcmp(labels[i], "C") == 0)
            snprintf(s->current, sizeof(s->current), "%s", version);
        else if (strcmp(labels[i], "P") == 0)
            snprintf(s->pending, sizeof(s->pending), "%s", version);
        else if (strcmp(labels[i], "V") == 0)
            snprintf(s->previous, sizeof(s->previous), "%s", version);
    }
}

static void test_plan_fresh_and_ready(void **state)
{
    struct kb_rc_snapshot s;
    struct kb_rc_plan p;
    const char *labels[] = {"C", ""};
    const time_t old[] = {NOW - 5 * HOUR, NOW - 5 * HOUR};

    snap(&s, 0, labels, old, NULL);
    assert_int_equal(kb_rc_plan_keys(&s, NOW, 600, &p), 0);
    assert_int_equal(p.action, KB_RC_CREATE);
    assert_int_equal(p.current, -1);
    assert_int_equal(p.ndel, 0);

    snap(&s, 1, labels, old, NULL);
    assert_int_equal(kb_rc_plan_keys(&s, NOW, 600, &p), 0);
    assert_int_equal(p.action, KB_RC_READY);
    assert_int_equal(p.current, 0);
    assert_int_equal(p.referenced, 1u);
}

static void test_plan_orphans(void **state)
{
    struct kb_rc_snapshot s;
    struct kb_rc_plan p;
    const char *labels[] = {"C", ""};
    const time_t old_orphan[] = {NOW - 5 * HOUR, NOW - 601};
    const time_t young_orphan[] = {NOW - 5 * HOUR, NOW - 30};
    const time_t future[] = {NOW - 5 * HOUR, NOW + 60};

    /* current + an old orphan: ready, and the orphan goes */
    snap(&s, 2, labels, old_orphan, NULL);
    assert_int_equal(kb_rc_plan_keys(&s, NOW, 600, &p), 0);
    assert_int_equal(p.action, KB_RC_READY);
    assert_int_equal(p.ndel, 1);
    assert_int_equal(p.del[0], 1);
    assert_int_equal(p.nyoung, 0);

    /* exactly min_age old is old enough */
    assert_int_equal(kb_rc_plan_keys(&s, NOW - 1, 600, &p), 0);
    assert_int_equal(p.ndel, 1);
    assert_int_equal(kb_rc_plan_keys(&s, NOW - 2, 600, &p), 0);
    assert_int_equal(p.ndel, 0);
    assert_int_equal(p.nyoung, 1);

    /* a young orphan is left alone (a concurrent creator may be about to store it) */
    snap(&s, 2, labels, young_orphan, NULL);
    assert_int_equal(kb_rc_plan_keys(&s, NOW, 600, &p), 0);
    assert_int_equal(p.action, KB_RC_READY);
    assert_int_equal(p.ndel, 0);
    assert_int_equal(p.nyoung, 1);
    assert_int_equal(p.waiting, 1);

    /* clock skew: a key "from the future" is young */
    snap(&s, 2, labels, future, NULL);
    assert_int_equal(kb_rc_plan_keys(&s, NOW, 600, &p), 0);
    assert_int_equal(p.ndel, 0);
    assert_int_equal(p.nyoung, 1);
}

static void test_plan_slots(void **state)
{
    struct kb_rc_snapshot s;
    struct kb_rc_plan p;
    const char *none[] = {"", ""};
    const char *prev_only[] = {"V", ""};
    const char *pending_prev[] = {"P", "V"};
    const char *current_inactive[] = {"C", ""};
    const time_t young[] = {NOW - 10, NOW - 20};
    const time_t mixed[] = {NOW - 10, NOW - HOUR};
    const enum kb_iam_key_status inactive[] = {KB_IAM_KEY_INACTIVE, KB_IAM_KEY_ACTIVE};

    /* two young orphans (a crash after CreateAccessKey, twice): wait */
    snap(&s, 2, none, young, NULL);
    assert_int_equal(kb_rc_plan_keys(&s, NOW, 600, &p), 0);
    assert_int_equal(p.action, KB_RC_WAIT);
    assert_int_equal(p.waiting, 0);
    assert_int_equal(p.nyoung, 2);

    /* one young, one old orphan: the old one is deleted, which frees a slot */
    snap(&s, 2, none, mixed, NULL);
    assert_int_equal(kb_rc_plan_keys(&s, NOW, 600, &p), 0);
    assert_int_equal(p.action, KB_RC_CREATE);
    assert_int_equal(p.ndel, 1);
    assert_int_equal(p.del[0], 1);

    /* AWSPREVIOUS only (current gone): referenced, one slot left */
    snap(&s, 2, prev_only, young, NULL);
    assert_int_equal(kb_rc_plan_keys(&s, NOW, 600, &p), 0);
    assert_int_equal(p.action, KB_RC_WAIT);
    assert_int_equal(p.referenced, 1u);
    snap(&s, 1, prev_only, young, NULL);
    assert_int_equal(kb_rc_plan_keys(&s, NOW, 600, &p), 0);
    assert_int_equal(p.action, KB_RC_CREATE);

    /* both referenced, no AWSCURRENT key: only rotation can free a slot */
    snap(&s, 2, pending_prev, mixed, NULL);
    assert_int_equal(kb_rc_plan_keys(&s, NOW, 600, &p), 0);
    assert_int_equal(p.action, KB_RC_NO_SLOT);
    assert_int_equal(p.referenced, 3u);

    /* AWSCURRENT holds an inactive key: a new one is needed */
    snap(&s, 1, current_inactive, mixed, inactive);
    assert_int_equal(kb_rc_plan_keys(&s, NOW, 600, &p), 0);
    assert_int_equal(p.action, KB_RC_CREATE);
    assert_int_equal(p.current, 0);

    /* versions of another tenant do not reference our keys */
    snap(&s, 1, current_inactive, mixed, NULL);
    s.tenant = "reports";
    assert_int_equal(kb_rc_plan_keys(&s, NOW, 600, &p), 0);
    assert_int_equal(p.current, -1);
    assert_int_equal(p.nyoung, 1);
    assert_int_equal(kb_rc_plan_keys(NULL, NOW, 600, &p), KB_EINVAL);
}

static struct kb_aws_error err(int e, long status, const char *code)
{
    struct kb_aws_error x;

    memset(&x, 0, sizeof(x));
    x.err = e;
    x.status = status;
    snprintf(x.code, sizeof(x.code), "%s", code);
    return x;
}

static void test_store_surely_failed(void **state)
{
    struct kb_aws_error e;

    e = err(KB_EAWS, 400, "ValidationException");
    assert_true(kb_rc_store_surely_failed(&e));
    e = err(KB_EAWS, 403, "AccessDenied");
    assert_true(kb_rc_store_surely_failed(&e));
    e = err(KB_EAWS, 400, "ResourceExistsException");
    assert_true(kb_rc_store_surely_failed(&e));
    e = err(KB_EAWS, 400, "ThrottlingException");
    assert_false(kb_rc_store_surely_failed(&e));
    e = err(KB_EAWS, 429, "TooManyRequests");
    assert_false(kb_rc_store_surely_failed(&e));
    e = err(KB_EAWS, 500, "InternalServiceError");
    assert_false(kb_rc_store_surely_failed(&e));
    e = err(KB_EAWS, 503, "ServiceUnavailable");
    assert_false(kb_rc_store_surely_failed(&e));
    e = err(KB_ENET, 0, "");
    assert_false(kb_rc_store_surely_failed(&e));
    e = err(KB_ETIMEDOUT, 0, "");
    assert_false(kb_rc_store_surely_failed(&e));
    assert_false(kb_rc_store_surely_failed(NULL));
    e = err(KB_EAWS, 404, "NoSuchEntity");
    assert_true(kb_rc_is_code(&e, "NoSuchEntity"));
    assert_false(kb_rc_is_code(&e, "NoSuchEntit"));
    e.err = KB_ENET;
    assert_false(kb_rc_is_code(&e, "NoSuchEntity"));
}

static void test_probe_backoff(void **state)
{
    /* equal jitter: [step/2, step], step 250 ms doubling, capped at 5 s */
    assert_int_equal(kb_rc_probe_backoff_ms(0, 0), 125);
    assert_int_equal(kb_rc_probe_backoff_ms(0, UINT32_MAX), 250);
    assert_int_equal(kb_rc_probe_backoff_ms(1, 0), 250);
    assert_int_equal(kb_rc_probe_backoff_ms(1, UINT32_MAX), 500);
    assert_int_equal(kb_rc_probe_backoff_ms(4, UINT32_MAX), 4000);
    assert_int_equal(kb_rc_probe_backoff_ms(5, UINT32_MAX), 5000);
    assert_int_equal(kb_rc_probe_backoff_ms(5, 0), 2500);
    assert_int_equal(kb_rc_probe_backoff_ms(1000, UINT32_MAX), 5000);
    for (uint32_t r = 0; r < 4000000000u; r += 400000000u) {
        uint64_t d = kb_rc_probe_backoff_ms(2, r);

        assert_true(d >= 500 && d <= 1000);
    }
}

static void test_retry_backoff(void **state)
{
    /* retry_initial 5 s, retry_max 300 s: the step doubles per failure, +-25% around it */
    assert_int_equal(kb_rc_retry_delay_ms(1, 5, 300, 0), 3750);
    assert_int_equal(kb_rc_retry_delay_ms(1, 5, 300, UINT32_MAX), 6250);
    assert_int_equal(kb_rc_retry_delay_ms(0, 5, 300, 0), 3750); /* 0 counts as the first */
    assert_int_equal(kb_rc_retry_delay_ms(2, 5, 300, 0), 7500);
    assert_int_equal(kb_rc_retry_delay_ms(2, 5, 300, UINT32_MAX), 12500);
    assert_int_equal(kb_rc_retry_delay_ms(3, 5, 300, UINT32_MAX / 2), 20000 - 1);
    /* 5 * 2^6 = 320 s > 300: capped, and the jitter never goes past the cap */
    assert_int_equal(kb_rc_retry_delay_ms(7, 5, 300, 0), 225000);
    assert_int_equal(kb_rc_retry_delay_ms(7, 5, 300, UINT32_MAX), 300000);
    assert_int_equal(kb_rc_retry_delay_ms(6, 5, 300, UINT32_MAX), 200000); /* 160 s + 25% */
    assert_int_equal(kb_rc_retry_delay_ms(6, 5, 300, 0), 120000);
    /* many failures: no overflow, still the cap */
    assert_int_equal(kb_rc_retry_delay_ms(UINT32_MAX, 5, 300, UINT32_MAX), 300000);
    assert_int_equal(kb_rc_retry_delay_ms(4000000, 3600, 86400, 0), 64800000);
    /* retry_initial == retry_max (the test config's 1s/1s) and initial > max clamp to max */
    assert_int_equal(kb_rc_retry_delay_ms(1, 1, 1, 0), 750);
    assert_int_equal(kb_rc_retry_delay_ms(9, 1, 1, UINT32_MAX), 1000);
    assert_int_equal(kb_rc_retry_delay_ms(1, 10, 2, UINT32_MAX), 2000);
    /* the jitter range, across rnd, and a sequence that only grows (in its bounds) up to the cap */
    for (unsigned n = 1; n < 12; n++) {
        uint64_t step = 1000, lo, hi;

        for (unsigned i = 1; i < n && step < 2000; i++)
            step *= 2;
        step = step > 2000 ? 2000 : step;
        lo = step * 3 / 4;
        hi = step * 5 / 4 > 2000 ? 2000 : step * 5 / 4;
        for (uint64_t r = 0; r <= UINT32_MAX; r += 104729u * 997u) {
            uint64_t d = kb_rc_retry_delay_ms(n, 1, 2, (uint32_t)r);

            assert_true(d >= lo && d <= hi);
        }
    }
}

static void test_reconcile_interval_jitter(void **state)
{
    assert_int_equal(kb_rc_reconcile_delay_ms(0, UINT32_MAX), 0); /* never */
    assert_int_equal(kb_rc_reconcile_delay_ms(3600, 0), 3240000);
    assert_int_equal(kb_rc_reconcile_delay_ms(3600, UINT32_MAX), 3960000);
    /* the longest interval (30 days) does not overflow */
    assert_int_equal(kb_rc_reconcile_delay_ms(30 * 86400, UINT32_MAX), 30ull * 86400 * 1100);
    for (uint64_t r = 0; r <= UINT32_MAX; r += 104729u * 997u) {
        uint64_t d = kb_rc_reconcile_delay_ms(60, (uint32_t)r);

        assert_true(d >= 54000 && d <= 66000);
    }
}

/* -- rotation ---------------------------------------------------------------------------------- */

#define OVERLAP 3600
#define RETIRE  86400

static struct kb_rc_rotate_in rin(const struct kb_rc_snapshot *s, bool requested)
{
    return (struct kb_rc_rotate_in){.snap = s,
                                    .now = NOW,
                                    .overlap = OVERLAP,
                                    .retire = RETIRE,
                                    .min_age = 600,
                                    .rotate_every = 0,
                                    .requested = requested};
}

static void test_superseded_tag(void **state)
{
    char value[KB_RC_SUPERSEDED_SIZE];
    struct kb_aws_tag tags[] = {{"keybroker:managed", "true"}, {KB_RC_TAG_SUPERSEDED, value}};
    time_t when = 0;

    kb_rc_superseded_value("v-1", NOW, value);
    assert_string_equal(value, "v-1 1800000000");
    assert_true(kb_rc_superseded_at(tags, 2, "v-1", &when));
    assert_int_equal(when, NOW);
    /* another version, a prefix of it, no tag, garbage: unknown */
    assert_false(kb_rc_superseded_at(tags, 2, "v-2", &when));
    assert_false(kb_rc_superseded_at(tags, 2, "v-", &when));
    assert_false(kb_rc_superseded_at(tags, 2, "", &when));
    assert_false(kb_rc_superseded_at(tags, 1, "v-1", &when));
    tags[1].value = "v-1 12x";
    assert_false(kb_rc_superseded_at(tags, 2, "v-1", &when));
}

static void test_rotate_frees_a_slot_only_by_the_superseded_key(void **state)
{
    struct kb_rc_snapshot s;
    struct kb_rc_rotate_plan p;
    struct kb_rc_rotate_in in;
    const char *cv[] = {"C", "V"}, *c_[] = {"C", ""};
    const time_t t[] = {NOW - 5 * HOUR, NOW - 9 * HOUR};
    const time_t young[] = {NOW - 5 * HOUR, NOW - 30};
    const enum kb_iam_key_status st[] = {KB_IAM_KEY_ACTIVE, KB_IAM_KEY_INACTIVE};

    /* only the current key: a slot is free */
    snap(&s, 1, c_, t, NULL);
    in = rin(&s, true);
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.action, KB_RC_ROT_CREATE);
    assert_int_equal(p.window, KB_RC_WIN_NONE);
    assert_int_equal(p.current, 0);
    assert_int_equal(p.next_after, NOW + OVERLAP);

    /* the superseded key past overlap + retire: deleted first, then a new key */
    snap(&s, 2, cv, t, st);
    in = rin(&s, true);
    in.superseded_known = true;
    in.superseded_at = NOW - OVERLAP - RETIRE;
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.window, KB_RC_WIN_DELETE);
    assert_int_equal(p.previous, 1);
    assert_int_equal(p.action, KB_RC_ROT_CREATE);

    /* ...one second earlier it is kept for rollback: refused, nothing deleted */
    in.superseded_at = NOW - OVERLAP - RETIRE + 1;
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.window, KB_RC_WIN_NONE);
    assert_int_equal(p.action, KB_RC_ROT_REFUSE);
    assert_int_equal(p.refusal, KB_RC_REFUSE_PREVIOUS_KEPT);
    assert_int_equal(p.blocker, 1);
    assert_int_equal(p.next, NOW + 1);

    /* a superseded key whose supersede time is unknown: recorded now, never deleted */
    in.superseded_known = false;
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.window, KB_RC_WIN_RECORD);
    assert_int_equal(p.action, KB_RC_ROT_REFUSE);

    /* an unreferenced key, however old, is never deleted by rotation ("never the oldest") */
    snap(&s, 2, c_, t, NULL);
    in = rin(&s, true);
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.window, KB_RC_WIN_NONE);
    assert_int_equal(p.action, KB_RC_ROT_REFUSE);
    assert_int_equal(p.refusal, KB_RC_REFUSE_ORPHAN);
    assert_int_equal(p.blocker, 1);

    /* a young one (maybe another broker's key in flight): refused until it comes of age */
    snap(&s, 2, c_, young, NULL);
    in = rin(&s, true);
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.action, KB_RC_ROT_REFUSE);
    assert_int_equal(p.refusal, KB_RC_REFUSE_YOUNG_ORPHAN);
    assert_int_equal(p.blocker, 1);
    assert_int_equal(p.next, NOW - 30 + 600);

    /* nothing to rotate from */
    snap(&s, 1, (const char *[]){""}, t, NULL);
    in = rin(&s, true);
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.action, KB_RC_ROT_REFUSE);
    assert_int_equal(p.refusal, KB_RC_REFUSE_NO_CURRENT);
    in.requested = false;
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.action, KB_RC_ROT_NONE);
    assert_int_equal(p.next, 0);
}

static void test_rotate_windows(void **state)
{
    struct kb_rc_snapshot s;
    struct kb_rc_rotate_plan p;
    struct kb_rc_rotate_in in;
    const char *cv[] = {"C", "V"};
    const time_t t[] = {NOW - 5 * HOUR, NOW - 9 * HOUR};
    const enum kb_iam_key_status inactive[] = {KB_IAM_KEY_ACTIVE, KB_IAM_KEY_INACTIVE};

    snap(&s, 2, cv, t, NULL);
    in = rin(&s, false);
    in.superseded_known = true;
    /* inside the overlap: nothing yet, the next pass at its end */
    in.superseded_at = NOW - OVERLAP + 10;
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.window, KB_RC_WIN_NONE);
    assert_int_equal(p.action, KB_RC_ROT_NONE);
    assert_int_equal(p.window_at, NOW + 10);
    assert_int_equal(p.next, NOW + 10);
    /* the overlap is over: deactivate, then the retire window */
    in.superseded_at = NOW - OVERLAP;
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.window, KB_RC_WIN_DEACTIVATE);
    assert_int_equal(p.next, NOW);
    assert_int_equal(p.next_after, NOW + RETIRE);
    /* inactive within retire: nothing until it ends */
    snap(&s, 2, cv, t, inactive);
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.window, KB_RC_WIN_NONE);
    assert_int_equal(p.next, NOW + RETIRE);
    /* retire over: deleted (also straight from active, after a long outage) */
    in.superseded_at = NOW - OVERLAP - RETIRE;
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.window, KB_RC_WIN_DELETE);
    assert_int_equal(p.action, KB_RC_ROT_NONE); /* not requested, not due */
    snap(&s, 2, cv, t, NULL);
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.window, KB_RC_WIN_DELETE);
    /* unknown supersede time: recorded as now, the windows count from there */
    in.superseded_known = false;
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.window, KB_RC_WIN_RECORD);
    assert_int_equal(p.next, NOW);
    assert_int_equal(p.next_after, NOW + OVERLAP);
    /* windows of 0: deleted at once (deactivation and deletion both due) */
    in.superseded_known = true;
    in.superseded_at = NOW;
    in.overlap = in.retire = 0;
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.window, KB_RC_WIN_DELETE);
}

/* Every subscriber acknowledged the new version: the superseded key is deactivated at once,
 * inside the overlap; its deletion still waits for overlap + retire from the supersede time. */
static void test_rotate_cut_over_on_ack(void **state)
{
    struct kb_rc_snapshot s;
    struct kb_rc_rotate_plan p;
    struct kb_rc_rotate_in in;
    const char *cv[] = {"C", "V"};
    const time_t t[] = {NOW - 5 * HOUR, NOW - 9 * HOUR};
    const enum kb_iam_key_status inactive[] = {KB_IAM_KEY_ACTIVE, KB_IAM_KEY_INACTIVE};

    snap(&s, 2, cv, t, NULL);
    in = rin(&s, false);
    in.superseded_known = true;
    in.superseded_at = NOW - 10;
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.window, KB_RC_WIN_NONE); /* without the acks: the overlap runs */
    in.cut_over = true;
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.window, KB_RC_WIN_DEACTIVATE);
    assert_int_equal(p.action, KB_RC_ROT_NONE);
    assert_int_equal(p.next, NOW);
    assert_int_equal(p.next_after, NOW - 10 + OVERLAP + RETIRE);
    /* already inactive: nothing more until retire is over */
    snap(&s, 2, cv, t, inactive);
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.window, KB_RC_WIN_NONE);
    assert_int_equal(p.next, NOW - 10 + OVERLAP + RETIRE);
    /* supersede time unknown: recorded first, the next pass (now) deactivates */
    snap(&s, 2, cv, t, NULL);
    in.superseded_known = false;
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.window, KB_RC_WIN_RECORD);
    assert_int_equal(p.next_after, NOW);
}

static void test_label_keys(void **state)
{
    struct kb_rc_snapshot s;
    struct kb_rc_labels l;
    const char *labels[] = {"V", "", "C", "P"};
    const time_t t[] = {NOW, NOW, NOW, NOW};
    struct kb_iam_access_key_meta metas[2] = {
        {.access_key_id = "AKIAONE", .create_date = NOW},
        {.access_key_id = "AKIATWO", .create_date = NOW - 1, .status = KB_IAM_KEY_INACTIVE}};
    struct kb_iam_access_keys ks = {.keys = metas, .count = 2};

    snap(&s, 4, labels, t, NULL);
    assert_int_equal(kb_rc_label_keys(&s, &l), 0);
    assert_int_equal(l.previous, 0);
    assert_int_equal(l.current, 2);
    assert_int_equal(l.pending, 3);
    assert_int_equal(l.referenced, 0xdu);
    assert_int_equal(kb_rc_label_keys(NULL, &l), KB_EINVAL);
    /* ListAccessKeys into a snapshot: appended, bounded */
    s.nkeys = KB_RC_MAX_KEYS - 1;
    kb_rc_snap_keys(&s, &ks);
    assert_int_equal(s.nkeys, KB_RC_MAX_KEYS);
    assert_string_equal(s.keys[KB_RC_MAX_KEYS - 1].id, "AKIAONE");
    s.nkeys = 0;
    kb_rc_snap_keys(&s, &ks);
    assert_int_equal(s.nkeys, 2);
    assert_string_equal(s.keys[1].id, "AKIATWO");
    assert_int_equal(s.keys[1].status, KB_IAM_KEY_INACTIVE);
    assert_int_equal(s.keys[1].created, NOW - 1);
}

static void test_rollback_plan(void **state)
{
    struct kb_rc_snapshot s;
    struct kb_rc_rollback_plan p;
    const time_t t[] = {NOW - 5 * HOUR, NOW - 9 * HOUR};
    const enum kb_iam_key_status inactive[] = {KB_IAM_KEY_ACTIVE, KB_IAM_KEY_INACTIVE};

    /* inside the overlap: the old key is active, only the label moves */
    snap(&s, 2, (const char *[]){"C", "V"}, t, NULL);
    assert_int_equal(kb_rc_plan_rollback(&s, &p), 0);
    assert_int_equal(p.refusal, KB_RC_RB_OK);
    assert_int_equal(p.previous, 1);
    assert_int_equal(p.current, 0);
    assert_false(p.reactivate);
    /* deactivated, not deleted: reactivated first */
    snap(&s, 2, (const char *[]){"C", "V"}, t, inactive);
    assert_int_equal(kb_rc_plan_rollback(&s, &p), 0);
    assert_int_equal(p.refusal, KB_RC_RB_OK);
    assert_true(p.reactivate);
    /* deleted: the version is still AWSPREVIOUS but its key is gone */
    snap(&s, 2, (const char *[]){"C", "V"}, t, NULL);
    s.nkeys = 1;
    assert_int_equal(kb_rc_plan_rollback(&s, &p), 0);
    assert_int_equal(p.refusal, KB_RC_RB_DELETED);
    /* never rotated */
    snap(&s, 1, (const char *[]){"C"}, t, NULL);
    assert_int_equal(kb_rc_plan_rollback(&s, &p), 0);
    assert_int_equal(p.refusal, KB_RC_RB_NO_PREVIOUS);
    /* a rotation in flight */
    snap(&s, 2, (const char *[]){"C", "P"}, t, NULL);
    snprintf(s.previous, sizeof(s.previous), "%s", "some-version");
    assert_int_equal(kb_rc_plan_rollback(&s, &p), 0);
    assert_int_equal(p.refusal, KB_RC_RB_IN_FLIGHT);
    /* AWSCURRENT's key gone */
    snap(&s, 2, (const char *[]){"V", "C"}, t, NULL);
    s.nkeys = 1;
    assert_int_equal(kb_rc_plan_rollback(&s, &p), 0);
    assert_int_equal(p.refusal, KB_RC_RB_NO_CURRENT);
    assert_int_equal(kb_rc_plan_rollback(&s, NULL), KB_EINVAL);
}

static void test_rotate_resumes_from_pending(void **state)
{
    struct kb_rc_snapshot s;
    struct kb_rc_rotate_plan p;
    struct kb_rc_rotate_in in;
    const char *cp[] = {"C", "P"}, *c_[] = {"C", ""};
    const time_t t[] = {NOW - 5 * HOUR, NOW - 20};

    /* AWSPENDING names an existing key: resumed, asked for or not */
    snap(&s, 2, cp, t, NULL);
    in = rin(&s, false);
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.action, KB_RC_ROT_RESUME);
    assert_int_equal(p.pending, 1);
    assert_int_equal(p.next, NOW);
    in.requested = true;
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.action, KB_RC_ROT_RESUME);

    /* AWSPENDING left on the AWSCURRENT version (killed between the move and the removal) */
    snap(&s, 1, c_, t, NULL);
    snprintf(s.pending, sizeof(s.pending), "%s", s.current);
    in = rin(&s, false);
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.action, KB_RC_ROT_FINISH);
    assert_false(p.stale_pending);

    /* AWSPENDING on a version whose key is gone: the label goes, then as asked */
    snap(&s, 1, c_, t, NULL);
    snprintf(s.pending, sizeof(s.pending), "%s", "0d7e0000-0000-5000-8000-000000000000");
    in = rin(&s, false);
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_true(p.stale_pending);
    assert_int_equal(p.action, KB_RC_ROT_NONE);
    assert_int_equal(p.next, NOW);
    in.requested = true;
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_true(p.stale_pending);
    assert_int_equal(p.action, KB_RC_ROT_CREATE);
}

static void test_rotate_every_with_jitter(void **state)
{
    struct kb_rc_snapshot s;
    struct kb_rc_rotate_plan p;
    struct kb_rc_rotate_in in;
    const char *c_[] = {"C"};
    const time_t t[] = {NOW - 10 * 86400};
    uint64_t every = 30 * 86400, j = kb_rc_rotate_jitter("billing", "AKIA0000000000000000", every);
    uint64_t other = kb_rc_rotate_jitter("reports", "AKIA0000000000000000", every);

    /* fixed per (tenant, key), within a tenth of the period, and it does spread tenants */
    assert_true(j <= every / 10);
    assert_int_equal(j, kb_rc_rotate_jitter("billing", "AKIA0000000000000000", every));
    assert_true(j != other);
    assert_int_equal(kb_rc_rotate_jitter("billing", "AKIA0000000000000000", 0), 0);

    snap(&s, 1, c_, t, NULL);
    in = rin(&s, false);
    in.rotate_every = every;
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.action, KB_RC_ROT_NONE);
    assert_int_equal(p.rotate_at, NOW - 10 * 86400 + (time_t)every + (time_t)j);
    assert_int_equal(p.next, p.rotate_at);
    /* due: rotated by the schedule, without a request */
    in.now = p.rotate_at;
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.action, KB_RC_ROT_CREATE);
    assert_int_equal(p.next, in.now);
    /* 0: never */
    in.rotate_every = 0;
    assert_int_equal(kb_rc_plan_rotate(&in, &p), 0);
    assert_int_equal(p.action, KB_RC_ROT_NONE);
    assert_int_equal(p.next, 0);
    assert_int_equal(kb_rc_plan_rotate(NULL, &p), KB_EINVAL);
}

int main(int argc, char **argv)
{
    /* One case per line: CMake registers each line as a test. */
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tags_ours),
        cmocka_unit_test(test_tenant_tags_and_missing),
        cmocka_unit_test(test_bucket_settings),
        cmocka_unit_test(test_grants_list),
        cmocka_unit_test(test_plan_fresh_and_ready),
        cmocka_unit_test(test_plan_orphans),
        cmocka_unit_test(test_plan_slots),
        cmocka_unit_test(test_store_surely_failed),
        cmocka_unit_test(test_probe_backoff),
        cmocka_unit_test(test_retry_backoff),
        cmocka_unit_test(test_reconcile_interval_jitter),
        cmocka_unit_test(test_superseded_tag),
        cmocka_unit_test(test_rotate_frees_a_slot_only_by_the_superseded_key),
        cmocka_unit_test(test_rotate_windows),
        cmocka_unit_test(test_rotate_resumes_from_pending),
        cmocka_unit_test(test_rotate_cut_over_on_ack),
        cmocka_unit_test(test_label_keys),
        cmocka_unit_test(test_rollback_plan),
        cmocka_unit_test(test_rotate_every_with_jitter),
    };
    /* clang-format on */

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
