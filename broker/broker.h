/*
 * broker.h - the broker object: keybrokerd's daemon mode. One struct kb_broker owns the loop, the
 * config, the AWS client, the event bus, the engine and the client socket server; it starts them
 * in that order and stops them in the reverse one, until SIGTERM or SIGINT.
 *
 * main.c parses the command line and calls kb_broker_run() when neither --check-config nor
 * --provision-only is given. The daemon must never leave a core file (it would hold the heap, and
 * with it any key being provisioned: DESIGN.md I2): it turns core dumps off before anything else.
 */
#ifndef KB_BROKER_H
#define KB_BROKER_H

#include <stdbool.h>
#include <uv.h>

struct kb_audit;
struct kb_aws_client;
struct kb_config;
struct kb_engine;
struct kb_events;
struct kb_plugins;
struct kb_server;

struct kb_broker_options {
    const char *config_path; /* required */
    const char *socket_path; /* NULL: broker.socket.path of the config */
    bool provision_at_start; /* reconcile every tenant in the background once serving */
    const char *log_level;   /* NULL: broker.log_level; else a valid level name */
    const char *version;     /* for status and logs; NULL: "0" */
    bool allow_unsafe;       /* --allow-unsafe-permissions: warn instead of refusing */
};

/* Everything the daemon runs, owned here. Built by kb_broker_run; the fields are for the broker's
 * own files (reload, notification and the audit log will hang off it). */
struct kb_broker {
    uv_loop_t loop;
    struct kb_config *cfg;      /* owned */
    struct kb_aws_client *aws;  /* owned; closed at stop */
    struct kb_events *events;   /* owned; freed after the loop has ended */
    struct kb_engine *engine;   /* owned; destroyed at stop */
    struct kb_server *server;   /* owned; closed at stop */
    struct kb_audit *audit;     /* owned; NULL without broker.audit.path; closed last */
    struct kb_plugins *plugins; /* owned; NULL without broker.plugins; closed after the engine */
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_signal_t sighup;  /* the audit log is reopened (logrotate); the configuration is not
                            re-read yet */
    uv_signal_t sigusr1; /* logged and ignored: no meaning yet */
    uv_signal_t sigusr2;
    bool signals_open;
    bool stopping;
};

/* kb_broker_load_config's flags. KB_BROKER_CHECK_SOCKET: the config serves a socket, so a
 * socket mode open to "other" is refused. KB_BROKER_ALLOW_UNSAFE: --allow-unsafe-permissions,
 * those refusals become warnings. */
#define KB_BROKER_CHECK_SOCKET 0x1u
#define KB_BROKER_ALLOW_UNSAFE 0x2u

/* Loads the config at path, printing every problem on stderr as "<prefix><path>: <line>". The
 * file must not be writable by group or others and must be owned by root or the broker's euid
 * (whoever can write it chooses the tenants, ACLs and endpoint); with KB_BROKER_CHECK_SOCKET,
 * broker.socket.mode must not grant "other" anything. KB_BROKER_ALLOW_UNSAFE turns those two
 * refusals into warnings (test set-ups). Returns 0 and *out (free with kb_config_destroy) or the
 * loader's error (KB_ECONFIG for a refusal). */
int kb_broker_load_config(const char *path, const char *prefix, unsigned flags,
                          struct kb_config **out);

/* Removes the broker's own credentials from its environment, values overwritten in place
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_SECURITY_TOKEN,
 * AWS_CONTAINER_AUTHORIZATION_TOKEN): call once the AWS client has read them. */
void kb_broker_scrub_env(void);

/*
 * Runs the daemon. Returns the process exit status: 0 after a clean shutdown on SIGTERM/SIGINT;
 * 2 when the config cannot be loaded (every problem printed on stderr); 1 when the daemon cannot
 * start (no region, socket in use, ...; the reason is logged). Options are borrowed for the call.
 */
int kb_broker_run(const struct kb_broker_options *opt);

#endif
