/* test_retry.c - standard-mode classification, backoff, retry quota and the adaptive limiter. */
#include "kb_test.h"

#include <math.h>
#include <string.h>

#include "common/err.h"
#include "aws/retry.h"

struct case_row {
    int err;
    long status;
    const char *code;
    enum kb_retry_class want;
};

static void test_classification_table(void **state)
{
    static const struct case_row rows[] = {
        {0, 200, NULL, KB_RETRY_SUCCESS},
        {0, 204, "", KB_RETRY_SUCCESS},
        {KB_EAWS, 500, "InternalFailure", KB_RETRY_TRANSIENT},
        {KB_EAWS, 500, "ServiceFailure", KB_RETRY_TRANSIENT},
        {KB_EAWS, 502, "", KB_RETRY_TRANSIENT},
        {KB_EAWS, 503, "ServiceUnavailable", KB_RETRY_TRANSIENT},
        {KB_EAWS, 504, "GatewayTimeout", KB_RETRY_TRANSIENT},
        {KB_EAWS, 501, "NotImplemented", KB_RETRY_FINAL},
        {KB_EAWS, 400, "RequestTimeout", KB_RETRY_TRANSIENT},
        {KB_EAWS, 400, "RequestTimeoutException", KB_RETRY_TRANSIENT},
        {KB_EAWS, 400, "Throttling", KB_RETRY_THROTTLE},
        {KB_EAWS, 400, "ThrottlingException", KB_RETRY_THROTTLE},
        {KB_EAWS, 503, "SlowDown", KB_RETRY_THROTTLE},
        {KB_EAWS, 429, "TooManyRequestsException", KB_RETRY_THROTTLE},
        {KB_EAWS, 400, "RequestLimitExceeded", KB_RETRY_THROTTLE},
        {KB_EAWS, 400, "LimitExceededException", KB_RETRY_THROTTLE},
        {KB_EAWS, 400, "PriorRequestNotComplete", KB_RETRY_THROTTLE},
        {KB_EAWS, 403, "AccessDenied", KB_RETRY_FINAL},
        {KB_EAWS, 404, "NoSuchEntity", KB_RETRY_FINAL},
        {KB_EAWS, 409, "EntityAlreadyExists", KB_RETRY_FINAL},
        {KB_EAWS, 400, "ValidationError", KB_RETRY_FINAL},
        {KB_EAWS, 403, "SignatureDoesNotMatch", KB_RETRY_FINAL},
        {KB_EAWS, 404, "NotFound", KB_RETRY_FINAL},
        {KB_EAWS, 200, "InternalError", KB_RETRY_FINAL}, /* an error document with a 200 */
        {KB_ENET, 0, NULL, KB_RETRY_TRANSIENT},
        {KB_ETIMEDOUT, 0, NULL, KB_RETRY_TRANSIENT},
        {KB_ETLS, 0, NULL, KB_RETRY_FINAL},
        {KB_ETOOBIG, 200, NULL, KB_RETRY_FINAL},
        {KB_ECANCELED, 0, NULL, KB_RETRY_FINAL},
        {KB_ENOMEM, 0, NULL, KB_RETRY_FINAL},
        {KB_EPARSE, 200, NULL, KB_RETRY_FINAL},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        enum kb_retry_class got = kb_retry_classify(rows[i].err, rows[i].status, rows[i].code);

        if (got != rows[i].want)
            fail_msg("row %zu (%s %ld %s): got %d, want %d", i, kb_err_name(rows[i].err),
                     rows[i].status, rows[i].code ? rows[i].code : "NULL", got, rows[i].want);
    }
    assert_true(kb_retry_is_throttle_code("EC2ThrottledException"));
    assert_false(kb_retry_is_throttle_code("throttling")); /* exact, case-sensitive */
    assert_false(kb_retry_is_throttle_code(NULL));
    assert_true(kb_retry_is_transient_code("PriorRequestNotComplete"));
    assert_false(kb_retry_is_transient_code(""));
}

static void test_backoff_bounds(void **state)
{
    static const double rands[] = {0.0, 0.25, 0.5, 0.999999, 1.0};
    uint64_t prev_max = 0;

    for (unsigned a = 1; a <= 40; a++) {
        uint64_t ceiling = a <= 5 ? 1000u << (a - 1) : KB_RETRY_MAX_BACKOFF_MS;
        uint64_t top = kb_retry_backoff_ms(a, 0.999999, 0);

        for (size_t i = 0; i < sizeof(rands) / sizeof(rands[0]); i++) {
            uint64_t d = kb_retry_backoff_ms(a, rands[i], 0);

            assert_true(d <= KB_RETRY_MAX_BACKOFF_MS);
            assert_true(d <= ceiling);
        }
        /* the upper end doubles until it reaches the 20 s cap, and never shrinks */
        assert_true(top >= prev_max);
        assert_true(top + 1 >= (ceiling * 999u) / 1000u);
        prev_max = top;
    }
    assert_int_equal(kb_retry_backoff_ms(1, 0.0, 0), 0);
    assert_int_equal(kb_retry_backoff_ms(1, 0.5, 0), 500);
    assert_int_equal(kb_retry_backoff_ms(2, 0.5, 0), 1000);
    assert_int_equal(kb_retry_backoff_ms(3, 0.5, 0), 2000);
    assert_int_equal(kb_retry_backoff_ms(6, 1.0, 0), 20000);
    assert_int_equal(kb_retry_backoff_ms(1000000, 1.0, 0), 20000);
    assert_int_equal(kb_retry_backoff_ms(2, 1.0, 50), 100); /* a shorter base */
    assert_int_equal(kb_retry_backoff_ms(1, 5.0, 0), 1000); /* rand clamped into [0, 1] */
    assert_int_equal(kb_retry_backoff_ms(1, -1.0, 0), 0);
    assert_int_equal(kb_retry_backoff_ms(1, NAN, 0), 0);
    assert_int_equal(kb_retry_backoff_ms(0, 1.0, 0), 1000); /* attempt 0 is treated as 1 */
    assert_int_equal(kb_retry_backoff_ms(3, 1.0, 1000000), 20000);
}

static void test_quota_exhaustion_stops_retries(void **state)
{
    struct kb_retry_quota q;
    unsigned granted = 0;

    kb_retry_quota_init(&q, 0);
    assert_int_equal(q.available, KB_RETRY_QUOTA_CAPACITY);
    while (kb_retry_quota_acquire(&q, false) == KB_RETRY_COST)
        granted++;
    assert_int_equal(granted, KB_RETRY_QUOTA_CAPACITY / KB_RETRY_COST);
    assert_int_equal(q.available, 0);
    assert_int_equal(kb_retry_quota_acquire(&q, false), 0);
    assert_int_equal(kb_retry_quota_acquire(&q, true), 0);

    /* successes without retries refill one token each; a retry needs five */
    for (int i = 0; i < 4; i++)
        kb_retry_quota_success(&q, 0);
    assert_int_equal(kb_retry_quota_acquire(&q, false), 0);
    kb_retry_quota_success(&q, 0);
    assert_int_equal(kb_retry_quota_acquire(&q, false), KB_RETRY_COST);
    /* a timeout costs ten */
    kb_retry_quota_init(&q, 12);
    assert_int_equal(kb_retry_quota_acquire(&q, true), KB_RETRY_TIMEOUT_COST);
    assert_int_equal(q.available, 2);
    assert_int_equal(kb_retry_quota_acquire(&q, true), 0);
    assert_int_equal(kb_retry_quota_acquire(&q, false), 0);
}

static void test_quota_refund_after_success(void **state)
{
    struct kb_retry_quota q;
    unsigned cost;

    kb_retry_quota_init(&q, 0);
    cost = kb_retry_quota_acquire(&q, false);
    cost = kb_retry_quota_acquire(&q, true); /* the call's last retry was after a timeout */
    assert_int_equal(q.available, 500 - 5 - 10);
    kb_retry_quota_success(&q, cost); /* gives back the last retry's cost */
    assert_int_equal(q.available, 500 - 5);
    kb_retry_quota_success(&q, 0);
    assert_int_equal(q.available, 500 - 4);
    for (int i = 0; i < 100; i++)
        kb_retry_quota_success(&q, KB_RETRY_TIMEOUT_COST);
    assert_int_equal(q.available, 500); /* never above capacity */
}

static void test_adaptive_off_until_throttled(void **state)
{
    struct kb_rate_limiter l;

    kb_rate_limiter_init(&l, 100.0);
    for (int i = 0; i < 1000; i++) {
        assert_true(kb_rate_limiter_take(&l, 100.0) == 0.0);
        kb_rate_limiter_update(&l, false, 100.0 + i * 0.001);
    }
    assert_false(l.enabled);
}

/* Sends as fast as the limiter allows (responses arrive at once) from t0 to t1, every response
 * throttled or none. Returns the number of requests sent. */
static unsigned drive(struct kb_rate_limiter *l, double t0, double t1, double offered_rate,
                      bool throttled)
{
    double next = t0;
    unsigned sent = 0;

    for (double t = t0; t < t1; t += 1.0 / offered_rate) {
        double wait;

        if (t < next)
            continue;
        wait = kb_rate_limiter_take(l, t);
        if (wait > 0.0) {
            next = t + wait;
            continue;
        }
        kb_rate_limiter_update(l, throttled, t);
        sent++;
    }
    return sent;
}

static void test_adaptive_lowers_rate_and_recovers(void **state)
{
    struct kb_rate_limiter l;
    double before, after, recovered;
    unsigned sent_slow, sent_fast;

    kb_rate_limiter_init(&l, 0.0);
    drive(&l, 0.0, 10.0, 20.0, false); /* 20 requests/s, no throttling */
    before = l.measured_rate;
    assert_true(before > 15.0 && before < 25.0);
    kb_rate_limiter_update(&l, true, 10.0); /* throttled */
    assert_true(l.enabled);
    after = kb_rate_limiter_rate(&l);
    assert_true(after < before * 0.8);
    assert_true(after >= 0.5);
    /* right after throttling, a burst is spread out at the lowered rate */
    sent_slow = drive(&l, 10.0, 11.0, 200.0, false);
    /* (the bucket still holds up to `after` tokens, then refills at a rate climbing back
     * towards the old one): far below the 200 offered */
    assert_true(sent_slow <= (unsigned)(2.0 * before));
    /* then the rate grows back along the cubic curve, past where it was */
    drive(&l, 11.0, 40.0, 200.0, false);
    recovered = kb_rate_limiter_rate(&l);
    assert_true(recovered > before);
    sent_fast = drive(&l, 40.0, 41.0, 200.0, false);
    assert_true(sent_fast >= 190); /* no longer limiting the 200 offered */
}

/* A waiter takes nothing in advance: asking again gives the same wait, the token goes to whoever
 * asks once it is there, and the bucket never goes into debt. */
static void test_adaptive_take_reserves_nothing(void **state)
{
    struct kb_rate_limiter l;
    double rate, w1, w2;

    kb_rate_limiter_init(&l, 0.0);
    kb_rate_limiter_update(&l, true, 0.0); /* throttled at once: the minimum rate */
    rate = kb_rate_limiter_rate(&l);
    assert_true(fabs(rate - 0.5) < 1e-9);
    w1 = kb_rate_limiter_take(&l, 0.0);
    w2 = kb_rate_limiter_take(&l, 0.0);
    assert_true(fabs(w1 - 2.0) < 1e-9); /* one token at 0.5/s */
    assert_true(fabs(w2 - w1) < 1e-9);  /* the first ask reserved nothing */
    assert_true(fabs(kb_rate_limiter_wait(&l, 1.5) - 0.5) < 1e-9);
    assert_true(kb_rate_limiter_take(&l, 2.0) == 0.0); /* there now: taken */
    assert_true(fabs(kb_rate_limiter_take(&l, 2.0) - 2.0) < 1e-9);
    assert_true(l.capacity >= 0.0);
}

/* The wait follows the rate: a waiter told "2 s" at the floor rate goes sooner once responses
 * have raised the rate, instead of keeping the schedule of the moment it asked. */
static void test_adaptive_wait_follows_a_rising_rate(void **state)
{
    struct kb_rate_limiter l;
    double slow, fast;

    kb_rate_limiter_init(&l, 0.0);
    kb_rate_limiter_update(&l, true, 0.0);
    slow = kb_rate_limiter_take(&l, 0.0);
    assert_true(fabs(slow - 2.0) < 1e-9);
    /* responses of earlier requests arrive over the next second and a half, two per 0.5 s
     * bucket: the measured rate and with it the allowed rate (<= 2x measured) grow */
    for (int i = 1; i <= 6; i++)
        kb_rate_limiter_update(&l, false, 0.25 * i);
    assert_true(kb_rate_limiter_rate(&l) > 1.0);
    fast = kb_rate_limiter_wait(&l, 1.5);
    assert_true(fast < 0.5); /* due before the 2 s the first answer said */
}

/*
 * The rotation bench in miniature: CLIENTS closed-loop callers (each sends its next request when
 * the previous one answered, a throttled one again after a 0.5 s backoff) behind one limiter and
 * its arrival-order queue (client.c's), against a server with a token bucket of 20/s and a burst
 * of 20, 50 ms from request to response. All start at once while the limiter is off, so the
 * server throttles all but 20 of the first burst. The server must stay busy: over 60 s it can
 * accept 20 + 60 x 20 requests; the limiter must not let the throughput fall far below that.
 * (With tokens reserved in advance, as this limiter did before, the same simulation accepted
 * 263 of the 1,220: 22%.)
 */
#define SIM_CLIENTS 64
static unsigned simulate_closed_loop(double seconds, unsigned *throttled_out)
{
    const double latency = 0.05, backoff = 0.5, srv_rate = 20.0, srv_burst = 20.0;
    double ready[SIM_CLIENTS];  /* when each client has a request for the limiter; -1: none */
    double answer[SIM_CLIENTS]; /* when its request in flight answers; -1: none in flight */
    double arrived[SIM_CLIENTS];
    bool will_throttle[SIM_CLIENTS];
    double srv_tokens = srv_burst, srv_stamp = 0.0, head_at = 0.0, now = 0.0;
    unsigned accepted = 0, throttled = 0;
    struct kb_rate_limiter l;

    kb_rate_limiter_init(&l, 0.0);
    for (int i = 0; i < SIM_CLIENTS; i++) {
        ready[i] = 0.0;
        arrived[i] = 0.0;
        answer[i] = -1.0;
    }
    while (now < seconds) {
        int head = -1, resp = -1;
        double next = seconds;

        /* the queue's head: the longest-waiting ready request */
        for (int i = 0; i < SIM_CLIENTS; i++) {
            if (ready[i] >= 0.0 && ready[i] <= now && (head < 0 || arrived[i] < arrived[head]))
                head = i;
        }
        if (head >= 0 && head_at <= now) {
            double wait = kb_rate_limiter_take(&l, now);

            if (wait == 0.0) {
                srv_tokens += (now - srv_stamp) * srv_rate;
                if (srv_tokens > srv_burst)
                    srv_tokens = srv_burst;
                srv_stamp = now;
                will_throttle[head] = srv_tokens < 1.0;
                if (!will_throttle[head])
                    srv_tokens -= 1.0;
                answer[head] = now + latency;
                ready[head] = -1.0;
                continue; /* the next head may go at the same instant */
            }
            head_at = now + wait + 0.001; /* client.c's timer: whole ms, one more */
        }
        /* the next event: a response, a request becoming ready, the head's next ask */
        for (int i = 0; i < SIM_CLIENTS; i++) {
            if (answer[i] >= 0.0 && answer[i] < next) {
                next = answer[i];
                resp = i;
            }
            if (ready[i] > now && ready[i] < next) {
                next = ready[i];
                resp = -1;
            }
        }
        if (head >= 0 && head_at > now && head_at < next) {
            next = head_at;
            resp = -1;
        }
        now = next;
        if (resp >= 0 && answer[resp] == now) {
            kb_rate_limiter_update(&l, will_throttle[resp], now);
            head_at = now; /* the rate changed: the head asks again */
            answer[resp] = -1.0;
            if (will_throttle[resp]) {
                throttled++;
                ready[resp] = now + backoff;
            } else {
                accepted++;
                ready[resp] = now;
            }
            arrived[resp] = ready[resp];
        }
    }
    *throttled_out = throttled;
    return accepted;
}

static void test_adaptive_keeps_a_rate_limited_server_busy(void **state)
{
    unsigned throttled, accepted = simulate_closed_loop(60.0, &throttled);
    unsigned most = 20 + 60 * 20;

    assert_true(accepted <= most);
    assert_true(accepted >= most * 95 / 100);
    assert_true(throttled >= SIM_CLIENTS - 20); /* the first burst, before the limiter is on */
    assert_true(throttled < 150);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classification_table),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_quota_exhaustion_stops_retries),
        cmocka_unit_test(test_quota_refund_after_success),
        cmocka_unit_test(test_adaptive_off_until_throttled),
        cmocka_unit_test(test_adaptive_lowers_rate_and_recovers),
        cmocka_unit_test(test_adaptive_take_reserves_nothing),
        cmocka_unit_test(test_adaptive_wait_follows_a_rising_rate),
        cmocka_unit_test(test_adaptive_keeps_a_rate_limited_server_busy),
    };
    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
