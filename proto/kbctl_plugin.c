/*
 * kbctl_plugin.c - `kbctl plugin check FILE.so`: loads a plugin the way keybrokerd does, in a
 * helper process of its own that speaks plugin/wire.h on fd 3, and replays a sample sequence of
 * events through it twice, one at a time, each under the deadline, reporting what became of
 * each one. The helper is kbctl itself (`kbctl --plugin-host`, kbctl_plugin_helper.c), running
 * the same helper code as `keybrokerd --plugin-host`, so the loader's checks (ownership, modes,
 * ABI) and the plugin's behaviour are the broker's, not a copy.
 *
 * This file holds the command line, the sample events and the steps, over one struct
 * kbctl_plugin_check that owns the helper and every result (kbctl_plugin_internal.h):
 *   spawn     the helper (kbctl_plugin__spawn), as the --user when kbctl runs as root
 *   s_load    "load" -> "loaded": the descriptor, or the loader's refusal
 *   s_replay  each hook the plugin asked for, in the broker's order, twice
 *   shutdown  closes the socket (the helper calls fini and exits) and reaps the helper
 * then the report (kbctl_plugin_report.c). A helper that dies is reported and not restarted:
 * the check says what the broker would have seen, and a restart would hide it.
 *
 * The sample events are made up (tenant "example", account 000000000000): this never talks to
 * the broker or to AWS, and no event carries anything secret.
 */
#include "kbctl_plugin.h"
#include "kbctl_plugin_internal.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_DEADLINE_DEF 10  /* seconds: the config's default deadline */
#define S_DEADLINE_MAX 600 /* the config's 10m */

static const char s_usage[] =
    "Usage: kbctl plugin check FILE.so [--config JSON] [--deadline SECS] [--user USER] [--json]\n";

static const char s_help[] =
    "\n"
    "Loads a rotation-hook plugin as keybrokerd would and replays sample events through it;\n"
    "nothing here talks to the broker or to AWS.\n"
    "\n"
    "check: starts a throw-away plugin helper (kbctl itself, `kbctl --plugin-host`, with fd 3 a\n"
    "  socket to kbctl, stdin and stdout /dev/null, the environment only\n"
    "  PATH=/usr/sbin:/usr/bin:/sbin:/bin), which applies the broker's loader checks to FILE.so "
    "(owned by\n"
    "  root or by you, not group- or world-writable, nor any directory above it except a sticky\n"
    "  one such as /tmp), loads it and checks its ABI. Then it sends the plugin a sample event\n"
    "  for each hook it subscribes to, in this order: provisioned, pre_finish, post_rotate,\n"
    "  key_deactivated, key_deleted, rotation_failed, revoked, access_denied (tenant \"example\",\n"
    "  account 000000000000, made-up version and rotation ids, a made-up peer for\n"
    "  access_denied), one at a time, and the whole sequence twice. Prints the plugin's\n"
    "  descriptor (name, version, ABI, description, hooks), one line per event and round (ok,\n"
    "  failed: the plugin's error, crashed: the signal, exited: the status, timed out), how the\n"
    "  helper shut down (the plugin's fini), and a verdict. A helper that dies is reported and\n"
    "  not restarted: the remaining events are not sent. The plugin's own log lines (host->log)\n"
    "  appear on stderr as the helper's JSON log lines.\n"
    "  --config JSON    the plugin's \"config\" object, as in broker.plugins[].config\n"
    "  --deadline SECS  how long loading and each event may take, 1 to 600 (default 10, as\n"
    "                   broker.plugins[].deadline); the helper is killed (SIGKILL) after it and\n"
    "                   a grace of 1 s\n"
    "  --user USER      when kbctl runs as root, the user the helper runs as (default \"nobody\",\n"
    "                   as broker.plugin_user); ignored otherwise: the helper runs as you\n"
    "  --json           print one JSON object with the whole report instead\n"
    "\n"
    "Exit status:\n"
    "  0  the plugin loaded and every sample event was ok in both rounds\n"
    "  1  the plugin was refused, or an event failed, crashed, exited or timed out, or the\n"
    "     helper did not shut down cleanly\n"
    "  2  usage error\n";

/* -- the sample events ------------------------------------------------------------------------ */

/* Which of the round's versions an event names. A round is one rotation from versions[r] (the
 * current key) to versions[r + 1]. */
enum s_version { S_V_NONE, S_V_CURRENT, S_V_NEW, S_V_SUPERSEDED };

/* One hook's sample, in the order of a tenant's life: the table is the order they are sent in.
 * Ops, steps and messages are what the broker's own events carry (rotate_key.c's pre_finish
 * call: step "pre-finish"; host_events.c: post_rotate's step "rotate"; rotate.c's window and
 * failure events: no step). */
struct s_sample {
    const char *hook;
    const char *op;
    const char *step; /* NULL: none */
    enum s_version version;
    bool previous;       /* previous_version_id: the version AWSCURRENT left */
    int pass;            /* rotation_id of this rotation pass of the round (1..4), 0: none */
    bool peer;           /* the socket peer of a refused request */
    const char *message; /* NULL: none */
};

static const struct s_sample s_samples[] = {
    {"provisioned", "provision", NULL, S_V_CURRENT, false, 0, false, NULL},
    {"pre_finish", "rotate", "pre-finish", S_V_NEW, true, 1, false, NULL},
    {"post_rotate", "rotate", "rotate", S_V_NEW, true, 1, false, NULL},
    {"key_deactivated", "rotate", NULL, S_V_SUPERSEDED, false, 2, false, "after aws.overlap"},
    {"key_deleted", "rotate", NULL, S_V_SUPERSEDED, false, 3, false,
     "after aws.overlap and aws.retire"},
    {"rotation_failed", "rotate", NULL, S_V_NEW, false, 4, false,
     "probe: the new key was not accepted by S3 within aws.probe_timeout (sample event)"},
    {"revoked", "revoke", NULL, S_V_NONE, false, 0, false, NULL},
    {"access_denied", "get", NULL, S_V_NONE, false, 0, true,
     "uid 1000 may not see tenant example (sample event)"},
};
#define S_NSAMPLES (sizeof(s_samples) / sizeof(s_samples[0]))
_Static_assert(S_NSAMPLES == KBCTL_PLUGIN_SAMPLES, "one sample per hook");
_Static_assert(S_NSAMPLES == KB_PLUGIN_HOOKS, "one sample per hook");

#define S_TENANT   "example"
#define S_ARN      "arn:aws:secretsmanager:us-east-1:000000000000:secret:keybroker/example-AbCdEf"
#define S_PEER_UID 1000
#define S_PEER_GID 1000
#define S_PEER_PID 4242

/* Secrets Manager version ids (UUIDs) of three successive keys: round r rotates from [r] to
 * [r + 1]. */
static const char *const s_versions[KBCTL_PLUGIN_ROUNDS + 1] = {
    "6f1c2a3e-8d4b-4e1f-9a7c-2b5d8e0f1a34",
    "b2e4f6a8-1c3d-4e5f-8a9b-0c1d2e3f4a5b",
    "0d9e8f7a-6b5c-4d3e-b2f1-a0b9c8d7e6f5",
};

/* The rotation ids of each round's passes: the rotation, then the later passes that deactivate
 * and delete the superseded key, and one that fails. */
static const char *const s_rotation_ids[KBCTL_PLUGIN_ROUNDS][4] = {
    {"3c7e1a9b-5d2f-4a6e-8b0c-9f1e2d3c4b5a", "7a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9",
     "c4d5e6f7-0819-4a2b-8c3d-4e5f60718293", "e1f2a3b4-c5d6-47e8-99fa-0b1c2d3e4f50"},
    {"a8b7c6d5-e4f3-4a2b-9c1d-0e9f8a7b6c5d", "5e6f7081-92a3-4b4c-8d5e-6f708192a3b4",
     "91a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8", "2b3c4d5e-6f70-4819-a2b3-c4d5e6f70819"},
};

/* -- results and the helper's lines ---------------------------------------------------------- */

int64_t kbctl_plugin__now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kbctl_plugin__set(struct kbctl_plugin_result *r, enum kbctl_plugin_outcome o, int code,
                       const char *fmt, ...)
{
    va_list ap;

    r->outcome = o;
    r->code = code;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
    va_end(ap);
}

const char *kbctl_plugin__str(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static bool s_is(struct json_object *o, const char *key, const char *want)
{
    const char *v = kbctl_plugin__str(o, key);

    return v != NULL && strcmp(v, want) == 0;
}

static bool s_true(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;

    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_boolean) &&
           json_object_get_boolean(v);
}

/* -- load ------------------------------------------------------------------------------------- */

static struct json_object *s_load_message(const struct kbctl_plugin_check *st)
{
    struct json_object *o = json_object_new_object();

    if (o == NULL)
        return NULL;
    json_object_object_add(o, "type", json_object_new_string("load"));
    json_object_object_add(o, "name", json_object_new_string(st->name));
    json_object_object_add(o, "kind", json_object_new_string("shared"));
    json_object_object_add(o, "path", json_object_new_string(st->path));
    if (st->opt->config != NULL)
        json_object_object_add(o, "config", json_object_get(st->opt->config));
    json_object_object_add(o, "owner_uid", json_object_new_int64((int64_t)getuid()));
    json_object_object_add(o, "timeout_ms", json_object_new_int(st->opt->deadline_ms));
    return o;
}

/* "load", then "loaded". Returns 0 when the plugin loaded; else st->load says why. */
static int s_load(struct kbctl_plugin_check *st)
{
    struct json_object *msg = s_load_message(st), *reply = NULL;
    int64_t start = kbctl_plugin__now_ms();
    int rc = msg != NULL ? kbctl_plugin__send(&st->helper, msg) : -1;

    json_object_put(msg);
    if (rc == 0)
        rc = kbctl_plugin__receive(&st->helper, st->opt->deadline_ms + KB_PLUGIN_WIRE_GRACE_MS,
                                   &st->load, &reply);
    else /* the send failed: the helper is gone already */
        kbctl_plugin__reap(&st->helper, KB_PLUGIN_WIRE_GRACE_MS, &st->load);
    st->load.ms = kbctl_plugin__now_ms() - start;
    if (rc != 0) {
        st->helper_died = true;
        return -1;
    }
    if (!s_is(reply, "type", "loaded")) {
        json_object_put(reply);
        kbctl_plugin__kill(&st->helper);
        st->helper_died = true;
        kbctl_plugin__set(&st->load, KBCTL_OUTCOME_PROTOCOL, 0,
                          "the helper answered \"load\" with something else");
        return -1;
    }
    st->loaded = reply;
    if (!s_true(reply, "ok")) {
        const char *why = kbctl_plugin__str(reply, "error");

        kbctl_plugin__set(&st->load, KBCTL_OUTCOME_FAILED, 0, "%s",
                          why != NULL ? why : "refused (no reason given)");
        return -1;
    }
    kbctl_plugin__set(&st->load, KBCTL_OUTCOME_OK, 0, "loaded");
    return 0;
}

/* Whether the plugin reported hook in "loaded".hooks. */
static bool s_subscribed(const struct kbctl_plugin_check *st, const char *hook)
{
    struct json_object *hooks = NULL;

    if (!json_object_object_get_ex(st->loaded, "hooks", &hooks) ||
        !json_object_is_type(hooks, json_type_array))
        return false;
    for (size_t i = 0; i < json_object_array_length(hooks); i++) {
        const char *h = json_object_get_string(json_object_array_get_idx(hooks, i));

        if (h != NULL && strcmp(h, hook) == 0)
            return true;
    }
    return false;
}

/* -- replay ----------------------------------------------------------------------------------- */

static void s_add_str(struct json_object *o, const char *key, const char *value)
{
    if (value != NULL)
        json_object_object_add(o, key, json_object_new_string(value));
}

/* The "event" message of sample s in round r (0-based). */
static struct json_object *s_event_message(const struct s_sample *s, int r, unsigned id)
{
    struct json_object *o = json_object_new_object(), *ev = json_object_new_object(), *peer;
    const char *version = NULL;

    if (o == NULL || ev == NULL) {
        json_object_put(o);
        json_object_put(ev);
        return NULL;
    }
    if (s->version == S_V_CURRENT || s->version == S_V_SUPERSEDED)
        version = s_versions[r];
    else if (s->version == S_V_NEW)
        version = s_versions[r + 1];
    s_add_str(ev, "tenant", S_TENANT);
    s_add_str(ev, "arn", S_ARN);
    s_add_str(ev, "version_id", version);
    s_add_str(ev, "previous_version_id", s->previous ? s_versions[r] : NULL);
    s_add_str(ev, "rotation_id", s->pass > 0 ? s_rotation_ids[r][s->pass - 1] : NULL);
    s_add_str(ev, "step", s->step);
    s_add_str(ev, "op", s->op);
    s_add_str(ev, "message", s->message);
    json_object_object_add(ev, "ts", json_object_new_int64((int64_t)time(NULL)));
    if (s->peer && (peer = json_object_new_object()) != NULL) {
        json_object_object_add(peer, "uid", json_object_new_int64(S_PEER_UID));
        json_object_object_add(peer, "gid", json_object_new_int64(S_PEER_GID));
        json_object_object_add(peer, "pid", json_object_new_int64(S_PEER_PID));
        json_object_object_add(ev, "peer", peer);
    }
    json_object_object_add(o, "type", json_object_new_string("event"));
    json_object_object_add(o, "id", json_object_new_int64(id));
    json_object_object_add(o, "hook", json_object_new_string(s->hook));
    json_object_object_add(o, "event", ev);
    return o;
}

/* Reads a "done" for id into r; anything else is a protocol error (the helper is killed). */
static int s_done(struct kbctl_plugin_check *st, unsigned id, struct kbctl_plugin_result *r)
{
    struct json_object *reply = NULL, *v = NULL;
    int rc = kbctl_plugin__receive(&st->helper, st->opt->deadline_ms + KB_PLUGIN_WIRE_GRACE_MS, r,
                                   &reply);
    const char *text;

    if (rc != 0)
        return -1;
    if (!s_is(reply, "type", "done") || !json_object_object_get_ex(reply, "id", &v) ||
        !json_object_is_type(v, json_type_int) || json_object_get_int64(v) != (int64_t)id) {
        json_object_put(reply);
        kbctl_plugin__kill(&st->helper);
        kbctl_plugin__set(r, KBCTL_OUTCOME_PROTOCOL, 0,
                          "the helper did not answer event %u with its \"done\": killed", id);
        return -1;
    }
    if (s_true(reply, "ok")) {
        text = kbctl_plugin__str(reply, "message");
        kbctl_plugin__set(r, KBCTL_OUTCOME_OK, 0, "%s", text != NULL ? text : "");
    } else {
        text = kbctl_plugin__str(reply, "error");
        kbctl_plugin__set(r, KBCTL_OUTCOME_FAILED, 0, "%s",
                          text != NULL ? text : "(no reason given)");
    }
    json_object_put(reply);
    return 0;
}

/* One sample event: sent, answered (or the helper's death), recorded and printed. Returns -1
 * when the helper is gone. */
static int s_one_event(struct kbctl_plugin_check *st, const struct s_sample *s, int r)
{
    struct kbctl_plugin_result *res = &st->results[st->nresults++];
    unsigned id = ++st->next_id;
    struct json_object *msg = s_event_message(s, r, id);
    int64_t start = kbctl_plugin__now_ms();
    int rc = msg != NULL ? kbctl_plugin__send(&st->helper, msg) : -1;

    json_object_put(msg);
    res->round = r + 1;
    res->hook = s->hook;
    if (rc == 0)
        rc = s_done(st, id, res);
    else /* the send failed: the helper is gone */
        kbctl_plugin__reap(&st->helper, KB_PLUGIN_WIRE_GRACE_MS, res);
    res->ms = kbctl_plugin__now_ms() - start;
    kbctl_plugin__print_event(st, res);
    if (rc != 0)
        st->helper_died = true;
    return rc;
}

static void s_replay(struct kbctl_plugin_check *st)
{
    for (int r = 0; r < KBCTL_PLUGIN_ROUNDS; r++) {
        for (size_t i = 0; i < S_NSAMPLES; i++) {
            if (s_subscribed(st, s_samples[i].hook) && s_one_event(st, &s_samples[i], r) != 0)
                return;
        }
    }
}

/* Closes the socket: the helper calls the plugin's fini and exits; it is reaped. */
static void s_shutdown(struct kbctl_plugin_check *st)
{
    kbctl_plugin__close(&st->helper);
    if (st->helper.pid > 0)
        kbctl_plugin__reap(&st->helper, st->opt->deadline_ms + KB_PLUGIN_WIRE_GRACE_MS,
                           &st->shutdown);
    else if (!st->helper_died)
        kbctl_plugin__set(&st->shutdown, KBCTL_OUTCOME_NOT_STARTED, 0, "no helper");
}

/* -- the command line ------------------------------------------------------------------------- */

enum { S_OPT_CONFIG = 400, S_OPT_DEADLINE, S_OPT_USER, S_OPT_JSON };

static const struct option s_options[] = {
    {"config", required_argument, NULL, S_OPT_CONFIG},
    {"deadline", required_argument, NULL, S_OPT_DEADLINE},
    {"user", required_argument, NULL, S_OPT_USER},
    {"json", no_argument, NULL, S_OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int s_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int s_usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "kbctl: plugin: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'kbctl plugin --help')\n");
    return KBCTL_PLUGIN_USAGE;
}

static int s_parse_config(const char *text, struct json_object **out)
{
    enum json_tokener_error jerr = json_tokener_success;
    struct json_object *o = json_tokener_parse_verbose(text, &jerr);

    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return s_usage_error("--config wants a JSON object%s%s",
                             jerr != json_tokener_success ? ": " : "",
                             jerr != json_tokener_success ? json_tokener_error_desc(jerr) : "");
    }
    json_object_put(*out);
    *out = o;
    return 0;
}

static int s_parse_deadline(const char *arg, int *ms)
{
    char *end = NULL;
    long secs;

    errno = 0;
    secs = strtol(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || secs < 1 || secs > S_DEADLINE_MAX)
        return s_usage_error("--deadline wants whole seconds, 1 to %d", S_DEADLINE_MAX);
    *ms = (int)secs * 1000;
    return 0;
}

/* Parses the options (anywhere on the line). Returns 0, or an exit code after a message. */
static int s_parse(int argc, char **argv, struct kbctl_plugin_options *o, bool *help)
{
    int opt, rc = 0;

    opterr = 0;
    optind = 1;
    while (rc == 0 && (opt = getopt_long(argc, argv, "h", s_options, NULL)) != -1) {
        switch (opt) {
        case S_OPT_CONFIG:
            rc = s_parse_config(optarg, &o->config);
            break;
        case S_OPT_DEADLINE:
            rc = s_parse_deadline(optarg, &o->deadline_ms);
            break;
        case S_OPT_USER:
            o->user = optarg;
            break;
        case S_OPT_JSON:
            o->json = true;
            break;
        case 'h':
            *help = true;
            break;
        default:
            rc = s_usage_error("unknown option or missing argument: %s", argv[optind - 1]);
            break;
        }
    }
    return rc;
}

/* The load message's name: the file's name without ".so", in the config's [a-z0-9_-]. */
static void s_name(char *name, size_t cap, const char *path)
{
    const char *base = strrchr(path, '/');
    size_t len, n = 0;

    base = base != NULL ? base + 1 : path;
    len = strlen(base);
    if (len > 3 && strcmp(base + len - 3, ".so") == 0)
        len -= 3;
    for (size_t i = 0; i < len && n + 1 < cap; i++) {
        char c = base[i];

        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        name[n++] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ? c : '-';
    }
    if (n == 0)
        name[n++] = 'x';
    name[n] = '\0';
}

/* The helper's user when kbctl runs as root. */
static int s_user(struct kbctl_plugin_check *st)
{
    const char *user = st->opt->user != NULL ? st->opt->user : "nobody";
    struct passwd *pw;

    if (geteuid() != 0) {
        if (st->opt->user != NULL)
            fprintf(stderr, "kbctl: plugin check: --user applies only when kbctl runs as root; "
                            "the helper runs as you\n");
        return 0;
    }
    errno = 0;
    pw = getpwnam(user);
    if (pw == NULL)
        return s_usage_error("--user: no user named '%s'%s%s", user, errno != 0 ? ": " : "",
                             errno != 0 ? strerror(errno) : "");
    if (pw->pw_uid == 0)
        return s_usage_error("--user: '%s' is root; the helper must run unprivileged", user);
    st->helper.run_uid = pw->pw_uid;
    st->helper.run_gid = pw->pw_gid;
    st->helper.drop = true;
    return 0;
}

static int s_check(const struct kbctl_plugin_options *opt)
{
    struct kbctl_plugin_check *st = calloc(1, sizeof(*st));
    char verdict[KBCTL_PLUGIN_DETAIL_MAX + 128];
    int rc;

    if (st == NULL) {
        fprintf(stderr, "kbctl: plugin check: out of memory\n");
        return KBCTL_PLUGIN_FAIL;
    }
    st->opt = opt;
    st->helper.pid = -1;
    st->helper.fd = -1;
    if (realpath(opt->file, st->path) == NULL) {
        fprintf(stderr, "kbctl: plugin check: %s: %s\n", opt->file, strerror(errno));
        free(st);
        return KBCTL_PLUGIN_FAIL;
    }
    s_name(st->name, sizeof(st->name), st->path);
    rc = s_user(st);
    if (rc != 0) {
        free(st);
        return rc;
    }
    if (kbctl_plugin__spawn(&st->helper, &st->load) == 0 && s_load(st) == 0) {
        if (!opt->json)
            kbctl_plugin__print_descriptor(st);
        s_replay(st);
    }
    s_shutdown(st);
    kbctl_plugin__print_end(st);
    rc = kbctl_plugin__verdict(st, verdict, sizeof(verdict)) ? KBCTL_PLUGIN_OK : KBCTL_PLUGIN_FAIL;
    json_object_put(st->loaded);
    free(st);
    return rc;
}

int kbctl_plugin(int argc, char **argv)
{
    struct kbctl_plugin_options o = {.deadline_ms = S_DEADLINE_DEF * 1000};
    bool help = false;
    char **args;
    int nargs, rc;

    rc = s_parse(argc, argv, &o, &help);
    args = argv + optind + 1; /* after "plugin" */
    nargs = argc - optind - 1;
    if (rc == 0 && nargs > 0 && strcmp(args[0], "check") != 0)
        rc = s_usage_error("unknown plugin command '%s'", args[0]);
    if (rc == 0 && help) {
        printf("%s%s", s_usage, s_help);
    } else if (rc == 0 && nargs == 0) {
        fprintf(stderr, "%s%s", s_usage, s_help);
        rc = KBCTL_PLUGIN_USAGE;
    } else if (rc == 0 && nargs != 2) {
        rc = s_usage_error("check wants exactly one FILE.so");
    } else if (rc == 0) {
        o.file = args[1];
        rc = s_check(&o);
    }
    json_object_put(o.config);
    return rc;
}
