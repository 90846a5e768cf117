/*
 * server_conn.c - one client connection: the peer's kernel credentials, line framing, the limits
 * (rate, requests in flight, unsent bytes, stalled writes, idle time) and the in-order output.
 *
 * Answers leave in request order. A request answered at once goes straight to `out` unless an
 * earlier op is unfinished; then it waits in a slot behind that op (consecutive finished answers
 * share one slot). Everything formatted and not yet written counts against max_queued: a peer
 * that sends without reading is disconnected, so memory per connection stays bounded.
 *
 * The peer's groups come from the kernel (SO_PEERGROUPS). Where it has none, they come from the
 * user database, which may sit behind NSS modules that talk to LDAP or sssd: that lookup runs in
 * libuv's threadpool, and the connection is not read until it is done, so no request is parsed,
 * let alone authorized, before the groups are known (what the peer sends meanwhile waits in the
 * socket, in order).
 *
 * The connection struct lives until its handle is closed, the group lookup is done and every
 * engine operation it started has called back (refs). This file must never write anything but
 * codec-formatted lines, and never log a request line (it may hold anything a peer sent).
 */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/container.h"
#include "common/err.h"
#include "common/log.h"
#include "server/server_internal.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

/* -- buffers ----------------------------------------------------------------------------------- */

static int s_buf_append(struct kb_srv_buf *b, const char *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap < 512 ? 512 : b->cap;
        char *grown;

        while (cap < b->len + len)
            cap *= 2;
        grown = realloc(b->data, cap);
        if (grown == NULL)
            return KB_ENOMEM;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

static void s_buf_free(struct kb_srv_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* -- lifetime ---------------------------------------------------------------------------------- */

static void s_unref(struct kb_srv_conn *c)
{
    struct kb_server *s = c->srv;

    if (--c->refs > 0)
        return;
    free(c->groups);
    free(c->watch_names);
    free(c->acks);
    free(c);
    kb_srv_release(s);
}

static void on_closed(uv_handle_t *h)
{
    s_unref(h->data);
}

static void s_lookup_cancel(struct kb_srv_conn *c);

static void s_rate_release(struct kb_srv_conn *c)
{
    struct kb_srv_rate *r = c->rate;

    if (r == NULL)
        return;
    if (c->watching) {
        r->watches--;
        c->srv->nwatches--;
        c->watching = false;
    }
    /* The uid's last connection: its unlogged denials are summed up now, not whenever the uid
     * comes back. */
    if (--r->refs == 0)
        kb_srv_log_denials(r, uv_now(c->srv->loop), true);
    c->rate = NULL;
}

/* Drops what is queued. Unfinished slots stay with their op (slot_finish frees them). */
static void s_drop_output(struct kb_srv_conn *c)
{
    struct kb_srv_slot *slot = c->slots, *next;

    for (; slot != NULL; slot = next) {
        next = slot->next;
        slot->next = NULL;
        s_buf_free(&slot->buf);
        if (slot->done)
            free(slot);
    }
    c->slots = c->slots_last = NULL;
    s_buf_free(&c->out);
    kb_server_framer_cleanup(&c->framer);
}

void kb_srv_conn_close(struct kb_srv_conn *c, const char *why)
{
    struct kb_server *s = c->srv;

    if (c->closing)
        return;
    c->closing = true;
    if (!c->rejected)
        kb_srv_log_flush(c, 0, true);
    if (why != NULL)
        kb_srv_log_peer(KB_LOG_INFO, "connection-closed", c, why);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    if (c->rejected)
        s->nrejecting--;
    else
        s->nconns--;
    s_rate_release(c);
    s_drop_output(c);
    s_lookup_cancel(c);
    uv_close((uv_handle_t *)&c->pipe, on_closed);
}

/* -- output ------------------------------------------------------------------------------------ */

struct s_write {
    uv_write_t req;
    struct kb_srv_buf buf;
};

static bool s_drained(const struct kb_srv_conn *c)
{
    return c->slots == NULL && c->out.len == 0 && c->writes == 0;
}

static void on_write(uv_write_t *req, int status)
{
    struct s_write *w = container_of(req, struct s_write, req);
    struct kb_srv_conn *c = req->data;

    c->writes--;
    c->queued -= w->buf.len;
    s_buf_free(&w->buf);
    free(w);
    if (c->closing)
        return;
    if (status < 0)
        kb_srv_conn_close(c, "write failed");
    else if (c->drain_then_close && s_drained(c))
        kb_srv_conn_close(c, NULL);
}

/* Moves the answers of finished head slots (and the progress of the first unfinished one) to
 * out. */
static int s_take_slots(struct kb_srv_conn *c)
{
    struct kb_srv_slot *slot;

    while ((slot = c->slots) != NULL) {
        if (slot->buf.len > 0) {
            if (c->out.len == 0 && c->out.cap < slot->buf.cap) {
                struct kb_srv_buf t = c->out;

                c->out = slot->buf;
                slot->buf = t;
            } else if (s_buf_append(&c->out, slot->buf.data, slot->buf.len) != 0) {
                return KB_ENOMEM;
            } else {
                slot->buf.len = 0;
            }
        }
        if (!slot->done)
            break;
        c->slots = slot->next;
        if (c->slots == NULL)
            c->slots_last = NULL;
        c->inflight -= slot->nreq;
        s_buf_free(&slot->buf);
        free(slot);
    }
    return 0;
}

void kb_srv_flush(struct kb_srv_conn *c)
{
    struct s_write *w;
    uv_buf_t b;
    int n;

    if (c->closing)
        return;
    if (s_take_slots(c) != 0) {
        kb_srv_conn_close(c, "out of memory");
        return;
    }
    if (c->out.len > 0) {
        b = uv_buf_init(c->out.data, (unsigned)c->out.len);
        n = uv_try_write((uv_stream_t *)&c->pipe, &b, 1);
        if (n < 0 && n != UV_EAGAIN) {
            kb_srv_conn_close(c, "write failed");
            return;
        }
        if (n > 0) {
            memmove(c->out.data, c->out.data + n, c->out.len - (size_t)n);
            c->out.len -= (size_t)n;
            c->queued -= (size_t)n;
        }
    }
    if (c->out.len > 0) {
        w = calloc(1, sizeof(*w));
        if (w == NULL) {
            kb_srv_conn_close(c, "out of memory");
            return;
        }
        w->buf = c->out;
        memset(&c->out, 0, sizeof(c->out));
        w->req.data = c;
        b = uv_buf_init(w->buf.data, (unsigned)w->buf.len);
        n = uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_write);
        if (n != 0) {
            c->queued -= w->buf.len;
            s_buf_free(&w->buf);
            free(w);
            kb_srv_conn_close(c, "write failed");
            return;
        }
        c->writes++;
    }
    if (c->drain_then_close && s_drained(c))
        kb_srv_conn_close(c, NULL);
}

/* Appends a line after everything queued. held: the line answers a request (counted in flight
 * until it reaches out). Takes line. */
static void s_emit(struct kb_srv_conn *c, char *line, size_t len, bool held)
{
    struct kb_srv_slot *tail = c->slots_last;
    int rc = 0;

    if (c->closing) {
        free(line);
        return;
    }
    if (tail == NULL) {
        rc = s_buf_append(&c->out, line, len);
    } else if (tail->done) {
        rc = s_buf_append(&tail->buf, line, len);
        tail->nreq += held;
        c->inflight += held;
    } else {
        struct kb_srv_slot *slot = calloc(1, sizeof(*slot));

        rc = slot == NULL ? KB_ENOMEM : s_buf_append(&slot->buf, line, len);
        if (rc == 0) {
            slot->conn = c;
            slot->done = true;
            slot->nreq = held;
            tail->next = slot;
            c->slots_last = slot;
            c->inflight += held;
        } else {
            free(slot);
        }
    }
    free(line);
    if (rc != 0) {
        kb_srv_conn_close(c, "out of memory");
        return;
    }
    c->queued += len;
    if (c->queued > c->srv->max_queued) {
        c->srv->metrics.cut_slow++;
        kb_srv_conn_close(c, "slow reader: too many unread answers");
    }
}

void kb_srv_reply(struct kb_srv_conn *c, char *line, size_t len)
{
    if (line == NULL) {
        kb_srv_reply_error(c, KB_PROTO_OP_NONE, NULL, KB_PROTO_EINTERNAL, "out of memory");
        return;
    }
    s_emit(c, line, len, true);
}

void kb_srv_reply_error(struct kb_srv_conn *c, enum kb_proto_op op, const char *id,
                        enum kb_proto_err code, const char *message)
{
    char *line = NULL;
    size_t len = 0;

    kb_srv_count(c->srv, op, code);
    if (kb_proto_format_error(id, code, message, &line, &len) != 0 &&
        kb_proto_format_error(NULL, code, NULL, &line, &len) != 0) {
        kb_srv_conn_close(c, "out of memory");
        return;
    }
    s_emit(c, line, len, true);
}

void kb_srv_push(struct kb_srv_conn *c, char *line, size_t len)
{
    c->srv->metrics.events++;
    s_emit(c, line, len, false);
    kb_srv_flush(c);
}

struct kb_srv_slot *kb_srv_slot_open(struct kb_srv_conn *c)
{
    struct kb_srv_slot *slot = calloc(1, sizeof(*slot));

    if (slot == NULL)
        return NULL;
    slot->conn = c;
    slot->nreq = 1;
    if (c->slots_last != NULL)
        c->slots_last->next = slot;
    else
        c->slots = slot;
    c->slots_last = slot;
    c->inflight++;
    c->refs++;
    return slot;
}

void kb_srv_slot_append(struct kb_srv_slot *slot, char *line, size_t len)
{
    struct kb_srv_conn *c = slot->conn;

    if (c->closing || s_buf_append(&slot->buf, line, len) != 0) {
        free(line);
        return;
    }
    free(line);
    c->queued += len;
    if (c->queued > c->srv->max_queued) {
        c->srv->metrics.cut_slow++;
        kb_srv_conn_close(c, "slow reader: too many unread answers");
        return;
    }
    if (c->slots == slot)
        kb_srv_flush(c);
}

void kb_srv_slot_finish(struct kb_srv_slot *slot, char *line, size_t len)
{
    struct kb_srv_conn *c = slot->conn;

    if (c->closing) {
        /* The connection dropped its list; this op still owned the slot. */
        free(line);
        s_buf_free(&slot->buf);
        free(slot);
        s_unref(c);
        return;
    }
    slot->done = true;
    if (line == NULL) {
        char *err = NULL;

        if (kb_proto_format_error(NULL, KB_PROTO_EINTERNAL, NULL, &err, &len) == 0)
            line = err;
    }
    if (line != NULL) {
        if (s_buf_append(&slot->buf, line, len) == 0)
            c->queued += len;
        free(line);
    }
    kb_srv_flush(c);
    s_unref(c);
}

/* -- input ------------------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct kb_srv_conn *c = h->data;

    /* One buffer for the whole loop: on_read consumes it before the next read. */
    *buf = uv_buf_init(c->srv->readbuf, sizeof(c->srv->readbuf));
}

static bool s_stopped(const struct kb_srv_conn *c)
{
    return c->closing || c->drain_then_close;
}

static int on_line(void *ctx, const char *line, size_t len)
{
    struct kb_srv_conn *c = ctx;
    struct kb_server *s = c->srv;
    const struct kb_config_limits *lim = &s->cfg->broker.limits;
    struct kb_proto_request req;
    struct kb_proto_error err;
    bool allowed = kb_server_bucket_take(&c->rate->bucket, lim->requests_per_second_per_uid,
                                         lim->requests_per_second_per_uid, uv_now(s->loop));
    int rc = kb_proto_parse_request(line, len, &req, &err);

    if (!allowed) {
        kb_srv_reply_error(c, rc == 0 ? req.op : KB_PROTO_OP_NONE, rc == 0 ? req.id : err.id,
                           KB_PROTO_ERATE_LIMITED, "too many requests from this uid: slow down");
        kb_proto_request_cleanup(&req);
    } else if (rc != 0) {
        kb_srv_reply_error(c, KB_PROTO_OP_NONE, err.id, err.code, err.message);
    } else if (c->inflight >= lim->max_inflight_per_connection) {
        kb_srv_reply_error(c, req.op, req.id, KB_PROTO_EBUSY,
                           "too many requests in flight on this connection");
        kb_proto_request_cleanup(&req);
    } else {
        kb_srv_ops_dispatch(c, &req);
    }
    return s_stopped(c) ? 1 : 0;
}

/* The peer closed its side: answer what it sent, then close. */
static void s_eof(struct kb_srv_conn *c)
{
    struct kb_server_framer tail = c->framer;

    uv_read_stop((uv_stream_t *)&c->pipe);
    /* A last line without its '\n' is still a request. */
    if (tail.len > 0) {
        memset(&c->framer, 0, sizeof(c->framer));
        on_line(c, tail.buf, tail.len);
        kb_server_framer_cleanup(&tail);
    }
    if (!c->closing) {
        c->drain_then_close = true;
        kb_srv_flush(c);
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct kb_srv_conn *c = stream->data;
    int rc;

    if (c->closing || nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_EOF)
            s_eof(c);
        else
            kb_srv_conn_close(c, uv_err_name((int)nread));
        return;
    }
    c->last_activity_ms = uv_now(c->srv->loop);
    if (c->drain_then_close)
        return;
    /* The request deadline runs from the first byte of a line, however slowly the rest comes:
     * a line begun in this read (nothing carried over, or a newline in this read) starts it. */
    if (c->framer.len == 0 || memchr(buf->base, '\n', (size_t)nread) != NULL)
        c->line_started_ms = c->last_activity_ms;
    rc = kb_server_framer_feed(&c->framer, buf->base, (size_t)nread, KB_PROTO_MAX_LINE, on_line, c);
    if (c->framer.len == 0)
        c->line_started_ms = 0;
    if (rc == KB_ETOOBIG) {
        kb_srv_reply_error(c, KB_PROTO_OP_NONE, NULL, KB_PROTO_ELINE_TOO_LONG,
                           "request line longer than 65536 bytes with its newline; closing");
        c->drain_then_close = true;
        uv_read_stop(stream);
    } else if (rc == KB_ENOMEM) {
        kb_srv_conn_close(c, "out of memory");
        return;
    }
    kb_srv_flush(c);
}

/* -- accept ------------------------------------------------------------------------------------ */

/* The supplementary groups the kernel holds for the peer (SO_PEERGROUPS, Linux >= 4.13): exactly
 * the groups of the process that connected, with no name-service lookup on the loop. */
static int s_peer_groups(struct kb_srv_conn *c, int fd)
{
    socklen_t len = 64 * sizeof(gid_t);

    for (int tries = 0; tries < 2; tries++) {
        gid_t *g = malloc(len > 0 ? len : sizeof(gid_t));

        if (g == NULL)
            return KB_ENOMEM;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) == 0) {
            c->groups = (uint32_t *)g;
            c->peer.ngroups = len / sizeof(gid_t);
            return 0;
        }
        free(g);
        if (errno != ERANGE)
            return -errno;
    }
    return KB_EINVAL;
}

/* Without SO_PEERGROUPS: the groups the user database gives uid (whose primary group is gid).
 * Runs in the threadpool: it touches nothing but its arguments. Sets *out (malloc'd, caller frees)
 * and *count, or leaves both alone when there is no such user. Returns 0 or KB_ENOMEM. */
static int s_db_groups(uint32_t uid, uint32_t gid, gid_t **out, size_t *count)
{
    char buf[4096];
    struct passwd pw, *res = NULL;
    int n = 256;
    gid_t *g;

    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
        return 0; /* no such user: no supplementary groups */
    g = malloc((size_t)n * sizeof(gid_t));
    if (g == NULL)
        return KB_ENOMEM;
    if (getgrouplist(pw.pw_name, gid, g, &n) < 0)
        n = 256; /* truncated: matching fewer groups can only deny */
    *out = g;
    *count = (size_t)n;
    return 0;
}

/* The peer's credentials and, when the kernel has them, its groups. -ENOPROTOOPT: the kernel has
 * no SO_PEERGROUPS, and the groups must come from the user database (s_lookup_start). */
static int s_peer(struct kb_srv_conn *c)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    uv_os_fd_t fd;
    int rc = uv_fileno((uv_handle_t *)&c->pipe, &fd);

    if (rc != 0)
        return rc;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return -errno;
    c->peer.uid = (uint32_t)cred.uid;
    c->peer.gid = (uint32_t)cred.gid;
    c->peer.pid = cred.pid;
    rc = s_peer_groups(c, fd);
    c->peer.groups = c->groups;
    return rc;
}

/* The uid's shared state; what no connection holds is forgotten once its bucket is full again. */
static struct kb_srv_rate *s_rate(struct kb_server *s, uint32_t uid)
{
    const struct kb_config_limits *lim = &s->cfg->broker.limits;
    uint32_t rps = lim->requests_per_second_per_uid;
    uint64_t now = uv_now(s->loop);
    struct kb_srv_rate **p = &s->rates, *r;

    while ((r = *p) != NULL) {
        if (r->uid == uid)
            break;
        if (r->refs == 0 && kb_server_bucket_full(&r->bucket, rps, rps, now)) {
            *p = r->next;
            kb_srv_log_denials(r, now, true);
            free(r);
            continue;
        }
        p = &r->next;
    }
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return NULL;
        r->uid = uid;
        kb_server_bucket_init(&r->bucket, rps, now);
        kb_server_bucket_init(&r->deny_log, KB_SRV_DENY_LOG_BURST, now);
        r->denials_summarised_ms = now;
        r->next = s->rates;
        s->rates = r;
    }
    r->refs++;
    return r;
}

static void s_reject(struct kb_srv_conn *c, const char *reason, uint64_t *counter);

/* The limits that need the peer: admins are never capped per uid and may take the reserved
 * slots; everyone else gets at most max_connections_per_uid connections, and none of the last
 * admin_reserved_connections slots. Returns true when c was rejected. */
static bool s_over_limit(struct kb_srv_conn *c)
{
    struct kb_server *s = c->srv;
    const struct kb_config_limits *lim = &s->cfg->broker.limits;

    if (c->admin)
        return false;
    if (c->rate->refs > lim->max_connections_per_uid) {
        s_reject(c,
                 "busy: too many connections from this uid (broker.limits.max_connections_per_uid)",
                 &s->metrics.rejected_uid);
        return true;
    }
    if (s->nconns + lim->admin_reserved_connections > lim->max_connections) {
        s_reject(c, "busy: too many connections (the remaining ones are reserved for admins)",
                 &s->metrics.rejected_reserved);
        return true;
    }
    return false;
}

/* The peer is known (rc 0) or cannot be (rc < 0): starts reading its requests, or logs why not
 * and closes. */
static void s_serve(struct kb_srv_conn *c, int rc)
{
    if (rc == 0)
        c->rate = s_rate(c->srv, c->peer.uid);
    if (rc != 0 || c->rate == NULL) {
        kb_log(KB_LOG_ERROR, "accept", "error", rc != 0 ? kb_strerror(rc) : "out of memory", NULL);
        kb_srv_conn_close(c, NULL);
        return;
    }
    c->admin = kb_server_authz_admin(c->srv->cfg, &c->peer);
    if (s_over_limit(c))
        return;
    kb_srv_log_peer(KB_LOG_DEBUG, "connection", c, NULL);
    rc = uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
    if (rc != 0)
        kb_srv_conn_close(c, uv_err_name(rc));
}

/* A user-database lookup in the threadpool. The work callback sees only uid, gid and the result
 * fields, never the connection (which belongs to the loop thread); the connection holds a
 * reference until the after-callback has run. */
struct kb_srv_lookup {
    uv_work_t req;
    struct kb_srv_conn *c;
    uint32_t uid, gid;
    gid_t *groups; /* the result; owned until handed to c */
    size_t ngroups;
    int rc;
};

static void on_lookup_work(uv_work_t *req)
{
    struct kb_srv_lookup *l = container_of(req, struct kb_srv_lookup, req);

    l->rc = s_db_groups(l->uid, l->gid, &l->groups, &l->ngroups);
}

/* On the loop, after on_lookup_work, or with UV_ECANCELED when the connection closed before the
 * work started. */
static void on_lookup_done(uv_work_t *req, int status)
{
    struct kb_srv_lookup *l = container_of(req, struct kb_srv_lookup, req);
    struct kb_srv_conn *c = l->c;
    int rc = status < 0 ? status : l->rc;

    c->lookup = NULL;
    if (!c->closing) {
        if (rc == 0) {
            c->groups = (uint32_t *)l->groups;
            c->peer.ngroups = l->ngroups;
            c->peer.groups = c->groups;
            l->groups = NULL;
        }
        /* The idle clock starts when the broker is ready to read, not while it was looking. */
        c->last_activity_ms = uv_now(c->srv->loop);
        s_serve(c, rc);
    }
    free(l->groups);
    free(l);
    s_unref(c);
}

/* Starts the group lookup; s_serve runs when it is done. Returns 0, or KB_ENOMEM or a libuv error
 * (then nothing was started). */
static int s_lookup_start(struct kb_srv_conn *c)
{
    struct kb_srv_lookup *l = calloc(1, sizeof(*l));
    int rc;

    if (l == NULL)
        return KB_ENOMEM;
    l->c = c;
    l->uid = c->peer.uid;
    l->gid = c->peer.gid;
    rc = uv_queue_work(c->srv->loop, &l->req, on_lookup_work, on_lookup_done);
    if (rc != 0) {
        free(l);
        return rc;
    }
    c->lookup = l;
    c->refs++;
    return 0;
}

/* At close: a lookup not started yet is dropped (its after-callback still runs, with
 * UV_ECANCELED); one already running finishes on its thread and is discarded. */
static void s_lookup_cancel(struct kb_srv_conn *c)
{
    if (c->lookup != NULL)
        uv_cancel((uv_req_t *)&c->lookup->req);
}

/* Over a connection limit: one error line (reason), then close. The connection no longer counts
 * as served: it moves from nconns to nrejecting, and gives up its uid's state. */
static void s_reject(struct kb_srv_conn *c, const char *reason, uint64_t *counter)
{
    struct kb_server *s = c->srv;
    char *line = NULL;
    size_t len = 0;

    (*counter)++;
    s_rate_release(c);
    s->nconns--;
    c->rejected = true;
    s->nrejecting++;
    if (c->peer.pid != 0)
        kb_srv_log_peer(KB_LOG_WARN, "connection-rejected", c, reason);
    else
        kb_log(KB_LOG_WARN, "connection-rejected", "reason", reason, NULL);
    if (s->nrejecting > KB_SERVER_MAX_REJECTED ||
        kb_proto_format_error(NULL, KB_PROTO_EBUSY, reason, &line, &len) != 0) {
        kb_srv_conn_close(c, NULL);
        return;
    }
    c->drain_then_close = true;
    s_emit(c, line, len, false);
    kb_srv_flush(c);
}

static void s_link(struct kb_server *s, struct kb_srv_conn *c)
{
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
}

void kb_srv_conn_accept(struct kb_server *s)
{
    struct kb_srv_conn *c = calloc(1, sizeof(*c));
    int rc;

    if (c == NULL || uv_pipe_init(s->loop, &c->pipe, 0) != 0) {
        free(c);
        kb_log(KB_LOG_ERROR, "accept", "error", "out of memory", NULL);
        return;
    }
    c->srv = s;
    c->pipe.data = c;
    c->refs = 1;
    c->last_activity_ms = uv_now(s->loop);
    c->folds_flushed_ms = c->last_activity_ms;
    s->pending++;
    s_link(s, c);
    rc = uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->pipe);
    s->nconns++; /* kb_srv_conn_close counts it down */
    if (rc != 0) {
        kb_log(KB_LOG_WARN, "accept", "error", uv_strerror(rc), NULL);
        kb_srv_conn_close(c, NULL);
        return;
    }
    s->metrics.accepted++;
    if (s->nconns > s->cfg->broker.limits.max_connections) {
        s_reject(c, "busy: too many connections", &s->metrics.rejected);
        return;
    }
    rc = s_peer(c);
    if (rc == -ENOPROTOOPT) {
        rc = s_lookup_start(c);
        if (rc == 0)
            return; /* s_serve runs when the groups are known */
    }
    s_serve(c, rc);
}

/* -- sweep ------------------------------------------------------------------------------------- */

void kb_srv_conn_sweep(struct kb_srv_conn *c, uint64_t now_ms)
{
    struct kb_server *s = c->srv;
    uint64_t idle_ms = s->cfg->broker.limits.idle_timeout * 1000u;

    if (c->closing)
        return;
    kb_srv_log_flush(c, now_ms, false);
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > 0) {
        if (c->stall_since_ms == 0) {
            c->stall_since_ms = now_ms;
        } else if (now_ms - c->stall_since_ms >= s->write_stall_ms) {
            s->metrics.cut_slow++;
            kb_srv_conn_close(c, "slow reader: a write was pending too long");
            return;
        }
    } else {
        c->stall_since_ms = 0;
    }
    if (c->rate != NULL)
        kb_srv_log_denials(c->rate, now_ms, false);
    if (c->line_started_ms != 0 && !c->drain_then_close &&
        now_ms - c->line_started_ms >= s->cfg->broker.limits.request_timeout * 1000u) {
        char msg[128];

        s->metrics.cut_request++;
        snprintf(msg, sizeof(msg),
                 "request line not completed within %" PRIu64
                 "s (broker.limits.request_timeout); closing",
                 s->cfg->broker.limits.request_timeout);
        kb_srv_log_peer(KB_LOG_INFO, "connection-closed", c, "request timeout");
        kb_server_framer_cleanup(&c->framer);
        c->line_started_ms = 0;
        uv_read_stop((uv_stream_t *)&c->pipe);
        kb_srv_reply_error(c, KB_PROTO_OP_NONE, NULL, KB_PROTO_EBAD_REQUEST, msg);
        c->drain_then_close = true;
        kb_srv_flush(c);
        return;
    }
    /* A connection waiting for its group lookup is not idle: the broker is the slow one. A watch
     * of nothing the peer may see waits for nothing, so it is idle like any other. */
    if (!c->watch_live && c->inflight == 0 && c->writes == 0 && !c->rejected && c->lookup == NULL &&
        now_ms - c->last_activity_ms >= idle_ms) {
        s->metrics.cut_idle++;
        kb_srv_conn_close(c, "idle timeout");
    }
}
