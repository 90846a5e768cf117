/*
 * test_client.c - libkeybroker against a fake broker: a thread in this process that listens on a
 * Unix socket in a fresh temporary directory, records each request line and answers with
 * scripted lines written by hand from PROTOCOL.md (not by the codec, so that the client is checked
 * against the document and not against itself).
 *
 * In a scripted reply "%ID%" becomes the request's id, "\x01" pauses 50 ms (so a line arrives in
 * pieces), "\x02" pauses one second and "\x03" hangs up (the fake then accepts the next
 * connection, up to nconns).
 */
#include "kb_test.h"

#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keybroker/client.h"

#define S_MAX_REQ 8

struct fake {
    char dir[64];
    char path[108];
    int lfd;
    pthread_t thread;
    bool started;
    const char *replies[S_MAX_REQ]; /* per request line; NULL: never answer it */
    size_t nreplies;
    bool close_after; /* hang up once the last scripted reply is written */
    int nconns;       /* connections to accept one after the other (0: 1) */
    char got[S_MAX_REQ][1024];
    size_t ngot;
};

static struct fake s_fake;

/* -- the fake broker -------------------------------------------------------------------------- */

/* The id of a request line as JSON text ("null" when none). */
static void s_request_id(const char *line, char *out, size_t cap)
{
    struct json_object *o = json_tokener_parse(line), *id = NULL;

    snprintf(out, cap, "null");
    if (o != NULL && json_object_object_get_ex(o, "id", &id) && id != NULL)
        snprintf(out, cap, "%s", json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
}

static void s_send(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

/* Returns true when the script hangs up. */
static bool s_reply(int fd, const char *script, const char *id)
{
    char out[8192];
    size_t n = 0;

    for (const char *p = script; *p != '\0'; p++) {
        if (*p == '\x03') {
            s_send(fd, out, n);
            return true;
        }
        if (strncmp(p, "%ID%", 4) == 0) {
            n += (size_t)snprintf(out + n, sizeof(out) - n, "%s", id);
            p += 3;
        } else if (*p == '\x01' || *p == '\x02') {
            s_send(fd, out, n);
            n = 0;
            usleep(*p == '\x01' ? 50000 : 1000000);
        } else if (n < sizeof(out) - 1) {
            out[n++] = *p;
        }
    }
    s_send(fd, out, n);
    return false;
}

static void *s_serve(void *arg)
{
    struct fake *f = arg;
    char buf[65536], id[256];
    size_t len = 0;
    int conns = f->nconns > 0 ? f->nconns : 1;
    int fd = accept(f->lfd, NULL, NULL);

    while (fd >= 0) {
        bool hangup = false;
        char *nl = memchr(buf, '\n', len);
        size_t idx = f->ngot, l;
        ssize_t n;

        if (nl == NULL) {
            n = recv(fd, buf + len, sizeof(buf) - len, 0);
            if (n <= 0)
                break;
            len += (size_t)n;
            continue;
        }
        l = (size_t)(nl - buf);
        *nl = '\0';
        if (idx < S_MAX_REQ) {
            size_t keep = l < sizeof(f->got[idx]) - 1 ? l : sizeof(f->got[idx]) - 1;

            memcpy(f->got[idx], buf, keep);
            f->got[idx][keep] = '\0';
            f->ngot++;
        }
        s_request_id(buf, id, sizeof(id));
        if (idx < f->nreplies && f->replies[idx] != NULL)
            hangup = s_reply(fd, f->replies[idx], id);
        memmove(buf, nl + 1, len - l - 1);
        len -= l + 1;
        if (f->close_after && idx + 1 >= f->nreplies)
            break;
        if (hangup && --conns > 0) {
            close(fd);
            len = 0;
            fd = accept(f->lfd, NULL, NULL);
        } else if (hangup) {
            break;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* Starts the fake broker with replies (NULL-terminated is not needed: n entries), accepting
 * nconns connections one after the other. Everything the thread reads is set before it starts. */
static void s_fake_start_conns(const char *const *replies, size_t n, bool close_after, int nconns)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    memset(&s_fake, 0, sizeof(s_fake));
    s_fake.nconns = nconns;
    snprintf(s_fake.dir, sizeof(s_fake.dir), "/tmp/kbclient.XXXXXX");
    assert_non_null(mkdtemp(s_fake.dir));
    snprintf(s_fake.path, sizeof(s_fake.path), "%s/kb.sock", s_fake.dir);
    for (size_t i = 0; i < n; i++)
        s_fake.replies[i] = replies[i];
    s_fake.nreplies = n;
    s_fake.close_after = close_after;
    s_fake.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s_fake.lfd >= 0);
    memcpy(sa.sun_path, s_fake.path, strlen(s_fake.path) + 1);
    assert_int_equal(bind(s_fake.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s_fake.lfd, 4), 0);
    assert_int_equal(pthread_create(&s_fake.thread, NULL, s_serve, &s_fake), 0);
    s_fake.started = true;
}

static void s_fake_start(const char *const *replies, size_t n, bool close_after)
{
    s_fake_start_conns(replies, n, close_after, 1);
}

/* Waits for the fake to finish (the client must have closed, or the script hung up). */
static void s_fake_stop(void)
{
    if (!s_fake.started)
        return;
    shutdown(s_fake.lfd, SHUT_RDWR); /* wakes accept() if nobody connected */
    pthread_join(s_fake.thread, NULL);
    close(s_fake.lfd);
    unlink(s_fake.path);
    rmdir(s_fake.dir);
    s_fake.started = false;
}

static int s_teardown(void **state)
{
    s_fake_stop();
    return 0;
}

static struct kb_client *s_connect(void)
{
    struct kb_client *c = NULL;

    assert_int_equal(kb_client_connect(s_fake.path, 5000, &c), 0);
    assert_non_null(c);
    return c;
}

/* The recorded request i, parsed. */
static struct json_object *s_got(size_t i)
{
    struct json_object *o;

    assert_true(i < s_fake.ngot);
    o = json_tokener_parse(s_fake.got[i]);
    assert_non_null(o);
    return o;
}

static const char *s_field(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(o, key, &v) || v == NULL)
        return NULL;
    return json_object_get_string(v);
}

static int64_t s_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* -- get, list, status ------------------------------------------------------------------------ */

static void test_get(void **state)
{
    static const char *const replies[] = {
        "{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"tenant\":\"billing\",\"arn\":\"arn:aws:"
        "secretsmanager:us-east-1:123456789012:secret:keybroker/billing-AbCdEf\",\"bucket\":"
        "\"acme-billing\",\"prefix\":\"data/\",\"region\":\"us-east-1\",\"version_id\":\"v-1\","
        "\"last_rotation\":\"2024-05-01T12:00:00Z\",\"state\":\"ready\",\"future\":[1]}}\n"};
    struct kb_client_tenant *t = NULL;
    struct kb_client *c;
    struct json_object *req;

    s_fake_start(replies, 1, false);
    c = s_connect();
    assert_int_equal(kb_client_get(c, "billing", &t), 0);
    assert_string_equal(t->tenant, "billing");
    assert_string_equal(t->arn,
                        "arn:aws:secretsmanager:us-east-1:123456789012:secret:keybroker/billing-"
                        "AbCdEf");
    assert_string_equal(t->bucket, "acme-billing");
    assert_string_equal(t->prefix, "data/");
    assert_string_equal(t->region, "us-east-1");
    assert_string_equal(t->version_id, "v-1");
    assert_string_equal(t->last_rotation, "2024-05-01T12:00:00Z");
    assert_string_equal(t->state, "ready");
    kb_client_tenant_free(t);
    kb_client_close(c);
    s_fake_stop();
    /* what went on the wire: exactly v, id, op, tenant */
    req = s_got(0);
    assert_int_equal(json_object_object_length(req), 4);
    assert_string_equal(s_field(req, "v"), "1");
    assert_string_equal(s_field(req, "op"), "get");
    assert_string_equal(s_field(req, "tenant"), "billing");
    assert_non_null(s_field(req, "id"));
    json_object_put(req);
}

static void test_get_nulls_and_missing_fields(void **state)
{
    static const char *const replies[] = {
        ("{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"tenant\":\"a\",\"arn\":\"arn:x\","
         "\"bucket\":\"b\",\"region\":\"r\",\"version_id\":null,\"last_rotation\":null,"
         "\"state\":\"pending\"}}\n"),
        /* no arn: a protocol error, but the line was framed, so the connection survives */
        ("{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"tenant\":\"a\",\"bucket\":\"b\","
         "\"region\":\"r\",\"state\":\"ready\"}}\n"),
        "{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"tenants\":[]}}\n"};
    struct kb_client_tenant *t = NULL;
    struct kb_client_list *l = NULL;
    struct kb_client *c;

    s_fake_start(replies, 3, false);
    c = s_connect();
    assert_int_equal(kb_client_get(c, "a", &t), 0);
    assert_string_equal(t->prefix, "");
    assert_null(t->version_id);
    assert_null(t->last_rotation);
    assert_string_equal(t->state, "pending");
    kb_client_tenant_free(t);
    assert_int_equal(kb_client_get(c, "a", &t), KB_CLIENT_EPROTO);
    assert_null(t);
    assert_non_null(strstr(kb_client_last_error(c)->message, "get"));
    assert_int_equal(kb_client_list(c, &l), 0);
    assert_int_equal(l->count, 0);
    kb_client_list_free(l);
    kb_client_close(c);
}

static void test_list_and_status(void **state)
{
    static const char *const replies[] = {
        ("{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"tenants\":[{\"tenant\":\"a\",\"bucket\":"
         "\"ba\",\"state\":\"ready\"},{\"tenant\":\"b\",\"bucket\":\"bb\",\"state\":"
         "\"pending\"}]}}\n"),
        ("{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"version\":\"0.1.0\",\"uptime_seconds\":"
         "42,\"tenants\":[{\"tenant\":\"a\",\"state\":\"ready\",\"probe\":\"probed-ok\"},"
         "{\"tenant\":\"b\",\"state\":\"error\",\"message\":\"AccessDenied\"}]}}\n"),
        ("{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"version\":\"0.1.0\",\"uptime_seconds\":"
         "43,\"tenants\":[{\"tenant\":\"b\",\"state\":\"error\"}]}}\n")};
    struct kb_client_status *s = NULL;
    struct kb_client_list *l = NULL;
    struct kb_client *c;
    struct json_object *req;

    s_fake_start(replies, 3, false);
    c = s_connect();
    assert_int_equal(kb_client_list(c, &l), 0);
    assert_int_equal(l->count, 2);
    assert_string_equal(l->tenants[0].tenant, "a");
    assert_string_equal(l->tenants[1].bucket, "bb");
    assert_string_equal(l->tenants[1].state, "pending");
    kb_client_list_free(l);
    assert_int_equal(kb_client_status(c, NULL, &s), 0);
    assert_string_equal(s->version, "0.1.0");
    assert_int_equal(s->uptime_seconds, 42);
    assert_int_equal(s->count, 2);
    assert_true(s->tenants[0].probed_ok);
    assert_null(s->tenants[0].message);
    assert_false(s->tenants[1].probed_ok);
    assert_string_equal(s->tenants[1].message, "AccessDenied");
    kb_client_status_free(s);
    assert_int_equal(kb_client_status(c, "b", &s), 0);
    assert_int_equal(s->count, 1);
    kb_client_status_free(s);
    kb_client_close(c);
    s_fake_stop();
    req = s_got(0);
    assert_string_equal(s_field(req, "op"), "list");
    assert_false(json_object_object_get_ex(req, "tenant", NULL));
    json_object_put(req);
    req = s_got(1);
    assert_false(json_object_object_get_ex(req, "tenant", NULL));
    json_object_put(req);
    req = s_got(2);
    assert_string_equal(s_field(req, "tenant"), "b");
    json_object_put(req);
}

/* -- errors ----------------------------------------------------------------------------------- */

static void test_server_error_maps_to_code_and_message(void **state)
{
    static const char *const replies[] = {
        ("{\"v\":1,\"id\":%ID%,\"ok\":false,\"error\":{\"code\":\"forbidden\",\"message\":"
         "\"not permitted\"}}\n"),
        ("{\"v\":1,\"id\":null,\"ok\":false,\"error\":{\"code\":\"rate_limited\",\"message\":"
         "\"slow down\"}}\n"),
        "{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"tenants\":[]}}\n"};
    struct kb_client_tenant *t = NULL;
    struct kb_client_list *l = NULL;
    const struct kb_client_error *e;
    struct kb_client *c;

    s_fake_start(replies, 3, false);
    c = s_connect();
    assert_int_equal(kb_client_get(c, "secret-project", &t), KB_CLIENT_EREMOTE);
    assert_null(t);
    e = kb_client_last_error(c);
    assert_int_equal(e->err, KB_CLIENT_EREMOTE);
    assert_string_equal(e->code, "forbidden");
    assert_string_equal(e->message, "not permitted");
    /* an error the broker could not tie to the request carries id null */
    assert_int_equal(kb_client_list(c, &l), KB_CLIENT_EREMOTE);
    assert_string_equal(kb_client_last_error(c)->code, "rate_limited");
    assert_string_equal(kb_client_last_error(c)->message, "slow down");
    /* the connection survives broker errors */
    assert_int_equal(kb_client_list(c, &l), 0);
    assert_string_equal(kb_client_last_error(c)->code, "rate_limited"); /* untouched by success */
    kb_client_list_free(l);
    kb_client_close(c);
}

static void test_timeout_when_server_never_answers(void **state)
{
    static const char *const replies[] = {NULL};
    struct kb_client_list *l = NULL;
    struct kb_client *c;
    int64_t t0;

    s_fake_start(replies, 1, false);
    c = s_connect();
    kb_client_set_timeout(c, 200);
    t0 = s_ms();
    assert_int_equal(kb_client_list(c, &l), -ETIMEDOUT);
    assert_true(s_ms() - t0 >= 200);
    assert_true(s_ms() - t0 < 3000);
    assert_int_equal(kb_client_last_error(c)->err, -ETIMEDOUT);
    assert_string_equal(kb_client_last_error(c)->code, "");
    /* a late reply could belong to the abandoned request: the handle refuses to go on */
    assert_int_equal(kb_client_list(c, &l), -ENOTCONN);
    assert_null(l);
    kb_client_close(c);
}

static void test_connect_failures(void **state)
{
    char dir[] = "/tmp/kbclient.XXXXXX", path[128], longpath[200];
    struct kb_client *c = (struct kb_client *)&c;
    FILE *f;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/missing.sock", dir);
    assert_int_equal(kb_client_connect(path, 1000, &c), -ENOENT);
    assert_null(c);
    /* a file that is not a listening socket */
    snprintf(path, sizeof(path), "%s/file", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(kb_client_connect(path, 1000, &c), -ECONNREFUSED);
    unlink(path);
    rmdir(dir);
    memset(longpath, 'x', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(kb_client_connect(longpath, 1000, &c), -ENAMETOOLONG);
    assert_int_equal(kb_client_connect(path, 1000, NULL), -EINVAL);
    assert_string_equal(kb_client_strerror(-ENOENT), strerror(ENOENT));
    assert_non_null(strstr(kb_client_strerror(KB_CLIENT_ECLOSED), "closed"));
}

static void test_env_socket_honoured(void **state)
{
    static const char *const replies[] = {
        "{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"tenants\":[]}}\n"};
    struct kb_client_list *l = NULL;
    struct kb_client *c = NULL;

    s_fake_start(replies, 1, false);
    unsetenv(KB_CLIENT_SOCKET_ENV);
    assert_string_equal(kb_client_socket_path(), "/run/keybroker/keybroker.sock");
    setenv(KB_CLIENT_SOCKET_ENV, "", 1);
    assert_string_equal(kb_client_socket_path(), KB_CLIENT_DEFAULT_SOCKET);
    setenv(KB_CLIENT_SOCKET_ENV, s_fake.path, 1);
    assert_string_equal(kb_client_socket_path(), s_fake.path);
    assert_int_equal(kb_client_connect(NULL, 0, &c), 0);
    assert_int_equal(kb_client_list(c, &l), 0);
    kb_client_list_free(l);
    kb_client_close(c);
    s_fake_stop();
    assert_int_equal(s_fake.ngot, 1);
    /* an explicit path wins over the environment */
    setenv(KB_CLIENT_SOCKET_ENV, s_fake.path, 1);
    assert_int_equal(kb_client_connect("/nonexistent/kb.sock", 0, &c), -ENOENT);
    unsetenv(KB_CLIENT_SOCKET_ENV);
}

static void test_malformed_replies(void **state)
{
    static const char *const replies[] = {"this is not json\n"};
    static const char *const mismatch[] = {
        "{\"v\":1,\"id\":999999,\"ok\":true,\"result\":{\"tenants\":[]}}\n"};
    struct kb_client_list *l = NULL;
    struct kb_client *c;

    s_fake_start(replies, 1, false);
    c = s_connect();
    assert_int_equal(kb_client_list(c, &l), KB_CLIENT_EPROTO);
    assert_non_null(strstr(kb_client_last_error(c)->message, "bad_json"));
    assert_int_equal(kb_client_list(c, &l), -ENOTCONN);
    kb_client_close(c);
    s_fake_stop();

    s_fake_start(mismatch, 1, false);
    c = s_connect();
    assert_int_equal(kb_client_list(c, &l), KB_CLIENT_EPROTO);
    assert_non_null(strstr(kb_client_last_error(c)->message, "id"));
    kb_client_close(c);
}

static void test_server_hangs_up(void **state)
{
    static const char *const replies[] = {
        "{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"tenant\":\"a\""}; /* then closes */
    struct kb_client_list *l = NULL;
    struct kb_client *c;

    s_fake_start(replies, 1, true);
    c = s_connect();
    assert_int_equal(kb_client_list(c, &l), KB_CLIENT_ECLOSED);
    assert_int_equal(kb_client_last_error(c)->err, KB_CLIENT_ECLOSED);
    kb_client_close(c);
}

static void test_invalid_tenant_sends_nothing(void **state)
{
    static const char *const replies[] = {NULL};
    struct kb_client_tenant *t = NULL;
    struct kb_client *c;

    s_fake_start(replies, 1, false);
    c = s_connect();
    assert_int_equal(kb_client_get(c, "a b", &t), -EINVAL);
    assert_int_equal(kb_client_get(c, NULL, &t), -EINVAL);
    assert_int_equal(kb_client_get(c, "../etc", &t), -EINVAL);
    kb_client_close(c);
    s_fake_stop();
    assert_int_equal(s_fake.ngot, 0);
}

/* -- admin calls ------------------------------------------------------------------------------ */

struct progress_log {
    char lines[8][128];
    int count;
};

static void on_progress(void *ctx, const struct kb_client_progress *p)
{
    struct progress_log *log = ctx;

    if (log->count < 8)
        snprintf(log->lines[log->count++], sizeof(log->lines[0]), "%s %s %s %s", p->tenant, p->step,
                 p->state, p->message != NULL ? p->message : "-");
}

static void test_provision_streams_progress(void **state)
{
    static const char *const replies[] = {
        "{\"v\":1,\"id\":%ID%,\"event\":\"progress\",\"tenant\":\"a\",\"step\":\"create-bucket\","
        "\"state\":\"start\"}\n\x01"
        "{\"v\":1,\"id\":%ID%,\"event\":\"progress\",\"tenant\":\"a\",\"step\":\"create-bucket\","
        "\"state\":\"done\"}\n"
        "{\"v\":1,\"id\":\"other\",\"event\":\"progress\",\"tenant\":\"z\",\"step\":\"x\","
        "\"state\":\"done\"}\n"
        "{\"v\":1,\"id\":%ID%,\"event\":\"progress\",\"tenant\":\"b\",\"step\":\"create-user\","
        "\"state\":\"error\",\"message\":\"AccessDenied\"}\n"
        "{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"tenants\":[{\"tenant\":\"a\",\"state\":"
        "\"ready\"},{\"tenant\":\"b\",\"state\":\"error\",\"message\":\"AccessDenied\"}]}}\n"};
    struct progress_log log = {0};
    struct kb_client_states *s = NULL;
    struct kb_client *c;

    s_fake_start(replies, 1, false);
    c = s_connect();
    assert_int_equal(kb_client_provision(c, NULL, on_progress, &log, &s), 0);
    assert_int_equal(log.count, 3); /* the line of another request is not ours */
    assert_string_equal(log.lines[0], "a create-bucket start -");
    assert_string_equal(log.lines[1], "a create-bucket done -");
    assert_string_equal(log.lines[2], "b create-user error AccessDenied");
    assert_int_equal(s->count, 2);
    assert_string_equal(s->tenants[1].tenant, "b");
    assert_string_equal(s->tenants[1].message, "AccessDenied");
    assert_null(s->tenants[0].message);
    kb_client_states_free(s);
    kb_client_close(c);
}

static void test_rotate_revoke_metrics(void **state)
{
    static const char *const replies[] = {
        "{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"tenant\":\"a\",\"state\":\"ready\"}}\n",
        "{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"tenant\":\"a\",\"state\":\"revoked\"}}\n",
        ("{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"text\":\"# TYPE kb_up gauge\\nkb_up "
         "1\\n\"}}\n")};
    struct kb_client_states *s = NULL;
    struct kb_client *c;
    struct json_object *req;
    char *text = NULL;

    s_fake_start(replies, 3, false);
    c = s_connect();
    assert_int_equal(kb_client_rotate(c, "a", &s), 0);
    assert_int_equal(s->count, 1);
    assert_string_equal(s->tenants[0].state, "ready");
    kb_client_states_free(s);
    assert_int_equal(kb_client_revoke(c, "a", true, false, &s), 0);
    assert_string_equal(s->tenants[0].state, "revoked");
    kb_client_states_free(s);
    assert_int_equal(kb_client_metrics(c, &text), 0);
    assert_string_equal(text, "# TYPE kb_up gauge\nkb_up 1\n");
    free(text);
    kb_client_close(c);
    s_fake_stop();
    req = s_got(1);
    assert_string_equal(s_field(req, "op"), "revoke");
    assert_string_equal(s_field(req, "delete_bucket"), "true");
    assert_false(json_object_object_get_ex(req, "force_delete_secret", NULL));
    json_object_put(req);
    req = s_got(2);
    assert_string_equal(s_field(req, "op"), "metrics");
    json_object_put(req);
}

struct raw_log {
    int lines;
    char last[256];
};

static void on_raw(void *ctx, const char *line, size_t len)
{
    struct raw_log *log = ctx;

    log->lines++;
    snprintf(log->last, sizeof(log->last), "%.*s", (int)len, line);
}

static void test_raw_call(void **state)
{
    static const char *const replies[] = {
        "{\"v\":1,\"id\":%ID%,\"event\":\"progress\",\"tenant\":\"a\",\"step\":\"s\","
        "\"state\":\"done\"}\n"
        "{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"tenants\":[{\"tenant\":\"a\","
        "\"state\":\"ready\"}]}}\n"};
    struct kb_client_request req = {.op = "provision", .tenant = "a"};
    struct raw_log log = {0};
    struct kb_client *c;
    char *json = NULL;

    s_fake_start(replies, 1, false);
    c = s_connect();
    req.op = "watch";
    assert_int_equal(kb_client_call(c, &req, on_raw, &log, &json), -EINVAL);
    req.op = "nope";
    assert_int_equal(kb_client_call(c, &req, on_raw, &log, &json), -EINVAL);
    req.op = "provision";
    assert_int_equal(kb_client_call(c, &req, on_raw, &log, &json), 0);
    assert_string_equal(json, "{\"tenants\":[{\"tenant\":\"a\",\"state\":\"ready\"}]}");
    assert_int_equal(log.lines, 1);
    assert_non_null(strstr(log.last, "\"event\":\"progress\""));
    assert_null(strchr(log.last, '\n'));
    free(json);
    kb_client_close(c);
}

/* -- watch ------------------------------------------------------------------------------------ */

static void test_watch_receives_two_events(void **state)
{
    static const char *const replies[] = {
        "{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"watching\":[\"a\",\"b\"]}}\n"
        "{\"v\":1,\"event\":\"rotated\",\"tenant\":\"a\",\"arn\":\"arn:aws:secretsmanager:"
        "us-east-1:1:secret:kb/a\",\"version_id\":\"v2\",\"ts\":\"2024-05-01T12:00:00Z\"}\n\x01"
        "{\"v\":1,\"event\":\"provi\x01sioned\",\"tenant\":\"b\",\"arn\":\"arn:b\","
        "\"version_id\":\"v1\",\"ts\":\"2024-05-01T12:00:01Z\"}\n\x02"};
    static const char *const names[] = {"a", "b"};
    struct kb_client_event ev;
    struct kb_client_list *l = NULL;
    struct kb_client *c;
    struct json_object *req, *arr;

    s_fake_start(replies, 1, true);
    c = s_connect();
    assert_int_equal(kb_client_watch_start(c, names, 2), 0);
    assert_int_equal(kb_client_watch_next(c, 5000, &ev), 0);
    assert_int_equal(ev.kind, KB_CLIENT_EVENT_ROTATED);
    assert_string_equal(ev.event, "rotated");
    assert_string_equal(ev.tenant, "a");
    assert_string_equal(ev.arn, "arn:aws:secretsmanager:us-east-1:1:secret:kb/a");
    assert_string_equal(ev.version_id, "v2");
    assert_string_equal(ev.ts, "2024-05-01T12:00:00Z");
    /* the second event arrives in pieces */
    assert_int_equal(kb_client_watch_next(c, 5000, &ev), 0);
    assert_int_equal(ev.kind, KB_CLIENT_EVENT_PROVISIONED);
    assert_string_equal(ev.tenant, "b");
    /* a subscription carries nothing else */
    assert_int_equal(kb_client_list(c, &l), -EBUSY);
    /* nothing more for a while: a timeout, and the subscription stays usable */
    assert_int_equal(kb_client_watch_next(c, 100, &ev), -ETIMEDOUT);
    assert_int_equal(kb_client_watch_next(c, 5000, &ev), KB_CLIENT_ECLOSED);
    kb_client_close(c);
    s_fake_stop();
    req = s_got(0);
    assert_string_equal(s_field(req, "op"), "watch");
    assert_true(json_object_object_get_ex(req, "tenants", &arr));
    assert_int_equal(json_object_array_length(arr), 2);
    json_object_put(req);
}

static void test_watch_refused(void **state)
{
    static const char *const replies[] = {
        "{\"v\":1,\"id\":%ID%,\"ok\":false,\"error\":{\"code\":\"forbidden\",\"message\":"
        "\"not permitted\"}}\n"};
    struct kb_client_event ev;
    struct kb_client *c;

    s_fake_start(replies, 1, false);
    c = s_connect();
    assert_int_equal(kb_client_watch_next(c, 10, &ev), -EINVAL);
    assert_int_equal(kb_client_watch_start(c, NULL, 0), KB_CLIENT_EREMOTE);
    assert_string_equal(kb_client_last_error(c)->code, "forbidden");
    assert_int_equal(kb_client_watch_next(c, 10, &ev), -EINVAL);
    kb_client_close(c);
}

/* The resuming watch: a dropped connection is reconnected and resubscribed with since the last
 * event; the broker's replay of an event already returned is skipped; reset and closed. */
static void test_watch_resumes_after_a_drop(void **state)
{
#define S_EPOCH "\"epoch\":\"00000000000000aa\""
    static const char *const replies[] = {
        "{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"watching\":[\"a\"]," S_EPOCH
        ",\"seq\":5}}\n"
        "{\"v\":1,\"event\":\"rotated\"," S_EPOCH ",\"seq\":6,\"tenant\":\"a\",\"arn\":\"arn:a\","
        "\"version_id\":\"v2\",\"ts\":\"2024-05-01T12:00:00Z\",\"message\":\"v1\"}\n"
        "{\"v\":1,\"event\":\"key_deactivated\"," S_EPOCH ",\"seq\":7,\"tenant\":\"a\","
        "\"arn\":\"arn:a\",\"version_id\":\"v1\",\"ts\":null}\n\x03",
        "{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"watching\":[\"a\"]," S_EPOCH
        ",\"seq\":9}}\n"
        "{\"v\":1,\"event\":\"key_deactivated\"," S_EPOCH ",\"seq\":7,\"tenant\":\"a\","
        "\"arn\":\"arn:a\",\"version_id\":\"v1\",\"ts\":null}\n"
        "{\"v\":1,\"event\":\"key_deleted\"," S_EPOCH ",\"seq\":9,\"tenant\":\"a\","
        "\"arn\":\"arn:a\",\"version_id\":\"v1\",\"ts\":null}\n"
        "{\"v\":1,\"event\":\"reset\",\"epoch\":\"00000000000000bb\",\"seq\":3,\"reason\":"
        "\"epoch\","
        "\"tenants\":[{\"tenant\":\"a\",\"arn\":\"arn:a\",\"version_id\":\"v2\","
        "\"state\":\"ready\"}]}\n"
        "{\"v\":1,\"event\":\"closed\",\"reason\":\"access to tenant a was withdrawn\"}\n\x03"};
#undef S_EPOCH
    static const char *const names[] = {"a"};
    struct kb_client_watch_options opt = {
        .size = sizeof(opt), .tenants = names, .count = 1, .retry_initial_ms = 10};
    struct kb_client_watch_event ev = {.size = sizeof(ev)};
    struct kb_client_watch *w = NULL;
    struct json_object *req, *since = NULL;

    s_fake_start_conns(replies, 2, false, 2);
    opt.path = s_fake.path;
    assert_int_equal(kb_client_watch_open(&opt, &w, NULL), 0);
    assert_int_equal(kb_client_watch_read(w, 5000, &ev), 0);
    assert_int_equal(ev.kind, KB_CLIENT_EVENT_ROTATED);
    assert_string_equal(ev.epoch, "00000000000000aa");
    assert_int_equal(ev.seq, 6);
    assert_string_equal(ev.message, "v1");
    assert_int_equal(kb_client_watch_read(w, 5000, &ev), 0);
    assert_int_equal(ev.kind, KB_CLIENT_EVENT_KEY_DEACTIVATED);
    assert_int_equal(ev.seq, 7);
    assert_int_equal(ev.reconnects, 0);
    /* the broker hung up: reconnected; seq 7 again is skipped, 9 comes (8 was not ours) */
    assert_int_equal(kb_client_watch_read(w, 5000, &ev), 0);
    assert_int_equal(ev.kind, KB_CLIENT_EVENT_KEY_DELETED);
    assert_int_equal(ev.seq, 9);
    assert_int_equal(ev.reconnects, 1);
    assert_int_equal(kb_client_watch_read(w, 5000, &ev), 0);
    assert_int_equal(ev.kind, KB_CLIENT_EVENT_RESET);
    assert_string_equal(ev.reason, "epoch");
    assert_string_equal(ev.epoch, "00000000000000bb");
    assert_int_equal(ev.count, 1);
    assert_string_equal(ev.tenants[0].tenant, "a");
    assert_string_equal(ev.tenants[0].version_id, "v2");
    assert_string_equal(ev.tenants[0].state, "ready");
    assert_int_equal(kb_client_watch_read(w, 5000, &ev), 0);
    assert_int_equal(ev.kind, KB_CLIENT_EVENT_CLOSED);
    assert_string_equal(ev.reason, "access to tenant a was withdrawn");
    /* final: no reconnect */
    assert_int_equal(kb_client_watch_read(w, 100, &ev), KB_CLIENT_ECLOSED);
    kb_client_watch_close(w);
    s_fake_stop();
    assert_int_equal(s_fake.ngot, 2);
    req = s_got(0);
    assert_false(json_object_object_get_ex(req, "since", &since));
    json_object_put(req);
    req = s_got(1);
    assert_true(json_object_object_get_ex(req, "since", &since));
    assert_string_equal(s_field(since, "epoch"), "00000000000000aa");
    assert_int_equal(json_object_get_int64(json_object_object_get(since, "seq")), 7);
    json_object_put(req);
}

/* A broker that is gone for good: the read gives up after give_up_ms with the connect error. */
static void test_watch_gives_up(void **state)
{
    static const char *const replies[] = {
        "{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"watching\":[],"
        "\"epoch\":\"00000000000000aa\",\"seq\":0}}\n\x03"};
    struct kb_client_watch_options opt = {
        .size = sizeof(opt), .retry_initial_ms = 10, .retry_max_ms = 40, .give_up_ms = 300};
    struct kb_client_watch_event ev = {.size = sizeof(ev)};
    struct kb_client_watch *w = NULL;
    int64_t t0;
    int rc;

    s_fake_start(replies, 1, false);
    opt.path = s_fake.path;
    assert_int_equal(kb_client_watch_open(&opt, &w, NULL), 0);
    s_fake_stop(); /* nobody listens any more */
    t0 = s_ms();
    rc = kb_client_watch_read(w, 5000, &ev);
    assert_true(rc == -ENOENT || rc == -ECONNREFUSED);
    assert_true(s_ms() - t0 >= 250);
    assert_true(s_ms() - t0 < 3000);
    kb_client_watch_close(w);
}

/* -- who serves the socket -------------------------------------------------------------------- */

static void test_server_uid_parse(void **state)
{
    static const char *const bad[] = {
        "",    "4294967295",           "99999999999999999999", "-1", "+1", " 1", "1 ", "0x10",
        "1e3", "kb-no-such-user-5d1f", "12abc-no-such-user"};
    uint32_t uid = 7;

    assert_int_equal(kb_client_server_uid_parse("0", &uid), 0);
    assert_int_equal(uid, 0);
    assert_int_equal(kb_client_server_uid_parse("1234", &uid), 0);
    assert_int_equal(uid, 1234);
    assert_int_equal(kb_client_server_uid_parse("0001234", &uid), 0);
    assert_int_equal(uid, 1234);
    assert_int_equal(kb_client_server_uid_parse("4294967294", &uid), 0);
    assert_int_equal(uid, 4294967294u);
    assert_int_equal(kb_client_server_uid_parse("root", &uid), 0); /* a user name */
    assert_int_equal(uid, 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uid = 7;
        assert_int_equal(kb_client_server_uid_parse(bad[i], &uid), -EINVAL);
        assert_int_equal(uid, 7);
    }
    assert_int_equal(kb_client_server_uid_parse(NULL, &uid), -EINVAL);
    assert_int_equal(kb_client_server_uid_parse("1", NULL), -EINVAL);
}

/* The accepted set: root, the caller's own uid, the configured broker user; nothing else. uids
 * from 1000 up, so that a "keybroker" system user (uid below 1000) cannot change an answer. */
static void test_server_uid_accepted_and_refused(void **state)
{
    char why[512] = "";

    unsetenv(KB_CLIENT_SERVER_UID_ENV);
    assert_int_equal(kb_client_server_trusted(0, 1000, NULL, why, sizeof(why)), 0);
    assert_int_equal(kb_client_server_trusted(1000, 1000, NULL, why, sizeof(why)), 0);
    assert_int_equal(kb_client_server_trusted(0, 0, NULL, why, sizeof(why)), 0);
    assert_int_equal(kb_client_server_trusted(1234, 1000, NULL, why, sizeof(why)), KB_CLIENT_EPEER);
    assert_non_null(strstr(why, "served by uid 1234"));
    assert_non_null(strstr(why, "KEYBROKER_SERVER_UID=1234"));
    /* root trusts root, not everybody */
    assert_int_equal(kb_client_server_trusted(1000, 0, NULL, NULL, 0), KB_CLIENT_EPEER);
    assert_int_equal(kb_client_server_trusted(4294967294u, 1000, NULL, NULL, 0), KB_CLIENT_EPEER);
    /* an explicit broker user */
    assert_int_equal(kb_client_server_trusted(1234, 1000, "1234", NULL, 0), 0);
    assert_int_equal(kb_client_server_trusted(0, 1000, "1234", NULL, 0), 0);
    assert_int_equal(kb_client_server_trusted(1000, 1000, "1234", NULL, 0), 0);
    assert_int_equal(kb_client_server_trusted(1235, 1000, "1234", NULL, 0), KB_CLIENT_EPEER);
    assert_int_equal(kb_client_server_trusted(1234, 1000, "root", NULL, 0), KB_CLIENT_EPEER);
    /* "" is no broker user at all */
    assert_int_equal(kb_client_server_trusted(1234, 1000, "", NULL, 0), KB_CLIENT_EPEER);
    assert_int_equal(kb_client_server_trusted(0, 1000, "", NULL, 0), 0);
}

static void test_server_uid_from_environment(void **state)
{
    char why[512] = "";

    setenv(KB_CLIENT_SERVER_UID_ENV, "1234", 1);
    assert_int_equal(kb_client_server_trusted(1234, 1000, NULL, why, sizeof(why)), 0);
    assert_int_equal(kb_client_server_trusted(1235, 1000, NULL, why, sizeof(why)), KB_CLIENT_EPEER);
    /* an explicit setting replaces the environment's, "" included */
    assert_int_equal(kb_client_server_trusted(1234, 1000, "5678", NULL, 0), KB_CLIENT_EPEER);
    assert_int_equal(kb_client_server_trusted(5678, 1000, "5678", NULL, 0), 0);
    assert_int_equal(kb_client_server_trusted(1234, 1000, "", NULL, 0), KB_CLIENT_EPEER);
    /* empty: unset */
    setenv(KB_CLIENT_SERVER_UID_ENV, "", 1);
    assert_int_equal(kb_client_server_trusted(0, 1000, NULL, NULL, 0), 0);
    assert_int_equal(kb_client_server_trusted(1234, 1000, NULL, NULL, 0), KB_CLIENT_EPEER);
    /* by name */
    setenv(KB_CLIENT_SERVER_UID_ENV, "root", 1);
    assert_int_equal(kb_client_server_trusted(0, 1000, NULL, NULL, 0), 0);
    /* malformed: an error, even where the answer would not depend on it */
    static const char *const bad[] = {"abc-no-such-user-5d1f", "-1", "4294967295", " 1234", "12x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv(KB_CLIENT_SERVER_UID_ENV, bad[i], 1);
        why[0] = '\0';
        assert_int_equal(kb_client_server_trusted(0, 0, NULL, why, sizeof(why)), -EINVAL);
        assert_int_equal(kb_client_server_trusted(1000, 1000, NULL, NULL, 0), -EINVAL);
        assert_non_null(strstr(why, KB_CLIENT_SERVER_UID_ENV "="));
        assert_non_null(strstr(why, bad[i]));
    }
    /* a malformed explicit setting too, and then the environment is not consulted */
    setenv(KB_CLIENT_SERVER_UID_ENV, "1234", 1);
    assert_int_equal(kb_client_server_trusted(0, 0, "nope-no-such-user", why, sizeof(why)),
                     -EINVAL);
    assert_non_null(strstr(why, "nope-no-such-user"));
    unsetenv(KB_CLIENT_SERVER_UID_ENV);
}

/* The fake broker runs as this process's uid: accepted, and the peer uid is reported. A
 * malformed setting fails the connect before anything is sent. */
static void test_connect_reports_peer_and_checks_setting(void **state)
{
    static const char *const replies[] = {
        "{\"v\":1,\"id\":%ID%,\"ok\":true,\"result\":{\"tenants\":[]}}\n"};
    struct kb_client_error err;
    uint32_t peer = 7;
    struct kb_client_options opt = {
        .size = sizeof(opt), .timeout_ms = 5000, .peer_uid = &peer, .error = &err};
    struct kb_client_list *l = NULL;
    struct kb_client *c = NULL;

    unsetenv(KB_CLIENT_SERVER_UID_ENV);
    s_fake_start(replies, 1, false);
    assert_int_equal(kb_client_connect_opts(s_fake.path, &opt, &c), 0);
    assert_int_equal(peer, (uint32_t)geteuid());
    assert_int_equal(kb_client_list(c, &l), 0);
    kb_client_list_free(l);
    kb_client_close(c);
    setenv(KB_CLIENT_SERVER_UID_ENV, "not-a-user-5d1f", 1);
    assert_int_equal(kb_client_connect(s_fake.path, 5000, &c), -EINVAL);
    assert_null(c);
    assert_int_equal(kb_client_connect_opts(s_fake.path, &opt, &c), -EINVAL);
    assert_int_equal(err.err, -EINVAL);
    assert_non_null(strstr(err.message, "KEYBROKER_SERVER_UID=not-a-user-5d1f"));
    opt.server_uid = "0"; /* an explicit setting wins over the malformed environment */
    assert_int_equal(kb_client_connect_opts(s_fake.path, &opt, &c), 0);
    kb_client_close(c);
    unsetenv(KB_CLIENT_SERVER_UID_ENV);
    /* an older caller's smaller struct: only size and timeout_ms */
    opt.size = offsetof(struct kb_client_options, server_uid);
    opt.server_uid = "not-a-user-5d1f"; /* beyond its size: not read */
    assert_int_equal(kb_client_connect_opts(s_fake.path, &opt, &c), 0);
    kb_client_close(c);
    opt.size = 0;
    assert_int_equal(kb_client_connect_opts(s_fake.path, &opt, &c), -EINVAL);
    /* a failed connect names the path */
    opt.size = sizeof(opt);
    opt.server_uid = NULL;
    assert_int_equal(kb_client_connect_opts("/nonexistent/kb.sock", &opt, &c), -ENOENT);
    assert_non_null(strstr(err.message, "/nonexistent/kb.sock"));
    s_fake_stop();
    assert_int_equal(s_fake.ngot, 1);
}

/*
 * A socket served by another uid (root only: a child listens after setresuid; SO_PEERCRED names
 * whoever called listen) is refused before a byte is sent, and accepted once that uid is the
 * configured broker user.
 */
static void test_connect_refuses_other_uid(void **state)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char dir[] = "/tmp/kbclient.XXXXXX", path[128], ready;
    struct kb_client_error err;
    uint32_t peer = 0;
    struct kb_client_options opt = {
        .size = sizeof(opt), .timeout_ms = 5000, .peer_uid = &peer, .error = &err};
    struct kb_client *c = NULL;
    int lfd, sync[2], status = 0;
    pid_t pid;

    if (geteuid() != 0)
        skip();
    unsetenv(KB_CLIENT_SERVER_UID_ENV);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/other.sock", dir);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(lfd >= 0);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(pipe(sync), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* uid 4321 accepts two connections and exits with the bytes read on both */
        size_t got = 0;
        char buf[256];
        ssize_t n;

        if (setresgid(4321, 4321, 4321) != 0 || setresuid(4321, 4321, 4321) != 0 ||
            listen(lfd, 4) != 0)
            _exit(100);
        (void)!write(sync[1], "r", 1);
        for (int i = 0; i < 2; i++) {
            int fd = accept(lfd, NULL, NULL);

            while (fd >= 0 && (n = recv(fd, buf, sizeof(buf), 0)) > 0)
                got += (size_t)n;
            if (fd >= 0)
                close(fd);
        }
        _exit(got > 99 ? 99 : (int)got);
    }
    close(sync[1]);
    assert_int_equal(read(sync[0], &ready, 1), 1);
    close(sync[0]);
    assert_int_equal(kb_client_connect_opts(path, &opt, &c), KB_CLIENT_EPEER);
    assert_null(c);
    assert_int_equal(peer, 4321);
    assert_int_equal(err.err, KB_CLIENT_EPEER);
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, "served by uid 4321"));
    assert_int_equal(kb_client_connect(path, 5000, &c), KB_CLIENT_EPEER); /* the plain call too */
    assert_null(c);
    /* the two refused connections are the child's two; run it again for the accepted one */
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0); /* nothing was sent to the stranger */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd;

        if (setresgid(4321, 4321, 4321) != 0 || setresuid(4321, 4321, 4321) != 0)
            _exit(100);
        fd = accept(lfd, NULL, NULL); /* still listening: listen() ran in the first child */
        if (fd >= 0)
            close(fd);
        _exit(fd >= 0 ? 0 : 101);
    }
    opt.server_uid = "4321";
    assert_int_equal(kb_client_connect_opts(path, &opt, &c), 0);
    kb_client_close(c);
    setenv(KB_CLIENT_SERVER_UID_ENV, "4321", 1);
    assert_int_equal(kb_client_connect(path, 5000, &c), 0); /* queued in the backlog */
    kb_client_close(c);
    unsetenv(KB_CLIENT_SERVER_UID_ENV);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(lfd);
    unlink(path);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get, NULL, s_teardown),
        cmocka_unit_test_setup_teardown(test_get_nulls_and_missing_fields, NULL, s_teardown),
        cmocka_unit_test_setup_teardown(test_list_and_status, NULL, s_teardown),
        cmocka_unit_test_setup_teardown(test_server_error_maps_to_code_and_message, NULL,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_timeout_when_server_never_answers, NULL, s_teardown),
        cmocka_unit_test_setup_teardown(test_connect_failures, NULL, s_teardown),
        cmocka_unit_test_setup_teardown(test_env_socket_honoured, NULL, s_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_replies, NULL, s_teardown),
        cmocka_unit_test_setup_teardown(test_server_hangs_up, NULL, s_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_tenant_sends_nothing, NULL, s_teardown),
        cmocka_unit_test_setup_teardown(test_provision_streams_progress, NULL, s_teardown),
        cmocka_unit_test_setup_teardown(test_rotate_revoke_metrics, NULL, s_teardown),
        cmocka_unit_test_setup_teardown(test_raw_call, NULL, s_teardown),
        cmocka_unit_test_setup_teardown(test_watch_receives_two_events, NULL, s_teardown),
        cmocka_unit_test_setup_teardown(test_watch_refused, NULL, s_teardown),
        cmocka_unit_test_setup_teardown(test_watch_resumes_after_a_drop, NULL, s_teardown),
        cmocka_unit_test_setup_teardown(test_watch_gives_up, NULL, s_teardown),
        cmocka_unit_test(test_server_uid_parse),
        cmocka_unit_test(test_server_uid_accepted_and_refused),
        cmocka_unit_test(test_server_uid_from_environment),
        cmocka_unit_test_setup_teardown(test_connect_reports_peer_and_checks_setting, NULL,
                                        s_teardown),
        cmocka_unit_test(test_connect_refuses_other_uid),
    };
    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
