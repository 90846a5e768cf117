"""Follower brokers (issue 12 item 5, DESIGN.md section 12): keybrokerd against fakeaws.

A rotator broker (alpha's rotator) and a follower broker (alpha with "rotate": false, and 150
more followed tenants whose secrets are seeded straight into fakeaws) share one fakeaws; the
follower runs with its own IAM identity that may call nothing but secretsmanager:ListSecrets, and
broker.follow.interval 1s:
  - before the rotator provisioned alpha the follower shows it pending ("waiting for the tenant's
    rotator"), after it the follower's get answers the same ARN and version;
  - a watch subscriber on the follower gets "rotated" (the new version, the old one as message)
    within one poll interval (+ margin) of the rotator's rotation, and "rolled_back" after a
    rollback;
  - the follower made no IAM, S3 or STS call at all, and each of its passes is exactly
    ceil(151 / 100) = 2 ListSecrets calls (its calls are told apart by their access key id);
  - provision, rotate and revoke of a followed tenant answer not_supported and change nothing;
  - a failed ListSecrets (fakeaws fault) keeps the last known version served, counted as an error
    pass, and the next pass recovers.
Every scenario ends with the invariants of DESIGN.md section 6; brokerfix scans every socket byte
and log for every secret.
"""

import json
import time
import unittest

from brokerfix import line
from invariants import secrets, users
from test_rotate import ALPHA, RECONCILE, RotateCase, req

SEEDED = 150  # followed tenants t0..t149, secrets created by fakeaws's control endpoint
INTERVAL = 1.0  # broker.follow.interval of the follower, seconds
LIST_ONLY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "secretsmanager:ListSecrets", "Resource": "*"}]})


def seeded_tenant(i):
    return {"name": "t%d" % i, "bucket": "kb-t%d-data" % i, "access": "read-only",
            "clients": {"uids": [0]}, "rotate": False}


def metric(broker, name):
    text = broker.raw(line(req("metrics")))[0]["result"]["text"]
    for l in text.splitlines():
        if l.startswith(name + " "):
            return float(l.split()[-1])
    raise AssertionError("no metric " + name)


class FollowCase(RotateCase):
    provision = False  # the rotator provisions alpha when the test says so

    def setUp(self):
        super().setUp()
        self.fa.control("POST", "/_fakeaws/seed-secrets", {"count": SEEDED})
        # the follower's identity: an IAM user allowed ListSecrets and nothing else
        self.fa.aws("iam", "create-user", "--user-name", "follower")
        self.fa.aws("iam", "put-user-policy", "--user-name", "follower", "--policy-name", "list",
                    "--policy-document", LIST_ONLY)
        key = self.fa.aws("iam", "create-access-key", "--user-name", "follower")["AccessKey"]
        self.follower_key = key["AccessKeyId"]
        self.follower = self.new_broker(
            socket_name="follower.sock", provision=False, log_level="debug",
            tenants=[dict(ALPHA, rotate=False)] + [seeded_tenant(i) for i in range(SEEDED)],
            broker_extra=dict(RECONCILE, follow={"interval": "%gs" % INTERVAL}),
            aws_extra=self.aws_extra,
            extra_env={"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                       "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]})
        self.follower.start()

    def get(self, broker, tenant="alpha"):
        return broker.raw(line(req("get", id="g", tenant=tenant)))[0]

    def status(self, broker, tenant="alpha"):
        r = broker.raw(line(req("status", id="s", tenant=tenant)))[0]
        return r["result"]["tenants"][0]

    def provision_alpha(self):
        _, r = self.broker.run_op(req("provision", id="p", tenant="alpha"), timeout=60)
        self.assertTrue(r.get("ok"), r)
        return self.get(self.broker)["result"]

    def wait_follower_version(self, version, timeout=10):
        def same():
            r = self.get(self.follower)
            return r if r.get("ok") and r["result"]["version_id"] == version else None
        return self.wait_for("the follower to serve version %s" % version, same, timeout)

    def follower_calls(self):
        return [c for c in self.fa.calls() if c["key_id"] == self.follower_key]

    def assertFollowerOnlyListed(self):
        calls = self.follower_calls()
        self.assertTrue(calls)
        others = {(c["service"], c["operation"]) for c in calls} - {("secretsmanager",
                                                                      "ListSecrets")}
        self.assertEqual(others, set(), "the follower called more than ListSecrets")

    def tearDown(self):
        self.assertFollowerOnlyListed()

    def assertInvariants(self, allow=(), tenants=None):
        """RotateCase's, over fakeaws's state without the seeded secrets (no user, no key: the
        invariants are about what a rotator made)."""
        real = self.fa.state
        seeded = {"keybroker/t%d" % i for i in range(SEEDED)}

        def state():
            st = real()
            sm = st["services"]["secretsmanager"]
            sm["secrets"] = [s for s in sm["secrets"] if s["name"] not in seeded]
            return st
        self.fa.state = state
        try:
            super().assertInvariants(allow, tenants)
        finally:
            del self.fa.state


class TestFollow(FollowCase):
    def test_follower_tracks_the_rotator(self):
        f = self.follower
        # (a) nothing provisioned yet: pending with the reason; the seeded tenants are ready
        self.wait_for("the first pass", lambda: metric(f, 'keybroker_follow_polls_total'
                                                        '{result="ok"}') >= 1)
        st = self.status(f)
        self.assertEqual(st["state"], "pending", st)
        self.assertIn("waiting for the tenant's rotator", st.get("message", ""))
        self.assertIn("keybroker/alpha not found", st.get("message", ""))
        self.assertError(self.get(f), "not_ready")
        self.assertEqual(self.get(f, "t7")["result"]["state"], "ready")
        sub = Watch(f, ["alpha"])
        self.addCleanup(sub.s.close)

        mine = self.provision_alpha()
        ev = sub.until("provisioned", INTERVAL * 1.1 + 5)
        self.assertEqual(ev["version_id"], mine["version_id"])
        theirs = self.wait_follower_version(mine["version_id"])["result"]
        self.assertEqual(theirs["arn"], mine["arn"])
        self.assertEqual(theirs["state"], "ready")

        # (b) the rotator rotates: the follower's subscriber hears it within one interval
        _, r = self.rotate()
        self.assertTrue(r.get("ok"), r)
        done = time.time()
        new_version = self.get(self.broker)["result"]["version_id"]
        self.assertNotEqual(new_version, mine["version_id"])
        ev = sub.until("rotated", INTERVAL * 1.1 + 5)
        late = time.time() - done
        self.assertEqual(ev["version_id"], new_version)
        self.assertEqual(ev.get("message"), mine["version_id"])
        self.assertLess(late, INTERVAL * 1.1 + 1.5, "rotated reached the follower late")
        self.assertEqual(self.get(f)["result"]["version_id"], new_version)
        self.assertEqual(self.get(f)["result"]["arn"], mine["arn"])

        # (c) no IAM, S3 or STS call; every complete pass was ceil(151 / 100) = 2 pages
        f.stop()
        passes = [l for l in f.log_lines() if l.get("event") == "follow-poll"]
        ok = [p for p in passes if p.get("result") == "ok"]
        self.assertGreaterEqual(len(ok), 2)
        self.assertEqual({p["calls"] for p in ok}, {"2"}, passes)
        self.assertEqual({p["listed"] for p in ok[-2:]}, {str(SEEDED + 1)})
        listed = len(self.follower_calls())
        self.assertIn(listed - 2 * len(ok), (0, 1, 2), "calls outside complete passes")
        self.assertInvariants()

    def test_rollback_reaches_the_follower(self):
        mine = self.provision_alpha()
        self.wait_follower_version(mine["version_id"])
        sub = Watch(self.follower, ["alpha"])
        self.addCleanup(sub.s.close)
        _, r = self.rotate()
        self.assertTrue(r.get("ok"), r)
        sub.until("rotated", INTERVAL * 1.1 + 5)
        _, r = self.broker.run_op(req("rotate", id="rb", tenant="alpha", rollback=True),
                                  timeout=60)
        if not r.get("ok") and r.get("error", {}).get("code") == "bad_request":
            self.skipTest("this build's protocol has no rollback yet: %r" % r)
        self.assertTrue(r.get("ok"), r)
        ev = sub.until("rolled_back", INTERVAL * 1.1 + 5)
        self.assertEqual(ev["version_id"], mine["version_id"])
        self.assertInvariants()


class TestFollowRefuses(FollowCase):
    def test_provision_rotate_revoke_of_a_followed_tenant(self):
        mine = self.provision_alpha()
        self.wait_follower_version(mine["version_id"])
        before = self.fa.state()
        for op in ("provision", "rotate", "revoke"):
            with self.subTest(op=op):
                r = self.follower.raw(line(req(op, id=op, tenant="alpha")))[0]
                self.assertError(r, "not_supported", id=op)
                self.assertIn("followed by this broker", r["error"]["message"])
                self.assertIn("rotator", r["error"]["message"])
        # adopt is a provision too
        r = self.follower.raw(line(req("provision", id="a", tenant="alpha",
                                       adopt_bucket=True)))[0]
        self.assertError(r, "not_supported", id="a")
        # a provision of every tenant provisions none of them here and lists each with its state
        _, r = self.follower.run_op(req("provision", id="all"), timeout=60)
        self.assertTrue(r.get("ok"), r)
        states = {t["tenant"]: t for t in r["result"]["tenants"]}
        self.assertEqual(len(states), SEEDED + 1)
        self.assertEqual(states["alpha"]["state"], "ready")
        self.assertIn("followed by this broker", states["alpha"]["message"])
        after = self.fa.state()
        self.assertEqual(secrets(after)["keybroker/alpha"], secrets(before)["keybroker/alpha"])
        self.assertEqual(users(after)["kb-alpha"]["access_keys"],
                         users(before)["kb-alpha"]["access_keys"])
        self.assertInvariants()

    def test_failed_list_keeps_the_last_version(self):
        f = self.follower
        mine = self.provision_alpha()
        self.wait_follower_version(mine["version_id"])
        errors = metric(f, 'keybroker_follow_polls_total{result="error"}')
        # every ListSecrets fails for a while: the follower still serves the version it knew
        rule = self.fa.fault(service="secretsmanager", operation="ListSecrets", kind="500",
                             count=6)
        self.wait_for("a failed pass",
                      lambda: metric(f, 'keybroker_follow_polls_total{result="error"}') > errors)
        r = self.get(f)
        self.assertTrue(r.get("ok"), r)
        self.assertEqual(r["result"]["version_id"], mine["version_id"])
        self.assertEqual(r["result"]["state"], "ready")
        failed = [l for l in f.log_lines()
                  if l.get("event") == "follow-poll" and l.get("result") == "error"]
        self.assertTrue(failed)
        self.assertTrue(all(l.get("request_id") for l in failed), failed)
        self.assertEqual(failed[0].get("operation"), "ListSecrets")
        # the fault runs out: passes succeed again
        self.assertTrue(rule["ids"])
        ok = metric(f, 'keybroker_follow_polls_total{result="ok"}')
        self.wait_for("a good pass again",
                      lambda: metric(f, 'keybroker_follow_polls_total{result="ok"}') > ok,
                      timeout=30)
        self.assertEqual(self.get(f)["result"]["version_id"], mine["version_id"])
        self.assertEqual(metric(f, "keybroker_followed_tenants"), SEEDED + 1)
        self.assertInvariants()


class Watch:
    """A watch connection on a broker: the ack, then event lines."""

    def __init__(self, broker, tenants):
        self.b = broker
        self.s = broker.connect(timeout=30)
        self.s.sendall(line(req("watch", id="w", tenants=tenants)))
        lines, eof = broker.read_lines(self.s, 1, timeout=30)
        assert not eof and json.loads(lines[0]).get("ok"), lines

    def until(self, kind, timeout):
        """The first event of kind within timeout (other kinds skipped)."""
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("no %s event within %ss" % (kind, timeout))
            lines, eof = self.b.read_lines(self.s, 1, timeout=left)
            if eof:
                raise AssertionError("watch closed before %s" % kind)
            ev = json.loads(lines[0])
            if ev.get("event") == kind:
                return ev


if __name__ == "__main__":
    unittest.main()
