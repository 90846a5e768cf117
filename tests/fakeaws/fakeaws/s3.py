"""Amazon S3 (REST-XML): buckets, their configuration sub-resources and plain objects.

Addressing: path style (http://127.0.0.1:port/bucket/key) and virtual-hosted style (Host
"bucket.localhost:port", "bucket.s3.localhost", "bucket.s3.us-east-1.amazonaws.com",
"bucket.127.0.0.1:port"). The key is the percent-decoded path; S3 never normalizes it.

Implemented operations (see OPERATIONS): buckets (Create/Head/Delete/List, GetBucketLocation),
the public access block, default encryption, ownership controls, bucket policy, bucket tagging,
versioning and Object Lock sub-resources, objects (Put/Get/Head/Delete/DeleteObjects, with
versioning and Object Lock semantics), their retention and legal hold, and listings
(ListObjects, ListObjectsV2, ListObjectVersions). Every other S3
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
The dialect settings (dialect.py: create_bucket_tags, bucket_defaults, moto_style) turn the
first three back, or into what moto 5.2.1 answers; s3_buckets.py and s3_objects.py apply them.

The code is in five modules. This one is the service module the server loads (the contract in
core.py): it names the operation a request is for, says what the request needs in IAM terms,
dispatches it to a handler and dumps the state. s3_buckets.py holds the bucket operations,
s3_objects.py the listings and object operations, s3_lock.py Object Lock (its operations and
the rules the others apply), and s3_common.py the state classes and the helpers that more than
one of them uses; SERVICE, XMLNS and the state classes are defined there
and importable from here.
"""

import json
import re
import xml.etree.ElementTree as ET

from .core import AwsError, Authz
from . import s3_lock
from .s3_buckets import (_create_bucket, _delete_bucket, _delete_bucket_encryption,
                         _delete_bucket_policy, _delete_bucket_tagging, _delete_ownership_controls,
                         _delete_public_access_block, _get_bucket_encryption,
                         _get_bucket_location, _get_bucket_policy, _get_bucket_tagging,
                         _get_bucket_versioning, _get_ownership_controls,
                         _get_public_access_block, _head_bucket, _list_buckets,
                         _put_bucket_encryption, _put_bucket_policy, _put_bucket_tagging,
                         _put_bucket_versioning, _put_ownership_controls,
                         _put_public_access_block)
from .s3_common import (SERVICE, XMLNS, Bucket, ObjectVersion, S3State,  # noqa: F401 (public)
                        _GRANT_HEADERS, _IPV4, _bucket_arn, _check_digests, _get_bucket, _local,
                        _not_implemented, _state, _text, _utf8)
from .s3_objects import (_delete_object, _delete_objects, _get_object, _list_object_versions,
                         _list_objects, _list_objects_v2, _put_object)

PROTOCOL = "rest-xml"

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
    "PutObjectLockConfiguration", "GetObjectLockConfiguration",
    "PutObjectRetention", "GetObjectRetention", "PutObjectLegalHold", "GetObjectLegalHold",
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
    ("PUT", "object-lock"): "PutObjectLockConfiguration",
    ("GET", "object-lock"): "GetObjectLockConfiguration",
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

# (method, sub-resource) -> operation, for the object sub-resources implemented here.
_OBJECT_OPS = {
    ("PUT", "retention"): "PutObjectRetention",
    ("GET", "retention"): "GetObjectRetention",
    ("PUT", "legal-hold"): "PutObjectLegalHold",
    ("GET", "legal-hold"): "GetObjectLegalHold",
}

# Every other object sub-resource of the S3 API, by method.
_OBJECT_UNIMPLEMENTED = {
    "acl": {"GET": "GetObjectAcl", "PUT": "PutObjectAcl"},
    "annotation": {"GET": "GetObjectAnnotation", "PUT": "PutObjectAnnotation",
                   "DELETE": "DeleteObjectAnnotation"},
    "attributes": {"GET": "GetObjectAttributes"},
    "encryption": {"PUT": "UpdateObjectEncryption"},
    "renameObject": {"PUT": "RenameObject"},
    "restore": {"POST": "RestoreObject"},
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
                      "DeleteObjects", "PutObjectLockConfiguration", "PutObjectRetention",
                      "PutObjectLegalHold"}

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
    "PutObjectLockConfiguration": ("s3:PutBucketObjectLockConfiguration", "bucket"),
    "GetObjectLockConfiguration": ("s3:GetBucketObjectLockConfiguration", "bucket"),
    "PutObjectRetention": ("s3:PutObjectRetention", "object"),
    "GetObjectRetention": ("s3:GetObjectRetention", "object"),
    "PutObjectLegalHold": ("s3:PutObjectLegalHold", "object"),
    "GetObjectLegalHold": ("s3:GetObjectLegalHold", "object"),
    # Checked key by key in the handler: a denied key is an <Error> in the result.
    "DeleteObjects": (None, "bucket"),
}

_S3_ENDPOINT_LABEL = re.compile(
    r"^s3(-(external-\d|website|fips|accelerate|dualstack|accesspoint|control|object-lambda"
    r"|[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d+))*$")


# -- state ------------------------------------------------------------------------------------

def new_state(store):
    return S3State()


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
    subs = [n for n in names if n in {sub for _, sub in _OBJECT_OPS}]
    if subs:
        op = _OBJECT_OPS.get((method, subs[0]))
        if op is None:
            raise _method_not_allowed(req, "OBJECT")
        return op
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
        ctx.update(s3_lock.authz_context(req))
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
        # Object Lock at creation: its configuration and the versioning it turns on.
        if req.header("x-amz-bucket-object-lock-enabled", "").strip().lower() == "true":
            needs.append(Authz("s3:PutBucketObjectLockConfiguration", resource, ctx))
            needs.append(Authz("s3:PutBucketVersioning", resource, ctx))
    if op == "PutObject":
        if req.header("x-amz-tagging") is not None:
            needs.append(Authz("s3:PutObjectTagging", resource, ctx))
        if req.header("x-amz-acl") is not None or any(req.header(h) for h in _GRANT_HEADERS):
            needs.append(Authz("s3:PutObjectAcl", resource, ctx))
        if req.header("x-amz-object-lock-mode") is not None \
                or req.header("x-amz-object-lock-retain-until-date") is not None:
            needs.append(Authz("s3:PutObjectRetention", resource, ctx))
        if req.header("x-amz-object-lock-legal-hold") is not None:
            needs.append(Authz("s3:PutObjectLegalHold", resource, ctx))
    return needs


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


def bucket_policy(store, bucket_name):
    """The parsed policy of one of this account's buckets, or None (for IAM/policy.py)."""
    bucket = _state(store).buckets.get(bucket_name)
    if bucket is None or bucket.policy is None:
        return None
    try:
        return json.loads(bucket.policy)
    except ValueError:
        return None


# -- dispatch ---------------------------------------------------------------------------------

def _require_checksum(req):
    if req.header("content-md5") is None and not any(
            h.startswith("x-amz-checksum-") for h in req.headers):
        raise AwsError("InvalidRequest",
                       "Missing required header for this request: Content-MD5")


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
    "PutObjectLockConfiguration": s3_lock.put_object_lock_configuration,
    "GetObjectLockConfiguration": s3_lock.get_object_lock_configuration,
}

# Object sub-resources: handler(store, req, bucket, key).
_OBJECT_HANDLERS = {
    "PutObjectRetention": s3_lock.put_object_retention,
    "GetObjectRetention": s3_lock.get_object_retention,
    "PutObjectLegalHold": s3_lock.put_object_legal_hold,
    "GetObjectLegalHold": s3_lock.get_object_legal_hold,
}


def _checksums(req, op):
    if op in _CHECKSUM_REQUIRED:
        if not req.moto_style:  # moto requires no Content-MD5
            _require_checksum(req)
        _check_digests(req)


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
        _checksums(req, op)
        return _BUCKET_HANDLERS[op](store, req, bucket)
    if op in _OBJECT_HANDLERS:
        _checksums(req, op)
        return _OBJECT_HANDLERS[op](store, req, bucket, key)
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
                    entry.update(s3_lock.dump_version(v))
                objects.append(entry)
        out[name] = {
            "name": name, "region": b.region, "location_constraint": b.location_constraint,
            "created": b.created, "tags": dict(b.tags) if b.tags else None,
            "public_access_block": dict(b.public_access_block)
            if b.public_access_block is not None else None,
            "encryption": dict(b.encryption) if b.encryption is not None else None,
            "ownership_controls": b.ownership, "policy": policy,
            "versioning": b.versioning, "mfa_delete": b.mfa_delete,
            "object_lock": {"enabled": b.object_lock,
                            "default_retention": dict(b.lock_default) if b.lock_default else None},
            "objects": objects,
        }
    return {"buckets": out}
