#!/bin/sh
# run_http_bench.sh [BUILD_DIR] [N] [K] - AWS calls per second through kb_aws_client (bench_http,
# connections reused, K calls in flight) against a private fakeaws on loopback, and the same
# calls made by one curl process per call (curl_baseline.sh), in the same run, against the same
# fakeaws. Prints the bench lines and the ratio client/curl at 1 and at K in flight.
# CURL_N (default N/4, at least 100) sets how many calls the slower curl baseline makes.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
n=${2:-2000}
k=${3:-16}
curl_n=${CURL_N:-$((n / 4 > 100 ? n / 4 : 100))}
bin=$build/bench/bench_http
[ -x "$bin" ] || { echo "run_http_bench: $bin not built" >&2; exit 2; }
tmp=$(mktemp -d)
. "$root/tests/fakeaws/start.sh"
cleanup() {
    fakeaws_stop
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# fakeaws sets TCP_NODELAY itself (server.py): no delayed-ACK stall on reused connections.
fakeaws_start "$root" "$tmp" || exit 2

fakeaws_root_env
export AWS_ENDPOINT_URL="$FAKEAWS_ENDPOINT"

echo "# machine: $(nproc) cores, $(uname -sr); server: fakeaws (python3, threaded) on loopback"
c1=$("$bin" "$n" 1)
echo "$c1"
ck=$("$bin" "$n" "$k")
echo "$ck"
b1=$(sh "$root/bench/curl_baseline.sh" "$curl_n" 1)
echo "$b1"
bk=$(sh "$root/bench/curl_baseline.sh" "$curl_n" "$k")
echo "$bk"
rate() { echo "$1" | sed -n 's/.*calls_per_sec=\([0-9.]*\).*/\1/p'; }
awk -v a="$(rate "$c1")" -v b="$(rate "$b1")" -v c="$(rate "$ck")" -v d="$(rate "$bk")" -v k="$k" 'BEGIN {
    printf "bench=http mode=ratio in_flight=1 client_over_curl=%.1f\n", a / b
    printf "bench=http mode=ratio in_flight=%d client_over_curl=%.1f\n", k, c / d }'
# fakeaws's own call log must hold every call both sides made (warm-ups included).
expected=$((2 * n + 1 + k + 2 * curl_n))
logged=$(curl -sS "$AWS_ENDPOINT_URL/_fakeaws/calls" | /usr/bin/python3 -c '
import json, sys
calls = json.load(sys.stdin)["calls"]
print(sum(1 for c in calls if c["operation"] == "GetCallerIdentity" and c["status"] == 200))')
echo "# fakeaws logged $logged successful GetCallerIdentity calls (expected $expected)"
[ "$logged" -eq "$expected" ] || { echo "run_http_bench: call log mismatch" >&2; exit 1; }
