/* test_config.c - the config loader: every example file, every rule, and hostile input. */
#include "kb_test.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "common/err.h"
#include "config/policy.h"

#define S_CONFIGS KB_TEST_DATA "/configs"

/* A fake name service: alice=1000, bob=1001, staff=50, ops=51; "broken" fails the lookup. */
static int s_user(void *ctx, const char *name, uint32_t *uid)
{
    (*(int *)ctx)++;
    if (strcmp(name, "broken") == 0) {
        return KB_EAWS;
    }
    if (strcmp(name, "alice") == 0 || strcmp(name, "bob") == 0) {
        *uid = name[0] == 'a' ? 1000 : 1001;
        return 0;
    }
    return KB_ENOTFOUND;
}

static int s_group(void *ctx, const char *name, uint32_t *gid)
{
    (*(int *)ctx)++;
    if (strcmp(name, "staff") == 0 || strcmp(name, "ops") == 0) {
        *gid = name[0] == 's' ? 50 : 51;
        return 0;
    }
    return KB_ENOTFOUND;
}

static int s_lookups;
static const struct kb_config_resolver s_fake = {s_user, s_group, &s_lookups};

/* Loads text with the fake resolver; expects success. */
static struct kb_config *s_load_ok(const char *text)
{
    struct kb_config *cfg = NULL;
    struct kb_config_errors *errors = NULL;
    int rc = kb_config_load_string(text, strlen(text), &s_fake, &cfg, &errors);

    for (size_t i = 0; errors != NULL && i < errors->count; i++) {
        print_message("unexpected: %s\n", errors->lines[i]);
    }
    assert_int_equal(rc, 0);
    assert_null(errors);
    assert_non_null(cfg);
    return cfg;
}

/* Loads text with the fake resolver; expects KB_ECONFIG. Caller frees the list. */
static struct kb_config_errors *s_load_bad(const char *text, size_t len)
{
    struct kb_config *cfg = NULL;
    struct kb_config_errors *errors = NULL;

    assert_int_equal(kb_config_load_string(text, len, &s_fake, &cfg, &errors), KB_ECONFIG);
    assert_null(cfg);
    assert_non_null(errors);
    assert_true(errors->count > 0);
    return errors;
}

static bool s_has_line(const struct kb_config_errors *e, const char *line)
{
    for (size_t i = 0; i < e->count; i++) {
        if (strcmp(e->lines[i], line) == 0) {
            return true;
        }
    }
    return false;
}

/* Expects text to fail with exactly the one error line `line`. */
static void s_expect_one(const char *text, const char *line)
{
    struct kb_config_errors *e = s_load_bad(text, strlen(text));

    if (e->count != 1 || strcmp(e->lines[0], line) != 0) {
        for (size_t i = 0; i < e->count; i++) {
            print_message("got: %s\n", e->lines[i]);
        }
        print_message("want: %s\n", line);
        fail();
    }
    kb_config_errors_destroy(e);
}

static char *s_path(const char *dir, const char *name, const char *ext)
{
    size_t n = strlen(dir) + strlen(name) + strlen(ext) + 2;
    char *p = malloc(n);

    assert_non_null(p);
    snprintf(p, n, "%s/%s%s", dir, name, ext);
    return p;
}

/* The sorted "*.json" base names of dir. Caller frees each and the array. */
static char **s_list_json(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    struct dirent *ent;
    char **names = NULL;
    size_t n = 0;

    assert_non_null(d);
    while ((ent = readdir(d)) != NULL) {
        size_t len = strlen(ent->d_name);
        if (len > 5 && strcmp(ent->d_name + len - 5, ".json") == 0) {
            names = realloc(names, (n + 1) * sizeof *names);
            assert_non_null(names);
            names[n] = strndup(ent->d_name, len - 5);
            assert_non_null(names[n++]);
        }
    }
    closedir(d);
    qsort(names, n, sizeof *names, (int (*)(const void *, const void *))strcmp);
    *count = n;
    return names;
}

/* Checks one invalid example: KB_ECONFIG with exactly the lines of its .expect file. */
static bool s_check_invalid(const char *dir, const char *name)
{
    char *json = s_path(dir, name, ".json");
    char *expect = s_path(dir, name, ".expect");
    FILE *f = fopen(expect, "r");
    struct kb_config *cfg = NULL;
    struct kb_config_errors *e = NULL;
    char *line = NULL;
    size_t cap = 0;
    size_t nexpect = 0;
    bool ok = f != NULL;
    ssize_t len;

    if (f == NULL) {
        print_message("%s: missing %s\n", name, expect);
    }
    ok = kb_config_load_file(json, NULL, &cfg, &e) == KB_ECONFIG && ok;
    while (f != NULL && e != NULL && (len = getline(&line, &cap, f)) > 0) {
        line[len - 1] = line[len - 1] == '\n' ? '\0' : line[len - 1];
        nexpect++;
        if (!s_has_line(e, line)) {
            print_message("%s: missing error line: %s\n", name, line);
            ok = false;
        }
    }
    if (e == NULL || e->count != nexpect) {
        print_message("%s: %zu error lines, expected %zu:\n", name, e ? e->count : 0, nexpect);
        for (size_t i = 0; e != NULL && i < e->count; i++) {
            print_message("    %s\n", e->lines[i]);
        }
        ok = false;
    }
    free(line);
    if (f != NULL) {
        fclose(f);
    }
    kb_config_destroy(cfg);
    kb_config_errors_destroy(e);
    free(json);
    free(expect);
    return ok && nexpect > 0;
}

static void test_data_invalid(void **state)
{
    size_t n = 0;
    size_t passed = 0;
    char **names = s_list_json(S_CONFIGS "/invalid", &n);

    for (size_t i = 0; i < n; i++) {
        passed += s_check_invalid(S_CONFIGS "/invalid", names[i]);
        free(names[i]);
    }
    free(names);
    print_message("invalid configs: %zu of %zu rejected with exactly the expected errors\n", passed,
                  n);
    assert_true(n >= 28);
    assert_int_equal(passed, n);
}

static void test_data_valid(void **state)
{
    size_t n = 0;
    size_t passed = 0;
    char **names = s_list_json(S_CONFIGS "/valid", &n);

    for (size_t i = 0; i < n; i++) {
        char *json = s_path(S_CONFIGS "/valid", names[i], ".json");
        struct kb_config *cfg = NULL;
        struct kb_config_errors *e = NULL;
        int rc = kb_config_load_file(json, NULL, &cfg, &e);
        bool ok = rc == 0 && cfg != NULL && e == NULL;
        for (size_t k = 0; e != NULL && k < e->count; k++) {
            print_message("%s: %s\n", names[i], e->lines[k]);
        }
        for (size_t t = 0; ok && t < cfg->ntenants; t++) {
            char *policy = NULL;
            ok = kb_policy_tenant(&cfg->tenants[t], kb_policy_partition(cfg->aws.region), &policy,
                                  NULL, 0) == 0;
            free(policy);
        }
        passed += ok;
        kb_config_destroy(cfg);
        kb_config_errors_destroy(e);
        free(json);
        free(names[i]);
    }
    free(names);
    print_message("valid configs: %zu of %zu loaded\n", passed, n);
    assert_true(n >= 3);
    assert_int_equal(passed, n);
}

static void test_full_config_values(void **state)
{
    struct kb_config *cfg = NULL;
    struct kb_config_errors *e = NULL;
    const struct kb_tenant *t;

    assert_int_equal(kb_config_load_file(S_CONFIGS "/valid/03-full.json", NULL, &cfg, &e), 0);
    assert_string_equal(cfg->broker.socket.path, "/run/keybroker/kb.sock");
    assert_int_equal(cfg->broker.socket.mode, 0640);
    assert_true(cfg->broker.socket.has_group);
    assert_int_equal(cfg->broker.socket.gid, 65534); /* nogroup on Debian */
    /* uids [0, 1] + daemon (1) -> {0, 1}; gids [4] + root (0) -> {0, 4} */
    assert_int_equal(cfg->broker.admin.nuids, 2);
    assert_int_equal(cfg->broker.admin.uids[0], 0);
    assert_int_equal(cfg->broker.admin.uids[1], 1);
    assert_int_equal(cfg->broker.admin.ngids, 2);
    assert_int_equal(cfg->broker.admin.gids[0], 0);
    assert_int_equal(cfg->broker.admin.gids[1], 4);
    assert_string_equal(cfg->broker.audit.path, "/var/log/keybroker/audit.log");
    assert_true(cfg->broker.audit.fail_closed);
    assert_string_equal(cfg->broker.audit.state, "/var/lib/keybroker/audit.state");
    assert_true(cfg->broker.audit.hmac);
    assert_int_equal(cfg->broker.audit.epoch, 600);
    assert_int_equal(cfg->broker.audit.fsync, KB_CONFIG_FSYNC_ALWAYS);
    assert_int_equal(cfg->broker.audit.fsync_interval, 2);
    assert_int_equal(cfg->broker.audit.max_backlog, 5000);
    assert_string_equal(cfg->broker.audit.anchor.bucket, "acme-audit-anchors");
    assert_string_equal(cfg->broker.audit.anchor.prefix, "host-a/");
    assert_int_equal(cfg->broker.audit.anchor.interval, 60);
    assert_int_equal(cfg->broker.audit.anchor.retention, 30 * 86400);
    assert_true(cfg->broker.audit.anchor.required);
    assert_int_equal(cfg->broker.audit.anchor.max_unanchored, 500);
    assert_int_equal(cfg->broker.nplugins, 3);
    assert_string_equal(cfg->broker.plugins[0].name, "exec");
    assert_int_equal(cfg->broker.plugins[0].type, KB_PLUGIN_EXEC);
    assert_int_equal(cfg->broker.plugins[0].argc, 2);
    assert_string_equal(cfg->broker.plugins[0].argv[1], "--tenant");
    assert_int_equal(cfg->broker.plugins[0].hooks, (1u << 1) | (1u << 4));
    assert_int_equal(cfg->broker.plugins[0].deadline, 30);
    assert_false(cfg->broker.plugins[0].required);
    assert_null(cfg->broker.plugins[0].config_json);
    assert_int_equal(cfg->broker.plugins[1].type, KB_PLUGIN_SHARED);
    assert_string_equal(cfg->broker.plugins[1].config_json,
                        "{\"url\":\"https://pager.example/hook\",\"retries\":3}");
    assert_int_equal(cfg->broker.plugins[1].hooks, 1u);
    assert_true(cfg->broker.plugins[1].required);
    assert_int_equal(cfg->broker.plugins[1].deadline, 10);
    assert_int_equal(cfg->broker.plugins[2].type, KB_PLUGIN_SYSLOG);
    assert_string_equal(cfg->broker.plugins[2].facility, "auth");
    assert_int_equal(cfg->broker.plugins[2].hooks, 0x1ffu); /* "*" and "audit" */
    assert_string_equal(cfg->broker.plugin_user, "daemon");
    assert_int_equal(cfg->broker.concurrency, 16);
    assert_int_equal(cfg->broker.log_level, KB_LOG_DEBUG);
    assert_int_equal(cfg->broker.limits.max_connections, 256);
    assert_int_equal(cfg->broker.limits.idle_timeout, 300);
    assert_int_equal(cfg->broker.limits.max_inflight_per_connection, 4);
    assert_int_equal(cfg->broker.limits.requests_per_second_per_uid, 50);
    assert_int_equal(cfg->broker.limits.max_connections_per_uid, 8);
    assert_int_equal(cfg->broker.limits.admin_reserved_connections, 4);
    assert_int_equal(cfg->broker.limits.request_timeout, 3);
    assert_int_equal(cfg->broker.limits.max_watches_per_uid, 2);
    assert_int_equal(cfg->broker.reconcile.interval, 7200);
    assert_int_equal(cfg->broker.reconcile.retry_initial, 2);
    assert_int_equal(cfg->broker.reconcile.retry_max, 60);
    assert_int_equal(cfg->broker.follow.interval, 90);

    assert_string_equal(cfg->aws.region, "us-east-1");
    assert_string_equal(cfg->aws.profile, "keybroker");
    assert_string_equal(cfg->aws.endpoint_url, "http://127.0.0.1:4566");
    assert_string_equal(cfg->aws.service_url[KB_AWS_IAM], "http://127.0.0.1:4567");
    assert_string_equal(cfg->aws.service_url[KB_AWS_S3], "http://127.0.0.1:4568/base");
    assert_non_null(cfg->aws.service_url[KB_AWS_SECRETSMANAGER]);
    assert_null(cfg->aws.service_url[KB_AWS_STS]);
    assert_true(cfg->aws.s3_force_path_style);
    assert_int_equal(cfg->aws.max_attempts, 5);
    assert_string_equal(cfg->aws.name_prefix, "acme-kb-");
    assert_string_equal(cfg->aws.iam_path, "/keybroker/prod/");
    assert_string_equal(cfg->aws.secret_prefix, "prod/keybroker/");
    assert_int_equal(cfg->aws.probe_timeout, 120);
    assert_int_equal(cfg->aws.orphan_key_min_age, 900);
    assert_int_equal(cfg->aws.recovery_window_days, 7);
    assert_int_equal(cfg->aws.overlap, 7200);
    assert_int_equal(cfg->aws.retire, 600);
    assert_int_equal(cfg->broker.limits.watch_ring_events, 64);
    assert_false(cfg->aws.deny_insecure_transport);
    assert_int_equal(cfg->aws.tags.count, 2);

    assert_int_equal(cfg->ntenants, 2);
    t = kb_config_tenant(cfg, "billing");
    assert_ptr_equal(t, &cfg->tenants[0]);
    assert_string_equal(t->user_name, "acme-kb-billing");
    assert_string_equal(t->secret_name, "prod/keybroker/billing");
    assert_string_equal(t->prefix, "invoices/");
    assert_int_equal(t->access, KB_ACCESS_READ_WRITE);
    assert_int_equal(t->rotate_every, 7 * 86400);
    assert_false(t->rotate);
    /* aws.tags {team, cost-center} overlaid by {Team, app}: Team replaces team in place. */
    assert_int_equal(t->tags.count, 3);
    assert_string_equal(t->tags.items[0].key, "Team");
    assert_string_equal(t->tags.items[0].value, "billing");
    assert_string_equal(t->tags.items[1].key, "cost-center");
    assert_string_equal(t->tags.items[2].key, "app");
    assert_true(kb_config_acl_match(&t->clients, 0, 12345, NULL, 0));            /* user root */
    assert_true(kb_config_acl_match(&t->clients, 1000, 12345, NULL, 0));         /* uid */
    assert_true(kb_config_acl_match(&t->clients, 7, 1000, NULL, 0));             /* gid */
    assert_true(kb_config_acl_match(&t->clients, 7, 8, (uint32_t[]){65534}, 1)); /* nogroup */
    assert_false(kb_config_acl_match(&t->clients, 7, 8, (uint32_t[]){9, 10}, 2));
    t = kb_config_tenant(cfg, "reports");
    assert_non_null(t);
    assert_int_equal(t->access, KB_ACCESS_CUSTOM);
    assert_int_equal(t->nactions, 3);
    assert_string_equal(t->actions[2], "s3:Get*Tagging");
    assert_int_equal(t->rotate_every, 0);
    assert_true(t->rotate);
    assert_null(kb_config_tenant(cfg, "Reports"));
    kb_config_destroy(cfg);
}

/* Every one of many tenants, listed in no particular order, is found by its exact name only. */
static void test_tenant_lookup_many(void **state)
{
    enum { N = 500 };
    size_t cap = N * 128 + 64, off = 0;
    char *text = malloc(cap);
    struct kb_config *cfg;
    char name[32];

    (void)state;
    assert_non_null(text);
    off += (size_t)snprintf(text + off, cap - off, "{\"tenants\": [");
    for (unsigned i = 0; i < N; i++) {
        /* a permutation of 0..N-1 (7 is prime to 500), so the file is not in name order */
        unsigned k = (i * 7u) % N;

        off += (size_t)snprintf(text + off, cap - off,
                                "%s{\"name\": \"t%u-x\", \"bucket\": \"bucket-%u\", "
                                "\"access\": \"read-only\"}",
                                i > 0 ? ", " : "", k, k);
    }
    snprintf(text + off, cap - off, "]}");
    cfg = s_load_ok(text);
    assert_int_equal(cfg->ntenants, N);
    for (size_t i = 0; i < cfg->ntenants; i++)
        assert_ptr_equal(kb_config_tenant(cfg, cfg->tenants[i].name), &cfg->tenants[i]);
    for (unsigned k = 0; k < N; k++) {
        snprintf(name, sizeof(name), "t%u-x", k);
        assert_string_equal(kb_config_tenant(cfg, name)->name, name);
        snprintf(name, sizeof(name), "t%u-", k); /* a prefix of a name is not that name */
        assert_null(kb_config_tenant(cfg, name));
        snprintf(name, sizeof(name), "T%u-x", k);
        assert_null(kb_config_tenant(cfg, name));
    }
    assert_null(kb_config_tenant(cfg, ""));
    assert_null(kb_config_tenant(cfg, "zzz"));
    assert_null(kb_config_tenant(cfg, NULL));
    kb_config_destroy(cfg);
    free(text);
}

static void test_defaults(void **state)
{
    struct kb_config *cfg = s_load_ok("{\"tenants\": [{\"name\": \"app\", \"bucket\": "
                                      "\"acme-app\", \"access\": \"read-only\"}]}");

    assert_string_equal(cfg->broker.socket.path, "/run/keybroker/keybroker.sock");
    assert_int_equal(cfg->broker.socket.mode, 0660);
    assert_false(cfg->broker.socket.has_group);
    assert_int_equal(cfg->broker.admin.nuids, 1);
    assert_int_equal(cfg->broker.admin.uids[0], 0);
    assert_int_equal(cfg->broker.admin.ngids, 0);
    assert_null(cfg->broker.audit.path);
    assert_false(cfg->broker.audit.fail_closed);
    assert_null(cfg->broker.audit.state);
    assert_true(cfg->broker.audit.hmac);
    assert_int_equal(cfg->broker.audit.epoch, 900);
    assert_int_equal(cfg->broker.audit.fsync, KB_CONFIG_FSYNC_INTERVAL);
    assert_int_equal(cfg->broker.audit.max_backlog, 100000);
    assert_null(cfg->broker.audit.anchor.bucket);
    assert_int_equal(cfg->broker.nplugins, 0);
    assert_int_equal(cfg->broker.concurrency, 8);
    assert_int_equal(cfg->broker.log_level, KB_LOG_INFO);
    assert_int_equal(cfg->broker.limits.max_connections, 1024);
    assert_int_equal(cfg->broker.limits.idle_timeout, 60);
    assert_int_equal(cfg->broker.limits.max_inflight_per_connection, 16);
    assert_int_equal(cfg->broker.limits.requests_per_second_per_uid, 200);
    assert_int_equal(cfg->broker.limits.max_connections_per_uid, 64);
    assert_int_equal(cfg->broker.limits.admin_reserved_connections, 16);
    assert_int_equal(cfg->broker.limits.request_timeout, 10);
    assert_int_equal(cfg->broker.limits.max_watches_per_uid, 32);
    assert_int_equal(cfg->broker.reconcile.interval, 3600);
    assert_int_equal(cfg->broker.reconcile.retry_initial, 5);
    assert_int_equal(cfg->broker.reconcile.retry_max, 300);
    assert_int_equal(cfg->broker.follow.interval, 60);
    assert_null(cfg->aws.region);
    assert_null(cfg->aws.endpoint_url);
    assert_int_equal(cfg->aws.max_attempts, 3);
    assert_string_equal(cfg->aws.name_prefix, "kb-");
    assert_string_equal(cfg->aws.iam_path, "/keybroker/");
    assert_string_equal(cfg->aws.secret_prefix, "keybroker/");
    assert_null(cfg->aws.permissions_boundary);
    assert_null(cfg->aws.kms_key_id);
    assert_int_equal(cfg->aws.probe_timeout, 60);
    assert_int_equal(cfg->aws.orphan_key_min_age, 600);
    assert_int_equal(cfg->aws.recovery_window_days, 30);
    assert_int_equal(cfg->aws.overlap, 3600);
    assert_int_equal(cfg->aws.retire, 86400);
    assert_int_equal(cfg->broker.limits.watch_ring_events, 4096);
    assert_true(cfg->aws.deny_insecure_transport);
    assert_string_equal(cfg->tenants[0].prefix, "");
    assert_int_equal(cfg->tenants[0].rotate_every, 30 * 86400);
    assert_true(cfg->tenants[0].rotate);
    assert_int_equal(cfg->tenants[0].clients.nuids + cfg->tenants[0].clients.ngids, 0);
    assert_false(kb_config_acl_match(&cfg->tenants[0].clients, 0, 0, NULL, 0));
    kb_config_destroy(cfg);

    /* An admin section replaces the default: root is then admin only if listed. */
    cfg = s_load_ok("{\"broker\": {\"admin\": {\"groups\": [\"ops\"]}}}");
    assert_int_equal(cfg->broker.admin.nuids, 0);
    assert_false(kb_config_acl_match(&cfg->broker.admin, 0, 0, NULL, 0));
    assert_true(kb_config_acl_match(&cfg->broker.admin, 5, 5, (uint32_t[]){3, 51}, 2));
    kb_config_destroy(cfg);
}

static void test_injected_resolver(void **state)
{
    struct kb_config *cfg;

    s_lookups = 0;
    cfg = s_load_ok("{\"broker\": {\"socket\": {\"group\": \"staff\"}, \"admin\": {\"users\": "
                    "[\"bob\", \"alice\", \"bob\"], \"uids\": [1000, 7]}}}");
    assert_int_equal(s_lookups, 4);
    assert_int_equal(cfg->broker.socket.gid, 50);
    /* sorted, duplicates removed */
    assert_int_equal(cfg->broker.admin.nuids, 3);
    assert_int_equal(cfg->broker.admin.uids[0], 7);
    assert_int_equal(cfg->broker.admin.uids[1], 1000);
    assert_int_equal(cfg->broker.admin.uids[2], 1001);
    kb_config_destroy(cfg);

    /* A numeric group (string or integer) is a gid, not a name to look up. */
    s_lookups = 0;
    cfg = s_load_ok("{\"broker\": {\"socket\": {\"group\": \"4242\"}}}");
    assert_int_equal(cfg->broker.socket.gid, 4242);
    assert_int_equal(s_lookups, 0);
    kb_config_destroy(cfg);

    s_expect_one("{\"broker\": {\"admin\": {\"users\": [\"broken\"]}}}",
                 "broker.admin.users[0]: cannot look up user \"broken\": AWS returned an error");
    s_expect_one("{\"broker\": {\"admin\": {\"groups\": [\"alice\"]}}}",
                 "broker.admin.groups[0]: unknown group \"alice\"");
    s_expect_one("{\"broker\": {\"admin\": {\"users\": [7]}}}",
                 "broker.admin.users[0]: must be a string, not an integer");
    s_expect_one("{\"broker\": {\"socket\": {\"group\": true}}}",
                 "broker.socket.group: must be a group name or a gid, not a boolean");
}

static void test_system_resolver(void **state)
{
    struct kb_config *cfg = NULL;
    struct kb_config_errors *e = NULL;
    const char *text = "{\"broker\": {\"admin\": {\"users\": [\"root\", \"daemon\"], "
                       "\"groups\": [\"nogroup\"]}}}";

    assert_int_equal(kb_config_load_string(text, strlen(text), NULL, &cfg, &e), 0);
    assert_int_equal(cfg->broker.admin.nuids, 2);
    assert_int_equal(cfg->broker.admin.uids[0], 0);
    assert_int_equal(cfg->broker.admin.uids[1], 1);
    assert_int_equal(cfg->broker.admin.gids[0], 65534);
    kb_config_destroy(cfg);
}

static void test_roots_and_syntax(void **state)
{
    s_expect_one("1", "(root): must be a JSON object, not an integer");
    s_expect_one("\"x\"", "(root): must be a JSON object, not a string");
    s_expect_one("true", "(root): must be a JSON object, not a boolean");
    s_expect_one("2.5", "(root): must be a JSON object, not a number");
    s_expect_one("null", "(root): must be a JSON object, not null");
    s_expect_one("{} {}", "(root): invalid JSON at line 1, column 4: unexpected character");
    s_expect_one("{\"a\": 1,}", "(root): invalid JSON at line 1, column 9: unexpected character");
    s_expect_one("/* c */ {}", "(root): invalid JSON at line 1, column 1: unexpected character");
    s_expect_one("{'a': 1}", "(root): invalid JSON at line 1, column 2: single-quoted string");
    s_expect_one("{\"a\": {'b{': 1}}",
                 "(root): invalid JSON at line 1, column 8: single-quoted string");
    s_expect_one("{\"a\": NaN}", "a: unknown key");
    /* columns count characters, not bytes */
    s_expect_one("{\"é\": 1 2}", "(root): invalid JSON at line 1, column 9: object value "
                                 "separator ',' expected");
    s_expect_one("{\"a\": \"\xff\"}", "(root): invalid JSON at line 1, column 8: invalid utf-8 "
                                      "string");
    s_expect_one("\n\n  {", "(root): invalid JSON at line 3, column 4: unexpected end of data");
}

static void test_hostile_values(void **state)
{
    const char nul_text[] = "{\"tenants\": []}\0{}";
    struct kb_config_errors *e = s_load_bad(nul_text, sizeof nul_text - 1);
    char *big;
    size_t n = KB_CONFIG_MAX_SIZE + 1;

    assert_string_equal(e->lines[0], "(root): invalid JSON: NUL byte at offset 15");
    kb_config_errors_destroy(e);
    s_expect_one("{\"broker\": {\"concurrency\": 99999999999999999999999}}",
                 "broker.concurrency: 18446744073709551615 is out of range: must be between 1 "
                 "and 256");
    s_expect_one("{\"broker\": {\"concurrency\": -9223372036854775809}}",
                 "broker.concurrency: -9223372036854775808 is out of range: must be between 1 "
                 "and 256");
    s_expect_one("{\"broker\": {\"concurrency\": 1e400}}",
                 "broker.concurrency: must be an integer, not a number");
    s_expect_one("{\"aws\": {\"deny_insecure_transport\": \"no\"}}",
                 "aws.deny_insecure_transport: must be a boolean, not a string");
    s_expect_one("{\"aws\": {\"overlap\": -1}}",
                 "aws.overlap: -1 is out of range: must be between 0s and 30d");
    s_expect_one("{\"aws\": {\"overlap\": \"99999999999999999999999d\"}}",
                 "aws.overlap: \"99999999999999999999999d\" is not a valid duration: use a number "
                 "of seconds or a string like \"90s\", \"15m\", \"12h\" or \"30d\"");
    s_expect_one("{\"tenants\": [{\"name\": \"a\\u0000b\", \"bucket\": \"acme-a\", \"access\": "
                 "\"admin\"}]}",
                 "tenants[0].name: must not contain a NUL character");
    s_expect_one("{\"aws\": {\"tags\": {\"a\\u0001\\\"\\u00e9\": \"x\"}}}",
                 "aws.tags[\"a\\x01\\\"\\xc3\\xa9\"]: \"a\\x01\\\"\\xc3\\xa9\" is not a valid tag "
                 "key: only letters, digits, spaces and the characters _.:/=+-@ are allowed");
    big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    e = s_load_bad(big, n);
    assert_string_equal(e->lines[0], "(root): the configuration is 1048577 bytes long: at most "
                                     "1048576 are allowed");
    kb_config_errors_destroy(e);
    free(big);
}

static void test_duplicate_keys(void **state)
{
    struct kb_config_errors *e;
    const char *text = "{\"broker\": {\"socket\": {\"mode\": \"0600\", \"mode\": \"0600\"}},"
                       " \"ten\\u0061nts\": [], \"tenants\": [{\"a\": 1, \"a\": 2}],"
                       " \"x y\": {\"k\": [ {\"z\": 1, \"z\": 1} ]}, \"x y\": 1}";

    e = s_load_bad(text, strlen(text));
    assert_true(s_has_line(e, "broker.socket.mode: duplicate key"));
    assert_true(s_has_line(e, "tenants: duplicate key"));
    assert_true(s_has_line(e, "tenants[0].a: duplicate key"));
    assert_true(s_has_line(e, "[\"x y\"].k[0].z: duplicate key"));
    assert_true(s_has_line(e, "[\"x y\"]: duplicate key"));
    kb_config_errors_destroy(e);
}

static void test_error_cap(void **state)
{
    size_t n = 500;
    size_t cap = 16 * n + 16;
    char *text = malloc(cap);
    size_t len = 0;
    struct kb_config_errors *e;

    assert_non_null(text);
    len += (size_t)snprintf(text + len, cap - len, "{");
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(text + len, cap - len, "%s\"k%zu\": 1", i ? "," : "", i);
    }
    len += (size_t)snprintf(text + len, cap - len, "}");
    e = s_load_bad(text, len);
    assert_int_equal(e->count, KB_CONFIG_MAX_ERRORS + 1);
    assert_string_equal(e->lines[0], "k0: unknown key");
    assert_string_equal(e->lines[KB_CONFIG_MAX_ERRORS], "(and 300 more problems not shown)");
    kb_config_errors_destroy(e);
    free(text);
}

static void test_load_file_errors(void **state)
{
    struct kb_config *cfg = (struct kb_config *)1;
    struct kb_config_errors *e = (struct kb_config_errors *)1;

    assert_int_equal(kb_config_load_file(S_CONFIGS "/no-such-file.json", NULL, &cfg, &e), -ENOENT);
    assert_null(cfg);
    assert_null(e);
    assert_int_equal(kb_config_load_file(NULL, NULL, &cfg, &e), KB_EINVAL);
    assert_int_equal(kb_config_load_string("{}", 2, NULL, NULL, &e), KB_EINVAL);
    assert_int_equal(kb_config_load_string(NULL, 0, NULL, &cfg, &e), KB_ECONFIG);
    kb_config_errors_destroy(e);
}

/* Mutated copies of a full config: any outcome is fine except a crash, a leak (ASan), an error
 * without lines or a success with lines. */
/* Who may write the file and who may connect: the checks behind keybrokerd's refusals. */
static void test_permission_checks(void **state)
{
    static const struct {
        uint32_t uid, mode, euid;
        int rc;
        const char *why;
    } files[] = {
        {0, 0100600, 0, 0, NULL},
        {0, 0100644, 0, 0, NULL},
        {0, 0100640, 1000, 0, NULL}, /* root's file, read by a broker user */
        {1000, 0100600, 1000, 0, NULL},
        {0, 0100666, 0, KB_ECONFIG, "writable by group and others (mode 0666)"},
        {0, 0100602, 0, KB_ECONFIG, "writable by others (mode 0602)"},
        {0, 0100620, 0, KB_ECONFIG, "writable by its group (mode 0620)"},
        {1000, 0100600, 0, KB_ECONFIG, "owned by uid 1000, not by root or the broker's user"},
        {1000, 0100600, 1001, KB_ECONFIG, "owned by uid 1000"},
    };
    static const struct {
        uint32_t mode;
        int rc;
        const char *why;
    } socks[] = {
        {0660, 0, NULL},
        {0600, 0, NULL},
        {0770, 0, NULL},
        {0666, KB_ECONFIG, "\"0666\" lets every local user connect to the socket (other: rw-)"},
        {0661, KB_ECONFIG, "(other: --x)"},
        {0604, KB_ECONFIG, "(other: r--)"},
    };
    char why[256];

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        why[0] = '\0';
        assert_int_equal(kb_config_check_file_owner(files[i].uid, files[i].mode, files[i].euid, why,
                                                    sizeof(why)),
                         files[i].rc);
        if (files[i].why != NULL && strstr(why, files[i].why) == NULL)
            fail_msg("file case %zu: \"%s\" lacks \"%s\"", i, why, files[i].why);
    }
    for (size_t i = 0; i < sizeof(socks) / sizeof(socks[0]); i++) {
        why[0] = '\0';
        assert_int_equal(kb_config_check_socket_mode(socks[i].mode, why, sizeof(why)), socks[i].rc);
        if (socks[i].why != NULL && strstr(why, socks[i].why) == NULL)
            fail_msg("socket case %zu: \"%s\" lacks \"%s\"", i, why, socks[i].why);
    }
}

static void test_mutations_never_crash(void **state)
{
    static const char junk[] = "{}[]\",:0-9eE.\\u \n\x01\xc3\xa9\xff";
    FILE *f = fopen(S_CONFIGS "/valid/03-full.json", "rb");
    char base[8192];
    size_t len;
    uint32_t seed = 12345;
    size_t ok = 0;
    size_t bad = 0;

    assert_non_null(f);
    len = fread(base, 1, sizeof base, f);
    fclose(f);
    for (int iter = 0; iter < 3000; iter++) {
        char buf[sizeof base];
        size_t n = len;
        struct kb_config *cfg = NULL;
        struct kb_config_errors *e = NULL;
        int rc;
        memcpy(buf, base, len);
        for (int m = 0; m < 1 + iter % 4; m++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % n;
            seed = seed * 1103515245u + 12345u;
            if ((seed >> 16) % 3 == 0 && n > 1) {
                memmove(buf + at, buf + at + 1, n - at - 1); /* delete a byte */
                n--;
            } else {
                buf[at] = junk[(seed >> 8) % (sizeof junk - 1)]; /* replace a byte */
            }
        }
        rc = kb_config_load_string(buf, n, NULL, &cfg, &e);
        assert_true(rc == 0 || rc == KB_ECONFIG);
        assert_true(rc == 0 ? cfg != NULL && e == NULL : cfg == NULL && e->count > 0);
        rc == 0 ? ok++ : bad++;
        kb_config_destroy(cfg);
        kb_config_errors_destroy(e);
    }
    print_message("mutations: %zu loaded, %zu rejected\n", ok, bad);
    assert_true(bad > 0);
    assert_true(ok > 0); /* some mutations land in whitespace or free text */
}

int main(int argc, char **argv)
{
    /* One case per line: CMake registers each line as its own CTest test. */
    // clang-format off
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_invalid),
        cmocka_unit_test(test_data_valid),
        cmocka_unit_test(test_full_config_values),
        cmocka_unit_test(test_tenant_lookup_many),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_injected_resolver),
        cmocka_unit_test(test_system_resolver),
        cmocka_unit_test(test_roots_and_syntax),
        cmocka_unit_test(test_hostile_values),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_error_cap),
        cmocka_unit_test(test_load_file_errors),
        cmocka_unit_test(test_permission_checks),
        cmocka_unit_test(test_mutations_never_crash),
    };
    // clang-format on
    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
