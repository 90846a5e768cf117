/*
 * secretsmanager.h - the typed Secrets Manager calls keybroker makes (JSON 1.1 protocol), and the
 * secret value format of DESIGN.md section 5.
 *
 * Same contract as every typed call (see iam.h): the input is borrowed only during the call, the
 * callback runs exactly once, later, with exactly one of err and the result non-NULL, both
 * borrowed until it returns; a negative return (KB_EINVAL for a bad input) means it will not run.
 *
 * Secrets travel only as struct kb_secret. CreateSecret and PutSecretValue serialize the secret
 * string into a request body that is marked sensitive and wiped (with every json-c intermediate
 * that held it) once the client has copied it; GetSecretValue's response is marked sensitive and
 * its SecretString goes into a kb_secret that the callback may take. This module never logs.
 */
#ifndef KB_SECRETSMANAGER_H
#define KB_SECRETSMANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "aws/client.h"
#include "common/secret.h"
#include "aws/svc.h"

#define KB_SM_MAX_SECRET 65536 /* bytes of SecretString, AWS's limit */

/* ARN, name and (for calls that write a value) the version, as most calls answer. */
struct kb_sm_secret_ref {
    const char *arn;
    const char *name;
    const char *version_id;    /* NULL when the call did not create a version */
    const char *const *stages; /* PutSecretValue: the new version's stages */
    size_t stage_count;
    const char *request_id; /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_sm_ref_cb)(void *ctx, const struct kb_aws_error *err,
                             const struct kb_sm_secret_ref *ref);

struct kb_sm_create_secret_input {
    const char *name;
    const char *client_request_token; /* idempotency token (a UUID), NULL: none */
    const char *description;          /* NULL: none */
    const char *kms_key_id;           /* NULL: aws/secretsmanager */
    struct kb_secret *secret_string;  /* NULL: create without a version; borrowed */
    const struct kb_aws_tag *tags;    /* tagged at creation */
    size_t tag_count;
};
/* Creates the secret, tagged at creation, with a first version when secret_string is set.
 * ResourceExistsException when the name is taken (a same-token retry is not an error). */
int kb_sm_create_secret(struct kb_aws_client *c, const struct kb_sm_create_secret_input *in,
                        kb_sm_ref_cb cb, void *ctx);

struct kb_sm_put_secret_value_input {
    const char *secret_id;            /* name or ARN */
    const char *client_request_token; /* NULL: none */
    struct kb_secret *secret_string;  /* borrowed */
    const char *const *stages;        /* NULL/0: AWS's default (AWSCURRENT) */
    size_t stage_count;
};
/* Adds a version (idempotent per token). The result carries the version id and stages. */
int kb_sm_put_secret_value(struct kb_aws_client *c, const struct kb_sm_put_secret_value_input *in,
                           kb_sm_ref_cb cb, void *ctx);

struct kb_sm_update_secret_version_stage_input {
    const char *secret_id;
    const char *version_stage;
    const char *move_to_version_id;     /* NULL: only remove */
    const char *remove_from_version_id; /* NULL: only add */
};
/* Moves or removes a staging label. Moving AWSCURRENT makes the old version AWSPREVIOUS. */
int kb_sm_update_secret_version_stage(struct kb_aws_client *c,
                                      const struct kb_sm_update_secret_version_stage_input *in,
                                      kb_sm_ref_cb cb, void *ctx);

/* A version and its staging labels. */
struct kb_sm_version {
    const char *version_id;
    const char *const *stages;
    size_t stage_count;
    time_t created_date;       /* ListSecretVersionIds only, 0 otherwise */
    time_t last_accessed_date; /* ListSecretVersionIds only, 0 when never */
};

struct kb_sm_description {
    const char *arn;
    const char *name;
    const char *description; /* NULL when none */
    const char *kms_key_id;  /* NULL when the default key */
    const struct kb_aws_tag *tags;
    size_t tag_count;
    const struct kb_sm_version *versions; /* VersionIdsToStages, in the response's order */
    size_t version_count;
    time_t created_date;      /* 0 when absent */
    time_t last_changed_date; /* 0 when absent */
    time_t deleted_date;      /* 0 unless scheduled for deletion */
    const char *request_id;   /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_sm_description_cb)(void *ctx, const struct kb_aws_error *err,
                                     const struct kb_sm_description *desc);
struct kb_sm_secret_input {
    const char *secret_id;
};
/* Metadata, tags and labels, never a value. ResourceNotFoundException when absent. */
int kb_sm_describe_secret(struct kb_aws_client *c, const struct kb_sm_secret_input *in,
                          kb_sm_description_cb cb, void *ctx);

struct kb_sm_list_versions_input {
    const char *secret_id;
    bool include_deprecated; /* also versions without a label */
    unsigned max_results;    /* 0: AWS's default */
    const char *next_token;  /* NULL for the first page */
};
struct kb_sm_versions {
    const char *arn;
    const char *name;
    const struct kb_sm_version *versions;
    size_t version_count;
    const char *next_token; /* NULL on the last page */
    const char *request_id; /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_sm_versions_cb)(void *ctx, const struct kb_aws_error *err,
                                  const struct kb_sm_versions *versions);
/* One page of versions, with labels and dates. */
int kb_sm_list_secret_version_ids(struct kb_aws_client *c,
                                  const struct kb_sm_list_versions_input *in, kb_sm_versions_cb cb,
                                  void *ctx);

/* One ListSecrets filter: key is one of "description", "name", "tag-key", "tag-value",
 * "primary-region", "owning-service", "all"; 1..10 values of at most 512 characters from
 * [a-zA-Z0-9 :_@/+=.-!] (a leading '!' negates). Prefix matches, as AWS documents them. */
struct kb_sm_filter {
    const char *key;
    const char *const *values;
    size_t value_count;
};
struct kb_sm_list_secrets_input {
    const struct kb_sm_filter *filters; /* 0..10; every filter must match */
    size_t filter_count;
    unsigned max_results;          /* 1..100, 0: AWS's default */
    const char *next_token;        /* NULL for the first page */
    bool include_planned_deletion; /* also secrets scheduled for deletion (DeletedDate set) */
};
/* One SecretListEntry: metadata, tags and labels, never a value. Any member may be absent, as in
 * botocore's model: arn and name NULL, no tags, no versions, dates 0. */
struct kb_sm_list_entry {
    const char *arn;
    const char *name;
    const struct kb_aws_tag *tags;
    size_t tag_count;
    const struct kb_sm_version *versions; /* SecretVersionsToStages, in the response's order */
    size_t version_count;
    time_t created_date;
    time_t last_changed_date;
    time_t deleted_date; /* 0 unless scheduled for deletion */
};
struct kb_sm_secret_list {
    const struct kb_sm_list_entry *secrets; /* SecretList; none when absent */
    size_t count;
    const char *next_token; /* NULL on the last page */
    const char *request_id; /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_sm_secret_list_cb)(void *ctx, const struct kb_aws_error *err,
                                     const struct kb_sm_secret_list *list);
/* One page of the account's secrets that match every filter (secrets scheduled for deletion only
 * when asked). The entries are borrowed until the callback returns. */
int kb_sm_list_secrets(struct kb_aws_client *c, const struct kb_sm_list_secrets_input *in,
                       kb_sm_secret_list_cb cb, void *ctx);

struct kb_sm_delete_secret_input {
    const char *secret_id;
    unsigned recovery_window_days; /* 7..30, 0: AWS's default (30); not with force */
    bool force_delete_without_recovery;
};
struct kb_sm_deletion {
    const char *arn;
    const char *name;
    time_t deletion_date;
    const char *request_id; /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_sm_deletion_cb)(void *ctx, const struct kb_aws_error *err,
                                  const struct kb_sm_deletion *deletion);
/* Schedules deletion after a recovery window, or deletes at once when forced. */
int kb_sm_delete_secret(struct kb_aws_client *c, const struct kb_sm_delete_secret_input *in,
                        kb_sm_deletion_cb cb, void *ctx);

struct kb_sm_tag_resource_input {
    const char *secret_id;
    const struct kb_aws_tag *tags;
    size_t tag_count; /* 1..50 */
};
/* Adds or overwrites tags on a secret. */
int kb_sm_tag_resource(struct kb_aws_client *c, const struct kb_sm_tag_resource_input *in,
                       kb_aws_done_cb cb, void *ctx);

struct kb_sm_get_secret_value_input {
    const char *secret_id;
    const char *version_id;    /* NULL: by stage */
    const char *version_stage; /* NULL: AWSCURRENT (unless version_id is set) */
};
/*
 * A secret version's value. The secret is owned by the result: the callback takes it by copying
 * the pointer and setting the field to NULL (then frees it with kb_secret_destroy); whatever is
 * still there when the callback returns is destroyed. Never NULL when the callback gets a result.
 */
struct kb_sm_secret_value {
    const char *arn;
    const char *name;
    const char *version_id;
    const char *const *stages;
    size_t stage_count;
    time_t created_date;
    struct kb_secret *secret_string;
    const char *request_id; /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_sm_secret_value_cb)(void *ctx, const struct kb_aws_error *err,
                                      struct kb_sm_secret_value *value);
/* Reads a version's SecretString into guarded memory (see struct kb_sm_secret_value). */
int kb_sm_get_secret_value(struct kb_aws_client *c, const struct kb_sm_get_secret_value_input *in,
                           kb_sm_secret_value_cb cb, void *ctx);

/*
 * The secret value keybroker stores (DESIGN.md section 5), the credential_process output format
 * version 1 plus the bucket and region:
 *   {"Version":1,"AccessKeyId":"...","SecretAccessKey":"...","Bucket":"...","Region":"..."}
 * built in guarded memory: json-c's buffers that held the secret are wiped. All inputs borrowed.
 * Returns 0 and *out (caller frees with kb_secret_destroy), KB_EINVAL or KB_ENOMEM.
 */
int kb_sm_key_secret_new(const char *access_key_id, struct kb_secret *secret_access_key,
                         const char *bucket, const char *region, struct kb_secret **out);

/* The parts of such a value. Strings are copied into the caller's arrays; the secret is new. */
struct kb_sm_key_secret {
    char access_key_id[128];
    char bucket[256];
    char region[64];
    struct kb_secret *secret_access_key; /* caller frees with kb_secret_destroy */
};
/* Parses a value made by kb_sm_key_secret_new (Version must be 1). Returns 0, KB_EPARSE (the value
 * is not such a document; nothing of it is echoed), KB_ETOOBIG or KB_ENOMEM. */
int kb_sm_key_secret_parse(struct kb_secret *value, struct kb_sm_key_secret *out);

#endif
