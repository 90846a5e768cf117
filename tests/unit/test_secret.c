/* test_secret.c - guarded secrets keep their bytes, compare in constant time and copy faithfully.
 */
#include "kb_test.h"

#include <string.h>

#include "common/secret.h"

static void test_roundtrip(void **state)
{
    const char *v = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    struct kb_secret *s = kb_secret_new(v, strlen(v));
    size_t len = 0;

    assert_non_null(s);
    assert_int_equal(kb_secret_len(s), strlen(v));
    assert_string_equal(kb_secret_open(s, &len), v);
    assert_int_equal(len, strlen(v));
    /* nested opens keep the bytes readable until the last close */
    assert_string_equal(kb_secret_open(s, NULL), v);
    kb_secret_close(s);
    assert_string_equal(kb_secret_open(s, NULL), v);
    kb_secret_close(s);
    kb_secret_close(s);
    kb_secret_destroy(s);
}

static void test_equals_and_dup(void **state)
{
    struct kb_secret *s = kb_secret_new("abc", 3);
    struct kb_secret *d = kb_secret_dup(s);

    assert_true(kb_secret_equals(s, "abc", 3));
    assert_false(kb_secret_equals(s, "abd", 3));
    assert_false(kb_secret_equals(s, "abcd", 4));
    assert_true(kb_secret_equals(d, "abc", 3));
    kb_secret_destroy(s);
    kb_secret_destroy(d);
    kb_secret_destroy(NULL);
}

static void test_empty(void **state)
{
    struct kb_secret *s = kb_secret_new("", 0);

    assert_non_null(s);
    assert_int_equal(kb_secret_len(s), 0);
    assert_string_equal(kb_secret_open(s, NULL), "");
    kb_secret_close(s);
    kb_secret_destroy(s);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_equals_and_dup),
        cmocka_unit_test(test_empty),
    };
    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
