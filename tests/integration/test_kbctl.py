"""kbctl against a running keybrokerd: every command end to end, its output and its exit codes,
`kbctl watch` receiving events, and `kbctl credential-process` used by awscli as a
credential_process. Run as root and, through setpriv, as other users (brokerfix.py: alpha is for
uids 0 and 1000, beta for uid 1001 and gid 2000, gamma for gid 3000; admin = uid 0, gid 4000).
The secret scan of brokerfix covers kbctl's output too, except credential-process's stdout, which
prints the tenant's key by design (it comes from AWS, not from the socket).
"""

import json
import os
import subprocess
import time
import unittest

from brokerfix import KBCTL, ROOT_KEY_ID, ROOT_SECRET, TENANTS, BrokerTestCase, line

AWS = "/usr/bin/aws"
USER_1000 = (1000, 1000, [])


class KbctlTest(BrokerTestCase):

    def test_get_list_status(self):
        b = self.broker
        arn = self.arn("alpha")
        p = b.kbctl("get", "alpha")
        self.assertEqual(p.returncode, 0, p.stderr)
        fields = dict(l.split(None, 1) for l in p.stdout.decode().splitlines())
        self.assertEqual(fields["arn"], arn)
        self.assertEqual(fields["bucket"], "kb-alpha-data")
        self.assertEqual(fields["region"], "us-east-1")
        self.assertEqual(fields["state"], "ready")
        p = b.kbctl("--json", "get", "gamma", user=(5001, 5001, [3000]))
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = json.loads(p.stdout)
        self.assertEqual((doc["tenant"], doc["prefix"]), ("gamma", "reports/"))
        p = b.kbctl("list", user=USER_1000)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = [l.split() for l in p.stdout.decode().splitlines()]
        self.assertEqual(rows, [["TENANT", "BUCKET", "STATE"], ["alpha", "kb-alpha-data", "ready"]])
        p = b.kbctl("status")
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        self.assertTrue(out.startswith("keybrokerd 0.1.0, up "), out)
        self.assertRegex(out, r"\nalpha +ready +probed-ok")
        self.assertNotIn("beta", out)  # root is admin, but not in beta's ACL
        p = b.kbctl("status", user=(5002, 5002, [3000, 2000]))
        self.assertEqual(p.returncode, 0, p.stderr)
        for t in ("beta", "gamma"):
            self.assertRegex(p.stdout.decode(), r"\n%s +ready +probed-ok" % t)
        p = b.kbctl("--json", "status", "beta", user=(1001, 1001, []))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([t["tenant"] for t in json.loads(p.stdout)["tenants"]], ["beta"])

    def test_exit_codes(self):
        b = self.broker
        cases = [
            (("get", "beta"), USER_1000, 4, b"forbidden"),
            (("get", "nosuch"), USER_1000, 4, b"forbidden"),
            (("provision", "alpha"), USER_1000, 4, b"forbidden"),
            (("metrics",), USER_1000, 4, b"forbidden"),
            (("get",), None, 2, b""),
            (("frobnicate",), None, 2, b""),
        ]
        for args, user, code, text in cases:
            with self.subTest(args=args, user=user):
                p = b.kbctl(*args, user=user)
                self.assertEqual(p.returncode, code, (p.stdout, p.stderr))
                self.assertIn(text, p.stderr)
        p = subprocess.run([KBCTL, "--socket", os.path.join(self.tmp, "none.sock"), "list"],
                           capture_output=True)
        self.assertEqual(p.returncode, 3, p.stderr)
        # not_supported (exit 1): a tenant this broker follows ("rotate": false) is rotated,
        # provisioned and revoked by its rotator only
        f = self.new_broker(socket_name="follow.sock", provision=False, tenants=[
            dict(TENANTS[0], name="fol", bucket="kb-fol-data", rotate=False)])
        f.start()
        for args in (("rotate", "fol"), ("provision", "fol"), ("revoke", "fol")):
            with self.subTest(args=args):
                p = f.kbctl(*args)
                self.assertEqual(p.returncode, 1, (p.stdout, p.stderr))
                self.assertIn(b"not_supported", p.stderr)
                self.assertIn(b"followed by this broker", p.stderr)

    def test_provision_prints_progress(self):
        p = self.broker.kbctl("provision", "beta")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.decode().splitlines()
        steps = [l.split() for l in lines[:-1]]
        self.assertGreater(len(steps), 5)
        self.assertTrue(all(s[0] == "beta" and s[2] in ("start", "done", "skip") for s in steps),
                        lines)
        self.assertIn("bucket", {s[1] for s in steps})
        self.assertEqual(lines[-1].split()[:2], ["beta", "ready"])
        p = self.broker.kbctl("--json", "provision", "gamma")
        self.assertEqual(p.returncode, 0, p.stderr)
        docs = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertTrue(all(d.get("event") == "progress" for d in docs[:-1]))
        self.assertEqual(docs[-1]["tenants"][0]["state"], "ready")

    def test_watch_sees_provision_and_revoke(self):
        b = self.broker
        watch = subprocess.Popen([KBCTL, "--socket", b.path, "--json", "watch", "alpha"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            # subscribed once the broker logged the watch decision
            deadline = time.time() + 20
            while not any(l.get("event") == "authz" and l.get("op") == "watch"
                          for l in b.log_lines()):
                self.assertLess(time.time(), deadline, "kbctl watch did not subscribe")
                time.sleep(0.05)
            p = b.kbctl("provision", "alpha")
            self.assertEqual(p.returncode, 0, p.stderr)
            ev = json.loads(watch.stdout.readline())
            b.record(json.dumps(ev).encode())
            self.assertEqual((ev["event"], ev["tenant"]), ("provisioned", "alpha"))
            self.assertEqual(ev["arn"], self.arn("alpha"))
            self.collect_secrets()
            p = b.kbctl("revoke", "alpha")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout.decode().split()[:2], ["alpha", "revoked"])
            ev = json.loads(watch.stdout.readline())
            b.record(json.dumps(ev).encode())
            self.assertEqual((ev["event"], ev["tenant"]), ("revoked", "alpha"))
            p = b.kbctl("get", "alpha")
            self.assertEqual(p.returncode, 1)
            self.assertIn(b"not_ready", p.stderr)
        finally:
            watch.terminate()
            out, err = watch.communicate(timeout=10)
            b.record(out)

    def test_credential_process_with_awscli(self):
        b = self.broker
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ENDPOINT_URL": self.fa.endpoint, "AWS_ACCESS_KEY_ID": ROOT_KEY_ID,
                    "AWS_SECRET_ACCESS_KEY": ROOT_SECRET, "AWS_CONFIG_FILE": "/dev/null",
                    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                    "AWS_EC2_METADATA_DISABLED": "true"})
        p = b.kbctl("credential-process", "alpha", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = json.loads(p.stdout)
        self.assertEqual(doc["Version"], 1)
        self.assertIn(doc["SecretAccessKey"], self.secrets_now())
        # awscli with credential_process = kbctl ... (the reader's own key in its environment)
        cfg = os.path.join(self.tmp, "aws-config")
        with open(cfg, "w") as f:
            f.write("[profile app]\nregion = us-east-1\ncredential_process = /usr/bin/env "
                    "AWS_ENDPOINT_URL=%s AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s "
                    "AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null %s "
                    "--socket %s credential-process alpha\n"
                    % (self.fa.endpoint, ROOT_KEY_ID, ROOT_SECRET, KBCTL, b.path))
        aenv = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        aenv.update({"AWS_CONFIG_FILE": cfg, "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                     "AWS_PROFILE": "app", "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": ""})

        def aws(*args):
            return subprocess.run([AWS, "--endpoint-url", self.fa.endpoint, "--output", "json"]
                                  + list(args), env=aenv, capture_output=True, text=True,
                                  timeout=60)

        who = aws("sts", "get-caller-identity")
        self.assertEqual(who.returncode, 0, who.stderr)
        self.assertTrue(json.loads(who.stdout)["Arn"].endswith(":user/keybroker/kb-alpha"))
        body = os.path.join(self.tmp, "hello.txt")
        with open(body, "w") as f:
            f.write("hello")
        put = aws("s3api", "put-object", "--bucket", "kb-alpha-data", "--key", "k", "--body", body)
        self.assertEqual(put.returncode, 0, put.stderr)
        denied = aws("s3api", "put-object", "--bucket", "kb-beta-data", "--key", "k", "--body",
                     body)
        self.assertNotEqual(denied.returncode, 0)
        self.assertIn("AccessDenied", denied.stderr)
        # as a user outside alpha's ACL, credential-process gets nothing
        p = b.kbctl("credential-process", "alpha", user=(1001, 1001, []), env=env)
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertEqual(p.stdout, b"")

    def secrets_now(self):
        self.collect_secrets()
        return self.secrets


if __name__ == "__main__":
    unittest.main(verbosity=2)
