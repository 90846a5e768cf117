/*
 * test_credentials.c - the pure parts of the credentials chain: shared-file profiles, the JSON
 * documents of credential_process / container / IMDS, ISO-8601 times, the container URI
 * allow-list and the refresh decision; plus the chain's local providers on a real loop (no
 * network: IMDS disabled, no container variables).
 */
#include "kb_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/credentials.h"
#include "aws/creds_internal.h"
#include "common/err.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

/* ---- helpers ---- */

struct tmp {
    char dir[64];
    char cred[128];
    char conf[128];
};

static void tmp_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void tmp_init(struct tmp *t, const char *cred_text, const char *conf_text)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/kbcredsXXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->cred, sizeof(t->cred), "%s/credentials", t->dir);
    snprintf(t->conf, sizeof(t->conf), "%s/config", t->dir);
    if (cred_text != NULL)
        tmp_write(t->cred, cred_text);
    if (conf_text != NULL)
        tmp_write(t->conf, conf_text);
}

static void tmp_cleanup(struct tmp *t)
{
    unlink(t->cred);
    unlink(t->conf);
    rmdir(t->dir);
}

static void assert_secret(struct kb_secret *s, const char *want)
{
    assert_non_null(s);
    assert_string_equal(kb_secret_open(s, NULL), want);
    kb_secret_close(s);
}

static int load(struct tmp *t, const char *name, struct kb_creds_profile *p, char *why)
{
    return kb_creds_profile_load(name, t->cred, t->conf, p, why, KB_CREDS_WHY_LEN);
}

/* ---- profiles ---- */

static void test_profile_default_and_named(void **state)
{
    struct tmp t;
    struct kb_creds_profile p;
    char why[KB_CREDS_WHY_LEN];

    tmp_init(&t,
             "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = " SECRET "\n"
             "[dev]\naws_access_key_id=AKIADEV\naws_secret_access_key=devsecret\n"
             "aws_session_token = devtoken\n",
             NULL);
    assert_int_equal(load(&t, "default", &p, why), 0);
    assert_true(p.found);
    assert_string_equal(p.access_key_id, "AKIADEFAULT");
    assert_secret(p.secret_access_key, SECRET);
    assert_null(p.session_token);
    kb_creds_profile_cleanup(&p);

    assert_int_equal(load(&t, "dev", &p, why), 0);
    assert_string_equal(p.access_key_id, "AKIADEV");
    assert_secret(p.secret_access_key, "devsecret");
    assert_secret(p.session_token, "devtoken");
    kb_creds_profile_cleanup(&p);

    assert_int_equal(load(&t, "nope", &p, why), 0);
    assert_false(p.found);
    assert_null(p.access_key_id);
    kb_creds_profile_cleanup(&p);
    tmp_cleanup(&t);
}

/* In the config file a named profile is "[profile x]"; a bare "[x]" is not it. In the
 * credentials file "[profile x]" is a profile literally named "profile x". */
static void test_profile_config_sections(void **state)
{
    struct tmp t;
    struct kb_creds_profile p;
    char why[KB_CREDS_WHY_LEN];

    tmp_init(&t, "[profile ops]\naws_access_key_id = AKIAWRONG\n",
             "[ops]\nregion = eu-west-3\n"
             "[profile   ops ]\nregion = eu-west-1\naws_access_key_id = AKIACONF\n"
             "aws_secret_access_key = confsecret\n"
             "[default]\nregion = us-east-2\n");
    assert_int_equal(load(&t, "ops", &p, why), 0);
    assert_true(p.found);
    assert_string_equal(p.region, "eu-west-1");
    assert_string_equal(p.access_key_id, "AKIACONF");
    assert_secret(p.secret_access_key, "confsecret");
    kb_creds_profile_cleanup(&p);

    assert_int_equal(load(&t, "default", &p, why), 0);
    assert_string_equal(p.region, "us-east-2");
    assert_null(p.access_key_id);
    kb_creds_profile_cleanup(&p);
    tmp_cleanup(&t);
}

static void test_profile_credentials_file_wins(void **state)
{
    struct tmp t;
    struct kb_creds_profile p;
    char why[KB_CREDS_WHY_LEN];

    tmp_init(&t, "[app]\naws_access_key_id = AKIACRED\naws_secret_access_key = credsecret\n",
             "[profile app]\naws_access_key_id = AKIACONF\naws_secret_access_key = confsecret\n"
             "region = ap-south-1\ncredential_process = /bin/true\n");
    assert_int_equal(load(&t, "app", &p, why), 0);
    assert_string_equal(p.access_key_id, "AKIACRED");
    assert_secret(p.secret_access_key, "credsecret");
    assert_string_equal(p.region, "ap-south-1");
    assert_string_equal(p.credential_process, "/bin/true");
    kb_creds_profile_cleanup(&p);
    tmp_cleanup(&t);
}

static void test_profile_missing_secret(void **state)
{
    struct tmp t;
    struct kb_creds_profile p;
    char why[KB_CREDS_WHY_LEN];

    tmp_init(&t, "[default]\naws_access_key_id = AKIAONLY\n", "");
    assert_int_equal(load(&t, "default", &p, why), 0);
    assert_string_equal(p.access_key_id, "AKIAONLY");
    assert_null(p.secret_access_key);
    kb_creds_profile_cleanup(&p);
    tmp_cleanup(&t);
}

/* Debian's inih cuts lines at 200 bytes by default: a real session token is longer. Values
 * keep ';' (botocore has no inline comments), comment lines and nested blocks are skipped, and
 * key names match without regard to case. */
static void test_profile_long_values_and_comments(void **state)
{
    static char token[3001], text[4096];
    struct tmp t;
    struct kb_creds_profile p;
    char why[KB_CREDS_WHY_LEN];

    memset(token, 'T', sizeof(token) - 1);
    token[sizeof(token) - 1] = '\0';
    snprintf(text, sizeof(text),
             "# a comment\n; another\n[default]\nAWS_ACCESS_KEY_ID = AKIALONG\n"
             "aws_secret_access_key = s3cr3t\naws_session_token = %s\n"
             "s3 =\n  addressing_style = path\n"
             "credential_process = sh -c 'echo a; echo b' # kept\n",
             token);
    tmp_init(&t, text, NULL);
    assert_int_equal(kb_creds_profile_load("default", t.cred, NULL, &p, why, sizeof(why)), 0);
    assert_string_equal(p.access_key_id, "AKIALONG");
    assert_int_equal(kb_secret_len(p.session_token), 3000);
    assert_secret(p.session_token, token);
    assert_string_equal(p.credential_process, "sh -c 'echo a; echo b' # kept");
    kb_creds_profile_cleanup(&p);
    tmp_cleanup(&t);
}

static void test_profile_malformed_and_missing_files(void **state)
{
    struct tmp t;
    struct kb_creds_profile p;
    char why[KB_CREDS_WHY_LEN];

    tmp_init(&t, "[default]\naws_access_key_id = AKIA\nthis line has no equals sign\n", NULL);
    assert_int_equal(load(&t, "default", &p, why), KB_EPARSE);
    assert_non_null(strstr(why, "line 3"));
    assert_null(p.access_key_id); /* cleaned up on error */
    tmp_cleanup(&t);

    /* files that do not exist are simply empty */
    assert_int_equal(
        kb_creds_profile_load("default", "/nonexistent/c", "/nonexistent/d", &p, why, sizeof(why)),
        0);
    assert_false(p.found);
    kb_creds_profile_cleanup(&p);
}

static void test_profile_paths(void **state)
{
    char out[64];

    assert_int_equal(kb_creds_profile_path(NULL, "/home/u", "config", out, sizeof(out)), 0);
    assert_string_equal(out, "/home/u/.aws/config");
    assert_int_equal(kb_creds_profile_path("/etc/aws", "/home/u", "config", out, sizeof(out)), 0);
    assert_string_equal(out, "/etc/aws");
    assert_int_equal(kb_creds_profile_path("~/x/c", "/home/u", "config", out, sizeof(out)), 0);
    assert_string_equal(out, "/home/u/x/c");
    assert_int_equal(kb_creds_profile_path(NULL, NULL, "config", out, sizeof(out)), KB_ENOTFOUND);
    assert_int_equal(kb_creds_profile_path("/a/very/long/path/that/does/not/fit/in/the/buffer/"
                                           "at/all/really/not/at/all",
                                           NULL, "config", out, sizeof(out)),
                     KB_ETOOBIG);
}

static void test_profile_region(void **state)
{
    struct tmp t;
    char region[32];

    tmp_init(&t, "[other]\nregion = ca-central-1\n",
             "[default]\nregion = us-west-2\n[profile other]\nregion = eu-north-1\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", t.cred, 1);
    setenv("AWS_CONFIG_FILE", t.conf, 1);
    unsetenv("AWS_PROFILE");
    assert_int_equal(kb_creds_profile_region(NULL, region, sizeof(region)), 0);
    assert_string_equal(region, "us-west-2");
    /* the credentials file's value wins for the same profile */
    assert_int_equal(kb_creds_profile_region("other", region, sizeof(region)), 0);
    assert_string_equal(region, "ca-central-1");
    setenv("AWS_PROFILE", "missing", 1);
    assert_int_equal(kb_creds_profile_region(NULL, region, sizeof(region)), 0);
    assert_string_equal(region, "");
    assert_int_equal(kb_creds_profile_region("default", region, 4), KB_ETOOBIG);
    assert_string_equal(region, "");
    unsetenv("AWS_PROFILE");
    tmp_cleanup(&t);
}

/* ---- JSON documents ---- */

static int parse(enum kb_creds_doc doc, const char *json, struct kb_credentials *c, char *why)
{
    return kb_creds_doc_parse(doc, json, strlen(json), c, why, KB_CREDS_WHY_LEN);
}

static void test_process_json_good(void **state)
{
    struct kb_credentials c;
    char why[KB_CREDS_WHY_LEN];

    assert_int_equal(parse(KB_CREDS_DOC_PROCESS,
                           "{\"Version\": 1, \"AccessKeyId\": \"ASIAPROC\", \"SecretAccessKey\": "
                           "\"" SECRET "\", \"SessionToken\": \"tok/en+==\", "
                           "\"Expiration\": \"2030-01-02T03:04:05Z\"}\n",
                           &c, why),
                     0);
    assert_string_equal(c.access_key_id, "ASIAPROC");
    assert_string_equal(c.source, "process");
    assert_secret(c.secret_access_key, SECRET);
    assert_secret(c.session_token, "tok/en+==");
    assert_int_equal(c.expiration, 1893553445);
    kb_credentials_cleanup(&c);

    /* long-term keys: no token, no expiration */
    assert_int_equal(parse(KB_CREDS_DOC_PROCESS,
                           "{\"Version\":1,\"AccessKeyId\":\"AKIAX\",\"SecretAccessKey\":\"s\"}",
                           &c, why),
                     0);
    assert_null(c.session_token);
    assert_int_equal(c.expiration, 0);
    kb_credentials_cleanup(&c);
}

static void test_process_json_rejects(void **state)
{
    static const char *const bad[] = {
        "{\"Version\":2,\"AccessKeyId\":\"AKIAX\",\"SecretAccessKey\":\"s\"}",
        "{\"Version\":\"1\",\"AccessKeyId\":\"AKIAX\",\"SecretAccessKey\":\"s\"}",
        "{\"AccessKeyId\":\"AKIAX\",\"SecretAccessKey\":\"s\"}",
        "{\"Version\":1,\"SecretAccessKey\":\"s\"}",
        "{\"Version\":1,\"AccessKeyId\":\"AKIAX\"}",
        "{\"Version\":1,\"AccessKeyId\":\"AKIAX\",\"SecretAccessKey\":\"\"}",
        "{\"Version\":1,\"AccessKeyId\":\"AK IA\",\"SecretAccessKey\":\"s\"}",
        "{\"Version\":1,\"AccessKeyId\":\"AKIAX\",\"SecretAccessKey\":\"s\",\"Expiration\":"
        "\"tomorrow\"}",
        "{\"Version\":1,\"AccessKeyId\":\"AKIAX\",\"SecretAccessKey\":\"s\",\"Expiration\":5}",
        "{\"Version\":1,\"AccessKeyId\":\"AKIAX\",\"SecretAccessKey\":\"s\",\"SessionToken\":"
        "\"a\\nb\"}",
        "{\"Version\":1,\"AccessKeyId\":\"AKIAX\",\"SecretAccessKey\":\"s\"} trailing",
        "[1]",
        "not json",
        "",
    };
    struct kb_credentials c;
    char why[KB_CREDS_WHY_LEN];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        if (parse(KB_CREDS_DOC_PROCESS, bad[i], &c, why) != KB_EPARSE)
            fail_msg("accepted #%zu: %s", i, bad[i]);
        assert_true(why[0] != '\0');
        assert_null(c.secret_access_key);
        /* a reason never quotes the secret */
        assert_null(strstr(why, "\"s\""));
    }
    assert_int_equal(parse(KB_CREDS_DOC_PROCESS, bad[0], &c, why), KB_EPARSE);
    assert_non_null(strstr(why, "Version"));
    assert_int_equal(parse(KB_CREDS_DOC_PROCESS, bad[3], &c, why), KB_EPARSE);
    assert_non_null(strstr(why, "AccessKeyId"));
    assert_int_equal(parse(KB_CREDS_DOC_PROCESS, bad[7], &c, why), KB_EPARSE);
    assert_non_null(strstr(why, "Expiration"));
}

static void test_container_and_imds_json(void **state)
{
    struct kb_credentials c;
    char why[KB_CREDS_WHY_LEN];

    assert_int_equal(parse(KB_CREDS_DOC_CONTAINER,
                           "{\"AccessKeyId\":\"ASIACONT\",\"SecretAccessKey\":\"cs\",\"Token\":"
                           "\"ct\",\"Expiration\":\"2030-01-02T03:04:05.123+01:00\",\"RoleArn\":"
                           "\"arn:aws:iam::1:role/r\"}",
                           &c, why),
                     0);
    assert_string_equal(c.source, "container");
    assert_secret(c.session_token, "ct");
    assert_int_equal(c.expiration, 1893553445 - 3600);
    kb_credentials_cleanup(&c);

    assert_int_equal(parse(KB_CREDS_DOC_IMDS,
                           "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIAI\","
                           "\"SecretAccessKey\":\"is\",\"Token\":\"it\",\"Expiration\":"
                           "\"2030-01-02T03:04:05Z\"}",
                           &c, why),
                     0);
    assert_string_equal(c.source, "imds");
    kb_credentials_cleanup(&c);

    assert_int_equal(parse(KB_CREDS_DOC_IMDS,
                           "{\"Code\":\"Failure\",\"AccessKeyId\":\"ASIAI\",\"SecretAccessKey\":"
                           "\"is\",\"Token\":\"it\",\"Expiration\":\"2030-01-02T03:04:05Z\"}",
                           &c, why),
                     KB_EPARSE);
    assert_non_null(strstr(why, "Code"));
    /* IMDS credentials always carry a token and an expiration */
    assert_int_equal(parse(KB_CREDS_DOC_IMDS,
                           "{\"Code\":\"Success\",\"AccessKeyId\":\"ASIAI\",\"SecretAccessKey\":"
                           "\"is\",\"Expiration\":\"2030-01-02T03:04:05Z\"}",
                           &c, why),
                     KB_EPARSE);
    assert_int_equal(parse(KB_CREDS_DOC_IMDS,
                           "{\"Code\":\"Success\",\"AccessKeyId\":\"ASIAI\",\"SecretAccessKey\":"
                           "\"is\",\"Token\":\"it\"}",
                           &c, why),
                     KB_EPARSE);
}

/* ---- container URI allow-list ---- */

static void test_container_uri_allowlist(void **state)
{
    static const char *const ok[] = {
        "http://127.0.0.1:8080/creds", "http://127.1.2.3/x",      "http://localhost/x",
        "http://LOCALHOST:1/x",        "http://[::1]:9/x",        "http://169.254.170.2/v2/x",
        "http://169.254.170.23/v1/x",  "http://[fd00:ec2::23]/x", "https://example.com/creds",
    };
    static const char *const refused[] = {
        "http://example.com/creds", "http://10.0.0.1/x", "http://169.254.169.254/x",
        "http://128.0.0.1/x",       "http://[::2]/x",    "ftp://127.0.0.1/x",
        "file:///etc/passwd",       "127.0.0.1:80/x",    "http://localhost.evil.com/x",
        "http://169.254.170.3/x",   "not a url at all",
    };
    char why[KB_CREDS_WHY_LEN];

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (!kb_creds_container_uri_allowed(ok[i], why, sizeof(why)))
            fail_msg("refused %s: %s", ok[i], why);
    }
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        why[0] = '\0';
        if (kb_creds_container_uri_allowed(refused[i], why, sizeof(why)))
            fail_msg("allowed %s", refused[i]);
        assert_true(why[0] != '\0');
    }
}

/* ---- refresh decision, copies ---- */

static void test_needs_refresh(void **state)
{
    struct kb_credentials c = {.expiration = 0};
    time_t now = 1700000000;

    assert_false(kb_creds_needs_refresh(&c, now));
    c.expiration = now + 3600;
    assert_false(kb_creds_needs_refresh(&c, now));
    c.expiration = now + KB_CREDS_REFRESH_AHEAD;
    assert_false(kb_creds_needs_refresh(&c, now));
    c.expiration = now + KB_CREDS_REFRESH_AHEAD - 1;
    assert_true(kb_creds_needs_refresh(&c, now));
    c.expiration = now + 240;
    assert_true(kb_creds_needs_refresh(&c, now));
    c.expiration = now - 10;
    assert_true(kb_creds_needs_refresh(&c, now));
}

static void test_credentials_copy(void **state)
{
    struct kb_credentials a, b;
    char why[KB_CREDS_WHY_LEN];

    assert_int_equal(kb_creds_fill(&a, "AKIACOPY", "sec", 3, "tok", 3, 42, "env", why, sizeof(why)),
                     0);
    assert_int_equal(kb_credentials_copy(&b, &a), 0);
    kb_credentials_cleanup(&a);
    assert_null(a.secret_access_key);
    assert_string_equal(b.access_key_id, "AKIACOPY");
    assert_string_equal(b.source, "env");
    assert_int_equal(b.expiration, 42);
    assert_secret(b.secret_access_key, "sec");
    assert_secret(b.session_token, "tok");
    kb_credentials_cleanup(&b);
    kb_credentials_cleanup(NULL);
}

/* ---- the chain's local providers, on a real loop ---- */

struct got {
    int calls;
    int err;
    char source[32];
    char id[128];
    char message[2560];
    bool in_get; /* set while kb_creds_get runs: a callback then would be synchronous */
};

static void on_creds(void *ctx, int err, const struct kb_credentials *creds, const char *message)
{
    struct got *g = ctx;

    assert_false(g->in_get);
    g->calls++;
    g->err = err;
    if (creds != NULL) {
        snprintf(g->source, sizeof(g->source), "%s", creds->source);
        snprintf(g->id, sizeof(g->id), "%s", creds->access_key_id);
    }
    if (message != NULL)
        snprintf(g->message, sizeof(g->message), "%s", message);
}

static void env_reset(const char *cred_path, const char *conf_path)
{
    static const char *const vars[] = {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    };
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", cred_path, 1);
    setenv("AWS_CONFIG_FILE", conf_path, 1);
}

struct rig {
    uv_loop_t loop;
    struct kb_http *http;
    struct kb_creds_chain *chain;
};

static void rig_open(struct rig *r, const struct kb_creds_config *cfg, int want_rc)
{
    assert_int_equal(uv_loop_init(&r->loop), 0);
    assert_int_equal(kb_http_new(&r->loop, NULL, &r->http), 0);
    r->chain = NULL;
    assert_int_equal(kb_creds_chain_new(&r->loop, r->http, cfg, &r->chain), want_rc);
}

static void rig_get(struct rig *r, struct got *g)
{
    g->in_get = true;
    assert_int_equal(kb_creds_get(r->chain, on_creds, g), 0);
    g->in_get = false;
}

static void rig_close(struct rig *r)
{
    kb_creds_chain_destroy(r->chain);
    kb_http_close(r->http, NULL, NULL);
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&r->loop), 0);
}

static void test_chain_env_then_cache(void **state)
{
    struct rig r;
    struct got g1 = {0}, g2 = {0};

    env_reset("/dev/null", "/dev/null");
    setenv("AWS_ACCESS_KEY_ID", "AKIAENVTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    rig_open(&r, NULL, 0);
    rig_get(&r, &g1);
    rig_get(&r, &g2);
    assert_int_equal(g1.calls + g2.calls, 0); /* always asynchronous */
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g1.calls, 1);
    assert_int_equal(g1.err, 0);
    assert_string_equal(g1.source, "env");
    assert_string_equal(g1.id, "AKIAENVTEST");
    assert_int_equal(g2.calls, 1);
    assert_string_equal(g2.id, "AKIAENVTEST");
    rig_close(&r);
}

static void test_chain_explicit_and_partial(void **state)
{
    struct kb_creds_config cfg = {.access_key_id = "AKIACFG", .secret_access_key = "cfgsecret"};
    struct rig r;
    struct got g = {0};

    env_reset("/dev/null", "/dev/null");
    setenv("AWS_ACCESS_KEY_ID", "AKIAENVTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    rig_open(&r, &cfg, 0);
    rig_get(&r, &g);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_string_equal(g.source, "config"); /* explicit beats the environment */
    rig_close(&r);

    cfg.secret_access_key = NULL;
    rig_open(&r, &cfg, KB_ECONFIG);
    assert_null(r.chain);
    kb_http_close(r.http, NULL, NULL);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&r.loop), 0);
}

/* An id without a secret (environment, then profile) is a reason in the message, not a crash. */
static void test_chain_partial_keys_message(void **state)
{
    struct tmp t;
    struct rig r;
    struct got g = {0};

    tmp_init(&t, "[default]\naws_access_key_id = AKIAONLY\n", "");
    env_reset(t.cred, t.conf);
    setenv("AWS_ACCESS_KEY_ID", "AKIAENVONLY", 1);
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "no-slash", 1);
    rig_open(&r, NULL, 0);
    rig_get(&r, &g);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.err, KB_ENOCREDS);
    assert_non_null(strstr(g.message, "config: "));
    assert_non_null(strstr(g.message, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"));
    assert_non_null(strstr(g.message, "aws_access_key_id is set but aws_secret_access_key"));
    assert_non_null(strstr(g.message, "container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI does "
                                      "not start with '/'"));
    assert_non_null(strstr(g.message, "imds: disabled by AWS_EC2_METADATA_DISABLED"));
    rig_close(&r);
    tmp_cleanup(&t);
}

static void test_chain_destroy_cancels(void **state)
{
    struct rig r;
    struct got g = {0};

    env_reset("/dev/null", "/dev/null");
    setenv("AWS_ACCESS_KEY_ID", "AKIAENVTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    rig_open(&r, NULL, 0);
    rig_get(&r, &g);
    kb_creds_chain_destroy(r.chain);
    assert_int_equal(g.calls, 0);
    kb_http_close(r.http, NULL, NULL);
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.err, KB_ECANCELED);
    assert_int_equal(uv_loop_close(&r.loop), 0);
}

/* A callback that asks again, then still reads what it borrowed; another that destroys the
 * chain while a second caller waits. */
struct nested {
    struct kb_creds_chain *chain;
    struct got again;
    int calls;
    bool inside;
    char id_after[128];
};

static void on_creds_nested(void *ctx, int err, const struct kb_credentials *creds,
                            const char *message)
{
    struct nested *n = ctx;

    assert_false(n->inside);
    n->calls++;
    assert_int_equal(err, 0);
    n->inside = true;
    assert_int_equal(kb_creds_get(n->chain, on_creds, &n->again), 0);
    assert_int_equal(n->again.calls, 0); /* not from inside our callback */
    snprintf(n->id_after, sizeof(n->id_after), "%s", creds->access_key_id);
    assert_true(kb_secret_equals(creds->secret_access_key, SECRET, strlen(SECRET)));
    n->inside = false;
}

static void on_creds_destroy(void *ctx, int err, const struct kb_credentials *creds,
                             const char *message)
{
    struct nested *n = ctx;

    n->calls++;
    kb_creds_chain_destroy(n->chain);
}

static void test_chain_reentrant_callbacks(void **state)
{
    struct rig r;
    struct nested n = {0};
    struct got g = {0};

    env_reset("/dev/null", "/dev/null");
    setenv("AWS_ACCESS_KEY_ID", "AKIAENVTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    rig_open(&r, NULL, 0);
    n.chain = r.chain;
    assert_int_equal(kb_creds_get(r.chain, on_creds_nested, &n), 0);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(n.calls, 1);
    assert_string_equal(n.id_after, "AKIAENVTEST");
    assert_int_equal(n.again.calls, 1);
    assert_string_equal(n.again.id, "AKIAENVTEST");

    /* the first waiter destroys the chain: the second is canceled, nothing leaks */
    memset(&n, 0, sizeof(n));
    n.chain = r.chain;
    assert_int_equal(kb_creds_get(r.chain, on_creds_destroy, &n), 0);
    assert_int_equal(kb_creds_get(r.chain, on_creds, &g), 0);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(n.calls, 1);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.err, KB_ECANCELED);
    kb_http_close(r.http, NULL, NULL);
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&r.loop), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profile_default_and_named),
        cmocka_unit_test(test_profile_config_sections),
        cmocka_unit_test(test_profile_credentials_file_wins),
        cmocka_unit_test(test_profile_missing_secret),
        cmocka_unit_test(test_profile_long_values_and_comments),
        cmocka_unit_test(test_profile_malformed_and_missing_files),
        cmocka_unit_test(test_profile_paths),
        cmocka_unit_test(test_profile_region),
        cmocka_unit_test(test_process_json_good),
        cmocka_unit_test(test_process_json_rejects),
        cmocka_unit_test(test_container_and_imds_json),
        cmocka_unit_test(test_container_uri_allowlist),
        cmocka_unit_test(test_needs_refresh),
        cmocka_unit_test(test_credentials_copy),
        cmocka_unit_test(test_chain_env_then_cache),
        cmocka_unit_test(test_chain_explicit_and_partial),
        cmocka_unit_test(test_chain_partial_keys_message),
        cmocka_unit_test(test_chain_destroy_cancels),
        cmocka_unit_test(test_chain_reentrant_callbacks),
    };
    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
