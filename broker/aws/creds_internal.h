/*
 * creds_internal.h - the parts of the credentials chain (credentials.c) that live in their own
 * files: shared-file profiles (creds_profile.c), credential_process (creds_process.c), JSON
 * credential documents and times (creds_json.c), and the container and EC2 metadata endpoints
 * (creds_remote.c).
 *
 * Not a public interface: only the chain and its unit tests include it. Nothing here logs, and no
 * `why` text ever holds a secret, a token or a process's standard output.
 */
#ifndef KB_CREDS_INTERNAL_H
#define KB_CREDS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <uv.h>

#include "aws/credentials.h"
#include "aws/http.h"
#include "common/secret.h"

/* Credentials are fetched again when fewer than this many seconds remain before they expire. */
#define KB_CREDS_REFRESH_AHEAD 300
/* Room for one provider's reason. */
#define KB_CREDS_WHY_LEN 512
/* The most credential_process may print, and the largest credentials document accepted. */
#define KB_CREDS_MAX_DOC 65536
/* Longest accepted session token and secret access key (AWS's are ~1-2 KiB and 40 bytes). */
#define KB_CREDS_MAX_TOKEN  8192
#define KB_CREDS_MAX_SECRET 256

/* The end of one asynchronous provider. On success err is 0 and creds holds credentials, borrowed
 * until the callback returns: the callee keeps them by copying the struct and zeroing *creds
 * (whatever is left is cleaned up after the callback). On failure creds is NULL and why says why
 * (no secret). */
typedef void (*kb_creds_done_cb)(void *ctx, int err, struct kb_credentials *creds, const char *why);

/* ---- creds_json.c: pure ---- */

/* Fills out (zeroed first) from strings: id (copied), secret[0..secret_len) and the optional
 * token[0..token_len) (token NULL: none) into new kb_secrets, expiration, source. Checks the id
 * ([A-Za-z0-9_-], 1..127), the secret (1..KB_CREDS_MAX_SECRET bytes) and the token (at most
 * KB_CREDS_MAX_TOKEN bytes, no control characters). Returns 0, KB_EPARSE (why says which value
 * is wrong, never the value) or KB_ENOMEM; out holds nothing on error. The caller still owns and
 * wipes its buffers. */
int kb_creds_fill(struct kb_credentials *out, const char *id, const char *secret, size_t secret_len,
                  const char *token, size_t token_len, time_t expiration, const char *source,
                  char *why, size_t whylen);

/* The JSON documents that carry credentials. */
enum kb_creds_doc {
    KB_CREDS_DOC_PROCESS,   /* credential_process: Version 1, AccessKeyId, SecretAccessKey,
                               [SessionToken], [Expiration] */
    KB_CREDS_DOC_CONTAINER, /* ECS/EKS: AccessKeyId, SecretAccessKey, [Token], [Expiration] */
    KB_CREDS_DOC_IMDS,      /* EC2: Code "Success", AccessKeyId, SecretAccessKey, Token,
                               Expiration */
};

/* Parses the document buf[0..len) (need not be NUL-terminated) into out (source "process",
 * "container" or "imds"). Every copy json-c made of a value (its strings, the tokenizer's
 * buffer) is wiped before it is freed; buf itself stays the caller's to wipe. Returns 0,
 * KB_EPARSE with a reason in why, KB_ETOOBIG or KB_ENOMEM; out holds nothing on error. */
int kb_creds_doc_parse(enum kb_creds_doc doc, const char *buf, size_t len,
                       struct kb_credentials *out, char *why, size_t whylen);

/* True when c must be fetched again at time now: it expires (expiration != 0) and fewer than
 * KB_CREDS_REFRESH_AHEAD seconds remain. */
bool kb_creds_needs_refresh(const struct kb_credentials *c, time_t now);

/* ---- creds_profile.c: reads the shared files, no other I/O ---- */

/* One profile, merged from the config file and the credentials file (whose values win). */
struct kb_creds_profile {
    bool found;                          /* a section of that name exists in either file */
    char *access_key_id;                 /* NULL when absent; freed by the cleanup */
    struct kb_secret *secret_access_key; /* NULL when absent */
    struct kb_secret *session_token;     /* NULL when absent */
    char *credential_process;            /* NULL when absent */
    char *region;                        /* NULL when absent */
    bool role_arn;                       /* role_arn is set (assuming a role: not supported) */
    bool sso;                            /* sso_session / sso_start_url is set (not supported) */
};

/* Loads profile name from the config file (sections "[profile name]", or "[default]") and then
 * the credentials file (sections "[name]"); a NULL path, or a file that does not exist, is
 * skipped. Keys are matched without regard to case; the last value of a key wins. Secrets go
 * straight into kb_secrets and the file's bytes and inih's line buffer are wiped. Returns 0
 * (found or not), KB_EPARSE (why names the file and line), KB_ETOOBIG (a file over 1 MiB, a line
 * over 16 KiB), KB_ENOMEM or a UV_E* read error; out is cleaned up on error. */
int kb_creds_profile_load(const char *name, const char *credentials_path, const char *config_path,
                          struct kb_creds_profile *out, char *why, size_t whylen);

/* Frees what kb_creds_profile_load put in p (not p) and zeroes it. */
void kb_creds_profile_cleanup(struct kb_creds_profile *p);

/* The path of a shared file: env_value when set (a leading "~/" means home), else
 * home/.aws/<file>. Writes it to out. Returns 0, KB_ENOTFOUND (no home to expand or default
 * to) or KB_ETOOBIG. */
int kb_creds_profile_path(const char *env_value, const char *home, const char *file, char *out,
                          size_t outlen);

/* ---- creds_process.c: credential_process ---- */

struct kb_creds_process;

/* Runs command through "/bin/sh -c" in a process group of its own, with no stdin, collecting at
 * most KB_CREDS_MAX_DOC bytes of stdout (in guarded memory, wiped) and the start of stderr. After
 * timeout_ms the whole group is killed. cb runs exactly once, later, with the credentials
 * (source "process") or a reason: the exit code and the first line of stderr, never stdout.
 * Returns 0 or a negative code (cb will not run). *out is valid until cb runs. */
int kb_creds_process_start(uv_loop_t *loop, const char *command, long timeout_ms,
                           kb_creds_done_cb cb, void *ctx, struct kb_creds_process **out);

/* Kills the process group; cb still runs, later, with KB_ECANCELED. */
void kb_creds_process_cancel(struct kb_creds_process *p);

/* ---- creds_remote.c: container and EC2 instance metadata endpoints, through kb_http ---- */

/* Checks AWS_CONTAINER_CREDENTIALS_FULL_URI: https to any host, or http to a loopback host
 * (127.0.0.0/8, localhost, [::1]) or the ECS/EKS agents (169.254.170.2, 169.254.170.23,
 * [fd00:ec2::23]). Returns true when allowed; otherwise false with a reason in why. Pure. */
bool kb_creds_container_uri_allowed(const char *uri, char *why, size_t whylen);

/* What a container fetch needs. Borrowed for the duration of kb_creds_container_fetch. */
struct kb_creds_container_cfg {
    const char *url;              /* already checked */
    struct kb_secret *auth_token; /* AWS_CONTAINER_AUTHORIZATION_TOKEN, NULL: none */
    const char *auth_token_file;  /* AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (wins), NULL */
    long timeout_ms;
};

/* The EC2 metadata service of one chain: its endpoint and a session token reused until shortly
 * before it expires. Owned by the chain, which zero-initialises it and cleans it up. */
struct kb_creds_imds {
    char endpoint[256]; /* "http://169.254.169.254", no trailing slash */
    long timeout_ms;    /* per request */
    struct kb_secret *token;
    time_t token_expiry;
};
void kb_creds_imds_cleanup(struct kb_creds_imds *imds);

struct kb_creds_fetch;

/* GET cfg->url with the Authorization token (read now from the file, if any). cb runs exactly
 * once, later (source "container"). Returns 0 or a negative code (cb will not run, why says
 * why). *out is valid until cb runs. */
int kb_creds_container_fetch(struct kb_http *http, const struct kb_creds_container_cfg *cfg,
                             kb_creds_done_cb cb, void *ctx, struct kb_creds_fetch **out, char *why,
                             size_t whylen);

/* IMDSv2: PUT /latest/api/token (unless imds holds a fresh token), GET the role, GET its
 * credentials (source "imds"). imds is borrowed until cb runs. cb runs exactly once, later.
 * Returns 0 or a negative code (cb will not run). *out is valid until cb runs. */
int kb_creds_imds_fetch(struct kb_http *http, struct kb_creds_imds *imds, kb_creds_done_cb cb,
                        void *ctx, struct kb_creds_fetch **out);

/* Stops a fetch after the request in flight (kb_http cannot cancel one request): cb then runs
 * with KB_ECANCELED. */
void kb_creds_fetch_cancel(struct kb_creds_fetch *f);

#endif
