#!/bin/sh
# run_memory_bench.sh [BUILD_DIR] [N] - what provisioning leaves behind in keybrokerd's memory.
# Starts a private fakeaws on loopback and `keybrokerd --no-provision-at-start` with N fresh
# read-write tenants (broker.concurrency 32), reads the daemon's private memory (RssAnon of
# /proc/PID/status) once its socket answers, provisions every tenant through the socket
# (`kbctl provision`, the admin being our uid), waits for the answer and 2 s more, and reads it
# again; then provisions a second time (a reconcile: reads only) and reads it a third time.
# LOG_LEVEL (default info, the daemon's default) sets broker.log_level; the log goes to a file.
# Prints key=value lines:
#   tenants, rss_before_kb, rss_after_kb, leftover_per_tenant_bytes
#     (rss_after_kb - rss_before_kb, in bytes, over N), rss_after_second_kb,
#   second_growth_per_tenant_bytes (rss_after_second_kb - rss_after_kb, over N), and the
#   provisioning wall clocks provision_seconds, second_seconds.
# With MEM_TRIM=1 (needs gdb and the right to ptrace the daemon, e.g. root) it also calls
# malloc_trim(0) in the daemon after the second run and prints rss_after_trim_kb: the part of the
# leftover that is freed memory glibc had not returned to the system.
# Exits 1 when the daemon dies or a provisioning fails, 2 when something is missing.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
n=${2:-1000}
bin=$build/broker/keybrokerd
kbctl=$build/proto/kbctl
[ -x "$bin" ] || { echo "run_memory_bench: $bin not built" >&2; exit 2; }
[ -x "$kbctl" ] || { echo "run_memory_bench: $kbctl not built" >&2; exit 2; }
tmp=$(mktemp -d)
kb_pid=
. "$root/tests/fakeaws/start.sh"
cleanup() {
    if [ -n "$kb_pid" ]; then
        kill "$kb_pid" 2>/dev/null || true
        wait "$kb_pid" 2>/dev/null || true
    fi
    fakeaws_stop
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fakeaws_start "$root" "$tmp" || exit 2

fakeaws_root_env

now() { /usr/bin/python3 -c 'import time; print(f"{time.monotonic():.3f}")'; }
fail() {
    echo "run_memory_bench: $*" >&2
    tail -20 "$tmp/kb.err" >&2
    exit 1
}
alive() { kill -0 "$kb_pid" 2>/dev/null || fail "keybrokerd died"; }
rss() { # the daemon's RssAnon in kB
    alive
    /usr/bin/awk '$1 == "RssAnon:" { print $2 }' "/proc/$kb_pid/status"
}
provision() { # provision OUT: every tenant through the socket; checks that all are ready
    "$kbctl" --socket "$sock" provision >"$1" 2>"$1.err" ||
        fail "kbctl provision failed ($?): $(tail -3 "$1.err")"
    alive
    ready=$(grep -c -E '^m[0-9]+  ready( |$)' "$1" || true)
    [ "$ready" -ge "$n" ] || fail "$ready of $n tenants ready after provisioning"
}

sock=$tmp/kb.sock
/usr/bin/python3 - "$tmp/kb.json" "$FAKEAWS_ENDPOINT" "$n" "$sock" "$(id -u)" \
    "${LOG_LEVEL:-info}" <<'PY'
import json, sys
path, endpoint, n, sock, uid, level = sys.argv[1:]
n, uid = int(n), int(uid)
doc = {"broker": {"socket": {"path": sock}, "admin": {"uids": [uid]}, "concurrency": 32,
                  "log_level": level},
       "aws": {"region": "us-east-1", "endpoint_url": endpoint, "probe_timeout": 60},
       "tenants": [{"name": f"m{i:05d}", "bucket": f"kb-mem-m{i:05d}", "prefix": "data/",
                    "access": "read-write"} for i in range(n)]}
json.dump(doc, open(path, "w"))
PY

"$bin" --config "$tmp/kb.json" --no-provision-at-start >"$tmp/kb.out" 2>"$tmp/kb.err" &
kb_pid=$!
# Ready when a status request is answered (the admin is no tenant's client: a short answer).
i=0
until [ -S "$sock" ] && "$kbctl" --socket "$sock" --timeout 2 status >/dev/null 2>&1; do
    alive
    i=$((i + 1))
    [ $i -lt 600 ] || fail "the socket did not answer within 30 s"
    sleep 0.05
done
sleep 1
before=$(rss)

t0=$(now)
provision "$tmp/prov1.out"
t1=$(now)
sleep 2
after=$(rss)

t2=$(now)
provision "$tmp/prov2.out"
t3=$(now)
sleep 2
second=$(rss)

trimmed=
if [ "${MEM_TRIM:-0}" = 1 ]; then
    command -v gdb >/dev/null || { echo "run_memory_bench: MEM_TRIM=1 needs gdb" >&2; exit 2; }
    gdb -q -batch -p "$kb_pid" -ex 'call (int)malloc_trim(0)' >"$tmp/gdb.out" 2>&1 ||
        fail "gdb: $(tail -3 "$tmp/gdb.out")"
    sleep 0.5
    trimmed=$(rss)
fi

echo "# machine: $(nproc) cores, $(uname -sr); keybrokerd $build, fakeaws on loopback"
/usr/bin/awk -v n="$n" -v b="$before" -v a="$after" -v s="$second" -v tr="$trimmed" \
    -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" 'BEGIN {
    printf "tenants=%d\n", n
    printf "rss_before_kb=%d\n", b
    printf "rss_after_kb=%d\n", a
    printf "leftover_per_tenant_bytes=%d\n", (a - b) * 1024 / n
    printf "rss_after_second_kb=%d\n", s
    printf "second_growth_per_tenant_bytes=%d\n", (s - a) * 1024 / n
    if (tr != "") printf "rss_after_trim_kb=%d\n", tr
    printf "provision_seconds=%.2f\n", t1 - t0
    printf "second_seconds=%.2f\n", t3 - t2 }'
