/*
 * credentials.h - where the broker's own AWS credentials come from: a provider chain.
 *
 * First provider that yields wins:
 *   1. explicit config (access key id + secret [+ session token]);
 *   2. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN;
 *   3. shared files: AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and AWS_CONFIG_FILE
 *      (~/.aws/config, "[profile x]" sections), profile from config or AWS_PROFILE (default
 *      "default"), parsed with inih; `credential_process` runs the command (uv_spawn, with a
 *      timeout) and reads its JSON;
 *   4. container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on 169.254.170.2) or
 *      AWS_CONTAINER_CREDENTIALS_FULL_URI (https, or http to loopback or the ECS/EKS agent at
 *      169.254.170.2 / 169.254.170.23 / [fd00:ec2::23]), with
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN / _TOKEN_FILE (the file wins and is read per fetch);
 *   5. EC2 IMDSv2: PUT /latest/api/token, then GET the role and its credentials, with a short
 *      timeout so it fails fast off EC2; AWS_EC2_METADATA_DISABLED=true skips it and
 *      AWS_EC2_METADATA_SERVICE_ENDPOINT overrides the address.
 * A provider that fails (partial keys, a credential_process that exits non-zero, an endpoint
 * that refuses) adds its reason to the failure message and the next provider is tried. The
 * shared files are read at each run of the chain, the environment only at creation.
 * Credentials that expire are refreshed before they do (5 minutes ahead); if a refresh fails
 * while the cached ones have not expired yet, those are served until they do. Secrets live only in
 * struct kb_secret; this module never logs a secret or a token and wipes every temporary.
 */
#ifndef KB_CREDENTIALS_H
#define KB_CREDENTIALS_H

#include <stdbool.h>
#include <time.h>
#include <uv.h>

#include "aws/http.h"
#include "common/secret.h"

struct kb_credentials {
    char access_key_id[128];
    struct kb_secret *secret_access_key; /* never NULL in a credentials value handed out */
    struct kb_secret *session_token;     /* NULL for long-term keys */
    time_t expiration;                   /* 0: does not expire */
    char source[32];                     /* "config", "env", "profile", "process", "container",
                                            "imds": for logs */
};

/* Makes a deep copy of src into dst (new kb_secret copies). Returns 0 or KB_ENOMEM. */
int kb_credentials_copy(struct kb_credentials *dst, const struct kb_credentials *src);
/* Wipes and frees the secrets of c (not c itself). */
void kb_credentials_cleanup(struct kb_credentials *c);

/* What the chain needs besides the environment. Strings borrowed during kb_creds_chain_new, which
 * copies them; NULL means unset. */
struct kb_creds_config {
    const char *access_key_id; /* explicit credentials (provider 1) */
    const char *secret_access_key;
    const char *session_token;
    const char *profile;     /* overrides AWS_PROFILE */
    long imds_timeout_ms;    /* 0: 1000 */
    long process_timeout_ms; /* credential_process, 0: 30000 */
};

struct kb_creds_chain;

/* The callback of kb_creds_get. On success err is 0 and creds is borrowed until the callback
 * returns (copy with kb_credentials_copy to keep them). On failure creds is NULL and message
 * says, for each provider tried, why it yielded nothing (never a secret). */
typedef void (*kb_creds_cb)(void *ctx, int err, const struct kb_credentials *creds,
                            const char *message);

/* Creates the chain. http is borrowed and must outlive the chain. Reads the environment now
 * (the only time). Returns 0, KB_ENOMEM, KB_ECONFIG (explicit key without secret, ...). The
 * caller frees it with kb_creds_chain_destroy. */
int kb_creds_chain_new(uv_loop_t *loop, struct kb_http *http, const struct kb_creds_config *cfg,
                       struct kb_creds_chain **out);

/* Gets credentials: the cached ones while they are more than 5 minutes from expiring, otherwise
 * runs the chain (concurrent callers share one run). Always asynchronous. Returns 0 (cb runs once)
 * or a negative code (cb does not run). */
int kb_creds_get(struct kb_creds_chain *chain, kb_creds_cb cb, void *ctx);

/* The `region` of a profile in the shared files, for region resolution (endpoints.h: the last
 * resort after config, AWS_REGION and AWS_DEFAULT_REGION). profile NULL or "": AWS_PROFILE, else
 * "default". The files are AWS_CONFIG_FILE (~/.aws/config, "[profile x]" sections) and
 * AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials, whose values win), read now, synchronously
 * (small local files). Writes "" to out when no file, profile or region is there. Returns 0,
 * KB_EINVAL (outlen 0), KB_ETOOBIG (the region does not fit outlen), KB_EPARSE (a file is
 * malformed) or KB_ENOMEM; out is "" on every error. */
int kb_creds_profile_region(const char *profile, char *out, size_t outlen);

/* Cancels pending gets (their callbacks run with KB_ECANCELED, asynchronously) and frees the chain
 * once nothing of it is running any more. */
void kb_creds_chain_destroy(struct kb_creds_chain *chain);

#endif
