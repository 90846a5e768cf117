/* test_config_rules.c - AWS's naming rules as the config checks them, case by case. */
#include "kb_test.h"

#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "common/err.h"

typedef int (*s_check_fn)(const char *, char *, size_t);

/* Each case: the input and the expected reason (NULL = valid). */
struct s_case {
    const char *in;
    const char *why;
};

static void s_run(s_check_fn check, const struct s_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char why[256] = "";
        int rc = check(cases[i].in, why, sizeof why);
        if (cases[i].why == NULL ? rc != 0 : rc != KB_ECONFIG || strcmp(why, cases[i].why) != 0) {
            print_message("input \"%s\": rc %d, why \"%s\", want \"%s\"\n", cases[i].in, rc, why,
                          cases[i].why != NULL ? cases[i].why : "(valid)");
            fail();
        }
    }
}

#define S_RUN(check, cases) s_run(check, cases, sizeof cases / sizeof *cases)

static void test_bucket_names(void **state)
{
    static const struct s_case cases[] = {
        {"abc", NULL},
        {"acme-billing-data", NULL},
        {"acme.billing.data", NULL}, /* dots are allowed (only not recommended) */
        {"1bucket2", NULL},
        {"a-b.c-d", NULL},
        {"192.168.5.4x", NULL},
        {"1.2.3", NULL},
        {"xn-acme", NULL},
        {"acme-s3aliasx", NULL},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL},
        {"ab", "it must be 3 to 63 characters long (it has 2)"},
        {"", "it must be 3 to 63 characters long (it has 0)"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "it must be 3 to 63 characters long (it has 64)"},
        {"Acme", "only lowercase letters, digits, dots and hyphens are allowed"},
        {"acme_data", "only lowercase letters, digits, dots and hyphens are allowed"},
        {"acme data", "only lowercase letters, digits, dots and hyphens are allowed"},
        {"acm\xc3\xa9", "only lowercase letters, digits, dots and hyphens are allowed"},
        {".acme", "it must begin and end with a lowercase letter or a digit"},
        {"acme-", "it must begin and end with a lowercase letter or a digit"},
        {"acme..data", "it must not contain two adjacent dots"},
        {"10.0.0.1", "it must not be formatted as an IP address"},
        {"xn--acme", "the prefix \"xn--\" is reserved by S3"},
        {"sthree-configurator", "the prefix \"sthree-\" is reserved by S3"},
        {"amzn-s3-demo-x", "the prefix \"amzn-s3-demo-\" is reserved by S3"},
        {"acme-s3alias", "the suffix \"-s3alias\" is reserved by S3"},
        {"acme--ol-s3", "the suffix \"--ol-s3\" is reserved by S3"},
        {"acme.mrap", "the suffix \".mrap\" is reserved by S3"},
        {"acme--use1-az4--x-s3", "the suffix \"--x-s3\" is reserved by S3"},
        {"acme--table-s3", "the suffix \"--table-s3\" is reserved by S3"},
    };
    S_RUN(kb_config_check_bucket, cases);
}

static void test_iam_and_secret_names(void **state)
{
    static const struct s_case tenant[] = {
        {"billing", NULL},
        {"A+b=c,d.e@f_g-h", NULL},
        {"x", NULL},
        {"1234567890123456789012345678901234567890123456789012345678901234", NULL},
        {"", "it must be 1 to 64 characters long (it has 0)"},
        {"12345678901234567890123456789012345678901234567890123456789012345",
         "it must be 1 to 64 characters long (it has 65)"},
        {"a/b", "only letters, digits and the characters +=,.@_- are allowed"},
        {"a b", "only letters, digits and the characters +=,.@_- are allowed"},
        {"caf\xc3\xa9", "only letters, digits and the characters +=,.@_- are allowed"},
    };
    static const struct s_case secret[] = {
        {"keybroker/billing", NULL},
        {"a/_+=.@-", NULL},
        {"", "it must be 1 to 512 characters long (it has 0)"},
        {"keybroker/a,b", "only letters, digits and the characters /_+=.@- are allowed"},
        {"keybroker/a b", "only letters, digits and the characters /_+=.@- are allowed"},
    };
    char long_secret[514];

    S_RUN(kb_config_check_tenant_name, tenant);
    S_RUN(kb_config_check_iam_user_name, tenant);
    S_RUN(kb_config_check_secret_name, secret);
    memset(long_secret, 'a', 512);
    long_secret[512] = '\0';
    assert_int_equal(kb_config_check_secret_name(long_secret, NULL, 0), 0);
    long_secret[512] = 'a';
    long_secret[513] = '\0';
    assert_int_equal(kb_config_check_secret_name(long_secret, NULL, 0), KB_ECONFIG);
}

static void test_iam_paths_and_prefixes(void **state)
{
    static const struct s_case paths[] = {
        {"/", NULL},
        {"/keybroker/", NULL},
        {"/a/b~c!/", NULL},
        {"", "it must be 1 to 512 characters long (it has 0)"},
        {"keybroker/", "it must begin and end with \"/\""},
        {"/keybroker", "it must begin and end with \"/\""},
        {"/a b/", "only printable ASCII characters other than space are allowed"},
        {"/caf\xc3\xa9/", "only printable ASCII characters other than space are allowed"},
    };
    static const struct s_case prefixes[] = {
        {"", NULL},
        {"reports/", NULL},
        {"reports", NULL},
        {"a/..b/c..", NULL},
        {"caf\xc3\xa9/", NULL},
        {"a b/", NULL},
        {"/reports/", "it must not begin with \"/\""},
        {"..", "it must not contain a \"..\" segment"},
        {"a/../b", "it must not contain a \"..\" segment"},
        {"a/..", "it must not contain a \"..\" segment"},
        {"a*", "'*', '?' and '$' are not allowed (IAM policies would read them as wildcards or "
               "variables)"},
        {"a?", "'*', '?' and '$' are not allowed (IAM policies would read them as wildcards or "
               "variables)"},
        {"${aws:username}/", "'*', '?' and '$' are not allowed (IAM policies would read them as "
                             "wildcards or variables)"},
        {"a\tb", "control characters are not allowed"},
        {"a\x7f", "control characters are not allowed"},
        {"\xc3", "it must be valid UTF-8"},
        {"\xed\xa0\x80", "it must be valid UTF-8"}, /* a UTF-16 surrogate */
        {"\xc0\xaf", "it must be valid UTF-8"},     /* overlong '/' */
    };
    char long_prefix[514];

    S_RUN(kb_config_check_iam_path, paths);
    S_RUN(kb_config_check_prefix, prefixes);
    memset(long_prefix, 'p', 513);
    long_prefix[513] = '\0';
    assert_int_equal(kb_config_check_prefix(long_prefix, NULL, 0), KB_ECONFIG);
    long_prefix[512] = '\0';
    assert_int_equal(kb_config_check_prefix(long_prefix, NULL, 0), 0);
}

static void test_s3_actions(void **state)
{
    static const struct s_case cases[] = {
        {"s3:GetObject", NULL},
        {"s3:*", NULL},
        {"s3:Get*Tagging", NULL},
        {"GetObject", "it must begin with \"s3:\""},
        {"iam:CreateUser", "it must begin with \"s3:\""},
        {"S3:GetObject", "it must begin with \"s3:\""},
        {"s3:", "the action after \"s3:\" must be 1 to 125 letters or '*' wildcards"},
        {"s3:Get Object", "the action after \"s3:\" must be 1 to 125 letters or '*' wildcards"},
        {"s3:GetObject2", "the action after \"s3:\" must be 1 to 125 letters or '*' wildcards"},
        {"s3:Get?", "the action after \"s3:\" must be 1 to 125 letters or '*' wildcards"},
    };
    S_RUN(kb_config_check_s3_action, cases);
}

static void test_policy_arns(void **state)
{
    static const char *good[] = {
        "arn:aws:iam::123456789012:policy/Boundary",
        "arn:aws:iam::aws:policy/PowerUserAccess",
        "arn:aws-cn:iam::123456789012:policy/path/to/Boundary",
        "arn:aws-us-gov:iam::123456789012:policy/B+=,.@_-",
    };
    static const struct s_case bad[] = {
        {"Boundary", "expected arn:<partition>:iam::<account>:policy/[<path>/]<name>"},
        {"arn:aws:iam::123456789012", "expected arn:<partition>:iam::<account>:policy/[<path>/]"
                                      "<name>"},
        {"arn:amazon:iam::123456789012:policy/B",
         "the partition must be \"aws\" or \"aws-<name>\""},
        {"arn:aws-:iam::123456789012:policy/B", "the partition must be \"aws\" or \"aws-<name>\""},
        {"arn:aws:s3::123456789012:policy/B", "it must be an IAM ARN: arn:<partition>:iam::..."},
        {"arn:aws:iam:us-east-1:123456789012:policy/B",
         "it must be an IAM ARN: arn:<partition>:iam::..."},
        {"arn:aws:iam::12345678901:policy/B", "the account must be 12 digits or \"aws\""},
        {"arn:aws:iam::123456789012:user/B",
         "the resource must be policy/[<path>/]<name> in printable ASCII"},
        {"arn:aws:iam::123456789012:policy/a b",
         "the resource must be policy/[<path>/]<name> in printable ASCII"},
        {"arn:aws:iam::123456789012:policy/",
         "the policy name must be 1 to 128 letters, digits or +=,.@_- characters"},
        {"arn:aws:iam::123456789012:policy/path/B:x",
         "the policy name must be 1 to 128 letters, digits or +=,.@_- characters"},
    };
    char partition[64];

    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        assert_int_equal(kb_config_check_policy_arn(good[i], partition, NULL, 0), 0);
    }
    assert_string_equal(partition, "aws-us-gov");
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char why[256] = "";
        assert_int_equal(kb_config_check_policy_arn(bad[i].in, NULL, why, sizeof why), KB_ECONFIG);
        assert_string_equal(why, bad[i].why);
    }
}

static void test_kms_keys(void **state)
{
    static const char *good[] = {
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "mrk-1234abcd12ab34cd56ef1234567890ab",
        "alias/keybroker",
        "alias/aws/secretsmanager",
        "arn:aws:kms:us-east-1:123456789012:alias/keybroker",
    };
    static const char *bad[] = {
        "my-key",
        "1234abcd-12ab-34cd-56ef-1234567890a",
        "1234abcd_12ab-34cd-56ef-1234567890ab",
        "1234abcd-12ab-34cd-56ef-1234567890az",
        "alias/",
        "alias/bad name",
        "arn:aws:kms:us-east-1:123456789012:key/nope",
        "arn:aws:kms::123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:us-east-1:1234:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:iam:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    };
    char partition[64];
    char region[64];

    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        assert_int_equal(kb_config_check_kms_key(good[i], partition, region, NULL, 0), 0);
    }
    assert_string_equal(partition, "aws");
    assert_string_equal(region, "us-east-1");
    assert_int_equal(kb_config_check_kms_key(good[0], partition, region, NULL, 0), 0);
    assert_string_equal(partition, ""); /* a bare key id has no partition of its own */
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (kb_config_check_kms_key(bad[i], NULL, NULL, NULL, 0) != KB_ECONFIG) {
            print_message("accepted: %s\n", bad[i]);
            fail();
        }
    }
}

static void test_tags(void **state)
{
    char why[256];
    char long_key[130];
    char long_value[300];

    assert_int_equal(kb_config_check_tag("Cost Center", true, why, sizeof why), 0);
    assert_int_equal(kb_config_check_tag("a_.:/=+-@ 9", true, why, sizeof why), 0);
    assert_int_equal(kb_config_check_tag("\xc3\xa9quipe", true, why, sizeof why), 0);
    assert_int_equal(kb_config_check_tag("", false, why, sizeof why), 0);
    assert_int_equal(kb_config_check_tag("", true, why, sizeof why), KB_ECONFIG);
    assert_string_equal(why, "tag keys must be 1 to 128 characters long (it has 0)");
    assert_int_equal(kb_config_check_tag("Aws:x", true, why, sizeof why), KB_ECONFIG);
    assert_string_equal(why, "the \"aws:\" prefix is reserved by AWS");
    assert_int_equal(kb_config_check_tag("aws:x", false, why, sizeof why), KB_ECONFIG);
    assert_int_equal(kb_config_check_tag("KeyBroker:tenant", true, why, sizeof why), KB_ECONFIG);
    assert_string_equal(why, "the \"keybroker:\" prefix is reserved for keybroker's own tags");
    assert_int_equal(kb_config_check_tag("keybroker:ok", false, why, sizeof why), 0);
    assert_int_equal(kb_config_check_tag("a;b", true, why, sizeof why), KB_ECONFIG);
    assert_string_equal(why, "only letters, digits, spaces and the characters _.:/=+-@ are "
                             "allowed");
    assert_int_equal(kb_config_check_tag("a\xff", true, why, sizeof why), KB_ECONFIG);
    assert_string_equal(why, "it must be valid UTF-8");
    /* lengths count characters: 128 two-byte characters are a valid key */
    for (size_t i = 0; i < 128; i++) {
        memcpy(long_value + 2 * i, "\xc3\xa9", 2);
    }
    long_value[256] = '\0';
    assert_int_equal(kb_config_check_tag(long_value, true, why, sizeof why), 0);
    memset(long_key, 'k', 129);
    long_key[129] = '\0';
    assert_int_equal(kb_config_check_tag(long_key, true, why, sizeof why), KB_ECONFIG);
    memset(long_value, 'v', 257);
    long_value[257] = '\0';
    assert_int_equal(kb_config_check_tag(long_value, false, why, sizeof why), KB_ECONFIG);
    assert_string_equal(why, "tag values must be at most 256 characters long (it has 257)");
    long_value[256] = '\0';
    assert_int_equal(kb_config_check_tag(long_value, false, why, sizeof why), 0);
}

static void test_durations_and_modes(void **state)
{
    uint64_t s = 7;
    uint32_t m = 7;

    assert_int_equal(kb_config_parse_duration("0", &s), 0);
    assert_int_equal(s, 0);
    assert_int_equal(kb_config_parse_duration("90", &s), 0);
    assert_int_equal(s, 90);
    assert_int_equal(kb_config_parse_duration("90s", &s), 0);
    assert_int_equal(s, 90);
    assert_int_equal(kb_config_parse_duration("15m", &s), 0);
    assert_int_equal(s, 900);
    assert_int_equal(kb_config_parse_duration("12h", &s), 0);
    assert_int_equal(s, 43200);
    assert_int_equal(kb_config_parse_duration("30d", &s), 0);
    assert_int_equal(s, 2592000);
    assert_int_equal(kb_config_parse_duration("18446744073709551615", &s), 0);
    assert_true(s == UINT64_MAX);
    static const char *bad[] = {"",
                                "s",
                                "-1s",
                                "+1s",
                                "1.5h",
                                "1w",
                                "1 h",
                                "1hh",
                                "1h1",
                                " 1s",
                                "1S",
                                "1h30m",
                                "213503982334602d",
                                "18446744073709551616"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (kb_config_parse_duration(bad[i], &s) != KB_EINVAL) {
            print_message("accepted duration \"%s\"\n", bad[i]);
            fail();
        }
    }
    assert_int_equal(kb_config_parse_mode("0660", &m), 0);
    assert_int_equal(m, 0660);
    assert_int_equal(kb_config_parse_mode("600", &m), 0);
    assert_int_equal(m, 0600);
    assert_int_equal(kb_config_parse_mode("0777", &m), 0);
    assert_int_equal(kb_config_parse_mode("0000", &m), 0);
    assert_int_equal(m, 0);
    static const char *bad_modes[] = {"", "66", "1777", "0888", "00660", "0x1ff", "rw-", "660 "};
    for (size_t i = 0; i < sizeof bad_modes / sizeof *bad_modes; i++) {
        if (kb_config_parse_mode(bad_modes[i], &m) != KB_EINVAL) {
            print_message("accepted mode \"%s\"\n", bad_modes[i]);
            fail();
        }
    }
}

int main(int argc, char **argv)
{
    /* One case per line: CMake registers each line as its own CTest test. */
    // clang-format off
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_names),
        cmocka_unit_test(test_iam_and_secret_names),
        cmocka_unit_test(test_iam_paths_and_prefixes),
        cmocka_unit_test(test_s3_actions),
        cmocka_unit_test(test_policy_arns),
        cmocka_unit_test(test_kms_keys),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_durations_and_modes),
    };
    // clang-format on
    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
