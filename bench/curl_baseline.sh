#!/bin/sh
# curl_baseline.sh N P - the baseline of bench_http: N STS GetCallerIdentity calls, each made by
# its own `curl` process (new process, new connection, curl's own SigV4 via --aws-sigv4), at most
# P at a time. Uses AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION.
# The key goes to curl through a mode-600 config file, never on a command line.
# Prints: bench=http mode=curl_per_call calls=N in_flight=P ok=M seconds=S calls_per_sec=R
set -eu
n=${1:?usage: curl_baseline.sh N P}
p=${2:-1}
region=${AWS_REGION:-us-east-1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
umask 077
printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$tmp/curlrc"
cat >"$tmp/one.sh" <<EOS
#!/bin/sh
exec curl -sS -o /dev/null -w '%{http_code}\n' -K "$tmp/curlrc" \
    --aws-sigv4 "aws:amz:$region:sts" \
    -H 'Content-Type: application/x-www-form-urlencoded; charset=utf-8' \
    -d 'Action=GetCallerIdentity&Version=2011-06-15' "$AWS_ENDPOINT_URL/"
EOS
chmod 700 "$tmp/one.sh"
start=$(date +%s.%N)
seq "$n" | xargs -P "$p" -I{} "$tmp/one.sh" >"$tmp/codes" 2>"$tmp/err" || true
end=$(date +%s.%N)
ok=$(grep -c '^200$' "$tmp/codes" || true)
awk -v n="$n" -v p="$p" -v ok="$ok" -v s="$start" -v e="$end" 'BEGIN {
    d = e - s; printf "bench=http mode=curl_per_call calls=%d in_flight=%d ok=%d seconds=%.3f calls_per_sec=%.1f\n", n, p, ok, d, ok / d }'
[ "$ok" -eq "$n" ] || { echo "curl_baseline: $((n - ok)) calls failed" >&2; head -3 "$tmp/err" >&2; exit 1; }
