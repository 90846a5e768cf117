"""The resumable watch stream (PROTOCOL.md section 5) against the real daemon and fakeaws.

- a client that disconnects at random over 200 rotations (and the deletions of the superseded
  keys that follow them), and resumes each time with "since", sees exactly the events (by seq)
  that a client that never disconnected saw: none lost, none twice;
- a position whose events fell out of a small ring (broker.limits.watch_ring_events 16) gets a
  reset line with the current snapshot;
- a position of an earlier broker start (a new epoch) gets a reset line;
- kbctl watch (libkeybroker's resuming watch) reconnects by itself across a broker restart.

Elsewhere events come from `provision` of tenants that are already ready: each successful
provision emits "provisioned" (engine/job.c), so every round of a four-tenant provision is four
events.
"""

import json
import random
import socket
import subprocess
import threading
import time
import unittest

from brokerfix import KBCTL, BrokerTestCase, line
from invariants import check_invariants

# Four tenants root may see (the watcher is root), so no event of this test is invisible.
TENANTS = [
    {"name": "w%d" % i, "bucket": "kb-w%d-data" % i, "access": "read-only",
     "clients": {"uids": [0]}} for i in range(4)
]
LIMITS = {"max_inflight_per_connection": 4, "idle_timeout": "30s",
          "requests_per_second_per_uid": 100000, "max_connections": 2048}


def req(op, **kw):
    o = {"v": 1, "op": op}
    o.update(kw)
    return o


class Sub:
    """One watch connection from Python: the ack, then event lines. Its own reader keeps a
    partial line across timeouts (a lost partial line would look like a lost event)."""

    def __init__(self, broker, since=None, tenants=None):
        self.b = broker
        self.buf = b""
        self.s = broker.connect(timeout=30)
        r = req("watch", id="w")
        if since is not None:
            r["since"] = {"epoch": since[0], "seq": since[1]}
        if tenants is not None:
            r["tenants"] = tenants
        self.s.sendall(line(r))
        self.ack = self.next()
        assert self.ack.get("ok"), self.ack

    def position(self):
        return self.ack["result"]["epoch"], self.ack["result"]["seq"]

    def poll(self, timeout):
        """The next line if one comes within timeout, else None (also at end of file)."""
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                return None
            except ConnectionResetError:
                chunk = b""
            self.b.record(chunk)
            if not chunk:
                return None
            self.buf += chunk
        l, self.buf = self.buf.split(b"\n", 1)
        return json.loads(l)

    def next(self, timeout=30):
        ev = self.poll(timeout)
        assert ev is not None, "no line within %ss" % timeout
        return ev

    def close(self):
        self.s.close()


class WatchTestBase(BrokerTestCase):
    limits = LIMITS
    config_tenants = TENANTS

    def tearDown(self):
        self.assertEqual(check_invariants(self.fa.state()), [])

    def provision_round(self, b=None):
        _, final = (b or self.broker).run_op(req("provision", id="p"), timeout=120)
        self.assertTrue(final.get("ok"), final)
        self.assertEqual({t["state"] for t in final["result"]["tenants"]}, {"ready"}, final)

    def current(self, tenant, b=None):
        return (b or self.broker).raw(line(req("get", tenant=tenant)))[0]["result"]


class WatchResumeTest(WatchTestBase):
    # back-to-back rotations: the superseded key is deleted by the pass after each rotation
    aws_extra = {"overlap": "0s", "retire": "0s", "probe_timeout": "10s"}

    def test_random_disconnects_lose_and_repeat_nothing(self):
        """200 rotations (50 of each of 4 tenants, concurrently) while a resuming client drops
        its connection at random: it sees exactly the events a client that never disconnected
        saw (the rotations and the superseded keys' deletions), by seq."""
        b = self.broker
        rounds = 50  # 4 tenants: 200 rotations
        reference = Sub(b)  # never disconnects
        epoch, pos = Sub(b).position()  # where the resuming client starts
        done = threading.Event()
        errors = []

        def rotations(tenant):
            try:
                for _ in range(rounds):
                    _, r = b.run_op(req("rotate", id="r", tenant=tenant), timeout=60)
                    if r.get("result", {}).get("state") != "ready":
                        raise AssertionError("rotation of %s: %r" % (tenant, r))
            except Exception as e:  # reported by the main thread
                errors.append(e)

        rng = random.Random(12)
        workers = [threading.Thread(target=rotations, args=("w%d" % i,)) for i in range(4)]
        for w in workers:
            w.start()

        def joiner():
            for w in workers:
                w.join(300)
            done.set()
        t = threading.Thread(target=joiner)
        t.start()
        got, reconnects, resets = [], 0, 0
        deadline = time.time() + 120
        try:
            while time.time() < deadline:
                sub = Sub(b, since=(epoch, pos))
                reconnects += 1
                # read for a random while, then drop the connection without a word
                until = time.time() + rng.uniform(0.0, 0.4)
                while time.time() < until:
                    ev = sub.poll(timeout=max(0.01, until - time.time()))
                    if ev is None:
                        continue
                    if ev["event"] == "reset":
                        resets += 1
                        continue
                    self.assertEqual(ev["epoch"], epoch, ev)
                    got.append(ev["seq"])
                    pos = ev["seq"]
                    # sometimes drop mid-stream, right after an event
                    if rng.random() < 0.1:
                        break
                sub.close()
                if rng.random() < 0.3:
                    time.sleep(rng.uniform(0.0, 0.3))  # let events pile up in the ring
                if done.is_set() and len(got) >= rounds * 4:
                    break
            # the last rotations' superseded keys: deleted by the passes that follow
            time.sleep(1.0)
            t.join(timeout=120)
            self.assertFalse(errors, errors)
            # whatever is still to come after the last round: one last resume
            sub = Sub(b, since=(epoch, pos))
            while True:
                ev = sub.poll(timeout=1.0)
                if ev is None:
                    break
                got.append(ev["seq"])
            sub.close()
            ref, rotated = [], 0
            while True:
                ev = reference.poll(timeout=1.0)
                if ev is None:
                    break
                self.assertIn(ev["event"], ("rotated", "key_deactivated", "key_deleted"), ev)
                ref.append(ev["seq"])
                rotated += ev["event"] == "rotated"
        finally:
            done.wait(300)
            reference.close()
        self.assertEqual(resets, 0)
        self.assertEqual(rotated, rounds * 4)
        self.assertEqual(len(got), len(set(got)), "an event came twice")
        self.assertEqual(got, sorted(got), "events out of order")
        self.assertEqual(got, ref, "the resuming client lost or gained events")
        self.assertGreater(reconnects, 10)
        text = b.raw(line(req("metrics")))[0]["result"]["text"]
        self.assertIn("keybroker_watch_replayed_total ", text)
        replayed = [l for l in text.splitlines() if l.startswith("keybroker_watch_replayed_total")]
        self.assertGreater(int(replayed[0].split()[1]), 0, "no replay happened: test too weak")

    def test_resume_across_a_restart_gives_reset(self):
        b = self.broker
        sub = Sub(b)
        epoch, seq = sub.position()
        sub.close()
        self.provision_round()
        self.collect_secrets()
        b.stop()
        b.start()  # provisions at start: events of the new epoch
        sub = Sub(b, since=(epoch, seq + 4))
        new_epoch, new_seq = sub.position()
        self.assertNotEqual(new_epoch, epoch)
        ev = sub.next()
        self.assertEqual(ev["event"], "reset", ev)
        self.assertEqual(ev["reason"], "epoch")
        self.assertEqual((ev["epoch"], ev["seq"]), (new_epoch, new_seq))
        snap = {t["tenant"]: t for t in ev["tenants"]}
        self.assertEqual(sorted(snap), ["w0", "w1", "w2", "w3"])
        for name, t in snap.items():
            cur = self.current(name)
            self.assertEqual((t["state"], t["arn"], t["version_id"]),
                             ("ready", cur["arn"], cur["version_id"]))
        # then live, from the reset's position on
        self.provision_round()
        seqs = sorted(sub.next()["seq"] for _ in range(4))
        self.assertEqual(seqs, [new_seq + 1, new_seq + 2, new_seq + 3, new_seq + 4])
        sub.close()

    def test_kbctl_watch_reconnects_across_a_restart(self):
        b = self.broker
        watch = subprocess.Popen([KBCTL, "--socket", b.path, "--json", "watch", "w0"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 20
            while not any(l.get("event") == "authz" and l.get("op") == "watch"
                          for l in b.log_lines()):
                self.assertLess(time.time(), deadline, "kbctl watch did not subscribe")
                time.sleep(0.05)
            p = b.kbctl("provision", "w0")
            self.assertEqual(p.returncode, 0, p.stderr)
            ev = json.loads(watch.stdout.readline())
            b.record(json.dumps(ev).encode())
            self.assertEqual((ev["event"], ev["tenant"]), ("provisioned", "w0"))
            first_epoch = ev["epoch"]
            self.collect_secrets()
            b.stop()
            time.sleep(0.5)  # kbctl is reconnecting meanwhile
            self.assertIsNone(watch.poll(), "kbctl watch gave up while the broker was down")
            b.start()
            ev = json.loads(watch.stdout.readline())
            b.record(json.dumps(ev).encode())
            self.assertEqual((ev["event"], ev["reason"]), ("reset", "epoch"), ev)
            self.assertNotEqual(ev["epoch"], first_epoch)
            # (kbctl may have come back before the start's provision ended: no state check)
            self.assertEqual([t["tenant"] for t in ev["tenants"]], ["w0"])
            reset_seq = ev["seq"]
            p = b.kbctl("provision", "w0")
            self.assertEqual(p.returncode, 0, p.stderr)
            ev = json.loads(watch.stdout.readline())
            b.record(json.dumps(ev).encode())
            self.assertEqual((ev["event"], ev["tenant"]), ("provisioned", "w0"))
            self.assertGreater(ev["seq"], reset_seq)
            self.assertIsNone(watch.poll())
        finally:
            watch.terminate()
            out, err = watch.communicate(timeout=10)
            b.record(out)


class WatchRingTest(WatchTestBase):
    limits = dict(LIMITS, watch_ring_events=16)

    def test_ring_overflow_gives_reset_with_snapshot(self):
        b = self.broker
        sub = Sub(b)
        epoch, seq = sub.position()
        sub.close()
        for _ in range(5):  # 20 events > 16 held
            self.provision_round()
        sub = Sub(b, since=(epoch, seq))
        _, now = sub.position()
        self.assertEqual(now, seq + 20)
        ev = sub.next()
        self.assertEqual(ev["event"], "reset", ev)
        self.assertEqual((ev["reason"], ev["epoch"], ev["seq"]), ("gap", epoch, now))
        snap = {t["tenant"]: t for t in ev["tenants"]}
        self.assertEqual(sorted(snap), ["w0", "w1", "w2", "w3"])
        for name, t in snap.items():
            cur = self.current(name)
            self.assertEqual((t["state"], t["arn"], t["version_id"]),
                             ("ready", cur["arn"], cur["version_id"]))
        sub.close()
        # a position still held resumes: the last 4 events again
        sub = Sub(b, since=(epoch, now - 4))
        seqs = [sub.next()["seq"] for _ in range(4)]
        self.assertEqual(seqs, [now - 3, now - 2, now - 1, now])
        self.assertIsNone(sub.poll(timeout=0.5))
        sub.close()
        text = b.raw(line(req("metrics")))[0]["result"]["text"]
        self.assertIn("keybroker_watch_resets_total 1", text)


class WatchRotationTest(WatchTestBase):
    """The engine's rotation kinds reach a watcher with epoch and seq (and resume like others)."""
    config_tenants = [dict(TENANTS[0], rotate=True)]
    broker_extra = {"reconcile": {"retry_initial": "1s", "retry_max": "2s", "interval": "1h"}}
    aws_extra = {"overlap": "2s", "retire": "2s", "probe_timeout": "10s"}

    def test_rotation_events(self):
        b = self.broker
        sub = Sub(b, tenants=["w0"])
        epoch, seq = sub.position()
        before = self.current("w0")["version_id"]
        self.collect_secrets()
        _, final = b.run_op(req("rotate", id="r", tenant="w0"), timeout=60)
        self.assertTrue(final.get("ok"), final)
        self.collect_secrets()
        after = self.current("w0")["version_id"]
        self.assertNotEqual(before, after)
        seen = {}
        deadline = time.time() + 30
        while time.time() < deadline and "key_deleted" not in seen:
            ev = sub.poll(timeout=max(0.1, deadline - time.time()))
            if ev is None:
                break
            self.assertEqual(ev["epoch"], epoch)
            self.assertGreater(ev["seq"], seq)
            seq = ev["seq"]
            seen[ev["event"]] = ev
        sub.close()
        self.assertEqual((seen["rotated"]["version_id"], seen["rotated"].get("message")),
                         (after, before), seen)
        self.assertEqual(seen["key_deactivated"]["version_id"], before, seen)
        self.assertEqual(seen["key_deleted"]["version_id"], before, seen)
        # a resume from before the rotation replays the same three
        sub = Sub(b, since=(epoch, seen["rotated"]["seq"] - 1), tenants=["w0"])
        again = [sub.next()["event"] for _ in range(3)]
        self.assertEqual(again, ["rotated", "key_deactivated", "key_deleted"])
        sub.close()


if __name__ == "__main__":
    unittest.main()
