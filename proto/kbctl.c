/*
 * kbctl.c - the command-line client of keybrokerd: parses the command line, runs one command
 * through libkeybroker and prints the broker's answer as text or, with --json, as JSON.
 *
 * kbctl prints metadata only. The one exception, by design, is `credential-process`
 * (kbctl_credproc.c), which reads a secret from AWS with the caller's own identity and prints it
 * for the AWS SDKs. Nothing here logs, and error messages never carry a secret. `kbctl audit`
 * (kbctl_audit*.c) works on audit files, not with the broker, and parses its own options, as does
 * `kbctl plugin check` (kbctl_plugin.c), which loads a plugin in a helper process: kbctl itself,
 * run as `kbctl --plugin-host`, a hidden mode main() dispatches before anything else.
 */
#include "kbctl.h"
#include "kbctl_plugin.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#ifndef KB_VERSION
#define KB_VERSION "0"
#endif

#define S_TIMEOUT_MS       30000  /* connect, and each line of an answer */
#define S_ADMIN_TIMEOUT_MS 300000 /* provision, rotate, revoke: AWS work behind each line */

struct s_command {
    const char *name;
    const char *args;
    int min_args;
    int max_args; /* -1: any number */
    int timeout_ms;
    const char *summary;
    const char *details;
    int (*run)(const struct kbctl *k, int argc, char **argv);
    /* A command with options of its own gets the whole command line instead (run is NULL): it
     * parses, helps and checks arity itself and returns its exit code. */
    int (*own)(int argc, char **argv);
};

static const char s_exit_text[] =
    "Exit status:\n"
    "  0  success\n"
    "  1  the broker reported an error (its message is printed), or its answer was malformed\n"
    "  2  usage error\n"
    "  3  cannot connect to the broker (or it is served by a uid kbctl does not trust), timeout,\n"
    "     or the connection was lost\n"
    "  4  forbidden: you may not see that tenant (unknown tenants are reported this way too)\n"
    "     or do that\n"
    "  5  credential-process: AWS refused or could not be reached, or the secret is not a\n"
    "     key document\n";

static const char s_options_text[] =
    "Options (before or after the command):\n"
    "  --socket PATH   the broker's socket (default: $KEYBROKER_SOCKET, else\n"
    "                  " KB_CLIENT_DEFAULT_SOCKET ")\n"
    "  --json          print JSON instead of text, one object per line: the broker's result\n"
    "                  object (and provision's progress lines as sent; watch: each event)\n"
    "  --timeout SECS  how long to wait to connect and for each line of the broker's answer\n"
    "                  (default 30; provision, rotate and revoke: 300; watch waits for events\n"
    "                  without limit)\n"
    "  --server-uid UID\n"
    "                  the broker's user: a uid, or a user name (default:\n"
    "                  $" KB_CLIENT_SERVER_UID_ENV "). kbctl talks only to a socket served by\n"
    "                  root, by your own uid, by this user, or by the system user\n"
    "                  '" KB_CLIENT_SERVER_USER "' (uid 1-999) when it exists; it refuses any\n"
    "                  other uid (exit 3) before sending anything\n"
    "  --help          help; `kbctl COMMAND --help` for one command\n"
    "  --version       kbctl's version and protocol version\n"
    "\n"
    "Environment:\n"
    "  " KB_CLIENT_SOCKET_ENV "        the socket, when --socket is not given\n"
    "  " KB_CLIENT_SERVER_UID_ENV "    the broker's user, when --server-uid is not given; a value\n"
    "                          that is neither a uid nor a user name is an error (exit 2)\n"
    "  KEYBROKER_AWS_PROFILE   credential-process: the AWS profile to read the secret with\n";

/* -- helpers ---------------------------------------------------------------------------------- */

int kbctl_connect(const struct kbctl *k, struct kb_client **out)
{
    const char *path = k->socket != NULL ? k->socket : kb_client_socket_path();
    struct kb_client_error err = {0};
    uint32_t peer = 0;
    struct kb_client_options opt = {.size = sizeof(opt),
                                    .timeout_ms = k->timeout_ms,
                                    .server_uid = k->server_uid,
                                    .peer_uid = &peer,
                                    .error = &err};
    int rc = kb_client_connect_opts(path, &opt, out);

    if (rc == KB_CLIENT_EPEER) {
        fprintf(stderr,
                "kbctl: %s is served by uid %u, not root, your own uid or the broker's user: "
                "refusing it (if uid %u is the broker, pass --server-uid %u or set "
                "%s=%u)\n",
                path, (unsigned)peer, (unsigned)peer, (unsigned)peer, KB_CLIENT_SERVER_UID_ENV,
                (unsigned)peer);
        return KBCTL_EXIT_CONNECT;
    }
    if (rc == -EINVAL && err.message[0] != '\0') {
        fprintf(stderr, "kbctl: %s\n", err.message); /* a malformed $KEYBROKER_SERVER_UID */
        return KBCTL_EXIT_USAGE;
    }
    if (rc != 0) {
        fprintf(stderr, "kbctl: %s\n",
                err.message[0] != '\0' ? err.message : kb_client_strerror(rc));
        return KBCTL_EXIT_CONNECT;
    }
    kb_client_set_timeout(*out, k->timeout_ms);
    return KBCTL_EXIT_OK;
}

int kbctl_fail(struct kb_client *c, int rc, const char *what)
{
    const struct kb_client_error *e = kb_client_last_error(c);

    if (rc == KB_CLIENT_EREMOTE) {
        fprintf(stderr, "kbctl: %s: %s (%s)\n", what, e->message, e->code);
        return strcmp(e->code, "forbidden") == 0 ? KBCTL_EXIT_FORBIDDEN : KBCTL_EXIT_BROKER;
    }
    fprintf(stderr, "kbctl: %s: %s\n", what, e->message[0] ? e->message : kb_client_strerror(rc));
    if (rc == -EINVAL)
        return KBCTL_EXIT_USAGE;
    if (rc == KB_CLIENT_EPROTO || rc == -ENOMEM)
        return KBCTL_EXIT_BROKER;
    return KBCTL_EXIT_CONNECT;
}

static const char *s_or(const char *s, const char *fallback)
{
    return s != NULL && s[0] != '\0' ? s : fallback;
}

/* --json: any command but watch and credential-process, through kb_client_call. */
static void on_json_line(void *ctx, const char *line, size_t len)
{
    fwrite(line, 1, len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

static int s_json_call(const struct kbctl *k, const struct kb_client_request *req, const char *what,
                       char **result)
{
    struct kb_client *c = NULL;
    int rc = kbctl_connect(k, &c);

    if (rc != 0)
        return rc;
    rc = kb_client_call(c, req, on_json_line, NULL, result);
    if (rc == 0)
        printf("%s\n", *result);
    else
        rc = kbctl_fail(c, rc, what);
    kb_client_close(c);
    return rc;
}

/* Runs req with --json and releases the result. */
static int s_json_only(const struct kbctl *k, const struct kb_client_request *req, const char *what)
{
    char *result = NULL;
    int rc = s_json_call(k, req, what, &result);

    free(result);
    return rc;
}

/* -- get, list, status ------------------------------------------------------------------------ */

static int s_get(const struct kbctl *k, int argc, char **argv)
{
    struct kb_client_request req = {.op = "get", .tenant = argv[0]};
    struct kb_client_tenant *t = NULL;
    struct kb_client *c = NULL;
    int rc;

    if (k->json)
        return s_json_only(k, &req, "get");
    rc = kbctl_connect(k, &c);
    if (rc != 0)
        return rc;
    rc = kb_client_get(c, argv[0], &t);
    if (rc != 0) {
        rc = kbctl_fail(c, rc, "get");
    } else {
        printf("tenant         %s\narn            %s\nbucket         %s\nprefix         %s\n"
               "region         %s\nversion_id     %s\nlast_rotation  %s\nstate          %s\n",
               t->tenant, t->arn, t->bucket, s_or(t->prefix, "-"), t->region,
               s_or(t->version_id, "-"), s_or(t->last_rotation, "never"), t->state);
    }
    kb_client_tenant_free(t);
    kb_client_close(c);
    return rc;
}

static int s_width(int current, const char *s)
{
    int n = s != NULL ? (int)strlen(s) : 1;

    return n > current ? n : current;
}

static int s_list(const struct kbctl *k, int argc, char **argv)
{
    struct kb_client_request req = {.op = "list"};
    struct kb_client_list *l = NULL;
    struct kb_client *c = NULL;
    int rc, wt = 6, wb = 6;

    if (k->json)
        return s_json_only(k, &req, "list");
    rc = kbctl_connect(k, &c);
    if (rc != 0)
        return rc;
    rc = kb_client_list(c, &l);
    if (rc != 0) {
        rc = kbctl_fail(c, rc, "list");
    } else {
        for (size_t i = 0; i < l->count; i++) {
            wt = s_width(wt, l->tenants[i].tenant);
            wb = s_width(wb, l->tenants[i].bucket);
        }
        printf("%-*s  %-*s  %s\n", wt, "TENANT", wb, "BUCKET", "STATE");
        for (size_t i = 0; i < l->count; i++)
            printf("%-*s  %-*s  %s\n", wt, l->tenants[i].tenant, wb, l->tenants[i].bucket,
                   l->tenants[i].state);
    }
    kb_client_list_free(l);
    kb_client_close(c);
    return rc;
}

static void s_print_status(const struct kb_client_status *s)
{
    int wt = 6, ws = 5;

    printf("keybrokerd %s, up %llu s\n", s->version, (unsigned long long)s->uptime_seconds);
    for (size_t i = 0; i < s->count; i++) {
        wt = s_width(wt, s->tenants[i].tenant);
        ws = s_width(ws, s->tenants[i].state);
    }
    printf("%-*s  %-*s  %-9s  %s\n", wt, "TENANT", ws, "STATE", "PROBE", "MESSAGE");
    for (size_t i = 0; i < s->count; i++) {
        const struct kb_client_status_entry *e = &s->tenants[i];

        printf("%-*s  %-*s  %-9s  %s\n", wt, e->tenant, ws, e->state,
               e->probed_ok ? "probed-ok" : "-", s_or(e->message, "-"));
        /* An admin's status: the subscribers not yet on the current version. */
        if (e->has_subscribers && e->subscribers > 0)
            printf("  %zu subscriber%s, %zu not acknowledging the current version%s\n",
                   e->subscribers, e->subscribers == 1 ? "" : "s", e->nwaiting,
                   e->nwaiting > 0 ? ":" : "");
        for (size_t w = 0; e->has_subscribers && w < e->nwaiting; w++)
            printf("    uid %u pid %d  acknowledged %s\n", (unsigned)e->waiting[w].uid,
                   (int)e->waiting[w].pid, s_or(e->waiting[w].version_id, "nothing"));
    }
}

static int s_status(const struct kbctl *k, int argc, char **argv)
{
    struct kb_client_request req = {.op = "status", .tenant = argc > 0 ? argv[0] : NULL};
    struct kb_client_status *s = NULL;
    struct kb_client *c = NULL;
    int rc;

    if (k->json)
        return s_json_only(k, &req, "status");
    rc = kbctl_connect(k, &c);
    if (rc != 0)
        return rc;
    rc = kb_client_status(c, req.tenant, &s);
    if (rc != 0)
        rc = kbctl_fail(c, rc, "status");
    else
        s_print_status(s);
    kb_client_status_free(s);
    kb_client_close(c);
    return rc;
}

/* -- provision, rotate, revoke, metrics ------------------------------------------------------- */

static void on_progress(void *ctx, const struct kb_client_progress *p)
{
    if (p->message != NULL)
        printf("%s  %s  %s  %s\n", p->tenant, p->step, p->state, p->message);
    else
        printf("%s  %s  %s\n", p->tenant, p->step, p->state);
    fflush(stdout);
}

/* Whether a provision ended badly for a tenant: "error", or "degraded" (it failed; the last good
 * key is still served). */
static bool s_failed_state(const char *state)
{
    return state != NULL && (strcmp(state, "error") == 0 || strcmp(state, "degraded") == 0);
}

/* Prints each tenant's final state; exit 1 when one of them failed (s_failed_state). */
static int s_print_states(const struct kb_client_states *s)
{
    int rc = KBCTL_EXIT_OK;

    for (size_t i = 0; i < s->count; i++) {
        if (s->tenants[i].message != NULL)
            printf("%s  %s  %s\n", s->tenants[i].tenant, s->tenants[i].state,
                   s->tenants[i].message);
        else
            printf("%s  %s\n", s->tenants[i].tenant, s->tenants[i].state);
        if (s_failed_state(s->tenants[i].state))
            rc = KBCTL_EXIT_BROKER;
    }
    return rc;
}

/* The same rule for a --json provision result. */
static int s_json_states_rc(const char *result)
{
    struct json_object *o = json_tokener_parse(result), *arr = NULL, *st = NULL;
    int rc = KBCTL_EXIT_OK;

    if (o != NULL && json_object_object_get_ex(o, "tenants", &arr) &&
        json_object_is_type(arr, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            if (json_object_object_get_ex(json_object_array_get_idx(arr, i), "state", &st) &&
                s_failed_state(json_object_get_string(st)))
                rc = KBCTL_EXIT_BROKER;
        }
    }
    json_object_put(o);
    return rc;
}

static int s_provision_as(const struct kbctl *k, const char *tenant, bool adopt)
{
    struct kb_client_request req = {.op = "provision", .tenant = tenant, .adopt_bucket = adopt};
    struct kb_client_states *s = NULL;
    struct kb_client *c = NULL;
    char *result = NULL;
    int rc;

    if (k->json) {
        rc = s_json_call(k, &req, "provision", &result);
        if (rc == 0)
            rc = s_json_states_rc(result);
        free(result);
        return rc;
    }
    rc = kbctl_connect(k, &c);
    if (rc != 0)
        return rc;
    if (adopt)
        rc = kb_client_adopt(c, tenant, on_progress, NULL, &s);
    else
        rc = kb_client_provision(c, tenant, on_progress, NULL, &s);
    rc = rc != 0 ? kbctl_fail(c, rc, adopt ? "adopt" : "provision") : s_print_states(s);
    kb_client_states_free(s);
    kb_client_close(c);
    return rc;
}

static int s_provision(const struct kbctl *k, int argc, char **argv)
{
    return s_provision_as(k, argc > 0 ? argv[0] : NULL, false);
}

static int s_adopt(const struct kbctl *k, int argc, char **argv)
{
    return s_provision_as(k, argv[0], true);
}

static int s_rotate_revoke(const struct kbctl *k, const char *op, const char *tenant)
{
    struct kb_client_request req = {.op = op,
                                    .tenant = tenant,
                                    .delete_bucket = k->delete_bucket,
                                    .force_delete_secret = k->force_delete_secret};
    struct kb_client_states *s = NULL;
    struct kb_client *c = NULL;
    int rc;

    if (k->json)
        return s_json_only(k, &req, op);
    rc = kbctl_connect(k, &c);
    if (rc != 0)
        return rc;
    if (strcmp(op, "rotate") == 0)
        rc = kb_client_rotate(c, tenant, &s);
    else
        rc = kb_client_revoke(c, tenant, k->delete_bucket, k->force_delete_secret, &s);
    rc = rc != 0 ? kbctl_fail(c, rc, op) : s_print_states(s);
    kb_client_states_free(s);
    kb_client_close(c);
    return rc;
}

/* A line before rotate's answer: progress lines are printed as provision's are. */
static void on_rotate_line(void *ctx, const char *line, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *o = tok != NULL ? json_tokener_parse_ex(tok, line, (int)len) : NULL;
    struct json_object *v = NULL;
    struct kb_client_progress p = {0};
    const char **fields[] = {&p.tenant, &p.step, &p.state, &p.message};
    static const char *const names[] = {"tenant", "step", "state", "message"};

    if (o != NULL && json_object_object_get_ex(o, "event", &v) &&
        strcmp(json_object_get_string(v), "progress") == 0) {
        for (size_t i = 0; i < 4; i++) {
            if (json_object_object_get_ex(o, names[i], &v) &&
                json_object_is_type(v, json_type_string))
                *fields[i] = json_object_get_string(v);
        }
        if (p.tenant != NULL && p.step != NULL && p.state != NULL)
            on_progress(ctx, &p);
    }
    json_object_put(o);
    if (tok != NULL)
        json_tokener_free(tok);
}

/* rotate's answer {"tenant","state","message"?}, printed as a provision's states; exit 1 when the
 * rotation failed (degraded: the current key is still served). */
static int s_print_rotated(const char *result)
{
    struct json_object *o = json_tokener_parse(result), *v = NULL;
    const char *tenant = "?", *state = NULL, *message = NULL;
    int rc;

    if (o != NULL && json_object_object_get_ex(o, "tenant", &v))
        tenant = json_object_get_string(v);
    if (o != NULL && json_object_object_get_ex(o, "state", &v))
        state = json_object_get_string(v);
    if (o != NULL && json_object_object_get_ex(o, "message", &v))
        message = json_object_get_string(v);
    if (message != NULL)
        printf("%s  %s  %s\n", tenant, state != NULL ? state : "?", message);
    else
        printf("%s  %s\n", tenant, state != NULL ? state : "?");
    rc = state == NULL || s_failed_state(state) ? KBCTL_EXIT_BROKER : KBCTL_EXIT_OK;
    json_object_put(o);
    return rc;
}

static int s_rotate(const struct kbctl *k, int argc, char **argv)
{
    struct kb_client_request req = {.op = "rotate", .tenant = argv[0], .rollback = k->rollback};
    struct kb_client *c = NULL;
    char *result = NULL;
    int rc;

    if (k->json)
        return s_json_only(k, &req, "rotate");
    rc = kbctl_connect(k, &c);
    if (rc != 0)
        return rc;
    rc = kb_client_call(c, &req, on_rotate_line, NULL, &result);
    rc = rc != 0 ? kbctl_fail(c, rc, "rotate") : s_print_rotated(result);
    free(result);
    kb_client_close(c);
    return rc;
}

static int s_revoke(const struct kbctl *k, int argc, char **argv)
{
    return s_rotate_revoke(k, "revoke", argv[0]);
}

static int s_metrics(const struct kbctl *k, int argc, char **argv)
{
    struct kb_client_request req = {.op = "metrics"};
    struct kb_client *c = NULL;
    char *text = NULL;
    int rc;

    if (k->json)
        return s_json_only(k, &req, "metrics");
    rc = kbctl_connect(k, &c);
    if (rc != 0)
        return rc;
    rc = kb_client_metrics(c, &text);
    if (rc != 0)
        rc = kbctl_fail(c, rc, "metrics");
    else
        fputs(text, stdout);
    free(text);
    kb_client_close(c);
    return rc;
}

/* -- watch ------------------------------------------------------------------------------------ */

static struct json_object *s_jstr(const char *s)
{
    return s[0] != '\0' ? json_object_new_string(s) : NULL;
}

/* --json: the event as the broker sent it (the members this kbctl knows). */
static void s_print_event_json(const struct kb_client_watch_event *ev)
{
    struct json_object *o = json_object_new_object(), *arr;

    if (o == NULL)
        return;
    json_object_object_add(o, "event", json_object_new_string(ev->event));
    if (ev->epoch[0] != '\0') {
        json_object_object_add(o, "epoch", json_object_new_string(ev->epoch));
        json_object_object_add(o, "seq", json_object_new_int64((int64_t)ev->seq));
    }
    if (ev->kind == KB_CLIENT_EVENT_RESET || ev->kind == KB_CLIENT_EVENT_CLOSED) {
        json_object_object_add(o, "reason", json_object_new_string(ev->reason));
    } else {
        json_object_object_add(o, "tenant", json_object_new_string(ev->tenant));
        json_object_object_add(o, "arn", s_jstr(ev->arn));
        json_object_object_add(o, "version_id", s_jstr(ev->version_id));
        json_object_object_add(o, "ts", s_jstr(ev->ts));
        if (ev->message[0] != '\0')
            json_object_object_add(o, "message", json_object_new_string(ev->message));
    }
    if (ev->kind == KB_CLIENT_EVENT_RESET && (arr = json_object_new_array()) != NULL) {
        for (size_t i = 0; i < ev->count; i++) {
            const struct kb_client_watch_tenant *t = &ev->tenants[i];
            struct json_object *x = json_object_new_object();

            if (x == NULL)
                break;
            json_object_object_add(x, "tenant", json_object_new_string(t->tenant));
            json_object_object_add(x, "arn", s_jstr(t->arn));
            json_object_object_add(x, "version_id", s_jstr(t->version_id));
            json_object_object_add(x, "state", json_object_new_string(t->state));
            json_object_array_add(arr, x);
        }
        json_object_object_add(o, "tenants", arr);
    }
    puts(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

static void s_print_event(const struct kbctl *k, const struct kb_client_watch_event *ev)
{
    if (k->json) {
        s_print_event_json(ev);
    } else if (ev->kind == KB_CLIENT_EVENT_RESET) {
        printf("reset (%s)  %s:%llu\n", ev->reason, s_or(ev->epoch, "-"),
               (unsigned long long)ev->seq);
        for (size_t i = 0; i < ev->count; i++)
            printf("  %s  %s  %s  %s\n", ev->tenants[i].tenant, ev->tenants[i].state,
                   s_or(ev->tenants[i].arn, "-"), s_or(ev->tenants[i].version_id, "-"));
    } else if (ev->kind != KB_CLIENT_EVENT_CLOSED) {
        printf("%s  %s  %s  %s  %s  %s:%llu\n", s_or(ev->ts, "-"), ev->event, ev->tenant,
               s_or(ev->arn, "-"), s_or(ev->version_id, "-"), s_or(ev->epoch, "-"),
               (unsigned long long)ev->seq);
    }
    fflush(stdout);
}

/* --ack: the version each printed event (or reset snapshot) names is acknowledged as in use. */
static void s_ack(struct kb_client_watch *w, const struct kb_client_watch_event *ev)
{
    if (ev->kind == KB_CLIENT_EVENT_RESET) {
        for (size_t i = 0; i < ev->count; i++) {
            if (ev->tenants[i].version_id[0] != '\0')
                (void)kb_client_watch_ack(w, ev->tenants[i].tenant, ev->tenants[i].version_id);
        }
    } else if (strcmp(ev->event, "rotated") == 0 || strcmp(ev->event, "rolled_back") == 0 ||
               strcmp(ev->event, "provisioned") == 0) {
        if (ev->version_id[0] != '\0')
            (void)kb_client_watch_ack(w, ev->tenant, ev->version_id);
    }
}

/* A failed open or read of the watch: the message and kbctl's exit code. */
static int s_watch_fail(int rc, const struct kb_client_error *e, const char *path, uint32_t peer)
{
    if (rc == KB_CLIENT_EPEER) {
        fprintf(stderr,
                "kbctl: %s is served by uid %u, not root, your own uid or the broker's user: "
                "refusing it (if uid %u is the broker, pass --server-uid %u or set %s=%u)\n",
                path, (unsigned)peer, (unsigned)peer, (unsigned)peer, KB_CLIENT_SERVER_UID_ENV,
                (unsigned)peer);
        return KBCTL_EXIT_CONNECT;
    }
    if (rc == KB_CLIENT_EREMOTE) {
        fprintf(stderr, "kbctl: watch: %s (%s)\n", e->message, e->code);
        return strcmp(e->code, "forbidden") == 0 ? KBCTL_EXIT_FORBIDDEN : KBCTL_EXIT_BROKER;
    }
    fprintf(stderr, "kbctl: watch: %s\n", e->message[0] ? e->message : kb_client_strerror(rc));
    if (rc == -EINVAL)
        return KBCTL_EXIT_USAGE;
    return rc == KB_CLIENT_EPROTO || rc == -ENOMEM ? KBCTL_EXIT_BROKER : KBCTL_EXIT_CONNECT;
}

static int s_watch(const struct kbctl *k, int argc, char **argv)
{
    const char *path = k->socket != NULL ? k->socket : kb_client_socket_path();
    struct kb_client_error err = {0};
    uint32_t peer = 0;
    struct kb_client_options copt = {.size = sizeof(copt),
                                     .timeout_ms = k->timeout_ms,
                                     .server_uid = k->server_uid,
                                     .peer_uid = &peer};
    struct kb_client_watch_options wopt = {.size = sizeof(wopt),
                                           .path = path,
                                           .connect = &copt,
                                           .tenants = (const char *const *)argv,
                                           .count = (size_t)argc};
    struct kb_client_watch_event ev = {.size = sizeof(ev)};
    struct kb_client_watch *w = NULL;
    int rc = kb_client_watch_open(&wopt, &w, &err);

    if (rc != 0)
        return s_watch_fail(rc, &err, path, peer);
    while ((rc = kb_client_watch_read(w, -1, &ev)) == 0) {
        s_print_event(k, &ev);
        if (k->ack)
            s_ack(w, &ev);
        if (ev.kind == KB_CLIENT_EVENT_CLOSED) {
            /* the broker withdrew access: final, like a forbidden answer */
            fprintf(stderr, "kbctl: watch: the broker ended the subscription: %s\n", ev.reason);
            kb_client_watch_close(w);
            return KBCTL_EXIT_FORBIDDEN;
        }
    }
    rc = s_watch_fail(rc, kb_client_watch_last_error(w), path, peer);
    kb_client_watch_close(w);
    return rc;
}

static int s_credproc(const struct kbctl *k, int argc, char **argv)
{
    return kbctl_credential_process(k, argv[0]);
}

/* -- the command table and the command line --------------------------------------------------- */

static const struct s_command s_commands[] = {
    {"get", "TENANT", 1, 1, S_TIMEOUT_MS, "what an application needs to read TENANT's secret",
     "Prints what an application needs to reach TENANT's S3 data: the ARN of the Secrets\n"
     "Manager secret that holds its access key, the bucket, the key prefix, the region, the\n"
     "secret's current version and the last rotation. Never the secret itself: read that from\n"
     "Secrets Manager with your own AWS identity, or use `kbctl credential-process`. The broker\n"
     "answers only if your uid/gids may see TENANT.\n",
     s_get, NULL},
    {"list", "", 0, 0, S_TIMEOUT_MS, "the tenants you may see",
     "Lists the tenants you may see, with their bucket and state.\n", s_list, NULL},
    {"status", "[TENANT]", 0, 1, S_TIMEOUT_MS, "the broker's and the tenants' state",
     "Prints the broker's version and uptime, then each tenant you may see (or only TENANT)\n"
     "with its state (ready, provisioning, pending, degraded, error, revoking, revoked),\n"
     "whether the readiness probe of its current key succeeded (probed-ok) and the last\n"
     "message. degraded: the last provision failed, the last good key is still served.\n"
     "For an admin, also each tenant's watch subscribers and those (uid, pid) that have not\n"
     "acknowledged its current version yet.\n",
     s_status, NULL},
    {"provision", "[TENANT]", 0, 1, S_ADMIN_TIMEOUT_MS,
     "(admin) create or repair the AWS resources of TENANT or all",
     "(admin) Creates or repairs the AWS resources of TENANT, or of every configured tenant:\n"
     "bucket, IAM user and policy, access key and secret. Progress lines (tenant, step, state)\n"
     "are printed as they arrive, then one line per tenant with its final state. Exits 1 when\n"
     "a tenant ends in state error or degraded (its provision failed).\n",
     s_provision, NULL},
    {"adopt", "TENANT", 1, 1, S_ADMIN_TIMEOUT_MS,
     "(admin) take TENANT's existing, untagged bucket under management",
     "(admin) Provisions TENANT like `provision`, and where its bucket already exists without\n"
     "keybroker's tags (a bucket you created yourself), takes it under management instead of\n"
     "refusing it: tags it (its own tags are kept), then sets Block Public Access, default\n"
     "encryption, BucketOwnerEnforced and keybroker's bucket policy (which replaces the\n"
     "bucket's). The broker logs the adoption with your uid and announces it. A bucket that\n"
     "carries another tenant's keybroker tags is still refused. Adopt only buckets you own.\n",
     s_adopt, NULL},
    {"rotate", "TENANT", 1, 1, S_ADMIN_TIMEOUT_MS,
     "(admin) rotate TENANT's access key now, printing progress as it happens",
     "(admin) Asks the broker to rotate TENANT's access key now: prints each step as it happens\n"
     "(TENANT  STEP  STATE  [MESSAGE]), then the tenant's state. Exit 1 when the rotation failed\n"
     "or was refused (degraded: the current key is still served) or when this broker is not the\n"
     "tenant's rotator (not_supported).\n"
     "  --rollback  move AWSCURRENT back to the superseded version instead, while its key\n"
     "              still exists (reactivated when it was deactivated, probed first); refused,\n"
     "              saying why, once it was deleted (aws.retire over) or mid-rotation\n",
     s_rotate, NULL},
    {"revoke", "TENANT", 1, 1, S_ADMIN_TIMEOUT_MS, "(admin) deprovision TENANT",
     "(admin) Deprovisions TENANT: deletes its access keys, inline policy and IAM user and\n"
     "schedules its secret for deletion with a recovery window.\n"
     "  --delete-bucket        also delete the tenant's bucket if it is empty\n"
     "  --force-delete-secret  delete the secret without a recovery window\n",
     s_revoke, NULL},
    {"watch", "[TENANT...]", 0, -1, S_TIMEOUT_MS, "print events as they happen",
     "Subscribes to the events (provisioned, rotated, rolled_back, rotation_failed,\n"
     "key_deactivated, key_deleted, revoked) of the named tenants, or of every tenant you may\n"
     "see, and prints one line per event: time, event, tenant, secret ARN, version id,\n"
     "epoch:seq. When the connection drops it reconnects by itself (backoff 0.1 s doubling to\n"
     "5 s) and resumes where it stopped, so no event is lost or printed twice; when the broker\n"
     "cannot resume (it restarted) it prints `reset (REASON) EPOCH:SEQ` and each tenant's\n"
     "current state, ARN and version. Runs until interrupted; exits 3 after 60 s without a\n"
     "connection, 4 when the broker withdraws your access to a watched tenant.\n"
     "  --ack  acknowledge each version printed (provisioned, rotated, rolled_back, reset) as\n"
     "         the one in use: when every subscriber of a tenant has, the broker deactivates the\n"
     "         superseded key before its overlap window ends. Use it only when whatever reads\n"
     "         this output switches to the new credentials before reading the next line.\n",
     s_watch, NULL},
    {"metrics", "", 0, 0, S_TIMEOUT_MS, "(admin) the broker's metrics",
     "(admin) Prints the broker's metrics in the Prometheus text format.\n", s_metrics, NULL},
    {"credential-process", "TENANT", 1, 1, S_TIMEOUT_MS,
     "print TENANT's AWS credentials for credential_process",
     "For the AWS SDKs' and CLI's credential_process setting. Asks the broker for TENANT's\n"
     "secret ARN (as `get` does), reads the secret from AWS Secrets Manager with YOUR OWN AWS\n"
     "credentials (environment, ~/.aws files, container or instance role), in the tenant's\n"
     "region unless $AWS_REGION is set, and prints on stdout\n"
     "  {\"Version\":1,\"AccessKeyId\":\"...\",\"SecretAccessKey\":\"...\"}\n"
     "(with SessionToken and Expiration when the secret has them). This is the only kbctl\n"
     "command that prints a secret. --json changes nothing here. $KEYBROKER_AWS_PROFILE names\n"
     "the profile kbctl reads with when it must not be $AWS_PROFILE (which the AWS CLI sets to\n"
     "the profile that runs this command); kbctl refuses to run itself recursively. Example\n"
     "~/.aws/config:\n"
     "  [profile billing]\n"
     "  credential_process = env KEYBROKER_AWS_PROFILE=me kbctl credential-process billing\n",
     s_credproc, NULL},
    {"plugin", "check FILE.so", 0, 0, 0,
     "load a rotation-hook plugin, replay sample events (`kbctl plugin --help`)", NULL, NULL,
     kbctl_plugin},
};
#define S_NCOMMANDS (sizeof(s_commands) / sizeof(s_commands[0]))

static void s_usage(FILE *out)
{
    fprintf(out, "Usage: kbctl [OPTIONS] COMMAND [ARGS]\n\n"
                 "Asks keybrokerd, over its Unix socket, for what an application needs to reach "
                 "its S3 data.\n\nCommands:\n");
    for (size_t i = 0; i < S_NCOMMANDS; i++) {
        char both[64];

        if (s_commands[i].own == NULL) {
            fprintf(out, "  %-19s %-11s %s\n", s_commands[i].name, s_commands[i].args,
                    s_commands[i].summary);
            continue;
        }
        snprintf(both, sizeof(both), "%s %s", s_commands[i].name, s_commands[i].args);
        fprintf(out, "  %-31s %s\n", both, s_commands[i].summary);
    }
    fprintf(out, "  %-19s %-11s %s\n", "audit init", "--state ..",
            "make a new audit chain's key file and state (no broker needed)");
    fprintf(out, "  %-19s %-11s %s\n", "audit verify", "FILE...",
            "check audit log files; names the first bad line (`kbctl audit --help`)");
    fprintf(out, "  %-31s %s\n", "--plugin-host",
            "(internal) the plugin helper `plugin check` starts; not for use by hand");
    fprintf(out, "\n%s\n%s", s_options_text, s_exit_text);
}

static void s_command_help(const struct s_command *cmd)
{
    const char *flags = strcmp(cmd->name, "revoke") == 0
                            ? " [--delete-bucket] [--force-delete-secret]"
                        : strcmp(cmd->name, "rotate") == 0 ? " [--rollback]"
                        : strcmp(cmd->name, "watch") == 0  ? " [--ack]"
                                                           : "";

    printf("Usage: kbctl [OPTIONS] %s%s%s%s\n\n%s\n%s\n%s", cmd->name, cmd->args[0] ? " " : "",
           cmd->args, flags, cmd->details, s_options_text, s_exit_text);
}

static int s_parse_timeout(const char *arg, int *ms)
{
    char *end = NULL;
    long secs;

    errno = 0;
    secs = strtol(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || secs <= 0 || secs > 86400) {
        fprintf(stderr, "kbctl: --timeout wants whole seconds, 1 to 86400\n");
        return -1;
    }
    *ms = (int)secs * 1000;
    return 0;
}

enum {
    S_OPT_SOCKET = 256,
    S_OPT_JSON,
    S_OPT_TIMEOUT,
    S_OPT_VERSION,
    S_OPT_DELETE,
    S_OPT_FORCE,
    S_OPT_SERVER_UID,
    S_OPT_ROLLBACK,
    S_OPT_ACK
};

static const struct option s_options[] = {
    {"socket", required_argument, NULL, S_OPT_SOCKET},
    {"json", no_argument, NULL, S_OPT_JSON},
    {"timeout", required_argument, NULL, S_OPT_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, S_OPT_VERSION},
    {"delete-bucket", no_argument, NULL, S_OPT_DELETE},
    {"force-delete-secret", no_argument, NULL, S_OPT_FORCE},
    {"server-uid", required_argument, NULL, S_OPT_SERVER_UID},
    {"rollback", no_argument, NULL, S_OPT_ROLLBACK},
    {"ack", no_argument, NULL, S_OPT_ACK},
    {NULL, 0, NULL, 0},
};

/* The command word: the first word that is neither an option nor the value of one, or NULL.
 * `audit` and the commands with an `own` runner parse their own options, so kbctl.c hands them
 * the whole command line before its own parser sees it. */
static const char *s_command_word(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--") == 0)
            return i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-')
            return a;
        if (strcmp(a, "--socket") == 0 || strcmp(a, "--timeout") == 0 ||
            strcmp(a, "--server-uid") == 0)
            i++; /* its value */
    }
    return NULL;
}

/* Options may come anywhere on the line (GNU getopt permutes); "--" ends them, for a tenant
 * name that starts with '-'. Returns -1 on a usage error. */
static int s_parse_options(int argc, char **argv, struct kbctl *k, bool *help, bool *version)
{
    uint32_t uid;
    int opt;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", s_options, NULL)) != -1) {
        switch (opt) {
        case S_OPT_SOCKET:
            k->socket = optarg;
            break;
        case S_OPT_JSON:
            k->json = true;
            break;
        case S_OPT_TIMEOUT:
            if (s_parse_timeout(optarg, &k->timeout_ms) != 0)
                return -1;
            break;
        case 'h':
            *help = true;
            break;
        case S_OPT_VERSION:
            *version = true;
            break;
        case S_OPT_DELETE:
            k->delete_bucket = true;
            break;
        case S_OPT_FORCE:
            k->force_delete_secret = true;
            break;
        case S_OPT_ROLLBACK:
            k->rollback = true;
            break;
        case S_OPT_ACK:
            k->ack = true;
            break;
        case S_OPT_SERVER_UID:
            if (kb_client_server_uid_parse(optarg, &uid) != 0) {
                fprintf(stderr,
                        "kbctl: --server-uid '%s' is neither a uid (a decimal number) nor the "
                        "name of a user\n",
                        optarg);
                return -1;
            }
            k->server_uid = optarg;
            break;
        default:
            fprintf(stderr, "kbctl: unknown option or missing argument: %s\n", argv[optind - 1]);
            return -1;
        }
    }
    return 0;
}

static const struct s_command *s_find(const char *name)
{
    for (size_t i = 0; i < S_NCOMMANDS; i++) {
        if (strcmp(s_commands[i].name, name) == 0)
            return &s_commands[i];
    }
    return NULL;
}

/* Arity, flags that belong to another command, tenant names: usage errors before any I/O. */
static int s_check_args(const struct s_command *cmd, const struct kbctl *k, int nargs, char **args)
{
    if (nargs < cmd->min_args || (cmd->max_args >= 0 && nargs > cmd->max_args)) {
        fprintf(stderr, "kbctl: usage: kbctl %s %s (see 'kbctl %s --help')\n", cmd->name, cmd->args,
                cmd->name);
        return -1;
    }
    if ((k->delete_bucket || k->force_delete_secret) && strcmp(cmd->name, "revoke") != 0) {
        fprintf(stderr, "kbctl: --delete-bucket and --force-delete-secret are for revoke only\n");
        return -1;
    }
    if (k->rollback && strcmp(cmd->name, "rotate") != 0) {
        fprintf(stderr, "kbctl: --rollback is for rotate only\n");
        return -1;
    }
    if (k->ack && strcmp(cmd->name, "watch") != 0) {
        fprintf(stderr, "kbctl: --ack is for watch only\n");
        return -1;
    }
    for (int i = 0; i < nargs; i++) {
        if (!kb_proto_tenant_valid(args[i], strlen(args[i]))) {
            fprintf(stderr,
                    "kbctl: '%s' is not a tenant name (1 to 64 characters of A-Z a-z "
                    "0-9 + = , . @ _ -)\n",
                    args[i]);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const struct s_command *cmd = NULL, *own = NULL;
    bool help = false, version = false;
    struct kbctl k = {0};
    const char *word;
    int nargs;

    /* The plugin helper that `kbctl plugin check` re-executes (/proc/self/exe --plugin-host, fd 3
     * its socket): before any other parsing, and only as argv[1] exactly. Listed in --help as
     * internal. */
    if (argc >= 2 && strcmp(argv[1], "--plugin-host") == 0)
        return kbctl_plugin_host();
    word = s_command_word(argc, argv);
    if (word != NULL && strcmp(word, "audit") == 0)
        return kbctl_audit(argc, argv);
    if (word != NULL && (own = s_find(word)) != NULL && own->own != NULL)
        return own->own(argc, argv);
    if (s_parse_options(argc, argv, &k, &help, &version) != 0) {
        fprintf(stderr, "Try 'kbctl --help'.\n");
        return KBCTL_EXIT_USAGE;
    }
    if (version) {
        printf("kbctl (keybroker) %s, protocol v%d\n", KB_VERSION, KB_PROTO_VERSION);
        return KBCTL_EXIT_OK;
    }
    if (optind < argc && (cmd = s_find(argv[optind])) == NULL) {
        fprintf(stderr, "kbctl: unknown command '%s'. Try 'kbctl --help'.\n", argv[optind]);
        return KBCTL_EXIT_USAGE;
    }
    if (help) {
        if (cmd != NULL)
            s_command_help(cmd);
        else
            s_usage(stdout);
        return KBCTL_EXIT_OK;
    }
    if (cmd == NULL) {
        s_usage(stderr);
        return KBCTL_EXIT_USAGE;
    }
    nargs = argc - optind - 1;
    if (s_check_args(cmd, &k, nargs, argv + optind + 1) != 0)
        return KBCTL_EXIT_USAGE;
    if (k.timeout_ms == 0)
        k.timeout_ms = cmd->timeout_ms;
    return cmd->run(&k, nargs, argv + optind + 1);
}
