/*
 * s3_object.c - the S3 object calls: PutObject and GetObject (with Object Lock's headers) and
 * ListObjectVersions.
 *
 * Each call checks its input, puts the key into the path (kb_wire_path_add) and the parameters
 * into a sorted query, and sends through kb_s3__send (s3_internal.h). What PutObject and
 * GetObject answer is in headers; ListObjectVersions answers a ListVersionsResult, read with the
 * bounded field readers of wire.h. This module never logs, and never looks into an object's body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/awstime.h"
#include "aws/s3.h"
#include "aws/s3_internal.h"
#include "aws/wire.h"
#include "common/err.h"

#define S_MAX_KEY     1024 /* bytes of an object key (S3's limit) */
#define S_ISO_SIZE    21   /* "2030-01-01T00:00:00Z" + NUL */
#define S_MAX_ENTRIES KB_WIRE_MAX_ITEMS

/* -- input checks ----------------------------------------------------------------------------- */

/* A key S3 stores exactly as given: see s3.h. */
static bool s_key_ok(const char *key)
{
    const char *seg;

    if (!kb_wire_str_ok(key, S_MAX_KEY))
        return false;
    for (const char *p = key; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    }
    for (seg = key;; seg++) {
        size_t n = strcspn(seg, "/");

        if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        seg += n;
        if (*seg == '\0')
            return true;
    }
}

/* Optional string parameters: NULL or "" is absent, else at most max bytes. */
static bool s_opt_ok(const char *s, size_t max)
{
    return s == NULL || strnlen(s, max + 1) <= max;
}

static const char *s_mode_name(enum kb_s3_lock_mode m)
{
    switch (m) {
    case KB_S3_LOCK_GOVERNANCE:
        return "GOVERNANCE";
    case KB_S3_LOCK_COMPLIANCE:
        return "COMPLIANCE";
    default:
        return NULL;
    }
}

/* "2030-01-01T00:00:00Z": the ISO 8601 form S3's lock headers take. */
static int s_iso8601(time_t t, char out[S_ISO_SIZE])
{
    struct tm tm;

    if (t <= 0 || gmtime_r(&t, &tm) == NULL ||
        strftime(out, S_ISO_SIZE, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return KB_EINVAL;
    return 0;
}

/* -- response headers ------------------------------------------------------------------------- */

/* The header's value copied into the arena (NULL when absent or empty); KB_EPARSE when it is
 * longer than max. */
static int s_header(struct kb_svc_parse *p, const struct kb_aws_response *resp, const char *name,
                    size_t max, const char **out)
{
    const char *v = resp->http != NULL ? kb_http_response_header(resp->http, name) : NULL;
    size_t len;

    *out = NULL;
    if (v == NULL || v[0] == '\0')
        return 0;
    len = strlen(v);
    if (len > max)
        return kb_svc_fail(p, KB_EPARSE, "response header %s longer than %zu bytes", name, max);
    *out = kb_svc_strndup(p->arena, v, len);
    return *out != NULL ? 0 : kb_svc_fail(p, KB_ENOMEM, "out of memory");
}

static int s_parse_put(struct kb_svc_parse *p, const struct kb_aws_response *resp, void *result)
{
    struct kb_s3_put_object_result *r = result;
    int rc = s_header(p, resp, "ETag", KB_WIRE_MAX_ID, &r->etag);

    if (rc == 0)
        rc = s_header(p, resp, "x-amz-version-id", KB_WIRE_MAX_ID, &r->version_id);
    return rc;
}

/* The lock headers of a GetObject answer: strict, because an anchor's verifier trusts them. */
static int s_parse_lock(struct kb_svc_parse *p, const struct kb_aws_response *resp,
                        struct kb_s3_object *o)
{
    const char *mode, *until, *hold;
    int rc = s_header(p, resp, "x-amz-object-lock-mode", KB_WIRE_MAX_ID, &mode);

    if (rc == 0)
        rc = s_header(p, resp, "x-amz-object-lock-retain-until-date", KB_WIRE_MAX_ID, &until);
    if (rc == 0)
        rc = s_header(p, resp, "x-amz-object-lock-legal-hold", KB_WIRE_MAX_ID, &hold);
    if (rc != 0)
        return rc;
    if (mode != NULL && strcmp(mode, "GOVERNANCE") == 0)
        o->lock_mode = KB_S3_LOCK_GOVERNANCE;
    else if (mode != NULL && strcmp(mode, "COMPLIANCE") == 0)
        o->lock_mode = KB_S3_LOCK_COMPLIANCE;
    else if (mode != NULL)
        return kb_svc_fail(p, KB_EPARSE,
                           "response header x-amz-object-lock-mode is not "
                           "GOVERNANCE or COMPLIANCE");
    if (until != NULL && kb_awstime_parse(until, false, &o->retain_until) != 0)
        return kb_svc_fail(p, KB_EPARSE,
                           "response header x-amz-object-lock-retain-until-date is not a time");
    if ((mode != NULL) != (until != NULL))
        return kb_svc_fail(p, KB_EPARSE,
                           "response has only one of x-amz-object-lock-mode and "
                           "x-amz-object-lock-retain-until-date");
    o->legal_hold = hold != NULL && strcasecmp(hold, "ON") == 0;
    return 0;
}

/* -- GetObject -------------------------------------------------------------------------------- */

static int s_parse_get(struct kb_svc_parse *p, const struct kb_aws_response *resp, void *result)
{
    struct kb_s3_object *o = result;
    int rc = s_header(p, resp, "ETag", KB_WIRE_MAX_ID, &o->etag);

    if (rc == 0)
        rc = s_header(p, resp, "x-amz-version-id", KB_WIRE_MAX_ID, &o->version_id);
    if (rc == 0)
        rc = s_parse_lock(p, resp, o);
    if (rc != 0)
        return rc;
    o->body = malloc(resp->body_len + 1);
    if (o->body == NULL)
        return kb_svc_fail(p, KB_ENOMEM, "out of memory");
    if (resp->body_len > 0)
        memcpy(o->body, resp->body, resp->body_len);
    o->body[resp->body_len] = '\0';
    o->body_len = resp->body_len;
    return 0;
}

static void s_release_get(void *result)
{
    struct kb_s3_object *o = result;

    free(o->body);
    o->body = NULL;
}

/* The caller's limit on the body: a static op carries no per-call data, so GetObject's callback
 * goes through this, which turns a body over the limit into KB_ETOOBIG. */
struct s_get_call {
    kb_s3_object_cb cb;
    void *ctx;
    size_t max_body;
};

static void on_get(void *ctx, const struct kb_aws_error *err, struct kb_s3_object *obj)
{
    struct s_get_call *call = ctx;
    struct kb_aws_error big;

    if (obj != NULL && obj->body_len > call->max_body) {
        memset(&big, 0, sizeof(big));
        big.err = KB_ETOOBIG;
        big.status = 200;
        big.attempts = 1;
        snprintf(big.message, sizeof(big.message),
                 "GetObject: the object's body (%zu bytes) is larger than max_body (%zu bytes)",
                 obj->body_len, call->max_body);
        snprintf(big.request_id, sizeof(big.request_id), "%s", obj->request_id);
        snprintf(big.operation, sizeof(big.operation), "GetObject");
        err = &big;
        obj = NULL; /* the body is freed by s_release_get when this returns */
    }
    call->cb(call->ctx, err, obj);
    free(call);
}

/* -- ListObjectVersions ----------------------------------------------------------------------- */

/* Key-like text of an entry: raw at most 3 * S_MAX_KEY (a fully encoded key), decoded at most
 * S_MAX_KEY, required non-empty when required. */
static int s_xml_key(struct kb_svc_parse *p, const struct kb_xml_node *n, const char *path,
                     bool url, bool required, const char **out)
{
    const char *raw;
    size_t len = 0;
    int rc = kb_wire_xml_str(p, n, path, url ? 3 * S_MAX_KEY : S_MAX_KEY, required, &raw);

    *out = raw;
    if (rc != 0 || raw == NULL || !url)
        return rc;
    *out = kb_wire_form_decode(p->arena, raw, strlen(raw), &len);
    if (*out == NULL)
        return kb_svc_fail(p, KB_EPARSE, "response field %s does not URL-decode", path);
    if (len > S_MAX_KEY || (required && len == 0))
        return kb_svc_fail(p, KB_EPARSE, "response field %s decodes to %zu bytes", path, len);
    return 0;
}

static int s_xml_size(struct kb_svc_parse *p, const struct kb_xml_node *n, unsigned long long *out)
{
    const char *text;
    char *end = NULL;
    int rc = kb_wire_xml_str(p, n, "Size", 32, false, &text);

    *out = 0;
    if (rc != 0 || text == NULL)
        return rc;
    *out = strtoull(text, &end, 10);
    if (end == text || *end != '\0' || text[0] < '0' || text[0] > '9')
        return kb_svc_fail(p, KB_EPARSE, "response field Version/Size is not a number");
    return 0;
}

static int s_parse_version(struct kb_svc_parse *p, const struct kb_xml_node *n, bool url,
                           struct kb_s3_object_version *v)
{
    int rc = s_xml_key(p, n, "Key", url, true, &v->key);

    if (rc == 0)
        rc = kb_wire_xml_str(p, n, "VersionId", KB_WIRE_MAX_ID, true, &v->version_id);
    if (rc == 0)
        rc = kb_wire_xml_bool(p, n, "IsLatest", false, &v->is_latest);
    if (rc == 0)
        rc = s_xml_size(p, n, &v->size);
    if (rc == 0)
        rc = kb_wire_xml_str(p, n, "ETag", KB_WIRE_MAX_ID, false, &v->etag);
    if (rc == 0)
        rc = kb_wire_xml_time(p, n, "LastModified", false, &v->last_modified);
    return rc;
}

static int s_parse_marker(struct kb_svc_parse *p, const struct kb_xml_node *n, bool url,
                          struct kb_s3_delete_marker *m)
{
    int rc = s_xml_key(p, n, "Key", url, true, &m->key);

    if (rc == 0)
        rc = kb_wire_xml_str(p, n, "VersionId", KB_WIRE_MAX_ID, true, &m->version_id);
    if (rc == 0)
        rc = kb_wire_xml_bool(p, n, "IsLatest", false, &m->is_latest);
    if (rc == 0)
        rc = kb_wire_xml_time(p, n, "LastModified", false, &m->last_modified);
    return rc;
}

/* The Version and DeleteMarker entries (flattened lists: direct children of the root). */
static int s_parse_entries(struct kb_svc_parse *p, const struct kb_xml_node *root, bool url,
                           struct kb_s3_version_list *l)
{
    size_t nv = kb_xml_count(root, "Version"), nm = kb_xml_count(root, "DeleteMarker"), i;
    struct kb_s3_object_version *versions;
    struct kb_s3_delete_marker *markers;
    const struct kb_xml_node *n;
    int rc = 0;

    if (nv + nm > S_MAX_ENTRIES)
        return kb_svc_fail(p, KB_EPARSE, "response has more than %d versions and delete markers",
                           S_MAX_ENTRIES);
    versions = kb_svc_alloc(p->arena, nv * sizeof(*versions));
    markers = kb_svc_alloc(p->arena, nm * sizeof(*markers));
    if (versions == NULL || markers == NULL)
        return kb_svc_fail(p, KB_ENOMEM, "out of memory");
    for (i = 0, n = kb_xml_child(root, "Version"); rc == 0 && n != NULL; n = kb_xml_next(n))
        rc = s_parse_version(p, n, url, &versions[i++]);
    for (i = 0, n = kb_xml_child(root, "DeleteMarker"); rc == 0 && n != NULL; n = kb_xml_next(n))
        rc = s_parse_marker(p, n, url, &markers[i++]);
    l->versions = versions;
    l->version_count = nv;
    l->delete_markers = markers;
    l->delete_marker_count = nm;
    return rc;
}

static int s_parse_list(struct kb_svc_parse *p, const struct kb_aws_response *resp, void *result)
{
    struct kb_s3_version_list *l = result;
    const struct kb_xml_node *root;
    struct kb_xml_doc *doc;
    const char *encoding = NULL;
    bool url;
    int rc = kb_wire_xml_doc(p, resp, "ListVersionsResult", NULL, &doc);

    if (rc != 0)
        return rc;
    root = kb_xml_root(doc);
    rc = kb_wire_xml_str(p, root, "EncodingType", KB_WIRE_MAX_ID, false, &encoding);
    url = encoding != NULL && strcasecmp(encoding, "url") == 0;
    if (rc == 0)
        rc = kb_wire_xml_bool(p, root, "IsTruncated", false, &l->is_truncated);
    if (rc == 0)
        rc = s_xml_key(p, root, "NextKeyMarker", url, false, &l->next_key_marker);
    if (rc == 0)
        rc = kb_wire_xml_str(p, root, "NextVersionIdMarker", KB_WIRE_MAX_ID, false,
                             &l->next_version_id_marker);
    if (rc == 0 && l->is_truncated && (l->next_key_marker == NULL || l->next_key_marker[0] == 0))
        rc = kb_svc_fail(p, KB_EPARSE, "response is truncated but has no NextKeyMarker");
    if (rc == 0)
        rc = s_parse_entries(p, root, url, l);
    kb_xml_free(doc);
    return rc;
}

/* -- operations ------------------------------------------------------------------------------- */

KB_SVC_DELIVER(s_deliver_put, kb_s3_put_object_cb, const struct kb_s3_put_object_result)
KB_SVC_DELIVER(s_deliver_get, kb_s3_object_cb, struct kb_s3_object)
KB_SVC_DELIVER(s_deliver_list, kb_s3_version_list_cb, const struct kb_s3_version_list)

static const struct kb_svc_op s_op_put =
    KB_SVC_OP("PutObject", struct kb_s3_put_object_result, s_parse_put, NULL, s_deliver_put, NULL);
static const struct kb_svc_op s_op_get =
    KB_SVC_OP("GetObject", struct kb_s3_object, s_parse_get, NULL, s_deliver_get, s_release_get);
static const struct kb_svc_op s_op_list = KB_SVC_OP("ListObjectVersions", struct kb_s3_version_list,
                                                    s_parse_list, NULL, s_deliver_list, NULL);

int kb_s3_put_object(struct kb_aws_client *c, const struct kb_s3_put_object_input *in,
                     kb_s3_put_object_cb cb, void *ctx)
{
    struct kb_http_header lock[2];
    struct kb_s3__req r = {.method = "PUT", .content_md5 = true};
    struct kb_wire_buf path;
    char until[S_ISO_SIZE];
    const char *mode;
    int rc;

    if (in == NULL || !kb_s3__bucket_ok(in->bucket) || !s_key_ok(in->key) ||
        (in->body == NULL && in->body_len > 0) || in->body_len > KB_S3_MAX_PUT_BODY ||
        (in->content_type != NULL && !kb_wire_str_ok(in->content_type, KB_WIRE_MAX_ID)))
        return KB_EINVAL;
    mode = s_mode_name(in->lock_mode);
    if (in->lock_mode != KB_S3_LOCK_NONE) {
        if (mode == NULL || s_iso8601(in->retain_until, until) != 0)
            return KB_EINVAL;
        lock[0] = (struct kb_http_header){"x-amz-object-lock-mode", mode};
        lock[1] = (struct kb_http_header){"x-amz-object-lock-retain-until-date", until};
        r.extra = lock;
        r.extra_count = 2;
    }
    kb_wire_buf_init(&path, false);
    kb_wire_path_add(&path, in->key);
    rc = kb_wire_buf_status(&path);
    if (rc == 0) {
        r.bucket = in->bucket;
        r.path = path.ptr;
        /* An empty body still goes out as one (Content-Length: 0), with its Content-Type. */
        r.data = in->body_len > 0 ? in->body : "";
        r.data_len = in->body_len;
        r.content_type = in->content_type;
        rc = kb_s3__send(c, &s_op_put, &r, (kb_svc_fn)cb, ctx);
    }
    kb_wire_buf_free(&path);
    return rc;
}

int kb_s3_get_object(struct kb_aws_client *c, const struct kb_s3_get_object_input *in,
                     kb_s3_object_cb cb, void *ctx)
{
    struct kb_s3__req r = {.method = "GET"};
    struct kb_wire_buf path, q;
    struct s_get_call *call;
    int rc;

    if (in == NULL || cb == NULL || !kb_s3__bucket_ok(in->bucket) || !s_key_ok(in->key) ||
        (in->version_id != NULL && !kb_wire_str_ok(in->version_id, KB_WIRE_MAX_ID)) ||
        in->max_body == 0 || in->max_body > KB_S3_MAX_PUT_BODY)
        return KB_EINVAL;
    call = calloc(1, sizeof(*call));
    if (call == NULL)
        return KB_ENOMEM;
    call->cb = cb;
    call->ctx = ctx;
    call->max_body = in->max_body;
    kb_wire_buf_init(&path, false);
    kb_wire_buf_init(&q, false);
    kb_wire_path_add(&path, in->key);
    if (in->version_id != NULL)
        kb_wire_query_add(&q, "versionId", in->version_id);
    rc = kb_wire_buf_status(&path);
    if (rc == 0)
        rc = kb_wire_buf_status(&q);
    if (rc == 0) {
        r.bucket = in->bucket;
        r.path = path.ptr;
        r.query = q.len > 0 ? q.ptr : NULL;
        rc = kb_s3__send(c, &s_op_get, &r, (kb_svc_fn)on_get, call);
    }
    if (rc != 0)
        free(call);
    kb_wire_buf_free(&path);
    kb_wire_buf_free(&q);
    return rc;
}

int kb_s3_list_object_versions(struct kb_aws_client *c,
                               const struct kb_s3_list_object_versions_input *in,
                               kb_s3_version_list_cb cb, void *ctx)
{
    struct kb_s3__req r = {.method = "GET"};
    struct kb_wire_buf q;
    bool key_marker, vid_marker;
    char max[16];
    int rc;

    if (in == NULL || !kb_s3__bucket_ok(in->bucket) || in->max_keys > 1000 ||
        !s_opt_ok(in->prefix, S_MAX_KEY) || !s_opt_ok(in->key_marker, S_MAX_KEY) ||
        !s_opt_ok(in->version_id_marker, KB_WIRE_MAX_ID))
        return KB_EINVAL;
    key_marker = in->key_marker != NULL && in->key_marker[0] != '\0';
    vid_marker = in->version_id_marker != NULL && in->version_id_marker[0] != '\0';
    if (vid_marker && !key_marker)
        return KB_EINVAL; /* S3's InvalidArgument, refused before sending */
    snprintf(max, sizeof(max), "%u", in->max_keys > 0 ? in->max_keys : 1000);
    /* Parameters in canonical (sorted) order; values percent-encoded by libcurl. */
    kb_wire_buf_init(&q, false);
    kb_wire_query_add(&q, "encoding-type", "url");
    if (key_marker)
        kb_wire_query_add(&q, "key-marker", in->key_marker);
    kb_wire_query_add(&q, "max-keys", max);
    if (in->prefix != NULL && in->prefix[0] != '\0')
        kb_wire_query_add(&q, "prefix", in->prefix);
    if (vid_marker)
        kb_wire_query_add(&q, "version-id-marker", in->version_id_marker);
    kb_wire_query_add(&q, "versions", "");
    rc = kb_wire_buf_status(&q);
    if (rc == 0) {
        r.bucket = in->bucket;
        r.query = q.ptr;
        rc = kb_s3__send(c, &s_op_list, &r, (kb_svc_fn)cb, ctx);
    }
    kb_wire_buf_free(&q);
    return rc;
}
