"""S3 Object Lock: a bucket's lock configuration (PutObjectLockConfiguration,
GetObjectLockConfiguration), each version's retention and legal hold (PutObjectRetention,
GetObjectRetention, PutObjectLegalHold, GetObjectLegalHold), and the rules the other S3 modules
apply: the lock parameters of PutObject and the bucket's default retention, the lock headers of
GetObject/HeadObject, whether a version may be deleted, and whether versioning may change.

What real S3 does, and so fakeaws:
  * Object Lock is enabled at creation (CreateBucket with x-amz-bucket-object-lock-enabled:
    true, which turns versioning on too) or later by PutObjectLockConfiguration on a bucket
    whose versioning is Enabled (InvalidBucketState otherwise). It can never be turned off, and
    versioning can then not be suspended (InvalidBucketState, 409).
  * Retention (a mode and a retain-until date) and a legal hold belong to one version. A version
    whose retain-until date is in the future, or that has a legal hold, cannot be deleted: a
    DeleteObject naming its versionId is AccessDenied "Access Denied because object protected
    by object lock.", and so is that key in a DeleteObjects. GOVERNANCE gives way to
    x-amz-bypass-governance-retention: true from a caller allowed s3:BypassGovernanceRetention;
    COMPLIANCE and a legal hold give way to nobody (not even the account root).
  * A DeleteObject without a versionId only adds a delete marker, and a PutObject to the key a
    new version: the locked version stays and is read with ?versionId. Delete markers are never
    locked.
  * A retention may always be extended. A COMPLIANCE retention in force can never be shortened,
    removed or turned into GOVERNANCE; a GOVERNANCE one only with the bypass (which turning it
    into COMPLIANCE needs too, as on S3). Both are AccessDenied otherwise.
  * PutObject with lock parameters - its own headers, or a default retention on the bucket -
    needs Content-MD5 or an x-amz-checksum-* header: InvalidRequest "Content-MD5 OR
    x-amz-checksum- HTTP header is required for Put Object requests with Object Lock
    parameters". x-amz-sdk-checksum-algorithm alone is no checksum (S3 wants the value with it,
    in a header or a trailer, and fakeaws takes no aws-chunked bodies).
  * Lock parameters on a bucket without Object Lock are InvalidRequest "Bucket is missing Object
    Lock Configuration".
  * GetObject/HeadObject show x-amz-object-lock-mode and -retain-until-date only to callers
    allowed s3:GetObjectRetention, and x-amz-object-lock-legal-hold only to those allowed
    s3:GetObjectLegalHold (the root always).
The clock is the real one: a retention ends when its date passes. Dates are kept to the
millisecond and written as S3 writes them (2030-01-01T00:00:00.000Z). Not implemented: the
x-amz-bucket-object-lock-token of replicated buckets (ignored), and the s3:object-lock-*
condition keys other than those the request carries.
"""

import datetime
import time

from .core import AwsError, Authz, Response
from .s3_common import (_bucket_arn, _children, _el, _find_version, _malformed_xml, _parse_xml,
                        _single, _text, _xml_doc)

MODES = ("GOVERNANCE", "COMPLIANCE")
_LEGAL_HOLD = ("ON", "OFF")
_DAY = 86400
_MISSING_CHECKSUM = ("Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object "
                     "requests with Object Lock parameters")


# -- errors and small helpers -----------------------------------------------------------------

def _locked():
    return AwsError("AccessDenied", "Access Denied because object protected by object lock.",
                    status=403)


def _no_lock_configuration():
    return AwsError("InvalidRequest", "Bucket is missing Object Lock Configuration")


def _invalid_argument(message, name=None, value=None):
    extra = {}
    if name is not None:
        extra = {"ArgumentName": name, "ArgumentValue": value if value is not None else ""}
    return AwsError("InvalidArgument", message, extra=extra)


def _no_object_lock():
    return AwsError("NoSuchObjectLockConfiguration",
                    "The specified object does not have a ObjectLock configuration", status=404)


def parse_date(value):
    """Epoch seconds (to the millisecond) of an ISO 8601 date-time, UTC unless it says; None
    when it is not one."""
    text = (value or "").strip()
    if not text or "T" not in text:
        return None
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return round(dt.timestamp(), 3)


def iso_date(epoch):
    """S3's form of a retain-until date: 2030-01-01T00:00:00.000Z."""
    ms = int(round(epoch * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def _bypass_requested(req):
    return (req.header("x-amz-bypass-governance-retention") or "").strip().lower() == "true"


def _allowed(store, req, action, resource):
    """Whether the caller may do action on resource (the root always may)."""
    if req.caller is None or req.caller.is_root:
        return True
    from . import policy
    try:
        policy.check(store, req, [Authz(action, resource)])
    except AwsError:
        return False
    return True


def _object_arn(bucket, key):
    return f"{_bucket_arn(bucket.name)}/{key}"


def _may_bypass(store, req, bucket, obj):
    return _bypass_requested(req) and _allowed(store, req, "s3:BypassGovernanceRetention",
                                               _object_arn(bucket, obj.key))


def _retention_in_force(obj, now):
    return obj.lock_mode is not None and obj.lock_until is not None and obj.lock_until > now


def _has_checksum(req):
    return req.header("content-md5") is not None or any(
        h.startswith("x-amz-checksum-") for h in req.headers)


# -- rules the object operations apply ---------------------------------------------------------

def delete_refused(store, req, bucket, obj):
    """Whether deleting version obj for good (a delete naming its version id) is refused."""
    if obj.delete_marker:
        return False
    if obj.legal_hold == "ON":
        return True
    if not _retention_in_force(obj, time.time()):
        return False
    return not (obj.lock_mode == "GOVERNANCE" and _may_bypass(store, req, bucket, obj))


def check_delete(store, req, bucket, obj):
    """Raises S3's AccessDenied when version obj may not be deleted."""
    if delete_refused(store, req, bucket, obj):
        raise _locked()


def put_object_lock(req, bucket):
    """The (mode, retain-until, legal hold) a new version gets from PutObject's lock headers or
    the bucket's default retention; raises S3's errors for bad or misplaced lock headers and for
    lock parameters without an integrity header."""
    mode = req.header("x-amz-object-lock-mode")
    until_text = req.header("x-amz-object-lock-retain-until-date")
    hold = req.header("x-amz-object-lock-legal-hold")
    explicit = mode is not None or until_text is not None or hold is not None
    if explicit and not bucket.object_lock:
        raise _no_lock_configuration()
    if (mode is None) != (until_text is None):
        raise _invalid_argument("x-amz-object-lock-retain-until-date and x-amz-object-lock-mode "
                                "must both be supplied")
    until = None
    if mode is not None:
        if mode not in MODES:
            raise _invalid_argument("Unknown wormMode directive.", "x-amz-object-lock-mode", mode)
        until = parse_date(until_text)
        if until is None:
            raise _invalid_argument("The retain until date must be provided in ISO 8601 format",
                                    "x-amz-object-lock-retain-until-date", until_text)
        if until <= time.time():
            raise _invalid_argument("The retain until date must be in the future!",
                                    "x-amz-object-lock-retain-until-date", until_text)
    if hold is not None and hold not in _LEGAL_HOLD:
        raise _invalid_argument("Legal Hold must be either of 'ON' or 'OFF'",
                                "x-amz-object-lock-legal-hold", hold)
    default = bucket.lock_default if bucket.object_lock else None
    if (explicit or default is not None) and not _has_checksum(req):
        raise AwsError("InvalidRequest", _MISSING_CHECKSUM)
    if mode is None and default is not None:
        mode = default["Mode"]
        days = default["Days"] if "Days" in default else 365 * default["Years"]
        until = round(time.time() + days * _DAY, 3)
    return mode, until, hold


def get_object_headers(store, req, bucket, obj):
    """The x-amz-object-lock-* headers of a GetObject/HeadObject answer for this caller."""
    headers = {}
    arn = _object_arn(bucket, obj.key)
    if obj.lock_mode is not None and _allowed(store, req, "s3:GetObjectRetention", arn):
        headers["x-amz-object-lock-mode"] = obj.lock_mode
        headers["x-amz-object-lock-retain-until-date"] = iso_date(obj.lock_until)
    if obj.legal_hold is not None and _allowed(store, req, "s3:GetObjectLegalHold", arn):
        headers["x-amz-object-lock-legal-hold"] = obj.legal_hold
    return headers


def check_versioning_change(bucket, status):
    """PutBucketVersioning may not suspend versioning on a bucket with Object Lock."""
    if bucket.object_lock and status is not None and status != "Enabled":
        raise AwsError("InvalidBucketState", "An Object Lock configuration is present on this "
                       "bucket, so the versioning state cannot be changed.", status=409)


def authz_context(req):
    """The s3:object-lock-* condition keys of a PutObject."""
    ctx = {}
    mode = req.header("x-amz-object-lock-mode")
    until = parse_date(req.header("x-amz-object-lock-retain-until-date"))
    if mode is not None:
        ctx["s3:object-lock-mode"] = mode
    if until is not None:
        ctx["s3:object-lock-retain-until-date"] = iso_date(until)
        ctx["s3:object-lock-remaining-retention-days"] = str(
            max(0, int((until - time.time()) // _DAY)))
    if req.header("x-amz-object-lock-legal-hold") is not None:
        ctx["s3:object-lock-legal-hold"] = req.header("x-amz-object-lock-legal-hold")
    return ctx


def dump_version(obj):
    """The lock fields of one version in the state dump."""
    return {"lock_mode": obj.lock_mode, "retain_until": obj.lock_until,
            "retain_until_iso": iso_date(obj.lock_until) if obj.lock_until is not None else None,
            "legal_hold": obj.legal_hold}


# -- the bucket's configuration ----------------------------------------------------------------

def _parse_default_retention(rule_el):
    default = _single(_children(rule_el, {"DefaultRetention"}), "DefaultRetention",
                      required=True)
    parts = _children(default, {"Mode", "Days", "Years"})
    mode = _text(_single(parts, "Mode", required=True))
    days_el, years_el = _single(parts, "Days"), _single(parts, "Years")
    if mode not in MODES or (days_el is None) == (years_el is None):
        raise _malformed_xml()
    unit, el = ("Days", days_el) if days_el is not None else ("Years", years_el)
    try:
        value = int(_text(el))
    except ValueError:
        raise _malformed_xml()
    if value <= 0:
        raise _invalid_argument("Default retention period must be a positive integer value",
                                unit, str(value))
    return {"Mode": mode, unit: value}


def put_object_lock_configuration(store, req, bucket):
    root = _parse_xml(req.body, "ObjectLockConfiguration")
    children = _children(root, {"ObjectLockEnabled", "Rule"})
    enabled = _single(children, "ObjectLockEnabled")
    if enabled is None or _text(enabled) != "Enabled":
        raise _malformed_xml()
    rule = _single(children, "Rule")
    default = _parse_default_retention(rule) if rule is not None else None
    if not bucket.object_lock:
        # Enabling it on an existing bucket (allowed since 2023) needs versioning on first.
        if bucket.versioning != "Enabled":
            raise AwsError("InvalidBucketState", "Versioning must be 'Enabled' on the bucket "
                           "to apply a Object Lock configuration", status=409)
        bucket.object_lock = True
    bucket.lock_default = default
    return Response(200)


def get_object_lock_configuration(store, req, bucket):
    if not bucket.object_lock:
        raise AwsError("ObjectLockConfigurationNotFoundError", "Object Lock configuration does "
                       "not exist for this bucket", status=404, extra={"BucketName": bucket.name})
    inner = _el("ObjectLockEnabled", "Enabled")
    default = bucket.lock_default
    if default is not None:
        unit = "Days" if "Days" in default else "Years"
        inner += (f"<Rule><DefaultRetention>{_el('Mode', default['Mode'])}"
                  f"<{unit}>{default[unit]}</{unit}></DefaultRetention></Rule>")
    return _xml_doc("ObjectLockConfiguration", inner)


# -- one version's retention and legal hold ----------------------------------------------------

def _locked_version(store, req, bucket, key, op):
    """The version a retention or legal-hold request names, on a bucket with Object Lock."""
    if not bucket.object_lock:
        raise _no_lock_configuration()
    return _find_version(store, req, bucket, key, op)


def put_object_retention(store, req, bucket, key):
    obj = _locked_version(store, req, bucket, key, "PutObjectRetention")
    root = _parse_xml(req.body, "Retention")
    parts = _children(root, {"Mode", "RetainUntilDate"})
    mode_el, until_el = _single(parts, "Mode"), _single(parts, "RetainUntilDate")
    if (mode_el is None) != (until_el is None):
        raise _malformed_xml()
    mode = until = None
    if mode_el is not None:
        mode = _text(mode_el)
        until = parse_date(_text(until_el))
        if mode not in MODES or until is None:
            raise _malformed_xml()
        if until <= time.time():
            raise _invalid_argument("The retain until date must be in the future!",
                                    "RetainUntilDate", _text(until_el))
    if _retention_in_force(obj, time.time()):
        weaker = mode is None or mode != obj.lock_mode or until < obj.lock_until
        if weaker and not (obj.lock_mode == "GOVERNANCE"
                           and _may_bypass(store, req, bucket, obj)):
            raise _locked()
    obj.lock_mode, obj.lock_until = mode, until
    return Response(200)


def get_object_retention(store, req, bucket, key):
    obj = _locked_version(store, req, bucket, key, "GetObjectRetention")
    if obj.lock_mode is None:
        raise _no_object_lock()
    return _xml_doc("Retention", _el("Mode", obj.lock_mode) +
                    _el("RetainUntilDate", iso_date(obj.lock_until)))


def put_object_legal_hold(store, req, bucket, key):
    obj = _locked_version(store, req, bucket, key, "PutObjectLegalHold")
    root = _parse_xml(req.body, "LegalHold")
    status = _text(_single(_children(root, {"Status"}), "Status", required=True))
    if status not in _LEGAL_HOLD:
        raise _malformed_xml()
    obj.legal_hold = status
    return Response(200)


def get_object_legal_hold(store, req, bucket, key):
    obj = _locked_version(store, req, bucket, key, "GetObjectLegalHold")
    if obj.legal_hold is None:
        raise _no_object_lock()
    return _xml_doc("LegalHold", _el("Status", obj.legal_hold))
