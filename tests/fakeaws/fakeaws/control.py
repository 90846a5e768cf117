"""The control endpoint under /_fakeaws/: tests inspect state and inject faults here. It needs
no signature (it is not AWS) and never returns a secret access key or a secret value.

    GET    /_fakeaws/health                 {"ok": true}
    GET    /_fakeaws/state                  every resource, the faults and the call log (an S3
                                            object version shows its Object Lock: lock_mode,
                                            retain_until (epoch), retain_until_iso, legal_hold;
                                            a bucket its object_lock {enabled,
                                            default_retention})
    GET    /_fakeaws/calls?since=N          the call log after sequence number N
    POST   /_fakeaws/faults                 add a rule (faults.py) or {"rules": [...]}
    GET    /_fakeaws/faults                 the rules in force
    DELETE /_fakeaws/faults                 remove every rule and rate limit
    POST   /_fakeaws/ratelimit              {"service": "iam", "tps": 20, "burst": 20}
    POST   /_fakeaws/config                 {"key_propagation_delay": 2.0, ...}
    POST   /_fakeaws/foreign-buckets        {"name": "taken-bucket"}  (another account owns it)
    POST   /_fakeaws/managed-policies       {"arn": "...", "document": {...}}
    POST   /_fakeaws/age-keys               {"seconds": 61}: every IAM user's access key as if
                                            made that much earlier (its CreateDate moves back;
                                            1..315360000); answers {"aged": N}. For tests of
                                            what waits on a key's age (aws.orphan_key_min_age)
    POST   /_fakeaws/seed-secrets           {"count": 10000, "prefix": "keybroker/",
                                             "tenant_prefix": "t", "start": 0}
                                            creates secrets <prefix><tenant_prefix><i> at once,
                                            tagged keybroker:tenant=<tenant_prefix><i> and
                                            keybroker:managed=true, each with one AWSCURRENT
                                            version (a value without a key); existing names are
                                            kept; answers {"created": N}. For benchmarks of
                                            followers (bench/run_follow_bench.sh): no IAM user,
                                            key or bucket is made, and no call is logged.

POST /_fakeaws/config sets runtime settings (store.config in core.py); it answers the whole
configuration. An unknown key, or a value a dialect setting does not take, is a 400 and
changes nothing. The keys:

    key_propagation_delay  seconds before a new access key is accepted (--key-delay)
    plain_http_is_secure   the aws:SecureTransport of a plain-HTTP request (default true)
    create_bucket_tags     true | false | "malformed": CreateBucket's <Tags> applied, silently
                           dropped (moto 5.2.1), or refused with MalformedXML (S3 before it
                           accepted tags at creation)
    bucket_defaults        true | false: whether a new bucket gets S3's 2023 defaults (Block
                           Public Access, SSE-S3, BucketOwnerEnforced); false answers the
                           Get* calls with the "not set" errors
    moto_style             true | false: responses written the way moto 5.2.1 writes them
                           (the list is in dialect.py)

`--dialect aws` (the default) starts with create_bucket_tags=true, bucket_defaults=true,
moto_style=false; `--dialect moto` with false, false, true. Settings apply to the requests that
follow, and bucket_defaults to the buckets created after it changed.
"""

import json

from . import dialect
from .core import iso8601


def _json_body(req):
    try:
        return json.loads(req.body or b"{}")
    except ValueError as e:
        raise ValueError(f"request body is not JSON: {e}")


def dump_state(fake):
    store = fake.store
    from .server import SERVICE_MODULES
    with store.lock:
        services = {name: mod.dump_state(store) for name, mod in SERVICE_MODULES.items()}
        keys = [{"id": k.id, "user": k.user_name, "status": k.status, "created": k.created,
                 "created_iso": iso8601(k.created), "root": k.user_name is None}
                for k in store.access_keys.values()]
        config = dict(store.config)
        foreign = sorted(store.foreign_buckets)
    with fake.calls_lock:
        calls = list(fake.calls)
    return {"account_id": store.account_id, "region": store.region, "access_keys": keys,
            "config": config, "foreign_buckets": foreign, "services": services,
            "faults": fake.faults.to_json(), "calls": calls}


def handle(fake, server, req):
    """Returns (status, json-able body)."""
    path = req.path.rstrip("/")
    store = fake.store
    try:
        if path == "/_fakeaws/health":
            return 200, {"ok": True}
        if path == "/_fakeaws/state" and req.method == "GET":
            return 200, dump_state(fake)
        if path == "/_fakeaws/calls" and req.method == "GET":
            since = int(req.params.get("since", "0"))
            with fake.calls_lock:
                return 200, {"calls": [c for c in fake.calls if c["seq"] > since]}
        if path == "/_fakeaws/faults":
            if req.method == "GET":
                return 200, fake.faults.to_json()
            if req.method == "DELETE":
                fake.faults.clear()
                return 200, {"ok": True}
            if req.method == "POST":
                body = _json_body(req)
                specs = body["rules"] if isinstance(body, dict) and "rules" in body else [body]
                ids = [fake.faults.add(s).id for s in specs]
                return 200, {"ids": ids}
        if path == "/_fakeaws/ratelimit" and req.method == "POST":
            body = _json_body(req)
            fake.faults.set_rate_limit(body["service"], body.get("tps"), body.get("burst"))
            return 200, {"ok": True}
        if path == "/_fakeaws/config" and req.method == "POST":
            body = _json_body(req)
            if not isinstance(body, dict):
                return 400, {"error": "bad control request: the body must be a JSON object"}
            with store.lock:
                for k, v in body.items():
                    if k not in store.config:
                        return 400, {"error": f"unknown config key {k}"}
                    if k in dialect.ALLOWED:
                        problem = dialect.check_setting(k, v)
                        if problem:
                            return 400, {"error": problem}
                store.config.update(body)
                return 200, {"config": dict(store.config)}
        if path == "/_fakeaws/foreign-buckets" and req.method == "POST":
            body = _json_body(req)
            with store.lock:
                store.foreign_buckets.add(body["name"])
            return 200, {"ok": True}
        if path == "/_fakeaws/age-keys" and req.method == "POST":
            body = _json_body(req)
            seconds = body.get("seconds") if isinstance(body, dict) else None
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
                    or not 1 <= seconds <= 315360000:
                return 400, {"error": "bad control request: seconds 1..315360000"}
            with store.lock:
                keys = [k for k in store.access_keys.values() if k.user_name is not None]
                for k in keys:
                    k.created -= seconds
            return 200, {"aged": len(keys)}
        if path == "/_fakeaws/seed-secrets" and req.method == "POST":
            body = _json_body(req)
            count = body["count"]
            start = body.get("start", 0)
            if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 1000000 \
                    or isinstance(start, bool) or not isinstance(start, int) or start < 0:
                return 400, {"error": "bad control request: count 0..1000000, start >= 0"}
            from .secretsmanager import seed_secrets
            with store.lock:
                made = seed_secrets(store, count, str(body.get("prefix", "keybroker/")),
                                    str(body.get("tenant_prefix", "t")), start)
            return 200, {"created": made}
        if path == "/_fakeaws/managed-policies" and req.method == "POST":
            body = _json_body(req)
            doc = body["document"]
            if isinstance(doc, str):
                doc = json.loads(doc)
            with store.lock:
                store.managed_policies[body["arn"]] = doc
            return 200, {"ok": True}
    except (KeyError, ValueError, TypeError) as e:
        return 400, {"error": f"bad control request: {e}"}
    return 404, {"error": f"no control route {req.method} {req.path}"}
