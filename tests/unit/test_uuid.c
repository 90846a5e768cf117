/* test_uuid.c - RFC 4122 version 5 UUIDs, checked against Python's uuid.uuid5 (an independent
 * implementation) and the version/variant bits; the key-version id of keybroker. */
#include "kb_test.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/uuid.h"

static void test_rfc4122_dns_vector(void **state)
{
    unsigned char ns[16];
    char out[KB_UUID_STR_SIZE];

    /* uuid.uuid5(uuid.NAMESPACE_DNS, "python.org") */
    assert_int_equal(kb_uuid_parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8", ns), 0);
    assert_int_equal(kb_uuid_v5(ns, "python.org", 10, out), 0);
    assert_string_equal(out, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
}

static void test_key_version_vectors(void **state)
{
    char out[KB_UUID_STR_SIZE];

    /* uuid.uuid5(uuid.UUID(KB_UUID_NAMESPACE), "billing\nAKIAIOSFODNN7EXAMPLE") */
    assert_int_equal(kb_uuid_key_version("billing", "AKIAIOSFODNN7EXAMPLE", out), 0);
    assert_string_equal(out, "caaea976-19b8-5ec1-81d5-f5b2075c0370");
    /* one character of the key, or the case of the tenant, changes everything */
    assert_int_equal(kb_uuid_key_version("billing", "AKIAIOSFODNN7EXAMPLF", out), 0);
    assert_string_equal(out, "0f4ce2b2-a641-5572-b6c4-39cccd747cd0");
    assert_int_equal(kb_uuid_key_version("Billing", "AKIAIOSFODNN7EXAMPLE", out), 0);
    assert_string_equal(out, "38d31055-efbf-506e-9d72-f6de1bdd271b");
}

static void test_version_and_variant_bits(void **state)
{
    char out[KB_UUID_STR_SIZE];
    char key[32];

    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "AKIA%016d", i);
        assert_int_equal(kb_uuid_key_version("t", key, out), 0);
        assert_int_equal(strlen(out), 36);
        assert_int_equal(out[14], '5');
        assert_non_null(strchr("89ab", out[19]));
        assert_int_equal(out[8], '-');
        assert_int_equal(out[23], '-');
    }
}

static void test_parse_and_format(void **state)
{
    unsigned char u[16];
    char out[KB_UUID_STR_SIZE];

    assert_int_equal(kb_uuid_parse("8D3C1F6E-2B7A-4E95-A0D4-5C6F1E2B9A73", u), 0);
    kb_uuid_format(u, out);
    assert_string_equal(out, KB_UUID_NAMESPACE);
    assert_int_equal(kb_uuid_parse("8d3c1f6e-2b7a-4e95-a0d4-5c6f1e2b9a7", u), KB_EINVAL);
    assert_int_equal(kb_uuid_parse("8d3c1f6e-2b7a-4e95-a0d4-5c6f1e2b9a733", u), KB_EINVAL);
    assert_int_equal(kb_uuid_parse("8d3c1f6e+2b7a-4e95-a0d4-5c6f1e2b9a73", u), KB_EINVAL);
    assert_int_equal(kb_uuid_parse("8d3c1f6e-2b7a-4e95-a0d4-5c6f1e2b9a7g", u), KB_EINVAL);
    assert_int_equal(kb_uuid_parse(NULL, u), KB_EINVAL);
}

static void test_key_version_rejects(void **state)
{
    char out[KB_UUID_STR_SIZE];
    char big[1100];

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(kb_uuid_key_version(NULL, "AKIA", out), KB_EINVAL);
    assert_int_equal(kb_uuid_key_version("t", NULL, out), KB_EINVAL);
    assert_int_equal(kb_uuid_key_version("", "AKIA", out), KB_EINVAL);
    assert_int_equal(kb_uuid_key_version("t", "", out), KB_EINVAL);
    /* "a\nb" + "c" would collide with "a" + "b\nc" */
    assert_int_equal(kb_uuid_key_version("a\nb", "c", out), KB_EINVAL);
    assert_int_equal(kb_uuid_key_version(big, "AKIA", out), KB_EINVAL);
}

int main(int argc, char **argv)
{
    /* One case per line: CMake registers each line as a test. */
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4122_dns_vector),
        cmocka_unit_test(test_key_version_vectors),
        cmocka_unit_test(test_version_and_variant_bits),
        cmocka_unit_test(test_parse_and_format),
        cmocka_unit_test(test_key_version_rejects),
    };
    /* clang-format on */

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
