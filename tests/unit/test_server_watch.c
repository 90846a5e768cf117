/*
 * test_server_watch.c - the watch stream of a real server on a private loop and socket, with
 * events fed through the bus by hand (so the rotation kinds the engine does not emit yet are
 * covered): epoch and seq on every line, replay after since, reset on another epoch, on a gap
 * and on a replay larger than the connection may queue, and a subscription closed when the
 * peer's access is withdrawn - the ACL changed in place in the config, as a reload will do.
 *
 * The client is a blocking socket in this thread; the loop runs between its reads.
 */
#include "kb_test.h"

#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/err.h"
#include "config/config.h"
#include "events/events.h"
#include "server/server.h"

struct fixture {
    uv_loop_t loop;
    struct kb_config *cfg;
    struct kb_events *bus;
    struct kb_server *srv;
    char dir[64];
    char path[108];
    bool closed;
};

static void on_closed(void *ctx)
{
    ((struct fixture *)ctx)->closed = true;
}

/* tenants a and c for our uid, b for nobody we are; a ring of 16 events */
static struct fixture *s_start(size_t max_queued)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct kb_config_errors *errors = NULL;
    struct kb_server_options opt = {0};
    char doc[1024], err[256];

    assert_non_null(f);
    signal(SIGPIPE, SIG_IGN); /* as keybrokerd does: a closed client is a write error */
    snprintf(doc, sizeof(doc),
             "{\"broker\": {\"limits\": {\"watch_ring_events\": 16}},"
             " \"tenants\": ["
             "  {\"name\": \"a\", \"bucket\": \"kb-a\", \"access\": \"read-only\","
             "   \"clients\": {\"uids\": [%u]}},"
             "  {\"name\": \"b\", \"bucket\": \"kb-b\", \"access\": \"read-only\","
             "   \"clients\": {\"uids\": [%u]}},"
             "  {\"name\": \"c\", \"bucket\": \"kb-c\", \"access\": \"read-only\","
             "   \"clients\": {\"uids\": [%u]}}]}",
             (unsigned)getuid(), (unsigned)getuid() + 1, (unsigned)getuid());
    assert_int_equal(kb_config_load_string(doc, strlen(doc), NULL, &f->cfg, &errors), 0);
    kb_config_errors_destroy(errors);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(kb_events_new(&f->bus), 0);
    snprintf(f->dir, sizeof(f->dir), "/tmp/kbwatch.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/kb.sock", f->dir);
    opt.cfg = f->cfg;
    opt.events = f->bus;
    opt.socket_path = f->path;
    opt.max_queued = max_queued;
    assert_int_equal(kb_server_new(&f->loop, &opt, &f->srv), 0);
    assert_int_equal(kb_server_listen(f->srv, err, sizeof(err)), 0);
    return f;
}

static void s_stop(struct fixture *f)
{
    kb_server_close(f->srv, on_closed, f);
    while (!f->closed)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    kb_events_destroy(f->bus);
    kb_config_destroy(f->cfg);
    rmdir(f->dir);
    free(f);
}

static int s_connect(struct fixture *f)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void s_send(int fd, const char *line)
{
    assert_int_equal(send(fd, line, strlen(line), MSG_NOSIGNAL), (ssize_t)strlen(line));
}

/* The next line from fd as JSON (caller puts it), running the loop meanwhile; NULL at end of
 * file or after 3 s. Bytes past the line are kept per fd (one fd at a time is enough here). */
static char s_buf[1 << 20];
static size_t s_len;
static int s_buf_fd = -1;

static struct json_object *s_line(struct fixture *f, int fd)
{
    struct timespec t0, t;

    if (s_buf_fd != fd) {
        s_buf_fd = fd;
        s_len = 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        char *nl = memchr(s_buf, '\n', s_len);
        struct pollfd p = {.fd = fd, .events = POLLIN};

        if (nl != NULL) {
            struct json_object *o;

            *nl = '\0';
            o = json_tokener_parse(s_buf);
            s_len -= (size_t)(nl + 1 - s_buf);
            memmove(s_buf, nl + 1, s_len);
            assert_non_null(o);
            return o;
        }
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (poll(&p, 1, 1) == 1) {
            ssize_t n = recv(fd, s_buf + s_len, sizeof(s_buf) - s_len, 0);

            if (n <= 0)
                return NULL;
            s_len += (size_t)n;
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > 3000)
            return NULL;
    }
}

static void s_pump(struct fixture *f)
{
    for (int i = 0; i < 50; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static const char *s_str(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static int64_t s_int(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;

    assert_true(json_object_object_get_ex(o, key, &v));
    return json_object_get_int64(v);
}

static void s_emit(struct fixture *f, enum kb_event_kind kind, const char *tenant, const char *v)
{
    struct kb_event ev = {
        .kind = kind, .tenant = tenant, .arn = "arn:aws:secretsmanager:x", .version_id = v};

    kb_events_emit(f->bus, &ev);
}

/* Subscribes fd (tenants: JSON array text or NULL; since: JSON object text or NULL) and returns
 * the ack's result epoch and seq. */
static void s_watch(struct fixture *f, int fd, const char *tenants, const char *since, char *epoch,
                    int64_t *seq)
{
    char req[512];
    struct json_object *ack, *r = NULL;

    snprintf(req, sizeof(req), "{\"v\":1,\"id\":1,\"op\":\"watch\"%s%s%s%s}\n",
             tenants ? ",\"tenants\":" : "", tenants ? tenants : "", since ? ",\"since\":" : "",
             since ? since : "");
    s_send(fd, req);
    ack = s_line(f, fd);
    assert_non_null(ack);
    assert_true(json_object_object_get_ex(ack, "result", &r));
    assert_non_null(s_str(r, "epoch"));
    if (epoch != NULL)
        memcpy(epoch, s_str(r, "epoch"), 17);
    if (seq != NULL)
        *seq = s_int(r, "seq");
    json_object_put(ack);
}

static void test_events_carry_epoch_and_seq_and_replay(void **state)
{
    struct fixture *f = s_start(0);
    int w = s_connect(f), r;
    char epoch[17], since[128];
    int64_t seq0, seq;
    struct json_object *o;

    s_watch(f, w, NULL, NULL, epoch, &seq0);
    assert_int_equal(seq0, 0);
    s_emit(f, KB_EVENT_PROVISIONED, "a", "v1");
    s_emit(f, KB_EVENT_ROTATED, "b", "v9"); /* b is not ours: a gap in our seqs */
    s_emit(f, KB_EVENT_ROTATED, "a", "v2");
    s_emit(f, KB_EVENT_ROLLED_BACK, "c", "v1");
    s_emit(f, KB_EVENT_STEP, "a", NULL); /* not a watch kind: no seq */
    s_emit(f, KB_EVENT_KEY_DELETED, "a", "v1");
    o = s_line(f, w);
    assert_string_equal(s_str(o, "event"), "provisioned");
    assert_string_equal(s_str(o, "epoch"), epoch);
    assert_int_equal(s_int(o, "seq"), 1);
    json_object_put(o);
    o = s_line(f, w);
    assert_string_equal(s_str(o, "event"), "rotated");
    assert_string_equal(s_str(o, "tenant"), "a");
    assert_int_equal(s_int(o, "seq"), 3);
    json_object_put(o);
    o = s_line(f, w);
    assert_string_equal(s_str(o, "event"), "rolled_back");
    assert_int_equal(s_int(o, "seq"), 4);
    json_object_put(o);
    o = s_line(f, w);
    assert_string_equal(s_str(o, "event"), "key_deleted");
    assert_int_equal(s_int(o, "seq"), 5);
    json_object_put(o);

    /* a second client that saw seq 1 of this epoch, watching a only: 3 and 5 again, then live */
    r = s_connect(f);
    snprintf(since, sizeof(since), "{\"epoch\":\"%s\",\"seq\":1}", epoch);
    s_watch(f, r, "[\"a\"]", since, NULL, &seq);
    assert_int_equal(seq, 5);
    o = s_line(f, r);
    assert_int_equal(s_int(o, "seq"), 3);
    json_object_put(o);
    o = s_line(f, r);
    assert_int_equal(s_int(o, "seq"), 5);
    assert_string_equal(s_str(o, "event"), "key_deleted");
    json_object_put(o);
    s_emit(f, KB_EVENT_REVOKED, "a", NULL);
    o = s_line(f, r);
    assert_int_equal(s_int(o, "seq"), 6);
    assert_string_equal(s_str(o, "event"), "revoked");
    json_object_put(o);
    close(r);

    /* since the newest seq: nothing to replay, the next line is live */
    r = s_connect(f);
    snprintf(since, sizeof(since), "{\"epoch\":\"%s\",\"seq\":6}", epoch);
    s_watch(f, r, NULL, since, NULL, NULL);
    s_emit(f, KB_EVENT_KEY_DEACTIVATED, "c", "v0");
    o = s_line(f, r);
    assert_int_equal(s_int(o, "seq"), 7);
    assert_string_equal(s_str(o, "event"), "key_deactivated");
    json_object_put(o);
    close(r);
    close(w);
    s_stop(f);
}

static void s_expect_reset(struct fixture *f, int fd, const char *reason, int64_t seq)
{
    struct json_object *o = s_line(f, fd), *t = NULL;

    assert_non_null(o);
    assert_string_equal(s_str(o, "event"), "reset");
    assert_string_equal(s_str(o, "reason"), reason);
    assert_int_equal(s_int(o, "seq"), seq);
    assert_true(json_object_object_get_ex(o, "tenants", &t));
    /* no engine: every visible watched tenant is pending, b (not ours) is not there */
    assert_int_equal(json_object_array_length(t), 2);
    assert_string_equal(s_str(json_object_array_get_idx(t, 0), "tenant"), "a");
    assert_string_equal(s_str(json_object_array_get_idx(t, 0), "state"), "pending");
    assert_string_equal(s_str(json_object_array_get_idx(t, 1), "tenant"), "c");
    json_object_put(o);
}

static void test_reset_on_epoch_gap_and_too_large(void **state)
{
    struct fixture *f = s_start(2048);
    char epoch[17], since[128];
    struct json_object *o;
    int fd;

    fd = s_connect(f);
    s_watch(f, fd, NULL, "{\"epoch\":\"0000000000000000\",\"seq\":3}", epoch, NULL);
    s_expect_reset(f, fd, "epoch", 0);
    close(fd);
    for (int i = 0; i < 20; i++)
        s_emit(f, KB_EVENT_PROVISIONED, i % 2 ? "a" : "c", "v1");
    /* 20 events in a ring of 16: seq 1..4 are gone */
    fd = s_connect(f);
    snprintf(since, sizeof(since), "{\"epoch\":\"%s\",\"seq\":3}", epoch);
    s_watch(f, fd, NULL, since, NULL, NULL);
    s_expect_reset(f, fd, "gap", 20);
    close(fd);
    /* seq 4 resumes: but 16 lines are more than the 2048 bytes this connection may queue */
    fd = s_connect(f);
    snprintf(since, sizeof(since), "{\"epoch\":\"%s\",\"seq\":4}", epoch);
    s_watch(f, fd, NULL, since, NULL, NULL);
    s_expect_reset(f, fd, "too_large", 20);
    close(fd);
    /* a small replay still fits */
    fd = s_connect(f);
    snprintf(since, sizeof(since), "{\"epoch\":\"%s\",\"seq\":18}", epoch);
    s_watch(f, fd, NULL, since, NULL, NULL);
    o = s_line(f, fd);
    assert_int_equal(s_int(o, "seq"), 19);
    json_object_put(o);
    o = s_line(f, fd);
    assert_int_equal(s_int(o, "seq"), 20);
    json_object_put(o);
    /* a future seq is no position of this epoch */
    close(fd);
    fd = s_connect(f);
    snprintf(since, sizeof(since), "{\"epoch\":\"%s\",\"seq\":99}", epoch);
    s_watch(f, fd, NULL, since, NULL, NULL);
    s_expect_reset(f, fd, "gap", 20);
    close(fd);
    s_stop(f);
}

static void test_withdrawn_access_closes_the_subscription(void **state)
{
    struct fixture *f = s_start(0);
    int named = s_connect(f), all = s_connect(f), other = s_connect(f);
    struct kb_tenant *a = (struct kb_tenant *)kb_config_tenant(f->cfg, "a");
    struct json_object *o;
    char buf[16];

    s_watch(f, named, "[\"a\"]", NULL, NULL, NULL);
    s_watch(f, all, NULL, NULL, NULL, NULL);
    s_watch(f, other, "[\"c\"]", NULL, NULL, NULL);
    s_emit(f, KB_EVENT_ROTATED, "a", "v2");
    o = s_line(f, named);
    assert_string_equal(s_str(o, "event"), "rotated");
    json_object_put(o);
    o = s_line(f, all);
    assert_string_equal(s_str(o, "event"), "rotated");
    json_object_put(o);
    /* the ACL changes in place (what a config reload will do): a is no longer ours */
    a->clients.uids[0] = (uint32_t)getuid() + 7;
    s_emit(f, KB_EVENT_ROTATED, "c", "v3");
    o = s_line(f, named);
    assert_string_equal(s_str(o, "event"), "closed");
    assert_string_equal(s_str(o, "reason"), "access to tenant a was withdrawn");
    json_object_put(o);
    assert_null(s_line(f, named)); /* and the connection is closed */
    o = s_line(f, all);
    assert_string_equal(s_str(o, "event"), "closed");
    json_object_put(o);
    assert_null(s_line(f, all));
    /* a watcher of c only is not concerned */
    o = s_line(f, other);
    assert_string_equal(s_str(o, "event"), "rotated");
    assert_string_equal(s_str(o, "tenant"), "c");
    json_object_put(o);
    s_pump(f);
    assert_int_equal(recv(other, buf, sizeof(buf), MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
    close(named);
    close(all);
    close(other);
    s_stop(f);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_carry_epoch_and_seq_and_replay),
        cmocka_unit_test(test_reset_on_epoch_gap_and_too_large),
        cmocka_unit_test(test_withdrawn_access_closes_the_subscription),
    };

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
