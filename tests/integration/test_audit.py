"""The audit log (issue 13) on the real daemon against fakeaws: what is recorded, the chain across
SIGHUP reopens and restarts, fail_closed with an unwritable log and its recovery, anchors in an
Object Lock bucket, and that no secret reaches the log.

Every record is read back as JSON; the chain is checked by `kbctl audit verify` (with the K_0 key
file made by `kbctl audit init`) where that command exists, and by this file's own reading of
chain.h's format (an independent re-implementation in Python: SHA-256 links and HMAC tags under
the HKDF-evolved epoch key) always. Each test ends with brokerfix's secret scan (which also scans
the audit files) and the DESIGN.md section 6 invariants.
"""

import hashlib
import hmac
import json
import os
import shutil
import signal
import stat
import struct
import subprocess
import time

from brokerfix import KBCTL, BrokerTestCase, line
from invariants import check_invariants

HEX_SUFFIX_TAG = len(',"h":"') + 64 + len('","tag":"') + 64 + len('"}')
HEX_SUFFIX = len(',"h":"') + 64 + len('"}')


def hkdf_next(key, epoch):
    """K_e+1 = HKDF-SHA-256(IKM=K_e, no salt, info="keybroker audit epoch key" || be64(e+1))."""
    prk = hmac.new(b"\0" * 32, key, hashlib.sha256).digest()
    info = b"keybroker audit epoch key" + struct.pack(">Q", epoch)
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def split(raw):
    """(body bytes, h hex, tag hex or None) of one line without its newline."""
    if raw.endswith(b'"}') and len(raw) > HEX_SUFFIX_TAG and \
            raw[-HEX_SUFFIX_TAG:].startswith(b',"h":"') and b'","tag":"' in raw[-HEX_SUFFIX_TAG:]:
        s = raw[-HEX_SUFFIX_TAG:]
        return raw[:-HEX_SUFFIX_TAG] + b"}", s[6:70].decode(), s[79:143].decode()
    s = raw[-HEX_SUFFIX:]
    assert s.startswith(b',"h":"'), raw
    return raw[:-HEX_SUFFIX] + b"}", s[6:70].decode(), None


def check_chain(paths, k0=None, standalone=False):
    """Verifies the files (in order) as chain.h says; returns the records. Raises on any break.
    standalone: the first file need not start the chain; it continues from its audit_open's
    prev_h (without k0: tags of a later epoch cannot be checked without deriving from K_0)."""
    prev = b"\0" * 32
    key, key_epoch = k0, 0
    records, seq, epoch, sealed = [], 0, 0, False
    if standalone:
        with open(paths[0], "rb") as f:
            first = json.loads(split(f.readline().rstrip(b"\n"))[0])
        assert first["event"] == "audit_open", paths[0]
        prev, seq, epoch = bytes.fromhex(first["prev_h"]), first["seq"] - 1, first["epoch"]
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        assert data.endswith(b"\n") or data == b"", "%s ends mid-line" % path
        for n, raw in enumerate(data.split(b"\n")[:-1], 1):
            body, h, tag = split(raw)
            rec = json.loads(body)
            where = "%s:%d" % (path, n)
            assert rec["seq"] == seq + 1, "%s: seq %s after %s" % (where, rec["seq"], seq)
            if n == 1:
                assert rec["event"] == "audit_open", where
            if rec["event"] == "audit_open":
                assert rec["prev_h"] == prev.hex(), where
            if sealed:
                assert rec["epoch"] == epoch + 1, "%s: no new epoch after a seal" % where
            else:
                assert rec["epoch"] == epoch, "%s: epoch changed without a seal" % where
            seq, epoch, sealed = rec["seq"], rec["epoch"], rec["event"] == "seal"
            got = hashlib.sha256(prev + body).digest()
            assert got.hex() == h, "%s: h does not recompute" % where
            if k0 is not None:
                while key_epoch < epoch:
                    key_epoch += 1
                    key = hkdf_next(key, key_epoch)
                want = hmac.new(key, got, hashlib.sha256).hexdigest()
                assert tag == want, "%s: tag does not verify under K_%d" % (where, epoch)
            prev = got
            records.append(rec)
    return records


class AuditTestCase(BrokerTestCase):
    chain = "sha256"
    audit_extra = None

    def setUp(self):
        self.audit_dir = None
        self._prepare_audit()
        super().setUp()

    def _prepare_audit(self):
        import tempfile
        self.audit_dir = tempfile.mkdtemp(prefix="kb-audit-test-")
        self.audit_path = os.path.join(self.audit_dir, "audit.log")
        self.state_path = os.path.join(self.audit_dir, "audit.state")
        self.key_path = os.path.join(self.audit_dir, "k0.key")
        audit = {"path": self.audit_path, "state": self.state_path, "chain": self.chain,
                 "epoch": "1h"}
        audit.update(self.audit_extra or {})
        self.broker_extra = dict(self.broker_extra or {})
        self.broker_extra["audit"] = audit
        if self.chain == "hmac-sha256":
            subprocess.run([KBCTL, "audit", "init", "--state", self.state_path,
                            "--key-out", self.key_path], check=True, capture_output=True)
        self.addCleanup(shutil.rmtree, self.audit_dir, True)

    def metrics(self):
        reply = self.broker.raw(line({"v": 1, "op": "metrics"}))[0]
        self.assertTrue(reply.get("ok"), reply)
        out = {}
        for l in reply["result"]["text"].splitlines():
            if l.startswith("keybroker_audit_"):
                name, value = l.split()
                out[name] = int(value)
        return out

    def k0(self):
        with open(self.key_path) as f:
            return bytes.fromhex(json.load(f)["key"])

    def records(self, paths=None, standalone=False):
        return check_chain(paths or [self.audit_path],
                           self.k0() if self.chain == "hmac-sha256" else None, standalone)

    def wait_for(self, pred, timeout=10, what="audit records", standalone=False):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                recs = self.records(standalone=standalone)
                if pred(recs):
                    return recs
            except (AssertionError, OSError, ValueError):
                pass
            time.sleep(0.05)
        raise AssertionError("timed out waiting for %s" % what)

    def tearDown(self):
        self.assertEqual(check_invariants(self.fa.state()), [])
        # The audit files are scanned for every secret fakeaws holds, like the socket bytes.
        self.collect_secrets()
        for name in os.listdir(self.audit_dir):
            with open(os.path.join(self.audit_dir, name), "rb") as f:
                blob = f.read()
            for secret in self.secrets:
                self.assertNotIn(secret.encode(), blob, "a secret reached " + name)


class RecordsTest(AuditTestCase):

    def test_decisions_steps_and_calls_are_recorded(self):
        b = self.broker
        self.arn("alpha")
        b.peer(1001, 1001, [], line({"v": 1, "op": "get", "tenant": "alpha"}))
        recs = self.wait_for(lambda r: any(x.get("event") == "authz" and x.get("result") == "deny"
                                           for x in r))
        events = [r["event"] for r in recs]
        self.assertEqual(events[0], "audit_open")
        self.assertEqual(recs[0]["reason"], "start")
        self.assertEqual(recs[0]["chain"], "sha256")
        self.assertIn("start", events)
        allow = [r for r in recs if r["event"] == "authz" and r["result"] == "allow"
                 and r.get("op") == "get"]
        self.assertTrue(allow)
        self.assertEqual(allow[0]["peer"]["uid"], os.getuid())
        deny = [r for r in recs if r["event"] == "authz" and r["result"] == "deny"][0]
        self.assertEqual((deny["peer"]["uid"], deny["tenant"], deny["op"]), (1001, "alpha", "get"))
        calls = [r for r in recs if r["event"] == "aws_call"]
        ops = {(c["aws"]["service"], c["aws"]["operation"]) for c in calls}
        for want in [("iam", "CreateUser"), ("iam", "CreateAccessKey"), ("s3", "CreateBucket"),
                     ("secretsmanager", "CreateSecret"), ("sts", "GetCallerIdentity")]:
            self.assertIn(want, ops)
        self.assertTrue(all(c["aws"].get("request_id") for c in calls if c["result"] == "ok"))
        steps = [r for r in recs if r["event"] == "step"]
        self.assertTrue(any(s["step"] == "create-key" and s["result"] == "done" for s in steps))
        prov = [r for r in recs if r["event"] == "provisioned"]
        self.assertEqual({p["tenant"] for p in prov}, {"alpha", "beta", "gamma"})
        self.assertTrue(all(p["arn"].startswith("arn:aws:secretsmanager:") for p in prov))
        self.assertEqual(stat.S_IMODE(os.stat(self.audit_path).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.state_path).st_mode), 0o600)

    def test_stop_is_recorded_and_a_restart_continues_the_chain(self):
        b = self.broker
        self.arn("alpha")
        self.assertEqual(b.stop(), 0)
        recs = self.records()
        self.assertEqual(recs[-1]["event"], "stop")
        b.start()
        self.arn("alpha")
        recs = self.wait_for(lambda r: sum(x["event"] == "audit_open" for x in r) == 2)
        opens = [r for r in recs if r["event"] == "audit_open"]
        self.assertEqual(opens[1]["reason"], "start")

    def test_a_rotation_is_recorded_without_its_key(self):
        progress, r = self.broker.run_op({"v": 1, "op": "rotate", "id": "r", "tenant": "alpha"},
                                         timeout=60)
        self.assertTrue(r["ok"], r)
        recs = self.wait_for(lambda r: any(x["event"] == "rotated" for x in r))
        rot = [x for x in recs if x["event"] == "rotated"][0]
        self.assertEqual(rot["tenant"], "alpha")
        self.assertTrue(rot["version_id"])
        self.assertTrue(rot.get("superseded_version_id"))
        ops = [x["aws"]["operation"] for x in recs if x["event"] == "aws_call"
               and x.get("op") == "rotate"]
        self.assertIn("CreateAccessKey", ops)
        self.assertIn("UpdateSecretVersionStage", ops)
        # tearDown scans the audit files for every SecretAccessKey fakeaws holds, the new one too


class ReopenTest(AuditTestCase):

    def test_rename_and_sighup_continue_the_chain_in_a_new_file(self):
        b = self.broker
        self.arn("alpha")
        first = self.wait_for(lambda r: any(x["event"] == "authz" for x in r))
        os.rename(self.audit_path, self.audit_path + ".1")
        b.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while not os.path.exists(self.audit_path) and time.time() < deadline:
            self.arn("alpha")
            time.sleep(0.05)
        self.arn("alpha")
        self.assertEqual(b.stop(), 0)
        recs = self.records([self.audit_path + ".1", self.audit_path])
        with open(self.audit_path, "rb") as f:
            head = json.loads(split(f.readline().rstrip(b"\n"))[0])
        self.assertEqual((head["event"], head["reason"]), ("audit_open", "reopen"))
        self.assertGreater(head["seq"], first[-1]["seq"])
        self.assertIn("signal", [r["event"] for r in recs])
        self.assertEqual(recs[-1]["event"], "stop")
        # The second file alone verifies too: its first record names the h it continues from.
        alone = check_chain([self.audit_path], standalone=True)
        self.assertEqual(alone[0]["seq"], head["seq"])


class FailClosedTest(AuditTestCase):
    audit_extra = {"fail_closed": True}

    def test_an_unwritable_log_denies_get_and_service_resumes(self):
        b = self.broker
        arn = self.arn("alpha")
        moved = self.audit_dir + ".moved"
        # Make the path unopenable: its directory becomes a plain file; SIGHUP reopens the path.
        os.rename(self.audit_dir, moved)
        with open(self.audit_dir, "w") as f:
            f.write("not a directory\n")
        try:
            b.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 10
            reply = None
            while time.time() < deadline:
                reply = b.raw(line({"v": 1, "op": "get", "tenant": "alpha", "id": 1}))[0]
                if not reply.get("ok"):
                    break
                time.sleep(0.05)
            self.assertError(reply, "unavailable", 1)
            self.assertIn("audit log cannot be written", reply["error"]["message"])
            self.assertIn("fail_closed", reply["error"]["message"])
            self.assertIsNone(b.proc.poll())
            prov = b.raw(line({"v": 1, "op": "provision", "tenant": "alpha", "id": 2}))[0]
            self.assertError(prov, "unavailable", 2)
            # metrics still answers, so that monitoring sees why
            m = self.metrics()
            self.assertEqual(m["keybroker_audit_failing"], 1)
            self.assertGreaterEqual(m["keybroker_audit_write_errors_total"], 1)
        finally:
            os.unlink(self.audit_dir)
            os.rename(moved, self.audit_dir)
        deadline = time.time() + 10
        while time.time() < deadline:
            reply = b.raw(line({"v": 1, "op": "get", "tenant": "alpha"}))[0]
            if reply.get("ok"):
                break
            time.sleep(0.1)
        self.assertTrue(reply.get("ok"), reply)
        self.assertEqual(reply["result"]["arn"], arn)
        m = self.metrics()
        self.assertEqual(m["keybroker_audit_failing"], 0)
        self.assertGreater(m["keybroker_audit_records_total"], 0)
        self.assertEqual(m["keybroker_audit_lost_total"], 0)
        self.assertEqual(b.stop(), 0)
        recs = self.records()
        # The refusals were kept in memory and written once the log worked again.
        denied = [r for r in recs if r["event"] == "authz" and r["result"] == "deny"
                  and "audit log" in r.get("error", "")]
        self.assertTrue(denied)
        opens = [r for r in recs if r["event"] == "audit_open"]
        self.assertEqual([o["reason"] for o in opens], ["start", "reopen"])
        logs = [l for l in b.log_lines() if "audit" in str(l.get("event"))]
        self.assertTrue(any("cannot write" in l["event"] for l in logs), logs)
        self.assertTrue(any("again" in l["event"] for l in logs), logs)


class CrashTest(AuditTestCase):

    def test_a_partial_last_line_is_cut_at_start_and_the_chain_goes_on(self):
        b = self.broker
        self.arn("alpha")
        self.wait_for(lambda r: any(x["event"] == "authz" for x in r))
        self.assertEqual(b.stop(signal.SIGKILL), -signal.SIGKILL)
        before = self.records()
        with open(self.audit_path, "ab") as f:
            f.write(b'{"seq":%d,"epoch":0,"ts":"2026-12-04T00:00:00.000Z","event":"au'
                    % (before[-1]["seq"] + 1))
        b.start()
        self.arn("alpha")
        recs = self.wait_for(lambda r: sum(x["event"] == "audit_open" for x in r) == 2)
        reopen = [r for r in recs if r["event"] == "audit_open"][1]
        self.assertEqual(reopen["seq"], before[-1]["seq"] + 1)
        self.assertEqual(reopen["cut_bytes"], len(b'{"seq":%d,"epoch":0,"ts":"2026-12-04T00:00:'
                                                  b'00.000Z","event":"au'
                                                  % (before[-1]["seq"] + 1)))
        self.assertEqual(reopen["reason"], "start")

    def test_a_log_that_is_not_an_audit_log_is_refused_at_start(self):
        b = self.broker
        self.assertEqual(b.stop(), 0)
        with open(self.audit_path, "ab") as f:
            f.write(b"this line was not written by keybroker\n")
        b.write_config()
        p = subprocess.run(b.argv(), env=b.env(), capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("is not an audit record", p.stderr)
        self.assertIn(self.audit_path, p.stderr)
        with open(self.audit_path, "rb") as f:
            self.assertTrue(f.read().endswith(b"this line was not written by keybroker\n"))
        # Put the log back as it was, so the fixture's broker can stop cleanly.
        with open(self.audit_path, "rb") as f:
            data = f.read()
        with open(self.audit_path, "wb") as f:
            f.write(data[:-len(b"this line was not written by keybroker\n")])
        b.start()


def anchor_objects(fa, bucket, prefix):
    out = fa.aws("s3api", "list-object-versions", "--bucket", bucket, "--prefix", prefix)
    return out.get("Versions", []), out.get("DeleteMarkers", [])


class AnchorTest(AuditTestCase):
    audit_extra = {"anchor": {"bucket": "kb-audit-anchors", "prefix": "host-a/",
                              "interval": "1s", "retention": "1d"}}

    def test_anchors_are_locked_objects_matching_the_log(self):
        self.fa.aws("s3api", "create-bucket", "--bucket", "kb-audit-anchors",
                    "--object-lock-enabled-for-bucket")
        recs = self.wait_for(lambda r: any(x["event"] == "anchor" and x["result"] == "ok"
                                           for x in r), timeout=20, what="an anchor")
        ok = [x for x in recs if x["event"] == "anchor" and x["result"] == "ok"][0]
        self.assertEqual(ok["aws"]["operation"], "PutObject")
        versions, markers = anchor_objects(self.fa, "kb-audit-anchors", "host-a/")
        self.assertEqual(markers, [])
        v = [x for x in versions if x["Key"] == ok["object"]]
        self.assertEqual(len(v), 1, versions)
        body = self._get(ok["object"], v[0]["VersionId"])
        self.assertEqual(body["seq"], ok["anchored_seq"])
        chain_id = [x for x in recs if x["event"] == "audit_open"][0]["chain_id"]
        self.assertEqual(body["chain_id"], chain_id)
        self.assertEqual(ok["object"], "host-a/%s/%020d.json" % (chain_id, body["seq"]))
        with open(self.audit_path, "rb") as f:
            lines = f.read().split(b"\n")
        anchored = [l for l in lines if l.startswith(b'{"seq":%d,' % body["seq"])][0]
        self.assertEqual(split(anchored)[1], body["h"])
        head = self.fa.aws("s3api", "head-object", "--bucket", "kb-audit-anchors", "--key",
                           ok["object"], "--version-id", v[0]["VersionId"])
        self.assertEqual(head["ObjectLockMode"], "COMPLIANCE")
        # Nobody - the broker's own identity included - can delete the anchored version.
        err = self.fa.aws_error("s3api", "delete-object", "--bucket", "kb-audit-anchors",
                                "--key", ok["object"], "--version-id", v[0]["VersionId"])
        self.assertEqual(err.code, "AccessDenied")
        # kbctl audit verify --anchors reads them back with the caller's own AWS identity: the
        # daemon's log matches; cut before the last anchor, it does not.
        env = dict(self.fa.aws_env(), AWS_ENDPOINT_URL=self.fa.endpoint)
        self.assertEqual(self.broker.stop(), 0)
        anchors = "s3://kb-audit-anchors/host-a/"
        p = subprocess.run([KBCTL, "audit", "verify", "--anchors", anchors, self.audit_path],
                           capture_output=True, text=True, timeout=120, env=env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        last = max(x["anchored_seq"] for x in self.records()
                   if x["event"] == "anchor" and x["result"] == "ok")
        with open(self.audit_path, "rb") as f:
            whole = f.read()
        cut = whole[:whole.index(b'{"seq":%d,' % last)]
        with open(self.audit_path, "wb") as f:
            f.write(cut)
        p = subprocess.run([KBCTL, "audit", "verify", "--anchors", anchors, self.audit_path],
                           capture_output=True, text=True, timeout=120, env=env)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("truncated_before_anchor", p.stdout + p.stderr)
        with open(self.audit_path, "wb") as f:
            f.write(whole)
        # An overwrite only adds a version: the anchored one stays as it was.
        forged = os.path.join(self.audit_dir, "forged.json")
        with open(forged, "w") as f:
            json.dump(dict(body, h="0" * 64), f)
        self.fa.aws("s3api", "put-object", "--bucket", "kb-audit-anchors", "--key", ok["object"],
                    "--body", forged)
        os.unlink(forged)
        self.assertEqual(self._get(ok["object"], v[0]["VersionId"]), body)
        p = subprocess.run([KBCTL, "audit", "verify", "--anchors", anchors, self.audit_path],
                           capture_output=True, text=True, timeout=120, env=env)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        # the second version is found (and, being no anchor of this chain's form, named at the
        # anchored line)
        self.assertRegex(p.stdout, r"anchor_(rewritten|mismatch)")
        self.assertIn("1 rewritten", p.stdout)
        self.broker.start()

    def _get(self, key, version):
        out = os.path.join(self.audit_dir, "anchor.json")
        self.fa.aws("s3api", "get-object", "--bucket", "kb-audit-anchors", "--key", key,
                    "--version-id", version, out)
        with open(out) as f:
            doc = json.load(f)
        os.unlink(out)
        return doc


class AnchorRequiredTest(AuditTestCase):
    audit_extra = {"anchor": {"bucket": "kb-audit-required", "interval": "1s",
                              "retention": "1d", "required": True, "max_unanchored": 40}}

    def test_changes_wait_for_anchors_and_get_keeps_working(self):
        b = self.broker
        arn = self.arn("alpha")
        for _ in range(50):
            self.arn("alpha")
        reply = b.raw(line({"v": 1, "op": "provision", "tenant": "alpha", "id": 3}))[0]
        self.assertError(reply, "unavailable", 3)
        self.assertIn("wait to be anchored", reply["error"]["message"])
        self.assertEqual(self.arn("alpha"), arn)
        recs = self.records()
        self.assertTrue(any(x["event"] == "anchor" and x["result"] == "error"
                            and x["aws"]["code"] == "NoSuchBucket" for x in recs))
        self.fa.aws("s3api", "create-bucket", "--bucket", "kb-audit-required",
                    "--object-lock-enabled-for-bucket")
        self.wait_for(lambda r: any(x["event"] == "anchor" and x["result"] == "ok" for x in r),
                      timeout=20, what="an anchor")
        progress, reply = b.run_op({"v": 1, "op": "provision", "tenant": "alpha", "id": 4})
        self.assertTrue(reply["ok"], reply)


def retag(lines, start, key_for_epoch):
    """Re-chains lines[start:] from lines[start-1]'s h and re-tags them with key_for_epoch(e):
    what an attacker who rewrote line `start` would have to do."""
    prev = bytes.fromhex(split(lines[start - 1])[1]) if start > 0 else b"\0" * 32
    out = list(lines[:start])
    for raw in lines[start:]:
        body, _, _ = split(raw)
        rec = json.loads(body)
        h = hashlib.sha256(prev + body).digest()
        tag = hmac.new(key_for_epoch(rec["epoch"]), h, hashlib.sha256).hexdigest()
        out.append(body[:-1] + b',"h":"' + h.hex().encode() + b'","tag":"' + tag.encode() + b'"}')
        prev = h
    return out


class EpochTest(AuditTestCase):
    chain = "hmac-sha256"
    audit_extra = {"epoch": "1s"}

    def test_idle_epochs_are_sealed_and_only_the_current_key_is_kept(self):
        self.arn("alpha")
        recs = self.wait_for(lambda r: sum(x["event"] == "seal" for x in r) >= 3, timeout=15,
                             what="three seals")
        seals = [r for r in recs if r["event"] == "seal"]
        self.assertEqual([s["epoch"] for s in seals[:3]], [0, 1, 2])
        opens = [r for r in recs if r["event"] == "audit_open"]
        self.assertEqual(opens[0]["chain"], "hmac-sha256")
        with open(self.key_path) as f:
            keyfile = json.load(f)
        self.assertEqual(opens[0]["key_id"], keyfile["key_id"])
        self.assertEqual(opens[0]["chain_id"], keyfile["chain_id"])
        # The state file holds K_e of its epoch, derived from K_0 - and not K_0 any more.
        with open(self.state_path) as f:
            st = json.load(f)
        key = self.k0()
        for e in range(1, st["epoch"] + 1):
            key = hkdf_next(key, e)
        self.assertGreaterEqual(st["epoch"], 2)
        self.assertEqual(st["key"], key.hex())
        self.assertNotEqual(st["key"], self.k0().hex())
        self.assertEqual(stat.S_IMODE(os.stat(self.state_path).st_mode), 0o600)

    def test_the_current_key_cannot_rewrite_an_earlier_epoch(self):
        """Forward security: an attacker holding the state file's K_e changes a record of epoch 0
        and re-chains and re-tags everything after it with every key K_e lets them derive; the
        verifier holding K_0 still finds the changed record."""
        b = self.broker
        self.arn("alpha")
        self.wait_for(lambda r: sum(x["event"] == "seal" for x in r) >= 2, timeout=15,
                      what="two seals")
        self.assertEqual(b.stop(), 0)
        with open(self.state_path) as f:
            st = json.load(f)
        stolen, stolen_epoch = bytes.fromhex(st["key"]), st["epoch"]

        def key_for(e):
            k = stolen
            for n in range(stolen_epoch + 1, e + 1):
                k = hkdf_next(k, n)
            return k  # for an earlier epoch the attacker has nothing better than K_e

        with open(self.audit_path, "rb") as f:
            lines = f.read().split(b"\n")[:-1]
        target = [i for i, l in enumerate(lines)
                  if b'"event":"authz"' in l and b'"epoch":0,' in l][0]
        body, _, _ = split(lines[target])
        forged = list(lines)
        forged[target] = body.replace(b'"result":"allow"', b'"result":"deny"')[:-1] + \
            lines[target][len(body) - 1:]
        forged = retag(forged, target, key_for)
        with open(self.audit_path, "wb") as f:
            f.write(b"\n".join(forged) + b"\n")
        with self.assertRaises(AssertionError) as cm:
            self.records()
        self.assertIn(":%d: tag does not verify" % (target + 1), str(cm.exception))
        p = subprocess.run([KBCTL, "audit", "verify", "--key", self.key_path, self.audit_path],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("%s:%d" % (self.audit_path, target + 1), p.stdout + p.stderr)
        # Without K_0 the rewritten chain looks whole: that is what the key file is for.
        check_chain([self.audit_path])
        with open(self.audit_path, "wb") as f:
            f.write(b"\n".join(lines) + b"\n")
        b.start()

    def test_kbctl_verifies_the_daemons_log_and_its_rotated_files(self):
        b = self.broker
        self.arn("alpha")
        self.wait_for(lambda r: any(x["event"] == "seal" for x in r), timeout=15, what="a seal")
        os.rename(self.audit_path, self.audit_path + ".1")
        b.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while not os.path.exists(self.audit_path) and time.time() < deadline:
            self.arn("alpha")
            time.sleep(0.05)
        self.wait_for(lambda r: any(x["event"] == "seal" for x in r), timeout=15, what="a seal",
                      standalone=True)
        self.assertEqual(b.stop(), 0)
        files = [self.audit_path, self.audit_path + ".1"]  # in logrotate's order, not the chain's
        p = subprocess.run([KBCTL, "audit", "verify", "--key", self.key_path] + files,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = subprocess.run([KBCTL, "audit", "verify", "--json", "--key", self.key_path] + files,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        doc = json.loads(p.stdout)
        self.assertTrue(doc["ok"])
        self.records([self.audit_path + ".1", self.audit_path])
        b.start()
