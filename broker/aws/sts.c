/*
 * sts.c - GetCallerIdentity over the Query API (version 2011-06-15).
 */
#include "aws/sts.h"

#include "common/err.h"
#include "aws/wire.h"

static const struct kb_http_header s_form_headers[] = {
    {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
};

static int s_identity_doc(struct kb_svc_parse *p, const struct kb_xml_node *root,
                          struct kb_sts_identity *id)
{
    int rc = kb_wire_xml_str(p, root, "GetCallerIdentityResult/Account", KB_WIRE_MAX_ID, true,
                             &id->account);

    if (rc == 0)
        rc = kb_wire_xml_arn(p, root, "GetCallerIdentityResult/Arn", true, &id->arn);
    if (rc == 0)
        rc = kb_wire_xml_str(p, root, "GetCallerIdentityResult/UserId", KB_WIRE_MAX_NAME, true,
                             &id->user_id);
    return rc;
}

static int s_parse_identity(struct kb_svc_parse *p, const struct kb_aws_response *resp,
                            void *result)
{
    struct kb_xml_doc *doc;
    int rc = kb_wire_xml_doc(p, resp, "GetCallerIdentityResponse", NULL, &doc);

    if (rc != 0)
        return rc;
    rc = s_identity_doc(p, kb_xml_root(doc), result);
    kb_xml_free(doc);
    return rc;
}

KB_SVC_DELIVER(s_deliver_identity, kb_sts_identity_cb, const struct kb_sts_identity)

static const struct kb_svc_op s_op_identity = KB_SVC_OP(
    "GetCallerIdentity", struct kb_sts_identity, s_parse_identity, NULL, s_deliver_identity, NULL);

int kb_sts_get_caller_identity(struct kb_aws_client *c,
                               const struct kb_sts_get_caller_identity_input *in,
                               kb_sts_identity_cb cb, void *ctx)
{
    static const char body[] = "Action=GetCallerIdentity&Version=2011-06-15";
    struct kb_aws_request req = {0};

    if (in == NULL)
        return KB_EINVAL;
    req.service = KB_AWS_STS;
    req.method = "POST";
    req.path = "/";
    req.headers = s_form_headers;
    req.header_count = sizeof(s_form_headers) / sizeof(s_form_headers[0]);
    req.body = body;
    req.body_len = sizeof(body) - 1;
    req.credentials = in->credentials;
    req.max_attempts = in->max_attempts;
    return kb_svc_send(c, &s_op_identity, &req, (kb_svc_fn)cb, ctx);
}
