"""IAM policy evaluation: the pure evaluator (policy.evaluate) and its use by the server for
requests signed by IAM users."""

import json
import os
import unittest

from fakeaws import policy
from fakeaws.core import Authz
from harness import FakeAWSTestCase

ACCOUNT = "123456789012"
USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/alice"
CTX = {"aws:PrincipalArn": USER_ARN, "aws:username": "alice", "aws:userid": "AIDAALICE",
       "aws:PrincipalAccount": ACCOUNT, "aws:SecureTransport": "true"}


def pol(*statements, version="2012-10-17"):
    return {"Version": version, "Statement": list(statements)}


def allow(action, resource="*", **extra):
    return dict({"Effect": "Allow", "Action": action, "Resource": resource}, **extra)


def deny(action, resource="*", **extra):
    return dict({"Effect": "Deny", "Action": action, "Resource": resource}, **extra)


def ev(policies, action, resource, **ctx):
    return policy.evaluate(policies, Authz(action, resource), dict(CTX, **ctx))


class EvaluateTests(unittest.TestCase):
    def test_allow_and_implicit_deny(self):
        p = [pol(allow("s3:GetObject", "arn:aws:s3:::b/*"))]
        d = ev(p, "s3:GetObject", "arn:aws:s3:::b/k")
        self.assertTrue(d.allowed)
        d = ev(p, "s3:PutObject", "arn:aws:s3:::b/k")
        self.assertEqual((d.kind, d.source), ("implicit_deny", "identity"))
        self.assertFalse(ev([], "s3:GetObject", "arn:aws:s3:::b/k"))
        # A statement given as an object, not a list.
        single = {"Version": "2012-10-17", "Statement": allow("s3:GetObject")}
        self.assertTrue(ev([single], "s3:GetObject", "arn:aws:s3:::x/y"))

    def test_explicit_deny_wins(self):
        p = [pol(allow("s3:*")), pol(deny("s3:DeleteObject", "arn:aws:s3:::b/locked/*"))]
        self.assertTrue(ev(p, "s3:DeleteObject", "arn:aws:s3:::b/open/k"))
        d = ev(p, "s3:DeleteObject", "arn:aws:s3:::b/locked/k")
        self.assertEqual((d.kind, d.source), ("explicit_deny", "identity"))
        # A Deny in the boundary wins over an identity Allow too.
        d = ev({"identity": [pol(allow("*"))], "boundary": pol(allow("*"), deny("iam:*"))},
               "iam:GetUser", USER_ARN)
        self.assertEqual((d.kind, d.source), ("explicit_deny", "boundary"))

    def test_not_action_and_not_resource(self):
        p = [pol({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})]
        self.assertTrue(ev(p, "s3:GetObject", "arn:aws:s3:::b/k"))
        self.assertFalse(ev(p, "iam:CreateUser", USER_ARN))
        p = [pol(allow("s3:*"),
                 {"Effect": "Deny", "Action": "s3:*", "NotResource": ["arn:aws:s3:::mine",
                                                                       "arn:aws:s3:::mine/*"]})]
        self.assertTrue(ev(p, "s3:GetObject", "arn:aws:s3:::mine/k"))
        self.assertEqual(ev(p, "s3:GetObject", "arn:aws:s3:::other/k").kind, "explicit_deny")

    def test_wildcards(self):
        p = [pol(allow("S3:get*", "arn:aws:s3:::bucket-??/data/*"))]
        self.assertTrue(ev(p, "s3:GetObject", "arn:aws:s3:::bucket-01/data/x/y"))
        self.assertTrue(ev(p, "s3:GETOBJECTVERSION", "arn:aws:s3:::bucket-ab/data/"))
        self.assertFalse(ev(p, "s3:PutObject", "arn:aws:s3:::bucket-01/data/x"))
        self.assertFalse(ev(p, "s3:GetObject", "arn:aws:s3:::bucket-001/data/x"))
        # Resources match case-sensitively.
        self.assertFalse(ev(p, "s3:GetObject", "arn:aws:s3:::BUCKET-01/data/x"))
        self.assertTrue(ev([pol(allow("*"))], "secretsmanager:GetSecretValue", "x"))

    def test_string_like_on_s3_prefix_and_if_exists(self):
        p = [pol(allow("s3:ListBucket", "arn:aws:s3:::b",
                       Condition={"StringLike": {"s3:prefix": ["tenant-1/*", ""]}}))]
        self.assertTrue(ev(p, "s3:ListBucket", "arn:aws:s3:::b", **{"s3:prefix": "tenant-1/a"}))
        self.assertTrue(ev(p, "s3:ListBucket", "arn:aws:s3:::b", **{"s3:prefix": ""}))
        self.assertFalse(ev(p, "s3:ListBucket", "arn:aws:s3:::b", **{"s3:prefix": "tenant-2/"}))
        # The key absent: StringLike fails, StringLikeIfExists holds.
        self.assertFalse(ev(p, "s3:ListBucket", "arn:aws:s3:::b"))
        p2 = [pol(allow("s3:ListBucket", "arn:aws:s3:::b",
                        Condition={"StringLikeIfExists": {"s3:prefix": "tenant-1/*"}}))]
        self.assertTrue(ev(p2, "s3:ListBucket", "arn:aws:s3:::b"))
        self.assertFalse(ev(p2, "s3:ListBucket", "arn:aws:s3:::b", **{"s3:prefix": "x/"}))
        # Negated operators hold when the key is absent.
        p3 = [pol(allow("s3:ListBucket", "*",
                        Condition={"StringNotEquals": {"s3:prefix": "secret/"}}))]
        self.assertTrue(ev(p3, "s3:ListBucket", "arn:aws:s3:::b"))
        self.assertFalse(ev(p3, "s3:ListBucket", "arn:aws:s3:::b", **{"s3:prefix": "secret/"}))

    def test_bool_secure_transport_and_null(self):
        p = [pol(allow("s3:*"), deny("s3:*", Condition={"Bool": {"aws:SecureTransport":
                                                                   "false"}}))]
        self.assertTrue(ev(p, "s3:GetObject", "arn:aws:s3:::b/k", **{"aws:SecureTransport":
                                                                      "true"}))
        d = ev(p, "s3:GetObject", "arn:aws:s3:::b/k", **{"aws:SecureTransport": False})
        self.assertEqual(d.kind, "explicit_deny")
        p = [pol(allow("s3:PutObject", Condition={"Null": {"s3:x-amz-server-side-encryption":
                                                            "false"}}))]
        self.assertFalse(ev(p, "s3:PutObject", "arn:aws:s3:::b/k"))
        self.assertTrue(ev(p, "s3:PutObject", "arn:aws:s3:::b/k",
                           **{"s3:x-amz-server-side-encryption": "AES256"}))

    def test_set_qualifiers_numeric_arn_and_ignore_case(self):
        p = [pol(allow("iam:TagUser", Condition={"ForAllValues:StringEquals":
                                                 {"aws:TagKeys": ["team", "env"]}}))]
        self.assertTrue(ev(p, "iam:TagUser", USER_ARN, **{"aws:TagKeys": ["env"]}))
        self.assertFalse(ev(p, "iam:TagUser", USER_ARN, **{"aws:TagKeys": ["env", "owner"]}))
        p = [pol(allow("iam:TagUser", Condition={"ForAnyValue:StringLike":
                                                 {"aws:TagKeys": "keybroker:*"}}))]
        self.assertTrue(ev(p, "iam:TagUser", USER_ARN, **{"aws:TagKeys": ["a", "keybroker:t"]}))
        self.assertFalse(ev(p, "iam:TagUser", USER_ARN, **{"aws:TagKeys": ["a"]}))
        self.assertFalse(ev(p, "iam:TagUser", USER_ARN))
        p = [pol(allow("s3:ListBucket", Condition={"NumericLessThanEquals": {"s3:max-keys":
                                                                              "100"}}))]
        self.assertTrue(ev(p, "s3:ListBucket", "arn:aws:s3:::b", **{"s3:max-keys": "10"}))
        self.assertFalse(ev(p, "s3:ListBucket", "arn:aws:s3:::b", **{"s3:max-keys": "1000"}))
        p = [pol(allow("iam:AttachUserPolicy", Condition={
            "ArnLike": {"iam:PolicyARN": "arn:aws:iam::*:policy/kb-*"},
            "StringEqualsIgnoreCase": {"aws:username": "ALICE"}}))]
        self.assertTrue(ev(p, "iam:AttachUserPolicy", USER_ARN,
                           **{"iam:PolicyARN": f"arn:aws:iam::{ACCOUNT}:policy/kb-read"}))
        self.assertFalse(ev(p, "iam:AttachUserPolicy", USER_ARN,
                            **{"iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"}))

    def test_policy_variables(self):
        p = [pol(allow("iam:*AccessKey*", "arn:aws:iam::*:user/${aws:username}"))]
        self.assertTrue(ev(p, "iam:CreateAccessKey", USER_ARN))
        self.assertFalse(ev(p, "iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/bob"))
        # 2008-10-17 documents take ${...} literally.
        old = [pol(allow("iam:*", "arn:aws:iam::*:user/${aws:username}"), version="2008-10-17")]
        self.assertFalse(ev(old, "iam:GetUser", USER_ARN))

    def test_permissions_boundary(self):
        policies = {"identity": [pol(allow("iam:*"), allow("s3:*"))],
                    "boundary": pol(allow("s3:*"))}
        self.assertTrue(ev(policies, "s3:GetObject", "arn:aws:s3:::b/k"))
        d = ev(policies, "iam:GetUser", USER_ARN)
        self.assertEqual((d.kind, d.source), ("implicit_deny", "boundary"))
        # The boundary grants nothing by itself.
        d = ev({"identity": [], "boundary": pol(allow("*"))}, "s3:GetObject", "arn:aws:s3:::b/k")
        self.assertEqual((d.kind, d.source), ("implicit_deny", "identity"))

    def test_resource_policy_principals(self):
        res = "arn:aws:s3:::b/k"

        def bucket(principal, effect="Allow"):
            return pol({"Effect": effect, "Principal": principal, "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::b/*"})
        # Naming the user directly grants access, even past a boundary that does not allow it.
        d = ev({"identity": [], "resource": [bucket({"AWS": USER_ARN})],
                "boundary": pol(allow("iam:*"))}, "s3:GetObject", res)
        self.assertEqual((d.kind, d.source), ("allow", "resource"))
        # Naming the account only delegates: the identity policies must allow.
        acct = bucket({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})
        self.assertFalse(ev({"identity": [], "resource": [acct]}, "s3:GetObject", res))
        self.assertTrue(ev({"identity": [pol(allow("s3:GetObject"))], "resource": [acct]},
                           "s3:GetObject", res))
        # "*" allows, within the boundary.
        self.assertTrue(ev({"identity": [], "resource": [bucket("*")]}, "s3:GetObject", res))
        self.assertFalse(ev({"identity": [], "resource": [bucket({"AWS": "*"})],
                             "boundary": pol(allow("iam:*"))}, "s3:GetObject", res))
        # Another principal: nothing; a Deny naming the account applies to its users.
        other = bucket({"AWS": [f"arn:aws:iam::{ACCOUNT}:user/bob"]})
        self.assertFalse(ev({"identity": [], "resource": [other]}, "s3:GetObject", res))
        d = ev({"identity": [pol(allow("s3:*"))], "resource": [bucket({"AWS": ACCOUNT}, "Deny")]},
               "s3:GetObject", res)
        self.assertEqual((d.kind, d.source), ("explicit_deny", "resource"))

    def test_parse_policy_grammar(self):
        ok = policy.parse_policy(json.dumps(pol(allow("s3:GetObject", "arn:aws:s3:::b/*"))))
        self.assertEqual(ok["Version"], "2012-10-17")
        bad = {
            "[]": "Syntax errors in policy.",
            json.dumps(pol(allow("s3:*", "bucket"))): 'must be in ARN format or "*"',
            json.dumps(pol(allow("s3:*", Sid="a-b"))): "alpha-numeric",
            json.dumps(pol(allow("s3:*", Sid="A"), allow("s3:*", Sid="A"))): "must be unique",
            json.dumps(pol(allow("s3:*", Condition={"StringFoo": {"a:b": "c"}}))):
                "Invalid Condition type",
            json.dumps({"Version": "2001-01-01", "Statement": [allow("s3:*")]}):
                "The policy failed legacy parsing",
        }
        for text, message in bad.items():
            with self.subTest(text=text):
                with self.assertRaises(policy.PolicySyntaxError) as cm:
                    policy.parse_policy(text)
                self.assertIn(message, str(cm.exception))
        with self.assertRaises(policy.PolicySyntaxError):
            policy.parse_policy(json.dumps(pol(allow("s3:*"))), kind="resource")


class EnforcementTests(FakeAWSTestCase):
    def user(self, name, statements, boundary=None):
        args = ["iam", "create-user", "--user-name", name]
        if boundary:
            args += ["--permissions-boundary", boundary]
        self.fa.aws(*args)
        self.fa.aws("iam", "put-user-policy", "--user-name", name, "--policy-name", "p",
                    "--policy-document", json.dumps(pol(*statements)))
        k = self.fa.aws("iam", "create-access-key", "--user-name", name)["AccessKey"]
        return k["AccessKeyId"], k["SecretAccessKey"]

    def test_get_user_allowed_on_self_only(self):
        self.fa.aws("iam", "create-user", "--user-name", "bob")
        creds = self.user("alice", [allow("iam:GetUser", USER_ARN)])
        me = self.fa.aws("iam", "get-user", "--user-name", "alice", creds=creds)["User"]
        self.assertEqual(me["Arn"], USER_ARN)
        err = self.assertAwsError("AccessDenied", "iam", "get-user", "--user-name", "bob",
                                  creds=creds)
        self.assertEqual(err.message, f"User: {USER_ARN} is not authorized to perform: "
                         f"iam:GetUser on resource: arn:aws:iam::{ACCOUNT}:user/bob because no "
                         f"identity-based policy allows the iam:GetUser action")
        # Authorization comes before existence: no hint whether the user exists.
        self.assertAwsError("AccessDenied", "iam", "get-user", "--user-name", "ghost",
                            creds=creds)
        denied = [c for c in self.fa.calls() if c["error"] == "AccessDenied"]
        self.assertEqual([c["resource"] for c in denied], ["bob", "ghost"])

    def test_boundary_denies_what_the_inline_policy_allows(self):
        creds = self.user("alice", [allow("iam:*")],
                          boundary="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
        err = self.assertAwsError("AccessDenied", "iam", "list-users", creds=creds)
        self.assertIn("because no permissions boundary allows the iam:ListUsers action",
                      err.message)
        # With an IAM boundary the same inline policy works.
        self.fa.aws("iam", "put-user-permissions-boundary", "--user-name", "alice",
                    "--permissions-boundary", "arn:aws:iam::aws:policy/IAMReadOnlyAccess")
        users = self.fa.aws("iam", "list-users", creds=creds)["Users"]
        self.assertEqual([u["UserName"] for u in users], ["alice"])
        # ... but only for what the boundary allows.
        self.assertAwsError("AccessDenied", "iam", "create-user", "--user-name", "x",
                            creds=creds)

    def test_explicit_deny_and_validation_order(self):
        creds = self.user("alice", [allow("iam:*"), deny("iam:CreateUser")])
        err = self.assertAwsError("AccessDenied", "iam", "create-user", "--user-name", "x",
                                  creds=creds)
        self.assertTrue(err.message.endswith("with an explicit deny in an identity-based "
                                             "policy"), err.message)
        # Parameter validation happens before authorization, as in IAM.
        self.assertAwsError("ValidationError", "iam", "create-user", "--user-name", "a" * 65,
                            creds=creds)
        self.assertAwsError("NoSuchEntity", "iam", "get-user", "--user-name", "x", creds=creds)

    def test_secure_transport_condition_follows_server_config(self):
        creds = self.user("alice", [allow("iam:GetUser", Condition={
            "Bool": {"aws:SecureTransport": "true"}})])
        self.assertEqual(self.fa.aws("iam", "get-user", creds=creds)["User"]["UserName"],
                         "alice")
        self.fa.control("POST", "/_fakeaws/config", {"plain_http_is_secure": False})
        self.assertAwsError("AccessDenied", "iam", "get-user", creds=creds)

    def test_bucket_policy_naming_the_user(self):
        body = os.path.join(self.fa.tmp, "body")
        with open(body, "w") as f:
            f.write("s3cr3t")
        self.fa.aws("s3api", "create-bucket", "--bucket", "kb-policy-bucket")
        self.fa.aws("s3api", "put-object", "--bucket", "kb-policy-bucket", "--key", "t1/k",
                    "--body", body)
        # No identity policy at all, and a boundary that allows only IAM.
        creds = self.user("alice", [allow("iam:GetUser", USER_ARN)],
                          boundary="arn:aws:iam::aws:policy/IAMReadOnlyAccess")
        self.assertAwsError("AccessDenied", "s3api", "get-object", "--bucket",
                            "kb-policy-bucket", "--key", "t1/k",
                            os.path.join(self.fa.tmp, "out"), creds=creds)
        self.fa.aws("s3api", "put-bucket-policy", "--bucket", "kb-policy-bucket", "--policy",
                    json.dumps(pol(
                        {"Effect": "Allow", "Principal": {"AWS": USER_ARN},
                         "Action": "s3:GetObject",
                         "Resource": "arn:aws:s3:::kb-policy-bucket/t1/*"},
                        {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                         "Resource": "arn:aws:s3:::kb-policy-bucket/t1/*",
                         "Condition": {"Bool": {"aws:SecureTransport": "false"}}})))
        # The bucket policy names the user: allowed despite the boundary.
        out = self.fa.aws("s3api", "head-object", "--bucket", "kb-policy-bucket",
                          "--key", "t1/k", creds=creds)
        self.assertEqual(out["ContentLength"], 6)
        self.assertAwsError("AccessDenied", "s3api", "put-object", "--bucket",
                            "kb-policy-bucket", "--key", "t1/k2", "--body", body, creds=creds)
        # Plain HTTP no longer counts as TLS: the Deny applies.
        self.fa.control("POST", "/_fakeaws/config", {"plain_http_is_secure": False})
        err = self.assertAwsError("AccessDenied", "s3api", "get-object", "--bucket",
                                  "kb-policy-bucket", "--key", "t1/k",
                                  os.path.join(self.fa.tmp, "out"), creds=creds)
        self.assertEqual(err.message, "Access Denied")

    def test_attached_managed_policy_grants(self):
        self.fa.aws("iam", "create-user", "--user-name", "alice")
        k = self.fa.aws("iam", "create-access-key", "--user-name", "alice")["AccessKey"]
        creds = (k["AccessKeyId"], k["SecretAccessKey"])
        self.assertAwsError("AccessDenied", "iam", "list-users", creds=creds)
        self.fa.aws("iam", "attach-user-policy", "--user-name", "alice", "--policy-arn",
                    "arn:aws:iam::aws:policy/IAMReadOnlyAccess")
        self.assertEqual(len(self.fa.aws("iam", "list-users", creds=creds)["Users"]), 1)
        self.assertAwsError("AccessDenied", "iam", "delete-access-key", "--access-key-id",
                            k["AccessKeyId"], creds=creds)


if __name__ == "__main__":
    unittest.main()
