/*
 * sigv4_bench.c - SigV4 signatures per second on one core, for a typical small request.
 *
 * Signs the same GET (three headers, a two-parameter query, empty body) over and over for a fixed
 * time in each mode and prints one machine-readable line per mode:
 *   bench=sigv4 mode=<m> iterations=<n> seconds=<wall> cpu_seconds=<cpu> sigs_per_sec=<n/wall>
 *   sigs_per_cpu_sec=<n/cpu> ns_per_sig=<cpu/n>
 * The CPU-time figures (user + system: the mprotect calls count) are the ones to compare on a
 * shared machine; wall-clock ones drop whenever another process takes the core.
 * Modes: warm (signing key cached), cold (cache cleared before every signature, so each one
 * derives the key: 4 more HMACs and opening the secret), warm_token (with a session token, which
 * is opened from guarded memory on every call) and presign (query signing, warm). Lines starting
 * with '#' are comments. Usage: bench_sigv4 [seconds per mode, default 2] [mode...] (default:
 * every mode).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/secret.h"
#include "aws/sigv4.h"

#define B_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define B_TOKEN                                                                                    \
    "IQoJb3JpZ2luX2VjEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIY" \
    "Rq"                                                                                           \
    "TflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5V"

enum b_mode { B_WARM, B_COLD, B_WARM_TOKEN, B_PRESIGN };

static const char *const b_mode_names[] = {"warm", "cold", "warm_token", "presign"};

static double b_now(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int b_run(enum b_mode mode, double duration, struct kb_secret *secret,
                 struct kb_secret *token)
{
    static const struct kb_sigv4_header headers[] = {
        {"Host", "sts.us-east-1.amazonaws.com"},
        {"Accept", "application/xml"},
        {"User-Agent", "keybroker/0.1.0"},
    };
    const struct kb_sigv4_request req = {
        .method = "GET",
        .path = "/",
        .query = "Action=GetCallerIdentity&Version=2011-06-15",
        .headers = headers,
        .header_count = sizeof(headers) / sizeof(headers[0]),
        .payload = KB_SIGV4_PAYLOAD_BODY,
    };
    struct kb_sigv4_credentials creds = {"AKIDEXAMPLE", secret, NULL};
    struct kb_sigv4_params params = {&creds, "us-east-1", "sts", (time_t)1440938160, {0}};
    struct kb_sigv4_signer *sg = NULL;
    struct kb_sigv4_result res;
    char first[65];
    unsigned long n = 0, i;
    double start, cpu_start, elapsed, cpu;
    int rc;

    kb_sigv4_options_for_service(&params.options, "sts");
    if (mode == B_WARM_TOKEN)
        creds.session_token = token;
    if (mode == B_PRESIGN)
        params.options.presign = true;
    rc = kb_sigv4_signer_new(&sg);
    if (rc != 0)
        return rc;
    /* one untimed signature warms the cache and the buffers and gives the reference result */
    rc = kb_sigv4_sign(sg, &req, &params, &res);
    if (rc != 0)
        goto out;
    memcpy(first, res.signature, sizeof(first));
    start = b_now(CLOCK_MONOTONIC);
    cpu_start = b_now(CLOCK_PROCESS_CPUTIME_ID);
    do {
        for (i = 0; i < 256; i++) {
            if (mode == B_COLD)
                kb_sigv4_signer_clear_cache(sg);
            rc = kb_sigv4_sign(sg, &req, &params, &res);
            if (rc != 0)
                goto out;
        }
        n += i;
        elapsed = b_now(CLOCK_MONOTONIC) - start;
    } while (elapsed < duration);
    cpu = b_now(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
    if (strcmp(first, res.signature) != 0) {
        fprintf(stderr, "bench_sigv4: signature changed between iterations\n");
        rc = KB_EINVAL;
        goto out;
    }
    printf("bench=sigv4 mode=%s iterations=%lu seconds=%.3f cpu_seconds=%.3f sigs_per_sec=%.0f "
           "sigs_per_cpu_sec=%.0f ns_per_sig=%.1f\n",
           b_mode_names[mode], n, elapsed, cpu, (double)n / elapsed, (double)n / cpu,
           cpu * 1e9 / (double)n);
out:
    kb_sigv4_signer_destroy(sg);
    return rc;
}

static bool b_selected(int argc, char **argv, int mode)
{
    int i;

    if (argc <= 2)
        return true;
    for (i = 2; i < argc; i++)
        if (strcmp(argv[i], b_mode_names[mode]) == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    double duration = 2.0;
    struct kb_secret *secret, *token;
    char *end;
    int mode, rc = 0;

    if (argc > 1) {
        duration = strtod(argv[1], &end);
        if (*end != '\0' || !(duration > 0.0 && duration <= 600.0)) {
            fprintf(stderr, "usage: %s [seconds per mode, default 2] [mode...]\n", argv[0]);
            return 2;
        }
    }
    secret = kb_secret_new(B_SECRET, strlen(B_SECRET));
    token = kb_secret_new(B_TOKEN, strlen(B_TOKEN));
    if (secret == NULL || token == NULL) {
        fprintf(stderr, "bench_sigv4: cannot allocate guarded memory\n");
        return 1;
    }
    printf("# bench_sigv4: GET sts / with 3 headers and a 2-parameter query, %.1f s per mode\n",
           duration);
    for (mode = B_WARM; mode <= B_PRESIGN && rc == 0; mode++)
        if (b_selected(argc, argv, mode))
            rc = b_run((enum b_mode)mode, duration, secret, token);
    if (rc != 0)
        fprintf(stderr, "bench_sigv4: %s\n", kb_strerror(rc));
    kb_secret_destroy(token);
    kb_secret_destroy(secret);
    return rc == 0 ? 0 : 1;
}
