/*
 * provision_bucket.c - the bucket chain of a tenant (DESIGN.md section 7), as reads that compare
 * and writes only where AWS differs.
 *
 *   HeadBucket -> 404: CreateBucket with keybroker's tags in CreateBucketConfiguration, so a crash
 *                      can never leave an untagged bucket of ours -> GetBucketTagging, because
 *                      some endpoints (moto 5.2) accept the field and drop the tags; where the
 *                      endpoint refuses tags there (kb_rc_create_tags_refused: pre-2025 S3,
 *                      LocalStack, MinIO, Ceph) or dropped them, the untagged creation below
 *              -> 200: GetBucketTagging -> keybroker:managed=true and keybroker:tenant=<tenant>,
 *                      else refused untouched (see "Adoption"); configured tags missing ->
 *                      PutBucketTagging
 *   then each setting: read -> compare -> put when different (drift is logged and repaired):
 *     public-access-block (all four on), encryption (SSE-S3, or SSE-KMS with aws.kms_key_id),
 *     ownership (BucketOwnerEnforced), bucket-policy (deny non-TLS, compared semantically;
 *     neither read nor written when aws.deny_insecure_transport is false).
 *
 * On a bucket this run created, every setting is written without reading it first: S3 has given
 * new buckets Block Public Access, SSE-S3 and BucketOwnerEnforced since 2023, but S3-compatible
 * stores, emulators and accounts of other partitions do not, and a security product sets what it
 * promises instead of assuming it. Writing costs one call per setting, as reading would, and
 * leaves nothing open until a later reconcile.
 *
 * The untagged creation, crash-safe. The record of the creation goes on the tenant's IAM user
 * (tag keybroker:creating-bucket = "<bucket> <unix time>") BEFORE the untagged CreateBucket, so
 * the chain first waits for the user chain to end (the user must exist and be ours). Then
 * CreateBucket without tags -> PutBucketTagging at once -> the settings; the join
 * (provision.c) removes the record. A crash between CreateBucket and PutBucketTagging leaves an
 * untagged bucket and the record; the next run finds the bucket without any tag, reads the
 * user's tags, and only when the user is this tenant's (keybroker's tags) and its record names
 * this bucket and is under a day old (KB_RC_INTENT_MAX_AGE) does it tag the bucket and go on
 * ("adopted" event: a creation this broker recorded). Someone else's bucket never carries such a
 * record on our user, so it is never adopted this way. The one window left: another principal of
 * the same account creating a bucket of exactly this name between our record and our
 * CreateBucket, which then answers BucketAlreadyOwnedByYou; that bucket is adopted like ours.
 *
 * Adoption. A bucket that exists without keybroker's tags is refused, untouched, unless the
 * operator asks for it explicitly (kbctl adopt TENANT: kb_engine_provision_with, adopt_bucket):
 * then, when it carries no keybroker tag of another tenant, it is tagged (its own tags kept)
 * and every setting is read and repaired, and the job emits "adopted".
 *
 * A refusal (the bucket is not the tenant's: untagged, another tenant's, another account's, or
 * invisible to this account) sets bucket_refused, so that the join removes the user's inline
 * policy rather than leave it naming this bucket.
 *
 * This file never writes to a bucket that does not carry keybroker's tags for its tenant, except
 * to tag it in the two cases above.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/provision.h"
#include "common/err.h"
#include "common/log.h"
#include "config/policy.h"
#include "aws/iam.h"
#include "aws/s3.h"

#define S_STEP "bucket"

struct s_setting {
    const char *step;
    void (*fresh)(struct kb_job *j); /* the bucket was just created */
    void (*read)(struct kb_job *j);  /* an existing bucket: read, compare, maybe write */
};

static void s_next(struct kb_job *j);

static void s_end(struct kb_job *j)
{
    kb_prov(j)->bucket_running = false;
    kb_prov__chain_end(j);
}

static struct kb_aws_client *s_client(struct kb_job *j)
{
    return j->client;
}

static const struct kb_s3_bucket_input *s_in(struct kb_job *j, struct kb_s3_bucket_input *in)
{
    in->bucket = j->t->bucket;
    return in;
}

/* -- writes ------------------------------------------------------------------------------------ */

static const char *s_step(struct kb_job *j);

static void on_write(void *ctx, const struct kb_aws_error *err, const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;
    struct kb_prov *p = kb_prov(j);
    const char *step = s_step(j);

    kb_job_log_call(j, step, ok != NULL ? ok->operation : "", err, KB_RID(ok));
    if (err != NULL) {
        kb_job_fail_aws(j, step, err);
        s_end(j);
    } else {
        kb_job_event(j, step, KB_ENGINE_DONE, p->bucket_fresh ? "set" : "repaired", ok->request_id);
        p->setting++;
        s_next(j);
    }
    kb_job_unref(j);
}

static void s_put_pab(struct kb_job *j)
{
    struct kb_s3_put_public_access_block_input in = {j->t->bucket, {true, true, true, true, NULL}};

    kb_job_send(j, s_step(j), "PutPublicAccessBlock",
                kb_s3_put_public_access_block(s_client(j), &in, on_write, j), s_end);
}

static void s_put_encryption(struct kb_job *j)
{
    const char *kms = j->cfg->aws.kms_key_id;
    struct kb_s3_put_bucket_encryption_input in = {
        j->t->bucket, kms != NULL ? KB_S3_SSE_KMS : KB_S3_SSE_S3, kms, kms != NULL};

    kb_job_send(j, s_step(j), "PutBucketEncryption",
                kb_s3_put_bucket_encryption(s_client(j), &in, on_write, j), s_end);
}

static void s_put_ownership(struct kb_job *j)
{
    struct kb_s3_put_bucket_ownership_controls_input in = {j->t->bucket, "BucketOwnerEnforced"};

    kb_job_send(j, s_step(j), "PutBucketOwnershipControls",
                kb_s3_put_bucket_ownership_controls(s_client(j), &in, on_write, j), s_end);
}

static void s_put_policy(struct kb_job *j)
{
    struct kb_s3_put_bucket_policy_input in = {j->t->bucket, kb_prov(j)->bucket_policy};

    kb_job_send(j, s_step(j), "PutBucketPolicy",
                kb_s3_put_bucket_policy(s_client(j), &in, on_write, j), s_end);
}

/* -- reads ------------------------------------------------------------------------------------- */

/* After a read: the setting is as configured (next one), or drift to repair with put. A read that
 * failed for another reason than "not set" (missing_code) fails the chain. */
static void s_judge(struct kb_job *j, const struct kb_aws_error *err, const char *request_id,
                    const char *missing_code, bool ok, const char *drift,
                    void (*put)(struct kb_job *))
{
    const char *step = s_step(j);

    if (err != NULL && !kb_rc_is_code(err, missing_code)) {
        kb_job_fail_aws(j, step, err);
        s_end(j);
        return;
    }
    if (err == NULL && ok) {
        kb_job_event(j, step, KB_ENGINE_DONE, "unchanged", request_id);
        kb_prov(j)->setting++;
        s_next(j);
        return;
    }
    kb_job_drift(j, step, err != NULL ? err->code : drift);
    put(j);
}

static void on_pab(void *ctx, const struct kb_aws_error *err,
                   const struct kb_s3_public_access_block *pab)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, s_step(j), "GetPublicAccessBlock", err, KB_RID(pab));
    s_judge(j, err, KB_RID(pab), "NoSuchPublicAccessBlockConfiguration", kb_rc_pab_ok(pab),
            "Block Public Access is not fully on", s_put_pab);
    kb_job_unref(j);
}

static void s_read_pab(struct kb_job *j)
{
    struct kb_s3_bucket_input in;

    kb_job_send(j, s_step(j), "GetPublicAccessBlock",
                kb_s3_get_public_access_block(s_client(j), s_in(j, &in), on_pab, j), s_end);
}

static void on_encryption(void *ctx, const struct kb_aws_error *err,
                          const struct kb_s3_bucket_encryption *enc)
{
    struct kb_job *j = ctx;
    char drift[256] = "";

    kb_job_log_call(j, s_step(j), "GetBucketEncryption", err, KB_RID(enc));
    if (enc != NULL)
        snprintf(drift, sizeof(drift), "default encryption is %s%s%s, configured %s",
                 enc->sse_algorithm, enc->kms_key_id != NULL ? " with key " : "",
                 enc->kms_key_id != NULL ? enc->kms_key_id : "",
                 j->cfg->aws.kms_key_id != NULL ? "aws:kms with aws.kms_key_id" : "AES256");
    s_judge(j, err, KB_RID(enc), "ServerSideEncryptionConfigurationNotFoundError",
            kb_rc_encryption_ok(enc, j->cfg->aws.kms_key_id), drift, s_put_encryption);
    kb_job_unref(j);
}

static void s_read_encryption(struct kb_job *j)
{
    struct kb_s3_bucket_input in;

    kb_job_send(j, s_step(j), "GetBucketEncryption",
                kb_s3_get_bucket_encryption(s_client(j), s_in(j, &in), on_encryption, j), s_end);
}

static void on_ownership(void *ctx, const struct kb_aws_error *err,
                         const struct kb_s3_ownership_controls *oc)
{
    struct kb_job *j = ctx;
    char drift[160] = "";

    kb_job_log_call(j, s_step(j), "GetBucketOwnershipControls", err, KB_RID(oc));
    if (oc != NULL)
        snprintf(drift, sizeof(drift), "object ownership is %s, configured BucketOwnerEnforced",
                 oc->object_ownership);
    s_judge(j, err, KB_RID(oc), "OwnershipControlsNotFoundError",
            oc != NULL && kb_rc_ownership_ok(oc->object_ownership), drift, s_put_ownership);
    kb_job_unref(j);
}

static void s_read_ownership(struct kb_job *j)
{
    struct kb_s3_bucket_input in;

    kb_job_send(j, s_step(j), "GetBucketOwnershipControls",
                kb_s3_get_bucket_ownership_controls(s_client(j), s_in(j, &in), on_ownership, j),
                s_end);
}

static void on_policy(void *ctx, const struct kb_aws_error *err,
                      const struct kb_s3_bucket_policy *pol)
{
    struct kb_job *j = ctx;
    bool equal = false;

    kb_job_log_call(j, s_step(j), "GetBucketPolicy", err, KB_RID(pol));
    /* A document that does not even parse is drift like any other difference. */
    if (pol != NULL && kb_policy_equal(pol->policy, kb_prov(j)->bucket_policy, &equal) != 0)
        equal = false;
    s_judge(j, err, KB_RID(pol), "NoSuchBucketPolicy", equal,
            "the bucket policy differs from keybroker's (edited out of band)", s_put_policy);
    kb_job_unref(j);
}

static void s_read_policy(struct kb_job *j)
{
    struct kb_s3_bucket_input in;

    kb_job_send(j, s_step(j), "GetBucketPolicy",
                kb_s3_get_bucket_policy(s_client(j), s_in(j, &in), on_policy, j), s_end);
}

/* -- the settings, in order ---------------------------------------------------------------------
 */

static const struct s_setting s_settings[] = {
    {"public-access-block", s_put_pab, s_read_pab},
    {"encryption", s_put_encryption, s_read_encryption},
    {"ownership", s_put_ownership, s_read_ownership},
    {"bucket-policy", s_put_policy, s_read_policy},
};
#define S_NSETTINGS (sizeof(s_settings) / sizeof(s_settings[0]))

static const char *s_step(struct kb_job *j)
{
    struct kb_prov *p = kb_prov(j);
    return p->setting < S_NSETTINGS ? s_settings[p->setting].step : "bucket-tags";
}

static void s_next(struct kb_job *j)
{
    struct kb_prov *p = kb_prov(j);
    const struct s_setting *s;

    if (p->setting >= S_NSETTINGS) {
        s_end(j);
        return;
    }
    s = &s_settings[p->setting];
    kb_job_event(j, s->step, KB_ENGINE_START, NULL, NULL);
    if (s->fresh == s_put_policy && p->bucket_policy == NULL) {
        /* aws.deny_insecure_transport is false: the bucket policy is not keybroker's. */
        kb_job_event(j, s->step, KB_ENGINE_SKIP,
                     "not managed (aws.deny_insecure_transport is false)", NULL);
        p->setting++;
        s_next(j);
        return;
    }
    if (p->bucket_fresh)
        s->fresh(j);
    else
        s->read(j);
}

/* -- the bucket itself ------------------------------------------------------------------------- */

static void on_tags_put(void *ctx, const struct kb_aws_error *err, const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, "bucket-tags", "PutBucketTagging", err, KB_RID(ok));
    if (err != NULL) {
        kb_job_fail_aws(j, "bucket-tags", err);
        s_end(j);
    } else {
        kb_job_event(j, "bucket-tags", KB_ENGINE_DONE,
                     kb_prov(j)->bucket_fresh ? "set" : "repaired", ok->request_id);
        s_next(j);
    }
    kb_job_unref(j);
}

/* The bucket's tags with ours (and the configured ones) set over them, in one PutBucketTagging
 * (it replaces the whole set). drift: the drift line to log after the step's start, or NULL. */
static void s_put_tags(struct kb_job *j, const struct kb_aws_tag *have, size_t nhave,
                       const char *drift)
{
    struct kb_prov *p = kb_prov(j);
    struct kb_aws_tag *all = calloc(nhave + p->ntags, sizeof(*all));
    size_t n = 0;
    int rc;

    kb_job_event(j, "bucket-tags", KB_ENGINE_START, NULL, NULL);
    if (drift != NULL)
        kb_job_drift(j, "bucket-tags", drift);
    if (all == NULL) {
        kb_job_fail(j, "bucket-tags", NULL, "out of memory");
        s_end(j);
        return;
    }
    for (size_t i = 0; i < nhave; i++) {
        size_t w;

        for (w = 0; w < p->ntags && strcmp(p->tags[w].key, have[i].key) != 0; w++)
            ;
        if (w == p->ntags)
            all[n++] = have[i];
    }
    memcpy(all + n, p->tags, p->ntags * sizeof(*all));
    rc = kb_s3_put_bucket_tagging(
        s_client(j), &(struct kb_s3_put_bucket_tagging_input){j->t->bucket, all, n + p->ntags},
        on_tags_put, j);
    free(all);
    kb_job_send(j, "bucket-tags", "PutBucketTagging", rc, s_end);
}

static void s_refuse(struct kb_job *j, const char *request_id)
{
    kb_prov(j)->bucket_refused = true;
    kb_job_fail(j, S_STEP, request_id,
                "bucket %s exists and is not managed by keybroker for tenant %s; refusing to "
                "adopt it (if it is yours, `kbctl adopt %s` takes it under management)",
                j->t->bucket, j->t->name, j->t->name);
    s_end(j);
}

static void on_intent_read(void *ctx, const struct kb_aws_error *err,
                           const struct kb_iam_tags *tags)
{
    struct kb_job *j = ctx;
    struct kb_prov *p = kb_prov(j);

    kb_job_log_call(j, S_STEP, "ListUserTags", err, KB_RID(tags));
    if (err != NULL && !kb_rc_is_code(err, "NoSuchEntity")) {
        kb_job_fail_aws(j, S_STEP, err);
        s_end(j);
    } else if (err != NULL || !kb_rc_tags_ours(tags->tags, tags->tag_count, j->t->name) ||
               !kb_rc_intent_ok(tags->tags, tags->tag_count, j->t->bucket, time(NULL))) {
        s_refuse(j, err != NULL ? err->request_id : tags->request_id);
    } else {
        p->intent_seen = true;
        kb_job_adopted(j,
                       "an untagged bucket whose creation this broker recorded on the tenant's IAM "
                       "user (a run stopped between CreateBucket and PutBucketTagging)",
                       tags->request_id);
        kb_job_event(j, S_STEP, KB_ENGINE_DONE, "exists: created by an earlier run, tagging it",
                     tags->request_id);
        s_put_tags(j, NULL, 0, NULL);
    }
    kb_job_unref(j);
}

/* A bucket without any tag: ours only when the user records its creation. */
static void s_read_intent(struct kb_job *j)
{
    struct kb_iam_list_user_tags_input in = {j->t->user_name, NULL};

    kb_job_send(j, S_STEP, "ListUserTags", kb_iam_list_user_tags(j->client, &in, on_intent_read, j),
                s_end);
}

static void on_tags(void *ctx, const struct kb_aws_error *err, const struct kb_s3_tags *tags)
{
    struct kb_job *j = ctx;
    struct kb_prov *p = kb_prov(j);
    size_t missing[KB_CONFIG_MAX_USER_TAGS + 2];

    kb_job_log_call(j, S_STEP, "GetBucketTagging", err, KB_RID(tags));
    if (err != NULL) {
        kb_job_fail_aws(j, S_STEP, err);
        s_end(j);
    } else if (kb_rc_tags_ours(tags->tags, tags->tag_count, j->t->name)) {
        kb_job_event(j, S_STEP, KB_ENGINE_DONE, "exists, managed by keybroker", tags->request_id);
        if (kb_rc_tags_missing(tags->tags, tags->tag_count, p->tags, p->ntags, missing) > 0)
            s_put_tags(j, tags->tags, tags->tag_count,
                       "configured tags missing or changed on the bucket");
        else
            s_next(j);
    } else if (kb_rc_tags_keybroker(tags->tags, tags->tag_count)) {
        /* keybroker's tags for another tenant (or half of them): never ours, not even on
         * request. */
        p->bucket_refused = true;
        kb_job_fail(j, S_STEP, tags->request_id,
                    "bucket %s carries keybroker tags of another tenant; refusing to adopt it",
                    j->t->bucket);
        s_end(j);
    } else if (j->popts->adopt_bucket) {
        kb_job_adopted(j, "an existing bucket, on the operator's request (kbctl adopt)",
                       tags->request_id);
        kb_job_event(j, S_STEP, KB_ENGINE_DONE, "exists: adopted on request, tagging it",
                     tags->request_id);
        s_put_tags(j, tags->tags, tags->tag_count, NULL);
    } else if (tags->tag_count == 0) {
        s_read_intent(j);
    } else {
        s_refuse(j, tags->request_id);
    }
    kb_job_unref(j);
}

static void s_read_tags(struct kb_job *j)
{
    struct kb_s3_bucket_input in;

    kb_job_send(j, S_STEP, "GetBucketTagging",
                kb_s3_get_bucket_tagging(s_client(j), s_in(j, &in), on_tags, j), s_end);
}

/* A failed CreateBucket, tagged or not: created meanwhile (a lost response, another broker:
 * judged by its tags), another account's, or an error. */
static void s_create_failed(struct kb_job *j, const struct kb_aws_error *err)
{
    if (kb_rc_is_code(err, "BucketAlreadyOwnedByYou")) {
        s_read_tags(j);
        return;
    }
    if (kb_rc_is_code(err, "BucketAlreadyExists")) {
        kb_prov(j)->bucket_refused = true;
        kb_job_fail(j, S_STEP, err->request_id,
                    "bucket %s belongs to another AWS account; refusing to adopt it (choose "
                    "another bucket name)",
                    j->t->bucket);
    } else {
        kb_job_fail_aws(j, S_STEP, err);
    }
    s_end(j);
}

static void on_create_untagged(void *ctx, const struct kb_aws_error *err,
                               const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;
    struct kb_prov *p = kb_prov(j);

    kb_job_log_call(j, S_STEP, "CreateBucket", err, KB_RID(ok));
    if (err == NULL) {
        p->bucket_fresh = true;
        kb_job_event(j, S_STEP, KB_ENGINE_DONE,
                     "created without tags (the endpoint refuses them in CreateBucket); tagging "
                     "it now",
                     ok->request_id);
        s_put_tags(j, NULL, 0, NULL);
    } else {
        s_create_failed(j, err);
    }
    kb_job_unref(j);
}

static void on_intent_written(void *ctx, const struct kb_aws_error *err,
                              const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;
    struct kb_s3_create_bucket_input in = {.bucket = j->t->bucket, .region = j->region};

    kb_job_log_call(j, S_STEP, "TagUser", err, KB_RID(ok));
    if (err != NULL) {
        kb_job_fail_aws(j, S_STEP, err);
        s_end(j);
    } else {
        kb_prov(j)->intent_written = true;
        kb_job_send(j, S_STEP, "CreateBucket",
                    kb_s3_create_bucket(s_client(j), &in, on_create_untagged, j), s_end);
    }
    kb_job_unref(j);
}

void kb_prov__bucket_resume(struct kb_job *j)
{
    struct kb_prov *p = kb_prov(j);
    struct kb_aws_tag record;

    kb_rc_intent_value(j->t->bucket, time(NULL), p->intent);
    record = (struct kb_aws_tag){KB_RC_TAG_CREATING, p->intent};
    kb_job_send(j, S_STEP, "TagUser",
                kb_iam_tag_user(j->client,
                                &(struct kb_iam_tag_user_input){j->t->user_name, &record, 1},
                                on_intent_written, j),
                s_end);
}

/* The endpoint refuses tags in CreateBucket: record the creation on the IAM user first, which
 * needs the user chain to have ended. */
static void s_create_untagged(struct kb_job *j)
{
    struct kb_prov *p = kb_prov(j);

    kb_job_event(j, S_STEP, KB_ENGINE_START,
                 "the endpoint refuses tags in CreateBucket: creating it untagged once the IAM "
                 "user records the creation",
                 NULL);
    p->bucket_parked = true;
    if (!p->user_running)
        kb_prov__chain_end(j);
}

/* Some endpoints (moto 5.2) answer a tagged CreateBucket 200 and drop the tags: read them back
 * once. Missing -> the endpoint is treated as one that refuses them (later buckets take the
 * recorded, untagged path) and this one is tagged now. */
static void on_created_tags(void *ctx, const struct kb_aws_error *err,
                            const struct kb_s3_tags *tags)
{
    struct kb_job *j = ctx;
    struct kb_prov *p = kb_prov(j);
    size_t missing[KB_CONFIG_MAX_USER_TAGS + 2];

    kb_job_log_call(j, S_STEP, "GetBucketTagging", err, KB_RID(tags));
    if (err != NULL) {
        kb_job_fail_aws(j, S_STEP, err);
        s_end(j);
    } else if (kb_rc_tags_missing(tags->tags, tags->tag_count, p->tags, p->ntags, missing) == 0) {
        kb_job_event(j, S_STEP, KB_ENGINE_DONE, "created (tagged at creation)",
                     p->create_request_id);
        s_next(j);
    } else {
        kb_log(KB_LOG_WARN,
               "CreateBucket dropped the tags; creating buckets untagged and tagging "
               "them",
               "tenant", j->t->name, "request_id", tags->request_id, NULL);
        j->quirks->create_bucket_no_tags = true;
        kb_job_event(j, S_STEP, KB_ENGINE_DONE,
                     "created; the endpoint dropped the tags given to CreateBucket, tagging it now",
                     p->create_request_id);
        s_put_tags(j, tags->tags, tags->tag_count, NULL);
    }
    kb_job_unref(j);
}

static void s_verify_tags(struct kb_job *j)
{
    struct kb_s3_bucket_input in;

    kb_job_send(j, S_STEP, "GetBucketTagging",
                kb_s3_get_bucket_tagging(s_client(j), s_in(j, &in), on_created_tags, j), s_end);
}

static void on_create(void *ctx, const struct kb_aws_error *err, const struct kb_aws_done *ok)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, S_STEP, "CreateBucket", err, KB_RID(ok));
    if (err == NULL) {
        kb_prov(j)->bucket_fresh = true;
        kb_strf(kb_prov(j)->create_request_id, sizeof(kb_prov(j)->create_request_id), "%s",
                ok->request_id);
        s_verify_tags(j);
    } else if (kb_rc_create_tags_refused(err)) {
        kb_log(KB_LOG_WARN, "CreateBucket refused tags; creating buckets untagged and tagging them",
               "tenant", j->t->name, "code", err->code, "request_id", err->request_id, NULL);
        j->quirks->create_bucket_no_tags = true;
        s_create_untagged(j);
    } else {
        s_create_failed(j, err);
    }
    kb_job_unref(j);
}

static void s_create(struct kb_job *j)
{
    struct kb_prov *p = kb_prov(j);
    struct kb_s3_create_bucket_input in = {
        .bucket = j->t->bucket, .region = j->region, .tags = p->tags, .tag_count = p->ntags};

    if (j->quirks->create_bucket_no_tags) {
        s_create_untagged(j);
        return;
    }
    kb_job_send(j, S_STEP, "CreateBucket", kb_s3_create_bucket(s_client(j), &in, on_create, j),
                s_end);
}

static void on_head(void *ctx, const struct kb_aws_error *err, const struct kb_s3_bucket_head *h)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, S_STEP, "HeadBucket", err, KB_RID(h));
    if (err != NULL && err->err == KB_EAWS && err->status == 403) {
        kb_prov(j)->bucket_refused = true;
        kb_job_fail(j, S_STEP, err->request_id,
                    "bucket %s exists but this account may not see it (HeadBucket: 403); it is "
                    "not managed by keybroker for tenant %s; refusing to adopt it",
                    j->t->bucket, j->t->name);
        s_end(j);
    } else if (err != NULL) {
        kb_job_fail_aws(j, S_STEP, err);
        s_end(j);
    } else if (!h->exists) {
        s_create(j);
    } else {
        s_read_tags(j);
    }
    kb_job_unref(j);
}

void kb_prov__bucket_start(struct kb_job *j)
{
    struct kb_s3_head_bucket_input in = {.bucket = j->t->bucket};

    kb_job_event(j, S_STEP, KB_ENGINE_START, NULL, NULL);
    kb_job_send(j, S_STEP, "HeadBucket", kb_s3_head_bucket(s_client(j), &in, on_head, j), s_end);
}
