/*
 * s3.c - S3 bucket configuration over REST-XML.
 *
 * Each call checks its input, writes its XML body (S3 namespace, text escaped), and sends it with
 * the bucket in kb_aws_request.bucket and the sub-resource as the query ("?tagging"). Content-MD5
 * comes from wire.c for the operations S3 requires a checksum on. kb_s3__send is shared with the
 * object calls (s3_object.c, s3_internal.h).
 */
#include "aws/s3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/s3_internal.h"
#include "aws/wire.h"
#include "common/err.h"

#define S_NS          KB_S3__NS
#define S_MAX_HEADERS (2 + KB_S3__MAX_EXTRA)

bool kb_s3__bucket_ok(const char *b)
{
    if (!kb_wire_str_ok(b, 255) || strlen(b) < 3)
        return false;
    for (; *b != '\0'; b++) {
        if (!((*b >= 'a' && *b <= 'z') || (*b >= 'A' && *b <= 'Z') || (*b >= '0' && *b <= '9') ||
              *b == '.' || *b == '-' || *b == '_'))
            return false;
    }
    return true;
}

int kb_s3__send(struct kb_aws_client *c, const struct kb_svc_op *op, const struct kb_s3__req *r,
                kb_svc_fn cb, void *ctx)
{
    struct kb_http_header headers[S_MAX_HEADERS];
    char md5[KB_WIRE_MD5_B64_SIZE];
    struct kb_aws_request req = {0};
    const void *body = r->body != NULL ? r->body->ptr : r->data;
    size_t body_len = r->body != NULL ? r->body->len : r->data_len;
    size_t n = 0;
    int rc = r->body != NULL ? kb_wire_buf_status(r->body) : 0;

    if (rc == 0 && (r->extra_count > KB_S3__MAX_EXTRA || (body == NULL && body_len > 0)))
        rc = KB_EINVAL;
    if (rc == 0 && r->content_md5)
        rc = kb_wire_content_md5(body != NULL ? body : "", body_len, md5);
    if (rc != 0)
        goto done;
    if (r->content_md5)
        headers[n++] = (struct kb_http_header){"Content-MD5", md5};
    if (body != NULL && r->content_type != NULL)
        headers[n++] = (struct kb_http_header){"Content-Type", r->content_type};
    for (size_t i = 0; i < r->extra_count; i++)
        headers[n++] = r->extra[i];
    req.service = KB_AWS_S3;
    req.method = r->method;
    req.bucket = r->bucket;
    req.path = r->path != NULL ? r->path : "/";
    req.query = r->query;
    req.headers = headers;
    req.header_count = n;
    req.body = body;
    req.body_len = body_len;
    req.credentials = r->credentials;
    req.max_attempts = r->max_attempts;
    rc = kb_svc_send(c, op, &req, cb, ctx);
done:
    if (r->body != NULL)
        kb_wire_buf_free(r->body);
    return rc;
}

static void s_xml_open(struct kb_wire_buf *b, const char *root)
{
    kb_wire_buf_init(b, false);
    kb_wire_buf_adds(b, "<");
    kb_wire_buf_adds(b, root);
    kb_wire_buf_adds(b, " xmlns=\"" S_NS "\">");
}

static void s_xml_close(struct kb_wire_buf *b, const char *root)
{
    kb_wire_buf_adds(b, "</");
    kb_wire_buf_adds(b, root);
    kb_wire_buf_adds(b, ">");
}

/* -- response parsing ------------------------------------------------------------------------- */

static int s_parse_pab(struct kb_svc_parse *p, const struct kb_aws_response *resp, void *result)
{
    struct kb_s3_public_access_block *cfg = result;
    struct kb_xml_doc *doc;
    const struct kb_xml_node *root;
    int rc = kb_wire_xml_doc(p, resp, "PublicAccessBlockConfiguration", NULL, &doc);

    if (rc != 0)
        return rc;
    root = kb_xml_root(doc);
    rc = kb_wire_xml_bool(p, root, "BlockPublicAcls", true, &cfg->block_public_acls);
    if (rc == 0)
        rc = kb_wire_xml_bool(p, root, "IgnorePublicAcls", true, &cfg->ignore_public_acls);
    if (rc == 0)
        rc = kb_wire_xml_bool(p, root, "BlockPublicPolicy", true, &cfg->block_public_policy);
    if (rc == 0)
        rc =
            kb_wire_xml_bool(p, root, "RestrictPublicBuckets", true, &cfg->restrict_public_buckets);
    kb_xml_free(doc);
    return rc;
}

static int s_parse_policy(struct kb_svc_parse *p, const struct kb_aws_response *resp, void *result)
{
    struct kb_s3_bucket_policy *pol = result;

    if (resp->body_len == 0)
        return kb_svc_fail(p, KB_EPARSE, "response body (the policy) empty");
    if (resp->body_len > KB_WIRE_MAX_DOC)
        return kb_svc_fail(p, KB_EPARSE, "response body (the policy) longer than %d bytes",
                           KB_WIRE_MAX_DOC);
    if (memchr(resp->body, '\0', resp->body_len) != NULL)
        return kb_svc_fail(p, KB_EPARSE, "response body (the policy) holds a NUL byte");
    pol->policy = kb_svc_strndup(p->arena, resp->body, resp->body_len);
    return pol->policy != NULL ? 0 : kb_svc_fail(p, KB_ENOMEM, "out of memory");
}

static int s_parse_tags(struct kb_svc_parse *p, const struct kb_aws_response *resp, void *result)
{
    struct kb_s3_tags *t = result;
    struct kb_xml_doc *doc;
    struct kb_aws_tag *tags;
    int rc = kb_wire_xml_doc(p, resp, "Tagging", NULL, &doc);

    if (rc != 0)
        return rc;
    if (kb_xml_child(kb_xml_root(doc), "TagSet") == NULL)
        rc = kb_svc_fail(p, KB_EPARSE, "response field Tagging/TagSet missing");
    if (rc == 0)
        rc = kb_wire_xml_tags(p, kb_xml_root(doc), "TagSet", "Tag", &tags, &t->tag_count);
    if (rc == 0)
        t->tags = tags;
    kb_xml_free(doc);
    return rc;
}

static int s_parse_encryption(struct kb_svc_parse *p, const struct kb_aws_response *resp,
                              void *result)
{
    struct kb_s3_bucket_encryption *e = result;
    struct kb_xml_doc *doc;
    const struct kb_xml_node *rule;
    int rc = kb_wire_xml_doc(p, resp, "ServerSideEncryptionConfiguration", NULL, &doc);

    if (rc != 0)
        return rc;
    rule = kb_xml_child(kb_xml_root(doc), "Rule");
    if (rule == NULL)
        rc = kb_svc_fail(p, KB_EPARSE,
                         "response field ServerSideEncryptionConfiguration/Rule "
                         "missing");
    if (rc == 0)
        rc = kb_wire_xml_str(p, rule, "ApplyServerSideEncryptionByDefault/SSEAlgorithm",
                             KB_WIRE_MAX_ID, true, &e->sse_algorithm);
    if (rc == 0)
        rc = kb_wire_xml_str(p, rule, "ApplyServerSideEncryptionByDefault/KMSMasterKeyID",
                             KB_WIRE_MAX_ARN, false, &e->kms_key_id);
    if (rc == 0)
        rc = kb_wire_xml_bool(p, rule, "BucketKeyEnabled", false, &e->bucket_key_enabled);
    kb_xml_free(doc);
    return rc;
}

static int s_parse_ownership(struct kb_svc_parse *p, const struct kb_aws_response *resp,
                             void *result)
{
    struct kb_s3_ownership_controls *oc = result;
    struct kb_xml_doc *doc;
    int rc = kb_wire_xml_doc(p, resp, "OwnershipControls", NULL, &doc);

    if (rc != 0)
        return rc;
    rc = kb_wire_xml_str(p, kb_xml_root(doc), "Rule/ObjectOwnership", KB_WIRE_MAX_ID, true,
                         &oc->object_ownership);
    kb_xml_free(doc);
    return rc;
}

static int s_parse_list(struct kb_svc_parse *p, const struct kb_aws_response *resp, void *result)
{
    struct kb_s3_object_list *l = result;
    struct kb_xml_doc *doc;
    const char *count = NULL;
    char *end = NULL;
    int rc = kb_wire_xml_doc(p, resp, "ListBucketResult", NULL, &doc);

    if (rc != 0)
        return rc;
    rc = kb_wire_xml_str(p, kb_xml_root(doc), "KeyCount", 32, false, &count);
    if (rc == 0 && count != NULL) {
        l->key_count = strtoul(count, &end, 10);
        if (end == count || *end != '\0' || count[0] == '-')
            rc = kb_svc_fail(p, KB_EPARSE, "response field KeyCount is not a number");
    }
    if (rc == 0)
        rc = kb_wire_xml_bool(p, kb_xml_root(doc), "IsTruncated", false, &l->is_truncated);
    kb_xml_free(doc);
    return rc;
}

static bool s_absorb_no_tags(struct kb_svc_parse *p, const struct kb_aws_error *err, void *result)
{
    struct kb_s3_tags *t = result;

    if (err->err != KB_EAWS || strcmp(err->code, "NoSuchTagSet") != 0)
        return false;
    t->tags = NULL;
    t->tag_count = 0;
    return true;
}

static int s_parse_head(struct kb_svc_parse *p, const struct kb_aws_response *resp, void *result)
{
    struct kb_s3_bucket_head *h = result;
    const char *region =
        resp->http != NULL ? kb_http_response_header(resp->http, "x-amz-bucket-region") : NULL;

    h->exists = true;
    if (region != NULL && region[0] != '\0') {
        if (strlen(region) > KB_WIRE_MAX_NAME)
            return kb_svc_fail(p, KB_EPARSE, "response header x-amz-bucket-region too long");
        h->region = kb_svc_strndup(p->arena, region, strlen(region));
        if (h->region == NULL)
            return kb_svc_fail(p, KB_ENOMEM, "out of memory");
    }
    return 0;
}

static bool s_absorb_not_found(struct kb_svc_parse *p, const struct kb_aws_error *err, void *result)
{
    struct kb_s3_bucket_head *h = result;

    if (err->err != KB_EAWS || err->status != 404)
        return false;
    h->exists = false;
    h->region = NULL;
    return true;
}

/* -- operations ------------------------------------------------------------------------------- */

KB_SVC_DELIVER(s_deliver_pab, kb_s3_public_access_block_cb, const struct kb_s3_public_access_block)
KB_SVC_DELIVER(s_deliver_policy, kb_s3_bucket_policy_cb, const struct kb_s3_bucket_policy)
KB_SVC_DELIVER(s_deliver_tags, kb_s3_tags_cb, const struct kb_s3_tags)
KB_SVC_DELIVER(s_deliver_head, kb_s3_bucket_head_cb, const struct kb_s3_bucket_head)
KB_SVC_DELIVER(s_deliver_encryption, kb_s3_bucket_encryption_cb,
               const struct kb_s3_bucket_encryption)
KB_SVC_DELIVER(s_deliver_ownership, kb_s3_ownership_controls_cb,
               const struct kb_s3_ownership_controls)
KB_SVC_DELIVER(s_deliver_list, kb_s3_object_list_cb, const struct kb_s3_object_list)

static const struct kb_svc_op s_op_get_pab =
    KB_SVC_OP("GetPublicAccessBlock", struct kb_s3_public_access_block, s_parse_pab, NULL,
              s_deliver_pab, NULL);
static const struct kb_svc_op s_op_get_policy = KB_SVC_OP(
    "GetBucketPolicy", struct kb_s3_bucket_policy, s_parse_policy, NULL, s_deliver_policy, NULL);
static const struct kb_svc_op s_op_get_tags = KB_SVC_OP(
    "GetBucketTagging", struct kb_s3_tags, s_parse_tags, s_absorb_no_tags, s_deliver_tags, NULL);
static const struct kb_svc_op s_op_head = KB_SVC_OP(
    "HeadBucket", struct kb_s3_bucket_head, s_parse_head, s_absorb_not_found, s_deliver_head, NULL);
static const struct kb_svc_op s_op_get_encryption =
    KB_SVC_OP("GetBucketEncryption", struct kb_s3_bucket_encryption, s_parse_encryption, NULL,
              s_deliver_encryption, NULL);
static const struct kb_svc_op s_op_get_ownership =
    KB_SVC_OP("GetBucketOwnershipControls", struct kb_s3_ownership_controls, s_parse_ownership,
              NULL, s_deliver_ownership, NULL);
static const struct kb_svc_op s_op_list =
    KB_SVC_OP("ListObjectsV2", struct kb_s3_object_list, s_parse_list, NULL, s_deliver_list, NULL);
KB_SVC_DONE_OP(s_op_create, "CreateBucket");
KB_SVC_DONE_OP(s_op_put_pab, "PutPublicAccessBlock");
KB_SVC_DONE_OP(s_op_put_encryption, "PutBucketEncryption");
KB_SVC_DONE_OP(s_op_put_ownership, "PutBucketOwnershipControls");
KB_SVC_DONE_OP(s_op_put_policy, "PutBucketPolicy");
KB_SVC_DONE_OP(s_op_put_tags, "PutBucketTagging");
KB_SVC_DONE_OP(s_op_delete, "DeleteBucket");

/* <Tag><Key>k</Key><Value>v</Value></Tag> for each tag (the members of a TagSet or Tags). */
static void s_xml_tags(struct kb_wire_buf *b, const struct kb_aws_tag *tags, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        kb_wire_buf_adds(b, "<Tag>");
        kb_wire_xml_elem(b, "Key", tags[i].key);
        kb_wire_xml_elem(b, "Value", tags[i].value);
        kb_wire_buf_adds(b, "</Tag>");
    }
}

int kb_s3_create_bucket(struct kb_aws_client *c, const struct kb_s3_create_bucket_input *in,
                        kb_aws_done_cb cb, void *ctx)
{
    struct kb_wire_buf b;
    struct kb_s3__req r = {.method = "PUT", .content_type = "application/xml"};
    struct kb_http_header ownership;
    const char *region;
    bool constraint;

    if (in == NULL || !kb_s3__bucket_ok(in->bucket) ||
        (in->object_ownership != NULL && !kb_wire_str_ok(in->object_ownership, KB_WIRE_MAX_ID)) ||
        !kb_wire_tags_ok(in->tags, in->tag_count, false))
        return KB_EINVAL;
    region = in->region != NULL ? in->region : (c != NULL ? kb_aws_client_region(c) : NULL);
    if (!kb_wire_str_ok(region, 64))
        return KB_EINVAL;
    r.bucket = in->bucket;
    constraint = strcmp(region, "us-east-1") != 0;
    if (constraint || in->tag_count > 0) {
        s_xml_open(&b, "CreateBucketConfiguration");
        if (constraint)
            kb_wire_xml_elem(&b, "LocationConstraint", region);
        if (in->tag_count > 0) {
            kb_wire_buf_adds(&b, "<Tags>");
            s_xml_tags(&b, in->tags, in->tag_count);
            kb_wire_buf_adds(&b, "</Tags>");
        }
        s_xml_close(&b, "CreateBucketConfiguration");
        r.body = &b;
    }
    if (in->object_ownership != NULL) {
        ownership = (struct kb_http_header){"x-amz-object-ownership", in->object_ownership};
        r.extra = &ownership;
        r.extra_count = 1;
    }
    return kb_s3__send(c, &s_op_create, &r, (kb_svc_fn)cb, ctx);
}

static const char *s_bool(bool v)
{
    return v ? "true" : "false";
}

int kb_s3_put_public_access_block(struct kb_aws_client *c,
                                  const struct kb_s3_put_public_access_block_input *in,
                                  kb_aws_done_cb cb, void *ctx)
{
    struct kb_wire_buf b;
    struct kb_s3__req r = {.method = "PUT",
                           .query = "publicAccessBlock",
                           .content_md5 = true,
                           .content_type = "application/xml"};

    if (in == NULL || !kb_s3__bucket_ok(in->bucket))
        return KB_EINVAL;
    r.bucket = in->bucket;
    r.body = &b;
    s_xml_open(&b, "PublicAccessBlockConfiguration");
    kb_wire_xml_elem(&b, "BlockPublicAcls", s_bool(in->config.block_public_acls));
    kb_wire_xml_elem(&b, "IgnorePublicAcls", s_bool(in->config.ignore_public_acls));
    kb_wire_xml_elem(&b, "BlockPublicPolicy", s_bool(in->config.block_public_policy));
    kb_wire_xml_elem(&b, "RestrictPublicBuckets", s_bool(in->config.restrict_public_buckets));
    s_xml_close(&b, "PublicAccessBlockConfiguration");
    return kb_s3__send(c, &s_op_put_pab, &r, (kb_svc_fn)cb, ctx);
}

static int s_get(struct kb_aws_client *c, const struct kb_svc_op *op,
                 const struct kb_s3_bucket_input *in, const char *query, kb_svc_fn cb, void *ctx)
{
    struct kb_s3__req r = {.method = "GET", .query = query};

    if (in == NULL || !kb_s3__bucket_ok(in->bucket))
        return KB_EINVAL;
    r.bucket = in->bucket;
    return kb_s3__send(c, op, &r, cb, ctx);
}

int kb_s3_get_public_access_block(struct kb_aws_client *c, const struct kb_s3_bucket_input *in,
                                  kb_s3_public_access_block_cb cb, void *ctx)
{
    return s_get(c, &s_op_get_pab, in, "publicAccessBlock", (kb_svc_fn)cb, ctx);
}

int kb_s3_put_bucket_encryption(struct kb_aws_client *c,
                                const struct kb_s3_put_bucket_encryption_input *in,
                                kb_aws_done_cb cb, void *ctx)
{
    struct kb_wire_buf b;
    struct kb_s3__req r = {.method = "PUT",
                           .query = "encryption",
                           .content_md5 = true,
                           .content_type = "application/xml"};
    bool kms;

    if (in == NULL || !kb_s3__bucket_ok(in->bucket) ||
        (in->algorithm != KB_S3_SSE_S3 && in->algorithm != KB_S3_SSE_KMS))
        return KB_EINVAL;
    kms = in->algorithm == KB_S3_SSE_KMS;
    if (in->kms_key_id != NULL && (!kms || !kb_wire_str_ok(in->kms_key_id, KB_WIRE_MAX_ARN)))
        return KB_EINVAL;
    r.bucket = in->bucket;
    r.body = &b;
    s_xml_open(&b, "ServerSideEncryptionConfiguration");
    kb_wire_buf_adds(&b, "<Rule><ApplyServerSideEncryptionByDefault>");
    kb_wire_xml_elem(&b, "SSEAlgorithm", kms ? "aws:kms" : "AES256");
    if (in->kms_key_id != NULL)
        kb_wire_xml_elem(&b, "KMSMasterKeyID", in->kms_key_id);
    kb_wire_buf_adds(&b, "</ApplyServerSideEncryptionByDefault>");
    if (kms)
        kb_wire_xml_elem(&b, "BucketKeyEnabled", s_bool(in->bucket_key_enabled));
    kb_wire_buf_adds(&b, "</Rule>");
    s_xml_close(&b, "ServerSideEncryptionConfiguration");
    return kb_s3__send(c, &s_op_put_encryption, &r, (kb_svc_fn)cb, ctx);
}

int kb_s3_get_bucket_encryption(struct kb_aws_client *c, const struct kb_s3_bucket_input *in,
                                kb_s3_bucket_encryption_cb cb, void *ctx)
{
    return s_get(c, &s_op_get_encryption, in, "encryption", (kb_svc_fn)cb, ctx);
}

int kb_s3_put_bucket_ownership_controls(struct kb_aws_client *c,
                                        const struct kb_s3_put_bucket_ownership_controls_input *in,
                                        kb_aws_done_cb cb, void *ctx)
{
    struct kb_wire_buf b;
    struct kb_s3__req r = {.method = "PUT",
                           .query = "ownershipControls",
                           .content_md5 = true,
                           .content_type = "application/xml"};

    if (in == NULL || !kb_s3__bucket_ok(in->bucket) ||
        (in->object_ownership != NULL && !kb_wire_str_ok(in->object_ownership, KB_WIRE_MAX_ID)))
        return KB_EINVAL;
    r.bucket = in->bucket;
    r.body = &b;
    s_xml_open(&b, "OwnershipControls");
    kb_wire_buf_adds(&b, "<Rule>");
    kb_wire_xml_elem(&b, "ObjectOwnership",
                     in->object_ownership != NULL ? in->object_ownership : "BucketOwnerEnforced");
    kb_wire_buf_adds(&b, "</Rule>");
    s_xml_close(&b, "OwnershipControls");
    return kb_s3__send(c, &s_op_put_ownership, &r, (kb_svc_fn)cb, ctx);
}

int kb_s3_get_bucket_ownership_controls(struct kb_aws_client *c,
                                        const struct kb_s3_bucket_input *in,
                                        kb_s3_ownership_controls_cb cb, void *ctx)
{
    return s_get(c, &s_op_get_ownership, in, "ownershipControls", (kb_svc_fn)cb, ctx);
}

int kb_s3_put_bucket_policy(struct kb_aws_client *c, const struct kb_s3_put_bucket_policy_input *in,
                            kb_aws_done_cb cb, void *ctx)
{
    struct kb_wire_buf b;
    struct kb_s3__req r = {.method = "PUT",
                           .query = "policy",
                           .content_md5 = true,
                           .content_type = "application/json"};

    if (in == NULL || !kb_s3__bucket_ok(in->bucket) || !kb_wire_str_ok(in->policy, KB_WIRE_MAX_DOC))
        return KB_EINVAL;
    r.bucket = in->bucket;
    r.body = &b;
    kb_wire_buf_init(&b, false);
    kb_wire_buf_adds(&b, in->policy);
    return kb_s3__send(c, &s_op_put_policy, &r, (kb_svc_fn)cb, ctx);
}

int kb_s3_get_bucket_policy(struct kb_aws_client *c, const struct kb_s3_bucket_input *in,
                            kb_s3_bucket_policy_cb cb, void *ctx)
{
    return s_get(c, &s_op_get_policy, in, "policy", (kb_svc_fn)cb, ctx);
}

int kb_s3_put_bucket_tagging(struct kb_aws_client *c,
                             const struct kb_s3_put_bucket_tagging_input *in, kb_aws_done_cb cb,
                             void *ctx)
{
    struct kb_wire_buf b;
    struct kb_s3__req r = {.method = "PUT",
                           .query = "tagging",
                           .content_md5 = true,
                           .content_type = "application/xml"};

    if (in == NULL || !kb_s3__bucket_ok(in->bucket) ||
        !kb_wire_tags_ok(in->tags, in->tag_count, true))
        return KB_EINVAL;
    r.bucket = in->bucket;
    r.body = &b;
    s_xml_open(&b, "Tagging");
    kb_wire_buf_adds(&b, "<TagSet>");
    s_xml_tags(&b, in->tags, in->tag_count);
    kb_wire_buf_adds(&b, "</TagSet>");
    s_xml_close(&b, "Tagging");
    return kb_s3__send(c, &s_op_put_tags, &r, (kb_svc_fn)cb, ctx);
}

int kb_s3_get_bucket_tagging(struct kb_aws_client *c, const struct kb_s3_bucket_input *in,
                             kb_s3_tags_cb cb, void *ctx)
{
    return s_get(c, &s_op_get_tags, in, "tagging", (kb_svc_fn)cb, ctx);
}

int kb_s3_head_bucket(struct kb_aws_client *c, const struct kb_s3_head_bucket_input *in,
                      kb_s3_bucket_head_cb cb, void *ctx)
{
    struct kb_s3__req r = {.method = "HEAD"};

    if (in == NULL || !kb_s3__bucket_ok(in->bucket))
        return KB_EINVAL;
    r.bucket = in->bucket;
    r.credentials = in->credentials;
    r.max_attempts = in->max_attempts;
    return kb_s3__send(c, &s_op_head, &r, (kb_svc_fn)cb, ctx);
}

int kb_s3_list_objects_v2(struct kb_aws_client *c, const struct kb_s3_list_objects_input *in,
                          kb_s3_object_list_cb cb, void *ctx)
{
    struct kb_wire_buf q;
    struct kb_s3__req r = {.method = "GET"};
    char max[16];
    int rc;

    if (in == NULL || !kb_s3__bucket_ok(in->bucket) || in->max_keys > 1000 ||
        (in->prefix != NULL && strnlen(in->prefix, KB_WIRE_MAX_NAME + 1) > KB_WIRE_MAX_NAME))
        return KB_EINVAL;
    snprintf(max, sizeof(max), "%u", in->max_keys);
    /* Parameters in canonical (sorted) order; values percent-encoded by libcurl. */
    kb_wire_buf_init(&q, false);
    kb_wire_query_add(&q, "list-type", "2");
    kb_wire_query_add(&q, "max-keys", max);
    if (in->prefix != NULL && in->prefix[0] != '\0')
        kb_wire_query_add(&q, "prefix", in->prefix);
    rc = kb_wire_buf_status(&q);
    if (rc == 0) {
        r.bucket = in->bucket;
        r.query = q.ptr;
        r.credentials = in->credentials;
        r.max_attempts = in->max_attempts;
        rc = kb_s3__send(c, &s_op_list, &r, (kb_svc_fn)cb, ctx);
    }
    kb_wire_buf_free(&q);
    return rc;
}

int kb_s3_delete_bucket(struct kb_aws_client *c, const struct kb_s3_bucket_input *in,
                        kb_aws_done_cb cb, void *ctx)
{
    struct kb_s3__req r = {.method = "DELETE"};

    if (in == NULL || !kb_s3__bucket_ok(in->bucket))
        return KB_EINVAL;
    r.bucket = in->bucket;
    return kb_s3__send(c, &s_op_delete, &r, (kb_svc_fn)cb, ctx);
}
