/* test_log.c - the structured log: one JSON object per line (parsed back with json-c), field
 * order, escaping of hostile values, the level threshold, and level names. */
#include "kb_test.h"

#include <json-c/json.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"

struct lines {
    int count;
    char last[4096];
};

static void sink(void *ctx, const char *line, size_t len)
{
    struct lines *l = ctx;

    l->count++;
    assert_true(len < sizeof(l->last));
    memcpy(l->last, line, len);
    l->last[len] = '\0';
}

static int setup(void **state)
{
    kb_log_set_level(KB_LOG_INFO);
    return 0;
}

static int teardown(void **state)
{
    kb_log_set_sink(NULL, NULL);
    kb_log_set_level(KB_LOG_INFO);
    return 0;
}

static const char *s_get(struct json_object *o, const char *key)
{
    struct json_object *v;

    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static void test_one_object_per_line(void **state)
{
    struct lines l = {0};
    struct json_object *o;

    kb_log_set_sink(sink, &l);
    kb_log(KB_LOG_INFO, "step", "tenant", "billing", "step", "create-bucket", "result", "done",
           "request_id", "req-1", "message", NULL, NULL);
    assert_int_equal(l.count, 1);
    assert_null(strchr(l.last, '\n'));
    /* ts, level and event come first, then the pairs in order; a NULL value is left out */
    assert_memory_equal(l.last, "{\"ts\":\"", 7);
    assert_non_null(strstr(l.last,
                           "\",\"level\":\"info\",\"event\":\"step\",\"tenant\":\"billing\","
                           "\"step\":\"create-bucket\",\"result\":\"done\","
                           "\"request_id\":\"req-1\"}"));
    o = json_tokener_parse(l.last);
    assert_non_null(o);
    assert_string_equal(s_get(o, "tenant"), "billing");
    assert_null(s_get(o, "message"));
    /* "2026-11-28T01:02:03.456Z" */
    assert_int_equal(strlen(s_get(o, "ts")), 24);
    assert_int_equal(s_get(o, "ts")[10], 'T');
    assert_int_equal(s_get(o, "ts")[23], 'Z');
    json_object_put(o);
}

static void test_hostile_values_are_escaped(void **state)
{
    struct lines l = {0};
    struct json_object *o;
    const char *evil = "a\"b\\c\nd\x01{\"level\":\"error\"}/é";

    kb_log_set_sink(sink, &l);
    kb_log(KB_LOG_WARN, "drift", "message", evil, NULL);
    assert_null(strchr(l.last, '\n'));
    o = json_tokener_parse(l.last);
    assert_non_null(o);
    assert_string_equal(s_get(o, "message"), evil);
    assert_string_equal(s_get(o, "level"), "warn");
    assert_int_equal(json_object_object_length(o), 4);
    /* slashes are not escaped (JSON_C_TO_STRING_NOSLASHESCAPE) */
    assert_non_null(strstr(l.last, "}/"));
    json_object_put(o);
}

static void test_level_threshold(void **state)
{
    struct lines l = {0};

    kb_log_set_sink(sink, &l);
    kb_log(KB_LOG_DEBUG, "aws-call", "operation", "GetUser", NULL);
    assert_int_equal(l.count, 0);
    assert_false(kb_log_enabled(KB_LOG_DEBUG));
    kb_log_set_level(KB_LOG_DEBUG);
    kb_log(KB_LOG_DEBUG, "aws-call", "operation", "GetUser", NULL);
    assert_int_equal(l.count, 1);
    kb_log_set_level(KB_LOG_ERROR);
    kb_log(KB_LOG_WARN, "drift", NULL);
    kb_log(KB_LOG_INFO, "step", NULL);
    assert_int_equal(l.count, 1);
    kb_log(KB_LOG_ERROR, "tenant", NULL);
    assert_int_equal(l.count, 2);
    assert_non_null(strstr(l.last, "\"level\":\"error\",\"event\":\"tenant\"}"));
    assert_int_equal(kb_log_get_level(), KB_LOG_ERROR);
    kb_log_set_level((enum kb_log_level)42); /* ignored */
    assert_int_equal(kb_log_get_level(), KB_LOG_ERROR);
}

static void test_level_names(void **state)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    enum kb_log_level level;

    for (int i = 0; i < 4; i++) {
        assert_int_equal(kb_log_parse_level(names[i], &level), 0);
        assert_int_equal(level, i);
        assert_string_equal(kb_log_level_name(level), names[i]);
    }
    assert_int_equal(kb_log_parse_level("INFO", &level), KB_EINVAL);
    assert_int_equal(kb_log_parse_level("warning", &level), KB_EINVAL);
    assert_int_equal(kb_log_parse_level(NULL, &level), KB_EINVAL);
}

static void test_pairs_array(void **state)
{
    struct lines l = {0};
    const char *const pairs[] = {"a", "1", "b", NULL, "c", "3", NULL};

    kb_log_set_sink(sink, &l);
    kb_log_pairs(KB_LOG_INFO, NULL, pairs);
    assert_non_null(strstr(l.last, "\"event\":\"log\",\"a\":\"1\",\"c\":\"3\"}"));
}

int main(int argc, char **argv)
{
    /* One case per line: CMake registers each line as a test. */
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_object_per_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_values_are_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pairs_array, setup, teardown),
    };
    /* clang-format on */

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
