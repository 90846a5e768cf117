"""STS GetCallerIdentity for the root and for IAM users' keys."""

import json
import unittest

from harness import FakeAWSTestCase

ACCOUNT = "123456789012"
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


class CallerIdentityTests(FakeAWSTestCase):
    def test_root(self):
        out = self.fa.aws("sts", "get-caller-identity")
        self.assertEqual(out, {"UserId": ACCOUNT, "Account": ACCOUNT,
                               "Arn": f"arn:aws:iam::{ACCOUNT}:root"})

    def test_created_user_key(self):
        user = self.fa.aws("iam", "create-user", "--user-name", "svc",
                           "--path", "/kb/")["User"]
        key = self.fa.aws("iam", "create-access-key", "--user-name", "svc")["AccessKey"]
        out = self.fa.aws("sts", "get-caller-identity",
                          creds=(key["AccessKeyId"], key["SecretAccessKey"]))
        self.assertEqual(out["Arn"], f"arn:aws:iam::{ACCOUNT}:user/kb/svc")
        self.assertEqual(out["UserId"], user["UserId"])
        self.assertEqual(out["Account"], ACCOUNT)
        call = [c for c in self.fa.calls() if c["service"] == "sts"][-1]
        self.assertEqual(call["caller"], f"arn:aws:iam::{ACCOUNT}:user/kb/svc")
        self.assertEqual(call["key_id"], key["AccessKeyId"])

    def test_needs_no_permission_even_with_explicit_deny(self):
        self.fa.aws("iam", "create-user", "--user-name", "denied")
        self.fa.aws("iam", "put-user-policy", "--user-name", "denied", "--policy-name", "deny",
                    "--policy-document", json.dumps({
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}))
        key = self.fa.aws("iam", "create-access-key", "--user-name", "denied")["AccessKey"]
        creds = (key["AccessKeyId"], key["SecretAccessKey"])
        out = self.fa.aws("sts", "get-caller-identity", creds=creds)
        self.assertEqual(out["Arn"], f"arn:aws:iam::{ACCOUNT}:user/denied")
        # ... while everything else is refused.
        self.assertAwsError("AccessDenied", "iam", "get-user", creds=creds)

    def test_unknown_action_and_raw_shape(self):
        r = self.fa.signed("sts", "POST", body="Action=Nope&Version=2011-06-15", headers=FORM)
        self.assertEqual(r.status, 400)
        self.assertEqual(r.xml_code(), "InvalidAction")
        self.assertIn(b"Could not find operation Nope for version 2011-06-15", r.body)
        self.assertIn(b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">',
                      r.body)
        ok = self.fa.signed("sts", "POST", body="Action=GetCallerIdentity&Version=2011-06-15",
                            headers=FORM)
        self.assertEqual(ok.status, 200)
        self.assertIn(b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/'
                      b'2011-06-15/">', ok.body)
        self.assertIn(b"<GetCallerIdentityResult>", ok.body)
        self.assertIn(f"<Account>{ACCOUNT}</Account>".encode(), ok.body)


if __name__ == "__main__":
    unittest.main()
