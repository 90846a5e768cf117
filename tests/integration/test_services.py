"""The typed AWS calls (broker/aws iam.h, s3.h, secretsmanager.h, sts.h) against fakeaws.

Each test starts a private fakeaws (over TLS unless it says otherwise), runs the C driver
itest_services with one or more scenarios, and checks the typed results it printed against
fakeaws's state and call log. After each run every secret value the driver stored, and with it
every SecretAccessKey fakeaws issued to it, is read back with awscli and searched for in the
driver's stdout and stderr: none may appear.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import ROOT_KEY_ID, ROOT_SECRET, FakeAWS

BIN = os.path.join(os.environ.get("KB_ITEST_BIN_DIR", ""), "itest_services")
PROXY_VARS = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy",
              "no_proxy", "NO_PROXY")
TENANT, BUCKET = "t1", "kb-t1-bucket"
USER, SECRET = "kb-t1", "keybroker/t1"
TENANT_TAGS = {"keybroker:tenant": TENANT, "keybroker:managed": "true"}
BOUNDARY = "arn:aws:iam::aws:policy/AmazonS3FullAccess"
ANCHORS = "kb-audit-anchors"  # the anchors scenario's bucket, made with Object Lock by the test
ANCHOR_KEY = "anchors/host a+b/000001.json"

# Every typed call of the four modules: each must be exercised by the scenarios.
ALL_OPERATIONS = {
    "iam": {"CreateUser", "GetUser", "TagUser", "ListUserTags", "PutUserPolicy",
            "GetUserPolicy", "DeleteUserPolicy", "DeleteUser", "CreateAccessKey",
            "ListAccessKeys", "UpdateAccessKey", "DeleteAccessKey"},
    "s3": {"CreateBucket", "PutPublicAccessBlock", "GetPublicAccessBlock", "PutBucketEncryption",
           "PutBucketOwnershipControls", "PutBucketPolicy", "GetBucketPolicy",
           "PutBucketTagging", "GetBucketTagging", "HeadBucket", "DeleteBucket",
           "PutObject", "GetObject", "ListObjectVersions"},
    "secretsmanager": {"CreateSecret", "DescribeSecret", "PutSecretValue",
                       "UpdateSecretVersionStage", "ListSecretVersionIds", "DeleteSecret",
                       "TagResource", "GetSecretValue"},
    "sts": {"GetCallerIdentity"},
}


# A preloaded free()/realloc() that aborts when a block about to be released still holds the
# needle (KB_NEEDLE): run under it, a unit test proves that no ordinary heap block that held a
# secret is released unwiped, by this code or by expat, json-c and libc underneath it.
FREECHECK_C = r"""
#define _GNU_SOURCE
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
extern void __libc_free(void *);
extern void *__libc_realloc(void *, size_t);
static void check(void *p)
{
    const char *needle = getenv("KB_NEEDLE");
    static const char msg[] = "freecheck: a released heap block holds the needle\n";
    if (p == NULL || needle == NULL || needle[0] == 0)
        return;
    if (memmem(p, malloc_usable_size(p), needle, strlen(needle)) != NULL) {
        if (write(2, msg, sizeof(msg) - 1) < 0) {}
        abort();
    }
}
void free(void *p) { check(p); __libc_free(p); }
void *realloc(void *p, size_t n) { check(p); return __libc_realloc(p, n); }
"""


class Run:
    """One driver run: its parsed lines and its raw output."""

    def __init__(self, proc):
        self.stdout, self.stderr = proc.stdout, proc.stderr
        self.lines = [json.loads(l) for l in proc.stdout.splitlines() if l.strip()]
        self.steps = [l for l in self.lines if "step" in l]
        done = [l for l in self.lines if l.get("done")]
        self.done = done[0] if done else None

    def step(self, name, n=0):
        found = [l for l in self.steps if l["step"] == name]
        if len(found) <= n:
            raise AssertionError(f"no step {name}#{n} in {self.stdout}")
        return found[n]


class ServicesTest(unittest.TestCase):
    tls = True

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kb-svc-")
        cls.cert = os.path.join(cls.tmp, "cert.pem")
        cls.key = os.path.join(cls.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", cls.key, "-out", cls.cert], check=True, capture_output=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.outputs = []
        self.start_fakeaws()

    def start_fakeaws(self, region="us-east-1", tls=True):
        self.fa = FakeAWS(region=region, tls=(self.cert, self.key) if tls else None).start()
        self.addCleanup(self.fa.stop)

    # -- running the driver ---------------------------------------------------------------------

    def run_driver(self, scenario, tenant=TENANT, bucket=BUCKET, expect_failed=0):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and k not in PROXY_VARS}
        env.update({
            "AWS_ENDPOINT_URL": self.fa.endpoint,
            "AWS_ACCESS_KEY_ID": ROOT_KEY_ID, "AWS_SECRET_ACCESS_KEY": ROOT_SECRET,
            "AWS_REGION": self.fa.region, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "KB_ITEST_RETRY_BASE_MS": "20",
        })
        if self.fa.tls:
            env["AWS_CA_BUNDLE"] = self.fa.tls[0]
        p = subprocess.run([BIN, scenario, tenant, bucket], env=env, capture_output=True,
                           text=True, timeout=300)
        self.outputs.append(p.stdout + p.stderr)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn(ROOT_SECRET, p.stdout + p.stderr)
        run = Run(p)
        self.assertIsNotNone(run.done, p.stdout)
        self.assertTrue(run.done["client_closed"], run.done)
        if expect_failed is not None:
            self.assertEqual(run.done["failed"], expect_failed,
                             [s for s in run.steps if not s["ok"]])
        return run

    # -- fakeaws views --------------------------------------------------------------------------

    def services(self):
        return self.fa.state()["services"]

    def secret_state(self, name=SECRET):
        found = [s for s in self.services()["secretsmanager"]["secrets"] if s["name"] == name]
        return found[0] if found else None

    def calls(self, operation=None):
        return [c for c in self.fa.calls() if operation is None or c["operation"] == operation]

    def assert_no_secret_leaked(self, name=SECRET):
        """Reads every version of the secret back with awscli, takes the SecretAccessKey out of
        each value, and searches the driver's outputs for it. Returns the keys found."""
        state = self.secret_state(name)
        self.assertIsNotNone(state, f"secret {name} not in fakeaws")
        keys = []
        for v in state["versions"]:
            out = self.fa.aws("secretsmanager", "get-secret-value", "--secret-id", name,
                              "--version-id", v["version_id"])
            value = json.loads(out["SecretString"])
            self.assertEqual(value["Version"], 1)
            self.assertEqual(value["AccessKeyId"], v["access_key_id"])
            keys.append(value["SecretAccessKey"])
        self.assertTrue(keys)
        for key in keys:
            self.assertGreaterEqual(len(key), 20)
            for out in self.outputs:
                self.assertNotIn(key, out, "a SecretAccessKey appeared in the driver's output")
        return keys

    # -- the tests ------------------------------------------------------------------------------

    def test_tenant_sequence_matches_state_and_log(self):
        run = self.run_driver("tenant")
        order = [s["step"] for s in run.steps]
        self.assertEqual(order[:10], [
            "CreateBucket", "PutPublicAccessBlock", "PutBucketEncryption",
            "PutBucketOwnershipControls", "PutBucketPolicy", "PutBucketTagging", "CreateUser",
            "PutUserPolicy", "CreateAccessKey", "CreateSecret"])
        svc = self.services()

        # The bucket chain, as S3 stored it.
        b = svc["s3"]["buckets"][BUCKET]
        self.assertEqual(b["public_access_block"], {
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True})
        self.assertEqual(b["encryption"]["SSEAlgorithm"], "AES256")
        self.assertEqual(b["ownership_controls"], "BucketOwnerEnforced")
        self.assertEqual(b["tags"], TENANT_TAGS)
        sent_policy = run.step("GetBucketPolicy")
        self.assertTrue(sent_policy["matches_put"])
        self.assertEqual(b["policy"], json.loads(sent_policy["policy"]))
        self.assertEqual(b["policy"]["Statement"][0]["Condition"],
                         {"Bool": {"aws:SecureTransport": "false"}})
        self.assertEqual(run.step("GetBucketTagging")["tags"], TENANT_TAGS)
        pab = run.step("GetPublicAccessBlock")
        self.assertTrue(all(pab[k] for k in ("block_public_acls", "ignore_public_acls",
                                             "block_public_policy", "restrict_public_buckets")))
        head = run.step("HeadBucket")
        self.assertEqual((head["exists"], head["region"]), (True, "us-east-1"))
        # Content-MD5 was required and accepted on every Put of the chain.
        for op in ("PutPublicAccessBlock", "PutBucketEncryption", "PutBucketOwnershipControls",
                   "PutBucketPolicy", "PutBucketTagging"):
            self.assertEqual([c["error"] for c in self.calls(op)], [None], op)

        # The user chain, as IAM stored it.
        u = svc["iam"]["users"][USER]
        created = run.step("CreateUser")
        self.assertEqual((created["user_name"], created["user_id"], created["arn"],
                          created["path"], created["boundary"]),
                         (USER, u["id"], u["arn"], "/keybroker/", BOUNDARY))
        self.assertEqual(u["path"], "/keybroker/")
        self.assertEqual(u["boundary"], BOUNDARY)
        self.assertEqual(created["tags"], TENANT_TAGS)
        self.assertAlmostEqual(created["create_date"], u["created"], delta=1.5)
        self.assertEqual(u["tags"], dict(TENANT_TAGS, **{"keybroker:owner": "itest"}))
        self.assertEqual(run.step("ListUserTags")["tags"], u["tags"])
        self.assertEqual(run.step("GetUser")["user_id"], u["id"])
        pol = run.step("GetUserPolicy")
        self.assertTrue(pol["matches_put"])
        self.assertEqual(json.loads(pol["policy_document"]), u["inline_policies"]["keybroker-s3"]
                         if isinstance(u["inline_policies"]["keybroker-s3"], dict)
                         else json.loads(u["inline_policies"]["keybroker-s3"]))

        # The new key: issued, stored in the secret, and used by the probe.
        key = run.step("CreateAccessKey")
        key_id = key["access_key_id"]
        self.assertEqual((key["status"], key["user_name"], key["secret_len"]),
                         ("Active", USER, 40))
        self.assertEqual([(k["id"], k["status"]) for k in u["access_keys"]],
                         [(key_id, "Active")])
        self.assertEqual([k["access_key_id"] for k in run.step("ListAccessKeys")["keys"]],
                         [key_id])
        s = self.secret_state()
        created_secret = run.step("CreateSecret")
        self.assertEqual((created_secret["arn"], created_secret["name"]), (s["arn"], SECRET))
        self.assertEqual(len(s["versions"]), 1)
        v = s["versions"][0]
        self.assertEqual((v["version_id"], v["stages"], v["access_key_id"]),
                         (created_secret["version_id"], ["AWSCURRENT"], key_id))
        self.assertEqual(v["client_request_token"], created_secret["version_id"])
        self.assertEqual({t["Key"]: t["Value"] for t in s["tags"]},
                         dict(TENANT_TAGS, **{"keybroker:owner": "itest"}))
        desc = run.step("DescribeSecret")
        self.assertEqual(desc["arn"], s["arn"])
        self.assertEqual([(x["version_id"], x["stages"]) for x in desc["versions"]],
                         [(v["version_id"], ["AWSCURRENT"])])
        self.assertEqual(desc["tags"], TENANT_TAGS)
        value = run.step("GetSecretValue-AWSCURRENT")
        self.assertEqual((value["value_matches"], value["access_key_id"], value["bucket"],
                          value["region"], value["secret_len"]),
                         (True, key_id, BUCKET, "us-east-1", 40))

        # The readiness probe was signed with the NEW key; everything else with the root key.
        ident = run.step("probe-GetCallerIdentity")
        self.assertEqual((ident["arn"], ident["user_id"], ident["account"]),
                         (u["arn"], u["id"], self.fa.state()["account_id"]))
        probe_head = run.step("probe-HeadBucket")
        self.assertEqual((probe_head["exists"], probe_head["region"]), (True, "us-east-1"))
        by_key = {}
        for c in self.calls():
            by_key.setdefault(c["key_id"], []).append(c["operation"])
        self.assertEqual(by_key[key_id], ["GetCallerIdentity", "HeadBucket"])
        self.assertEqual(set(by_key), {ROOT_KEY_ID, key_id})
        self.assertEqual(len(self.calls()), len(run.steps))

        keys = self.assert_no_secret_leaked()
        self.assertEqual(len(keys), 1)
        self.assertEqual(len(keys[0]), key["secret_len"])

    def test_rotation_moves_labels(self):
        tenant = self.run_driver("tenant")
        old_key = tenant.step("CreateAccessKey")["access_key_id"]
        old_version = tenant.step("CreateSecret")["version_id"]
        run = self.run_driver("rotate")
        self.assertEqual(run.step("GetSecretValue-AWSCURRENT")["access_key_id"], old_key)
        new_key = run.step("CreateAccessKey")["access_key_id"]
        self.assertNotEqual(new_key, old_key)
        put = run.step("PutSecretValue-AWSPENDING")
        new_version = put["version_id"]
        self.assertEqual(put["stages"], ["AWSPENDING"])
        self.assertTrue(run.step("GetSecretValue-AWSPENDING")["value_matches"])
        self.assertEqual(run.step("probe-GetCallerIdentity")["arn"],
                         self.services()["iam"]["users"][USER]["arn"])
        # After AWSCURRENT moved (RemoveFromVersionId = old): the old version is AWSPREVIOUS.
        listed = {v["version_id"]: set(v["stages"])
                  for v in run.step("ListSecretVersionIds")["versions"]}
        self.assertEqual(listed, {old_version: {"AWSPREVIOUS"}, new_version: {"AWSCURRENT"}})
        described = {v["version_id"]: set(v["stages"])
                     for v in run.step("DescribeSecret", 1)["versions"]}
        self.assertEqual(described, listed)
        s = self.secret_state()
        state_versions = {v["version_id"]: (set(v["stages"]), v["access_key_id"])
                          for v in s["versions"]}
        self.assertEqual(state_versions, {old_version: ({"AWSPREVIOUS"}, old_key),
                                          new_version: ({"AWSCURRENT"}, new_key)})
        # The old key was deactivated, then deleted.
        before = {k["access_key_id"]: k["status"] for k in run.step("ListAccessKeys", 0)["keys"]}
        self.assertEqual(before, {old_key: "Inactive", new_key: "Active"})
        after = [k["access_key_id"] for k in run.step("ListAccessKeys", 1)["keys"]]
        self.assertEqual(after, [new_key])
        self.assertEqual([(k["id"], k["status"])
                          for k in self.services()["iam"]["users"][USER]["access_keys"]],
                         [(new_key, "Active")])
        final = run.step("GetSecretValue-AWSCURRENT", 1)
        self.assertEqual((final["access_key_id"], final["value_matches"]), (new_key, True))
        stage_calls = self.calls("UpdateSecretVersionStage")
        self.assertEqual([c["error"] for c in stage_calls], [None, None])
        probe = [c for c in self.calls("GetCallerIdentity") if c["key_id"] == new_key]
        self.assertEqual(len(probe), 1)
        keys = self.assert_no_secret_leaked()
        self.assertEqual(len(keys), 2)
        self.assertNotEqual(keys[0], keys[1])

    def test_cleanup_removes_everything(self):
        self.run_driver("tenant")
        self.assert_no_secret_leaked()  # read while the secret still exists
        run = self.run_driver("cleanup", expect_failed=2)
        for name in ("DeleteAccessKey-0", "DeleteUserPolicy", "DeleteUser", "DeleteSecret-force",
                     "DeleteBucket"):
            self.assertTrue(run.step(name)["ok"], run.step(name))
        self.assertEqual(run.step("DeleteBucket")["status"], 204)
        self.assertEqual(run.step("DeleteSecret-force")["name"], SECRET)
        gone = run.step("GetUser")
        self.assertEqual((gone["ok"], gone["err"], gone["code"], gone["status"]),
                         (False, "KB_EAWS", "NoSuchEntity", 404))
        self.assertEqual(run.step("HeadBucket")["exists"], False)
        self.assertEqual(run.step("DescribeSecret")["code"], "ResourceNotFoundException")
        svc = self.services()
        self.assertNotIn(USER, svc["iam"]["users"])
        self.assertNotIn(BUCKET, svc["s3"]["buckets"])
        self.assertIsNone(self.secret_state())
        self.assertEqual([k["id"] for k in self.fa.state()["access_keys"]], [ROOT_KEY_ID])

    def test_errors_surface_with_codes(self):
        run = self.run_driver("errors", expect_failed=5)
        for step, code, status in (("GetUser", "NoSuchEntity", 404),
                                   ("DeleteUser", "NoSuchEntity", 404),
                                   ("GetBucketPolicy", "NoSuchBucketPolicy", 404)):
            r = run.step(step)
            self.assertEqual((r["ok"], r["err"], r["code"], r["status"], r["operation"]),
                             (False, "KB_EAWS", code, status, step))
            self.assertTrue(r["request_id"])
        first, again = run.step("CreateSecret-plain", 0), run.step("CreateSecret-plain", 1)
        self.assertTrue(first["ok"])
        self.assertIsNone(first["version_id"])
        self.assertEqual((again["ok"], again["code"]), (False, "ResourceExistsException"))
        dup = run.step("CreateBucket", 1)
        self.assertEqual((dup["ok"], dup["code"], dup["status"]),
                         (False, "BucketAlreadyOwnedByYou", 409))
        # Calls without a result turned into typed results.
        self.assertEqual(run.step("HeadBucket")["exists"], False)
        self.assertEqual(run.step("GetBucketTagging")["tags"], {})
        self.assertEqual(self.calls("GetBucketTagging")[0]["error"], "NoSuchTagSet")
        # Scheduled deletion with a recovery window.
        deletion = run.step("DeleteSecret-window")
        s = self.secret_state()
        self.assertTrue(s["scheduled_for_deletion"])
        self.assertAlmostEqual(deletion["deletion_date"], s["deletion_date"], delta=1.5)
        self.assertAlmostEqual(deletion["deletion_date"] - time.time(), 7 * 86400, delta=120)
        self.assertEqual(run.step("DescribeSecret", 1)["deleted_date"],
                         int(deletion["deletion_date"]))
        self.assertEqual(run.step("DescribeSecret", 0)["deleted_date"], 0)
        # Non-default bucket settings round-trip.
        pab = run.step("GetPublicAccessBlock")
        self.assertEqual((pab["block_public_acls"], pab["ignore_public_acls"],
                          pab["block_public_policy"], pab["restrict_public_buckets"]),
                         (True, False, True, False))
        kms = [c for c in self.calls("PutBucketEncryption")]
        self.assertEqual([c["error"] for c in kms], [None])
        self.assertEqual(self.calls("DeleteBucket")[0]["error"], None)

    def test_every_typed_call_is_exercised(self):
        self.run_driver("tenant")
        self.run_driver("rotate")
        self.assert_no_secret_leaked()
        self.run_driver("cleanup", expect_failed=2)
        self.run_driver("errors", tenant="t2", bucket="kb-t2-bucket", expect_failed=5)
        self.make_anchor_bucket()
        self.run_driver("anchors", bucket=ANCHORS, expect_failed=1)
        seen = {}
        for c in self.calls():
            if c["error"] is None and 200 <= c["status"] < 300:
                seen.setdefault(c["service"], set()).add(c["operation"])
        for service, ops in ALL_OPERATIONS.items():
            self.assertEqual(ops - seen.get(service, set()), set(), service)

    def make_anchor_bucket(self):
        self.fa.aws("s3api", "create-bucket", "--bucket", ANCHORS,
                    "--object-lock-enabled-for-bucket")

    def test_anchors_in_an_object_lock_bucket(self):
        self.make_anchor_bucket()
        start = time.time()
        run = self.run_driver("anchors", bucket=ANCHORS, expect_failed=1)
        state = {o["version_id"]: o for o in self.services()["s3"]["buckets"][ANCHORS]["objects"]}
        locked, rewrite = run.step("PutObject-COMPLIANCE"), run.step("PutObject-rewrite")
        self.assertTrue(locked["version_id"] and rewrite["version_id"])
        self.assertNotEqual(locked["version_id"], rewrite["version_id"])
        self.assertEqual(locked["etag"], state[locked["version_id"]]["etag"])
        held = state[locked["version_id"]]
        self.assertEqual((held["key"], held["lock_mode"]), (ANCHOR_KEY, "COMPLIANCE"))
        self.assertAlmostEqual(held["retain_until"], start + 86400, delta=60)
        self.assertEqual(state[run.step("PutObject-2")["version_id"]]["lock_mode"], "GOVERNANCE")
        self.assertIsNone(state[rewrite["version_id"]]["lock_mode"])
        # Read back by version id: the locked anchor, its lock; the current one is the rewrite.
        got = run.step("GetObject-version")
        self.assertEqual((got["body"], got["version_id"], got["lock_mode"], got["retain_until"]),
                         ('{"seq":1,"h":"aa"}', locked["version_id"], "COMPLIANCE",
                          int(held["retain_until"])))
        cur = run.step("GetObject-current")
        self.assertEqual((cur["body"], cur["version_id"], cur["lock_mode"]),
                         ('{"seq":1,"h":"forged"}', rewrite["version_id"], None))
        big = run.step("GetObject-too-big")
        self.assertEqual((big["ok"], big["err"], big["status"]), (False, "KB_ETOOBIG", 200))
        # Every version, 2 a page, exactly once, in S3's order (keys ascending, newest first).
        pages = [s for s in run.steps if s["step"] == "ListObjectVersions"]
        self.assertEqual([(len(p["versions"]), p["is_truncated"]) for p in pages],
                         [(2, True), (2, True), (1, False)])
        listed = [(v["key"], v["version_id"], v["is_latest"], v["size"], v["etag"])
                  for p in pages for v in p["versions"]]
        expect = [(o["key"], o["version_id"], o["latest"], o["size"], o["etag"])
                  for o in self.services()["s3"]["buckets"][ANCHORS]["objects"]]
        self.assertEqual(sorted(listed), sorted(expect))
        self.assertEqual([l[0] for l in listed], sorted(l[0] for l in listed))
        self.assertEqual(listed[-2:], [(ANCHOR_KEY, rewrite["version_id"], True, 22,
                                        state[rewrite["version_id"]]["etag"]),
                                       (ANCHOR_KEY, locked["version_id"], False, 18,
                                        held["etag"])])
        self.assertEqual(pages[0]["next_key_marker"], "anchors/000003.json")
        # The locked anchor cannot be deleted, whatever the bypass; a plain delete only hides it.
        for extra in ((), ("--bypass-governance-retention",)):
            err = self.fa.aws_error("s3api", "delete-object", "--bucket", ANCHORS, "--key",
                                    ANCHOR_KEY, "--version-id", locked["version_id"], *extra)
            self.assertEqual((err.code, err.message),
                             ("AccessDenied",
                              "Access Denied because object protected by object lock."))
        self.assertTrue(self.fa.aws("s3api", "delete-object", "--bucket", ANCHORS, "--key",
                                    ANCHOR_KEY)["DeleteMarker"])
        still = {o["version_id"] for o in self.services()["s3"]["buckets"][ANCHORS]["objects"]}
        self.assertIn(locked["version_id"], still)
        puts = self.calls("PutObject")
        self.assertEqual([c["error"] for c in puts], [None] * 5)

    def test_region_sends_location_constraint(self):
        self.fa.stop()
        self.start_fakeaws(region="eu-west-1")
        run = self.run_driver("tenant")
        b = self.services()["s3"]["buckets"][BUCKET]
        self.assertEqual((b["region"], b["location_constraint"]), ("eu-west-1", "eu-west-1"))
        self.assertEqual(run.step("probe-HeadBucket")["region"], "eu-west-1")
        self.assertEqual(run.step("GetSecretValue-AWSCURRENT")["region"], "eu-west-1")
        self.assert_no_secret_leaked()

    def test_probe_refused_without_tls_by_the_bucket_policy(self):
        # Plain HTTP, with fakeaws told that plain HTTP is not secure transport: the bucket
        # policy's deny-non-TLS statement must stop the new key's HeadBucket.
        self.fa.stop()
        self.start_fakeaws(tls=False)
        self.fa.control("POST", "/_fakeaws/config", {"plain_http_is_secure": False})
        run = self.run_driver("tenant", expect_failed=None)
        self.assertTrue(run.step("probe-GetCallerIdentity")["ok"])
        head = run.step("probe-HeadBucket")
        # A HEAD response has no body: the code comes from the status, as in the SDKs.
        self.assertEqual((head["ok"], head["err"], head["status"], head["code"]),
                         (False, "KB_EAWS", 403, "Forbidden"))
        key_id = run.step("CreateAccessKey")["access_key_id"]
        denied = [c for c in self.calls("HeadBucket") if c["key_id"] == key_id]
        self.assertEqual([(c["status"], c["error"]) for c in denied], [(403, "AccessDenied")])
        self.assert_no_secret_leaked()

    def test_probe_before_the_key_propagated(self):
        self.fa.control("POST", "/_fakeaws/config", {"key_propagation_delay": 60.0})
        run = self.run_driver("tenant", expect_failed=None)
        ident = run.step("probe-GetCallerIdentity")
        self.assertEqual((ident["ok"], ident["err"], ident["attempts"]), (False, "KB_EAWS", 1))
        self.assertEqual(ident["code"], "InvalidClientTokenId")
        self.assertEqual(run.step("probe-HeadBucket")["ok"], False)
        self.assertTrue(run.step("CreateSecret")["ok"])
        self.assert_no_secret_leaked()


class HeapHygieneTest(unittest.TestCase):
    """The secret-handling unit tests of iam, secretsmanager and xml, run with FREECHECK_C
    preloaded and the secret they use as the needle."""

    NEEDLE = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"

    @classmethod
    def setUpClass(cls):
        cls.tests_dir = os.path.join(os.environ.get("KB_BUILD_DIR", ""), "tests")
        cc = shutil.which("cc") or shutil.which("gcc")
        probe = os.path.join(cls.tests_dir, "test_iam")
        if cc is None or not os.path.exists(probe):
            raise unittest.SkipTest("no C compiler or no unit test binaries")
        ldd = subprocess.run(["ldd", probe], capture_output=True, text=True).stdout
        if "libasan" in ldd or "libtsan" in ldd:
            raise unittest.SkipTest("sanitizer builds own malloc: nothing to preload")
        cls.tmp = tempfile.mkdtemp(prefix="kb-freecheck-")
        src = os.path.join(cls.tmp, "freecheck.c")
        cls.lib = os.path.join(cls.tmp, "freecheck.so")
        with open(src, "w") as f:
            f.write(FREECHECK_C)
        subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", cls.lib, src], check=True,
                       capture_output=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_unit(self, binary, case, needle):
        env = dict(os.environ, LD_PRELOAD=self.lib, KB_NEEDLE=needle)
        p = subprocess.run([os.path.join(self.tests_dir, binary), case], env=env,
                           capture_output=True, text=True, timeout=120)
        return p.returncode, p.stdout + p.stderr

    def test_the_check_catches_an_unwiped_block(self):
        # The XML reader keeps an element's text as ordinary heap text unless it is named a
        # secret element: with no secret path the needle is released unwiped, and caught.
        rc, out = self.run_unit("test_xml", "test_tree_structure", self.NEEDLE)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("freecheck:", out)

    def test_secret_paths_leave_nothing_behind(self):
        for binary, case, needle in (
                ("test_xml", "test_secret_goes_to_guarded_memory", self.NEEDLE),
                ("test_xml", "test_secret_not_taken_is_freed", self.NEEDLE),
                ("test_iam", "test_create_access_key_takes_secret", self.NEEDLE),
                ("test_iam", "test_create_access_key_secret_left_is_destroyed", self.NEEDLE),
                ("test_iam", "test_create_access_key_failures", "s3cr3t"),
                ("test_secretsmanager", "test_create_secret_request", self.NEEDLE),
                ("test_secretsmanager", "test_get_secret_value", self.NEEDLE),
                ("test_secretsmanager", "test_get_secret_value_malformed", "hunter2"),
                ("test_secretsmanager", "test_key_secret_roundtrip", self.NEEDLE),
                ("test_secretsmanager", "test_key_secret_parse_refuses", "hunter2")):
            rc, out = self.run_unit(binary, case, needle)
            self.assertEqual(rc, 0, f"{binary} {case}:\n{out}")


class TransportHeapHygieneTest(unittest.TestCase):
    """A secret read over TLS crosses OpenSSL's record buffers and libcurl's receive buffer.
    With kb_wipealloc_install() those libraries wipe what they free: run the driver under
    FREECHECK_C with the secret as the needle. The control run (the allocator not installed)
    proves the check sees those buffers at all."""

    NEEDLE = "kbNeedle/SecretAccessKey0123456789abcdef"

    # The TLS fakeaws set-up of ServicesTest, without its test methods.
    setUpClass = ServicesTest.__dict__["setUpClass"]
    tearDownClass = ServicesTest.__dict__["tearDownClass"]
    start_fakeaws = ServicesTest.start_fakeaws

    def setUp(self):
        cc = shutil.which("cc") or shutil.which("gcc")
        ldd = subprocess.run(["ldd", BIN], capture_output=True, text=True).stdout
        if cc is None or "libasan" in ldd:
            raise unittest.SkipTest("sanitizer builds own malloc: nothing to preload")
        self.outputs = []
        self.start_fakeaws()
        self.lib = os.path.join(self.tmp, "freecheck.so")
        if not os.path.exists(self.lib):
            src = os.path.join(self.tmp, "freecheck.c")
            with open(src, "w") as f:
                f.write(FREECHECK_C)
            subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", self.lib, src], check=True,
                           capture_output=True)
        value = json.dumps({"Version": 1, "AccessKeyId": "AKIANEEDLE0000000000",
                            "SecretAccessKey": self.NEEDLE, "Bucket": BUCKET,
                            "Region": "us-east-1"})
        self.fa.aws("secretsmanager", "create-secret", "--name", SECRET, "--secret-string", value)

    def run_checked(self, extra_env):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and k not in PROXY_VARS}
        env.update({
            "AWS_ENDPOINT_URL": self.fa.endpoint, "AWS_CA_BUNDLE": self.fa.tls[0],
            "AWS_ACCESS_KEY_ID": ROOT_KEY_ID, "AWS_SECRET_ACCESS_KEY": ROOT_SECRET,
            "AWS_REGION": self.fa.region, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "LD_PRELOAD": self.lib, "KB_NEEDLE": self.NEEDLE,
        })
        env.update(extra_env)
        return subprocess.run([BIN, "read", TENANT, BUCKET], env=env, capture_output=True,
                              text=True, timeout=120)

    def test_tls_buffers_are_wiped(self):
        p = self.run_checked({})
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        step = Run(p).step("GetSecretValue-AWSCURRENT")
        self.assertTrue(step["ok"], step)
        self.assertNotIn(self.NEEDLE, p.stdout + p.stderr)

    def test_control_without_the_allocator_is_caught(self):
        p = self.run_checked({"KB_ITEST_NO_WIPEALLOC": "1"})
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("freecheck:", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
