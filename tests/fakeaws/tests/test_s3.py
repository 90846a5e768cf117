"""S3 through awscli's s3api: buckets, their configuration sub-resources, objects, listings,
Object Lock, addressing styles and the errors real S3 answers."""

import base64
import hashlib
import json
import os
import tempfile
import time
import unittest

from harness import ROOT_KEY_ID, FakeAWS, FakeAWSTestCase

DENY_INSECURE = {
    "Version": "2012-10-17",
    "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": ["arn:aws:s3:::polbucket", "arn:aws:s3:::polbucket/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }],
}


class S3TestCase(FakeAWSTestCase):
    def s3(self, *args, **kw):
        return self.fa.aws("s3api", *args, **kw)

    def s3_error(self, code, *args, **kw):
        return self.assertAwsError(code, "s3api", *args, **kw)

    def bucket_state(self, name):
        return self.fa.state()["services"]["s3"]["buckets"].get(name)

    def make_user(self, actions, resource, name="writer"):
        """An IAM user allowed actions on resource; returns its (key id, secret)."""
        self.fa.aws("iam", "create-user", "--user-name", name)
        key = self.fa.aws("iam", "create-access-key", "--user-name", name)["AccessKey"]
        self.fa.aws("iam", "put-user-policy", "--user-name", name, "--policy-name", "s3",
                    "--policy-document", json.dumps({
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": actions,
                                       "Resource": resource}]}))
        return key["AccessKeyId"], key["SecretAccessKey"]

    def tmpfile(self, data):
        fd, path = tempfile.mkstemp(prefix="fakeaws-s3-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        self.addCleanup(os.unlink, path)
        return path


class BucketTests(S3TestCase):
    def test_create_head_list_delete_bucket(self):
        out = self.s3("create-bucket", "--bucket", "alpha-bucket")
        self.assertEqual(out["Location"], "/alpha-bucket")
        self.assertEqual(self.s3("head-bucket", "--bucket", "alpha-bucket"), {})
        r = self.fa.signed("s3", "HEAD", path="/alpha-bucket")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["x-amz-bucket-region"], "us-east-1")
        listed = self.s3("list-buckets")
        self.assertEqual([b["Name"] for b in listed["Buckets"]], ["alpha-bucket"])
        self.assertEqual(len(listed["Owner"]["ID"]), 64)
        self.assertEqual(self.s3("get-bucket-location", "--bucket", "alpha-bucket"),
                         {"LocationConstraint": None})
        self.s3("delete-bucket", "--bucket", "alpha-bucket")
        err = self.fa.aws_error("s3api", "head-bucket", "--bucket", "alpha-bucket")
        self.assertEqual(err.code, "404")
        self.s3_error("NoSuchBucket", "delete-bucket", "--bucket", "alpha-bucket")
        self.assertEqual(self.fa.state()["services"]["s3"]["buckets"], {})

    def test_no_such_bucket_carries_bucket_name(self):
        r = self.fa.signed("s3", "GET", path="/missing-bucket", query="list-type=2")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.xml_code(), "NoSuchBucket")
        self.assertIn(b"<BucketName>missing-bucket</BucketName>", r.body)
        path = self.tmpfile(b"x")
        self.s3_error("NoSuchBucket", "put-object", "--bucket", "missing-bucket", "--key", "k",
                      "--body", path)

    def test_bucket_already_owned_by_you(self):
        self.s3("create-bucket", "--bucket", "mine-bucket")
        err = self.s3_error("BucketAlreadyOwnedByYou", "create-bucket", "--bucket", "mine-bucket")
        self.assertIn("already own it", err.message)

    def test_bucket_already_exists_for_foreign_bucket(self):
        self.fa.control("POST", "/_fakeaws/foreign-buckets", {"name": "someone-elses"})
        self.s3_error("BucketAlreadyExists", "create-bucket", "--bucket", "someone-elses")
        # It exists but is not ours: HEAD is forbidden, not missing.
        self.assertEqual(self.fa.aws_error("s3api", "head-bucket", "--bucket",
                                           "someone-elses").code, "403")
        self.s3_error("AccessDenied", "get-bucket-encryption", "--bucket", "someone-elses")
        self.assertIsNone(self.bucket_state("someone-elses"))

    def test_invalid_bucket_names(self):
        for name in ("ab", "Upper-Case", "dots..here", "192.168.5.4", "xn--punycode",
                     "name-s3alias", "-leading-hyphen", "x" * 64):
            r = self.fa.signed("s3", "PUT", path="/" + name)
            self.assertEqual((r.status, r.xml_code()), (400, "InvalidBucketName"), name)
        self.s3_error("InvalidBucketName", "create-bucket", "--bucket", "Bad.Name")
        self.assertEqual(self.fa.state()["services"]["s3"]["buckets"], {})

    def test_location_constraint_in_us_east_1(self):
        self.s3_error("InvalidLocationConstraint", "create-bucket", "--bucket", "lc-bucket",
                      "--create-bucket-configuration", "LocationConstraint=us-east-1")
        self.s3_error("IllegalLocationConstraintException", "create-bucket", "--bucket",
                      "lc-bucket", "--create-bucket-configuration",
                      "LocationConstraint=eu-west-1")
        self.assertIsNone(self.bucket_state("lc-bucket"))

    def test_location_constraint_outside_us_east_1(self):
        with FakeAWS(region="eu-west-1") as fa:
            err = fa.aws_error("s3api", "create-bucket", "--bucket", "eu-bucket")
            self.assertEqual(err.code, "IllegalLocationConstraintException")
            self.assertIn("unspecified location constraint", err.message)
            err = fa.aws_error("s3api", "create-bucket", "--bucket", "eu-bucket",
                               "--create-bucket-configuration", "LocationConstraint=eu-west-2")
            self.assertEqual(err.code, "IllegalLocationConstraintException")
            out = fa.aws("s3api", "create-bucket", "--bucket", "eu-bucket",
                         "--create-bucket-configuration", "LocationConstraint=eu-west-1")
            self.assertEqual(out["Location"], "http://eu-bucket.s3.amazonaws.com/")
            self.assertEqual(fa.aws("s3api", "get-bucket-location", "--bucket", "eu-bucket"),
                             {"LocationConstraint": "eu-west-1"})
            r = fa.signed("s3", "HEAD", path="/eu-bucket")
            self.assertEqual(r.headers["x-amz-bucket-region"], "eu-west-1")
            state = fa.state()["services"]["s3"]["buckets"]["eu-bucket"]
            self.assertEqual(state["region"], "eu-west-1")

    def test_new_bucket_gets_current_s3_defaults(self):
        self.s3("create-bucket", "--bucket", "default-bucket")
        pab = self.s3("get-public-access-block", "--bucket", "default-bucket")
        self.assertEqual(pab["PublicAccessBlockConfiguration"], {
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True})
        enc = self.s3("get-bucket-encryption", "--bucket", "default-bucket")
        self.assertEqual(enc["ServerSideEncryptionConfiguration"]["Rules"], [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
             "BucketKeyEnabled": False}])
        own = self.s3("get-bucket-ownership-controls", "--bucket", "default-bucket")
        self.assertEqual(own["OwnershipControls"]["Rules"],
                         [{"ObjectOwnership": "BucketOwnerEnforced"}])
        state = self.bucket_state("default-bucket")
        self.assertEqual(state["encryption"]["SSEAlgorithm"], "AES256")
        self.assertEqual(state["ownership_controls"], "BucketOwnerEnforced")
        self.assertIsNone(state["policy"])
        self.assertIsNone(state["versioning"])

    def test_acceptance_create_block_public_access_encrypt(self):
        self.s3("create-bucket", "--bucket", "kb-secrets")
        self.s3("put-public-access-block", "--bucket", "kb-secrets",
                "--public-access-block-configuration",
                "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,"
                "RestrictPublicBuckets=true")
        self.s3("put-bucket-encryption", "--bucket", "kb-secrets",
                "--server-side-encryption-configuration", json.dumps({"Rules": [{
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": "arn:aws:kms:us-east-1:123456789012:key/abcd"},
                    "BucketKeyEnabled": True}]}))
        state = self.bucket_state("kb-secrets")
        self.assertEqual(state["public_access_block"], {
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True})
        self.assertEqual(state["encryption"], {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": "arn:aws:kms:us-east-1:123456789012:key/abcd",
            "BucketKeyEnabled": True})
        ops = [c["operation"] for c in self.fa.calls() if c["service"] == "s3"]
        self.assertEqual(ops, ["CreateBucket", "PutPublicAccessBlock", "PutBucketEncryption"])


class BucketConfigurationTests(S3TestCase):
    def setUp(self):
        super().setUp()
        self.s3("create-bucket", "--bucket", "cfg-bucket")

    def test_public_access_block_put_get_delete(self):
        self.s3("put-public-access-block", "--bucket", "cfg-bucket",
                "--public-access-block-configuration",
                "BlockPublicAcls=true,IgnorePublicAcls=false,BlockPublicPolicy=true,"
                "RestrictPublicBuckets=false")
        out = self.s3("get-public-access-block", "--bucket", "cfg-bucket")
        self.assertEqual(out["PublicAccessBlockConfiguration"], {
            "BlockPublicAcls": True, "IgnorePublicAcls": False, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": False})
        self.s3("delete-public-access-block", "--bucket", "cfg-bucket")
        self.s3_error("NoSuchPublicAccessBlockConfiguration", "get-public-access-block",
                      "--bucket", "cfg-bucket")
        self.assertIsNone(self.bucket_state("cfg-bucket")["public_access_block"])

    def test_malformed_configuration_xml(self):
        body = b"<PublicAccessBlockConfiguration><BlockPublicAcls>maybe</BlockPublicAcls>" \
               b"</PublicAccessBlockConfiguration>"
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        r = self.fa.signed("s3", "PUT", path="/cfg-bucket", query="publicAccessBlock",
                           body=body, headers={"Content-MD5": md5})
        self.assertEqual((r.status, r.xml_code()), (400, "MalformedXML"))
        r = self.fa.signed("s3", "PUT", path="/cfg-bucket", query="publicAccessBlock",
                           body=b"<not-closed", headers={
                               "Content-MD5": base64.b64encode(
                                   hashlib.md5(b"<not-closed").digest()).decode()})
        self.assertEqual((r.status, r.xml_code()), (400, "MalformedXML"))
        # S3 insists on an integrity header for configuration uploads.
        r = self.fa.signed("s3", "PUT", path="/cfg-bucket", query="publicAccessBlock",
                           body=body)
        self.assertEqual((r.status, r.xml_code()), (400, "InvalidRequest"))
        self.assertTrue(self.bucket_state("cfg-bucket")["public_access_block"]["BlockPublicAcls"])

    def test_bucket_encryption_put_get_and_validation(self):
        self.s3("put-bucket-encryption", "--bucket", "cfg-bucket",
                "--server-side-encryption-configuration", json.dumps({"Rules": [{
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]}))
        out = self.s3("get-bucket-encryption", "--bucket", "cfg-bucket")
        self.assertEqual(out["ServerSideEncryptionConfiguration"]["Rules"], [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"},
             "BucketKeyEnabled": False}])
        self.s3_error("MalformedXML", "put-bucket-encryption", "--bucket", "cfg-bucket",
                      "--server-side-encryption-configuration", json.dumps({"Rules": [{
                          "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "DES"}}]}))
        self.s3_error("InvalidArgument", "put-bucket-encryption", "--bucket", "cfg-bucket",
                      "--server-side-encryption-configuration", json.dumps({"Rules": [{
                          "ApplyServerSideEncryptionByDefault": {
                              "SSEAlgorithm": "AES256", "KMSMasterKeyID": "alias/x"}}]}))
        self.assertEqual(self.bucket_state("cfg-bucket")["encryption"]["SSEAlgorithm"],
                         "aws:kms")

    def test_ownership_controls(self):
        self.s3("create-bucket", "--bucket", "writer-bucket", "--object-ownership",
                "ObjectWriter")
        out = self.s3("get-bucket-ownership-controls", "--bucket", "writer-bucket")
        self.assertEqual(out["OwnershipControls"]["Rules"], [{"ObjectOwnership": "ObjectWriter"}])
        self.s3("put-bucket-ownership-controls", "--bucket", "cfg-bucket",
                "--ownership-controls", "Rules=[{ObjectOwnership=BucketOwnerPreferred}]")
        out = self.s3("get-bucket-ownership-controls", "--bucket", "cfg-bucket")
        self.assertEqual(out["OwnershipControls"]["Rules"],
                         [{"ObjectOwnership": "BucketOwnerPreferred"}])
        self.s3("delete-bucket-ownership-controls", "--bucket", "cfg-bucket")
        self.s3_error("OwnershipControlsNotFoundError", "get-bucket-ownership-controls",
                      "--bucket", "cfg-bucket")
        # With ACLs disabled (the default), a public canned ACL is refused at creation.
        self.s3_error("InvalidBucketAclWithObjectOwnership", "create-bucket", "--bucket",
                      "acl-bucket", "--acl", "public-read")

    def test_bucket_policy_put_get_delete(self):
        self.s3("create-bucket", "--bucket", "polbucket")
        text = json.dumps(DENY_INSECURE)
        self.s3("put-bucket-policy", "--bucket", "polbucket", "--policy", text)
        out = self.s3("get-bucket-policy", "--bucket", "polbucket")
        self.assertEqual(json.loads(out["Policy"]), DENY_INSECURE)
        self.assertEqual(self.bucket_state("polbucket")["policy"], DENY_INSECURE)
        self.s3("delete-bucket-policy", "--bucket", "polbucket")
        self.s3_error("NoSuchBucketPolicy", "get-bucket-policy", "--bucket", "polbucket")
        self.assertIsNone(self.bucket_state("polbucket")["policy"])

    def test_bucket_policy_validation(self):
        self.s3_error("MalformedPolicy", "put-bucket-policy", "--bucket", "cfg-bucket",
                      "--policy", '{"Version": "2012-10-17", "Statement": [')
        other = dict(DENY_INSECURE)
        other["Statement"] = [dict(DENY_INSECURE["Statement"][0],
                                   Resource="arn:aws:s3:::some-other-bucket/*")]
        err = self.s3_error("MalformedPolicy", "put-bucket-policy", "--bucket", "cfg-bucket",
                            "--policy", json.dumps(other))
        self.assertIn("invalid resource", err.message)
        ghost = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::cfg-bucket/*",
            "Principal": {"AWS": "arn:aws:iam::123456789012:user/no-such-user"}}]}
        err = self.s3_error("MalformedPolicy", "put-bucket-policy", "--bucket", "cfg-bucket",
                            "--policy", json.dumps(ghost))
        self.assertIn("Invalid principal", err.message)
        # Block Public Access (on by default) refuses a policy that makes the bucket public.
        public = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::cfg-bucket/*"}]}
        err = self.s3_error("AccessDenied", "put-bucket-policy", "--bucket", "cfg-bucket",
                            "--policy", json.dumps(public))
        self.assertIn("BlockPublicPolicy", err.message)
        self.assertIsNone(self.bucket_state("cfg-bucket")["policy"])

    def test_bucket_tagging(self):
        self.s3_error("NoSuchTagSet", "get-bucket-tagging", "--bucket", "cfg-bucket")
        self.s3("put-bucket-tagging", "--bucket", "cfg-bucket", "--tagging",
                "TagSet=[{Key=team,Value=security},{Key=env,Value=test}]")
        out = self.s3("get-bucket-tagging", "--bucket", "cfg-bucket")
        self.assertEqual(out["TagSet"], [{"Key": "team", "Value": "security"},
                                         {"Key": "env", "Value": "test"}])
        self.s3_error("InvalidTag", "put-bucket-tagging", "--bucket", "cfg-bucket", "--tagging",
                      "TagSet=[{Key=dup,Value=a},{Key=dup,Value=b}]")
        self.s3_error("InvalidTag", "put-bucket-tagging", "--bucket", "cfg-bucket", "--tagging",
                      "TagSet=[{Key=aws:reserved,Value=a}]")
        self.assertEqual(self.bucket_state("cfg-bucket")["tags"],
                         {"team": "security", "env": "test"})
        self.s3("delete-bucket-tagging", "--bucket", "cfg-bucket")
        self.s3_error("NoSuchTagSet", "get-bucket-tagging", "--bucket", "cfg-bucket")

    def test_versioning(self):
        self.assertEqual(self.s3("get-bucket-versioning", "--bucket", "cfg-bucket"), {})
        self.s3("put-bucket-versioning", "--bucket", "cfg-bucket",
                "--versioning-configuration", "Status=Enabled")
        self.assertEqual(self.s3("get-bucket-versioning", "--bucket", "cfg-bucket"),
                         {"Status": "Enabled"})
        path = self.tmpfile(b"v1")
        v1 = self.s3("put-object", "--bucket", "cfg-bucket", "--key", "doc", "--body", path)
        v2 = self.s3("put-object", "--bucket", "cfg-bucket", "--key", "doc", "--body", path)
        self.assertNotEqual(v1["VersionId"], v2["VersionId"])
        deleted = self.s3("delete-object", "--bucket", "cfg-bucket", "--key", "doc")
        self.assertTrue(deleted["DeleteMarker"])
        self.s3_error("NoSuchKey", "get-object", "--bucket", "cfg-bucket", "--key", "doc",
                      os.devnull)
        # The old versions are still there: the bucket is not empty.
        self.s3_error("BucketNotEmpty", "delete-bucket", "--bucket", "cfg-bucket")
        objects = self.bucket_state("cfg-bucket")["objects"]
        self.assertEqual([(o["version_id"], o.get("delete_marker", False)) for o in objects],
                         [(v1["VersionId"], False), (v2["VersionId"], False),
                          (deleted["VersionId"], True)])
        # Emptying a versioned bucket: list every version, delete them all in one batch.
        listed = self.s3("list-object-versions", "--bucket", "cfg-bucket")
        self.assertEqual([(v["VersionId"], v["IsLatest"]) for v in listed["Versions"]],
                         [(v2["VersionId"], False), (v1["VersionId"], False)])
        self.assertEqual([(m["VersionId"], m["IsLatest"]) for m in listed["DeleteMarkers"]],
                         [(deleted["VersionId"], True)])
        batch = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                 for v in listed["Versions"] + listed["DeleteMarkers"]]
        out = self.s3("delete-objects", "--bucket", "cfg-bucket", "--delete",
                      json.dumps({"Objects": batch}))
        self.assertEqual(sorted(d["VersionId"] for d in out["Deleted"]),
                         sorted(b["VersionId"] for b in batch))
        self.s3("delete-bucket", "--bucket", "cfg-bucket")
        self.assertIsNone(self.bucket_state("cfg-bucket"))

    def test_unsupported_subresource_is_not_implemented(self):
        err = self.s3_error("NotImplemented", "get-bucket-acl", "--bucket", "cfg-bucket")
        self.assertIn("GetBucketAcl", err.message)
        self.assertEqual(self.fa.calls()[-1]["operation"], "GetBucketAcl")
        r = self.fa.signed("s3", "GET", path="/cfg-bucket", query="lifecycle")
        self.assertEqual((r.status, r.xml_code()), (501, "NotImplemented"))
        self.assertIn(b"GetBucketLifecycleConfiguration", r.body)
        # The signature is checked first, as S3 does.
        r = self.fa.signed("s3", "GET", path="/cfg-bucket", query="lifecycle",
                           creds=(ROOT_KEY_ID, "wrong-secret-000000000000000000000000000"))
        self.assertEqual((r.status, r.xml_code()), (403, "SignatureDoesNotMatch"))


class ObjectTests(S3TestCase):
    def setUp(self):
        super().setUp()
        self.s3("create-bucket", "--bucket", "obj-bucket")

    def test_object_round_trip(self):
        data = bytes(range(256)) * 40 + b"\x00end"
        path = self.tmpfile(data)
        md5 = hashlib.md5(data).hexdigest()
        put = self.s3("put-object", "--bucket", "obj-bucket", "--key", "dir/blob.bin",
                      "--body", path, "--content-type", "application/x-test",
                      "--metadata", "purpose=roundtrip")
        self.assertEqual(put["ETag"], f'"{md5}"')
        self.assertEqual(put["ServerSideEncryption"], "AES256")
        head = self.s3("head-object", "--bucket", "obj-bucket", "--key", "dir/blob.bin")
        self.assertEqual(head["ContentLength"], len(data))
        self.assertEqual(head["ContentType"], "application/x-test")
        self.assertEqual(head["Metadata"], {"purpose": "roundtrip"})
        self.assertEqual(head["ETag"], f'"{md5}"')
        out_path = self.tmpfile(b"")
        got = self.s3("get-object", "--bucket", "obj-bucket", "--key", "dir/blob.bin", out_path)
        self.assertEqual(got["ContentLength"], len(data))
        with open(out_path, "rb") as f:
            self.assertEqual(f.read(), data)
        ranged = self.s3("get-object", "--bucket", "obj-bucket", "--key", "dir/blob.bin",
                         "--range", "bytes=256-511", out_path)
        self.assertEqual(ranged["ContentRange"], f"bytes 256-511/{len(data)}")
        with open(out_path, "rb") as f:
            self.assertEqual(f.read(), bytes(range(256)))
        state = self.bucket_state("obj-bucket")["objects"]
        self.assertEqual([(o["key"], o["size"], o["etag"]) for o in state],
                         [("dir/blob.bin", len(data), f'"{md5}"')])
        self.s3("delete-object", "--bucket", "obj-bucket", "--key", "dir/blob.bin")
        self.assertEqual(self.fa.aws_error("s3api", "head-object", "--bucket", "obj-bucket",
                                           "--key", "dir/blob.bin").code, "404")
        self.assertEqual(self.bucket_state("obj-bucket")["objects"], [])

    def test_no_such_key(self):
        err = self.s3_error("NoSuchKey", "get-object", "--bucket", "obj-bucket", "--key",
                            "absent/key.txt", os.devnull)
        self.assertIn("does not exist", err.message)
        r = self.fa.signed("s3", "GET", path="/obj-bucket/absent/key.txt")
        self.assertEqual(r.status, 404)
        self.assertIn(b"<Key>absent/key.txt</Key>", r.body)

    def test_bucket_not_empty(self):
        path = self.tmpfile(b"payload")
        self.s3("put-object", "--bucket", "obj-bucket", "--key", "k", "--body", path)
        err = self.s3_error("BucketNotEmpty", "delete-bucket", "--bucket", "obj-bucket")
        self.assertIn("not empty", err.message)
        self.s3("delete-object", "--bucket", "obj-bucket", "--key", "k")
        self.s3("delete-bucket", "--bucket", "obj-bucket")
        self.assertIsNone(self.bucket_state("obj-bucket"))

    def test_list_objects_v2_prefix_delimiter_and_pages(self):
        path = self.tmpfile(b"12345")
        for key in ("a/1.txt", "a/2.txt", "a/sub/3.txt", "b/4.txt", "top.txt", "with space"):
            self.s3("put-object", "--bucket", "obj-bucket", "--key", key, "--body", path)
        out = self.s3("list-objects-v2", "--bucket", "obj-bucket", "--delimiter", "/")
        self.assertEqual([c["Key"] for c in out["Contents"]], ["top.txt", "with space"])
        self.assertEqual([p["Prefix"] for p in out["CommonPrefixes"]], ["a/", "b/"])
        self.assertEqual(out["Contents"][0]["Size"], 5)
        self.assertEqual(out["Contents"][0]["StorageClass"], "STANDARD")
        self.assertEqual(out["Contents"][0]["ETag"], '"%s"' % hashlib.md5(b"12345").hexdigest())
        out = self.s3("list-objects-v2", "--bucket", "obj-bucket", "--prefix", "a/",
                      "--delimiter", "/")
        self.assertEqual([c["Key"] for c in out["Contents"]], ["a/1.txt", "a/2.txt"])
        self.assertEqual([p["Prefix"] for p in out["CommonPrefixes"]], ["a/sub/"])
        # One key per page: awscli follows NextContinuationToken to the end.
        start = self.fa.calls()[-1]["seq"]
        out = self.s3("list-objects-v2", "--bucket", "obj-bucket", "--page-size", "1",
                      "--start-after", "a/2.txt")
        self.assertEqual([c["Key"] for c in out["Contents"]],
                         ["a/sub/3.txt", "b/4.txt", "top.txt", "with space"])
        pages = [c for c in self.fa.calls(start) if c["operation"] == "ListObjectsV2"]
        self.assertEqual(len(pages), 4)
        r = self.fa.signed("s3", "GET", path="/obj-bucket",
                           query="list-type=2&max-keys=2&prefix=a%2F")
        self.assertIn(b"<KeyCount>2</KeyCount>", r.body)
        self.assertIn(b"<IsTruncated>true</IsTruncated>", r.body)
        self.assertIn(b"<NextContinuationToken>", r.body)
        self.assertIn(b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
                      r.body)

    def test_virtual_hosted_style_addressing(self):
        data = b"virtual host body"
        path = self.tmpfile(data)
        self.s3("put-object", "--bucket", "obj-bucket", "--key", "dir/v.txt", "--body", path)
        for host in (f"obj-bucket.localhost:{self.fa.port}",
                     f"obj-bucket.127.0.0.1:{self.fa.port}",
                     f"obj-bucket.s3.localhost:{self.fa.port}"):
            r = self.fa.signed("s3", "GET", path="/dir/v.txt", headers={"Host": host})
            self.assertEqual((r.status, r.body), (200, data), host)
            self.assertEqual(r.headers["etag"], '"%s"' % hashlib.md5(data).hexdigest())
        r = self.fa.signed("s3", "GET", path="/", query="list-type=2",
                           headers={"Host": f"obj-bucket.localhost:{self.fa.port}"})
        self.assertEqual(r.status, 200)
        self.assertIn(b"<Name>obj-bucket</Name>", r.body)
        self.assertIn(b"<Key>dir/v.txt</Key>", r.body)
        # A bare IP endpoint is path style: "/dir/v.txt" names bucket "dir".
        r = self.fa.signed("s3", "GET", path="/dir/v.txt",
                           headers={"Host": f"127.0.0.1:{self.fa.port}"})
        self.assertEqual((r.status, r.xml_code()), (404, "NoSuchBucket"))
        self.assertIn(b"<BucketName>dir</BucketName>", r.body)


def _md5(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


FAR = "2030-01-01T00:00:00Z"


class ObjectLockTests(S3TestCase):
    """Object Lock: a version under retention or legal hold cannot be deleted or unlocked, and
    an "overwrite" is a new version beside it. Driven through awscli's s3api, which sends
    Content-MD5 with every PutObject itself."""

    def setUp(self):
        super().setUp()
        self.s3("create-bucket", "--bucket", "lock-bucket", "--object-lock-enabled-for-bucket")
        self.body = self.tmpfile(b'{"file":"audit.log","seq":7}')

    def put(self, key, *lock, **kw):
        return self.s3("put-object", "--bucket", "lock-bucket", "--key", key, "--body",
                       self.body, *lock, **kw)

    def version_state(self, version_id):
        return [o for o in self.bucket_state("lock-bucket")["objects"]
                if o["version_id"] == version_id][0]

    def test_bucket_created_with_object_lock(self):
        self.assertEqual(self.s3("get-bucket-versioning", "--bucket", "lock-bucket"),
                         {"Status": "Enabled"})
        self.assertEqual(self.s3("get-object-lock-configuration", "--bucket", "lock-bucket"),
                         {"ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled"}})
        err = self.s3_error("InvalidBucketState", "put-bucket-versioning", "--bucket",
                            "lock-bucket", "--versioning-configuration", "Status=Suspended")
        self.assertIn("versioning state cannot be changed", err.message)
        self.s3("put-bucket-versioning", "--bucket", "lock-bucket",
                "--versioning-configuration", "Status=Enabled")
        state = self.bucket_state("lock-bucket")
        self.assertEqual((state["versioning"], state["object_lock"]),
                         ("Enabled", {"enabled": True, "default_retention": None}))

    def test_lock_configuration_on_a_plain_bucket(self):
        self.s3("create-bucket", "--bucket", "plain-bucket")
        self.s3_error("ObjectLockConfigurationNotFoundError", "get-object-lock-configuration",
                      "--bucket", "plain-bucket")
        r = self.fa.signed("s3", "GET", path="/plain-bucket", query="object-lock")
        self.assertEqual(r.status, 404)
        cfg = json.dumps({"ObjectLockEnabled": "Enabled"})
        # An existing bucket can get Object Lock, but only once versioning is on.
        self.s3_error("InvalidBucketState", "put-object-lock-configuration", "--bucket",
                      "plain-bucket", "--object-lock-configuration", cfg)
        err = self.s3_error("InvalidRequest", "put-object", "--bucket", "plain-bucket", "--key",
                            "k", "--body", self.body, "--object-lock-mode", "GOVERNANCE",
                            "--object-lock-retain-until-date", FAR)
        self.assertIn("missing Object Lock Configuration", err.message)
        self.s3("put-bucket-versioning", "--bucket", "plain-bucket",
                "--versioning-configuration", "Status=Enabled")
        self.s3("put-object-lock-configuration", "--bucket", "plain-bucket",
                "--object-lock-configuration", cfg)
        self.assertTrue(self.bucket_state("plain-bucket")["object_lock"]["enabled"])
        self.s3_error("InvalidBucketState", "put-bucket-versioning", "--bucket", "plain-bucket",
                      "--versioning-configuration", "Status=Suspended")

    def test_default_retention_applies_to_new_versions(self):
        cfg = {"ObjectLockEnabled": "Enabled",
               "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}}
        self.s3("put-object-lock-configuration", "--bucket", "lock-bucket",
                "--object-lock-configuration", json.dumps(cfg))
        self.assertEqual(self.s3("get-object-lock-configuration", "--bucket", "lock-bucket"),
                         {"ObjectLockConfiguration": cfg})
        before = time.time()
        put = self.put("anchors/d.json")
        head = self.s3("head-object", "--bucket", "lock-bucket", "--key", "anchors/d.json")
        self.assertEqual(head["ObjectLockMode"], "COMPLIANCE")
        until = self.version_state(put["VersionId"])["retain_until"]
        self.assertTrue(before + 86400 - 1 <= until <= time.time() + 86400 + 1, until)
        # Without an integrity header the default retention makes PutObject fail, as on S3.
        r = self.fa.signed("s3", "PUT", path="/lock-bucket/anchors/e.json", body=b"x")
        self.assertEqual((r.status, r.xml_code()), (400, "InvalidRequest"))
        self.assertIn(b"Content-MD5 OR x-amz-checksum- HTTP header is required", r.body)
        for bad, code in (({"Mode": "COMPLIANCE", "Days": 1, "Years": 1}, "MalformedXML"),
                          ({"Mode": "COMPLIANCE"}, "MalformedXML"),
                          ({"Mode": "COMPLIANCE", "Days": 0}, "InvalidArgument")):
            self.s3_error(code, "put-object-lock-configuration", "--bucket", "lock-bucket",
                          "--object-lock-configuration", json.dumps(
                              {"ObjectLockEnabled": "Enabled",
                               "Rule": {"DefaultRetention": bad}}))
        self.assertEqual(self.bucket_state("lock-bucket")["object_lock"]["default_retention"],
                         {"Mode": "COMPLIANCE", "Days": 1})

    def test_compliance_version_cannot_be_deleted_or_shortened(self):
        put = self.put("anchors/a.json", "--object-lock-mode", "COMPLIANCE",
                       "--object-lock-retain-until-date", FAR)
        vid = put["VersionId"]
        head = self.s3("head-object", "--bucket", "lock-bucket", "--key", "anchors/a.json")
        self.assertEqual((head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]),
                         ("COMPLIANCE", "2030-01-01T00:00:00+00:00"))
        r = self.fa.signed("s3", "HEAD", path="/lock-bucket/anchors/a.json")
        self.assertEqual(r.headers["x-amz-object-lock-retain-until-date"],
                         "2030-01-01T00:00:00.000Z")
        self.assertEqual(self.s3("get-object-retention", "--bucket", "lock-bucket", "--key",
                                 "anchors/a.json")["Retention"],
                         {"Mode": "COMPLIANCE", "RetainUntilDate": "2030-01-01T00:00:00+00:00"})
        err = self.s3_error("AccessDenied", "delete-object", "--bucket", "lock-bucket", "--key",
                            "anchors/a.json", "--version-id", vid)
        self.assertEqual(err.message, "Access Denied because object protected by object lock.")
        # Not even the bypass header moves COMPLIANCE.
        self.s3_error("AccessDenied", "delete-object", "--bucket", "lock-bucket", "--key",
                      "anchors/a.json", "--version-id", vid, "--bypass-governance-retention")
        for retention in ("Mode=COMPLIANCE,RetainUntilDate=2029-06-01T00:00:00Z",
                          "Mode=GOVERNANCE,RetainUntilDate=2031-01-01T00:00:00Z"):
            self.s3_error("AccessDenied", "put-object-retention", "--bucket", "lock-bucket",
                          "--key", "anchors/a.json", "--retention", retention,
                          "--bypass-governance-retention")
        self.s3("put-object-retention", "--bucket", "lock-bucket", "--key", "anchors/a.json",
                "--version-id", vid, "--retention",
                "Mode=COMPLIANCE,RetainUntilDate=2031-01-01T00:00:00Z")
        self.assertEqual(self.version_state(vid)["retain_until_iso"], "2031-01-01T00:00:00.000Z")
        out = self.s3("delete-objects", "--bucket", "lock-bucket", "--delete", json.dumps(
            {"Objects": [{"Key": "anchors/a.json", "VersionId": vid}]}))
        self.assertEqual([(e["Code"], e["VersionId"]) for e in out["Errors"]],
                         [("AccessDenied", vid)])
        self.assertNotIn("Deleted", out)
        self.assertEqual(self.version_state(vid)["lock_mode"], "COMPLIANCE")

    def test_overwrite_and_plain_delete_leave_the_locked_version(self):
        first = self.put("anchors/b.json", "--object-lock-mode", "COMPLIANCE",
                         "--object-lock-retain-until-date", FAR)["VersionId"]
        marker = self.s3("delete-object", "--bucket", "lock-bucket", "--key", "anchors/b.json")
        self.assertTrue(marker["DeleteMarker"])
        self.s3_error("NoSuchKey", "get-object", "--bucket", "lock-bucket", "--key",
                      "anchors/b.json", os.devnull)
        second = self.s3("put-object", "--bucket", "lock-bucket", "--key", "anchors/b.json",
                         "--body", self.tmpfile(b"rewritten"))["VersionId"]
        out = self.tmpfile(b"")
        got = self.s3("get-object", "--bucket", "lock-bucket", "--key", "anchors/b.json",
                      "--version-id", first, out)
        self.assertEqual(got["ObjectLockMode"], "COMPLIANCE")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b'{"file":"audit.log","seq":7}')
        listed = self.s3("list-object-versions", "--bucket", "lock-bucket", "--prefix",
                         "anchors/")
        self.assertEqual([(v["VersionId"], v["IsLatest"]) for v in listed["Versions"]],
                         [(second, True), (first, False)])
        self.assertEqual([m["VersionId"] for m in listed["DeleteMarkers"]],
                         [marker["VersionId"]])
        # The marker and the unlocked version go; the locked one stays.
        self.s3("delete-object", "--bucket", "lock-bucket", "--key", "anchors/b.json",
                "--version-id", marker["VersionId"])
        self.s3("delete-object", "--bucket", "lock-bucket", "--key", "anchors/b.json",
                "--version-id", second)
        self.assertEqual([o["version_id"] for o in self.bucket_state("lock-bucket")["objects"]],
                         [first])
        self.s3_error("BucketNotEmpty", "delete-bucket", "--bucket", "lock-bucket")

    def test_governance_gives_way_to_the_bypass(self):
        vid = self.put("anchors/g.json", "--object-lock-mode", "GOVERNANCE",
                       "--object-lock-retain-until-date", FAR)["VersionId"]
        self.s3_error("AccessDenied", "delete-object", "--bucket", "lock-bucket", "--key",
                      "anchors/g.json", "--version-id", vid)
        self.s3_error("AccessDenied", "put-object-retention", "--bucket", "lock-bucket",
                      "--key", "anchors/g.json", "--retention",
                      "Mode=GOVERNANCE,RetainUntilDate=2029-01-01T00:00:00Z")
        self.s3("put-object-retention", "--bucket", "lock-bucket", "--key", "anchors/g.json",
                "--retention", "Mode=GOVERNANCE,RetainUntilDate=2029-01-01T00:00:00Z",
                "--bypass-governance-retention")
        self.assertEqual(self.version_state(vid)["retain_until_iso"], "2029-01-01T00:00:00.000Z")
        # An IAM user needs s3:BypassGovernanceRetention as well as the header.
        actions = ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention"]
        plain = self.make_user(actions, "arn:aws:s3:::lock-bucket/*", name="plain")
        self.s3_error("AccessDenied", "delete-object", "--bucket", "lock-bucket", "--key",
                      "anchors/g.json", "--version-id", vid, "--bypass-governance-retention",
                      creds=plain)
        admin = self.make_user(actions + ["s3:BypassGovernanceRetention"],
                               "arn:aws:s3:::lock-bucket/*", name="admin")
        self.s3("delete-object", "--bucket", "lock-bucket", "--key", "anchors/g.json",
                "--version-id", vid, "--bypass-governance-retention", creds=admin)
        self.assertEqual(self.bucket_state("lock-bucket")["objects"], [])

    def test_legal_hold_and_expired_retention(self):
        vid = self.put("anchors/h.json", "--object-lock-legal-hold-status", "ON")["VersionId"]
        self.assertEqual(self.s3("get-object-legal-hold", "--bucket", "lock-bucket", "--key",
                                 "anchors/h.json")["LegalHold"], {"Status": "ON"})
        self.s3_error("AccessDenied", "delete-object", "--bucket", "lock-bucket", "--key",
                      "anchors/h.json", "--version-id", vid, "--bypass-governance-retention")
        self.s3_error("NoSuchObjectLockConfiguration", "get-object-retention", "--bucket",
                      "lock-bucket", "--key", "anchors/h.json")
        self.s3("put-object-legal-hold", "--bucket", "lock-bucket", "--key", "anchors/h.json",
                "--legal-hold", "Status=OFF")
        self.s3("delete-object", "--bucket", "lock-bucket", "--key", "anchors/h.json",
                "--version-id", vid)
        # A retention ends when its date passes: then the version may go. (Signed requests:
        # awscli takes about a second a call, which could outlast the retention.)
        until = int(time.time()) + 3
        r = self.fa.signed("s3", "PUT", path="/lock-bucket/anchors/s.json", body=b"s", headers={
            "Content-MD5": _md5(b"s"), "x-amz-object-lock-mode": "COMPLIANCE",
            "x-amz-object-lock-retain-until-date": _iso(until)})
        self.assertEqual(r.status, 200)
        vid = r.headers["x-amz-version-id"]
        target = "/lock-bucket/anchors/s.json"
        r = self.fa.signed("s3", "DELETE", path=target, query="versionId=" + vid)
        self.assertEqual((r.status, r.xml_code()), (403, "AccessDenied"))
        time.sleep(max(0.0, until - time.time()) + 0.2)
        r = self.fa.signed("s3", "DELETE", path=target, query="versionId=" + vid)
        self.assertEqual(r.status, 204)
        self.assertEqual(self.bucket_state("lock-bucket")["objects"], [])

    def test_put_object_lock_parameters_checked(self):
        body = b"anchor"
        lock = {"x-amz-object-lock-mode": "COMPLIANCE",
                "x-amz-object-lock-retain-until-date": FAR}
        r = self.fa.signed("s3", "PUT", path="/lock-bucket/k", body=body, headers=lock)
        self.assertEqual((r.status, r.xml_code()), (400, "InvalidRequest"))
        self.assertIn(b"Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object "
                      b"requests with Object Lock parameters", r.body)
        cases = (({"x-amz-object-lock-mode": "COMPLIANCE"}, "InvalidArgument"),
                 ({"x-amz-object-lock-mode": "FOREVER",
                   "x-amz-object-lock-retain-until-date": FAR}, "InvalidArgument"),
                 ({"x-amz-object-lock-mode": "COMPLIANCE",
                   "x-amz-object-lock-retain-until-date": "2001-01-01T00:00:00Z"},
                  "InvalidArgument"),
                 ({"x-amz-object-lock-legal-hold": "MAYBE"}, "InvalidArgument"))
        for headers, code in cases:
            r = self.fa.signed("s3", "PUT", path="/lock-bucket/k", body=body,
                               headers=dict(headers, **{"Content-MD5": _md5(body)}))
            self.assertEqual((r.status, r.xml_code()), (400, code), headers)
        self.assertEqual(self.bucket_state("lock-bucket")["objects"], [])
        r = self.fa.signed("s3", "PUT", path="/lock-bucket/k", body=body,
                           headers=dict(lock, **{"Content-MD5": _md5(body)}))
        self.assertEqual(r.status, 200)
        r = self.fa.signed("s3", "PUT", path="/lock-bucket/k", body=body, headers=dict(
            lock, **{"x-amz-checksum-sha256": base64.b64encode(
                hashlib.sha256(body).digest()).decode()}))
        self.assertEqual(r.status, 200)
        self.assertEqual([o["lock_mode"] for o in self.bucket_state("lock-bucket")["objects"]],
                         ["COMPLIANCE", "COMPLIANCE"])

    def test_reading_lock_headers_needs_permission(self):
        self.put("anchors/r.json", "--object-lock-mode", "GOVERNANCE",
                 "--object-lock-retain-until-date", FAR, "--object-lock-legal-hold-status",
                 "ON")
        reader = self.make_user(["s3:GetObject"], "arn:aws:s3:::lock-bucket/*", name="reader")
        head = self.s3("head-object", "--bucket", "lock-bucket", "--key", "anchors/r.json",
                       creds=reader)
        self.assertNotIn("ObjectLockMode", head)
        self.assertNotIn("ObjectLockLegalHoldStatus", head)
        auditor = self.make_user(["s3:GetObject", "s3:GetObjectRetention",
                                  "s3:GetObjectLegalHold"], "arn:aws:s3:::lock-bucket/*",
                                 name="auditor")
        head = self.s3("head-object", "--bucket", "lock-bucket", "--key", "anchors/r.json",
                       creds=auditor)
        self.assertEqual((head["ObjectLockMode"], head["ObjectLockLegalHoldStatus"]),
                         ("GOVERNANCE", "ON"))
        # Putting lock headers needs s3:PutObjectRetention / s3:PutObjectLegalHold.
        writer = self.make_user(["s3:PutObject"], "arn:aws:s3:::lock-bucket/*")
        self.s3_error("AccessDenied", "put-object", "--bucket", "lock-bucket", "--key", "w",
                      "--body", self.body, "--object-lock-mode", "GOVERNANCE",
                      "--object-lock-retain-until-date", FAR, creds=writer)
        self.s3("put-object", "--bucket", "lock-bucket", "--key", "w", "--body", self.body,
                creds=writer)


class PolicyTests(S3TestCase):
    """IAM users: their identity policies and the bucket's policy decide what they may do."""

    def test_bucket_policy_denies_insecure_transport(self):
        self.s3("create-bucket", "--bucket", "polbucket")
        self.s3("put-bucket-policy", "--bucket", "polbucket", "--policy",
                json.dumps(DENY_INSECURE))
        creds = self.make_user("s3:PutObject", "arn:aws:s3:::polbucket/*")
        path = self.tmpfile(b"secret")
        # fakeaws on loopback stands in for HTTPS by default: the Deny does not apply.
        self.s3("put-object", "--bucket", "polbucket", "--key", "a", "--body", path,
                creds=creds)
        self.fa.control("POST", "/_fakeaws/config", {"plain_http_is_secure": False})
        self.s3_error("AccessDenied", "put-object", "--bucket", "polbucket", "--key", "b",
                      "--body", path, creds=creds)
        self.assertEqual([o["key"] for o in self.bucket_state("polbucket")["objects"]], ["a"])

    def test_user_policy_allows_own_bucket_only(self):
        self.s3("create-bucket", "--bucket", "own-bucket")
        self.s3("create-bucket", "--bucket", "other-bucket")
        creds = self.make_user(["s3:PutObject", "s3:GetObject"], "arn:aws:s3:::own-bucket/*")
        path = self.tmpfile(b"user data")
        out = self.s3("put-object", "--bucket", "own-bucket", "--key", "k", "--body", path,
                      creds=creds)
        self.assertEqual(out["ETag"], '"%s"' % hashlib.md5(b"user data").hexdigest())
        self.s3_error("AccessDenied", "put-object", "--bucket", "other-bucket", "--key", "k",
                      "--body", path, creds=creds)
        got = self.s3("get-object", "--bucket", "own-bucket", "--key", "k", os.devnull,
                      creds=creds)
        self.assertEqual(got["ContentLength"], len(b"user data"))
        # Without s3:ListBucket, a missing key is AccessDenied rather than NoSuchKey.
        self.s3_error("AccessDenied", "get-object", "--bucket", "own-bucket", "--key", "nope",
                      os.devnull, creds=creds)
        self.assertEqual([o["key"] for o in self.bucket_state("own-bucket")["objects"]], ["k"])
        self.assertEqual(self.bucket_state("other-bucket")["objects"], [])


if __name__ == "__main__":
    unittest.main()
