/* test_engine.c - the provisioning engine on a scripted, in-process AWS (kb_svc_set_sender): the
 * exact calls of a fresh tenant and their order, the token derived from the key, the probe signed
 * with the new key, callbacks that are always asynchronous, the concurrency bound, compensation,
 * refusal of a foreign bucket (and the user's policy withheld or removed), unknown tenants, a
 * failed reconcile that degrades instead of dropping, and the background schedule (retries with
 * backoff, the periodic reconcile, nothing after a cancel). No network, no fakeaws. */
#include "kb_test.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config/config.h"
#include "engine/engine.h"
#include "common/err.h"
#include "common/log.h"
#include "aws/svc.h"
#include "common/uuid.h"
#include "events/events.h"

#define MAX_CALLS 256

struct pending {
    struct pending *next;
    kb_aws_cb cb;
    void *ctx;
    char op[64];
    char bucket[64];
    char body[2048];
    char key_id[128]; /* credentials of the request, "" for the client's */
};

/* The scripted AWS. */
static struct {
    uv_loop_t loop;
    uv_timer_t timer;
    struct pending *head;
    char calls[MAX_CALLS][64];
    char subjects[MAX_CALLS][64]; /* bucket or user the call was about */
    size_t ncalls;
    const char *fail_op; /* answer this operation with fail_status/fail_code */
    long fail_status;
    const char *fail_code;
    bool bucket_exists_untagged;
    bool create_tags_refused; /* CreateBucket with <Tags>: 400 MalformedXML, as moto answers */
    bool user_records_bucket; /* ListUserTags: ours, with a fresh creation record of the bucket */
    bool adopt;               /* provision with adopt_bucket */
    int adopted_events;
    bool create_drops_tags; /* a tagged CreateBucket succeeds but keeps no tag (moto 5.2) */
    bool user_exists_ours;  /* GetUser: the user exists with keybroker's tags for billing */
    bool cancel_at_start;   /* on_progress calls kb_engine_cancel once */
    unsigned fail_count;    /* > 0: fail_op fails only this many more times */
    char tagged[16][64];    /* buckets that carry keybroker's tags */
    size_t ntagged;
    unsigned keys;
    char last_key[64];
    char key_user[32][64]; /* user of key AKIAFAKE<n>, by n */
    char last_token[64];
    char probe_key[128];
    unsigned probe_attempts;
    /* engine callbacks */
    bool in_provision; /* inside kb_engine_provision: a callback now would be synchronous */
    int sync_callbacks;
    int done_calls;
    int done_err;
    size_t done_count;
    char done_state[8][16];
    char done_message[8][1024];
    struct kb_engine *engine;
    struct kb_events *bus;
    const struct kb_config *cfg;
    size_t max_provisioning;
} F;

static void answer(struct pending *p, long status, const char *body, const char *code)
{
    struct kb_http_response http;
    struct kb_aws_response resp;
    struct kb_aws_error err;

    if (code != NULL) {
        memset(&err, 0, sizeof(err));
        err.err = KB_EAWS;
        err.status = status;
        snprintf(err.code, sizeof(err.code), "%s", code);
        snprintf(err.message, sizeof(err.message), "scripted %s", code);
        snprintf(err.operation, sizeof(err.operation), "%s", p->op);
        snprintf(err.request_id, sizeof(err.request_id), "req-%zu", F.ncalls);
        err.attempts = 1;
        p->cb(p->ctx, &err, NULL);
        return;
    }
    if (body == NULL)
        body = ""; /* a success without a body (204) */
    memset(&http, 0, sizeof(http));
    http.status = status;
    http.body = body;
    http.body_len = strlen(body);
    http.error_text = "";
    memset(&resp, 0, sizeof(resp));
    resp.status = status;
    resp.body = body;
    resp.body_len = strlen(body);
    resp.http = &http;
    resp.request_id = "req-ok";
    resp.attempts = 1;
    p->cb(p->ctx, NULL, &resp);
}

static void form_value(const char *body, const char *key, char *out, size_t len)
{
    const char *v = strstr(body, key);
    size_t n = 0;

    out[0] = '\0';
    if (v == NULL)
        return;
    v += strlen(key);
    while (v[n] != '\0' && v[n] != '&' && n + 1 < len)
        n++;
    memcpy(out, v, n);
    out[n] = '\0';
}

static bool s_tagged(const char *bucket)
{
    for (size_t i = 0; i < F.ntagged; i++) {
        if (strcmp(F.tagged[i], bucket) == 0)
            return true;
    }
    return false;
}

static void respond(struct pending *p)
{
    char body[2048], user[64];

    if (F.fail_op != NULL && strcmp(p->op, F.fail_op) == 0) {
        if (F.fail_count > 0 && --F.fail_count == 0)
            F.fail_op = NULL;
        answer(p, F.fail_status, NULL, F.fail_code);
    } else if (strcmp(p->op, "GetUser") == 0 && F.user_exists_ours) {
        answer(p, 200,
               "<GetUserResponse><GetUserResult><User><Path>/keybroker/</Path>"
               "<UserName>kb-billing</UserName><UserId>AIDA1</UserId>"
               "<Arn>arn:aws:iam::123456789012:user/keybroker/kb-billing</Arn>"
               "<CreateDate>2024-05-01T12:34:56Z</CreateDate><Tags>"
               "<member><Key>keybroker:tenant</Key><Value>billing</Value></member>"
               "<member><Key>keybroker:managed</Key><Value>true</Value></member>"
               "</Tags></User></GetUserResult></GetUserResponse>",
               NULL);
    } else if (strcmp(p->op, "HeadBucket") == 0) {
        if (F.bucket_exists_untagged)
            answer(p, 200, "", NULL);
        else
            answer(p, 404, NULL, "NotFound");
    } else if (strcmp(p->op, "GetBucketTagging") == 0) {
        if (s_tagged(p->bucket)) {
            snprintf(body, sizeof(body),
                     "<Tagging><TagSet><Tag><Key>keybroker:tenant</Key><Value>%s</Value></Tag>"
                     "<Tag><Key>keybroker:managed</Key><Value>true</Value></Tag></TagSet>"
                     "</Tagging>",
                     p->bucket + strlen("acme-"));
            answer(p, 200, body, NULL);
        } else {
            answer(p, 404, NULL, "NoSuchTagSet");
        }
    } else if ((strcmp(p->op, "CreateBucket") == 0 && strstr(p->body, "<Tags>") != NULL &&
                !F.create_drops_tags && !F.create_tags_refused) ||
               strcmp(p->op, "PutBucketTagging") == 0) {
        assert_true(F.ntagged < 16);
        snprintf(F.tagged[F.ntagged++], sizeof(F.tagged[0]), "%s", p->bucket);
        answer(p, 200, "", NULL);
    } else if (strcmp(p->op, "CreateBucket") == 0 && F.create_tags_refused &&
               strstr(p->body, "<Tags>") != NULL) {
        answer(p, 400, NULL, "MalformedXML");
    } else if (strcmp(p->op, "GetPublicAccessBlock") == 0) {
        answer(p, 404, NULL, "NoSuchPublicAccessBlockConfiguration"); /* as before 2023 */
    } else if (strcmp(p->op, "GetBucketEncryption") == 0) {
        answer(p, 404, NULL, "ServerSideEncryptionConfigurationNotFoundError");
    } else if (strcmp(p->op, "GetBucketOwnershipControls") == 0) {
        answer(p, 404, NULL, "OwnershipControlsNotFoundError");
    } else if (strcmp(p->op, "GetBucketPolicy") == 0) {
        answer(p, 404, NULL, "NoSuchBucketPolicy");
    } else if (strcmp(p->op, "ListUserTags") == 0 && F.user_records_bucket) {
        snprintf(body, sizeof(body),
                 "<ListUserTagsResponse><ListUserTagsResult><Tags>"
                 "<member><Key>keybroker:tenant</Key><Value>billing</Value></member>"
                 "<member><Key>keybroker:managed</Key><Value>true</Value></member>"
                 "<member><Key>keybroker:creating-bucket</Key><Value>acme-billing %lld</Value>"
                 "</member></Tags><IsTruncated>false</IsTruncated></ListUserTagsResult>"
                 "</ListUserTagsResponse>",
                 (long long)time(NULL) - 60);
        answer(p, 200, body, NULL);
    } else if (strcmp(p->op, "GetUser") == 0 || strcmp(p->op, "ListUserTags") == 0) {
        answer(p, 404, NULL, "NoSuchEntity");
    } else if (strcmp(p->op, "CreateUser") == 0) {
        form_value(p->body, "UserName=", user, sizeof(user));
        snprintf(body, sizeof(body),
                 "<CreateUserResponse><CreateUserResult><User><Path>/keybroker/</Path>"
                 "<UserName>%s</UserName><UserId>AIDA1</UserId>"
                 "<Arn>arn:aws:iam::123456789012:user/keybroker/%s</Arn>"
                 "<CreateDate>2024-05-01T12:34:56Z</CreateDate></User></CreateUserResult>"
                 "</CreateUserResponse>",
                 user, user);
        answer(p, 200, body, NULL);
    } else if (strcmp(p->op, "DescribeSecret") == 0) {
        answer(p, 400, NULL, "ResourceNotFoundException");
    } else if (strcmp(p->op, "CreateAccessKey") == 0) {
        form_value(p->body, "UserName=", user, sizeof(user));
        snprintf(F.last_key, sizeof(F.last_key), "AKIAFAKE%012u", ++F.keys);
        assert_true(F.keys < 32);
        snprintf(F.key_user[F.keys], sizeof(F.key_user[0]), "%s", user);
        snprintf(body, sizeof(body),
                 "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey>"
                 "<UserName>%s</UserName><AccessKeyId>%s</AccessKeyId><Status>Active</Status>"
                 "<SecretAccessKey>scripted/secret/%u</SecretAccessKey>"
                 "<CreateDate>2024-05-01T12:34:56Z</CreateDate></AccessKey>"
                 "</CreateAccessKeyResult></CreateAccessKeyResponse>",
                 user, F.last_key, F.keys);
        answer(p, 200, body, NULL);
    } else if (strcmp(p->op, "CreateSecret") == 0) {
        struct json_object *o = json_tokener_parse(p->body), *tok, *name;

        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "ClientRequestToken", &tok));
        assert_true(json_object_object_get_ex(o, "Name", &name));
        snprintf(F.last_token, sizeof(F.last_token), "%s", json_object_get_string(tok));
        snprintf(body, sizeof(body),
                 "{\"ARN\":\"arn:aws:secretsmanager:us-east-1:123456789012:secret:%s-AbCdEf\","
                 "\"Name\":\"%s\",\"VersionId\":\"%s\"}",
                 json_object_get_string(name), json_object_get_string(name), F.last_token);
        json_object_put(o);
        answer(p, 200, body, NULL);
    } else if (strcmp(p->op, "GetCallerIdentity") == 0) {
        unsigned n = (unsigned)strtoul(p->key_id + strlen("AKIAFAKE"), NULL, 10);

        F.probe_attempts++;
        snprintf(F.probe_key, sizeof(F.probe_key), "%s", p->key_id);
        assert_true(n > 0 && n < 32);
        snprintf(body, sizeof(body),
                 "<GetCallerIdentityResponse><GetCallerIdentityResult>"
                 "<Arn>arn:aws:iam::123456789012:user/keybroker/%s</Arn>"
                 "<UserId>AIDA1</UserId><Account>123456789012</Account>"
                 "</GetCallerIdentityResult></GetCallerIdentityResponse>",
                 F.key_user[n]);
        answer(p, 200, body, NULL);
    } else if (strcmp(p->op, "ListObjectsV2") == 0) {
        answer(p, 200, "<ListBucketResult><KeyCount>0</KeyCount></ListBucketResult>", NULL);
    } else {
        /* PutBucketPolicy, PutUserPolicy, DeleteAccessKey, CreateBucket: nothing to say */
        answer(p, 200, "", NULL);
    }
}

static void on_drain(uv_timer_t *t)
{
    struct pending *list = F.head;

    F.head = NULL;
    while (list != NULL) {
        struct pending *next = list->next;

        respond(list);
        sodium_memzero(list->body, sizeof(list->body));
        free(list);
        list = next;
    }
}

static int fake_send(struct kb_aws_client *c, const struct kb_aws_request *req, kb_aws_cb cb,
                     void *ctx)
{
    struct pending *p = calloc(1, sizeof(*p)), **tail = &F.head;
    char user[64] = "";

    (void)c;
    assert_non_null(p);
    assert_true(F.ncalls < MAX_CALLS);
    p->cb = cb;
    p->ctx = ctx;
    snprintf(p->op, sizeof(p->op), "%s", req->operation);
    snprintf(p->bucket, sizeof(p->bucket), "%s", req->bucket != NULL ? req->bucket : "");
    if (req->body_len < sizeof(p->body))
        memcpy(p->body, req->body != NULL ? req->body : "", req->body_len);
    if (req->credentials != NULL) {
        snprintf(p->key_id, sizeof(p->key_id), "%s", req->credentials->access_key_id);
        assert_int_equal(req->max_attempts, 1); /* the probe owns its timing */
    }
    /* the stored value is a secret: the request says so (the client wipes it) */
    if (strcmp(p->op, "CreateSecret") == 0 || strcmp(p->op, "PutSecretValue") == 0)
        assert_true(req->sensitive);
    form_value(p->body, "UserName=", user, sizeof(user));
    snprintf(F.calls[F.ncalls], sizeof(F.calls[0]), "%s", p->op);
    snprintf(F.subjects[F.ncalls], sizeof(F.subjects[0]), "%s", p->bucket[0] ? p->bucket : user);
    F.ncalls++;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = p;
    uv_timer_start(&F.timer, on_drain, 0, 0);
    return 0;
}

/* -- engine callbacks ------------------------------------------------------------------------- */

static void on_progress(void *ctx, const struct kb_engine_event *ev)
{
    size_t n = 0;

    if (F.in_provision)
        F.sync_callbacks++;
    if (F.cancel_at_start) {
        F.cancel_at_start = false;
        kb_engine_cancel(F.engine);
    }
    for (size_t i = 0; i < F.cfg->ntenants; i++) {
        struct kb_tenant_status st;

        assert_int_equal(kb_engine_tenant_status(F.engine, F.cfg->tenants[i].name, &st), 0);
        n += st.state == KB_TENANT_PROVISIONING;
    }
    if (n > F.max_provisioning)
        F.max_provisioning = n;
    assert_non_null(ev->tenant);
    assert_non_null(ev->message);
}

static void on_done(void *ctx, int err, const struct kb_engine_outcome *o, size_t count)
{
    if (F.in_provision)
        F.sync_callbacks++;
    F.done_calls++;
    F.done_err = err;
    F.done_count = count;
    for (size_t i = 0; i < count && i < 8; i++) {
        snprintf(F.done_state[i], sizeof(F.done_state[i]), "%s", kb_tenant_state_name(o[i].state));
        snprintf(F.done_message[i], sizeof(F.done_message[i]), "%s", o[i].message);
    }
}

/* -- fixture ---------------------------------------------------------------------------------- */

static struct kb_config *load(const char *json)
{
    struct kb_config *cfg = NULL;
    struct kb_config_errors *errors = NULL;

    assert_int_equal(kb_config_load_string(json, strlen(json), NULL, &cfg, &errors), 0);
    return cfg;
}

static struct kb_aws_client *s_client;

static int setup(void **state)
{
    struct kb_aws_client_config cc = {
        .region = "us-east-1",
        .endpoint_url = "http://127.0.0.1:9",
        .creds = {.access_key_id = "AKIAROOT", .secret_access_key = "root-secret"}};
    char errbuf[256];

    memset(&F, 0, sizeof(F));
    assert_int_equal(uv_loop_init(&F.loop), 0);
    uv_timer_init(&F.loop, &F.timer);
    assert_int_equal(kb_aws_client_new(&F.loop, &cc, &s_client, errbuf, sizeof(errbuf)), 0);
    kb_svc_set_sender(fake_send);
    kb_log_set_level(KB_LOG_ERROR);
    return 0;
}

static int teardown(void **state)
{
    kb_svc_set_sender(NULL);
    kb_aws_client_close(s_client, NULL, NULL);
    uv_close((uv_handle_t *)&F.timer, NULL);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&F.loop), 0);
    kb_log_set_level(KB_LOG_INFO);
    return 0;
}

/* Provisions tenant (NULL: all) of cfg to the end. */
static void on_adopted(void *ctx, const struct kb_event *ev)
{
    (void)ctx;
    assert_string_equal(ev->arn, "arn:aws:s3:::acme-billing");
    assert_non_null(ev->message);
    F.adopted_events++;
}

static void provision(const struct kb_config *cfg, const char *tenant)
{
    F.cfg = cfg;
    assert_int_equal(kb_engine_new(&F.loop, cfg, s_client, &F.engine), 0);
    assert_int_equal(kb_events_new(&F.bus), 0);
    assert_int_equal(kb_events_subscribe(F.bus, KB_EVENT_MASK(KB_EVENT_ADOPTED), on_adopted, NULL,
                                         &(struct kb_events_sub *){NULL}),
                     0);
    kb_engine_set_events(F.engine, F.bus);
    F.in_provision = true;
    if (F.adopt)
        assert_int_equal(kb_engine_provision_with(F.engine, tenant,
                                                  &(struct kb_engine_provision_opts){true},
                                                  on_progress, on_done, NULL),
                         0);
    else
        assert_int_equal(kb_engine_provision(F.engine, tenant, on_progress, on_done, NULL), 0);
    F.in_provision = false;
    assert_int_equal(F.done_calls, 0);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    assert_int_equal(F.done_calls, 1);
    assert_int_equal(F.sync_callbacks, 0);
}

static void finish(struct kb_config *cfg)
{
    kb_engine_destroy(F.engine);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    kb_events_destroy(F.bus);
    F.bus = NULL;
    kb_config_destroy(cfg);
}

static size_t find(const char *op, size_t from)
{
    for (size_t i = from; i < F.ncalls; i++) {
        if (strcmp(F.calls[i], op) == 0)
            return i;
    }
    return SIZE_MAX;
}

#define ONE_TENANT                                                                                 \
    "{\"tenants\":[{\"name\":\"billing\",\"bucket\":\"acme-billing\",\"prefix\":\"in/\","          \
    "\"access\":\"read-write\"}]}"

#define TWO_TENANTS                                                                                \
    "{\"broker\":{\"concurrency\":1},"                                                             \
    "\"tenants\":[{\"name\":\"billing\",\"bucket\":\"acme-billing\",\"access\":\"read-only\"},"    \
    "{\"name\":\"ops\",\"bucket\":\"acme-ops\",\"access\":\"read-only\"}]}"

static void test_fresh_tenant_minimal_calls_in_order(void **state)
{
    static const char *const minimal[] = {"HeadBucket",          "CreateBucket",
                                          "GetBucketTagging",    "PutPublicAccessBlock",
                                          "PutBucketEncryption", "PutBucketOwnershipControls",
                                          "PutBucketPolicy",     "GetUser",
                                          "CreateUser",          "PutUserPolicy",
                                          "DescribeSecret",      "CreateAccessKey",
                                          "CreateSecret",        "GetCallerIdentity",
                                          "ListObjectsV2"};
    struct kb_config *cfg = load(ONE_TENANT);
    struct kb_tenant_status st;
    char version[KB_UUID_STR_SIZE];
    size_t key_at;

    provision(cfg, NULL);
    assert_int_equal(F.done_err, 0);
    assert_int_equal(F.done_count, 1);
    assert_string_equal(F.done_state[0], "ready");
    /* exactly the minimal set, each once */
    assert_int_equal(F.ncalls, sizeof(minimal) / sizeof(minimal[0]));
    for (size_t i = 0; i < sizeof(minimal) / sizeof(minimal[0]); i++) {
        assert_int_not_equal(find(minimal[i], 0), SIZE_MAX);
    }
    /* each chain in order; the key step after both chains; the probe after the store */
    assert_true(find("HeadBucket", 0) < find("CreateBucket", 0));
    /* every secure setting is written on the new bucket, none assumed from S3's defaults */
    assert_true(find("CreateBucket", 0) < find("PutPublicAccessBlock", 0));
    assert_true(find("PutPublicAccessBlock", 0) < find("PutBucketEncryption", 0));
    assert_true(find("PutBucketEncryption", 0) < find("PutBucketOwnershipControls", 0));
    assert_true(find("PutBucketOwnershipControls", 0) < find("PutBucketPolicy", 0));
    assert_true(find("GetUser", 0) < find("CreateUser", 0));
    assert_true(find("CreateUser", 0) < find("PutUserPolicy", 0));
    /* the chains run concurrently: both first calls go out before either second one */
    assert_true(find("GetUser", 0) < find("CreateBucket", 0));
    /* the user's policy names the bucket: written only after the bucket chain succeeded */
    assert_true(find("PutUserPolicy", 0) > find("PutBucketPolicy", 0));
    key_at = find("DescribeSecret", 0);
    assert_true(key_at > find("PutBucketPolicy", 0) && key_at > find("PutUserPolicy", 0));
    assert_true(find("CreateAccessKey", 0) < find("CreateSecret", 0));
    assert_true(find("CreateSecret", 0) < find("GetCallerIdentity", 0));
    /* the token is the version id derived from the key; the probe signs with the new key */
    assert_int_equal(kb_uuid_key_version("billing", F.last_key, version), 0);
    assert_string_equal(F.last_token, version);
    assert_string_equal(F.probe_key, F.last_key);
    assert_int_equal(kb_engine_tenant_status(F.engine, "billing", &st), 0);
    assert_int_equal(st.state, KB_TENANT_READY);
    assert_string_equal(st.version_id, version);
    assert_string_equal(st.probe, "probed-ok");
    assert_non_null(strstr(st.secret_arn, ":secret:keybroker/billing-"));
    assert_true(st.last_rotation > 0);
    assert_int_equal(kb_engine_tenant_status(F.engine, "nobody", &st), KB_ENOTFOUND);
    finish(cfg);
}

static void test_concurrency_bound(void **state)
{
    char json[2048];
    size_t off;
    struct kb_config *cfg;

    off = (size_t)snprintf(json, sizeof(json), "{\"broker\":{\"concurrency\":2},\"tenants\":[");
    for (int i = 0; i < 6; i++)
        off += (size_t)snprintf(json + off, sizeof(json) - off,
                                "%s{\"name\":\"t%d\",\"bucket\":\"acme-t%d\",\"access\":"
                                "\"read-only\"}",
                                i > 0 ? "," : "", i, i);
    snprintf(json + off, sizeof(json) - off, "]}");
    cfg = load(json);
    provision(cfg, NULL);
    assert_int_equal(F.done_err, 0);
    assert_int_equal(F.done_count, 6);
    assert_int_equal(F.max_provisioning, 2);
    assert_int_equal(F.ncalls, 6 * 15);
    for (int i = 0; i < 6; i++)
        assert_string_equal(F.done_state[i], "ready");
    finish(cfg);
}

static void test_store_failure_deletes_the_key(void **state)
{
    struct kb_config *cfg = load(ONE_TENANT);
    size_t del;

    F.fail_op = "CreateSecret";
    F.fail_status = 403;
    F.fail_code = "AccessDenied";
    provision(cfg, "billing");
    assert_int_equal(F.done_err, KB_EAWS);
    assert_string_equal(F.done_state[0], "error");
    assert_non_null(strstr(F.done_message[0], "step store-key: CreateSecret failed: AccessDenied"));
    assert_non_null(strstr(F.done_message[0], "was deleted (compensation)"));
    del = find("DeleteAccessKey", 0);
    assert_int_not_equal(del, SIZE_MAX);
    assert_true(del > find("CreateSecret", 0));
    assert_int_equal(find("GetCallerIdentity", 0), SIZE_MAX);
    finish(cfg);
}

static void test_unclear_store_failure_reads_before_deleting(void **state)
{
    struct kb_config *cfg = load(ONE_TENANT);
    size_t store;

    /* a 503 after the client's retries: the secret is read first (not found: then deleted) */
    F.fail_op = "CreateSecret";
    F.fail_status = 503;
    F.fail_code = "ServiceUnavailable";
    provision(cfg, NULL);
    store = find("CreateSecret", 0);
    assert_true(find("DescribeSecret", store) < find("DeleteAccessKey", store));
    assert_non_null(strstr(F.done_message[0], "was deleted (compensation)"));
    finish(cfg);
}

static void test_foreign_bucket_is_refused(void **state)
{
    struct kb_config *cfg = load(ONE_TENANT);

    F.bucket_exists_untagged = true;
    provision(cfg, NULL);
    assert_int_equal(F.done_err, KB_EAWS);
    assert_string_equal(F.done_message[0],
                        "step bucket: bucket acme-billing exists and is not managed by keybroker "
                        "for tenant billing; refusing to adopt it (if it is yours, `kbctl adopt "
                        "billing` takes it under management)");
    /* nothing was written to the bucket, and no key was made */
    for (size_t i = 0; i < F.ncalls; i++) {
        if (strcmp(F.subjects[i], "acme-billing") == 0)
            assert_true(strcmp(F.calls[i], "HeadBucket") == 0 ||
                        strcmp(F.calls[i], "GetBucketTagging") == 0);
    }
    assert_int_equal(find("CreateAccessKey", 0), SIZE_MAX);
    /* the user chain ran (and created the user), but no policy names the refused bucket */
    assert_int_not_equal(find("CreateUser", 0), SIZE_MAX);
    assert_int_equal(find("PutUserPolicy", 0), SIZE_MAX);
    assert_int_equal(find("DeleteUserPolicy", 0), SIZE_MAX); /* a new user has none */
    finish(cfg);
}

/* An existing user of the tenant and a refused bucket (another tenant's tags, untagged, another
 * account's): the policy an earlier run wrote is removed, nothing is written. */
static void test_refused_bucket_removes_the_user_policy(void **state)
{
    static const struct {
        const char *head_code; /* NULL: HeadBucket 200 */
        long head_status;
        const char *create_code;
    } cases[] = {
        {NULL, 200, NULL}, {"Forbidden", 403, NULL}, {"NotFound", 404, "BucketAlreadyExists"}};

    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct kb_config *cfg = load(ONE_TENANT);
        size_t del;

        teardown(state);
        setup(state);
        F.user_exists_ours = true;
        if (cases[c].head_code == NULL) {
            F.bucket_exists_untagged = true;
        } else if (cases[c].create_code == NULL) {
            F.fail_op = "HeadBucket";
            F.fail_status = cases[c].head_status;
            F.fail_code = cases[c].head_code;
        } else {
            F.fail_op = "CreateBucket";
            F.fail_status = 409;
            F.fail_code = cases[c].create_code;
        }
        provision(cfg, NULL);
        assert_int_equal(F.done_err, KB_EAWS);
        assert_string_equal(F.done_state[0], "error");
        assert_non_null(strstr(F.done_message[0], "step bucket: "));
        del = find("DeleteUserPolicy", 0);
        assert_int_not_equal(del, SIZE_MAX);
        assert_string_equal(F.subjects[del], "kb-billing");
        assert_int_equal(find("PutUserPolicy", 0), SIZE_MAX);
        assert_int_equal(find("GetUserPolicy", 0), SIZE_MAX);
        assert_int_equal(find("CreateAccessKey", 0), SIZE_MAX);
        finish(cfg);
    }
}

/* A bucket chain that fails for another reason (AWS unavailable) says nothing about whose the
 * bucket is: the policy is neither written nor removed. */
static void test_failed_bucket_leaves_the_user_policy(void **state)
{
    struct kb_config *cfg = load(ONE_TENANT);

    F.user_exists_ours = true;
    F.fail_op = "HeadBucket";
    F.fail_status = 503;
    F.fail_code = "ServiceUnavailable";
    provision(cfg, NULL);
    assert_int_equal(F.done_err, KB_EAWS);
    assert_string_equal(F.done_state[0], "error"); /* nothing served before: not degraded */
    assert_int_equal(find("DeleteUserPolicy", 0), SIZE_MAX);
    assert_int_equal(find("PutUserPolicy", 0), SIZE_MAX);
    assert_int_equal(find("GetUserPolicy", 0), SIZE_MAX);
    finish(cfg);
}

/* Runs one more provision of tenant on the engine provision() made. */
static void again(const char *tenant)
{
    int before = F.done_calls;

    assert_int_equal(kb_engine_provision(F.engine, tenant, on_progress, on_done, NULL), 0);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    assert_int_equal(F.done_calls, before + 1);
}

/* "Degrade, don't drop": a ready tenant whose reconcile fails keeps its ARN and version, in state
 * degraded with the reason; the next good run makes it ready again. No message names a key. */
static void test_failed_reconcile_degrades(void **state)
{
    struct kb_config *cfg = load(ONE_TENANT);
    struct kb_tenant_status st;
    char arn[256], version[64];

    provision(cfg, NULL);
    assert_string_equal(F.done_state[0], "ready");
    assert_null(strstr(F.done_message[0], "AKIA"));
    assert_int_equal(kb_engine_tenant_status(F.engine, "billing", &st), 0);
    snprintf(arn, sizeof(arn), "%s", st.secret_arn);
    snprintf(version, sizeof(version), "%s", st.version_id);
    assert_true(arn[0] != '\0' && version[0] != '\0');

    F.fail_op = "HeadBucket";
    F.fail_status = 503;
    F.fail_code = "ServiceUnavailable";
    again("billing");
    assert_int_equal(F.done_err, KB_EAWS);
    assert_string_equal(F.done_state[0], "degraded");
    assert_non_null(
        strstr(F.done_message[0], "step bucket: HeadBucket failed: ServiceUnavailable"));
    assert_int_equal(kb_engine_tenant_status(F.engine, "billing", &st), 0);
    assert_int_equal(st.state, KB_TENANT_DEGRADED);
    assert_string_equal(kb_tenant_state_name(st.state), "degraded");
    assert_string_equal(st.secret_arn, arn);
    assert_string_equal(st.version_id, version);
    assert_string_equal(st.step, "bucket");
    assert_non_null(strstr(st.message, "ServiceUnavailable"));
    /* and a second failure in a row stays degraded */
    F.fail_op = "GetUser";
    again("billing");
    assert_string_equal(F.done_state[0], "degraded");

    F.fail_op = NULL;
    again("billing");
    assert_int_equal(F.done_err, 0);
    assert_string_equal(F.done_state[0], "ready");
    assert_null(strstr(F.done_message[0], "AKIA"));
    assert_int_equal(kb_engine_tenant_status(F.engine, "billing", &st), 0);
    assert_int_equal(st.state, KB_TENANT_READY);
    finish(cfg);
}

/* A bucket refused after the tenant was ready: its policy is removed, so the old key grants
 * nothing any more and is not served as degraded. */
static void test_refused_bucket_of_a_ready_tenant_is_error(void **state)
{
    struct kb_config *cfg = load(ONE_TENANT);

    provision(cfg, NULL);
    assert_string_equal(F.done_state[0], "ready");
    F.user_exists_ours = true;
    F.ntagged = 0; /* the bucket lost keybroker's tags */
    F.bucket_exists_untagged = true;
    again("billing");
    assert_string_equal(F.done_state[0], "error");
    assert_int_not_equal(find("DeleteUserPolicy", 0), SIZE_MAX);
    finish(cfg);
}

/* -- the background schedule ------------------------------------------------------------------ */

static struct {
    char lines[16][512];
    size_t n;
} L;

static void log_sink(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    if (strstr(line, "\"retry-scheduled\"") != NULL && L.n < 16)
        snprintf(L.lines[L.n++], sizeof(L.lines[0]), "%.*s", (int)len, line);
}

static size_t count(const char *op)
{
    size_t n = 0;

    for (size_t i = 0; i < F.ncalls; i++)
        n += strcmp(F.calls[i], op) == 0;
    return n;
}

/* What run_until waits for: tenant in state, after at least heads HeadBucket calls. */
static struct {
    const char *tenant;
    enum kb_tenant_state state;
    size_t heads;
    bool reached;
} W;

static void on_deadline(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* Before each poll: stopping here keeps the loop from sleeping until its next timer. */
static void on_prepare(uv_prepare_t *h)
{
    struct kb_tenant_status st;

    assert_int_equal(kb_engine_tenant_status(F.engine, W.tenant, &st), 0);
    if (st.state == W.state && count("HeadBucket") >= W.heads) {
        W.reached = true;
        uv_stop(h->loop);
    }
}

/* Runs the loop until tenant is in state want after at least heads HeadBucket calls in all
 * (true), or for at most ms (false). */
static bool run_until(const char *tenant, enum kb_tenant_state want, size_t heads, uint64_t ms)
{
    uv_timer_t deadline;
    uv_prepare_t check;

    W.tenant = tenant;
    W.state = want;
    W.heads = heads;
    W.reached = false;
    uv_timer_init(&F.loop, &deadline);
    uv_timer_start(&deadline, on_deadline, ms, 0);
    uv_prepare_init(&F.loop, &check);
    uv_prepare_start(&check, on_prepare);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_close((uv_handle_t *)&check, NULL);
    uv_run(&F.loop, UV_RUN_NOWAIT); /* the close callbacks: both live on this stack */
    return W.reached;
}

#define RETRY_CONFIG                                                                               \
    "{\"broker\":{\"reconcile\":{\"retry_initial\":\"1s\",\"retry_max\":\"1s\","                   \
    "\"interval\":null}},"                                                                         \
    "\"tenants\":[{\"name\":\"billing\",\"bucket\":\"acme-billing\",\"access\":\"read-only\"},"    \
    "{\"name\":\"ops\",\"bucket\":\"acme-ops\",\"access\":\"read-only\"}]}"

/* A tenant whose first provision failed (nothing to serve: error) is retried by itself after
 * retry_initial (jittered), logged, and becomes ready without anyone asking; a tenant nobody
 * provisioned stays pending, untouched. */
static void test_background_retries_a_failed_tenant(void **state)
{
    struct kb_config *cfg = load(RETRY_CONFIG);
    struct kb_tenant_status st;
    uint64_t failed_at;

    memset(&L, 0, sizeof(L));
    kb_log_set_level(KB_LOG_INFO);
    kb_log_set_sink(log_sink, NULL);
    F.fail_op = "HeadBucket";
    F.fail_status = 503;
    F.fail_code = "ServiceUnavailable";
    F.fail_count = 2; /* the first provision and the first retry fail */
    F.cfg = cfg;
    assert_int_equal(kb_engine_new(&F.loop, cfg, s_client, &F.engine), 0);
    kb_engine_start_background(F.engine);
    assert_int_equal(kb_engine_provision(F.engine, "billing", on_progress, on_done, NULL), 0);
    assert_true(run_until("billing", KB_TENANT_ERROR, 1, 1000));
    failed_at = uv_now(&F.loop);
    assert_int_equal(kb_engine_tenant_status(F.engine, "billing", &st), 0);
    assert_non_null(strstr(st.message, "; retry 1 in "));
    assert_int_equal(F.done_calls, 1);
    assert_non_null(strstr(F.done_message[0], "; retry 1 in "));
    /* the retry runs by itself, fails once more (retry 2), then succeeds */
    assert_true(run_until("billing", KB_TENANT_READY, 3, 4000));
    assert_true(uv_now(&F.loop) - failed_at >= 2 * 750);
    assert_int_equal(count("HeadBucket"), 3);
    assert_int_equal(F.done_calls, 1); /* background jobs call nobody back */
    assert_int_equal(L.n, 2);
    assert_non_null(strstr(L.lines[0], "\"tenant\":\"billing\""));
    assert_non_null(strstr(L.lines[0], "\"attempt\":\"1\""));
    assert_non_null(strstr(L.lines[1], "\"attempt\":\"2\""));
    assert_non_null(strstr(L.lines[1], "\"delay_ms\":\""));
    assert_int_equal(kb_engine_tenant_status(F.engine, "billing", &st), 0);
    assert_null(strstr(st.message, "retry"));
    /* ops was never asked for: no call about it, still pending */
    for (size_t i = 0; i < F.ncalls; i++)
        assert_null(strstr(F.subjects[i], "ops"));
    assert_int_equal(kb_engine_tenant_status(F.engine, "ops", &st), 0);
    assert_int_equal(st.state, KB_TENANT_PENDING);
    /* interval null: a healthy tenant is not provisioned again */
    assert_false(run_until("billing", KB_TENANT_READY, 4, 1500));
    assert_int_equal(count("HeadBucket"), 3);
    kb_log_set_sink(NULL, NULL);
    kb_log_set_level(KB_LOG_ERROR);
    finish(cfg);
}

/* A ready tenant is reconciled again every interval (a short one set here: the config's minimum
 * is a minute), while a revoked tenant is not. */
static void test_background_periodic_reconcile(void **state)
{
    struct kb_config *cfg = load(RETRY_CONFIG);

    cfg->broker.reconcile.interval = 1;
    F.cfg = cfg;
    assert_int_equal(kb_engine_new(&F.loop, cfg, s_client, &F.engine), 0);
    kb_engine_start_background(F.engine);
    assert_int_equal(kb_engine_provision(F.engine, NULL, on_progress, on_done, NULL), 0);
    assert_true(run_until("ops", KB_TENANT_READY, 2, 1000));
    assert_int_equal(count("HeadBucket"), 2);
    assert_int_equal(F.done_calls, 1);
    /* both again, by themselves, within the jittered second */
    assert_true(run_until("billing", KB_TENANT_READY, 4, 2500));
    assert_int_equal(F.done_calls, 1);
    /* revoke ops: from then on it is left alone */
    assert_int_equal(kb_engine_revoke(F.engine, "ops", NULL, on_progress, on_done, NULL), 0);
    assert_true(run_until("ops", KB_TENANT_REVOKED, 0, 1000));
    {
        size_t before = F.ncalls;

        /* billing goes on being reconciled; ops is left alone */
        assert_true(run_until("billing", KB_TENANT_READY, count("HeadBucket") + 2, 3000));
        assert_int_equal(kb_engine_tenant_status(F.engine, "ops", &(struct kb_tenant_status){0}),
                         0);
        for (size_t i = before; i < F.ncalls; i++)
            assert_null(strstr(F.subjects[i], "ops"));
    }
    finish(cfg);
}

/* Destroying the engine stops the schedule: a failed tenant is not retried afterwards (the loop
 * ends at once: no timer is left), and nothing leaks (ASan). */
static void test_background_stops_at_destroy(void **state)
{
    struct kb_config *cfg = load(RETRY_CONFIG);
    uint64_t t0;

    F.fail_op = "HeadBucket";
    F.fail_status = 503;
    F.fail_code = "ServiceUnavailable";
    F.cfg = cfg;
    assert_int_equal(kb_engine_new(&F.loop, cfg, s_client, &F.engine), 0);
    kb_engine_start_background(F.engine);
    assert_int_equal(kb_engine_provision(F.engine, "billing", on_progress, on_done, NULL), 0);
    assert_true(run_until("billing", KB_TENANT_ERROR, 1, 1000));
    t0 = uv_now(&F.loop);
    kb_engine_destroy(F.engine);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    uv_update_time(&F.loop);
    assert_true(uv_now(&F.loop) - t0 < 500);
    assert_int_equal(count("HeadBucket"), 1);
    kb_config_destroy(cfg);
}

/* A cancel (shutdown) while a job runs: the job ends, fails, and schedules no retry (the loop
 * ends: no timer is armed). */
static void test_background_cancel_schedules_nothing(void **state)
{
    struct kb_config *cfg = load(RETRY_CONFIG);
    struct kb_tenant_status st;

    F.fail_op = "HeadBucket";
    F.fail_status = 503;
    F.fail_code = "ServiceUnavailable";
    F.cfg = cfg;
    assert_int_equal(kb_engine_new(&F.loop, cfg, s_client, &F.engine), 0);
    kb_engine_start_background(F.engine);
    assert_int_equal(kb_engine_provision(F.engine, "billing", on_progress, on_done, NULL), 0);
    F.cancel_at_start = true;        /* on_progress cancels at the job's first event */
    uv_run(&F.loop, UV_RUN_DEFAULT); /* returns once the job has ended */
    assert_int_equal(F.done_calls, 1);
    assert_int_equal(F.done_err, KB_EAWS);
    assert_int_equal(count("HeadBucket"), 1);
    assert_int_equal(kb_engine_tenant_status(F.engine, "billing", &st), 0);
    assert_int_equal(st.state, KB_TENANT_ERROR);
    assert_null(strstr(st.message, "retry"));
    kb_engine_destroy(F.engine);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    kb_config_destroy(cfg);
}

/* The endpoint refuses tags in CreateBucket (moto, LocalStack...): the creation is recorded on
 * the IAM user first, the bucket created untagged and tagged at once, every setting written, and
 * the record removed before the key step; the next tenant does not try tags again. */
static void test_create_bucket_tags_fallback(void **state)
{
    struct kb_config *cfg = load(TWO_TENANTS);
    size_t tag_user, create2, tagging, untag;

    F.create_tags_refused = true;
    provision(cfg, NULL);
    assert_int_equal(F.done_err, 0);
    assert_string_equal(F.done_state[0], "ready");
    assert_string_equal(F.done_state[1], "ready");
    tag_user = find("TagUser", 0);
    assert_int_not_equal(tag_user, SIZE_MAX);
    assert_true(find("CreateUser", 0) < tag_user); /* the user chain ended first */
    /* the policy waits for the bucket: after its settings, before the record goes */
    create2 = find("CreateBucket", tag_user);
    tagging = find("PutBucketTagging", create2);
    untag = find("UntagUser", tagging);
    assert_true(create2 != SIZE_MAX && tagging != SIZE_MAX && untag != SIZE_MAX);
    assert_true(find("PutPublicAccessBlock", tagging) < find("PutBucketPolicy", tagging));
    assert_true(untag < find("DescribeSecret", tagging));
    assert_true(find("PutBucketPolicy", tagging) < find("PutUserPolicy", tagging));
    /* 2 tenants one after the other: one refused attempt with tags, then two untagged
     * creations (the engine remembers what the endpoint refused) */
    {
        size_t creates = 0;

        for (size_t i = 0; i < F.ncalls; i++)
            creates += strcmp(F.calls[i], "CreateBucket") == 0;
        assert_int_equal(creates, 3);
    }
    finish(cfg);
}

/* aws.deny_insecure_transport false: every other setting is written, the bucket policy is neither
 * written nor read (the tenant is still ready). */
static void test_bucket_policy_not_managed(void **state)
{
    struct kb_config *cfg = load("{\"aws\":{\"deny_insecure_transport\":false},"
                                 "\"tenants\":[{\"name\":\"billing\",\"bucket\":\"acme-billing\","
                                 "\"access\":\"read-write\"}]}");

    (void)state;
    provision(cfg, NULL);
    assert_int_equal(F.done_err, 0);
    assert_string_equal(F.done_state[0], "ready");
    assert_int_equal(F.ncalls, 14);
    assert_int_not_equal(find("PutBucketOwnershipControls", 0), SIZE_MAX);
    assert_int_equal(find("PutBucketPolicy", 0), SIZE_MAX);
    assert_int_equal(find("GetBucketPolicy", 0), SIZE_MAX);
    finish(cfg);
}

/* moto 5.2 takes the tags in CreateBucket and keeps none: read back, tagged at once, and the next
 * tenant takes the recorded, untagged path. */
static void test_create_bucket_tags_dropped(void **state)
{
    struct kb_config *cfg = load(TWO_TENANTS);
    size_t first_tagging, tag_user;

    F.create_drops_tags = true;
    provision(cfg, NULL);
    assert_int_equal(F.done_err, 0);
    assert_string_equal(F.done_state[0], "ready");
    assert_string_equal(F.done_state[1], "ready");
    first_tagging = find("PutBucketTagging", find("GetBucketTagging", 0));
    assert_int_not_equal(first_tagging, SIZE_MAX);
    assert_true(first_tagging < find("PutPublicAccessBlock", 0));
    /* the second tenant records its creation on its user and creates untagged */
    tag_user = find("TagUser", first_tagging);
    assert_int_not_equal(tag_user, SIZE_MAX);
    assert_int_not_equal(find("UntagUser", tag_user), SIZE_MAX);
    assert_true(s_tagged("acme-billing") && s_tagged("acme-ops"));
    finish(cfg);
}

/* After a crash between the untagged CreateBucket and PutBucketTagging: the bucket has no tag,
 * the user records its creation, so the run tags it, reads every setting, removes the record. */
static void test_untagged_bucket_with_creation_record_converges(void **state)
{
    struct kb_config *cfg = load(ONE_TENANT);
    size_t tagging;

    F.bucket_exists_untagged = true;
    F.user_records_bucket = true;
    provision(cfg, NULL);
    assert_int_equal(F.done_err, 0);
    assert_string_equal(F.done_state[0], "ready");
    tagging = find("PutBucketTagging", find("ListUserTags", 0));
    assert_int_not_equal(tagging, SIZE_MAX);
    assert_int_not_equal(find("GetPublicAccessBlock", tagging), SIZE_MAX);
    assert_int_not_equal(find("UntagUser", tagging), SIZE_MAX);
    assert_int_equal(F.adopted_events, 1);
    finish(cfg);
}

/* An operator's own untagged bucket: refused by default (test_foreign_bucket_is_refused), taken
 * under management on request, announced. */
static void test_adopt_on_request(void **state)
{
    struct kb_config *cfg = load(ONE_TENANT);
    size_t tagging;

    F.bucket_exists_untagged = true;
    F.adopt = true;
    provision(cfg, "billing");
    assert_int_equal(F.done_err, 0);
    assert_string_equal(F.done_state[0], "ready");
    assert_int_equal(find("ListUserTags", 0), SIZE_MAX);
    tagging = find("PutBucketTagging", 0);
    assert_int_not_equal(tagging, SIZE_MAX);
    assert_int_not_equal(find("GetBucketEncryption", tagging), SIZE_MAX);
    assert_int_equal(F.adopted_events, 1);
    finish(cfg);
}

static void test_no_tenants_and_unknown_tenant(void **state)
{
    struct kb_config *cfg = load("{}");

    provision(cfg, NULL); /* completes later, with nothing */
    assert_int_equal(F.done_err, 0);
    assert_int_equal(F.done_count, 0);
    assert_int_equal(F.ncalls, 0);
    assert_int_equal(kb_engine_provision(F.engine, "ghost", NULL, on_done, NULL), KB_ENOTFOUND);
    assert_int_equal(kb_engine_revoke(F.engine, "ghost", NULL, NULL, on_done, NULL), KB_ENOTFOUND);
    assert_int_equal(kb_engine_revoke(F.engine, NULL, NULL, NULL, on_done, NULL), KB_EINVAL);
    assert_false(kb_engine_busy(F.engine));
    uv_run(&F.loop, UV_RUN_DEFAULT);
    assert_int_equal(F.done_calls, 1);
    finish(cfg);
}

static void test_cancel_drops_queued_jobs(void **state)
{
    struct kb_config *cfg = load(ONE_TENANT);

    F.cfg = cfg;
    assert_int_equal(kb_engine_new(&F.loop, cfg, s_client, &F.engine), 0);
    assert_int_equal(kb_engine_provision(F.engine, NULL, on_progress, on_done, NULL), 0);
    assert_true(kb_engine_busy(F.engine));
    kb_engine_cancel(F.engine);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    assert_int_equal(F.done_calls, 1);
    assert_int_equal(F.done_err, KB_ECANCELED);
    assert_string_equal(F.done_message[0], "canceled");
    assert_int_equal(F.ncalls, 0);
    assert_int_equal(kb_engine_provision(F.engine, NULL, on_progress, on_done, NULL), KB_ECANCELED);
    finish(cfg);
}

int main(int argc, char **argv)
{
    /* One case per line: CMake registers each line as a test. */
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_tenant_minimal_calls_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrency_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_failure_deletes_the_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unclear_store_failure_reads_before_deleting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_bucket_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_bucket_tags_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bucket_policy_not_managed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_bucket_tags_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untagged_bucket_with_creation_record_converges, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_adopt_on_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_tenants_and_unknown_tenant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_drops_queued_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_bucket_removes_the_user_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_bucket_leaves_the_user_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_reconcile_degrades, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_bucket_of_a_ready_tenant_is_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_background_retries_a_failed_tenant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_background_periodic_reconcile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_background_stops_at_destroy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_background_cancel_schedules_nothing, setup, teardown),
    };
    /* clang-format on */

    if (sodium_init() < 0)
        return 1;
    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
