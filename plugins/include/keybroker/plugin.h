/*
 * keybroker/plugin.h - the only header a keybroker plugin sees (ABI 1.1).
 *
 * A plugin is a shared object that exports one symbol, keybroker_plugin_entry. keybrokerd never
 * loads it into itself: a helper process (`keybrokerd --plugin-host`, started by the broker, one
 * per configured plugin) loads it, and the broker sends that helper the events the plugin asked
 * for. The helper holds no AWS credential and no secret, runs as the configured unprivileged user
 * when the broker starts as root, and is killed and restarted when the plugin crashes, exits or
 * overruns its deadline. A plugin links against nothing of keybroker: everything it may call
 * comes in the host table handed to the entry function.
 *
 *   const struct kb_plugin_descriptor *keybroker_plugin_entry(const struct kb_plugin_host *host);
 *
 * The entry function is called once, right after the helper loaded the file; it returns a
 * pointer to a descriptor that stays valid until the plugin is unloaded (a static const one), or
 * NULL to refuse to load. Then init() (when not NULL) is called once, then on_event() once per
 * event, then fini() (when not NULL) before the helper exits normally. All calls come from one
 * thread; a plugin may block in on_event, but only until its deadline, after which the helper is
 * killed.
 *
 * Versions. KB_PLUGIN_ABI_MAJOR changes only when an existing field changes meaning, type or
 * place; the loader refuses a plugin whose major differs from its own. Within a major, the
 * structs below are append-only: a new minor only adds fields at the end of a struct (never in
 * the middle, never reorders, never removes), and every struct begins with its size so that each
 * side reads only what the other wrote:
 *   - the host fills struct kb_plugin_host and struct kb_plugin_event to its own size; a plugin
 *     built against a newer minor checks KB_PLUGIN_HAS(host_or_event, field) before it reads a
 *     field that came after the host's minor (it reads as absent otherwise);
 *   - the plugin sets descriptor.size = sizeof(struct kb_plugin_descriptor) of the header it was
 *     built with; the host reads only the fields that fit in that size, treats the missing ones
 *     as NULL/0, and ignores what it does not know past its own size.
 * Optional host functions (those not in the table, or newer than a plugin wants to depend on)
 * are looked up by name with host->lookup(ctx, name, min_minor); NULL means absent, and a plugin
 * must then do without. Handles (struct kb_plugin_ctx) are opaque: no plugin sees a host struct.
 *
 * What a plugin never gets: a secret access key, the broker's AWS credentials, the broker's
 * configuration or a pointer into the broker. Events name keys by their Secrets Manager version
 * id; the ARN is the secret's (or, for provisioned/revoked, the tenant's secret).
 *
 * History:
 *   1.0  descriptor {size, abi_major, abi_minor, name, version, hooks, init, fini, on_event};
 *        host {size, abi_major, abi_minor, log, config}; event up to peer_pid.
 *   1.1  descriptor += description; host += lookup; event += previous_version_id, rotation_id.
 */
#ifndef KEYBROKER_PLUGIN_H
#define KEYBROKER_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KB_PLUGIN_ABI_MAJOR 1
#define KB_PLUGIN_ABI_MINOR 1

/* The one symbol a plugin exports. */
#define KB_PLUGIN_ENTRY_SYMBOL "keybroker_plugin_entry"

/* Whether a struct that begins with its size (p->size) holds field. */
#define KB_PLUGIN_HAS(p, field)                                                                    \
    ((p)->size >= offsetof(__typeof__(*(p)), field) + sizeof((p)->field))

/* The hook points. The numbers are part of the ABI: new hooks are appended, never renumbered.
 *   PRE_FINISH       a rotation stored and probed its new key (AWSPENDING) and is about to move
 *                    AWSCURRENT to it: version_id is the new version, previous_version_id the one
 *                    AWSCURRENT leaves. A `required` plugin that fails (returns non-zero, crashes,
 *                    exits, overruns its deadline) aborts the rotation: AWSCURRENT stays where it
 *                    was and the new key stays AWSPENDING, resumed by the next pass.
 *   POST_ROTATE      AWSCURRENT moved (step "rotate"), or moved back (step "rollback").
 *   PROVISIONED      a tenant became ready (version_id: its AWSCURRENT version).
 *   REVOKED          a tenant's user and keys were deleted.
 *   ROTATION_FAILED  a rotation ended without moving AWSCURRENT (message says why).
 *   KEY_DEACTIVATED  the superseded key was made Inactive (version_id: its version).
 *   KEY_DELETED      the superseded key was deleted (version_id: its version).
 *   ACCESS_DENIED    a socket request was refused (peer, op, tenant when it named one).
 * Only PRE_FINISH waits for the plugin; every other hook is a notification after the fact. */
enum kb_plugin_hook {
    KB_PLUGIN_HOOK_PRE_FINISH = 0,
    KB_PLUGIN_HOOK_POST_ROTATE = 1,
    KB_PLUGIN_HOOK_PROVISIONED = 2,
    KB_PLUGIN_HOOK_REVOKED = 3,
    KB_PLUGIN_HOOK_ROTATION_FAILED = 4,
    KB_PLUGIN_HOOK_KEY_DEACTIVATED = 5,
    KB_PLUGIN_HOOK_KEY_DELETED = 6,
    KB_PLUGIN_HOOK_ACCESS_DENIED = 7,
};
#define KB_PLUGIN_HOOK_MASK(hook) (1u << (hook))

/* Log levels for host->log. */
enum kb_plugin_log_level {
    KB_PLUGIN_LOG_ERROR = 0,
    KB_PLUGIN_LOG_WARN = 1,
    KB_PLUGIN_LOG_INFO = 2,
    KB_PLUGIN_LOG_DEBUG = 3,
};

/* The host's handle for one loaded plugin: opaque, valid from the entry call until fini returns. */
struct kb_plugin_ctx;

/* What an optional host function is looked up as; cast it to the type its name documents. */
typedef void (*kb_plugin_fn)(void);

/* One event. Every pointer is borrowed until on_event returns; a string that does not apply is
 * NULL. Nothing here is ever key material. */
struct kb_plugin_event {
    uint32_t size;         /* bytes the host filled: check KB_PLUGIN_HAS for fields after 1.0's */
    uint32_t hook;         /* enum kb_plugin_hook */
    const char *hook_name; /* "pre_finish", "post_rotate", ... */
    const char *tenant;
    const char *arn;
    const char *version_id;
    const char *step;    /* the step the event is about ("move-current", "rotate", ...) */
    const char *op;      /* "rotate", "rollback", "provision", "revoke", "get", ... */
    const char *message; /* a human-readable detail, or NULL */
    int64_t ts;          /* seconds since the epoch */
    int32_t has_peer;    /* 1: the peer fields hold the socket peer (access_denied) */
    uint32_t peer_uid;
    uint32_t peer_gid;
    int32_t peer_pid;
    /* 1.1 */
    const char *previous_version_id; /* pre_finish, post_rotate: the version AWSCURRENT left */
    const char *rotation_id;         /* one id for every event of one rotation pass */
};

/* The host table, filled by the helper and valid until fini returns. */
struct kb_plugin_host {
    uint32_t size;
    uint16_t abi_major;
    uint16_t abi_minor;
    /* 1.0 */
    /* One line into the broker's log, attributed to the plugin. msg is copied. */
    void (*log)(struct kb_plugin_ctx *ctx, int level, const char *msg);
    /* A value of the plugin's "config" object in keybroker's configuration, as a string (numbers
     * and booleans as their JSON text), or NULL when absent. Borrowed until fini. */
    const char *(*config)(struct kb_plugin_ctx *ctx, const char *key);
    /* 1.1 */
    /* An optional host function by name, at least at ABI minor min_minor; NULL when the host has
     * none. Names known in 1.1:
     *   "config_json"  const char *(*)(struct kb_plugin_ctx *ctx): the whole "config" object as
     *                  JSON text ("{}" when none), borrowed until fini. */
    kb_plugin_fn (*lookup)(struct kb_plugin_ctx *ctx, const char *name, uint16_t min_minor);
};

/* What a plugin describes itself with. Set size to sizeof(struct kb_plugin_descriptor) and the
 * ABI fields to the KB_PLUGIN_ABI_* of the header you build with. */
struct kb_plugin_descriptor {
    uint32_t size;
    uint16_t abi_major;
    uint16_t abi_minor;
    /* 1.0 */
    const char *name;    /* short, for the log: [A-Za-z0-9._-] */
    const char *version; /* the plugin's own version, free text */
    uint32_t hooks;      /* KB_PLUGIN_HOOK_MASK bits of the hooks on_event handles */
    /* Called once before any event; *state is handed to every later call. Non-zero refuses to
     * load (the helper reports it and the broker does not retry until it restarts). May be
     * NULL. */
    int (*init)(struct kb_plugin_ctx *ctx, const struct kb_plugin_host *host, void **state);
    /* Called once when the helper shuts down normally. May be NULL. */
    void (*fini)(void *state);
    /* One event. Returns 0 when it handled it; non-zero is a failure, and at pre_finish a
     * required plugin's failure aborts the rotation. err (errlen bytes, NUL-terminated, already
     * "") may hold a one-line reason: it goes to the broker's log and the rotation_failed event,
     * so it must not hold a secret either. */
    int (*on_event)(void *state, const struct kb_plugin_event *ev, char *err, size_t errlen);
    /* 1.1 */
    const char *description; /* one line for `kbctl plugin check`, or NULL */
};

/* The size of each struct as ABI 1.0 defined it: what a 1.0 plugin's descriptor.size holds. */
#define KB_PLUGIN_DESCRIPTOR_SIZE_1_0 offsetof(struct kb_plugin_descriptor, description)
#define KB_PLUGIN_HOST_SIZE_1_0       offsetof(struct kb_plugin_host, lookup)
#define KB_PLUGIN_EVENT_SIZE_1_0      offsetof(struct kb_plugin_event, previous_version_id)

typedef const struct kb_plugin_descriptor *(*kb_plugin_entry_fn)(const struct kb_plugin_host *host);

/* A plugin defines this (and nothing else needs to be exported). */
const struct kb_plugin_descriptor *keybroker_plugin_entry(const struct kb_plugin_host *host);

#ifdef __cplusplus
}
#endif

#endif
