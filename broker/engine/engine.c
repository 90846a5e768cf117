/*
 * engine.c - the engine object, operations, the job queue with its concurrency limit, the table
 * of job kinds, and the tenants' status.
 *
 * Scheduling: kb_engine_provision/revoke put one queue entry per tenant at the end of the queue
 * and arm the kick timer (0 ms); the kick starts queued entries in order, skipping tenants that
 * already have a job running, until broker.concurrency jobs run, and completes operations that
 * had no job. Only a starting entry becomes a job (job.c) with its kind's state, so the memory of
 * a large operation is bounded by the concurrency, not by the tenants. A job that ends starts the
 * next ones directly (it ends inside a loop callback, never inside the caller's initiating call).
 *
 * The background schedule (kb_engine_start_background, the daemon's): every provision that ends
 * sets its tenant's due time (a failure: the retry backoff of reconcile.h; a success: the
 * periodic reconcile), and one timer for the whole engine fires at the earliest due time, queues
 * a provision for each tenant that is due and has no job running or queued, and rearms for the
 * next. A job ending sets the timer earlier when its tenant's time comes first (O(1)); only a
 * firing timer walks the tenants. Per tenant this costs a due time and two counters, no handle.
 *
 * This file never calls back from inside kb_engine_provision/revoke, and never logs anything but
 * names, ids, codes and messages (never a secret).
 */
#include "engine/engine_internal.h"

#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "config/policy.h"
#include "engine/follow.h"
#include "engine/reconcile.h"

/* The job kinds (provision.c, revoke.c, rotate.c). */
extern const struct kb_job_kind kb_job_kind_provision;
extern const struct kb_job_kind kb_job_kind_revoke;
extern const struct kb_job_kind kb_job_kind_rotate;

static void s_schedule(struct kb_engine *e);

const char *kb_tenant_state_name(enum kb_tenant_state state)
{
    static const char *const names[] = {"pending", "provisioning", "ready",  "degraded",
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
    for (size_t i = 0; i < cfg->ntenants; i++) {
        e->tenants[i].status.message = "";
        e->tenants[i].status.step = "";
        e->tenants[i].status.secret_arn = "";
    }
    e->loop = loop;
    e->cfg = cfg;
    e->client = client;
    e->region = kb_aws_client_region(client);
    e->partition = kb_policy_partition(e->region);
    uv_timer_init(loop, &e->kick);
    e->kick.data = e;
    uv_timer_init(loop, &e->background);
    e->background.data = e;
    e->handles_open = 2;
    kb_follow__init_status(e);
    *out = e;
    return 0;
}

void kb_engine_set_events(struct kb_engine *e, struct kb_events *bus)
{
    e->events = bus;
}

static void s_engine_free(struct kb_engine *e)
{
    for (size_t i = 0; i < e->cfg->ntenants; i++) {
        free(e->tenants[i].message);
        free(e->tenants[i].secret_arn);
    }
    free(e->tenants);
    free(e);
}

static void s_on_handle_closed(uv_handle_t *h)
{
    struct kb_engine *e = h->data;

    if (--e->handles_open == 0 && e->live_jobs == 0)
        s_engine_free(e);
}

void kb_engine__job_freed(struct kb_engine *e)
{
    e->live_jobs--;
    if (e->destroying && e->live_jobs == 0 && e->handles_open == 0)
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

/* -- status ------------------------------------------------------------------------------------ */

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

/* Replaces an owned status string (kept when equal: most runs end with the same text). */
static void s_set(char **owned, const char **shown, const char *text)
{
    char *copy;

    if (text == NULL)
        text = "";
    if (strcmp(*shown, text) == 0)
        return;
    copy = text[0] != '\0' ? strdup(text) : NULL;
    free(*owned);
    *owned = copy;
    *shown = copy != NULL ? copy : "";
}

void kb_engine__set_message(struct kb_engine_tenant *et, const char *message)
{
    s_set(&et->message, &et->status.message, message);
}

void kb_engine__set_arn(struct kb_engine_tenant *et, const char *arn)
{
    s_set(&et->secret_arn, &et->status.secret_arn, arn);
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
    for (size_t i = 0; op->messages != NULL && i < op->noutcomes; i++)
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
        op->done(op->ctx, err, op->outcomes, op->noutcomes);
    s_op_free(op);
}

static void s_op_ended_one(struct kb_op *op)
{
    op->nended++;
    if (op->nended == op->njobs)
        s_op_complete(op);
}

void kb_engine__job_ended(struct kb_engine *e, struct kb_job *j)
{
    e->tenants[j->ti].busy = false;
    e->running--;
    s_op_ended_one(j->op);
    /* The caller still holds the job's last reference: freeing it may free a destroyed engine,
     * so the next jobs start first. */
    s_schedule(e);
}

/* A queued entry that never started (canceled in the queue, or no memory for its job). */
static void s_drop(struct kb_queued *q, const char *why)
{
    struct kb_op *op = q->op;

    op->canceled = op->canceled || q->op->e->canceled;
    op->nfailed++;
    op->outcomes[q->slot].state = KB_TENANT_ERROR;
    op->outcomes[q->slot].message = why;
    op->e->tenants[q->ti].queued--;
    free(q);
    s_op_ended_one(op);
}

void kb_engine_set_pre_finish(struct kb_engine *e, kb_engine_pre_finish_fn fn, void *ctx)
{
    e->pre_finish = fn;
    e->pre_finish_ctx = ctx;
}

void kb_engine_set_gate(struct kb_engine *e, kb_engine_gate_fn gate, void *ctx)
{
    e->gate = gate;
    e->gate_ctx = ctx;
}

/* A job the gate refused ends on its timer (never from inside the scheduler). */
static void on_refused(void *arg)
{
    struct kb_job *j = arg;

    kb_job_end(j);
    kb_job_unref(j);
}

/* Builds what a job needs before its first call; a job that cannot start fails at "prepare". */
static void s_start(struct kb_engine *e, struct kb_queued *q)
{
    struct kb_job *j = kb_job__new(e, q);
    struct kb_engine_tenant *et = &e->tenants[q->ti];
    char why[512];

    if (j == NULL) {
        s_drop(q, "out of memory");
        return;
    }
    free(q);
    et->queued--;
    et->busy = true;
    e->running++;
    j->before = et->status.state;
    et->status.state = j->kind->running;
    kb_engine__set_message(et, "");
    if (e->gate != NULL && e->gate(e->gate_ctx, why, sizeof(why)) != 0) {
        kb_job_fail(j, "admit", NULL, "%s", why);
        kb_job_timer_start(j, 0, on_refused, j);
        return;
    }
    j->kind->start(j);
}

static void s_schedule(struct kb_engine *e)
{
    struct kb_queued **p = &e->queue_head, *prev = NULL;

    for (struct kb_op *op = e->ops, *next; op != NULL; op = next) {
        next = op->next;
        if (op->njobs == 0)
            s_op_complete(op);
    }
    while (*p != NULL && (e->canceled || e->running < e->cfg->broker.concurrency)) {
        struct kb_queued *q = *p;

        if (!e->canceled && e->tenants[q->ti].busy) {
            prev = q;
            p = &q->next;
            continue;
        }
        *p = q->next;
        if (e->queue_tail == q)
            e->queue_tail = prev;
        q->next = NULL;
        if (e->canceled)
            s_drop(q, "canceled");
        else
            s_start(e, q);
        /* Starting or dropping may have changed the queue: walk it again from the start. */
        p = &e->queue_head;
        prev = NULL;
    }
}

static struct kb_op *s_op_new(struct kb_engine *e, const struct kb_job_kind *kind, size_t njobs,
                              kb_engine_progress_cb progress, kb_engine_done_cb done, void *ctx)
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
    op->kind = kind;
    op->progress = progress;
    op->done = done;
    op->ctx = ctx;
    return op;
}

/* An operation's options, by kind. */
struct s_opts {
    struct kb_engine_revoke_opts revoke;
    struct kb_engine_provision_opts provision;
    bool rotate_requested;
    bool rollback;
};

#define S_FOLLOWED_NOTE                                                                            \
    "followed by this broker (tenants[].rotate is false): its rotator provisions, rotates and "    \
    "revokes it"

/* One operation of kind over the tenants first..first+count, queued at the end. With
 * skip_followed, the tenants this broker follows get no job: their outcome is their state now. */
static int s_enqueue_over(struct kb_engine *e, const struct kb_job_kind *kind, size_t first,
                          size_t count, const struct s_opts *opts, kb_engine_progress_cb progress,
                          kb_engine_done_cb done, void *ctx, bool skip_followed)
{
    struct kb_queued *head = NULL, *last = NULL;
    struct kb_op *op;
    size_t njobs = 0, skipped = 0;

    op = s_op_new(e, kind, count, progress, done, ctx);
    if (op == NULL)
        return KB_ENOMEM;
    if (opts != NULL) {
        op->ropts = opts->revoke;
        op->popts = opts->provision;
        op->rotate_requested = opts->rotate_requested;
        op->rollback = opts->rollback;
    }
    for (size_t i = 0; i < count; i++) {
        struct kb_queued *q;

        op->outcomes[i] =
            (struct kb_engine_outcome){e->cfg->tenants[first + i].name, KB_TENANT_PENDING, ""};
        if (skip_followed && !e->cfg->tenants[first + i].rotate) {
            op->outcomes[i].state = e->tenants[first + i].status.state;
            op->outcomes[i].message = S_FOLLOWED_NOTE;
            skipped++;
            continue;
        }
        q = calloc(1, sizeof(*q));
        if (q == NULL) {
            for (struct kb_queued *k = head, *next; k != NULL; k = next) {
                next = k->next;
                free(k);
            }
            s_op_free(op);
            return KB_ENOMEM;
        }
        *q = (struct kb_queued){.op = op, .slot = i, .ti = first + i};
        njobs++;
        if (last != NULL)
            last->next = q;
        else
            head = q;
        last = q;
    }
    for (struct kb_queued *q = head; q != NULL; q = q->next)
        e->tenants[q->ti].queued++;
    op->njobs = njobs;
    op->noutcomes = count;
    if (skipped > 0) {
        char n[32];

        snprintf(n, sizeof(n), "%zu", skipped);
        kb_log(KB_LOG_INFO, "provision-skipped", "followed_tenants", n, "message", S_FOLLOWED_NOTE,
               NULL);
    }
    op->next = e->ops;
    e->ops = op;
    if (head != NULL) {
        if (e->queue_tail != NULL)
            e->queue_tail->next = head;
        else
            e->queue_head = head;
        e->queue_tail = last;
    }
    s_kick(e);
    return 0;
}

static int s_enqueue(struct kb_engine *e, const struct kb_job_kind *kind, size_t first,
                     size_t count, const struct s_opts *opts, kb_engine_progress_cb progress,
                     kb_engine_done_cb done, void *ctx)
{
    return s_enqueue_over(e, kind, first, count, opts, progress, done, ctx, false);
}

static int s_submit(struct kb_engine *e, const char *tenant, const struct kb_job_kind *kind,
                    const struct s_opts *opts, kb_engine_progress_cb progress,
                    kb_engine_done_cb done, void *ctx)
{
    size_t first = 0, count = e->cfg->ntenants;

    if (e->canceled || e->destroying)
        return KB_ECANCELED;
    if (tenant != NULL) {
        const struct kb_tenant *t = kb_config_tenant(e->cfg, tenant);

        if (t == NULL)
            return KB_ENOTFOUND;
        /* A followed tenant gets no job of any kind: its rotator does the work. */
        if (!t->rotate)
            return KB_EDENIED;
        first = (size_t)(t - e->cfg->tenants);
        count = 1;
    }
    return s_enqueue_over(e, kind, first, count, opts, progress, done, ctx, tenant == NULL);
}

int kb_engine_provision(struct kb_engine *e, const char *tenant, kb_engine_progress_cb progress,
                        kb_engine_done_cb done, void *ctx)
{
    if (e == NULL)
        return KB_EINVAL;
    return s_submit(e, tenant, &kb_job_kind_provision, NULL, progress, done, ctx);
}

int kb_engine_provision_with(struct kb_engine *e, const char *tenant,
                             const struct kb_engine_provision_opts *opts,
                             kb_engine_progress_cb progress, kb_engine_done_cb done, void *ctx)
{
    struct s_opts o = {0};

    if (e == NULL || tenant == NULL)
        return KB_EINVAL;
    if (opts != NULL)
        o.provision = *opts;
    return s_submit(e, tenant, &kb_job_kind_provision, &o, progress, done, ctx);
}

int kb_engine_revoke(struct kb_engine *e, const char *tenant,
                     const struct kb_engine_revoke_opts *opts, kb_engine_progress_cb progress,
                     kb_engine_done_cb done, void *ctx)
{
    struct s_opts o = {0};

    if (e == NULL || tenant == NULL)
        return KB_EINVAL;
    if (opts != NULL)
        o.revoke = *opts;
    return s_submit(e, tenant, &kb_job_kind_revoke, &o, progress, done, ctx);
}

int kb_engine_rotate(struct kb_engine *e, const char *tenant, kb_engine_progress_cb progress,
                     kb_engine_done_cb done, void *ctx)
{
    return kb_engine_rotate_with(e, tenant, NULL, progress, done, ctx);
}

int kb_engine_rotate_with(struct kb_engine *e, const char *tenant,
                          const struct kb_engine_rotate_opts *opts, kb_engine_progress_cb progress,
                          kb_engine_done_cb done, void *ctx)
{
    bool rollback = opts != NULL && opts->rollback;
    struct s_opts o = {.rotate_requested = !rollback, .rollback = rollback};
    const struct kb_tenant *t;

    if (e == NULL || tenant == NULL)
        return KB_EINVAL;
    t = kb_config_tenant(e->cfg, tenant);
    if (t == NULL)
        return KB_ENOTFOUND;
    if (!t->rotate)
        return KB_EDENIED;
    return s_submit(e, tenant, &kb_job_kind_rotate, &o, progress, done, ctx);
}

int kb_engine_cut_over(struct kb_engine *e, const char *tenant, const char *version)
{
    const struct kb_tenant *t;
    struct kb_engine_tenant *et;

    if (e == NULL || tenant == NULL || version == NULL || version[0] == '\0')
        return KB_EINVAL;
    t = kb_config_tenant(e->cfg, tenant);
    if (t == NULL)
        return KB_ENOTFOUND;
    if (!t->rotate || !e->cfg->aws.overlap_ends_on_ack)
        return KB_EDENIED;
    et = &e->tenants[t - e->cfg->tenants];
    if (strcmp(et->status.version_id, version) != 0)
        return KB_EINVAL;
    if (strcmp(et->cut_over, version) == 0)
        return 0;
    snprintf(et->cut_over, sizeof(et->cut_over), "%s", version);
    et->cut_over_due = true;
    kb_log(KB_LOG_INFO, "cut-over", "tenant", t->name, "version_id", version, NULL);
    if (e->canceled || e->destroying)
        return KB_ECANCELED;
    /* The pass runs now; or, while a job of the tenant runs or waits (or none has made it ready
     * yet), when the next one ends: cut_over_due (kb_engine__job_schedule). A failed pass's
     * backoff does not hold it back. */
    et->rotate_hold = 0;
    if (et->busy || et->queued > 0 ||
        (et->status.state != KB_TENANT_READY && et->status.state != KB_TENANT_DEGRADED))
        return 0;
    return s_enqueue(e, &kb_job_kind_rotate, (size_t)(t - e->cfg->tenants), 1, NULL, NULL, NULL,
                     NULL);
}

void kb_engine_cancel(struct kb_engine *e)
{
    if (e == NULL || e->canceled)
        return;
    e->canceled = true;
    uv_timer_stop(&e->background);
    e->background_at = 0;
    kb_follow__stop(e->follow);
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
    uv_close((uv_handle_t *)&e->kick, s_on_handle_closed);
    uv_timer_stop(&e->background);
    uv_close((uv_handle_t *)&e->background, s_on_handle_closed);
    kb_follow__destroy(e->follow);
    e->follow = NULL;
}

/* -- the background schedule ------------------------------------------------------------------- */

static void s_on_background(uv_timer_t *timer);

/* Arms the timer for due (loop time), unless it already fires earlier. */
static void s_arm_at(struct kb_engine *e, uint64_t due)
{
    uint64_t now = uv_now(e->loop);

    if (!e->background_on || e->canceled || e->destroying || due == 0)
        return;
    if (e->background_at != 0 && e->background_at <= due)
        return;
    e->background_at = due;
    uv_timer_start(&e->background, s_on_background, due > now ? due - now : 0, 0);
}

/* Arms the timer for the earliest due time of all tenants (a walk over them). */
/* When tenant i's next rotation pass may run (loop ms; 0: none): only a ready tenant this broker
 * rotates, never before a failed pass's backoff is over. */
static uint64_t s_life_due(const struct kb_engine *e, size_t i)
{
    const struct kb_engine_tenant *et = &e->tenants[i];

    if (!e->cfg->tenants[i].rotate || et->life_due == 0 || et->status.state != KB_TENANT_READY)
        return 0;
    return et->life_due > et->rotate_hold ? et->life_due : et->rotate_hold;
}

static void s_arm(struct kb_engine *e)
{
    uint64_t next = 0;

    for (size_t i = 0; i < e->cfg->ntenants; i++) {
        uint64_t due = e->tenants[i].due, life = s_life_due(e, i);

        if (life != 0 && (due == 0 || life < due))
            due = life;

        if (due != 0 && (next == 0 || due < next))
            next = due;
    }
    uv_timer_stop(&e->background);
    e->background_at = 0;
    s_arm_at(e, next);
}

static void s_on_background(uv_timer_t *timer)
{
    struct kb_engine *e = timer->data;
    uint64_t now = uv_now(e->loop);
    char attempt[16];

    e->background_at = 0;
    for (size_t i = 0; i < e->cfg->ntenants && !e->canceled; i++) {
        struct kb_engine_tenant *et = &e->tenants[i];
        uint64_t life = s_life_due(e, i);
        int rc;

        if (life != 0 && life <= now && !et->busy && et->queued == 0 &&
            (et->due == 0 || et->due > now)) {
            et->life_due = 0;
            kb_log(KB_LOG_INFO, "background-rotate", "tenant", e->cfg->tenants[i].name, NULL);
            rc = s_enqueue(e, &kb_job_kind_rotate, i, 1, NULL, NULL, NULL, NULL);
            if (rc != 0)
                et->life_due = now + 1000u * e->cfg->broker.reconcile.retry_initial;
            continue;
        }
        if (et->due == 0 || et->due > now)
            continue;
        et->due = 0;
        /* A job of the tenant runs or waits: its end sets the next due time. */
        if (et->busy || et->queued > 0)
            continue;
        snprintf(attempt, sizeof(attempt), "%u", et->failures);
        kb_log(KB_LOG_INFO, "background-provision", "tenant", e->cfg->tenants[i].name, "reason",
               et->failures > 0 ? "retry" : "reconcile", "attempt",
               et->failures > 0 ? attempt : NULL, NULL);
        rc = s_enqueue(e, &kb_job_kind_provision, i, 1, NULL, NULL, NULL, NULL);
        if (rc != 0) {
            /* Out of memory: try again later rather than never. */
            kb_log(KB_LOG_WARN, "background-provision", "tenant", e->cfg->tenants[i].name, "error",
                   kb_strerror(rc), NULL);
            et->due = now + kb_rc_retry_delay_ms(1, e->cfg->broker.reconcile.retry_initial,
                                                 e->cfg->broker.reconcile.retry_max,
                                                 randombytes_random());
        }
    }
    s_arm(e);
}

void kb_engine_start_background(struct kb_engine *e)
{
    if (e == NULL || e->background_on || e->canceled || e->destroying)
        return;
    e->background_on = true;
    s_arm(e);
    if (kb_follow__start(e) != 0)
        kb_log(KB_LOG_ERROR, "follow-start", "error", kb_strerror(KB_ENOMEM), NULL);
}

/* A job's finding of the next rotation pass (unix seconds) as loop time. */
static void s_set_life(struct kb_engine *e, struct kb_engine_tenant *et, time_t due)
{
    time_t now = time(NULL);

    if (due == 0) {
        et->life_due = 0;
        return;
    }
    et->life_due = uv_now(e->loop) + (due > now ? (uint64_t)(due - now) * 1000u : 0u);
    if (et->life_due == 0)
        et->life_due = 1;
}

/* A rotation pass ended: a failure holds the next one back (the retry backoff) and has the
 * tenant provisioned again, which finds it ready (its key was never taken away) or repairs it. */
static void s_rotate_schedule(struct kb_engine *e, struct kb_job *j, struct kb_engine_tenant *et,
                              enum kb_tenant_state state)
{
    const struct kb_config_reconcile *rc = &e->cfg->broker.reconcile;
    uint64_t now = uv_now(e->loop), delay;

    if (state == KB_TENANT_READY) {
        et->rotate_failures = 0;
        et->rotate_hold = 0;
    } else {
        if (et->rotate_failures < UINT_MAX)
            et->rotate_failures++;
        delay = kb_rc_retry_delay_ms(et->rotate_failures, rc->retry_initial, rc->retry_max,
                                     randombytes_random());
        et->rotate_hold = now + delay;
        if (!j->life_set)
            et->life_due = et->rotate_hold;
        if (et->due == 0 || et->due > now + delay)
            et->due = now + delay;
    }
    if (!e->background_on)
        return;
    s_arm_at(e, et->due);
    s_arm_at(e, s_life_due(e, j->ti));
}

void kb_engine__job_schedule(struct kb_engine *e, struct kb_job *j, enum kb_tenant_state state,
                             char *note, size_t len)
{
    const struct kb_config_reconcile *rc = &e->cfg->broker.reconcile;
    struct kb_engine_tenant *et = &e->tenants[j->ti];
    uint64_t delay;
    char attempt[16], delay_ms[32];

    note[0] = '\0';
    if (j->life_set && !e->canceled && !e->destroying)
        s_set_life(e, et, j->life_due);
    if (j->cut_over_read)
        et->cut_over_due = false;
    else if (et->cut_over_due)
        et->life_due = uv_now(e->loop) > 0 ? uv_now(e->loop) : 1; /* the pass that reads it */
    if (j->kind == &kb_job_kind_rotate && !e->canceled && !e->destroying) {
        s_rotate_schedule(e, j, et, state);
        return;
    }
    if (j->kind != &kb_job_kind_provision || e->canceled || e->destroying) {
        /* A revoke (done or not) takes the tenant off the schedule; a job ended by a cancel
         * (shutdown) schedules nothing. */
        if (j->kind != &kb_job_kind_provision)
            et->failures = 0;
        et->due = 0;
        et->life_due = 0;
        return;
    }
    if (state == KB_TENANT_READY) {
        et->failures = 0;
        delay = kb_rc_reconcile_delay_ms(rc->interval, randombytes_random());
    } else {
        if (et->failures < UINT_MAX)
            et->failures++;
        delay = kb_rc_retry_delay_ms(et->failures, rc->retry_initial, rc->retry_max,
                                     randombytes_random());
    }
    et->due = delay > 0 ? uv_now(e->loop) + delay : 0;
    if (!e->background_on)
        return;
    if (state != KB_TENANT_READY) {
        snprintf(attempt, sizeof(attempt), "%u", et->failures);
        snprintf(delay_ms, sizeof(delay_ms), "%" PRIu64, delay);
        kb_log(KB_LOG_INFO, "retry-scheduled", "tenant", j->t->name, "attempt", attempt, "delay_ms",
               delay_ms, NULL);
        kb_strf(note, len, "; retry %u in %.1fs", et->failures, (double)delay / 1000.0);
    }
    s_arm_at(e, et->due);
    s_arm_at(e, s_life_due(e, j->ti));
}
