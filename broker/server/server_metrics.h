/*
 * server_metrics.h - the socket server's counters and their Prometheus text rendering.
 *
 * The counters are plain integers bumped on the loop; kb_srv_metrics_format() turns them and a
 * few gauges into text and is pure (no clock, no I/O), so the unit tests check its output. No
 * label may ever carry a value a peer sent or anything secret: labels are op names, error codes,
 * tenant states and fixed reasons.
 */
#ifndef KB_SERVER_METRICS_H
#define KB_SERVER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/codec.h"

/* Counters. requests[op][result]: result KB_PROTO_OK or an error code; op KB_PROTO_OP_NONE for
 * a line that was not a request. */
struct kb_srv_metrics {
    uint64_t requests[KB_PROTO_OP_COUNT][KB_PROTO_EUNKNOWN + 1];
    uint64_t authz_allow;
    uint64_t authz_deny;
    uint64_t accepted;
    uint64_t rejected;          /* over max_connections */
    uint64_t rejected_uid;      /* over max_connections_per_uid */
    uint64_t rejected_reserved; /* a non-admin over max_connections - admin_reserved_connections */
    uint64_t watch_refused;     /* watch requests over max_watches_per_uid */
    uint64_t cut_slow;          /* slow readers disconnected */
    uint64_t cut_idle;          /* idle timeouts */
    uint64_t cut_request;       /* request lines not completed within request_timeout */
    uint64_t denials_unlogged;  /* denials summarised instead of logged one by one */
    uint64_t events;            /* watch events written */
    uint64_t watch_replayed;    /* of them, events replayed to a resuming watch (since) */
    uint64_t watch_resets;      /* reset snapshots sent instead of a replay */
    uint64_t watch_withdrawn;   /* subscriptions closed: access to a watched tenant withdrawn */
};

#define KB_SRV_TENANT_STATES 7 /* enum kb_tenant_state (engine.h) */

/* Values read when the text is built. state_names are borrowed static strings. */
struct kb_srv_gauges {
    uint64_t uptime_seconds;
    size_t connections;
    size_t watches; /* connections with a watch subscription */
    const char *state_names[KB_SRV_TENANT_STATES];
    size_t tenants[KB_SRV_TENANT_STATES];
    bool has_aws_calls;
    uint64_t aws_calls;
    /* The follower of the tenants this broker does not rotate (engine.h,
     * kb_engine_follow_stats); printed when has_follow. */
    bool has_follow;
    size_t followed;
    uint64_t follow_polls_ok, follow_polls_error, follow_calls;
    uint64_t follow_last_poll_ms;
    /* The audit log (broker.audit); printed when has_audit. */
    bool has_audit;
    uint64_t audit_written, audit_queued, audit_lost, audit_write_errors, audit_unanchored;
    bool audit_failing;
};

/* The text (malloc'd, NUL-terminated; caller frees), or NULL when out of memory. */
char *kb_srv_metrics_format(const struct kb_srv_metrics *m, const struct kb_srv_gauges *g);

#endif
