/*
 * verify_refine.c - names the kind of a bad line whose seq is not the one expected: a line
 * changed in place, a copy of another, a swap, a move or a drop. The seq alone cannot say which
 * (a swap and a drop both begin with a seq that jumps), so the verifier keeps the bad line and
 * reads the seq of the lines after it (verify.h); nothing here changes which line is named.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "audit/verify_internal.h"
#include "common/err.h"

/* Whether the line is the one of seq e with only its seq changed: its h links prev to the body
 * with e written where its seq is. */
static bool s_seq_changed(struct kb_audit_verify *v, const char *line,
                          const struct kb_audit_line_parts *p, const struct kb_audit__body *b,
                          uint64_t e)
{
    char num[24];
    uint8_t h[KB_AUDIT_HASH_LEN];
    const char *tail = line + b->seq_off + b->seq_len;
    int n = snprintf(num, sizeof(num), "%" PRIu64, e);
    EVP_MD_CTX *c = v->mdctx;
    unsigned int hl = 0;

    if (n <= 0)
        return false;
    if (!(EVP_DigestInit_ex(c, v->md, NULL) == 1 &&
          EVP_DigestUpdate(c, v->prev, sizeof(v->prev)) == 1 &&
          EVP_DigestUpdate(c, line, b->seq_off) == 1 && EVP_DigestUpdate(c, num, (size_t)n) == 1 &&
          EVP_DigestUpdate(c, tail, p->body_len - b->seq_off - b->seq_len) == 1 &&
          EVP_DigestUpdate(c, "}", 1) == 1 && EVP_DigestFinal_ex(c, h, &hl) == 1))
        return false;
    return memcmp(h, p->h, sizeof(h)) == 0;
}

static const struct kb_audit__ring_entry *s_ring_get(const struct kb_audit_verify *v, uint64_t seq)
{
    const struct kb_audit__ring_entry *e = &v->ring[seq % KB_AUDIT__RING];

    return e->seq == seq ? e : NULL;
}

/* A record whose seq s is not the expected e (the lines before it are intact). */
int kb_audit__seq_anomaly(struct kb_audit_verify *v, const char *line, size_t len,
                          const struct kb_audit_line_parts *p, const struct kb_audit__body *b,
                          bool file_start)
{
    uint64_t s = b->seq, e = v->expect;

    kb_audit__find(v, KB_AUDIT_DROPPED, true, s);
    if (s_seq_changed(v, line, p, b, e)) {
        v->r.reason = KB_AUDIT_CHANGED;
        KB_AUDIT__DETAIL(v, "its seq was changed from %" PRIu64 " to %" PRIu64, e, s);
        return 0;
    }
    if (s < e) {
        const struct kb_audit__ring_entry *at = s_ring_get(v, s), *before = s_ring_get(v, s - 1);
        const uint8_t *prev = before != NULL        ? before->h
                              : s == v->r.first_seq ? v->start_prev
                                                    : NULL;

        if (at != NULL && prev != NULL && memcmp(at->h, p->h, sizeof(p->h)) == 0 &&
            kb_audit__links(v, prev, line, p)) {
            v->r.reason = KB_AUDIT_DUPLICATED;
            KB_AUDIT__DETAIL(v, "a copy of the record of seq %" PRIu64 " (after seq %" PRIu64 ")",
                             s, e - 1);
        } else {
            v->r.reason = KB_AUDIT_OUT_OF_ORDER;
            KB_AUDIT__DETAIL(v, "seq %" PRIu64 " after seq %" PRIu64 ": seq goes back", s, e - 1);
        }
        return 0;
    }
    /* s > e: dropped, unless the lines after it show a swap, a move or a copy */
    v->ref = (struct kb_audit__refine){
        .on = true, .pos = v->all_lines, .s = s, .e = e, .file_start = file_start};
    memcpy(v->ref.h, p->h, sizeof(v->ref.h));
    v->ref.copy = malloc(len > 0 ? len : 1);
    if (v->ref.copy == NULL)
        return KB_ENOMEM;
    memcpy(v->ref.copy, line, len);
    v->ref.copy_len = len;
    return 0;
}

/* A line after the first bad one (which had seq s where e belonged). */
void kb_audit__refine(struct kb_audit_verify *v, const char *line, size_t len)
{
    struct kb_audit__refine *f = &v->ref;
    uint64_t dist = v->all_lines - f->pos, t;
    struct kb_audit_line_parts p;

    if (!kb_audit__seq_of(line, len, &t))
        return;
    if (dist == 1 && t == f->e + 1 && kb_audit__split_strict(line, len, &p) == 0 &&
        kb_audit__links(v, f->h, line, &p)) {
        /* the next line was chained onto the bad one: it is seq e, its seq was changed */
        v->r.reason = KB_AUDIT_CHANGED;
        f->on = false;
        return;
    }
    if (t == f->s && len == f->copy_len && memcmp(line, f->copy, len) == 0) {
        v->r.reason = KB_AUDIT_DUPLICATED;
        f->on = false;
        return;
    }
    if (t == f->e && !f->e_seen) {
        f->e_seen = true;
        f->e_dist = dist;
    }
}

/* The refined finding's reason and sentence. */
void kb_audit__refine_end(struct kb_audit_verify *v)
{
    struct kb_audit__refine *f = &v->ref;
    uint64_t s = f->s, e = f->e;

    if (v->r.reason == KB_AUDIT_CHANGED) {
        KB_AUDIT__DETAIL(v,
                         "its seq was changed from %" PRIu64 " to %" PRIu64
                         " (the next line is chained onto it as seq %" PRIu64 ")",
                         e, s, e + 1);
    } else if (v->r.reason == KB_AUDIT_DUPLICATED) {
        KB_AUDIT__DETAIL(v,
                         "a copy of the record of seq %" PRIu64
                         ", which comes later, put where seq %" PRIu64 " belongs",
                         s, e);
    } else if (f->e_seen && f->e_dist == s - e) {
        v->r.reason = KB_AUDIT_SWAPPED;
        KB_AUDIT__DETAIL(v,
                         "seq %" PRIu64 " is where seq %" PRIu64 " belongs, and seq %" PRIu64
                         " is where seq %" PRIu64 " belongs: the two lines were swapped",
                         s, e, e, s);
    } else if (f->e_seen) {
        v->r.reason = KB_AUDIT_OUT_OF_ORDER;
        KB_AUDIT__DETAIL(v,
                         "seq %" PRIu64 " is where seq %" PRIu64 " belongs; seq %" PRIu64
                         " comes %" PRIu64 " lines later: lines were moved",
                         s, e, e, f->e_dist);
    } else {
        v->r.reason = KB_AUDIT_DROPPED;
        KB_AUDIT__DETAIL(v,
                         "seq jumps from %" PRIu64 " to %" PRIu64 ": %" PRIu64
                         " record%s (seq %" PRIu64 "..%" PRIu64 ") %s missing%s",
                         e - 1, s, s - e, s - e == 1 ? "" : "s", e, s - 1,
                         s - e == 1 ? "is" : "are",
                         f->file_start ? " (the end of the file before, or a whole file)" : "");
    }
    f->on = false;
    free(f->copy);
    f->copy = NULL;
}
