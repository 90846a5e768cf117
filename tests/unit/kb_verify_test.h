/*
 * kb_verify_test.h - what the verifier's tests share: feeding a set of files (kb_audit_gen.h) to
 * a verifier with anchors, and checking a finding against the line and reasons a mutation must
 * produce, printing the seed and the mutation when it does not.
 */
#ifndef KB_VERIFY_TEST_H
#define KB_VERIFY_TEST_H

#include <sodium.h>

#include "kb_audit_gen.h"

#define VT_PREFIX "anchors/"

static uint64_t __attribute__((unused)) vt_seed = 20261204;

/* -- running the verifier ------------------------------------------------------------------- */

struct vt_anchors {
    struct kb_audit_anchor a[16];
    size_t n;
    bool second_version; /* the last anchor's key gets a second version */
    bool delete_marker;  /* and/or a delete marker */
};

struct vt_run {
    struct kb_audit_verify *v;
    struct kb_audit_verify_result r;
};

static inline void vt_feed(struct kb_audit_verify *v, const struct tl_set *set)
{
    for (size_t f = 0; f < set->nf; f++) {
        assert_int_equal(kb_audit_verify_begin_file(v, set->f[f].name), 0);
        for (size_t i = 0; i < set->f[f].n; i++) {
            bool last = i + 1 == set->f[f].n;

            assert_int_equal(kb_audit_verify_line(v, set->f[f].l[i].s, set->f[f].l[i].len,
                                                  !(last && set->f[f].cut)),
                             0);
        }
        assert_int_equal(kb_audit_verify_end_file(v), 0);
    }
}

static inline void vt_add_anchor(struct kb_audit_verify *v, const struct kb_audit_anchor *a,
                                 const char *version)
{
    char key[256], body[KB_AUDIT_ANCHOR_BODY_MAX];
    size_t len = 0;

    assert_int_equal(kb_audit_anchor_key(VT_PREFIX, a->chain_id, a->seq, key, sizeof(key)), 0);
    assert_int_equal(kb_audit_anchor_body(a, body, sizeof(body), &len), 0);
    assert_int_equal(kb_audit_verify_add_anchor_object(v, key, version, false, body, len), 0);
}

/* Verifies set (with g's K_0 when key) into run; the caller destroys run->v. */
static inline void vt_verify(struct vt_run *run, const struct tl_gen *g, const struct tl_set *set,
                             bool key, const struct vt_anchors *an)
{
    struct kb_audit_verify_opts o = {.k0 = key ? g->k0 : NULL, .anchor_prefix = VT_PREFIX};

    assert_int_equal(kb_audit_verify_new(&o, &run->v), 0);
    for (size_t i = 0; an != NULL && i < an->n; i++)
        vt_add_anchor(run->v, &an->a[i], "v1");
    if (an != NULL && an->n > 0 && an->second_version)
        vt_add_anchor(run->v, &an->a[an->n - 1], "v2");
    if (an != NULL && an->n > 0 && an->delete_marker) {
        char name[256];

        assert_int_equal(kb_audit_anchor_key(VT_PREFIX, an->a[an->n - 1].chain_id,
                                             an->a[an->n - 1].seq, name, sizeof(name)),
                         0);
        assert_int_equal(kb_audit_verify_add_anchor_object(run->v, name, "dm", true, NULL, 0), 0);
    }
    vt_feed(run->v, set);
    assert_int_equal(kb_audit_verify_finish(run->v, &run->r), 0);
}

#define VT_BIT(reason) (1u << (reason))

/* What a mutation must produce: the line (file, 1-based line) and one of the reasons. */
struct vt_want {
    size_t file;
    uint64_t line;
    unsigned reasons;
};

static inline void vt_want_at(struct vt_want *w, const struct tl_set *set, size_t gi,
                              unsigned reasons)
{
    size_t f, i;

    tl_pos(set, gi, &f, &i);
    w->file = f;
    w->line = i + 1;
    w->reasons = reasons;
}

static int __attribute__((unused)) vt_failures;
static unsigned __attribute__((unused))
vt_seen[KB_AUDIT_ANCHOR_REWRITTEN + 1]; /* reasons found, for the summary */

/* Prints how many mutations were checked and which reasons they gave. */
static inline void vt_summary(const char *test)
{
    unsigned total = 0;

    for (size_t i = 0; i <= KB_AUDIT_ANCHOR_REWRITTEN; i++)
        total += vt_seen[i];
    print_message("%s: seed %" PRIu64 ", %u mutations, %d missed or misplaced;", test, vt_seed,
                  total, vt_failures);
    for (size_t i = 0; i <= KB_AUDIT_ANCHOR_REWRITTEN; i++) {
        if (vt_seen[i] > 0)
            print_message(" %s %u", kb_audit_reason_name((enum kb_audit_reason)i), vt_seen[i]);
    }
    print_message("\n");
    memset(vt_seen, 0, sizeof(vt_seen));
}

/* Checks the result against want; prints everything needed to replay a failure. */
static inline void vt_expect(const struct vt_run *run, const struct tl_set *set,
                             const struct vt_want *w, const char *what, unsigned iter)
{
    const struct kb_audit_verify_result *r = &run->r;
    bool ok = r->reason != KB_AUDIT_OK && (w->reasons & VT_BIT(r->reason)) != 0 &&
              r->file != NULL && strcmp(r->file, set->f[w->file].name) == 0 && r->line == w->line;

    vt_seen[r->reason]++;
    if (ok)
        return;
    vt_failures++;
    fprintf(stderr,
            "seed %" PRIu64 " iteration %u: %s\n  want %s:%" PRIu64 " (reasons 0x%x)\n"
            "  got  %s:%" PRIu64 " %s: %s\n",
            vt_seed, iter, what, set->f[w->file].name, w->line, w->reasons, r->file ? r->file : "-",
            r->line, kb_audit_reason_name(r->reason), r->detail);
}

static inline int vt_setup(void **state)
{
    const char *env = getenv("KB_AUDIT_SEED");

    (void)state;
    vt_failures = 0;
    if (env != NULL)
        vt_seed = strtoull(env, NULL, 10);
    return sodium_init() < 0 ? -1 : 0;
}

#endif
