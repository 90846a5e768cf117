/*
 * helper.c - `keybrokerd --plugin-host`: frames wire.h's lines on the broker's socket, checks
 * each message against what is legal in the helper's state, and hands the plugin one event at a
 * time (the kinds are loader.c's shared objects and the built-ins).
 *
 * The helper trusts the broker's messages no further than their syntax: a line it cannot parse,
 * a message that is not legal now or a line over KB_PLUGIN_WIRE_MAX is logged and ends the helper
 * with a non-zero status (the broker restarts it), and never crashes it. It runs on a loop of its
 * own. It never holds a secret or an AWS credential and never sends anything but "loaded" and
 * "done".
 */
#include "plugin/helper.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/container.h"
#include "common/log.h"
#include "plugin/helper_internal.h"
#include "plugin/wire.h"

#define S_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define S_NAME_MAX   128

enum s_state { S_WAIT_LOAD, S_READY };

struct kb_helper {
    uv_loop_t loop;
    uv_pipe_t wire;
    uv_shutdown_t shutdown;
    uv_timer_t pump; /* reads the next line after an asynchronous done */
    char *buf;       /* KB_PLUGIN_WIRE_MAX bytes of input not yet handled */
    size_t used;
    enum s_state state;
    char *name;
    const struct kb_helper_kind *kind;
    void *impl;
    bool reading, busy, in_pump, stopping;
    int rc;
    /* The event in flight: the message (a reference of ours) and what was read from it. */
    struct json_object *cur;
    struct kb_plugin_event pe;
    struct kb_helper_event hev;
};

struct s_write {
    uv_write_t req;
    struct kb_helper *h;
    size_t len;
    char text[];
};

static const struct kb_helper_kind *const s_kinds[] = {
    &kb_helper__shared,
    &kb_helper__exec,
    &kb_helper__syslog,
};

static void s_stop(struct kb_helper *h, int rc);
static void s_pump(struct kb_helper *h);
static void on_pump(uv_timer_t *timer);

/* --- message members ----------------------------------------------------------------------- */

int kb_helper__str(struct json_object *o, const char *key, const char **out)
{
    struct json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return -1;
    *out = json_object_get_string(v);
    return 1;
}

int kb_helper__int(struct json_object *o, const char *key, int64_t *out)
{
    struct json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_int))
        return -1;
    *out = json_object_get_int64(v);
    return 1;
}

uv_loop_t *kb_helper__loop(struct kb_helper *h)
{
    return &h->loop;
}

const char *kb_helper__name(const struct kb_helper *h)
{
    return h->name != NULL ? h->name : "-";
}

static void s_fatal(struct kb_helper *h, const char *what)
{
    kb_log(KB_LOG_ERROR, "plugin-helper", "plugin", kb_helper__name(h), "message", what, NULL);
    s_stop(h, 1);
}

/* --- writing ------------------------------------------------------------------------------- */

static void on_written(uv_write_t *req, int status)
{
    struct s_write *w = container_of(req, struct s_write, req);
    struct kb_helper *h = w->h;

    free(w);
    if (status < 0 && status != UV_ECANCELED && !h->stopping) {
        /* The broker is gone; it restarts the helper if it is not shutting down. */
        kb_log(KB_LOG_WARN, "plugin-helper", "plugin", kb_helper__name(h), "message",
               "cannot write to the broker", "error", uv_strerror(status), NULL);
        s_stop(h, 0);
    }
}

/* Sends o as one line and drops the reference to it. */
static void s_send(struct kb_helper *h, struct json_object *o)
{
    const char *text;
    struct s_write *w;
    size_t len;
    uv_buf_t b;
    int rc;

    text = o != NULL ? json_object_to_json_string_length(o, S_JSON_FLAGS, &len) : NULL;
    w = text != NULL ? malloc(sizeof(*w) + len + 1) : NULL;
    if (w == NULL) {
        json_object_put(o);
        s_fatal(h, "out of memory");
        return;
    }
    w->h = h;
    w->len = len + 1;
    memcpy(w->text, text, len);
    w->text[len] = '\n';
    json_object_put(o);
    b = uv_buf_init(w->text, (unsigned)w->len);
    rc = uv_write(&w->req, (uv_stream_t *)&h->wire, &b, 1, on_written);
    if (rc != 0) {
        free(w);
        kb_log(KB_LOG_WARN, "plugin-helper", "plugin", kb_helper__name(h), "message",
               "cannot write to the broker", "error", uv_strerror(rc), NULL);
        s_stop(h, 0);
    }
}

static void s_add_str(struct json_object *o, const char *key, const char *value)
{
    if (value != NULL)
        json_object_object_add(o, key, json_object_new_string(value));
}

/* --- load ---------------------------------------------------------------------------------- */

static void s_send_refused(struct kb_helper *h, const char *why)
{
    struct json_object *o = json_object_new_object();
    char text[1024];

    snprintf(text, sizeof(text), "plugin '%s' refused: %s", kb_helper__name(h), why);
    kb_log(KB_LOG_WARN, "plugin-refused", "plugin", kb_helper__name(h), "error", text, NULL);
    s_add_str(o, "type", "loaded");
    json_object_object_add(o, "ok", json_object_new_boolean(0));
    s_add_str(o, "error", text);
    s_send(h, o);
}

static void s_send_loaded(struct kb_helper *h, const struct kb_helper_info *info)
{
    struct json_object *o = json_object_new_object();
    struct json_object *hooks = json_object_new_array();

    for (unsigned i = 0; i < KB_PLUGIN_HOOKS; i++) {
        if ((info->hooks & KB_PLUGIN_HOOK_MASK(i)) != 0)
            json_object_array_add(hooks, json_object_new_string(kb_plugin_hook_name(i)));
    }
    s_add_str(o, "type", "loaded");
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    s_add_str(o, "plugin", info->plugin);
    s_add_str(o, "version", info->version);
    s_add_str(o, "abi", info->abi);
    s_add_str(o, "description", info->description);
    json_object_object_add(o, "hooks", hooks);
    s_send(h, o);
}

static void s_on_load(struct kb_helper *h, struct json_object *msg)
{
    struct kb_helper_info info = {0};
    const char *name = NULL, *kind = NULL;
    char why[768];

    if (kb_helper__str(msg, "name", &name) != 1 || name[0] == '\0' || strlen(name) > S_NAME_MAX) {
        s_fatal(h, "a load message without a plugin name");
        return;
    }
    h->name = strdup(name);
    if (h->name == NULL) {
        s_fatal(h, "out of memory");
        return;
    }
    if (kb_helper__str(msg, "kind", &kind) != 1)
        kind = "";
    for (size_t i = 0; i < sizeof(s_kinds) / sizeof(s_kinds[0]); i++) {
        if (strcmp(s_kinds[i]->name, kind) == 0)
            h->kind = s_kinds[i];
    }
    why[0] = '\0';
    if (h->kind == NULL) {
        snprintf(why, sizeof(why), "unknown kind '%s' (known: shared, exec, syslog)", kind);
    } else if (h->kind->load(h, msg, &h->impl, &info, why, sizeof(why)) != 0) {
        h->kind = NULL;
        if (why[0] == '\0')
            snprintf(why, sizeof(why), "cannot load");
    }
    if (h->kind == NULL) {
        /* A refusal is an answer, not a failure of the helper: the broker reports it and does
         * not restart the plugin, so the helper ends normally. */
        s_send_refused(h, why);
        s_stop(h, 0);
        return;
    }
    kb_log(KB_LOG_INFO, "plugin-loaded", "plugin", h->name, "kind", h->kind->name, "version",
           info.version, "abi", info.abi, NULL);
    h->state = S_READY;
    s_send_loaded(h, &info);
}

/* --- event --------------------------------------------------------------------------------- */

/* The string members of an event: data, so that the list is in one place. */
static const struct {
    const char *key;
    size_t off;
} s_event_strs[] = {
    {"tenant", offsetof(struct kb_plugin_event, tenant)},
    {"arn", offsetof(struct kb_plugin_event, arn)},
    {"version_id", offsetof(struct kb_plugin_event, version_id)},
    {"previous_version_id", offsetof(struct kb_plugin_event, previous_version_id)},
    {"rotation_id", offsetof(struct kb_plugin_event, rotation_id)},
    {"step", offsetof(struct kb_plugin_event, step)},
    {"op", offsetof(struct kb_plugin_event, op)},
    {"message", offsetof(struct kb_plugin_event, message)},
};

/* Fills h->pe from event (members that do not apply are absent). Returns NULL or what is wrong. */
static const char *s_read_event(struct kb_helper *h, struct json_object *event)
{
    struct kb_plugin_event *pe = &h->pe;
    struct json_object *peer;
    int64_t ts = 0, uid = 0, gid = 0, pid = 0;

    for (size_t i = 0; i < sizeof(s_event_strs) / sizeof(s_event_strs[0]); i++) {
        const char **field = (const char **)(void *)((char *)pe + s_event_strs[i].off);

        if (kb_helper__str(event, s_event_strs[i].key, field) < 0)
            return "an event member that should be a string is not";
    }
    if (kb_helper__int(event, "ts", &ts) < 0)
        return "an event's ts is not an integer";
    pe->ts = ts;
    if (json_object_object_get_ex(event, "peer", &peer) && peer != NULL) {
        if (!json_object_is_type(peer, json_type_object) || kb_helper__int(peer, "uid", &uid) < 0 ||
            kb_helper__int(peer, "gid", &gid) < 0 || kb_helper__int(peer, "pid", &pid) < 0 ||
            uid < 0 || uid > (int64_t)UINT32_MAX || gid < 0 || gid > (int64_t)UINT32_MAX ||
            pid < INT32_MIN || pid > INT32_MAX)
            return "an event's peer is not {uid, gid, pid} of integers";
        pe->has_peer = 1;
        pe->peer_uid = (uint32_t)uid;
        pe->peer_gid = (uint32_t)gid;
        pe->peer_pid = (int32_t)pid;
    }
    return NULL;
}

static void s_on_event(struct kb_helper *h, struct json_object *msg)
{
    struct json_object *event = NULL;
    const char *hook_name = NULL, *bad;
    int64_t id = 0;
    size_t len = 0;
    int hook;

    if (kb_helper__int(msg, "id", &id) != 1) {
        s_fatal(h, "an event without an integer id");
        return;
    }
    hook = kb_helper__str(msg, "hook", &hook_name) == 1 ? kb_plugin_hook_parse(hook_name) : -1;
    if (hook < 0) {
        s_fatal(h, "an event of an unknown hook");
        return;
    }
    if (!json_object_object_get_ex(msg, "event", &event) || event == NULL) {
        event = json_object_new_object();
        if (event == NULL || json_object_object_add(msg, "event", event) != 0) {
            s_fatal(h, "out of memory");
            return;
        }
    } else if (!json_object_is_type(event, json_type_object)) {
        s_fatal(h, "an event whose \"event\" is not an object");
        return;
    }
    memset(&h->pe, 0, sizeof(h->pe));
    h->pe.size = sizeof(h->pe);
    h->pe.hook = (uint32_t)hook;
    h->pe.hook_name = kb_plugin_hook_name((unsigned)hook);
    bad = s_read_event(h, event);
    if (bad != NULL) {
        s_fatal(h, bad);
        return;
    }
    /* The text the built-ins hand on: the event with its hook named, on one line. The strings
     * read above stay valid: adding a member frees none of the others. */
    json_object_object_add(event, "hook", json_object_new_string(h->pe.hook_name));
    h->hev = (struct kb_helper_event){
        .id = id,
        .ev = &h->pe,
        .json = json_object_to_json_string_length(event, S_JSON_FLAGS, &len),
    };
    h->hev.json_len = len;
    if (h->hev.json == NULL) {
        s_fatal(h, "out of memory");
        return;
    }
    h->cur = json_object_get(msg);
    h->busy = true;
    h->kind->event(h->impl, &h->hev);
}

void kb_helper__done(struct kb_helper *h, bool ok, const char *text)
{
    struct json_object *o;

    if (!h->busy)
        return;
    h->busy = false;
    if (!h->stopping) {
        o = json_object_new_object();
        s_add_str(o, "type", "done");
        json_object_object_add(o, "id", json_object_new_int64(h->hev.id));
        json_object_object_add(o, "ok", json_object_new_boolean(ok));
        if (ok)
            s_add_str(o, "message", text);
        else
            s_add_str(o, "error", text != NULL ? text : "failed");
        s_send(h, o);
    }
    json_object_put(h->cur);
    h->cur = NULL;
    memset(&h->hev, 0, sizeof(h->hev));
    /* Never read the next line from inside a kind's callback: the kind is still on the stack,
     * and the next line may unload it. */
    if (!h->in_pump && !h->stopping)
        uv_timer_start(&h->pump, on_pump, 0, 0);
}

/* --- reading ------------------------------------------------------------------------------- */

/* Which message is legal in which state (OpenSSH's monitor table idea). */
static const struct {
    const char *type;
    enum s_state state;
    void (*fn)(struct kb_helper *h, struct json_object *msg);
} s_dispatch[] = {
    {"load", S_WAIT_LOAD, s_on_load},
    {"event", S_READY, s_on_event},
};

static void s_line(struct kb_helper *h, const char *line, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *msg;
    const char *type = NULL;
    size_t end;

    if (tok == NULL) {
        s_fatal(h, "out of memory");
        return;
    }
    msg = json_tokener_parse_ex(tok, line, (int)len);
    end = json_tokener_get_parse_end(tok);
    if (msg != NULL && json_tokener_get_error(tok) == json_tokener_success)
        while (end < len && (line[end] == ' ' || line[end] == '\t' || line[end] == '\r'))
            end++;
    if (msg == NULL || json_tokener_get_error(tok) != json_tokener_success || end != len ||
        !json_object_is_type(msg, json_type_object)) {
        json_tokener_free(tok);
        json_object_put(msg);
        s_fatal(h, "a line from the broker that is not one JSON object");
        return;
    }
    json_tokener_free(tok);
    if (kb_helper__str(msg, "type", &type) == 1) {
        for (size_t i = 0; i < sizeof(s_dispatch) / sizeof(s_dispatch[0]); i++) {
            if (strcmp(s_dispatch[i].type, type) == 0 && s_dispatch[i].state == h->state) {
                s_dispatch[i].fn(h, msg);
                json_object_put(msg);
                return;
            }
        }
    }
    json_object_put(msg);
    s_fatal(h, "a message of an unknown type, or one not legal now");
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct kb_helper *h = container_of((uv_pipe_t *)handle, struct kb_helper, wire);

    *buf = uv_buf_init(h->buf + h->used, (unsigned)(KB_PLUGIN_WIRE_MAX - h->used));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct kb_helper *h = container_of((uv_pipe_t *)stream, struct kb_helper, wire);

    if (nread > 0) {
        h->used += (size_t)nread;
        s_pump(h);
    } else if (nread < 0) {
        /* EOF is how the broker says stop; a reset means it is gone. Either way nobody is left
         * to read an answer, so the event in flight (an exec command) is ended too. */
        if (nread != UV_EOF && nread != UV_ECONNRESET)
            kb_log(KB_LOG_WARN, "plugin-helper", "plugin", kb_helper__name(h), "message",
                   "cannot read from the broker", "error", uv_strerror((int)nread), NULL);
        s_stop(h, 0);
    }
}

/* Handles complete lines while no event is in flight. Reading goes on while one is (only the
 * lines wait), so that the broker's EOF ends a command in flight at once; it pauses only while
 * the buffer is full. */
static void s_pump(struct kb_helper *h)
{
    char text[96];

    if (h->in_pump)
        return;
    h->in_pump = true;
    while (!h->stopping && !h->busy) {
        char *nl = memchr(h->buf, '\n', h->used);
        size_t len;

        if (nl == NULL) {
            if (h->used >= KB_PLUGIN_WIRE_MAX) {
                snprintf(text, sizeof(text), "a line from the broker longer than %d bytes",
                         KB_PLUGIN_WIRE_MAX);
                s_fatal(h, text);
            }
            break;
        }
        len = (size_t)(nl - h->buf);
        s_line(h, h->buf, len);
        memmove(h->buf, nl + 1, h->used - len - 1);
        h->used -= len + 1;
    }
    h->in_pump = false;
    if (h->stopping)
        return;
    if (!h->reading && h->used < KB_PLUGIN_WIRE_MAX) {
        int rc = uv_read_start((uv_stream_t *)&h->wire, on_alloc, on_read);

        if (rc != 0) {
            kb_log(KB_LOG_ERROR, "plugin-helper", "plugin", kb_helper__name(h), "message",
                   "cannot read from the broker", "error", uv_strerror(rc), NULL);
            s_stop(h, 1);
            return;
        }
        h->reading = true;
    } else if (h->reading && h->used >= KB_PLUGIN_WIRE_MAX) {
        uv_read_stop((uv_stream_t *)&h->wire);
        h->reading = false;
    }
}

static void on_pump(uv_timer_t *timer)
{
    s_pump(container_of(timer, struct kb_helper, pump));
}

/* --- stopping ------------------------------------------------------------------------------ */

static void on_closed(uv_handle_t *handle)
{
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct kb_helper *h = container_of(req, struct kb_helper, shutdown);

    uv_close((uv_handle_t *)&h->wire, on_closed);
}

/* Unloads the plugin (its fini) and closes everything once what was written has gone out. */
static void s_stop(struct kb_helper *h, int rc)
{
    if (h->stopping)
        return;
    h->stopping = true;
    h->rc = rc;
    if (h->reading)
        uv_read_stop((uv_stream_t *)&h->wire);
    h->reading = false;
    if (h->kind != NULL)
        h->kind->unload(h->impl);
    h->kind = NULL;
    h->impl = NULL;
    h->busy = false;
    json_object_put(h->cur);
    h->cur = NULL;
    uv_close((uv_handle_t *)&h->pump, on_closed);
    /* A refusal's "loaded" must reach the broker: shutdown waits for pending writes. */
    if (uv_shutdown(&h->shutdown, (uv_stream_t *)&h->wire, on_shutdown) != 0)
        uv_close((uv_handle_t *)&h->wire, on_closed);
}

/* Nothing the helper runs may inherit a descriptor but the stdio it is given. The broker hands
 * the socket on fd 3 without close-on-exec (it has to, to get it through exec). */
static void s_cloexec_all(void)
{
    DIR *d;
    struct dirent *e;

    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return;
    d = opendir("/proc/self/fd");
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);

        if (*end == '\0' && end != e->d_name && fd >= 3 && fd != dirfd(d))
            fcntl((int)fd, F_SETFD, fcntl((int)fd, F_GETFD) | FD_CLOEXEC);
    }
    closedir(d);
}

static void on_walk_close(uv_handle_t *handle, void *arg)
{
    if (!uv_is_closing(handle))
        uv_close(handle, on_closed);
}

int kb_plugin_helper_main(int fd)
{
    struct kb_helper *h;
    struct stat st;
    int rc;

    /* Checked before the loop exists: were fd not open, the loop's own epoll descriptor could
     * take its number, and libuv aborts on a pipe opened over it. */
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        kb_log(KB_LOG_ERROR, "plugin-helper", "message",
               "the broker's socket is not open on the helper's descriptor", NULL);
        if (fd >= 0 && fcntl(fd, F_GETFD) >= 0)
            close(fd);
        return 1;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL || (h->buf = malloc(KB_PLUGIN_WIRE_MAX)) == NULL) {
        kb_log(KB_LOG_ERROR, "plugin-helper", "message", "out of memory", NULL);
        free(h);
        close(fd);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    s_cloexec_all();
    rc = uv_loop_init(&h->loop);
    if (rc != 0) {
        kb_log(KB_LOG_ERROR, "plugin-helper", "message", "cannot make a loop", "error",
               uv_strerror(rc), NULL);
        free(h->buf);
        free(h);
        close(fd);
        return 1;
    }
    uv_timer_init(&h->loop, &h->pump);
    uv_pipe_init(&h->loop, &h->wire, 0);
    rc = uv_pipe_open(&h->wire, fd);
    if (rc != 0) {
        kb_log(KB_LOG_ERROR, "plugin-helper", "message", "cannot use the broker's socket", "error",
               uv_strerror(rc), NULL);
        close(fd);
        h->rc = 1;
        h->stopping = true;
        uv_close((uv_handle_t *)&h->wire, on_closed);
        uv_close((uv_handle_t *)&h->pump, on_closed);
    } else {
        s_pump(h);
    }
    uv_run(&h->loop, UV_RUN_DEFAULT);
    /* Nothing should be left; close whatever is, so the loop can be closed. */
    uv_walk(&h->loop, on_walk_close, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&h->loop) != 0)
        kb_log(KB_LOG_WARN, "plugin-helper", "message", "the loop did not close", NULL);
    rc = h->rc;
    json_object_put(h->cur);
    free(h->name);
    free(h->buf);
    free(h);
    return rc;
}
