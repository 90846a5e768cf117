"""The socket, safely made (broker/server/server.c) and safely found (proto/client_peer.c).

- keybrokerd refuses, at start-up, a socket directory in which another user could replace the
  socket: writable by group or others without the sticky bit, or owned by another uid;
- kbctl (libkeybroker) refuses a socket served by a uid that is not root, its own or the
  configured broker user (KEYBROKER_SERVER_UID, --server-uid), before sending a byte;
- a racer of another uid that plants symlinks at the socket path and at every name it sees
  while keybrokerd starts and stops hundreds of times never gets a file of its choice chmod'ed
  or chown'ed, never sees a half-made socket, and no private directory is left behind.

These daemons serve zero tenants and never provision, so no AWS endpoint is needed (the config
points at a closed port). Other uids are played under setpriv; the tests run as root.
"""

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from brokerfix import KBCTL, SANITIZED, SETPRIV, Broker

STRANGER = 4321  # the uid of the racer and of the fake server
SOCK_GID = 4242  # the socket's configured group
FAKE_ARN = "arn:aws:secretsmanager:us-east-1:666666666666:secret:attacker-XXXXXX"
# The other uids cannot reach a python under /root (pyenv): use the system's.
PYTHON = os.environ.get("KB_PYTHON") or "/usr/bin/python3"
# keybrokerd runs whose start reached the bind path: a sanitized daemon starts
# several times slower, so it is asked for fewer within the same budget
RACE_STARTS = 100 if SANITIZED else 200
RACE_BUDGET_S = 60  # at most, for those starts


class NoAWS:
    """Stands in for FakeAWS: the daemons here make no AWS call."""

    endpoint = "http://127.0.0.1:9"

    def aws_env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "none",
                    "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                    "AWS_EC2_METADATA_DISABLED": "true"})
        return env


def as_uid(uid):
    return [SETPRIV, "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups", "--"]


# A server of another uid at a socket path: answers every request line with a get result that
# carries FAKE_ARN and reports on stdout how many bytes each connection sent it.
FAKE_SERVER = r"""
import json, os, socket, sys
path, arn = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o666)
s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    got = b""
    with c:
        while True:
            data = c.recv(65536)
            if not data:
                break
            got += data
            while b"\n" in got:
                line, got = got.split(b"\n", 1)
                print("request %d" % len(line), flush=True)
                req = json.loads(line)
                res = {"tenant": req.get("tenant", "alpha"), "arn": arn, "bucket": "evil",
                       "prefix": "", "region": "us-east-1", "version_id": None,
                       "last_rotation": None, "state": "ready"}
                c.sendall((json.dumps({"v": 1, "id": req.get("id"), "ok": True,
                                       "result": res}) + "\n").encode())
    print("closed %d" % len(got), flush=True)
"""

# The racer: until SIGTERM, plants symlinks to `target` at the socket path (on and off, so that
# most starts get past the path check), at names a careless implementation might use, and in or
# over every entry of the directory it did not make; tries to swap every socket that appears at
# the path and checks that it is finished (final mode and group). Prints one JSON line at the end.
RACER = r"""
import json, os, signal, stat, sys, time
d, name, target = sys.argv[1], sys.argv[2], sys.argv[3]
mode, gid = int(sys.argv[4], 8), int(sys.argv[5])
path = os.path.join(d, name)
guesses = [os.path.join(d, n) for n in (name + ".tmp", name + ".new", "." + name, name + "~",
                                        ".kb-" + name, ".kb-XXXXXX", name + ".lock")]
out = {"planted": 0, "seen_sockets": 0, "half_made": [], "entries_attacked": 0, "wins": [],
       "guesses": 0}
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
for g in guesses:
    try:
        os.symlink(target, g)
        out["guesses"] += 1
    except OSError:
        pass
mine = set(os.path.basename(g) for g in guesses)
print("ready", flush=True)
while not stop:
    # a symlink at the path one millisecond in three, so that most starts get past the check
    planted = (time.monotonic() * 1000) % 3 < 1
    try:
        st = os.lstat(path)
    except OSError:
        st = None
    if st is None and planted:
        try:
            os.symlink(target, path)
            out["planted"] += 1
        except OSError:
            pass
    elif st is not None and stat.S_ISLNK(st.st_mode) and not planted:
        try:
            os.unlink(path)
        except OSError:
            pass
    elif st is not None and stat.S_ISSOCK(st.st_mode):
        out["seen_sockets"] += 1
        if (st.st_mode & 0o7777, st.st_gid) != (mode, gid):
            out["half_made"].append([oct(st.st_mode & 0o7777), st.st_gid])
        try:  # swap keybrokerd's socket for a symlink
            os.rename(path, path + ".gone")
            out["wins"].append("renamed the socket")
        except OSError:
            pass
        try:
            os.unlink(path)
            out["wins"].append("removed the socket")
            os.symlink(target, path)
        except OSError:
            pass
    try:
        entries = os.listdir(d)
    except OSError:
        entries = []
    for e in entries:
        if e in mine or e == name:
            continue
        p = os.path.join(d, e)
        out["entries_attacked"] += 1
        for what, attempt in (("symlink inside", lambda: os.symlink(target, os.path.join(p, "s"))),
                              ("rename", lambda: os.rename(p, p + ".x")),
                              ("unlink", lambda: os.unlink(p)),
                              ("rmdir", lambda: os.rmdir(p))):
            try:
                attempt()
                out["wins"].append(what + " " + e)
            except OSError:
                pass
print(json.dumps(out), flush=True)
"""


class SocketSafetyTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kb-socket-test-")
        os.chmod(self.tmp, 0o755)
        self.procs = []
        self.brokers = []
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        for b in self.brokers:
            if b.proc is not None and b.proc.poll() is None:
                b.proc.kill()
                b.proc.wait()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            if p.stdout is not None:
                p.stdout.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def errfile(self, name):
        f = open(os.path.join(self.tmp, name + ".stderr"), "wb")
        self.addCleanup(f.close)
        return f

    def errtext(self, name):
        with open(os.path.join(self.tmp, name + ".stderr"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def sockdir(self, name, mode, owner=0):
        d = os.path.join(self.tmp, name)
        os.mkdir(d)
        os.chown(d, owner, owner)
        os.chmod(d, mode)
        return d

    def broker(self, d, name="kb.sock"):
        """A keybrokerd for d/name with no tenants; its config and stderr live outside d."""
        b = Broker(NoAWS(), d, tenants=[], provision=False, mode="0660", group=str(SOCK_GID),
                   socket_name=name)
        b.config = os.path.join(self.tmp, os.path.basename(d) + "-" + name + ".json")
        b.stderr_path = os.path.join(self.tmp, os.path.basename(d) + "-" + name + ".stderr")
        self.brokers.append(b)
        return b

    def refused_at_start(self, b):
        b.start(wait=False)
        rc = b.proc.wait(30)
        b.proc = None
        b.stderr.close()
        return rc, b.stderr_text()

    # -- (1) the directory -----------------------------------------------------------------------

    def test_unsafe_socket_directory_refused_at_start(self):
        cases = [
            ("open", 0o777, 0,
             "is writable by group and others (mode 0777) without the sticky bit"),
            ("groupw", 0o770, 0, "is writable by group (mode 0770) without the sticky bit"),
            ("otherw", 0o703, 0, "is writable by others (mode 0703) without the sticky bit"),
            ("foreign", 0o755, STRANGER, "is owned by uid %d, not root" % STRANGER),
            ("foreignsticky", 0o1777, STRANGER, "is owned by uid %d, not root" % STRANGER),
        ]
        for name, mode, owner, why in cases:
            with self.subTest(name):
                d = self.sockdir(name, mode, owner)
                b = self.broker(d)
                rc, err = self.refused_at_start(b)
                self.assertEqual(rc, 1, err)
                self.assertIn("socket directory %s %s" % (d, why), err)
                self.assertIn("chmod" if owner == 0 else "chown", err)  # how to fix it
                startup = [l for l in b.log_lines() if l.get("event") == "startup"]
                self.assertTrue(startup and startup[0]["level"] == "error", err)
                self.assertIn(d, startup[0]["error"])
                self.assertEqual(os.listdir(d), [], "nothing may be created there")

    def test_safe_socket_directories_accepted(self):
        for name, mode in (("sticky", 0o1777), ("private", 0o700), ("shared", 0o755),
                           ("groupsticky", 0o1770)):
            with self.subTest(name):
                d = self.sockdir(name, mode)
                b = self.broker(d)
                b.start()
                st = os.lstat(b.path)
                self.assertTrue(stat.S_ISSOCK(st.st_mode))
                self.assertEqual((st.st_mode & 0o7777, st.st_uid, st.st_gid),
                                 (0o660, 0, SOCK_GID))
                self.assertEqual(os.listdir(d), ["kb.sock"], "no private directory is left")
                self.assertEqual(b.stop(), 0)
                self.assertEqual(os.listdir(d), [])

    def test_private_directories_left_by_a_crash_are_removed(self):
        """A kill -9 between making the private directory and removing it leaves .kb-XXXXXX
        behind: the next start removes those of its own uid that are over a minute old (with the
        socket in them), and leaves young ones, other users' and other names alone."""
        d = self.sockdir("leftover", 0o1777)
        old, young, foreign, other = (os.path.join(d, n) for n in
                                      (".kb-OLD123", ".kb-NEW123", ".kb-OTH123", ".kb-toolong"))
        for p in (old, young, foreign, other):
            os.mkdir(p, 0o700)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(os.path.join(old, "s"))
        s.close()
        os.chown(foreign, STRANGER, STRANGER)
        an_hour_ago = time.time() - 3600
        for p in (old, foreign, other):
            os.utime(p, (an_hour_ago, an_hour_ago))
        b = self.broker(d)
        b.start()
        left = sorted(os.listdir(d))
        self.assertEqual(left, sorted(["kb.sock", ".kb-NEW123", ".kb-OTH123", ".kb-toolong"]))
        self.assertTrue(any(l.get("removed") == ".kb-OLD123" for l in b.log_lines()))
        self.assertEqual(b.stop(), 0)

    def test_non_root_broker_in_its_own_directory(self):
        """A broker running as uid STRANGER may use a directory it owns (and a root one), not a
        directory of uid 1000."""
        for name, owner, ok in (("own", STRANGER, True), ("rootdir", 0, True),
                                ("someone", 1000, False)):
            with self.subTest(name):
                d = self.sockdir(name, 0o755 if owner else 0o1777, owner)
                b = self.broker(d)
                b.group = None  # a non-root broker may only give its own groups
                argv = as_uid(STRANGER) + b.argv()
                if ok:
                    b.start(argv=argv)
                    st = os.lstat(b.path)
                    self.assertEqual((st.st_mode & 0o7777, st.st_uid), (0o660, STRANGER))
                    self.assertEqual(b.stop(), 0)
                    self.assertEqual(os.listdir(d), [])
                else:
                    b.write_config()
                    b.stderr = open(b.stderr_path, "ab")
                    b.proc = subprocess.Popen(argv, env=b.env(), stdout=subprocess.DEVNULL,
                                              stderr=b.stderr)
                    self.assertEqual(b.proc.wait(30), 1)
                    b.proc = None
                    b.stderr.close()
                    self.assertIn("socket directory %s is owned by uid 1000, not root or "
                                  "keybrokerd's own uid %d" % (d, STRANGER), b.stderr_text())
                    self.assertEqual(os.listdir(d), [])

    def test_stale_socket_in_sticky_directory_replaced_and_plain_file_kept(self):
        d = self.sockdir("stale", 0o1777)
        path = os.path.join(d, "kb.sock")
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(path)
        stale.close()
        b = self.broker(d)
        b.start()
        self.assertEqual(os.lstat(path).st_gid, SOCK_GID)
        self.assertEqual(b.stop(), 0)
        # a symlink at the path is not a socket: refused, and left alone
        target = os.path.join(self.tmp, "target")
        with open(target, "w") as f:
            f.write("keep me")
        os.symlink(target, path)
        b2 = self.broker(d)
        rc, err = self.refused_at_start(b2)
        self.assertEqual(rc, 1)
        self.assertIn(path + " exists and is not a socket", err)
        self.assertEqual(os.readlink(path), target)
        self.assertEqual(sorted(os.listdir(d)), ["kb.sock"])

    # -- (2) the client checks who serves the socket ---------------------------------------------

    def fake_server(self, d):
        path = os.path.join(d, "kb.sock")
        p = subprocess.Popen(as_uid(STRANGER) + [PYTHON, "-c", FAKE_SERVER, path,
                                                 FAKE_ARN],
                             stdout=subprocess.PIPE, stderr=self.errfile("fake-server"), text=True)
        self.procs.append(p)
        self.assertEqual(p.stdout.readline().strip(), "ready", self.errtext("fake-server"))
        return path, p

    def kbctl(self, *args, user=None, env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("KEYBROKER_")}
        e.update(env or {})
        cmd = [KBCTL] + list(args)
        if user is not None:
            cmd = as_uid(user) + cmd
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=e)

    def test_kbctl_refuses_a_socket_served_by_another_uid(self):
        d = self.sockdir("hijack", 0o1777)
        path, server = self.fake_server(d)
        lines = []

        def read_lines():
            for l in server.stdout:
                lines.append(l.strip())

        threading.Thread(target=read_lines, daemon=True).start()
        refused = [
            (("--socket", path, "get", "alpha"), None, {}),
            (("--socket", path, "get", "alpha"), 1000, {}),
            (("--socket", path, "--json", "list"), None, {}),
            (("--socket", path, "credential-process", "alpha"), None, {}),
            (("--socket", path, "get", "alpha"), None, {"KEYBROKER_SERVER_UID": "1000"}),
            # --server-uid overrides the environment
            (("--socket", path, "--server-uid", "1000", "get", "alpha"), None,
             {"KEYBROKER_SERVER_UID": str(STRANGER)}),
            (("get", "alpha"), None, {"KEYBROKER_SOCKET": path}),
        ]
        for args, user, env in refused:
            with self.subTest(args=args, user=user, env=env):
                p = self.kbctl(*args, user=user, env=env)
                self.assertEqual(p.returncode, 3, p.stderr)
                self.assertNotIn(FAKE_ARN, p.stdout)
                self.assertNotIn("attacker", p.stdout)
                self.assertIn("kbctl: %s is served by uid %d, not root, your own uid or the "
                              "broker's user: refusing it" % (path, STRANGER), p.stderr)
                self.assertIn("--server-uid %d" % STRANGER, p.stderr)
                self.assertIn("KEYBROKER_SERVER_UID=%d" % STRANGER, p.stderr)
        # a malformed setting is an error, not ignored
        for env, args in (({"KEYBROKER_SERVER_UID": "no-such-user-5d1f"}, ()),
                          ({"KEYBROKER_SERVER_UID": "-1"}, ()),
                          ({}, ("--server-uid", "4294967295"))):
            with self.subTest(env=env, args=args):
                p = self.kbctl("--socket", path, *args, "get", "alpha", env=env)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("neither a uid (a decimal number) nor the name of a user",
                              p.stderr)
                self.assertNotIn(FAKE_ARN, p.stdout)
        # told that this uid is the broker, kbctl talks to it
        accepted = [
            (("--socket", path, "get", "alpha"), None, {"KEYBROKER_SERVER_UID": str(STRANGER)}),
            (("--socket", path, "--server-uid", str(STRANGER), "get", "alpha"), None, {}),
            (("--socket", path, "--server-uid", str(STRANGER), "get", "alpha"), None,
             {"KEYBROKER_SERVER_UID": "1000"}),
            (("--socket", path, "get", "alpha"), STRANGER, {}),  # its own uid
        ]
        for args, user, env in accepted:
            with self.subTest(args=args, user=user, env=env):
                p = self.kbctl(*args, user=user, env=env)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertIn(FAKE_ARN, p.stdout)
        # one "closed" line per connection, and a "request" line before each answer
        deadline = time.monotonic() + 30
        while len(lines) < len(refused) + 2 * len(accepted) and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()
        out = "\n".join(lines)
        requests = [l for l in lines if l.startswith("request")]
        closed = [l for l in lines if l.startswith("closed")]
        # one request per accepted run; the refused ones (and the malformed settings, which never
        # connected) sent nothing at all
        self.assertEqual(len(requests), len(accepted), out)
        self.assertEqual(len(closed), len(refused) + len(accepted), out)
        self.assertTrue(all(l == "closed 0" for l in closed), out)

    def test_kbctl_accepts_root_broker_from_other_uid(self):
        d = self.sockdir("root", 0o755)
        b = Broker(NoAWS(), d, tenants=[], provision=False, mode="0660", group="1000")
        b.config = os.path.join(self.tmp, "root.json")
        b.stderr_path = os.path.join(self.tmp, "root.stderr")
        self.brokers.append(b)
        b.start()
        p = self.kbctl("--socket", b.path, "list", user=1000)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split(), ["TENANT", "BUCKET", "STATE"])
        self.assertEqual(b.stop(), 0)

    # -- (3) the symlink race --------------------------------------------------------------------

    def test_symlink_race_never_touches_another_file(self):
        """keybrokerd starts until RACE_STARTS starts have reached the bind path (the socket was
        served, or the racer took the name between bind and rename) while the racer works."""
        d = self.sockdir("race", 0o1777)
        target = os.path.join(self.tmp, "target")
        with open(target, "w") as f:
            f.write("the racer wants this file\n")
        os.chmod(target, 0o604)
        before = os.stat(target)
        b = self.broker(d)
        b.write_config()
        racer = subprocess.Popen(as_uid(STRANGER) + [PYTHON, "-c", RACER, d, "kb.sock",
                                                     target, "0660", str(SOCK_GID)],
                                 stdout=subprocess.PIPE, stderr=self.errfile("racer"), text=True)
        self.procs.append(racer)
        self.assertEqual(racer.stdout.readline().strip(), "ready", self.errtext("racer"))
        served = raced = refused_path = 0
        deadline = time.monotonic() + RACE_BUDGET_S
        stderr = open(b.stderr_path, "ab")
        try:
            while served + raced < RACE_STARTS and time.monotonic() < deadline:
                log_at = stderr.tell()
                proc = subprocess.Popen(b.argv(), env=b.env(), stdout=subprocess.DEVNULL,
                                        stderr=stderr)
                up = False
                while proc.poll() is None and not up:
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                        try:
                            s.settimeout(10)
                            s.connect(b.path)
                            # an answer: the loop runs, so SIGTERM is handled
                            s.sendall(b'{"v":1,"op":"status"}\n')
                            up = s.recv(65536).startswith(b'{"v":1')
                        except OSError:
                            time.sleep(0.001)
                if up:
                    proc.send_signal(signal.SIGTERM)
                    self.assertEqual(proc.wait(30), 0)
                    served += 1
                    continue
                self.assertEqual(proc.wait(30), 1)
                with open(b.stderr_path, "rb") as f:
                    f.seek(log_at)
                    err = f.read().decode()
                if "appeared while keybrokerd was making its socket" in err:
                    raced += 1  # past bind: the racer took the name, nothing was replaced
                elif "exists and is not a socket" in err:
                    refused_path += 1  # the racer's symlink sat at the path
                else:
                    self.fail("unexpected start-up failure: " + err)
        finally:
            stderr.close()
            racer.send_signal(signal.SIGTERM)
        out, _ = racer.communicate(timeout=30)
        self.assertEqual(racer.returncode, 0, self.errtext("racer"))
        report = json.loads(out.strip().splitlines()[-1])
        after = os.stat(target)
        self.assertEqual((after.st_mode, after.st_uid, after.st_gid, after.st_ctime_ns),
                         (before.st_mode, before.st_uid, before.st_gid, before.st_ctime_ns),
                         "the target was changed")
        with open(target) as f:
            self.assertEqual(f.read(), "the racer wants this file\n")
        left = [e for e in os.listdir(d) if os.lstat(os.path.join(d, e)).st_uid == 0]
        self.assertEqual(left, [], "keybrokerd left entries behind")
        self.assertEqual(report["wins"], [], "the racer got at keybrokerd's entries")
        self.assertEqual(report["half_made"], [], "a socket was visible before it was finished")
        self.assertGreater(report["seen_sockets"], 0, report)
        self.assertGreater(report["entries_attacked"], 0, report)
        self.assertGreater(report["planted"], 0, report)
        self.assertGreaterEqual(served + raced, RACE_STARTS,
                                "only %d starts reached the bind path in %d s (%d refused at the "
                                "path)" % (served + raced, RACE_BUDGET_S, refused_path))
        print("\nrace: %d served, %d lost the name after bind, %d refused at the path; racer: %r"
              % (served, raced, refused_path, report), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
