/*
 * provision_user.c - the user chain of a tenant (DESIGN.md section 7), and the user's inline
 * policy after the join: reads that compare, writes only where IAM differs.
 *
 *   GetUser -> NoSuchEntity: CreateUser (iam_path, permissions boundary, keybroker's tags at
 *                            creation)
 *           -> exists: its tags must carry keybroker:managed=true and keybroker:tenant=<tenant>,
 *                      else refused untouched; configured tags missing -> TagUser.
 * A path or permissions boundary that differs from the config is reported as drift but not
 * changed: moving a user or replacing its boundary is an operator's decision.
 *
 * The inline policy "keybroker-s3" names the tenant's bucket, so it is written only once the
 * bucket chain has succeeded, that is once the bucket is known to be the tenant's (provision.c
 * runs it after the join; the user chain cannot wait for the bucket chain, which may itself wait
 * for the user chain): a user this run created -> PutUserPolicy; an existing one ->
 * GetUserPolicy -> compared with kb_policy_tenant -> PutUserPolicy when missing or different
 * (drift, logged and repaired). When the bucket was refused (not the tenant's), the policy is
 * removed instead (DeleteUserPolicy), so that no key of this user is left with access to a bucket
 * that belongs to someone else; when the bucket chain failed otherwise, nothing is written or
 * removed (a timeout says nothing about whose the bucket is, and the policy in place serves a
 * key that may still be served: DEGRADED).
 *
 * This file never writes to an IAM user that does not carry keybroker's tags for its tenant.
 */
#include <stdio.h>
#include <string.h>

#include "engine/provision.h"
#include "common/err.h"
#include "aws/iam.h"
#include "common/log.h"
#include "config/policy.h"

#define S_USER        "user"
#define S_TAGS        "user-tags"
#define S_POLICY      "user-policy"
#define S_POLICY_NAME "keybroker-s3"

static void s_end(struct kb_job *j)
{
    kb_prov(j)->user_running = false;
    kb_prov__chain_end(j);
}

/* The user exists and is the tenant's: the chain succeeded. */
static void s_user_done(struct kb_job *j)
{
    kb_prov(j)->user_ok = true;
    s_end(j);
}

/* -- the inline policy, after the join ----------------------------------------------------------
 */

static void on_put_policy(void *ctx, const struct kb_aws_error *err, const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, S_POLICY, "PutUserPolicy", err, KB_RID(ok));
    if (err != NULL)
        kb_job_fail_aws(j, S_POLICY, err);
    else
        kb_job_event(j, S_POLICY, KB_ENGINE_DONE, kb_prov(j)->user_fresh ? "set" : "repaired",
                     ok->request_id);
    kb_prov__policy_end(j);
    kb_job_unref(j);
}

static void s_put_policy(struct kb_job *j)
{
    struct kb_iam_put_user_policy_input in = {j->t->user_name, S_POLICY_NAME,
                                              kb_prov(j)->user_policy};

    kb_job_send(j, S_POLICY, "PutUserPolicy",
                kb_iam_put_user_policy(j->client, &in, on_put_policy, j), kb_prov__policy_end);
}

static void on_get_policy(void *ctx, const struct kb_aws_error *err,
                          const struct kb_iam_user_policy *pol)
{
    struct kb_job *j = ctx;
    bool equal = false;

    kb_job_log_call(j, S_POLICY, "GetUserPolicy", err, KB_RID(pol));
    if (err != NULL && !kb_rc_is_code(err, "NoSuchEntity")) {
        kb_job_fail_aws(j, S_POLICY, err);
        kb_prov__policy_end(j);
    } else {
        if (pol != NULL &&
            kb_policy_equal(pol->policy_document, kb_prov(j)->user_policy, &equal) != 0)
            equal = false;
        if (equal) {
            kb_job_event(j, S_POLICY, KB_ENGINE_DONE, "unchanged", pol->request_id);
            kb_prov__policy_end(j);
        } else {
            kb_job_drift(j, S_POLICY,
                         err != NULL ? "the inline policy keybroker-s3 is missing"
                                     : "the inline policy keybroker-s3 differs from the "
                                       "configured access (edited out of band)");
            s_put_policy(j);
        }
    }
    kb_job_unref(j);
}

void kb_prov__policy_start(struct kb_job *j)
{
    struct kb_iam_user_policy_input in = {j->t->user_name, S_POLICY_NAME};

    kb_job_event(j, S_POLICY, KB_ENGINE_START, NULL, NULL);
    if (kb_prov(j)->user_fresh) {
        s_put_policy(j);
        return;
    }
    kb_job_send(j, S_POLICY, "GetUserPolicy",
                kb_iam_get_user_policy(j->client, &in, on_get_policy, j), kb_prov__policy_end);
}

static void on_delete_policy(void *ctx, const struct kb_aws_error *err,
                             const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, S_POLICY, "DeleteUserPolicy", err, KB_RID(ok));
    if (err == NULL) {
        j->access_removed = true;
        kb_log(KB_LOG_WARN, "policy-removed", "tenant", j->t->name, "user", j->t->user_name,
               "bucket", j->t->bucket, "request_id", ok->request_id, NULL);
        kb_job_event(j, S_POLICY, KB_ENGINE_DONE,
                     "removed: the bucket was refused, and the user's policy must not name it",
                     ok->request_id);
    } else if (kb_rc_is_code(err, "NoSuchEntity")) {
        j->access_removed = true;
        kb_job_event(j, S_POLICY, KB_ENGINE_SKIP, "not written: the bucket was refused",
                     err->request_id);
    } else {
        kb_job_fail_aws(j, S_POLICY, err);
    }
    kb_prov__policy_end(j);
    kb_job_unref(j);
}

void kb_prov__policy_withhold(struct kb_job *j)
{
    struct kb_iam_user_policy_input in = {j->t->user_name, S_POLICY_NAME};

    kb_job_event(j, S_POLICY, KB_ENGINE_START, NULL, NULL);
    if (!kb_prov(j)->bucket_refused) {
        kb_job_event(j, S_POLICY, KB_ENGINE_SKIP, "not written: the bucket step failed", NULL);
        kb_prov__policy_end(j);
        return;
    }
    if (kb_prov(j)->user_fresh) {
        /* Created by this run, without a policy: there is nothing to remove. */
        j->access_removed = true;
        kb_job_event(j, S_POLICY, KB_ENGINE_SKIP, "not written: the bucket was refused", NULL);
        kb_prov__policy_end(j);
        return;
    }
    kb_job_send(j, S_POLICY, "DeleteUserPolicy",
                kb_iam_delete_user_policy(j->client, &in, on_delete_policy, j),
                kb_prov__policy_end);
}

/* -- the user ---------------------------------------------------------------------------------- */

/* TagUser adds or overwrites only the tags it is given: the missing ones. */
static int s_send_tags(struct kb_job *j, const struct kb_aws_tag *tags, size_t n, kb_aws_done_cb cb)
{
    return kb_iam_tag_user(j->client, &(struct kb_iam_tag_user_input){j->t->user_name, tags, n}, cb,
                           j);
}

static const struct kb_prov_retag s_retag_user = {
    S_TAGS,      "TagUser",   "configured tags missing or changed on the IAM user",
    s_send_tags, s_user_done, s_end};

static void s_check_user(struct kb_job *j, const struct kb_iam_user *u)
{
    struct kb_prov *p = kb_prov(j);
    const struct kb_config_aws *aws = &j->cfg->aws;
    size_t missing[KB_CONFIG_MAX_USER_TAGS + 2], n;
    char what[1200];

    if (!kb_rc_tags_ours(u->tags, u->tag_count, j->t->name)) {
        kb_job_fail(j, S_USER, u->request_id,
                    "IAM user %s exists and is not managed by keybroker for tenant %s; refusing "
                    "to adopt it",
                    j->t->user_name, j->t->name);
        s_end(j);
        return;
    }
    if (u->path != NULL && strcmp(u->path, aws->iam_path) != 0) {
        snprintf(what, sizeof(what), "user path is %s, configured %s (not changed)", u->path,
                 aws->iam_path);
        kb_job_drift(j, S_USER, what);
    }
    if ((u->permissions_boundary_arn == NULL) != (aws->permissions_boundary == NULL) ||
        (u->permissions_boundary_arn != NULL &&
         strcmp(u->permissions_boundary_arn, aws->permissions_boundary) != 0)) {
        snprintf(what, sizeof(what), "permissions boundary is %s, configured %s (not changed)",
                 u->permissions_boundary_arn != NULL ? u->permissions_boundary_arn : "none",
                 aws->permissions_boundary != NULL ? aws->permissions_boundary : "none");
        kb_job_drift(j, S_USER, what);
    }
    kb_job_event(j, S_USER, KB_ENGINE_DONE, "exists, managed by keybroker", u->request_id);
    /* A bucket creation recorded here (provision_bucket.c): the join removes the record once the
     * bucket chain has succeeded. */
    if (kb_rc_has_intent(u->tags, u->tag_count))
        p->intent_seen = true;
    n = kb_rc_tags_missing(u->tags, u->tag_count, p->tags, p->ntags, missing);
    if (n > 0)
        kb_prov__retag(j, &s_retag_user, missing, n);
    else
        s_user_done(j);
}

static void s_get_user(struct kb_job *j);

static void on_create_user(void *ctx, const struct kb_aws_error *err, const struct kb_iam_user *u)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, S_USER, "CreateUser", err, KB_RID(u));
    if (err == NULL) {
        kb_prov(j)->user_fresh = true;
        kb_job_event(j, S_USER, KB_ENGINE_DONE, "created (tagged at creation)", u->request_id);
        s_user_done(j);
    } else if (kb_rc_is_code(err, "EntityAlreadyExists")) {
        /* Created meanwhile (a lost response, another broker): judge it by its tags. */
        s_get_user(j);
    } else {
        kb_job_fail_aws(j, S_USER, err);
        s_end(j);
    }
    kb_job_unref(j);
}

static void s_create_user(struct kb_job *j)
{
    struct kb_prov *p = kb_prov(j);
    const struct kb_config_aws *aws = &j->cfg->aws;
    struct kb_iam_create_user_input in = {j->t->user_name, aws->iam_path, aws->permissions_boundary,
                                          p->tags, p->ntags};

    kb_job_send(j, S_USER, "CreateUser", kb_iam_create_user(j->client, &in, on_create_user, j),
                s_end);
}

static void on_get_user(void *ctx, const struct kb_aws_error *err, const struct kb_iam_user *u)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, S_USER, "GetUser", err, KB_RID(u));
    if (err == NULL) {
        s_check_user(j, u);
    } else if (kb_rc_is_code(err, "NoSuchEntity")) {
        s_create_user(j);
    } else {
        kb_job_fail_aws(j, S_USER, err);
        s_end(j);
    }
    kb_job_unref(j);
}

static void s_get_user(struct kb_job *j)
{
    struct kb_iam_get_user_input in = {j->t->user_name};

    if (++kb_prov(j)->user_tries > 3) {
        kb_job_fail(j, S_USER, NULL,
                    "IAM user %s keeps appearing and disappearing (CreateUser says it exists, "
                    "GetUser says it does not); retry later",
                    j->t->user_name);
        s_end(j);
        return;
    }
    kb_job_send(j, S_USER, "GetUser", kb_iam_get_user(j->client, &in, on_get_user, j), s_end);
}

void kb_prov__user_start(struct kb_job *j)
{
    kb_job_event(j, S_USER, KB_ENGINE_START, NULL, NULL);
    s_get_user(j);
}
