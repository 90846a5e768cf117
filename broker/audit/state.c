/*
 * state.c - the audit state file's text (state.h). The key is hex in the text: it is parsed with
 * jsonwire's sensitive parser (no json-c buffer released unwiped) and formatted into guarded
 * memory; every stack copy is wiped.
 */
#include "audit/state.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "aws/jsonwire.h"
#include "common/err.h"
#include "common/secret.h"

static int s_why(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records why the state was refused (a sentence naming the field, never a value). */
static int s_why(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;

    if (why != NULL && n > 0) {
        va_start(ap, fmt);
        vsnprintf(why, n, fmt, ap);
        va_end(ap);
    }
    return KB_EPARSE;
}

static struct json_object *s_member(struct json_object *o, const char *key, enum json_type type)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
        return NULL;
    return v;
}

static int s_uint(struct json_object *o, const char *key, uint64_t *out)
{
    struct json_object *v = s_member(o, key, json_type_int);

    if (v == NULL || json_object_get_int64(v) < 0)
        return KB_EPARSE;
    *out = (uint64_t)json_object_get_int64(v);
    return 0;
}

static int s_hexfield(struct json_object *o, const char *key, char *out, size_t n)
{
    struct json_object *v = s_member(o, key, json_type_string);
    uint8_t tmp[KB_AUDIT_HASH_LEN];
    size_t len;

    if (v == NULL)
        return KB_EPARSE;
    len = (size_t)json_object_get_string_len(v);
    if (len != n || n / 2 > sizeof(tmp) ||
        kb_audit_unhex(json_object_get_string(v), len, tmp, n / 2) != 0)
        return KB_EPARSE;
    kb_audit_hex(tmp, n / 2, out); /* lowercase */
    return 0;
}

static int s_fields(struct json_object *o, struct kb_audit_state *st, char *why, size_t why_len)
{
    struct json_object *v;
    uint64_t ver = 0, started = 0;
    int rc;

    if (s_uint(o, "v", &ver) != 0 || ver != 1)
        return s_why(why, why_len, "%s: must be 1 (a state file of this version)", "v");
    v = s_member(o, "chain", json_type_string);
    if (v == NULL || kb_audit_mode_from_name(json_object_get_string(v),
                                             (size_t)json_object_get_string_len(v), &st->mode) != 0)
        return s_why(why, why_len, "%s: must be \"sha256\" or \"hmac-sha256\"", "chain");
    if (s_hexfield(o, "chain_id", st->chain_id, KB_AUDIT_CHAIN_ID_LEN) != 0)
        return s_why(why, why_len, "%s: must be 32 hex digits", "chain_id");
    if (s_uint(o, "epoch", &st->epoch) != 0)
        return s_why(why, why_len, "%s: must be an integer >= 0", "epoch");
    if (s_uint(o, "epoch_started_ms", &started) != 0 || started > INT64_MAX)
        return s_why(why, why_len, "%s: must be an integer >= 0", "epoch_started_ms");
    st->epoch_started_ms = (int64_t)started;
    if (s_uint(o, "seq", &st->seq) != 0)
        return s_why(why, why_len, "%s: must be an integer >= 0", "seq");
    v = s_member(o, "h", json_type_string);
    if (v == NULL ||
        kb_audit_unhex(json_object_get_string(v), (size_t)json_object_get_string_len(v), st->h,
                       sizeof(st->h)) != 0)
        return s_why(why, why_len, "%s: must be 64 hex digits", "h");
    if (st->mode == KB_AUDIT_MODE_SHA256)
        return 0;
    if (s_hexfield(o, "key_id", st->key_id, KB_AUDIT_KEY_ID_LEN) != 0)
        return s_why(why, why_len, "%s: must be 16 hex digits", "key_id");
    v = s_member(o, "key", json_type_string);
    if (v == NULL)
        return s_why(why, why_len, "%s: must be 64 hex digits (chain hmac-sha256)", "key");
    {
        uint8_t key[KB_AUDIT_KEY_LEN];

        rc = kb_audit_unhex(json_object_get_string(v), (size_t)json_object_get_string_len(v), key,
                            sizeof(key));
        if (rc == 0) {
            st->key = kb_secret_new(key, sizeof(key));
            rc = st->key != NULL ? 0 : KB_ENOMEM;
        } else {
            s_why(why, why_len, "%s: must be 64 hex digits (chain hmac-sha256)", "key");
        }
        sodium_memzero(key, sizeof(key));
    }
    return rc;
}

int kb_audit_state_parse(const char *text, size_t len, struct kb_audit_state *out, char *why,
                         size_t why_len)
{
    struct kb_svc_parse p = {.operation = "audit state"};
    struct json_object *o = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if (why != NULL && why_len > 0)
        why[0] = '\0';
    if (len > KB_AUDIT_STATE_MAX)
        return s_why(why, why_len, "%s", "the file is larger than a state file can be");
    rc = kb_jsonw_parse(&p, text, len, true, &o);
    if (rc != 0) {
        if (rc == KB_EPARSE)
            s_why(why, why_len, "%s", "not one JSON object");
        return rc;
    }
    rc = s_fields(o, out, why, why_len);
    kb_jsonw_free(o, true);
    if (rc != 0)
        kb_audit_state_cleanup(out);
    return rc;
}

int kb_audit_state_format(const struct kb_audit_state *st, struct kb_secret **out)
{
    char h[KB_AUDIT_HEX_LEN + 1], key[KB_AUDIT_HEX_LEN + 1] = "";
    char text[512];
    const char *k = NULL;
    size_t klen = 0;
    int n;

    *out = NULL;
    if (st->mode == KB_AUDIT_MODE_HMAC) {
        if (st->key == NULL || kb_secret_len(st->key) != KB_AUDIT_KEY_LEN)
            return KB_EINVAL;
        k = kb_secret_open(st->key, &klen);
        kb_audit_hex((const uint8_t *)k, klen, key);
        kb_secret_close(st->key);
    }
    kb_audit_hex(st->h, sizeof(st->h), h);
    n = snprintf(text, sizeof(text),
                 "{\"v\":1,\"chain\":\"%s\",\"chain_id\":\"%s\"%s%s%s,\"epoch\":%" PRIu64
                 ",\"epoch_started_ms\":%" PRId64 ",\"seq\":%" PRIu64 ",\"h\":\"%s\"%s%s%s}\n",
                 kb_audit_mode_name(st->mode), st->chain_id, k != NULL ? ",\"key_id\":\"" : "",
                 k != NULL ? st->key_id : "", k != NULL ? "\"" : "", st->epoch,
                 st->epoch_started_ms, st->seq, h, k != NULL ? ",\"key\":\"" : "", key,
                 k != NULL ? "\"" : "");
    sodium_memzero(key, sizeof(key));
    if (n > 0 && (size_t)n < sizeof(text))
        *out = kb_secret_new(text, (size_t)n);
    sodium_memzero(text, sizeof(text));
    return *out != NULL ? 0 : KB_ENOMEM;
}

void kb_audit_state_cleanup(struct kb_audit_state *st)
{
    kb_secret_destroy(st->key);
    st->key = NULL;
}

int kb_audit_state_init(struct kb_audit_state *st, enum kb_audit_mode mode, const uint8_t *k0,
                        int64_t now_ms)
{
    uint8_t id[KB_AUDIT_CHAIN_ID_LEN / 2];

    memset(st, 0, sizeof(*st));
    st->mode = mode;
    randombytes_buf(id, sizeof(id));
    kb_audit_hex(id, sizeof(id), st->chain_id);
    st->epoch_started_ms = now_ms;
    if (mode == KB_AUDIT_MODE_SHA256)
        return 0;
    if (k0 == NULL || kb_audit_key_id(k0, st->key_id) != 0)
        return KB_EINVAL;
    st->key = kb_secret_new(k0, KB_AUDIT_KEY_LEN);
    return st->key != NULL ? 0 : KB_ENOMEM;
}
