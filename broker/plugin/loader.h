/*
 * loader.h - the plugin loader: the ownership and permission checks on a plugin file and its
 * directories, dlopen of what was checked, and the ABI checks on the descriptor it returns.
 *
 * Only the helper process (`keybrokerd --plugin-host`) and `kbctl plugin check` load a plugin;
 * the broker itself never calls kb_plugin_load. This module must never hold a secret or an AWS
 * credential, and never hands a plugin anything but struct kb_plugin_host and the plugin's own
 * "config" values.
 */
#ifndef KB_PLUGIN_LOADER_H
#define KB_PLUGIN_LOADER_H

#include <stddef.h>
#include <sys/types.h>

#include <keybroker/plugin.h>

struct json_object;

/*
 * Whether path may be loaded: an absolute path naming a regular file (not a symbolic link) owned
 * by root or owner_uid and writable by neither its group nor others, in a directory that is the
 * same, as is every directory above it up to "/" - except that a directory above the file's own
 * that is writable by others but sticky (/tmp) is allowed. Directories are read after resolving
 * symbolic links, so the chain checked is the chain the file is opened through.
 * Returns 0, or KB_EDENIED / KB_EINVAL with a sentence naming the path and the reason in why
 * ("/x/y.so is group-writable (mode 0664)").
 */
int kb_plugin_check_path(const char *path, uid_t owner_uid, char *why, size_t whylen);

/* One loaded plugin: the file mapped, the entry function called, its descriptor checked. */
struct kb_plugin_loaded;

/*
 * Checks path (kb_plugin_check_path), opens it without following a link, checks the open file
 * again (what is checked is what is loaded), dlopens it through /proc/self/fd, calls its entry
 * function with a host table and validates the descriptor it returns. label names the plugin in
 * the lines it logs through host->log; config is the plugin's "config" object (or NULL), copied.
 * init() is not called yet (kb_plugin_loaded_init). Every pointer is borrowed for the call.
 * Returns 0 and *out (caller frees with kb_plugin_unload), or a negative code with the reason in
 * why (without the plugin's name: "built for plugin ABI 2.x, this keybroker speaks 1.x").
 */
int kb_plugin_load(const char *label, const char *path, uid_t owner_uid, struct json_object *config,
                   struct kb_plugin_loaded **out, char *why, size_t whylen);

/* The validated descriptor: the bytes the plugin's descriptor.size covers, fields past it (a
 * 1.0 plugin's description) NULL/0; its size is the number of bytes read (the plugin's size, at
 * most ours). Its strings are the plugin's; valid until kb_plugin_unload. */
const struct kb_plugin_descriptor *kb_plugin_loaded_descriptor(const struct kb_plugin_loaded *p);

/* Calls the plugin's init() once (nothing when it has none). Returns 0, or KB_EDENIED with
 * "init returned N" in why: the plugin refused to load. */
int kb_plugin_loaded_init(struct kb_plugin_loaded *p, char *why, size_t whylen);

/* Calls on_event with err (errlen bytes) set to "" and returns what it returned; err is
 * NUL-terminated afterwards. Only after a successful kb_plugin_loaded_init. */
int kb_plugin_loaded_event(struct kb_plugin_loaded *p, const struct kb_plugin_event *ev, char *err,
                           size_t errlen);

/* fini() when init ran, then unmaps the plugin and frees p. NULL is fine. */
void kb_plugin_unload(struct kb_plugin_loaded *p);

#endif
