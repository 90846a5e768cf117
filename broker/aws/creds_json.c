/*
 * creds_json.c - the JSON documents that carry credentials (credential_process output, the
 * container and EC2 metadata responses), their ISO-8601 times, and the refresh decision.
 *
 * A pure module: no I/O, no clock. It must never put a secret into a `why` text, and it wipes
 * every copy json-c makes of the document (the string values and the tokenizer's buffer) before
 * json-c frees it.
 */
#include "aws/creds_internal.h"

#include <json-c/json.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "aws/awstime.h"
#include "common/err.h"

static void s_why(char *why, size_t whylen, const char *text)
{
    if (why != NULL && whylen > 0)
        snprintf(why, whylen, "%s", text);
}

static bool s_id_ok(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > 127)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* A secret or token goes into an HTTP header: no control characters, no spaces at the ends. */
static bool s_value_ok(const char *v, size_t len)
{
    if (len == 0 || v[0] == ' ' || v[len - 1] == ' ')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch < 0x20 || ch == 0x7f)
            return false;
    }
    return true;
}

int kb_creds_fill(struct kb_credentials *out, const char *id, const char *secret, size_t secret_len,
                  const char *token, size_t token_len, time_t expiration, const char *source,
                  char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    if (id == NULL || !s_id_ok(id)) {
        s_why(why, whylen,
              "the access key id is empty, too long or has characters outside "
              "[A-Za-z0-9_-]");
        return KB_EPARSE;
    }
    if (secret == NULL || secret_len > KB_CREDS_MAX_SECRET || !s_value_ok(secret, secret_len)) {
        s_why(why, whylen, "the secret access key is empty, too long or malformed");
        return KB_EPARSE;
    }
    if (token != NULL && (token_len > KB_CREDS_MAX_TOKEN || !s_value_ok(token, token_len))) {
        s_why(why, whylen, "the session token is empty, too long or malformed");
        return KB_EPARSE;
    }
    memcpy(out->access_key_id, id, strlen(id) + 1);
    snprintf(out->source, sizeof(out->source), "%s", source);
    out->expiration = expiration;
    out->secret_access_key = kb_secret_new(secret, secret_len);
    if (token != NULL)
        out->session_token = kb_secret_new(token, token_len);
    if (out->secret_access_key == NULL || (token != NULL && out->session_token == NULL)) {
        kb_credentials_cleanup(out);
        s_why(why, whylen, "out of memory");
        return KB_ENOMEM;
    }
    return 0;
}

bool kb_creds_needs_refresh(const struct kb_credentials *c, time_t now)
{
    if (c->expiration == 0)
        return false;
    return c->expiration - now < KB_CREDS_REFRESH_AHEAD;
}

/* ---- documents ---- */

/* The field names and rules of each document. */
struct s_doc_rules {
    const char *source;
    const char *token_key;
    bool token_required;
    bool expiration_required;
};

static const struct s_doc_rules s_rules[] = {
    [KB_CREDS_DOC_PROCESS] = {"process", "SessionToken", false, false},
    [KB_CREDS_DOC_CONTAINER] = {"container", "Token", false, false},
    [KB_CREDS_DOC_IMDS] = {"imds", "Token", true, true},
};

/* Overwrites the bytes of every string value in obj and below: json-c keeps its own copies. */
static void s_wipe_strings(struct json_object *obj)
{
    switch (json_object_get_type(obj)) {
    case json_type_string:
        sodium_memzero((char *)json_object_get_string(obj),
                       (size_t)json_object_get_string_len(obj));
        break;
    case json_type_object: {
        json_object_object_foreach(obj, key, val)
        {
            (void)key;
            s_wipe_strings(val);
        }
        break;
    }
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(obj); i++)
            s_wipe_strings(json_object_array_get_idx(obj, i));
        break;
    default:
        break;
    }
}

/* A string member, or NULL when absent or of another type (*len_out receives its length). */
static const char *s_string(struct json_object *obj, const char *key, size_t *len_out)
{
    struct json_object *v;

    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    if (len_out != NULL)
        *len_out = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

/* Checks the document-specific header: Version 1 (process) or Code "Success" (imds). */
static int s_check_header(enum kb_creds_doc doc, struct json_object *obj, char *why, size_t whylen)
{
    struct json_object *v;

    if (doc == KB_CREDS_DOC_PROCESS) {
        if (!json_object_object_get_ex(obj, "Version", &v) ||
            !json_object_is_type(v, json_type_int) || json_object_get_int64(v) != 1) {
            s_why(why, whylen, "\"Version\" must be the number 1");
            return KB_EPARSE;
        }
    } else if (doc == KB_CREDS_DOC_IMDS) {
        const char *code = s_string(obj, "Code", NULL);
        if (code == NULL || strcmp(code, "Success") != 0) {
            s_why(why, whylen, "\"Code\" is not \"Success\"");
            return KB_EPARSE;
        }
    }
    return 0;
}

/* Reads the credential members of obj into out. */
static int s_extract(enum kb_creds_doc doc, struct json_object *obj, struct kb_credentials *out,
                     char *why, size_t whylen)
{
    const struct s_doc_rules *r = &s_rules[doc];
    size_t secret_len = 0, token_len = 0;
    const char *id = s_string(obj, "AccessKeyId", NULL);
    const char *secret = s_string(obj, "SecretAccessKey", &secret_len);
    const char *token = s_string(obj, r->token_key, &token_len);
    const char *exp = s_string(obj, "Expiration", NULL);
    time_t expiration = 0;
    char field_why[KB_CREDS_WHY_LEN];
    int rc;

    if (id == NULL || secret == NULL || (r->token_required && token == NULL)) {
        snprintf(why, whylen, "\"%s\" is missing or not a string",
                 id == NULL       ? "AccessKeyId"
                 : secret == NULL ? "SecretAccessKey"
                                  : r->token_key);
        return KB_EPARSE;
    }
    if (exp == NULL &&
        (r->expiration_required || json_object_object_get_ex(obj, "Expiration", NULL))) {
        s_why(why, whylen, "\"Expiration\" is missing or not a string");
        return KB_EPARSE;
    }
    if (exp != NULL && kb_awstime_parse(exp, true, &expiration) != 0) {
        s_why(why, whylen, "\"Expiration\" is not an ISO-8601 time");
        return KB_EPARSE;
    }
    rc = kb_creds_fill(out, id, secret, secret_len, token, token_len, expiration, r->source,
                       field_why, sizeof(field_why));
    if (rc != 0)
        s_why(why, whylen, field_why);
    return rc;
}

int kb_creds_doc_parse(enum kb_creds_doc doc, const char *buf, size_t len,
                       struct kb_credentials *out, char *why, size_t whylen)
{
    struct json_tokener *tok = NULL;
    struct json_object *obj = NULL;
    size_t end;
    int rc = KB_EPARSE;

    memset(out, 0, sizeof(*out));
    if (len > KB_CREDS_MAX_DOC) {
        s_why(why, whylen, "the document is too large");
        return KB_ETOOBIG;
    }
    tok = json_tokener_new();
    /* Grow the tokenizer's string buffer to the document's size up front so that it is never
     * reallocated (realloc would free copies of a secret that we could not wipe). */
    if (tok == NULL || printbuf_memset(tok->pb, 0, 0, (int)len + 1) < 0) {
        rc = KB_ENOMEM;
        s_why(why, whylen, "out of memory");
        goto cleanup;
    }
    printbuf_reset(tok->pb);
    obj = json_tokener_parse_ex(tok, buf, (int)len);
    if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success) {
        s_why(why, whylen, "not valid JSON");
        goto cleanup;
    }
    end = json_tokener_get_parse_end(tok);
    while (end < len &&
           (buf[end] == ' ' || buf[end] == '\t' || buf[end] == '\r' || buf[end] == '\n'))
        end++;
    if (end != len || !json_object_is_type(obj, json_type_object)) {
        s_why(why, whylen, "not a single JSON object");
        goto cleanup;
    }
    rc = s_check_header(doc, obj, why, whylen);
    if (rc == 0)
        rc = s_extract(doc, obj, out, why, whylen);
cleanup:
    if (obj != NULL) {
        s_wipe_strings(obj);
        json_object_put(obj);
    }
    if (tok != NULL) {
        sodium_memzero(tok->pb->buf, (size_t)tok->pb->size);
        json_tokener_free(tok);
    }
    return rc;
}
