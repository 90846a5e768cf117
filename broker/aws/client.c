/*
 * client.c - one signed AWS call with "standard" retries: the pipeline of client.h.
 *
 * A call is a small state machine driven by loop callbacks, never by the caller's stack:
 *   kb_aws_client_send   copy the request, resolve the endpoint, arm the call's timer at 0
 *   s_attempt            (timer) adaptive rate limit (s_admit), then credentials: the caller's
 *                        or the chain
 *   s_sign_and_send      sign with a fresh date (+ the learnt clock offset) and hand it to http
 *   s_on_http            2xx: the callback gets the body; otherwise parse the error, classify it
 *                        (retry.h) and either arm the timer with the backoff or finish
 * Each call owns one uv_timer_t, closed when the call ends, and holds a reference on the client;
 * the client is freed when its http layer has closed and the last call is gone. Clock skew
 * (RequestTimeTooSkewed, "Signature expired"/"not yet current") is retried once, immediately,
 * after taking the offset from the response's Date header; that retry draws nothing from the
 * retry quota but counts as an attempt.
 *
 * Adaptive mode (retry.h): once a service throttled, its calls pass its limiter one by one in
 * arrival order. A call that finds no token, or others already waiting, joins the service's queue;
 * only the queue's head has its timer running, set for when the next token is due at the
 * current rate and set again whenever a response changes the rate, so that the waiting calls
 * follow the rate as it grows back instead of the schedule of the moment they arrived.
 *
 * This module never logs. Bodies marked sensitive are wiped before they are freed; credentials
 * given with a request are deep-copied into guarded memory and wiped with the call.
 */
#include "aws/client.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aws/awserr_parse.h"
#include "aws/awstime.h"
#include "common/err.h"
#include "aws/retry.h"
#include "aws/sigv4.h"

#define S_MAX_ATTEMPTS_LIMIT 20u
#define S_HEADER_LIMIT       64u

enum s_state { S_WAITING, S_CREDS, S_HTTP };

struct s_call {
    struct kb_aws_client *c;
    struct s_call *prev, *next;
    kb_aws_cb cb;
    void *ctx;
    uv_timer_t timer;
    enum s_state state;
    enum kb_aws_service service;
    char operation[64];
    char method[8];
    struct kb_endpoint ep;
    char *target;      /* "path\0query" as sent, split for the signer */
    const char *query; /* into target, NULL when none */
    /* Host + the request's headers for the signer; the same + the signer's for http. */
    struct kb_sigv4_header *sig_headers;
    struct kb_http_header *http_headers;
    size_t header_count; /* in sig_headers */
    char *header_text;
    size_t header_text_len;
    void *body;
    size_t body_len;
    bool sensitive, unsigned_payload, has_creds, skew_retried;
    struct kb_credentials creds;
    unsigned attempt, max_attempts, last_cost;
    /* adaptive mode: the place in the service's queue (while queued) */
    struct s_call *q_prev, *q_next;
    bool queued;
};

/* The calls waiting for one service's limiter, in arrival order. */
struct s_queue {
    struct s_call *head, *tail;
};

struct kb_aws_client {
    uv_loop_t *loop;
    struct kb_http *http;
    struct kb_creds_chain *chain;
    struct kb_sigv4_signer *signer;
    char region[64];
    char *urls[KB_AWS_SERVICE_COUNT + 1]; /* owned copies of the overrides, [COUNT]: global */
    struct kb_endpoints_config ecfg;
    unsigned max_attempts;
    bool adaptive;
    uint64_t retry_base_ms;
    struct kb_retry_quota quota;
    struct kb_rate_limiter limiter[KB_AWS_SERVICE_COUNT];
    struct s_queue queue[KB_AWS_SERVICE_COUNT];
    long clock_offset; /* seconds to add to the local clock when signing */
    struct s_call *calls;
    size_t refs; /* 1 for the http layer + 1 per call */
    bool closing;
    kb_http_closed_cb closed;
    void *closed_ctx;
};

static void s_attempt(struct s_call *k);

/* -- client lifetime ------------------------------------------------------------------------ */

static void s_client_unref(struct kb_aws_client *c)
{
    kb_http_closed_cb closed = c->closed;
    void *closed_ctx = c->closed_ctx;

    if (--c->refs > 0)
        return;
    kb_sigv4_signer_destroy(c->signer);
    for (size_t i = 0; i <= KB_AWS_SERVICE_COUNT; i++)
        free(c->urls[i]);
    free(c);
    if (closed != NULL)
        closed(closed_ctx);
}

static double s_now(const struct kb_aws_client *c)
{
    return (double)uv_now(c->loop) / 1000.0;
}

/* -- call lifetime -------------------------------------------------------------------------- */

/* Frees k and what it owns, wiping the buffers that may hold a secret (body, headers). */
static void s_call_free(struct s_call *k)
{
    if (k->body != NULL) {
        sodium_memzero(k->body, k->body_len);
        free(k->body);
    }
    if (k->header_text != NULL) {
        sodium_memzero(k->header_text, k->header_text_len);
        free(k->header_text);
    }
    free(k->target);
    free(k->sig_headers);
    free(k->http_headers);
    if (k->has_creds)
        kb_credentials_cleanup(&k->creds);
    free(k);
}

static void s_on_call_closed(uv_handle_t *handle)
{
    struct s_call *k = (struct s_call *)handle->data;
    struct kb_aws_client *c = k->c;

    s_call_free(k);
    s_client_unref(c);
}

static void s_call_unlink(struct s_call *k)
{
    struct kb_aws_client *c = k->c;

    if (k->prev)
        k->prev->next = k->next;
    else
        c->calls = k->next;
    if (k->next)
        k->next->prev = k->prev;
    k->prev = k->next = NULL;
}

static void s_dequeue(struct s_call *k);

/* Ends the call: exactly one of err and resp. Runs on a loop callback, never inside send. */
static void s_finish(struct s_call *k, struct kb_aws_error *err, const struct kb_aws_response *resp)
{
    s_call_unlink(k);
    s_dequeue(k);
    if (err != NULL) {
        snprintf(err->operation, sizeof(err->operation), "%s", k->operation);
        err->attempts = k->attempt;
    }
    k->cb(k->ctx, err, resp);
    uv_close((uv_handle_t *)&k->timer, s_on_call_closed);
}

static void s_fail(struct s_call *k, int code, const char *message)
{
    struct kb_aws_error e;

    memset(&e, 0, sizeof(e));
    e.err = code;
    snprintf(e.message, sizeof(e.message), "%s", message != NULL ? message : kb_strerror(code));
    s_finish(k, &e, NULL);
}

static void s_on_timer(uv_timer_t *t)
{
    s_attempt((struct s_call *)t->data);
}

static void s_arm(struct s_call *k, uint64_t delay_ms)
{
    k->state = S_WAITING;
    uv_timer_start(&k->timer, s_on_timer, delay_ms, 0);
}

/* -- adaptive mode: the queue of a service's limiter ---------------------------------------- */

static uint64_t s_wait_ms(double wait)
{
    return wait > 0.0 ? (uint64_t)(wait * 1000.0) + 1 : 0;
}

static void s_enqueue(struct s_call *k)
{
    struct s_queue *q = &k->c->queue[k->service];

    k->q_prev = q->tail;
    k->q_next = NULL;
    if (q->tail != NULL)
        q->tail->q_next = k;
    else
        q->head = k;
    q->tail = k;
    k->queued = true;
    k->state = S_WAITING;
}

/* Takes k out of its queue, if it is in one; a new head asks the limiter on the next turn of the
 * loop (a token may be there already). */
static void s_dequeue(struct s_call *k)
{
    struct s_queue *q = &k->c->queue[k->service];
    bool was_head = q->head == k;

    if (!k->queued)
        return;
    if (k->q_prev != NULL)
        k->q_prev->q_next = k->q_next;
    else
        q->head = k->q_next;
    if (k->q_next != NULL)
        k->q_next->q_prev = k->q_prev;
    else
        q->tail = k->q_prev;
    k->q_prev = k->q_next = NULL;
    k->queued = false;
    if (was_head && q->head != NULL && !k->c->closing)
        s_arm(q->head, 0);
}

/* Whether k may send now. Otherwise it waits in its service's queue; at its head, with its timer
 * set for the next token. */
static bool s_admit(struct s_call *k)
{
    struct kb_aws_client *c = k->c;
    struct s_queue *q = &c->queue[k->service];
    double wait;

    if (q->head != NULL && q->head != k) {
        if (!k->queued)
            s_enqueue(k);
        return false; /* its turn comes when the calls before it have gone */
    }
    wait = kb_rate_limiter_take(&c->limiter[k->service], s_now(c));
    if (wait > 0.0) {
        if (!k->queued)
            s_enqueue(k);
        s_arm(k, s_wait_ms(wait));
        return false;
    }
    s_dequeue(k);
    return true;
}

/* The rate of k's service changed: the head of its queue waits for the next token at the new
 * rate. */
static void s_rearm_head(struct kb_aws_client *c, enum kb_aws_service service)
{
    struct s_call *head = c->queue[service].head;

    if (head != NULL && !c->closing)
        s_arm(head, s_wait_ms(kb_rate_limiter_wait(&c->limiter[service], s_now(c))));
}

/* -- one attempt ---------------------------------------------------------------------------- */

static void s_on_http(void *ctx, const struct kb_http_response *resp);

static int s_sign_and_send(struct s_call *k, const struct kb_credentials *cr)
{
    struct kb_aws_client *c = k->c;
    struct kb_sigv4_credentials sc = {cr->access_key_id, cr->secret_access_key, cr->session_token};
    struct kb_sigv4_request sreq = {
        .method = k->method,
        .path = k->target,
        .query = k->query,
        .headers = k->sig_headers,
        .header_count = k->header_count,
        .payload = KB_SIGV4_PAYLOAD_BODY,
        .body = k->body,
        .body_len = k->body_len,
    };
    struct kb_sigv4_params p = {
        &sc, k->ep.signing_region, k->ep.signing_name, time(NULL) + c->clock_offset, {0}};
    struct kb_sigv4_result res;
    struct kb_http_request hreq;
    int rc;

    if (k->unsigned_payload && k->service == KB_AWS_S3 && strncmp(k->ep.url, "https://", 8) == 0)
        sreq.payload = KB_SIGV4_PAYLOAD_UNSIGNED;
    kb_sigv4_options_for_service(&p.options, k->ep.signing_name);
    rc = kb_sigv4_sign(c->signer, &sreq, &p, &res);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < res.header_count; i++) {
        k->http_headers[k->header_count + i].name = res.headers[i].name;
        k->http_headers[k->header_count + i].value = res.headers[i].value;
    }
    memset(&hreq, 0, sizeof(hreq));
    hreq.method = k->method;
    hreq.url = k->ep.url;
    hreq.headers = k->http_headers;
    hreq.header_count = k->header_count + res.header_count;
    hreq.body = k->body;
    hreq.body_len = k->body_len;
    hreq.sensitive = k->sensitive;
    rc = kb_http_send(c->http, &hreq, s_on_http, k);
    if (rc == 0)
        k->state = S_HTTP;
    return rc;
}

static void s_on_creds(void *ctx, int err, const struct kb_credentials *creds, const char *message)
{
    struct s_call *k = ctx;
    int rc;

    if (k->c->closing) {
        s_fail(k, KB_ECANCELED, NULL);
        return;
    }
    if (err != 0) {
        s_fail(k, err == KB_ECANCELED ? err : KB_ENOCREDS, message);
        return;
    }
    rc = s_sign_and_send(k, creds);
    if (rc != 0)
        s_fail(k, rc, NULL);
}

static void s_attempt(struct s_call *k)
{
    struct kb_aws_client *c = k->c;
    int rc;

    if (c->closing) {
        s_fail(k, KB_ECANCELED, NULL);
        return;
    }
    if (c->adaptive && !s_admit(k))
        return;
    k->attempt++;
    if (k->has_creds) {
        rc = s_sign_and_send(k, &k->creds);
        if (rc != 0)
            s_fail(k, rc, NULL);
        return;
    }
    k->state = S_CREDS;
    rc = kb_creds_get(c->chain, s_on_creds, k);
    if (rc != 0)
        s_fail(k, rc, "the credentials chain could not start");
}

/* -- outcomes ------------------------------------------------------------------------------- */

/* A clock-skew rejection: the signature's date is too far from the server's. */
static bool s_is_skew(const struct kb_aws_error *e)
{
    if (strcmp(e->code, "RequestTimeTooSkewed") == 0 || strcmp(e->code, "RequestExpired") == 0 ||
        strcmp(e->code, "RequestInTheFuture") == 0)
        return true;
    if (strcmp(e->code, "SignatureDoesNotMatch") == 0 ||
        strcmp(e->code, "InvalidSignatureException") == 0)
        return strstr(e->message, "Signature expired") != NULL ||
               strstr(e->message, "Signature not yet current") != NULL;
    return false;
}

/* The offset to the server's clock from its Date header (RFC 7231 IMF-fixdate, or any other form
 * of awstime.h). */
static bool s_server_offset(const struct kb_http_response *resp, long *offset)
{
    const char *date = kb_http_response_header(resp, "Date");
    time_t t;

    if (date == NULL || kb_awstime_parse(date, false, &t) != 0)
        return false;
    *offset = (long)(t - time(NULL));
    return true;
}

static void s_succeed(struct s_call *k, const struct kb_http_response *resp)
{
    struct kb_aws_response r;
    const char *rid = kb_http_response_header(resp, "x-amzn-RequestId");

    if (rid == NULL)
        rid = kb_http_response_header(resp, "x-amz-request-id");
    kb_retry_quota_success(&k->c->quota, k->last_cost);
    memset(&r, 0, sizeof(r));
    r.status = resp->status;
    r.body = resp->body;
    r.body_len = resp->body_len;
    r.http = resp;
    r.request_id = rid != NULL ? rid : "";
    r.attempts = k->attempt;
    s_finish(k, NULL, &r);
}

/* Describes a failed attempt in e and says how it may be retried. */
static enum kb_retry_class s_describe(const struct kb_http_response *resp, struct kb_aws_error *e)
{
    struct kb_awserr_input in;

    memset(e, 0, sizeof(*e));
    if (resp->err != 0) {
        e->err = resp->err;
        e->status = resp->status;
        snprintf(e->message, sizeof(e->message), "%s: %s", kb_strerror(resp->err),
                 resp->error_text);
        return kb_retry_classify(resp->err, 0, NULL);
    }
    memset(&in, 0, sizeof(in));
    in.status = resp->status;
    in.body = resp->body;
    in.body_len = resp->body_len;
    in.request_id = kb_http_response_header(resp, "x-amzn-RequestId");
    if (in.request_id == NULL)
        in.request_id = kb_http_response_header(resp, "x-amz-request-id");
    in.error_type = kb_http_response_header(resp, "x-amzn-ErrorType");
    kb_awserr_parse(&in, e);
    return kb_retry_classify(KB_EAWS, e->status, e->code);
}

/* Says in the message why a retryable error was not retried. */
static void s_note_quota(struct kb_aws_error *e)
{
    static const char note[] = " (not retried: the client's retry quota is exhausted)";
    size_t len = strlen(e->message);

    if (len + sizeof(note) <= sizeof(e->message))
        memcpy(e->message + len, note, sizeof(note));
}

static void s_on_http(void *ctx, const struct kb_http_response *resp)
{
    struct s_call *k = ctx;
    struct kb_aws_client *c = k->c;
    struct kb_aws_error e;
    enum kb_retry_class cls;
    long offset = 0;
    unsigned cost;

    memset(&e, 0, sizeof(e));
    k->state = S_WAITING;
    if (resp->err == KB_ECANCELED || c->closing) {
        s_fail(k, KB_ECANCELED, NULL);
        return;
    }
    cls = resp->err == 0 && resp->status >= 200 && resp->status < 300 ? KB_RETRY_SUCCESS
                                                                      : s_describe(resp, &e);
    if (c->adaptive) {
        kb_rate_limiter_update(&c->limiter[k->service], cls == KB_RETRY_THROTTLE, s_now(c));
        s_rearm_head(c, k->service);
    }
    if (cls == KB_RETRY_SUCCESS) {
        s_succeed(k, resp);
        return;
    }
    if (resp->err == 0 && s_is_skew(&e) && !k->skew_retried && k->attempt < k->max_attempts &&
        s_server_offset(resp, &offset)) {
        k->skew_retried = true;
        c->clock_offset = offset;
        s_arm(k, 0);
        return;
    }
    if ((cls == KB_RETRY_TRANSIENT || cls == KB_RETRY_THROTTLE) && k->attempt < k->max_attempts) {
        cost = kb_retry_quota_acquire(&c->quota, e.err == KB_ETIMEDOUT);
        if (cost > 0) {
            k->last_cost = cost;
            s_arm(k, kb_retry_backoff_ms(k->attempt,
                                         (double)randombytes_uniform(1u << 30) / (double)(1u << 30),
                                         c->retry_base_ms));
            return;
        }
        s_note_quota(&e);
    }
    s_finish(k, &e, NULL);
}

/* -- starting a call ------------------------------------------------------------------------ */

/* Headers the signer owns (it adds its own) or the client sets (Host): dropped from the
 * caller's list so that they are not sent twice. */
static bool s_reserved_header(const char *name)
{
    static const char *const names[] = {"Host", "Authorization", "X-Amz-Date",
                                        "X-Amz-Security-Token", "x-amz-content-sha256"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(name, names[i]) == 0)
            return true;
    }
    return false;
}

/* Copies Host and the caller's headers into one text block with two views of it. */
static int s_copy_headers(struct s_call *k, const struct kb_aws_request *req)
{
    size_t len = strlen("Host") + strlen(k->ep.host) + 2, n = 0, off = 0;

    for (size_t i = 0; i < req->header_count; i++) {
        if (req->headers[i].name == NULL || req->headers[i].value == NULL)
            return KB_EINVAL;
        len += strlen(req->headers[i].name) + strlen(req->headers[i].value) + 2;
    }
    k->header_text = malloc(len);
    k->header_text_len = len;
    k->sig_headers = calloc(req->header_count + 1, sizeof(*k->sig_headers));
    k->http_headers =
        calloc(req->header_count + 1 + KB_SIGV4_MAX_ADDED_HEADERS, sizeof(*k->http_headers));
    if (k->header_text == NULL || k->sig_headers == NULL || k->http_headers == NULL)
        return KB_ENOMEM;
    for (size_t i = 0; i <= req->header_count; i++) {
        const char *name = i == 0 ? "Host" : req->headers[i - 1].name;
        const char *value = i == 0 ? k->ep.host : req->headers[i - 1].value;
        size_t nl = strlen(name) + 1, vl = strlen(value) + 1;

        if (i > 0 && s_reserved_header(name))
            continue;
        memcpy(k->header_text + off, name, nl);
        memcpy(k->header_text + off + nl, value, vl);
        k->sig_headers[n].name = k->http_headers[n].name = k->header_text + off;
        k->sig_headers[n].value = k->http_headers[n].value = k->header_text + off + nl;
        off += nl + vl;
        n++;
    }
    k->header_count = n;
    return 0;
}

/* The path and query as they go on the wire, from the resolved URL. */
static int s_copy_target(struct s_call *k)
{
    const char *p = strstr(k->ep.url, "://");
    char *q;

    p = p != NULL ? strchr(p + 3, '/') : NULL;
    if (p == NULL)
        return KB_EINVAL;
    k->target = strdup(p);
    if (k->target == NULL)
        return KB_ENOMEM;
    q = strchr(k->target, '?');
    if (q != NULL) {
        *q = '\0';
        k->query = q + 1;
    }
    return 0;
}

static int s_call_fill(struct s_call *k, const struct kb_aws_request *req)
{
    struct kb_aws_client *c = k->c;
    int rc;

    snprintf(k->operation, sizeof(k->operation), "%s", req->operation);
    snprintf(k->method, sizeof(k->method), "%s", req->method);
    k->service = req->service;
    k->sensitive = req->sensitive;
    k->unsigned_payload = req->unsigned_payload;
    k->max_attempts = req->max_attempts > 0 ? req->max_attempts : c->max_attempts;
    if (k->max_attempts > S_MAX_ATTEMPTS_LIMIT)
        k->max_attempts = S_MAX_ATTEMPTS_LIMIT;
    rc = kb_endpoints_resolve(&c->ecfg, req->service, req->bucket, req->path, req->query, &k->ep);
    if (rc == 0)
        rc = s_copy_target(k);
    if (rc == 0)
        rc = s_copy_headers(k, req);
    if (rc == 0 && req->body_len > 0) {
        k->body = malloc(req->body_len);
        if (k->body == NULL)
            return KB_ENOMEM;
        memcpy(k->body, req->body, req->body_len);
        k->body_len = req->body_len;
    }
    if (rc == 0 && req->credentials != NULL) {
        rc = kb_credentials_copy(&k->creds, req->credentials);
        k->has_creds = rc == 0;
    }
    return rc;
}

int kb_aws_client_send(struct kb_aws_client *c, const struct kb_aws_request *req, kb_aws_cb cb,
                       void *ctx)
{
    struct s_call *k;
    int rc;

    if (c == NULL || req == NULL || cb == NULL || req->operation == NULL || req->method == NULL ||
        strlen(req->method) >= sizeof(k->method) ||
        (unsigned)req->service >= KB_AWS_SERVICE_COUNT ||
        (req->body == NULL && req->body_len > 0) || req->header_count > S_HEADER_LIMIT ||
        (req->headers == NULL && req->header_count > 0))
        return KB_EINVAL;
    if (c->closing)
        return KB_ECANCELED;
    k = calloc(1, sizeof(*k));
    if (k == NULL)
        return KB_ENOMEM;
    k->c = c;
    k->cb = cb;
    k->ctx = ctx;
    rc = s_call_fill(k, req);
    if (rc != 0)
        goto cleanup;
    uv_timer_init(c->loop, &k->timer);
    k->timer.data = k;
    c->refs++;
    k->next = c->calls;
    if (c->calls)
        c->calls->prev = k;
    c->calls = k;
    s_arm(k, 0); /* the first attempt starts on the loop: callbacks are never synchronous */
    return 0;
cleanup:
    s_call_free(k);
    return rc;
}

/* -- the client ----------------------------------------------------------------------------- */

static const char *s_env(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

static int s_err(char *errbuf, size_t errlen, int rc, const char *msg)
{
    if (errbuf != NULL && errlen > 0)
        snprintf(errbuf, errlen, "%s", msg);
    return rc;
}

static int s_resolve_region(struct kb_aws_client *c, const struct kb_aws_client_config *cfg,
                            char *errbuf, size_t errlen)
{
    char profile_region[64] = "";
    const char *env_region = s_env("AWS_REGION"), *env_default = s_env("AWS_DEFAULT_REGION");
    int rc;

    if ((cfg->region == NULL || cfg->region[0] == '\0') && env_region == NULL &&
        env_default == NULL) {
        rc = kb_creds_profile_region(cfg->profile, profile_region, sizeof(profile_region));
        if (rc != 0)
            return s_err(errbuf, errlen, KB_ECONFIG,
                         "the region of the AWS profile could not be read from the shared files");
    }
    rc = kb_endpoints_region(cfg->region, env_region, env_default, profile_region, c->region,
                             sizeof(c->region));
    if (rc != 0)
        return s_err(errbuf, errlen, KB_ECONFIG,
                     "no valid AWS region: set region in the configuration, AWS_REGION, "
                     "AWS_DEFAULT_REGION or the profile's region");
    return 0;
}

/* Copies the endpoint overrides (config first, then the environment) and checks that every
 * service resolves with them. */
static int s_resolve_endpoints(struct kb_aws_client *c, const struct kb_aws_client_config *cfg,
                               char *errbuf, size_t errlen)
{
    static const char *const vars[KB_AWS_SERVICE_COUNT] = {
        "AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER"};
    struct kb_endpoints_config env;
    struct kb_endpoint ep;
    char msg[256];

    kb_endpoints_config_from_env(&env);
    for (size_t i = 0; i <= KB_AWS_SERVICE_COUNT; i++) {
        const char *v = i < KB_AWS_SERVICE_COUNT ? cfg->service_url[i] : cfg->endpoint_url;

        if (v == NULL || v[0] == '\0')
            v = i < KB_AWS_SERVICE_COUNT ? env.service_url[i] : env.endpoint_url;
        if (v != NULL && v[0] != '\0' && (c->urls[i] = strdup(v)) == NULL)
            return s_err(errbuf, errlen, KB_ENOMEM, "out of memory");
    }
    c->ecfg.region = c->region;
    c->ecfg.endpoint_url = c->urls[KB_AWS_SERVICE_COUNT];
    for (size_t i = 0; i < KB_AWS_SERVICE_COUNT; i++)
        c->ecfg.service_url[i] = c->urls[i];
    c->ecfg.s3_force_path_style = cfg->s3_force_path_style;
    for (size_t i = 0; i < KB_AWS_SERVICE_COUNT; i++) {
        if (kb_endpoints_resolve(&c->ecfg, (enum kb_aws_service)i, NULL, "/", NULL, &ep) != 0) {
            /* The URL itself is not echoed: a malformed one may carry user info. */
            snprintf(msg, sizeof(msg),
                     "no usable endpoint for %s in region %s: check endpoint_url / %s / "
                     "AWS_ENDPOINT_URL (scheme://host[:port][/path])",
                     kb_aws_service_name((enum kb_aws_service)i), c->region, vars[i]);
            return s_err(errbuf, errlen, KB_ECONFIG, msg);
        }
    }
    return 0;
}

static int s_resolve_retry(struct kb_aws_client *c, const struct kb_aws_client_config *cfg,
                           char *errbuf, size_t errlen)
{
    const char *v = s_env("AWS_MAX_ATTEMPTS"), *mode = s_env("AWS_RETRY_MODE");
    double now = s_now(c);

    c->max_attempts = cfg->max_attempts;
    if (c->max_attempts == 0 && v != NULL) {
        char *end = NULL;
        unsigned long n = strtoul(v, &end, 10);

        if (end == v || *end != '\0' || n < 1 || n > S_MAX_ATTEMPTS_LIMIT)
            return s_err(errbuf, errlen, KB_ECONFIG, "AWS_MAX_ATTEMPTS must be 1..20");
        c->max_attempts = (unsigned)n;
    }
    if (c->max_attempts == 0)
        c->max_attempts = KB_RETRY_DEFAULT_MAX_ATTEMPTS;
    if (c->max_attempts > S_MAX_ATTEMPTS_LIMIT)
        c->max_attempts = S_MAX_ATTEMPTS_LIMIT;
    c->adaptive = cfg->adaptive || (mode != NULL && strcmp(mode, "adaptive") == 0);
    c->retry_base_ms = cfg->retry_base_ms > 0 ? cfg->retry_base_ms : KB_RETRY_BASE_MS;
    kb_retry_quota_init(&c->quota, 0);
    for (size_t i = 0; i < KB_AWS_SERVICE_COUNT; i++)
        kb_rate_limiter_init(&c->limiter[i], now);
    return 0;
}

int kb_aws_client_new(uv_loop_t *loop, const struct kb_aws_client_config *cfg,
                      struct kb_aws_client **out, char *errbuf, size_t errlen)
{
    static const struct kb_aws_client_config defaults;
    struct kb_aws_client *c = NULL;
    struct kb_http_options hopts;
    int rc;

    if (loop == NULL || out == NULL)
        return s_err(errbuf, errlen, KB_EINVAL, "no loop or no output");
    if (cfg == NULL)
        cfg = &defaults;
    if (sodium_init() < 0)
        return s_err(errbuf, errlen, KB_ENOMEM, "libsodium could not be initialised");
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return s_err(errbuf, errlen, KB_ENOMEM, "out of memory");
    c->loop = loop;
    rc = s_resolve_region(c, cfg, errbuf, errlen);
    if (rc == 0)
        rc = s_resolve_endpoints(c, cfg, errbuf, errlen);
    if (rc == 0)
        rc = s_resolve_retry(c, cfg, errbuf, errlen);
    if (rc == 0 && kb_sigv4_signer_new(&c->signer) != 0)
        rc = s_err(errbuf, errlen, KB_ENOMEM, "the SigV4 signer could not be created");
    if (rc != 0)
        goto cleanup;
    memset(&hopts, 0, sizeof(hopts));
    hopts.connect_timeout_ms = cfg->connect_timeout_ms;
    hopts.total_timeout_ms = cfg->total_timeout_ms;
    hopts.ca_bundle = cfg->ca_bundle != NULL ? cfg->ca_bundle : s_env("AWS_CA_BUNDLE");
    hopts.max_connections = cfg->max_connections;
    rc = kb_http_new(loop, &hopts, &c->http);
    if (rc != 0) {
        rc = s_err(errbuf, errlen, rc, "the HTTP client could not be created");
        goto cleanup;
    }
    rc = kb_creds_chain_new(loop, c->http, &cfg->creds, &c->chain);
    if (rc != 0) {
        s_err(errbuf, errlen, rc, "the credentials configuration is invalid");
        kb_http_close(c->http, NULL, NULL); /* frees itself on the loop */
        goto cleanup;
    }
    c->refs = 1; /* the http layer, released when it has closed */
    *out = c;
    return 0;
cleanup:
    kb_sigv4_signer_destroy(c->signer);
    for (size_t i = 0; i <= KB_AWS_SERVICE_COUNT; i++)
        free(c->urls[i]);
    free(c);
    return rc;
}

const char *kb_aws_client_region(const struct kb_aws_client *c)
{
    return c->region;
}

struct kb_http *kb_aws_client_http(struct kb_aws_client *c)
{
    return c->http;
}

long kb_aws_client_clock_offset(const struct kb_aws_client *c)
{
    return c->clock_offset;
}

void kb_aws_client_set_clock_offset(struct kb_aws_client *c, long seconds)
{
    c->clock_offset = seconds;
}

static void s_on_http_closed(void *ctx)
{
    s_client_unref(ctx);
}

void kb_aws_client_close(struct kb_aws_client *c, kb_http_closed_cb closed, void *ctx)
{
    if (c == NULL || c->closing)
        return;
    c->closing = true;
    c->closed = closed;
    c->closed_ctx = ctx;
    /* Waiting calls end on their timer; calls waiting for credentials or a response end when
     * the chain and the http layer call them back with KB_ECANCELED. */
    for (struct s_call *k = c->calls; k != NULL; k = k->next) {
        if (k->state == S_WAITING)
            s_arm(k, 0);
    }
    kb_creds_chain_destroy(c->chain);
    c->chain = NULL;
    kb_http_close(c->http, s_on_http_closed, c);
}
