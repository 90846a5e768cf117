/*
 * server_limits.h - the pure parts of the socket server's limits: the line framer that cuts a
 * connection's byte stream into request lines no longer than the protocol allows, and the token
 * bucket behind the per-uid request rate limit.
 *
 * Nothing here does I/O, reads a clock or logs: time is an argument, so the unit tests drive it.
 * The framer must never buffer more than one maximal line per connection, whatever a peer sends.
 */
#ifndef KB_SERVER_LIMITS_H
#define KB_SERVER_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* -- line framing ------------------------------------------------------------------------------ */

/*
 * A connection's framer. Complete lines inside one read are handed out in place; only the
 * unfinished tail of a read is copied (into buf), so a peer that sends whole lines costs no copy.
 * Zero it to initialise; release with kb_server_framer_cleanup().
 */
struct kb_server_framer {
    char *buf;  /* the partial line carried to the next read; malloc'd, owned */
    size_t len; /* bytes in buf */
    size_t cap; /* bytes allocated */
};

/* Called for each complete line, without its '\n' (a '\r' before it is kept: the codec treats it
 * as whitespace). line is borrowed until the callback returns. Returning non-zero stops the feed,
 * which returns that value and discards the rest of the data. */
typedef int (*kb_server_line_cb)(void *ctx, const char *line, size_t len);

/*
 * Feeds n bytes of data. Every line whose length with its '\n' is at most max_line goes to cb.
 * Returns 0; the callback's non-zero value; KB_ETOOBIG as soon as a line is known to be longer
 * than max_line (lines before it were delivered; the framer then holds nothing and the stream
 * has lost its framing: close the connection); KB_ENOMEM (the partial line could not be kept).
 * data is borrowed for the call. max_line must be at least 1.
 */
int kb_server_framer_feed(struct kb_server_framer *f, const char *data, size_t n, size_t max_line,
                          kb_server_line_cb cb, void *ctx);

/* Frees the partial line and zeroes *f. NULL is fine. */
void kb_server_framer_cleanup(struct kb_server_framer *f);

/* -- token bucket ------------------------------------------------------------------------------ */

/*
 * rate requests per second with a burst of `burst` requests. Tokens are kept in thousandths so
 * that integer arithmetic refills exactly rate tokens per 1000 ms. Caller storage.
 */
struct kb_server_bucket {
    uint64_t millitokens;
    uint64_t last_ms;
};

/* A full bucket at time now_ms. */
void kb_server_bucket_init(struct kb_server_bucket *b, uint32_t burst, uint64_t now_ms);

/* Refills for the time since the last call (a clock that went backwards refills nothing), then
 * takes one token. Returns true when one was available. */
bool kb_server_bucket_take(struct kb_server_bucket *b, uint32_t rate, uint32_t burst,
                           uint64_t now_ms);

/* Whether the bucket would be full again at now_ms (so forgetting it changes nothing). */
bool kb_server_bucket_full(const struct kb_server_bucket *b, uint32_t rate, uint32_t burst,
                           uint64_t now_ms);

#endif
