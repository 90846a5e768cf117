"""IAM through awscli: users, tags, inline and managed user policies, permissions boundaries,
access keys, and IAM's validation and conflict rules."""

import datetime
import json
import re
import unittest
import xml.etree.ElementTree as ET

from harness import FakeAWSTestCase

ACCOUNT = "123456789012"
NS = "{https://iam.amazonaws.com/doc/2010-05-08/}"
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
ALLOW_ALL_IAM = {"Version": "2012-10-17",
                 "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}


def doc(statements):
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


class IamTestCase(FakeAWSTestCase):
    def iam(self, *args, **kw):
        return self.fa.aws("iam", *args, **kw)

    def key_for(self, user):
        k = self.iam("create-access-key", "--user-name", user)["AccessKey"]
        return k["AccessKeyId"], k["SecretAccessKey"]


class UserTests(IamTestCase):
    def test_create_user_fields_path_tags_boundary(self):
        boundary = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
        out = self.iam("create-user", "--user-name", "alice", "--path", "/svc/keybroker/",
                       "--tags", "Key=keybroker:tenant,Value=t-1", "Key=team,Value=infra",
                       "--permissions-boundary", boundary)["User"]
        self.assertEqual(out["UserName"], "alice")
        self.assertEqual(out["Path"], "/svc/keybroker/")
        self.assertEqual(out["Arn"], f"arn:aws:iam::{ACCOUNT}:user/svc/keybroker/alice")
        self.assertRegex(out["UserId"], r"^AIDA[A-Z0-9]{17}$")
        self.assertRegex(out["CreateDate"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
        self.assertEqual(out["PermissionsBoundary"],
                         {"PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                          "PermissionsBoundaryArn": boundary})
        got = self.iam("get-user", "--user-name", "alice")["User"]
        self.assertEqual(got["UserId"], out["UserId"])
        self.assertEqual(got["Tags"], [{"Key": "keybroker:tenant", "Value": "t-1"},
                                       {"Key": "team", "Value": "infra"}])
        self.assertEqual(got["PermissionsBoundary"]["PermissionsBoundaryArn"], boundary)
        # ListUsers shows neither tags nor the boundary, as in IAM.
        listed = self.iam("list-users")["Users"]
        self.assertEqual([u["UserName"] for u in listed], ["alice"])
        self.assertNotIn("Tags", listed[0])
        self.assertNotIn("PermissionsBoundary", listed[0])
        user = self.fa.state()["services"]["iam"]["users"]["alice"]
        self.assertEqual(user["boundary"], boundary)
        self.assertEqual(user["tags"], {"keybroker:tenant": "t-1", "team": "infra"})

    def test_duplicate_user_is_entity_already_exists(self):
        self.iam("create-user", "--user-name", "bob")
        err = self.assertAwsError("EntityAlreadyExists", "iam", "create-user",
                                  "--user-name", "bob")
        self.assertEqual(err.message, "User with name bob already exists.")
        # IAM user names are unique regardless of case.
        self.assertAwsError("EntityAlreadyExists", "iam", "create-user", "--user-name", "BOB")
        self.assertEqual(self.iam("get-user", "--user-name", "Bob")["User"]["UserName"], "bob")

    def test_invalid_user_names_are_validation_errors(self):
        err = self.assertAwsError("ValidationError", "iam", "create-user",
                                  "--user-name", "a" * 65)
        self.assertIn("at 'userName' failed to satisfy constraint: Member must have length "
                      "less than or equal to 64", err.message)
        err = self.assertAwsError("ValidationError", "iam", "create-user",
                                  "--user-name", "bad/name")
        self.assertIn("Member must satisfy regular expression pattern: [\\w+=,.@-]+",
                      err.message)
        self.assertAwsError("ValidationError", "iam", "create-user", "--user-name", "spa ce")
        self.assertEqual(self.iam("create-user", "--user-name", "a" * 64)["User"]["UserName"],
                         "a" * 64)
        self.assertEqual(self.iam("create-user", "--user-name", "x+=,.@-_9")["User"]
                         ["UserName"], "x+=,.@-_9")

    def test_invalid_paths(self):
        for path in ("svc", "/svc", "/a b/"):
            err = self.assertAwsError("ValidationError", "iam", "create-user",
                                      "--user-name", "u", "--path", path)
            self.assertIn("The specified value for path is invalid", err.message)
        self.assertAwsError("ValidationError", "iam", "create-user", "--user-name", "u",
                            "--path", "/" + "a" * 511 + "/")
        self.assertAwsError("NoSuchEntity", "iam", "get-user", "--user-name", "u")

    def test_missing_required_parameter_names_the_member(self):
        r = self.fa.signed("iam", "POST", body="Action=CreateUser&Version=2010-05-08",
                           headers=FORM)
        self.assertEqual(r.status, 400)
        err = ET.fromstring(r.body).find(NS + "Error")
        self.assertEqual(err.findtext(NS + "Code"), "ValidationError")
        self.assertEqual(err.findtext(NS + "Type"), "Sender")
        self.assertEqual(err.findtext(NS + "Message"),
                         "1 validation error detected: Value null at 'userName' failed to "
                         "satisfy constraint: Member must not be null")

    def test_unknown_action_is_invalid_action(self):
        r = self.fa.signed("iam", "POST", body="Action=Nope&Version=2010-05-08", headers=FORM)
        self.assertEqual(r.status, 400)
        self.assertEqual(r.xml_code(), "InvalidAction")
        self.assertIn(b"Could not find operation Nope for version 2010-05-08", r.body)
        self.assertIn(b'xmlns="https://iam.amazonaws.com/doc/2010-05-08/"', r.body)

    def test_raw_xml_response_shape(self):
        r = self.fa.signed("iam", "POST", headers=FORM,
                           body="Action=CreateUser&Version=2010-05-08&UserName=xml")
        self.assertEqual(r.status, 200, r.body)
        body = r.body.decode()
        self.assertTrue(body.startswith('<CreateUserResponse xmlns="https://iam.amazonaws.com/'
                                        'doc/2010-05-08/">'), body)
        self.assertRegex(body, r"<CreateUserResult>\s*<User>\s*<Path>/</Path>\s*"
                               r"<UserName>xml</UserName>")
        self.assertRegex(body, r"<CreateDate>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ</CreateDate>")
        m = re.search(r"<RequestId>([^<]+)</RequestId>", body)
        self.assertEqual(m.group(1), r.headers["x-amzn-requestid"])

    def test_permissions_boundary_must_be_a_known_policy(self):
        err = self.assertAwsError("NoSuchEntity", "iam", "create-user", "--user-name", "u",
                                  "--permissions-boundary",
                                  f"arn:aws:iam::{ACCOUNT}:policy/NotThere")
        self.assertIn("does not exist or is not attachable", err.message)
        self.assertAwsError("InvalidInput", "iam", "create-user", "--user-name", "u",
                            "--permissions-boundary", "not-an-arn-at-all-really")
        self.assertEqual(self.fa.state()["services"]["iam"]["users"], {})

    def test_list_users_paginates_with_marker(self):
        for name in ("c-user", "a-user", "b-user"):
            self.iam("create-user", "--user-name", name)
        out = self.iam("list-users", "--page-size", "1")
        self.assertEqual([u["UserName"] for u in out["Users"]], ["a-user", "b-user", "c-user"])
        pages = [c for c in self.fa.calls() if c["operation"] == "ListUsers"]
        self.assertEqual(len(pages), 3)
        r = self.fa.signed("iam", "POST", headers=FORM,
                           body="Action=ListUsers&Version=2010-05-08&MaxItems=2")
        self.assertIn(b"<IsTruncated>true</IsTruncated>", r.body)
        self.assertIn(b"<Marker>", r.body)


class TagTests(IamTestCase):
    def test_tag_list_untag(self):
        self.iam("create-user", "--user-name", "t")
        self.iam("tag-user", "--user-name", "t", "--tags", "Key=keybroker:tenant,Value=acme",
                 "Key=env,Value=prod")
        self.iam("tag-user", "--user-name", "t", "--tags", "Key=env,Value=dev")
        tags = self.iam("list-user-tags", "--user-name", "t")
        self.assertEqual(tags["Tags"], [{"Key": "keybroker:tenant", "Value": "acme"},
                                        {"Key": "env", "Value": "dev"}])
        self.iam("untag-user", "--user-name", "t", "--tag-keys", "env")
        self.assertEqual(self.iam("list-user-tags", "--user-name", "t")["Tags"],
                         [{"Key": "keybroker:tenant", "Value": "acme"}])
        self.assertAwsError("NoSuchEntity", "iam", "list-user-tags", "--user-name", "nobody")

    def test_bad_tags(self):
        self.iam("create-user", "--user-name", "t")
        err = self.assertAwsError("InvalidInput", "iam", "tag-user", "--user-name", "t",
                                  "--tags", "Key=aws:reserved,Value=x")
        self.assertIn("reserved", err.message)
        self.assertAwsError("InvalidInput", "iam", "tag-user", "--user-name", "t",
                            "--tags", "Key=Env,Value=a", "Key=env,Value=b")
        err = self.assertAwsError("ValidationError", "iam", "tag-user", "--user-name", "t",
                                  "--tags", "Key=bad!key,Value=x")
        self.assertIn("tags.1.member.key", err.message)
        self.assertAwsError("ValidationError", "iam", "tag-user", "--user-name", "t",
                            "--tags", "Key=" + "k" * 129 + ",Value=x")
        too_many = [f"Key=k{i},Value=v" for i in range(51)]
        self.assertAwsError("ValidationError", "iam", "tag-user", "--user-name", "t",
                            "--tags", *too_many)
        self.assertEqual(self.iam("list-user-tags", "--user-name", "t")["Tags"], [])


class UntagUserTests(IamTestCase):
    """UntagUser (Action=UntagUser, TagKeys.member.N) and TagUser, with IAM's semantics."""

    def query(self, body, creds=None):
        return self.fa.signed("iam", "POST", headers=FORM, creds=creds,
                              body="Version=2010-05-08&" + body)

    def tags(self, user):
        return self.iam("list-user-tags", "--user-name", user)["Tags"]

    def setUp(self):
        super().setUp()
        self.iam("create-user", "--user-name", "u", "--tags", "Key=owner,Value=kb",
                 "Key=Env,Value=prod", "Key=team,Value=x")

    def test_untag_removes_the_keys_keeps_the_order_and_ignores_absent_ones(self):
        r = self.query("Action=UntagUser&UserName=u&TagKeys.member.1=Env"
                       "&TagKeys.member.2=absent")
        self.assertEqual(r.status, 200, r.body)
        self.assertRegex(r.body.decode(), r'^<UntagUserResponse xmlns="https://iam.amazonaws.'
                                          r'com/doc/2010-05-08/">\s*<ResponseMetadata>\s*'
                                          r'<RequestId>[^<]+</RequestId>\s*</ResponseMetadata>'
                                          r'\s*</UntagUserResponse>\s*$')
        self.assertEqual(self.tags("u"), [{"Key": "owner", "Value": "kb"},
                                          {"Key": "team", "Value": "x"}])
        # Tag keys are case-insensitive in IAM.
        self.assertEqual(self.query("Action=UntagUser&UserName=u&TagKeys.member.1=OWNER")
                         .status, 200)
        self.assertEqual(self.tags("u"), [{"Key": "team", "Value": "x"}])
        # Removing what is not there, twice, is still a success.
        self.assertEqual(self.query("Action=UntagUser&UserName=u&TagKeys.member.1=owner")
                         .status, 200)
        self.iam("untag-user", "--user-name", "u", "--tag-keys", "team")
        self.assertEqual(self.tags("u"), [])
        self.assertNotIn("Tags", self.iam("get-user", "--user-name", "u")["User"])

    def test_untag_of_a_missing_user_is_no_such_entity(self):
        r = self.query("Action=UntagUser&UserName=nobody&TagKeys.member.1=owner")
        self.assertEqual((r.status, r.xml_code()), (404, "NoSuchEntity"))
        self.assertIn(b"The user with name nobody cannot be found.", r.body)
        r = self.query("Action=TagUser&UserName=nobody&Tags.member.1.Key=a"
                       "&Tags.member.1.Value=b")
        self.assertEqual((r.status, r.xml_code()), (404, "NoSuchEntity"))

    def test_untag_validation(self):
        r = self.query("Action=UntagUser&UserName=u")
        self.assertEqual((r.status, r.xml_code()), (400, "ValidationError"))
        self.assertIn(b"Value null at &apos;tagKeys&apos; failed to satisfy constraint: "
                      b"Member must not be null", r.body)
        r = self.query("Action=UntagUser&UserName=u&TagKeys.member.1=" + "k" * 129)
        self.assertEqual(r.xml_code(), "ValidationError")
        self.assertIn(b"tagKeys.1.member", r.body)
        self.assertIn(b"Member must have length less than or equal to 128", r.body)
        r = self.query("Action=UntagUser&UserName=u&TagKeys.member.1=owner"
                       "&TagKeys.member.2=bad%21key")
        self.assertEqual(r.xml_code(), "ValidationError")
        self.assertIn(b"tagKeys.2.member", r.body)
        self.assertIn(b"regular expression pattern", r.body)
        many = "&".join(f"TagKeys.member.{i}=k{i}" for i in range(1, 52))
        r = self.query("Action=UntagUser&UserName=u&" + many)
        self.assertEqual(r.xml_code(), "ValidationError")
        self.assertIn(b"Member must have length less than or equal to 50", r.body)
        r = self.query("Action=UntagUser&TagKeys.member.1=owner")
        self.assertEqual(r.xml_code(), "ValidationError")
        self.assertIn(b"userName", r.body)
        # Nothing was removed by the refused requests.
        self.assertEqual(len(self.tags("u")), 3)

    def test_tag_user_merges_and_enforces_the_limit(self):
        r = self.query("Action=TagUser&UserName=u&Tags.member.1.Key=Env&Tags.member.1.Value=dev"
                       "&Tags.member.2.Key=new&Tags.member.2.Value=")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.tags("u"), [{"Key": "owner", "Value": "kb"},
                                          {"Key": "Env", "Value": "dev"},
                                          {"Key": "team", "Value": "x"},
                                          {"Key": "new", "Value": ""}])
        many = "&".join(f"Tags.member.{i}.Key=k{i}&Tags.member.{i}.Value=v"
                        for i in range(1, 48))
        r = self.query("Action=TagUser&UserName=u&" + many)
        self.assertEqual((r.status, r.xml_code()), (409, "LimitExceeded"))
        self.assertEqual(len(self.tags("u")), 4)

    def test_untag_is_authorized_with_the_tag_keys(self):
        self.iam("create-user", "--user-name", "tagger")
        self.iam("put-user-policy", "--user-name", "tagger", "--policy-name", "p",
                 "--policy-document", doc([{
                     "Effect": "Allow", "Action": "iam:UntagUser",
                     "Resource": f"arn:aws:iam::{ACCOUNT}:user/u",
                     "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}}]))
        creds = self.key_for("tagger")
        r = self.query("Action=UntagUser&UserName=u&TagKeys.member.1=owner", creds=creds)
        self.assertEqual((r.status, r.xml_code()), (403, "AccessDenied"))
        self.assertIn(b"iam:UntagUser", r.body)
        r = self.query("Action=UntagUser&UserName=u&TagKeys.member.1=team", creds=creds)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual([t["Key"] for t in self.tags("u")], ["owner", "Env"])


class InlinePolicyTests(IamTestCase):
    def test_put_get_list_delete_round_trip(self):
        self.iam("create-user", "--user-name", "p")
        policy = doc([{"Effect": "Allow", "Action": "s3:GetObject",
                       "Resource": "arn:aws:s3:::bucket/keys/*"}])
        self.iam("put-user-policy", "--user-name", "p", "--policy-name", "read-keys",
                 "--policy-document", policy)
        got = self.iam("get-user-policy", "--user-name", "p", "--policy-name", "read-keys")
        self.assertEqual(got["UserName"], "p")
        self.assertEqual(got["PolicyName"], "read-keys")
        self.assertEqual(got["PolicyDocument"], json.loads(policy))
        # On the wire the document is URL-encoded, as IAM sends it.
        r = self.fa.signed("iam", "POST", headers=FORM, body="Action=GetUserPolicy&Version="
                           "2010-05-08&UserName=p&PolicyName=read-keys")
        self.assertIn(b"<PolicyDocument>%7B%22Version%22%3A", r.body)
        self.assertEqual(self.iam("list-user-policies", "--user-name", "p")["PolicyNames"],
                         ["read-keys"])
        self.iam("delete-user-policy", "--user-name", "p", "--policy-name", "read-keys")
        self.assertEqual(self.iam("list-user-policies", "--user-name", "p")["PolicyNames"], [])
        err = self.assertAwsError("NoSuchEntity", "iam", "get-user-policy", "--user-name", "p",
                                  "--policy-name", "read-keys")
        self.assertEqual(err.message, "The user policy with name read-keys cannot be found.")
        self.assertAwsError("NoSuchEntity", "iam", "put-user-policy", "--user-name", "ghost",
                            "--policy-name", "x", "--policy-document", policy)

    def test_malformed_policy_documents(self):
        self.iam("create-user", "--user-name", "p")
        cases = {
            "{not json": "Syntax errors in policy.",
            json.dumps({"Version": "2012-10-17"}): "Missing required field Statement",
            json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:*",
                                       "Resource": "*"}]}): "Version",
            doc([{"Effect": "Alow", "Action": "s3:*", "Resource": "*"}]):
                "Syntax errors in policy.",
            doc([{"Effect": "Allow", "Resource": "*"}]): "Policy statement must contain actions.",
            doc([{"Effect": "Allow", "Action": "s3:*"}]):
                "Policy statement must contain resources.",
            doc([{"Effect": "Allow", "Action": "s3:*", "Resource": "*",
                  "Principal": "*"}]): "Policy document should not specify a principal.",
            doc([{"Effect": "Allow", "Action": "GetObject", "Resource": "*"}]):
                "must be prefaced by a vendor",
        }
        for text, message in cases.items():
            with self.subTest(text=text):
                err = self.assertAwsError("MalformedPolicyDocument", "iam", "put-user-policy",
                                          "--user-name", "p", "--policy-name", "bad",
                                          "--policy-document", text)
                self.assertIn(message, err.message)
        self.assertAwsError("ValidationError", "iam", "put-user-policy", "--user-name", "p",
                            "--policy-name", "bad name", "--policy-document",
                            doc([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]))
        self.assertEqual(self.iam("list-user-policies", "--user-name", "p")["PolicyNames"], [])

    def test_aggregate_inline_size_limit_excludes_whitespace(self):
        self.iam("create-user", "--user-name", "big")

        def sized(n_resources):
            return doc([{"Effect": "Allow", "Action": "s3:GetObject",
                         "Resource": [f"arn:aws:s3:::b/{i:04d}" for i in range(n_resources)]}])
        first = sized(40)   # ~940 non-whitespace characters
        self.assertLess(len(first), 1100)
        self.iam("put-user-policy", "--user-name", "big", "--policy-name", "one",
                 "--policy-document", first)
        err = self.assertAwsError("LimitExceeded", "iam", "put-user-policy",
                                  "--user-name", "big", "--policy-name", "two",
                                  "--policy-document", sized(50))
        self.assertEqual(err.message, "Maximum policy size of 2048 bytes exceeded for user big")
        # Whitespace does not count: the same 40-resource document, pretty-printed past 2048
        # characters, still fits next to the first one.
        pretty = json.dumps(json.loads(sized(40)), indent=40)
        self.assertGreater(len(pretty), 2048)
        self.iam("put-user-policy", "--user-name", "big", "--policy-name", "two",
                 "--policy-document", pretty)
        # Replacing a policy counts only its new size.
        self.iam("put-user-policy", "--user-name", "big", "--policy-name", "one",
                 "--policy-document", sized(10))
        self.assertEqual(sorted(self.iam("list-user-policies", "--user-name", "big")
                                ["PolicyNames"]), ["one", "two"])


class ManagedPolicyTests(IamTestCase):
    def test_attach_list_detach(self):
        self.iam("create-user", "--user-name", "m")
        custom = f"arn:aws:iam::{ACCOUNT}:policy/team/KeybrokerRead"
        self.fa.control("POST", "/_fakeaws/managed-policies",
                        {"arn": custom, "document": ALLOW_ALL_IAM})
        admin = "arn:aws:iam::aws:policy/AdministratorAccess"
        self.iam("attach-user-policy", "--user-name", "m", "--policy-arn", admin)
        self.iam("attach-user-policy", "--user-name", "m", "--policy-arn", custom)
        self.iam("attach-user-policy", "--user-name", "m", "--policy-arn", custom)  # no-op
        attached = self.iam("list-attached-user-policies", "--user-name", "m")
        self.assertEqual(attached["AttachedPolicies"],
                         [{"PolicyName": "AdministratorAccess", "PolicyArn": admin},
                          {"PolicyName": "KeybrokerRead", "PolicyArn": custom}])
        only_team = self.iam("list-attached-user-policies", "--user-name", "m",
                             "--path-prefix", "/team/")
        self.assertEqual([p["PolicyArn"] for p in only_team["AttachedPolicies"]], [custom])
        self.iam("detach-user-policy", "--user-name", "m", "--policy-arn", admin)
        err = self.assertAwsError("NoSuchEntity", "iam", "detach-user-policy",
                                  "--user-name", "m", "--policy-arn", admin)
        self.assertIn("was not found", err.message)
        err = self.assertAwsError("NoSuchEntity", "iam", "attach-user-policy",
                                  "--user-name", "m", "--policy-arn",
                                  f"arn:aws:iam::{ACCOUNT}:policy/Missing")
        self.assertEqual(err.message, f"Policy arn:aws:iam::{ACCOUNT}:policy/Missing does not "
                                      f"exist or is not attachable.")
        self.assertEqual(self.fa.state()["services"]["iam"]["users"]["m"]["attached_policies"],
                         [custom])


class AccessKeyTests(IamTestCase):
    def test_two_keys_then_limit_exceeded(self):
        self.iam("create-user", "--user-name", "k")
        keys = [self.iam("create-access-key", "--user-name", "k")["AccessKey"]
                for _ in range(2)]
        for k in keys:
            self.assertRegex(k["AccessKeyId"], r"^AKIA[A-Z0-9]{16}$")
            self.assertEqual(len(k["SecretAccessKey"]), 40)
            self.assertEqual(k["Status"], "Active")
            self.assertEqual(k["UserName"], "k")
        self.assertNotEqual(keys[0]["AccessKeyId"], keys[1]["AccessKeyId"])
        err = self.assertAwsError("LimitExceeded", "iam", "create-access-key",
                                  "--user-name", "k")
        self.assertEqual(err.message, "Cannot exceed quota for AccessKeysPerUser: 2")
        state = self.fa.state()
        self.assertEqual(len(state["services"]["iam"]["users"]["k"]["access_keys"]), 2)
        self.assertNotIn(keys[0]["SecretAccessKey"], json.dumps(state))
        self.assertAwsError("NoSuchEntity", "iam", "create-access-key", "--user-name", "nope")

    def test_age_keys_moves_create_dates_back(self):
        self.iam("create-user", "--user-name", "k")
        key_id, _ = self.key_for("k")
        before = self.iam("list-access-keys", "--user-name", "k")["AccessKeyMetadata"][0]
        for bad in ({}, {"seconds": 0}, {"seconds": True}, {"seconds": "61"}, [61]):
            r = self.fa.raw("POST", "/_fakeaws/age-keys", {"Content-Type": "application/json"},
                            json.dumps(bad).encode())
            self.assertEqual(r.status, 400, bad)
        self.assertEqual(self.fa.control("POST", "/_fakeaws/age-keys", {"seconds": 3600}),
                         {"aged": 1})
        after = self.iam("list-access-keys", "--user-name", "k")["AccessKeyMetadata"][0]
        self.assertEqual(after["AccessKeyId"], key_id)
        moved = (datetime.datetime.fromisoformat(before["CreateDate"].replace("Z", "+00:00"))
                 - datetime.datetime.fromisoformat(after["CreateDate"].replace("Z", "+00:00")))
        self.assertAlmostEqual(moved.total_seconds(), 3600, delta=1)
        root = [k for k in self.fa.state()["access_keys"] if k["root"]]
        self.assertEqual([k["created"] for k in root], [0], "the root key is left alone")

    def test_list_update_delete(self):
        self.iam("create-user", "--user-name", "k")
        self.iam("create-user", "--user-name", "other")
        key_id, _ = self.key_for("k")
        listed = self.iam("list-access-keys", "--user-name", "k")["AccessKeyMetadata"]
        self.assertEqual([(m["UserName"], m["AccessKeyId"], m["Status"]) for m in listed],
                         [("k", key_id, "Active")])
        self.iam("update-access-key", "--user-name", "k", "--access-key-id", key_id,
                 "--status", "Inactive")
        self.assertEqual(self.iam("list-access-keys", "--user-name", "k")
                         ["AccessKeyMetadata"][0]["Status"], "Inactive")
        err = self.assertAwsError("ValidationError", "iam", "update-access-key",
                                  "--user-name", "k", "--access-key-id", key_id,
                                  "--status", "Paused")
        self.assertIn("enum value set", err.message)
        # The key belongs to k, not to other.
        self.assertAwsError("NoSuchEntity", "iam", "delete-access-key", "--user-name", "other",
                            "--access-key-id", key_id)
        self.iam("delete-access-key", "--user-name", "k", "--access-key-id", key_id)
        self.assertEqual(self.iam("list-access-keys", "--user-name", "k")["AccessKeyMetadata"],
                         [])
        err = self.assertAwsError("NoSuchEntity", "iam", "delete-access-key", "--user-name", "k",
                                  "--access-key-id", key_id)
        self.assertEqual(err.message, f"The Access Key with id {key_id} cannot be found.")
        self.assertNotIn(key_id, [k["id"] for k in self.fa.state()["access_keys"]])

    def test_get_access_key_last_used(self):
        self.iam("create-user", "--user-name", "k")
        creds = self.key_for("k")
        before = self.iam("get-access-key-last-used", "--access-key-id", creds[0])
        self.assertEqual(before["UserName"], "k")
        self.assertEqual(before["AccessKeyLastUsed"], {"ServiceName": "N/A", "Region": "N/A"})
        self.fa.aws("sts", "get-caller-identity", creds=creds)
        after = self.iam("get-access-key-last-used", "--access-key-id", creds[0])
        self.assertEqual(after["AccessKeyLastUsed"]["ServiceName"], "sts")
        self.assertEqual(after["AccessKeyLastUsed"]["Region"], "us-east-1")
        self.assertIn("LastUsedDate", after["AccessKeyLastUsed"])
        self.assertAwsError("AccessDenied", "iam", "get-access-key-last-used",
                            "--access-key-id", "AKIANOSUCHKEY0000000")

    def test_inactive_key_is_rejected_then_reactivated(self):
        self.iam("create-user", "--user-name", "k")
        creds = self.key_for("k")
        self.iam("update-access-key", "--user-name", "k", "--access-key-id", creds[0],
                 "--status", "Inactive")
        self.assertAwsError("InvalidClientTokenId", "sts", "get-caller-identity", creds=creds)
        self.iam("update-access-key", "--user-name", "k", "--access-key-id", creds[0],
                 "--status", "Active")
        self.assertEqual(self.fa.aws("sts", "get-caller-identity", creds=creds)["Arn"],
                         f"arn:aws:iam::{ACCOUNT}:user/k")


class DeleteUserTests(IamTestCase):
    def test_delete_conflicts_until_everything_is_gone(self):
        self.iam("create-user", "--user-name", "d")
        key_id, _ = self.key_for("d")
        self.iam("put-user-policy", "--user-name", "d", "--policy-name", "inline",
                 "--policy-document", json.dumps(ALLOW_ALL_IAM))
        self.iam("attach-user-policy", "--user-name", "d", "--policy-arn",
                 "arn:aws:iam::aws:policy/IAMReadOnlyAccess")
        err = self.assertAwsError("DeleteConflict", "iam", "delete-user", "--user-name", "d")
        self.assertEqual(err.message, "Cannot delete entity, must delete access keys first.")
        self.iam("delete-access-key", "--user-name", "d", "--access-key-id", key_id)
        err = self.assertAwsError("DeleteConflict", "iam", "delete-user", "--user-name", "d")
        self.assertEqual(err.message, "Cannot delete entity, must delete policies first.")
        self.iam("delete-user-policy", "--user-name", "d", "--policy-name", "inline")
        err = self.assertAwsError("DeleteConflict", "iam", "delete-user", "--user-name", "d")
        self.assertEqual(err.message, "Cannot delete entity, must detach all policies first.")
        self.iam("detach-user-policy", "--user-name", "d", "--policy-arn",
                 "arn:aws:iam::aws:policy/IAMReadOnlyAccess")
        self.iam("delete-user", "--user-name", "d")
        err = self.assertAwsError("NoSuchEntity", "iam", "get-user", "--user-name", "d")
        self.assertEqual(err.message, "The user with name d cannot be found.")
        self.assertAwsError("NoSuchEntity", "iam", "delete-user", "--user-name", "d")


class CallerTests(IamTestCase):
    def test_get_user_without_name_is_the_caller(self):
        self.iam("create-user", "--user-name", "me", "--path", "/apps/")
        self.iam("put-user-policy", "--user-name", "me", "--policy-name", "self",
                 "--policy-document",
                 doc([{"Effect": "Allow", "Action": "iam:GetUser",
                       "Resource": "arn:aws:iam::*:user/apps/${aws:username}"}]))
        creds = self.key_for("me")
        out = self.fa.aws("iam", "get-user", creds=creds)["User"]
        self.assertEqual(out["UserName"], "me")
        self.assertEqual(out["Arn"], f"arn:aws:iam::{ACCOUNT}:user/apps/me")
        root = self.iam("get-user")["User"]
        self.assertEqual(root["Arn"], f"arn:aws:iam::{ACCOUNT}:root")
        self.assertEqual(root["UserId"], ACCOUNT)
        self.assertNotIn("UserName", root)

    def test_acceptance_create_user_key_and_policy(self):
        self.iam("create-user", "--user-name", "kb-tenant-1")
        key = self.iam("create-access-key", "--user-name", "kb-tenant-1")["AccessKey"]
        self.iam("put-user-policy", "--user-name", "kb-tenant-1", "--policy-name", "tenant",
                 "--policy-document",
                 doc([{"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject"],
                       "Resource": "arn:aws:s3:::kb-bucket/tenant-1/*"}]))
        user = self.fa.state()["services"]["iam"]["users"]["kb-tenant-1"]
        self.assertEqual([k["id"] for k in user["access_keys"]], [key["AccessKeyId"]])
        self.assertEqual(user["inline_policies"]["tenant"]["Statement"][0]["Resource"],
                         "arn:aws:s3:::kb-bucket/tenant-1/*")
        ops = [c["operation"] for c in self.fa.calls() if c["service"] == "iam"]
        self.assertEqual(ops, ["CreateUser", "CreateAccessKey", "PutUserPolicy"])
        self.assertEqual(self.fa.calls()[0]["resource"], "kb-tenant-1")


if __name__ == "__main__":
    unittest.main()
