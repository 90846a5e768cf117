/*
 * engine_internal.h - what the engine's files share: the engine, an operation, and the tenant job
 * (one state machine per tenant and operation), with the helpers every step uses.
 *
 * Files by role: engine.c (engine, operations, queue, status, events), provision_bucket.c (the
 * bucket chain), provision_user.c (the user chain), provision_key.c (the key step), probe.c (the
 * readiness probe), revoke.c (revoke), reconcile.c (the pure decisions).
 *
 * Lifetime of a job: the queue holds one reference; every AWS call in flight and the probe timer
 * hold one more. kb_job_end() records the outcome exactly once, when nothing of the job is in
 * flight any more (each phase waits for its concurrent calls), and drops the queue's reference;
 * the memory goes when the last reference does (after the timer handle has closed).
 */
#ifndef KB_ENGINE_INTERNAL_H
#define KB_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "aws/credentials.h"
#include "engine/engine.h"
#include "engine/reconcile.h"
#include "common/secret.h"
#include "common/uuid.h"

enum kb_job_kind { KB_JOB_PROVISION, KB_JOB_REVOKE };

struct kb_engine_tenant {
    struct kb_tenant_status status;
    bool busy; /* a job of this tenant runs: the next one waits in the queue */
};

struct kb_op {
    struct kb_engine *e;
    struct kb_op *next;
    kb_engine_progress_cb progress;
    kb_engine_done_cb done;
    void *ctx;
    size_t njobs, nended, nfailed;
    bool canceled;
    struct kb_engine_outcome *outcomes; /* njobs, in config order */
    char **messages;                    /* owned copies behind outcomes[i].message */
};

struct kb_engine {
    uv_loop_t *loop;
    const struct kb_config *cfg;
    struct kb_aws_client *client;
    const char *region;
    const char *partition;
    struct kb_engine_tenant *tenants; /* cfg->ntenants */
    struct kb_job *queue_head, *queue_tail;
    size_t running;
    size_t live_jobs; /* jobs not yet freed */
    struct kb_op *ops;
    uv_timer_t kick; /* runs the scheduler and completes empty operations, always later */
    bool canceled, destroying, kick_closed;
};

struct kb_job {
    struct kb_engine *e;
    struct kb_op *op;
    size_t slot; /* index in op->outcomes */
    struct kb_job *next;
    size_t ti;
    const struct kb_tenant *t;
    enum kb_job_kind kind;
    struct kb_engine_revoke_opts ropts;
    unsigned refs;
    bool ended;
    struct kb_aws_tag *tags; /* kb_rc_tenant_tags */
    size_t ntags;
    char *user_policy, *bucket_policy;

    bool failed;
    char fail_step[32];
    char message[1024];

    /* provision: the two chains */
    bool bucket_running, user_running;
    bool bucket_fresh, user_fresh;
    unsigned user_tries; /* GetUser/CreateUser rounds (a user deleted and re-created meanwhile) */
    size_t setting;

    /* provision: the key step */
    bool secret_exists;
    char secret_arn[1024];
    time_t secret_changed;
    struct kb_rc_snapshot snap;
    struct kb_rc_plan plan;
    size_t del_next;
    char new_key[128];
    struct kb_secret *new_secret;
    char new_version[KB_UUID_STR_SIZE];
    char store_error[768];
    char store_request_id[96]; /* of the failed store call, named by the step's error */

    /* the readiness probe */
    uv_timer_t timer;
    bool timer_open;
    uint64_t probe_deadline; /* uv_now() ms */
    uint64_t probe_started;
    unsigned probe_attempt;
    unsigned probe_inflight;
    bool sts_ok, s3_ok;
    char probe_sts[384], probe_s3[384]; /* the last answer of each leg */
    struct kb_credentials probe_creds;

    /* revoke */
    bool user_exists, secret_live, bucket_exists;
    char keys[KB_RC_MAX_KEYS][128];
    size_t nkeys, key_next;
};

/* -- engine.c ---------------------------------------------------------------------------------- */

/* snprintf for messages, where cutting a long one short is the intended behaviour. */
void kb_strf(char *dst, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void kb_job_ref(struct kb_job *j);
void kb_job_unref(struct kb_job *j);

/* Emits a progress event, logs it (info; error level for errors) and updates the status step. */
void kb_job_event(struct kb_job *j, const char *step, enum kb_engine_result result,
                  const char *message, const char *request_id);

/* Records the job's first failure ("step <step>: <message>") and emits the error event. Later
 * failures are logged but do not replace the first. */
void kb_job_fail(struct kb_job *j, const char *step, const char *request_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* kb_job_fail for a failed AWS call: "<Operation> failed: <code>: <message> (HTTP n, request id
 * r)". */
void kb_job_fail_aws(struct kb_job *j, const char *step, const struct kb_aws_error *err);

/* kb_job_fail for a call that could not be started (rc from the typed call); also drops the
 * reference taken for it. */
void kb_job_fail_send(struct kb_job *j, const char *step, const char *operation, int rc);

/* Logs one finished AWS call at debug level (errors at info), naming tenant, step and request
 * id: err's, or request_id (the result's; may be NULL) when the call succeeded. */
void kb_job_log_call(struct kb_job *j, const char *step, const char *operation,
                     const struct kb_aws_error *err, const char *request_id);

/* The request id of a typed result that may be NULL (the call failed). */
#define KB_RID(result) ((result) != NULL ? (result)->request_id : NULL)

/* Logs drift (warn) as an event "drift". */
void kb_job_drift(struct kb_job *j, const char *step, const char *what);

/* Ends the job: outcome, status and accounting; schedules the next jobs. Exactly once. */
void kb_job_end(struct kb_job *j);

/* The tenant's status (for the steps that record ARN, version, probe). */
struct kb_tenant_status *kb_job_status(struct kb_job *j);

/* -- the steps --------------------------------------------------------------------------------- */

/* provision_bucket.c / provision_user.c: each ends with kb_prov_chain_end(j). */
void kb_prov_bucket_start(struct kb_job *j);
void kb_prov_user_start(struct kb_job *j);
/* Called by each chain when it has finished (ok or failed); the second one moves on. */
void kb_prov_chain_end(struct kb_job *j);

/* provision_key.c */
void kb_prov_key_start(struct kb_job *j);
/* Called by the probe when it has finished (ok, or the job failed). */
void kb_prov_key_probed(struct kb_job *j);

/* probe.c */
void kb_probe_start(struct kb_job *j);

/* revoke.c */
void kb_revoke_start(struct kb_job *j);

#endif
