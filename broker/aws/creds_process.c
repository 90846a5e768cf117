/*
 * creds_process.c - runs a profile's `credential_process` and reads its JSON.
 *
 * The command runs as the SDKs run it, through "/bin/sh -c", but in a process group of its own
 * (UV_PROCESS_DETACHED makes it a session leader) so that a timeout, a cancel or an oversized
 * output kills the shell and everything it started, not just the shell. Standard output is
 * collected into guarded memory, capped at KB_CREDS_MAX_DOC bytes, and wiped when freed; the
 * first line of standard error may go into the reason of a failure.
 *
 * This module must never log, and never put a byte of the command's standard output (which
 * holds the secret) into a reason: a failure reports the exit code, the signal or the parse error.
 */
#include "aws/creds_internal.h"

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/container.h"
#include "common/err.h"

struct kb_creds_process {
    uv_process_t proc;
    uv_pipe_t out;
    uv_pipe_t err;
    uv_timer_t timer;
    kb_creds_done_cb cb;
    void *ctx;
    long timeout_ms;
    unsigned handles; /* initialised handles not yet closed: freed when it reaches 0 */
    int pid;
    bool spawned, exited, out_done, err_done, finished;
    bool timed_out, canceled, too_big;
    int64_t exit_status;
    int term_signal;
    char *out_buf; /* sodium_malloc'd, KB_CREDS_MAX_DOC + 1 bytes; sodium_free wipes it */
    size_t out_len;
    char err_text[256]; /* the start of stderr */
    size_t err_len;
    char err_scratch[1024];
};

static void on_close(uv_handle_t *h)
{
    struct kb_creds_process *p = h->data;

    if (--p->handles > 0)
        return;
    sodium_free(p->out_buf);
    free(p);
}

static void s_close_all(struct kb_creds_process *p)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&p->proc, (uv_handle_t *)&p->out, (uv_handle_t *)&p->err,
                         (uv_handle_t *)&p->timer};

    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++) {
        if (hs[i]->type != UV_UNKNOWN_HANDLE && !uv_is_closing(hs[i]))
            uv_close(hs[i], on_close);
    }
}

/* The first line of stderr, printable ASCII only, quoted into out. */
static void s_stderr_excerpt(const struct kb_creds_process *p, char *out, size_t outlen)
{
    char line[160];
    size_t n = 0;

    for (size_t i = 0; i < p->err_len && n < sizeof(line) - 1; i++) {
        unsigned char ch = (unsigned char)p->err_text[i];
        if (ch == '\n' || ch == '\r')
            break;
        line[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    line[n] = '\0';
    if (n == 0)
        out[0] = '\0';
    else
        snprintf(out, outlen, " (stderr: \"%s%s\")", line,
                 n == sizeof(line) - 1 || p->err_len == sizeof(p->err_text) ? "..." : "");
}

/* Decides the outcome once the child has exited and its pipes are done. */
static int s_outcome(struct kb_creds_process *p, struct kb_credentials *creds, char *why,
                     size_t whylen)
{
    char excerpt[200], parse_why[KB_CREDS_WHY_LEN];
    int rc;

    if (p->canceled) {
        snprintf(why, whylen, "credential_process canceled");
        return KB_ECANCELED;
    }
    if (p->timed_out) {
        snprintf(why, whylen, "credential_process timed out after %ld ms (killed)", p->timeout_ms);
        return KB_ETIMEDOUT;
    }
    if (p->too_big) {
        snprintf(why, whylen, "credential_process printed more than %d bytes (killed)",
                 KB_CREDS_MAX_DOC);
        return KB_ETOOBIG;
    }
    s_stderr_excerpt(p, excerpt, sizeof(excerpt));
    if (p->term_signal != 0) {
        snprintf(why, whylen, "credential_process killed by signal %d%s", p->term_signal, excerpt);
        return KB_ENOCREDS;
    }
    if (p->exit_status != 0) {
        snprintf(why, whylen, "credential_process exited with code %lld%s",
                 (long long)p->exit_status, excerpt);
        return KB_ENOCREDS;
    }
    rc = kb_creds_doc_parse(KB_CREDS_DOC_PROCESS, p->out_buf, p->out_len, creds, parse_why,
                            sizeof(parse_why));
    /* A reason cut short is still a reason: the truncation is accepted, not an error. */
    if (rc != 0 && snprintf(why, whylen, "credential_process output: %s", parse_why) < 0)
        why[0] = '\0';
    return rc;
}

static void s_maybe_finish(struct kb_creds_process *p)
{
    struct kb_credentials creds;
    char why[KB_CREDS_WHY_LEN];
    int rc;

    if (p->finished || !p->exited || !p->out_done || !p->err_done)
        return;
    p->finished = true;
    uv_timer_stop(&p->timer);
    memset(&creds, 0, sizeof(creds));
    why[0] = '\0';
    rc = s_outcome(p, &creds, why, sizeof(why));
    sodium_memzero(p->out_buf, p->out_len);
    p->cb(p->ctx, rc, rc == 0 ? &creds : NULL, why);
    kb_credentials_cleanup(&creds);
    s_close_all(p);
}

static void s_stop_reading(struct kb_creds_process *p)
{
    uv_read_stop((uv_stream_t *)&p->out);
    uv_read_stop((uv_stream_t *)&p->err);
    p->out_done = true;
    p->err_done = true;
}

/* Timeout, cancel or oversized output: kill the whole group and stop waiting for the pipes (a
 * grandchild that escaped the group could hold them open). The exit callback still comes. */
static void s_abort(struct kb_creds_process *p)
{
    if (p->finished)
        return;
    if (p->pid > 0)
        uv_kill(-p->pid, SIGKILL); /* ESRCH when the group is gone already: fine */
    s_stop_reading(p);
    s_maybe_finish(p);
}

static void on_timer(uv_timer_t *t)
{
    struct kb_creds_process *p = container_of(t, struct kb_creds_process, timer);

    if (!p->canceled)
        p->timed_out = true;
    s_abort(p);
}

static void on_child_exit(uv_process_t *h, int64_t exit_status, int term_signal)
{
    struct kb_creds_process *p = container_of(h, struct kb_creds_process, proc);

    p->exited = true;
    p->exit_status = exit_status;
    p->term_signal = term_signal;
    s_maybe_finish(p);
}

static void on_out_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct kb_creds_process *p = container_of((uv_pipe_t *)h, struct kb_creds_process, out);

    /* One byte beyond the cap, so that an oversized output is seen rather than cut. */
    buf->base = p->out_buf + p->out_len;
    buf->len = KB_CREDS_MAX_DOC + 1 - p->out_len;
}

static void on_out_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct kb_creds_process *p = container_of((uv_pipe_t *)s, struct kb_creds_process, out);

    if (nread > 0) {
        p->out_len += (size_t)nread;
        if (p->out_len > KB_CREDS_MAX_DOC) {
            p->too_big = true;
            s_abort(p);
        }
        return;
    }
    if (nread < 0) {
        uv_read_stop(s);
        p->out_done = true;
        s_maybe_finish(p);
    }
}

static void on_err_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct kb_creds_process *p = container_of((uv_pipe_t *)h, struct kb_creds_process, err);

    buf->base = p->err_scratch;
    buf->len = sizeof(p->err_scratch);
}

static void on_err_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct kb_creds_process *p = container_of((uv_pipe_t *)s, struct kb_creds_process, err);

    if (nread > 0) {
        size_t room = sizeof(p->err_text) - p->err_len;
        size_t n = (size_t)nread < room ? (size_t)nread : room;
        memcpy(p->err_text + p->err_len, buf->base, n);
        p->err_len += n;
        return;
    }
    if (nread < 0) {
        uv_read_stop(s);
        p->err_done = true;
        s_maybe_finish(p);
    }
}

/* Initialises the pipes and the timer; each counts as a handle to close. */
static int s_init_handles(uv_loop_t *loop, struct kb_creds_process *p)
{
    int rc;

    p->proc.data = p->out.data = p->err.data = p->timer.data = p;
    rc = uv_pipe_init(loop, &p->out, 0);
    if (rc != 0)
        return rc;
    p->handles++;
    rc = uv_pipe_init(loop, &p->err, 0);
    if (rc != 0)
        return rc;
    p->handles++;
    rc = uv_timer_init(loop, &p->timer);
    if (rc != 0)
        return rc;
    p->handles++;
    return 0;
}

static int s_spawn(uv_loop_t *loop, struct kb_creds_process *p, const char *command)
{
    char *args[] = {"/bin/sh", "-c", (char *)command, NULL};
    uv_stdio_container_t stdio[3];
    uv_process_options_t opts;
    int rc;

    memset(&opts, 0, sizeof(opts));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&p->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&p->err;
    opts.exit_cb = on_child_exit;
    opts.file = args[0];
    opts.args = args;
    opts.stdio = stdio;
    opts.stdio_count = 3;
    opts.flags = UV_PROCESS_DETACHED; /* its own process group, killed as a whole */
    rc = uv_spawn(loop, &p->proc, &opts);
    p->handles++; /* uv_spawn initialises the handle even when it fails */
    if (rc != 0)
        return rc;
    p->spawned = true;
    p->pid = p->proc.pid;
    return 0;
}

int kb_creds_process_start(uv_loop_t *loop, const char *command, long timeout_ms,
                           kb_creds_done_cb cb, void *ctx, struct kb_creds_process **out)
{
    struct kb_creds_process *p = calloc(1, sizeof(*p));
    int rc;

    /* sodium_malloc aborts unless the library is initialised (idempotent, thread-safe). */
    if (p == NULL || sodium_init() < 0) {
        free(p);
        return KB_ENOMEM;
    }
    p->cb = cb;
    p->ctx = ctx;
    p->timeout_ms = timeout_ms;
    p->out_buf = sodium_malloc(KB_CREDS_MAX_DOC + 1);
    if (p->out_buf == NULL) {
        free(p);
        return KB_ENOMEM;
    }
    rc = s_init_handles(loop, p);
    if (rc == 0)
        rc = s_spawn(loop, p, command);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&p->out, on_out_alloc, on_out_read);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&p->err, on_err_alloc, on_err_read);
    if (rc == 0)
        rc = uv_timer_start(&p->timer, on_timer, (uint64_t)timeout_ms, 0);
    if (rc != 0) {
        if (p->spawned)
            uv_kill(-p->pid, SIGKILL);
        p->finished = true;
        if (p->handles == 0) {
            sodium_free(p->out_buf);
            free(p);
        } else {
            s_close_all(p);
        }
        return rc;
    }
    *out = p;
    return 0;
}

void kb_creds_process_cancel(struct kb_creds_process *p)
{
    if (p->finished)
        return;
    p->canceled = true;
    /* Act from the timer's callback, so that cb never runs inside this call. */
    uv_timer_start(&p->timer, on_timer, 0, 0);
}
