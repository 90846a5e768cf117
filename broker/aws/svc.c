/*
 * svc.c - one typed AWS call: send, parse into an arena, deliver, release.
 *
 * The call state lives from kb_svc_send() to the end of s_on_response(); kb_aws_client_send()
 * guarantees the response callback runs later and exactly once, so a typed call is always
 * asynchronous without deferring anything itself.
 */
#include "aws/svc.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

struct s_block {
    struct s_block *next;
    alignas(max_align_t) unsigned char data[];
};

struct s_call {
    const struct kb_svc_op *op;
    kb_svc_fn cb;
    void *ctx;
    struct kb_svc_arena arena;
};

static kb_svc_send_fn s_sender;

void *kb_svc_alloc(struct kb_svc_arena *a, size_t n)
{
    struct s_block *b;

    if (n > SIZE_MAX - sizeof(*b))
        return NULL;
    b = calloc(1, sizeof(*b) + n);
    if (b == NULL)
        return NULL;
    b->next = a->blocks;
    a->blocks = b;
    return b->data;
}

char *kb_svc_strndup(struct kb_svc_arena *a, const char *s, size_t len)
{
    char *p;

    if (len == SIZE_MAX)
        return NULL;
    p = kb_svc_alloc(a, len + 1);
    if (p != NULL && len > 0)
        memcpy(p, s, len);
    return p;
}

void kb_svc_arena_free(struct kb_svc_arena *a)
{
    struct s_block *b = a->blocks;

    while (b != NULL) {
        struct s_block *next = b->next;

        free(b);
        b = next;
    }
    a->blocks = NULL;
}

int kb_svc_fail(struct kb_svc_parse *p, int err, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->msg[0] != '\0')
        return err;
    n = snprintf(p->msg, sizeof(p->msg), "%s: ", p->operation != NULL ? p->operation : "");
    if (n < 0 || (size_t)n >= sizeof(p->msg))
        return err;
    va_start(ap, fmt);
    vsnprintf(p->msg + n, sizeof(p->msg) - (size_t)n, fmt, ap);
    va_end(ap);
    return err;
}

int kb_svc_parse_done(struct kb_svc_parse *p, const struct kb_aws_response *resp, void *result)
{
    struct kb_aws_done *done = result;

    done->operation = p->operation;
    done->status = resp->status;
    done->request_id = resp->request_id != NULL ? resp->request_id : "";
    return 0;
}

void kb_svc_deliver_done(kb_svc_fn cb, void *ctx, const struct kb_aws_error *err, void *result)
{
    ((kb_aws_done_cb)cb)(ctx, err, result);
}

static void s_copy(char *dst, size_t dstlen, const char *src)
{
    snprintf(dst, dstlen, "%s", src != NULL ? src : "");
}

/* A KB_EPARSE (or KB_ENOMEM ...) error for a response that arrived but did not parse. */
static void s_parse_error(struct kb_aws_error *e, int err, const struct kb_svc_parse *p,
                          const struct kb_aws_response *resp)
{
    memset(e, 0, sizeof(*e));
    e->err = err;
    e->status = resp->status;
    e->attempts = resp->attempts;
    s_copy(e->message, sizeof(e->message), p->msg[0] != '\0' ? p->msg : kb_strerror(err));
    s_copy(e->request_id, sizeof(e->request_id), resp->request_id);
    s_copy(e->operation, sizeof(e->operation), p->operation);
}

static void s_on_response(void *ctx, const struct kb_aws_error *err,
                          const struct kb_aws_response *resp)
{
    struct s_call *call = ctx;
    const struct kb_svc_op *op = call->op;
    struct kb_svc_parse p = {.arena = &call->arena, .operation = op->name};
    struct kb_aws_error perr;
    void *result = kb_svc_alloc(&call->arena, op->result_size);
    /* Taken before an absorbed error turns into a result: the id is the response's either way. */
    const char *request_id = err != NULL                ? err->request_id
                             : resp->request_id != NULL ? resp->request_id
                                                        : "";
    int rc = 0;

    if (err != NULL) {
        if (result != NULL && op->absorb != NULL && op->absorb(&p, err, result))
            err = NULL;
    } else if (result == NULL) {
        rc = kb_svc_fail(&p, KB_ENOMEM, "out of memory");
    } else {
        rc = op->parse(&p, resp, result);
    }
    if (rc != 0) {
        s_parse_error(&perr, rc, &p, resp);
        err = &perr;
    }
    if (err == NULL)
        memcpy((char *)result + op->request_id_at, &request_id, sizeof(request_id));
    op->deliver(call->cb, call->ctx, err, err != NULL ? NULL : result);
    if (result != NULL && op->release != NULL)
        op->release(result);
    kb_svc_arena_free(&call->arena);
    free(call);
}

int kb_svc_send(struct kb_aws_client *c, const struct kb_svc_op *op, struct kb_aws_request *req,
                kb_svc_fn cb, void *ctx)
{
    struct s_call *call;
    int rc;

    if (op == NULL || req == NULL || cb == NULL)
        return KB_EINVAL;
    call = calloc(1, sizeof(*call));
    if (call == NULL)
        return KB_ENOMEM;
    call->op = op;
    call->cb = cb;
    call->ctx = ctx;
    req->operation = op->name;
    rc = (s_sender != NULL ? s_sender : kb_aws_client_send)(c, req, s_on_response, call);
    if (rc != 0)
        free(call);
    return rc;
}

void kb_svc_set_sender(kb_svc_send_fn fn)
{
    s_sender = fn;
}
