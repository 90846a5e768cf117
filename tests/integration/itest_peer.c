/*
 * itest_peer.c - a raw client of keybrokerd's socket for the integration tests, small enough to
 * run as another user under `setpriv --reuid=U --regid=G --groups=... --`.
 *
 *   itest_peer SOCKET [--expect N] [--timeout MS] [--shut]
 *
 * Connects to SOCKET, writes everything read from stdin as is (no framing added), then prints
 * every line the broker sends back, as received, until N lines have arrived (--expect), the
 * broker closes the connection, or MS milliseconds pass without a byte (--timeout, default 5000).
 * --shut half-closes the connection after writing (the broker sees EOF). The last line of stderr
 * says how it ended: "end: lines=N closed=0|1 timeout=0|1". Exit status: 0, 2 usage, 3 connect
 * failure (stderr names the errno). It prints only what the broker sent.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char *s_read_stdin(size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);

    while (buf != NULL) {
        ssize_t r;

        if (n == cap) {
            char *grown = realloc(buf, cap * 2);
            if (grown == NULL) {
                free(buf);
                return NULL;
            }
            buf = grown;
            cap *= 2;
        }
        r = read(STDIN_FILENO, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    *len = n;
    return buf;
}

static int s_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || strlen(path) >= sizeof(sa.sun_path))
        return -1;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Writes everything, reading (and keeping) replies meanwhile so a large input cannot deadlock
 * against a broker whose answers fill the socket buffer. */
static int s_exchange(int fd, const char *in, size_t inlen, bool shut, long expect, int timeout)
{
    size_t off = 0, lines = 0;
    bool closed = false, timed_out = false;
    char buf[65536];

    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (off < inlen ? POLLOUT : 0)};
        int r;

        if (expect >= 0 && lines >= (size_t)expect)
            break;
        r = poll(&p, 1, timeout);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0) {
            timed_out = true;
            break;
        }
        if (p.revents & POLLOUT) {
            ssize_t w = send(fd, in + off, inlen - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                off = inlen; /* the broker closed: stop writing, read what it sent */
            if (off == inlen && shut)
                shutdown(fd, SHUT_WR);
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (n <= 0) {
                closed = true;
                break;
            }
            fwrite(buf, 1, (size_t)n, stdout);
            for (ssize_t i = 0; i < n; i++)
                lines += buf[i] == '\n';
        }
    }
    fflush(stdout);
    fprintf(stderr, "end: lines=%zu closed=%d timeout=%d\n", lines, closed, timed_out);
    return 0;
}

int main(int argc, char **argv)
{
    long expect = -1;
    int timeout = 5000, fd, rc;
    bool shut = false;
    size_t inlen = 0;
    char *in;

    if (argc < 2) {
        fprintf(stderr, "usage: itest_peer SOCKET [--expect N] [--timeout MS] [--shut]\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc)
            expect = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--shut") == 0)
            shut = true;
        else {
            fprintf(stderr, "itest_peer: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    in = s_read_stdin(&inlen);
    if (in == NULL)
        return 2;
    fd = s_connect(argv[1]);
    if (fd < 0) {
        fprintf(stderr, "itest_peer: connect %s: %s\n", argv[1], strerror(errno));
        free(in);
        return 3;
    }
    if (inlen == 0 && shut)
        shutdown(fd, SHUT_WR);
    rc = s_exchange(fd, in, inlen, shut, expect, timeout);
    close(fd);
    free(in);
    return rc;
}
