/*
 * provision.c - the provision kind (DESIGN.md section 7): builds the tenant's tags and policies,
 * starts the bucket chain (provision_bucket.c) and the user chain (provision_user.c) at once,
 * joins them, and when both succeeded writes the user's inline policy and runs the key step
 * (provision_key.c). The policy waits for the join because it names the bucket: it must never
 * be written while the bucket is refused (DESIGN.md section 7), and the user chain cannot wait
 * for the bucket chain itself (the bucket chain may be parked until the user chain has ended).
 * The kind's state is struct kb_prov (provision.h); release frees what it owns and destroys the
 * new key's secret if a failure left it there.
 */
#include "engine/provision.h"

#include <stdio.h>
#include <stdlib.h>

#include "aws/iam.h"
#include "common/err.h"
#include "config/policy.h"

static bool s_prepare(struct kb_job *j)
{
    struct kb_prov *p = kb_prov(j);
    char msg[256];
    int rc;

    rc = kb_rc_tenant_tags(j->t, &p->tags, &p->ntags);
    if (rc == 0)
        rc = kb_policy_tenant(j->t, j->partition, &p->user_policy, msg, sizeof(msg));
    else
        snprintf(msg, sizeof(msg), "%s", kb_strerror(rc));
    if (rc == 0 && j->cfg->aws.deny_insecure_transport) {
        rc = kb_policy_bucket(j->t->bucket, j->partition, &p->bucket_policy);
        if (rc != 0)
            snprintf(msg, sizeof(msg), "bucket policy: %s", kb_strerror(rc));
    }
    if (rc != 0)
        kb_job_fail(j, "policy", NULL, "cannot build the tenant's policies: %s", msg);
    return rc == 0;
}

static void s_start(struct kb_job *j)
{
    struct kb_prov *p = kb_prov(j);

    if (!s_prepare(j)) {
        kb_job_end(j);
        return;
    }
    p->bucket_running = p->user_running = true;
    kb_prov__bucket_start(j);
    kb_prov__user_start(j);
}

static void on_intent_removed(void *ctx, const struct kb_aws_error *err,
                              const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, "bucket-record", "UntagUser", err, KB_RID(ok));
    /* A record left behind adopts nothing but this tenant's own bucket, within a day; the next
     * run removes it. Not worth failing a tenant whose bucket and user are in place. */
    if (err != NULL)
        kb_job_event(j, "bucket-record", KB_ENGINE_SKIP,
                     "could not remove the creation record from the IAM user (the next run "
                     "removes it)",
                     err->request_id);
    else
        kb_job_event(j, "bucket-record", KB_ENGINE_DONE, "removed from the IAM user",
                     ok->request_id);
    kb_prov__key_start(j);
    kb_job_unref(j);
}

/* The bucket carries keybroker's tags now: the record of its creation goes. */
static void s_remove_intent(struct kb_job *j)
{
    static const char *const keys[] = {KB_RC_TAG_CREATING};
    struct kb_iam_untag_user_input in = {j->t->user_name, keys, 1};

    kb_job_event(j, "bucket-record", KB_ENGINE_START, NULL, NULL);
    kb_job_send(j, "bucket-record", "UntagUser",
                kb_iam_untag_user(j->client, &in, on_intent_removed, j), kb_job_end);
}

void kb_prov__chain_end(struct kb_job *j)
{
    struct kb_prov *p = kb_prov(j);

    if (p->bucket_parked && !p->user_running) {
        p->bucket_parked = false;
        if (!j->failed) {
            kb_prov__bucket_resume(j);
            return;
        }
        kb_job_event(j, "bucket", KB_ENGINE_SKIP, "not created: the IAM user step failed", NULL);
        p->bucket_running = false;
    }
    if (p->bucket_running || p->user_running)
        return;
    if (!j->failed)
        kb_prov__policy_start(j);
    else if (p->user_ok)
        kb_prov__policy_withhold(j); /* the bucket chain failed, or was refused */
    else
        kb_job_end(j);
}

void kb_prov__policy_end(struct kb_job *j)
{
    struct kb_prov *p = kb_prov(j);

    if (j->failed)
        kb_job_end(j);
    else if (p->intent_written || p->intent_seen)
        s_remove_intent(j);
    else
        kb_prov__key_start(j);
}

static void on_retagged(void *ctx, const struct kb_aws_error *err, const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;
    const struct kb_prov_retag *how = kb_prov(j)->retag;

    kb_job_log_call(j, how->step, how->operation, err, KB_RID(ok));
    if (err != NULL) {
        kb_job_fail_aws(j, how->step, err);
        how->unwind(j);
    } else {
        kb_job_event(j, how->step, KB_ENGINE_DONE, "repaired", ok->request_id);
        how->then(j);
    }
    kb_job_unref(j);
}

void kb_prov__retag(struct kb_job *j, const struct kb_prov_retag *how, const size_t *missing,
                    size_t n)
{
    struct kb_prov *p = kb_prov(j);
    struct kb_aws_tag tags[KB_CONFIG_MAX_USER_TAGS + 2];

    kb_job_event(j, how->step, KB_ENGINE_START, NULL, NULL);
    kb_job_drift(j, how->step, how->drift);
    for (size_t i = 0; i < n; i++)
        tags[i] = p->tags[missing[i]];
    p->retag = how;
    kb_job_send(j, how->step, how->operation, how->send(j, tags, n, on_retagged), how->unwind);
}

static void s_release(struct kb_job *j)
{
    struct kb_prov *p = kb_prov(j);

    kb_secret_destroy(p->new_secret);
    p->new_secret = NULL;
    kb_probe_cleanup(&p->probe);
    free(p->tags);
    free(p->user_policy);
    free(p->bucket_policy);
}

const struct kb_job_kind kb_job_kind_provision = {
    .name = "provision",
    .running = KB_TENANT_PROVISIONING,
    .done = KB_TENANT_READY,
    .failure_keeps_key = true,
    .state_size = sizeof(struct kb_prov),
    .start = s_start,
    .release = s_release,
};
