/*
 * iam.c - IAM over the Query API: form-encoded POST bodies in, <OpResponse><OpResult> XML out.
 *
 * Every call is three steps: check the input, build the form (Action, Version, then the
 * operation's parameters, each URL-encoded by libcurl), and kb_svc_send() with the operation's
 * parser. The parsers read fields by path from the root and name that path when one is missing.
 */
#include "aws/iam.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "aws/wire.h"

#define S_VERSION  "2010-05-08"
#define S_PATH_MAX 128

static const struct kb_http_header s_form_headers[] = {
    {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
};

const char *kb_iam_key_status_name(enum kb_iam_key_status status)
{
    switch (status) {
    case KB_IAM_KEY_ACTIVE:
        return "Active";
    case KB_IAM_KEY_INACTIVE:
        return "Inactive";
    case KB_IAM_KEY_EXPIRED:
        return "Expired";
    }
    return "Unknown";
}

/* -- requests --------------------------------------------------------------------------------- */

static void s_form_start(struct kb_wire_buf *b, const char *action)
{
    kb_wire_buf_init(b, false);
    kb_wire_form_add(b, "Action", action);
    kb_wire_form_add(b, "Version", S_VERSION);
}

static void s_form_tags(struct kb_wire_buf *b, const struct kb_aws_tag *tags, size_t count)
{
    char key[48];

    for (size_t i = 0; i < count; i++) {
        snprintf(key, sizeof(key), "Tags.member.%zu.Key", i + 1);
        kb_wire_form_add(b, key, tags[i].key);
        snprintf(key, sizeof(key), "Tags.member.%zu.Value", i + 1);
        kb_wire_form_add(b, key, tags[i].value);
    }
}

/* Sends the form in b (freed here, whatever happens). */
static int s_send(struct kb_aws_client *c, const struct kb_svc_op *op, struct kb_wire_buf *b,
                  bool sensitive, kb_svc_fn cb, void *ctx)
{
    struct kb_aws_request req = {0};
    int rc = kb_wire_buf_status(b);

    if (rc == 0) {
        req.service = KB_AWS_IAM;
        req.method = "POST";
        req.path = "/";
        req.headers = s_form_headers;
        req.header_count = sizeof(s_form_headers) / sizeof(s_form_headers[0]);
        req.body = b->ptr;
        req.body_len = b->len;
        req.sensitive = sensitive;
        rc = kb_svc_send(c, op, &req, cb, ctx);
    }
    kb_wire_buf_free(b);
    return rc;
}

/* -- response parsing ------------------------------------------------------------------------- */

/* prefix + "/" + field into buf (the field's path from the root, for lookups and messages). */
static const char *s_path(char *buf, const char *prefix, const char *field)
{
    snprintf(buf, S_PATH_MAX, "%s/%s", prefix, field);
    return buf;
}

static int s_parse_status(struct kb_svc_parse *p, const struct kb_xml_node *root, const char *path,
                          enum kb_iam_key_status *out)
{
    const char *s;
    int rc = kb_wire_xml_str(p, root, path, KB_WIRE_MAX_ID, true, &s);

    if (rc != 0)
        return rc;
    if (strcmp(s, "Active") == 0)
        *out = KB_IAM_KEY_ACTIVE;
    else if (strcmp(s, "Inactive") == 0)
        *out = KB_IAM_KEY_INACTIVE;
    else if (strcmp(s, "Expired") == 0)
        *out = KB_IAM_KEY_EXPIRED;
    else
        return kb_svc_fail(p, KB_EPARSE, "response field %s is not a key status", path);
    return 0;
}

/* The <User> at prefix ("CreateUserResult/User"). */
static int s_parse_user(struct kb_svc_parse *p, const struct kb_xml_node *root, const char *prefix,
                        struct kb_iam_user *u)
{
    char path[S_PATH_MAX];
    int rc;

    if (kb_xml_path(root, prefix) == NULL)
        return kb_svc_fail(p, KB_EPARSE, "response field %s missing", prefix);
    rc = kb_wire_xml_str(p, root, s_path(path, prefix, "UserName"), KB_WIRE_MAX_NAME, true,
                         &u->user_name);
    if (rc == 0)
        rc = kb_wire_xml_str(p, root, s_path(path, prefix, "UserId"), KB_WIRE_MAX_ID, true,
                             &u->user_id);
    if (rc == 0)
        rc = kb_wire_xml_arn(p, root, s_path(path, prefix, "Arn"), true, &u->arn);
    if (rc == 0)
        rc = kb_wire_xml_str(p, root, s_path(path, prefix, "Path"), KB_WIRE_MAX_NAME, true,
                             &u->path);
    if (rc == 0)
        rc = kb_wire_xml_time(p, root, s_path(path, prefix, "CreateDate"), true, &u->create_date);
    if (rc == 0)
        rc = kb_wire_xml_arn(p, root,
                             s_path(path, prefix, "PermissionsBoundary/PermissionsBoundaryArn"),
                             false, &u->permissions_boundary_arn);
    if (rc == 0) {
        struct kb_aws_tag *tags;

        rc =
            kb_wire_xml_tags(p, root, s_path(path, prefix, "Tags"), "member", &tags, &u->tag_count);
        u->tags = tags;
    }
    return rc;
}

static int s_parse_with(struct kb_svc_parse *p, const struct kb_aws_response *resp,
                        const char *root_name, const char *secret_path,
                        int (*fn)(struct kb_svc_parse *, struct kb_xml_doc *, void *), void *out)
{
    struct kb_xml_doc *doc;
    int rc = kb_wire_xml_doc(p, resp, root_name, secret_path, &doc);

    if (rc != 0)
        return rc;
    rc = fn(p, doc, out);
    kb_xml_free(doc);
    return rc;
}

static int s_create_user_doc(struct kb_svc_parse *p, struct kb_xml_doc *doc, void *out)
{
    return s_parse_user(p, kb_xml_root(doc), "CreateUserResult/User", out);
}

static int s_parse_create_user(struct kb_svc_parse *p, const struct kb_aws_response *resp,
                               void *out)
{
    return s_parse_with(p, resp, "CreateUserResponse", NULL, s_create_user_doc, out);
}

static int s_get_user_doc(struct kb_svc_parse *p, struct kb_xml_doc *doc, void *out)
{
    return s_parse_user(p, kb_xml_root(doc), "GetUserResult/User", out);
}

static int s_parse_get_user(struct kb_svc_parse *p, const struct kb_aws_response *resp, void *out)
{
    return s_parse_with(p, resp, "GetUserResponse", NULL, s_get_user_doc, out);
}

static int s_list_tags_doc(struct kb_svc_parse *p, struct kb_xml_doc *doc, void *out)
{
    const struct kb_xml_node *root = kb_xml_root(doc);
    struct kb_iam_tags *t = out;
    struct kb_aws_tag *tags;
    int rc;

    if (kb_xml_child(root, "ListUserTagsResult") == NULL)
        return kb_svc_fail(p, KB_EPARSE, "response field ListUserTagsResult missing");
    rc = kb_wire_xml_tags(p, root, "ListUserTagsResult/Tags", "member", &tags, &t->tag_count);
    t->tags = tags;
    if (rc == 0)
        rc = kb_wire_xml_bool(p, root, "ListUserTagsResult/IsTruncated", false, &t->is_truncated);
    if (rc == 0 && t->is_truncated)
        rc = kb_wire_xml_str(p, root, "ListUserTagsResult/Marker", KB_WIRE_MAX_DOC, true,
                             &t->marker);
    return rc;
}

static int s_parse_list_tags(struct kb_svc_parse *p, const struct kb_aws_response *resp, void *out)
{
    return s_parse_with(p, resp, "ListUserTagsResponse", NULL, s_list_tags_doc, out);
}

static int s_user_policy_doc(struct kb_svc_parse *p, struct kb_xml_doc *doc, void *out)
{
    const struct kb_xml_node *root = kb_xml_root(doc);
    struct kb_iam_user_policy *pol = out;
    const char *raw;
    int rc;

    rc = kb_wire_xml_str(p, root, "GetUserPolicyResult/UserName", KB_WIRE_MAX_NAME, true,
                         &pol->user_name);
    if (rc == 0)
        rc = kb_wire_xml_str(p, root, "GetUserPolicyResult/PolicyName", KB_WIRE_MAX_NAME, true,
                             &pol->policy_name);
    if (rc == 0)
        rc = kb_wire_xml_str(p, root, "GetUserPolicyResult/PolicyDocument", KB_WIRE_MAX_DOC * 3,
                             true, &raw);
    if (rc != 0)
        return rc;
    /* IAM returns policy documents URL-encoded (RFC 3986). */
    pol->policy_document = kb_wire_url_decode(p->arena, raw, strlen(raw), NULL);
    if (pol->policy_document == NULL)
        return kb_svc_fail(p, KB_EPARSE,
                           "response field GetUserPolicyResult/PolicyDocument "
                           "is not URL-encoded text");
    return 0;
}

static int s_parse_user_policy(struct kb_svc_parse *p, const struct kb_aws_response *resp,
                               void *out)
{
    return s_parse_with(p, resp, "GetUserPolicyResponse", NULL, s_user_policy_doc, out);
}

#define S_SECRET_PATH "CreateAccessKeyResponse/CreateAccessKeyResult/AccessKey/SecretAccessKey"

static int s_access_key_doc(struct kb_svc_parse *p, struct kb_xml_doc *doc, void *out)
{
    const struct kb_xml_node *root = kb_xml_root(doc);
    const struct kb_xml_node *node;
    struct kb_iam_access_key *k = out;
    int rc;

    rc = kb_wire_xml_str(p, root, "CreateAccessKeyResult/AccessKey/UserName", KB_WIRE_MAX_NAME,
                         true, &k->user_name);
    if (rc == 0)
        rc = kb_wire_xml_key_id(p, root, "CreateAccessKeyResult/AccessKey/AccessKeyId",
                                &k->access_key_id);
    if (rc == 0)
        rc = s_parse_status(p, root, "CreateAccessKeyResult/AccessKey/Status", &k->status);
    if (rc == 0)
        rc = kb_wire_xml_time(p, root, "CreateAccessKeyResult/AccessKey/CreateDate", false,
                              &k->create_date);
    if (rc != 0)
        return rc;
    node = kb_xml_path(root, "CreateAccessKeyResult/AccessKey/SecretAccessKey");
    k->secret_access_key = node != NULL ? kb_xml_take_secret(doc, node) : NULL;
    if (k->secret_access_key == NULL || kb_secret_len(k->secret_access_key) == 0)
        return kb_svc_fail(p, KB_EPARSE, "response field %s missing",
                           "CreateAccessKeyResult/AccessKey/SecretAccessKey");
    if (!kb_wire_secret_key_ok(k->secret_access_key))
        return kb_svc_fail(p, KB_EPARSE, "response field %s is not a secret access key",
                           "CreateAccessKeyResult/AccessKey/SecretAccessKey");
    return 0;
}

static int s_parse_access_key(struct kb_svc_parse *p, const struct kb_aws_response *resp, void *out)
{
    return s_parse_with(p, resp, "CreateAccessKeyResponse", S_SECRET_PATH, s_access_key_doc, out);
}

static void s_release_access_key(void *result)
{
    struct kb_iam_access_key *k = result;

    kb_secret_destroy(k->secret_access_key);
    k->secret_access_key = NULL;
}

static int s_key_meta(struct kb_svc_parse *p, const struct kb_xml_node *m, size_t i,
                      struct kb_iam_access_key_meta *k)
{
    char path[S_PATH_MAX];
    int rc;

    snprintf(path, sizeof(path), "ListAccessKeysResult/AccessKeyMetadata/member[%zu]", i);
    if (kb_xml_child(m, "AccessKeyId") == NULL)
        return kb_svc_fail(p, KB_EPARSE, "response field %s/AccessKeyId missing", path);
    rc = kb_wire_xml_key_id(p, m, "AccessKeyId", &k->access_key_id);
    if (rc == 0)
        rc = kb_wire_xml_str(p, m, "UserName", KB_WIRE_MAX_NAME, false, &k->user_name);
    if (rc == 0)
        rc = s_parse_status(p, m, "Status", &k->status);
    if (rc == 0)
        rc = kb_wire_xml_time(p, m, "CreateDate", false, &k->create_date);
    return rc;
}

static int s_list_keys_doc(struct kb_svc_parse *p, struct kb_xml_doc *doc, void *out)
{
    const struct kb_xml_node *root = kb_xml_root(doc);
    const struct kb_xml_node *list, *m;
    struct kb_iam_access_keys *r = out;
    struct kb_iam_access_key_meta *keys;
    size_t n, i = 0;
    int rc = 0;

    if (kb_xml_child(root, "ListAccessKeysResult") == NULL)
        return kb_svc_fail(p, KB_EPARSE, "response field ListAccessKeysResult missing");
    list = kb_xml_path(root, "ListAccessKeysResult/AccessKeyMetadata");
    n = list != NULL ? kb_xml_count(list, "member") : 0;
    if (n > KB_WIRE_MAX_ITEMS)
        return kb_svc_fail(p, KB_EPARSE, "response has too many access keys");
    keys = kb_svc_alloc(p->arena, n * sizeof(*keys));
    if (keys == NULL)
        return kb_svc_fail(p, KB_ENOMEM, "out of memory");
    for (m = list != NULL ? kb_xml_child(list, "member") : NULL; m != NULL && rc == 0;
         m = kb_xml_next(m), i++)
        rc = s_key_meta(p, m, i, &keys[i]);
    r->keys = keys;
    r->count = n;
    if (rc == 0)
        rc = kb_wire_xml_bool(p, root, "ListAccessKeysResult/IsTruncated", false, &r->is_truncated);
    if (rc == 0 && r->is_truncated)
        rc = kb_wire_xml_str(p, root, "ListAccessKeysResult/Marker", KB_WIRE_MAX_DOC, true,
                             &r->marker);
    return rc;
}

static int s_parse_list_keys(struct kb_svc_parse *p, const struct kb_aws_response *resp, void *out)
{
    return s_parse_with(p, resp, "ListAccessKeysResponse", NULL, s_list_keys_doc, out);
}

/* -- operations ------------------------------------------------------------------------------- */

KB_SVC_DELIVER(s_deliver_user, kb_iam_user_cb, const struct kb_iam_user)
KB_SVC_DELIVER(s_deliver_tags, kb_iam_tags_cb, const struct kb_iam_tags)
KB_SVC_DELIVER(s_deliver_policy, kb_iam_user_policy_cb, const struct kb_iam_user_policy)
KB_SVC_DELIVER(s_deliver_key, kb_iam_access_key_cb, struct kb_iam_access_key)
KB_SVC_DELIVER(s_deliver_keys, kb_iam_access_keys_cb, const struct kb_iam_access_keys)

static const struct kb_svc_op s_op_create_user =
    KB_SVC_OP("CreateUser", struct kb_iam_user, s_parse_create_user, NULL, s_deliver_user, NULL);
static const struct kb_svc_op s_op_get_user =
    KB_SVC_OP("GetUser", struct kb_iam_user, s_parse_get_user, NULL, s_deliver_user, NULL);
static const struct kb_svc_op s_op_list_tags =
    KB_SVC_OP("ListUserTags", struct kb_iam_tags, s_parse_list_tags, NULL, s_deliver_tags, NULL);
static const struct kb_svc_op s_op_get_policy = KB_SVC_OP(
    "GetUserPolicy", struct kb_iam_user_policy, s_parse_user_policy, NULL, s_deliver_policy, NULL);
static const struct kb_svc_op s_op_create_key =
    KB_SVC_OP("CreateAccessKey", struct kb_iam_access_key, s_parse_access_key, NULL, s_deliver_key,
              s_release_access_key);
static const struct kb_svc_op s_op_list_keys = KB_SVC_OP(
    "ListAccessKeys", struct kb_iam_access_keys, s_parse_list_keys, NULL, s_deliver_keys, NULL);
KB_SVC_DONE_OP(s_op_tag_user, "TagUser");
KB_SVC_DONE_OP(s_op_untag_user, "UntagUser");
KB_SVC_DONE_OP(s_op_put_policy, "PutUserPolicy");
KB_SVC_DONE_OP(s_op_delete_policy, "DeleteUserPolicy");
KB_SVC_DONE_OP(s_op_delete_user, "DeleteUser");
KB_SVC_DONE_OP(s_op_update_key, "UpdateAccessKey");
KB_SVC_DONE_OP(s_op_delete_key, "DeleteAccessKey");

#define S_NAME_OK(s)     kb_wire_str_ok((s), KB_WIRE_MAX_NAME)
#define S_OPT_OK(s, max) ((s) == NULL || kb_wire_str_ok((s), (max)))

int kb_iam_create_user(struct kb_aws_client *c, const struct kb_iam_create_user_input *in,
                       kb_iam_user_cb cb, void *ctx)
{
    struct kb_wire_buf b;

    if (in == NULL || !S_NAME_OK(in->user_name) || !S_OPT_OK(in->path, KB_WIRE_MAX_NAME) ||
        !S_OPT_OK(in->permissions_boundary, KB_WIRE_MAX_ARN) ||
        !kb_wire_tags_ok(in->tags, in->tag_count, false))
        return KB_EINVAL;
    s_form_start(&b, "CreateUser");
    kb_wire_form_add(&b, "UserName", in->user_name);
    if (in->path != NULL)
        kb_wire_form_add(&b, "Path", in->path);
    if (in->permissions_boundary != NULL)
        kb_wire_form_add(&b, "PermissionsBoundary", in->permissions_boundary);
    s_form_tags(&b, in->tags, in->tag_count);
    return s_send(c, &s_op_create_user, &b, false, (kb_svc_fn)cb, ctx);
}

int kb_iam_get_user(struct kb_aws_client *c, const struct kb_iam_get_user_input *in,
                    kb_iam_user_cb cb, void *ctx)
{
    struct kb_wire_buf b;

    if (in == NULL || !S_OPT_OK(in->user_name, KB_WIRE_MAX_NAME))
        return KB_EINVAL;
    s_form_start(&b, "GetUser");
    if (in->user_name != NULL)
        kb_wire_form_add(&b, "UserName", in->user_name);
    return s_send(c, &s_op_get_user, &b, false, (kb_svc_fn)cb, ctx);
}

int kb_iam_tag_user(struct kb_aws_client *c, const struct kb_iam_tag_user_input *in,
                    kb_aws_done_cb cb, void *ctx)
{
    struct kb_wire_buf b;

    if (in == NULL || !S_NAME_OK(in->user_name) || !kb_wire_tags_ok(in->tags, in->tag_count, true))
        return KB_EINVAL;
    s_form_start(&b, "TagUser");
    kb_wire_form_add(&b, "UserName", in->user_name);
    s_form_tags(&b, in->tags, in->tag_count);
    return s_send(c, &s_op_tag_user, &b, false, (kb_svc_fn)cb, ctx);
}

int kb_iam_untag_user(struct kb_aws_client *c, const struct kb_iam_untag_user_input *in,
                      kb_aws_done_cb cb, void *ctx)
{
    struct kb_wire_buf b;
    char key[48];

    if (in == NULL || !S_NAME_OK(in->user_name) || in->key_count == 0 ||
        in->key_count > KB_WIRE_MAX_TAGS || in->keys == NULL)
        return KB_EINVAL;
    for (size_t i = 0; i < in->key_count; i++) {
        if (!kb_wire_str_ok(in->keys[i], KB_WIRE_MAX_TAG_KEY))
            return KB_EINVAL;
    }
    s_form_start(&b, "UntagUser");
    kb_wire_form_add(&b, "UserName", in->user_name);
    for (size_t i = 0; i < in->key_count; i++) {
        snprintf(key, sizeof(key), "TagKeys.member.%zu", i + 1);
        kb_wire_form_add(&b, key, in->keys[i]);
    }
    return s_send(c, &s_op_untag_user, &b, false, (kb_svc_fn)cb, ctx);
}

int kb_iam_list_user_tags(struct kb_aws_client *c, const struct kb_iam_list_user_tags_input *in,
                          kb_iam_tags_cb cb, void *ctx)
{
    struct kb_wire_buf b;

    if (in == NULL || !S_NAME_OK(in->user_name) || !S_OPT_OK(in->marker, KB_WIRE_MAX_DOC))
        return KB_EINVAL;
    s_form_start(&b, "ListUserTags");
    kb_wire_form_add(&b, "UserName", in->user_name);
    if (in->marker != NULL)
        kb_wire_form_add(&b, "Marker", in->marker);
    return s_send(c, &s_op_list_tags, &b, false, (kb_svc_fn)cb, ctx);
}

int kb_iam_put_user_policy(struct kb_aws_client *c, const struct kb_iam_put_user_policy_input *in,
                           kb_aws_done_cb cb, void *ctx)
{
    struct kb_wire_buf b;

    if (in == NULL || !S_NAME_OK(in->user_name) || !S_NAME_OK(in->policy_name) ||
        !kb_wire_str_ok(in->policy_document, KB_WIRE_MAX_DOC))
        return KB_EINVAL;
    s_form_start(&b, "PutUserPolicy");
    kb_wire_form_add(&b, "UserName", in->user_name);
    kb_wire_form_add(&b, "PolicyName", in->policy_name);
    kb_wire_form_add(&b, "PolicyDocument", in->policy_document);
    return s_send(c, &s_op_put_policy, &b, false, (kb_svc_fn)cb, ctx);
}

static int s_user_policy_form(struct kb_wire_buf *b, const char *action,
                              const struct kb_iam_user_policy_input *in)
{
    if (in == NULL || !S_NAME_OK(in->user_name) || !S_NAME_OK(in->policy_name))
        return KB_EINVAL;
    s_form_start(b, action);
    kb_wire_form_add(b, "UserName", in->user_name);
    kb_wire_form_add(b, "PolicyName", in->policy_name);
    return 0;
}

int kb_iam_get_user_policy(struct kb_aws_client *c, const struct kb_iam_user_policy_input *in,
                           kb_iam_user_policy_cb cb, void *ctx)
{
    struct kb_wire_buf b;
    int rc = s_user_policy_form(&b, "GetUserPolicy", in);

    return rc != 0 ? rc : s_send(c, &s_op_get_policy, &b, false, (kb_svc_fn)cb, ctx);
}

int kb_iam_delete_user_policy(struct kb_aws_client *c, const struct kb_iam_user_policy_input *in,
                              kb_aws_done_cb cb, void *ctx)
{
    struct kb_wire_buf b;
    int rc = s_user_policy_form(&b, "DeleteUserPolicy", in);

    return rc != 0 ? rc : s_send(c, &s_op_delete_policy, &b, false, (kb_svc_fn)cb, ctx);
}

int kb_iam_delete_user(struct kb_aws_client *c, const struct kb_iam_user_input *in,
                       kb_aws_done_cb cb, void *ctx)
{
    struct kb_wire_buf b;

    if (in == NULL || !S_NAME_OK(in->user_name))
        return KB_EINVAL;
    s_form_start(&b, "DeleteUser");
    kb_wire_form_add(&b, "UserName", in->user_name);
    return s_send(c, &s_op_delete_user, &b, false, (kb_svc_fn)cb, ctx);
}

int kb_iam_create_access_key(struct kb_aws_client *c, const struct kb_iam_user_input *in,
                             kb_iam_access_key_cb cb, void *ctx)
{
    struct kb_wire_buf b;

    if (in == NULL || !S_NAME_OK(in->user_name))
        return KB_EINVAL;
    s_form_start(&b, "CreateAccessKey");
    kb_wire_form_add(&b, "UserName", in->user_name);
    /* The request holds no secret, but the response does: sensitive makes the transport wipe it. */
    return s_send(c, &s_op_create_key, &b, true, (kb_svc_fn)cb, ctx);
}

int kb_iam_list_access_keys(struct kb_aws_client *c, const struct kb_iam_list_access_keys_input *in,
                            kb_iam_access_keys_cb cb, void *ctx)
{
    struct kb_wire_buf b;

    if (in == NULL || !S_NAME_OK(in->user_name) || !S_OPT_OK(in->marker, KB_WIRE_MAX_DOC))
        return KB_EINVAL;
    s_form_start(&b, "ListAccessKeys");
    kb_wire_form_add(&b, "UserName", in->user_name);
    if (in->marker != NULL)
        kb_wire_form_add(&b, "Marker", in->marker);
    return s_send(c, &s_op_list_keys, &b, false, (kb_svc_fn)cb, ctx);
}

int kb_iam_update_access_key(struct kb_aws_client *c,
                             const struct kb_iam_update_access_key_input *in, kb_aws_done_cb cb,
                             void *ctx)
{
    struct kb_wire_buf b;

    if (in == NULL || !S_NAME_OK(in->user_name) || !kb_wire_str_ok(in->access_key_id, 128) ||
        (in->status != KB_IAM_KEY_ACTIVE && in->status != KB_IAM_KEY_INACTIVE))
        return KB_EINVAL;
    s_form_start(&b, "UpdateAccessKey");
    kb_wire_form_add(&b, "UserName", in->user_name);
    kb_wire_form_add(&b, "AccessKeyId", in->access_key_id);
    kb_wire_form_add(&b, "Status", kb_iam_key_status_name(in->status));
    return s_send(c, &s_op_update_key, &b, false, (kb_svc_fn)cb, ctx);
}

int kb_iam_delete_access_key(struct kb_aws_client *c, const struct kb_iam_access_key_input *in,
                             kb_aws_done_cb cb, void *ctx)
{
    struct kb_wire_buf b;

    if (in == NULL || !S_NAME_OK(in->user_name) || !kb_wire_str_ok(in->access_key_id, 128))
        return KB_EINVAL;
    s_form_start(&b, "DeleteAccessKey");
    kb_wire_form_add(&b, "UserName", in->user_name);
    kb_wire_form_add(&b, "AccessKeyId", in->access_key_id);
    return s_send(c, &s_op_delete_key, &b, false, (kb_svc_fn)cb, ctx);
}
