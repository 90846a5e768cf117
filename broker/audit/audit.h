/*
 * audit.h - the audit log writer: an event-bus subscriber that turns every decision and every AWS
 * step into one chained, tagged line (chain.h) and writes it off the loop.
 *
 * The loop only builds a record's members (record.h) and queues them; numbering, chaining,
 * tagging, writing, fsync and the state file all happen in one libuv threadpool work at a time,
 * which owns the chain while it runs. So the loop never blocks on the disk, records reach the
 * file in the order they were made, and the line that reaches the file is exactly the one that
 * was chained: a write that fails is undone (the file cut back to where the batch began) and the
 * whole batch retried, with the chain as it was.
 *
 * Epochs: a timer queues a "seal" every broker.audit.epoch; the work that writes it tags it with
 * K_e, derives K_e+1, wipes K_e and - once the seal is on disk (fsync) - rewrites the state file
 * with K_e+1. A crash between the two leaves the state one epoch behind, and the next start
 * derives forward from it to the log's last epoch; never the other way.
 *
 * Failure: a write or open that fails marks the writer failing and retries every second
 * (reopening the path); records keep queueing up to broker.audit.max_backlog, then are counted
 * and reported in one "audit_lost" record when writing works again. With fail_closed,
 * kb_audit_admit() refuses requests and jobs meanwhile. This module must never take, hold or
 * write key material other than its own epoch key, which lives in guarded memory and in the
 * 0600 state file only.
 */
#ifndef KB_AUDIT_H
#define KB_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "audit/record.h"

struct kb_audit;
struct kb_aws_client;
struct kb_config_audit;
struct kb_events;

/*
 * Opens the audit log as cfg says (cfg->path non-NULL), synchronously, before the broker serves:
 * reads the state file (refused unless a regular file owned by this euid and not readable by
 * group or others; in hmac-sha256 mode it must exist), opens the log (created 0600), cuts a
 * partial last line left by a crash (counted in the first record), continues the chain from the
 * newer of the state and the log's last line, queues an "audit_open" record and subscribes to
 * bus. aws (may be NULL without anchoring) is borrowed until kb_audit_close's callback.
 * Returns 0 and *out, or an error with a sentence naming the file and the cause in why.
 */
int kb_audit_open(uv_loop_t *loop, const struct kb_config_audit *cfg, struct kb_events *bus,
                  struct kb_aws_client *aws, struct kb_audit **out, char *why, size_t why_len);

/* Queues one record the broker makes itself ("start", "stop", "reload"); r is copied. Never
 * fails: a record that cannot be queued is counted as lost. */
void kb_audit_record(struct kb_audit *a, const struct kb_audit_record *r);

/* SIGHUP: the file is closed and the path opened again before the next record (logrotate has
 * renamed it); the new file begins with an "audit_open" record continuing the chain. */
void kb_audit_reopen(struct kb_audit *a);

enum kb_audit_gate {
    KB_AUDIT_GATE_REQUEST, /* a socket request (every request is a decision to record) */
    KB_AUDIT_GATE_CHANGE,  /* provision, rotate, revoke: a request or a background job */
};

/* Whether work of this kind may go ahead now. Returns 0, or KB_EDENIED with the reason in why
 * (fail_closed and the log cannot be written; for CHANGE also anchor.required and more than
 * max_unanchored records wait). a may be NULL (no audit log: always 0). */
int kb_audit_admit(const struct kb_audit *a, enum kb_audit_gate gate, char *why, size_t why_len);

struct kb_audit_stats {
    uint64_t queued;     /* records waiting to be written */
    uint64_t written;    /* records written since start */
    uint64_t lost;       /* records dropped (backlog full) since start */
    uint64_t last_seq;   /* of the last record written */
    uint64_t epoch;      /* of the last record written */
    uint64_t anchored;   /* seq of the last anchored record; 0 = none */
    uint64_t unanchored; /* records written after the last anchor */
    uint64_t write_errors;
    bool failing;   /* the last write or open failed */
    int last_error; /* its code (negative errno), 0 when none */
};

void kb_audit_stats(const struct kb_audit *a, struct kb_audit_stats *out);

/* Queues a "stop" record, writes everything queued, the state file, and closes the file; then
 * calls done(ctx) on the loop and frees a. The bus subscription ends at once. */
void kb_audit_close(struct kb_audit *a, void (*done)(void *ctx), void *ctx);

#endif
