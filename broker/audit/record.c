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
    /* The date and time of day change once a second; gmtime_r and strftime cost more than the
     * rest of a record, so each thread keeps the last second's text. */
    static _Thread_local int64_t cached_secs = INT64_MIN;
    static _Thread_local char cached[20];
    int64_t secs64 = ts_ms / 1000;
    int ms = (int)(ts_ms % 1000);
    time_t secs;
    struct tm tm;

    if (ms < 0) {
        ms += 1000;
        secs64 -= 1;
    }
    if (secs64 != cached_secs) {
        secs = (time_t)secs64;
        if (gmtime_r(&secs, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0)
            memset(&tm, 0, sizeof(tm));
        if (strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm) != 19)
            memcpy(cached, "0000-00-00T00:00:00", 20);
        cached_secs = secs64;
    }
    memcpy(out, cached, 19);
    out[19] = '.';
    out[20] = (char)('0' + ms / 100);
    out[21] = (char)('0' + ms / 10 % 10);
    out[22] = (char)('0' + ms % 10);
    out[23] = 'Z';
    out[24] = '\0';
}

/* -- the plain path: no string needs escaping ---------------------------------------------------
 *
 * Most records (every authz of a get) hold only names, ids and fixed words: printable ASCII
 * without '"' or '\\', which JSON writes as they are. For those the members are appended
 * directly, in exactly json-c's compact form (test_record checks the two agree byte for byte);
 * a record with any other byte in any string - a message quoting AWS, a control character,
 * UTF-8 - goes through json-c, which does the escaping. */

static bool s_plain(const char *s)
{
    if (s == NULL)
        return true;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
            return false;
    }
    return true;
}

static bool s_record_plain(const struct kb_audit_record *r)
{
    const char *const strs[] = {
        r->event,      r->tenant, r->op,          r->step,          r->result,         r->arn,
        r->version_id, r->error,  r->aws.service, r->aws.operation, r->aws.request_id, r->aws.code};

    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        if (!s_plain(strs[i]))
            return false;
    for (size_t i = 0; i < r->nfields; i++)
        if (!s_plain(r->fields[i].key) || !s_plain(r->fields[i].str))
            return false;
    return true;
}

struct s_out {
    char *p;
    size_t n, cap;
    bool first; /* no comma before the next member */
    bool over;
};

static void s_put(struct s_out *o, const char *s, size_t n)
{
    if (o->over || n > o->cap - o->n) {
        o->over = true;
        return;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

static void s_key(struct s_out *o, const char *key)
{
    if (!o->first)
        s_put(o, ",", 1);
    o->first = false;
    s_put(o, "\"", 1);
    s_put(o, key, strlen(key));
    s_put(o, "\":", 2);
}

static void s_pstr(struct s_out *o, const char *key, const char *v)
{
    if (v == NULL || v[0] == '\0')
        return;
    s_key(o, key);
    s_put(o, "\"", 1);
    s_put(o, v, strlen(v));
    s_put(o, "\"", 1);
}

/* The decimal digits of v into the end of buf (24 bytes); returns where they start. */
static char *s_digits(int64_t v, char buf[24])
{
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    char *p = buf + 24;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    return p;
}

static void s_pint(struct s_out *o, const char *key, int64_t v)
{
    char buf[24];
    char *p = s_digits(v, buf);

    s_key(o, key);
    s_put(o, p, (size_t)(buf + 24 - p));
}

static int s_members_plain(const struct kb_audit_record *r, int64_t ts_ms, char *out, size_t cap,
                           size_t *len)
{
    struct s_out o = {.p = out, .cap = cap, .first = true};
    char ts[25];

    kb_audit_format_ts(ts_ms, ts);
    s_pstr(&o, "ts", ts);
    s_pstr(&o, "event", r->event);
    s_pstr(&o, "tenant", r->tenant);
    s_pstr(&o, "op", r->op);
    s_pstr(&o, "step", r->step);
    s_pstr(&o, "result", r->result);
    s_pstr(&o, "arn", r->arn);
    s_pstr(&o, "version_id", r->version_id);
    s_pstr(&o, "error", r->error);
    if (r->peer != NULL) {
        s_key(&o, "peer");
        s_put(&o, "{", 1);
        o.first = true;
        s_pint(&o, "uid", (int64_t)r->peer->uid);
        s_pint(&o, "gid", (int64_t)r->peer->gid);
        s_pint(&o, "pid", (int64_t)r->peer->pid);
        s_put(&o, "}", 1);
    }
    if (r->aws.service != NULL) {
        s_key(&o, "aws");
        s_put(&o, "{", 1);
        o.first = true;
        s_pstr(&o, "service", r->aws.service);
        s_pstr(&o, "operation", r->aws.operation);
        s_pstr(&o, "request_id", r->aws.request_id);
        s_pstr(&o, "code", r->aws.code);
        s_put(&o, "}", 1);
    }
    for (size_t i = 0; i < r->nfields; i++) {
        const struct kb_audit_field *f = &r->fields[i];

        if (f->str != NULL) {
            s_key(&o, f->key); /* json-c keeps "" values of extra fields */
            s_put(&o, "\"", 1);
            s_put(&o, f->str, strlen(f->str));
            s_put(&o, "\"", 1);
        } else {
            s_pint(&o, f->key, f->num);
        }
    }
    s_put(&o, "}", 1);
    if (o.over)
        return KB_ETOOBIG;
    *len = o.n;
    return 0;
}

/* -- the json-c path -------------------------------------------------------------------------- */

/* Adds key -> v (taken; NULL: json-c ran out of memory). Returns false when it could not. */
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

/* Adds key: s unless s is NULL or "". */
static bool s_str(struct json_object *o, const char *key, const char *s)
{
    return s == NULL || s[0] == '\0' || s_obj(o, key, json_object_new_string(s));
}

static bool s_int(struct json_object *o, const char *key, int64_t n)
{
    return s_obj(o, key, json_object_new_int64(n));
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
    if (s_record_plain(r))
        return s_members_plain(r, ts_ms, out, cap, len);
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
    struct s_out o = {.p = out, .cap = cap > 0 ? cap - 1 : 0, .first = true};
    char buf[24];
    char *p;

    /* Digits by hand, not snprintf: this runs for every line written. */
    s_put(&o, "{\"seq\":", 7);
    p = s_digits((int64_t)seq, buf);
    s_put(&o, p, (size_t)(buf + 24 - p));
    s_put(&o, ",\"epoch\":", 9);
    p = s_digits((int64_t)epoch, buf);
    s_put(&o, p, (size_t)(buf + 24 - p));
    s_put(&o, ",", 1);
    if (o.over || seq > INT64_MAX || epoch > INT64_MAX)
        return KB_ETOOBIG;
    out[o.n] = '\0';
    return (int)o.n;
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
