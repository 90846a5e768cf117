"""Fault injection (each kind), the per-service rate limit, and the state endpoint's call log."""

import http.client
import json
import time
import unittest

from harness import ROOT_KEY_ID, ROOT_SECRET, FakeAWS, FakeAWSTestCase

FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
LIST_USERS = "Action=ListUsers&Version=2010-05-08"


class FaultKindTests(FakeAWSTestCase):
    def test_http_500_uses_each_services_code(self):
        self.fa.fault(service="iam", operation="ListUsers", kind="500", count=1)
        self.assertAwsError("ServiceFailure", "iam", "list-users")
        self.fa.fault(service="s3", kind="500", count=1)
        self.assertAwsError("InternalError", "s3api", "list-buckets")
        self.fa.fault(service="secretsmanager", kind="500", count=1)
        self.assertAwsError("InternalServiceError", "secretsmanager", "list-secrets")
        # count=1: the next call goes through
        self.assertIn("Users", self.fa.aws("iam", "list-users"))

    def test_http_503(self):
        self.fa.fault(service="iam", kind="503", count=1)
        r = self.fa.signed("iam", "POST", body=LIST_USERS, headers=FORM)
        self.assertEqual(r.status, 503)
        self.assertEqual(r.xml_code(), "ServiceUnavailable")
        self.assertIn(b"<Type>Receiver</Type>", r.body)

    def test_throttling_errors_per_service(self):
        self.fa.fault(service="iam", kind="throttle", count=1)
        self.assertAwsError("Throttling", "iam", "list-users")
        self.fa.fault(service="secretsmanager", kind="throttle", count=1)
        self.assertAwsError("ThrottlingException", "secretsmanager", "list-secrets")
        self.fa.fault(service="s3", kind="throttle", count=1)
        r = self.fa.signed("s3", "GET", path="/")
        self.assertEqual(r.status, 503)
        self.assertEqual(r.xml_code(), "SlowDown")

    def test_connection_reset_mid_response(self):
        self.fa.fault(service="sts", kind="reset", count=1)
        with self.assertRaises((http.client.HTTPException, ConnectionError)):
            r = self.fa.signed("sts", "POST", body="Action=GetCallerIdentity&Version=2011-06-15",
                               headers=FORM)
            raise AssertionError(f"expected a reset, got {r}")
        calls = self.fa.calls()
        self.assertEqual(calls[-1]["fault"], "reset")
        # the fault is used up: the next call is answered whole
        self.assertEqual(self.fa.aws("sts", "get-caller-identity")["Account"], "123456789012")

    def test_delay(self):
        self.fa.fault(service="iam", operation="ListUsers", kind="delay", delay_ms=1500, count=1)
        t0 = time.monotonic()
        r = self.fa.signed("iam", "POST", body=LIST_USERS, headers=FORM)
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 200)
        self.assertGreaterEqual(elapsed, 1.5)
        t0 = time.monotonic()
        self.fa.signed("iam", "POST", body=LIST_USERS, headers=FORM)
        self.assertLess(time.monotonic() - t0, 1.0)

    def test_custom_error(self):
        self.fa.fault(service="iam", operation="CreateUser", kind="error", status=403,
                      code="AccessDenied", message="injected denial", count=1)
        err = self.assertAwsError("AccessDenied", "iam", "create-user", "--user-name", "u1")
        self.assertIn("injected denial", err.message)
        # the injected error stopped the operation: nothing was created
        self.assertAwsError("NoSuchEntity", "iam", "get-user", "--user-name", "u1")
        self.assertEqual(self.fa.calls()[0]["status"], 403)

    def test_operation_filter_count_and_skip(self):
        self.fa.fault(service="iam", operation="ListUsers", kind="500", count=2, skip=1)
        ok = self.fa.signed("iam", "POST", body=LIST_USERS, headers=FORM)
        self.assertEqual(ok.status, 200)  # skipped
        other = self.fa.signed("sts", "POST", body="Action=GetCallerIdentity&Version=2011-06-15",
                               headers=FORM)
        self.assertEqual(other.status, 200)  # another operation is untouched
        self.assertEqual(self.fa.signed("iam", "POST", body=LIST_USERS, headers=FORM).status, 500)
        self.assertEqual(self.fa.signed("iam", "POST", body=LIST_USERS, headers=FORM).status, 500)
        self.assertEqual(self.fa.signed("iam", "POST", body=LIST_USERS, headers=FORM).status, 200)
        self.assertEqual(self.fa.control("GET", "/_fakeaws/faults")["rules"], [])

    def test_probability(self):
        self.fa.fault(service="iam", kind="500", probability=0.0)
        for _ in range(5):
            self.assertEqual(self.fa.signed("iam", "POST", body=LIST_USERS, headers=FORM).status,
                             200)
        self.fa.control("DELETE", "/_fakeaws/faults")
        self.fa.fault(service="iam", kind="500", probability=0.5)
        statuses = [self.fa.signed("iam", "POST", body=LIST_USERS, headers=FORM).status
                    for _ in range(40)]
        self.assertIn(500, statuses)
        self.assertIn(200, statuses)

    def test_awscli_retries_through_injected_errors(self):
        self.fa.fault(service="iam", operation="ListUsers", kind="503", count=2)
        out = self.fa.aws("iam", "list-users", max_attempts=3)
        self.assertEqual(out["Users"], [])
        calls = [c for c in self.fa.calls() if c["operation"] == "ListUsers"]
        self.assertEqual([c["status"] for c in calls], [503, 503, 200])

    def test_bad_fault_rule_is_refused(self):
        r = self.fa.raw("POST", "/_fakeaws/faults", {"Content-Type": "application/json"},
                        json.dumps({"kind": "explode"}).encode())
        self.assertEqual(r.status, 400)
        self.assertIn(b"fault kind", r.body)

    def test_fault_from_start_flag(self):
        with FakeAWS("--fault", json.dumps({"service": "sts", "kind": "throttle", "count": 1})) \
                as fa:
            self.assertEqual(fa.aws_error("sts", "get-caller-identity").code, "Throttling")
            self.assertEqual(fa.aws("sts", "get-caller-identity")["Account"], "123456789012")


class RateLimitTests(unittest.TestCase):
    def test_token_bucket_throttles_beyond_rate(self):
        with FakeAWS("--rate-limit", "iam=0.5:3") as fa:
            statuses = [fa.signed("iam", "POST", body=LIST_USERS, headers=FORM)
                        for _ in range(8)]
            codes = [r.xml_code() for r in statuses if r.status != 200]
            self.assertGreaterEqual(sum(1 for r in statuses if r.status == 200), 3)
            self.assertTrue(codes and set(codes) == {"Throttling"}, codes)
            # other services are not limited
            self.assertEqual(fa.aws("sts", "get-caller-identity")["Account"], "123456789012")
            limited = [c for c in fa.calls() if c["fault"] == "ratelimit"]
            self.assertEqual(len(limited), len(codes))
            time.sleep(2.1)  # the bucket refills at one token every 2 seconds
            self.assertEqual(fa.signed("iam", "POST", body=LIST_USERS, headers=FORM).status, 200)

    def test_rate_limit_set_through_control(self):
        with FakeAWS() as fa:
            # one token, refilled only after 20 s: the second call finds the bucket empty
            fa.control("POST", "/_fakeaws/ratelimit", {"service": "secretsmanager", "tps": 0.05,
                                                         "burst": 1})
            self.assertEqual(fa.aws("secretsmanager", "list-secrets")["SecretList"], [])
            err = fa.aws_error("secretsmanager", "list-secrets")
            self.assertEqual(err.code, "ThrottlingException")


class StateTests(FakeAWSTestCase):
    def test_call_log_lists_every_call(self):
        self.fa.aws("iam", "create-user", "--user-name", "logged")
        self.fa.aws("sts", "get-caller-identity")
        self.fa.aws_error("iam", "get-user", "--user-name", "missing")
        self.fa.signed("iam", "POST", body=LIST_USERS, headers=FORM,
                       creds=(ROOT_KEY_ID, "wrong-secret-000000000000000000000000000"))
        calls = self.fa.state()["calls"]
        self.assertEqual([c["operation"] for c in calls],
                         ["CreateUser", "GetCallerIdentity", "GetUser", "ListUsers"])
        self.assertEqual([c["status"] for c in calls], [200, 200, 404, 403])
        self.assertEqual(calls[2]["error"], "NoSuchEntity")
        self.assertEqual(calls[3]["error"], "SignatureDoesNotMatch")
        self.assertEqual(calls[0]["key_id"], ROOT_KEY_ID)
        self.assertEqual(calls[0]["resource"], "logged")
        self.assertEqual([c["seq"] for c in calls], [1, 2, 3, 4])
        self.assertEqual(len(self.fa.calls(since=2)), 2)

    def test_state_never_shows_a_secret_key(self):
        self.fa.aws("iam", "create-user", "--user-name", "u")
        key = self.fa.aws("iam", "create-access-key", "--user-name", "u")["AccessKey"]
        dump = json.dumps(self.fa.state())
        self.assertIn(key["AccessKeyId"], dump)
        self.assertNotIn(key["SecretAccessKey"], dump)
        self.assertNotIn(ROOT_SECRET, dump)

    def test_unknown_control_route(self):
        r = self.fa.raw("GET", "/_fakeaws/nope", {})
        self.assertEqual(r.status, 404)


if __name__ == "__main__":
    unittest.main()
