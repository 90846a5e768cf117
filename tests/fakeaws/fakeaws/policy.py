"""IAM policy evaluation for requests signed by IAM users (the account root is always allowed).

    check(store, req, authz_list)      the server's entry point: raises core.AwsError (the
                                       service's own AccessDenied form) when a request is denied
    evaluate(policies, authz, context) the pure evaluator, returns a Decision
    parse_policy(text, kind)           IAM's policy grammar check (MalformedPolicyDocument)

Evaluation follows AWS's logic for a principal and a resource in the same account:
  1. an explicit Deny in any policy (identity, permissions boundary, resource policy) wins;
  2. a resource-policy Allow that names the calling user directly (its ARN or unique id) allows
     the request by itself: the implicit deny of a permissions boundary does not limit it;
  3. otherwise the request needs an Allow from an identity policy, or from a resource policy
     whose Principal is "*", AND, when the user has a permissions boundary, an Allow from it;
  4. a resource policy naming only the account (its root ARN or id) delegates to the account:
     it grants nothing by itself (the identity policies must allow), but its Deny applies.

Supported: Statement as an object or a list; Effect; Action / NotAction (case-insensitive, `*`
and `?` wildcards); Resource / NotResource (case-sensitive, wildcards, policy variables such as
${aws:username} in 2012-10-17 documents); Principal / NotPrincipal in resource policies; the
String*, Numeric*, Date*, Bool, Null, Arn*, IpAddress, BinaryEquals condition operators with
the IfExists suffix and the ForAnyValue: / ForAllValues: set qualifiers.
"""

import ipaddress
import json
import re
import time
from datetime import datetime, timezone

from .core import AwsError, iso8601

# -- small helpers ------------------------------------------------------------------------------


def _as_list(v):
    if v is None:
        return []
    if isinstance(v, list):
        return v
    return [v]


def _str(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _ctx_values(ctx, key):
    """The context value(s) of a key as a list of strings, or None when absent (condition key
    names are case-insensitive)."""
    v = ctx.get(key.lower())
    if v is None:
        return None
    vals = [_str(x) for x in _as_list(v) if x is not None]
    return vals or None


def _lower_ctx(context):
    return {str(k).lower(): v for k, v in (context or {}).items()}


_VAR_RE = re.compile(r"\$\{([^}]*)\}")


def _compile(pattern, ctx, wildcards=True, ignore_case=False, variables=True):
    """A regex for a policy string: `*`/`?` wildcards (if enabled), ${var} policy variables
    (if enabled) replaced by the context's value. None when a variable has no value (the
    pattern then matches nothing)."""
    out = []
    pos = 0
    pattern = _str(pattern)
    while pos < len(pattern):
        m = _VAR_RE.match(pattern, pos) if variables else None
        if m:
            inner = m.group(1).strip()
            if inner in ("*", "?", "$"):
                out.append(re.escape(inner))
            else:
                name, default = inner, None
                dm = re.match(r"^(.*?)\s*,\s*'(.*)'$", inner)
                if dm:
                    name, default = dm.group(1).strip(), dm.group(2)
                vals = _ctx_values(ctx, name)
                if vals and len(vals) == 1:
                    out.append(re.escape(vals[0]))
                elif default is not None:
                    out.append(re.escape(default))
                else:
                    return None
            pos = m.end()
            continue
        c = pattern[pos]
        if wildcards and c == "*":
            out.append(".*")
        elif wildcards and c == "?":
            out.append(".")
        else:
            out.append(re.escape(c))
        pos += 1
    return re.compile("".join(out), re.S | (re.I if ignore_case else 0))


def _glob(pattern, value, ctx=None, ignore_case=False, variables=False):
    rx = _compile(pattern, ctx or {}, wildcards=True, ignore_case=ignore_case,
                  variables=variables)
    return rx is not None and rx.fullmatch(value) is not None


def _arn_like(pattern, value, ctx, variables):
    """ArnLike: each of the six colon-separated parts is matched on its own."""
    p = _str(pattern).split(":", 5)
    v = value.split(":", 5)
    if len(p) != 6 or len(v) != 6:
        return _glob(pattern, value, ctx, variables=variables) if _str(pattern) == "*" else False
    return all(_glob(a, b, ctx, variables=variables) for a, b in zip(p, v))


# -- conditions ---------------------------------------------------------------------------------


def _num(s):
    return float(s)


def _date(s):
    s = _str(s).strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", s):
        return float(s)
    s2 = s[:-1] + "+00:00" if s.endswith("Z") else s
    try:
        d = datetime.fromisoformat(s2)
    except ValueError:
        d = datetime.strptime(s, "%Y-%m-%d")
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    return d.timestamp()


def _cmp(conv, test):
    def f(v, p, ctx, variables):
        try:
            return test(conv(v), conv(p))
        except (ValueError, TypeError, OverflowError):
            return False
    return f


def _string_eq(ignore_case):
    def f(v, p, ctx, variables):
        rx = _compile(p, ctx, wildcards=False, ignore_case=ignore_case, variables=variables)
        return rx is not None and rx.fullmatch(v) is not None
    return f


def _string_like(v, p, ctx, variables):
    return _glob(p, v, ctx, variables=variables)


def _bool_eq(v, p, ctx, variables):
    return v.lower() == _str(p).lower()


def _binary_eq(v, p, ctx, variables):
    return v == _str(p)


def _ip(v, p, ctx, variables):
    try:
        return ipaddress.ip_address(v) in ipaddress.ip_network(_str(p), strict=False)
    except ValueError:
        return False


def _arn(v, p, ctx, variables):
    return _arn_like(p, v, ctx, variables)


# base operator -> (matcher(context_value, policy_value, ctx, variables), negated)
OPERATORS = {
    "StringEquals": (_string_eq(False), False),
    "StringNotEquals": (_string_eq(False), True),
    "StringEqualsIgnoreCase": (_string_eq(True), False),
    "StringNotEqualsIgnoreCase": (_string_eq(True), True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "NumericEquals": (_cmp(_num, lambda a, b: a == b), False),
    "NumericNotEquals": (_cmp(_num, lambda a, b: a == b), True),
    "NumericLessThan": (_cmp(_num, lambda a, b: a < b), False),
    "NumericLessThanEquals": (_cmp(_num, lambda a, b: a <= b), False),
    "NumericGreaterThan": (_cmp(_num, lambda a, b: a > b), False),
    "NumericGreaterThanEquals": (_cmp(_num, lambda a, b: a >= b), False),
    "DateEquals": (_cmp(_date, lambda a, b: a == b), False),
    "DateNotEquals": (_cmp(_date, lambda a, b: a == b), True),
    "DateLessThan": (_cmp(_date, lambda a, b: a < b), False),
    "DateLessThanEquals": (_cmp(_date, lambda a, b: a <= b), False),
    "DateGreaterThan": (_cmp(_date, lambda a, b: a > b), False),
    "DateGreaterThanEquals": (_cmp(_date, lambda a, b: a >= b), False),
    "Bool": (_bool_eq, False),
    "BinaryEquals": (_binary_eq, False),
    "IpAddress": (_ip, False),
    "NotIpAddress": (_ip, True),
    "ArnEquals": (_arn, False),
    "ArnNotEquals": (_arn, True),
    "ArnLike": (_arn, False),
    "ArnNotLike": (_arn, True),
}


def split_operator(op):
    """'ForAnyValue:StringLikeIfExists' -> ('ForAnyValue', 'StringLike', True); None for an
    operator IAM does not know."""
    qualifier = None
    if ":" in op:
        qualifier, op = op.split(":", 1)
        if qualifier not in ("ForAnyValue", "ForAllValues"):
            return None
    if_exists = False
    if op.endswith("IfExists") and op != "IfExists":
        op, if_exists = op[: -len("IfExists")], True
    if op != "Null" and op not in OPERATORS:
        return None
    if op == "Null" and (if_exists or qualifier):
        return None
    return qualifier, op, if_exists


def _condition(op, key, pvalues, ctx, variables):
    parsed = split_operator(op)
    if parsed is None:
        return False
    qualifier, base, if_exists = parsed
    cvals = _ctx_values(ctx, key)
    if base == "Null":
        absent = cvals is None
        return any((_str(p).lower() == "true") == absent for p in pvalues)
    matcher, negated = OPERATORS[base]
    if cvals is None:
        if if_exists or qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        # a negated operator is true when the key is missing; the others are false
        return negated

    def one(v):
        hit = any(matcher(v, p, ctx, variables) for p in pvalues)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(v) for v in cvals)
    if qualifier == "ForAnyValue":
        return any(one(v) for v in cvals)
    if negated:
        return all(one(v) for v in cvals)
    return any(one(v) for v in cvals)


def conditions_hold(cond, ctx, variables=True):
    if cond is None:
        return True
    if not isinstance(cond, dict):
        return False
    for op, block in cond.items():
        if not isinstance(block, dict):
            return False
        for key, values in block.items():
            if not _condition(op, str(key), _as_list(values), ctx, variables):
                return False
    return True


# -- statements ---------------------------------------------------------------------------------


def statements(doc):
    if not isinstance(doc, dict):
        return []
    st = doc.get("Statement")
    return [s for s in _as_list(st) if isinstance(s, dict)]


def _uses_variables(doc):
    return isinstance(doc, dict) and doc.get("Version") == "2012-10-17"


def _action_matches(patterns, action):
    return any(isinstance(p, str) and _glob(p, action, ignore_case=True) for p in patterns)


def _resource_matches(patterns, resource, ctx, variables):
    for p in patterns:
        if not isinstance(p, str):
            continue
        if p == "*":
            return True
        if _glob(p, resource, ctx, variables=variables):
            return True
    return False


def statement_applies(stmt, action, resource, ctx, variables=True):
    """Does the statement cover this action, resource and context (the principal aside)?"""
    if "Action" in stmt:
        if not _action_matches(_as_list(stmt["Action"]), action):
            return False
    elif "NotAction" in stmt:
        if _action_matches(_as_list(stmt["NotAction"]), action):
            return False
    else:
        return False
    if "Resource" in stmt:
        if not _resource_matches(_as_list(stmt["Resource"]), resource, ctx, variables):
            return False
    elif "NotResource" in stmt:
        if _resource_matches(_as_list(stmt["NotResource"]), resource, ctx, variables):
            return False
    else:
        return False
    return conditions_hold(stmt.get("Condition"), ctx, variables)


# principal match strength, strongest first
DIRECT, PUBLIC, ACCOUNT = "direct", "public", "account"


def _principal_kind(principal, ctx):
    """How a Principal element names the caller: DIRECT (its ARN or unique id), PUBLIC ("*"),
    ACCOUNT (the caller's account root or id), or None."""
    if principal == "*":
        return PUBLIC
    if not isinstance(principal, dict):
        return None
    arn = (_ctx_values(ctx, "aws:PrincipalArn") or [None])[0]
    uid = (_ctx_values(ctx, "aws:userid") or [None])[0]
    account = (_ctx_values(ctx, "aws:PrincipalAccount") or [None])[0]
    kinds = set()
    for p in _as_list(principal.get("AWS")):
        if not isinstance(p, str):
            continue
        if p == "*":
            kinds.add(PUBLIC)
        elif arn is not None and p == arn:
            kinds.add(DIRECT)
        elif uid is not None and p == uid:
            kinds.add(DIRECT)
        elif account is not None and p in (account, f"arn:aws:iam::{account}:root"):
            kinds.add(ACCOUNT)
    for k in (DIRECT, PUBLIC, ACCOUNT):
        if k in kinds:
            return k
    return None


def _statement_principal(stmt, ctx):
    if "Principal" in stmt:
        return _principal_kind(stmt["Principal"], ctx)
    if "NotPrincipal" in stmt:
        return None if _principal_kind(stmt["NotPrincipal"], ctx) else PUBLIC
    return None


# -- evaluation ---------------------------------------------------------------------------------


class Decision:
    """The outcome of an evaluation. kind: "allow", "explicit_deny" or "implicit_deny"; source:
    the policy type that decided it ("identity", "boundary", "resource")."""

    def __init__(self, kind, source=None):
        self.kind = kind
        self.source = source

    @property
    def allowed(self):
        return self.kind == "allow"

    def __bool__(self):
        return self.allowed

    def __repr__(self):
        return f"Decision({self.kind}, {self.source})"


def _normalize_policies(policies):
    if isinstance(policies, dict) and not ("Statement" in policies or "Version" in policies):
        identity = _as_list(policies.get("identity"))
        boundary = policies.get("boundary")
        resource = _as_list(policies.get("resource"))
    else:
        identity, boundary, resource = _as_list(policies), None, []
    return identity, boundary, resource


def evaluate(policies, authz, context):
    """Evaluate one Authz.

    policies: {"identity": [doc, ...], "boundary": doc or None, "resource": [doc, ...]} or
              just a list of identity policy documents (dicts).
    authz:    a core.Authz (or any object with .action, .resource, .context).
    context:  the request context (condition keys -> str / bool / number / list); authz.context
              is merged over it. Resource-policy principals are matched against aws:PrincipalArn,
              aws:userid and aws:PrincipalAccount.
    """
    identity, boundary, resource = _normalize_policies(policies)
    ctx = _lower_ctx(context)
    ctx.update(_lower_ctx(getattr(authz, "context", None)))
    action, res = authz.action, authz.resource

    def matching(doc, effect, with_principal=False):
        var = _uses_variables(doc)
        kinds = []
        for stmt in statements(doc):
            if stmt.get("Effect") != effect:
                continue
            kind = None
            if with_principal:
                kind = _statement_principal(stmt, ctx)
                if kind is None:
                    continue
            if statement_applies(stmt, action, res, ctx, var):
                kinds.append(kind or True)
        return kinds

    # 1. explicit deny anywhere
    for source, docs in (("identity", identity), ("resource", resource),
                         ("boundary", [boundary] if boundary is not None else [])):
        for doc in docs:
            if matching(doc, "Deny", with_principal=(source == "resource")):
                return Decision("explicit_deny", source)

    # 2. a resource policy naming the user directly
    resource_kinds = set()
    for doc in resource:
        resource_kinds.update(matching(doc, "Allow", with_principal=True))
    if DIRECT in resource_kinds:
        return Decision("allow", "resource")

    # 3. identity (or public resource) allow, within the boundary
    identity_allows = any(matching(doc, "Allow") for doc in identity)
    if not identity_allows and PUBLIC not in resource_kinds:
        return Decision("implicit_deny", "identity")
    if boundary is not None and not matching(boundary, "Allow"):
        return Decision("implicit_deny", "boundary")
    return Decision("allow", "identity" if identity_allows else "resource")


# -- the server's entry point -------------------------------------------------------------------

SOURCE_WORDS = {"identity": "identity-based policy", "boundary": "permissions boundary",
                "resource": "resource-based policy"}


def request_context(store, req):
    """The global condition keys of a request signed by an IAM user."""
    from . import iam
    now = time.time()
    caller = req.caller
    ctx = {
        "aws:SecureTransport": "true" if req.secure else "false",
        "aws:CurrentTime": iso8601(now),
        "aws:EpochTime": str(int(now)),
        "aws:PrincipalAccount": store.account_id,
        "aws:PrincipalArn": caller.arn,
        "aws:PrincipalType": "User" if caller.user_name else "Account",
    }
    if req.region:
        ctx["aws:RequestedRegion"] = req.region
    if caller.user_name:
        info = iam.principal_info(store, caller.user_name)
        ctx["aws:username"] = info["user_name"] if info else caller.user_name
        if info:
            ctx["aws:userid"] = info["user_id"]
            for k, v in info["tags"].items():
                ctx[f"aws:PrincipalTag/{k}"] = v
    else:
        ctx["aws:userid"] = store.account_id
    return ctx


def _resource_policies(store, authz):
    """Resource policies that apply: S3's bucket policy (s3.bucket_policy(store, bucket)), or
    any service module's resource_policy(store, resource_arn) -> dict or None."""
    docs = []
    res = authz.resource or ""
    service = authz.action.split(":", 1)[0].lower()
    getter = None
    if service == "s3" and res.startswith("arn:aws:s3:::"):
        bucket = res[len("arn:aws:s3:::"):].split("/", 1)[0]
        try:
            from . import s3
            fn = getattr(s3, "bucket_policy")
        except (ImportError, AttributeError):
            fn = None
        if bucket and fn is not None:
            getter = lambda: fn(store, bucket)  # noqa: E731
    elif service in ("secretsmanager",):
        try:
            import importlib
            mod = importlib.import_module(f".{service}", __package__)
            fn = getattr(mod, "resource_policy")
        except (ImportError, AttributeError):
            fn = None
        if fn is not None:
            getter = lambda: fn(store, res)  # noqa: E731
    if getter is not None:
        doc = getter()
        if isinstance(doc, (str, bytes)):
            try:
                doc = json.loads(doc)
            except ValueError:
                doc = None
        if isinstance(doc, dict):
            docs.append(doc)
    return docs


def denied_error(req, authz, decision):
    """The AccessDenied error of the request's service."""
    service = req.service
    if service == "s3":
        return AwsError("AccessDenied", "Access Denied", status=403)
    who = req.caller.arn if req.caller else "anonymous"
    if decision.kind == "explicit_deny":
        src = SOURCE_WORDS.get(decision.source, "identity-based policy")
        article = "an" if src[0] in "aeiou" else "a"
        why = f"with an explicit deny in {article} {src}"
    else:
        src = SOURCE_WORDS.get(decision.source, "identity-based policy")
        why = f"because no {src} allows the {authz.action} action"
    message = (f"User: {who} is not authorized to perform: {authz.action} on resource: "
               f"{authz.resource} {why}")
    if service == "secretsmanager":
        return AwsError("AccessDeniedException", message, status=400)
    return AwsError("AccessDenied", message, status=403)


def check(store, req, authz_list):
    """Raise the service's AccessDenied unless every Authz is allowed for the caller."""
    caller = req.caller
    if caller is None or caller.is_root or not authz_list:
        return
    from . import iam
    identity = iam.identity_policies(store, caller.user_name)
    boundary = iam.boundary_policy(store, caller.user_name)
    base = request_context(store, req)
    for authz in authz_list:
        decision = evaluate({"identity": identity, "boundary": boundary,
                             "resource": _resource_policies(store, authz)}, authz, base)
        if not decision.allowed:
            raise denied_error(req, authz, decision)


# -- the policy grammar (MalformedPolicyDocument) -----------------------------------------------


class PolicySyntaxError(ValueError):
    pass


STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal",
                  "NotPrincipal", "Condition"}
ACTION_RE = re.compile(r"^[A-Za-z0-9_-]+:[A-Za-z0-9*?_-]*$")
SYNTAX = "Syntax errors in policy."


def parse_policy(text, kind="identity"):
    """Parse and check a policy document the way IAM does. kind "identity" (user/managed
    policies and permissions boundaries) or "resource" (bucket policies). Returns the dict;
    raises PolicySyntaxError(message) for a malformed document."""
    try:
        doc = json.loads(text) if isinstance(text, (str, bytes)) else text
    except (ValueError, RecursionError):
        raise PolicySyntaxError(SYNTAX)
    if not isinstance(doc, dict):
        raise PolicySyntaxError(SYNTAX)
    if set(doc) - {"Version", "Id", "Statement"}:
        raise PolicySyntaxError(SYNTAX)
    if "Version" not in doc:
        # Real IAM defaults a missing Version to 2008-10-17; fakeaws insists on one.
        raise PolicySyntaxError("Policy document must specify a Version (2012-10-17).")
    if doc["Version"] not in ("2012-10-17", "2008-10-17"):
        raise PolicySyntaxError("The policy failed legacy parsing")
    if "Id" in doc and not isinstance(doc["Id"], str):
        raise PolicySyntaxError(SYNTAX)
    if "Statement" not in doc:
        raise PolicySyntaxError("Missing required field Statement")
    stmts = doc["Statement"]
    if isinstance(stmts, dict):
        stmts = [stmts]
    if not isinstance(stmts, list) or not stmts:
        raise PolicySyntaxError(SYNTAX)
    sids = set()
    for st in stmts:
        if not isinstance(st, dict) or set(st) - STATEMENT_KEYS:
            raise PolicySyntaxError(SYNTAX)
        if "Sid" in st:
            sid = st["Sid"]
            if not isinstance(sid, str):
                raise PolicySyntaxError(SYNTAX)
            if kind == "identity" and not re.fullmatch(r"[0-9A-Za-z]*", sid):
                raise PolicySyntaxError("Statement IDs (SID) must be alpha-numeric. Check that "
                                        "your input satisfies the regular expression "
                                        "[0-9A-Za-z]*")
            if sid and sid in sids:
                raise PolicySyntaxError("Statement IDs (SID) in a single policy must be unique.")
            sids.add(sid)
        if st.get("Effect") not in ("Allow", "Deny"):
            raise PolicySyntaxError(SYNTAX)
        has_principal = "Principal" in st or "NotPrincipal" in st
        if kind == "identity" and has_principal:
            raise PolicySyntaxError("Policy document should not specify a principal.")
        if kind == "resource" and not has_principal:
            raise PolicySyntaxError("Missing required field Principal")
        if "Principal" in st and "NotPrincipal" in st:
            raise PolicySyntaxError(SYNTAX)
        if "Action" in st and "NotAction" in st:
            raise PolicySyntaxError(SYNTAX)
        if "Action" not in st and "NotAction" not in st:
            raise PolicySyntaxError("Policy statement must contain actions.")
        actions = _as_list(st.get("Action", st.get("NotAction")))
        if not actions:
            raise PolicySyntaxError("Policy statement must contain actions.")
        for a in actions:
            if not isinstance(a, str):
                raise PolicySyntaxError(SYNTAX)
            if a != "*" and ":" not in a:
                raise PolicySyntaxError("Actions/Conditions must be prefaced by a vendor, e.g., "
                                        "iam, sdb, ec2, etc.")
            if a != "*" and not ACTION_RE.match(a):
                raise PolicySyntaxError(f"Action {a} is not valid.")
        if "Resource" in st and "NotResource" in st:
            raise PolicySyntaxError(SYNTAX)
        if "Resource" not in st and "NotResource" not in st:
            raise PolicySyntaxError("Policy statement must contain resources.")
        resources = _as_list(st.get("Resource", st.get("NotResource")))
        if not resources:
            raise PolicySyntaxError("Policy statement must contain resources.")
        for r in resources:
            if not isinstance(r, str):
                raise PolicySyntaxError(SYNTAX)
            if r != "*" and not (r.startswith("arn:") and len(r.split(":", 5)) == 6):
                raise PolicySyntaxError(f'Resource {r} must be in ARN format or "*".')
        if "Condition" in st:
            cond = st["Condition"]
            if not isinstance(cond, dict):
                raise PolicySyntaxError(SYNTAX)
            for op, block in cond.items():
                if split_operator(op) is None:
                    raise PolicySyntaxError(f"Invalid Condition type : {op}")
                if not isinstance(block, dict):
                    raise PolicySyntaxError(SYNTAX)
                for key, vals in block.items():
                    if ":" not in key:
                        raise PolicySyntaxError("Actions/Conditions must be prefaced by a vendor,"
                                                " e.g., iam, sdb, ec2, etc.")
                    for v in _as_list(vals):
                        if not isinstance(v, (str, bool, int, float)):
                            raise PolicySyntaxError(SYNTAX)
    return doc
