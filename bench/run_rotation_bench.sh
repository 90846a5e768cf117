#!/usr/bin/env bash
# run_rotation_bench.sh [BUILD_DIR] [N] [CONCURRENCY] - rotating N tenants (default 1,000) on
# demand against a private fakeaws on loopback with an IAM rate limit (issue 12, item 6).
#
# Starts fakeaws and keybrokerd (broker.concurrency CONCURRENCY, default 32; N tenants with
# "rotate": true, aws.overlap 1h so that no window step runs during the bench), waits until the
# daemon has provisioned every tenant (no rate limit, no propagation delay), then sets fakeaws's
# IAM rate limit to ROT_TPS (20) with a burst of ROT_BURST (20) and its key propagation delay to
# ROT_KEY_DELAY (2 s), and rotates every tenant with pipelined `rotate` requests over the socket
# (ROT_CONNS connections, 8, with ROT_WINDOW requests in flight on each, 16) as an admin (the
# caller's uid). bench/rotation_bench.py does the measuring; it prints key=value lines:
#   wall_seconds   first rotate request sent to last answer read
#   bound_seconds  (IAM calls of the rotation phase that fakeaws accepted - burst) / tps: the
#                  least time a token bucket of that rate and burst lets those calls through
#   ratio          wall / bound (target <= 1.1)
#   throttled      calls fakeaws answered with its throttling error (each retried by the broker)
#   time_to_ready_ms_p50/p99 from the daemon's rotation-probe log lines (exact, one per rotation)
#   rss_peak_rotation_kb (VmRSS sampled every 0.25 s while rotating), vmhwm_kb (VmHWM)
# Exits 1 when a rotation did not answer ready ("rotated: ..."), the IAM calls are not the
# minimal 3 per rotation, or the daemon died; 2 when something is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
n=${2:-1000}
conc=${3:-32}
bin=$build/broker/keybrokerd
py=${KB_PYTHON:-/usr/bin/python3}
[ -x "$bin" ] || { echo "run_rotation_bench: $bin not built" >&2; exit 2; }
tmp=$(mktemp -d)
kb_pid=
# shellcheck source=../tests/fakeaws/start.sh
. "$root/tests/fakeaws/start.sh"
cleanup() {
    if [ -n "$kb_pid" ]; then
        kill "$kb_pid" 2>/dev/null || true
        wait "$kb_pid" 2>/dev/null || true
    fi
    fakeaws_stop
    if [ "${ROT_KEEP:-0}" = 1 ]; then
        echo "run_rotation_bench: files kept in $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fakeaws_start "$root" "$tmp" || exit 2

fakeaws_root_env

sock=$tmp/kb.sock
"$py" "$root/bench/rotation_bench.py" config "$tmp/kb.json" "$FAKEAWS_ENDPOINT" "$sock" \
    "$(id -u)" "$n" "$conc"

"$bin" --config "$tmp/kb.json" --foreground >"$tmp/kb.out" 2>"$tmp/kb.err" &
kb_pid=$!
i=0
until [ -S "$sock" ]; do
    kill -0 "$kb_pid" 2>/dev/null || { echo "run_rotation_bench: keybrokerd died" >&2
                                         tail -20 "$tmp/kb.err" >&2; exit 1; }
    i=$((i + 1))
    [ $i -lt 600 ] || { echo "run_rotation_bench: no socket after 30 s" >&2; exit 1; }
    sleep 0.05
done

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "# machine: $(nproc) cores ($cpu), $(uname -sr); keybrokerd $build" \
    "(broker.concurrency $conc), fakeaws (python3) on loopback"
rc=0
"$py" "$root/bench/rotation_bench.py" run "$FAKEAWS_ENDPOINT" "$sock" "$kb_pid" "$tmp/kb.err" \
    "$n" || rc=$?
if ! kill -0 "$kb_pid" 2>/dev/null; then
    echo "run_rotation_bench: keybrokerd died" >&2
    tail -20 "$tmp/kb.err" >&2
    exit 1
fi
exit "$rc"
