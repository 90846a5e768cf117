/*
 * kbctl_audit_s3.c - `kbctl audit verify --anchors s3://BUCKET/PREFIX`: every object version
 * under the prefix, delete markers included (ListObjectVersions, all pages), and the content of
 * each version (GetObject by version id, a few at once), handed to the verifier, which decides
 * what they mean (audit/verify.h).
 *
 * Like `kbctl credential-process`, it runs an AWS client on a loop of its own with the caller's
 * identity: credentials, region and endpoint from the environment and the AWS files
 * (AWS_ENDPOINT_URL for an S3-compatible endpoint), the profile $KEYBROKER_AWS_PROFILE names if
 * set. Reading every version rather than the current one is the point: a rewrite adds a version
 * and a delete adds a marker, and Object Lock keeps what was first written.
 */
#include "kbctl_audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "audit/verify.h"
#include "aws/client.h"
#include "aws/s3.h"
#include "common/err.h"

#define S_PROFILE_ENV "KEYBROKER_AWS_PROFILE"
#define S_IN_FLIGHT   8
#define S_BODY_MAX    (64u << 10) /* far above an anchor's size; a larger object is refused */

struct s_fetch;

struct s_ver {
    char *key;
    char *version_id;
    struct s_fetch *f; /* the GetObject callback's way back */
};

struct s_fetch {
    struct kb_aws_client *client;
    struct kb_audit_verify *v;
    const char *bucket;
    const char *prefix;
    struct s_ver *vers; /* object versions to read */
    size_t n, cap, next, done, in_flight;
    char *key_marker, *vid_marker;
    bool failed, closing;
    size_t count;
};

int kbctl_audit_s3_uri(const char *uri, char *bucket, size_t cap, const char **prefix)
{
    const char *b, *slash;
    size_t n;

    if (strncmp(uri, "s3://", 5) != 0)
        goto bad;
    b = uri + 5;
    slash = strchr(b, '/');
    n = slash != NULL ? (size_t)(slash - b) : strlen(b);
    if (n < 3 || n >= cap || n > 63)
        goto bad;
    memcpy(bucket, b, n);
    bucket[n] = '\0';
    *prefix = slash != NULL ? slash + 1 : "";
    return 0;
bad:
    fprintf(stderr,
            "kbctl: audit verify: --anchors wants s3://BUCKET/PREFIX (the bucket and "
            "prefix of broker.audit.anchor), not '%s'\n",
            uri);
    return KBCTL_AUDIT_ERROR;
}

static void on_closed(void *ctx)
{
    (void)ctx;
}

static void s_close(struct s_fetch *f)
{
    if (!f->closing) {
        f->closing = true;
        kb_aws_client_close(f->client, on_closed, f);
    }
}

static void s_fail(struct s_fetch *f, const char *op, const struct kb_aws_error *err, int rc)
{
    if (!f->failed) {
        if (err != NULL)
            fprintf(stderr, "kbctl: audit verify: --anchors: %s s3://%s/%s: %s%s%s\n", op,
                    f->bucket, f->prefix, err->code[0] ? err->code : kb_err_name(err->err),
                    err->message[0] ? ": " : "", err->message);
        else
            fprintf(stderr, "kbctl: audit verify: --anchors: %s: %s\n", op, kb_strerror(rc));
    }
    f->failed = true;
    if (f->in_flight == 0)
        s_close(f);
}

static char *s_dup(const char *s)
{
    return strdup(s != NULL ? s : "");
}

static void s_get_next(struct s_fetch *f);

static void on_object(void *ctx, const struct kb_aws_error *err, struct kb_s3_object *obj)
{
    struct s_ver *ver = ctx;
    struct s_fetch *f = ver->f;
    int rc;

    f->in_flight--;
    if (err != NULL && err->err == KB_ETOOBIG) {
        /* not an anchor (too large to be one): the verifier reports it if its name is one */
        rc = kb_audit_verify_add_anchor_object(f->v, ver->key, ver->version_id, false, "", 0);
    } else if (err != NULL) {
        s_fail(f, "GetObject", err, 0);
        return;
    } else {
        rc = kb_audit_verify_add_anchor_object(f->v, ver->key, ver->version_id, false,
                                               (const char *)obj->body, obj->body_len);
    }
    if (rc != 0) {
        s_fail(f, "GetObject", NULL, rc);
        return;
    }
    f->count++;
    f->done++;
    s_get_next(f);
}

static void s_get_next(struct s_fetch *f)
{
    while (!f->failed && f->in_flight < S_IN_FLIGHT && f->next < f->n) {
        struct s_ver *ver = &f->vers[f->next++];
        struct kb_s3_get_object_input in = {.bucket = f->bucket,
                                            .key = ver->key,
                                            .version_id = ver->version_id,
                                            .max_body = S_BODY_MAX};
        int rc = kb_s3_get_object(f->client, &in, on_object, ver);

        if (rc != 0) {
            s_fail(f, "GetObject", NULL, rc);
            return;
        }
        f->in_flight++;
    }
    if ((f->failed && f->in_flight == 0) || (!f->failed && f->done == f->n))
        s_close(f);
}

static int s_list_next(struct s_fetch *f);

static int s_keep(struct s_fetch *f, const char *key, const char *version_id)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 256;
        void *p = realloc(f->vers, cap * sizeof(*f->vers));

        if (p == NULL)
            return KB_ENOMEM;
        f->vers = p;
        f->cap = cap;
    }
    f->vers[f->n] = (struct s_ver){s_dup(key), s_dup(version_id), f};
    if (f->vers[f->n].key == NULL || f->vers[f->n].version_id == NULL) {
        free(f->vers[f->n].key);
        free(f->vers[f->n].version_id);
        return KB_ENOMEM;
    }
    f->n++;
    return 0;
}

static void on_page(void *ctx, const struct kb_aws_error *err, const struct kb_s3_version_list *l)
{
    struct s_fetch *f = ctx;
    int rc = 0;

    f->in_flight--;
    if (err != NULL) {
        s_fail(f, "ListObjectVersions", err, 0);
        return;
    }
    for (size_t i = 0; rc == 0 && i < l->version_count; i++)
        rc = s_keep(f, l->versions[i].key, l->versions[i].version_id);
    for (size_t i = 0; rc == 0 && i < l->delete_marker_count; i++) {
        rc = kb_audit_verify_add_anchor_object(f->v, l->delete_markers[i].key,
                                               l->delete_markers[i].version_id, true, NULL, 0);
        f->count += rc == 0;
    }
    free(f->key_marker);
    free(f->vid_marker);
    f->key_marker = l->is_truncated ? s_dup(l->next_key_marker) : NULL;
    f->vid_marker = l->is_truncated && l->next_version_id_marker != NULL
                        ? s_dup(l->next_version_id_marker)
                        : NULL;
    if (rc == 0 && l->is_truncated && f->key_marker == NULL)
        rc = KB_ENOMEM;
    if (rc == 0)
        rc = l->is_truncated ? s_list_next(f) : 0;
    if (rc != 0) {
        s_fail(f, "ListObjectVersions", NULL, rc);
        return;
    }
    if (!l->is_truncated)
        s_get_next(f);
}

static int s_list_next(struct s_fetch *f)
{
    struct kb_s3_list_object_versions_input in = {.bucket = f->bucket,
                                                  .prefix = f->prefix,
                                                  .key_marker = f->key_marker,
                                                  .version_id_marker = f->vid_marker,
                                                  .max_keys = 1000};
    int rc = kb_s3_list_object_versions(f->client, &in, on_page, f);

    if (rc == 0)
        f->in_flight++;
    return rc;
}

int kbctl_audit_anchors(struct kb_audit_verify *v, const char *bucket, const char *prefix,
                        int timeout_ms, size_t *count)
{
    const char *profile = getenv(S_PROFILE_ENV);
    struct kb_aws_client_config cfg = {
        .profile = profile,
        .creds = {.profile = profile},
        .connect_timeout_ms = timeout_ms,
        .total_timeout_ms = timeout_ms,
    };
    struct s_fetch f = {.v = v, .bucket = bucket, .prefix = prefix};
    char errbuf[256] = "";
    uv_loop_t loop;
    int rc;

    if (uv_loop_init(&loop) != 0) {
        fprintf(stderr, "kbctl: audit verify: --anchors: cannot create an event loop\n");
        return KBCTL_AUDIT_ERROR;
    }
    rc = kb_aws_client_new(&loop, &cfg, &f.client, errbuf, sizeof(errbuf));
    if (rc != 0) {
        fprintf(stderr, "kbctl: audit verify: --anchors: %s\n",
                errbuf[0] ? errbuf : kb_strerror(rc));
        f.failed = true;
    } else {
        rc = s_list_next(&f);
        if (rc != 0)
            s_fail(&f, "ListObjectVersions", NULL, rc);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    if (uv_loop_close(&loop) != 0 && !f.failed) {
        fprintf(stderr, "kbctl: audit verify: --anchors: a handle was left open\n");
        f.failed = true;
    }
    for (size_t i = 0; i < f.n; i++) {
        free(f.vers[i].key);
        free(f.vers[i].version_id);
    }
    free(f.vers);
    free(f.key_marker);
    free(f.vid_marker);
    *count = f.count;
    return f.failed ? KBCTL_AUDIT_ERROR : 0;
}
