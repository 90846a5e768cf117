/*
 * test_helper.c - the plugin helper (broker/plugin/helper.c, `keybrokerd --plugin-host`) end to
 * end, in this process: a socketpair, a forked child that runs kb_plugin_helper_main on one end
 * and _exit()s with what it returned, and the test speaking wire.h on the other with poll
 * timeouts. The exec built-in runs /bin/sh scripts written to a 0755 temporary directory; the
 * shared kind loads the test plugins of tests/plugins. One case runs the helper on a thread
 * instead, so that its return and its memory are checked in this process.
 */
#include "kb_test.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plugin/helper.h"

#define S_WAIT_MS 10000

struct fx {
    char dir[64];
    pid_t pid;
    int fd;
    char buf[70000];
    size_t used;
};

static int s_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/kbth.XXXXXX");
    if (mkdtemp(fx->dir) == NULL || chmod(fx->dir, 0755) != 0)
        return -1;
    fx->fd = -1;
    fx->pid = -1;
    *state = fx;
    return 0;
}

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int s_teardown(void **state)
{
    struct fx *fx = *state;

    if (fx->fd >= 0)
        close(fx->fd);
    if (fx->pid > 0) {
        kill(fx->pid, SIGKILL);
        waitpid(fx->pid, NULL, 0);
    }
    nftw(fx->dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static void s_start(struct fx *fx)
{
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    fx->pid = fork();
    assert_true(fx->pid >= 0);
    if (fx->pid == 0) {
        char log[PATH_MAX];
        int fd;

        /* The helper's log, for the cases that read it. */
        snprintf(log, sizeof(log), "%s/helper.log", fx->dir);
        fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0)
            dup2(fd, STDERR_FILENO);
        close(sv[0]);
        _exit(kb_plugin_helper_main(sv[1]));
    }
    close(sv[1]);
    fx->fd = sv[0];
}

/* A write that may find the helper gone (it stops reading at bad input). */
static void s_send_any(struct fx *fx, const char *line)
{
    if (write(fx->fd, line, strlen(line)) < 0 || write(fx->fd, "\n", 1) < 0) {
        /* EPIPE: it has stopped already */
    }
}

static void s_send(struct fx *fx, const char *line)
{
    size_t len = strlen(line);

    assert_int_equal(write(fx->fd, line, len), (ssize_t)len);
    assert_int_equal(write(fx->fd, "\n", 1), 1);
}

/* The next line from the helper as JSON, or NULL at EOF. Fails the test after S_WAIT_MS. */
static struct json_object *s_recv(struct fx *fx)
{
    struct pollfd p = {.fd = fx->fd, .events = POLLIN};

    for (;;) {
        char *nl = memchr(fx->buf, '\n', fx->used);
        ssize_t n;

        if (nl != NULL) {
            struct json_object *o;

            *nl = '\0';
            o = json_tokener_parse(fx->buf);
            assert_non_null(o);
            fx->used -= (size_t)(nl + 1 - fx->buf);
            memmove(fx->buf, nl + 1, fx->used);
            return o;
        }
        assert_int_equal(poll(&p, 1, S_WAIT_MS), 1);
        n = read(fx->fd, fx->buf + fx->used, sizeof(fx->buf) - fx->used);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return NULL;
        assert_true(n > 0);
        fx->used += (size_t)n;
    }
}

/* Closes our end (the broker's EOF) and returns the child's wait status. */
static int s_finish(struct fx *fx)
{
    int status = 0;

    close(fx->fd);
    fx->fd = -1;
    assert_int_equal(waitpid(fx->pid, &status, 0), fx->pid);
    fx->pid = -1;
    return status;
}

static const char *s_get(struct json_object *o, const char *key)
{
    struct json_object *v;

    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static int s_ok(struct json_object *o)
{
    struct json_object *v;

    assert_true(json_object_object_get_ex(o, "ok", &v));
    return json_object_get_boolean(v);
}

static void s_write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(chmod(path, mode), 0);
}

static char *s_slurp(const char *path)
{
    static char buf[16384];
    FILE *f = fopen(path, "re");
    size_t n;

    if (f == NULL)
        return NULL;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* How many plugin-output lines of stream the helper logged: with this line (NULL: any), and
 * truncated "true" (NULL: any) or, for "note", the cap's message instead of a line. */
static int s_log_count(struct fx *fx, const char *stream, const char *line, const char *flag)
{
    char path[PATH_MAX], text[8192];
    FILE *f;
    int n = 0;

    snprintf(path, sizeof(path), "%s/helper.log", fx->dir);
    f = fopen(path, "re");
    assert_non_null(f);
    while (fgets(text, sizeof(text), f) != NULL) {
        struct json_object *o = json_tokener_parse(text);
        const char *ev = o != NULL ? s_get(o, "event") : NULL;

        assert_non_null(o); /* every log line is one JSON object */
        if (ev != NULL && strcmp(ev, "plugin-output") == 0 &&
            strcmp(s_get(o, "stream"), stream) == 0) {
            bool note = s_get(o, "line") == NULL;

            if (flag != NULL && strcmp(flag, "note") == 0)
                n += note;
            else if (!note && (line == NULL || strcmp(s_get(o, "line"), line) == 0) &&
                     (flag == NULL ||
                      (s_get(o, "truncated") != NULL && strcmp(s_get(o, "truncated"), flag) == 0)))
                n++;
        }
        json_object_put(o);
    }
    fclose(f);
    return n;
}

/* Loads an exec plugin running dir/hook.sh (body after the #! line) and checks "loaded". */
static void s_load_script(struct fx *fx, const char *body, int timeout_ms)
{
    char script[PATH_MAX], text[4096], line[PATH_MAX + 256];
    struct json_object *o, *hooks;

    snprintf(script, sizeof(script), "%s/hook.sh", fx->dir);
    snprintf(text, sizeof(text), "#!/bin/sh\n%s\n", body);
    s_write_file(script, text, 0755);
    s_start(fx);
    snprintf(line, sizeof(line),
             "{\"type\":\"load\",\"name\":\"ex\",\"kind\":\"exec\",\"argv\":[\"%s\",\"one\"],"
             "\"owner_uid\":%u,\"timeout_ms\":%d}",
             script, (unsigned)getuid(), timeout_ms);
    s_send(fx, line);
    o = s_recv(fx);
    assert_non_null(o);
    assert_string_equal(s_get(o, "type"), "loaded");
    assert_true(s_ok(o));
    assert_true(json_object_object_get_ex(o, "hooks", &hooks));
    assert_int_equal(json_object_array_length(hooks), 8);
    json_object_put(o);
}

#define S_EVENT                                                                                    \
    "{\"type\":\"event\",\"id\":7,\"hook\":\"post_rotate\",\"event\":{\"tenant\":\"billing\","     \
    "\"arn\":\"arn:aws:secretsmanager:eu-west-1:1:secret:kb/billing\",\"version_id\":\"v2\","      \
    "\"previous_version_id\":\"v1\",\"rotation_id\":\"r1\",\"step\":\"rotate\",\"op\":"            \
    "\"rotate\",\"message\":\"a b\",\"ts\":1700000000,\"peer\":{\"uid\":1,\"gid\":2,\"pid\":3}}}"

static void test_exec_env_stdin(void **state)
{
    struct fx *fx = *state;
    char body[1024], path[PATH_MAX], *text, *line, *next;
    struct json_object *o, *in;
    int found = 0;

    snprintf(body, sizeof(body),
             "tr '\\000' '\\n' < /proc/$$/environ > %s/env\ncat > %s/stdin\n"
             "echo \"to stdout $1\"\necho to stderr >&2\nprintf 'caf\\303\\251 \\001 \\377 end'",
             fx->dir, fx->dir);
    s_load_script(fx, body, 5000);
    s_send(fx, S_EVENT);
    o = s_recv(fx);
    assert_non_null(o);
    assert_string_equal(s_get(o, "type"), "done");
    assert_string_equal(s_get(o, "id"), "7");
    assert_true(s_ok(o));
    json_object_put(o);

    /* The environment is PATH and KB_* only, with every member that applies. */
    snprintf(path, sizeof(path), "%s/env", fx->dir);
    text = s_slurp(path);
    assert_non_null(text);
    for (line = text; *line != '\0'; line = next) {
        static const char *const want[] = {
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            "KB_HOOK=post_rotate",
            "KB_TENANT=billing",
            "KB_ARN=arn:aws:secretsmanager:eu-west-1:1:secret:kb/billing",
            "KB_VERSION_ID=v2",
            "KB_PREVIOUS_VERSION_ID=v1",
            "KB_ROTATION_ID=r1",
            "KB_STEP=rotate",
            "KB_OP=rotate",
            "KB_MESSAGE=a b",
            "KB_TS=1700000000",
            "KB_PEER_UID=1",
            "KB_PEER_GID=2",
            "KB_PEER_PID=3",
        };
        bool known = false;

        next = strchr(line, '\n');
        assert_non_null(next);
        *next++ = '\0';
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
            known = known || strcmp(line, want[i]) == 0;
        if (!known)
            print_error("unexpected environment entry: %s\n", line);
        assert_true(known);
        found++;
    }
    assert_int_equal(found, 14);

    /* stdin: the event with its hook, one line, then EOF. */
    snprintf(path, sizeof(path), "%s/stdin", fx->dir);
    text = s_slurp(path);
    assert_non_null(text);
    assert_int_equal(text[strlen(text) - 1], '\n');
    assert_null(memchr(text, '\n', strlen(text) - 1));
    in = json_tokener_parse(text);
    assert_non_null(in);
    assert_string_equal(s_get(in, "hook"), "post_rotate");
    assert_string_equal(s_get(in, "tenant"), "billing");
    assert_string_equal(s_get(in, "rotation_id"), "r1");
    json_object_put(in);
    assert_true(WIFEXITED(s_finish(fx)));

    /* Output lines are logged; the last needs no newline, and what is not text becomes '?'. */
    assert_int_equal(s_log_count(fx, "stdout", "to stdout one", NULL), 1);
    assert_int_equal(s_log_count(fx, "stderr", "to stderr", NULL), 1);
    assert_int_equal(s_log_count(fx, "stdout", "caf\xc3\xa9 ? ? end", NULL), 1);
}

/* A line over 4 KiB is cut; past 64 KiB a run's output is no longer logged, and the log says so. */
static void test_exec_output_caps(void **state)
{
    struct fx *fx = *state;
    struct json_object *o;
    char a[4097];

    s_load_script(fx,
                  "head -c 5000 /dev/zero | tr '\\000' a; echo\n"
                  "i=0; while [ $i -lt 80 ]; do head -c 1000 /dev/zero | tr '\\000' b; echo; "
                  "i=$((i+1)); done",
                  10000);
    s_send(fx, "{\"type\":\"event\",\"id\":1,\"hook\":\"provisioned\"}");
    o = s_recv(fx);
    assert_true(s_ok(o));
    json_object_put(o);
    assert_int_equal(WEXITSTATUS(s_finish(fx)), 0);
    memset(a, 'a', 4096);
    a[4096] = '\0';
    assert_int_equal(s_log_count(fx, "stdout", a, "true"), 1);
    /* 4096 + 61 * 1000 bytes fit in 65536; the 62nd line does not. */
    assert_int_equal(s_log_count(fx, "stdout", NULL, NULL), 62);
    assert_int_equal(s_log_count(fx, "stdout", "", "note"), 1);
}

/* The broker goes away while a command runs: the command is killed, the helper returns 0. */
static void test_exec_eof_kills(void **state)
{
    struct fx *fx = *state;
    struct timespec t0, t1;
    int status;

    s_load_script(fx, "sleep 30", 20000);
    s_send(fx, "{\"type\":\"event\",\"id\":1,\"hook\":\"pre_finish\"}");
    usleep(100 * 1000);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    status = s_finish(fx);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(t1.tv_sec - t0.tv_sec < 5);
}

static void test_exec_timeout(void **state)
{
    struct fx *fx = *state;
    struct timespec t0, t1;
    struct json_object *o;
    int status;

    s_load_script(fx, "sleep 30", 300);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    s_send(fx, "{\"type\":\"event\",\"id\":1,\"hook\":\"pre_finish\",\"event\":{}}");
    o = s_recv(fx);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_non_null(o);
    assert_false(s_ok(o));
    assert_string_equal(s_get(o, "error"), "timed out after 300 ms");
    json_object_put(o);
    /* The shell and its sleep were killed together: the answer did not wait for the sleep. */
    assert_true(t1.tv_sec - t0.tv_sec < 5);
    status = s_finish(fx);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_exec_fails(void **state)
{
    struct fx *fx = *state;
    struct json_object *o;

    s_load_script(fx, "exit 7", 5000);
    s_send(fx, "{\"type\":\"event\",\"id\":2,\"hook\":\"revoked\",\"event\":{\"tenant\":\"t\"}}");
    o = s_recv(fx);
    assert_non_null(o);
    assert_false(s_ok(o));
    assert_string_equal(s_get(o, "error"), "exited with status 7");
    json_object_put(o);
    /* The next event is handled as well: one at a time, in order. */
    s_send(fx, "{\"type\":\"event\",\"id\":3,\"hook\":\"revoked\"}");
    o = s_recv(fx);
    assert_non_null(o);
    assert_string_equal(s_get(o, "id"), "3");
    json_object_put(o);
    assert_int_equal(WEXITSTATUS(s_finish(fx)), 0);
}

/* Copies a test plugin into the test's directory (the build tree need not pass the checks). */
static void s_plugin(struct fx *fx, const char *so, char *out, size_t len)
{
    char src[PATH_MAX], buf[65536];
    int in, fd;
    ssize_t n;

    snprintf(src, sizeof(src), "%s/%s", KB_TEST_PLUGIN_DIR, so);
    snprintf(out, len, "%s/%s", fx->dir, so);
    in = open(src, O_RDONLY | O_CLOEXEC);
    assert_true(in >= 0);
    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    while ((n = read(in, buf, sizeof(buf))) > 0)
        assert_int_equal(write(fd, buf, (size_t)n), n);
    close(in);
    close(fd);
    assert_int_equal(chmod(out, 0644), 0);
}

/* Starts a helper on a shared plugin with behavior; returns "loaded" (caller puts it). */
static struct json_object *s_load_shared(struct fx *fx, const char *so, const char *behavior)
{
    char path[PATH_MAX], line[3 * PATH_MAX];

    s_plugin(fx, so, path, sizeof(path));
    s_start(fx);
    snprintf(line, sizeof(line),
             "{\"type\":\"load\",\"name\":\"tp\",\"kind\":\"shared\",\"path\":\"%s\","
             "\"owner_uid\":%u,\"timeout_ms\":5000,"
             "\"config\":{\"behavior\":\"%s\",\"on\":\"pre_finish\",\"out\":\"%s/out\"}}",
             path, (unsigned)getuid(), behavior, fx->dir);
    s_send(fx, line);
    return s_recv(fx);
}

static void test_shared_fail(void **state)
{
    struct fx *fx = *state;
    struct json_object *o = s_load_shared(fx, "kbtp.so", "fail");
    char path[PATH_MAX];

    assert_non_null(o);
    assert_true(s_ok(o));
    assert_string_equal(s_get(o, "plugin"), "kbtp");
    assert_string_equal(s_get(o, "abi"), "1.1");
    assert_string_equal(s_get(o, "description"), "the keybroker test plugin");
    json_object_put(o);
    /* "on" is pre_finish: other hooks succeed. */
    s_send(fx,
           "{\"type\":\"event\",\"id\":1,\"hook\":\"provisioned\",\"event\":{\"tenant\":\"a\"}}");
    o = s_recv(fx);
    assert_true(s_ok(o));
    json_object_put(o);
    s_send(fx, "{\"type\":\"event\",\"id\":2,\"hook\":\"pre_finish\",\"event\":{\"tenant\":\"a\","
               "\"version_id\":\"v9\",\"rotation_id\":\"r9\"}}");
    o = s_recv(fx);
    assert_non_null(o);
    assert_string_equal(s_get(o, "id"), "2");
    assert_false(s_ok(o));
    assert_string_equal(s_get(o, "error"), "kbtp failed on pre_finish");
    json_object_put(o);
    assert_int_equal(WEXITSTATUS(s_finish(fx)), 0);
    snprintf(path, sizeof(path), "%s/out", fx->dir);
    assert_string_equal(s_slurp(path), "init 1\nprovisioned a - -\npre_finish a v9 r9\n");
}

static void test_not_subscribed(void **state)
{
    struct fx *fx = *state;
    struct json_object *o = s_load_shared(fx, "kbtp_pre.so", "fail");
    struct json_object *hooks;
    char path[PATH_MAX];

    assert_true(s_ok(o));
    assert_true(json_object_object_get_ex(o, "hooks", &hooks));
    assert_int_equal(json_object_array_length(hooks), 1);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(hooks, 0)), "pre_finish");
    json_object_put(o);
    s_send(fx, "{\"type\":\"event\",\"id\":5,\"hook\":\"post_rotate\"}");
    o = s_recv(fx);
    assert_true(s_ok(o));
    assert_string_equal(s_get(o, "message"), "not subscribed");
    json_object_put(o);
    assert_int_equal(WEXITSTATUS(s_finish(fx)), 0);
    snprintf(path, sizeof(path), "%s/out", fx->dir);
    assert_string_equal(s_slurp(path), "init 1\n"); /* on_event was not called */
}

static void test_shared_segv(void **state)
{
    struct fx *fx = *state;
    struct json_object *o = s_load_shared(fx, "kbtp.so", "segv");
    int status;

    assert_non_null(o);
    assert_true(s_ok(o));
    json_object_put(o);
    s_send(fx, "{\"type\":\"event\",\"id\":1,\"hook\":\"pre_finish\"}");
    assert_null(s_recv(fx)); /* EOF: the helper died */
    status = s_finish(fx);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
}

static void test_shared_refused(void **state)
{
    struct fx *fx = *state;
    struct json_object *o = s_load_shared(fx, "kbtp_major2.so", "ok");
    int status;

    assert_non_null(o);
    assert_false(s_ok(o));
    assert_string_equal(s_get(o, "error"),
                        "plugin 'tp' refused: built for plugin ABI 2.x, this keybroker speaks 1.x");
    json_object_put(o);
    assert_null(s_recv(fx)); /* the helper ends by itself */
    status = s_finish(fx);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_syslog(void **state)
{
    struct fx *fx = *state;
    struct json_object *o;

    s_start(fx);
    s_send(fx, "{\"type\":\"load\",\"name\":\"sl\",\"kind\":\"syslog\",\"facility\":\"nope\"}");
    o = s_recv(fx);
    assert_false(s_ok(o));
    assert_non_null(
        strstr(s_get(o, "error"), "plugin 'sl' refused: unknown syslog facility 'nope'"));
    json_object_put(o);
    assert_int_equal(WEXITSTATUS(s_finish(fx)), 0);

    s_start(fx);
    s_send(fx, "{\"type\":\"load\",\"name\":\"sl\",\"kind\":\"syslog\",\"facility\":\"local3\"}");
    o = s_recv(fx);
    assert_true(s_ok(o));
    assert_string_equal(s_get(o, "plugin"), "syslog");
    json_object_put(o);
    s_send(fx, "{\"type\":\"event\",\"id\":4,\"hook\":\"access_denied\",\"event\":{\"op\":\"get\","
               "\"peer\":{\"uid\":1000,\"gid\":1000,\"pid\":42}}}");
    o = s_recv(fx);
    assert_true(s_ok(o));
    json_object_put(o);
    assert_int_equal(WEXITSTATUS(s_finish(fx)), 0);
}

/* The syslog built-in really reaches syslog: the helper runs in a private mount namespace whose
 * /dev is a tmpfs holding only a link "log" to a datagram socket this test reads (root only: the
 * namespace needs CAP_SYS_ADMIN; the machine's own /dev/log is never touched). */
static void test_syslog_delivers(void **state)
{
    struct fx *fx = *state;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char got[4096], all[16384] = "";
    struct pollfd pfd;
    int sv[2], ds, n;
    struct json_object *o;

    if (geteuid() != 0) {
        print_message("skipped: a private mount namespace needs root\n");
        return;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/log", fx->dir);
    ds = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(ds >= 0);
    assert_int_equal(bind(ds, (struct sockaddr *)&sa, sizeof(sa)), 0);
    chmod(sa.sun_path, 0666);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    fx->pid = fork();
    assert_true(fx->pid >= 0);
    if (fx->pid == 0) {
        close(sv[0]);
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("kbtest", "/dev", "tmpfs", 0, "mode=0755") != 0 ||
            symlink(sa.sun_path, "/dev/log") != 0)
            _exit(90);
        _exit(kb_plugin_helper_main(sv[1]));
    }
    close(sv[1]);
    fx->fd = sv[0];
    s_send(fx, "{\"type\":\"load\",\"name\":\"sl\",\"kind\":\"syslog\",\"facility\":\"auth\"}");
    o = s_recv(fx);
    assert_non_null(o);
    assert_true(s_ok(o));
    json_object_put(o);
    s_send(fx, "{\"type\":\"event\",\"id\":1,\"hook\":\"rotation_failed\",\"event\":"
               "{\"tenant\":\"alpha\",\"message\":\"probe timed out\"}}");
    o = s_recv(fx);
    assert_true(s_ok(o));
    json_object_put(o);
    s_send(fx, "{\"type\":\"event\",\"id\":2,\"hook\":\"audit\",\"event\":"
               "{\"event\":\"aws_call\",\"tenant\":\"alpha\",\"operation\":\"GetUser\"}}");
    o = s_recv(fx);
    assert_true(s_ok(o));
    json_object_put(o);
    /* Two datagrams: <priority> then the message; auth (4) * 8 + warning (4) = 36, info 38. */
    pfd = (struct pollfd){.fd = ds, .events = POLLIN};
    for (int i = 0; i < 2 && poll(&pfd, 1, S_WAIT_MS) == 1; i++) {
        n = (int)recv(ds, got, sizeof(got) - 1, 0);
        assert_true(n > 0);
        got[n] = '\0';
        strncat(all, got, sizeof(all) - strlen(all) - 2);
        strncat(all, "\n", sizeof(all) - strlen(all) - 1);
    }
    assert_non_null(strstr(all, "<36>"));
    assert_non_null(strstr(all, "keybroker["));
    assert_non_null(strstr(all, "\"tenant\":\"alpha\""));
    assert_non_null(strstr(all, "\"hook\":\"rotation_failed\""));
    assert_non_null(strstr(all, "<38>"));
    assert_non_null(strstr(all, "\"hook\":\"audit\""));
    assert_non_null(strstr(all, "GetUser"));
    close(ds);
    assert_int_equal(WEXITSTATUS(s_finish(fx)), 0);
}

/* Bad input ends the helper with a non-zero status, never a crash. */
static void s_bad(struct fx *fx, const char *first, const char *line)
{
    struct json_object *o;
    int status;

    s_start(fx);
    if (first != NULL) {
        s_send(fx, first);
        o = s_recv(fx);
        assert_non_null(o);
        json_object_put(o);
    }
    s_send_any(fx, line);
    assert_null(s_recv(fx));
    status = s_finish(fx);
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 0);
}

static void test_bad_input(void **state)
{
    static const char load[] = "{\"type\":\"load\",\"name\":\"sl\",\"kind\":\"syslog\"}";
    struct fx *fx = *state;
    char *big = malloc(70000);

    s_bad(fx, NULL, "not json");
    s_bad(fx, NULL, "{\"type\":\"load\"} trailing");
    s_bad(fx, NULL, "[1,2]");
    s_bad(fx, NULL, "{\"type\":\"event\",\"id\":1,\"hook\":\"revoked\"}"); /* before load */
    s_bad(fx, NULL, "{\"type\":\"load\",\"kind\":\"syslog\"}");            /* no name */
    s_bad(fx, load, load);                                                 /* a second load */
    s_bad(fx, load, "{\"type\":\"event\",\"id\":1,\"hook\":\"nope\"}");
    s_bad(fx, load, "{\"type\":\"event\",\"hook\":\"revoked\"}");
    s_bad(fx, load, "{\"type\":\"event\",\"id\":1,\"hook\":\"revoked\",\"event\":{\"tenant\":5}}");
    s_bad(fx, load, "{\"type\":\"event\",\"id\":1,\"hook\":\"revoked\",\"event\":{\"peer\":1}}");
    s_bad(fx, load, "{\"type\":\"bogus\"}");
    assert_non_null(big);
    memset(big, 'x', 69999);
    big[69999] = '\0';
    s_bad(fx, load, big); /* longer than KB_PLUGIN_WIRE_MAX */
    free(big);
}

/* A descriptor that is not a socket is refused up front, not handed to libuv. */
static void test_not_a_socket(void **state)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(kb_plugin_helper_main(fd), 1);
    assert_int_equal(fcntl(fd, F_GETFD), -1); /* it took the descriptor, and closed it */
    assert_int_equal(kb_plugin_helper_main(fd), 1);
}

struct thread_run {
    int fd;
    int rc;
};

static void *s_thread(void *arg)
{
    struct thread_run *t = arg;

    t->rc = kb_plugin_helper_main(t->fd);
    return NULL;
}

/* EOF from the broker: fini runs, the helper returns 0 and leaves nothing behind (ASan). */
static void test_eof_returns_zero(void **state)
{
    struct fx *fx = *state;
    struct thread_run t = {.rc = -1};
    char path[PATH_MAX], line[3 * PATH_MAX];
    struct json_object *o;
    pthread_t th;
    int sv[2];

    s_plugin(fx, "kbtp.so", path, sizeof(path));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    t.fd = sv[1];
    fx->fd = sv[0];
    assert_int_equal(pthread_create(&th, NULL, s_thread, &t), 0);
    snprintf(line, sizeof(line),
             "{\"type\":\"load\",\"name\":\"tp\",\"kind\":\"shared\",\"path\":\"%s\","
             "\"owner_uid\":%u,\"config\":{\"out\":\"%s/out\",\"log_fini\":true}}",
             path, (unsigned)getuid(), fx->dir);
    s_send(fx, line);
    o = s_recv(fx);
    assert_true(s_ok(o));
    json_object_put(o);
    s_send(fx,
           "{\"type\":\"event\",\"id\":1,\"hook\":\"key_deleted\",\"event\":{\"tenant\":\"z\"}}");
    o = s_recv(fx);
    assert_true(s_ok(o));
    json_object_put(o);
    close(fx->fd);
    fx->fd = -1;
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(t.rc, 0);
    snprintf(path, sizeof(path), "%s/out", fx->dir);
    assert_string_equal(s_slurp(path), "init 1\nkey_deleted z - -\nfini\n");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exec_env_stdin, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_exec_timeout, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_exec_fails, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_exec_output_caps, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_exec_eof_kills, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_not_subscribed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_shared_fail, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_shared_segv, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_shared_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_syslog, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_syslog_delivers, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_eof_returns_zero, s_setup, s_teardown),
        cmocka_unit_test(test_not_a_socket),
    };

    signal(SIGPIPE, SIG_IGN); /* a helper that stopped reading must not kill the test */
    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
