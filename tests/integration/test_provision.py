"""keybrokerd --provision-only / --revoke against a private fakeaws (issue 4's acceptance).

After every scenario the invariants of DESIGN.md section 6 are checked over fakeaws's state
(invariants.py), and nothing keybrokerd prints may hold a secret access key.
"""

import json
import os
import tempfile
import time
import unittest

from harness import FakeAWSTestCase, AwsCliError
from invariants import (Tenant, check_configured, check_invariants, check_no_foreign_grants,
                        secrets, users, buckets, version_id)
from kbrun import Broker

READS = ("Get", "Head", "Describe", "List")


def three_tenants():
    return [Tenant("billing", "acme-billing-data", "read-write", "invoices/",
                   tags={"app": "invoicer"}),
            Tenant("reports", "acme-reports-data", "read-only", "monthly/"),
            Tenant("ops", "acme-ops-data", "admin")]


class ProvisionCase(FakeAWSTestCase):
    def setUp(self):
        super().setUp()
        self.kb = Broker(self.fa, self)

    # -- helpers ------------------------------------------------------------------------------

    def assertConverged(self, tenants, allow=(), **configured):
        state = self.fa.state()
        problems = check_invariants(state, tenants, allow)
        problems += check_configured(state, tenants, **configured)
        problems += check_no_foreign_grants(state)
        self.assertEqual(problems, [])

    def assertInvariants(self, tenants=(), allow=()):
        state = self.fa.state()
        self.assertEqual(check_invariants(state, tenants, allow) + check_no_foreign_grants(state),
                         [])

    def stored_value(self, t, version=None):
        args = ["secretsmanager", "get-secret-value", "--secret-id", t.secret]
        if version:
            args += ["--version-id", version]
        return json.loads(self.fa.aws(*args)["SecretString"])

    def all_secret_keys(self):
        """Every SecretAccessKey stored in any version of any secret."""
        out = []
        for name, s in secrets(self.fa.state()).items():
            if s["scheduled_for_deletion"]:
                continue
            for v in s["versions"]:
                doc = json.loads(self.fa.aws("secretsmanager", "get-secret-value", "--secret-id",
                                             name, "--version-id", v["version_id"])
                                 ["SecretString"])
                out.append(doc["SecretAccessKey"])
        return out

    def assertNoSecretPrinted(self, *results):
        keys = self.all_secret_keys()
        self.assertTrue(keys)
        for r in results:
            for k in keys:
                self.assertNotIn(k, r.out)
                self.assertNotIn(k, r.err)

    def calls_since(self, seq):
        return [c for c in self.fa.calls(seq)]

    def last_seq(self):
        calls = self.fa.calls(0)
        return calls[-1]["seq"] if calls else 0

    def object_call(self, creds, op, bucket, key, body_path=None):
        args = ["s3api", op, "--bucket", bucket, "--key", key]
        if op == "put-object":
            args += ["--body", body_path]
        elif op == "get-object":
            args += [os.path.join(self.kb.tmp, "download")]
        return self.fa.aws(*args, creds=creds)

    def assertDenied(self, creds, op, bucket, key, body_path=None):
        try:
            self.object_call(creds, op, bucket, key, body_path)
        except AwsCliError as e:
            self.assertEqual(e.code, "AccessDenied", e.stderr)
            return
        self.fail(f"{op} {bucket}/{key} was allowed")


class TestProvision(ProvisionCase):
    def test_fresh_three_tenants(self):
        """Three access levels: exactly the configured resources, tags, policies and bucket
        settings; each stored key works in its own bucket and prefix and nowhere else."""
        tenants = three_tenants()
        cfg = self.kb.config(tenants, tags={"team": "platform"})
        r = self.kb.run(cfg)
        self.assertEqual(r.rc, 0, r)
        for t in tenants:
            self.assertEqual(r.state_of(t.name), "ready", r)
            for step in ("bucket", "public-access-block", "encryption", "ownership",
                         "bucket-policy", "user", "user-policy", "secret", "access-keys",
                         "create-key", "store-key", "probe"):
                self.assertTrue(r.events(t.name, step, "start"), (t.name, step))
            self.assertTrue(r.events(t.name, "probe", "done"))
            self.assertIn("probed-ok", r.summary[t.name][1])
        for t in tenants:
            t.tags = dict(t.tags)
        self.assertConverged(tenants, extra_tags={"team": "platform"})
        # Progress and outcome messages reach socket peers: they never name an AccessKeyId (the
        # log, for operators, does).
        key_ids = {k["id"] for u in users(self.fa.state()).values() for k in u["access_keys"]}
        self.assertTrue(key_ids)
        for k in key_ids:
            self.assertNotIn(k, r.out)
            self.assertTrue(any(l.get("access_key_id") == k for l in r.logs), k)

        # The stored value: credential_process version 1 + bucket and region, key = AWSCURRENT.
        state = self.fa.state()
        creds = {}
        for t in tenants:
            value = self.stored_value(t)
            self.assertEqual(sorted(value), ["AccessKeyId", "Bucket", "Region", "SecretAccessKey",
                                             "Version"])
            self.assertEqual(value["Version"], 1)
            self.assertEqual(value["Bucket"], t.bucket)
            self.assertEqual(value["Region"], "us-east-1")
            current = [v for v in secrets(state)[t.secret]["versions"]
                       if "AWSCURRENT" in v["stages"]][0]
            self.assertEqual(current["access_key_id"], value["AccessKeyId"])
            self.assertEqual(current["version_id"], version_id(t.name, value["AccessKeyId"]))
            creds[t.name] = (value["AccessKeyId"], value["SecretAccessKey"])

        body = os.path.join(self.kb.tmp, "body.txt")
        with open(body, "w") as f:
            f.write("hello\n")
        billing, reports, ops = tenants
        # read-write confined to invoices/: put and get inside, denied outside and elsewhere
        self.object_call(creds["billing"], "put-object", billing.bucket, "invoices/1.txt", body)
        self.object_call(creds["billing"], "get-object", billing.bucket, "invoices/1.txt")
        self.assertDenied(creds["billing"], "put-object", billing.bucket, "other/1.txt", body)
        self.assertDenied(creds["billing"], "put-object", reports.bucket, "monthly/1.txt", body)
        self.assertDenied(creds["billing"], "get-object", ops.bucket, "x.txt")
        # read-only: get inside its prefix, never put, nothing outside
        self.fa.aws("s3api", "put-object", "--bucket", reports.bucket, "--key", "monthly/r.txt",
                    "--body", body)
        self.fa.aws("s3api", "put-object", "--bucket", reports.bucket, "--key", "secret/r.txt",
                    "--body", body)
        self.object_call(creds["reports"], "get-object", reports.bucket, "monthly/r.txt")
        self.assertDenied(creds["reports"], "put-object", reports.bucket, "monthly/w.txt", body)
        self.assertDenied(creds["reports"], "get-object", reports.bucket, "secret/r.txt")
        self.assertDenied(creds["reports"], "get-object", billing.bucket, "invoices/1.txt")
        # admin: anything in its own bucket, nothing in the others
        self.object_call(creds["ops"], "put-object", ops.bucket, "any/where.txt", body)
        self.object_call(creds["ops"], "get-object", ops.bucket, "any/where.txt")
        self.assertDenied(creds["ops"], "get-object", billing.bucket, "invoices/1.txt")
        self.assertDenied(creds["ops"], "put-object", reports.bucket, "monthly/x.txt", body)
        self.assertNoSecretPrinted(r)

    def test_second_run_makes_no_mutating_call(self):
        tenants = three_tenants()
        cfg = self.kb.config(tenants)
        first = self.kb.run(cfg)
        self.assertEqual(first.rc, 0, first)
        before = self.fa.state()
        seq = self.last_seq()
        second = self.kb.run(cfg)
        self.assertEqual(second.rc, 0, second)
        calls = self.calls_since(seq)
        self.assertTrue(calls)
        mutating = [c["operation"] for c in calls if not c["operation"].startswith(READS)]
        self.assertEqual(mutating, [])
        after = self.fa.state()
        for key in ("services", "access_keys"):
            self.assertEqual(_stable(before[key]), _stable(after[key]))
        for t in tenants:
            self.assertEqual(second.state_of(t.name), "ready")
            self.assertIn("unchanged", second.summary[t.name][1])
            self.assertNotIn("AKIA", second.out)
            self.assertTrue(second.events(t.name, "create-key", "skip"))
        self.assertConverged(tenants)
        self.assertNoSecretPrinted(first, second)

    def test_drift_is_reported_and_repaired(self):
        t = Tenant("billing", "acme-billing-data", "read-write", "invoices/")
        cfg = self.kb.config([t])
        self.assertEqual(self.kb.run(cfg).rc, 0)
        fa = self.fa
        fa.aws("s3api", "put-public-access-block", "--bucket", t.bucket,
               "--public-access-block-configuration",
               "BlockPublicAcls=false,IgnorePublicAcls=false,BlockPublicPolicy=false,"
               "RestrictPublicBuckets=false")
        fa.aws("s3api", "delete-bucket-policy", "--bucket", t.bucket)
        fa.aws("s3api", "put-bucket-ownership-controls", "--bucket", t.bucket,
               "--ownership-controls", "Rules=[{ObjectOwnership=ObjectWriter}]")
        fa.aws("s3api", "put-bucket-encryption", "--bucket", t.bucket,
               "--server-side-encryption-configuration",
               '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms"}}]}')
        fa.aws("iam", "put-user-policy", "--user-name", t.user, "--policy-name", "keybroker-s3",
               "--policy-document", json.dumps({"Version": "2012-10-17", "Statement": [
                   {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        seq = self.last_seq()
        r = self.kb.run(cfg)
        self.assertEqual(r.rc, 0, r)
        writes = sorted(c["operation"] for c in self.calls_since(seq)
                        if not c["operation"].startswith(READS))
        self.assertEqual(writes, ["PutBucketEncryption", "PutBucketOwnershipControls",
                                  "PutBucketPolicy", "PutPublicAccessBlock", "PutUserPolicy"])
        drift = {(l["step"]) for l in r.logs if l["event"] == "drift"}
        self.assertEqual(drift, {"public-access-block", "encryption", "ownership",
                                 "bucket-policy", "user-policy"})
        for step in drift:
            self.assertTrue(r.events("billing", step, "done"))
            self.assertIn("repaired", r.events("billing", step, "done")[0][3])
        self.assertConverged([t])

    def test_tag_drift_repaired(self):
        t = Tenant("billing", "acme-billing-data", "read-only", tags={"app": "a"})
        cfg = self.kb.config([t])
        self.assertEqual(self.kb.run(cfg).rc, 0)
        t.tags = {"app": "b", "owner": "finance"}
        cfg = self.kb.config([t])
        seq = self.last_seq()
        r = self.kb.run(cfg)
        self.assertEqual(r.rc, 0, r)
        writes = sorted(c["operation"] for c in self.calls_since(seq)
                        if not c["operation"].startswith(READS))
        self.assertEqual(writes, ["PutBucketTagging", "TagResource", "TagUser"])
        self.assertConverged([t])

    def test_log_levels_and_lines(self):
        t = Tenant("billing", "acme-billing-data", "read-only")
        cfg = self.kb.config([t], broker={"log_level": "info"})
        r = self.kb.run(cfg)
        self.assertEqual(r.rc, 0, r)
        levels = {l["level"] for l in r.logs}
        self.assertEqual(levels, {"info"})
        for l in r.logs:
            self.assertEqual(list(l)[:3], ["ts", "level", "event"])
            self.assertEqual(l["tenant"], "billing")
        steps = [l for l in r.logs if l["event"] == "step"]
        self.assertEqual(len(steps), len(r.steps))  # one log line per progress line
        created = [l for l in steps if l["step"] == "bucket" and l["result"] == "done"][0]
        bucket_call = [c for c in self.fa.calls(0) if c["operation"] == "CreateBucket"][0]
        self.assertEqual(created["request_id"], bucket_call["request_id"])
        # --log-level overrides the config: debug adds every AWS call, warn keeps only problems
        r = self.kb.run(cfg, "--log-level", "debug")
        calls = [l for l in r.logs if l["event"] == "aws-call"]
        self.assertEqual(len(calls), 10)
        self.assertTrue(all(l["request_id"] and l["step"] for l in calls))
        r = self.kb.run(cfg, "--log-level", "warn")
        self.assertEqual((r.rc, r.logs), (0, []))
        self.assertNoSecretPrinted(r)
        r = self.kb.run(cfg, "--log-level", "loud", json_log=False)
        self.assertEqual(r.rc, 2)
        help_ = self.kb.run(cfg, mode="--help", json_log=False)
        self.assertEqual(help_.rc, 0)
        for word in ("--check-config", "--provision-only", "--revoke", "--delete-bucket",
                     "--force-delete-secret", "--tenant", "--log-level"):
            self.assertIn(word, help_.out)

    def test_concurrency_is_bounded(self):
        tenants = [Tenant(f"t{i}", f"acme-conc-{i}", "read-only") for i in range(9)]
        r = self.kb.run(self.kb.config(tenants, broker={"concurrency": 3}))
        self.assertEqual(r.rc, 0, r)
        active, peak = set(), 0
        for entry in r.logs:
            if entry["event"] == "step":
                active.add(entry["tenant"])
            elif entry["event"] == "tenant":
                peak = max(peak, len(active))
                active.discard(entry["tenant"])
            peak = max(peak, len(active))
        self.assertEqual(peak, 3)
        # the two chains of one tenant overlap: its user chain starts before its bucket chain ends
        order = [(l["tenant"], l["step"], l["result"]) for l in r.logs if l["event"] == "step"]
        self.assertLess(order.index(("t0", "user", "start")),
                        order.index(("t0", "bucket", "done")))
        self.assertConverged(tenants)

    def test_custom_access_and_permissions_boundary(self):
        """Custom actions become the policy as listed; the probe of a tenant that may not list
        accepts S3's AccessDenied (S3 knew the key); users get the configured boundary."""
        boundary = "arn:aws:iam::123456789012:policy/kb-boundary"
        self.fa.control("POST", "/_fakeaws/managed-policies", {"arn": boundary, "document": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}})
        getter = Tenant("getter", "acme-getter", ["s3:GetObject"], "in/")
        lister = Tenant("lister", "acme-lister", ["s3:GetObject", "s3:List*"])
        r = self.kb.run(self.kb.config([getter, lister], permissions_boundary=boundary))
        self.assertEqual(r.rc, 0, r)
        self.assertConverged([getter, lister], boundary=boundary)
        probes = [c for c in self.fa.calls(0) if c["operation"] == "ListObjectsV2"]
        by_key = {c["key_id"]: c["status"] for c in probes}
        self.assertEqual(by_key[self.stored_value(getter)["AccessKeyId"]], 403)
        self.assertEqual(by_key[self.stored_value(lister)["AccessKeyId"]], 200)
        body = os.path.join(self.kb.tmp, "body.txt")
        with open(body, "w") as f:
            f.write("x")
        self.fa.aws("s3api", "put-object", "--bucket", getter.bucket, "--key", "in/a",
                    "--body", body)
        value = self.stored_value(getter)
        creds = (value["AccessKeyId"], value["SecretAccessKey"])
        self.object_call(creds, "get-object", getter.bucket, "in/a")
        self.assertDenied(creds, "put-object", getter.bucket, "in/b", body)

    def test_kms_key(self):
        kms = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        t = Tenant("billing", "acme-billing-data", "read-write")
        cfg = self.kb.config([t], kms_key_id=kms)
        seq = self.last_seq()
        r = self.kb.run(cfg)
        self.assertEqual(r.rc, 0, r)
        ops = [c["operation"] for c in self.calls_since(seq)]
        self.assertIn("PutBucketEncryption", ops)
        self.assertConverged([t], kms_key_id=kms)
        seq = self.last_seq()
        self.assertEqual(self.kb.run(cfg).rc, 0)
        self.assertEqual([c["operation"] for c in self.calls_since(seq)
                          if not c["operation"].startswith(READS)], [])


# Steps of a fresh tenant: (service, operation, the step that names the failure).
FRESH_STEPS = [
    ("s3", "HeadBucket", "bucket"),
    ("s3", "CreateBucket", "bucket"),
    ("s3", "PutBucketPolicy", "bucket-policy"),
    ("iam", "GetUser", "user"),
    ("iam", "CreateUser", "user"),
    ("iam", "PutUserPolicy", "user-policy"),
    ("secretsmanager", "DescribeSecret", "secret"),
    ("iam", "CreateAccessKey", "create-key"),
    ("secretsmanager", "CreateSecret", "store-key"),
    ("sts", "GetCallerIdentity", "probe"),
    ("s3", "ListObjectsV2", "probe"),
]
# Steps of an existing tenant whose bucket, user, tags and key have drifted (see _drift).
DRIFT_STEPS = [
    ("s3", "GetBucketTagging", "bucket"),
    ("s3", "PutBucketTagging", "bucket-tags"),
    ("s3", "GetPublicAccessBlock", "public-access-block"),
    ("s3", "PutPublicAccessBlock", "public-access-block"),
    ("s3", "GetBucketEncryption", "encryption"),
    ("s3", "PutBucketEncryption", "encryption"),
    ("s3", "GetBucketOwnershipControls", "ownership"),
    ("s3", "PutBucketOwnershipControls", "ownership"),
    ("s3", "GetBucketPolicy", "bucket-policy"),
    ("iam", "TagUser", "user-tags"),
    ("iam", "GetUserPolicy", "user-policy"),
    ("secretsmanager", "TagResource", "secret-tags"),
    ("iam", "ListAccessKeys", "access-keys"),
    ("secretsmanager", "PutSecretValue", "store-key"),
]


class TestFaults(ProvisionCase):
    """For every step: a permanent failure there leaves no orphan key and a clear error naming
    tenant and step; a transient one is retried and converges."""

    def _drift(self, t):
        """Undo every setting of a provisioned tenant, and delete its key (the secret then holds
        a key that is gone: the next run creates one and stores it with PutSecretValue)."""
        fa = self.fa
        fa.aws("s3api", "put-public-access-block", "--bucket", t.bucket,
               "--public-access-block-configuration",
               "BlockPublicAcls=false,IgnorePublicAcls=true,BlockPublicPolicy=true,"
               "RestrictPublicBuckets=true")
        fa.aws("s3api", "put-bucket-ownership-controls", "--bucket", t.bucket,
               "--ownership-controls", "Rules=[{ObjectOwnership=ObjectWriter}]")
        fa.aws("s3api", "put-bucket-encryption", "--bucket", t.bucket,
               "--server-side-encryption-configuration",
               '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms"}}]}')
        fa.aws("s3api", "put-bucket-tagging", "--bucket", t.bucket, "--tagging",
               "TagSet=[{Key=keybroker:tenant,Value=%s},{Key=keybroker:managed,Value=true}]"
               % t.name)
        fa.aws("iam", "untag-user", "--user-name", t.user, "--tag-keys", "app")
        fa.aws("secretsmanager", "untag-resource", "--secret-id", t.secret, "--tag-keys", "app")
        for k in users(fa.state())[t.user]["access_keys"]:
            fa.aws("iam", "delete-access-key", "--user-name", t.user, "--access-key-id", k["id"])

    def _scenario(self, i, path, svc, op, step, kind):
        t = Tenant(f"{kind[0]}{i}", f"acme-{kind}-{i}", "read-write", "in/", tags={"app": "x"})
        cfg = self.kb.config([t], probe_timeout=2)
        if path == "drift":
            self.assertEqual(self.kb.run(cfg).rc, 0)
            self._drift(t)
        self.fa.control("DELETE", "/_fakeaws/faults")
        seq = self.last_seq()
        if kind == "permanent":
            self.fa.fault(service=svc, operation=op, kind="error", status=403,
                          code="AccessDenied", message=f"injected: no {op} for you")
        else:
            self.fa.fault(service=svc, operation=op, kind="503", count=1)
        r = self.kb.run(cfg)
        self.fa.control("DELETE", "/_fakeaws/faults")
        calls = [c for c in self.calls_since(seq) if c["operation"] == op]
        self.assertTrue(calls, f"{op} was never called")
        if kind == "permanent":
            self.assertEqual(r.rc, 1, r)
            state, message = r.summary[t.name]
            self.assertEqual(state, "error")
            self.assertIn(f"step {step}:", message)
            if step == "probe":
                self.assertIn("readiness probe with the new key timed out", message)
            elif op == "HeadBucket":
                # a HEAD answer has no body: a 403 is all S3 says (and a foreign bucket says so)
                self.assertIn("(HeadBucket: 403)", message)
            else:
                self.assertIn(f"{op} failed: AccessDenied: injected: no {op} for you", message)
            errors = r.events(t.name, step, "error")
            self.assertTrue(errors, r)
            failed = [l for l in r.logs if l.get("event") == "step" and l.get("result") == "error"]
            self.assertTrue(any(l["tenant"] == t.name and l["step"] == step for l in failed))
            if step != "probe":
                self.assertTrue(any(l.get("request_id") == calls[-1]["request_id"]
                                    for l in failed), "the error names the AWS request id")
            # no orphan key, whatever failed
            self.assertInvariants([t])
            if op == "CreateSecret" or op == "PutSecretValue":
                self.assertIn("was deleted (compensation)", message)
                self.assertEqual(users(self.fa.state())[t.user]["access_keys"], [])
        else:
            self.assertEqual(r.rc, 0, r)
            self.assertIn(calls[0]["status"], (500, 503))
            self.assertTrue(any(c["status"] < 300 or c["error"] in ("NoSuchBucket", "NoSuchEntity",
                                "ResourceNotFoundException") for c in calls[1:]), calls)
            self.assertConverged([t])
        # and the next run converges from wherever the failure left things
        again = self.kb.run(cfg)
        self.assertEqual(again.rc, 0, again)
        self.assertConverged([t])
        return r

    def _all(self, kind):
        i = 0
        for path, steps in (("fresh", FRESH_STEPS), ("drift", DRIFT_STEPS)):
            for svc, op, step in steps:
                with self.subTest(path=path, operation=op):
                    self._scenario(i, path, svc, op, step, kind)
                i += 1

    def test_permanent_failure_at_every_step(self):
        self._all("permanent")

    def test_transient_failure_at_every_step(self):
        self._all("transient")

    def test_lost_responses_of_idempotent_writes(self):
        """The response is cut off after AWS carried the call out: the client's retry (same
        ClientRequestToken, same names) lands on what exists and creates no duplicate."""
        for i, (svc, op) in enumerate([("s3", "CreateBucket"), ("iam", "CreateUser"),
                                       ("secretsmanager", "CreateSecret"),
                                       ("iam", "PutUserPolicy")]):
            with self.subTest(operation=op):
                t = Tenant(f"r{i}", f"acme-reset-{i}", "read-only")
                self.fa.fault(service=svc, operation=op, kind="reset", count=1)
                seq = self.last_seq()
                r = self.kb.run(self.kb.config([t]))
                self.assertEqual(r.rc, 0, r)
                calls = [c for c in self.calls_since(seq) if c["operation"] == op]
                # carried out, answer lost, retried: the retry finds its own work done
                self.assertEqual([c["fault"] for c in calls], ["reset", None])
                self.assertEqual(calls[0]["status"], 200)
                self.assertConverged([t])
                self.assertEqual(len(secrets(self.fa.state())[t.secret]["versions"]), 1)

    def test_compensation_that_fails_too_is_reported(self):
        t = Tenant("comp", "acme-comp", "read-only")
        self.fa.fault(service="secretsmanager", operation="CreateSecret", kind="error",
                      status=400, code="ValidationException", message="injected store failure")
        self.fa.fault(service="iam", operation="DeleteAccessKey", kind="error", status=403,
                      code="AccessDenied", message="injected delete failure")
        r = self.kb.run(self.kb.config([t]))
        self.assertEqual(r.rc, 1, r)
        message = r.summary["comp"][1]
        self.assertIn("step store-key: CreateSecret failed: ValidationException: injected store "
                      "failure", message)
        self.assertIn("deleting the new key failed too (AccessDenied: injected delete failure): "
                      "a later reconcile deletes it once it is older than aws.orphan_key_min_age",
                      message)
        keys = users(self.fa.state())[t.user]["access_keys"]
        self.assertEqual(len(keys), 1)
        # the message (peers see it) does not name the key; the log (operators) does
        self.assertNotIn(keys[0]["id"], r.out)
        self.assertTrue(any(l.get("event") == "compensate" and l.get("result") == "failed"
                            and l.get("access_key_id") == keys[0]["id"] for l in r.logs), r)
        # the next run leaves the young orphan alone and stores a new key beside it
        self.fa.control("DELETE", "/_fakeaws/faults")
        r = self.kb.run(self.kb.config([t]))
        self.assertEqual(r.rc, 0, r)
        self.assertConverged([t], allow={keys[0]["id"]})


class TestForeign(ProvisionCase):
    def _snapshot(self, user=None, bucket=None, secret=None):
        st = self.fa.state()
        return (users(st).get(user), buckets(st).get(bucket),
                secrets(st).get(secret) if secret else None)

    def test_untagged_user_is_refused_untouched(self):
        t = Tenant("fu", "acme-fu", "read-only")
        self.fa.aws("iam", "create-user", "--user-name", t.user, "--path", "/keybroker/")
        self.fa.aws("iam", "tag-user", "--user-name", t.user, "--tags", "Key=owner,Value=someone")
        before = self._snapshot(user=t.user)[0]
        seq = self.last_seq()
        r = self.kb.run(self.kb.config([t]))
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.summary["fu"], ("error", "step user: IAM user kb-fu exists and is not "
                                           "managed by keybroker for tenant fu; refusing to adopt "
                                           "it"))
        self.assertTrue(r.events("fu", "user", "error"))
        self.assertEqual(self._snapshot(user=t.user)[0], before)
        writes = [c for c in self.calls_since(seq) if c["service"] == "iam"
                  and not c["operation"].startswith(READS)]
        self.assertEqual(writes, [])
        self.assertEqual(before["inline_policies"], {})  # no policy was put on it
        self.assertEqual(before["access_keys"], [])
        self.assertInvariants([t])
        # revoke refuses it too, before deleting anything
        seq = self.last_seq()
        r = self.kb.run(self.kb.config([t]), "--tenant", "fu", mode="--revoke")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("IAM user kb-fu exists and is not managed by keybroker for tenant fu; "
                      "refusing to revoke it (nothing was deleted)", r.summary["fu"][1])
        self.assertEqual([c["operation"] for c in self.calls_since(seq)
                          if c["operation"].startswith("Delete")], [])
        self.assertEqual(self._snapshot(user=t.user)[0], before)

    def test_untagged_bucket_is_refused_untouched(self):
        t = Tenant("fb", "acme-fb", "read-only")
        self.fa.aws("s3api", "create-bucket", "--bucket", t.bucket)
        before = self._snapshot(bucket=t.bucket)[1]
        seq = self.last_seq()
        r = self.kb.run(self.kb.config([t]))
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.summary["fb"], ("error", "step bucket: bucket acme-fb exists and is "
                                           "not managed by keybroker for tenant fb; refusing to "
                                           "adopt it (if it is yours, `kbctl adopt fb` takes it "
                                           "under management)"))
        self.assertEqual(self._snapshot(bucket=t.bucket)[1], before)
        writes = [c for c in self.calls_since(seq) if c["service"] == "s3"
                  and not c["operation"].startswith(READS)]
        self.assertEqual(writes, [])
        # the user chain created the user, but its policy (naming the refused bucket) and key
        # were never written
        self.assertPolicyless(t)
        self.assertInvariants([t])

    def test_bucket_of_another_tenant_or_account_is_refused(self):
        other = Tenant("owner", "acme-shared", "read-only")
        self.assertEqual(self.kb.run(self.kb.config([other])).rc, 0)
        thief = Tenant("thief", "acme-shared", "read-only")
        before = self._snapshot(bucket="acme-shared")[1]
        r = self.kb.run(self.kb.config([thief]))
        self.assertEqual(r.rc, 1, r)
        self.assertIn("bucket acme-shared carries keybroker tags of another tenant; refusing to "
                      "adopt it", r.summary["thief"][1])
        self.assertEqual(self._snapshot(bucket="acme-shared")[1], before)
        self.assertPolicyless(thief)

        self.fa.control("POST", "/_fakeaws/foreign-buckets", {"name": "acme-elsewhere"})
        t = Tenant("away", "acme-elsewhere", "read-only")
        r = self.kb.run(self.kb.config([t]))
        self.assertEqual(r.rc, 1, r)
        self.assertIn("bucket acme-elsewhere exists but this account may not see it",
                      r.summary["away"][1])
        self.assertNotIn("acme-elsewhere", buckets(self.fa.state()))
        self.assertPolicyless(t)
        self.assertInvariants([other, thief, t])

    def test_untagged_secret_is_refused_untouched(self):
        t = Tenant("fs", "acme-fs", "read-only")
        self.fa.aws("secretsmanager", "create-secret", "--name", t.secret, "--secret-string",
                    '{"hello":"world"}')
        before = self._snapshot(secret=t.secret)[2]
        r = self.kb.run(self.kb.config([t]))
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.summary["fs"], ("error", "step secret: secret keybroker/fs exists and "
                                           "is not managed by keybroker for tenant fs; refusing "
                                           "to adopt it"))
        self.assertEqual(self._snapshot(secret=t.secret)[2], before)
        self.assertEqual(users(self.fa.state())[t.user]["access_keys"], [])
        # the bucket is the tenant's: its policy may name it (and grants nothing without a key)
        self.assertInvariants([t])

    def assertPolicyless(self, t):
        """t's user exists (the user chain ran) without an inline policy or a key."""
        u = users(self.fa.state())[t.user]
        self.assertEqual(u["inline_policies"], {}, u)
        self.assertEqual(u["access_keys"], [], u)

    def test_conflicting_bucket_config_grants_nothing_foreign(self):
        """Issue 11 item 4: tenant b configured with tenant a's bucket (one config may not name a
        bucket twice, so a comes from another broker's config). b's bucket step is refused; no
        policy on b's user names a's bucket, no key is made for b; c, beside b, is unaffected."""
        a = Tenant("a", "acme-conflict", "read-write")
        self.assertEqual(self.kb.run(self.kb.config([a], name="other.json")).rc, 0)
        b = Tenant("b", "acme-conflict", "read-only")
        c = Tenant("c", "acme-c-data", "read-only")
        r = self.kb.run(self.kb.config([b, c]))
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.state_of("c"), "ready")
        self.assertEqual(r.state_of("b"), "error")
        self.assertIn("step bucket: bucket acme-conflict carries keybroker tags of another "
                      "tenant", r.summary["b"][1])
        self.assertFalse(r.events("b", "user-policy", "done"))
        self.assertTrue(r.events("b", "user-policy", "skip"), r)
        self.assertPolicyless(b)
        self.assertNotIn(b.secret, secrets(self.fa.state()))
        self.assertConverged([a, c])
        self.assertInvariants([a, b, c])

    def test_policy_removed_when_bucket_becomes_foreign(self):
        """A policy b's user had from an earlier good run is removed once b's bucket is refused
        (b's config now names a's bucket); b converges again when its own bucket comes back."""
        a = Tenant("a", "acme-a-data", "read-write")
        b = Tenant("b", "acme-b-data", "read-only")
        self.assertEqual(self.kb.run(self.kb.config([a, b])).rc, 0)
        self.assertConverged([a, b])
        self.assertIn("keybroker-s3", users(self.fa.state())[b.user]["inline_policies"])
        keys_before = users(self.fa.state())[b.user]["access_keys"]
        moved = Tenant("b", "acme-a-data", "read-only")
        seq = self.last_seq()
        r = self.kb.run(self.kb.config([moved]))  # a is configured elsewhere now
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.state_of("b"), "error")
        self.assertIn("carries keybroker tags of another tenant", r.summary["b"][1])
        self.assertTrue(r.events("b", "user-policy", "done"))
        self.assertIn("removed", r.events("b", "user-policy", "done")[0][3])
        calls = [c["operation"] for c in self.calls_since(seq)
                 if c["service"] == "iam" and c.get("error") is None
                 and not c["operation"].startswith(READS)]
        self.assertEqual(calls, ["DeleteUserPolicy"])  # and no PutUserPolicy, no new key
        u = users(self.fa.state())[b.user]
        self.assertEqual(u["inline_policies"], {})
        self.assertEqual(u["access_keys"], keys_before)  # still referenced by b's secret (I1)
        self.assertInvariants([a, b])
        # back to its own bucket: the policy is written again
        r = self.kb.run(self.kb.config([a, b]))
        self.assertEqual(r.rc, 0, r)
        self.assertConverged([a, b])


class TestProbe(ProvisionCase):
    def test_two_second_propagation_waits_and_succeeds(self):
        self.fa.control("POST", "/_fakeaws/config", {"key_propagation_delay": 2.0})
        t = Tenant("slow", "acme-slow", "read-write", "p/")
        r = self.kb.run(self.kb.config([t], probe_timeout=30))
        self.assertEqual(r.rc, 0, r)
        done = r.events("slow", "probe", "done")[0][3]
        attempts, seconds = done.split(" after ")[1].split(" attempts in ")
        self.assertGreater(int(attempts), 1)
        self.assertGreaterEqual(float(seconds.rstrip("s")), 1.5)
        self.assertLess(float(seconds.rstrip("s")), 10)
        # the failed attempts were the new key being refused, then accepted
        probe = [c for c in self.fa.calls(0) if c["operation"] == "GetCallerIdentity"]
        self.assertEqual(probe[-1]["status"], 200)
        self.assertTrue(all(c["status"] == 403 for c in probe[:-1]))
        self.assertConverged([t])

    def test_sixty_second_propagation_gives_up_within_bound(self):
        self.fa.control("POST", "/_fakeaws/config", {"key_propagation_delay": 60.0})
        t = Tenant("stuck", "acme-stuck", "read-only")
        cfg = self.kb.config([t], probe_timeout=3)
        start = time.monotonic()
        r = self.kb.run(cfg)
        elapsed = time.monotonic() - start
        self.assertEqual(r.rc, 1, r)
        self.assertLess(elapsed, 3 + 4)
        message = r.summary["stuck"][1]
        self.assertIn("step probe: readiness probe with the new key timed out after 3s (IAM "
                      "propagation); the key is stored and stays in place for the next attempt",
                      message)
        self.assertIn("sts: InvalidClientTokenId", message)
        self.assertIn("s3: InvalidAccessKeyId", message)
        probe_start = [l for l in r.logs if l.get("step") == "probe" and l.get("result") == "start"]
        probe_end = [l for l in r.logs if l.get("step") == "probe" and l.get("result") == "error"]
        self.assertEqual(len(probe_start), 1)
        # the key is stored as AWSCURRENT and stays: no orphan, nothing deleted
        self.assertConverged([t])
        ops = [c["operation"] for c in self.fa.calls(0)]
        self.assertNotIn("DeleteAccessKey", ops)
        self.assertGreater(ops.count("GetCallerIdentity"), 2)
        self.assertTrue(probe_end)
        # the next attempt finds the stored key current and makes no write
        seq = self.last_seq()
        r = self.kb.run(cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual([c["operation"] for c in self.calls_since(seq)
                          if not c["operation"].startswith(READS)], [])


class TestInvalidConfig(ProvisionCase):
    DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "configs")

    def test_invalid_configs_are_refused_before_any_aws_call(self):
        folder = os.path.join(self.DATA, "invalid")
        names = sorted(f[:-5] for f in os.listdir(folder) if f.endswith(".json"))
        self.assertGreaterEqual(len(names), 25)
        # Any AWS call would reach fakeaws: the environment points every SDK path at it.
        env = self.kb.env(AWS_ENDPOINT_URL=self.fa.endpoint, AWS_REGION="us-east-1")
        for name in names:
            path = os.path.join(folder, name + ".json")
            with open(os.path.join(folder, name + ".expect")) as f:
                expected = sorted(f"{path}: {line}" for line in f.read().splitlines() if line)
            for mode in ("--check-config", "--provision-only"):
                with self.subTest(config=name, mode=mode):
                    r = self.kb.run(path, mode=mode, env=env, json_log=False)
                    self.assertEqual(r.rc, 2, r)
                    self.assertEqual(sorted(r.err.splitlines()), expected)
                    self.assertEqual(r.out, "")
        self.assertEqual(self.fa.calls(0), [])

    def test_valid_config_and_usage(self):
        path = os.path.join(self.DATA, "valid", "03-full.json")
        env = self.kb.env(AWS_ENDPOINT_URL=self.fa.endpoint)
        r = self.kb.run(path, mode="--check-config", env=env, json_log=False)
        self.assertEqual((r.rc, r.out, r.err), (0, f"{path}: ok\n", ""))
        missing = os.path.join(self.kb.tmp, "missing.json")
        r = self.kb.run(missing, mode="--check-config", env=env, json_log=False)
        self.assertEqual(r.rc, 2)
        self.assertIn(f"{missing}: cannot read the configuration", r.err)
        cfg = self.kb.config([Tenant("a", "acme-a")])
        r = self.kb.run(cfg, "--tenant", "nobody", env=env, json_log=False)
        self.assertEqual((r.rc, r.err), (2, f'{cfg}: no tenant named "nobody"\n'))
        self.assertEqual(self.fa.calls(0), [])


class TestRevoke(ProvisionCase):
    def test_revoke_reverse_order_idempotent_bucket_kept(self):
        t = Tenant("billing", "acme-billing-data", "read-write")
        cfg = self.kb.config([t], recovery_window_days=7)
        self.assertEqual(self.kb.run(cfg).rc, 0)
        body = os.path.join(self.kb.tmp, "b")
        with open(body, "w") as f:
            f.write("x")
        self.fa.aws("s3api", "put-object", "--bucket", t.bucket, "--key", "k", "--body", body)
        seq = self.last_seq()
        r = self.kb.run(cfg, "--tenant", "billing", mode="--revoke")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.summary["billing"], ("revoked", "revoked; bucket kept"))
        deletes = [c["operation"] for c in self.calls_since(seq)
                   if c["operation"].startswith("Delete")]
        self.assertEqual(deletes, ["DeleteAccessKey", "DeleteUserPolicy", "DeleteUser",
                                   "DeleteSecret"])
        st = self.fa.state()
        self.assertNotIn(t.user, users(st))
        self.assertTrue(secrets(st)[t.secret]["scheduled_for_deletion"])
        window = secrets(st)[t.secret]["deletion_date"] - time.time()
        self.assertAlmostEqual(window / 86400, 7, delta=0.1)
        self.assertIn(t.bucket, buckets(st))
        self.assertInvariants([t])

        # again: everything is gone already, nothing fails
        r = self.kb.run(cfg, "--tenant", "billing", mode="--revoke")
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(r.events("billing", "delete-user", "skip"))

        # provisioning a tenant whose secret awaits deletion is refused, with the way out
        r = self.kb.run(cfg)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("secret keybroker/billing is scheduled for deletion; restore it or choose "
                      "another secret_prefix", r.summary["billing"][1])
        self.assertInvariants([t])

        # the bucket goes only when asked and empty
        r = self.kb.run(cfg, "--tenant", "billing", "--delete-bucket", mode="--revoke")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.summary["billing"],
                         ("revoked", "revoked; bucket acme-billing-data kept: not empty"))
        self.assertIn(t.bucket, buckets(self.fa.state()))
        self.fa.aws("s3api", "delete-object", "--bucket", t.bucket, "--key", "k")
        r = self.kb.run(cfg, "--tenant", "billing", "--delete-bucket", "--force-delete-secret",
                        mode="--revoke")
        self.assertEqual(r.rc, 0, r)
        st = self.fa.state()
        self.assertNotIn(t.bucket, buckets(st))
        self.assertNotIn(t.secret, secrets(st))
        self.assertNotIn(t.user, users(st))


class TestDialect(ProvisionCase):
    """Endpoints that are not today's AWS: tags refused in CreateBucket (pre-2025 S3, MinIO, Ceph),
    no 2023 bucket defaults, responses written as moto writes them."""

    def setUp(self):
        super().setUp()
        self.fa.control("POST", "/_fakeaws/config", {"create_bucket_tags": "malformed",
                                                     "bucket_defaults": False,
                                                     "moto_style": True})

    def test_tags_fallback_sets_every_setting_and_converges(self):
        tenants = [Tenant("da", "acme-dial-a", "read-write", "x/"),
                   Tenant("db", "acme-dial-b", "read-only")]
        cfg = self.kb.config(tenants)
        seq = self.last_seq()
        r = self.kb.run(cfg)
        self.assertEqual(r.rc, 0, r)
        ops = [c["operation"] for c in self.calls_since(seq)]
        # the creation is recorded on the user, the bucket created untagged, tagged at once, and
        # the record removed again
        self.assertEqual(ops.count("TagUser"), 2, ops)
        self.assertEqual(ops.count("PutBucketTagging"), 2, ops)
        self.assertEqual(ops.count("UntagUser"), 2, ops)
        for op in ("PutPublicAccessBlock", "PutBucketEncryption", "PutBucketOwnershipControls"):
            self.assertEqual(ops.count(op), 2, (op, ops))
        # tagged, Block Public Access, encryption, ownership and policy all in place
        self.assertConverged(tenants)
        for t in tenants:
            user = users(self.fa.state())[t.user]
            self.assertNotIn("keybroker:creating-bucket", user.get("tags", {}), user)
        # a second run writes nothing
        seq = self.last_seq()
        self.assertEqual(self.kb.run(cfg).rc, 0)
        writes = [c["operation"] for c in self.calls_since(seq)
                  if not c["operation"].startswith(READS)]
        self.assertEqual(writes, [])

    def test_kill9_between_untagged_create_and_tagging_converges(self):
        t = Tenant("dk", "acme-dial-kill", "read-only")
        cfg = self.kb.config([t])
        seq = self.last_seq()
        # The second CreateBucket is the untagged one: freeze it, kill the broker while S3
        # carries it out, so PutBucketTagging is never sent.
        self.fa.fault(kind="delay", delay_ms=1500, operation="CreateBucket", skip=1, count=1)
        p = self.kb.popen(cfg)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        deadline = time.monotonic() + 30
        while self.fa.control("GET", "/_fakeaws/faults")["rules"] and p.poll() is None:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        p.kill()
        p.communicate()
        while not [c for c in self.calls_since(seq) if c["fault"] == "delay"]:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        state = self.fa.state()
        bucket = state["services"]["s3"]["buckets"][t.bucket]
        self.assertEqual(bucket.get("tags") or {}, {}, bucket)
        self.assertIn("keybroker:creating-bucket", users(state)[t.user].get("tags", {}))
        # the restart recognises its own creation, tags the bucket and finishes
        r = self.kb.run(cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertConverged([t])
        self.assertNotIn("keybroker:creating-bucket",
                         users(self.fa.state())[t.user].get("tags", {}))

    def test_tags_dropped_by_create_bucket_are_put_and_converge(self):
        # moto 5.2: CreateBucket takes the tags and keeps none
        self.fa.control("POST", "/_fakeaws/config", {"create_bucket_tags": False})
        tenants = [Tenant("dd", "acme-dial-drop", "read-only"),
                   Tenant("de", "acme-dial-drop-2", "read-only")]
        cfg = self.kb.config(tenants)
        r = self.kb.run(cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertConverged(tenants)
        seq = self.last_seq()
        self.assertEqual(self.kb.run(cfg).rc, 0)
        writes = [c["operation"] for c in self.calls_since(seq)
                  if not c["operation"].startswith(READS)]
        self.assertEqual(writes, [])

    def test_untagged_bucket_without_record_is_still_refused(self):
        t = Tenant("dr", "acme-dial-refused", "read-only")
        self.fa.aws("s3api", "create-bucket", "--bucket", t.bucket)
        r = self.kb.run(self.kb.config([t]))
        self.assertEqual(r.rc, 1, r)
        self.assertIn("refusing to adopt it", r.summary["dr"][1])
        self.assertEqual(self.fa.state()["services"]["s3"]["buckets"][t.bucket].get("tags") or {},
                         {})


class TestCrash(ProvisionCase):
    DELAY_MS = 1500

    def _wait(self, what, predicate, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        self.fail(f"timed out waiting for {what}")

    def _crash_at(self, op, occurrence, tenants, cfg):
        """Freezes the (occurrence+1)-th call of operation op in a fresh run, kills keybrokerd
        with SIGKILL while AWS carries it out, and lets it land. Returns the operation that was
        frozen, or None when the run made fewer such calls. (Points are named by operation, not
        by position in the call log: the two tenants and the bucket and user chains run
        concurrently, so positions interleave differently from run to run.)"""
        seq = self.last_seq()
        self.fa.fault(kind="delay", delay_ms=self.DELAY_MS, operation=op, skip=occurrence,
                      count=1)
        p = self.kb.popen(cfg)
        self.addCleanup(lambda: p.poll() is None and p.kill())

        def fired():
            if not self.fa.control("GET", "/_fakeaws/faults")["rules"]:
                return "fired"
            return "exited" if p.poll() is not None else None
        outcome = self._wait("the frozen call", fired)
        if outcome == "exited":
            self.fa.control("DELETE", "/_fakeaws/faults")
            p.communicate()
            return None
        p.kill()
        p.communicate()
        self.assertEqual(p.returncode, -9)
        # AWS carries the frozen call out although nobody waits for its answer any more (the
        # log records a call when it is answered, with the fault that hit it).
        frozen = self._wait("the frozen call to land",
                            lambda: [c for c in self.calls_since(seq) if c["fault"] == "delay"])
        return frozen[0]["operation"]

    def test_kill9_at_every_call_of_a_fresh_run(self):
        # How many calls a fresh run of two tenants makes (the points to crash at).
        probe = [Tenant("ca", "acme-count-a", "read-write", "x/"),
                 Tenant("cb", "acme-count-b", "read-only")]
        seq = self.last_seq()
        self.assertEqual(self.kb.run(self.kb.config(probe, name="count.json")).rc, 0)
        ops = [c["operation"] for c in self.calls_since(seq)]
        self.assertGreaterEqual(len(ops), 20)
        # Every call of the run is one crash point: (operation, how many came before it).
        crash_points = [(op, ops[:i].count(op)) for i, op in enumerate(ops)]
        points, orphans, frozen_ops = [], {}, []
        for k, (op, occurrence) in enumerate(crash_points):
            tenants = [Tenant(f"k{k}a", f"acme-kill-{k}-a", "read-write", "x/"),
                       Tenant(f"k{k}b", f"acme-kill-{k}-b", "read-only")]
            cfg = self.kb.config(tenants, name=f"kill{k}.json")
            with self.subTest(k=k):
                frozen = self._crash_at(op, occurrence, tenants, cfg)
                self.assertEqual(frozen, op, f"the run made fewer than {occurrence + 1} {op}")
                frozen_ops.append(frozen)
                before_keys = {k2["id"] for t in tenants
                               for k2 in users(self.fa.state()).get(t.user, {})
                               .get("access_keys", [])}
                r = self.kb.run(cfg)
                self.assertEqual(r.rc, 0, r)
                # converged; the only unreferenced key allowed is one the killed run created
                # and could not store, still younger than aws.orphan_key_min_age
                state = self.fa.state()
                young = set()
                for t in tenants:
                    refs = {v["access_key_id"] for v in secrets(state)[t.secret]["versions"]
                            if v["stages"]}
                    mine = {x["id"] for x in users(state)[t.user]["access_keys"]
                            if x["id"] not in refs}
                    # at most the one key of this tenant the killed run created but did not store
                    self.assertLessEqual(len(mine), 1)
                    young |= mine
                if young:
                    orphans[k] = young
                # (the frozen call may be another tenant's: both run concurrently)
                self.assertLessEqual(young, before_keys)
                # (check_invariants looks at every managed user: earlier points' orphans too)
                self.assertConverged(tenants, allow=set().union(*orphans.values()))
                points.append((k, tenants, cfg))
        self.assertGreaterEqual(len(points), 20)
        self.assertIn("CreateAccessKey", frozen_ops)
        self.assertIn("CreateSecret", frozen_ops)
        # Once the orphans are older than aws.orphan_key_min_age (1 minute), a run deletes them
        # (AWS's clock moves on: every key's CreateDate a minute back, as if a minute had passed).
        self.fa.control("POST", "/_fakeaws/age-keys", {"seconds": 61})
        everyone = []
        for k, tenants, cfg in points:
            with self.subTest(k=k, phase="after the orphans aged"):
                r = self.kb.run(cfg)
                self.assertEqual(r.rc, 0, r)
                # the log names each deleted key (the step's message, which peers see, does not)
                names = {t.name for t in tenants}
                deleted = {l["access_key_id"] for l in r.logs
                           if l.get("event") == "orphan-key-deleted" and l.get("tenant") in names}
                self.assertEqual(deleted, orphans.get(k, set()))
                self.assertEqual(sum(len(r.events(t.name, "orphan-keys", "done"))
                                     for t in tenants), len(deleted))
                self.assertNotIn("AKIA", r.out)
                everyone += tenants
        self.assertConverged(everyone)
        self.assertInvariants()


def _stable(obj):
    """State without the fields that change on reads (last access dates)."""
    if isinstance(obj, dict):
        return {k: _stable(v) for k, v in obj.items()
                if k not in ("last_accessed", "last_used", "calls")}
    if isinstance(obj, list):
        return [_stable(v) for v in obj]
    return obj


if __name__ == "__main__":
    unittest.main()
