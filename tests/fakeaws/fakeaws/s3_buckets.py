"""S3 bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
GetBucketLocation and the bucket configuration sub-resources (the public access block, default
encryption, ownership controls, the bucket policy, tagging and versioning). Object Lock's
configuration is s3_lock.py's; CreateBucket enables it and PutBucketVersioning asks s3_lock
whether versioning may change.

s3.handle() calls these handlers. ListBuckets, CreateBucket, HeadBucket, DeleteBucket and
GetBucketLocation get the bucket's name; every other handler here gets the Bucket, which handle()
has already looked up, and for the operations that require one, handle() has already checked the
Content-MD5 or x-amz-checksum-* header. A bucket policy is validated here, as S3 validates it
when it is put; policy.py evaluates it, through s3.bucket_policy().

The dialect settings (dialect.py) apply here: create_bucket_tags (what CreateBucket does with
the <Tags> of its configuration), bucket_defaults (whether a new bucket gets S3's 2023
defaults, and whether DeleteBucketEncryption restores SSE-S3 or removes the configuration) and
moto_style (moto's ways of answering: a re-create in us-east-1 is a 200, PutBucketPolicy
answers `True`, GetBucketVersioning's root is GetBucketVersioningResponse, ...).
"""

import fnmatch
import json
import re
import time

from . import s3_lock
from .core import AwsError, Response, xml_escape
from .s3_common import (XMLNS, Bucket, _GRANT_HEADERS, _IPV4, _SSE_ALGORITHMS, _access_denied,
                        _bool, _bucket_arn, _check_tags, _children, _el, _get_bucket, _iso_ms,
                        _malformed_xml, _max_int, _not_implemented, _owner_xml, _parse_xml,
                        _parse_xml_bool, _single, _state, _text, _xml_doc)
from .s3_objects import _decode_token, _encode_token

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
_CANNED_BUCKET_ACLS = ("private", "public-read", "public-read-write", "authenticated-read")
_MAX_POLICY_SIZE = 20 * 1024
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
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


# -- handlers: service and buckets ------------------------------------------------------------

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
    if req.moto_style:
        items = "".join(
            f"<Bucket><Name>{xml_escape(n)}</Name>"
            f"<CreationDate>{_iso_ms(state.buckets[n].created)}</CreationDate></Bucket>"
            for n in names)
        inner = f"<Buckets>{items}</Buckets>{_owner_xml(store)}"
        if truncated:
            inner += _el("ContinuationToken", _encode_token(names[-1]))
    return _xml_doc("ListAllMyBucketsResult", inner)


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
            mode = store.config["create_bucket_tags"]
            if mode == "malformed":
                # S3 before tags at creation: <Tags> was not in CreateBucketConfiguration's schema.
                raise _malformed_xml()
            if mode is True:
                tags = _parse_tag_list(tag_el, "bucket")
            # False: moto 5.2.1 reads only the LocationConstraint and drops the tags unread.
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
    defaults = store.config["bucket_defaults"]
    # Before April 2023 (and in moto) a bucket had no ownership controls unless asked for.
    effective_ownership = ownership or ("BucketOwnerEnforced" if defaults else None)
    if effective_ownership == "BucketOwnerEnforced" and (
            (acl is not None and acl != "private") or any(req.header(h) for h in _GRANT_HEADERS)):
        raise AwsError("InvalidBucketAclWithObjectOwnership", "Bucket cannot have ACLs set with "
                       "ObjectOwnership's BucketOwnerEnforced setting")
    # Real S3 answered 200 to a re-create of your own bucket in legacy us-east-1; S3 now answers
    # 409 BucketAlreadyOwnedByYou in every region, and so does fakeaws, except in moto_style:
    # moto keeps the legacy 200 for a us-east-1 bucket re-created through us-east-1.
    existing = state.buckets.get(name)
    if existing is not None and req.moto_style and existing.region == "us-east-1" \
            and region == "us-east-1":
        return Response(200, b"", headers={"Location": f"/{name}"})
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
    if not defaults:
        bucket.public_access_block = None
        bucket.encryption = None
    bucket.tags = tags or None
    if req.header("x-amz-bucket-object-lock-enabled", "").strip().lower() == "true":
        # Object Lock needs versioning, so S3 turns it on with the lock (s3_lock.py).
        bucket.object_lock = True
        bucket.versioning = "Enabled"
    state.buckets[name] = bucket
    location = f"/{name}" if region == "us-east-1" or req.moto_style \
        else f"http://{name}.s3.amazonaws.com/"
    return Response(200, b"", headers={"Location": location})


def _head_bucket(store, req, name):
    bucket = _state(store).buckets.get(name)
    if bucket is None and name in store.foreign_buckets:
        raise AwsError("AccessDenied", "Forbidden", status=403,
                       headers={"x-amz-bucket-region": store.region})
    bucket = _get_bucket(store, req, name)
    if req.moto_style:
        return Response(200, b"", content_type="application/xml",
                        headers={"x-amz-bucket-region": bucket.region})
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
        # moto leaves out the BucketName that S3's other "not set" errors carry.
        raise AwsError("NoSuchPublicAccessBlockConfiguration", "The public access block "
                       "configuration was not found", status=404,
                       extra={} if req.moto_style else {"BucketName": bucket.name})
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
    # Without the 2023 defaults (bucket_defaults false, as before and in moto) it is removed.
    if store.config["bucket_defaults"]:
        bucket.encryption = {"SSEAlgorithm": "AES256", "KMSMasterKeyID": None,
                             "BucketKeyEnabled": False}
    else:
        bucket.encryption = None
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
    if req.moto_style:
        return Response(200, b"True", content_type="application/xml")
    return Response(204)


def _get_bucket_policy(store, req, bucket):
    if bucket.policy is None:
        raise AwsError("NoSuchBucketPolicy", "The bucket policy does not exist", status=404,
                       extra={"BucketName": bucket.name})
    return Response(200, bucket.policy,
                    content_type="application/xml" if req.moto_style else "application/json")


def _delete_bucket_policy(store, req, bucket):
    bucket.policy = None
    return Response(204)


# -- tagging ----------------------------------------------------------------------------------

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
    s3_lock.check_versioning_change(bucket, status)
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
    if req.moto_style:
        if not inner:
            return Response(200, f'<?xml version="1.0" encoding="UTF-8"?>\n'
                                 f'<GetBucketVersioningResponse xmlns="{XMLNS}"/>',
                            content_type="application/xml")
        return _xml_doc("GetBucketVersioningResponse", inner)
    return _xml_doc("VersioningConfiguration", inner)
