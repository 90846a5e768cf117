"""SigV4 verification: every request is checked, and failures carry the error code each
service really sends (IAM/STS Query XML, S3 REST XML, Secrets Manager JSON)."""

import datetime
import os
import subprocess
import tempfile
import time
import unittest

from harness import ROOT_KEY_ID, FakeAWS, FakeAWSTestCase

STS_BODY = "Action=GetCallerIdentity&Version=2011-06-15"
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
SM_LIST = {"X-Amz-Target": "secretsmanager.ListSecrets",
           "Content-Type": "application/x-amz-json-1.1"}
WRONG = (ROOT_KEY_ID, "not-the-right-secret-key-000000000000000")
UNKNOWN = ("AKIAUNKNOWNKEY000000", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def utc_offset(minutes):
    return datetime.datetime.utcnow() + datetime.timedelta(minutes=minutes)


class SignatureTests(FakeAWSTestCase):
    def test_root_signed_request_is_accepted(self):
        out = self.fa.aws("sts", "get-caller-identity")
        self.assertEqual(out["Arn"], "arn:aws:iam::123456789012:root")
        self.assertEqual(out["Account"], "123456789012")

    def test_bad_signature_query_api(self):
        r = self.fa.signed("sts", "POST", body=STS_BODY, headers=FORM, creds=WRONG)
        self.assertEqual(r.status, 403)
        self.assertEqual(r.xml_code(), "SignatureDoesNotMatch")
        self.assertIn(b"<Type>Sender</Type>", r.body)
        self.assertIn(b"<RequestId>", r.body)

    def test_bad_signature_iam_through_awscli(self):
        self.assertAwsError("SignatureDoesNotMatch", "iam", "list-users", creds=WRONG)

    def test_bad_signature_s3(self):
        self.assertAwsError("SignatureDoesNotMatch", "s3api", "list-buckets", creds=WRONG)

    def test_bad_signature_secretsmanager(self):
        r = self.fa.signed("secretsmanager", "POST", body="{}", headers=SM_LIST, creds=WRONG)
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json_type(), "InvalidSignatureException")
        self.assertTrue(r.headers.get("x-amzn-requestid"))

    def test_unknown_key_per_service(self):
        self.assertAwsError("InvalidClientTokenId", "sts", "get-caller-identity", creds=UNKNOWN)
        self.assertAwsError("InvalidAccessKeyId", "s3api", "list-buckets", creds=UNKNOWN)
        self.assertAwsError("UnrecognizedClientException", "secretsmanager", "list-secrets",
                            creds=UNKNOWN)

    def test_tampered_body_breaks_signature(self):
        body = "Action=ListUsers&Version=2010-05-08"
        self.assertEqual(self.fa.signed("iam", "POST", body=body, headers=FORM).status, 200)
        r = self.fa.signed("iam", "POST", body=body, headers=FORM,
                           send_body=b"Action=ListUsers&Version=2010-05-08&MaxItems=1")
        self.assertEqual(r.status, 403)
        self.assertEqual(r.xml_code(), "SignatureDoesNotMatch")

    def test_tampered_date_breaks_signature(self):
        def swap_date(h):
            h["X-Amz-Date"] = (datetime.datetime.utcnow() - datetime.timedelta(seconds=5)) \
                .strftime("%Y%m%dT%H%M%SZ")
        r = self.fa.signed("iam", "POST", body="Action=ListUsers&Version=2010-05-08",
                           headers=FORM, tamper=swap_date)
        self.assertEqual(r.status, 403)
        self.assertEqual(r.xml_code(), "SignatureDoesNotMatch")

    def test_incomplete_signature(self):
        def drop_signed_headers(h):
            h["Authorization"] = h["Authorization"].split(", SignedHeaders=")[0]
        r = self.fa.signed("sts", "POST", body=STS_BODY, headers=FORM, tamper=drop_signed_headers)
        self.assertEqual(r.status, 400)
        self.assertEqual(r.xml_code(), "IncompleteSignature")

    def test_missing_authentication(self):
        r = self.fa.signed("iam", "POST", body="Action=ListUsers&Version=2010-05-08",
                           headers=FORM, sign=False)
        self.assertEqual(r.status, 403)
        self.assertEqual(r.xml_code(), "MissingAuthenticationToken")
        r = self.fa.signed("secretsmanager", "POST", body="{}", headers=SM_LIST, sign=False)
        self.assertEqual(r.json_type(), "MissingAuthenticationTokenException")

    def test_wrong_service_in_scope(self):
        # Signed for "ec2": the request still looks like STS, and the scope is refused.
        r = self.fa.signed("ec2", "POST", body=STS_BODY, headers=FORM)
        self.assertEqual(r.status, 403)
        self.assertEqual(r.xml_code(), "SignatureDoesNotMatch")
        self.assertIn(b"scoped to correct service", r.body)

    def test_wrong_region_s3(self):
        r = self.fa.signed("s3", "GET", path="/", region="eu-west-3")
        self.assertEqual(r.status, 400)
        self.assertEqual(r.xml_code(), "AuthorizationHeaderMalformed")
        self.assertIn(b"<Region>us-east-1</Region>", r.body)


class ClockSkewTests(FakeAWSTestCase):
    def test_query_api_signature_expired(self):
        r = self.fa.signed("sts", "POST", body=STS_BODY, headers=FORM, when=utc_offset(-20))
        self.assertEqual(r.status, 403)
        self.assertEqual(r.xml_code(), "SignatureDoesNotMatch")
        self.assertIn(b"Signature expired:", r.body)

    def test_s3_request_time_too_skewed(self):
        r = self.fa.signed("s3", "GET", path="/", when=utc_offset(-30))
        self.assertEqual(r.status, 403)
        self.assertEqual(r.xml_code(), "RequestTimeTooSkewed")
        self.assertIn(b"<MaxAllowedSkewMilliseconds>900000", r.body)

    def test_secretsmanager_signature_not_yet_current(self):
        r = self.fa.signed("secretsmanager", "POST", body="{}", headers=SM_LIST,
                           when=utc_offset(+20))
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json_type(), "InvalidSignatureException")
        self.assertIn("Signature not yet current", r.json()["Message"])

    def test_within_fifteen_minutes_is_accepted(self):
        r = self.fa.signed("sts", "POST", body=STS_BODY, headers=FORM, when=utc_offset(-14))
        self.assertEqual(r.status, 200, r.body)


class S3PayloadTests(FakeAWSTestCase):
    def test_payload_hash_mismatch(self):
        self.fa.aws("s3api", "create-bucket", "--bucket", "payload-bucket")

        def change_body_hash(h):
            h["x-amz-content-sha256"] = "0" * 64
        r = self.fa.signed("s3", "PUT", path="/payload-bucket/k", body=b"hello",
                           tamper=change_body_hash)
        self.assertEqual(r.status, 400)
        self.assertEqual(r.xml_code(), "XAmzContentSHA256Mismatch")

    def test_unsigned_payload_is_accepted(self):
        self.fa.aws("s3api", "create-bucket", "--bucket", "unsigned-bucket")
        r = self.fa.signed("s3", "PUT", path="/unsigned-bucket/k", body=b"hello",
                           s3_unsigned_payload=True)
        self.assertEqual(r.status, 200, r.body)
        calls = [c for c in self.fa.calls() if c["operation"] == "PutObject"]
        self.assertEqual(calls[-1]["status"], 200)

    def test_presigned_url(self):
        self.fa.aws("s3api", "create-bucket", "--bucket", "presign-bucket")
        with tempfile.NamedTemporaryFile() as f:
            f.write(b"presigned body")
            f.flush()
            self.fa.aws("s3api", "put-object", "--bucket", "presign-bucket", "--key", "obj",
                        "--body", f.name)
        url = self.fa.aws("s3", "presign", "s3://presign-bucket/obj", raw=True).strip()
        target = url[len(self.fa.endpoint):]
        r = self.fa.raw("GET", target, {})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body, b"presigned body")
        # The same URL with its signature altered is refused.
        bad = target[:-4] + ("0000" if not target.endswith("0000") else "1111")
        self.assertEqual(self.fa.raw("GET", bad, {}).xml_code(), "SignatureDoesNotMatch")


class KeyPropagationTests(unittest.TestCase):
    def test_new_key_usable_only_after_delay(self):
        with FakeAWS(key_delay=2.0) as fa:
            fa.aws("iam", "create-user", "--user-name", "slow")
            key = fa.aws("iam", "create-access-key", "--user-name", "slow")["AccessKey"]
            creds = (key["AccessKeyId"], key["SecretAccessKey"])
            created = time.time()
            err = fa.aws_error("sts", "get-caller-identity", creds=creds)
            self.assertEqual(err.code, "InvalidClientTokenId")
            time.sleep(max(0.0, 2.3 - (time.time() - created)))
            out = fa.aws("sts", "get-caller-identity", creds=creds)
            self.assertEqual(out["Arn"], "arn:aws:iam::123456789012:user/slow")


class TlsTests(unittest.TestCase):
    def test_https_needs_the_ca_bundle(self):
        with tempfile.TemporaryDirectory() as d:
            cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                            "-addext", "subjectAltName=IP:127.0.0.1"],
                           check=True, capture_output=True)
            with FakeAWS(tls=(cert, key)) as fa:
                self.assertTrue(fa.endpoint.startswith("https://"))
                out = fa.aws("sts", "get-caller-identity")
                self.assertEqual(out["Account"], "123456789012")
                env = fa.aws_env()
                del env["AWS_CA_BUNDLE"]
                p = subprocess.run(["/usr/bin/aws", "sts", "get-caller-identity",
                                    "--endpoint-url", fa.endpoint], env=env,
                                   capture_output=True, text=True, timeout=60)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn("SSL", p.stderr)


if __name__ == "__main__":
    unittest.main()
