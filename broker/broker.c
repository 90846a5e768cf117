/*
 * broker.c - the broker object (broker.h): start-up, the loop, graceful shutdown.
 *
 * Start-up order: no core dumps, SIGPIPE ignored (a peer that hangs up must not kill the
 * daemon), the open-file limit raised to its hard limit (one descriptor per client), the config,
 * the AWS client, the event bus, the engine, the socket; then the background reconcile of every
 * tenant. Shutdown
 * on SIGTERM/SIGINT: stop accepting, close the connections, cancel the engine and the AWS calls,
 * and leave the loop once every handle is closed, with nothing left allocated.
 * This file must never print or log a secret, nor keep one: it holds none.
 */
#include "broker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <uv.h>

#include "config/config.h"
#include "engine/engine.h"
#include "events/events.h"
#include "common/err.h"
#include "common/log.h"
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

int kb_broker_load_config(const char *path, const char *prefix, struct kb_config **out)
{
    struct kb_config_errors *errors = NULL;
    int rc = kb_config_load_file(path, NULL, out, &errors);

    if (rc == 0)
        return 0;
    if (errors != NULL) {
        for (size_t i = 0; i < errors->count; i++)
            fprintf(stderr, "%s%s: %s\n", prefix, path, errors->lines[i]);
        kb_config_errors_destroy(errors);
    } else {
        fprintf(stderr, "%s%s: cannot read the configuration: %s\n", prefix, path, kb_strerror(rc));
    }
    return rc;
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

static void on_aws_closed(void *ctx)
{
    struct kb_broker *d = ctx;

    d->aws = NULL;
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
        d->signals_open = false;
    }
    /* The engine first: no engine callback runs after kb_engine_destroy, so the server may free
     * the operations it started; then the server (no new work; connections closed); then the AWS
     * client (calls in flight end with KB_ECANCELED, which ends the running jobs, and the engine
     * frees itself once its last job has ended). */
    if (d->engine != NULL) {
        kb_engine_destroy(d->engine);
        d->engine = NULL;
    }
    if (d->server != NULL)
        kb_server_close(d->server, on_server_closed, d);
    if (d->aws != NULL)
        kb_aws_client_close(d->aws, on_aws_closed, d);
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

static int s_signals(struct kb_broker *d)
{
    int rc = uv_signal_init(&d->loop, &d->sigterm);

    if (rc == 0)
        rc = uv_signal_init(&d->loop, &d->sigint);
    if (rc != 0)
        return rc;
    d->signals_open = true;
    d->sigterm.data = d->sigint.data = d;
    rc = uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    if (rc == 0)
        rc = uv_signal_start(&d->sigint, on_signal, SIGINT);
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
    if (rc != 0) {
        kb_log(KB_LOG_ERROR, "startup", "error", err[0] != '\0' ? err : kb_strerror(rc), NULL);
        return rc;
    }
    rc = kb_events_new(&d->events);
    if (rc == 0)
        rc = kb_engine_new(&d->loop, d->cfg, d->aws, &d->engine);
    if (rc == 0)
        kb_engine_set_events(d->engine, d->events);
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
    if (kb_broker_load_config(opt->config_path, "keybrokerd: ", &d.cfg) != 0)
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
