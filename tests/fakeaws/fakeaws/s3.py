"""Amazon S3 (REST-XML): buckets, their configuration sub-resources and plain objects.

Addressing: path style (http://127.0.0.1:port/bucket/key) and virtual-hosted style (Host
"bucket.localhost:port", "bucket.s3.localhost", "bucket.s3.us-east-1.amazonaws.com",
"bucket.127.0.0.1:port"). The key is the percent-decoded path; S3 never normalizes it.

Implemented operations (see OPERATIONS): buckets (Create/Head/Delete/List, GetBucketLocation),
the public access block, default encryption, ownership controls, bucket policy, bucket tagging
and versioning sub-resources, objects (Put/Get/Head/Delete/DeleteObjects, with versioning
semantics) and listings (ListObjects, ListObjectsV2, ListObjectVersions). Every other S3
operation that a request names (a known sub-resource such as ?acl or ?lifecycle, multipart
uploads, CopyObject...) answers 501 NotImplemented naming the operation, never a half-working
imitation.

Behaviour that follows current S3 rather than legacy S3, deliberately:
  * a new bucket has SSE-S3 (AES256) default encryption, BucketOwnerEnforced object ownership
    and all four Block Public Access settings on (S3's defaults since January/April 2023);
  * DeleteBucketEncryption resets the default encryption to SSE-S3 (it cannot be removed);
  * CreateBucket on a bucket you already own answers 409 BucketAlreadyOwnedByYou in every
    region (legacy us-east-1 answered 200 to a re-create; S3 now documents the 409 everywhere);
  * GetObject/HeadObject of a missing key answer 403 AccessDenied instead of 404 NoSuchKey when
    the caller is not allowed s3:ListBucket on the bucket, as S3 does.
"""

import base64
import binascii
import email.utils
import fnmatch
import hashlib
import json
import re
import secrets
import time
import xml.etree.ElementTree as ET
import zlib
from urllib.parse import quote

from .core import AwsError, Authz, Response, rfc1123, xml_escape

SERVICE = "s3"
PROTOCOL = "rest-xml"
XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"

OPERATIONS = {
    "ListBuckets", "CreateBucket", "HeadBucket", "DeleteBucket", "GetBucketLocation",
    "PutPublicAccessBlock", "GetPublicAccessBlock", "DeletePublicAccessBlock",
    "PutBucketEncryption", "GetBucketEncryption", "DeleteBucketEncryption",
    "PutBucketOwnershipControls", "GetBucketOwnershipControls", "DeleteBucketOwnershipControls",
    "PutBucketPolicy", "GetBucketPolicy", "DeleteBucketPolicy",
    "PutBucketTagging", "GetBucketTagging", "DeleteBucketTagging",
    "PutBucketVersioning", "GetBucketVersioning",
    "ListObjects", "ListObjectsV2", "ListObjectVersions",
    "PutObject", "GetObject", "HeadObject", "DeleteObject", "DeleteObjects",
}

# (method, sub-resource) -> operation, for the bucket sub-resources implemented here.
_BUCKET_OPS = {
    ("GET", "location"): "GetBucketLocation",
    ("PUT", "publicAccessBlock"): "PutPublicAccessBlock",
    ("GET", "publicAccessBlock"): "GetPublicAccessBlock",
    ("DELETE", "publicAccessBlock"): "DeletePublicAccessBlock",
    ("PUT", "encryption"): "PutBucketEncryption",
    ("GET", "encryption"): "GetBucketEncryption",
    ("DELETE", "encryption"): "DeleteBucketEncryption",
    ("PUT", "ownershipControls"): "PutBucketOwnershipControls",
    ("GET", "ownershipControls"): "GetBucketOwnershipControls",
    ("DELETE", "ownershipControls"): "DeleteBucketOwnershipControls",
    ("PUT", "policy"): "PutBucketPolicy",
    ("GET", "policy"): "GetBucketPolicy",
    ("DELETE", "policy"): "DeleteBucketPolicy",
    ("PUT", "tagging"): "PutBucketTagging",
    ("GET", "tagging"): "GetBucketTagging",
    ("DELETE", "tagging"): "DeleteBucketTagging",
    ("PUT", "versioning"): "PutBucketVersioning",
    ("GET", "versioning"): "GetBucketVersioning",
    ("GET", "versions"): "ListObjectVersions",
    ("POST", "delete"): "DeleteObjects",
}

# Every other bucket sub-resource of the S3 API (from the service model), by method: these name
# an S3 operation fakeaws does not implement.
_BUCKET_UNIMPLEMENTED = {
    "abac": {"GET": "GetBucketAbac", "PUT": "PutBucketAbac"},
    "accelerate": {"GET": "GetBucketAccelerateConfiguration",
                   "PUT": "PutBucketAccelerateConfiguration"},
    "acl": {"GET": "GetBucketAcl", "PUT": "PutBucketAcl"},
    "analytics": {"GET": "GetBucketAnalyticsConfiguration",
                  "PUT": "PutBucketAnalyticsConfiguration",
                  "DELETE": "DeleteBucketAnalyticsConfiguration"},
    "cors": {"GET": "GetBucketCors", "PUT": "PutBucketCors", "DELETE": "DeleteBucketCors"},
    "intelligent-tiering": {"GET": "GetBucketIntelligentTieringConfiguration",
                            "PUT": "PutBucketIntelligentTieringConfiguration",
                            "DELETE": "DeleteBucketIntelligentTieringConfiguration"},
    "inventory": {"GET": "GetBucketInventoryConfiguration",
                  "PUT": "PutBucketInventoryConfiguration",
                  "DELETE": "DeleteBucketInventoryConfiguration"},
    "lifecycle": {"GET": "GetBucketLifecycleConfiguration",
                  "PUT": "PutBucketLifecycleConfiguration", "DELETE": "DeleteBucketLifecycle"},
    "logging": {"GET": "GetBucketLogging", "PUT": "PutBucketLogging"},
    "metadataConfiguration": {"GET": "GetBucketMetadataConfiguration",
                              "POST": "CreateBucketMetadataConfiguration",
                              "DELETE": "DeleteBucketMetadataConfiguration"},
    "metadataTable": {"GET": "GetBucketMetadataTableConfiguration",
                      "POST": "CreateBucketMetadataTableConfiguration",
                      "DELETE": "DeleteBucketMetadataTableConfiguration"},
    "metadataAnnotationTable": {"PUT": "UpdateBucketMetadataAnnotationTableConfiguration"},
    "metadataInventoryTable": {"PUT": "UpdateBucketMetadataInventoryTableConfiguration"},
    "metadataJournalTable": {"PUT": "UpdateBucketMetadataJournalTableConfiguration"},
    "metrics": {"GET": "GetBucketMetricsConfiguration", "PUT": "PutBucketMetricsConfiguration",
                "DELETE": "DeleteBucketMetricsConfiguration"},
    "notification": {"GET": "GetBucketNotificationConfiguration",
                     "PUT": "PutBucketNotificationConfiguration"},
    "object-lock": {"GET": "GetObjectLockConfiguration", "PUT": "PutObjectLockConfiguration"},
    "policyStatus": {"GET": "GetBucketPolicyStatus"},
    "replication": {"GET": "GetBucketReplication", "PUT": "PutBucketReplication",
                    "DELETE": "DeleteBucketReplication"},
    "requestPayment": {"GET": "GetBucketRequestPayment", "PUT": "PutBucketRequestPayment"},
    "session": {"GET": "CreateSession"},
    "uploads": {"GET": "ListMultipartUploads"},
    "website": {"GET": "GetBucketWebsite", "PUT": "PutBucketWebsite",
                "DELETE": "DeleteBucketWebsite"},
}
_BUCKET_SUBRESOURCES = {sub for _, sub in _BUCKET_OPS} | set(_BUCKET_UNIMPLEMENTED)

# Object sub-resources (none implemented).
_OBJECT_UNIMPLEMENTED = {
    "acl": {"GET": "GetObjectAcl", "PUT": "PutObjectAcl"},
    "annotation": {"GET": "GetObjectAnnotation", "PUT": "PutObjectAnnotation",
                   "DELETE": "DeleteObjectAnnotation"},
    "attributes": {"GET": "GetObjectAttributes"},
    "encryption": {"PUT": "UpdateObjectEncryption"},
    "legal-hold": {"GET": "GetObjectLegalHold", "PUT": "PutObjectLegalHold"},
    "renameObject": {"PUT": "RenameObject"},
    "restore": {"POST": "RestoreObject"},
    "retention": {"GET": "GetObjectRetention", "PUT": "PutObjectRetention"},
    "select": {"POST": "SelectObjectContent"},
    "tagging": {"GET": "GetObjectTagging", "PUT": "PutObjectTagging",
                "DELETE": "DeleteObjectTagging"},
    "torrent": {"GET": "GetObjectTorrent"},
    "uploads": {"POST": "CreateMultipartUpload"},
    "uploadId": {"PUT": "UploadPart", "POST": "CompleteMultipartUpload", "GET": "ListParts",
                 "DELETE": "AbortMultipartUpload"},
}

# Operations whose model says requestChecksumRequired: S3 refuses them without Content-MD5 (or,
# since flexible checksums, an x-amz-checksum-* header).
_CHECKSUM_REQUIRED = {"PutPublicAccessBlock", "PutBucketEncryption", "PutBucketOwnershipControls",
                      "PutBucketPolicy", "PutBucketTagging", "PutBucketVersioning",
                      "DeleteObjects"}

# What each operation needs in IAM terms (resource kind: "bucket", "object" or "*").
_ACTIONS = {
    "ListBuckets": ("s3:ListAllMyBuckets", "*"),
    "CreateBucket": ("s3:CreateBucket", "bucket"),
    "HeadBucket": ("s3:ListBucket", "bucket"),
    "DeleteBucket": ("s3:DeleteBucket", "bucket"),
    "GetBucketLocation": ("s3:GetBucketLocation", "bucket"),
    "PutPublicAccessBlock": ("s3:PutBucketPublicAccessBlock", "bucket"),
    "GetPublicAccessBlock": ("s3:GetBucketPublicAccessBlock", "bucket"),
    "DeletePublicAccessBlock": ("s3:PutBucketPublicAccessBlock", "bucket"),
    "PutBucketEncryption": ("s3:PutEncryptionConfiguration", "bucket"),
    "GetBucketEncryption": ("s3:GetEncryptionConfiguration", "bucket"),
    "DeleteBucketEncryption": ("s3:PutEncryptionConfiguration", "bucket"),
    "PutBucketOwnershipControls": ("s3:PutBucketOwnershipControls", "bucket"),
    "GetBucketOwnershipControls": ("s3:GetBucketOwnershipControls", "bucket"),
    "DeleteBucketOwnershipControls": ("s3:PutBucketOwnershipControls", "bucket"),
    "PutBucketPolicy": ("s3:PutBucketPolicy", "bucket"),
    "GetBucketPolicy": ("s3:GetBucketPolicy", "bucket"),
    "DeleteBucketPolicy": ("s3:DeleteBucketPolicy", "bucket"),
    "PutBucketTagging": ("s3:PutBucketTagging", "bucket"),
    "GetBucketTagging": ("s3:GetBucketTagging", "bucket"),
    "DeleteBucketTagging": ("s3:PutBucketTagging", "bucket"),
    "PutBucketVersioning": ("s3:PutBucketVersioning", "bucket"),
    "GetBucketVersioning": ("s3:GetBucketVersioning", "bucket"),
    "ListObjects": ("s3:ListBucket", "bucket"),
    "ListObjectsV2": ("s3:ListBucket", "bucket"),
    "ListObjectVersions": ("s3:ListBucketVersions", "bucket"),
    "PutObject": ("s3:PutObject", "object"),
    "GetObject": ("s3:GetObject", "object"),
    "HeadObject": ("s3:GetObject", "object"),
    "DeleteObject": ("s3:DeleteObject", "object"),
    # Checked key by key in the handler: a denied key is an <Error> in the result.
    "DeleteObjects": (None, "bucket"),
}

_LOCATION_CONSTRAINTS = {
    "af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
    "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ca-central-1",
    "ca-west-1", "cn-north-1", "cn-northwest-1", "EU", "eu-central-1", "eu-central-2",
    "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3",
    "il-central-1", "me-central-1", "me-south-1", "mx-central-1", "sa-east-1", "us-east-1",
    "us-east-2", "us-gov-east-1", "us-gov-west-1", "us-west-1", "us-west-2",
}
_OBJECT_OWNERSHIP = ("BucketOwnerPreferred", "ObjectWriter", "BucketOwnerEnforced")
_SSE_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")
_STORAGE_CLASSES = {"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA",
                    "INTELLIGENT_TIERING", "GLACIER", "DEEP_ARCHIVE", "OUTPOSTS", "GLACIER_IR",
                    "SNOW", "EXPRESS_ONEZONE"}
_CANNED_BUCKET_ACLS = ("private", "public-read", "public-read-write", "authenticated-read")
_CANNED_OBJECT_ACLS = ("private", "public-read", "public-read-write", "authenticated-read",
                       "aws-exec-read", "bucket-owner-read", "bucket-owner-full-control")
_GRANT_HEADERS = ("x-amz-grant-full-control", "x-amz-grant-read", "x-amz-grant-read-acp",
                  "x-amz-grant-write", "x-amz-grant-write-acp")
# Stored with the object and returned by GetObject/HeadObject.
_OBJECT_HEADERS = ("Cache-Control", "Content-Disposition", "Content-Encoding",
                   "Content-Language", "Expires", "x-amz-website-redirect-location")
_MAX_POLICY_SIZE = 20 * 1024
_MAX_KEY_BYTES = 1024
_MAX_METADATA_BYTES = 2048

_S3_ENDPOINT_LABEL = re.compile(
    r"^s3(-(external-\d|website|fips|accelerate|dualstack|accesspoint|control|object-lambda"
    r"|[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d+))*$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TAG_CHARS = re.compile(r"^[\w\s+\-=._:/@]*$", re.UNICODE)
_CONDITION_OPS = {
    "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
    "StringLike", "StringNotLike", "NumericEquals", "NumericNotEquals", "NumericLessThan",
    "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals", "DateEquals",
    "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan",
    "DateGreaterThanEquals", "Bool", "BinaryEquals", "IpAddress", "NotIpAddress", "ArnEquals",
    "ArnLike", "ArnNotEquals", "ArnNotLike", "Null",
}
# Condition keys that, given a fixed value, make an Allow for Principal "*" non-public (S3's
# "what is public" rules for Block Public Access).
_NON_PUBLIC_KEYS = {
    "aws:sourcearn", "aws:sourcevpc", "aws:sourcevpce", "aws:sourceaccount", "aws:sourceowner",
    "aws:principalaccount", "aws:principalarn", "aws:principalorgid", "aws:principalorgpaths",
    "aws:sourceorgid", "aws:sourceorgpaths", "aws:userid", "aws:sourceip",
    "s3:dataaccesspointarn", "s3:dataaccesspointaccount",
}


# -- state ------------------------------------------------------------------------------------

class S3State:
    def __init__(self):
        self.buckets = {}  # name -> Bucket


class Bucket:
    def __init__(self, name, region, location_constraint, created):
        self.name = name
        self.region = region
        self.location_constraint = location_constraint  # None in us-east-1
        self.created = created
        self.tags = None  # list of (key, value), or None: no tag set
        # S3's defaults for every new bucket (since April 2023).
        self.public_access_block = {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                                    "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
        self.encryption = {"SSEAlgorithm": "AES256", "KMSMasterKeyID": None,
                           "BucketKeyEnabled": False}
        self.ownership = "BucketOwnerEnforced"  # None after DeleteBucketOwnershipControls
        self.policy = None  # the policy text as sent
        self.versioning = None  # None (never enabled), "Enabled" or "Suspended"
        self.mfa_delete = None
        self.objects = {}  # key -> [ObjectVersion], oldest first; the last one is current

    def current(self, key):
        versions = self.objects.get(key)
        if not versions:
            return None
        return versions[-1]

    def live_keys(self):
        return [k for k, vs in self.objects.items() if vs and not vs[-1].delete_marker]

    def is_empty(self):
        return not any(self.objects.values())


class ObjectVersion:
    def __init__(self, key, version_id, created, delete_marker=False):
        self.key = key
        self.version_id = version_id  # "null" for an object written while versioning was off
        self.last_modified = created
        self.delete_marker = delete_marker
        self.body = b""
        self.etag = '"d41d8cd98f00b204e9800998ecf8427e"'
        self.content_type = "binary/octet-stream"
        self.metadata = {}  # lower-case name without x-amz-meta- -> value
        self.headers = {}
        self.sse = None
        self.kms_key_id = None
        self.bucket_key_enabled = False
        self.storage_class = "STANDARD"
        self.tag_count = 0

    @property
    def size(self):
        return len(self.body)


def new_state(store):
    return S3State()


def _state(store):
    return store.services[SERVICE]


# -- addressing -------------------------------------------------------------------------------

def _host_bucket(host):
    """The bucket a virtual-hosted-style Host header names, or None for a path-style endpoint
    ("127.0.0.1:1234", "localhost:4566", "s3.us-east-1.amazonaws.com", "[::1]:80")."""
    h = (host or "").strip().lower()
    if not h or h.startswith("["):
        return None
    if ":" in h:
        h = h.rsplit(":", 1)[0]
    h = h.rstrip(".")
    labels = h.split(".")
    if len(labels) >= 4 and _IPV4.match(".".join(labels[-4:])):
        bucket_labels = labels[:-4]
    else:
        idx = None
        for i, label in enumerate(labels):
            if label == "localhost" or _S3_ENDPOINT_LABEL.match(label):
                idx = i
                break
        if idx is None:
            return None
        bucket_labels = labels[:idx]
    return ".".join(bucket_labels) or None


def _target(req):
    """(bucket, key): bucket None for the service endpoint, key None for a bucket request."""
    cached = getattr(req, "_s3_target", None)
    if cached is not None:
        return cached
    path = req.path or "/"
    if not path.startswith("/"):
        path = "/" + path
    bucket = _host_bucket(req.host)
    if bucket is not None:
        key = path[1:]
    else:
        rest = path[1:]
        if not rest:
            bucket, key = None, None
        else:
            bucket, sep, key = rest.partition("/")
            if not sep:
                key = ""
    result = (bucket, key if key else None)
    req._s3_target = result
    return result


def resource_name(req, op):
    bucket, key = _target(req)
    if bucket is None:
        return None
    return f"{bucket}/{key}" if key is not None else bucket


# -- operation routing ------------------------------------------------------------------------

def _not_implemented(name, method, detail):
    return AwsError("NotImplemented",
                    f"fakeaws does not implement the S3 operation {name} ({method} {detail})",
                    status=501)


def _unimplemented(req, name, method, detail):
    """An S3 operation fakeaws does not implement: its name goes into the call log and, after
    the signature check (as S3 checks it first), handle() answers 501 NotImplemented."""
    req._s3_unimplemented = _not_implemented(name, method, detail)
    return name


def _method_not_allowed(req, resource_type):
    return AwsError("MethodNotAllowed", "The specified method is not allowed against this "
                    "resource.", status=405,
                    extra={"Method": req.method, "ResourceType": resource_type})


def operation(req):
    bucket, key = _target(req)
    method = req.method
    names = [k for k, _ in req.query]
    if bucket is None:
        if method == "GET":
            return "ListBuckets"
        raise _method_not_allowed(req, "SERVICE")
    if key is None:
        subs = [n for n in names if n in _BUCKET_SUBRESOURCES]
        if not subs:
            if method == "GET":
                list_type = req.params.get("list-type")
                if list_type is None:
                    return "ListObjects"
                if list_type == "2":
                    return "ListObjectsV2"
                raise AwsError("InvalidArgument", "Invalid List Type specified in Request",
                               extra={"ArgumentName": "list-type",
                                      "ArgumentValue": list_type})
            if method == "PUT":
                return "CreateBucket"
            if method == "HEAD":
                return "HeadBucket"
            if method == "DELETE":
                return "DeleteBucket"
            if method == "POST":
                return _unimplemented(req, "PostObject", "POST", "/bucket (browser form upload)")
            raise _method_not_allowed(req, "BUCKET")
        sub = subs[0]
        op = _BUCKET_OPS.get((method, sub))
        if op is not None:
            return op
        name = _BUCKET_UNIMPLEMENTED.get(sub, {}).get(method)
        if name is not None:
            return _unimplemented(req, name, method, f"?{sub}")
        raise _method_not_allowed(req, "BUCKET")
    subs = [n for n in names if n in _OBJECT_UNIMPLEMENTED]
    if subs:
        sub = subs[0]
        name = _OBJECT_UNIMPLEMENTED[sub].get(method)
        if name is not None:
            return _unimplemented(req, name, method, f"?{sub}")
        raise _method_not_allowed(req, "OBJECT")
    if "partNumber" in names and method in ("GET", "HEAD"):
        return _unimplemented(req, "GetObject" if method == "GET" else "HeadObject", method,
                               "?partNumber")
    if method == "PUT":
        if req.header("x-amz-copy-source") is not None:
            return _unimplemented(req, "CopyObject", "PUT", "with x-amz-copy-source")
        return "PutObject"
    if method == "GET":
        return "GetObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "DELETE":
        return "DeleteObject"
    raise _method_not_allowed(req, "OBJECT")


# -- authorization ----------------------------------------------------------------------------

def _bucket_arn(bucket):
    return f"arn:aws:s3:::{bucket}"


def authorize(store, req, op):
    if getattr(req, "_s3_unimplemented", None) is not None:
        return []  # answered NotImplemented whatever the caller may do
    action, kind = _ACTIONS[op]
    if action is None:
        return []
    bucket, key = _target(req)
    if kind == "*":
        resource = "*"
    elif kind == "bucket":
        resource = _bucket_arn(bucket)
    else:
        resource = f"{_bucket_arn(bucket)}/{key}"
    ctx = {"s3:authType": "REST-QUERY-STRING" if "X-Amz-Signature" in req.params
           else "REST-HEADER", "s3:signatureversion": "AWS4-HMAC-SHA256"}
    version_id = req.params.get("versionId")
    if op in ("ListObjects", "ListObjectsV2", "ListObjectVersions"):
        for param in ("prefix", "delimiter", "max-keys"):
            if param in req.params:
                ctx["s3:" + param] = req.params[param]
    if op in ("GetObject", "HeadObject") and version_id is not None:
        action = "s3:GetObjectVersion"
        ctx["s3:versionid"] = version_id
    if op == "DeleteObject" and version_id is not None:
        action = "s3:DeleteObjectVersion"
        ctx["s3:versionid"] = version_id
    if op == "PutObject":
        for header in ("x-amz-server-side-encryption",
                       "x-amz-server-side-encryption-aws-kms-key-id", "x-amz-acl",
                       "x-amz-storage-class"):
            if req.header(header) is not None:
                ctx["s3:" + header] = req.header(header)
    if op == "CreateBucket":
        lc = _location_constraint_of(req.body)
        if lc:
            ctx["s3:LocationConstraint"] = lc
        if req.header("x-amz-object-ownership") is not None:
            ctx["s3:x-amz-object-ownership"] = req.header("x-amz-object-ownership")
    needs = [Authz(action, resource, ctx)]
    if op == "CreateBucket":
        # Setting ownership or an ACL at creation needs those permissions too.
        if req.header("x-amz-object-ownership") is not None:
            needs.append(Authz("s3:PutBucketOwnershipControls", resource, ctx))
        if req.header("x-amz-acl") is not None or any(req.header(h) for h in _GRANT_HEADERS):
            needs.append(Authz("s3:PutBucketAcl", resource, ctx))
    if op == "PutObject":
        if req.header("x-amz-tagging") is not None:
            needs.append(Authz("s3:PutObjectTagging", resource, ctx))
        if req.header("x-amz-acl") is not None or any(req.header(h) for h in _GRANT_HEADERS):
            needs.append(Authz("s3:PutObjectAcl", resource, ctx))
    return needs


def bucket_policy(store, bucket_name):
    """The parsed policy of one of this account's buckets, or None (for IAM/policy.py)."""
    bucket = _state(store).buckets.get(bucket_name)
    if bucket is None or bucket.policy is None:
        return None
    try:
        return json.loads(bucket.policy)
    except ValueError:
        return None


# -- XML helpers ------------------------------------------------------------------------------

def _malformed_xml():
    return AwsError("MalformedXML", "The XML you provided was not well-formed or did not "
                    "validate against our published schema", status=400)


def _local(tag):
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _parse_xml(body, root_name):
    if not body or not body.strip():
        raise _malformed_xml()
    try:
        root = ET.fromstring(body)
    except (ET.ParseError, ValueError):
        raise _malformed_xml()
    if _local(root.tag) != root_name:
        raise _malformed_xml()
    return root


def _children(elem, allowed):
    """[(local name, element)] of elem's children; any name outside `allowed` is MalformedXML."""
    out = []
    for child in elem:
        name = _local(child.tag)
        if name not in allowed:
            raise _malformed_xml()
        out.append((name, child))
    return out


def _text(elem):
    return (elem.text or "").strip()


def _single(children, name, required=False):
    found = [e for n, e in children if n == name]
    if len(found) > 1 or (required and not found):
        raise _malformed_xml()
    return found[0] if found else None


def _xml_doc(root, inner):
    return Response(200, f'<?xml version="1.0" encoding="UTF-8"?>\n'
                         f'<{root} xmlns="{XMLNS}">{inner}</{root}>',
                    content_type="application/xml")


def _el(name, value):
    return f"<{name}>{xml_escape(value)}</{name}>"


def _bool(value):
    return "true" if value else "false"


def _iso_ms(epoch):
    # S3 keeps whole seconds (Last-Modified is an HTTP date) and lists them as ...:SS.000Z.
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


# -- common checks ----------------------------------------------------------------------------

def _access_denied(message="Access Denied"):
    return AwsError("AccessDenied", message, status=403)


def _no_such_bucket(name):
    return AwsError("NoSuchBucket", "The specified bucket does not exist", status=404,
                    extra={"BucketName": name})


def _get_bucket(store, req, name):
    bucket = _state(store).buckets.get(name)
    if bucket is None:
        if name in store.foreign_buckets:
            # It exists, in another account that grants us nothing.
            raise _access_denied()
        raise _no_such_bucket(name)
    owner = req.header("x-amz-expected-bucket-owner")
    if owner is not None and owner != store.account_id:
        raise _access_denied()
    return bucket


def _bucket_name_valid(name):
    if not _BUCKET_NAME.match(name or ""):
        return False
    if ".." in name or ".-" in name or "-." in name:
        return False
    if _IPV4.match(name):
        return False
    for prefix in ("xn--", "sthree-", "amzn-s3-demo-"):
        if name.startswith(prefix):
            return False
    for suffix in ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"):
        if name.endswith(suffix):
            return False
    return True


def _check_digests(req):
    """Content-MD5 and x-amz-checksum-* against the body, as S3 does on every upload."""
    body = req.body
    md5 = req.header("content-md5")
    if md5 is not None:
        try:
            digest = base64.b64decode(md5.strip(), validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) != 16:
            raise AwsError("InvalidDigest", "The Content-MD5 you specified was invalid.",
                           extra={"Content-MD5": md5})
        if digest != hashlib.md5(body).digest():
            raise AwsError("BadDigest", "The Content-MD5 you specified did not match what we "
                           "received.", extra={
                               "ExpectedDigest": md5,
                               "CalculatedDigest": base64.b64encode(
                                   hashlib.md5(body).digest()).decode()})
    checks = {
        "crc32": lambda b: zlib.crc32(b).to_bytes(4, "big"),
        "sha1": lambda b: hashlib.sha1(b).digest(),
        "sha256": lambda b: hashlib.sha256(b).digest(),
    }
    for algo, fn in checks.items():
        value = req.header("x-amz-checksum-" + algo)
        if value is None:
            continue
        try:
            got = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            got = None
        if got is None or len(got) != len(fn(b"")):
            raise AwsError("InvalidRequest",
                           f"Value for x-amz-checksum-{algo} header is invalid.")
        if got != fn(body):
            raise AwsError("BadDigest", f"The {algo.upper()} you specified did not match the "
                           "calculated checksum.")


def _require_checksum(req):
    if req.header("content-md5") is None and not any(
            h.startswith("x-amz-checksum-") for h in req.headers):
        raise AwsError("InvalidRequest",
                       "Missing required header for this request: Content-MD5")


# -- handlers: service and buckets ------------------------------------------------------------

def _owner_id(store):
    return hashlib.sha256(("fakeaws-canonical-" + store.account_id).encode()).hexdigest()


def _owner_xml(store):
    return f"<Owner><ID>{_owner_id(store)}</ID></Owner>"


def _max_int(req, name, default, lo=0, hi=None):
    raw = req.params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < lo or (hi is not None and value > hi):
        raise AwsError("InvalidArgument",
                       f"Provided {name} not an integer or within integer range",
                       extra={"ArgumentName": name, "ArgumentValue": raw})
    return value


def _list_buckets(store, req):
    state = _state(store)
    prefix = req.params.get("prefix", "")
    max_buckets = _max_int(req, "max-buckets", None, lo=1, hi=10000)
    region = req.params.get("bucket-region")
    token = req.params.get("continuation-token")
    names = sorted(n for n in state.buckets if n.startswith(prefix)
                   and (region is None or state.buckets[n].region == region))
    if token is not None:
        after = _decode_token(token)
        names = [n for n in names if n > after]
    truncated = max_buckets is not None and len(names) > max_buckets
    if max_buckets is not None:
        names = names[:max_buckets]
    items = "".join(
        f"<Bucket><Name>{xml_escape(n)}</Name>"
        f"<CreationDate>{_iso_ms(state.buckets[n].created)}</CreationDate>"
        f"<BucketRegion>{state.buckets[n].region}</BucketRegion></Bucket>" for n in names)
    inner = f"{_owner_xml(store)}<Buckets>{items}</Buckets>"
    if truncated:
        inner += _el("ContinuationToken", _encode_token(names[-1]))
    if "prefix" in req.params:
        inner += _el("Prefix", prefix)
    return _xml_doc("ListAllMyBucketsResult", inner)


def _location_constraint_of(body):
    """The LocationConstraint of a CreateBucket body, best effort (for the IAM context)."""
    if not body or not body.strip():
        return None
    try:
        root = ET.fromstring(body)
    except (ET.ParseError, ValueError):
        return None
    for child in root:
        if _local(child.tag) == "LocationConstraint":
            return _text(child)
    return None


def _create_bucket(store, req, name):
    state = _state(store)
    if not _bucket_name_valid(name):
        raise AwsError("InvalidBucketName", "The specified bucket is not valid.",
                       extra={"BucketName": name})
    constraint = None
    tags = None
    if req.body and req.body.strip():
        root = _parse_xml(req.body, "CreateBucketConfiguration")
        children = _children(root, {"LocationConstraint", "Location", "Bucket", "Tags"})
        lc = _single(children, "LocationConstraint")
        if lc is not None:
            constraint = _text(lc) or None
        if _single(children, "Location") is not None or _single(children, "Bucket") is not None:
            raise _not_implemented("CreateBucket", "PUT", "for a directory bucket "
                                   "(Location/Bucket configuration)")
        tag_el = _single(children, "Tags")
        if tag_el is not None:
            tags = _parse_tag_list(tag_el, "bucket")
    # The endpoint is regional (SigV4 scope = store.region): the constraint must name it.
    region = store.region
    if constraint is not None and constraint not in _LOCATION_CONSTRAINTS:
        raise AwsError("InvalidLocationConstraint", "The specified location-constraint is not "
                       "valid", extra={"LocationConstraint": constraint})
    if region == "us-east-1":
        if constraint == "us-east-1":
            raise AwsError("InvalidLocationConstraint", "The specified location-constraint is "
                           "not valid", extra={"LocationConstraint": constraint})
        if constraint is not None:
            raise AwsError("IllegalLocationConstraintException",
                           f"The {constraint} location constraint is incompatible for the "
                           f"region specific endpoint this request was sent to.")
    else:
        effective = "eu-west-1" if constraint == "EU" else constraint
        if constraint is None:
            raise AwsError("IllegalLocationConstraintException",
                           "The unspecified location constraint is incompatible for the region "
                           "specific endpoint this request was sent to.")
        if effective != region:
            raise AwsError("IllegalLocationConstraintException",
                           f"The {constraint} location constraint is incompatible for the "
                           f"region specific endpoint this request was sent to.")
    ownership = req.header("x-amz-object-ownership")
    if ownership is not None and ownership not in _OBJECT_OWNERSHIP:
        raise AwsError("InvalidArgument", f"Invalid x-amz-object-ownership header: {ownership}",
                       extra={"ArgumentName": "x-amz-object-ownership",
                              "ArgumentValue": ownership})
    acl = req.header("x-amz-acl")
    if acl is not None and acl not in _CANNED_BUCKET_ACLS:
        raise AwsError("InvalidArgument", "Invalid canned ACL", extra={"ArgumentName": "x-amz-acl",
                                                                      "ArgumentValue": acl})
    effective_ownership = ownership or "BucketOwnerEnforced"
    if effective_ownership == "BucketOwnerEnforced" and (
            (acl is not None and acl != "private") or any(req.header(h) for h in _GRANT_HEADERS)):
        raise AwsError("InvalidBucketAclWithObjectOwnership", "Bucket cannot have ACLs set with "
                       "ObjectOwnership's BucketOwnerEnforced setting")
    if req.header("x-amz-bucket-object-lock-enabled", "").lower() == "true":
        raise _not_implemented("CreateBucket", "PUT", "with x-amz-bucket-object-lock-enabled")
    # Real S3 answered 200 to a re-create of your own bucket in legacy us-east-1; S3 now answers
    # 409 BucketAlreadyOwnedByYou in every region, and so does fakeaws.
    if name in state.buckets:
        raise AwsError("BucketAlreadyOwnedByYou", "Your previous request to create the named "
                       "bucket succeeded and you already own it.", status=409,
                       extra={"BucketName": name})
    if name in store.foreign_buckets:
        raise AwsError("BucketAlreadyExists", "The requested bucket name is not available. The "
                       "bucket namespace is shared by all users of the system. Please select a "
                       "different name and try again.", status=409, extra={"BucketName": name})
    bucket = Bucket(name, region, constraint, time.time())
    bucket.ownership = effective_ownership
    bucket.tags = tags or None
    state.buckets[name] = bucket
    location = f"/{name}" if region == "us-east-1" else f"http://{name}.s3.amazonaws.com/"
    return Response(200, b"", headers={"Location": location})


def _head_bucket(store, req, name):
    bucket = _state(store).buckets.get(name)
    if bucket is None and name in store.foreign_buckets:
        raise AwsError("AccessDenied", "Forbidden", status=403,
                       headers={"x-amz-bucket-region": store.region})
    bucket = _get_bucket(store, req, name)
    return Response(200, b"", headers={"x-amz-bucket-region": bucket.region,
                                       "x-amz-access-point-alias": "false"})


def _delete_bucket(store, req, name):
    bucket = _get_bucket(store, req, name)
    if not bucket.is_empty():
        raise AwsError("BucketNotEmpty", "The bucket you tried to delete is not empty",
                       status=409, extra={"BucketName": name})
    del _state(store).buckets[name]
    return Response(204)


def _get_bucket_location(store, req, name):
    bucket = _get_bucket(store, req, name)
    if bucket.location_constraint is None:
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<LocationConstraint xmlns="{XMLNS}"/>')
    else:
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<LocationConstraint xmlns="{XMLNS}">{xml_escape(bucket.location_constraint)}'
                f'</LocationConstraint>')
    return Response(200, body, content_type="application/xml")


# -- public access block ------------------------------------------------------------------------

_PAB_FIELDS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
               "RestrictPublicBuckets")


def _parse_xml_bool(elem):
    value = _text(elem).lower()
    if value not in ("true", "false"):
        raise _malformed_xml()
    return value == "true"


def _put_public_access_block(store, req, bucket):
    root = _parse_xml(req.body, "PublicAccessBlockConfiguration")
    children = _children(root, set(_PAB_FIELDS))
    config = {}
    for field in _PAB_FIELDS:
        el = _single(children, field)
        config[field] = _parse_xml_bool(el) if el is not None else False
    bucket.public_access_block = config
    return Response(200)


def _get_public_access_block(store, req, bucket):
    config = bucket.public_access_block
    if config is None:
        raise AwsError("NoSuchPublicAccessBlockConfiguration", "The public access block "
                       "configuration was not found", status=404,
                       extra={"BucketName": bucket.name})
    inner = "".join(_el(f, _bool(config[f])) for f in _PAB_FIELDS)
    return _xml_doc("PublicAccessBlockConfiguration", inner)


def _delete_public_access_block(store, req, bucket):
    bucket.public_access_block = None
    return Response(204)


# -- default encryption -----------------------------------------------------------------------

def _put_bucket_encryption(store, req, bucket):
    root = _parse_xml(req.body, "ServerSideEncryptionConfiguration")
    rules = [e for _, e in _children(root, {"Rule"})]
    if len(rules) != 1:
        raise _malformed_xml()
    rule = _children(rules[0], {"ApplyServerSideEncryptionByDefault", "BucketKeyEnabled",
                                "BlockedEncryptionTypes"})
    default = _single(rule, "ApplyServerSideEncryptionByDefault", required=True)
    parts = _children(default, {"SSEAlgorithm", "KMSMasterKeyID"})
    algo_el = _single(parts, "SSEAlgorithm", required=True)
    algo = _text(algo_el)
    if algo not in _SSE_ALGORITHMS:
        raise _malformed_xml()
    key_el = _single(parts, "KMSMasterKeyID")
    key_id = _text(key_el) if key_el is not None else None
    if key_id and algo == "AES256":
        raise AwsError("InvalidArgument", "a KMSMasterKeyID is not applicable if the default "
                       "sse algorithm is not aws:kms or aws:kms:dsse",
                       extra={"ArgumentName": "ApplyServerSideEncryptionByDefault"})
    bke = _single(rule, "BucketKeyEnabled")
    if _single(rule, "BlockedEncryptionTypes") is not None:
        raise _not_implemented("PutBucketEncryption", "PUT", "?encryption with "
                               "BlockedEncryptionTypes")
    bucket.encryption = {"SSEAlgorithm": algo, "KMSMasterKeyID": key_id or None,
                         "BucketKeyEnabled": _parse_xml_bool(bke) if bke is not None else False}
    return Response(200)


def _get_bucket_encryption(store, req, bucket):
    enc = bucket.encryption
    if enc is None:
        raise AwsError("ServerSideEncryptionConfigurationNotFoundError", "The server side "
                       "encryption configuration was not found", status=404,
                       extra={"BucketName": bucket.name})
    inner = _el("SSEAlgorithm", enc["SSEAlgorithm"])
    if enc["KMSMasterKeyID"]:
        inner += _el("KMSMasterKeyID", enc["KMSMasterKeyID"])
    inner = (f"<Rule><ApplyServerSideEncryptionByDefault>{inner}"
             f"</ApplyServerSideEncryptionByDefault>"
             f"{_el('BucketKeyEnabled', _bool(enc['BucketKeyEnabled']))}</Rule>")
    return _xml_doc("ServerSideEncryptionConfiguration", inner)


def _delete_bucket_encryption(store, req, bucket):
    # Since January 2023 every bucket is encrypted: deleting the configuration restores SSE-S3.
    bucket.encryption = {"SSEAlgorithm": "AES256", "KMSMasterKeyID": None,
                         "BucketKeyEnabled": False}
    return Response(204)


# -- ownership controls -----------------------------------------------------------------------

def _put_ownership_controls(store, req, bucket):
    root = _parse_xml(req.body, "OwnershipControls")
    rules = [e for _, e in _children(root, {"Rule"})]
    if len(rules) != 1:
        raise _malformed_xml()
    value_el = _single(_children(rules[0], {"ObjectOwnership"}), "ObjectOwnership",
                       required=True)
    value = _text(value_el)
    if value not in _OBJECT_OWNERSHIP:
        raise _malformed_xml()
    bucket.ownership = value
    return Response(200)


def _get_ownership_controls(store, req, bucket):
    if bucket.ownership is None:
        raise AwsError("OwnershipControlsNotFoundError", "The bucket ownership controls were "
                       "not found", status=404, extra={"BucketName": bucket.name})
    return _xml_doc("OwnershipControls", f"<Rule>{_el('ObjectOwnership', bucket.ownership)}"
                                         f"</Rule>")


def _delete_ownership_controls(store, req, bucket):
    bucket.ownership = None
    return Response(204)


# -- bucket policy ----------------------------------------------------------------------------

def _malformed_policy(message):
    return AwsError("MalformedPolicy", message, status=400)


def _as_list(value):
    return value if isinstance(value, list) else [value]


_AWS_PRINCIPAL = re.compile(
    r"^(\*|\d{12}|arn:aws:iam::\d{12}:(root|user/[\w+=,.@/-]+|role/[\w+=,.@/-]+|"
    r"group/[\w+=,.@/-]+)|arn:aws:sts::\d{12}:(assumed-role|federated-user)/[\w+=,.@/-]+)$")


def _user_exists(store, arn):
    """Whether an IAM user ARN of this account names an existing user (S3 resolves the
    principals of a bucket policy when it is put). True when IAM cannot tell."""
    try:
        from . import iam
        info = getattr(iam, "principal_info")
    except (ImportError, AttributeError):
        return True
    name = arn.split(":user/", 1)[1].rsplit("/", 1)[-1]
    return info(store, name) is not None


def _check_principal(store, value):
    if value == "*":
        return
    if not isinstance(value, dict) or not value:
        raise _malformed_policy("Invalid principal in policy")
    for kind, ids in value.items():
        if kind not in ("AWS", "Service", "CanonicalUser", "Federated"):
            raise _malformed_policy("Invalid principal in policy")
        for ident in _as_list(ids):
            if not isinstance(ident, str) or not ident:
                raise _malformed_policy("Invalid principal in policy")
            if kind == "AWS" and not _AWS_PRINCIPAL.match(ident):
                raise _malformed_policy("Invalid principal in policy")
            if kind == "AWS" and ident.startswith(f"arn:aws:iam::{store.account_id}:user/") \
                    and not _user_exists(store, ident):
                raise _malformed_policy("Invalid principal in policy")


def _validate_policy(store, text, bucket_name):
    """Parse and validate a bucket policy as S3 does; returns the parsed document."""
    if len(text.encode()) > _MAX_POLICY_SIZE:
        raise _malformed_policy("Policy exceeds the maximum allowed document size.")
    if not text.lstrip().startswith("{"):
        raise _malformed_policy("Policies must be valid JSON and the first byte must be '{'")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise _malformed_policy("This policy contains invalid Json")
    if not isinstance(doc, dict):
        raise _malformed_policy("Policies must be valid JSON and the first byte must be '{'")
    for field in doc:
        if field not in ("Version", "Id", "Statement"):
            raise _malformed_policy(f"Unknown field {field}")
    if "Version" in doc and doc["Version"] not in ("2012-10-17", "2008-10-17"):
        raise _malformed_policy("The policy must contain a valid version string")
    if "Statement" not in doc:
        raise _malformed_policy("Missing required field Statement")
    statements = _as_list(doc["Statement"])
    if not statements:
        raise _malformed_policy("Could not parse the policy: Statement is empty!")
    arn = _bucket_arn(bucket_name)
    for st in statements:
        if not isinstance(st, dict):
            raise _malformed_policy("This policy contains invalid Json")
        for field in st:
            if field not in ("Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
                             "Resource", "NotResource", "Condition"):
                raise _malformed_policy(f"Unknown field {field}")
        if "Effect" not in st:
            raise _malformed_policy("Missing required field Effect")
        if st["Effect"] not in ("Allow", "Deny"):
            raise _malformed_policy(f"Invalid effect: {st['Effect']}")
        if "Principal" not in st and "NotPrincipal" not in st:
            raise _malformed_policy("Missing required field Principal")
        _check_principal(store, st.get("Principal", st.get("NotPrincipal")))
        if "Action" not in st and "NotAction" not in st:
            raise _malformed_policy("Missing required field Action")
        for action in _as_list(st.get("Action", st.get("NotAction"))):
            if not isinstance(action, str) or not (
                    action == "*" or re.match(r"^s3:[A-Za-z0-9*?]+$", action, re.I)):
                raise _malformed_policy("Policy has invalid action")
        if "Resource" not in st and "NotResource" not in st:
            raise _malformed_policy("Missing required field Resource")
        for res in _as_list(st.get("Resource", st.get("NotResource"))):
            if not isinstance(res, str) or not (
                    res == arn or res.startswith(arn + "/") or fnmatch.fnmatchcase(arn, res)
                    or fnmatch.fnmatchcase(arn + "/x", res)):
                raise _malformed_policy("Policy has invalid resource")
        cond = st.get("Condition")
        if cond is not None:
            if not isinstance(cond, dict):
                raise _malformed_policy("This policy contains invalid Json")
            for op, block in cond.items():
                base = op.split(":", 1)[1] if op.startswith(("ForAnyValue:", "ForAllValues:")) \
                    else op
                if base.endswith("IfExists"):
                    base = base[:-len("IfExists")]
                if base not in _CONDITION_OPS:
                    raise _malformed_policy(f"Invalid Condition type : {op}")
                if not isinstance(block, dict):
                    raise _malformed_policy("This policy contains invalid Json")
    return doc


def _policy_is_public(doc):
    for st in _as_list(doc.get("Statement", [])):
        if st.get("Effect") != "Allow" or "Principal" not in st:
            continue
        principal = st["Principal"]
        wildcard = principal == "*" or (isinstance(principal, dict) and any(
            "*" in _as_list(v) for v in principal.values()))
        if not wildcard:
            continue
        restricted = False
        for op, block in (st.get("Condition") or {}).items():
            if "Not" in op or "IfExists" in op:
                continue
            for key, values in block.items():
                if key.lower() in _NON_PUBLIC_KEYS and not any(
                        "*" in str(v) or str(v) in ("0.0.0.0/0", "::/0")
                        for v in _as_list(values)):
                    restricted = True
        if not restricted:
            return True
    return False


def _put_bucket_policy(store, req, bucket):
    try:
        text = req.body.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed_policy("This policy contains invalid Json")
    doc = _validate_policy(store, text, bucket.name)
    pab = bucket.public_access_block or {}
    if pab.get("BlockPublicPolicy") and _policy_is_public(doc):
        raise _access_denied(
            f"User: {req.caller.arn if req.caller else 'anonymous'} is not authorized to "
            f"perform: s3:PutBucketPolicy on resource: \"{_bucket_arn(bucket.name)}\" because "
            f"public policies are blocked by the BlockPublicPolicy block public access setting.")
    bucket.policy = text
    return Response(204)


def _get_bucket_policy(store, req, bucket):
    if bucket.policy is None:
        raise AwsError("NoSuchBucketPolicy", "The bucket policy does not exist", status=404,
                       extra={"BucketName": bucket.name})
    return Response(200, bucket.policy, content_type="application/json")


def _delete_bucket_policy(store, req, bucket):
    bucket.policy = None
    return Response(204)


# -- tagging ----------------------------------------------------------------------------------

def _invalid_tag(message):
    return AwsError("InvalidTag", message, status=400)


def _check_tags(tags, limit):
    if len(tags) > limit:
        raise _invalid_tag(f"Bucket tag count cannot be greater than {limit}")
    seen = set()
    for key, value in tags:
        if not key or len(key) > 128 or not _TAG_CHARS.match(key):
            raise _invalid_tag("The TagKey you have provided is invalid")
        if len(value) > 256 or not _TAG_CHARS.match(value):
            raise _invalid_tag("The TagValue you have provided is invalid")
        if key.lower().startswith("aws:"):
            raise _invalid_tag("System tags cannot be added/updated by requester")
        if key in seen:
            raise _invalid_tag("Cannot provide multiple Tags with the same key")
        seen.add(key)


def _parse_tag_list(elem, kind):
    tags = []
    for _, tag in _children(elem, {"Tag"}):
        parts = _children(tag, {"Key", "Value"})
        key_el = _single(parts, "Key", required=True)
        value_el = _single(parts, "Value", required=True)
        tags.append((key_el.text or "", value_el.text or ""))
    _check_tags(tags, 50)
    return tags


def _put_bucket_tagging(store, req, bucket):
    root = _parse_xml(req.body, "Tagging")
    tag_set = _single(_children(root, {"TagSet"}), "TagSet", required=True)
    tags = _parse_tag_list(tag_set, "bucket")
    bucket.tags = tags or None
    return Response(204)


def _get_bucket_tagging(store, req, bucket):
    if not bucket.tags:
        raise AwsError("NoSuchTagSet", "The TagSet does not exist", status=404,
                       extra={"BucketName": bucket.name})
    inner = "".join(f"<Tag>{_el('Key', k)}{_el('Value', v)}</Tag>" for k, v in bucket.tags)
    return _xml_doc("Tagging", f"<TagSet>{inner}</TagSet>")


def _delete_bucket_tagging(store, req, bucket):
    bucket.tags = None
    return Response(204)


# -- versioning -------------------------------------------------------------------------------

def _put_bucket_versioning(store, req, bucket):
    root = _parse_xml(req.body, "VersioningConfiguration")
    children = _children(root, {"Status", "MfaDelete"})
    status_el = _single(children, "Status")
    mfa_el = _single(children, "MfaDelete")
    status = _text(status_el) if status_el is not None else None
    mfa = _text(mfa_el) if mfa_el is not None else None
    if status is not None and status not in ("Enabled", "Suspended"):
        raise _malformed_xml()
    if mfa is not None and mfa not in ("Enabled", "Disabled"):
        raise _malformed_xml()
    if mfa == "Enabled":
        raise _not_implemented("PutBucketVersioning", "PUT", "?versioning with MfaDelete "
                               "Enabled")
    if status is not None:
        bucket.versioning = status
    if mfa is not None:
        bucket.mfa_delete = mfa
    return Response(200)


def _get_bucket_versioning(store, req, bucket):
    inner = ""
    if bucket.versioning:
        inner += _el("Status", bucket.versioning)
    if bucket.mfa_delete:
        inner += _el("MfaDelete", bucket.mfa_delete)
    return _xml_doc("VersioningConfiguration", inner)


# -- listings ---------------------------------------------------------------------------------

def _utf8(s):
    return s.encode("utf-8", "surrogatepass")


def _encode_token(name):
    return base64.b64encode(b"fakeaws\x00" + _utf8(name)).decode()


def _decode_token(token):
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not raw.startswith(b"fakeaws\x00"):
        raise AwsError("InvalidArgument", "The continuation token provided is incorrect",
                       extra={"ArgumentName": "continuation-token"})
    return raw[len(b"fakeaws\x00"):].decode("utf-8", "replace")


def _encoding_type(req):
    enc = req.params.get("encoding-type")
    if enc is not None and enc != "url":
        raise AwsError("InvalidArgument", "Invalid Encoding Method specified in Request",
                       extra={"ArgumentName": "encoding-type", "ArgumentValue": enc})
    return enc


def _enc(value, encoding):
    if encoding == "url":
        return quote(value, safe="/~-_.").replace("%20", "+")
    return value


def _walk(keys, prefix, delimiter, after_item=None, after_key=None):
    """Yield (item, key) in listing order: item is the key or, with a delimiter, the common
    prefix that rolls it up. Resumes after an item (token/marker) or after a key."""
    for key in sorted(keys, key=_utf8):
        if not key.startswith(prefix):
            continue
        item = key
        if delimiter:
            i = key.find(delimiter, len(prefix))
            if i >= 0:
                item = key[:i + len(delimiter)]
        if after_key is not None and _utf8(key) <= _utf8(after_key):
            continue
        if after_item is not None and _utf8(item) <= _utf8(after_item):
            continue
        yield item, key


def _collect(keys, prefix, delimiter, max_keys, after_item=None, after_key=None):
    """Up to max_keys entries: (list of ("key", key) / ("prefix", cp)), truncated, last item."""
    entries = []
    seen = set()
    truncated = False
    for item, key in _walk(keys, prefix, delimiter, after_item, after_key):
        if item in seen:
            continue
        if len(entries) >= max_keys:
            truncated = True
            break
        seen.add(item)
        entries.append(("prefix", item) if item != key else ("key", key))
    last = entries[-1][1] if entries else None
    return entries, truncated, last


def _contents_xml(bucket, key, encoding, owner_xml=""):
    obj = bucket.current(key)
    return (f"<Contents>{_el('Key', _enc(key, encoding))}"
            f"<LastModified>{_iso_ms(obj.last_modified)}</LastModified>"
            f"{_el('ETag', obj.etag)}<Size>{obj.size}</Size>{owner_xml}"
            f"{_el('StorageClass', obj.storage_class)}</Contents>")


def _list_objects_v2(store, req, bucket):
    prefix = req.params.get("prefix", "")
    delimiter = req.params.get("delimiter", "")
    max_keys = min(_max_int(req, "max-keys", 1000), 1000)
    encoding = _encoding_type(req)
    token = req.params.get("continuation-token")
    start_after = req.params.get("start-after")
    fetch_owner = req.params.get("fetch-owner", "false").lower() == "true"
    after_item = _decode_token(token) if token is not None else None
    entries, truncated, last = _collect(bucket.live_keys(), prefix, delimiter, max_keys,
                                        after_item=after_item,
                                        after_key=start_after if token is None else None)
    owner = _owner_xml(store) if fetch_owner else ""
    inner = [_el("Name", bucket.name), _el("Prefix", _enc(prefix, encoding))]
    if delimiter:
        inner.append(_el("Delimiter", _enc(delimiter, encoding)))
    inner.append(f"<MaxKeys>{max_keys}</MaxKeys>")
    if encoding:
        inner.append(_el("EncodingType", encoding))
    inner.append(f"<KeyCount>{len(entries)}</KeyCount>")
    inner.append(f"<IsTruncated>{_bool(truncated)}</IsTruncated>")
    if token is not None:
        inner.append(_el("ContinuationToken", token))
    if truncated:
        inner.append(_el("NextContinuationToken", _encode_token(last)))
    if start_after is not None:
        inner.append(_el("StartAfter", _enc(start_after, encoding)))
    for kind, name in entries:
        if kind == "key":
            inner.append(_contents_xml(bucket, name, encoding, owner))
    for kind, name in entries:
        if kind == "prefix":
            inner.append(f"<CommonPrefixes>{_el('Prefix', _enc(name, encoding))}"
                         f"</CommonPrefixes>")
    return _xml_doc("ListBucketResult", "".join(inner))


def _list_objects(store, req, bucket):
    prefix = req.params.get("prefix", "")
    delimiter = req.params.get("delimiter", "")
    max_keys = min(_max_int(req, "max-keys", 1000), 1000)
    encoding = _encoding_type(req)
    marker = req.params.get("marker", "")
    entries, truncated, last = _collect(bucket.live_keys(), prefix, delimiter, max_keys,
                                        after_item=marker or None)
    inner = [_el("Name", bucket.name), _el("Prefix", _enc(prefix, encoding)),
             _el("Marker", _enc(marker, encoding))]
    if truncated and delimiter:
        inner.append(_el("NextMarker", _enc(last, encoding)))
    inner.append(f"<MaxKeys>{max_keys}</MaxKeys>")
    if delimiter:
        inner.append(_el("Delimiter", _enc(delimiter, encoding)))
    if encoding:
        inner.append(_el("EncodingType", encoding))
    inner.append(f"<IsTruncated>{_bool(truncated)}</IsTruncated>")
    for kind, name in entries:
        if kind == "key":
            inner.append(_contents_xml(bucket, name, encoding, _owner_xml(store)))
    for kind, name in entries:
        if kind == "prefix":
            inner.append(f"<CommonPrefixes>{_el('Prefix', _enc(name, encoding))}"
                         f"</CommonPrefixes>")
    return _xml_doc("ListBucketResult", "".join(inner))


def _list_object_versions(store, req, bucket):
    prefix = req.params.get("prefix", "")
    delimiter = req.params.get("delimiter", "")
    max_keys = min(_max_int(req, "max-keys", 1000), 1000)
    encoding = _encoding_type(req)
    key_marker = req.params.get("key-marker", "")
    vid_marker = req.params.get("version-id-marker", "")
    if vid_marker and not key_marker:
        raise AwsError("InvalidArgument", "A version-id marker cannot be specified without a "
                       "key marker.", extra={"ArgumentName": "version-id-marker",
                                             "ArgumentValue": vid_marker})
    # Every (item, key, version) in order: keys ascending, each key's versions newest first.
    entries = []
    seen = set()
    truncated = False
    next_key = next_vid = None
    keys = [k for k, vs in bucket.objects.items() if vs]
    for item, key in _walk(keys, prefix, delimiter):
        versions = list(reversed(bucket.objects[key]))
        if item != key:
            if item in seen:
                continue
            if key_marker and _utf8(item) <= _utf8(key_marker):
                continue
            if len(entries) >= max_keys:
                truncated = True
                break
            seen.add(item)
            entries.append(("prefix", item, None))
            next_key, next_vid = item, None
            continue
        if key_marker and _utf8(key) < _utf8(key_marker):
            continue
        if key == key_marker:
            if not vid_marker:
                continue
            ids = [v.version_id for v in versions]
            if vid_marker not in ids:
                continue
            versions = versions[ids.index(vid_marker) + 1:]
        for v in versions:
            if len(entries) >= max_keys:
                truncated = True
                break
            entries.append(("version", key, v))
            next_key, next_vid = key, v.version_id
        if truncated:
            break
    inner = [_el("Name", bucket.name), _el("Prefix", _enc(prefix, encoding)),
             _el("KeyMarker", _enc(key_marker, encoding)), _el("VersionIdMarker", vid_marker)]
    if truncated:
        inner.append(_el("NextKeyMarker", _enc(next_key, encoding)))
        if next_vid is not None:
            inner.append(_el("NextVersionIdMarker", next_vid))
    inner.append(f"<MaxKeys>{max_keys}</MaxKeys>")
    if delimiter:
        inner.append(_el("Delimiter", _enc(delimiter, encoding)))
    if encoding:
        inner.append(_el("EncodingType", encoding))
    inner.append(f"<IsTruncated>{_bool(truncated)}</IsTruncated>")
    owner = _owner_xml(store)
    for kind, name, v in entries:
        if kind != "version":
            continue
        latest = bucket.objects[name][-1] is v
        common = (f"{_el('Key', _enc(name, encoding))}{_el('VersionId', v.version_id)}"
                  f"<IsLatest>{_bool(latest)}</IsLatest>"
                  f"<LastModified>{_iso_ms(v.last_modified)}</LastModified>")
        if v.delete_marker:
            inner.append(f"<DeleteMarker>{common}{owner}</DeleteMarker>")
        else:
            inner.append(f"<Version>{common}{_el('ETag', v.etag)}<Size>{v.size}</Size>"
                         f"{_el('StorageClass', v.storage_class)}{owner}</Version>")
    for kind, name, _ in entries:
        if kind == "prefix":
            inner.append(f"<CommonPrefixes>{_el('Prefix', _enc(name, encoding))}"
                         f"</CommonPrefixes>")
    return _xml_doc("ListVersionsResult", "".join(inner))


# -- objects ----------------------------------------------------------------------------------

def _new_version_id():
    return secrets.token_urlsafe(24)[:32]


def _no_such_key(key):
    return AwsError("NoSuchKey", "The specified key does not exist.", status=404,
                    extra={"Key": key})


def _sse_headers(obj):
    headers = {}
    if obj.sse:
        headers["x-amz-server-side-encryption"] = obj.sse
        if obj.kms_key_id:
            headers["x-amz-server-side-encryption-aws-kms-key-id"] = obj.kms_key_id
        if obj.bucket_key_enabled:
            headers["x-amz-server-side-encryption-bucket-key-enabled"] = "true"
    return headers


def _parse_object_tags(value):
    from urllib.parse import parse_qsl
    try:
        pairs = parse_qsl(value, keep_blank_values=True, strict_parsing=bool(value))
    except ValueError:
        raise _invalid_tag("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded "
                           "URL query parameters without tag name duplicates.")
    if len(pairs) > 10:
        raise _invalid_tag("Object tags cannot be greater than 10")
    _check_tags(pairs, 10)
    return pairs


def _put_object(store, req, bucket, key):
    if len(_utf8(key)) > _MAX_KEY_BYTES:
        raise AwsError("KeyTooLongError", "Your key is too long", extra={
            "Size": str(len(_utf8(key))), "MaxSizeAllowed": str(_MAX_KEY_BYTES)})
    for h in ("x-amz-server-side-encryption-customer-algorithm",
              "x-amz-server-side-encryption-customer-key"):
        if req.header(h) is not None:
            raise _not_implemented("PutObject", "PUT", "with SSE-C (customer-provided keys)")
    if req.header("x-amz-object-lock-mode") or req.header("x-amz-object-lock-legal-hold"):
        raise _not_implemented("PutObject", "PUT", "with object lock headers")
    _check_digests(req)
    # Conditional writes.
    current = bucket.current(key)
    exists = current is not None and not current.delete_marker
    if_none = req.header("if-none-match")
    if if_none is not None:
        if if_none.strip() != "*":
            raise _not_implemented("PutObject", "PUT", "with If-None-Match other than *")
        if exists:
            raise AwsError("PreconditionFailed", "At least one of the pre-conditions you "
                           "specified did not hold", status=412,
                           extra={"Condition": "If-None-Match"})
    if_match = req.header("if-match")
    if if_match is not None:
        if not exists:
            raise _no_such_key(key)
        if not _etag_matches(if_match, current.etag):
            raise AwsError("PreconditionFailed", "At least one of the pre-conditions you "
                           "specified did not hold", status=412, extra={"Condition": "If-Match"})
    acl = req.header("x-amz-acl")
    if acl is not None and acl not in _CANNED_OBJECT_ACLS:
        raise AwsError("InvalidArgument", "Invalid canned ACL", extra={"ArgumentName": "x-amz-acl",
                                                                       "ArgumentValue": acl})
    if bucket.ownership == "BucketOwnerEnforced" and (
            (acl is not None and acl not in ("private", "bucket-owner-full-control"))
            or any(req.header(h) for h in _GRANT_HEADERS)):
        raise AwsError("AccessControlListNotSupported", "The bucket does not allow ACLs")
    storage_class = req.header("x-amz-storage-class", "STANDARD")
    if storage_class not in _STORAGE_CLASSES:
        raise AwsError("InvalidStorageClass", "The storage class you specified is not valid",
                       extra={"StorageClassRequested": storage_class})
    sse = req.header("x-amz-server-side-encryption")
    kms_key = req.header("x-amz-server-side-encryption-aws-kms-key-id")
    if sse is not None and sse not in _SSE_ALGORITHMS:
        raise AwsError("InvalidArgument", "The encryption method specified is not supported",
                       extra={"ArgumentName": "x-amz-server-side-encryption",
                              "ArgumentValue": sse})
    if kms_key is not None and sse not in ("aws:kms", "aws:kms:dsse"):
        raise AwsError("InvalidArgument", "Server Side Encryption with AWS KMS managed key "
                       "requires HTTP header x-amz-server-side-encryption : aws:kms",
                       extra={"ArgumentName": "x-amz-server-side-encryption",
                              "ArgumentValue": "null"})
    metadata = {}
    meta_size = 0
    for name, value in req.headers.items():
        if name.startswith("x-amz-meta-"):
            metadata[name[len("x-amz-meta-"):]] = value
            meta_size += len(name) - len("x-amz-meta-") + len(_utf8(value))
    if meta_size > _MAX_METADATA_BYTES:
        raise AwsError("MetadataTooLarge", "Your metadata headers exceed the maximum allowed "
                       "metadata size.", extra={"Size": str(meta_size),
                                                "MaxSizeAllowed": str(_MAX_METADATA_BYTES)})
    tags = _parse_object_tags(req.header("x-amz-tagging")) \
        if req.header("x-amz-tagging") is not None else []

    version_id = _new_version_id() if bucket.versioning == "Enabled" else "null"
    obj = ObjectVersion(key, version_id, time.time())
    obj.body = req.body
    obj.etag = '"%s"' % hashlib.md5(req.body).hexdigest()
    obj.content_type = req.header("content-type") or "binary/octet-stream"
    obj.metadata = metadata
    obj.headers = {h: req.header(h) for h in _OBJECT_HEADERS if req.header(h) is not None}
    obj.storage_class = storage_class
    obj.tag_count = len(tags)
    if sse is not None:
        obj.sse, obj.kms_key_id = sse, kms_key
    else:
        enc = bucket.encryption or {}
        obj.sse = enc.get("SSEAlgorithm")
        obj.kms_key_id = enc.get("KMSMasterKeyID")
        obj.bucket_key_enabled = bool(enc.get("BucketKeyEnabled")) and obj.sse != "AES256"
    if obj.sse in ("aws:kms", "aws:kms:dsse") and not obj.kms_key_id:
        obj.kms_key_id = f"arn:aws:kms:{bucket.region}:{store.account_id}:alias/aws/s3"
    _store_version(bucket, key, obj)
    headers = {"ETag": obj.etag}
    headers.update(_sse_headers(obj))
    if bucket.versioning is not None:
        headers["x-amz-version-id"] = version_id
    return Response(200, b"", headers=headers)


def _store_version(bucket, key, obj):
    versions = bucket.objects.get(key, [])
    if bucket.versioning is None:
        versions = []
    elif obj.version_id == "null":
        versions = [v for v in versions if v.version_id != "null"]
    versions.append(obj)
    bucket.objects[key] = versions


def _etag_matches(header, etag):
    for candidate in header.split(","):
        c = candidate.strip()
        if c == "*" or c == etag or f'"{c}"' == etag:
            return True
    return False


def _parse_http_date(value):
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _find_version(store, req, bucket, key, op):
    """The object version a Get/Head names, with S3's errors for the missing cases."""
    version_id = req.params.get("versionId")
    versions = bucket.objects.get(key) or []
    if version_id == "":
        raise AwsError("InvalidArgument", "Version id cannot be the empty string",
                       extra={"ArgumentName": "versionId", "ArgumentValue": ""})
    if version_id is not None:
        for v in versions:
            if v.version_id == version_id:
                if v.delete_marker:
                    raise AwsError("MethodNotAllowed", "The specified method is not allowed "
                                   "against this resource.", status=405,
                                   extra={"Method": req.method, "ResourceType": "DeleteMarker"},
                                   headers={"x-amz-delete-marker": "true",
                                            "x-amz-version-id": v.version_id,
                                            "Last-Modified": rfc1123(v.last_modified)})
                return v
        if not versions:
            _missing_key(store, req, bucket, key)
        raise AwsError("NoSuchVersion", "The specified version does not exist.", status=404,
                       extra={"Key": key, "VersionId": version_id})
    obj = versions[-1] if versions else None
    if obj is None:
        _missing_key(store, req, bucket, key)
    if obj.delete_marker:
        _missing_key(store, req, bucket, key, headers={"x-amz-delete-marker": "true",
                                                       "x-amz-version-id": obj.version_id})
    return obj


def _missing_key(store, req, bucket, key, headers=None):
    """NoSuchKey, or AccessDenied when the caller may not list the bucket (S3 hides whether
    the key exists from callers without s3:ListBucket)."""
    if req.caller is not None and not req.caller.is_root:
        from . import policy
        try:
            policy.check(store, req, [Authz("s3:ListBucket", _bucket_arn(bucket.name),
                                            {"s3:prefix": key})])
        except AwsError:
            raise _access_denied()
    err = _no_such_key(key)
    err.headers.update(headers or {})
    raise err


def _get_object(store, req, bucket, key, head):
    op = "HeadObject" if head else "GetObject"
    if req.header("x-amz-server-side-encryption-customer-algorithm") is not None:
        raise _not_implemented(op, req.method, "with SSE-C (customer-provided keys)")
    obj = _find_version(store, req, bucket, key, op)
    if obj.storage_class in ("GLACIER", "DEEP_ARCHIVE") and not head:
        raise AwsError("InvalidObjectState", "The operation is not valid for the object's "
                       "storage class", status=403, extra={"StorageClass": obj.storage_class})
    headers = {"ETag": obj.etag, "Last-Modified": rfc1123(obj.last_modified),
               "Accept-Ranges": "bytes", "Content-Type": obj.content_type}
    headers.update(obj.headers)
    headers.update(_sse_headers(obj))
    for name, value in obj.metadata.items():
        headers["x-amz-meta-" + name] = value
    if bucket.versioning is not None or obj.version_id != "null":
        headers["x-amz-version-id"] = obj.version_id
    if obj.storage_class != "STANDARD":
        headers["x-amz-storage-class"] = obj.storage_class
    if obj.tag_count:
        headers["x-amz-tagging-count"] = str(obj.tag_count)

    # Conditional requests (RFC 7232 order, as S3 applies it).
    if_match = req.header("if-match")
    if_none = req.header("if-none-match")
    since = _parse_http_date(req.header("if-modified-since") or "")
    unmod = _parse_http_date(req.header("if-unmodified-since") or "")
    modified = int(obj.last_modified)
    if if_match is not None:
        if not _etag_matches(if_match, obj.etag):
            raise AwsError("PreconditionFailed", "At least one of the pre-conditions you "
                           "specified did not hold", status=412, extra={"Condition": "If-Match"})
    elif unmod is not None and modified > unmod:
        raise AwsError("PreconditionFailed", "At least one of the pre-conditions you "
                       "specified did not hold", status=412,
                       extra={"Condition": "If-Unmodified-Since"})
    not_modified_headers = {k: v for k, v in headers.items()
                            if k in ("ETag", "Last-Modified", "x-amz-version-id")}
    if if_none is not None:
        if _etag_matches(if_none, obj.etag):
            return Response(304, b"", headers=not_modified_headers)
    elif since is not None and modified <= since:
        return Response(304, b"", headers=not_modified_headers)

    for param, header in (("response-content-type", "Content-Type"),
                          ("response-content-language", "Content-Language"),
                          ("response-expires", "Expires"),
                          ("response-cache-control", "Cache-Control"),
                          ("response-content-disposition", "Content-Disposition"),
                          ("response-content-encoding", "Content-Encoding")):
        if param in req.params:
            headers[header] = req.params[param]

    body = obj.body
    status = 200
    rng = _parse_range(req.header("range"), len(body))
    if rng is not None:
        start, end = rng
        headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
        body = body[start:end + 1]
        status = 206
    headers["Content-Length"] = str(len(body))
    return Response(status, b"" if head else body, headers=headers)


def _parse_range(value, size):
    """(start, end) inclusive for a single satisfiable byte range; None to send everything;
    raises InvalidRange when unsatisfiable. Malformed and multi-range headers are ignored, as
    S3 ignores them."""
    if not value:
        return None
    m = re.match(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", value)
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None
    first, last = m.group(1), m.group(2)
    if first == "":
        n = int(last)
        if n == 0 or size == 0:
            raise _invalid_range(value, size)
        return max(size - n, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise _invalid_range(value, size)
    return start, min(end, size - 1)


def _invalid_range(value, size):
    return AwsError("InvalidRange", "The requested range is not satisfiable", status=416,
                    extra={"RangeRequested": value, "ActualObjectSize": str(size)},
                    headers={"Content-Range": f"bytes */{size}"})


def _delete_key(bucket, key, version_id):
    """Delete one key (or one version of it). Returns (version id, is delete marker): the
    version removed, or the delete marker created; (None, False) for a plain delete."""
    versions = bucket.objects.get(key) or []
    if version_id is not None:
        kept = [v for v in versions if v.version_id != version_id]
        removed = [v for v in versions if v.version_id == version_id]
        if kept:
            bucket.objects[key] = kept
        else:
            bucket.objects.pop(key, None)
        return version_id, bool(removed and removed[0].delete_marker)
    if bucket.versioning is None:
        bucket.objects.pop(key, None)
        return None, False
    marker_id = _new_version_id() if bucket.versioning == "Enabled" else "null"
    marker = ObjectVersion(key, marker_id, time.time(), delete_marker=True)
    _store_version(bucket, key, marker)
    return marker_id, True


def _delete_object(store, req, bucket, key):
    version_id, marker = _delete_key(bucket, key, req.params.get("versionId"))
    headers = {}
    if version_id is not None:
        headers["x-amz-version-id"] = version_id
    if marker:
        headers["x-amz-delete-marker"] = "true"
    return Response(204, b"", headers=headers)


def _delete_objects(store, req, bucket):
    root = _parse_xml(req.body, "Delete")
    children = _children(root, {"Object", "Quiet"})
    quiet_el = _single(children, "Quiet")
    quiet = _parse_xml_bool(quiet_el) if quiet_el is not None else False
    objects = []
    for name, el in children:
        if name != "Object":
            continue
        parts = _children(el, {"Key", "VersionId", "ETag", "LastModifiedTime", "Size"})
        key_el = _single(parts, "Key", required=True)
        vid_el = _single(parts, "VersionId")
        if _single(parts, "ETag") is not None or _single(parts, "LastModifiedTime") is not None \
                or _single(parts, "Size") is not None:
            raise _not_implemented("DeleteObjects", "POST", "?delete with conditional "
                                   "(ETag/LastModifiedTime/Size) object identifiers")
        objects.append((key_el.text or "", vid_el.text if vid_el is not None else None))
    if not objects or len(objects) > 1000:
        raise _malformed_xml()
    check = None
    if req.caller is not None and not req.caller.is_root:
        from . import policy
        check = policy.check
    out = []
    for key, version_id in objects:
        if check is not None:
            action = "s3:DeleteObjectVersion" if version_id is not None else "s3:DeleteObject"
            try:
                check(store, req, [Authz(action, f"{_bucket_arn(bucket.name)}/{key}")])
            except AwsError:
                out.append(f"<Error>{_el('Key', key)}"
                           f"{_el('VersionId', version_id) if version_id is not None else ''}"
                           f"<Code>AccessDenied</Code><Message>Access Denied</Message></Error>")
                continue
        vid, marker = _delete_key(bucket, key, version_id)
        if quiet:
            continue
        entry = _el("Key", key)
        if version_id is not None:
            entry += _el("VersionId", version_id)
            if marker:
                entry += "<DeleteMarker>true</DeleteMarker>" + _el("DeleteMarkerVersionId", vid)
        elif marker:
            entry += "<DeleteMarker>true</DeleteMarker>" + _el("DeleteMarkerVersionId", vid)
        out.append(f"<Deleted>{entry}</Deleted>")
    return _xml_doc("DeleteResult", "".join(out))


# -- dispatch ---------------------------------------------------------------------------------

_BUCKET_HANDLERS = {
    "PutPublicAccessBlock": _put_public_access_block,
    "GetPublicAccessBlock": _get_public_access_block,
    "DeletePublicAccessBlock": _delete_public_access_block,
    "PutBucketEncryption": _put_bucket_encryption,
    "GetBucketEncryption": _get_bucket_encryption,
    "DeleteBucketEncryption": _delete_bucket_encryption,
    "PutBucketOwnershipControls": _put_ownership_controls,
    "GetBucketOwnershipControls": _get_ownership_controls,
    "DeleteBucketOwnershipControls": _delete_ownership_controls,
    "PutBucketPolicy": _put_bucket_policy,
    "GetBucketPolicy": _get_bucket_policy,
    "DeleteBucketPolicy": _delete_bucket_policy,
    "PutBucketTagging": _put_bucket_tagging,
    "GetBucketTagging": _get_bucket_tagging,
    "DeleteBucketTagging": _delete_bucket_tagging,
    "PutBucketVersioning": _put_bucket_versioning,
    "GetBucketVersioning": _get_bucket_versioning,
    "ListObjects": _list_objects,
    "ListObjectsV2": _list_objects_v2,
    "ListObjectVersions": _list_object_versions,
    "DeleteObjects": _delete_objects,
}


def handle(store, req, op):
    pending = getattr(req, "_s3_unimplemented", None)
    if pending is not None:
        raise pending
    bucket_name, key = _target(req)
    if op == "ListBuckets":
        return _list_buckets(store, req)
    if op == "CreateBucket":
        return _create_bucket(store, req, bucket_name)
    if op == "HeadBucket":
        return _head_bucket(store, req, bucket_name)
    if op == "DeleteBucket":
        return _delete_bucket(store, req, bucket_name)
    if op == "GetBucketLocation":
        return _get_bucket_location(store, req, bucket_name)
    bucket = _get_bucket(store, req, bucket_name)
    if op in _BUCKET_HANDLERS:
        if op in _CHECKSUM_REQUIRED:
            _require_checksum(req)
            _check_digests(req)
        return _BUCKET_HANDLERS[op](store, req, bucket)
    if op == "PutObject":
        return _put_object(store, req, bucket, key)
    if op == "GetObject":
        return _get_object(store, req, bucket, key, head=False)
    if op == "HeadObject":
        return _get_object(store, req, bucket, key, head=True)
    if op == "DeleteObject":
        return _delete_object(store, req, bucket, key)
    raise _not_implemented(op, req.method, req.path)


# -- state dump -------------------------------------------------------------------------------

def dump_state(store):
    out = {}
    for name, b in sorted(_state(store).buckets.items()):
        policy = None
        if b.policy is not None:
            try:
                policy = json.loads(b.policy)
            except ValueError:
                policy = b.policy
        objects = []
        for key in sorted(b.objects, key=_utf8):
            for v in b.objects[key]:
                entry = {"key": key, "version_id": v.version_id,
                         "latest": v is b.objects[key][-1]}
                if v.delete_marker:
                    entry["delete_marker"] = True
                else:
                    entry.update({"size": v.size, "etag": v.etag,
                                  "content_type": v.content_type, "metadata": dict(v.metadata),
                                  "sse": v.sse, "storage_class": v.storage_class,
                                  "last_modified": v.last_modified})
                objects.append(entry)
        out[name] = {
            "name": name, "region": b.region, "location_constraint": b.location_constraint,
            "created": b.created, "tags": dict(b.tags) if b.tags else None,
            "public_access_block": dict(b.public_access_block)
            if b.public_access_block is not None else None,
            "encryption": dict(b.encryption) if b.encryption is not None else None,
            "ownership_controls": b.ownership, "policy": policy,
            "versioning": b.versioning, "mfa_delete": b.mfa_delete, "objects": objects,
        }
    return {"buckets": out}
