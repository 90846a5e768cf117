"""The credentials provider chain end to end: itest_credentials runs the C chain on a libuv loop
against real files, real child processes and a loopback credserver (container endpoint + IMDSv2),
and prints one JSON line per callback. Secrets are never printed: the driver prints the SHA-256 of
what it got, and where fakeaws knows the key it signs sts:GetCallerIdentity with it.

Network: every test either sets AWS_EC2_METADATA_DISABLED=true or points
AWS_EC2_METADATA_SERVICE_ENDPOINT at 127.0.0.1; nothing here leaves the loopback interface.
"""

import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import unittest

from credserver import CredServer
from harness import ROOT_KEY_ID, ROOT_SECRET, FakeAWS

BIN = os.path.join(os.environ.get("KB_ITEST_BIN_DIR", os.path.dirname(__file__)),
                   "itest_credentials")
PROVIDERS = ("config: ", "environment: ", "profile ", "container: ", "imds: ")


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


class CredentialsChainTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kbcreds-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.secrets = []  # every secret a test hands out: none may appear in the output

    # -- helpers --
    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(HOME=self.tmp, AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE="/dev/null",
                   AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        if "AWS_EC2_METADATA_SERVICE_ENDPOINT" in env:
            self.assertTrue(env["AWS_EC2_METADATA_SERVICE_ENDPOINT"].startswith("http://127."))
        else:
            self.assertEqual(env.get("AWS_EC2_METADATA_DISABLED"), "true")
        return env

    def file(self, name, text, mode=0o600):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def script(self, name, body):
        return self.file(name, "#!/bin/sh\n" + body, stat.S_IRWXU)

    def run_driver(self, env, *args, servers=(), timeout=60):
        t0 = time.monotonic()
        p = subprocess.run([BIN, *args], env=env, capture_output=True, text=True, timeout=timeout)
        wall = time.monotonic() - t0
        out = p.stdout + p.stderr
        for s in list(self.secrets) + [x for srv in servers for x in srv.all_secrets()]:
            self.assertNotIn(s, out, "a secret leaked into the driver's output")
        self.assertEqual(p.returncode, 0, out)
        lines = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
        self.assertEqual(lines[-1], {"event": "exit"}, out)
        return [l for l in lines if "ok" in l and "event" not in l], lines, wall

    def one(self, env, *args, **kw):
        results, _, wall = self.run_driver(env, *args, **kw)
        self.assertEqual(len(results), 1, results)
        return results[0], wall

    def assertCreds(self, r, source, key_id, secret, token=None):
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["source"], source)
        self.assertEqual(r["access_key_id"], key_id)
        self.assertEqual(r["secret_sha256"], sha(secret))
        self.assertEqual(r["has_token"], token is not None)
        if token is not None:
            self.assertEqual(r["token_sha256"], sha(token))

    def assertAllProviders(self, r):
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["err"], "KB_ENOCREDS")
        for p in PROVIDERS:
            self.assertIn(p, r["message"])

    # -- environment --
    def test_env_provider(self):
        self.secrets = ["envSecret/0123456789abcdefghijklmnopqrstu", "envToken+" * 40]
        r, _ = self.one(self.env(AWS_ACCESS_KEY_ID="AKIAENV0000000000001",
                                 AWS_SECRET_ACCESS_KEY=self.secrets[0],
                                 AWS_SESSION_TOKEN=self.secrets[1]))
        self.assertCreds(r, "env", "AKIAENV0000000000001", *self.secrets)
        self.assertEqual(r["expiration"], 0)

    def test_env_secret_signs_sts(self):
        """The secret the chain hands out really is the secret: fakeaws verifies a signature."""
        with FakeAWS() as fa:
            env = self.env(AWS_ACCESS_KEY_ID=ROOT_KEY_ID, AWS_SECRET_ACCESS_KEY=ROOT_SECRET)
            _, lines, _ = self.run_driver(env, "--sts-endpoint", fa.endpoint)
            sts = [l for l in lines if l.get("event") == "sts"]
            self.assertEqual(len(sts), 1, lines)
            self.assertTrue(sts[0]["ok"], sts)
            self.assertIn(":root", sts[0]["arn"])
            # a wrong secret is refused: the check above can fail
            env["AWS_SECRET_ACCESS_KEY"] = "wrong" + ROOT_SECRET[5:]
            _, lines, _ = self.run_driver(env, "--sts-endpoint", fa.endpoint)
            sts = [l for l in lines if l.get("event") == "sts"]
            self.assertFalse(sts[0]["ok"])
            self.assertEqual(sts[0]["code"], "SignatureDoesNotMatch")

    def test_env_id_without_secret(self):
        r, _ = self.one(self.env(AWS_ACCESS_KEY_ID="AKIAENV0000000000001"))
        self.assertAllProviders(r)
        self.assertIn("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not", r["message"])

    def test_explicit_config_beats_env(self):
        self.secrets = ["explicitSecret0123456789", "envSecret0123456789"]
        env = self.env(AWS_ACCESS_KEY_ID="AKIAENV0000000000001",
                       AWS_SECRET_ACCESS_KEY=self.secrets[1], KB_TEST_EXPLICIT_SECRET=self.secrets[0])
        r, _ = self.one(env, "--explicit-id", "AKIAEXPLICIT00000001")
        self.assertCreds(r, "config", "AKIAEXPLICIT00000001", self.secrets[0])

    # -- shared files --
    def test_profile_from_credentials_file(self):
        self.secrets = ["defaultSecret0123456789", "devSecret0123456789", "devToken0123456789"]
        cred = self.file("credentials",
                         "[default]\naws_access_key_id = AKIADEFAULT000000001\n"
                         "aws_secret_access_key = %s\n\n"
                         "[dev]\naws_access_key_id = AKIADEV0000000000001\n"
                         "aws_secret_access_key = %s\naws_session_token = %s\n" % tuple(self.secrets))
        r, _ = self.one(self.env(AWS_SHARED_CREDENTIALS_FILE=cred, AWS_PROFILE="dev"))
        self.assertCreds(r, "profile", "AKIADEV0000000000001", self.secrets[1], self.secrets[2])
        r, _ = self.one(self.env(AWS_SHARED_CREDENTIALS_FILE=cred))
        self.assertCreds(r, "profile", "AKIADEFAULT000000001", self.secrets[0])
        # the driver's --profile (the config's) beats AWS_PROFILE
        r, _ = self.one(self.env(AWS_SHARED_CREDENTIALS_FILE=cred, AWS_PROFILE="dev"),
                        "--profile", "default")
        self.assertEqual(r["access_key_id"], "AKIADEFAULT000000001")

    def test_profile_from_default_home_files(self):
        """Without the variables, ~/.aws/credentials under HOME is read."""
        self.secrets = ["homeSecret0123456789"]
        os.mkdir(os.path.join(self.tmp, ".aws"))
        self.file(".aws/credentials", "[default]\naws_access_key_id = AKIAHOME000000000001\n"
                  "aws_secret_access_key = %s\n" % self.secrets[0])
        r, _ = self.one(self.env(AWS_SHARED_CREDENTIALS_FILE=None, AWS_CONFIG_FILE=None))
        self.assertCreds(r, "profile", "AKIAHOME000000000001", self.secrets[0])

    def test_profile_section_in_config_file(self):
        self.secrets = ["opsSecret0123456789", "wrongSecret0123456789"]
        conf = self.file("config",
                         "[ops]\naws_access_key_id = AKIAWRONG00000000001\n"
                         "aws_secret_access_key = %s\n"
                         "[profile ops]\nregion = eu-west-1\n"
                         "aws_access_key_id = AKIAOPS0000000000001\naws_secret_access_key = %s\n"
                         % (self.secrets[1], self.secrets[0]))
        r, _ = self.one(self.env(AWS_CONFIG_FILE=conf, AWS_PROFILE="ops"))
        self.assertCreds(r, "profile", "AKIAOPS0000000000001", self.secrets[0])

    def test_profile_credentials_file_wins_over_config(self):
        self.secrets = ["credFileSecret0123456789", "confFileSecret0123456789"]
        cred = self.file("credentials", "[app]\naws_access_key_id = AKIACRED000000000001\n"
                         "aws_secret_access_key = %s\n" % self.secrets[0])
        conf = self.file("config", "[profile app]\naws_access_key_id = AKIACONF000000000001\n"
                         "aws_secret_access_key = %s\n" % self.secrets[1])
        r, _ = self.one(self.env(AWS_SHARED_CREDENTIALS_FILE=cred, AWS_CONFIG_FILE=conf,
                                 AWS_PROFILE="app"))
        self.assertCreds(r, "profile", "AKIACRED000000000001", self.secrets[0])

    def test_profile_missing_and_partial(self):
        cred = self.file("credentials", "[half]\naws_access_key_id = AKIAHALF000000000001\n")
        r, _ = self.one(self.env(AWS_SHARED_CREDENTIALS_FILE=cred, AWS_PROFILE="half"))
        self.assertAllProviders(r)
        self.assertIn('profile "half": aws_access_key_id is set but aws_secret_access_key is not',
                      r["message"])
        r, _ = self.one(self.env(AWS_SHARED_CREDENTIALS_FILE=cred, AWS_PROFILE="ghost"))
        self.assertIn('profile "ghost": not found in ' + cred, r["message"])

    # -- credential_process --
    def process_profile(self, command, **env):
        conf = self.file("config", "[profile proc]\ncredential_process = %s\n" % command)
        return self.env(AWS_CONFIG_FILE=conf, AWS_PROFILE="proc", **env)

    def test_process_success(self):
        with FakeAWS() as fa:
            fa.aws("iam", "create-user", "--user-name", "proc-user")
            key = fa.aws("iam", "create-access-key", "--user-name", "proc-user")["AccessKey"]
            self.secrets = [key["SecretAccessKey"]]
            doc = {"Version": 1, "AccessKeyId": key["AccessKeyId"],
                   "SecretAccessKey": key["SecretAccessKey"],
                   "Expiration": "2099-01-01T00:00:00Z"}
            self.file("creds.json", json.dumps(doc))
            # the command runs through /bin/sh -c: quoting and ';' work as in the SDKs
            cmd = "cat '%s/creds.json'; echo 'noise on stderr' >&2" % self.tmp
            _, lines, _ = self.run_driver(self.process_profile(cmd), "--sts-endpoint", fa.endpoint)
        r = lines[0]
        self.assertCreds(r, "process", key["AccessKeyId"], key["SecretAccessKey"])
        self.assertEqual(r["expiration"], 4070908800)
        sts = [l for l in lines if l.get("event") == "sts"]
        self.assertTrue(sts[0]["ok"], sts)
        self.assertTrue(sts[0]["arn"].endswith(":user/proc-user"), sts)

    def test_process_exit_code(self):
        self.secrets = ["processSecretThatMustNotLeak0123"]
        doc = json.dumps({"Version": 1, "AccessKeyId": "AKIAPROC000000000001",
                          "SecretAccessKey": self.secrets[0]})
        cmd = self.script("fail.sh", "echo '%s'\necho 'access denied by policy' >&2\nexit 3\n" % doc)
        r, _ = self.one(self.process_profile(cmd))
        self.assertAllProviders(r)
        self.assertIn("credential_process exited with code 3", r["message"])
        self.assertIn("access denied by policy", r["message"])

    def test_process_timeout_kills_the_group(self):
        pidfile = os.path.join(self.tmp, "pid")
        cmd = self.script("slow.sh", "sleep 60 &\necho $! > '%s'\nwait\n" % pidfile)
        r, wall = self.one(self.process_profile(cmd), "--process-timeout-ms", "500")
        self.assertAllProviders(r)
        self.assertIn("timed out after 500 ms", r["message"])
        self.assertLess(r["elapsed_ms"], 1500)
        self.assertLess(wall, 5)
        with open(pidfile) as f:
            pid = int(f.read())
        deadline = time.time() + 2
        while alive(pid) and time.time() < deadline:
            time.sleep(0.05)
        self.assertFalse(alive(pid), "the grandchild `sleep 60` survived the timeout")

    def test_process_invalid_json(self):
        for out, why in (("not json at all", "not valid JSON"),
                         ('{"Version": 2, "AccessKeyId": "AKIAX", "SecretAccessKey": "s"}',
                          '"Version" must be the number 1'),
                         ('{"Version": 1, "AccessKeyId": "AKIAX"}', '"SecretAccessKey"'),
                         ('{"Version": 1, "AccessKeyId": "AKIAX", "SecretAccessKey": "s", '
                          '"Expiration": "soon"}', '"Expiration"')):
            self.file("out.txt", out)
            r, _ = self.one(self.process_profile("cat '%s/out.txt'" % self.tmp))
            self.assertAllProviders(r)
            self.assertIn("credential_process output: " + why, r["message"])

    def test_process_output_too_large(self):
        r, wall = self.one(self.process_profile("yes x | head -c 200000"))
        self.assertAllProviders(r)
        self.assertIn("credential_process printed more than 65536 bytes (killed)", r["message"])
        self.assertLess(wall, 10)

    def test_destroy_while_process_runs(self):
        pidfile = os.path.join(self.tmp, "pid")
        cmd = self.script("slow.sh", "sleep 60 &\necho $! > '%s'\nwait\n" % pidfile)
        results, lines, wall = self.run_driver(self.process_profile(cmd), "--destroy-after-ms",
                                               "300")
        self.assertIn({"event": "destroy"}, lines)
        self.assertEqual(len(results), 1)
        self.assertEqual(results[0]["err"], "KB_ECANCELED")
        self.assertLess(wall, 5)
        with open(pidfile) as f:
            pid = int(f.read())
        deadline = time.time() + 2
        while alive(pid) and time.time() < deadline:
            time.sleep(0.05)
        self.assertFalse(alive(pid))

    # -- container --
    def test_container_full_uri_with_token(self):
        with CredServer(container_token="Bearer kb-container-token") as srv:
            self.secrets = ["Bearer kb-container-token"]
            env = self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI=srv.container_url,
                           AWS_CONTAINER_AUTHORIZATION_TOKEN="Bearer kb-container-token")
            r, _ = self.one(env, servers=[srv])
            c = srv.issued[0]
            self.assertCreds(r, "container", c["AccessKeyId"], c["SecretAccessKey"], c["Token"])
            self.assertEqual([e["auth_valid"] for e in srv.log], [True])
            # a wrong token: the endpoint's 401 becomes a reason
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "Bearer wrong"
            r, _ = self.one(env, servers=[srv])
            self.assertAllProviders(r)
            self.assertIn("container: container endpoint: HTTP 401", r["message"])

    def test_container_token_file(self):
        with CredServer(container_token="file-token-value") as srv:
            self.secrets = ["file-token-value"]
            tok = self.file("token", "file-token-value\n")
            # the file wins over the variable, and is read at fetch time
            env = self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI=srv.container_url,
                           AWS_CONTAINER_AUTHORIZATION_TOKEN="env-token-loses",
                           AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=tok)
            r, _ = self.one(env, servers=[srv])
            c = srv.issued[0]
            self.assertCreds(r, "container", c["AccessKeyId"], c["SecretAccessKey"], c["Token"])
            self.assertEqual(len(srv.requests("GET", srv.container_path)), 1)
            os.unlink(tok)
            r, _ = self.one(env, servers=[srv])
            self.assertIn("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", r["message"])
            self.assertEqual(len(srv.log), 1)

    def test_container_full_uri_refused_without_connection(self):
        with CredServer() as srv:
            # IPv4-mapped loopback is still this server, but not on the allow-list: if the chain
            # connected anyway, credserver would log it
            for uri in ("http://[::ffff:127.0.0.1]:%d%s" % (srv.port, srv.container_path),
                        "ftp://127.0.0.1:%d/x" % srv.port):
                r, wall = self.one(self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI=uri))
                self.assertAllProviders(r)
                self.assertIn("AWS_CONTAINER_CREDENTIALS_FULL_URI", r["message"])
                self.assertLess(wall, 5)
            self.assertEqual(srv.log, [])

    # -- IMDSv2 --
    def imds_env(self, srv, **extra):
        return self.env(AWS_EC2_METADATA_DISABLED=None,
                        AWS_EC2_METADATA_SERVICE_ENDPOINT=srv.url + "/", **extra)

    def test_imds_v2_flow(self):
        with CredServer(role="kb-instance-role") as srv:
            r, _ = self.one(self.imds_env(srv), servers=[srv])
            c = srv.issued[0]
            self.assertCreds(r, "imds", c["AccessKeyId"], c["SecretAccessKey"], c["Token"])
            flow = [(e["method"], e["path"], e.get("token_valid")) for e in srv.log]
            self.assertEqual(flow, [
                ("PUT", "/latest/api/token", None),
                ("GET", "/latest/meta-data/iam/security-credentials/", True),
                ("GET", "/latest/meta-data/iam/security-credentials/kb-instance-role", True)])
            self.assertEqual(srv.log[0]["ttl"], "21600")

    def test_imds_disabled_is_case_insensitive(self):
        with CredServer() as srv:
            env = self.env(AWS_EC2_METADATA_DISABLED="TrUe",
                           AWS_EC2_METADATA_SERVICE_ENDPOINT=srv.url)
            r, _ = self.one(env)
            self.assertIn("imds: disabled by AWS_EC2_METADATA_DISABLED", r["message"])
            self.assertEqual(srv.log, [])

    def test_imds_unreachable_fails_fast(self):
        env = self.env(AWS_EC2_METADATA_DISABLED=None,
                       AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:%d" % closed_port())
        r, wall = self.one(env)
        self.assertAllProviders(r)
        self.assertIn("imds: IMDS token request failed", r["message"])
        self.assertLess(r["elapsed_ms"], 2000)
        self.assertLess(wall, 10)

    def test_imds_silent_endpoint_times_out(self):
        """An endpoint that accepts but never answers in time (a black hole) costs the timeout."""
        with CredServer(delay=3) as srv:
            r, _ = self.one(self.imds_env(srv), "--imds-timeout-ms", "300")
            self.assertAllProviders(r)
            self.assertIn("timed out", r["message"])
            self.assertLess(r["elapsed_ms"], 2000)

    def test_imds_refreshes_expiring_credentials(self):
        # 4 minutes ahead: inside the 5-minute refresh window, so every get fetches again
        with CredServer(expires_in=240) as srv:
            results, _, _ = self.run_driver(self.imds_env(srv), "--rounds", "2", servers=[srv])
            self.assertEqual([r["access_key_id"] for r in results],
                             [c["AccessKeyId"] for c in srv.issued])
            self.assertEqual(len(srv.issued), 2)
            # the session token is reused for the second fetch (one PUT)
            self.assertEqual(len(srv.requests("PUT")), 1)
            self.assertTrue(all(e.get("token_valid", True) for e in srv.log))

    def test_imds_new_token_after_401(self):
        with CredServer(expires_in=240) as srv:
            # revoke the session token between the two rounds: the reused one gets a 401
            env = self.imds_env(srv)
            p = subprocess.Popen([BIN, "--rounds", "2", "--delay-ms", "1500"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.time() + 10
            while len(srv.issued) < 1 and time.time() < deadline:
                time.sleep(0.02)
            srv.revoke_tokens()
            out, err = p.communicate(timeout=30)
            self.assertEqual(p.returncode, 0, err)
            results = [json.loads(l) for l in out.splitlines() if '"ok"' in l]
            self.assertTrue(all(r["ok"] for r in results), results)
            self.assertEqual(len(results), 2)
            self.assertEqual([e["method"] for e in srv.log], ["PUT", "GET", "GET",
                                                              "GET", "PUT", "GET", "GET"])
            self.assertEqual(srv.log[3]["status"], 401)
            for s in srv.all_secrets():
                self.assertNotIn(s, out + err)

    def test_cache_non_expiring_and_concurrent_share_one_run(self):
        with CredServer(expires_in=3600) as srv:
            env = self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI=srv.container_url)
            results, _, _ = self.run_driver(env, "--rounds", "2", "--concurrent", "3",
                                            servers=[srv])
            self.assertEqual(len(results), 6)
            self.assertTrue(all(r["ok"] for r in results), results)
            self.assertEqual({r["access_key_id"] for r in results}, {srv.issued[0]["AccessKeyId"]})
            self.assertEqual(len(srv.log), 1)

    def test_container_refresh_with_concurrent_gets(self):
        with CredServer(expires_in=240) as srv:
            env = self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI=srv.container_url)
            results, _, _ = self.run_driver(env, "--rounds", "2", "--concurrent", "3",
                                            servers=[srv])
            self.assertEqual(len(srv.log), 2)  # one shared run per round
            self.assertEqual([r["access_key_id"] for r in results],
                             [srv.issued[0]["AccessKeyId"]] * 3 + [srv.issued[1]["AccessKeyId"]] * 3)

    def test_failed_refresh_serves_unexpired_credentials(self):
        """4 minutes left: the second get refreshes, the endpoint fails, the cached ones (still
        valid) are served; the failed fetch is in credserver's log."""
        with CredServer(expires_in=240) as srv:
            env = self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI=srv.container_url)
            p = subprocess.Popen([BIN, "--rounds", "2", "--delay-ms", "1000"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.time() + 10
            while len(srv.issued) < 1 and time.time() < deadline:
                time.sleep(0.02)
            srv.status = 500
            out, err = p.communicate(timeout=30)
            self.assertEqual(p.returncode, 0, err)
            results = [json.loads(l) for l in out.splitlines() if '"ok"' in l]
            self.assertEqual([r["ok"] for r in results], [True, True])
            self.assertEqual({r["access_key_id"] for r in results}, {srv.issued[0]["AccessKeyId"]})
            self.assertEqual([e["status"] for e in srv.log], [200, 500])
            for s in srv.all_secrets():
                self.assertNotIn(s, out + err)

    def test_destroy_while_imds_request_in_flight(self):
        with CredServer(delay=1) as srv:
            results, lines, wall = self.run_driver(self.imds_env(srv), "--destroy-after-ms", "200",
                                                   servers=[srv])
            self.assertIn({"event": "destroy"}, lines)
            self.assertEqual([r["err"] for r in results], ["KB_ECANCELED"])
            self.assertLess(wall, 5)

    # -- chain order --
    def test_env_beats_profile(self):
        self.secrets = ["envSecret0123456789", "profileSecret0123456789"]
        cred = self.file("credentials", "[default]\naws_access_key_id = AKIAPROFILE000000001\n"
                         "aws_secret_access_key = %s\n" % self.secrets[1])
        r, _ = self.one(self.env(AWS_SHARED_CREDENTIALS_FILE=cred,
                                 AWS_ACCESS_KEY_ID="AKIAENV0000000000001",
                                 AWS_SECRET_ACCESS_KEY=self.secrets[0]))
        self.assertCreds(r, "env", "AKIAENV0000000000001", self.secrets[0])

    def test_profile_beats_container_and_container_beats_imds(self):
        self.secrets = ["profileSecret0123456789"]
        cred = self.file("credentials", "[default]\naws_access_key_id = AKIAPROFILE000000001\n"
                         "aws_secret_access_key = %s\n" % self.secrets[0])
        with CredServer() as srv:
            env = self.env(AWS_SHARED_CREDENTIALS_FILE=cred,
                           AWS_CONTAINER_CREDENTIALS_FULL_URI=srv.container_url,
                           AWS_EC2_METADATA_DISABLED=None,
                           AWS_EC2_METADATA_SERVICE_ENDPOINT=srv.url)
            r, _ = self.one(env, servers=[srv])
            self.assertCreds(r, "profile", "AKIAPROFILE000000001", self.secrets[0])
            self.assertEqual(srv.log, [])
            env["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
            r, _ = self.one(env, servers=[srv])
            self.assertEqual(r["source"], "container")
            self.assertEqual([e["path"] for e in srv.log], [srv.container_path])


if __name__ == "__main__":
    unittest.main()
