/*
 * config_aws.c - the "aws" section: where to reach AWS, how resources are named and tagged.
 *
 * The names checked here become parts of IAM user names, IAM paths, secret names and ARNs, so
 * they are held to AWS's own syntax now rather than failing half-way through a provisioning
 * chain. ARNs are also checked against aws.region's partition (and, for a KMS key, its region:
 * Secrets Manager only uses keys of its own region). This file must never read the environment:
 * unset values stay NULL and the AWS client falls back to AWS_* variables itself.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "config/policy.h"

#define S_URL_MAX 900 /* leaves room for the resource path in struct kb_endpoint's 1024 bytes */

static void s_region(struct kb_config__ctx *c, struct json_object *aws, char **out)
{
    char q[KB_CONFIG__QUOTE_SIZE];

    if (kb_config__string(c, "aws", aws, "region", KB_CONFIG__NULLABLE, NULL, out) &&
        *out != NULL && !kb_config__check_region(*out, strlen(*out))) {
        kb_config__error(c, "aws.region",
                         "%s is not a valid region: use lowercase letters, digits and hyphens, "
                         "like \"us-east-1\"",
                         kb_config__quote(q, *out, strlen(*out)));
    }
}

static void s_profile(struct kb_config__ctx *c, struct json_object *aws, char **out)
{
    char q[KB_CONFIG__QUOTE_SIZE];
    size_t len;
    bool ok;

    if (!kb_config__string(c, "aws", aws, "profile", KB_CONFIG__NULLABLE, NULL, out) ||
        *out == NULL) {
        return;
    }
    len = strlen(*out);
    ok = len >= 1 && len <= 128;
    for (size_t i = 0; ok && i < len; i++) {
        char ch = (*out)[i];
        ok = ch >= 0x20 && ch < 0x7F && ch != '[' && ch != ']';
    }
    if (!ok) {
        kb_config__error(c, "aws.profile",
                         "%s is not a valid profile name: use 1 to 128 printable ASCII "
                         "characters other than '[' and ']'",
                         kb_config__quote(q, *out, len));
    }
}

static bool s_url_ok(const char *s)
{
    const char *host = strncmp(s, "https://", 8) == 0  ? s + 8
                       : strncmp(s, "http://", 7) == 0 ? s + 7
                                                       : NULL;

    if (host == NULL || *host == '\0' || *host == '/' || *host == ':' || strlen(s) > S_URL_MAX) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7F || *s == '#') {
            return false;
        }
    }
    return true;
}

static void s_url(struct kb_config__ctx *c, const char *parent, struct json_object *obj,
                  const char *key, char **out)
{
    char path[KB_CONFIG__PATH_MAX];
    char q[KB_CONFIG__QUOTE_SIZE];

    if (kb_config__string(c, parent, obj, key, KB_CONFIG__NULLABLE, NULL, out) && *out != NULL &&
        !s_url_ok(*out)) {
        kb_config__path_key(path, sizeof path, parent, key);
        kb_config__error(c, path,
                         "%s is not a valid endpoint URL: use http:// or https:// followed by a "
                         "host, printable ASCII without spaces, at most %d bytes",
                         kb_config__quote(q, *out, strlen(*out)), S_URL_MAX);
    }
}

static void s_endpoints(struct kb_config__ctx *c, struct json_object *aws, struct kb_config_aws *a)
{
    static const char *const keys[] = {"iam", "s3", "secretsmanager", "sts", NULL};
    static const enum kb_aws_service svc[] = {KB_AWS_IAM, KB_AWS_S3, KB_AWS_SECRETSMANAGER,
                                              KB_AWS_STS};
    struct json_object *v = kb_config__object(c, "aws", aws, "endpoints");

    if (v == NULL) {
        return;
    }
    kb_config__check_keys(c, "aws.endpoints", v, keys);
    for (size_t i = 0; i < sizeof svc / sizeof *svc; i++) {
        s_url(c, "aws.endpoints", v, keys[i], &a->service_url[svc[i]]);
    }
}

static void s_name_prefix(struct kb_config__ctx *c, struct json_object *aws, char **out)
{
    char why[256];
    char q[KB_CONFIG__QUOTE_SIZE];
    size_t len;

    if (!kb_config__string(c, "aws", aws, "name_prefix", 0, "kb-", out) || *out == NULL) {
        c->bad_name_prefix = true;
        return;
    }
    len = strlen(*out);
    kb_config__quote(q, *out, len);
    c->bad_name_prefix = true;
    if (len > 63) {
        kb_config__error(c, "aws.name_prefix",
                         "%s is too long: at most 63 characters leave room for a tenant name in "
                         "IAM's 64 (it has %zu)",
                         q, len);
    } else if (len > 0 && kb_config_check_iam_user_name(*out, why, sizeof why) != 0) {
        kb_config__error(c, "aws.name_prefix", "%s is not a valid IAM user name prefix: %s", q,
                         why);
    } else {
        c->bad_name_prefix = false;
    }
}

static void s_secret_prefix(struct kb_config__ctx *c, struct json_object *aws, char **out)
{
    char why[256];
    char q[KB_CONFIG__QUOTE_SIZE];
    size_t len;

    if (!kb_config__string(c, "aws", aws, "secret_prefix", 0, "keybroker/", out) || *out == NULL) {
        return;
    }
    len = strlen(*out);
    kb_config__quote(q, *out, len);
    c->bad_secret_prefix = true;
    if (len > 511) {
        kb_config__error(c, "aws.secret_prefix",
                         "%s is too long: at most 511 characters leave room for a tenant name in "
                         "Secrets Manager's 512 (it has %zu)",
                         q, len);
    } else if (len > 0 && kb_config_check_secret_name(*out, why, sizeof why) != 0) {
        kb_config__error(c, "aws.secret_prefix", "%s is not a valid secret name prefix: %s", q,
                         why);
    } else {
        c->bad_secret_prefix = false;
    }
}

static void s_iam_path(struct kb_config__ctx *c, struct json_object *aws, char **out)
{
    char why[256];
    char q[KB_CONFIG__QUOTE_SIZE];

    if (kb_config__string(c, "aws", aws, "iam_path", 0, "/keybroker/", out) && *out != NULL &&
        kb_config_check_iam_path(*out, why, sizeof why) != 0) {
        kb_config__error(c, "aws.iam_path", "%s is not a valid IAM path: %s",
                         kb_config__quote(q, *out, strlen(*out)), why);
    }
}

/* An ARN's partition must be aws.region's, when the region is set. */
static void s_check_partition(struct kb_config__ctx *c, const char *path, const char *partition,
                              const char *region)
{
    const char *want;

    if (region == NULL || !kb_config__check_region(region, strlen(region))) {
        return;
    }
    want = kb_policy_partition(region);
    if (strcmp(partition, want) != 0) {
        kb_config__error(c, path,
                         "the ARN's partition \"%s\" does not match aws.region \"%s\" (partition "
                         "\"%s\")",
                         partition, region, want);
    }
}

static void s_boundary(struct kb_config__ctx *c, struct json_object *aws, struct kb_config_aws *a)
{
    const char *path = "aws.permissions_boundary";
    char why[256];
    char q[KB_CONFIG__QUOTE_SIZE];
    char partition[64];
    char *s = NULL;

    if (!kb_config__string(c, "aws", aws, "permissions_boundary", KB_CONFIG__NULLABLE, NULL, &s) ||
        s == NULL) {
        a->permissions_boundary = s;
        return;
    }
    a->permissions_boundary = s;
    if (kb_config_check_policy_arn(s, partition, why, sizeof why) != 0) {
        kb_config__error(c, path, "%s is not a valid IAM policy ARN: %s",
                         kb_config__quote(q, s, strlen(s)), why);
        return;
    }
    s_check_partition(c, path, partition, a->region);
}

static void s_kms_key(struct kb_config__ctx *c, struct json_object *aws, struct kb_config_aws *a)
{
    const char *path = "aws.kms_key_id";
    char why[256];
    char q[KB_CONFIG__QUOTE_SIZE];
    char partition[64];
    char region[64];
    char *s = NULL;

    if (!kb_config__string(c, "aws", aws, "kms_key_id", KB_CONFIG__NULLABLE, NULL, &s) ||
        s == NULL) {
        a->kms_key_id = s;
        return;
    }
    a->kms_key_id = s;
    if (kb_config_check_kms_key(s, partition, region, why, sizeof why) != 0) {
        kb_config__error(c, path, "%s is not a valid KMS key: %s",
                         kb_config__quote(q, s, strlen(s)), why);
        return;
    }
    if (partition[0] == '\0') {
        return; /* a key id or an alias: resolved in aws.region by Secrets Manager */
    }
    s_check_partition(c, path, partition, a->region);
    if (a->region != NULL && kb_config__check_region(a->region, strlen(a->region)) &&
        strcmp(region, a->region) != 0) {
        kb_config__error(c, path,
                         "the key's region \"%s\" differs from aws.region \"%s\": Secrets Manager "
                         "only uses keys of its own region",
                         region, a->region);
    }
}

static void s_tags(struct kb_config__ctx *c, struct json_object *aws, struct kb_tags *tags)
{
    struct json_object *v = kb_config__object(c, "aws", aws, "tags");

    if (v != NULL) {
        kb_config__tags(c, "aws.tags", v, tags);
    }
}

void kb_config__aws(struct kb_config__ctx *c, struct json_object *v, struct kb_config *cfg)
{
    static const char *const keys[] = {"region",
                                       "profile",
                                       "endpoint_url",
                                       "endpoints",
                                       "s3_force_path_style",
                                       "ca_bundle",
                                       "max_attempts",
                                       "name_prefix",
                                       "iam_path",
                                       "permissions_boundary",
                                       "secret_prefix",
                                       "kms_key_id",
                                       "tags",
                                       "probe_timeout",
                                       "orphan_key_min_age",
                                       "recovery_window_days",
                                       "overlap",
                                       "retire",
                                       "overlap_ends_on_ack",
                                       "deny_insecure_transport",
                                       NULL};
    struct kb_config_aws *a = &cfg->aws;
    char path[KB_CONFIG__PATH_MAX];

    if (v != NULL) {
        kb_config__check_keys(c, "aws", v, keys);
    }
    s_region(c, v, &a->region);
    s_profile(c, v, &a->profile);
    s_url(c, "aws", v, "endpoint_url", &a->endpoint_url);
    s_endpoints(c, v, a);
    kb_config__bool(c, "aws", v, "s3_force_path_style", false, &a->s3_force_path_style);
    if (kb_config__string(c, "aws", v, "ca_bundle", KB_CONFIG__NULLABLE, NULL, &a->ca_bundle) &&
        a->ca_bundle != NULL) {
        kb_config__path_key(path, sizeof path, "aws", "ca_bundle");
        kb_config__check_abs_path(c, path, a->ca_bundle, 4096);
    }
    kb_config__uint(c, "aws", v, "max_attempts", 1, 10, 3, &a->max_attempts);
    s_name_prefix(c, v, &a->name_prefix);
    s_iam_path(c, v, &a->iam_path);
    s_boundary(c, v, a);
    s_secret_prefix(c, v, &a->secret_prefix);
    s_kms_key(c, v, a);
    s_tags(c, v, &a->tags);
    kb_config__duration(c, "aws", v, "probe_timeout", 0, 1, 3600, 60, &a->probe_timeout);
    kb_config__duration(c, "aws", v, "orphan_key_min_age", 0, 60, 30 * 86400, 600,
                        &a->orphan_key_min_age);
    kb_config__uint(c, "aws", v, "recovery_window_days", 7, 30, 30, &a->recovery_window_days);
    kb_config__duration(c, "aws", v, "overlap", 0, 0, 30 * 86400, 3600, &a->overlap);
    kb_config__duration(c, "aws", v, "retire", 0, 0, 30 * 86400, 86400, &a->retire);
    kb_config__bool(c, "aws", v, "deny_insecure_transport", true, &a->deny_insecure_transport);
    kb_config__bool(c, "aws", v, "overlap_ends_on_ack", true, &a->overlap_ends_on_ack);
}
