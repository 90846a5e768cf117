/*
 * helper.h - `keybrokerd --plugin-host`: the process that runs one configured plugin for the
 * broker, speaking wire.h on a connected socket.
 *
 * The broker starts one helper per plugin with the socket on fd 3, stdin and stdout /dev/null,
 * stderr its own, a scrubbed environment and (when the broker runs as root) an unprivileged uid.
 * The helper loads the plugin the first message names - a shared object through the loader, or
 * one of the built-ins, exec and syslog - then hands it one event at a time and answers each.
 * It never holds a secret or an AWS credential: nothing on its wire is key material.
 */
#ifndef KB_PLUGIN_HELPER_H
#define KB_PLUGIN_HELPER_H

/*
 * Runs the helper on fd, a connected stream socket, on a loop of its own until the broker closes
 * it. Takes ownership of fd (closed on return). Marks every descriptor from 3 up close-on-exec,
 * so that no command the exec built-in runs inherits one, and ignores SIGPIPE.
 * Returns 0 when the broker closed the socket (after the plugin's fini) or after a refused
 * "loaded"; non-zero after a fatal problem (fd is not a socket, a message it cannot parse or
 * that is not legal now, a line over KB_PLUGIN_WIRE_MAX, a loop error), which it has logged.
 */
int kb_plugin_helper_main(int fd);

#endif
