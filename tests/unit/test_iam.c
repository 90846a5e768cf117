/* test_iam.c - the typed IAM (and STS) calls on a fake transport: exact Query API form bodies,
 * parsing of AWS-shaped XML responses, the access key secret's ownership, and failures. */
#include "kb_test.h"

#include <time.h>

#include "kb_svc_test.h"

#include "aws/iam.h"
#include "aws/sts.h"

#define FORM_CT "Content-Type: application/x-www-form-urlencoded; charset=utf-8\n"

static const struct kb_aws_tag s_tags[] = {
    {"keybroker:tenant", "t1"},
    {"keybroker:managed", "true"},
};

/* -- users ------------------------------------------------------------------------------------ */

struct user_got {
    struct got g;
    char name[64], id[64], arn[128], path[64], boundary[128];
    time_t created;
    size_t tag_count;
    char tag0[64];
};

static void on_user(void *ctx, const struct kb_aws_error *err, const struct kb_iam_user *u)
{
    struct user_got *r = ctx;

    r->g.calls++;
    if (err != NULL) {
        got_error(&r->g, err);
        return;
    }
    cap_copy(r->name, sizeof(r->name), u->user_name);
    cap_copy(r->id, sizeof(r->id), u->user_id);
    cap_copy(r->arn, sizeof(r->arn), u->arn);
    cap_copy(r->path, sizeof(r->path), u->path);
    cap_copy(r->boundary, sizeof(r->boundary), u->permissions_boundary_arn);
    r->created = u->create_date;
    r->tag_count = u->tag_count;
    if (u->tag_count > 0)
        snprintf(r->tag0, sizeof(r->tag0), "%s=%s", u->tags[0].key, u->tags[0].value);
}

static const char s_user_xml[] =
    "<CreateUserResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\n"
    "  <CreateUserResult>\n"
    "    <User>\n"
    "      <Path>/keybroker/</Path>\n"
    "      <UserName>kb-t1</UserName>\n"
    "      <UserId>AIDACKCEVSQ6C2EXAMPLE</UserId>\n"
    "      <Arn>arn:aws:iam::123456789012:user/keybroker/kb-t1</Arn>\n"
    "      <CreateDate>2024-05-01T12:34:56Z</CreateDate>\n"
    "      <PermissionsBoundary>\n"
    "        <PermissionsBoundaryType>Policy</PermissionsBoundaryType>\n"
    "        <PermissionsBoundaryArn>arn:aws:iam::123456789012:policy/kb-boundary"
    "</PermissionsBoundaryArn>\n"
    "      </PermissionsBoundary>\n"
    "      <Tags>\n"
    "        <member><Key>keybroker:tenant</Key><Value>t1</Value></member>\n"
    "        <member><Key>keybroker:managed</Key><Value>true</Value></member>\n"
    "      </Tags>\n"
    "    </User>\n"
    "  </CreateUserResult>\n"
    "  <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId>"
    "</ResponseMetadata>\n"
    "</CreateUserResponse>\n";

static void test_create_user_request(void **state)
{
    struct kb_iam_create_user_input in = {
        .user_name = "kb-t1",
        .path = "/keybroker/",
        .permissions_boundary = "arn:aws:iam::123456789012:policy/kb-boundary",
        .tags = s_tags,
        .tag_count = 2,
    };
    struct user_got r = {0};

    assert_int_equal(kb_iam_create_user(NULL, &in, on_user, &r), 0);
    assert_int_equal(g_cap.sends, 1);
    assert_int_equal(r.g.calls, 0); /* never called back from inside the call */
    assert_int_equal(g_cap.service, KB_AWS_IAM);
    assert_string_equal(g_cap.operation, "CreateUser");
    assert_string_equal(g_cap.method, "POST");
    assert_string_equal(g_cap.path, "/");
    assert_string_equal(g_cap.bucket, "(null)");
    assert_string_equal(g_cap.headers, FORM_CT);
    assert_false(g_cap.sensitive);
    assert_string_equal(g_cap.body,
                        "Action=CreateUser&Version=2010-05-08&UserName=kb-t1"
                        "&Path=%2Fkeybroker%2F"
                        "&PermissionsBoundary=arn%3Aaws%3Aiam%3A%3A123456789012%3Apolicy%2Fkb-"
                        "boundary"
                        "&Tags.member.1.Key=keybroker%3Atenant&Tags.member.1.Value=t1"
                        "&Tags.member.2.Key=keybroker%3Amanaged&Tags.member.2.Value=true");
    cap_respond(200, s_user_xml);
    assert_int_equal(r.g.calls, 1);
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.name, "kb-t1");
    assert_string_equal(r.id, "AIDACKCEVSQ6C2EXAMPLE");
    assert_string_equal(r.arn, "arn:aws:iam::123456789012:user/keybroker/kb-t1");
    assert_string_equal(r.path, "/keybroker/");
    assert_string_equal(r.boundary, "arn:aws:iam::123456789012:policy/kb-boundary");
    assert_int_equal(r.created, 1714566896);
    assert_int_equal(r.tag_count, 2);
    assert_string_equal(r.tag0, "keybroker:tenant=t1");
}

static void test_create_user_minimal(void **state)
{
    struct kb_iam_create_user_input in = {.user_name = "a b+c"};
    struct user_got r = {0};

    assert_int_equal(kb_iam_create_user(NULL, &in, on_user, &r), 0);
    assert_string_equal(g_cap.body, "Action=CreateUser&Version=2010-05-08&UserName=a+b%2Bc");
    cap_fail(KB_EAWS, 409, "EntityAlreadyExists");
    assert_int_equal(r.g.calls, 1);
    assert_int_equal(r.g.err, KB_EAWS);
    assert_int_equal(r.g.status, 409);
    assert_string_equal(r.g.code, "EntityAlreadyExists");
}

static void test_get_user_parses_and_reports_missing_field(void **state)
{
    struct kb_iam_get_user_input in = {.user_name = "kb-t1"};
    struct user_got r = {0};
    const char *no_id = "<GetUserResponse><GetUserResult><User><Path>/</Path>"
                        "<UserName>kb-t1</UserName><Arn>arn:aws:iam::1:user/kb-t1</Arn>"
                        "<CreateDate>2024-05-01T12:34:56Z</CreateDate></User></GetUserResult>"
                        "</GetUserResponse>";

    assert_int_equal(kb_iam_get_user(NULL, &in, on_user, &r), 0);
    assert_string_equal(g_cap.body, "Action=GetUser&Version=2010-05-08&UserName=kb-t1");
    cap_respond(200, no_id);
    assert_int_equal(r.g.calls, 1);
    assert_int_equal(r.g.err, KB_EPARSE);
    assert_string_equal(r.g.request_id, "req-1234");
    assert_non_null(strstr(r.g.message, "GetUser"));
    assert_non_null(strstr(r.g.message, "GetUserResult/User/UserId"));

    /* without tags or boundary, with a fractional date */
    memset(&r, 0, sizeof(r));
    assert_int_equal(kb_iam_get_user(NULL, &(struct kb_iam_get_user_input){0}, on_user, &r), 0);
    assert_string_equal(g_cap.body, "Action=GetUser&Version=2010-05-08");
    cap_respond(200, "<GetUserResponse><GetUserResult><User><Path>/</Path>"
                     "<UserName>me</UserName><UserId>AIDA1</UserId>"
                     "<Arn>arn:aws:iam::1:user/me</Arn>"
                     "<CreateDate>2024-05-01T12:34:56.789Z</CreateDate></User></GetUserResult>"
                     "</GetUserResponse>");
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.name, "me");
    assert_string_equal(r.boundary, "(null)");
    assert_int_equal(r.tag_count, 0);
    assert_int_equal(r.created, 1714566896);
}

static void test_user_parse_failures(void **state)
{
    static const char *const bodies[] = {
        "",
        "<GetUserResponse><GetUserResult><User>",                       /* truncated */
        "<CreateUserResponse><CreateUserResult/></CreateUserResponse>", /* wrong root */
        "<GetUserResponse><GetUserResult/></GetUserResponse>",          /* no User */
        "<GetUserResponse><GetUserResult><User><Path>/</Path><UserName>u</UserName>"
        "<UserId>i</UserId><Arn>arn:aws:iam::1:user/u</Arn><CreateDate>yesterday</CreateDate></"
        "User>"
        "</GetUserResult></GetUserResponse>", /* bad date */
        "<GetUserResponse><GetUserResult><User><Path>/</Path><UserName></UserName>"
        "<UserId>i</UserId><Arn>arn:aws:iam::1:user/u</Arn><CreateDate>2024-05-01T12:34:56Z</"
        "CreateDate></User>"
        "</GetUserResult></GetUserResponse>", /* empty name */
        "<GetUserResponse><GetUserResult><User><Path>/</Path><UserName>u</UserName>"
        "<UserId>i</UserId><Arn>arn:aws:iam::1:user/u</Arn><CreateDate>2024-05-01T12:34:56Z</"
        "CreateDate>"
        "<Tags><member><Value>v</Value></member></Tags></User>"
        "</GetUserResult></GetUserResponse>", /* tag without key */
    };
    static const char *const field[] = {
        "XML",
        "XML",
        "root element is not GetUserResponse",
        "GetUserResult/User missing",
        "CreateDate",
        "UserName empty",
        "Key missing",
    };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct user_got r = {0};

        assert_int_equal(kb_iam_get_user(NULL, &(struct kb_iam_get_user_input){"u"}, on_user, &r),
                         0);
        cap_respond(200, bodies[i]);
        assert_int_equal(r.g.calls, 1);
        assert_int_equal(r.g.err, KB_EPARSE);
        assert_non_null(strstr(r.g.message, field[i]));
    }
}

static void test_input_validation(void **state)
{
    struct kb_aws_tag many[51];
    struct user_got r = {0};
    char longname[2048];

    for (size_t i = 0; i < 51; i++)
        many[i] = (struct kb_aws_tag){"k", "v"};
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(kb_iam_create_user(NULL, NULL, on_user, &r), KB_EINVAL);
    assert_int_equal(kb_iam_create_user(NULL, &(struct kb_iam_create_user_input){0}, on_user, &r),
                     KB_EINVAL);
    assert_int_equal(
        kb_iam_create_user(NULL, &(struct kb_iam_create_user_input){.user_name = ""}, on_user, &r),
        KB_EINVAL);
    assert_int_equal(kb_iam_create_user(NULL,
                                        &(struct kb_iam_create_user_input){.user_name = longname},
                                        on_user, &r),
                     KB_EINVAL);
    assert_int_equal(kb_iam_create_user(NULL,
                                        &(struct kb_iam_create_user_input){
                                            .user_name = "u", .tags = many, .tag_count = 51},
                                        on_user, &r),
                     KB_EINVAL);
    assert_int_equal(
        kb_iam_tag_user(NULL, &(struct kb_iam_tag_user_input){.user_name = "u"}, on_done, &r.g),
        KB_EINVAL);
    assert_int_equal(kb_iam_update_access_key(
                         NULL,
                         &(struct kb_iam_update_access_key_input){"u", "AKIA1", KB_IAM_KEY_EXPIRED},
                         on_done, &r.g),
                     KB_EINVAL);
    assert_int_equal(g_cap.sends, 0);
    assert_int_equal(r.g.calls, 0);
}

static void test_sender_failure_is_returned(void **state)
{
    struct got g = {0};

    g_cap.send_rc = KB_ENOCREDS;
    assert_int_equal(kb_iam_delete_user(NULL, &(struct kb_iam_user_input){"u"}, on_done, &g),
                     KB_ENOCREDS);
    assert_int_equal(g_cap.sends, 1);
    assert_int_equal(g.calls, 0);
}

/* -- tags, policies, deletes --------------------------------------------------------------------
 */

static void test_tag_user_and_done_result(void **state)
{
    struct kb_iam_tag_user_input in = {"kb-t1", s_tags, 2};
    struct got g = {0};

    assert_int_equal(kb_iam_tag_user(NULL, &in, on_done, &g), 0);
    assert_string_equal(g_cap.body, "Action=TagUser&Version=2010-05-08&UserName=kb-t1"
                                    "&Tags.member.1.Key=keybroker%3Atenant&Tags.member.1.Value=t1"
                                    "&Tags.member.2.Key=keybroker%3Amanaged"
                                    "&Tags.member.2.Value=true");
    cap_respond(200, "<TagUserResponse><ResponseMetadata><RequestId>r</RequestId>"
                     "</ResponseMetadata></TagUserResponse>");
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.err, 0);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.operation, "TagUser");
    assert_string_equal(g.request_id, "req-1234");
}

struct tags_got {
    struct got g;
    size_t count;
    char joined[256];
    int truncated;
    char marker[64];
};

static void on_tags(void *ctx, const struct kb_aws_error *err, const struct kb_iam_tags *t)
{
    struct tags_got *r = ctx;

    r->g.calls++;
    if (err != NULL) {
        got_error(&r->g, err);
        return;
    }
    r->count = t->tag_count;
    cap_join_tags(r->joined, sizeof(r->joined), t->tags, t->tag_count);
    r->truncated = t->is_truncated;
    cap_copy(r->marker, sizeof(r->marker), t->marker);
}

static void test_list_user_tags(void **state)
{
    struct kb_iam_list_user_tags_input in = {"kb-t1", "m1"};
    struct tags_got r = {0};

    assert_int_equal(kb_iam_list_user_tags(NULL, &in, on_tags, &r), 0);
    assert_string_equal(g_cap.body,
                        "Action=ListUserTags&Version=2010-05-08&UserName=kb-t1&Marker=m1");
    cap_respond(200, "<ListUserTagsResponse><ListUserTagsResult><Tags>"
                     "<member><Key>a</Key><Value>1</Value></member>"
                     "<member><Key>b</Key><Value></Value></member></Tags>"
                     "<IsTruncated>true</IsTruncated><Marker>m2</Marker></ListUserTagsResult>"
                     "</ListUserTagsResponse>");
    assert_int_equal(r.g.err, 0);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.joined, "a=1;b=;");
    assert_true(r.truncated);
    assert_string_equal(r.marker, "m2");
}

static void test_put_user_policy_encodes_document(void **state)
{
    struct kb_iam_put_user_policy_input in = {
        "kb-t1", "keybroker-s3",
        "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", "
        "\"Action\": \"s3:GetObject\", \"Resource\": \"arn:aws:s3:::b/p*\"}]}"};
    struct got g = {0};

    assert_int_equal(kb_iam_put_user_policy(NULL, &in, on_done, &g), 0);
    assert_string_equal(g_cap.body,
                        "Action=PutUserPolicy&Version=2010-05-08&UserName=kb-t1"
                        "&PolicyName=keybroker-s3&PolicyDocument="
                        "%7B%22Version%22%3A+%222012-10-17%22%2C+%22Statement%22%3A+%5B%7B"
                        "%22Effect%22%3A+%22Allow%22%2C+%22Action%22%3A+%22s3%3AGetObject%22"
                        "%2C+%22Resource%22%3A+%22arn%3Aaws%3As3%3A%3A%3Ab%2Fp%2A%22%7D%5D%7D");
    cap_respond(200, "<PutUserPolicyResponse/>");
    assert_int_equal(g.err, 0);
    assert_int_equal(g.calls, 1);
}

struct policy_got {
    struct got g;
    char user[32], name[32], doc[256];
};

static void on_policy(void *ctx, const struct kb_aws_error *err, const struct kb_iam_user_policy *p)
{
    struct policy_got *r = ctx;

    r->g.calls++;
    if (err != NULL) {
        got_error(&r->g, err);
        return;
    }
    cap_copy(r->user, sizeof(r->user), p->user_name);
    cap_copy(r->name, sizeof(r->name), p->policy_name);
    cap_copy(r->doc, sizeof(r->doc), p->policy_document);
}

static void test_get_user_policy_decodes_document(void **state)
{
    struct kb_iam_user_policy_input in = {"kb-t1", "keybroker-s3"};
    struct policy_got r = {0};

    assert_int_equal(kb_iam_get_user_policy(NULL, &in, on_policy, &r), 0);
    assert_string_equal(
        g_cap.body,
        "Action=GetUserPolicy&Version=2010-05-08&UserName=kb-t1&PolicyName=keybroker-s3");
    cap_respond(200, "<GetUserPolicyResponse><GetUserPolicyResult><UserName>kb-t1</UserName>"
                     "<PolicyName>keybroker-s3</PolicyName><PolicyDocument>"
                     "%7B%22Version%22%3A%20%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D"
                     "</PolicyDocument></GetUserPolicyResult></GetUserPolicyResponse>");
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.user, "kb-t1");
    assert_string_equal(r.name, "keybroker-s3");
    assert_string_equal(r.doc, "{\"Version\": \"2012-10-17\",\"Statement\":[]}");

    /* a document that decodes to a NUL byte is refused */
    memset(&r, 0, sizeof(r));
    assert_int_equal(kb_iam_get_user_policy(NULL, &in, on_policy, &r), 0);
    cap_respond(200, "<GetUserPolicyResponse><GetUserPolicyResult><UserName>kb-t1</UserName>"
                     "<PolicyName>p</PolicyName><PolicyDocument>%7B%00%7D</PolicyDocument>"
                     "</GetUserPolicyResult></GetUserPolicyResponse>");
    assert_int_equal(r.g.err, KB_EPARSE);
    assert_non_null(strstr(r.g.message, "PolicyDocument"));
}

static void test_delete_calls(void **state)
{
    struct got g = {0};

    assert_int_equal(
        kb_iam_delete_user_policy(NULL, &(struct kb_iam_user_policy_input){"u", "p"}, on_done, &g),
        0);
    assert_string_equal(g_cap.operation, "DeleteUserPolicy");
    assert_string_equal(g_cap.body,
                        "Action=DeleteUserPolicy&Version=2010-05-08&UserName=u&PolicyName=p");
    cap_respond(200, "<DeleteUserPolicyResponse/>");
    assert_int_equal(kb_iam_delete_user(NULL, &(struct kb_iam_user_input){"u"}, on_done, &g), 0);
    assert_string_equal(g_cap.body, "Action=DeleteUser&Version=2010-05-08&UserName=u");
    cap_fail(KB_EAWS, 409, "DeleteConflict");
    assert_int_equal(g.calls, 2);
    assert_int_equal(g.err, KB_EAWS);
    assert_string_equal(g.code, "DeleteConflict");
    memset(&g, 0, sizeof(g));
    assert_int_equal(kb_iam_delete_access_key(NULL, &(struct kb_iam_access_key_input){"u", "AKIA1"},
                                              on_done, &g),
                     0);
    assert_string_equal(g_cap.body,
                        "Action=DeleteAccessKey&Version=2010-05-08&UserName=u&AccessKeyId=AKIA1");
    cap_respond(200, "<DeleteAccessKeyResponse/>");
    assert_int_equal(
        kb_iam_update_access_key(
            NULL, &(struct kb_iam_update_access_key_input){"u", "AKIA1", KB_IAM_KEY_INACTIVE},
            on_done, &g),
        0);
    assert_string_equal(g_cap.body, "Action=UpdateAccessKey&Version=2010-05-08&UserName=u"
                                    "&AccessKeyId=AKIA1&Status=Inactive");
    cap_respond(200, "<UpdateAccessKeyResponse/>");
    assert_int_equal(g.calls, 2);
    assert_int_equal(g.err, 0);
}

/* -- access keys --------------------------------------------------------------------------------
 */

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"

static const char s_key_xml[] =
    "<CreateAccessKeyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\n"
    "  <CreateAccessKeyResult>\n"
    "    <AccessKey>\n"
    "      <UserName>kb-t1</UserName>\n"
    "      <AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId>\n"
    "      <Status>Active</Status>\n"
    "      <SecretAccessKey>" SECRET "</SecretAccessKey>\n"
    "      <CreateDate>2024-05-01T12:34:56Z</CreateDate>\n"
    "    </AccessKey>\n"
    "  </CreateAccessKeyResult>\n"
    "  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>\n"
    "</CreateAccessKeyResponse>\n";

struct key_got {
    struct got g;
    int take;
    char user[32], id[32];
    enum kb_iam_key_status status;
    time_t created;
    struct kb_secret *secret;
};

static void on_key(void *ctx, const struct kb_aws_error *err, struct kb_iam_access_key *k)
{
    struct key_got *r = ctx;

    r->g.calls++;
    if (err != NULL) {
        got_error(&r->g, err);
        return;
    }
    cap_copy(r->user, sizeof(r->user), k->user_name);
    cap_copy(r->id, sizeof(r->id), k->access_key_id);
    r->status = k->status;
    r->created = k->create_date;
    assert_non_null(k->secret_access_key);
    assert_true(kb_secret_equals(k->secret_access_key, SECRET, strlen(SECRET)));
    if (r->take) {
        r->secret = k->secret_access_key;
        k->secret_access_key = NULL;
    }
}

static void test_create_access_key_takes_secret(void **state)
{
    struct key_got r = {.take = 1};

    assert_int_equal(
        kb_iam_create_access_key(NULL, &(struct kb_iam_user_input){"kb-t1"}, on_key, &r), 0);
    assert_string_equal(g_cap.operation, "CreateAccessKey");
    assert_string_equal(g_cap.body, "Action=CreateAccessKey&Version=2010-05-08&UserName=kb-t1");
    assert_true(g_cap.sensitive); /* the response carries the secret */
    cap_respond(200, s_key_xml);
    assert_int_equal(r.g.calls, 1);
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.user, "kb-t1");
    assert_string_equal(r.id, "AKIAIOSFODNN7EXAMPLE");
    assert_int_equal(r.status, KB_IAM_KEY_ACTIVE);
    assert_int_equal(r.created, 1714566896);
    /* the callback took it: it outlives the callback */
    assert_non_null(r.secret);
    assert_true(kb_secret_equals(r.secret, SECRET, strlen(SECRET)));
    kb_secret_destroy(r.secret);
}

static void test_create_access_key_secret_left_is_destroyed(void **state)
{
    struct key_got r = {.take = 0};

    assert_int_equal(
        kb_iam_create_access_key(NULL, &(struct kb_iam_user_input){"kb-t1"}, on_key, &r), 0);
    cap_respond(200, s_key_xml);
    assert_int_equal(r.g.calls, 1);
    assert_int_equal(r.g.err, 0);
    assert_null(r.secret); /* and ASan's leak check proves it was destroyed */
}

static void test_create_access_key_failures(void **state)
{
    static const char *const bodies[] = {
        /* no secret */
        "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u</UserName>"
        "<AccessKeyId>AKIAIOSFODNN7EXAMP1</AccessKeyId><Status>Active</Status></AccessKey>"
        "</CreateAccessKeyResult></CreateAccessKeyResponse>",
        /* empty secret */
        "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u</UserName>"
        "<AccessKeyId>AKIAIOSFODNN7EXAMP1</AccessKeyId><Status>Active</Status><SecretAccessKey/>"
        "</AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>",
        /* bad status, secret present (must still be destroyed) */
        "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u</UserName>"
        "<AccessKeyId>AKIAIOSFODNN7EXAMP1</AccessKeyId><Status>Weird</"
        "Status><SecretAccessKey>s3cr3t"
        "</SecretAccessKey></AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>",
        /* truncated inside the secret */
        "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u</UserName>"
        "<AccessKeyId>AKIAIOSFODNN7EXAMP1</AccessKeyId><Status>Active</"
        "Status><SecretAccessKey>s3cr",
        /* no key id */
        "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u</UserName>"
        "<Status>Active</Status><SecretAccessKey>s3cr3t</SecretAccessKey></AccessKey>"
        "</CreateAccessKeyResult></CreateAccessKeyResponse>",
    };
    static const char *const field[] = {"SecretAccessKey", "SecretAccessKey", "Status", "XML",
                                        "AccessKeyId"};

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct key_got r = {.take = 1};

        assert_int_equal(
            kb_iam_create_access_key(NULL, &(struct kb_iam_user_input){"u"}, on_key, &r), 0);
        cap_respond(200, bodies[i]);
        assert_int_equal(r.g.calls, 1);
        assert_int_equal(r.g.err, KB_EPARSE);
        assert_non_null(strstr(r.g.message, field[i]));
        /* the error message never carries the secret */
        assert_null(strstr(r.g.message, "s3cr"));
    }
}

struct keys_got {
    struct got g;
    size_t count;
    char joined[256];
    int truncated;
};

static void on_keys(void *ctx, const struct kb_aws_error *err, const struct kb_iam_access_keys *k)
{
    struct keys_got *r = ctx;
    size_t off = 0;

    r->g.calls++;
    if (err != NULL) {
        got_error(&r->g, err);
        return;
    }
    r->count = k->count;
    r->truncated = k->is_truncated;
    for (size_t i = 0; i < k->count; i++)
        off += (size_t)snprintf(r->joined + off, sizeof(r->joined) - off, "%s/%s/%s/%lld;",
                                k->keys[i].user_name ? k->keys[i].user_name : "-",
                                k->keys[i].access_key_id, kb_iam_key_status_name(k->keys[i].status),
                                (long long)k->keys[i].create_date);
}

static void test_list_access_keys(void **state)
{
    struct keys_got r = {0};

    assert_int_equal(
        kb_iam_list_access_keys(NULL, &(struct kb_iam_list_access_keys_input){.user_name = "u"},
                                on_keys, &r),
        0);
    assert_string_equal(g_cap.body, "Action=ListAccessKeys&Version=2010-05-08&UserName=u");
    cap_respond(200, "<ListAccessKeysResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">"
                     "<ListAccessKeysResult><AccessKeyMetadata>"
                     "<member><UserName>u</UserName><AccessKeyId>AKIAIOSFODNN7EXAMP1</AccessKeyId>"
                     "<Status>Active</Status><CreateDate>2024-05-01T12:34:56Z</CreateDate></member>"
                     "<member><UserName>u</UserName><AccessKeyId>AKIAIOSFODNN7EXAMP2</AccessKeyId>"
                     "<Status>Inactive</Status><CreateDate>2024-05-02T00:00:00Z</CreateDate>"
                     "</member></AccessKeyMetadata><IsTruncated>false</IsTruncated>"
                     "</ListAccessKeysResult></ListAccessKeysResponse>");
    assert_int_equal(r.g.err, 0);
    assert_int_equal(r.count, 2);
    assert_false(r.truncated);
    assert_string_equal(
        r.joined,
        "u/AKIAIOSFODNN7EXAMP1/Active/1714566896;u/AKIAIOSFODNN7EXAMP2/Inactive/1714608000;");

    memset(&r, 0, sizeof(r));
    assert_int_equal(
        kb_iam_list_access_keys(NULL, &(struct kb_iam_list_access_keys_input){.user_name = "u"},
                                on_keys, &r),
        0);
    cap_respond(200, "<ListAccessKeysResponse><ListAccessKeysResult><AccessKeyMetadata/>"
                     "<IsTruncated>false</IsTruncated></ListAccessKeysResult>"
                     "</ListAccessKeysResponse>");
    assert_int_equal(r.g.err, 0);
    assert_int_equal(r.count, 0);

    memset(&r, 0, sizeof(r));
    assert_int_equal(
        kb_iam_list_access_keys(NULL, &(struct kb_iam_list_access_keys_input){.user_name = "u"},
                                on_keys, &r),
        0);
    cap_respond(200, "<ListAccessKeysResponse><ListAccessKeysResult><AccessKeyMetadata>"
                     "<member><Status>Active</Status></member></AccessKeyMetadata>"
                     "</ListAccessKeysResult></ListAccessKeysResponse>");
    assert_int_equal(r.g.err, KB_EPARSE);
    assert_non_null(strstr(r.g.message, "member[0]/AccessKeyId"));

    memset(&r, 0, sizeof(r));
    assert_int_equal(
        kb_iam_list_access_keys(NULL, &(struct kb_iam_list_access_keys_input){.user_name = "u"},
                                on_keys, &r),
        0);
    cap_respond(200, "<ListAccessKeysResponse><ListAccessKeysResult>"
                     "<IsTruncated>maybe</IsTruncated></ListAccessKeysResult>"
                     "</ListAccessKeysResponse>");
    /* botocore's reading: anything but "true" is false (a list that is not truncated) */
    assert_int_equal(r.g.err, 0);
    assert_false(r.truncated);

    /* strict where it matters: a key id that is not one is refused, nothing is listed */
    memset(&r, 0, sizeof(r));
    assert_int_equal(
        kb_iam_list_access_keys(NULL, &(struct kb_iam_list_access_keys_input){.user_name = "u"},
                                on_keys, &r),
        0);
    cap_respond(200, "<ListAccessKeysResponse><ListAccessKeysResult><AccessKeyMetadata>"
                     "<member><AccessKeyId>AKIA 1</AccessKeyId><Status>Active</Status></member>"
                     "</AccessKeyMetadata></ListAccessKeysResult></ListAccessKeysResponse>");
    assert_int_equal(r.g.err, KB_EPARSE);
    assert_non_null(strstr(r.g.message, "is not an access key id"));
    assert_int_equal(r.count, 0);
}

/* -- STS ----------------------------------------------------------------------------------------
 */

struct id_got {
    struct got g;
    char account[16], arn[96], user_id[32];
};

static void on_identity(void *ctx, const struct kb_aws_error *err, const struct kb_sts_identity *id)
{
    struct id_got *r = ctx;

    r->g.calls++;
    if (err != NULL) {
        got_error(&r->g, err);
        return;
    }
    cap_copy(r->account, sizeof(r->account), id->account);
    cap_copy(r->arn, sizeof(r->arn), id->arn);
    cap_copy(r->user_id, sizeof(r->user_id), id->user_id);
}

static void test_get_caller_identity(void **state)
{
    struct kb_credentials creds = {.access_key_id = "AKIANEW"};
    struct kb_sts_get_caller_identity_input in = {&creds, 1};
    struct id_got r = {0};

    assert_int_equal(kb_sts_get_caller_identity(NULL, &in, on_identity, &r), 0);
    assert_int_equal(g_cap.service, KB_AWS_STS);
    assert_string_equal(g_cap.method, "POST");
    assert_string_equal(g_cap.body, "Action=GetCallerIdentity&Version=2011-06-15");
    assert_string_equal(g_cap.headers, FORM_CT);
    assert_ptr_equal(g_cap.credentials, &creds);
    assert_int_equal(g_cap.max_attempts, 1);
    cap_respond(200, "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/"
                     "2011-06-15/\"><GetCallerIdentityResult>"
                     "<Arn>arn:aws:iam::123456789012:user/kb-t1</Arn>"
                     "<UserId>AIDACKCEVSQ6C2EXAMPLE</UserId><Account>123456789012</Account>"
                     "</GetCallerIdentityResult><ResponseMetadata><RequestId>r</RequestId>"
                     "</ResponseMetadata></GetCallerIdentityResponse>");
    assert_int_equal(r.g.err, 0);
    assert_string_equal(r.account, "123456789012");
    assert_string_equal(r.arn, "arn:aws:iam::123456789012:user/kb-t1");
    assert_string_equal(r.user_id, "AIDACKCEVSQ6C2EXAMPLE");

    memset(&r, 0, sizeof(r));
    assert_int_equal(kb_sts_get_caller_identity(NULL, &in, on_identity, &r), 0);
    cap_respond(
        200, "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::1:user/u</Arn>"
             "<UserId>u</UserId></GetCallerIdentityResult></GetCallerIdentityResponse>");
    assert_int_equal(r.g.err, KB_EPARSE);
    assert_non_null(strstr(r.g.message, "GetCallerIdentityResult/Account"));
    assert_int_equal(kb_sts_get_caller_identity(NULL, NULL, on_identity, &r), KB_EINVAL);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_user_request, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_create_user_minimal, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_get_user_parses_and_reports_missing_field, cap_setup,
                                        cap_teardown),
        cmocka_unit_test_setup_teardown(test_user_parse_failures, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_input_validation, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_sender_failure_is_returned, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_tag_user_and_done_result, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_list_user_tags, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_put_user_policy_encodes_document, cap_setup,
                                        cap_teardown),
        cmocka_unit_test_setup_teardown(test_get_user_policy_decodes_document, cap_setup,
                                        cap_teardown),
        cmocka_unit_test_setup_teardown(test_delete_calls, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_create_access_key_takes_secret, cap_setup,
                                        cap_teardown),
        cmocka_unit_test_setup_teardown(test_create_access_key_secret_left_is_destroyed, cap_setup,
                                        cap_teardown),
        cmocka_unit_test_setup_teardown(test_create_access_key_failures, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_list_access_keys, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_get_caller_identity, cap_setup, cap_teardown),
    };

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
