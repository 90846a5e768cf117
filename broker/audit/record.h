/*
 * record.h - one audit record's body: the JSON object chain.h links and tags.
 *
 * A record says what was decided or done, by whom and with which result - never how: the
 * builder takes names, ids, states and messages as plain strings and numbers, and has no way to
 * take a struct kb_secret (DESIGN.md I2: no key material in an audit record). Pure: no I/O, no
 * clock (the caller gives the time).
 *
 * Members, in this order, each only when set:
 *   "seq", "epoch", "ts" (RFC 3339 UTC with milliseconds), "event",
 *   "tenant", "op", "step", "result", "arn", "version_id", "error",
 *   "peer": {"uid", "gid", "pid"},
 *   "aws": {"service", "operation", "request_id", "code"},
 *   then the writer's own fields (chain.h: "chain", "prev_h", "records", ...) in the given order.
 */
#ifndef KB_AUDIT_RECORD_H
#define KB_AUDIT_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct kb_audit_peer {
    uid_t uid;
    gid_t gid;
    pid_t pid;
};

struct kb_audit_aws {
    const char *service;    /* "iam" | "s3" | "secretsmanager" | "sts"; NULL: no "aws" member */
    const char *operation;  /* "CreateAccessKey" */
    const char *request_id; /* NULL or "" when AWS gave none */
    const char *code;       /* the error code of a failed call; NULL or "" when it succeeded */
};

/* One extra member: a string (str non-NULL) or an integer. */
struct kb_audit_field {
    const char *key;
    const char *str;
    int64_t num;
};

/* Every pointer is borrowed for the call; NULL (and "" for the optional strings) leaves the
 * member out. */
struct kb_audit_record {
    const char *event; /* required: "authz", "step", "aws", "rotated", "seal", ... */
    const char *tenant;
    const char *op;
    const char *step;
    const char *result;
    const char *arn;
    const char *version_id;
    const char *error;
    const struct kb_audit_peer *peer;
    struct kb_audit_aws aws;
    const struct kb_audit_field *fields;
    size_t nfields;
};

/* Writes the body of r as record seq of epoch at ts_ms (ms since the Unix epoch, UTC) into
 * out[0..cap), without a NUL or newline; *len receives its length. Returns 0, KB_EINVAL (no
 * event), KB_ETOOBIG (it does not fit in cap) or KB_ENOMEM. The body is the prefix followed by the
 * members, the two halves below. */
int kb_audit_record_body(const struct kb_audit_record *r, uint64_t seq, uint64_t epoch,
                         int64_t ts_ms, char *out, size_t cap, size_t *len);

/* The members of r from "ts" on, and the closing "}": the body without its opening
 * {"seq":N,"epoch":E, (the writer numbers records when it writes them, off the loop). Same
 * returns as kb_audit_record_body. */
int kb_audit_record_members(const struct kb_audit_record *r, int64_t ts_ms, char *out, size_t cap,
                            size_t *len);

/* Writes {"seq":N,"epoch":E, into out[0..cap) (NUL-terminated). Returns its length or
 * KB_ETOOBIG. */
int kb_audit_record_prefix(uint64_t seq, uint64_t epoch, char *out, size_t cap);

/* Formats ts_ms as "2026-12-04T03:28:01.123Z" into out (25 bytes with the NUL). */
void kb_audit_format_ts(int64_t ts_ms, char out[25]);

#endif
