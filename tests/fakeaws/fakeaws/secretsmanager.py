"""AWS Secrets Manager (JSON 1.1 protocol, X-Amz-Target "secretsmanager.<Operation>").

Operations: CreateSecret, DescribeSecret, GetSecretValue, PutSecretValue, UpdateSecret,
UpdateSecretVersionStage, ListSecretVersionIds, ListSecrets, DeleteSecret, RestoreSecret,
TagResource, UntagResource, GetResourcePolicy.

Behaviour follows the service model (botocore secretsmanager 2017-10-17) and the real service:
  - ARN arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 random alphanumerics>; a
    SecretId is the name, the full ARN or a partial ARN (the ARN without the suffix).
  - versions carry staging labels; each label is on at most one version; moving AWSCURRENT
    moves AWSPREVIOUS onto the version AWSCURRENT left; a version with no label is deprecated
    (kept, hidden from ListSecretVersionIds unless IncludeDeprecated).
  - ClientRequestToken is the VersionId and makes PutSecretValue/UpdateSecret idempotent.
  - DeleteSecret schedules deletion (7..30 days, default 30) or forces it; a scheduled secret
    refuses value and label operations until RestoreSecret.
  - constraint violations of the model (length, range, enum, required) answer Coral's
    ValidationException; wrong JSON types answer SerializationException; the service's own
    rules answer InvalidParameterException / InvalidRequestException / ResourceExistsException
    / ResourceNotFoundException, all HTTP 400.

dump_state never contains a secret value: only its SHA-256 and, for a JSON object value, its
"AccessKeyId" member.

With moto_style (dialect.py) the outputs are written the way moto 5.2.1 writes them (_moto):
integer epochs for CreatedDate/LastChangedDate/LastAccessedDate and floats for
DeletionDate/DeletedDate, DescribeSecret with moto's nulls (LastAccessedDate is always null),
key order and extra SecretVersionsToStages, ListSecretVersionIds with the name as ARN,
NextToken "" and no KmsKeyIds. The server
writes moto's Content-Type and error shape.
"""

import base64
import binascii
import hashlib
import json
import random
import re
import string
import time
import uuid

from .core import AwsError, Authz, Response

SERVICE = "secretsmanager"
PROTOCOL = "json"
TARGET_PREFIX = "secretsmanager."

OPERATIONS = {
    "CreateSecret", "DescribeSecret", "GetSecretValue", "PutSecretValue", "UpdateSecret",
    "UpdateSecretVersionStage", "ListSecretVersionIds", "ListSecrets", "DeleteSecret",
    "RestoreSecret", "TagResource", "UntagResource", "GetResourcePolicy",
}

DEFAULT_KMS_ALIAS = "alias/aws/secretsmanager"
CURRENT, PREVIOUS, PENDING = "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"
DAY = 86400.0
MAX_TAGS = 50
MAX_LABELS_PER_SECRET = 20
KEEP_VERSIONS = 100           # AWS keeps the 100 most recent versions...
KEEP_RECENT_SECONDS = DAY     # ...and every version created in the last 24 hours
DEFAULT_PAGE = 100

NAME_RE = re.compile(r"^[A-Za-z0-9/_+=.@-]+$")
TAG_RE = re.compile(r"^[\w\s.:/=+\-@]*$", re.UNICODE)
FILTER_VALUE_RE = r"^\!?[a-zA-Z0-9 :_@\/\+\=\.\-\!]*$"
FILTER_KEYS = ["description", "name", "tag-key", "tag-value", "primary-region",
               "owning-service", "all"]
SORT_BY = ["created-date", "last-accessed-date", "last-changed-date", "name"]

_RNG = random.SystemRandom()
_SUFFIX_CHARS = string.ascii_letters + string.digits

MSG_NOT_FOUND = "Secrets Manager can't find the specified secret."
MSG_MARKED = ("You can't perform this operation on the secret because it was marked for "
              "deletion.")
MSG_BOTH_VALUES = ("You can't specify both a binary secret value and a string secret value in "
                   "the same secret.")


# -- state ------------------------------------------------------------------------------------

class Version:
    def __init__(self, version_id, kind, value, created, token):
        self.id = version_id
        self.kind = kind          # "string" | "binary"
        self.value = value        # str | bytes
        self.stages = []
        self.created = created
        self.token = token        # the ClientRequestToken as sent (None when we generated one)
        self.last_accessed = None

    def same_value(self, kind, value):
        return self.kind == kind and self.value == value

    def sha256(self):
        data = self.value.encode("utf-8") if self.kind == "string" else self.value
        return hashlib.sha256(data).hexdigest()

    def access_key_id(self):
        if self.kind != "string":
            return None
        try:
            doc = json.loads(self.value)
        except ValueError:
            return None
        if isinstance(doc, dict) and isinstance(doc.get("AccessKeyId"), str):
            return doc["AccessKeyId"]
        return None


class Secret:
    def __init__(self, arn, name, created):
        self.arn = arn
        self.name = name
        self.description = None
        self.kms_key_id = None     # None: the AWS managed key aws/secretsmanager
        self.tags = []             # [{"Key": k, "Value": v}] in insertion order
        self.created = created
        self.last_changed = created
        self.last_accessed = None
        self.deleted_at = None     # when DeleteSecret was called
        self.deletion_date = None  # when the recovery window ends
        self.versions = {}         # VersionId -> Version, in creation order
        self.policy = None

    @property
    def scheduled(self):
        return self.deletion_date is not None

    def holder(self, label):
        for v in self.versions.values():
            if label in v.stages:
                return v
        return None

    def labels(self):
        return {s for v in self.versions.values() for s in v.stages}

    def tag_dict(self):
        return {t["Key"]: t["Value"] for t in self.tags}


class State:
    def __init__(self, store):
        self.store = store
        self.secrets = {}  # name -> Secret (active or scheduled for deletion)

    def arn_prefix(self):
        return f"arn:aws:secretsmanager:{self.store.region}:{self.store.account_id}:secret:"

    def purge(self, now):
        """Remove secrets whose recovery window has ended."""
        for name in [n for n, s in self.secrets.items()
                     if s.deletion_date is not None and s.deletion_date <= now]:
            del self.secrets[name]

    def lookup(self, secret_id):
        """The Secret a SecretId names (name, full ARN or partial ARN), or None."""
        if secret_id.startswith("arn:"):
            for s in self.secrets.values():
                if s.arn == secret_id:
                    return s
            prefix = self.arn_prefix()
            if secret_id.startswith(prefix):
                return self.secrets.get(secret_id[len(prefix):])
            return None
        return self.secrets.get(secret_id)


def new_state(store):
    return State(store)


def _state(store):
    return store.services[SERVICE]


# -- request parsing and model validation -----------------------------------------------------

class Shape:
    def __init__(self, kind, min=None, max=None, member=None, members=None, required=(),
                 enum=None, pattern=None, sensitive=False):
        self.kind = kind
        self.min = min
        self.max = max
        self.member = member
        self.members = members or {}
        self.required = required
        self.enum = enum
        self.pattern = pattern
        self.sensitive = sensitive


def Str(min=None, max=None, **kw):
    return Shape("string", min, max, **kw)


SECRET_ID = Str(1, 2048)
TOKEN = Str(32, 64)
VERSION_ID = Str(32, 64)
STAGE = Str(1, 256)
STAGES = Shape("list", 1, 20, member=STAGE)
BOOL = Shape("boolean")
MAX_RESULTS = Shape("integer", 1, 100)
NEXT_TOKEN = Str(1, 4096)
TAG = Shape("structure", members={"Key": Str(1, 128), "Value": Str(0, 256)})
TAGS = Shape("list", member=TAG)
SECRET_STRING = Str(1, 65536, sensitive=True)
SECRET_BINARY = Shape("blob", 1, 65536, sensitive=True)
KMS_KEY = Str(0, 2048)
DESCRIPTION = Str(None, 2048)
FILTER = Shape("structure", members={
    "Key": Str(enum=FILTER_KEYS),
    "Values": Shape("list", 1, 10, member=Str(None, 512, pattern=FILTER_VALUE_RE))})
REPLICA = Shape("structure", members={"Region": Str(1, 128), "KmsKeyId": KMS_KEY})

INPUTS = {
    "CreateSecret": Shape("structure", required=("Name",), members={
        "Name": Str(1, 512), "ClientRequestToken": TOKEN, "Description": DESCRIPTION,
        "KmsKeyId": KMS_KEY, "SecretBinary": SECRET_BINARY, "SecretString": SECRET_STRING,
        "Tags": TAGS, "AddReplicaRegions": Shape("list", 1, None, member=REPLICA),
        "ForceOverwriteReplicaSecret": BOOL, "Type": Str(0, 256)}),
    "DescribeSecret": Shape("structure", required=("SecretId",), members={
        "SecretId": SECRET_ID}),
    "GetSecretValue": Shape("structure", required=("SecretId",), members={
        "SecretId": SECRET_ID, "VersionId": VERSION_ID, "VersionStage": STAGE}),
    "PutSecretValue": Shape("structure", required=("SecretId",), members={
        "SecretId": SECRET_ID, "ClientRequestToken": TOKEN, "SecretBinary": SECRET_BINARY,
        "SecretString": SECRET_STRING, "VersionStages": STAGES,
        "RotationToken": Str(36, 256, pattern=r"^[a-zA-Z0-9\-]+$", sensitive=True)}),
    "UpdateSecret": Shape("structure", required=("SecretId",), members={
        "SecretId": SECRET_ID, "ClientRequestToken": TOKEN, "Description": DESCRIPTION,
        "KmsKeyId": KMS_KEY, "SecretBinary": SECRET_BINARY, "SecretString": SECRET_STRING,
        "Type": Str(0, 256)}),
    "UpdateSecretVersionStage": Shape("structure", required=("SecretId", "VersionStage"),
                                      members={
        "SecretId": SECRET_ID, "VersionStage": STAGE, "RemoveFromVersionId": VERSION_ID,
        "MoveToVersionId": VERSION_ID}),
    "ListSecretVersionIds": Shape("structure", required=("SecretId",), members={
        "SecretId": SECRET_ID, "MaxResults": MAX_RESULTS, "NextToken": NEXT_TOKEN,
        "IncludeDeprecated": BOOL}),
    "ListSecrets": Shape("structure", members={
        "IncludePlannedDeletion": BOOL, "MaxResults": MAX_RESULTS, "NextToken": NEXT_TOKEN,
        "Filters": Shape("list", None, 10, member=FILTER),
        "SortOrder": Str(enum=["asc", "desc"]), "SortBy": Str(enum=SORT_BY)}),
    "DeleteSecret": Shape("structure", required=("SecretId",), members={
        "SecretId": SECRET_ID, "RecoveryWindowInDays": Shape("long"),
        "ForceDeleteWithoutRecovery": BOOL}),
    "RestoreSecret": Shape("structure", required=("SecretId",), members={
        "SecretId": SECRET_ID}),
    "TagResource": Shape("structure", required=("SecretId", "Tags"), members={
        "SecretId": SECRET_ID, "Tags": TAGS}),
    "UntagResource": Shape("structure", required=("SecretId", "TagKeys"), members={
        "SecretId": SECRET_ID, "TagKeys": Shape("list", member=Str(1, 128))}),
    "GetResourcePolicy": Shape("structure", required=("SecretId",), members={
        "SecretId": SECRET_ID}),
}


def _serialization(message):
    return AwsError("SerializationException", message)


def _camel(name):
    return name[:1].lower() + name[1:]


def _show(value):
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_show(v)}" for k, v in value.items()) + "}"
    return str(value)


def _check(value, shape, path, errors):
    """Type-check `value` against `shape` (raising SerializationException) and collect
    constraint violations (Coral's ValidationException messages) into `errors`. Returns the
    value converted (blobs decoded)."""
    kind = shape.kind

    def fail(constraint, shown=True):
        if shape.sensitive or not shown:
            errors.append(f"Value at '{path}' failed to satisfy constraint: {constraint}")
        else:
            errors.append(f"Value '{_show(value)}' at '{path}' failed to satisfy constraint: "
                          f"{constraint}")

    if kind == "string":
        if not isinstance(value, str):
            raise _serialization(f"Expected a string for '{path}'")
        n = len(value)
    elif kind == "blob":
        if not isinstance(value, str):
            raise _serialization(f"Expected a base64 string for '{path}'")
        try:
            value = base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise _serialization(f"Value for '{path}' is not valid base64")
        n = len(value)
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise _serialization(f"Expected a boolean for '{path}'")
        return value
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise _serialization(f"Expected an integer for '{path}'")
        if shape.min is not None and value < shape.min:
            fail(f"Member must have value greater than or equal to {shape.min}")
        if shape.max is not None and value > shape.max:
            fail(f"Member must have value less than or equal to {shape.max}")
        return value
    elif kind == "list":
        if not isinstance(value, list):
            raise _serialization(f"Expected a list for '{path}'")
        n = len(value)
        out = []
        for i, item in enumerate(value, 1):
            if item is None:
                continue
            out.append(_check(item, shape.member, f"{path}.{i}.member", errors))
        if shape.min is not None and n < shape.min:
            fail(f"Member must have length greater than or equal to {shape.min}")
        if shape.max is not None and n > shape.max:
            fail(f"Member must have length less than or equal to {shape.max}")
        return out
    elif kind == "structure":
        if not isinstance(value, dict):
            raise _serialization(f"Expected an object for '{path}'")
        out = {}
        for name, sub in shape.members.items():
            sub_path = f"{path}.{_camel(name)}" if path else _camel(name)
            v = value.get(name)
            if v is None:
                if name in shape.required:
                    errors.append(f"Value null at '{sub_path}' failed to satisfy constraint: "
                                  f"Member must not be null")
                continue
            out[name] = _check(v, sub, sub_path, errors)
        return out
    else:  # pragma: no cover - every shape above has a kind
        return value
    if shape.min is not None and n < shape.min:
        fail(f"Member must have length greater than or equal to {shape.min}")
    if shape.max is not None and n > shape.max:
        fail(f"Member must have length less than or equal to {shape.max}")
    if shape.enum is not None and value not in shape.enum:
        fail(f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
    if shape.pattern is not None and not re.match(shape.pattern, value):
        fail(f"Member must satisfy regular expression pattern: {shape.pattern}")
    return value


def _raw_body(req):
    """The request body as a JSON object (cached on the request)."""
    cached = getattr(req, "_sm_raw", None)
    if cached is not None:
        return cached
    text = req.body or b"{}"
    try:
        doc = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _serialization("Start of structure or map found where not expected.")
    if not isinstance(doc, dict):
        raise _serialization("Start of structure or map found where not expected.")
    req._sm_raw = doc
    return doc


def _params(req, op):
    """The validated input of `op`: a dict of the members present (blobs as bytes)."""
    cached = getattr(req, "_sm_params", None)
    if cached is not None:
        return cached
    errors = []
    params = _check(_raw_body(req), INPUTS[op], "", errors)
    if errors:
        n = len(errors)
        raise AwsError("ValidationException",
                       f"{n} validation error{'s' if n > 1 else ''} detected: "
                       + "; ".join(errors))
    req._sm_params = params
    return params


# -- module contract --------------------------------------------------------------------------

def operation(req):
    target = req.header("x-amz-target")
    if not target or not target.startswith(TARGET_PREFIX):
        raise AwsError("UnknownOperationException", "Unknown operation")
    op = target[len(TARGET_PREFIX):]
    if op not in OPERATIONS:
        raise AwsError("UnknownOperationException", f"Unknown operation {op}")
    return op


def resource_name(req, op):
    try:
        doc = json.loads((req.body or b"{}").decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    value = doc.get("Name") if op == "CreateSecret" else doc.get("SecretId")
    return value if isinstance(value, str) else None


def _new_arn(state, name, req=None):
    suffix = getattr(req, "_sm_suffix", None) if req is not None else None
    if suffix is None:
        suffix = "".join(_RNG.choice(_SUFFIX_CHARS) for _ in range(6))
        if req is not None:
            req._sm_suffix = suffix
    return f"{state.arn_prefix()}{name}-{suffix}"


def authorize(store, req, op):
    state = _state(store)
    body = _raw_body(req)
    action = f"{SERVICE}:{op}"
    if op == "ListSecrets":
        return [Authz(action, "*")]
    if op == "CreateSecret":
        name = body.get("Name") if isinstance(body.get("Name"), str) else ""
        arn = _new_arn(state, name, req)
        ctx = {"secretsmanager:Name": name}
        if isinstance(body.get("Description"), str):
            ctx["secretsmanager:Description"] = body["Description"]
        if isinstance(body.get("KmsKeyId"), str):
            ctx["secretsmanager:KmsKeyId"] = body["KmsKeyId"]
        tags = [t for t in body.get("Tags") or [] if isinstance(t, dict)] \
            if isinstance(body.get("Tags"), list) else []
        keys = [t["Key"] for t in tags if isinstance(t.get("Key"), str)]
        for t in tags:
            if isinstance(t.get("Key"), str) and isinstance(t.get("Value"), str):
                ctx[f"aws:RequestTag/{t['Key']}"] = t["Value"]
        if keys:
            ctx["aws:TagKeys"] = keys
        out = [Authz(action, arn, ctx)]
        if keys:
            out.append(Authz(f"{SERVICE}:TagResource", arn, dict(ctx)))
        return out
    secret_id = body.get("SecretId") if isinstance(body.get("SecretId"), str) else ""
    secret = state.lookup(secret_id) if secret_id else None
    if secret is not None:
        arn = secret.arn
    elif secret_id.startswith("arn:"):
        arn = secret_id
    else:
        arn = f"{state.arn_prefix()}{secret_id}"
    ctx = {"secretsmanager:SecretId": arn}
    if secret is not None:
        for k, v in secret.tag_dict().items():
            ctx[f"secretsmanager:ResourceTag/{k}"] = v
            ctx[f"aws:ResourceTag/{k}"] = v
    if op == "GetSecretValue":
        for member, key in (("VersionId", "secretsmanager:VersionId"),
                            ("VersionStage", "secretsmanager:VersionStage")):
            if isinstance(body.get(member), str):
                ctx[key] = body[member]
    if op == "UpdateSecretVersionStage" and isinstance(body.get("VersionStage"), str):
        ctx["secretsmanager:VersionStage"] = body["VersionStage"]
    if op == "TagResource" and isinstance(body.get("Tags"), list):
        keys = []
        for t in body["Tags"]:
            if isinstance(t, dict) and isinstance(t.get("Key"), str):
                keys.append(t["Key"])
                if isinstance(t.get("Value"), str):
                    ctx[f"aws:RequestTag/{t['Key']}"] = t["Value"]
        ctx["aws:TagKeys"] = keys
    if op == "UntagResource" and isinstance(body.get("TagKeys"), list):
        ctx["aws:TagKeys"] = [k for k in body["TagKeys"] if isinstance(k, str)]
    return [Authz(action, arn, ctx)]


def handle(store, req, op):
    state = _state(store)
    now = time.time()
    state.purge(now)
    params = _params(req, op)
    out = HANDLERS[op](state, req, params, now)
    if req.moto_style:
        out = _moto(state, op, params, out)
    return Response(200, json.dumps(out), content_type="application/x-amz-json-1.1")


def _moto(state, op, params, out):
    """An operation's output as moto 5.2.1 writes it."""
    def whole(v):
        return None if v is None else int(v)

    def fine(v):
        return None if v is None else round(float(v), 6)

    if op == "DescribeSecret":
        secret = state.lookup(params["SecretId"])
        stages = _stages_map(secret)
        # moto writes LastAccessedDate null whatever happened, and leaves Tags, Description
        # and the stage maps out when there are none.
        doc = {"ARN": secret.arn, "Name": secret.name,
               "LastChangedDate": whole(secret.last_changed), "LastAccessedDate": None,
               "NextRotationDate": None, "DeletedDate": fine(secret.deletion_date),
               "CreatedDate": whole(secret.created), "KmsKeyId": secret.kms_key_id}
        if secret.tags:
            doc["Tags"] = [dict(t) for t in secret.tags]
        if secret.description is not None:
            doc["Description"] = secret.description
        if stages:
            doc["VersionIdsToStages"] = stages
            doc["SecretVersionsToStages"] = stages
        return doc
    if op == "ListSecretVersionIds":
        versions = []
        for v in out["Versions"]:
            # moto's LastAccessedDate starts as the version's creation time.
            e = {"CreatedDate": whole(v["CreatedDate"]),
                 "LastAccessedDate": whole(v.get("LastAccessedDate", v["CreatedDate"])),
                 "VersionId": v["VersionId"]}
            if "VersionStages" in v:
                e["VersionStages"] = v["VersionStages"]
            versions.append(e)
        return {"ARN": out["Name"], "Name": out["Name"], "NextToken": out.get("NextToken", ""),
                "Versions": versions}
    out = dict(out)
    for key in ("CreatedDate", "LastChangedDate", "LastAccessedDate"):
        if key in out:
            out[key] = whole(out[key])
    for key in ("DeletionDate", "DeletedDate"):
        if key in out:
            out[key] = fine(out[key])
    return out


# -- helpers ----------------------------------------------------------------------------------

def _ts(epoch):
    return round(epoch, 3)


def _day(epoch):
    """LastAccessedDate has a resolution of one day."""
    return float(int(epoch // DAY) * DAY)


def _secret(state, params, allow_scheduled=True):
    secret = state.lookup(params["SecretId"])
    if secret is None:
        raise AwsError("ResourceNotFoundException", MSG_NOT_FOUND)
    if secret.scheduled and not allow_scheduled:
        raise AwsError("InvalidRequestException", MSG_MARKED)
    return secret


def _value(params, required):
    """(kind, value) from SecretString / SecretBinary, or None when neither is given."""
    has_s = "SecretString" in params
    has_b = "SecretBinary" in params
    if has_s and has_b:
        raise AwsError("InvalidParameterException", MSG_BOTH_VALUES)
    if has_s:
        return "string", params["SecretString"]
    if has_b:
        return "binary", params["SecretBinary"]
    if required:
        raise AwsError("InvalidParameterException",
                       "You must provide either SecretString or SecretBinary.")
    return None


def _kms(value):
    if value is None or value == "" or value == DEFAULT_KMS_ALIAS \
            or value.endswith(":" + DEFAULT_KMS_ALIAS):
        return None
    return value


def _validate_tag_key(key):
    if key.lower().startswith("aws:"):
        raise AwsError("InvalidParameterException",
                       f"Invalid tag key {key}: the aws: prefix is reserved for AWS use.")
    if not TAG_RE.match(key):
        raise AwsError("InvalidParameterException",
                       f"Invalid tag key {key}: tag keys can contain only letters, numbers, "
                       f"spaces and the characters _ . : / = + - @")


def _validate_tags(tags):
    for t in tags:
        key = t.get("Key")
        if key is None:
            raise AwsError("InvalidParameterException", "A tag key can't be null.")
        _validate_tag_key(key)
        value = t.get("Value", "")
        if not TAG_RE.match(value):
            raise AwsError("InvalidParameterException",
                           f"Invalid tag value for key {key}: tag values can contain only "
                           f"letters, numbers, spaces and the characters _ . : / = + - @")


def _merge_tags(secret, tags):
    merged = secret.tag_dict()
    for t in tags:
        merged[t["Key"]] = t.get("Value", "")
    if len(merged) > MAX_TAGS:
        raise AwsError("InvalidParameterException",
                       f"Number of tags exceeds the limit of {MAX_TAGS} tags per secret.")
    secret.tags = [{"Key": k, "Value": v} for k, v in merged.items()]


def _move_label(secret, label, target):
    """Attach `label` to `target`, taking it from the version that holds it; moving
    AWSCURRENT puts AWSPREVIOUS on the version it left."""
    holder = secret.holder(label)
    if holder is target:
        return
    if holder is not None:
        holder.stages.remove(label)
    target.stages.append(label)
    if label == CURRENT and holder is not None:
        prev = secret.holder(PREVIOUS)
        if prev is not None:
            prev.stages.remove(PREVIOUS)
        holder.stages.append(PREVIOUS)


def _prune(secret, now):
    """Secrets Manager keeps the 100 most recent versions and every version created in the
    last 24 hours; older deprecated versions beyond that are removed."""
    if len(secret.versions) <= KEEP_VERSIONS:
        return
    ordered = sorted(secret.versions.values(), key=lambda v: v.created, reverse=True)
    for v in ordered[KEEP_VERSIONS:]:
        if not v.stages and now - v.created > KEEP_RECENT_SECONDS:
            del secret.versions[v.id]


def _add_version(secret, token, value, stages, now):
    """Create a version of `secret` and attach `stages`. The first version of a secret always
    gets AWSCURRENT."""
    labels = []
    for s in stages:
        if s not in labels:
            labels.append(s)
    if not secret.versions and CURRENT not in labels:
        labels.append(CURRENT)
    after = secret.labels() | set(labels) | ({PREVIOUS} if CURRENT in labels and
                                              secret.holder(CURRENT) else set())
    if len(after) > MAX_LABELS_PER_SECRET:
        raise AwsError("LimitExceededException",
                       f"A secret can have at most {MAX_LABELS_PER_SECRET} staging labels "
                       f"attached across all of its versions.")
    vid = token if token is not None else str(uuid.uuid4())
    version = Version(vid, value[0], value[1], now, token)
    secret.versions[vid] = version
    for label in labels:
        _move_label(secret, label, version)
    secret.last_changed = now
    _prune(secret, now)
    return version


def _existing_version(secret, token, value):
    """Idempotency: the version a ClientRequestToken already created, if its value matches."""
    if token is None or token not in secret.versions:
        return None
    version = secret.versions[token]
    if version.same_value(*value):
        return version
    raise AwsError("ResourceExistsException",
                   "You can't modify an existing version, you can only create a new version.")


def _page(items, params, kind):
    start = 0
    token = params.get("NextToken")
    if token is not None:
        try:
            doc = json.loads(base64.b64decode(token.encode("ascii"), validate=True))
            if not isinstance(doc, dict) or doc.get("k") != kind:
                raise ValueError("wrong kind")
            start = doc["o"]
            if isinstance(start, bool) or not isinstance(start, int) or start < 0:
                raise ValueError("bad offset")
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeEncodeError):
            raise AwsError("InvalidNextTokenException", "The NextToken value is invalid.")
    size = params.get("MaxResults", DEFAULT_PAGE)
    page = items[start:start + size]
    nxt = None
    if start + size < len(items):
        nxt = base64.b64encode(json.dumps({"k": kind, "o": start + size}).encode()).decode()
    return page, nxt


def _stages_map(secret):
    return {v.id: list(v.stages) for v in secret.versions.values() if v.stages}


def _describe(secret, versions_key):
    out = {"ARN": secret.arn, "Name": secret.name}
    if secret.description is not None:
        out["Description"] = secret.description
    if secret.kms_key_id is not None:
        out["KmsKeyId"] = secret.kms_key_id
    out["RotationEnabled"] = False
    out["LastChangedDate"] = _ts(secret.last_changed)
    if secret.last_accessed is not None:
        out["LastAccessedDate"] = _ts(secret.last_accessed)
    if secret.deletion_date is not None:
        out["DeletedDate"] = _ts(secret.deletion_date)
    if secret.tags:
        out["Tags"] = [dict(t) for t in secret.tags]
    stages = _stages_map(secret)
    if stages:
        out[versions_key] = stages
    out["CreatedDate"] = _ts(secret.created)
    return out


# -- operations -------------------------------------------------------------------------------

def create_secret(state, req, p, now):
    name = p["Name"]
    if not NAME_RE.match(name):
        raise AwsError("ValidationException",
                       "Invalid name. Must be a valid name containing alphanumeric characters, "
                       "or any of the following: -/_+=.@!")
    value = _value(p, required=False)
    if "AddReplicaRegions" in p:
        raise AwsError("InvalidRequestException",
                       "fakeaws does not support replica regions.")
    tags = p.get("Tags", [])
    _validate_tags(tags)
    token = p.get("ClientRequestToken")
    existing = state.secrets.get(name)
    if existing is not None:
        if existing.scheduled:
            raise AwsError("InvalidRequestException",
                           "You can't create this secret because a secret with this name is "
                           "already scheduled for deletion.")
        if value is not None and token is not None and token in existing.versions \
                and existing.versions[token].same_value(*value):
            # A retry of the CreateSecret that made this secret: nothing changes.
            return {"ARN": existing.arn, "Name": existing.name, "VersionId": token}
        raise AwsError("ResourceExistsException",
                       f"The operation failed because the secret {name} already exists.")
    secret = Secret(_new_arn(state, name, req), name, now)
    secret.description = p.get("Description")
    secret.kms_key_id = _kms(p.get("KmsKeyId"))
    _merge_tags(secret, tags)
    out = {"ARN": secret.arn, "Name": name}
    if value is not None:
        version = _add_version(secret, token, value, [CURRENT], now)
        out["VersionId"] = version.id
    secret.last_changed = now
    state.secrets[name] = secret
    return out


def describe_secret(state, req, p, now):
    return _describe(_secret(state, p), "VersionIdsToStages")


def get_secret_value(state, req, p, now):
    secret = _secret(state, p, allow_scheduled=False)
    vid = p.get("VersionId")
    stage = p.get("VersionStage")
    if vid is not None:
        version = secret.versions.get(vid)
        if version is None:
            raise AwsError("ResourceNotFoundException",
                           f"Secrets Manager can't find the specified secret value for "
                           f"VersionId: {vid}")
        if stage is not None and stage not in version.stages:
            raise AwsError("InvalidRequestException",
                           "You provided a VersionStage that is not associated to the provided "
                           "VersionId.")
    else:
        stage = stage or CURRENT
        version = secret.holder(stage)
        if version is None:
            raise AwsError("ResourceNotFoundException",
                           f"Secrets Manager can't find the specified secret value for staging "
                           f"label: {stage}")
    secret.last_accessed = version.last_accessed = _day(now)
    out = {"ARN": secret.arn, "Name": secret.name, "VersionId": version.id}
    if version.kind == "string":
        out["SecretString"] = version.value
    else:
        out["SecretBinary"] = base64.b64encode(version.value).decode("ascii")
    if version.stages:
        out["VersionStages"] = list(version.stages)
    out["CreatedDate"] = _ts(version.created)
    return out


def put_secret_value(state, req, p, now):
    secret = _secret(state, p, allow_scheduled=False)
    value = _value(p, required=True)
    token = p.get("ClientRequestToken")
    version = _existing_version(secret, token, value)
    if version is None:
        version = _add_version(secret, token, value, p.get("VersionStages") or [CURRENT], now)
    out = {"ARN": secret.arn, "Name": secret.name, "VersionId": version.id}
    if version.stages:
        out["VersionStages"] = list(version.stages)
    return out


def update_secret(state, req, p, now):
    secret = _secret(state, p, allow_scheduled=False)
    value = _value(p, required=False)
    out = {"ARN": secret.arn, "Name": secret.name}
    if value is not None:
        token = p.get("ClientRequestToken")
        version = _existing_version(secret, token, value)
        if version is None:
            version = _add_version(secret, token, value, [CURRENT], now)
        out["VersionId"] = version.id
    if "Description" in p:
        secret.description = p["Description"]
    if "KmsKeyId" in p:
        secret.kms_key_id = _kms(p["KmsKeyId"])
    secret.last_changed = now
    return out


def update_secret_version_stage(state, req, p, now):
    secret = _secret(state, p, allow_scheduled=False)
    label = p["VersionStage"]
    move_id = p.get("MoveToVersionId")
    remove_id = p.get("RemoveFromVersionId")
    if move_id is None and remove_id is None:
        raise AwsError("InvalidParameterException",
                       "You must specify MoveToVersionId, RemoveFromVersionId, or both.")
    for vid in (move_id, remove_id):
        if vid is not None and vid not in secret.versions:
            raise AwsError("ResourceNotFoundException",
                           f"Secrets Manager can't find the specified secret version: {vid}")
    holder = secret.holder(label)
    if remove_id is not None and (holder is None or holder.id != remove_id):
        if holder is None:
            raise AwsError("InvalidParameterException",
                           f"The staging label {label} isn't attached to version {remove_id}, "
                           f"so it can't be removed from it.")
        raise AwsError("InvalidParameterException",
                       f"The parameter RemoveFromVersionId doesn't match. Staging label {label} "
                       f"is currently attached to version {holder.id}, so you must explicitly "
                       f"reference that version in RemoveFromVersionId.")
    if move_id is None:
        if label == CURRENT:
            raise AwsError("InvalidParameterException",
                           "You can't remove the staging label AWSCURRENT from a version "
                           "without moving it to another version. Specify MoveToVersionId.")
        holder.stages.remove(label)
    else:
        target = secret.versions[move_id]
        if holder is not None and holder is not target and remove_id is None:
            raise AwsError("InvalidParameterException",
                           f"The parameter RemoveFromVersionId can't be empty. Staging label "
                           f"{label} is currently attached to version {holder.id}, so you must "
                           f"explicitly reference that version in RemoveFromVersionId.")
        if holder is None and label not in secret.labels() and \
                len(secret.labels()) + 1 > MAX_LABELS_PER_SECRET:
            raise AwsError("LimitExceededException",
                           f"A secret can have at most {MAX_LABELS_PER_SECRET} staging labels "
                           f"attached across all of its versions.")
        _move_label(secret, label, target)
    secret.last_changed = now
    _prune(secret, now)
    return {"ARN": secret.arn, "Name": secret.name}


def list_secret_version_ids(state, req, p, now):
    secret = _secret(state, p)
    include = p.get("IncludeDeprecated", False)
    kms = [secret.kms_key_id] if secret.kms_key_id else ["DefaultEncryptionKey"]
    entries = []
    for v in secret.versions.values():
        if not v.stages and not include:
            continue
        e = {"VersionId": v.id}
        if v.stages:
            e["VersionStages"] = list(v.stages)
        if v.last_accessed is not None:
            e["LastAccessedDate"] = _ts(v.last_accessed)
        e["CreatedDate"] = _ts(v.created)
        e["KmsKeyIds"] = list(kms)
        entries.append(e)
    page, nxt = _page(entries, p, "versions:" + secret.arn)
    out = {"Versions": page}
    if nxt:
        out["NextToken"] = nxt
    out["ARN"] = secret.arn
    out["Name"] = secret.name
    return out


def _prefix_any(candidates, value, fold=False):
    if fold:
        value = value.lower()
        candidates = [c.lower() for c in candidates]
    return any(c.startswith(value) for c in candidates)


def _filter_match(secret, key, value):
    tags = secret.tag_dict()
    if key == "name":
        return secret.name.startswith(value)
    if key == "description":
        return _prefix_any([secret.description or ""], value, fold=True) \
            if secret.description is not None else False
    if key == "tag-key":
        return _prefix_any(list(tags), value)
    if key == "tag-value":
        return _prefix_any(list(tags.values()), value)
    if key == "all":
        attrs = [secret.name] + list(tags) + list(tags.values())
        if secret.description:
            attrs += secret.description.split()
        attrs += [part for part in re.split(r"[/_+=.@-]", secret.name) if part]
        words = value.split()
        return any(_prefix_any(attrs, w, fold=True) for w in words) if words else True
    return False  # primary-region, owning-service: no secret here is replicated or managed


def _matches(secret, filters):
    for f in filters:
        key = f.get("Key")
        values = f.get("Values")
        if key is None or not values:
            raise AwsError("InvalidParameterException",
                           "Each filter needs a Key and at least one value in Values.")
        positive = [v for v in values if not v.startswith("!")]
        negative = [v[1:] for v in values if v.startswith("!")]
        if positive and not any(_filter_match(secret, key, v) for v in positive):
            return False
        if any(_filter_match(secret, key, v) for v in negative):
            return False
    return True


def list_secrets(state, req, p, now):
    include_deleted = p.get("IncludePlannedDeletion", False)
    filters = p.get("Filters", [])
    secrets = [s for s in state.secrets.values()
               if (include_deleted or not s.scheduled) and _matches(s, filters)]
    sort_by = p.get("SortBy", "created-date")
    keyf = {
        "created-date": lambda s: (s.created, s.name),
        "last-changed-date": lambda s: (s.last_changed, s.name),
        "last-accessed-date": lambda s: (s.last_accessed or 0.0, s.name),
        "name": lambda s: (s.name,),
    }[sort_by]
    secrets.sort(key=keyf, reverse=(p.get("SortOrder", "asc") == "desc"))
    # Only the page's entries are described: a walk over 10,000 secrets costs 100 pages, not
    # 100 x 10,000 descriptions.
    page, nxt = _page(secrets, p, "secrets")
    out = {"SecretList": [_describe(s, "SecretVersionsToStages") for s in page]}
    if nxt:
        out["NextToken"] = nxt
    return out


def seed_secrets(store, count, prefix="keybroker/", tenant_prefix="t", start=0):
    """The control endpoint's bulk creation (POST /_fakeaws/seed-secrets): secrets named
    <prefix><tenant_prefix><i> for i in start..start+count-1, tagged keybroker:tenant=<tenant>
    and keybroker:managed=true as keybroker tags its own, each with one AWSCURRENT version whose
    value holds no key. A name that exists is left alone. Returns how many were created."""
    state = _state(store)
    now = time.time()
    made = 0
    for i in range(start, start + count):
        tenant = f"{tenant_prefix}{i}"
        name = prefix + tenant
        if name in state.secrets:
            continue
        secret = Secret(_new_arn(state, name), name, now)
        _merge_tags(secret, [{"Key": "keybroker:tenant", "Value": tenant},
                             {"Key": "keybroker:managed", "Value": "true"}])
        _add_version(secret, None, ("string", json.dumps({"Version": 1, "Seeded": True})),
                     [CURRENT], now)
        state.secrets[name] = secret
        made += 1
    return made


def delete_secret(state, req, p, now):
    window = p.get("RecoveryWindowInDays")
    force = p.get("ForceDeleteWithoutRecovery", False)
    if force and window is not None:
        raise AwsError("InvalidParameterException",
                       "You can't use ForceDeleteWithoutRecovery in conjunction with "
                       "RecoveryWindowInDays.")
    if window is not None and not 7 <= window <= 30:
        raise AwsError("InvalidParameterException",
                       "The RecoveryWindowInDays value must be between 7 and 30 days "
                       "(inclusive).")
    secret = state.lookup(p["SecretId"])
    if secret is None:
        if not force:
            raise AwsError("ResourceNotFoundException", MSG_NOT_FOUND)
        # AWS: forcibly deleting a nonexistent secret does not return ResourceNotFound.
        sid = p["SecretId"]
        if sid.startswith("arn:"):
            arn, name = sid, sid.split(":secret:", 1)[-1]
        else:
            arn, name = _new_arn(state, sid), sid
        return {"ARN": arn, "Name": name, "DeletionDate": _ts(now)}
    if force:
        del state.secrets[secret.name]
        return {"ARN": secret.arn, "Name": secret.name, "DeletionDate": _ts(now)}
    if secret.scheduled:
        raise AwsError("InvalidRequestException",
                       "You can't perform this operation on the secret because it was already "
                       "scheduled for deletion.")
    days = 30 if window is None else window
    secret.deleted_at = now
    secret.deletion_date = now + days * DAY
    secret.last_changed = now
    return {"ARN": secret.arn, "Name": secret.name, "DeletionDate": _ts(secret.deletion_date)}


def restore_secret(state, req, p, now):
    secret = _secret(state, p)
    if secret.scheduled:
        secret.deleted_at = None
        secret.deletion_date = None
        secret.last_changed = now
    return {"ARN": secret.arn, "Name": secret.name}


def tag_resource(state, req, p, now):
    secret = _secret(state, p, allow_scheduled=False)
    _validate_tags(p["Tags"])
    _merge_tags(secret, p["Tags"])
    secret.last_changed = now
    return {}


def untag_resource(state, req, p, now):
    secret = _secret(state, p, allow_scheduled=False)
    for key in p["TagKeys"]:
        _validate_tag_key(key)
    drop = set(p["TagKeys"])
    secret.tags = [t for t in secret.tags if t["Key"] not in drop]
    secret.last_changed = now
    return {}


def get_resource_policy(state, req, p, now):
    secret = _secret(state, p)
    out = {"ARN": secret.arn, "Name": secret.name}
    if secret.policy is not None:
        out["ResourcePolicy"] = secret.policy
    return out


HANDLERS = {
    "CreateSecret": create_secret,
    "DescribeSecret": describe_secret,
    "GetSecretValue": get_secret_value,
    "PutSecretValue": put_secret_value,
    "UpdateSecret": update_secret,
    "UpdateSecretVersionStage": update_secret_version_stage,
    "ListSecretVersionIds": list_secret_version_ids,
    "ListSecrets": list_secrets,
    "DeleteSecret": delete_secret,
    "RestoreSecret": restore_secret,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "GetResourcePolicy": get_resource_policy,
}


# -- state dump -------------------------------------------------------------------------------

def dump_state(store):
    """Every secret and version, without any secret value: a version shows the SHA-256 of its
    value and, when the value is a JSON object, only its "AccessKeyId" member."""
    state = _state(store)
    secrets = []
    for s in state.secrets.values():
        versions = []
        for v in s.versions.values():
            versions.append({
                "version_id": v.id,
                "stages": list(v.stages),
                "created": v.created,
                "client_request_token": v.token,
                "value_type": v.kind,
                "value_sha256": v.sha256(),
                "access_key_id": v.access_key_id(),
                "last_accessed": v.last_accessed,
            })
        secrets.append({
            "arn": s.arn,
            "name": s.name,
            "kms_key_id": s.kms_key_id,
            "tags": [dict(t) for t in s.tags],
            "created": s.created,
            "last_changed": s.last_changed,
            "last_accessed": s.last_accessed,
            "deleted_at": s.deleted_at,
            "deletion_date": s.deletion_date,
            "scheduled_for_deletion": s.scheduled,
            "versions": versions,
        })
    return {"secrets": secrets}
