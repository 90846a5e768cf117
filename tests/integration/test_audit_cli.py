"""`kbctl audit init` and `kbctl audit verify` on files, without a broker: the files init makes
(modes, fields, the key id and the state's first key), verify's exit codes, first-bad-line messages
and --json document, and --anchors against fakeaws (an Object Lock bucket holding the anchors).

The logs are written by this file's own implementation of chain.h's format (Python's hashlib and
hmac, HKDF by RFC 5869's two HMAC steps), independent of chain.c: verify accepting them checks the
C code against the specification, not against itself.
"""

import hashlib
import hmac
import json
import os
import random
import shutil
import stat
import struct
import subprocess
import tempfile
import time
import unittest

from brokerfix import KBCTL
from harness import FakeAWSTestCase

KEY_ID_INFO = b"keybroker audit key id"
EPOCH_INFO = b"keybroker audit epoch key"


def key_id(k0):
    """hex of the first 8 bytes of HMAC-SHA-256(K_0, "keybroker audit key id")"""
    return hmac.new(k0, KEY_ID_INFO, hashlib.sha256).digest()[:8].hex()


def hkdf_next(key, epoch):
    """K_epoch = HKDF-SHA-256(IKM = K_epoch-1, no salt, info = EPOCH_INFO || be64(epoch)), L=32"""
    prk = hmac.new(b"\0" * 32, key, hashlib.sha256).digest()
    return hmac.new(prk, EPOCH_INFO + struct.pack(">Q", epoch) + b"\x01",
                    hashlib.sha256).digest()


class Chain:
    """Writes records as the broker's writer does, into files (lists of lines without "\\n")."""

    def __init__(self, k0=None, chain_id=None, seed=1):
        self.k0, self.key = k0, k0
        self.mode = "hmac-sha256" if k0 else "sha256"
        self.chain_id = chain_id or random.Random(seed).randbytes(16).hex()
        self.seq, self.epoch, self.epoch_records = 0, 0, 0
        self.prev = b"\0" * 32
        self.ts = 1796000000000
        self.files = []
        self.rng = random.Random(seed)
        self.anchors = []  # (seq, epoch, h, tag)

    def add(self, event, **members):
        self.seq += 1
        self.ts += self.rng.randint(1, 9000)
        t, ms = divmod(self.ts, 1000)
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % ms
        body = json.dumps(dict({"seq": self.seq, "epoch": self.epoch, "ts": ts, "event": event},
                               **members), separators=(",", ":")).encode()
        h = hashlib.sha256(self.prev + body).digest()
        line = body[:-1] + b',"h":"' + h.hex().encode() + b'"'
        tag = None
        if self.key:
            tag = hmac.new(self.key, h, hashlib.sha256).hexdigest()
            line += b',"tag":"' + tag.encode() + b'"'
        self.files[-1].append(line + b"}")
        self.prev = h
        self.epoch_records += 1
        return h.hex(), tag

    def open(self, reason="reopen", new_file=True):
        if new_file:
            self.files.append([])
        if reason == "start":
            self.epoch_records = 0
        m = {"chain": self.mode, "chain_id": self.chain_id}
        if self.key:
            m["key_id"] = key_id(self.k0)
        m.update(prev_h=self.prev.hex(), epoch_seconds=600, reason=reason, cut_bytes=0)
        self.add("audit_open", **m)

    def seal(self):
        self.add("seal", records=self.epoch_records + 1)
        self.epoch += 1
        self.epoch_records = 0
        if self.key:
            self.key = hkdf_next(self.key, self.epoch)

    def record(self):
        k = self.rng.randrange(3)
        if k == 0:
            return self.add("authz", tenant="alpha", op="get", result="allow",
                            peer={"uid": 1000, "gid": 1000, "pid": self.rng.randint(2, 9999)})
        if k == 1:
            return self.add("step", tenant="beta", op="provision", step="create_key",
                            result="done", aws={"service": "iam", "operation": "CreateAccessKey",
                                                "request_id": "%08x" % self.rng.getrandbits(32)})
        return self.add("rotated", tenant="gamma", op="rotate", result="ok",
                        arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:kb/gamma",
                        version_id="%016x" % self.rng.getrandbits(64))

    def anchor(self):
        h, tag = self.files[-1][-1], None
        d = json.loads(h[:h.rindex(b',"h":"')] + b"}")
        hh = h[h.rindex(b',"h":"') + 6:][:64].decode()
        if self.key:
            tag = h[h.rindex(b'"tag":"') + 7:][:64].decode()
        self.anchors.append((d["seq"], d["epoch"], hh, tag))

    @classmethod
    def standard(cls, k0=None, chain_id=None, seed=1, epochs=4, files=3, per_epoch=25):
        c = cls(k0, chain_id, seed=seed)
        c.open("start")
        for e in range(epochs):
            for i in range(per_epoch):
                if i == per_epoch // 2 and e < files - 1:
                    c.open("reopen")
                c.record()
                if i == 5:
                    c.anchor()
            if e + 1 < epochs:
                c.seal()
        return c

    def write(self, d, names=None):
        """Writes the files as logrotate leaves them (audit.log newest); returns their paths in
        chain order."""
        n = len(self.files)
        names = names or ["audit.log" + ("" if i == n - 1 else ".%d" % (n - 1 - i))
                          for i in range(n)]
        paths = []
        for name, lines in zip(names, self.files):
            p = os.path.join(d, name)
            with open(p, "wb") as f:
                f.write(b"".join(line + b"\n" for line in lines))
            paths.append(p)
        return paths

    def anchor_body(self, a, prefix="host-a/"):
        seq, epoch, h, tag = a
        doc = '{"v":1,"chain_id":"%s","file":"audit.log","seq":%d,"epoch":%d,"h":"%s"' % (
            self.chain_id, seq, epoch, h)
        if tag:
            doc += ',"tag":"%s"' % tag
        doc += ',"ts":"2026-12-04T03:28:01.123Z"}'
        return "%s%s/%020d.json" % (prefix, self.chain_id, seq), doc


def kbctl(*args, env=None):
    return subprocess.run([KBCTL, *args], capture_output=True, text=True, timeout=120, env=env)


class AuditCliTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kb-audit-cli-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def init(self):
        p = kbctl("audit", "init", "--state", self.path("state"), "--key-out", self.path("k0"))
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.path("k0")) as f:
            doc = json.load(f)
        return bytes.fromhex(doc["key"]), doc

    def verify(self, *args, want=0):
        p = kbctl("audit", "verify", *args)
        self.assertEqual(p.returncode, want, p.stdout + p.stderr)
        return p


class InitTest(AuditCliTestCase):
    def test_init_writes_the_key_file_and_the_first_state(self):
        k0, doc = self.init()
        self.assertEqual(sorted(doc), ["chain_id", "key", "key_id", "v"])
        self.assertEqual(doc["v"], 1)
        self.assertRegex(doc["chain_id"], "^[0-9a-f]{32}$")
        self.assertEqual(len(k0), 32)
        self.assertEqual(doc["key_id"], key_id(k0))
        for name in ("k0", "state"):
            self.assertEqual(stat.S_IMODE(os.stat(self.path(name)).st_mode), 0o600, name)
        with open(self.path("state")) as f:
            st = json.load(f)
        self.assertEqual(st, {"v": 1, "chain": "hmac-sha256", "chain_id": doc["chain_id"],
                              "key_id": doc["key_id"], "epoch": 0,
                              "epoch_started_ms": st["epoch_started_ms"], "seq": 0,
                              "h": "0" * 64, "key": doc["key"]})
        self.assertEqual([n for n in os.listdir(self.tmp) if ".tmp." in n], [])
        # two inits never make the same key or chain
        p = kbctl("audit", "init", "--state", self.path("s2"), "--key-out", self.path("k2"))
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.path("k2")) as f:
            other = json.load(f)
        self.assertNotEqual(other["key"], doc["key"])
        self.assertNotEqual(other["chain_id"], doc["chain_id"])
        self.assertIn("OFF this host", p.stdout)

    def test_init_refuses_to_replace_without_force(self):
        _, doc = self.init()
        for args in (("--state", self.path("state"), "--key-out", self.path("new")),
                     ("--state", self.path("new"), "--key-out", self.path("k0"))):
            p = kbctl("audit", "init", *args)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("exists", p.stderr)
            self.assertFalse(os.path.exists(self.path("new")))
        p = kbctl("audit", "init", "--force", "--state", self.path("state"), "--key-out",
                  self.path("k0"))
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.path("k0")) as f:
            self.assertNotEqual(json.load(f)["chain_id"], doc["chain_id"])
        self.assertEqual(stat.S_IMODE(os.stat(self.path("k0")).st_mode), 0o600)

    def test_init_sha256_and_usage(self):
        p = kbctl("audit", "init", "--chain", "sha256", "--state", self.path("state"))
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.path("state")) as f:
            st = json.load(f)
        self.assertEqual(st["chain"], "sha256")
        self.assertNotIn("key", st)
        for args in (("--chain", "sha256", "--state", self.path("a"), "--key-out", self.path("b")),
                     ("--key-out", self.path("b")),
                     ("--state", self.path("a")),
                     ("--chain", "md5", "--state", self.path("a"), "--key-out", self.path("b")),
                     ("--state", self.path("a"), "--key-out", self.path("a")),
                     ("--state", self.path("a"), "--key-out", self.path("b"), "--json"),
                     ("extra", "--state", self.path("a"), "--key-out", self.path("b"))):
            p = kbctl("audit", "init", *args)
            self.assertEqual(p.returncode, 2, (args, p.stdout, p.stderr))
            self.assertFalse(os.path.exists(self.path("a")) or os.path.exists(self.path("b")))
        p = kbctl("audit", "init", "--state", os.path.join(self.tmp, "no", "dir", "state"),
                  "--key-out", self.path("b"))
        self.assertEqual(p.returncode, 2)
        self.assertFalse(os.path.exists(self.path("b")), "the key file of a failed init stays")

    def test_help_tells_the_audit_commands(self):
        p = kbctl("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("audit verify", p.stdout)
        p = kbctl("audit", "--help")
        self.assertEqual(p.returncode, 0)
        for text in ("init --state PATH --key-out PATH", "verify FILE... [--key K0FILE]",
                     "--anchors s3://BUCKET/PREFIX", "truncated_before_anchor", "Exit status"):
            self.assertIn(text, p.stdout)
        p = kbctl("audit")
        self.assertEqual(p.returncode, 2)
        p = kbctl("audit", "frobnicate")
        self.assertEqual(p.returncode, 2)


class VerifyTest(AuditCliTestCase):
    def test_intact_rotated_set_in_any_order(self):
        k0, doc = self.init()
        c = Chain.standard(k0, doc["chain_id"], seed=2)
        paths = c.write(self.tmp)
        total = sum(len(f) for f in c.files)
        for order in (paths, list(reversed(paths)), [paths[1], paths[2], paths[0]]):
            p = self.verify("--key", self.path("k0"), *order)
            out = p.stdout.splitlines()
            self.assertEqual(out[0], "intact: 3 files, %d records" % total)
            self.assertIn("tags verified with the key file", p.stdout)
            self.assertIn("files:    %s" % " ".join(paths), p.stdout)
            self.assertTrue(any(l.startswith("window:   Records after the last seal") for l in out))
        p = self.verify("--json", "--key", self.path("k0"), *reversed(paths))
        doc = json.loads(p.stdout)
        self.assertEqual(set(doc), {
            "ok", "reason", "file", "line", "seq", "detail", "chain", "chain_id", "key_id",
            "epoch_seconds", "files", "empty_files", "records", "first_seq", "last_seq",
            "first_epoch", "last_epoch", "seals", "last_seal", "last_ts", "ends_with_stop",
            "stale", "records_lost", "writer_cut_bytes", "tags_verified", "anchors", "window"})
        self.assertEqual((doc["ok"], doc["reason"], doc["file"], doc["line"]),
                         (True, "ok", None, None))
        self.assertEqual((doc["records"], doc["first_seq"], doc["last_seq"]), (total, 1, total))
        self.assertEqual((doc["first_epoch"], doc["last_epoch"], doc["seals"]), (0, 3, 3))
        self.assertEqual(doc["chain"], "hmac-sha256")
        self.assertEqual(doc["key_id"], key_id(k0))
        self.assertEqual(doc["files"], paths)
        self.assertTrue(doc["tags_verified"])
        self.assertEqual(sorted(doc["last_seal"]), ["epoch", "seq", "ts"])
        self.assertEqual(doc["anchors"]["checked"], False)
        self.assertEqual(doc["window"]["rewritable_from_seq"], doc["last_seal"]["seq"] + 1)
        self.assertEqual(doc["window"]["droppable_from_seq"], 1)
        self.assertTrue(doc["window"]["needs_epoch_key"])
        self.assertIn("current epoch key", doc["window"]["text"])

    def test_the_first_bad_line_is_named(self):
        k0, doc = self.init()
        c = Chain.standard(k0, doc["chain_id"], seed=3)
        f1 = c.files[1]

        def run(mutate, reason, file_index, line_no, seq=None, key=True):
            files = [list(f) for f in c.files]
            mutate(files)
            d = tempfile.mkdtemp(dir=self.tmp)
            saved, c.files = c.files, files
            paths = c.write(d)
            c.files = saved
            args = (["--key", self.path("k0")] if key else []) + paths
            p = self.verify(*args, want=1)
            first = p.stdout.splitlines()[0]
            where = "%s:%d" % (paths[file_index], line_no)
            if seq is not None:
                where += " (seq %d)" % seq
            self.assertTrue(first.startswith(where + ": " + reason + ": "), first)
            p = self.verify("--json", *args, want=1)
            doc = json.loads(p.stdout)
            self.assertEqual((doc["ok"], doc["reason"], doc["file"], doc["line"]),
                             (False, reason, paths[file_index], line_no))
            self.assertTrue(doc["detail"])

        seq_of = lambda line: json.loads(line[:line.rindex(b',"h":"')] + b"}")["seq"]
        s = seq_of(f1[4])

        def change(files):
            files[1][4] = files[1][4].replace(b'"epoch":', b'"epoch": ', 1)

        run(change, "changed", 1, 5, s)
        run(lambda f: f[1].pop(4), "dropped", 1, 5, s + 1)
        run(lambda f: f[1].__setitem__(slice(4, 6), [f[1][5], f[1][4]]), "swapped", 1, 5, s + 1)
        run(lambda f: f[1].insert(9, f[1][4]), "duplicated", 1, 10, s)
        run(lambda f: f[1].__setitem__(4, f[1][4][:-1] + b"0}"), "malformed", 1, 5, s)
        run(lambda f: f[2].__setitem__(0, Chain.standard(k0, seed=9).files[2][0]), "spliced",
            2, 1, seq_of(c.files[2][0]))

        def cut(files):
            files[2][-1] = files[2][-1][:50]

        d = tempfile.mkdtemp(dir=self.tmp)
        files = [list(f) for f in c.files]
        cut(files)
        saved, c.files = c.files, files
        paths = c.write(d)
        c.files = saved
        with open(paths[2], "rb+") as f:
            f.seek(-1, 2)
            f.truncate()  # the cut line has no "\n"
        p = self.verify("--key", self.path("k0"), *paths, want=1)
        self.assertIn("%s:%d" % (paths[2], len(files[2])), p.stdout.splitlines()[0])
        self.assertIn(": cut: ", p.stdout.splitlines()[0])

    def test_forward_security_and_the_key_file(self):
        """With the current epoch's key only, a rewritten record of an earlier epoch is found
        (later_key); without the key file it is not, and the report says the tags were not
        checked; another chain's key file is the wrong key."""
        k0, doc = self.init()
        c = Chain.standard(k0, doc["chain_id"], seed=4)
        stolen_epoch = c.epoch
        stolen = c.key
        lines = [l for f in c.files for l in f]
        target = next(i for i, l in enumerate(lines) if b'"epoch":1,' in l and b'"authz"' in l)
        prev = bytes.fromhex(lines[target - 1][lines[target - 1].rindex(b',"h":"') + 6:][:64]
                             .decode())
        out = lines[:target]
        for i, raw in enumerate(lines[target:]):
            body = raw[:raw.rindex(b',"h":"')] + b"}"
            if i == 0:
                body = body.replace(b'"result":"allow"', b'"result":"deny"')
            if b'"prev_h":"' in body:
                at = body.index(b'"prev_h":"') + 10
                body = body[:at] + prev.hex().encode() + body[at + 64:]
            epoch = json.loads(body)["epoch"]
            key = stolen
            for n in range(stolen_epoch + 1, epoch + 1):
                key = hkdf_next(key, n)
            h = hashlib.sha256(prev + body).digest()
            out.append(body[:-1] + b',"h":"' + h.hex().encode() + b'","tag":"' +
                       hmac.new(key, h, hashlib.sha256).hexdigest().encode() + b'"}')
            prev = h
        path = self.path("forged.log")
        with open(path, "wb") as f:
            f.write(b"".join(l + b"\n" for l in out))
        p = self.verify("--key", self.path("k0"), path, want=1)
        self.assertTrue(p.stdout.startswith("%s:%d " % (path, target + 1)), p.stdout)
        self.assertIn(": later_key: ", p.stdout.splitlines()[0])
        p = self.verify(path)
        self.assertIn("tags NOT checked (no --key)", p.stdout)
        self.assertIn("The tags were not checked", p.stdout)
        p = kbctl("audit", "init", "--state", self.path("s2"), "--key-out", self.path("k2"))
        p = self.verify("--key", self.path("k2"), path, want=1)
        self.assertIn(":1 (seq 1): wrong_key: ", p.stdout.splitlines()[0])

    def test_sha256_chain(self):
        c = Chain.standard(None, seed=5, files=1)
        paths = c.write(self.tmp)
        p = self.verify(*paths)
        self.assertIn("chain:    sha256", p.stdout)
        self.assertIn("This is a sha256 chain", p.stdout)
        k0, _ = self.init()
        p = self.verify("--key", self.path("k0"), *paths, want=1)
        self.assertIn("wrong_key", p.stdout)

    def test_usage_and_io_errors(self):
        self.init()
        c = Chain.standard(None, seed=6, files=1)
        paths = c.write(self.tmp)
        with open(self.path("bad.key"), "w") as f:
            f.write('{"v":1,"chain_id":"x"}')
        os.chmod(self.path("bad.key"), 0o600)
        with open(self.path("k0")) as f:
            doc = json.load(f)
        doc["key_id"] = "0" * 16
        with open(self.path("damaged.key"), "w") as f:
            json.dump(doc, f)
        os.chmod(self.path("damaged.key"), 0o600)
        cases = [
            ((), ""),
            ((self.path("missing.log"),), "cannot read"),
            (("--key", self.path("missing.key"), *paths), "cannot read the key file"),
            (("--key", self.path("bad.key"), *paths), "not a key file"),
            (("--key", self.path("damaged.key"), *paths), "does not match its key_id"),
            (("--anchors", "http://x", *paths), "--anchors wants s3://BUCKET/PREFIX"),
            (("--bogus", *paths), "unknown option"),
            (("--state", "x", *paths), "are for init"),
        ]
        for args, text in cases:
            p = kbctl("audit", "verify", *args)
            self.assertEqual(p.returncode, 2, (args, p.stdout, p.stderr))
            self.assertIn(text, p.stderr, args)
        os.chmod(self.path("k0"), 0o644)
        c = Chain(bytes.fromhex(doc["key"]), doc["chain_id"], seed=6)
        c.open("start")
        c.record()
        paths = c.write(tempfile.mkdtemp(dir=self.tmp))
        p = self.verify("--key", self.path("k0"), *paths)
        self.assertIn("can be read by others", p.stderr)


class AnchorsTest(FakeAWSTestCase, AuditCliTestCase):
    BUCKET = "kb-audit-cli-anchors"

    def setUp(self):
        FakeAWSTestCase.setUp(self)
        AuditCliTestCase.setUp(self)
        self.fa.aws("s3api", "create-bucket", "--bucket", self.BUCKET,
                    "--object-lock-enabled-for-bucket")
        self.env = dict(self.fa.aws_env(), AWS_ENDPOINT_URL=self.fa.endpoint)

    def put(self, key, body):
        p = self.path("body.json")
        with open(p, "w") as f:
            f.write(body)
        self.fa.aws("s3api", "put-object", "--bucket", self.BUCKET, "--key", key, "--body", p,
                    "--object-lock-mode", "COMPLIANCE", "--object-lock-retain-until-date",
                    "2099-01-01T00:00:00Z")

    def anchors_verify(self, *paths, want):
        p = kbctl("audit", "verify", "--key", self.path("k0"), "--anchors",
                  "s3://%s/host-a/" % self.BUCKET, *paths, env=self.env)
        self.assertEqual(p.returncode, want, p.stdout + p.stderr)
        return p

    def test_anchors_cover_truncation_and_rewrites(self):
        k0, doc = self.init()
        c = Chain(k0, chain_id=doc["chain_id"], seed=7)
        c.open("start")
        for e in range(3):
            for i in range(20):
                if i == 10 and e < 2:
                    c.open("reopen")
                c.record()
                if i in (3, 15):
                    c.anchor()
            if e < 2:
                c.seal()
        for a in c.anchors:
            self.put(*c.anchor_body(a))
        self.put("host-a/README", "not an anchor")
        paths = c.write(self.tmp)
        p = self.anchors_verify(*paths, want=0)
        self.assertIn("anchors:  %d matched, the last at seq %d" % (len(c.anchors),
                                                                   c.anchors[-1][0]), p.stdout)
        self.assertIn("can be dropped from the end without trace", p.stdout)
        # cut the last file before the last anchor: truncation is found
        last = c.files[-1]
        keep = next(i for i, l in enumerate(last)
                    if l.startswith(b'{"seq":%d,' % c.anchors[-1][0]))
        with open(paths[-1], "wb") as f:
            f.write(b"".join(l + b"\n" for l in last[:keep]))
        p = self.anchors_verify(*paths, want=1)
        self.assertTrue(p.stdout.startswith("%s:%d (seq %d): truncated_before_anchor: " % (
            paths[-1], keep + 1, c.anchors[-1][0])), p.stdout)
        paths = c.write(self.tmp)
        # a second version of an anchor key ("overwritten": Object Lock keeps the first)
        key, body = c.anchor_body(c.anchors[0])
        self.put(key, body)  # the same body again: still a second version
        p = self.anchors_verify(*paths, want=1)
        self.assertTrue(p.stdout.startswith("anchors: anchor_rewritten: "), p.stdout)
        self.assertIn(key, p.stdout)

    def test_delete_marker_and_aws_errors(self):
        k0, doc = self.init()
        c = Chain(k0, chain_id=doc["chain_id"], seed=8)
        c.open("start")
        for i in range(10):
            c.record()
        c.anchor()
        key, body = c.anchor_body(c.anchors[0])
        self.put(key, body)
        paths = c.write(self.tmp)
        self.anchors_verify(*paths, want=0)
        self.fa.aws("s3api", "delete-object", "--bucket", self.BUCKET, "--key", key)
        p = self.anchors_verify(*paths, want=1)
        self.assertIn("anchor_rewritten", p.stdout)
        self.assertIn("delete marker", p.stdout)
        p = kbctl("audit", "verify", "--anchors", "s3://no-such-bucket-x/p/", *paths,
                  env=self.env)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("NoSuchBucket", p.stderr)


if __name__ == "__main__":
    unittest.main()
