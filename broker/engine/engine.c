/*
 * engine.c - the engine object, operations, the job queue with its concurrency limit, tenant
 * status, and the event/log helpers every step uses.
 *
 * Scheduling: kb_engine_provision/revoke put one job per tenant at the end of the queue and arm
 * the kick timer (0 ms); the kick starts queued jobs in order, skipping tenants that already
 * have a job running, until broker.concurrency jobs run, and completes operations that had no
 * job. A job that ends starts the next ones directly (it ends inside a loop callback, never inside
 * the caller's initiating call).
 *
 * This file never calls back from inside kb_engine_provision/revoke, and never logs anything but
 * names, ids, codes and messages (never a secret).
 */
#include "engine/engine_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "config/policy.h"

static void s_schedule(struct kb_engine *e);

const char *kb_tenant_state_name(enum kb_tenant_state state)
{
    static const char *const names[] = {"pending", "provisioning", "ready",
                                        "error",   "revoking",     "revoked"};

    return (unsigned)state < sizeof(names) / sizeof(names[0]) ? names[state] : "unknown";
}

const char *kb_engine_result_name(enum kb_engine_result result)
{
    static const char *const names[] = {"start", "done", "skip", "error"};

    return (unsigned)result < sizeof(names) / sizeof(names[0]) ? names[result] : "unknown";
}

void kb_engine_client_config(const struct kb_config *cfg, struct kb_aws_client_config *out)
{
    memset(out, 0, sizeof(*out));
    out->region = cfg->aws.region;
    out->profile = cfg->aws.profile;
    out->endpoint_url = cfg->aws.endpoint_url;
    for (size_t i = 0; i < KB_AWS_SERVICE_COUNT; i++)
        out->service_url[i] = cfg->aws.service_url[i];
    out->s3_force_path_style = cfg->aws.s3_force_path_style;
    out->ca_bundle = cfg->aws.ca_bundle;
    out->max_attempts = cfg->aws.max_attempts;
    out->adaptive = true;
    out->creds.profile = cfg->aws.profile;
}

void kb_strf(char *dst, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(dst, len, fmt, ap);
    va_end(ap);
}

/* -- engine lifetime --------------------------------------------------------------------------- */

static void s_on_kick(uv_timer_t *timer)
{
    s_schedule(timer->data);
}

int kb_engine_new(uv_loop_t *loop, const struct kb_config *cfg, struct kb_aws_client *client,
                  struct kb_engine **out)
{
    struct kb_engine *e;

    if (loop == NULL || cfg == NULL || client == NULL || out == NULL)
        return KB_EINVAL;
    *out = NULL;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return KB_ENOMEM;
    e->tenants = calloc(cfg->ntenants > 0 ? cfg->ntenants : 1, sizeof(*e->tenants));
    if (e->tenants == NULL) {
        free(e);
        return KB_ENOMEM;
    }
    e->loop = loop;
    e->cfg = cfg;
    e->client = client;
    e->region = kb_aws_client_region(client);
    e->partition = kb_policy_partition(e->region);
    uv_timer_init(loop, &e->kick);
    e->kick.data = e;
    *out = e;
    return 0;
}

static void s_engine_free(struct kb_engine *e)
{
    free(e->tenants);
    free(e);
}

static void s_on_kick_closed(uv_handle_t *h)
{
    struct kb_engine *e = h->data;

    e->kick_closed = true;
    if (e->live_jobs == 0)
        s_engine_free(e);
}

static void s_kick(struct kb_engine *e)
{
    if (!e->destroying)
        uv_timer_start(&e->kick, s_on_kick, 0, 0);
}

bool kb_engine_busy(const struct kb_engine *e)
{
    return e->ops != NULL;
}

int kb_engine_tenant_status(const struct kb_engine *e, const char *name,
                            struct kb_tenant_status *out)
{
    const struct kb_tenant *t = kb_config_tenant(e->cfg, name);

    if (t == NULL)
        return KB_ENOTFOUND;
    *out = *kb_engine_status_of(e, t);
    return 0;
}

const struct kb_tenant_status *kb_engine_status_of(const struct kb_engine *e,
                                                   const struct kb_tenant *t)
{
    return &e->tenants[t - e->cfg->tenants].status;
}

/* -- jobs -------------------------------------------------------------------------------------- */

struct kb_tenant_status *kb_job_status(struct kb_job *j)
{
    return &j->e->tenants[j->ti].status;
}

void kb_job_ref(struct kb_job *j)
{
    j->refs++;
}

static void s_job_free(struct kb_job *j)
{
    struct kb_engine *e = j->e;

    kb_secret_destroy(j->new_secret);
    kb_credentials_cleanup(&j->probe_creds);
    free(j->tags);
    free(j->user_policy);
    free(j->bucket_policy);
    free(j);
    e->live_jobs--;
    if (e->destroying && e->live_jobs == 0 && e->kick_closed)
        s_engine_free(e);
}

static void s_on_timer_closed(uv_handle_t *h)
{
    s_job_free(h->data);
}

void kb_job_unref(struct kb_job *j)
{
    if (--j->refs > 0)
        return;
    if (j->timer_open) {
        j->timer_open = false;
        uv_close((uv_handle_t *)&j->timer, s_on_timer_closed);
        return;
    }
    s_job_free(j);
}

static struct kb_job *s_job_new(struct kb_op *op, size_t slot, size_t ti, enum kb_job_kind kind)
{
    struct kb_engine *e = op->e;
    struct kb_job *j = calloc(1, sizeof(*j));

    if (j == NULL)
        return NULL;
    j->e = e;
    j->op = op;
    j->slot = slot;
    j->ti = ti;
    j->t = &e->cfg->tenants[ti];
    j->kind = kind;
    j->refs = 1;
    e->live_jobs++;
    op->outcomes[slot].tenant = j->t->name;
    op->outcomes[slot].state = KB_TENANT_PENDING;
    op->outcomes[slot].message = "";
    return j;
}

/* -- events and logs --------------------------------------------------------------------------- */

void kb_job_event(struct kb_job *j, const char *step, enum kb_engine_result result,
                  const char *message, const char *request_id)
{
    struct kb_engine_event ev = {j->t->name, step, result, message != NULL ? message : "",
                                 request_id != NULL ? request_id : ""};
    struct kb_tenant_status *st = kb_job_status(j);

    snprintf(st->step, sizeof(st->step), "%s", step);
    kb_log(result == KB_ENGINE_ERROR ? KB_LOG_ERROR : KB_LOG_INFO, "step", "tenant", j->t->name,
           "op", j->kind == KB_JOB_PROVISION ? "provision" : "revoke", "step", step, "result",
           kb_engine_result_name(result), "request_id",
           request_id != NULL && request_id[0] != '\0' ? request_id : NULL, "message",
           message != NULL && message[0] != '\0' ? message : NULL, NULL);
    if (j->op->progress != NULL)
        j->op->progress(j->op->ctx, &ev);
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
        snprintf(j->fail_step, sizeof(j->fail_step), "%s", step);
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

void kb_job_fail_send(struct kb_job *j, const char *step, const char *operation, int rc)
{
    kb_job_fail(j, step, NULL, "could not send %s: %s", operation, kb_strerror(rc));
    kb_job_unref(j);
}

void kb_job_log_call(struct kb_job *j, const char *step, const char *operation,
                     const struct kb_aws_error *err, const char *request_id)
{
    char status[16], attempts[16];
    const char *rid = err != NULL ? err->request_id : request_id != NULL ? request_id : "";

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
    kb_log(KB_LOG_DEBUG, "aws-call", "tenant", j->t->name, "step", step, "operation",
           err->operation[0] != '\0' ? err->operation : operation, "result", "error", "status",
           status, "code", err->code[0] != '\0' ? err->code : kb_err_name(err->err), "message",
           err->message, "attempts", attempts, "request_id", rid[0] != '\0' ? rid : NULL, NULL);
}

void kb_job_drift(struct kb_job *j, const char *step, const char *what)
{
    kb_log(KB_LOG_WARN, "drift", "tenant", j->t->name, "step", step, "message", what, NULL);
}

/* -- operations -------------------------------------------------------------------------------- */

static void s_op_unlink(struct kb_op *op)
{
    for (struct kb_op **p = &op->e->ops; *p != NULL; p = &(*p)->next) {
        if (*p == op) {
            *p = op->next;
            return;
        }
    }
}

static void s_op_free(struct kb_op *op)
{
    for (size_t i = 0; op->messages != NULL && i < op->njobs; i++)
        free(op->messages[i]);
    free(op->messages);
    free(op->outcomes);
    free(op);
}

static void s_op_complete(struct kb_op *op)
{
    int err = op->canceled ? KB_ECANCELED : (op->nfailed > 0 ? KB_EAWS : 0);

    s_op_unlink(op);
    if (op->done != NULL)
        op->done(op->ctx, err, op->outcomes, op->njobs);
    s_op_free(op);
}

void kb_job_end(struct kb_job *j)
{
    struct kb_engine *e = j->e;
    struct kb_op *op = j->op;
    struct kb_tenant_status *st = kb_job_status(j);

    if (j->ended)
        return;
    j->ended = true;
    kb_secret_destroy(j->new_secret);
    j->new_secret = NULL;
    kb_credentials_cleanup(&j->probe_creds);
    if (j->failed) {
        st->state = KB_TENANT_ERROR;
        snprintf(st->message, sizeof(st->message), "%s", j->message);
        snprintf(st->step, sizeof(st->step), "%s", j->fail_step);
        op->nfailed++;
    } else {
        st->state = j->kind == KB_JOB_PROVISION ? KB_TENANT_READY : KB_TENANT_REVOKED;
        snprintf(st->message, sizeof(st->message), "%s", j->message);
    }
    op->outcomes[j->slot].state = st->state;
    op->messages[j->slot] = strdup(st->message);
    op->outcomes[j->slot].message = op->messages[j->slot] != NULL ? op->messages[j->slot] : "";
    kb_log(j->failed ? KB_LOG_ERROR : KB_LOG_INFO, "tenant", "tenant", j->t->name, "op",
           j->kind == KB_JOB_PROVISION ? "provision" : "revoke", "state",
           kb_tenant_state_name(st->state), "message", st->message[0] != '\0' ? st->message : NULL,
           NULL);
    e->tenants[j->ti].busy = false;
    e->running--;
    op->nended++;
    if (op->nended == op->njobs)
        s_op_complete(op);
    /* Schedule before the last reference goes: freeing the last job of a destroyed engine frees
     * the engine too. */
    s_schedule(e);
    kb_job_unref(j);
}

/* A job that never started (canceled in the queue). */
static void s_job_drop(struct kb_job *j)
{
    struct kb_op *op = j->op;

    op->canceled = true;
    op->nfailed++;
    op->outcomes[j->slot].state = KB_TENANT_ERROR;
    op->outcomes[j->slot].message = "canceled";
    op->nended++;
    if (op->nended == op->njobs)
        s_op_complete(op);
    kb_job_unref(j);
}

static bool s_job_prepare(struct kb_job *j)
{
    char msg[256];
    int rc;

    if (j->kind == KB_JOB_REVOKE)
        return true;
    rc = kb_rc_tenant_tags(j->t, &j->tags, &j->ntags);
    if (rc == 0)
        rc = kb_policy_tenant(j->t, j->e->partition, &j->user_policy, msg, sizeof(msg));
    else
        snprintf(msg, sizeof(msg), "%s", kb_strerror(rc));
    if (rc == 0) {
        rc = kb_policy_bucket(j->t->bucket, j->e->partition, &j->bucket_policy);
        if (rc != 0)
            snprintf(msg, sizeof(msg), "bucket policy: %s", kb_strerror(rc));
    }
    if (rc != 0)
        kb_job_fail(j, "policy", NULL, "cannot build the tenant's policies: %s", msg);
    return rc == 0;
}

static void s_job_start(struct kb_job *j)
{
    struct kb_tenant_status *st = kb_job_status(j);

    j->e->tenants[j->ti].busy = true;
    j->e->running++;
    st->state = j->kind == KB_JOB_PROVISION ? KB_TENANT_PROVISIONING : KB_TENANT_REVOKING;
    st->message[0] = '\0';
    if (!s_job_prepare(j)) {
        kb_job_end(j);
        return;
    }
    if (j->kind == KB_JOB_REVOKE) {
        kb_revoke_start(j);
        return;
    }
    j->bucket_running = j->user_running = true;
    kb_prov_bucket_start(j);
    kb_prov_user_start(j);
}

static void s_schedule(struct kb_engine *e)
{
    struct kb_job **p = &e->queue_head, *prev = NULL;

    for (struct kb_op *op = e->ops, *next; op != NULL; op = next) {
        next = op->next;
        if (op->njobs == 0)
            s_op_complete(op);
    }
    while (*p != NULL && (e->canceled || e->running < e->cfg->broker.concurrency)) {
        struct kb_job *j = *p;

        if (!e->canceled && e->tenants[j->ti].busy) {
            prev = j;
            p = &j->next;
            continue;
        }
        *p = j->next;
        if (e->queue_tail == j)
            e->queue_tail = prev;
        j->next = NULL;
        if (e->canceled)
            s_job_drop(j);
        else
            s_job_start(j);
        /* Starting or dropping may have changed the queue: walk it again from the start. */
        p = &e->queue_head;
        prev = NULL;
    }
}

static struct kb_op *s_op_new(struct kb_engine *e, size_t njobs, kb_engine_progress_cb progress,
                              kb_engine_done_cb done, void *ctx)
{
    struct kb_op *op = calloc(1, sizeof(*op));

    if (op == NULL)
        return NULL;
    op->outcomes = calloc(njobs > 0 ? njobs : 1, sizeof(*op->outcomes));
    op->messages = calloc(njobs > 0 ? njobs : 1, sizeof(*op->messages));
    if (op->outcomes == NULL || op->messages == NULL) {
        s_op_free(op);
        return NULL;
    }
    op->e = e;
    op->progress = progress;
    op->done = done;
    op->ctx = ctx;
    return op;
}

static int s_find(const struct kb_engine *e, const char *name, size_t *ti)
{
    const struct kb_tenant *t = kb_config_tenant(e->cfg, name);

    if (t == NULL)
        return KB_ENOTFOUND;
    *ti = (size_t)(t - e->cfg->tenants);
    return 0;
}

static int s_submit(struct kb_engine *e, const char *tenant, enum kb_job_kind kind,
                    const struct kb_engine_revoke_opts *ropts, kb_engine_progress_cb progress,
                    kb_engine_done_cb done, void *ctx)
{
    size_t first = 0, count = e->cfg->ntenants, ti;
    struct kb_job *head = NULL, **tail = &head;
    struct kb_op *op;

    if (e->canceled || e->destroying)
        return KB_ECANCELED;
    if (tenant != NULL) {
        if (s_find(e, tenant, &ti) != 0)
            return KB_ENOTFOUND;
        first = ti;
        count = 1;
    }
    op = s_op_new(e, count, progress, done, ctx);
    if (op == NULL)
        return KB_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        struct kb_job *j = s_job_new(op, i, first + i, kind);

        if (j == NULL) {
            for (struct kb_job *k = head, *next; k != NULL; k = next) {
                next = k->next;
                kb_job_unref(k);
            }
            s_op_free(op);
            return KB_ENOMEM;
        }
        if (ropts != NULL)
            j->ropts = *ropts;
        *tail = j;
        tail = &j->next;
    }
    op->njobs = count;
    op->next = e->ops;
    e->ops = op;
    if (head != NULL) {
        if (e->queue_tail != NULL)
            e->queue_tail->next = head;
        else
            e->queue_head = head;
        for (e->queue_tail = head; e->queue_tail->next != NULL;)
            e->queue_tail = e->queue_tail->next;
    }
    s_kick(e);
    return 0;
}

int kb_engine_provision(struct kb_engine *e, const char *tenant, kb_engine_progress_cb progress,
                        kb_engine_done_cb done, void *ctx)
{
    if (e == NULL)
        return KB_EINVAL;
    return s_submit(e, tenant, KB_JOB_PROVISION, NULL, progress, done, ctx);
}

int kb_engine_revoke(struct kb_engine *e, const char *tenant,
                     const struct kb_engine_revoke_opts *opts, kb_engine_progress_cb progress,
                     kb_engine_done_cb done, void *ctx)
{
    static const struct kb_engine_revoke_opts none;

    if (e == NULL || tenant == NULL)
        return KB_EINVAL;
    return s_submit(e, tenant, KB_JOB_REVOKE, opts != NULL ? opts : &none, progress, done, ctx);
}

void kb_engine_cancel(struct kb_engine *e)
{
    if (e == NULL || e->canceled)
        return;
    e->canceled = true;
    s_kick(e);
}

void kb_engine_destroy(struct kb_engine *e)
{
    if (e == NULL)
        return;
    /* From here on no callback of any operation runs: their owners may be gone. */
    for (struct kb_op *op = e->ops; op != NULL; op = op->next) {
        op->progress = NULL;
        op->done = NULL;
    }
    e->canceled = true;
    s_schedule(e);
    e->destroying = true;
    uv_timer_stop(&e->kick);
    uv_close((uv_handle_t *)&e->kick, s_on_kick_closed);
}
