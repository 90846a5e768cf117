"""The invariants of DESIGN.md section 6 and the configured end state of section 7, checked over
fakeaws's state (GET /_fakeaws/state). Every test that touches AWS calls these.

    problems = check_invariants(fa.state(), tenants)          # I1 and I4
    problems += check_configured(fa.state(), tenants, region="us-east-1")
    assert not problems, problems

I1 (no orphan key): every access key of a keybroker-managed user is the AccessKeyId of a version
of its tenant's secret labelled AWSCURRENT, AWSPENDING or AWSPREVIOUS (keys listed in `allow`
excepted: unreferenced keys a test knows are still younger than aws.orphan_key_min_age).
I4 (no duplicates): one managed user and one managed secret per tenant, no two versions of a
secret with the same AccessKeyId, and every version id is the UUID keybroker derives from
(tenant, AccessKeyId), so a version was never written twice under different ids.
No foreign grant (check_no_foreign_grants; DESIGN.md section 7, "the user's policy is never
written while its bucket is refused"): every S3 resource an inline or attached policy of a
keybroker-managed user names is a bucket managed for that user's own tenant.
"""

import json
import uuid

KEY_NAMESPACE = uuid.UUID("8d3c1f6e-2b7a-4e95-a0d4-5c6f1e2b9a73")
LABELS = ("AWSCURRENT", "AWSPENDING", "AWSPREVIOUS")
READ_OBJECTS = ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectAttributes"]
WRITE_OBJECTS = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                 "s3:ListMultipartUploadParts"]


def version_id(tenant, key_id):
    """The secret version id (ClientRequestToken) of key_id for tenant: uuid5 over
    "tenant\\nkey id" in keybroker's namespace (broker/uuid.h)."""
    return str(uuid.uuid5(KEY_NAMESPACE, f"{tenant}\n{key_id}"))


class Tenant:
    """A tenant as a test configures it (the subset of broker/config.h the checks need)."""

    def __init__(self, name, bucket, access="read-only", prefix="", tags=None,
                 name_prefix="kb-", secret_prefix="keybroker/"):
        self.name = name
        self.bucket = bucket
        self.access = access  # "read-only" | "read-write" | "admin" | ["s3:GetObject", ...]
        self.prefix = prefix
        self.tags = dict(tags or {})
        self.user = name_prefix + name
        self.secret = secret_prefix + name

    def config(self):
        out = {"name": self.name, "bucket": self.bucket, "prefix": self.prefix,
               "access": self.access if isinstance(self.access, str)
               else {"actions": list(self.access)}}
        if self.tags:
            out["tags"] = dict(self.tags)
        return out


# -- the policies keybroker writes (broker/policy.h) ---------------------------------------------

def tenant_policy(t, partition="aws"):
    bucket = f"arn:{partition}:s3:::{t.bucket}"
    objects = f"{bucket}/{t.prefix}*"
    if t.access == "admin":
        return {"Version": "2012-10-17", "Statement": [
            {"Sid": "KeybrokerAdmin", "Effect": "Allow", "Action": ["s3:*"],
             "Resource": [bucket, f"{bucket}/*"]}]}
    if not isinstance(t.access, str):
        return {"Version": "2012-10-17", "Statement": [
            {"Sid": "KeybrokerCustom", "Effect": "Allow", "Action": list(t.access),
             "Resource": [bucket, objects]}]}
    write = t.access == "read-write"
    listing = {"Sid": "KeybrokerList", "Effect": "Allow", "Action": ["s3:ListBucket"],
               "Resource": [bucket]}
    if t.prefix:
        listing["Condition"] = {"StringLike": {"s3:prefix": [t.prefix, t.prefix + "*"]}}
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "KeybrokerObjects", "Effect": "Allow",
         "Action": READ_OBJECTS + (WRITE_OBJECTS if write else []), "Resource": [objects]},
        listing,
        {"Sid": "KeybrokerBucket", "Effect": "Allow",
         "Action": ["s3:GetBucketLocation"] + (["s3:ListBucketMultipartUploads"] if write else []),
         "Resource": [bucket]}]}


def bucket_policy(t, partition="aws"):
    bucket = f"arn:{partition}:s3:::{t.bucket}"
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "KeybrokerDenyInsecureTransport", "Effect": "Deny", "Principal": "*",
         "Action": ["s3:*"], "Resource": [bucket, f"{bucket}/*"],
         "Condition": {"Bool": {"aws:SecureTransport": ["false"]}}}]}


def normalize(doc):
    """A policy as a comparable value, with IAM's equivalences: object members in any order, a
    scalar equal to a one-element list, lists compared as sets, true equal to "true"."""
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError:
            return ("text", doc)

    def atom(x):
        if isinstance(x, (dict, list)):
            return norm(x)
        if isinstance(x, bool):
            return ("S", "true" if x else "false")
        return ("S", str(x))

    def norm(v):
        if isinstance(v, dict):
            return ("D", tuple(sorted((k, norm(x)) for k, x in v.items())))
        items = v if isinstance(v, list) else [v]
        return ("L", tuple(sorted({repr(atom(x)) for x in items})))
    return norm(doc)


# -- state access --------------------------------------------------------------------------------

def users(state):
    return state["services"]["iam"]["users"]


def secrets(state):
    return {s["name"]: s for s in state["services"]["secretsmanager"]["secrets"]}


def buckets(state):
    return state["services"]["s3"]["buckets"]


def _tags(tags):
    if isinstance(tags, list):
        return {t["Key"]: t["Value"] for t in tags}
    return dict(tags or {})


def managed_tenant(tags):
    t = _tags(tags)
    return t.get("keybroker:tenant") if t.get("keybroker:managed") == "true" else None


def referenced_keys(secret):
    return {v["access_key_id"] for v in secret["versions"]
            if set(v["stages"]) & set(LABELS) and v["access_key_id"]}


# -- the checks ----------------------------------------------------------------------------------

def check_invariants(state, tenants=(), allow=()):
    """I1 and I4 over every keybroker-managed user and secret in state. Returns a list of
    problems (empty when all hold)."""
    problems = []
    allow = set(allow)
    by_name = secrets(state)
    prefixes = {t.name: t for t in tenants}
    owners = {}
    for name, u in users(state).items():
        tenant = managed_tenant(u["tags"])
        if tenant is None:
            continue
        owners.setdefault(("user", tenant), []).append(name)
        t = prefixes.get(tenant)
        secret_name = t.secret if t else "keybroker/" + tenant
        refs = referenced_keys(by_name[secret_name]) if secret_name in by_name else set()
        for k in u["access_keys"]:
            if k["id"] not in refs and k["id"] not in allow:
                problems.append(f"I1: key {k['id']} ({k['status']}) of user {name} is referenced "
                                f"by no labelled version of secret {secret_name}")
    for name, s in by_name.items():
        tenant = managed_tenant(s["tags"])
        if tenant is None:
            continue
        owners.setdefault(("secret", tenant), []).append(name)
        seen = {}
        for v in s["versions"]:
            kid = v["access_key_id"]
            if kid is None:
                problems.append(f"I4: version {v['version_id']} of {name} holds no AccessKeyId")
                continue
            if kid in seen:
                problems.append(f"I4: versions {seen[kid]} and {v['version_id']} of {name} both "
                                f"hold {kid}")
            seen[kid] = v["version_id"]
            if v["version_id"] != version_id(tenant, kid):
                problems.append(f"I4: version {v['version_id']} of {name} is not the id derived "
                                f"from ({tenant}, {kid})")
        for label in LABELS:
            holders = [v["version_id"] for v in s["versions"] if label in v["stages"]]
            if len(holders) > 1:
                problems.append(f"I4: {label} on several versions of {name}: {holders}")
    for (kind, tenant), names in owners.items():
        if len(names) > 1:
            problems.append(f"I4: several {kind}s managed for tenant {tenant}: {names}")
    return problems


def _s3_buckets_named(doc):
    """The bucket names of the arn:*:s3:::BUCKET[/...] resources of a policy document."""
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError:
            return {"<unparsable policy>"}
    out = set()
    statements = doc.get("Statement", [])
    for st in statements if isinstance(statements, list) else [statements]:
        res = st.get("Resource", [])
        for r in res if isinstance(res, list) else [res]:
            if r == "*":
                out.add("*")
            elif isinstance(r, str) and ":s3:::" in r:
                out.add(r.split(":s3:::", 1)[1].split("/", 1)[0])
    return out


def check_no_foreign_grants(state):
    """Every bucket named by a policy of a keybroker-managed user (inline or attached) exists and
    is managed for that user's tenant: a refused bucket (untagged, another tenant's, another
    account's) is never granted. Returns a list of problems."""
    problems = []
    bks = buckets(state)
    for name, u in users(state).items():
        tenant = managed_tenant(u["tags"])
        if tenant is None:
            continue
        docs = list(u["inline_policies"].items())
        docs += [(arn, None) for arn in u.get("attached_policies") or []]
        for pname, doc in docs:
            if doc is None:
                problems.append(f"grant: user {name} has attached policy {pname}")
                continue
            for b in sorted(_s3_buckets_named(doc)):
                owner = managed_tenant(bks[b]["tags"]) if b in bks else None
                if owner != tenant:
                    problems.append(f"grant: policy {pname} of user {name} (tenant {tenant}) "
                                    f"names bucket {b}, managed for {owner!r}")
    return problems


def check_configured(state, tenants, region="us-east-1", kms_key_id=None, extra_tags=None,
                     iam_path="/keybroker/", boundary=None, deny_insecure_transport=True):
    """The end state of DESIGN.md section 7 for each tenant: bucket, user, policy, secret and its
    AWSCURRENT key. Returns a list of problems. deny_insecure_transport=False (the option of that
    name off): the bucket must have no policy at all, since keybroker then writes none."""
    problems = []
    bks, usr, sec = buckets(state), users(state), secrets(state)
    for t in tenants:
        want_tags = {"keybroker:tenant": t.name, "keybroker:managed": "true"}
        want_tags.update(extra_tags or {})
        want_tags.update(t.tags)
        b = bks.get(t.bucket)
        if b is None:
            problems.append(f"{t.name}: bucket {t.bucket} missing")
        else:
            if _tags(b["tags"]) != want_tags:
                problems.append(f"{t.name}: bucket tags {b['tags']} != {want_tags}")
            pab = b["public_access_block"] or {}
            if not all(pab.get(k) for k in ("BlockPublicAcls", "IgnorePublicAcls",
                                             "BlockPublicPolicy", "RestrictPublicBuckets")):
                problems.append(f"{t.name}: Block Public Access {pab}")
            enc = b["encryption"] or {}
            want_enc = ("aws:kms", kms_key_id) if kms_key_id else ("AES256", None)
            if (enc.get("SSEAlgorithm"), enc.get("KMSMasterKeyID")) != want_enc:
                problems.append(f"{t.name}: encryption {enc}, want {want_enc}")
            if b["ownership_controls"] != "BucketOwnerEnforced":
                problems.append(f"{t.name}: ownership {b['ownership_controls']}")
            if not deny_insecure_transport:
                if b["policy"] is not None:
                    problems.append(f"{t.name}: bucket policy {b['policy']}, want none")
            elif normalize(b["policy"]) != normalize(bucket_policy(t)):
                problems.append(f"{t.name}: bucket policy {b['policy']}")
        u = usr.get(t.user)
        if u is None:
            problems.append(f"{t.name}: user {t.user} missing")
            continue
        if u["path"] != iam_path:
            problems.append(f"{t.name}: user path {u['path']}")
        if u["boundary"] != boundary:
            problems.append(f"{t.name}: boundary {u['boundary']}")
        if _tags(u["tags"]) != want_tags:
            problems.append(f"{t.name}: user tags {u['tags']} != {want_tags}")
        if set(u["inline_policies"]) != {"keybroker-s3"}:
            problems.append(f"{t.name}: inline policies {sorted(u['inline_policies'])}")
        elif normalize(u["inline_policies"]["keybroker-s3"]) != normalize(tenant_policy(t)):
            problems.append(f"{t.name}: inline policy {u['inline_policies']['keybroker-s3']}")
        if u["attached_policies"]:
            problems.append(f"{t.name}: attached policies {u['attached_policies']}")
        s = sec.get(t.secret)
        if s is None:
            problems.append(f"{t.name}: secret {t.secret} missing")
            continue
        if _tags(s["tags"]) != want_tags:
            problems.append(f"{t.name}: secret tags {s['tags']} != {want_tags}")
        if s["scheduled_for_deletion"]:
            problems.append(f"{t.name}: secret scheduled for deletion")
        if s["kms_key_id"] != kms_key_id:
            problems.append(f"{t.name}: secret KMS key {s['kms_key_id']}")
        current = [v for v in s["versions"] if "AWSCURRENT" in v["stages"]]
        active = {k["id"] for k in u["access_keys"] if k["status"] == "Active"}
        if len(current) != 1 or current[0]["access_key_id"] not in active:
            problems.append(f"{t.name}: AWSCURRENT {current} holds no active key of {t.user} "
                            f"({sorted(active)})")
    return problems
