/*
 * test_codec_format.c - the lines the wire protocol codec writes and the reply parser
 * (proto/codec_format.c): what the codec formats parses back (with plain json-c, not the codec)
 * to the same fields, an error reply echoes the request's id exactly, every line is valid UTF-8,
 * and no line it can write has a member that could carry a secret.
 */
#include "kb_test.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/codec_internal.h"
#include "kb_codec_test.h"

/* -- helpers ---------------------------------------------------------------------------------- */

/* Parses a formatted line with plain json-c (not the codec) and checks it is one line. */
static struct json_object *s_json(const char *line, size_t len)
{
    struct json_object *o;

    assert_true(len >= 2);
    assert_int_equal(line[len - 1], '\n');
    assert_int_equal(line[len], '\0');
    assert_null(memchr(line, '\n', len - 1));
    o = json_tokener_parse(line);
    assert_non_null(o);
    assert_true(json_object_is_type(o, json_type_object));
    return o;
}

static const char *s_str(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;

    assert_true(json_object_object_get_ex(o, key, &v));
    assert_true(json_object_is_type(v, json_type_string));
    return json_object_get_string(v);
}

static struct json_object *s_member(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;

    assert_true(json_object_object_get_ex(o, key, &v));
    return v;
}

static bool s_has(struct json_object *o, const char *key)
{
    return json_object_object_get_ex(o, key, NULL);
}

/* -- formatting round trips ---------------------------------------------------------------------
 */

static void s_roundtrip_request(const struct kb_proto_request *in)
{
    char *line = NULL;
    size_t len = 0;

    assert_int_equal(kb_proto_format_request(in, &line, &len), 0);
    assert_int_equal(line[len - 1], '\n');
    assert_int_equal(s_parse_len(line, len - 1), 0);
    assert_int_equal(s_req.op, in->op);
    assert_string_equal(s_req.id, in->id[0] ? in->id : "null");
    assert_int_equal(s_req.has_tenant, in->has_tenant);
    assert_string_equal(s_req.tenant, in->tenant);
    assert_int_equal(s_req.delete_bucket, in->delete_bucket);
    assert_int_equal(s_req.force_delete_secret, in->force_delete_secret);
    assert_int_equal(s_req.rollback, in->rollback);
    assert_string_equal(s_req.version_id, in->version_id);
    assert_int_equal(s_req.tenant_count, in->tenant_count);
    for (size_t i = 0; i < in->tenant_count; i++)
        assert_string_equal(s_req.tenants[i], in->tenants[i]);
    free(line);
}

static void test_format_request_roundtrip(void **state)
{
    static const char *const names[] = {"a", "b.c", "d@e"};
    struct kb_proto_request r = {
        .op = KB_PROTO_OP_GET, .id = "17", .has_tenant = true, .tenant = "billing"};

    s_roundtrip_request(&r);
    r = (struct kb_proto_request){.op = KB_PROTO_OP_REVOKE,
                                  .id = "\"x\\\"y\"",
                                  .has_tenant = true,
                                  .tenant = "t",
                                  .delete_bucket = true,
                                  .force_delete_secret = true};
    s_roundtrip_request(&r);
    r = (struct kb_proto_request){.op = KB_PROTO_OP_WATCH, .tenants = names, .tenant_count = 3};
    s_roundtrip_request(&r);
    r = (struct kb_proto_request){
        .op = KB_PROTO_OP_ROTATE, .has_tenant = true, .tenant = "t", .rollback = true};
    s_roundtrip_request(&r);
    for (int op = KB_PROTO_OP_LIST; op < KB_PROTO_OP_COUNT; op++) {
        bool needs = op == KB_PROTO_OP_ROTATE || op == KB_PROTO_OP_REVOKE || op == KB_PROTO_OP_ACK;

        r = (struct kb_proto_request){
            .op = (enum kb_proto_op)op, .id = "1", .has_tenant = needs, .tenant = "x"};
        if (!needs)
            r.tenant[0] = '\0';
        if (op == KB_PROTO_OP_ACK)
            snprintf(r.version_id, sizeof(r.version_id), "%s",
                     "5f0c9a3e-1b2d-4c6f-8a9b-0c1d2e3f4a5b");
        s_roundtrip_request(&r);
    }
}

static void test_format_request_refuses_what_parser_would(void **state)
{
    static const char *const bad[] = {"ok", "no way"};
    struct kb_proto_request r = {.op = KB_PROTO_OP_GET};
    char *line = (char *)"untouched";
    size_t len = 1;

    assert_int_equal(kb_proto_format_request(&r, &line, &len), KB_EINVAL); /* tenant missing */
    assert_null(line);
    r = (struct kb_proto_request){.op = KB_PROTO_OP_GET, .has_tenant = true, .tenant = "a b"};
    assert_int_equal(kb_proto_format_request(&r, &line, &len), KB_EINVAL);
    r = (struct kb_proto_request){.op = KB_PROTO_OP_LIST, .has_tenant = true, .tenant = "a"};
    assert_int_equal(kb_proto_format_request(&r, &line, &len), KB_EINVAL);
    r = (struct kb_proto_request){
        .op = KB_PROTO_OP_ROTATE, .has_tenant = true, .tenant = "a", .delete_bucket = true};
    assert_int_equal(kb_proto_format_request(&r, &line, &len), KB_EINVAL);
    r = (struct kb_proto_request){.op = KB_PROTO_OP_WATCH, .tenants = bad, .tenant_count = 2};
    assert_int_equal(kb_proto_format_request(&r, &line, &len), KB_EINVAL);
    r = (struct kb_proto_request){.op = KB_PROTO_OP_LIST, .id = "abc"};
    assert_int_equal(kb_proto_format_request(&r, &line, &len), KB_EINVAL);
    r = (struct kb_proto_request){.op = KB_PROTO_OP_NONE};
    assert_int_equal(kb_proto_format_request(&r, &line, &len), KB_EINVAL);
    /* ack needs a valid version id; no other op takes one; only rotate takes rollback */
    r = (struct kb_proto_request){.op = KB_PROTO_OP_ACK, .has_tenant = true, .tenant = "a"};
    assert_int_equal(kb_proto_format_request(&r, &line, &len), KB_EINVAL);
    snprintf(r.version_id, sizeof(r.version_id), "%s", "short");
    assert_int_equal(kb_proto_format_request(&r, &line, &len), KB_EINVAL);
    r = (struct kb_proto_request){.op = KB_PROTO_OP_GET, .has_tenant = true, .tenant = "a"};
    snprintf(r.version_id, sizeof(r.version_id), "%s", "5f0c9a3e-1b2d-4c6f-8a9b-0c1d2e3f4a5b");
    assert_int_equal(kb_proto_format_request(&r, &line, &len), KB_EINVAL);
    r = (struct kb_proto_request){
        .op = KB_PROTO_OP_REVOKE, .has_tenant = true, .tenant = "a", .rollback = true};
    assert_int_equal(kb_proto_format_request(&r, &line, &len), KB_EINVAL);
}

static void test_format_get_roundtrip(void **state)
{
    struct kb_proto_tenant_info t = {
        .tenant = "billing",
        .arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keybroker/billing-AbCdEf",
        .bucket = "acme-billing",
        .prefix = "data/",
        .region = "us-east-1",
        .version_id = "8c2b7e8e-0000-4000-8000-000000000001",
        .last_rotation = 1714564800, /* 2024-05-01T12:00:00Z */
        .state = "ready",
    };
    struct json_object *o, *r;
    char *line;
    size_t len;

    assert_int_equal(kb_proto_format_get("\"q1\"", &t, &line, &len), 0);
    o = s_json(line, len);
    assert_int_equal(json_object_get_int(s_member(o, "v")), 1);
    assert_string_equal(s_str(o, "id"), "q1");
    assert_true(json_object_get_boolean(s_member(o, "ok")));
    r = s_member(o, "result");
    assert_string_equal(s_str(r, "tenant"), t.tenant);
    assert_string_equal(s_str(r, "arn"), t.arn);
    assert_string_equal(s_str(r, "bucket"), t.bucket);
    assert_string_equal(s_str(r, "prefix"), t.prefix);
    assert_string_equal(s_str(r, "region"), t.region);
    assert_string_equal(s_str(r, "version_id"), t.version_id);
    assert_string_equal(s_str(r, "last_rotation"), "2024-05-01T12:00:00Z");
    assert_string_equal(s_str(r, "state"), "ready");
    /* the ARN's slash is not escaped */
    assert_non_null(strstr(line, "keybroker/billing"));
    json_object_put(o);
    free(line);

    t.last_rotation = 0;
    t.version_id = NULL;
    t.prefix = NULL;
    assert_int_equal(kb_proto_format_get(NULL, &t, &line, &len), 0);
    o = s_json(line, len);
    assert_null(s_member(o, "id"));
    r = s_member(o, "result");
    assert_null(s_member(r, "last_rotation"));
    assert_null(s_member(r, "version_id"));
    assert_string_equal(s_str(r, "prefix"), "");
    json_object_put(o);
    free(line);

    t.arn = NULL;
    assert_int_equal(kb_proto_format_get("1", &t, &line, &len), KB_EINVAL);
    assert_null(line);
    t.arn = "x";
    t.tenant = "not valid";
    assert_int_equal(kb_proto_format_get("1", &t, &line, &len), KB_EINVAL);
}

static void test_format_list_and_status_roundtrip(void **state)
{
    struct kb_proto_list_entry l[] = {{"a", "bucket-a", "ready"}, {"b", "bucket-b", "pending"}};
    static const struct kb_proto_waiting_peer wp[] = {{1000, 42, "v-old"}, {1001, 43, NULL}};
    struct kb_proto_status_entry se[] = {
        {.tenant = "a", .state = "ready", .probed_ok = true},
        {.tenant = "b", .state = "error", .message = "AccessDenied on CreateUser"},
        {.tenant = "c",
         .state = "ready",
         .has_subscribers = true,
         .subscribers = 3,
         .waiting = wp,
         .nwaiting = 2}};
    struct kb_proto_status st = {"0.1.0", 3601, se, 3};
    struct json_object *o, *arr, *e;
    char *line;
    size_t len;

    assert_int_equal(kb_proto_format_list("2", l, 2, &line, &len), 0);
    o = s_json(line, len);
    assert_int_equal(json_object_get_int(s_member(o, "id")), 2);
    arr = s_member(s_member(o, "result"), "tenants");
    assert_int_equal(json_object_array_length(arr), 2);
    e = json_object_array_get_idx(arr, 1);
    assert_string_equal(s_str(e, "tenant"), "b");
    assert_string_equal(s_str(e, "bucket"), "bucket-b");
    assert_string_equal(s_str(e, "state"), "pending");
    json_object_put(o);
    free(line);

    assert_int_equal(kb_proto_format_status("3", &st, &line, &len), 0);
    o = s_json(line, len);
    e = s_member(o, "result");
    assert_string_equal(s_str(e, "version"), "0.1.0");
    assert_int_equal(json_object_get_int64(s_member(e, "uptime_seconds")), 3601);
    arr = s_member(e, "tenants");
    assert_string_equal(s_str(json_object_array_get_idx(arr, 0), "probe"), "probed-ok");
    assert_false(s_has(json_object_array_get_idx(arr, 0), "message"));
    assert_false(s_has(json_object_array_get_idx(arr, 1), "probe"));
    assert_string_equal(s_str(json_object_array_get_idx(arr, 1), "message"),
                        "AccessDenied on CreateUser");
    /* subscribers only where given (admins); those still on another version, null when none */
    assert_false(s_has(json_object_array_get_idx(arr, 0), "subscribers"));
    assert_false(s_has(json_object_array_get_idx(arr, 0), "waiting_ack"));
    e = json_object_array_get_idx(arr, 2);
    assert_int_equal(json_object_get_int(s_member(e, "subscribers")), 3);
    e = s_member(e, "waiting_ack");
    assert_int_equal(json_object_array_length(e), 2);
    assert_int_equal(json_object_get_int(s_member(json_object_array_get_idx(e, 0), "uid")), 1000);
    assert_int_equal(json_object_get_int(s_member(json_object_array_get_idx(e, 0), "pid")), 42);
    assert_string_equal(s_str(json_object_array_get_idx(e, 0), "version_id"), "v-old");
    assert_true(s_has(json_object_array_get_idx(e, 1), "version_id"));
    assert_null(s_member(json_object_array_get_idx(e, 1), "version_id"));
    json_object_put(o);
    free(line);

    {
        struct kb_proto_ack a = {"a", "0123456789abcdef0123456789abcdef", true, 2};

        assert_int_equal(kb_proto_format_ack("5", &a, &line, &len), 0);
        o = s_json(line, len);
        e = s_member(o, "result");
        assert_string_equal(s_str(e, "tenant"), "a");
        assert_string_equal(s_str(e, "version_id"), "0123456789abcdef0123456789abcdef");
        assert_true(json_object_get_boolean(s_member(e, "current")));
        assert_int_equal(json_object_get_int(s_member(e, "waiting")), 2);
        json_object_put(o);
        free(line);
        a.tenant = "bad name";
        assert_int_equal(kb_proto_format_ack("5", &a, &line, &len), KB_EINVAL);
    }

    /* an empty list is an empty array, not a missing one */
    assert_int_equal(kb_proto_format_list("4", NULL, 0, &line, &len), 0);
    assert_non_null(strstr(line, "\"tenants\":[]"));
    free(line);
}

static void test_format_provision_progress_rotate(void **state)
{
    struct kb_proto_tenant_state ts[] = {{"a", "ready", NULL}, {"b", "error", "quota"}};
    struct kb_proto_progress p = {"a", "create-bucket", "done", NULL};
    struct json_object *o;
    char *line;
    size_t len;

    assert_int_equal(kb_proto_format_progress("9", &p, &line, &len), 0);
    o = s_json(line, len);
    assert_int_equal(json_object_get_int(s_member(o, "id")), 9);
    assert_string_equal(s_str(o, "event"), "progress");
    assert_string_equal(s_str(o, "tenant"), "a");
    assert_string_equal(s_str(o, "step"), "create-bucket");
    assert_string_equal(s_str(o, "state"), "done");
    assert_false(s_has(o, "ok"));
    json_object_put(o);
    free(line);

    assert_int_equal(kb_proto_format_provision("9", ts, 2, &line, &len), 0);
    o = s_json(line, len);
    assert_string_equal(
        s_str(json_object_array_get_idx(s_member(s_member(o, "result"), "tenants"), 1), "message"),
        "quota");
    json_object_put(o);
    free(line);

    assert_int_equal(kb_proto_format_tenant_state("10", &ts[0], &line, &len), 0);
    o = s_json(line, len);
    assert_string_equal(s_str(s_member(o, "result"), "tenant"), "a");
    assert_string_equal(s_str(s_member(o, "result"), "state"), "ready");
    json_object_put(o);
    free(line);
}

static void test_format_event_watching_metrics(void **state)
{
    static const char *const names[] = {"a", "b"};
    struct kb_proto_event ev = {.kind = KB_PROTO_EVENT_ROTATED,
                                .tenant = "a",
                                .arn = "arn:aws:secretsmanager:x",
                                .version_id = "v2",
                                .ts = 86400};
    struct json_object *o;
    char *line;
    size_t len;

    assert_int_equal(kb_proto_format_event(&ev, &line, &len), 0);
    o = s_json(line, len);
    assert_false(s_has(o, "id"));
    assert_string_equal(s_str(o, "event"), "rotated");
    assert_string_equal(s_str(o, "arn"), "arn:aws:secretsmanager:x");
    assert_string_equal(s_str(o, "version_id"), "v2");
    assert_string_equal(s_str(o, "ts"), "1970-01-02T00:00:00Z");
    json_object_put(o);
    free(line);
    ev.kind = (enum kb_proto_event_kind)42;
    assert_int_equal(kb_proto_format_event(&ev, &line, &len), KB_EINVAL);

    assert_int_equal(kb_proto_format_watching("1", names, 2, &line, &len), 0);
    o = s_json(line, len);
    assert_int_equal(json_object_array_length(s_member(s_member(o, "result"), "watching")), 2);
    json_object_put(o);
    free(line);

    assert_int_equal(kb_proto_format_metrics("1", "# TYPE x counter\nx 1\n", &line, &len), 0);
    o = s_json(line, len); /* the newlines of the text are escaped: still one line */
    assert_string_equal(s_str(s_member(o, "result"), "text"), "# TYPE x counter\nx 1\n");
    json_object_put(o);
    free(line);
}

/* An error reply echoes the id exactly as the request carried it, escapes included. */
static void test_format_error_echoes_id(void **state)
{
    struct kb_proto_reply reply;
    char *line;
    size_t len;

    REFUSED("{\"v\":1,\"id\":\"a\\\"b\\u0001\\u00e9\",\"op\":\"nope\"}", KB_PROTO_EUNKNOWN_OP);
    assert_int_equal(kb_proto_format_error(s_err.id, s_err.code, s_err.message, &line, &len), 0);
    assert_int_equal(kb_proto_parse_reply(line, len - 1, &reply, NULL, 0), 0);
    assert_int_equal(reply.kind, KB_PROTO_REPLY_ERROR);
    assert_string_equal(reply.id, s_err.id);
    assert_string_equal(reply.code_name, "unknown_op");
    assert_int_equal(reply.code, KB_PROTO_EUNKNOWN_OP);
    assert_string_equal(reply.message, s_err.message);
    kb_proto_reply_cleanup(&reply);
    free(line);

    /* null id, default message */
    assert_int_equal(kb_proto_format_error(NULL, KB_PROTO_EBUSY, NULL, &line, &len), 0);
    assert_string_equal(line, "{\"v\":1,\"id\":null,\"ok\":false,\"error\":{\"code\":\"busy\","
                              "\"message\":\"too many requests in flight on this connection\"}}\n");
    free(line);
    assert_int_equal(kb_proto_format_error("1", KB_PROTO_OK, NULL, &line, &len), KB_EINVAL);
    assert_int_equal(kb_proto_format_error("1", KB_PROTO_EUNKNOWN, NULL, &line, &len), KB_EINVAL);
    assert_int_equal(kb_proto_format_error("{}", KB_PROTO_EBUSY, NULL, &line, &len), KB_EINVAL);
}

static void test_format_repairs_invalid_utf8(void **state)
{
    struct json_object *o, *e;
    char *line;
    size_t len;

    assert_int_equal(
        kb_proto_format_error("1", KB_PROTO_EAWS_ERROR, "bad \xff\xc0 byte \xc3\xa9", &line, &len),
        0);
    assert_int_equal(kb_proto_scan(line, len - 1, NULL, 0), KB_PROTO_OK);
    o = s_json(line, len);
    e = s_member(o, "error");
    assert_string_equal(s_str(e, "message"), "bad ?? byte \xc3\xa9");
    json_object_put(o);
    free(line);
}

/* Every member name any formatter can write; none may look like it carries a secret. */
static void s_collect_keys(struct json_object *o, int *checked)
{
    static const char *const forbidden[] = {"secret",  "password",  "token",   "credential",
                                            "private", "accesskey", "session", "signature"};

    if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++)
            s_collect_keys(json_object_array_get_idx(o, i), checked);
        return;
    }
    if (!json_object_is_type(o, json_type_object))
        return;
    json_object_object_foreach(o, key, val)
    {
        char lower[64];
        size_t n = strlen(key) < sizeof(lower) - 1 ? strlen(key) : sizeof(lower) - 1;

        for (size_t i = 0; i < n; i++)
            lower[i] = (char)(key[i] >= 'A' && key[i] <= 'Z' ? key[i] + 32 : key[i]);
        lower[n] = '\0';
        for (size_t f = 0; f < sizeof(forbidden) / sizeof(forbidden[0]); f++) {
            if (strstr(lower, forbidden[f]) != NULL)
                fail_msg("member \"%s\" looks like it could carry a secret", key);
        }
        (*checked)++;
        s_collect_keys(val, checked);
    }
}

static void test_no_secret_field_in_any_response(void **state)
{
    static const char *const names[] = {"a"};
    struct kb_proto_tenant_info ti = {"a", "arn", "b", "p/", "r", "v", 1, "ready"};
    struct kb_proto_list_entry le = {"a", "b", "ready"};
    struct kb_proto_status_entry se = {
        .tenant = "a", .state = "error", .message = "m", .probed_ok = true};
    struct kb_proto_status st = {"1", 1, &se, 1};
    struct kb_proto_tenant_state ts = {"a", "ready", "m"};
    struct kb_proto_progress pr = {"a", "s", "done", "m"};
    struct kb_proto_event ev = {
        .kind = KB_PROTO_EVENT_REVOKED, .tenant = "a", .arn = "arn", .version_id = "v", .ts = 1};
    struct kb_proto_request rq = {.op = KB_PROTO_OP_REVOKE,
                                  .id = "1",
                                  .has_tenant = true,
                                  .tenant = "a",
                                  .delete_bucket = true,
                                  .force_delete_secret = true};
    char *lines[11] = {0};
    size_t len;
    int checked = 0;

    assert_int_equal(kb_proto_format_get("1", &ti, &lines[0], &len), 0);
    assert_int_equal(kb_proto_format_list("1", &le, 1, &lines[1], &len), 0);
    assert_int_equal(kb_proto_format_status("1", &st, &lines[2], &len), 0);
    assert_int_equal(kb_proto_format_provision("1", &ts, 1, &lines[3], &len), 0);
    assert_int_equal(kb_proto_format_tenant_state("1", &ts, &lines[4], &len), 0);
    assert_int_equal(kb_proto_format_watching("1", names, 1, &lines[5], &len), 0);
    assert_int_equal(kb_proto_format_metrics("1", "x 1\n", &lines[6], &len), 0);
    assert_int_equal(kb_proto_format_progress("1", &pr, &lines[7], &len), 0);
    assert_int_equal(kb_proto_format_event(&ev, &lines[8], &len), 0);
    assert_int_equal(kb_proto_format_error("1", KB_PROTO_EFORBIDDEN, NULL, &lines[9], &len), 0);
    /* the request's "force_delete_secret" names an action, not a value; it is client -> broker */
    assert_int_equal(kb_proto_format_request(&rq, &lines[10], &len), 0);
    for (int i = 0; i < 10; i++) {
        struct json_object *o = json_tokener_parse(lines[i]);

        assert_non_null(o);
        s_collect_keys(o, &checked);
        json_object_put(o);
    }
    assert_true(checked >= 40); /* every member of every response was looked at */
    for (int i = 0; i < 11; i++)
        free(lines[i]);
}

/* -- the reply parser ---------------------------------------------------------------------------
 */

static void test_parse_reply_kinds(void **state)
{
    static const char ok[] = "{\"v\":1,\"id\":4,\"ok\":true,\"result\":{\"tenants\":[]},\"new\":1}";
    static const char err[] = "{\"v\":1,\"id\":\"x\",\"ok\":false,\"error\":{\"code\":\"teapot\","
                              "\"message\":\"I am one\"}}";
    static const char ev[] = "{\"v\":1,\"event\":\"rotated\",\"tenant\":\"a\"}";
    struct kb_proto_reply r;

    assert_int_equal(kb_proto_parse_reply(ok, sizeof(ok) - 1, &r, NULL, 0), 0);
    assert_int_equal(r.kind, KB_PROTO_REPLY_RESULT);
    assert_string_equal(r.id, "4");
    assert_true(json_object_is_type(r.body, json_type_object));
    kb_proto_reply_cleanup(&r);
    assert_int_equal(kb_proto_parse_reply(err, sizeof(err) - 1, &r, NULL, 0), 0);
    assert_int_equal(r.kind, KB_PROTO_REPLY_ERROR);
    assert_int_equal(r.code, KB_PROTO_EUNKNOWN); /* a newer broker's code: kept by name */
    assert_string_equal(r.code_name, "teapot");
    assert_string_equal(r.message, "I am one");
    kb_proto_reply_cleanup(&r);
    assert_int_equal(kb_proto_parse_reply(ev, sizeof(ev) - 1, &r, NULL, 0), 0);
    assert_int_equal(r.kind, KB_PROTO_REPLY_EVENT);
    assert_string_equal(r.event, "rotated");
    assert_string_equal(r.id, "null");
    kb_proto_reply_cleanup(&r);
}

static void test_parse_reply_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{\"v\":2,\"ok\":true,\"result\":{}}",
        "{\"ok\":true,\"result\":{}}",
        "{\"v\":1,\"ok\":true}",
        "{\"v\":1,\"ok\":true,\"result\":[]}",
        "{\"v\":1,\"ok\":\"yes\",\"result\":{}}",
        "{\"v\":1,\"ok\":false}",
        "{\"v\":1,\"ok\":false,\"error\":{\"message\":\"m\"}}",
        "{\"v\":1,\"event\":5}",
        "{\"v\":1,\"id\":{},\"ok\":true,\"result\":{}}",
        "{\"v\":1,\"ok\":true,\"result\":{\"x\":\"\xc0\xaf\"}}",
    };
    struct kb_proto_reply r;
    char why[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        assert_int_equal(kb_proto_parse_reply(bad[i], strlen(bad[i]), &r, why, sizeof(why)),
                         KB_EPARSE);
        assert_true(why[0] != '\0');
        assert_null(r.root);
    }
}

/* The resumable stream: events with epoch and seq (and message), the ack's position, reset and
 * closed lines, and a request's since (formatted by the client, parsed by the broker). */
static void test_format_watch_stream(void **state)
{
    static const char *const names[] = {"a"};
    static const char epoch[] = "00ff00ff00ff00ff";
    struct kb_proto_event ev = {.kind = KB_PROTO_EVENT_ROLLED_BACK,
                                .tenant = "a",
                                .arn = "arn:x",
                                .version_id = "v1",
                                .ts = 1,
                                .epoch = epoch,
                                .seq = 17,
                                .message = "v2"};
    struct kb_proto_watch_state st[] = {{"a", "arn:x", "v1", "ready"},
                                        {"b", NULL, NULL, "pending"}};
    struct kb_proto_request rq = {.op = KB_PROTO_OP_WATCH, .has_since = true, .since_seq = 5};
    struct kb_proto_request back;
    struct kb_proto_error err;
    struct json_object *o, *t;
    char *line;
    size_t len;

    assert_int_equal(kb_proto_format_event(&ev, &line, &len), 0);
    o = s_json(line, len);
    assert_string_equal(s_str(o, "event"), "rolled_back");
    assert_string_equal(s_str(o, "epoch"), epoch);
    assert_int_equal(json_object_get_int64(s_member(o, "seq")), 17);
    assert_string_equal(s_str(o, "message"), "v2");
    json_object_put(o);
    free(line);
    for (int k = KB_PROTO_EVENT_ROTATED; k < KB_PROTO_EVENT_KIND_END; k++)
        assert_non_null(kb_proto_event_name((enum kb_proto_event_kind)k));
    assert_string_equal(kb_proto_event_name(KB_PROTO_EVENT_KEY_DELETED), "key_deleted");
    ev.epoch = "00FF00FF00FF00FF"; /* not the wire's form */
    assert_int_equal(kb_proto_format_event(&ev, &line, &len), KB_EINVAL);

    assert_int_equal(kb_proto_format_watching_at("1", names, 1, epoch, 9, &line, &len), 0);
    o = s_json(line, len);
    assert_string_equal(s_str(s_member(o, "result"), "epoch"), epoch);
    assert_int_equal(json_object_get_int64(s_member(s_member(o, "result"), "seq")), 9);
    json_object_put(o);
    free(line);

    assert_int_equal(kb_proto_format_reset(epoch, 42, "gap", st, 2, &line, &len), 0);
    o = s_json(line, len);
    assert_false(s_has(o, "id"));
    assert_string_equal(s_str(o, "event"), "reset");
    assert_string_equal(s_str(o, "reason"), "gap");
    assert_int_equal(json_object_get_int64(s_member(o, "seq")), 42);
    t = json_object_array_get_idx(s_member(o, "tenants"), 1);
    assert_string_equal(s_str(t, "tenant"), "b");
    assert_true(s_has(t, "arn"));
    assert_null(s_member(t, "arn"));
    assert_string_equal(s_str(t, "state"), "pending");
    json_object_put(o);
    free(line);

    assert_int_equal(kb_proto_format_closed("access to tenant a was withdrawn", &line, &len), 0);
    o = s_json(line, len);
    assert_string_equal(s_str(o, "event"), "closed");
    assert_string_equal(s_str(o, "reason"), "access to tenant a was withdrawn");
    json_object_put(o);
    free(line);

    memcpy(rq.since_epoch, epoch, sizeof(epoch));
    assert_int_equal(kb_proto_format_request(&rq, &line, &len), 0);
    assert_non_null(strstr(line, "\"since\":{\"epoch\":\"00ff00ff00ff00ff\",\"seq\":5}"));
    assert_int_equal(kb_proto_parse_request(line, len - 1, &back, &err), 0);
    assert_true(back.has_since);
    assert_string_equal(back.since_epoch, epoch);
    assert_int_equal(back.since_seq, 5);
    kb_proto_request_cleanup(&back);
    free(line);
    rq.op = KB_PROTO_OP_LIST;
    assert_int_equal(kb_proto_format_request(&rq, &line, &len), KB_EINVAL);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_request_roundtrip),
        cmocka_unit_test(test_format_request_refuses_what_parser_would),
        cmocka_unit_test(test_format_get_roundtrip),
        cmocka_unit_test(test_format_list_and_status_roundtrip),
        cmocka_unit_test(test_format_provision_progress_rotate),
        cmocka_unit_test(test_format_event_watching_metrics),
        cmocka_unit_test(test_format_watch_stream),
        cmocka_unit_test(test_format_error_echoes_id),
        cmocka_unit_test(test_format_repairs_invalid_utf8),
        cmocka_unit_test(test_no_secret_field_in_any_response),
        cmocka_unit_test(test_parse_reply_kinds),
        cmocka_unit_test(test_parse_reply_malformed),
    };
    return KB_TEST_RUN(argc, argv, tests, NULL, s_teardown);
}
