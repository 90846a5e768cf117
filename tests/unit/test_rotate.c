/* test_rotate.c - the rotate kind (broker/engine/rotate.c) on a scripted, stateful, in-process AWS
 * (kb_svc_set_sender): the exact calls of a rotation and their order, the token derived from the
 * new key and the AWSPENDING stage, the labels at the end (AWSCURRENT new, AWSPREVIOUS old, no
 * AWSPENDING), the supersede tag and the rotated event; a young unreferenced key refuses with no
 * mutating call; a slot is freed only by deleting the superseded key past its windows; the
 * superseded key deactivated after the overlap; resuming from AWSPENDING without a new key; a
 * store that fails deletes the new key; a label move another rotator already made counts as done;
 * a broker that is not the rotator queues nothing. No network, no fakeaws. */
#include "kb_test.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "aws/svc.h"
#include "common/err.h"
#include "common/log.h"
#include "common/uuid.h"
#include "config/config.h"
#include "engine/engine.h"
#include "events/events.h"

#define MAX_CALLS 64
#define MAX_KEYS  4
#define MAX_VERS  8
#define S_ARN     "arn:aws:secretsmanager:us-east-1:123456789012:secret:keybroker/billing-AbCdEf"

struct pending {
    struct pending *next;
    kb_aws_cb cb;
    void *ctx;
    char op[64];
    char body[4096];
};

struct fkey {
    char id[32];
    bool active;
    time_t created;
};

struct fversion {
    char id[KB_UUID_STR_SIZE];
    char key[32];
    bool current, pending, previous;
};

static struct {
    uv_loop_t loop;
    uv_timer_t timer;
    struct pending *head;
    char calls[MAX_CALLS][64];
    size_t ncalls;
    struct fkey keys[MAX_KEYS];
    size_t nkeys;
    struct fversion vers[MAX_VERS];
    size_t nvers;
    unsigned next_key;
    char superseded[96];
    const char *fail_op; /* answered 400 ValidationException (once) */
    bool move_by_other;  /* the AWSCURRENT move: done "by another broker", then refused */
    char last_token[64];
    char last_stage[32];
    /* engine side */
    int done_calls;
    char done_state[16];
    char done_message[1024];
    int rotated, failed, deactivated, deleted, rolled_back;
    char rotated_version[64], rotated_message[64];
    struct kb_engine *engine;
    struct kb_events *bus;
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
        err.attempts = 1;
        p->cb(p->ctx, &err, NULL);
        return;
    }
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

static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;

    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static struct fversion *s_version(const char *id)
{
    for (size_t i = 0; id != NULL && i < F.nvers; i++) {
        if (strcmp(F.vers[i].id, id) == 0)
            return &F.vers[i];
    }
    return NULL;
}

static void s_add_version(const char *key)
{
    struct fversion *v = &F.vers[F.nvers++];

    assert_true(F.nvers <= MAX_VERS);
    memset(v, 0, sizeof(*v));
    snprintf(v->key, sizeof(v->key), "%s", key);
    assert_int_equal(kb_uuid_key_version("billing", key, v->id), 0);
}

static void s_add_key(const char *id, bool active, time_t created)
{
    struct fkey *k = &F.keys[F.nkeys++];

    assert_true(F.nkeys <= MAX_KEYS);
    snprintf(k->id, sizeof(k->id), "%s", id);
    k->active = active;
    k->created = created;
}

static void s_iso(time_t t, char out[32])
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void s_describe(struct pending *p)
{
    struct json_object *o = json_object_new_object(), *stages = json_object_new_object();
    struct json_object *tags = json_object_new_array();

    json_object_object_add(o, "ARN",
                           json_object_new_string("arn:aws:secretsmanager:us-east-1:123456789012:"
                                                  "secret:keybroker/billing-AbCdEf"));
    json_object_object_add(o, "Name", json_object_new_string("keybroker/billing"));
    for (size_t i = 0; i < F.nvers; i++) {
        struct json_object *a = json_object_new_array();

        if (F.vers[i].current)
            json_object_array_add(a, json_object_new_string("AWSCURRENT"));
        if (F.vers[i].pending)
            json_object_array_add(a, json_object_new_string("AWSPENDING"));
        if (F.vers[i].previous)
            json_object_array_add(a, json_object_new_string("AWSPREVIOUS"));
        json_object_object_add(stages, F.vers[i].id, a);
    }
    json_object_object_add(o, "VersionIdsToStages", stages);
    for (int i = 0; i < 3; i++) {
        static const char *const k[] = {"keybroker:tenant", "keybroker:managed",
                                        "keybroker:superseded"};
        const char *v[] = {"billing", "true", F.superseded};
        struct json_object *t;

        if (i == 2 && F.superseded[0] == '\0')
            break;
        t = json_object_new_object();
        json_object_object_add(t, "Key", json_object_new_string(k[i]));
        json_object_object_add(t, "Value", json_object_new_string(v[i]));
        json_object_array_add(tags, t);
    }
    json_object_object_add(o, "Tags", tags);
    answer(p, 200, json_object_to_json_string(o), NULL);
    json_object_put(o);
}

static void s_list_keys(struct pending *p)
{
    char body[2048], when[32];
    size_t n;

    n = (size_t)snprintf(body, sizeof(body),
                         "<ListAccessKeysResponse><ListAccessKeysResult><AccessKeyMetadata>");
    for (size_t i = 0; i < F.nkeys; i++) {
        s_iso(F.keys[i].created, when);
        n += (size_t)snprintf(body + n, sizeof(body) - n,
                              "<member><UserName>kb-billing</UserName><AccessKeyId>%s"
                              "</AccessKeyId><Status>%s</Status><CreateDate>%s</CreateDate>"
                              "</member>",
                              F.keys[i].id, F.keys[i].active ? "Active" : "Inactive", when);
    }
    snprintf(body + n, sizeof(body) - n,
             "</AccessKeyMetadata><IsTruncated>false</IsTruncated></ListAccessKeysResult>"
             "</ListAccessKeysResponse>");
    answer(p, 200, body, NULL);
}

static void s_stage(struct pending *p)
{
    struct json_object *o = json_tokener_parse(p->body);
    const char *stage = jstr(o, "VersionStage");
    struct fversion *to = s_version(jstr(o, "MoveToVersionId"));
    struct fversion *from = s_version(jstr(o, "RemoveFromVersionId"));
    bool current = strcmp(stage, "AWSCURRENT") == 0;

    if (current && F.move_by_other) {
        F.move_by_other = false;
        for (size_t i = 0; i < F.nvers; i++) {
            F.vers[i].previous = F.vers[i].current;
            F.vers[i].current = &F.vers[i] == to;
        }
        from = NULL; /* no longer holds it */
    }
    if (from != NULL && !(current ? from->current : from->pending)) {
        answer(p, 400, NULL, "InvalidParameterException");
    } else if (from == NULL && jstr(o, "RemoveFromVersionId") != NULL) {
        answer(p, 400, NULL, "InvalidParameterException");
    } else {
        if (current) {
            for (size_t i = 0; i < F.nvers; i++)
                F.vers[i].previous = false;
            from->current = false;
            from->previous = true;
            to->current = true;
        } else if (from != NULL) {
            from->pending = false;
        }
        answer(p, 200, "{\"ARN\":\"" S_ARN "\",\"Name\":\"keybroker/billing\"}", NULL);
    }
    json_object_put(o);
}

static void s_put(struct pending *p)
{
    struct json_object *o = json_tokener_parse(p->body), *st = NULL, *val = NULL;
    struct json_object *doc;
    char body[512];

    assert_non_null(o);
    snprintf(F.last_token, sizeof(F.last_token), "%s", jstr(o, "ClientRequestToken"));
    assert_true(json_object_object_get_ex(o, "VersionStages", &st));
    snprintf(F.last_stage, sizeof(F.last_stage), "%s",
             json_object_get_string(json_object_array_get_idx(st, 0)));
    assert_true(json_object_object_get_ex(o, "SecretString", &val));
    doc = json_tokener_parse(json_object_get_string(val));
    s_add_version(jstr(doc, "AccessKeyId"));
    assert_string_equal(F.vers[F.nvers - 1].id, F.last_token);
    for (size_t i = 0; i < F.nvers; i++)
        F.vers[i].pending = i == F.nvers - 1;
    json_object_put(doc);
    snprintf(body, sizeof(body),
             "{\"ARN\":\"" S_ARN "\",\"Name\":\"keybroker/billing\",\"VersionId\":"
             "\"%s\",\"VersionStages\":[\"AWSPENDING\"]}",
             F.last_token);
    json_object_put(o);
    answer(p, 200, body, NULL);
}

static void s_form(const char *body, const char *key, char *out, size_t len)
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

static void respond(struct pending *p)
{
    char body[1024], id[64];

    if (F.fail_op != NULL && strcmp(p->op, F.fail_op) == 0) {
        F.fail_op = NULL;
        answer(p, 400, NULL, "ValidationException");
    } else if (strcmp(p->op, "GetUser") == 0) {
        answer(p, 200,
               "<GetUserResponse><GetUserResult><User><Path>/keybroker/</Path>"
               "<UserName>kb-billing</UserName><UserId>AIDA1</UserId>"
               "<Arn>arn:aws:iam::123456789012:user/keybroker/kb-billing</Arn>"
               "<CreateDate>2024-05-01T12:34:56Z</CreateDate><Tags>"
               "<member><Key>keybroker:tenant</Key><Value>billing</Value></member>"
               "<member><Key>keybroker:managed</Key><Value>true</Value></member>"
               "</Tags></User></GetUserResult></GetUserResponse>",
               NULL);
    } else if (strcmp(p->op, "DescribeSecret") == 0) {
        s_describe(p);
    } else if (strcmp(p->op, "ListAccessKeys") == 0) {
        s_list_keys(p);
    } else if (strcmp(p->op, "CreateAccessKey") == 0) {
        if (F.nkeys >= 2) {
            answer(p, 409, NULL, "LimitExceeded");
            return;
        }
        snprintf(id, sizeof(id), "AKIANEW%013u", ++F.next_key);
        s_add_key(id, true, time(NULL));
        snprintf(body, sizeof(body),
                 "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey>"
                 "<UserName>kb-billing</UserName><AccessKeyId>%s</AccessKeyId>"
                 "<Status>Active</Status><SecretAccessKey>scripted/secret</SecretAccessKey>"
                 "<CreateDate>2024-05-01T12:34:56Z</CreateDate></AccessKey>"
                 "</CreateAccessKeyResult></CreateAccessKeyResponse>",
                 id);
        answer(p, 200, body, NULL);
    } else if (strcmp(p->op, "PutSecretValue") == 0) {
        s_put(p);
    } else if (strcmp(p->op, "GetSecretValue") == 0) {
        struct json_object *o = json_tokener_parse(p->body);
        struct fversion *v = s_version(jstr(o, "VersionId"));
        char value[256];
        struct json_object *r = json_object_new_object();

        assert_non_null(v);
        snprintf(value, sizeof(value),
                 "{\"Version\":1,\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"s/p\","
                 "\"Bucket\":\"acme-billing\",\"Region\":\"us-east-1\"}",
                 v->key);
        json_object_object_add(r, "ARN", json_object_new_string(S_ARN));
        json_object_object_add(r, "Name", json_object_new_string("keybroker/billing"));
        json_object_object_add(r, "VersionId", json_object_new_string(v->id));
        json_object_object_add(r, "SecretString", json_object_new_string(value));
        answer(p, 200, json_object_to_json_string(r), NULL);
        json_object_put(r);
        json_object_put(o);
    } else if (strcmp(p->op, "UpdateSecretVersionStage") == 0) {
        s_stage(p);
    } else if (strcmp(p->op, "TagResource") == 0) {
        struct json_object *o = json_tokener_parse(p->body), *tags = NULL;

        assert_true(json_object_object_get_ex(o, "Tags", &tags));
        snprintf(F.superseded, sizeof(F.superseded), "%s",
                 jstr(json_object_array_get_idx(tags, 0), "Value"));
        json_object_put(o);
        answer(p, 200, "{}", NULL);
    } else if (strcmp(p->op, "UpdateAccessKey") == 0 || strcmp(p->op, "DeleteAccessKey") == 0) {
        s_form(p->body, "AccessKeyId=", id, sizeof(id));
        for (size_t i = 0; i < F.nkeys; i++) {
            if (strcmp(F.keys[i].id, id) != 0)
                continue;
            if (p->op[0] == 'U') {
                F.keys[i].active = strstr(p->body, "Status=Active") != NULL;
            } else {
                F.keys[i] = F.keys[F.nkeys - 1];
                F.nkeys--;
            }
        }
        answer(p, 200, "", NULL);
    } else if (strcmp(p->op, "GetCallerIdentity") == 0) {
        answer(p, 200,
               "<GetCallerIdentityResponse><GetCallerIdentityResult>"
               "<Arn>arn:aws:iam::123456789012:user/keybroker/kb-billing</Arn>"
               "<UserId>AIDA1</UserId><Account>123456789012</Account>"
               "</GetCallerIdentityResult></GetCallerIdentityResponse>",
               NULL);
    } else if (strcmp(p->op, "ListObjectsV2") == 0) {
        answer(p, 200, "<ListBucketResult><KeyCount>0</KeyCount></ListBucketResult>", NULL);
    } else {
        fail_msg("unexpected call %s", p->op);
    }
}

static void on_drain(uv_timer_t *t)
{
    struct pending *list = F.head;

    (void)t;
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

    (void)c;
    assert_non_null(p);
    assert_true(F.ncalls < MAX_CALLS);
    p->cb = cb;
    p->ctx = ctx;
    snprintf(p->op, sizeof(p->op), "%s", req->operation);
    if (req->body_len < sizeof(p->body))
        memcpy(p->body, req->body != NULL ? req->body : "", req->body_len);
    if (strcmp(p->op, "PutSecretValue") == 0)
        assert_true(req->sensitive);
    snprintf(F.calls[F.ncalls++], sizeof(F.calls[0]), "%s", p->op);
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = p;
    uv_timer_start(&F.timer, on_drain, 0, 0);
    return 0;
}

/* -- engine side ------------------------------------------------------------------------------- */

static void on_done(void *ctx, int err, const struct kb_engine_outcome *o, size_t count)
{
    (void)ctx;
    (void)err;
    assert_int_equal(count, 1);
    F.done_calls++;
    snprintf(F.done_state, sizeof(F.done_state), "%s", kb_tenant_state_name(o[0].state));
    snprintf(F.done_message, sizeof(F.done_message), "%s", o[0].message);
}

static void on_event(void *ctx, const struct kb_event *ev)
{
    (void)ctx;
    switch (ev->kind) {
    case KB_EVENT_ROTATED:
        F.rotated++;
        snprintf(F.rotated_version, sizeof(F.rotated_version), "%s", ev->version_id);
        snprintf(F.rotated_message, sizeof(F.rotated_message), "%s", ev->message);
        assert_non_null(ev->arn);
        break;
    case KB_EVENT_ROTATION_FAILED:
        F.failed++;
        break;
    case KB_EVENT_ROLLED_BACK:
        F.rolled_back++;
        snprintf(F.rotated_version, sizeof(F.rotated_version), "%s", ev->version_id);
        snprintf(F.rotated_message, sizeof(F.rotated_message), "%s", ev->message);
        break;
    case KB_EVENT_KEY_DEACTIVATED:
        F.deactivated++;
        break;
    case KB_EVENT_KEY_DELETED:
        F.deleted++;
        break;
    case KB_EVENT_PROVISIONED:
        fail_msg("a rotation announced itself as provisioned");
        break;
    default:
        break;
    }
}

static struct kb_aws_client *s_client;
static struct kb_config *s_cfg;

#define CONFIG(rotate)                                                                             \
    "{\"aws\":{\"overlap\":\"1h\",\"retire\":\"1d\"},\"tenants\":[{\"name\":\"billing\","          \
    "\"bucket\":\"acme-billing\",\"access\":\"read-write\",\"rotate\":" rotate "}]}"

static int setup(void **state)
{
    struct kb_aws_client_config cc = {
        .region = "us-east-1",
        .endpoint_url = "http://127.0.0.1:9",
        .creds = {.access_key_id = "AKIAROOT", .secret_access_key = "root-secret"}};
    struct kb_config_errors *errors = NULL;
    char errbuf[256];

    (void)state;
    memset(&F, 0, sizeof(F));
    assert_int_equal(uv_loop_init(&F.loop), 0);
    uv_timer_init(&F.loop, &F.timer);
    assert_int_equal(kb_aws_client_new(&F.loop, &cc, &s_client, errbuf, sizeof(errbuf)), 0);
    kb_svc_set_sender(fake_send);
    kb_log_set_level(KB_LOG_ERROR);
    s_cfg = NULL;
    assert_int_equal(
        kb_config_load_string(CONFIG("true"), strlen(CONFIG("true")), NULL, &s_cfg, &errors), 0);
    assert_int_equal(kb_engine_new(&F.loop, s_cfg, s_client, &F.engine), 0);
    assert_int_equal(kb_events_new(&F.bus), 0);
    assert_int_equal(kb_events_subscribe(F.bus, KB_EVENT_MASK_ALL, on_event, NULL,
                                         &(struct kb_events_sub *){NULL}),
                     0);
    kb_engine_set_events(F.engine, F.bus);
    /* the tenant as provisioned: one key, AWSCURRENT */
    s_add_key("AKIAOLD0000000000001", true, time(NULL) - 86400);
    s_add_version("AKIAOLD0000000000001");
    F.vers[0].current = true;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kb_engine_destroy(F.engine);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    kb_events_destroy(F.bus);
    kb_config_destroy(s_cfg);
    kb_svc_set_sender(NULL);
    kb_aws_client_close(s_client, NULL, NULL);
    uv_close((uv_handle_t *)&F.timer, NULL);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&F.loop), 0);
    kb_log_set_level(KB_LOG_INFO);
    return 0;
}

static void rotate(void)
{
    assert_int_equal(kb_engine_rotate(F.engine, "billing", NULL, on_done, NULL), 0);
    assert_int_equal(F.done_calls, 0); /* never from inside the call */
    uv_run(&F.loop, UV_RUN_DEFAULT);
    assert_int_equal(F.done_calls, 1);
}

static void assert_calls(const char *const *want, size_t n)
{
    for (size_t i = 0; i < n && i < F.ncalls; i++)
        assert_string_equal(F.calls[i], want[i]);
    assert_int_equal(F.ncalls, n);
}

static struct fversion *labelled(int which)
{
    for (size_t i = 0; i < F.nvers; i++) {
        if ((which == 0 && F.vers[i].current) || (which == 1 && F.vers[i].pending) ||
            (which == 2 && F.vers[i].previous))
            return &F.vers[i];
    }
    return NULL;
}

static void test_rotation_calls_in_order(void **state)
{
    static const char *const want[] = {
        "GetUser",         "DescribeSecret",           "ListAccessKeys",
        "CreateAccessKey", "PutSecretValue",           "GetCallerIdentity",
        "ListObjectsV2",   "UpdateSecretVersionStage", "UpdateSecretVersionStage",
        "TagResource"};
    char old_version[KB_UUID_STR_SIZE], value[96];
    struct kb_tenant_status st;

    (void)state;
    snprintf(old_version, sizeof(old_version), "%s", F.vers[0].id);
    rotate();
    assert_calls(want, sizeof(want) / sizeof(want[0]));
    assert_string_equal(F.done_state, "ready");
    /* the token is the id derived from (tenant, new key); stored as AWSPENDING first */
    assert_string_equal(F.last_token, F.vers[1].id);
    assert_string_equal(F.last_stage, "AWSPENDING");
    assert_string_equal(labelled(0)->key, "AKIANEW0000000000001");
    assert_string_equal(labelled(2)->id, old_version);
    assert_null(labelled(1));
    snprintf(value, sizeof(value), "%s ", old_version);
    assert_memory_equal(F.superseded, value, strlen(value));
    assert_int_equal(F.rotated, 1);
    assert_string_equal(F.rotated_version, F.vers[1].id);
    assert_string_equal(F.rotated_message, old_version);
    assert_int_equal(F.failed, 0);
    assert_int_equal(kb_engine_tenant_status(F.engine, "billing", &st), 0);
    assert_string_equal(st.version_id, F.vers[1].id);
    assert_string_equal(st.probe, "probed-ok");
    assert_int_equal(F.nkeys, 2); /* the old key stays active for the overlap */
    assert_true(F.keys[0].active);
}

static void test_young_unreferenced_key_refuses(void **state)
{
    static const char *const want[] = {"GetUser", "DescribeSecret", "ListAccessKeys"};

    (void)state;
    s_add_key("AKIASTRAY00000000001", true, time(NULL) - 30);
    rotate();
    assert_calls(want, 3);
    assert_string_not_equal(F.done_state, "ready"); /* degraded in a daemon (was ready) */
    assert_non_null(strstr(F.done_message, "younger than aws.orphan_key_min_age"));
    assert_int_equal(F.failed, 1);
    assert_int_equal(F.nkeys, 2);
    assert_int_equal(F.nvers, 1);
}

static void test_old_unreferenced_key_is_not_deleted(void **state)
{
    (void)state;
    s_add_key("AKIASTRAY00000000001", true, time(NULL) - 86400);
    rotate();
    assert_int_equal(F.ncalls, 3);
    assert_string_not_equal(F.done_state, "ready"); /* degraded in a daemon (was ready) */
    assert_int_equal(F.nkeys, 2);                   /* never "delete the oldest" */
}

static void test_slot_freed_by_the_superseded_key_past_its_windows(void **state)
{
    (void)state;
    /* the tenant rotated two days ago: previous = the old key, recorded superseded then */
    s_add_key("AKIAOLDER00000000001", false, time(NULL) - 3 * 86400);
    s_add_version("AKIAOLDER00000000001");
    F.vers[1].previous = true;
    snprintf(F.superseded, sizeof(F.superseded), "%s %lld", F.vers[1].id,
             (long long)time(NULL) - 2 * 86400);
    rotate();
    assert_string_equal(F.done_state, "ready");
    assert_string_equal(F.calls[3], "DeleteAccessKey");
    assert_string_equal(F.calls[4], "CreateAccessKey");
    assert_int_equal(F.deleted, 1);
    assert_int_equal(F.rotated, 1);
    assert_int_equal(F.nkeys, 2);
    assert_string_equal(labelled(2)->key, "AKIAOLD0000000000001");
}

static void test_superseded_key_kept_inside_its_windows(void **state)
{
    (void)state;
    /* superseded 2 h ago: past the 1 h overlap (deactivated now), inside the 1 d retire */
    s_add_key("AKIAOLDER00000000001", true, time(NULL) - 3 * 86400);
    s_add_version("AKIAOLDER00000000001");
    F.vers[1].previous = true;
    snprintf(F.superseded, sizeof(F.superseded), "%s %lld", F.vers[1].id,
             (long long)time(NULL) - 7200);
    rotate();
    assert_string_equal(F.calls[3], "UpdateAccessKey");
    assert_int_equal(F.ncalls, 4);
    assert_int_equal(F.deactivated, 1);
    assert_false(F.keys[1].active);
    assert_string_not_equal(F.done_state, "ready"); /* degraded in a daemon (was ready) */
    assert_non_null(strstr(F.done_message, "kept until"));
    assert_int_equal(F.nkeys, 2);
}

static void test_resume_from_pending(void **state)
{
    (void)state;
    /* killed after PutSecretValue: the new key is stored as AWSPENDING */
    s_add_key("AKIANEW0000000000009", true, time(NULL) - 60);
    s_add_version("AKIANEW0000000000009");
    F.vers[1].pending = true;
    rotate();
    assert_string_equal(F.done_state, "ready");
    for (size_t i = 0; i < F.ncalls; i++)
        assert_string_not_equal(F.calls[i], "CreateAccessKey");
    assert_string_equal(F.calls[3], "GetSecretValue");
    assert_string_equal(labelled(0)->key, "AKIANEW0000000000009");
    assert_null(labelled(1));
    assert_int_equal(F.rotated, 1);
    assert_int_equal(F.nkeys, 2);
}

static void test_store_failure_deletes_the_new_key(void **state)
{
    (void)state;
    F.fail_op = "PutSecretValue";
    rotate();
    assert_string_not_equal(F.done_state, "ready"); /* degraded in a daemon (was ready) */
    assert_string_equal(F.calls[F.ncalls - 1], "DeleteAccessKey");
    assert_int_equal(F.nkeys, 1);
    assert_string_equal(F.keys[0].id, "AKIAOLD0000000000001");
    assert_true(labelled(0) == &F.vers[0]); /* AWSCURRENT unchanged */
    assert_int_equal(F.failed, 1);
    assert_int_equal(F.rotated, 0);
}

static void test_move_done_by_another_rotator(void **state)
{
    (void)state;
    F.move_by_other = true;
    rotate();
    assert_string_equal(F.done_state, "ready");
    assert_string_equal(labelled(0)->key, "AKIANEW0000000000001");
    assert_null(labelled(1));
    assert_int_equal(F.rotated, 1);
}

static void rollback(void)
{
    assert_int_equal(kb_engine_rotate_with(F.engine, "billing",
                                           &(struct kb_engine_rotate_opts){.rollback = true}, NULL,
                                           on_done, NULL),
                     0);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    assert_int_equal(F.done_calls, 1);
}

/* The tenant as rotated an hour and a half ago: AWSPREVIOUS is the old key, deactivated after the
 * 1 h overlap, still inside the 1 d retire window. */
static void s_rotated_earlier(bool old_active)
{
    s_add_key("AKIAOLDER00000000001", old_active, time(NULL) - 3 * 86400);
    s_add_version("AKIAOLDER00000000001");
    F.vers[1].previous = true;
    snprintf(F.superseded, sizeof(F.superseded), "%s %lld", F.vers[1].id,
             (long long)time(NULL) - 5400);
}

static void test_rollback_reactivates_and_moves_back(void **state)
{
    static const char *const want[] = {
        "GetUser",         "DescribeSecret",           "ListAccessKeys",
        "UpdateAccessKey", "GetSecretValue",           "GetCallerIdentity",
        "ListObjectsV2",   "UpdateSecretVersionStage", "TagResource"};
    char from[KB_UUID_STR_SIZE], to[KB_UUID_STR_SIZE], value[96];
    struct kb_tenant_status st;

    (void)state;
    s_rotated_earlier(false);
    snprintf(from, sizeof(from), "%s", F.vers[0].id);
    snprintf(to, sizeof(to), "%s", F.vers[1].id);
    rollback();
    assert_calls(want, sizeof(want) / sizeof(want[0]));
    assert_string_equal(F.done_state, "ready");
    assert_non_null(strstr(F.done_message, "rolled back"));
    assert_true(F.keys[1].active); /* reactivated */
    assert_string_equal(labelled(0)->id, to);
    assert_string_equal(labelled(2)->id, from);
    assert_null(labelled(1));
    /* the version rolled away from is recorded as superseded now: its windows start */
    snprintf(value, sizeof(value), "%s ", from);
    assert_memory_equal(F.superseded, value, strlen(value));
    assert_int_equal(F.rolled_back, 1);
    assert_string_equal(F.rotated_version, to);
    assert_string_equal(F.rotated_message, from);
    assert_int_equal(F.rotated + F.failed + F.deactivated + F.deleted, 0);
    assert_int_equal(kb_engine_tenant_status(F.engine, "billing", &st), 0);
    assert_string_equal(st.version_id, to);
    assert_int_equal(F.nkeys, 2);
}

static void test_rollback_inside_the_overlap_only_moves(void **state)
{
    (void)state;
    s_rotated_earlier(true);
    rollback();
    assert_string_equal(F.done_state, "ready");
    assert_string_equal(F.calls[3], "GetSecretValue"); /* no UpdateAccessKey: it is active */
    assert_string_equal(labelled(0)->key, "AKIAOLDER00000000001");
    assert_int_equal(F.rolled_back, 1);
}

static void test_rollback_refused_after_deletion(void **state)
{
    (void)state;
    /* AWSPREVIOUS names a key that was deleted after aws.retire */
    s_add_version("AKIAGONE000000000001");
    F.vers[1].previous = true;
    rollback();
    assert_int_equal(F.ncalls, 3); /* read only */
    assert_string_not_equal(F.done_state, "ready");
    assert_non_null(strstr(F.done_message, "rollback is no longer possible"));
    assert_true(labelled(0) == &F.vers[0]);
    assert_int_equal(F.rolled_back + F.failed, 0); /* a refusal is not a failed rotation */
}

static void test_cut_over_deactivates_before_the_overlap(void **state)
{
    char current[KB_UUID_STR_SIZE], old[KB_UUID_STR_SIZE];

    (void)state;
    snprintf(old, sizeof(old), "%s", F.vers[0].id);
    rotate(); /* the old key stays active for the 1 h overlap */
    assert_int_equal(F.rotated, 1);
    assert_true(F.keys[0].active);
    snprintf(current, sizeof(current), "%s", F.vers[1].id);
    F.done_calls = 0;
    F.ncalls = 0;
    /* not the current version: nothing */
    assert_int_equal(kb_engine_cut_over(F.engine, "billing", old), KB_EINVAL);
    assert_false(kb_engine_busy(F.engine));
    assert_int_equal(kb_engine_cut_over(F.engine, "billing", current), 0);
    assert_true(kb_engine_busy(F.engine));
    uv_run(&F.loop, UV_RUN_DEFAULT);
    assert_int_equal(F.ncalls, 4);
    assert_string_equal(F.calls[3], "UpdateAccessKey");
    assert_false(F.keys[0].active);
    assert_int_equal(F.deactivated, 1);
    assert_int_equal(F.nkeys, 2); /* deleted only after overlap + retire */
    /* again: already recorded, nothing queued */
    assert_int_equal(kb_engine_cut_over(F.engine, "billing", current), 0);
    assert_false(kb_engine_busy(F.engine));
}

static void test_not_the_rotator(void **state)
{
    struct kb_config *cfg = NULL;
    struct kb_config_errors *errors = NULL;
    struct kb_engine *e = NULL;

    (void)state;
    assert_int_equal(
        kb_config_load_string(CONFIG("false"), strlen(CONFIG("false")), NULL, &cfg, &errors), 0);
    assert_int_equal(kb_engine_new(&F.loop, cfg, s_client, &e), 0);
    assert_int_equal(kb_engine_rotate(e, "billing", NULL, on_done, NULL), KB_EDENIED);
    assert_int_equal(kb_engine_rotate(e, "ghost", NULL, on_done, NULL), KB_ENOTFOUND);
    assert_false(kb_engine_busy(e));
    kb_engine_destroy(e);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    kb_config_destroy(cfg);
    assert_int_equal(F.ncalls, 0);
}

int main(int argc, char **argv)
{
    /* One case per line: CMake registers each line as a test. */
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rotation_calls_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_young_unreferenced_key_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_unreferenced_key_is_not_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slot_freed_by_the_superseded_key_past_its_windows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_superseded_key_kept_inside_its_windows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_from_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_failure_deletes_the_new_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_done_by_another_rotator, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_the_rotator, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_reactivates_and_moves_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_inside_the_overlap_only_moves, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollback_refused_after_deletion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_over_deactivates_before_the_overlap, setup,
                                        teardown),
    };
    /* clang-format on */

    if (sodium_init() < 0)
        return 1;
    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
