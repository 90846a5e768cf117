/*
 * verify_report.c - the end of a verification: the checks only the end can make (an anchor
 * beyond the last record, a rewritten anchor), the staleness note, and the window in which
 * tampering would be undetectable, as data and as sentences.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "audit/verify_internal.h"
#include "common/err.h"

/* -- the end --------------------------------------------------------------------------------- */

/* Checks that only the end can make: anchors beyond the last record, rewritten anchors. */
static void s_end_checks(struct kb_audit_verify *v)
{
    const struct kb_audit__anchor_obj *o;
    bool rewritten = false;

    if (!v->started) {
        v->found = true;
        v->r.reason = KB_AUDIT_CUT;
        KB_AUDIT__DETAIL(v, "the files hold no record");
        return;
    }
    o = kb_audit__anchors_beyond(&v->anchors, v->r.last_seq);
    if (o != NULL) {
        v->found = true;
        v->r.reason = KB_AUDIT_TRUNCATED_BEFORE_ANCHOR;
        v->r.file = v->names[v->last_ok_file];
        v->r.line = v->last_ok_line + 1;
        v->r.seq_known = true;
        v->r.seq = v->r.last_seq + 1;
        KB_AUDIT__DETAIL(v,
                         "the log ends at seq %" PRIu64 ", but the anchor %s covers seq %" PRIu64
                         ": the records after seq %" PRIu64 " were removed",
                         v->r.last_seq, o->key, o->seq, v->r.last_seq);
        return;
    }
    o = kb_audit__anchors_bad(&v->anchors, &rewritten);
    if (o != NULL) {
        v->found = true;
        v->r.reason = rewritten ? KB_AUDIT_ANCHOR_REWRITTEN : KB_AUDIT_ANCHOR_MISMATCH;
        if (rewritten)
            KB_AUDIT__DETAIL(v,
                             "the anchor %s has more than one version or a delete marker: anchors "
                             "are written once (is Object Lock on?)",
                             o->key);
        else
            KB_AUDIT__DETAIL(v, "the anchor %s (version %s) is not an anchor: %s", o->key,
                             o->version_id, o->why);
    }
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t s_days(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int64_t s_num(const char *p, size_t n)
{
    int64_t v = 0;

    for (size_t i = 0; i < n; i++)
        v = v * 10 + (p[i] - '0');
    return v;
}

/* ms since the Unix epoch of a "2026-12-04T03:28:01.123Z" (shape already checked). */
static int64_t s_ts_ms(const char *ts)
{
#define S_N(i, n) s_num(ts + (i), (n))
    int64_t days = s_days(S_N(0, 4), (unsigned)S_N(5, 2), (unsigned)S_N(8, 2));

    return ((days * 24 + S_N(11, 2)) * 60 + S_N(14, 2)) * 60000 + S_N(17, 2) * 1000 + S_N(20, 3);
#undef S_N
}

int kb_audit_verify_finish(struct kb_audit_verify *v, struct kb_audit_verify_result *out)
{
    if (v->in_file || v->finished)
        return KB_EINVAL;
    v->finished = true;
    if (v->ref.pos != 0)
        kb_audit__refine_end(v);
    if (!v->found)
        s_end_checks(v);
    if (v->now_ms > 0 && v->r.records > 0 && v->r.epoch_seconds > 0)
        v->r.stale = v->now_ms - s_ts_ms(v->r.last_ts) > v->r.epoch_seconds * 1000 + 60000;
    kb_audit__window(&v->r);
    *out = v->r;
    return 0;
}

/* -- the window ------------------------------------------------------------------------------ */

struct s_text {
    char *buf;
    size_t cap, len;
};

static void s_add(struct s_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void s_add(struct s_text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->len + 1 >= t->cap)
        return;
    va_start(ap, fmt);
    n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->len = t->len + (size_t)n < t->cap ? t->len + (size_t)n : t->cap - 1;
}

/* Who can rewrite which records without the checks made here noticing. */
static void s_rewrite_text(struct s_text *t, const struct kb_audit_verify_result *r,
                           const struct kb_audit_window *w)
{
    bool none = w->rewritable_from_seq > r->last_seq;

    if (w->needs_epoch_key) {
        if (r->sealed)
            s_add(t, "Records after the last seal (seq %" PRIu64 ", epoch %" PRIu64 ", %s) ",
                  r->last_seal_seq, r->last_seal_epoch, r->last_seal_ts);
        else
            s_add(t, "No epoch is sealed in these files: the records ");
        if (r->anchored && r->last_anchor_seq > (r->sealed ? r->last_seal_seq : 0))
            s_add(t, "%safter the last anchor (seq %" PRIu64 ") ", r->sealed ? "and " : "",
                  r->last_anchor_seq);
        if (none)
            s_add(t, "would be rewritable by whoever holds the current epoch key, but there are "
                     "none: every verified record is sealed by a key that no longer exists. ");
        else
            s_add(t,
                  "can be rewritten by whoever holds the current epoch key (root on the "
                  "broker's host now reads it from the state file): seq %" PRIu64 "..%" PRIu64
                  ". Earlier records are sealed by keys that no longer exist. ",
                  w->rewritable_from_seq, r->last_seq);
        return;
    }
    if (r->mode == KB_AUDIT_MODE_HMAC)
        s_add(t, "The tags were not checked (no key file given): as for a sha256 chain, ");
    else
        s_add(t, "This is a sha256 chain (no key): ");
    if (r->anchored)
        s_add(t,
              "anyone who can write the files can rewrite the records after the last anchor "
              "(seq %" PRIu64 "..%" PRIu64 ") and recompute the chain; the anchors keep the "
              "records up to seq %" PRIu64 " as they were. ",
              w->rewritable_from_seq, r->last_seq, r->last_anchor_seq);
    else
        s_add(t, "anyone who can write the files can rewrite every record and recompute the "
                 "chain. ");
}

void kb_audit__window(struct kb_audit_verify_result *r)
{
    struct kb_audit_window *w = &r->window_data;
    struct s_text t = {.buf = r->window, .cap = sizeof(r->window)};
    uint64_t bound;

    memset(w, 0, sizeof(*w));
    r->window[0] = '\0';
    if (r->records == 0) {
        s_add(&t, "No record was verified, so nothing is protected.");
        return;
    }
    w->needs_epoch_key = r->tags_verified;
    bound = r->first_seq - 1;
    if (w->needs_epoch_key && r->sealed && r->last_seal_seq > bound)
        bound = r->last_seal_seq;
    if (r->anchored && r->last_anchor_seq > bound)
        bound = r->last_anchor_seq;
    w->rewritable_from_seq = bound + 1;
    w->droppable_from_seq = r->anchored ? r->last_anchor_seq + 1 : r->first_seq;
    if (r->reason != KB_AUDIT_OK)
        s_add(&t, "Of the records verified before the finding: ");
    s_rewrite_text(&t, r, w);
    if (r->anchored)
        s_add(&t,
              "Records after the last anchor (seq %" PRIu64 ", %s) can be dropped from the "
              "end without trace. ",
              r->last_anchor_seq, r->last_anchor_ts);
    else
        s_add(&t, "Without anchors, the log can be cut at any line boundary without trace; only "
                  "the clock shows it (a running broker seals every epoch, so its log's last "
                  "record is never older than one epoch). ");
    if (r->first_seq > 1)
        s_add(&t,
              "The files begin at seq %" PRIu64 ": the records before it are not in them "
              "and were not checked. ",
              r->first_seq);
    if (r->stale)
        s_add(&t,
              "The last record (%s) is more than one epoch (%" PRId64 " s) old%s: the broker "
              "has stopped writing or the end of the log is missing. ",
              r->last_ts, r->epoch_seconds, r->ends_with_stop ? " but is a clean stop" : "");
    if (t.len > 0 && r->window[t.len - 1] == ' ')
        r->window[--t.len] = '\0';
}
