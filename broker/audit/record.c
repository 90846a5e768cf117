/*
 * record.c - an audit record's body, serialised by json-c (members in record.h's order).
 */
#include "audit/record.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/err.h"

void kb_audit_format_ts(int64_t ts_ms, char out[25])
{
    time_t secs = (time_t)(ts_ms / 1000);
    int ms = (int)(ts_ms % 1000);
    struct tm tm;

    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    if (gmtime_r(&secs, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0)
        memset(&tm, 0, sizeof(tm));
    if (strftime(out, 20, "%Y-%m-%dT%H:%M:%S", &tm) != 19)
        memcpy(out, "0000-00-00T00:00:00", 20);
    snprintf(out + 19, 6, ".%03uZ", (unsigned)ms % 1000u);
}

/* Adds key: s unless s is NULL or "". Returns false when json-c runs out of memory. */
static bool s_str(struct json_object *o, const char *key, const char *s)
{
    struct json_object *v;

    if (s == NULL || s[0] == '\0')
        return true;
    v = json_object_new_string(s);
    if (v == NULL)
        return false;
    if (json_object_object_add(o, key, v) != 0) {
        json_object_put(v);
        return false;
    }
    return true;
}

static bool s_int(struct json_object *o, const char *key, int64_t n)
{
    struct json_object *v = json_object_new_int64(n);

    if (v == NULL)
        return false;
    if (json_object_object_add(o, key, v) != 0) {
        json_object_put(v);
        return false;
    }
    return true;
}

static bool s_obj(struct json_object *o, const char *key, struct json_object *v)
{
    if (v == NULL)
        return false;
    if (json_object_object_add(o, key, v) != 0) {
        json_object_put(v);
        return false;
    }
    return true;
}

static struct json_object *s_peer(const struct kb_audit_peer *p)
{
    struct json_object *o = json_object_new_object();

    if (o != NULL && s_int(o, "uid", (int64_t)p->uid) && s_int(o, "gid", (int64_t)p->gid) &&
        s_int(o, "pid", (int64_t)p->pid))
        return o;
    json_object_put(o);
    return NULL;
}

static struct json_object *s_aws(const struct kb_audit_aws *a)
{
    struct json_object *o = json_object_new_object();

    if (o != NULL && s_str(o, "service", a->service) && s_str(o, "operation", a->operation) &&
        s_str(o, "request_id", a->request_id) && s_str(o, "code", a->code))
        return o;
    json_object_put(o);
    return NULL;
}

static bool s_members(struct json_object *o, const struct kb_audit_record *r, int64_t ts_ms)
{
    char ts[25];
    bool ok;

    kb_audit_format_ts(ts_ms, ts);
    ok = s_str(o, "ts", ts) && s_str(o, "event", r->event) && s_str(o, "tenant", r->tenant) &&
         s_str(o, "op", r->op) && s_str(o, "step", r->step) && s_str(o, "result", r->result) &&
         s_str(o, "arn", r->arn) && s_str(o, "version_id", r->version_id) &&
         s_str(o, "error", r->error);
    if (ok && r->peer != NULL)
        ok = s_obj(o, "peer", s_peer(r->peer));
    if (ok && r->aws.service != NULL)
        ok = s_obj(o, "aws", s_aws(&r->aws));
    for (size_t i = 0; ok && i < r->nfields; i++) {
        const struct kb_audit_field *f = &r->fields[i];

        ok = f->str != NULL ? s_obj(o, f->key, json_object_new_string(f->str))
                            : s_int(o, f->key, f->num);
    }
    return ok;
}

int kb_audit_record_members(const struct kb_audit_record *r, int64_t ts_ms, char *out, size_t cap,
                            size_t *len)
{
    struct json_object *o;
    const char *text;
    size_t n = 0;
    int rc = 0;

    if (r->event == NULL || r->event[0] == '\0')
        return KB_EINVAL;
    o = json_object_new_object();
    if (o == NULL)
        return KB_ENOMEM;
    if (!s_members(o, r, ts_ms)) {
        rc = KB_ENOMEM;
    } else {
        text = json_object_to_json_string_length(
            o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
        if (text == NULL || n < 2)
            rc = KB_ENOMEM;
        else if (n - 1 > cap)
            rc = KB_ETOOBIG;
        else
            memcpy(out, text + 1, n - 1); /* without the opening "{" */
    }
    json_object_put(o);
    if (rc == 0)
        *len = n - 1;
    return rc;
}

int kb_audit_record_prefix(uint64_t seq, uint64_t epoch, char *out, size_t cap)
{
    int n = snprintf(out, cap, "{\"seq\":%" PRIu64 ",\"epoch\":%" PRIu64 ",", seq, epoch);

    return n > 0 && (size_t)n < cap ? n : KB_ETOOBIG;
}

int kb_audit_record_body(const struct kb_audit_record *r, uint64_t seq, uint64_t epoch,
                         int64_t ts_ms, char *out, size_t cap, size_t *len)
{
    size_t n = 0;
    int p = kb_audit_record_prefix(seq, epoch, out, cap);
    int rc;

    if (p < 0)
        return p;
    rc = kb_audit_record_members(r, ts_ms, out + p, cap - (size_t)p, &n);
    if (rc == 0)
        *len = (size_t)p + n;
    return rc;
}
