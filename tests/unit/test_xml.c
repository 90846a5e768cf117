/* test_xml.c - the expat tree reader: structure, text, secret elements in guarded memory, limits
 * and refusals of malformed or hostile documents. */
#include "kb_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "aws/xml.h"

#define SECRET_PATH "CreateAccessKeyResponse/CreateAccessKeyResult/AccessKey/SecretAccessKey"

static const char s_key_doc[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<CreateAccessKeyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\n"
    "  <CreateAccessKeyResult>\n"
    "    <AccessKey>\n"
    "      <UserName>kb-t1</UserName>\n"
    "      <AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId>\n"
    "      <Status>Active</Status>\n"
    "      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>\n"
    "      <CreateDate>2024-05-01T12:34:56Z</CreateDate>\n"
    "    </AccessKey>\n"
    "  </CreateAccessKeyResult>\n"
    "  <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId>"
    "</ResponseMetadata>\n"
    "</CreateAccessKeyResponse>\n";

static struct kb_xml_doc *parse_ok(const char *body, const char *secret_path)
{
    const char *paths[1] = {secret_path};
    struct kb_xml_doc *doc = NULL;
    char why[128];

    assert_int_equal(
        kb_xml_parse(body, strlen(body), paths, secret_path ? 1 : 0, &doc, why, sizeof(why)), 0);
    assert_non_null(doc);
    return doc;
}

static int parse_err(const char *body, size_t len, const char *secret_path, char *why,
                     size_t whylen)
{
    const char *paths[1] = {secret_path};
    struct kb_xml_doc *doc = (struct kb_xml_doc *)1;
    int rc = kb_xml_parse(body, len, paths, secret_path ? 1 : 0, &doc, why, whylen);

    assert_null(doc);
    return rc;
}

static void test_tree_structure(void **state)
{
    struct kb_xml_doc *doc = parse_ok(s_key_doc, NULL);
    const struct kb_xml_node *root = kb_xml_root(doc);
    const struct kb_xml_node *key = kb_xml_path(root, "CreateAccessKeyResult/AccessKey");
    size_t len = 99;

    assert_string_equal(kb_xml_name(root), "CreateAccessKeyResponse");
    assert_non_null(key);
    assert_int_equal(kb_xml_count(key, NULL), 5);
    assert_string_equal(kb_xml_text(kb_xml_child(key, "UserName"), &len), "kb-t1");
    assert_int_equal(len, 5);
    /* without a secret path the secret is ordinary text */
    assert_string_equal(kb_xml_text(kb_xml_child(key, "SecretAccessKey"), NULL),
                        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
    assert_false(kb_xml_is_secret(kb_xml_child(key, "SecretAccessKey")));
    /* containers drop their indentation */
    assert_string_equal(kb_xml_text(key, &len), "");
    assert_int_equal(len, 0);
    assert_string_equal(kb_xml_name(kb_xml_child(key, NULL)), "UserName");
    assert_string_equal(kb_xml_name(kb_xml_next_any(kb_xml_child(key, NULL))), "AccessKeyId");
    assert_null(kb_xml_next(kb_xml_child(key, "UserName")));
    assert_string_equal(kb_xml_text(kb_xml_path(root, "ResponseMetadata/RequestId"), NULL),
                        "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE");
    assert_null(kb_xml_path(root, "CreateAccessKeyResult/Nope"));
    assert_null(kb_xml_path(root, "CreateAccessKeyResult//AccessKey"));
    assert_ptr_equal(kb_xml_path(root, ""), root);
    kb_xml_free(doc);
}

static void test_repeated_members(void **state)
{
    const char *body = "<R><L><member>a</member><x/><member>b</member><member>c</member></L></R>";
    struct kb_xml_doc *doc = parse_ok(body, NULL);
    const struct kb_xml_node *list = kb_xml_path(kb_xml_root(doc), "L");
    const struct kb_xml_node *m = kb_xml_child(list, "member");
    char seen[8] = "";
    size_t n = 0;

    assert_int_equal(kb_xml_count(list, "member"), 3);
    assert_int_equal(kb_xml_count(list, NULL), 4);
    for (; m != NULL; m = kb_xml_next(m))
        seen[n++] = kb_xml_text(m, NULL)[0];
    assert_string_equal(seen, "abc");
    assert_string_equal(kb_xml_text(kb_xml_child(list, "x"), NULL), "");
    kb_xml_free(doc);
}

static void test_text_decoding(void **state)
{
    const char *body = "<a:R xmlns:a=\"urn:x\"><a:T>x &amp; y &lt;z&gt; &#x41;</a:T>"
                       "<C><![CDATA[<raw & text>]]></C><U>caf\xc3\xa9</U></a:R>";
    struct kb_xml_doc *doc = parse_ok(body, NULL);
    const struct kb_xml_node *root = kb_xml_root(doc);

    assert_string_equal(kb_xml_name(root), "R");
    assert_string_equal(kb_xml_text(kb_xml_child(root, "T"), NULL), "x & y <z> A");
    assert_string_equal(kb_xml_text(kb_xml_child(root, "C"), NULL), "<raw & text>");
    assert_string_equal(kb_xml_text(kb_xml_child(root, "U"), NULL), "caf\xc3\xa9");
    kb_xml_free(doc);
}

static void test_secret_goes_to_guarded_memory(void **state)
{
    struct kb_xml_doc *doc = parse_ok(s_key_doc, SECRET_PATH);
    const struct kb_xml_node *n =
        kb_xml_path(kb_xml_root(doc), "CreateAccessKeyResult/AccessKey/SecretAccessKey");
    const char *want = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
    struct kb_secret *s;
    size_t len = 99;

    assert_non_null(n);
    assert_true(kb_xml_is_secret(n));
    /* the tree holds no copy of the text */
    assert_string_equal(kb_xml_text(n, &len), "");
    assert_int_equal(len, 0);
    s = kb_xml_take_secret(doc, n);
    assert_non_null(s);
    assert_true(kb_secret_equals(s, want, strlen(want)));
    assert_null(kb_xml_take_secret(doc, n)); /* taken once */
    /* other elements are ordinary */
    assert_null(kb_xml_take_secret(
        doc, kb_xml_path(kb_xml_root(doc), "CreateAccessKeyResult/AccessKey/UserName")));
    kb_secret_destroy(s);
    kb_xml_free(doc);
}

static void test_secret_not_taken_is_freed(void **state)
{
    /* ASan's leak check proves the doc destroys a secret nobody took. */
    struct kb_xml_doc *doc = parse_ok(s_key_doc, SECRET_PATH);

    kb_xml_free(doc);
}

static void test_secret_with_entities(void **state)
{
    const char *body = "<A><B>x</B><S>ab&amp;c&#x64;<![CDATA[e<f]]></S></A>";
    struct kb_xml_doc *doc = parse_ok(body, "A/S");
    struct kb_secret *s = kb_xml_take_secret(doc, kb_xml_child(kb_xml_root(doc), "S"));

    assert_non_null(s);
    assert_true(kb_secret_equals(s, "ab&cde<f", 8));
    kb_secret_destroy(s);
    kb_xml_free(doc);
}

static void test_secret_path_is_exact(void **state)
{
    /* same name elsewhere, or deeper, is not the secret */
    const char *body = "<A><S>plain</S><X><S>nested</S></X></A>";
    struct kb_xml_doc *doc = parse_ok(body, "A/X/S");
    const struct kb_xml_node *root = kb_xml_root(doc);

    assert_false(kb_xml_is_secret(kb_xml_child(root, "S")));
    assert_string_equal(kb_xml_text(kb_xml_child(root, "S"), NULL), "plain");
    assert_true(kb_xml_is_secret(kb_xml_path(root, "X/S")));
    kb_xml_free(doc);
    doc = parse_ok(body, "X/S"); /* not anchored at the root: matches nothing */
    assert_false(kb_xml_is_secret(kb_xml_path(kb_xml_root(doc), "X/S")));
    kb_xml_free(doc);
}

static void test_empty_secret(void **state)
{
    struct kb_xml_doc *doc = parse_ok("<A><S/></A>", "A/S");
    struct kb_secret *s = kb_xml_take_secret(doc, kb_xml_child(kb_xml_root(doc), "S"));

    assert_non_null(s);
    assert_int_equal(kb_secret_len(s), 0);
    kb_secret_destroy(s);
    kb_xml_free(doc);
}

static void test_element_inside_secret_refused(void **state)
{
    const char *body = "<A><S>ab<i>c</i></S></A>";
    char why[128];

    assert_int_equal(parse_err(body, strlen(body), "A/S", why, sizeof(why)), KB_EPARSE);
    assert_non_null(strstr(why, "secret"));
}

static void test_secret_too_long(void **state)
{
    size_t n = KB_XML_MAX_SECRET + 1;
    char *body = malloc(n + 32);
    char why[128];
    int len;

    assert_non_null(body);
    len = snprintf(body, 8, "<A><S>");
    memset(body + len, 'k', n);
    memcpy(body + len + n, "</S></A>", 9);
    assert_int_equal(parse_err(body, strlen(body), "A/S", why, sizeof(why)), KB_ETOOBIG);
    /* the same text is fine as ordinary text */
    {
        struct kb_xml_doc *doc = parse_ok(body, NULL);
        size_t tlen;

        kb_xml_text(kb_xml_child(kb_xml_root(doc), "S"), &tlen);
        assert_int_equal(tlen, n);
        kb_xml_free(doc);
    }
    free(body);
}

static void test_malformed_documents(void **state)
{
    static const char *const bad[] = {
        "",
        "   ",
        "not xml at all",
        "<A><B></A></B>",
        "<A><B>text</B>", /* truncated */
        "<A>",            /* truncated */
        "<A></A><B></B>", /* two roots */
        "<A attr=></A>",
        "<A>&undefined;</A>",
        "<A>\x01</A>", /* not an XML character */
        "<?xml version=\"1.0\"?>",
        "<A>\xff\xfe</A>",                                                    /* invalid UTF-8 */
        "<CreateUserResponse><CreateUserResult><User><UserName>x</UserName>", /* cut */
    };
    char why[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        assert_int_equal(parse_err(bad[i], strlen(bad[i]), NULL, why, sizeof(why)), KB_EPARSE);
        assert_true(why[0] != '\0');
    }
    /* a NUL byte inside the body */
    assert_int_equal(parse_err("<A>x\0y</A>", 10, NULL, why, sizeof(why)), KB_EPARSE);
}

static void test_doctype_refused(void **state)
{
    const char *laughs = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
                         "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>"
                         "<lolz>&lol2;</lolz>";
    const char *external = "<!DOCTYPE A SYSTEM \"file:///etc/passwd\"><A>x</A>";
    char why[128];

    assert_int_equal(parse_err(laughs, strlen(laughs), NULL, why, sizeof(why)), KB_EPARSE);
    assert_non_null(strstr(why, "DOCTYPE"));
    assert_int_equal(parse_err(external, strlen(external), NULL, why, sizeof(why)), KB_EPARSE);
}

static void test_depth_limit(void **state)
{
    char body[2048];
    size_t off = 0;

    for (int i = 0; i < KB_XML_MAX_DEPTH + 1; i++)
        off += (size_t)snprintf(body + off, sizeof(body) - off, "<e>");
    for (int i = 0; i < KB_XML_MAX_DEPTH + 1; i++)
        off += (size_t)snprintf(body + off, sizeof(body) - off, "</e>");
    assert_int_equal(parse_err(body, off, NULL, NULL, 0), KB_ETOOBIG);
    /* exactly the limit parses */
    off = 0;
    for (int i = 0; i < KB_XML_MAX_DEPTH; i++)
        off += (size_t)snprintf(body + off, sizeof(body) - off, "<e>");
    for (int i = 0; i < KB_XML_MAX_DEPTH; i++)
        off += (size_t)snprintf(body + off, sizeof(body) - off, "</e>");
    kb_xml_free(parse_ok(body, NULL));
}

static void test_node_and_text_limits(void **state)
{
    size_t n = KB_XML_MAX_NODES + 1, off = 0;
    size_t cap = n * 4 + 16;
    char *body = malloc(cap);

    assert_non_null(body);
    memcpy(body, "<R>", 3);
    off = 3;
    for (size_t i = 0; i < n - 1; i++, off += 4)
        memcpy(body + off, "<e/>", 4);
    memcpy(body + off, "</R>", 4);
    assert_int_equal(parse_err(body, off + 4, NULL, NULL, 0), KB_ETOOBIG);
    free(body);

    cap = KB_XML_MAX_TEXT + 16;
    body = malloc(cap);
    assert_non_null(body);
    memcpy(body, "<R>", 3);
    memset(body + 3, 'a', KB_XML_MAX_TEXT + 1);
    memcpy(body + 3 + KB_XML_MAX_TEXT + 1, "</R>", 4);
    assert_int_equal(parse_err(body, KB_XML_MAX_TEXT + 8, NULL, NULL, 0), KB_ETOOBIG);
    free(body);
}

static void test_bad_arguments(void **state)
{
    struct kb_xml_doc *doc = NULL;
    const char *paths[KB_XML_MAX_SECRET_PATHS + 1] = {"a", "b", "c", "d", "e"};

    assert_int_equal(kb_xml_parse(NULL, 5, NULL, 0, &doc, NULL, 0), KB_EINVAL);
    assert_int_equal(kb_xml_parse("<A/>", 4, NULL, 1, &doc, NULL, 0), KB_EINVAL);
    assert_int_equal(kb_xml_parse("<A/>", 4, paths, KB_XML_MAX_SECRET_PATHS + 1, &doc, NULL, 0),
                     KB_EINVAL);
    assert_null(doc);
    kb_xml_free(NULL);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_structure),
        cmocka_unit_test(test_repeated_members),
        cmocka_unit_test(test_text_decoding),
        cmocka_unit_test(test_secret_goes_to_guarded_memory),
        cmocka_unit_test(test_secret_not_taken_is_freed),
        cmocka_unit_test(test_secret_with_entities),
        cmocka_unit_test(test_secret_path_is_exact),
        cmocka_unit_test(test_empty_secret),
        cmocka_unit_test(test_element_inside_secret_refused),
        cmocka_unit_test(test_secret_too_long),
        cmocka_unit_test(test_malformed_documents),
        cmocka_unit_test(test_doctype_refused),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_node_and_text_limits),
        cmocka_unit_test(test_bad_arguments),
    };

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
