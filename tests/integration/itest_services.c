/*
 * itest_services.c - drives every typed AWS call (iam.h, s3.h, secretsmanager.h, sts.h) against
 * fakeaws for tests/integration/test_services.py.
 *
 * Usage: itest_services SCENARIO TENANT BUCKET, with the AWS environment (AWS_ENDPOINT_URL,
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_CA_BUNDLE ...) set by the test.
 * Scenarios (each a fixed list of steps, one call per step, run one after the other):
 *   tenant    provision TENANT: the bucket chain, the user chain, a new access key stored in a new
 *             secret, the readiness probe signed with the new key, then read everything back
 *   rotate    rotate TENANT's key with staging labels (run after tenant, same fakeaws)
 *   cleanup   deprovision TENANT (run after tenant or rotate)
 *   errors    AWS errors surfaced with their codes, and the calls the others do not make
 *   read      GetSecretValue of TENANT's secret (AWSCURRENT), stored beforehand by the test
 *   anchors   the object calls on BUCKET, which the test made with Object Lock: anchors put with
 *             COMPLIANCE and GOVERNANCE retention and without, read back by version id and as the
 *             current version, a read over its body limit, and every version listed 2 a page
 * Prints one JSON object per finished step ("step", "op", "ok", then the typed result or the
 * error), then {"done":true,...}. Never prints a secret: the key material lives only in struct
 * kb_secret, and the value read back is compared in memory ("value_matches"). Exit status 0 when
 * the scenario ran (whatever the calls answered), 2 on a usage or setup error.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "itest_services_out.h"
#include "common/uuid.h"
#include "common/wipealloc.h"

/* -- helpers of the steps ---------------------------------------------------------------------- */

/* The secret value of the newest key, in guarded memory. */
static int make_value(struct run *r)
{
    kb_secret_destroy(r->value);
    r->value = NULL;
    if (r->key_secret == NULL)
        return 1;
    return kb_sm_key_secret_new(r->key_id, r->key_secret, r->bucket, r->region, &r->value);
}

static const struct kb_credentials *probe_creds(struct run *r)
{
    memset(&r->probe, 0, sizeof(r->probe));
    copy(r->probe.access_key_id, sizeof(r->probe.access_key_id), r->key_id);
    r->probe.secret_access_key = r->key_secret;
    copy(r->probe.source, sizeof(r->probe.source), "config");
    return &r->probe;
}

static const struct kb_aws_tag *tenant_tags(struct run *r)
{
    static struct kb_aws_tag tags[2];

    tags[0] = (struct kb_aws_tag){"keybroker:tenant", r->tenant};
    tags[1] = (struct kb_aws_tag){"keybroker:managed", "true"};
    return tags;
}

#define STEP(name) static int name(struct run *r)
#define LABEL(s)   (r->label = (s))
#define BUCKET_IN  (&(struct kb_s3_bucket_input){r->bucket})

/* -- the bucket chain -------------------------------------------------------------------------- */

STEP(create_bucket)
{
    LABEL("CreateBucket");
    return kb_s3_create_bucket(r->client,
                               &(struct kb_s3_create_bucket_input){
                                   .bucket = r->bucket, .object_ownership = "BucketOwnerEnforced"},
                               on_done, r);
}

STEP(put_pab)
{
    LABEL("PutPublicAccessBlock");
    return kb_s3_put_public_access_block(
        r->client, &(struct kb_s3_put_public_access_block_input){r->bucket, {1, 1, 1, 1, NULL}},
        on_done, r);
}

STEP(put_encryption)
{
    LABEL("PutBucketEncryption");
    return kb_s3_put_bucket_encryption(
        r->client, &(struct kb_s3_put_bucket_encryption_input){.bucket = r->bucket}, on_done, r);
}

STEP(put_ownership)
{
    LABEL("PutBucketOwnershipControls");
    return kb_s3_put_bucket_ownership_controls(
        r->client, &(struct kb_s3_put_bucket_ownership_controls_input){r->bucket, NULL}, on_done,
        r);
}

STEP(put_bucket_policy)
{
    LABEL("PutBucketPolicy");
    snprintf(r->bucket_policy, sizeof(r->bucket_policy),
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"DenyInsecureTransport\","
             "\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"s3:*\","
             "\"Resource\":[\"arn:aws:s3:::%s\",\"arn:aws:s3:::%s/*\"],"
             "\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"false\"}}}]}",
             r->bucket, r->bucket);
    return kb_s3_put_bucket_policy(
        r->client, &(struct kb_s3_put_bucket_policy_input){r->bucket, r->bucket_policy}, on_done,
        r);
}

STEP(put_bucket_tags)
{
    LABEL("PutBucketTagging");
    return kb_s3_put_bucket_tagging(
        r->client, &(struct kb_s3_put_bucket_tagging_input){r->bucket, tenant_tags(r), 2}, on_done,
        r);
}

/* -- the user chain ---------------------------------------------------------------------------- */

STEP(create_user)
{
    LABEL("CreateUser");
    return kb_iam_create_user(r->client,
                              &(struct kb_iam_create_user_input){
                                  r->user, "/keybroker/",
                                  "arn:aws:iam::aws:policy/AmazonS3FullAccess", tenant_tags(r), 2},
                              on_user, r);
}

STEP(put_user_policy)
{
    LABEL("PutUserPolicy");
    snprintf(r->user_policy, sizeof(r->user_policy),
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"Bucket\","
             "\"Effect\":\"Allow\",\"Action\":[\"s3:ListBucket\",\"s3:GetBucketLocation\"],"
             "\"Resource\":\"arn:aws:s3:::%s\"},{\"Sid\":\"Objects\",\"Effect\":\"Allow\","
             "\"Action\":[\"s3:GetObject\",\"s3:PutObject\",\"s3:DeleteObject\"],"
             "\"Resource\":\"arn:aws:s3:::%s/*\"}]}",
             r->bucket, r->bucket);
    return kb_iam_put_user_policy(
        r->client, &(struct kb_iam_put_user_policy_input){r->user, "keybroker-s3", r->user_policy},
        on_done, r);
}

STEP(create_access_key)
{
    LABEL("CreateAccessKey");
    return kb_iam_create_access_key(r->client, &(struct kb_iam_user_input){r->user}, on_access_key,
                                    r);
}

STEP(create_secret)
{
    char token[KB_UUID_STR_SIZE];
    int rc;

    LABEL("CreateSecret");
    rc = make_value(r);
    if (rc != 0)
        return rc > 0 ? KB_EINVAL : rc;
    /* the version id the engine gives this key (uuid.h) */
    rc = kb_uuid_key_version(r->tenant, r->key_id, token);
    if (rc != 0)
        return rc;
    return kb_sm_create_secret(r->client,
                               &(struct kb_sm_create_secret_input){r->secret_name, token,
                                                                   "keybroker access key", NULL,
                                                                   r->value, tenant_tags(r), 2},
                               on_ref, r);
}

STEP(probe_sts)
{
    LABEL("probe-GetCallerIdentity");
    if (r->key_secret == NULL)
        return 1;
    return kb_sts_get_caller_identity(
        r->client, &(struct kb_sts_get_caller_identity_input){probe_creds(r), 1}, on_identity, r);
}

STEP(probe_head)
{
    LABEL("probe-HeadBucket");
    if (r->key_secret == NULL)
        return 1;
    return kb_s3_head_bucket(
        r->client, &(struct kb_s3_head_bucket_input){r->bucket, probe_creds(r), 1}, on_head, r);
}

STEP(describe_secret)
{
    LABEL("DescribeSecret");
    return kb_sm_describe_secret(r->client, &(struct kb_sm_secret_input){r->secret_name},
                                 on_describe, r);
}

/* -- reading back ------------------------------------------------------------------------------ */

STEP(get_user)
{
    LABEL("GetUser");
    return kb_iam_get_user(r->client, &(struct kb_iam_get_user_input){r->user}, on_user, r);
}

STEP(tag_user)
{
    static const struct kb_aws_tag tag = {"keybroker:owner", "itest"};

    LABEL("TagUser");
    return kb_iam_tag_user(r->client, &(struct kb_iam_tag_user_input){r->user, &tag, 1}, on_done,
                           r);
}

STEP(list_user_tags)
{
    LABEL("ListUserTags");
    return kb_iam_list_user_tags(r->client, &(struct kb_iam_list_user_tags_input){r->user, NULL},
                                 on_user_tags, r);
}

STEP(get_user_policy)
{
    LABEL("GetUserPolicy");
    return kb_iam_get_user_policy(
        r->client, &(struct kb_iam_user_policy_input){r->user, "keybroker-s3"}, on_user_policy, r);
}

STEP(list_access_keys)
{
    LABEL("ListAccessKeys");
    return kb_iam_list_access_keys(
        r->client, &(struct kb_iam_list_access_keys_input){r->user, NULL}, on_access_keys, r);
}

STEP(get_pab)
{
    LABEL("GetPublicAccessBlock");
    return kb_s3_get_public_access_block(r->client, BUCKET_IN, on_pab, r);
}

STEP(get_bucket_policy)
{
    LABEL("GetBucketPolicy");
    return kb_s3_get_bucket_policy(r->client, BUCKET_IN, on_bucket_policy, r);
}

STEP(get_bucket_tags)
{
    LABEL("GetBucketTagging");
    return kb_s3_get_bucket_tagging(r->client, BUCKET_IN, on_bucket_tags, r);
}

STEP(head_bucket)
{
    LABEL("HeadBucket");
    return kb_s3_head_bucket(r->client, &(struct kb_s3_head_bucket_input){r->bucket, NULL, 0},
                             on_head, r);
}

STEP(get_value_current)
{
    LABEL("GetSecretValue-AWSCURRENT");
    return kb_sm_get_secret_value(
        r->client, &(struct kb_sm_get_secret_value_input){r->secret_name, NULL, "AWSCURRENT"},
        on_value, r);
}

STEP(tag_secret)
{
    static const struct kb_aws_tag tag = {"keybroker:owner", "itest"};

    LABEL("TagResource");
    return kb_sm_tag_resource(
        r->client, &(struct kb_sm_tag_resource_input){r->secret_name, &tag, 1}, on_done, r);
}

static const step_fn s_tenant[] = {
    create_bucket,   put_pab,         put_encryption,    put_ownership,     put_bucket_policy,
    put_bucket_tags, create_user,     put_user_policy,   create_access_key, create_secret,
    probe_sts,       probe_head,      describe_secret,   get_user,          tag_user,
    list_user_tags,  get_user_policy, list_access_keys,  get_pab,           get_bucket_policy,
    get_bucket_tags, head_bucket,     get_value_current, tag_secret,
};

static const step_fn s_read[] = {get_value_current};

/* -- rotation ---------------------------------------------------------------------------------- */

STEP(put_value_pending)
{
    static const char *const pending[] = {"AWSPENDING"};
    char token[KB_UUID_STR_SIZE];
    int rc;

    LABEL("PutSecretValue-AWSPENDING");
    rc = make_value(r);
    if (rc != 0)
        return rc > 0 ? KB_EINVAL : rc;
    /* the version id the engine gives this key (uuid.h) */
    rc = kb_uuid_key_version(r->tenant, r->key_id, token);
    if (rc != 0)
        return rc;
    return kb_sm_put_secret_value(
        r->client,
        &(struct kb_sm_put_secret_value_input){r->secret_name, token, r->value, pending, 1}, on_ref,
        r);
}

STEP(get_value_pending)
{
    LABEL("GetSecretValue-AWSPENDING");
    return kb_sm_get_secret_value(
        r->client, &(struct kb_sm_get_secret_value_input){r->secret_name, NULL, "AWSPENDING"},
        on_value, r);
}

STEP(promote)
{
    LABEL("UpdateSecretVersionStage");
    return kb_sm_update_secret_version_stage(
        r->client,
        &(struct kb_sm_update_secret_version_stage_input){r->secret_name, "AWSCURRENT",
                                                          r->version_new, r->version_old},
        on_ref, r);
}

STEP(clear_pending)
{
    LABEL("UpdateSecretVersionStage-AWSPENDING");
    return kb_sm_update_secret_version_stage(
        r->client,
        &(struct kb_sm_update_secret_version_stage_input){r->secret_name, "AWSPENDING", NULL,
                                                          r->version_new},
        on_ref, r);
}

STEP(list_versions)
{
    LABEL("ListSecretVersionIds");
    return kb_sm_list_secret_version_ids(
        r->client, &(struct kb_sm_list_versions_input){r->secret_name, true, 0, NULL}, on_versions,
        r);
}

STEP(deactivate_old_key)
{
    LABEL("UpdateAccessKey");
    return kb_iam_update_access_key(
        r->client,
        &(struct kb_iam_update_access_key_input){r->user, r->old_key_id, KB_IAM_KEY_INACTIVE},
        on_done, r);
}

STEP(delete_old_key)
{
    LABEL("DeleteAccessKey-old");
    return kb_iam_delete_access_key(
        r->client, &(struct kb_iam_access_key_input){r->user, r->old_key_id}, on_done, r);
}

static const step_fn s_rotate[] = {
    describe_secret,    get_value_current, create_access_key, put_value_pending, probe_sts,
    get_value_pending,  promote,           clear_pending,     list_versions,     describe_secret,
    deactivate_old_key, list_access_keys,  delete_old_key,    list_access_keys,  get_value_current,
};

/* -- cleanup ----------------------------------------------------------------------------------- */

static int delete_listed(struct run *r, size_t i)
{
    LABEL(i == 0 ? "DeleteAccessKey-0" : "DeleteAccessKey-1");
    if (i >= r->list_key_count)
        return 1;
    return kb_iam_delete_access_key(
        r->client, &(struct kb_iam_access_key_input){r->user, r->list_keys[i]}, on_done, r);
}

STEP(delete_listed_0)
{
    return delete_listed(r, 0);
}

STEP(delete_listed_1)
{
    return delete_listed(r, 1);
}

STEP(delete_user_policy)
{
    LABEL("DeleteUserPolicy");
    return kb_iam_delete_user_policy(
        r->client, &(struct kb_iam_user_policy_input){r->user, "keybroker-s3"}, on_done, r);
}

STEP(delete_user)
{
    LABEL("DeleteUser");
    return kb_iam_delete_user(r->client, &(struct kb_iam_user_input){r->user}, on_done, r);
}

STEP(delete_secret_force)
{
    LABEL("DeleteSecret-force");
    return kb_sm_delete_secret(
        r->client, &(struct kb_sm_delete_secret_input){r->secret_name, 0, true}, on_deletion, r);
}

STEP(delete_bucket)
{
    LABEL("DeleteBucket");
    return kb_s3_delete_bucket(r->client, BUCKET_IN, on_done, r);
}

static const step_fn s_cleanup[] = {
    list_access_keys,    delete_listed_0, delete_listed_1, delete_user_policy, delete_user,
    delete_secret_force, delete_bucket,   get_user,        head_bucket,        describe_secret,
};

/* -- errors and the remaining variants --------------------------------------------------------- */

STEP(create_secret_plain)
{
    LABEL("CreateSecret-plain");
    return kb_sm_create_secret(r->client,
                               &(struct kb_sm_create_secret_input){r->secret_name, NULL, NULL, NULL,
                                                                   NULL, tenant_tags(r), 2},
                               on_ref, r);
}

STEP(delete_secret_window)
{
    LABEL("DeleteSecret-window");
    return kb_sm_delete_secret(
        r->client, &(struct kb_sm_delete_secret_input){r->secret_name, 7, false}, on_deletion, r);
}

STEP(put_pab_mixed)
{
    LABEL("PutPublicAccessBlock-mixed");
    return kb_s3_put_public_access_block(
        r->client, &(struct kb_s3_put_public_access_block_input){r->bucket, {1, 0, 1, 0, NULL}},
        on_done, r);
}

STEP(put_encryption_kms)
{
    LABEL("PutBucketEncryption-kms");
    return kb_s3_put_bucket_encryption(
        r->client,
        &(struct kb_s3_put_bucket_encryption_input){
            r->bucket, KB_S3_SSE_KMS,
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", true},
        on_done, r);
}

static const step_fn s_errors[] = {
    get_user,        delete_user,          create_secret_plain, create_secret_plain,
    describe_secret, delete_secret_window, describe_secret,     head_bucket,
    create_bucket,   get_bucket_tags,      get_bucket_policy,   put_pab_mixed,
    get_pab,         put_encryption_kms,   create_bucket,       delete_bucket,
};

/* -- objects: the audit log's anchors in an Object Lock bucket ----------------------------------
 */

#define ANCHOR_KEY "anchors/host a+b/000001.json"

static int put_anchor(struct run *r, const char *label, const char *key, const char *body,
                      enum kb_s3_lock_mode mode)
{
    LABEL(label);
    return kb_s3_put_object(r->client,
                            &(struct kb_s3_put_object_input){.bucket = r->bucket,
                                                             .key = key,
                                                             .body = body,
                                                             .body_len = strlen(body),
                                                             .content_type = "application/json",
                                                             .lock_mode = mode,
                                                             .retain_until = time(NULL) + 86400},
                            on_put_object, r);
}

STEP(put_anchor_locked)
{
    return put_anchor(r, "PutObject-COMPLIANCE", ANCHOR_KEY, "{\"seq\":1,\"h\":\"aa\"}",
                      KB_S3_LOCK_COMPLIANCE);
}

STEP(put_anchor_again)
{
    /* "Rewriting" the anchor only adds a version on top of the locked one. */
    return put_anchor(r, "PutObject-rewrite", ANCHOR_KEY, "{\"seq\":1,\"h\":\"forged\"}",
                      KB_S3_LOCK_NONE);
}

STEP(put_anchor_2)
{
    return put_anchor(r, "PutObject-2", "anchors/000002.json", "{\"seq\":2}",
                      KB_S3_LOCK_GOVERNANCE);
}

STEP(put_anchor_3)
{
    return put_anchor(r, "PutObject-3", "anchors/000003.json", "{\"seq\":3}", KB_S3_LOCK_NONE);
}

static int get_anchor(struct run *r, const char *label, const char *version_id, size_t max)
{
    LABEL(label);
    return kb_s3_get_object(
        r->client, &(struct kb_s3_get_object_input){r->bucket, ANCHOR_KEY, version_id, max},
        on_object, r);
}

STEP(get_anchor_locked)
{
    return get_anchor(r, "GetObject-version", r->anchor_version, 4096);
}

STEP(get_anchor_current)
{
    return get_anchor(r, "GetObject-current", NULL, 4096);
}

STEP(get_anchor_too_big)
{
    return get_anchor(r, "GetObject-too-big", r->anchor_version, 4);
}

STEP(list_anchor_versions)
{
    LABEL("ListObjectVersions");
    return kb_s3_list_object_versions(
        r->client,
        &(struct kb_s3_list_object_versions_input){r->bucket, "anchors/", r->list_key_marker,
                                                   r->list_vid_marker, 2},
        on_object_versions, r);
}

static const step_fn s_anchors[] = {
    put_anchor_locked, put_anchor_again,   put_anchor_2,       put_anchor_3,         put_anchor_3,
    get_anchor_locked, get_anchor_current, get_anchor_too_big, list_anchor_versions,
};

/* -- main -------------------------------------------------------------------------------------- */

static int setup(struct run *r, const char *scenario)
{
    struct kb_aws_client_config cfg;
    char errbuf[256];
    const char *base = getenv("KB_ITEST_RETRY_BASE_MS");
    int rc;

    if (strcmp(scenario, "tenant") == 0) {
        r->steps = s_tenant;
        r->step_count = sizeof(s_tenant) / sizeof(s_tenant[0]);
    } else if (strcmp(scenario, "rotate") == 0) {
        r->steps = s_rotate;
        r->step_count = sizeof(s_rotate) / sizeof(s_rotate[0]);
    } else if (strcmp(scenario, "cleanup") == 0) {
        r->steps = s_cleanup;
        r->step_count = sizeof(s_cleanup) / sizeof(s_cleanup[0]);
    } else if (strcmp(scenario, "errors") == 0) {
        r->steps = s_errors;
        r->step_count = sizeof(s_errors) / sizeof(s_errors[0]);
    } else if (strcmp(scenario, "anchors") == 0) {
        r->steps = s_anchors;
        r->step_count = sizeof(s_anchors) / sizeof(s_anchors[0]);
    } else if (strcmp(scenario, "read") == 0) {
        r->steps = s_read;
        r->step_count = sizeof(s_read) / sizeof(s_read[0]);
    } else {
        return 2;
    }
    memset(&cfg, 0, sizeof(cfg));
    if (base != NULL) {
        char *end = NULL;
        unsigned long ms = strtoul(base, &end, 10);

        if (end == base || *end != '\0' || ms > 60000)
            return 2;
        cfg.retry_base_ms = (unsigned)ms;
    }
    rc = kb_aws_client_new(&r->loop, &cfg, &r->client, errbuf, sizeof(errbuf));
    if (rc != 0) {
        struct json_object *o = json_object_new_object();

        j_str(o, "setup_error", kb_err_name(rc));
        j_str(o, "message", errbuf);
        emit(o);
        return 2;
    }
    r->region = kb_aws_client_region(r->client);
    return 0;
}

int main(int argc, char **argv)
{
    struct run r;
    struct json_object *o;
    int rc;

    /* Before anything allocates through OpenSSL or libcurl: their freed blocks get wiped. */
    if (getenv("KB_ITEST_NO_WIPEALLOC") == NULL && kb_wipealloc_install() != 0)
        return 2;
    if (argc != 4 || sodium_init() < 0) {
        fprintf(stderr,
                "usage: itest_services tenant|rotate|cleanup|errors|read|anchors TENANT BUCKET\n");
        return 2;
    }
    memset(&r, 0, sizeof(r));
    r.tenant = argv[2];
    r.bucket = argv[3];
    snprintf(r.user, sizeof(r.user), "kb-%s", r.tenant);
    snprintf(r.secret_name, sizeof(r.secret_name), "keybroker/%s", r.tenant);
    if (uv_loop_init(&r.loop) != 0)
        return 2;
    rc = setup(&r, argv[1]);
    if (rc == 0) {
        next(&r);
        uv_run(&r.loop, UV_RUN_DEFAULT);
        o = json_object_new_object();
        j_bool(o, "done", true);
        j_int(o, "ok", r.ok);
        j_int(o, "failed", r.failed);
        j_bool(o, "client_closed", r.client == NULL);
        emit(o);
    }
    kb_secret_destroy(r.key_secret);
    kb_secret_destroy(r.value);
    if (uv_loop_close(&r.loop) != 0 && rc == 0)
        rc = 2;
    return rc;
}
