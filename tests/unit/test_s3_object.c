/* test_s3_object.c - the S3 object calls on a fake transport: the encoded key paths, the query
 * parameters, Content-MD5 (values computed independently with Python's hashlib) and the Object
 * Lock headers of PutObject, GetObject's headers, body and limit, and the parser of
 * ListObjectVersions pages (URL-encoded keys, missing optional fields, malformed pages). */
#include "kb_test.h"

#include "kb_svc_test.h"

#include "aws/s3.h"

#define NS     "http://s3.amazonaws.com/doc/2006-03-01/"
#define ANCHOR "{\"file\":\"audit.log\",\"seq\":7}"
#define Y2030  ((time_t)1893456000) /* 2030-01-01T00:00:00Z */

/* -- PutObject -------------------------------------------------------------------------------- */

struct put_got {
    struct got g;
    char etag[64];
    char version_id[64];
};

static void on_put(void *ctx, const struct kb_aws_error *err,
                   const struct kb_s3_put_object_result *res)
{
    struct put_got *r = ctx;

    r->g.calls++;
    if ((err == NULL) == (res == NULL)) {
        r->g.err = -1;
        return;
    }
    if (err != NULL) {
        got_error(&r->g, err);
        return;
    }
    cap_copy(r->etag, sizeof(r->etag), res->etag);
    cap_copy(r->version_id, sizeof(r->version_id), res->version_id);
    cap_copy(r->g.request_id, sizeof(r->g.request_id), res->request_id);
}

static void test_put_object_with_compliance_retention(void **state)
{
    struct kb_s3_put_object_input in = {.bucket = "kb-audit",
                                        .key = "anchors/host 1/000007.json",
                                        .body = ANCHOR,
                                        .body_len = strlen(ANCHOR),
                                        .content_type = "application/json",
                                        .lock_mode = KB_S3_LOCK_COMPLIANCE,
                                        .retain_until = Y2030};
    const char *const hdrs[] = {"ETag", "\"b31ca1a7036c5f775eb5b68211961817\"", "x-amz-version-id",
                                "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", NULL};
    struct put_got r = {0};

    assert_int_equal(kb_s3_put_object(NULL, &in, on_put, &r), 0);
    assert_int_equal(r.g.calls, 0); /* always later */
    assert_string_equal(g_cap.operation, "PutObject");
    assert_string_equal(g_cap.method, "PUT");
    assert_string_equal(g_cap.bucket, "kb-audit");
    /* SigV4's URI encoding of each segment, '/' kept */
    assert_string_equal(g_cap.path, "/anchors/host%201/000007.json");
    assert_string_equal(g_cap.query, "(null)");
    assert_string_equal(g_cap.body, ANCHOR);
    assert_string_equal(g_cap.headers,
                        "Content-MD5: sxyhpwNsX3detbaCEZYYXw==\n"
                        "Content-Type: application/json\n"
                        "x-amz-object-lock-mode: COMPLIANCE\n"
                        "x-amz-object-lock-retain-until-date: 2030-01-01T00:00:00Z\n");
    cap_respond_h(200, "", hdrs);
    assert_int_equal(r.g.calls, 1);
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.etag, "\"b31ca1a7036c5f775eb5b68211961817\"");
    assert_string_equal(r.version_id, "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY");
    assert_string_equal(r.g.request_id, "req-1234");
}

static void test_put_object_plain_and_empty(void **state)
{
    struct kb_s3_put_object_input in = {
        .bucket = "kb-audit", .key = "k", .lock_mode = KB_S3_LOCK_GOVERNANCE, .retain_until = 1};
    struct put_got r = {0};

    assert_int_equal(kb_s3_put_object(NULL, &in, on_put, &r), 0);
    assert_int_equal(g_cap.body_len, 0);
    assert_string_equal(g_cap.headers,
                        "Content-MD5: 1B2M2Y8AsgTpgAmY7PhCfg==\n"
                        "x-amz-object-lock-mode: GOVERNANCE\n"
                        "x-amz-object-lock-retain-until-date: 1970-01-01T00:00:01Z\n");
    /* An unversioned bucket answers without a version id. */
    cap_respond(200, "");
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.etag, "(null)");
    assert_string_equal(r.version_id, "(null)");

    in.lock_mode = KB_S3_LOCK_NONE;
    in.retain_until = 0; /* ignored without a mode */
    in.key = "a/b+c~d_e.f-(g)*h";
    assert_int_equal(kb_s3_put_object(NULL, &in, on_put, &r), 0);
    assert_string_equal(g_cap.path, "/a/b%2Bc~d_e.f-%28g%29%2Ah");
    assert_string_equal(g_cap.headers, "Content-MD5: 1B2M2Y8AsgTpgAmY7PhCfg==\n");
    cap_fail(KB_EAWS, 400, "InvalidRequest");
    assert_int_equal(r.g.err, KB_EAWS);
    assert_string_equal(r.g.code, "InvalidRequest");
}

/* -- GetObject -------------------------------------------------------------------------------- */

struct get_got {
    struct got g;
    unsigned char *taken; /* the body, taken from the result */
    size_t body_len;
    char version_id[64];
    char etag[64];
    enum kb_s3_lock_mode mode;
    time_t until;
    bool legal_hold;
    bool take;
};

static void on_get(void *ctx, const struct kb_aws_error *err, struct kb_s3_object *o)
{
    struct get_got *r = ctx;

    r->g.calls++;
    if ((err == NULL) == (o == NULL)) {
        r->g.err = -1;
        return;
    }
    if (err != NULL) {
        got_error(&r->g, err);
        return;
    }
    assert_non_null(o->body);
    assert_int_equal(o->body[o->body_len], '\0');
    r->body_len = o->body_len;
    if (r->take) {
        r->taken = o->body;
        o->body = NULL;
    }
    cap_copy(r->version_id, sizeof(r->version_id), o->version_id);
    cap_copy(r->etag, sizeof(r->etag), o->etag);
    r->mode = o->lock_mode;
    r->until = o->retain_until;
    r->legal_hold = o->legal_hold;
}

static void test_get_object_version_with_lock(void **state)
{
    struct kb_s3_get_object_input in = {.bucket = "kb-audit",
                                        .key = "anchors/000007.json",
                                        .version_id = "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
                                        .max_body = 4096};
    const char *const hdrs[] = {"ETag",
                                "\"b31ca1a7036c5f775eb5b68211961817\"",
                                "x-amz-version-id",
                                "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
                                "x-amz-object-lock-mode",
                                "COMPLIANCE",
                                "x-amz-object-lock-retain-until-date",
                                "2030-01-01T00:00:00.000Z",
                                NULL};
    struct get_got r = {.take = true};

    assert_int_equal(kb_s3_get_object(NULL, &in, on_get, &r), 0);
    assert_int_equal(r.g.calls, 0);
    assert_string_equal(g_cap.operation, "GetObject");
    assert_string_equal(g_cap.method, "GET");
    assert_string_equal(g_cap.path, "/anchors/000007.json");
    assert_string_equal(g_cap.query, "versionId=3HL4kqtJlcpXroDTDmJ%2BrmSpXd3dIbrHY");
    assert_string_equal(g_cap.headers, "");
    cap_respond_h(200, ANCHOR, hdrs);
    assert_int_equal(r.g.calls, 1);
    assert_int_equal(r.g.err, 0);
    assert_non_null(r.taken);
    assert_int_equal(r.body_len, strlen(ANCHOR));
    assert_memory_equal(r.taken, ANCHOR, strlen(ANCHOR));
    free(r.taken);
    assert_string_equal(r.version_id, "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY");
    assert_int_equal(r.mode, KB_S3_LOCK_COMPLIANCE);
    assert_int_equal(r.until, Y2030);
    assert_false(r.legal_hold);
}

static void test_get_object_current_plain(void **state)
{
    struct kb_s3_get_object_input in = {.bucket = "kb-audit", .key = "k", .max_body = 1};
    const char *const hold[] = {"x-amz-object-lock-legal-hold", "on", NULL};
    struct get_got r = {0}; /* leaves the body: freed after the callback */

    assert_int_equal(kb_s3_get_object(NULL, &in, on_get, &r), 0);
    assert_string_equal(g_cap.query, "(null)");
    cap_respond_h(200, "", hold);
    assert_int_equal(r.g.err, 0);
    assert_int_equal(r.body_len, 0);
    assert_int_equal(r.mode, KB_S3_LOCK_NONE);
    assert_int_equal(r.until, 0);
    assert_true(r.legal_hold);
    assert_string_equal(r.version_id, "(null)");

    memset(&r, 0, sizeof(r));
    assert_int_equal(kb_s3_get_object(NULL, &in, on_get, &r), 0);
    cap_respond(200, "x");
    assert_int_equal(r.g.err, 0);
    assert_int_equal(r.body_len, 1);

    memset(&r, 0, sizeof(r));
    assert_int_equal(kb_s3_get_object(NULL, &in, on_get, &r), 0);
    cap_fail(KB_EAWS, 404, "NoSuchKey");
    assert_int_equal(r.g.err, KB_EAWS);
    assert_string_equal(r.g.code, "NoSuchKey");
}

static void test_get_object_too_big(void **state)
{
    struct kb_s3_get_object_input in = {.bucket = "kb-audit", .key = "k", .max_body = 4};
    struct get_got r = {.take = true};

    assert_int_equal(kb_s3_get_object(NULL, &in, on_get, &r), 0);
    cap_respond(200, "12345");
    assert_int_equal(r.g.calls, 1);
    assert_int_equal(r.g.err, KB_ETOOBIG);
    assert_null(r.taken);
    assert_non_null(strstr(r.g.message, "5 bytes"));
    assert_non_null(strstr(r.g.message, "max_body (4 bytes)"));
    assert_string_equal(r.g.request_id, "req-1234");
}

static void test_get_object_bad_lock_headers(void **state)
{
    static const char *const cases[][5] = {
        {"x-amz-object-lock-mode", "FOREVER", "x-amz-object-lock-retain-until-date",
         "2030-01-01T00:00:00Z", NULL},
        {"x-amz-object-lock-mode", "COMPLIANCE", "x-amz-object-lock-retain-until-date", "soon",
         NULL},
        {"x-amz-object-lock-mode", "compliance", "x-amz-object-lock-retain-until-date",
         "2030-01-01T00:00:00Z", NULL},
        {"x-amz-object-lock-mode", "GOVERNANCE", NULL, NULL, NULL},
    };
    struct kb_s3_get_object_input in = {.bucket = "kb-audit", .key = "k", .max_body = 64};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct get_got r = {0};

        assert_int_equal(kb_s3_get_object(NULL, &in, on_get, &r), 0);
        cap_respond_h(200, "body", cases[i]);
        assert_int_equal(r.g.calls, 1);
        assert_int_equal(r.g.err, KB_EPARSE);
        assert_non_null(strstr(r.g.message, "x-amz-object-lock"));
    }
}

static void test_object_inputs_checked(void **state)
{
    static const char *const bad_keys[] = {NULL,   "",  "a/./b",     "../x",
                                           "a/..", ".", "tab\there", "del\x7f"};
    char long_key[1026];
    struct put_got r = {0};
    struct get_got gr = {0};
    struct kb_s3_put_object_input put = {.bucket = "kb-audit", .key = "k"};
    struct kb_s3_get_object_input get = {.bucket = "kb-audit", .key = "k", .max_body = 10};

    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
        put.key = get.key = bad_keys[i];
        assert_int_equal(kb_s3_put_object(NULL, &put, on_put, &r), KB_EINVAL);
        assert_int_equal(kb_s3_get_object(NULL, &get, on_get, &gr), KB_EINVAL);
    }
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    put.key = long_key;
    assert_int_equal(kb_s3_put_object(NULL, &put, on_put, &r), KB_EINVAL);
    long_key[1024] = '\0'; /* 1024 bytes: S3's limit, allowed */
    put.key = "..a/b..";   /* dots inside a segment are fine */
    put.lock_mode = KB_S3_LOCK_COMPLIANCE;
    put.retain_until = 0; /* a mode needs a date */
    assert_int_equal(kb_s3_put_object(NULL, &put, on_put, &r), KB_EINVAL);
    put.lock_mode = (enum kb_s3_lock_mode)7;
    put.retain_until = Y2030;
    assert_int_equal(kb_s3_put_object(NULL, &put, on_put, &r), KB_EINVAL);
    put.lock_mode = KB_S3_LOCK_NONE;
    put.body_len = 3; /* no body */
    assert_int_equal(kb_s3_put_object(NULL, &put, on_put, &r), KB_EINVAL);
    put.bucket = "no";
    put.body_len = 0;
    assert_int_equal(kb_s3_put_object(NULL, &put, on_put, &r), KB_EINVAL);
    get.key = "k";
    get.max_body = 0;
    assert_int_equal(kb_s3_get_object(NULL, &get, on_get, &gr), KB_EINVAL);
    get.max_body = KB_S3_MAX_PUT_BODY + 1;
    assert_int_equal(kb_s3_get_object(NULL, &get, on_get, &gr), KB_EINVAL);
    get.max_body = 1;
    assert_int_equal(kb_s3_get_object(NULL, &get, NULL, NULL), KB_EINVAL);
    assert_int_equal(g_cap.sends, 0);
    put.bucket = "kb-audit";
    put.key = long_key;
    assert_int_equal(kb_s3_put_object(NULL, &put, on_put, &r), 0);
    assert_int_equal(strlen(g_cap.path), 255); /* the capture keeps 255 bytes of the path */
    cap_respond(200, "");
}

/* -- ListObjectVersions ----------------------------------------------------------------------- */

struct list_got {
    struct got g;
    char entries[1024]; /* "V key version latest size etag mtime;" / "D key version latest;" */
    size_t versions, markers;
    bool truncated;
    char next_key[128];
    char next_vid[64];
};

static void list_add(struct list_got *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void list_add(struct list_got *r, const char *fmt, ...)
{
    size_t off = strlen(r->entries);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->entries + off, sizeof(r->entries) - off, fmt, ap);
    va_end(ap);
}

static void on_list(void *ctx, const struct kb_aws_error *err, const struct kb_s3_version_list *l)
{
    struct list_got *r = ctx;

    r->g.calls++;
    if ((err == NULL) == (l == NULL)) {
        r->g.err = -1;
        return;
    }
    if (err != NULL) {
        got_error(&r->g, err);
        return;
    }
    for (size_t i = 0; i < l->version_count; i++) {
        const struct kb_s3_object_version *v = &l->versions[i];

        list_add(r, "V %s %s %d %llu %s %lld;", v->key, v->version_id, v->is_latest, v->size,
                 v->etag != NULL ? v->etag : "-", (long long)v->last_modified);
    }
    for (size_t i = 0; i < l->delete_marker_count; i++) {
        const struct kb_s3_delete_marker *m = &l->delete_markers[i];

        list_add(r, "D %s %s %d %lld;", m->key, m->version_id, m->is_latest,
                 (long long)m->last_modified);
    }
    r->versions = l->version_count;
    r->markers = l->delete_marker_count;
    r->truncated = l->is_truncated;
    cap_copy(r->next_key, sizeof(r->next_key), l->next_key_marker);
    cap_copy(r->next_vid, sizeof(r->next_vid), l->next_version_id_marker);
    cap_copy(r->g.request_id, sizeof(r->g.request_id), l->request_id);
}

/* A page as S3 writes it with encoding-type=url: keys encoded, '+' for a space. */
static const char s_page_url[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListVersionsResult xmlns=\"" NS "\"><Name>kb-audit</Name><Prefix>anchors%2F</Prefix>"
    "<KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker>"
    "<NextKeyMarker>anchors%2Fb+c%2B.json</NextKeyMarker>"
    "<NextVersionIdMarker>v2b</NextVersionIdMarker><MaxKeys>3</MaxKeys>"
    "<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
    "<Version><Key>anchors%2Fa.json</Key><VersionId>v1</VersionId><IsLatest>true</IsLatest>"
    "<LastModified>2026-12-03T07:00:00.000Z</LastModified><ETag>\"e1\"</ETag><Size>42</Size>"
    "<Owner><ID>abc</ID></Owner><StorageClass>STANDARD</StorageClass></Version>"
    "<DeleteMarker><Key>anchors%2Fb+c%2B.json</Key><VersionId>m1</VersionId>"
    "<IsLatest>true</IsLatest><LastModified>2026-12-03T07:00:01.000Z</LastModified>"
    "</DeleteMarker>"
    "<Version><Key>anchors%2Fb+c%2B.json</Key><VersionId>v2b</VersionId>"
    "<IsLatest>false</IsLatest><LastModified>2026-12-03T07:00:00.000Z</LastModified>"
    "<ETag>\"e2\"</ETag><Size>0</Size></Version>"
    "</ListVersionsResult>";

static void test_list_object_versions_request(void **state)
{
    struct kb_s3_list_object_versions_input in = {.bucket = "kb-audit",
                                                  .prefix = "anchors/",
                                                  .key_marker = "anchors/b c+.json",
                                                  .version_id_marker = "v2b",
                                                  .max_keys = 3};
    struct list_got r = {0};

    assert_int_equal(kb_s3_list_object_versions(NULL, &in, on_list, &r), 0);
    assert_string_equal(g_cap.operation, "ListObjectVersions");
    assert_string_equal(g_cap.method, "GET");
    assert_string_equal(g_cap.path, "/");
    assert_string_equal(g_cap.query, "encoding-type=url&key-marker=anchors%2Fb%20c%2B.json"
                                     "&max-keys=3&prefix=anchors%2F&version-id-marker=v2b"
                                     "&versions=");
    cap_respond(200, s_page_url);
    assert_int_equal(r.g.err, 0);

    /* Without markers or a limit: the first page of the whole bucket, 1000 at most. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(
        kb_s3_list_object_versions(
            NULL, &(struct kb_s3_list_object_versions_input){.bucket = "kb-audit"}, on_list, &r),
        0);
    assert_string_equal(g_cap.query, "encoding-type=url&max-keys=1000&versions=");
    cap_respond(200, s_page_url);

    /* A version id marker without a key marker, or more than 1000 keys, never leaves. */
    in.key_marker = "";
    assert_int_equal(kb_s3_list_object_versions(NULL, &in, on_list, &r), KB_EINVAL);
    in.key_marker = "k";
    in.max_keys = 1001;
    assert_int_equal(kb_s3_list_object_versions(NULL, &in, on_list, &r), KB_EINVAL);
    in.max_keys = 0;
    in.bucket = "x";
    assert_int_equal(kb_s3_list_object_versions(NULL, &in, on_list, &r), KB_EINVAL);
    assert_int_equal(g_cap.sends, 2);
}

static void test_list_object_versions_url_page(void **state)
{
    struct kb_s3_list_object_versions_input in = {.bucket = "kb-audit"};
    struct list_got r = {0};

    assert_int_equal(kb_s3_list_object_versions(NULL, &in, on_list, &r), 0);
    cap_respond(200, s_page_url);
    assert_int_equal(r.g.calls, 1);
    assert_int_equal(r.g.err, 0);
    assert_int_equal(r.versions, 2);
    assert_int_equal(r.markers, 1);
    assert_string_equal(r.entries, "V anchors/a.json v1 1 42 \"e1\" 1796281200;"
                                   "V anchors/b c+.json v2b 0 0 \"e2\" 1796281200;"
                                   "D anchors/b c+.json m1 1 1796281201;");
    assert_true(r.truncated);
    assert_string_equal(r.next_key, "anchors/b c+.json");
    assert_string_equal(r.next_vid, "v2b");
    assert_string_equal(r.g.request_id, "req-1234");
}

static void test_list_object_versions_liberal(void **state)
{
    /* No namespace, no EncodingType (keys as they are, '+' kept), optional fields missing,
     * booleans in another case, an empty last page. */
    static const char plain[] =
        "<ListVersionsResult><IsTruncated>False</IsTruncated>"
        "<Version><Key>a+b%2F</Key><VersionId>null</VersionId><IsLatest>TRUE</IsLatest>"
        "</Version><DeleteMarker><Key>d</Key><VersionId>m</VersionId></DeleteMarker>"
        "</ListVersionsResult>";
    static const char upper[] =
        "<s3:ListVersionsResult xmlns:s3=\"" NS "\"><s3:EncodingType>URL</s3:EncodingType>"
        "<s3:Version><s3:Key>a%20b</s3:Key><s3:VersionId>v</s3:VersionId></s3:Version>"
        "</s3:ListVersionsResult>";
    static const char empty[] = "<ListVersionsResult xmlns=\"" NS "\"><Name>kb-audit</Name>"
                                "<IsTruncated>false</IsTruncated></ListVersionsResult>";
    struct kb_s3_list_object_versions_input in = {.bucket = "kb-audit"};
    struct list_got r = {0};

    assert_int_equal(kb_s3_list_object_versions(NULL, &in, on_list, &r), 0);
    cap_respond(200, plain);
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.entries, "V a+b%2F null 1 0 - 0;D d m 0 0;");
    assert_false(r.truncated);
    assert_string_equal(r.next_key, "(null)");

    memset(&r, 0, sizeof(r));
    assert_int_equal(kb_s3_list_object_versions(NULL, &in, on_list, &r), 0);
    cap_respond(200, upper);
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.entries, "V a b v 0 0 - 0;");

    memset(&r, 0, sizeof(r));
    assert_int_equal(kb_s3_list_object_versions(NULL, &in, on_list, &r), 0);
    cap_respond(200, empty);
    assert_int_equal(r.g.err, 0);
    assert_int_equal(r.versions + r.markers, 0);
}

static void test_list_object_versions_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "<ListVersionsResult><Version><Key>a</Key>",
        "<ListBucketResult></ListBucketResult>",
        "<ListVersionsResult><Version><VersionId>v</VersionId></Version></ListVersionsResult>",
        "<ListVersionsResult><Version><Key>a</Key></Version></ListVersionsResult>",
        "<ListVersionsResult><DeleteMarker><Key></Key><VersionId>v</VersionId></DeleteMarker>"
        "</ListVersionsResult>",
        "<ListVersionsResult><Version><Key>a</Key><VersionId>v</VersionId><Size>-1</Size>"
        "</Version></ListVersionsResult>",
        "<ListVersionsResult><Version><Key>a</Key><VersionId>v</VersionId><Size>12x</Size>"
        "</Version></ListVersionsResult>",
        "<ListVersionsResult><Version><Key>a</Key><VersionId>v</VersionId>"
        "<LastModified>yesterday</LastModified></Version></ListVersionsResult>",
        "<ListVersionsResult><IsTruncated>true</IsTruncated></ListVersionsResult>",
        "<ListVersionsResult><EncodingType>url</EncodingType><Version><Key>a%00b</Key>"
        "<VersionId>v</VersionId></Version></ListVersionsResult>",
        "<!DOCTYPE x [<!ENTITY e \"e\">]><ListVersionsResult/>",
    };
    struct kb_s3_list_object_versions_input in = {.bucket = "kb-audit"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct list_got r = {0};

        assert_int_equal(kb_s3_list_object_versions(NULL, &in, on_list, &r), 0);
        cap_respond(200, bad[i]);
        assert_int_equal(r.g.calls, 1);
        if (r.g.err != KB_EPARSE)
            fail_msg("page %zu: err %d (%s)", i, r.g.err, r.g.message);
        assert_non_null(strstr(r.g.message, "ListObjectVersions: "));
    }
}

static void test_list_object_versions_too_many(void **state)
{
    struct kb_s3_list_object_versions_input in = {.bucket = "kb-audit"};
    static const char item[] = "<DeleteMarker><Key>k</Key><VersionId>v</VersionId></DeleteMarker>";
    size_t n = 1001, cap = 64 + n * (sizeof(item) - 1);
    char *body = malloc(cap);
    struct list_got r = {0};
    size_t off;

    assert_non_null(body);
    off = (size_t)snprintf(body, cap, "<ListVersionsResult>");
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(body + off, cap - off, "%s", item);
    snprintf(body + off, cap - off, "</ListVersionsResult>");
    assert_int_equal(kb_s3_list_object_versions(NULL, &in, on_list, &r), 0);
    cap_respond(200, body);
    assert_int_equal(r.g.err, KB_EPARSE);
    assert_non_null(strstr(r.g.message, "more than 1000"));
    free(body);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_object_with_compliance_retention, cap_setup,
                                        cap_teardown),
        cmocka_unit_test_setup_teardown(test_put_object_plain_and_empty, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_object_inputs_checked, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_get_object_version_with_lock, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_get_object_current_plain, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_get_object_too_big, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_get_object_bad_lock_headers, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_list_object_versions_request, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_list_object_versions_url_page, cap_setup,
                                        cap_teardown),
        cmocka_unit_test_setup_teardown(test_list_object_versions_liberal, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_list_object_versions_malformed, cap_setup,
                                        cap_teardown),
        cmocka_unit_test_setup_teardown(test_list_object_versions_too_many, cap_setup,
                                        cap_teardown),
    };

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
