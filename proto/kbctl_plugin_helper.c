/*
 * kbctl_plugin_helper.c - the throw-away helper of `kbctl plugin check` and the wire to it: kbctl
 * re-executes itself through /proc/self/exe as `kbctl --plugin-host` (the same helper code as
 * `keybrokerd --plugin-host`, kb_plugin_helper_main), with a socketpair's end on fd 3, stdin and
 * stdout /dev/null, stderr kbctl's (the helper's JSON log lines, the plugin's host->log among
 * them), an environment of PATH alone and, when kbctl runs as root, the unprivileged user the
 * broker's helpers would run as (setgroups, setgid, setuid, then checked).
 *
 * Lines go both ways as wire.h says: one JSON object each, at most KB_PLUGIN_WIRE_MAX bytes. A
 * helper that overruns a deadline or sends what is not an answer is killed (SIGKILL), as the
 * broker would; one that closes its end is reaped and reported. Nothing here restarts it.
 */
#include "kbctl_plugin.h"
#include "kbctl_plugin_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plugin/helper.h"

#define S_HELPER_ARGV0    "kbctl"
#define S_HELPER_FLAG     "--plugin-host"
#define S_HELPER_PATH_ENV "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

/* In the child, before exec: fd becomes target without close-on-exec. */
static int s_move_fd(int fd, int target)
{
    int flags;

    if (fd != target)
        return dup2(fd, target) < 0 ? -1 : 0;
    flags = fcntl(fd, F_GETFD);
    return flags < 0 ? -1 : fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
}

/* In the child: gives up root for good and checks that it cannot come back. */
static int s_drop(const struct kbctl_plugin_helper *h)
{
    if (setgroups(0, NULL) != 0 || setgid(h->run_gid) != 0 || setuid(h->run_uid) != 0)
        return -1;
    if (getuid() != h->run_uid || geteuid() != h->run_uid || getgid() != h->run_gid ||
        getegid() != h->run_gid || getgroups(0, NULL) != 0)
        return -1;
    if (setuid(0) == 0 || seteuid(0) == 0)
        return -1;
    return 0;
}

/* The child's side of kbctl_plugin__spawn; never returns. Only calls that are safe after fork. */
static void s_child(const struct kbctl_plugin_helper *h, int sock)
{
    static char *const argv[] = {S_HELPER_ARGV0, S_HELPER_FLAG, NULL};
    static char *const envp[] = {S_HELPER_PATH_ENV, NULL};
    int null;

    if (s_move_fd(sock, KB_PLUGIN_WIRE_FD) != 0)
        _exit(127);
    if (sock != KB_PLUGIN_WIRE_FD)
        close(sock);
    null = open("/dev/null", O_RDWR);
    if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(null, STDOUT_FILENO) < 0)
        _exit(127);
    if (null > STDERR_FILENO)
        close(null);
    if (h->drop && s_drop(h) != 0) {
        dprintf(STDERR_FILENO, "kbctl: plugin check: cannot drop to uid %u gid %u: %s\n",
                (unsigned)h->run_uid, (unsigned)h->run_gid, strerror(errno));
        _exit(126);
    }
    execve("/proc/self/exe", argv, envp);
    dprintf(STDERR_FILENO, "kbctl: plugin check: cannot run /proc/self/exe: %s\n", strerror(errno));
    _exit(127);
}

int kbctl_plugin__spawn(struct kbctl_plugin_helper *h, struct kbctl_plugin_result *r)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        kbctl_plugin__set(r, KBCTL_OUTCOME_NOT_STARTED, 0, "socketpair: %s", strerror(errno));
        return -1;
    }
    fflush(NULL); /* nothing buffered is written twice */
    h->pid = fork();
    if (h->pid < 0) {
        kbctl_plugin__set(r, KBCTL_OUTCOME_NOT_STARTED, 0, "fork: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (h->pid == 0)
        s_child(h, sv[1]);
    close(sv[1]);
    h->fd = sv[0];
    return 0;
}

/* Waits for the helper to end (up to grace_ms, then kills it) and records how it ended in r,
 * unless r is NULL. */
void kbctl_plugin__reap(struct kbctl_plugin_helper *h, int grace_ms, struct kbctl_plugin_result *r)
{
    int64_t end = kbctl_plugin__now_ms() + grace_ms;
    bool killed = false;
    int status = 0;
    pid_t got;

    if (h->pid < 0)
        return;
    for (;;) {
        got = waitpid(h->pid, &status, WNOHANG);
        if (got < 0 && errno == EINTR)
            continue;
        if (got != 0)
            break;
        if (kbctl_plugin__now_ms() >= end) {
            kill(h->pid, SIGKILL);
            killed = true;
            while ((got = waitpid(h->pid, &status, 0)) < 0 && errno == EINTR) {
            }
            break;
        }
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
    h->pid = -1;
    if (r == NULL)
        return;
    if (got < 0)
        kbctl_plugin__set(r, KBCTL_OUTCOME_EXITED, -1, "waitpid: %s", strerror(errno));
    else if (killed)
        kbctl_plugin__set(r, KBCTL_OUTCOME_TIMED_OUT, 0,
                          "the helper did not exit within %d ms: killed (SIGKILL)", grace_ms);
    else if (WIFSIGNALED(status))
        kbctl_plugin__set(r, KBCTL_OUTCOME_CRASHED, WTERMSIG(status), "signal %d (%s)",
                          WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        kbctl_plugin__set(r, KBCTL_OUTCOME_EXITED, WEXITSTATUS(status), "status %d",
                          WEXITSTATUS(status));
}

/* The helper overran the deadline or broke the protocol: it is killed, as the broker would. */
void kbctl_plugin__kill(struct kbctl_plugin_helper *h)
{
    if (h->pid > 0)
        kill(h->pid, SIGKILL);
    kbctl_plugin__reap(h, 0, NULL);
}

/* One JSON object as one line. Returns 0, or -1 when the helper is gone (or the line too long). */
int kbctl_plugin__send(struct kbctl_plugin_helper *h, struct json_object *o)
{
    const char *text =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t len = text != NULL ? strlen(text) : 0;
    char *line = malloc(len + 1);
    size_t off = 0;
    int rc = 0;

    if (text == NULL || line == NULL || len + 1 > KB_PLUGIN_WIRE_MAX) {
        free(line);
        return -1;
    }
    memcpy(line, text, len);
    line[len++] = '\n';
    while (off < len && rc == 0) {
        ssize_t n = send(h->fd, line + off, len - off, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = -1;
        else
            off += (size_t)n;
    }
    free(line);
    return rc;
}

/* The next line from the helper, parsed, within timeout_ms. Returns 0 and *out (caller puts it),
 * or fills r: the helper died (reaped), timed out or sent something that is no JSON object line
 * (both killed). */
int kbctl_plugin__receive(struct kbctl_plugin_helper *h, int timeout_ms,
                          struct kbctl_plugin_result *r, struct json_object **out)
{
    int64_t end = kbctl_plugin__now_ms() + timeout_ms;

    for (;;) {
        char *nl = memchr(h->buf, '\n', h->len);
        struct pollfd p = {.fd = h->fd, .events = POLLIN};
        int64_t left;
        ssize_t n;
        int ready;

        if (nl != NULL) {
            size_t used = (size_t)(nl - h->buf) + 1;

            *nl = '\0';
            *out = json_tokener_parse(h->buf);
            memmove(h->buf, h->buf + used, h->len - used);
            h->len -= used;
            if (*out != NULL && json_object_is_type(*out, json_type_object))
                return 0;
            json_object_put(*out);
            *out = NULL;
            kbctl_plugin__kill(h);
            kbctl_plugin__set(r, KBCTL_OUTCOME_PROTOCOL, 0,
                              "the helper sent a line that is not a JSON object: killed");
            return -1;
        }
        if (h->len == sizeof(h->buf)) {
            kbctl_plugin__kill(h);
            kbctl_plugin__set(r, KBCTL_OUTCOME_PROTOCOL, 0,
                              "the helper sent a line over %d bytes: killed", KB_PLUGIN_WIRE_MAX);
            return -1;
        }
        left = end - kbctl_plugin__now_ms();
        if (left <= 0) {
            kbctl_plugin__kill(h);
            kbctl_plugin__set(r, KBCTL_OUTCOME_TIMED_OUT, 0,
                              "no answer within %d ms: killed (SIGKILL)", timeout_ms);
            return -1;
        }
        ready = poll(&p, 1, (int)left);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            continue; /* the deadline check above ends it */
        n = recv(h->fd, h->buf + h->len, sizeof(h->buf) - h->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0) {
            h->len += (size_t)n;
            continue;
        }
        /* EOF (or a reset): the helper is exiting; see how it ended. */
        kbctl_plugin__reap(h, KB_PLUGIN_WIRE_GRACE_MS, r);
        return -1;
    }
}

void kbctl_plugin__close(struct kbctl_plugin_helper *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
}

int kbctl_plugin_host(void)
{
    struct stat sb;

    /* Run by hand, fd 3 is not the socket: say so rather than let the helper fail on it. */
    if (fstat(KB_PLUGIN_WIRE_FD, &sb) != 0 || !S_ISSOCK(sb.st_mode)) {
        fprintf(stderr, "kbctl: --plugin-host is internal: `kbctl plugin check` starts it with "
                        "its socket on fd 3\n");
        return KBCTL_PLUGIN_USAGE;
    }
    return kb_plugin_helper_main(KB_PLUGIN_WIRE_FD);
}
