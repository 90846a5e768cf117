/*
 * sts.h - sts:GetCallerIdentity, the cheapest signed call there is: keybroker's readiness probe of
 * a freshly created access key, and a "who am I" at start-up.
 *
 * Same contract as every typed call (see iam.h): the input is borrowed only during the call, the
 * callback runs exactly once, later, with exactly one of err and the result non-NULL, both
 * borrowed until it returns; a negative return means the callback will not run. This module never
 * logs and never sees a secret except through the caller's struct kb_credentials, which it only
 * passes on to the signer.
 */
#ifndef KB_STS_H
#define KB_STS_H

#include "aws/client.h"
#include "aws/svc.h"

struct kb_sts_identity {
    const char *account;    /* "123456789012" */
    const char *arn;        /* "arn:aws:iam::123456789012:user/kb-tenant" */
    const char *user_id;    /* "AIDA..." */
    const char *request_id; /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_sts_identity_cb)(void *ctx, const struct kb_aws_error *err,
                                   const struct kb_sts_identity *id);

struct kb_sts_get_caller_identity_input {
    /* Sign with these instead of the client's chain (the probe of a new key); NULL: the client's.
     * Borrowed until the callback runs. */
    const struct kb_credentials *credentials;
    unsigned max_attempts; /* 0: the client's */
};
/* Who signs: the account, ARN and unique id of the credentials used. */
int kb_sts_get_caller_identity(struct kb_aws_client *c,
                               const struct kb_sts_get_caller_identity_input *in,
                               kb_sts_identity_cb cb, void *ctx);

#endif
