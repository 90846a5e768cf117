/*
 * server_limits.c - line framing and the token bucket (see server_limits.h).
 *
 * The framer checks a line's length before it copies anything, so a peer that never sends a
 * newline costs at most one maximal line of memory. It must never deliver a line longer than the
 * limit, nor a line split across a too-long one (after KB_ETOOBIG the stream is unframed).
 */
#include "server/server_limits.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define S_MIN_CAP  256
#define S_KEEP_CAP 4096 /* a larger buffer is released once its line is done */

/* Makes room for need bytes in f->buf. */
static int s_reserve(struct kb_server_framer *f, size_t need)
{
    size_t cap = f->cap < S_MIN_CAP ? S_MIN_CAP : f->cap;
    char *grown;

    if (need <= f->cap)
        return 0;
    while (cap < need)
        cap *= 2;
    grown = realloc(f->buf, cap);
    if (grown == NULL)
        return KB_ENOMEM;
    f->buf = grown;
    f->cap = cap;
    return 0;
}

/* Keeps an unfinished line (the framer is empty, or holds its beginning). */
static int s_keep(struct kb_server_framer *f, const char *data, size_t n, size_t max_line)
{
    int rc;

    /* Even with the '\n' still to come the line is already too long. */
    if (f->len + n >= max_line) {
        kb_server_framer_cleanup(f);
        return KB_ETOOBIG;
    }
    rc = s_reserve(f, f->len + n);
    if (rc != 0) {
        kb_server_framer_cleanup(f);
        return rc;
    }
    memcpy(f->buf + f->len, data, n);
    f->len += n;
    return 0;
}

/* The carried line is done (its tail is in data[0..take), '\n' last): deliver it. */
static int s_finish_carried(struct kb_server_framer *f, const char *data, size_t take,
                            size_t max_line, kb_server_line_cb cb, void *ctx)
{
    int rc;

    if (f->len + take > max_line) {
        kb_server_framer_cleanup(f);
        return KB_ETOOBIG;
    }
    rc = s_reserve(f, f->len + take);
    if (rc != 0) {
        kb_server_framer_cleanup(f);
        return rc;
    }
    memcpy(f->buf + f->len, data, take - 1);
    f->len += take - 1;
    rc = cb(ctx, f->buf, f->len);
    f->len = 0;
    if (f->cap > S_KEEP_CAP)
        kb_server_framer_cleanup(f);
    return rc;
}

int kb_server_framer_feed(struct kb_server_framer *f, const char *data, size_t n, size_t max_line,
                          kb_server_line_cb cb, void *ctx)
{
    size_t pos = 0;
    int rc;

    if (f->len > 0) {
        const char *nl = memchr(data, '\n', n);

        if (nl == NULL)
            return s_keep(f, data, n, max_line);
        pos = (size_t)(nl - data) + 1;
        rc = s_finish_carried(f, data, pos, max_line, cb, ctx);
        if (rc != 0)
            return rc;
    }
    while (pos < n) {
        const char *nl = memchr(data + pos, '\n', n - pos);
        size_t len;

        if (nl == NULL)
            return s_keep(f, data + pos, n - pos, max_line);
        len = (size_t)(nl - (data + pos));
        if (len + 1 > max_line) {
            kb_server_framer_cleanup(f);
            return KB_ETOOBIG;
        }
        rc = cb(ctx, data + pos, len);
        if (rc != 0)
            return rc;
        pos += len + 1;
    }
    return 0;
}

void kb_server_framer_cleanup(struct kb_server_framer *f)
{
    if (f == NULL)
        return;
    free(f->buf);
    memset(f, 0, sizeof(*f));
}

/* -- token bucket ------------------------------------------------------------------------------ */

void kb_server_bucket_init(struct kb_server_bucket *b, uint32_t burst, uint64_t now_ms)
{
    b->millitokens = (uint64_t)burst * 1000u;
    b->last_ms = now_ms;
}

/* The tokens (in thousandths) the bucket holds at now_ms, without changing it. rate tokens per
 * second are rate thousandths per millisecond. */
static uint64_t s_level(const struct kb_server_bucket *b, uint32_t rate, uint32_t burst,
                        uint64_t now_ms)
{
    uint64_t cap = (uint64_t)burst * 1000u;
    uint64_t elapsed = now_ms > b->last_ms ? now_ms - b->last_ms : 0;
    uint64_t level = b->millitokens;

    /* elapsed * rate cannot overflow before it exceeds any cap: clamp elapsed first. */
    if (elapsed > cap)
        elapsed = cap;
    level += elapsed * rate;
    return level > cap ? cap : level;
}

bool kb_server_bucket_take(struct kb_server_bucket *b, uint32_t rate, uint32_t burst,
                           uint64_t now_ms)
{
    b->millitokens = s_level(b, rate, burst, now_ms);
    if (now_ms > b->last_ms)
        b->last_ms = now_ms;
    if (b->millitokens < 1000u)
        return false;
    b->millitokens -= 1000u;
    return true;
}

bool kb_server_bucket_full(const struct kb_server_bucket *b, uint32_t rate, uint32_t burst,
                           uint64_t now_ms)
{
    return s_level(b, rate, burst, now_ms) >= (uint64_t)burst * 1000u;
}
