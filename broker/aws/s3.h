/*
 * s3.h - the typed S3 calls keybroker makes (REST-XML): bucket configuration (s3.c) and objects
 * (s3_object.c: PutObject and GetObject with Object Lock, ListObjectVersions).
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
#include <time.h>

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

/*
 * -- objects (s3_object.c) --------------------------------------------------------------------
 *
 * Object keys are 1..1024 bytes and go into the path URI-encoded (kb_wire_path_add: '/' kept),
 * so the key is exactly what S3 stores. Refused with KB_EINVAL before anything is sent: an empty
 * or longer key, a control character (0x00..0x1f, 0x7f), and a "." or ".." segment (libcurl
 * would resolve it away, so another key would be written). A URL longer than the client's limit
 * (1024 bytes with the endpoint) is KB_ETOOBIG from kb_aws_client_send.
 */

/* Object Lock retention modes (x-amz-object-lock-mode). */
enum kb_s3_lock_mode {
    KB_S3_LOCK_NONE,       /* no retention of its own (a bucket default may still apply) */
    KB_S3_LOCK_GOVERNANCE, /* "GOVERNANCE": may be lifted with s3:BypassGovernanceRetention */
    KB_S3_LOCK_COMPLIANCE, /* "COMPLIANCE": no one can shorten it or delete the version */
};

struct kb_s3_put_object_input {
    const char *bucket;
    const char *key;
    const void *body;         /* body_len bytes (NULL when 0), borrowed for the call: copied */
    size_t body_len;          /* at most KB_S3_MAX_PUT_BODY */
    const char *content_type; /* NULL: none (S3 then stores binary/octet-stream) */
    enum kb_s3_lock_mode lock_mode;
    time_t retain_until; /* lock_mode != NONE: the retention's end (> 0; S3 refuses a past
                            date with InvalidArgument); ignored otherwise */
};
#define KB_S3_MAX_PUT_BODY (16u << 20) /* one PutObject's body, this client's limit (16 MiB) */
struct kb_s3_put_object_result {
    const char *etag;       /* ETag as sent, quotes included; NULL when absent */
    const char *version_id; /* x-amz-version-id; NULL when the bucket is not versioned */
    const char *request_id; /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_s3_put_object_cb)(void *ctx, const struct kb_aws_error *err,
                                    const struct kb_s3_put_object_result *res);
/* PutObject: one new object version. Content-MD5 is always sent (S3 requires it, or a checksum,
 * with lock parameters or a bucket default retention); with a lock mode, also
 * x-amz-object-lock-mode and x-amz-object-lock-retain-until-date (ISO 8601, UTC). On a bucket
 * without Object Lock a lock mode is InvalidRequest. */
int kb_s3_put_object(struct kb_aws_client *c, const struct kb_s3_put_object_input *in,
                     kb_s3_put_object_cb cb, void *ctx);

struct kb_s3_get_object_input {
    const char *bucket;
    const char *key;
    const char *version_id; /* NULL: the current version */
    size_t max_body;        /* 1..KB_S3_MAX_PUT_BODY: a larger object is KB_ETOOBIG */
};
/*
 * An object version as GetObject answers it. The body is owned by the result: the callback takes
 * it by copying the pointer and setting the field to NULL (then frees it with free()); whatever is
 * still there when the callback returns is freed. Never NULL in a result (a 0-byte object is a
 * 1-byte allocation holding the NUL); body[body_len] is always a NUL, for convenience.
 */
struct kb_s3_object {
    unsigned char *body;
    size_t body_len;
    const char *etag;               /* NULL when absent */
    const char *version_id;         /* x-amz-version-id; NULL when the bucket is not versioned */
    enum kb_s3_lock_mode lock_mode; /* x-amz-object-lock-mode, NONE when absent (or hidden:
                                       S3 shows it only to callers with s3:GetObjectRetention) */
    time_t retain_until;            /* x-amz-object-lock-retain-until-date, 0 when absent */
    bool legal_hold;                /* x-amz-object-lock-legal-hold is "ON" */
    const char *request_id;         /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_s3_object_cb)(void *ctx, const struct kb_aws_error *err,
                                struct kb_s3_object *obj);
/* GetObject of the current version or of version_id. NoSuchKey (also when the current version is
 * a delete marker), NoSuchVersion, or AccessDenied for a missing key without s3:ListBucket. A body
 * over max_body is an error with err KB_ETOOBIG (the response is read whole before that is known:
 * the HTTP layer bounds it). A lock mode other than GOVERNANCE/COMPLIANCE or a retain-until date
 * that is not one is KB_EPARSE. */
int kb_s3_get_object(struct kb_aws_client *c, const struct kb_s3_get_object_input *in,
                     kb_s3_object_cb cb, void *ctx);

struct kb_s3_list_object_versions_input {
    const char *bucket;
    const char *prefix;            /* NULL or "": every key */
    const char *key_marker;        /* NULL or "": from the start; else a page's next_key_marker */
    const char *version_id_marker; /* NULL or "": none; only with key_marker */
    unsigned max_keys;             /* 1..1000 versions and delete markers together; 0: 1000 */
};
struct kb_s3_object_version {
    const char *key;        /* decoded */
    const char *version_id; /* "null" for a version written while versioning was off */
    bool is_latest;
    unsigned long long size;
    const char *etag;     /* NULL when absent */
    time_t last_modified; /* 0 when absent */
};
struct kb_s3_delete_marker {
    const char *key; /* decoded */
    const char *version_id;
    bool is_latest;
    time_t last_modified; /* 0 when absent */
};
/* One page. Every string and array is borrowed until the callback returns. */
struct kb_s3_version_list {
    const struct kb_s3_object_version *versions; /* in the order S3 listed them */
    size_t version_count;
    const struct kb_s3_delete_marker *delete_markers;
    size_t delete_marker_count;
    bool is_truncated;
    /* When is_truncated: where the next page starts (the next call's key_marker and
     * version_id_marker; a truncated page without NextKeyMarker is KB_EPARSE). NULL when
     * absent. */
    const char *next_key_marker; /* decoded */
    const char *next_version_id_marker;
    const char *request_id; /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_s3_version_list_cb)(void *ctx, const struct kb_aws_error *err,
                                      const struct kb_s3_version_list *list);
/*
 * ListObjectVersions (GET ?versions): one page, keys in UTF-8 byte order and each key's versions
 * newest first, versions and delete markers in separate arrays. The request asks for
 * encoding-type=url, so that keys holding characters XML 1.0 cannot carry still list; when the
 * response says <EncodingType>url</EncodingType> (any case; botocore's rule) Key and
 * NextKeyMarker are URL-decoded ('+' is a space), otherwise taken as they are. KB_EPARSE for a
 * page that is not a ListVersionsResult, an entry without Key or VersionId, a Size that is not a
 * number, more than 1000 entries, or a key that does not decode.
 */
int kb_s3_list_object_versions(struct kb_aws_client *c,
                               const struct kb_s3_list_object_versions_input *in,
                               kb_s3_version_list_cb cb, void *ctx);

#endif
