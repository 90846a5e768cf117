"""The dialect settings (fakeaws/dialect.py): create_bucket_tags, bucket_defaults and moto_style,
each switched on and off through POST /_fakeaws/config, and --dialect aws|moto, which sets all
three. The moto bodies checked here are the ones moto 5.2.1 writes (observed against
`python3 -m moto.server`)."""

import base64
import hashlib
import json
import re
import unittest

from harness import FakeAWSTestCase

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
JSON_HEADERS = {"Content-Type": "application/x-amz-json-1.1"}
TAGGED_CONFIG = (f'<CreateBucketConfiguration xmlns="{NS}"><Tags><Tag><Key>k</Key>'
                 f'<Value>v</Value></Tag></Tags></CreateBucketConfiguration>')
LOWER_DECL = b'<?xml version="1.0" encoding="utf-8"?>\n'
UPPER_DECL = b'<?xml version="1.0" encoding="UTF-8"?>\n'
TOKEN_A = "11111111-1111-4111-8111-111111111111"
TOKEN_B = "22222222-2222-4222-8222-222222222222"


def md5(body):
    if isinstance(body, str):
        body = body.encode()
    return {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}


class DialectTestCase(FakeAWSTestCase):
    def config(self, **settings):
        return self.fa.control("POST", "/_fakeaws/config", settings)["config"]

    def s3(self, method, path, query="", body=b"", headers=None, **kw):
        return self.fa.signed("s3", method, path=path, query=query, body=body,
                              headers=headers, **kw)

    def iam(self, action, creds=None, **params):
        params = dict({"Action": action, "Version": "2010-05-08"}, **params)
        body = "&".join(f"{k}={v}" for k, v in params.items())
        return self.fa.signed("iam", "POST", headers=FORM, body=body, creds=creds)

    def sm(self, op, doc, creds=None):
        return self.fa.signed("secretsmanager", "POST", body=json.dumps(doc), creds=creds,
                              headers=dict(JSON_HEADERS, **{"X-Amz-Target": "secretsmanager." + op}))

    def user_with_key(self, name, policy=None):
        self.assertEqual(self.iam("CreateUser", UserName=name).status, 200)
        if policy is not None:
            r = self.fa.signed("iam", "POST", headers=FORM, body=(
                "Action=PutUserPolicy&Version=2010-05-08&UserName=" + name
                + "&PolicyName=p&PolicyDocument=" + _quote(json.dumps(policy))))
            self.assertEqual(r.status, 200, r.body)
        body = self.iam("CreateAccessKey", UserName=name).body.decode()
        return (re.search(r"<AccessKeyId>([^<]+)", body).group(1),
                re.search(r"<SecretAccessKey>([^<]+)", body).group(1))


def _quote(text):
    from urllib.parse import quote
    return quote(text, safe="")


# -- the settings themselves ------------------------------------------------------------------

class ConfigTests(DialectTestCase):
    def test_aws_dialect_is_the_default(self):
        config = self.fa.state()["config"]
        self.assertIs(config["create_bucket_tags"], True)
        self.assertIs(config["bucket_defaults"], True)
        self.assertIs(config["moto_style"], False)

    def test_values_are_checked_and_a_bad_request_changes_nothing(self):
        for bad in ({"moto_style": "yes"}, {"bucket_defaults": 1}, {"create_bucket_tags": None},
                    {"create_bucket_tags": "refuse"}, {"moto_style": True, "no_such_key": 1}):
            r = self.fa.raw("POST", "/_fakeaws/config", {"Content-Type": "application/json"},
                            json.dumps(bad).encode())
            self.assertEqual(r.status, 400, bad)
        config = self.fa.state()["config"]
        self.assertEqual((config["create_bucket_tags"], config["bucket_defaults"],
                          config["moto_style"]), (True, True, False))
        config = self.config(create_bucket_tags="malformed", bucket_defaults=False,
                             moto_style=True)
        self.assertEqual((config["create_bucket_tags"], config["bucket_defaults"],
                          config["moto_style"]), ("malformed", False, True))


class MotoDialectFlagTests(DialectTestCase):
    fakeaws_args = ("--dialect", "moto")

    def test_dialect_moto_sets_all_three(self):
        config = self.fa.state()["config"]
        self.assertEqual((config["create_bucket_tags"], config["bucket_defaults"],
                          config["moto_style"]), (False, False, True))
        # Everything at once: tags dropped, no defaults, moto's bodies.
        r = self.s3("PUT", "/moto-bucket", body=TAGGED_CONFIG)
        self.assertEqual(r.status, 200, r.body)
        self.assertNotIn("x-amz-request-id", r.headers)
        r = self.s3("GET", "/moto-bucket", query="publicAccessBlock")
        self.assertEqual((r.status, r.xml_code()), (404, "NoSuchPublicAccessBlockConfiguration"))
        self.assertTrue(r.body.startswith(LOWER_DECL))
        self.assertEqual(self.s3("GET", "/moto-bucket", query="tagging").xml_code(),
                         "NoSuchTagSet")
        # awscli (botocore) reads moto's bodies.
        out = self.fa.aws("s3api", "list-objects-v2", "--bucket", "moto-bucket",
                          "--prefix", "data/")
        self.assertNotIn("Contents", out)
        err = self.fa.aws_error("s3api", "get-bucket-encryption", "--bucket", "moto-bucket")
        self.assertEqual(err.code, "ServerSideEncryptionConfigurationNotFoundError")

    def test_dialect_can_be_switched_back_at_runtime(self):
        self.config(create_bucket_tags=True, bucket_defaults=True, moto_style=False)
        r = self.s3("PUT", "/back-bucket", body=TAGGED_CONFIG)
        self.assertEqual(r.status, 200, r.body)
        self.assertIn("x-amz-request-id", r.headers)
        r = self.s3("GET", "/back-bucket", query="tagging")
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(r.body.startswith(UPPER_DECL))
        self.assertEqual(self.s3("GET", "/back-bucket", query="publicAccessBlock").status, 200)


# -- create_bucket_tags -----------------------------------------------------------------------

class CreateBucketTagsTests(DialectTestCase):
    def test_true_applies_the_tags(self):
        r = self.s3("PUT", "/tagged-bucket", body=TAGGED_CONFIG)
        self.assertEqual(r.status, 200, r.body)
        r = self.s3("GET", "/tagged-bucket", query="tagging")
        self.assertEqual(r.status, 200, r.body)
        self.assertIn(b"<Tag><Key>k</Key><Value>v</Value></Tag>", r.body)

    def test_false_accepts_and_drops_the_tags_as_moto_does(self):
        self.config(create_bucket_tags=False)
        r = self.s3("PUT", "/dropped-bucket", body=TAGGED_CONFIG)
        self.assertEqual((r.status, r.body), (200, b""))
        self.assertEqual(r.headers["location"], "/dropped-bucket")
        r = self.s3("GET", "/dropped-bucket", query="tagging")
        self.assertEqual((r.status, r.xml_code()), (404, "NoSuchTagSet"))
        self.assertIsNone(self.fa.state()["services"]["s3"]["buckets"]["dropped-bucket"]["tags"])
        # moto does not even read them: a tag S3 would refuse is dropped too.
        r = self.s3("PUT", "/dropped-bucket2", body=TAGGED_CONFIG.replace(
            "<Key>k</Key>", "<Key>aws:reserved</Key>"))
        self.assertEqual(r.status, 200, r.body)

    def test_malformed_refuses_the_tags_as_s3_did_before(self):
        self.config(create_bucket_tags="malformed")
        r = self.s3("PUT", "/refused-bucket", body=TAGGED_CONFIG)
        self.assertEqual((r.status, r.xml_code()), (400, "MalformedXML"))
        self.assertNotIn("refused-bucket", self.fa.state()["services"]["s3"]["buckets"])
        # Without tags the same request is fine, then PutBucketTagging adds them.
        r = self.s3("PUT", "/refused-bucket")
        self.assertEqual(r.status, 200, r.body)
        tagging = (f'<Tagging xmlns="{NS}"><TagSet><Tag><Key>k</Key><Value>v</Value></Tag>'
                   f'</TagSet></Tagging>')
        r = self.s3("PUT", "/refused-bucket", query="tagging", body=tagging,
                    headers=md5(tagging))
        self.assertEqual(r.status, 204, r.body)
        self.assertEqual(self.s3("GET", "/refused-bucket", query="tagging").status, 200)

    def test_a_configuration_without_tags_is_accepted_in_every_mode(self):
        plain = f'<CreateBucketConfiguration xmlns="{NS}"></CreateBucketConfiguration>'
        for i, mode in enumerate((True, False, "malformed")):
            self.config(create_bucket_tags=mode)
            self.assertEqual(self.s3("PUT", f"/plain-bucket-{i}").status, 200, mode)
            self.assertEqual(self.s3("PUT", f"/plain-body-bucket-{i}", body=plain).status, 200,
                             mode)


# -- bucket_defaults --------------------------------------------------------------------------

class BucketDefaultsTests(DialectTestCase):
    def test_true_gives_the_2023_defaults(self):
        self.assertEqual(self.s3("PUT", "/def-bucket").status, 200)
        r = self.s3("GET", "/def-bucket", query="publicAccessBlock")
        self.assertIn(b"<BlockPublicAcls>true</BlockPublicAcls>", r.body)
        r = self.s3("GET", "/def-bucket", query="encryption")
        self.assertIn(b"<SSEAlgorithm>AES256</SSEAlgorithm>", r.body)
        r = self.s3("GET", "/def-bucket", query="ownershipControls")
        self.assertIn(b"<ObjectOwnership>BucketOwnerEnforced</ObjectOwnership>", r.body)
        r = self.s3("PUT", "/def-bucket/obj", body=b"x")
        self.assertEqual(r.headers.get("x-amz-server-side-encryption"), "AES256")
        self.assertEqual(self.s3("DELETE", "/def-bucket", query="encryption").status, 204)
        r = self.s3("GET", "/def-bucket", query="encryption")
        self.assertEqual(r.status, 200)  # SSE-S3 again: it cannot be removed

    def test_false_gives_none_and_the_get_calls_answer_not_set(self):
        self.config(bucket_defaults=False)
        self.assertEqual(self.s3("PUT", "/bare-bucket").status, 200)
        expected = {"publicAccessBlock": "NoSuchPublicAccessBlockConfiguration",
                    "encryption": "ServerSideEncryptionConfigurationNotFoundError",
                    "ownershipControls": "OwnershipControlsNotFoundError",
                    "policy": "NoSuchBucketPolicy", "tagging": "NoSuchTagSet"}
        for sub, code in expected.items():
            r = self.s3("GET", "/bare-bucket", query=sub)
            self.assertEqual((r.status, r.xml_code()), (404, code), sub)
            self.assertIn(b"<BucketName>bare-bucket</BucketName>", r.body, sub)
        state = self.fa.state()["services"]["s3"]["buckets"]["bare-bucket"]
        self.assertEqual((state["public_access_block"], state["encryption"],
                          state["ownership_controls"]), (None, None, None))
        # No default encryption: the object is stored without SSE.
        r = self.s3("PUT", "/bare-bucket/obj", body=b"x")
        self.assertEqual(r.status, 200, r.body)
        self.assertNotIn("x-amz-server-side-encryption", r.headers)
        # Without BucketOwnerEnforced a canned ACL is allowed at creation.
        r = self.s3("PUT", "/acl-bucket", headers={"x-amz-acl": "public-read"})
        self.assertEqual(r.status, 200, r.body)
        # Put then delete the encryption: it is gone again.
        enc = (f'<ServerSideEncryptionConfiguration xmlns="{NS}"><Rule>'
               f'<ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm>'
               f'</ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>')
        self.assertEqual(self.s3("PUT", "/bare-bucket", query="encryption", body=enc,
                                 headers=md5(enc)).status, 200)
        self.assertEqual(self.s3("GET", "/bare-bucket", query="encryption").status, 200)
        self.assertEqual(self.s3("DELETE", "/bare-bucket", query="encryption").status, 204)
        r = self.s3("GET", "/bare-bucket", query="encryption")
        self.assertEqual(r.xml_code(), "ServerSideEncryptionConfigurationNotFoundError")

    def test_awscli_sees_the_not_set_errors(self):
        self.config(bucket_defaults=False)
        self.fa.aws("s3api", "create-bucket", "--bucket", "cli-bucket")
        for cmd, code in (("get-public-access-block", "NoSuchPublicAccessBlockConfiguration"),
                          ("get-bucket-ownership-controls", "OwnershipControlsNotFoundError")):
            err = self.fa.aws_error("s3api", cmd, "--bucket", "cli-bucket")
            self.assertEqual(err.code, code, err.stderr)

    def test_the_setting_applies_to_buckets_created_after_it(self):
        self.assertEqual(self.s3("PUT", "/before-bucket").status, 200)
        self.config(bucket_defaults=False)
        self.assertEqual(self.s3("PUT", "/after-bucket").status, 200)
        self.assertEqual(self.s3("GET", "/before-bucket", query="publicAccessBlock").status, 200)
        self.assertEqual(self.s3("GET", "/after-bucket", query="publicAccessBlock").status, 404)
        self.config(bucket_defaults=True)
        self.assertEqual(self.s3("PUT", "/again-bucket").status, 200)
        self.assertEqual(self.s3("GET", "/again-bucket", query="publicAccessBlock").status, 200)


# -- moto_style -------------------------------------------------------------------------------

class MotoStyleS3Tests(DialectTestCase):
    def setUp(self):
        super().setUp()
        self.config(moto_style=True)
        self.assertEqual(self.s3("PUT", "/ms-bucket").status, 200)

    def test_request_id_header_and_xml_declaration(self):
        r = self.s3("GET", "/ms-bucket", query="publicAccessBlock")
        self.assertEqual(r.status, 200)
        self.assertIn("x-amzn-requestid", r.headers)
        self.assertNotIn("x-amz-request-id", r.headers)
        self.assertNotIn("x-amz-id-2", r.headers)
        self.assertEqual(r.body, LOWER_DECL + (
            f'<PublicAccessBlockConfiguration xmlns="{NS}"><BlockPublicAcls>true'
            f'</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>'
            f'true</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets>'
            f'</PublicAccessBlockConfiguration>').encode())
        r = self.s3("PUT", "/ms-bucket/obj", body=b"x")
        self.assertEqual(r.headers["content-type"], "text/html; charset=utf-8")
        r = self.s3("GET", "/ms-bucket/missing")
        self.assertEqual(r.xml_code(), "NoSuchKey")
        self.assertTrue(r.body.startswith(LOWER_DECL))
        self.assertIn(f"<RequestId>{r.headers['x-amzn-requestid']}</RequestId>".encode(), r.body)

    def test_object_bodies_are_never_rewritten(self):
        data = UPPER_DECL + b"<a>\n  <b/>\n</a>"
        self.assertEqual(self.s3("PUT", "/ms-bucket/doc.xml", body=data).status, 200)
        self.assertEqual(self.s3("GET", "/ms-bucket/doc.xml").body, data)

    def test_not_set_errors(self):
        self.assertEqual(self.s3("DELETE", "/ms-bucket", query="publicAccessBlock").status, 204)
        r = self.s3("GET", "/ms-bucket", query="publicAccessBlock")
        self.assertEqual(r.xml_code(), "NoSuchPublicAccessBlockConfiguration")
        self.assertNotIn(b"<BucketName>", r.body)  # moto leaves it out
        r = self.s3("GET", "/ms-bucket", query="policy")
        self.assertIn(b"<BucketName>ms-bucket</BucketName>", r.body)

    def test_bucket_policy_put_answers_true(self):
        policy = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": ["arn:aws:s3:::ms-bucket", "arn:aws:s3:::ms-bucket/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})
        r = self.s3("PUT", "/ms-bucket", query="policy", body=policy, headers=md5(policy))
        self.assertEqual((r.status, r.body), (200, b"True"))
        self.assertEqual(r.headers["content-type"], "application/xml")
        r = self.s3("GET", "/ms-bucket", query="policy")
        self.assertEqual((r.body.decode(), r.headers["content-type"]),
                         (policy, "application/xml"))

    def test_versioning_root_element(self):
        r = self.s3("GET", "/ms-bucket", query="versioning")
        self.assertEqual(r.body, LOWER_DECL + f'<GetBucketVersioningResponse xmlns="{NS}"/>'
                         .encode())
        body = f'<VersioningConfiguration xmlns="{NS}"><Status>Enabled</Status>' \
               f'</VersioningConfiguration>'
        self.assertEqual(self.s3("PUT", "/ms-bucket", query="versioning", body=body).status, 200)
        r = self.s3("GET", "/ms-bucket", query="versioning")
        self.assertEqual(r.body, LOWER_DECL + (f'<GetBucketVersioningResponse xmlns="{NS}">'
                                               f'<Status>Enabled</Status>'
                                               f'</GetBucketVersioningResponse>').encode())

    def test_list_objects_v2_as_moto_writes_it(self):
        r = self.s3("GET", "/ms-bucket", query="list-type=2&max-keys=0&prefix=data%2F")
        self.assertEqual(r.body, LOWER_DECL + (
            f'<ListBucketResult xmlns="{NS}"><IsTruncated>false</IsTruncated><Name>ms-bucket'
            f'</Name><Prefix>data/</Prefix><MaxKeys>0</MaxKeys><KeyCount>0</KeyCount>'
            f'</ListBucketResult>').encode())
        for key in ("data/a", "data/b", "data/sub/c"):
            self.assertEqual(self.s3("PUT", "/ms-bucket/" + key, body=b"x").status, 200)
        # moto: max-keys=0 is never truncated, even with matching keys.
        r = self.s3("GET", "/ms-bucket", query="list-type=2&max-keys=0&prefix=data%2F")
        self.assertIn(b"<IsTruncated>false</IsTruncated>", r.body)
        r = self.s3("GET", "/ms-bucket", query="list-type=2&max-keys=1&delimiter=%2F&"
                                                "prefix=data%2F")
        body = r.body.decode()
        self.assertRegex(body, r'^<\?xml version="1.0" encoding="utf-8"\?>\n<ListBucketResult '
                               r'xmlns="[^"]+"><IsTruncated>true</IsTruncated><Contents><Key>'
                               r'data/a</Key><LastModified>[0-9T:.-]+Z</LastModified><ETag>'
                               r'"[0-9a-f]{32}"</ETag><Size>1</Size><StorageClass>STANDARD'
                               r'</StorageClass></Contents><Name>ms-bucket</Name><Prefix>data/'
                               r'</Prefix><Delimiter>/</Delimiter><MaxKeys>1</MaxKeys><KeyCount>'
                               r'1</KeyCount><NextContinuationToken>[^<]+</NextContinuationToken>'
                               r'</ListBucketResult>$')
        token = re.search(r"<NextContinuationToken>([^<]+)<", body).group(1)
        r = self.s3("GET", "/ms-bucket", query="list-type=2&delimiter=%2F&prefix=data%2F&"
                                                "continuation-token=" + _quote(token))
        body = r.body.decode()
        self.assertNotIn("<ContinuationToken>", body)  # moto does not echo it
        self.assertIn("</Contents><Name>ms-bucket</Name><Prefix>data/</Prefix><Delimiter>/"
                      "</Delimiter><MaxKeys>1000</MaxKeys><CommonPrefixes><Prefix>data/sub/"
                      "</Prefix></CommonPrefixes><KeyCount>2</KeyCount></ListBucketResult>",
                      body)
        r = self.s3("GET", "/ms-bucket", query="list-type=2&prefix=zzz")
        self.assertIn(b"<Prefix>zzz</Prefix>", r.body)
        r = self.s3("GET", "/ms-bucket", query="list-type=2&max-keys=5")
        self.assertIn(b"<Name>ms-bucket</Name><Prefix/><MaxKeys>5</MaxKeys>", r.body)
        # ListObjects (V1): no Marker, Prefix only when sent.
        r = self.s3("GET", "/ms-bucket", query="delimiter=%2F&marker=a")
        self.assertNotIn(b"<Marker>", r.body)
        self.assertNotIn(b"<Prefix>", r.body.split(b"<CommonPrefixes>")[0])
        out = self.fa.aws("s3api", "list-objects-v2", "--bucket", "ms-bucket", "--prefix",
                          "data/", "--delimiter", "/")
        self.assertEqual([c["Key"] for c in out["Contents"]], ["data/a", "data/b"])
        self.assertEqual(out["CommonPrefixes"], [{"Prefix": "data/sub/"}])

    def test_create_bucket_recreate_and_head(self):
        r = self.s3("PUT", "/ms-bucket")
        self.assertEqual((r.status, r.headers["location"]), (200, "/ms-bucket"))
        self.config(moto_style=False)
        r = self.s3("PUT", "/ms-bucket")
        self.assertEqual((r.status, r.xml_code()), (409, "BucketAlreadyOwnedByYou"))
        self.config(moto_style=True)
        r = self.s3("HEAD", "/ms-bucket")
        self.assertEqual(r.headers["x-amz-bucket-region"], "us-east-1")
        self.assertNotIn("x-amz-access-point-alias", r.headers)
        r = self.s3("HEAD", "/no-such-bucket")
        self.assertEqual((r.status, r.body), (404, b""))
        self.assertNotIn("x-amz-bucket-region", r.headers)

    def test_content_md5_is_not_required(self):
        tagging = (f'<Tagging xmlns="{NS}"><TagSet><Tag><Key>k</Key><Value>v</Value></Tag>'
                   f'</TagSet></Tagging>')
        self.assertEqual(self.s3("PUT", "/ms-bucket", query="tagging", body=tagging).status, 204)
        r = self.s3("GET", "/ms-bucket", query="tagging")
        self.assertEqual(r.body, LOWER_DECL + (
            f'<Tagging xmlns="{NS}"><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet>'
            f'</Tagging>').encode())

    def test_list_buckets(self):
        r = self.s3("GET", "/")
        self.assertRegex(r.body.decode(), r"<ListAllMyBucketsResult xmlns=\"[^\"]+\"><Buckets>"
                                          r"<Bucket><Name>ms-bucket</Name><CreationDate>[^<]+"
                                          r"</CreationDate></Bucket></Buckets><Owner>")
        self.assertNotIn(b"BucketRegion", r.body)


class MotoStyleIamStsTests(DialectTestCase):
    def setUp(self):
        super().setUp()
        self.config(moto_style=True)

    def test_user_bodies(self):
        boundary = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
        r = self.iam("CreateUser", UserName="kb-u1", Path="%2Fkeybroker%2F",
                     PermissionsBoundary=_quote(boundary), **{
                         "Tags.member.1.Key": "owner", "Tags.member.1.Value": "kb"})
        self.assertEqual(r.status, 200, r.body)
        self.assertRegex(r.body.decode(), (
            r'^<CreateUserResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
            r"<CreateUserResult><User><Path>/keybroker/</Path><UserName>kb-u1</UserName>"
            r"<UserId>[a-z0-9]{20}</UserId><Arn>arn:aws:iam::123456789012:user/keybroker/kb-u1"
            r"</Arn><CreateDate>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z</CreateDate><Tags><member>"
            r"<Key>owner</Key><Value>kb</Value></member></Tags></User></CreateUserResult>"
            r"<ResponseMetadata><RequestId>[^<]+</RequestId></ResponseMetadata>"
            r"</CreateUserResponse>$"))
        self.assertNotIn(b"PermissionsBoundary", self.iam("GetUser", UserName="kb-u1").body)
        # fakeaws still keeps (and enforces) the boundary.
        user = self.fa.state()["services"]["iam"]["users"]["kb-u1"]
        self.assertEqual(user["boundary"], boundary)
        r = self.iam("ListUsers")
        self.assertIn(b"<IsTruncated>false</IsTruncated>", r.body)
        r = self.iam("ListUserTags", UserName="kb-u1")
        self.assertIn(b"<ListUserTagsResult><Tags><member><Key>owner</Key><Value>kb</Value>"
                      b"</member></Tags><IsTruncated>false</IsTruncated></ListUserTagsResult>",
                      r.body)
        self.assertEqual(self.iam("UntagUser", UserName="kb-u1",
                                  **{"TagKeys.member.1": "owner"}).status, 200)
        r = self.iam("ListUserTags", UserName="kb-u1")
        self.assertIn(b"<ListUserTagsResult><Tags/><IsTruncated>", r.body)
        out = self.fa.aws("iam", "get-user", "--user-name", "kb-u1")
        self.assertEqual(out["User"]["Path"], "/keybroker/")

    def test_access_keys_and_policies(self):
        self.assertEqual(self.iam("CreateUser", UserName="k").status, 200)
        r = self.iam("CreateAccessKey", UserName="k")
        self.assertRegex(r.body.decode(), r"<AccessKey><UserName>k</UserName><AccessKeyId>AKIA"
                                          r"[A-Z0-9]{16}</AccessKeyId><Status>Active</Status>"
                                          r"<SecretAccessKey>[^<]{40}</SecretAccessKey>"
                                          r"<CreateDate>[^<]+\.\d{6}Z</CreateDate></AccessKey>")
        r = self.iam("ListAccessKeys", UserName="k")
        self.assertIn(b"</AccessKeyMetadata></ListAccessKeysResult>", r.body)
        self.assertNotIn(b"IsTruncated", r.body)
        doc = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/data/*"}]})
        self.assertEqual(self.iam("PutUserPolicy", UserName="k", PolicyName="p",
                                  PolicyDocument=_quote(doc)).status, 200)
        r = self.iam("GetUserPolicy", UserName="k", PolicyName="p")
        self.assertIn(b"arn%3Aaws%3As3%3A%3A%3Ab/data/%2A", r.body)  # "/" kept, "*" encoded
        out = self.fa.aws("iam", "get-user-policy", "--user-name", "k", "--policy-name", "p")
        self.assertEqual(out["PolicyDocument"]["Statement"][0]["Resource"],
                         "arn:aws:s3:::b/data/*")

    def test_error_bodies(self):
        r = self.iam("GetUser", UserName="nobody")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.headers["status"], "404")
        self.assertEqual(r.body.decode(), (
            '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>'
            "Sender</Type><Code>NoSuchEntity</Code><Message>The user with name nobody cannot be "
            "found.</Message><message>The user with name nobody cannot be found.</message>"
            f"</Error><RequestId>{r.headers['x-amzn-requestid']}</RequestId></ErrorResponse>"))
        self.assertEqual(self.iam("CreateUser", UserName="dup").status, 200)
        r = self.iam("CreateUser", UserName="dup")
        self.assertEqual((r.status, r.xml_code()), (409, "EntityAlreadyExists"))
        self.assertIn(b"<Message>User dup already exists</Message>", r.body)
        r = self.iam("GetUserPolicy", UserName="dup", PolicyName="nope")
        self.assertIn(b"<Message>Policy nope not found</Message>", r.body)
        r = self.iam("DeleteAccessKey", UserName="dup", AccessKeyId="AKIAXXXXXXXXXXXXXXXX")
        self.assertIn(b"<Message>The Access Key with id AKIAXXXXXXXXXXXXXXXX cannot be found"
                      b"</Message>", r.body)
        err = self.fa.aws_error("iam", "create-user", "--user-name", "dup")
        self.assertEqual(err.code, "EntityAlreadyExists", err.stderr)

    def test_sts_element_order(self):
        r = self.fa.signed("sts", "POST", headers=FORM,
                           body="Action=GetCallerIdentity&Version=2011-06-15")
        self.assertEqual(r.body.decode(), (
            '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            "<GetCallerIdentityResult><UserId>123456789012</UserId><Account>123456789012"
            "</Account><Arn>arn:aws:iam::123456789012:root</Arn></GetCallerIdentityResult>"
            f"<ResponseMetadata><RequestId>{r.headers['x-amzn-requestid']}</RequestId>"
            "</ResponseMetadata></GetCallerIdentityResponse>"))

    def test_authentication_and_authorization_errors(self):
        creds = self.user_with_key("nobody-allowed")
        r = self.iam("ListUsers", creds=creds)
        self.assertEqual(r.status, 403)
        self.assertEqual(r.headers["status"], "403")
        self.assertEqual(r.body, LOWER_DECL + (
            "<ErrorResponse><Errors><Error><Code>AccessDenied</Code><Message>User: "
            "arn:aws:iam::123456789012:user/nobody-allowed is not authorized to perform: "
            "iam:ListUsers</Message><Type>Sender</Type></Error></Errors></ErrorResponse>")
            .encode())
        r = self.iam("ListUsers", creds=(creds[0], "x" * 40))
        self.assertEqual((r.status, r.xml_code()), (403, "SignatureDoesNotMatch"))
        r = self.iam("ListUsers", creds=("AKIAUNKNOWN000000000", "x" * 40))
        self.assertEqual((r.status, r.xml_code()), (403, "InvalidClientTokenId"))
        self.assertIn(b"<Message>The security token included in the request is invalid."
                      b"</Message>", r.body)
        # Secrets Manager too answers moto's XML, not JSON.
        r = self.sm("ListSecrets", {}, creds=creds)
        self.assertEqual((r.status, r.xml_code()), (403, "AccessDenied"))
        self.assertIn(b"is not authorized to perform: secretsmanager:ListSecrets</Message>",
                      r.body)
        r = self.sm("ListSecrets", {}, creds=("AKIAUNKNOWN000000000", "x" * 40))
        self.assertEqual((r.status, r.xml_code()), (403, "InvalidClientTokenId"))
        # S3 keeps S3's own error shape.
        r = self.s3("GET", "/", creds=creds)
        self.assertEqual((r.status, r.xml_code()), (403, "AccessDenied"))
        self.assertTrue(r.body.startswith(LOWER_DECL + b"<Error><Code>"))


class MotoStyleSecretsManagerTests(DialectTestCase):
    def setUp(self):
        super().setUp()
        self.config(moto_style=True)

    def test_success_bodies_and_timestamps(self):
        r = self.sm("CreateSecret", {"Name": "kb/s1", "ClientRequestToken": TOKEN_A,
                                     "SecretString": "v1", "Description": "d",
                                     "Tags": [{"Key": "owner", "Value": "kb"}]})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.headers["content-type"], "text/html; charset=utf-8")
        arn = r.json()["ARN"]
        doc = self.sm("DescribeSecret", {"SecretId": "kb/s1"}).json()
        self.assertEqual(list(doc), ["ARN", "Name", "LastChangedDate", "LastAccessedDate",
                                     "NextRotationDate", "DeletedDate", "CreatedDate",
                                     "KmsKeyId", "Tags", "Description", "VersionIdsToStages",
                                     "SecretVersionsToStages"])
        self.assertEqual((doc["ARN"], doc["LastAccessedDate"], doc["NextRotationDate"],
                          doc["DeletedDate"], doc["KmsKeyId"]), (arn, None, None, None, None))
        self.assertIs(type(doc["CreatedDate"]), int)
        self.assertIs(type(doc["LastChangedDate"]), int)
        self.assertEqual(doc["VersionIdsToStages"], {TOKEN_A: ["AWSCURRENT"]})
        self.assertEqual(doc["SecretVersionsToStages"], doc["VersionIdsToStages"])
        value = self.sm("GetSecretValue", {"SecretId": "kb/s1"}).json()
        self.assertIs(type(value["CreatedDate"]), int)
        self.assertEqual(self.sm("PutSecretValue", {"SecretId": "kb/s1", "SecretString": "v2",
                                                    "ClientRequestToken": TOKEN_B}).status, 200)
        versions = self.sm("ListSecretVersionIds", {"SecretId": "kb/s1"}).json()
        self.assertEqual((versions["ARN"], versions["Name"], versions["NextToken"]),
                         ("kb/s1", "kb/s1", ""))
        self.assertEqual(sorted(v["VersionId"] for v in versions["Versions"]),
                         sorted([TOKEN_A, TOKEN_B]))
        for v in versions["Versions"]:
            self.assertNotIn("KmsKeyIds", v)
            self.assertIs(type(v["CreatedDate"]), int)
            self.assertIs(type(v["LastAccessedDate"]), int)
        deleted = self.sm("DeleteSecret", {"SecretId": "kb/s1", "RecoveryWindowInDays": 7})
        self.assertIs(type(deleted.json()["DeletionDate"]), float)
        doc = self.sm("DescribeSecret", {"SecretId": "kb/s1"}).json()
        self.assertIs(type(doc["DeletedDate"]), float)
        self.assertAlmostEqual(doc["DeletedDate"], deleted.json()["DeletionDate"], places=2)
        out = self.fa.aws("secretsmanager", "describe-secret", "--secret-id", "kb/s1")
        self.assertIn("DeletedDate", out)

    def test_a_secret_without_tags_or_description(self):
        self.assertEqual(self.sm("CreateSecret", {"Name": "empty"}).status, 200)
        doc = self.sm("DescribeSecret", {"SecretId": "empty"}).json()
        self.assertEqual(list(doc), ["ARN", "Name", "LastChangedDate", "LastAccessedDate",
                                     "NextRotationDate", "DeletedDate", "CreatedDate",
                                     "KmsKeyId"])

    def test_error_shape(self):
        r = self.sm("GetSecretValue", {"SecretId": "nope"})
        self.assertEqual(r.status, 404)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual(r.headers["x-amzn-errortype"], "ResourceNotFoundException")
        self.assertEqual(r.json(), {"__type": "ResourceNotFoundException",
                                    "message": "Secrets Manager can't find the specified "
                                               "secret."})
        self.assertEqual(self.sm("CreateSecret", {"Name": "dup", "SecretString": "x"}).status,
                         200)
        r = self.sm("CreateSecret", {"Name": "dup", "SecretString": "x"})
        self.assertEqual((r.status, r.json()["__type"]), (400, "ResourceExistsException"))
        self.assertIn("message", r.json())
        self.assertNotIn("Message", r.json())
        self.assertEqual(self.sm("DeleteSecret", {"SecretId": "dup"}).status, 200)
        r = self.sm("GetSecretValue", {"SecretId": "dup"})
        self.assertEqual((r.status, r.json()["__type"]), (400, "InvalidRequestException"))
        err = self.fa.aws_error("secretsmanager", "get-secret-value", "--secret-id", "nope")
        self.assertEqual(err.code, "ResourceNotFoundException", err.stderr)

    def test_switching_moto_style_off_restores_aws_bodies(self):
        self.config(moto_style=False)
        r = self.sm("GetSecretValue", {"SecretId": "nope"})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.headers["content-type"], "application/x-amz-json-1.1")
        self.assertIn("Message", r.json())
        self.assertEqual(self.sm("CreateSecret", {"Name": "aws", "SecretString": "x"}).status,
                         200)
        doc = self.sm("DescribeSecret", {"SecretId": "aws"}).json()
        self.assertNotIn("SecretVersionsToStages", doc)
        self.assertIsInstance(doc["CreatedDate"], float)


if __name__ == "__main__":
    unittest.main()
