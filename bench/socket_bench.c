/*
 * socket_bench.c - a load generator for a line-protocol Unix socket (keybrokerd, or the epoll
 * floor server): N clients, each with one request in flight at a time, for a fixed time.
 *
 *   bench_socket SOCKET [--clients N] [--seconds S] [--warmup S] [--line TEXT] [--expect TEXT]
 *                [--uids U1,U2,...]
 *
 * Each client sends --line (default: a keybrokerd get of tenant "bench") plus '\n', waits for the
 * answer line, records the latency, and sends again. Answers that lack --expect (when given) are
 * counted as errors. Requests completed during the warm-up are not measured. Prints one line:
 *   clients=N requests=R seconds=S rps=X ok_rps=Y p50_us=A p99_us=B max_us=C errors=E
 * (rps counts every answer, ok_rps those that were not errors). Exit status 1 on errors.
 * Each process is one thread with epoll, so the generator's own cost is the same for every server
 * it drives. --uids (as root) splits the clients over one process per uid, each running as that
 * uid (keybrokerd limits requests per second per uid); their latencies are merged.
 */
#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_UIDS 64

struct client {
    int fd;
    uint64_t sent_ns;
    char buf[65536];
    size_t len;
};

struct samples {
    uint32_t *us;
    size_t count;
    size_t cap;
    uint64_t errors;
};

struct opts {
    const char *path;
    const char *line;
    const char *expect;
    long clients;
    double seconds;
    double warmup;
    long uids[MAX_UIDS];
    size_t nuids;
};

static uint64_t s_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int s_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || strlen(path) >= sizeof(sa.sun_path))
        return -1;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int s_reserve(struct samples *s, size_t more)
{
    size_t cap = s->cap == 0 ? 65536 : s->cap;
    uint32_t *grown;

    if (s->count + more <= s->cap)
        return 0;
    while (cap < s->count + more)
        cap *= 2;
    grown = realloc(s->us, cap * sizeof(*grown));
    if (grown == NULL)
        return -1;
    s->us = grown;
    s->cap = cap;
    return 0;
}

static int s_add(struct samples *s, uint32_t us)
{
    if (s_reserve(s, 1) != 0)
        return -1;
    s->us[s->count++] = us;
    return 0;
}

static int s_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static uint32_t s_pct(const struct samples *s, double p)
{
    size_t i;

    if (s->count == 0)
        return 0;
    i = (size_t)(p * (double)(s->count - 1) + 0.5);
    return s->us[i];
}

/* One answer arrived on c at now: check it, record it, send the next request. */
static int s_answer(const struct opts *o, struct client *c, const char *req, size_t reqlen,
                    uint64_t now, uint64_t t_measure, uint64_t t_end, struct samples *smp)
{
    char *nl = memchr(c->buf, '\n', c->len);
    bool measured = c->sent_ns >= t_measure && now < t_end;

    if (nl == NULL)
        return 0;
    if (measured && o->expect != NULL &&
        memmem(c->buf, (size_t)(nl - c->buf), o->expect, strlen(o->expect)) == NULL)
        smp->errors++;
    if (measured && s_add(smp, (uint32_t)((now - c->sent_ns) / 1000u)) != 0)
        return -1;
    c->len -= (size_t)(nl - c->buf) + 1;
    memmove(c->buf, nl + 1, c->len);
    c->sent_ns = now;
    return send(c->fd, req, reqlen, MSG_NOSIGNAL) == (ssize_t)reqlen ? 0 : -1;
}

/* Runs n clients from t_start (CLOCK_MONOTONIC ns) for the warm-up and the measured time. */
static int s_run(const struct opts *o, long n, uint64_t t_start, struct samples *smp)
{
    uint64_t t_measure = t_start + (uint64_t)(o->warmup * 1e9);
    uint64_t t_end = t_measure + (uint64_t)(o->seconds * 1e9);
    size_t reqlen = strlen(o->line) + 1;
    struct client *cs = calloc((size_t)n, sizeof(*cs));
    char *req = malloc(reqlen);
    int ep = epoll_create1(EPOLL_CLOEXEC), rc = 0;

    if (cs == NULL || req == NULL || ep < 0)
        return -1;
    memcpy(req, o->line, reqlen - 1);
    req[reqlen - 1] = '\n';
    for (long i = 0; i < n; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};

        cs[i].fd = s_connect(o->path);
        if (cs[i].fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) != 0) {
            perror("bench_socket: connect");
            return -1;
        }
    }
    while (s_now_ns() < t_start)
        usleep(1000);
    for (long i = 0; i < n; i++) {
        cs[i].sent_ns = s_now_ns();
        if (send(cs[i].fd, req, reqlen, MSG_NOSIGNAL) != (ssize_t)reqlen)
            return -1;
    }
    while (rc == 0) {
        struct epoll_event evs[256];
        int k = epoll_wait(ep, evs, 256, 5000);
        uint64_t now = s_now_ns();

        if (k <= 0 || now >= t_end)
            break;
        for (int i = 0; rc == 0 && i < k; i++) {
            struct client *c = evs[i].data.ptr;
            ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);

            if (r <= 0) {
                fprintf(stderr, "bench_socket: connection lost\n");
                rc = -1;
                break;
            }
            c->len += (size_t)r;
            rc = s_answer(o, c, req, reqlen, s_now_ns(), t_measure, t_end, smp);
        }
    }
    for (long i = 0; i < n; i++)
        close(cs[i].fd);
    close(ep);
    free(cs);
    free(req);
    return rc;
}

/* A child: become uid, run its share, send the samples to the parent through fd. */
static int s_child(const struct opts *o, long uid, long n, uint64_t t_start, int fd)
{
    struct samples smp = {0};
    uint64_t head[2];
    size_t off = 0, total;
    const char *p;

    if (setgroups(0, NULL) != 0 || setgid((gid_t)uid) != 0 || setuid((uid_t)uid) != 0) {
        perror("bench_socket: setuid");
        return 1;
    }
    if (s_run(o, n, t_start, &smp) != 0)
        return 1;
    head[0] = smp.count;
    head[1] = smp.errors;
    if (write(fd, head, sizeof(head)) != (ssize_t)sizeof(head))
        return 1;
    total = smp.count * sizeof(*smp.us);
    for (p = (const char *)smp.us; off < total;) {
        ssize_t w = write(fd, p + off, total - off);
        if (w <= 0)
            return 1;
        off += (size_t)w;
    }
    free(smp.us);
    return 0;
}

static int s_read_full(int fd, void *buf, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t r = read(fd, (char *)buf + off, len - off);
        if (r <= 0)
            return -1;
        off += (size_t)r;
    }
    return 0;
}

/* Forks one process per uid and merges their samples into smp. */
static int s_run_uids(const struct opts *o, uint64_t t_start, struct samples *smp)
{
    int fds[MAX_UIDS];
    pid_t pids[MAX_UIDS];
    int rc = 0;

    for (size_t i = 0; i < o->nuids; i++) {
        long share = o->clients / (long)o->nuids + ((long)i < o->clients % (long)o->nuids);
        int p[2];

        if (pipe(p) != 0)
            return -1;
        pids[i] = fork();
        if (pids[i] == 0) {
            close(p[0]);
            _exit(s_child(o, o->uids[i], share, t_start, p[1]));
        }
        close(p[1]);
        fds[i] = p[0];
    }
    for (size_t i = 0; i < o->nuids; i++) {
        uint64_t head[2];
        int status = 0;

        if (rc == 0 && s_read_full(fds[i], head, sizeof(head)) == 0) {
            rc = s_reserve(smp, head[0]);
            if (rc == 0 && s_read_full(fds[i], smp->us + smp->count, head[0] * 4) == 0) {
                smp->count += head[0];
                smp->errors += head[1];
            } else {
                rc = -1;
            }
        } else {
            rc = -1;
        }
        close(fds[i]);
        waitpid(pids[i], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            rc = -1;
    }
    return rc;
}

static int s_parse(int argc, char **argv, struct opts *o)
{
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *v = argv[i + 1];

        if (strcmp(argv[i], "--clients") == 0)
            o->clients = strtol(v, NULL, 10);
        else if (strcmp(argv[i], "--seconds") == 0)
            o->seconds = strtod(v, NULL);
        else if (strcmp(argv[i], "--warmup") == 0)
            o->warmup = strtod(v, NULL);
        else if (strcmp(argv[i], "--line") == 0)
            o->line = v;
        else if (strcmp(argv[i], "--expect") == 0)
            o->expect = v;
        else if (strcmp(argv[i], "--uids") == 0) {
            for (char *end = NULL; *v != '\0' && o->nuids < MAX_UIDS; v = end + (*end == ',')) {
                o->uids[o->nuids++] = strtol(v, &end, 10);
                if (end == v)
                    return -1;
            }
        } else
            return -1;
    }
    return argc >= 2 && o->clients >= 1 && o->seconds > 0 && (long)o->nuids <= o->clients ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct opts o = {.line = "{\"v\":1,\"id\":1,\"op\":\"get\",\"tenant\":\"bench\"}",
                     .clients = 1,
                     .seconds = 3,
                     .warmup = 0.5};
    struct samples smp = {0};
    struct rlimit rl;
    uint64_t t_start;
    int rc;

    if (argc < 2 || s_parse(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: bench_socket SOCKET [--clients N] [--seconds S] [--warmup S] "
                        "[--line TEXT] [--expect TEXT] [--uids U1,U2,...]\n");
        return 2;
    }
    o.path = argv[1];
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)o.clients + 16) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* Everyone connects first; the load starts at the same moment in every process. */
    t_start = s_now_ns() + 300000000u;
    rc = o.nuids > 0 ? s_run_uids(&o, t_start, &smp) : s_run(&o, o.clients, t_start, &smp);
    if (rc != 0)
        return 1;
    qsort(smp.us, smp.count, sizeof(*smp.us), s_cmp);
    printf("clients=%ld requests=%zu seconds=%.2f rps=%.0f ok_rps=%.0f p50_us=%u p99_us=%u "
           "max_us=%u errors=%lu\n",
           o.clients, smp.count, o.seconds, (double)smp.count / o.seconds,
           (double)(smp.count - smp.errors) / o.seconds, s_pct(&smp, 0.50), s_pct(&smp, 0.99),
           smp.count > 0 ? smp.us[smp.count - 1] : 0, (unsigned long)smp.errors);
    free(smp.us);
    return smp.errors == 0 ? 0 : 1;
}
