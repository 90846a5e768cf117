"""The AWS transport (broker/aws: http, retry, endpoints, error parsing, client) against fakeaws.

Each test starts a private fakeaws, runs the C driver itest_transport with an AWS environment
pointing at it and a scenario, and checks the driver's JSON lines against fakeaws's call log.
"""

import hashlib
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest

from harness import ROOT_KEY_ID, ROOT_SECRET, FakeAWS, FakeAWSTestCase

BIN = os.path.join(os.environ.get("KB_ITEST_BIN_DIR", ""), "itest_transport")
PROXY_VARS = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy",
              "no_proxy", "NO_PROXY")


def run_driver(endpoint, *args, extra_env=None, ca_bundle=None, timeout=120):
    """Runs the driver; returns (results, summary, other lines)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k not in PROXY_VARS}
    env.update({
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ROOT_KEY_ID, "AWS_SECRET_ACCESS_KEY": ROOT_SECRET,
        "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "KB_ITEST_RETRY_BASE_MS": "20",
    })
    if ca_bundle:
        env["AWS_CA_BUNDLE"] = ca_bundle
    env.update(extra_env or {})
    p = subprocess.run([BIN, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"driver exited {p.returncode}: {p.stdout}\n{p.stderr}")
    if ROOT_SECRET in p.stdout or ROOT_SECRET in p.stderr:
        raise AssertionError("the driver printed the secret access key")
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    results = [l for l in lines if "ok" in l and "summary" not in l]
    summary = [l for l in lines if l.get("summary")]
    other = [l for l in lines if l not in results and l not in summary]
    return results, (summary[0] if summary else None), other


def ops(calls, operation):
    return [c for c in calls if c["operation"] == operation]


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI. Returns (cert, key)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


class TransportTest(FakeAWSTestCase):

    def sts(self, *args, **kw):
        return run_driver(self.fa.endpoint, "sts", *args, **kw)

    def test_sts_round_trip(self):
        results, summary, _ = self.sts("1")
        self.assertEqual(len(results), 1)
        r = results[0]
        self.assertTrue(r["ok"], r)
        self.assertEqual((r["status"], r["attempts"]), (200, 1))
        self.assertTrue(r["has_arn"])
        calls = ops(self.fa.calls(), "GetCallerIdentity")
        self.assertEqual(len(calls), 1)
        self.assertEqual(calls[0]["request_id"], r["request_id"])
        self.assertEqual(calls[0]["key_id"], ROOT_KEY_ID)
        self.assertEqual(summary["requests"], 1)

    def _retried(self, kind):
        self.fa.fault(service="sts", operation="GetCallerIdentity", kind=kind, count=2)
        results, _, _ = self.sts("1")
        r = results[0]
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["attempts"], 3)
        calls = ops(self.fa.calls(), "GetCallerIdentity")
        self.assertEqual(len(calls), 3, calls)
        self.assertEqual([c["fault"] for c in calls], [kind, kind, None])
        self.assertEqual(calls[-1]["request_id"], r["request_id"])

    def test_retry_500(self):
        self._retried("500")

    def test_retry_503(self):
        self._retried("503")

    def test_retry_throttle(self):
        self._retried("throttle")

    def test_retry_connection_reset(self):
        self._retried("reset")

    def test_retry_budget_exhausted(self):
        self.fa.fault(service="sts", operation="GetCallerIdentity", kind="500", count=10)
        results, _, _ = self.sts("1")
        r = results[0]
        self.assertFalse(r["ok"])
        self.assertEqual((r["err"], r["status"], r["code"]), ("KB_EAWS", 500, "InternalFailure"))
        self.assertEqual(r["attempts"], 3)
        self.assertEqual(r["operation"], "GetCallerIdentity")
        calls = ops(self.fa.calls(), "GetCallerIdentity")
        self.assertEqual(len(calls), 3)
        self.assertEqual(r["request_id"], calls[-1]["request_id"])

    def test_retry_quota_exhaustion_stops_retries(self):
        # Every call fails: the 500-token quota pays for exactly 100 retries (5 each) and
        # nothing refills it, so 120 calls make 120 + 100 attempts in all.
        self.fa.fault(service="sts", operation="GetCallerIdentity", kind="500")
        results, summary, _ = self.sts("120", "0")
        self.assertEqual(len(results), 120)
        self.assertFalse(any(r["ok"] for r in results))
        self.assertEqual(sum(r["attempts"] for r in results), 220)
        starved = [r for r in results if "retry quota is exhausted" in r["message"]]
        self.assertGreater(len(starved), 0)
        self.assertTrue(all(r["attempts"] < 3 for r in starved))
        self.assertEqual(len(ops(self.fa.calls(), "GetCallerIdentity")), 220)

    def test_max_attempts_from_environment(self):
        self.fa.fault(service="sts", operation="GetCallerIdentity", kind="503", count=4)
        results, _, _ = self.sts("1", extra_env={"AWS_MAX_ATTEMPTS": "5"})
        self.assertTrue(results[0]["ok"], results)
        self.assertEqual(results[0]["attempts"], 5)
        self.assertEqual(len(ops(self.fa.calls(), "GetCallerIdentity")), 5)

    def test_non_retryable_error_fails_at_once(self):
        results, _, _ = run_driver(self.fa.endpoint, "iam-get-user", "nobody")
        r = results[0]
        self.assertFalse(r["ok"])
        self.assertEqual((r["err"], r["status"], r["code"]), ("KB_EAWS", 404, "NoSuchEntity"))
        self.assertEqual(r["attempts"], 1)
        self.assertIn("nobody", r["message"])
        calls = ops(self.fa.calls(), "GetUser")
        self.assertEqual(len(calls), 1)
        self.assertEqual(calls[0]["error"], "NoSuchEntity")
        self.assertEqual(r["request_id"], calls[0]["request_id"])

    def test_injected_access_denied_is_final(self):
        self.fa.fault(service="sts", operation="GetCallerIdentity", kind="error", status=403,
                      code="AccessDenied", message="no", count=5)
        results, _, _ = self.sts("1")
        self.assertEqual((results[0]["code"], results[0]["attempts"]), ("AccessDenied", 1))
        self.assertEqual(len(ops(self.fa.calls(), "GetCallerIdentity")), 1)

    def test_json_error_body(self):
        results, _, _ = run_driver(self.fa.endpoint, "sm-describe", "no-such-secret")
        r = results[0]
        self.assertFalse(r["ok"])
        self.assertEqual((r["status"], r["code"]), (400, "ResourceNotFoundException"))
        calls = ops(self.fa.calls(), "DescribeSecret")
        self.assertEqual(len(calls), 1)
        self.assertEqual(r["request_id"], calls[0]["request_id"])

    def test_s3_head_error_without_body(self):
        results, _, _ = run_driver(self.fa.endpoint, "s3-head", "no-such-bucket-kb")
        r = results[0]
        self.assertFalse(r["ok"])
        self.assertEqual((r["status"], r["code"], r["attempts"]), (404, "NotFound", 1))
        calls = ops(self.fa.calls(), "HeadBucket")
        self.assertEqual(len(calls), 1)
        self.assertEqual(r["request_id"], calls[0]["request_id"])

    def test_unknown_explicit_credentials(self):
        results, _, _ = run_driver(self.fa.endpoint, "bad-creds")
        r = results[0]
        self.assertEqual((r["code"], r["status"], r["attempts"]), ("InvalidClientTokenId", 403, 1))

    def test_clock_skew_is_corrected_once(self):
        results, _, other = run_driver(self.fa.endpoint, "skew", "-3600")
        r = results[0]
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["attempts"], 2)
        calls = ops(self.fa.calls(), "GetCallerIdentity")
        self.assertEqual([c["error"] for c in calls], ["SignatureDoesNotMatch", None])

    def test_two_hundred_in_flight_reuse_connections(self):
        results, summary, _ = self.sts("200", "0", extra_env={"KB_ITEST_MAX_CONNECTIONS": "16"})
        self.assertEqual(len(results), 200)
        self.assertTrue(all(r["ok"] and r["attempts"] == 1 for r in results))
        self.assertEqual(summary["peak_in_flight"], 200)
        self.assertEqual(summary["requests"], 200)
        self.assertLessEqual(summary["connections_new"], 16)
        self.assertGreaterEqual(summary["reused"], 200 - 16)
        self.assertEqual(len(ops(self.fa.calls(), "GetCallerIdentity")), 200)
        self.assertEqual(len({r["request_id"] for r in results}), 200)

    def test_sequential_calls_share_one_connection(self):
        results, summary, _ = self.sts("20", "1")
        self.assertEqual(sum(r["ok"] for r in results), 20)
        self.assertEqual(summary["connections_new"], 1)
        self.assertEqual(summary["reused"], 19)

    def test_timeout_then_success(self):
        self.fa.fault(service="sts", operation="GetCallerIdentity", kind="delay", delay_ms=1500,
                      count=1)
        results, _, _ = self.sts("1", extra_env={"KB_ITEST_TIMEOUT_MS": "400"})
        self.assertTrue(results[0]["ok"], results)
        self.assertEqual(results[0]["attempts"], 2)

    def test_timeout_every_attempt(self):
        self.fa.fault(service="sts", operation="GetCallerIdentity", kind="delay", delay_ms=1200,
                      count=3)
        results, _, _ = self.sts("1", extra_env={"KB_ITEST_TIMEOUT_MS": "300"})
        r = results[0]
        self.assertEqual((r["ok"], r["err"], r["attempts"]), (False, "KB_ETIMEDOUT", 3))

    def test_adaptive_mode_slows_down_after_throttling(self):
        self.fa.fault(service="sts", kind="throttle", count=1)
        _, adaptive, _ = self.sts("10", "1", extra_env={"AWS_RETRY_MODE": "adaptive"})
        self.fa.fault(service="sts", kind="throttle", count=1)
        _, standard, _ = self.sts("10", "1")
        self.assertEqual((adaptive["ok"], standard["ok"]), (10, 10))
        # after the throttle the limiter starts at 0.5 calls/s and climbs back (retry.h)
        self.assertGreaterEqual(adaptive["elapsed_ms"], 2000)
        self.assertLess(standard["elapsed_ms"], adaptive["elapsed_ms"] / 2)
        self.assertEqual(len(ops(self.fa.calls(), "GetCallerIdentity")), 22)

    def test_s3_put_object(self):
        self.fa.aws("s3api", "create-bucket", "--bucket", "kb-put-bucket")
        # unsigned payload is asked for but the endpoint is plain http: the body is signed
        results, _, other = run_driver(self.fa.endpoint, "s3-put", "kb-put-bucket",
                                       "dir/a b.txt", "unsigned")
        self.assertEqual(results, [])  # "dir/a b.txt" is not an encoded path: refused at once
        self.assertEqual(other, [{"send_error": "KB_EINVAL"}])
        results, _, _ = run_driver(self.fa.endpoint, "s3-put", "kb-put-bucket", "dir/a%20b.txt",
                                   "unsigned")
        self.assertTrue(results[0]["ok"], results)
        out = self.fa.aws("s3api", "get-object", "--bucket", "kb-put-bucket", "--key",
                          "dir/a b.txt", os.devnull)
        self.assertEqual(out["ContentLength"], len("hello world"))

    def test_cancel_on_close(self):
        results, summary, _ = run_driver(self.fa.endpoint, "cancel", "5")
        self.assertEqual(len(results), 5)
        self.assertTrue(all(r["err"] == "KB_ECANCELED" for r in results), results)
        self.assertEqual(summary["done"], 5)

    def test_http_response_size_cap(self):
        results = run_driver(self.fa.endpoint, "http-toobig", "100")[2]
        http = [l for l in results if l.get("http")]
        self.assertEqual(len(http), 1)
        self.assertEqual(http[0]["err"], "KB_ETOOBIG")
        big = run_driver(self.fa.endpoint, "http-toobig", "10000000")[2]
        self.assertEqual([l["err"] for l in big if l.get("http")], [""])

    def test_http_close_cancels_asynchronously(self):
        lines = run_driver(self.fa.endpoint, "http-cancel", "4")[2]
        sent = [l for l in lines if "sent" in l][0]
        self.assertEqual((sent["in_flight"], sent["done_before_run"]), (4, 0))
        http = [l for l in lines if l.get("http")]
        self.assertEqual([l["err"] for l in http], ["KB_ECANCELED"] * 4)
        closed = [l for l in lines if l.get("http_closed")][0]
        self.assertEqual(closed["done"], 4)


class ClosedPortTest(unittest.TestCase):

    def test_closed_port_is_a_network_error_after_retries(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        results, summary, _ = run_driver(f"http://127.0.0.1:{port}", "sts", "1")
        r = results[0]
        self.assertEqual((r["ok"], r["err"], r["status"], r["attempts"]),
                         (False, "KB_ENET", 0, 3))


class TlsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kb-tls-")
        cls.cert, cls.key = make_cert(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.fa = FakeAWS(tls=(self.cert, self.key)).start()
        self.addCleanup(self.fa.stop)
        self.assertTrue(self.fa.endpoint.startswith("https://"))

    def test_self_signed_refused_without_bundle(self):
        results, _, _ = run_driver(self.fa.endpoint, "sts", "1")
        r = results[0]
        self.assertEqual((r["ok"], r["err"], r["attempts"]), (False, "KB_ETLS", 1))
        self.assertEqual(ops(self.fa.calls(), "GetCallerIdentity"), [])

    def test_self_signed_accepted_with_bundle(self):
        results, summary, _ = run_driver(self.fa.endpoint, "sts", "3", "1", ca_bundle=self.cert)
        self.assertTrue(all(r["ok"] for r in results), results)
        self.assertEqual(len(results), 3)
        self.assertEqual(summary["connections_new"], 1)
        self.assertEqual(len(ops(self.fa.calls(), "GetCallerIdentity")), 3)

    def test_s3_put_unsigned_payload_over_tls(self):
        self.fa.aws("s3api", "create-bucket", "--bucket", "kb-tls-bucket")
        results, _, _ = run_driver(self.fa.endpoint, "s3-put", "kb-tls-bucket", "obj.txt",
                                   "unsigned", ca_bundle=self.cert)
        self.assertTrue(results[0]["ok"], results)
        out = self.fa.aws("s3api", "head-object", "--bucket", "kb-tls-bucket", "--key", "obj.txt")
        self.assertEqual(out["ContentLength"], len("hello world"))


class _Capture(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        _Capture.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        out = b"<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::1:root</Arn>" \
              b"</GetCallerIdentityResult></GetCallerIdentityResponse>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.send_header("x-amzn-RequestId", "capture-1")
        self.end_headers()
        self.wfile.write(out)

    def do_PUT(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        _Capture.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.send_header("x-amz-request-id", "capture-put")
        self.end_headers()

    def log_message(self, *a):
        pass


class WireTest(unittest.TestCase):
    """What goes on the wire, seen by a plain capturing server (not fakeaws)."""

    def setUp(self):
        _Capture.seen = []
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        self.addCleanup(self.srv.server_close)
        self.addCleanup(self.srv.shutdown)
        self.endpoint = f"http://127.0.0.1:{self.srv.server_address[1]}/base"

    def test_session_token_and_signed_headers(self):
        results, _, _ = run_driver(self.endpoint, "sts", "1",
                                   extra_env={"AWS_SESSION_TOKEN": "tok/en+value=="})
        self.assertTrue(results[0]["ok"], results)
        self.assertEqual(results[0]["request_id"], "capture-1")
        path, headers, body = _Capture.seen[0]
        self.assertEqual(path, "/base/")  # the override keeps its base path
        self.assertEqual(body, b"Action=GetCallerIdentity&Version=2011-06-15")
        self.assertEqual(headers["x-amz-security-token"], "tok/en+value==")
        self.assertEqual(headers["host"], f"127.0.0.1:{self.srv.server_address[1]}")
        auth = headers["authorization"]
        self.assertTrue(auth.startswith(f"AWS4-HMAC-SHA256 Credential={ROOT_KEY_ID}/"), auth)
        self.assertIn("/us-east-1/sts/aws4_request", auth)
        signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
        self.assertIn("host", signed)
        self.assertIn("x-amz-date", signed)
        self.assertIn("x-amz-security-token", signed)
        self.assertNotIn("expect", headers)
        self.assertNotIn(ROOT_SECRET, json.dumps(headers))

    def test_s3_content_hash_and_path_style(self):
        results, _, _ = run_driver(self.endpoint, "s3-put", "my-bucket", "k.txt", "unsigned")
        self.assertTrue(results[0]["ok"], results)
        self.assertEqual(results[0]["request_id"], "capture-put")
        path, headers, body = _Capture.seen[0]
        self.assertEqual(path, "/base/my-bucket/k.txt")  # path style behind an override
        self.assertEqual(body, b"hello world")
        self.assertEqual(headers["content-type"], "text/plain")
        # plain http: the body hash is signed even though UNSIGNED-PAYLOAD was asked for
        self.assertEqual(headers["x-amz-content-sha256"],
                         hashlib.sha256(b"hello world").hexdigest())
        signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
        self.assertEqual(signed, ["content-type", "host", "x-amz-content-sha256", "x-amz-date"])
        self.assertIn("/us-east-1/s3/aws4_request", headers["authorization"])


class TlsWireTest(unittest.TestCase):
    """The same capture over https: UNSIGNED-PAYLOAD is used when asked."""

    def setUp(self):
        _Capture.seen = []
        self.tmp = tempfile.mkdtemp(prefix="kb-tls-wire-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.cert, key = make_cert(self.tmp)
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, key)
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        self.addCleanup(self.srv.server_close)
        self.addCleanup(self.srv.shutdown)
        self.endpoint = f"https://127.0.0.1:{self.srv.server_address[1]}"

    def test_unsigned_payload_over_https(self):
        results, _, _ = run_driver(self.endpoint, "s3-put", "my-bucket", "k.txt", "unsigned",
                                   ca_bundle=self.cert)
        self.assertTrue(results[0]["ok"], results)
        path, headers, body = _Capture.seen[0]
        self.assertEqual(path, "/my-bucket/k.txt")
        self.assertEqual(body, b"hello world")
        self.assertEqual(headers["x-amz-content-sha256"], "UNSIGNED-PAYLOAD")

    def test_signed_payload_over_https_by_default(self):
        results, _, _ = run_driver(self.endpoint, "s3-put", "my-bucket", "k.txt",
                                   ca_bundle=self.cert)
        self.assertTrue(results[0]["ok"], results)
        self.assertEqual(_Capture.seen[0][1]["x-amz-content-sha256"],
                         hashlib.sha256(b"hello world").hexdigest())


if __name__ == "__main__":
    unittest.main()
