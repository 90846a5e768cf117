/*
 * engine_internal.h - what engine.c and job.c share: the engine, an operation, and the queue.
 * The job kinds see only job.h.
 *
 * Files by role: engine.c (engine, operations, queue, the kind table, status), job.c (the job
 * helpers every step uses), provision.c (the provision kind: the join of its two chains and the
 * key step after them), provision_bucket.c / provision_user.c / provision_key.c (its steps),
 * probe.c (the readiness probe, reusable by any kind), revoke.c (the revoke kind), rotate.c /
 * rotate_key.c (the rotate kind: the superseded key's windows, rotation; rotate.h), reconcile.c
 * (the pure decisions), follow.c (the follower of the tenants this broker does not rotate;
 * follow.h) and follow_plan.c (its pure decisions).
 */
#ifndef KB_ENGINE_INTERNAL_H
#define KB_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "engine/job.h"

struct kb_events;

/* What the engine keeps per tenant. The strings behind status are owned here (heap, sized to
 * their text), so that a tenant costs a few hundred bytes, not the worst case. */
struct kb_engine_tenant {
    struct kb_tenant_status status;
    char *message, *secret_arn; /* owned; behind status.message and status.secret_arn */
    bool busy;                  /* a job of this tenant runs: the next one waits in the queue */
    /* The background schedule (kb_engine_start_background). */
    unsigned queued;   /* entries of this tenant in the queue */
    unsigned failures; /* provisions failed in a row (0 after a success) */
    uint64_t due;      /* loop time (ms) of the next background provision; 0: none (never
                          provisioned by this process, revoked, or the interval is 0) */
    /* The rotation pass (rotate.c) of a rotator tenant: a window step, an interrupted rotation,
     * or rotate_every. */
    uint64_t life_due;        /* loop time (ms); 0: none */
    uint64_t rotate_hold;     /* loop time (ms) before which a failed pass is not retried */
    unsigned rotate_failures; /* rotation passes failed in a row */
    /* The version every watch subscriber of the tenant acknowledged (kb_engine_cut_over): while
     * it is AWSCURRENT, a rotation pass deactivates the superseded key without waiting for
     * aws.overlap. "" none. */
    char cut_over[64];
    bool cut_over_due; /* a pass has still to read cut_over (set by kb_engine_cut_over) */
};

/* One tenant's place in the queue. The job itself (and the kind's state) is allocated only when
 * it starts, so a queued operation over N tenants costs N of these, not N jobs. */
struct kb_queued {
    struct kb_queued *next;
    struct kb_op *op;
    size_t slot, ti;
};

struct kb_op {
    struct kb_engine *e;
    struct kb_op *next;
    const struct kb_job_kind *kind;
    struct kb_engine_revoke_opts ropts;
    struct kb_engine_provision_opts popts;
    bool rotate_requested;
    bool rollback;
    kb_engine_progress_cb progress;
    kb_engine_done_cb done;
    void *ctx;
    size_t njobs, nended, nfailed;
    bool canceled;
    size_t noutcomes;                   /* njobs, and the followed tenants a provision skipped */
    struct kb_engine_outcome *outcomes; /* noutcomes, in config order */
    char **messages;                    /* owned copies behind outcomes[i].message */
};

struct kb_engine {
    uv_loop_t *loop;
    const struct kb_config *cfg;
    struct kb_aws_client *client;
    struct kb_events *events; /* NULL: emits nowhere */
    kb_engine_gate_fn gate;   /* NULL: every job starts */
    void *gate_ctx;
    kb_engine_pre_finish_fn pre_finish; /* NULL: rotations do not ask */
    void *pre_finish_ctx;
    const char *region;
    const char *partition;
    struct kb_engine_tenant *tenants; /* cfg->ntenants */
    struct kb_queued *queue_head, *queue_tail;
    size_t running;
    size_t live_jobs; /* jobs not yet freed */
    struct kb_op *ops;
    struct kb_engine_quirks quirks;
    uv_timer_t kick; /* runs the scheduler and completes empty operations, always later */
    /* The background schedule: one timer for every tenant's due time, armed for the earliest
     * (or earlier: a timer that finds nothing due rearms itself). */
    uv_timer_t background;
    uint64_t background_at; /* loop time the timer fires at; 0: not armed */
    bool background_on;
    struct kb_follow *follow; /* the follower of the tenants this broker does not rotate; NULL
                                 until kb_engine_start_background, or when there are none */
    unsigned handles_open;    /* kick and background, until their close callbacks ran */
    bool canceled, destroying;
};

/* job.c -> engine.c: a job is ending with state (its outcome not yet recorded): updates the
 * tenant's background schedule and writes what the status should add (" (retry 2 in 10s)"), or
 * "", into note. */
void kb_engine__job_schedule(struct kb_engine *e, struct kb_job *j, enum kb_tenant_state state,
                             char *note, size_t len);
/* job.c -> engine.c: a job has ended (outcome recorded in op); schedules the next ones. */
void kb_engine__job_ended(struct kb_engine *e, struct kb_job *j);
/* job.c -> engine.c: a job's memory is gone; frees a destroyed engine after its last job. */
void kb_engine__job_freed(struct kb_engine *e);
/* engine.c -> job.c: a started job for a queued entry (NULL when out of memory). */
struct kb_job *kb_job__new(struct kb_engine *e, const struct kb_queued *q);
/* The status strings: replace the owned copy behind status.message / status.secret_arn. */
void kb_engine__set_message(struct kb_engine_tenant *et, const char *message);
void kb_engine__set_arn(struct kb_engine_tenant *et, const char *arn);

#endif
