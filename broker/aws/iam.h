/*
 * iam.h - the typed IAM calls keybroker makes (Query API, version 2010-05-08).
 *
 * Each call takes the client, an input (borrowed only during the call: everything needed is
 * copied into the request), a callback and its context. It returns 0 and the callback runs exactly
 * once, later, on the client's loop; or it returns a negative code (KB_EINVAL for a missing or
 * over-long input field, KB_ENOMEM, or what kb_aws_client_send returned) and the callback never
 * runs. The callback gets exactly one of err and the result non-NULL; both are borrowed until it
 * returns. A response without a required field fails with err->err == KB_EPARSE.
 *
 * CreateAccessKey is the only call that handles a secret: its response is marked sensitive (the
 * transport wipes it), the secret access key goes from the XML parser straight into a struct
 * kb_secret, and the callback may take it (see kb_iam_access_key_cb). This module never logs.
 */
#ifndef KB_IAM_H
#define KB_IAM_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "aws/client.h"
#include "common/secret.h"
#include "aws/svc.h"

/* An IAM user as GetUser and CreateUser describe it. */
struct kb_iam_user {
    const char *path;
    const char *user_name;
    const char *user_id;
    const char *arn;
    time_t create_date;
    const char *permissions_boundary_arn; /* NULL when the user has none */
    const struct kb_aws_tag *tags;
    size_t tag_count;
    const char *request_id; /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_iam_user_cb)(void *ctx, const struct kb_aws_error *err,
                               const struct kb_iam_user *user);

struct kb_iam_create_user_input {
    const char *user_name;
    const char *path;                 /* NULL: "/" (not sent) */
    const char *permissions_boundary; /* policy ARN, NULL for none */
    const struct kb_aws_tag *tags;    /* tagged at creation */
    size_t tag_count;
};
/* Creates the user, tagged at creation. EntityAlreadyExists when it exists (check its tags). */
int kb_iam_create_user(struct kb_aws_client *c, const struct kb_iam_create_user_input *in,
                       kb_iam_user_cb cb, void *ctx);

struct kb_iam_get_user_input {
    const char *user_name; /* NULL: the user whose credentials sign the request */
};
/* Describes a user (tags and boundary included). NoSuchEntity when there is none. */
int kb_iam_get_user(struct kb_aws_client *c, const struct kb_iam_get_user_input *in,
                    kb_iam_user_cb cb, void *ctx);

struct kb_iam_tag_user_input {
    const char *user_name;
    const struct kb_aws_tag *tags;
    size_t tag_count; /* 1..50 */
};
/* Adds or overwrites tags on a user. */
int kb_iam_tag_user(struct kb_aws_client *c, const struct kb_iam_tag_user_input *in,
                    kb_aws_done_cb cb, void *ctx);

struct kb_iam_untag_user_input {
    const char *user_name;
    const char *const *keys; /* the tag keys to remove, 1..50 */
    size_t key_count;
};
/* Removes tags from a user (keys it does not carry are no error). */
int kb_iam_untag_user(struct kb_aws_client *c, const struct kb_iam_untag_user_input *in,
                      kb_aws_done_cb cb, void *ctx);

struct kb_iam_tags {
    const struct kb_aws_tag *tags;
    size_t tag_count;
    bool is_truncated;
    const char *marker;     /* NULL unless is_truncated */
    const char *request_id; /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_iam_tags_cb)(void *ctx, const struct kb_aws_error *err,
                               const struct kb_iam_tags *tags);
struct kb_iam_list_user_tags_input {
    const char *user_name;
    const char *marker; /* NULL for the first page */
};
/* One page of a user's tags. */
int kb_iam_list_user_tags(struct kb_aws_client *c, const struct kb_iam_list_user_tags_input *in,
                          kb_iam_tags_cb cb, void *ctx);

struct kb_iam_put_user_policy_input {
    const char *user_name;
    const char *policy_name;
    const char *policy_document; /* JSON */
};
/* Creates or replaces an inline policy (URL-encoded into the form by this call). */
int kb_iam_put_user_policy(struct kb_aws_client *c, const struct kb_iam_put_user_policy_input *in,
                           kb_aws_done_cb cb, void *ctx);

struct kb_iam_user_policy_input {
    const char *user_name;
    const char *policy_name;
};
struct kb_iam_user_policy {
    const char *user_name;
    const char *policy_name;
    const char *policy_document; /* URL-decoded JSON, as it was put */
    const char *request_id;      /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_iam_user_policy_cb)(void *ctx, const struct kb_aws_error *err,
                                      const struct kb_iam_user_policy *policy);
/* Reads an inline policy back, URL-decoded. NoSuchEntity when absent. */
int kb_iam_get_user_policy(struct kb_aws_client *c, const struct kb_iam_user_policy_input *in,
                           kb_iam_user_policy_cb cb, void *ctx);
/* Deletes an inline policy. NoSuchEntity when absent. */
int kb_iam_delete_user_policy(struct kb_aws_client *c, const struct kb_iam_user_policy_input *in,
                              kb_aws_done_cb cb, void *ctx);

struct kb_iam_user_input {
    const char *user_name;
};
/* Deletes a user; DeleteConflict while keys or policies remain. */
int kb_iam_delete_user(struct kb_aws_client *c, const struct kb_iam_user_input *in,
                       kb_aws_done_cb cb, void *ctx);

enum kb_iam_key_status {
    KB_IAM_KEY_ACTIVE,
    KB_IAM_KEY_INACTIVE,
    KB_IAM_KEY_EXPIRED, /* reported for keys of some account types */
};

/*
 * A new access key. The secret is owned by the result: the callback takes it by copying the
 * pointer and setting the field to NULL (it then frees it with kb_secret_destroy); whatever is
 * still there when the callback returns is destroyed. Never NULL when the callback gets the result.
 */
struct kb_iam_access_key {
    const char *user_name;
    const char *access_key_id;
    enum kb_iam_key_status status;
    time_t create_date;
    struct kb_secret *secret_access_key;
    const char *request_id; /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_iam_access_key_cb)(void *ctx, const struct kb_aws_error *err,
                                     struct kb_iam_access_key *key);
/* Creates an access key (LimitExceeded at two per user). The secret's ownership: see above. */
int kb_iam_create_access_key(struct kb_aws_client *c, const struct kb_iam_user_input *in,
                             kb_iam_access_key_cb cb, void *ctx);

struct kb_iam_access_key_meta {
    const char *user_name;
    const char *access_key_id;
    enum kb_iam_key_status status;
    time_t create_date;
};
struct kb_iam_access_keys {
    const struct kb_iam_access_key_meta *keys;
    size_t count;
    bool is_truncated;
    const char *marker;     /* NULL unless is_truncated */
    const char *request_id; /* of the response; "" when AWS sent none (set by svc.c) */
};
typedef void (*kb_iam_access_keys_cb)(void *ctx, const struct kb_aws_error *err,
                                      const struct kb_iam_access_keys *keys);
struct kb_iam_list_access_keys_input {
    const char *user_name;
    const char *marker; /* NULL for the first page (a user has at most 2 keys) */
};
/* One page of a user's access keys, without secrets. */
int kb_iam_list_access_keys(struct kb_aws_client *c, const struct kb_iam_list_access_keys_input *in,
                            kb_iam_access_keys_cb cb, void *ctx);

struct kb_iam_update_access_key_input {
    const char *user_name;
    const char *access_key_id;
    enum kb_iam_key_status status; /* ACTIVE or INACTIVE */
};
/* Activates or deactivates a key. */
int kb_iam_update_access_key(struct kb_aws_client *c,
                             const struct kb_iam_update_access_key_input *in, kb_aws_done_cb cb,
                             void *ctx);

struct kb_iam_access_key_input {
    const char *user_name;
    const char *access_key_id;
};
/* Deletes a key. NoSuchEntity when it is gone already. */
int kb_iam_delete_access_key(struct kb_aws_client *c, const struct kb_iam_access_key_input *in,
                             kb_aws_done_cb cb, void *ctx);

/* "Active", "Inactive", "Expired". Static string. */
const char *kb_iam_key_status_name(enum kb_iam_key_status status);

#endif
