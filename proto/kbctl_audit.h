/*
 * kbctl_audit.h - what kbctl's audit files share: kbctl_audit.c (the command line, help, `audit
 * init`), kbctl_audit_verify.c (`audit verify` and its report) and kbctl_audit_s3.c (reading the
 * anchor objects with the caller's own AWS identity). None of them talks to the broker.
 */
#ifndef KB_KBCTL_AUDIT_H
#define KB_KBCTL_AUDIT_H

#include <stdbool.h>
#include <stddef.h>

struct kb_audit_verify;

/* Exit codes of `kbctl audit` (its own: see kbctl_audit.c's help). */
enum {
    KBCTL_AUDIT_OK = 0,    /* intact (verify), done (init) */
    KBCTL_AUDIT_FOUND = 1, /* verify: tampering or an inconsistency */
    KBCTL_AUDIT_ERROR = 2, /* usage, I/O or AWS error */
};

struct kbctl_audit_opts {
    const char *state;   /* init --state */
    const char *key_out; /* init --key-out */
    const char *chain;   /* init --chain; NULL: hmac-sha256 */
    bool force;          /* init --force */
    const char *key;     /* verify --key */
    const char *anchors; /* verify --anchors s3://BUCKET/PREFIX */
    bool json;           /* verify --json */
    int timeout_ms;      /* each AWS call of --anchors */
};

/* `kbctl audit init`. Returns an exit code; messages printed. */
int kbctl_audit_init(const struct kbctl_audit_opts *o);

/* `kbctl audit verify FILE...` (files borrowed). Returns an exit code; the report printed. */
int kbctl_audit_verify(const struct kbctl_audit_opts *o, int nfiles, char **files);

/* Splits s3://BUCKET/PREFIX (PREFIX may be empty) into bucket (cap bytes) and *prefix (into uri).
 * Returns 0, or prints why and returns KBCTL_AUDIT_ERROR. */
int kbctl_audit_s3_uri(const char *uri, char *bucket, size_t cap, const char **prefix);

/*
 * Adds every object version under s3://bucket/prefix to v: ListObjectVersions (every page, delete
 * markers included), then GetObject of each version by its id. Runs a loop of its own with the
 * caller's AWS credentials, region and endpoint (the environment, or the profile named by
 * $KEYBROKER_AWS_PROFILE, as `kbctl credential-process`). Returns 0 and *count (the versions
 * added), or prints why and returns KBCTL_AUDIT_ERROR.
 */
int kbctl_audit_anchors(struct kb_audit_verify *v, const char *bucket, const char *prefix,
                        int timeout_ms, size_t *count);

#endif
