/* test_server_limits.c - the socket server's line framer and per-uid token bucket. */
#include "kb_test.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "server/server_limits.h"

#define MAX_LINES 64

/* Collects the lines a feed delivers. stop_after > 0: the callback returns 7 on that line. */
struct lines {
    char *text[MAX_LINES];
    size_t count;
    size_t stop_after;
};

static int on_line(void *ctx, const char *line, size_t len)
{
    struct lines *l = ctx;
    char *copy = malloc(len + 1);

    assert_non_null(copy);
    assert_true(l->count < MAX_LINES);
    memcpy(copy, line, len);
    copy[len] = '\0';
    l->text[l->count++] = copy;
    return l->stop_after != 0 && l->count == l->stop_after ? 7 : 0;
}

static void lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->text[i]);
    memset(l, 0, sizeof(*l));
}

static int feed(struct kb_server_framer *f, const char *s, size_t max, struct lines *l)
{
    return kb_server_framer_feed(f, s, strlen(s), max, on_line, l);
}

static void test_whole_lines_in_one_read(void **state)
{
    struct kb_server_framer f = {0};
    struct lines l = {0};

    assert_int_equal(feed(&f, "a\nbb\n\nccc\r\n", 100, &l), 0);
    assert_int_equal(l.count, 4);
    assert_string_equal(l.text[0], "a");
    assert_string_equal(l.text[1], "bb");
    assert_string_equal(l.text[2], "");
    assert_string_equal(l.text[3], "ccc\r"); /* the codec treats '\r' as whitespace */
    assert_int_equal(f.len, 0);
    assert_null(f.buf); /* whole lines are delivered in place, nothing copied */
    lines_free(&l);
    kb_server_framer_cleanup(&f);
}

static void test_line_split_across_reads(void **state)
{
    struct kb_server_framer f = {0};
    struct lines l = {0};

    assert_int_equal(feed(&f, "{\"v\":", 100, &l), 0);
    assert_int_equal(l.count, 0);
    assert_int_equal(f.len, 5);
    assert_int_equal(feed(&f, "1,\"op\"", 100, &l), 0);
    assert_int_equal(feed(&f, ":\"list\"}\nnext", 100, &l), 0);
    assert_int_equal(l.count, 1);
    assert_string_equal(l.text[0], "{\"v\":1,\"op\":\"list\"}");
    assert_int_equal(f.len, 4);
    assert_int_equal(feed(&f, "\n", 100, &l), 0);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.text[1], "next");
    lines_free(&l);
    kb_server_framer_cleanup(&f);
}

static void test_byte_at_a_time(void **state)
{
    const char *text = "first line\nsecond\n";
    struct kb_server_framer f = {0};
    struct lines l = {0};

    for (size_t i = 0; i < strlen(text); i++)
        assert_int_equal(kb_server_framer_feed(&f, text + i, 1, 100, on_line, &l), 0);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.text[0], "first line");
    assert_string_equal(l.text[1], "second");
    lines_free(&l);
    kb_server_framer_cleanup(&f);
}

/* The limit counts the '\n': a line of max-1 bytes fits, one of max bytes does not. */
static void test_limit_is_exact(void **state)
{
    struct kb_server_framer f = {0};
    struct lines l = {0};
    char buf[16];

    memset(buf, 'x', 9);
    buf[9] = '\n';
    buf[10] = '\0';
    assert_int_equal(feed(&f, buf, 10, &l), 0); /* 9 bytes + '\n' = 10 */
    assert_int_equal(l.count, 1);
    memset(buf, 'y', 10);
    buf[10] = '\n';
    buf[11] = '\0';
    assert_int_equal(feed(&f, buf, 10, &l), KB_ETOOBIG);
    assert_int_equal(l.count, 1);
    assert_int_equal(f.len, 0);
    lines_free(&l);
    kb_server_framer_cleanup(&f);
}

/* A partial line that reaches the limit is refused before its newline arrives, so a peer that
 * never sends one cannot make the framer grow. */
static void test_overlong_partial_refused_early(void **state)
{
    struct kb_server_framer f = {0};
    struct lines l = {0};
    char chunk[33];

    memset(chunk, 'z', 32);
    chunk[32] = '\0';
    assert_int_equal(feed(&f, "ok\n", 100, &l), 0);
    assert_int_equal(feed(&f, chunk, 100, &l), 0);
    assert_int_equal(feed(&f, chunk, 100, &l), 0);
    assert_int_equal(feed(&f, chunk, 100, &l), 0); /* 96 bytes, no newline yet */
    assert_true(f.cap <= 256);
    assert_int_equal(feed(&f, "zzzz", 100, &l), KB_ETOOBIG); /* 100 without '\n' */
    assert_int_equal(l.count, 1);
    assert_null(f.buf);
    lines_free(&l);
    kb_server_framer_cleanup(&f);
}

/* An overlong line in the same read as good ones: the good ones before it are delivered. */
static void test_overlong_after_good_lines(void **state)
{
    struct kb_server_framer f = {0};
    struct lines l = {0};
    char buf[64];

    memcpy(buf, "a\nb\n", 4);
    memset(buf + 4, 'q', 30);
    memcpy(buf + 34, "\nc\n", 4);
    assert_int_equal(kb_server_framer_feed(&f, buf, 37, 20, on_line, &l), KB_ETOOBIG);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.text[1], "b");
    lines_free(&l);
    kb_server_framer_cleanup(&f);
}

/* A carried partial that becomes too long when its end arrives. */
static void test_overlong_carried_line(void **state)
{
    struct kb_server_framer f = {0};
    struct lines l = {0};

    assert_int_equal(feed(&f, "12345", 8, &l), 0);
    assert_int_equal(feed(&f, "67\n", 8, &l), 0); /* 7 + '\n' = 8 fits */
    assert_int_equal(l.count, 1);
    assert_string_equal(l.text[0], "1234567");
    assert_int_equal(feed(&f, "12345", 8, &l), 0);
    assert_int_equal(feed(&f, "678\n", 8, &l), KB_ETOOBIG); /* 8 + '\n' = 9 */
    assert_int_equal(l.count, 1);
    lines_free(&l);
    kb_server_framer_cleanup(&f);
}

static void test_callback_stops_feed(void **state)
{
    struct kb_server_framer f = {0};
    struct lines l = {.stop_after = 2};

    assert_int_equal(feed(&f, "1\n2\n3\n4", 100, &l), 7);
    assert_int_equal(l.count, 2);
    assert_int_equal(f.len, 0); /* the rest is discarded */
    lines_free(&l);
    kb_server_framer_cleanup(&f);
}

/* After a big carried line the buffer is released, so an idle connection stays small. */
static void test_big_buffer_released(void **state)
{
    struct kb_server_framer f = {0};
    struct lines l = {0};
    size_t n = 60000;
    char *big = malloc(n + 1);

    assert_non_null(big);
    memset(big, 'b', n);
    big[n] = '\0';
    assert_int_equal(feed(&f, big, 65536, &l), 0);
    assert_true(f.cap >= n);
    assert_int_equal(feed(&f, "\n", 65536, &l), 0);
    assert_int_equal(l.count, 1);
    assert_int_equal(strlen(l.text[0]), n);
    assert_null(f.buf);
    assert_int_equal(f.cap, 0);
    free(big);
    lines_free(&l);
    kb_server_framer_cleanup(&f);
    kb_server_framer_cleanup(NULL);
}

/* -- token bucket ------------------------------------------------------------------------------ */

static void test_bucket_burst_then_refill(void **state)
{
    struct kb_server_bucket b;

    kb_server_bucket_init(&b, 5, 1000);
    for (int i = 0; i < 5; i++)
        assert_true(kb_server_bucket_take(&b, 5, 5, 1000));
    assert_false(kb_server_bucket_take(&b, 5, 5, 1000));
    /* 5 per second: one token every 200 ms */
    assert_false(kb_server_bucket_take(&b, 5, 5, 1199));
    assert_true(kb_server_bucket_take(&b, 5, 5, 1200));
    assert_false(kb_server_bucket_take(&b, 5, 5, 1200));
    assert_false(kb_server_bucket_full(&b, 5, 5, 1500));
    assert_true(kb_server_bucket_full(&b, 5, 5, 2200));
    /* a long pause refills to the burst, not beyond */
    for (int i = 0; i < 5; i++)
        assert_true(kb_server_bucket_take(&b, 5, 5, 100000));
    assert_false(kb_server_bucket_take(&b, 5, 5, 100000));
}

static void test_bucket_fractional_refill(void **state)
{
    struct kb_server_bucket b;

    kb_server_bucket_init(&b, 1, 0);
    assert_true(kb_server_bucket_take(&b, 3, 1, 0));
    /* 3 per second = a token per 333.3 ms, accumulated across calls */
    assert_false(kb_server_bucket_take(&b, 3, 1, 200));
    assert_false(kb_server_bucket_take(&b, 3, 1, 333));
    assert_true(kb_server_bucket_take(&b, 3, 1, 334));
}

static void test_bucket_clock_backwards(void **state)
{
    struct kb_server_bucket b;

    kb_server_bucket_init(&b, 1, 5000);
    assert_true(kb_server_bucket_take(&b, 1, 1, 5000));
    assert_false(kb_server_bucket_take(&b, 1, 1, 1000)); /* earlier: nothing refilled */
    assert_false(kb_server_bucket_take(&b, 1, 1, 5999));
    assert_true(kb_server_bucket_take(&b, 1, 1, 6000));
}

static void test_bucket_large_values(void **state)
{
    struct kb_server_bucket b;

    kb_server_bucket_init(&b, 100000, 0);
    for (int i = 0; i < 100000; i++)
        assert_true(kb_server_bucket_take(&b, 100000, 100000, 0));
    assert_false(kb_server_bucket_take(&b, 100000, 100000, 0));
    assert_true(kb_server_bucket_take(&b, 100000, 100000, UINT64_MAX / 2));
    assert_true(kb_server_bucket_full(&b, 100000, 100000, UINT64_MAX));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_lines_in_one_read),
        cmocka_unit_test(test_line_split_across_reads),
        cmocka_unit_test(test_byte_at_a_time),
        cmocka_unit_test(test_limit_is_exact),
        cmocka_unit_test(test_overlong_partial_refused_early),
        cmocka_unit_test(test_overlong_after_good_lines),
        cmocka_unit_test(test_overlong_carried_line),
        cmocka_unit_test(test_callback_stops_feed),
        cmocka_unit_test(test_big_buffer_released),
        cmocka_unit_test(test_bucket_burst_then_refill),
        cmocka_unit_test(test_bucket_fractional_refill),
        cmocka_unit_test(test_bucket_clock_backwards),
        cmocka_unit_test(test_bucket_large_values),
    };

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
