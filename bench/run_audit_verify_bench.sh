#!/bin/sh
# run_audit_verify_bench.sh [BUILD_DIR] [RECORDS] [RUNS] - how fast `kbctl audit verify --key`
# checks a hmac-sha256 audit chain (issue 13: a 1M-record file). bench_audit_gen writes RECORDS
# records (default 1,000,000) in 60 epochs, made as the writer makes them (authz decisions,
# provisioning and rotation steps with their AWS calls, rotations, config reloads, audit_lost, a
# restart in about one epoch of five, a seal per epoch) and the K_0 key file; then each run
# verifies it (every line parsed, its h recomputed, its tag checked under the epoch key derived
# from K_0). The baseline, in the same run: sha256sum over the same file (reading and hashing its
# bytes once: no parsing, no HMAC). Prints key=value lines: per run the wall time, records/s,
# MB/s and peak RSS; then the best run and the baseline.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
records=${2:-1000000}
runs=${3:-3}
gen=$build/bench/bench_audit_gen
kbctl=$build/proto/kbctl
for b in "$gen" "$kbctl"; do
    [ -x "$b" ] || { echo "run_audit_verify_bench: $b not built" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "# machine: $(nproc) cores, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# command: sh bench/run_audit_verify_bench.sh $build $records $runs ($(date -u +%Y-%m-%d))"
"$gen" "$tmp/audit.log" "$tmp/k0.json" "$records" 60 1 >"$tmp/gen.out"
chmod 600 "$tmp/k0.json"
bytes=$(stat -c %s "$tmp/audit.log")
lines=$(wc -l <"$tmp/audit.log")
echo "file_bytes=$bytes lines=$lines $(cat "$tmp/gen.out")"
cat "$tmp/audit.log" >/dev/null # the page cache holds it for every run

now() { date +%s.%N; }
best=
i=1
while [ "$i" -le "$runs" ]; do
    t0=$(now)
    /usr/bin/time -f "%M" -o "$tmp/rss" "$kbctl" audit verify --key "$tmp/k0.json" \
        "$tmp/audit.log" >"$tmp/out" || { cat "$tmp/out"; exit 1; }
    t1=$(now)
    head -1 "$tmp/out" | grep -q "^intact: 1 file, $lines records$" ||
        { echo "run_audit_verify_bench: not intact:" >&2; cat "$tmp/out" >&2; exit 1; }
    s=$(echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}')
    echo "run=$i verify_s=$s records_per_s=$(echo "$lines $s" | awk '{printf "%d", $1 / $2}')" \
        "mb_per_s=$(echo "$bytes $s" | awk '{printf "%.0f", $1 / $2 / 1e6}')" \
        "peak_rss_kb=$(cat "$tmp/rss")"
    if [ -z "$best" ] || [ "$(echo "$s $best" | awk '{print ($1 < $2)}')" = 1 ]; then
        best=$s
    fi
    i=$((i + 1))
done
t0=$(now)
sha256sum "$tmp/audit.log" >/dev/null
t1=$(now)
base=$(echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}')
echo "best_verify_s=$best best_records_per_s=$(echo "$lines $best" | awk '{printf "%d", $1 / $2}')"
echo "baseline_sha256sum_s=$base verify_over_sha256sum=$(echo "$best $base" | awk '{printf "%.2f", $1 / $2}')"
