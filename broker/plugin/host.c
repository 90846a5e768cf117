/*
 * host.c - the broker's side of the plugin helpers (host.h): one `keybrokerd --plugin-host`
 * process per configured plugin, its queue of events, the wire of wire.h, deadlines, and the
 * restarts.
 *
 * Each plugin has one helper and one event in flight at a time: the broker sends the next event
 * only after the helper's "done", so a deadline is the time one event took, and a helper that
 * dies costs only the event it held. A helper is killed (SIGKILL) when it overruns the deadline
 * (plus wire.h's grace), says something that is not a line of the wire, or closes its socket;
 * when it exits for any reason it is started again, after a backoff that grows while it keeps
 * dying before it answered anything. A plugin the helper refused (its file, its ABI, its init) is
 * not started again until the broker restarts.
 *
 * Never a secret here: the helper is an exec of a clean image with an environment of PATH only,
 * and the events it gets carry names and ids (host_events.c builds them).
 */
#include <errno.h>
#include <json-c/json.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/container.h"
#include "common/err.h"
#include "common/log.h"
#include "plugin/host_internal.h"
#include "plugin/loader.h"
#include "plugin/wire.h"

#define S_BACKOFF_MIN_MS 200
#define S_BACKOFF_MAX_MS 5000
#define S_CLOSE_KILL_MS  1000
#define S_EOF_KILL_MS    1000

static void s_spawn(struct kb_plugin_proc *p);
static void s_pump(struct kb_plugin_proc *p);

/* -- handles ----------------------------------------------------------------------------------- */

static void s_host_free(struct kb_plugins *host)
{
    void (*cb)(void *) = host->close_cb;
    void *ctx = host->close_ctx;

    for (size_t i = 0; i < host->nprocs; i++)
        free(host->procs[i].buf);
    free(host->procs);
    free(host);
    if (cb != NULL)
        cb(ctx);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct kb_plugins *host = h->data;

    if (--host->handles == 0 && host->closing)
        s_host_free(host);
}

static void s_close(struct kb_plugins *host, uv_handle_t *h)
{
    h->data = host;
    uv_close(h, on_handle_closed);
}

/* -- requests ---------------------------------------------------------------------------------- */

static void s_req_free(struct kb_plugin_req *r)
{
    free(r->line);
    free(r->tenant);
    free(r->rotation_id);
    free(r);
}

/* The answer to one request: the gate learns it, or the log does. */
static void s_req_done(struct kb_plugin_proc *p, struct kb_plugin_req *r, bool ok, const char *why)
{
    const char *hook = kb_plugin_hook_name(r->hook);

    if (!ok)
        kb_log(r->gate != NULL && p->cfg->required ? KB_LOG_ERROR : KB_LOG_WARN, "plugin-failed",
               "plugin", p->cfg->name, "hook", hook, "mode",
               p->cfg->required ? "required" : "best_effort", "error", why, NULL);
    else
        kb_log(KB_LOG_DEBUG, "plugin-done", "plugin", p->cfg->name, "hook", hook, "message", why,
               NULL);
    /* The outcome on the bus: the audit log records it. Not for the audit stream itself (the
     * syslog built-in's "audit" hook): that would double every record, and feed itself. */
    if (r->hook != KB_PLUGIN_WIRE_AUDIT)
        kb_events_emit(p->host->bus, &(struct kb_event){.kind = KB_EVENT_PLUGIN,
                                                        .tenant = r->tenant,
                                                        .step = hook,
                                                        .result = ok ? "ok" : "error",
                                                        .message = ok ? NULL : why,
                                                        .rotation_id = r->rotation_id,
                                                        .plugin = p->cfg->name});
    if (r->gate != NULL)
        kb_plugin__gate_answer(r->gate, p, ok, why);
    s_req_free(r);
}

/* Fails every queued request of p with why. */
static void s_fail_queue(struct kb_plugin_proc *p, const char *why)
{
    struct kb_plugin_req *r;

    while ((r = p->head) != NULL) {
        p->head = r->next;
        p->queued--;
        s_req_done(p, r, false, why);
    }
    p->tail = NULL;
}

void kb_plugin__enqueue(struct kb_plugin_proc *p, unsigned hook, const struct kb_event *ev,
                        const char *event_json, struct kb_plugin_gate *gate)
{
    struct kb_plugin_req *r = calloc(1, sizeof(*r));
    const char *hook_name = kb_plugin_hook_name(hook);
    int n;

    if (r != NULL) {
        r->id = ++p->host->next_id;
        r->hook = hook;
        r->gate = gate;
        r->tenant = ev->tenant != NULL ? strdup(ev->tenant) : NULL;
        r->rotation_id = ev->rotation_id != NULL ? strdup(ev->rotation_id) : NULL;
        n = asprintf(&r->line, "{\"type\":\"event\",\"id\":%llu,\"hook\":\"%s\",\"event\":%s}\n",
                     (unsigned long long)r->id, hook_name, event_json);
        if (n < 0) {
            r->line = NULL;
        } else if ((size_t)n > KB_PLUGIN_WIRE_MAX) {
            free(r->line);
            r->line = NULL;
        } else {
            r->len = (size_t)n;
        }
    }
    if (r == NULL || r->line == NULL || p->queued >= KB_PLUGIN_QUEUE_MAX ||
        p->state == KB_PLUGIN_REFUSED) {
        const char *why = r == NULL || r->line == NULL ? "out of memory, or the event is too long"
                          : p->state == KB_PLUGIN_REFUSED ? p->why
                                                          : "its queue is full (the helper is "
                                                            "too slow): event dropped";
        /* A helper that falls behind would log a line per event: every power of two only. */
        p->dropped++;
        if ((p->dropped & (p->dropped - 1)) != 0 && r != NULL && gate == NULL) {
            s_req_free(r);
            return;
        }
        if (r == NULL) {
            kb_log(KB_LOG_WARN, "plugin-failed", "plugin", p->cfg->name, "hook", hook_name, "error",
                   why, NULL);
            if (gate != NULL)
                kb_plugin__gate_answer(gate, p, false, why);
            return;
        }
        s_req_done(p, r, false, why);
        return;
    }
    if (p->tail != NULL)
        p->tail->next = r;
    else
        p->head = r;
    p->tail = r;
    p->queued++;
    kb_plugin__kick(p->host);
}

/* -- killing ----------------------------------------------------------------------------------- */

static void s_kill(struct kb_plugin_proc *p, const char *reason)
{
    if (!p->proc_open || p->exited)
        return;
    if (p->kill_reason == NULL)
        p->kill_reason = reason;
    (void)uv_process_kill(&p->proc, SIGKILL);
}

static void on_deadline(uv_timer_t *t)
{
    struct kb_plugin_proc *p = t->data;

    if (p->host->closing)
        s_kill(p, "the broker is stopping");
    else if (p->eof)
        s_kill(p, "closed its socket");
    else if (p->state == KB_PLUGIN_LOADING)
        s_kill(p, "did not load within its deadline");
    else
        s_kill(p, "did not answer within its deadline");
}

static void s_arm_deadline(struct kb_plugin_proc *p, uint64_t ms)
{
    p->deadline.data = p;
    uv_timer_start(&p->deadline, on_deadline, ms, 0);
}

/* -- what the helper says ---------------------------------------------------------------------- */

static void s_loaded(struct kb_plugin_proc *p, struct json_object *msg)
{
    struct json_object *v, *hooks;
    unsigned mask = 0;

    if (p->state != KB_PLUGIN_LOADING) {
        s_kill(p, "sent \"loaded\" twice");
        return;
    }
    uv_timer_stop(&p->deadline);
    if (!json_object_object_get_ex(msg, "ok", &v) || !json_object_get_boolean(v)) {
        const char *err =
            json_object_object_get_ex(msg, "error", &v) ? json_object_get_string(v) : NULL;
        snprintf(p->why, sizeof(p->why), "%s",
                 err != NULL ? err : "the helper refused the plugin without a reason");
        p->state = KB_PLUGIN_REFUSED;
        kb_log(KB_LOG_ERROR, "plugin-refused", "plugin", p->cfg->name, "error", p->why, NULL);
        s_fail_queue(p, p->why);
        return;
    }
    if (json_object_object_get_ex(msg, "hooks", &hooks) &&
        json_object_is_type(hooks, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(hooks); i++) {
            int h =
                kb_plugin_hook_parse(json_object_get_string(json_object_array_get_idx(hooks, i)));
            if (h >= 0)
                mask |= 1u << h;
        }
        /* The plugin's own hooks narrow the config's; "audit" is the wire's, not the plugin's. */
        p->hooks = p->cfg->hooks & (mask | (1u << KB_PLUGIN_WIRE_AUDIT));
    }
    p->state = KB_PLUGIN_READY;
    kb_log(KB_LOG_INFO, "plugin-loaded", "plugin", p->cfg->name, "name",
           json_object_object_get_ex(msg, "plugin", &v) ? json_object_get_string(v) : NULL,
           "version",
           json_object_object_get_ex(msg, "version", &v) ? json_object_get_string(v) : NULL, "abi",
           json_object_object_get_ex(msg, "abi", &v) ? json_object_get_string(v) : NULL, NULL);
    s_pump(p);
}

static void s_done(struct kb_plugin_proc *p, struct json_object *msg)
{
    struct kb_plugin_req *r = p->inflight;
    struct json_object *v;
    bool ok;
    const char *text;

    if (r == NULL || !json_object_object_get_ex(msg, "id", &v) ||
        (uint64_t)json_object_get_int64(v) != r->id) {
        s_kill(p, "answered an event it was not given");
        return;
    }
    uv_timer_stop(&p->deadline);
    p->inflight = NULL;
    ok = json_object_object_get_ex(msg, "ok", &v) && json_object_get_boolean(v);
    text = json_object_object_get_ex(msg, ok ? "message" : "error", &v) ? json_object_get_string(v)
                                                                        : NULL;
    if (ok)
        p->backoff_ms = S_BACKOFF_MIN_MS; /* it works: a later crash restarts it at once */
    s_req_done(p, r, ok, text != NULL ? text : ok ? NULL : "failed without a reason");
    s_pump(p);
}

static void s_line(struct kb_plugin_proc *p, const char *line, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *msg = tok != NULL ? json_tokener_parse_ex(tok, line, (int)len) : NULL;
    struct json_object *type;
    const char *t;

    if (tok != NULL && json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(msg);
        msg = NULL;
    }
    json_tokener_free(tok);
    if (msg == NULL || !json_object_is_type(msg, json_type_object) ||
        !json_object_object_get_ex(msg, "type", &type)) {
        s_kill(p, "sent a line that is not a message of the plugin wire");
    } else if ((t = json_object_get_string(type)) != NULL && strcmp(t, "loaded") == 0) {
        s_loaded(p, msg);
    } else if (t != NULL && strcmp(t, "done") == 0) {
        s_done(p, msg);
    } else {
        s_kill(p, "sent a message of an unknown type");
    }
    json_object_put(msg);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct kb_plugin_proc *p = h->data;

    (void)suggested;
    *buf = uv_buf_init(p->buf + p->len, (unsigned)(KB_PLUGIN_WIRE_MAX - p->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct kb_plugin_proc *p = s->data;
    char *nl;
    size_t used;

    (void)buf;
    if (n < 0) {
        /* Most often the helper is dying (a crash, exit()): give its exit status a moment to
         * arrive, so that the cause is named, and kill it if it lingers without its socket. */
        uv_read_stop(s);
        p->eof = true;
        s_arm_deadline(p, S_EOF_KILL_MS);
        return;
    }
    p->len += (size_t)n;
    while (p->proc_open && (nl = memchr(p->buf, '\n', p->len)) != NULL) {
        used = (size_t)(nl - p->buf) + 1;
        s_line(p, p->buf, used - 1);
        memmove(p->buf, p->buf + used, p->len - used);
        p->len -= used;
        if (p->kill_reason != NULL)
            break;
    }
    if (p->len == KB_PLUGIN_WIRE_MAX) {
        uv_read_stop(s);
        s_kill(p, "sent a line longer than the wire allows");
    }
}

/* -- sending ----------------------------------------------------------------------------------- */

/* A write owns a copy of its bytes: the request it came from may be answered (and freed) before
 * libuv is done with the write, e.g. when the helper dies with the write pending. */
struct s_write {
    uv_write_t w;
    struct kb_plugin_proc *p;
    char data[];
};

static void on_written(uv_write_t *w, int status)
{
    struct s_write *sw = container_of(w, struct s_write, w);

    if (status != 0 && status != UV_ECANCELED)
        s_kill(sw->p, "could not be written to");
    free(sw);
}

static int s_write(struct kb_plugin_proc *p, const char *data, size_t len)
{
    struct s_write *sw = malloc(sizeof(*sw) + len);
    uv_buf_t b;
    int rc;

    if (sw == NULL)
        return KB_ENOMEM;
    sw->p = p;
    memcpy(sw->data, data, len);
    b = uv_buf_init(sw->data, (unsigned)len);
    rc = uv_write(&sw->w, (uv_stream_t *)&p->pipe, &b, 1, on_written);
    if (rc != 0)
        free(sw);
    return rc;
}

/* Sends the next queued event when the helper is ready and idle. */
static void s_pump(struct kb_plugin_proc *p)
{
    struct kb_plugin_req *r;

    if (p->state == KB_PLUGIN_REFUSED) {
        s_fail_queue(p, p->why);
        return;
    }
    if (p->state != KB_PLUGIN_READY || p->inflight != NULL || p->head == NULL ||
        p->kill_reason != NULL)
        return;
    r = p->head;
    p->head = r->next;
    if (p->head == NULL)
        p->tail = NULL;
    p->queued--;
    r->next = NULL;
    p->inflight = r;
    if (s_write(p, r->line, r->len) != 0) {
        s_kill(p, "could not be written to");
        return;
    }
    s_arm_deadline(p, p->cfg->deadline * 1000 + KB_PLUGIN_WIRE_GRACE_MS);
}

/* -- the helper's life ------------------------------------------------------------------------- */

static void on_restart(uv_timer_t *t)
{
    struct kb_plugin_proc *p = t->data;

    if (p->host->closing || p->state != KB_PLUGIN_DOWN)
        return;
    if (p->pipe_open || p->proc_open) { /* the last helper's handles are still closing */
        uv_timer_start(&p->restart, on_restart, 50, 0);
        return;
    }
    s_spawn(p);
}

static void on_proc_closed(uv_handle_t *h)
{
    struct kb_plugin_proc *p = h->data;

    p->proc_open = false;
    h->data = p->host;
    on_handle_closed(h);
}

static void on_pipe_closed(uv_handle_t *h)
{
    struct kb_plugin_proc *p = h->data;

    p->pipe_open = false;
    h->data = p->host;
    on_handle_closed(h);
}

static void s_close_pipe(struct kb_plugin_proc *p)
{
    if (!p->pipe_open || uv_is_closing((uv_handle_t *)&p->pipe))
        return;
    p->pipe.data = p;
    uv_close((uv_handle_t *)&p->pipe, on_pipe_closed);
}

static void on_helper_exit(uv_process_t *proc, int64_t status, int signo)
{
    struct kb_plugin_proc *p = proc->data;
    char why[384], detail[160];
    bool was_loading = p->state == KB_PLUGIN_LOADING;
    struct kb_plugin_req *r = p->inflight;

    p->exited = true;
    uv_timer_stop(&p->deadline);
    if (p->kill_reason != NULL)
        snprintf(detail, sizeof(detail), "%s and was killed", p->kill_reason);
    else if (signo != 0)
        snprintf(detail, sizeof(detail), "crashed (signal %d, %s)", signo, strsignal(signo));
    else
        snprintf(detail, sizeof(detail), "exited with status %lld", (long long)status);
    if (r != NULL)
        snprintf(why, sizeof(why), "plugin '%s' %s while handling %s", p->cfg->name, detail,
                 kb_plugin_hook_name(r->hook));
    else
        snprintf(why, sizeof(why), "plugin '%s' %s%s", p->cfg->name, detail,
                 was_loading ? " while loading" : "");
    if (p->state != KB_PLUGIN_REFUSED || status != 0 || signo != 0)
        kb_log(p->host->closing ? KB_LOG_INFO : KB_LOG_WARN, "plugin-helper-exited", "plugin",
               p->cfg->name, "reason", why, NULL);
    p->inflight = NULL;
    if (r != NULL)
        s_req_done(p, r, false, why);
    /* A helper that dies before it loaded fails what waits for it: nobody waits on a plugin that
     * cannot start longer than one load. */
    if (was_loading || p->state == KB_PLUGIN_REFUSED || p->host->closing)
        s_fail_queue(p, p->state == KB_PLUGIN_REFUSED ? p->why : why);
    if (p->state != KB_PLUGIN_REFUSED)
        p->state = KB_PLUGIN_DOWN;
    s_close_pipe(p);
    p->proc.data = p;
    uv_close((uv_handle_t *)&p->proc, on_proc_closed);
    if (p->host->closing && !uv_is_closing((uv_handle_t *)&p->deadline))
        s_close(p->host, (uv_handle_t *)&p->deadline);
    if (p->host->closing || p->state == KB_PLUGIN_REFUSED)
        return;
    p->restart.data = p;
    uv_timer_start(&p->restart, on_restart, p->backoff_ms, 0);
    p->backoff_ms = p->backoff_ms * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS : p->backoff_ms * 2;
}

/* The "load" message for p's plugin ('\n'-terminated; caller frees), or NULL. */
static char *s_load_line(const struct kb_plugin_proc *p, size_t *len)
{
    static const char *const kinds[] = {"shared", "exec", "syslog"};
    const struct kb_plugin_config *c = p->cfg;
    struct json_object *o = json_object_new_object(), *argv, *conf = NULL;
    const char *text;
    char *line = NULL;

    if (o == NULL)
        return NULL;
    json_object_object_add(o, "type", json_object_new_string("load"));
    json_object_object_add(o, "name", json_object_new_string(c->name));
    json_object_object_add(o, "kind", json_object_new_string(kinds[c->type]));
    if (c->path != NULL)
        json_object_object_add(o, "path", json_object_new_string(c->path));
    if (c->config_json != NULL && (conf = json_tokener_parse(c->config_json)) != NULL)
        json_object_object_add(o, "config", conf);
    if (c->argv != NULL) {
        argv = json_object_new_array();
        for (size_t i = 0; argv != NULL && i < c->argc; i++)
            json_object_array_add(argv, json_object_new_string(c->argv[i]));
        json_object_object_add(o, "argv", argv);
    }
    if (c->facility != NULL)
        json_object_object_add(o, "facility", json_object_new_string(c->facility));
    json_object_object_add(o, "owner_uid", json_object_new_int64((int64_t)geteuid()));
    json_object_object_add(o, "timeout_ms", json_object_new_int64((int64_t)c->deadline * 1000));
    text =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (text != NULL && asprintf(&line, "%s\n", text) < 0)
        line = NULL;
    if (line != NULL)
        *len = strlen(line);
    json_object_put(o);
    return line;
}

/* Starts p's helper and sends it "load". Failures are logged and retried by the restart timer. */
static void s_spawn(struct kb_plugin_proc *p)
{
    struct kb_plugins *host = p->host;
    char name_arg[80];
    char *args[] = {(char *)"keybrokerd", (char *)"--plugin-host", name_arg, NULL};
    char *env[] = {(char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    uv_stdio_container_t stdio[4];
    uv_process_options_t o;
    char *line = NULL;
    size_t len = 0;
    int sv[2] = {-1, -1};
    int rc;

    snprintf(name_arg, sizeof(name_arg), "%s", p->cfg->name);
    p->kill_reason = NULL;
    p->exited = false;
    p->eof = false;
    p->len = 0;
    rc = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ? -errno : 0;
    if (rc == 0)
        rc = uv_pipe_init(host->loop, &p->pipe, 0);
    if (rc == 0) {
        host->handles++;
        p->pipe_open = true;
        p->pipe.data = p;
        rc = uv_pipe_open(&p->pipe, sv[0]);
        if (rc == 0)
            sv[0] = -1;
    }
    if (rc == 0) {
        memset(&o, 0, sizeof(o));
        memset(stdio, 0, sizeof(stdio));
        stdio[0].flags = UV_IGNORE;
        stdio[1].flags = UV_IGNORE;
        stdio[2].flags = UV_INHERIT_FD;
        stdio[2].data.fd = 2;
        stdio[3].flags = UV_INHERIT_FD;
        stdio[3].data.fd = sv[1];
        o.exit_cb = on_helper_exit;
        o.file = host->exe;
        o.args = args;
        o.env = env;
        o.cwd = "/";
        o.stdio = stdio;
        o.stdio_count = 4;
        if (host->drop) {
            o.flags = UV_PROCESS_SETUID | UV_PROCESS_SETGID;
            o.uid = host->uid;
            o.gid = host->gid;
        }
        rc = uv_spawn(host->loop, &p->proc, &o);
        host->handles++;
        p->proc_open = true;
        p->proc.data = p;
        if (rc != 0) {
            /* libuv: a handle uv_spawn refused must still be closed. */
            p->exited = true;
            uv_close((uv_handle_t *)&p->proc, on_proc_closed);
        }
    }
    if (sv[1] >= 0)
        close(sv[1]);
    if (sv[0] >= 0)
        close(sv[0]);
    if (rc == 0) {
        line = s_load_line(p, &len);
        rc = line == NULL ? KB_ENOMEM : s_write(p, line, len);
        free(line);
    }
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&p->pipe, on_alloc, on_read);
    if (rc != 0) {
        kb_log(KB_LOG_ERROR, "plugin-helper-start", "plugin", p->cfg->name, "error",
               kb_strerror(rc), NULL);
        if (p->proc_open && !p->exited) {
            s_kill(p, "could not be started");
        } else {
            s_close_pipe(p);
            p->state = KB_PLUGIN_DOWN;
            p->restart.data = p;
            uv_timer_start(&p->restart, on_restart, S_BACKOFF_MAX_MS, 0);
        }
        return;
    }
    p->state = KB_PLUGIN_LOADING;
    s_arm_deadline(p, p->cfg->deadline * 1000 + KB_PLUGIN_WIRE_GRACE_MS);
}

/* -- the kick ---------------------------------------------------------------------------------- */

void kb_plugin__gate_answer(struct kb_plugin_gate *g, const struct kb_plugin_proc *p, bool ok,
                            const char *why)
{
    if (!ok && p->cfg->required && !g->failed) {
        g->failed = true;
        snprintf(g->why, sizeof(g->why), "rotation hook '%s' (required) failed at pre_finish: %s",
                 p->cfg->name, why != NULL ? why : "no reason given");
    }
    if (--g->pending > 0)
        return;
    g->next = g->host->ready;
    g->host->ready = g;
    kb_plugin__kick(g->host);
}

static void on_kick(uv_timer_t *t)
{
    struct kb_plugins *host = t->data;
    struct kb_plugin_gate *g;

    for (size_t i = 0; i < host->nprocs; i++)
        s_pump(&host->procs[i]);
    while ((g = host->ready) != NULL) {
        host->ready = g->next;
        g->done(g->done_ctx, g->failed ? KB_EHOOK : 0, g->failed ? g->why : NULL);
        free(g);
    }
}

void kb_plugin__kick(struct kb_plugins *host)
{
    if (host->closing)
        return;
    host->kick.data = host;
    uv_timer_start(&host->kick, on_kick, 0, 0);
}

/* -- start and close --------------------------------------------------------------------------- */

/* Who the helpers run as when the broker is root. */
static int s_user(struct kb_plugins *host, char *why, size_t whylen)
{
    const char *name = host->cfg->broker.plugin_user;
    struct passwd pw, *res = NULL;
    char buf[4096];
    int rc;

    host->drop = geteuid() == 0;
    if (!host->drop)
        return 0;
    rc = getpwnam_r(name, &pw, buf, sizeof(buf), &res);
    if (rc != 0 || res == NULL) {
        snprintf(why, whylen, "broker.plugin_user \"%s\" %s", name,
                 rc != 0 ? strerror(rc) : "does not exist");
        return KB_ECONFIG;
    }
    if (pw.pw_uid == 0) {
        snprintf(why, whylen,
                 "broker.plugin_user \"%s\" has uid 0: the plugin helpers must not "
                 "run as root",
                 name);
        return KB_ECONFIG;
    }
    host->uid = pw.pw_uid;
    host->gid = pw.pw_gid;
    return 0;
}

/* The loader's file checks, in the broker too, so that a refusal stops the start. */
static int s_check_files(const struct kb_config *cfg, char *why, size_t whylen)
{
    char reason[512];

    for (size_t i = 0; i < cfg->broker.nplugins; i++) {
        const struct kb_plugin_config *c = &cfg->broker.plugins[i];
        const char *file = c->type == KB_PLUGIN_SHARED ? c->path
                           : c->type == KB_PLUGIN_EXEC ? c->argv[0]
                                                       : NULL;

        if (file == NULL)
            continue;
        if (kb_plugin_check_path(file, geteuid(), reason, sizeof(reason)) != 0) {
            snprintf(why, whylen, "plugin '%s' refused: %s", c->name, reason);
            return KB_EDENIED;
        }
    }
    return 0;
}

int kb_plugins_start(const struct kb_plugins_options *o, struct kb_plugins **out, char *why,
                     size_t whylen)
{
    struct kb_plugins *host;
    int rc;

    *out = NULL;
    if (o->cfg->broker.nplugins == 0)
        return 0;
    rc = s_check_files(o->cfg, why, whylen);
    if (rc != 0)
        return rc;
    host = calloc(1, sizeof(*host));
    if (host == NULL)
        return KB_ENOMEM;
    host->loop = o->loop;
    host->cfg = o->cfg;
    host->bus = o->bus;
    host->exe = o->exe != NULL ? o->exe : "/proc/self/exe";
    rc = s_user(host, why, whylen);
    if (rc != 0) {
        free(host);
        return rc;
    }
    host->nprocs = o->cfg->broker.nplugins;
    host->procs = calloc(host->nprocs, sizeof(*host->procs));
    if (host->procs == NULL) {
        free(host);
        return KB_ENOMEM;
    }
    uv_timer_init(host->loop, &host->kick);
    host->handles++;
    for (size_t i = 0; i < host->nprocs; i++) {
        struct kb_plugin_proc *p = &host->procs[i];

        p->host = host;
        p->cfg = &o->cfg->broker.plugins[i];
        p->hooks = p->cfg->hooks;
        p->backoff_ms = S_BACKOFF_MIN_MS;
        p->buf = malloc(KB_PLUGIN_WIRE_MAX);
        uv_timer_init(host->loop, &p->deadline);
        uv_timer_init(host->loop, &p->restart);
        host->handles += 2;
        if (p->buf == NULL)
            rc = KB_ENOMEM;
    }
    if (rc == 0 && host->bus != NULL)
        rc = kb_events_subscribe(host->bus, KB_EVENT_MASK_ALL, kb_plugin__on_event, host,
                                 &host->sub);
    if (rc != 0) {
        snprintf(why, whylen, "the plugin host: %s", kb_strerror(rc));
        kb_plugins_close(host, NULL, NULL);
        return rc;
    }
    for (size_t i = 0; i < host->nprocs; i++)
        s_spawn(&host->procs[i]);
    *out = host;
    return 0;
}

bool kb_plugins_has_pre_finish(const struct kb_plugins *p)
{
    for (size_t i = 0; p != NULL && i < p->nprocs; i++) {
        if (p->procs[i].cfg->hooks & (1u << 0))
            return true;
    }
    return false;
}

void kb_plugins_close(struct kb_plugins *host, void (*cb)(void *ctx), void *ctx)
{
    struct kb_plugin_gate *g;

    if (host == NULL)
        return;
    host->close_cb = cb;
    host->close_ctx = ctx;
    kb_events_unsubscribe(host->bus, host->sub);
    host->sub = NULL;
    host->closing = true;
    for (size_t i = 0; i < host->nprocs; i++) {
        struct kb_plugin_proc *p = &host->procs[i];
        struct kb_plugin_req *r = p->inflight;

        p->inflight = NULL;
        if (r != NULL)
            s_req_done(p, r, false, "the broker is stopping");
        s_fail_queue(p, "the broker is stopping");
        /* EOF on its socket: the helper calls fini and exits; the deadline timer kills one that
         * does not. */
        s_close_pipe(p);
        if (p->proc_open && !p->exited)
            s_arm_deadline(p, S_CLOSE_KILL_MS);
    }
    while ((g = host->ready) != NULL) {
        host->ready = g->next;
        g->done(g->done_ctx, KB_ECANCELED, "the broker is stopping");
        free(g);
    }
    s_close(host, (uv_handle_t *)&host->kick);
    for (size_t i = 0; i < host->nprocs; i++) {
        struct kb_plugin_proc *p = &host->procs[i];

        /* A running helper's deadline timer closes in its on_helper_exit. */
        if (!p->proc_open || p->exited)
            s_close(host, (uv_handle_t *)&p->deadline);
        s_close(host, (uv_handle_t *)&p->restart);
    }
}
