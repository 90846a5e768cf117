#!/bin/sh
# aws_cli_provision.sh TENANT BUCKET - the baseline of run_provision_bench.sh: provisions one
# tenant the way an operator's shell script would, one /usr/bin/aws process per AWS call, making
# the calls keybrokerd makes on a fresh tenant (bench/README.md lists them), against
# $AWS_ENDPOINT_URL (loopback only) with the credentials in the environment.
#
# One difference, forced by the tool: Debian's awscli 2.9 predates Tags in
# CreateBucketConfiguration, so the bucket is tagged with a separate PutBucketTagging (one call
# more than keybrokerd). And one on purpose, because it is what keybroker exists to avoid: the
# new secret access key passes through shell variables and a process argument list here.
set -eu
tenant=$1
bucket=$2
prefix=data/
user=kb-$tenant
secret=keybroker/$tenant
# Debian's awscli 2.9 ignores AWS_ENDPOINT_URL (2.13+ reads it): pass it on every call, and
# refuse anything but loopback, so no call can ever leave this machine.
endpoint=${AWS_ENDPOINT_URL:?set AWS_ENDPOINT_URL to the fakeaws endpoint}
case $endpoint in
http://127.*) ;;
*) echo "aws_cli_provision: $endpoint is not a loopback endpoint" >&2; exit 2 ;;
esac
aws() { /usr/bin/aws "$@" --endpoint-url "$endpoint"; }
tags="Key=keybroker:tenant,Value=$tenant Key=keybroker:managed,Value=true"

# bucket chain
aws s3api head-bucket --bucket "$bucket" >/dev/null 2>&1 || true
aws s3api create-bucket --bucket "$bucket" >/dev/null
aws s3api put-bucket-tagging --bucket "$bucket" --tagging \
    "TagSet=[{Key=keybroker:tenant,Value=$tenant},{Key=keybroker:managed,Value=true}]"
aws s3api put-public-access-block --bucket "$bucket" --public-access-block-configuration \
    BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
aws s3api put-bucket-encryption --bucket "$bucket" --server-side-encryption-configuration \
    '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}'
aws s3api put-bucket-ownership-controls --bucket "$bucket" --ownership-controls \
    'Rules=[{ObjectOwnership=BucketOwnerEnforced}]'
aws s3api put-bucket-policy --bucket "$bucket" --policy "{\"Version\":\"2012-10-17\",\
\"Statement\":[{\"Sid\":\"KeybrokerDenyInsecureTransport\",\"Effect\":\"Deny\",\"Principal\":\"*\",\
\"Action\":[\"s3:*\"],\"Resource\":[\"arn:aws:s3:::$bucket\",\"arn:aws:s3:::$bucket/*\"],\
\"Condition\":{\"Bool\":{\"aws:SecureTransport\":[\"false\"]}}}]}"

# user chain
aws iam get-user --user-name "$user" >/dev/null 2>&1 || true
# shellcheck disable=SC2086
aws iam create-user --user-name "$user" --path /keybroker/ --tags $tags >/dev/null
aws iam put-user-policy --user-name "$user" --policy-name keybroker-s3 --policy-document \
"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"KeybrokerObjects\",\"Effect\":\"Allow\",\
\"Action\":[\"s3:GetObject\",\"s3:GetObjectVersion\",\"s3:GetObjectAttributes\",\"s3:PutObject\",\
\"s3:DeleteObject\",\"s3:AbortMultipartUpload\",\"s3:ListMultipartUploadParts\"],\
\"Resource\":[\"arn:aws:s3:::$bucket/$prefix*\"]},{\"Sid\":\"KeybrokerList\",\"Effect\":\"Allow\",\
\"Action\":[\"s3:ListBucket\"],\"Resource\":[\"arn:aws:s3:::$bucket\"],\"Condition\":\
{\"StringLike\":{\"s3:prefix\":[\"$prefix\",\"$prefix*\"]}}},{\"Sid\":\"KeybrokerBucket\",\
\"Effect\":\"Allow\",\"Action\":[\"s3:GetBucketLocation\",\"s3:ListBucketMultipartUploads\"],\
\"Resource\":[\"arn:aws:s3:::$bucket\"]}]}"

# key step
aws secretsmanager describe-secret --secret-id "$secret" >/dev/null 2>&1 || true
key=$(aws iam create-access-key --user-name "$user" --query \
    'AccessKey.[AccessKeyId,SecretAccessKey]' --output text)
key_id=${key%%	*}
key_secret=${key#*	}
token=$(/usr/bin/python3 -c 'import sys, uuid; print(uuid.uuid5(uuid.UUID(
    "8d3c1f6e-2b7a-4e95-a0d4-5c6f1e2b9a73"), sys.argv[1] + "\n" + sys.argv[2]))' "$tenant" "$key_id")
# shellcheck disable=SC2086
aws secretsmanager create-secret --name "$secret" --client-request-token "$token" \
    --description "keybroker: S3 access key of tenant $tenant" --tags $tags --secret-string \
    "{\"Version\":1,\"AccessKeyId\":\"$key_id\",\"SecretAccessKey\":\"$key_secret\",\
\"Bucket\":\"$bucket\",\"Region\":\"${AWS_REGION:-us-east-1}\"}" >/dev/null

# readiness probe with the new key (fakeaws runs without a propagation delay here)
AWS_ACCESS_KEY_ID=$key_id AWS_SECRET_ACCESS_KEY=$key_secret \
    aws sts get-caller-identity >/dev/null
AWS_ACCESS_KEY_ID=$key_id AWS_SECRET_ACCESS_KEY=$key_secret \
    aws s3api list-objects-v2 --bucket "$bucket" --prefix "$prefix" --max-keys 0 >/dev/null
