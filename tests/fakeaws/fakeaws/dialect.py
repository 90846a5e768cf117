"""Dialects: fakeaws answers as current AWS does (the default) or as moto 5.2.1 does, so that a
client's fallbacks for an emulator are tested on a machine without moto.

Three runtime settings (store.config, POST /_fakeaws/config, see control.py) choose the
behaviour; `--dialect aws|moto` on the command line sets all three at once:

    setting               --dialect aws   --dialect moto
    create_bucket_tags    true            false
    bucket_defaults       true            false
    moto_style            false           true

create_bucket_tags (s3_buckets.py)
    true        CreateBucket applies the <Tags> of its CreateBucketConfiguration (current S3).
    false       the <Tags> are accepted and silently dropped, as moto 5.2.1 does: 200, and
                GetBucketTagging then answers NoSuchTagSet.
    "malformed" the <Tags> element is refused with 400 MalformedXML, as S3 did before it
                accepted tags at creation (the element was not in its schema).

bucket_defaults (s3_common.py, s3_buckets.py)
    true   a new bucket has S3's 2023 defaults: Block Public Access on, SSE-S3 default
           encryption, BucketOwnerEnforced ownership; DeleteBucketEncryption restores SSE-S3.
    false  a new bucket has none of them, as before 2023 and as in moto: GetPublicAccessBlock
           answers NoSuchPublicAccessBlockConfiguration, GetBucketEncryption
           ServerSideEncryptionConfigurationNotFoundError, GetBucketOwnershipControls
           OwnershipControlsNotFoundError (all 404); objects are stored unencrypted unless the
           request asks for SSE; ACLs are allowed unless x-amz-object-ownership says
           BucketOwnerEnforced; DeleteBucketEncryption removes the configuration.

moto_style (this module, server.py and each service module)
    Responses are written the way moto 5.2.1 writes them. Reproduced:
    all services
      * the request id is in the header x-amzn-requestid (S3 too: no x-amz-request-id and no
        x-amz-id-2); moto's S3 HostId is a constant;
      * authentication and authorization failures of IAM, STS and Secrets Manager are moto's
        XML `<ErrorResponse><Errors><Error><Code/><Message/><Type>Sender</Type></Error></Errors>
        </ErrorResponse>` with HTTP 403 and a `status` header, also for Secrets Manager (a JSON
        service): codes SignatureDoesNotMatch, InvalidClientTokenId and AccessDenied ("User:
        <arn> is not authorized to perform: <action>", without the resource);
    S3
      * XML declaration `<?xml version="1.0" encoding="utf-8"?>` (lower-case utf-8);
      * empty-bodied answers carry Content-Type `text/html; charset=utf-8`;
      * NoSuchPublicAccessBlockConfiguration has no <BucketName>;
      * PutBucketPolicy answers 200 with the body `True` (moto's one capitalised boolean) and
        GetBucketPolicy has Content-Type application/xml;
      * GetBucketVersioning's root element is GetBucketVersioningResponse;
      * ListObjectsV2 in the model's element order (IsTruncated, Contents, Name, Prefix,
        Delimiter, MaxKeys, CommonPrefixes, EncodingType, KeyCount, NextContinuationToken,
        StartAfter), an empty element written `<Prefix/>`, the ContinuationToken not echoed,
        max-keys=0 answering IsTruncated false; ListObjects (V1) likewise, without <Marker> and
        with <Prefix> only when one was sent; ListBuckets without BucketRegion, Owner last;
      * CreateBucket of a bucket you own answers 200 in us-east-1 (409 BucketAlreadyOwnedByYou
        elsewhere), and its Location is `/name` in every region;
      * HeadBucket without x-amz-access-point-alias;
      * Content-MD5 is not required on the configuration PUTs and DeleteObjects;
    IAM and STS
      * no whitespace between elements, empty elements self-closed (<Users/>); IAM's
        CreateDate with microseconds
        (2026-12-03T07:08:18.907310Z); UserIds of 20 lower-case letters and digits;
      * the User element without PermissionsBoundary (moto drops it; fakeaws still enforces it);
      * ListAccessKeys without <IsTruncated> when it is not truncated; GetUserPolicy's
        document percent-encoded keeping "/" and encoding "*";
      * errors with moto's extra lower-case <message> element and the `status` header, and
        moto's messages for EntityAlreadyExists ("User <name> already exists"), a missing inline
        policy ("Policy <name> not found") and a missing access key (no final period);
      * GetCallerIdentity's elements in the order UserId, Account, Arn;
    Secrets Manager
      * success Content-Type `text/html; charset=utf-8`; errors `{"__type": ..., "message": ...}`
        (lower-case message) with Content-Type application/json, header X-Amzn-ErrorType, and
        HTTP 404 for ResourceNotFoundException;
      * epoch timestamps as integers (CreatedDate, LastChangedDate, LastAccessedDate) and floats
        (DeletionDate, DeletedDate);
      * DescribeSecret with explicit nulls (LastAccessedDate, always; NextRotationDate,
        DeletedDate, KmsKeyId), DeletedDate = the scheduled deletion date, the extra
        SecretVersionsToStages copy and no RotationEnabled, in moto's key order;
      * ListSecretVersionIds with the secret's name as its ARN, NextToken "" and no KmsKeyIds.
    Not reproduced (moto semantics rather than moto's way of writing): moto's
    INITIAL_NO_AUTH_ACTION_COUNT and its policy engine (conditions ignored, Resource "*" for
    IAM/STS/Secrets Manager, s3:HeadBucket, bucket policies denying object requests with an
    empty 403 body), its signature bug with %2F in query strings, inactive keys that still
    work, the 500 pages for unknown actions, PutSecretValue on a secret scheduled for deletion,
    ignored permissions boundaries, case-sensitive user names, and the LocationConstraint it
    accepts on the us-east-1 endpoint. (plain_http_is_secure=false comes closest to moto's
    handling of a bucket policy that denies aws:SecureTransport=false.)
"""

import re
import secrets
import time

DIALECTS = {
    "aws": {"create_bucket_tags": True, "bucket_defaults": True, "moto_style": False},
    "moto": {"create_bucket_tags": False, "bucket_defaults": False, "moto_style": True},
}

# The values each dialect setting accepts (checked by POST /_fakeaws/config).
ALLOWED = {
    "create_bucket_tags": (True, False, "malformed"),
    "bucket_defaults": (True, False),
    "moto_style": (True, False),
}

MOTO_HOST_ID = "9Gjjt1m+cjU4OPvX9O9/8RuvnG41MRb/18Oux2o5H5MY7ISNTlXN+Dz9IG62/ILVxhAGI0qyPfg="
HTML = "text/html; charset=utf-8"
_ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


def check_setting(key, value):
    """None when `value` is acceptable for dialect setting `key`, else the error message."""
    allowed = ALLOWED[key]
    # bool is a subclass of int: 1/0 must not pass for true/false.
    if not any(value is a if isinstance(a, bool) else value == a for a in allowed):
        shown = ", ".join("true" if a is True else "false" if a is False else f'"{a}"'
                          for a in allowed)
        return f"config key {key} takes one of: {shown}"
    return None


def iso_micro(epoch):
    """moto's IAM timestamp: 2026-12-03T07:08:18.907310Z."""
    micros = int(round((epoch - int(epoch)) * 1e6))
    if micros >= 1000000:
        epoch, micros = int(epoch) + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(epoch))) + f".{micros:06d}Z"


def moto_user_id():
    return "".join(secrets.choice(_ID_CHARS) for _ in range(20))


def _xml_escape(s):
    from .core import xml_escape
    return xml_escape(s)


# -- errors -----------------------------------------------------------------------------------

# fakeaws's authentication/authorization codes (query and JSON protocols) -> moto's code.
_AUTH_CODES = {
    "SignatureDoesNotMatch": "SignatureDoesNotMatch",
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "InvalidClientTokenId": "InvalidClientTokenId",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "AccessDenied": "AccessDenied",
    "AccessDeniedException": "AccessDenied",
}
_AUTH_MESSAGES = {
    "SignatureDoesNotMatch": "The request signature we calculated does not match the signature "
                             "you provided. Check your AWS Secret Access Key and signing method. "
                             "Consult the service documentation for details.",
    "InvalidClientTokenId": "The security token included in the request is invalid.",
}
_DENIED_RE = re.compile(r"^(User: \S+ is not authorized to perform: \S+)")


def format_error(protocol, xmlns, err, req):
    """An AwsError as moto writes it. Returns (status, headers, body bytes)."""
    rid = req.request_id
    headers = dict(err.headers)
    headers["x-amzn-requestid"] = rid
    if protocol in ("query", "json") and err.code in _AUTH_CODES:
        code = _AUTH_CODES[err.code]
        message = _AUTH_MESSAGES.get(code)
        if message is None:
            m = _DENIED_RE.match(err.message)
            message = m.group(1) if m else err.message
        body = ('<?xml version="1.0" encoding="utf-8"?>\n<ErrorResponse><Errors><Error>'
                f"<Code>{code}</Code><Message>{_xml_escape(message)}</Message>"
                "<Type>Sender</Type></Error></Errors></ErrorResponse>")
        headers.update({"Content-Type": HTML, "status": "403"})
        return 403, headers, body.encode()
    if protocol == "query":
        msg = _xml_escape(err.message)
        body = (f'<ErrorResponse xmlns="{xmlns}"><Error>'
                f'<Type>{"Sender" if err.sender else "Receiver"}</Type>'
                f"<Code>{_xml_escape(err.code)}</Code><Message>{msg}</Message>"
                f"<message>{msg}</message></Error><RequestId>{rid}</RequestId></ErrorResponse>")
        headers.update({"Content-Type": "text/xml", "status": str(err.status)})
        return err.status, headers, body.encode()
    if protocol == "rest-xml":
        extra = "".join(f"<{k}>{_xml_escape(v)}</{k}>" for k, v in err.extra.items())
        body = ('<?xml version="1.0" encoding="utf-8"?>\n'
                f"<Error><Code>{_xml_escape(err.code)}</Code>"
                f"<Message>{_xml_escape(err.message)}</Message>{extra}"
                f"<RequestId>{rid}</RequestId><HostId>{MOTO_HOST_ID}</HostId></Error>")
        headers["Content-Type"] = "application/xml"
        if req.method == "HEAD":
            body = ""
            headers["Content-Type"] = HTML
        return err.status, headers, body.encode()
    import json
    status = 404 if err.code == "ResourceNotFoundException" else err.status
    doc = {"__type": err.code, "message": err.message}
    doc.update(err.extra)
    headers.update({"Content-Type": "application/json", "X-Amzn-ErrorType": err.code,
                    "status": str(status)})
    return status, headers, json.dumps(doc).encode()


# -- successful responses ---------------------------------------------------------------------

_UPPER_DECL = b'<?xml version="1.0" encoding="UTF-8"?>'
_LOWER_DECL = b'<?xml version="1.0" encoding="utf-8"?>'
_BETWEEN_ELEMENTS = re.compile(rb">\n\s*<")
_EMPTY_ELEMENT = re.compile(rb"<([A-Za-z]+)></\1>")


def success(protocol, op, req, headers, body):
    """A successful response rewritten as moto writes it: (headers, body)."""
    headers = {k: v for k, v in headers.items()
               if k.lower() not in ("x-amz-request-id", "x-amz-id-2", "x-amzn-requestid")}
    headers["x-amzn-requestid"] = req.request_id
    has_type = any(k.lower() == "content-type" for k in headers)
    if protocol == "rest-xml":
        if op not in ("GetObject", "HeadObject") and body.startswith(_UPPER_DECL):
            body = _LOWER_DECL + body[len(_UPPER_DECL):]
        if not has_type and not body:
            headers["Content-Type"] = HTML
    elif protocol == "query":
        # IAM and STS values never hold a newline (names, ARNs, tags and the URL-encoded policy
        # documents cannot), so a newline between two elements is always formatting.
        body = _BETWEEN_ELEMENTS.sub(b"><", body).rstrip(b"\n")
        body = _EMPTY_ELEMENT.sub(rb"<\1/>", body)
    else:
        headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        headers["Content-Type"] = HTML
    return headers, body
