/*
 * test_verify_report.c - what the verifier reports besides its finding (broker/audit/
 * verify_report.c): the window is honest (a rewrite it says is possible really verifies), the
 * notes on lost records, clean stops and a stale log, and the order of the calls.
 */
#include "kb_test.h"

#include "common/err.h"
#include "kb_verify_test.h"

/* A short chain made record by record, for the rules the mutations above do not aim at. */
static void s_small(struct tl_gen *g, struct tl_set *set, enum kb_audit_mode mode, unsigned n)
{
    tl_gen_init(g, set, mode, vt_seed ^ 77);
    tl_gen_open(g, "start", true);
    for (unsigned i = 0; i < n; i++)
        tl_gen_random(g);
}

/* Records after the last seal can be rewritten with the current epoch key: the verifier cannot
 * see it, and says so (the window names them). */
static void test_window_is_honest(void **state)
{
    struct tl_gen g;
    struct tl_set set;
    struct vt_run run;
    size_t total, gi;

    (void)state;
    vt_failures = 0;
    tl_gen_chain(&g, &set, KB_AUDIT_MODE_HMAC, vt_seed ^ 6, 12, 3, 20, 90);
    total = tl_total(&set);
    gi = total - 2;
    assert_int_equal(tl_epoch(tl_at(&set, gi)), 11);
    free(tl_at(&set, gi)->s); /* replace the record wholesale: a different, valid body */
    tl_at(&set, gi)->s = strdup(tl_at(&set, gi - 1)->s);
    tl_at(&set, gi)->len = tl_at(&set, gi - 1)->len;
    tl_rechain(&g, &set, gi - 1, 11, true, NULL);
    vt_verify(&run, &g, &set, true, NULL);
    assert_int_equal(run.r.reason, KB_AUDIT_OK);
    assert_true(run.r.window_data.rewritable_from_seq <= tl_seq(tl_at(&set, gi)));
    kb_audit_verify_destroy(run.v);
    tl_set_free(&set);
}

static void test_result_notes(void **state)
{
    struct tl_gen g;
    struct tl_set set;
    struct kb_audit_record stop = {.event = "stop"};
    struct kb_audit_field lost = {"count", NULL, 17};
    struct kb_audit_record audit_lost = {.event = "audit_lost", .fields = &lost, .nfields = 1};
    struct kb_audit_verify_opts o = {.now_ms = TL_T0_MS + 100LL * 86400000};
    struct vt_run run;

    (void)state;
    s_small(&g, &set, KB_AUDIT_MODE_SHA256, 3);
    tl_gen_add(&g, &audit_lost);
    tl_gen_add(&g, &audit_lost);
    tl_gen_add(&g, &stop);
    assert_int_equal(kb_audit_verify_new(&o, &run.v), 0);
    vt_feed(run.v, &set);
    assert_int_equal(kb_audit_verify_finish(run.v, &run.r), 0);
    assert_int_equal(run.r.reason, KB_AUDIT_OK);
    assert_int_equal(run.r.records_lost, 34);
    assert_true(run.r.ends_with_stop);
    assert_true(run.r.stale);
    assert_non_null(strstr(run.r.window, "but is a clean stop"));
    /* the calls' order is checked */
    assert_int_equal(kb_audit_verify_finish(run.v, &run.r), KB_EINVAL);
    assert_int_equal(kb_audit_verify_begin_file(run.v, "x"), KB_EINVAL);
    kb_audit_verify_destroy(run.v);
    assert_int_equal(kb_audit_verify_new(&o, &run.v), 0);
    assert_int_equal(kb_audit_verify_line(run.v, "{}", 2, true), KB_EINVAL);
    assert_int_equal(kb_audit_verify_end_file(run.v), KB_EINVAL);
    assert_int_equal(kb_audit_verify_begin_file(run.v, "a"), 0);
    assert_int_equal(kb_audit_verify_begin_file(run.v, "b"), KB_EINVAL);
    assert_int_equal(kb_audit_verify_line(run.v, set.f[0].l[0].s, set.f[0].l[0].len, true), 0);
    assert_int_equal(kb_audit_verify_add_anchor_object(run.v, "k", "v", true, NULL, 0), KB_EINVAL);
    assert_int_equal(kb_audit_verify_finish(run.v, &run.r), KB_EINVAL);
    kb_audit_verify_destroy(run.v);
    o.chain_id = "not hex";
    assert_int_equal(kb_audit_verify_new(&o, &run.v), KB_EINVAL);
    assert_string_equal(kb_audit_reason_name(KB_AUDIT_LATER_KEY), "later_key");
    assert_string_equal(kb_audit_reason_name((enum kb_audit_reason)99), "unknown");
    tl_set_free(&set);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_is_honest),
        cmocka_unit_test(test_result_notes),
    };

    return KB_TEST_RUN(argc, argv, tests, vt_setup, NULL);
}
