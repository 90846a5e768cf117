"""keybrokerd against a careless operator and a curious local user (issue 11): signals, closed
standard descriptors, unsafe file and socket permissions, and where the broker's own secret key
and the tenants' keys may (not) be found: the environment, a core image of the running daemon,
and what permitted peers are told.

Each test ends with brokerfix's checks (no secret in any byte the socket sent or in stderr, exit
0 on SIGTERM) and the DESIGN.md section 6 invariants on fakeaws.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from brokerfix import KEYBROKERD, ROOT_SECRET, SANITIZED, BrokerTestCase, line
from invariants import check_invariants, users


def req(op, **kw):
    o = {"v": 1, "op": op}
    o.update(kw)
    return o


class HardeningTest(BrokerTestCase):

    def tearDown(self):
        self.assertEqual(check_invariants(self.fa.state()), [])

    # -- signals and stdio ---------------------------------------------------------------------

    def test_sighup_sigusr1_sigusr2_leave_the_daemon_serving(self):
        b = self.broker
        arn = self.arn("alpha")
        for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
            b.proc.send_signal(sig)
            time.sleep(0.2)
            self.assertIsNone(b.proc.poll(), "keybrokerd died of %s" % sig.name)
            self.assertEqual(self.arn("alpha"), arn)
        self.assertTrue(os.path.exists(b.path))
        events = [(l.get("event"), l.get("signal")) for l in b.log_lines()]
        self.assertIn(("signal", "SIGHUP"), events)
        self.assertIn(("signal", "SIGUSR1"), events)
        self.assertIn(("signal", "SIGUSR2"), events)
        hup = [l for l in b.log_lines() if l.get("signal") == "SIGHUP"][0]
        self.assertIn("nothing was re-read", hup["message"])

    def test_closed_stdio_runs_and_exits_zero(self):
        """Started with fds 0, 1 and 2 closed: it serves, and SIGTERM ends it with 0 (before,
        libuv's wake-up pipe took fds 1-2, the log went into it and SIGTERM aborted)."""
        b = self.new_broker(socket_name="nostdio.sock", provision=False)
        b.write_config()
        argv = " ".join("'%s'" % a for a in b.argv())
        p = subprocess.Popen(["/bin/sh", "-c", "exec %s <&- >&- 2>&-" % argv], env=b.env(),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            b.proc = p
            b.wait_socket()
            self.assertTrue(b.raw(line(req("list")))[0]["ok"])
            fds = {fd: os.readlink("/proc/%d/fd/%d" % (p.pid, fd)) for fd in (0, 1, 2)}
            self.assertEqual(set(fds.values()), {"/dev/null"}, fds)
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=30), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            b.proc = None

    # -- unsafe permissions --------------------------------------------------------------------

    def check_config(self, path, *extra):
        return subprocess.run([KEYBROKERD, "--check-config", path, *extra], capture_output=True,
                              text=True, timeout=30)

    def test_unsafe_config_file_and_socket_mode_are_refused(self):
        b = self.new_broker(socket_name="perm.sock", mode="0660", provision=False)
        b.write_config()
        self.assertEqual(self.check_config(b.config).returncode, 0)
        cases = [(0o666, None, "writable by group and others (mode 0666)"),
                 (0o646, None, "writable by others (mode 0646)"),
                 (0o664, None, "writable by its group (mode 0664)"),
                 (0o644, 4321, "owned by uid 4321, not by root or the broker's user")]
        for mode, owner, why in cases:
            with self.subTest(mode=oct(mode), owner=owner):
                os.chmod(b.config, mode)
                os.chown(b.config, owner if owner is not None else 0, 0)
                r = self.check_config(b.config)
                self.assertEqual(r.returncode, 2, r)
                self.assertIn(b.config + ": the configuration file is not safe: it is " + why,
                              r.stderr)
                self.assertIn("--allow-unsafe-permissions", r.stderr)
                d = subprocess.run(b.argv(), env=b.env(), capture_output=True, text=True,
                                   timeout=30)
                self.assertEqual(d.returncode, 2, d)
                self.assertIn("is not safe", d.stderr)
                self.assertFalse(os.path.exists(b.path), "a refused daemon made its socket")
                r = self.check_config(b.config, "--allow-unsafe-permissions")
                self.assertEqual(r.returncode, 0, r)
                self.assertIn("warning: the configuration file is not safe", r.stderr)
        os.chmod(b.config, 0o600)
        os.chown(b.config, 0, 0)
        # a socket mode that lets "other" in
        for mode in ("0666", "0662", "0604", "0661"):
            with self.subTest(socket_mode=mode):
                b.mode = mode
                b.write_config()
                r = self.check_config(b.config)
                self.assertEqual(r.returncode, 2, r)
                self.assertIn("broker.socket.mode is not safe: \"%s\" lets every local user "
                              "connect" % mode, r.stderr)
                self.assertEqual(self.check_config(b.config, "--allow-unsafe-permissions")
                                 .returncode, 0)
        b.mode = "0660"

    # -- secrets in the environment and in memory ----------------------------------------------

    def environ(self, pid):
        with open("/proc/%d/environ" % pid, "rb") as f:
            return f.read()

    def test_environ_and_a_core_image_hold_no_secret_key(self):
        """The broker's own secret key (given in AWS_SECRET_ACCESS_KEY) is gone from
        /proc/PID/environ once read, and neither it nor any tenant's secret key is in a gcore
        of the running daemon (guarded pages are excluded from dumps; the rest is wiped)."""
        b = self.broker
        env = self.environ(b.proc.pid)
        self.assertNotIn(ROOT_SECRET.encode(), env)
        self.assertNotIn(b"AWS_SECRET_ACCESS_KEY=" + ROOT_SECRET.encode()[:4], env)
        self.assertIn(b"AWS_REGION", env + b"AWS_REGION")  # the rest of the environment stays
        gcore = shutil.which("gcore")
        if gcore is None:
            self.fail("gcore (Debian package gdb, installed by ./dev deps) is missing")
        if SANITIZED:
            self.skipTest("ASan's shadow memory makes a core image of tens of GiB: the release "
                          "build runs this check")
        self.collect_secrets()
        tmp = tempfile.mkdtemp(prefix="kb-core-")
        try:
            r = subprocess.run([gcore, "-o", os.path.join(tmp, "core"), str(b.proc.pid)],
                               capture_output=True, text=True, timeout=120)
            path = os.path.join(tmp, "core.%d" % b.proc.pid)
            self.assertTrue(os.path.exists(path), "gcore made no core: %s" % r.stderr)
            with open(path, "rb") as f:
                core = f.read()
            self.assertGreater(len(core), 1 << 20)
            self.assertIn(b"keybroker", core)  # it is the daemon's memory
            self.assertNotIn(ROOT_SECRET.encode(), core, "the broker's secret key is in memory")
            for secret in self.secrets:
                self.assertNotIn(secret.encode(), core, "a tenant's secret key is in memory")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.assertEqual(self.arn("alpha")[:4], "arn:")  # still serving after the dump

    def test_peers_are_not_told_access_key_ids(self):
        b = self.broker
        key_ids = [k["id"] for u in users(self.fa.state()).values() for k in u["access_keys"]]
        self.assertTrue(key_ids)
        texts = [json.dumps(b.raw(line(req("status")))),
                 json.dumps(b.raw(line(req("get", tenant="alpha")))),
                 json.dumps(b.run_op(req("provision", tenant="alpha")))]
        for text in texts:
            for kid in key_ids:
                self.assertNotIn(kid, text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
