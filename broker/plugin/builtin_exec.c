/*
 * builtin_exec.c - the "exec" built-in: runs a command for every event, on the helper's loop.
 *
 * The command gets the event in its environment (PATH and KB_* only: nothing of the helper's own
 * environment) and as one JSON line on stdin; each line it writes to stdout or stderr goes to the
 * log (capped, so a noisy command cannot flood it). It runs in a process group of its own, killed
 * whole with SIGKILL at the plugin's deadline. It inherits no descriptor but its three pipes
 * (helper.c marks every other one close-on-exec). Exit 0 is success.
 *
 * Like the rest of the helper this never holds a secret or an AWS credential, and it never
 * blocks the loop: spawning, feeding, reading and reaping are all libuv's.
 */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "common/container.h"
#include "common/err.h"
#include "common/log.h"
#include "plugin/helper_internal.h"
#include "plugin/loader.h"
#include "plugin/wire.h"

#define S_ARGV_MAX         256
#define S_TIMEOUT_MS       10000 /* when the load message names no deadline */
#define S_LINE_MAX         4096  /* one logged line */
#define S_OUTPUT_MAX       65536 /* logged per run, both streams together */
#define S_READ_SIZE        4096
#define S_ENV_MAX          16
#define S_PATH             "/usr/sbin:/usr/bin:/sbin:/bin"
#define S_DESCRIPTION_SIZE 256

struct s_run;

/* One of the command's output pipes, split into lines. */
struct s_stream {
    uv_pipe_t pipe;
    struct s_run *run;
    const char *label; /* "stdout", "stderr" */
    bool open;
    bool cut; /* the current line passed S_LINE_MAX: the rest of it is dropped */
    size_t len;
    char line[S_LINE_MAX];
    char rbuf[S_READ_SIZE];
};

/* One event's command. Freed when the last of its five handles has closed, which may be after
 * the event was answered (or after the kind was unloaded: then ex is NULL). */
struct s_run {
    struct s_exec *ex;
    uv_process_t proc;
    uv_timer_t timer;
    uv_pipe_t in;
    uv_write_t wreq;
    struct s_stream out, err;
    char *input;
    int handles;
    bool exited, timed_out, answered;
    int64_t status;
    int signal;
    size_t logged;
    bool capped;
};

struct s_exec {
    struct kb_helper *h;
    char **argv;
    uint64_t timeout_ms;
    struct s_run *run; /* the run in flight, or NULL */
    char description[S_DESCRIPTION_SIZE];
};

/* --- loading ------------------------------------------------------------------------------- */

static void s_free_argv(char **argv)
{
    for (size_t i = 0; argv != NULL && argv[i] != NULL; i++)
        free(argv[i]);
    free(argv);
}

/* argv[0] is held to the rules of a plugin file: whoever can replace the command runs code as
 * the helper's user. It is checked as resolved (/bin/sh is a link to dash); links on the way
 * live in directories that pass the same checks, so nobody else can re-point them. */
static int s_check_command(const char *cmd, uid_t owner_uid, char *why, size_t whylen)
{
    char real[PATH_MAX];

    if (realpath(cmd, real) == NULL)
        return kb_err_msg(why, whylen, KB_EDENIED, "%s: %s", cmd, strerror(errno));
    return kb_plugin_check_path(real, owner_uid, why, whylen);
}

static int s_exec_load(struct kb_helper *h, struct json_object *msg, void **impl,
                       struct kb_helper_info *info, char *why, size_t whylen)
{
    struct json_object *args = NULL;
    struct s_exec *ex;
    int64_t timeout = S_TIMEOUT_MS, owner = 0;
    size_t n;
    int rc;

    if (!json_object_object_get_ex(msg, "argv", &args) || args == NULL ||
        !json_object_is_type(args, json_type_array))
        return kb_err_msg(why, whylen, KB_EINVAL, "no \"argv\" array");
    n = json_object_array_length(args);
    if (n == 0 || n > S_ARGV_MAX)
        return kb_err_msg(why, whylen, KB_EINVAL, "\"argv\" needs 1 to %d strings", S_ARGV_MAX);
    if (kb_helper__int(msg, "timeout_ms", &timeout) < 0 || timeout <= 0)
        return kb_err_msg(why, whylen, KB_EINVAL, "\"timeout_ms\" is not a positive integer");
    if (kb_helper__int(msg, "owner_uid", &owner) < 0 || owner < 0 || owner > (int64_t)UINT32_MAX)
        return kb_err_msg(why, whylen, KB_EINVAL, "\"owner_uid\" is not a uid");
    ex = calloc(1, sizeof(*ex));
    if (ex == NULL || (ex->argv = calloc(n + 1, sizeof(char *))) == NULL) {
        free(ex);
        return kb_err_msg(why, whylen, KB_ENOMEM, "out of memory");
    }
    rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct json_object *a = json_object_array_get_idx(args, i);

        if (!json_object_is_type(a, json_type_string))
            rc = kb_err_msg(why, whylen, KB_EINVAL, "\"argv\" holds a value that is not a string");
        else if ((ex->argv[i] = strdup(json_object_get_string(a))) == NULL)
            rc = kb_err_msg(why, whylen, KB_ENOMEM, "out of memory");
    }
    if (rc == 0 && ex->argv[0][0] != '/')
        rc = kb_err_msg(why, whylen, KB_EINVAL, "argv[0] %s is not an absolute path", ex->argv[0]);
    if (rc == 0)
        rc = s_check_command(ex->argv[0], (uid_t)owner, why, whylen);
    if (rc != 0) {
        s_free_argv(ex->argv);
        free(ex);
        return rc;
    }
    ex->h = h;
    ex->timeout_ms = (uint64_t)timeout;
    snprintf(ex->description, sizeof(ex->description), "runs %s for every event", ex->argv[0]);
    *impl = ex;
    *info = (struct kb_helper_info){
        .plugin = "exec",
        .version = "builtin",
        .description = ex->description,
        .abi = "1.1",
        .hooks = (1u << KB_PLUGIN_HOOKS) - 1,
    };
    return 0;
}

/* --- output -------------------------------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t s_utf8_len(const unsigned char *p, size_t n)
{
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    size_t len;
    uint32_t cp;

    if (p[0] < 0x80)
        return 1;
    len = p[0] >= 0xc2 && p[0] <= 0xdf   ? 2
          : p[0] >= 0xe0 && p[0] <= 0xef ? 3
          : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4
                                         : 0;
    if (len == 0 || n < len)
        return 0;
    cp = p[0] & (0x3fu >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3fu);
    }
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* A command's output is anything; the log holds text. Control characters and bytes that are not
 * UTF-8 become '?', so every logged line is one valid JSON string. */
static void s_clean(char *out, const char *in, size_t len)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0, o = 0;

    while (i < len) {
        size_t n = s_utf8_len(p + i, len - i);

        if (n == 0 || (n == 1 && ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f))) {
            out[o++] = '?';
            i++;
            continue;
        }
        memcpy(out + o, p + i, n);
        o += n;
        i += n;
    }
    out[o] = '\0';
}

static void s_emit(struct s_stream *s)
{
    struct s_run *run = s->run;
    char clean[S_LINE_MAX + 1];
    size_t len = s->len;

    if (len > 0 && s->line[len - 1] == '\r')
        len--;
    if (run->ex != NULL && !run->capped && run->logged + len > S_OUTPUT_MAX) {
        run->capped = true;
        kb_log(KB_LOG_WARN, "plugin-output", "plugin", kb_helper__name(run->ex->h), "stream",
               s->label, "message",
               "more than 65536 bytes of output: the rest of this run's is not logged", NULL);
    }
    if (run->ex != NULL && !run->capped) {
        run->logged += len;
        s_clean(clean, s->line, len);
        kb_log(KB_LOG_INFO, "plugin-output", "plugin", kb_helper__name(run->ex->h), "stream",
               s->label, "line", clean, "truncated", s->cut ? "true" : NULL, NULL);
    }
    s->len = 0;
    s->cut = false;
}

static void s_take(struct s_stream *s, const char *p, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl != NULL ? (size_t)(nl - p) : n;
        size_t room = S_LINE_MAX - s->len;

        if (!s->cut) {
            memcpy(s->line + s->len, p, take < room ? take : room);
            s->len += take < room ? take : room;
            s->cut = take > room;
        }
        if (nl == NULL)
            return;
        s_emit(s);
        p = nl + 1;
        n -= take + 1;
    }
}

/* --- a run's end ---------------------------------------------------------------------------- */

static void s_release(struct s_run *run)
{
    if (--run->handles > 0)
        return;
    free(run->input);
    free(run);
}

static void on_proc_closed(uv_handle_t *handle)
{
    s_release(container_of((uv_process_t *)handle, struct s_run, proc));
}

static void on_timer_closed(uv_handle_t *handle)
{
    s_release(container_of((uv_timer_t *)handle, struct s_run, timer));
}

static void on_in_closed(uv_handle_t *handle)
{
    s_release(container_of((uv_pipe_t *)handle, struct s_run, in));
}

static void on_stream_closed(uv_handle_t *handle)
{
    s_release(container_of((uv_pipe_t *)handle, struct s_stream, pipe)->run);
}

static void s_close(uv_handle_t *handle, uv_close_cb cb)
{
    if (!uv_is_closing(handle))
        uv_close(handle, cb);
}

/* The output ends: what is left of a last line without '\n' is still a line. */
static void s_stream_end(struct s_stream *s)
{
    if (s->open && (s->len > 0 || s->cut))
        s_emit(s);
    s->open = false;
    s_close((uv_handle_t *)&s->pipe, on_stream_closed);
}

static void s_close_all(struct s_run *run)
{
    s_stream_end(&run->out);
    s_stream_end(&run->err);
    s_close((uv_handle_t *)&run->in, on_in_closed);
    s_close((uv_handle_t *)&run->timer, on_timer_closed);
    s_close((uv_handle_t *)&run->proc, on_proc_closed);
}

/* Answers once the command has exited and both its outputs have ended. */
static void s_maybe_finish(struct s_run *run)
{
    struct s_exec *ex = run->ex;
    char text[96];
    bool ok = false;

    if (run->answered || !run->exited || run->out.open || run->err.open)
        return;
    run->answered = true;
    if (run->timed_out)
        snprintf(text, sizeof(text), "timed out after %llu ms",
                 (unsigned long long)(ex != NULL ? ex->timeout_ms : 0));
    else if (run->signal != 0)
        snprintf(text, sizeof(text), "killed by signal %d", run->signal);
    else if (run->status != 0)
        snprintf(text, sizeof(text), "exited with status %lld", (long long)run->status);
    else
        ok = true;
    s_close_all(run);
    if (ex != NULL) {
        ex->run = NULL;
        run->ex = NULL;
        kb_helper__done(ex->h, ok, ok ? NULL : text);
    }
}

static void on_proc_exit(uv_process_t *proc, int64_t status, int term_signal)
{
    struct s_run *run = container_of(proc, struct s_run, proc);

    run->exited = true;
    run->status = status;
    run->signal = term_signal;
    /* Killed at the deadline: whatever of its group still holds the pipes does not count. */
    if (run->timed_out) {
        s_stream_end(&run->out);
        s_stream_end(&run->err);
    }
    s_maybe_finish(run);
}

static void on_deadline(uv_timer_t *timer)
{
    struct s_run *run = container_of(timer, struct s_run, timer);

    /* The whole group: a shell's children die with it. */
    kill(-run->proc.pid, SIGKILL);
    if (!run->exited) {
        run->timed_out = true;
        uv_process_kill(&run->proc, SIGKILL);
        return;
    }
    /* It exited in time, but something it started still holds its output open: stop waiting
     * for that and answer with the command's own status. */
    s_stream_end(&run->out);
    s_stream_end(&run->err);
    s_maybe_finish(run);
}

/* --- a run's start -------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct s_stream *s = container_of((uv_pipe_t *)handle, struct s_stream, pipe);

    *buf = uv_buf_init(s->rbuf, sizeof(s->rbuf));
}

static void on_output(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct s_stream *s = container_of((uv_pipe_t *)stream, struct s_stream, pipe);

    if (nread > 0) {
        s_take(s, buf->base, (size_t)nread);
    } else if (nread < 0) {
        s_stream_end(s);
        s_maybe_finish(s->run);
    }
}

static void on_input_written(uv_write_t *req, int status)
{
    struct s_run *run = container_of(req, struct s_run, wreq);

    /* EPIPE: the command did not read its input. That is its business, not a failure. */
    s_close((uv_handle_t *)&run->in, on_in_closed);
}

/* The environment, PATH and KB_* only: each string freed by s_free_env. */
static const struct {
    const char *name;
    size_t off;
} s_env_strs[] = {
    {"KB_TENANT", offsetof(struct kb_plugin_event, tenant)},
    {"KB_ARN", offsetof(struct kb_plugin_event, arn)},
    {"KB_VERSION_ID", offsetof(struct kb_plugin_event, version_id)},
    {"KB_PREVIOUS_VERSION_ID", offsetof(struct kb_plugin_event, previous_version_id)},
    {"KB_ROTATION_ID", offsetof(struct kb_plugin_event, rotation_id)},
    {"KB_STEP", offsetof(struct kb_plugin_event, step)},
    {"KB_OP", offsetof(struct kb_plugin_event, op)},
    {"KB_MESSAGE", offsetof(struct kb_plugin_event, message)},
};

static bool s_env_add(char **env, size_t *n, const char *name, const char *value)
{
    size_t len = strlen(name) + 1 + strlen(value) + 1;

    if (*n >= S_ENV_MAX || (env[*n] = malloc(len)) == NULL)
        return false;
    snprintf(env[*n], len, "%s=%s", name, value);
    (*n)++;
    return true;
}

static bool s_env_num(char **env, size_t *n, const char *name, long long value)
{
    char num[32];

    snprintf(num, sizeof(num), "%lld", value);
    return s_env_add(env, n, name, num);
}

static bool s_build_env(char **env, const struct kb_plugin_event *ev)
{
    size_t n = 0;
    bool ok = s_env_add(env, &n, "PATH", S_PATH) && s_env_add(env, &n, "KB_HOOK", ev->hook_name);

    for (size_t i = 0; ok && i < sizeof(s_env_strs) / sizeof(s_env_strs[0]); i++) {
        const char *v = *(const char *const *)(const void *)((const char *)ev + s_env_strs[i].off);

        if (v != NULL)
            ok = s_env_add(env, &n, s_env_strs[i].name, v);
    }
    if (ok && ev->ts != 0)
        ok = s_env_num(env, &n, "KB_TS", (long long)ev->ts);
    if (ok && ev->has_peer)
        ok = s_env_num(env, &n, "KB_PEER_UID", (long long)ev->peer_uid) &&
             s_env_num(env, &n, "KB_PEER_GID", (long long)ev->peer_gid) &&
             s_env_num(env, &n, "KB_PEER_PID", (long long)ev->peer_pid);
    env[n] = NULL;
    return ok;
}

static void s_free_env(char **env)
{
    for (size_t i = 0; env[i] != NULL; i++)
        free(env[i]);
}

static void s_stream_init(struct s_run *run, struct s_stream *s, const char *label)
{
    s->run = run;
    s->label = label;
    uv_pipe_init(kb_helper__loop(run->ex->h), &s->pipe, 0);
    run->handles++;
}

/* Spawns the command. Returns 0, or a libuv error with the run's handles still to be closed
 * (s_close_all); UV_ENOMEM before any handle exists (run->handles is 0). */
static int s_spawn(struct s_run *run, const struct kb_helper_event *hev)
{
    struct s_exec *ex = run->ex;
    uv_loop_t *loop = kb_helper__loop(ex->h);
    uv_stdio_container_t stdio[3];
    uv_process_options_t opts = {0};
    char *env[S_ENV_MAX + 1];
    uv_buf_t b;
    int rc;

    run->input = malloc(hev->json_len + 1);
    if (run->input == NULL || !s_build_env(env, hev->ev)) {
        if (run->input != NULL)
            s_free_env(env);
        return UV_ENOMEM;
    }
    memcpy(run->input, hev->json, hev->json_len);
    run->input[hev->json_len] = '\n';
    uv_pipe_init(loop, &run->in, 0);
    uv_timer_init(loop, &run->timer);
    s_stream_init(run, &run->out, "stdout");
    s_stream_init(run, &run->err, "stderr");
    run->handles += 3; /* in, timer, and the process handle, which uv_spawn initializes always */
    stdio[0] = (uv_stdio_container_t){.flags = UV_CREATE_PIPE | UV_READABLE_PIPE,
                                      .data.stream = (uv_stream_t *)&run->in};
    stdio[1] = (uv_stdio_container_t){.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
                                      .data.stream = (uv_stream_t *)&run->out.pipe};
    stdio[2] = (uv_stdio_container_t){.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
                                      .data.stream = (uv_stream_t *)&run->err.pipe};
    opts.exit_cb = on_proc_exit;
    opts.file = ex->argv[0];
    opts.args = ex->argv;
    opts.cwd = "/";
    opts.env = env;
    opts.flags = UV_PROCESS_DETACHED; /* its own process group, killed whole at the deadline */
    opts.stdio = stdio;
    opts.stdio_count = 3;
    rc = uv_spawn(loop, &run->proc, &opts);
    s_free_env(env);
    if (rc != 0)
        return rc;
    run->out.open = run->err.open = true;
    b = uv_buf_init(run->input, (unsigned)(hev->json_len + 1));
    if (uv_write(&run->wreq, (uv_stream_t *)&run->in, &b, 1, on_input_written) != 0)
        s_close((uv_handle_t *)&run->in, on_in_closed);
    if (uv_read_start((uv_stream_t *)&run->out.pipe, on_alloc, on_output) != 0)
        s_stream_end(&run->out);
    if (uv_read_start((uv_stream_t *)&run->err.pipe, on_alloc, on_output) != 0)
        s_stream_end(&run->err);
    uv_timer_start(&run->timer, on_deadline, ex->timeout_ms, 0);
    return 0;
}

static void s_exec_event(void *impl, const struct kb_helper_event *hev)
{
    struct s_exec *ex = impl;
    struct s_run *run = calloc(1, sizeof(*run));
    char text[PATH_MAX + 64];
    int rc;

    if (run == NULL) {
        kb_helper__done(ex->h, false, "out of memory");
        return;
    }
    run->ex = ex;
    rc = s_spawn(run, hev);
    if (rc != 0) {
        run->ex = NULL;
        run->answered = true;
        if (run->handles > 0) {
            s_close_all(run);
        } else {
            free(run->input);
            free(run);
        }
        snprintf(text, sizeof(text), "cannot run %s: %s", ex->argv[0], uv_strerror(rc));
        kb_helper__done(ex->h, false, text);
        return;
    }
    ex->run = run;
}

static void s_exec_unload(void *impl)
{
    struct s_exec *ex = impl;
    struct s_run *run = ex->run;

    /* The broker is gone with an event in flight: nobody waits for the command any more. */
    if (run != NULL) {
        run->ex = NULL;
        if (!run->exited)
            kill(-run->proc.pid, SIGKILL);
        s_close_all(run);
    }
    s_free_argv(ex->argv);
    free(ex);
}

const struct kb_helper_kind kb_helper__exec = {
    .name = "exec",
    .load = s_exec_load,
    .event = s_exec_event,
    .unload = s_exec_unload,
};
