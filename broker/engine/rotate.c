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
 * This file reads AWS, plans, does the window steps and picks the action; rotate_key.c carries out
 * the rotation itself (rotate.h is what the two share).
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
#include "events/events.h"

#include "engine/rotate.h"

static void s_action(struct kb_job *j);
static void s_window(struct kb_job *j);
static void s_rollback(struct kb_job *j);

/* -- events and the end ------------------------------------------------------------------------ */

void kb_rot__emit(struct kb_job *j, enum kb_event_kind kind, const char *version,
                  const char *message)
{
    struct kb_rot *r = kb_rot(j);
    struct kb_event ev = {.kind = kind,
                          .tenant = j->t->name,
                          .op = "rotate",
                          .arn = r->secret_arn[0] != '\0' ? r->secret_arn : NULL,
                          .version_id = version,
                          .message = message,
                          .rotation_id = r->rotation_id};

    if (kind == KB_EVENT_ROTATED || kind == KB_EVENT_ROLLED_BACK)
        ev.previous_version_id = message;

    kb_job_emit(j, &ev);
}

void kb_rot__end(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);

    if (j->failed && (r->wanted || j->rotate_requested)) {
        kb_log(KB_LOG_ERROR, "rotation-failed", "tenant", j->t->name, "message", j->message, NULL);
        kb_rot__emit(j, KB_EVENT_ROTATION_FAILED,
                     r->snap.current[0] != '\0' ? r->snap.current : NULL, j->message);
    }
    kb_job_end(j);
}

void kb_rot__fail_end(struct kb_job *j, const char *step, const struct kb_aws_error *err)
{
    kb_job_fail_aws(j, step, err);
    kb_rot__end(j);
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

    kb_job_log_call(j, KB_ROT_S_KEYS, "ListAccessKeys", err, KB_RID(ks));
    if (err != NULL) {
        kb_rot__fail_end(j, KB_ROT_S_KEYS, err);
        kb_job_unref(j);
        return;
    }
    kb_rc_snap_keys(&r->snap, ks);
    snprintf(msg, sizeof(msg), "%zu key%s", r->snap.nkeys, r->snap.nkeys == 1 ? "" : "s");
    kb_job_event(j, KB_ROT_S_KEYS, KB_ENGINE_DONE, msg, ks->request_id);
    if (j->rollback) {
        s_rollback(j);
        kb_job_unref(j);
        return;
    }
    j->cut_over_read = true;
    r->cut_over = r->snap.current[0] != '\0' && strcmp(kb_job_cut_over(j), r->snap.current) == 0;
    in = (struct kb_rc_rotate_in){
        &r->snap,    r->superseded_known,     r->superseded_at,   time(NULL),          aws->overlap,
        aws->retire, aws->orphan_key_min_age, j->t->rotate_every, j->rotate_requested, r->cut_over};
    rc = kb_rc_plan_rotate(&in, &r->plan);
    if (rc != 0) {
        kb_job_fail(j, KB_ROT_S_KEYS, NULL, "cannot plan the rotation: %s", kb_strerror(rc));
        kb_rot__end(j);
    } else {
        r->wanted = r->plan.action != KB_RC_ROT_NONE;
        snprintf(r->old_version, sizeof(r->old_version), "%s", r->snap.current);
        s_window(j);
    }
    kb_job_unref(j);
}

static void s_list_keys(struct kb_job *j)
{
    kb_job_event(j, KB_ROT_S_KEYS, KB_ENGINE_START, NULL, NULL);
    kb_job_send(
        j, KB_ROT_S_KEYS, "ListAccessKeys",
        kb_iam_list_access_keys(
            j->client, &(struct kb_iam_list_access_keys_input){j->t->user_name, NULL}, on_keys, j),
        kb_rot__end);
}

/* The labels of d into the snapshot. */
static void s_labels(struct kb_rc_snapshot *s, const struct kb_sm_description *d)
{
    for (size_t v = 0; v < d->version_count; v++) {
        for (size_t i = 0; i < d->versions[v].stage_count; i++) {
            const char *stage = d->versions[v].stages[i];
            char *dst = strcmp(stage, KB_ROT_S_CURRENT) == 0   ? s->current
                        : strcmp(stage, KB_ROT_S_PENDING) == 0 ? s->pending
                        : strcmp(stage, "AWSPREVIOUS") == 0    ? s->previous
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

    kb_job_log_call(j, KB_ROT_S_SECRET, "DescribeSecret", err, KB_RID(d));
    if (err != NULL && kb_rc_is_code(err, "ResourceNotFoundException")) {
        kb_job_fail(j, KB_ROT_S_SECRET, err->request_id,
                    "secret %s does not exist: provision the tenant first", j->t->secret_name);
        kb_rot__end(j);
    } else if (err != NULL) {
        kb_rot__fail_end(j, KB_ROT_S_SECRET, err);
    } else if (!kb_rc_tags_ours(d->tags, d->tag_count, j->t->name)) {
        kb_job_fail(j, KB_ROT_S_SECRET, d->request_id,
                    "secret %s is not managed by keybroker for tenant %s; refusing to rotate "
                    "(nothing changed)",
                    j->t->secret_name, j->t->name);
        kb_rot__end(j);
    } else if (d->deleted_date != 0) {
        kb_job_fail(j, KB_ROT_S_SECRET, d->request_id, "secret %s is scheduled for deletion",
                    j->t->secret_name);
        kb_rot__end(j);
    } else {
        snprintf(r->secret_arn, sizeof(r->secret_arn), "%s", d->arn);
        s_labels(&r->snap, d);
        r->superseded_known =
            kb_rc_superseded_at(d->tags, d->tag_count, r->snap.previous, &r->superseded_at);
        kb_job_event(j, KB_ROT_S_SECRET, KB_ENGINE_DONE, "exists, managed by keybroker",
                     d->request_id);
        s_list_keys(j);
    }
    kb_job_unref(j);
}

static void on_user(void *ctx, const struct kb_aws_error *err, const struct kb_iam_user *u)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, KB_ROT_S_USER, "GetUser", err, KB_RID(u));
    if (err != NULL && kb_rc_is_code(err, "NoSuchEntity")) {
        kb_job_fail(j, KB_ROT_S_USER, err->request_id,
                    "IAM user %s does not exist: provision the tenant first", j->t->user_name);
        kb_rot__end(j);
    } else if (err != NULL) {
        kb_rot__fail_end(j, KB_ROT_S_USER, err);
    } else if (!kb_rc_tags_ours(u->tags, u->tag_count, j->t->name)) {
        kb_job_fail(j, KB_ROT_S_USER, u->request_id,
                    "IAM user %s is not managed by keybroker for tenant %s; its keys are not "
                    "touched",
                    j->t->user_name, j->t->name);
        kb_rot__end(j);
    } else {
        kb_job_event(j, KB_ROT_S_USER, KB_ENGINE_DONE, "managed by keybroker", u->request_id);
        kb_job_event(j, KB_ROT_S_SECRET, KB_ENGINE_START, NULL, NULL);
        kb_job_send(j, KB_ROT_S_SECRET, "DescribeSecret",
                    kb_sm_describe_secret(
                        j->client, &(struct kb_sm_secret_input){j->t->secret_name}, on_describe, j),
                    kb_rot__end);
    }
    kb_job_unref(j);
}

static void s_start(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);

    r->snap.tenant = j->t->name;
    kb_uuid_v4(r->rotation_id);
    if (!j->t->rotate) {
        kb_job_fail(j, KB_ROT_S_ROTATE, NULL,
                    "this broker is not tenant %s's rotator (tenants[].rotate is false)",
                    j->t->name);
        kb_job_end(j);
        return;
    }
    kb_job_event(j, KB_ROT_S_USER, KB_ENGINE_START, NULL, NULL);
    kb_job_send(
        j, KB_ROT_S_USER, "GetUser",
        kb_iam_get_user(j->client, &(struct kb_iam_get_user_input){j->t->user_name}, on_user, j),
        kb_rot__end);
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
    const char *step = r->plan.window == KB_RC_WIN_RECORD       ? KB_ROT_S_RECORD
                       : r->plan.window == KB_RC_WIN_DEACTIVATE ? KB_ROT_S_DEACT
                                                                : KB_ROT_S_DELETE;
    const char *op = r->plan.window == KB_RC_WIN_RECORD       ? "TagResource"
                     : r->plan.window == KB_RC_WIN_DEACTIVATE ? "UpdateAccessKey"
                                                              : "DeleteAccessKey";

    kb_job_log_call(j, step, op, err, KB_RID(ok));
    if (err != NULL &&
        !(r->plan.window == KB_RC_WIN_DELETE && kb_rc_is_code(err, "NoSuchEntity"))) {
        kb_rot__fail_end(j, step, err);
        kb_job_unref(j);
        return;
    }
    kb_log(KB_LOG_INFO, step, "tenant", j->t->name, "access_key_id", k->id, "version_id",
           r->snap.previous, NULL);
    if (r->plan.window == KB_RC_WIN_DEACTIVATE) {
        kb_job_event(j, step, KB_ENGINE_DONE,
                     r->cut_over ? "the superseded key is inactive (every subscriber acknowledged "
                                   "the new version)"
                                 : "the superseded key is inactive (aws.overlap over)",
                     KB_RID(ok));
        kb_rot__emit(j, KB_EVENT_KEY_DEACTIVATED, r->snap.previous,
                     r->cut_over ? "acknowledged by every subscriber" : "after aws.overlap");
    } else if (r->plan.window == KB_RC_WIN_DELETE) {
        kb_job_event(j, step, KB_ENGINE_DONE, "the superseded key is deleted (aws.retire over)",
                     err != NULL ? err->request_id : ok->request_id);
        kb_rot__emit(j, KB_EVENT_KEY_DELETED, r->snap.previous, "after aws.overlap and aws.retire");
    } else {
        kb_job_event(j, step, KB_ENGINE_DONE, "supersede time recorded as now", KB_RID(ok));
    }
    s_window_done(j);
    kb_job_unref(j);
}

int kb_rot__tag_superseded(struct kb_job *j, const char *version, kb_aws_done_cb cb)
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
        kb_job_event(j, KB_ROT_S_RECORD, KB_ENGINE_START, NULL, NULL);
        kb_job_send(j, KB_ROT_S_RECORD, "TagResource",
                    kb_rot__tag_superseded(j, r->snap.previous, on_window), kb_rot__end);
        return;
    case KB_RC_WIN_DEACTIVATE:
        kb_job_event(j, KB_ROT_S_DEACT, KB_ENGINE_START, NULL, NULL);
        rc = kb_iam_update_access_key(
            j->client, &(struct kb_iam_update_access_key_input){user, key, KB_IAM_KEY_INACTIVE},
            on_window, j);
        kb_job_send(j, KB_ROT_S_DEACT, "UpdateAccessKey", rc, kb_rot__end);
        return;
    case KB_RC_WIN_DELETE:
        kb_job_event(j, KB_ROT_S_DELETE, KB_ENGINE_START, NULL, NULL);
        rc = kb_iam_delete_access_key(j->client, &(struct kb_iam_access_key_input){user, key},
                                      on_window, j);
        kb_job_send(j, KB_ROT_S_DELETE, "DeleteAccessKey", rc, kb_rot__end);
        return;
    }
}

static void on_stale_removed(void *ctx, const struct kb_aws_error *err,
                             const struct kb_sm_secret_ref *ref)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, KB_ROT_S_STALE, "UpdateSecretVersionStage", err, KB_RID(ref));
    if (err != NULL) {
        kb_rot__fail_end(j, KB_ROT_S_STALE, err);
    } else {
        kb_job_event(j, KB_ROT_S_STALE, KB_ENGINE_DONE,
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
    kb_job_event(j, KB_ROT_S_STALE, KB_ENGINE_START, NULL, NULL);
    kb_job_send(j, KB_ROT_S_STALE, "UpdateSecretVersionStage",
                kb_sm_update_secret_version_stage(
                    j->client,
                    &(struct kb_sm_update_secret_version_stage_input){
                        j->t->secret_name, KB_ROT_S_PENDING, NULL, r->snap.pending},
                    on_stale_removed, j),
                kb_rot__end);
}

/* -- the action -------------------------------------------------------------------------------- */

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
        kb_job_fail(j, KB_ROT_S_ROTATE, NULL,
                    "AWSCURRENT holds no active key of the user: provision the tenant first");
        break;
    case KB_RC_REFUSE_YOUNG_ORPHAN:
        kb_job_fail(j, KB_ROT_S_ROTATE, NULL,
                    "refused, nothing changed: a key slot is held by an access key no secret "
                    "version references, created %s (younger than aws.orphan_key_min_age, %" PRIu64
                    "s: maybe another broker's rotation in flight); never deleted by rotation",
                    when, j->cfg->aws.orphan_key_min_age);
        break;
    case KB_RC_REFUSE_ORPHAN:
        kb_job_fail(j, KB_ROT_S_ROTATE, NULL,
                    "refused, nothing changed: a key slot is held by an access key no secret "
                    "version references, created %s; provisioning deletes it (never rotation)",
                    when);
        break;
    case KB_RC_REFUSE_PREVIOUS_KEPT:
        kb_job_fail(j, KB_ROT_S_ROTATE, NULL,
                    "refused, nothing changed: the superseded key (version %s) is kept until "
                    "aws.overlap and aws.retire are over (rollback needs it)",
                    r->snap.previous);
        break;
    default:
        kb_job_fail(j, KB_ROT_S_ROTATE, NULL,
                    "refused, nothing changed: no free access key slot (both hold keys the "
                    "secret's versions reference)");
        break;
    }
    kb_job_set_life(j, r->plan.next);
    kb_rot__end(j);
}

static void s_action(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);

    switch (r->plan.action) {
    case KB_RC_ROT_NONE:
        s_life_after(j);
        kb_job_event(j, KB_ROT_S_ROTATE, KB_ENGINE_SKIP, "no rotation due", NULL);
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
        kb_rot__unpend(j);
        return;
    case KB_RC_ROT_RESUME:
        snprintf(r->new_key, sizeof(r->new_key), "%s", r->snap.keys[r->plan.pending].id);
        snprintf(r->new_version, sizeof(r->new_version), "%s", r->snap.pending);
        kb_rot__read_pending(j);
        return;
    case KB_RC_ROT_CREATE:
        kb_rot__create(j);
        return;
    }
}

/* -- rollback ---------------------------------------------------------------------------------- */

static void on_reactivated(void *ctx, const struct kb_aws_error *err, const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;
    struct kb_rot *r = kb_rot(j);

    kb_job_log_call(j, KB_ROT_S_REACT, "UpdateAccessKey", err, KB_RID(ok));
    if (err != NULL) {
        kb_rot__fail_end(j, KB_ROT_S_REACT, err);
    } else {
        kb_log(KB_LOG_INFO, KB_ROT_S_REACT, "tenant", j->t->name, "access_key_id", r->new_key,
               "version_id", r->new_version, NULL);
        kb_job_event(j, KB_ROT_S_REACT, KB_ENGINE_DONE, "the superseded key is active again",
                     ok->request_id);
        kb_rot__read_previous(j);
    }
    kb_job_unref(j);
}

/* Refuses a rollback the plan refused, saying why; nothing was changed. */
static void s_rollback_refused(struct kb_job *j, const struct kb_rc_rollback_plan *rb)
{
    struct kb_rot *r = kb_rot(j);

    switch (rb->refusal) {
    case KB_RC_RB_IN_FLIGHT:
        kb_job_fail(j, KB_ROT_S_BACK, NULL,
                    "rollback refused, nothing changed: a rotation is unfinished (AWSPENDING is on "
                    "version %s); finish it first with kbctl rotate",
                    r->snap.pending);
        break;
    case KB_RC_RB_NO_PREVIOUS:
        kb_job_fail(j, KB_ROT_S_BACK, NULL,
                    "rollback refused, nothing changed: the secret has no AWSPREVIOUS version to "
                    "roll back to");
        break;
    case KB_RC_RB_DELETED:
        kb_job_fail(j, KB_ROT_S_BACK, NULL,
                    "rollback refused, nothing changed: the key of the superseded version %s was "
                    "deleted (aws.overlap and aws.retire are over); rollback is no longer possible",
                    r->snap.previous);
        break;
    default:
        kb_job_fail(j, KB_ROT_S_BACK, NULL,
                    "rollback refused, nothing changed: AWSCURRENT holds no key of the user");
        break;
    }
    kb_rot__end(j);
}

static void s_rollback(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);
    struct kb_rc_rollback_plan rb;
    int rc = kb_rc_plan_rollback(&r->snap, &rb);

    if (rc != 0) {
        kb_job_fail(j, KB_ROT_S_BACK, NULL, "cannot plan the rollback: %s", kb_strerror(rc));
        kb_rot__end(j);
        return;
    }
    if (rb.refusal != KB_RC_RB_OK) {
        s_rollback_refused(j, &rb);
        return;
    }
    snprintf(r->new_key, sizeof(r->new_key), "%s", r->snap.keys[rb.previous].id);
    snprintf(r->new_version, sizeof(r->new_version), "%s", r->snap.previous);
    snprintf(r->old_version, sizeof(r->old_version), "%s", r->snap.current);
    kb_log(KB_LOG_WARN, "rollback", "tenant", j->t->name, "version_id", r->new_version,
           "from_version_id", r->old_version, NULL);
    if (!rb.reactivate) {
        kb_rot__read_previous(j);
        return;
    }
    kb_job_event(j, KB_ROT_S_REACT, KB_ENGINE_START, NULL, NULL);
    rc = kb_iam_update_access_key(
        j->client,
        &(struct kb_iam_update_access_key_input){j->t->user_name, r->new_key, KB_IAM_KEY_ACTIVE},
        on_reactivated, j);
    kb_job_send(j, KB_ROT_S_REACT, "UpdateAccessKey", rc, kb_rot__end);
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
