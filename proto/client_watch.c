/*
 * client_watch.c - libkeybroker's resuming watch: one subscription that outlives its
 * connections. It remembers the position (epoch, seq) of the last event it returned; when the
 * connection drops it reconnects with a bounded exponential backoff and subscribes again with
 * "since" that position, so the broker replays what was missed or sends a reset snapshot. An event
 * at or before the position (same epoch) is never returned twice. A broker that sends no epoch
 * (older than the resumable stream) gives no position: a reconnect then subscribes afresh, and
 * what happened while disconnected is not replayed.
 *
 * Blocking like the rest of the library: the waits are poll(2) and nanosleep, bounded by the
 * caller's timeout. Never logs; never carries a secret (the protocol has none).
 */
#include "client_internal.h"
#include "codec_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_RETRY_INITIAL_MS 100
#define S_RETRY_MAX_MS     5000
#define S_GIVE_UP_MS       60000

struct kb_client_watch {
    char *path; /* owned */
    struct kb_client_options copt;
    char *server_uid; /* owned copy of copt.server_uid */
    char **tenants;   /* owned (one block) */
    size_t count;
    int retry_initial_ms, retry_max_ms, give_up_ms;
    struct kb_client *c; /* NULL while disconnected */
    bool has_position;
    char epoch[KB_PROTO_EPOCH_SIZE];
    uint64_t seq;
    bool closed;         /* the broker ended the subscription */
    int64_t lost_ms;     /* when the connection was lost */
    int64_t next_try_ms; /* when to try again */
    int backoff_ms;
    unsigned reconnects;
    struct kb_client_watch_tenant *snapshot; /* the last reset's; owned */
    struct kb_client_error last;
    struct s_ack *acks; /* the last version acknowledged per tenant: sent again on resubscribe */
    size_t nacks;
};

struct s_ack {
    char tenant[KB_PROTO_MAX_TENANT + 1];
    char version[KB_PROTO_MAX_VERSION + 1];
};

static int s_send_ack(struct kb_client *c, const struct s_ack *a)
{
    struct kb_proto_request req = {.op = KB_PROTO_OP_ACK, .has_tenant = true};

    memcpy(req.tenant, a->tenant, sizeof(req.tenant));
    memcpy(req.version_id, a->version, sizeof(req.version_id));
    return kb_client_send(c, &req);
}

static int64_t s_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

    while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int s_fail(struct kb_client_watch *w, int err, const char *msg)
{
    w->last.err = err;
    w->last.code[0] = '\0';
    snprintf(w->last.message, sizeof(w->last.message), "%s", msg);
    return err;
}

/* -- subscribing ------------------------------------------------------------------------------ */

static const char *s_str(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* The epoch and seq members of o, when it has valid ones. */
static bool s_position(struct json_object *o, char *epoch, uint64_t *seq)
{
    const char *e = s_str(o, "epoch");
    struct json_object *v = NULL;

    if (e == NULL || !kb_proto_epoch_valid(e, strlen(e)) ||
        !json_object_object_get_ex(o, "seq", &v) || !json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) < 0)
        return false;
    memcpy(epoch, e, KB_PROTO_EPOCH_SIZE);
    *seq = (uint64_t)json_object_get_int64(v);
    return true;
}

/* One connection and its watch request (with since when there is a position). */
static int s_subscribe(struct kb_client_watch *w)
{
    struct kb_proto_request req = {
        .op = KB_PROTO_OP_WATCH,
        .tenants = (const char *const *)w->tenants,
        .tenant_count = w->count,
    };
    struct kb_client_error cerr = {0};
    struct kb_client_options o = w->copt;
    struct kb_proto_reply reply;
    struct kb_client *c = NULL;
    char epoch[KB_PROTO_EPOCH_SIZE];
    uint64_t seq;
    int rc;

    o.error = &cerr;
    rc = kb_client_connect_opts(w->path, &o, &c);
    if (rc != 0) {
        w->last = cerr;
        return rc;
    }
    if (w->has_position) {
        req.has_since = true;
        memcpy(req.since_epoch, w->epoch, sizeof(req.since_epoch));
        req.since_seq = w->seq;
    }
    rc = kb_client_exchange(c, &req, NULL, NULL, &reply);
    if (rc != 0) {
        w->last = c->last;
        kb_client_close(c);
        return rc;
    }
    /* A fresh subscription starts at the broker's position: a drop before the first event then
     * resumes from there. A resumed one keeps its own: the replay follows. */
    if (!w->has_position && s_position(reply.body, epoch, &seq)) {
        memcpy(w->epoch, epoch, sizeof(epoch));
        w->seq = seq;
        w->has_position = true;
    }
    kb_proto_reply_cleanup(&reply);
    c->watching = true;
    w->c = c;
    return 0;
}

static void s_lost(struct kb_client_watch *w)
{
    kb_client_close(w->c);
    w->c = NULL;
    w->lost_ms = s_now_ms();
    w->backoff_ms = w->retry_initial_ms;
    w->next_try_ms = w->lost_ms + w->backoff_ms;
}

int kb_client_watch_open(const struct kb_client_watch_options *opt, struct kb_client_watch **out,
                         struct kb_client_error *error)
{
    struct kb_client_watch_options o = {0};
    struct kb_client_watch *w;
    size_t size = 0;
    char *p;
    int rc;

    if (out == NULL || opt == NULL || opt->size < sizeof(size_t))
        return -EINVAL;
    *out = NULL;
    memcpy(&o, opt, opt->size < sizeof(o) ? opt->size : sizeof(o));
    if ((o.since_epoch != NULL && !kb_proto_epoch_valid(o.since_epoch, strlen(o.since_epoch))) ||
        (o.count > 0 && o.tenants == NULL) || o.count > KB_PROTO_MAX_WATCH)
        return -EINVAL;
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    if (o.connect != NULL)
        memcpy(&w->copt, o.connect,
               o.connect->size < sizeof(w->copt) ? o.connect->size : sizeof(w->copt));
    w->copt.size = sizeof(w->copt);
    w->copt.error = NULL;
    w->copt.peer_uid = NULL;
    rc = -ENOMEM;
    w->path = strdup(o.path != NULL && o.path[0] != '\0' ? o.path : kb_client_socket_path());
    if (w->path == NULL)
        goto cleanup;
    if (w->copt.server_uid != NULL) {
        w->server_uid = strdup(w->copt.server_uid);
        if (w->server_uid == NULL)
            goto cleanup;
        w->copt.server_uid = w->server_uid;
    }
    for (size_t i = 0; i < o.count; i++)
        size += sizeof(char *) + (o.tenants[i] != NULL ? strlen(o.tenants[i]) + 1 : 1);
    w->tenants = malloc(size + 1);
    if (w->tenants == NULL)
        goto cleanup;
    p = (char *)(w->tenants + o.count);
    for (size_t i = 0; i < o.count; i++) {
        const char *t = o.tenants[i] != NULL ? o.tenants[i] : "";

        memcpy(p, t, strlen(t) + 1);
        w->tenants[i] = p;
        p += strlen(t) + 1;
    }
    w->count = o.count;
    w->retry_initial_ms = o.retry_initial_ms > 0 ? o.retry_initial_ms : S_RETRY_INITIAL_MS;
    w->retry_max_ms = o.retry_max_ms > 0 ? o.retry_max_ms : S_RETRY_MAX_MS;
    if (w->retry_max_ms < w->retry_initial_ms)
        w->retry_max_ms = w->retry_initial_ms;
    w->give_up_ms = o.give_up_ms != 0 ? o.give_up_ms : S_GIVE_UP_MS;
    if (o.since_epoch != NULL) {
        memcpy(w->epoch, o.since_epoch, sizeof(w->epoch));
        w->seq = o.since_seq;
        w->has_position = true;
    }
    rc = s_subscribe(w);
cleanup:
    if (rc != 0) {
        if (error != NULL)
            *error = w->last;
        kb_client_watch_close(w);
        return rc;
    }
    *out = w;
    return 0;
}

void kb_client_watch_close(struct kb_client_watch *w)
{
    if (w == NULL)
        return;
    kb_client_close(w->c);
    free(w->path);
    free(w->server_uid);
    free(w->tenants);
    free(w->acks);
    free(w->snapshot);
    free(w);
}

const struct kb_client_error *kb_client_watch_last_error(const struct kb_client_watch *w)
{
    return &w->last;
}

/* -- events ----------------------------------------------------------------------------------- */

static const char *const s_kinds[] = {
    [KB_CLIENT_EVENT_ROTATED] = "rotated",
    [KB_CLIENT_EVENT_PROVISIONED] = "provisioned",
    [KB_CLIENT_EVENT_REVOKED] = "revoked",
    [KB_CLIENT_EVENT_ROLLED_BACK] = "rolled_back",
    [KB_CLIENT_EVENT_ROTATION_FAILED] = "rotation_failed",
    [KB_CLIENT_EVENT_KEY_DEACTIVATED] = "key_deactivated",
    [KB_CLIENT_EVENT_KEY_DELETED] = "key_deleted",
    [KB_CLIENT_EVENT_RESET] = "reset",
    [KB_CLIENT_EVENT_CLOSED] = "closed",
};

static void s_copy(char *out, size_t cap, const char *s)
{
    kb_proto_copy_trunc(out, cap, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

/* The reset's snapshot into w->snapshot. */
static int s_snapshot(struct kb_client_watch *w, struct json_object *body,
                      struct kb_client_watch_event *ev)
{
    struct json_object *arr = NULL;
    size_t n;

    free(w->snapshot);
    w->snapshot = NULL;
    if (!json_object_object_get_ex(body, "tenants", &arr) ||
        !json_object_is_type(arr, json_type_array))
        return KB_CLIENT_EPROTO;
    n = json_object_array_length(arr);
    w->snapshot = calloc(n + 1, sizeof(*w->snapshot));
    if (w->snapshot == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct json_object *t = json_object_array_get_idx(arr, i);
        struct kb_client_watch_tenant *x = &w->snapshot[i];

        if (!json_object_is_type(t, json_type_object) || s_str(t, "tenant") == NULL)
            return KB_CLIENT_EPROTO;
        s_copy(x->tenant, sizeof(x->tenant), s_str(t, "tenant"));
        s_copy(x->arn, sizeof(x->arn), s_str(t, "arn"));
        s_copy(x->version_id, sizeof(x->version_id), s_str(t, "version_id"));
        s_copy(x->state, sizeof(x->state), s_str(t, "state"));
    }
    ev->tenants = w->snapshot;
    ev->count = n;
    return 0;
}

/*
 * One line of the subscription. Returns 0 with *ev filled (an event to return), 1 for a line to
 * skip (a reply, progress, an event already returned), or an error (the connection is dropped
 * then).
 */
static int s_line(struct kb_client_watch *w, const char *line, size_t len,
                  struct kb_client_watch_event *ev)
{
    struct kb_proto_reply r;
    char why[256], epoch[KB_PROTO_EPOCH_SIZE];
    uint64_t seq = 0;
    bool positioned;
    int rc = kb_proto_parse_reply(line, len, &r, why, sizeof(why));

    if (rc != 0)
        return s_fail(w, rc == KB_ENOMEM ? -ENOMEM : KB_CLIENT_EPROTO, why);
    if (r.kind != KB_PROTO_REPLY_EVENT || strcmp(r.event, "progress") == 0) {
        kb_proto_reply_cleanup(&r);
        return 1;
    }
    positioned = s_position(r.body, epoch, &seq);
    /* Already returned: the same epoch, at or before the position. */
    if (positioned && w->has_position && strcmp(epoch, w->epoch) == 0 && seq <= w->seq &&
        strcmp(r.event, "reset") != 0) {
        kb_proto_reply_cleanup(&r);
        return 1;
    }
    s_copy(ev->event, sizeof(ev->event), r.event);
    for (size_t k = 1; k < sizeof(s_kinds) / sizeof(s_kinds[0]); k++) {
        if (strcmp(r.event, s_kinds[k]) == 0)
            ev->kind = (enum kb_client_event_kind)k;
    }
    s_copy(ev->tenant, sizeof(ev->tenant), s_str(r.body, "tenant"));
    s_copy(ev->arn, sizeof(ev->arn), s_str(r.body, "arn"));
    s_copy(ev->version_id, sizeof(ev->version_id), s_str(r.body, "version_id"));
    s_copy(ev->ts, sizeof(ev->ts), s_str(r.body, "ts"));
    s_copy(ev->message, sizeof(ev->message), s_str(r.body, "message"));
    s_copy(ev->reason, sizeof(ev->reason), s_str(r.body, "reason"));
    rc = 0;
    if (ev->kind == KB_CLIENT_EVENT_RESET)
        rc = positioned ? s_snapshot(w, r.body, ev) : KB_CLIENT_EPROTO;
    if (rc == 0 && positioned) {
        memcpy(w->epoch, epoch, sizeof(epoch));
        w->seq = seq;
        w->has_position = true;
        memcpy(ev->epoch, epoch, sizeof(epoch));
        ev->seq = seq;
    }
    kb_proto_reply_cleanup(&r);
    if (rc != 0)
        return s_fail(w, rc, "malformed reset line from the broker");
    return 0;
}

int kb_client_watch_ack(struct kb_client_watch *w, const char *tenant, const char *version_id)
{
    struct s_ack *a = NULL, *grown;

    if (w == NULL || tenant == NULL || version_id == NULL ||
        !kb_proto_tenant_valid(tenant, strlen(tenant)) ||
        !kb_proto_version_valid(version_id, strlen(version_id)))
        return -EINVAL;
    for (size_t i = 0; i < w->nacks && a == NULL; i++) {
        if (strcmp(w->acks[i].tenant, tenant) == 0)
            a = &w->acks[i];
    }
    if (a == NULL) {
        grown = realloc(w->acks, (w->nacks + 1) * sizeof(*w->acks));
        if (grown == NULL)
            return -ENOMEM;
        w->acks = grown;
        a = &w->acks[w->nacks++];
        snprintf(a->tenant, sizeof(a->tenant), "%s", tenant);
    }
    snprintf(a->version, sizeof(a->version), "%s", version_id);
    /* Disconnected: the resubscription sends it. A failed send: the next read reconnects. */
    if (w->c != NULL && s_send_ack(w->c, a) != 0)
        s_lost(w);
    return 0;
}

/* Reconnects when it is time, waiting at most until deadline (-1: forever). Returns 0 once
 * subscribed, -ETIMEDOUT, or the error that ends the watch. */
static int s_reconnect(struct kb_client_watch *w, int64_t deadline)
{
    for (;;) {
        int64_t now = s_now_ms();
        int rc;

        if (now < w->next_try_ms) {
            if (deadline >= 0 && deadline < w->next_try_ms) {
                s_sleep_ms(deadline - now);
                return s_fail(w, -ETIMEDOUT, "no event in time (reconnecting to the broker)");
            }
            s_sleep_ms(w->next_try_ms - now);
        }
        rc = s_subscribe(w);
        for (size_t i = 0; rc == 0 && i < w->nacks; i++) {
            /* The broker forgot this connection's acks with the old one. */
            if (s_send_ack(w->c, &w->acks[i]) != 0) {
                kb_client_close(w->c);
                w->c = NULL;
                rc = -EPIPE;
            }
        }
        if (rc == 0) {
            w->reconnects++;
            return 0;
        }
        /* A refusal is an answer, not an outage: another try would get the same. */
        if (rc == KB_CLIENT_EREMOTE || rc == KB_CLIENT_EPEER || rc == -EINVAL)
            return rc;
        if (w->give_up_ms >= 0 && s_now_ms() - w->lost_ms >= w->give_up_ms)
            return rc;
        w->next_try_ms = s_now_ms() + w->backoff_ms;
        w->backoff_ms = w->backoff_ms * 2 > w->retry_max_ms ? w->retry_max_ms : w->backoff_ms * 2;
    }
}

int kb_client_watch_read(struct kb_client_watch *w, int timeout_ms,
                         struct kb_client_watch_event *out)
{
    int64_t deadline = timeout_ms < 0 ? -1 : s_now_ms() + timeout_ms;
    struct kb_client_watch_event ev;
    const char *line;
    size_t len;
    int rc;

    if (w == NULL || out == NULL || out->size < sizeof(size_t))
        return -EINVAL;
    for (;;) {
        int64_t left;

        if (w->closed)
            return s_fail(w, KB_CLIENT_ECLOSED, "the broker ended the subscription");
        if (w->c == NULL) {
            rc = s_reconnect(w, deadline);
            if (rc != 0)
                return rc;
        }
        left = deadline < 0 ? -1 : deadline - s_now_ms();
        rc = kb_client_read_line(w->c, left < 0 && deadline >= 0 ? 0 : (int)left, &line, &len);
        if (rc == -ETIMEDOUT)
            return s_fail(w, rc, "no event in time");
        if (rc == 0) {
            memset(&ev, 0, sizeof(ev));
            rc = s_line(w, line, len, &ev);
            if (rc == 1)
                continue;
        }
        if (rc != 0) {
            s_lost(w);
            continue;
        }
        ev.size = out->size < sizeof(ev) ? out->size : sizeof(ev);
        ev.reconnects = w->reconnects;
        if (ev.kind == KB_CLIENT_EVENT_CLOSED) {
            w->closed = true;
            kb_client_close(w->c);
            w->c = NULL;
        }
        memcpy(out, &ev, ev.size);
        return 0;
    }
}
