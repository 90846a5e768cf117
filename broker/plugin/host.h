/*
 * host.h - the broker's side of the rotation hooks: one helper process per configured plugin
 * (`keybrokerd --plugin-host`, wire.h), the event-bus subscriber that hands each helper the
 * events its hooks name, and the pre_finish gate a rotation waits on.
 *
 * The broker never loads a plugin and never gives a helper anything secret: a helper is a fresh
 * exec of the broker's binary with an environment of PATH only, no inherited descriptor except
 * its socket (fd 3) and stderr, and, when the broker runs as root, broker.plugin_user's uid and
 * gid (no supplementary groups). Everything a helper says is checked; a helper that crashes,
 * exits, overruns a deadline or talks nonsense is killed and started again (with backoff), and
 * costs at most the events it was handling: the loop never waits for it.
 */
#ifndef KB_PLUGIN_HOST_H
#define KB_PLUGIN_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct kb_config;
struct kb_event;
struct kb_events;
struct kb_plugins;

struct kb_plugins_options {
    uv_loop_t *loop;             /* borrowed; must outlive the host */
    const struct kb_config *cfg; /* borrowed; broker.plugins, broker.plugin_user */
    struct kb_events *bus;       /* borrowed; subscribed until kb_plugins_close */
    const char *exe;             /* the helper's binary; NULL: /proc/self/exe (keybrokerd itself) */
};

/*
 * Checks every plugin's file (a shared plugin's .so, an exec plugin's argv[0]: owned by root or
 * the broker's euid, not group- or world-writable, nor any directory above it), resolves
 * broker.plugin_user when the broker is root, starts one helper per plugin and subscribes to
 * the bus. Returns 0 and *out (close with kb_plugins_close); with no plugin configured, 0 and
 * *out NULL. Otherwise a negative code and a sentence in why naming the plugin and the reason
 * ("plugin 'pager' refused: /x/pager.so is group-writable (mode 0664)").
 */
int kb_plugins_start(const struct kb_plugins_options *o, struct kb_plugins **out, char *why,
                     size_t whylen);

/* Whether any plugin is hooked on pre_finish (the broker then sets the engine's hook). */
bool kb_plugins_has_pre_finish(const struct kb_plugins *p);

/* The engine's pre_finish hook (engine.h kb_engine_pre_finish_fn; ctx is the struct
 * kb_plugins): hands ev to every plugin hooked on pre_finish, waits for each answer (or its
 * helper's death or deadline) and calls done(done_ctx, rc, why) once, always later: rc 0 unless
 * a required plugin failed, then KB_EFAILED-like non-zero and why names it. */
void kb_plugins_pre_finish(void *ctx, const struct kb_event *ev,
                           void (*done)(void *done_ctx, int rc, const char *why), void *done_ctx);

/* Ends the subscription, answers every waiting pre_finish with a failure ("the broker is
 * stopping"), closes each helper's socket (the helper calls fini and exits; one that has not
 * exited within a second is killed) and calls cb(ctx) once every handle is closed and the host
 * freed. p may be NULL (cb is not called then). */
void kb_plugins_close(struct kb_plugins *p, void (*cb)(void *ctx), void *ctx);

#endif
