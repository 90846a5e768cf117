#!/usr/bin/env bash
# demo.sh - what `./dev demo` runs after the build: keybroker doing its job on the bundled local
# AWS (fakeaws), from an empty account to an application reading its bucket.
#
#   1. fakeaws (a local IAM/STS/S3/Secrets Manager) and keybrokerd with a two-tenant config;
#   2. `kbctl provision` shows each step of provisioning as it happens;
#   3. `kbctl get` gives an application its secret's ARN (never the secret);
#   4. awscli, configured with `credential_process = kbctl credential-process`, puts and gets an
#      object in the tenant's bucket, and is denied the other tenant's bucket.
# Everything lives in a temporary directory that is removed at the end, with both daemons stopped.
# KB_BUILD_DIR names the build to use (default build/release, what ./dev build makes).
#
# Against another AWS implementation (what ./dev compat does with moto): KB_DEMO_ENDPOINT is its
# URL (fakeaws is then not started), KB_DEMO_KEY_ID / KB_DEMO_SECRET an administrator's key there,
# KB_DEMO_AWS_EXTRA extra members of the config's "aws" object (e.g. '"deny_insecure_transport":
# false').
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "${KB_BUILD_DIR:-$ROOT/build/release}" && pwd)
PYTHON=${KB_PYTHON:-/usr/bin/python3}
AWS=/usr/bin/aws
KEYBROKERD=$BUILD/broker/keybrokerd
KBCTL=$BUILD/proto/kbctl
TMP=$(mktemp -d -t keybroker-demo.XXXXXX)
BROKER_PID=
# fakeaws_start/fakeaws_stop, and fakeaws's root key: the demo's "administrator" (fixed test values).
. "$ROOT/tests/fakeaws/start.sh"

cleanup() {
    local rc=$?
    [ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null
    fakeaws_stop
    rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT

say() { printf '\n--- %s\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed "s|$BUILD/proto/||; s|$TMP|\$DEMO|g"; "$@"; }

for b in "$KEYBROKERD" "$KBCTL"; do
    [ -x "$b" ] || { echo "missing $b: build first (./dev build)" >&2; exit 1; }
done
echo "demo directory: $TMP (written as \$DEMO below; removed at the end)"

if [ -n "${KB_DEMO_ENDPOINT:-}" ]; then
    say "1. the AWS endpoint: $KB_DEMO_ENDPOINT (KB_DEMO_ENDPOINT; fakeaws is not started)"
    ENDPOINT=$KB_DEMO_ENDPOINT
    ADMIN_KEY_ID=${KB_DEMO_KEY_ID:?KB_DEMO_KEY_ID: an administrator key id at $ENDPOINT}
    ADMIN_SECRET=${KB_DEMO_SECRET:?KB_DEMO_SECRET: the secret of KB_DEMO_KEY_ID}
else
    say "1. fakeaws: a local AWS (IAM, STS, S3, Secrets Manager) on a free port of 127.0.0.1"
    fakeaws_start "$ROOT" "$TMP" || exit 1
    ENDPOINT=$FAKEAWS_ENDPOINT
    ADMIN_KEY_ID=$FAKEAWS_ROOT_KEY_ID
    ADMIN_SECRET=$FAKEAWS_ROOT_SECRET
    echo "fakeaws listens at $ENDPOINT"
fi
AWS_EXTRA=${KB_DEMO_AWS_EXTRA:+$KB_DEMO_AWS_EXTRA, }

say "2. keybrokerd with two tenants: billing (read-write, for uid $(id -u)) and search"
cat >"$TMP/keybroker.json" <<EOF
{
  "broker": {
    "socket": {"path": "$TMP/keybroker.sock", "mode": "0660"},
    "admin": {"uids": [$(id -u)]}
  },
  "aws": {${AWS_EXTRA}"region": "us-east-1", "endpoint_url": "$ENDPOINT", "s3_force_path_style": true},
  "tenants": [
    {"name": "billing", "bucket": "demo-billing-data", "access": "read-write",
     "clients": {"uids": [$(id -u)]}},
    {"name": "search", "bucket": "demo-search-data", "access": "read-only",
     "clients": {"uids": [4242]}}
  ]
}
EOF
sed 's/^/    /' "$TMP/keybroker.json"
echo "keybrokerd gets the endpoint's administrator key in its environment (on AWS: its instance role);"
echo "it starts without provisioning anything (--no-provision-at-start), so that step 3 shows it."
env AWS_ACCESS_KEY_ID=$ADMIN_KEY_ID AWS_SECRET_ACCESS_KEY=$ADMIN_SECRET \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
    "$KEYBROKERD" --config "$TMP/keybroker.json" --no-provision-at-start \
    2>"$TMP/keybrokerd.log" &
BROKER_PID=$!
for _ in $(seq 1 200); do [ -S "$TMP/keybroker.sock" ] && break; sleep 0.05; done
[ -S "$TMP/keybroker.sock" ] || { cat "$TMP/keybrokerd.log"; echo "no socket" >&2; exit 1; }
export KEYBROKER_SOCKET=$TMP/keybroker.sock
run "$KBCTL" status

say "3. kbctl provision: bucket, IAM user and policy, access key stored in Secrets Manager"
run "$KBCTL" provision
run "$KBCTL" status

say "4. what an application asks for: kbctl get billing (metadata only, never the key)"
run "$KBCTL" get billing
ARN=$("$KBCTL" --json get billing | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["arn"])')
echo "the application learns the ARN: $ARN"
echo "another tenant's ARN is refused, exactly as a tenant that does not exist:"
run "$KBCTL" get search || echo "(exit status $?: forbidden)"

say "5. awscli with credential_process = kbctl credential-process billing"
echo "kbctl asks keybrokerd for the ARN, then reads the secret from Secrets Manager with the"
echo "CALLER's own AWS identity: here the endpoint's administrator key, put in the environment of the"
echo "credential_process command (on AWS it would be the application's instance role)."
cat >"$TMP/aws-config" <<EOF
[profile billing-app]
region = us-east-1
credential_process = /usr/bin/env AWS_ENDPOINT_URL=$ENDPOINT AWS_ACCESS_KEY_ID=$ADMIN_KEY_ID AWS_SECRET_ACCESS_KEY=$ADMIN_SECRET AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null $KBCTL --socket $TMP/keybroker.sock credential-process billing
EOF
sed "s|$TMP|\$DEMO|g; s|$BUILD/proto/||; s|^|    |" "$TMP/aws-config"
export AWS_CONFIG_FILE=$TMP/aws-config AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PROFILE=billing-app
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE
aws() { "$AWS" --endpoint-url "$ENDPOINT" "$@"; }
echo "who is awscli now?"
run aws sts get-caller-identity --query Arn --output text
echo "hello from the billing tenant" >"$TMP/hello.txt"
run aws s3api put-object --bucket demo-billing-data --key hello.txt --body "$TMP/hello.txt" \
    --query ETag --output text
run aws s3api get-object --bucket demo-billing-data --key hello.txt "$TMP/back.txt" \
    --query ContentLength --output text
echo "read back: $(cat "$TMP/back.txt")"
echo "the other tenant's bucket is denied:"
if aws s3api put-object --bucket demo-search-data --key x --body "$TMP/hello.txt" \
    2>"$TMP/err"; then
    echo "unexpected: the write to another tenant's bucket succeeded" >&2
    exit 1
fi
sed -n 's/.*An error occurred (\([A-Za-z]*\)).*/denied as expected: \1/p' "$TMP/err" | head -1

say "6. keybrokerd's log: every authorization decision, every AWS step (JSON lines)"
"$PYTHON" - "$TMP/keybrokerd.log" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["event"] in ("authz", "tenant", "listening", "started"):
        keys = [k for k in ("op", "tenant", "uid", "result", "state", "path", "socket") if k in e]
        print("  %-10s %s" % (e["event"], " ".join("%s=%s" % (k, e[k]) for k in keys)))
PY
# The secret key never went through the socket or the log (DESIGN.md I2): check it.
SECRET=$(env -u AWS_PROFILE AWS_ACCESS_KEY_ID=$ADMIN_KEY_ID AWS_SECRET_ACCESS_KEY=$ADMIN_SECRET \
    AWS_CONFIG_FILE=/dev/null AWS_DEFAULT_REGION=us-east-1 "$AWS" --endpoint-url "$ENDPOINT" \
    secretsmanager get-secret-value --secret-id "$ARN" --query SecretString --output text |
    "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["SecretAccessKey"])')
if grep -qF "$SECRET" "$TMP/keybrokerd.log"; then
    echo "the secret key appears in keybrokerd's log" >&2
    exit 1
fi
echo "the tenant's secret key appears nowhere in keybrokerd's log"

say "7. stopping keybrokerd (SIGTERM) and fakeaws (when started), removing $TMP"
kill -TERM "$BROKER_PID"
if wait "$BROKER_PID"; then
    echo "keybrokerd exited cleanly"
else
    echo "keybrokerd exited with status $?" >&2
    exit 1
fi
BROKER_PID=
