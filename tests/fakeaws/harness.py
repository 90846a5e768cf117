"""Test harness: starts a private fakeaws on a free loopback port and talks to it.

    fa = FakeAWS(key_delay=0)          # extra fakeaws flags: FakeAWS("--rate-limit", "iam=5")
    fa.start(); ...; fa.stop()         # or: with FakeAWS() as fa: ...
    fa.aws("iam", "create-user", "--user-name", "u1")   -> parsed JSON output ({} if none)
    fa.aws_error("iam", "get-user", "--user-name", "x") -> AwsCliError(code, message, stderr)
    fa.signed("iam", "POST", body=b"Action=GetUser&Version=2010-05-08", ...) -> HttpResult
    fa.state(), fa.calls(), fa.control("POST", "/_fakeaws/faults", {...})

`aws` runs Debian's awscli 2 (/usr/bin/aws, explicitly: another `aws` may come first on PATH):
its botocore signer and parsers are an independent, real implementation. Each command runs in a
process forked from a warm awscli (awscli_fork.py: the imports and models are loaded once per
test process, not once per command); KB_AWSCLI_FORK=0 runs /usr/bin/aws itself for each one.
`signed` signs with the same botocore code (awscli's vendored copy) and can tamper with the
request afterwards, for the negative cases awscli itself would never send.
"""

import atexit
import datetime as _dt
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
AWS = "/usr/bin/aws"
PYTHON = os.environ.get("KB_PYTHON", "/usr/bin/python3")
ROOT_KEY_ID = "AKIAFAKEROOT00000000"
ROOT_SECRET = "fakeawsRootSecretKey/0000000000000000000"
ERROR_RE = re.compile(r"An error occurred \(([^)]+)\)(?: when calling the (\w+) operation)?"
                      r"(?: \(reached max retries: \d+\))?: (.*)", re.S)

_SIGNER = None


def _botocore():
    """awscli's vendored botocore, imported from Debian's dist-packages."""
    global _SIGNER
    if _SIGNER is None:
        if "/usr/lib/python3/dist-packages" not in sys.path:
            sys.path.append("/usr/lib/python3/dist-packages")
        # awscli.botocore.auth imports botocore.crt.auth while botocore.crt is still being
        # initialised (a circular import under awscli's module aliasing): load it first.
        import awscli.botocore.crt.auth  # noqa: F401
        from awscli.botocore import auth, awsrequest, credentials
        _SIGNER = (auth, awsrequest, credentials)
    return _SIGNER


class AwsCliError(Exception):
    def __init__(self, code, message, stderr, returncode):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.stderr = stderr
        self.returncode = returncode


class HttpResult:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # dict, lower-case names
        self.body = body

    def json(self):
        return json.loads(self.body)

    def xml_code(self):
        m = re.search(rb"<Code>([^<]*)</Code>", self.body)
        return m.group(1).decode() if m else None

    def json_type(self):
        t = self.json().get("__type", "")
        return t.split("#")[-1]

    def __repr__(self):
        return f"HttpResult({self.status}, {self.body[:300]!r})"


def awscli_base_env():
    """This process's environment without any AWS_ variable, and no config or credentials file,
    instance metadata or pager: what every command starts from. The fork server's warm driver is
    made in it, so it serves each command whose environment agrees (awscli_fork.DRIVER_ENV)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": ""})
    return env


class _AwsForkServer:
    """The harness's end of awscli_fork.py (see there): one per test process, started at the
    first command, ended when this process ends (end of file on its socket)."""

    def __init__(self):
        with open(AWS, "rb") as f:
            line = f.readline()
        if not line.startswith(b"#!"):
            raise RuntimeError(f"{AWS} has no #! line")
        interpreter = line[2:].decode().split()
        self.lock = threading.Lock()
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = awscli_base_env()
        self.log = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(
                interpreter + [os.path.join(HERE, "awscli_fork.py"), str(theirs.fileno())],
                pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL,
                stdout=self.log, stderr=self.log)
        finally:
            theirs.close()
        self.sock.settimeout(60)
        try:
            ready = self.sock.recv(16)
        except OSError as e:
            ready = repr(e).encode()
        if ready != b"ready":
            self.proc.kill()
            self.proc.wait()
            self.log.seek(0)
            raise RuntimeError("awscli fork server did not start: %r %s"
                               % (ready, self.log.read().decode(errors="replace")))
        self.sock.settimeout(None)
        atexit.register(self.close)

    def close(self):
        self.sock.close()  # end of file: the server ends (children still running finish)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def run(self, argv, env, input, timeout):
        files = [tempfile.TemporaryFile() for _ in range(3)]
        stdin, out, err = files
        if input is not None:
            stdin.write(input.encode() if isinstance(input, str) else input)
            stdin.seek(0)
        mine, theirs = socket.socketpair()
        try:
            msg = json.dumps({"argv": argv, "env": env}).encode()
            with self.lock:
                socket.send_fds(self.sock, [msg], [theirs.fileno()] + [f.fileno() for f in files])
            theirs.close()
            mine.settimeout(timeout)
            pid = rc = None
            try:
                with mine.makefile("rb") as reply:
                    for line in reply:
                        doc = json.loads(line)
                        pid = doc.get("pid", pid)
                        rc = doc.get("rc", rc)
            except (socket.timeout, TimeoutError):
                if pid is not None:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                raise subprocess.TimeoutExpired([AWS, *argv], timeout)
            out.seek(0)
            err.seek(0)
            stderr = err.read().decode(errors="replace")
            if rc is None:
                rc = 255
                stderr += "\n(the awscli child ended without an exit status)"
            return subprocess.CompletedProcess([AWS, *argv], rc, out.read().decode(), stderr)
        finally:
            mine.close()
            theirs.close()
            for f in files:
                f.close()


_FORK_SERVER = None
_FORK_LOCK = threading.Lock()


def run_aws(argv, env, input=None, timeout=60):
    """Runs `aws argv...` with this environment: a CompletedProcess with text stdout/stderr."""
    global _FORK_SERVER
    if os.environ.get("KB_AWSCLI_FORK", "1") != "0":
        with _FORK_LOCK:
            if _FORK_SERVER is None:
                try:
                    _FORK_SERVER = _AwsForkServer()
                except (OSError, RuntimeError) as e:
                    print(f"harness: {e}; running {AWS} for each command", file=sys.stderr)
                    _FORK_SERVER = False
        if _FORK_SERVER:
            return _FORK_SERVER.run(list(argv), env, input, timeout)
    return subprocess.run([AWS, *argv], env=env, input=input, capture_output=True, text=True,
                          timeout=timeout)


class FakeAWS:
    def __init__(self, *extra_args, key_delay=0.0, region="us-east-1", tls=None):
        self.extra_args = list(extra_args)
        self.key_delay = key_delay
        self.region = region
        self.tls = tls  # (cert_path, key_path) or None
        self.proc = None
        self.tmp = None
        self.port = None

    @property
    def endpoint(self):
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self):
        self.tmp = tempfile.mkdtemp(prefix="fakeaws-test-")
        port_file = os.path.join(self.tmp, "port")
        args = [PYTHON, "-m", "fakeaws", "--port", "0", "--port-file", port_file,
                "--region", self.region, "--key-delay", str(self.key_delay)]
        if self.tls:
            args += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        self.log_path = os.path.join(self.tmp, "fakeaws.log")
        self.log = open(self.log_path, "w")
        env = dict(os.environ, PYTHONPATH=HERE, PYTHONDONTWRITEBYTECODE="1")
        self.proc = subprocess.Popen(args + self.extra_args, cwd=HERE, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            if os.path.exists(port_file):
                with open(port_file) as f:
                    self.port = int(f.read())
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("fakeaws did not start: " + open(self.log_path).read())

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log.close()
            # A traceback in fakeaws's log is a fakeaws bug even when the client saw an error.
            with open(self.log_path) as f:
                log = f.read()
            if "Traceback" in log:
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise AssertionError("fakeaws logged a traceback:\n" + log)
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- awscli -------------------------------------------------------------------------------

    def aws_env(self, creds=None, region=None, max_attempts=1):
        key_id, secret = creds or (ROOT_KEY_ID, ROOT_SECRET)
        env = awscli_base_env()
        env.update({
            "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": region or self.region,
            "AWS_MAX_ATTEMPTS": str(max_attempts), "AWS_RETRY_MODE": "standard",
        })
        if self.tls:
            env["AWS_CA_BUNDLE"] = self.tls[0]
        return env

    def aws(self, *args, creds=None, region=None, input=None, raw=False, max_attempts=1):
        p = run_aws([*args, "--endpoint-url", self.endpoint, "--output", "json"],
                    self.aws_env(creds, region, max_attempts), input=input, timeout=60)
        if p.returncode != 0:
            m = ERROR_RE.search(p.stderr)
            if m:
                raise AwsCliError(m.group(1), m.group(3).strip(), p.stderr, p.returncode)
            raise AwsCliError(None, p.stderr.strip(), p.stderr, p.returncode)
        if raw:
            return p.stdout
        out = p.stdout.strip()
        return json.loads(out) if out else {}

    def aws_error(self, *args, **kw):
        try:
            out = self.aws(*args, **kw)
        except AwsCliError as e:
            return e
        raise AssertionError(f"expected aws {' '.join(args)} to fail, got {out!r}")

    # -- hand-signed requests -----------------------------------------------------------------

    def signed(self, service, method, path="/", query="", headers=None, body=b"", creds=None,
               region=None, when=None, sign=True, tamper=None, s3_unsigned_payload=False, send_body=None):
        """Sign a request with botocore's SigV4 signer (at time `when`, a datetime in UTC) and
        send it. tamper(headers_dict) may change the signed headers before sending; send_body
        replaces the body after signing."""
        auth, awsrequest, credentials = _botocore()
        if isinstance(body, str):
            body = body.encode()
        url = self.endpoint + path + (("?" + query) if query else "")
        hdrs = dict(headers or {})
        req = awsrequest.AWSRequest(method=method, url=url, data=body, headers=hdrs)
        if sign:
            key_id, secret = creds or (ROOT_KEY_ID, ROOT_SECRET)
            cred = credentials.Credentials(key_id, secret)
            signer_cls = auth.S3SigV4Auth if service == "s3" else auth.SigV4Auth
            signer = signer_cls(cred, service, region or self.region)
            if service == "s3" and s3_unsigned_payload:
                req.context["payload_signing_enabled"] = False
            if service == "s3":
                req.context.setdefault("has_streaming_input", False)
            real = auth.datetime

            class _Clock:
                class datetime(_dt.datetime):
                    @classmethod
                    def utcnow(cls):
                        return when

                    @classmethod
                    def now(cls, tz=None):
                        return when if tz is None else when.replace(tzinfo=tz)

                timezone = _dt.timezone
                timedelta = _dt.timedelta

            if when is not None:
                auth.datetime = _Clock
            try:
                signer.add_auth(req)
            finally:
                auth.datetime = real
        prepared = req.prepare()
        out_headers = {k: v for k, v in prepared.headers.items()}
        if tamper:
            tamper(out_headers)
        body_out = prepared.body or b""
        if send_body is not None:
            body_out = send_body
            out_headers = {k: v for k, v in out_headers.items() if k.lower() != "content-length"}
        return self.raw(method, prepared.url[len(self.endpoint):], out_headers, body_out)

    def raw(self, method, target, headers, body=b""):
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls[0])
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=30)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            if not any(k.lower() == "host" for k in headers):
                conn.putheader("Host", f"127.0.0.1:{self.port}")
            for k, v in headers.items():
                conn.putheader(k, v)
            if body and not any(k.lower() == "content-length" for k in headers):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body if body else None)
            r = conn.getresponse()
            data = r.read()
            return HttpResult(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            conn.close()

    # -- control ------------------------------------------------------------------------------

    def control(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        r = self.raw(method, path, {"Content-Type": "application/json"}, data)
        if r.status != 200:
            raise AssertionError(f"control {method} {path}: {r.status} {r.body!r}")
        return r.json()

    def state(self):
        return self.control("GET", "/_fakeaws/state")

    def calls(self, since=0):
        return self.control("GET", f"/_fakeaws/calls?since={since}")["calls"]

    def fault(self, **rule):
        return self.control("POST", "/_fakeaws/faults", rule)


class FakeAWSTestCase(unittest.TestCase):
    """A test case with its own fakeaws (self.fa), started fresh for every test."""

    fakeaws_args = ()
    key_delay = 0.0

    def setUp(self):
        self.fa = FakeAWS(*self.fakeaws_args, key_delay=self.key_delay).start()
        self.addCleanup(self.fa.stop)

    def assertAwsError(self, code, *args, **kw):
        err = self.fa.aws_error(*args, **kw)
        self.assertEqual(err.code, code, err.stderr)
        return err


def main():
    unittest.main(module="__main__", verbosity=2)
