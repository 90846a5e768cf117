/*
 * retry.c - AWS "standard" retry classification, backoff and quota, and "adaptive" mode's
 * client-side rate limiter (botocore 1.43: retries/standard.py, retries/adaptive.py,
 * retries/throttling.py, retries/bucket.py; code lists from models/standard-retry-codes.txt).
 *
 * Pure: no clock, no randomness, no I/O (see retry.h). Must never sleep or allocate.
 */
#include "aws/retry.h"

#include <stddef.h>
#include <string.h>

#include "common/err.h"

/* CubicCalculator and ClientRateLimiter constants. */
#define S_CUBIC_SCALE    0.4
#define S_CUBIC_BETA     0.7
#define S_MIN_FILL_RATE  0.5
#define S_MAX_RATE_SCALE 2.0
/* RateClocker: exponential smoothing of the rate measured in half-second buckets. */
#define S_SMOOTHING    0.8
#define S_BUCKET_SCALE 2.0 /* 1 / 0.5 s */

/* kb_aws links no libm, and these two are all the maths the limiter needs. */
static double s_floor(double x)
{
    double t = (double)(int64_t)x;

    return t > x ? t - 1.0 : t;
}

/* Cube root of x >= 0 by Newton's method (converges in a few dozen steps from x + 1). */
static double s_cbrt(double x)
{
    double y = x + 1.0;

    if (x <= 0.0)
        return 0.0;
    for (int i = 0; i < 200; i++) {
        double next = y - (y * y * y - x) / (3.0 * y * y);

        if (next == y)
            break;
        y = next;
    }
    return y;
}

static const char *const s_throttle_codes[] = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
};

static const char *const s_transient_codes[] = {
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
};

static bool s_in(const char *code, const char *const *list, size_t n)
{
    if (code == NULL || code[0] == '\0')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(code, list[i]) == 0)
            return true;
    }
    return false;
}

bool kb_retry_is_throttle_code(const char *code)
{
    return s_in(code, s_throttle_codes, sizeof(s_throttle_codes) / sizeof(s_throttle_codes[0]));
}

bool kb_retry_is_transient_code(const char *code)
{
    return s_in(code, s_transient_codes, sizeof(s_transient_codes) / sizeof(s_transient_codes[0]));
}

enum kb_retry_class kb_retry_classify(int err, long status, const char *code)
{
    bool has_code = code != NULL && code[0] != '\0';

    if (err == KB_ENET || err == KB_ETIMEDOUT)
        return KB_RETRY_TRANSIENT;
    if (err != 0 && err != KB_EAWS)
        return KB_RETRY_FINAL;
    if (status >= 200 && status < 300 && !has_code)
        return KB_RETRY_SUCCESS;
    if (kb_retry_is_throttle_code(code))
        return KB_RETRY_THROTTLE;
    if (kb_retry_is_transient_code(code))
        return KB_RETRY_TRANSIENT;
    if (status == 500 || status == 502 || status == 503 || status == 504)
        return KB_RETRY_TRANSIENT;
    return KB_RETRY_FINAL;
}

uint64_t kb_retry_backoff_ms(unsigned attempt, double rand01, uint64_t base_ms)
{
    double ceiling, delay;

    if (base_ms == 0)
        base_ms = KB_RETRY_BASE_MS;
    if (!(rand01 >= 0.0)) /* also NaN */
        rand01 = 0.0;
    if (rand01 > 1.0)
        rand01 = 1.0;
    if (attempt < 1)
        attempt = 1;
    ceiling = (double)base_ms;
    for (unsigned i = 1; i < attempt && ceiling < (double)KB_RETRY_MAX_BACKOFF_MS; i++)
        ceiling *= 2.0;
    if (ceiling > (double)KB_RETRY_MAX_BACKOFF_MS)
        ceiling = (double)KB_RETRY_MAX_BACKOFF_MS;
    delay = rand01 * ceiling;
    return (uint64_t)delay;
}

void kb_retry_quota_init(struct kb_retry_quota *q, unsigned capacity)
{
    q->capacity = capacity > 0 ? capacity : KB_RETRY_QUOTA_CAPACITY;
    q->available = q->capacity;
}

unsigned kb_retry_quota_acquire(struct kb_retry_quota *q, bool timeout)
{
    unsigned cost = timeout ? KB_RETRY_TIMEOUT_COST : KB_RETRY_COST;

    if (q->available < cost)
        return 0;
    q->available -= cost;
    return cost;
}

void kb_retry_quota_success(struct kb_retry_quota *q, unsigned last_cost)
{
    unsigned add = last_cost > 0 ? last_cost : KB_RETRY_NO_RETRY_INCREMENT;

    q->available = q->capacity - q->available < add ? q->capacity : q->available + add;
}

/* -- adaptive mode ------------------------------------------------------------------------- */

static double s_cubic_zero_point(double w_max)
{
    return s_cbrt(w_max * (1.0 - S_CUBIC_BETA) / S_CUBIC_SCALE);
}

static void s_bucket_refill(struct kb_rate_limiter *l, double now)
{
    if (!l->refilled_once) {
        l->refilled_once = true;
        l->last_refill = now;
        return;
    }
    if (now > l->last_refill) {
        l->capacity += (now - l->last_refill) * l->fill_rate;
        if (l->capacity > l->max_capacity)
            l->capacity = l->max_capacity;
        l->last_refill = now;
    }
}

/* TokenBucket.max_rate's setter. */
static void s_bucket_set_rate(struct kb_rate_limiter *l, double rate, double now)
{
    if (rate < S_MIN_FILL_RATE)
        rate = S_MIN_FILL_RATE;
    s_bucket_refill(l, now);
    l->fill_rate = rate;
    l->max_capacity = rate >= 1.0 ? rate : 1.0;
    if (l->capacity > l->max_capacity)
        l->capacity = l->max_capacity;
}

/* RateClocker.record(): the smoothed rate of responses. */
static double s_clock_record(struct kb_rate_limiter *l, double now)
{
    double bucket = s_floor(now * S_BUCKET_SCALE) / S_BUCKET_SCALE;

    l->count += 1.0;
    if (bucket > l->last_bucket) {
        double current = l->count / (bucket - l->last_bucket);

        l->measured_rate = current * S_SMOOTHING + l->measured_rate * (1.0 - S_SMOOTHING);
        l->count = 0.0;
        l->last_bucket = bucket;
    }
    return l->measured_rate;
}

void kb_rate_limiter_init(struct kb_rate_limiter *l, double now)
{
    memset(l, 0, sizeof(*l));
    /* botocore: CubicCalculator(starting_max_rate=0), TokenBucket(max_rate=1),
     * RateClocker's first bucket at floor(now). */
    l->w_max = 0.0;
    l->k = s_cubic_zero_point(0.0);
    l->last_fail = now;
    l->last_bucket = s_floor(now);
    s_bucket_set_rate(l, 1.0, now);
}

double kb_rate_limiter_wait(struct kb_rate_limiter *l, double now)
{
    if (!l->enabled)
        return 0.0;
    s_bucket_refill(l, now);
    return l->capacity >= 1.0 ? 0.0 : (1.0 - l->capacity) / l->fill_rate;
}

double kb_rate_limiter_take(struct kb_rate_limiter *l, double now)
{
    double wait = kb_rate_limiter_wait(l, now);

    if (l->enabled && wait == 0.0)
        l->capacity -= 1.0;
    return wait;
}

void kb_rate_limiter_update(struct kb_rate_limiter *l, bool throttled, double now)
{
    double measured = s_clock_record(l, now), rate;

    if (!throttled) {
        double dt = now - l->last_fail - l->k;

        rate = S_CUBIC_SCALE * dt * dt * dt + l->w_max;
    } else {
        double current = l->enabled && l->fill_rate < measured ? l->fill_rate : measured;

        l->w_max = current;
        l->k = s_cubic_zero_point(current);
        l->last_fail = now;
        rate = current * S_CUBIC_BETA;
        l->enabled = true;
    }
    if (rate > S_MAX_RATE_SCALE * measured)
        rate = S_MAX_RATE_SCALE * measured;
    s_bucket_set_rate(l, rate, now);
}

double kb_rate_limiter_rate(const struct kb_rate_limiter *l)
{
    return l->fill_rate;
}
