/*
 * itest_credentials.c - runs the credentials chain on a loop for test_credentials.py.
 *
 *   itest_credentials [--rounds N] [--concurrent K] [--delay-ms MS] [--profile NAME]
 *                     [--imds-timeout-ms MS] [--process-timeout-ms MS] [--destroy-after-ms MS]
 *                     [--explicit-id ID]   (the explicit secret comes from KB_TEST_EXPLICIT_SECRET)
 *                     [--sts-endpoint URL] (sign sts:GetCallerIdentity with what the chain gave)
 *
 * Each round issues K gets at once; the next round starts MS after the last callback of the
 * previous one. Every callback prints one JSON line: {"ok":true,"round":1,"source":"env",
 * "access_key_id":"AKIA...","has_token":true,"expiration":0,"secret_sha256":"...",
 * "token_sha256":"...","elapsed_ms":3} or {"ok":false,"err":"KB_ENOCREDS","message":"..."}.
 * The secret and the token themselves are never printed: only their SHA-256, which the test
 * compares with what it handed out.
 */
#include <json-c/json.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "aws/client.h"
#include "aws/credentials.h"
#include "common/err.h"
#include "aws/http.h"
#include "aws/sts.h"

struct driver {
    uv_loop_t loop;
    struct kb_http *http;
    struct kb_creds_chain *chain;
    struct kb_aws_client *client;
    uv_timer_t timer;   /* the next round */
    uv_timer_t destroy; /* --destroy-after-ms */
    long rounds, concurrent, delay_ms, destroy_after_ms;
    long round, outstanding, sts_outstanding;
    const char *sts_endpoint;
    uint64_t started;
    bool destroyed;
};

static void s_print(struct json_object *o)
{
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    fflush(stdout);
    json_object_put(o);
}

/* Lower-case hex SHA-256 of a secret; the digest is not secret, the bytes are. */
static void s_sha256(struct kb_secret *s, char hex[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    size_t len;
    const char *p = kb_secret_open(s, &len);

    EVP_Digest(p, len, md, &mdlen, EVP_sha256(), NULL);
    kb_secret_close(s);
    sodium_bin2hex(hex, 65, md, sizeof(md));
}

static void s_finish_if_idle(struct driver *d);
static void on_round_timer(uv_timer_t *t);

struct sts_call {
    struct driver *d;
    struct kb_credentials creds;
};

static void on_sts(void *ctx, const struct kb_aws_error *err, const struct kb_sts_identity *id)
{
    struct sts_call *k = ctx;
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "event", json_object_new_string("sts"));
    json_object_object_add(o, "ok", json_object_new_boolean(err == NULL));
    if (err != NULL)
        json_object_object_add(o, "code", json_object_new_string(err->code));
    else
        json_object_object_add(o, "arn", json_object_new_string(id->arn));
    s_print(o);
    kb_credentials_cleanup(&k->creds);
    k->d->sts_outstanding--;
    s_finish_if_idle(k->d);
    free(k);
}

static void s_sts_probe(struct driver *d, const struct kb_credentials *creds)
{
    struct sts_call *k = calloc(1, sizeof(*k));
    struct kb_sts_get_caller_identity_input in = {0};

    if (k == NULL || kb_credentials_copy(&k->creds, creds) != 0) {
        free(k);
        return;
    }
    k->d = d;
    in.credentials = &k->creds;
    if (kb_sts_get_caller_identity(d->client, &in, on_sts, k) != 0) {
        kb_credentials_cleanup(&k->creds);
        free(k);
        return;
    }
    d->sts_outstanding++;
}

static void s_describe(struct json_object *o, const struct kb_credentials *c)
{
    char hex[65];

    json_object_object_add(o, "source", json_object_new_string(c->source));
    json_object_object_add(o, "access_key_id", json_object_new_string(c->access_key_id));
    json_object_object_add(o, "has_token", json_object_new_boolean(c->session_token != NULL));
    json_object_object_add(o, "expiration", json_object_new_int64((int64_t)c->expiration));
    s_sha256(c->secret_access_key, hex);
    json_object_object_add(o, "secret_sha256", json_object_new_string(hex));
    if (c->session_token != NULL) {
        s_sha256(c->session_token, hex);
        json_object_object_add(o, "token_sha256", json_object_new_string(hex));
    }
}

static void on_creds(void *ctx, int err, const struct kb_credentials *creds, const char *message)
{
    struct driver *d = ctx;
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "ok", json_object_new_boolean(err == 0));
    json_object_object_add(o, "round", json_object_new_int64(d->round));
    json_object_object_add(o, "elapsed_ms",
                           json_object_new_int64((int64_t)(uv_now(&d->loop) - d->started)));
    if (err == 0) {
        s_describe(o, creds);
        if (d->client != NULL)
            s_sts_probe(d, creds);
    } else {
        json_object_object_add(o, "err", json_object_new_string(kb_err_name(err)));
        json_object_object_add(o, "message", json_object_new_string(message ? message : ""));
    }
    s_print(o);
    if (--d->outstanding > 0)
        return;
    if (d->round < d->rounds && !d->destroyed)
        uv_timer_start(&d->timer, on_round_timer, (uint64_t)d->delay_ms, 0);
    else
        s_finish_if_idle(d);
}

static void s_start_round(struct driver *d)
{
    d->round++;
    d->started = uv_now(&d->loop);
    for (long i = 0; i < d->concurrent; i++) {
        int rc = kb_creds_get(d->chain, on_creds, d);
        if (rc != 0) {
            printf("{\"ok\":false,\"err\":\"%s\",\"stage\":\"get\"}\n", kb_err_name(rc));
            continue;
        }
        d->outstanding++;
    }
    if (d->outstanding == 0)
        s_finish_if_idle(d);
}

static void on_round_timer(uv_timer_t *t)
{
    s_start_round(t->data);
}

static void on_destroy_timer(uv_timer_t *t)
{
    struct driver *d = t->data;

    if (d->chain == NULL)
        return;
    printf("{\"event\":\"destroy\"}\n");
    fflush(stdout);
    d->destroyed = true;
    kb_creds_chain_destroy(d->chain);
    d->chain = NULL;
}

/* Once nothing is outstanding: destroy the chain, close the client and the timers. */
static void s_finish_if_idle(struct driver *d)
{
    if (d->outstanding > 0 || d->sts_outstanding > 0)
        return;
    if (d->chain != NULL)
        kb_creds_chain_destroy(d->chain);
    d->chain = NULL;
    if (d->client != NULL)
        kb_aws_client_close(d->client, NULL, NULL);
    d->client = NULL;
    if (d->http != NULL)
        kb_http_close(d->http, NULL, NULL);
    d->http = NULL;
    if (!uv_is_closing((uv_handle_t *)&d->timer))
        uv_close((uv_handle_t *)&d->timer, NULL);
    if (!uv_is_closing((uv_handle_t *)&d->destroy))
        uv_close((uv_handle_t *)&d->destroy, NULL);
}

static int s_client(struct driver *d)
{
    struct kb_aws_client_config cfg = {0};
    char errbuf[256];

    cfg.region = "us-east-1";
    cfg.endpoint_url = d->sts_endpoint;
    cfg.max_attempts = 1;
    /* the client's own chain is never used: every probe passes the credentials to sign with */
    cfg.creds.access_key_id = "AKIAUNUSED0000000000";
    cfg.creds.secret_access_key = "unused";
    if (kb_aws_client_new(&d->loop, &cfg, &d->client, errbuf, sizeof(errbuf)) != 0) {
        fprintf(stderr, "client: %s\n", errbuf);
        return 1;
    }
    return 0;
}

static long s_num(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < 0) {
        fprintf(stderr, "not a number: %s\n", s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    struct driver d = {.rounds = 1, .concurrent = 1};
    struct kb_creds_config cfg = {0};
    int rc;

    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--rounds") == 0)
            d.rounds = s_num(v);
        else if (strcmp(k, "--concurrent") == 0)
            d.concurrent = s_num(v);
        else if (strcmp(k, "--delay-ms") == 0)
            d.delay_ms = s_num(v);
        else if (strcmp(k, "--destroy-after-ms") == 0)
            d.destroy_after_ms = s_num(v);
        else if (strcmp(k, "--profile") == 0)
            cfg.profile = v;
        else if (strcmp(k, "--imds-timeout-ms") == 0)
            cfg.imds_timeout_ms = s_num(v);
        else if (strcmp(k, "--process-timeout-ms") == 0)
            cfg.process_timeout_ms = s_num(v);
        else if (strcmp(k, "--explicit-id") == 0)
            cfg.access_key_id = v;
        else if (strcmp(k, "--sts-endpoint") == 0)
            d.sts_endpoint = v;
        else {
            fprintf(stderr, "unknown option %s\n", k);
            return 2;
        }
    }
    cfg.secret_access_key = getenv("KB_TEST_EXPLICIT_SECRET");
    if (uv_loop_init(&d.loop) != 0 || kb_http_new(&d.loop, NULL, &d.http) != 0)
        return 1;
    if (d.sts_endpoint != NULL && s_client(&d) != 0)
        return 1;
    rc = kb_creds_chain_new(&d.loop, d.http, &cfg, &d.chain);
    if (rc != 0) {
        printf("{\"ok\":false,\"err\":\"%s\",\"stage\":\"new\"}\n", kb_err_name(rc));
        d.chain = NULL;
    }
    uv_timer_init(&d.loop, &d.timer);
    uv_timer_init(&d.loop, &d.destroy);
    d.timer.data = d.destroy.data = &d;
    if (d.chain != NULL) {
        uv_timer_start(&d.timer, on_round_timer, 0, 0);
        if (d.destroy_after_ms > 0)
            uv_timer_start(&d.destroy, on_destroy_timer, (uint64_t)d.destroy_after_ms, 0);
    } else {
        s_finish_if_idle(&d);
    }
    uv_run(&d.loop, UV_RUN_DEFAULT);
    printf("{\"event\":\"exit\"}\n");
    return uv_loop_close(&d.loop) == 0 ? 0 : 1;
}
