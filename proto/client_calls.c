/*
 * client_calls.c - libkeybroker's calls: each builds one request, runs one exchange (client.c)
 * and turns the result object into the plain structs of keybroker/client.h.
 *
 * A result that lacks a field the protocol promises, or has one of the wrong type, is
 * KB_CLIENT_EPROTO; the connection stays usable because the line itself was framed correctly.
 * Unknown members are ignored so that a newer broker may add fields. Nothing here logs.
 */
#include "client_internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"

/* A char * member of a result struct, filled from the JSON member key. */
struct s_field {
    const char *key;
    size_t offset;
    bool required;
};

#define S_FIELD(type, member, required)                                                            \
    {                                                                                              \
#member, offsetof(type, member), required                                                  \
    }

static const struct s_field s_tenant_fields[] = {
    S_FIELD(struct kb_client_tenant, tenant, true),
    S_FIELD(struct kb_client_tenant, arn, true),
    S_FIELD(struct kb_client_tenant, bucket, true),
    S_FIELD(struct kb_client_tenant, prefix, false),
    S_FIELD(struct kb_client_tenant, region, true),
    S_FIELD(struct kb_client_tenant, version_id, false),
    S_FIELD(struct kb_client_tenant, last_rotation, false),
    S_FIELD(struct kb_client_tenant, state, true),
};
static const struct s_field s_list_fields[] = {
    S_FIELD(struct kb_client_list_entry, tenant, true),
    S_FIELD(struct kb_client_list_entry, bucket, true),
    S_FIELD(struct kb_client_list_entry, state, true),
};
static const struct s_field s_status_fields[] = {
    S_FIELD(struct kb_client_status_entry, tenant, true),
    S_FIELD(struct kb_client_status_entry, state, true),
    S_FIELD(struct kb_client_status_entry, message, false),
};
static const struct s_field s_state_fields[] = {
    S_FIELD(struct kb_client_tenant_state, tenant, true),
    S_FIELD(struct kb_client_tenant_state, state, true),
    S_FIELD(struct kb_client_tenant_state, message, false),
};
#define S_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* -- reading results -------------------------------------------------------------------------- */

/* A malloc'd copy of the string member key of obj; NULL when absent or null and not required. */
static int s_dup(struct json_object *obj, const char *key, bool required, char **out)
{
    struct json_object *v = NULL;
    size_t len;

    *out = NULL;
    if (!json_object_object_get_ex(obj, key, &v) || v == NULL)
        return required ? KB_CLIENT_EPROTO : 0;
    if (!json_object_is_type(v, json_type_string))
        return KB_CLIENT_EPROTO;
    len = (size_t)json_object_get_string_len(v);
    *out = malloc(len + 1);
    if (*out == NULL)
        return -ENOMEM;
    memcpy(*out, json_object_get_string(v), len + 1);
    return 0;
}

static int s_fill(struct json_object *obj, const struct s_field *f, size_t n, void *base)
{
    int rc = json_object_is_type(obj, json_type_object) ? 0 : KB_CLIENT_EPROTO;

    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = s_dup(obj, f[i].key, f[i].required, (char **)((char *)base + f[i].offset));
    return rc;
}

static void s_free_fields(const struct s_field *f, size_t n, void *base)
{
    for (size_t i = 0; base != NULL && i < n; i++)
        free(*(char **)((char *)base + f[i].offset));
}

/* The array member key of obj, with its length. */
static int s_array(struct json_object *obj, const char *key, struct json_object **arr, size_t *n)
{
    if (!json_object_object_get_ex(obj, key, arr) || !json_object_is_type(*arr, json_type_array))
        return KB_CLIENT_EPROTO;
    *n = json_object_array_length(*arr);
    return 0;
}

/* Records why a result could not be read. */
static int s_result_error(struct kb_client *c, int rc, const char *op)
{
    if (rc == KB_CLIENT_EPROTO)
        return kb_client_fail(c, rc, "the broker's %s result lacks a field or has the wrong type",
                              op);
    return kb_client_fail(c, rc, "%s", kb_client_strerror(rc));
}

static int s_set_tenant(struct kb_client *c, struct kb_proto_request *req, const char *tenant,
                        bool required)
{
    if (tenant == NULL) {
        if (required)
            return kb_client_fail(c, -EINVAL, "a tenant name is required");
        return 0;
    }
    if (!kb_proto_tenant_valid(tenant, strlen(tenant)))
        return kb_client_fail(c, -EINVAL,
                              "invalid tenant name (1 to 64 characters of A-Z a-z "
                              "0-9 + = , . @ _ -)");
    memcpy(req->tenant, tenant, strlen(tenant) + 1);
    req->has_tenant = true;
    return 0;
}

/* -- get, list, status ------------------------------------------------------------------------ */

int kb_client_get(struct kb_client *c, const char *tenant, struct kb_client_tenant **out)
{
    struct kb_proto_request req = {.op = KB_PROTO_OP_GET};
    struct kb_proto_reply reply;
    struct kb_client_tenant *t;
    int rc;

    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    rc = s_set_tenant(c, &req, tenant, true);
    if (rc == 0)
        rc = kb_client_exchange(c, &req, NULL, NULL, &reply);
    if (rc != 0)
        return rc;
    t = calloc(1, sizeof(*t));
    rc = t == NULL ? -ENOMEM : s_fill(reply.body, s_tenant_fields, S_COUNT(s_tenant_fields), t);
    if (rc == 0 && t->prefix == NULL && (t->prefix = calloc(1, 1)) == NULL)
        rc = -ENOMEM;
    kb_proto_reply_cleanup(&reply);
    if (rc != 0) {
        kb_client_tenant_free(t);
        return s_result_error(c, rc, "get");
    }
    *out = t;
    return 0;
}

void kb_client_tenant_free(struct kb_client_tenant *t)
{
    s_free_fields(s_tenant_fields, S_COUNT(s_tenant_fields), t);
    free(t);
}

/* Fills an array of count entries of size bytes from the objects of arr. */
static int s_fill_array(struct json_object *arr, size_t count, const struct s_field *f, size_t n,
                        void *entries, size_t size)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = s_fill(json_object_array_get_idx(arr, i), f, n, (char *)entries + i * size);
    return rc;
}

int kb_client_list(struct kb_client *c, struct kb_client_list **out)
{
    struct kb_proto_request req = {.op = KB_PROTO_OP_LIST};
    struct kb_proto_reply reply;
    struct kb_client_list *l;
    struct json_object *arr = NULL;
    size_t n = 0;
    int rc;

    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    rc = kb_client_exchange(c, &req, NULL, NULL, &reply);
    if (rc != 0)
        return rc;
    l = calloc(1, sizeof(*l));
    rc = l == NULL ? -ENOMEM : s_array(reply.body, "tenants", &arr, &n);
    if (rc == 0 && n > 0 && (l->tenants = calloc(n, sizeof(l->tenants[0]))) == NULL)
        rc = -ENOMEM;
    if (rc == 0) {
        l->count = n;
        rc = s_fill_array(arr, n, s_list_fields, S_COUNT(s_list_fields), l->tenants,
                          sizeof(l->tenants[0]));
    }
    kb_proto_reply_cleanup(&reply);
    if (rc != 0) {
        kb_client_list_free(l);
        return s_result_error(c, rc, "list");
    }
    *out = l;
    return 0;
}

void kb_client_list_free(struct kb_client_list *l)
{
    for (size_t i = 0; l != NULL && i < l->count; i++)
        s_free_fields(s_list_fields, S_COUNT(s_list_fields), &l->tenants[i]);
    if (l != NULL)
        free(l->tenants);
    free(l);
}

/* "subscribers" and "waiting_ack" (an admin's status; absent otherwise). */
static int s_status_waiting(struct json_object *o, struct kb_client_status_entry *e)
{
    struct json_object *n = NULL, *arr = NULL;
    size_t count;

    if (!json_object_object_get_ex(o, "subscribers", &n))
        return 0;
    if (!json_object_is_type(n, json_type_int) || json_object_get_int64(n) < 0 ||
        !json_object_object_get_ex(o, "waiting_ack", &arr) ||
        !json_object_is_type(arr, json_type_array))
        return KB_CLIENT_EPROTO;
    e->has_subscribers = true;
    e->subscribers = (size_t)json_object_get_int64(n);
    count = json_object_array_length(arr);
    if (count > 0 && (e->waiting = calloc(count, sizeof(*e->waiting))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        struct json_object *p = json_object_array_get_idx(arr, i), *uid = NULL, *pid = NULL,
                           *v = NULL;

        if (!json_object_is_type(p, json_type_object) ||
            !json_object_object_get_ex(p, "uid", &uid) ||
            !json_object_is_type(uid, json_type_int) ||
            !json_object_object_get_ex(p, "pid", &pid) || !json_object_is_type(pid, json_type_int))
            return KB_CLIENT_EPROTO;
        e->waiting[i].uid = (uint32_t)json_object_get_int64(uid);
        e->waiting[i].pid = (int32_t)json_object_get_int64(pid);
        if (json_object_object_get_ex(p, "version_id", &v) && v != NULL) {
            if (!json_object_is_type(v, json_type_string))
                return KB_CLIENT_EPROTO;
            e->waiting[i].version_id = strdup(json_object_get_string(v));
            if (e->waiting[i].version_id == NULL)
                return -ENOMEM;
        }
        e->nwaiting = i + 1;
    }
    return 0;
}

static int s_status_entries(struct json_object *arr, struct kb_client_status *s)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < s->count; i++) {
        struct json_object *o = json_object_array_get_idx(arr, i), *probe = NULL;

        rc = s_fill(o, s_status_fields, S_COUNT(s_status_fields), &s->tenants[i]);
        if (rc == 0 && json_object_object_get_ex(o, "probe", &probe))
            s->tenants[i].probed_ok = json_object_is_type(probe, json_type_string) &&
                                      strcmp(json_object_get_string(probe), "probed-ok") == 0;
        if (rc == 0)
            rc = s_status_waiting(o, &s->tenants[i]);
    }
    return rc;
}

static int s_status_result(struct json_object *body, struct kb_client_status *s)
{
    struct json_object *arr = NULL, *up = NULL;
    size_t n = 0;
    int rc = s_dup(body, "version", true, &s->version);

    if (rc == 0 && (!json_object_object_get_ex(body, "uptime_seconds", &up) ||
                    !json_object_is_type(up, json_type_int) || json_object_get_int64(up) < 0))
        rc = KB_CLIENT_EPROTO;
    if (rc == 0) {
        s->uptime_seconds = (uint64_t)json_object_get_int64(up);
        rc = s_array(body, "tenants", &arr, &n);
    }
    if (rc == 0 && n > 0 && (s->tenants = calloc(n, sizeof(s->tenants[0]))) == NULL)
        rc = -ENOMEM;
    if (rc == 0) {
        s->count = n;
        rc = s_status_entries(arr, s);
    }
    return rc;
}

int kb_client_status(struct kb_client *c, const char *tenant, struct kb_client_status **out)
{
    struct kb_proto_request req = {.op = KB_PROTO_OP_STATUS};
    struct kb_proto_reply reply;
    struct kb_client_status *s;
    int rc;

    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    rc = s_set_tenant(c, &req, tenant, false);
    if (rc == 0)
        rc = kb_client_exchange(c, &req, NULL, NULL, &reply);
    if (rc != 0)
        return rc;
    s = calloc(1, sizeof(*s));
    rc = s == NULL ? -ENOMEM : s_status_result(reply.body, s);
    kb_proto_reply_cleanup(&reply);
    if (rc != 0) {
        kb_client_status_free(s);
        return s_result_error(c, rc, "status");
    }
    *out = s;
    return 0;
}

void kb_client_status_free(struct kb_client_status *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->count; i++) {
        s_free_fields(s_status_fields, S_COUNT(s_status_fields), &s->tenants[i]);
        for (size_t k = 0; k < s->tenants[i].nwaiting; k++)
            free(s->tenants[i].waiting[k].version_id);
        free(s->tenants[i].waiting);
    }
    free(s->tenants);
    free(s->version);
    free(s);
}

/* -- provision, rotate, revoke, metrics ------------------------------------------------------- */

void kb_client_states_free(struct kb_client_states *s)
{
    for (size_t i = 0; s != NULL && i < s->count; i++)
        s_free_fields(s_state_fields, S_COUNT(s_state_fields), &s->tenants[i]);
    if (s != NULL)
        free(s->tenants);
    free(s);
}

/* States from the objects of arr, or (arr NULL) from the one object single. */
static int s_states(struct kb_client *c, struct json_object *arr, size_t n,
                    struct json_object *single, const char *op, struct kb_client_states **out)
{
    struct kb_client_states *s = calloc(1, sizeof(*s));
    int rc = s == NULL ? -ENOMEM : 0;

    if (rc == 0 && n > 0 && (s->tenants = calloc(n, sizeof(s->tenants[0]))) == NULL)
        rc = -ENOMEM;
    if (rc == 0) {
        s->count = n;
        if (arr != NULL)
            rc = s_fill_array(arr, n, s_state_fields, S_COUNT(s_state_fields), s->tenants,
                              sizeof(s->tenants[0]));
        else
            rc = s_fill(single, s_state_fields, S_COUNT(s_state_fields), &s->tenants[0]);
    }
    if (rc != 0) {
        kb_client_states_free(s);
        return s_result_error(c, rc, op);
    }
    *out = s;
    return 0;
}

struct s_progress_ctx {
    kb_client_progress_cb cb;
    void *ctx;
};

static const char *s_member(struct json_object *obj, const char *key)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* A provision progress line: lines without the fields a progress line promises are skipped. */
static void on_progress(void *ctx, const struct kb_proto_reply *reply, const char *line, size_t len)
{
    struct s_progress_ctx *pc = ctx;
    struct kb_client_progress p = {
        .tenant = s_member(reply->body, "tenant"),
        .step = s_member(reply->body, "step"),
        .state = s_member(reply->body, "state"),
        .message = s_member(reply->body, "message"),
    };

    if (pc->cb != NULL && strcmp(reply->event, "progress") == 0 && p.tenant != NULL &&
        p.step != NULL && p.state != NULL)
        pc->cb(pc->ctx, &p);
}

static int s_provision(struct kb_client *c, const char *tenant, bool adopt_bucket,
                       kb_client_progress_cb progress, void *ctx, struct kb_client_states **out)
{
    struct kb_proto_request req = {.op = KB_PROTO_OP_PROVISION, .adopt_bucket = adopt_bucket};
    struct s_progress_ctx pc = {progress, ctx};
    struct kb_proto_reply reply;
    struct json_object *arr = NULL;
    size_t n = 0;
    int rc;

    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    rc = s_set_tenant(c, &req, tenant, adopt_bucket);
    if (rc == 0)
        rc = kb_client_exchange(c, &req, on_progress, &pc, &reply);
    if (rc != 0)
        return rc;
    rc = s_array(reply.body, "tenants", &arr, &n);
    if (rc == 0)
        rc = s_states(c, arr, n, NULL, "provision", out);
    else
        rc = s_result_error(c, rc, "provision");
    kb_proto_reply_cleanup(&reply);
    return rc;
}

int kb_client_provision(struct kb_client *c, const char *tenant, kb_client_progress_cb progress,
                        void *ctx, struct kb_client_states **out)
{
    return s_provision(c, tenant, false, progress, ctx, out);
}

int kb_client_adopt(struct kb_client *c, const char *tenant, kb_client_progress_cb progress,
                    void *ctx, struct kb_client_states **out)
{
    return s_provision(c, tenant, true, progress, ctx, out);
}

/* rotate and revoke answer {"tenant","state"[,"message"]}. */
static int s_tenant_op(struct kb_client *c, struct kb_proto_request *req, const char *tenant,
                       struct kb_client_states **out)
{
    struct kb_proto_reply reply;
    int rc;

    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    rc = s_set_tenant(c, req, tenant, true);
    if (rc == 0)
        rc = kb_client_exchange(c, req, NULL, NULL, &reply);
    if (rc != 0)
        return rc;
    rc = s_states(c, NULL, 1, reply.body, kb_proto_op_name(req->op), out);
    kb_proto_reply_cleanup(&reply);
    return rc;
}

int kb_client_rotate(struct kb_client *c, const char *tenant, struct kb_client_states **out)
{
    struct kb_proto_request req = {.op = KB_PROTO_OP_ROTATE};

    return s_tenant_op(c, &req, tenant, out);
}

int kb_client_rollback(struct kb_client *c, const char *tenant, struct kb_client_states **out)
{
    struct kb_proto_request req = {.op = KB_PROTO_OP_ROTATE, .rollback = true};

    return s_tenant_op(c, &req, tenant, out);
}

int kb_client_revoke(struct kb_client *c, const char *tenant, bool delete_bucket,
                     bool force_delete_secret, struct kb_client_states **out)
{
    struct kb_proto_request req = {.op = KB_PROTO_OP_REVOKE,
                                   .delete_bucket = delete_bucket,
                                   .force_delete_secret = force_delete_secret};

    return s_tenant_op(c, &req, tenant, out);
}

int kb_client_metrics(struct kb_client *c, char **text)
{
    struct kb_proto_request req = {.op = KB_PROTO_OP_METRICS};
    struct kb_proto_reply reply;
    int rc;

    if (text == NULL)
        return -EINVAL;
    *text = NULL;
    rc = kb_client_exchange(c, &req, NULL, NULL, &reply);
    if (rc != 0)
        return rc;
    rc = s_dup(reply.body, "text", true, text);
    kb_proto_reply_cleanup(&reply);
    return rc == 0 ? 0 : s_result_error(c, rc, "metrics");
}

/* -- any request, raw ------------------------------------------------------------------------- */

struct s_raw_ctx {
    kb_client_line_cb cb;
    void *ctx;
};

static void on_raw_line(void *ctx, const struct kb_proto_reply *reply, const char *line, size_t len)
{
    struct s_raw_ctx *rc = ctx;

    if (rc->cb != NULL)
        rc->cb(rc->ctx, line, len);
}

int kb_client_call(struct kb_client *c, const struct kb_client_request *r,
                   kb_client_line_cb on_line, void *ctx, char **result_json)
{
    struct kb_proto_request req = {0};
    struct s_raw_ctx raw = {on_line, ctx};
    struct kb_proto_reply reply;
    const char *text;
    size_t len = 0;
    int rc;

    if (r == NULL || r->op == NULL || result_json == NULL)
        return -EINVAL;
    *result_json = NULL;
    req.op = kb_proto_op_from_name(r->op, strlen(r->op));
    if (req.op == KB_PROTO_OP_NONE || req.op == KB_PROTO_OP_WATCH)
        return kb_client_fail(c, -EINVAL, "op \"%s\" cannot be called this way",
                              req.op == KB_PROTO_OP_WATCH ? "watch" : "(unknown)");
    rc = s_set_tenant(c, &req, r->tenant, false);
    if (rc != 0)
        return rc;
    req.tenants = r->tenants;
    req.tenant_count = r->tenant_count;
    req.delete_bucket = r->delete_bucket;
    req.force_delete_secret = r->force_delete_secret;
    req.adopt_bucket = r->adopt_bucket;
    req.rollback = r->rollback;
    rc = kb_client_exchange(c, &req, on_raw_line, &raw, &reply);
    if (rc != 0)
        return rc;
    text = json_object_to_json_string_length(reply.body, KB_PROTO_JSON_FLAGS, &len);
    *result_json = text != NULL ? malloc(len + 1) : NULL;
    if (*result_json != NULL)
        memcpy(*result_json, text, len + 1);
    kb_proto_reply_cleanup(&reply);
    return *result_json != NULL ? 0 : kb_client_fail(c, -ENOMEM, "out of memory");
}
