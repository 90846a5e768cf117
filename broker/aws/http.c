/*
 * http.c - HTTP(S) on the broker's libuv loop: one libcurl multi handle driven by
 * curl_multi_socket_action(), after curl's docs/examples/multi-uv.c.
 *
 * The wiring: curl tells s_on_curl_socket() which sockets to watch (one uv_poll_t each, attached
 * to curl's socket with curl_multi_assign) and s_on_curl_timer() when to wake it up (one
 * uv_timer_t); both only (re)arm libuv handles and never drive curl themselves, so no curl call
 * re-enters curl. The loop callbacks call curl_multi_socket_action() and then drain
 * curl_multi_info_read(), which is where requests complete and their callbacks run. Differences
 * from the example: every allocation is checked, poll errors reach curl as CURL_CSELECT_ERR,
 * handles are recovered with container_of, the loop is the caller's, and a socket whose number
 * is still registered by a poll handle we are closing (curl closed it and opened a new socket
 * with the same number) is detached from the stale handle before the new one is armed.
 *
 * Policy that does not change per request: TLS peer and host verification always on (a private
 * CA only through ca_bundle), http and https only, redirects never followed, HTTP/1.1 (AWS's
 * query and REST APIs answer it everywhere, and one request per connection at a time keeps the
 * pool predictable), no Expect: 100-continue round trip, no compressed responses (so the size cap
 * bounds memory). Proxies: curl's defaults are kept, i.e. the http_proxy / https_proxy /
 * no_proxy environment variables are honoured as curl documents; nothing else configures one.
 * Connections live in the multi handle's pool and are reused by later requests; easy handles are
 * recycled too (curl_easy_reset keeps nothing request-specific).
 *
 * This module must never log a body or a header value, and never turns TLS verification off.
 * Request body copies, response buffers (also the ones left behind when a buffer grows) and the
 * header list (which carries the session token and the signature) are wiped before being freed.
 */
#include "aws/http.h"
#include "common/wipealloc.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/container.h"
#include "common/err.h"

#define S_DEFAULT_CONNECT_MS      3000L
#define S_DEFAULT_TOTAL_MS        30000L
#define S_DEFAULT_MAX_RESPONSE    ((size_t)16 * 1024 * 1024)
#define S_DEFAULT_MAX_CONNECTIONS 64L
#define S_MAX_RESPONSE_HEADERS    128
#define S_EASY_POOL               32
#define S_USER_AGENT              "keybroker/0.1 libcurl"

/* A socket curl asked us to watch. Freed in its close callback. */
struct s_sock {
    struct kb_http *h;
    uv_poll_t poll;
    curl_socket_t fd;
    bool closing;
    struct s_sock *prev, *next;
};

/* One request in flight. */
struct s_req {
    struct kb_http *h;
    CURL *easy;
    struct curl_slist *headers;
    char *body; /* our copy of the request body */
    size_t body_len;
    char *resp; /* the response body, NUL-terminated */
    size_t resp_len, resp_cap;
    struct kb_http_response_header *rh;
    size_t rh_count;
    bool too_big, oom;
    kb_http_cb cb;
    void *ctx;
    char errbuf[CURL_ERROR_SIZE];
    struct s_req *prev, *next;
};

struct kb_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    long connect_timeout_ms, total_timeout_ms, max_connections;
    size_t max_response;
    char *ca_bundle;
    struct s_req *reqs;     /* in flight */
    struct s_req *canceled; /* taken out of curl by kb_http_close, called back when closed */
    struct s_sock *socks;   /* every poll handle not yet closed */
    CURL *pool[S_EASY_POOL];
    size_t pool_len;
    size_t in_flight;
    size_t open_handles; /* libuv handles whose close callback has not run yet */
    struct kb_http_stats stats;
    bool closing;
    kb_http_closed_cb closed;
    void *closed_ctx;
};

static void s_action(struct kb_http *h, curl_socket_t fd, int flags);

/* -- lists ---------------------------------------------------------------------------------- */

static void s_req_link(struct s_req **head, struct s_req *r)
{
    r->prev = NULL;
    r->next = *head;
    if (*head)
        (*head)->prev = r;
    *head = r;
}

static void s_req_unlink(struct s_req **head, struct s_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        *head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* -- libuv handles -------------------------------------------------------------------------- */

static void s_finalize(struct kb_http *h);

static void s_handle_gone(struct kb_http *h)
{
    h->open_handles--;
    if (h->closing && h->open_handles == 0)
        s_finalize(h);
}

static void s_on_sock_closed(uv_handle_t *handle)
{
    struct s_sock *s = container_of((uv_poll_t *)handle, struct s_sock, poll);
    struct kb_http *h = s->h;

    if (s->prev)
        s->prev->next = s->next;
    else
        h->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    free(s);
    s_handle_gone(h);
}

static void s_on_timer_closed(uv_handle_t *handle)
{
    s_handle_gone(container_of((uv_timer_t *)handle, struct kb_http, timer));
}

/* Stops watching s and closes its handle; uv_close unregisters the fd at once, the memory goes
 * in the close callback. */
static void s_sock_close(struct s_sock *s)
{
    if (s->closing)
        return;
    s->closing = true;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, s_on_sock_closed);
}

static void s_on_poll(uv_poll_t *poll, int status, int events)
{
    struct s_sock *s = container_of(poll, struct s_sock, poll);
    int flags = 0;

    if (s->closing)
        return;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & (UV_READABLE | UV_DISCONNECT))
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    s_action(s->h, s->fd, flags);
}

static struct s_sock *s_sock_new(struct kb_http *h, curl_socket_t fd)
{
    struct s_sock *s = calloc(1, sizeof(*s));
    int rc;

    if (s == NULL)
        return NULL;
    s->h = h;
    s->fd = fd;
    rc = uv_poll_init_socket(h->loop, &s->poll, fd);
    if (rc == UV_EEXIST) {
        /* A poll handle of ours still holds this descriptor number: curl closed that socket and
         * opened a new one that got the same number. The old handle is stale; retire it. */
        for (struct s_sock *o = h->socks; o != NULL; o = o->next) {
            if (o->fd == fd && !o->closing)
                s_sock_close(o);
        }
        rc = uv_poll_init_socket(h->loop, &s->poll, fd);
    }
    if (rc != 0) {
        free(s);
        return NULL;
    }
    s->next = h->socks;
    if (h->socks)
        h->socks->prev = s;
    h->socks = s;
    h->open_handles++;
    return s;
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching fd. Returns -1 (curl fails the
 * transfers on that socket) when a handle cannot be created or armed. */
static int s_on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct kb_http *h = userp;
    struct s_sock *s = socketp;
    int events = 0;

    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            if (!h->closing)
                curl_multi_assign(h->multi, fd, NULL);
            s_sock_close(s);
        }
        return 0;
    }
    if (h->closing)
        return 0; /* curl_multi_cleanup is running: nothing new is watched */
    if (s == NULL || s->closing) {
        s = s_sock_new(h, fd);
        if (s == NULL)
            return -1;
        curl_multi_assign(h->multi, fd, s);
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    return uv_poll_start(&s->poll, events, s_on_poll) == 0 ? 0 : -1;
}

static void s_on_timeout(uv_timer_t *timer)
{
    struct kb_http *h = container_of(timer, struct kb_http, timer);

    if (!h->closing)
        s_action(h, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_TIMERFUNCTION: (re)arm or stop our one timer. A zero timeout also goes through the
 * loop so that curl is never re-entered from inside one of its own calls. */
static int s_on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct kb_http *h = userp;

    if (h->closing)
        return 0;
    if (timeout_ms < 0)
        return uv_timer_stop(&h->timer) == 0 ? 0 : -1;
    return uv_timer_start(&h->timer, s_on_timeout, (uint64_t)timeout_ms, 0) == 0 ? 0 : -1;
}

/* -- request buffers ------------------------------------------------------------------------ */

static void s_wipe_free(void *p, size_t len)
{
    if (p != NULL) {
        sodium_memzero(p, len);
        free(p);
    }
}

static void s_headers_clear(struct s_req *r)
{
    for (size_t i = 0; i < r->rh_count; i++) {
        free(r->rh[i].name);
        free(r->rh[i].value);
    }
    free(r->rh);
    r->rh = NULL;
    r->rh_count = 0;
}

static void s_slist_wipe_free(struct curl_slist *l)
{
    for (struct curl_slist *n = l; n != NULL; n = n->next)
        sodium_memzero(n->data, strlen(n->data));
    curl_slist_free_all(l);
}

/* Wipes and frees everything r owns and returns its easy handle to the pool. */
static void s_req_release(struct s_req *r)
{
    struct kb_http *h = r->h;

    s_slist_wipe_free(r->headers);
    s_wipe_free(r->body, r->body_len);
    s_wipe_free(r->resp, r->resp_cap);
    s_headers_clear(r);
    if (r->easy != NULL) {
        if (!h->closing && h->pool_len < S_EASY_POOL) {
            curl_easy_reset(r->easy);
            h->pool[h->pool_len++] = r->easy;
        } else {
            curl_easy_cleanup(r->easy);
        }
    }
    free(r);
}

/* CURLOPT_WRITEFUNCTION: append to the response, growing by doubling. A grown buffer is a fresh
 * allocation; the old one is wiped before it is freed (realloc could leave the bytes behind). */
static size_t s_on_write(char *data, size_t size, size_t n, void *userp)
{
    struct s_req *r = userp;
    size_t len = n, need, cap;
    char *p;

    if (size != 1)
        return 0;
    if (len > r->h->max_response - r->resp_len) {
        r->too_big = true;
        return 0;
    }
    need = r->resp_len + len + 1;
    if (need > r->resp_cap) {
        cap = r->resp_cap ? r->resp_cap : 1024;
        while (cap < need)
            cap *= 2;
        if (cap > r->h->max_response + 1)
            cap = r->h->max_response + 1;
        p = malloc(cap);
        if (p == NULL) {
            r->oom = true;
            return 0;
        }
        if (r->resp_len > 0)
            memcpy(p, r->resp, r->resp_len);
        s_wipe_free(r->resp, r->resp_cap);
        r->resp = p;
        r->resp_cap = cap;
    }
    memcpy(r->resp + r->resp_len, data, len);
    r->resp_len += len;
    r->resp[r->resp_len] = '\0';
    return len;
}

static char *s_strndup_trim(const char *s, size_t len)
{
    char *out;

    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 &&
           (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' || s[len - 1] == '\n'))
        len--;
    out = malloc(len + 1);
    if (out != NULL) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
    return out;
}

/* CURLOPT_HEADERFUNCTION: one header line at a time. A status line starts a new header block
 * (an interim 100 response, for instance), so the previous block is dropped. */
static size_t s_on_header(char *line, size_t size, size_t n, void *userp)
{
    struct s_req *r = userp;
    const char *colon;
    struct kb_http_response_header *grown;

    if (size != 1)
        return 0;
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        s_headers_clear(r);
        return n;
    }
    colon = memchr(line, ':', n);
    if (colon == NULL || colon == line || r->rh_count >= S_MAX_RESPONSE_HEADERS)
        return n;
    grown = realloc(r->rh, (r->rh_count + 1) * sizeof(*grown));
    if (grown == NULL) {
        r->oom = true;
        return 0;
    }
    r->rh = grown;
    grown[r->rh_count].name = s_strndup_trim(line, (size_t)(colon - line));
    grown[r->rh_count].value = s_strndup_trim(colon + 1, n - (size_t)(colon - line) - 1);
    r->rh_count++;
    if (grown[r->rh_count - 1].name == NULL || grown[r->rh_count - 1].value == NULL) {
        r->oom = true;
        return 0;
    }
    return n;
}

/* -- completion ----------------------------------------------------------------------------- */

static int s_map_curl_error(const struct s_req *r, CURLcode rc)
{
    if (r->too_big || rc == CURLE_FILESIZE_EXCEEDED)
        return KB_ETOOBIG;
    if (r->oom || rc == CURLE_OUT_OF_MEMORY)
        return KB_ENOMEM;
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return KB_ETIMEDOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return KB_ETLS;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return KB_EINVAL;
    default:
        /* Resolution, connect, send/receive, resets, truncated replies: the network. */
        return KB_ENET;
    }
}

/* Takes r out of curl, builds its response and calls it back, then releases it. */
static void s_complete(struct kb_http *h, struct s_req *r, CURLcode rc)
{
    struct kb_http_response resp = {0};
    long status = 0, connects = 0;

    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &connects);
    curl_multi_remove_handle(h->multi, r->easy);
    s_req_unlink(&h->reqs, r);
    h->in_flight--;
    h->stats.requests++;
    h->stats.connections_new += (unsigned long)(connects > 0 ? connects : 0);
    resp.err = rc == CURLE_OK && !r->oom ? 0 : s_map_curl_error(r, rc);
    resp.status = status;
    resp.connection_reused = connects == 0 && status > 0;
    if (resp.connection_reused)
        h->stats.reused++;
    resp.body = r->resp != NULL ? r->resp : "";
    resp.body_len = r->resp_len;
    resp.headers = r->rh;
    resp.header_count = r->rh_count;
    resp.error_text = "";
    if (resp.err != 0)
        resp.error_text = r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(rc);
    r->cb(r->ctx, &resp);
    s_req_release(r);
}

static void s_drain(struct kb_http *h)
{
    CURLMsg *m;
    int left = 0;

    /* A callback may close h: stop touching curl then (kb_http_close has taken over). */
    while (!h->closing && (m = curl_multi_info_read(h->multi, &left)) != NULL) {
        char *priv = NULL;
        CURLcode rc = m->data.result;

        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        if (priv != NULL)
            s_complete(h, (struct s_req *)(void *)priv, rc);
    }
}

static void s_action(struct kb_http *h, curl_socket_t fd, int flags)
{
    int running = 0;

    curl_multi_socket_action(h->multi, fd, flags, &running);
    s_drain(h);
}

/* -- starting a request --------------------------------------------------------------------- */

static bool s_header_ok(const struct kb_http_header *hd)
{
    if (hd->name == NULL || hd->value == NULL || hd->name[0] == '\0')
        return false;
    if (strpbrk(hd->name, ":\r\n \t") != NULL || strpbrk(hd->value, "\r\n") != NULL)
        return false;
    return true;
}

/* Appends "name: value" (curl's "name;" form for an empty value) to *list. The temporary line
 * may hold the session token, so it is wiped; curl_slist_append keeps its own copy. */
static int s_append_header(struct curl_slist **list, const char *name, const char *value)
{
    size_t len = strlen(name) + strlen(value) + 3;
    char *line = malloc(len);
    struct curl_slist *l;

    if (line == NULL)
        return KB_ENOMEM;
    if (value[0] == '\0')
        snprintf(line, len, "%s;", name);
    else
        snprintf(line, len, "%s: %s", name, value);
    l = curl_slist_append(*list, line);
    s_wipe_free(line, len);
    if (l == NULL)
        return KB_ENOMEM;
    *list = l;
    return 0;
}

static int s_append_line(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);

    if (l == NULL)
        return KB_ENOMEM;
    *list = l;
    return 0;
}

/* The header list: the caller's, then suppressions of curl's own Expect: 100-continue (a
 * round trip for nothing) and, when there is a body without a Content-Type, of curl's default
 * form type. */
static int s_build_headers(struct s_req *r, const struct kb_http_request *req)
{
    bool has_type = false, has_expect = false;
    int rc = 0;

    for (size_t i = 0; i < req->header_count && rc == 0; i++) {
        const struct kb_http_header *hd = &req->headers[i];

        if (!s_header_ok(hd))
            return KB_EINVAL;
        has_type = has_type || strcasecmp(hd->name, "Content-Type") == 0;
        has_expect = has_expect || strcasecmp(hd->name, "Expect") == 0;
        rc = s_append_header(&r->headers, hd->name, hd->value);
    }
    /* "Name:" (nothing after the colon) tells curl not to send a header it would add. */
    if (rc == 0 && !has_expect)
        rc = s_append_line(&r->headers, "Expect:");
    if (rc == 0 && !has_type && r->body != NULL)
        rc = s_append_line(&r->headers, "Content-Type:");
    return rc;
}

static int s_set_method(struct s_req *r, const char *method)
{
    CURL *e = r->easy;
    bool body = r->body != NULL;
    CURLcode rc = CURLE_OK;

    if (strcmp(method, "GET") == 0 && !body)
        return curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK ? 0 : KB_EINVAL;
    if (strcmp(method, "HEAD") == 0 && !body)
        return curl_easy_setopt(e, CURLOPT_NOBODY, 1L) == CURLE_OK ? 0 : KB_EINVAL;
    if (strcmp(method, "POST") != 0)
        rc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (rc == CURLE_OK && body) {
        rc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
    }
    return rc == CURLE_OK ? 0 : KB_EINVAL;
}

/* Options every request gets. */
static int s_set_options(struct s_req *r, const struct kb_http_request *req)
{
    struct kb_http *h = r->h;
    CURL *e = r->easy;
    long total = req->timeout_ms > 0 ? req->timeout_ms : h->total_timeout_ms;
    CURLcode rc = CURLE_OK;

#define S_OPT(opt, val)                                                                            \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    S_OPT(CURLOPT_URL, req->url);
    S_OPT(CURLOPT_PRIVATE, (void *)r);
    S_OPT(CURLOPT_ERRORBUFFER, r->errbuf);
    S_OPT(CURLOPT_NOSIGNAL, 1L);
    S_OPT(CURLOPT_PROTOCOLS_STR, "http,https");
    S_OPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    S_OPT(CURLOPT_FOLLOWLOCATION, 0L);
    S_OPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    S_OPT(CURLOPT_SSL_VERIFYPEER, 1L);
    S_OPT(CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->ca_bundle != NULL)
        S_OPT(CURLOPT_CAINFO, h->ca_bundle);
    S_OPT(CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
    S_OPT(CURLOPT_TIMEOUT_MS, total);
    S_OPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->max_response);
    S_OPT(CURLOPT_USERAGENT, S_USER_AGENT);
    S_OPT(CURLOPT_TCP_KEEPALIVE, 1L);
    S_OPT(CURLOPT_WRITEFUNCTION, s_on_write);
    S_OPT(CURLOPT_WRITEDATA, (void *)r);
    S_OPT(CURLOPT_HEADERFUNCTION, s_on_header);
    S_OPT(CURLOPT_HEADERDATA, (void *)r);
    S_OPT(CURLOPT_HTTPHEADER, r->headers);
#undef S_OPT
    if (rc != CURLE_OK)
        return rc == CURLE_OUT_OF_MEMORY ? KB_ENOMEM : KB_EINVAL;
    return s_set_method(r, req->method);
}

static bool s_request_ok(const struct kb_http_request *req)
{
    static const char *const methods[] = {"GET", "PUT", "POST", "DELETE", "HEAD", "PATCH"};
    bool known = false;

    if (req->method == NULL || req->url == NULL || (req->body == NULL && req->body_len > 0))
        return false;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        known = known || strcmp(req->method, methods[i]) == 0;
    if (!known)
        return false;
    return strncmp(req->url, "http://", 7) == 0 || strncmp(req->url, "https://", 8) == 0;
}

int kb_http_send(struct kb_http *h, const struct kb_http_request *req, kb_http_cb cb, void *ctx)
{
    struct s_req *r = NULL;
    int rc;

    if (h == NULL || req == NULL || cb == NULL || !s_request_ok(req))
        return KB_EINVAL;
    if (h->closing)
        return KB_ECANCELED;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return KB_ENOMEM;
    r->h = h;
    r->cb = cb;
    r->ctx = ctx;
    r->easy = h->pool_len > 0 ? h->pool[--h->pool_len] : curl_easy_init();
    rc = r->easy != NULL ? 0 : KB_ENOMEM;
    /* PUT and POST always carry a body (Content-Length: 0 when empty); S3 insists on it. */
    if (rc == 0 && (req->body_len > 0 || strcmp(req->method, "PUT") == 0 ||
                    strcmp(req->method, "POST") == 0)) {
        r->body_len = req->body_len;
        r->body = malloc(req->body_len > 0 ? req->body_len : 1);
        if (r->body == NULL)
            rc = KB_ENOMEM;
        else if (req->body_len > 0)
            memcpy(r->body, req->body, req->body_len);
    }
    if (rc == 0)
        rc = s_build_headers(r, req);
    if (rc == 0)
        rc = s_set_options(r, req);
    if (rc == 0 && curl_multi_add_handle(h->multi, r->easy) != CURLM_OK)
        rc = KB_ENOMEM;
    if (rc != 0)
        goto cleanup;
    s_req_link(&h->reqs, r);
    h->in_flight++;
    return 0;
cleanup:
    s_req_release(r);
    return rc;
}

/* -- the client ----------------------------------------------------------------------------- */

int kb_http_new(uv_loop_t *loop, const struct kb_http_options *opts, struct kb_http **out)
{
    struct kb_http *h = NULL;
    int rc = KB_ENOMEM;

    if (loop == NULL || out == NULL)
        return KB_EINVAL;
    /* Best effort here: main() installs it before OpenSSL's first allocation. */
    (void)kb_wipealloc_install();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return KB_ENET;
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        goto cleanup;
    h->loop = loop;
    h->connect_timeout_ms = S_DEFAULT_CONNECT_MS;
    h->total_timeout_ms = S_DEFAULT_TOTAL_MS;
    h->max_response = S_DEFAULT_MAX_RESPONSE;
    h->max_connections = S_DEFAULT_MAX_CONNECTIONS;
    if (opts != NULL) {
        h->connect_timeout_ms =
            opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : h->connect_timeout_ms;
        h->total_timeout_ms =
            opts->total_timeout_ms > 0 ? opts->total_timeout_ms : h->total_timeout_ms;
        h->max_response = opts->max_response > 0 ? opts->max_response : h->max_response;
        h->max_connections = opts->max_connections > 0 ? opts->max_connections : h->max_connections;
        if (opts->ca_bundle != NULL && opts->ca_bundle[0] != '\0') {
            h->ca_bundle = strdup(opts->ca_bundle);
            if (h->ca_bundle == NULL)
                goto cleanup;
        }
    }
    h->multi = curl_multi_init();
    if (h->multi == NULL) {
        rc = KB_ENET;
        goto cleanup;
    }
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, s_on_curl_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, (void *)h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, s_on_curl_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, (void *)h);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, h->max_connections);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, h->max_connections);
    uv_timer_init(loop, &h->timer);
    h->open_handles = 1;
    *out = h;
    return 0;
cleanup:
    if (h != NULL)
        free(h->ca_bundle);
    free(h);
    curl_global_cleanup();
    return rc;
}

const char *kb_http_response_header(const struct kb_http_response *resp, const char *name)
{
    if (resp == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < resp->header_count; i++) {
        if (strcasecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    }
    return NULL;
}

size_t kb_http_in_flight(const struct kb_http *h)
{
    return h != NULL ? h->in_flight : 0;
}

void kb_http_stats(const struct kb_http *h, struct kb_http_stats *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof(*out));
    if (h != NULL)
        *out = h->stats;
}

/* Runs once every libuv handle is closed: the canceled requests are called back (this is on
 * the loop, so never from inside kb_http_close), then h goes. */
static void s_finalize(struct kb_http *h)
{
    kb_http_closed_cb closed = h->closed;
    void *closed_ctx = h->closed_ctx;
    struct s_req *r;

    while ((r = h->canceled) != NULL) {
        struct kb_http_response resp = {.err = KB_ECANCELED, .body = "", .error_text = "canceled"};

        s_req_unlink(&h->canceled, r);
        h->in_flight--;
        h->stats.requests++;
        r->cb(r->ctx, &resp);
        s_req_release(r);
    }
    for (size_t i = 0; i < h->pool_len; i++)
        curl_easy_cleanup(h->pool[i]);
    free(h->ca_bundle);
    free(h);
    curl_global_cleanup();
    if (closed != NULL)
        closed(closed_ctx);
}

void kb_http_close(struct kb_http *h, kb_http_closed_cb closed, void *ctx)
{
    struct s_req *r;

    if (h == NULL || h->closing)
        return;
    h->closing = true;
    h->closed = closed;
    h->closed_ctx = ctx;
    while ((r = h->reqs) != NULL) {
        curl_multi_remove_handle(h->multi, r->easy);
        s_req_unlink(&h->reqs, r);
        s_req_link(&h->canceled, r);
    }
    /* Closing the multi closes its pooled connections; curl tells s_on_curl_socket to drop
     * their sockets. Whatever it did not mention is closed here. */
    curl_multi_cleanup(h->multi);
    h->multi = NULL;
    for (struct s_sock *s = h->socks; s != NULL; s = s->next)
        s_sock_close(s);
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, s_on_timer_closed);
}
