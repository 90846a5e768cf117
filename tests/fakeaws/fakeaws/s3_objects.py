"""S3 listings and object operations: ListObjects, ListObjectsV2 and ListObjectVersions
(prefixes, delimiters, markers, continuation tokens and URL encoding), and PutObject, GetObject,
HeadObject, DeleteObject and DeleteObjects (versioning semantics, byte ranges, conditional
headers, server-side encryption, object tags, and the Object Lock rules of s3_lock.py: a new
version's retention, the lock headers, the refusal to delete a locked version).

s3.handle() calls these handlers with the Bucket it has already looked up. Keys are listed in the
order of their UTF-8 bytes, as S3 lists them. The continuation tokens defined here are also
ListBuckets's (s3_buckets.py). With moto_style (dialect.py) the listings are written the way
moto 5.2.1 writes them (_moto_list_v2, _moto_list_v1).
"""

import base64
import binascii
import email.utils
import hashlib
import re
import secrets
import string
import time
from urllib.parse import quote

from . import s3_lock
from .core import AwsError, Authz, Response, rfc1123
from .s3_common import (ObjectVersion, _GRANT_HEADERS, _SSE_ALGORITHMS, _bool, _bucket_arn,
                        _check_digests, _check_tags, _children, _el, _find_version,
                        _invalid_tag, _iso_ms, _malformed_xml, _max_int, _no_such_key,
                        _not_implemented, _owner_xml, _parse_xml, _parse_xml_bool, _single,
                        _utf8, _xml_doc)

_STORAGE_CLASSES = {"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA",
                    "INTELLIGENT_TIERING", "GLACIER", "DEEP_ARCHIVE", "OUTPOSTS", "GLACIER_IR",
                    "SNOW", "EXPRESS_ONEZONE"}
_CANNED_OBJECT_ACLS = ("private", "public-read", "public-read-write", "authenticated-read",
                       "aws-exec-read", "bucket-owner-read", "bucket-owner-full-control")
# Stored with the object and returned by GetObject/HeadObject.
_OBJECT_HEADERS = ("Cache-Control", "Content-Disposition", "Content-Encoding",
                   "Content-Language", "Expires", "x-amz-website-redirect-location")
_MAX_KEY_BYTES = 1024
_MAX_METADATA_BYTES = 2048


# -- listings ---------------------------------------------------------------------------------

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


def _list_result(bucket, inner, entries, encoding, owner):
    """A ListBucketResult (V1 or V2): the header elements in inner, then the keys' Contents, then
    the CommonPrefixes."""
    for kind, name in entries:
        if kind == "key":
            inner.append(_contents_xml(bucket, name, encoding, owner))
    for kind, name in entries:
        if kind == "prefix":
            inner.append(f"<CommonPrefixes>{_el('Prefix', _enc(name, encoding))}"
                         f"</CommonPrefixes>")
    return _xml_doc("ListBucketResult", "".join(inner))


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
    if req.moto_style:
        return _moto_list_v2(bucket, entries, truncated, last, prefix, delimiter, max_keys,
                             encoding, start_after, owner)
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
    return _list_result(bucket, inner, entries, encoding, owner)


def _list_objects(store, req, bucket):
    prefix = req.params.get("prefix", "")
    delimiter = req.params.get("delimiter", "")
    max_keys = min(_max_int(req, "max-keys", 1000), 1000)
    encoding = _encoding_type(req)
    marker = req.params.get("marker", "")
    entries, truncated, last = _collect(bucket.live_keys(), prefix, delimiter, max_keys,
                                        after_item=marker or None)
    if req.moto_style:
        return _moto_list_v1(store, req, bucket, entries, truncated, last, prefix, delimiter,
                             max_keys, encoding)
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
    return _list_result(bucket, inner, entries, encoding, _owner_xml(store))


def _mel(name, value):
    """An element as moto writes it: empty ones self-closed (<Prefix/>)."""
    return f"<{name}/>" if value == "" else _el(name, value)


def _moto_contents(bucket, key, encoding, owner):
    """A <Contents> as moto writes it: the ETag's quotes unescaped, the Owner last."""
    obj = bucket.current(key)
    return (f"<Contents>{_el('Key', _enc(key, encoding))}"
            f"<LastModified>{_iso_ms(obj.last_modified)}</LastModified>"
            f"<ETag>{obj.etag}</ETag><Size>{obj.size}</Size>"
            f"{_el('StorageClass', obj.storage_class)}{owner}</Contents>")


def _moto_entries(bucket, entries, encoding, owner):
    contents = "".join(_moto_contents(bucket, name, encoding, owner)
                       for kind, name in entries if kind == "key")
    prefixes = "".join(f"<CommonPrefixes>{_el('Prefix', _enc(name, encoding))}</CommonPrefixes>"
                       for kind, name in entries if kind == "prefix")
    return contents, prefixes


def _moto_list_v2(bucket, entries, truncated, last, prefix, delimiter, max_keys, encoding,
                  start_after, owner):
    """ListObjectsV2 as moto writes it: the model's element order, empty elements self-closed,
    no ContinuationToken echoed, and max-keys=0 never truncated."""
    if max_keys == 0:
        truncated = False
    contents, prefixes = _moto_entries(bucket, entries, encoding, owner)
    inner = [f"<IsTruncated>{_bool(truncated)}</IsTruncated>", contents,
             _el("Name", bucket.name), _mel("Prefix", _enc(prefix, encoding))]
    if delimiter:
        inner.append(_el("Delimiter", _enc(delimiter, encoding)))
    inner.append(f"<MaxKeys>{max_keys}</MaxKeys>")
    inner.append(prefixes)
    if encoding:
        inner.append(_el("EncodingType", encoding))
    inner.append(f"<KeyCount>{len(entries)}</KeyCount>")
    if truncated:
        inner.append(_el("NextContinuationToken", _encode_token(last)))
    if start_after is not None:
        inner.append(_mel("StartAfter", _enc(start_after, encoding)))
    return _xml_doc("ListBucketResult", "".join(inner))


def _moto_list_v1(store, req, bucket, entries, truncated, last, prefix, delimiter, max_keys,
                  encoding):
    """ListObjects as moto writes it: no Marker, Prefix only when one was sent."""
    if max_keys == 0:
        truncated = False
    contents, prefixes = _moto_entries(bucket, entries, encoding, _owner_xml(store))
    inner = [f"<IsTruncated>{_bool(truncated)}</IsTruncated>"]
    if truncated and delimiter:
        inner.append(_el("NextMarker", _enc(last, encoding)))
    inner += [contents, _el("Name", bucket.name)]
    if "prefix" in req.params:
        inner.append(_mel("Prefix", _enc(prefix, encoding)))
    if delimiter:
        inner.append(_el("Delimiter", _enc(delimiter, encoding)))
    inner.append(f"<MaxKeys>{max_keys}</MaxKeys>")
    inner.append(prefixes)
    if encoding:
        inner.append(_el("EncodingType", encoding))
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
    # URL-safe like S3's, but never led by "-": a command line would take "-..." for an option
    # (awscli's argparse does: `--version-id -x` is "expected one argument")
    return secrets.choice(string.ascii_letters) + secrets.token_urlsafe(24)[:31]


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
    _check_digests(req)
    lock_mode, lock_until, legal_hold = s3_lock.put_object_lock(req, bucket)
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
    obj.lock_mode, obj.lock_until, obj.legal_hold = lock_mode, lock_until, legal_hold
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
    headers.update(s3_lock.get_object_headers(store, req, bucket, obj))

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


def _named_version(bucket, key, version_id):
    """The version of key with this id, or None (also for version_id None: no version named)."""
    for v in bucket.objects.get(key) or []:
        if version_id is not None and v.version_id == version_id:
            return v
    return None


def _delete_object(store, req, bucket, key):
    target = _named_version(bucket, key, req.params.get("versionId"))
    if target is not None:
        s3_lock.check_delete(store, req, bucket, target)
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
        target = _named_version(bucket, key, version_id)
        if target is not None and s3_lock.delete_refused(store, req, bucket, target):
            out.append(f"<Error>{_el('Key', key)}{_el('VersionId', version_id)}"
                       f"<Code>AccessDenied</Code><Message>Access Denied because object "
                       f"protected by object lock.</Message></Error>")
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
