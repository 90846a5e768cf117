/*
 * main.c - keybrokerd, the command line.
 *
 *   keybrokerd [--config FILE] [--socket PATH] [--no-provision-at-start] [--foreground]
 *                                           the daemon: serves the client socket (broker.c)
 *   keybrokerd --check-config FILE          validate, print every problem, no AWS call at all
 *   keybrokerd --provision-only CONFIG [--tenant NAME]
 *   keybrokerd --revoke CONFIG --tenant NAME [--delete-bucket] [--force-delete-secret]
 *   keybrokerd --help | --version
 *   keybrokerd --plugin-host NAME           internal: the helper the daemon starts per plugin
 *   (every mode also takes --allow-unsafe-permissions and --log-level LEVEL)
 *
 * --provision-only and --revoke print one line per step event on stdout ("<tenant> <step>
 * <start|done|skip|error> [message]") and a summary line per tenant ("<tenant> summary <state>
 * [message]"), and exit 0 when every tenant reached its goal, 1 when any failed, 2 on a usage or
 * configuration error (before anything is sent to AWS). The structured log goes to stderr. The
 * daemon runs until SIGTERM/SIGINT (exit 0), 2 on a configuration error, 1 when it cannot start.
 * Nothing printed here is ever a secret.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <uv.h>

#include "aws/client.h"
#include "config/config.h"
#include "broker.h"
#include "engine/engine.h"
#include "common/err.h"
#include "common/log.h"
#include "plugin/helper.h"
#include "plugin/wire.h"

#define S_EXIT_OK     0
#define S_EXIT_FAILED 1
#define S_EXIT_USAGE  2

#define S_DEFAULT_CONFIG "/etc/keybroker/keybroker.json"

enum s_mode { S_NONE, S_CHECK, S_PROVISION, S_REVOKE };

struct s_args {
    enum s_mode mode;
    const char *config;
    const char *tenant;
    const char *log_level;
    struct kb_engine_revoke_opts revoke;
    /* daemon mode */
    const char *daemon_config;
    const char *socket;
    bool no_provision_at_start;
    bool daemon_flags; /* a daemon-only flag was given */
    bool allow_unsafe;
};

struct s_run {
    struct kb_config *cfg;
    struct kb_aws_client *client;
    struct kb_engine *engine;
    int exit_code;
};

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: keybrokerd [--config FILE] [--socket PATH] [--no-provision-at-start]\n"
            "                  [--foreground] [--log-level LEVEL] [--allow-unsafe-permissions]\n"
            "       keybrokerd --check-config FILE [--allow-unsafe-permissions]\n"
            "       keybrokerd --provision-only CONFIG [--tenant NAME] [--log-level LEVEL]\n"
            "       keybrokerd --revoke CONFIG --tenant NAME [--delete-bucket]\n"
            "                  [--force-delete-secret] [--log-level LEVEL]\n"
            "       keybrokerd --help | --version\n"
            "       keybrokerd --plugin-host NAME   (internal: the helper process the daemon\n"
            "                  starts for each of broker.plugins; not for use by hand)\n"
            "\n"
            "Without --check-config, --provision-only or --revoke, keybrokerd is the daemon: it "
            "serves the\n"
            "client socket (broker.socket) and reconciles every tenant it rotates in the "
            "background, and\n"
            "follows the others (\"rotate\": false: ListSecrets every broker.follow.interval, no "
            "IAM, S3 or STS\n"
            "call for them). SIGTERM or SIGINT stop it (exit 0). It always runs in the "
            "foreground (systemd\n"
            "Type=simple; --foreground is accepted for clarity) and uses the socket systemd "
            "passes (LISTEN_FDS)\n"
            "when there is one.\n"
            "SIGHUP is logged (the configuration is not re-read yet); SIGUSR1 and SIGUSR2 are "
            "logged and\n"
            "ignored. Closed standard descriptors are opened on /dev/null. The broker's own AWS "
            "credentials\n"
            "are removed from its environment (values overwritten) once read.\n"
            "  --config FILE           the configuration (default " S_DEFAULT_CONFIG ")\n"
            "  --socket PATH           listen on PATH instead of broker.socket.path\n"
            "  --no-provision-at-start serve only; provision when a client asks (kbctl "
            "provision)\n"
            "\n"
            "  --check-config FILE     validate FILE and print every problem as \"FILE: <path>: "
            "<message>\";\n"
            "                          exit 0 when valid, 2 when not (no AWS call is made)\n"
            "  --provision-only CONFIG provision (reconcile) every tenant of CONFIG, or only "
            "--tenant NAME:\n"
            "                          bucket, IAM user and inline policy, access key stored in "
            "Secrets\n"
            "                          Manager, readiness probe; drift is repaired, a second run "
            "writes\n"
            "                          nothing; exit 0 when all are ready, 1 when any failed, 2 "
            "on a\n"
            "                          configuration error. Tenants with \"rotate\": false are "
            "followed:\n"
            "                          skipped (their rotator provisions them), listed as such\n"
            "  --revoke CONFIG         revoke --tenant NAME: delete its keys, policy and user, "
            "schedule its\n"
            "                          secret's deletion (aws.recovery_window_days); the bucket "
            "is kept\n"
            "  --delete-bucket         with --revoke: also delete the bucket if it is empty\n"
            "  --force-delete-secret   with --revoke: delete the secret without a recovery window\n"
            "  --tenant NAME           the one tenant to work on\n"
            "  --log-level LEVEL       debug, info, warn or error (overrides broker.log_level)\n"
            "  --allow-unsafe-permissions\n"
            "                          accept, with a warning, a configuration file writable by "
            "group or\n"
            "                          others or owned by another user than root or the broker's, "
            "and a\n"
            "                          broker.socket.mode that grants \"other\" access (refused "
            "otherwise:\n"
            "                          for test set-ups only)\n"
            "\n"
            "Progress goes to stdout, one line per step: \"<tenant> <step> "
            "<start|done|skip|error> [message]\",\n"
            "then \"<tenant> summary <state> [message]\". The structured log (JSON lines) goes to "
            "stderr.\n"
            "The daemon logs the same JSON lines on stderr.\n");
}

static int s_parse(int argc, char **argv, struct s_args *a)
{
    static const struct option opts[] = {
        {"check-config", required_argument, NULL, 'c'},
        {"provision-only", required_argument, NULL, 'p'},
        {"revoke", required_argument, NULL, 'r'},
        {"tenant", required_argument, NULL, 't'},
        {"log-level", required_argument, NULL, 'l'},
        {"delete-bucket", no_argument, NULL, 'B'},
        {"force-delete-secret", no_argument, NULL, 'F'},
        {"config", required_argument, NULL, 'C'},
        {"socket", required_argument, NULL, 'S'},
        {"no-provision-at-start", no_argument, NULL, 'N'},
        {"foreground", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"allow-unsafe-permissions", no_argument, NULL, 'U'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(a, 0, sizeof(*a));
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        enum s_mode m = c == 'c' ? S_CHECK : c == 'p' ? S_PROVISION : c == 'r' ? S_REVOKE : S_NONE;

        if (m != S_NONE) {
            if (a->mode != S_NONE) {
                fprintf(stderr, "keybrokerd: choose one of --check-config, --provision-only, "
                                "--revoke\n");
                return S_EXIT_USAGE;
            }
            a->mode = m;
            a->config = optarg;
            continue;
        }
        switch (c) {
        case 't':
            a->tenant = optarg;
            break;
        case 'l':
            a->log_level = optarg;
            break;
        case 'B':
            a->revoke.delete_bucket = true;
            break;
        case 'F':
            a->revoke.force_delete_secret = true;
            break;
        case 'C':
            a->daemon_config = optarg;
            a->daemon_flags = true;
            break;
        case 'S':
            a->socket = optarg;
            a->daemon_flags = true;
            break;
        case 'N':
            a->no_provision_at_start = true;
            a->daemon_flags = true;
            break;
        case 'f':
            a->daemon_flags = true;
            break;
        case 'U':
            a->allow_unsafe = true;
            break;
        case 'h':
            s_usage(stdout);
            return -1;
        case 'V':
            printf("keybrokerd 0.1.0\n");
            return -1;
        default:
            s_usage(stderr);
            return S_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "keybrokerd: unexpected argument '%s'\n", argv[optind]);
        return S_EXIT_USAGE;
    }
    return 0;
}

static int s_check_args(const struct s_args *a)
{
    enum kb_log_level level;

    if (a->mode != S_NONE && a->daemon_flags) {
        fprintf(stderr, "keybrokerd: --config, --socket, --no-provision-at-start and --foreground "
                        "are daemon options\n");
        return S_EXIT_USAGE;
    }
    if (a->mode == S_NONE && a->tenant != NULL) {
        fprintf(stderr, "keybrokerd: --tenant goes with --provision-only or --revoke\n");
        return S_EXIT_USAGE;
    }
    if (a->log_level != NULL && kb_log_parse_level(a->log_level, &level) != 0) {
        fprintf(stderr, "keybrokerd: --log-level must be debug, info, warn or error\n");
        return S_EXIT_USAGE;
    }
    if (a->mode == S_REVOKE && a->tenant == NULL) {
        fprintf(stderr, "keybrokerd: --revoke needs --tenant NAME\n");
        return S_EXIT_USAGE;
    }
    if ((a->revoke.delete_bucket || a->revoke.force_delete_secret) && a->mode != S_REVOKE) {
        fprintf(stderr, "keybrokerd: --delete-bucket and --force-delete-secret go with --revoke\n");
        return S_EXIT_USAGE;
    }
    if (a->tenant != NULL && a->mode == S_CHECK) {
        fprintf(stderr, "keybrokerd: --tenant does not go with --check-config\n");
        return S_EXIT_USAGE;
    }
    return 0;
}

static void on_progress(void *ctx, const struct kb_engine_event *ev)
{
    (void)ctx;
    printf("%s %s %s%s%s\n", ev->tenant, ev->step, kb_engine_result_name(ev->result),
           ev->message[0] != '\0' ? " " : "", ev->message);
}

static void on_done(void *ctx, int err, const struct kb_engine_outcome *outcomes, size_t count)
{
    struct s_run *r = ctx;

    for (size_t i = 0; i < count; i++)
        printf("%s summary %s%s%s\n", outcomes[i].tenant, kb_tenant_state_name(outcomes[i].state),
               outcomes[i].message[0] != '\0' ? " " : "", outcomes[i].message);
    r->exit_code = err == 0 ? S_EXIT_OK : S_EXIT_FAILED;
    kb_engine_destroy(r->engine);
    r->engine = NULL;
    kb_aws_client_close(r->client, NULL, NULL);
    r->client = NULL;
}

static int s_start(uv_loop_t *loop, const struct s_args *a, struct s_run *r)
{
    struct kb_aws_client_config ccfg;
    char errbuf[256] = "";
    int rc;

    kb_engine_client_config(r->cfg, &ccfg);
    rc = kb_aws_client_new(loop, &ccfg, &r->client, errbuf, sizeof(errbuf));
    kb_broker_scrub_env();
    if (rc != 0) {
        fprintf(stderr, "%s: AWS client: %s\n", a->config,
                errbuf[0] != '\0' ? errbuf : kb_strerror(rc));
        return S_EXIT_USAGE;
    }
    rc = kb_engine_new(loop, r->cfg, r->client, &r->engine);
    if (rc == 0 && a->mode == S_PROVISION)
        rc = kb_engine_provision(r->engine, a->tenant, on_progress, on_done, r);
    else if (rc == 0)
        rc = kb_engine_revoke(r->engine, a->tenant, &a->revoke, on_progress, on_done, r);
    if (rc != 0) {
        if (rc == KB_ENOTFOUND)
            fprintf(stderr, "%s: no tenant named \"%s\"\n", a->config, a->tenant);
        else if (rc == KB_EDENIED)
            fprintf(stderr,
                    "%s: tenant \"%s\" is followed by this broker (tenants[].rotate is false): "
                    "its rotator provisions and revokes it\n",
                    a->config, a->tenant);
        else
            fprintf(stderr, "keybrokerd: %s\n", kb_strerror(rc));
        kb_engine_destroy(r->engine);
        r->engine = NULL;
        kb_aws_client_close(r->client, NULL, NULL);
        r->client = NULL;
        return rc == KB_ENOTFOUND ? S_EXIT_USAGE : S_EXIT_FAILED;
    }
    return 0;
}

static int s_work(const struct s_args *a)
{
    struct s_run r = {.exit_code = S_EXIT_FAILED};
    enum kb_log_level level;
    uv_loop_t loop;
    unsigned flags = (a->mode == S_CHECK ? KB_BROKER_CHECK_SOCKET : 0u) |
                     (a->allow_unsafe ? KB_BROKER_ALLOW_UNSAFE : 0u);
    int rc = kb_broker_load_config(a->config, "", flags, &r.cfg) == 0 ? 0 : S_EXIT_USAGE;

    if (rc != 0)
        return rc;
    if (a->mode == S_CHECK) {
        printf("%s: ok\n", a->config);
        kb_config_destroy(r.cfg);
        return S_EXIT_OK;
    }
    kb_log_set_level(r.cfg->broker.log_level);
    if (a->log_level != NULL && kb_log_parse_level(a->log_level, &level) == 0)
        kb_log_set_level(level);
    if (uv_loop_init(&loop) != 0) {
        kb_config_destroy(r.cfg);
        return S_EXIT_FAILED;
    }
    rc = s_start(&loop, a, &r);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        kb_log(KB_LOG_WARN, "shutdown", "message", "handles left open on the loop", NULL);
    kb_config_destroy(r.cfg);
    return rc != 0 ? rc : r.exit_code;
}

/* Started with fd 0, 1 or 2 closed, the first files the daemon opens would take them (libuv's
 * wake-up pipe, a socket), and the log written to fd 2 would go into them: each closed one is
 * opened on /dev/null first. */
static int s_stdio(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        int got = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);

        if (got != fd) {
            if (got >= 0)
                close(got);
            return -1;
        }
    }
    return 0;
}

/* keybrokerd --plugin-host NAME: the helper the broker starts for each plugin (plugin/host.c),
 * its socket on fd 3. Whatever else the exec left open is closed first, and the helper dies with
 * the broker: an orphan would keep running a plugin nobody answers for. */
static int s_plugin_host(void)
{
    (void)close_range(KB_PLUGIN_WIRE_FD + 1, ~0u, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1)
        return S_EXIT_FAILED;
    return kb_plugin_helper_main(KB_PLUGIN_WIRE_FD);
}

int main(int argc, char **argv)
{
    struct s_args a;
    int rc;

    if (s_stdio() != 0)
        return S_EXIT_FAILED;
    if (argc >= 2 && strcmp(argv[1], "--plugin-host") == 0)
        return s_plugin_host();
    /* Progress lines must reach a pipe as they happen (tests kill -9 mid-run). */
    setvbuf(stdout, NULL, _IOLBF, 0);
    rc = s_parse(argc, argv, &a);
    if (rc != 0)
        return rc < 0 ? S_EXIT_OK : rc;
    rc = s_check_args(&a);
    if (rc != 0)
        return rc;
    if (sodium_init() < 0) {
        fprintf(stderr, "keybrokerd: libsodium failed to initialise\n");
        return S_EXIT_FAILED;
    }
    if (a.mode == S_NONE) {
        struct kb_broker_options d = {
            .config_path = a.daemon_config != NULL ? a.daemon_config : S_DEFAULT_CONFIG,
            .socket_path = a.socket,
            .provision_at_start = !a.no_provision_at_start,
            .log_level = a.log_level,
            .version = "0.1.0",
            .allow_unsafe = a.allow_unsafe,
        };
        return kb_broker_run(&d);
    }
    return s_work(&a);
}
