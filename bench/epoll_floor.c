/*
 * epoll_floor.c - the floor for the socket benchmark: the least a server can do per request on
 * this machine. One thread, level-triggered epoll, a Unix stream socket; every complete line a
 * client sends is answered with one fixed line (of the size of a keybrokerd `get` answer), with
 * no parsing and no allocation per request.
 *
 *   bench_epoll_floor SOCKET [--reply-size BYTES]
 *
 * Runs until SIGTERM or SIGINT, then removes SOCKET. bench/run_socket_bench.sh runs it beside
 * keybrokerd and drives both with bench_socket.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define S_MAX_CONNS 4096

static volatile sig_atomic_t s_stop;

static void on_signal(int sig)
{
    s_stop = 1;
}

static int s_listen(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0 || strlen(path) >= sizeof(sa.sun_path))
        return -1;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    unlink(path);
    /* Open to every uid: bench_socket --uids connects as several users. */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || chmod(path, 0666) != 0 ||
        listen(fd, 4096) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Answers every complete line in what was read; returns -1 when the client is gone. */
static int s_serve(int fd, const char *reply, size_t reply_len)
{
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof(buf));
    size_t lines = 0;

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0)
        return -1;
    for (ssize_t i = 0; i < n; i++)
        lines += buf[i] == '\n';
    for (size_t i = 0; i < lines; i++) {
        if (write(fd, reply, reply_len) != (ssize_t)reply_len)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    size_t reply_len = 330;
    char *reply;
    int lfd, ep;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_epoll_floor SOCKET [--reply-size BYTES]\n");
        return 2;
    }
    if (argc == 4 && strcmp(argv[2], "--reply-size") == 0)
        reply_len = (size_t)strtoul(argv[3], NULL, 10);
    if (reply_len < 2 || reply_len > 60000)
        return 2;
    reply = malloc(reply_len);
    if (reply == NULL)
        return 1;
    memset(reply, 'x', reply_len - 1);
    reply[reply_len - 1] = '\n';
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    lfd = s_listen(argv[1]);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (lfd < 0 || ep < 0) {
        perror("bench_epoll_floor");
        return 1;
    }
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    while (!s_stop) {
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, 500);

        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;

            if (fd == lfd) {
                int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};

                if (c >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) != 0)
                    close(c);
            } else if (s_serve(fd, reply, reply_len) != 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
            }
        }
    }
    unlink(argv[1]);
    close(ep);
    close(lfd);
    free(reply);
    return 0;
}
