/*
 * events.c - the event bus (events.h): a list of subscriptions, called in order.
 *
 * A subscriber may unsubscribe itself or another one, or subscribe a new one, from inside its
 * callback: an unsubscribed entry is only marked while an emit runs and unlinked once the
 * outermost emit returns, and a new entry goes to the end of the list, so the walk stays valid.
 * This file never looks inside an event beyond its kind and timestamp.
 */
#include "events/events.h"

#include <stdbool.h>
#include <stdlib.h>

#include "common/err.h"

struct kb_events_sub {
    struct kb_events_sub *next;
    unsigned mask;
    kb_event_cb cb;
    void *ctx;
    bool gone;
};

struct kb_events {
    struct kb_events_sub *head, **tail;
    unsigned emitting; /* nesting depth of kb_events_emit */
    bool dirty;        /* a subscription was marked gone during an emit */
};

const char *kb_event_kind_name(enum kb_event_kind kind)
{
    static const char *const names[] = {
        "step",        "provisioned",     "revoked",         "authz",       "adopted",  "rotated",
        "rolled_back", "rotation_failed", "key_deactivated", "key_deleted", "aws_call", "plugin"};

    _Static_assert(sizeof(names) / sizeof(names[0]) == KB_EVENT_KIND_COUNT, "one name a kind");
    return (unsigned)kind < KB_EVENT_KIND_COUNT ? names[kind] : "unknown";
}

int kb_events_new(struct kb_events **out)
{
    struct kb_events *bus = calloc(1, sizeof(*bus));

    if (bus == NULL)
        return KB_ENOMEM;
    bus->tail = &bus->head;
    *out = bus;
    return 0;
}

void kb_events_destroy(struct kb_events *bus)
{
    struct kb_events_sub *s, *next;

    if (bus == NULL)
        return;
    for (s = bus->head; s != NULL; s = next) {
        next = s->next;
        free(s);
    }
    free(bus);
}

int kb_events_subscribe(struct kb_events *bus, unsigned mask, kb_event_cb cb, void *ctx,
                        struct kb_events_sub **out)
{
    struct kb_events_sub *s;

    if (bus == NULL || cb == NULL || out == NULL)
        return KB_EINVAL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return KB_ENOMEM;
    s->mask = mask;
    s->cb = cb;
    s->ctx = ctx;
    *bus->tail = s;
    bus->tail = &s->next;
    *out = s;
    return 0;
}

/* Unlinks and frees the subscriptions marked gone. */
static void s_sweep(struct kb_events *bus)
{
    struct kb_events_sub **p = &bus->head;

    while (*p != NULL) {
        struct kb_events_sub *s = *p;

        if (s->gone) {
            *p = s->next;
            free(s);
        } else {
            p = &s->next;
        }
    }
    bus->tail = p;
    bus->dirty = false;
}

void kb_events_unsubscribe(struct kb_events *bus, struct kb_events_sub *sub)
{
    if (bus == NULL || sub == NULL)
        return;
    sub->gone = true;
    bus->dirty = true;
    if (bus->emitting == 0)
        s_sweep(bus);
}

void kb_events_emit(struct kb_events *bus, const struct kb_event *ev)
{
    struct kb_event copy;

    if (bus == NULL || ev == NULL || (unsigned)ev->kind >= KB_EVENT_KIND_COUNT)
        return;
    copy = *ev;
    if (copy.ts == 0)
        copy.ts = time(NULL);
    bus->emitting++;
    for (struct kb_events_sub *s = bus->head; s != NULL; s = s->next) {
        if (!s->gone && (s->mask & KB_EVENT_MASK(copy.kind)))
            s->cb(s->ctx, &copy);
    }
    if (--bus->emitting == 0 && bus->dirty)
        s_sweep(bus);
}
