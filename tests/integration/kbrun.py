"""Running keybrokerd against a private fakeaws: configs in a temp dir, the environment, and the
parsed output (progress lines on stdout, JSON log lines on stderr).

    b = Broker(fa, self)                         # self: the TestCase (cleanups, tmp dir)
    cfg = b.config([Tenant("billing", "acme-billing", "read-write", "invoices/")])
    r = b.run(cfg)                               # --provision-only CONFIG
    r.rc, r.summary["billing"], r.events("billing", "store-key"), r.logs

keybrokerd is $KB_BUILD_DIR/broker/keybrokerd (CTest sets KB_BUILD_DIR). Its environment holds
fakeaws's root key, no AWS config files and no instance metadata, so nothing can leave loopback.
"""

import json
import os
import subprocess
import tempfile

from harness import ROOT_KEY_ID, ROOT_SECRET

BUILD = os.environ.get("KB_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..",
                                                    "build", "engine"))
KEYBROKERD = os.path.join(BUILD, "broker", "keybrokerd")


class Result:
    def __init__(self, rc, out, err):
        self.rc = rc
        self.out = out
        self.err = err
        self.lines = [line for line in out.splitlines() if line]
        self.summary = {}
        self.steps = []  # (tenant, step, result, message)
        for line in self.lines:
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] == "summary":
                self.summary[parts[0]] = (parts[2], parts[3] if len(parts) > 3 else "")
            elif len(parts) >= 3:
                self.steps.append((parts[0], parts[1], parts[2],
                                   parts[3] if len(parts) > 3 else ""))
        self.logs = []
        self.bad_log_lines = []
        for line in err.splitlines():
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError
                self.logs.append(obj)
            except ValueError:
                self.bad_log_lines.append(line)

    def events(self, tenant, step=None, result=None):
        return [s for s in self.steps if s[0] == tenant and (step is None or s[1] == step)
                and (result is None or s[2] == result)]

    def state_of(self, tenant):
        return self.summary.get(tenant, (None, ""))[0]

    def __repr__(self):
        return f"Result(rc={self.rc})\n--- stdout\n{self.out}\n--- stderr (tail)\n{self.err[-3000:]}"


class Broker:
    def __init__(self, fa, test):
        self.fa = fa
        self.test = test
        self.tmp = tempfile.mkdtemp(prefix="kb-provision-")
        test.addCleanup(self._cleanup)

    def _cleanup(self):
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)

    def config(self, tenants, name="keybroker.json", broker=None, **aws):
        doc_aws = {"region": "us-east-1", "endpoint_url": self.fa.endpoint,
                   "probe_timeout": 20, "orphan_key_min_age": "1m",
                   "recovery_window_days": 7}
        doc_aws.update(aws)
        doc_broker = {"concurrency": 8, "log_level": "debug"}
        doc_broker.update(broker or {})
        doc = {"broker": doc_broker, "aws": doc_aws,
               "tenants": [t.config() for t in tenants]}
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)
        return path

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({
            "AWS_ACCESS_KEY_ID": ROOT_KEY_ID, "AWS_SECRET_ACCESS_KEY": ROOT_SECRET,
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            # Only a few quick retries: fault tests inject errors on purpose.
            "AWS_MAX_ATTEMPTS": "3",
        })
        env.update(extra)
        return env

    def args(self, cfg, mode="--provision-only", extra=()):
        return [KEYBROKERD, mode, cfg, *extra]

    def run(self, cfg, *extra, mode="--provision-only", timeout=180, env=None, json_log=True):
        """Runs keybrokerd to its end. json_log: every stderr line must be a JSON object (not so
        for configuration and usage errors, which are plain "FILE: problem" lines)."""
        p = subprocess.run(self.args(cfg, mode, extra), env=env or self.env(),
                           capture_output=True, text=True, timeout=timeout)
        r = Result(p.returncode, p.stdout, p.stderr)
        if json_log:
            self.test.assertEqual(r.bad_log_lines, [], f"stderr lines that are not JSON: {r!r}")
        self.test.assertNotIn("Sanitizer", p.stderr)
        self.test.assertNotIn("runtime error", p.stderr)
        return r

    def popen(self, cfg, *extra, mode="--provision-only"):
        return subprocess.Popen(self.args(cfg, mode, extra), env=self.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
