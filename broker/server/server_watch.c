/*
 * server_watch.c - the watch fan-out as a subscriber of the event bus: every "provisioned" and
 * "revoked" event of the engine becomes an event line on each connection that watches the tenant
 * and may see it (its clients ACL), whoever started the operation.
 *
 * Event lines carry what the codec's event struct carries (tenant, ARN, version id, time) - never
 * key material.
 */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "events/events.h"
#include "server/server_internal.h"

static bool s_watches(const struct kb_srv_conn *c, const char *tenant)
{
    if (c->watch_names == NULL)
        return true;
    for (size_t i = 0; i < c->watch_count; i++) {
        if (strcmp(c->watch_names[i], tenant) == 0)
            return true;
    }
    return false;
}

void kb_server_publish(struct kb_server *s, const struct kb_proto_event *ev)
{
    struct kb_srv_conn *c = s->conns, *next;

    for (; c != NULL; c = next) {
        char *line = NULL;
        size_t len = 0;

        next = c->next;
        if (!c->watching || c->closing || !s_watches(c, ev->tenant) ||
            !kb_server_authz_tenant(s->cfg, ev->tenant, &c->peer))
            continue;
        if (kb_proto_format_event(ev, &line, &len) != 0) {
            kb_log(KB_LOG_ERROR, "event", "tenant", ev->tenant, "error", "cannot format", NULL);
            return;
        }
        kb_srv_push(c, line, len);
    }
}

static void on_event(void *ctx, const struct kb_event *e)
{
    struct kb_server *s = ctx;
    struct kb_proto_event ev = {.tenant = e->tenant, .arn = e->arn, .ts = e->ts};

    if (s->closing || e->tenant == NULL || e->arn == NULL || e->arn[0] == '\0')
        return;
    if (e->kind == KB_EVENT_PROVISIONED) {
        ev.kind = KB_PROTO_EVENT_PROVISIONED;
        ev.version_id = e->version_id;
    } else {
        ev.kind = KB_PROTO_EVENT_REVOKED;
    }
    kb_server_publish(s, &ev);
}

int kb_srv_watch_subscribe(struct kb_server *s)
{
    if (s->events == NULL)
        return 0;
    return kb_events_subscribe(
        s->events, KB_EVENT_MASK(KB_EVENT_PROVISIONED) | KB_EVENT_MASK(KB_EVENT_REVOKED), on_event,
        s, &s->watch_sub);
}

void kb_srv_watch_unsubscribe(struct kb_server *s)
{
    kb_events_unsubscribe(s->events, s->watch_sub);
    s->watch_sub = NULL;
}
