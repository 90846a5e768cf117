"""S3 through awscli's s3api: buckets, their configuration sub-resources, objects, listings,
addressing styles and the errors real S3 answers."""

import base64
import hashlib
import json
import os
import tempfile
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


class PolicyTests(S3TestCase):
    """IAM users: their identity policies and the bucket's policy decide what they may do."""

    def make_user(self, actions, resource):
        self.fa.aws("iam", "create-user", "--user-name", "writer")
        key = self.fa.aws("iam", "create-access-key", "--user-name", "writer")["AccessKey"]
        self.fa.aws("iam", "put-user-policy", "--user-name", "writer", "--policy-name", "s3",
                    "--policy-document", json.dumps({
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": actions,
                                       "Resource": resource}]}))
        return key["AccessKeyId"], key["SecretAccessKey"]

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
