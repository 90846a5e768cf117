/*
 * server_cache.c - a tenant's get answer, formatted once per tenant status.
 *
 * get is the hot op: many clients ask for the same tenant's ARN again and again, and only the
 * request id differs between the answers. The codec formats the answer once with a null id; each
 * get then splices its id into that line. The splice is checked, not assumed: a line that does
 * not start with the header the codec is expected to write is not cached, and get falls back to
 * the codec for every request. The unit tests check that a spliced line is byte for byte what
 * kb_proto_format_get writes. Nothing cached here is secret: it is the answer every permitted
 * peer receives.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "common/err.h"
#include "server/server_internal.h"

#define S_HEAD      "{\"v\":1,\"id\":"
#define S_NULL_HEAD S_HEAD "null"

int kb_srv_splice_tail(const char *line, size_t len, char **tail, size_t *tail_len)
{
    size_t head = sizeof(S_NULL_HEAD) - 1;

    *tail = NULL;
    *tail_len = 0;
    if (len <= head || memcmp(line, S_NULL_HEAD, head) != 0 || line[head] != ',')
        return KB_EINVAL;
    *tail = malloc(len - head);
    if (*tail == NULL)
        return KB_ENOMEM;
    memcpy(*tail, line + head, len - head);
    *tail_len = len - head;
    return 0;
}

int kb_srv_splice_id(const char *tail, size_t tail_len, const char *id, char **out, size_t *len)
{
    size_t head = sizeof(S_HEAD) - 1;
    size_t idlen = id != NULL ? strlen(id) : 0;

    if (idlen == 0) {
        id = "null";
        idlen = 4;
    }
    *len = head + idlen + tail_len;
    *out = malloc(*len + 1);
    if (*out == NULL)
        return KB_ENOMEM;
    memcpy(*out, S_HEAD, head);
    memcpy(*out + head, id, idlen);
    memcpy(*out + head + idlen, tail, tail_len);
    (*out)[*len] = '\0';
    return 0;
}

_Static_assert(sizeof(((struct kb_srv_get_cache *)0)->version_id) ==
                   sizeof(((struct kb_tenant_status *)0)->version_id),
               "the cache keeps a whole version id");

/* Whether the cache entry was built from the fields of st the answer shows. */
static bool s_fresh(const struct kb_srv_get_cache *g, const struct kb_tenant_status *st)
{
    return g->tail != NULL && g->arn != NULL && g->state == (int)st->state &&
           g->last_rotation == st->last_rotation && strcmp(g->arn, st->secret_arn) == 0 &&
           strcmp(g->version_id, st->version_id) == 0;
}

/* Formats info with a null id and keeps the part after the id, and behind it (in the same block,
 * so that freeing the tail frees both) a copy of the ARN it was built from. */
static int s_fill(struct kb_srv_get_cache *g, const struct kb_proto_tenant_info *info,
                  const struct kb_tenant_status *st)
{
    size_t arn_len = strlen(st->secret_arn), len = 0, tail_len = 0;
    char *line = NULL, *tail = NULL, *block;
    int rc = kb_proto_format_get(NULL, info, &line, &len);

    if (rc == 0)
        rc = kb_srv_splice_tail(line, len, &tail, &tail_len);
    free(line);
    if (rc != 0)
        return rc;
    block = realloc(tail, tail_len + 1 + arn_len + 1);
    if (block == NULL) {
        free(tail);
        return KB_ENOMEM;
    }
    block[tail_len] = '\0';
    memcpy(block + tail_len + 1, st->secret_arn, arn_len + 1);
    free(g->tail);
    g->tail = block;
    g->arn = block + tail_len + 1;
    g->tail_len = tail_len;
    g->state = (int)st->state;
    g->last_rotation = st->last_rotation;
    memcpy(g->version_id, st->version_id, sizeof(g->version_id));
    return 0;
}

int kb_srv_get_line(struct kb_srv_get_cache *g, const struct kb_proto_tenant_info *info,
                    const struct kb_tenant_status *st, const char *id, char **out, size_t *len)
{
    if (!s_fresh(g, st) && s_fill(g, info, st) != 0)
        return kb_proto_format_get(id, info, out, len);
    return kb_srv_splice_id(g->tail, g->tail_len, id, out, len);
}

void kb_srv_get_cache_free(struct kb_srv_get_cache *g, size_t count)
{
    for (size_t i = 0; g != NULL && i < count; i++)
        free(g[i].tail);
    free(g);
}
