/*
 * job.c - the job helpers every step uses (job.h): references, sending, the timer, step events,
 * failures, call logs, and the end of a job with its outcome and status.
 *
 * Every step event goes three ways from kb_job_event: the operation's progress callback (the
 * client that asked), the event bus (every subscriber), and the log. A job that ends READY or
 * REVOKED emits "provisioned" / "revoked" on the bus.
 *
 * This file never logs or emits anything but names, ids, codes and messages (never a secret).
 */
#include "engine/engine_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "events/events.h"

void kb_strf(char *dst, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(dst, len, fmt, ap);
    va_end(ap);
}

static struct kb_engine_tenant *s_tenant(const struct kb_job *j)
{
    return &j->e->tenants[j->ti];
}

/* -- life -------------------------------------------------------------------------------------- */

struct kb_job *kb_job__new(struct kb_engine *e, const struct kb_queued *q)
{
    const struct kb_job_kind *kind = q->op->kind;
    struct kb_job *j = calloc(1, sizeof(*j));

    if (j == NULL)
        return NULL;
    j->state = calloc(1, kind->state_size > 0 ? kind->state_size : 1);
    if (j->state == NULL) {
        free(j);
        return NULL;
    }
    j->e = e;
    j->kind = kind;
    j->op = q->op;
    j->slot = q->slot;
    j->ti = q->ti;
    j->t = &e->cfg->tenants[q->ti];
    j->client = e->client;
    j->cfg = e->cfg;
    j->region = e->region;
    j->partition = e->partition;
    j->ropts = &q->op->ropts;
    j->popts = &q->op->popts;
    j->quirks = &e->quirks;
    j->rotate_requested = q->op->rotate_requested;
    j->rollback = q->op->rollback;
    j->refs = 1;
    e->live_jobs++;
    return j;
}

void kb_job_ref(struct kb_job *j)
{
    j->refs++;
}

static void s_release(struct kb_job *j)
{
    if (j->kind->release != NULL && j->state != NULL)
        j->kind->release(j);
}

static void s_free(struct kb_job *j)
{
    struct kb_engine *e = j->e;

    s_release(j);
    free(j->state);
    free(j->forgotten_arn);
    free(j);
    kb_engine__job_freed(e);
}

static void on_timer_closed(uv_handle_t *h)
{
    s_free(h->data);
}

void kb_job_unref(struct kb_job *j)
{
    if (--j->refs > 0)
        return;
    if (j->timer_open) {
        j->timer_open = false;
        uv_close((uv_handle_t *)&j->timer, on_timer_closed);
        return;
    }
    s_free(j);
}

bool kb_job_send(struct kb_job *j, const char *step, const char *operation, int rc,
                 void (*unwind)(struct kb_job *j))
{
    if (rc == 0) {
        /* The callback runs later (always): taking its reference now is in time. */
        kb_job_ref(j);
        return true;
    }
    kb_job_fail(j, step, NULL, "could not send %s: %s", operation, kb_strerror(rc));
    unwind(j);
    return false;
}

static void on_timer(uv_timer_t *timer)
{
    struct kb_job *j = timer->data;

    j->timer_cb(j->timer_arg);
}

uint64_t kb_job_now(const struct kb_job *j)
{
    return uv_now(j->e->loop);
}

void kb_job_timer_start(struct kb_job *j, uint64_t ms, void (*cb)(void *arg), void *arg)
{
    if (!j->timer_open) {
        uv_timer_init(j->e->loop, &j->timer);
        j->timer.data = j;
        j->timer_open = true;
    }
    kb_job_ref(j); /* held by the timer until cb drops it */
    j->timer_cb = cb;
    j->timer_arg = arg;
    uv_timer_start(&j->timer, on_timer, ms, 0);
}

bool kb_job_canceled(const struct kb_job *j)
{
    return j->e->canceled;
}

/* -- events and logs --------------------------------------------------------------------------- */

void kb_job_event(struct kb_job *j, const char *step, enum kb_engine_result result,
                  const char *message, const char *request_id)
{
    struct kb_engine_event ev = {j->t->name, step, result, message != NULL ? message : "",
                                 request_id != NULL ? request_id : ""};
    struct kb_event bev = {
        .kind = KB_EVENT_STEP,
        .tenant = j->t->name,
        .op = j->kind->name,
        .step = step,
        .result = kb_engine_result_name(result),
        .message = ev.message,
        .request_id = ev.request_id,
    };

    s_tenant(j)->status.step = step;
    kb_log(result == KB_ENGINE_ERROR ? KB_LOG_ERROR : KB_LOG_INFO, "step", "tenant", j->t->name,
           "op", j->kind->name, "step", step, "result", kb_engine_result_name(result), "request_id",
           ev.request_id[0] != '\0' ? ev.request_id : NULL, "message",
           ev.message[0] != '\0' ? ev.message : NULL, NULL);
    kb_events_emit(j->e->events, &bev);
    if (j->op->progress != NULL)
        j->op->progress(j->op->ctx, &ev);
}

void kb_job_adopted(struct kb_job *j, const char *why, const char *request_id)
{
    char arn[320];
    struct kb_event ev = {.kind = KB_EVENT_ADOPTED,
                          .tenant = j->t->name,
                          .op = j->kind->name,
                          .message = why,
                          .request_id = request_id != NULL ? request_id : "",
                          .arn = arn};

    kb_strf(arn, sizeof(arn), "arn:%s:s3:::%s", j->partition, j->t->bucket);
    kb_log(KB_LOG_WARN, "bucket adopted", "tenant", j->t->name, "bucket", j->t->bucket, "why", why,
           "request_id", request_id != NULL && request_id[0] != '\0' ? request_id : NULL, NULL);
    kb_events_emit(j->e->events, &ev);
}

void kb_job_fail(struct kb_job *j, const char *step, const char *request_id, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!j->failed) {
        j->failed = true;
        j->fail_step = step;
        kb_strf(j->message, sizeof(j->message), "step %s: %s", step, msg);
    }
    kb_job_event(j, step, KB_ENGINE_ERROR, msg, request_id);
}

void kb_job_fail_aws(struct kb_job *j, const char *step, const struct kb_aws_error *err)
{
    char how[160];

    if (err->err == KB_EAWS)
        snprintf(how, sizeof(how), "HTTP %ld", err->status);
    else
        snprintf(how, sizeof(how), "%s", kb_strerror(err->err));
    kb_job_fail(j, step, err->request_id, "%s failed: %s%s%s (%s%s%s, %u attempt%s)",
                err->operation[0] != '\0' ? err->operation : "AWS call", err->code,
                err->code[0] != '\0' ? ": " : "", err->message, how,
                err->request_id[0] != '\0' ? ", request id " : "", err->request_id, err->attempts,
                err->attempts == 1 ? "" : "s");
}

/* The service of an operation the engine calls. The four APIs share no operation name; a name
 * not listed is IAM's, the one API whose operations the others' naming does not cover. */
static const char *s_service_of(const char *op)
{
    static const char *const s3[] = {"CreateBucket",
                                     "DeleteBucket",
                                     "DeleteBucketPolicy",
                                     "GetBucketEncryption",
                                     "GetBucketOwnershipControls",
                                     "GetBucketPolicy",
                                     "GetBucketTagging",
                                     "GetPublicAccessBlock",
                                     "HeadBucket",
                                     "ListObjectsV2",
                                     "PutBucketEncryption",
                                     "PutBucketOwnershipControls",
                                     "PutBucketPolicy",
                                     "PutBucketTagging",
                                     "PutPublicAccessBlock",
                                     NULL};
    static const char *const sm[] = {
        "CreateSecret",         "DeleteSecret",  "DescribeSecret",           "GetSecretValue",
        "ListSecretVersionIds", "ListSecrets",   "PutSecretValue",           "RestoreSecret",
        "TagResource",          "UntagResource", "UpdateSecretVersionStage", NULL};

    if (strcmp(op, "GetCallerIdentity") == 0)
        return "sts";
    for (size_t i = 0; s3[i] != NULL; i++)
        if (strcmp(op, s3[i]) == 0)
            return "s3";
    for (size_t i = 0; sm[i] != NULL; i++)
        if (strcmp(op, sm[i]) == 0)
            return "secretsmanager";
    return "iam";
}

void kb_job_log_call(struct kb_job *j, const char *step, const char *operation,
                     const struct kb_aws_error *err, const char *request_id)
{
    char status[16], attempts[16];
    const char *rid = err != NULL ? err->request_id : request_id != NULL ? request_id : "";
    const char *op = err != NULL && err->operation[0] != '\0' ? err->operation : operation;
    struct kb_event ev = {
        .kind = KB_EVENT_AWS_CALL,
        .tenant = j->t->name,
        .op = j->kind->name,
        .step = step,
        .result = err == NULL ? "ok" : "error",
        .message = err != NULL ? err->message : "",
        .request_id = rid,
        .service = s_service_of(op),
        .operation = op,
        .code = err == NULL            ? ""
                : err->code[0] != '\0' ? err->code
                                       : kb_err_name(err->err),
    };

    /* On the bus (the audit log records every call), then in the log at debug level. */
    kb_events_emit(j->e->events, &ev);
    if (!kb_log_enabled(KB_LOG_DEBUG))
        return;
    if (err == NULL) {
        kb_log(KB_LOG_DEBUG, "aws-call", "tenant", j->t->name, "step", step, "operation", operation,
               "result", "ok", "request_id", rid[0] != '\0' ? rid : NULL, NULL);
        return;
    }
    /* Errors too: many are expected answers (NoSuchEntity before CreateUser); a failed step is
     * logged at error level by kb_job_fail with the same request id. */
    snprintf(status, sizeof(status), "%ld", err->status);
    snprintf(attempts, sizeof(attempts), "%u", err->attempts);
    kb_log(KB_LOG_DEBUG, "aws-call", "tenant", j->t->name, "step", step, "operation", op, "result",
           "error", "status", status, "code", ev.code, "message", err->message, "attempts",
           attempts, "request_id", rid[0] != '\0' ? rid : NULL, NULL);
}

void kb_job_emit(struct kb_job *j, const struct kb_event *ev)
{
    kb_events_emit(j->e->events, ev);
}

void kb_job_drift(struct kb_job *j, const char *step, const char *what)
{
    kb_log(KB_LOG_WARN, "drift", "tenant", j->t->name, "step", step, "message", what, NULL);
}

/* -- status ------------------------------------------------------------------------------------ */

const struct kb_tenant_status *kb_job_status(const struct kb_job *j)
{
    return &s_tenant(j)->status;
}

const char *kb_job_cut_over(const struct kb_job *j)
{
    return s_tenant(j)->cut_over;
}

void kb_job_set_key(struct kb_job *j, const char *arn, const char *version_id, time_t when,
                    const char *probe)
{
    struct kb_engine_tenant *et = s_tenant(j);

    if (arn != NULL)
        kb_engine__set_arn(et, arn);
    snprintf(et->status.version_id, sizeof(et->status.version_id), "%s", version_id);
    et->status.last_rotation = when;
    kb_job_set_probe(j, probe);
}

void kb_job_set_probe(struct kb_job *j, const char *probe)
{
    struct kb_tenant_status *st = &s_tenant(j)->status;

    snprintf(st->probe, sizeof(st->probe), "%s", probe);
}

void kb_job_set_rotation_probe(struct kb_job *j, uint64_t ms)
{
    s_tenant(j)->status.rotation_probe_ms = ms;
}

void kb_job_set_life(struct kb_job *j, time_t due)
{
    j->life_due = due;
    j->life_set = true;
}

void kb_job_forget_key(struct kb_job *j)
{
    struct kb_engine_tenant *et = s_tenant(j);

    if (j->forgotten_arn == NULL && et->secret_arn != NULL) {
        j->forgotten_arn = et->secret_arn; /* ownership moves: the revoked event names it */
        et->secret_arn = NULL;
    }
    kb_engine__set_arn(et, "");
    et->status.version_id[0] = '\0';
    et->status.probe[0] = '\0';
}

/* -- the end ----------------------------------------------------------------------------------- */

/* "provisioned" / "revoked" on the bus. arn: the tenant's ARN before the job forgot it. */
static void s_announce(struct kb_job *j, const char *arn)
{
    const struct kb_tenant_status *st = kb_job_status(j);
    struct kb_event ev = {.tenant = j->t->name, .op = j->kind->name, .arn = arn};

    if (arn == NULL || arn[0] == '\0' || j->kind->own_events)
        return;
    if (st->state == KB_TENANT_READY) {
        ev.kind = KB_EVENT_PROVISIONED;
        ev.version_id = st->version_id[0] != '\0' ? st->version_id : NULL;
    } else if (st->state == KB_TENANT_REVOKED) {
        ev.kind = KB_EVENT_REVOKED;
    } else {
        return;
    }
    kb_events_emit(j->e->events, &ev);
}

/* The state a failed job leaves: DEGRADED when the kind allows it and the tenant had a key to
 * serve (it stays served: DESIGN.md "degrade, don't drop"), ERROR otherwise. */
static enum kb_tenant_state s_failed_state(const struct kb_job *j)
{
    const struct kb_tenant_status *st = kb_job_status(j);

    if (j->kind->failure_keeps_key && !j->access_removed &&
        (j->before == KB_TENANT_READY || j->before == KB_TENANT_DEGRADED) &&
        st->secret_arn[0] != '\0' && st->version_id[0] != '\0')
        return KB_TENANT_DEGRADED;
    return KB_TENANT_ERROR;
}

void kb_job_end(struct kb_job *j)
{
    struct kb_engine_tenant *et = s_tenant(j);
    struct kb_op *op = j->op;
    char note[96];
    size_t n;

    if (j->ended)
        return;
    j->ended = true;
    /* The kind's secrets go now, not with the last reference. */
    s_release(j);
    free(j->state);
    j->state = NULL;
    if (j->failed) {
        et->status.state = s_failed_state(j);
        et->status.step = j->fail_step;
        op->nfailed++;
    } else {
        et->status.state = j->kind->done;
    }
    kb_engine__job_schedule(j->e, j, et->status.state, note, sizeof(note));
    n = strlen(j->message);
    kb_strf(j->message + n, sizeof(j->message) - n, "%s", note);
    kb_engine__set_message(et, j->message);
    op->outcomes[j->slot].state = et->status.state;
    op->messages[j->slot] = strdup(et->status.message);
    op->outcomes[j->slot].message = op->messages[j->slot] != NULL ? op->messages[j->slot] : "";
    kb_log(j->failed ? KB_LOG_ERROR : KB_LOG_INFO, "tenant", "tenant", j->t->name, "op",
           j->kind->name, "state", kb_tenant_state_name(et->status.state), "message",
           et->status.message[0] != '\0' ? et->status.message : NULL, NULL);
    /* A revoke forgot the ARN: its event names the one it took. */
    s_announce(j, j->forgotten_arn != NULL ? j->forgotten_arn : et->status.secret_arn);
    kb_engine__job_ended(j->e, j);
    kb_job_unref(j);
}
