/*
 * server_ring.c - the bounded memory of recent watch events (see server_ring.h). Pure but for
 * kb_srv_ring_new_epoch, which reads the kernel's randomness once per broker start.
 */
#include "server/server_ring.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"

int kb_srv_ring_init(struct kb_srv_ring *r, size_t capacity, const char *epoch)
{
    memset(r, 0, sizeof(*r));
    if (capacity == 0 || epoch == NULL || !kb_proto_epoch_valid(epoch, strlen(epoch)))
        return KB_EINVAL;
    r->slots = calloc(capacity, sizeof(*r->slots));
    if (r->slots == NULL)
        return KB_ENOMEM;
    r->capacity = capacity;
    memcpy(r->epoch, epoch, KB_PROTO_EPOCH_SIZE);
    return 0;
}

void kb_srv_ring_cleanup(struct kb_srv_ring *r)
{
    for (size_t i = 0; r->slots != NULL && i < r->capacity; i++)
        free(r->slots[i].line);
    free(r->slots);
    memset(r, 0, sizeof(*r));
}

uint64_t kb_srv_ring_next(const struct kb_srv_ring *r)
{
    return r->last + 1;
}

uint64_t kb_srv_ring_push(struct kb_srv_ring *r, const char *tenant, char *line, size_t len)
{
    uint64_t seq = r->last + 1;
    struct kb_srv_ring_entry *e = &r->slots[(seq - 1) % r->capacity];
    size_t n = strnlen(tenant, KB_PROTO_MAX_TENANT);

    free(e->line);
    e->seq = seq;
    memcpy(e->tenant, tenant, n);
    e->tenant[n] = '\0';
    e->line = line;
    e->len = len;
    r->last = seq;
    return seq;
}

uint64_t kb_srv_ring_first(const struct kb_srv_ring *r)
{
    return r->last >= r->capacity ? r->last - r->capacity + 1 : 1;
}

bool kb_srv_ring_resumable(const struct kb_srv_ring *r, uint64_t since)
{
    return since <= r->last && since + 1 >= kb_srv_ring_first(r);
}

const struct kb_srv_ring_entry *kb_srv_ring_at(const struct kb_srv_ring *r, uint64_t seq)
{
    const struct kb_srv_ring_entry *e;

    if (seq == 0 || seq > r->last || seq < kb_srv_ring_first(r) || r->capacity == 0)
        return NULL;
    e = &r->slots[(seq - 1) % r->capacity];
    return e->seq == seq && e->line != NULL ? e : NULL;
}

void kb_srv_ring_new_epoch(char *out)
{
    uint64_t x = 0;

    if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x)) {
        struct timespec m, t;

        clock_gettime(CLOCK_MONOTONIC, &m);
        clock_gettime(CLOCK_REALTIME, &t);
        x = ((uint64_t)t.tv_sec << 32) ^ (uint64_t)t.tv_nsec ^ ((uint64_t)m.tv_nsec << 20) ^
            (uint64_t)getpid();
    }
    snprintf(out, KB_PROTO_EPOCH_SIZE, "%016" PRIx64, x);
}
