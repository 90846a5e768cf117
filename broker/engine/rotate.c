/*
 * rotate.c - the rotate kind (DESIGN.md section 8): one pass over a tenant's key lifecycle, on
 * demand (kb_engine_rotate, kbctl rotate) or from the background schedule.
 *
 *   user                GetUser: the IAM user must carry keybroker's tags for the tenant
 *   secret              DescribeSecret: ours, live; the AWSCURRENT/AWSPENDING/AWSPREVIOUS labels
 *                       and the supersede record (tag keybroker:superseded)
 *   access-keys         ListAccessKeys; then the plan (kb_rc_plan_rotate, pure) decides:
 *   pending-label       AWSPENDING on a version whose key is gone: the label is removed
 *   window step         the AWSPREVIOUS key: record when it was superseded (TagResource) when
 *                       that is unknown; after aws.overlap UpdateAccessKey Inactive
 *                       (key_deactivated); after aws.retire more DeleteAccessKey (key_deleted)
 *   rotation            CreateAccessKey -> PutSecretValue(AWSPENDING, token from the key id) ->
 *                       readiness probe with the new key -> UpdateSecretVersionStage(AWSCURRENT to
 *                       the new version, from the old) -> UpdateSecretVersionStage(AWSPENDING off
 *                       the new version) -> TagResource keybroker:superseded=<old version> <now>
 *                       -> "rotated"; or, when AWSPENDING names an existing key, the same from
 *                       GetSecretValue(AWSPENDING) on (resume); or only the last label removal
 *                       when AWSPENDING already sits on AWSCURRENT.
 *
 * Why the supersede time is a tag written right after the move, not the new version's
 * CreatedDate: the version is created before the probe, and a resumed rotation may move
 * AWSCURRENT long after it was created (a broker down for a day), so CreatedDate would cut the
 * old key's overlap short, even to nothing. The tag is written after the move; if the broker dies
 * between the two, the next pass finds AWSPREVIOUS unrecorded and records it with its own time:
 * later than the real move, so the windows only grow, never shrink. Everything a pass decides is
 * read from AWS (labels, tags, key dates), so a broker killed anywhere resumes on its next pass.
 *
 * Two brokers both (wrongly) configured as rotator: a key slot is freed only by deleting the
 * recorded superseded key past its windows, and an unreferenced key - another broker's key between
 * CreateAccessKey and PutSecretValue - refuses the rotation instead (IAM's two-key limit refuses
 * the loser's CreateAccessKey), so no third key is made and no stored key is deleted. A move or a
 * label removal that AWS refuses is checked against DescribeSecret: done by the other broker
 * counts as done, so no AWSPENDING is left behind by the race.
 *
 * A failure ends the pass with AWSCURRENT unchanged (the tenant keeps serving it; DEGRADED) and
 * emits rotation_failed. A new key that certainly could not be stored is deleted (compensation);
 * a probe that times out leaves the key stored as AWSPENDING, and the next pass resumes it.
 *
 * Messages reach socket peers and never name an AccessKeyId (keys are named by their version id
 * there; ids only in the log). The new key's secret lives in a kb_secret from CreateAccessKey (or
 * GetSecretValue) until the probe ends; this file never formats it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "aws/iam.h"
#include "aws/secretsmanager.h"
#include "common/err.h"
#include "common/log.h"
#include "common/uuid.h"
#include "events/events.h"

#include "engine/job.h"
#include "engine/probe.h"
#include "engine/reconcile.h"

#define S_USER    "user"
#define S_SECRET  "secret"
#define S_KEYS    "access-keys"
#define S_STALE   "pending-label"
#define S_RECORD  "record-superseded"
#define S_DEACT   "deactivate-key"
#define S_DELETE  "delete-key"
#define S_CREATE  "create-key"
#define S_STORE   "store-key"
#define S_READ    "read-pending"
#define S_MOVE    "move-current"
#define S_UNPEND  "remove-pending"
#define S_TAG     "superseded-tag"
#define S_ROTATE  "rotate"
#define S_CURRENT "AWSCURRENT"
#define S_PENDING "AWSPENDING"

struct kb_job;

/* A label call (move or removal) that failed is checked against DescribeSecret: done after all
 * when the labels are as wanted (another rotator did it), else the failure stands. */
struct s_verify {
    const char *step;
    void (*then)(struct kb_job *j);
    bool (*done)(struct kb_job *j, const struct kb_sm_description *d);
};

/* The rotate kind's state. */
struct kb_rot {
    char secret_arn[1024];
    bool superseded_known;
    time_t superseded_at;
    struct kb_rc_snapshot snap;
    struct kb_rc_rotate_plan plan;
    char old_version[64];
    char new_key[128];
    char new_version[64];         /* a KB_UUID_STR_SIZE id, sized like the labels */
    struct kb_secret *new_secret; /* from CreateAccessKey / GetSecretValue until the probe */
    struct kb_probe probe;
    bool probing;
    char store_error[768];
    char store_request_id[96];
    bool wanted; /* a rotation was asked for or found due: a failure emits rotation_failed */
    const struct s_verify *verify;   /* the label check in flight */
    struct kb_aws_error label_error; /* the failed label call's error, while it is checked */
};

static struct kb_rot *kb_rot(struct kb_job *j)
{
    return kb_job_state(j);
}

static void s_action(struct kb_job *j);
static void s_window(struct kb_job *j);
static void s_move(struct kb_job *j);

/* -- events and the end ------------------------------------------------------------------------ */

static void s_emit(struct kb_job *j, enum kb_event_kind kind, const char *version,
                   const char *message)
{
    struct kb_rot *r = kb_rot(j);
    struct kb_event ev = {.kind = kind,
                          .tenant = j->t->name,
                          .op = "rotate",
                          .arn = r->secret_arn[0] != '\0' ? r->secret_arn : NULL,
                          .version_id = version,
                          .message = message};

    kb_job_emit(j, &ev);
}

static void s_end(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);

    if (j->failed && (r->wanted || j->rotate_requested)) {
        kb_log(KB_LOG_ERROR, "rotation-failed", "tenant", j->t->name, "message", j->message, NULL);
        s_emit(j, KB_EVENT_ROTATION_FAILED, r->snap.current[0] != '\0' ? r->snap.current : NULL,
               j->message);
    }
    kb_job_end(j);
}

static void s_fail_end(struct kb_job *j, const char *step, const struct kb_aws_error *err)
{
    kb_job_fail_aws(j, step, err);
    s_end(j);
}

/* The next pass as the plan sees it once its steps are done (or now + backoff: the engine). */
static void s_life_after(struct kb_job *j)
{
    kb_job_set_life(j, kb_rot(j)->plan.next_after);
}

/* -- reading AWS ------------------------------------------------------------------------------- */

static void on_keys(void *ctx, const struct kb_aws_error *err, const struct kb_iam_access_keys *ks)
{
    struct kb_job *j = ctx;
    struct kb_rot *r = kb_rot(j);
    const struct kb_config_aws *aws = &j->cfg->aws;
    struct kb_rc_rotate_in in;
    char msg[64];
    int rc;

    kb_job_log_call(j, S_KEYS, "ListAccessKeys", err, KB_RID(ks));
    if (err != NULL) {
        s_fail_end(j, S_KEYS, err);
        kb_job_unref(j);
        return;
    }
    for (size_t i = 0; i < ks->count && r->snap.nkeys < KB_RC_MAX_KEYS; i++) {
        struct kb_rc_key *k = &r->snap.keys[r->snap.nkeys++];

        snprintf(k->id, sizeof(k->id), "%s", ks->keys[i].access_key_id);
        k->status = ks->keys[i].status;
        k->created = ks->keys[i].create_date;
    }
    snprintf(msg, sizeof(msg), "%zu key%s", r->snap.nkeys, r->snap.nkeys == 1 ? "" : "s");
    kb_job_event(j, S_KEYS, KB_ENGINE_DONE, msg, ks->request_id);
    in = (struct kb_rc_rotate_in){
        &r->snap,    r->superseded_known,     r->superseded_at,   time(NULL),         aws->overlap,
        aws->retire, aws->orphan_key_min_age, j->t->rotate_every, j->rotate_requested};
    rc = kb_rc_plan_rotate(&in, &r->plan);
    if (rc != 0) {
        kb_job_fail(j, S_KEYS, NULL, "cannot plan the rotation: %s", kb_strerror(rc));
        s_end(j);
    } else {
        r->wanted = r->plan.action != KB_RC_ROT_NONE;
        snprintf(r->old_version, sizeof(r->old_version), "%s", r->snap.current);
        s_window(j);
    }
    kb_job_unref(j);
}

static void s_list_keys(struct kb_job *j)
{
    kb_job_event(j, S_KEYS, KB_ENGINE_START, NULL, NULL);
    kb_job_send(
        j, S_KEYS, "ListAccessKeys",
        kb_iam_list_access_keys(
            j->client, &(struct kb_iam_list_access_keys_input){j->t->user_name, NULL}, on_keys, j),
        s_end);
}

/* The labels of d into the snapshot. */
static void s_labels(struct kb_rc_snapshot *s, const struct kb_sm_description *d)
{
    for (size_t v = 0; v < d->version_count; v++) {
        for (size_t i = 0; i < d->versions[v].stage_count; i++) {
            const char *stage = d->versions[v].stages[i];
            char *dst = strcmp(stage, S_CURRENT) == 0       ? s->current
                        : strcmp(stage, S_PENDING) == 0     ? s->pending
                        : strcmp(stage, "AWSPREVIOUS") == 0 ? s->previous
                                                            : NULL;

            if (dst != NULL)
                snprintf(dst, sizeof(s->current), "%s", d->versions[v].version_id);
        }
    }
}

static void on_describe(void *ctx, const struct kb_aws_error *err,
                        const struct kb_sm_description *d)
{
    struct kb_job *j = ctx;
    struct kb_rot *r = kb_rot(j);

    kb_job_log_call(j, S_SECRET, "DescribeSecret", err, KB_RID(d));
    if (err != NULL && kb_rc_is_code(err, "ResourceNotFoundException")) {
        kb_job_fail(j, S_SECRET, err->request_id,
                    "secret %s does not exist: provision the tenant first", j->t->secret_name);
        s_end(j);
    } else if (err != NULL) {
        s_fail_end(j, S_SECRET, err);
    } else if (!kb_rc_tags_ours(d->tags, d->tag_count, j->t->name)) {
        kb_job_fail(j, S_SECRET, d->request_id,
                    "secret %s is not managed by keybroker for tenant %s; refusing to rotate "
                    "(nothing changed)",
                    j->t->secret_name, j->t->name);
        s_end(j);
    } else if (d->deleted_date != 0) {
        kb_job_fail(j, S_SECRET, d->request_id, "secret %s is scheduled for deletion",
                    j->t->secret_name);
        s_end(j);
    } else {
        snprintf(r->secret_arn, sizeof(r->secret_arn), "%s", d->arn);
        s_labels(&r->snap, d);
        r->superseded_known =
            kb_rc_superseded_at(d->tags, d->tag_count, r->snap.previous, &r->superseded_at);
        kb_job_event(j, S_SECRET, KB_ENGINE_DONE, "exists, managed by keybroker", d->request_id);
        s_list_keys(j);
    }
    kb_job_unref(j);
}

static void on_user(void *ctx, const struct kb_aws_error *err, const struct kb_iam_user *u)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, S_USER, "GetUser", err, KB_RID(u));
    if (err != NULL && kb_rc_is_code(err, "NoSuchEntity")) {
        kb_job_fail(j, S_USER, err->request_id,
                    "IAM user %s does not exist: provision the tenant first", j->t->user_name);
        s_end(j);
    } else if (err != NULL) {
        s_fail_end(j, S_USER, err);
    } else if (!kb_rc_tags_ours(u->tags, u->tag_count, j->t->name)) {
        kb_job_fail(j, S_USER, u->request_id,
                    "IAM user %s is not managed by keybroker for tenant %s; its keys are not "
                    "touched",
                    j->t->user_name, j->t->name);
        s_end(j);
    } else {
        kb_job_event(j, S_USER, KB_ENGINE_DONE, "managed by keybroker", u->request_id);
        kb_job_event(j, S_SECRET, KB_ENGINE_START, NULL, NULL);
        kb_job_send(j, S_SECRET, "DescribeSecret",
                    kb_sm_describe_secret(
                        j->client, &(struct kb_sm_secret_input){j->t->secret_name}, on_describe, j),
                    s_end);
    }
    kb_job_unref(j);
}

static void s_start(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);

    r->snap.tenant = j->t->name;
    if (!j->t->rotate) {
        kb_job_fail(j, S_ROTATE, NULL,
                    "this broker is not tenant %s's rotator (tenants[].rotate is false)",
                    j->t->name);
        kb_job_end(j);
        return;
    }
    kb_job_event(j, S_USER, KB_ENGINE_START, NULL, NULL);
    kb_job_send(
        j, S_USER, "GetUser",
        kb_iam_get_user(j->client, &(struct kb_iam_get_user_input){j->t->user_name}, on_user, j),
        s_end);
}

/* -- labels ------------------------------------------------------------------------------------ */

static bool s_stage_on(const struct kb_sm_description *d, const char *version, const char *stage)
{
    for (size_t v = 0; v < d->version_count; v++) {
        if (strcmp(d->versions[v].version_id, version) != 0)
            continue;
        for (size_t i = 0; i < d->versions[v].stage_count; i++) {
            if (strcmp(d->versions[v].stages[i], stage) == 0)
                return true;
        }
    }
    return false;
}

/* Whether no version carries stage (used for AWSPENDING: it must be on none). */
static bool s_stage_nowhere(const struct kb_sm_description *d, const char *stage)
{
    for (size_t v = 0; v < d->version_count; v++) {
        if (s_stage_on(d, d->versions[v].version_id, stage))
            return false;
    }
    return true;
}

/* -- the window steps -------------------------------------------------------------------------- */

static void s_window_done(struct kb_job *j)
{
    s_action(j);
}

static void on_window(void *ctx, const struct kb_aws_error *err, const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;
    struct kb_rot *r = kb_rot(j);
    const struct kb_rc_key *k = &r->snap.keys[r->plan.previous];
    const char *step = r->plan.window == KB_RC_WIN_RECORD       ? S_RECORD
                       : r->plan.window == KB_RC_WIN_DEACTIVATE ? S_DEACT
                                                                : S_DELETE;
    const char *op = r->plan.window == KB_RC_WIN_RECORD       ? "TagResource"
                     : r->plan.window == KB_RC_WIN_DEACTIVATE ? "UpdateAccessKey"
                                                              : "DeleteAccessKey";

    kb_job_log_call(j, step, op, err, KB_RID(ok));
    if (err != NULL &&
        !(r->plan.window == KB_RC_WIN_DELETE && kb_rc_is_code(err, "NoSuchEntity"))) {
        s_fail_end(j, step, err);
        kb_job_unref(j);
        return;
    }
    kb_log(KB_LOG_INFO, step, "tenant", j->t->name, "access_key_id", k->id, "version_id",
           r->snap.previous, NULL);
    if (r->plan.window == KB_RC_WIN_DEACTIVATE) {
        kb_job_event(j, step, KB_ENGINE_DONE, "the superseded key is inactive (aws.overlap over)",
                     KB_RID(ok));
        s_emit(j, KB_EVENT_KEY_DEACTIVATED, r->snap.previous, "after aws.overlap");
    } else if (r->plan.window == KB_RC_WIN_DELETE) {
        kb_job_event(j, step, KB_ENGINE_DONE, "the superseded key is deleted (aws.retire over)",
                     err != NULL ? err->request_id : ok->request_id);
        s_emit(j, KB_EVENT_KEY_DELETED, r->snap.previous, "after aws.overlap and aws.retire");
    } else {
        kb_job_event(j, step, KB_ENGINE_DONE, "supersede time recorded as now", KB_RID(ok));
    }
    s_window_done(j);
    kb_job_unref(j);
}

static int s_tag_superseded(struct kb_job *j, const char *version, kb_aws_done_cb cb)
{
    char value[KB_RC_SUPERSEDED_SIZE];
    struct kb_aws_tag tag = {KB_RC_TAG_SUPERSEDED, value};

    kb_rc_superseded_value(version, time(NULL), value);
    return kb_sm_tag_resource(
        j->client, &(struct kb_sm_tag_resource_input){j->t->secret_name, &tag, 1}, cb, j);
}

static void s_window_step(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);
    const char *user = j->t->user_name;
    const char *key = r->plan.previous >= 0 ? r->snap.keys[r->plan.previous].id : "";
    int rc;

    switch (r->plan.window) {
    case KB_RC_WIN_NONE:
        s_window_done(j);
        return;
    case KB_RC_WIN_RECORD:
        kb_job_event(j, S_RECORD, KB_ENGINE_START, NULL, NULL);
        kb_job_send(j, S_RECORD, "TagResource", s_tag_superseded(j, r->snap.previous, on_window),
                    s_end);
        return;
    case KB_RC_WIN_DEACTIVATE:
        kb_job_event(j, S_DEACT, KB_ENGINE_START, NULL, NULL);
        rc = kb_iam_update_access_key(
            j->client, &(struct kb_iam_update_access_key_input){user, key, KB_IAM_KEY_INACTIVE},
            on_window, j);
        kb_job_send(j, S_DEACT, "UpdateAccessKey", rc, s_end);
        return;
    case KB_RC_WIN_DELETE:
        kb_job_event(j, S_DELETE, KB_ENGINE_START, NULL, NULL);
        rc = kb_iam_delete_access_key(j->client, &(struct kb_iam_access_key_input){user, key},
                                      on_window, j);
        kb_job_send(j, S_DELETE, "DeleteAccessKey", rc, s_end);
        return;
    }
}

static void on_stale_removed(void *ctx, const struct kb_aws_error *err,
                             const struct kb_sm_secret_ref *ref)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, S_STALE, "UpdateSecretVersionStage", err, KB_RID(ref));
    if (err != NULL) {
        s_fail_end(j, S_STALE, err);
    } else {
        kb_job_event(j, S_STALE, KB_ENGINE_DONE,
                     "removed AWSPENDING from a version whose key no longer exists",
                     ref->request_id);
        kb_rot(j)->snap.pending[0] = '\0';
        s_window_step(j);
    }
    kb_job_unref(j);
}

/* First the stale AWSPENDING (if any), then the previous key's window step, then the action. */
static void s_window(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);

    if (!r->plan.stale_pending) {
        s_window_step(j);
        return;
    }
    kb_job_event(j, S_STALE, KB_ENGINE_START, NULL, NULL);
    kb_job_send(
        j, S_STALE, "UpdateSecretVersionStage",
        kb_sm_update_secret_version_stage(j->client,
                                          &(struct kb_sm_update_secret_version_stage_input){
                                              j->t->secret_name, S_PENDING, NULL, r->snap.pending},
                                          on_stale_removed, j),
        s_end);
}

/* -- the action -------------------------------------------------------------------------------- */

static void s_create(struct kb_job *j);
static void s_read_pending(struct kb_job *j);
static void s_unpend(struct kb_job *j);

static void s_refuse(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);
    const struct kb_rc_key *b = r->plan.blocker >= 0 ? &r->snap.keys[r->plan.blocker] : NULL;
    char when[32] = "?";
    struct tm tm;

    if (b != NULL) {
        if (gmtime_r(&b->created, &tm) != NULL)
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        kb_log(KB_LOG_WARN, "rotation-refused", "tenant", j->t->name, "access_key_id", b->id, NULL);
    }
    switch (r->plan.refusal) {
    case KB_RC_REFUSE_NO_CURRENT:
        kb_job_fail(j, S_ROTATE, NULL,
                    "AWSCURRENT holds no active key of the user: provision the tenant first");
        break;
    case KB_RC_REFUSE_YOUNG_ORPHAN:
        kb_job_fail(j, S_ROTATE, NULL,
                    "refused, nothing changed: a key slot is held by an access key no secret "
                    "version references, created %s (younger than aws.orphan_key_min_age, %" PRIu64
                    "s: maybe another broker's rotation in flight); never deleted by rotation",
                    when, j->cfg->aws.orphan_key_min_age);
        break;
    case KB_RC_REFUSE_ORPHAN:
        kb_job_fail(j, S_ROTATE, NULL,
                    "refused, nothing changed: a key slot is held by an access key no secret "
                    "version references, created %s; provisioning deletes it (never rotation)",
                    when);
        break;
    case KB_RC_REFUSE_PREVIOUS_KEPT:
        kb_job_fail(j, S_ROTATE, NULL,
                    "refused, nothing changed: the superseded key (version %s) is kept until "
                    "aws.overlap and aws.retire are over (rollback needs it)",
                    r->snap.previous);
        break;
    default:
        kb_job_fail(j, S_ROTATE, NULL,
                    "refused, nothing changed: no free access key slot (both hold keys the "
                    "secret's versions reference)");
        break;
    }
    kb_job_set_life(j, r->plan.next);
    s_end(j);
}

static void s_action(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);

    switch (r->plan.action) {
    case KB_RC_ROT_NONE:
        s_life_after(j);
        kb_job_event(j, S_ROTATE, KB_ENGINE_SKIP, "no rotation due", NULL);
        snprintf(j->message, sizeof(j->message), "ready: version %s, no rotation due",
                 r->snap.current);
        kb_job_end(j);
        return;
    case KB_RC_ROT_REFUSE:
        s_refuse(j);
        return;
    case KB_RC_ROT_FINISH:
        snprintf(r->new_version, sizeof(r->new_version), "%s", r->snap.current);
        snprintf(r->old_version, sizeof(r->old_version), "%s", r->snap.previous);
        s_unpend(j);
        return;
    case KB_RC_ROT_RESUME:
        snprintf(r->new_key, sizeof(r->new_key), "%s", r->snap.keys[r->plan.pending].id);
        snprintf(r->new_version, sizeof(r->new_version), "%s", r->snap.pending);
        s_read_pending(j);
        return;
    case KB_RC_ROT_CREATE:
        s_create(j);
        return;
    }
}

/* -- a new key, stored as AWSPENDING ----------------------------------------------------------- */

static void s_probed(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);
    uint64_t ms = kb_job_now(j) - r->probe.started;
    char ms_text[32];

    r->probing = false;
    if (j->failed) {
        /* The key stays stored as AWSPENDING: the next pass resumes it. */
        s_end(j);
        return;
    }
    snprintf(ms_text, sizeof(ms_text), "%" PRIu64, ms);
    kb_job_set_rotation_probe(j, ms);
    kb_log(KB_LOG_INFO, "rotation-probe", "tenant", j->t->name, "version_id", r->new_version,
           "time_to_ready_ms", ms_text, NULL);
    s_move(j);
}

static void s_probe(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);

    r->probing = true;
    kb_probe_start(&r->probe, j, r->new_key, r->new_secret, s_probed);
    r->new_secret = NULL; /* the probe owns it now */
}

static void on_compensated(void *ctx, const struct kb_aws_error *err, const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;
    struct kb_rot *r = kb_rot(j);
    bool gone = err == NULL || kb_rc_is_code(err, "NoSuchEntity");

    kb_job_log_call(j, S_STORE, "DeleteAccessKey", err, KB_RID(ok));
    kb_log(KB_LOG_INFO, "compensate", "tenant", j->t->name, "step", S_STORE, "access_key_id",
           r->new_key, "result", gone ? "deleted" : "failed", NULL);
    if (gone)
        kb_job_fail(j, S_STORE, r->store_request_id, "%s; the new key was deleted (compensation)",
                    r->store_error);
    else
        kb_job_fail(j, S_STORE, r->store_request_id,
                    "%s; deleting the new key failed too (%s): a later reconcile deletes it once "
                    "it is older than aws.orphan_key_min_age",
                    r->store_error, err->code[0] != '\0' ? err->code : kb_err_name(err->err));
    s_end(j);
    kb_job_unref(j);
}

static void s_compensate(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);
    int rc = kb_iam_delete_access_key(
        j->client, &(struct kb_iam_access_key_input){j->t->user_name, r->new_key}, on_compensated,
        j);

    if (rc == 0) {
        kb_job_ref(j);
        return;
    }
    kb_job_fail(j, S_STORE, r->store_request_id,
                "%s; the new key could not be deleted (%s): a later reconcile deletes it once it "
                "is older than aws.orphan_key_min_age",
                r->store_error, kb_strerror(rc));
    s_end(j);
}

static void s_stored(struct kb_job *j, const char *request_id, const char *how)
{
    struct kb_rot *r = kb_rot(j);
    char msg[160];

    kb_log(KB_LOG_INFO, "key-stored", "tenant", j->t->name, "step", S_STORE, "access_key_id",
           r->new_key, "version_id", r->new_version, "stage", S_PENDING, NULL);
    snprintf(msg, sizeof(msg), "%s as AWSPENDING version %s", how, r->new_version);
    kb_job_event(j, S_STORE, KB_ENGINE_DONE, msg, request_id);
    s_probe(j);
}

static void on_verify_store(void *ctx, const struct kb_aws_error *err,
                            const struct kb_sm_description *d)
{
    struct kb_job *j = ctx;
    struct kb_rot *r = kb_rot(j);
    bool found = false;

    kb_job_log_call(j, S_STORE, "DescribeSecret", err, KB_RID(d));
    for (size_t v = 0; d != NULL && v < d->version_count; v++)
        found = found || strcmp(d->versions[v].version_id, r->new_version) == 0;
    if (err != NULL) {
        kb_job_fail(j, S_STORE, r->store_request_id,
                    "%s; whether it was stored is unknown (DescribeSecret failed too), so the new "
                    "key (version %s) is kept: a later pass finds its version or provisioning "
                    "deletes it",
                    r->store_error, r->new_version);
        s_end(j);
    } else if (found && s_stage_on(d, r->new_version, S_PENDING)) {
        s_stored(j, d->request_id, "stored (confirmed by DescribeSecret after an unclear answer)");
    } else {
        s_compensate(j);
    }
    kb_job_unref(j);
}

static void on_store(void *ctx, const struct kb_aws_error *err, const struct kb_sm_secret_ref *ref)
{
    struct kb_job *j = ctx;
    struct kb_rot *r = kb_rot(j);

    kb_job_log_call(j, S_STORE, "PutSecretValue", err, KB_RID(ref));
    if (err == NULL) {
        s_stored(j, ref->request_id, "stored");
        kb_job_unref(j);
        return;
    }
    snprintf(r->store_request_id, sizeof(r->store_request_id), "%s", err->request_id);
    snprintf(r->store_error, sizeof(r->store_error), "PutSecretValue failed: %s%s%s (HTTP %ld)",
             err->code, err->code[0] != '\0' ? ": " : "", err->message, err->status);
    if (kb_rc_store_surely_failed(err) ||
        kb_sm_describe_secret(j->client, &(struct kb_sm_secret_input){j->t->secret_name},
                              on_verify_store, j) != 0)
        s_compensate(j);
    else
        kb_job_ref(j);
    kb_job_unref(j);
}

static void s_store(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);
    static const char *const pending[] = {S_PENDING};
    struct kb_secret *value = NULL;
    int rc;

    kb_job_event(j, S_STORE, KB_ENGINE_START, NULL, NULL);
    /* The same derivation as provisioning: a retry or a second broker writes the same version. */
    rc = kb_uuid_key_version(j->t->name, r->new_key, r->new_version);
    if (rc == 0)
        rc = kb_sm_key_secret_new(r->new_key, r->new_secret, j->t->bucket, j->region, &value);
    if (rc == 0)
        rc = kb_sm_put_secret_value(j->client,
                                    &(struct kb_sm_put_secret_value_input){
                                        j->t->secret_name, r->new_version, value, pending, 1},
                                    on_store, j);
    kb_secret_destroy(value); /* the client copied (and wipes) the body */
    if (rc == 0) {
        kb_job_ref(j);
        return;
    }
    snprintf(r->store_error, sizeof(r->store_error), "could not send the store request: %s",
             kb_strerror(rc));
    s_compensate(j);
}

static void on_create(void *ctx, const struct kb_aws_error *err, struct kb_iam_access_key *k)
{
    struct kb_job *j = ctx;
    struct kb_rot *r = kb_rot(j);

    kb_job_log_call(j, S_CREATE, "CreateAccessKey", err, KB_RID(k));
    if (err != NULL) {
        /* LimitExceeded: another rotator took the free slot meanwhile. Nothing changed. */
        s_fail_end(j, S_CREATE, err);
    } else {
        r->new_secret = k->secret_access_key;
        k->secret_access_key = NULL;
        snprintf(r->new_key, sizeof(r->new_key), "%s", k->access_key_id);
        kb_log(KB_LOG_INFO, "key-created", "tenant", j->t->name, "step", S_CREATE, "access_key_id",
               r->new_key, "request_id", k->request_id, NULL);
        kb_job_event(j, S_CREATE, KB_ENGINE_DONE, "created", k->request_id);
        s_store(j);
    }
    kb_job_unref(j);
}

static void s_create(struct kb_job *j)
{
    kb_job_event(j, S_CREATE, KB_ENGINE_START, NULL, NULL);
    kb_job_send(j, S_CREATE, "CreateAccessKey",
                kb_iam_create_access_key(j->client, &(struct kb_iam_user_input){j->t->user_name},
                                         on_create, j),
                s_end);
}

/* -- resuming an AWSPENDING key ---------------------------------------------------------------- */

static void on_pending_value(void *ctx, const struct kb_aws_error *err,
                             struct kb_sm_secret_value *v)
{
    struct kb_job *j = ctx;
    struct kb_rot *r = kb_rot(j);
    struct kb_sm_key_secret parts;
    int rc;

    memset(&parts, 0, sizeof(parts));
    kb_job_log_call(j, S_READ, "GetSecretValue", err, KB_RID(v));
    if (err != NULL) {
        s_fail_end(j, S_READ, err);
        kb_job_unref(j);
        return;
    }
    rc = kb_sm_key_secret_parse(v->secret_string, &parts);
    if (rc == 0 && strcmp(parts.access_key_id, r->new_key) != 0)
        rc = KB_EPARSE;
    if (rc != 0) {
        kb_secret_destroy(parts.secret_access_key);
        kb_job_fail(j, S_READ, v->request_id,
                    "the AWSPENDING version %s does not hold the key its id names (%s)",
                    r->new_version, kb_strerror(rc));
        s_end(j);
    } else {
        r->new_secret = parts.secret_access_key;
        kb_job_event(j, S_READ, KB_ENGINE_DONE, "resuming the interrupted rotation", v->request_id);
        s_probe(j);
    }
    kb_job_unref(j);
}

static void s_read_pending(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);

    kb_log(KB_LOG_INFO, "rotation-resume", "tenant", j->t->name, "version_id", r->new_version,
           "access_key_id", r->new_key, NULL);
    r->wanted = true;
    kb_job_event(j, S_READ, KB_ENGINE_START, NULL, NULL);
    kb_job_send(j, S_READ, "GetSecretValue",
                kb_sm_get_secret_value(
                    j->client,
                    &(struct kb_sm_get_secret_value_input){j->t->secret_name, r->new_version, NULL},
                    on_pending_value, j),
                s_end);
}

/* -- moving the labels ------------------------------------------------------------------------- */

static void on_verified(void *ctx, const struct kb_aws_error *err,
                        const struct kb_sm_description *d)
{
    struct kb_job *j = ctx;
    struct kb_rot *r = kb_rot(j);
    const struct s_verify *how = r->verify;

    kb_job_log_call(j, how->step, "DescribeSecret", err, KB_RID(d));
    if (err == NULL && how->done(j, d)) {
        kb_job_event(j, how->step, KB_ENGINE_DONE, "already done (another rotator)", d->request_id);
        how->then(j);
    } else {
        s_fail_end(j, how->step, &r->label_error);
    }
    kb_job_unref(j);
}

/* A label call failed with err: read the labels before calling it a failure. */
static void s_verify(struct kb_job *j, const struct s_verify *how, const struct kb_aws_error *err)
{
    struct kb_rot *r = kb_rot(j);
    int rc;

    r->label_error = *err;
    r->verify = how;
    rc = kb_sm_describe_secret(j->client, &(struct kb_sm_secret_input){j->t->secret_name},
                               on_verified, j);
    if (rc == 0)
        kb_job_ref(j);
    else
        s_fail_end(j, how->step, err);
}

/* The labels are moved: the status, "rotated", the outcome. */
static void s_rotated(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);
    char msg[256], probe[sizeof(kb_job_status(j)->probe)];

    /* A copy: kb_job_set_key writes the status field the probe result is read from. */
    snprintf(probe, sizeof(probe), "%s", kb_job_status(j)->probe);
    kb_job_set_key(j, r->secret_arn, r->new_version, time(NULL), probe);
    kb_log(KB_LOG_INFO, "rotated", "tenant", j->t->name, "version_id", r->new_version,
           "previous_version_id", r->old_version, NULL);
    s_emit(j, KB_EVENT_ROTATED, r->new_version, r->old_version);
    snprintf(msg, sizeof(msg), "rotated: version %s is AWSCURRENT (was %s)", r->new_version,
             r->old_version);
    kb_job_event(j, S_ROTATE, KB_ENGINE_DONE, msg, NULL);
    snprintf(j->message, sizeof(j->message), "%s", msg);
    /* The new previous key's first window. */
    kb_job_set_life(j, time(NULL) + (time_t)j->cfg->aws.overlap);
    kb_job_end(j);
}

static void on_tagged(void *ctx, const struct kb_aws_error *err, const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, S_TAG, "TagResource", err, KB_RID(ok));
    if (err != NULL)
        kb_job_event(j, S_TAG, KB_ENGINE_SKIP,
                     "could not record the supersede time (the next pass records it)",
                     err->request_id);
    else
        kb_job_event(j, S_TAG, KB_ENGINE_DONE, "recorded", ok->request_id);
    s_rotated(j);
    kb_job_unref(j);
}

static void s_tag(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);

    if (r->old_version[0] == '\0') {
        s_rotated(j);
        return;
    }
    kb_job_event(j, S_TAG, KB_ENGINE_START, NULL, NULL);
    kb_job_send(j, S_TAG, "TagResource", s_tag_superseded(j, r->old_version, on_tagged), s_end);
}

static bool s_unpended(struct kb_job *j, const struct kb_sm_description *d)
{
    (void)j;
    return s_stage_nowhere(d, S_PENDING);
}

static const struct s_verify s_verify_unpend = {S_UNPEND, s_tag, s_unpended};

static void on_unpend(void *ctx, const struct kb_aws_error *err, const struct kb_sm_secret_ref *ref)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, S_UNPEND, "UpdateSecretVersionStage", err, KB_RID(ref));
    if (err != NULL) {
        s_verify(j, &s_verify_unpend, err);
    } else {
        kb_job_event(j, S_UNPEND, KB_ENGINE_DONE, "AWSPENDING removed from the new version",
                     ref->request_id);
        s_tag(j);
    }
    kb_job_unref(j);
}

static void s_unpend(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);

    r->wanted = true;
    kb_job_event(j, S_UNPEND, KB_ENGINE_START, NULL, NULL);
    kb_job_send(
        j, S_UNPEND, "UpdateSecretVersionStage",
        kb_sm_update_secret_version_stage(j->client,
                                          &(struct kb_sm_update_secret_version_stage_input){
                                              j->t->secret_name, S_PENDING, NULL, r->new_version},
                                          on_unpend, j),
        s_end);
}

static bool s_moved(struct kb_job *j, const struct kb_sm_description *d)
{
    return s_stage_on(d, kb_rot(j)->new_version, S_CURRENT);
}

static const struct s_verify s_verify_move = {S_MOVE, s_unpend, s_moved};

static void on_move(void *ctx, const struct kb_aws_error *err, const struct kb_sm_secret_ref *ref)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, S_MOVE, "UpdateSecretVersionStage", err, KB_RID(ref));
    if (err != NULL) {
        s_verify(j, &s_verify_move, err);
    } else {
        kb_job_event(j, S_MOVE, KB_ENGINE_DONE, "AWSCURRENT moved to the new version",
                     ref->request_id);
        s_unpend(j);
    }
    kb_job_unref(j);
}

static void s_move(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);

    kb_job_event(j, S_MOVE, KB_ENGINE_START, NULL, NULL);
    kb_job_send(j, S_MOVE, "UpdateSecretVersionStage",
                kb_sm_update_secret_version_stage(
                    j->client,
                    &(struct kb_sm_update_secret_version_stage_input){
                        j->t->secret_name, S_CURRENT, r->new_version, r->old_version},
                    on_move, j),
                s_end);
}

/* -- the kind ---------------------------------------------------------------------------------- */

static void s_release(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);

    kb_secret_destroy(r->new_secret);
    r->new_secret = NULL;
    kb_probe_cleanup(&r->probe);
}

const struct kb_job_kind kb_job_kind_rotate = {
    .name = "rotate",
    .running = KB_TENANT_PROVISIONING,
    .done = KB_TENANT_READY,
    .failure_keeps_key = true,
    .own_events = true,
    .state_size = sizeof(struct kb_rot),
    .start = s_start,
    .release = s_release,
};
