/*
 * broker.c - the broker object (broker.h): start-up, the loop, graceful shutdown.
 *
 * Start-up order: no core dumps, SIGPIPE ignored (a peer that hangs up must not kill the
 * daemon), the open-file limit raised to its hard limit (one descriptor per client), the config,
 * the AWS client, the event bus, the audit log (its first records: audit_open, start), the
 * engine, the socket; then the background reconcile of every tenant. Shutdown on SIGTERM/SIGINT:
 * stop accepting, close the connections, cancel the engine and the AWS calls, then close the
 * audit log (its last record: stop, after the canceled calls' own), and leave the loop once every
 * handle is closed, with nothing left allocated.
 * This file must never print or log a secret, nor keep one: it holds none.
 */
#include "broker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "audit/audit.h"
#include "config/config.h"
#include "engine/engine.h"
#include "events/events.h"
#include "plugin/host.h"
#include "common/err.h"
#include "common/log.h"
#include "common/secret.h"
#include "server/server.h"

/* -- process set-up ---------------------------------------------------------------------------- */

static void s_harden(void)
{
    struct rlimit rl = {0, 0};

    /* A core file would hold the heap, and with it a key between CreateAccessKey and its store. */
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    (void)setrlimit(RLIMIT_CORE, &rl);
    signal(SIGPIPE, SIG_IGN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* A refusal (or, allowed, a warning) about path: "<prefix><path>: <what> is not safe: <why>". */
static int s_unsafe(const char *prefix, const char *path, unsigned flags, const char *what,
                    const char *why)
{
    if ((flags & KB_BROKER_ALLOW_UNSAFE) != 0) {
        fprintf(stderr,
                "%s%s: warning: %s is not safe: %s (accepted: --allow-unsafe-permissions)\n",
                prefix, path, what, why);
        return 0;
    }
    fprintf(stderr,
            "%s%s: %s is not safe: %s (--allow-unsafe-permissions accepts it, for a test "
            "set-up)\n",
            prefix, path, what, why);
    return KB_ECONFIG;
}

int kb_broker_load_config(const char *path, const char *prefix, unsigned flags,
                          struct kb_config **out)
{
    struct kb_config_errors *errors = NULL;
    char why[256];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), rc;

    *out = NULL;
    if (fd < 0) {
        rc = -errno;
        fprintf(stderr, "%s%s: cannot read the configuration: %s\n", prefix, path, kb_strerror(rc));
        return rc;
    }
    /* The file checked is the file read: fstat of the descriptor, not the path again. */
    rc = fstat(fd, &st) != 0 ? -errno : 0;
    if (rc == 0 && !S_ISREG(st.st_mode)) {
        fprintf(stderr, "%s%s: the configuration is not a regular file\n", prefix, path);
        rc = KB_ECONFIG;
    }
    if (rc == 0 && kb_config_check_file_owner((uint32_t)st.st_uid, (uint32_t)st.st_mode,
                                              (uint32_t)geteuid(), why, sizeof(why)) != 0)
        rc = s_unsafe(prefix, path, flags, "the configuration file", why);
    if (rc == 0)
        rc = kb_config_load_fd(fd, NULL, out, &errors);
    close(fd);
    if (rc == 0 && (flags & KB_BROKER_CHECK_SOCKET) != 0 &&
        kb_config_check_socket_mode((*out)->broker.socket.mode, why, sizeof(why)) != 0 &&
        s_unsafe(prefix, path, flags, "broker.socket.mode", why) != 0) {
        kb_config_destroy(*out);
        *out = NULL;
        return KB_ECONFIG;
    }
    if (rc == 0 || (rc == KB_ECONFIG && errors == NULL))
        return rc;
    if (errors != NULL) {
        for (size_t i = 0; i < errors->count; i++)
            fprintf(stderr, "%s%s: %s\n", prefix, path, errors->lines[i]);
        kb_config_errors_destroy(errors);
    } else {
        fprintf(stderr, "%s%s: cannot read the configuration: %s\n", prefix, path, kb_strerror(rc));
    }
    return rc;
}

void kb_broker_scrub_env(void)
{
    static const char *const names[] = {"AWS_ACCESS_KEY_ID",
                                        "AWS_SECRET_ACCESS_KEY",
                                        "AWS_SESSION_TOKEN",
                                        "AWS_SECURITY_TOKEN",
                                        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                                        NULL};

    kb_secret_scrub_env(names);
}

/* -- shutdown ---------------------------------------------------------------------------------- */

static void on_signal_closed(uv_handle_t *h)
{
}

static void on_server_closed(void *ctx)
{
    struct kb_broker *d = ctx;

    d->server = NULL;
}

static void on_audit_closed(void *ctx)
{
    (void)ctx;
}

/* The audit log closes last, so that it records the calls the AWS client's close canceled. */
static void s_close_audit(struct kb_broker *d)
{
    if (d->audit == NULL)
        return;
    kb_audit_close(d->audit, on_audit_closed, d);
    d->audit = NULL;
}

static void on_plugins_closed(void *ctx)
{
    (void)ctx;
}

static void on_aws_closed(void *ctx)
{
    struct kb_broker *d = ctx;

    d->aws = NULL;
    s_close_audit(d);
}

static void s_stop(struct kb_broker *d, const char *why)
{
    if (d->stopping)
        return;
    d->stopping = true;
    kb_log(KB_LOG_INFO, "shutdown", "reason", why, NULL);
    if (d->signals_open) {
        uv_close((uv_handle_t *)&d->sigterm, on_signal_closed);
        uv_close((uv_handle_t *)&d->sigint, on_signal_closed);
        uv_close((uv_handle_t *)&d->sighup, on_signal_closed);
        uv_close((uv_handle_t *)&d->sigusr1, on_signal_closed);
        uv_close((uv_handle_t *)&d->sigusr2, on_signal_closed);
        d->signals_open = false;
    }
    /* The engine first: no engine callback runs after kb_engine_destroy, so the server may free
     * the operations it started; then the server (no new work; connections closed); then the AWS
     * client (calls in flight end with KB_ECANCELED, which ends the running jobs, and the engine
     * frees itself once its last job has ended). */
    if (d->engine != NULL) {
        /* A rotation that reaches pre_finish from now on does not ask the closing hooks. */
        kb_engine_set_pre_finish(d->engine, NULL, NULL);
        kb_engine_destroy(d->engine);
        d->engine = NULL;
    }
    /* The plugin helpers: a rotation waiting on pre_finish is answered "stopping" and ends. */
    kb_plugins_close(d->plugins, on_plugins_closed, d);
    d->plugins = NULL;
    if (d->server != NULL)
        kb_server_close(d->server, on_server_closed, d);
    if (d->aws != NULL)
        kb_aws_client_close(d->aws, on_aws_closed, d);
    else
        s_close_audit(d);
}

static void on_signal(uv_signal_t *h, int signum)
{
    s_stop(h->data, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* -- start-up ---------------------------------------------------------------------------------- */

static void on_start_provisioned(void *ctx, int err, const struct kb_engine_outcome *outcomes,
                                 size_t count)
{
    struct kb_broker *d = ctx;
    size_t ready = 0;
    char n[32], total[32];

    if (err == KB_ECANCELED || d->stopping)
        return;
    for (size_t i = 0; i < count; i++)
        ready += outcomes[i].state == KB_TENANT_READY;
    snprintf(n, sizeof(n), "%zu", ready);
    snprintf(total, sizeof(total), "%zu", count);
    kb_log(err == 0 ? KB_LOG_INFO : KB_LOG_WARN, "startup-provisioned", "ready", n, "tenants",
           total, NULL);
}

/* SIGHUP (the audit log reopened; reload, once the configuration can be re-read), SIGUSR1 and
 * SIGUSR2 would kill the daemon by default, leaving its socket behind: each is logged, and the
 * daemon goes on. */
static void on_other_signal(uv_signal_t *h, int signum)
{
    struct kb_broker *d = h->data;
    struct kb_audit_record r = {.event = "signal", .result = "reopen"};
    struct kb_audit_field f = {"signal", "SIGHUP", 0};

    if (signum == SIGHUP) {
        r.fields = &f;
        r.nfields = 1;
        kb_audit_record(d->audit, &r);
        kb_audit_reopen(d->audit);
        kb_log(KB_LOG_WARN, "signal", "signal", "SIGHUP", "message",
               d->audit != NULL ? "the audit log is reopened; reloading the configuration is not "
                                  "supported yet: nothing was re-read"
                                : "reloading the configuration is not supported yet: nothing was "
                                  "re-read",
               NULL);
    } else
        kb_log(KB_LOG_INFO, "signal", "signal", signum == SIGUSR1 ? "SIGUSR1" : "SIGUSR2",
               "message", "ignored", NULL);
}

static int s_signals(struct kb_broker *d)
{
    uv_signal_t *h[] = {&d->sigterm, &d->sigint, &d->sighup, &d->sigusr1, &d->sigusr2};
    int rc = 0;

    for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++) {
        rc = uv_signal_init(&d->loop, h[i]);
        if (rc != 0) {
            while (i-- > 0)
                uv_close((uv_handle_t *)h[i], on_signal_closed);
            return rc;
        }
        h[i]->data = d;
    }
    d->signals_open = true;
    rc = uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    if (rc == 0)
        rc = uv_signal_start(&d->sigint, on_signal, SIGINT);
    if (rc == 0)
        rc = uv_signal_start(&d->sighup, on_other_signal, SIGHUP);
    if (rc == 0)
        rc = uv_signal_start(&d->sigusr1, on_other_signal, SIGUSR1);
    if (rc == 0)
        rc = uv_signal_start(&d->sigusr2, on_other_signal, SIGUSR2);
    return rc;
}

static int s_admit_request(void *ctx, bool change, char *why, size_t why_len)
{
    struct kb_broker *d = ctx;

    return kb_audit_admit(d->audit, change ? KB_AUDIT_GATE_CHANGE : KB_AUDIT_GATE_REQUEST, why,
                          why_len);
}

static void s_audit_stats(void *ctx, struct kb_server_audit_stats *out)
{
    struct kb_broker *d = ctx;
    struct kb_audit_stats st;

    kb_audit_stats(d->audit, &st);
    *out = (struct kb_server_audit_stats){.written = st.written,
                                          .queued = st.queued,
                                          .lost = st.lost,
                                          .write_errors = st.write_errors,
                                          .unanchored = st.unanchored,
                                          .failing = st.failing};
}

static int s_admit_job(void *ctx, char *why, size_t why_len)
{
    struct kb_broker *d = ctx;

    return kb_audit_admit(d->audit, KB_AUDIT_GATE_CHANGE, why, why_len);
}

/* The audit log, when configured: before the engine and the socket, so that their first events
 * are recorded. */
static int s_start_audit(struct kb_broker *d, const struct kb_broker_options *opt)
{
    struct kb_audit_field f[2] = {{"version", opt->version != NULL ? opt->version : "0", 0},
                                  {"pid", NULL, (int64_t)getpid()}};
    struct kb_audit_record r = {.event = "start", .result = "ok", .fields = f, .nfields = 2};
    char why[768] = "";
    int rc;

    if (d->cfg->broker.audit.path == NULL)
        return 0;
    rc = kb_audit_open(&d->loop, &d->cfg->broker.audit, d->events, d->aws, &d->audit, why,
                       sizeof(why));
    if (rc != 0) {
        kb_log(KB_LOG_ERROR, "startup", "error", why[0] != '\0' ? why : kb_strerror(rc), NULL);
        return rc;
    }
    kb_audit_record(d->audit, &r);
    return 0;
}

/* The plugin helpers, when configured: after the audit log (their refusals are logged) and
 * before the engine (its first rotation may ask pre_finish). A plugin file the loader would
 * refuse stops the start. */
static int s_start_plugins(struct kb_broker *d)
{
    struct kb_plugins_options o = {.loop = &d->loop, .cfg = d->cfg, .bus = d->events};
    char why[768] = "";
    int rc = kb_plugins_start(&o, &d->plugins, why, sizeof(why));

    if (rc != 0)
        kb_log(KB_LOG_ERROR, "startup", "error", why[0] != '\0' ? why : kb_strerror(rc), NULL);
    return rc;
}

static int s_start(struct kb_broker *d, const struct kb_broker_options *opt)
{
    struct kb_aws_client_config acfg;
    struct kb_server_options sopt = {0};
    char err[512] = "";
    int rc;

    kb_engine_client_config(d->cfg, &acfg);
    rc = kb_aws_client_new(&d->loop, &acfg, &d->aws, err, sizeof(err));
    kb_broker_scrub_env();
    if (rc != 0) {
        kb_log(KB_LOG_ERROR, "startup", "error", err[0] != '\0' ? err : kb_strerror(rc), NULL);
        return rc;
    }
    rc = kb_events_new(&d->events);
    if (rc != 0) {
        kb_log(KB_LOG_ERROR, "startup", "error", kb_strerror(rc), NULL);
        return rc;
    }
    rc = s_start_audit(d, opt);
    if (rc != 0)
        return rc;
    rc = s_start_plugins(d);
    if (rc != 0)
        return rc;
    rc = kb_engine_new(&d->loop, d->cfg, d->aws, &d->engine);
    if (rc == 0) {
        kb_engine_set_events(d->engine, d->events);
        if (d->audit != NULL)
            kb_engine_set_gate(d->engine, s_admit_job, d);
        if (kb_plugins_has_pre_finish(d->plugins))
            kb_engine_set_pre_finish(d->engine, kb_plugins_pre_finish, d->plugins);
    }
    if (rc != 0) {
        kb_log(KB_LOG_ERROR, "startup", "error", kb_strerror(rc), NULL);
        return rc;
    }
    sopt.cfg = d->cfg;
    sopt.engine = d->engine;
    sopt.aws = d->aws;
    sopt.events = d->events;
    sopt.region = kb_aws_client_region(d->aws);
    sopt.socket_path = opt->socket_path;
    sopt.version = opt->version;
    sopt.use_listen_fds = true;
    if (d->audit != NULL) {
        sopt.admit = s_admit_request;
        sopt.audit_stats = s_audit_stats;
        sopt.admit_ctx = d;
    }
    rc = kb_server_new(&d->loop, &sopt, &d->server);
    if (rc == 0)
        rc = kb_server_listen(d->server, err, sizeof(err));
    if (rc != 0) {
        kb_log(KB_LOG_ERROR, "startup", "error", err[0] != '\0' ? err : kb_strerror(rc), NULL);
        return rc;
    }
    rc = s_signals(d);
    if (rc == 0 && opt->provision_at_start)
        rc = kb_engine_provision(d->engine, NULL, NULL, on_start_provisioned, d);
    if (rc == 0)
        kb_engine_start_background(d->engine); /* retries and the periodic reconcile */
    if (rc != 0)
        kb_log(KB_LOG_ERROR, "startup", "error", kb_strerror(rc), NULL);
    return rc;
}

int kb_broker_run(const struct kb_broker_options *opt)
{
    enum kb_log_level level;
    struct kb_broker d;
    int status = 0;

    memset(&d, 0, sizeof(d));
    s_harden();
    if (kb_broker_load_config(opt->config_path, "keybrokerd: ",
                              KB_BROKER_CHECK_SOCKET |
                                  (opt->allow_unsafe ? KB_BROKER_ALLOW_UNSAFE : 0u),
                              &d.cfg) != 0)
        return 2;
    kb_log_set_level(d.cfg->broker.log_level);
    if (opt->log_level != NULL && kb_log_parse_level(opt->log_level, &level) == 0)
        kb_log_set_level(level);
    if (uv_loop_init(&d.loop) != 0) {
        kb_config_destroy(d.cfg);
        return 1;
    }
    if (s_start(&d, opt) != 0) {
        status = 1;
        s_stop(&d, "start-up failed");
    } else {
        kb_log(KB_LOG_INFO, "started", "version", opt->version != NULL ? opt->version : "0",
               "socket", kb_server_path(d.server), NULL);
        if (!d.cfg->aws.deny_insecure_transport)
            kb_log(KB_LOG_WARN, "config", "warning",
                   "aws.deny_insecure_transport is false: keybroker does not manage the buckets' "
                   "policies, and nothing makes S3 refuse their requests without TLS",
                   NULL);
    }
    uv_run(&d.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&d.loop) != 0) {
        kb_log(KB_LOG_ERROR, "shutdown", "error", "handles left open", NULL);
        status = status != 0 ? status : 1;
    }
    kb_events_destroy(d.events);
    kb_config_destroy(d.cfg);
    if (status == 0)
        kb_log(KB_LOG_INFO, "stopped", NULL);
    return status;
}
