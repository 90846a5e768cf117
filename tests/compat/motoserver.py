"""moto server for ./dev compat: started on a free port of 127.0.0.1 with IAM enforcement, and
AWS's state read back through the AWS APIs (botocore, which moto itself depends on) into the shape
tests/integration/invariants.py checks (the shape of fakeaws's GET /_fakeaws/state).

moto counts requests: the first INITIAL_NO_AUTH_ACTION_COUNT that reach its authorization hook are
neither authenticated nor authorized, every later one is (SigV4 checked, identity policies
evaluated, and only IAM users' access keys exist). set_up() makes exactly SETUP_CALLS calls: an
administrator (Action "*") whose key keybrokerd uses, and an "app" user that may only call
secretsmanager:GetSecretValue, whose key `kbctl credential-process` uses (the application's own
AWS identity). Nothing else may reach moto before set_up().
"""

import json
import os
import signal
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-east-1"
ACCOUNT = "123456789012"
SETUP_CALLS = 6  # two users x (CreateUser, PutUserPolicy, CreateAccessKey)
ADMIN_POLICY = {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
# moto matches IAM/STS/Secrets Manager actions against Resource "*" only.
APP_POLICY = {"Version": "2012-10-17",
              "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                             "Resource": "*"}]}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Moto:
    def __init__(self, tmp, python="python3"):
        self.tmp = tmp
        self.python = python
        self.proc = None
        self.endpoint = None
        self.admin = self.app = None

    def start(self):
        """Starts moto on a free loopback port (a few tries: the port is free when chosen)."""
        for attempt in range(5):
            port = _free_port()
            log = open(os.path.join(self.tmp, f"moto-{port}.log"), "wb")
            env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(SETUP_CALLS))
            self.proc = subprocess.Popen(
                [self.python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            log.close()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    self.endpoint = f"http://127.0.0.1:{port}"
                    return self
                except OSError:
                    time.sleep(0.1)
            self.stop()
        raise RuntimeError(f"moto server did not start (see {self.tmp}/moto-*.log)")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def client(self, service, key=("testing", "testing")):
        return botocore.session.Session().create_client(
            service, region_name=REGION, endpoint_url=self.endpoint,
            aws_access_key_id=key[0], aws_secret_access_key=key[1],
            config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))

    def set_up(self):
        """The SETUP_CALLS unauthenticated calls: the admin and app users and their keys. Then
        checks that enforcement is on (an unknown key is refused)."""
        iam = self.client("iam")
        keys = {}
        for user, policy in (("compat-admin", ADMIN_POLICY), ("compat-app", APP_POLICY)):
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="compat", PolicyDocument=json.dumps(policy))
            k = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = (k["AccessKeyId"], k["SecretAccessKey"])
        self.admin, self.app = keys["compat-admin"], keys["compat-app"]
        try:
            self.client("sts").get_caller_identity()
        except ClientError as e:
            if e.response["Error"]["Code"] != "InvalidClientTokenId":
                raise
        else:
            raise RuntimeError("moto accepted an unknown key after the set-up: enforcement is off")
        return self

    # -- the state, read through the APIs with the admin key ------------------------------------

    def state(self):
        return {"services": {"iam": {"users": self._users()},
                             "secretsmanager": {"secrets": self._secrets()},
                             "s3": {"buckets": self._buckets()}}}

    def _users(self):
        iam = self.client("iam", self.admin)
        out = {}
        for page in iam.get_paginator("list_users").paginate():
            for u in page["Users"]:
                name = u["UserName"]
                policies = {}
                for pn in iam.list_user_policies(UserName=name)["PolicyNames"]:
                    # botocore decodes the URL-encoded document into a dict
                    policies[pn] = iam.get_user_policy(UserName=name,
                                                       PolicyName=pn)["PolicyDocument"]
                out[name] = {
                    "path": u["Path"],
                    "tags": iam.list_user_tags(UserName=name)["Tags"],
                    "access_keys": [{"id": k["AccessKeyId"], "status": k["Status"]} for k in
                                    iam.list_access_keys(UserName=name)["AccessKeyMetadata"]],
                    "inline_policies": policies,
                    "attached_policies": [p["PolicyArn"] for p in iam.list_attached_user_policies(
                        UserName=name)["AttachedPolicies"]],
                    "boundary": (iam.get_user(UserName=name)["User"].get("PermissionsBoundary")
                                 or {}).get("PermissionsBoundaryArn"),
                }
        return out

    def _secrets(self):
        sm = self.client("secretsmanager", self.admin)
        out = []
        for s in sm.list_secrets(IncludePlannedDeletion=True).get("SecretList", []):
            d = sm.describe_secret(SecretId=s["ARN"])
            deleted = d.get("DeletedDate") is not None
            versions = []
            # A secret scheduled for deletion cannot be read: its versions are left out.
            for vid, stages in ({} if deleted else d.get("VersionIdsToStages") or {}).items():
                value = sm.get_secret_value(SecretId=s["ARN"], VersionId=vid)["SecretString"]
                try:
                    kid = json.loads(value).get("AccessKeyId")
                except ValueError:
                    kid = None
                versions.append({"version_id": vid, "stages": stages, "access_key_id": kid})
            out.append({"name": d["Name"], "arn": d["ARN"], "tags": d.get("Tags", []),
                        "versions": versions, "scheduled_for_deletion": deleted,
                        "kms_key_id": d.get("KmsKeyId")})
        return out

    def _buckets(self):
        s3 = self.client("s3", self.admin)
        out = {}

        def read(call, missing, pick):
            try:
                return pick(call(Bucket=name))
            except ClientError as e:
                if e.response["Error"]["Code"] == missing:
                    return None
                raise

        for b in s3.list_buckets()["Buckets"]:
            name = b["Name"]
            out[name] = {
                "tags": read(s3.get_bucket_tagging, "NoSuchTagSet",
                             lambda r: {t["Key"]: t["Value"] for t in r["TagSet"]}),
                "public_access_block": read(s3.get_public_access_block,
                                            "NoSuchPublicAccessBlockConfiguration",
                                            lambda r: r["PublicAccessBlockConfiguration"]),
                "encryption": read(
                    s3.get_bucket_encryption, "ServerSideEncryptionConfigurationNotFoundError",
                    lambda r: r["ServerSideEncryptionConfiguration"]["Rules"][0][
                        "ApplyServerSideEncryptionByDefault"]),
                "ownership_controls": read(s3.get_bucket_ownership_controls,
                                           "OwnershipControlsNotFoundError",
                                           lambda r: r["OwnershipControls"]["Rules"][0][
                                               "ObjectOwnership"]),
                "policy": read(s3.get_bucket_policy, "NoSuchBucketPolicy", lambda r: r["Policy"]),
            }
        return out


def main(argv):
    """motoserver.py run CMD...: moto started and set up, CMD run with KB_DEMO_ENDPOINT,
    KB_DEMO_KEY_ID and KB_DEMO_SECRET (the administrator) in its environment, moto stopped; exits
    with CMD's status."""
    if len(argv) < 3 or argv[1] != "run":
        print("usage: motoserver.py run CMD [ARGS...]", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="kb-moto-")
    m = Moto(tmp, sys.executable)
    try:
        m.start().set_up()
        print(f"moto server {m.endpoint} (enforcing SigV4 and IAM after {SETUP_CALLS} set-up "
              f"calls; administrator {m.admin[0]})", flush=True)
        env = dict(os.environ, KB_DEMO_ENDPOINT=m.endpoint, KB_DEMO_KEY_ID=m.admin[0],
                   KB_DEMO_SECRET=m.admin[1])
        return subprocess.run(argv[2:], env=env).returncode
    finally:
        m.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
