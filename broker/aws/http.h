/*
 * http.h - HTTP(S) requests on the broker's libuv loop, through one libcurl multi handle.
 *
 * libcurl is driven with curl_multi_socket_action(): one uv_poll_t per socket (attached with
 * curl_multi_assign) and one uv_timer_t for CURLMOPT_TIMERFUNCTION. Connections are reused across
 * requests. TLS peer and host verification are always on; there is no option to turn them off
 * (a private CA is given with ca_bundle). Responses are buffered whole, up to max_response bytes.
 *
 * This module never logs a request or response body. A request marked `sensitive` has its body
 * copy and its response buffer wiped with sodium_memzero before they are freed.
 *
 * Callbacks are always asynchronous: kb_http_send() never calls cb before it returns.
 */
#ifndef KB_HTTP_H
#define KB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct kb_http;

struct kb_http_options {
    long connect_timeout_ms; /* 0: 3000 */
    long total_timeout_ms;   /* per request, 0: 30000 */
    const char *ca_bundle;   /* PEM file of trusted CAs, NULL: the system's. Copied. */
    size_t max_response;     /* bytes, 0: 16 MiB; a larger response fails with KB_ETOOBIG */
    long max_connections;    /* total open connections, 0: 64 */
};

/* One header. Borrowed for the duration of kb_http_send(). */
struct kb_http_header {
    const char *name;
    const char *value;
};

/* A request. Everything is borrowed for the duration of kb_http_send(), which copies it. */
struct kb_http_request {
    const char *method; /* "GET", "PUT", "POST", "DELETE", "HEAD" */
    const char *url;    /* absolute http:// or https:// URL, already encoded */
    const struct kb_http_header *headers;
    size_t header_count;
    const void *body; /* may be NULL when body_len is 0 */
    size_t body_len;
    long timeout_ms; /* 0: the client's total_timeout_ms */
    bool sensitive;  /* wipe the body copy and the response buffer when done */
};

/* A response header, as received (name without the colon, value trimmed). */
struct kb_http_response_header {
    char *name;
    char *value;
};

/*
 * A completed request. Borrowed until the callback returns; wiped (when sensitive) and freed after.
 * err is 0 when an HTTP response arrived, whatever its status; otherwise a negative code:
 * KB_ETIMEDOUT, KB_ENET (connection failed or reset, DNS), KB_ETLS (certificate or handshake),
 * KB_ETOOBIG, KB_ECANCELED (kb_http_close), KB_ENOMEM; error_text then says what curl said.
 */
struct kb_http_response {
    int err;
    long status;
    const char *body; /* NUL-terminated for convenience; body_len excludes the NUL */
    size_t body_len;
    const struct kb_http_response_header *headers;
    size_t header_count;
    const char *error_text; /* "" when err == 0 */
    bool connection_reused; /* curl reused a pooled connection for this request */
};

typedef void (*kb_http_cb)(void *ctx, const struct kb_http_response *resp);
typedef void (*kb_http_closed_cb)(void *ctx);

/* Creates a client on loop. opts may be NULL for the defaults. Returns 0, KB_ENOMEM or KB_ENET
 * (curl could not be initialised). The caller closes it with kb_http_close. */
int kb_http_new(uv_loop_t *loop, const struct kb_http_options *opts, struct kb_http **out);

/* Starts req. Returns 0 (cb will run exactly once, later, on the loop) or a negative code (cb will
 * not run). */
int kb_http_send(struct kb_http *h, const struct kb_http_request *req, kb_http_cb cb, void *ctx);

/* The value of header name (case-insensitive) in resp, or NULL. Borrowed like resp. */
const char *kb_http_response_header(const struct kb_http_response *resp, const char *name);

/* Number of requests in flight. */
size_t kb_http_in_flight(const struct kb_http *h);

/* Counters for tests and metrics. */
struct kb_http_stats {
    unsigned long requests;        /* completed, with or without a response */
    unsigned long connections_new; /* connections opened */
    unsigned long reused;          /* requests served over a reused connection */
};
void kb_http_stats(const struct kb_http *h, struct kb_http_stats *out);

/* Cancels every request in flight (their callbacks run with KB_ECANCELED), closes the libuv
 * handles and frees h once they are closed, then calls closed(ctx) if it is not NULL. */
void kb_http_close(struct kb_http *h, kb_http_closed_cb closed, void *ctx);

#endif
