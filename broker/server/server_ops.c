/*
 * server_ops.c - the ops of protocol v1 on the provisioning engine: authorization (logged and
 * counted for every request), then get, list, status, provision, rotate, revoke, watch, metrics.
 *
 * get/list/status answer at once from kb_engine_tenant_status; provision, rotate and revoke hold
 * an answer slot, stream the engine's step events as progress lines, answer when the engine calls
 * back ("provisioned"/"revoked" reach watchers through the event bus: server_watch.c). Unknown and
 * not-permitted tenants get the same "forbidden" answer. This file must never put anything in an
 * answer but what the codec's response structs carry (names, ARNs, ids, states, messages) - never
 * key material.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "events/events.h"
#include "common/err.h"
#include "common/log.h"
#include "server/server_internal.h"

#define S_FORBIDDEN_MSG "not permitted (or no such tenant)"

void kb_srv_count(struct kb_server *s, enum kb_proto_op op, enum kb_proto_err result)
{
    if ((unsigned)op >= KB_PROTO_OP_COUNT)
        op = KB_PROTO_OP_NONE;
    if ((unsigned)result > KB_PROTO_EUNKNOWN)
        result = KB_PROTO_EINTERNAL;
    s->metrics.requests[op][result]++;
}

void kb_srv_reply_ok(struct kb_srv_conn *c, enum kb_proto_op op, int rc, char *line, size_t len,
                     const char *id)
{
    if (rc != 0) {
        free(line);
        kb_srv_reply_error(c, op, id, KB_PROTO_EINTERNAL, NULL);
        return;
    }
    kb_srv_count(c->srv, op, KB_PROTO_OK);
    kb_srv_reply(c, line, len);
}

/* -- authorization ----------------------------------------------------------------------------- */

/* Every decision goes on the bus with the peer (the audit log records it); why, for a refusal
 * that has one, in message. */
static void s_emit_authz(struct kb_srv_conn *c, const struct kb_proto_request *req, bool allow,
                         const char *why)
{
    struct kb_event_peer peer = {c->peer.uid, c->peer.gid, c->peer.pid};
    struct kb_event ev = {
        .kind = KB_EVENT_AUTHZ,
        .tenant = req->has_tenant ? req->tenant : NULL,
        .op = req->adopt_bucket ? "adopt" : kb_proto_op_name(req->op),
        .result = allow ? "allow" : "deny",
        .message = why,
        .peer = &peer,
    };

    kb_events_emit(c->srv->events, &ev);
}

static bool s_authorize(struct kb_srv_conn *c, const struct kb_proto_request *req)
{
    bool allow = kb_server_authz_request(c->srv->cfg, req, &c->peer);

    if (allow)
        c->srv->metrics.authz_allow++;
    else
        c->srv->metrics.authz_deny++;
    kb_srv_log_authz(c, req, allow);
    s_emit_authz(c, req, allow, NULL);
    return allow;
}

/* Whether the broker may do this request now (the audit log can record it; for a change, its
 * anchors are recent enough). A refusal is answered "unavailable" with the reason. */
static bool s_admitted(struct kb_srv_conn *c, const struct kb_proto_request *req)
{
    struct kb_server *s = c->srv;
    bool change = req->op == KB_PROTO_OP_PROVISION || req->op == KB_PROTO_OP_ROTATE ||
                  req->op == KB_PROTO_OP_REVOKE;
    char why[KB_PROTO_MSG_SIZE];

    /* metrics is never refused: monitoring must see the audit log failing (it is still
     * authorized, and its decision queued for the log like any other). */
    if (s->admit == NULL || req->op == KB_PROTO_OP_METRICS ||
        s->admit(s->admit_ctx, change, why, sizeof(why)) == 0)
        return true;
    c->srv->metrics.authz_deny++;
    kb_log(KB_LOG_WARN, "refused", "op", kb_proto_op_name(req->op), "tenant",
           req->has_tenant ? req->tenant : NULL, "reason", why, NULL);
    s_emit_authz(c, req, false, why);
    kb_srv_reply_error(c, req->op, req->id, KB_PROTO_EUNAVAILABLE, why);
    return false;
}

/* -- get, list, status ------------------------------------------------------------------------- */

static bool s_servable(const struct kb_tenant_status *st)
{
    /* A re-provision does not take the current key away, nor does a failed one (degraded):
     * keep serving its ARN meanwhile. */
    return st->secret_arn[0] != '\0' && st->version_id[0] != '\0' &&
           (st->state == KB_TENANT_READY || st->state == KB_TENANT_PROVISIONING ||
            st->state == KB_TENANT_DEGRADED);
}

/* The state of t as the engine knows it ("pending" without an engine). Borrowed until control
 * returns to the loop. */
static const struct kb_tenant_status *s_state(const struct kb_server *s, const struct kb_tenant *t)
{
    static const struct kb_tenant_status pending = {.state = KB_TENANT_PENDING};

    return s->engine != NULL ? kb_engine_status_of(s->engine, t) : &pending;
}

static void s_get(struct kb_srv_conn *c, const struct kb_proto_request *req)
{
    struct kb_server *s = c->srv;
    const struct kb_tenant *t = kb_config_tenant(s->cfg, req->tenant);
    const struct kb_tenant_status *st;
    struct kb_proto_tenant_info info;
    char msg[KB_PROTO_MSG_SIZE];
    char *line = NULL;
    size_t len = 0;
    int rc;

    if (s->engine == NULL || t == NULL) {
        kb_srv_reply_error(c, req->op, req->id, KB_PROTO_ENOT_READY, NULL);
        return;
    }
    st = s_state(s, t);
    if (!s_servable(st)) {
        snprintf(msg, sizeof(msg), "tenant %s is %s%s%.300s", req->tenant,
                 kb_tenant_state_name(st->state), st->message[0] != '\0' ? ": " : "", st->message);
        kb_srv_reply_error(c, req->op, req->id, KB_PROTO_ENOT_READY, msg);
        return;
    }
    info = (struct kb_proto_tenant_info){
        .tenant = t->name,
        .arn = st->secret_arn,
        .bucket = t->bucket,
        .prefix = t->prefix,
        .region = s->region,
        .version_id = st->version_id,
        .last_rotation = st->last_rotation,
        .state = kb_tenant_state_name(st->state),
    };
    rc = kb_srv_get_line(&s->get_cache[t - s->cfg->tenants], &info, st, req->id, &line, &len);
    kb_srv_reply_ok(c, req->op, rc, line, len, req->id);
}

static void s_list(struct kb_srv_conn *c, const struct kb_proto_request *req)
{
    struct kb_server *s = c->srv;
    struct kb_proto_list_entry *e = calloc(s->cfg->ntenants + 1, sizeof(*e));
    size_t n = 0;
    char *line = NULL;
    size_t len = 0;
    int rc = e == NULL ? KB_ENOMEM : 0;

    for (size_t i = 0; rc == 0 && i < s->cfg->ntenants; i++) {
        const struct kb_tenant *t = &s->cfg->tenants[i];

        if (!kb_server_authz_visible(t, &c->peer))
            continue;
        e[n++] = (struct kb_proto_list_entry){t->name, t->bucket,
                                              kb_tenant_state_name(s_state(s, t)->state)};
    }
    if (rc == 0)
        rc = kb_proto_format_list(req->id, e, n, &line, &len);
    free(e);
    kb_srv_reply_ok(c, req->op, rc, line, len, req->id);
}

static void s_status(struct kb_srv_conn *c, const struct kb_proto_request *req)
{
    struct kb_server *s = c->srv;
    size_t cap = s->cfg->ntenants + 1;
    struct kb_proto_status_entry *e = calloc(cap, sizeof(*e));
    struct kb_proto_status out = {.version = s->version, .tenants = e};
    struct kb_proto_waiting_peer *w = NULL;
    size_t nw = 0, used = 0;
    char *line = NULL;
    size_t len = 0;
    int rc = e == NULL ? KB_ENOMEM : 0;

    out.uptime_seconds = (uv_now(s->loop) - s->started_ms) / 1000u;
    /* Admins see who has not acknowledged each tenant's current version: room for all of them
     * (bounded by the connections times the tenants they watch). */
    for (size_t i = 0; rc == 0 && c->admin && i < s->cfg->ntenants; i++) {
        const struct kb_tenant *t = &s->cfg->tenants[i];
        size_t n = 0;

        if ((!req->has_tenant || strcmp(req->tenant, t->name) == 0) &&
            kb_server_authz_visible(t, &c->peer)) {
            kb_srv_ack_waiting(s, t, s_state(s, t)->version_id, NULL, 0, &n);
            nw += n;
        }
    }
    if (rc == 0 && c->admin) {
        w = calloc(nw + 1, sizeof(*w));
        rc = w == NULL ? KB_ENOMEM : 0;
    }
    for (size_t i = 0; rc == 0 && i < s->cfg->ntenants; i++) {
        const struct kb_tenant *t = &s->cfg->tenants[i];
        const struct kb_tenant_status *x;

        if ((req->has_tenant && strcmp(req->tenant, t->name) != 0) ||
            !kb_server_authz_visible(t, &c->peer))
            continue;
        x = s_state(s, t);
        e[out.count++] = (struct kb_proto_status_entry){
            .tenant = t->name,
            .state = kb_tenant_state_name(x->state),
            .message = x->message[0] != '\0' ? x->message : NULL,
            .probed_ok = strcmp(x->probe, "probed-ok") == 0,
        };
        if (c->admin) {
            struct kb_proto_status_entry *en = &e[out.count - 1];

            en->has_subscribers = true;
            en->waiting = w + used;
            en->subscribers =
                kb_srv_ack_waiting(s, t, x->version_id, w + used, nw - used, &en->nwaiting);
            if (en->nwaiting > nw - used)
                en->nwaiting = nw - used;
            used += en->nwaiting;
        }
    }
    if (rc == 0)
        rc = kb_proto_format_status(req->id, &out, &line, &len);
    free(w);
    free(e);
    kb_srv_reply_ok(c, req->op, rc, line, len, req->id);
}

/* -- watch, metrics, rotate -------------------------------------------------------------------- */

/* The watch stream is server_watch.c's: subscription, replay, reset. */
static void s_watch(struct kb_srv_conn *c, struct kb_proto_request *req)
{
    kb_srv_watch_op(c, req);
}

_Static_assert(KB_SRV_TENANT_STATES == KB_TENANT_REVOKED + 1, "a tenant state per gauge");

/* text (taken; NULL passes through) with the time to ready of each tenant's last rotation in this
 * process (the readiness probe of its new key), one gauge line per tenant that has one. */
static char *s_rotation_metrics(struct kb_server *s, char *text)
{
    static const char head[] = "# HELP keybroker_rotation_time_to_ready_seconds time from the "
                               "readiness probe's start with the last rotation's new key to its "
                               "success\n# TYPE keybroker_rotation_time_to_ready_seconds gauge\n";
    size_t len, cap, n = 0;
    char *out;

    if (text == NULL)
        return NULL;
    for (size_t i = 0; i < s->cfg->ntenants; i++)
        n += s_state(s, &s->cfg->tenants[i])->rotation_probe_ms > 0;
    if (n == 0)
        return text;
    len = strlen(text);
    cap = len + sizeof(head) + n * (64 + 96);
    out = realloc(text, cap);
    if (out == NULL) {
        free(text);
        return NULL;
    }
    len += (size_t)snprintf(out + len, cap - len, "%s", head);
    for (size_t i = 0; i < s->cfg->ntenants && len < cap; i++) {
        uint64_t ms = s_state(s, &s->cfg->tenants[i])->rotation_probe_ms;

        if (ms > 0)
            len += (size_t)snprintf(out + len, cap - len,
                                    "keybroker_rotation_time_to_ready_seconds{tenant=\"%s\"} "
                                    "%.3f\n",
                                    s->cfg->tenants[i].name, (double)ms / 1000.0);
    }
    return out;
}

char *kb_srv_metrics_text(struct kb_server *s)
{
    struct kb_srv_gauges g = {
        .uptime_seconds = (uv_now(s->loop) - s->started_ms) / 1000u,
        .connections = s->nconns,
        .watches = s->nwatches,
    };

    for (size_t i = 0; i < KB_SRV_TENANT_STATES; i++)
        g.state_names[i] = kb_tenant_state_name((enum kb_tenant_state)i);
    for (size_t i = 0; i < s->cfg->ntenants; i++) {
        enum kb_tenant_state state = s_state(s, &s->cfg->tenants[i])->state;

        if ((size_t)state < KB_SRV_TENANT_STATES)
            g.tenants[state]++;
    }
    if (s->aws != NULL) {
        struct kb_http_stats hs;

        kb_http_stats(kb_aws_client_http(s->aws), &hs);
        g.has_aws_calls = true;
        g.aws_calls = hs.requests;
    }
    if (s->engine != NULL) {
        struct kb_engine_follow_stats fs;

        kb_engine_follow_stats(s->engine, &fs);
        g.has_follow = true;
        g.followed = fs.followed;
        g.follow_polls_ok = fs.polls_ok;
        g.follow_polls_error = fs.polls_error;
        g.follow_calls = fs.calls;
        g.follow_last_poll_ms = fs.last_poll_ms;
    }
    if (s->audit_stats != NULL) {
        struct kb_server_audit_stats as = {0};

        s->audit_stats(s->admit_ctx, &as);
        g.has_audit = true;
        g.audit_written = as.written;
        g.audit_queued = as.queued;
        g.audit_lost = as.lost;
        g.audit_write_errors = as.write_errors;
        g.audit_unanchored = as.unanchored;
        g.audit_failing = as.failing;
    }
    return s_rotation_metrics(s, kb_srv_metrics_format(&s->metrics, &g));
}

static void s_metrics(struct kb_srv_conn *c, const struct kb_proto_request *req)
{
    char *text = kb_srv_metrics_text(c->srv);
    char *line = NULL;
    size_t len = 0;
    int rc = text == NULL ? KB_ENOMEM : kb_proto_format_metrics(req->id, text, &line, &len);

    free(text);
    kb_srv_reply_ok(c, req->op, rc, line, len, req->id);
}

/* -- provision and revoke ---------------------------------------------------------------------- */

/* One provision or revoke in flight: the slot its answer goes to and the request id. Linked in
 * the server's list until the engine calls back (or the server abandons it at shutdown). */
struct kb_srv_job {
    struct kb_srv_job *prev, *next;
    struct kb_srv_slot *slot;
    struct kb_server *srv;
    enum kb_proto_op op;
    char id[KB_PROTO_ID_SIZE];
};

static void s_job_link(struct kb_srv_job *job)
{
    struct kb_server *s = job->srv;

    job->next = s->jobs;
    if (s->jobs != NULL)
        s->jobs->prev = job;
    s->jobs = job;
}

static void s_job_unlink(struct kb_srv_job *job)
{
    if (job->prev != NULL)
        job->prev->next = job->next;
    else
        job->srv->jobs = job->next;
    if (job->next != NULL)
        job->next->prev = job->prev;
    job->prev = job->next = NULL;
}

void kb_srv_jobs_abandon(struct kb_server *s)
{
    while (s->jobs != NULL) {
        struct kb_srv_job *job = s->jobs;

        s_job_unlink(job);
        kb_srv_slot_finish(job->slot, NULL, 0);
        free(job);
    }
}

static void on_progress(void *ctx, const struct kb_engine_event *ev)
{
    struct kb_srv_job *job = ctx;
    struct kb_proto_progress p = {
        .tenant = ev->tenant,
        .step = ev->step,
        .state = kb_engine_result_name(ev->result),
        .message = ev->message != NULL && ev->message[0] != '\0' ? ev->message : NULL,
    };
    char *line = NULL;
    size_t len = 0;

    if (kb_proto_format_progress(job->id, &p, &line, &len) == 0)
        kb_srv_slot_append(job->slot, line, len);
}

static void on_done(void *ctx, int err, const struct kb_engine_outcome *outcomes, size_t count)
{
    struct kb_srv_job *job = ctx;
    struct kb_proto_tenant_state *states = calloc(count + 1, sizeof(*states));
    char *line = NULL;
    size_t len = 0;
    int rc = states == NULL ? KB_ENOMEM : 0;

    s_job_unlink(job);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        states[i] = (struct kb_proto_tenant_state){
            .tenant = outcomes[i].tenant,
            .state = kb_tenant_state_name(outcomes[i].state),
            .message = outcomes[i].message != NULL && outcomes[i].message[0] != '\0'
                           ? outcomes[i].message
                           : NULL,
        };
    }
    if (rc == 0 && err == KB_ECANCELED)
        rc = kb_proto_format_error(job->id, KB_PROTO_EINTERNAL,
                                   "canceled: the broker is shutting down", &line, &len);
    else if (rc == 0 && (job->op == KB_PROTO_OP_REVOKE || job->op == KB_PROTO_OP_ROTATE) &&
             count == 1)
        rc = kb_proto_format_tenant_state(job->id, states, &line, &len);
    else if (rc == 0)
        rc = kb_proto_format_provision(job->id, states, count, &line, &len);
    free(states);
    kb_srv_count(job->srv, job->op,
                 err == KB_ECANCELED || rc != 0 ? KB_PROTO_EINTERNAL : KB_PROTO_OK);
    /* Last: finishing the slot may release the connection and, during shutdown, the server. */
    kb_srv_slot_finish(job->slot, rc == 0 ? line : NULL, len);
    free(job);
}

static void s_job(struct kb_srv_conn *c, const struct kb_proto_request *req)
{
    struct kb_server *s = c->srv;
    struct kb_engine_revoke_opts ro = {req->delete_bucket, req->force_delete_secret};
    struct kb_engine_provision_opts po = {req->adopt_bucket};
    const char *tenant = req->has_tenant ? req->tenant : NULL;
    struct kb_srv_job *job;
    int rc;

    if (s->engine == NULL) {
        kb_srv_reply_error(c, req->op, req->id, KB_PROTO_ENOT_READY, "no provisioning engine");
        return;
    }
    job = calloc(1, sizeof(*job));
    if (job == NULL || (job->slot = kb_srv_slot_open(c)) == NULL) {
        free(job);
        kb_srv_reply_error(c, req->op, req->id, KB_PROTO_EINTERNAL, "out of memory");
        return;
    }
    job->srv = s;
    job->op = req->op;
    memcpy(job->id, req->id, sizeof(job->id));
    if (req->op == KB_PROTO_OP_REVOKE) {
        rc = kb_engine_revoke(s->engine, tenant, &ro, on_progress, on_done, job);
    } else if (req->op == KB_PROTO_OP_ROTATE) {
        rc = kb_engine_rotate_with(s->engine, tenant,
                                   &(struct kb_engine_rotate_opts){.rollback = req->rollback},
                                   on_progress, on_done, job);
    } else if (req->adopt_bucket) {
        kb_srv_log_adopt(c, tenant);
        rc = kb_engine_provision_with(s->engine, tenant, &po, on_progress, on_done, job);
    } else {
        rc = kb_engine_provision(s->engine, tenant, on_progress, on_done, job);
    }
    if (rc == 0) {
        s_job_link(job);
    } else {
        enum kb_proto_err code = rc == KB_ENOTFOUND ? KB_PROTO_EFORBIDDEN
                                 : rc == KB_EDENIED ? KB_PROTO_ENOT_SUPPORTED
                                                    : KB_PROTO_EINTERNAL;
        char *line = NULL, why[256];
        size_t len = 0;

        /* KB_EDENIED from the engine: tenants[].rotate is false on this broker, which follows
         * the tenant and never provisions, rotates or revokes it (engine.h). */
        snprintf(why, sizeof(why),
                 "tenant %s is followed by this broker (tenants[].rotate is false): its rotator "
                 "provisions, rotates and revokes it; ask the broker configured with rotate: true",
                 tenant != NULL ? tenant : "");
        kb_srv_count(s, req->op, code);
        if (kb_proto_format_error(req->id, code,
                                  code == KB_PROTO_EFORBIDDEN       ? S_FORBIDDEN_MSG
                                  : code == KB_PROTO_ENOT_SUPPORTED ? why
                                                                    : kb_strerror(rc),
                                  &line, &len) != 0)
            line = NULL;
        kb_srv_slot_finish(job->slot, line, len);
        free(job);
    }
}

/* -- dispatch ---------------------------------------------------------------------------------- */

void kb_srv_ops_dispatch(struct kb_srv_conn *c, struct kb_proto_request *req)
{
    if (!s_admitted(c, req)) {
        kb_proto_request_cleanup(req);
        return;
    }
    if (!s_authorize(c, req)) {
        kb_srv_reply_error(c, req->op, req->id, KB_PROTO_EFORBIDDEN, S_FORBIDDEN_MSG);
        kb_proto_request_cleanup(req);
        return;
    }
    switch (req->op) {
    case KB_PROTO_OP_GET:
        s_get(c, req);
        break;
    case KB_PROTO_OP_LIST:
        s_list(c, req);
        break;
    case KB_PROTO_OP_STATUS:
        s_status(c, req);
        break;
    case KB_PROTO_OP_PROVISION:
    case KB_PROTO_OP_REVOKE:
    case KB_PROTO_OP_ROTATE:
        s_job(c, req);
        break;
    case KB_PROTO_OP_WATCH:
        s_watch(c, req);
        break;
    case KB_PROTO_OP_METRICS:
        s_metrics(c, req);
        break;
    case KB_PROTO_OP_ACK:
        kb_srv_ack_op(c, req);
        break;
    default:
        kb_srv_reply_error(c, req->op, req->id, KB_PROTO_EUNKNOWN_OP, NULL);
        break;
    }
    kb_proto_request_cleanup(req);
}
