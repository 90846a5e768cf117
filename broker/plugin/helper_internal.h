/*
 * helper_internal.h - what the helper process's files share: the kinds of plugin it can run
 * (shared objects in loader.c, the built-ins in builtin_exec.c and builtin_syslog.c) and the one
 * way a kind answers an event.
 *
 * helper.c owns the wire and the current event; a kind only loads, handles one event at a time
 * and unloads. Nothing here ever holds a secret or an AWS credential.
 */
#ifndef KB_PLUGIN_HELPER_INTERNAL_H
#define KB_PLUGIN_HELPER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <keybroker/plugin.h>

struct json_object;
struct kb_helper;

/* The event being handled. Everything is borrowed from helper.c until the kind calls
 * kb_helper__done for it: copy what must outlive that. */
struct kb_helper_event {
    int64_t id;
    const struct kb_plugin_event *ev; /* every field filled from the message; size = sizeof */
    const char *json;                 /* the event object with "hook" added: one line, no '\n' */
    size_t json_len;
};

/* What "loaded" reports. The strings are borrowed from the kind's state until its unload. */
struct kb_helper_info {
    const char *plugin;
    const char *version;
    const char *description; /* or NULL */
    const char *abi;         /* "1.1" */
    uint32_t hooks;          /* KB_PLUGIN_HOOK_MASK bits */
};

/* A kind of plugin: a small vtable, since loading and running really differ per kind. */
struct kb_helper_kind {
    const char *name; /* "shared", "exec", "syslog": the load message's "kind" */
    /* Loads what msg (the whole load message, borrowed for the call) names. Returns 0 with
     * *impl and *info set, or non-zero with a reason in why (the plugin is refused: the helper
     * reports "plugin 'NAME' refused: <why>" and exits 0). */
    int (*load)(struct kb_helper *h, struct json_object *msg, void **impl,
                struct kb_helper_info *info, char *why, size_t whylen);
    /* Handles one event and calls kb_helper__done exactly once for it, before returning or
     * later from the loop. Never called while an event is in flight. */
    void (*event)(void *impl, const struct kb_helper_event *ev);
    /* fini() and free; called once. When the broker went away with an event in flight (exec),
     * it ends that event's work at once, and no kb_helper__done follows for it. */
    void (*unload)(void *impl);
};

extern const struct kb_helper_kind kb_helper__shared; /* loader.c */
extern const struct kb_helper_kind kb_helper__exec;   /* builtin_exec.c */
extern const struct kb_helper_kind kb_helper__syslog; /* builtin_syslog.c */

/* Answers the event in flight: ok with text as its "message" (NULL for none), or a failure with
 * text as its "error" (NULL reads "failed"). text is copied. The helper then reads the next. */
void kb_helper__done(struct kb_helper *h, bool ok, const char *text);

/* The helper's private loop, for kinds that run asynchronous work (exec). */
uv_loop_t *kb_helper__loop(struct kb_helper *h);

/* The plugin's configured name (the load message's "name"): for log lines. Valid until the
 * helper returns. */
const char *kb_helper__name(const struct kb_helper *h);

/* Members of a message. Each returns 1 when key is present with the right type (*out set),
 * 0 when it is absent or null (*out untouched), -1 when it has another type. */
int kb_helper__str(struct json_object *o, const char *key, const char **out);
int kb_helper__int(struct json_object *o, const char *key, int64_t *out);

#endif
