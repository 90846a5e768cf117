#!/usr/bin/env bash
# demo.sh - what `./dev demo` runs after the build: the main job on the bundled local AWS.
#
# Today (before the broker exists) it starts fakeaws on a free loopback port and shows it
# answering a real AWS client (Debian's awscli): it provisions by hand what keybrokerd will
# provision — a bucket with secure settings, an IAM user with a least-privilege policy, an access
# key stored in Secrets Manager — and proves the key reaches its own bucket and nothing else.
# Everything runs in a temporary directory that is removed at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${KB_PYTHON:-/usr/bin/python3}
AWS=/usr/bin/aws
TMP=$(mktemp -d -t keybroker-demo.XXXXXX)
FAKEAWS_PID=

cleanup() {
    [ -n "$FAKEAWS_PID" ] && kill "$FAKEAWS_PID" 2>/dev/null && wait "$FAKEAWS_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

say() { printf '\n--- %s\n' "$*"; }

say "starting fakeaws (tests/fakeaws) on a free port of 127.0.0.1"
(cd "$ROOT/tests/fakeaws" && exec "$PYTHON" -m fakeaws --port 0 --port-file "$TMP/port") \
    2>"$TMP/fakeaws.log" &
FAKEAWS_PID=$!
for _ in $(seq 1 100); do [ -s "$TMP/port" ] && break; sleep 0.05; done
[ -s "$TMP/port" ] || { cat "$TMP/fakeaws.log"; echo "fakeaws did not start" >&2; exit 1; }
ENDPOINT="http://127.0.0.1:$(cat "$TMP/port")"
echo "fakeaws listens at $ENDPOINT"

# awscli talks to fakeaws with the fakeaws root key; no file of the user's ~/.aws is read.
export AWS_ACCESS_KEY_ID=AKIAFAKEROOT00000000
export AWS_SECRET_ACCESS_KEY=fakeawsRootSecretKey/0000000000000000000
export AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
aws() { "$AWS" --endpoint-url "$ENDPOINT" "$@"; }

say "who am I? (sts get-caller-identity)"
aws sts get-caller-identity --output text

say "bucket demo-tenant-bucket with Block Public Access and default encryption"
aws s3api create-bucket --bucket demo-tenant-bucket --output text
aws s3api put-public-access-block --bucket demo-tenant-bucket --public-access-block-configuration \
    BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
aws s3api put-bucket-encryption --bucket demo-tenant-bucket --server-side-encryption-configuration \
    '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}'
aws s3api create-bucket --bucket demo-other-bucket --output text

say "IAM user kb-demo-tenant with an inline policy for its bucket only"
aws iam create-user --user-name kb-demo-tenant --path /keybroker/ \
    --tags Key=keybroker:tenant,Value=demo-tenant Key=keybroker:managed,Value=true \
    --query User.Arn --output text
aws iam put-user-policy --user-name kb-demo-tenant --policy-name keybroker-s3 --policy-document '{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
     "Resource": "arn:aws:s3:::demo-tenant-bucket/*"},
    {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::demo-tenant-bucket"}
  ]}'

say "access key for the user, stored straight into Secrets Manager (the secret is not printed)"
aws iam create-access-key --user-name kb-demo-tenant --output json >"$TMP/key.json"
KEY_ID=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["AccessKey"]["AccessKeyId"])' "$TMP/key.json")
"$PYTHON" - "$TMP/key.json" "$TMP/secret.json" <<'PY'
import json, sys
k = json.load(open(sys.argv[1]))["AccessKey"]
json.dump({"Version": 1, "AccessKeyId": k["AccessKeyId"], "SecretAccessKey": k["SecretAccessKey"],
           "Bucket": "demo-tenant-bucket", "Region": "us-east-1"}, open(sys.argv[2], "w"))
PY
aws secretsmanager create-secret --name keybroker/demo-tenant \
    --secret-string "file://$TMP/secret.json" --query ARN --output text
echo "access key id: $KEY_ID"

say "with the tenant's key: put and get an object in its own bucket"
TENANT_KEY=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["AccessKey"]["SecretAccessKey"])' "$TMP/key.json")
rm -f "$TMP/key.json" "$TMP/secret.json"
echo "hello from the demo tenant" >"$TMP/hello.txt"
AWS_ACCESS_KEY_ID=$KEY_ID AWS_SECRET_ACCESS_KEY=$TENANT_KEY \
    aws s3api put-object --bucket demo-tenant-bucket --key hello.txt --body "$TMP/hello.txt" \
    --query ETag --output text
AWS_ACCESS_KEY_ID=$KEY_ID AWS_SECRET_ACCESS_KEY=$TENANT_KEY \
    aws s3api get-object --bucket demo-tenant-bucket --key hello.txt "$TMP/back.txt" >/dev/null
echo "read back: $(cat "$TMP/back.txt")"

say "with the tenant's key: another bucket is denied"
if AWS_ACCESS_KEY_ID=$KEY_ID AWS_SECRET_ACCESS_KEY=$TENANT_KEY \
    aws s3api put-object --bucket demo-other-bucket --key x --body "$TMP/hello.txt" 2>"$TMP/err"; then
    echo "unexpected: the write to another bucket succeeded" >&2
    exit 1
fi
sed -n 's/.*An error occurred (\([A-Za-z]*\)).*/denied as expected: \1/p' "$TMP/err" | head -1
unset TENANT_KEY

say "fakeaws's call log (GET /_fakeaws/state)"
curl -s "$ENDPOINT/_fakeaws/state" | "$PYTHON" -c '
import json, sys
for c in json.load(sys.stdin)["calls"]:
    op = c["operation"] or "?"
    print("%3d %-15s %-28s %s %s" % (c["seq"], c["service"], op, c["status"], c["error"] or ""))'

say "demo finished; stopping fakeaws and removing $TMP"
