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

/* Reads the members into vals (seen marks which were present); false on anything unexpected. */
static bool s_members(struct s_cursor *c, struct s_value *vals, bool *seen)
{
    struct s_value key;
    enum kb_proto_field f;

    if (!s_eat(c, '{'))
        return false;
    do {
        if (!s_string(c, &key) ||
            (f = kb_proto_field_from_name(key.p, key.len)) == KB_PROTO_FIELD_COUNT || seen[f] ||
            !s_eat(c, ':') || !s_value(c, &vals[f]))
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
    struct s_value vals[KB_PROTO_FIELD_COUNT];
    bool seen[KB_PROTO_FIELD_COUNT] = {false};
    const struct s_value *v = &vals[KB_PROTO_FIELD_V], *op = &vals[KB_PROTO_FIELD_OP];
    const struct s_value *t = &vals[KB_PROTO_FIELD_TENANT];

    if (line == NULL || len >= KB_PROTO_MAX_LINE || !s_members(&c, vals, seen))
        return false;
    if (!seen[KB_PROTO_FIELD_V] || v->kind != S_INT || v->len != 1 || v->p[0] != '1')
        return false;
    if (!seen[KB_PROTO_FIELD_OP] || op->kind != S_STRING)
        return false;
    memset(req, 0, sizeof(*req));
    req->op = kb_proto_op_from_name(op->p, op->len);
    if (req->op == KB_PROTO_OP_NONE)
        return false;
    for (int f = 0; f < KB_PROTO_FIELD_COUNT; f++) {
        if (seen[f] && (kb_proto_fields[f].ops & KB_PROTO_OP_BIT(req->op)) == 0)
            return false;
    }
    if (!seen[KB_PROTO_FIELD_ID])
        vals[KB_PROTO_FIELD_ID].kind = S_NULL; /* an absent id is null */
    if (!s_id(&vals[KB_PROTO_FIELD_ID], req->id))
        return false;
    if (seen[KB_PROTO_FIELD_TENANT] && t->kind != S_NULL) {
        if (t->kind != S_STRING || !kb_proto_tenant_valid(t->p, t->len))
            return false;
        memcpy(req->tenant, t->p, t->len);
        req->tenant[t->len] = '\0';
        req->has_tenant = true;
    }
    if (!req->has_tenant && (KB_PROTO_TENANT_REQUIRED & KB_PROTO_OP_BIT(req->op)) != 0)
        return false;
    if (seen[KB_PROTO_FIELD_DELETE_BUCKET] &&
        !s_bool(&vals[KB_PROTO_FIELD_DELETE_BUCKET], &req->delete_bucket))
        return false;
    if (seen[KB_PROTO_FIELD_FORCE_DELETE] &&
        !s_bool(&vals[KB_PROTO_FIELD_FORCE_DELETE], &req->force_delete_secret))
        return false;
    if (seen[KB_PROTO_FIELD_ADOPT_BUCKET] &&
        (!s_bool(&vals[KB_PROTO_FIELD_ADOPT_BUCKET], &req->adopt_bucket) ||
         (req->adopt_bucket && !req->has_tenant)))
        return false;
    if (seen[KB_PROTO_FIELD_ROLLBACK] && !s_bool(&vals[KB_PROTO_FIELD_ROLLBACK], &req->rollback))
        return false;
    /* ack (its version_id) goes through json-c. */
    if (req->op == KB_PROTO_OP_ACK || seen[KB_PROTO_FIELD_VERSION_ID])
        return false;
    /* "since" is an object: json-c reads it (only "since":null, absent, stays here). */
    if (seen[KB_PROTO_FIELD_SINCE] && vals[KB_PROTO_FIELD_SINCE].kind != S_NULL)
        return false;
    /* A list of names goes through json-c; only "tenants":null (every tenant) stays here. */
    return !seen[KB_PROTO_FIELD_TENANTS] || vals[KB_PROTO_FIELD_TENANTS].kind == S_NULL;
}
