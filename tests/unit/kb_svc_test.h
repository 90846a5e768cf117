/*
 * kb_svc_test.h - a fake transport for the unit tests of the typed AWS calls (iam, s3,
 * secretsmanager, sts).
 *
 * cap_install() makes kb_svc_send() hand every request to cap_send(), which deep-copies what the
 * test wants to assert (method, bucket, path, query, headers, body, flags) and keeps the response
 * callback; the test then answers with cap_respond() or cap_fail(), exactly as the client would,
 * later. No loop, no network: the typed calls' request building and response parsing run as pure
 * code.
 */
#ifndef KB_SVC_TEST_H
#define KB_SVC_TEST_H

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "aws/svc.h"

struct cap {
    int sends;   /* requests handed to the fake transport */
    int send_rc; /* what cap_send returns (0: accept) */
    int service;
    char operation[64];
    char method[16];
    char bucket[256];
    char path[256];
    char query[256];
    char headers[1024]; /* "Name: value\n" for each extra header, in order */
    char *body;         /* NUL-terminated copy */
    size_t body_len;
    int sensitive;
    int unsigned_payload;
    const struct kb_credentials *credentials;
    unsigned max_attempts;
    kb_aws_cb cb;
    void *cb_ctx;
};

static struct cap g_cap;

/* The copy of a body may hold a secret (CreateSecret): wipe it like the transport does. */
static inline void cap_free_body(void)
{
    if (g_cap.body != NULL)
        sodium_memzero(g_cap.body, g_cap.body_len);
    free(g_cap.body);
    g_cap.body = NULL;
}

static inline void cap_copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src != NULL ? src : "(null)");
}

static inline int cap_send(struct kb_aws_client *c, const struct kb_aws_request *req, kb_aws_cb cb,
                           void *ctx)
{
    size_t off = 0;

    (void)c;
    g_cap.sends++;
    if (g_cap.send_rc != 0)
        return g_cap.send_rc;
    g_cap.service = (int)req->service;
    cap_copy(g_cap.operation, sizeof(g_cap.operation), req->operation);
    cap_copy(g_cap.method, sizeof(g_cap.method), req->method);
    cap_copy(g_cap.bucket, sizeof(g_cap.bucket), req->bucket);
    cap_copy(g_cap.path, sizeof(g_cap.path), req->path);
    cap_copy(g_cap.query, sizeof(g_cap.query), req->query);
    g_cap.headers[0] = '\0';
    for (size_t i = 0; i < req->header_count; i++) {
        int n = snprintf(g_cap.headers + off, sizeof(g_cap.headers) - off, "%s: %s\n",
                         req->headers[i].name, req->headers[i].value);
        if (n > 0 && (size_t)n < sizeof(g_cap.headers) - off)
            off += (size_t)n;
    }
    cap_free_body();
    g_cap.body = malloc(req->body_len + 1);
    if (g_cap.body != NULL) {
        if (req->body_len > 0)
            memcpy(g_cap.body, req->body, req->body_len);
        g_cap.body[req->body_len] = '\0';
    }
    g_cap.body_len = req->body_len;
    g_cap.sensitive = req->sensitive;
    g_cap.unsigned_payload = req->unsigned_payload;
    g_cap.credentials = req->credentials;
    g_cap.max_attempts = req->max_attempts;
    g_cap.cb = cb;
    g_cap.cb_ctx = ctx;
    return 0;
}

/* Group setup/teardown: route kb_svc_send to the capture and reset it between tests. */
static inline int cap_setup(void **state)
{
    (void)state;
    cap_free_body();
    memset(&g_cap, 0, sizeof(g_cap));
    kb_svc_set_sender(cap_send);
    return 0;
}

static inline int cap_teardown(void **state)
{
    (void)state;
    cap_free_body();
    memset(&g_cap, 0, sizeof(g_cap));
    kb_svc_set_sender(NULL);
    return 0;
}

/* Answers the captured request with a 2xx response (headers: NULL-terminated name/value pairs). */
static inline void cap_respond_h(long status, const char *body, const char *const *hdrs)
{
    struct kb_http_response_header h[8];
    struct kb_http_response http;
    struct kb_aws_response resp;
    size_t n = 0;
    kb_aws_cb cb = g_cap.cb;

    for (; hdrs != NULL && hdrs[2 * n] != NULL && n < 8; n++)
        h[n] = (struct kb_http_response_header){(char *)hdrs[2 * n], (char *)hdrs[2 * n + 1]};
    memset(&http, 0, sizeof(http));
    http.status = status;
    http.body = body;
    http.body_len = strlen(body);
    http.headers = h;
    http.header_count = n;
    http.error_text = "";
    memset(&resp, 0, sizeof(resp));
    resp.status = status;
    resp.body = body;
    resp.body_len = strlen(body);
    resp.http = &http;
    resp.request_id = "req-1234";
    resp.attempts = 1;
    g_cap.cb = NULL;
    cb(g_cap.cb_ctx, NULL, &resp);
}

static inline void cap_respond(long status, const char *body)
{
    cap_respond_h(status, body, NULL);
}

/* Answers the captured request with an error. */
static inline void cap_fail(int err, long status, const char *code)
{
    struct kb_aws_error e;
    kb_aws_cb cb = g_cap.cb;

    memset(&e, 0, sizeof(e));
    e.err = err;
    e.status = status;
    cap_copy(e.code, sizeof(e.code), code);
    cap_copy(e.message, sizeof(e.message), "canned failure");
    cap_copy(e.operation, sizeof(e.operation), g_cap.operation);
    e.attempts = 1;
    g_cap.cb = NULL;
    cb(g_cap.cb_ctx, &e, NULL);
}

/* Joins tags as "key=value;" each into out (len bytes; cut when full), for one string compare. */
static inline void cap_join_tags(char *out, size_t len, const struct kb_aws_tag *tags, size_t n)
{
    size_t off = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n && off < len; i++) {
        int w = snprintf(out + off, len - off, "%s=%s;", tags[i].key, tags[i].value);

        if (w < 0)
            break;
        off += (size_t)w;
    }
}

/* What a typed callback saw: the error, or that a result came (details checked per test). */
struct got {
    int calls;
    int err;
    long status;
    char code[96];
    char message[512];
    char request_id[96];
    char operation[64];
};

static inline void got_error(struct got *g, const struct kb_aws_error *err)
{
    g->err = err->err;
    g->status = err->status;
    cap_copy(g->code, sizeof(g->code), err->code);
    cap_copy(g->message, sizeof(g->message), err->message);
    cap_copy(g->request_id, sizeof(g->request_id), err->request_id);
}

/* A kb_aws_done_cb that records into a struct got. */
static inline void on_done(void *ctx, const struct kb_aws_error *err, const struct kb_aws_done *ok)
{
    struct got *g = ctx;

    g->calls++;
    if ((err == NULL) == (ok == NULL)) {
        g->err = -1; /* broken contract: exactly one must be non-NULL */
        return;
    }
    if (err != NULL) {
        got_error(g, err);
        return;
    }
    g->status = ok->status;
    cap_copy(g->operation, sizeof(g->operation), ok->operation);
    cap_copy(g->request_id, sizeof(g->request_id), ok->request_id);
}

#endif
