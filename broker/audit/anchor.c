/*
 * anchor.c - anchoring the audit chain in S3 (broker.audit.anchor): every interval, the position
 * of the last record known to be on disk - {chain_id, file, seq, epoch, h, tag} - becomes an
 * object of its own, written with Object Lock in COMPLIANCE mode until now + retention.
 *
 * Nobody, the broker's own AWS identity included, can delete or overwrite that object version
 * before its retention ends, so `kbctl audit verify --anchors` detects a log cut before the last
 * anchor, and an anchor changed after the fact (a second version of its key). One object per
 * anchor (key <prefix><chain_id>/<seq, 20 digits>.json) - never rewritten. Only synced records are
 * anchored (the writer fsyncs first), so a power loss cannot leave an anchor past the file's end.
 * Each outcome is itself an audit record ("anchor"). The call never blocks the loop; at most one
 * is in flight.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit_internal.h"
#include "audit/record.h"
#include "audit/verify.h"
#include "aws/awserr.h"
#include "aws/s3.h"
#include "common/container.h"
#include "common/err.h"
#include "common/log.h"
#include "config/config.h"

struct kb_audit__anchor {
    struct kb_audit *a; /* NULL once the writer has gone (a call may still be in flight) */
    uv_timer_t timer;
    bool due; /* the interval passed: anchor the next synced position */
    bool in_flight;
    uint64_t anchored; /* seq of the last anchor written; 0 = none */
    uint64_t sending;  /* seq of the anchor in flight */
    char key[1100];
};

uint64_t kb_audit__anchored(const struct kb_audit *a, bool *enabled)
{
    *enabled = a->anchor != NULL;
    return a->anchor != NULL ? a->anchor->anchored : 0;
}

static const char *s_basename(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash != NULL ? slash + 1 : path;
}

static void s_outcome(struct kb_audit *a, const struct kb_audit__anchor *an,
                      const struct kb_aws_error *err, const char *request_id)
{
    struct kb_audit_field f[2] = {{"anchored_seq", NULL, (int64_t)an->sending},
                                  {"object", an->key, 0}};
    struct kb_audit_record r = {
        .event = "anchor",
        .result = err == NULL ? "ok" : "error",
        .error = err != NULL ? err->message : NULL,
        .aws = {"s3", "PutObject", err != NULL ? err->request_id : request_id,
                err != NULL ? (err->code[0] != '\0' ? err->code : kb_err_name(err->err)) : NULL},
        .fields = f,
        .nfields = 2,
    };

    kb_audit__queue(a, &r);
}

static void on_put(void *ctx, const struct kb_aws_error *err,
                   const struct kb_s3_put_object_result *res)
{
    struct kb_audit__anchor *an = ctx;
    struct kb_audit *a = an->a;

    an->in_flight = false;
    if (a == NULL) {
        free(an); /* the writer closed meanwhile */
        return;
    }
    an->due = false; /* the next try, or the next anchor, at the next interval */
    if (err == NULL) {
        an->anchored = an->sending;
    } else {
        kb_log(KB_LOG_ERROR, "audit: cannot write an anchor; trying again at the next interval",
               "bucket", a->cfg->anchor.bucket, "object", an->key, "code", err->code, "message",
               err->message, "request_id", err->request_id[0] != '\0' ? err->request_id : NULL,
               NULL);
    }
    s_outcome(a, an, err, res != NULL ? res->request_id : NULL);
}

static void s_send(struct kb_audit *a, struct kb_audit__anchor *an)
{
    const struct kb_audit__pos *p = &a->synced_pos;
    struct kb_audit_anchor anc = {
        .seq = p->seq, .epoch = p->epoch, .has_tag = a->chain.mode == KB_AUDIT_MODE_HMAC};
    struct kb_s3_put_object_input in;
    char body[KB_AUDIT_ANCHOR_BODY_MAX];
    time_t now = time(NULL);
    size_t n = 0;
    int rc;

    /* verify.c's key name and body: the one form kbctl audit verify accepts. */
    memcpy(anc.chain_id, a->chain.chain_id, sizeof(anc.chain_id));
    snprintf(anc.file, sizeof(anc.file), "%s", s_basename(a->cfg->path));
    memcpy(anc.h, p->h, sizeof(anc.h));
    memcpy(anc.tag, p->tag, sizeof(anc.tag));
    kb_audit_format_ts((int64_t)now * 1000, anc.ts);
    rc = kb_audit_anchor_key(a->cfg->anchor.prefix, a->chain.chain_id, p->seq, an->key,
                             sizeof(an->key));
    if (rc == 0)
        rc = kb_audit_anchor_body(&anc, body, sizeof(body), &n);
    if (rc != 0) {
        struct kb_aws_error err = {.err = rc};

        /* A log file name the anchor form cannot hold ('"', '\\', control bytes): say so. */
        snprintf(err.message, sizeof(err.message),
                 "cannot make the anchor object for seq %" PRIu64 " (log file name %.200s): %s",
                 p->seq, anc.file, kb_strerror(rc));
        an->sending = p->seq;
        an->due = false;
        s_outcome(a, an, &err, NULL);
        return;
    }
    in = (struct kb_s3_put_object_input){
        .bucket = a->cfg->anchor.bucket,
        .key = an->key,
        .body = body,
        .body_len = n,
        .content_type = "application/json",
        .lock_mode = KB_S3_LOCK_COMPLIANCE,
        .retain_until = now + (time_t)a->cfg->anchor.retention,
    };
    an->sending = p->seq;
    rc = kb_s3_put_object(a->aws, &in, on_put, an);
    if (rc == 0) {
        an->in_flight = true;
        return;
    }
    {
        struct kb_aws_error err = {.err = rc};

        snprintf(err.message, sizeof(err.message), "could not send PutObject: %s", kb_strerror(rc));
        an->due = false; /* the next interval tries again */
        s_outcome(a, an, &err, NULL);
    }
}

void kb_audit__anchor_poke(struct kb_audit *a)
{
    struct kb_audit__anchor *an = a->anchor;

    if (an == NULL || !an->due || an->in_flight || a->synced_pos.seq <= an->anchored)
        return;
    s_send(a, an);
}

static void on_timer(uv_timer_t *t)
{
    struct kb_audit__anchor *an = container_of(t, struct kb_audit__anchor, timer);

    an->due = true;
    /* Anchor only what is on disk, and all of it: when records wait or are not synced yet, the
     * writer fsyncs them first and pokes after that work; else send now. */
    if (!kb_audit__sync(an->a))
        kb_audit__anchor_poke(an->a);
}

int kb_audit__anchor_start(struct kb_audit *a)
{
    struct kb_audit__anchor *an = calloc(1, sizeof(*an));

    if (an == NULL)
        return KB_ENOMEM;
    if (a->aws == NULL) {
        free(an);
        return KB_EINVAL;
    }
    an->a = a;
    uv_timer_init(a->loop, &an->timer);
    a->handles_open++;
    a->anchor = an;
    /* The first anchor at once: anchor.required must not wait a whole interval at start. */
    uv_timer_start(&an->timer, on_timer, 0, a->cfg->anchor.interval * 1000);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct kb_audit__anchor *an = container_of((uv_timer_t *)h, struct kb_audit__anchor, timer);
    struct kb_audit *a = an->a;

    an->a = NULL;
    if (!an->in_flight)
        free(an);
    kb_audit__handle_closed(a);
}

void kb_audit__anchor_stop(struct kb_audit *a)
{
    struct kb_audit__anchor *an = a->anchor;

    if (an == NULL)
        return;
    a->anchor = NULL;
    uv_close((uv_handle_t *)&an->timer, on_timer_closed);
}
