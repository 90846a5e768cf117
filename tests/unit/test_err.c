/* test_err.c - the error table names and describes keybroker codes and passes errno through. */
#include "kb_test.h"

#include <string.h>
#include <uv.h>

#include "common/err.h"

static void test_own_codes_have_names_and_messages(void **state)
{
    assert_string_equal(kb_err_name(KB_EAWS), "KB_EAWS");
    assert_string_equal(kb_strerror(KB_EAWS), "AWS returned an error");
    assert_string_equal(kb_err_name(KB_ETIMEDOUT), "KB_ETIMEDOUT");
}

static void test_errno_passes_through(void **state)
{
    assert_string_equal(kb_err_name(UV_ENOENT), "ENOENT");
    assert_string_equal(kb_strerror(UV_ECONNREFUSED), uv_strerror(UV_ECONNREFUSED));
}

static void test_unknown_code(void **state)
{
    assert_string_equal(kb_err_name(-99999), "KB_EUNKNOWN");
    assert_string_equal(kb_strerror(12345), "unknown error");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_codes_have_names_and_messages),
        cmocka_unit_test(test_errno_passes_through),
        cmocka_unit_test(test_unknown_code),
    };
    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
