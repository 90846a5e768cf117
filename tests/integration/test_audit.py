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


def check_chain(paths, k0=None):
    """Verifies the files (in order) as chain.h says; returns the records. Raises on any break."""
    prev = b"\0" * 32
    key, key_epoch = k0, 0
    records, seq, epoch, sealed = [], 0, 0, False
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

    def k0(self):
        with open(self.key_path) as f:
            return bytes.fromhex(json.load(f)["key"])

    def records(self, paths=None):
        return check_chain(paths or [self.audit_path],
                           self.k0() if self.chain == "hmac-sha256" else None)

    def wait_for(self, pred, timeout=10, what="audit records"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                recs = self.records()
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
