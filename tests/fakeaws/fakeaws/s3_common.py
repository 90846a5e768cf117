"""What the S3 modules share: the service's state, the XML and error helpers, the lookup of the
object version a request names, and the checks that more than one of them makes.

s3.py (request routing), s3_buckets.py (bucket operations), s3_objects.py (listings and object
operations) and s3_lock.py (Object Lock) all import from this module, and it imports none of
them, so the S3 modules import one another without a cycle. The state classes (S3State, Bucket,
ObjectVersion), SERVICE and XMLNS are defined here and re-exported by s3.py, whose public surface
they remain.
"""

import base64
import binascii
import hashlib
import re
import time
import xml.etree.ElementTree as ET
import zlib

from .core import AwsError, Authz, Response, rfc1123, xml_escape

SERVICE = "s3"
XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"

# Checked by more than one module.
_SSE_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")
_GRANT_HEADERS = ("x-amz-grant-full-control", "x-amz-grant-read", "x-amz-grant-read-acp",
                  "x-amz-grant-write", "x-amz-grant-write-acp")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_TAG_CHARS = re.compile(r"^[\w\s+\-=._:/@]*$", re.UNICODE)


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
        # Object Lock (s3_lock.py): enabled for good once on; the default retention of new
        # versions, {"Mode": "COMPLIANCE", "Days": 1} (or "Years"), or None.
        self.object_lock = False
        self.lock_default = None
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
        # Object Lock (s3_lock.py): the retention mode ("GOVERNANCE", "COMPLIANCE") and its
        # retain-until date (epoch seconds, to the millisecond), or None; the legal hold
        # ("ON", "OFF") or None when never set.
        self.lock_mode = None
        self.lock_until = None
        self.legal_hold = None

    @property
    def size(self):
        return len(self.body)


def _state(store):
    return store.services[SERVICE]


# -- errors and the bucket lookup -------------------------------------------------------------

def _not_implemented(name, method, detail):
    return AwsError("NotImplemented",
                    f"fakeaws does not implement the S3 operation {name} ({method} {detail})",
                    status=501)


def _access_denied(message="Access Denied"):
    return AwsError("AccessDenied", message, status=403)


def _no_such_bucket(name):
    return AwsError("NoSuchBucket", "The specified bucket does not exist", status=404,
                    extra={"BucketName": name})


def _bucket_arn(bucket):
    return f"arn:aws:s3:::{bucket}"


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


# -- versions: the one a request names --------------------------------------------------------

def _no_such_key(key):
    return AwsError("NoSuchKey", "The specified key does not exist.", status=404,
                    extra={"Key": key})


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


def _parse_xml_bool(elem):
    value = _text(elem).lower()
    if value not in ("true", "false"):
        raise _malformed_xml()
    return value == "true"


# -- common checks ----------------------------------------------------------------------------

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


# -- owner, integer parameters, UTF-8 keys ----------------------------------------------------

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


def _utf8(s):
    return s.encode("utf-8", "surrogatepass")
