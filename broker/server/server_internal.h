/*
 * server_internal.h - what the server's files share: the server and connection structs, the
 * in-order output of a connection, and the hooks between the listener (server.c), a connection
 * (server_conn.c), the ops (server_ops.c) and the metrics (server_metrics.c).
 *
 * Private to broker/server*.c. Nothing declared here may carry a secret.
 */
#ifndef KB_SERVER_INTERNAL_H
#define KB_SERVER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <uv.h>

#include "proto/codec.h"
#include "config/config.h"
#include "common/log.h"
#include "server/server.h"
#include "server/server_authz.h"
#include "server/server_limits.h"
#include "server/server_metrics.h"
#include "server/server_ring.h"

#define KB_SRV_READ_SIZE 65536 /* the loop-wide read buffer */
#define KB_SRV_SWEEP_MS  250   /* how often idle and stalled connections are looked for */
/* Denial log lines per second (and burst) one uid may cause; the rest are summarised. */
#define KB_SRV_DENY_LOG_RATE  10
#define KB_SRV_DENY_LOG_BURST 20

/* A growable byte buffer of answer lines. */
struct kb_srv_buf {
    char *data;
    size_t len;
    size_t cap;
};

/* What one uid holds and may still do, shared by its connections (reconnecting refills
 * nothing): the request token bucket, its connection and watch counts (broker.limits), and the
 * budget of its denial log lines (a denied uid cannot flood the log: the lines over budget are
 * counted and summarised once a second). */
struct kb_srv_rate {
    struct kb_srv_rate *next;
    uint32_t uid;
    unsigned refs;    /* connections holding it (= the uid's connections being served) */
    unsigned watches; /* of them, those with a watch subscription */
    struct kb_server_bucket bucket;
    struct kb_server_bucket deny_log;
    uint64_t denials_unlogged; /* denials over the log budget since the last summary */
    uint64_t denials_summarised_ms;
};

struct kb_srv_conn;
struct kb_srv_job;
struct kb_srv_lookup;
struct kb_tenant_status;

/* A tenant's get answer after its id, formatted once per status (server_cache.c). */
struct kb_srv_get_cache {
    char *tail; /* the codec's line after `{"v":1,"id":null`; NULL: not built */
    size_t tail_len;
    int state; /* the status fields the answer shows */
    time_t last_rotation;
    const char *arn; /* the ARN it was built from: in the tail's block, after the tail */
    char version_id[64];
};

/* One answer slot, in request order, for an op that may finish later (or an answer queued behind
 * one). Lines appended to a slot wait until every earlier slot is done. */
struct kb_srv_slot {
    struct kb_srv_slot *next;
    struct kb_srv_conn *conn;
    struct kb_srv_buf buf;
    size_t nreq; /* requests answered in buf (counted in the connection's inflight) */
    bool done;
};

/* Repeated allows of one (op, tenant) on a connection, folded into one log line per second. */
#define KB_SRV_FOLDS 4
struct kb_srv_fold {
    enum kb_proto_op op; /* KB_PROTO_OP_NONE: free */
    char tenant[KB_PROTO_MAX_TENANT + 1];
    uint64_t pending; /* allows not logged yet */
};

struct kb_srv_conn {
    struct kb_srv_conn *prev, *next; /* the server's list */
    struct kb_server *srv;
    uv_pipe_t pipe;
    struct kb_server_peer peer;
    uint32_t *groups;             /* peer.groups points here; owned */
    struct kb_srv_lookup *lookup; /* the group lookup in the threadpool; NULL: none */
    struct kb_srv_rate *rate;
    struct kb_server_framer framer;
    struct kb_srv_buf out;     /* answers ready to write, in order */
    struct kb_srv_slot *slots; /* answers held in order behind an unfinished op */
    struct kb_srv_slot *slots_last;
    size_t inflight; /* requests whose answers are not in out yet */
    size_t queued;   /* bytes: out + slots + writes not yet completed */
    size_t writes;   /* uv_write requests in flight */
    uint64_t last_activity_ms;
    uint64_t line_started_ms; /* when the unfinished request line's first byte came; 0: none */
    uint64_t stall_since_ms;  /* when the sweep first saw bytes stuck in libuv's queue; 0: none */
    unsigned refs;            /* the handle, the group lookup, one per unfinished engine op */
    bool closing;             /* the handle is closing or closed */
    bool drain_then_close;    /* close once everything queued is written */
    bool rejected;            /* over a connection limit: one error line, then close */
    bool admin;               /* the peer matches broker.admin (known once served) */
    struct kb_srv_fold folds[KB_SRV_FOLDS];
    uint64_t folds_flushed_ms;
    bool watching;
    bool watch_live;    /* the watch covers at least one tenant the peer may see: it may sit
                           idle; a watch of nothing is idle like any other connection */
    bool watch_all;     /* no names were given: every tenant the peer may see, including
                           ones it may see later; watch_names is what it saw at subscribe */
    char **watch_names; /* the tenants subscribed to (names, or the visible set); owned (one
                           block); a name no longer visible ends the subscription */
    size_t watch_count;
    struct kb_srv_ack *acks; /* the version acknowledged per tenant (server_ack.c); owned */
    size_t nacks;
};

/* What a subscriber acknowledged for one tenant (the ack op). */
struct kb_srv_ack {
    const struct kb_tenant *tenant; /* in the server's config */
    char version[KB_PROTO_MAX_VERSION + 1];
};

struct kb_server {
    uv_loop_t *loop;
    const struct kb_config *cfg;
    struct kb_engine *engine;
    struct kb_aws_client *aws;
    char *path;
    char *version;
    char *region;
    size_t max_queued;
    unsigned write_stall_ms;
    bool use_listen_fds;
    uv_pipe_t listener;
    bool listener_open; /* uv_pipe_init done: the handle needs closing */
    bool inherited;     /* the socket came from systemd: do not unlink it */
    bool bound;         /* we created the socket file */
    dev_t bound_dev;
    ino_t bound_ino;
    uv_timer_t sweep;
    bool sweep_open;
    struct kb_srv_conn *conns; /* accepted, serving */
    size_t nconns;
    size_t nrejecting;
    size_t nwatches; /* connections watching */
    struct kb_srv_rate *rates;
    struct kb_srv_get_cache *get_cache; /* one per configured tenant */
    struct kb_srv_job *jobs;            /* provisions and revokes the engine runs for clients */
    struct kb_events *events;           /* borrowed; NULL: no watch events, no authz events */
    int (*admit)(void *ctx, bool change, char *why, size_t why_len);   /* NULL: all admitted */
    void (*audit_stats)(void *ctx, struct kb_server_audit_stats *out); /* NULL: no audit log */
    void *admit_ctx;
    struct kb_events_sub *watch_sub; /* server_watch.c's subscription */
    struct kb_srv_ring ring;         /* recent watch events, this start's epoch */
    struct kb_srv_metrics metrics;
    uint64_t started_ms;
    time_t started;
    char readbuf[KB_SRV_READ_SIZE];
    bool closing;
    unsigned pending; /* handles and connections not yet released */
    kb_server_closed_cb closed_cb;
    void *closed_ctx;
};

/* -- server_watch.c ---------------------------------------------------------------------------- */

/* Makes the event ring (broker.limits.watch_ring_events, a fresh epoch) and subscribes the
 * watch fan-out to s->events (provisioned, revoked and the rotation kinds; no subscription
 * without a bus). Returns 0 or KB_ENOMEM. */
int kb_srv_watch_subscribe(struct kb_server *s);
/* Ends it and frees the ring (at close). */
void kb_srv_watch_unsubscribe(struct kb_server *s);

/* The watch op, authorized: subscribes c, answers with the names and the stream's position,
 * then replays from req's since or sends a reset snapshot. Takes req's name block. */
void kb_srv_watch_op(struct kb_srv_conn *c, struct kb_proto_request *req);

/* Ends every subscription whose peer may no longer see a tenant it watches (a closed line, then
 * the connection closes). Each delivery checks this too; call it when the ACLs change. */
void kb_srv_watch_recheck(struct kb_server *s);

/* Whether c is subscribed (watching, not closing) to events of tenant and may see it. */
bool kb_srv_watch_covers(const struct kb_srv_conn *c, const char *tenant);

/* -- server_ack.c ------------------------------------------------------------------------------ */

/* The ack op, authorized: records the version c's peer uses, answers, and tells the engine when
 * every subscriber of the tenant acknowledged its AWSCURRENT version. */
void kb_srv_ack_op(struct kb_srv_conn *c, const struct kb_proto_request *req);

/* The subscribers of t (return value) and those whose last ack is not version: *nwaiting of
 * them, the first cap written to waiting (strings borrowed until control returns to the loop;
 * waiting may be NULL when cap is 0). */
size_t kb_srv_ack_waiting(struct kb_server *s, const struct kb_tenant *t, const char *version,
                          struct kb_proto_waiting_peer *waiting, size_t cap, size_t *nwaiting);

/* -- server.c ---------------------------------------------------------------------------------- */

/* A connection (or the listener/sweep handle) is gone: when the server is closing and nothing is
 * left, the server is freed. */
void kb_srv_release(struct kb_server *s);

/* -- server_conn.c ----------------------------------------------------------------------------- */

/* Accepts one connection from the listener (max_connections enforced here). */
void kb_srv_conn_accept(struct kb_server *s);

/* Closes c (answers not yet written are dropped); why is logged when not NULL. */
void kb_srv_conn_close(struct kb_srv_conn *c, const char *why);

/* The sweep: idle timeouts and stalled writes. now_ms is uv_now(). */
void kb_srv_conn_sweep(struct kb_srv_conn *c, uint64_t now_ms);

/* A complete answer (takes line, malloc'd by the codec, len bytes with its '\n'), after every
 * answer before it. NULL line (out of memory formatting it): an internal error is sent. */
void kb_srv_reply(struct kb_srv_conn *c, char *line, size_t len);

/* An error answer for request id (JSON text; NULL: null), counted for op. */
/* A formatted success answer of op, counted: rc 0 sends line (taken), else frees it and answers
 * internal. */
void kb_srv_reply_ok(struct kb_srv_conn *c, enum kb_proto_op op, int rc, char *line, size_t len,
                     const char *id);
void kb_srv_reply_error(struct kb_srv_conn *c, enum kb_proto_op op, const char *id,
                        enum kb_proto_err code, const char *message);

/* Opens a slot for an op that answers later; the connection stays alive (and its idle timer
 * stopped) until kb_srv_slot_finish. Returns NULL when out of memory. */
struct kb_srv_slot *kb_srv_slot_open(struct kb_srv_conn *c);

/* Appends an intermediate line (progress) to the slot; takes line. */
void kb_srv_slot_append(struct kb_srv_slot *slot, char *line, size_t len);

/* The slot's final line (takes line; NULL: internal error) and the slot is done. The slot is
 * freed: do not use it after. Safe after the connection was closed (the line is dropped). */
void kb_srv_slot_finish(struct kb_srv_slot *slot, char *line, size_t len);

/* An event line pushed to a watching connection (takes line). */
void kb_srv_push(struct kb_srv_conn *c, char *line, size_t len);

/* Writes what is ready (called after each batch of lines and by async completions). */
void kb_srv_flush(struct kb_srv_conn *c);

/* -- server_cache.c ---------------------------------------------------------------------------- */

/* The get answer for id (the parser's id text; NULL: null) from the tenant's cache entry g,
 * rebuilt first when st changed; falls back to kb_proto_format_get when the codec's line cannot
 * be spliced. Returns 0 and *out (caller frees), KB_EINVAL, KB_ENOMEM. */
int kb_srv_get_line(struct kb_srv_get_cache *g, const struct kb_proto_tenant_info *info,
                    const struct kb_tenant_status *st, const char *id, char **out, size_t *len);

/* Frees count entries and the array. NULL is fine. */
void kb_srv_get_cache_free(struct kb_srv_get_cache *g, size_t count);

/* The splice itself. kb_srv_splice_tail: the part of a line formatted with a null id after the
 * id (KB_EINVAL when the line does not start with {"v":1,"id":null,). kb_srv_splice_id: that
 * tail with id put back; id must be the id text kb_proto_parse_request wrote (copied as is). Both
 * return 0 and a malloc'd result (caller frees), or a negative code. */
int kb_srv_splice_tail(const char *line, size_t len, char **tail, size_t *tail_len);
int kb_srv_splice_id(const char *tail, size_t tail_len, const char *id, char **out, size_t *len);

/* -- server_log.c ------------------------------------------------------------------------------ */

/* A connection event (why may be NULL). */
void kb_srv_log_peer(enum kb_log_level level, const char *event, const struct kb_srv_conn *c,
                     const char *why);

/* An authorization decision: denials and admin ops at once, repeated read allows folded. */
void kb_srv_log_authz(struct kb_srv_conn *c, const struct kb_proto_request *req, bool allow);
/* Warns that the peer of c asked to adopt tenant's bucket (kbctl adopt). */
void kb_srv_log_adopt(const struct kb_srv_conn *c, const char *tenant);

/* Logs the folded allows of c when a second has passed since the last time (or force). */
void kb_srv_log_flush(struct kb_srv_conn *c, uint64_t now_ms, bool force);

/* The summary line of r's denials that were over its log budget, when a second has passed since
 * the last one (or force). */
void kb_srv_log_denials(struct kb_srv_rate *r, uint64_t now_ms, bool force);

/* -- server_ops.c ------------------------------------------------------------------------------ */

/* Authorizes (logs and counts the decision) and runs one parsed request. Takes ownership of what
 * req holds (the caller must not clean it up). */
void kb_srv_ops_dispatch(struct kb_srv_conn *c, struct kb_proto_request *req);

/* At shutdown, after the engine was destroyed (it never calls back after that): releases every
 * job still waiting for the engine, with its slot and its hold on the connection. */
void kb_srv_jobs_abandon(struct kb_server *s);

/* Counts one answered request. */
void kb_srv_count(struct kb_server *s, enum kb_proto_op op, enum kb_proto_err result);

/* The metrics op's Prometheus text (malloc'd; caller frees), or NULL when out of memory. */
char *kb_srv_metrics_text(struct kb_server *s);

#endif
