#!/bin/sh
# run_provision_bench.sh [BUILD_DIR] [N] [CONCURRENCY] - provisioning N fresh tenants with
# keybrokerd --provision-only (broker.concurrency CONCURRENCY) against a private fakeaws on
# loopback, then the same calls made tenant by tenant by a shell script with /usr/bin/aws
# (aws_cli_provision.sh) against the same fakeaws. Prints key=value lines: the wall clock of
# each, the ratio, the AWS calls per tenant by operation (from fakeaws's call log, checked
# against the minimal set of bench/README.md), and the calls of a second keybrokerd run (reads
# only). CLI_N (default N) sets how many tenants the much slower baseline provisions; its time
# is scaled to N (the script is sequential: its time is linear in the tenants).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
n=${2:-100}
conc=${3:-32}
cli_n=${CLI_N:-$n}
bin=$build/broker/keybrokerd
[ -x "$bin" ] || { echo "run_provision_bench: $bin not built" >&2; exit 2; }
tmp=$(mktemp -d)
. "$root/tests/fakeaws/start.sh"
cleanup() {
    fakeaws_stop
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

fakeaws_start "$root" "$tmp" || exit 2
endpoint=$FAKEAWS_ENDPOINT

fakeaws_root_env

now() { /usr/bin/python3 -c 'import time; print(f"{time.monotonic():.3f}")'; }
calls() { # calls() SINCE -> the call log after sequence number SINCE, as JSON
    /usr/bin/python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(
        sys.argv[1] + "/_fakeaws/calls?since=" + sys.argv[2]).read().decode())' "$endpoint" "$1"
}
last_seq() {
    calls 0 | /usr/bin/python3 -c 'import json, sys; c = json.load(sys.stdin)["calls"]
print(c[-1]["seq"] if c else 0)'
}

# keybrokerd: N read-write tenants confined to data/, like the baseline's.
/usr/bin/python3 - "$tmp/kb.json" "$endpoint" "$n" "$conc" <<'PY'
import json, sys
path, endpoint, n, conc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
doc = {"broker": {"concurrency": conc, "log_level": "warn"},
       "aws": {"region": "us-east-1", "endpoint_url": endpoint, "probe_timeout": 60},
       "tenants": [{"name": f"b{i:03d}", "bucket": f"kb-bench-b{i:03d}", "prefix": "data/",
                    "access": "read-write"} for i in range(n)]}
json.dump(doc, open(path, "w"))
PY

echo "# machine: $(nproc) cores, $(uname -sr); server: fakeaws (python3, threaded) on loopback"
seq0=$(last_seq)
t0=$(now)
"$bin" --provision-only "$tmp/kb.json" >"$tmp/kb.out" 2>"$tmp/kb.err" || {
    echo "run_provision_bench: keybrokerd failed" >&2; tail -20 "$tmp/kb.out" >&2; exit 1; }
t1=$(now)
ready=$(grep -c ' summary ready ' "$tmp/kb.out" || true)
[ "$ready" -eq "$n" ] || { echo "run_provision_bench: $ready of $n ready" >&2; exit 1; }
calls "$seq0" >"$tmp/fresh.json"
seq1=$(last_seq)
t2=$(now)
"$bin" --provision-only "$tmp/kb.json" >"$tmp/kb2.out" 2>"$tmp/kb2.err"
t3=$(now)
calls "$seq1" >"$tmp/second.json"

# The minimal set per fresh tenant (bench/README.md), and a second run's reads.
/usr/bin/python3 - "$tmp/fresh.json" "$tmp/second.json" "$n" <<'PY'
import collections, json, sys
fresh = json.load(open(sys.argv[1]))["calls"]
second = json.load(open(sys.argv[2]))["calls"]
n = int(sys.argv[3])
minimal = ["HeadBucket", "CreateBucket", "GetBucketTagging", "PutPublicAccessBlock", "PutBucketEncryption",
           "PutBucketOwnershipControls", "PutBucketPolicy", "GetUser", "CreateUser",
           "PutUserPolicy", "DescribeSecret", "CreateAccessKey", "CreateSecret",
           "GetCallerIdentity", "ListObjectsV2"]
reads = ["HeadBucket", "GetBucketTagging", "GetPublicAccessBlock", "GetBucketEncryption",
         "GetBucketOwnershipControls", "GetBucketPolicy", "GetUser", "GetUserPolicy",
         "DescribeSecret", "ListAccessKeys"]
for name, log, want in (("fresh", fresh, minimal), ("second", second, reads)):
    ops = collections.Counter(c["operation"] for c in log)
    per = {op: ops[op] / n for op in sorted(ops)}
    print(f"bench=provision run={name} calls={len(log)} calls_per_tenant={len(log) / n:.2f} "
          + " ".join(f"{op}={v:g}" for op, v in per.items()))
    ok = sorted(ops) == sorted(want) and all(ops[op] == n for op in want)
    print(f"bench=provision run={name} minimal_set={'yes' if ok else 'NO'}")
    if not ok:
        sys.exit(1)
mutating = [c for c in second if not c["operation"].startswith(("Get", "Head", "Describe", "List"))]
print(f"bench=provision run=second mutating_calls={len(mutating)}")
PY

# The baseline: the same calls, one aws process each, tenant after tenant.
export AWS_ENDPOINT_URL="$endpoint"
t4=$(now)
i=0
while [ $i -lt "$cli_n" ]; do
    name=$(printf 'c%03d' $i)
    sh "$root/bench/aws_cli_provision.sh" "$name" "kb-bench-$name"
    i=$((i + 1))
done
t5=$(now)

/usr/bin/awk -v n="$n" -v conc="$conc" -v cn="$cli_n" -v a="$t0" -v b="$t1" -v c="$t2" \
    -v d="$t3" -v e="$t4" -v f="$t5" 'BEGIN {
    kb = b - a; second = d - c; cli = (f - e) * n / cn
    printf "bench=provision tool=keybrokerd tenants=%d concurrency=%d seconds=%.2f tenants_per_sec=%.1f\n", n, conc, kb, n / kb
    printf "bench=provision tool=keybrokerd run=second tenants=%d seconds=%.2f\n", n, second
    printf "bench=provision tool=aws-cli-script tenants=%d measured_tenants=%d seconds=%.2f\n", n, cn, cli
    printf "bench=provision mode=ratio cli_over_keybrokerd=%.1f\n", cli / kb }'
