"""keybrokerd's client socket (broker/server*.c) end to end: fakeaws + keybrokerd + raw clients.

Each test starts a fresh fakeaws and keybrokerd with three provisioned tenants (brokerfix.py:
alpha for uids 0 and 1000; beta for uid 1001 and gid 2000; gamma for gid 3000; admin = uid 0 and
gid 4000) and, at the end, checks that no SecretAccessKey fakeaws holds appears in any byte the
socket returned during the test nor in keybrokerd's stderr, and that keybrokerd exits 0 on
SIGTERM (under ASan: without a leak). Other users are played by itest_peer under setpriv.
"""

import grp
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

from brokerfix import (KEYBROKERD, LOADER, TENANTS, BrokerTestCase, line)

MAX_LINE = 65536


def asan_build():
    try:
        with open(KEYBROKERD, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:  # listing the tests, before the build
        return False


# Memory bounds. A plain build: keybrokerd is ~12 MiB before any client; 1000 connections add a
# few KiB each. ASan keeps freed memory in quarantine (256 MiB by default) and shadows it, so the
# bounds there only catch unbounded growth.
ASAN = asan_build()
RSS_1000_CONNS_KIB = (768 if ASAN else 32) * 1024
RSS_SLOW_READER_KIB = (256 if ASAN else 32) * 1024


def req(op, id=None, **kw):
    o = {"v": 1, "op": op}
    if id is not None:
        o["id"] = id
    o.update(kw)
    return o


# Every malformed line and the code PROTOCOL.md documents for it.
LONG_TENANT = "t" * 65
MALFORMED = [
    (b"not json", "bad_json"),
    (b"{", "bad_json"),
    (b'{"v":1,"op":"list"', "bad_json"),
    (b'{"v":1,"op":"list",}', "bad_json"),
    (b"{'v':1,'op':'list'}", "bad_json"),
    (b'{"v":1,"op":"list"} {"v":1}', "bad_json"),
    (b'{"v":1,"op":"list"} // comment', "bad_json"),
    (b'{"v":NaN,"op":"list"}', "bad_json"),
    (b'{"v":Infinity,"op":"list"}', "bad_json"),
    (b"", "bad_json"),
    (b" \t ", "bad_json"),
    (b'\xef\xbb\xbf{"v":1,"op":"list"}', "bad_json"),
    (b'{"v":1,"op":"get","tenant":"al\x01pha"}', "bad_json"),
    (b'{"v":1,\x00"op":"list"}', "bad_json"),
    (b'{"v":1,"op":"list","id":[[[[[[[[[[[1]]]]]]]]]]]}', "bad_json"),
    (b'{"v":1,"op":"list","id":"\xff"}', "bad_utf8"),
    (b'{"v":1,"op":"list","id":"\xc0\xaf"}', "bad_utf8"),
    (b'{"v":1,"op":"list","id":"\xed\xa0\x80"}', "bad_utf8"),
    (b'{"v":1,"op":"list","id":"\xf4\x90\x80\x80"}', "bad_utf8"),
    (b'{"v":1,"op":"list","id":"\xe2\x82"}', "bad_utf8"),
    (b"[]", "bad_request"),
    (b'"list"', "bad_request"),
    (b"42", "bad_request"),
    (b"null", "bad_request"),
    (b"{}", "bad_request"),
    (b'{"op":"list"}', "bad_request"),
    (b'{"v":"1","op":"list"}', "bad_request"),
    (b'{"v":1.0,"op":"list"}', "bad_request"),
    (b'{"v":2,"op":"list"}', "unsupported_version"),
    (b'{"v":0,"op":"list"}', "unsupported_version"),
    (b'{"v":1}', "bad_request"),
    (b'{"v":1,"op":42}', "bad_request"),
    (b'{"v":1,"op":null}', "bad_request"),
    (b'{"v":1,"op":"fly"}', "unknown_op"),
    (b'{"v":1,"op":"GET","tenant":"alpha"}', "unknown_op"),
    (b'{"v":1,"op":"get"}', "bad_request"),
    (b'{"v":1,"op":"get","tenant":null}', "bad_request"),
    (b'{"v":1,"op":"get","tenant":42}', "bad_request"),
    (b'{"v":1,"op":"get","tenant":"bad name!"}', "bad_request"),
    (b'{"v":1,"op":"get","tenant":"' + LONG_TENANT.encode() + b'"}', "bad_request"),
    (b'{"v":1,"op":"get","tenant":""}', "bad_request"),
    (b'{"v":1,"op":"list","extra":1}', "bad_request"),
    (b'{"v":1,"op":"list","tenant":"alpha"}', "bad_request"),
    (b'{"v":1,"op":"revoke","tenant":"alpha","delete_bucket":"yes"}', "bad_request"),
    (b'{"v":1,"op":"watch","tenants":"alpha"}', "bad_request"),
    (b'{"v":1,"op":"watch","tenants":[]}', "bad_request"),
    (b'{"v":1,"op":"watch","tenants":[1]}', "bad_request"),
    (b'{"v":1,"id":{},"op":"list"}', "bad_request"),
    (b'{"v":1,"id":1.5,"op":"list"}', "bad_request"),
    (b'{"v":1,"id":true,"op":"list"}', "bad_request"),
    (b'{"v":1,"id":"' + b"i" * 129 + b'","op":"list"}', "bad_request"),
    (b'{"v":1,"id":9007199254740993,"op":"list"}', "bad_request"),
]


class ServerTest(BrokerTestCase):

    # -- authorization -------------------------------------------------------------------------

    def test_acl_matrix(self):
        """get/list/admin ops for uids 0, 1000, 1001, a gid-only peer, a supplementary-group-only
        peer, an admin by supplementary group and a stranger."""
        b = self.broker
        admin_ops = [req("provision", tenant="alpha"), req("rotate", tenant="alpha"),
                     req("revoke", tenant="alpha"), req("metrics")]
        # (uid, gid, groups, tenants it may get, is admin)
        peers = [
            (0, 0, [], {"alpha"}, True),
            (1000, 1000, [], {"alpha"}, False),
            (1001, 1001, [], {"beta"}, False),
            (5000, 2000, [], {"beta"}, False),            # primary gid only
            (5001, 5001, [3000], {"gamma"}, False),       # supplementary group only
            (5002, 5002, [10, 3000, 2000], {"beta", "gamma"}, False),
            (5003, 5003, [4000], set(), True),            # admin by supplementary group
            (5004, 5004, [], set(), False),
        ]
        for uid, gid, groups, may_get, admin in peers:
            with self.subTest(uid=uid, gid=gid, groups=groups):
                reqs = [req("get", id=t["name"], tenant=t["name"]) for t in TENANTS]
                reqs.append(req("get", id="nosuch", tenant="nosuch"))
                reqs.append(req("list", id="list"))
                reqs += [dict(r, id="admin-%d" % i) for i, r in enumerate(admin_ops[3:4])]
                reqs.append(req("metrics", id="metrics"))
                data = b"".join(line(r) for r in reqs)
                if uid == 0:
                    replies = b.raw(data)
                else:
                    replies, _ = b.peer(uid, gid, groups, data, expect=len(reqs))
                by_id = {r["id"]: r for r in replies}
                self.assertEqual(len(by_id), len(reqs))
                for t in TENANTS:
                    r = by_id[t["name"]]
                    if t["name"] in may_get:
                        self.assertTrue(r["ok"], r)
                        self.assertTrue(r["result"]["arn"].startswith("arn:aws:secretsmanager:"))
                        self.assertEqual(r["result"]["bucket"], t["bucket"])
                    else:
                        self.assertError(r, "forbidden")
                self.assertError(by_id["nosuch"], "forbidden")
                # list shows what the peer may get; being admin adds nothing (need to know)
                listed = {e["tenant"] for e in by_id["list"]["result"]["tenants"]}
                self.assertEqual(listed, may_get)
                if admin:
                    self.assertTrue(by_id["admin-0"]["ok"], by_id["admin-0"])  # metrics
                    self.assertIn("keybroker_up 1", by_id["metrics"]["result"]["text"])
                else:
                    self.assertError(by_id["admin-0"], "forbidden")
                    self.assertError(by_id["metrics"], "forbidden")
        # every decision was logged with the peer's ids
        authz = [l for l in b.log_lines() if l.get("event") == "authz"]
        self.assertTrue(any(l["uid"] == "5001" and l.get("tenant") == "gamma" and
                            l["result"] == "allow" for l in authz))
        self.assertTrue(any(l["uid"] == "5001" and l.get("tenant") == "alpha" and
                            l["result"] == "deny" for l in authz))
        self.assertTrue(all("pid" in l and "gid" in l for l in authz))

    def test_acl_by_user_and_group_names(self):
        """ACL entries written as user and group names (resolved when the config is loaded).
        The tenant is not provisioned: an allowed peer gets not_ready, a refused one forbidden."""
        user = pwd.getpwuid(0).pw_name
        group = next(g for g in grp.getgrall() if g.gr_gid not in (0, 2000, 3000, 4000))
        b2 = self.new_broker(socket_name="names.sock", provision=False, tenants=[
            {"name": "named", "bucket": "kb-named-data", "access": "read-only",
             "clients": {"users": [user], "groups": [group.gr_name]}}])
        b2.start()
        ask = line(req("get", id=1, tenant="named"))
        self.assertError(b2.raw(ask)[0], "not_ready")
        self.assertError(b2.peer(5000, group.gr_gid, [], ask, expect=1)[0][0], "not_ready")
        self.assertError(b2.peer(5000, 5000, [group.gr_gid], ask, expect=1)[0][0], "not_ready")
        self.assertError(b2.peer(5000, 5000, [], ask, expect=1)[0][0], "forbidden")

    def test_admin_ops_denied_to_non_admins(self):
        b = self.broker
        ops = [req("provision", id=1), req("provision", id=2, tenant="alpha"),
               req("rotate", id=3, tenant="alpha"), req("revoke", id=4, tenant="alpha"),
               req("metrics", id=5)]
        data = b"".join(line(r) for r in ops)
        replies, _ = b.peer(1000, 1000, [], data, expect=len(ops))
        self.assertEqual([r["id"] for r in replies], [1, 2, 3, 4, 5])
        for r in replies:
            self.assertError(r, "forbidden")
        # nothing was revoked
        self.assertEqual(b.raw(line(req("get", tenant="alpha")))[0]["result"]["state"], "ready")

    def test_unknown_tenant_answers_like_forbidden(self):
        """No oracle: the same code and message for a tenant that exists and one that does not."""
        replies, _ = self.broker.peer(1000, 1000, [], line(req("get", id=1, tenant="beta")) +
                                      line(req("get", id=1, tenant="nosuch")) +
                                      line(req("status", id=1, tenant="beta")) +
                                      line(req("status", id=1, tenant="nosuch")), expect=4)
        self.assertEqual(replies[0], replies[1])
        self.assertEqual(replies[2], replies[3])
        self.assertError(replies[0], "forbidden")

    def test_status_and_watch_filtering(self):
        b = self.broker
        replies, _ = b.peer(5001, 5001, [3000], line(req("status", id=1)) +
                            line(req("watch", id=2)), expect=2)
        self.assertEqual([t["tenant"] for t in replies[0]["result"]["tenants"]], ["gamma"])
        self.assertEqual(replies[0]["result"]["tenants"][0]["state"], "ready")
        self.assertEqual(replies[1]["result"]["watching"], ["gamma"])
        replies, _ = b.peer(5001, 5001, [3000],
                            line(req("watch", id=3, tenants=["gamma", "alpha"])), expect=1)
        self.assertError(replies[0], "forbidden", id=3)

    # -- bad input ----------------------------------------------------------------------------

    def test_malformed_inputs_while_a_healthy_client_is_served(self):
        b = self.broker
        self.assertGreaterEqual(len(MALFORMED), 30)
        stop = threading.Event()
        healthy = {"ok": 0, "bad": [], "times": []}

        def serve_healthy():
            with b.connect() as s:
                i = 0
                while not stop.is_set():
                    i += 1
                    r = b.call(s, req("get", id=i, tenant="alpha"))
                    if r.get("ok") and r.get("id") == i:
                        healthy["ok"] += 1
                        healthy["times"].append(time.monotonic())
                    else:
                        healthy["bad"].append(r)
                    time.sleep(0.002)

        t = threading.Thread(target=serve_healthy)
        t.start()
        try:
            time.sleep(0.1)
            started = time.monotonic()
            with b.connect() as s:
                for n, (bad, code) in enumerate(MALFORMED):
                    with self.subTest(line=bad):
                        s.sendall(bad + b"\n" + line(req("list", id="after-%d" % n)))
                        lines, eof = b.read_lines(s, 2)
                        self.assertFalse(eof, "the connection was closed after %r" % bad)
                        err, after = json.loads(lines[0]), json.loads(lines[1])
                        self.assertError(err, code)
                        self.assertTrue(err["error"]["message"])
                        # the connection stays usable
                        self.assertTrue(after["ok"], after)
                        self.assertEqual(after["id"], "after-%d" % n)
                    time.sleep(0.005)
            finished = time.monotonic()
            time.sleep(0.1)
        finally:
            stop.set()
            t.join()
        self.assertEqual(healthy["bad"], [])
        served = [x for x in healthy["times"] if started <= x <= finished]
        self.assertGreater(len(served), 5, "the healthy client was not served meanwhile")
        gaps = [b2 - a for a, b2 in zip(healthy["times"], healthy["times"][1:])]
        self.assertLess(max(gaps), 1.0)

    def test_error_replies_echo_the_id(self):
        replies = self.broker.raw(b'{"v":1,"id":"x-7","op":"fly"}\n'
                                  b'{"v":1,"id":12,"op":"get"}\n'
                                  b'{"v":2,"id":"old","op":"list"}\n'
                                  b'{"id":"first","v":1,"op":"list","bogus":1}\n'
                                  b"garbage\n")
        self.assertError(replies[0], "unknown_op", id="x-7")
        self.assertError(replies[1], "bad_request", id=12)
        self.assertError(replies[2], "unsupported_version", id="old")
        self.assertError(replies[3], "bad_request", id="first")
        self.assertError(replies[4], "bad_json", id=None)

    def test_line_too_long_is_refused_then_closed(self):
        b = self.broker
        # The longest line allowed: 65535 bytes and its newline.
        base = b'{"v":1,"id":"max","op":"list"}'
        exact = base + b" " * (MAX_LINE - 1 - len(base)) + b"\n"
        self.assertEqual(len(exact), MAX_LINE)
        with b.connect() as s:
            s.sendall(exact + line(req("list", id="next")))
            lines, eof = b.read_lines(s, 2)
            self.assertFalse(eof)
            self.assertEqual(json.loads(lines[0])["id"], "max")
            self.assertTrue(json.loads(lines[0])["ok"])
            self.assertEqual(json.loads(lines[1])["id"], "next")
            # One byte more: refused, then the connection is closed.
            s.sendall(base + b" " * (MAX_LINE - len(base)) + b"\n" + line(req("list", id="x")))
            lines, eof = b.read_lines(s, 2)
            self.assertEqual(len(lines), 1)
            self.assertTrue(eof)
            self.assertError(json.loads(lines[0]), "line_too_long")
        # A line that never ends is refused as soon as it is too long, without waiting for '\n'.
        with b.connect() as s:
            s.sendall(b"a" * (MAX_LINE + 10))
            lines, eof = b.read_lines(s, 2)
            self.assertEqual(len(lines), 1)
            self.assertTrue(eof)
            self.assertError(json.loads(lines[0]), "line_too_long")
        # Other connections never noticed.
        self.assertTrue(b.raw(line(req("get", tenant="alpha")))[0]["ok"])

    def test_half_close_is_answered(self):
        """A client that sends and shuts down its side gets every answer, even for a last line
        without its newline, then EOF."""
        b = self.broker
        with b.connect() as s:
            s.sendall(line(req("list", id=1)) + b'{"v":1,"id":2,"op":"status"}')
            s.shutdown(socket.SHUT_WR)
            lines, eof = b.read_lines(s, 3)
        self.assertTrue(eof)
        self.assertEqual([json.loads(l)["id"] for l in lines], [1, 2])

    # -- ordering and limits -------------------------------------------------------------------

    def test_pipelined_answers_keep_request_order(self):
        b = self.broker
        reqs = []
        for i in range(60):
            kind = i % 6
            if kind == 0:
                reqs.append(line(req("get", id=i, tenant="alpha")))
            elif kind == 1:
                reqs.append(line(req("list", id=i)))
            elif kind == 2:
                reqs.append(line(req("status", id=i, tenant="beta")))
            elif kind == 3:
                reqs.append(line(req("fly", id=i)))
            elif kind == 4:
                reqs.append(line(req("get", id=i, tenant="gamma")))  # forbidden for root
            else:
                reqs.append(line(req("metrics", id=i)))  # an admin op answered at once
        replies = b.raw(b"".join(reqs))
        self.assertEqual([r["id"] for r in replies], list(range(60)))

    def test_answers_wait_behind_a_running_provision(self):
        """provision streams progress lines and its result; a get sent right after it in the same
        write is answered only after them."""
        b = self.broker
        with b.connect(timeout=60) as s:
            s.sendall(line(req("provision", id="p", tenant="alpha")) +
                      line(req("get", id="g", tenant="alpha")))
            seen = []
            while not seen or seen[-1].get("id") != "g":
                lines, eof = b.read_lines(s, 1, timeout=60)
                self.assertFalse(eof)
                seen.append(json.loads(lines[0]))
        progress = [r for r in seen if r.get("event") == "progress"]
        self.assertTrue(progress, seen)
        self.assertTrue(all(r["id"] == "p" and r["tenant"] == "alpha" for r in progress))
        self.assertTrue({"start", "done"} & {r["state"] for r in progress})
        final = seen[-2]
        self.assertEqual(final["id"], "p")
        self.assertTrue(final["ok"], final)
        self.assertEqual([(t["tenant"], t["state"]) for t in final["result"]["tenants"]],
                         [("alpha", "ready")])
        self.assertTrue(seen[-1]["ok"])
        self.assertEqual(seen[:-2], progress)

    def test_busy_over_inflight_limit(self):
        """max_inflight_per_connection is 2: a provision and one get may wait, more gets are
        answered busy, in order, and the connection goes on."""
        b = self.broker
        with b.connect(timeout=60) as s:
            s.sendall(line(req("provision", id="p", tenant="beta")) +
                      b"".join(line(req("get", id="g%d" % i, tenant="alpha")) for i in range(4)))
            seen = []
            while len([r for r in seen if r.get("id", "").startswith("g")]) < 4:
                lines, eof = b.read_lines(s, 1, timeout=60)
                self.assertFalse(eof)
                seen.append(json.loads(lines[0]))
            finals = [r for r in seen if r.get("event") is None]
            self.assertEqual([r["id"] for r in finals], ["p", "g0", "g1", "g2", "g3"])
            self.assertTrue(finals[0]["ok"] and finals[1]["ok"])
            for r in finals[2:]:
                self.assertError(r, "busy")
            self.assertTrue(b.call(s, req("get", id="later", tenant="alpha"))["ok"])

    def test_idle_connections_are_closed_but_not_watchers(self):
        b = self.broker  # idle_timeout 2s
        idle = b.connect()
        watcher = b.connect()
        busy = b.connect()
        try:
            self.assertTrue(b.call(idle, req("list"))["ok"])
            self.assertTrue(b.call(watcher, req("watch"))["ok"])
            t0 = time.monotonic()
            while time.monotonic() - t0 < 3.5:
                self.assertTrue(b.call(busy, req("status"))["ok"])
                time.sleep(0.4)
            idle.settimeout(5)
            self.assertEqual(idle.recv(100), b"", "the idle connection was not closed")
            self.assertTrue(b.call(busy, req("status"))["ok"])
            watcher.setblocking(False)
            with self.assertRaises(BlockingIOError):
                watcher.recv(100)  # still open, nothing to read
        finally:
            for s in (idle, watcher, busy):
                s.close()
        self.assertTrue(any(l.get("reason") == "idle timeout" for l in b.log_lines()))

    def test_slow_reader_is_cut_off_and_memory_stays_bounded(self):
        """A client that sends gets and never reads is disconnected once 1 MiB of answers waits
        for it; the broker's memory stays bounded and other clients are served."""
        b = self.broker
        before = b.rss_kib("VmRSS")
        s = b.connect()
        s.setblocking(False)
        request = line(req("get", id=1, tenant="alpha"))
        chunk = request * 200
        sent, closed = 0, False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                sent += s.send(chunk)
            except BlockingIOError:
                time.sleep(0.01)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            # The broker may close while our own receive buffer is full: probe with a peek.
            if sent > 4 * 1024 * 1024:
                break
        if not closed:
            s.setblocking(True)
            s.settimeout(10)
            try:
                while s.recv(1 << 20):
                    pass
                closed = True
            except (ConnectionResetError, BrokenPipeError):
                closed = True
        s.close()
        self.assertTrue(closed, "the slow reader was never disconnected (sent %d)" % sent)
        after = b.rss_kib("VmHWM")
        sys.stderr.write("slow reader: sent %d bytes; keybrokerd RSS %d KiB before, peak %d KiB "
                         "(bound %d KiB)\n" % (sent, before, after, RSS_SLOW_READER_KIB))
        self.assertLess(after, RSS_SLOW_READER_KIB, (before, after))
        self.assertTrue(any("slow reader" in (l.get("reason") or "") for l in b.log_lines()))
        metrics = b.raw(line(req("metrics")))[0]["result"]["text"]
        self.assertIn('keybroker_disconnects_total{reason="slow_reader"} 1', metrics)
        self.assertTrue(b.raw(line(req("get", tenant="alpha")))[0]["ok"])

    def test_stalled_write_is_cut_off(self):
        """A client that asks for less than 1 MiB of answers but never reads them: the broker's
        write stays pending and the connection is closed after 10 s."""
        b = self.broker
        s = b.connect()
        # ~700 KiB of answers: more than the socket buffers hold, less than the 1 MiB bound.
        s.sendall(line(req("get", id=1, tenant="alpha")) * 2200)
        t0 = time.monotonic()
        deadline = t0 + 25
        while time.monotonic() < deadline:
            if any("pending too long" in (l.get("reason") or "") for l in b.log_lines()):
                break
            self.assertTrue(b.raw(line(req("status")))[0]["ok"])
            time.sleep(0.5)
        waited = time.monotonic() - t0
        s.close()
        self.assertTrue(any("pending too long" in (l.get("reason") or "")
                            for l in b.log_lines()), "the stalled writer was not cut off")
        self.assertGreaterEqual(waited, 9.5)

    def test_thousand_connections_hundred_gets_each(self):
        b = self.broker
        arn = self.arn("alpha")
        baseline = b.rss_kib("VmRSS")
        p = subprocess.run([LOADER, b.path, "alpha", arn, "--conns", "1000", "--requests", "100",
                            "--log", b.socket_log], capture_output=True, text=True, timeout=300)
        result = json.loads(p.stdout)
        self.assertEqual(p.returncode, 0, (result, p.stderr))
        self.assertEqual(result["connected"], 1000)
        self.assertEqual(result["ok"], 100000)
        self.assertEqual(result["errors"], 0)
        hwm = b.rss_kib("VmHWM")
        sys.stderr.write("1000x100 gets: %d ms; keybrokerd RSS %d KiB before, peak %d KiB "
                         "(bound %d KiB)\n" % (result["elapsed_ms"], baseline, hwm,
                                               RSS_1000_CONNS_KIB))
        self.assertLess(hwm, RSS_1000_CONNS_KIB)
        metrics = b.raw(line(req("metrics")))[0]["result"]["text"]
        self.assertIn('keybroker_requests_total{op="get",result="ok"}', metrics)
        count = [l for l in metrics.splitlines()
                 if l.startswith('keybroker_requests_total{op="get",result="ok"}')][0]
        self.assertGreaterEqual(int(count.split()[-1]), 100000)

    # -- metrics, watch, provision -------------------------------------------------------------

    def test_metrics_text(self):
        b = self.broker
        b.raw(line(req("get", tenant="alpha")) + line(req("get", tenant="gamma")) + b"x\n")
        text = b.raw(line(req("metrics")))[0]["result"]["text"]
        for series in ("keybroker_up 1", "keybroker_uptime_seconds ", "keybroker_connections ",
                       'keybroker_requests_total{op="get",result="ok"} ',
                       'keybroker_requests_total{op="get",result="forbidden"} ',
                       'keybroker_requests_total{op="invalid",result="bad_json"} 1',
                       'keybroker_authz_total{result="allow"} ',
                       'keybroker_authz_total{result="deny"} ',
                       'keybroker_tenants{state="ready"} 3', "keybroker_aws_calls_total "):
            self.assertIn(series, text)
        for l in text.splitlines():
            self.assertTrue(l.startswith("#") or len(l.split()) == 2, l)

    def test_watch_receives_provisioned_and_revoked(self):
        b = self.broker
        w = b.connect(timeout=60)
        try:
            ack = b.call(w, req("watch", id="w"))
            self.assertEqual(ack["result"]["watching"], ["alpha"])  # root may see alpha only
            # beta is provisioned and revoked too, but root may not see it: no event for it.
            progress, final = b.run_op(req("provision", id="p"))
            self.assertTrue(final["ok"], final)
            self.assertEqual({t["state"] for t in final["result"]["tenants"]}, {"ready"})
            lines, _ = b.read_lines(w, 1, timeout=30)
            ev = json.loads(lines[0])
            self.assertEqual(ev["event"], "provisioned")
            self.assertEqual(ev["tenant"], "alpha")
            self.assertEqual(ev["arn"], self.arn("alpha"))
            self.assertTrue(ev["version_id"])
            self.assertNotIn("id", ev)
            self.collect_secrets()
            with b.connect(timeout=60) as s:
                s.sendall(line(req("revoke", id="rb", tenant="beta")) +
                          line(req("revoke", id="ra", tenant="alpha", force_delete_secret=True)))
                while True:
                    lines, eof = b.read_lines(s, 1, timeout=60)
                    self.assertFalse(eof)
                    r = json.loads(lines[0])
                    if r.get("id") == "ra" and r.get("event") is None:
                        break
            self.assertEqual((r["result"]["tenant"], r["result"]["state"]), ("alpha", "revoked"))
            lines, _ = b.read_lines(w, 1, timeout=30)
            ev = json.loads(lines[0])
            self.assertEqual((ev["event"], ev["tenant"], ev["version_id"]),
                             ("revoked", "alpha", None))
            states = {t["tenant"]: t["state"]
                      for t in b.raw(line(req("status")))[0]["result"]["tenants"]}
            self.assertEqual(states, {"alpha": "revoked"})  # root sees alpha only
            counts = b.tenant_states()
            self.assertEqual((counts["revoked"], counts["ready"]), (2, 1))
            self.assertError(b.raw(line(req("get", tenant="alpha")))[0], "not_ready")
        finally:
            w.close()

    # -- the socket itself ---------------------------------------------------------------------

    def test_socket_mode_group_and_path_checks(self):
        st = os.stat(self.broker.path)
        self.assertEqual(st.st_mode & 0o777, 0o666)
        b2 = self.new_broker(socket_name="strict.sock", mode="0600", group="4242",
                             provision=False)
        b2.start()
        st = os.stat(b2.path)
        self.assertEqual(st.st_mode & 0o777, 0o600)
        self.assertEqual(st.st_gid, 4242)
        # file permissions still apply before the ACL: uid 1000 cannot even connect
        p = subprocess.run(["/usr/bin/setpriv", "--reuid=1000", "--regid=1000", "--clear-groups",
                            "--", os.path.join(os.path.dirname(LOADER), "itest_peer"), b2.path],
                           input=b"", capture_output=True)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn(b"Permission denied", p.stderr)

    def test_stale_socket_replaced_live_socket_refused(self):
        path = os.path.join(self.tmp, "shared.sock")
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(path)
        stale.close()  # the file stays, nobody listens: a crashed broker's leftover
        b2 = self.new_broker(socket_name="shared.sock", provision=False)
        b2.start()
        self.assertEqual(b2.raw(line(req("status")))[0]["ok"], True)
        # A second broker on a live socket refuses to start and leaves it alone.
        b3 = self.new_broker(socket_name="shared.sock", provision=False)
        b3.start(wait=False)
        self.assertEqual(b3.proc.wait(30), 1)
        b3.proc = None
        b3.stderr.close()
        self.assertIn("another keybrokerd serves " + path, b3.stderr_text())
        self.assertEqual(b2.raw(line(req("status")))[0]["ok"], True)
        # A path that is not a socket is never replaced.
        plain = os.path.join(self.tmp, "plain.sock")
        with open(plain, "w") as f:
            f.write("keep me")
        b4 = self.new_broker(socket_name="plain.sock", provision=False)
        b4.start(wait=False)
        self.assertEqual(b4.proc.wait(30), 1)
        b4.proc = None
        b4.stderr.close()
        self.assertIn("is not a socket", b4.stderr_text())
        with open(plain) as f:
            self.assertEqual(f.read(), "keep me")
        # On SIGTERM the broker removes the socket it created.
        self.assertEqual(b2.stop(), 0)
        self.assertFalse(os.path.exists(path))

    def test_socket_activation_with_listen_fds(self):
        """systemd style: the socket is bound by the parent and passed as fd 3 with
        LISTEN_FDS=1 and LISTEN_PID = keybrokerd's pid (the wrapper binds, then execs)."""
        path = os.path.join(self.tmp, "activated.sock")
        b2 = self.new_broker(socket_name="unused.sock", provision=False)
        wrapper = (
            "import os, socket, sys\n"
            "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
            "s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666); s.listen(64)\n"
            "os.dup2(s.fileno(), 3); os.set_inheritable(3, True)\n"
            "env = dict(os.environ, LISTEN_FDS='1', LISTEN_PID=str(os.getpid()))\n"
            "os.execve(sys.argv[2], sys.argv[2:], env)\n")
        b2.start(wait=False, argv=[sys.executable, "-c", wrapper, path] + b2.argv())
        b2.path = path
        b2.wait_socket()
        self.assertTrue(b2.raw(line(req("status")))[0]["ok"])
        replies, _ = b2.peer(1000, 1000, [], line(req("list", id=1)), expect=1)
        self.assertEqual(replies[0]["id"], 1)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "unused.sock")))
        self.assertTrue(any(l.get("event") == "listening" and l.get("activation") == "systemd"
                            for l in b2.log_lines()))
        self.assertEqual(b2.stop(), 0)
        self.assertTrue(os.path.exists(path), "an inherited socket belongs to systemd")

    def test_daemon_command_line(self):
        """Exit 2 on a configuration error (every problem printed), 2 on a daemon flag mixed
        with another mode, and --socket overrides the config's path."""
        bad = os.path.join(self.tmp, "bad.json")
        with open(bad, "w") as f:
            f.write('{"broker": {"limits": {"max_connections": 0}}, "tenants": [{"name": "x"}]}')
        p = subprocess.run([KEYBROKERD, "--config", bad], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("max_connections", p.stderr)
        self.assertIn("bucket", p.stderr)
        p = subprocess.run([KEYBROKERD, "--config", os.path.join(self.tmp, "none.json")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        p = subprocess.run([KEYBROKERD, "--check-config", bad, "--socket", "/tmp/x"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        b2 = self.new_broker(socket_name="cfg.sock", provision=False)
        other = os.path.join(self.tmp, "override.sock")
        b2.start(wait=False, argv=b2.argv("--socket", other))
        b2.path = other
        b2.wait_socket()
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "cfg.sock")))
        self.assertEqual(b2.stop(), 0)
        self.assertFalse(os.path.exists(other))

    def test_process_hardening(self):
        """No core dumps (a core would hold the heap: DESIGN.md I2) and the open-file limit
        raised to its hard limit (one descriptor per client)."""
        b2 = self.new_broker(socket_name="limits.sock", provision=False)
        b2.start(argv=["/usr/bin/prlimit", "--nofile=256:4096", "--core=100000:100000", "--"]
                 + b2.argv())
        b2.wait_socket()
        with open("/proc/%d/limits" % b2.proc.pid) as f:
            limits = {l[:26].strip(): l[26:].split() for l in f.readlines()[1:]}
        self.assertEqual(limits["Max core file size"][:2], ["0", "0"])
        self.assertEqual(limits["Max open files"][:2], ["4096", "4096"])

    def test_sigterm_closes_everything_and_exits_zero(self):
        """SIGTERM with a watcher, a partial line, an idle client and a provision waiting for
        AWS: every connection is closed, the AWS call canceled, the socket removed, exit 0 (under
        ASan: no leak, no use after free)."""
        b = self.broker
        conns = [b.connect() for _ in range(5)]
        b.call(conns[0], req("watch"))
        conns[1].sendall(b'{"v":1,"op":"li')  # a partial line
        b.call(conns[2], req("get", tenant="alpha"))
        self.fa.fault(service="s3", kind="delay", delay_ms=20000)
        conns[3].sendall(line(req("provision", id="p", tenant="beta")) +
                         line(req("get", id="g", tenant="alpha")))
        deadline = time.monotonic() + 10
        while not any(l.get("event") == "authz" and l.get("op") == "provision"
                      for l in b.log_lines()):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        time.sleep(0.3)  # the first S3 call of the provision is now waiting
        t0 = time.monotonic()
        self.assertEqual(b.stop(), 0)
        self.assertLess(time.monotonic() - t0, 10)
        for s in conns:
            s.settimeout(5)
            try:
                while True:  # progress lines of the provision may come first
                    data = s.recv(65536)
                    b.record(data)
                    if not data:
                        break
            except ConnectionResetError:
                pass
            s.close()
        self.assertFalse(os.path.exists(b.path))
        events = [l.get("event") for l in b.log_lines()]
        self.assertIn("shutdown", events)
        self.assertEqual(events[-1], "stopped")


class LimitsTest(BrokerTestCase):
    """Limits that need their own broker settings."""

    limits = {"requests_per_second_per_uid": 20, "max_connections": 3}

    def test_rate_limit_per_uid(self):
        b = self.broker
        # setUp used a few of root's 20 tokens; wait for the bucket to refill.
        time.sleep(1.1)
        replies = b.raw(b"".join(line(req("list", id=i)) for i in range(60)))
        self.assertEqual([r["id"] for r in replies], list(range(60)))
        ok = [r for r in replies if r["ok"]]
        limited = [r for r in replies if not r["ok"]]
        self.assertGreaterEqual(len(ok), 18)
        self.assertLessEqual(len(ok), 24)
        for r in limited:
            self.assertError(r, "rate_limited")
        # a bucket per uid: uid 1000 is not limited by root's burst
        replies, _ = b.peer(1000, 1000, [], line(req("list", id="u")), expect=1)
        self.assertTrue(replies[0]["ok"])
        # and it refills
        time.sleep(1.1)
        self.assertTrue(b.raw(line(req("list")))[0]["ok"])

    def test_max_connections(self):
        b = self.broker
        time.sleep(0.3)  # let setUp's short connections close
        held = [b.connect() for _ in range(3)]
        try:
            for s in held:
                self.assertTrue(b.call(s, req("status"))["ok"])
            with b.connect() as extra:
                lines, eof = b.read_lines(extra, 2)
                self.assertEqual(len(lines), 1)
                self.assertTrue(eof)
                self.assertError(json.loads(lines[0]), "busy")
                self.assertIn("too many connections", json.loads(lines[0])["error"]["message"])
            held.pop().close()
            deadline = time.monotonic() + 5
            while True:
                with b.connect() as s:
                    s.sendall(line(req("status")))
                    lines, _ = b.read_lines(s, 1)
                    if json.loads(lines[0])["ok"]:
                        break
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.1)
        finally:
            for s in held:
                s.close()
        text = b.raw(line(req("metrics")))[0]["result"]["text"]
        self.assertNotIn('keybroker_connections_rejected_total{reason="max_connections"} 0', text)
        self.assertIn('keybroker_connections_rejected_total{reason="max_connections"} ', text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
