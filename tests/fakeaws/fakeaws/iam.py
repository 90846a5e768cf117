"""IAM (Query API, version 2010-05-08): users, tags, inline and attached user policies,
permissions boundaries and access keys.

Requests are form-encoded (Action=CreateUser&Version=2010-05-08&UserName=...); responses are
<XxxResponse><XxxResult>...</XxxResult><ResponseMetadata>...</ResponseMetadata></XxxResponse>
in the IAM namespace. Parameters are validated as IAM's front end does (ValidationError naming
the member in lowerCamelCase), then the operation's own rules apply (EntityAlreadyExists,
NoSuchEntity, DeleteConflict, LimitExceeded, MalformedPolicyDocument, InvalidInput).

User names are unique case-insensitively and looked up case-insensitively, as in IAM.

With moto_style (dialect.py) the bodies are written the way moto 5.2.1 writes them: CreateDate
with microseconds, UserIds of 20 lower-case alphanumerics, no PermissionsBoundary in the User
element, no IsTruncated in an untruncated ListAccessKeys, GetUserPolicy's document
percent-encoded with "/" kept and "*" encoded, and moto's messages for
EntityAlreadyExists and the missing inline policy or access key (the server removes the
whitespace between elements and writes moto's error body).
"""

import base64
import json
import re
import secrets
import time
import unicodedata
from urllib.parse import quote

from . import dialect
from . import policy as _policy
from .core import AccessKey, AwsError, Response, iso8601, query_operation, xml_escape, Authz

SERVICE = "iam"
PROTOCOL = "query"
XMLNS = "https://iam.amazonaws.com/doc/2010-05-08/"
VERSION = "2010-05-08"

MAX_KEYS_PER_USER = 2
MAX_MANAGED_PER_USER = 10
MAX_INLINE_CHARS_PER_USER = 2048
MAX_TAGS = 50

ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

# AWS managed policies fakeaws knows (documents as AWS publishes them, trimmed of services
# fakeaws does not emulate where noted).
BUILTIN_POLICIES = {
    "arn:aws:iam::aws:policy/AdministratorAccess": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
    "arn:aws:iam::aws:policy/AmazonS3FullAccess": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:*", "s3-object-lambda:*"],
                       "Resource": "*"}]},
    "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow",
                       "Action": ["s3:Get*", "s3:List*", "s3:Describe*",
                                  "s3-object-lambda:Get*", "s3-object-lambda:List*"],
                       "Resource": "*"}]},
    "arn:aws:iam::aws:policy/IAMFullAccess": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow",
                       "Action": ["iam:*", "organizations:DescribeAccount",
                                  "organizations:DescribeOrganization",
                                  "organizations:DescribeOrganizationalUnit",
                                  "organizations:DescribePolicy",
                                  "organizations:ListChildren", "organizations:ListParents",
                                  "organizations:ListPoliciesForTarget",
                                  "organizations:ListRoots", "organizations:ListPolicies",
                                  "organizations:ListTargetsForPolicy"],
                       "Resource": "*"}]},
    "arn:aws:iam::aws:policy/IAMReadOnlyAccess": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow",
                       "Action": ["iam:GenerateCredentialReport",
                                  "iam:GenerateServiceLastAccessedDetails", "iam:Get*",
                                  "iam:List*", "iam:SimulateCustomPolicy",
                                  "iam:SimulatePrincipalPolicy"],
                       "Resource": "*"}]},
    "arn:aws:iam::aws:policy/IAMUserChangePassword": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iam:ChangePassword"],
                       "Resource": ["arn:aws:iam::*:user/${aws:username}"]},
                      {"Effect": "Allow", "Action": ["iam:GetAccountPasswordPolicy"],
                       "Resource": "*"}]},
    # The real policy also grants the KMS, Lambda, RDS, Redshift, ... calls the console's
    # rotation wizard uses; only its Secrets Manager part matters here.
    "arn:aws:iam::aws:policy/SecretsManagerReadWrite": {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "BasePermissions", "Effect": "Allow",
                       "Action": ["secretsmanager:*", "kms:DescribeKey", "kms:ListAliases",
                                  "kms:ListKeys", "tag:GetResources"],
                       "Resource": "*"}]},
}


# -- state --------------------------------------------------------------------------------------


class User:
    def __init__(self, name, path, user_id, arn, created):
        self.name = name
        self.path = path
        self.id = user_id
        self.arn = arn
        self.created = created
        self.tags = {}  # lower-case key -> (key, value), in insertion order
        self.boundary = None  # managed policy ARN
        self.inline = {}  # policy name -> (document text, parsed document)
        self.attached = []  # managed policy ARNs, in attach order


class State:
    def __init__(self, store):
        self.store = store
        self.users = {}  # lower-case user name -> User
        self.ids = set()

    def get(self, name):
        if not isinstance(name, str):
            return None
        return self.users.get(name.lower())

    def user_arn(self, user_name):
        u = self.get(user_name)
        if u is not None:
            return u.arn
        return f"arn:aws:iam::{self.store.account_id}:user/{user_name}"

    def new_id(self, prefix):
        while True:
            v = prefix + "".join(secrets.choice(ID_ALPHABET) for _ in range(17 if prefix == "AIDA"
                                                                             else 16))
            if v not in self.ids and v not in self.store.access_keys:
                self.ids.add(v)
                return v


def new_state(store):
    for arn, doc in BUILTIN_POLICIES.items():
        store.managed_policies.setdefault(arn, json.loads(json.dumps(doc)))
    return State(store)


def _state(store):
    return store.services[SERVICE]


# -- functions used by policy.py and sts.py ----------------------------------------------------


def identity_policies(store, user_name):
    """The user's identity policies as documents: inline ones, then attached managed ones."""
    u = _state(store).get(user_name)
    if u is None:
        return []
    docs = [parsed for _, parsed in u.inline.values()]
    for arn in u.attached:
        doc = store.managed_policies.get(arn)
        if isinstance(doc, dict):
            docs.append(doc)
    return docs


def boundary_policy(store, user_name):
    u = _state(store).get(user_name)
    if u is None or u.boundary is None:
        return None
    doc = store.managed_policies.get(u.boundary)
    # A boundary whose policy has gone allows nothing.
    return doc if isinstance(doc, dict) else {"Version": "2012-10-17", "Statement": []}


def principal_info(store, user_name):
    u = _state(store).get(user_name)
    if u is None:
        return None
    return {"user_name": u.name, "user_id": u.id, "arn": u.arn, "path": u.path,
            "tags": {k: v for k, v in u.tags.values()}}


# -- parameter validation (IAM's front end: ValidationError) ----------------------------------

NAME_RE = re.compile(r"[\w+=,.@-]+", re.A)
PATH_RE = re.compile(r"/|/[\x21-\x7E]+/")
PATH_PREFIX_RE = re.compile(r"/[\x21-\x7F]*")
POLICY_PATH_RE = re.compile(r"((/[A-Za-z0-9.,+@=_-]+)*)/")
DOC_RE = re.compile(r"[\t\n\r\x20-\xFF]+")
MARKER_RE = re.compile(r"[\x20-\xFF]+")
KEY_ID_RE = re.compile(r"[\w]+", re.A)
POLICY_ARN_RE = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}|aws):policy/([\x21-\x7E]*/)?"
                           r"[\w+=,.@-]+", re.A)

# shape -> (min, max, regex, shown pattern)
SHAPES = {
    "userName": (1, 64, NAME_RE, r"[\w+=,.@-]+"),
    "existingUserName": (1, 128, NAME_RE, r"[\w+=,.@-]+"),
    "path": (1, 512, PATH_RE, r"(\u002F)|(\u002F[\u0021-\u007E]+\u002F)"),
    "pathPrefix": (1, 512, PATH_PREFIX_RE, r"\u002F[\u0021-\u007F]*"),
    "policyPath": (1, 512, POLICY_PATH_RE, r"((/[A-Za-z0-9\.,\+@=_-]+)*)/"),
    "arn": (20, 2048, None, None),
    "policyName": (1, 128, NAME_RE, r"[\w+=,.@-]+"),
    "policyDocument": (1, 131072, DOC_RE, r"[\u0009\u000A\u000D\u0020-\u00FF]+"),
    "marker": (1, 320, MARKER_RE, r"[\u0020-\u00FF]+"),
    "accessKeyId": (16, 128, KEY_ID_RE, r"[\w]+"),
}

# operation -> [(Member, shape, required)]
PARAMS = {
    "CreateUser": [("Path", "path", False), ("UserName", "userName", True),
                   ("PermissionsBoundary", "arn", False), ("Tags", "tags", False)],
    "GetUser": [("UserName", "existingUserName", False)],
    "DeleteUser": [("UserName", "existingUserName", True)],
    "TagUser": [("UserName", "existingUserName", True), ("Tags", "tags", True)],
    "UntagUser": [("UserName", "existingUserName", True), ("TagKeys", "tagKeys", True)],
    "ListUserTags": [("UserName", "existingUserName", True), ("Marker", "marker", False),
                     ("MaxItems", "maxItems", False)],
    "ListUsers": [("PathPrefix", "pathPrefix", False), ("Marker", "marker", False),
                  ("MaxItems", "maxItems", False)],
    "PutUserPolicy": [("UserName", "existingUserName", True), ("PolicyName", "policyName", True),
                      ("PolicyDocument", "policyDocument", True)],
    "GetUserPolicy": [("UserName", "existingUserName", True), ("PolicyName", "policyName", True)],
    "DeleteUserPolicy": [("UserName", "existingUserName", True),
                         ("PolicyName", "policyName", True)],
    "ListUserPolicies": [("UserName", "existingUserName", True), ("Marker", "marker", False),
                         ("MaxItems", "maxItems", False)],
    "AttachUserPolicy": [("UserName", "userName", True), ("PolicyArn", "arn", True)],
    "DetachUserPolicy": [("UserName", "userName", True), ("PolicyArn", "arn", True)],
    "ListAttachedUserPolicies": [("UserName", "userName", True),
                                 ("PathPrefix", "policyPath", False), ("Marker", "marker", False),
                                 ("MaxItems", "maxItems", False)],
    "PutUserPermissionsBoundary": [("UserName", "userName", True),
                                   ("PermissionsBoundary", "arn", True)],
    "DeleteUserPermissionsBoundary": [("UserName", "userName", True)],
    "CreateAccessKey": [("UserName", "existingUserName", False)],
    "ListAccessKeys": [("UserName", "existingUserName", False), ("Marker", "marker", False),
                       ("MaxItems", "maxItems", False)],
    "UpdateAccessKey": [("UserName", "existingUserName", False),
                        ("AccessKeyId", "accessKeyId", True), ("Status", "status", True)],
    "DeleteAccessKey": [("UserName", "existingUserName", False),
                        ("AccessKeyId", "accessKeyId", True)],
    "GetAccessKeyLastUsed": [("AccessKeyId", "accessKeyId", True)],
}

OPERATIONS = set(PARAMS)


def _camel(member):
    return member[0].lower() + member[1:]


def _shown(value):
    return "null" if value is None else f"'{value}'"


def _tag_char_ok(c):
    return unicodedata.category(c)[0] in "LZN" or c in "_.:/=+-@"


def _check_string(errors, where, value, shape):
    lo, hi, rx, shown = SHAPES[shape]
    if len(value) < lo:
        errors.append(f"Value {_shown(value)} at '{where}' failed to satisfy constraint: Member "
                      f"must have length greater than or equal to {lo}")
    elif len(value) > hi:
        errors.append(f"Value {_shown(value)} at '{where}' failed to satisfy constraint: Member "
                      f"must have length less than or equal to {hi}")
    elif rx is not None and not rx.fullmatch(value):
        if shape == "path":
            raise AwsError("ValidationError", "The specified value for path is invalid. It must "
                           "begin and end with / and contain only alphanumeric characters and/or "
                           "/ characters.")
        errors.append(f"Value {_shown(value)} at '{where}' failed to satisfy constraint: Member "
                      f"must satisfy regular expression pattern: {shown}")


def _list_param(req, name):
    """A Query-API list (Name.member.N[.Sub]) -> list of values or dicts, in index order; None
    when absent. An explicitly empty list is sent as `Name=`."""
    prefix = name + ".member."
    items = {}
    for k, v in req.params.items():
        if not k.startswith(prefix):
            continue
        idx, _, sub = k[len(prefix):].partition(".")
        if not idx.isdigit():
            raise AwsError("ValidationError", f"Invalid list index in parameter {k}")
        if sub:
            items.setdefault(int(idx), {})
            if isinstance(items[int(idx)], dict):
                items[int(idx)][sub] = v
        else:
            items[int(idx)] = v
    if not items:
        return [] if name in req.params else None
    return [items[i] for i in sorted(items)]


def _tags_param(req, errors, required):
    tags = _list_param(req, "Tags")
    if tags is None:
        if required:
            errors.append("Value null at 'tags' failed to satisfy constraint: Member must not be "
                          "null")
        return None
    if len(tags) > MAX_TAGS:
        errors.append(f"Value '{tags}' at 'tags' failed to satisfy constraint: Member must have "
                      f"length less than or equal to {MAX_TAGS}")
    out = []
    for i, t in enumerate(tags, 1):
        if not isinstance(t, dict):
            t = {}
        key, value = t.get("Key"), t.get("Value")
        for member, v, lo, hi in (("key", key, 1, 128), ("value", value, 0, 256)):
            where = f"tags.{i}.member.{member}"
            if v is None:
                errors.append(f"Value null at '{where}' failed to satisfy constraint: Member "
                              f"must not be null")
            elif len(v) < lo:
                errors.append(f"Value '{v}' at '{where}' failed to satisfy constraint: Member "
                              f"must have length greater than or equal to {lo}")
            elif len(v) > hi:
                errors.append(f"Value '{v}' at '{where}' failed to satisfy constraint: Member "
                              f"must have length less than or equal to {hi}")
            elif not all(_tag_char_ok(c) for c in v):
                pat = "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]" + ("+" if member == "key" else "*")
                errors.append(f"Value '{v}' at '{where}' failed to satisfy constraint: Member "
                              f"must satisfy regular expression pattern: {pat}")
        out.append((key, value))
    return out


def validate(req, op):
    """Check op's parameters against the model; returns a dict of the parsed values."""
    errors = []
    values = {}
    for member, shape, required in PARAMS[op]:
        where = _camel(member)
        if shape == "tags":
            values[member] = _tags_param(req, errors, required)
            continue
        if shape == "tagKeys":
            keys = _list_param(req, "TagKeys")
            if keys is None:
                errors.append("Value null at 'tagKeys' failed to satisfy constraint: Member must "
                              "not be null")
            else:
                if len(keys) > MAX_TAGS:
                    errors.append(f"Value '{keys}' at 'tagKeys' failed to satisfy constraint: "
                                  f"Member must have length less than or equal to {MAX_TAGS}")
                for i, k in enumerate(keys, 1):
                    where = f"tagKeys.{i}.member"
                    if not isinstance(k, str):
                        k = ""
                    if len(k) < 1:
                        errors.append(f"Value '{k}' at '{where}' failed to satisfy constraint: "
                                      f"Member must have length greater than or equal to 1")
                    elif len(k) > 128:
                        errors.append(f"Value '{k}' at '{where}' failed to satisfy constraint: "
                                      f"Member must have length less than or equal to 128")
                    elif not all(_tag_char_ok(c) for c in k):
                        errors.append(f"Value '{k}' at '{where}' failed to satisfy constraint: "
                                      f"Member must satisfy regular expression pattern: "
                                      f"[\\p{{L}}\\p{{Z}}\\p{{N}}_.:/=+\\-@]+")
            values[member] = keys
            continue
        value = req.params.get(member)
        if value is None:
            if required:
                errors.append(f"Value null at '{where}' failed to satisfy constraint: Member "
                              f"must not be null")
            values[member] = None
            continue
        if shape == "maxItems":
            try:
                n = int(value)
            except ValueError:
                errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: "
                              f"Member must be a number")
                continue
            if n < 1:
                errors.append(f"Value '{n}' at '{where}' failed to satisfy constraint: Member "
                              f"must have value greater than or equal to 1")
            elif n > 1000:
                errors.append(f"Value '{n}' at '{where}' failed to satisfy constraint: Member "
                              f"must have value less than or equal to 1000")
            values[member] = n
            continue
        if shape == "status":
            if value not in ("Active", "Inactive", "Expired"):
                errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: "
                              f"Member must satisfy enum value set: [Active, Expired, Inactive]")
            values[member] = value
            continue
        _check_string(errors, where, value, shape)
        values[member] = value
    if errors:
        n = len(errors)
        raise AwsError("ValidationError", f"{n} validation error{'s' if n > 1 else ''} "
                       f"detected: " + "; ".join(errors))
    return values


# -- request plumbing ---------------------------------------------------------------------------


def operation(req):
    return query_operation(req, OPERATIONS, VERSION)


def resource_name(req, op):
    return req.params.get("UserName") or req.params.get("AccessKeyId")


def _target_user_name(req, values):
    """UserName, or the caller's own user name when the parameter is optional and absent."""
    name = values.get("UserName")
    if name is None and req.caller is not None:
        return req.caller.user_name  # None for the root
    return name


def _user_or_404(state, name):
    u = state.get(name)
    if u is None:
        raise AwsError("NoSuchEntity", f"The user with name {name} cannot be found.", status=404)
    return u


def _resource_tags_ctx(state, name):
    u = state.get(name)
    ctx = {}
    if u is not None:
        for k, v in u.tags.values():
            ctx[f"iam:ResourceTag/{k}"] = v
            ctx[f"aws:ResourceTag/{k}"] = v
    return ctx


def _request_tags_ctx(tags):
    ctx = {}
    if tags:
        for k, v in tags:
            ctx[f"aws:RequestTag/{k}"] = v
        ctx["aws:TagKeys"] = [k for k, _ in tags]
    return ctx


def authorize(store, req, op):
    values = validate(req, op)
    state = _state(store)
    acct = store.account_id
    action = f"iam:{op}"
    if op == "ListUsers":
        prefix = values.get("PathPrefix") or "/"
        return [Authz(action, f"arn:aws:iam::{acct}:user{prefix}")]
    if op == "GetAccessKeyLastUsed":
        key = store.access_keys.get(values["AccessKeyId"])
        if key is None:
            return [Authz(action, f"access key {values['AccessKeyId']}")]
        owner = store.root_arn() if key.user_name is None else state.user_arn(key.user_name)
        return [Authz(action, owner)]
    name = _target_user_name(req, values)
    if name is None:
        return [Authz(action, store.root_arn())]
    if op == "CreateUser":
        path = values.get("Path") or "/"
        ctx = _request_tags_ctx(values.get("Tags"))
        if values.get("PermissionsBoundary"):
            ctx["iam:PermissionsBoundary"] = values["PermissionsBoundary"]
        return [Authz(action, f"arn:aws:iam::{acct}:user{path}{name}", ctx)]
    ctx = _resource_tags_ctx(state, name)
    if op == "TagUser":
        ctx.update(_request_tags_ctx(values.get("Tags")))
    elif op == "UntagUser":
        ctx["aws:TagKeys"] = list(values.get("TagKeys") or [])
    elif op in ("AttachUserPolicy", "DetachUserPolicy"):
        ctx["iam:PolicyARN"] = values["PolicyArn"]
    elif op == "PutUserPermissionsBoundary":
        ctx["iam:PermissionsBoundary"] = values["PermissionsBoundary"]
    return [Authz(action, state.user_arn(name), ctx)]


def handle(store, req, op):
    values = validate(req, op)
    return HANDLERS[op](store, req, values)


# -- XML ----------------------------------------------------------------------------------------


def _el(name, value, indent=""):
    return f"{indent}<{name}>{xml_escape(value)}</{name}>\n"


def _response(op, req, result=None):
    body = f'<{op}Response xmlns="{XMLNS}">\n'
    if result is not None:
        body += f"  <{op}Result>\n{result}  </{op}Result>\n"
    body += (f"  <ResponseMetadata>\n    <RequestId>{req.request_id}</RequestId>\n"
             f"  </ResponseMetadata>\n</{op}Response>\n")
    return Response(200, body, content_type="text/xml")


def _tags_xml(tags, indent):
    out = f"{indent}<Tags>\n"
    for k, v in tags:
        out += (f"{indent}  <member>\n" + _el("Key", k, indent + "    ")
                + _el("Value", v, indent + "    ") + f"{indent}  </member>\n")
    return out + f"{indent}</Tags>\n"


def _date(req, epoch):
    """IAM's timestamp: whole seconds, or moto's microseconds in moto_style."""
    return dialect.iso_micro(epoch) if req.moto_style else iso8601(epoch)


def _user_fields(u, indent, full, req):
    out = (_el("Path", u.path, indent) + _el("UserName", u.name, indent)
           + _el("UserId", u.id, indent) + _el("Arn", u.arn, indent)
           + _el("CreateDate", _date(req, u.created), indent))
    if full and u.boundary and not req.moto_style:  # moto never returns the boundary
        out += (f"{indent}<PermissionsBoundary>\n"
                + _el("PermissionsBoundaryType", "PermissionsBoundaryPolicy", indent + "  ")
                + _el("PermissionsBoundaryArn", u.boundary, indent + "  ")
                + f"{indent}</PermissionsBoundary>\n")
    if full and u.tags:
        out += _tags_xml(list(u.tags.values()), indent)
    return out


def _user_xml(u, req, full=True):
    return "    <User>\n" + _user_fields(u, "      ", full, req) + "    </User>\n"


def _paginate(values, items, sort_key):
    """IAM's Marker/MaxItems pagination over items sorted by sort_key. Returns (page, xml of
    IsTruncated and Marker)."""
    items = sorted(items, key=sort_key)
    marker = values.get("Marker")
    if marker is not None:
        try:
            after = base64.b64decode(marker.encode(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise AwsError("ValidationError", "Invalid Marker.")
        if not after.startswith("m1:"):
            raise AwsError("ValidationError", "Invalid Marker.")
        after = after[3:]
        items = [i for i in items if sort_key(i) > after]
    limit = values.get("MaxItems") or 100
    page = items[:limit]
    if len(items) > limit:
        token = base64.b64encode(("m1:" + sort_key(page[-1])).encode()).decode()
        return page, "    <IsTruncated>true</IsTruncated>\n" + _el("Marker", token, "    ")
    return page, "    <IsTruncated>false</IsTruncated>\n"


# -- users --------------------------------------------------------------------------------------


def _check_tags(tags):
    seen = set()
    for k, _ in tags:
        if k.lower().startswith("aws:"):
            raise AwsError("InvalidInput", "User tag keys starting with 'aws:' are reserved for "
                           "internal AWS use.")
        if k.lower() in seen:
            raise AwsError("InvalidInput", "Duplicate tag keys found. Please note that Tag keys "
                           "are case insensitive.")
        seen.add(k.lower())


def _managed_policy(store, arn, boundary=False):
    if not POLICY_ARN_RE.fullmatch(arn):
        raise AwsError("InvalidInput", f"ARN {arn} is not valid.")
    if arn not in store.managed_policies:
        if boundary:
            raise AwsError("NoSuchEntity", f"Scope ARN: {arn} does not exist or is not "
                           f"attachable.", status=404)
        raise AwsError("NoSuchEntity", f"Policy {arn} does not exist or is not attachable.",
                       status=404)
    return arn


def _create_user(store, req, v):
    state = _state(store)
    name, path = v["UserName"], v.get("Path") or "/"
    tags = v.get("Tags") or []
    _check_tags(tags)
    if state.get(name) is not None:
        message = f"User {name} already exists" if req.moto_style \
            else f"User with name {name} already exists."
        raise AwsError("EntityAlreadyExists", message, status=409)
    boundary = None
    if v.get("PermissionsBoundary") is not None:
        boundary = _managed_policy(store, v["PermissionsBoundary"], boundary=True)
    user_id = dialect.moto_user_id() if req.moto_style else state.new_id("AIDA")
    u = User(name, path, user_id,
             f"arn:aws:iam::{store.account_id}:user{path}{name}", time.time())
    for k, val in tags:
        u.tags[k.lower()] = (k, val)
    u.boundary = boundary
    state.users[name.lower()] = u
    return _response("CreateUser", req, _user_xml(u, req))


def _get_user(store, req, v):
    state = _state(store)
    name = _target_user_name(req, v)
    if name is None:
        # The root: IAM answers with the account's identity and no user name or path.
        out = ("    <User>\n" + _el("UserId", store.account_id, "      ")
               + _el("Arn", store.root_arn(), "      ")
               + _el("CreateDate", _date(req, 0), "      ") + "    </User>\n")
        return _response("GetUser", req, out)
    return _response("GetUser", req, _user_xml(_user_or_404(state, name), req))


def _user_keys(store, user_name):
    return [k for k in store.access_keys.values()
            if k.user_name is not None and user_name is not None
            and k.user_name.lower() == user_name.lower()]


def _delete_user(store, req, v):
    state = _state(store)
    u = _user_or_404(state, v["UserName"])
    if _user_keys(store, u.name):
        raise AwsError("DeleteConflict", "Cannot delete entity, must delete access keys first.",
                       status=409)
    if u.inline:
        raise AwsError("DeleteConflict", "Cannot delete entity, must delete policies first.",
                       status=409)
    if u.attached:
        raise AwsError("DeleteConflict", "Cannot delete entity, must detach all policies first.",
                       status=409)
    del state.users[u.name.lower()]
    return _response("DeleteUser", req)


def _list_users(store, req, v):
    prefix = v.get("PathPrefix") or "/"
    users = [u for u in _state(store).users.values() if u.path.startswith(prefix)]
    page, tail = _paginate(v, users, lambda u: u.name.lower())
    out = "    <Users>\n"
    for u in page:
        out += "      <member>\n" + _user_fields(u, "        ", False, req) + "      </member>\n"
    return _response("ListUsers", req, out + "    </Users>\n" + tail)


def _tag_user(store, req, v):
    u = _user_or_404(_state(store), v["UserName"])
    tags = v["Tags"] or []
    _check_tags(tags)
    merged = dict(u.tags)
    for k, val in tags:
        merged[k.lower()] = (k, val)
    if len(merged) > MAX_TAGS:
        raise AwsError("LimitExceeded", "The number of tags has reached the maximum limit.",
                       status=409)
    u.tags = merged
    return _response("TagUser", req)


def _untag_user(store, req, v):
    u = _user_or_404(_state(store), v["UserName"])
    for k in v["TagKeys"] or []:
        u.tags.pop(k.lower(), None)
    return _response("UntagUser", req)


def _list_user_tags(store, req, v):
    u = _user_or_404(_state(store), v["UserName"])
    order = {lk: i for i, lk in enumerate(u.tags)}
    page, tail = _paginate(v, list(u.tags.items()), lambda kv: f"{order[kv[0]]:06d}")
    return _response("ListUserTags", req,
                     _tags_xml([kv[1] for kv in page], "    ") + tail)


def _put_boundary(store, req, v):
    u = _user_or_404(_state(store), v["UserName"])
    u.boundary = _managed_policy(store, v["PermissionsBoundary"], boundary=True)
    return _response("PutUserPermissionsBoundary", req)


def _delete_boundary(store, req, v):
    u = _user_or_404(_state(store), v["UserName"])
    u.boundary = None
    return _response("DeleteUserPermissionsBoundary", req)


# -- inline policies ----------------------------------------------------------------------------


def _policy_chars(text):
    return sum(1 for c in text if not c.isspace())


def _put_user_policy(store, req, v):
    u = _user_or_404(_state(store), v["UserName"])
    name, text = v["PolicyName"], v["PolicyDocument"]
    try:
        doc = _policy.parse_policy(text, "identity")
    except _policy.PolicySyntaxError as e:
        raise AwsError("MalformedPolicyDocument", str(e))
    total = _policy_chars(text) + sum(_policy_chars(t) for n, (t, _) in u.inline.items()
                                      if n != name)
    if total > MAX_INLINE_CHARS_PER_USER:
        raise AwsError("LimitExceeded", f"Maximum policy size of {MAX_INLINE_CHARS_PER_USER} "
                       f"bytes exceeded for user {u.name}", status=409)
    u.inline[name] = (text, doc)
    return _response("PutUserPolicy", req)


def _inline_or_404(u, name, req):
    if name not in u.inline:
        message = f"Policy {name} not found" if req.moto_style \
            else f"The user policy with name {name} cannot be found."
        raise AwsError("NoSuchEntity", message, status=404)
    return u.inline[name]


def _get_user_policy(store, req, v):
    u = _user_or_404(_state(store), v["UserName"])
    text, _ = _inline_or_404(u, v["PolicyName"], req)
    out = (_el("UserName", u.name, "    ") + _el("PolicyName", v["PolicyName"], "    ")
           + _el("PolicyDocument", quote(text, safe="/" if req.moto_style else "*"), "    "))
    return _response("GetUserPolicy", req, out)


def _delete_user_policy(store, req, v):
    u = _user_or_404(_state(store), v["UserName"])
    _inline_or_404(u, v["PolicyName"], req)
    del u.inline[v["PolicyName"]]
    return _response("DeleteUserPolicy", req)


def _list_user_policies(store, req, v):
    u = _user_or_404(_state(store), v["UserName"])
    page, tail = _paginate(v, list(u.inline), lambda n: n)
    out = "    <PolicyNames>\n" + "".join(_el("member", n, "      ") for n in page)
    return _response("ListUserPolicies", req, out + "    </PolicyNames>\n" + tail)


# -- managed policies ---------------------------------------------------------------------------


def _policy_name_path(arn):
    rest = arn.split(":policy", 1)[1] if ":policy" in arn else "/"
    path, _, name = rest.rpartition("/")
    return name, (path + "/") if path else "/"


def _attach_user_policy(store, req, v):
    arn = _managed_policy(store, v["PolicyArn"])
    u = _user_or_404(_state(store), v["UserName"])
    if arn not in u.attached:
        if len(u.attached) >= MAX_MANAGED_PER_USER:
            raise AwsError("LimitExceeded", f"Cannot exceed quota for PoliciesPerUser: "
                           f"{MAX_MANAGED_PER_USER}", status=409)
        u.attached.append(arn)
    return _response("AttachUserPolicy", req)


def _detach_user_policy(store, req, v):
    arn = v["PolicyArn"]
    if not POLICY_ARN_RE.fullmatch(arn):
        raise AwsError("InvalidInput", f"ARN {arn} is not valid.")
    u = _user_or_404(_state(store), v["UserName"])
    if arn not in u.attached:
        raise AwsError("NoSuchEntity", f"Policy {arn} was not found.", status=404)
    u.attached.remove(arn)
    return _response("DetachUserPolicy", req)


def _list_attached_user_policies(store, req, v):
    u = _user_or_404(_state(store), v["UserName"])
    prefix = v.get("PathPrefix") or "/"
    arns = [a for a in u.attached if _policy_name_path(a)[1].startswith(prefix)]
    order = {a: i for i, a in enumerate(u.attached)}
    page, tail = _paginate(v, arns, lambda a: f"{order[a]:06d}")
    out = "    <AttachedPolicies>\n"
    for a in page:
        out += ("      <member>\n" + _el("PolicyName", _policy_name_path(a)[0], "        ")
                + _el("PolicyArn", a, "        ") + "      </member>\n")
    return _response("ListAttachedUserPolicies", req,
                     out + "    </AttachedPolicies>\n" + tail)


# -- access keys --------------------------------------------------------------------------------


def _key_owner(store, req, v):
    """(user name or None for the root, User or None) that a key operation is about."""
    name = _target_user_name(req, v)
    if name is None:
        return None, None
    u = _user_or_404(_state(store), name)
    return u.name, u


def _owned_keys(store, user_name):
    if user_name is None:
        return [k for k in store.access_keys.values() if k.user_name is None]
    return _user_keys(store, user_name)


def _create_access_key(store, req, v):
    state = _state(store)
    owner, _ = _key_owner(store, req, v)
    if len(_owned_keys(store, owner)) >= MAX_KEYS_PER_USER:
        raise AwsError("LimitExceeded", f"Cannot exceed quota for AccessKeysPerUser: "
                       f"{MAX_KEYS_PER_USER}", status=409)
    key_id = state.new_id("AKIA")
    secret = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(40))
    key = AccessKey(key_id, secret, owner, created=time.time())
    store.access_keys[key_id] = key
    out = "    <AccessKey>\n"
    if owner is not None:
        out += _el("UserName", owner, "      ")
    out += (_el("AccessKeyId", key_id, "      ") + _el("Status", key.status, "      ")
            + _el("SecretAccessKey", secret, "      ")
            + _el("CreateDate", _date(req, key.created), "      ") + "    </AccessKey>\n")
    return _response("CreateAccessKey", req, out)


def _list_access_keys(store, req, v):
    owner, _ = _key_owner(store, req, v)
    keys = _owned_keys(store, owner)
    page, tail = _paginate(v, keys, lambda k: f"{k.created:020.6f}{k.id}")
    out = "    <AccessKeyMetadata>\n"
    for k in page:
        out += "      <member>\n"
        if owner is not None:
            out += _el("UserName", owner, "        ")
        out += (_el("AccessKeyId", k.id, "        ") + _el("Status", k.status, "        ")
                + _el("CreateDate", _date(req, k.created), "        ") + "      </member>\n")
    if req.moto_style and "<IsTruncated>false" in tail:
        tail = ""  # moto's ListAccessKeys has no IsTruncated
    return _response("ListAccessKeys", req, out + "    </AccessKeyMetadata>\n" + tail)


def _owned_key_or_404(store, req, v):
    owner, _ = _key_owner(store, req, v)
    key = store.access_keys.get(v["AccessKeyId"])
    if key is None or key not in _owned_keys(store, owner):
        raise AwsError("NoSuchEntity", f"The Access Key with id {v['AccessKeyId']} cannot be "
                       f"found{'' if req.moto_style else '.'}", status=404)
    return key


def _update_access_key(store, req, v):
    key = _owned_key_or_404(store, req, v)
    if v["Status"] not in ("Active", "Inactive"):
        raise AwsError("InvalidInput", f"Invalid status {v['Status']}: an access key can only "
                       f"be set to Active or Inactive.")
    key.status = v["Status"]
    return _response("UpdateAccessKey", req)


def _delete_access_key(store, req, v):
    key = _owned_key_or_404(store, req, v)
    del store.access_keys[key.id]
    return _response("DeleteAccessKey", req)


def _get_access_key_last_used(store, req, v):
    key = store.access_keys.get(v["AccessKeyId"])
    if key is None:
        # IAM cannot tell whose key it is, so it cannot authorize the caller for it.
        who = req.caller.arn if req.caller else store.root_arn()
        raise AwsError("AccessDenied", f"User: {who} is not authorized to perform: "
                       f"iam:GetAccessKeyLastUsed on resource: access key {v['AccessKeyId']}",
                       status=403)
    out = ""
    if key.user_name is not None:
        u = _state(store).get(key.user_name)
        out += _el("UserName", u.name if u else key.user_name, "    ")
    out += "    <AccessKeyLastUsed>\n"
    used = key.last_used
    if used:
        out += (_el("LastUsedDate", _date(req, used["date"]), "      ")
                + _el("ServiceName", used["service"], "      ")
                + _el("Region", used["region"], "      "))
    else:
        out += _el("ServiceName", "N/A", "      ") + _el("Region", "N/A", "      ")
    out += "    </AccessKeyLastUsed>\n"
    return _response("GetAccessKeyLastUsed", req, out)


HANDLERS = {
    "CreateUser": _create_user,
    "GetUser": _get_user,
    "DeleteUser": _delete_user,
    "ListUsers": _list_users,
    "TagUser": _tag_user,
    "UntagUser": _untag_user,
    "ListUserTags": _list_user_tags,
    "PutUserPermissionsBoundary": _put_boundary,
    "DeleteUserPermissionsBoundary": _delete_boundary,
    "PutUserPolicy": _put_user_policy,
    "GetUserPolicy": _get_user_policy,
    "DeleteUserPolicy": _delete_user_policy,
    "ListUserPolicies": _list_user_policies,
    "AttachUserPolicy": _attach_user_policy,
    "DetachUserPolicy": _detach_user_policy,
    "ListAttachedUserPolicies": _list_attached_user_policies,
    "CreateAccessKey": _create_access_key,
    "ListAccessKeys": _list_access_keys,
    "UpdateAccessKey": _update_access_key,
    "DeleteAccessKey": _delete_access_key,
    "GetAccessKeyLastUsed": _get_access_key_last_used,
}
assert set(HANDLERS) == OPERATIONS


# -- state dump ---------------------------------------------------------------------------------


def dump_state(store):
    state = _state(store)
    users = {}
    for u in sorted(state.users.values(), key=lambda u: u.name.lower()):
        users[u.name] = {
            "path": u.path, "arn": u.arn, "id": u.id, "created": u.created,
            "created_iso": iso8601(u.created),
            "tags": {k: v for k, v in u.tags.values()},
            "boundary": u.boundary,
            "inline_policies": {n: doc for n, (_, doc) in u.inline.items()},
            "attached_policies": list(u.attached),
            "access_keys": [{"id": k.id, "status": k.status, "created": k.created}
                            for k in sorted(_user_keys(store, u.name),
                                            key=lambda k: k.created)],
        }
    return {"users": users, "managed_policies": sorted(store.managed_policies)}
