/* test_secretsmanager.c - the typed Secrets Manager calls on a fake transport: exact JSON 1.1
 * bodies and headers, secrets serialized from and parsed into struct kb_secret, response parsing
 * (VersionIdsToStages, versions, dates), malformed JSON, and the key-secret value format. */
#include "kb_test.h"

#include "kb_svc_test.h"

#include "aws/secretsmanager.h"

#define SM_HEADERS(op)                                                                             \
    "Content-Type: application/x-amz-json-1.1\nX-Amz-Target: secretsmanager." op "\n"
#define ARN "arn:aws:secretsmanager:us-east-1:123456789012:secret:keybroker/t1-AbCdEf"
#define KEY_JSON                                                                                   \
    "{\"Version\":1,\"AccessKeyId\":\"AKIAIOSFODNN7EXAMPLE\",\"SecretAccessKey\":"                 \
    "\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY\",\"Bucket\":\"kb-t1\",\"Region\":\"us-east-1\"}"
#define KEY_JSON_ESCAPED                                                                           \
    "{\\\"Version\\\":1,\\\"AccessKeyId\\\":\\\"AKIAIOSFODNN7EXAMPLE\\\",\\\"SecretAccessKey\\\":" \
    "\\\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY\\\",\\\"Bucket\\\":\\\"kb-t1\\\","              \
    "\\\"Region\\\":\\\"us-east-1\\\"}"

static const struct kb_aws_tag s_tags[] = {
    {"keybroker:tenant", "t1"},
    {"keybroker:managed", "true"},
};

struct ref_got {
    struct got g;
    char arn[128], name[64], version[64], stages[64];
};

static void on_ref(void *ctx, const struct kb_aws_error *err, const struct kb_sm_secret_ref *r)
{
    struct ref_got *out = ctx;
    size_t off = 0;

    out->g.calls++;
    if (err != NULL) {
        got_error(&out->g, err);
        return;
    }
    cap_copy(out->arn, sizeof(out->arn), r->arn);
    cap_copy(out->name, sizeof(out->name), r->name);
    cap_copy(out->version, sizeof(out->version), r->version_id);
    for (size_t i = 0; i < r->stage_count; i++)
        off += (size_t)snprintf(out->stages + off, sizeof(out->stages) - off, "%s;", r->stages[i]);
}

static void test_create_secret_request(void **state)
{
    struct kb_secret *value = kb_secret_new(KEY_JSON, strlen(KEY_JSON));
    struct kb_sm_create_secret_input in = {
        .name = "keybroker/t1",
        .client_request_token = "0b5c4a3e-1f2d-5e6f-8a9b-0c1d2e3f4a5b",
        .secret_string = value,
        .tags = s_tags,
        .tag_count = 2,
    };
    struct ref_got r = {0};

    assert_int_equal(kb_sm_create_secret(NULL, &in, on_ref, &r), 0);
    assert_int_equal(r.g.calls, 0);
    assert_int_equal(g_cap.service, KB_AWS_SECRETSMANAGER);
    assert_string_equal(g_cap.method, "POST");
    assert_string_equal(g_cap.path, "/");
    assert_string_equal(g_cap.headers, SM_HEADERS("CreateSecret"));
    assert_true(g_cap.sensitive);
    assert_string_equal(g_cap.body,
                        "{\"Name\":\"keybroker/t1\","
                        "\"ClientRequestToken\":\"0b5c4a3e-1f2d-5e6f-8a9b-0c1d2e3f4a5b\","
                        "\"SecretString\":\"" KEY_JSON_ESCAPED "\","
                        "\"Tags\":[{\"Key\":\"keybroker:tenant\",\"Value\":\"t1\"},"
                        "{\"Key\":\"keybroker:managed\",\"Value\":\"true\"}]}");
    /* the caller's secret is untouched */
    assert_true(kb_secret_equals(value, KEY_JSON, strlen(KEY_JSON)));
    kb_secret_destroy(value);
    cap_respond(200, "{\"ARN\":\"" ARN "\",\"Name\":\"keybroker/t1\","
                     "\"VersionId\":\"0b5c4a3e-1f2d-5e6f-8a9b-0c1d2e3f4a5b\"}");
    assert_int_equal(r.g.calls, 1);
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.arn, ARN);
    assert_string_equal(r.name, "keybroker/t1");
    assert_string_equal(r.version, "0b5c4a3e-1f2d-5e6f-8a9b-0c1d2e3f4a5b");
}

static void test_create_secret_escapes_control_characters(void **state)
{
    const char raw[] = "a\"b\\c\nd\x01/e";
    struct kb_secret *value = kb_secret_new(raw, sizeof(raw) - 1);
    struct kb_sm_create_secret_input in = {.name = "n", .secret_string = value};
    struct ref_got r = {0};

    assert_int_equal(kb_sm_create_secret(NULL, &in, on_ref, &r), 0);
    assert_string_equal(g_cap.body,
                        "{\"Name\":\"n\",\"SecretString\":\"a\\\"b\\\\c\\nd\\u0001/e\"}");
    kb_secret_destroy(value);
    cap_fail(KB_EAWS, 400, "ResourceExistsException");
    assert_int_equal(r.g.err, KB_EAWS);
    assert_string_equal(r.g.code, "ResourceExistsException");
}

static void test_create_secret_without_value(void **state)
{
    struct kb_sm_create_secret_input in = {
        .name = "n", .description = "d", .kms_key_id = "alias/k"};
    struct ref_got r = {0};

    assert_int_equal(kb_sm_create_secret(NULL, &in, on_ref, &r), 0);
    assert_false(g_cap.sensitive);
    assert_string_equal(g_cap.body,
                        "{\"Name\":\"n\",\"Description\":\"d\",\"KmsKeyId\":\"alias/k\"}");
    cap_respond(200, "{\"ARN\":\"" ARN "\",\"Name\":\"n\"}");
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.version, "(null)");
}

static void test_put_secret_value(void **state)
{
    struct kb_secret *value = kb_secret_new("v2", 2);
    const char *const stages[] = {"AWSPENDING"};
    struct kb_sm_put_secret_value_input in = {"keybroker/t1", "tok-2", value, stages, 1};
    struct ref_got r = {0};

    assert_int_equal(kb_sm_put_secret_value(NULL, &in, on_ref, &r), 0);
    assert_string_equal(g_cap.headers, SM_HEADERS("PutSecretValue"));
    assert_true(g_cap.sensitive);
    assert_string_equal(g_cap.body, "{\"SecretId\":\"keybroker/t1\",\"ClientRequestToken\":"
                                    "\"tok-2\",\"SecretString\":\"v2\","
                                    "\"VersionStages\":[\"AWSPENDING\"]}");
    kb_secret_destroy(value);
    cap_respond(200, "{\"ARN\":\"" ARN "\",\"Name\":\"keybroker/t1\",\"VersionId\":\"tok-2\","
                     "\"VersionStages\":[\"AWSPENDING\"]}");
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.version, "tok-2");
    assert_string_equal(r.stages, "AWSPENDING;");

    memset(&r, 0, sizeof(r));
    value = kb_secret_new("v2", 2);
    in.secret_string = value;
    assert_int_equal(kb_sm_put_secret_value(NULL, &in, on_ref, &r), 0);
    kb_secret_destroy(value);
    cap_respond(200, "{\"ARN\":\"" ARN "\",\"Name\":\"keybroker/t1\"}");
    assert_int_equal(r.g.err, KB_EPARSE);
    assert_non_null(strstr(r.g.message, "VersionId"));

    in.secret_string = NULL;
    assert_int_equal(kb_sm_put_secret_value(NULL, &in, on_ref, &r), KB_EINVAL);
}

static void test_update_secret_version_stage(void **state)
{
    struct kb_sm_update_secret_version_stage_input in = {"keybroker/t1", "AWSCURRENT", "v2", "v1"};
    struct ref_got r = {0};

    assert_int_equal(kb_sm_update_secret_version_stage(NULL, &in, on_ref, &r), 0);
    assert_string_equal(g_cap.headers, SM_HEADERS("UpdateSecretVersionStage"));
    assert_false(g_cap.sensitive);
    assert_string_equal(g_cap.body, "{\"SecretId\":\"keybroker/t1\",\"VersionStage\":"
                                    "\"AWSCURRENT\",\"MoveToVersionId\":\"v2\","
                                    "\"RemoveFromVersionId\":\"v1\"}");
    cap_respond(200, "{\"ARN\":\"" ARN "\",\"Name\":\"keybroker/t1\"}");
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.arn, ARN);
    in.move_to_version_id = in.remove_from_version_id = NULL;
    assert_int_equal(kb_sm_update_secret_version_stage(NULL, &in, on_ref, &r), KB_EINVAL);
}

struct desc_got {
    struct got g;
    char arn[128], name[64], kms[64], desc[64], tags[128], versions[256];
    time_t created, changed, deleted;
};

static void on_desc(void *ctx, const struct kb_aws_error *err, const struct kb_sm_description *d)
{
    struct desc_got *r = ctx;
    size_t off = 0;

    r->g.calls++;
    if (err != NULL) {
        got_error(&r->g, err);
        return;
    }
    cap_copy(r->arn, sizeof(r->arn), d->arn);
    cap_copy(r->name, sizeof(r->name), d->name);
    cap_copy(r->kms, sizeof(r->kms), d->kms_key_id);
    cap_copy(r->desc, sizeof(r->desc), d->description);
    cap_join_tags(r->tags, sizeof(r->tags), d->tags, d->tag_count);
    for (size_t i = 0; i < d->version_count; i++) {
        off += (size_t)snprintf(r->versions + off, sizeof(r->versions) - off,
                                "%s:", d->versions[i].version_id);
        for (size_t j = 0; j < d->versions[i].stage_count; j++)
            off += (size_t)snprintf(r->versions + off, sizeof(r->versions) - off, "%s,",
                                    d->versions[i].stages[j]);
        off += (size_t)snprintf(r->versions + off, sizeof(r->versions) - off, ";");
    }
    r->created = d->created_date;
    r->changed = d->last_changed_date;
    r->deleted = d->deleted_date;
}

static void test_describe_secret(void **state)
{
    struct desc_got r = {0};

    assert_int_equal(
        kb_sm_describe_secret(NULL, &(struct kb_sm_secret_input){"keybroker/t1"}, on_desc, &r), 0);
    assert_string_equal(g_cap.headers, SM_HEADERS("DescribeSecret"));
    assert_string_equal(g_cap.body, "{\"SecretId\":\"keybroker/t1\"}");
    cap_respond(200, "{\"ARN\":\"" ARN "\",\"Name\":\"keybroker/t1\",\"Description\":\"kb key\","
                     "\"KmsKeyId\":\"alias/kb\",\"RotationEnabled\":false,"
                     "\"LastChangedDate\":1.523477145729E9,\"CreatedDate\":1523477145.0,"
                     "\"Tags\":[{\"Key\":\"keybroker:tenant\",\"Value\":\"t1\"},"
                     "{\"Key\":\"keybroker:managed\",\"Value\":\"true\"}],"
                     "\"VersionIdsToStages\":{\"v1\":[\"AWSPREVIOUS\"],"
                     "\"v2\":[\"AWSCURRENT\",\"AWSPENDING\"],\"v3\":[]},"
                     "\"DeletedDate\":1700000000}");
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.arn, ARN);
    assert_string_equal(r.name, "keybroker/t1");
    assert_string_equal(r.kms, "alias/kb");
    assert_string_equal(r.desc, "kb key");
    assert_string_equal(r.tags, "keybroker:tenant=t1;keybroker:managed=true;");
    assert_string_equal(r.versions, "v1:AWSPREVIOUS,;v2:AWSCURRENT,AWSPENDING,;v3:;");
    assert_int_equal(r.created, 1523477145);
    assert_int_equal(r.changed, 1523477145);
    assert_int_equal(r.deleted, 1700000000);

    /* the minimum AWS answers with */
    memset(&r, 0, sizeof(r));
    assert_int_equal(
        kb_sm_describe_secret(NULL, &(struct kb_sm_secret_input){"keybroker/t1"}, on_desc, &r), 0);
    cap_respond(200, "{\"ARN\":\"" ARN "\",\"Name\":\"keybroker/t1\"}");
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.kms, "(null)");
    assert_string_equal(r.versions, "");
    assert_int_equal(r.deleted, 0);
}

static void test_describe_secret_malformed(void **state)
{
    static const char *const bodies[] = {
        "",
        "{\"ARN\":\"" ARN "\",\"Name\":\"n\"",           /* truncated */
        "{\"ARN\":\"" ARN "\",\"Name\":\"n\"} trailing", /* garbage after */
        "[\"ARN\"]",                                     /* not an object */
        "{\"Name\":\"n\"}",                              /* no ARN */
        "{\"ARN\":42,\"Name\":\"n\"}",                   /* wrong type */
        "{\"ARN\":\"" ARN "\",\"Name\":\"n\",\"VersionIdsToStages\":[\"v1\"]}",
        "{\"ARN\":\"" ARN "\",\"Name\":\"n\",\"VersionIdsToStages\":{\"v1\":\"AWSCURRENT\"}}",
        "{\"ARN\":\"" ARN "\",\"Name\":\"n\",\"VersionIdsToStages\":{\"v1\":[1]}}",
        "{\"ARN\":\"" ARN "\",\"Name\":\"n\",\"DeletedDate\":\"yesterday\"}",
        "{\"ARN\":\"" ARN "\",\"Name\":\"n\",\"DeletedDate\":-5}",
        "{\"ARN\":\"" ARN "\",\"Name\":\"n\",\"Tags\":[{\"Value\":\"v\"}]}",
        "{\"ARN\":\"" ARN "\",\"Name\":\"n\",\"Tags\":{}}",
        "{\"ARN\":\"" ARN "\",\"Name\":\"n\",\"VersionIdsToStages\":{\"\":[]}}",
        "{\"ARN\":\"keybroker/t1\",\"Name\":\"n\"}", /* not an ARN */
        "{\"ARN\":\"arn:aws:secretsmanager:us-east-1:1:secret:a b\",\"Name\":\"n\"}",
    };
    static const char *const field[] = {
        "empty",
        "truncated",
        "data after",
        "not a JSON object",
        "ARN missing",
        "ARN is not a string",
        "VersionIdsToStages",
        "VersionIdsToStages",
        "VersionIdsToStages",
        "DeletedDate",
        "DeletedDate",
        "Key missing",
        "Tags is not an array",
        "bad id",
        "ARN is not an ARN",
        "ARN is not an ARN",
    };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct desc_got r = {0};

        assert_int_equal(
            kb_sm_describe_secret(NULL, &(struct kb_sm_secret_input){"n"}, on_desc, &r), 0);
        cap_respond(200, bodies[i]);
        assert_int_equal(r.g.calls, 1);
        assert_int_equal(r.g.err, KB_EPARSE);
        if (strstr(r.g.message, field[i]) == NULL)
            fail_msg("body %zu: message \"%s\" lacks \"%s\"", i, r.g.message, field[i]);
        assert_non_null(strstr(r.g.message, "DescribeSecret: "));
    }
}

struct versions_got {
    struct got g;
    char joined[256];
    char next[32];
};

static void on_versions(void *ctx, const struct kb_aws_error *err, const struct kb_sm_versions *v)
{
    struct versions_got *r = ctx;
    size_t off = 0;

    r->g.calls++;
    if (err != NULL) {
        got_error(&r->g, err);
        return;
    }
    for (size_t i = 0; i < v->version_count; i++) {
        off += (size_t)snprintf(
            r->joined + off, sizeof(r->joined) - off, "%s@%lld/%lld:", v->versions[i].version_id,
            (long long)v->versions[i].created_date, (long long)v->versions[i].last_accessed_date);
        for (size_t j = 0; j < v->versions[i].stage_count; j++)
            off += (size_t)snprintf(r->joined + off, sizeof(r->joined) - off, "%s,",
                                    v->versions[i].stages[j]);
        off += (size_t)snprintf(r->joined + off, sizeof(r->joined) - off, ";");
    }
    cap_copy(r->next, sizeof(r->next), v->next_token);
}

static void test_list_secret_version_ids(void **state)
{
    struct kb_sm_list_versions_input in = {"keybroker/t1", true, 50, "tok"};
    struct versions_got r = {0};

    assert_int_equal(kb_sm_list_secret_version_ids(NULL, &in, on_versions, &r), 0);
    assert_string_equal(g_cap.headers, SM_HEADERS("ListSecretVersionIds"));
    assert_string_equal(g_cap.body, "{\"SecretId\":\"keybroker/t1\",\"MaxResults\":50,"
                                    "\"NextToken\":\"tok\",\"IncludeDeprecated\":true}");
    cap_respond(200, "{\"ARN\":\"" ARN "\",\"Name\":\"keybroker/t1\",\"Versions\":["
                     "{\"VersionId\":\"v1\",\"VersionStages\":[\"AWSPREVIOUS\"],"
                     "\"CreatedDate\":1700000000.5,\"LastAccessedDate\":1700086400,"
                     "\"KmsKeyIds\":[\"DefaultEncryptionKey\"]},"
                     "{\"VersionId\":\"v2\",\"VersionStages\":[\"AWSCURRENT\"],"
                     "\"CreatedDate\":1700000100},"
                     "{\"VersionId\":\"v0\",\"CreatedDate\":1690000000}],"
                     "\"NextToken\":\"more\"}");
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.joined, "v1@1700000000/1700086400:AWSPREVIOUS,;"
                                  "v2@1700000100/0:AWSCURRENT,;v0@1690000000/0:;");
    assert_string_equal(r.next, "more");

    memset(&r, 0, sizeof(r));
    in = (struct kb_sm_list_versions_input){.secret_id = "s"};
    assert_int_equal(kb_sm_list_secret_version_ids(NULL, &in, on_versions, &r), 0);
    assert_string_equal(g_cap.body, "{\"SecretId\":\"s\"}");
    cap_respond(200, "{\"ARN\":\"" ARN "\",\"Name\":\"s\",\"Versions\":[{\"VersionStages\":[]}]}");
    assert_int_equal(r.g.err, KB_EPARSE);
    assert_non_null(strstr(r.g.message, "VersionId missing"));
    in.max_results = 101;
    assert_int_equal(kb_sm_list_secret_version_ids(NULL, &in, on_versions, &r), KB_EINVAL);
}

struct list_got {
    struct got g;
    char joined[1024];
    char next[32];
    size_t count;
};

static void on_list(void *ctx, const struct kb_aws_error *err, const struct kb_sm_secret_list *l)
{
    struct list_got *r = ctx;
    size_t off = 0;

    r->g.calls++;
    if (err != NULL) {
        got_error(&r->g, err);
        return;
    }
    r->count = l->count;
    for (size_t i = 0; i < l->count; i++) {
        const struct kb_sm_list_entry *e = &l->secrets[i];
        char tags[128];

        cap_join_tags(tags, sizeof(tags), e->tags, e->tag_count);
        off +=
            (size_t)snprintf(r->joined + off, sizeof(r->joined) - off, "%s|%s|%s|%lld|",
                             e->name != NULL ? e->name : "(null)",
                             e->arn != NULL ? "arn" : "(null)", tags, (long long)e->deleted_date);
        for (size_t v = 0; v < e->version_count; v++) {
            off += (size_t)snprintf(r->joined + off, sizeof(r->joined) - off,
                                    "%s:", e->versions[v].version_id);
            for (size_t j = 0; j < e->versions[v].stage_count; j++)
                off += (size_t)snprintf(r->joined + off, sizeof(r->joined) - off, "%s,",
                                        e->versions[v].stages[j]);
        }
        off += (size_t)snprintf(r->joined + off, sizeof(r->joined) - off, ";");
    }
    cap_copy(r->next, sizeof(r->next), l->next_token);
}

static void test_list_secrets_request_and_page(void **state)
{
    static const char *const tag_key[] = {"keybroker:tenant"};
    static const char *const prefix[] = {"keybroker/"};
    const struct kb_sm_filter filters[] = {{"tag-key", tag_key, 1}, {"name", prefix, 1}};
    struct kb_sm_list_secrets_input in = {filters, 2, 100, NULL, false};
    struct list_got r = {0};

    (void)state;
    assert_int_equal(kb_sm_list_secrets(NULL, &in, on_list, &r), 0);
    assert_string_equal(g_cap.headers, SM_HEADERS("ListSecrets"));
    assert_string_equal(g_cap.body, "{\"MaxResults\":100,\"Filters\":["
                                    "{\"Key\":\"tag-key\",\"Values\":[\"keybroker:tenant\"]},"
                                    "{\"Key\":\"name\",\"Values\":[\"keybroker/\"]}]}");
    /* AWS's shape: a page with a NextToken, one entry with everything, one with the minimum. */
    cap_respond(200, "{\"SecretList\":[{\"ARN\":\"" ARN "\",\"Name\":\"keybroker/t1\","
                     "\"RotationEnabled\":false,\"LastChangedDate\":1.523477145729E9,"
                     "\"LastAccessedDate\":1523404800,\"CreatedDate\":1523477145.0,"
                     "\"Tags\":[{\"Key\":\"keybroker:tenant\",\"Value\":\"t1\"},"
                     "{\"Key\":\"keybroker:managed\",\"Value\":\"true\"}],"
                     "\"SecretVersionsToStages\":{\"v1\":[\"AWSPREVIOUS\"],"
                     "\"v2\":[\"AWSCURRENT\"]},\"OwningService\":\"x\","
                     "\"PrimaryRegion\":\"us-east-1\"},"
                     "{\"Name\":\"keybroker/t2\"}],"
                     "\"NextToken\":\"page2\"}");
    assert_int_equal(r.g.err, 0);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.joined, "keybroker/t1|arn|keybroker:tenant=t1;keybroker:managed=true;|0|"
                                  "v1:AWSPREVIOUS,v2:AWSCURRENT,;"
                                  "keybroker/t2|(null)||0|;");
    assert_string_equal(r.next, "page2");

    /* the next page, the last one */
    memset(&r, 0, sizeof(r));
    in.next_token = "page2";
    in.include_planned_deletion = true;
    assert_int_equal(kb_sm_list_secrets(NULL, &in, on_list, &r), 0);
    assert_non_null(strstr(g_cap.body, "\"NextToken\":\"page2\""));
    assert_non_null(strstr(g_cap.body, "\"IncludePlannedDeletion\":true"));
    cap_respond(200, "{\"SecretList\":[{\"ARN\":\"" ARN "\",\"Name\":\"keybroker/t3\","
                     "\"DeletedDate\":1700000000,\"Tags\":[]}]}");
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.joined, "keybroker/t3|arn||1700000000|;");
    assert_string_equal(r.next, "(null)");

    /* an empty account: no SecretList at all is what botocore accepts too */
    memset(&r, 0, sizeof(r));
    in = (struct kb_sm_list_secrets_input){0};
    assert_int_equal(kb_sm_list_secrets(NULL, &in, on_list, &r), 0);
    assert_string_equal(g_cap.body, "{}");
    cap_respond(200, "{}");
    assert_int_equal(r.g.err, 0);
    assert_int_equal(r.count, 0);
}

/* moto 5.x writes nulls for absent members, an empty Tags array, RotationRules and a null
 * NextToken on the last page. */
static void test_list_secrets_moto_body(void **state)
{
    struct kb_sm_list_secrets_input in = {0};
    struct list_got r = {0};

    (void)state;
    assert_int_equal(kb_sm_list_secrets(NULL, &in, on_list, &r), 0);
    cap_respond(200, "{\"SecretList\": [{\"ARN\": \"" ARN "\", \"Name\": \"keybroker/t1\", "
                     "\"Description\": null, \"KmsKeyId\": null, \"RotationEnabled\": false, "
                     "\"RotationLambdaARN\": null, \"RotationRules\": {}, "
                     "\"LastRotatedDate\": null, \"LastChangedDate\": 1700000000.123, "
                     "\"LastAccessedDate\": null, \"DeletedDate\": null, \"Tags\": [], "
                     "\"SecretVersionsToStages\": {\"3c1f-aaaa\": [\"AWSCURRENT\"]}, "
                     "\"CreatedDate\": 1700000000.0, \"ReplicationStatus\": []}], "
                     "\"NextToken\": null}");
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.joined, "keybroker/t1|arn||0|3c1f-aaaa:AWSCURRENT,;");
    assert_string_equal(r.next, "(null)");
}

static void test_list_secrets_malformed(void **state)
{
    static const char *const bodies[] = {
        "[]",
        "{\"SecretList\":{}}",
        "{\"SecretList\":[42]}",
        "{\"SecretList\":[{\"ARN\":\"keybroker/t1\"}]}",
        "{\"SecretList\":[{\"Name\":7}]}",
        "{\"SecretList\":[{\"Name\":\"n\",\"SecretVersionsToStages\":[]}]}",
        "{\"SecretList\":[{\"Name\":\"n\",\"SecretVersionsToStages\":{\"v\":\"AWSCURRENT\"}}]}",
        "{\"SecretList\":[{\"Name\":\"n\",\"Tags\":[{\"Value\":\"v\"}]}]}",
        "{\"SecretList\":[{\"Name\":\"n\",\"DeletedDate\":\"soon\"}]}",
        "{\"SecretList\":[],\"NextToken\":5}",
        "{\"SecretList\":[]",
    };
    static const char *const field[] = {
        "not a JSON object",
        "SecretList is not an array",
        "SecretList holds a non-object",
        "ARN is not an ARN",
        "Name",
        "SecretVersionsToStages is not an object",
        "SecretVersionsToStages",
        "Key missing",
        "DeletedDate",
        "NextToken",
        "truncated",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct list_got r = {0};

        assert_int_equal(
            kb_sm_list_secrets(NULL, &(struct kb_sm_list_secrets_input){0}, on_list, &r), 0);
        cap_respond(200, bodies[i]);
        assert_int_equal(r.g.calls, 1);
        assert_int_equal(r.g.err, KB_EPARSE);
        if (strstr(r.g.message, field[i]) == NULL)
            fail_msg("body %zu: message \"%s\" lacks \"%s\"", i, r.g.message, field[i]);
        assert_non_null(strstr(r.g.message, "ListSecrets: "));
    }
}

static void test_list_secrets_input_validation(void **state)
{
    static const char *const ok[] = {"keybroker/"};
    static const char *const bad[] = {"a\"b"};
    static const char *const many[11] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"};
    struct kb_sm_filter f = {"name", ok, 1};
    struct kb_sm_list_secrets_input in = {&f, 1, 0, NULL, false};

    (void)state;
    in.max_results = 101;
    assert_int_equal(kb_sm_list_secrets(NULL, &in, on_list, NULL), KB_EINVAL);
    in.max_results = 0;
    in.next_token = "";
    assert_int_equal(kb_sm_list_secrets(NULL, &in, on_list, NULL), KB_EINVAL);
    in.next_token = NULL;
    f.key = "names";
    assert_int_equal(kb_sm_list_secrets(NULL, &in, on_list, NULL), KB_EINVAL);
    f.key = "name";
    f.values = bad;
    assert_int_equal(kb_sm_list_secrets(NULL, &in, on_list, NULL), KB_EINVAL);
    f.values = many;
    f.value_count = 11;
    assert_int_equal(kb_sm_list_secrets(NULL, &in, on_list, NULL), KB_EINVAL);
    f.value_count = 0;
    assert_int_equal(kb_sm_list_secrets(NULL, &in, on_list, NULL), KB_EINVAL);
    in.filters = NULL;
    assert_int_equal(kb_sm_list_secrets(NULL, &in, on_list, NULL), KB_EINVAL);
    assert_int_equal(kb_sm_list_secrets(NULL, NULL, on_list, NULL), KB_EINVAL);
    assert_int_equal(g_cap.sends, 0);
}

struct deletion_got {
    struct got g;
    char arn[128];
    time_t when;
};

static void on_deletion(void *ctx, const struct kb_aws_error *err, const struct kb_sm_deletion *d)
{
    struct deletion_got *r = ctx;

    r->g.calls++;
    if (err != NULL) {
        got_error(&r->g, err);
        return;
    }
    cap_copy(r->arn, sizeof(r->arn), d->arn);
    r->when = d->deletion_date;
}

static void test_delete_secret(void **state)
{
    struct kb_sm_delete_secret_input in = {"keybroker/t1", 7, false};
    struct deletion_got r = {0};

    assert_int_equal(kb_sm_delete_secret(NULL, &in, on_deletion, &r), 0);
    assert_string_equal(g_cap.headers, SM_HEADERS("DeleteSecret"));
    assert_string_equal(g_cap.body, "{\"SecretId\":\"keybroker/t1\",\"RecoveryWindowInDays\":7}");
    cap_respond(200, "{\"ARN\":\"" ARN "\",\"Name\":\"keybroker/t1\","
                     "\"DeletionDate\":1700604800.123}");
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.arn, ARN);
    assert_int_equal(r.when, 1700604800);

    in = (struct kb_sm_delete_secret_input){"keybroker/t1", 0, true};
    assert_int_equal(kb_sm_delete_secret(NULL, &in, on_deletion, &r), 0);
    assert_string_equal(g_cap.body,
                        "{\"SecretId\":\"keybroker/t1\",\"ForceDeleteWithoutRecovery\":true}");
    cap_fail(KB_EAWS, 400, "ResourceNotFoundException");
    assert_int_equal(r.g.err, KB_EAWS);

    in = (struct kb_sm_delete_secret_input){"keybroker/t1", 7, true};
    assert_int_equal(kb_sm_delete_secret(NULL, &in, on_deletion, &r), KB_EINVAL);
    in = (struct kb_sm_delete_secret_input){"keybroker/t1", 31, false};
    assert_int_equal(kb_sm_delete_secret(NULL, &in, on_deletion, &r), KB_EINVAL);
}

static void test_tag_resource(void **state)
{
    struct got g = {0};

    assert_int_equal(
        kb_sm_tag_resource(NULL, &(struct kb_sm_tag_resource_input){ARN, s_tags, 1}, on_done, &g),
        0);
    assert_string_equal(g_cap.headers, SM_HEADERS("TagResource"));
    assert_string_equal(g_cap.body, "{\"SecretId\":\"" ARN "\",\"Tags\":[{\"Key\":"
                                    "\"keybroker:tenant\",\"Value\":\"t1\"}]}");
    cap_respond(200, "");
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.err, 0);
    assert_int_equal(
        kb_sm_tag_resource(NULL, &(struct kb_sm_tag_resource_input){ARN, s_tags, 0}, on_done, &g),
        KB_EINVAL);
}

struct value_got {
    struct got g;
    int take;
    char version[32], stages[64];
    time_t created;
    struct kb_secret *secret;
};

static void on_value(void *ctx, const struct kb_aws_error *err, struct kb_sm_secret_value *v)
{
    struct value_got *r = ctx;
    size_t off = 0;

    r->g.calls++;
    if (err != NULL) {
        got_error(&r->g, err);
        return;
    }
    cap_copy(r->version, sizeof(r->version), v->version_id);
    for (size_t i = 0; i < v->stage_count; i++)
        off += (size_t)snprintf(r->stages + off, sizeof(r->stages) - off, "%s;", v->stages[i]);
    r->created = v->created_date;
    assert_non_null(v->secret_string);
    if (r->take) {
        r->secret = v->secret_string;
        v->secret_string = NULL;
    }
}

static const char s_value_json[] =
    "{\"ARN\":\"" ARN "\",\"Name\":\"keybroker/t1\",\"VersionId\":\"v2\","
    "\"SecretString\":\"" KEY_JSON_ESCAPED "\",\"VersionStages\":[\"AWSCURRENT\"],"
    "\"CreatedDate\":1.700000100E9}";

static void test_get_secret_value(void **state)
{
    struct kb_sm_get_secret_value_input in = {"keybroker/t1", NULL, "AWSPENDING"};
    struct value_got r = {.take = 1};

    assert_int_equal(kb_sm_get_secret_value(NULL, &in, on_value, &r), 0);
    assert_string_equal(g_cap.headers, SM_HEADERS("GetSecretValue"));
    assert_true(g_cap.sensitive); /* the response holds the secret */
    assert_string_equal(g_cap.body,
                        "{\"SecretId\":\"keybroker/t1\",\"VersionStage\":\"AWSPENDING\"}");
    cap_respond(200, s_value_json);
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.version, "v2");
    assert_string_equal(r.stages, "AWSCURRENT;");
    assert_int_equal(r.created, 1700000100);
    assert_non_null(r.secret);
    assert_true(kb_secret_equals(r.secret, KEY_JSON, strlen(KEY_JSON)));
    kb_secret_destroy(r.secret);

    /* not taken: destroyed after the callback (ASan's leak check) */
    memset(&r, 0, sizeof(r));
    assert_int_equal(kb_sm_get_secret_value(NULL, &in, on_value, &r), 0);
    cap_respond(200, s_value_json);
    assert_int_equal(r.g.err, 0);
    assert_null(r.secret);
}

static void test_get_secret_value_malformed(void **state)
{
    static const char *const bodies[] = {
        "{\"ARN\":\"" ARN "\",\"Name\":\"n\",\"VersionId\":\"v\"}",
        "{\"ARN\":\"" ARN "\",\"Name\":\"n\",\"VersionId\":\"v\",\"SecretBinary\":\"AAEC\"}",
        "{\"ARN\":\"" ARN "\",\"Name\":\"n\",\"VersionId\":\"v\",\"SecretString\":{\"x\":1}}",
        "{\"ARN\":\"" ARN "\",\"Name\":\"n\",\"VersionId\":\"v\",\"SecretString\":\"hunter2",
        "{\"ARN\":\"" ARN "\",\"Name\":\"n\",\"SecretString\":\"hunter2\"}",
    };
    static const char *const field[] = {"SecretString", "SecretString", "SecretString", "truncated",
                                        "VersionId"};

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct value_got r = {.take = 1};

        assert_int_equal(
            kb_sm_get_secret_value(NULL, &(struct kb_sm_get_secret_value_input){.secret_id = "n"},
                                   on_value, &r),
            0);
        cap_respond(200, bodies[i]);
        assert_int_equal(r.g.calls, 1);
        assert_int_equal(r.g.err, KB_EPARSE);
        assert_non_null(strstr(r.g.message, field[i]));
        assert_null(strstr(r.g.message, "hunter2"));
        assert_null(r.secret);
    }
}

static void test_input_validation(void **state)
{
    struct ref_got r = {0};
    struct kb_secret *empty = kb_secret_new("", 0);

    assert_int_equal(kb_sm_create_secret(NULL, NULL, on_ref, &r), KB_EINVAL);
    assert_int_equal(
        kb_sm_create_secret(NULL, &(struct kb_sm_create_secret_input){.name = ""}, on_ref, &r),
        KB_EINVAL);
    assert_int_equal(kb_sm_create_secret(
                         NULL,
                         &(struct kb_sm_create_secret_input){.name = "n", .secret_string = empty},
                         on_ref, &r),
                     KB_EINVAL);
    assert_int_equal(kb_sm_describe_secret(NULL, &(struct kb_sm_secret_input){NULL}, NULL, NULL),
                     KB_EINVAL);
    assert_int_equal(g_cap.sends, 0);
    kb_secret_destroy(empty);
}

static void test_sender_failure_wipes_and_returns(void **state)
{
    struct kb_secret *value = kb_secret_new("v", 1);
    struct kb_sm_put_secret_value_input in = {.secret_id = "s", .secret_string = value};
    struct ref_got r = {0};

    g_cap.send_rc = KB_ENOMEM;
    assert_int_equal(kb_sm_put_secret_value(NULL, &in, on_ref, &r), KB_ENOMEM);
    assert_int_equal(r.g.calls, 0);
    assert_true(kb_secret_equals(value, "v", 1));
    kb_secret_destroy(value);
}

/* -- the key secret ------------------------------------------------------------------------------
 */

static void test_key_secret_roundtrip(void **state)
{
    const char *sk = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
    struct kb_secret *skey = kb_secret_new(sk, strlen(sk));
    struct kb_secret *value = NULL;
    struct kb_sm_key_secret parsed;

    assert_int_equal(
        kb_sm_key_secret_new("AKIAIOSFODNN7EXAMPLE", skey, "kb-t1", "us-east-1", &value), 0);
    assert_non_null(value);
    assert_true(kb_secret_equals(value, KEY_JSON, strlen(KEY_JSON)));
    assert_int_equal(kb_sm_key_secret_parse(value, &parsed), 0);
    assert_string_equal(parsed.access_key_id, "AKIAIOSFODNN7EXAMPLE");
    assert_string_equal(parsed.bucket, "kb-t1");
    assert_string_equal(parsed.region, "us-east-1");
    assert_true(kb_secret_equals(parsed.secret_access_key, sk, strlen(sk)));
    kb_secret_destroy(parsed.secret_access_key);
    kb_secret_destroy(value);
    assert_int_equal(kb_sm_key_secret_new("AKIA", skey, "", "us-east-1", &value), KB_EINVAL);
    assert_null(value);
    kb_secret_destroy(skey);
}

static void test_key_secret_parse_refuses(void **state)
{
    static const char *const bad[] = {
        "",
        "not json",
        "{\"Version\":2,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"hunter2\",\"Bucket\":\"b\","
        "\"Region\":\"r\"}",
        "{\"Version\":1,\"AccessKeyId\":\"A\",\"Bucket\":\"b\",\"Region\":\"r\"}",
        "{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"hunter2\",\"Bucket\":\"b\"}",
        "{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"hunter2\",\"Bucket\":\"b\","
        "\"Region\":\"a-region-name-that-is-much-longer-than-sixty-four-bytes-allowed-here-x\"}",
        "{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"hunter2\"",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct kb_secret *v = kb_secret_new(bad[i], strlen(bad[i]));
        struct kb_sm_key_secret out;

        assert_int_equal(kb_sm_key_secret_parse(v, &out), KB_EPARSE);
        assert_null(out.secret_access_key);
        kb_secret_destroy(v);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_secret_request, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_create_secret_escapes_control_characters, cap_setup,
                                        cap_teardown),
        cmocka_unit_test_setup_teardown(test_create_secret_without_value, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_put_secret_value, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_update_secret_version_stage, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_describe_secret, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_describe_secret_malformed, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_list_secret_version_ids, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_list_secrets_request_and_page, cap_setup,
                                        cap_teardown),
        cmocka_unit_test_setup_teardown(test_list_secrets_moto_body, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_list_secrets_malformed, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_list_secrets_input_validation, cap_setup,
                                        cap_teardown),
        cmocka_unit_test_setup_teardown(test_delete_secret, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_tag_resource, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_get_secret_value, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_get_secret_value_malformed, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_input_validation, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_sender_failure_wipes_and_returns, cap_setup,
                                        cap_teardown),
        cmocka_unit_test_setup_teardown(test_key_secret_roundtrip, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_key_secret_parse_refuses, cap_setup, cap_teardown),
    };

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
