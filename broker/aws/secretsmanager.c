/*
 * secretsmanager.c - Secrets Manager over the JSON 1.1 protocol: POST / with
 * X-Amz-Target: secretsmanager.<Operation> and a json-c body, JSON results.
 *
 * Each call checks its input, builds a json-c object, and serializes it through
 * kb_jsonw_serialize(), which hands the text to kb_svc_send (the client copies it) and then wipes
 * it when it held a secret. The key-secret helpers at the end build and read the value format of
 * DESIGN.md section 5 with the same secret-safe json-c paths.
 */
#include "aws/secretsmanager.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "aws/jsonwire.h"
#include "aws/wire.h"

#define S_MAX_STAGES 20

/* What s_use needs to send a serialized body. */
struct s_send_ctx {
    struct kb_aws_client *c;
    const struct kb_svc_op *op;
    bool sensitive;
    kb_svc_fn cb;
    void *ctx;
};

static int s_use(void *arg, const char *body, size_t len)
{
    struct s_send_ctx *s = arg;
    char target[96];
    struct kb_http_header headers[2] = {
        {"Content-Type", "application/x-amz-json-1.1"},
        {"X-Amz-Target", target},
    };
    struct kb_aws_request req = {0};

    snprintf(target, sizeof(target), "secretsmanager.%s", s->op->name);
    req.service = KB_AWS_SECRETSMANAGER;
    req.method = "POST";
    req.path = "/";
    req.headers = headers;
    req.header_count = 2;
    req.body = body;
    req.body_len = len;
    req.sensitive = s->sensitive;
    return kb_svc_send(s->c, s->op, &req, s->cb, s->ctx);
}

/* A request object whose first member is key: value ("SecretId" or "Name"). Returns 0 or
 * KB_ENOMEM; *obj (possibly NULL) goes to s_send either way. */
static int s_new(const char *key, const char *value, struct json_object **obj)
{
    *obj = json_object_new_object();
    return *obj != NULL ? kb_jsonw_add_str(*obj, key, value) : KB_ENOMEM;
}

/* Sends obj when rc (what building it returned) is 0, and releases obj whatever happens;
 * slot/secret as in kb_jsonw_serialize. */
static int s_send(struct kb_aws_client *c, const struct kb_svc_op *op, int rc,
                  struct json_object *obj, struct json_object *slot, struct kb_secret *secret,
                  bool sensitive, kb_svc_fn cb, void *ctx)
{
    struct s_send_ctx s = {c, op, sensitive || secret != NULL, cb, ctx};

    if (rc == 0)
        rc = kb_jsonw_serialize(obj, slot, secret, s_use, &s);
    json_object_put(obj);
    return rc;
}

/* -- response parsing ------------------------------------------------------------------------- */

/* Parses the body; fn fills the result from the object. */
static int s_parse_with(struct kb_svc_parse *p, const struct kb_aws_response *resp, bool sensitive,
                        int (*fn)(struct kb_svc_parse *, struct json_object *, void *),
                        void *result)
{
    struct json_object *obj;
    int rc = kb_jsonw_parse(p, resp->body, resp->body_len, sensitive, &obj);

    if (rc != 0)
        return rc;
    rc = fn(p, obj, result);
    kb_jsonw_free(obj, sensitive);
    return rc;
}

static int s_arn_name(struct kb_svc_parse *p, struct json_object *o, const char **arn,
                      const char **name)
{
    int rc = kb_jsonw_str(p, o, "ARN", KB_WIRE_MAX_ARN, true, arn);

    if (rc == 0 && !kb_wire_arn_ok(*arn))
        return kb_svc_fail(p, KB_EPARSE, "response field ARN is not an ARN");
    return rc != 0 ? rc : kb_jsonw_str(p, o, "Name", KB_WIRE_MAX_NAME, true, name);
}

static int s_ref_obj(struct kb_svc_parse *p, struct json_object *o, void *result)
{
    struct kb_sm_secret_ref *r = result;
    int rc = s_arn_name(p, o, &r->arn, &r->name);

    if (rc == 0)
        rc = kb_jsonw_str(p, o, "VersionId", KB_WIRE_MAX_ID, false, &r->version_id);
    if (rc == 0)
        rc = kb_jsonw_strings(p, o, "VersionStages", KB_WIRE_MAX_ID, false, &r->stages,
                              &r->stage_count);
    return rc;
}

static int s_parse_ref(struct kb_svc_parse *p, const struct kb_aws_response *resp, void *result)
{
    return s_parse_with(p, resp, false, s_ref_obj, result);
}

/* PutSecretValue always creates a version: its id is required there. */
static int s_put_obj(struct kb_svc_parse *p, struct json_object *o, void *result)
{
    struct kb_sm_secret_ref *r = result;
    int rc = s_ref_obj(p, o, result);

    if (rc == 0 && r->version_id == NULL)
        rc = kb_svc_fail(p, KB_EPARSE, "response field VersionId missing");
    return rc;
}

static int s_parse_put(struct kb_svc_parse *p, const struct kb_aws_response *resp, void *result)
{
    return s_parse_with(p, resp, false, s_put_obj, result);
}

/* A map of version ids to their labels, {"<version id>": ["AWSCURRENT"], ...}, in the response's
 * order: DescribeSecret's VersionIdsToStages, a ListSecrets entry's SecretVersionsToStages. */
static int s_version_map(struct kb_svc_parse *p, struct json_object *o, const char *field,
                         const struct kb_sm_version **out, size_t *count)
{
    struct json_object *map = NULL;
    struct kb_sm_version *v;
    size_t n, i = 0;
    int rc = 0;

    if (!json_object_object_get_ex(o, field, &map) || map == NULL)
        return 0;
    if (!json_object_is_type(map, json_type_object))
        return kb_svc_fail(p, KB_EPARSE, "response field %s is not an object", field);
    n = (size_t)json_object_object_length(map);
    if (n > KB_WIRE_MAX_ITEMS)
        return kb_svc_fail(p, KB_EPARSE, "response field %s too large", field);
    v = kb_svc_alloc(p->arena, n * sizeof(*v));
    if (v == NULL)
        return kb_svc_fail(p, KB_ENOMEM, "out of memory");
    json_object_object_foreach(map, key, val)
    {
        if (rc != 0 || i >= n)
            break;
        if (!kb_wire_str_ok(key, KB_WIRE_MAX_ID))
            return kb_svc_fail(p, KB_EPARSE, "response field %s has a bad id", field);
        v[i].version_id = kb_svc_strndup(p->arena, key, strlen(key));
        if (v[i].version_id == NULL)
            return kb_svc_fail(p, KB_ENOMEM, "out of memory");
        rc = kb_jsonw_string_array(p, val, field, KB_WIRE_MAX_ID, &v[i].stages, &v[i].stage_count);
        i++;
    }
    *out = v;
    *count = i;
    return rc;
}

static int s_describe_obj(struct kb_svc_parse *p, struct json_object *o, void *result)
{
    struct kb_sm_description *d = result;
    int rc = s_arn_name(p, o, &d->arn, &d->name);

    if (rc == 0)
        rc = kb_jsonw_str(p, o, "Description", KB_WIRE_MAX_DOC, false, &d->description);
    if (rc == 0)
        rc = kb_jsonw_str(p, o, "KmsKeyId", KB_WIRE_MAX_ARN, false, &d->kms_key_id);
    if (rc == 0)
        rc = kb_jsonw_tags(p, o, "Tags", &d->tags, &d->tag_count);
    if (rc == 0)
        rc = s_version_map(p, o, "VersionIdsToStages", &d->versions, &d->version_count);
    if (rc == 0)
        rc = kb_jsonw_time(p, o, "CreatedDate", false, &d->created_date);
    if (rc == 0)
        rc = kb_jsonw_time(p, o, "LastChangedDate", false, &d->last_changed_date);
    if (rc == 0)
        rc = kb_jsonw_time(p, o, "DeletedDate", false, &d->deleted_date);
    return rc;
}

static int s_parse_describe(struct kb_svc_parse *p, const struct kb_aws_response *resp,
                            void *result)
{
    return s_parse_with(p, resp, false, s_describe_obj, result);
}

static int s_version_obj(struct kb_svc_parse *p, struct json_object *e, struct kb_sm_version *v)
{
    int rc;

    if (!json_object_is_type(e, json_type_object))
        return kb_svc_fail(p, KB_EPARSE, "response field Versions holds a non-object");
    rc = kb_jsonw_str(p, e, "VersionId", KB_WIRE_MAX_ID, true, &v->version_id);
    if (rc == 0)
        rc = kb_jsonw_strings(p, e, "VersionStages", KB_WIRE_MAX_ID, false, &v->stages,
                              &v->stage_count);
    if (rc == 0)
        rc = kb_jsonw_time(p, e, "CreatedDate", false, &v->created_date);
    if (rc == 0)
        rc = kb_jsonw_time(p, e, "LastAccessedDate", false, &v->last_accessed_date);
    return rc;
}

static int s_versions_obj(struct kb_svc_parse *p, struct json_object *o, void *result)
{
    struct kb_sm_versions *r = result;
    struct json_object *arr = NULL;
    struct kb_sm_version *v;
    size_t n;
    int rc = s_arn_name(p, o, &r->arn, &r->name);

    if (rc == 0)
        rc = kb_jsonw_str(p, o, "NextToken", KB_WIRE_MAX_DOC, false, &r->next_token);
    if (rc != 0)
        return rc;
    if (!json_object_object_get_ex(o, "Versions", &arr) ||
        !json_object_is_type(arr, json_type_array))
        return kb_svc_fail(p, KB_EPARSE, "response field Versions missing");
    n = json_object_array_length(arr);
    if (n > KB_WIRE_MAX_ITEMS)
        return kb_svc_fail(p, KB_EPARSE, "response field Versions too large");
    v = kb_svc_alloc(p->arena, n * sizeof(*v));
    if (v == NULL)
        return kb_svc_fail(p, KB_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = s_version_obj(p, json_object_array_get_idx(arr, i), &v[i]);
    r->versions = v;
    r->version_count = n;
    return rc;
}

static int s_parse_versions(struct kb_svc_parse *p, const struct kb_aws_response *resp,
                            void *result)
{
    return s_parse_with(p, resp, false, s_versions_obj, result);
}

/* A SecretListEntry: every member is optional in the model; ARN, when present, is an ARN. */
static int s_entry_obj(struct kb_svc_parse *p, struct json_object *o, struct kb_sm_list_entry *e)
{
    int rc;

    if (!json_object_is_type(o, json_type_object))
        return kb_svc_fail(p, KB_EPARSE, "response field SecretList holds a non-object");
    rc = kb_jsonw_str(p, o, "ARN", KB_WIRE_MAX_ARN, false, &e->arn);
    if (rc == 0 && e->arn != NULL && !kb_wire_arn_ok(e->arn))
        return kb_svc_fail(p, KB_EPARSE, "response field ARN is not an ARN");
    if (rc == 0)
        rc = kb_jsonw_str(p, o, "Name", KB_WIRE_MAX_NAME, false, &e->name);
    if (rc == 0)
        rc = kb_jsonw_tags(p, o, "Tags", &e->tags, &e->tag_count);
    if (rc == 0)
        rc = s_version_map(p, o, "SecretVersionsToStages", &e->versions, &e->version_count);
    if (rc == 0)
        rc = kb_jsonw_time(p, o, "CreatedDate", false, &e->created_date);
    if (rc == 0)
        rc = kb_jsonw_time(p, o, "LastChangedDate", false, &e->last_changed_date);
    if (rc == 0)
        rc = kb_jsonw_time(p, o, "DeletedDate", false, &e->deleted_date);
    return rc;
}

static int s_list_obj(struct kb_svc_parse *p, struct json_object *o, void *result)
{
    struct kb_sm_secret_list *r = result;
    struct json_object *arr = NULL;
    struct kb_sm_list_entry *e;
    size_t n;
    int rc = kb_jsonw_str(p, o, "NextToken", KB_WIRE_MAX_DOC, false, &r->next_token);

    if (rc != 0 || !json_object_object_get_ex(o, "SecretList", &arr) || arr == NULL)
        return rc;
    if (!json_object_is_type(arr, json_type_array))
        return kb_svc_fail(p, KB_EPARSE, "response field SecretList is not an array");
    n = json_object_array_length(arr);
    if (n > KB_WIRE_MAX_ITEMS)
        return kb_svc_fail(p, KB_EPARSE, "response field SecretList too large");
    e = kb_svc_alloc(p->arena, n * sizeof(*e)); /* zeroed: absent members stay NULL and 0 */
    if (e == NULL)
        return kb_svc_fail(p, KB_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = s_entry_obj(p, json_object_array_get_idx(arr, i), &e[i]);
    r->secrets = e;
    r->count = n;
    return rc;
}

static int s_parse_list(struct kb_svc_parse *p, const struct kb_aws_response *resp, void *result)
{
    return s_parse_with(p, resp, false, s_list_obj, result);
}

static int s_deletion_obj(struct kb_svc_parse *p, struct json_object *o, void *result)
{
    struct kb_sm_deletion *d = result;
    int rc = s_arn_name(p, o, &d->arn, &d->name);

    return rc != 0 ? rc : kb_jsonw_time(p, o, "DeletionDate", false, &d->deletion_date);
}

static int s_parse_deletion(struct kb_svc_parse *p, const struct kb_aws_response *resp,
                            void *result)
{
    return s_parse_with(p, resp, false, s_deletion_obj, result);
}

static int s_value_obj(struct kb_svc_parse *p, struct json_object *o, void *result)
{
    struct kb_sm_secret_value *v = result;
    struct json_object *str = NULL;
    int rc = s_arn_name(p, o, &v->arn, &v->name);

    if (rc == 0)
        rc = kb_jsonw_str(p, o, "VersionId", KB_WIRE_MAX_ID, true, &v->version_id);
    if (rc == 0)
        rc = kb_jsonw_strings(p, o, "VersionStages", KB_WIRE_MAX_ID, false, &v->stages,
                              &v->stage_count);
    if (rc == 0)
        rc = kb_jsonw_time(p, o, "CreatedDate", false, &v->created_date);
    json_object_object_get_ex(o, "SecretString", &str);
    if (rc == 0 && !json_object_is_type(str, json_type_string))
        rc = kb_svc_fail(p, KB_EPARSE, "response field SecretString missing");
    if (rc == 0 && json_object_get_string_len(str) > KB_SM_MAX_SECRET)
        rc = kb_svc_fail(p, KB_EPARSE, "response field SecretString too long");
    if (rc == 0) {
        v->secret_string =
            kb_secret_new(json_object_get_string(str), (size_t)json_object_get_string_len(str));
        if (v->secret_string == NULL)
            rc = kb_svc_fail(p, KB_ENOMEM, "out of memory");
    }
    kb_jsonw_wipe_string(str);
    return rc;
}

static int s_parse_value(struct kb_svc_parse *p, const struct kb_aws_response *resp, void *result)
{
    return s_parse_with(p, resp, true, s_value_obj, result);
}

static void s_release_value(void *result)
{
    struct kb_sm_secret_value *v = result;

    kb_secret_destroy(v->secret_string);
    v->secret_string = NULL;
}

/* -- operations ------------------------------------------------------------------------------- */

KB_SVC_DELIVER(s_deliver_ref, kb_sm_ref_cb, const struct kb_sm_secret_ref)
KB_SVC_DELIVER(s_deliver_desc, kb_sm_description_cb, const struct kb_sm_description)
KB_SVC_DELIVER(s_deliver_versions, kb_sm_versions_cb, const struct kb_sm_versions)
KB_SVC_DELIVER(s_deliver_list, kb_sm_secret_list_cb, const struct kb_sm_secret_list)
KB_SVC_DELIVER(s_deliver_deletion, kb_sm_deletion_cb, const struct kb_sm_deletion)
KB_SVC_DELIVER(s_deliver_value, kb_sm_secret_value_cb, struct kb_sm_secret_value)

static const struct kb_svc_op s_op_create =
    KB_SVC_OP("CreateSecret", struct kb_sm_secret_ref, s_parse_ref, NULL, s_deliver_ref, NULL);
static const struct kb_svc_op s_op_put =
    KB_SVC_OP("PutSecretValue", struct kb_sm_secret_ref, s_parse_put, NULL, s_deliver_ref, NULL);
static const struct kb_svc_op s_op_stage = KB_SVC_OP(
    "UpdateSecretVersionStage", struct kb_sm_secret_ref, s_parse_ref, NULL, s_deliver_ref, NULL);
static const struct kb_svc_op s_op_describe = KB_SVC_OP(
    "DescribeSecret", struct kb_sm_description, s_parse_describe, NULL, s_deliver_desc, NULL);
static const struct kb_svc_op s_op_versions =
    KB_SVC_OP("ListSecretVersionIds", struct kb_sm_versions, s_parse_versions, NULL,
              s_deliver_versions, NULL);
static const struct kb_svc_op s_op_list =
    KB_SVC_OP("ListSecrets", struct kb_sm_secret_list, s_parse_list, NULL, s_deliver_list, NULL);
static const struct kb_svc_op s_op_delete = KB_SVC_OP(
    "DeleteSecret", struct kb_sm_deletion, s_parse_deletion, NULL, s_deliver_deletion, NULL);
static const struct kb_svc_op s_op_value =
    KB_SVC_OP("GetSecretValue", struct kb_sm_secret_value, s_parse_value, NULL, s_deliver_value,
              s_release_value);
KB_SVC_DONE_OP(s_op_tag, "TagResource");

#define S_ID_OK(s)       kb_wire_str_ok((s), KB_WIRE_MAX_ARN)
#define S_OPT_OK(s, max) ((s) == NULL || kb_wire_str_ok((s), (max)))

static bool s_stages_ok(const char *const *stages, size_t count)
{
    if (count > S_MAX_STAGES || (count > 0 && stages == NULL))
        return false;
    for (size_t i = 0; i < count; i++) {
        if (!kb_wire_str_ok(stages[i], KB_WIRE_MAX_ID))
            return false;
    }
    return true;
}

/* Adds key holding "" and returns it as the slot the secret will fill. */
static struct json_object *s_add_slot(struct json_object *obj, const char *key)
{
    struct json_object *slot = json_object_new_string("");

    if (slot != NULL && json_object_object_add(obj, key, slot) != 0) {
        json_object_put(slot);
        slot = NULL;
    }
    return slot;
}

static bool s_secret_ok(struct kb_secret *s)
{
    return kb_secret_len(s) > 0 && kb_secret_len(s) <= KB_SM_MAX_SECRET;
}

int kb_sm_create_secret(struct kb_aws_client *c, const struct kb_sm_create_secret_input *in,
                        kb_sm_ref_cb cb, void *ctx)
{
    struct json_object *obj, *slot = NULL;
    int rc = 0;

    if (in == NULL || !kb_wire_str_ok(in->name, 512) || !S_OPT_OK(in->client_request_token, 64) ||
        !S_OPT_OK(in->description, 2048) || !S_OPT_OK(in->kms_key_id, KB_WIRE_MAX_ARN) ||
        !kb_wire_tags_ok(in->tags, in->tag_count, false) ||
        (in->secret_string != NULL && !s_secret_ok(in->secret_string)))
        return KB_EINVAL;
    rc = s_new("Name", in->name, &obj);
    if (rc == 0 && in->client_request_token != NULL)
        rc = kb_jsonw_add_str(obj, "ClientRequestToken", in->client_request_token);
    if (rc == 0 && in->description != NULL)
        rc = kb_jsonw_add_str(obj, "Description", in->description);
    if (rc == 0 && in->kms_key_id != NULL)
        rc = kb_jsonw_add_str(obj, "KmsKeyId", in->kms_key_id);
    if (rc == 0 && in->secret_string != NULL && (slot = s_add_slot(obj, "SecretString")) == NULL)
        rc = KB_ENOMEM;
    if (rc == 0 && in->tag_count > 0)
        rc = kb_jsonw_add_tags(obj, "Tags", in->tags, in->tag_count);
    return s_send(c, &s_op_create, rc, obj, slot, in->secret_string, false, (kb_svc_fn)cb, ctx);
}

int kb_sm_put_secret_value(struct kb_aws_client *c, const struct kb_sm_put_secret_value_input *in,
                           kb_sm_ref_cb cb, void *ctx)
{
    struct json_object *obj, *slot = NULL;
    int rc;

    if (in == NULL || !S_ID_OK(in->secret_id) || !S_OPT_OK(in->client_request_token, 64) ||
        in->secret_string == NULL || !s_secret_ok(in->secret_string) ||
        !s_stages_ok(in->stages, in->stage_count))
        return KB_EINVAL;
    rc = s_new("SecretId", in->secret_id, &obj);
    if (rc == 0 && in->client_request_token != NULL)
        rc = kb_jsonw_add_str(obj, "ClientRequestToken", in->client_request_token);
    if (rc == 0 && (slot = s_add_slot(obj, "SecretString")) == NULL)
        rc = KB_ENOMEM;
    if (rc == 0 && in->stage_count > 0)
        rc = kb_jsonw_add_strings(obj, "VersionStages", in->stages, in->stage_count);
    return s_send(c, &s_op_put, rc, obj, slot, in->secret_string, false, (kb_svc_fn)cb, ctx);
}

int kb_sm_update_secret_version_stage(struct kb_aws_client *c,
                                      const struct kb_sm_update_secret_version_stage_input *in,
                                      kb_sm_ref_cb cb, void *ctx)
{
    struct json_object *obj;
    int rc;

    if (in == NULL || !S_ID_OK(in->secret_id) || !kb_wire_str_ok(in->version_stage, 256) ||
        !S_OPT_OK(in->move_to_version_id, 64) || !S_OPT_OK(in->remove_from_version_id, 64) ||
        (in->move_to_version_id == NULL && in->remove_from_version_id == NULL))
        return KB_EINVAL;
    rc = s_new("SecretId", in->secret_id, &obj);
    if (rc == 0)
        rc = kb_jsonw_add_str(obj, "VersionStage", in->version_stage);
    if (rc == 0 && in->move_to_version_id != NULL)
        rc = kb_jsonw_add_str(obj, "MoveToVersionId", in->move_to_version_id);
    if (rc == 0 && in->remove_from_version_id != NULL)
        rc = kb_jsonw_add_str(obj, "RemoveFromVersionId", in->remove_from_version_id);
    return s_send(c, &s_op_stage, rc, obj, NULL, NULL, false, (kb_svc_fn)cb, ctx);
}

/* {"SecretId": id} for the calls that need nothing else. */
static int s_id_only(struct kb_aws_client *c, const struct kb_svc_op *op, const char *id,
                     bool sensitive, kb_svc_fn cb, void *ctx)
{
    struct json_object *obj;
    int rc;

    if (!S_ID_OK(id))
        return KB_EINVAL;
    rc = s_new("SecretId", id, &obj);
    return s_send(c, op, rc, obj, NULL, NULL, sensitive, cb, ctx);
}

int kb_sm_describe_secret(struct kb_aws_client *c, const struct kb_sm_secret_input *in,
                          kb_sm_description_cb cb, void *ctx)
{
    return in == NULL ? KB_EINVAL
                      : s_id_only(c, &s_op_describe, in->secret_id, false, (kb_svc_fn)cb, ctx);
}

int kb_sm_list_secret_version_ids(struct kb_aws_client *c,
                                  const struct kb_sm_list_versions_input *in, kb_sm_versions_cb cb,
                                  void *ctx)
{
    struct json_object *obj;
    int rc;

    if (in == NULL || !S_ID_OK(in->secret_id) || in->max_results > 100 ||
        !S_OPT_OK(in->next_token, 4096))
        return KB_EINVAL;
    rc = s_new("SecretId", in->secret_id, &obj);
    if (rc == 0 && in->max_results > 0)
        rc = kb_jsonw_add(obj, "MaxResults", json_object_new_int((int)in->max_results));
    if (rc == 0 && in->next_token != NULL)
        rc = kb_jsonw_add_str(obj, "NextToken", in->next_token);
    if (rc == 0 && in->include_deprecated)
        rc = kb_jsonw_add(obj, "IncludeDeprecated", json_object_new_boolean(1));
    return s_send(c, &s_op_versions, rc, obj, NULL, NULL, false, (kb_svc_fn)cb, ctx);
}

/* A filter value as the model's FilterValueStringType allows: at most 512 characters of
 * [a-zA-Z0-9 :_@/+=.-!]. */
static bool s_filter_value_ok(const char *v)
{
    static const char extra[] = " :_@/+=.-!";

    if (v == NULL || strlen(v) > 512)
        return false;
    for (const char *c = v; *c != '\0'; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              strchr(extra, *c) != NULL))
            return false;
    }
    return true;
}

static bool s_filters_ok(const struct kb_sm_filter *f, size_t count)
{
    static const char *const keys[] = {"description",    "name",           "tag-key", "tag-value",
                                       "primary-region", "owning-service", "all"};

    if (count > 10 || (count > 0 && f == NULL))
        return false;
    for (size_t i = 0; i < count; i++) {
        bool known = false;

        for (size_t k = 0; f[i].key != NULL && k < sizeof(keys) / sizeof(keys[0]); k++)
            known = known || strcmp(f[i].key, keys[k]) == 0;
        if (!known || f[i].value_count < 1 || f[i].value_count > 10 || f[i].values == NULL)
            return false;
        for (size_t v = 0; v < f[i].value_count; v++) {
            if (!s_filter_value_ok(f[i].values[v]))
                return false;
        }
    }
    return true;
}

/* "Filters": [{"Key": ..., "Values": [...]}, ...] */
static int s_add_filters(struct json_object *obj, const struct kb_sm_filter *f, size_t count)
{
    struct json_object *arr = json_object_new_array();
    int rc = kb_jsonw_add(obj, "Filters", arr);

    for (size_t i = 0; rc == 0 && i < count; i++) {
        struct json_object *one = json_object_new_object();

        if (one == NULL || json_object_array_add(arr, one) != 0) {
            json_object_put(one);
            return KB_ENOMEM;
        }
        rc = kb_jsonw_add_str(one, "Key", f[i].key);
        if (rc == 0)
            rc = kb_jsonw_add_strings(one, "Values", f[i].values, f[i].value_count);
    }
    return rc;
}

int kb_sm_list_secrets(struct kb_aws_client *c, const struct kb_sm_list_secrets_input *in,
                       kb_sm_secret_list_cb cb, void *ctx)
{
    struct json_object *obj;
    int rc = 0;

    if (in == NULL || in->max_results > 100 || !S_OPT_OK(in->next_token, 4096) ||
        (in->next_token != NULL && in->next_token[0] == '\0') ||
        !s_filters_ok(in->filters, in->filter_count))
        return KB_EINVAL;
    obj = json_object_new_object();
    if (obj == NULL)
        rc = KB_ENOMEM;
    if (rc == 0 && in->max_results > 0)
        rc = kb_jsonw_add(obj, "MaxResults", json_object_new_int((int)in->max_results));
    if (rc == 0 && in->next_token != NULL)
        rc = kb_jsonw_add_str(obj, "NextToken", in->next_token);
    if (rc == 0 && in->filter_count > 0)
        rc = s_add_filters(obj, in->filters, in->filter_count);
    if (rc == 0 && in->include_planned_deletion)
        rc = kb_jsonw_add(obj, "IncludePlannedDeletion", json_object_new_boolean(1));
    return s_send(c, &s_op_list, rc, obj, NULL, NULL, false, (kb_svc_fn)cb, ctx);
}

int kb_sm_delete_secret(struct kb_aws_client *c, const struct kb_sm_delete_secret_input *in,
                        kb_sm_deletion_cb cb, void *ctx)
{
    struct json_object *obj;
    int rc;

    if (in == NULL || !S_ID_OK(in->secret_id) ||
        (in->recovery_window_days != 0 &&
         (in->force_delete_without_recovery || in->recovery_window_days < 7 ||
          in->recovery_window_days > 30)))
        return KB_EINVAL;
    rc = s_new("SecretId", in->secret_id, &obj);
    if (rc == 0 && in->recovery_window_days > 0)
        rc = kb_jsonw_add(obj, "RecoveryWindowInDays",
                          json_object_new_int64((int64_t)in->recovery_window_days));
    if (rc == 0 && in->force_delete_without_recovery)
        rc = kb_jsonw_add(obj, "ForceDeleteWithoutRecovery", json_object_new_boolean(1));
    return s_send(c, &s_op_delete, rc, obj, NULL, NULL, false, (kb_svc_fn)cb, ctx);
}

int kb_sm_tag_resource(struct kb_aws_client *c, const struct kb_sm_tag_resource_input *in,
                       kb_aws_done_cb cb, void *ctx)
{
    struct json_object *obj;
    int rc;

    if (in == NULL || !S_ID_OK(in->secret_id) || !kb_wire_tags_ok(in->tags, in->tag_count, true))
        return KB_EINVAL;
    rc = s_new("SecretId", in->secret_id, &obj);
    if (rc == 0)
        rc = kb_jsonw_add_tags(obj, "Tags", in->tags, in->tag_count);
    return s_send(c, &s_op_tag, rc, obj, NULL, NULL, false, (kb_svc_fn)cb, ctx);
}

int kb_sm_get_secret_value(struct kb_aws_client *c, const struct kb_sm_get_secret_value_input *in,
                           kb_sm_secret_value_cb cb, void *ctx)
{
    struct json_object *obj;
    int rc;

    if (in == NULL || !S_ID_OK(in->secret_id) || !S_OPT_OK(in->version_id, 64) ||
        !S_OPT_OK(in->version_stage, 256))
        return KB_EINVAL;
    rc = s_new("SecretId", in->secret_id, &obj);
    if (rc == 0 && in->version_id != NULL)
        rc = kb_jsonw_add_str(obj, "VersionId", in->version_id);
    if (rc == 0 && in->version_stage != NULL)
        rc = kb_jsonw_add_str(obj, "VersionStage", in->version_stage);
    /* The request holds no secret; the response does, and sensitive has the transport wipe it. */
    return s_send(c, &s_op_value, rc, obj, NULL, NULL, true, (kb_svc_fn)cb, ctx);
}

/* -- the key secret (DESIGN.md section 5) ------------------------------------------------------ */

static int s_to_secret(void *arg, const char *body, size_t len)
{
    struct kb_secret **out = arg;

    *out = kb_secret_new(body, len);
    return *out != NULL ? 0 : KB_ENOMEM;
}

int kb_sm_key_secret_new(const char *access_key_id, struct kb_secret *secret_access_key,
                         const char *bucket, const char *region, struct kb_secret **out)
{
    struct json_object *obj, *slot = NULL;
    int rc;

    *out = NULL;
    if (!kb_wire_str_ok(access_key_id, 127) || secret_access_key == NULL ||
        kb_secret_len(secret_access_key) == 0 || kb_secret_len(secret_access_key) > 1024 ||
        !kb_wire_str_ok(bucket, 255) || !kb_wire_str_ok(region, 63))
        return KB_EINVAL;
    obj = json_object_new_object();
    if (obj == NULL)
        return KB_ENOMEM;
    rc = kb_jsonw_add(obj, "Version", json_object_new_int(1));
    if (rc == 0)
        rc = kb_jsonw_add_str(obj, "AccessKeyId", access_key_id);
    if (rc == 0 && (slot = s_add_slot(obj, "SecretAccessKey")) == NULL)
        rc = KB_ENOMEM;
    if (rc == 0)
        rc = kb_jsonw_add_str(obj, "Bucket", bucket);
    if (rc == 0)
        rc = kb_jsonw_add_str(obj, "Region", region);
    if (rc == 0)
        rc = kb_jsonw_serialize(obj, slot, secret_access_key, s_to_secret, out);
    json_object_put(obj);
    return rc;
}

/* Copies the string member key of o into dst[dstlen]. */
static int s_key_field(struct kb_svc_parse *p, struct json_object *o, const char *key, char *dst,
                       size_t dstlen)
{
    const char *v;
    int rc = kb_jsonw_str(p, o, key, dstlen - 1, true, &v);

    if (rc != 0)
        return rc;
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int s_key_obj(struct kb_svc_parse *p, struct json_object *o, struct kb_sm_key_secret *out)
{
    struct json_object *v = NULL;
    int rc = 0;

    if (!json_object_object_get_ex(o, "Version", &v) || !json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) != 1)
        rc = kb_svc_fail(p, KB_EPARSE, "field Version is not 1");
    if (rc == 0)
        rc = s_key_field(p, o, "AccessKeyId", out->access_key_id, sizeof(out->access_key_id));
    if (rc == 0 && !kb_wire_key_id_ok(out->access_key_id))
        rc = kb_svc_fail(p, KB_EPARSE, "field AccessKeyId is not an access key id");
    if (rc == 0)
        rc = s_key_field(p, o, "Bucket", out->bucket, sizeof(out->bucket));
    if (rc == 0)
        rc = s_key_field(p, o, "Region", out->region, sizeof(out->region));
    v = NULL;
    json_object_object_get_ex(o, "SecretAccessKey", &v);
    if (rc == 0 && (!json_object_is_type(v, json_type_string) ||
                    json_object_get_string_len(v) == 0 || json_object_get_string_len(v) > 1024))
        rc = kb_svc_fail(p, KB_EPARSE, "field SecretAccessKey missing");
    if (rc == 0) {
        out->secret_access_key =
            kb_secret_new(json_object_get_string(v), (size_t)json_object_get_string_len(v));
        if (out->secret_access_key == NULL)
            rc = KB_ENOMEM;
    }
    kb_jsonw_wipe_string(v);
    return rc;
}

int kb_sm_key_secret_parse(struct kb_secret *value, struct kb_sm_key_secret *out)
{
    struct kb_svc_arena arena = {0};
    struct kb_svc_parse p = {.arena = &arena, .operation = "key secret"};
    struct json_object *obj = NULL;
    const char *text;
    size_t len;
    int rc;

    memset(out, 0, sizeof(*out));
    if (value == NULL)
        return KB_EINVAL;
    text = kb_secret_open(value, &len);
    rc = kb_jsonw_parse(&p, text, len, true, &obj);
    kb_secret_close(value);
    if (rc == 0)
        rc = s_key_obj(&p, obj, out);
    kb_jsonw_free(obj, true);
    kb_svc_arena_free(&arena);
    if (rc != 0) {
        kb_secret_destroy(out->secret_access_key);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}
