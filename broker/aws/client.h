/*
 * client.h - one signed AWS call, with AWS "standard" retries, on the broker's loop.
 *
 * The pipeline of a call: resolve the endpoint (endpoints.h) -> get credentials (credentials.h,
 * or the caller's own for a probe) -> sign (sigv4.h) -> send (http.h) -> classify the outcome
 * (retry.h: transient, throttling, or final) -> wait out the backoff and try again, or finish.
 * Error bodies are parsed here (XML <ErrorResponse>/<Error> with expat for IAM, STS and S3; JSON
 * `__type` — including the "prefix#Code" form — with json-c for Secrets Manager) into a
 * struct kb_aws_error. Successful bodies are handed to the caller (the typed service modules)
 * unparsed.
 *
 * Request and response bodies marked sensitive are wiped before they are freed. This module never
 * logs a body, a header value or a secret.
 */
#ifndef KB_AWS_CLIENT_H
#define KB_AWS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "aws/awserr.h"
#include "aws/credentials.h"
#include "aws/endpoints.h"
#include "aws/http.h"

struct kb_aws_client;

struct kb_aws_client_config {
    const char *region;       /* NULL: AWS_REGION / AWS_DEFAULT_REGION / the profile's */
    const char *profile;      /* NULL: AWS_PROFILE / "default" */
    const char *endpoint_url; /* NULL: AWS_ENDPOINT_URL */
    const char *service_url[KB_AWS_SERVICE_COUNT]; /* NULL: AWS_ENDPOINT_URL_<SERVICE> */
    bool s3_force_path_style;
    const char *ca_bundle; /* NULL: AWS_CA_BUNDLE, else the system's */
    unsigned max_attempts; /* 0: AWS_MAX_ATTEMPTS, else 3 */
    bool adaptive;         /* client-side rate limiting per service after throttling (also when
                              AWS_RETRY_MODE=adaptive) */
    long connect_timeout_ms;
    long total_timeout_ms;
    struct kb_creds_config creds; /* explicit credentials, IMDS timeout, ... */
    /* Added by the transport: */
    unsigned retry_base_ms; /* backoff base (retry.h), 0: 1000 as botocore; tests shorten it */
    long max_connections;   /* open connections at most (http.h), 0: 64 */
};

/* A request built by a service module. The client copies what it needs in kb_aws_client_send. */
struct kb_aws_request {
    enum kb_aws_service service;
    const char *operation; /* "CreateUser": for errors, logs, metrics */
    const char *method;
    const char *bucket; /* S3 bucket, NULL for other calls */
    const char *path;   /* encoded path after the bucket ("/", "/key"); NULL: "/" */
    const char *query;  /* encoded query without '?', NULL for none */
    const struct kb_http_header *headers; /* extra headers (Content-Type, X-Amz-Target, ...) */
    size_t header_count;
    const void *body;
    size_t body_len;
    bool sensitive;        /* the body or the response holds a secret: wipe them */
    bool unsigned_payload; /* S3: sign UNSIGNED-PAYLOAD instead of the body hash (only over TLS) */
    /* Sign with these credentials instead of the client's chain (the readiness probe of a new
     * key). Borrowed until the callback runs. */
    const struct kb_credentials *credentials;
    unsigned max_attempts; /* 0: the client's */
};

/* A successful response (2xx). Borrowed until the callback returns; wiped after when sensitive. */
struct kb_aws_response {
    long status;
    const char *body;
    size_t body_len;
    const struct kb_http_response *http; /* headers etc. */
    const char *request_id;
    unsigned attempts;
};

/* Exactly one of err and resp is non-NULL. Both are borrowed until the callback returns. */
typedef void (*kb_aws_cb)(void *ctx, const struct kb_aws_error *err,
                          const struct kb_aws_response *resp);

/* Creates a client on loop. Returns 0, KB_ECONFIG (no region, malformed endpoint override ...)
 * with a message in errbuf, or KB_ENOMEM. The caller closes it with kb_aws_client_close. */
int kb_aws_client_new(uv_loop_t *loop, const struct kb_aws_client_config *cfg,
                      struct kb_aws_client **out, char *errbuf, size_t errlen);

/* Starts a call. Returns 0 (cb runs exactly once, later) or a negative code (cb will not run). */
int kb_aws_client_send(struct kb_aws_client *c, const struct kb_aws_request *req, kb_aws_cb cb,
                       void *ctx);

/* The region the client resolved. Borrowed for the client's lifetime. */
const char *kb_aws_client_region(const struct kb_aws_client *c);

/* The HTTP layer (for stats). Borrowed for the client's lifetime. */
struct kb_http *kb_aws_client_http(struct kb_aws_client *c);

/* The clock offset (seconds added to the local clock when signing), learnt from a clock-skew
 * rejection's Date header; 0 until then. The setter is for tests and for callers that know. */
long kb_aws_client_clock_offset(const struct kb_aws_client *c);
void kb_aws_client_set_clock_offset(struct kb_aws_client *c, long seconds);

/* Cancels calls in flight (callbacks run with KB_ECANCELED), then frees c and calls closed. */
void kb_aws_client_close(struct kb_aws_client *c, kb_http_closed_cb closed, void *ctx);

#endif
