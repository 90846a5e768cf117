/*
 * codec.c - the request side of the wire protocol: names of ops and error codes, the strict scan
 * that runs before json-c, and the request parser the broker runs on every line a client sends.
 *
 * Every line is untrusted. The parser bounds everything before it allocates (line length, depth,
 * id length, name count) and reads only the fields the op allows, so a typo is a bad_request and
 * not silently ignored. It must never do I/O, log, or echo a field's value in an error message.
 * Common flat requests are read by the fast path in codec_flat.c; every other line, and every
 * error, goes through the json-c path here.
 */
#include "codec.h"

#include <inttypes.h>
#include <json-c/json_object_iterator.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "common/err.h"

/* -- names ------------------------------------------------------------------------------------ */

static const char *const s_op_names[KB_PROTO_OP_COUNT] = {[KB_PROTO_OP_NONE] = NULL,
#define KB_X_OP(name, wire) [KB_PROTO_OP_##name] = wire,
                                                          KB_PROTO_OP_MAP(KB_X_OP)
#undef KB_X_OP
};

struct s_err_name {
    const char *wire;
    const char *message;
};

static const struct s_err_name s_err_names[] = {
    [KB_PROTO_OK] = {"ok", "success"},
#define KB_X_ERR(name, wire, msg) [KB_PROTO_E##name] = {wire, msg},
    KB_PROTO_ERR_MAP(KB_X_ERR)
#undef KB_X_ERR
        [KB_PROTO_EUNKNOWN] = {"internal", "internal error"},
};

const char *kb_proto_op_name(enum kb_proto_op op)
{
    if ((int)op <= KB_PROTO_OP_NONE || op >= KB_PROTO_OP_COUNT)
        return NULL;
    return s_op_names[op];
}

enum kb_proto_op kb_proto_op_from_name(const char *name, size_t len)
{
    for (int op = KB_PROTO_OP_NONE + 1; op < KB_PROTO_OP_COUNT; op++) {
        if (strlen(s_op_names[op]) == len && memcmp(s_op_names[op], name, len) == 0)
            return (enum kb_proto_op)op;
    }
    return KB_PROTO_OP_NONE;
}

const char *kb_proto_err_name(enum kb_proto_err code)
{
    if ((int)code < KB_PROTO_OK || code > KB_PROTO_EUNKNOWN)
        return "internal";
    return s_err_names[code].wire;
}

const char *kb_proto_err_message(enum kb_proto_err code)
{
    if ((int)code < KB_PROTO_OK || code > KB_PROTO_EUNKNOWN)
        return "internal error";
    return s_err_names[code].message;
}

enum kb_proto_err kb_proto_err_from_name(const char *name)
{
    for (int c = KB_PROTO_OK + 1; c < KB_PROTO_EUNKNOWN; c++) {
        if (name != NULL && strcmp(s_err_names[c].wire, name) == 0)
            return (enum kb_proto_err)c;
    }
    return KB_PROTO_EUNKNOWN;
}

bool kb_proto_tenant_valid(const char *s, size_t len)
{
    static const char extra[] = "+=,.@_-";

    if (s == NULL || len == 0 || len > KB_PROTO_MAX_TENANT)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

        if (!alnum && (c == '\0' || memchr(extra, c, sizeof(extra) - 1) == NULL))
            return false;
    }
    return true;
}

/* -- the scan --------------------------------------------------------------------------------- */

size_t kb_proto_utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char lo = 0x80, hi = 0xBF;
    size_t need;

    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        need = 1;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        need = 2;
        lo = p[0] == 0xE0 ? 0xA0 : 0x80;
        hi = p[0] == 0xED ? 0x9F : 0xBF;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        need = 3;
        lo = p[0] == 0xF0 ? 0x90 : 0x80;
        hi = p[0] == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (n < need + 1 || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t k = 2; k <= need; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return 0;
    }
    return need + 1;
}

/* Outside strings JSON has only whitespace, structure, numbers and the three literals. */
static bool s_outside_ok(unsigned char b)
{
    static const char ok[] = " \t\r\n{}[],:0123456789+-.eEtruefalsn";

    return b != '\0' && memchr(ok, b, sizeof(ok) - 1) != NULL;
}

enum kb_proto_err kb_proto_scan(const char *line, size_t len, char *msg, size_t msglen)
{
    const unsigned char *p = (const unsigned char *)line;
    bool in_string = false;
    size_t i = 0;

    /* UTF-8 first, over the whole line, so that a bad byte is bad_utf8 wherever it is. */
    while (i < len) {
        size_t n = p[i] < 0x80 ? 1 : kb_proto_utf8_seq(p + i, len - i);

        if (n == 0) {
            snprintf(msg, msglen, "invalid UTF-8 at byte %zu", i);
            return KB_PROTO_EBAD_UTF8;
        }
        i += n;
    }
    for (i = 0; i < len; i++) {
        if (in_string) {
            if (p[i] == '"') {
                in_string = false;
            } else if (p[i] == '\\') {
                i++; /* json-c checks which escapes are valid */
            } else if (p[i] < 0x20) {
                snprintf(msg, msglen, "raw control character in a string at byte %zu", i);
                return KB_PROTO_EBAD_JSON;
            }
        } else if (p[i] == '"') {
            in_string = true;
        } else if (!s_outside_ok(p[i])) {
            snprintf(msg, msglen, "unexpected character at byte %zu", i);
            return KB_PROTO_EBAD_JSON;
        }
    }
    return KB_PROTO_OK;
}

/* -- the tokenizer ---------------------------------------------------------------------------- */

static bool s_blank(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '\n')
            return false;
    }
    return true;
}

enum kb_proto_err kb_proto_tokenize(const char *line, size_t len, struct json_object **out,
                                    char *msg, size_t msglen)
{
    enum kb_proto_err code = KB_PROTO_OK;
    struct json_object *obj = NULL;
    struct json_tokener *tok;
    enum json_tokener_error jerr;

    *out = NULL;
    if (len > INT_MAX - 1) {
        snprintf(msg, msglen, "line too long to parse");
        return KB_PROTO_EBAD_JSON;
    }
    tok = json_tokener_new_ex(KB_PROTO_MAX_DEPTH);
    if (tok == NULL)
        return KB_PROTO_EINTERNAL;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    obj = json_tokener_parse_ex(tok, line, (int)len);
    jerr = json_tokener_get_error(tok);
    if (jerr == json_tokener_success && json_tokener_get_parse_end(tok) != len) {
        snprintf(msg, msglen, "unexpected data after the JSON value");
        code = KB_PROTO_EBAD_JSON;
        goto cleanup;
    }
    if (jerr == json_tokener_continue) {
        /* A number that ends the line is only complete once something follows it. */
        obj = json_tokener_parse_ex(tok, " ", 1);
        jerr = json_tokener_get_error(tok);
    }
    if (jerr == json_tokener_continue) {
        snprintf(msg, msglen, "%s", s_blank(line, len) ? "empty line" : "incomplete JSON");
        code = KB_PROTO_EBAD_JSON;
    } else if (jerr != json_tokener_success) {
        snprintf(msg, msglen, "invalid JSON: %s", json_tokener_error_desc(jerr));
        code = KB_PROTO_EBAD_JSON;
    }
cleanup:
    json_tokener_free(tok);
    if (code != KB_PROTO_OK) {
        json_object_put(obj);
        obj = NULL;
    }
    *out = obj;
    return code;
}

/* -- helpers shared with codec_format.c -------------------------------------------------------- */

int kb_proto_id_text(struct json_object *v, char *out)
{
    const char *text;
    size_t chars = 0, n;

    memcpy(out, "null", 5);
    if (v == NULL)
        return 0;
    if (json_object_is_type(v, json_type_int)) {
        int64_t x = json_object_get_int64(v);

        if (x > KB_PROTO_ID_INT_MAX || x < -KB_PROTO_ID_INT_MAX)
            return KB_EINVAL;
        snprintf(out, KB_PROTO_ID_SIZE, "%" PRId64, x);
        return 0;
    }
    if (!json_object_is_type(v, json_type_string))
        return KB_EINVAL;
    text = json_object_get_string(v);
    n = (size_t)json_object_get_string_len(v);
    for (size_t i = 0; i < n; i++)
        chars += ((unsigned char)text[i] & 0xC0) != 0x80;
    if (chars > KB_PROTO_MAX_ID_CHARS)
        return KB_EINVAL;
    text = json_object_to_json_string_length(v, KB_PROTO_JSON_FLAGS, &n);
    if (text == NULL || n >= KB_PROTO_ID_SIZE)
        return KB_EINVAL;
    memcpy(out, text, n + 1);
    return 0;
}

void kb_proto_copy_trunc(char *out, size_t cap, const char *s, size_t len)
{
    if (cap == 0)
        return;
    if (len > cap - 1) {
        len = cap - 1;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    memcpy(out, s, len);
    out[len] = '\0';
}

/* -- the request parser ----------------------------------------------------------------------- */

#define S_ALL_OPS 0xFFFFFFFFu
#define S_TENANT_OPS                                                                               \
    (KB_PROTO_OP_BIT(KB_PROTO_OP_GET) | KB_PROTO_OP_BIT(KB_PROTO_OP_STATUS) |                      \
     KB_PROTO_OP_BIT(KB_PROTO_OP_PROVISION) | KB_PROTO_OP_BIT(KB_PROTO_OP_ROTATE) |                \
     KB_PROTO_OP_BIT(KB_PROTO_OP_REVOKE) | KB_PROTO_OP_BIT(KB_PROTO_OP_ACK))

const struct kb_proto_field_rule kb_proto_fields[KB_PROTO_FIELD_COUNT] = {
    [KB_PROTO_FIELD_V] = {"v", S_ALL_OPS},
    [KB_PROTO_FIELD_ID] = {"id", S_ALL_OPS},
    [KB_PROTO_FIELD_OP] = {"op", S_ALL_OPS},
    [KB_PROTO_FIELD_TENANT] = {"tenant", S_TENANT_OPS},
    [KB_PROTO_FIELD_DELETE_BUCKET] = {"delete_bucket", KB_PROTO_OP_BIT(KB_PROTO_OP_REVOKE)},
    [KB_PROTO_FIELD_FORCE_DELETE] = {"force_delete_secret", KB_PROTO_OP_BIT(KB_PROTO_OP_REVOKE)},
    [KB_PROTO_FIELD_TENANTS] = {"tenants", KB_PROTO_OP_BIT(KB_PROTO_OP_WATCH)},
    [KB_PROTO_FIELD_ADOPT_BUCKET] = {"adopt_bucket", KB_PROTO_OP_BIT(KB_PROTO_OP_PROVISION)},
    [KB_PROTO_FIELD_SINCE] = {"since", KB_PROTO_OP_BIT(KB_PROTO_OP_WATCH)},
    [KB_PROTO_FIELD_ROLLBACK] = {"rollback", KB_PROTO_OP_BIT(KB_PROTO_OP_ROTATE)},
    [KB_PROTO_FIELD_VERSION_ID] = {"version_id", KB_PROTO_OP_BIT(KB_PROTO_OP_ACK)},
};

bool kb_proto_version_valid(const char *s, size_t len)
{
    if (s == NULL || len < 32 || len > KB_PROTO_MAX_VERSION)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];

        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

bool kb_proto_epoch_valid(const char *s, size_t len)
{
    if (s == NULL || len != KB_PROTO_EPOCH_SIZE - 1)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

enum kb_proto_field kb_proto_field_from_name(const char *name, size_t len)
{
    int f = 0;

    while (f < KB_PROTO_FIELD_COUNT && (strlen(kb_proto_fields[f].name) != len ||
                                        memcmp(kb_proto_fields[f].name, name, len) != 0))
        f++;
    return (enum kb_proto_field)f;
}

__attribute__((format(printf, 3, 4))) static int
s_fail(struct kb_proto_error *err, enum kb_proto_err code, const char *fmt, ...)
{
    va_list ap;

    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return code == KB_PROTO_EINTERNAL ? KB_ENOMEM : KB_EPARSE;
}

/* A field name fit to quote in a message: at most 48 bytes, cut at a character boundary. */
static const char *s_quote(const char *name, char *buf, size_t cap)
{
    kb_proto_copy_trunc(buf, cap, name, strlen(name));
    return buf;
}

/* The id (read first, so every later error echoes it), then "v", then "op". */
static int s_parse_header(struct json_object *root, struct kb_proto_request *req,
                          struct kb_proto_error *err)
{
    struct json_object *v = NULL;
    const char *op;

    if (json_object_object_get_ex(root, "id", &v) && kb_proto_id_text(v, req->id) != 0)
        return s_fail(err, KB_PROTO_EBAD_REQUEST,
                      "field \"id\" must be a string of at most %d characters, an integer of at "
                      "most 2^53-1 in magnitude, or null",
                      KB_PROTO_MAX_ID_CHARS);
    memcpy(err->id, req->id, sizeof(err->id));
    if (!json_object_object_get_ex(root, "v", &v))
        return s_fail(err, KB_PROTO_EBAD_REQUEST, "field \"v\" is missing: send \"v\":1");
    if (!json_object_is_type(v, json_type_int))
        return s_fail(err, KB_PROTO_EBAD_REQUEST, "field \"v\" must be an integer");
    if (json_object_get_int64(v) != KB_PROTO_VERSION)
        return s_fail(err, KB_PROTO_EUNSUPPORTED_VERSION,
                      "unsupported protocol version: this broker speaks \"v\":1");
    if (!json_object_object_get_ex(root, "op", &v) || v == NULL)
        return s_fail(err, KB_PROTO_EBAD_REQUEST, "field \"op\" is missing");
    if (!json_object_is_type(v, json_type_string))
        return s_fail(err, KB_PROTO_EBAD_REQUEST, "field \"op\" must be a string");
    op = json_object_get_string(v);
    req->op = kb_proto_op_from_name(op, (size_t)json_object_get_string_len(v));
    if (req->op == KB_PROTO_OP_NONE)
        return s_fail(err, KB_PROTO_EUNKNOWN_OP,
                      "unknown op; known ops: get, list, status, provision, rotate, revoke, "
                      "watch, metrics, ack");
    return 0;
}

static int s_read_tenant_name(struct json_object *v, char *out, struct kb_proto_error *err,
                              const char *what)
{
    size_t len;

    if (!json_object_is_type(v, json_type_string))
        return s_fail(err, KB_PROTO_EBAD_REQUEST, "%s must be a string", what);
    len = (size_t)json_object_get_string_len(v);
    if (!kb_proto_tenant_valid(json_object_get_string(v), len))
        return s_fail(err, KB_PROTO_EBAD_REQUEST,
                      "%s must be a tenant name: 1 to 64 characters of A-Z a-z 0-9 + = , . @ _ -",
                      what);
    if (out != NULL)
        memcpy(out, json_object_get_string(v), len + 1);
    return 0;
}

/* "tenants": 1..KB_PROTO_MAX_WATCH names, stored as one block (pointers, then the strings). */
static int s_read_tenants(struct json_object *arr, struct kb_proto_request *req,
                          struct kb_proto_error *err)
{
    size_t n, size, i;
    char **names, *p;
    int rc;

    if (!json_object_is_type(arr, json_type_array))
        return s_fail(err, KB_PROTO_EBAD_REQUEST, "field \"tenants\" must be an array of names");
    n = json_object_array_length(arr);
    if (n == 0 || n > KB_PROTO_MAX_WATCH)
        return s_fail(err, KB_PROTO_EBAD_REQUEST,
                      "field \"tenants\" must name 1 to %d tenants (omit it to watch all)",
                      KB_PROTO_MAX_WATCH);
    size = n * sizeof(char *);
    for (i = 0; i < n; i++) {
        rc = s_read_tenant_name(json_object_array_get_idx(arr, i), NULL, err,
                                "each entry of \"tenants\"");
        if (rc != 0)
            return rc;
        size += (size_t)json_object_get_string_len(json_object_array_get_idx(arr, i)) + 1;
    }
    names = malloc(size);
    if (names == NULL)
        return s_fail(err, KB_PROTO_EINTERNAL, "out of memory");
    p = (char *)(names + n);
    for (i = 0; i < n; i++) {
        struct json_object *v = json_object_array_get_idx(arr, i);
        size_t len = (size_t)json_object_get_string_len(v);

        memcpy(p, json_object_get_string(v), len + 1);
        names[i] = p;
        p += len + 1;
    }
    free(req->owned_); /* json-c keeps one value per key, so this is only defensive */
    req->owned_ = names;
    req->tenants = (const char *const *)names;
    req->tenant_count = n;
    return 0;
}

static int s_read_bool(struct json_object *v, bool *out, const char *name,
                       struct kb_proto_error *err)
{
    if (v == NULL) {
        *out = false;
        return 0;
    }
    if (!json_object_is_type(v, json_type_boolean))
        return s_fail(err, KB_PROTO_EBAD_REQUEST, "field \"%s\" must be true or false", name);
    *out = json_object_get_boolean(v);
    return 0;
}

/* "since": {"epoch": "<16 hex digits>", "seq": 0..2^53-1}, nothing else. */
static int s_read_since(struct json_object *v, struct kb_proto_request *req,
                        struct kb_proto_error *err)
{
    static const char what[] =
        "field \"since\" must be {\"epoch\": \"<16 hex digits>\", \"seq\": <integer >= 0>}";
    struct json_object *e = NULL, *q = NULL;
    int64_t seq;

    if (!json_object_is_type(v, json_type_object) || json_object_object_length(v) != 2 ||
        !json_object_object_get_ex(v, "epoch", &e) || !json_object_object_get_ex(v, "seq", &q) ||
        !json_object_is_type(e, json_type_string) || !json_object_is_type(q, json_type_int))
        return s_fail(err, KB_PROTO_EBAD_REQUEST, "%s", what);
    seq = json_object_get_int64(q);
    if (!kb_proto_epoch_valid(json_object_get_string(e), (size_t)json_object_get_string_len(e)) ||
        seq < 0 || seq > KB_PROTO_ID_INT_MAX)
        return s_fail(err, KB_PROTO_EBAD_REQUEST, "%s", what);
    memcpy(req->since_epoch, json_object_get_string(e), KB_PROTO_EPOCH_SIZE);
    req->since_seq = (uint64_t)seq;
    req->has_since = true;
    return 0;
}

/* One top-level field; null means absent for every optional field. */
static int s_read_field(enum kb_proto_field f, struct json_object *v, struct kb_proto_request *req,
                        struct kb_proto_error *err)
{
    switch (f) {
    case KB_PROTO_FIELD_V: /* the header was read first */
    case KB_PROTO_FIELD_ID:
    case KB_PROTO_FIELD_OP:
        return 0;
    case KB_PROTO_FIELD_TENANT:
        if (v == NULL)
            return 0;
        req->has_tenant = true;
        return s_read_tenant_name(v, req->tenant, err, "field \"tenant\"");
    case KB_PROTO_FIELD_DELETE_BUCKET:
        return s_read_bool(v, &req->delete_bucket, "delete_bucket", err);
    case KB_PROTO_FIELD_FORCE_DELETE:
        return s_read_bool(v, &req->force_delete_secret, "force_delete_secret", err);
    case KB_PROTO_FIELD_TENANTS:
        return v == NULL ? 0 : s_read_tenants(v, req, err);
    case KB_PROTO_FIELD_ADOPT_BUCKET:
        return s_read_bool(v, &req->adopt_bucket, "adopt_bucket", err);
    case KB_PROTO_FIELD_SINCE:
        return v == NULL ? 0 : s_read_since(v, req, err);
    case KB_PROTO_FIELD_ROLLBACK:
        return s_read_bool(v, &req->rollback, "rollback", err);
    case KB_PROTO_FIELD_VERSION_ID:
        if (v == NULL)
            return 0;
        if (!json_object_is_type(v, json_type_string) ||
            !kb_proto_version_valid(json_object_get_string(v),
                                    (size_t)json_object_get_string_len(v)))
            return s_fail(err, KB_PROTO_EBAD_REQUEST,
                          "field \"version_id\" must be a version id: 32 to 64 characters of "
                          "A-Z a-z 0-9 - _");
        memcpy(req->version_id, json_object_get_string(v),
               (size_t)json_object_get_string_len(v) + 1);
        return 0;
    case KB_PROTO_FIELD_COUNT:
        break;
    }
    return s_fail(err, KB_PROTO_EINTERNAL, "internal error");
}

static int s_parse_fields(struct json_object *root, struct kb_proto_request *req,
                          struct kb_proto_error *err)
{
    struct json_object_iterator it = json_object_iter_begin(root);
    struct json_object_iterator end = json_object_iter_end(root);
    char quoted[49];
    int rc = 0;

    for (; rc == 0 && !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *name = json_object_iter_peek_name(&it);
        enum kb_proto_field f = kb_proto_field_from_name(name, strlen(name));

        if (f == KB_PROTO_FIELD_COUNT)
            return s_fail(err, KB_PROTO_EBAD_REQUEST, "unknown field \"%s\"",
                          s_quote(name, quoted, sizeof(quoted)));
        if ((kb_proto_fields[f].ops & KB_PROTO_OP_BIT(req->op)) == 0)
            return s_fail(err, KB_PROTO_EBAD_REQUEST, "field \"%s\" is not allowed in op \"%s\"",
                          name, kb_proto_op_name(req->op));
        rc = s_read_field(f, json_object_iter_peek_value(&it), req, err);
    }
    if (rc == 0 && (KB_PROTO_TENANT_REQUIRED & KB_PROTO_OP_BIT(req->op)) != 0 && !req->has_tenant)
        rc = s_fail(err, KB_PROTO_EBAD_REQUEST, "field \"tenant\" is missing (op \"%s\" needs it)",
                    kb_proto_op_name(req->op));
    if (rc == 0 && req->adopt_bucket && !req->has_tenant)
        rc = s_fail(err, KB_PROTO_EBAD_REQUEST,
                    "field \"tenant\" is missing (\"adopt_bucket\" names one tenant)");
    if (rc == 0 && req->op == KB_PROTO_OP_ACK && req->version_id[0] == '\0')
        rc = s_fail(err, KB_PROTO_EBAD_REQUEST,
                    "field \"version_id\" is missing (op \"ack\" needs the version you use)");
    return rc;
}

int kb_proto_parse_request(const char *line, size_t len, struct kb_proto_request *req,
                           struct kb_proto_error *err)
{
    if (kb_proto_parse_flat(line, len, req)) {
        err->code = KB_PROTO_OK;
        memcpy(err->id, req->id, sizeof(err->id));
        err->message[0] = '\0';
        return 0;
    }
    return kb_proto_parse_json(line, len, req, err);
}

int kb_proto_parse_json(const char *line, size_t len, struct kb_proto_request *req,
                        struct kb_proto_error *err)
{
    struct json_object *root = NULL;
    enum kb_proto_err code;
    int rc = 0;

    if (line == NULL) {
        line = "";
        len = 0;
    }
    memset(req, 0, sizeof(*req));
    memset(err, 0, sizeof(*err));
    memcpy(req->id, "null", 5);
    memcpy(err->id, "null", 5);
    if (len >= KB_PROTO_MAX_LINE) {
        rc = s_fail(err, KB_PROTO_ELINE_TOO_LONG,
                    "request line longer than %d bytes with its newline; closing",
                    KB_PROTO_MAX_LINE);
        goto cleanup;
    }
    code = kb_proto_scan(line, len, err->message, sizeof(err->message));
    if (code == KB_PROTO_OK)
        code = kb_proto_tokenize(line, len, &root, err->message, sizeof(err->message));
    if (code == KB_PROTO_EINTERNAL) {
        rc = s_fail(err, code, "out of memory");
        goto cleanup;
    }
    if (code != KB_PROTO_OK) {
        err->code = code; /* the scan or the tokenizer wrote the message */
        rc = KB_EPARSE;
        goto cleanup;
    }
    if (!json_object_is_type(root, json_type_object)) {
        rc = s_fail(err, KB_PROTO_EBAD_REQUEST, "a request must be a JSON object");
        goto cleanup;
    }
    rc = s_parse_header(root, req, err);
    if (rc == 0)
        rc = s_parse_fields(root, req, err);
cleanup:
    json_object_put(root);
    if (rc != 0)
        kb_proto_request_cleanup(req);
    return rc;
}

void kb_proto_request_cleanup(struct kb_proto_request *req)
{
    if (req == NULL)
        return;
    free(req->owned_);
    memset(req, 0, sizeof(*req));
}
