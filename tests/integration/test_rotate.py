"""Rotation (issue 12 item 1, DESIGN.md section 8): keybrokerd against fakeaws.

End to end with short windows (aws.overlap 2s, aws.retire 2s): the old key works until it is
deactivated, the new one after the probe; AWSPREVIOUS is the old version, no version keeps
AWSPENDING; the old key is deactivated, then deleted, by the background schedule. A slot held by
an unreferenced young key refuses the rotation with nothing changed. kill -9 at every AWS call of a
rotation, then a restart: the rotation resumes (or, killed before its key was stored, is refused
while that key is young), with no orphan beyond that key, no third key, no duplicate version. Two
brokers both configured as rotator racing: the invariants hold after every round. A broker that
is not the tenant's rotator answers not_supported. The invariants of DESIGN.md section 6 are
checked after every scenario; brokerfix scans the socket bytes and logs for every secret.
"""

import json
import signal
import threading
import time
import unittest

from brokerfix import BrokerTestCase, line
from invariants import (Tenant, _tags, check_invariants, check_no_foreign_grants, secrets, users,
                        version_id)

ALPHA = {"name": "alpha", "bucket": "kb-alpha-data", "access": "read-write",
         "clients": {"uids": [0, 1000]}}
T_ALPHA = Tenant("alpha", "kb-alpha-data", "read-write")
RECONCILE = {"reconcile": {"retry_initial": "1s", "retry_max": "2s", "interval": "1h"}}


def req(op, **kw):
    return dict({"v": 1, "op": op}, **kw)


class RotateCase(BrokerTestCase):
    config_tenants = [ALPHA]
    broker_extra = RECONCILE
    aws_extra = {"overlap": "2s", "retire": "2s", "probe_timeout": "10s"}
    tenants = [T_ALPHA]

    # -- fakeaws state -------------------------------------------------------------------------

    def secret(self, tenant="alpha"):
        return secrets(self.fa.state())["keybroker/" + tenant]

    def keys(self, tenant="alpha"):
        return {k["id"]: k["status"] for k in users(self.fa.state())["kb-" + tenant]["access_keys"]}

    def labelled(self, label, tenant="alpha"):
        return [v for v in self.secret(tenant)["versions"] if label in v["stages"]]

    def key_of(self, label, tenant="alpha"):
        v = self.labelled(label, tenant)
        return v[0]["access_key_id"] if v else None

    def key_secret(self, key_id, tenant="alpha"):
        r = self._sm("GetSecretValue", {"SecretId": "keybroker/" + tenant,
                                        "VersionId": version_id(tenant, key_id)})
        return json.loads(r["SecretString"])["SecretAccessKey"]

    def key_works(self, key_id, secret):
        r = self.fa.signed("sts", "POST", body="Action=GetCallerIdentity&Version=2011-06-15",
                           headers={"Content-Type": "application/x-www-form-urlencoded"},
                           creds=(key_id, secret))
        return r.status == 200

    def wait_for(self, what, predicate, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = predicate()
            if v:
                return v
            time.sleep(0.05)
        self.fail(f"timed out waiting for {what}\n" + self.broker.stderr_text()[-3000:])

    def assertInvariants(self, allow=(), tenants=None):
        state = self.fa.state()
        problems = check_invariants(state, tenants or self.tenants, allow=allow)
        problems += check_no_foreign_grants(state)
        for t in tenants or self.tenants:
            s = secrets(state)[t.secret]
            pending = [v["version_id"] for v in s["versions"] if "AWSPENDING" in v["stages"]]
            if pending:
                problems.append(f"AWSPENDING left on {pending} of {t.secret}")
            if len(users(state)[t.user]["access_keys"]) > 2:
                problems.append(f"more than two keys on {t.user}")
        self.assertEqual(problems, [])

    def rotate(self, broker=None, tenant="alpha"):
        return (broker or self.broker).run_op(req("rotate", id="r", tenant=tenant), timeout=60)


class TestRotate(RotateCase):
    def test_end_to_end_with_short_windows(self):
        old_key = self.key_of("AWSCURRENT")
        old_version = self.labelled("AWSCURRENT")[0]["version_id"]
        old_secret = self.key_secret(old_key)
        self.assertTrue(self.key_works(old_key, old_secret))
        progress, r = self.rotate()
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["result"]["state"], "ready", r)
        self.assertIn("rotated", r["result"]["message"])
        steps = [(p["step"], p["state"]) for p in progress]
        for step in ("create-key", "store-key", "probe", "move-current", "remove-pending"):
            self.assertIn((step, "done"), steps, steps)
        # AWSCURRENT is the new key's version, AWSPREVIOUS the old one, no AWSPENDING anywhere
        new_key = self.key_of("AWSCURRENT")
        self.assertNotEqual(new_key, old_key)
        self.assertEqual(self.labelled("AWSCURRENT")[0]["version_id"],
                         version_id("alpha", new_key))
        self.assertEqual(self.labelled("AWSPREVIOUS")[0]["version_id"], old_version)
        self.assertEqual(self.labelled("AWSPENDING"), [])
        self.assertEqual(_tags(self.secret()["tags"]).get("keybroker:superseded", "").split()[0],
                         old_version)
        got = self.broker.raw(line(req("get", tenant="alpha")))[0]
        self.assertEqual(got["result"]["version_id"], version_id("alpha", new_key))
        # both keys work during the overlap
        self.assertTrue(self.key_works(new_key, self.key_secret(new_key)))
        self.assertTrue(self.key_works(old_key, old_secret))
        self.assertEqual(self.keys()[old_key], "Active")
        self.assertInvariants()
        # after aws.overlap: deactivated (and refused by AWS), after aws.retire: deleted
        self.wait_for("the old key deactivated", lambda: self.keys().get(old_key) == "Inactive",
                      timeout=8)
        self.assertFalse(self.key_works(old_key, old_secret))
        self.assertTrue(self.key_works(new_key, self.key_secret(new_key)))
        self.assertInvariants()
        self.wait_for("the old key deleted", lambda: old_key not in self.keys(), timeout=8)
        self.assertEqual(set(self.keys()), {new_key})
        self.assertInvariants()
        logs = self.broker.log_lines()
        self.assertTrue(any(l.get("event") == "rotated" for l in logs))
        self.assertTrue(any(l.get("event") == "rotation-probe" and "time_to_ready_ms" in l
                            for l in logs))
        metrics = self.broker.raw(line(req("metrics")))[0]["result"]["text"]
        self.assertRegex(metrics,
                         r'keybroker_rotation_time_to_ready_seconds\{tenant="alpha"\} [0-9.]+\n')
        # a second rotation frees the slot only now that the old key is gone
        _, r2 = self.rotate()
        self.assertEqual(r2["result"]["state"], "ready", r2)
        self.assertEqual(self.key_of("AWSPREVIOUS"), new_key)
        self.assertInvariants()

    def test_rotation_refused_while_the_previous_key_is_kept(self):
        _, r = self.rotate()
        self.assertEqual(r["result"]["state"], "ready", r)
        before = self.fa.state()
        _, r2 = self.rotate()
        self.assertEqual(r2["result"]["state"], "degraded", r2)
        self.assertIn("superseded key", r2["result"]["message"])
        self.assertEqual(users(self.fa.state())["kb-alpha"]["access_keys"],
                         users(before)["kb-alpha"]["access_keys"])
        # still served
        self.assertTrue(self.broker.raw(line(req("get", tenant="alpha")))[0]["ok"])
        self.assertInvariants()

    def test_kbctl_rotate_prints_progress(self):
        p = self.broker.kbctl("rotate", "alpha")
        self.assertEqual(p.returncode, 0, p)
        out = p.stdout.decode().splitlines()
        self.assertIn("alpha  create-key  done  created", out)
        self.assertTrue(any(l.startswith("alpha  probe  done  probed-ok") for l in out), out)
        self.assertTrue(out[-1].startswith("alpha  ready  rotated: version "), out)
        self.assertInvariants()

    def test_young_unreferenced_key_refuses_nothing_changed(self):
        extra = self.fa.aws("iam", "create-access-key", "--user-name", "kb-alpha")
        young = extra["AccessKey"]["AccessKeyId"]
        before_keys = users(self.fa.state())["kb-alpha"]["access_keys"]
        before_versions = self.secret()["versions"]
        p = self.broker.kbctl("rotate", "alpha")
        self.assertEqual(p.returncode, 1, p)
        self.assertIn(b"degraded", p.stdout)
        self.assertIn(b"younger than aws.orphan_key_min_age", p.stdout)
        self.assertEqual(users(self.fa.state())["kb-alpha"]["access_keys"], before_keys)
        self.assertEqual(self.secret()["versions"], before_versions)
        self.assertTrue(any(l.get("event") == "rotation-failed"
                            for l in self.broker.log_lines()))
        got = self.broker.raw(line(req("get", tenant="alpha")))[0]
        self.assertTrue(got["ok"], got)
        self.assertInvariants(allow=[young])


class TestNotRotator(RotateCase):
    """A broker with alpha's "rotate": false follows alpha (test_follow.py has the rest): it
    serves what alpha's rotator stored, and answers rotate, provision and revoke of alpha with
    not_supported, changing nothing."""

    def test_non_rotator_answers_not_supported(self):
        f = self.new_broker(socket_name="follower.sock", provision=False,
                            tenants=[dict(ALPHA, rotate=False)],
                            broker_extra={"follow": {"interval": "1s"}})
        f.start()
        self.wait_for("the follower to serve alpha",
                      lambda: f.raw(line(req("get", tenant="alpha")))[0].get("ok"))
        before = self.fa.state()
        for op in ("rotate", "provision", "revoke"):
            with self.subTest(op=op):
                r = f.raw(line(req(op, id=1, tenant="alpha")))[0]
                self.assertError(r, "not_supported", id=1)
                self.assertIn("rotator", r["error"]["message"])
        p = f.kbctl("rotate", "alpha")
        self.assertEqual(p.returncode, 1, p)
        self.assertIn(b"not_supported", p.stderr)
        self.assertEqual(secrets(self.fa.state())["keybroker/alpha"],
                         secrets(before)["keybroker/alpha"])
        self.assertEqual(users(self.fa.state())["kb-alpha"]["access_keys"],
                         users(before)["kb-alpha"]["access_keys"])
        self.assertInvariants()


class TestRotateCrash(RotateCase):
    """kill -9 at every AWS call of a rotation, one tenant per crash point (aws.overlap 1h: no
    window pass makes calls meanwhile)."""

    N = 12
    config_tenants = [dict(ALPHA, name=f"c{i}", bucket=f"kb-crash-{i}") for i in range(N)]
    tenants = [Tenant(f"c{i}", f"kb-crash-{i}", "read-write") for i in range(N)]
    aws_extra = {"overlap": "1h", "retire": "1h", "probe_timeout": "10s"}
    DELAY_MS = 1500

    def last_seq(self):
        calls = self.fa.calls(0)
        return calls[-1]["seq"] if calls else 0

    def rotation_ops(self, since):
        return [c["operation"] for c in self.fa.calls(since) if c["service"] != "control"]

    def test_kill9_at_every_call_of_a_rotation(self):
        # The calls of one rotation (tenant c0): the crash points.
        seq = self.last_seq()
        _, r = self.rotate(tenant="c0")
        self.assertEqual(r["result"]["state"], "ready", r)
        ops = self.rotation_ops(seq)
        for op in ("CreateAccessKey", "PutSecretValue", "UpdateSecretVersionStage"):
            self.assertIn(op, ops)
        points = [(op, ops[:i].count(op)) for i, op in enumerate(ops)]
        self.assertLess(len(points), self.N)
        young = set()  # keys killed runs created and could not store (other tenants' too)
        for k, (op, occurrence) in enumerate(points, start=1):
            tenant = f"c{k}"
            with self.subTest(k=k, op=op):
                old = self.key_of("AWSCURRENT", tenant)
                self.fa.fault(kind="delay", delay_ms=self.DELAY_MS, operation=op,
                              skip=occurrence, count=1)
                seq = self.last_seq()
                sock = self.broker.connect(timeout=30)
                sock.sendall(line(req("rotate", id=k, tenant=tenant)))
                self.wait_for("the frozen call", lambda: not self.fa.control(
                    "GET", "/_fakeaws/faults")["rules"])
                self.assertEqual(self.broker.stop(sig=signal.SIGKILL), -9)
                sock.close()
                self.wait_for("the frozen call to land", lambda: [
                    c for c in self.fa.calls(seq) if c.get("fault") == "delay"])
                created = {k2 for k2 in self.keys(tenant) if k2 != old}
                # restart: provisioning at start finds the interrupted rotation, the background
                # pass resumes it
                self.broker.start()
                stored = {v["access_key_id"] for v in self.secret(tenant)["versions"]}
                if created and created <= stored:
                    new = next(iter(created))
                    self.wait_for("the rotation to resume",
                                  lambda: self.key_of("AWSCURRENT", tenant) == new
                                  and not self.labelled("AWSPENDING", tenant))
                    self.assertEqual(self.key_of("AWSPREVIOUS", tenant), old)
                else:
                    # killed before the new key was stored: it is an unreferenced young key
                    # (refused, never deleted by rotation); AWSCURRENT unchanged
                    time.sleep(0.5)
                    self.assertEqual(self.key_of("AWSCURRENT", tenant), old)
                    young |= created
                self.assertLessEqual(len(self.keys(tenant)), 2)
                self.assertInvariants(allow=young)


class TestTwoRotators(RotateCase):
    aws_extra = {"overlap": "0s", "retire": "0s", "probe_timeout": "10s"}
    ROUNDS = 50

    def test_two_rotators_racing(self):
        """Even rounds: both asked at once (they race for the free slot: IAM's LimitExceeded or an
        unreferenced young key refuses the loser). Odd rounds: the first one's probe is slowed
        and the second asked meanwhile, so it resumes the first one's AWSPENDING key and both
        move the labels (the later move and removal find them done)."""
        other = self.new_broker(socket_name="other.sock", tenants=[ALPHA],
                                broker_extra=RECONCILE, aws_extra=self.aws_extra,
                                limits=self.limits)
        other.start()
        created = set()
        resumed = done_by_other = 0
        t0 = time.time()
        rounds = 0
        for n in range(self.ROUNDS):
            self.assertLess(time.time() - t0, 240, "rounds too slow: %d of %d" % (n, self.ROUNDS))
            rounds += 1
            results = {}
            staggered = n % 2 == 1
            if staggered:
                self.fa.fault(kind="delay", delay_ms=600, operation="GetCallerIdentity", count=1)

            def run(b, name):
                results[name] = self.rotate(broker=b)
            threads = [threading.Thread(target=run, args=(b, name))
                       for b, name in ((self.broker, "a"), (other, "b"))]
            threads[0].start()
            if staggered:
                self.wait_for("the first probe", lambda: not self.fa.control(
                    "GET", "/_fakeaws/faults")["rules"], timeout=10)
            threads[1].start()
            for t in threads:
                t.join(60)
            with self.subTest(round=n):
                for name, (_, r) in results.items():
                    self.assertTrue(r["ok"], r)
                states = [r["result"]["state"] for _, r in results.values()]
                self.assertIn("ready", states, results)
                steps = [(p["step"], p.get("message")) for prog, _ in results.values()
                         for p in prog]
                if ("read-pending", "resuming the interrupted rotation") in steps:
                    resumed += 1
                done_by_other += sum(1 for _, m in steps if m == "already done (another rotator)")
                # let both brokers' window passes run (overlap 0, retire 0)
                time.sleep(0.3)
                keys = self.keys()
                self.assertLessEqual(len(keys), 2, keys)
                created |= set(keys)
                self.assertInvariants()
        self.assertEqual(rounds, self.ROUNDS)
        self.assertGreater(resumed, 0, "no round had the second rotator resume the first's key")
        self.assertGreater(done_by_other, 0, "no label move was found done by the other rotator")
        # every key ever seen ended in a version (no orphan was made and then deleted)
        versions = {v["access_key_id"] for v in self.secret()["versions"]}
        self.assertLessEqual(created, versions)


if __name__ == "__main__":
    unittest.main()
