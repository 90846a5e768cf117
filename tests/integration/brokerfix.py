"""A running keybrokerd for the socket tests: fakeaws, a config in a temporary directory, the
daemon, and clients that record every byte the socket sent.

    class T(BrokerTestCase):
        def test_x(self):
            self.broker.raw(b'{"v":1,"op":"list"}\\n')      -> [reply dicts]
            self.broker.peer(1000, 1000, [], b"...")         -> itest_peer run as uid 1000
            self.broker.kbctl("get", "alpha")                -> CompletedProcess

Every byte read from the socket (by Python, itest_peer, itest_socket or kbctl's stdout) is
appended to one file per test; tearDown reads every SecretAccessKey fakeaws holds (awscli
secretsmanager get-secret-value on every version of every tenant's secret, collected again before
any revoke) and fails the test if one of them appears in those bytes or in keybrokerd's stderr.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import ROOT_KEY_ID, ROOT_SECRET, FakeAWS  # noqa: F401 (re-exported)

BUILD = os.environ.get("KB_BUILD_DIR", "")
BIN = os.environ.get("KB_ITEST_BIN_DIR", "")
KEYBROKERD = os.path.join(BUILD, "broker", "keybrokerd")
KBCTL = os.path.join(BUILD, "proto", "kbctl")
PEER = os.path.join(BIN, "itest_peer")
LOADER = os.path.join(BIN, "itest_socket")
SETPRIV = "/usr/bin/setpriv"
SANITIZED = os.environ.get("KB_SANITIZED") == "1" or "sanitize" in BUILD or "asan" in BUILD

# The tenants of the standard config and who may see them (DESIGN.md I3):
#   alpha: uids 0 and 1000          beta: uid 1001, gid 2000        gamma: gid 3000
# admin: uid 0 and gid 4000 (a supplementary-group admin).
# The standard broker is every tenant's rotator: a tenant with "rotate": false would be followed
# (never provisioned by this broker). The socket tests' cheap authorized admin op is metrics.
TENANTS = [
    {"name": "alpha", "bucket": "kb-alpha-data", "access": "read-write",
     "clients": {"uids": [0, 1000]}},
    {"name": "beta", "bucket": "kb-beta-data", "access": "read-only",
     "clients": {"uids": [1001], "gids": [2000]}},
    {"name": "gamma", "bucket": "kb-gamma-data", "access": "read-only", "prefix": "reports/",
     "clients": {"gids": [3000]}},
]
ADMIN = {"uids": [0], "gids": [4000]}


def line(obj):
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


class Broker:
    """One keybrokerd (and optionally its own fakeaws) in a temporary directory."""

    def __init__(self, fa, tmp, limits=None, tenants=None, mode="0666", group=None,
                 provision=True, log_level="info", socket_name="kb.sock", extra_env=None,
                 broker_extra=None, aws_extra=None):
        self.fa = fa
        self.tmp = tmp
        self.path = os.path.join(tmp, socket_name)
        self.limits = dict(limits or {})
        self.tenants = tenants if tenants is not None else TENANTS
        self.mode = mode
        self.group = group
        self.provision = provision
        self.log_level = log_level
        self.extra_env = extra_env or {}
        self.broker_extra = dict(broker_extra or {})  # more broker.* keys ("reconcile": {...})
        self.aws_extra = dict(aws_extra or {})  # more aws.* keys
        self.proc = None
        self.config = os.path.join(tmp, socket_name + ".json")
        self.stderr_path = os.path.join(tmp, socket_name + ".stderr")
        self.socket_log = None  # set by the test case
        self._leftover = {}  # socket -> bytes read past the last line returned

    # -- life ----------------------------------------------------------------------------------

    def write_config(self):
        sock = {"path": self.path, "mode": self.mode}
        if self.group is not None:
            sock["group"] = self.group
        cfg = {
            "broker": {"socket": sock, "admin": ADMIN, "log_level": self.log_level,
                       "limits": self.limits},
            "aws": {"region": "us-east-1", "endpoint_url": self.fa.endpoint,
                    "s3_force_path_style": True, "probe_timeout": "20s"},
            "tenants": self.tenants,
        }
        cfg["broker"].update(self.broker_extra)
        cfg["aws"].update(self.aws_extra)
        with open(self.config, "w") as f:
            json.dump(cfg, f)

    def env(self):
        env = self.fa.aws_env()
        env.update(self.extra_env)
        return env

    def argv(self, *extra):
        args = [KEYBROKERD, "--config", self.config, "--foreground"]
        if not self.provision:
            args.append("--no-provision-at-start")
        if int(self.mode, 8) & 0o007:
            # "other" may connect: the tests play other uids without creating users or groups
            args.append("--allow-unsafe-permissions")
        return args + list(extra)

    def start(self, wait=True, argv=None, pass_fds=()):
        self.write_config()
        self.stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(argv or self.argv(), env=self.env(), stdout=subprocess.DEVNULL,
                                     stderr=self.stderr, pass_fds=pass_fds)
        if wait:
            self.wait_socket()
            if self.provision:
                self.wait_ready()
        return self

    def wait_socket(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("keybrokerd exited with %s:\n%s" % (self.proc.returncode,
                                                                          self.stderr_text()))
            try:
                self.raw(line({"v": 1, "op": "status"}))
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("keybrokerd did not serve its socket:\n" + self.stderr_text())

    def tenant_states(self):
        """{state: count} from the metrics op (admin: root), which counts every tenant; status
        shows only the tenants in root's ACL. None while rate limited."""
        reply = self.raw(line({"v": 1, "op": "metrics"}))[0]
        if not reply.get("ok"):
            return None
        out = {}
        for l in reply["result"]["text"].splitlines():
            if l.startswith('keybroker_tenants{state="'):
                out[l.split('"')[1]] = int(l.split()[-1])
        return out

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        states = None
        while time.time() < deadline:
            states = self.tenant_states()
            if states is not None and states.get("ready") == len(self.tenants):
                return states
            if states is not None and states.get("error"):
                break
            time.sleep(0.05)
        raise AssertionError("tenants not ready: %r\n%s" % (states, self.stderr_text()[-4000:]))

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops keybrokerd and returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError("keybrokerd did not stop on SIGTERM:\n" + self.stderr_text())
        finally:
            self.stderr.close()
        self.proc = None
        return rc

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_lines(self):
        out = []
        for l in self.stderr_text().splitlines():
            try:
                out.append(json.loads(l))
            except ValueError:
                pass
        return out

    def rss_kib(self, field="VmHWM"):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for l in f:
                if l.startswith(field + ":"):
                    return int(l.split()[1])
        raise AssertionError("no " + field)

    # -- clients ---------------------------------------------------------------------------------

    def record(self, data):
        if self.socket_log is not None and data:
            with open(self.socket_log, "ab") as f:
                f.write(data)

    def connect(self, timeout=10):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(timeout)
            s.connect(self.path)
        except OSError:
            s.close()
            raise
        return s

    def read_lines(self, s, n, timeout=10):
        """Reads n lines from s (fewer when the broker closes the connection); bytes after them
        are kept for the next call on s. Returns (lines without their newline, eof). A reset after
        the broker closed with our unread requests in its queue counts as end of file."""
        buf = self._leftover.pop(s, b"")
        eof = False
        s.settimeout(timeout)
        while buf.count(b"\n") < n:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            self.record(chunk)
            if not chunk:
                eof = True
                break
            buf += chunk
        parts = buf.split(b"\n")
        lines, rest = parts[:min(n, len(parts) - 1)], b"\n".join(parts[min(n, len(parts) - 1):])
        if rest:
            self._leftover[s] = rest
        return lines, eof and not rest

    def raw(self, data, expect=None, timeout=10):
        """Sends data on a new connection, reads `expect` lines (default: one per '\\n' sent),
        returns them as parsed JSON."""
        n = data.count(b"\n") if expect is None else expect
        with self.connect(timeout) as s:
            s.sendall(data)
            lines, _ = self.read_lines(s, n, timeout)
        return [json.loads(l) for l in lines]

    def call(self, s, obj, timeout=10):
        s.sendall(line(obj))
        lines, eof = self.read_lines(s, 1, timeout)
        if eof:
            raise AssertionError("connection closed")
        return json.loads(lines[0])

    def run_op(self, obj, timeout=60):
        """Sends obj on a new connection and reads until its final answer (the first line with
        its id that is not a progress event). Returns (progress lines, final answer)."""
        progress = []
        with self.connect(timeout) as s:
            s.sendall(line(obj))
            while True:
                lines, eof = self.read_lines(s, 1, timeout)
                if eof:
                    raise AssertionError("connection closed before the answer")
                r = json.loads(lines[0])
                if r.get("event") is None:
                    return progress, r
                progress.append(r)

    def peer(self, uid, gid, groups, data, expect=None, timeout=5000, shut=False):
        """itest_peer as uid/gid with supplementary groups; returns (replies, stderr)."""
        cmd = [SETPRIV, "--reuid=%d" % uid, "--regid=%d" % gid]
        cmd += ["--groups=" + ",".join(str(g) for g in groups)] if groups else ["--clear-groups"]
        cmd += ["--", PEER, self.path, "--timeout", str(timeout)]
        if expect is not None:
            cmd += ["--expect", str(expect)]
        if shut:
            cmd.append("--shut")
        p = subprocess.run(cmd, input=data, capture_output=True, timeout=60)
        self.record(p.stdout)
        if p.returncode != 0:
            raise AssertionError("itest_peer failed (%d): %s" % (p.returncode, p.stderr))
        return [json.loads(l) for l in p.stdout.splitlines() if l.strip()], p.stderr.decode()

    def kbctl(self, *args, user=None, timeout=120, env=None):
        """kbctl --socket PATH args... (as (uid, gid, groups) when user is given)."""
        cmd = [KBCTL, "--socket", self.path] + list(args)
        if user is not None:
            uid, gid, groups = user
            pre = [SETPRIV, "--reuid=%d" % uid, "--regid=%d" % gid]
            pre += ["--groups=" + ",".join(map(str, groups))] if groups else ["--clear-groups"]
            cmd = pre + ["--"] + cmd
        p = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)
        # credential-process prints the tenant's secret by design: it is not socket output.
        if "credential-process" not in args:
            self.record(p.stdout)
        self.record(p.stderr)
        return p


class BrokerTestCase(unittest.TestCase):
    """Each test gets a fresh fakeaws and keybrokerd (self.fa, self.broker) with the standard
    tenants provisioned, and the secret scan at the end."""

    limits = {"max_inflight_per_connection": 2, "idle_timeout": "2s",
              "requests_per_second_per_uid": 100000, "max_connections": 2048}
    provision = True
    broker_extra = None  # more broker.* keys of the standard broker's config
    aws_extra = None
    config_tenants = None  # the standard broker's tenants (None: TENANTS)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kb-server-test-")
        os.chmod(self.tmp, 0o755)  # other uids must reach the socket: the ACL decides, not mode
        self.socket_log = os.path.join(self.tmp, "socket-bytes.log")
        self.secrets = set()
        self.brokers = []
        self.fa = FakeAWS().start()
        self.addCleanup(self._cleanup)
        self.broker = self.new_broker(limits=self.limits, provision=self.provision,
                                      broker_extra=self.broker_extra, aws_extra=self.aws_extra,
                                      tenants=self.config_tenants)
        self.broker.start()

    def new_broker(self, **kw):
        b = Broker(self.fa, self.tmp, **kw)
        b.socket_log = self.socket_log
        self.brokers.append(b)
        return b

    def _sm(self, target, body):
        """One Secrets Manager call signed in-process by awscli's botocore (harness.signed): the
        same signer and endpoint as `aws secretsmanager ...`, without a process per call."""
        r = self.fa.signed("secretsmanager", "POST", body=json.dumps(body), headers={
            "X-Amz-Target": "secretsmanager." + target,
            "Content-Type": "application/x-amz-json-1.1"})
        return r.json() if r.status == 200 else None

    def collect_secrets(self):
        """Every SecretAccessKey of every version of every secret fakeaws holds (call before a
        revoke too: a secret scheduled for deletion can no longer be read)."""
        if self.fa.proc is None:
            return
        listed, token = [], None
        while True:  # every page: a follower's tests hold more than one page of secrets
            page = self._sm("ListSecrets", {"NextToken": token} if token else {}) or {}
            listed += page.get("SecretList", [])
            token = page.get("NextToken")
            if not token:
                break
        for sec in listed:
            arn = sec["ARN"]
            versions = self._sm("ListSecretVersionIds", {"SecretId": arn,
                                                         "IncludeDeprecated": True}) or {}
            for v in versions.get("Versions", []):
                val = self._sm("GetSecretValue", {"SecretId": arn, "VersionId": v["VersionId"]})
                if val is None or "SecretString" not in val:
                    continue
                doc = json.loads(val["SecretString"])
                if doc.get("SecretAccessKey"):
                    self.secrets.add(doc["SecretAccessKey"])

    def _cleanup(self):
        statuses = []
        try:
            for b in self.brokers:
                if b.proc is not None:
                    statuses.append(b.stop())
            self.collect_secrets()
            self.assertTrue(self.secrets, "no secret was found to scan for")
            blobs = [b.stderr_text().encode() for b in self.brokers]
            if os.path.exists(self.socket_log):
                with open(self.socket_log, "rb") as f:
                    blobs.append(f.read())
            for secret in self.secrets:
                for blob in blobs:
                    self.assertNotIn(secret.encode(), blob, "a secret left the broker")
            for rc in statuses:
                self.assertEqual(rc, 0, "keybrokerd did not exit cleanly")
        finally:
            for b in self.brokers:  # after a failure above: never leave a daemon behind
                if b.proc is not None and b.proc.poll() is None:
                    b.proc.kill()
                    b.proc.wait()
            self.fa.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers ---------------------------------------------------------------------------------

    def arn(self, tenant):
        return self.broker.raw(line({"v": 1, "op": "get", "tenant": tenant}))[0]["result"]["arn"]

    def assertError(self, reply, code, id=None):
        self.assertIs(reply.get("ok"), False, reply)
        self.assertEqual(reply["error"]["code"], code, reply)
        if id is not None:
            self.assertEqual(reply.get("id"), id, reply)
