/*
 * rotate_key.c - the rotate kind's new key (rotate.h; rotate.c has the steps and the argument):
 * CreateAccessKey -> PutSecretValue(AWSPENDING, ClientRequestToken = kb_uuid_key_version(tenant,
 * key), as provisioning derives it) with compensation when the store certainly failed and a read
 * of the secret when its outcome is unknown; or, resuming, GetSecretValue of the AWSPENDING
 * version (its AccessKeyId must be the one its version id names); the readiness probe with the
 * new key (time to ready logged and kept in the status); then UpdateSecretVersionStage moving
 * AWSCURRENT, UpdateSecretVersionStage removing AWSPENDING, the supersede tag, "rotated".
 * A label call AWS refuses is checked with DescribeSecret: labels already as wanted (another
 * rotator) count as done.
 *
 * The new key's secret goes from CreateAccessKey's (or GetSecretValue's) kb_secret into the
 * guarded value and the probe; this file never formats it, and names the key by its version id in
 * messages (its id only in the log).
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

#include "engine/engine_internal.h"
#include "engine/rotate.h"

static void s_move(struct kb_job *j);
static void s_tag(struct kb_job *j);
static void s_pre_finish(struct kb_job *j);

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

/* -- a new key, stored as AWSPENDING ----------------------------------------------------------- */

static void s_probed(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);
    uint64_t ms = kb_job_now(j) - r->probe.started;
    char ms_text[32];

    r->probing = false;
    if (j->failed) {
        /* The key stays stored as AWSPENDING: the next pass resumes it. A rollback's key stays
         * AWSPREVIOUS (reactivated or not: its windows are unchanged). */
        kb_rot__end(j);
        return;
    }
    if (j->rollback) {
        s_move(j);
        return;
    }
    snprintf(ms_text, sizeof(ms_text), "%" PRIu64, ms);
    kb_job_set_rotation_probe(j, ms > 0 ? ms : 1); /* 0 means "none" */
    kb_log(KB_LOG_INFO, "rotation-probe", "tenant", j->t->name, "version_id", r->new_version,
           "time_to_ready_ms", ms_text, NULL);
    s_pre_finish(j);
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

    kb_job_log_call(j, KB_ROT_S_STORE, "DeleteAccessKey", err, KB_RID(ok));
    kb_log(KB_LOG_INFO, "compensate", "tenant", j->t->name, "step", KB_ROT_S_STORE, "access_key_id",
           r->new_key, "result", gone ? "deleted" : "failed", NULL);
    if (gone)
        kb_job_fail(j, KB_ROT_S_STORE, r->store_request_id,
                    "%s; the new key was deleted (compensation)", r->store_error);
    else
        kb_job_fail(j, KB_ROT_S_STORE, r->store_request_id,
                    "%s; deleting the new key failed too (%s): a later reconcile deletes it once "
                    "it is older than aws.orphan_key_min_age",
                    r->store_error, err->code[0] != '\0' ? err->code : kb_err_name(err->err));
    kb_rot__end(j);
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
    kb_job_fail(j, KB_ROT_S_STORE, r->store_request_id,
                "%s; the new key could not be deleted (%s): a later reconcile deletes it once it "
                "is older than aws.orphan_key_min_age",
                r->store_error, kb_strerror(rc));
    kb_rot__end(j);
}

static void s_stored(struct kb_job *j, const char *request_id, const char *how)
{
    struct kb_rot *r = kb_rot(j);
    char msg[160];

    kb_log(KB_LOG_INFO, "key-stored", "tenant", j->t->name, "step", KB_ROT_S_STORE, "access_key_id",
           r->new_key, "version_id", r->new_version, "stage", KB_ROT_S_PENDING, NULL);
    snprintf(msg, sizeof(msg), "%s as AWSPENDING version %s", how, r->new_version);
    kb_job_event(j, KB_ROT_S_STORE, KB_ENGINE_DONE, msg, request_id);
    s_probe(j);
}

static void on_verify_store(void *ctx, const struct kb_aws_error *err,
                            const struct kb_sm_description *d)
{
    struct kb_job *j = ctx;
    struct kb_rot *r = kb_rot(j);
    bool found = false;

    kb_job_log_call(j, KB_ROT_S_STORE, "DescribeSecret", err, KB_RID(d));
    for (size_t v = 0; d != NULL && v < d->version_count; v++)
        found = found || strcmp(d->versions[v].version_id, r->new_version) == 0;
    if (err != NULL) {
        kb_job_fail(j, KB_ROT_S_STORE, r->store_request_id,
                    "%s; whether it was stored is unknown (DescribeSecret failed too), so the new "
                    "key (version %s) is kept: a later pass finds its version or provisioning "
                    "deletes it",
                    r->store_error, r->new_version);
        kb_rot__end(j);
    } else if (found && s_stage_on(d, r->new_version, KB_ROT_S_PENDING)) {
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

    kb_job_log_call(j, KB_ROT_S_STORE, "PutSecretValue", err, KB_RID(ref));
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
    static const char *const pending[] = {KB_ROT_S_PENDING};
    struct kb_secret *value = NULL;
    int rc;

    kb_job_event(j, KB_ROT_S_STORE, KB_ENGINE_START, NULL, NULL);
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

    kb_job_log_call(j, KB_ROT_S_CREATE, "CreateAccessKey", err, KB_RID(k));
    if (err != NULL) {
        /* LimitExceeded: another rotator took the free slot meanwhile. Nothing changed. */
        kb_rot__fail_end(j, KB_ROT_S_CREATE, err);
    } else {
        r->new_secret = k->secret_access_key;
        k->secret_access_key = NULL;
        snprintf(r->new_key, sizeof(r->new_key), "%s", k->access_key_id);
        kb_log(KB_LOG_INFO, "key-created", "tenant", j->t->name, "step", KB_ROT_S_CREATE,
               "access_key_id", r->new_key, "request_id", k->request_id, NULL);
        kb_job_event(j, KB_ROT_S_CREATE, KB_ENGINE_DONE, "created", k->request_id);
        s_store(j);
    }
    kb_job_unref(j);
}

void kb_rot__create(struct kb_job *j)
{
    kb_job_event(j, KB_ROT_S_CREATE, KB_ENGINE_START, NULL, NULL);
    kb_job_send(j, KB_ROT_S_CREATE, "CreateAccessKey",
                kb_iam_create_access_key(j->client, &(struct kb_iam_user_input){j->t->user_name},
                                         on_create, j),
                kb_rot__end);
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
    kb_job_log_call(j, r->read_step, "GetSecretValue", err, KB_RID(v));
    if (err != NULL) {
        kb_rot__fail_end(j, r->read_step, err);
        kb_job_unref(j);
        return;
    }
    rc = kb_sm_key_secret_parse(v->secret_string, &parts);
    if (rc == 0 && strcmp(parts.access_key_id, r->new_key) != 0)
        rc = KB_EPARSE;
    if (rc != 0) {
        kb_secret_destroy(parts.secret_access_key);
        kb_job_fail(j, r->read_step, v->request_id,
                    "the %s version %s does not hold the key its id names (%s)",
                    j->rollback ? "AWSPREVIOUS" : "AWSPENDING", r->new_version, kb_strerror(rc));
        kb_rot__end(j);
    } else {
        r->new_secret = parts.secret_access_key;
        kb_job_event(j, r->read_step, KB_ENGINE_DONE,
                     j->rollback ? "the superseded version's key, to probe it"
                                 : "resuming the interrupted rotation",
                     v->request_id);
        s_probe(j);
    }
    kb_job_unref(j);
}

/* GetSecretValue of new_version at step, then the probe of its key. */
static void s_read_key(struct kb_job *j, const char *step)
{
    struct kb_rot *r = kb_rot(j);

    r->read_step = step;
    kb_job_event(j, step, KB_ENGINE_START, NULL, NULL);
    kb_job_send(j, step, "GetSecretValue",
                kb_sm_get_secret_value(
                    j->client,
                    &(struct kb_sm_get_secret_value_input){j->t->secret_name, r->new_version, NULL},
                    on_pending_value, j),
                kb_rot__end);
}

void kb_rot__read_pending(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);

    kb_log(KB_LOG_INFO, "rotation-resume", "tenant", j->t->name, "version_id", r->new_version,
           "access_key_id", r->new_key, NULL);
    r->wanted = true;
    s_read_key(j, KB_ROT_S_READ);
}

void kb_rot__read_previous(struct kb_job *j)
{
    s_read_key(j, KB_ROT_S_READ_PV);
}

/* -- the pre_finish hook ----------------------------------------------------------------------- */

static void on_pre_finish(void *ctx, int rc, const char *why)
{
    struct kb_job *j = ctx;

    if (rc != 0) {
        /* Nothing moved: AWSCURRENT is where it was and the new key stays AWSPENDING (I1 allows
         * it), so the next pass resumes from it and asks the hooks again. */
        kb_job_fail(j, KB_ROT_S_HOOK, NULL,
                    "%s; AWSCURRENT was not moved and the new key stays AWSPENDING (version %s) "
                    "for the next pass",
                    why != NULL && why[0] != '\0' ? why : kb_strerror(rc), kb_rot(j)->new_version);
        kb_rot__end(j);
    } else {
        kb_job_event(j, KB_ROT_S_HOOK, KB_ENGINE_DONE, why, NULL);
        s_move(j);
    }
    kb_job_unref(j);
}

/* The new key is stored and probed: the pre_finish hooks (when any) may still stop the move. */
static void s_pre_finish(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);
    struct kb_event ev = {.kind = KB_EVENT_STEP,
                          .tenant = j->t->name,
                          .op = "rotate",
                          .step = KB_ROT_S_HOOK,
                          .result = KB_ENGINE_START,
                          .arn = r->secret_arn[0] != '\0' ? r->secret_arn : NULL,
                          .version_id = r->new_version,
                          .previous_version_id = r->old_version[0] != '\0' ? r->old_version : NULL,
                          .rotation_id = r->rotation_id};

    if (j->e->pre_finish == NULL) {
        s_move(j);
        return;
    }
    kb_job_event(j, KB_ROT_S_HOOK, KB_ENGINE_START, NULL, NULL);
    kb_job_ref(j);
    j->e->pre_finish(j->e->pre_finish_ctx, &ev, on_pre_finish, j);
}

/* -- moving the labels ------------------------------------------------------------------------- */

static void on_verified(void *ctx, const struct kb_aws_error *err,
                        const struct kb_sm_description *d)
{
    struct kb_job *j = ctx;
    struct kb_rot *r = kb_rot(j);
    const struct kb_rot_verify *how = r->verify;

    kb_job_log_call(j, how->step, "DescribeSecret", err, KB_RID(d));
    if (err == NULL && how->done(j, d)) {
        kb_job_event(j, how->step, KB_ENGINE_DONE, "already done (another rotator)", d->request_id);
        how->then(j);
    } else {
        kb_rot__fail_end(j, how->step, &r->label_error);
    }
    kb_job_unref(j);
}

/* A label call failed with err: read the labels before calling it a failure. */
static void s_verify(struct kb_job *j, const struct kb_rot_verify *how,
                     const struct kb_aws_error *err)
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
        kb_rot__fail_end(j, how->step, err);
}

/* The labels are moved: the status, "rotated" (or "rolled_back"), the outcome. */
static void s_rotated(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);
    char msg[256], probe[sizeof(kb_job_status(j)->probe)];

    /* A copy: kb_job_set_key writes the status field the probe result is read from. */
    snprintf(probe, sizeof(probe), "%s", kb_job_status(j)->probe);
    kb_job_set_key(j, r->secret_arn, r->new_version, time(NULL), probe);
    kb_log(KB_LOG_INFO, j->rollback ? "rolled-back" : "rotated", "tenant", j->t->name, "version_id",
           r->new_version, "previous_version_id", r->old_version, NULL);
    kb_rot__emit(j, j->rollback ? KB_EVENT_ROLLED_BACK : KB_EVENT_ROTATED, r->new_version,
                 r->old_version);
    if (j->rollback)
        snprintf(msg, sizeof(msg), "rolled back: version %s is AWSCURRENT again (was %s)",
                 r->new_version, r->old_version);
    else
        snprintf(msg, sizeof(msg), "rotated: version %s is AWSCURRENT (was %s)", r->new_version,
                 r->old_version);
    kb_job_event(j, j->rollback ? KB_ROT_S_BACK : KB_ROT_S_ROTATE, KB_ENGINE_DONE, msg, NULL);
    snprintf(j->message, sizeof(j->message), "%s", msg);
    /* The new previous key's first window. */
    kb_job_set_life(j, time(NULL) + (time_t)j->cfg->aws.overlap);
    kb_job_end(j);
}

static void on_tagged(void *ctx, const struct kb_aws_error *err, const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, KB_ROT_S_TAG, "TagResource", err, KB_RID(ok));
    if (err != NULL)
        kb_job_event(j, KB_ROT_S_TAG, KB_ENGINE_SKIP,
                     "could not record the supersede time (the next pass records it)",
                     err->request_id);
    else
        kb_job_event(j, KB_ROT_S_TAG, KB_ENGINE_DONE, "recorded", ok->request_id);
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
    kb_job_event(j, KB_ROT_S_TAG, KB_ENGINE_START, NULL, NULL);
    kb_job_send(j, KB_ROT_S_TAG, "TagResource",
                kb_rot__tag_superseded(j, r->old_version, on_tagged), kb_rot__end);
}

static bool s_unpended(struct kb_job *j, const struct kb_sm_description *d)
{
    (void)j;
    return s_stage_nowhere(d, KB_ROT_S_PENDING);
}

static const struct kb_rot_verify s_verify_unpend = {KB_ROT_S_UNPEND, s_tag, s_unpended};

static void on_unpend(void *ctx, const struct kb_aws_error *err, const struct kb_sm_secret_ref *ref)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, KB_ROT_S_UNPEND, "UpdateSecretVersionStage", err, KB_RID(ref));
    if (err != NULL) {
        s_verify(j, &s_verify_unpend, err);
    } else {
        kb_job_event(j, KB_ROT_S_UNPEND, KB_ENGINE_DONE, "AWSPENDING removed from the new version",
                     ref->request_id);
        s_tag(j);
    }
    kb_job_unref(j);
}

void kb_rot__unpend(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);

    r->wanted = true;
    kb_job_event(j, KB_ROT_S_UNPEND, KB_ENGINE_START, NULL, NULL);
    kb_job_send(j, KB_ROT_S_UNPEND, "UpdateSecretVersionStage",
                kb_sm_update_secret_version_stage(
                    j->client,
                    &(struct kb_sm_update_secret_version_stage_input){
                        j->t->secret_name, KB_ROT_S_PENDING, NULL, r->new_version},
                    on_unpend, j),
                kb_rot__end);
}

static bool s_moved(struct kb_job *j, const struct kb_sm_description *d)
{
    return s_stage_on(d, kb_rot(j)->new_version, KB_ROT_S_CURRENT);
}

/* AWSCURRENT is on new_version: a rotation removes AWSPENDING from it, a rollback (which has no
 * AWSPENDING) records the version it left as superseded. */
static void s_after_move(struct kb_job *j)
{
    if (j->rollback)
        s_tag(j);
    else
        kb_rot__unpend(j);
}

static const struct kb_rot_verify s_verify_move = {KB_ROT_S_MOVE, s_after_move, s_moved};

static void on_move(void *ctx, const struct kb_aws_error *err, const struct kb_sm_secret_ref *ref)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, KB_ROT_S_MOVE, "UpdateSecretVersionStage", err, KB_RID(ref));
    if (err != NULL) {
        s_verify(j, &s_verify_move, err);
    } else {
        kb_job_event(j, KB_ROT_S_MOVE, KB_ENGINE_DONE,
                     j->rollback ? "AWSCURRENT moved back to the superseded version"
                                 : "AWSCURRENT moved to the new version",
                     ref->request_id);
        s_after_move(j);
    }
    kb_job_unref(j);
}

static void s_move(struct kb_job *j)
{
    struct kb_rot *r = kb_rot(j);

    kb_job_event(j, KB_ROT_S_MOVE, KB_ENGINE_START, NULL, NULL);
    kb_job_send(j, KB_ROT_S_MOVE, "UpdateSecretVersionStage",
                kb_sm_update_secret_version_stage(
                    j->client,
                    &(struct kb_sm_update_secret_version_stage_input){
                        j->t->secret_name, KB_ROT_S_CURRENT, r->new_version, r->old_version},
                    on_move, j),
                kb_rot__end);
}
