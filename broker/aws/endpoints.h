/*
 * endpoints.h - where each AWS service is reached and how it is signed.
 *
 * Region: config, then AWS_REGION, then AWS_DEFAULT_REGION, then the profile's `region`.
 * Endpoint: per-service override (AWS_ENDPOINT_URL_IAM, _S3, _SECRETS_MANAGER, _STS — the SDKs'
 * names), then the global AWS_ENDPOINT_URL, then AWS's default for the region's partition (facts
 * from models/endpoints.json: IAM is global and signs in us-east-1 in the aws partition, in
 * cn-north-1 in aws-cn, in us-gov-west-1 in aws-us-gov). S3 addressing: virtual-hosted style by
 * default for DNS-compatible bucket names over AWS's own endpoints, path style for an overridden
 * endpoint (as the SDKs do for custom endpoints unless told otherwise) or when forced.
 * A pure module: environment values come in through the config struct, no getenv here.
 */
#ifndef KB_ENDPOINTS_H
#define KB_ENDPOINTS_H

#include <stdbool.h>
#include <stddef.h>

enum kb_aws_service {
    KB_AWS_IAM,
    KB_AWS_STS,
    KB_AWS_S3,
    KB_AWS_SECRETSMANAGER,
    KB_AWS_SERVICE_COUNT
};

/* "iam", "sts", "s3", "secretsmanager": the signing name. Static string. */
const char *kb_aws_service_name(enum kb_aws_service svc);

/* Inputs. Every string is borrowed for the duration of the calls that take the struct; NULL or ""
 * means unset. */
struct kb_endpoints_config {
    const char *region;                            /* already resolved, see kb_endpoints_region */
    const char *endpoint_url;                      /* AWS_ENDPOINT_URL */
    const char *service_url[KB_AWS_SERVICE_COUNT]; /* AWS_ENDPOINT_URL_<SERVICE> */
    bool s3_force_path_style;
};

/* The resolved endpoint of one request. */
struct kb_endpoint {
    char url[1024]; /* scheme://host[:port][/base-path] + the resource path, encoded */
    char host[256]; /* the Host header value (with :port when not default) */
    char signing_region[64];
    char signing_name[32];
    bool path_style; /* S3: the bucket is in the path */
};

/*
 * Picks the region: the first non-empty of config_region, env_region (AWS_REGION),
 * env_default_region (AWS_DEFAULT_REGION), profile_region. Writes it to out (size outlen).
 * Returns 0, KB_ECONFIG when none is set or the name is not a plausible region
 * ([a-z0-9-]+, 1..63), KB_ETOOBIG when it does not fit.
 */
int kb_endpoints_region(const char *config_region, const char *env_region,
                        const char *env_default_region, const char *profile_region, char *out,
                        size_t outlen);

/*
 * Resolves the endpoint of a request to svc. bucket is the S3 bucket (NULL for bucket-less calls
 * and other services); path is the encoded resource path after the bucket ("/key" or "/"), query
 * the encoded query without '?' (may be NULL). Returns 0, KB_ECONFIG for a malformed override URL
 * or unknown partition, KB_EINVAL for a bucket name or path that cannot go into a URL (path must
 * start with '/'; neither may hold spaces, '?' or '#'), KB_ETOOBIG when the URL does not fit.
 */
int kb_endpoints_resolve(const struct kb_endpoints_config *cfg, enum kb_aws_service svc,
                         const char *bucket, const char *path, const char *query,
                         struct kb_endpoint *out);

/* Reads AWS_ENDPOINT_URL and the per-service overrides from the environment into cfg (pointers
 * into the environment: valid until it changes). The only function here that reads it. */
void kb_endpoints_config_from_env(struct kb_endpoints_config *cfg);

#endif
