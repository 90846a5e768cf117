/*
 * server_ack.c - acknowledged cut-over (DESIGN.md section 8, step 7): a watch subscriber says
 * which version of a tenant's secret it now uses ("ack"); once every subscriber of the tenant on
 * this broker has acknowledged the tenant's AWSCURRENT version, the engine is told
 * (kb_engine_cut_over) and deactivates the superseded key without waiting for aws.overlap.
 *
 * Who counts: the connections subscribed to the tenant's events that may see it, now
 * (kb_srv_watch_covers). A subscriber that disconnects takes its acks with it; one that comes
 * back (libkeybroker resumes and acknowledges again) counts from its next ack. Nothing is decided
 * when a subscriber leaves: the cut-over follows an ack, or the overlap deadline - a silent or
 * departed subscriber can only delay it, never hasten it. With no subscriber at all the overlap
 * runs its course: an ack is the evidence, and no ack is no evidence.
 *
 * The acks are per connection (c->acks), one entry per tenant, the version as the client sent
 * it: only ever compared with the engine's AWSCURRENT, never used to choose a key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "engine/engine.h"
#include "server/server_internal.h"

/* The version c acknowledged for t, or NULL. */
static const char *s_acked(const struct kb_srv_conn *c, const struct kb_tenant *t)
{
    for (size_t i = 0; i < c->nacks; i++) {
        if (c->acks[i].tenant == t)
            return c->acks[i].version;
    }
    return NULL;
}

static int s_record(struct kb_srv_conn *c, const struct kb_tenant *t, const char *version)
{
    struct kb_srv_ack *a = NULL, *grown;

    for (size_t i = 0; i < c->nacks && a == NULL; i++) {
        if (c->acks[i].tenant == t)
            a = &c->acks[i];
    }
    if (a == NULL) {
        /* At most one entry per tenant the connection may watch: bounded by the config. */
        grown = realloc(c->acks, (c->nacks + 1) * sizeof(*c->acks));
        if (grown == NULL)
            return KB_ENOMEM;
        c->acks = grown;
        a = &c->acks[c->nacks++];
        a->tenant = t;
    }
    snprintf(a->version, sizeof(a->version), "%s", version);
    return 0;
}

size_t kb_srv_ack_waiting(struct kb_server *s, const struct kb_tenant *t, const char *version,
                          struct kb_proto_waiting_peer *waiting, size_t cap, size_t *nwaiting)
{
    size_t subscribers = 0;

    *nwaiting = 0;
    for (const struct kb_srv_conn *c = s->conns; c != NULL; c = c->next) {
        const char *acked;

        if (!kb_srv_watch_covers(c, t->name))
            continue;
        subscribers++;
        acked = s_acked(c, t);
        if (acked != NULL && version != NULL && version[0] != '\0' && strcmp(acked, version) == 0)
            continue;
        if (*nwaiting < cap)
            waiting[*nwaiting] =
                (struct kb_proto_waiting_peer){c->peer.uid, (int32_t)c->peer.pid, acked};
        (*nwaiting)++;
    }
    return subscribers;
}

void kb_srv_ack_op(struct kb_srv_conn *c, const struct kb_proto_request *req)
{
    struct kb_server *s = c->srv;
    const struct kb_tenant *t = kb_config_tenant(s->cfg, req->tenant);
    const struct kb_tenant_status *x;
    struct kb_proto_ack a = {req->tenant, req->version_id, false, 0};
    char *line = NULL;
    size_t len = 0;
    int rc;

    if (t == NULL || !kb_srv_watch_covers(c, t->name)) {
        kb_srv_reply_error(c, req->op, req->id, KB_PROTO_EBAD_REQUEST,
                           "ack is for watch subscribers: this connection does not watch the "
                           "tenant (send watch first, on this connection)");
        return;
    }
    if (s_record(c, t, req->version_id) != 0) {
        kb_srv_reply_error(c, req->op, req->id, KB_PROTO_EINTERNAL, "out of memory");
        return;
    }
    x = s->engine != NULL ? kb_engine_status_of(s->engine, t) : NULL;
    a.current =
        x != NULL && x->version_id[0] != '\0' && strcmp(x->version_id, req->version_id) == 0;
    if (a.current)
        kb_srv_ack_waiting(s, t, req->version_id, NULL, 0, &a.waiting);
    kb_srv_log_peer(KB_LOG_DEBUG, "ack", c, req->version_id);
    if (a.current && a.waiting == 0) {
        rc = kb_engine_cut_over(s->engine, t->name, req->version_id);
        if (rc != 0 && rc != KB_EDENIED)
            kb_log(KB_LOG_WARN, "cut-over", "tenant", t->name, "error", kb_strerror(rc), NULL);
    }
    rc = kb_proto_format_ack(req->id, &a, &line, &len);
    kb_srv_reply_ok(c, req->op, rc, line, len, req->id);
}
