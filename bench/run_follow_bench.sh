#!/bin/sh
# run_follow_bench.sh [BUILD_DIR] [N] [PASSES] - a follower broker (issue 12 item 5): N tenants
# with "rotate": false whose secrets fakeaws's control endpoint creates at once
# (POST /_fakeaws/seed-secrets: tagged as keybroker tags them, one AWSCURRENT version each), a
# daemon following all of them (broker.follow.interval 5s), then PASSES more passes. Prints
# key=value lines: the config's size and load time, the ListSecrets calls of the start-up pass
# and of each later pass (from the daemon's follow-poll lines, checked against fakeaws's call
# log: ceil(N / 100) each), every call that was not ListSecrets (must be none: no IAM, S3 or
# STS), the time of one pass (the daemon's keybroker_follow_last_poll_seconds; fakeaws answers
# every page), the time to the first ready tenant set, and the daemon's RSS.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
n=${2:-10000}
passes=${3:-3}
bin=$build/broker/keybrokerd
[ -x "$bin" ] || { echo "run_follow_bench: $bin not built" >&2; exit 2; }
tmp=$(mktemp -d)
chmod 755 "$tmp"
. "$root/tests/fakeaws/start.sh"
kb_pid=
cleanup() {
    [ -n "$kb_pid" ] && kill "$kb_pid" 2>/dev/null && wait "$kb_pid" 2>/dev/null || true
    fakeaws_stop
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

fakeaws_start "$root" "$tmp" || exit 2
endpoint=$FAKEAWS_ENDPOINT

fakeaws_root_env

echo "# machine: $(nproc) cores, $(uname -sr); server: fakeaws (python3, threaded) on loopback"
echo "# command: sh bench/run_follow_bench.sh $build $n $passes"
exec /usr/bin/python3 - "$bin" "$endpoint" "$tmp" "$n" "$passes" <<'PY'
import json, math, os, socket, subprocess, sys, time, urllib.request

binary, endpoint, tmp, n, passes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), \
    int(sys.argv[5])


def control(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(endpoint + path, data=data, method=method,
                               headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(r, timeout=600).read())


def calls():
    return control("GET", "/_fakeaws/calls?since=0")["calls"]


t = time.monotonic()
made = control("POST", "/_fakeaws/seed-secrets", {"count": n, "prefix": "keybroker/",
                                                  "tenant_prefix": "t"})["created"]
print(f"seeded_secrets={made} seed_s={time.monotonic() - t:.2f}")

sock = os.path.join(tmp, "kb.sock")
cfg = {"broker": {"socket": {"path": sock}, "log_level": "debug",
                  "follow": {"interval": "5s"}},
       "aws": {"region": "us-east-1", "endpoint_url": endpoint},
       "tenants": [{"name": f"t{i}", "bucket": f"kb-t{i}-data", "access": "read-only",
                    "rotate": False} for i in range(n)]}
path = os.path.join(tmp, "kb.json")
with open(path, "w") as f:
    json.dump(cfg, f, separators=(",", ":"))
print(f"config_bytes={os.path.getsize(path)}")
t = time.monotonic()
subprocess.run([binary, "--check-config", path], check=True, stdout=subprocess.DEVNULL)
print(f"config_check_s={time.monotonic() - t:.3f}")


def metrics():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(sock)
    s.sendall(b'{"v":1,"op":"metrics"}\n')
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
    s.close()
    out = {}
    for l in json.loads(buf)["result"]["text"].splitlines():
        if l and not l.startswith("#"):
            k, v = l.rsplit(" ", 1)
            out[k] = float(v)
    return out


err = open(os.path.join(tmp, "kb.err"), "wb")
start = time.monotonic()
proc = subprocess.Popen([binary, "--config", path, "--foreground"], stdout=subprocess.DEVNULL,
                        stderr=err)
try:
    m = None
    while True:
        try:
            m = metrics()
            if m.get('keybroker_follow_polls_total{result="ok"}', 0) >= 1:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() - start > 300:
            raise SystemExit("keybrokerd did not finish its first pass")
        time.sleep(0.05)
    first = time.monotonic() - start
    ready = m['keybroker_tenants{state="ready"}']
    print(f"startup_to_first_pass_s={first:.2f} ready_after_first_pass={int(ready)}")
    print(f"first_pass_s={m['keybroker_follow_last_poll_seconds']:.3f}")
    want = 1 + passes
    while m.get('keybroker_follow_polls_total{result="ok"}', 0) < want:
        if time.monotonic() - start > 300 + 10 * passes:
            raise SystemExit("passes did not complete")
        time.sleep(0.2)
        m = metrics()
    print(f"last_pass_s={m['keybroker_follow_last_poll_seconds']:.3f}")
    with open(f"/proc/{proc.pid}/status") as f:
        st = {l.split(":")[0]: l.split(":")[1].strip() for l in f}
    print(f"rss_kib={st['VmRSS'].split()[0]} peak_rss_kib={st['VmHWM'].split()[0]}")
finally:
    proc.terminate()
    proc.wait(30)
    err.close()

log = []
for l in open(os.path.join(tmp, "kb.err"), "rb").read().decode().splitlines():
    try:
        log.append(json.loads(l))
    except ValueError:
        pass
polls = [l for l in log if l.get("event") == "follow-poll"]
ok = [p for p in polls if p.get("result") == "ok"]
print("pass_calls=" + ",".join(p["calls"] for p in ok))
print("pass_ms=" + ",".join(p["ms"] for p in ok))
print(f"failed_passes={len(polls) - len(ok)}")
c = calls()
listing = [x for x in c if x["operation"] == "ListSecrets"]
other = sorted({f'{x["service"]}:{x["operation"]}' for x in c} - {"secretsmanager:ListSecrets"})
print(f"listsecrets_calls={len(listing)} other_calls={','.join(other) or 'none'}")
expect = math.ceil(n / 100)
good = all(p["calls"] == str(expect) for p in ok) and not other and \
    len(listing) - expect * len(ok) in (0, 1)
print(f"expected_calls_per_pass={expect} check={'ok' if good else 'FAILED'}")
sys.exit(0 if good else 1)
PY
