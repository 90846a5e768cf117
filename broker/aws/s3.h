/*
 * s3.h - the typed S3 bucket-configuration calls keybroker makes (REST-XML).
 *
 * The bucket travels in kb_aws_request.bucket, so endpoints.c picks virtual-hosted or path-style
 * addressing. Request bodies are XML in the S3 namespace, and every operation whose model marks a
 * request checksum as required (PutPublicAccessBlock, PutBucketEncryption,
 * PutBucketOwnershipControls, PutBucketPolicy, PutBucketTagging) sends Content-MD5.
 *
 * Same contract as every typed call (see iam.h): the input is borrowed only during the call, the
 * callback runs exactly once, later, with exactly one of err and the result non-NULL, both
 * borrowed until it returns; a negative return (KB_EINVAL for a bad input) means it will not run.
 * This module never logs.
 */
#ifndef KB_S3_H
#define KB_S3_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/client.h"
#include "aws/svc.h"

/* Calls that only name the bucket. */
struct kb_s3_bucket_input {
    const char *bucket;
};

struct kb_s3_create_bucket_input {
    const char *bucket;
    const char *region;           /* NULL: the client's; us-east-1 sends no LocationConstraint */
    const char *object_ownership; /* x-amz-object-ownership ("BucketOwnerEnforced"), NULL: none */
    /* Tags at creation (CreateBucketConfiguration/Tags, 0..50; S3 then also needs
     * s3:TagResource), so the bucket is never visible untagged. NULL/0: none. */
    const struct kb_aws_tag *tags;
    size_t tag_count;
};
/* Creates the bucket. BucketAlreadyOwnedByYou (ours) or BucketAlreadyExists (not ours). A body
 * CreateBucketConfiguration is sent when there is a LocationConstraint or tags. */
int kb_s3_create_bucket(struct kb_aws_client *c, const struct kb_s3_create_bucket_input *in,
                        kb_aws_done_cb cb, void *ctx);

struct kb_s3_public_access_block {
    bool block_public_acls;
    bool ignore_public_acls;
    bool block_public_policy;
    bool restrict_public_buckets;
    const char *request_id; /* in a result: of the response ("" when AWS sent none; set by
                               svc.c); ignored in the input of kb_s3_put_public_access_block */
};
struct kb_s3_put_public_access_block_input {
    const char *bucket;
    struct kb_s3_public_access_block config;
};
/* Sets the four Block Public Access flags (Content-MD5 sent). */
int kb_s3_put_public_access_block(struct kb_aws_client *c,
                                  const struct kb_s3_put_public_access_block_input *in,
                                  kb_aws_done_cb cb, void *ctx);
typedef void (*kb_s3_public_access_block_cb)(void *ctx, const struct kb_aws_error *err,
                                             const struct kb_s3_public_access_block *config);
/* Reads them. NoSuchPublicAccessBlockConfiguration when never set. */
int kb_s3_get_public_access_block(struct kb_aws_client *c, const struct kb_s3_bucket_input *in,
                                  kb_s3_public_access_block_cb cb, void *ctx);

enum kb_s3_sse {
    KB_S3_SSE_S3,  /* "AES256" */
    KB_S3_SSE_KMS, /* "aws:kms", with kms_key_id or the AWS managed key */
};
struct kb_s3_put_bucket_encryption_input {
    const char *bucket;
    enum kb_s3_sse algorithm;
    const char *kms_key_id;  /* KB_S3_SSE_KMS only; NULL: aws/s3 */
    bool bucket_key_enabled; /* KB_S3_SSE_KMS only */
};
/* Sets default encryption (Content-MD5 sent). */
int kb_s3_put_bucket_encryption(struct kb_aws_client *c,
                                const struct kb_s3_put_bucket_encryption_input *in,
                                kb_aws_done_cb cb, void *ctx);

/* Default encryption as GetBucketEncryption reports it (the first rule). */
struct kb_s3_bucket_encryption {
    const char *sse_algorithm; /* "AES256", "aws:kms", "aws:kms:dsse" */
    const char *kms_key_id;    /* KMSMasterKeyID, NULL when absent */
    bool bucket_key_enabled;
    const char *request_id; /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_s3_bucket_encryption_cb)(void *ctx, const struct kb_aws_error *err,
                                           const struct kb_s3_bucket_encryption *enc);
/* Reads default encryption. ServerSideEncryptionConfigurationNotFoundError when there is none
 * (only on buckets older than 2023). */
int kb_s3_get_bucket_encryption(struct kb_aws_client *c, const struct kb_s3_bucket_input *in,
                                kb_s3_bucket_encryption_cb cb, void *ctx);

struct kb_s3_put_bucket_ownership_controls_input {
    const char *bucket;
    const char *object_ownership; /* NULL: "BucketOwnerEnforced" */
};
/* Sets object ownership (Content-MD5 sent). */
int kb_s3_put_bucket_ownership_controls(struct kb_aws_client *c,
                                        const struct kb_s3_put_bucket_ownership_controls_input *in,
                                        kb_aws_done_cb cb, void *ctx);

struct kb_s3_ownership_controls {
    const char
        *object_ownership;  /* "BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter" */
    const char *request_id; /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_s3_ownership_controls_cb)(void *ctx, const struct kb_aws_error *err,
                                            const struct kb_s3_ownership_controls *oc);
/* Reads object ownership. OwnershipControlsNotFoundError when the controls were deleted. */
int kb_s3_get_bucket_ownership_controls(struct kb_aws_client *c,
                                        const struct kb_s3_bucket_input *in,
                                        kb_s3_ownership_controls_cb cb, void *ctx);

struct kb_s3_put_bucket_policy_input {
    const char *bucket;
    const char *policy; /* JSON document */
};
/* Replaces the bucket policy (Content-MD5 sent). MalformedPolicy for a bad document. */
int kb_s3_put_bucket_policy(struct kb_aws_client *c, const struct kb_s3_put_bucket_policy_input *in,
                            kb_aws_done_cb cb, void *ctx);
struct kb_s3_bucket_policy {
    const char *policy;     /* the JSON document as S3 returned it */
    const char *request_id; /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_s3_bucket_policy_cb)(void *ctx, const struct kb_aws_error *err,
                                       const struct kb_s3_bucket_policy *policy);
/* Reads the bucket policy. NoSuchBucketPolicy when there is none. */
int kb_s3_get_bucket_policy(struct kb_aws_client *c, const struct kb_s3_bucket_input *in,
                            kb_s3_bucket_policy_cb cb, void *ctx);

struct kb_s3_put_bucket_tagging_input {
    const char *bucket;
    const struct kb_aws_tag *tags; /* replaces the whole tag set */
    size_t tag_count;              /* 1..50 */
};
/* Replaces the tag set (Content-MD5 sent). */
int kb_s3_put_bucket_tagging(struct kb_aws_client *c,
                             const struct kb_s3_put_bucket_tagging_input *in, kb_aws_done_cb cb,
                             void *ctx);
struct kb_s3_tags {
    const struct kb_aws_tag *tags;
    size_t tag_count;
    const char *request_id; /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_s3_tags_cb)(void *ctx, const struct kb_aws_error *err,
                              const struct kb_s3_tags *tags);
/* A bucket without tags (S3's NoSuchTagSet error) yields an empty result, not an error. */
int kb_s3_get_bucket_tagging(struct kb_aws_client *c, const struct kb_s3_bucket_input *in,
                             kb_s3_tags_cb cb, void *ctx);

struct kb_s3_head_bucket_input {
    const char *bucket;
    /* Sign with these instead of the client's chain (the probe of a new key); NULL: the client's.
     * Borrowed until the callback runs. */
    const struct kb_credentials *credentials;
    unsigned max_attempts; /* 0: the client's */
};
struct kb_s3_bucket_head {
    bool exists;            /* false when S3 answered 404 (no error is reported then) */
    const char *region;     /* x-amz-bucket-region, NULL when absent */
    const char *request_id; /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_s3_bucket_head_cb)(void *ctx, const struct kb_aws_error *err,
                                     const struct kb_s3_bucket_head *head);
/* 403 (the bucket exists but this identity may not see it) stays an error. */
int kb_s3_head_bucket(struct kb_aws_client *c, const struct kb_s3_head_bucket_input *in,
                      kb_s3_bucket_head_cb cb, void *ctx);

struct kb_s3_list_objects_input {
    const char *bucket;
    const char *prefix; /* NULL or "": the whole bucket */
    unsigned max_keys;  /* 0..1000, always sent (0: the probe, which only wants the answer) */
    /* Sign with these instead of the client's chain (the probe of a new key); NULL: the client's.
     * Borrowed until the callback runs. */
    const struct kb_credentials *credentials;
    unsigned max_attempts; /* 0: the client's */
};
struct kb_s3_object_list {
    unsigned long key_count; /* KeyCount, 0 when absent */
    bool is_truncated;
    const char *request_id; /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_s3_object_list_cb)(void *ctx, const struct kb_aws_error *err,
                                     const struct kb_s3_object_list *list);
/* ListObjectsV2 (GET ?list-type=2&max-keys=N&prefix=P): only the counts are parsed, never the
 * keys. The readiness probe uses it because it is the one read every tenant policy grants within
 * the tenant's prefix (HeadBucket needs s3:ListBucket without an s3:prefix condition). */
int kb_s3_list_objects_v2(struct kb_aws_client *c, const struct kb_s3_list_objects_input *in,
                          kb_s3_object_list_cb cb, void *ctx);

/* Deletes an empty bucket. BucketNotEmpty otherwise. */
int kb_s3_delete_bucket(struct kb_aws_client *c, const struct kb_s3_bucket_input *in,
                        kb_aws_done_cb cb, void *ctx);

#endif
