/*
 * server.c - the listener: binding the socket path (mode, group, stale-socket detection) or
 * adopting systemd's socket, accepting, the sweep timer, watch events, and shutdown.
 *
 * A socket file is replaced only when nothing answers on it (connect gives ECONNREFUSED); a path
 * that is not a socket is never touched, and the file is removed at shutdown only while it is
 * still the one this process created. This file must never relax the socket's mode beyond the
 * configured one, even for a moment (the umask covers the window between bind and chmod).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "server/server_internal.h"

#define S_BACKLOG   4096
#define S_LISTEN_FD 3 /* SD_LISTEN_FDS_START */

int kb_server_new(uv_loop_t *loop, const struct kb_server_options *opt, struct kb_server **out)
{
    const char *path;
    struct kb_server *s;
    int rc = KB_ENOMEM;

    if (loop == NULL || opt == NULL || opt->cfg == NULL || out == NULL)
        return KB_EINVAL;
    *out = NULL;
    path = opt->socket_path != NULL ? opt->socket_path : opt->cfg->broker.socket.path;
    if (path == NULL || path[0] == '\0')
        return KB_EINVAL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return KB_ENOMEM;
    s->loop = loop;
    s->cfg = opt->cfg;
    s->engine = opt->engine;
    s->aws = opt->aws;
    s->events = opt->events;
    s->max_queued = opt->max_queued != 0 ? opt->max_queued : KB_SERVER_MAX_QUEUED;
    s->write_stall_ms = opt->write_stall_ms != 0 ? opt->write_stall_ms : KB_SERVER_WRITE_STALL;
    s->use_listen_fds = opt->use_listen_fds;
    s->path = strdup(path);
    s->version = strdup(opt->version != NULL ? opt->version : "0");
    s->region = strdup(opt->region != NULL ? opt->region : "");
    s->get_cache = calloc(opt->cfg->ntenants + 1, sizeof(*s->get_cache));
    if (s->path == NULL || s->version == NULL || s->region == NULL || s->get_cache == NULL)
        goto cleanup;
    rc = kb_srv_watch_subscribe(s);
    if (rc != 0)
        goto cleanup;
    rc = uv_timer_init(loop, &s->sweep);
    if (rc != 0)
        goto cleanup;
    s->sweep.data = s;
    s->sweep_open = true;
    s->pending = 1;
    s->started_ms = uv_now(loop);
    s->started = time(NULL);
    *out = s;
    return 0;
cleanup:
    kb_srv_watch_unsubscribe(s);
    free(s->path);
    free(s->version);
    free(s->region);
    free(s->get_cache);
    free(s);
    return rc;
}

const char *kb_server_path(const struct kb_server *s)
{
    return s->path;
}

/* -- accept and sweep -------------------------------------------------------------------------- */

static void on_connection(uv_stream_t *listener, int status)
{
    struct kb_server *s = listener->data;

    if (s->closing)
        return;
    if (status < 0) {
        kb_log(KB_LOG_WARN, "accept", "error", uv_strerror(status), NULL);
        return;
    }
    kb_srv_conn_accept(s);
}

static void on_sweep(uv_timer_t *t)
{
    struct kb_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    struct kb_srv_conn *c = s->conns, *next;

    for (; c != NULL; c = next) {
        next = c->next; /* the sweep may close c, which unlinks it */
        kb_srv_conn_sweep(c, now);
    }
}

/* -- binding ----------------------------------------------------------------------------------- */

/* Is someone serving path? 0: nothing there (or a stale socket, removed); KB_EINVAL with errbuf
 * set: a live broker, or not a socket. */
static int s_check_path(const char *path, char *errbuf, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(errbuf, errlen, "%s exists and is not a socket: refusing to replace it", path);
        return KB_EINVAL;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
    close(fd);
    if (rc == -ECONNREFUSED) {
        kb_log(KB_LOG_INFO, "socket", "path", path, "message", "replacing a stale socket", NULL);
        return unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
    }
    if (rc == 0 || rc == -EAGAIN || rc == -EINPROGRESS) {
        snprintf(errbuf, errlen, "another keybrokerd serves %s", path);
        return KB_EINVAL;
    }
    snprintf(errbuf, errlen, "cannot probe %s: %s", path, uv_strerror(rc));
    return rc;
}

/* Binds with the configured mode from the start (umask), then sets group and mode exactly. */
static int s_bind(struct kb_server *s, char *errbuf, size_t errlen)
{
    const struct kb_config_socket *cs = &s->cfg->broker.socket;
    struct stat st;
    mode_t old;
    int rc;

    if (strlen(s->path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        snprintf(errbuf, errlen, "socket path %s is too long", s->path);
        return KB_EINVAL;
    }
    rc = s_check_path(s->path, errbuf, errlen);
    if (rc != 0)
        return rc;
    old = umask((mode_t)(~cs->mode & 0777));
    rc = uv_pipe_bind(&s->listener, s->path);
    umask(old);
    if (rc != 0) {
        snprintf(errbuf, errlen, "cannot bind %s: %s", s->path, uv_strerror(rc));
        return rc;
    }
    s->bound = true;
    if (lstat(s->path, &st) == 0) {
        s->bound_dev = st.st_dev;
        s->bound_ino = st.st_ino;
    }
    if (cs->has_group && chown(s->path, (uid_t)-1, (gid_t)cs->gid) != 0) {
        rc = -errno;
        snprintf(errbuf, errlen, "cannot set the group of %s: %s", s->path, uv_strerror(rc));
        return rc;
    }
    if (chmod(s->path, (mode_t)cs->mode) != 0) {
        rc = -errno;
        snprintf(errbuf, errlen, "cannot set the mode of %s: %s", s->path, uv_strerror(rc));
        return rc;
    }
    return 0;
}

/* systemd socket activation: LISTEN_PID is us and LISTEN_FDS >= 1. The variables are removed so
 * that children do not think the socket is theirs. */
static bool s_listen_fds(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    char *end = NULL;
    long p, n;
    bool ours = false;

    if (pid != NULL && fds != NULL) {
        errno = 0;
        p = strtol(pid, &end, 10);
        ours = errno == 0 && end != pid && *end == '\0' && p == (long)getpid();
        end = NULL;
        n = strtol(fds, &end, 10);
        ours = ours && errno == 0 && end != fds && *end == '\0' && n >= 1;
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return ours;
}

static int s_adopt(struct kb_server *s, char *errbuf, size_t errlen)
{
    int type = 0, domain = 0;
    socklen_t len = sizeof(type);
    char name[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    size_t namelen = sizeof(name);
    int rc;

    if (getsockopt(S_LISTEN_FD, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM ||
        (len = sizeof(domain), getsockopt(S_LISTEN_FD, SOL_SOCKET, SO_DOMAIN, &domain, &len)) !=
            0 ||
        domain != AF_UNIX) {
        snprintf(errbuf, errlen, "LISTEN_FDS: fd 3 is not a Unix stream socket");
        return KB_EINVAL;
    }
    (void)fcntl(S_LISTEN_FD, F_SETFD, FD_CLOEXEC);
    rc = uv_pipe_open(&s->listener, S_LISTEN_FD);
    if (rc != 0) {
        snprintf(errbuf, errlen, "LISTEN_FDS: cannot use fd 3: %s", uv_strerror(rc));
        return rc;
    }
    s->inherited = true;
    if (uv_pipe_getsockname(&s->listener, name, &namelen) == 0 && namelen > 0) {
        char *copy = strdup(name);

        if (copy != NULL) {
            free(s->path);
            s->path = copy;
        }
    }
    return 0;
}

int kb_server_listen(struct kb_server *s, char *errbuf, size_t errlen)
{
    int rc;

    errbuf[0] = '\0';
    rc = uv_pipe_init(s->loop, &s->listener, 0);
    if (rc != 0) {
        snprintf(errbuf, errlen, "cannot create the socket: %s", uv_strerror(rc));
        return rc;
    }
    s->listener.data = s;
    s->listener_open = true;
    s->pending++;
    rc = s->use_listen_fds && s_listen_fds() ? s_adopt(s, errbuf, errlen)
                                             : s_bind(s, errbuf, errlen);
    if (rc != 0)
        return rc;
    rc = uv_listen((uv_stream_t *)&s->listener, S_BACKLOG, on_connection);
    if (rc != 0) {
        snprintf(errbuf, errlen, "cannot listen on %s: %s", s->path, uv_strerror(rc));
        return rc;
    }
    rc = uv_timer_start(&s->sweep, on_sweep, KB_SRV_SWEEP_MS, KB_SRV_SWEEP_MS);
    if (rc != 0) {
        snprintf(errbuf, errlen, "cannot start the sweep timer: %s", uv_strerror(rc));
        return rc;
    }
    kb_log(KB_LOG_INFO, "listening", "path", s->path, "activation",
           s->inherited ? "systemd" : "bound", NULL);
    return 0;
}

/* -- shutdown ---------------------------------------------------------------------------------- */

void kb_srv_release(struct kb_server *s)
{
    struct kb_srv_rate *r, *next;
    kb_server_closed_cb cb;
    void *ctx;

    if (--s->pending > 0 || !s->closing)
        return;
    for (r = s->rates; r != NULL; r = next) {
        next = r->next;
        free(r);
    }
    cb = s->closed_cb;
    ctx = s->closed_ctx;
    kb_srv_get_cache_free(s->get_cache, s->cfg->ntenants);
    free(s->path);
    free(s->version);
    free(s->region);
    free(s);
    if (cb != NULL)
        cb(ctx);
}

static void on_handle_closed(uv_handle_t *h)
{
    kb_srv_release(h->data);
}

/* Removes the socket file if it is still the one bound here. */
static void s_unlink(struct kb_server *s)
{
    struct stat st;

    if (!s->bound || s->inherited)
        return;
    if (lstat(s->path, &st) == 0 && st.st_dev == s->bound_dev && st.st_ino == s->bound_ino)
        unlink(s->path);
}

void kb_server_close(struct kb_server *s, kb_server_closed_cb closed, void *ctx)
{
    if (s == NULL || s->closing)
        return;
    s->closing = true;
    kb_srv_watch_unsubscribe(s);
    s->closed_cb = closed;
    s->closed_ctx = ctx;
    s_unlink(s);
    while (s->conns != NULL)
        kb_srv_conn_close(s->conns, NULL);
    kb_srv_jobs_abandon(s);
    if (s->listener_open)
        uv_close((uv_handle_t *)&s->listener, on_handle_closed);
    uv_close((uv_handle_t *)&s->sweep, on_handle_closed);
}
