/*
 * wire.h - what the broker and its plugin helpers (`keybrokerd --plugin-host`, one process per
 * configured plugin) say to each other over their socketpair, and the hook names both use.
 *
 * One JSON object per line (at most KB_PLUGIN_WIRE_MAX bytes with its '\n'), in order, on the
 * helper's fd 3. The helper's stdin and stdout are /dev/null; its stderr is the broker's (the
 * helper logs there with kb_log, one JSON line each). Nothing on this wire is ever key material:
 * the broker never has a reason to send one, and the helper has none to send.
 *
 * broker -> helper
 *   {"type":"load", "name":N, "kind":"shared"|"exec"|"syslog",
 *    "path":P,                 shared: absolute path of the .so
 *    "config":{...},           shared: the plugin's "config" object (may be absent)
 *    "argv":[A0, A1, ...],     exec: argv[0] absolute
 *    "facility":F,             syslog: "daemon", "auth", "authpriv", "user", "local0".."local7"
 *    "owner_uid":U,            besides root, the uid allowed to own the file and its directories
 *    "timeout_ms":T}           the plugin's deadline (exec: the command is killed at T)
 *       sent once, first. The helper answers "loaded".
 *   {"type":"event", "id":I, "hook":H, "event":{...}}
 *       one event for the plugin; the broker sends the next only after this one's "done" (or the
 *       helper's death). event holds the members that apply, each a string unless said:
 *       "tenant", "arn", "version_id", "previous_version_id", "rotation_id", "step", "op",
 *       "message", "ts" (integer), "peer" ({"uid","gid","pid"}, integers).
 *
 * helper -> broker
 *   {"type":"loaded", "ok":true, "plugin":NAME, "version":V, "abi":"1.1", "description":D,
 *    "hooks":[H...]}              shared: the descriptor's; exec/syslog: the built-in's
 *   {"type":"loaded", "ok":false, "error":"..."}
 *       a refused plugin (the loader's checks, the entry symbol, the ABI, init); the error names
 *       the plugin and the reason. The helper exits 0 after it.
 *   {"type":"done", "id":I, "ok":true, "message":M?}
 *   {"type":"done", "id":I, "ok":false, "error":"..."}
 *
 * The broker kills the helper (SIGKILL) when "loaded" or a "done" does not come within the
 * deadline (plus a grace of KB_PLUGIN_WIRE_GRACE_MS), and restarts it; a helper that exits or
 * sends a line it cannot parse is treated the same way.
 */
#ifndef KB_PLUGIN_WIRE_H
#define KB_PLUGIN_WIRE_H

#include <stdbool.h>
#include <stdint.h>

#define KB_PLUGIN_WIRE_MAX      65536
#define KB_PLUGIN_WIRE_FD       3
#define KB_PLUGIN_WIRE_GRACE_MS 1000

/* The number of hooks (enum kb_plugin_hook of keybroker/plugin.h runs 0..KB_PLUGIN_HOOKS-1). */
#define KB_PLUGIN_HOOKS 8
/* A hook of the wire only, after the ABI's: "audit", every event on the bus (also steps, AWS
 * calls, allowed requests and other plugins' outcomes), sent to the syslog built-in only. Its
 * event members also hold "event" (the kind: "step", "aws_call", ...), "result", "request_id",
 * "service", "operation" and "code" where they apply. */
#define KB_PLUGIN_WIRE_AUDIT 8

/* "pre_finish", "post_rotate", "provisioned", "revoked", "rotation_failed", "key_deactivated",
 * "key_deleted", "access_denied", "audit"; NULL past the end. Static strings. */
const char *kb_plugin_hook_name(unsigned hook);

/* The hook named name, or -1. */
int kb_plugin_hook_parse(const char *name);

#endif
