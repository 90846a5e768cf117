/*
 * server.h - keybrokerd's client socket: a Unix stream socket speaking protocol v1
 * (proto/PROTOCOL.md) on the broker's libuv loop.
 *
 * The server binds the configured path with the configured mode and group (refusing to start
 * when a live broker already answers there, replacing a stale socket file), or adopts the socket
 * systemd passes (LISTEN_FDS). For each connection it takes the peer's credentials from the
 * kernel at accept (SO_PEERCRED, SO_PEERGROUPS), frames request lines, parses them with the
 * codec, authorizes each one against the config's ACLs (every decision logged and counted), runs
 * the op on the provisioning engine and writes the answers back in request order. It enforces the
 * limits of broker.limits (connections, idle timeout, requests in flight per connection, requests
 * per second per uid) and bounds what a connection may hold: a 64 KiB line, 1 MiB of unsent
 * answers, a write pending for 10 s.
 *
 * It must never write a secret to a connection or a log: every op answers with metadata built by
 * the codec's response formatters, which have no field that could carry key material.
 */
#ifndef KB_SERVER_H
#define KB_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "proto/codec.h"
#include "config/config.h"

struct kb_aws_client;
struct kb_engine;
struct kb_events;
struct kb_server;

/* Limits that are not in the config (tests shorten them). Zero means the default. */
#define KB_SERVER_MAX_QUEUED   (1024u * 1024u) /* bytes of unsent answers per connection */
#define KB_SERVER_WRITE_STALL  10000u          /* ms a write may stay pending */
#define KB_SERVER_MAX_REJECTED 64 /* "too many connections" answers being written at once */

/* The audit log's figures as the metrics op prints them (the broker fills them from
 * kb_audit_stats; the server knows nothing else of the audit log). */
struct kb_server_audit_stats {
    uint64_t written;      /* records written since start */
    uint64_t queued;       /* records waiting to be written */
    uint64_t lost;         /* records dropped (backlog full) since start */
    uint64_t write_errors; /* failed writes or opens since start */
    uint64_t unanchored;   /* records written since the last anchor (0 without anchoring) */
    bool failing;          /* the last write or open failed */
};

struct kb_server_options {
    const struct kb_config *cfg; /* borrowed for the server's lifetime */
    struct kb_engine *engine;    /* borrowed for the server's lifetime; NULL answers not_ready */
    struct kb_aws_client *aws;   /* borrowed; for the AWS call count in metrics; may be NULL */
    struct kb_events *events;    /* borrowed for the server's lifetime; may be NULL: the server
                                    subscribes watchers to provisioned, revoked and the rotation
                                    kinds and emits an "authz" event for every decision */
    const char *region;          /* the tenants' region for get; copied; NULL: "" */
    const char *socket_path;     /* NULL: cfg->broker.socket.path; copied */
    const char *version;         /* keybrokerd's version for status; copied; NULL: "0" */
    bool use_listen_fds;         /* adopt fd 3 when LISTEN_FDS/LISTEN_PID name this process */
    /* Optional: asked before every request whether it may run (the audit log's fail_closed and
     * anchor.required); change is true for provision, rotate and revoke. Returns 0, or non-zero
     * with a sentence in why: the request is answered "unavailable" with it (and the refusal
     * goes on the bus as a denied authz event). */
    int (*admit)(void *ctx, bool change, char *why, size_t why_len);
    void *admit_ctx;
    /* Optional: the audit log's figures for the metrics op (admit_ctx is passed). */
    void (*audit_stats)(void *ctx, struct kb_server_audit_stats *out);
    size_t max_queued;       /* 0: KB_SERVER_MAX_QUEUED */
    unsigned write_stall_ms; /* 0: KB_SERVER_WRITE_STALL */
};

/* Creates a server on loop (nothing is bound yet). Returns 0 and *out (close it with
 * kb_server_close), KB_EINVAL, KB_ENOMEM. */
int kb_server_new(uv_loop_t *loop, const struct kb_server_options *opt, struct kb_server **out);

/*
 * Binds (or adopts) the socket and starts accepting. Returns 0; KB_EINVAL when another
 * keybrokerd answers on the path or the path exists and is not a socket; a UV_E* code from
 * socket/bind/listen/chown/chmod. On failure errbuf (errlen bytes) says what happened in one
 * sentence, and the server can only be closed.
 */
int kb_server_listen(struct kb_server *s, char *errbuf, size_t errlen);

/* The path the server listens on. Borrowed for the server's lifetime. */
const char *kb_server_path(const struct kb_server *s);

/* Gives ev the next seq of this start's epoch (ev->epoch and ev->seq are ignored), keeps its line
 * in the watch ring (broker.limits.watch_ring_events) and pushes it to every connection watching
 * ev->tenant that may see it, after ending the subscriptions whose peer lost access to a watched
 * tenant (server_watch.c). ev is borrowed for the call. */
void kb_server_publish(struct kb_server *s, const struct kb_proto_event *ev);

typedef void (*kb_server_closed_cb)(void *ctx);

/*
 * Stops accepting, removes the socket file it created (not an inherited one), closes every
 * connection (answers not yet written are dropped), abandons the provisions and revokes it asked
 * the engine for, and frees s once every handle is closed; then calls closed(ctx) (may be NULL).
 * Destroy the engine first (kb_engine_destroy: no engine callback runs after it), since the
 * contexts of those operations are freed here.
 */
void kb_server_close(struct kb_server *s, kb_server_closed_cb closed, void *ctx);

#endif
