/*
 * codec_flat.c - the request parser's fast path: one pass over a flat request line, no json-c.
 *
 * Nearly every line a broker reads is a small flat object such as
 * {"v":1,"id":7,"op":"get","tenant":"app"}, and building a json-c tree for it (a tokener, a hash
 * table, a locale switch, a dozen allocations) used to cost more CPU than the socket I/O around
 * it. This reader accepts only lines it can answer for exactly: a flat object whose keys are the
 * protocol's fields, each at most once, whose strings are printable ASCII without escapes, whose
 * integers are canonical and short, and which makes a complete valid request. For such a line its
 * result is, byte for byte, what the json-c path (kb_proto_parse_json) gives; anything else - an
 * error of any kind, an escape, UTF-8, an array, a float, a duplicate key - it declines, and the
 * json-c path decides and words the error. So it never refuses a line and never writes an error
 * message. test_codec_flat and fuzz_codec check the equivalence on every line they make.
 *
 * It must never accept a line the json-c path would refuse or read differently.
 */
#include <string.h>

#include "codec_internal.h"

/* Integers copied verbatim: at most 15 digits, so below 2^53 - 1 (KB_PROTO_ID_INT_MAX). */
#define S_MAX_DIGITS 15

enum s_kind { S_STRING, S_INT, S_TRUE, S_FALSE, S_NULL };

/* A scalar value: a view into the line (a string without its quotes, an integer's digits). */
struct s_value {
    enum s_kind kind;
    const char *p;
    size_t len;
};

struct s_cursor {
    const char *p;
    const char *end;
};

static void s_skip_ws(struct s_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
        c->p++;
}

static bool s_eat(struct s_cursor *c, char ch)
{
    s_skip_ws(c);
    if (c->p == c->end || *c->p != ch)
        return false;
    c->p++;
    return true;
}

/* A string of printable ASCII without '\\': the bytes between the quotes are its value. */
static bool s_string(struct s_cursor *c, struct s_value *v)
{
    const char *start;

    if (!s_eat(c, '"'))
        return false;
    start = c->p;
    while (c->p < c->end && *c->p != '"') {
        unsigned char b = (unsigned char)*c->p;

        if (b < 0x20 || b > 0x7e || b == '\\')
            return false;
        c->p++;
    }
    if (c->p == c->end)
        return false;
    *v = (struct s_value){S_STRING, start, (size_t)(c->p - start)};
    c->p++;
    return true;
}

/* -?(0|[1-9][0-9]*) with at most S_MAX_DIGITS digits and not "-0", ended by a delimiter (so
 * "1.5" and "1e3" are declined, not read as 1). */
static bool s_int(struct s_cursor *c, struct s_value *v)
{
    const char *start = c->p;
    size_t digits = 0;

    if (c->p < c->end && *c->p == '-')
        c->p++;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        c->p++;
        digits++;
    }
    if (digits == 0 || digits > S_MAX_DIGITS || c->p == c->end)
        return false;
    if (start[start[0] == '-'] == '0' && (digits > 1 || start[0] == '-'))
        return false;
    if (*c->p != ',' && *c->p != '}' && *c->p != ' ' && *c->p != '\t' && *c->p != '\r' &&
        *c->p != '\n')
        return false;
    *v = (struct s_value){S_INT, start, (size_t)(c->p - start)};
    return true;
}

static bool s_word(struct s_cursor *c, const char *word, enum s_kind kind, struct s_value *v)
{
    size_t n = strlen(word);

    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return false;
    c->p += n;
    *v = (struct s_value){kind, NULL, 0};
    return true;
}

static bool s_value(struct s_cursor *c, struct s_value *v)
{
    s_skip_ws(c);
    if (c->p == c->end)
        return false;
    switch (*c->p) {
    case '"':
        return s_string(c, v);
    case 't':
        return s_word(c, "true", S_TRUE, v);
    case 'f':
        return s_word(c, "false", S_FALSE, v);
    case 'n':
        return s_word(c, "null", S_NULL, v);
    default:
        return s_int(c, v);
    }
}

/* -- the fields -------------------------------------------------------------------------------- */

enum s_field { S_V, S_ID, S_OP, S_TENANT, S_DELETE_BUCKET, S_FORCE_DELETE, S_TENANTS, S_NFIELDS };

static const char *const s_names[S_NFIELDS] = {
    [S_V] = "v",
    [S_ID] = "id",
    [S_OP] = "op",
    [S_TENANT] = "tenant",
    [S_DELETE_BUCKET] = "delete_bucket",
    [S_FORCE_DELETE] = "force_delete_secret",
    [S_TENANTS] = "tenants",
};

static int s_field_of(const struct s_value *key)
{
    for (int f = 0; f < S_NFIELDS; f++) {
        if (strlen(s_names[f]) == key->len && memcmp(s_names[f], key->p, key->len) == 0)
            return f;
    }
    return -1;
}

/* Reads the members into vals (seen marks which were present); false on anything unexpected. */
static bool s_members(struct s_cursor *c, struct s_value *vals, bool *seen)
{
    struct s_value key;
    int f;

    if (!s_eat(c, '{'))
        return false;
    do {
        if (!s_string(c, &key) || (f = s_field_of(&key)) < 0 || seen[f] || !s_eat(c, ':') ||
            !s_value(c, &vals[f]))
            return false;
        seen[f] = true;
    } while (s_eat(c, ','));
    if (!s_eat(c, '}'))
        return false;
    s_skip_ws(c);
    return c->p == c->end;
}

static bool s_bool(const struct s_value *v, bool *out)
{
    if (v->kind != S_TRUE && v->kind != S_FALSE && v->kind != S_NULL)
        return false;
    *out = v->kind == S_TRUE;
    return true;
}

/* Which fields each op allows beside v, id and op (the json-c path's table, in short). */
static bool s_allowed(enum kb_proto_op op, int f)
{
    switch (f) {
    case S_TENANT:
        return op == KB_PROTO_OP_GET || op == KB_PROTO_OP_STATUS || op == KB_PROTO_OP_PROVISION ||
               op == KB_PROTO_OP_ROTATE || op == KB_PROTO_OP_REVOKE;
    case S_DELETE_BUCKET:
    case S_FORCE_DELETE:
        return op == KB_PROTO_OP_REVOKE;
    case S_TENANTS:
        return op == KB_PROTO_OP_WATCH;
    default:
        return true;
    }
}

/* The id as the json-c path writes it: null, the integer's digits, or the string in quotes. */
static bool s_id(const struct s_value *v, char *out)
{
    switch (v->kind) {
    case S_NULL:
        memcpy(out, "null", 5);
        return true;
    case S_INT:
        memcpy(out, v->p, v->len);
        out[v->len] = '\0';
        return true;
    case S_STRING:
        if (v->len > KB_PROTO_MAX_ID_CHARS)
            return false;
        out[0] = '"';
        memcpy(out + 1, v->p, v->len);
        memcpy(out + 1 + v->len, "\"", 2);
        return true;
    default:
        return false;
    }
}

bool kb_proto_parse_flat(const char *line, size_t len, struct kb_proto_request *req)
{
    struct s_cursor c = {line, line + len};
    struct s_value vals[S_NFIELDS];
    bool seen[S_NFIELDS] = {false};
    const struct s_value *t = &vals[S_TENANT];

    if (line == NULL || len >= KB_PROTO_MAX_LINE || !s_members(&c, vals, seen))
        return false;
    if (!seen[S_V] || vals[S_V].kind != S_INT || vals[S_V].len != 1 || vals[S_V].p[0] != '1')
        return false;
    if (!seen[S_OP] || vals[S_OP].kind != S_STRING)
        return false;
    memset(req, 0, sizeof(*req));
    req->op = kb_proto_op_from_name(vals[S_OP].p, vals[S_OP].len);
    if (req->op == KB_PROTO_OP_NONE)
        return false;
    for (int f = S_TENANT; f < S_NFIELDS; f++) {
        if (seen[f] && !s_allowed(req->op, f))
            return false;
    }
    if (!s_id(seen[S_ID] ? &vals[S_ID] : &(struct s_value){S_NULL, NULL, 0}, req->id))
        return false;
    if (seen[S_TENANT] && t->kind != S_NULL) {
        if (t->kind != S_STRING || !kb_proto_tenant_valid(t->p, t->len))
            return false;
        memcpy(req->tenant, t->p, t->len);
        req->tenant[t->len] = '\0';
        req->has_tenant = true;
    }
    if (!req->has_tenant && (req->op == KB_PROTO_OP_GET || req->op == KB_PROTO_OP_ROTATE ||
                             req->op == KB_PROTO_OP_REVOKE))
        return false;
    if (seen[S_DELETE_BUCKET] && !s_bool(&vals[S_DELETE_BUCKET], &req->delete_bucket))
        return false;
    if (seen[S_FORCE_DELETE] && !s_bool(&vals[S_FORCE_DELETE], &req->force_delete_secret))
        return false;
    /* A list of names goes through json-c; only "tenants":null (every tenant) stays here. */
    return !seen[S_TENANTS] || vals[S_TENANTS].kind == S_NULL;
}
