/*
 * provision_key.c - the key step of a tenant, once both chains have succeeded (DESIGN.md sections
 * 5-7):
 *
 *   DescribeSecret (never GetSecretValue) -> the secret's tags must be ours; scheduled for
 *   deletion -> error; the versions labelled AWSCURRENT/AWSPENDING/AWSPREVIOUS
 *   ListAccessKeys (skipped for a user this run created: it has none)
 *   plan (reconcile.h): delete orphans older than aws.orphan_key_min_age; AWSCURRENT holds an
 *   active key -> ready, no write; else CreateAccessKey -> the value of section 5 in guarded
 *   memory -> CreateSecret (name, tags, KMS key) or PutSecretValue (stage AWSCURRENT) with
 *   ClientRequestToken = kb_uuid_key_version(tenant, key) -> readiness probe -> ready.
 *
 * A store that fails for sure (a 4xx) deletes the new key before the error is reported
 * (compensation). A store whose outcome is unknown (5xx, network, timeout after the client's
 * retries) first reads the secret: the version is there -> stored after all; it is not -> the key
 * is deleted; the read fails too -> the key is kept and reported, and a later reconcile deletes
 * it once it is older than aws.orphan_key_min_age (its version id says whether it was stored).
 *
 * Messages (step events, the outcome, the status) reach socket peers and never name an
 * AccessKeyId: a key is named by its secret version id there, and by its id only in the log
 * (kb_log), which is for operators.
 *
 * This file never reads a secret value (no GetSecretValue: the version id names the key), never
 * formats the new key's secret (it goes from CreateAccessKey's kb_secret into the guarded value,
 * whose request body the client wipes), and never deletes a key a labelled version references.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engine/provision.h"
#include "common/err.h"
#include "aws/iam.h"
#include "common/log.h"
#include "aws/secretsmanager.h"

#define S_SECRET  "secret"
#define S_STAGS   "secret-tags"
#define S_KEYS    "access-keys"
#define S_ORPHANS "orphan-keys"
#define S_CREATE  "create-key"
#define S_STORE   "store-key"

static void s_keys(struct kb_job *j);
static void s_act(struct kb_job *j);

static void s_fail_end(struct kb_job *j, const char *step, const struct kb_aws_error *err)
{
    kb_job_fail_aws(j, step, err);
    kb_job_end(j);
}

/* -- the secret -------------------------------------------------------------------------------- */

static void s_labels(struct kb_job *j, const struct kb_sm_description *d)
{
    struct kb_prov *p = kb_prov(j);
    static const struct {
        const char *label;
        size_t off;
    } map[] = {{"AWSCURRENT", offsetof(struct kb_rc_snapshot, current)},
               {"AWSPENDING", offsetof(struct kb_rc_snapshot, pending)},
               {"AWSPREVIOUS", offsetof(struct kb_rc_snapshot, previous)}};

    for (size_t v = 0; v < d->version_count; v++) {
        for (size_t s = 0; s < d->versions[v].stage_count; s++) {
            for (size_t m = 0; m < sizeof(map) / sizeof(map[0]); m++) {
                if (strcmp(d->versions[v].stages[s], map[m].label) == 0)
                    snprintf((char *)&p->snap + map[m].off, sizeof(p->snap.current), "%s",
                             d->versions[v].version_id);
            }
        }
    }
}

static int s_send_tags(struct kb_job *j, const struct kb_aws_tag *tags, size_t n, kb_aws_done_cb cb)
{
    return kb_sm_tag_resource(
        j->client, &(struct kb_sm_tag_resource_input){j->t->secret_name, tags, n}, cb, j);
}

static const struct kb_prov_retag s_retag_secret = {
    S_STAGS,     "TagResource", "configured tags missing or changed on the secret",
    s_send_tags, s_keys,        kb_job_end};

/* The secret exists: ours, live, labels noted; then its tags and the keys. */
static void s_adopt_secret(struct kb_job *j, const struct kb_sm_description *d)
{
    struct kb_prov *p = kb_prov(j);
    const char *kms = j->cfg->aws.kms_key_id;
    size_t missing[KB_CONFIG_MAX_USER_TAGS + 2], n;

    if (!kb_rc_tags_ours(d->tags, d->tag_count, j->t->name)) {
        kb_job_fail(j, S_SECRET, d->request_id,
                    "secret %s exists and is not managed by keybroker for tenant %s; refusing to "
                    "adopt it",
                    j->t->secret_name, j->t->name);
        kb_job_end(j);
        return;
    }
    if (d->deleted_date != 0) {
        kb_job_fail(j, S_SECRET, d->request_id,
                    "secret %s is scheduled for deletion; restore it or choose another "
                    "secret_prefix",
                    j->t->secret_name);
        kb_job_end(j);
        return;
    }
    p->secret_exists = true;
    snprintf(p->secret_arn, sizeof(p->secret_arn), "%s", d->arn);
    p->secret_changed = d->last_changed_date;
    s_labels(j, d);
    p->superseded_known =
        kb_rc_superseded_at(d->tags, d->tag_count, p->snap.previous, &p->superseded_at);
    if ((kms == NULL) != (d->kms_key_id == NULL) ||
        (kms != NULL && strcmp(kms, d->kms_key_id) != 0))
        kb_job_drift(j, S_SECRET, "the secret's KMS key differs from aws.kms_key_id (not changed)");
    kb_job_event(j, S_SECRET, KB_ENGINE_DONE, "exists, managed by keybroker", d->request_id);
    n = kb_rc_tags_missing(d->tags, d->tag_count, p->tags, p->ntags, missing);
    if (n > 0)
        kb_prov__retag(j, &s_retag_secret, missing, n);
    else
        s_keys(j);
}

static void on_describe(void *ctx, const struct kb_aws_error *err,
                        const struct kb_sm_description *d)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, S_SECRET, "DescribeSecret", err, KB_RID(d));
    if (err == NULL) {
        s_adopt_secret(j, d);
    } else if (kb_rc_is_code(err, "ResourceNotFoundException")) {
        kb_job_event(j, S_SECRET, KB_ENGINE_DONE, "does not exist yet", err->request_id);
        s_keys(j);
    } else {
        s_fail_end(j, S_SECRET, err);
    }
    kb_job_unref(j);
}

void kb_prov__key_start(struct kb_job *j)
{

    kb_prov(j)->snap.tenant = j->t->name;
    kb_job_event(j, S_SECRET, KB_ENGINE_START, NULL, NULL);
    kb_job_send(j, S_SECRET, "DescribeSecret",
                kb_sm_describe_secret(j->client, &(struct kb_sm_secret_input){j->t->secret_name},
                                      on_describe, j),
                kb_job_end);
}

/* -- the user's keys --------------------------------------------------------------------------- */

static void s_delete_next(struct kb_job *j);

static void on_delete_orphan(void *ctx, const struct kb_aws_error *err,
                             const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;
    struct kb_prov *p = kb_prov(j);
    const struct kb_rc_key *k = &p->snap.keys[p->plan.del[p->del_next]];
    char msg[256];

    kb_job_log_call(j, S_ORPHANS, "DeleteAccessKey", err, KB_RID(ok));
    if (err != NULL && !kb_rc_is_code(err, "NoSuchEntity")) {
        s_fail_end(j, S_ORPHANS, err);
    } else {
        kb_log(KB_LOG_INFO, "orphan-key-deleted", "tenant", j->t->name, "step", S_ORPHANS,
               "access_key_id", k->id, "request_id", err != NULL ? err->request_id : ok->request_id,
               NULL);
        snprintf(msg, sizeof(msg),
                 "deleted an access key referenced by no secret version (%zu of %zu)",
                 p->del_next + 1, p->plan.ndel);
        kb_job_event(j, S_ORPHANS, KB_ENGINE_DONE, msg,
                     err != NULL ? err->request_id : ok->request_id);
        p->del_next++;
        s_delete_next(j);
    }
    kb_job_unref(j);
}

static void s_delete_next(struct kb_job *j)
{
    struct kb_prov *p = kb_prov(j);

    if (p->del_next >= p->plan.ndel) {
        s_act(j);
        return;
    }
    kb_job_event(j, S_ORPHANS, KB_ENGINE_START, NULL, NULL);
    kb_job_send(
        j, S_ORPHANS, "DeleteAccessKey",
        kb_iam_delete_access_key(j->client,
                                 &(struct kb_iam_access_key_input){
                                     j->t->user_name, p->snap.keys[p->plan.del[p->del_next]].id},
                                 on_delete_orphan, j),
        kb_job_end);
}

/* When the tenant's next rotation pass is due (rotate.c does it; the engine schedules it): the
 * superseded key's windows, an interrupted rotation, rotate_every. */
static void s_note_rotation(struct kb_job *j)
{
    struct kb_prov *p = kb_prov(j);
    const struct kb_config_aws *aws = &j->cfg->aws;
    struct kb_rc_rotate_in in = {
        &p->snap,    p->superseded_known,     p->superseded_at,   time(NULL), aws->overlap,
        aws->retire, aws->orphan_key_min_age, j->t->rotate_every, false,      false};
    struct kb_rc_rotate_plan plan;

    if (kb_rc_plan_rotate(&in, &plan) == 0)
        kb_job_set_life(j, plan.next);
}

static void s_plan(struct kb_job *j)
{
    struct kb_prov *p = kb_prov(j);
    const struct kb_config_aws *aws = &j->cfg->aws;
    int rc = kb_rc_plan_keys(&p->snap, time(NULL), aws->orphan_key_min_age, &p->plan);

    s_note_rotation(j);

    if (rc != 0) {
        kb_job_fail(j, S_KEYS, NULL, "cannot plan the keys: %s", kb_strerror(rc));
        kb_job_end(j);
        return;
    }
    for (size_t i = 0; i < p->snap.nkeys; i++) {
        if (!(p->plan.referenced & (1u << i)))
            kb_log(KB_LOG_WARN, "orphan-key", "tenant", j->t->name, "step", S_KEYS, "access_key_id",
                   p->snap.keys[i].id, "message", "referenced by no secret version", NULL);
    }
    p->del_next = 0;
    s_delete_next(j);
}

static void on_keys(void *ctx, const struct kb_aws_error *err, const struct kb_iam_access_keys *ks)
{
    struct kb_job *j = ctx;
    struct kb_prov *p = kb_prov(j);
    char msg[64];

    kb_job_log_call(j, S_KEYS, "ListAccessKeys", err, KB_RID(ks));
    if (err != NULL) {
        s_fail_end(j, S_KEYS, err);
    } else {
        kb_rc_snap_keys(&p->snap, ks);
        snprintf(msg, sizeof(msg), "%zu key%s", p->snap.nkeys, p->snap.nkeys == 1 ? "" : "s");
        kb_job_event(j, S_KEYS, KB_ENGINE_DONE, msg, ks->request_id);
        s_plan(j);
    }
    kb_job_unref(j);
}

static void s_keys(struct kb_job *j)
{

    kb_job_event(j, S_KEYS, KB_ENGINE_START, NULL, NULL);
    if (kb_prov(j)->user_fresh) {
        /* A user this run created has no key: a ListAccessKeys would only say so. */
        kb_job_event(j, S_KEYS, KB_ENGINE_SKIP, "new user: no keys", NULL);
        s_plan(j);
        return;
    }
    kb_job_send(
        j, S_KEYS, "ListAccessKeys",
        kb_iam_list_access_keys(
            j->client, &(struct kb_iam_list_access_keys_input){j->t->user_name, NULL}, on_keys, j),
        kb_job_end);
}

/* -- ready, or a new key ----------------------------------------------------------------------- */

static void s_ready_unchanged(struct kb_job *j)
{
    struct kb_prov *p = kb_prov(j);
    const struct kb_tenant_status *st = kb_job_status(j);
    const struct kb_rc_key *k = &p->snap.keys[p->plan.current];
    bool same = strcmp(st->version_id, p->snap.current) == 0;

    /* A probe result of this process stays valid while the same version is current. */
    kb_job_set_key(j, p->secret_arn, p->snap.current,
                   same && st->last_rotation != 0 ? st->last_rotation : p->secret_changed,
                   same && st->probe[0] != '\0' ? st->probe : "not-probed");
    kb_log(KB_LOG_DEBUG, "key-current", "tenant", j->t->name, "step", S_CREATE, "access_key_id",
           k->id, "version_id", p->snap.current, NULL);
    kb_job_event(j, S_CREATE, KB_ENGINE_SKIP, "AWSCURRENT holds an active key", NULL);
    snprintf(j->message, sizeof(j->message), "ready: version %s, unchanged", p->snap.current);
    kb_job_end(j);
}

static void s_create_key(struct kb_job *j);

static void s_act(struct kb_job *j)
{
    const struct kb_rc_plan *p = &kb_prov(j)->plan;
    char when[32] = "?";
    struct tm tm;

    switch (p->action) {
    case KB_RC_READY:
        s_ready_unchanged(j);
        return;
    case KB_RC_CREATE:
        s_create_key(j);
        return;
    case KB_RC_WAIT:
        if (gmtime_r(&kb_prov(j)->snap.keys[p->waiting].created, &tm) != NULL)
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        kb_log(KB_LOG_WARN, "orphan-key", "tenant", j->t->name, "step", S_CREATE, "access_key_id",
               kb_prov(j)->snap.keys[p->waiting].id, "message",
               "holds a key slot until it is older than aws.orphan_key_min_age", NULL);
        kb_job_fail(j, S_CREATE, NULL,
                    "waiting for an unreferenced access key to age (created %s; deleted once "
                    "older than aws.orphan_key_min_age, %" PRIu64 "s): no free key slot, retry "
                    "later",
                    when, j->cfg->aws.orphan_key_min_age);
        break;
    case KB_RC_NO_SLOT:
        kb_job_fail(j, S_CREATE, NULL,
                    "no free access key slot: the user's keys are referenced by the secret's "
                    "versions and AWSCURRENT holds no active key; rotation must free a slot");
        break;
    }
    kb_job_end(j);
}

static void s_store(struct kb_job *j);

static void on_create_key(void *ctx, const struct kb_aws_error *err, struct kb_iam_access_key *k)
{
    struct kb_job *j = ctx;
    struct kb_prov *p = kb_prov(j);

    kb_job_log_call(j, S_CREATE, "CreateAccessKey", err, KB_RID(k));
    if (err != NULL) {
        s_fail_end(j, S_CREATE, err);
    } else {
        /* Take the secret: from here it lives only in guarded memory, until the probe ends. */
        p->new_secret = k->secret_access_key;
        k->secret_access_key = NULL;
        snprintf(p->new_key, sizeof(p->new_key), "%s", k->access_key_id);
        kb_log(KB_LOG_INFO, "key-created", "tenant", j->t->name, "step", S_CREATE, "access_key_id",
               p->new_key, "request_id", k->request_id, NULL);
        kb_job_event(j, S_CREATE, KB_ENGINE_DONE, "created", k->request_id);
        s_store(j);
    }
    kb_job_unref(j);
}

static void s_create_key(struct kb_job *j)
{

    kb_job_event(j, S_CREATE, KB_ENGINE_START, NULL, NULL);
    kb_job_send(j, S_CREATE, "CreateAccessKey",
                kb_iam_create_access_key(j->client, &(struct kb_iam_user_input){j->t->user_name},
                                         on_create_key, j),
                kb_job_end);
}

/* -- storing it, and compensation -------------------------------------------------------------- */

static void on_compensated(void *ctx, const struct kb_aws_error *err, const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;
    struct kb_prov *p = kb_prov(j);

    kb_job_log_call(j, S_STORE, "DeleteAccessKey", err, KB_RID(ok));
    kb_log(KB_LOG_INFO, "compensate", "tenant", j->t->name, "step", S_STORE, "access_key_id",
           p->new_key, "result",
           err == NULL || kb_rc_is_code(err, "NoSuchEntity") ? "deleted" : "failed", "request_id",
           err != NULL ? err->request_id : ok->request_id, NULL);
    if (err == NULL || kb_rc_is_code(err, "NoSuchEntity"))
        kb_job_fail(j, S_STORE, p->store_request_id, "%s; the new key was deleted (compensation)",
                    p->store_error);
    else
        kb_job_fail(j, S_STORE, p->store_request_id,
                    "%s; deleting the new key failed too (%s: %s): a later reconcile deletes "
                    "it once it is older than aws.orphan_key_min_age",
                    p->store_error, err->code[0] != '\0' ? err->code : kb_err_name(err->err),
                    err->message);
    kb_job_end(j);
    kb_job_unref(j);
}

/* The store certainly did not happen: delete the key before reporting (DESIGN.md section 7). */
static void s_compensate(struct kb_job *j)
{
    struct kb_prov *p = kb_prov(j);
    int rc;

    kb_log(KB_LOG_WARN, "compensate", "tenant", j->t->name, "step", S_STORE, "access_key_id",
           p->new_key, "message", "deleting the key that could not be stored", NULL);
    rc = kb_iam_delete_access_key(j->client,
                                  &(struct kb_iam_access_key_input){j->t->user_name, p->new_key},
                                  on_compensated, j);
    /* Not kb_job_send: a compensation that cannot start says so in the store's own words. */
    if (rc == 0) {
        kb_job_ref(j);
    } else {
        kb_log(KB_LOG_ERROR, "compensate", "tenant", j->t->name, "step", S_STORE, "access_key_id",
               p->new_key, "result", "failed", "error", kb_strerror(rc), NULL);
        kb_job_fail(j, S_STORE, p->store_request_id,
                    "%s; the new key could not be deleted (%s): a later reconcile deletes it "
                    "once it is older than aws.orphan_key_min_age",
                    p->store_error, kb_strerror(rc));
        kb_job_end(j);
    }
}

/* The probe's next step: the job's outcome. */
static void s_probed(struct kb_job *j)
{
    struct kb_prov *p = kb_prov(j);

    if (!j->failed)
        snprintf(j->message, sizeof(j->message), "ready: new key stored as version %s, %s",
                 p->new_version, kb_job_status(j)->probe);
    kb_job_end(j);
}

static void s_stored(struct kb_job *j, const char *arn, const char *how, const char *request_id)
{
    struct kb_prov *p = kb_prov(j);
    char msg[256];

    if (arn != NULL)
        snprintf(p->secret_arn, sizeof(p->secret_arn), "%s", arn);
    kb_job_set_key(j, p->secret_arn, p->new_version, time(NULL), "");
    if (j->t->rotate_every > 0)
        kb_job_set_life(
            j, time(NULL) + (time_t)j->t->rotate_every +
                   (time_t)kb_rc_rotate_jitter(j->t->name, p->new_key, j->t->rotate_every));
    else
        kb_job_set_life(j, 0);
    kb_log(KB_LOG_INFO, "key-stored", "tenant", j->t->name, "step", S_STORE, "access_key_id",
           p->new_key, "version_id", p->new_version, NULL);
    snprintf(msg, sizeof(msg), "%s as AWSCURRENT version %s", how, p->new_version);
    kb_job_event(j, S_STORE, KB_ENGINE_DONE, msg, request_id);
    /* The secret moves to the probe, which wipes it when the job is released. */
    kb_probe_start(&p->probe, j, p->new_key, p->new_secret, s_probed);
    p->new_secret = NULL;
}

static void on_verify(void *ctx, const struct kb_aws_error *err, const struct kb_sm_description *d)
{
    struct kb_job *j = ctx;
    struct kb_prov *p = kb_prov(j);
    bool found = false;

    kb_job_log_call(j, S_STORE, "DescribeSecret", err, KB_RID(d));
    for (size_t v = 0; d != NULL && v < d->version_count; v++)
        found = found || strcmp(d->versions[v].version_id, p->new_version) == 0;
    if (err != NULL && !kb_rc_is_code(err, "ResourceNotFoundException")) {
        kb_log(KB_LOG_WARN, "store-unknown", "tenant", j->t->name, "step", S_STORE, "access_key_id",
               p->new_key, "message", "kept: whether it was stored is unknown", NULL);
        kb_job_fail(j, S_STORE, p->store_request_id,
                    "%s; whether it was stored is unknown (DescribeSecret failed too: %s), so the "
                    "new key (version %s) is kept: a later reconcile finds its version or deletes "
                    "it",
                    p->store_error, err->code[0] != '\0' ? err->code : kb_err_name(err->err),
                    p->new_version);
        kb_job_end(j);
    } else if (found) {
        s_stored(j, d->arn, "stored (confirmed by DescribeSecret after an unclear answer)",
                 d->request_id);
    } else {
        s_compensate(j);
    }
    kb_job_unref(j);
}

static void on_store(void *ctx, const struct kb_aws_error *err, const struct kb_sm_secret_ref *ref)
{
    struct kb_job *j = ctx;
    struct kb_prov *p = kb_prov(j);
    const char *op = p->secret_exists ? "PutSecretValue" : "CreateSecret";
    int rc;

    kb_job_log_call(j, S_STORE, op, err, KB_RID(ref));
    if (err != NULL)
        snprintf(p->store_request_id, sizeof(p->store_request_id), "%s", err->request_id);
    if (err == NULL) {
        s_stored(j, ref->arn, "stored", ref->request_id);
    } else {
        snprintf(p->store_error, sizeof(p->store_error), "%s failed: %s%s%s (HTTP %ld%s%s)", op,
                 err->code, err->code[0] != '\0' ? ": " : "", err->message, err->status,
                 err->request_id[0] != '\0' ? ", request id " : "", err->request_id);
        if (kb_rc_store_surely_failed(err)) {
            s_compensate(j);
        } else {
            rc = kb_sm_describe_secret(j->client, &(struct kb_sm_secret_input){j->t->secret_name},
                                       on_verify, j);
            if (rc == 0)
                kb_job_ref(j);
            else
                s_compensate(j);
        }
    }
    kb_job_unref(j);
}

static int s_send_store(struct kb_job *j, struct kb_secret *value)
{
    struct kb_prov *p = kb_prov(j);
    static const char *const current[] = {"AWSCURRENT"};
    char description[160];

    if (p->secret_exists)
        return kb_sm_put_secret_value(j->client,
                                      &(struct kb_sm_put_secret_value_input){
                                          j->t->secret_name, p->new_version, value, current, 1},
                                      on_store, j);
    snprintf(description, sizeof(description), "keybroker: S3 access key of tenant %s", j->t->name);
    return kb_sm_create_secret(
        j->client,
        &(struct kb_sm_create_secret_input){j->t->secret_name, p->new_version, description,
                                            j->cfg->aws.kms_key_id, value, p->tags, p->ntags},
        on_store, j);
}

static void s_store(struct kb_job *j)
{
    struct kb_prov *p = kb_prov(j);
    struct kb_secret *value = NULL;
    int rc;

    kb_job_event(j, S_STORE, KB_ENGINE_START, NULL, NULL);
    rc = kb_uuid_key_version(j->t->name, p->new_key, p->new_version);
    if (rc == 0)
        rc = kb_sm_key_secret_new(p->new_key, p->new_secret, j->t->bucket, j->region, &value);
    if (rc == 0)
        rc = s_send_store(j, value);
    if (rc == 0)
        kb_job_ref(j); /* for on_store, which runs later */
    /* The client copied the body (and wipes it): the value is not needed any more. */
    kb_secret_destroy(value);
    if (rc != 0) {
        snprintf(p->store_error, sizeof(p->store_error), "could not send the store request: %s",
                 kb_strerror(rc));
        s_compensate(j);
    }
}
