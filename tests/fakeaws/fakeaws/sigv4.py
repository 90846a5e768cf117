"""SigV4 verification, from the server's side: rebuild the canonical request from the bytes that
arrived and compare signatures. Raises core.AwsError with the error code of the service's own
wire protocol (see AUTH_ERRORS)."""

import calendar
import hashlib
import hmac
import posixpath
import re
import time
from urllib.parse import quote, unquote

from .core import AwsError

MAX_SKEW = 15 * 60
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED = "UNSIGNED-PAYLOAD"

# How each protocol family names the authentication failures. (status, code)
AUTH_ERRORS = {
    "query": {
        "bad_signature": (403, "SignatureDoesNotMatch"),
        "unknown_key": (403, "InvalidClientTokenId"),
        "incomplete": (400, "IncompleteSignature"),
        "missing": (403, "MissingAuthenticationToken"),
        "skew": (403, "SignatureDoesNotMatch"),
    },
    "rest-xml": {
        "bad_signature": (403, "SignatureDoesNotMatch"),
        "unknown_key": (403, "InvalidAccessKeyId"),
        "incomplete": (400, "AuthorizationHeaderMalformed"),
        "missing": (403, "AccessDenied"),
        "skew": (403, "RequestTimeTooSkewed"),
        "expired": (403, "AccessDenied"),
    },
    "json": {
        "bad_signature": (400, "InvalidSignatureException"),
        "unknown_key": (400, "UnrecognizedClientException"),
        "incomplete": (400, "IncompleteSignatureException"),
        "missing": (400, "MissingAuthenticationTokenException"),
        "skew": (400, "InvalidSignatureException"),
    },
}

AUTH_MESSAGES = {
    "bad_signature": "The request signature we calculated does not match the signature you "
                     "provided. Check your AWS Secret Access Key and signing method. Consult the "
                     "service documentation for details.",
    "unknown_key": "The security token included in the request is invalid.",
    "missing": "Request is missing Authentication Token",
}

AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256\s+(.*)$", re.S)


def auth_error(protocol, kind, message=None, extra=None):
    status, code = AUTH_ERRORS[protocol].get(kind, AUTH_ERRORS[protocol]["bad_signature"])
    if message is None:
        message = AUTH_MESSAGES.get(kind, "Authentication failed")
        if protocol == "rest-xml" and kind == "unknown_key":
            message = "The AWS Access Key Id you provided does not exist in our records."
    return AwsError(code, message, status=status, extra=extra)


def _uri_encode(s, keep_slash=False):
    return quote(s, safe="-_.~" + ("/" if keep_slash else ""))


def canonical_uri(raw_path, service):
    if service == "s3":
        # S3 signs the path exactly as sent: no normalization, no second encoding.
        return raw_path or "/"
    path = raw_path or "/"
    # Other services normalize the path (remove dot segments, collapse slashes) and encode the
    # already encoded path once more.
    norm = posixpath.normpath(path) if path not in ("", "/") else "/"
    norm = re.sub(r"/+", "/", norm)
    if path.endswith("/") and norm != "/":
        norm += "/"
    return quote(norm, safe="/~")


def canonical_query(raw_query, drop=()):
    pairs = []
    if raw_query:
        for part in raw_query.split("&"):
            if part == "":
                continue
            k, _, v = part.partition("=")
            k, v = unquote(k), unquote(v)
            if k in drop:
                continue
            pairs.append((_uri_encode(k), _uri_encode(v)))
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def _canonical_header_value(values):
    return ",".join(re.sub(r"\s+", " ", v.strip()) for v in values)


def parse_amz_date(value):
    try:
        return calendar.timegm(time.strptime(value, "%Y%m%dT%H%M%SZ"))
    except (ValueError, TypeError):
        return None


def signing_key(secret, date, region, service):
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    k = hmac.new(k, region.encode(), hashlib.sha256).digest()
    k = hmac.new(k, service.encode(), hashlib.sha256).digest()
    return hmac.new(k, b"aws4_request", hashlib.sha256).digest()


def _parse_authorization(value):
    m = AUTH_RE.match(value or "")
    if not m:
        return None
    fields = {}
    for part in m.group(1).split(","):
        k, _, v = part.strip().partition("=")
        fields[k.strip()] = v.strip()
    if not all(k in fields for k in ("Credential", "SignedHeaders", "Signature")):
        return None
    return fields


def verify(store, req, service, protocol, header_values, now=None):
    """Verify req's signature. header_values(name) -> list of raw values for a header name.
    On success sets req.caller and req.region and returns the AccessKey."""
    now = time.time() if now is None else now
    presigned = any(k == "X-Amz-Signature" for k, _ in req.query)
    if presigned:
        qp = dict(req.query)
        if qp.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
            raise auth_error(protocol, "incomplete", "Unsupported X-Amz-Algorithm")
        credential = qp.get("X-Amz-Credential", "")
        signed_headers = qp.get("X-Amz-SignedHeaders", "")
        signature = qp.get("X-Amz-Signature", "")
        amz_date = qp.get("X-Amz-Date", "")
        expires = qp.get("X-Amz-Expires")
    else:
        authz = req.header("authorization")
        if authz is None:
            raise auth_error(protocol, "missing")
        fields = _parse_authorization(authz)
        if fields is None:
            raise auth_error(protocol, "incomplete",
                             "Authorization header requires 'Credential', 'Signature' and "
                             "'SignedHeaders' parameters with algorithm AWS4-HMAC-SHA256.")
        credential = fields["Credential"]
        signed_headers = fields["SignedHeaders"]
        signature = fields["Signature"]
        amz_date = req.header("x-amz-date") or ""
        expires = None

    scope = credential.split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise auth_error(protocol, "incomplete",
                         f"Credential should be scoped to a valid scope: '{credential}'.")
    key_id, date, region, scope_service = scope[0], scope[1], scope[2], scope[3]

    key = store.usable_key(key_id, now)
    if key is None:
        raise auth_error(protocol, "unknown_key")

    signed_at = parse_amz_date(amz_date)
    if signed_at is None:
        raise auth_error(protocol, "incomplete",
                         "Authorization header requires existence of either a 'X-Amz-Date' or a "
                         "'Date' header.")
    if amz_date[:8] != date:
        raise auth_error(protocol, "bad_signature",
                         f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
                         f"of date from HTTP: '{date}' != '{amz_date[:8]}', from '{amz_date}'.")
    if scope_service != service:
        raise auth_error(protocol, "bad_signature",
                         f"Credential should be scoped to correct service: '{service}'.")
    # IAM is global and signs in us-east-1; STS has a global endpoint too. SDKs pointed at a custom
    # endpoint sign with their configured region, so those two accept either.
    expected_region = store.region
    allowed = {store.region, "us-east-1"} if service in ("iam", "sts") else {store.region}
    if region not in allowed:
        extra = {"Region": expected_region} if protocol == "rest-xml" else None
        kind = "incomplete" if protocol == "rest-xml" else "bad_signature"
        raise auth_error(protocol, kind,
                         f"Credential should be scoped to a valid region. The authorization "
                         f"header is malformed; the region '{region}' is wrong; expecting "
                         f"'{expected_region}'", extra=extra)

    if presigned:
        try:
            ttl = int(expires)
        except (TypeError, ValueError):
            raise auth_error(protocol, "incomplete", "X-Amz-Expires must be a number")
        if now > signed_at + ttl:
            raise auth_error(protocol, "expired", "Request has expired")
    elif abs(now - signed_at) > MAX_SKEW:
        server_time = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        if protocol == "rest-xml":
            msg = "The difference between the request time and the current time is too large."
            extra = {"RequestTime": amz_date, "ServerTime": server_time, "MaxAllowedSkewMilliseconds": "900000"}
        else:
            earliest = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now - MAX_SKEW))
            if signed_at < now:
                msg = (f"Signature expired: {amz_date} is now earlier than {earliest} "
                       f"({server_time} - 15 min.)")
            else:
                latest = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now + MAX_SKEW))
                msg = (f"Signature not yet current: {amz_date} is still later than {latest} "
                       f"({server_time} + 15 min.)")
            extra = None
        raise auth_error(protocol, "skew", msg, extra=extra)

    names = signed_headers.split(";") if signed_headers else []
    if "host" not in names:
        raise auth_error(protocol, "incomplete" if protocol != "json" else "bad_signature",
                         "'Host' or ':authority' must be a 'SignedHeader' in the AWS "
                         "Authorization.")
    canon_headers = []
    for name in names:
        values = header_values(name)
        if not values:
            raise auth_error(protocol, "bad_signature",
                             f"The request signature we calculated does not match the signature "
                             f"you provided. Signed header '{name}' is missing.")
        canon_headers.append(f"{name}:{_canonical_header_value(values)}\n")

    if presigned:
        payload_hash = UNSIGNED if service == "s3" else hashlib.sha256(req.body).hexdigest()
    else:
        body_hash = hashlib.sha256(req.body).hexdigest()
        claimed = req.header("x-amz-content-sha256")
        if service == "s3":
            if claimed is None:
                raise AwsError("InvalidRequest",
                               "Missing required header for this request: x-amz-content-sha256",
                               status=400)
            if claimed == UNSIGNED:
                payload_hash = UNSIGNED
            elif claimed.startswith("STREAMING-"):
                raise AwsError("NotImplemented",
                               "fakeaws does not implement aws-chunked streaming uploads",
                               status=501)
            elif claimed != body_hash:
                raise AwsError("XAmzContentSHA256Mismatch",
                               "The provided 'x-amz-content-sha256' header does not match what "
                               "was computed.", status=400,
                               extra={"ClientComputedContentSHA256": claimed,
                                      "S3ComputedContentSHA256": body_hash})
            else:
                payload_hash = claimed
        else:
            if claimed is not None and claimed != UNSIGNED and claimed != body_hash:
                raise auth_error(protocol, "bad_signature")
            payload_hash = claimed if claimed == UNSIGNED else body_hash

    creq = "\n".join([
        req.method,
        canonical_uri(req.raw_path, service),
        canonical_query(req.raw_query, drop=("X-Amz-Signature",) if presigned else ()),
        "".join(canon_headers),
        signed_headers,
        payload_hash,
    ])
    sts = "\n".join([
        "AWS4-HMAC-SHA256",
        amz_date,
        f"{date}/{region}/{scope_service}/aws4_request",
        hashlib.sha256(creq.encode()).hexdigest(),
    ])
    expected = hmac.new(signing_key(key.secret, date, region, scope_service), sts.encode(),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        extra = None
        if protocol == "rest-xml":
            extra = {"AWSAccessKeyId": key_id, "StringToSign": sts, "CanonicalRequest": creq}
        raise auth_error(protocol, "bad_signature", extra=extra)

    key.last_used = {"date": now, "service": service, "region": region}
    req.caller = store.principal_for(key)
    req.region = region
    return key
