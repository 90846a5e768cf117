/*
 * itest_transport.c - drives the AWS transport (http, retry, endpoints, error parsing, client)
 * against fakeaws for tests/integration/test_transport.py.
 *
 * Usage: itest_transport SCENARIO [ARGS...], with the AWS environment (AWS_ENDPOINT_URL,
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_CA_BUNDLE ...) set by the test.
 * KB_ITEST_RETRY_BASE_MS shortens the backoff base, KB_ITEST_MAX_CONNECTIONS caps connections.
 * Scenarios:
 *   sts N K                N GetCallerIdentity calls, at most K in flight (K 0: all at once)
 *   iam-get-user NAME      a raw Query GetUser (the typed calls live elsewhere)
 *   sm-describe NAME       a raw JSON DescribeSecret
 *   s3-head BUCKET         HeadBucket (an error has no body)
 *   s3-put BUCKET KEY [unsigned]  PutObject "hello world" (UNSIGNED-PAYLOAD when asked)
 *   skew SECONDS           GetCallerIdentity with the clock offset set to SECONDS first
 *   bad-creds              GetCallerIdentity signed with explicit, unknown credentials
 *   cancel N               starts N calls and closes the client at once
 *   http-toobig MAX        kb_http directly: a response larger than MAX bytes
 *   http-cancel N          kb_http directly: N requests canceled by kb_http_close
 * Prints one JSON object per finished call, then a summary line; never a secret. Exit status 0
 * when the scenario ran (whatever the calls' outcomes), 2 on a usage or setup error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "aws/client.h"
#include "common/err.h"
#include "aws/http.h"
#include "common/secret.h"

struct t_run {
    uv_loop_t loop;
    struct kb_aws_client *client;
    struct kb_aws_request req;
    unsigned total, started, done, ok, max_in_flight, in_flight, peak;
    uint64_t t0;
    bool closed;
};

/* Prints s as a JSON string. */
static void t_json_str(const char *s)
{
    putchar('"');
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void t_print_result(const struct kb_aws_error *err, const struct kb_aws_response *resp)
{
    if (resp != NULL) {
        printf("{\"ok\":true,\"status\":%ld,\"attempts\":%u,\"request_id\":", resp->status,
               resp->attempts);
        t_json_str(resp->request_id);
        printf(",\"body_len\":%zu,\"has_arn\":%s}\n", resp->body_len,
               strstr(resp->body, "<Arn>") != NULL ? "true" : "false");
        return;
    }
    printf("{\"ok\":false,\"err\":\"%s\",\"status\":%ld,\"attempts\":%u,\"code\":",
           kb_err_name(err->err), err->status, err->attempts);
    t_json_str(err->code);
    printf(",\"message\":");
    t_json_str(err->message);
    printf(",\"request_id\":");
    t_json_str(err->request_id);
    printf(",\"operation\":");
    t_json_str(err->operation);
    printf("}\n");
}

static void t_start_more(struct t_run *r);

static void t_on_call(void *ctx, const struct kb_aws_error *err, const struct kb_aws_response *resp)
{
    struct t_run *r = ctx;

    r->done++;
    r->in_flight--;
    if (resp != NULL)
        r->ok++;
    t_print_result(err, resp);
    if (!r->closed)
        t_start_more(r);
}

static void t_start_more(struct t_run *r)
{
    while (r->started < r->total && (r->max_in_flight == 0 || r->in_flight < r->max_in_flight)) {
        int rc = kb_aws_client_send(r->client, &r->req, t_on_call, r);

        if (rc != 0) {
            printf("{\"send_error\":\"%s\"}\n", kb_err_name(rc));
            r->total = r->started;
            break;
        }
        r->started++;
        r->in_flight++;
        if (r->in_flight > r->peak)
            r->peak = r->in_flight;
    }
}

static void t_on_closed(void *ctx)
{
    struct t_run *r = ctx;

    r->client = NULL;
}

static unsigned long t_env_ul(const char *name, unsigned long dflt)
{
    const char *v = getenv(name);
    char *end = NULL;
    unsigned long n;

    if (v == NULL || v[0] == '\0')
        return dflt;
    n = strtoul(v, &end, 10);
    return end != v && *end == '\0' ? n : dflt;
}

static int t_client(struct t_run *r)
{
    struct kb_aws_client_config cfg;
    char errbuf[256];
    int rc;

    memset(&cfg, 0, sizeof(cfg));
    cfg.retry_base_ms = (unsigned)t_env_ul("KB_ITEST_RETRY_BASE_MS", 0);
    cfg.max_connections = (long)t_env_ul("KB_ITEST_MAX_CONNECTIONS", 0);
    cfg.total_timeout_ms = (long)t_env_ul("KB_ITEST_TIMEOUT_MS", 0);
    rc = kb_aws_client_new(&r->loop, &cfg, &r->client, errbuf, sizeof(errbuf));
    if (rc != 0) {
        printf("{\"setup_error\":\"%s\",\"message\":", kb_err_name(rc));
        t_json_str(errbuf);
        printf("}\n");
    }
    return rc;
}

static void t_summary(struct t_run *r, struct kb_http_stats *st)
{
    printf("{\"summary\":true,\"calls\":%u,\"done\":%u,\"ok\":%u,\"peak_in_flight\":%u,"
           "\"requests\":%lu,\"connections_new\":%lu,\"reused\":%lu,\"elapsed_ms\":%llu}\n",
           r->total, r->done, r->ok, r->peak, st->requests, st->connections_new, st->reused,
           (unsigned long long)((uv_hrtime() - r->t0) / 1000000u));
}

/* Runs the calls described by r->req to the end, then closes the client. */
static int t_run_calls(struct t_run *r, bool cancel)
{
    struct kb_http_stats st;

    r->t0 = uv_hrtime();
    t_start_more(r);
    if (cancel) {
        r->closed = true;
        kb_http_stats(kb_aws_client_http(r->client), &st);
        kb_aws_client_close(r->client, t_on_closed, r);
    }
    uv_run(&r->loop, UV_RUN_DEFAULT);
    if (!cancel) {
        kb_http_stats(kb_aws_client_http(r->client), &st);
        r->closed = true;
        kb_aws_client_close(r->client, t_on_closed, r);
        uv_run(&r->loop, UV_RUN_DEFAULT);
    }
    t_summary(r, &st);
    return r->client == NULL ? 0 : 2;
}

static const struct kb_http_header t_form[] = {
    {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
static const struct kb_http_header t_sm[] = {{"Content-Type", "application/x-amz-json-1.1"},
                                             {"X-Amz-Target", "secretsmanager.DescribeSecret"}};

static const struct kb_http_header t_text[] = {{"Content-Type", "text/plain"}};

static int t_aws_scenario(struct t_run *r, int argc, char **argv)
{
    static char body[512], path[256];
    const char *sc = argv[1];
    struct kb_credentials bad;
    int rc;

    r->total = 1;
    r->req.method = "POST";
    r->req.path = "/";
    if (strcmp(sc, "sts") == 0 || strcmp(sc, "skew") == 0 || strcmp(sc, "bad-creds") == 0 ||
        strcmp(sc, "cancel") == 0) {
        r->req.service = KB_AWS_STS;
        r->req.operation = "GetCallerIdentity";
        r->req.headers = t_form;
        r->req.header_count = 1;
        snprintf(body, sizeof(body), "Action=GetCallerIdentity&Version=2011-06-15");
        if (strcmp(sc, "sts") == 0 || strcmp(sc, "cancel") == 0)
            r->total = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 1;
        if (strcmp(sc, "sts") == 0)
            r->max_in_flight = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 0;
    } else if (strcmp(sc, "iam-get-user") == 0 && argc > 2) {
        r->req.service = KB_AWS_IAM;
        r->req.operation = "GetUser";
        r->req.headers = t_form;
        r->req.header_count = 1;
        snprintf(body, sizeof(body), "Action=GetUser&UserName=%s&Version=2010-05-08", argv[2]);
    } else if (strcmp(sc, "sm-describe") == 0 && argc > 2) {
        r->req.service = KB_AWS_SECRETSMANAGER;
        r->req.operation = "DescribeSecret";
        r->req.headers = t_sm;
        r->req.header_count = 2;
        snprintf(body, sizeof(body), "{\"SecretId\":\"%s\"}", argv[2]);
    } else if (strcmp(sc, "s3-head") == 0 && argc > 2) {
        r->req.service = KB_AWS_S3;
        r->req.operation = "HeadBucket";
        r->req.method = "HEAD";
        r->req.bucket = argv[2];
        body[0] = '\0';
    } else if (strcmp(sc, "s3-put") == 0 && argc > 3) {
        r->req.service = KB_AWS_S3;
        r->req.operation = "PutObject";
        r->req.method = "PUT";
        r->req.bucket = argv[2];
        snprintf(path, sizeof(path), "/%s", argv[3]);
        r->req.path = path;
        r->req.headers = t_text;
        r->req.header_count = 1;
        r->req.unsigned_payload = argc > 4 && strcmp(argv[4], "unsigned") == 0;
        snprintf(body, sizeof(body), "hello world");
    } else {
        return 2;
    }
    r->req.body = body;
    r->req.body_len = strlen(body);
    if (t_client(r) != 0)
        return 2;
    if (strcmp(sc, "skew") == 0)
        kb_aws_client_set_clock_offset(r->client, argc > 2 ? strtol(argv[2], NULL, 10) : 0);
    if (strcmp(sc, "bad-creds") == 0) {
        memset(&bad, 0, sizeof(bad));
        snprintf(bad.access_key_id, sizeof(bad.access_key_id), "AKIAUNKNOWN000000000");
        bad.secret_access_key = kb_secret_new("not-a-real-secret-0000000000000000000000", 40);
        snprintf(bad.source, sizeof(bad.source), "config");
        r->req.credentials = &bad;
    }
    rc = t_run_calls(r, strcmp(sc, "cancel") == 0);
    if (strcmp(sc, "skew") == 0)
        printf("{\"clock_offset_learnt\":true}\n");
    if (strcmp(sc, "bad-creds") == 0)
        kb_secret_destroy(bad.secret_access_key);
    return rc;
}

/* -- kb_http directly ----------------------------------------------------------------------- */

struct t_http {
    unsigned done;
    struct kb_http *h;
};

static void t_on_http(void *ctx, const struct kb_http_response *resp)
{
    struct t_http *t = ctx;

    t->done++;
    printf("{\"http\":true,\"err\":\"%s\",\"status\":%ld,\"body_len\":%zu}\n",
           resp->err != 0 ? kb_err_name(resp->err) : "", resp->status, resp->body_len);
}

static void t_on_http_closed(void *ctx)
{
    struct t_http *t = ctx;

    t->h = NULL;
    printf("{\"http_closed\":true,\"done\":%u}\n", t->done);
}

static int t_http_scenario(struct t_run *r, int argc, char **argv)
{
    const char *endpoint = getenv("AWS_ENDPOINT_URL");
    struct kb_http_options o = {0};
    struct t_http t = {0};
    struct kb_http_request req = {0};
    char url[512];
    unsigned n = 1;
    bool cancel = strcmp(argv[1], "http-cancel") == 0;

    if (endpoint == NULL || argc < 3)
        return 2;
    if (cancel)
        n = (unsigned)strtoul(argv[2], NULL, 10);
    else
        o.max_response = strtoul(argv[2], NULL, 10);
    o.ca_bundle = getenv("AWS_CA_BUNDLE");
    if (kb_http_new(&r->loop, &o, &t.h) != 0)
        return 2;
    snprintf(url, sizeof(url), "%s/_fakeaws/state", endpoint);
    req.method = "GET";
    req.url = url;
    for (unsigned i = 0; i < n; i++) {
        if (kb_http_send(t.h, &req, t_on_http, &t) != 0)
            return 2;
    }
    printf("{\"sent\":%u,\"in_flight\":%zu,\"done_before_run\":%u}\n", n, kb_http_in_flight(t.h),
           t.done);
    if (cancel)
        kb_http_close(t.h, t_on_http_closed, &t);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    if (!cancel) {
        kb_http_close(t.h, t_on_http_closed, &t);
        uv_run(&r->loop, UV_RUN_DEFAULT);
    }
    return t.h == NULL ? 0 : 2;
}

int main(int argc, char **argv)
{
    struct t_run r;
    int rc;

    if (argc < 2) {
        fprintf(stderr, "usage: itest_transport SCENARIO [ARGS...]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    memset(&r, 0, sizeof(r));
    if (uv_loop_init(&r.loop) != 0)
        return 2;
    if (strncmp(argv[1], "http-", 5) == 0)
        rc = t_http_scenario(&r, argc, argv);
    else
        rc = t_aws_scenario(&r, argc, argv);
    if (rc == 2 && r.client == NULL && r.started == 0)
        fprintf(stderr, "itest_transport: bad scenario or setup\n");
    uv_run(&r.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&r.loop) != 0) {
        fprintf(stderr, "itest_transport: handles left open\n");
        return 3;
    }
    return rc;
}
