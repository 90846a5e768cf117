#!/usr/bin/env python3
"""rotation_bench.py - the driver of bench/run_rotation_bench.sh (Python 3 stdlib only).

    rotation_bench.py config OUT ENDPOINT SOCKET ADMIN_UID N CONCURRENCY
        writes keybrokerd's configuration: N tenants r00000.. with "rotate": true, distinct
        buckets, a client ACL (uid 60001), aws.overlap 1h (no window step during the bench).
    rotation_bench.py run ENDPOINT SOCKET PID LOG N
        with keybrokerd (PID, log file LOG) serving SOCKET against fakeaws at ENDPOINT:
        waits until all N tenants are ready (provisioned at start, fakeaws without limits),
        sets fakeaws's IAM rate limit and key propagation delay, rotates all N on demand over
        the socket (pipelined), and prints key=value lines: the wall time, the IAM calls of the
        rotation phase from fakeaws's call log, the bound they and the limit imply, the throttles
        fakeaws answered, every answer's state, time to ready p50/p99 and the daemon's RSS.
        Exits 1 when a rotation did not answer ready/rotated or the call log is not as expected.

Settings from the environment (run_rotation_bench.sh passes them through):
    ROT_TPS (20), ROT_BURST (20)   fakeaws's IAM token bucket during the rotation phase
    ROT_KEY_DELAY (2)              seconds before fakeaws accepts a new key
    ROT_CONNS (8), ROT_WINDOW (16) driver connections and requests in flight on each
    ROT_READY_TIMEOUT (300)        seconds to wait for provisioning
    ROT_CALLS_OUT                  a file to write the rotation phase's call log to (JSON)
"""

import json
import os
import socket
import sys
import threading
import time
import urllib.request

CLIENT_UID = 60001


def env_num(name, default, kind=float):
    v = os.environ.get(name, "")
    return kind(v) if v != "" else kind(default)


def tenant_name(i):
    return f"r{i:05d}"


def write_config(out, endpoint, sock, admin_uid, n, conc):
    doc = {
        "broker": {"socket": {"path": sock, "mode": "0600"}, "admin": {"uids": [int(admin_uid)]},
                   "concurrency": int(conc), "log_level": "info"},
        "aws": {"region": "us-east-1", "endpoint_url": endpoint, "s3_force_path_style": True,
                "probe_timeout": "60s", "overlap": "1h", "retire": "1d"},
        "tenants": [{"name": tenant_name(i), "bucket": f"kb-rot-{tenant_name(i)}",
                     "prefix": "data/", "access": "read-write",
                     "clients": {"uids": [CLIENT_UID]}, "rotate": True}
                    for i in range(int(n))],
    }
    with open(out, "w") as f:
        json.dump(doc, f)


# -- fakeaws's control endpoint ------------------------------------------------------------------

def control(endpoint, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(endpoint + path, data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read().decode())


def last_seq(endpoint):
    # The log only grows; asking for everything after a huge seq would say nothing, so read all
    # once (the provisioning phase's ~15k entries: a few MB).
    calls = control(endpoint, "/_fakeaws/calls?since=0")["calls"]
    return calls[-1]["seq"] if calls else 0


# -- the broker's socket -------------------------------------------------------------------------

class Conn:
    def __init__(self, path, timeout=600):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""

    def send(self, obj):
        self.s.sendall(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("keybrokerd closed the connection")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\n", 1)
        return json.loads(raw)

    def answer(self):
        """The next final response (a line with "ok"), skipping progress and event lines."""
        while True:
            msg = self.line()
            if "ok" in msg:
                return msg

    def close(self):
        self.s.close()


def tenant_states(sock):
    c = Conn(sock, timeout=30)
    try:
        c.send({"v": 1, "op": "metrics"})
        reply = c.answer()
    finally:
        c.close()
    if not reply.get("ok"):
        return None, None
    states, ttr = {}, {}
    for l in reply["result"]["text"].splitlines():
        if l.startswith('keybroker_tenants{state="'):
            states[l.split('"')[1]] = int(l.split()[-1])
        elif l.startswith('keybroker_rotation_time_to_ready_seconds{tenant="'):
            ttr[l.split('"')[1]] = float(l.split()[-1])
    return states, ttr


def proc_status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for l in f:
            if l.startswith(field + ":"):
                return int(l.split()[1])
    return 0


def rotate_all(sock, names, conns, window, pid):
    """Rotates every tenant of names over conns connections, at most window requests in flight on
    each. Returns (t_first_request, t_last_answer, {tenant: answer}, peak VmRSS kB sampled)."""
    todo = list(reversed(names))
    lock = threading.Lock()
    answers, errors = {}, []
    first = [None]
    last = [0.0]

    def take():
        with lock:
            return todo.pop() if todo else None

    def worker(k):
        try:
            c = Conn(sock)
            pending = []  # tenants in request order: answers come back in that order
            for _ in range(window):
                t = take()
                if t is None:
                    break
                with lock:
                    if first[0] is None:
                        first[0] = time.monotonic()
                c.send({"v": 1, "id": t, "op": "rotate", "tenant": t})
                pending.append(t)
            while pending:
                reply = c.answer()
                now = time.monotonic()
                t = pending.pop(0)
                with lock:
                    answers[t] = reply
                    last[0] = max(last[0], now)
                if reply.get("id") != t:
                    raise RuntimeError(f"answer for {reply.get('id')!r} where {t!r} was due")
                nxt = take()
                if nxt is not None:
                    c.send({"v": 1, "id": nxt, "op": "rotate", "tenant": nxt})
                    pending.append(nxt)
            c.close()
        except Exception as e:  # reported after the join
            errors.append(f"connection {k}: {e!r}")

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(conns)]
    for th in threads:
        th.start()
    peak = 0
    while any(th.is_alive() for th in threads):
        try:
            peak = max(peak, proc_status(pid, "VmRSS"))
        except OSError:
            errors.append("keybrokerd is gone")
            break
        time.sleep(0.25)
    for th in threads:
        th.join(timeout=1)
    if errors:
        raise RuntimeError("; ".join(errors))
    return first[0], last[0], answers, peak


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    v = sorted(values)
    rank = max(1, -(-len(v) * p // 100))  # ceil(n * p / 100)
    return v[int(rank) - 1]


def probe_lines(log, names):
    """{tenant: time_to_ready_ms} from the daemon's rotation-probe log lines."""
    want, out = set(names), {}
    with open(log, errors="replace") as f:
        for l in f:
            if "rotation-probe" not in l:
                continue
            try:
                rec = json.loads(l)
            except ValueError:
                continue
            if rec.get("tenant") in want and "time_to_ready_ms" in rec:
                out[rec["tenant"]] = int(rec["time_to_ready_ms"])
    return out


def run(endpoint, sock, pid, log, n):
    pid, n = int(pid), int(n)
    tps, burst = env_num("ROT_TPS", 20), env_num("ROT_BURST", 20)
    delay = env_num("ROT_KEY_DELAY", 2)
    conns, window = env_num("ROT_CONNS", 8, int), env_num("ROT_WINDOW", 16, int)
    names = [tenant_name(i) for i in range(n)]
    ok = True

    # 1. Provisioning (at start, no limit): wait until every tenant is ready.
    t0 = time.monotonic()
    deadline = t0 + env_num("ROT_READY_TIMEOUT", 300)
    states = None
    while time.monotonic() < deadline:
        states, _ = tenant_states(sock)
        if states is not None and states.get("ready") == n:
            break
        if states is not None and states.get("error"):
            raise SystemExit(f"rotation_bench: provisioning failed: {states}")
        time.sleep(0.5)
    else:
        raise SystemExit(f"rotation_bench: not all ready after provisioning: {states}")
    print(f"bench=rotation phase=provision tenants={n} seconds={time.monotonic() - t0:.1f} "
          f"vmhwm_kb={proc_status(pid, 'VmHWM')} rss_kb={proc_status(pid, 'VmRSS')}")
    sys.stdout.flush()

    # 2. The limit and the propagation delay, then every tenant rotated on demand.
    seq0 = last_seq(endpoint)
    control(endpoint, "/_fakeaws/config", {"key_propagation_delay": delay})
    control(endpoint, "/_fakeaws/ratelimit", {"service": "iam", "tps": tps, "burst": burst})
    t_first, t_last, answers, peak = rotate_all(sock, names, conns, window, pid)
    wall = t_last - t_first
    control(endpoint, "/_fakeaws/ratelimit", {"service": "iam", "tps": 0})

    # 3. Every answer: ok, state ready, message "rotated: ...".
    bad = {t: a for t, a in answers.items()
           if not (a.get("ok") and a["result"].get("state") == "ready"
                   and str(a["result"].get("message", "")).startswith("rotated"))}
    missing = [t for t in names if t not in answers]
    by_state = {}
    for a in answers.values():
        s = a["result"].get("state") if a.get("ok") else "error:" + a["error"]["code"]
        by_state[s] = by_state.get(s, 0) + 1
    print(f"bench=rotation answers={len(answers)} "
          + " ".join(f"state_{k}={v}" for k, v in sorted(by_state.items()))
          + f" not_rotated={len(bad) + len(missing)}")
    for t, a in list(bad.items())[:10]:
        print(f"bench=rotation failed tenant={t} answer={json.dumps(a)}")
    if bad or missing:
        ok = False

    # 4. The call log of the rotation phase.
    calls = control(endpoint, f"/_fakeaws/calls?since={seq0}")["calls"]
    if os.environ.get("ROT_CALLS_OUT"):
        with open(os.environ["ROT_CALLS_OUT"], "w") as f:
            json.dump(calls, f)
    iam = [c for c in calls if c["service"] == "iam"]
    throttled = [c for c in calls if c.get("fault") == "ratelimit"
                 or c.get("error") in ("Throttling", "ThrottlingException")
                 or c.get("status") == 429]
    throttled_seqs = {c["seq"] for c in throttled}
    accepted = [c for c in iam if c["seq"] not in throttled_seqs]
    ops = {}
    for c in accepted:
        ops[c["operation"]] = ops.get(c["operation"], 0) + 1
    other = {}
    for c in calls:
        if c["service"] != "iam":
            key = f"{c['service']}:{c['operation']}"
            other[key] = other.get(key, 0) + 1
    # A token bucket of BURST tokens, full when the limit is set, lets BURST calls through at
    # once; every further call needs 1/TPS s. Throttled calls take no token.
    bound = max(0.0, len(accepted) - burst) / tps
    print(f"bench=rotation iam_calls={len(accepted)} iam_calls_per_rotation={len(accepted) / n:.2f} "
          + " ".join(f"{k}={v}" for k, v in sorted(ops.items())))
    print("bench=rotation other_calls " + " ".join(f"{k}={v}" for k, v in sorted(other.items())))
    print(f"bench=rotation throttled={len(throttled)} "
          f"throttled_iam={sum(1 for c in throttled if c['service'] == 'iam')}")
    if sorted(ops) != ["CreateAccessKey", "GetUser", "ListAccessKeys"] or \
            any(v != n for v in ops.values()):
        print("bench=rotation iam_minimal_set=NO (expected GetUser, ListAccessKeys, "
              "CreateAccessKey once per rotation)")
        ok = False
    else:
        print("bench=rotation iam_minimal_set=yes")
    iam_times = [c["time"] for c in accepted]
    if iam_times:
        span = max(iam_times) - min(iam_times)
        print(f"bench=rotation iam_span_seconds={span:.2f} "
              f"iam_rate_tps={(len(accepted) - 1) / span if span > 0 else 0:.2f}")

    # 5. Time to ready: the rotation-probe log lines, and the metric's per-tenant values.
    ttr = probe_lines(log, names)
    _, gauge = tenant_states(sock)
    if len(ttr) != n:
        print(f"bench=rotation probe_lines={len(ttr)} (expected {n})")
        ok = False
    if ttr:
        v = list(ttr.values())
        print(f"bench=rotation time_to_ready_ms_p50={percentile(v, 50)} "
              f"p99={percentile(v, 99)} max={max(v)} min={min(v)} source=log({len(v)} lines)")
    g = [gauge[t] * 1000 for t in names if t in gauge]
    if g:
        print(f"bench=rotation metric_time_to_ready_ms_p50={percentile(g, 50):.0f} "
              f"p99={percentile(g, 99):.0f} source=metrics({len(g)} tenants)")

    vmhwm = proc_status(pid, "VmHWM")
    print(f"bench=rotation rss_peak_rotation_kb={peak} vmhwm_kb={vmhwm} "
          f"rss_after_kb={proc_status(pid, 'VmRSS')}")
    print(f"bench=rotation tenants={n} tps={tps:g} burst={burst:g} key_delay_s={delay:g} "
          f"conns={conns} window={window} wall_seconds={wall:.2f} bound_seconds={bound:.2f} "
          f"ratio={wall / bound if bound > 0 else float('inf'):.3f}")
    return 0 if ok else 1


def main(argv):
    if len(argv) == 8 and argv[1] == "config":
        write_config(*argv[2:])
        return 0
    if len(argv) == 7 and argv[1] == "run":
        return run(*argv[2:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
