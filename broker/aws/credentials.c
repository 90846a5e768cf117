/*
 * credentials.c - the provider chain of credentials.h: explicit config, environment, shared
 * profile (static keys or credential_process), container endpoint, EC2 IMDSv2.
 *
 * One run of the chain at a time: callers that arrive while it runs wait for its result, and a
 * result is cached until fewer than five minutes remain before it expires. Results reach callers
 * only from the `wake` timer's callback, never from inside kb_creds_get(). The chain is
 * reference counted (its owner, its timer handle and each operation in flight hold a reference),
 * so kb_creds_chain_destroy() may run at any time, even from a callback: pending callers get
 * KB_ECANCELED and the memory goes once the last operation has called back.
 *
 * This module must never log, and never put a secret, a token or a process's output into a
 * failure message: the message only says, provider by provider, why each yielded nothing.
 */
#include "aws/credentials.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/creds_internal.h"
#include "common/container.h"
#include "common/err.h"

#define S_CONTAINER_HOST       "http://169.254.170.2"
#define S_CONTAINER_TIMEOUT_MS 2000
#define S_IMDS_ENDPOINT        "http://169.254.169.254"
#define S_IMDS_ENDPOINT_V6     "http://[fd00:ec2::254]"

enum s_provider { S_CONFIG, S_ENV, S_PROFILE, S_CONTAINER, S_IMDS, S_PROVIDER_COUNT };
enum s_outcome { S_NEXT, S_YIELD, S_PENDING };

struct s_waiter {
    kb_creds_cb cb;
    void *ctx;
    struct s_waiter *next;
};

struct kb_creds_chain {
    uv_loop_t *loop;
    struct kb_http *http;
    uv_timer_t wake; /* starts runs and hands results to waiters, always from the loop */
    unsigned refs;   /* the owner, the wake timer, the operation in flight */
    bool closing;
    bool wake_closed;

    /* Settings, fixed by kb_creds_chain_new. A credentials value is set when its secret is. */
    struct kb_credentials explicit_creds;
    struct kb_credentials env_creds;
    char env_why[KB_CREDS_WHY_LEN];
    char *profile;
    char *credentials_path; /* NULL when neither the variable nor HOME gives one */
    char *config_path;
    char *container_url; /* NULL: container_why says why the provider is skipped */
    char container_why[KB_CREDS_WHY_LEN];
    struct kb_secret *container_token;
    char *container_token_file;
    char imds_why[KB_CREDS_WHY_LEN]; /* non-empty: IMDS is skipped for this reason */
    struct kb_creds_imds imds;
    long process_timeout_ms;

    /* State. */
    struct kb_credentials cached;
    struct kb_credentials found; /* what the running provider yielded */
    struct s_waiter *pending;
    struct s_waiter **pending_tail;
    bool running;   /* asked for or in progress: later callers wait for its result */
    bool start_run; /* asked for: the next wake starts it */
    enum s_provider step;
    int result;
    char message[2560];
    size_t message_len;
    struct kb_creds_process *process;
    struct kb_creds_fetch *fetch;
};

/* ---- credentials values ---- */

int kb_credentials_copy(struct kb_credentials *dst, const struct kb_credentials *src)
{
    memset(dst, 0, sizeof(*dst));
    memcpy(dst->access_key_id, src->access_key_id, sizeof(dst->access_key_id));
    memcpy(dst->source, src->source, sizeof(dst->source));
    dst->expiration = src->expiration;
    if (src->secret_access_key != NULL) {
        dst->secret_access_key = kb_secret_dup(src->secret_access_key);
        if (dst->secret_access_key == NULL)
            goto fail;
    }
    if (src->session_token != NULL) {
        dst->session_token = kb_secret_dup(src->session_token);
        if (dst->session_token == NULL)
            goto fail;
    }
    return 0;
fail:
    kb_credentials_cleanup(dst);
    return KB_ENOMEM;
}

void kb_credentials_cleanup(struct kb_credentials *c)
{
    if (c == NULL)
        return;
    kb_secret_destroy(c->secret_access_key);
    kb_secret_destroy(c->session_token);
    memset(c, 0, sizeof(*c));
}

/* ---- lifetime ---- */

static void s_free(struct kb_creds_chain *c)
{
    while (c->pending != NULL) {
        struct s_waiter *w = c->pending;
        c->pending = w->next;
        free(w);
    }
    kb_credentials_cleanup(&c->explicit_creds);
    kb_credentials_cleanup(&c->env_creds);
    kb_credentials_cleanup(&c->cached);
    kb_credentials_cleanup(&c->found);
    kb_secret_destroy(c->container_token);
    kb_creds_imds_cleanup(&c->imds);
    free(c->profile);
    free(c->credentials_path);
    free(c->config_path);
    free(c->container_url);
    free(c->container_token_file);
    free(c);
}

static void s_unref(struct kb_creds_chain *c)
{
    if (--c->refs == 0)
        s_free(c);
}

static void on_wake_closed(uv_handle_t *h)
{
    s_unref(h->data);
}

static void on_wake(uv_timer_t *t);

/* Makes sure pending waiters will be called back, or closes the timer once closing and idle. */
static void s_wake_later(struct kb_creds_chain *c)
{
    if (c->wake_closed)
        return;
    if (c->pending != NULL) {
        if (!uv_is_active((uv_handle_t *)&c->wake))
            uv_timer_start(&c->wake, on_wake, 0, 0);
    } else if (c->closing) {
        c->wake_closed = true;
        uv_close((uv_handle_t *)&c->wake, on_wake_closed);
    }
}

static void s_run_continue(struct kb_creds_chain *c);

/* The timer's callback: starts a run that kb_creds_get asked for, or hands the result to every
 * waiter. A run never starts, and a result never changes, inside kb_creds_get or inside a
 * callback: so what a callback borrows stays valid until it returns, whatever it calls. */
static void on_wake(uv_timer_t *t)
{
    struct kb_creds_chain *c = container_of(t, struct kb_creds_chain, wake);
    struct s_waiter *list = c->pending;

    if (!c->closing && c->start_run) {
        c->start_run = false;
        c->step = S_CONFIG;
        c->message_len = 0;
        c->message[0] = '\0';
        s_run_continue(c); /* when it finishes, s_run_finish wakes us again */
        return;
    }
    if (!c->closing && c->running)
        return;
    /* Callbacks may call kb_creds_get (new waiters queue up for the next wake) or destroy the
     * chain (the rest of this list is then canceled; the timer's reference keeps c alive). */
    c->pending = NULL;
    c->pending_tail = &c->pending;
    while (list != NULL) {
        struct s_waiter *w = list;
        list = w->next;
        if (c->closing)
            w->cb(w->ctx, KB_ECANCELED, NULL, "credentials chain destroyed");
        else if (c->result == 0)
            w->cb(w->ctx, 0, &c->cached, NULL);
        else
            w->cb(w->ctx, c->result, NULL, c->message);
        free(w);
    }
    if (c->closing)
        s_wake_later(c);
}

/* ---- the run ---- */

/* Appends "<what>: <why>" to the failure message. */
__attribute__((format(printf, 2, 3))) static void s_note(struct kb_creds_chain *c, const char *fmt,
                                                         ...)
{
    size_t room = sizeof(c->message) - c->message_len;
    va_list ap;
    int n;

    if (room <= 1)
        return;
    if (c->message_len > 0) {
        n = snprintf(c->message + c->message_len, room, "; ");
        c->message_len += (size_t)n < room ? (size_t)n : room - 1;
        room = sizeof(c->message) - c->message_len;
    }
    va_start(ap, fmt);
    n = vsnprintf(c->message + c->message_len, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        c->message_len += (size_t)n < room ? (size_t)n : room - 1;
}

static void s_run_finish(struct kb_creds_chain *c, int rc)
{
    c->running = false;
    if (rc == 0) {
        kb_credentials_cleanup(&c->cached);
        c->cached = c->found;
        memset(&c->found, 0, sizeof(c->found));
        c->result = 0;
    } else if (c->cached.secret_access_key != NULL && c->cached.expiration > time(NULL)) {
        /* The refresh failed but what we hold has not expired yet: serve it until it does. */
        c->result = 0;
    } else {
        c->result = rc;
    }
    s_wake_later(c);
}

/* The end of an asynchronous provider (credential_process, container, IMDS). */
static void on_provider_done(void *ctx, int err, struct kb_credentials *creds, const char *why)
{
    struct kb_creds_chain *c = ctx;

    c->process = NULL;
    c->fetch = NULL;
    if (c->closing) {
        s_unref(c);
        return;
    }
    if (err == 0) {
        c->found = *creds;
        memset(creds, 0, sizeof(*creds));
        s_run_finish(c, 0);
    } else {
        if (c->step == S_PROFILE)
            s_note(c, "profile \"%s\": %s", c->profile, why);
        else
            s_note(c, "%s: %s", c->step == S_CONTAINER ? "container" : "imds", why);
        c->step++;
        s_run_continue(c);
    }
    s_unref(c);
}

static enum s_outcome s_yield_copy(struct kb_creds_chain *c, const struct kb_credentials *src,
                                   const char *what)
{
    if (kb_credentials_copy(&c->found, src) != 0) {
        s_note(c, "%s: out of memory", what);
        return S_NEXT;
    }
    return S_YIELD;
}

static enum s_outcome s_provider_config(struct kb_creds_chain *c)
{
    if (c->explicit_creds.secret_access_key != NULL)
        return s_yield_copy(c, &c->explicit_creds, "config");
    s_note(c, "config: no explicit credentials");
    return S_NEXT;
}

static enum s_outcome s_provider_env(struct kb_creds_chain *c)
{
    if (c->env_creds.secret_access_key != NULL)
        return s_yield_copy(c, &c->env_creds, "environment");
    s_note(c, "environment: %s", c->env_why);
    return S_NEXT;
}

/* Static keys of a profile. */
static enum s_outcome s_profile_keys(struct kb_creds_chain *c, struct kb_creds_profile *p)
{
    size_t secret_len, token_len = 0;
    const char *secret = kb_secret_open(p->secret_access_key, &secret_len);
    const char *token =
        p->session_token != NULL ? kb_secret_open(p->session_token, &token_len) : NULL;
    char why[KB_CREDS_WHY_LEN];
    int rc;

    rc = kb_creds_fill(&c->found, p->access_key_id, secret, secret_len, token, token_len, 0,
                       "profile", why, sizeof(why));
    kb_secret_close(p->secret_access_key);
    if (p->session_token != NULL)
        kb_secret_close(p->session_token);
    if (rc == 0)
        return S_YIELD;
    s_note(c, "profile \"%s\": %s", c->profile, why);
    return S_NEXT;
}

/* Says why a loaded profile yields nothing, or starts its credential_process. */
static enum s_outcome s_profile_use(struct kb_creds_chain *c, struct kb_creds_profile *p)
{
    bool has_id = p->access_key_id != NULL, has_secret = p->secret_access_key != NULL;
    int rc;

    if (has_id && has_secret)
        return s_profile_keys(c, p);
    if (p->credential_process != NULL) {
        rc = kb_creds_process_start(c->loop, p->credential_process, c->process_timeout_ms,
                                    on_provider_done, c, &c->process);
        if (rc == 0) {
            c->refs++;
            return S_PENDING;
        }
        s_note(c, "profile \"%s\": credential_process could not start: %s", c->profile,
               kb_strerror(rc));
    } else if (has_id != has_secret) {
        s_note(c, "profile \"%s\": %s is set but %s is not", c->profile,
               has_id ? "aws_access_key_id" : "aws_secret_access_key",
               has_id ? "aws_secret_access_key" : "aws_access_key_id");
    } else if (!p->found) {
        s_note(c, "profile \"%s\": not found in %s or %s", c->profile,
               c->credentials_path != NULL ? c->credentials_path : "(no credentials file)",
               c->config_path != NULL ? c->config_path : "(no config file)");
    } else if (p->role_arn || p->sso) {
        s_note(c, "profile \"%s\": %s is not supported", c->profile,
               p->role_arn ? "role_arn (assuming a role)" : "SSO");
    } else {
        s_note(c,
               "profile \"%s\": no aws_access_key_id/aws_secret_access_key or "
               "credential_process",
               c->profile);
    }
    return S_NEXT;
}

static enum s_outcome s_provider_profile(struct kb_creds_chain *c)
{
    struct kb_creds_profile p;
    char why[KB_CREDS_WHY_LEN];
    enum s_outcome out;
    int rc;

    if (c->credentials_path == NULL && c->config_path == NULL) {
        s_note(c,
               "profile \"%s\": HOME is not set and neither is AWS_SHARED_CREDENTIALS_FILE "
               "or AWS_CONFIG_FILE",
               c->profile);
        return S_NEXT;
    }
    rc = kb_creds_profile_load(c->profile, c->credentials_path, c->config_path, &p, why,
                               sizeof(why));
    if (rc != 0) {
        s_note(c, "profile \"%s\": %s", c->profile, why);
        return S_NEXT;
    }
    out = s_profile_use(c, &p);
    kb_creds_profile_cleanup(&p);
    return out;
}

static enum s_outcome s_provider_container(struct kb_creds_chain *c)
{
    struct kb_creds_container_cfg cfg = {c->container_url, c->container_token,
                                         c->container_token_file, S_CONTAINER_TIMEOUT_MS};
    char why[KB_CREDS_WHY_LEN];

    if (c->container_url == NULL) {
        s_note(c, "container: %s", c->container_why);
        return S_NEXT;
    }
    if (kb_creds_container_fetch(c->http, &cfg, on_provider_done, c, &c->fetch, why, sizeof(why)) !=
        0) {
        s_note(c, "container: %s", why);
        return S_NEXT;
    }
    c->refs++;
    return S_PENDING;
}

static enum s_outcome s_provider_imds(struct kb_creds_chain *c)
{
    int rc;

    if (c->imds_why[0] != '\0') {
        s_note(c, "imds: %s", c->imds_why);
        return S_NEXT;
    }
    rc = kb_creds_imds_fetch(c->http, &c->imds, on_provider_done, c, &c->fetch);
    if (rc != 0) {
        s_note(c, "imds: request not sent: %s", kb_strerror(rc));
        return S_NEXT;
    }
    c->refs++;
    return S_PENDING;
}

static enum s_outcome (*const s_providers[S_PROVIDER_COUNT])(struct kb_creds_chain *) = {
    [S_CONFIG] = s_provider_config,   [S_ENV] = s_provider_env,
    [S_PROFILE] = s_provider_profile, [S_CONTAINER] = s_provider_container,
    [S_IMDS] = s_provider_imds,
};

static void s_run_continue(struct kb_creds_chain *c)
{
    while (c->step < S_PROVIDER_COUNT) {
        enum s_outcome out = s_providers[c->step](c);
        if (out == S_PENDING)
            return;
        if (out == S_YIELD) {
            s_run_finish(c, 0);
            return;
        }
        c->step++;
    }
    s_run_finish(c, KB_ENOCREDS);
}

/* ---- public ---- */

int kb_creds_get(struct kb_creds_chain *c, kb_creds_cb cb, void *ctx)
{
    struct s_waiter *w;

    if (c == NULL || cb == NULL)
        return KB_EINVAL;
    if (c->closing)
        return KB_ECANCELED;
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return KB_ENOMEM;
    w->cb = cb;
    w->ctx = ctx;
    *c->pending_tail = w;
    c->pending_tail = &w->next;
    /* A run in flight, or a result about to go out, serves this caller too. */
    if (c->running || uv_is_active((uv_handle_t *)&c->wake))
        return 0;
    if (c->cached.secret_access_key != NULL && !kb_creds_needs_refresh(&c->cached, time(NULL))) {
        c->result = 0;
        s_wake_later(c);
        return 0;
    }
    c->running = true;
    c->start_run = true;
    uv_timer_start(&c->wake, on_wake, 0, 0);
    return 0;
}

void kb_creds_chain_destroy(struct kb_creds_chain *c)
{
    if (c == NULL)
        return;
    c->closing = true;
    if (c->process != NULL)
        kb_creds_process_cancel(c->process);
    if (c->fetch != NULL)
        kb_creds_fetch_cancel(c->fetch);
    s_wake_later(c);
    s_unref(c);
}

/* ---- settings, read once by kb_creds_chain_new ---- */

static const char *s_env(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

static int s_dup(char **slot, const char *v)
{
    *slot = strdup(v);
    return *slot != NULL ? 0 : KB_ENOMEM;
}

/* Explicit credentials: all or nothing, else the configuration is wrong. */
static int s_settings_config(struct kb_creds_chain *c, const struct kb_creds_config *cfg)
{
    bool id = cfg->access_key_id != NULL && cfg->access_key_id[0] != '\0';
    bool secret = cfg->secret_access_key != NULL && cfg->secret_access_key[0] != '\0';
    bool token = cfg->session_token != NULL && cfg->session_token[0] != '\0';
    char why[KB_CREDS_WHY_LEN];
    int rc;

    if (!id && !secret && !token)
        return 0;
    if (!id || !secret)
        return KB_ECONFIG;
    rc = kb_creds_fill(&c->explicit_creds, cfg->access_key_id, cfg->secret_access_key,
                       strlen(cfg->secret_access_key), token ? cfg->session_token : NULL,
                       token ? strlen(cfg->session_token) : 0, 0, "config", why, sizeof(why));
    return rc == KB_ENOMEM ? rc : rc != 0 ? KB_ECONFIG : 0;
}

static int s_settings_env(struct kb_creds_chain *c)
{
    const char *id = s_env("AWS_ACCESS_KEY_ID"), *secret = s_env("AWS_SECRET_ACCESS_KEY");
    const char *token = s_env("AWS_SESSION_TOKEN");
    char why[KB_CREDS_WHY_LEN];
    int rc;

    if (id == NULL && secret == NULL) {
        snprintf(c->env_why, sizeof(c->env_why),
                 "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set");
        return 0;
    }
    if (id == NULL || secret == NULL) {
        snprintf(c->env_why, sizeof(c->env_why), "%s is set but %s is not",
                 id != NULL ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                 id != NULL ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return 0;
    }
    rc = kb_creds_fill(&c->env_creds, id, secret, strlen(secret), token,
                       token != NULL ? strlen(token) : 0, 0, "env", why, sizeof(why));
    if (rc == KB_ENOMEM)
        return rc;
    if (rc != 0)
        snprintf(c->env_why, sizeof(c->env_why), "%s", why);
    return 0;
}

static int s_settings_files(struct kb_creds_chain *c, const struct kb_creds_config *cfg)
{
    const char *home = getenv("HOME");
    const char *name =
        cfg->profile != NULL && cfg->profile[0] != '\0' ? cfg->profile : s_env("AWS_PROFILE");
    char path[4096];
    int rc;

    rc = s_dup(&c->profile, name != NULL ? name : "default");
    if (rc == 0 && kb_creds_profile_path(s_env("AWS_SHARED_CREDENTIALS_FILE"), home, "credentials",
                                         path, sizeof(path)) == 0)
        rc = s_dup(&c->credentials_path, path);
    if (rc == 0 &&
        kb_creds_profile_path(s_env("AWS_CONFIG_FILE"), home, "config", path, sizeof(path)) == 0)
        rc = s_dup(&c->config_path, path);
    return rc;
}

static int s_settings_container(struct kb_creds_chain *c)
{
    const char *rel = s_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = s_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    const char *token = s_env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    const char *token_file = s_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    size_t len;

    if (rel != NULL && rel[0] != '/') {
        snprintf(c->container_why, sizeof(c->container_why),
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI does not start with '/'");
    } else if (rel != NULL) {
        len = strlen(S_CONTAINER_HOST) + strlen(rel) + 1;
        c->container_url = malloc(len);
        if (c->container_url == NULL)
            return KB_ENOMEM;
        snprintf(c->container_url, len, "%s%s", S_CONTAINER_HOST, rel);
    } else if (full == NULL) {
        snprintf(c->container_why, sizeof(c->container_why),
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI are not set");
    } else if (kb_creds_container_uri_allowed(full, c->container_why, sizeof(c->container_why))) {
        if (s_dup(&c->container_url, full) != 0)
            return KB_ENOMEM;
    }
    if (token != NULL && token_file == NULL) {
        if (strchr(token, '\n') != NULL || strchr(token, '\r') != NULL) {
            free(c->container_url);
            c->container_url = NULL;
            snprintf(c->container_why, sizeof(c->container_why),
                     "AWS_CONTAINER_AUTHORIZATION_TOKEN holds a line break");
            return 0;
        }
        c->container_token = kb_secret_new(token, strlen(token));
        if (c->container_token == NULL)
            return KB_ENOMEM;
    }
    return token_file != NULL ? s_dup(&c->container_token_file, token_file) : 0;
}

static void s_settings_imds(struct kb_creds_chain *c, const struct kb_creds_config *cfg)
{
    const char *disabled = s_env("AWS_EC2_METADATA_DISABLED");
    const char *endpoint = s_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    const char *mode = s_env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
    size_t len;

    c->imds.timeout_ms = cfg->imds_timeout_ms > 0 ? cfg->imds_timeout_ms : 1000;
    if (disabled != NULL && strcasecmp(disabled, "true") == 0) {
        snprintf(c->imds_why, sizeof(c->imds_why), "disabled by AWS_EC2_METADATA_DISABLED");
        return;
    }
    if (endpoint == NULL)
        endpoint =
            mode != NULL && strcasecmp(mode, "IPv6") == 0 ? S_IMDS_ENDPOINT_V6 : S_IMDS_ENDPOINT;
    len = strlen(endpoint);
    while (len > 0 && endpoint[len - 1] == '/')
        len--;
    if ((strncasecmp(endpoint, "http://", 7) != 0 && strncasecmp(endpoint, "https://", 8) != 0) ||
        len >= sizeof(c->imds.endpoint) || strpbrk(endpoint, " \t\r\n") != NULL) {
        snprintf(c->imds_why, sizeof(c->imds_why),
                 "AWS_EC2_METADATA_SERVICE_ENDPOINT is not an http(s) URL");
        return;
    }
    memcpy(c->imds.endpoint, endpoint, len);
    c->imds.endpoint[len] = '\0';
}

int kb_creds_chain_new(uv_loop_t *loop, struct kb_http *http, const struct kb_creds_config *cfg,
                       struct kb_creds_chain **out)
{
    static const struct kb_creds_config none;
    struct kb_creds_chain *c;
    int rc;

    if (loop == NULL || http == NULL || out == NULL)
        return KB_EINVAL;
    if (cfg == NULL)
        cfg = &none;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return KB_ENOMEM;
    c->loop = loop;
    c->http = http;
    c->refs = 1;
    c->pending_tail = &c->pending;
    c->process_timeout_ms = cfg->process_timeout_ms > 0 ? cfg->process_timeout_ms : 30000;
    rc = s_settings_config(c, cfg);
    if (rc == 0)
        rc = s_settings_env(c);
    if (rc == 0)
        rc = s_settings_files(c, cfg);
    if (rc == 0)
        rc = s_settings_container(c);
    if (rc == 0) {
        s_settings_imds(c, cfg);
        rc = uv_timer_init(loop, &c->wake);
    }
    if (rc != 0) {
        s_free(c);
        return rc;
    }
    c->wake.data = c;
    c->refs++; /* the timer's, dropped when it is closed */
    *out = c;
    return 0;
}
