/*
 * endpoints.c - where each AWS service is reached and how it is signed (a pure module).
 *
 * The facts come from botocore's models/endpoints.json and partitions.json and the IAM and STS
 * endpoint rule sets (botocore 1.43.67): a region belongs to the partition whose regionRegex it
 * matches; a service is at "<service>.<region>.<dnsSuffix>" unless the tables say otherwise.
 * IAM is global per partition (iam.amazonaws.com signed for us-east-1, ...); STS uses its regional
 * endpoints (what current SDKs default to); S3 is regional and addressed virtual-hosted
 * (bucket.s3.<region>.amazonaws.com) when the bucket name is DNS compatible without dots (dots
 * would break the wildcard certificate over https), otherwise path style.
 *
 * Overrides (AWS_ENDPOINT_URL_<SERVICE>, then AWS_ENDPOINT_URL) keep their own base path and
 * always use path-style S3 addressing: custom endpoints (fakeaws, MinIO, LocalStack, a proxy) are
 * usually a single host name without wildcard DNS, so path style is the one choice that always
 * works; the SDKs behave the same way when they are given a custom endpoint and
 * s3_force_path_style / addressing_style "path". With an override the signing region is the
 * configured region, except for IAM, which keeps its partition's signing region when the region
 * belongs to a known partition (IAM is global; this is what the real service expects).
 *
 * This module must never read the environment outside kb_endpoints_config_from_env and never
 * resolve or contact a host.
 */
#include "aws/endpoints.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"

struct s_partition {
    const char *id;
    const char *prefixes[10]; /* the region prefixes of regionRegex, each ending in '-' */
    const char *dns_suffix;
    const char *iam_host;   /* the partition's global IAM endpoint */
    const char *iam_region; /* ... and the region it is signed for */
};

/* From partitions.json (regionRegex, dnsSuffix) and the IAM rule set. aws is tried first; no
 * region can match two of these: their prefixes differ in the part before \w+-\d+. */
static const struct s_partition s_partitions[] = {
    {"aws",
     {"us-", "eu-", "ap-", "sa-", "ca-", "me-", "af-", "il-", "mx-", NULL},
     "amazonaws.com",
     "iam.amazonaws.com",
     "us-east-1"},
    {"aws-cn", {"cn-", NULL}, "amazonaws.com.cn", "iam.cn-north-1.amazonaws.com.cn", "cn-north-1"},
    {"aws-us-gov", {"us-gov-", NULL}, "amazonaws.com", "iam.us-gov.amazonaws.com", "us-gov-west-1"},
    {"aws-iso", {"us-iso-", NULL}, "c2s.ic.gov", "iam.us-iso-east-1.c2s.ic.gov", "us-iso-east-1"},
    {"aws-iso-b",
     {"us-isob-", NULL},
     "sc2s.sgov.gov",
     "iam.us-isob-east-1.sc2s.sgov.gov",
     "us-isob-east-1"},
    {"aws-iso-e",
     {"eu-isoe-", NULL},
     "cloud.adc-e.uk",
     "iam.eu-isoe-west-1.cloud.adc-e.uk",
     "eu-isoe-west-1"},
    {"aws-iso-f",
     {"us-isof-", NULL},
     "csp.hci.ic.gov",
     "iam.us-isof-south-1.csp.hci.ic.gov",
     "us-isof-south-1"},
    {"aws-eusc",
     {"eusc-de-", NULL},
     "amazonaws.eu",
     "iam.eusc-de-east-1.amazonaws.eu",
     "eusc-de-east-1"},
};

static const char *const s_service_names[KB_AWS_SERVICE_COUNT] = {"iam", "sts", "s3",
                                                                  "secretsmanager"};

/* A parsed endpoint override. */
struct s_override {
    bool https;
    char authority[256]; /* host[:port], default port dropped; also the Host header */
    char base[512];      /* base path without a trailing '/', "" for none */
};

const char *kb_aws_service_name(enum kb_aws_service svc)
{
    if ((unsigned)svc >= KB_AWS_SERVICE_COUNT)
        return "unknown";
    return s_service_names[svc];
}

static bool s_is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* rest matches \w+-\d+ (regions are lowercase here, see kb_endpoints_region). */
static bool s_match_tail(const char *rest)
{
    const char *dash = strchr(rest, '-');

    if (dash == NULL || dash == rest || dash[1] == '\0')
        return false;
    for (const char *p = rest; p < dash; p++) {
        if (!s_is_lower_alnum(*p) && *p != '_')
            return false;
    }
    for (const char *p = dash + 1; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return false;
    }
    return true;
}

static const struct s_partition *s_partition_of(const char *region)
{
    for (size_t i = 0; i < sizeof(s_partitions) / sizeof(s_partitions[0]); i++) {
        const struct s_partition *p = &s_partitions[i];

        for (size_t j = 0; j < 10 && p->prefixes[j] != NULL; j++) {
            size_t n = strlen(p->prefixes[j]);

            if (strncmp(region, p->prefixes[j], n) == 0 && s_match_tail(region + n))
                return p;
        }
    }
    return NULL;
}

static bool s_region_ok(const char *r)
{
    size_t n = strlen(r);

    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!s_is_lower_alnum(r[i]) && r[i] != '-')
            return false;
    }
    return true;
}

int kb_endpoints_region(const char *config_region, const char *env_region,
                        const char *env_default_region, const char *profile_region, char *out,
                        size_t outlen)
{
    const char *cands[] = {config_region, env_region, env_default_region, profile_region};
    const char *r = NULL;

    for (size_t i = 0; i < 4 && r == NULL; i++) {
        if (cands[i] != NULL && cands[i][0] != '\0')
            r = cands[i];
    }
    if (r == NULL || !s_region_ok(r))
        return KB_ECONFIG;
    if (out == NULL || strlen(r) >= outlen)
        return KB_ETOOBIG;
    memcpy(out, r, strlen(r) + 1);
    return 0;
}

/* host[:port] of an override: a registered name or IPv4 address, or an [IPv6] literal; no
 * user info. The default port of the scheme is dropped, as curl does in the Host header. */
static int s_parse_authority(const char *a, size_t len, bool https, struct s_override *o)
{
    size_t host_len = len, i = 0;
    long port = 0;

    if (len == 0 || memchr(a, '@', len) != NULL)
        return KB_ECONFIG;
    if (a[0] == '[') {
        const char *close = memchr(a, ']', len);

        if (close == NULL || close == a + 1)
            return KB_ECONFIG;
        host_len = (size_t)(close - a) + 1;
        for (i = 1; i + 1 < host_len; i++) {
            if (strchr("0123456789abcdefABCDEF:.", a[i]) == NULL)
                return KB_ECONFIG;
        }
    } else {
        const char *colon = memchr(a, ':', len);

        host_len = colon != NULL ? (size_t)(colon - a) : len;
        for (i = 0; i < host_len; i++) {
            char c = a[i];

            if (!s_is_lower_alnum(c) && !(c >= 'A' && c <= 'Z') && c != '.' && c != '-' && c != '_')
                return KB_ECONFIG;
        }
        if (host_len == 0)
            return KB_ECONFIG;
    }
    if (host_len < len) {
        if (a[host_len] != ':' || host_len + 1 == len || len - host_len - 1 > 5)
            return KB_ECONFIG;
        for (i = host_len + 1; i < len; i++) {
            if (a[i] < '0' || a[i] > '9')
                return KB_ECONFIG;
            port = port * 10 + (a[i] - '0');
        }
        if (port < 1 || port > 65535)
            return KB_ECONFIG;
    }
    if ((https && port == 443) || (!https && port == 80))
        len = host_len;
    if (len >= sizeof(o->authority))
        return KB_ETOOBIG;
    memcpy(o->authority, a, len);
    o->authority[len] = '\0';
    return 0;
}

/* scheme://authority[/base/path] with nothing after the path (no query, no fragment). */
static int s_parse_override(const char *url, struct s_override *o)
{
    const char *p, *slash;
    size_t auth_len, base_len;
    int rc;

    memset(o, 0, sizeof(*o));
    if (strncasecmp(url, "https://", 8) == 0) {
        o->https = true;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else {
        return KB_ECONFIG;
    }
    for (const char *q = p; *q != '\0'; q++) {
        if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f || *q == '?' || *q == '#')
            return KB_ECONFIG;
    }
    slash = strchr(p, '/');
    auth_len = slash != NULL ? (size_t)(slash - p) : strlen(p);
    rc = s_parse_authority(p, auth_len, o->https, o);
    if (rc != 0)
        return rc;
    base_len = slash != NULL ? strlen(slash) : 0;
    while (base_len > 0 && slash[base_len - 1] == '/')
        base_len--;
    if (base_len >= sizeof(o->base))
        return KB_ETOOBIG;
    if (base_len > 0)
        memcpy(o->base, slash, base_len);
    o->base[base_len] = '\0';
    return 0;
}

/* Names S3 accepts in a URL at all (legacy names allow upper case and '_'). */
static bool s_bucket_ok(const char *b)
{
    size_t n = strlen(b);

    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];

        if (!s_is_lower_alnum(c) && !(c >= 'A' && c <= 'Z') && c != '.' && c != '-' && c != '_')
            return false;
    }
    return true;
}

/* botocore's check_dns_name: 3..63 of [a-z0-9-], alphanumeric at both ends, and no dots (a dot
 * would not match the *.s3.<region> certificate). */
static bool s_bucket_virtual_ok(const char *b)
{
    size_t n = strlen(b);

    if (n < 3 || n > 63 || !s_is_lower_alnum(b[0]) || !s_is_lower_alnum(b[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!s_is_lower_alnum(b[i]) && b[i] != '-')
            return false;
    }
    return true;
}

static bool s_path_ok(const char *path)
{
    if (path[0] != '/')
        return false;
    for (const char *q = path; *q != '\0'; q++) {
        if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f || *q == '?' || *q == '#')
            return false;
    }
    return true;
}

/* Fills host, signing region and the default scheme for svc in partition p. */
static int s_default_host(const struct s_partition *p, enum kb_aws_service svc, const char *region,
                          const char *bucket, bool force_path, struct kb_endpoint *out)
{
    int n;

    switch (svc) {
    case KB_AWS_IAM:
        n = snprintf(out->host, sizeof(out->host), "%s", p->iam_host);
        snprintf(out->signing_region, sizeof(out->signing_region), "%s", p->iam_region);
        break;
    case KB_AWS_S3:
        out->path_style = bucket == NULL || force_path || !s_bucket_virtual_ok(bucket);
        if (bucket != NULL && !out->path_style)
            n = snprintf(out->host, sizeof(out->host), "%s.s3.%s.%s", bucket, region,
                         p->dns_suffix);
        else
            n = snprintf(out->host, sizeof(out->host), "s3.%s.%s", region, p->dns_suffix);
        break;
    default:
        n = snprintf(out->host, sizeof(out->host), "%s.%s.%s", s_service_names[svc], region,
                     p->dns_suffix);
        break;
    }
    return n < 0 || (size_t)n >= sizeof(out->host) ? KB_ETOOBIG : 0;
}

/* The URL: scheme://host base [/bucket] path [?query]. */
static int s_build_url(struct kb_endpoint *out, bool https, const char *base, const char *bucket,
                       const char *path, const char *query)
{
    bool q = query != NULL && query[0] != '\0';
    int n;

    if (bucket != NULL && out->path_style && strcmp(path, "/") == 0)
        path = ""; /* a bucket-level call is "/bucket", as the SDKs send it */
    n = snprintf(out->url, sizeof(out->url), "%s://%s%s%s%s%s%s%s", https ? "https" : "http",
                 out->host, base, bucket != NULL && out->path_style ? "/" : "",
                 bucket != NULL && out->path_style ? bucket : "", path, q ? "?" : "",
                 q ? query : "");
    return n < 0 || (size_t)n >= sizeof(out->url) ? KB_ETOOBIG : 0;
}

int kb_endpoints_resolve(const struct kb_endpoints_config *cfg, enum kb_aws_service svc,
                         const char *bucket, const char *path, const char *query,
                         struct kb_endpoint *out)
{
    const struct s_partition *part;
    const char *override = NULL;
    struct s_override o;
    int rc;

    if (cfg == NULL || out == NULL || (unsigned)svc >= KB_AWS_SERVICE_COUNT)
        return KB_EINVAL;
    memset(out, 0, sizeof(*out));
    if (cfg->region == NULL || !s_region_ok(cfg->region))
        return KB_ECONFIG;
    if (svc != KB_AWS_S3)
        bucket = NULL;
    if (bucket != NULL && !s_bucket_ok(bucket))
        return KB_EINVAL;
    path = path != NULL && path[0] != '\0' ? path : "/";
    if (!s_path_ok(path) || (query != NULL && strpbrk(query, " \t\r\n#") != NULL))
        return KB_EINVAL;
    part = s_partition_of(cfg->region);
    snprintf(out->signing_name, sizeof(out->signing_name), "%s", s_service_names[svc]);
    if (cfg->service_url[svc] != NULL && cfg->service_url[svc][0] != '\0')
        override = cfg->service_url[svc];
    else if (cfg->endpoint_url != NULL && cfg->endpoint_url[0] != '\0')
        override = cfg->endpoint_url;
    if (override == NULL) {
        if (part == NULL)
            return KB_ECONFIG;
        snprintf(out->signing_region, sizeof(out->signing_region), "%s", cfg->region);
        rc = s_default_host(part, svc, cfg->region, bucket, cfg->s3_force_path_style, out);
        return rc != 0 ? rc : s_build_url(out, true, "", bucket, path, query);
    }
    rc = s_parse_override(override, &o);
    if (rc != 0)
        return rc;
    snprintf(out->host, sizeof(out->host), "%s", o.authority);
    snprintf(out->signing_region, sizeof(out->signing_region), "%s",
             svc == KB_AWS_IAM && part != NULL ? part->iam_region : cfg->region);
    out->path_style = svc == KB_AWS_S3;
    return s_build_url(out, o.https, o.base, bucket, path, query);
}

void kb_endpoints_config_from_env(struct kb_endpoints_config *cfg)
{
    static const char *const vars[KB_AWS_SERVICE_COUNT] = {
        "AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER"};

    if (cfg == NULL)
        return;
    cfg->endpoint_url = getenv("AWS_ENDPOINT_URL");
    for (size_t i = 0; i < KB_AWS_SERVICE_COUNT; i++)
        cfg->service_url[i] = getenv(vars[i]);
}
