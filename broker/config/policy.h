/*
 * policy.h - the IAM and bucket policies keybroker writes, and how it compares them.
 *
 * A pure, deterministic builder: the same tenant and partition always give the same bytes (fixed
 * statement order, fixed member order {"Sid","Effect","Principal","Action","Resource",
 * "Condition"}, compact JSON without escaped slashes), so a reconcile can compare and a test can
 * pin the output. Statement ids are stable: KeybrokerObjects, KeybrokerList, KeybrokerBucket,
 * KeybrokerAdmin, KeybrokerCustom and KeybrokerDenyInsecureTransport.
 *
 * Access levels (DESIGN.md section 7), on arn:<partition>:s3:::BUCKET ("the bucket") and
 * arn:<partition>:s3:::BUCKET/PREFIX* ("the objects"):
 *   read-only   KeybrokerObjects: s3:GetObject, s3:GetObjectVersion, s3:GetObjectAttributes on
 *               the objects; KeybrokerList: s3:ListBucket on the bucket, with Condition
 *               StringLike s3:prefix [PREFIX, PREFIX*] when the prefix is not empty;
 *               KeybrokerBucket: s3:GetBucketLocation on the bucket.
 *   read-write  read-only + s3:PutObject, s3:DeleteObject, s3:AbortMultipartUpload,
 *               s3:ListMultipartUploadParts on the objects + s3:ListBucketMultipartUploads on the
 *               bucket (this one cannot be confined to the prefix: it lists the keys of every
 *               in-progress upload in the bucket).
 *   admin       KeybrokerAdmin: s3:* on the bucket and on every object, BUCKET/"*" (opt-in; no
 * prefix allowed). custom      KeybrokerCustom: the listed actions on the bucket and the objects.
 *
 * This module must never do I/O, log, or accept a bucket or prefix that could widen a grant
 * ('*', '?' and '$' are wildcards and variables in IAM policies).
 */
#ifndef KB_POLICY_H
#define KB_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

/* IAM's limit on the inline policies of one user, in characters, whitespace not counted. */
#define KB_POLICY_MAX_USER_INLINE 2048
/* kb_policy_equal refuses documents larger than this (IAM's largest policy is 10240). */
#define KB_POLICY_MAX_COMPARE (128 * 1024)

/* The partition of a region: "aws-cn" for cn-*, "aws-us-gov" for us-gov-*, "aws-iso" for
 * us-iso-*, "aws-iso-b" for us-isob-*, "aws-iso-e" for eu-isoe-*, "aws-iso-f" for us-isof-*,
 * "aws-eusc" for eusc-*, "aws" otherwise (also for NULL or ""). Static string. */
const char *kb_policy_partition(const char *region);

/*
 * The least-privilege inline policy of tenant t in partition (e.g. "aws"). On success returns 0
 * and *json_out (caller frees with free()). Returns KB_EINVAL for a missing or unusable input
 * (no bucket, a wildcard in the bucket or prefix, a custom access without actions, a malformed
 * partition), KB_ETOOBIG when the policy exceeds KB_POLICY_MAX_USER_INLINE characters, KB_ENOMEM.
 * On error *json_out is NULL and msg (may be NULL; msglen bytes) receives a sentence saying why.
 */
int kb_policy_tenant(const struct kb_tenant *t, const char *partition, char **json_out, char *msg,
                     size_t msglen);

/*
 * The bucket policy: deny every s3:* on the bucket and its objects (BUCKET/"*") to everyone
 * ("Principal": "*") when aws:SecureTransport is false. Returns 0 and *json_out (caller frees with
 * free()), KB_EINVAL for an unusable bucket or partition, KB_ENOMEM.
 */
int kb_policy_bucket(const char *bucket, const char *partition, char **json_out);

/* The size of a policy document as IAM counts it: characters (UTF-8 code points) other than
 * whitespace outside strings. */
size_t kb_policy_size(const char *json);

/*
 * Whether two policy documents grant the same thing. Both are parsed with json-c; object members
 * compare in any order; a scalar equals a one-element list holding it; lists (Statement, Action,
 * Resource, condition values, ...) compare as sets; action names compare ignoring case (IAM
 * does); other scalars compare by their text ("true" equals true). Returns 0 and sets *equal, or
 * KB_EPARSE when either is not JSON, KB_ETOOBIG past KB_POLICY_MAX_COMPARE, KB_EINVAL for NULLs,
 * KB_ENOMEM.
 */
int kb_policy_equal(const char *a, const char *b, bool *equal);

#endif
