"""Fair connection limits against a hostile local user (issue 11, PROTOCOL.md "Limits").

Attackers are other uids: a script run under setpriv holds connections on the real socket while
the test, as root (an admin) and as uid 1000 (alpha's client), measures that it is still served.
The limits are small so that a flood reaches them at once:

    max_connections 40, admin_reserved_connections 6, max_connections_per_uid 8,
    request_timeout 2s, idle_timeout 3s, max_watches_per_uid 3

Each test ends with brokerfix's checks (no secret in any byte the socket sent, exit 0 on SIGTERM)
and the DESIGN.md section 6 invariants of the tenants on fakeaws.
"""

import json
import os
import subprocess
import sys
import time
import unittest

from brokerfix import SANITIZED, SETPRIV, BrokerTestCase, line
from invariants import check_invariants

ATTACKER = 1002  # in no ACL
# How long one get or metrics call of a permitted client may take during a flood (ASan makes
# the broker several times slower, and the flood shares these two cores).
BOUND = 3.0 if SANITIZED else 1.0
# Holds N connections to PATH for HOLD seconds, each sending one space a second (a request line
# that never ends), or a watch request when MODE is "watch"; prints one JSON summary: how many
# connections were answered "busy" at once, how many were closed by the broker (and the first
# error line each got), and how many were still open at the end.
FLOOD = r"""
import json, socket, sys, time
path, n, hold, mode = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
conns, busy, first = [], 0, {}
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.setblocking(False)
    if mode == "watch":
        try:
            s.sendall(b'{"v":1,"op":"watch"}\n')
        except OSError:
            pass  # already answered busy and closed: its line is still there to read
    conns.append(s)
print("connected", flush=True)
closed, nosend, end = set(), set(), time.monotonic() + hold
while time.monotonic() < end and len(closed) < len(conns):
    for i, s in enumerate(conns):
        if i in closed:
            continue
        try:
            data = s.recv(65536)
            if data == b"":
                closed.add(i)
                continue
            first.setdefault(i, data.split(b"\n")[0].decode())
        except BlockingIOError:
            pass
        except OSError:
            closed.add(i)
            continue
        if mode == "trickle" and i not in nosend:
            try:
                s.send(b" ")
            except OSError:
                nosend.add(i)  # the broker closed it: its line is still to be read
    time.sleep(0.25)
codes = {}
for i, text in first.items():
    try:
        r = json.loads(text)
    except ValueError:
        continue
    key = "ok" if r.get("ok") else r["error"]["code"] + ": " + r["error"].get("message", "")
    codes[key] = codes.get(key, 0) + 1
print(json.dumps({"closed": len(closed), "open": len(conns) - len(closed), "first": codes}))
"""


def flood(broker, uid, n, hold, mode="trickle"):
    """Starts the flood as uid; returns the process once every connection is made."""
    p = subprocess.Popen([SETPRIV, "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups", "--",
                          sys.executable, "-c", FLOOD, broker.path, str(n), str(hold), mode],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline()
    if first.strip() != "connected":
        p.kill()
        raise AssertionError("flood did not connect: %s %s" % (first, p.stderr.read()))
    return p


def flood_result(p):
    out, err = p.communicate(timeout=60)
    if p.returncode != 0:
        raise AssertionError("flood failed: %s" % err)
    return json.loads(out.strip().splitlines()[-1])


def req(op, **kw):
    o = {"v": 1, "op": op}
    o.update(kw)
    return o


class LimitsTest(BrokerTestCase):
    limits = {"max_connections": 40, "admin_reserved_connections": 6,
              "max_connections_per_uid": 8, "request_timeout": "2s", "idle_timeout": "3s",
              "max_watches_per_uid": 3, "requests_per_second_per_uid": 100000}

    def tearDown(self):
        # DESIGN.md section 6 after every scenario: a flood changes nothing on AWS.
        self.assertEqual(check_invariants(self.fa.state()), [])

    def metrics(self):
        return self.broker.raw(line(req("metrics")))[0]["result"]["text"]

    def metric(self, text, series):
        for l in text.splitlines():
            if l.startswith(series + " "):
                return float(l.split()[-1])
        raise AssertionError("no series %s in:\n%s" % (series, text))

    def timed_get(self, user=(1000, 1000, [])):
        t0 = time.monotonic()
        p = self.broker.kbctl("get", "alpha", user=user)
        took = time.monotonic() - t0
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"arn:aws:secretsmanager:", p.stdout)
        return took

    def timed_admin(self):
        t0 = time.monotonic()
        text = self.metrics()
        return time.monotonic() - t0, text

    # -- slowloris -----------------------------------------------------------------------------

    def test_slowloris_from_one_uid_leaves_admin_and_other_uid_served(self):
        """55 connections from one uid, each sending a space a second: 8 are served (the per-uid
        cap), 47 answered busy at once; the 8 are cut at the request deadline (2 s) although
        bytes keep coming; root and uid 1000 are served meanwhile, each call under a second."""
        p = flood(self.broker, ATTACKER, 55, 4.5)
        try:
            worst = 0.0
            for _ in range(4):
                worst = max(worst, self.timed_get(), self.timed_admin()[0])
                time.sleep(0.3)
        finally:
            res = flood_result(p)
        self.assertLess(worst, BOUND, "a permitted client waited %.2fs during the flood" % worst)
        busy = res["first"].get("busy: busy: too many connections from this uid "
                                "(broker.limits.max_connections_per_uid)", 0)
        self.assertEqual(busy, 47, res)
        cut = sum(v for k, v in res["first"].items() if "request line not completed" in k)
        self.assertEqual(cut, 8, res)
        self.assertEqual(res["open"], 0, res)
        text = self.metrics()
        self.assertEqual(
            self.metric(text, 'keybroker_connections_rejected_total{reason="max_connections_per_uid"}'),
            47)
        self.assertEqual(self.metric(text, 'keybroker_disconnects_total{reason="request_timeout"}'), 8)

    def test_flood_from_many_uids_leaves_the_admin_reserve(self):
        """Six uids with eight connections each want 48 of 40 slots: non-admins get at most 34
        (40 - 6 reserved); root is still served, and the refusals say why."""
        floods = [flood(self.broker, ATTACKER + i, 8, 3.0, mode="watch") for i in range(6)]
        try:
            took, text = self.timed_admin()
            self.assertLess(took, BOUND)
            held = self.metric(text, "keybroker_connections")
            self.assertLessEqual(held, 35)  # 34 attackers at most, and this metrics call
        finally:
            results = [flood_result(p) for p in floods]
        reserved = sum(v for r in results for k, v in r["first"].items()
                       if "reserved for admins" in k)
        self.assertGreaterEqual(reserved, 48 - 34, results)
        text = self.metrics()
        self.assertEqual(
            self.metric(text,
                        'keybroker_connections_rejected_total{reason="admin_reserved_connections"}'),
            reserved)

    # -- watch ---------------------------------------------------------------------------------

    def test_empty_watch_flood_is_bounded_and_times_out(self):
        """A uid in no ACL may watch, but only max_watches_per_uid at once, and a watch of
        nothing it may see is idle like any other connection (closed after idle_timeout); a
        watcher of tenants it may see (root here) is never cut."""
        b = self.broker
        real = b.connect()
        try:
            # root may see alpha: a live watch, exempt from the idle timeout
            self.assertTrue(b.call(real, req("watch"))["ok"])
            p = flood(b, ATTACKER, 8, 6.0, mode="watch")
            took = max(self.timed_get(), self.timed_admin()[0])
            res = flood_result(p)
            self.assertLess(took, BOUND)
            self.assertEqual(res["first"].get("ok"), 3, res)
            self.assertEqual(res["first"].get(
                "busy: too many watch subscriptions from this uid "
                "(broker.limits.max_watches_per_uid)"), 5, res)
            self.assertEqual(res["open"], 0, "the empty watches were not cut: %s" % res)
            real.setblocking(False)
            with self.assertRaises(BlockingIOError):
                real.recv(100)  # the live watch is still open, nothing to read
        finally:
            real.close()
        text = self.metrics()
        self.assertEqual(self.metric(text, "keybroker_watches_refused_total"), 5)
        self.assertGreaterEqual(self.metric(text, 'keybroker_disconnects_total{reason="idle"}'), 3)

    # -- the request deadline ------------------------------------------------------------------

    def test_a_request_line_must_end_within_request_timeout(self):
        b = self.broker
        slow_ok = b.connect()
        trickle = b.connect()
        try:
            # a line sent in pieces within the deadline is answered
            for piece in (b'{"v":1,', b'"op":"list"}', b"\n"):
                slow_ok.sendall(piece)
                time.sleep(0.5)
            lines, _ = b.read_lines(slow_ok, 1)
            self.assertTrue(json.loads(lines[0])["ok"])
            # bytes that never make a line: cut at 2 s, however often they come
            t0 = time.monotonic()
            trickle.setblocking(False)
            got = b""
            eof = False
            while time.monotonic() - t0 < 6 and not eof:
                try:
                    data = trickle.recv(4096)
                    eof = data == b""
                    got += data
                except BlockingIOError:
                    pass
                except OSError:
                    eof = True
                if not eof:
                    try:
                        trickle.send(b" ")
                    except OSError:
                        eof = True  # the broker closed: what it wrote is still readable
                time.sleep(0.2)
            took = time.monotonic() - t0
            trickle.settimeout(2)
            try:
                while b"\n" not in got:
                    data = trickle.recv(4096)
                    if not data:
                        break
                    got += data
            except OSError:
                pass
            self.assertGreaterEqual(took, 1.9)
            self.assertLess(took, 4.0)
            r = json.loads(got.split(b"\n")[0])
            self.assertError(r, "bad_request")
            self.assertIn("request line not completed within 2s", r["error"]["message"])
        finally:
            slow_ok.close()
            trickle.close()

    # -- denial logging ------------------------------------------------------------------------

    def test_denials_are_logged_within_a_budget_and_summarised(self):
        """2,000 denied gets from one uid: the metrics count all of them, the log holds at most
        the budget's lines one by one plus summary lines whose counts add up to the rest."""
        b = self.broker
        before = len(b.log_lines())
        data = b"".join(line(req("get", tenant="alpha")) for _ in range(2000))
        replies, _ = b.peer(ATTACKER, ATTACKER, [], data, expect=2000)
        self.assertEqual(len(replies), 2000)
        self.assertTrue(all(r["error"]["code"] == "forbidden" for r in replies))
        time.sleep(1.5)  # the summary comes within a second, or when the connection closes
        logs = b.log_lines()[before:]
        single = [l for l in logs if l.get("event") == "authz" and l.get("result") == "deny"
                  and l.get("uid") == str(ATTACKER)]
        summaries = [l for l in logs if l.get("event") == "authz-denials-summarised"
                     and l.get("uid") == str(ATTACKER)]
        self.assertLessEqual(len(single), 60, "the denials flooded the log")
        self.assertGreater(len(summaries), 0)
        self.assertEqual(len(single) + sum(int(l["count"]) for l in summaries), 2000)
        text = self.metrics()
        self.assertGreaterEqual(self.metric(text, 'keybroker_authz_total{result="deny"}'), 2000)
        self.assertEqual(self.metric(text, "keybroker_authz_denials_unlogged_total"),
                         2000 - len(single))


if __name__ == "__main__":
    unittest.main(verbosity=2)
