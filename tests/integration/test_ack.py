"""Acknowledged cut-over and rollback (issue 12 items 2 and 3, DESIGN.md section 8 step 7)
against the real daemon and fakeaws.

- Three watch subscribers of a tenant: after a rotation, the superseded key stays active until the
  third subscriber acknowledges the new version, and is deactivated right after it, long before
  aws.overlap (60 s here) ends. An admin's status lists the subscribers (uid, pid) that have not
  acknowledged the current version yet, and kbctl status prints them.
- One silent subscriber of three: the key is deactivated at the overlap deadline, not before.
- ack outside a subscription is refused; an ack of a version that is not AWSCURRENT changes
  nothing.
- Rollback: once the superseded key is deactivated, `rotate` with rollback (kbctl rotate
  --rollback) reactivates it and moves AWSCURRENT back to it; the key works again, subscribers get
  `rolled_back`. After the key rolled away from is deleted (aws.retire), a rollback is refused
  with the reason and changes nothing.

The invariants of DESIGN.md section 6 are checked after every scenario.
"""

import json
import time
import unittest

from brokerfix import line
from invariants import users
from test_rotate import ALPHA, RECONCILE, RotateCase, req
from test_watch import Sub

# Subscribers must be able to sit idle; rotation and the probes are quick on fakeaws.
LIMITS = {"max_inflight_per_connection": 4, "idle_timeout": "30s",
          "requests_per_second_per_uid": 100000, "max_connections": 2048}


class AckCase(RotateCase):
    limits = LIMITS

    def subscribe(self, n):
        subs = [Sub(self.broker, tenants=["alpha"]) for _ in range(n)]
        self.addCleanup(lambda: [s.close() for s in subs])
        return subs

    @staticmethod
    def next_event(sub, name, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            ev = sub.poll(deadline - time.time())
            if ev is not None and ev.get("event") == name:
                return ev
        raise AssertionError("no %s event within %ss" % (name, timeout))

    @staticmethod
    def ack(sub, version, n=[0]):
        """Sends ack on sub's connection; returns its answer (events before it are skipped)."""
        n[0] += 1
        rid = "ack-%d" % n[0]
        sub.s.sendall(line(req("ack", id=rid, tenant="alpha", version_id=version)))
        while True:
            got = sub.next()
            if got.get("id") == rid:
                return got

    def status(self):
        r = self.broker.raw(line(req("status", tenant="alpha")))[0]
        self.assertTrue(r["ok"], r)
        return r["result"]["tenants"][0]

    def rotated(self, subs):
        old = self.key_of("AWSCURRENT")
        _, r = self.rotate()
        self.assertEqual(r["result"]["state"], "ready", r)
        evs = [self.next_event(s, "rotated") for s in subs]
        new_version = evs[0]["version_id"]
        self.assertEqual({e["version_id"] for e in evs}, {new_version})
        self.assertEqual(self.labelled("AWSCURRENT")[0]["version_id"], new_version)
        return old, new_version


class TestAckedCutOver(AckCase):
    aws_extra = {"overlap": "60s", "retire": "1h", "probe_timeout": "10s"}

    def test_deactivated_right_after_the_third_ack(self):
        subs = self.subscribe(3)
        old, new_version = self.rotated(subs)
        st = self.status()
        self.assertEqual(st["subscribers"], 3, st)
        self.assertEqual(len(st["waiting_ack"]), 3, st)
        self.assertTrue(all(w["uid"] == 0 and w["pid"] > 0 and w["version_id"] is None
                            for w in st["waiting_ack"]), st)
        for k, sub in enumerate(subs[:2]):
            a = self.ack(sub, new_version)
            self.assertTrue(a["ok"], a)
            self.assertEqual(a["result"], {"tenant": "alpha", "version_id": new_version,
                                           "current": True, "waiting": 2 - k})
        # two of three: the old key stays active, and status says who is missing
        time.sleep(1.0)
        self.assertEqual(self.keys()[old], "Active")
        st = self.status()
        self.assertEqual(len(st["waiting_ack"]), 1, st)
        p = self.broker.kbctl("status", "alpha")
        self.assertEqual(p.returncode, 0, p)
        out = p.stdout.decode()
        self.assertIn("3 subscribers, 1 not acknowledging the current version:", out)
        self.assertRegex(out, r"uid 0 pid [0-9]+  acknowledged nothing")
        t0 = time.time()
        a = self.ack(subs[2], new_version)
        self.assertEqual(a["result"]["waiting"], 0, a)
        self.wait_for("the old key deactivated", lambda: self.keys().get(old) == "Inactive",
                      timeout=10)
        self.assertLess(time.time() - t0, 10)  # the overlap is 60 s
        ev = self.next_event(subs[0], "key_deactivated")
        self.assertEqual(ev.get("message"), "acknowledged by every subscriber", ev)
        self.assertEqual(self.status()["waiting_ack"], [])
        self.assertInvariants()

    def test_ack_needs_a_subscription_and_the_current_version(self):
        subs = self.subscribe(1)
        old, new_version = self.rotated(subs)
        r = self.broker.raw(line(req("ack", id=1, tenant="alpha", version_id=new_version)))[0]
        self.assertEqual(r["error"]["code"], "bad_request", r)
        # the superseded version: not current, nothing changes
        old_version = self.labelled("AWSPREVIOUS")[0]["version_id"]
        a = self.ack(subs[0], old_version)
        self.assertEqual(a["result"]["current"], False, a)
        time.sleep(1.0)
        self.assertEqual(self.keys()[old], "Active")
        # a tenant the peer may not see (or that does not exist) is forbidden, as for get
        r = self.broker.raw(line(req("ack", id=2, tenant="beta", version_id=new_version)))[0]
        self.assertEqual(r["error"]["code"], "forbidden", r)
        self.assertInvariants()


class TestSilentSubscriber(AckCase):
    aws_extra = {"overlap": "5s", "retire": "1h", "probe_timeout": "10s"}

    def test_one_silent_subscriber_waits_for_the_deadline(self):
        subs = self.subscribe(3)
        t0 = time.time()
        old, new_version = self.rotated(subs)
        for sub in subs[:2]:
            self.assertTrue(self.ack(sub, new_version)["ok"])
        time.sleep(max(0.0, 3.0 - (time.time() - t0)))
        self.assertEqual(self.keys()[old], "Active")
        self.wait_for("the old key deactivated at the deadline",
                      lambda: self.keys().get(old) == "Inactive", timeout=15)
        self.assertGreaterEqual(time.time() - t0, 4.5)
        ev = self.next_event(subs[2], "key_deactivated")
        self.assertEqual(ev.get("message"), "after aws.overlap", ev)
        self.assertInvariants()


class TestRollback(AckCase):
    aws_extra = {"overlap": "1s", "retire": "5s", "probe_timeout": "10s"}

    def test_rollback_then_refused_after_deletion(self):
        subs = self.subscribe(1)
        old_version = self.labelled("AWSCURRENT")[0]["version_id"]
        old, new_version = self.rotated(subs)
        new = self.key_of("AWSCURRENT")
        old_secret = self.key_secret(old)
        self.wait_for("the old key deactivated", lambda: self.keys().get(old) == "Inactive")
        self.assertFalse(self.key_works(old, old_secret))
        progress, r = self.broker.run_op(req("rotate", id="rb", tenant="alpha", rollback=True),
                                         timeout=60)
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["result"]["state"], "ready", r)
        self.assertIn("rolled back", r["result"]["message"])
        steps = [(p["step"], p["state"]) for p in progress]
        for step in ("reactivate-key", "read-previous", "probe", "move-current"):
            self.assertIn((step, "done"), steps, steps)
        # the old key is AWSCURRENT again, active and working; the new one is AWSPREVIOUS
        self.assertEqual(self.key_of("AWSCURRENT"), old)
        self.assertEqual(self.labelled("AWSCURRENT")[0]["version_id"], old_version)
        self.assertEqual(self.key_of("AWSPREVIOUS"), new)
        self.assertEqual(self.labelled("AWSPENDING"), [])
        self.assertEqual(self.keys()[old], "Active")
        self.assertTrue(self.key_works(old, old_secret))
        got = self.broker.raw(line(req("get", tenant="alpha")))[0]
        self.assertEqual(got["result"]["version_id"], old_version)
        ev = self.next_event(subs[0], "rolled_back")
        self.assertEqual((ev["version_id"], ev.get("message")), (old_version, new_version), ev)
        self.assertInvariants()
        # the key rolled away from runs through its windows from now: deactivated, deleted
        self.wait_for("the rolled-away key deleted", lambda: new not in self.keys(), timeout=20)
        self.assertInvariants()
        before = self.fa.state()
        p = self.broker.kbctl("rotate", "--rollback", "alpha")
        self.assertEqual(p.returncode, 1, p)
        self.assertIn(b"rollback is no longer possible", p.stdout + p.stderr)
        after = self.fa.state()
        self.assertEqual(users(after)["kb-alpha"]["access_keys"],
                         users(before)["kb-alpha"]["access_keys"])
        self.assertEqual(self.key_of("AWSCURRENT"), old)
        self.assertTrue(self.broker.raw(line(req("get", tenant="alpha")))[0]["ok"])
        self.assertInvariants()

    def test_nothing_to_roll_back_to(self):
        p = self.broker.kbctl("rotate", "--rollback", "alpha")
        self.assertEqual(p.returncode, 1, p)
        self.assertIn(b"no AWSPREVIOUS version", p.stdout + p.stderr)
        p = self.broker.kbctl("get", "--rollback", "alpha")
        self.assertEqual(p.returncode, 2, p)
        self.assertInvariants()


if __name__ == "__main__":
    unittest.main()
