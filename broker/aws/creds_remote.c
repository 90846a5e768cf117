/*
 * creds_remote.c - credentials from the container agent (ECS, EKS Pod Identity) and from the EC2
 * instance metadata service (IMDSv2), fetched with kb_http.
 *
 * Every request is marked sensitive, so kb_http wipes its response buffer; the IMDS session token
 * and the container authorization token live in kb_secrets and are opened only while a request
 * is handed to kb_http (which copies its headers). Plain http is allowed for the container
 * endpoint only towards loopback and the link-local agents, as the SDKs do: credentials must not
 * cross a network in clear text.
 *
 * This module must never log, and never put a response body, a token or a URL path (the
 * container's relative URI identifies the task) into a reason.
 */
#include "aws/creds_internal.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/err.h"

#define S_IMDS_TOKEN_TTL 21600 /* seconds: six hours, the most IMDS grants */
#define S_MAX_AUTH_TOKEN 16384

enum s_step {
    S_CONTAINER,
    S_IMDS_TOKEN,
    S_IMDS_ROLE,
    S_IMDS_CREDS,
};

static const char *const s_step_name[] = {
    [S_CONTAINER] = "container endpoint",
    [S_IMDS_TOKEN] = "IMDS token request",
    [S_IMDS_ROLE] = "IMDS role request",
    [S_IMDS_CREDS] = "IMDS credentials request",
};

struct kb_creds_fetch {
    struct kb_http *http;
    kb_creds_done_cb cb;
    void *ctx;
    bool canceled;
    enum s_step step;
    struct kb_creds_imds *imds; /* IMDS only */
    bool token_reused;          /* a 401 then fetches a new token, once */
    char role[129];
};

/* ---- the container URI allow-list ---- */

static bool s_host_allowed(const char *host)
{
    unsigned char a4[4], a6[16];
    static const unsigned char eks6[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0,
                                           0,    0,    0,    0,    0, 0, 0, 0x23};
    char inner[64];
    size_t len = strlen(host);

    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, a4) == 1)
        return a4[0] == 127 ||
               (a4[0] == 169 && a4[1] == 254 && a4[2] == 170 && (a4[3] == 2 || a4[3] == 23));
    if (len < 3 || len - 2 >= sizeof(inner) || host[0] != '[' || host[len - 1] != ']')
        return false;
    memcpy(inner, host + 1, len - 2);
    inner[len - 2] = '\0';
    if (inet_pton(AF_INET6, inner, a6) != 1)
        return false;
    return memcmp(a6, &in6addr_loopback, sizeof(a6)) == 0 || memcmp(a6, eks6, sizeof(a6)) == 0;
}

bool kb_creds_container_uri_allowed(const char *uri, char *why, size_t whylen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    bool ok = false;

    if (u == NULL) {
        snprintf(why, whylen, "out of memory");
        return false;
    }
    if (curl_url_set(u, CURLUPART_URL, uri, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(why, whylen, "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a valid absolute URL");
        goto cleanup;
    }
    if (strcasecmp(scheme, "https") == 0) {
        ok = true;
    } else if (strcasecmp(scheme, "http") != 0) {
        snprintf(why, whylen, "AWS_CONTAINER_CREDENTIALS_FULL_URI must be http or https");
    } else if (s_host_allowed(host)) {
        ok = true;
    } else {
        snprintf(why, whylen,
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI refused: http to host %.64s, which is not "
                 "loopback or the ECS/EKS agent (use https)",
                 host);
    }
cleanup:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* ---- common ---- */

static void s_finish(struct kb_creds_fetch *f, int rc, struct kb_credentials *creds,
                     const char *why)
{
    f->cb(f->ctx, rc, rc == 0 ? creds : NULL, why);
    if (creds != NULL)
        kb_credentials_cleanup(creds);
    free(f);
}

/* Turns a transport failure or an unexpected status into a reason. Returns 0 for a 200. */
static int s_check(struct kb_creds_fetch *f, const struct kb_http_response *resp, char *why,
                   size_t whylen)
{
    if (f->canceled) {
        snprintf(why, whylen, "canceled");
        return KB_ECANCELED;
    }
    if (resp->err != 0) {
        snprintf(why, whylen, "%s failed: %s (%s)", s_step_name[f->step], kb_strerror(resp->err),
                 resp->error_text != NULL ? resp->error_text : "");
        return resp->err;
    }
    if (resp->status != 200) {
        snprintf(why, whylen, "%s: HTTP %ld", s_step_name[f->step], resp->status);
        return KB_ENOCREDS;
    }
    return 0;
}

void kb_creds_fetch_cancel(struct kb_creds_fetch *f)
{
    f->canceled = true;
}

void kb_creds_imds_cleanup(struct kb_creds_imds *imds)
{
    kb_secret_destroy(imds->token);
    imds->token = NULL;
    imds->token_expiry = 0;
}

/* ---- container ---- */

/* Reads the authorization token file (EKS rotates it, so it is read for every fetch). */
static int s_read_token_file(const char *path, struct kb_secret **out, char *why, size_t whylen)
{
    char buf[S_MAX_AUTH_TOKEN + 1];
    size_t len = 0;
    int fd, rc = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        snprintf(why, whylen, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: %s",
                 kb_strerror(rc));
        return rc;
    }
    while (len < sizeof(buf)) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : 0;
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    while (len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\t' || buf[len - 1] == '\r' ||
                       buf[len - 1] == '\n'))
        len--;
    if (rc == 0 && (len == 0 || len >= sizeof(buf) || memchr(buf, '\n', len) != NULL ||
                    memchr(buf, '\r', len) != NULL))
        rc = KB_EPARSE;
    if (rc == 0) {
        *out = kb_secret_new(buf, len);
        rc = *out != NULL ? 0 : KB_ENOMEM;
    }
    if (rc != 0)
        snprintf(why, whylen, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: %s", kb_strerror(rc));
    sodium_memzero(buf, sizeof(buf));
    return rc;
}

static void on_container_response(void *ctx, const struct kb_http_response *resp)
{
    struct kb_creds_fetch *f = ctx;
    struct kb_credentials creds;
    char why[KB_CREDS_WHY_LEN], doc_why[KB_CREDS_WHY_LEN - 64];
    int rc;

    memset(&creds, 0, sizeof(creds));
    rc = s_check(f, resp, why, sizeof(why));
    if (rc == 0) {
        rc = kb_creds_doc_parse(KB_CREDS_DOC_CONTAINER, resp->body, resp->body_len, &creds, doc_why,
                                sizeof(doc_why));
        if (rc != 0)
            snprintf(why, sizeof(why), "container endpoint response: %s", doc_why);
    }
    s_finish(f, rc, &creds, why);
}

int kb_creds_container_fetch(struct kb_http *http, const struct kb_creds_container_cfg *cfg,
                             kb_creds_done_cb cb, void *ctx, struct kb_creds_fetch **out, char *why,
                             size_t whylen)
{
    struct kb_secret *file_token = NULL, *token = cfg->auth_token;
    struct kb_http_header hdr = {"Authorization", NULL};
    struct kb_http_request req = {
        .method = "GET", .url = cfg->url, .timeout_ms = cfg->timeout_ms, .sensitive = true};
    struct kb_creds_fetch *f = NULL;
    int rc = 0;

    if (cfg->auth_token_file != NULL) {
        rc = s_read_token_file(cfg->auth_token_file, &file_token, why, whylen);
        if (rc != 0)
            return rc;
        token = file_token;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        rc = KB_ENOMEM;
        goto cleanup;
    }
    f->http = http;
    f->cb = cb;
    f->ctx = ctx;
    f->step = S_CONTAINER;
    if (token != NULL) {
        hdr.value = kb_secret_open(token, NULL);
        req.headers = &hdr;
        req.header_count = 1;
    }
    rc = kb_http_send(http, &req, on_container_response, f);
    if (token != NULL)
        kb_secret_close(token);
    if (rc == 0) {
        *out = f;
        f = NULL;
    }
cleanup:
    if (rc != 0)
        snprintf(why, whylen, "container endpoint request not sent: %s", kb_strerror(rc));
    free(f);
    kb_secret_destroy(file_token);
    return rc;
}

/* ---- IMDSv2 ---- */

static int s_imds_send(struct kb_creds_fetch *f);
static void on_imds_response(void *ctx, const struct kb_http_response *resp);

/* Keeps the session token from a token response. */
static int s_imds_keep_token(struct kb_creds_fetch *f, const struct kb_http_response *resp,
                             char *why, size_t whylen)
{
    size_t len = resp->body_len;

    while (len > 0 && (resp->body[len - 1] == '\n' || resp->body[len - 1] == '\r'))
        len--;
    if (len == 0 || len > 4096) {
        snprintf(why, whylen, "IMDS token response is empty or too long");
        return KB_EPARSE;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)resp->body[i];
        if (ch <= 0x20 || ch >= 0x7f) {
            snprintf(why, whylen, "IMDS token response is malformed");
            return KB_EPARSE;
        }
    }
    kb_creds_imds_cleanup(f->imds);
    f->imds->token = kb_secret_new(resp->body, len);
    if (f->imds->token == NULL) {
        snprintf(why, whylen, "out of memory");
        return KB_ENOMEM;
    }
    f->imds->token_expiry = time(NULL) + S_IMDS_TOKEN_TTL;
    return 0;
}

/* Keeps the role name (the first line of the listing) after checking IAM's role name rules. */
static int s_imds_keep_role(struct kb_creds_fetch *f, const struct kb_http_response *resp,
                            char *why, size_t whylen)
{
    size_t n = 0;

    while (n < resp->body_len && resp->body[n] != '\n' && resp->body[n] != '\r')
        n++;
    if (n == 0 || n >= sizeof(f->role)) {
        snprintf(why, whylen, "IMDS lists no IAM role (no instance profile attached?)");
        return KB_ENOCREDS;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = resp->body[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              strchr("+=,.@_-", ch) != NULL)) {
            snprintf(why, whylen, "IMDS role name is malformed");
            return KB_EPARSE;
        }
    }
    memcpy(f->role, resp->body, n);
    f->role[n] = '\0';
    return 0;
}

/* Handles one 200 response; moves to the next step or fills creds. */
static int s_imds_advance(struct kb_creds_fetch *f, const struct kb_http_response *resp,
                          struct kb_credentials *creds, bool *done, char *why, size_t whylen)
{
    char doc_why[KB_CREDS_WHY_LEN - 64];
    int rc;

    *done = false;
    switch (f->step) {
    case S_IMDS_TOKEN:
        rc = s_imds_keep_token(f, resp, why, whylen);
        f->step = S_IMDS_ROLE;
        break;
    case S_IMDS_ROLE:
        rc = s_imds_keep_role(f, resp, why, whylen);
        f->step = S_IMDS_CREDS;
        break;
    default:
        *done = true;
        rc = kb_creds_doc_parse(KB_CREDS_DOC_IMDS, resp->body, resp->body_len, creds, doc_why,
                                sizeof(doc_why));
        if (rc != 0)
            snprintf(why, whylen, "IMDS credentials: %s", doc_why);
        return rc;
    }
    if (rc == 0)
        rc = s_imds_send(f);
    *done = rc != 0;
    return rc;
}

static void on_imds_response(void *ctx, const struct kb_http_response *resp)
{
    struct kb_creds_fetch *f = ctx;
    struct kb_credentials creds;
    char why[KB_CREDS_WHY_LEN];
    bool done = true;
    int rc;

    memset(&creds, 0, sizeof(creds));
    why[0] = '\0';
    rc = s_check(f, resp, why, sizeof(why));
    if (rc != 0 && !f->canceled && resp->err == 0 && resp->status == 401 &&
        f->step != S_IMDS_TOKEN && f->token_reused) {
        /* The cached token was refused (IMDS restarted, clock jumped): fetch a new one once. */
        f->token_reused = false;
        kb_creds_imds_cleanup(f->imds);
        f->step = S_IMDS_TOKEN;
        rc = s_imds_send(f);
        done = rc != 0;
    } else if (rc == 0) {
        rc = s_imds_advance(f, resp, &creds, &done, why, sizeof(why));
    }
    if (rc != 0 && why[0] == '\0')
        snprintf(why, sizeof(why), "%s not sent: %s", s_step_name[f->step], kb_strerror(rc));
    if (done)
        s_finish(f, rc, &creds, why);
}

static int s_imds_send(struct kb_creds_fetch *f)
{
    struct kb_creds_imds *imds = f->imds;
    struct kb_http_header hdr;
    struct kb_http_request req = {.url = NULL,
                                  .headers = &hdr,
                                  .header_count = 1,
                                  .timeout_ms = imds->timeout_ms,
                                  .sensitive = true};
    char url[512], ttl[16];
    int rc;

    if (f->step == S_IMDS_TOKEN) {
        snprintf(ttl, sizeof(ttl), "%d", S_IMDS_TOKEN_TTL);
        snprintf(url, sizeof(url), "%s/latest/api/token", imds->endpoint);
        hdr.name = "X-aws-ec2-metadata-token-ttl-seconds";
        hdr.value = ttl;
        req.method = "PUT";
    } else {
        snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/%s",
                 imds->endpoint, f->step == S_IMDS_CREDS ? f->role : "");
        hdr.name = "X-aws-ec2-metadata-token";
        hdr.value = kb_secret_open(imds->token, NULL);
        req.method = "GET";
    }
    req.url = url;
    rc = kb_http_send(f->http, &req, on_imds_response, f);
    if (f->step != S_IMDS_TOKEN)
        kb_secret_close(imds->token);
    return rc;
}

int kb_creds_imds_fetch(struct kb_http *http, struct kb_creds_imds *imds, kb_creds_done_cb cb,
                        void *ctx, struct kb_creds_fetch **out)
{
    struct kb_creds_fetch *f = calloc(1, sizeof(*f));
    int rc;

    if (f == NULL)
        return KB_ENOMEM;
    f->http = http;
    f->cb = cb;
    f->ctx = ctx;
    f->imds = imds;
    /* Reuse the session token while it has more than the refresh margin to live. */
    f->token_reused =
        imds->token != NULL && imds->token_expiry - time(NULL) > KB_CREDS_REFRESH_AHEAD;
    f->step = f->token_reused ? S_IMDS_ROLE : S_IMDS_TOKEN;
    rc = s_imds_send(f);
    if (rc != 0) {
        free(f);
        return rc;
    }
    *out = f;
    return 0;
}
