/*
 * itest_socket.c - the concurrency driver of test_server.py: many connections to keybrokerd, all
 * open at once, each running a series of `get` requests one after the other.
 *
 *   itest_socket SOCKET TENANT ARN [--conns N] [--requests M] [--log FILE]
 *
 * Opens N connections (raising its open-file limit as needed) and only when every one is
 * connected sends the first request on each; a connection sends its next get when the answer to
 * the previous one arrived. An answer counts as good when it is one line with "ok":true, the
 * request's id and "arn":"ARN". Prints one JSON line:
 *   {"conns":N,"connected":N,"requests":N*M,"ok":K,"errors":E,"elapsed_ms":T,"first_error":"..."}
 * --log FILE appends every byte read from the socket (the test scans it for secrets). Exit 0 when
 * every request got a good answer, 1 otherwise, 2 on usage errors.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct conn {
    int fd;
    long sent;
    long answered;
    char buf[8192];
    size_t len;
};

struct run {
    const char *tenant;
    char arn_field[2200];
    long requests;
    long ok;
    long errors;
    char first_error[300];
    FILE *log;
};

static double s_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void s_raise_nofile(long need)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)need) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)need ? rl.rlim_max : (rlim_t)need;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int s_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    /* Blocking connect: a full backlog makes it wait instead of failing. */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void s_error(struct run *r, const char *what, const char *line, size_t len)
{
    r->errors++;
    if (r->first_error[0] == '\0')
        snprintf(r->first_error, sizeof(r->first_error), "%s: %.*s", what,
                 (int)(len > 200 ? 200 : len), line);
}

static int s_send(struct run *r, struct conn *c)
{
    char req[256];
    int n = snprintf(req, sizeof(req), "{\"v\":1,\"id\":%ld,\"op\":\"get\",\"tenant\":\"%s\"}\n",
                     c->sent + 1, r->tenant);

    if (send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        return -1;
    c->sent++;
    return 0;
}

/* Checks one answer line. */
static void s_check(struct run *r, struct conn *c, const char *line, size_t len)
{
    char id[64];

    snprintf(id, sizeof(id), "\"id\":%ld,", c->answered + 1);
    c->answered++;
    if (memmem(line, len, "\"ok\":true", 9) == NULL)
        s_error(r, "not ok", line, len);
    else if (memmem(line, len, id, strlen(id)) == NULL)
        s_error(r, "wrong id", line, len);
    else if (memmem(line, len, r->arn_field, strlen(r->arn_field)) == NULL)
        s_error(r, "wrong arn", line, len);
    else
        r->ok++;
}

/* Reads what arrived; returns -1 when the connection is done (closed or finished). */
static int s_read(struct run *r, struct conn *c)
{
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
    char *nl;

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0) {
        s_error(r, "connection closed early", "", 0);
        r->errors += r->requests - c->answered - 1;
        return -1;
    }
    if (r->log != NULL)
        fwrite(c->buf + c->len, 1, (size_t)n, r->log);
    c->len += (size_t)n;
    while ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
        size_t len = (size_t)(nl - c->buf);

        s_check(r, c, c->buf, len);
        memmove(c->buf, nl + 1, c->len - len - 1);
        c->len -= len + 1;
        if (c->answered == r->requests)
            return -1;
        if (s_send(r, c) != 0) {
            s_error(r, "send failed", "", 0);
            return -1;
        }
    }
    if (c->len == sizeof(c->buf)) {
        s_error(r, "answer too long", c->buf, c->len);
        return -1;
    }
    return 0;
}

static int s_usage(void)
{
    fprintf(stderr, "usage: itest_socket SOCKET TENANT ARN [--conns N] [--requests M] "
                    "[--log FILE]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct run r = {.requests = 100};
    long nconns = 1000, connected = 0, active;
    struct conn *conns;
    double t0;
    int ep;

    if (argc < 4)
        return s_usage();
    r.tenant = argv[2];
    snprintf(r.arn_field, sizeof(r.arn_field), "\"arn\":\"%s\"", argv[3]);
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--conns") == 0 && i + 1 < argc)
            nconns = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--requests") == 0 && i + 1 < argc)
            r.requests = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--log") == 0 && i + 1 < argc)
            r.log = fopen(argv[++i], "ab");
        else
            return s_usage();
    }
    if (nconns <= 0 || r.requests <= 0)
        return s_usage();
    s_raise_nofile(nconns + 64);
    conns = calloc((size_t)nconns, sizeof(*conns));
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (conns == NULL || ep < 0)
        return 1;
    t0 = s_now_ms();
    for (long i = 0; i < nconns; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};

        conns[i].fd = s_connect(argv[1]);
        if (conns[i].fd < 0) {
            s_error(&r, "connect failed", strerror(errno), strlen(strerror(errno)));
            break;
        }
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
        connected++;
    }
    /* Every connection is open now: start them all. */
    active = 0;
    for (long i = 0; i < connected; i++) {
        if (s_send(&r, &conns[i]) == 0)
            active++;
        else
            s_error(&r, "send failed", "", 0);
    }
    while (active > 0) {
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, 30000);

        if (n <= 0) {
            s_error(&r, "no answer for 30 s", "", 0);
            break;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;

            if (c->fd >= 0 && s_read(&r, c) != 0) {
                close(c->fd);
                c->fd = -1;
                active--;
            }
        }
    }
    printf("{\"conns\":%ld,\"connected\":%ld,\"requests\":%ld,\"ok\":%ld,\"errors\":%ld,"
           "\"elapsed_ms\":%.0f,\"first_error\":\"",
           nconns, connected, nconns * r.requests, r.ok, r.errors, s_now_ms() - t0);
    for (const char *p = r.first_error; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            putchar('\\');
        putchar(*p >= 0x20 ? *p : '?');
    }
    printf("\"}\n");
    for (long i = 0; i < nconns; i++) {
        if (conns[i].fd > 0)
            close(conns[i].fd);
    }
    if (r.log != NULL)
        fclose(r.log);
    free(conns);
    close(ep);
    return r.ok == nconns * r.requests && r.errors == 0 ? 0 : 1;
}
