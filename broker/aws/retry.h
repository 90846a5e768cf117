/*
 * retry.h - AWS "standard" retry mode and the "adaptive" client-side rate limiter, as pure
 * functions over small state structs (botocore 1.43's botocore/retries/{standard,adaptive,
 * throttling,bucket}.py, transcribed).
 *
 * Nothing here reads a clock, draws a random number, sleeps or does I/O: the caller passes the
 * time (seconds, any monotonic origin) and a uniform random number in [0, 1), so every decision
 * can be tested exactly. The state structs are plain data owned by the caller (one quota per
 * client, one limiter per service); they are not thread-safe (one loop thread owns them).
 */
#ifndef KB_RETRY_H
#define KB_RETRY_H

#include <stdbool.h>
#include <stdint.h>

/* Total attempts of one call, the first included (botocore's DEFAULT_MAX_ATTEMPTS). */
#define KB_RETRY_DEFAULT_MAX_ATTEMPTS 3u
/* Full-jitter exponential backoff: random(0, 1) * base * 2^(attempt-1), at most 20 s. */
#define KB_RETRY_BASE_MS        1000u
#define KB_RETRY_MAX_BACKOFF_MS 20000u
/* The retry quota (botocore's RetryQuotaChecker): a bucket of 500 that a retry draws 5 from
 * (10 after a timeout) and a success refills (1, or the last retry's cost). */
#define KB_RETRY_QUOTA_CAPACITY     500u
#define KB_RETRY_COST               5u
#define KB_RETRY_TIMEOUT_COST       10u
#define KB_RETRY_NO_RETRY_INCREMENT 1u

enum kb_retry_class {
    KB_RETRY_SUCCESS,   /* a 2xx without an error code: nothing to retry */
    KB_RETRY_TRANSIENT, /* network error or timeout, HTTP 500/502/503/504, a transient code */
    KB_RETRY_THROTTLE,  /* a throttling code (Throttling, SlowDown, ...) */
    KB_RETRY_FINAL,     /* everything else (AccessDenied, NoSuchEntity, TLS failures, ...) */
};

/*
 * Classifies one attempt. err is 0 or KB_EAWS when an HTTP response arrived (status and code then
 * describe it; code may be NULL or ""), otherwise the transport's error: KB_ENET and KB_ETIMEDOUT
 * are transient; any other local error (KB_ETLS, KB_ETOOBIG, KB_ECANCELED, ...) is final — a
 * certificate that failed verification will fail again, unlike botocore which retries SSLError.
 */
enum kb_retry_class kb_retry_classify(int err, long status, const char *code);

/* Whether code is one of standard mode's throttling / transient error codes. NULL is neither. */
bool kb_retry_is_throttle_code(const char *code);
bool kb_retry_is_transient_code(const char *code);

/*
 * The delay before the next attempt after `attempt` attempts failed (attempt >= 1):
 * rand01 * base_ms * 2^(attempt - 1), capped at KB_RETRY_MAX_BACKOFF_MS (base_ms 0 means
 * KB_RETRY_BASE_MS). botocore's standard mode uses the same formula with base 1 s for throttling
 * and transient errors alike; rand01 is clamped into [0, 1].
 */
uint64_t kb_retry_backoff_ms(unsigned attempt, double rand01, uint64_t base_ms);

struct kb_retry_quota {
    unsigned capacity;
    unsigned available;
};

/* A full quota of capacity tokens (0: KB_RETRY_QUOTA_CAPACITY). */
void kb_retry_quota_init(struct kb_retry_quota *q, unsigned capacity);

/* Takes the cost of one retry (KB_RETRY_TIMEOUT_COST after a timeout, else KB_RETRY_COST).
 * Returns the cost taken, which the call remembers, or 0 when the quota is exhausted (do not
 * retry). */
unsigned kb_retry_quota_acquire(struct kb_retry_quota *q, bool timeout);

/* A call succeeded. last_cost is the cost of its last retry (0 when it needed none): that much
 * is given back, or KB_RETRY_NO_RETRY_INCREMENT when there was no retry. Never above capacity. */
void kb_retry_quota_success(struct kb_retry_quota *q, unsigned last_cost);

/*
 * Adaptive mode's client-side rate limiter for one service: a token bucket whose fill rate
 * follows CUBIC (drops to 0.7 x the measured send rate on throttling, then grows back along a
 * cubic curve) and a smoothed measurement of the rate of responses. It only delays requests once
 * a throttling error has been seen (enabled), like botocore's ClientRateLimiter.
 *
 * A waiting request takes no token in advance: botocore's waiters sleep on a condition and look
 * at the bucket again whenever the fill rate changes. Reserving a token at the rate of the moment
 * (a debt repaid at that rate, what this file did before) kept every later waiter on that rate's
 * schedule however fast the rate grew back: a burst of throttling errors with many requests in
 * flight (each one cuts the rate by 0.7, down to the 0.5/s floor) then left the queue crawling at
 * ~1/s for minutes. So kb_rate_limiter_take only takes a token that is there, and callers queue
 * (client.c), their head asking again when the rate changes.
 */
struct kb_rate_limiter {
    bool enabled;
    /* token bucket */
    double fill_rate, max_capacity, capacity, last_refill;
    bool refilled_once;
    /* CUBIC */
    double w_max, k, last_fail;
    /* rate clocker */
    double measured_rate, last_bucket, count;
};

/* A limiter that lets everything through until the first throttling error. */
void kb_rate_limiter_init(struct kb_rate_limiter *l, double now);

/*
 * Takes a send token if the bucket holds one: returns 0 (taken: the request may go now), or the
 * number of seconds until it will hold one at the current rate, taking nothing: ask again then
 * (or sooner, when the rate changed). Callers that wait keep their arrival order themselves and
 * let only the first of them ask. Always 0 while the limiter is not enabled.
 */
double kb_rate_limiter_take(struct kb_rate_limiter *l, double now);

/* The number of seconds kb_rate_limiter_take would answer now, taking nothing (0: a token is
 * there). */
double kb_rate_limiter_wait(struct kb_rate_limiter *l, double now);

/* Feeds the outcome of one response (throttled: a throttling error) into the rate. */
void kb_rate_limiter_update(struct kb_rate_limiter *l, bool throttled, double now);

/* The current send rate limit (requests per second). */
double kb_rate_limiter_rate(const struct kb_rate_limiter *l);

#endif
