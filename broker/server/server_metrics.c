/*
 * server_metrics.c - the metrics op's answer: the server's counters, the tenants' states and the
 * AWS call count in the Prometheus text exposition format (version 0.0.4).
 *
 * Pure: the values are gathered by server_ops.c (kb_srv_metrics_text) and the unit tests call
 * kb_srv_metrics_format() directly. Labels carry op names, error codes and tenant states only -
 * never a tenant's secret, and never a value a peer sent.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_metrics.h"

struct s_text {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
};

__attribute__((format(printf, 2, 3))) static void s_printf(struct s_text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(t->data + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n + 1;
        char *grown = realloc(t->data, cap);

        if (grown == NULL) {
            t->failed = true;
            return;
        }
        t->data = grown;
        t->cap = cap;
    }
}

static void s_head(struct s_text *t, const char *name, const char *type, const char *help)
{
    s_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void s_requests(struct s_text *t, const struct kb_srv_metrics *m)
{
    s_head(t, "keybroker_requests_total", "counter",
           "Requests answered, by op and result (ok or the error code).");
    for (int op = 0; op < KB_PROTO_OP_COUNT; op++) {
        for (int r = 0; r <= KB_PROTO_EUNKNOWN; r++) {
            const char *name = kb_proto_op_name((enum kb_proto_op)op);

            if (m->requests[op][r] == 0)
                continue;
            s_printf(t, "keybroker_requests_total{op=\"%s\",result=\"%s\"} %" PRIu64 "\n",
                     name != NULL ? name : "invalid", kb_proto_err_name((enum kb_proto_err)r),
                     m->requests[op][r]);
        }
    }
}

static void s_follow(struct s_text *t, const struct kb_srv_gauges *g)
{
    s_head(
        t, "keybroker_followed_tenants", "gauge",
        "Tenants this broker follows (tenants[].rotate false): their rotator is another broker.");
    s_printf(t, "keybroker_followed_tenants %zu\n", g->followed);
    s_head(t, "keybroker_follow_polls_total", "counter",
           "ListSecrets passes over the followed tenants' secrets, by result.");
    s_printf(t, "keybroker_follow_polls_total{result=\"ok\"} %" PRIu64 "\n", g->follow_polls_ok);
    s_printf(t, "keybroker_follow_polls_total{result=\"error\"} %" PRIu64 "\n",
             g->follow_polls_error);
    s_head(t, "keybroker_follow_calls_total", "counter",
           "ListSecrets calls the follower made (one per page of 100 secrets).");
    s_printf(t, "keybroker_follow_calls_total %" PRIu64 "\n", g->follow_calls);
    s_head(t, "keybroker_follow_last_poll_seconds", "gauge",
           "How long the last complete pass took, from its first call to its end.");
    s_printf(t, "keybroker_follow_last_poll_seconds %.3f\n",
             (double)g->follow_last_poll_ms / 1000.0);
}

static void s_audit(struct s_text *t, const struct kb_srv_gauges *g)
{
    s_head(t, "keybroker_audit_records_total", "counter", "Audit records written since start.");
    s_printf(t, "keybroker_audit_records_total %" PRIu64 "\n", g->audit_written);
    s_head(t, "keybroker_audit_backlog", "gauge", "Audit records waiting to be written.");
    s_printf(t, "keybroker_audit_backlog %" PRIu64 "\n", g->audit_queued);
    s_head(t, "keybroker_audit_lost_total", "counter",
           "Audit records dropped because the backlog was full while writing failed.");
    s_printf(t, "keybroker_audit_lost_total %" PRIu64 "\n", g->audit_lost);
    s_head(t, "keybroker_audit_write_errors_total", "counter",
           "Writes or opens of the audit log that failed (each retried).");
    s_printf(t, "keybroker_audit_write_errors_total %" PRIu64 "\n", g->audit_write_errors);
    s_head(t, "keybroker_audit_failing", "gauge", "1 while the audit log cannot be written.");
    s_printf(t, "keybroker_audit_failing %d\n", g->audit_failing ? 1 : 0);
    s_head(t, "keybroker_audit_unanchored", "gauge",
           "Audit records written since the last anchor (0 without broker.audit.anchor).");
    s_printf(t, "keybroker_audit_unanchored %" PRIu64 "\n", g->audit_unanchored);
}

char *kb_srv_metrics_format(const struct kb_srv_metrics *m, const struct kb_srv_gauges *g)
{
    struct s_text t = {.data = malloc(4096), .cap = 4096};

    if (t.data == NULL)
        return NULL;
    s_head(&t, "keybroker_up", "gauge", "1 while keybrokerd serves its socket.");
    s_printf(&t, "keybroker_up 1\n");
    s_head(&t, "keybroker_uptime_seconds", "gauge", "Seconds since keybrokerd started.");
    s_printf(&t, "keybroker_uptime_seconds %" PRIu64 "\n", g->uptime_seconds);
    s_head(&t, "keybroker_connections", "gauge", "Client connections open now.");
    s_printf(&t, "keybroker_connections %zu\n", g->connections);
    s_head(&t, "keybroker_connections_total", "counter", "Client connections accepted.");
    s_printf(&t, "keybroker_connections_total %" PRIu64 "\n", m->accepted);
    s_head(&t, "keybroker_connections_rejected_total", "counter",
           "Connections refused with \"busy\", by the limit they were over (broker.limits).");
    s_printf(&t, "keybroker_connections_rejected_total{reason=\"max_connections\"} %" PRIu64 "\n",
             m->rejected);
    s_printf(&t,
             "keybroker_connections_rejected_total{reason=\"max_connections_per_uid\"} %" PRIu64
             "\n",
             m->rejected_uid);
    s_printf(&t,
             "keybroker_connections_rejected_total{reason=\"admin_reserved_connections\"} "
             "%" PRIu64 "\n",
             m->rejected_reserved);
    s_head(&t, "keybroker_disconnects_total", "counter",
           "Connections closed by the broker, by reason.");
    s_printf(&t, "keybroker_disconnects_total{reason=\"slow_reader\"} %" PRIu64 "\n", m->cut_slow);
    s_printf(&t, "keybroker_disconnects_total{reason=\"idle\"} %" PRIu64 "\n", m->cut_idle);
    s_printf(&t, "keybroker_disconnects_total{reason=\"request_timeout\"} %" PRIu64 "\n",
             m->cut_request);
    s_head(&t, "keybroker_watches", "gauge", "Connections with a watch subscription now.");
    s_printf(&t, "keybroker_watches %zu\n", g->watches);
    s_head(&t, "keybroker_watches_refused_total", "counter",
           "watch requests refused over broker.limits.max_watches_per_uid.");
    s_printf(&t, "keybroker_watches_refused_total %" PRIu64 "\n", m->watch_refused);
    s_head(&t, "keybroker_authz_denials_unlogged_total", "counter",
           "Denials over a uid's log budget: counted in a summary line, not logged one by one.");
    s_printf(&t, "keybroker_authz_denials_unlogged_total %" PRIu64 "\n", m->denials_unlogged);
    s_requests(&t, m);
    s_head(&t, "keybroker_authz_total", "counter", "Authorization decisions, by result.");
    s_printf(&t, "keybroker_authz_total{result=\"allow\"} %" PRIu64 "\n", m->authz_allow);
    s_printf(&t, "keybroker_authz_total{result=\"deny\"} %" PRIu64 "\n", m->authz_deny);
    s_head(&t, "keybroker_watch_events_total", "counter", "Events pushed to watchers.");
    s_printf(&t, "keybroker_watch_events_total %" PRIu64 "\n", m->events);
    s_head(&t, "keybroker_watch_replayed_total", "counter",
           "Events replayed to a watch resumed with since (also in keybroker_watch_events_total).");
    s_printf(&t, "keybroker_watch_replayed_total %" PRIu64 "\n", m->watch_replayed);
    s_head(&t, "keybroker_watch_resets_total", "counter",
           "Reset snapshots sent to a watch that could not be resumed from the event ring.");
    s_printf(&t, "keybroker_watch_resets_total %" PRIu64 "\n", m->watch_resets);
    s_head(&t, "keybroker_watch_withdrawn_total", "counter",
           "Watch subscriptions closed because access to a watched tenant was withdrawn.");
    s_printf(&t, "keybroker_watch_withdrawn_total %" PRIu64 "\n", m->watch_withdrawn);
    s_head(&t, "keybroker_tenants", "gauge", "Configured tenants, by state.");
    for (size_t i = 0; i < KB_SRV_TENANT_STATES; i++)
        s_printf(&t, "keybroker_tenants{state=\"%s\"} %zu\n", g->state_names[i], g->tenants[i]);
    if (g->has_aws_calls) {
        s_head(&t, "keybroker_aws_calls_total", "counter",
               "HTTP requests to AWS completed (retries count each attempt).");
        s_printf(&t, "keybroker_aws_calls_total %" PRIu64 "\n", g->aws_calls);
    }
    if (g->has_follow)
        s_follow(&t, g);
    if (g->has_audit)
        s_audit(&t, g);
    if (t.failed) {
        free(t.data);
        return NULL;
    }
    return t.data;
}
