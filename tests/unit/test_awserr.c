/* test_awserr.c - AWS error bodies (XML, JSON, empty) into struct kb_aws_error, including
 * malformed, truncated and hostile ones. */
#include "kb_test.h"

#include <stdlib.h>
#include <string.h>

#include "aws/awserr_parse.h"
#include "common/err.h"

/* As IAM sends it (the documented example of the Query API error form). */
static const char IAM_BODY[] =
    "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\n"
    "  <Error>\n"
    "    <Type>Sender</Type>\n"
    "    <Code>NoSuchEntity</Code>\n"
    "    <Message>The user with name nobody cannot be found.</Message>\n"
    "  </Error>\n"
    "  <RequestId>4f0b3c2a-9d4e-11e6-8d8b-5f0e0e8a7c11</RequestId>\n"
    "</ErrorResponse>\n";

static const char STS_BODY[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>"
    "<Code>SignatureDoesNotMatch</Code><Message>Signature expired: 20261128T000000Z is now "
    "earlier than 20261128T003000Z (20261128T004500Z - 15 min.)</Message></Error>"
    "<RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>";

static const char S3_BODY[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message>"
    "<BucketName>kb-missing</BucketName><RequestId>4442587FB7D0A2F9</RequestId>"
    "<HostId>ZTpPbmNlIHVwb24gYSB0aW1lIGluIGEgYnVja2V0</HostId></Error>";

static const char S3_NS_BODY[] =
    "<ns:ErrorResponse xmlns:ns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ns:Error>"
    "<ns:Code>AccessDenied</ns:Code><ns:Message>Access Denied &amp; logged</ns:Message>"
    "</ns:Error><ns:RequestId>R1</ns:RequestId></ns:ErrorResponse>";

static const char EC2_BODY[] =
    "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit "
    "exceeded.</Message></Error></Errors><RequestID>ec2-req-1</RequestID></Response>";

static const char SM_BODY[] =
    "{\"__type\":\"com.amazonaws.secretsmanager#ResourceNotFoundException\","
    "\"Message\":\"Secrets Manager can't find the specified secret.\"}";

static int parse(long status, const char *body, size_t len, const char *rid, const char *etype,
                 struct kb_aws_error *e)
{
    struct kb_awserr_input in = {status, body, len, rid, etype};

    memset(e, 0x5a, sizeof(*e)); /* garbage: the parser must set every string */
    e->operation[0] = '\0';
    e->attempts = 7;
    return kb_awserr_parse(&in, e);
}

static void test_query_xml(void **state)
{
    struct kb_aws_error e;

    assert_int_equal(parse(404, IAM_BODY, strlen(IAM_BODY), "hdr-id", NULL, &e), 0);
    assert_int_equal(e.err, KB_EAWS);
    assert_int_equal(e.status, 404);
    assert_string_equal(e.code, "NoSuchEntity");
    assert_string_equal(e.message, "The user with name nobody cannot be found.");
    assert_string_equal(e.request_id, "4f0b3c2a-9d4e-11e6-8d8b-5f0e0e8a7c11"); /* body wins */
    assert_int_equal(e.attempts, 7);                                           /* left alone */

    assert_int_equal(parse(403, STS_BODY, strlen(STS_BODY), NULL, NULL, &e), 0);
    assert_string_equal(e.code, "SignatureDoesNotMatch");
    assert_non_null(strstr(e.message, "Signature expired"));
    assert_string_equal(e.request_id, "c6104cbe-af31-11e0-8154-cbc7ccf896c7");

    assert_int_equal(parse(503, EC2_BODY, strlen(EC2_BODY), NULL, NULL, &e), 0);
    assert_string_equal(e.code, "RequestLimitExceeded");
    assert_string_equal(e.request_id, "ec2-req-1");
}

static void test_s3_xml(void **state)
{
    struct kb_aws_error e;

    assert_int_equal(parse(404, S3_BODY, strlen(S3_BODY), "4442587FB7D0A2F9", NULL, &e), 0);
    assert_string_equal(e.code, "NoSuchBucket");
    assert_string_equal(e.message, "The specified bucket does not exist");
    assert_string_equal(e.request_id, "4442587FB7D0A2F9");

    assert_int_equal(parse(403, S3_NS_BODY, strlen(S3_NS_BODY), NULL, NULL, &e), 0);
    assert_string_equal(e.code, "AccessDenied");
    assert_string_equal(e.message, "Access Denied & logged");
    assert_string_equal(e.request_id, "R1");
}

static void test_json(void **state)
{
    static const char lower[] =
        "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}\n";
    static const char uri[] = "{\"__type\":\"aws.protocoltests#ValidationException:"
                              "http://internal.amazon.com/coral/com.amazon.coral.validate/\","
                              "\"message\":\"bad\",\"Message\":\"ignored\"}";
    static const char rest[] = "{\"code\":\"InvalidRequestException\",\"Message\":\"m\"}";
    static const char none[] = "{\"Message\":\"no type\"}";
    struct kb_aws_error e;

    assert_int_equal(parse(400, SM_BODY, strlen(SM_BODY), "sm-1", NULL, &e), 0);
    assert_string_equal(e.code, "ResourceNotFoundException");
    assert_string_equal(e.message, "Secrets Manager can't find the specified secret.");
    assert_string_equal(e.request_id, "sm-1");

    assert_int_equal(parse(400, lower, strlen(lower), NULL, NULL, &e), 0);
    assert_string_equal(e.code, "ThrottlingException");
    assert_string_equal(e.message, "Rate exceeded");

    assert_int_equal(parse(400, uri, strlen(uri), NULL, NULL, &e), 0);
    assert_string_equal(e.code, "ValidationException");
    assert_string_equal(e.message, "bad");

    assert_int_equal(parse(400, rest, strlen(rest), NULL, NULL, &e), 0);
    assert_string_equal(e.code, "InvalidRequestException");

    /* no code in the body: the x-amzn-ErrorType header, then the status */
    assert_int_equal(parse(400, none, strlen(none), NULL, "ExpiredTokenException:http://x/", &e),
                     0);
    assert_string_equal(e.code, "ExpiredTokenException");
    assert_string_equal(e.message, "no type");
    assert_int_equal(parse(400, none, strlen(none), NULL, NULL, &e), KB_EPARSE);
    assert_string_equal(e.code, "BadRequest");
}

static void test_empty_body_uses_status(void **state)
{
    struct kb_aws_error e;

    assert_int_equal(parse(404, "", 0, "head-rid", NULL, &e), KB_EPARSE);
    assert_string_equal(e.code, "NotFound");
    assert_string_equal(e.message, "Not Found");
    assert_string_equal(e.request_id, "head-rid");
    assert_int_equal(parse(403, NULL, 0, NULL, NULL, &e), KB_EPARSE);
    assert_string_equal(e.code, "Forbidden");
    assert_string_equal(e.request_id, "");
    assert_int_equal(parse(301, "  \r\n", 4, NULL, NULL, &e), KB_EPARSE);
    assert_string_equal(e.code, "PermanentRedirect");
    assert_int_equal(parse(503, NULL, 0, NULL, NULL, &e), KB_EPARSE);
    assert_string_equal(e.code, "ServiceUnavailable");
    assert_int_equal(parse(418, NULL, 0, NULL, NULL, &e), KB_EPARSE);
    assert_string_equal(e.code, "418");
    assert_string_equal(e.message, "");
    assert_string_equal(kb_awserr_status_text(500), "Internal Server Error");
    assert_null(kb_awserr_status_code(299));
}

static void test_malformed_bodies(void **state)
{
    static const char *const bodies[] = {
        "<html><body>502 Bad Gateway</body></html>",
        "<ErrorResponse><Error><Code>Unclosed",
        "<Error><Message>only a message</Message></Error>",
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 "
        "\"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]><Error><Code>&lol2;</Code>"
        "</Error>",
        "<!DOCTYPE x SYSTEM \"file:///etc/passwd\"><Error><Code>X</Code></Error>",
        "<Error><Code>A</Code></Error><Error>", /* junk after the root */
        "{\"__type\": 42}",
        "[\"__type\", \"X\"]",
        "{\"__type\":\"X\"} trailing",
        "{\"__type\":\"X\"",
        "{\"__type\":\"#\"}",
        "\x01\x02\xff\xfe garbage",
        "<",
        "{",
    };
    struct kb_aws_error e;

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        int rc = parse(500, bodies[i], strlen(bodies[i]), "rid", NULL, &e);

        assert_int_equal(e.err, KB_EAWS);
        assert_true(memchr(e.code, '\0', sizeof(e.code)) != NULL);
        assert_true(memchr(e.message, '\0', sizeof(e.message)) != NULL);
        if (i == 5) {
            assert_int_equal(rc, 0); /* the code before the junk is complete */
            assert_string_equal(e.code, "A");
            continue;
        }
        if (rc != KB_EPARSE)
            fail_msg("body %zu parsed as %s", i, e.code);
        assert_string_equal(e.code, "InternalServerError");
        assert_string_equal(e.request_id, "rid");
    }
    /* the message of a document without a code is still kept */
    parse(400, bodies[2], strlen(bodies[2]), NULL, NULL, &e);
    assert_string_equal(e.message, "only a message");
}

static void test_truncated_after_code_keeps_code(void **state)
{
    static const char cut[] = "<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exc";
    struct kb_aws_error e;

    assert_int_equal(parse(400, cut, strlen(cut), NULL, NULL, &e), 0);
    assert_string_equal(e.code, "Throttling");
    assert_string_equal(e.message, "Bad Request"); /* the cut message is not used */
}

/* Appends text to b (capacity cap) at *off. */
static void app(char *b, size_t cap, size_t *off, const char *text)
{
    size_t n = strlen(text);

    assert_true(*off + n < cap);
    memcpy(b + *off, text, n);
    *off += n;
}

static void test_long_and_deep(void **state)
{
    size_t n = 100000, cap = n * 8 + 64, off = 0;
    char *b = malloc(cap);
    struct kb_aws_error e;

    assert_non_null(b);
    /* a message far longer than the field: truncated, NUL-terminated */
    app(b, cap, &off, "<Error><Code>");
    memset(b + off, 'C', 500);
    off += 500;
    app(b, cap, &off, "</Code><Message>");
    memset(b + off, 'm', 5000);
    off += 5000;
    app(b, cap, &off, "</Message></Error>");
    assert_int_equal(parse(400, b, off, NULL, NULL, &e), 0);
    assert_int_equal(strlen(e.code), sizeof(e.code) - 1);
    assert_int_equal(strlen(e.message), sizeof(e.message) - 1);
    /* nesting 100000 deep: refused without recursion trouble */
    off = 0;
    for (size_t i = 0; i < n; i++)
        app(b, cap, &off, "<Error>");
    assert_int_equal(parse(500, b, off, NULL, NULL, &e), KB_EPARSE);
    /* JSON nesting beyond json-c's depth limit */
    off = 0;
    app(b, cap, &off, "{\"a\":");
    for (size_t i = 0; i < 10000; i++)
        b[off++] = '[';
    assert_int_equal(parse(500, b, off, NULL, NULL, &e), KB_EPARSE);
    free(b);
}

/* Every prefix of every real body, and every single-byte corruption of one, must parse without a
 * crash and leave NUL-terminated strings (ASan watches the reads). */
static void test_every_prefix_and_flip(void **state)
{
    static const char *const bodies[] = {IAM_BODY,   STS_BODY, S3_BODY,
                                         S3_NS_BODY, EC2_BODY, SM_BODY};
    struct kb_aws_error e;

    for (size_t b = 0; b < sizeof(bodies) / sizeof(bodies[0]); b++) {
        size_t len = strlen(bodies[b]);
        char *copy = malloc(len);

        assert_non_null(copy);
        for (size_t i = 0; i <= len; i++) {
            memcpy(copy, bodies[b], i); /* exactly i bytes, no terminator to lean on */
            parse(500, copy, i, NULL, NULL, &e);
            assert_true(strlen(e.code) < sizeof(e.code));
        }
        for (size_t i = 0; i < len; i++) {
            memcpy(copy, bodies[b], len);
            copy[i] = (char)(copy[i] ^ 0x41);
            parse(500, copy, len, NULL, NULL, &e);
            assert_true(strlen(e.message) < sizeof(e.message));
        }
        free(copy);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_xml),
        cmocka_unit_test(test_s3_xml),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_empty_body_uses_status),
        cmocka_unit_test(test_malformed_bodies),
        cmocka_unit_test(test_truncated_after_code_keeps_code),
        cmocka_unit_test(test_long_and_deep),
        cmocka_unit_test(test_every_prefix_and_flip),
    };
    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
