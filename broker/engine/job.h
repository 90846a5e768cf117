/*
 * job.h - the job core: one job is one tenant's run of one kind of work (provision, revoke; rotate
 * next), a state machine of AWS calls on the broker's loop. This header is what every job kind
 * file uses; the engine (engine.c) owns the queue and starts and ends jobs.
 *
 * A kind is one entry of a table (struct kb_job_kind): its name, the tenant states while it runs
 * and once it succeeded, the size of its own state (allocated zeroed when the job starts, at
 * kb_job_state(), freed with the job), start, and release (frees what its state owns). Adding a
 * kind is one table entry (engine.c) and one file. Kinds: provision, revoke, rotate.
 *
 * Lifetime: the engine holds one reference while the job runs; every AWS call in flight and the
 * job's timer hold one more (kb_job_send, kb_job_timer_start). kb_job_end() records the outcome
 * exactly once, when nothing of the job is in flight any more (each kind waits for its concurrent
 * calls), and drops the engine's reference; the memory goes with the last reference (after the
 * timer handle has closed). Nothing of a finished job stays behind.
 *
 * Job files never log or emit a secret: events carry names, ids, codes and AWS messages.
 */
#ifndef KB_JOB_H
#define KB_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "aws/awserr.h"
#include "config/config.h"
#include "engine/engine.h"

struct kb_job;
struct kb_op;

struct kb_job_kind {
    const char *name;             /* "provision": logs, events */
    enum kb_tenant_state running; /* the tenant's state while the job runs */
    enum kb_tenant_state done;    /* and after it succeeded (ERROR after a failure) */
    /* A failure leaves a tenant that had a servable key (READY or DEGRADED with ARN and version
     * when the job started) DEGRADED, still serving that key, instead of ERROR (provision). */
    bool failure_keeps_key;
    /* The kind announces its own outcome on the bus (rotate: rotated, rotation_failed): no
     * "provisioned" when it ends READY. */
    bool own_events;
    size_t state_size;                 /* the kind's own state, see kb_job_state */
    void (*start)(struct kb_job *j);   /* runs the job; ends with kb_job_end, later */
    void (*release)(struct kb_job *j); /* frees what the state owns (NULL: nothing); once */
};

/* What the engine has learned about the AWS endpoint it talks to, for every later job (not kept
 * across restarts: the first job after a start learns it again). */
struct kb_engine_quirks {
    /* CreateBucket with Tags in CreateBucketConfiguration was refused (moto, LocalStack, MinIO,
     * Ceph RGW...): create untagged and tag with PutBucketTagging (provision_bucket.c). */
    bool create_bucket_no_tags;
};

struct kb_job {
    struct kb_engine *e;
    const struct kb_job_kind *kind;
    struct kb_op *op;
    size_t slot; /* index in the operation's outcomes */
    size_t ti;   /* index of the tenant in the config */
    const struct kb_tenant *t;
    struct kb_aws_client *client; /* the engine's */
    const struct kb_config *cfg;  /* the engine's */
    const char *region, *partition;
    const struct kb_engine_revoke_opts *ropts;    /* the operation's; revoke only */
    const struct kb_engine_provision_opts *popts; /* the operation's; provision only */
    struct kb_engine_quirks *quirks;              /* the engine's */
    unsigned refs;
    enum kb_tenant_state before; /* the tenant's state when the job started */
    bool ended, failed;
    bool access_removed;   /* the job took away what the tenant's key granted: no DEGRADED */
    const char *fail_step; /* static, the step of the first failure */
    char message[1024];    /* the outcome's message */
    void *state;           /* the kind's own, state_size bytes */
    char *forgotten_arn;   /* owned: the ARN kb_job_forget_key took from the status */
    bool rotate_requested; /* rotate: asked for (kbctl rotate), not a background pass */
    bool rollback;         /* rotate: move AWSCURRENT back instead (kbctl rotate --rollback) */
    bool cut_over_read;    /* rotate: the pass planned with kb_job_cut_over */
    /* When the tenant's next rotation pass is due (unix seconds; 0: none), as the job found AWS
     * (kb_rc_plan_rotate's next): the engine's background schedule runs one then. */
    time_t life_due;
    bool life_set; /* life_due is this job's finding (else the schedule keeps what it had) */

    uv_timer_t timer; /* kb_job_timer_start */
    void (*timer_cb)(void *arg);
    void *timer_arg;
    bool timer_open;
};

/* The kind's own state of j (zeroed when the job started). */
static inline void *kb_job_state(struct kb_job *j)
{
    return j->state;
}

void kb_job_ref(struct kb_job *j);
void kb_job_unref(struct kb_job *j);

/*
 * The one way a step sends an AWS call: rc is what the typed call returned (its callback gets j
 * and runs later, always). rc 0: takes the reference the callback drops and returns true. Else
 * records the failure ("could not send <operation>: ...") at step, calls unwind(j) (the kind's way
 * out: end its chain, or the job) and returns false.
 */
bool kb_job_send(struct kb_job *j, const char *step, const char *operation, int rc,
                 void (*unwind)(struct kb_job *j));

/* Runs cb(arg) after ms on the job's one timer, holding a reference on j that cb must drop
 * (kb_job_unref). */
void kb_job_timer_start(struct kb_job *j, uint64_t ms, void (*cb)(void *arg), void *arg);

/* The loop's clock (uv_now), ms. */
uint64_t kb_job_now(const struct kb_job *j);

/* Emits a step event (progress callback, event bus), logs it (info; error level for errors) and
 * updates the status step. step must be a static string. */
void kb_job_event(struct kb_job *j, const char *step, enum kb_engine_result result,
                  const char *message, const char *request_id);

/* Records the job's first failure ("step <step>: <message>") and emits the error event. Later
 * failures are logged but do not replace the first. */
void kb_job_fail(struct kb_job *j, const char *step, const char *request_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* kb_job_fail for a failed AWS call: "<Operation> failed: <code>: <message> (HTTP n, request id
 * r)". */
void kb_job_fail_aws(struct kb_job *j, const char *step, const struct kb_aws_error *err);

/* Emits one finished AWS call on the bus (KB_EVENT_AWS_CALL: service, operation, result, code,
 * request id; the audit log records each) and logs it at debug level, naming tenant, step and
 * request id: err's, or request_id (the result's; may be NULL) when the call succeeded. */
void kb_job_log_call(struct kb_job *j, const char *step, const char *operation,
                     const struct kb_aws_error *err, const char *request_id);

/* The request id of a typed result that may be NULL (the call failed). */
#define KB_RID(result) ((result) != NULL ? (result)->request_id : NULL)

/* Records that the job took a bucket without keybroker's tags under management (why: a sentence
 * naming the reason): warns in the log and emits "adopted" on the bus with the bucket's ARN. */
void kb_job_adopted(struct kb_job *j, const char *why, const char *request_id);

struct kb_event;
/* Emits ev (borrowed for the call) on the engine's bus: a kind's own events (rotated, ...). */
void kb_job_emit(struct kb_job *j, const struct kb_event *ev);

/* Logs drift (warn) as an event "drift". */
void kb_job_drift(struct kb_job *j, const char *step, const char *what);

/* Whether the engine is canceling: a job waiting on its timer stops instead of sending more. */
bool kb_job_canceled(const struct kb_job *j);

/* Ends the job: outcome, status, events and accounting; the engine schedules the next jobs.
 * Exactly once (later calls do nothing). */
void kb_job_end(struct kb_job *j);

/* -- the tenant's status, as the job changes it ------------------------------------------------ */

const struct kb_tenant_status *kb_job_status(const struct kb_job *j);

/* The version every watch subscriber of j's tenant acknowledged ("" none): kb_engine_cut_over. */
const char *kb_job_cut_over(const struct kb_job *j);
/* A stored key: ARN (NULL keeps the known one), version, when, probe result ("" unknown). */
void kb_job_set_key(struct kb_job *j, const char *arn, const char *version_id, time_t when,
                    const char *probe);
void kb_job_set_probe(struct kb_job *j, const char *probe);
/* The time to ready of the last rotation's new key (ms), for status and metrics. */
void kb_job_set_rotation_probe(struct kb_job *j, uint64_t ms);
/* Sets j->life_due / life_set (see struct kb_job). */
void kb_job_set_life(struct kb_job *j, time_t due);
/* Forgets ARN, version and probe (revoked). */
void kb_job_forget_key(struct kb_job *j);

/* snprintf for messages, where cutting a long one short is the intended behaviour. */
void kb_strf(char *dst, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
