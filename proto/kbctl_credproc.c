/*
 * kbctl_credproc.c - `kbctl credential-process TENANT`: the secret's ARN from the broker, the
 * secret from AWS Secrets Manager with the caller's own AWS credentials, printed in the format of
 * AWS's credential_process setting.
 *
 * This is the one place keybroker prints a secret, by design: the AWS SDK that runs the command
 * reads it from the pipe. The broker never sees it (I2): the value comes straight from AWS into a
 * kb_secret, is parsed with jsonwire's secret-safe parser, and the output line is built in
 * sodium_malloc'd memory and written with write(2), so no stdio buffer holds it. Every temporary
 * that held part of it is wiped. Messages on stderr never carry a value.
 */
#include "kbctl.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "aws/client.h"
#include "common/err.h"
#include "aws/jsonwire.h"
#include "aws/secretsmanager.h"

/* The AWS profile kbctl reads the secret with, when it is not the default chain's. */
#define S_PROFILE_ENV "KEYBROKER_AWS_PROFILE"
/* Set for the AWS client's own credential_process children: if kbctl finds it set, the profile
 * it reads with runs `kbctl credential-process` again, which would recurse until timeouts. */
#define S_GUARD_ENV "KEYBROKER_IN_CREDENTIAL_PROCESS"

/* -- fetching the secret ---------------------------------------------------------------------- */

struct s_fetch {
    struct kb_aws_client *client;
    struct kb_secret *value;
    struct kb_aws_error err;
    bool failed;
};

static void on_client_closed(void *ctx)
{
}

static void on_secret(void *ctx, const struct kb_aws_error *err, struct kb_sm_secret_value *value)
{
    struct s_fetch *f = ctx;

    if (err != NULL) {
        f->err = *err;
        f->failed = true;
    } else {
        f->value = value->secret_string; /* taken: the result no longer destroys it */
        value->secret_string = NULL;
    }
    kb_aws_client_close(f->client, on_client_closed, f);
}

/* GetSecretValue(arn) on a private loop. Returns 0 and *out (caller destroys), or prints why and
 * returns the exit code. */
static int s_fetch(const char *arn, const char *region, int timeout_ms, struct kb_secret **out)
{
    struct kb_aws_client_config cfg = {
        .region = region,
        .profile = getenv(S_PROFILE_ENV),            /* for the region, */
        .creds = {.profile = getenv(S_PROFILE_ENV)}, /* and for the credentials */
        .connect_timeout_ms = timeout_ms,
        .total_timeout_ms = timeout_ms,
    };
    struct kb_sm_get_secret_value_input in = {.secret_id = arn};
    struct s_fetch f = {0};
    char errbuf[256] = "";
    uv_loop_t loop;
    int rc;

    if (uv_loop_init(&loop) != 0) {
        fprintf(stderr, "kbctl: credential-process: cannot create an event loop\n");
        return KBCTL_EXIT_BROKER;
    }
    rc = kb_aws_client_new(&loop, &cfg, &f.client, errbuf, sizeof(errbuf));
    if (rc != 0) {
        fprintf(stderr, "kbctl: credential-process: %s\n", errbuf[0] ? errbuf : kb_strerror(rc));
    } else {
        rc = kb_sm_get_secret_value(f.client, &in, on_secret, &f);
        if (rc != 0) {
            fprintf(stderr, "kbctl: credential-process: GetSecretValue: %s\n", kb_strerror(rc));
            kb_aws_client_close(f.client, on_client_closed, &f);
        }
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    if (rc == 0 && f.failed) {
        fprintf(stderr, "kbctl: credential-process: GetSecretValue: %s%s%s\n",
                f.err.code[0] ? f.err.code : kb_err_name(f.err.err), f.err.message[0] ? ": " : "",
                f.err.message);
        rc = KB_EAWS;
    }
    if (uv_loop_close(&loop) != 0 && rc == 0)
        rc = KB_EINVAL; /* a handle left open: a bug, but the secret may still be fine */
    if (rc != 0 || f.value == NULL) {
        kb_secret_destroy(f.value);
        return rc == KB_ENOMEM ? KBCTL_EXIT_BROKER : KBCTL_EXIT_AWS;
    }
    *out = f.value;
    return KBCTL_EXIT_OK;
}

/* -- printing it ------------------------------------------------------------------------------ */

/* Appends s[0..len) JSON-escaped to out (room for 6 bytes per input byte). json-c is not used
 * here because its printbufs would hold the secret in unguarded, realloc'd memory. */
static size_t s_escape(char *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch < 0x20) {
            memcpy(out + n, "\\u00", 4);
            out[n + 4] = hex[ch >> 4];
            out[n + 5] = hex[ch & 15];
            n += 6;
        } else {
            out[n++] = (char)ch;
        }
    }
    return n;
}

/* A string member of the secret document, or NULL (absent, null, not a string, or empty). */
static struct json_object *s_member(struct json_object *doc, const char *key)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(doc, key, &v) || !json_object_is_type(v, json_type_string) ||
        json_object_get_string_len(v) == 0)
        return NULL;
    return v;
}

static void s_append(char *buf, size_t *n, const char *key, struct json_object *v)
{
    size_t klen = strlen(key);

    if (v == NULL)
        return;
    memcpy(buf + *n, key, klen);
    *n += klen;
    *n += s_escape(buf + *n, json_object_get_string(v), (size_t)json_object_get_string_len(v));
    buf[(*n)++] = '"';
}

static int s_write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(STDOUT_FILENO, buf, len);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Builds {"Version":1,"AccessKeyId":..,"SecretAccessKey":..[,"SessionToken"][,"Expiration"]}
 * in guarded memory from the parsed document and writes it to stdout. */
static int s_print(struct json_object *doc)
{
    struct json_object *ver = NULL, *akid = s_member(doc, "AccessKeyId"),
                       *sak = s_member(doc, "SecretAccessKey"),
                       *tok = s_member(doc, "SessionToken"), *exp = s_member(doc, "Expiration");
    struct json_object *parts[] = {akid, sak, tok, exp};
    size_t cap = 128, n = 0;
    char *buf;
    int rc;

    if (!json_object_object_get_ex(doc, "Version", &ver) ||
        !json_object_is_type(ver, json_type_int) || json_object_get_int64(ver) != 1 ||
        akid == NULL || sak == NULL) {
        fprintf(stderr, "kbctl: credential-process: the secret is not a version 1 key document "
                        "(Version, AccessKeyId, SecretAccessKey)\n");
        return KBCTL_EXIT_AWS;
    }
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        cap += parts[i] != NULL ? 6 * (size_t)json_object_get_string_len(parts[i]) + 24 : 0;
    buf = sodium_malloc(cap);
    if (buf == NULL) {
        fprintf(stderr, "kbctl: credential-process: out of memory\n");
        return KBCTL_EXIT_BROKER;
    }
    memcpy(buf, "{\"Version\":1", 12);
    n = 12;
    s_append(buf, &n, ",\"AccessKeyId\":\"", akid);
    s_append(buf, &n, ",\"SecretAccessKey\":\"", sak);
    s_append(buf, &n, ",\"SessionToken\":\"", tok);
    s_append(buf, &n, ",\"Expiration\":\"", exp);
    memcpy(buf + n, "}\n", 2);
    n += 2;
    rc = s_write_all(buf, n) == 0 ? KBCTL_EXIT_OK : KBCTL_EXIT_BROKER;
    if (rc != 0)
        fprintf(stderr, "kbctl: credential-process: cannot write to stdout: %s\n", strerror(errno));
    sodium_memzero(buf, cap);
    sodium_free(buf);
    return rc;
}

static int s_parse_and_print(struct kb_secret *value)
{
    struct kb_svc_arena arena = {0};
    struct kb_svc_parse p = {.arena = &arena, .operation = "secret value"};
    struct json_object *doc = NULL;
    const char *text;
    size_t len = 0;
    int rc;

    text = kb_secret_open(value, &len);
    rc = kb_jsonw_parse(&p, text, len, true, &doc);
    kb_secret_close(value);
    if (rc != 0) {
        fprintf(stderr, "kbctl: credential-process: %s\n", p.msg); /* never echoes the value */
        kb_svc_arena_free(&arena);
        return rc == KB_ENOMEM ? KBCTL_EXIT_BROKER : KBCTL_EXIT_AWS;
    }
    rc = s_print(doc);
    kb_jsonw_wipe_string(s_member(doc, "SecretAccessKey"));
    kb_jsonw_wipe_string(s_member(doc, "SessionToken"));
    json_object_put(doc);
    kb_svc_arena_free(&arena);
    return rc;
}

/* -- the command ------------------------------------------------------------------------------ */

int kbctl_credential_process(const struct kbctl *k, const char *tenant)
{
    struct kb_client_tenant *t = NULL;
    struct kb_secret *value = NULL;
    struct kb_client *c = NULL;
    const char *region;
    int rc;

    if (getenv(S_GUARD_ENV) != NULL) {
        fprintf(stderr, "kbctl: credential-process: started by itself: the AWS profile kbctl "
                        "reads with runs `kbctl credential-process` again; give kbctl your own "
                        "credentials (set " S_PROFILE_ENV " to another profile)\n");
        return KBCTL_EXIT_AWS;
    }
    if (setenv(S_GUARD_ENV, "1", 1) != 0 || sodium_init() < 0) {
        fprintf(stderr, "kbctl: credential-process: cannot initialize\n");
        return KBCTL_EXIT_BROKER;
    }
    rc = kbctl_connect(k, &c);
    if (rc != 0)
        return rc;
    rc = kb_client_get(c, tenant, &t);
    if (rc != 0) {
        rc = kbctl_fail(c, rc, "credential-process");
        goto cleanup;
    }
    region = getenv("AWS_REGION");
    if (region == NULL || region[0] == '\0')
        region = t->region;
    rc = s_fetch(t->arn, region, k->timeout_ms, &value);
    if (rc == 0)
        rc = s_parse_and_print(value);
cleanup:
    kb_secret_destroy(value);
    kb_client_tenant_free(t);
    kb_client_close(c);
    return rc;
}
