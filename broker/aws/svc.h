/*
 * svc.h - what the typed AWS calls (iam.h, s3.h, secretsmanager.h, sts.h) share: tags, the
 * callback of calls without a result, the per-call result arena, and the plumbing that turns one
 * kb_aws_client_send() into one typed callback.
 *
 * A typed call builds its request, then kb_svc_send() starts it. When the response arrives, the
 * operation's parser turns a 2xx body into a result whose strings and arrays live in a per-call
 * arena; the typed callback gets either that result or a struct kb_aws_error (exactly one is
 * non-NULL, both borrowed until it returns); then the arena is freed and any secret the callback
 * did not take is destroyed. A body that does not parse, or lacks a required field, becomes a
 * kb_aws_error with err KB_EPARSE and a message naming the field.
 *
 * This module never logs and never copies a response body or a secret.
 */
#ifndef KB_SVC_H
#define KB_SVC_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/awserr.h"
#include "aws/client.h"

/* A resource tag. In inputs both strings are borrowed for the call; in results they point into
 * the call's arena (borrowed until the callback returns). */
struct kb_aws_tag {
    const char *key;
    const char *value;
};

/* The result of a call that returns nothing but success. Borrowed until the callback returns. */
struct kb_aws_done {
    const char *operation;  /* "DeleteUser" */
    long status;            /* HTTP status (200, 204) */
    const char *request_id; /* "" when AWS sent none */
};

/* Completion of a call without a result: exactly one of err and ok is non-NULL. */
typedef void (*kb_aws_done_cb)(void *ctx, const struct kb_aws_error *err,
                               const struct kb_aws_done *ok);

/* -- the result arena ------------------------------------------------------------------------ */

/* Every allocation of one call's result; freed at once after the callback. */
struct kb_svc_arena {
    void *blocks; /* list of malloc'd blocks */
};

/* Zeroed, max_align_t-aligned memory for n bytes (n may be 0), or NULL when out of memory. Owned by
 * the arena. */
void *kb_svc_alloc(struct kb_svc_arena *a, size_t n);

/* A NUL-terminated copy of s[0..len) in the arena, or NULL when out of memory. */
char *kb_svc_strndup(struct kb_svc_arena *a, const char *s, size_t len);

/* Frees every allocation of a (a itself is the caller's). */
void kb_svc_arena_free(struct kb_svc_arena *a);

/* -- parsing --------------------------------------------------------------------------------- */

/* What a parser works with: the arena for the result and room for the reason it failed. */
struct kb_svc_parse {
    struct kb_svc_arena *arena;
    const char *operation;
    char msg[256];
};

/* Records why the parse failed ("<operation>: " + the formatted text) unless a reason is already
 * recorded, and returns err. The arguments must not be secrets. */
int kb_svc_fail(struct kb_svc_parse *p, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* -- the plumbing ---------------------------------------------------------------------------- */

/* Any typed callback, stored generically and cast back to its own type by the op's deliver. */
typedef void (*kb_svc_fn)(void);

/* How one operation turns a response into its typed callback. Static, one per operation. */
struct kb_svc_op {
    const char *name;     /* "CreateUser" */
    size_t result_size;   /* the result struct, allocated zeroed in the arena */
    size_t request_id_at; /* offsetof its `const char *request_id`, which svc.c sets */
    /* Fills result from a 2xx response. Returns 0, or a negative code after kb_svc_fail(). */
    int (*parse)(struct kb_svc_parse *p, const struct kb_aws_response *resp, void *result);
    /* Optional: turns an AWS error into a result (HeadBucket's 404 is "does not exist"). Returns
     * true when it did and filled result. */
    bool (*absorb)(struct kb_svc_parse *p, const struct kb_aws_error *err, void *result);
    /* Calls the typed callback: cb is cast back to its type; exactly one of err, result is
     * non-NULL. */
    void (*deliver)(kb_svc_fn cb, void *ctx, const struct kb_aws_error *err, void *result);
    /* Optional: destroys what the callback left in result (secrets it did not take). */
    void (*release)(void *result);
};

/* An op whose result is result_type (a struct with a `const char *request_id` member). */
#define KB_SVC_OP(opname, result_type, parse_fn, absorb_fn, deliver_fn, release_fn)                \
    {                                                                                              \
        .name = (opname), .result_size = sizeof(result_type),                                      \
        .request_id_at = offsetof(result_type, request_id), .parse = (parse_fn),                   \
        .absorb = (absorb_fn), .deliver = (deliver_fn), .release = (release_fn)                    \
    }

/* Defines the deliver function `fn` of an operation whose callback type is cb_type and whose
 * callback takes `result_type *`. */
#define KB_SVC_DELIVER(fn, cb_type, result_type)                                                   \
    static void fn(kb_svc_fn cb, void *ctx, const struct kb_aws_error *err, void *result)          \
    {                                                                                              \
        ((cb_type)cb)(ctx, err, (result_type *)result);                                            \
    }

/* Defines `var`, the op of a call that answers with a kb_aws_done_cb. */
#define KB_SVC_DONE_OP(var, opname)                                                                \
    static const struct kb_svc_op var =                                                            \
        KB_SVC_OP(opname, struct kb_aws_done, kb_svc_parse_done, NULL, kb_svc_deliver_done, NULL)

/* The parse and deliver of calls without a result. */
int kb_svc_parse_done(struct kb_svc_parse *p, const struct kb_aws_response *resp, void *result);
void kb_svc_deliver_done(kb_svc_fn cb, void *ctx, const struct kb_aws_error *err, void *result);

/*
 * Sends req (borrowed for the call; req->operation is set from op) on c and arranges for cb(ctx,
 * ...) to run exactly once, later, through op. Returns 0, or a negative code (KB_ENOMEM, or what
 * kb_aws_client_send returned) and then cb will not run.
 */
int kb_svc_send(struct kb_aws_client *c, const struct kb_svc_op *op, struct kb_aws_request *req,
                kb_svc_fn cb, void *ctx);

/* The sender kb_svc_send uses: kb_aws_client_send unless a test replaced it. */
typedef int (*kb_svc_send_fn)(struct kb_aws_client *c, const struct kb_aws_request *req,
                              kb_aws_cb cb, void *ctx);

/* Tests and fuzzers only: makes every typed call hand its request to fn instead of the client
 * (fn then owes the callback, later, with a canned response or error). NULL restores the client.
 * Not thread-safe; never used by the daemon. */
void kb_svc_set_sender(kb_svc_send_fn fn);

#endif
