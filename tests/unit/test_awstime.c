/*
 * test_awstime.c - the timestamp forms AWS implementations write (broker/aws/awstime.c): the table
 * of what is tolerated and what is refused, in strict and lenient mode.
 */
#include "kb_test.h"

#include <string.h>
#include <time.h>

#include "aws/awstime.h"
#include "common/err.h"

struct s_case {
    const char *text;
    long long strict;  /* -1: refused */
    long long lenient; /* -1: refused */
};

static void test_table(void **state)
{
    /* 2024-02-29T23:59:59Z is 1709251199. */
    static const struct s_case cases[] = {
        {"1970-01-01T00:00:00Z", 0, 0},
        {"2024-02-29T23:59:59Z", 1709251199, 1709251199},
        {"2024-02-29t23:59:59z", 1709251199, 1709251199},
        {"2024-02-29T23:59:59.999999Z", 1709251199, 1709251199},
        {"2024-03-01T01:29:59+0130", 1709251199, 1709251199},
        {"2024-02-29T18:59:59-05:00", 1709251199, 1709251199},
        {"2024-02-29T23:59:59+00:00", 1709251199, 1709251199},
        /* lenient only: what botocore also reads */
        {"2024-02-29T23:59:59", -1, 1709251199},       /* no zone: UTC */
        {"2024-02-29 23:59:59+00:00", -1, 1709251199}, /* Python's str(datetime), moto */
        {"2024-02-29 23:59:59.123456", -1, 1709251199},
        {"Thu, 29 Feb 2024 23:59:59 GMT", -1, 1709251199}, /* RFC 822 / HTTP date */
        {"29 Feb 2024 23:59:59 GMT", -1, 1709251199},
        {"Thu, 1 Feb 2024 00:00:00 +0000", -1, 1706745600},
        {"Thu, 29 Feb 2024 18:59:59 -0500", -1, 1709251199},
        {"1709251199", -1, 1709251199}, /* epoch seconds */
        {"1709251199.75", -1, 1709251199},
        /* refused everywhere: not a date */
        {"2023-02-29T00:00:00Z", -1, -1},
        {"2024-13-01T00:00:00Z", -1, -1},
        {"2024-01-01T24:00:00Z", -1, -1},
        {"2024-01-01T00:00:00.Z", -1, -1},
        {"24-01-01T00:00:00Z", -1, -1},
        {"2024-01-01T00:00:00Zjunk", -1, -1},
        {"2024-01-01T00:00:00+25:00", -1, -1},
        {"", -1, -1},
        {"yesterday", -1, -1},
        {"Thu, 30 Feb 2024 00:00:00 GMT", -1, -1},
        {"Thu, 29 Foo 2024 00:00:00 GMT", -1, -1},
        {"Thu, 29 Feb 2024 00:00:00 CET", -1, -1},
        {"1709251199x", -1, -1},
        {"99999999999999999999", -1, -1},
        {"-5", -1, -1},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int strict = 0; strict <= 1; strict++) {
            long long want = strict ? cases[i].strict : cases[i].lenient;
            time_t t = 12345;
            int rc = kb_awstime_parse(cases[i].text, strict != 0, &t);

            if (want < 0 && (rc != KB_EPARSE || t != 12345))
                fail_msg("%s mode accepted \"%s\"", strict ? "strict" : "lenient", cases[i].text);
            if (want >= 0 && (rc != 0 || (long long)t != want))
                fail_msg("%s mode read \"%s\" as rc %d, %lld (want %lld)",
                         strict ? "strict" : "lenient", cases[i].text, rc, (long long)t, want);
        }
    }
    assert_int_equal(kb_awstime_parse(NULL, false, &(time_t){0}), KB_EPARSE);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
    };
    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
