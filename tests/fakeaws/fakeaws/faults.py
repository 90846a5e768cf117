"""Fault injection and rate limiting.

A fault rule (JSON, through POST /_fakeaws/faults or --fault):
    {"service": "iam" | "*",            which service (default "*")
     "operation": "CreateUser" | "*",   which operation (default "*")
     "kind": "500" | "503" | "throttle" | "reset" | "delay" | "error",
     "count": N,                        fire on the next N matching calls (default: unlimited)
     "skip": K,                         let the first K matching calls pass first (default 0)
     "probability": p,                  fire with probability p (default 1.0)
     "delay_ms": D,                     for "delay": sleep D ms, then answer normally
     "status": S, "code": C, "message": M}   for "error" (and to override the others)

Rate limit: a token bucket per service; a call that finds it empty gets the service's
throttling error.
"""

import itertools
import random
import threading
import time

KINDS = ("500", "503", "throttle", "reset", "delay", "error")


class Rule:
    _ids = itertools.count(1)

    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("a fault rule is a JSON object")
        unknown = set(spec) - {"service", "operation", "kind", "count", "skip", "probability",
                               "delay_ms", "status", "code", "message"}
        if unknown:
            raise ValueError(f"unknown fault rule fields: {sorted(unknown)}")
        self.id = next(Rule._ids)
        self.service = spec.get("service", "*")
        self.operation = spec.get("operation", "*")
        self.kind = str(spec.get("kind", ""))
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {KINDS}")
        self.count = spec.get("count")
        self.skip = int(spec.get("skip", 0))
        self.probability = float(spec.get("probability", 1.0))
        self.delay_ms = int(spec.get("delay_ms", 0))
        self.status = spec.get("status")
        self.code = spec.get("code")
        self.message = spec.get("message")
        self.fired = 0
        if self.count is not None:
            self.count = int(self.count)

    def matches(self, service, operation):
        return (self.service in ("*", service)) and (self.operation in ("*", operation))

    def to_json(self):
        return {"id": self.id, "service": self.service, "operation": self.operation,
                "kind": self.kind, "count": self.count, "skip": self.skip,
                "probability": self.probability, "delay_ms": self.delay_ms,
                "status": self.status, "code": self.code, "message": self.message,
                "fired": self.fired}


class TokenBucket:
    def __init__(self, tps, burst=None):
        self.tps = tps
        self.burst = burst if burst is not None else max(tps, 1.0)
        self.tokens = self.burst
        self.stamp = time.monotonic()

    def take(self):
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.tps)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class FaultTable:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.limits = {}

    def add(self, spec):
        rule = Rule(spec)
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self):
        with self.lock:
            self.rules = []
            self.limits = {}

    def fire(self, service, operation):
        """The rules that fire for this call, in the order they were added. A rule whose count
        is used up is removed."""
        fired = []
        with self.lock:
            for rule in list(self.rules):
                if not rule.matches(service, operation):
                    continue
                if rule.skip > 0:
                    rule.skip -= 1
                    continue
                if rule.probability < 1.0 and random.random() >= rule.probability:
                    continue
                rule.fired += 1
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self.rules.remove(rule)
                fired.append(rule)
                if rule.kind != "delay":
                    break
        return fired

    def set_rate_limit(self, service, tps, burst=None):
        with self.lock:
            if not tps:
                self.limits.pop(service, None)
            else:
                self.limits[service] = TokenBucket(float(tps), burst)

    def take_token(self, service):
        with self.lock:
            bucket = self.limits.get(service)
            return bucket is None or bucket.take()

    def to_json(self):
        with self.lock:
            return {"rules": [r.to_json() for r in self.rules],
                    "rate_limits": {s: {"tps": b.tps, "burst": b.burst}
                                    for s, b in self.limits.items()}}
