/*
 * host_internal.h - what host.c (the helper processes, their queues and the wire) and
 * host_events.c (the bus subscriber and the pre_finish gate) share. Not a public header.
 */
#ifndef KB_PLUGIN_HOST_INTERNAL_H
#define KB_PLUGIN_HOST_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "config/config.h"
#include "events/events.h"
#include "plugin/host.h"

/* Events waiting for one helper; more are dropped (a notification) or failed (pre_finish). */
#define KB_PLUGIN_QUEUE_MAX 1024

/* A pre_finish in progress: the plugins hooked on it answer one by one. */
struct kb_plugin_gate {
    struct kb_plugins *host;
    unsigned pending;
    bool failed;
    char why[768];
    void (*done)(void *done_ctx, int rc, const char *why);
    void *done_ctx;
    struct kb_plugin_gate *next; /* on the host's list of gates to answer */
};

/* One event for one plugin. */
struct kb_plugin_req {
    struct kb_plugin_req *next;
    uint64_t id;
    unsigned hook;
    char *line; /* the "event" message with its '\n'; owned */
    size_t len;
    char *tenant, *rotation_id;  /* the event's (owned; NULL when it had none), for the outcome */
    struct kb_plugin_gate *gate; /* pre_finish: the gate it answers; else NULL */
};

enum kb_plugin_state {
    KB_PLUGIN_DOWN,    /* no helper (starting soon, or closing) */
    KB_PLUGIN_LOADING, /* spawned, "load" sent, waiting for "loaded" */
    KB_PLUGIN_READY,
    KB_PLUGIN_REFUSED, /* the helper refused the plugin: not started again */
};

struct kb_plugin_proc {
    struct kb_plugins *host;
    const struct kb_plugin_config *cfg;
    enum kb_plugin_state state;
    unsigned hooks; /* the config's, narrowed to the plugin's own once loaded */
    uv_process_t proc;
    uv_pipe_t pipe;
    bool proc_open, pipe_open, exited;
    bool eof;            /* the helper closed its socket: it is killed unless it exits soon */
    uv_timer_t deadline; /* the request in flight, or the load */
    uv_timer_t restart;
    struct kb_plugin_req *head, *tail, *inflight;
    size_t queued;
    char *buf; /* KB_PLUGIN_WIRE_MAX bytes of what the helper said, up to a line */
    size_t len;
    const char *kill_reason; /* set when the broker killed the helper; static */
    uint64_t backoff_ms;
    uint64_t dropped;
    char why[512]; /* the refusal */
};

struct kb_plugins {
    uv_loop_t *loop;
    const struct kb_config *cfg;
    struct kb_events *bus;
    struct kb_events_sub *sub;
    struct kb_plugin_proc *procs;
    size_t nprocs;
    const char *exe;
    bool drop; /* started as root: helpers run as uid/gid */
    uid_t uid;
    gid_t gid;
    uint64_t next_id;
    uv_timer_t kick; /* pumps the queues and answers finished gates, always later */
    struct kb_plugin_gate *ready;
    bool closing;
    size_t handles; /* open handles; the host is freed when the last closes */
    void (*close_cb)(void *ctx);
    void *close_ctx;
};

/* host.c: queues the event (event_json: its JSON object text, borrowed for the call) at hook for
 * proc; gate may be NULL. A request that cannot be queued answers its gate (later) as failed. */
void kb_plugin__enqueue(struct kb_plugin_proc *proc, unsigned hook, const struct kb_event *ev,
                        const char *event_json, struct kb_plugin_gate *gate);
/* host.c: one of the gate's plugins answered (ok or not, and why). */
void kb_plugin__gate_answer(struct kb_plugin_gate *g, const struct kb_plugin_proc *proc, bool ok,
                            const char *why);
/* host.c: runs the queues and answers the finished gates on the next loop turn. */
void kb_plugin__kick(struct kb_plugins *host);
/* host_events.c: ev as the JSON object of an "event" message (caller frees), or NULL (out of
 * memory). */
char *kb_plugin__event_json(const struct kb_event *ev);
/* host_events.c: the bus subscriber. */
void kb_plugin__on_event(void *ctx, const struct kb_event *ev);

#endif
