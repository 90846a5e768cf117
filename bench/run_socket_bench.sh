#!/usr/bin/env bash
# run_socket_bench.sh - get throughput and latency over keybrokerd's client socket, compared in
# the same run with the floor of this machine (bench_epoll_floor: a minimal epoll server that
# answers each line with a fixed line of the same size as keybrokerd's get answer).
#
#   bench/run_socket_bench.sh            (KB_BUILD_DIR: the build to use, default build/release)
#
# It starts fakeaws and keybrokerd with a one-tenant config in a temporary directory, waits for
# the tenant to be ready, starts the floor server, then runs bench_socket at 1, 16 and 64 clients
# against each (BENCH_SECONDS per run, default 3) and prints a table with the ratios
# (keybrokerd / floor). keybrokerd logs at BENCH_LOG_LEVEL (default info, as in production).
# keybrokerd limits requests per uid (at most 100000/s): run as root, the generator spreads its
# clients over the uids of BENCH_UIDS (default 60001-60004, one generator process each) and both
# servers are driven the same way; as another user it runs as that one uid. One client is one uid:
# past 100000 requests/s keybrokerd answers rate_limited, so "ok/s" (answers that were not errors)
# is shown beside req/s. BENCH_TENANTS (default 1) configures that many tenants in all, the
# benchmarked one ("bench") last, to show that a get does not slow down with the tenant count.
# Everything is stopped and removed at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${KB_BUILD_DIR:-$ROOT/build/release}
PYTHON=${KB_PYTHON:-/usr/bin/python3}
KEYBROKERD=${KEYBROKERD:-$BUILD/broker/keybrokerd}
KBCTL=$BUILD/proto/kbctl
BENCH=$BUILD/bench/bench_socket
FLOOR=$BUILD/bench/bench_epoll_floor
RUN_SECONDS=${BENCH_SECONDS:-3}
LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
NTENANTS=${BENCH_TENANTS:-1}
if [ "$(id -u)" -eq 0 ]; then UIDS=${BENCH_UIDS-60001,60002,60003,60004}; else UIDS=; fi
TMP=$(mktemp -d -t keybroker-sockbench.XXXXXX)
chmod 755 "$TMP" # the generator's uids must reach the sockets
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT

for b in "$KEYBROKERD" "$KBCTL" "$BENCH" "$FLOOR"; do
    [ -x "$b" ] || { echo "missing $b: build first (KB_BUILD_DIR=$BUILD)" >&2; exit 1; }
done

. "$ROOT/tests/fakeaws/start.sh"
fakeaws_start "$ROOT" "$TMP" || exit 1
PIDS+=("$FAKEAWS_PID")
ENDPOINT=$FAKEAWS_ENDPOINT

# mode 0666 (and --allow-unsafe-permissions below): the generators run as uids 60001-60004, which
# are in no group; the tenant ACL still decides who gets an answer
cat >"$TMP/config.json" <<EOF
{
  "broker": {
    "socket": {"path": "$TMP/kb.sock", "mode": "0666"},
    "log_level": "$LOG_LEVEL",
    "limits": {"requests_per_second_per_uid": 100000, "max_connections": 1024}
  },
  "aws": {"region": "us-east-1", "endpoint_url": "$ENDPOINT", "s3_force_path_style": true},
  "tenants": [$(for i in $(seq 2 "$NTENANTS"); do
    printf '\n    {"name": "t%05d", "bucket": "bench-bucket-%05d", "access": "read-only", "clients": {"uids": [0]}},' "$i" "$i"
done)
    {"name": "bench", "bucket": "bench-bucket", "access": "read-only",
     "clients": {"uids": [$(id -u)${UIDS:+, $UIDS}]}}
  ]
}
EOF
env AWS_ACCESS_KEY_ID=$FAKEAWS_ROOT_KEY_ID AWS_SECRET_ACCESS_KEY=$FAKEAWS_ROOT_SECRET \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    AWS_EC2_METADATA_DISABLED=true \
    "$KEYBROKERD" --config "$TMP/config.json" --allow-unsafe-permissions 2>"$TMP/keybrokerd.log" &
PIDS+=($!)
for _ in $(seq 1 $((300 + NTENANTS))); do
    kill -0 "${PIDS[-1]}" 2>/dev/null || break # keybrokerd exited: its log says why
    "$KBCTL" --socket "$TMP/kb.sock" --json status bench 2>/dev/null | grep -q '"state":"ready"' && break
    sleep 0.05
done
"$KBCTL" --socket "$TMP/kb.sock" get bench >/dev/null || {
    echo "keybrokerd did not become ready:" >&2
    tail -20 "$TMP/keybrokerd.log" >&2
    exit 1
}
REQ='{"v":1,"id":1,"op":"get","tenant":"bench"}'
REPLY_SIZE=$(printf '%s\n' "$REQ" | socat -t 2 - "UNIX-CONNECT:$TMP/kb.sock" | head -1 | wc -c)

"$FLOOR" "$TMP/floor.sock" --reply-size "$REPLY_SIZE" &
PIDS+=($!)
for _ in $(seq 1 100); do [ -S "$TMP/floor.sock" ] && break; sleep 0.02; done

echo "socket bench: $(nproc) CPUs, $RUN_SECONDS s per run, $NTENANTS tenants, get answer $REPLY_SIZE bytes," \
    "keybrokerd log level $LOG_LEVEL, generator uids: ${UIDS:-$(id -u) (one process)}"
printf '%-8s %-11s %10s %10s %9s %9s\n' clients server "req/s" "ok/s" "p50 us" "p99 us"
declare -A RPS P99
for n in 1 16 64; do
    # no more generator processes than clients
    uids=$(echo "$UIDS" | cut -d, -f"1-$n")
    for target in keybrokerd floor; do
        if [ "$target" = keybrokerd ]; then
            # exit status 1 = some answers were errors (rate_limited): counted, not fatal
            out=$("$BENCH" "$TMP/kb.sock" --clients "$n" --seconds "$RUN_SECONDS" \
                --line "$REQ" --expect '"ok":true' ${uids:+--uids "$uids"}) || [ $? -eq 1 ]
        else
            out=$("$BENCH" "$TMP/floor.sock" --clients "$n" --seconds "$RUN_SECONDS" \
                --line "$REQ" ${uids:+--uids "$uids"})
        fi
        # shellcheck disable=SC2086
        eval "$(echo "$out" | tr ' ' '\n' | grep -E '^(rps|ok_rps|p50_us|p99_us)=')"
        printf '%-8s %-11s %10s %10s %9s %9s\n' "$n" "$target" "$rps" "$ok_rps" "$p50_us" "$p99_us"
        RPS[$target.$n]=$ok_rps
        P99[$target.$n]=$p99_us
    done
done
echo
echo "ratios (keybrokerd / floor): ok/s (target >= 0.7 at 64), p99 (target <= 1.5 at 64)"
for n in 1 16 64; do
    "$PYTHON" -c 'import sys; k,f,kp,fp=map(float,sys.argv[2:]); print("  %-3s clients: throughput %.2fx  p99 %.2fx" % (sys.argv[1], k/f, kp/max(fp,1)))' \
        "$n" "${RPS[keybrokerd.$n]}" "${RPS[floor.$n]}" "${P99[keybrokerd.$n]}" "${P99[floor.$n]}"
done
