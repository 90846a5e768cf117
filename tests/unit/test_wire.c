/*
 * test_wire.c - the request checks the typed AWS calls share (broker/aws/wire.c): string bounds
 * and the tag rules every service applies before a request is built, and the two encoders of
 * key=value pairs (form bodies and S3 query strings).
 */
#include "kb_test.h"

#include <string.h>

#include "aws/wire.h"

static void test_str_ok(void **state)
{
    (void)state;
    assert_true(kb_wire_str_ok("a", 1));
    assert_false(kb_wire_str_ok("ab", 1));
    assert_false(kb_wire_str_ok("", 1));
    assert_false(kb_wire_str_ok(NULL, 1));
}

static void test_tags_ok(void **state)
{
    static struct kb_aws_tag many[KB_WIRE_MAX_TAGS + 1];
    static char key[KB_WIRE_MAX_TAG_KEY + 2], value[KB_WIRE_MAX_TAG_VALUE + 2];

    (void)state;
    for (size_t i = 0; i < KB_WIRE_MAX_TAGS + 1; i++)
        many[i] = (struct kb_aws_tag){"k", "v"};
    /* none: fine unless the call needs some */
    assert_true(kb_wire_tags_ok(NULL, 0, false));
    assert_false(kb_wire_tags_ok(NULL, 0, true));
    assert_false(kb_wire_tags_ok(NULL, 1, false));
    assert_true(kb_wire_tags_ok(many, KB_WIRE_MAX_TAGS, true));
    assert_false(kb_wire_tags_ok(many, KB_WIRE_MAX_TAGS + 1, false));
    /* a value may be empty, a key may not; both have a length bound */
    assert_true(kb_wire_tags_ok(&(struct kb_aws_tag){"k", ""}, 1, true));
    assert_false(kb_wire_tags_ok(&(struct kb_aws_tag){"", "v"}, 1, true));
    assert_false(kb_wire_tags_ok(&(struct kb_aws_tag){NULL, "v"}, 1, true));
    assert_false(kb_wire_tags_ok(&(struct kb_aws_tag){"k", NULL}, 1, true));
    memset(key, 'k', KB_WIRE_MAX_TAG_KEY);
    assert_true(kb_wire_tags_ok(&(struct kb_aws_tag){key, "v"}, 1, true));
    key[KB_WIRE_MAX_TAG_KEY] = 'k';
    assert_false(kb_wire_tags_ok(&(struct kb_aws_tag){key, "v"}, 1, true));
    memset(value, 'v', KB_WIRE_MAX_TAG_VALUE);
    assert_true(kb_wire_tags_ok(&(struct kb_aws_tag){"k", value}, 1, true));
    value[KB_WIRE_MAX_TAG_VALUE] = 'v';
    assert_false(kb_wire_tags_ok(&(struct kb_aws_tag){"k", value}, 1, true));
}

/* Strict where it matters: what the broker stores or hands out as an identity. */
static void test_identities(void **state)
{
    static const char *const ids_ok[] = {"AKIAIOSFODNN7EXAMPLE", "ASIA0123456789ABCDEF",
                                         "akia_lower_is_w_chars"};
    static const char *const ids_bad[] = {
        "",  "AKIA1", "AKIA IOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE\n", "AKIAIOSFODNN7-EXAMPLE",
        NULL};
    static const char *const arns_ok[] = {
        "arn:aws:iam::123456789012:user/keybroker/kb-a",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:keybroker/a-AbCdEf",
        "arn:aws-cn:s3:::bucket",
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "arn:aws:sts::123456789012:assumed-role/r/s",
    };
    static const char *const arns_bad[] = {
        "",
        "keybroker/a",
        "arn:aws:iam::123456789012",          /* no resource */
        "arn:aws:iam::123456789012:",         /* empty resource */
        "arn::iam::123456789012:user/a",      /* no partition */
        "arn:aws:iam::12345678901x:user/a",   /* account */
        "arn:aws:iam::123456789012:user/a b", /* space */
        "arn:AWS:iam::123456789012:user/a",   /* partition case */
        "arn:aws:iam::123456789012:user/a\x01",
        NULL,
    };

    (void)state;
    for (size_t i = 0; i < sizeof(ids_ok) / sizeof(ids_ok[0]); i++)
        assert_true(kb_wire_key_id_ok(ids_ok[i]));
    for (size_t i = 0; i < sizeof(ids_bad) / sizeof(ids_bad[0]); i++) {
        if (kb_wire_key_id_ok(ids_bad[i]))
            fail_msg("key id accepted: %s", ids_bad[i]);
    }
    for (size_t i = 0; i < sizeof(arns_ok) / sizeof(arns_ok[0]); i++) {
        if (!kb_wire_arn_ok(arns_ok[i]))
            fail_msg("ARN refused: %s", arns_ok[i]);
    }
    for (size_t i = 0; i < sizeof(arns_bad) / sizeof(arns_bad[0]); i++) {
        if (kb_wire_arn_ok(arns_bad[i]))
            fail_msg("ARN accepted: %s", arns_bad[i]);
    }
}

/* A form body writes a space '+' (as botocore; moto 5.2 refuses the signature of "%20" there); a
 * query string keeps "%20" (SigV4 reads '+' in a query literally). Everything else alike. */
static void test_form_and_query(void **state)
{
    static const char value[] = "a b+c/d=e&f%~";
    struct kb_wire_buf b;

    (void)state;
    kb_wire_buf_init(&b, false);
    kb_wire_form_add(&b, "Tags.member.1.Value", value);
    kb_wire_form_add(&b, "k y", NULL);
    assert_false(b.failed);
    assert_int_equal(b.len, strlen("Tags.member.1.Value=a+b%2Bc%2Fd%3De%26f%25~&k+y="));
    assert_memory_equal(b.ptr, "Tags.member.1.Value=a+b%2Bc%2Fd%3De%26f%25~&k+y=", b.len);
    kb_wire_buf_free(&b);

    kb_wire_buf_init(&b, false);
    kb_wire_query_add(&b, "prefix", value);
    kb_wire_query_add(&b, "k y", "");
    assert_false(b.failed);
    assert_int_equal(b.len, strlen("prefix=a%20b%2Bc%2Fd%3De%26f%25~&k%20y="));
    assert_memory_equal(b.ptr, "prefix=a%20b%2Bc%2Fd%3De%26f%25~&k%20y=", b.len);
    kb_wire_buf_free(&b);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_str_ok),
        cmocka_unit_test(test_tags_ok),
        cmocka_unit_test(test_identities),
        cmocka_unit_test(test_form_and_query),
    };
    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
