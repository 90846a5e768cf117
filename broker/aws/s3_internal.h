/*
 * s3_internal.h - what the two files of the S3 calls share: s3.c (bucket configuration) and
 * s3_object.c (objects). One request description, its sender and the bucket-name check; not part
 * of kb_aws's API (s3.h is).
 */
#ifndef KB_S3_INTERNAL_H
#define KB_S3_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/client.h"
#include "aws/svc.h"
#include "aws/wire.h"

#define KB_S3__NS        "http://s3.amazonaws.com/doc/2006-03-01/"
#define KB_S3__MAX_EXTRA 3 /* headers in kb_s3__req.extra */

/* What one S3 request needs beyond the op. Everything is borrowed for the kb_s3__send call. */
struct kb_s3__req {
    const char *bucket;
    const char *method;
    const char *path;         /* encoded "/key" (kb_wire_path_add); NULL: the bucket itself */
    const char *query;        /* encoded, without '?'; NULL for none */
    struct kb_wire_buf *body; /* NULL for none; freed by kb_s3__send whatever it returns */
    const void *data;         /* when body is NULL: a body the caller keeps (PutObject's) */
    size_t data_len;
    bool content_md5;
    const char *content_type; /* sent with a body only */
    const struct kb_http_header *extra;
    size_t extra_count; /* 0..KB_S3__MAX_EXTRA */
    const struct kb_credentials *credentials;
    unsigned max_attempts;
};

/* 3..255 bytes of what S3 has ever allowed in a bucket name (legacy us-east-1 names included). */
bool kb_s3__bucket_ok(const char *bucket);

/* Adds Content-MD5 (when asked) and Content-Type to r's headers and sends it through op (see
 * kb_svc_send): returns 0 (cb will run, later) or a negative code (it will not). Frees r->body. */
int kb_s3__send(struct kb_aws_client *c, const struct kb_svc_op *op, const struct kb_s3__req *r,
                kb_svc_fn cb, void *ctx);

#endif
