/*
 * server_watch.c - the watch stream: the op that subscribes a connection, the ring of recent
 * events it resumes from, and the fan-out, a subscriber of the event bus.
 *
 * Every "provisioned", "revoked", "rotated", "rolled_back", "rotation_failed", "key_deactivated"
 * and "key_deleted" event becomes one event line with this start's epoch and the next seq; the
 * line goes into the ring (server_ring.h), then to each connection that watches the tenant and
 * may see it (its clients ACL), whoever started the operation. Invisible events still take a
 * seq, so a client sees gaps; only order and duplicates matter.
 *
 * A watch with "since" of this epoch whose events after it are all in the ring gets them again
 * (filtered as live ones), then live events; any other since - another epoch, or events that
 * fell out of the ring, or a replay larger than the connection may queue - gets one "reset" line
 * with the current state of its tenants and the position to resume from.
 *
 * Access is checked again at every delivery: a peer that may no longer see a tenant it watches
 * (a named one, or one of the visible set it subscribed to) gets a "closed" line and the
 * connection closes. The ACL lives in the config, immutable today; the check reads it at each
 * delivery, so a reloaded config (issue 15) takes effect at the next event, or at once through
 * kb_srv_watch_recheck.
 *
 * Event lines carry what the codec's event struct carries (tenant, ARN, version id, time, a
 * message) - never key material.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "engine/engine.h"
#include "events/events.h"
#include "server/server_internal.h"

#define S_KINDS                                                                                    \
    (KB_EVENT_MASK(KB_EVENT_PROVISIONED) | KB_EVENT_MASK(KB_EVENT_REVOKED) |                       \
     KB_EVENT_MASK(KB_EVENT_ROTATED) | KB_EVENT_MASK(KB_EVENT_ROLLED_BACK) |                       \
     KB_EVENT_MASK(KB_EVENT_ROTATION_FAILED) | KB_EVENT_MASK(KB_EVENT_KEY_DEACTIVATED) |           \
     KB_EVENT_MASK(KB_EVENT_KEY_DELETED))

/* -- who gets what ----------------------------------------------------------------------------- */

static bool s_named(const struct kb_srv_conn *c, const char *tenant)
{
    for (size_t i = 0; i < c->watch_count; i++) {
        if (strcmp(c->watch_names[i], tenant) == 0)
            return true;
    }
    return false;
}

/* Whether an event of tenant goes to c now. */
static bool s_watches(const struct kb_srv_conn *c, const char *tenant)
{
    return (s_named(c, tenant) || c->watch_all) &&
           kb_server_authz_tenant(c->srv->cfg, tenant, &c->peer);
}

/* The first tenant c subscribed to that its peer may no longer see, or NULL. */
static const char *s_withdrawn(const struct kb_srv_conn *c)
{
    for (size_t i = 0; i < c->watch_count; i++) {
        if (!kb_server_authz_tenant(c->srv->cfg, c->watch_names[i], &c->peer))
            return c->watch_names[i];
    }
    return NULL;
}

static bool s_subscribed(const struct kb_srv_conn *c)
{
    return c->watching && !c->closing && !c->drain_then_close;
}

bool kb_srv_watch_covers(const struct kb_srv_conn *c, const char *tenant)
{
    return s_subscribed(c) && s_watches(c, tenant);
}

/* The last line of c's subscription; the connection closes once it is written. */
static void s_close_withdrawn(struct kb_srv_conn *c, const char *tenant)
{
    char reason[KB_PROTO_MAX_TENANT + 64];
    char *line = NULL;
    size_t len = 0;

    c->srv->metrics.watch_withdrawn++;
    snprintf(reason, sizeof(reason), "access to tenant %s was withdrawn", tenant);
    kb_srv_log_peer(KB_LOG_INFO, "watch-closed", c, reason);
    uv_read_stop((uv_stream_t *)&c->pipe);
    c->drain_then_close = true;
    c->watch_live = false;
    if (kb_proto_format_closed(reason, &line, &len) == 0)
        kb_srv_push(c, line, len);
    else
        kb_srv_flush(c);
}

/* A copy of line for c (the ring keeps the original). */
static void s_push_copy(struct kb_srv_conn *c, const char *line, size_t len)
{
    char *copy = malloc(len + 1);

    if (copy == NULL) {
        kb_srv_conn_close(c, "out of memory");
        return;
    }
    memcpy(copy, line, len + 1);
    kb_srv_push(c, copy, len);
}

void kb_srv_watch_recheck(struct kb_server *s)
{
    struct kb_srv_conn *c, *next;
    const char *lost;

    for (c = s->conns; c != NULL; c = next) {
        next = c->next;
        if (s_subscribed(c) && (lost = s_withdrawn(c)) != NULL)
            s_close_withdrawn(c, lost);
    }
}

/* -- live events ------------------------------------------------------------------------------- */

void kb_server_publish(struct kb_server *s, const struct kb_proto_event *ev)
{
    struct kb_proto_event at = *ev;
    struct kb_srv_conn *c, *next;
    const struct kb_srv_ring_entry *e;
    char *line = NULL;
    size_t len = 0;
    uint64_t seq;

    if (s->ring.slots == NULL)
        return;
    at.epoch = s->ring.epoch;
    at.seq = kb_srv_ring_next(&s->ring);
    if (kb_proto_format_event(&at, &line, &len) != 0) {
        kb_log(KB_LOG_ERROR, "event", "tenant", ev->tenant, "error", "cannot format", NULL);
        return;
    }
    seq = kb_srv_ring_push(&s->ring, ev->tenant, line, len);
    e = kb_srv_ring_at(&s->ring, seq);
    /* Each delivery checks the peer's access first: closing goes before any event. */
    kb_srv_watch_recheck(s);
    for (c = s->conns; c != NULL; c = next) {
        next = c->next;
        if (s_subscribed(c) && s_watches(c, e->tenant))
            s_push_copy(c, e->line, e->len);
    }
}

static enum kb_proto_event_kind s_kind(enum kb_event_kind k)
{
    switch (k) {
    case KB_EVENT_PROVISIONED:
        return KB_PROTO_EVENT_PROVISIONED;
    case KB_EVENT_REVOKED:
        return KB_PROTO_EVENT_REVOKED;
    case KB_EVENT_ROTATED:
        return KB_PROTO_EVENT_ROTATED;
    case KB_EVENT_ROLLED_BACK:
        return KB_PROTO_EVENT_ROLLED_BACK;
    case KB_EVENT_ROTATION_FAILED:
        return KB_PROTO_EVENT_ROTATION_FAILED;
    case KB_EVENT_KEY_DEACTIVATED:
        return KB_PROTO_EVENT_KEY_DEACTIVATED;
    case KB_EVENT_KEY_DELETED:
        return KB_PROTO_EVENT_KEY_DELETED;
    default:
        return (enum kb_proto_event_kind)0;
    }
}

static void on_event(void *ctx, const struct kb_event *e)
{
    struct kb_server *s = ctx;
    struct kb_proto_event ev = {
        .kind = s_kind(e->kind),
        .tenant = e->tenant,
        .arn = e->arn,
        .ts = e->ts,
        .version_id = e->kind != KB_EVENT_REVOKED ? e->version_id : NULL,
        .message = e->message != NULL && e->message[0] != '\0' ? e->message : NULL,
    };

    if (s->closing || ev.kind == 0 || e->tenant == NULL || e->arn == NULL || e->arn[0] == '\0')
        return;
    kb_server_publish(s, &ev);
}

int kb_srv_watch_subscribe(struct kb_server *s)
{
    char epoch[KB_PROTO_EPOCH_SIZE];
    uint32_t n = s->cfg->broker.limits.watch_ring_events;
    int rc;

    kb_srv_ring_new_epoch(epoch);
    rc = kb_srv_ring_init(&s->ring, n > 0 ? n : 1, epoch);
    if (rc != 0 || s->events == NULL)
        return rc;
    return kb_events_subscribe(s->events, S_KINDS, on_event, s, &s->watch_sub);
}

void kb_srv_watch_unsubscribe(struct kb_server *s)
{
    kb_events_unsubscribe(s->events, s->watch_sub);
    s->watch_sub = NULL;
    kb_srv_ring_cleanup(&s->ring);
}

/* -- the op ------------------------------------------------------------------------------------ */

/* The visible tenants' names as one block (pointers, then strings), like the parser's. */
static int s_visible_names(struct kb_srv_conn *c, char ***out, size_t *count)
{
    const struct kb_config *cfg = c->srv->cfg;
    size_t n = 0, size = 0;
    char **names, *p;

    for (size_t i = 0; i < cfg->ntenants; i++) {
        if (kb_server_authz_visible(&cfg->tenants[i], &c->peer))
            size += sizeof(char *) + strlen(cfg->tenants[i].name) + 1;
    }
    names = malloc(size + 1);
    if (names == NULL)
        return KB_ENOMEM;
    for (size_t i = 0; i < cfg->ntenants; i++)
        n += kb_server_authz_visible(&cfg->tenants[i], &c->peer);
    p = (char *)(names + n);
    n = 0;
    for (size_t i = 0; i < cfg->ntenants; i++) {
        const char *name = cfg->tenants[i].name;

        if (!kb_server_authz_visible(&cfg->tenants[i], &c->peer))
            continue;
        memcpy(p, name, strlen(name) + 1);
        names[n++] = p;
        p += strlen(name) + 1;
    }
    *out = names;
    *count = n;
    return 0;
}

/* The reset line: the current state of every tenant c watches and may see. */
static int s_reset_line(struct kb_srv_conn *c, const char *reason, char **line, size_t *len)
{
    struct kb_server *s = c->srv;
    struct kb_proto_watch_state *st = calloc(c->watch_count + 1, sizeof(*st));
    size_t n = 0;
    int rc;

    if (st == NULL)
        return KB_ENOMEM;
    for (size_t i = 0; i < c->watch_count; i++) {
        const struct kb_tenant *t = kb_config_tenant(s->cfg, c->watch_names[i]);
        const struct kb_tenant_status *x;

        if (t == NULL || !kb_server_authz_visible(t, &c->peer))
            continue;
        if (s->engine == NULL) {
            st[n++] = (struct kb_proto_watch_state){t->name, NULL, NULL, "pending"};
            continue;
        }
        x = kb_engine_status_of(s->engine, t);
        st[n++] = (struct kb_proto_watch_state){
            .tenant = t->name,
            .arn = x->secret_arn[0] != '\0' ? x->secret_arn : NULL,
            .version_id = x->version_id[0] != '\0' ? x->version_id : NULL,
            .state = kb_tenant_state_name(x->state),
        };
    }
    rc = kb_proto_format_reset(s->ring.epoch, s->ring.last, reason, st, n, line, len);
    free(st);
    return rc;
}

/* After the answer: the events after since, or a reset. */
static void s_resume(struct kb_srv_conn *c, const struct kb_proto_request *req)
{
    struct kb_server *s = c->srv;
    const char *reason = NULL;
    size_t bytes = 0;
    char *line = NULL;
    size_t len = 0;

    if (strcmp(req->since_epoch, s->ring.epoch) != 0) {
        reason = "epoch";
    } else if (!kb_srv_ring_resumable(&s->ring, req->since_seq)) {
        reason = "gap";
    } else {
        /* A replay the connection could not queue would cut it, and its client would come back
         * for the same replay: a snapshot is what it can use. */
        for (uint64_t q = req->since_seq + 1; q <= s->ring.last; q++) {
            const struct kb_srv_ring_entry *e = kb_srv_ring_at(&s->ring, q);

            if (e != NULL && s_watches(c, e->tenant))
                bytes += e->len;
        }
        if (c->queued + bytes > s->max_queued)
            reason = "too_large";
    }
    if (reason == NULL) {
        for (uint64_t q = req->since_seq + 1; q <= s->ring.last && s_subscribed(c); q++) {
            const struct kb_srv_ring_entry *e = kb_srv_ring_at(&s->ring, q);

            if (e != NULL && s_watches(c, e->tenant)) {
                s->metrics.watch_replayed++;
                s_push_copy(c, e->line, e->len);
            }
        }
        return;
    }
    s->metrics.watch_resets++;
    if (s_reset_line(c, reason, &line, &len) != 0) {
        kb_srv_conn_close(c, "out of memory");
        return;
    }
    kb_srv_push(c, line, len);
}

/* Whether the watch covers a tenant the peer may see (it may then sit idle). */
static bool s_live(const struct kb_srv_conn *c)
{
    const struct kb_config *cfg = c->srv->cfg;

    if (c->watch_all) {
        for (size_t i = 0; i < cfg->ntenants; i++) {
            if (kb_server_authz_visible(&cfg->tenants[i], &c->peer))
                return true;
        }
        return false;
    }
    for (size_t i = 0; i < c->watch_count; i++) {
        if (kb_server_authz_tenant(cfg, c->watch_names[i], &c->peer))
            return true;
    }
    return false;
}

void kb_srv_watch_op(struct kb_srv_conn *c, struct kb_proto_request *req)
{
    struct kb_server *s = c->srv;
    char **names = NULL;
    size_t n = 0;
    char *line = NULL;
    size_t len = 0;
    int rc = 0;

    if (!c->watching && c->rate->watches >= s->cfg->broker.limits.max_watches_per_uid) {
        s->metrics.watch_refused++;
        kb_srv_reply_error(c, req->op, req->id, KB_PROTO_EBUSY,
                           "too many watch subscriptions from this uid "
                           "(broker.limits.max_watches_per_uid)");
        return;
    }
    if (req->tenant_count > 0) {
        /* Keep the parser's block: it is the names array and its strings. */
        names = req->owned_;
        n = req->tenant_count;
        req->owned_ = NULL;
    } else {
        rc = s_visible_names(c, &names, &n);
    }
    if (rc == 0) {
        free(c->watch_names);
        c->watch_names = names;
        c->watch_count = n;
        c->watch_all = req->tenant_count == 0;
        rc = kb_proto_format_watching_at(req->id, (const char *const *)names, n, s->ring.epoch,
                                         s->ring.last, &line, &len);
    }
    if (rc == 0 && !c->watching) {
        c->rate->watches++;
        s->nwatches++;
    } else if (rc != 0 && c->watching) {
        c->rate->watches--;
        s->nwatches--;
    }
    c->watching = rc == 0;
    c->watch_live = c->watching && s_live(c);
    kb_srv_reply_ok(c, req->op, rc, line, len, req->id);
    if (rc == 0 && req->has_since && s_subscribed(c))
        s_resume(c, req);
}
