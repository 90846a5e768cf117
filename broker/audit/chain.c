/*
 * chain.c - the audit chain's hashing, tagging and key evolution (format: chain.h).
 *
 * OpenSSL does the cryptography (SHA-256, HMAC, HKDF); libsodium compares tags in constant time
 * and wipes the key copies this file makes. Nothing here allocates a secret: keys are the
 * caller's bytes, borrowed for the call.
 */
#include "audit/chain.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define S_EPOCH_INFO    "keybroker audit epoch key"
#define S_KEY_ID_INFO   "keybroker audit key id"
#define S_H_OPEN        ",\"h\":\""
#define S_TAG_OPEN      "\",\"tag\":\""
#define S_CLOSE         "\"}"
#define S_LEN(lit)      (sizeof(lit) - 1)
#define S_SUFFIX_SHA256 (S_LEN(S_H_OPEN) + KB_AUDIT_HEX_LEN + S_LEN(S_CLOSE))
#define S_SUFFIX_TAGGED (S_SUFFIX_SHA256 + S_LEN(S_TAG_OPEN) + KB_AUDIT_HEX_LEN)

const char *kb_audit_mode_name(enum kb_audit_mode mode)
{
    return mode == KB_AUDIT_MODE_HMAC ? "hmac-sha256" : "sha256";
}

int kb_audit_mode_from_name(const char *name, size_t len, enum kb_audit_mode *out)
{
    if (len == 6 && memcmp(name, "sha256", 6) == 0) {
        *out = KB_AUDIT_MODE_SHA256;
        return 0;
    }
    if (len == 11 && memcmp(name, "hmac-sha256", 11) == 0) {
        *out = KB_AUDIT_MODE_HMAC;
        return 0;
    }
    return KB_EINVAL;
}

size_t kb_audit_suffix_len(enum kb_audit_mode mode)
{
    return mode == KB_AUDIT_MODE_HMAC ? S_SUFFIX_TAGGED : S_SUFFIX_SHA256;
}

int kb_audit_link(const uint8_t prev[KB_AUDIT_HASH_LEN], const char *body, size_t body_len,
                  const char *close, uint8_t out[KB_AUDIT_HASH_LEN])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok;

    if (md == NULL)
        return KB_ENOMEM;
    ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(md, prev, KB_AUDIT_HASH_LEN) == 1 &&
         EVP_DigestUpdate(md, body, body_len) == 1 &&
         (close == NULL || EVP_DigestUpdate(md, close, strlen(close)) == 1) &&
         EVP_DigestFinal_ex(md, out, &n) == 1 && n == KB_AUDIT_HASH_LEN;
    EVP_MD_CTX_free(md);
    return ok ? 0 : KB_ENOMEM;
}

int kb_audit_tag(const uint8_t key[KB_AUDIT_KEY_LEN], const uint8_t h[KB_AUDIT_HASH_LEN],
                 uint8_t out[KB_AUDIT_HASH_LEN])
{
    unsigned int n = 0;

    if (HMAC(EVP_sha256(), key, KB_AUDIT_KEY_LEN, h, KB_AUDIT_HASH_LEN, out, &n) == NULL ||
        n != KB_AUDIT_HASH_LEN)
        return KB_ENOMEM;
    return 0;
}

int kb_audit_key_next(const uint8_t key[KB_AUDIT_KEY_LEN], uint64_t next_epoch,
                      uint8_t out[KB_AUDIT_KEY_LEN])
{
    uint8_t ikm[KB_AUDIT_KEY_LEN];
    uint8_t info[S_LEN(S_EPOCH_INFO) + 8];
    EVP_KDF *kdf;
    EVP_KDF_CTX *kctx = NULL;
    OSSL_PARAM params[4];
    int rc = KB_ENOMEM;

    if (next_epoch == 0)
        return KB_EINVAL;
    memcpy(ikm, key, sizeof(ikm)); /* out may be key */
    memcpy(info, S_EPOCH_INFO, S_LEN(S_EPOCH_INFO));
    for (int i = 0; i < 8; i++)
        info[S_LEN(S_EPOCH_INFO) + (size_t)i] = (uint8_t)(next_epoch >> (56 - 8 * i));
    kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    if (kdf != NULL)
        kctx = EVP_KDF_CTX_new(kdf);
    if (kctx != NULL) {
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ikm, sizeof(ikm));
        params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof(info));
        params[3] = OSSL_PARAM_construct_end();
        if (EVP_KDF_derive(kctx, out, KB_AUDIT_KEY_LEN, params) == 1)
            rc = 0;
    }
    EVP_KDF_CTX_free(kctx); /* wipes its copy of the key */
    EVP_KDF_free(kdf);
    sodium_memzero(ikm, sizeof(ikm));
    return rc;
}

int kb_audit_key_id(const uint8_t k0[KB_AUDIT_KEY_LEN], char out[KB_AUDIT_KEY_ID_LEN + 1])
{
    uint8_t mac[KB_AUDIT_HASH_LEN];
    unsigned int n = 0;

    if (HMAC(EVP_sha256(), k0, KB_AUDIT_KEY_LEN, (const uint8_t *)S_KEY_ID_INFO,
             S_LEN(S_KEY_ID_INFO), mac, &n) == NULL)
        return KB_ENOMEM;
    kb_audit_hex(mac, KB_AUDIT_KEY_ID_LEN / 2, out);
    return 0;
}

void kb_audit_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    /* Not sodium_bin2hex: this runs for every line written and verified, and the bytes are
     * public (hashes and tags). */
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0xf];
    }
    out[2 * n] = '\0';
}

int kb_audit_unhex(const char *hex, size_t hex_len, uint8_t *out, size_t n)
{
    const char *end = NULL;
    size_t got = 0;

    if (hex_len != 2 * n || sodium_hex2bin(out, n, hex, hex_len, NULL, &got, &end) != 0 ||
        got != n || end != hex + hex_len)
        return KB_EPARSE;
    return 0;
}

/* Writes <body minus "}">,"h":"..."[,"tag":"..."]}\n into out (room checked by the caller). */
static size_t s_emit(const char *body, size_t body_len, const uint8_t h[KB_AUDIT_HASH_LEN],
                     const uint8_t *tag, char *out)
{
    size_t n = body_len - 1;

    memmove(out, body, n); /* out may be the body's own buffer */
    memcpy(out + n, S_H_OPEN, S_LEN(S_H_OPEN));
    n += S_LEN(S_H_OPEN);
    kb_audit_hex(h, KB_AUDIT_HASH_LEN, out + n);
    n += KB_AUDIT_HEX_LEN;
    if (tag != NULL) {
        memcpy(out + n, S_TAG_OPEN, S_LEN(S_TAG_OPEN));
        n += S_LEN(S_TAG_OPEN);
        kb_audit_hex(tag, KB_AUDIT_HASH_LEN, out + n);
        n += KB_AUDIT_HEX_LEN;
    }
    memcpy(out + n, S_CLOSE, S_LEN(S_CLOSE));
    n += S_LEN(S_CLOSE);
    out[n++] = '\n';
    return n;
}

static int s_check_body(const char *body, size_t body_len, bool tagged, size_t cap)
{
    size_t need;

    if (body_len < 2 || body[0] != '{' || body[body_len - 1] != '}')
        return KB_EINVAL;
    need = body_len - 1 + (tagged ? S_SUFFIX_TAGGED : S_SUFFIX_SHA256) + 1;
    return need > KB_AUDIT_LINE_MAX || need > cap ? KB_ETOOBIG : 0;
}

int kb_audit_make_line(const uint8_t prev[KB_AUDIT_HASH_LEN], const uint8_t *key, const char *body,
                       size_t body_len, char *out, size_t cap, size_t *len,
                       uint8_t h_out[KB_AUDIT_HASH_LEN])
{
    uint8_t h[KB_AUDIT_HASH_LEN], tag[KB_AUDIT_HASH_LEN];
    int rc = s_check_body(body, body_len, key != NULL, cap);

    if (rc != 0)
        return rc;
    rc = kb_audit_link(prev, body, body_len, NULL, h);
    if (rc == 0 && key != NULL)
        rc = kb_audit_tag(key, h, tag);
    if (rc != 0)
        return rc;
    *len = s_emit(body, body_len, h, key != NULL ? tag : NULL, out);
    if (h_out != NULL)
        memcpy(h_out, h, sizeof(h));
    return 0;
}

/* -- the maker: contexts made once ------------------------------------------------------------- */

struct kb_audit_maker {
    EVP_MD *sha256; /* fetched once: EVP_sha256() would look it up (under a lock) every line */
    EVP_MD_CTX *md;
    EVP_MAC *mac;
    EVP_MAC_CTX *macctx;
    bool keyed;
};

int kb_audit_maker_new(struct kb_audit_maker **out)
{
    struct kb_audit_maker *m = calloc(1, sizeof(*m));

    *out = NULL;
    if (m == NULL)
        return KB_ENOMEM;
    m->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    m->md = EVP_MD_CTX_new();
    m->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    m->macctx = m->mac != NULL ? EVP_MAC_CTX_new(m->mac) : NULL;
    if (m->sha256 == NULL || m->md == NULL || m->macctx == NULL) {
        kb_audit_maker_free(m);
        return KB_ENOMEM;
    }
    *out = m;
    return 0;
}

void kb_audit_maker_free(struct kb_audit_maker *m)
{
    if (m == NULL)
        return;
    EVP_MAC_CTX_free(m->macctx); /* cleanses its copy of the key */
    EVP_MAC_free(m->mac);
    EVP_MD_CTX_free(m->md);
    EVP_MD_free(m->sha256);
    free(m);
}

int kb_audit_maker_key(struct kb_audit_maker *m, const uint8_t *key)
{
    OSSL_PARAM params[2];

    m->keyed = false;
    if (key == NULL)
        return 0;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(m->macctx, key, KB_AUDIT_KEY_LEN, params) != 1)
        return KB_ENOMEM;
    m->keyed = true;
    return 0;
}

int kb_audit_maker_line(struct kb_audit_maker *m, const uint8_t prev[KB_AUDIT_HASH_LEN],
                        const char *body, size_t body_len, char *out, size_t cap, size_t *len,
                        uint8_t h_out[KB_AUDIT_HASH_LEN], uint8_t tag_out[KB_AUDIT_HASH_LEN])
{
    uint8_t h[KB_AUDIT_HASH_LEN], tag[KB_AUDIT_HASH_LEN];
    unsigned int hn = 0;
    size_t tn = 0;
    int rc = s_check_body(body, body_len, m->keyed, cap);

    if (rc != 0)
        return rc;
    if (EVP_DigestInit_ex2(m->md, m->sha256, NULL) != 1 ||
        EVP_DigestUpdate(m->md, prev, KB_AUDIT_HASH_LEN) != 1 ||
        EVP_DigestUpdate(m->md, body, body_len) != 1 || EVP_DigestFinal_ex(m->md, h, &hn) != 1 ||
        hn != KB_AUDIT_HASH_LEN)
        return KB_ENOMEM;
    /* EVP_MAC_init without a key starts again with the one kb_audit_maker_key set. */
    if (m->keyed && (EVP_MAC_init(m->macctx, NULL, 0, NULL) != 1 ||
                     EVP_MAC_update(m->macctx, h, sizeof(h)) != 1 ||
                     EVP_MAC_final(m->macctx, tag, &tn, sizeof(tag)) != 1 || tn != sizeof(tag)))
        return KB_ENOMEM;
    *len = s_emit(body, body_len, h, m->keyed ? tag : NULL, out);
    if (h_out != NULL)
        memcpy(h_out, h, sizeof(h));
    if (tag_out != NULL && m->keyed)
        memcpy(tag_out, tag, sizeof(tag));
    return 0;
}

/* kb_audit_unhex for a line's chain fields: lowercase only, as they are written, so that no
 * byte of a line can change (a digit's case) without changing what it says. */
static int s_unhex_lower(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < 2 * n; i++)
        if (hex[i] >= 'A' && hex[i] <= 'F')
            return KB_EPARSE;
    return kb_audit_unhex(hex, 2 * n, out, n);
}

/* Whether line[0..len) ends with the suffix of mode; fills p when it does. */
static bool s_suffix(const char *line, size_t len, enum kb_audit_mode mode,
                     struct kb_audit_line_parts *p)
{
    size_t slen = kb_audit_suffix_len(mode);
    const char *s;

    if (len < slen + 1) /* at least "{" before the suffix */
        return false;
    s = line + len - slen;
    if (memcmp(s, S_H_OPEN, S_LEN(S_H_OPEN)) != 0)
        return false;
    s += S_LEN(S_H_OPEN);
    if (s_unhex_lower(s, p->h, sizeof(p->h)) != 0)
        return false;
    s += KB_AUDIT_HEX_LEN;
    if (mode == KB_AUDIT_MODE_HMAC) {
        if (memcmp(s, S_TAG_OPEN, S_LEN(S_TAG_OPEN)) != 0)
            return false;
        s += S_LEN(S_TAG_OPEN);
        if (s_unhex_lower(s, p->tag, sizeof(p->tag)) != 0)
            return false;
        s += KB_AUDIT_HEX_LEN;
    }
    if (memcmp(s, S_CLOSE, S_LEN(S_CLOSE)) != 0)
        return false;
    p->mode = mode;
    p->body_len = len - slen;
    return true;
}

int kb_audit_split_line(const char *line, size_t len, struct kb_audit_line_parts *out)
{
    memset(out, 0, sizeof(*out));
    if (s_suffix(line, len, KB_AUDIT_MODE_HMAC, out) ||
        s_suffix(line, len, KB_AUDIT_MODE_SHA256, out))
        return 0;
    return KB_EPARSE;
}

int kb_audit_check_link(const uint8_t prev[KB_AUDIT_HASH_LEN], const char *line,
                        const struct kb_audit_line_parts *p)
{
    uint8_t h[KB_AUDIT_HASH_LEN];
    int rc = kb_audit_link(prev, line, p->body_len, "}", h);

    if (rc != 0)
        return rc;
    return sodium_memcmp(h, p->h, sizeof(h)) == 0 ? 1 : 0;
}

int kb_audit_check_tag(const uint8_t key[KB_AUDIT_KEY_LEN], const uint8_t h[KB_AUDIT_HASH_LEN],
                       const uint8_t tag[KB_AUDIT_HASH_LEN])
{
    uint8_t want[KB_AUDIT_HASH_LEN];
    int rc = kb_audit_tag(key, h, want);

    if (rc != 0)
        return rc;
    rc = sodium_memcmp(want, tag, sizeof(want)) == 0 ? 1 : 0;
    sodium_memzero(want, sizeof(want));
    return rc;
}
