"""Rotation hooks (issue 14): keybrokerd's plugin helpers against fakeaws.

Each scenario runs the real daemon with broker.plugins pointing at the test plugins of
tests/plugins (kbtp*.so: one source whose behaviour - ok, fail, segv, loop, exit - comes from its
config) or at an exec hook, copied into the test's own 0755 directory (the helper runs as
"nobody" when the tests run as root, and the loader refuses a group- or world-writable chain).

- A plugin that segfaults, loops or exits at pre_finish: with best_effort the rotation completes
  and the helper comes back (a second "init" in the plugin's own record, a new pid); with required
  the rotation fails with a message naming the hook and the cause, AWSCURRENT stays, the new key
  stays AWSPENDING, the invariants of DESIGN.md section 6 hold, and a broker restarted with a
  healthy hook resumes that same key. All the while `get` is answered.
- ABI: a 1.0 plugin (descriptor of 1.0's size) and a 1.9 plugin (a bigger descriptor) both load
  and get events; a 2.x plugin is refused with a message naming the ABI, and a required pre_finish
  on it fails the rotation.
- A group-writable plugin file stops the start, naming the plugin and the reason.
- The exec hook: argv as configured, KB_* variables and the event as JSON on stdin, nothing else
  in its environment; neither that, its argv, its stdin nor any helper's /proc/PID/environ holds
  a secret access key or the broker's AWS credentials.
brokerfix scans every log line and socket byte for secrets at the end of each test.
"""

import json
import os
import shutil
import subprocess
import threading
import time
import unittest

from brokerfix import BUILD, ROOT_KEY_ID, ROOT_SECRET, line
from invariants import check_invariants, check_no_foreign_grants, version_id
from test_rotate import ALPHA, RotateCase, req

PLUGINS = os.path.join(BUILD, "tests", "plugins")
NOBODY = 65534


def helper_pids(broker_pid):
    """The broker's --plugin-host children."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if ppid == broker_pid and b"--plugin-host" in cmd:
            out.append(int(d))
    return sorted(out)


class PluginCase(RotateCase):
    """A broker with the plugins of self.plugins() (called once self.tmp exists)."""

    def plugins(self):
        return []

    @property
    def broker_extra(self):
        extra = {"reconcile": {"retry_initial": "1s", "retry_max": "2s", "interval": "1h"},
                 "plugin_user": "nobody"}
        if not hasattr(self, "_plugins"):
            self._plugins = self.plugins()
        extra["plugins"] = self._plugins
        return extra

    # -- the test's own plugin directory -------------------------------------------------------

    @property
    def pdir(self):
        d = os.path.join(self.tmp, "plugins")
        if not os.path.isdir(d):
            os.mkdir(d)
            os.chmod(d, 0o755)
            out = os.path.join(self.tmp, "out")
            os.mkdir(out)
            os.chmod(out, 0o777)  # the helper (nobody) writes its records here
        return d

    def so(self, name="kbtp"):
        src = os.path.join(PLUGINS, name + ".so")
        if not os.path.exists(src):
            self.fail(f"{src} is missing: the tests/plugins targets were not built")
        dst = os.path.join(self.pdir, name + ".so")
        if not os.path.exists(dst):
            shutil.copy(src, dst)
            os.chmod(dst, 0o755)
        return dst

    def out(self, name):
        return os.path.join(self.tmp, "out", name)

    def records(self, name):
        try:
            with open(self.out(name)) as f:
                return [l.split() for l in f.read().splitlines()]
        except OSError:
            return []

    def shared(self, name, behavior="ok", on=None, mode="best_effort", hooks=("*",),
               plugin="kbtp", deadline="1s", **conf):
        config = {"out": self.out(name), "behavior": behavior}
        if on is not None:
            config["on"] = on
        config.update(conf)
        return {"name": name, "path": self.so(plugin), "config": config, "mode": mode,
                "hooks": list(hooks), "deadline": deadline}

    def logs(self, event, **match):
        return [l for l in self.broker.log_lines()
                if l.get("event") == event and all(l.get(k) == v for k, v in match.items())]

    def assertHolds(self, pending_ok=False):
        """DESIGN.md section 6 (I1/I4) and no third key; AWSPENDING only when pending_ok."""
        state = self.fa.state()
        problems = check_invariants(state, self.tenants) + check_no_foreign_grants(state)
        if len(self.keys()) > 2:
            problems.append("more than two keys on kb-alpha")
        if not pending_ok and self.labelled("AWSPENDING"):
            problems.append("AWSPENDING left")
        self.assertEqual(problems, [])

    def get_ok(self):
        t0 = time.monotonic()
        r = self.broker.raw(line(req("get", tenant="alpha")))[0]
        self.assertTrue(r["ok"], r)
        return time.monotonic() - t0


class _Misbehaving:
    """A pre_finish plugin that misbehaves (segv / loop / exit), best_effort then required."""
    behavior = None
    cause = None  # what the failure message names

    def plugins(self):
        return [self.shared("bad", behavior=self.behavior, on="pre_finish",
                            mode=self.required_mode)]

    def rotate_serving(self):
        """Rotates while a second thread keeps asking `get`: every get answers within 2 s."""
        result, slow, stop = {}, [], threading.Event()

        def run():
            result["r"] = self.rotate()

        t = threading.Thread(target=run)
        t.start()
        gets = 0
        while t.is_alive():
            took = self.get_ok()
            gets += 1
            if took > 2:
                slow.append(took)
            time.sleep(0.05)
        t.join()
        stop.set()
        self.assertGreater(gets, 0)
        self.assertEqual(slow, [], "get was slow while the plugin misbehaved")
        return result["r"]


class _BestEffort(_Misbehaving):
    required_mode = "best_effort"

    def test_rotation_completes_and_helper_comes_back(self):
        old = self.key_of("AWSCURRENT")
        inits = len([r for r in self.records("bad") if r[0] == "init"])
        pids = helper_pids(self.broker.proc.pid)
        progress, r = self.rotate_serving()
        self.assertTrue(r["ok"], r)
        self.assertIn("rotated", r["result"]["message"])
        self.assertNotEqual(self.key_of("AWSCURRENT"), old)
        self.assertHolds()
        failed = self.logs("plugin-failed", plugin="bad", hook="pre_finish")
        self.assertTrue(failed and self.cause in failed[0]["error"], failed)
        # the helper comes back: a new process, and the plugin's init ran again
        self.wait_for("a new helper", lambda: helper_pids(self.broker.proc.pid) not in ([], pids))
        self.wait_for("the plugin's second init",
                      lambda: len([r for r in self.records("bad") if r[0] == "init"]) > inits)
        self.get_ok()


class _Required(_Misbehaving):
    required_mode = "required"

    def test_rotation_aborts_cleanly(self):
        old_key, old_version = self.key_of("AWSCURRENT"), self.labelled("AWSCURRENT")[0]["version_id"]
        progress, r = self.rotate_serving()
        # a failed rotation leaves the tenant served with its old key: degraded, and why
        self.assertEqual(r["result"]["state"], "degraded", r)
        msg = r["result"]["message"]
        self.assertIn("rotation hook 'bad' (required) failed at pre_finish", msg)
        self.assertIn(self.cause, msg)
        self.assertIn("AWSCURRENT was not moved", msg)
        # AWSCURRENT stays, the new key is AWSPENDING (I1 allows it), get serves the old version
        self.assertEqual(self.key_of("AWSCURRENT"), old_key)
        pending = self.key_of("AWSPENDING")
        self.assertIsNotNone(pending)
        self.assertHolds(pending_ok=True)
        got = self.broker.raw(line(req("get", tenant="alpha")))[0]
        self.assertEqual(got["result"]["version_id"], old_version)
        failed = [l for l in self.logs("rotation-failed", tenant="alpha")]
        self.assertTrue(failed, "no rotation-failed log line")
        # a broker restarted with a healthy hook resumes that very key: nothing was stranded
        self.broker.stop()
        self._plugins = [self.shared("bad", behavior="ok", mode="required")]
        b = self.new_broker(limits=self.limits, broker_extra=self.broker_extra,
                            aws_extra=self.aws_extra, tenants=self.config_tenants,
                            socket_name="kb2.sock")
        self.broker = b
        b.start()
        progress, r = self.rotate()
        self.assertTrue(r["ok"], r)
        self.assertEqual(self.key_of("AWSCURRENT"), pending)
        self.assertEqual(self.key_of("AWSPREVIOUS"), old_key)
        self.assertHolds()
        hooks = [rec for rec in self.records("bad") if rec[0] == "pre_finish"]
        self.assertTrue(any(rec[2] == version_id("alpha", pending) for rec in hooks), hooks)


class TestSegvBestEffort(_BestEffort, PluginCase):
    behavior, cause = "segv", "crashed (signal 11"


class TestSegvRequired(_Required, PluginCase):
    behavior, cause = "segv", "crashed (signal 11"


class TestLoopBestEffort(_BestEffort, PluginCase):
    behavior, cause = "loop", "did not answer within its deadline"


class TestLoopRequired(_Required, PluginCase):
    behavior, cause = "loop", "did not answer within its deadline"


class TestExitBestEffort(_BestEffort, PluginCase):
    behavior, cause = "exit", "exited with status 3"


class TestExitRequired(_Required, PluginCase):
    behavior, cause = "exit", "exited with status 3"


class TestFailRequired(_Required, PluginCase):
    behavior, cause = "fail", "pre_finish"


class TestABI(PluginCase):
    def plugins(self):
        return [self.shared("old", plugin="kbtp_minor0"),
                self.shared("new", plugin="kbtp_minor9"),
                self.shared("wrong", plugin="kbtp_major2", mode="required", hooks=["pre_finish"])]

    def test_minors_load_and_a_wrong_major_is_refused(self):
        # each helper logs its own load: wait for both names (the two lines race each other)
        self.wait_for("both minors loaded", lambda: {"old", "new"} <= {
            l["plugin"] for l in self.logs("plugin-loaded")})
        loaded = {l["plugin"]: l for l in self.logs("plugin-loaded")}
        self.assertEqual(set(loaded), {"old", "new"})
        refused = self.logs("plugin-refused", plugin="wrong")
        self.assertTrue(refused, self.broker.stderr_text()[-2000:])
        self.assertIn("plugin 'wrong' refused", refused[0]["error"])
        self.assertIn("ABI 2", refused[0]["error"])
        # both minors got the provisioning event; a required hook that was refused fails the
        # rotation with the refusal
        self.wait_for("old got provisioned", lambda: ["provisioned", "alpha"] in
                      [r[:2] for r in self.records("old")])
        self.wait_for("new got provisioned", lambda: ["provisioned", "alpha"] in
                      [r[:2] for r in self.records("new")])
        p = self.broker.kbctl("rotate", "alpha")
        self.assertEqual(p.returncode, 1, p)
        out = p.stdout.decode()
        self.assertIn("degraded", out)
        self.assertIn("rotation hook 'wrong' (required) failed at pre_finish", out)
        self.assertIn("ABI 2", out)
        self.assertHolds(pending_ok=True)
        # the 1.0 plugin sees a 1.0-sized event: no rotation id; the 1.9 one sees everything
        self.wait_for("old got pre_finish", lambda: any(r[0] == "pre_finish"
                                                        for r in self.records("old")))
        self.get_ok()


class TestRefusedFile(PluginCase):
    def test_group_writable_plugin_is_refused(self):
        path = self.so("kbtp")
        os.chmod(path, 0o775)
        self.broker.stop()
        b = self.new_broker(limits=self.limits, broker_extra=self.broker_extra,
                            aws_extra=self.aws_extra, tenants=self.config_tenants,
                            socket_name="kb2.sock", provision=False)
        b.write_config()
        with open(b.stderr_path, "ab") as err:
            p = subprocess.run(b.argv(), env=b.env(), stdout=subprocess.DEVNULL, stderr=err,
                               timeout=60)
        self.assertEqual(p.returncode, 1)
        text = b.stderr_text()
        self.assertIn("plugin 'gw' refused", text)
        self.assertIn(path + " is group-writable", text)
        os.chmod(path, 0o755)

    def plugins(self):
        return [self.shared("gw")]


class TestExec(PluginCase):
    @property
    def broker_extra(self):
        extra = PluginCase.broker_extra.fget(self)
        extra["audit"] = {"path": os.path.join(self.tmp, "audit.log"), "chain": "sha256"}
        return extra

    def plugins(self):
        script = os.path.join(self.pdir, "hook.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\n"
                    "out=\"$1\"\n"
                    "n=$(date +%s%N)\n"
                    "env > \"$out/env.$KB_HOOK.$n\"\n"
                    "printf '%s\\n' \"$@\" > \"$out/argv.$KB_HOOK.$n\"\n"
                    "cat > \"$out/stdin.$KB_HOOK.$n\"\n"
                    "echo \"hook $KB_HOOK for $KB_TENANT\"\n"
                    "echo \"to stderr\" >&2\n")
        os.chmod(script, 0o755)
        return [{"name": "run", "type": "exec", "argv": [script, os.path.join(self.tmp, "out"),
                                                          "--flag"],
                 "hooks": ["*"], "mode": "required", "deadline": "5s"}]

    def files(self, kind, hook):
        d = os.path.join(self.tmp, "out")
        return [os.path.join(d, n) for n in sorted(os.listdir(d))
                if n.startswith(f"{kind}.{hook}.")]

    def test_exec_environment_argv_and_stdin(self):
        self.wait_for("provisioned ran", lambda: self.files("stdin", "provisioned"))
        progress, r = self.rotate()
        self.assertTrue(r["ok"], r)
        self.wait_for("post_rotate ran", lambda: self.files("stdin", "post_rotate"))
        # access_denied: uid 1001 may not see alpha
        replies, _ = self.broker.peer(1001, 1001, [], line(req("get", tenant="alpha")))
        self.assertFalse(replies[0]["ok"])
        self.wait_for("access_denied ran", lambda: self.files("stdin", "access_denied"))
        self.collect_secrets()
        self.assertTrue(self.secrets)
        forbidden = set(self.secrets) | {ROOT_SECRET, ROOT_KEY_ID}
        new_version = self.labelled("AWSCURRENT")[0]["version_id"]
        for hook in ("provisioned", "pre_finish", "post_rotate", "access_denied"):
            env_file, argv_file, stdin_file = (self.files(k, hook)[0]
                                               for k in ("env", "argv", "stdin"))
            with open(env_file) as f:
                env = dict(l.split("=", 1) for l in f.read().splitlines() if "=" in l)
            with open(argv_file) as f:
                argv = f.read().splitlines()
            with open(stdin_file) as f:
                ev = json.loads(f.read())
            self.assertEqual(argv, [os.path.join(self.tmp, "out"), "--flag"])
            extra = {k for k in env if not k.startswith("KB_")} - {"PATH", "PWD", "SHLVL", "_"}
            self.assertEqual(extra, set(), f"{hook}: unexpected variables {extra}")
            self.assertEqual(env["KB_HOOK"], hook)
            self.assertEqual(ev["hook"], hook)
            self.assertEqual(ev["tenant"], "alpha")
            self.assertEqual(env["KB_TENANT"], "alpha")
            for blob in (json.dumps(env), json.dumps(argv), json.dumps(ev)):
                for s in forbidden:
                    self.assertNotIn(s, blob, f"{hook}: a secret or the broker's credentials")
            if hook in ("pre_finish", "post_rotate"):
                self.assertEqual(ev["version_id"], new_version)
                self.assertEqual(env["KB_VERSION_ID"], new_version)
                self.assertIn("rotation_id", ev)
                self.assertEqual(env["KB_ROTATION_ID"], ev["rotation_id"])
                self.assertIn("previous_version_id", ev)
            if hook == "access_denied":
                self.assertEqual(ev["peer"]["uid"], 1001)
                self.assertEqual(env["KB_PEER_UID"], "1001")
        pre = json.load(open(self.files("stdin", "pre_finish")[0]))
        post = json.load(open(self.files("stdin", "post_rotate")[0]))
        self.assertEqual(pre["rotation_id"], post["rotation_id"])
        # the output went to the log
        outs = self.logs("plugin-output", plugin="run")
        self.assertTrue(any("hook post_rotate for alpha" in l.get("line", "") for l in outs), outs)
        self.assertTrue(any(l.get("stream") == "stderr" for l in outs), outs)
        # the helper's own environment: PATH and nothing else; its user: nobody when root
        pids = helper_pids(self.broker.proc.pid)
        self.assertEqual(len(pids), 1)
        with open(f"/proc/{pids[0]}/environ", "rb") as f:
            environ = f.read()
        self.assertEqual(environ.split(b"\0")[:-1], [b"PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
        for s in forbidden:
            self.assertNotIn(s.encode(), environ)
        if os.geteuid() == 0:
            self.assertEqual(os.stat(f"/proc/{pids[0]}").st_uid, NOBODY)
        # the audit log records each outcome, and the rotation's records share its id
        with open(os.path.join(self.tmp, "audit.log")) as f:
            records = [json.loads(l) for l in f]
        outcomes = [r for r in records if r.get("event") == "plugin"]
        self.assertTrue(any(r.get("plugin") == "run" and r.get("step") == "post_rotate" and
                            r.get("result") == "ok" and r.get("rotation_id") == post["rotation_id"]
                            for r in outcomes), outcomes)
        rotated = [r for r in records if r.get("event") == "rotated"]
        self.assertEqual([r.get("rotation_id") for r in rotated], [post["rotation_id"]], rotated)
        self.assertHolds()


class TestOrphan(PluginCase):
    def plugins(self):
        return [self.shared("a"), self.shared("b")]

    def test_helpers_die_with_the_broker(self):
        self.wait_for("two helpers", lambda: len(helper_pids(self.broker.proc.pid)) == 2)
        pids = helper_pids(self.broker.proc.pid)
        self.broker.proc.kill()  # SIGKILL: no shutdown of any kind
        self.broker.proc.wait()
        self.broker.proc = None
        self.broker.stderr.close()

        def gone():
            alive = []
            for pid in pids:
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                            alive.append(pid)
                except OSError:
                    pass
            return not alive
        self.wait_for("the helpers to die with the broker", gone, timeout=5)
        # a fresh broker for the secret scan at the end
        b = self.new_broker(limits=self.limits, broker_extra=self.broker_extra,
                            aws_extra=self.aws_extra, tenants=self.config_tenants,
                            socket_name="kb2.sock")
        self.broker = b
        b.start()


MOUNTS = """set -e
t="$1"; shift
mkdir -p "$t/olddev"
mount --bind /dev "$t/olddev"
mount -t tmpfs kbtest /dev
for f in null zero urandom random; do touch "/dev/$f"; mount --bind "$t/olddev/$f" "/dev/$f"; done
ln -s "$t/log" /dev/log
exec "$@"
"""


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare"),
                     "needs root and unshare(1): the broker runs in a private mount namespace "
                     "whose /dev/log is the test's socket")
class TestSyslog(PluginCase):
    """The syslog built-in end to end: keybrokerd in a private mount namespace whose /dev/log
    is a datagram socket of the test (the machine's /dev is never touched)."""

    def setUp(self):
        self.datagrams, self._stop = [], threading.Event()
        super().setUp()

    def plugins(self):
        return [{"name": "sys", "type": "syslog", "facility": "local0"},
                self.shared("other", hooks=["post_rotate"])]

    def new_broker(self, **kw):
        b = super().new_broker(**kw)
        if not hasattr(self, "_sock"):
            import socket
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.bind(os.path.join(self.tmp, "log"))
            os.chmod(os.path.join(self.tmp, "log"), 0o666)
            self._sock.settimeout(0.2)
            t = threading.Thread(target=self._read, daemon=True)
            t.start()
            self.addCleanup(self._stop.set)
        argv = b.argv
        b.argv = lambda *extra: (["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                  MOUNTS, "sh", self.tmp] + argv(*extra))
        return b

    def _read(self):
        while not self._stop.is_set():
            try:
                self.datagrams.append(self._sock.recv(65536).decode("utf-8", "replace"))
            except OSError:
                pass

    def messages(self):
        out = []
        for d in list(self.datagrams):
            head, _, body = d.partition(": ")
            try:
                out.append((head, json.loads(body)))
            except ValueError:
                pass
        return out

    def test_events_and_the_audit_stream_reach_syslog(self):
        progress, r = self.rotate()
        self.assertEqual(r["result"]["state"], "ready", r)
        self.wait_for("post_rotate in syslog", lambda: any(
            m.get("hook") == "post_rotate" for _, m in self.messages()))
        self.wait_for("the other plugin's outcome in syslog", lambda: any(
            m.get("event") == "plugin" and m.get("plugin") == "other" for _, m in self.messages()))
        msgs = self.messages()
        # local0 (16) * 8: notice 133 for hooks, info 134 for the audit stream
        post = [h for h, m in msgs if m.get("hook") == "post_rotate"]
        self.assertTrue(post[0].startswith("<133>"), post)
        audit = [(h, m) for h, m in msgs if m.get("hook") == "audit"]
        self.assertTrue(audit and all(h.startswith("<134>") for h, _ in audit), audit[:3])
        calls = {m.get("operation") for _, m in audit if m.get("event") == "aws_call"}
        self.assertTrue({"CreateAccessKey", "PutSecretValue", "UpdateSecretVersionStage"} <= calls,
                        calls)
        self.assertTrue(any(m.get("event") == "step" and m.get("step") == "move-current"
                            and m.get("result") == "done" for _, m in audit), audit[:5])
        # one message an event: the rotated event is post_rotate, not also audit
        self.assertEqual([m for _, m in audit if m.get("event") == "rotated"], [])
        self.collect_secrets()
        for d in self.datagrams:
            for secret in set(self.secrets) | {ROOT_SECRET}:
                self.assertNotIn(secret, d)


if __name__ == "__main__":
    unittest.main()
