/*
 * verify_anchor.c - anchor objects: their key names and bodies (shared with the writer), and
 * what the verifier keeps of the listed versions to check the log against them.
 *
 * An anchor body has one canonical text (kb_audit_anchor_body's). The parser reads the fields
 * with json-c, to name the one that is wrong, and then requires the body to be exactly that
 * text: a body with duplicate members, other members or another spelling of a number says more
 * than one thing to different readers, and the writer never makes one.
 */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/record.h"
#include "audit/verify_internal.h"
#include "common/err.h"

#define S_SEQ_DIGITS 20

static bool s_lower_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

/* A file name an anchor can carry unescaped: printable ASCII without '"', '\\' or '/'. */
static bool s_file_ok(const char *f, size_t len)
{
    if (len == 0 || len > KB_AUDIT_ANCHOR_FILE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (f[i] < 0x20 || f[i] > 0x7e || f[i] == '"' || f[i] == '\\' || f[i] == '/')
            return false;
    }
    return true;
}

static bool s_ts_ok(const char *ts, size_t len)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";

    if (len != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (shape[i] == 'd' ? ts[i] < '0' || ts[i] > '9' : ts[i] != shape[i])
            return false;
    }
    return true;
}

int kb_audit_anchor_key(const char *prefix, const char *chain_id, uint64_t seq, char *out,
                        size_t cap)
{
    int n;

    if (chain_id == NULL || strlen(chain_id) != KB_AUDIT_CHAIN_ID_LEN ||
        !s_lower_hex(chain_id, KB_AUDIT_CHAIN_ID_LEN))
        return KB_EINVAL;
    n = snprintf(out, cap, "%s%s/%020" PRIu64 ".json", prefix != NULL ? prefix : "", chain_id, seq);
    return n >= 0 && (size_t)n < cap ? 0 : KB_ETOOBIG;
}

int kb_audit_anchor_key_parse(const char *prefix, const char *key, size_t key_len,
                              char chain_id[KB_AUDIT_CHAIN_ID_LEN + 1], uint64_t *seq)
{
    size_t plen = prefix != NULL ? strlen(prefix) : 0;
    const char *p;
    uint64_t v = 0;

    if (key_len != plen + KB_AUDIT_CHAIN_ID_LEN + 1 + S_SEQ_DIGITS + 5 ||
        (plen > 0 && memcmp(key, prefix, plen) != 0))
        return KB_EPARSE;
    p = key + plen;
    if (!s_lower_hex(p, KB_AUDIT_CHAIN_ID_LEN) || p[KB_AUDIT_CHAIN_ID_LEN] != '/' ||
        memcmp(p + KB_AUDIT_CHAIN_ID_LEN + 1 + S_SEQ_DIGITS, ".json", 5) != 0)
        return KB_EPARSE;
    for (size_t i = 0; i < S_SEQ_DIGITS; i++) {
        char c = p[KB_AUDIT_CHAIN_ID_LEN + 1 + i];

        if (c < '0' || c > '9' || v > (UINT64_MAX - (uint64_t)(c - '0')) / 10)
            return KB_EPARSE;
        v = v * 10 + (uint64_t)(c - '0');
    }
    memcpy(chain_id, p, KB_AUDIT_CHAIN_ID_LEN);
    chain_id[KB_AUDIT_CHAIN_ID_LEN] = '\0';
    *seq = v;
    return 0;
}

int kb_audit_anchor_body(const struct kb_audit_anchor *a, char *out, size_t cap, size_t *len)
{
    char h[KB_AUDIT_HEX_LEN + 1], tag[KB_AUDIT_HEX_LEN + 1];
    int n;

    if (strlen(a->chain_id) != KB_AUDIT_CHAIN_ID_LEN ||
        !s_lower_hex(a->chain_id, KB_AUDIT_CHAIN_ID_LEN) || !s_file_ok(a->file, strlen(a->file)) ||
        !s_ts_ok(a->ts, strlen(a->ts)) || a->seq > INT64_MAX || a->epoch > INT64_MAX)
        return KB_EINVAL;
    kb_audit_hex(a->h, sizeof(a->h), h);
    kb_audit_hex(a->tag, sizeof(a->tag), tag);
    n = snprintf(out, cap,
                 "{\"v\":1,\"chain_id\":\"%s\",\"file\":\"%s\",\"seq\":%" PRIu64
                 ",\"epoch\":%" PRIu64 ",\"h\":\"%s\"%s%s%s,\"ts\":\"%s\"}",
                 a->chain_id, a->file, a->seq, a->epoch, h, a->has_tag ? ",\"tag\":\"" : "",
                 a->has_tag ? tag : "", a->has_tag ? "\"" : "", a->ts);
    if (n < 0 || (size_t)n >= cap)
        return KB_ETOOBIG;
    *len = (size_t)n;
    return 0;
}

/* -- parsing --------------------------------------------------------------------------------- */

static struct json_object *s_get(struct json_object *o, const char *key, enum json_type type)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
        return NULL;
    return v;
}

static bool s_hex_member(struct json_object *o, const char *key, uint8_t *out, size_t n)
{
    struct json_object *v = s_get(o, key, json_type_string);
    const char *s = v != NULL ? json_object_get_string(v) : NULL;
    size_t len = v != NULL ? (size_t)json_object_get_string_len(v) : 0;

    return s != NULL && len == 2 * n && s_lower_hex(s, len) && kb_audit_unhex(s, len, out, n) == 0;
}

static bool s_uint_member(struct json_object *o, const char *key, uint64_t *out)
{
    struct json_object *v = s_get(o, key, json_type_int);

    if (v == NULL || json_object_get_int64(v) < 0)
        return false;
    *out = (uint64_t)json_object_get_int64(v);
    return true;
}

static int s_fields(struct json_object *o, struct kb_audit_anchor *a, char *why, size_t why_len)
{
    struct json_object *v;
    uint64_t ver = 0;
    const char *s;
    size_t len;

    if (!s_uint_member(o, "v", &ver) || ver != 1)
        return kb_err_msg(why, why_len, KB_EPARSE, "v: must be 1");
    v = s_get(o, "chain_id", json_type_string);
    if (v == NULL || json_object_get_string_len(v) != KB_AUDIT_CHAIN_ID_LEN ||
        !s_lower_hex(json_object_get_string(v), KB_AUDIT_CHAIN_ID_LEN))
        return kb_err_msg(why, why_len, KB_EPARSE, "chain_id: must be 32 lowercase hex digits");
    memcpy(a->chain_id, json_object_get_string(v), KB_AUDIT_CHAIN_ID_LEN + 1);
    v = s_get(o, "file", json_type_string);
    s = v != NULL ? json_object_get_string(v) : NULL;
    len = v != NULL ? (size_t)json_object_get_string_len(v) : 0;
    if (s == NULL || !s_file_ok(s, len))
        return kb_err_msg(why, why_len, KB_EPARSE,
                          "file: must be a file name of 1 to %d printable characters",
                          KB_AUDIT_ANCHOR_FILE_MAX);
    memcpy(a->file, s, len + 1);
    if (!s_uint_member(o, "seq", &a->seq))
        return kb_err_msg(why, why_len, KB_EPARSE, "seq: must be an integer >= 0");
    if (!s_uint_member(o, "epoch", &a->epoch))
        return kb_err_msg(why, why_len, KB_EPARSE, "epoch: must be an integer >= 0");
    if (!s_hex_member(o, "h", a->h, sizeof(a->h)))
        return kb_err_msg(why, why_len, KB_EPARSE, "h: must be 64 lowercase hex digits");
    a->has_tag = json_object_object_get_ex(o, "tag", NULL);
    if (a->has_tag && !s_hex_member(o, "tag", a->tag, sizeof(a->tag)))
        return kb_err_msg(why, why_len, KB_EPARSE, "tag: must be 64 lowercase hex digits");
    v = s_get(o, "ts", json_type_string);
    if (v == NULL || !s_ts_ok(json_object_get_string(v), (size_t)json_object_get_string_len(v)))
        return kb_err_msg(why, why_len, KB_EPARSE,
                          "ts: must be a UTC time with milliseconds (2026-12-04T03:28:01.123Z)");
    memcpy(a->ts, json_object_get_string(v), 25);
    return 0;
}

int kb_audit_anchor_parse(const char *body, size_t len, struct kb_audit_anchor *out, char *why,
                          size_t why_len)
{
    char canon[KB_AUDIT_ANCHOR_BODY_MAX];
    struct json_tokener *tok;
    struct json_object *o;
    size_t clen = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (len > 0 && body[len - 1] == '\n')
        len--;
    if (len > KB_AUDIT_ANCHOR_BODY_MAX)
        return kb_err_msg(why, why_len, KB_EPARSE, "the body is longer than an anchor can be");
    tok = json_tokener_new();
    if (tok == NULL)
        return KB_ENOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, body, (int)len);
    if (o == NULL || json_tokener_get_parse_end(tok) != len ||
        !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        json_tokener_free(tok);
        return kb_err_msg(why, why_len, KB_EPARSE, "the body is not one JSON object");
    }
    json_tokener_free(tok);
    rc = s_fields(o, out, why, why_len);
    json_object_put(o);
    if (rc == 0 && (kb_audit_anchor_body(out, canon, sizeof(canon), &clen) != 0 || clen != len ||
                    memcmp(canon, body, len) != 0))
        rc = kb_err_msg(why, why_len, KB_EPARSE,
                        "the body is not in the anchor's one form (members, order, spelling)");
    return rc;
}

/* -- the verifier's anchors ------------------------------------------------------------------ */

static char *s_dup(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    char *d = malloc(n + 1);

    if (d != NULL) {
        if (n > 0)
            memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

int kb_audit__anchors_add(struct kb_audit__anchors *an, const char *key, const char *version_id,
                          bool delete_marker, const char *body, size_t body_len)
{
    struct kb_audit__anchor_obj *o;

    if (an->n == an->cap) {
        size_t cap = an->cap ? an->cap * 2 : 64;
        void *p = realloc(an->objs, cap * sizeof(*an->objs));

        if (p == NULL)
            return KB_ENOMEM;
        an->objs = p;
        an->cap = cap;
    }
    o = &an->objs[an->n];
    memset(o, 0, sizeof(*o));
    o->key = s_dup(key);
    o->version_id = s_dup(version_id);
    if (o->key == NULL || o->version_id == NULL) {
        free(o->key);
        free(o->version_id);
        return KB_ENOMEM;
    }
    an->n++;
    o->delete_marker = delete_marker;
    if (kb_audit_anchor_key_parse(an->prefix, key, strlen(key), o->chain_id, &o->seq) != 0)
        o->chain_id[0] = '\0'; /* not an anchor's name: counted with the other chains' */
    if (delete_marker || o->chain_id[0] == '\0')
        return 0;
    if (body == NULL) {
        snprintf(o->why, sizeof(o->why), "it has no body");
    } else if (kb_audit_anchor_parse(body, body_len, &o->a, o->why, sizeof(o->why)) == 0) {
        if (strcmp(o->a.chain_id, o->chain_id) != 0 || o->a.seq != o->seq)
            snprintf(o->why, sizeof(o->why),
                     "its body names chain %.32s seq %" PRIu64 ", not its key's", o->a.chain_id,
                     o->a.seq);
        else
            o->parsed = true;
    }
    return 0;
}

static int s_cmp(const void *x, const void *y)
{
    const struct kb_audit__anchor_obj *a = x, *b = y;

    if (a->this_chain != b->this_chain)
        return a->this_chain ? -1 : 1;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return strcmp(a->key, b->key);
}

/* Whether the key of objs[i] has more than one version or a delete marker (objs sorted). */
static bool s_rewritten(const struct kb_audit__anchors *an, size_t i)
{
    const char *key = an->objs[i].key;
    size_t lo = i, hi = i;

    while (lo > 0 && strcmp(an->objs[lo - 1].key, key) == 0)
        lo--;
    while (hi + 1 < an->n && strcmp(an->objs[hi + 1].key, key) == 0)
        hi++;
    if (hi > lo)
        return true;
    return an->objs[i].delete_marker;
}

void kb_audit__anchors_start(struct kb_audit__anchors *an, const char *chain_id,
                             struct kb_audit_verify_result *r)
{
    for (size_t i = 0; i < an->n; i++) {
        an->objs[i].this_chain = strcmp(an->objs[i].chain_id, chain_id) == 0;
        if (!an->objs[i].this_chain)
            r->anchors_other_chains++;
    }
    if (an->n > 1)
        qsort(an->objs, an->n, sizeof(*an->objs), s_cmp);
    for (size_t i = 0; i < an->n && an->objs[i].this_chain; i++) {
        if ((i == 0 || strcmp(an->objs[i - 1].key, an->objs[i].key) != 0) && s_rewritten(an, i))
            r->anchors_rewritten++;
    }
    an->sorted = true;
    an->next = 0;
}

static enum kb_audit_reason s_mismatch(char *detail, size_t n, const struct kb_audit__anchor_obj *o,
                                       const char *what)
{
    snprintf(detail, n, "the anchor %s (version %s) %s", o->key, o->version_id, what);
    return KB_AUDIT_ANCHOR_MISMATCH;
}

enum kb_audit_reason kb_audit__anchors_check(struct kb_audit__anchors *an, uint64_t seq,
                                             uint64_t epoch, const struct kb_audit_line_parts *p,
                                             bool first, struct kb_audit_verify_result *r,
                                             char *detail, size_t detail_len)
{
    char why[220];

    while (an->next < an->n && an->objs[an->next].this_chain && an->objs[an->next].seq < seq) {
        if (first && !an->objs[an->next].delete_marker)
            r->anchors_before_start++;
        an->next++;
    }
    for (; an->next < an->n && an->objs[an->next].this_chain && an->objs[an->next].seq == seq;
         an->next++) {
        const struct kb_audit__anchor_obj *o = &an->objs[an->next];

        if (o->delete_marker)
            continue;
        if (!o->parsed) {
            snprintf(why, sizeof(why), "is not an anchor: %s", o->why);
            return s_mismatch(detail, detail_len, o, why);
        }
        if (o->a.epoch != epoch) {
            snprintf(why, sizeof(why), "says epoch %" PRIu64 ", the record is of epoch %" PRIu64,
                     o->a.epoch, epoch);
            return s_mismatch(detail, detail_len, o, why);
        }
        if (memcmp(o->a.h, p->h, sizeof(p->h)) != 0)
            return s_mismatch(detail, detail_len, o,
                              "has another h: the records up to here are not those anchored");
        if (o->a.has_tag != (p->mode == KB_AUDIT_MODE_HMAC) ||
            (o->a.has_tag && memcmp(o->a.tag, p->tag, sizeof(p->tag)) != 0))
            return s_mismatch(detail, detail_len, o, "has another tag than the record");
        r->anchors_matched++;
        r->anchored = true;
        r->last_anchor_seq = seq;
        memcpy(r->last_anchor_ts, o->a.ts, sizeof(r->last_anchor_ts));
    }
    return KB_AUDIT_OK;
}

const struct kb_audit__anchor_obj *kb_audit__anchors_beyond(const struct kb_audit__anchors *an,
                                                            uint64_t last_seq)
{
    for (size_t i = 0; i < an->n && an->objs[i].this_chain; i++) {
        if (an->objs[i].seq > last_seq)
            return &an->objs[i];
    }
    return NULL;
}

const struct kb_audit__anchor_obj *kb_audit__anchors_bad(const struct kb_audit__anchors *an,
                                                         bool *rewritten)
{
    for (size_t i = 0; i < an->n && an->objs[i].this_chain; i++) {
        if (s_rewritten(an, i)) {
            *rewritten = true;
            return &an->objs[i];
        }
        if (!an->objs[i].parsed && !an->objs[i].delete_marker) {
            *rewritten = false;
            return &an->objs[i];
        }
    }
    return NULL;
}

void kb_audit__anchors_cleanup(struct kb_audit__anchors *an)
{
    for (size_t i = 0; i < an->n; i++) {
        free(an->objs[i].key);
        free(an->objs[i].version_id);
    }
    free(an->objs);
    free(an->prefix);
    memset(an, 0, sizeof(*an));
}
