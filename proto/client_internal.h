/*
 * client_internal.h - what libkeybroker's files share: the handle, the error setter, one
 * request/reply exchange and the check of who serves the socket. Private to proto/client*.c.
 */
#ifndef KB_CLIENT_INTERNAL_H
#define KB_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "common/err.h"
#include "keybroker/client.h"

struct kb_client {
    int fd;
    int timeout_ms;   /* per line of a reply, and for writing a request; < 0: forever */
    uint64_t next_id; /* the id of the next request */
    bool broken;      /* framing or a reply was lost: no further calls */
    bool watching;    /* subscribed: only events from now on */
    char *buf;        /* bytes received: buf[start..len) are unread */
    size_t start;
    size_t len;
    size_t cap;
    size_t scanned;  /* bytes after start known to hold no '\n' */
    size_t consumed; /* the line last returned, to drop at the next read */
    struct kb_client_error last;
};

/* Records err and a message as c's last error, with no broker code. Returns err. */
int kb_client_fail(struct kb_client *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Whether the peer of the connected socket fd (at path) may be trusted as the broker
 * (client_peer.c; the rule is in keybroker/client.h). spec as kb_client_options.server_uid.
 * Stores the peer's uid in *peer_uid (may be NULL) once known. Returns 0, KB_CLIENT_EPEER,
 * -EINVAL (malformed setting) or -errno (SO_PEERCRED failed), with a sentence in why.
 */
int kb_client__peer_check(int fd, const char *path, const char *spec, uint32_t *peer_uid, char *why,
                          size_t whylen);

/* Reads the next line (see client.c). */
int kb_client_read_line(struct kb_client *c, int timeout_ms, const char **line, size_t *len);

/* Called for each event line that carries the request's id (provision progress); reply and line
 * are borrowed until it returns. */
typedef void (*kb_client_event_fn)(void *ctx, const struct kb_proto_reply *reply, const char *line,
                                   size_t len);

/*
 * Sends req (its id is assigned here) and reads until its reply. Returns 0 with a result in
 * *reply (release with kb_proto_reply_cleanup), KB_CLIENT_EREMOTE with the broker's code and
 * message recorded in c->last (nothing in *reply to release), or another error (likewise).
 */
int kb_client_exchange(struct kb_client *c, struct kb_proto_request *req,
                       kb_client_event_fn on_event, void *ctx, struct kb_proto_reply *reply);

/* Sends req (its id is assigned here) without waiting for the reply (a watch connection's ack:
 * the reader skips the reply line). Returns 0 or an error as kb_client_exchange. */
int kb_client_send(struct kb_client *c, struct kb_proto_request *req);

#endif
