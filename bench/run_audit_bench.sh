#!/usr/bin/env bash
# run_audit_bench.sh - what the audit log costs a `get`: throughput with the audit log off, on
# with fsync "interval" and on with fsync "always", measured in the same run against three
# keybrokerd of the same build, config and tenant (the baseline is the broker without an audit
# log); and how many records per second each audited broker wrote meanwhile (one authz record per
# get, plus the broker's own).
#
#   bench/run_audit_bench.sh            (KB_BUILD_DIR: the build to use, default build/release)
#
# Each broker serves one tenant on its own socket and (when audited) writes a sha256 chain into
# its own file in a temporary directory on the same filesystem; the load generator bench_socket
# runs at 16 and 64 clients (BENCH_SECONDS per run, default 3), each broker in turn, twice
# (ROUNDS, default 2) so that a slow moment of this shared machine does not land on one broker
# only; the table keeps every run and the ratios use each broker's best. Run as root the clients
# spread over the uids of BENCH_UIDS (default 60001-60004). Target: audited (interval) ok/s >=
# 0.8x the baseline's. Everything is stopped and removed at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${KB_BUILD_DIR:-$ROOT/build/release}
PYTHON=${KB_PYTHON:-/usr/bin/python3}
KEYBROKERD=${KEYBROKERD:-$BUILD/broker/keybrokerd}
KBCTL=$BUILD/proto/kbctl
BENCH=$BUILD/bench/bench_socket
RUN_SECONDS=${BENCH_SECONDS:-3}
ROUNDS=${ROUNDS:-2}
if [ "$(id -u)" -eq 0 ]; then UIDS=${BENCH_UIDS-60001,60002,60003,60004}; else UIDS=; fi
TMP=$(mktemp -d -t keybroker-auditbench.XXXXXX)
chmod 755 "$TMP"
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT

for b in "$KEYBROKERD" "$KBCTL" "$BENCH"; do
    [ -x "$b" ] || { echo "missing $b: build first (KB_BUILD_DIR=$BUILD)" >&2; exit 1; }
done

. "$ROOT/tests/fakeaws/start.sh"
fakeaws_start "$ROOT" "$TMP" || exit 1
PIDS+=("$FAKEAWS_PID")

# start_broker NAME AUDIT_JSON: a keybrokerd on $TMP/NAME.sock; AUDIT_JSON "" = no audit log
start_broker() {
    local name=$1 audit=$2
    cat >"$TMP/$name.json" <<EOF
{
  "broker": {
    "socket": {"path": "$TMP/$name.sock", "mode": "0666"},
    "log_level": "info",
    "limits": {"requests_per_second_per_uid": 100000, "max_connections": 1024}${audit:+,
    \"audit\": $audit}
  },
  "aws": {"region": "us-east-1", "endpoint_url": "$FAKEAWS_ENDPOINT", "s3_force_path_style": true},
  "tenants": [{"name": "bench", "bucket": "bench-bucket", "access": "read-only",
               "clients": {"uids": [$(id -u)${UIDS:+, $UIDS}]}}]
}
EOF
    (
        fakeaws_root_env
        exec "$KEYBROKERD" --config "$TMP/$name.json" --allow-unsafe-permissions \
            2>"$TMP/$name.log"
    ) &
    PIDS+=($!)
    for _ in $(seq 1 600); do
        kill -0 "${PIDS[-1]}" 2>/dev/null || break
        "$KBCTL" --socket "$TMP/$name.sock" get bench >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "keybrokerd $name did not become ready:" >&2
    tail -20 "$TMP/$name.log" >&2
    exit 1
}

start_broker off ""
start_broker interval "{\"path\": \"$TMP/interval.audit\", \"chain\": \"sha256\", \"fsync\": \"interval\"}"
start_broker always "{\"path\": \"$TMP/always.audit\", \"chain\": \"sha256\", \"fsync\": \"always\"}"

lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }

REQ='{"v":1,"id":1,"op":"get","tenant":"bench"}'
echo "audit bench: $(nproc) CPUs, $RUN_SECONDS s per run, $ROUNDS rounds, filesystem of $TMP:" \
    "$(df -T "$TMP" | awk 'NR==2 {print $2}'), generator uids: ${UIDS:-$(id -u)}"
printf '%-8s %-9s %10s %9s %9s %12s\n' clients broker "ok/s" "p50 us" "p99 us" "records/s"
declare -A BEST
for n in 16 64; do
    uids=$(echo "$UIDS" | cut -d, -f"1-$n")
    for round in $(seq 1 "$ROUNDS"); do
        for name in off interval always; do
            before=$(lines "$TMP/$name.audit")
            t0=$(date +%s.%N)
            out=$("$BENCH" "$TMP/$name.sock" --clients "$n" --seconds "$RUN_SECONDS" \
                --line "$REQ" --expect '"ok":true' ${uids:+--uids "$uids"}) || [ $? -eq 1 ]
            sleep 1.2 # the interval broker's last batch and fsync land in the file
            after=$(lines "$TMP/$name.audit")
            t1=$(date +%s.%N)
            eval "$(echo "$out" | tr ' ' '\n' | grep -E '^(ok_rps|p50_us|p99_us)=')"
            rec=$("$PYTHON" -c 'import sys; b,a,s=map(float,sys.argv[1:]); print("%.0f" % ((a-b)/s) if a > b else "-")' \
                "$before" "$after" "$RUN_SECONDS")
            printf '%-8s %-9s %10s %9s %9s %12s\n' "$n" "$name" "$ok_rps" "$p50_us" "$p99_us" "$rec"
            prev=${BEST[$name.$n]:-0}
            BEST[$name.$n]=$("$PYTHON" -c 'import sys; print(max(float(sys.argv[1]), float(sys.argv[2])))' "$prev" "$ok_rps")
        done
    done
done
echo
echo "ratios (audited / off, best runs): target >= 0.8 with fsync interval"
for n in 16 64; do
    "$PYTHON" -c 'import sys; o,i,a=map(float,sys.argv[2:]); print("  %-3s clients: fsync interval %.2fx  fsync always %.2fx" % (sys.argv[1], i/o, a/o))' \
        "$n" "${BEST[off.$n]}" "${BEST[interval.$n]}" "${BEST[always.$n]}"
done
# the chains the benchmark wrote must still verify
for name in interval always; do
    if "$KBCTL" audit verify "$TMP/$name.audit" >/dev/null 2>&1; then
        echo "  $name.audit: kbctl audit verify OK ($(lines "$TMP/$name.audit") records)"
    else
        echo "  $name.audit: kbctl audit verify FAILED" >&2
        "$KBCTL" audit verify "$TMP/$name.audit" >&2 || true
        exit 1
    fi
done
