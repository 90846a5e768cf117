/*
 * test_writer.c - the audit writer (broker/audit/writer.c, writer_work.c) on a real loop and real
 * files in a temporary directory: order and numbering, the backlog and audit_lost while writing
 * fails, fail_closed admission and recovery, epoch seals and the evolving key in the state file,
 * and the refusals at open.
 */
#include "kb_test.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "audit/audit.h"
#include "audit/chain.h"
#include "audit/state.h"
#include "common/err.h"
#include "common/secret.h"
#include "config/config.h"
#include "events/events.h"

struct fixture {
    char dir[64];
    char path[128];
    char state[128];
    uv_loop_t loop;
    struct kb_events *bus;
    struct kb_config_audit cfg;
    struct kb_audit *a;
    bool closed;
};

static struct fixture F;

static int setup(void **state)
{
    memset(&F, 0, sizeof(F));
    snprintf(F.dir, sizeof(F.dir), "/tmp/kb-writer-XXXXXX");
    assert_non_null(mkdtemp(F.dir));
    snprintf(F.path, sizeof(F.path), "%s/audit.log", F.dir);
    snprintf(F.state, sizeof(F.state), "%s/audit.state", F.dir);
    assert_int_equal(uv_loop_init(&F.loop), 0);
    assert_int_equal(kb_events_new(&F.bus), 0);
    F.cfg = (struct kb_config_audit){.path = F.path,
                                     .state = F.state,
                                     .hmac = false,
                                     .epoch = 3600,
                                     .fsync = KB_CONFIG_FSYNC_INTERVAL,
                                     .fsync_interval = 1,
                                     .fail_closed = true,
                                     .max_backlog = 1000};
    (void)state;
    return 0;
}

static int teardown(void **state)
{
    char cmd[160];

    (void)state;
    uv_run(&F.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&F.loop), 0);
    kb_events_destroy(F.bus);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s.moved'", F.dir, F.dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until pred() holds or ms pass. */
static bool s_run_until(bool (*pred)(void), uint64_t ms)
{
    uv_timer_t t;
    uint64_t end = uv_now(&F.loop) + ms;
    bool ok;

    uv_timer_init(&F.loop, &t);
    uv_timer_start(&t, on_tick, 10, 10);
    while (!(ok = pred()) && uv_now(&F.loop) < end)
        uv_run(&F.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&F.loop, UV_RUN_NOWAIT);
    return ok;
}

static struct kb_audit_stats s_stats(void)
{
    struct kb_audit_stats st;

    kb_audit_stats(F.a, &st);
    return st;
}

static bool s_idle(void)
{
    struct kb_audit_stats st = s_stats();

    return st.queued == 0 && !st.failing && st.written > 0;
}

static bool s_failing(void)
{
    return s_stats().failing;
}

static void on_closed(void *ctx)
{
    (void)ctx;
    F.closed = true;
}

static bool s_closed(void)
{
    return F.closed;
}

static void s_open(void)
{
    char why[512] = "";
    int rc = kb_audit_open(&F.loop, &F.cfg, F.bus, NULL, &F.a, why, sizeof(why));

    if (rc != 0)
        fail_msg("kb_audit_open: %s", why);
}

static void s_close(void)
{
    kb_audit_close(F.a, on_closed, NULL);
    F.a = NULL;
    assert_true(s_run_until(s_closed, 5000));
}

static void s_emit_authz(unsigned uid)
{
    struct kb_event_peer peer = {uid, uid, 4242};
    struct kb_event ev = {
        .kind = KB_EVENT_AUTHZ, .tenant = "alpha", .op = "get", .result = "allow", .peer = &peer};

    kb_events_emit(F.bus, &ev);
}

/* Every line of path parsed (body only), with the checks every line must pass: seq grows by 1,
 * h recomputes. Caller frees each with json_object_put and the array with free. */
static struct json_object **s_read(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    struct json_object **out = NULL;
    uint8_t prev[KB_AUDIT_HASH_LEN] = {0};
    int64_t seq = 0;

    assert_non_null(f);
    *n = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        struct kb_audit_line_parts p;
        char *body;

        assert_int_equal(line[len - 1], '\n');
        assert_int_equal(kb_audit_split_line(line, (size_t)len - 1, &p), 0);
        body = malloc(p.body_len + 2);
        assert_non_null(body);
        memcpy(body, line, p.body_len);
        memcpy(body + p.body_len, "}", 2);
        out = realloc(out, (*n + 1) * sizeof(*out));
        assert_non_null(out);
        out[*n] = json_tokener_parse(body);
        free(body);
        assert_non_null(out[*n]);
        if (*n == 0) {
            struct json_object *ph;

            /* a file that continues a chain starts from its audit_open's prev_h */
            if (json_object_object_get_ex(out[0], "prev_h", &ph))
                assert_int_equal(kb_audit_unhex(json_object_get_string(ph), 64, prev, 32), 0);
        }
        assert_int_equal(kb_audit_check_link(prev, line, &p), 1);
        memcpy(prev, p.h, sizeof(prev));
        {
            struct json_object *s;

            assert_true(json_object_object_get_ex(out[*n], "seq", &s));
            if (seq != 0)
                assert_int_equal(json_object_get_int64(s), seq + 1);
            seq = json_object_get_int64(s);
        }
        (*n)++;
    }
    free(line);
    fclose(f);
    return out;
}

static const char *s_field(struct json_object *o, const char *key)
{
    struct json_object *v;

    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static void s_free_lines(struct json_object **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_object_put(l[i]);
    free(l);
}

/* -- cases ------------------------------------------------------------------------------------- */

static void test_records_in_order(void **state)
{
    struct json_object **l;
    size_t n;
    struct stat st;

    (void)state;
    s_open();
    for (unsigned i = 0; i < 100; i++)
        s_emit_authz(1000 + i);
    assert_true(s_run_until(s_idle, 5000));
    s_close();
    l = s_read(F.path, &n);
    assert_int_equal(n, 102); /* audit_open, 100 authz, stop */
    assert_string_equal(s_field(l[0], "event"), "audit_open");
    assert_string_equal(s_field(l[0], "reason"), "start");
    assert_string_equal(s_field(l[0], "chain"), "sha256");
    for (size_t i = 1; i <= 100; i++) {
        struct json_object *peer, *uid;

        assert_string_equal(s_field(l[i], "event"), "authz");
        assert_true(json_object_object_get_ex(l[i], "peer", &peer));
        assert_true(json_object_object_get_ex(peer, "uid", &uid));
        assert_int_equal(json_object_get_int(uid), 1000 + (int)i - 1);
    }
    assert_string_equal(s_field(l[101], "event"), "stop");
    s_free_lines(l, n);
    assert_int_equal(stat(F.path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(F.state, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_backlog_fail_closed_recovery(void **state)
{
    char moved[96], why[512];
    struct json_object **l;
    struct kb_audit_stats st;
    size_t n, lost_at = 0;
    int fd;

    (void)state;
    s_open();
    s_emit_authz(1);
    assert_true(s_run_until(s_idle, 5000));
    assert_int_equal(kb_audit_admit(F.a, KB_AUDIT_GATE_REQUEST, why, sizeof(why)), 0);
    /* The path becomes unopenable; the reopen fails, and so does every retry. */
    snprintf(moved, sizeof(moved), "%s.moved", F.dir);
    assert_int_equal(rename(F.dir, moved), 0);
    fd = open(F.dir, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    kb_audit_reopen(F.a);
    assert_true(s_run_until(s_failing, 5000));
    assert_int_equal(kb_audit_admit(F.a, KB_AUDIT_GATE_REQUEST, why, sizeof(why)), KB_EDENIED);
    assert_non_null(strstr(why, "fail_closed"));
    assert_non_null(strstr(why, F.path));
    for (unsigned i = 0; i < 1500; i++)
        s_emit_authz(2000 + i);
    st = s_stats();
    assert_int_equal(st.queued, 1000);
    assert_int_equal(st.lost, 500); /* of the 1500 records made while failing, 1000 are kept */
    assert_int_equal(unlink(F.dir), 0);
    assert_int_equal(rename(moved, F.dir), 0);
    assert_true(s_run_until(s_idle, 5000));
    assert_int_equal(kb_audit_admit(F.a, KB_AUDIT_GATE_REQUEST, why, sizeof(why)), 0);
    s_close();
    l = s_read(F.path, &n);
    /* open, 1 authz, the reopen's audit_open, the 1000 kept authz, audit_lost, stop */
    for (size_t i = 0; i < n; i++)
        if (strcmp(s_field(l[i], "event"), "audit_lost") == 0)
            lost_at = i;
    assert_true(lost_at > 0);
    {
        struct json_object *c;

        assert_true(json_object_object_get_ex(l[lost_at], "count", &c));
        assert_int_equal(json_object_get_int64(c), 500);
    }
    assert_string_equal(s_field(l[2], "event"), "audit_open");
    assert_string_equal(s_field(l[2], "reason"), "reopen");
    assert_string_equal(s_field(l[n - 1], "event"), "stop");
    assert_int_equal(n, 2 + 1 + 1000 + 1 + 1);
    assert_int_equal(lost_at, n - 2);
    s_free_lines(l, n);
}

static void s_write_state(const uint8_t k0[32])
{
    struct kb_audit_state st;
    struct kb_secret *text;
    const char *p;
    size_t len;
    int fd;

    assert_int_equal(kb_audit_state_init(&st, KB_AUDIT_MODE_HMAC, k0, 0), 0);
    assert_int_equal(kb_audit_state_format(&st, &text), 0);
    fd = open(F.state, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    p = kb_secret_open(text, &len);
    assert_int_equal(write(fd, p, len), (ssize_t)len);
    kb_secret_close(text);
    close(fd);
    kb_secret_destroy(text);
    kb_audit_state_cleanup(&st);
}

static bool s_two_seals(void)
{
    return s_stats().epoch >= 2;
}

static void test_epochs_sealed_state_key(void **state)
{
    uint8_t k0[32], key[32];
    struct json_object **l;
    struct kb_audit_state st;
    char text[4096], why[256];
    size_t n, seals = 0;
    ssize_t got;
    int fd;

    (void)state;
    randombytes_buf(k0, sizeof(k0));
    s_write_state(k0);
    F.cfg.hmac = true;
    F.cfg.epoch = 1;
    s_open();
    /* Nothing happens: the epochs are sealed all the same. */
    assert_true(s_run_until(s_two_seals, 5000));
    s_close();
    fd = open(F.state, O_RDONLY);
    assert_true(fd >= 0);
    got = read(fd, text, sizeof(text));
    close(fd);
    assert_true(got > 0);
    assert_int_equal(kb_audit_state_parse(text, (size_t)got, &st, why, sizeof(why)), 0);
    assert_true(st.epoch >= 2);
    memcpy(key, k0, sizeof(key));
    for (uint64_t e = 1; e <= st.epoch; e++)
        assert_int_equal(kb_audit_key_next(key, e, key), 0);
    assert_int_equal(kb_secret_equals(st.key, key, sizeof(key)), 1);
    assert_int_equal(kb_secret_equals(st.key, k0, sizeof(k0)), 0);
    kb_audit_state_cleanup(&st);
    /* Each line's tag verifies under the key of its epoch, derived from K_0. */
    l = s_read(F.path, &n);
    {
        FILE *f = fopen(F.path, "rb");
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        uint64_t epoch = 0;

        memcpy(key, k0, sizeof(key));
        for (size_t i = 0; i < n && (len = getline(&line, &cap, f)) > 0; i++) {
            struct kb_audit_line_parts p;
            struct json_object *e;

            assert_true(json_object_object_get_ex(l[i], "epoch", &e));
            while (epoch < (uint64_t)json_object_get_int64(e))
                assert_int_equal(kb_audit_key_next(key, ++epoch, key), 0);
            assert_int_equal(kb_audit_split_line(line, (size_t)len - 1, &p), 0);
            assert_int_equal(p.mode, KB_AUDIT_MODE_HMAC);
            assert_int_equal(kb_audit_check_tag(key, p.h, p.tag), 1);
            seals += strcmp(s_field(l[i], "event"), "seal") == 0;
        }
        free(line);
        fclose(f);
    }
    assert_true(seals >= 2);
    s_free_lines(l, n);
}

static void test_open_refusals(void **state)
{
    char why[512] = "";
    uint8_t k0[32] = {1};

    (void)state;
    F.cfg.hmac = true;
    assert_int_not_equal(kb_audit_open(&F.loop, &F.cfg, F.bus, NULL, &F.a, why, sizeof(why)), 0);
    assert_non_null(strstr(why, "kbctl audit init"));
    assert_null(F.a);
    s_write_state(k0);
    assert_int_equal(chmod(F.state, 0640), 0);
    assert_int_not_equal(kb_audit_open(&F.loop, &F.cfg, F.bus, NULL, &F.a, why, sizeof(why)), 0);
    assert_non_null(strstr(why, "readable by nobody else"));
    assert_null(F.a);
    F.cfg.hmac = false;
    assert_int_equal(chmod(F.state, 0600), 0);
    assert_int_not_equal(kb_audit_open(&F.loop, &F.cfg, F.bus, NULL, &F.a, why, sizeof(why)), 0);
    assert_non_null(strstr(why, "broker.audit.chain is \"sha256\""));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_records_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backlog_fail_closed_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epochs_sealed_state_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_refusals, setup, teardown),
    };

    if (sodium_init() < 0)
        return 1;
    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
