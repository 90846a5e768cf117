/*
 * test_codec.c - the request parser of the wire protocol codec (proto/codec.c): every op parses,
 * and every malformed input gets its stable error code. The formatters and the reply parser
 * (proto/codec_format.c) are tested in test_codec_format.c.
 */
#include "kb_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb_codec_test.h"

/* -- helpers ---------------------------------------------------------------------------------- */

static int s_parse(const char *line)
{
    return s_parse_len(line, strlen(line));
}

static void s_ok(const char *line)
{
    int rc = s_parse(line);

    if (rc != 0)
        print_message("refused: %s -> %s: %s\n", line, kb_proto_err_name(s_err.code),
                      s_err.message);
    assert_int_equal(rc, 0);
}

/* -- every op parses ----------------------------------------------------------------------------
 */

static void test_parse_get(void **state)
{
    s_ok("{\"v\":1,\"id\":\"a1\",\"op\":\"get\",\"tenant\":\"billing\"}");
    assert_int_equal(s_req.op, KB_PROTO_OP_GET);
    assert_string_equal(s_req.id, "\"a1\"");
    assert_true(s_req.has_tenant);
    assert_string_equal(s_req.tenant, "billing");
    assert_int_equal(s_req.tenant_count, 0);
}

static void test_parse_list_and_metrics(void **state)
{
    s_ok("{\"v\":1,\"op\":\"list\"}");
    assert_int_equal(s_req.op, KB_PROTO_OP_LIST);
    assert_string_equal(s_req.id, "null");
    assert_false(s_req.has_tenant);
    s_ok("{\"op\":\"metrics\",\"v\":1,\"id\":7}");
    assert_int_equal(s_req.op, KB_PROTO_OP_METRICS);
    assert_string_equal(s_req.id, "7");
}

static void test_parse_status_and_provision(void **state)
{
    s_ok("{\"v\":1,\"op\":\"status\"}");
    assert_int_equal(s_req.op, KB_PROTO_OP_STATUS);
    assert_false(s_req.has_tenant);
    s_ok("{\"v\":1,\"op\":\"status\",\"tenant\":\"a.b@c\"}");
    assert_true(s_req.has_tenant);
    assert_string_equal(s_req.tenant, "a.b@c");
    s_ok("{\"v\":1,\"op\":\"provision\"}");
    assert_int_equal(s_req.op, KB_PROTO_OP_PROVISION);
    assert_false(s_req.has_tenant);
    s_ok("{\"v\":1,\"op\":\"provision\",\"tenant\":\"x-1_2+3=4,5\"}");
    assert_string_equal(s_req.tenant, "x-1_2+3=4,5");
    assert_false(s_req.adopt_bucket);
    /* kbctl adopt: one named tenant only */
    s_ok("{\"v\":1,\"op\":\"provision\",\"tenant\":\"billing\",\"adopt_bucket\":true}");
    assert_true(s_req.adopt_bucket);
    s_ok("{\"v\":1,\"op\":\"provision\",\"adopt_bucket\":false}");
    assert_false(s_req.adopt_bucket);
    REFUSED("{\"v\":1,\"op\":\"provision\",\"adopt_bucket\":true}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"provision\",\"tenant\":\"b\",\"adopt_bucket\":1}",
            KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"revoke\",\"tenant\":\"b\",\"adopt_bucket\":true}",
            KB_PROTO_EBAD_REQUEST);
}

static void test_parse_rotate_and_revoke(void **state)
{
    s_ok("{\"v\":1,\"op\":\"rotate\",\"tenant\":\"billing\"}");
    assert_int_equal(s_req.op, KB_PROTO_OP_ROTATE);
    s_ok("{\"v\":1,\"op\":\"revoke\",\"tenant\":\"billing\"}");
    assert_int_equal(s_req.op, KB_PROTO_OP_REVOKE);
    assert_false(s_req.delete_bucket);
    assert_false(s_req.force_delete_secret);
    s_ok("{\"v\":1,\"op\":\"revoke\",\"tenant\":\"b\",\"delete_bucket\":true,"
         "\"force_delete_secret\":true}");
    assert_true(s_req.delete_bucket);
    assert_true(s_req.force_delete_secret);
    s_ok("{\"v\":1,\"op\":\"revoke\",\"tenant\":\"b\",\"delete_bucket\":false}");
    assert_false(s_req.delete_bucket);
}

static void test_parse_ack_and_rollback(void **state)
{
    s_ok("{\"v\":1,\"op\":\"rotate\",\"tenant\":\"billing\",\"rollback\":true}");
    assert_true(s_req.rollback);
    s_ok("{\"v\":1,\"op\":\"rotate\",\"tenant\":\"billing\",\"rollback\":null}");
    assert_false(s_req.rollback);
    REFUSED("{\"v\":1,\"op\":\"rotate\",\"tenant\":\"b\",\"rollback\":1}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"revoke\",\"tenant\":\"b\",\"rollback\":true}",
            KB_PROTO_EBAD_REQUEST);
    s_ok("{\"v\":1,\"id\":3,\"op\":\"ack\",\"tenant\":\"billing\","
         "\"version_id\":\"5f0c9a3e-1b2d-4c6f-8a9b-0c1d2e3f4a5b\"}");
    assert_int_equal(s_req.op, KB_PROTO_OP_ACK);
    assert_string_equal(s_req.tenant, "billing");
    assert_string_equal(s_req.version_id, "5f0c9a3e-1b2d-4c6f-8a9b-0c1d2e3f4a5b");
    /* both fields required; the version id is 32..64 of [A-Za-z0-9_-] */
    REFUSED("{\"v\":1,\"op\":\"ack\",\"tenant\":\"billing\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"ack\",\"version_id\":\"5f0c9a3e-1b2d-4c6f-8a9b-0c1d2e3f4a5b\"}",
            KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"ack\",\"tenant\":\"b\",\"version_id\":\"short\"}",
            KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"ack\",\"tenant\":\"b\","
            "\"version_id\":\"5f0c9a3e 1b2d-4c6f-8a9b-0c1d2e3f4a5b\"}",
            KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"ack\",\"tenant\":\"b\",\"version_id\":7}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"b\","
            "\"version_id\":\"5f0c9a3e-1b2d-4c6f-8a9b-0c1d2e3f4a5b\"}",
            KB_PROTO_EBAD_REQUEST);
    assert_true(kb_proto_version_valid("0123456789abcdef0123456789abcdef", 32));
    assert_false(kb_proto_version_valid("0123456789abcdef0123456789abcde", 31));
    assert_false(kb_proto_version_valid(NULL, 40));
}

static void test_parse_watch(void **state)
{
    s_ok("{\"v\":1,\"op\":\"watch\"}");
    assert_int_equal(s_req.op, KB_PROTO_OP_WATCH);
    assert_null(s_req.tenants);
    assert_int_equal(s_req.tenant_count, 0);
    s_ok("{\"v\":1,\"op\":\"watch\",\"tenants\":[\"a\",\"billing\",\"c\"]}");
    assert_int_equal(s_req.tenant_count, 3);
    assert_string_equal(s_req.tenants[0], "a");
    assert_string_equal(s_req.tenants[1], "billing");
    assert_string_equal(s_req.tenants[2], "c");
    assert_false(s_req.has_since);
    s_ok("{\"v\":1,\"op\":\"watch\",\"since\":{\"epoch\":\"0123456789abcdef\",\"seq\":42}}");
    assert_true(s_req.has_since);
    assert_string_equal(s_req.since_epoch, "0123456789abcdef");
    assert_int_equal(s_req.since_seq, 42);
    s_ok("{\"v\":1,\"op\":\"watch\",\"tenants\":[\"a\"],\"since\":{\"seq\":0,"
         "\"epoch\":\"ffffffffffffffff\"}}");
    assert_true(s_req.has_since);
    assert_int_equal(s_req.since_seq, 0);
    s_ok("{\"v\":1,\"op\":\"watch\",\"since\":null}");
    assert_false(s_req.has_since);
}

static void test_parse_null_means_absent(void **state)
{
    s_ok("{\"v\":1,\"id\":null,\"op\":\"status\",\"tenant\":null}");
    assert_string_equal(s_req.id, "null");
    assert_false(s_req.has_tenant);
    s_ok("{\"v\":1,\"op\":\"revoke\",\"tenant\":\"b\",\"delete_bucket\":null}");
    assert_false(s_req.delete_bucket);
    s_ok("{\"v\":1,\"op\":\"watch\",\"tenants\":null}");
    assert_int_equal(s_req.tenant_count, 0);
}

static void test_parse_whitespace_and_crlf(void **state)
{
    s_ok("  {\t\"v\" : 1 , \"op\" : \"list\" }  \r");
    assert_int_equal(s_req.op, KB_PROTO_OP_LIST);
}

static void test_parse_ids(void **state)
{
    char line[1024], id[300];

    s_ok("{\"v\":1,\"id\":-42,\"op\":\"list\"}");
    assert_string_equal(s_req.id, "-42");
    s_ok("{\"v\":1,\"id\":9007199254740991,\"op\":\"list\"}");
    assert_string_equal(s_req.id, "9007199254740991");
    s_ok("{\"v\":1,\"id\":\"a/\\\"b\\u0001\",\"op\":\"list\"}");
    assert_string_equal(s_req.id, "\"a/\\\"b\\u0001\"");
    /* 128 characters of two bytes each is within the limit (characters, not bytes) */
    for (int i = 0; i < 128; i++)
        memcpy(id + 2 * i, "\xc3\xa9", 2);
    id[256] = '\0';
    snprintf(line, sizeof(line), "{\"v\":1,\"id\":\"%s\",\"op\":\"list\"}", id);
    s_ok(line);
    assert_int_equal(strlen(s_req.id), 258);
}

static void test_parse_tenant_limits(void **state)
{
    char line[256], name[80];

    memset(name, 'a', 64);
    name[64] = '\0';
    snprintf(line, sizeof(line), "{\"v\":1,\"op\":\"get\",\"tenant\":\"%s\"}", name);
    s_ok(line);
    assert_string_equal(s_req.tenant, name);
    name[64] = 'a';
    name[65] = '\0';
    snprintf(line, sizeof(line), "{\"v\":1,\"op\":\"get\",\"tenant\":\"%s\"}", name);
    s_refused_len(line, strlen(line), KB_PROTO_EBAD_REQUEST, __LINE__);
}

/* -- every error code from a specific input -----------------------------------------------------
 */

static void test_err_bad_json(void **state)
{
    REFUSED("{", KB_PROTO_EBAD_JSON);
    REFUSED("{\"v\":1,\"op\":\"list\",}", KB_PROTO_EBAD_JSON);
    REFUSED("hello", KB_PROTO_EBAD_JSON);
    REFUSED("{\"v\":1,\"op\":\"list\"} x", KB_PROTO_EBAD_JSON);
    REFUSED("{\"v\":1,\"op\":\"list\"}{}", KB_PROTO_EBAD_JSON);
    REFUSED("{\"v\":1,\"op\":\"list\"", KB_PROTO_EBAD_JSON);
    REFUSED("{\"v\":01,\"op\":\"list\"}", KB_PROTO_EBAD_JSON);
    REFUSED("{\"v\":1,\"op\":\"list\",\"x\":True}", KB_PROTO_EBAD_JSON);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"a\\q\"}", KB_PROTO_EBAD_JSON);
    assert_string_equal(s_err.id, "null");
}

/* What json-c 0.16 accepts but JSON does not: the scan refuses it. */
static void test_err_bad_json_json_c_leniencies(void **state)
{
    REFUSED("{'v':1,'op':'list'}", KB_PROTO_EBAD_JSON);
    REFUSED("{\"v\":1,\"op\":\"list\",\"x\":NaN}", KB_PROTO_EBAD_JSON);
    REFUSED("{\"v\":1,\"op\":\"list\",\"x\":Infinity}", KB_PROTO_EBAD_JSON);
    REFUSED("{\"v\":1,\"op\":\"list\"/*c*/}", KB_PROTO_EBAD_JSON);
    REFUSED("\xef\xbb\xbf{\"v\":1,\"op\":\"list\"}", KB_PROTO_EBAD_JSON);
    /* raw control characters inside strings, a tab included */
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"a\x01\"}", KB_PROTO_EBAD_JSON);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"a\tb\"}", KB_PROTO_EBAD_JSON);
}

static void test_err_nul_bytes(void **state)
{
    REFUSED("{\"v\":1,\"op\":\"list\"}\0", KB_PROTO_EBAD_JSON);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"a\0b\"}", KB_PROTO_EBAD_JSON);
    REFUSED("\0", KB_PROTO_EBAD_JSON);
}

static void test_err_bad_utf8(void **state)
{
    /* overlong '/', overlong NUL, 3-byte overlong, surrogate, truncated, above U+10FFFF, stray
     * continuation, a lead byte that never starts anything */
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"\xc0\xaf\"}", KB_PROTO_EBAD_UTF8);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"\xc0\x80\"}", KB_PROTO_EBAD_UTF8);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"\xe0\x80\xaf\"}", KB_PROTO_EBAD_UTF8);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"\xed\xa0\x80\"}", KB_PROTO_EBAD_UTF8);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"\xe2\x82\"}", KB_PROTO_EBAD_UTF8);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"\xf4\x90\x80\x80\"}", KB_PROTO_EBAD_UTF8);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"\x80\"}", KB_PROTO_EBAD_UTF8);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"\xff\"}", KB_PROTO_EBAD_UTF8);
    /* truncated at the very end of the line, and outside a string */
    REFUSED("{\"v\":1,\"op\":\"list\"}\xf0\x9f\x98", KB_PROTO_EBAD_UTF8);
    REFUSED("\xc3{\"v\":1,\"op\":\"list\"}", KB_PROTO_EBAD_UTF8);
    /* UTF-8 errors win over JSON errors wherever they are */
    REFUSED("{'v':1} \xff", KB_PROTO_EBAD_UTF8);
}

static void test_valid_utf8_accepted(void **state)
{
    /* 2, 3 and 4-byte characters, U+10FFFF and U+FFFF, in the id */
    s_ok("{\"v\":1,\"id\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xef\xbf\xbf\","
         "\"op\":\"list\"}");
    assert_string_equal(s_req.id, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xef\xbf"
                                  "\xbf\"");
    /* an escaped lone surrogate is legal JSON; json-c turns it into U+FFFD */
    s_ok("{\"v\":1,\"id\":\"\\ud800\",\"op\":\"list\"}");
    assert_string_equal(s_req.id, "\"\xef\xbf\xbd\"");
}

static void test_err_empty_and_blank(void **state)
{
    REFUSED("", KB_PROTO_EBAD_JSON);
    assert_string_equal(s_err.message, "empty line");
    REFUSED("   \t \r", KB_PROTO_EBAD_JSON);
    assert_string_equal(s_err.message, "empty line");
}

static void test_err_not_an_object(void **state)
{
    REFUSED("[1,2]", KB_PROTO_EBAD_REQUEST);
    REFUSED("\"list\"", KB_PROTO_EBAD_REQUEST);
    REFUSED("12", KB_PROTO_EBAD_REQUEST);
    REFUSED("null", KB_PROTO_EBAD_REQUEST);
    REFUSED("true", KB_PROTO_EBAD_REQUEST);
}

static void test_err_op(void **state)
{
    REFUSED("{\"v\":1,\"id\":1}", KB_PROTO_EBAD_REQUEST);
    assert_string_equal(s_err.id, "1");
    REFUSED("{\"v\":1,\"op\":null}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":7}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":[\"get\"]}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"id\":\"q\",\"op\":\"delete\"}", KB_PROTO_EUNKNOWN_OP);
    assert_string_equal(s_err.id, "\"q\"");
    REFUSED("{\"v\":1,\"op\":\"GET\",\"tenant\":\"a\"}", KB_PROTO_EUNKNOWN_OP);
    REFUSED("{\"v\":1,\"op\":\"get\\u0000\",\"tenant\":\"a\"}", KB_PROTO_EUNKNOWN_OP);
    REFUSED("{\"v\":1,\"op\":\"\"}", KB_PROTO_EUNKNOWN_OP);
    /* an unknown op is unknown_op even with fields no op accepts */
    REFUSED("{\"v\":1,\"op\":\"frobnicate\",\"zz\":1}", KB_PROTO_EUNKNOWN_OP);
}

static void test_err_unknown_field(void **state)
{
    REFUSED("{\"v\":1,\"id\":5,\"op\":\"get\",\"tenantt\":\"a\"}", KB_PROTO_EBAD_REQUEST);
    assert_non_null(strstr(s_err.message, "\"tenantt\""));
    assert_string_equal(s_err.id, "5");
    REFUSED("{\"v\":1,\"op\":\"list\",\"\":1}", KB_PROTO_EBAD_REQUEST);
    /* a long unknown name is quoted only in part */
    REFUSED(
        "{\"v\":1,\"op\":\"list\",\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}",
        KB_PROTO_EBAD_REQUEST);
    assert_true(strlen(s_err.message) < 100);
}

static void test_err_field_not_allowed_for_op(void **state)
{
    REFUSED("{\"v\":1,\"op\":\"list\",\"tenant\":\"a\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"metrics\",\"tenant\":\"a\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"a\",\"tenants\":[\"a\"]}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"rotate\",\"tenant\":\"a\",\"delete_bucket\":true}",
            KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"watch\",\"tenant\":\"a\"}", KB_PROTO_EBAD_REQUEST);
    assert_non_null(strstr(s_err.message, "not allowed"));
}

static void test_err_wrong_types(void **state)
{
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":1}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":[\"a\"]}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":{\"name\":\"a\"}}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":true}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"revoke\",\"tenant\":\"a\",\"delete_bucket\":\"yes\"}",
            KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"revoke\",\"tenant\":\"a\",\"force_delete_secret\":1}",
            KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"watch\",\"tenants\":\"a\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"watch\",\"tenants\":[1]}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"watch\",\"tenants\":[\"a\",null]}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"watch\",\"tenants\":{\"a\":1}}", KB_PROTO_EBAD_REQUEST);
    /* since: an object of exactly epoch (16 lowercase hex digits) and seq (0..2^53-1) */
    REFUSED("{\"v\":1,\"op\":\"watch\",\"since\":5}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"watch\",\"since\":\"x\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"watch\",\"since\":{}}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"watch\",\"since\":{\"epoch\":\"0123456789abcdef\"}}",
            KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"watch\",\"since\":{\"epoch\":\"0123456789ABCDEF\",\"seq\":1}}",
            KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"watch\",\"since\":{\"epoch\":\"0123\",\"seq\":1}}",
            KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"watch\",\"since\":{\"epoch\":\"0123456789abcdef\",\"seq\":-1}}",
            KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"watch\",\"since\":{\"epoch\":\"0123456789abcdef\",\"seq\":1.5}}",
            KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"watch\",\"since\":{\"epoch\":\"0123456789abcdef\",\"seq\":1,"
            "\"x\":1}}",
            KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"a\",\"since\":null}", KB_PROTO_EBAD_REQUEST);
}

static void test_err_missing_tenant(void **state)
{
    REFUSED("{\"v\":1,\"op\":\"get\"}", KB_PROTO_EBAD_REQUEST);
    assert_non_null(strstr(s_err.message, "missing"));
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":null}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"rotate\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"revoke\",\"delete_bucket\":true}", KB_PROTO_EBAD_REQUEST);
}

static void test_err_bad_tenant_names(void **state)
{
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"a b\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"a/b\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"*\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"../x\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"b\xc3\xa9\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"get\",\"tenant\":\"a\\u0000b\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"op\":\"watch\",\"tenants\":[\"ok\",\"not ok\"]}", KB_PROTO_EBAD_REQUEST);
    assert_int_equal(kb_proto_tenant_valid("A-z_0+=,.@", 10), 1);
    assert_int_equal(kb_proto_tenant_valid("a", 0), 0);
    assert_int_equal(kb_proto_tenant_valid(NULL, 1), 0);
}

static void test_err_version(void **state)
{
    REFUSED("{\"op\":\"list\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":null,\"op\":\"list\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":\"1\",\"op\":\"list\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1.0,\"op\":\"list\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":true,\"op\":\"list\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":2,\"id\":3,\"op\":\"list\"}", KB_PROTO_EUNSUPPORTED_VERSION);
    assert_string_equal(s_err.id, "3");
    REFUSED("{\"v\":0,\"op\":\"list\"}", KB_PROTO_EUNSUPPORTED_VERSION);
    REFUSED("{\"v\":-1,\"op\":\"list\"}", KB_PROTO_EUNSUPPORTED_VERSION);
    /* a newer version's unknown op or fields are not judged by v1's rules */
    REFUSED("{\"v\":2,\"op\":\"teleport\",\"where\":\"mars\"}", KB_PROTO_EUNSUPPORTED_VERSION);
}

static void test_err_id(void **state)
{
    char line[512], id[200];

    memset(id, 'x', 129);
    id[129] = '\0';
    snprintf(line, sizeof(line), "{\"v\":1,\"id\":\"%s\",\"op\":\"list\"}", id);
    s_refused_len(line, strlen(line), KB_PROTO_EBAD_REQUEST, __LINE__);
    assert_string_equal(s_err.id, "null");
    id[128] = '\0';
    snprintf(line, sizeof(line), "{\"v\":1,\"id\":\"%s\",\"op\":\"list\"}", id);
    s_ok(line);
    REFUSED("{\"v\":1,\"id\":{\"a\":1},\"op\":\"list\"}", KB_PROTO_EBAD_REQUEST);
    assert_string_equal(s_err.id, "null");
    REFUSED("{\"v\":1,\"id\":[1],\"op\":\"list\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"id\":true,\"op\":\"list\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"id\":1.5,\"op\":\"list\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"id\":9007199254740992,\"op\":\"list\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"id\":-9007199254740992,\"op\":\"list\"}", KB_PROTO_EBAD_REQUEST);
}

static void test_err_huge_numbers(void **state)
{
    REFUSED("{\"v\":1,\"id\":99999999999999999999999999,\"op\":\"list\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"id\":-99999999999999999999999999,\"op\":\"list\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1,\"id\":1e400,\"op\":\"list\"}", KB_PROTO_EBAD_REQUEST);
    REFUSED("{\"v\":1e999,\"op\":\"list\"}", KB_PROTO_EBAD_REQUEST);
    /* json-c saturates; the saturated value is still not 1 */
    REFUSED("{\"v\":18446744073709551617,\"op\":\"list\"}", KB_PROTO_EUNSUPPORTED_VERSION);
    REFUSED("{\"v\":-18446744073709551617,\"op\":\"list\"}", KB_PROTO_EUNSUPPORTED_VERSION);
}

static void test_err_deep_nesting(void **state)
{
    char line[400];
    int n = 0;

    /* within the depth limit an unknown field is merely unknown */
    REFUSED("{\"v\":1,\"op\":\"list\",\"x\":[[[[1]]]]}", KB_PROTO_EBAD_REQUEST);
    n = snprintf(line, sizeof(line), "{\"v\":1,\"op\":\"list\",\"x\":");
    for (int i = 0; i < 100; i++)
        line[n++] = '[';
    for (int i = 0; i < 100; i++)
        line[n++] = ']';
    line[n++] = '}';
    s_refused_len(line, (size_t)n, KB_PROTO_EBAD_JSON, __LINE__);
    assert_non_null(strstr(s_err.message, "nesting"));
}

/* A line that fills KB_PROTO_MAX_LINE with its '\n' is accepted; one byte more is not. */
static void test_line_length_limit(void **state)
{
    size_t max = KB_PROTO_MAX_LINE - 1;
    char *line = malloc(max + 2);
    const char *body = "{\"v\":1,\"op\":\"list\"}";

    assert_non_null(line);
    memset(line, ' ', max + 1);
    memcpy(line, body, strlen(body));
    assert_int_equal(s_parse_len(line, max), 0);
    assert_int_equal(s_req.op, KB_PROTO_OP_LIST);
    s_refused_len(line, max + 1, KB_PROTO_ELINE_TOO_LONG, __LINE__);
    /* the limit is checked before anything else: even garbage is line_too_long */
    memset(line, 0xff, max + 1);
    s_refused_len(line, max + 1, KB_PROTO_ELINE_TOO_LONG, __LINE__);
    free(line);
}

static void test_err_watch_list_bounds(void **state)
{
    size_t cap = 16 + (KB_PROTO_MAX_WATCH + 1) * 4 + 64, n;
    char *line = malloc(cap);

    REFUSED("{\"v\":1,\"op\":\"watch\",\"tenants\":[]}", KB_PROTO_EBAD_REQUEST);
    assert_non_null(line);
    for (int count = KB_PROTO_MAX_WATCH; count <= KB_PROTO_MAX_WATCH + 1; count++) {
        n = (size_t)snprintf(line, cap, "{\"v\":1,\"op\":\"watch\",\"tenants\":[");
        for (int i = 0; i < count; i++)
            n += (size_t)snprintf(line + n, cap - n, "%s\"t\"", i ? "," : "");
        n += (size_t)snprintf(line + n, cap - n, "]}");
        if (count == KB_PROTO_MAX_WATCH) {
            assert_int_equal(s_parse_len(line, n), 0);
            assert_int_equal(s_req.tenant_count, KB_PROTO_MAX_WATCH);
            assert_string_equal(s_req.tenants[KB_PROTO_MAX_WATCH - 1], "t");
        } else {
            s_refused_len(line, n, KB_PROTO_EBAD_REQUEST, __LINE__);
        }
    }
    free(line);
}

static void test_err_names(void **state)
{
    const char *seen[KB_PROTO_EUNKNOWN];

    for (int c = KB_PROTO_EBAD_JSON; c < KB_PROTO_EUNKNOWN; c++) {
        const char *name = kb_proto_err_name((enum kb_proto_err)c);

        seen[c] = name;
        assert_int_equal(kb_proto_err_from_name(name), c);
        assert_true(strlen(kb_proto_err_message((enum kb_proto_err)c)) > 0);
        for (int d = KB_PROTO_EBAD_JSON; d < c; d++)
            assert_string_not_equal(seen[d], name);
    }
    assert_string_equal(kb_proto_err_name(KB_PROTO_EBAD_UTF8), "bad_utf8");
    assert_string_equal(kb_proto_err_name(KB_PROTO_ELINE_TOO_LONG), "line_too_long");
    assert_string_equal(kb_proto_err_name(KB_PROTO_EAWS_ERROR), "aws_error");
    assert_string_equal(kb_proto_err_name((enum kb_proto_err)999), "internal");
    assert_int_equal(kb_proto_err_from_name("no_such_code"), KB_PROTO_EUNKNOWN);
    assert_int_equal(kb_proto_err_from_name(NULL), KB_PROTO_EUNKNOWN);
    for (int op = KB_PROTO_OP_NONE + 1; op < KB_PROTO_OP_COUNT; op++) {
        const char *name = kb_proto_op_name((enum kb_proto_op)op);

        assert_int_equal(kb_proto_op_from_name(name, strlen(name)), op);
    }
    assert_null(kb_proto_op_name(KB_PROTO_OP_NONE));
    assert_null(kb_proto_op_name(KB_PROTO_OP_COUNT));
    assert_int_equal(kb_proto_op_from_name("ge", 2), KB_PROTO_OP_NONE);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_get),
        cmocka_unit_test(test_parse_list_and_metrics),
        cmocka_unit_test(test_parse_status_and_provision),
        cmocka_unit_test(test_parse_rotate_and_revoke),
        cmocka_unit_test(test_parse_ack_and_rollback),
        cmocka_unit_test(test_parse_watch),
        cmocka_unit_test(test_parse_null_means_absent),
        cmocka_unit_test(test_parse_whitespace_and_crlf),
        cmocka_unit_test(test_parse_ids),
        cmocka_unit_test(test_parse_tenant_limits),
        cmocka_unit_test(test_err_bad_json),
        cmocka_unit_test(test_err_bad_json_json_c_leniencies),
        cmocka_unit_test(test_err_nul_bytes),
        cmocka_unit_test(test_err_bad_utf8),
        cmocka_unit_test(test_valid_utf8_accepted),
        cmocka_unit_test(test_err_empty_and_blank),
        cmocka_unit_test(test_err_not_an_object),
        cmocka_unit_test(test_err_op),
        cmocka_unit_test(test_err_unknown_field),
        cmocka_unit_test(test_err_field_not_allowed_for_op),
        cmocka_unit_test(test_err_wrong_types),
        cmocka_unit_test(test_err_missing_tenant),
        cmocka_unit_test(test_err_bad_tenant_names),
        cmocka_unit_test(test_err_version),
        cmocka_unit_test(test_err_id),
        cmocka_unit_test(test_err_huge_numbers),
        cmocka_unit_test(test_err_deep_nesting),
        cmocka_unit_test(test_line_length_limit),
        cmocka_unit_test(test_err_watch_list_bounds),
        cmocka_unit_test(test_err_names),
    };
    return KB_TEST_RUN(argc, argv, tests, NULL, s_teardown);
}
