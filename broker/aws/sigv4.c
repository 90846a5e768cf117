/*
 * sigv4.c - AWS Signature Version 4 as a pipeline of small steps over one signing state, and the
 * public API of sigv4.h (the signer object).
 *
 * kb_sigv4_sign() checks its inputs and then runs, in order:
 *   s_load_session_token        copy the token out of guarded memory for this call
 *   s_build_dates               X-Amz-Date, credential scope and credential
 *   s_build_payload_hash        hex SHA-256 of the body, the caller's hash or UNSIGNED-PAYLOAD
 *   s_build_canonical_uri       normalize (optional), then encode once more (optional)
 *   s_build_canonical_headers   lowercase, trim, collapse, sort, join duplicates; signed headers
 *   s_build_canonical_query     decode + re-encode each parameter, add X-Amz-* when presigning
 *   s_build_canonical_request
 *   s_build_string_to_sign
 *   kb__sigv4_sign_string_to_sign   signing key from the cache or derived, then HMAC (sigv4_key.c)
 *   s_build_authorization       or s_build_presigned_query
 * Every buffer belongs to the signer and is reused, so a warm signer does not allocate (OpenSSL
 * 3.0's HMAC provider still copies each key it is given). Buffers, encodings and path
 * normalization are in sigv4_text.c; hashing, key derivation and the key cache in sigv4_key.c;
 * the declarations they share in sigv4_internal.h.
 *
 * This file must never log, print or copy the secret access key, the session token or a derived
 * key into unguarded memory: it never opens the secret access key itself, and the session token
 * it copies for a call lives only in the signer's own buffers, which are wiped when freed.
 */
#include "aws/sigv4.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "aws/sigv4_internal.h"

#define S_ALGORITHM        "AWS4-HMAC-SHA256"
#define S_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define S_EMPTY_SHA256     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static char s_digest_name[] = "SHA256";

/* ---- the pipeline ----------------------------------------------------------------------- */

static int s_check_inputs(const struct kb_sigv4_request *req, const struct kb_sigv4_params *p)
{
    const struct kb_sigv4_credentials *c;

    if (req == NULL || p == NULL || p->credentials == NULL)
        return KB_EINVAL;
    c = p->credentials;
    if (!kb__sigv4_token_string(req->method) || !kb__sigv4_scope_string(c->access_key_id) ||
        c->secret_access_key == NULL ||
        kb_secret_len(c->secret_access_key) > KB_SIGV4_MAX_SECRET_LEN ||
        !kb__sigv4_scope_string(p->region) || !kb__sigv4_scope_string(p->service))
        return KB_EINVAL;
    if ((req->path != NULL && !kb__sigv4_all(req->path, kb__sigv4_no_ctl_char)) ||
        (req->query != NULL && !kb__sigv4_all(req->query, kb__sigv4_no_ctl_char)))
        return KB_EINVAL;
    if (req->header_count > 0 && req->headers == NULL)
        return KB_EINVAL;
    if (req->payload == KB_SIGV4_PAYLOAD_BODY && req->body == NULL && req->body_len > 0)
        return KB_EINVAL;
    if (p->options.presign &&
        (p->options.expires == 0 || p->options.expires > KB_SIGV4_MAX_EXPIRES))
        return KB_EINVAL;
    return 0;
}

/* A session token is base64: printable, no space. */
static bool s_token_char(unsigned char c)
{
    return c > 0x20 && c != 0x7f;
}

static int s_load_session_token(struct kb__sigv4_state *st)
{
    struct kb_sigv4_signer *sg = st->sg;
    const char *tok;
    size_t len;
    int rc = 0;

    kb__sigv4_buf_reset(&sg->token);
    if (!st->has_token)
        return 0;
    tok = kb_secret_open(st->creds->session_token, &len);
    if (len == 0 || strlen(tok) != len || !kb__sigv4_all(tok, s_token_char))
        rc = KB_EINVAL;
    else
        kb__sigv4_buf_add(&sg->token, tok, len);
    kb_secret_close(st->creds->session_token);
    if (rc == 0 && sg->token.failed)
        rc = KB_ENOMEM;
    return rc;
}

static void s_put_digits(char *o, unsigned v, int width)
{
    while (width-- > 0) {
        o[width] = (char)('0' + v % 10);
        v /= 10;
    }
}

static int s_build_dates(struct kb__sigv4_state *st)
{
    struct kb_sigv4_signer *sg = st->sg;
    struct tm tm;

    if (!sg->dates_valid || sg->dates_time != st->p->time) {
        sg->dates_valid = false;
        if (gmtime_r(&st->p->time, &tm) == NULL || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
            return KB_EINVAL;
        s_put_digits(sg->amz_date, (unsigned)(tm.tm_year + 1900), 4);
        s_put_digits(sg->amz_date + 4, (unsigned)(tm.tm_mon + 1), 2);
        s_put_digits(sg->amz_date + 6, (unsigned)tm.tm_mday, 2);
        sg->amz_date[8] = 'T';
        s_put_digits(sg->amz_date + 9, (unsigned)tm.tm_hour, 2);
        s_put_digits(sg->amz_date + 11, (unsigned)tm.tm_min, 2);
        s_put_digits(sg->amz_date + 13, (unsigned)tm.tm_sec, 2);
        sg->amz_date[15] = 'Z';
        sg->amz_date[16] = '\0';
        memcpy(sg->date, sg->amz_date, 8);
        sg->date[8] = '\0';
        sg->dates_time = st->p->time;
        sg->dates_valid = true;
    }
    kb__sigv4_buf_reset(&sg->scope);
    kb__sigv4_buf_add(&sg->scope, sg->date, 8);
    kb__sigv4_buf_addc(&sg->scope, '/');
    kb__sigv4_buf_adds(&sg->scope, st->p->region);
    kb__sigv4_buf_addc(&sg->scope, '/');
    kb__sigv4_buf_adds(&sg->scope, st->p->service);
    kb__sigv4_buf_adds(&sg->scope, "/aws4_request");
    kb__sigv4_buf_reset(&sg->credential);
    kb__sigv4_buf_adds(&sg->credential, st->creds->access_key_id);
    kb__sigv4_buf_addc(&sg->credential, '/');
    kb__sigv4_buf_add_buf(&sg->credential, &sg->scope);
    return sg->scope.failed || sg->credential.failed ? KB_ENOMEM : 0;
}

static int s_build_payload_hash(struct kb__sigv4_state *st)
{
    struct kb_sigv4_signer *sg = st->sg;
    const struct kb_sigv4_request *req = st->req;
    unsigned char digest[KB__SIGV4_KEY_LEN];
    int rc = 0;

    kb__sigv4_buf_reset(&sg->payload_hash);
    switch (req->payload) {
    case KB_SIGV4_PAYLOAD_BODY:
        /* Most AWS API calls here are GETs or empty POSTs: skip hashing nothing. */
        if (req->body_len == 0) {
            kb__sigv4_buf_adds(&sg->payload_hash, S_EMPTY_SHA256);
            break;
        }
        rc = kb__sigv4_sha256(sg, req->body, req->body_len, digest);
        if (rc == 0)
            kb__sigv4_buf_add_hex(&sg->payload_hash, digest);
        break;
    case KB_SIGV4_PAYLOAD_HASH:
        if (req->payload_hash == NULL || strlen(req->payload_hash) != KB__SIGV4_HEX_LEN ||
            !kb__sigv4_all(req->payload_hash, kb__sigv4_lower_hex))
            return KB_EINVAL;
        kb__sigv4_buf_adds(&sg->payload_hash, req->payload_hash);
        break;
    case KB_SIGV4_PAYLOAD_UNSIGNED:
        kb__sigv4_buf_adds(&sg->payload_hash, S_UNSIGNED_PAYLOAD);
        break;
    default:
        return KB_EINVAL;
    }
    if (rc == 0 && sg->payload_hash.failed)
        rc = KB_ENOMEM;
    return rc;
}

static int s_build_canonical_uri(struct kb__sigv4_state *st)
{
    struct kb_sigv4_signer *sg = st->sg;
    const char *path = st->req->path != NULL && st->req->path[0] != '\0' ? st->req->path : "/";
    size_t n = strlen(path);

    kb__sigv4_buf_reset(&sg->uri);
    if (st->opt->normalize_path) {
        kb__sigv4_normalize_path(&sg->path, path, n);
        if (sg->path.failed)
            return KB_ENOMEM;
        path = sg->path.ptr;
        n = sg->path.len;
    }
    if (st->opt->double_encode)
        kb__sigv4_buf_add_encoded(&sg->uri, path, n, true);
    else
        kb__sigv4_buf_add(&sg->uri, path, n);
    return sg->uri.failed ? KB_ENOMEM : 0;
}

/* Makes room for need elements of size bytes in arr (holding *cap). Returns the array, moved or
 * not, or NULL with arr untouched. */
static void *s_grow(void *arr, size_t *cap, size_t need, size_t size)
{
    size_t n = *cap > 0 ? *cap : 16;
    void *p;

    if (need <= *cap)
        return arr;
    while (n < need) {
        if (n > SIZE_MAX / 2 / size)
            return NULL;
        n *= 2;
    }
    p = realloc(arr, n * size);
    if (p != NULL)
        *cap = n;
    return p;
}

/* Signer-made headers replace the caller's namesakes; Authorization is never signed. */
static bool s_header_is_ours(const struct kb__sigv4_state *st, const char *name)
{
    return kb__sigv4_ascii_caseeq(name, "authorization") ||
           kb__sigv4_ascii_caseeq(name, "x-amz-date") ||
           (st->has_token && kb__sigv4_ascii_caseeq(name, "x-amz-security-token")) ||
           (st->sign_content_header && kb__sigv4_ascii_caseeq(name, "x-amz-content-sha256"));
}

static void s_push_header(struct kb_sigv4_signer *sg, size_t seq, const char *name,
                          const char *value)
{
    struct kb__sigv4_hdr *h = &sg->hdrs[seq];
    size_t n = strlen(name);

    h->seq = seq;
    h->name_off = sg->hdr_text.len;
    h->name_len = n;
    kb__sigv4_buf_add_lower(&sg->hdr_text, name, n);
    h->value_off = sg->hdr_text.len;
    kb__sigv4_buf_add_trimmed(&sg->hdr_text, value);
    h->value_len = sg->hdr_text.len - h->value_off;
}

static int s_cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    return c != 0 ? c : (alen > blen) - (alen < blen);
}

/* Equal names keep their wire order: duplicates are joined in the order they were sent. */
static int s_cmp_hdr(const void *x, const void *y)
{
    const struct kb__sigv4_hdr *a = x, *b = y;
    int c = s_cmp_bytes(a->name, a->name_len, b->name, b->name_len);

    return c != 0 ? c : (a->seq > b->seq) - (a->seq < b->seq);
}

/* Collects the headers to sign into hdrs[] (names lowercased, values trimmed) and sorts them.
 * AWS requires Host to be signed: a request without one is refused rather than signed wrong. */
static int s_collect_headers(struct kb__sigv4_state *st, size_t *count)
{
    struct kb_sigv4_signer *sg = st->sg;
    const struct kb_sigv4_request *req = st->req;
    struct kb__sigv4_hdr *hdrs;
    bool saw_host = false;
    size_t i, n = 0;

    if (req->header_count > SIZE_MAX - 3)
        return KB_EINVAL;
    hdrs = s_grow(sg->hdrs, &sg->hdrs_cap, req->header_count + 3, sizeof(*sg->hdrs));
    if (hdrs == NULL)
        return KB_ENOMEM;
    sg->hdrs = hdrs;
    kb__sigv4_buf_reset(&sg->hdr_text);
    for (i = 0; i < req->header_count; i++) {
        const struct kb_sigv4_header *h = &req->headers[i];

        if (!kb__sigv4_token_string(h->name) || h->value == NULL ||
            !kb__sigv4_all(h->value, kb__sigv4_value_char))
            return KB_EINVAL;
        saw_host = saw_host || kb__sigv4_ascii_caseeq(h->name, "host");
        if (!s_header_is_ours(st, h->name))
            s_push_header(sg, n++, h->name, h->value);
    }
    if (!saw_host)
        return KB_EINVAL;
    if (st->sign_token_header)
        s_push_header(sg, n++, "x-amz-security-token", kb__sigv4_buf_str(&sg->token));
    if (st->sign_date_header)
        s_push_header(sg, n++, "x-amz-date", sg->amz_date);
    if (st->sign_content_header)
        s_push_header(sg, n++, "x-amz-content-sha256", kb__sigv4_buf_str(&sg->payload_hash));
    if (sg->hdr_text.failed)
        return KB_ENOMEM;
    for (i = 0; i < n; i++) {
        sg->hdrs[i].name = sg->hdr_text.ptr + sg->hdrs[i].name_off;
        sg->hdrs[i].value = sg->hdr_text.ptr + sg->hdrs[i].value_off;
    }
    qsort(sg->hdrs, n, sizeof(*sg->hdrs), s_cmp_hdr);
    *count = n;
    return 0;
}

/* "name:value\n" per name (a repeated name's values joined with ','), and "a;b;c". */
static int s_build_canonical_headers(struct kb__sigv4_state *st)
{
    struct kb_sigv4_signer *sg = st->sg;
    size_t i, n = 0;
    int rc;

    rc = s_collect_headers(st, &n);
    if (rc != 0)
        return rc;
    kb__sigv4_buf_reset(&sg->canon_headers);
    kb__sigv4_buf_reset(&sg->signed_headers);
    for (i = 0; i < n; i++) {
        const struct kb__sigv4_hdr *h = &sg->hdrs[i];

        if (i > 0 && s_cmp_bytes(h->name, h->name_len, h[-1].name, h[-1].name_len) == 0) {
            kb__sigv4_buf_addc(&sg->canon_headers, ',');
            kb__sigv4_buf_add(&sg->canon_headers, h->value, h->value_len);
            continue;
        }
        if (i > 0) {
            kb__sigv4_buf_addc(&sg->canon_headers, '\n');
            kb__sigv4_buf_addc(&sg->signed_headers, ';');
        }
        kb__sigv4_buf_add(&sg->canon_headers, h->name, h->name_len);
        kb__sigv4_buf_addc(&sg->canon_headers, ':');
        kb__sigv4_buf_add(&sg->canon_headers, h->value, h->value_len);
        kb__sigv4_buf_add(&sg->signed_headers, h->name, h->name_len);
    }
    kb__sigv4_buf_addc(&sg->canon_headers, '\n');
    return sg->canon_headers.failed || sg->signed_headers.failed ? KB_ENOMEM : 0;
}

/* Appends one parameter whose key is literal and whose value is encoded here. */
static void s_push_param(struct kb_sigv4_signer *sg, size_t idx, const char *key, const char *value,
                         size_t value_len)
{
    struct kb__sigv4_param *q = &sg->params[idx];

    q->key_off = sg->qtext.len;
    q->key_len = strlen(key);
    kb__sigv4_buf_adds(&sg->qtext, key);
    q->value_off = sg->qtext.len;
    kb__sigv4_buf_add_encoded(&sg->qtext, value, value_len, false);
    q->value_len = sg->qtext.len - q->value_off;
}

static size_t s_count_params(const char *q)
{
    size_t n = 1;

    for (; *q != '\0'; q++)
        n += *q == '&';
    return n;
}

static int s_cmp_param(const void *x, const void *y)
{
    const struct kb__sigv4_param *a = x, *b = y;
    int c = s_cmp_bytes(a->key, a->key_len, b->key, b->key_len);

    return c != 0 ? c : s_cmp_bytes(a->value, a->value_len, b->value, b->value_len);
}

/* Splits the raw query into the params array (re-encoded into qtext); returns how many. */
static size_t s_parse_query(struct kb_sigv4_signer *sg, const char *q)
{
    size_t n = 0;

    while (*q != '\0') {
        const char *end = strchr(q, '&'), *eq;
        struct kb__sigv4_param *p;

        if (end == NULL)
            end = q + strlen(q);
        if (end > q) {
            eq = memchr(q, '=', (size_t)(end - q));
            p = &sg->params[n++];
            p->key_off = sg->qtext.len;
            kb__sigv4_buf_add_recoded(&sg->qtext, q, (size_t)((eq != NULL ? eq : end) - q));
            p->key_len = sg->qtext.len - p->key_off;
            p->value_off = sg->qtext.len;
            if (eq != NULL)
                kb__sigv4_buf_add_recoded(&sg->qtext, eq + 1, (size_t)(end - eq - 1));
            p->value_len = sg->qtext.len - p->value_off;
        }
        q = *end != '\0' ? end + 1 : end;
    }
    return n;
}

static int s_build_canonical_query(struct kb__sigv4_state *st)
{
    struct kb_sigv4_signer *sg = st->sg;
    const char *query = st->req->query != NULL ? st->req->query : "";
    struct kb__sigv4_param *params;
    char expires[16];
    size_t i, n;

    kb__sigv4_buf_reset(&sg->canon_query);
    if (query[0] == '\0' && !st->opt->presign)
        return 0;
    params = s_grow(sg->params, &sg->params_cap, s_count_params(query) + 6, sizeof(*sg->params));
    if (params == NULL)
        return KB_ENOMEM;
    sg->params = params;
    kb__sigv4_buf_reset(&sg->qtext);
    n = s_parse_query(sg, query);
    if (st->opt->presign) {
        snprintf(expires, sizeof(expires), "%u", (unsigned)st->opt->expires);
        s_push_param(sg, n++, "X-Amz-Algorithm", S_ALGORITHM, strlen(S_ALGORITHM));
        s_push_param(sg, n++, "X-Amz-Credential", sg->credential.ptr, sg->credential.len);
        s_push_param(sg, n++, "X-Amz-Date", sg->amz_date, strlen(sg->amz_date));
        s_push_param(sg, n++, "X-Amz-Expires", expires, strlen(expires));
        if (st->sign_token_query)
            s_push_param(sg, n++, "X-Amz-Security-Token", sg->token.ptr, sg->token.len);
        s_push_param(sg, n++, "X-Amz-SignedHeaders", kb__sigv4_buf_str(&sg->signed_headers),
                     sg->signed_headers.len);
    }
    if (sg->qtext.failed)
        return KB_ENOMEM;
    for (i = 0; i < n; i++) {
        sg->params[i].key = sg->qtext.ptr + sg->params[i].key_off;
        sg->params[i].value = sg->qtext.ptr + sg->params[i].value_off;
    }
    qsort(sg->params, n, sizeof(*sg->params), s_cmp_param);
    for (i = 0; i < n; i++) {
        if (i > 0)
            kb__sigv4_buf_addc(&sg->canon_query, '&');
        kb__sigv4_buf_add(&sg->canon_query, sg->params[i].key, sg->params[i].key_len);
        kb__sigv4_buf_addc(&sg->canon_query, '=');
        kb__sigv4_buf_add(&sg->canon_query, sg->params[i].value, sg->params[i].value_len);
    }
    return sg->canon_query.failed ? KB_ENOMEM : 0;
}

static int s_build_canonical_request(struct kb__sigv4_state *st)
{
    struct kb_sigv4_signer *sg = st->sg;
    struct kb__sigv4_buf *b = &sg->creq;

    kb__sigv4_buf_reset(b);
    kb__sigv4_buf_adds(b, st->req->method);
    kb__sigv4_buf_addc(b, '\n');
    kb__sigv4_buf_add_buf(b, &sg->uri);
    kb__sigv4_buf_addc(b, '\n');
    kb__sigv4_buf_add_buf(b, &sg->canon_query);
    kb__sigv4_buf_addc(b, '\n');
    kb__sigv4_buf_add_buf(b, &sg->canon_headers);
    kb__sigv4_buf_addc(b, '\n');
    kb__sigv4_buf_add_buf(b, &sg->signed_headers);
    kb__sigv4_buf_addc(b, '\n');
    kb__sigv4_buf_add_buf(b, &sg->payload_hash);
    return b->failed ? KB_ENOMEM : 0;
}

static int s_build_string_to_sign(struct kb__sigv4_state *st)
{
    struct kb_sigv4_signer *sg = st->sg;
    unsigned char digest[KB__SIGV4_KEY_LEN];
    int rc;

    rc = kb__sigv4_sha256(sg, kb__sigv4_buf_str(&sg->creq), sg->creq.len, digest);
    if (rc != 0)
        return rc;
    kb__sigv4_buf_reset(&sg->sts);
    kb__sigv4_buf_adds(&sg->sts, S_ALGORITHM "\n");
    kb__sigv4_buf_adds(&sg->sts, sg->amz_date);
    kb__sigv4_buf_addc(&sg->sts, '\n');
    kb__sigv4_buf_add_buf(&sg->sts, &sg->scope);
    kb__sigv4_buf_addc(&sg->sts, '\n');
    kb__sigv4_buf_add_hex(&sg->sts, digest);
    return sg->sts.failed ? KB_ENOMEM : 0;
}
static int s_build_authorization(struct kb__sigv4_state *st)
{
    struct kb_sigv4_signer *sg = st->sg;
    struct kb__sigv4_buf *b = &sg->authz;

    kb__sigv4_buf_reset(b);
    kb__sigv4_buf_adds(b, S_ALGORITHM " Credential=");
    kb__sigv4_buf_add_buf(b, &sg->credential);
    kb__sigv4_buf_adds(b, ", SignedHeaders=");
    kb__sigv4_buf_add_buf(b, &sg->signed_headers);
    kb__sigv4_buf_adds(b, ", Signature=");
    kb__sigv4_buf_adds(b, sg->signature);
    return b->failed ? KB_ENOMEM : 0;
}

/* The order aws-c-auth writes (AWS accepts any order): the request's own query first. */
static int s_build_presigned_query(struct kb__sigv4_state *st)
{
    struct kb_sigv4_signer *sg = st->sg;
    struct kb__sigv4_buf *b = &sg->presigned;
    const char *query = st->req->query != NULL ? st->req->query : "";
    char expires[16];

    snprintf(expires, sizeof(expires), "%u", (unsigned)st->opt->expires);
    kb__sigv4_buf_reset(b);
    if (query[0] != '\0') {
        kb__sigv4_buf_adds(b, query);
        if (query[strlen(query) - 1] != '&')
            kb__sigv4_buf_addc(b, '&');
    }
    kb__sigv4_buf_adds(b, "X-Amz-Algorithm=" S_ALGORITHM "&X-Amz-Credential=");
    kb__sigv4_buf_add_encoded(b, sg->credential.ptr, sg->credential.len, false);
    kb__sigv4_buf_adds(b, "&X-Amz-Date=");
    kb__sigv4_buf_adds(b, sg->amz_date);
    kb__sigv4_buf_adds(b, "&X-Amz-SignedHeaders=");
    kb__sigv4_buf_add_encoded(b, kb__sigv4_buf_str(&sg->signed_headers), sg->signed_headers.len,
                              false);
    kb__sigv4_buf_adds(b, "&X-Amz-Expires=");
    kb__sigv4_buf_adds(b, expires);
    if (st->has_token) {
        kb__sigv4_buf_adds(b, "&X-Amz-Security-Token=");
        kb__sigv4_buf_add_encoded(b, sg->token.ptr, sg->token.len, false);
    }
    kb__sigv4_buf_adds(b, "&X-Amz-Signature=");
    kb__sigv4_buf_adds(b, sg->signature);
    return b->failed ? KB_ENOMEM : 0;
}

static void s_fill_result(const struct kb__sigv4_state *st, struct kb_sigv4_result *out)
{
    const struct kb_sigv4_signer *sg = st->sg;
    struct kb_sigv4_header *h = out->headers;

    out->canonical_request = kb__sigv4_buf_str(&sg->creq);
    out->string_to_sign = kb__sigv4_buf_str(&sg->sts);
    out->credential_scope = kb__sigv4_buf_str(&sg->scope);
    out->signed_headers = kb__sigv4_buf_str(&sg->signed_headers);
    out->signature = sg->signature;
    out->amz_date = sg->amz_date;
    if (st->opt->presign) {
        out->presigned_query = kb__sigv4_buf_str(&sg->presigned);
        return;
    }
    if (st->has_token)
        *h++ = (struct kb_sigv4_header){"X-Amz-Security-Token", kb__sigv4_buf_str(&sg->token)};
    *h++ = (struct kb_sigv4_header){"X-Amz-Date", sg->amz_date};
    if (st->sign_content_header)
        *h++ =
            (struct kb_sigv4_header){"x-amz-content-sha256", kb__sigv4_buf_str(&sg->payload_hash)};
    *h++ = (struct kb_sigv4_header){"Authorization", kb__sigv4_buf_str(&sg->authz)};
    out->header_count = (size_t)(h - out->headers);
    out->authorization = kb__sigv4_buf_str(&sg->authz);
}

int kb_sigv4_sign(struct kb_sigv4_signer *sg, const struct kb_sigv4_request *req,
                  const struct kb_sigv4_params *params, struct kb_sigv4_result *out)
{
    struct kb__sigv4_state st;
    int rc;

    if (sg == NULL || out == NULL)
        return KB_EINVAL;
    memset(out, 0, sizeof(*out));
    rc = s_check_inputs(req, params);
    if (rc != 0)
        return rc;
    st = (struct kb__sigv4_state){
        .sg = sg,
        .req = req,
        .p = params,
        .opt = &params->options,
        .creds = params->credentials,
        .has_token = params->credentials->session_token != NULL,
    };
    st.sign_token_header = st.has_token && !st.opt->omit_session_token && !st.opt->presign;
    st.sign_token_query = st.has_token && !st.opt->omit_session_token && st.opt->presign;
    st.sign_date_header = !st.opt->presign;
    st.sign_content_header = st.opt->sign_body && !st.opt->presign;

    rc = s_load_session_token(&st);
    if (rc == 0)
        rc = s_build_dates(&st);
    if (rc == 0)
        rc = s_build_payload_hash(&st);
    if (rc == 0)
        rc = s_build_canonical_uri(&st);
    if (rc == 0)
        rc = s_build_canonical_headers(&st);
    if (rc == 0)
        rc = s_build_canonical_query(&st);
    if (rc == 0)
        rc = s_build_canonical_request(&st);
    if (rc == 0)
        rc = s_build_string_to_sign(&st);
    if (rc == 0)
        rc = kb__sigv4_sign_string_to_sign(&st);
    if (rc == 0)
        rc = st.opt->presign ? s_build_presigned_query(&st) : s_build_authorization(&st);
    if (rc != 0)
        return rc;
    s_fill_result(&st, out);
    sg->stats.signatures++;
    return 0;
}

/* ---- the signer object -------------------------------------------------------------------- */

int kb_sigv4_signer_new(struct kb_sigv4_signer **out)
{
    struct kb_sigv4_signer *sg;
    OSSL_PARAM mac_params[2];
    int rc = KB_ENOMEM;

    if (out == NULL)
        return KB_EINVAL;
    if (sodium_init() < 0)
        return KB_ENOMEM;
    sg = calloc(1, sizeof(*sg));
    if (sg == NULL)
        return KB_ENOMEM;
    sg->guarded = sodium_malloc(sizeof(*sg->guarded));
    if (sg->guarded == NULL)
        goto fail;
    sodium_memzero(sg->guarded, sizeof(*sg->guarded));
    sodium_mprotect_noaccess(sg->guarded);
    sg->md = EVP_MD_CTX_new();
    if (sg->md == NULL)
        goto fail;
    rc = KB_ETLS;
    sg->sha256 = EVP_MD_fetch(NULL, s_digest_name, NULL);
    sg->hmac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    if (sg->sha256 == NULL || sg->hmac == NULL)
        goto fail;
    sg->mac = EVP_MAC_CTX_new(sg->hmac);
    if (sg->mac == NULL)
        goto fail;
    mac_params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, s_digest_name, 0);
    mac_params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_CTX_set_params(sg->mac, mac_params) != 1)
        goto fail;
    *out = sg;
    return 0;
fail:
    kb_sigv4_signer_destroy(sg);
    return rc;
}

void kb_sigv4_signer_clear_cache(struct kb_sigv4_signer *sg)
{
    if (sodium_mprotect_readwrite(sg->guarded) == 0) {
        sodium_memzero(sg->guarded->keys, sizeof(sg->guarded->keys));
        sodium_mprotect_noaccess(sg->guarded);
    }
    memset(sg->slots, 0, sizeof(sg->slots));
}

void kb_sigv4_signer_stats(const struct kb_sigv4_signer *sg, struct kb_sigv4_stats *out)
{
    *out = sg->stats;
}

void kb_sigv4_options_for_service(struct kb_sigv4_options *opts, const char *service)
{
    bool s3 = service != NULL && strcmp(service, "s3") == 0;

    /* S3 signs the path exactly as sent: object keys may contain "//" or "..". */
    *opts = (struct kb_sigv4_options){
        .normalize_path = !s3,
        .double_encode = !s3,
        .sign_body = s3,
        .expires = 900,
    };
}

static void s_signer_free(struct kb_sigv4_signer *sg)
{
    struct kb__sigv4_buf *bufs[] = {
        &sg->token,       &sg->scope,    &sg->credential,    &sg->payload_hash,   &sg->path,
        &sg->uri,         &sg->hdr_text, &sg->canon_headers, &sg->signed_headers, &sg->qtext,
        &sg->canon_query, &sg->creq,     &sg->sts,           &sg->authz,          &sg->presigned};
    size_t i;

    for (i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        kb__sigv4_buf_free(bufs[i]);
    free(sg->hdrs);
    free(sg->params);
    sodium_free(sg->guarded); /* wipes the cached keys */
    EVP_MAC_CTX_free(sg->mac);
    EVP_MAC_free(sg->hmac);
    EVP_MD_CTX_free(sg->md);
    EVP_MD_free(sg->sha256);
    free(sg);
}

void kb_sigv4_signer_destroy(struct kb_sigv4_signer *sg)
{
    if (sg != NULL)
        s_signer_free(sg);
}
