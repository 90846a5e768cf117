/*
 * http_bench.c - signed AWS calls per second through kb_aws_client (libcurl multi on libuv,
 * connections reused), against whatever AWS_ENDPOINT_URL points at (bench/run_http_bench.sh
 * starts a fakeaws on loopback and compares with one curl process per call).
 *
 * Usage: bench_http N K — N STS GetCallerIdentity calls with at most K in flight, after K
 * untimed warm-up calls (which open the connections). Credentials, region and endpoint come from
 * the environment as for the broker. Prints one machine-readable line:
 *   bench=http mode=client calls=N in_flight=K ok=M seconds=S cpu_seconds=C calls_per_sec=R
 *   p50_ms=.. p99_ms=.. connections_new=.. reused=..
 * Exit status 1 when a call failed (a benchmark of failures is no benchmark).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "aws/client.h"
#include "common/err.h"

struct b_run {
    uv_loop_t loop;
    struct kb_aws_client *client;
    struct kb_aws_request req;
    unsigned total, started, done, ok, in_flight, max_in_flight;
    uint64_t *start_ns;
    double *latency_ms;
    int first_err;
};

static const struct kb_http_header b_headers[] = {
    {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
static const char b_body[] = "Action=GetCallerIdentity&Version=2011-06-15";

static void b_start_more(struct b_run *r);

struct b_slot {
    struct b_run *r;
    unsigned index;
};

static void b_on_call(void *ctx, const struct kb_aws_error *err, const struct kb_aws_response *resp)
{
    struct b_slot *s = ctx;
    struct b_run *r = s->r;

    r->latency_ms[s->index] = (double)(uv_hrtime() - r->start_ns[s->index]) / 1e6;
    r->done++;
    r->in_flight--;
    if (resp != NULL)
        r->ok++;
    else if (r->first_err == 0)
        r->first_err = err->err;
    free(s);
    b_start_more(r);
}

static void b_start_more(struct b_run *r)
{
    while (r->started < r->total && r->in_flight < r->max_in_flight) {
        struct b_slot *s = malloc(sizeof(*s));

        if (s == NULL || kb_aws_client_send(r->client, &r->req, b_on_call, s) != 0) {
            free(s);
            r->first_err = KB_ENOMEM;
            r->total = r->started;
            return;
        }
        s->r = r;
        s->index = r->started;
        r->start_ns[r->started++] = uv_hrtime();
        r->in_flight++;
    }
}

static double b_cpu(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int b_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Runs n calls with k in flight; returns the elapsed seconds. */
static double b_phase(struct b_run *r, unsigned n, unsigned k)
{
    uint64_t t0 = uv_hrtime();

    r->total = n;
    r->started = r->done = r->ok = 0;
    r->max_in_flight = k;
    b_start_more(r);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    return (double)(uv_hrtime() - t0) / 1e9;
}

static unsigned b_arg(const char *s)
{
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);

    return end != s && *end == '\0' && v > 0 && v <= 10000000 ? (unsigned)v : 0;
}

int main(int argc, char **argv)
{
    struct b_run r;
    struct kb_aws_client_config cfg;
    struct kb_http_stats st;
    char errbuf[256];
    unsigned n, k;
    double secs, cpu;
    int rc;

    n = argc > 2 ? b_arg(argv[1]) : 0;
    k = argc > 2 ? b_arg(argv[2]) : 0;
    if (n == 0 || k == 0) {
        fprintf(stderr, "usage: bench_http N K\n");
        return 2;
    }
    memset(&r, 0, sizeof(r));
    memset(&cfg, 0, sizeof(cfg));
    cfg.max_connections = k < 64 ? (long)k : 64;
    r.start_ns = calloc(n + k, sizeof(*r.start_ns));
    r.latency_ms = calloc(n + k, sizeof(*r.latency_ms));
    if (r.start_ns == NULL || r.latency_ms == NULL || uv_loop_init(&r.loop) != 0)
        return 2;
    rc = kb_aws_client_new(&r.loop, &cfg, &r.client, errbuf, sizeof(errbuf));
    if (rc != 0) {
        fprintf(stderr, "bench_http: %s: %s\n", kb_err_name(rc), errbuf);
        return 2;
    }
    r.req.service = KB_AWS_STS;
    r.req.operation = "GetCallerIdentity";
    r.req.method = "POST";
    r.req.headers = b_headers;
    r.req.header_count = 1;
    r.req.body = b_body;
    r.req.body_len = strlen(b_body);
    b_phase(&r, k, k); /* warm-up: opens the connections, fetches the credentials */
    cpu = b_cpu();
    secs = b_phase(&r, n, k);
    cpu = b_cpu() - cpu;
    kb_http_stats(kb_aws_client_http(r.client), &st);
    qsort(r.latency_ms, n, sizeof(double), b_cmp);
    printf("bench=http mode=client calls=%u in_flight=%u ok=%u seconds=%.3f cpu_seconds=%.3f "
           "calls_per_sec=%.1f p50_ms=%.2f p99_ms=%.2f connections_new=%lu reused=%lu\n",
           n, k, r.ok, secs, cpu, (double)r.ok / secs, r.latency_ms[n / 2],
           r.latency_ms[(size_t)((double)n * 0.99)], st.connections_new, st.reused);
    if (r.first_err != 0)
        fprintf(stderr, "bench_http: a call failed: %s\n", kb_err_name(r.first_err));
    kb_aws_client_close(r.client, NULL, NULL);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    uv_loop_close(&r.loop);
    free(r.start_ns);
    free(r.latency_ms);
    return r.ok == n ? 0 : 1;
}
