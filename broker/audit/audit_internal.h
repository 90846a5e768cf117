/*
 * audit_internal.h - the writer's private state, shared by writer.c (the loop's side: queue,
 * timers, the bus subscriber, admission) and writer_work.c (the threadpool's side: the file, the
 * chain, the state file), and anchor.c.
 *
 * Ownership: `struct kb_audit_chain` and `struct kb_audit_file` belong to whoever holds the
 * writer's one work - the threadpool while a work runs, the loop between works (kb_audit_open,
 * after_work). The loop reads the last written position only through `pos`, which after_work
 * copies from the chain.
 */
#ifndef KB_AUDIT_INTERNAL_H
#define KB_AUDIT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "audit/audit.h"
#include "audit/chain.h"
#include "audit/state.h"

struct kb_config_audit;
struct kb_events_sub;
struct kb_secret;

enum kb_audit__entry_kind {
    KB_AUDIT__RECORD, /* members[] holds the record from "ts" on */
    KB_AUDIT__SEAL,   /* close the current epoch */
    KB_AUDIT__LOST,   /* n records were dropped (backlog full) */
    KB_AUDIT__SYNC,   /* fsync after this batch (interval, anchoring) */
    KB_AUDIT__REOPEN, /* close the file and open the path again first (SIGHUP) */
    KB_AUDIT__STOP,   /* the "stop" record, the state file, close */
};

struct kb_audit__entry {
    struct kb_audit__entry *next;
    enum kb_audit__entry_kind kind;
    int64_t ts_ms;
    uint64_t n; /* LOST: how many */
    size_t len; /* RECORD: of members */
    char members[];
};

/* The chain as of the last line written (or about to be, inside a work). */
struct kb_audit__chain {
    enum kb_audit_mode mode;
    char chain_id[KB_AUDIT_CHAIN_ID_LEN + 1];
    char key_id[KB_AUDIT_KEY_ID_LEN + 1];
    uint64_t seq;
    uint64_t epoch;
    uint64_t epoch_records; /* records of this epoch so far */
    int64_t epoch_started_ms;
    uint8_t h[KB_AUDIT_HASH_LEN];
    uint8_t tag[KB_AUDIT_HASH_LEN]; /* of the last line (HMAC mode) */
    struct kb_secret *key;          /* K_epoch (HMAC mode) */
};

/* Where the last written line stands, as the loop sees it. */
struct kb_audit__pos {
    uint64_t seq;
    uint64_t epoch;
    uint8_t h[KB_AUDIT_HASH_LEN];
    uint8_t tag[KB_AUDIT_HASH_LEN];
};

struct kb_audit__file {
    int fd;                  /* -1: closed (the next work opens the path) */
    const char *open_reason; /* the audit_open record the next line needs; NULL when none */
    uint64_t cut_bytes;      /* for that record */
};

/* What one work did, for after_work. */
struct kb_audit__result {
    int err;          /* 0, or the first failure (negative errno) */
    const char *what; /* "open" | "write" | "fsync" | "read" ... for messages */
    int state_err;    /* the state file could not be rewritten (the log is fine) */
    bool synced;      /* the batch was fsync'd */
    uint64_t lines;   /* lines written, the writer's own included */
    /* NULL: the whole batch was written; else the last entry written (the rest waits). */
    struct kb_audit__entry *partial;
};

struct kb_audit {
    uv_loop_t *loop;
    const struct kb_config_audit *cfg; /* borrowed from the broker's config */
    struct kb_events *bus;
    struct kb_events_sub *sub;
    struct kb_aws_client *aws;

    /* the queue (loop) */
    struct kb_audit__entry *head, **tail;
    uint64_t queued;
    uint64_t lost_pending; /* dropped since the last audit_lost record */

    /* the one work */
    uv_work_t work;
    bool working;
    struct kb_audit__entry *batch; /* the entries the work writes */
    struct kb_audit__result res;
    struct kb_audit__chain chain; /* owned by the work while it runs */
    struct kb_audit__file file;   /* likewise */
    char *out;                    /* the work's line buffer (public text) */
    struct kb_audit_maker *maker; /* the work's hashing contexts (its key: K_epoch) */
    size_t out_cap;
    bool state_dirty; /* the state file must be rewritten (work side) */

    /* what the loop knows */
    struct kb_audit__pos pos;        /* last line written */
    struct kb_audit__pos synced_pos; /* last line known to be on disk */
    uint64_t written, lost, write_errors;
    bool failing;
    int last_error;
    const char *last_what;
    bool dirty;         /* lines written since the last fsync */
    bool state_failing; /* the last rewrite of the state file failed (logged once) */

    uv_timer_t seal_timer, sync_timer, retry_timer, flush_timer;
    bool retry_armed;
    bool flush_armed; /* a work starts when flush_timer fires */
    bool sync_queued; /* a SYNC entry waits: the interval timer adds no second one */
    bool closing;     /* kb_audit_close was called: the stop record is queued */
    bool finished;    /* the handles are closing: no work starts again */
    unsigned close_retries;
    unsigned handles_open;
    void (*close_done)(void *ctx);
    void *close_ctx;

    struct kb_audit__anchor *anchor; /* NULL without anchoring */
};

/* -- writer_work.c ------------------------------------------------------------------------------
 */

/* Runs the batch a->batch against the file and the chain (threadpool). Fills a->res. */
void kb_audit__work_run(struct kb_audit *a);

/* Opens the log and recovers where the chain stands from the state file and the log's last line
 * (loop, before the first work). Returns 0 or an error with why filled. */
int kb_audit__recover(struct kb_audit *a, char *why, size_t why_len);

/* Writes the state file from the chain, atomically (work side, or the loop with no work).
 * Returns 0 or a negative errno. */
int kb_audit__write_state(struct kb_audit *a);

/* Frees a list of entries. */
void kb_audit__free_entries(struct kb_audit__entry *e);

/* -- anchor.c -----------------------------------------------------------------------------------
 */

/* Starts anchoring when cfg->anchor.bucket is set. Returns 0 or KB_ENOMEM. */
int kb_audit__anchor_start(struct kb_audit *a);

/* Called after each work: sends an anchor when one is due and the synced position moved. */
void kb_audit__anchor_poke(struct kb_audit *a);

/* The seq of the last anchored record (0: none) and whether anchoring is on. */
uint64_t kb_audit__anchored(const struct kb_audit *a, bool *enabled);

/* Stops: closes the timer (one more handle to wait for: calls a's close path when closed) and
 * detaches from a call in flight. */
void kb_audit__anchor_stop(struct kb_audit *a);

/* Has the next batch fsync'd (queues a SYNC unless one waits). Returns false when there is
 * nothing to sync: every line written is on disk and nothing waits. */
bool kb_audit__sync(struct kb_audit *a);

/* Queues a record from the writer's own parts (anchor.c's outcomes). */
void kb_audit__queue(struct kb_audit *a, const struct kb_audit_record *r);

/* A handle of a's is closed (the writer frees itself once all are). */
void kb_audit__handle_closed(struct kb_audit *a);

#endif
