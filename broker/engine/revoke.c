/*
 * revoke.c - deprovisioning a tenant, the reverse of DESIGN.md section 7, idempotent:
 *
 *   check               GetUser, DescribeSecret (and, when the bucket is to be deleted,
 *                       HeadBucket + GetBucketTagging): anything that exists without keybroker's
 *                       tags for this tenant stops the revoke before a single delete
 *   delete-keys         ListAccessKeys -> DeleteAccessKey each
 *   delete-user-policy  DeleteUserPolicy keybroker-s3
 *   delete-user         DeleteUser
 *   delete-secret       DeleteSecret with RecoveryWindowInDays = aws.recovery_window_days, or
 *                       ForceDeleteWithoutRecovery only when asked
 *   delete-bucket       only when asked: DeleteBucket; BucketNotEmpty keeps it (reported)
 * What is already gone (NoSuchEntity, ResourceNotFoundException, 404) counts as done.
 *
 * This file never deletes anything before the check has found every existing resource ours,
 * never deletes a non-empty bucket, and never forces a secret's deletion unless asked.
 */
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "aws/iam.h"
#include "common/log.h"
#include "aws/s3.h"
#include "aws/secretsmanager.h"

#include "engine/job.h"
#include "engine/reconcile.h"

#define S_CHECK "check"

/* The revoke kind's state. */
struct kb_revoke {
    bool user_exists, secret_live, bucket_exists;
    char keys[KB_RC_MAX_KEYS][128];
    size_t nkeys, key_next;
    size_t setting; /* the next entry of s_steps */
};

static struct kb_revoke *kb_revoke(struct kb_job *j)
{
    return kb_job_state(j);
}

static void s_next(struct kb_job *j);

static void s_fail(struct kb_job *j, const char *step, const struct kb_aws_error *err)
{
    kb_job_fail_aws(j, step, err);
    kb_job_end(j);
}

static void s_foreign(struct kb_job *j, const char *what, const char *name, const char *request_id)
{
    kb_job_fail(j, S_CHECK, request_id,
                "%s %s exists and is not managed by keybroker for tenant %s; refusing to revoke "
                "it (nothing was deleted)",
                what, name, j->t->name);
    kb_job_end(j);
}

/* -- check ------------------------------------------------------------------------------------- */

static void s_checked(struct kb_job *j)
{
    kb_job_event(j, S_CHECK, KB_ENGINE_DONE, "nothing foreign", NULL);
    s_next(j);
}

static void on_bucket_tags(void *ctx, const struct kb_aws_error *err, const struct kb_s3_tags *t)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, S_CHECK, "GetBucketTagging", err, KB_RID(t));
    if (err != NULL) {
        s_fail(j, S_CHECK, err);
    } else if (!kb_rc_tags_ours(t->tags, t->tag_count, j->t->name)) {
        s_foreign(j, "bucket", j->t->bucket, t->request_id);
    } else {
        kb_revoke(j)->bucket_exists = true;
        s_checked(j);
    }
    kb_job_unref(j);
}

static void on_bucket_head(void *ctx, const struct kb_aws_error *err,
                           const struct kb_s3_bucket_head *h)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, S_CHECK, "HeadBucket", err, KB_RID(h));
    if (err != NULL && err->err == KB_EAWS && err->status == 403)
        s_foreign(j, "bucket", j->t->bucket, err->request_id);
    else if (err != NULL)
        s_fail(j, S_CHECK, err);
    else if (!h->exists)
        s_checked(j);
    else
        kb_job_send(j, S_CHECK, "GetBucketTagging",
                    kb_s3_get_bucket_tagging(j->client, &(struct kb_s3_bucket_input){j->t->bucket},
                                             on_bucket_tags, j),
                    kb_job_end);
    kb_job_unref(j);
}

static void on_secret(void *ctx, const struct kb_aws_error *err, const struct kb_sm_description *d)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, S_CHECK, "DescribeSecret", err, KB_RID(d));
    if (err != NULL && !kb_rc_is_code(err, "ResourceNotFoundException")) {
        s_fail(j, S_CHECK, err);
    } else if (d != NULL && !kb_rc_tags_ours(d->tags, d->tag_count, j->t->name)) {
        s_foreign(j, "secret", j->t->secret_name, d->request_id);
    } else {
        /* A secret already scheduled is deleted again only to force it. */
        kb_revoke(j)->secret_live =
            d != NULL && (d->deleted_date == 0 || j->ropts->force_delete_secret);
        if (!j->ropts->delete_bucket) {
            s_checked(j);
        } else {
            kb_job_send(j, S_CHECK, "HeadBucket",
                        kb_s3_head_bucket(j->client,
                                          &(struct kb_s3_head_bucket_input){.bucket = j->t->bucket},
                                          on_bucket_head, j),
                        kb_job_end);
        }
    }
    kb_job_unref(j);
}

static void on_user(void *ctx, const struct kb_aws_error *err, const struct kb_iam_user *u)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, S_CHECK, "GetUser", err, KB_RID(u));
    if (err != NULL && !kb_rc_is_code(err, "NoSuchEntity")) {
        s_fail(j, S_CHECK, err);
    } else if (u != NULL && !kb_rc_tags_ours(u->tags, u->tag_count, j->t->name)) {
        s_foreign(j, "IAM user", j->t->user_name, u->request_id);
    } else {
        kb_revoke(j)->user_exists = u != NULL;
        kb_job_send(j, S_CHECK, "DescribeSecret",
                    kb_sm_describe_secret(
                        j->client, &(struct kb_sm_secret_input){j->t->secret_name}, on_secret, j),
                    kb_job_end);
    }
    kb_job_unref(j);
}

static void s_check(struct kb_job *j)
{
    kb_job_send(
        j, S_CHECK, "GetUser",
        kb_iam_get_user(j->client, &(struct kb_iam_get_user_input){j->t->user_name}, on_user, j),
        kb_job_end);
}

/* -- deletes ----------------------------------------------------------------------------------- */

static void s_delete_key_next(struct kb_job *j);

static void on_key_deleted(void *ctx, const struct kb_aws_error *err, const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, "delete-keys", "DeleteAccessKey", err, KB_RID(ok));
    if (err != NULL && !kb_rc_is_code(err, "NoSuchEntity")) {
        s_fail(j, "delete-keys", err);
    } else {
        kb_revoke(j)->key_next++;
        s_delete_key_next(j);
    }
    kb_job_unref(j);
}

static void s_delete_key_next(struct kb_job *j)
{
    struct kb_revoke *r = kb_revoke(j);
    char msg[64];

    if (r->key_next < r->nkeys) {
        kb_job_send(j, "delete-keys", "DeleteAccessKey",
                    kb_iam_delete_access_key(
                        j->client,
                        &(struct kb_iam_access_key_input){j->t->user_name, r->keys[r->key_next]},
                        on_key_deleted, j),
                    kb_job_end);
        return;
    }
    snprintf(msg, sizeof(msg), "deleted %zu key%s", r->nkeys, r->nkeys == 1 ? "" : "s");
    kb_job_event(j, "delete-keys", KB_ENGINE_DONE, msg, NULL);
    s_next(j);
}

static void on_keys(void *ctx, const struct kb_aws_error *err, const struct kb_iam_access_keys *ks)
{
    struct kb_job *j = ctx;
    struct kb_revoke *r = kb_revoke(j);

    kb_job_log_call(j, "delete-keys", "ListAccessKeys", err, KB_RID(ks));
    if (err != NULL && !kb_rc_is_code(err, "NoSuchEntity")) {
        s_fail(j, "delete-keys", err);
    } else {
        for (size_t i = 0; ks != NULL && i < ks->count && r->nkeys < KB_RC_MAX_KEYS; i++)
            snprintf(r->keys[r->nkeys++], sizeof(r->keys[0]), "%s", ks->keys[i].access_key_id);
        s_delete_key_next(j);
    }
    kb_job_unref(j);
}

static void s_delete_keys(struct kb_job *j)
{
    kb_job_send(
        j, "delete-keys", "ListAccessKeys",
        kb_iam_list_access_keys(
            j->client, &(struct kb_iam_list_access_keys_input){j->t->user_name, NULL}, on_keys, j),
        kb_job_end);
}

/* The callback of the single-call deletes: `gone` is the code that means "already done". */
static void s_deleted(struct kb_job *j, const char *step, const char *gone,
                      const struct kb_aws_error *err, const char *request_id, const char *what)
{
    if (err != NULL && !kb_rc_is_code(err, gone)) {
        s_fail(j, step, err);
        return;
    }
    kb_job_event(j, step, KB_ENGINE_DONE, err != NULL ? "already gone" : what, request_id);
    s_next(j);
}

static void on_policy_deleted(void *ctx, const struct kb_aws_error *err,
                              const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, "delete-user-policy", "DeleteUserPolicy", err, KB_RID(ok));
    s_deleted(j, "delete-user-policy", "NoSuchEntity", err,
              err != NULL ? err->request_id : ok->request_id, "deleted keybroker-s3");
    kb_job_unref(j);
}

static void s_delete_policy(struct kb_job *j)
{
    kb_job_send(j, "delete-user-policy", "DeleteUserPolicy",
                kb_iam_delete_user_policy(
                    j->client, &(struct kb_iam_user_policy_input){j->t->user_name, "keybroker-s3"},
                    on_policy_deleted, j),
                kb_job_end);
}

static void on_user_deleted(void *ctx, const struct kb_aws_error *err, const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, "delete-user", "DeleteUser", err, KB_RID(ok));
    s_deleted(j, "delete-user", "NoSuchEntity", err, err != NULL ? err->request_id : ok->request_id,
              "deleted");
    kb_job_unref(j);
}

static void s_delete_user(struct kb_job *j)
{
    kb_job_send(j, "delete-user", "DeleteUser",
                kb_iam_delete_user(j->client, &(struct kb_iam_user_input){j->t->user_name},
                                   on_user_deleted, j),
                kb_job_end);
}

static void on_secret_deleted(void *ctx, const struct kb_aws_error *err,
                              const struct kb_sm_deletion *d)
{
    struct kb_job *j = ctx;
    char what[128] = "deleted without recovery";
    struct tm tm;

    kb_job_log_call(j, "delete-secret", "DeleteSecret", err, KB_RID(d));
    if (d != NULL && !j->ropts->force_delete_secret && gmtime_r(&d->deletion_date, &tm) != NULL)
        strftime(what, sizeof(what), "scheduled for deletion on %Y-%m-%dT%H:%M:%SZ", &tm);
    s_deleted(j, "delete-secret", "ResourceNotFoundException", err, d->request_id, what);
    kb_job_unref(j);
}

static void s_delete_secret(struct kb_job *j)
{
    struct kb_sm_delete_secret_input in = {j->t->secret_name, 0, j->ropts->force_delete_secret};

    if (!j->ropts->force_delete_secret)
        in.recovery_window_days = j->cfg->aws.recovery_window_days;
    kb_job_send(j, "delete-secret", "DeleteSecret",
                kb_sm_delete_secret(j->client, &in, on_secret_deleted, j), kb_job_end);
}

static void on_bucket_deleted(void *ctx, const struct kb_aws_error *err,
                              const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, "delete-bucket", "DeleteBucket", err, KB_RID(ok));
    if (kb_rc_is_code(err, "BucketNotEmpty")) {
        kb_job_event(j, "delete-bucket", KB_ENGINE_SKIP, "bucket kept: not empty", err->request_id);
        snprintf(j->message, sizeof(j->message), "revoked; bucket %s kept: not empty",
                 j->t->bucket);
        s_next(j);
    } else {
        s_deleted(j, "delete-bucket", "NoSuchBucket", err,
                  err != NULL ? err->request_id : ok->request_id, "deleted");
    }
    kb_job_unref(j);
}

static void s_delete_bucket(struct kb_job *j)
{
    kb_job_send(j, "delete-bucket", "DeleteBucket",
                kb_s3_delete_bucket(j->client, &(struct kb_s3_bucket_input){j->t->bucket},
                                    on_bucket_deleted, j),
                kb_job_end);
}

/* -- the sequence ------------------------------------------------------------------------------ */

struct s_step {
    const char *name;
    void (*run)(struct kb_job *j);
    bool (*wanted)(struct kb_job *j); /* NULL: always */
    const char *skip;                 /* the skip message when not wanted */
};

static bool s_user(struct kb_job *j)
{
    return kb_revoke(j)->user_exists;
}

static bool s_secret(struct kb_job *j)
{
    return kb_revoke(j)->secret_live;
}

static bool s_bucket(struct kb_job *j)
{
    return j->ropts->delete_bucket && kb_revoke(j)->bucket_exists;
}

static const struct s_step s_steps[] = {
    {S_CHECK, s_check, NULL, NULL},
    {"delete-keys", s_delete_keys, s_user, "no IAM user"},
    {"delete-user-policy", s_delete_policy, s_user, "no IAM user"},
    {"delete-user", s_delete_user, s_user, "no IAM user"},
    {"delete-secret", s_delete_secret, s_secret, "no secret, or already scheduled for deletion"},
    {"delete-bucket", s_delete_bucket, s_bucket, NULL},
};
#define S_NSTEPS (sizeof(s_steps) / sizeof(s_steps[0]))

static void s_next(struct kb_job *j)
{
    struct kb_revoke *r = kb_revoke(j);

    for (; r->setting < S_NSTEPS; r->setting++) {
        const struct s_step *s = &s_steps[r->setting];

        if (s->wanted != NULL && !s->wanted(j)) {
            const char *why = s->skip;

            if (why == NULL)
                why = j->ropts->delete_bucket ? "no bucket" : "bucket kept (deletion not asked)";
            kb_job_event(j, s->name, KB_ENGINE_SKIP, why, NULL);
            continue;
        }
        r->setting++;
        kb_job_event(j, s->name, KB_ENGINE_START, NULL, NULL);
        s->run(j);
        return;
    }
    if (j->message[0] == '\0')
        snprintf(j->message, sizeof(j->message), "revoked%s",
                 j->ropts->delete_bucket ? "" : "; bucket kept");
    kb_job_forget_key(j);
    kb_job_end(j);
}

const struct kb_job_kind kb_job_kind_revoke = {
    .name = "revoke",
    .running = KB_TENANT_REVOKING,
    .done = KB_TENANT_REVOKED,
    .state_size = sizeof(struct kb_revoke),
    .start = s_next,
    .release = NULL,
};
