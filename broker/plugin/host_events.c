/*
 * host_events.c - which bus events become which hooks, the JSON each helper gets for them, and
 * the pre_finish gate a rotation waits on (host.h).
 *
 *   provisioned                    -> provisioned
 *   rotated, rolled_back           -> post_rotate (step "rotate" or "rollback")
 *   revoked, rotation_failed, key_deactivated, key_deleted -> the hook of the same name
 *   authz with result "deny"       -> access_denied
 *   the engine's pre_finish call   -> pre_finish (kb_plugins_pre_finish)
 * Step, AWS-call and allowed-authz events are not hooks. The JSON holds exactly the event's
 * names and ids (wire.h): a bus event never carries key material, so neither does this.
 */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "plugin/host_internal.h"
#include "plugin/wire.h"

/* keybroker/plugin.h's numbers. */
enum {
    S_PRE_FINISH = 0,
    S_POST_ROTATE = 1,
    S_PROVISIONED = 2,
    S_REVOKED = 3,
    S_ROTATION_FAILED = 4,
    S_KEY_DEACTIVATED = 5,
    S_KEY_DELETED = 6,
    S_ACCESS_DENIED = 7,
};

/* The hook of a bus event, or -1. */
static int s_hook_of(const struct kb_event *ev)
{
    switch (ev->kind) {
    case KB_EVENT_PROVISIONED:
        return S_PROVISIONED;
    case KB_EVENT_ROTATED:
    case KB_EVENT_ROLLED_BACK:
        return S_POST_ROTATE;
    case KB_EVENT_REVOKED:
        return S_REVOKED;
    case KB_EVENT_ROTATION_FAILED:
        return S_ROTATION_FAILED;
    case KB_EVENT_KEY_DEACTIVATED:
        return S_KEY_DEACTIVATED;
    case KB_EVENT_KEY_DELETED:
        return S_KEY_DELETED;
    case KB_EVENT_AUTHZ:
        return ev->result != NULL && strcmp(ev->result, "deny") == 0 ? S_ACCESS_DENIED : -1;
    default:
        return -1;
    }
}

static void s_add(struct json_object *o, const char *key, const char *value)
{
    if (value != NULL)
        json_object_object_add(o, key, json_object_new_string(value));
}

char *kb_plugin__event_json(const struct kb_event *ev)
{
    struct json_object *o = json_object_new_object(), *peer;
    const char *step = ev->step;
    const char *text;
    char *out = NULL;

    if (o == NULL)
        return NULL;
    if (ev->kind == KB_EVENT_ROTATED)
        step = "rotate";
    else if (ev->kind == KB_EVENT_ROLLED_BACK)
        step = "rollback";
    s_add(o, "tenant", ev->tenant);
    s_add(o, "arn", ev->arn);
    s_add(o, "version_id", ev->version_id);
    s_add(o, "previous_version_id", ev->previous_version_id);
    s_add(o, "rotation_id", ev->rotation_id);
    s_add(o, "step", step);
    s_add(o, "op", ev->op);
    /* What the audit stream (the syslog built-in's "audit" hook) tells apart; harmless for the
     * hooks, whose event members the helper reads by name. */
    s_add(o, "event", kb_event_kind_name(ev->kind));
    s_add(o, "result", ev->result);
    s_add(o, "plugin", ev->plugin);
    s_add(o, "service", ev->service);
    s_add(o, "operation", ev->operation);
    s_add(o, "code", ev->code != NULL && ev->code[0] != '\0' ? ev->code : NULL);
    s_add(o, "request_id",
          ev->request_id != NULL && ev->request_id[0] != '\0' ? ev->request_id : NULL);
    /* A rotated event's message is the superseded version, already in previous_version_id. */
    if (ev->kind != KB_EVENT_ROTATED && ev->kind != KB_EVENT_ROLLED_BACK)
        s_add(o, "message", ev->message != NULL && ev->message[0] != '\0' ? ev->message : NULL);
    json_object_object_add(o, "ts",
                           json_object_new_int64((int64_t)(ev->ts != 0 ? ev->ts : time(NULL))));
    if (ev->peer != NULL && (peer = json_object_new_object()) != NULL) {
        json_object_object_add(peer, "uid", json_object_new_int64((int64_t)ev->peer->uid));
        json_object_object_add(peer, "gid", json_object_new_int64((int64_t)ev->peer->gid));
        json_object_object_add(peer, "pid", json_object_new_int64((int64_t)ev->peer->pid));
        json_object_object_add(o, "peer", peer);
    }
    text =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (text != NULL)
        out = strdup(text);
    json_object_put(o);
    return out;
}

void kb_plugin__on_event(void *ctx, const struct kb_event *ev)
{
    struct kb_plugins *host = ctx;
    int hook = s_hook_of(ev);
    char *json = NULL;

    if (host->closing)
        return;
    for (size_t i = 0; i < host->nprocs; i++) {
        struct kb_plugin_proc *p = &host->procs[i];
        /* One message an event: as its hook when the plugin takes that hook, else (the syslog
         * built-in's audit stream) as "audit". */
        int as = hook >= 0 && (p->hooks & (1u << hook))      ? hook
                 : (p->hooks & (1u << KB_PLUGIN_WIRE_AUDIT)) ? KB_PLUGIN_WIRE_AUDIT
                                                             : -1;

        if (as < 0 || p->state == KB_PLUGIN_REFUSED)
            continue;
        if (json == NULL && (json = kb_plugin__event_json(ev)) == NULL)
            return; /* out of memory: the event is lost for the hooks, and only for them */
        kb_plugin__enqueue(p, (unsigned)as, ev, json, NULL);
    }
    free(json);
}

void kb_plugins_pre_finish(void *ctx, const struct kb_event *ev,
                           void (*done)(void *done_ctx, int rc, const char *why), void *done_ctx)
{
    struct kb_plugins *host = ctx;
    struct kb_plugin_gate *g = calloc(1, sizeof(*g));
    char *json = kb_plugin__event_json(ev);

    if (g == NULL || host->closing) {
        free(g);
        free(json);
        /* The rotation cannot learn what its hooks say: it waits for the next pass rather than
         * move AWSCURRENT unchecked. Answered at once, which the engine allows for exactly
         * this: its caller touches nothing after the call (rotate_key.c's s_pre_finish). */
        done(done_ctx, g == NULL ? KB_ENOMEM : KB_ECANCELED,
             g == NULL ? "out of memory asking the pre_finish hooks" : "the broker is stopping");
        return;
    }
    g->host = host;
    g->done = done;
    g->done_ctx = done_ctx;
    /* One count for this call itself, dropped below: no plugin's answer can finish the gate
     * while it is still being handed out. */
    g->pending = 1;
    for (size_t i = 0; i < host->nprocs; i++) {
        struct kb_plugin_proc *p = &host->procs[i];

        if (!(p->cfg->hooks & (1u << S_PRE_FINISH)))
            continue;
        g->pending++;
        if (json == NULL)
            kb_plugin__gate_answer(g, p, false, "out of memory");
        else
            kb_plugin__enqueue(p, S_PRE_FINISH, ev, json, g);
    }
    free(json);
    g->pending--;
    if (g->pending == 0) {
        g->next = host->ready;
        host->ready = g;
        kb_plugin__kick(host);
    }
}
