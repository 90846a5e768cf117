"""Degrade, don't drop (issue 11, item 3): keybrokerd against fakeaws with faults injected.

A ready tenant whose reconcile fails while AWS is unavailable stays servable (`degraded`, the
reason in `status`) and becomes `ready` again by itself once AWS answers; a tenant whose first
provision fails (nothing to serve: `error`) is retried with backoff and becomes ready by itself
too. The broker runs with broker.reconcile.retry_initial 1s and retry_max 2s, so every retry
comes within 2.5 s. After every scenario the invariants of DESIGN.md section 6 are checked over
fakeaws's state, and (brokerfix) no secret appears in the socket's bytes or the daemon's log.
"""

import time
import unittest

from brokerfix import BrokerTestCase, line
from invariants import Tenant, check_configured, check_invariants, check_no_foreign_grants

ALPHA = {"name": "alpha", "bucket": "kb-alpha-data", "access": "read-write",
         "clients": {"uids": [0, 1000]}}
RECONCILE = {"reconcile": {"retry_initial": "1s", "retry_max": "2s", "interval": "1h"}}
RETRY_MAX = 2.0


def req(op, **kw):
    return dict({"v": 1, "op": op}, **kw)


class DegradeCase(BrokerTestCase):
    config_tenants = [ALPHA]
    broker_extra = RECONCILE
    aws_extra = {"max_attempts": 1, "probe_timeout": "5s"}

    def status(self, tenant="alpha"):
        r = self.broker.raw(line(req("status", tenant=tenant)))[0]
        self.assertTrue(r["ok"], r)
        return r["result"]["tenants"][0]

    def get(self, tenant="alpha"):
        return self.broker.raw(line(req("get", tenant=tenant)))[0]

    def wait_state(self, state, timeout, tenant="alpha"):
        """Polls status until tenant is in state; returns (entry, seconds waited)."""
        t0 = time.time()
        seen = []
        while time.time() - t0 < timeout:
            st = self.status(tenant)
            if not seen or seen[-1] != st["state"]:
                seen.append(st["state"])
            if st["state"] == state:
                return st, time.time() - t0
            time.sleep(0.05)
        self.fail(f"{tenant} not {state} within {timeout}s (states seen: {seen})\n"
                  + self.broker.stderr_text()[-3000:])

    def assertInvariants(self, converged=True):
        state = self.fa.state()
        t = Tenant("alpha", "kb-alpha-data", "read-write")
        problems = check_invariants(state, [t]) + check_no_foreign_grants(state)
        if converged:
            problems += check_configured(state, [t])
        self.assertEqual(problems, [])

    def retry_logs(self):
        return [l for l in self.broker.log_lines() if l.get("event") == "retry-scheduled"]


class TestDegrade(DegradeCase):
    def test_ready_tenant_degrades_while_aws_is_down_and_recovers_by_itself(self):
        """The reported bug: AWS unreachable during `kbctl provision alpha` put alpha in error
        and `get` answered not_ready, still so 27 s after AWS came back."""
        before = self.get()
        self.assertTrue(before["ok"], before)
        self.assertEqual(before["result"]["state"], "ready")
        # Unreachable: every connection is cut (reads fail at once, nothing is carried out).
        self.fa.fault(kind="reset")
        p = self.broker.kbctl("provision", "alpha")
        self.assertEqual(p.returncode, 1, p)  # the provision failed: kbctl says so
        self.assertIn(b"alpha  degraded  step ", p.stdout)
        # still served, with the same ARN and version
        during = self.get()
        self.assertTrue(during["ok"], during)
        self.assertEqual(during["result"]["state"], "degraded")
        self.assertEqual(during["result"]["arn"], before["result"]["arn"])
        self.assertEqual(during["result"]["version_id"], before["result"]["version_id"])
        st = self.status()
        self.assertIn(st["state"], ("degraded", "provisioning"))  # a retry may be running
        st, _ = self.wait_state("degraded", 5)
        self.assertIn("step ", st["message"])
        self.assertIn("; retry ", st["message"])
        listed = self.broker.raw(line(req("list")))[0]["result"]["tenants"]
        self.assertIn(listed[0]["state"], ("degraded", "provisioning"))
        self.assertEqual(self.broker.tenant_states().get("degraded", 0)
                         + self.broker.tenant_states().get("provisioning", 0), 1)
        # retries go on with backoff while AWS is down, and keep serving
        time.sleep(1.5)
        self.assertTrue(self.get()["ok"])
        self.assertTrue(self.retry_logs())
        # AWS is back: ready again without anyone asking, within the retry bound
        self.fa.control("DELETE", "/_fakeaws/faults")
        cleared = time.time()
        st, _ = self.wait_state("ready", RETRY_MAX * 1.25 + 5)
        self.assertLess(time.time() - cleared, RETRY_MAX * 1.25 + 5)
        self.assertNotIn("retry", st.get("message") or "")
        after = self.get()
        self.assertEqual(after["result"]["state"], "ready")
        self.assertEqual(after["result"]["arn"], before["result"]["arn"])
        self.assertInvariants()

    def test_retries_are_logged_with_growing_delays(self):
        self.fa.fault(service="s3", operation="HeadBucket", kind="503")
        p = self.broker.kbctl("provision", "alpha")
        self.assertEqual(p.returncode, 1, p)
        deadline = time.time() + 6
        while time.time() < deadline and len(self.retry_logs()) < 3:
            time.sleep(0.1)
        logs = self.retry_logs()
        self.assertGreaterEqual(len(logs), 3, logs)
        self.assertEqual([l["tenant"] for l in logs[:3]], ["alpha"] * 3)
        self.assertEqual([l["attempt"] for l in logs[:3]], ["1", "2", "3"])
        delays = [int(l["delay_ms"]) for l in logs[:3]]
        self.assertTrue(750 <= delays[0] <= 1250, delays)  # retry_initial 1s, +-25%
        self.assertTrue(1500 <= delays[1] <= 2000, delays)  # doubled, capped at retry_max
        self.assertTrue(1500 <= delays[2] <= 2000, delays)
        self.assertTrue(self.get()["ok"])  # degraded all along: still served
        self.fa.control("DELETE", "/_fakeaws/faults")
        self.wait_state("ready", RETRY_MAX * 1.25 + 5)
        self.assertInvariants()


class TestErrorRecovers(DegradeCase):
    provision = False  # --no-provision-at-start: alpha waits for a request

    def test_failed_first_provision_is_error_then_ready_by_itself(self):
        # nobody asked: pending, and no background provision happens
        time.sleep(1.5)
        self.assertEqual(self.status()["state"], "pending")
        self.assertEqual([c for c in self.fa.calls(0) if c["service"] != "control"], [])
        self.fa.fault(kind="503")
        p = self.broker.kbctl("provision", "alpha")
        self.assertEqual(p.returncode, 1, p)
        self.assertIn(b"alpha  error  step ", p.stdout)
        r = self.get()
        self.assertEqual(r["error"]["code"], "not_ready", r)  # nothing servable yet
        st = self.status()
        self.assertIn(st["state"], ("error", "provisioning"))
        self.fa.control("DELETE", "/_fakeaws/faults")
        self.wait_state("ready", RETRY_MAX * 1.25 + 20)
        r = self.get()
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["result"]["state"], "ready")
        self.assertInvariants()


class TestStartupFailureRecovers(DegradeCase):
    def test_provision_at_start_fails_then_converges(self):
        """The standard broker has provisioned alpha; a second daemon (another socket) starts
        while AWS is unreachable, and must become ready by itself once AWS answers."""
        self.fa.fault(kind="reset")
        b = self.new_broker(tenants=[ALPHA], socket_name="b2.sock",
                            broker_extra=RECONCILE, aws_extra=self.aws_extra)
        b.start(wait=False)
        b.wait_socket()
        # this daemon never had alpha's key: error, not servable
        deadline = time.time() + 5
        state = None
        while time.time() < deadline:
            st = b.raw(line(req("status", tenant="alpha")))[0]["result"]["tenants"][0]
            state = st["state"]
            if state == "error":
                break
            time.sleep(0.05)
        self.assertEqual(state, "error")
        self.assertEqual(b.raw(line(req("get", tenant="alpha")))[0]["error"]["code"],
                         "not_ready")
        self.fa.control("DELETE", "/_fakeaws/faults")
        deadline = time.time() + RETRY_MAX * 1.25 + 10
        while time.time() < deadline:
            r = b.raw(line(req("get", tenant="alpha")))[0]
            if r.get("ok"):
                break
            time.sleep(0.05)
        self.assertTrue(r.get("ok"), r)
        self.assertEqual(r["result"]["arn"], self.get()["result"]["arn"])
        self.assertInvariants()


if __name__ == "__main__":
    unittest.main(verbosity=2)
