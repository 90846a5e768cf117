/* test_policy.c - the generated policies, byte for byte, and their semantic comparison. */
#include "kb_test.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "config/policy.h"

#define S_VERSION      "{\"Version\":\"2012-10-17\",\"Statement\":["
#define S_READ_ACTIONS "\"s3:GetObject\",\"s3:GetObjectVersion\",\"s3:GetObjectAttributes\""
#define S_WRITE_ACTIONS                                                                            \
    "\"s3:PutObject\",\"s3:DeleteObject\",\"s3:AbortMultipartUpload\","                            \
    "\"s3:ListMultipartUploadParts\""

static struct kb_tenant s_tenant(const char *bucket, const char *prefix, enum kb_access access)
{
    struct kb_tenant t;

    memset(&t, 0, sizeof t);
    t.name = (char *)"billing";
    t.bucket = (char *)bucket;
    t.prefix = (char *)prefix;
    t.access = access;
    return t;
}

/* Builds t's policy in partition and compares it with want, byte for byte. */
static void s_expect_policy(const struct kb_tenant *t, const char *partition, const char *want)
{
    char *json = NULL;
    char msg[256] = "unset";

    assert_int_equal(kb_policy_tenant(t, partition, &json, msg, sizeof msg), 0);
    assert_string_equal(msg, "");
    assert_string_equal(json, want);
    free(json);
}

static void test_read_only(void **state)
{
    struct kb_tenant t = s_tenant("acme-billing", "reports/", KB_ACCESS_READ_ONLY);

    s_expect_policy(
        &t, "aws",
        S_VERSION "{\"Sid\":\"KeybrokerObjects\",\"Effect\":\"Allow\",\"Action\":[" S_READ_ACTIONS
                  "],\"Resource\":[\"arn:aws:s3:::acme-billing/reports/*\"]},"
                  "{\"Sid\":\"KeybrokerList\",\"Effect\":\"Allow\",\"Action\":[\"s3:ListBucket\"],"
                  "\"Resource\":[\"arn:aws:s3:::acme-billing\"],\"Condition\":{\"StringLike\":"
                  "{\"s3:prefix\":[\"reports/\",\"reports/*\"]}}},"
                  "{\"Sid\":\"KeybrokerBucket\",\"Effect\":\"Allow\",\"Action\":"
                  "[\"s3:GetBucketLocation\"],\"Resource\":[\"arn:aws:s3:::acme-billing\"]}]}");
    /* the whole bucket: no Condition on the listing */
    t.prefix = "";
    s_expect_policy(
        &t, "aws",
        S_VERSION "{\"Sid\":\"KeybrokerObjects\",\"Effect\":\"Allow\",\"Action\":[" S_READ_ACTIONS
                  "],\"Resource\":[\"arn:aws:s3:::acme-billing/*\"]},"
                  "{\"Sid\":\"KeybrokerList\",\"Effect\":\"Allow\",\"Action\":[\"s3:ListBucket\"],"
                  "\"Resource\":[\"arn:aws:s3:::acme-billing\"]},"
                  "{\"Sid\":\"KeybrokerBucket\",\"Effect\":\"Allow\",\"Action\":"
                  "[\"s3:GetBucketLocation\"],\"Resource\":[\"arn:aws:s3:::acme-billing\"]}]}");
    t.prefix = NULL; /* same as "" */
    s_expect_policy(
        &t, "aws",
        S_VERSION "{\"Sid\":\"KeybrokerObjects\",\"Effect\":\"Allow\",\"Action\":[" S_READ_ACTIONS
                  "],\"Resource\":[\"arn:aws:s3:::acme-billing/*\"]},"
                  "{\"Sid\":\"KeybrokerList\",\"Effect\":\"Allow\",\"Action\":[\"s3:ListBucket\"],"
                  "\"Resource\":[\"arn:aws:s3:::acme-billing\"]},"
                  "{\"Sid\":\"KeybrokerBucket\",\"Effect\":\"Allow\",\"Action\":"
                  "[\"s3:GetBucketLocation\"],\"Resource\":[\"arn:aws:s3:::acme-billing\"]}]}");
}

static void test_read_write(void **state)
{
    struct kb_tenant t = s_tenant("acme.data", "app/in", KB_ACCESS_READ_WRITE);

    s_expect_policy(
        &t, "aws-cn",
        S_VERSION "{\"Sid\":\"KeybrokerObjects\",\"Effect\":\"Allow\",\"Action\":[" S_READ_ACTIONS
                  "," S_WRITE_ACTIONS "],\"Resource\":[\"arn:aws-cn:s3:::acme.data/app/in*\"]},"
                  "{\"Sid\":\"KeybrokerList\",\"Effect\":\"Allow\",\"Action\":[\"s3:ListBucket\"],"
                  "\"Resource\":[\"arn:aws-cn:s3:::acme.data\"],\"Condition\":{\"StringLike\":"
                  "{\"s3:prefix\":[\"app/in\",\"app/in*\"]}}},"
                  "{\"Sid\":\"KeybrokerBucket\",\"Effect\":\"Allow\",\"Action\":"
                  "[\"s3:GetBucketLocation\",\"s3:ListBucketMultipartUploads\"],"
                  "\"Resource\":[\"arn:aws-cn:s3:::acme.data\"]}]}");
}

static void test_admin_and_custom(void **state)
{
    struct kb_tenant t = s_tenant("acme-owner", "", KB_ACCESS_ADMIN);
    char *actions[] = {"s3:PutObject", "s3:GetObject*"};

    s_expect_policy(&t, "aws-us-gov",
                    S_VERSION "{\"Sid\":\"KeybrokerAdmin\",\"Effect\":\"Allow\",\"Action\":"
                              "[\"s3:*\"],\"Resource\":[\"arn:aws-us-gov:s3:::acme-owner\","
                              "\"arn:aws-us-gov:s3:::acme-owner/*\"]}]}");
    t = s_tenant("acme-custom", "in/", KB_ACCESS_CUSTOM);
    t.actions = actions;
    t.nactions = 2;
    s_expect_policy(&t, "aws",
                    S_VERSION
                    "{\"Sid\":\"KeybrokerCustom\",\"Effect\":\"Allow\",\"Action\":"
                    "[\"s3:PutObject\",\"s3:GetObject*\"],\"Resource\":"
                    "[\"arn:aws:s3:::acme-custom\",\"arn:aws:s3:::acme-custom/in/*\"]}]}");
    /* a prefix with '/' and non-ASCII text is kept verbatim (no "\/", no \u escapes) */
    t = s_tenant("acme-custom", "caf\xc3\xa9/", KB_ACCESS_CUSTOM);
    t.actions = actions;
    t.nactions = 1;
    s_expect_policy(&t, "aws",
                    S_VERSION "{\"Sid\":\"KeybrokerCustom\",\"Effect\":\"Allow\",\"Action\":"
                              "[\"s3:PutObject\"],\"Resource\":[\"arn:aws:s3:::acme-custom\","
                              "\"arn:aws:s3:::acme-custom/caf\xc3\xa9/*\"]}]}");
}

static void test_bucket_policy(void **state)
{
    char *json = NULL;

    assert_int_equal(kb_policy_bucket("acme-billing", "aws", &json), 0);
    assert_string_equal(json, S_VERSION
                        "{\"Sid\":\"KeybrokerDenyInsecureTransport\",\"Effect\":\"Deny\","
                        "\"Principal\":\"*\",\"Action\":[\"s3:*\"],\"Resource\":"
                        "[\"arn:aws:s3:::acme-billing\",\"arn:aws:s3:::acme-billing/*\"],"
                        "\"Condition\":{\"Bool\":{\"aws:SecureTransport\":[\"false\"]}}}]}");
    free(json);
    assert_int_equal(kb_policy_bucket(NULL, "aws", &json), KB_EINVAL);
    assert_null(json);
    assert_int_equal(kb_policy_bucket("acme-*", "aws", &json), KB_EINVAL);
    assert_int_equal(kb_policy_bucket("acme", "a w s", &json), KB_EINVAL);
    assert_int_equal(kb_policy_bucket("acme", "aws", NULL), KB_EINVAL);
}

static void test_deterministic(void **state)
{
    struct kb_tenant t = s_tenant("acme-billing", "x/", KB_ACCESS_READ_WRITE);
    char *a = NULL;
    char *b = NULL;

    assert_int_equal(kb_policy_tenant(&t, "aws", &a, NULL, 0), 0);
    assert_int_equal(kb_policy_tenant(&t, "aws", &b, NULL, 0), 0);
    assert_string_equal(a, b);
    assert_ptr_not_equal(a, b);
    free(a);
    free(b);
}

static void test_partitions(void **state)
{
    assert_string_equal(kb_policy_partition(NULL), "aws");
    assert_string_equal(kb_policy_partition(""), "aws");
    assert_string_equal(kb_policy_partition("us-east-1"), "aws");
    assert_string_equal(kb_policy_partition("eu-west-1"), "aws");
    assert_string_equal(kb_policy_partition("cn-north-1"), "aws-cn");
    assert_string_equal(kb_policy_partition("cn-northwest-1"), "aws-cn");
    assert_string_equal(kb_policy_partition("us-gov-west-1"), "aws-us-gov");
    assert_string_equal(kb_policy_partition("us-iso-east-1"), "aws-iso");
    assert_string_equal(kb_policy_partition("us-isob-east-1"), "aws-iso-b");
    assert_string_equal(kb_policy_partition("us-isof-south-1"), "aws-iso-f");
    assert_string_equal(kb_policy_partition("eu-isoe-west-1"), "aws-iso-e");
    assert_string_equal(kb_policy_partition("eusc-de-east-1"), "aws-eusc");
}

/* A custom policy whose one action has n letters after "s3:". */
static int s_custom_of_size(size_t n, char **json, char *msg, size_t msglen)
{
    char *action = malloc(n + 4);
    struct kb_tenant t = s_tenant("acme-custom", "", KB_ACCESS_CUSTOM);
    int rc;

    assert_non_null(action);
    memcpy(action, "s3:", 3);
    memset(action + 3, 'A', n);
    action[n + 3] = '\0';
    t.actions = &action;
    t.nactions = 1;
    rc = kb_policy_tenant(&t, "aws", json, msg, msglen);
    free(action);
    return rc;
}

static void test_size_limit(void **state)
{
    char *json = NULL;
    char msg[256];
    size_t base;
    size_t fill;

    assert_int_equal(s_custom_of_size(1, &json, msg, sizeof msg), 0);
    base = strlen(json) - 1; /* everything but the one letter */
    assert_int_equal(kb_policy_size(json), strlen(json));
    free(json);
    fill = KB_POLICY_MAX_USER_INLINE - base;
    assert_int_equal(s_custom_of_size(fill, &json, msg, sizeof msg), 0);
    assert_int_equal(strlen(json), KB_POLICY_MAX_USER_INLINE);
    free(json);
    json = (char *)1;
    assert_int_equal(s_custom_of_size(fill + 1, &json, msg, sizeof msg), KB_ETOOBIG);
    assert_null(json);
    assert_string_equal(msg, "the generated IAM policy is 2049 characters long (whitespace not "
                             "counted): IAM allows at most 2048 in a user's inline policies");
}

static void test_size_counting(void **state)
{
    struct kb_tenant t = s_tenant("acme-billing", "a b/", KB_ACCESS_READ_WRITE);
    struct json_object *parsed;
    char *json = NULL;

    assert_int_equal(kb_policy_size("{\"a\": \"x y\"}"), 11);
    assert_int_equal(kb_policy_size(" {\n\t\"a\" :\r\n \"\\\" \" } "), 11);
    assert_int_equal(kb_policy_size("{\"a\":\"\xc3\xa9\"}"), 9); /* characters, not bytes */
    assert_int_equal(kb_policy_size(""), 0);
    /* a pretty-printed copy of a generated policy has the same size as the compact one */
    assert_int_equal(kb_policy_tenant(&t, "aws", &json, NULL, 0), 0);
    parsed = json_tokener_parse(json);
    assert_non_null(parsed);
    assert_int_equal(kb_policy_size(json_object_to_json_string_ext(
                         parsed, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE)),
                     strlen(json));
    json_object_put(parsed);
    free(json);
}

static void test_rejects_unusable_input(void **state)
{
    struct kb_tenant t = s_tenant("acme-billing", "", KB_ACCESS_READ_ONLY);
    char *json = (char *)1;
    char msg[256];

    assert_int_equal(kb_policy_tenant(NULL, "aws", &json, msg, sizeof msg), KB_EINVAL);
    assert_null(json);
    assert_string_equal(msg, "the tenant has no bucket");
    assert_int_equal(kb_policy_tenant(&t, NULL, &json, msg, sizeof msg), KB_EINVAL);
    assert_string_equal(msg, "the partition is not valid");
    assert_int_equal(kb_policy_tenant(&t, "aws", NULL, NULL, 0), KB_EINVAL);
    t.prefix = "a*";
    assert_int_equal(kb_policy_tenant(&t, "aws", &json, msg, sizeof msg), KB_EINVAL);
    assert_string_equal(msg, "the bucket or prefix holds '*', '?', '$' or a control character");
    t.prefix = "${aws:username}/";
    assert_int_equal(kb_policy_tenant(&t, "aws", &json, NULL, 0), KB_EINVAL);
    t.prefix = "";
    t.bucket = "acme?";
    assert_int_equal(kb_policy_tenant(&t, "aws", &json, NULL, 0), KB_EINVAL);
    t.bucket = "";
    assert_int_equal(kb_policy_tenant(&t, "aws", &json, NULL, 0), KB_EINVAL);
    t = s_tenant("acme-billing", "", KB_ACCESS_CUSTOM);
    assert_int_equal(kb_policy_tenant(&t, "aws", &json, msg, sizeof msg), KB_EINVAL);
    assert_string_equal(msg, "a custom access lists no action");
    assert_null(json);
}

static bool s_equal(const char *a, const char *b)
{
    bool eq = true;

    assert_int_equal(kb_policy_equal(a, b, &eq), 0);
    return eq;
}

static void test_equal(void **state)
{
    struct kb_tenant t = s_tenant("acme-billing", "reports/", KB_ACCESS_READ_ONLY);
    char *ours = NULL;
    /* ours, as IAM might hand it back: reformatted, statements and lists reordered, a
     * one-element list collapsed to a string, members reordered, action names in other case */
    const char *theirs =
        "{\n  \"Statement\": [\n"
        "    {\"Effect\": \"Allow\", \"Sid\": \"KeybrokerBucket\",\n"
        "     \"Resource\": \"arn:aws:s3:::acme-billing\", \"Action\": \"s3:getbucketlocation\"},\n"
        "    {\"Sid\": \"KeybrokerList\", \"Effect\": \"Allow\", \"Action\": \"s3:ListBucket\",\n"
        "     \"Resource\": [\"arn:aws:s3:::acme-billing\"],\n"
        "     \"Condition\": {\"StringLike\": {\"s3:prefix\": [\"reports/*\", \"reports/\"]}}},\n"
        "    {\"Sid\": \"KeybrokerObjects\", \"Effect\": \"Allow\",\n"
        "     \"Action\": [\"s3:GetObjectAttributes\", \"s3:GetObject\", "
        "\"S3:GetObjectVersion\"],\n"
        "     \"Resource\": \"arn:aws:s3:::acme-billing/reports/*\"}\n"
        "  ],\n  \"Version\": \"2012-10-17\"\n}\n";
    char *edited;

    assert_int_equal(kb_policy_tenant(&t, "aws", &ours, NULL, 0), 0);
    assert_true(s_equal(ours, ours));
    assert_true(s_equal(ours, theirs));
    assert_true(s_equal(theirs, ours));
    /* one change at a time makes them differ */
    static const struct {
        const char *from, *to;
    } edits[] = {
        {"reports/*\", \"reports/\"", "reports/*\", \"other/\""}, /* condition value */
        {"acme-billing/reports/*", "acme-billing/*"},             /* wider object resource */
        {"\"S3:GetObjectVersion\"", "\"s3:PutObject\""},          /* another action */
        {"\"Effect\": \"Allow\", \"Sid\": \"KeybrokerBucket\"",
         "\"Effect\": \"Deny\", \"Sid\": \"KeybrokerBucket\""}, /* effect */
        {"\"Sid\": \"KeybrokerList\"", "\"Sid\": \"Other\""},   /* statement id */
        {"StringLike", "StringEquals"},                         /* operator */
        {"\"2012-10-17\"", "\"2008-10-17\""},                   /* version */
    };
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        const char *at = strstr(theirs, edits[i].from);
        size_t n = strlen(theirs) + strlen(edits[i].to) + 1;
        assert_non_null(at);
        edited = malloc(n);
        assert_non_null(edited);
        snprintf(edited, n, "%.*s%s%s", (int)(at - theirs), theirs, edits[i].to,
                 at + strlen(edits[i].from));
        if (s_equal(ours, edited)) {
            print_message("edit %zu not noticed: %s\n", i, edited);
            fail();
        }
        free(edited);
    }
    free(ours);
}

static void test_equal_shapes(void **state)
{
    bool eq = true;
    char *big;

    /* a missing Condition, an extra statement, an extra action */
    assert_false(s_equal("{\"Statement\":[{\"Action\":\"s3:A\",\"Condition\":{}}]}",
                         "{\"Statement\":[{\"Action\":\"s3:A\"}]}"));
    assert_false(s_equal("{\"Statement\":[{\"Action\":\"s3:A\"}]}",
                         "{\"Statement\":[{\"Action\":\"s3:A\"},{\"Action\":\"s3:B\"}]}"));
    assert_false(s_equal("{\"Statement\":{\"Action\":[\"s3:A\"]}}",
                         "{\"Statement\":{\"Action\":[\"s3:A\",\"s3:B\"]}}"));
    /* a statement object equals a one-statement list; lists are sets */
    assert_true(s_equal("{\"Statement\":{\"Action\":\"s3:A\"}}",
                        "{\"Statement\":[{\"Action\":[\"s3:A\",\"s3:a\"]}]}"));
    /* scalars compare by text; case matters outside actions */
    assert_true(s_equal("{\"C\":{\"Bool\":{\"aws:SecureTransport\":\"false\"}}}",
                        "{\"C\":{\"Bool\":{\"aws:SecureTransport\":[false]}}}"));
    assert_false(s_equal("{\"Resource\":\"arn:aws:s3:::A\"}", "{\"Resource\":\"arn:aws:s3:::a\"}"));
    assert_false(s_equal("{\"a\":null}", "{\"a\":\"null\"}"));
    assert_true(s_equal("{\"a\":null}", "{\"a\":null}"));
    assert_false(s_equal("{\"a\":{}}", "{\"a\":[]}"));
    assert_false(s_equal("{\"a\":[]}", "{\"a\":\"x\"}"));
    /* errors */
    assert_int_equal(kb_policy_equal("{", "{}", &eq), KB_EPARSE);
    assert_false(eq);
    assert_int_equal(kb_policy_equal("{}", "[]", &eq), KB_EPARSE);
    assert_int_equal(kb_policy_equal("{}", "{} x", &eq), KB_EPARSE);
    assert_int_equal(kb_policy_equal(NULL, "{}", &eq), KB_EINVAL);
    assert_int_equal(kb_policy_equal("{}", "{}", NULL), KB_EINVAL);
    big = malloc(KB_POLICY_MAX_COMPARE + 2);
    assert_non_null(big);
    memset(big, ' ', KB_POLICY_MAX_COMPARE + 1);
    big[0] = '{';
    big[KB_POLICY_MAX_COMPARE] = '}';
    big[KB_POLICY_MAX_COMPARE + 1] = '\0';
    assert_int_equal(kb_policy_equal(big, "{}", &eq), KB_ETOOBIG);
    big[KB_POLICY_MAX_COMPARE - 1] = '}';
    big[KB_POLICY_MAX_COMPARE] = '\0';
    assert_int_equal(kb_policy_equal(big, "{}", &eq), 0);
    assert_true(eq);
    free(big);
}

int main(int argc, char **argv)
{
    /* One case per line: CMake registers each line as its own CTest test. */
    // clang-format off
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_only),
        cmocka_unit_test(test_read_write),
        cmocka_unit_test(test_admin_and_custom),
        cmocka_unit_test(test_bucket_policy),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_partitions),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_size_counting),
        cmocka_unit_test(test_rejects_unusable_input),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_equal_shapes),
    };
    // clang-format on
    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
