/*
 * codec_format.c - the lines the codec writes (requests for clients; responses, progress lines and
 * watch events for the broker) and the parser clients run on every line the broker sends.
 *
 * Everything is built as a json-c tree and serialized compactly, so escaping is json-c's. Strings
 * that are not valid UTF-8 (an AWS message, say) are repaired byte by byte ('?') so that every
 * line written is valid UTF-8. This module must never emit a field that could carry key material:
 * the response structs in codec.h have no such field, and nothing here adds one.
 */
#include "codec.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "common/err.h"

/* -- building blocks -------------------------------------------------------------------------- */

/* A json string of s, with every byte that does not start a valid UTF-8 sequence turned into '?'.
 * NULL when out of memory. */
static struct json_object *s_string(const char *s)
{
    size_t len = strlen(s), i = 0, n;
    struct json_object *v;
    char *copy;

    if (len > INT_MAX)
        return NULL;
    while (i < len && (n = (unsigned char)s[i] < 0x80
                               ? 1
                               : kb_proto_utf8_seq((const unsigned char *)s + i, len - i)) != 0)
        i += n;
    if (i == len)
        return json_object_new_string_len(s, (int)len);
    copy = malloc(len + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, s, len + 1);
    while (i < len) {
        n = (unsigned char)copy[i] < 0x80
                ? 1
                : kb_proto_utf8_seq((const unsigned char *)copy + i, len - i);
        if (n == 0) {
            copy[i] = '?';
            n = 1;
        }
        i += n;
    }
    v = json_object_new_string_len(copy, (int)len);
    free(copy);
    return v;
}

/* Adds key -> v to obj, taking v (NULL means an allocation failed). */
static int s_add(struct json_object *obj, const char *key, struct json_object *v)
{
    if (v == NULL)
        return KB_ENOMEM;
    if (json_object_object_add(obj, key, v) != 0) {
        json_object_put(v);
        return KB_ENOMEM;
    }
    return 0;
}

/* Appends v to arr, taking v. */
static int s_append(struct json_object *arr, struct json_object *v)
{
    if (v == NULL)
        return KB_ENOMEM;
    if (json_object_array_add(arr, v) != 0) {
        json_object_put(v);
        return KB_ENOMEM;
    }
    return 0;
}

/* A string member; NULL is KB_EINVAL when required, else the member is left out. */
static int s_add_str(struct json_object *obj, const char *key, const char *value, bool required)
{
    if (value == NULL)
        return required ? KB_EINVAL : 0;
    return s_add(obj, key, s_string(value));
}

/* A string member that is JSON null when value is NULL. */
static int s_add_str_or_null(struct json_object *obj, const char *key, const char *value)
{
    if (value == NULL)
        return json_object_object_add(obj, key, NULL) == 0 ? 0 : KB_ENOMEM;
    return s_add(obj, key, s_string(value));
}

static int s_add_tenant(struct json_object *obj, const char *key, const char *tenant)
{
    if (tenant == NULL || !kb_proto_tenant_valid(tenant, strlen(tenant)))
        return KB_EINVAL;
    return s_add(obj, key, json_object_new_string(tenant));
}

/* An ISO-8601 UTC time member, null for 0. */
static int s_add_time(struct json_object *obj, const char *key, time_t t)
{
    char buf[32];
    struct tm tm;

    if (t == 0)
        return json_object_object_add(obj, key, NULL) == 0 ? 0 : KB_ENOMEM;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return KB_EINVAL;
    return s_add(obj, key, json_object_new_string(buf));
}

/* The id given as JSON text, as a json value (NULL for null). It must be exactly what
 * kb_proto_id_text() writes, so that what is echoed is what was read. */
static int s_id_value(const char *id, struct json_object **out)
{
    char canonical[KB_PROTO_ID_SIZE];
    struct json_object *v;

    *out = NULL;
    if (id == NULL || id[0] == '\0' || strcmp(id, "null") == 0)
        return 0;
    v = json_tokener_parse(id);
    if (v == NULL || kb_proto_id_text(v, canonical) != 0 || strcmp(canonical, id) != 0) {
        json_object_put(v);
        return KB_EINVAL;
    }
    *out = v;
    return 0;
}

int kb_proto_add_header(struct json_object *obj, const char *id, int with_id)
{
    struct json_object *v = NULL;
    int rc = s_add(obj, "v", json_object_new_int(KB_PROTO_VERSION));

    if (rc == 0 && with_id)
        rc = s_id_value(id, &v);
    if (rc == 0 && with_id && json_object_object_add(obj, "id", v) != 0) {
        json_object_put(v);
        rc = KB_ENOMEM;
    }
    return rc;
}

int kb_proto_emit(struct json_object *obj, char **out, size_t *len)
{
    size_t n = 0;
    const char *text = json_object_to_json_string_length(obj, KB_PROTO_JSON_FLAGS, &n);

    *out = NULL;
    *len = 0;
    if (text == NULL)
        return KB_ENOMEM;
    *out = malloc(n + 2);
    if (*out == NULL)
        return KB_ENOMEM;
    memcpy(*out, text, n);
    (*out)[n] = '\n';
    (*out)[n + 1] = '\0';
    *len = n + 1;
    return 0;
}

/* Wraps result (taken) into {"v":1,"id":..,"ok":true,"result":..} when rc is 0. */
static int s_respond(const char *id, struct json_object *result, int rc, char **out, size_t *len)
{
    struct json_object *obj = NULL;

    *out = NULL;
    *len = 0;
    if (rc == 0 && result == NULL)
        rc = KB_ENOMEM;
    if (rc == 0 && (obj = json_object_new_object()) == NULL)
        rc = KB_ENOMEM;
    if (rc == 0)
        rc = kb_proto_add_header(obj, id, 1);
    if (rc == 0)
        rc = s_add(obj, "ok", json_object_new_boolean(1));
    if (rc == 0) {
        rc = s_add(obj, "result", result);
        result = NULL;
    }
    if (rc == 0)
        rc = kb_proto_emit(obj, out, len);
    json_object_put(result);
    json_object_put(obj);
    return rc;
}

/* {"tenant","state"[,"message"]} */
static struct json_object *s_tenant_state(const struct kb_proto_tenant_state *t, int *rc)
{
    struct json_object *o = json_object_new_object();

    *rc = o == NULL ? KB_ENOMEM : 0;
    if (*rc == 0)
        *rc = s_add_tenant(o, "tenant", t->tenant);
    if (*rc == 0)
        *rc = s_add_str(o, "state", t->state, true);
    if (*rc == 0)
        *rc = s_add_str(o, "message", t->message, false);
    if (*rc != 0) {
        json_object_put(o);
        o = NULL;
    }
    return o;
}

/* -- responses -------------------------------------------------------------------------------- */

int kb_proto_format_get(const char *id, const struct kb_proto_tenant_info *t, char **out,
                        size_t *len)
{
    struct json_object *r = json_object_new_object();
    int rc = r == NULL ? KB_ENOMEM : t == NULL ? KB_EINVAL : 0;

    if (rc == 0)
        rc = s_add_tenant(r, "tenant", t->tenant);
    if (rc == 0)
        rc = s_add_str(r, "arn", t->arn, true);
    if (rc == 0)
        rc = s_add_str(r, "bucket", t->bucket, true);
    if (rc == 0)
        rc = s_add_str(r, "prefix", t->prefix != NULL ? t->prefix : "", true);
    if (rc == 0)
        rc = s_add_str(r, "region", t->region, true);
    if (rc == 0)
        rc = s_add_str_or_null(r, "version_id", t->version_id);
    if (rc == 0)
        rc = s_add_time(r, "last_rotation", t->last_rotation);
    if (rc == 0)
        rc = s_add_str(r, "state", t->state, true);
    return s_respond(id, r, rc, out, len);
}

int kb_proto_format_list(const char *id, const struct kb_proto_list_entry *tenants, size_t count,
                         char **out, size_t *len)
{
    struct json_object *r = json_object_new_object(), *arr = json_object_new_array();
    int rc = r == NULL || arr == NULL ? KB_ENOMEM : count > 0 && tenants == NULL ? KB_EINVAL : 0;

    for (size_t i = 0; rc == 0 && i < count; i++) {
        struct json_object *o = json_object_new_object();

        rc = o == NULL ? KB_ENOMEM : s_add_tenant(o, "tenant", tenants[i].tenant);
        if (rc == 0)
            rc = s_add_str(o, "bucket", tenants[i].bucket, true);
        if (rc == 0)
            rc = s_add_str(o, "state", tenants[i].state, true);
        if (rc == 0)
            rc = s_append(arr, o);
        else
            json_object_put(o);
    }
    if (rc == 0) {
        rc = s_add(r, "tenants", arr);
        arr = NULL;
    }
    json_object_put(arr);
    return s_respond(id, r, rc, out, len);
}

static int s_status_entry(struct json_object *arr, const struct kb_proto_status_entry *e)
{
    struct json_object *o = json_object_new_object();
    int rc = o == NULL ? KB_ENOMEM : s_add_tenant(o, "tenant", e->tenant);

    if (rc == 0)
        rc = s_add_str(o, "state", e->state, true);
    if (rc == 0)
        rc = s_add_str(o, "message", e->message, false);
    if (rc == 0 && e->probed_ok)
        rc = s_add(o, "probe", json_object_new_string("probed-ok"));
    if (rc == 0 && e->has_subscribers)
        rc = s_add(o, "subscribers", json_object_new_int64((int64_t)e->subscribers));
    if (rc == 0 && e->has_subscribers) {
        struct json_object *w = json_object_new_array();

        rc = w == NULL ? KB_ENOMEM : 0;
        for (size_t i = 0; rc == 0 && i < e->nwaiting; i++) {
            struct json_object *p = json_object_new_object();

            rc = p == NULL ? KB_ENOMEM : 0;
            if (rc == 0)
                rc = s_add(p, "uid", json_object_new_int64(e->waiting[i].uid));
            if (rc == 0)
                rc = s_add(p, "pid", json_object_new_int64(e->waiting[i].pid));
            if (rc == 0 && e->waiting[i].version_id != NULL)
                rc = s_add(p, "version_id", json_object_new_string(e->waiting[i].version_id));
            else if (rc == 0 && json_object_object_add(p, "version_id", NULL) != 0)
                rc = KB_ENOMEM;
            if (rc == 0)
                rc = s_append(w, p);
            else
                json_object_put(p);
        }
        if (rc == 0)
            rc = s_add(o, "waiting_ack", w);
        else
            json_object_put(w);
    }
    if (rc != 0) {
        json_object_put(o);
        return rc;
    }
    return s_append(arr, o);
}

int kb_proto_format_ack(const char *id, const struct kb_proto_ack *a, char **out, size_t *len)
{
    struct json_object *r = json_object_new_object();
    int rc = r == NULL ? KB_ENOMEM : a == NULL ? KB_EINVAL : 0;

    if (rc == 0)
        rc = s_add_tenant(r, "tenant", a->tenant);
    if (rc == 0)
        rc = s_add_str(r, "version_id", a->version_id, true);
    if (rc == 0)
        rc = s_add(r, "current", json_object_new_boolean(a->current));
    if (rc == 0)
        rc = s_add(r, "waiting", json_object_new_int64((int64_t)a->waiting));
    return s_respond(id, r, rc, out, len);
}

int kb_proto_format_status(const char *id, const struct kb_proto_status *s, char **out, size_t *len)
{
    struct json_object *r = json_object_new_object(), *arr = json_object_new_array();
    int rc = r == NULL || arr == NULL ? KB_ENOMEM : s == NULL ? KB_EINVAL : 0;

    if (rc == 0 && s->count > 0 && s->tenants == NULL)
        rc = KB_EINVAL;
    if (rc == 0)
        rc = s_add_str(r, "version", s->version, true);
    if (rc == 0 && s->uptime_seconds > INT64_MAX)
        rc = KB_EINVAL;
    if (rc == 0)
        rc = s_add(r, "uptime_seconds", json_object_new_int64((int64_t)s->uptime_seconds));
    for (size_t i = 0; rc == 0 && i < s->count; i++)
        rc = s_status_entry(arr, &s->tenants[i]);
    if (rc == 0) {
        rc = s_add(r, "tenants", arr);
        arr = NULL;
    }
    json_object_put(arr);
    return s_respond(id, r, rc, out, len);
}

int kb_proto_format_provision(const char *id, const struct kb_proto_tenant_state *tenants,
                              size_t count, char **out, size_t *len)
{
    struct json_object *r = json_object_new_object(), *arr = json_object_new_array();
    int rc = r == NULL || arr == NULL ? KB_ENOMEM : count > 0 && tenants == NULL ? KB_EINVAL : 0;

    for (size_t i = 0; rc == 0 && i < count; i++) {
        struct json_object *o = s_tenant_state(&tenants[i], &rc);

        if (rc == 0)
            rc = s_append(arr, o);
    }
    if (rc == 0) {
        rc = s_add(r, "tenants", arr);
        arr = NULL;
    }
    json_object_put(arr);
    return s_respond(id, r, rc, out, len);
}

int kb_proto_format_tenant_state(const char *id, const struct kb_proto_tenant_state *t, char **out,
                                 size_t *len)
{
    int rc = 0;
    struct json_object *r = t != NULL ? s_tenant_state(t, &rc) : NULL;

    return s_respond(id, r, t == NULL ? KB_EINVAL : rc, out, len);
}

int kb_proto_format_watching(const char *id, const char *const *names, size_t count, char **out,
                             size_t *len)
{
    return kb_proto_format_watching_at(id, names, count, NULL, 0, out, len);
}

/* "epoch" and "seq" members (a seq beyond 2^53-1 would not survive every JSON reader). */
static int s_add_position(struct json_object *o, const char *epoch, uint64_t seq)
{
    int rc;

    if (!kb_proto_epoch_valid(epoch, strlen(epoch)) || seq > (uint64_t)KB_PROTO_ID_INT_MAX)
        return KB_EINVAL;
    rc = s_add(o, "epoch", json_object_new_string(epoch));
    if (rc == 0)
        rc = s_add(o, "seq", json_object_new_int64((int64_t)seq));
    return rc;
}

int kb_proto_format_watching_at(const char *id, const char *const *names, size_t count,
                                const char *epoch, uint64_t seq, char **out, size_t *len)
{
    struct json_object *r = json_object_new_object(), *arr = json_object_new_array();
    int rc = r == NULL || arr == NULL ? KB_ENOMEM : count > 0 && names == NULL ? KB_EINVAL : 0;

    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (names[i] == NULL || !kb_proto_tenant_valid(names[i], strlen(names[i])))
            rc = KB_EINVAL;
        else
            rc = s_append(arr, json_object_new_string(names[i]));
    }
    if (rc == 0) {
        rc = s_add(r, "watching", arr);
        arr = NULL;
    }
    if (rc == 0 && epoch != NULL)
        rc = s_add_position(r, epoch, seq);
    json_object_put(arr);
    return s_respond(id, r, rc, out, len);
}

int kb_proto_format_metrics(const char *id, const char *text, char **out, size_t *len)
{
    struct json_object *r = json_object_new_object();
    int rc = r == NULL ? KB_ENOMEM : s_add_str(r, "text", text, true);

    return s_respond(id, r, rc, out, len);
}

/* -- progress, events, errors ----------------------------------------------------------------- */

/* Emits obj (taken) when rc is 0. */
static int s_finish(struct json_object *obj, int rc, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (rc == 0)
        rc = kb_proto_emit(obj, out, len);
    json_object_put(obj);
    return rc;
}

int kb_proto_format_progress(const char *id, const struct kb_proto_progress *p, char **out,
                             size_t *len)
{
    struct json_object *o = json_object_new_object();
    int rc = o == NULL ? KB_ENOMEM : p == NULL ? KB_EINVAL : kb_proto_add_header(o, id, 1);

    if (rc == 0)
        rc = s_add(o, "event", json_object_new_string("progress"));
    if (rc == 0)
        rc = s_add_tenant(o, "tenant", p->tenant);
    if (rc == 0)
        rc = s_add_str(o, "step", p->step, true);
    if (rc == 0)
        rc = s_add_str(o, "state", p->state, true);
    if (rc == 0)
        rc = s_add_str(o, "message", p->message, false);
    return s_finish(o, rc, out, len);
}

const char *kb_proto_event_name(enum kb_proto_event_kind kind)
{
    switch (kind) {
    case KB_PROTO_EVENT_ROTATED:
        return "rotated";
    case KB_PROTO_EVENT_PROVISIONED:
        return "provisioned";
    case KB_PROTO_EVENT_REVOKED:
        return "revoked";
    case KB_PROTO_EVENT_ROLLED_BACK:
        return "rolled_back";
    case KB_PROTO_EVENT_ROTATION_FAILED:
        return "rotation_failed";
    case KB_PROTO_EVENT_KEY_DEACTIVATED:
        return "key_deactivated";
    case KB_PROTO_EVENT_KEY_DELETED:
        return "key_deleted";
    case KB_PROTO_EVENT_KIND_END:
        break;
    }
    return NULL;
}

int kb_proto_format_event(const struct kb_proto_event *ev, char **out, size_t *len)
{
    struct json_object *o = json_object_new_object();
    const char *name = ev != NULL ? kb_proto_event_name(ev->kind) : NULL;
    int rc = o == NULL ? KB_ENOMEM : name == NULL ? KB_EINVAL : kb_proto_add_header(o, NULL, 0);

    if (rc == 0)
        rc = s_add(o, "event", json_object_new_string(name));
    if (rc == 0 && ev->epoch != NULL)
        rc = s_add_position(o, ev->epoch, ev->seq);
    if (rc == 0)
        rc = s_add_tenant(o, "tenant", ev->tenant);
    if (rc == 0)
        rc = s_add_str(o, "arn", ev->arn, true);
    if (rc == 0)
        rc = s_add_str_or_null(o, "version_id", ev->version_id);
    if (rc == 0)
        rc = s_add_time(o, "ts", ev->ts);
    if (rc == 0)
        rc = s_add_str(o, "message", ev->message, false);
    return s_finish(o, rc, out, len);
}

int kb_proto_format_reset(const char *epoch, uint64_t seq, const char *reason,
                          const struct kb_proto_watch_state *tenants, size_t count, char **out,
                          size_t *len)
{
    struct json_object *o = json_object_new_object(), *arr = json_object_new_array();
    int rc = o == NULL || arr == NULL                          ? KB_ENOMEM
             : epoch == NULL || (count > 0 && tenants == NULL) ? KB_EINVAL
                                                               : kb_proto_add_header(o, NULL, 0);

    if (rc == 0)
        rc = s_add(o, "event", json_object_new_string("reset"));
    if (rc == 0)
        rc = s_add_position(o, epoch, seq);
    if (rc == 0)
        rc = s_add_str(o, "reason", reason, true);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        struct json_object *t = json_object_new_object();

        rc = t == NULL ? KB_ENOMEM : s_add_tenant(t, "tenant", tenants[i].tenant);
        if (rc == 0)
            rc = s_add_str_or_null(t, "arn", tenants[i].arn);
        if (rc == 0)
            rc = s_add_str_or_null(t, "version_id", tenants[i].version_id);
        if (rc == 0)
            rc = s_add_str(t, "state", tenants[i].state, true);
        if (rc == 0)
            rc = s_append(arr, t);
        else
            json_object_put(t);
    }
    if (rc == 0) {
        rc = s_add(o, "tenants", arr);
        arr = NULL;
    }
    json_object_put(arr);
    return s_finish(o, rc, out, len);
}

int kb_proto_format_closed(const char *reason, char **out, size_t *len)
{
    struct json_object *o = json_object_new_object();
    int rc = o == NULL ? KB_ENOMEM : kb_proto_add_header(o, NULL, 0);

    if (rc == 0)
        rc = s_add(o, "event", json_object_new_string("closed"));
    if (rc == 0)
        rc = s_add_str(o, "reason", reason, true);
    return s_finish(o, rc, out, len);
}

int kb_proto_format_error(const char *id, enum kb_proto_err code, const char *message, char **out,
                          size_t *len)
{
    struct json_object *o = json_object_new_object(), *e = json_object_new_object();
    int rc = o == NULL || e == NULL ? KB_ENOMEM : kb_proto_add_header(o, id, 1);

    if (rc == 0 && (code <= KB_PROTO_OK || code >= KB_PROTO_EUNKNOWN))
        rc = KB_EINVAL;
    if (rc == 0)
        rc = s_add(o, "ok", json_object_new_boolean(0));
    if (rc == 0)
        rc = s_add(e, "code", json_object_new_string(kb_proto_err_name(code)));
    if (rc == 0)
        rc = s_add_str(e, "message", message != NULL ? message : kb_proto_err_message(code), true);
    if (rc == 0) {
        rc = s_add(o, "error", e);
        e = NULL;
    }
    json_object_put(e);
    return s_finish(o, rc, out, len);
}

/* -- requests (the client's side) ------------------------------------------------------------- */

static bool s_names_valid(const char *const *names, size_t count)
{
    if (count > KB_PROTO_MAX_WATCH || (count > 0 && names == NULL))
        return false;
    for (size_t i = 0; i < count; i++) {
        if (names[i] == NULL || !kb_proto_tenant_valid(names[i], strlen(names[i])))
            return false;
    }
    return true;
}

/* What kb_proto_parse_request would refuse, checked before anything is built. */
static int s_check_request(const struct kb_proto_request *r)
{
    bool tenant_op = r->op == KB_PROTO_OP_GET || r->op == KB_PROTO_OP_STATUS ||
                     r->op == KB_PROTO_OP_PROVISION || r->op == KB_PROTO_OP_ROTATE ||
                     r->op == KB_PROTO_OP_REVOKE || r->op == KB_PROTO_OP_ACK;
    bool tenant_needed = r->op == KB_PROTO_OP_GET || r->op == KB_PROTO_OP_ROTATE ||
                         r->op == KB_PROTO_OP_REVOKE || r->op == KB_PROTO_OP_ACK;
    size_t vlen = strnlen(r->version_id, sizeof(r->version_id));

    if (r->rollback && r->op != KB_PROTO_OP_ROTATE)
        return KB_EINVAL;
    if ((r->op == KB_PROTO_OP_ACK) != (vlen > 0) ||
        (vlen > 0 && !kb_proto_version_valid(r->version_id, vlen)))
        return KB_EINVAL;

    if (kb_proto_op_name(r->op) == NULL || (r->has_tenant && !tenant_op) ||
        (tenant_needed && !r->has_tenant))
        return KB_EINVAL;
    if (r->has_tenant && !kb_proto_tenant_valid(r->tenant, strnlen(r->tenant, sizeof(r->tenant))))
        return KB_EINVAL;
    if ((r->delete_bucket || r->force_delete_secret) && r->op != KB_PROTO_OP_REVOKE)
        return KB_EINVAL;
    if (r->adopt_bucket && (r->op != KB_PROTO_OP_PROVISION || !r->has_tenant))
        return KB_EINVAL;
    if ((r->tenant_count > 0 || r->has_since) && r->op != KB_PROTO_OP_WATCH)
        return KB_EINVAL;
    if (r->has_since &&
        (!kb_proto_epoch_valid(r->since_epoch, strnlen(r->since_epoch, sizeof(r->since_epoch))) ||
         r->since_seq > (uint64_t)KB_PROTO_ID_INT_MAX))
        return KB_EINVAL;
    return s_names_valid(r->tenants, r->tenant_count) ? 0 : KB_EINVAL;
}

int kb_proto_format_request(const struct kb_proto_request *req, char **out, size_t *len)
{
    struct json_object *o = json_object_new_object(), *arr = NULL;
    int rc = o == NULL ? KB_ENOMEM : req == NULL ? KB_EINVAL : s_check_request(req);
    bool with_id = rc == 0 && req->id[0] != '\0' && strcmp(req->id, "null") != 0;

    if (rc == 0)
        rc = kb_proto_add_header(o, req->id, with_id);
    if (rc == 0)
        rc = s_add(o, "op", json_object_new_string(kb_proto_op_name(req->op)));
    if (rc == 0 && req->has_tenant)
        rc = s_add(o, "tenant", json_object_new_string(req->tenant));
    if (rc == 0 && req->delete_bucket)
        rc = s_add(o, "delete_bucket", json_object_new_boolean(1));
    if (rc == 0 && req->force_delete_secret)
        rc = s_add(o, "force_delete_secret", json_object_new_boolean(1));
    if (rc == 0 && req->adopt_bucket)
        rc = s_add(o, "adopt_bucket", json_object_new_boolean(1));
    if (rc == 0 && req->rollback)
        rc = s_add(o, "rollback", json_object_new_boolean(1));
    if (rc == 0 && req->version_id[0] != '\0')
        rc = s_add(o, "version_id", json_object_new_string(req->version_id));
    if (rc == 0 && req->tenant_count > 0) {
        arr = json_object_new_array();
        rc = arr == NULL ? KB_ENOMEM : 0;
        for (size_t i = 0; rc == 0 && i < req->tenant_count; i++)
            rc = s_append(arr, json_object_new_string(req->tenants[i]));
        if (rc == 0) {
            rc = s_add(o, "tenants", arr);
            arr = NULL;
        }
    }
    if (rc == 0 && req->has_since) {
        struct json_object *since = json_object_new_object();

        rc = since == NULL ? KB_ENOMEM : s_add_position(since, req->since_epoch, req->since_seq);
        if (rc == 0)
            rc = s_add(o, "since", since);
        else
            json_object_put(since);
    }
    json_object_put(arr);
    return s_finish(o, rc, out, len);
}

/* -- replies (the client's side) -------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int s_why(char *why, size_t whylen, const char *fmt,
                                                       ...)
{
    va_list ap;

    if (why != NULL && whylen > 0) {
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return KB_EPARSE;
}

static int s_reply_error(struct json_object *root, struct kb_proto_reply *r, char *why,
                         size_t whylen)
{
    struct json_object *e = NULL, *v = NULL;

    r->kind = KB_PROTO_REPLY_ERROR;
    if (!json_object_object_get_ex(root, "error", &e) || !json_object_is_type(e, json_type_object))
        return s_why(why, whylen, "an error reply has no \"error\" object");
    if (!json_object_object_get_ex(e, "code", &v) || !json_object_is_type(v, json_type_string))
        return s_why(why, whylen, "an error reply has no \"code\" string");
    kb_proto_copy_trunc(r->code_name, sizeof(r->code_name), json_object_get_string(v),
                        (size_t)json_object_get_string_len(v));
    r->code = kb_proto_err_from_name(json_object_get_string(v));
    if (json_object_object_get_ex(e, "message", &v) && json_object_is_type(v, json_type_string))
        kb_proto_copy_trunc(r->message, sizeof(r->message), json_object_get_string(v),
                            (size_t)json_object_get_string_len(v));
    else
        kb_proto_copy_trunc(r->message, sizeof(r->message), kb_proto_err_message(r->code),
                            strlen(kb_proto_err_message(r->code)));
    return 0;
}

/* Sorts a parsed line into result, error or event. Unknown members are ignored: clients are
 * lenient so that a newer broker may add fields. */
static int s_reply_kind(struct json_object *root, struct kb_proto_reply *r, char *why,
                        size_t whylen)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(root, "v", &v) || !json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) != KB_PROTO_VERSION)
        return s_why(why, whylen, "the reply is not protocol v1");
    if (json_object_object_get_ex(root, "id", &v) && kb_proto_id_text(v, r->id) != 0)
        return s_why(why, whylen, "the reply's id is malformed");
    if (json_object_object_get_ex(root, "event", &v)) {
        if (!json_object_is_type(v, json_type_string))
            return s_why(why, whylen, "the reply's event is not a string");
        r->kind = KB_PROTO_REPLY_EVENT;
        r->event = json_object_get_string(v);
        r->body = root;
        return 0;
    }
    if (!json_object_object_get_ex(root, "ok", &v) || !json_object_is_type(v, json_type_boolean))
        return s_why(why, whylen, "the reply has neither \"ok\" nor \"event\"");
    if (!json_object_get_boolean(v))
        return s_reply_error(root, r, why, whylen);
    r->kind = KB_PROTO_REPLY_RESULT;
    if (!json_object_object_get_ex(root, "result", &r->body) ||
        !json_object_is_type(r->body, json_type_object))
        return s_why(why, whylen, "a success reply has no \"result\" object");
    return 0;
}

int kb_proto_parse_reply(const char *line, size_t len, struct kb_proto_reply *r, char *why,
                         size_t whylen)
{
    char msg[KB_PROTO_MSG_SIZE] = "";
    enum kb_proto_err code;
    int rc;

    memset(r, 0, sizeof(*r));
    memcpy(r->id, "null", 5);
    if (line == NULL) {
        line = "";
        len = 0;
    }
    if (len > KB_PROTO_MAX_REPLY)
        return s_why(why, whylen, "reply line longer than %u bytes", KB_PROTO_MAX_REPLY);
    code = kb_proto_scan(line, len, msg, sizeof(msg));
    if (code == KB_PROTO_OK)
        code = kb_proto_tokenize(line, len, &r->root, msg, sizeof(msg));
    if (code == KB_PROTO_EINTERNAL)
        return KB_ENOMEM;
    if (code != KB_PROTO_OK)
        return s_why(why, whylen, "%s: %s", kb_proto_err_name(code), msg);
    if (!json_object_is_type(r->root, json_type_object))
        rc = s_why(why, whylen, "the reply is not a JSON object");
    else
        rc = s_reply_kind(r->root, r, why, whylen);
    if (rc != 0)
        kb_proto_reply_cleanup(r);
    return rc;
}

void kb_proto_reply_cleanup(struct kb_proto_reply *r)
{
    if (r == NULL)
        return;
    json_object_put(r->root);
    memset(r, 0, sizeof(*r));
}
