/*
 * sigv4_internal.h - private to the sigv4 module: the declarations its three files share.
 *
 * sigv4.c runs the signing pipeline and implements the public API of sigv4.h; sigv4_text.c holds
 * the growable buffers, character classes, URI encoding and path normalization; sigv4_key.c holds
 * the signing-key cache, key derivation and the SHA-256/HMAC helpers. Not a public interface:
 * only those three files include it (tests and callers use sigv4.h). Names shared between the
 * files use the kb__sigv4_ prefix (libuv's uv__ convention for internal names); what one file
 * keeps to itself stays static and s_*.
 *
 * Nothing declared here logs, and nothing may copy the secret access key, the session token or a
 * derived key anywhere but the signer's own buffers (wiped when freed) and its guarded area.
 */
#ifndef KB_SIGV4_INTERNAL_H
#define KB_SIGV4_INTERNAL_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "aws/sigv4.h"

#define KB__SIGV4_KEY_LEN     32 /* a SHA-256 digest, an HMAC-SHA256 result, a signing key */
#define KB__SIGV4_HEX_LEN     (2 * KB__SIGV4_KEY_LEN)
#define KB__SIGV4_CACHE_SLOTS 8

/* A growable NUL-terminated buffer. An allocation failure makes it sticky-failed: later appends
 * do nothing, so a step appends freely and checks `failed` once at its end. Old storage is wiped
 * before it is freed because some buffers carry the session token. Caller storage (every one is
 * embedded in the signer), zero-initialized; ptr is owned by the buffer and released only by
 * kb__sigv4_buf_free(). */
struct kb__sigv4_buf {
    char *ptr;
    size_t len;
    size_t cap;
    bool failed;
};

/* A canonical header: offsets into hdr_text while it may still grow, then pointers. */
struct kb__sigv4_hdr {
    size_t name_off, name_len, value_off, value_len, seq;
    const char *name, *value;
};

/* A canonical query parameter, both halves already encoded; offsets into qtext, then pointers. */
struct kb__sigv4_param {
    size_t key_off, key_len, value_off, value_len;
    const char *key, *value;
};

/* Which scope a cached key signs for. Longer names than these are signed but not cached. */
struct kb__sigv4_cache_slot {
    bool used;
    uint64_t last_use;
    char date[9];
    char region[32];
    char service[32];
    char access_key_id[128];
};

/* The sodium_malloc'd area, PROT_NONE between calls: the cached keys, one more key for scopes
 * that cannot be cached, and the derivation temporaries, so the secret and the intermediate keys
 * never sit in ordinary memory. */
struct kb__sigv4_guarded {
    unsigned char keys[KB__SIGV4_CACHE_SLOTS + 1][KB__SIGV4_KEY_LEN];
    unsigned char k_secret[4 + KB_SIGV4_MAX_SECRET_LEN];
    unsigned char k_date[KB__SIGV4_KEY_LEN];
    unsigned char k_region[KB__SIGV4_KEY_LEN];
    unsigned char k_service[KB__SIGV4_KEY_LEN];
};

/* The signer (opaque in sigv4.h). Created and freed only by kb_sigv4_signer_new/_destroy in
 * sigv4.c, which own everything it points to: the OpenSSL objects, every buffer, the hdrs and
 * params arrays (malloc'd, grown by the pipeline) and the guarded area (sodium_malloc'd). */
struct kb_sigv4_signer {
    EVP_MD *sha256;
    EVP_MD_CTX *md;
    EVP_MAC *hmac;
    EVP_MAC_CTX *mac;

    struct kb__sigv4_buf
        token; /* the session token, for the duration of a call (wiped at destroy) */
    struct kb__sigv4_buf scope, credential, payload_hash;
    struct kb__sigv4_buf path; /* the normalized path */
    struct kb__sigv4_buf uri;
    struct kb__sigv4_buf hdr_text, canon_headers, signed_headers;
    struct kb__sigv4_buf qtext, canon_query;
    struct kb__sigv4_buf creq, sts, authz, presigned;
    struct kb__sigv4_hdr *hdrs;
    size_t hdrs_cap;
    struct kb__sigv4_param *params;
    size_t params_cap;

    bool dates_valid; /* amz_date/date were formatted from dates_time */
    time_t dates_time;
    char amz_date[17];
    char date[9];
    char signature[KB__SIGV4_HEX_LEN + 1];

    struct kb__sigv4_guarded *guarded;
    struct kb__sigv4_cache_slot slots[KB__SIGV4_CACHE_SLOTS];
    uint64_t clock;
    struct kb_sigv4_stats stats;
};

/* The view of one kb_sigv4_sign() call: what to sign and which optional parts apply. Lives on
 * kb_sigv4_sign()'s stack; every pointer in it is borrowed from the caller (or is the signer)
 * for the duration of that call. */
struct kb__sigv4_state {
    struct kb_sigv4_signer *sg;
    const struct kb_sigv4_request *req;
    const struct kb_sigv4_params *p;
    const struct kb_sigv4_options *opt;
    const struct kb_sigv4_credentials *creds;
    bool has_token;           /* the credentials carry a session token */
    bool sign_token_header;   /* ... signed as the X-Amz-Security-Token header */
    bool sign_token_query;    /* ... signed as the X-Amz-Security-Token query parameter */
    bool sign_date_header;    /* header mode: X-Amz-Date is a signed header */
    bool sign_content_header; /* header mode with sign_body: x-amz-content-sha256 */
};

/* ---- sigv4_text.c: buffers --------------------------------------------------------------- */

/* Empties b (keeps its storage) and clears its failed flag. */
void kb__sigv4_buf_reset(struct kb__sigv4_buf *b);

/* Wipes and frees b's storage, then zeroes *b. b itself stays the caller's. */
void kb__sigv4_buf_free(struct kb__sigv4_buf *b);

/* b's contents, or "" when it never held any. Owned by b: valid until the next append, reset or
 * free on b. The caller does not free it. */
const char *kb__sigv4_buf_str(const struct kb__sigv4_buf *b);

/* Appenders. Each copies its input (borrowed for the call) into b's own storage; on allocation
 * failure b becomes sticky-failed and is otherwise left as it was. */
void kb__sigv4_buf_add(struct kb__sigv4_buf *b, const char *p, size_t n);
void kb__sigv4_buf_adds(struct kb__sigv4_buf *b, const char *s);
void kb__sigv4_buf_addc(struct kb__sigv4_buf *b, char c);
void kb__sigv4_buf_add_buf(struct kb__sigv4_buf *b, const struct kb__sigv4_buf *src);
/* Lowercase hex of a digest (never a key: signing keys are not printed anywhere). */
void kb__sigv4_buf_add_hex(struct kb__sigv4_buf *b, const unsigned char bin[KB__SIGV4_KEY_LEN]);
/* s[0..n) with ASCII letters lowercased. */
void kb__sigv4_buf_add_lower(struct kb__sigv4_buf *b, const char *s, size_t n);
/* Trims the value and collapses each run of whitespace (line breaks included) to one space. */
void kb__sigv4_buf_add_trimmed(struct kb__sigv4_buf *b, const char *v);

/* ---- sigv4_text.c: character classes ------------------------------------------------------ */

/* Whether every byte of the NUL-terminated s satisfies ok (true for ""). */
bool kb__sigv4_all(const char *s, bool (*ok)(unsigned char));
/* Non-empty and made of RFC 9110 token characters: a valid method or header name. */
bool kb__sigv4_token_string(const char *s);
/* Non-empty credential scope part (access key id, region, service): no '/', space or control. */
bool kb__sigv4_scope_string(const char *s);
/* A header value byte: no control byte other than whitespace (values may span lines). */
bool kb__sigv4_value_char(unsigned char c);
bool kb__sigv4_no_ctl_char(unsigned char c);
bool kb__sigv4_lower_hex(unsigned char c);
/* ASCII case-insensitive equality of two NUL-terminated strings. */
bool kb__sigv4_ascii_caseeq(const char *a, const char *b);

/* ---- sigv4_text.c: URI encoding and paths ------------------------------------------------- */

/* Appends SigV4's UriEncode of p[0..n): unreserved bytes (and '/' when keep_slash) as they are,
 * every other byte as %XX. */
void kb__sigv4_buf_add_encoded(struct kb__sigv4_buf *b, const char *p, size_t n, bool keep_slash);
/* Appends p[0..n) (a query key or value as sent, encoded or not) decoded and encoded canonically,
 * so both spellings sign alike; '+' stays a literal '+'. */
void kb__sigv4_buf_add_recoded(struct kb__sigv4_buf *b, const char *p, size_t n);
/* Resets out and writes p[0..n) into it without "." / ".." / empty segments, keeping a trailing
 * slash; the result is never longer than n + 1. On allocation failure out is failed. */
void kb__sigv4_normalize_path(struct kb__sigv4_buf *out, const char *p, size_t n);

/* ---- sigv4_key.c: hashing and the signing key --------------------------------------------- */

/* SHA-256 of p[0..n) (borrowed) into out (caller storage), with sg's reusable digest context.
 * Returns 0 or KB_ETLS. Not for secrets: nothing here wipes the context. */
int kb__sigv4_sha256(struct kb_sigv4_signer *sg, const void *p, size_t n,
                     unsigned char out[KB__SIGV4_KEY_LEN]);

/* Signs st->sg->sts with the signing key for st's scope, taken from the signer's cache or derived
 * from st->creds' secret (opened only while deriving) and cached, and writes the hex signature
 * into st->sg->signature. The guarded area is readable only inside this call, and the HMAC
 * context is scrubbed once the string is signed. Returns 0, KB_ENOMEM (mprotect failed) or
 * KB_ETLS. */
int kb__sigv4_sign_string_to_sign(struct kb__sigv4_state *st);

#endif
