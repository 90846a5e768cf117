/*
 * server_ring.h - the watch stream's memory: the last N events the broker announced, each with
 * its sequence number, so that a watcher that lost its connection can resume where it stopped
 * (PROTOCOL.md section 5, "since").
 *
 * One ring per server, of broker.limits.watch_ring_events entries. Each entry holds the event's
 * tenant and its event line as sent (epoch and seq in it), so a replay writes exactly the bytes a
 * live subscriber got. Sequence numbers start at 1 and grow by one per event, whoever may see it;
 * seq n lives in slot (n - 1) % capacity, so the ring holds seq max(1, last - capacity + 1) to
 * last. Memory is bounded: the slots (about 100 bytes each, allocated at start: 400 KiB at the
 * default 4096) plus one line per held event (typically 300 bytes; at most a few KiB - an ARN and
 * a message the engine bounds), so about 1.6 MiB at the default and a typical load.
 *
 * Pure: no I/O, no clock, no logging; never a secret (event lines carry none).
 */
#ifndef KB_SERVER_RING_H
#define KB_SERVER_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/codec.h"

struct kb_srv_ring_entry {
    uint64_t seq; /* 0: empty */
    char tenant[KB_PROTO_MAX_TENANT + 1];
    char *line; /* owned, with its '\n' */
    size_t len;
};

struct kb_srv_ring {
    struct kb_srv_ring_entry *slots; /* owned */
    size_t capacity;
    uint64_t last; /* the seq of the newest event; 0: none yet */
    char epoch[KB_PROTO_EPOCH_SIZE];
};

/* Caller storage. capacity >= 1; epoch is 16 lowercase hex digits. Returns 0, KB_EINVAL or
 * KB_ENOMEM (then nothing to clean up). */
int kb_srv_ring_init(struct kb_srv_ring *r, size_t capacity, const char *epoch);

/* Frees every line and the slots. A zeroed ring is fine. */
void kb_srv_ring_cleanup(struct kb_srv_ring *r);

/* The seq the next event gets (format its line with it, then push). */
uint64_t kb_srv_ring_next(const struct kb_srv_ring *r);

/* Records the event of seq kb_srv_ring_next(r) for tenant; takes line (len bytes with its '\n'),
 * evicting the oldest entry when full. Returns the seq it got. */
uint64_t kb_srv_ring_push(struct kb_srv_ring *r, const char *tenant, char *line, size_t len);

/* The oldest seq still held (last + 1 when empty). */
uint64_t kb_srv_ring_first(const struct kb_srv_ring *r);

/* Whether a client that last saw seq since (of this epoch) can be resumed from the ring: every
 * event after it is still held (since in [first - 1, last]). */
bool kb_srv_ring_resumable(const struct kb_srv_ring *r, uint64_t since);

/* The entry of seq, or NULL when it is not held. Borrowed until the next push. */
const struct kb_srv_ring_entry *kb_srv_ring_at(const struct kb_srv_ring *r, uint64_t seq);

/* A fresh epoch: 64 random bits (getrandom; the monotonic and real clocks and the pid when it
 * fails) as 16 lowercase hex digits in out (KB_PROTO_EPOCH_SIZE bytes). Not pure: reads the
 * kernel's randomness. */
void kb_srv_ring_new_epoch(char *out);

#endif
