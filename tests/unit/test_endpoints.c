/* test_endpoints.c - regions, partitions, overrides, S3 addressing and malformed overrides. */
#include "kb_test.h"

#include <stdlib.h>
#include <string.h>

#include "aws/endpoints.h"
#include "common/err.h"

static struct kb_endpoints_config cfg_for(const char *region)
{
    struct kb_endpoints_config c;

    memset(&c, 0, sizeof(c));
    c.region = region;
    return c;
}

static void expect(const struct kb_endpoints_config *c, enum kb_aws_service svc, const char *bucket,
                   const char *path, const char *query, const char *url, const char *host,
                   const char *signing_region, bool path_style)
{
    struct kb_endpoint ep;
    int rc = kb_endpoints_resolve(c, svc, bucket, path, query, &ep);

    if (rc != 0)
        fail_msg("%s %s: %s", kb_aws_service_name(svc), c->region, kb_err_name(rc));
    assert_string_equal(ep.url, url);
    assert_string_equal(ep.host, host);
    assert_string_equal(ep.signing_region, signing_region);
    assert_string_equal(ep.signing_name, kb_aws_service_name(svc));
    assert_int_equal(ep.path_style, path_style);
}

static void test_region_precedence_and_validation(void **state)
{
    char out[64];

    assert_int_equal(
        kb_endpoints_region("eu-west-1", "us-east-2", "us-west-1", "ap-south-1", out, sizeof(out)),
        0);
    assert_string_equal(out, "eu-west-1");
    assert_int_equal(kb_endpoints_region(NULL, "us-east-2", "us-west-1", NULL, out, sizeof(out)),
                     0);
    assert_string_equal(out, "us-east-2");
    assert_int_equal(kb_endpoints_region("", "", "us-west-1", "x", out, sizeof(out)), 0);
    assert_string_equal(out, "us-west-1");
    assert_int_equal(kb_endpoints_region(NULL, NULL, NULL, "ap-south-1", out, sizeof(out)), 0);
    assert_string_equal(out, "ap-south-1");
    assert_int_equal(kb_endpoints_region(NULL, NULL, "", NULL, out, sizeof(out)), KB_ECONFIG);
    assert_int_equal(kb_endpoints_region("US-EAST-1", NULL, NULL, NULL, out, sizeof(out)),
                     KB_ECONFIG);
    assert_int_equal(kb_endpoints_region("us east 1", NULL, NULL, NULL, out, sizeof(out)),
                     KB_ECONFIG);
    assert_int_equal(kb_endpoints_region("us-east-1/../x", NULL, NULL, NULL, out, sizeof(out)),
                     KB_ECONFIG);
    assert_int_equal(
        kb_endpoints_region("a123456789012345678901234567890123456789012345678901234567890123",
                            NULL, NULL, NULL, out, sizeof(out)),
        KB_ECONFIG); /* 64 characters */
    assert_int_equal(kb_endpoints_region("us-east-1", NULL, NULL, NULL, out, 9), KB_ETOOBIG);
}

static void test_partitions_iam_global(void **state)
{
    struct kb_endpoints_config c;

    c = cfg_for("us-east-1");
    expect(&c, KB_AWS_IAM, NULL, "/", NULL, "https://iam.amazonaws.com/", "iam.amazonaws.com",
           "us-east-1", false);
    c = cfg_for("eu-central-1"); /* IAM is global: same host, us-east-1 scope */
    expect(&c, KB_AWS_IAM, NULL, NULL, NULL, "https://iam.amazonaws.com/", "iam.amazonaws.com",
           "us-east-1", false);
    c = cfg_for("cn-northwest-1");
    expect(&c, KB_AWS_IAM, NULL, "/", NULL, "https://iam.cn-north-1.amazonaws.com.cn/",
           "iam.cn-north-1.amazonaws.com.cn", "cn-north-1", false);
    c = cfg_for("us-gov-east-1");
    expect(&c, KB_AWS_IAM, NULL, "/", NULL, "https://iam.us-gov.amazonaws.com/",
           "iam.us-gov.amazonaws.com", "us-gov-west-1", false);
    c = cfg_for("us-iso-west-1");
    expect(&c, KB_AWS_IAM, NULL, "/", NULL, "https://iam.us-iso-east-1.c2s.ic.gov/",
           "iam.us-iso-east-1.c2s.ic.gov", "us-iso-east-1", false);
}

static void test_partitions_regional_services(void **state)
{
    struct kb_endpoints_config c;

    c = cfg_for("eu-west-1");
    expect(&c, KB_AWS_STS, NULL, "/", NULL, "https://sts.eu-west-1.amazonaws.com/",
           "sts.eu-west-1.amazonaws.com", "eu-west-1", false);
    expect(&c, KB_AWS_SECRETSMANAGER, NULL, "/", NULL,
           "https://secretsmanager.eu-west-1.amazonaws.com/",
           "secretsmanager.eu-west-1.amazonaws.com", "eu-west-1", false);
    expect(&c, KB_AWS_S3, NULL, "/", NULL, "https://s3.eu-west-1.amazonaws.com/",
           "s3.eu-west-1.amazonaws.com", "eu-west-1", true);
    c = cfg_for("cn-north-1");
    expect(&c, KB_AWS_STS, NULL, "/", NULL, "https://sts.cn-north-1.amazonaws.com.cn/",
           "sts.cn-north-1.amazonaws.com.cn", "cn-north-1", false);
    expect(&c, KB_AWS_SECRETSMANAGER, NULL, "/", NULL,
           "https://secretsmanager.cn-north-1.amazonaws.com.cn/",
           "secretsmanager.cn-north-1.amazonaws.com.cn", "cn-north-1", false);
    c = cfg_for("us-gov-west-1");
    expect(&c, KB_AWS_STS, NULL, "/", "Action=GetCallerIdentity&Version=2011-06-15",
           "https://sts.us-gov-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
           "sts.us-gov-west-1.amazonaws.com", "us-gov-west-1", false);
    c = cfg_for("ap-southeast-7");
    expect(&c, KB_AWS_S3, "logs-2024", "/a/b%20c.txt", "versionId=3",
           "https://logs-2024.s3.ap-southeast-7.amazonaws.com/a/b%20c.txt?versionId=3",
           "logs-2024.s3.ap-southeast-7.amazonaws.com", "ap-southeast-7", false);
}

static void test_unknown_partition(void **state)
{
    static const char *const bad[] = {"xx-east-1", "local", "us-east", "useast-1", "us-east-x"};
    struct kb_endpoints_config c;
    struct kb_endpoint ep;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = cfg_for(bad[i]);
        assert_int_equal(kb_endpoints_resolve(&c, KB_AWS_STS, NULL, "/", NULL, &ep), KB_ECONFIG);
    }
    c = cfg_for(NULL);
    assert_int_equal(kb_endpoints_resolve(&c, KB_AWS_STS, NULL, "/", NULL, &ep), KB_ECONFIG);
    c = cfg_for("Us-East-1");
    assert_int_equal(kb_endpoints_resolve(&c, KB_AWS_STS, NULL, "/", NULL, &ep), KB_ECONFIG);
}

static void test_s3_addressing(void **state)
{
    struct kb_endpoints_config c = cfg_for("us-east-1");

    expect(&c, KB_AWS_S3, "my-bucket", "/key", NULL,
           "https://my-bucket.s3.us-east-1.amazonaws.com/key",
           "my-bucket.s3.us-east-1.amazonaws.com", "us-east-1", false);
    expect(&c, KB_AWS_S3, "my-bucket", "/", "tagging",
           "https://my-bucket.s3.us-east-1.amazonaws.com/?tagging",
           "my-bucket.s3.us-east-1.amazonaws.com", "us-east-1", false);
    /* dots would break the *.s3 certificate; upper case and '_' are not DNS names */
    expect(&c, KB_AWS_S3, "my.bucket", "/key", NULL,
           "https://s3.us-east-1.amazonaws.com/my.bucket/key", "s3.us-east-1.amazonaws.com",
           "us-east-1", true);
    expect(&c, KB_AWS_S3, "Legacy_Bucket", "/", NULL,
           "https://s3.us-east-1.amazonaws.com/Legacy_Bucket", "s3.us-east-1.amazonaws.com",
           "us-east-1", true);
    expect(&c, KB_AWS_S3, "ab", "/k", NULL, "https://s3.us-east-1.amazonaws.com/ab/k",
           "s3.us-east-1.amazonaws.com", "us-east-1", true);
    expect(&c, KB_AWS_S3, "-bucket", "/k", NULL, "https://s3.us-east-1.amazonaws.com/-bucket/k",
           "s3.us-east-1.amazonaws.com", "us-east-1", true);
    c.s3_force_path_style = true;
    expect(&c, KB_AWS_S3, "my-bucket", "/key", NULL,
           "https://s3.us-east-1.amazonaws.com/my-bucket/key", "s3.us-east-1.amazonaws.com",
           "us-east-1", true);
    /* a bucket given to another service is ignored */
    expect(&c, KB_AWS_STS, "my-bucket", "/", NULL, "https://sts.us-east-1.amazonaws.com/",
           "sts.us-east-1.amazonaws.com", "us-east-1", false);
}

static void test_overrides(void **state)
{
    struct kb_endpoints_config c = cfg_for("eu-west-1");

    c.endpoint_url = "http://127.0.0.1:4566";
    expect(&c, KB_AWS_STS, NULL, "/", NULL, "http://127.0.0.1:4566/", "127.0.0.1:4566", "eu-west-1",
           false);
    /* IAM keeps its partition's signing region behind an override */
    expect(&c, KB_AWS_IAM, NULL, "/", NULL, "http://127.0.0.1:4566/", "127.0.0.1:4566", "us-east-1",
           false);
    /* S3 behind an override: path style, even for a DNS-compatible name */
    expect(&c, KB_AWS_S3, "my-bucket", "/key", NULL, "http://127.0.0.1:4566/my-bucket/key",
           "127.0.0.1:4566", "eu-west-1", true);
    expect(&c, KB_AWS_S3, "my-bucket", "/", "policy", "http://127.0.0.1:4566/my-bucket?policy",
           "127.0.0.1:4566", "eu-west-1", true);
    /* a per-service URL wins over the global one and keeps its base path */
    c.service_url[KB_AWS_SECRETSMANAGER] = "https://sm.example.test:8443/prefix/v1/";
    expect(&c, KB_AWS_SECRETSMANAGER, NULL, "/", NULL, "https://sm.example.test:8443/prefix/v1/",
           "sm.example.test:8443", "eu-west-1", false);
    expect(&c, KB_AWS_STS, NULL, "/", NULL, "http://127.0.0.1:4566/", "127.0.0.1:4566", "eu-west-1",
           false);
    c.service_url[KB_AWS_S3] = "https://s3.example.test:443/base";
    expect(&c, KB_AWS_S3, "b-1", "/k", NULL, "https://s3.example.test/base/b-1/k",
           "s3.example.test", "eu-west-1", true); /* the default port is dropped */
    c.service_url[KB_AWS_S3] = "";                /* empty means unset */
    expect(&c, KB_AWS_S3, "b-1", "/k", NULL, "http://127.0.0.1:4566/b-1/k", "127.0.0.1:4566",
           "eu-west-1", true);
    /* an override makes any plausible region name usable */
    c = cfg_for("local");
    c.endpoint_url = "HTTP://[::1]:9000";
    expect(&c, KB_AWS_IAM, NULL, "/", NULL, "http://[::1]:9000/", "[::1]:9000", "local", false);
}

static void test_malformed_overrides(void **state)
{
    static const char *const bad[] = {
        "ftp://127.0.0.1",    "127.0.0.1:4566",      "http://",
        "http:///path",       "http://user:pw@host", "http://host:99999",
        "http://host:0",      "http://host:",        "http://host:12ab",
        "http://host/p?x=1",  "http://host/p#frag",  "http://ho st",
        "http://[::1",        "http://[]:80",        "http://host:80:80",
        "http://h\xc3\xa9st", "https://host/a b",    "http://host\t/",
    };
    struct kb_endpoints_config c = cfg_for("us-east-1");
    struct kb_endpoint ep;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c.endpoint_url = bad[i];
        if (kb_endpoints_resolve(&c, KB_AWS_STS, NULL, "/", NULL, &ep) != KB_ECONFIG)
            fail_msg("accepted %s", bad[i]);
    }
}

static void test_bad_requests(void **state)
{
    char big[2000];
    struct kb_endpoints_config c = cfg_for("us-east-1");
    struct kb_endpoint ep;

    assert_int_equal(kb_endpoints_resolve(&c, KB_AWS_S3, "a/b", "/", NULL, &ep), KB_EINVAL);
    assert_int_equal(kb_endpoints_resolve(&c, KB_AWS_S3, "", "/", NULL, &ep), KB_EINVAL);
    assert_int_equal(kb_endpoints_resolve(&c, KB_AWS_S3, "b?x", "/", NULL, &ep), KB_EINVAL);
    assert_int_equal(kb_endpoints_resolve(&c, KB_AWS_STS, NULL, "no-slash", NULL, &ep), KB_EINVAL);
    assert_int_equal(kb_endpoints_resolve(&c, KB_AWS_STS, NULL, "/a b", NULL, &ep), KB_EINVAL);
    assert_int_equal(kb_endpoints_resolve(&c, KB_AWS_STS, NULL, "/", "a=b#c", &ep), KB_EINVAL);
    assert_int_equal(kb_endpoints_resolve(&c, KB_AWS_SERVICE_COUNT, NULL, "/", NULL, &ep),
                     KB_EINVAL);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(kb_endpoints_resolve(&c, KB_AWS_STS, NULL, "/", big, &ep), KB_ETOOBIG);
}

static void test_service_names_and_env(void **state)
{
    struct kb_endpoints_config c;

    assert_string_equal(kb_aws_service_name(KB_AWS_IAM), "iam");
    assert_string_equal(kb_aws_service_name(KB_AWS_STS), "sts");
    assert_string_equal(kb_aws_service_name(KB_AWS_S3), "s3");
    assert_string_equal(kb_aws_service_name(KB_AWS_SECRETSMANAGER), "secretsmanager");
    assert_string_equal(kb_aws_service_name(KB_AWS_SERVICE_COUNT), "unknown");
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1);
    setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:2", 1);
    unsetenv("AWS_ENDPOINT_URL_IAM");
    memset(&c, 0, sizeof(c));
    kb_endpoints_config_from_env(&c);
    assert_string_equal(c.endpoint_url, "http://127.0.0.1:1");
    assert_string_equal(c.service_url[KB_AWS_SECRETSMANAGER], "http://127.0.0.1:2");
    assert_null(c.service_url[KB_AWS_IAM]);
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_SECRETS_MANAGER");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_region_precedence_and_validation),
        cmocka_unit_test(test_partitions_iam_global),
        cmocka_unit_test(test_partitions_regional_services),
        cmocka_unit_test(test_unknown_partition),
        cmocka_unit_test(test_s3_addressing),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_malformed_overrides),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_service_names_and_env),
    };
    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
