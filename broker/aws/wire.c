/*
 * wire.c - shared encoders and the bounded XML field readers of the typed AWS calls.
 *
 * Percent-encoding is libcurl's (curl_easy_escape/unescape, whose handle argument has been
 * ignored since 7.82.0), MD5 is OpenSSL's and base64 is libsodium's; what is written here is
 * only the glue and the checks.
 */
#include "aws/wire.h"

#include <curl/curl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/awstime.h"
#include "common/err.h"

/* -- body buffer ------------------------------------------------------------------------------ */

void kb_wire_buf_init(struct kb_wire_buf *b, bool sensitive)
{
    memset(b, 0, sizeof(*b));
    b->sensitive = sensitive;
}

static bool s_buf_reserve(struct kb_wire_buf *b, size_t extra)
{
    size_t cap;
    char *p;

    if (b->failed || extra >= SIZE_MAX / 2 - b->len) {
        b->failed = true;
        return false;
    }
    if (b->len + extra + 1 <= b->cap)
        return true;
    cap = b->cap > 0 ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    p = malloc(cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    if (b->ptr != NULL) {
        memcpy(p, b->ptr, b->len + 1);
        if (b->sensitive)
            sodium_memzero(b->ptr, b->cap);
        free(b->ptr);
    }
    b->ptr = p;
    b->cap = cap;
    return true;
}

void kb_wire_buf_add(struct kb_wire_buf *b, const char *s, size_t len)
{
    if (!s_buf_reserve(b, len))
        return;
    if (len > 0)
        memcpy(b->ptr + b->len, s, len);
    b->len += len;
    b->ptr[b->len] = '\0';
}

void kb_wire_buf_adds(struct kb_wire_buf *b, const char *s)
{
    kb_wire_buf_add(b, s, strlen(s));
}

int kb_wire_buf_status(const struct kb_wire_buf *b)
{
    return b->failed ? KB_ENOMEM : 0;
}

void kb_wire_buf_free(struct kb_wire_buf *b)
{
    if (b->ptr != NULL && b->sensitive)
        sodium_memzero(b->ptr, b->cap);
    free(b->ptr);
    b->ptr = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

/* -- encoders --------------------------------------------------------------------------------- */

/* Appends s[0..len) percent-encoded; form: a space as '+' (curl_easy_escape writes "%20"). */
static void s_add_escaped_n(struct kb_wire_buf *b, const char *s, size_t len, bool form)
{
    char *enc;

    if (len == 0)
        return;
    if (len > INT_MAX) {
        b->failed = true;
        return;
    }
    enc = curl_easy_escape(NULL, s, (int)len);
    if (enc == NULL) {
        b->failed = true;
        return;
    }
    if (form) {
        const char *run = enc, *hit;

        while ((hit = strstr(run, "%20")) != NULL) {
            kb_wire_buf_add(b, run, (size_t)(hit - run));
            kb_wire_buf_add(b, "+", 1);
            run = hit + 3;
        }
        kb_wire_buf_adds(b, run);
    } else {
        kb_wire_buf_adds(b, enc);
    }
    curl_free(enc);
}

static void s_add_escaped(struct kb_wire_buf *b, const char *s, bool form)
{
    s_add_escaped_n(b, s, strlen(s), form);
}

static void s_add_pair(struct kb_wire_buf *b, const char *key, const char *value, bool form)
{
    if (b->len > 0)
        kb_wire_buf_add(b, "&", 1);
    s_add_escaped(b, key, form);
    kb_wire_buf_add(b, "=", 1);
    s_add_escaped(b, value != NULL ? value : "", form);
}

void kb_wire_form_add(struct kb_wire_buf *b, const char *key, const char *value)
{
    s_add_pair(b, key, value, true);
}

void kb_wire_query_add(struct kb_wire_buf *b, const char *key, const char *value)
{
    s_add_pair(b, key, value, false);
}

void kb_wire_path_add(struct kb_wire_buf *b, const char *key)
{
    const char *seg = key;

    for (;;) {
        const char *slash = strchr(seg, '/');
        size_t n = slash != NULL ? (size_t)(slash - seg) : strlen(seg);

        kb_wire_buf_add(b, "/", 1);
        s_add_escaped_n(b, seg, n, false);
        if (slash == NULL)
            break;
        seg = slash + 1;
    }
}

void kb_wire_xml_text(struct kb_wire_buf *b, const char *s)
{
    const char *run = s;

    for (; *s != '\0'; s++) {
        const char *ent = NULL;

        switch (*s) {
        case '&':
            ent = "&amp;";
            break;
        case '<':
            ent = "&lt;";
            break;
        case '>':
            ent = "&gt;";
            break;
        case '"':
            ent = "&quot;";
            break;
        case '\'':
            ent = "&apos;";
            break;
        default:
            continue;
        }
        kb_wire_buf_add(b, run, (size_t)(s - run));
        kb_wire_buf_adds(b, ent);
        run = s + 1;
    }
    kb_wire_buf_add(b, run, (size_t)(s - run));
}

void kb_wire_xml_elem(struct kb_wire_buf *b, const char *name, const char *text)
{
    kb_wire_buf_add(b, "<", 1);
    kb_wire_buf_adds(b, name);
    kb_wire_buf_add(b, ">", 1);
    kb_wire_xml_text(b, text);
    kb_wire_buf_add(b, "</", 2);
    kb_wire_buf_adds(b, name);
    kb_wire_buf_add(b, ">", 1);
}

int kb_wire_content_md5(const void *body, size_t len, char out[KB_WIRE_MD5_B64_SIZE])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    const EVP_MD *md5 = EVP_md5();

    out[0] = '\0';
    if (md5 == NULL || EVP_Digest(len > 0 ? body : "", len, md, &md_len, md5, NULL) != 1 ||
        md_len != 16)
        return KB_ETLS;
    sodium_bin2base64(out, KB_WIRE_MD5_B64_SIZE, md, md_len, sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

/* -- decoders --------------------------------------------------------------------------------- */

char *kb_wire_url_decode(struct kb_svc_arena *a, const char *s, size_t len, size_t *out_len)
{
    int n = 0;
    char *dec;
    char *copy = NULL;

    if (len > INT_MAX)
        return NULL;
    if (len == 0)
        return kb_svc_strndup(a, "", 0);
    dec = curl_easy_unescape(NULL, s, (int)len, &n);
    if (dec == NULL)
        return NULL;
    /* A decoded NUL would silently cut the document short: refuse it. */
    if (n >= 0 && memchr(dec, '\0', (size_t)n) == NULL) {
        copy = kb_svc_strndup(a, dec, (size_t)n);
        if (copy != NULL && out_len != NULL)
            *out_len = (size_t)n;
    }
    curl_free(dec);
    return copy;
}

char *kb_wire_form_decode(struct kb_svc_arena *a, const char *s, size_t len, size_t *out_len)
{
    char *plus = kb_svc_strndup(a, s, len);

    if (plus == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (plus[i] == '+')
            plus[i] = ' ';
    }
    return kb_wire_url_decode(a, plus, len, out_len);
}

bool kb_wire_key_id_ok(const char *s)
{
    size_t n;

    if (s == NULL)
        return false;
    n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");
    return s[n] == '\0' && n >= 16 && n <= 128;
}

/* One ':'-terminated part of an ARN made of the characters in set, at least min long. */
static bool s_arn_part(const char **p, const char *set, size_t min)
{
    size_t n = strspn(*p, set);

    if (n < min || (*p)[n] != ':')
        return false;
    *p += n + 1;
    return true;
}

bool kb_wire_arn_ok(const char *s)
{
    static const char lower[] = "abcdefghijklmnopqrstuvwxyz0123456789-";
    const char *p = s;
    const char *account;

    if (s == NULL || strnlen(s, KB_WIRE_MAX_ARN + 1) > KB_WIRE_MAX_ARN ||
        strncmp(s, "arn:", 4) != 0)
        return false;
    p += 4;
    if (!s_arn_part(&p, lower, 1) || !s_arn_part(&p, lower, 1) || !s_arn_part(&p, lower, 0))
        return false;
    account = p;
    if (!s_arn_part(&p, "0123456789aws", 0))
        return false;
    if (!((size_t)(p - account) - 1 == strspn(account, "0123456789") ||
          strncmp(account, "aws:", 4) == 0))
        return false;
    if (*p == '\0')
        return false;
    for (; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    }
    return true;
}

bool kb_wire_str_ok(const char *s, size_t max)
{
    return s != NULL && s[0] != '\0' && strnlen(s, max + 1) <= max;
}

bool kb_wire_tags_ok(const struct kb_aws_tag *tags, size_t count, bool required)
{
    if (count == 0)
        return !required;
    if (tags == NULL || count > KB_WIRE_MAX_TAGS)
        return false;
    for (size_t i = 0; i < count; i++) {
        if (!kb_wire_str_ok(tags[i].key, KB_WIRE_MAX_TAG_KEY) || tags[i].value == NULL ||
            strnlen(tags[i].value, KB_WIRE_MAX_TAG_VALUE + 1) > KB_WIRE_MAX_TAG_VALUE)
            return false;
    }
    return true;
}

/* -- XML fields ------------------------------------------------------------------------------- */

int kb_wire_xml_str(struct kb_svc_parse *p, const struct kb_xml_node *n, const char *path,
                    size_t max, bool required, const char **out)
{
    const struct kb_xml_node *f = kb_xml_path(n, path);
    size_t len = 0;
    const char *text;

    *out = NULL;
    if (f == NULL) {
        if (required)
            return kb_svc_fail(p, KB_EPARSE, "response field %s missing", path);
        return 0;
    }
    text = kb_xml_text(f, &len);
    if (len == 0 && required)
        return kb_svc_fail(p, KB_EPARSE, "response field %s empty", path);
    if (len > max)
        return kb_svc_fail(p, KB_EPARSE, "response field %s longer than %zu bytes", path, max);
    *out = kb_svc_strndup(p->arena, text, len);
    if (*out == NULL)
        return kb_svc_fail(p, KB_ENOMEM, "out of memory");
    return 0;
}

int kb_wire_xml_arn(struct kb_svc_parse *p, const struct kb_xml_node *n, const char *path,
                    bool required, const char **out)
{
    int rc = kb_wire_xml_str(p, n, path, KB_WIRE_MAX_ARN, required, out);

    if (rc == 0 && *out != NULL && !kb_wire_arn_ok(*out))
        return kb_svc_fail(p, KB_EPARSE, "response field %s is not an ARN", path);
    return rc;
}

int kb_wire_xml_key_id(struct kb_svc_parse *p, const struct kb_xml_node *n, const char *path,
                       const char **out)
{
    int rc = kb_wire_xml_str(p, n, path, KB_WIRE_MAX_ID, true, out);

    if (rc == 0 && !kb_wire_key_id_ok(*out))
        return kb_svc_fail(p, KB_EPARSE, "response field %s is not an access key id", path);
    return rc;
}

bool kb_wire_secret_key_ok(struct kb_secret *s)
{
    size_t len = 0;
    const char *v = s != NULL ? kb_secret_open(s, &len) : NULL;
    bool ok = v != NULL && len > 0 && len <= 1024;

    for (size_t i = 0; ok && i < len; i++)
        ok = v[i] > 0x20 && v[i] < 0x7f;
    if (v != NULL)
        kb_secret_close(s);
    return ok;
}

int kb_wire_xml_time(struct kb_svc_parse *p, const struct kb_xml_node *n, const char *path,
                     bool required, time_t *out)
{
    const struct kb_xml_node *f = kb_xml_path(n, path);

    *out = 0;
    if (f == NULL) {
        if (required)
            return kb_svc_fail(p, KB_EPARSE, "response field %s missing", path);
        return 0;
    }
    if (kb_awstime_parse(kb_xml_text(f, NULL), false, out) != 0)
        return kb_svc_fail(p, KB_EPARSE, "response field %s is not a time", path);
    return 0;
}

int kb_wire_xml_bool(struct kb_svc_parse *p, const struct kb_xml_node *n, const char *path,
                     bool required, bool *out)
{
    const struct kb_xml_node *f = kb_xml_path(n, path);
    const char *text;

    *out = false;
    if (f == NULL) {
        if (required)
            return kb_svc_fail(p, KB_EPARSE, "response field %s missing", path);
        return 0;
    }
    text = kb_xml_text(f, NULL);
    *out = strcasecmp(text, "true") == 0;
    return 0;
}

int kb_wire_xml_tags(struct kb_svc_parse *p, const struct kb_xml_node *n, const char *path,
                     const char *item, struct kb_aws_tag **tags, size_t *count)
{
    const struct kb_xml_node *list = kb_xml_path(n, path);
    const struct kb_xml_node *it;
    size_t i = 0, total;
    int rc;

    *tags = NULL;
    *count = 0;
    if (list == NULL)
        return 0;
    total = kb_xml_count(list, item);
    if (total > KB_WIRE_MAX_ITEMS)
        return kb_svc_fail(p, KB_EPARSE, "response field %s has too many items", path);
    *tags = kb_svc_alloc(p->arena, total * sizeof(**tags));
    if (*tags == NULL)
        return kb_svc_fail(p, KB_ENOMEM, "out of memory");
    for (it = kb_xml_child(list, item); it != NULL; it = kb_xml_next(it), i++) {
        rc = kb_wire_xml_str(p, it, "Key", KB_WIRE_MAX_TAG_KEY, true, &(*tags)[i].key);
        if (rc == 0)
            rc = kb_wire_xml_str(p, it, "Value", KB_WIRE_MAX_TAG_VALUE, false, &(*tags)[i].value);
        if (rc != 0)
            return rc;
        if ((*tags)[i].value == NULL)
            (*tags)[i].value = "";
    }
    *count = total;
    return 0;
}

int kb_wire_xml_doc(struct kb_svc_parse *p, const struct kb_aws_response *resp, const char *root,
                    const char *secret_path, struct kb_xml_doc **doc)
{
    const char *paths[1] = {secret_path};
    char why[160];
    int rc;

    rc = kb_xml_parse(resp->body, resp->body_len, paths, secret_path != NULL ? 1 : 0, doc, why,
                      sizeof(why));
    if (rc != 0)
        return kb_svc_fail(p, rc == KB_ENOMEM ? KB_ENOMEM : KB_EPARSE,
                           "response is not well-formed XML (%s)", why);
    if (strcmp(kb_xml_name(kb_xml_root(*doc)), root) != 0) {
        kb_xml_free(*doc);
        *doc = NULL;
        return kb_svc_fail(p, KB_EPARSE, "response root element is not %s", root);
    }
    return 0;
}
