"""Secrets Manager through awscli: secrets, versions and staging labels, idempotency by
ClientRequestToken, scheduled deletion, tags, listing, and the control endpoint's state dump
(which never shows a secret value)."""

import base64
import hashlib
import json
import os
import re
import tempfile
import time
import unittest

from harness import FakeAWSTestCase

ACCOUNT = "123456789012"
ARN_RE = r"^arn:aws:secretsmanager:us-east-1:123456789012:secret:%s-[A-Za-z0-9]{6}$"
JSON_HEADERS = {"Content-Type": "application/x-amz-json-1.1"}
TOKEN_A = "a" * 8 + "-1111-2222-3333-" + "b" * 12   # 36 characters, like a UUID
TOKEN_B = "c" * 8 + "-4444-5555-6666-" + "d" * 12


class SecretsManagerTests(FakeAWSTestCase):
    def sm(self, *args):
        return self.fa.aws("secretsmanager", *args)

    def create(self, name, value="v1", *extra):
        return self.sm("create-secret", "--name", name, "--secret-string", value, *extra)

    def value(self, name, *extra):
        return self.sm("get-secret-value", "--secret-id", name, *extra)

    def stages(self, name):
        return self.sm("describe-secret", "--secret-id", name).get("VersionIdsToStages", {})

    # -- create / describe ----------------------------------------------------------------

    def test_create_secret_fields_arn_and_version_one(self):
        out = self.create("prod/db-creds", "s3cr3t", "--description", "database",
                          "--tags", "Key=team,Value=infra")
        self.assertRegex(out["ARN"], ARN_RE % re.escape("prod/db-creds"))
        self.assertEqual(out["Name"], "prod/db-creds")
        vid = out["VersionId"]
        self.assertGreaterEqual(len(vid), 32)
        d = self.sm("describe-secret", "--secret-id", "prod/db-creds")
        self.assertEqual(d["ARN"], out["ARN"])
        self.assertEqual(d["Name"], "prod/db-creds")
        self.assertEqual(d["Description"], "database")
        self.assertEqual(d["VersionIdsToStages"], {vid: ["AWSCURRENT"]})
        self.assertEqual(d["Tags"], [{"Key": "team", "Value": "infra"}])
        self.assertIs(d["RotationEnabled"], False)
        self.assertIn("CreatedDate", d)
        self.assertIn("LastChangedDate", d)
        self.assertNotIn("KmsKeyId", d)       # the AWS managed key is shown as absent
        self.assertNotIn("DeletedDate", d)
        # describe by full ARN and by partial ARN (without the random suffix)
        self.assertEqual(self.sm("describe-secret", "--secret-id", out["ARN"])["Name"],
                         "prod/db-creds")
        partial = out["ARN"][:-7]
        self.assertEqual(self.sm("describe-secret", "--secret-id", partial)["ARN"], out["ARN"])
        err = self.assertAwsError("ResourceExistsException", "secretsmanager", "create-secret",
                                  "--name", "prod/db-creds", "--secret-string", "other")
        self.assertIn("prod/db-creds already exists", err.message)

    def test_create_secret_validation(self):
        err = self.assertAwsError("ValidationException", "secretsmanager", "create-secret",
                                  "--name", "bad name!", "--secret-string", "x")
        self.assertIn("Invalid name", err.message)
        self.assertAwsError("InvalidParameterException", "secretsmanager", "create-secret",
                            "--name", "both", "--secret-string", "x",
                            "--secret-binary", base64.b64encode(b"y").decode())
        self.assertAwsError("ResourceNotFoundException", "secretsmanager", "describe-secret",
                            "--secret-id", "never-created")

    def test_create_without_value_then_first_put_gets_awscurrent(self):
        out = self.sm("create-secret", "--name", "empty", "--kms-key-id", "alias/custom")
        self.assertNotIn("VersionId", out)
        d = self.sm("describe-secret", "--secret-id", "empty")
        self.assertNotIn("VersionIdsToStages", d)
        self.assertEqual(d["KmsKeyId"], "alias/custom")
        err = self.assertAwsError("ResourceNotFoundException", "secretsmanager",
                                  "get-secret-value", "--secret-id", "empty")
        self.assertIn("staging label: AWSCURRENT", err.message)
        put = self.sm("put-secret-value", "--secret-id", "empty", "--secret-string", "first",
                      "--version-stages", "AWSPENDING")
        self.assertEqual(sorted(put["VersionStages"]), ["AWSCURRENT", "AWSPENDING"])
        self.assertEqual(self.value("empty")["SecretString"], "first")

    # -- values, versions and staging labels ----------------------------------------------

    def test_get_secret_value_by_stage_and_version_id(self):
        text = 'p@ss "quoted" \u00e9\u6f22 {json}'
        vid = self.create("app/key", text)["VersionId"]
        out = self.value("app/key")
        self.assertEqual(out["SecretString"], text)
        self.assertEqual(out["VersionId"], vid)
        self.assertEqual(out["VersionStages"], ["AWSCURRENT"])
        self.assertEqual(out["Name"], "app/key")
        self.assertIn("CreatedDate", out)
        self.assertEqual(self.value("app/key", "--version-id", vid)["SecretString"], text)
        self.assertEqual(self.value("app/key", "--version-stage", "AWSCURRENT")["VersionId"],
                         vid)
        err = self.assertAwsError("ResourceNotFoundException", "secretsmanager",
                                  "get-secret-value", "--secret-id", "app/key",
                                  "--version-stage", "AWSPREVIOUS")
        self.assertIn("staging label: AWSPREVIOUS", err.message)
        self.assertAwsError("ResourceNotFoundException", "secretsmanager", "get-secret-value",
                            "--secret-id", "app/key", "--version-id", TOKEN_A)

    def test_binary_secret_round_trip(self):
        data = bytes(range(256))
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(data)
        self.addCleanup(os.unlink, f.name)
        self.sm("create-secret", "--name", "bin", "--secret-binary", "fileb://" + f.name)
        out = self.value("bin")
        self.assertNotIn("SecretString", out)
        self.assertEqual(base64.b64decode(out["SecretBinary"]), data)

    def test_acceptance_rotation_round_trip(self):
        """CreateSecret, PutSecretValue(AWSPENDING), UpdateSecretVersionStage moving
        AWSCURRENT, then GetSecretValue(AWSPREVIOUS) returns the old value."""
        v1 = self.create("rot", "old-value")["VersionId"]
        put = self.sm("put-secret-value", "--secret-id", "rot", "--secret-string", "new-value",
                      "--version-stages", "AWSPENDING")
        v2 = put["VersionId"]
        self.assertNotEqual(v1, v2)
        self.assertEqual(put["VersionStages"], ["AWSPENDING"])
        self.assertEqual(self.value("rot")["SecretString"], "old-value")
        self.assertEqual(self.value("rot", "--version-stage", "AWSPENDING")["SecretString"],
                         "new-value")
        out = self.sm("update-secret-version-stage", "--secret-id", "rot", "--version-stage",
                      "AWSCURRENT", "--move-to-version-id", v2, "--remove-from-version-id", v1)
        self.assertEqual(out["Name"], "rot")
        self.assertRegex(out["ARN"], ARN_RE % "rot")
        st = self.stages("rot")
        self.assertEqual(st[v1], ["AWSPREVIOUS"])
        self.assertEqual(sorted(st[v2]), ["AWSCURRENT", "AWSPENDING"])
        prev = self.value("rot", "--version-stage", "AWSPREVIOUS")
        self.assertEqual(prev["SecretString"], "old-value")
        self.assertEqual(prev["VersionId"], v1)
        self.assertEqual(self.value("rot")["SecretString"], "new-value")

    def test_update_version_stage_rules(self):
        v1 = self.create("lbl", "one")["VersionId"]
        v2 = self.sm("put-secret-value", "--secret-id", "lbl", "--secret-string", "two",
                     "--version-stages", "AWSPENDING")["VersionId"]
        err = self.assertAwsError("InvalidParameterException", "secretsmanager",
                                  "update-secret-version-stage", "--secret-id", "lbl",
                                  "--version-stage", "AWSCURRENT", "--move-to-version-id", v2)
        self.assertIn("RemoveFromVersionId can't be empty", err.message)
        self.assertIn(v1, err.message)
        # removing AWSCURRENT without moving it is refused
        self.assertAwsError("InvalidParameterException", "secretsmanager",
                            "update-secret-version-stage", "--secret-id", "lbl",
                            "--version-stage", "AWSCURRENT", "--remove-from-version-id", v1)
        # an unknown version
        self.assertAwsError("ResourceNotFoundException", "secretsmanager",
                            "update-secret-version-stage", "--secret-id", "lbl",
                            "--version-stage", "AWSPENDING", "--move-to-version-id", TOKEN_B,
                            "--remove-from-version-id", v2)
        # RemoveFromVersionId alone removes a label: the version becomes deprecated
        self.sm("update-secret-version-stage", "--secret-id", "lbl", "--version-stage",
                "AWSPENDING", "--remove-from-version-id", v2)
        self.assertEqual(self.stages("lbl"), {v1: ["AWSCURRENT"]})
        listed = self.sm("list-secret-version-ids", "--secret-id", "lbl")["Versions"]
        self.assertEqual([v["VersionId"] for v in listed], [v1])
        listed = self.sm("list-secret-version-ids", "--secret-id", "lbl",
                         "--include-deprecated")["Versions"]
        by_id = {v["VersionId"]: v for v in listed}
        self.assertEqual(set(by_id), {v1, v2})
        self.assertNotIn("VersionStages", by_id[v2])

    def test_put_secret_value_moves_awscurrent_and_awsprevious(self):
        v1 = self.create("chain", "a")["VersionId"]
        v2 = self.sm("put-secret-value", "--secret-id", "chain",
                     "--secret-string", "b")["VersionId"]
        self.assertEqual(self.stages("chain"), {v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"]})
        v3 = self.sm("put-secret-value", "--secret-id", "chain",
                     "--secret-string", "c")["VersionId"]
        # AWSPREVIOUS left v1, which now has no label and is deprecated
        self.assertEqual(self.stages("chain"), {v2: ["AWSPREVIOUS"], v3: ["AWSCURRENT"]})
        out = self.sm("list-secret-version-ids", "--secret-id", "chain")
        self.assertEqual(out["Name"], "chain")
        self.assertEqual({v["VersionId"]: v["VersionStages"] for v in out["Versions"]},
                         {v2: ["AWSPREVIOUS"], v3: ["AWSCURRENT"]})
        for v in out["Versions"]:
            self.assertIn("CreatedDate", v)
        self.assertEqual(self.value("chain", "--version-id", v1)["SecretString"], "a")

    def test_client_request_token_idempotency(self):
        self.create("idem", "zero")
        first = self.sm("put-secret-value", "--secret-id", "idem", "--secret-string", "one",
                        "--client-request-token", TOKEN_A)
        self.assertEqual(first["VersionId"], TOKEN_A)
        count = len(self.sm("list-secret-version-ids", "--secret-id", "idem",
                            "--include-deprecated")["Versions"])
        again = self.sm("put-secret-value", "--secret-id", "idem", "--secret-string", "one",
                        "--client-request-token", TOKEN_A)
        self.assertEqual(again["VersionId"], TOKEN_A)
        self.assertEqual(len(self.sm("list-secret-version-ids", "--secret-id", "idem",
                                     "--include-deprecated")["Versions"]), count)
        err = self.assertAwsError("ResourceExistsException", "secretsmanager",
                                  "put-secret-value", "--secret-id", "idem",
                                  "--secret-string", "different",
                                  "--client-request-token", TOKEN_A)
        self.assertIn("existing version", err.message)
        self.assertEqual(self.value("idem")["SecretString"], "one")

    # -- listing and tags ------------------------------------------------------------------

    def test_list_secrets_name_filter_with_paging(self):
        for name in ("app/one", "app/two", "other"):
            self.create(name)
        out = self.sm("list-secrets", "--filters", "Key=name,Values=app/", "--page-size", "1")
        self.assertEqual(sorted(s["Name"] for s in out["SecretList"]), ["app/one", "app/two"])
        for s in out["SecretList"]:
            self.assertEqual(list(s["SecretVersionsToStages"].values()), [["AWSCURRENT"]])
        out = self.sm("list-secrets", "--filters", "Key=name,Values=!app/")
        self.assertEqual([s["Name"] for s in out["SecretList"]], ["other"])
        self.assertAwsError("ValidationException", "secretsmanager", "list-secrets",
                            "--filters", "Key=colour,Values=red")

    def test_seed_secrets_then_list_by_tag_in_pages(self):
        """The control endpoint's bulk secrets are what keybroker makes (its two tags, one
        AWSCURRENT version), and awscli walks them 100 a page with both of a follower's
        filters; the seeding itself is no AWS call."""
        self.create("unrelated")
        made = self.fa.control("POST", "/_fakeaws/seed-secrets", {"count": 250, "start": 5})
        self.assertEqual(made, {"created": 250})
        again = self.fa.control("POST", "/_fakeaws/seed-secrets", {"count": 10, "start": 0})
        self.assertEqual(again, {"created": 5})  # t5.. exist already
        before = len(self.fa.calls())
        out = self.sm("list-secrets", "--filters", "Key=tag-key,Values=keybroker:tenant",
                      "Key=name,Values=keybroker/", "--page-size", "100")
        listed = out["SecretList"]
        self.assertEqual(len(listed), 255)
        self.assertEqual({s["Name"] for s in listed},
                         {f"keybroker/t{i}" for i in range(255)})
        one = [s for s in listed if s["Name"] == "keybroker/t7"][0]
        self.assertEqual({t["Key"]: t["Value"] for t in one["Tags"]},
                         {"keybroker:tenant": "t7", "keybroker:managed": "true"})
        self.assertEqual(list(one["SecretVersionsToStages"].values()), [["AWSCURRENT"]])
        pages = [c for c in self.fa.calls() if c["operation"] == "ListSecrets"]
        self.assertEqual(len(pages), 3)  # 100 + 100 + 55
        self.assertEqual(len(self.fa.calls()) - before, 3)

    def test_tag_and_untag_resource(self):
        arn = self.create("tagged", "v", "--tags", "Key=a,Value=1")["ARN"]
        self.sm("tag-resource", "--secret-id", arn, "--tags", "Key=b,Value=2",
                "Key=a,Value=one")
        d = self.sm("describe-secret", "--secret-id", "tagged")
        self.assertEqual({t["Key"]: t["Value"] for t in d["Tags"]}, {"a": "one", "b": "2"})
        out = self.sm("list-secrets", "--filters", "Key=tag-key,Values=b")
        self.assertEqual([s["Name"] for s in out["SecretList"]], ["tagged"])
        self.sm("untag-resource", "--secret-id", "tagged", "--tag-keys", "a")
        d = self.sm("describe-secret", "--secret-id", "tagged")
        self.assertEqual(d["Tags"], [{"Key": "b", "Value": "2"}])
        self.assertAwsError("InvalidParameterException", "secretsmanager", "tag-resource",
                            "--secret-id", "tagged", "--tags", "Key=aws:reserved,Value=x")

    # -- deletion --------------------------------------------------------------------------

    def test_delete_with_recovery_window_then_restore(self):
        arn = self.create("gone", "keep-me")["ARN"]
        before = time.time()
        out = self.sm("delete-secret", "--secret-id", "gone", "--recovery-window-in-days", "7")
        self.assertEqual(out["ARN"], arn)
        state = self.fa.state()["services"]["secretsmanager"]["secrets"][0]
        self.assertAlmostEqual(state["deletion_date"], before + 7 * 86400, delta=30)
        err = self.assertAwsError("InvalidRequestException", "secretsmanager",
                                  "get-secret-value", "--secret-id", "gone")
        self.assertIn("marked for deletion", err.message)
        self.assertAwsError("InvalidRequestException", "secretsmanager", "put-secret-value",
                            "--secret-id", "gone", "--secret-string", "x")
        self.assertAwsError("InvalidRequestException", "secretsmanager", "tag-resource",
                            "--secret-id", "gone", "--tags", "Key=k,Value=v")
        self.assertIn("DeletedDate", self.sm("describe-secret", "--secret-id", "gone"))
        self.assertEqual(self.sm("list-secrets")["SecretList"], [])
        listed = self.sm("list-secrets", "--include-planned-deletion")["SecretList"]
        self.assertEqual([s["Name"] for s in listed], ["gone"])
        err = self.assertAwsError("InvalidRequestException", "secretsmanager", "create-secret",
                                  "--name", "gone", "--secret-string", "x")
        self.assertIn("already scheduled for deletion", err.message)
        self.assertEqual(self.sm("restore-secret", "--secret-id", "gone")["ARN"], arn)
        self.assertEqual(self.value("gone")["SecretString"], "keep-me")
        self.assertNotIn("DeletedDate", self.sm("describe-secret", "--secret-id", "gone"))

    def test_force_delete_removes_at_once(self):
        arn = self.create("tmp", "x")["ARN"]
        out = self.sm("delete-secret", "--secret-id", "tmp", "--force-delete-without-recovery")
        self.assertEqual(out["ARN"], arn)
        self.assertAwsError("ResourceNotFoundException", "secretsmanager", "get-secret-value",
                            "--secret-id", "tmp")
        self.assertAwsError("ResourceNotFoundException", "secretsmanager", "describe-secret",
                            "--secret-id", arn)
        again = self.create("tmp", "y")
        self.assertNotEqual(again["ARN"], arn)  # a new secret gets a new random suffix

    def test_invalid_recovery_window(self):
        self.create("win")
        for days in ("6", "31"):
            err = self.assertAwsError("InvalidParameterException", "secretsmanager",
                                      "delete-secret", "--secret-id", "win",
                                      "--recovery-window-in-days", days)
            self.assertIn("between 7 and 30", err.message)
        self.assertAwsError("InvalidParameterException", "secretsmanager", "delete-secret",
                            "--secret-id", "win", "--recovery-window-in-days", "7",
                            "--force-delete-without-recovery")
        self.assertNotIn("DeletedDate", self.sm("describe-secret", "--secret-id", "win"))

    # -- IAM authorization -----------------------------------------------------------------

    def test_iam_user_needs_permission_on_the_secret_arn(self):
        self.create("app/db", "app-value")
        self.create("app/prod", "prod-value", "--tags", "Key=env,Value=prod")
        self.create("other/db", "other-value")
        self.fa.aws("iam", "create-user", "--user-name", "reader")
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
             "Resource": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:app/*"},
            {"Effect": "Deny", "Action": "secretsmanager:*", "Resource": "*",
             "Condition": {"StringEquals": {"secretsmanager:ResourceTag/env": "prod"}}}]}
        self.fa.aws("iam", "put-user-policy", "--user-name", "reader", "--policy-name", "p",
                    "--policy-document", json.dumps(policy))
        key = self.fa.aws("iam", "create-access-key", "--user-name", "reader")["AccessKey"]
        creds = (key["AccessKeyId"], key["SecretAccessKey"])
        out = self.fa.aws("secretsmanager", "get-secret-value", "--secret-id", "app/db",
                          creds=creds)
        self.assertEqual(out["SecretString"], "app-value")
        for name in ("other/db", "app/prod"):
            err = self.fa.aws_error("secretsmanager", "get-secret-value", "--secret-id", name,
                                    creds=creds)
            self.assertEqual(err.code, "AccessDeniedException", err.stderr)
            self.assertIn("secretsmanager:GetSecretValue", err.message)
        err = self.fa.aws_error("secretsmanager", "put-secret-value", "--secret-id", "app/db",
                                "--secret-string", "x", creds=creds)
        self.assertEqual(err.code, "AccessDeniedException", err.stderr)

    # -- wire protocol ---------------------------------------------------------------------

    def test_unknown_target_and_bad_body(self):
        r = self.fa.signed("secretsmanager", "POST", body="{}",
                           headers=dict(JSON_HEADERS, **{"X-Amz-Target": "secretsmanager.Nope"}))
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json_type(), "UnknownOperationException")
        r = self.fa.signed("secretsmanager", "POST", body="[1, 2]",
                           headers=dict(JSON_HEADERS,
                                        **{"X-Amz-Target": "secretsmanager.ListSecrets"}))
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json_type(), "SerializationException")
        r = self.fa.signed("secretsmanager", "POST", body="{}",
                           headers=dict(JSON_HEADERS,
                                        **{"X-Amz-Target": "secretsmanager.GetSecretValue"}))
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json_type(), "ValidationException")
        self.assertIn("secretId", r.json()["Message"])
        r = self.fa.signed("secretsmanager", "POST", body="{}",
                           headers=dict(JSON_HEADERS,
                                        **{"X-Amz-Target": "secretsmanager.ListSecrets"}))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"SecretList": []})

    def test_dump_state_never_contains_secret_values(self):
        value = json.dumps({"AccessKeyId": "AKIASTATEDUMP0000001",
                            "SecretAccessKey": "dumpSecretKeyMustNotAppear/0000000000000"})
        vid = self.create("iam/user-key", value)["VersionId"]
        self.sm("put-secret-value", "--secret-id", "iam/user-key", "--secret-string",
                "plain-text-value-must-not-appear", "--version-stages", "AWSPENDING")
        state = self.fa.state()
        dumped = json.dumps(state)
        self.assertNotIn("dumpSecretKeyMustNotAppear", dumped)
        self.assertNotIn("SecretAccessKey", dumped)
        self.assertNotIn("plain-text-value-must-not-appear", dumped)
        secret = state["services"]["secretsmanager"]["secrets"][0]
        self.assertEqual(secret["name"], "iam/user-key")
        v1 = [v for v in secret["versions"] if v["version_id"] == vid][0]
        self.assertEqual(v1["stages"], ["AWSCURRENT"])
        self.assertEqual(v1["access_key_id"], "AKIASTATEDUMP0000001")
        self.assertEqual(v1["value_sha256"], hashlib.sha256(value.encode()).hexdigest())


if __name__ == "__main__":
    unittest.main(verbosity=2)
