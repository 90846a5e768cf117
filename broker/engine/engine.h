/*
 * engine.h - the provisioning engine: brings every tenant of the config to the state of
 * DESIGN.md section 7 on AWS, repairs drift, and revokes tenants, on the broker's loop.
 *
 * Provision is reconcile: every step reads AWS first and writes only what differs, so a second run
 * makes no mutating call and a run after any crash finishes the half-done work (AWS is the system
 * of record; the engine keeps no state on disk). Per tenant, the bucket chain and the user chain
 * run concurrently, then the user's inline policy (written only once the bucket is known to be
 * the tenant's; removed when the bucket is refused), then the key step (DescribeSecret,
 * ListAccessKeys, orphan clean-up, CreateAccessKey, CreateSecret/PutSecretValue with the version
 * id derived from the key, the readiness probe); tenants run concurrently up to
 * broker.concurrency, one job per tenant at a time. Resources that exist without keybroker's
 * tags are refused, untouched. In the daemon, failed tenants are retried and healthy ones
 * reconciled again by themselves (kb_engine_start_background).
 *
 * Callers see progress events (one per step start/done/skip/error) and one completion per
 * operation, always later on the loop, never from inside the initiating call. The engine logs
 * every step and AWS call (log.h) and never a secret: the new key's secret lives in a kb_secret
 * from CreateAccessKey until the readiness probe is over, and the stored value only until the
 * store request has been handed to the client.
 */
#ifndef KB_ENGINE_H
#define KB_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <uv.h>

#include "aws/client.h"
#include "config/config.h"

struct kb_engine;

enum kb_tenant_state {
    KB_TENANT_PENDING,      /* not provisioned by this process yet (or queued) */
    KB_TENANT_PROVISIONING, /* a provision job runs */
    KB_TENANT_READY,        /* AWSCURRENT holds an active key; bucket and user as configured */
    KB_TENANT_DEGRADED,     /* the last provision failed (see message), but the tenant was ready
                               before it: its last good ARN and version are still served */
    KB_TENANT_ERROR,        /* the last job failed and nothing is served: see message */
    KB_TENANT_REVOKING,     /* a revoke job runs */
    KB_TENANT_REVOKED,      /* keys, policy and user deleted, secret scheduled for deletion */
};

/* "pending", "provisioning", "ready", "degraded", "error", "revoking", "revoked". Static
 * string. */
const char *kb_tenant_state_name(enum kb_tenant_state state);

/* What the engine knows about a tenant. The strings are the engine's (never NULL): borrowed until
 * control returns to the loop, also in a copy made by kb_engine_tenant_status. */
struct kb_tenant_status {
    enum kb_tenant_state state;
    const char *message;    /* the error, or a short note ("created", "unchanged"); "" none */
    const char *step;       /* the step running now, or the one that failed; "" before */
    const char *secret_arn; /* "" until known */
    char version_id[64];    /* the version labelled AWSCURRENT, "" until known */
    time_t last_rotation;   /* when the AWSCURRENT key was stored (0 unknown; for a key stored
                               by an earlier run: the secret's LastChangedDate) */
    char probe[32];         /* "probed-ok", "timed-out", "not-probed" (a key stored earlier is
                               not probed again: that would need its secret), "" before */
    /* The last rotation's time to ready, from the probe's start with the new key to its success:
     * ms (at least 1); 0: none in this process. The metrics op exports it as
     * keybroker_rotation_time_to_ready_seconds. */
    uint64_t rotation_probe_ms;
};

enum kb_engine_result { KB_ENGINE_START, KB_ENGINE_DONE, KB_ENGINE_SKIP, KB_ENGINE_ERROR };

/* "start", "done", "skip", "error". Static string. */
const char *kb_engine_result_name(enum kb_engine_result result);

/* One progress event. Every string is borrowed until the callback returns. */
struct kb_engine_event {
    const char *tenant;
    const char *step; /* rotate: "user", "secret", "access-keys", "pending-label",
                         "record-superseded", "deactivate-key", "delete-key", "create-key",
                         "store-key", "read-pending", "probe", "move-current",
                         "remove-pending", "superseded-tag", "rotate"; provision: "bucket",
                         "public-access-block", "encryption", "ownership", "bucket-policy",
                         "bucket-tags", "user", "user-tags", "user-policy", "secret", "access-keys",
                         "create-key", "store-key", "probe"; revoke: "check", "delete-keys",
                         "delete-user-policy", "delete-user", "delete-secret", "delete-bucket" */
    enum kb_engine_result result;
    const char *message;    /* "" when none */
    const char *request_id; /* of the AWS call that decided the step, "" when none */
};
typedef void (*kb_engine_progress_cb)(void *ctx, const struct kb_engine_event *ev);

/* The outcome of one tenant in an operation. Strings borrowed until the callback returns. */
struct kb_engine_outcome {
    const char *tenant;
    enum kb_tenant_state state; /* READY / REVOKED on success; DEGRADED after a failed provision
                                   of a tenant that was ready (its key still served); ERROR
                                   otherwise */
    const char *message;
};
/* err: 0 when every tenant reached its goal, KB_EAWS when at least one failed, KB_ECANCELED
 * when the engine was canceled. outcomes (count entries, in config order) borrowed until the
 * callback returns. */
typedef void (*kb_engine_done_cb)(void *ctx, int err, const struct kb_engine_outcome *outcomes,
                                  size_t count);

/* What the AWS client needs from the config (aws.region, profile, endpoint_url, endpoints,
 * s3_force_path_style, ca_bundle, max_attempts). Strings borrowed from cfg. */
void kb_engine_client_config(const struct kb_config *cfg, struct kb_aws_client_config *out);

/* Creates the engine. loop, cfg and client are borrowed and must outlive it. Returns 0, KB_EINVAL
 * or KB_ENOMEM. Free with kb_engine_destroy. */
int kb_engine_new(uv_loop_t *loop, const struct kb_config *cfg, struct kb_aws_client *client,
                  struct kb_engine **out);

/* Optional: asked before each provision, rotate or revoke job starts (the audit log's fail_closed
 * and anchor.required). Returns 0, or non-zero with a sentence in why: the job fails at step
 * "admit" with it before any AWS call (a ready tenant stays served: degraded), and the
 * background schedule retries it with its usual backoff. Call before the first operation. */
typedef int (*kb_engine_gate_fn)(void *ctx, char *why, size_t why_len);
void kb_engine_set_gate(struct kb_engine *e, kb_engine_gate_fn gate, void *ctx);

struct kb_event;
/* Optional: the pre_finish hook (the plugin host). A rotation that stored and probed its new key
 * calls fn(ctx, ev, done, done_ctx) before it moves AWSCURRENT: ev (borrowed for the call; kind
 * KB_EVENT_STEP, step "pre-finish", op "rotate", tenant, arn, version_id the new version,
 * previous_version_id the current one, rotation_id) says which. fn must call done(done_ctx, rc,
 * why) exactly once, later (only a refusal to ask at all, rc non-zero, may come from inside fn,
 * and the rotation then touches nothing after the call): rc 0 lets the rotation move AWSCURRENT;
 * non-zero aborts it with why (a sentence, borrowed for the call): AWSCURRENT stays, the new key
 * stays AWSPENDING for the next pass, and rotation_failed is emitted. A rollback does not ask. Call
 * before the first operation. */
typedef void (*kb_engine_hook_done_cb)(void *done_ctx, int rc, const char *why);
typedef void (*kb_engine_pre_finish_fn)(void *ctx, const struct kb_event *ev,
                                        kb_engine_hook_done_cb done, void *done_ctx);
void kb_engine_set_pre_finish(struct kb_engine *e, kb_engine_pre_finish_fn fn, void *ctx);

struct kb_events;
/* Emits every step event, and "provisioned" / "revoked" when a tenant reaches READY / REVOKED,
 * on bus (borrowed; it must outlive the engine). Call before the first operation. */
void kb_engine_set_events(struct kb_engine *e, struct kb_events *bus);

/*
 * Provisions (reconciles) the tenant called tenant, or every tenant when tenant is NULL. progress
 * (may be NULL) gets each step event; done gets the outcome once every tenant's job has ended.
 * Returns 0 (done will run, later) or KB_ENOTFOUND (no such tenant) / KB_ENOMEM / KB_ECANCELED
 * (then no callback runs). ctx is passed through.
 *
 * A tenant this broker follows (tenants[].rotate false) gets no job of any kind, ever: named,
 * provision, kb_engine_revoke and kb_engine_rotate return KB_EDENIED (nothing queued); with
 * tenant NULL it is skipped (logged) and its outcome is its state now, with a message that says
 * so. Its status comes from the follower alone (kb_engine_start_background).
 */
int kb_engine_provision(struct kb_engine *e, const char *tenant, kb_engine_progress_cb progress,
                        kb_engine_done_cb done, void *ctx);

struct kb_engine_provision_opts {
    /* Take the tenant's bucket under management when it exists without keybroker's tags (not
     * when it carries another tenant's): tags it, then reads and repairs every setting. Emits
     * "adopted". Only on an operator's explicit request (kbctl adopt). */
    bool adopt_bucket;
};

/* kb_engine_provision of one tenant (required) with opts (NULL: none). */
int kb_engine_provision_with(struct kb_engine *e, const char *tenant,
                             const struct kb_engine_provision_opts *opts,
                             kb_engine_progress_cb progress, kb_engine_done_cb done, void *ctx);

struct kb_engine_revoke_opts {
    bool delete_bucket;       /* delete the bucket when it is empty (kept otherwise, reported) */
    bool force_delete_secret; /* ForceDeleteWithoutRecovery instead of aws.recovery_window_days */
};

/*
 * Revokes tenant (required): refuses foreign resources, then deletes its access keys, inline
 * policy and user, schedules the secret's deletion, and deletes the bucket only when asked and
 * empty. Idempotent: what is already gone counts as done. Same callbacks and returns as
 * kb_engine_provision.
 */
int kb_engine_revoke(struct kb_engine *e, const char *tenant,
                     const struct kb_engine_revoke_opts *opts, kb_engine_progress_cb progress,
                     kb_engine_done_cb done, void *ctx);

/*
 * Rotates tenant's access key now (DESIGN.md section 8; rotate.c has the steps): frees a slot only
 * by deleting the superseded key past aws.overlap + aws.retire, resumes a rotation an AWSPENDING
 * version shows interrupted, else creates a key, stores it as AWSPENDING, probes it, moves
 * AWSCURRENT to it and removes AWSPENDING; emits "rotated" (or "rotation_failed"). The old key is
 * deactivated after aws.overlap and deleted after aws.retire by later passes of the background
 * schedule. Returns KB_EDENIED when this broker is not the tenant's rotator
 * (tenants[].rotate false: nothing is queued), else as kb_engine_provision. A failure leaves the
 * tenant serving its AWSCURRENT key (DEGRADED with the reason).
 */
int kb_engine_rotate(struct kb_engine *e, const char *tenant, kb_engine_progress_cb progress,
                     kb_engine_done_cb done, void *ctx);

struct kb_engine_rotate_opts {
    /* Move AWSCURRENT back to the AWSPREVIOUS version instead (DESIGN.md section 8, step 7):
     * reactivates its key when it was deactivated, probes it, moves the label, records the
     * version rolled back from as superseded (its windows start now) and emits "rolled_back".
     * Refused (the job fails, nothing changed) when there is no AWSPREVIOUS version, when its
     * key was deleted (aws.retire over) or while a rotation is unfinished (AWSPENDING). */
    bool rollback;
};
/* kb_engine_rotate with opts (NULL: a rotation). */
int kb_engine_rotate_with(struct kb_engine *e, const char *tenant,
                          const struct kb_engine_rotate_opts *opts, kb_engine_progress_cb progress,
                          kb_engine_done_cb done, void *ctx);

/*
 * Acknowledged cut-over (DESIGN.md section 8, step 7): every watch subscriber of tenant has
 * acknowledged version (the server counts them). When version is the tenant's AWSCURRENT, a
 * rotation pass is queued at once (or right after the tenant's running job) and deactivates the
 * superseded key without waiting for aws.overlap; its deletion still waits for the supersede
 * time + aws.overlap + aws.retire. Returns 0; KB_EDENIED when this broker is not the tenant's
 * rotator or aws.overlap_ends_on_ack is false; KB_EINVAL when version is not the tenant's
 * AWSCURRENT (an ack of an older version changes nothing); KB_ENOTFOUND; KB_ENOMEM.
 */
int kb_engine_cut_over(struct kb_engine *e, const char *tenant, const char *version);

/*
 * Turns on the engine's background schedule (the daemon's; keybrokerd --provision-only and
 * --revoke never call it, so they end when their operation does). From then on, on one timer for
 * the whole engine:
 *  - a tenant whose provision failed (ERROR or DEGRADED) is provisioned again after
 *    broker.reconcile.retry_initial, twice as long after each further failure in a row, up to
 *    broker.reconcile.retry_max, each wait jittered +-25% (kb_rc_retry_delay_ms); a success
 *    resets the count;
 *  - a tenant whose provision succeeded is provisioned again (drift repaired) every
 *    broker.reconcile.interval, jittered +-10%; never when the interval is 0;
 *  - a ready tenant this broker rotates (tenants[].rotate) gets a rotation pass when its last job
 *    found one due: the superseded key's deactivation (after aws.overlap) or deletion (after
 *    aws.retire), an interrupted rotation, or its key older than rotate_every (plus a fixed
 *    per-key jitter of up to a tenth of it); a failed pass is retried with the retry backoff;
 *  - when the config has tenants this broker follows (tenants[].rotate false), the follower
 *    (follow.c) lists their secrets now and every broker.follow.interval (jittered +-10%; after
 *    a failed pass, sooner with the retry backoff): one ListSecrets pass of 100 a page, filtered
 *    by keybroker's tag and aws.secret_prefix - no IAM, S3 or STS call. A complete pass sets each
 *    followed tenant's status (ready with ARN and AWSCURRENT version; pending until its rotator
 *    stored a key; revoked once its secret is no longer listed) and emits "provisioned",
 *    "rotated", "rolled_back" or "revoked" (op "follow") on what changed; a failed pass changes
 *    nothing known. Passes never overlap.
 * Only tenants this process has provisioned or tried to (at start, or on request) are covered: a
 * tenant still pending (--no-provision-at-start, nobody asked) and a revoked one are left alone,
 * and so is a tenant whose revoke failed (provisioning it again would undo the request). A
 * tenant whose job runs or is queued is not given a second one: the running job's end schedules
 * it again. Each retry is logged at info (tenant, attempt, delay). Canceling or destroying the
 * engine stops the timer; jobs ended by the cancel schedule nothing. Idempotent.
 */
void kb_engine_start_background(struct kb_engine *e);

/* The follower's counters (metrics): followed is the number of tenants with tenants[].rotate
 * false; on whether the follower runs (the daemon, with followed > 0). */
struct kb_engine_follow_stats {
    bool on;
    size_t followed;
    uint64_t polls_ok, polls_error; /* complete passes, failed passes */
    uint64_t calls;                 /* ListSecrets calls sent */
    uint64_t last_poll_ms;          /* the last complete pass, from its first call to its end */
    unsigned last_poll_calls;       /* its ListSecrets calls (pages) */
};
/* Fills *out (zeros when the follower never ran, but followed). e may be NULL. */
void kb_engine_follow_stats(const struct kb_engine *e, struct kb_engine_follow_stats *out);

/* Copies the status of tenant name into *out (its strings borrowed as above). Returns 0 or
 * KB_ENOTFOUND. */
int kb_engine_tenant_status(const struct kb_engine *e, const char *name,
                            struct kb_tenant_status *out);

/* The status of t, which must be one of the tenants of the engine's config (a kb_config_tenant()
 * result). Borrowed: valid until control returns to the loop. */
const struct kb_tenant_status *kb_engine_status_of(const struct kb_engine *e,
                                                   const struct kb_tenant *t);

/* Whether any operation is queued or running. */
bool kb_engine_busy(const struct kb_engine *e);

/* Fails every queued job with KB_ECANCELED (their operations complete, later) and stops readiness
 * probes at their next wait; jobs waiting for an AWS call end when the call does (close the
 * client, after this call, to end them at once). New operations are refused with KB_ECANCELED. */
void kb_engine_cancel(struct kb_engine *e);

/* Frees the engine: no progress or done callback runs after this call (not even for the
 * operation whose done callback is calling it); queued jobs are dropped, readiness probes stop at
 * their next wait, and other running jobs end when their AWS calls do (close the AWS client after
 * this call: every call then fails with KB_ECANCELED at once). The memory
 * goes when the last job and its handles have closed: keep running the loop until then. cfg and
 * the client must stay valid until then too (the client may be closing). NULL is allowed. */
void kb_engine_destroy(struct kb_engine *e);

#endif
