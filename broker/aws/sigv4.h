/*
 * sigv4.h - AWS Signature Version 4 request signing (HMAC-SHA256, header or presigned query).
 *
 * A pure function of its inputs: no I/O, no clock, no logging. The caller passes the request as it
 * will appear on the wire plus the credentials, region, service and time, and gets back the
 * canonical request, the string to sign, the signature and what to add to the request (headers,
 * or the query of a presigned URL). A signer object owns the buffers (reused from call to call, so
 * a steady stream of signatures does not allocate) and a small cache of derived signing keys.
 *
 * This module must never log, print or copy the secret access key or a derived key into
 * unguarded memory: the secret is opened only while a signing key is derived, and derived keys
 * live in sodium-guarded memory that is PROT_NONE between calls. A signer is not thread-safe
 * (it belongs to one loop thread).
 */
#ifndef KB_SIGV4_H
#define KB_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/secret.h"

/* X-Amz-Expires may not exceed seven days. */
#define KB_SIGV4_MAX_EXPIRES 604800u
/* The longest secret access key accepted (AWS's are 40 characters). */
#define KB_SIGV4_MAX_SECRET_LEN 256u
/* Headers a signature can ask the caller to add (token, date, content hash, Authorization). */
#define KB_SIGV4_MAX_ADDED_HEADERS 4

/* One HTTP header. Both strings NUL-terminated; borrowed for the duration of the call. */
struct kb_sigv4_header {
    const char *name;
    const char *value;
};

enum kb_sigv4_payload {
    KB_SIGV4_PAYLOAD_BODY,     /* hash body[0..body_len) (an empty body is allowed) */
    KB_SIGV4_PAYLOAD_HASH,     /* payload_hash is the caller's lowercase hex SHA-256 of the body */
    KB_SIGV4_PAYLOAD_UNSIGNED, /* the literal "UNSIGNED-PAYLOAD" (S3 only) */
};

/* The request as it goes on the wire. Every pointer is borrowed for the duration of the call. */
struct kb_sigv4_request {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* the path exactly as sent, already percent-encoded; NULL or "" is "/" */
    const char *query;  /* the raw query string without '?', as sent; NULL or "" for none */
    /* Headers to sign, in wire order; duplicates allowed (their values are joined with ','),
     * values may span lines (whitespace runs collapse to one space). Authorization and any header
     * the signer adds itself (X-Amz-Date; X-Amz-Security-Token when the credentials carry a
     * token; x-amz-content-sha256 with sign_body) are ignored here: send the signer's instead. */
    const struct kb_sigv4_header *headers;
    size_t header_count;
    enum kb_sigv4_payload payload;
    const void *body; /* KB_SIGV4_PAYLOAD_BODY: body_len bytes (may be NULL when body_len is 0) */
    size_t body_len;
    const char *payload_hash; /* KB_SIGV4_PAYLOAD_HASH: 64 lowercase hex digits */
};

/* Borrowed for the duration of the call. */
struct kb_sigv4_credentials {
    const char *access_key_id;           /* "AKIA...", not secret */
    struct kb_secret *secret_access_key; /* opened only while a signing key is derived */
    struct kb_secret *session_token;     /* NULL for long-term keys */
};

struct kb_sigv4_options {
    bool normalize_path;     /* remove "." / ".." segments and empty segments ("//") */
    bool double_encode;      /* URI-encode the (already encoded) path once more */
    bool sign_body;          /* header mode: add and sign x-amz-content-sha256 */
    bool omit_session_token; /* add the token after signing, outside the signature */
    bool presign;            /* sign the query string (presigned URL) instead of a header */
    uint32_t expires;        /* presign: X-Amz-Expires in seconds, 1..KB_SIGV4_MAX_EXPIRES */
};

/* Everything except the request. Borrowed for the duration of the call. */
struct kb_sigv4_params {
    const struct kb_sigv4_credentials *credentials;
    const char *region;  /* "us-east-1" */
    const char *service; /* signing name: "s3", "iam", "secretsmanager", "sts" */
    time_t time;         /* the signing time (UTC seconds since the epoch) */
    struct kb_sigv4_options options;
};

/*
 * The results of one signature. Every pointer is owned by the signer and valid until the next
 * kb_sigv4_sign() or kb_sigv4_signer_destroy() on it; the caller does not free them. Values that
 * carry the session token are wiped by the signer when it is destroyed; a caller that copies them
 * (into a curl header list) wipes its copy the same way.
 */
struct kb_sigv4_result {
    const char *canonical_request;
    const char *string_to_sign;
    const char *credential_scope; /* "20150830/us-east-1/service/aws4_request" */
    const char *signed_headers;   /* "host;x-amz-date" */
    const char *signature;        /* 64 lowercase hex digits */
    const char *amz_date;         /* "20150830T123600Z" */
    /* Header mode: the Authorization header value; NULL when presigning. */
    const char *authorization;
    /* Header mode: the headers to add to the request, in this order: X-Amz-Security-Token (also
     * when omit_session_token is set: it is sent, just not signed), X-Amz-Date,
     * x-amz-content-sha256 (sign_body), Authorization. Empty when presigning. */
    struct kb_sigv4_header headers[KB_SIGV4_MAX_ADDED_HEADERS];
    size_t header_count;
    /* Presign: the complete query string to send instead of the request's (without '?'): the
     * request's raw query, then X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date,
     * X-Amz-SignedHeaders, X-Amz-Expires, [X-Amz-Security-Token], X-Amz-Signature. NULL in
     * header mode. */
    const char *presigned_query;
};

/* Counters since the signer was created. */
struct kb_sigv4_stats {
    uint64_t signatures;      /* successful kb_sigv4_sign() calls */
    uint64_t key_cache_hits;  /* signatures that reused a cached signing key */
    uint64_t key_derivations; /* signatures that derived the key (4 HMACs) */
};

struct kb_sigv4_signer;

/* Creates a signer with an empty key cache. Returns 0 or KB_ENOMEM (KB_ETLS if OpenSSL lacks
 * HMAC-SHA256). *out is set only on success; the caller frees it with kb_sigv4_signer_destroy. */
int kb_sigv4_signer_new(struct kb_sigv4_signer **out);

/* Wipes every buffer and cached key, then frees s. NULL is allowed. */
void kb_sigv4_signer_destroy(struct kb_sigv4_signer *s);

/* Forgets (and wipes) every cached signing key, e.g. when an access key is deleted. */
void kb_sigv4_signer_clear_cache(struct kb_sigv4_signer *s);

/* Copies the counters into *out. */
void kb_sigv4_signer_stats(const struct kb_sigv4_signer *s, struct kb_sigv4_stats *out);

/* The options every AWS service but S3 wants (normalize, double-encode), or S3's (neither, and
 * sign_body) when service is "s3". presign is off; expires is set to 900 for when it is turned
 * on. */
void kb_sigv4_options_for_service(struct kb_sigv4_options *opts, const char *service);

/*
 * Signs req. A signing key derived for (date, region, service, access key id) is cached in s, so
 * signatures on the same day do not touch the secret again; an access key id must therefore
 * always name the same secret (clear the cache otherwise). Returns 0 and fills *out (pointers
 * owned by s, see struct kb_sigv4_result), KB_EINVAL for a malformed request, parameters or
 * options, or a request without a Host header (nothing is signed), KB_ENOMEM, or KB_ETLS when
 * OpenSSL fails.
 */
int kb_sigv4_sign(struct kb_sigv4_signer *s, const struct kb_sigv4_request *req,
                  const struct kb_sigv4_params *params, struct kb_sigv4_result *out);

#endif
