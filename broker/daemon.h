/*
 * daemon.h - keybrokerd's daemon mode: the config, the AWS client, the provisioning engine and the
 * client socket on one libuv loop, until SIGTERM or SIGINT.
 *
 * main.c parses the command line and calls kb_daemon_run() when neither --check-config nor
 * --provision-only is given. The daemon must never leave a core file (it would hold the heap, and
 * with it any key being provisioned: DESIGN.md I2): it turns core dumps off before anything else.
 */
#ifndef KB_DAEMON_H
#define KB_DAEMON_H

#include <stdbool.h>

struct kb_daemon_options {
    const char *config_path; /* required */
    const char *socket_path; /* NULL: broker.socket.path of the config */
    bool provision_at_start; /* reconcile every tenant in the background once serving */
    const char *log_level;   /* NULL: broker.log_level; else a valid level name */
    const char *version;     /* for status and logs; NULL: "0" */
};

/*
 * Runs the daemon. Returns the process exit status: 0 after a clean shutdown on SIGTERM/SIGINT;
 * 2 when the config cannot be loaded (every problem printed on stderr); 1 when the daemon cannot
 * start (no region, socket in use, ...; the reason is logged). Options are borrowed for the call.
 */
int kb_daemon_run(const struct kb_daemon_options *opt);

#endif
