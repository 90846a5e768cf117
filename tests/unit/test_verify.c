/*
 * test_verify.c - the audit verifier (broker/audit/verify.c): intact chains and rotated sets
 * pass and say what they do not protect; every kind of tampering is found at exactly the line
 * it begins at (the property tests: thousands of random mutations of realistic chains, each
 * expected line computed from the mutation); forward security (with only the current epoch key,
 * no earlier record can be changed).
 *
 * Chains are made by kb_audit_gen.h the way the writer makes them, with record.c and chain.c.
 * The seed is fixed (KB_AUDIT_SEED overrides it) and printed with every failure.
 */
#include "kb_test.h"

#include "common/err.h"
#include "kb_verify_test.h"

/* The standard chain of a property test: 12 epochs of 20..90 records over 3 files. */
static void s_chain(struct tl_gen *g, struct tl_set *set, enum kb_audit_mode mode, uint64_t salt)
{
    tl_gen_chain(g, set, mode, vt_seed ^ salt, 12, 3, 20, 90);
}

/* -- intact --------------------------------------------------------------------------------- */

static void test_intact_hmac_rotated(void **state)
{
    struct tl_gen g;
    struct tl_set set;
    struct vt_run run;

    (void)state;
    vt_failures = 0;
    s_chain(&g, &set, KB_AUDIT_MODE_HMAC, 1);
    vt_verify(&run, &g, &set, true, NULL);
    assert_int_equal(run.r.reason, KB_AUDIT_OK);
    assert_true(run.r.have_chain && run.r.tags_verified && run.r.sealed);
    assert_int_equal(run.r.mode, KB_AUDIT_MODE_HMAC);
    assert_string_equal(run.r.chain_id, g.chain_id);
    assert_string_equal(run.r.key_id, g.key_id);
    assert_int_equal(run.r.files, 3);
    assert_int_equal(run.r.records, tl_total(&set));
    assert_int_equal(run.r.first_seq, 1);
    assert_int_equal(run.r.last_seq, g.seq);
    assert_int_equal(run.r.first_epoch, 0);
    assert_int_equal(run.r.last_epoch, 11);
    assert_int_equal(run.r.seals, 11);
    assert_int_equal(run.r.last_seal_epoch, 10);
    assert_int_equal(run.r.epoch_seconds, 600);
    assert_false(run.r.anchored);
    /* the current epoch can be rewritten with its key; any clean cut is invisible */
    assert_true(run.r.window_data.needs_epoch_key);
    assert_int_equal(run.r.window_data.rewritable_from_seq, run.r.last_seal_seq + 1);
    assert_int_equal(run.r.window_data.droppable_from_seq, 1);
    assert_non_null(strstr(run.r.window, "current epoch key"));
    assert_non_null(strstr(run.r.window, "Without anchors"));
    kb_audit_verify_destroy(run.v);
    tl_set_free(&set);
}

static void test_intact_single_file_and_modes(void **state)
{
    struct tl_gen g;
    struct tl_set set;
    struct vt_run run;

    (void)state;
    vt_failures = 0;
    /* one file, hmac-sha256, with and without the key */
    tl_gen_chain(&g, &set, KB_AUDIT_MODE_HMAC, vt_seed ^ 2, 3, 1, 5, 30);
    vt_verify(&run, &g, &set, true, NULL);
    assert_int_equal(run.r.reason, KB_AUDIT_OK);
    assert_int_equal(run.r.files, 1);
    kb_audit_verify_destroy(run.v);
    vt_verify(&run, &g, &set, false, NULL);
    assert_int_equal(run.r.reason, KB_AUDIT_OK);
    assert_false(run.r.tags_verified);
    assert_false(run.r.window_data.needs_epoch_key);
    assert_int_equal(run.r.window_data.rewritable_from_seq, 1);
    assert_non_null(strstr(run.r.window, "tags were not checked"));
    kb_audit_verify_destroy(run.v);
    tl_set_free(&set);
    /* sha256: the hash chain only */
    tl_gen_chain(&g, &set, KB_AUDIT_MODE_SHA256, vt_seed ^ 3, 4, 2, 5, 30);
    vt_verify(&run, &g, &set, false, NULL);
    assert_int_equal(run.r.reason, KB_AUDIT_OK);
    assert_int_equal(run.r.mode, KB_AUDIT_MODE_SHA256);
    assert_string_equal(run.r.key_id, "");
    assert_non_null(strstr(run.r.window, "sha256 chain"));
    assert_non_null(strstr(run.r.window, "rewrite every record"));
    kb_audit_verify_destroy(run.v);
    /* a sha256 log given to a verifier with a key: a downgrade */
    vt_verify(&run, &g, &set, true, NULL);
    assert_int_equal(run.r.reason, KB_AUDIT_WRONG_KEY);
    assert_int_equal(run.r.line, 1);
    kb_audit_verify_destroy(run.v);
    tl_set_free(&set);
}

static void test_intact_partial_set(void **state)
{
    struct tl_gen g;
    struct tl_set set;
    struct vt_run run;

    (void)state;
    vt_failures = 0;
    /* logrotate removed the oldest file: the rest verifies from its audit_open (K_e derived) */
    s_chain(&g, &set, KB_AUDIT_MODE_HMAC, 4);
    for (size_t j = 0; j < set.f[0].n; j++)
        free(set.f[0].l[j].s);
    free(set.f[0].l);
    memmove(&set.f[0], &set.f[1], (set.nf - 1) * sizeof(set.f[0]));
    set.nf--;
    vt_verify(&run, &g, &set, true, NULL);
    assert_int_equal(run.r.reason, KB_AUDIT_OK);
    assert_true(run.r.first_seq > 1);
    assert_true(run.r.tags_verified);
    assert_non_null(strstr(run.r.window, "were not checked"));
    kb_audit_verify_destroy(run.v);
    tl_set_free(&set);
}

static void test_intact_with_anchors(void **state)
{
    struct tl_gen g;
    struct tl_set set;
    struct vt_anchors an = {0};
    struct vt_run run;
    size_t total;

    (void)state;
    vt_failures = 0;
    s_chain(&g, &set, KB_AUDIT_MODE_HMAC, 5);
    total = tl_total(&set);
    for (size_t i = 0; i < 5; i++)
        tl_anchor_of(&g, &set, (total - 3) * (i + 1) / 5, &an.a[an.n++]);
    vt_verify(&run, &g, &set, true, &an);
    assert_int_equal(run.r.reason, KB_AUDIT_OK);
    assert_true(run.r.anchored);
    assert_int_equal(run.r.anchors_matched, 5);
    assert_int_equal(run.r.last_anchor_seq, an.a[4].seq);
    assert_int_equal(run.r.window_data.droppable_from_seq, an.a[4].seq + 1);
    assert_int_equal(run.r.window_data.rewritable_from_seq,
                     (an.a[4].seq > run.r.last_seal_seq ? an.a[4].seq : run.r.last_seal_seq) + 1);
    assert_non_null(strstr(run.r.window, "dropped from the end"));
    kb_audit_verify_destroy(run.v);
    /* anchors of another chain are counted and ignored */
    memset(an.a[0].chain_id, 'f', KB_AUDIT_CHAIN_ID_LEN);
    vt_verify(&run, &g, &set, true, &an);
    assert_int_equal(run.r.reason, KB_AUDIT_OK);
    assert_int_equal(run.r.anchors_other_chains, 1);
    assert_int_equal(run.r.anchors_matched, 4);
    kb_audit_verify_destroy(run.v);
    tl_set_free(&set);
}

/* -- the property tests --------------------------------------------------------------------- */

#define S_CHANGED_ANY                                                                              \
    (VT_BIT(KB_AUDIT_MALFORMED) | VT_BIT(KB_AUDIT_CHANGED) | VT_BIT(KB_AUDIT_BAD_TAG))

static void test_prop_flip_byte(void **state)
{
    struct tl_gen g;
    struct tl_set base, set;
    unsigned iters = 1500;

    (void)state;
    vt_failures = 0;
    s_chain(&g, &base, KB_AUDIT_MODE_HMAC, 10);
    for (unsigned it = 0; it < iters; it++) {
        size_t total = tl_total(&base), gi = tl_range(&g.rng, 0, total - 1), f, i;
        bool key = it % 4 != 3;
        struct tl_line *l;
        size_t b;
        uint8_t x = (uint8_t)tl_range(&g.rng, 1, 255);
        struct vt_want w;
        struct vt_run run;
        char what[160];

        tl_set_copy(&set, &base);
        tl_pos(&set, gi, &f, &i);
        l = &set.f[f].l[i];
        b = tl_range(&g.rng, 0, l->len);
        /* without the key a tag's hex digit can change unseen (the window says so) */
        if (!key && b >= l->len - 66 && b < l->len - 2 &&
            strchr("0123456789abcdef", l->s[b] ^ x) != NULL && (l->s[b] ^ x) != '\0') {
            tl_set_free(&set);
            continue;
        }
        snprintf(what, sizeof(what), "flip byte %zu of %s:%zu by 0x%02x (key %d)", b, set.f[f].name,
                 i + 1, x, key);
        vt_want_at(&w, &set, gi, S_CHANGED_ANY | (gi == 0 ? VT_BIT(KB_AUDIT_DROPPED) : 0));
        if (b == l->len) { /* the "\n" */
            if (i + 1 == set.f[f].n) {
                set.f[f].cut = true;
                w.reasons = VT_BIT(KB_AUDIT_CUT);
            } else {
                struct tl_line *m = &set.f[f].l[i + 1];
                char *s = malloc(l->len + 1 + m->len + 1);

                memcpy(s, l->s, l->len);
                s[l->len] = (char)('\n' ^ x);
                memcpy(s + l->len + 1, m->s, m->len + 1);
                free(m->s);
                m->s = s;
                m->len = l->len + 1 + m->len;
                tl_delete(&set, gi);
            }
        } else if ((l->s[b] ^ x) == '\n') {
            tl_push(&set.f[f], i + 1, l->s + b + 1, l->len - b - 1);
            l = &set.f[f].l[i];
            l->len = b;
            l->s[b] = '\0';
        } else {
            l->s[b] = (char)(l->s[b] ^ x);
        }
        vt_verify(&run, &g, &set, key, NULL);
        vt_expect(&run, &set, &w, what, it);
        kb_audit_verify_destroy(run.v);
        tl_set_free(&set);
    }
    tl_set_free(&base);
    vt_summary("prop_flip_byte");
    assert_int_equal(vt_failures, 0);
}

static void test_prop_delete_swap_duplicate(void **state)
{
    struct tl_gen g;
    struct tl_set base, set;
    unsigned iters = 1500;

    (void)state;
    vt_failures = 0;
    s_chain(&g, &base, KB_AUDIT_MODE_HMAC, 11);
    for (unsigned it = 0; it < iters; it++) {
        size_t total = tl_total(&base);
        unsigned kind = it % 3;
        bool key = it % 5 != 4;
        struct vt_want w;
        struct vt_run run;
        char what[160];

        tl_set_copy(&set, &base);
        if (kind == 0) { /* delete one line (not the last: that is a clean cut) */
            size_t gi = tl_range(&g.rng, 0, total - 2);

            snprintf(what, sizeof(what), "delete line %zu", gi);
            tl_delete(&set, gi);
            vt_want_at(&w, &set, gi, VT_BIT(KB_AUDIT_DROPPED));
        } else if (kind == 1) { /* swap two lines (not the set's first) */
            size_t a = tl_range(&g.rng, 1, total - 2), b = tl_range(&g.rng, a + 1, total - 1);
            struct tl_line t = *tl_at(&set, a);

            snprintf(what, sizeof(what), "swap lines %zu and %zu", a, b);
            *tl_at(&set, a) = *tl_at(&set, b);
            *tl_at(&set, b) = t;
            vt_want_at(&w, &set, a, VT_BIT(KB_AUDIT_SWAPPED));
        } else { /* copy line k to position m (not before the set's first line) */
            size_t k = tl_range(&g.rng, 0, total - 1), m = tl_range(&g.rng, 1, total), f, i;
            struct tl_line src = *tl_at(&base, k);

            snprintf(what, sizeof(what), "copy line %zu to %zu", k, m);
            if (m == total) {
                f = set.nf - 1;
                i = set.f[f].n;
            } else {
                tl_pos(&set, m, &f, &i);
            }
            tl_push(&set.f[f], i, src.s, src.len);
            vt_want_at(&w, &set, m == k || m == k + 1 ? k + 1 : m, VT_BIT(KB_AUDIT_DUPLICATED));
        }
        vt_verify(&run, &g, &set, key, NULL);
        vt_expect(&run, &set, &w, what, it);
        kb_audit_verify_destroy(run.v);
        tl_set_free(&set);
    }
    tl_set_free(&base);
    vt_summary("prop_delete_swap_duplicate");
    assert_int_equal(vt_failures, 0);
}

/* Drops lines gi.. of its file (gi's file is cut there). */
static void s_cut_file_after(struct tl_set *set, size_t gi)
{
    size_t f, i;

    tl_pos(set, gi, &f, &i);
    for (size_t j = i + 1; j < set->f[f].n; j++)
        free(set->f[f].l[j].s);
    set->f[f].n = i + 1;
}

static void test_prop_truncate(void **state)
{
    struct tl_gen g;
    struct tl_set base, set;
    struct vt_anchors an = {0};
    unsigned iters = 900;
    size_t total;

    (void)state;
    vt_failures = 0;
    s_chain(&g, &base, KB_AUDIT_MODE_HMAC, 12);
    total = tl_total(&base);
    for (size_t i = 0; i < 4; i++)
        tl_anchor_of(&g, &base, total * (i + 1) / 5, &an.a[an.n++]);
    for (unsigned it = 0; it < iters; it++) {
        unsigned kind = it % 3;
        size_t gi, f, i, last_start = total - base.f[base.nf - 1].n;
        struct vt_want w;
        struct vt_run run;
        char what[160];

        tl_set_copy(&set, &base);
        if (kind == 0) { /* mid-line, in any file */
            struct tl_line *l;
            size_t b;

            gi = tl_range(&g.rng, 0, total - 1);
            tl_pos(&set, gi, &f, &i);
            l = &set.f[f].l[i];
            b = tl_range(&g.rng, 1, l->len);
            snprintf(what, sizeof(what), "cut %s:%zu after %zu bytes", set.f[f].name, i + 1, b);
            s_cut_file_after(&set, gi);
            l->len = b;
            l->s[b] = '\0';
            set.f[f].cut = true;
            vt_want_at(&w, &set, gi, VT_BIT(KB_AUDIT_CUT));
        } else if (kind == 1) { /* the last file at a line boundary before the last anchor */
            gi = tl_range(&g.rng, last_start, total - 2);
            tl_pos(&set, gi, &f, &i);
            snprintf(what, sizeof(what), "truncate %s after line %zu", set.f[f].name, i + 1);
            s_cut_file_after(&set, gi);
            if (tl_seq(tl_at(&set, gi)) >= an.a[an.n - 1].seq) {
                /* after the last anchor: undetectable, and the window says so */
                vt_verify(&run, &g, &set, true, &an);
                if (run.r.reason != KB_AUDIT_OK ||
                    run.r.window_data.droppable_from_seq != an.a[an.n - 1].seq + 1) {
                    vt_failures++;
                    fprintf(stderr, "seed %" PRIu64 " %s: want ok, got %s\n", vt_seed, what,
                            kb_audit_reason_name(run.r.reason));
                }
                kb_audit_verify_destroy(run.v);
                tl_set_free(&set);
                continue;
            }
            w.file = f;
            w.line = i + 2;
            w.reasons = VT_BIT(KB_AUDIT_TRUNCATED_BEFORE_ANCHOR);
        } else { /* a file before the last at a line boundary */
            size_t start = 0;

            f = tl_range(&g.rng, 0, set.nf - 2);
            for (size_t k = 0; k < f; k++)
                start += set.f[k].n;
            gi = tl_range(&g.rng, start, start + set.f[f].n - 2);
            snprintf(what, sizeof(what), "truncate %s after its line %zu", set.f[f].name,
                     gi - start + 1);
            s_cut_file_after(&set, gi);
            w.file = f + 1;
            w.line = 1;
            w.reasons = VT_BIT(KB_AUDIT_DROPPED);
        }
        vt_verify(&run, &g, &set, it % 2 == 0, &an);
        vt_expect(&run, &set, &w, what, it);
        kb_audit_verify_destroy(run.v);
        tl_set_free(&set);
    }
    tl_set_free(&base);
    vt_summary("prop_truncate");
    assert_int_equal(vt_failures, 0);
}

static void test_prop_splice(void **state)
{
    struct tl_gen g, h;
    struct tl_set a, b, set;

    (void)state;
    vt_failures = 0;
    for (unsigned it = 0; it < 200; it++) {
        size_t f;
        bool key = it % 2 == 0;
        struct vt_want w;
        struct vt_run run;
        char what[96];

        tl_gen_chain(&g, &a, KB_AUDIT_MODE_HMAC, vt_seed ^ (100 + it), 6, 3, 10, 40);
        tl_gen_chain(&h, &b, KB_AUDIT_MODE_HMAC, vt_seed ^ (5000 + it), 6, 3, 10, 40);
        f = it % 3;
        tl_set_copy(&set, &a);
        for (size_t j = 0; j < set.f[f].n; j++)
            free(set.f[f].l[j].s);
        free(set.f[f].l);
        memset(&set.f[f], 0, sizeof(set.f[f]));
        memcpy(set.f[f].name, a.f[f].name, sizeof(set.f[f].name));
        for (size_t j = 0; j < b.f[f].n; j++)
            tl_push(&set.f[f], j, b.f[f].l[j].s, b.f[f].l[j].len);
        snprintf(what, sizeof(what), "file %zu from another chain (key %d)", f, key);
        /* the first file from another chain: its key id (with the key), else the next file */
        w = f == 0 && key ? (struct vt_want){0, 1, VT_BIT(KB_AUDIT_WRONG_KEY)}
            : f == 0      ? (struct vt_want){1, 1, VT_BIT(KB_AUDIT_SPLICED)}
                          : (struct vt_want){f, 1, VT_BIT(KB_AUDIT_SPLICED)};
        vt_verify(&run, &g, &set, key, NULL);
        vt_expect(&run, &set, &w, what, it);
        kb_audit_verify_destroy(run.v);
        tl_set_free(&set);
        tl_set_free(&a);
        tl_set_free(&b);
    }
    vt_summary("prop_splice");
    assert_int_equal(vt_failures, 0);
}

/* Changes a record's time by a millisecond: a different, valid body. */
static void s_edit_ts(char *body, size_t *len)
{
    char *ts = strstr(body, "\"ts\":\"");

    (void)len;
    ts += 6 + 22; /* the last digit of the milliseconds */
    *ts = *ts == '9' ? '0' : (char)(*ts + 1);
}

static void test_prop_retag_later_key(void **state)
{
    struct tl_gen g;
    struct tl_set base, set;

    (void)state;
    vt_failures = 0;
    s_chain(&g, &base, KB_AUDIT_MODE_HMAC, 13);
    for (unsigned it = 0; it < 400; it++) {
        size_t total = tl_total(&base), gi = tl_range(&g.rng, 1, total - 1);
        uint64_t d = tl_epoch(tl_at(&base, gi)), held;
        struct vt_want w;
        struct vt_run run;
        char what[128];

        if (d >= 11)
            continue; /* the current epoch: rewritable with its key (test_window_is_honest) */
        held = tl_range(&g.rng, d + 1, 11);
        tl_set_copy(&set, &base);
        tl_rechain(&g, &set, gi, (long)held, false, s_edit_ts);
        snprintf(what, sizeof(what), "rewrite line %zu (epoch %" PRIu64 ") with K_%" PRIu64, gi, d,
                 held);
        vt_want_at(&w, &set, gi, VT_BIT(KB_AUDIT_LATER_KEY));
        vt_verify(&run, &g, &set, true, NULL);
        vt_expect(&run, &set, &w, what, it);
        kb_audit_verify_destroy(run.v);
        tl_set_free(&set);
    }
    tl_set_free(&base);
    vt_summary("prop_retag_later_key");
    assert_int_equal(vt_failures, 0);
}

static void test_prop_drop_epoch(void **state)
{
    struct tl_gen g;
    struct tl_set base, set;

    (void)state;
    vt_failures = 0;
    for (unsigned it = 0; it < 120; it++) {
        enum kb_audit_mode mode = it % 4 == 3 ? KB_AUDIT_MODE_SHA256 : KB_AUDIT_MODE_HMAC;
        uint64_t e;
        size_t first = SIZE_MAX, total;
        bool rechain = it % 2 == 1;
        struct vt_want w;
        struct vt_run run;
        char what[96];

        tl_gen_chain(&g, &base, mode, vt_seed ^ (900 + it), 8, 3, 10, 40);
        e = tl_range(&g.rng, 1, 6);
        tl_set_copy(&set, &base);
        total = tl_total(&set);
        for (size_t gi = total; gi-- > 0;) {
            if (tl_epoch(tl_at(&set, gi)) == e) {
                tl_delete(&set, gi);
                first = gi;
            }
        }
        if (rechain) /* renumbered and re-linked by someone holding every key */
            tl_rechain(&g, &set, first, -1, true, NULL);
        snprintf(what, sizeof(what), "drop epoch %" PRIu64 "%s (%s)", e,
                 rechain ? ", re-chained" : "", kb_audit_mode_name(mode));
        vt_want_at(&w, &set, first,
                   rechain ? VT_BIT(KB_AUDIT_EPOCH_GAP) : VT_BIT(KB_AUDIT_DROPPED));
        vt_verify(&run, &g, &set, mode == KB_AUDIT_MODE_HMAC, NULL);
        vt_expect(&run, &set, &w, what, it);
        kb_audit_verify_destroy(run.v);
        tl_set_free(&set);
        tl_set_free(&base);
    }
    vt_summary("prop_drop_epoch");
    assert_int_equal(vt_failures, 0);
}

/* Forward security: root on the host now reads K_11 from the state file. Whatever record of
 * epochs 0..10 it changes, and however it re-chains and re-tags the rest with the keys it can
 * derive, verify with K_0 fails at that record. */
static void test_forward_security(void **state)
{
    struct tl_gen g;
    struct tl_set base, set;

    (void)state;
    vt_failures = 0;
    s_chain(&g, &base, KB_AUDIT_MODE_HMAC, 14);
    for (size_t gi = 1; gi < tl_total(&base); gi += 7) {
        uint64_t d = tl_epoch(tl_at(&base, gi));
        struct vt_want w;
        struct vt_run run;
        char what[96];

        if (d >= 11)
            break;
        tl_set_copy(&set, &base);
        tl_rechain(&g, &set, gi, 11, false, s_edit_ts);
        snprintf(what, sizeof(what), "K_11 rewrites line %zu (epoch %" PRIu64 ")", gi, d);
        vt_want_at(&w, &set, gi, VT_BIT(KB_AUDIT_LATER_KEY));
        vt_verify(&run, &g, &set, true, NULL);
        vt_expect(&run, &set, &w, what, 0);
        kb_audit_verify_destroy(run.v);
        /* beyond the later-key probe's reach it is still found, as bad_tag */
        {
            struct kb_audit_verify_opts o = {.k0 = g.k0, .later_keys = 1};

            assert_int_equal(kb_audit_verify_new(&o, &run.v), 0);
            vt_feed(run.v, &set);
            assert_int_equal(kb_audit_verify_finish(run.v, &run.r), 0);
            w.reasons = VT_BIT(11 - d > 1 ? KB_AUDIT_BAD_TAG : KB_AUDIT_LATER_KEY);
            vt_expect(&run, &set, &w, what, 1);
            kb_audit_verify_destroy(run.v);
        }
        tl_set_free(&set);
    }
    tl_set_free(&base);
    vt_summary("forward_security");
    assert_int_equal(vt_failures, 0);
}

/* -- the rules, one by one ------------------------------------------------------------------ */

/* A short chain made record by record, for the rules the mutations above do not aim at. */
static void s_small(struct tl_gen *g, struct tl_set *set, enum kb_audit_mode mode, unsigned n)
{
    tl_gen_init(g, set, mode, vt_seed ^ 77);
    tl_gen_open(g, "start", true);
    for (unsigned i = 0; i < n; i++)
        tl_gen_random(g);
}

/* Verifies set with g's key and expects reason at set's last line. */
static void s_last_is(struct tl_gen *g, struct tl_set *set, enum kb_audit_reason reason,
                      const char *detail_part)
{
    struct vt_run run;

    vt_verify(&run, g, set, g->mode == KB_AUDIT_MODE_HMAC, NULL);
    if (run.r.reason != reason || run.r.line != set->f[set->nf - 1].n ||
        (detail_part != NULL && strstr(run.r.detail, detail_part) == NULL))
        fail_msg("want %s at line %zu, got %s at %" PRIu64 ": %s", kb_audit_reason_name(reason),
                 set->f[set->nf - 1].n, kb_audit_reason_name(run.r.reason), run.r.line,
                 run.r.detail);
    kb_audit_verify_destroy(run.v);
    tl_set_free(set);
}

static void test_rules_epochs(void **state)
{
    struct tl_gen g;
    struct tl_set set;

    (void)state;
    s_small(&g, &set, KB_AUDIT_MODE_HMAC, 5);
    g.epoch++; /* a new epoch without a seal */
    tl_gen_random(&g);
    s_last_is(&g, &set, KB_AUDIT_NO_SEAL, "without the seal of epoch 0");
    s_small(&g, &set, KB_AUDIT_MODE_HMAC, 5);
    tl_gen_seal(&g);
    g.epoch--; /* a record of the sealed epoch */
    tl_gen_random(&g);
    s_last_is(&g, &set, KB_AUDIT_AFTER_SEAL, "after the seal of epoch 0");
    s_small(&g, &set, KB_AUDIT_MODE_SHA256, 5);
    tl_gen_seal(&g);
    g.epoch += 2; /* epochs 1 and 2 missing */
    tl_gen_random(&g);
    s_last_is(&g, &set, KB_AUDIT_EPOCH_GAP, "epochs 1..2 are missing");
    s_small(&g, &set, KB_AUDIT_MODE_HMAC, 5);
    tl_gen_seal(&g);
    tl_gen_seal(&g);
    tl_gen_random(&g);
    g.epoch = 0;
    tl_gen_random(&g);
    s_last_is(&g, &set, KB_AUDIT_EPOCH_GAP, "goes back from 2 to 0");
    /* a seal that counts more records than the epoch has, or fewer */
    s_small(&g, &set, KB_AUDIT_MODE_HMAC, 5);
    g.epoch_records += 3;
    tl_gen_seal(&g);
    s_last_is(&g, &set, KB_AUDIT_DROPPED, "counts 10 records, the log has 7");
    s_small(&g, &set, KB_AUDIT_MODE_HMAC, 5);
    g.epoch_records = 2;
    tl_gen_seal(&g);
    s_last_is(&g, &set, KB_AUDIT_CHANGED, "records were added");
}

static void test_rules_chain_and_keys(void **state)
{
    struct tl_gen g;
    struct tl_set set;
    struct tl_line *l;
    struct vt_run run;
    uint8_t other[KB_AUDIT_KEY_LEN] = {7};

    (void)state;
    /* a tag removed: the h still links, the chain mode changed */
    s_small(&g, &set, KB_AUDIT_MODE_HMAC, 5);
    l = &set.f[0].l[set.f[0].n - 1];
    memcpy(l->s + l->len - 2 - 64 - 9, "\"}", 3);
    l->len -= 64 + 9;
    s_last_is(&g, &set, KB_AUDIT_CHAIN_CHANGED, "a tag was removed");
    /* a restart's audit_open with another key id */
    s_small(&g, &set, KB_AUDIT_MODE_HMAC, 5);
    memcpy(g.key_id, "0123456789abcdef", 16);
    tl_gen_open(&g, "start", false);
    s_last_is(&g, &set, KB_AUDIT_CHAIN_CHANGED, "key_id");
    /* an audit_open consistent in itself that does not continue the line before it */
    s_small(&g, &set, KB_AUDIT_MODE_HMAC, 5);
    g.h[0] ^= 1;
    tl_gen_open(&g, "reopen", true);
    s_last_is(&g, &set, KB_AUDIT_SPLICED, "another branch");
    /* seq 1 must follow h_0 */
    tl_gen_init(&g, &set, KB_AUDIT_MODE_HMAC, 5);
    g.h[3] = 1;
    tl_gen_open(&g, "start", true);
    s_last_is(&g, &set, KB_AUDIT_SPLICED, "h_0");
    /* another K_0; the right K_0 with another chain id */
    s_small(&g, &set, KB_AUDIT_MODE_HMAC, 5);
    memcpy(g.k0, other, sizeof(other));
    vt_verify(&run, &g, &set, true, NULL);
    assert_int_equal(run.r.reason, KB_AUDIT_WRONG_KEY);
    assert_int_equal(run.r.line, 1);
    assert_non_null(strstr(run.r.detail, "key id"));
    kb_audit_verify_destroy(run.v);
    tl_set_free(&set);
    s_small(&g, &set, KB_AUDIT_MODE_HMAC, 5);
    {
        struct kb_audit_verify_opts o = {.k0 = g.k0,
                                         .chain_id = "00112233445566778899aabbccddeeff"};

        assert_int_equal(kb_audit_verify_new(&o, &run.v), 0);
        vt_feed(run.v, &set);
        assert_int_equal(kb_audit_verify_finish(run.v, &run.r), 0);
        assert_int_equal(run.r.reason, KB_AUDIT_WRONG_KEY);
        assert_non_null(strstr(run.r.detail, "chain 00112233"));
        kb_audit_verify_destroy(run.v);
    }
    /* the files start at an epoch beyond the derivation limit */
    tl_set_free(&set);
    tl_gen_chain(&g, &set, KB_AUDIT_MODE_HMAC, 9, 8, 3, 10, 20);
    tl_delete(&set, 0); /* not a set start any more... drop the first file instead */
    for (size_t j = 0; j < set.f[0].n; j++)
        free(set.f[0].l[j].s);
    set.f[0].n = 0;
    {
        struct kb_audit_verify_opts o = {.k0 = g.k0, .max_start_epoch = 1};

        assert_int_equal(kb_audit_verify_new(&o, &run.v), 0);
        vt_feed(run.v, &set);
        assert_int_equal(kb_audit_verify_finish(run.v, &run.r), 0);
        assert_int_equal(run.r.reason, KB_AUDIT_EPOCH_GAP);
        assert_int_equal(run.r.empty_files, 1);
        assert_non_null(strstr(run.r.detail, "derives keys for"));
        kb_audit_verify_destroy(run.v);
    }
    tl_set_free(&set);
}

/* Moves line from to position to (to > from + 1): out of order, not swapped. */
static void test_rules_moved_and_renumbered(void **state)
{
    struct tl_gen g;
    struct tl_set set;
    struct tl_line t, *l;
    struct vt_run run;
    char *seq;

    (void)state;
    s_small(&g, &set, KB_AUDIT_MODE_HMAC, 30);
    t = set.f[0].l[10];
    memmove(&set.f[0].l[10], &set.f[0].l[11], 5 * sizeof(t));
    set.f[0].l[15] = t;
    vt_verify(&run, &g, &set, true, NULL);
    assert_int_equal(run.r.reason, KB_AUDIT_OUT_OF_ORDER);
    assert_int_equal(run.r.line, 11);
    assert_int_equal(run.r.seq, 12);
    assert_non_null(strstr(run.r.detail, "comes 5 lines later"));
    kb_audit_verify_destroy(run.v);
    tl_set_free(&set);
    /* a seq changed in place (a digit), and the last line's */
    s_small(&g, &set, KB_AUDIT_MODE_HMAC, 30);
    for (int k = 0; k < 2; k++) {
        l = &set.f[0].l[k == 0 ? 20 : set.f[0].n - 1];
        seq = l->s + 7;
        *seq = *seq == '9' ? '1' : (char)(*seq + 1);
        vt_verify(&run, &g, &set, true, NULL);
        assert_int_equal(run.r.reason, KB_AUDIT_CHANGED);
        assert_int_equal(run.r.line, 21);
        assert_non_null(strstr(run.r.detail, "its seq was changed from 21"));
        kb_audit_verify_destroy(run.v);
    }
    tl_set_free(&set);
}

static void test_rules_lines(void **state)
{
    struct tl_gen g;
    struct tl_set set;
    struct tl_line *l;
    struct vt_run run;
    char *big;

    (void)state;
    /* uppercase hex in h: chain.c's parser reads it, the verifier refuses it */
    s_small(&g, &set, KB_AUDIT_MODE_HMAC, 5);
    l = &set.f[0].l[set.f[0].n - 1];
    for (size_t i = l->len - 140; i < l->len; i++) {
        if (l->s[i] >= 'a' && l->s[i] <= 'f') {
            l->s[i] = (char)(l->s[i] - 32);
            break;
        }
    }
    s_last_is(&g, &set, KB_AUDIT_MALFORMED, "lowercase");
    /* a line longer than a record can be */
    s_small(&g, &set, KB_AUDIT_MODE_HMAC, 5);
    big = malloc(KB_AUDIT_LINE_MAX + 1);
    memset(big, 'x', KB_AUDIT_LINE_MAX);
    tl_push(&set.f[0], set.f[0].n, big, KB_AUDIT_LINE_MAX);
    free(big);
    s_last_is(&g, &set, KB_AUDIT_MALFORMED, "longer");
    /* an empty line; a last line without "\n" */
    s_small(&g, &set, KB_AUDIT_MODE_SHA256, 5);
    tl_push(&set.f[0], set.f[0].n, "", 0);
    s_last_is(&g, &set, KB_AUDIT_MALFORMED, NULL);
    s_small(&g, &set, KB_AUDIT_MODE_SHA256, 5);
    set.f[0].cut = true;
    s_last_is(&g, &set, KB_AUDIT_CUT, "without a");
    /* no record at all; an empty file at the end of a set is not an error */
    memset(&set, 0, sizeof(set));
    set.nf = 1;
    snprintf(set.f[0].name, sizeof(set.f[0].name), "audit.log");
    vt_verify(&run, &g, &set, false, NULL);
    assert_int_equal(run.r.reason, KB_AUDIT_CUT);
    assert_null(run.r.file);
    kb_audit_verify_destroy(run.v);
    s_small(&g, &set, KB_AUDIT_MODE_SHA256, 5);
    set.nf = 2;
    snprintf(set.f[1].name, sizeof(set.f[1].name), "audit.log");
    vt_verify(&run, &g, &set, false, NULL);
    assert_int_equal(run.r.reason, KB_AUDIT_OK);
    assert_int_equal(run.r.empty_files, 1);
    kb_audit_verify_destroy(run.v);
    tl_set_free(&set);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intact_hmac_rotated),
        cmocka_unit_test(test_intact_single_file_and_modes),
        cmocka_unit_test(test_intact_partial_set),
        cmocka_unit_test(test_intact_with_anchors),
        cmocka_unit_test(test_prop_flip_byte),
        cmocka_unit_test(test_prop_delete_swap_duplicate),
        cmocka_unit_test(test_prop_truncate),
        cmocka_unit_test(test_prop_splice),
        cmocka_unit_test(test_prop_retag_later_key),
        cmocka_unit_test(test_prop_drop_epoch),
        cmocka_unit_test(test_forward_security),
        cmocka_unit_test(test_rules_epochs),
        cmocka_unit_test(test_rules_chain_and_keys),
        cmocka_unit_test(test_rules_moved_and_renumbered),
        cmocka_unit_test(test_rules_lines),
    };

    return KB_TEST_RUN(argc, argv, tests, vt_setup, NULL);
}
