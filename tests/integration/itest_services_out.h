/*
 * itest_services_out.h - the output side of itest_services.c: the run state, the JSON lines it
 * prints, the step machine and the typed callbacks (one per result kind), each of which prints
 * its step's line and starts the next step. Included by itest_services.c only.
 *
 * Never prints a secret: the callbacks print ids, names, stages, dates and lengths (and the bodies
 * of the anchors scenario's objects, which hold none); the secret access key is taken into struct
 * run as a struct kb_secret and compared in memory.
 */
#ifndef ITEST_SERVICES_OUT_H
#define ITEST_SERVICES_OUT_H

#include <json-c/json.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "aws/client.h"
#include "common/err.h"
#include "aws/iam.h"
#include "aws/s3.h"
#include "common/secret.h"
#include "aws/secretsmanager.h"
#include "aws/sts.h"

#define MAX_KEYS 4

struct run;
typedef int (*step_fn)(struct run *r);

struct run {
    uv_loop_t loop;
    struct kb_aws_client *client;
    const char *region;
    const char *tenant;
    const char *bucket;
    char user[128];
    char secret_name[256];
    char user_policy[1024];
    char bucket_policy[1024];
    char key_id[128];     /* the newest access key */
    char old_key_id[128]; /* rotate: the key of AWSCURRENT before */
    char version_old[128];
    char version_new[128];
    char list_keys[MAX_KEYS][128];
    size_t list_key_count;
    struct kb_secret *key_secret; /* the newest key's secret */
    struct kb_secret *value;      /* the secret value last written */
    struct kb_credentials probe;  /* the newest key, for the readiness probe */
    char anchor_version[128];     /* anchors: the COMPLIANCE version of the first anchor */
    char list_key_marker[1100];   /* anchors: where the next ListObjectVersions page starts */
    char list_vid_marker[128];
    unsigned list_pages;
    const step_fn *steps;
    size_t step_count;
    size_t next;
    const char *label;
    unsigned ok, failed;
};

/* -- output ------------------------------------------------------------------------------------ */

static void j_str(struct json_object *o, const char *key, const char *v)
{
    json_object_object_add(o, key, v != NULL ? json_object_new_string(v) : NULL);
}

static void j_int(struct json_object *o, const char *key, long long v)
{
    json_object_object_add(o, key, json_object_new_int64(v));
}

static void j_bool(struct json_object *o, const char *key, bool v)
{
    json_object_object_add(o, key, json_object_new_boolean(v));
}

static struct json_object *j_tags(const struct kb_aws_tag *tags, size_t n)
{
    struct json_object *o = json_object_new_object();

    for (size_t i = 0; i < n; i++)
        j_str(o, tags[i].key, tags[i].value);
    return o;
}

static struct json_object *j_strings(const char *const *v, size_t n)
{
    struct json_object *a = json_object_new_array();

    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_string(v[i]));
    return a;
}

/* The line of one finished step: its result fields are added by the caller. */
static struct json_object *line(struct run *r, const struct kb_aws_error *err)
{
    struct json_object *o = json_object_new_object();

    j_str(o, "step", r->label);
    j_bool(o, "ok", err == NULL);
    if (err != NULL) {
        r->failed++;
        j_str(o, "err", kb_err_name(err->err));
        j_int(o, "status", err->status);
        j_str(o, "code", err->code);
        j_str(o, "message", err->message);
        j_str(o, "request_id", err->request_id);
        j_str(o, "operation", err->operation);
        j_int(o, "attempts", err->attempts);
    } else {
        r->ok++;
    }
    return o;
}

static void emit(struct json_object *o)
{
    puts(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    fflush(stdout);
    json_object_put(o);
}

static void copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src != NULL ? src : "");
}

/* -- the step machine -------------------------------------------------------------------------- */

static void on_closed(void *ctx)
{
    struct run *r = ctx;

    r->client = NULL;
}

/* Starts the next step that starts a call; closes the client when none is left. */
static void next(struct run *r)
{
    while (r->next < r->step_count) {
        int rc = r->steps[r->next++](r);

        if (rc == 0)
            return;
        if (rc < 0) {
            struct json_object *o = json_object_new_object();

            j_str(o, "step", r->label);
            j_str(o, "start_error", kb_err_name(rc));
            emit(o);
            r->failed++;
        }
    }
    kb_aws_client_close(r->client, on_closed, r);
}

/* -- callbacks --------------------------------------------------------------------------------- */

static void on_done(void *ctx, const struct kb_aws_error *err, const struct kb_aws_done *ok)
{
    struct run *r = ctx;
    struct json_object *o = line(r, err);

    if (ok != NULL) {
        j_str(o, "operation", ok->operation);
        j_int(o, "status", ok->status);
        j_bool(o, "has_request_id", ok->request_id[0] != '\0');
    }
    emit(o);
    next(r);
}

static void on_user(void *ctx, const struct kb_aws_error *err, const struct kb_iam_user *u)
{
    struct run *r = ctx;
    struct json_object *o = line(r, err);

    if (u != NULL) {
        j_str(o, "user_name", u->user_name);
        j_str(o, "user_id", u->user_id);
        j_str(o, "arn", u->arn);
        j_str(o, "path", u->path);
        j_int(o, "create_date", (long long)u->create_date);
        j_str(o, "boundary", u->permissions_boundary_arn);
        json_object_object_add(o, "tags", j_tags(u->tags, u->tag_count));
    }
    emit(o);
    next(r);
}

static void on_user_tags(void *ctx, const struct kb_aws_error *err, const struct kb_iam_tags *t)
{
    struct run *r = ctx;
    struct json_object *o = line(r, err);

    if (t != NULL) {
        json_object_object_add(o, "tags", j_tags(t->tags, t->tag_count));
        j_bool(o, "is_truncated", t->is_truncated);
    }
    emit(o);
    next(r);
}

static void on_user_policy(void *ctx, const struct kb_aws_error *err,
                           const struct kb_iam_user_policy *p)
{
    struct run *r = ctx;
    struct json_object *o = line(r, err);

    if (p != NULL) {
        j_str(o, "user_name", p->user_name);
        j_str(o, "policy_name", p->policy_name);
        j_str(o, "policy_document", p->policy_document);
        j_bool(o, "matches_put", strcmp(p->policy_document, r->user_policy) == 0);
    }
    emit(o);
    next(r);
}

static void on_access_key(void *ctx, const struct kb_aws_error *err, struct kb_iam_access_key *k)
{
    struct run *r = ctx;
    struct json_object *o = line(r, err);

    if (k != NULL) {
        j_str(o, "user_name", k->user_name);
        j_str(o, "access_key_id", k->access_key_id);
        j_str(o, "status", kb_iam_key_status_name(k->status));
        j_int(o, "create_date", (long long)k->create_date);
        j_int(o, "secret_len", (long long)kb_secret_len(k->secret_access_key));
        /* Take the secret: it now belongs to this run. */
        kb_secret_destroy(r->key_secret);
        r->key_secret = k->secret_access_key;
        k->secret_access_key = NULL;
        copy(r->key_id, sizeof(r->key_id), k->access_key_id);
    }
    emit(o);
    next(r);
}

static void on_access_keys(void *ctx, const struct kb_aws_error *err,
                           const struct kb_iam_access_keys *k)
{
    struct run *r = ctx;
    struct json_object *o = line(r, err);

    if (k != NULL) {
        struct json_object *a = json_object_new_array();

        r->list_key_count = 0;
        for (size_t i = 0; i < k->count; i++) {
            struct json_object *e = json_object_new_object();

            j_str(e, "access_key_id", k->keys[i].access_key_id);
            j_str(e, "user_name", k->keys[i].user_name);
            j_str(e, "status", kb_iam_key_status_name(k->keys[i].status));
            j_int(e, "create_date", (long long)k->keys[i].create_date);
            json_object_array_add(a, e);
            if (r->list_key_count < MAX_KEYS)
                copy(r->list_keys[r->list_key_count++], sizeof(r->list_keys[0]),
                     k->keys[i].access_key_id);
        }
        json_object_object_add(o, "keys", a);
        j_bool(o, "is_truncated", k->is_truncated);
    }
    emit(o);
    next(r);
}

static void on_identity(void *ctx, const struct kb_aws_error *err, const struct kb_sts_identity *id)
{
    struct run *r = ctx;
    struct json_object *o = line(r, err);

    if (id != NULL) {
        j_str(o, "account", id->account);
        j_str(o, "arn", id->arn);
        j_str(o, "user_id", id->user_id);
    }
    emit(o);
    next(r);
}

static void on_pab(void *ctx, const struct kb_aws_error *err,
                   const struct kb_s3_public_access_block *c)
{
    struct run *r = ctx;
    struct json_object *o = line(r, err);

    if (c != NULL) {
        j_bool(o, "block_public_acls", c->block_public_acls);
        j_bool(o, "ignore_public_acls", c->ignore_public_acls);
        j_bool(o, "block_public_policy", c->block_public_policy);
        j_bool(o, "restrict_public_buckets", c->restrict_public_buckets);
    }
    emit(o);
    next(r);
}

static void on_bucket_policy(void *ctx, const struct kb_aws_error *err,
                             const struct kb_s3_bucket_policy *p)
{
    struct run *r = ctx;
    struct json_object *o = line(r, err);

    if (p != NULL) {
        j_str(o, "policy", p->policy);
        j_bool(o, "matches_put", strcmp(p->policy, r->bucket_policy) == 0);
    }
    emit(o);
    next(r);
}

static void on_bucket_tags(void *ctx, const struct kb_aws_error *err, const struct kb_s3_tags *t)
{
    struct run *r = ctx;
    struct json_object *o = line(r, err);

    if (t != NULL)
        json_object_object_add(o, "tags", j_tags(t->tags, t->tag_count));
    emit(o);
    next(r);
}

static void on_head(void *ctx, const struct kb_aws_error *err, const struct kb_s3_bucket_head *h)
{
    struct run *r = ctx;
    struct json_object *o = line(r, err);

    if (h != NULL) {
        j_bool(o, "exists", h->exists);
        j_str(o, "region", h->region);
    }
    emit(o);
    next(r);
}

static void on_ref(void *ctx, const struct kb_aws_error *err, const struct kb_sm_secret_ref *s)
{
    struct run *r = ctx;
    struct json_object *o = line(r, err);

    if (s != NULL) {
        j_str(o, "arn", s->arn);
        j_str(o, "name", s->name);
        j_str(o, "version_id", s->version_id);
        json_object_object_add(o, "stages", j_strings(s->stages, s->stage_count));
        if (s->version_id != NULL)
            copy(r->version_new, sizeof(r->version_new), s->version_id);
    }
    emit(o);
    next(r);
}

static struct json_object *j_versions(const struct kb_sm_version *v, size_t n)
{
    struct json_object *a = json_object_new_array();

    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_new_object();

        j_str(e, "version_id", v[i].version_id);
        json_object_object_add(e, "stages", j_strings(v[i].stages, v[i].stage_count));
        j_int(e, "created_date", (long long)v[i].created_date);
        json_object_array_add(a, e);
    }
    return a;
}

static void on_describe(void *ctx, const struct kb_aws_error *err,
                        const struct kb_sm_description *d)
{
    struct run *r = ctx;
    struct json_object *o = line(r, err);

    if (d != NULL) {
        j_str(o, "arn", d->arn);
        j_str(o, "name", d->name);
        j_str(o, "description", d->description);
        j_str(o, "kms_key_id", d->kms_key_id);
        json_object_object_add(o, "tags", j_tags(d->tags, d->tag_count));
        json_object_object_add(o, "versions", j_versions(d->versions, d->version_count));
        j_int(o, "deleted_date", (long long)d->deleted_date);
        for (size_t i = 0; i < d->version_count; i++) {
            for (size_t j = 0; j < d->versions[i].stage_count; j++) {
                if (strcmp(d->versions[i].stages[j], "AWSCURRENT") == 0)
                    copy(r->version_old, sizeof(r->version_old), d->versions[i].version_id);
            }
        }
    }
    emit(o);
    next(r);
}

static void on_versions(void *ctx, const struct kb_aws_error *err, const struct kb_sm_versions *v)
{
    struct run *r = ctx;
    struct json_object *o = line(r, err);

    if (v != NULL) {
        j_str(o, "arn", v->arn);
        j_str(o, "name", v->name);
        json_object_object_add(o, "versions", j_versions(v->versions, v->version_count));
        j_str(o, "next_token", v->next_token);
    }
    emit(o);
    next(r);
}

static void on_deletion(void *ctx, const struct kb_aws_error *err, const struct kb_sm_deletion *d)
{
    struct run *r = ctx;
    struct json_object *o = line(r, err);

    if (d != NULL) {
        j_str(o, "arn", d->arn);
        j_str(o, "name", d->name);
        j_int(o, "deletion_date", (long long)d->deletion_date);
    }
    emit(o);
    next(r);
}

static void on_value(void *ctx, const struct kb_aws_error *err, struct kb_sm_secret_value *v)
{
    struct run *r = ctx;
    struct json_object *o = line(r, err);
    struct kb_sm_key_secret key;

    if (v != NULL) {
        const char *text;
        size_t len;

        j_str(o, "version_id", v->version_id);
        json_object_object_add(o, "stages", j_strings(v->stages, v->stage_count));
        j_int(o, "created_date", (long long)v->created_date);
        if (r->value != NULL) {
            text = kb_secret_open(r->value, &len);
            j_bool(o, "value_matches", kb_secret_equals(v->secret_string, text, len) == 1);
            kb_secret_close(r->value);
        }
        /* The value is the key-secret format: its non-secret parts may be shown. */
        if (kb_sm_key_secret_parse(v->secret_string, &key) == 0) {
            j_str(o, "access_key_id", key.access_key_id);
            j_str(o, "bucket", key.bucket);
            j_str(o, "region", key.region);
            j_int(o, "secret_len", (long long)kb_secret_len(key.secret_access_key));
            if (r->old_key_id[0] == '\0')
                copy(r->old_key_id, sizeof(r->old_key_id), key.access_key_id);
            kb_secret_destroy(key.secret_access_key);
        }
    }
    emit(o);
    next(r);
}

/* -- objects (the anchors scenario) ------------------------------------------------------------ */

static const char *lock_mode_name(enum kb_s3_lock_mode m)
{
    return m == KB_S3_LOCK_COMPLIANCE   ? "COMPLIANCE"
           : m == KB_S3_LOCK_GOVERNANCE ? "GOVERNANCE"
                                        : NULL;
}

static void on_put_object(void *ctx, const struct kb_aws_error *err,
                          const struct kb_s3_put_object_result *res)
{
    struct run *r = ctx;
    struct json_object *o = line(r, err);

    if (res != NULL) {
        j_str(o, "etag", res->etag);
        j_str(o, "version_id", res->version_id);
        j_bool(o, "has_request_id", res->request_id[0] != '\0');
        if (r->anchor_version[0] == '\0')
            copy(r->anchor_version, sizeof(r->anchor_version), res->version_id);
    }
    emit(o);
    next(r);
}

static void on_object(void *ctx, const struct kb_aws_error *err, struct kb_s3_object *obj)
{
    struct run *r = ctx;
    struct json_object *o = line(r, err);

    if (obj != NULL) {
        unsigned char *body = obj->body;

        obj->body = NULL; /* taken: ours to free */
        json_object_object_add(o, "body",
                               json_object_new_string_len((const char *)body, (int)obj->body_len));
        free(body);
        j_str(o, "etag", obj->etag);
        j_str(o, "version_id", obj->version_id);
        j_str(o, "lock_mode", lock_mode_name(obj->lock_mode));
        j_int(o, "retain_until", (long long)obj->retain_until);
        j_bool(o, "legal_hold", obj->legal_hold);
    }
    emit(o);
    next(r);
}

static void on_object_versions(void *ctx, const struct kb_aws_error *err,
                               const struct kb_s3_version_list *l)
{
    struct run *r = ctx;
    struct json_object *o = line(r, err);

    if (l != NULL) {
        struct json_object *vs = json_object_new_array(), *ms = json_object_new_array();

        for (size_t i = 0; i < l->version_count; i++) {
            struct json_object *v = json_object_new_object();

            j_str(v, "key", l->versions[i].key);
            j_str(v, "version_id", l->versions[i].version_id);
            j_bool(v, "is_latest", l->versions[i].is_latest);
            j_int(v, "size", (long long)l->versions[i].size);
            j_str(v, "etag", l->versions[i].etag);
            j_int(v, "last_modified", (long long)l->versions[i].last_modified);
            json_object_array_add(vs, v);
        }
        for (size_t i = 0; i < l->delete_marker_count; i++) {
            struct json_object *m = json_object_new_object();

            j_str(m, "key", l->delete_markers[i].key);
            j_str(m, "version_id", l->delete_markers[i].version_id);
            j_bool(m, "is_latest", l->delete_markers[i].is_latest);
            json_object_array_add(ms, m);
        }
        json_object_object_add(o, "versions", vs);
        json_object_object_add(o, "delete_markers", ms);
        j_bool(o, "is_truncated", l->is_truncated);
        j_str(o, "next_key_marker", l->next_key_marker);
        j_str(o, "next_version_id_marker", l->next_version_id_marker);
        /* A truncated page runs the same step again from where it stopped (10 pages at most). */
        copy(r->list_key_marker, sizeof(r->list_key_marker), l->next_key_marker);
        copy(r->list_vid_marker, sizeof(r->list_vid_marker), l->next_version_id_marker);
        if (l->is_truncated && ++r->list_pages < 10)
            r->next--;
    }
    emit(o);
    next(r);
}

#endif
