/*
 * client.c - libkeybroker's connection: connect with a timeout, write a request, read reply lines
 * with poll(2), match each reply to its request, and follow a watch subscription. Who serves the
 * socket is checked on connect, before anything is sent (client_peer.c).
 *
 * One request is in flight at a time, so a reply is matched by its id and anything else is a
 * protocol error. A timeout or a framing error leaves the byte stream in an unknown place, so the
 * handle refuses further calls (-ENOTCONN) rather than read someone else's reply. The typed calls
 * that turn results into structs are in client_calls.c. This file never logs, never raises
 * SIGPIPE (MSG_NOSIGNAL), and never carries a secret: the protocol has none to carry.
 */
#include "client_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define S_READ_CHUNK 4096

/* -- errors ----------------------------------------------------------------------------------- */

const char *kb_client_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case KB_CLIENT_EREMOTE:
        return "the broker answered with an error";
    case KB_CLIENT_EPROTO:
        return "malformed reply from the broker";
    case KB_CLIENT_ECLOSED:
        return "the broker closed the connection";
    case KB_CLIENT_EPEER:
        return "the socket is served by a uid that is not root, yours or the broker's user (see "
               "KEYBROKER_SERVER_UID)";
    default:
        return err < 0 && err > -4096 ? strerror(-err) : "unknown error";
    }
}

int kb_client_fail(struct kb_client *c, int err, const char *fmt, ...)
{
    va_list ap;

    c->last.err = err;
    c->last.code[0] = '\0';
    va_start(ap, fmt);
    vsnprintf(c->last.message, sizeof(c->last.message), fmt, ap);
    va_end(ap);
    return err;
}

/* Like kb_client_fail, and the connection is not used again. */
static int s_break(struct kb_client *c, int err, const char *what)
{
    c->broken = true;
    if (what == NULL)
        return kb_client_fail(c, err, "%s", kb_client_strerror(err));
    return kb_client_fail(c, err, "%s: %s", what, kb_client_strerror(err));
}

const struct kb_client_error *kb_client_last_error(const struct kb_client *c)
{
    return &c->last;
}

/* -- connecting ------------------------------------------------------------------------------- */

const char *kb_client_socket_path(void)
{
    const char *env = getenv(KB_CLIENT_SOCKET_ENV);

    return env != NULL && env[0] != '\0' ? env : KB_CLIENT_DEFAULT_SOCKET;
}

/* A blocking connect bounded by SO_SNDTIMEO: Linux applies it while a Unix socket's backlog is
 * full, and a non-blocking connect could not be waited for with poll(). */
static int s_connect_fd(const char *path, int timeout_ms, int *fd_out)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    size_t len = strlen(path);
    int fd, rc = 0;

    if (len >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, len + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
        rc = -errno;
        goto cleanup;
    }
    while ((rc = connect(fd, (const struct sockaddr *)&sa, sizeof(sa))) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        rc = errno == EAGAIN || errno == EINPROGRESS ? -ETIMEDOUT : -errno;
        goto cleanup;
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        rc = -errno;
cleanup:
    if (rc != 0)
        close(fd);
    else
        *fd_out = fd;
    return rc;
}

/* Fills the caller's error storage, when there is one, and returns err. */
static int s_connect_fail(const struct kb_client_options *opt, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_connect_fail(const struct kb_client_options *opt, int err, const char *fmt, ...)
{
    va_list ap;

    if (opt->error == NULL)
        return err;
    memset(opt->error, 0, sizeof(*opt->error));
    opt->error->err = err;
    va_start(ap, fmt);
    vsnprintf(opt->error->message, sizeof(opt->error->message), fmt, ap);
    va_end(ap);
    return err;
}

int kb_client_connect_opts(const char *path, const struct kb_client_options *opt,
                           struct kb_client **out)
{
    char why[sizeof(((struct kb_client_error *)0)->message)] = "";
    struct kb_client_options o = {0};
    struct kb_client *c;
    int fd = -1, rc;

    if (out == NULL || opt == NULL || opt->size < sizeof(size_t))
        return -EINVAL;
    *out = NULL;
    /* Only the fields the caller's struct has: a program built against an older header passes a
     * smaller size. */
    memcpy(&o, opt, opt->size < sizeof(o) ? opt->size : sizeof(o));
    if (path == NULL || path[0] == '\0')
        path = kb_client_socket_path();
    if (o.timeout_ms <= 0)
        o.timeout_ms = KB_CLIENT_DEFAULT_TIMEOUT;
    /* A malformed broker-user setting is an error whatever serves the socket: root is always
     * accepted, so this only parses it. */
    rc = kb_client_server_trusted(0, 0, o.server_uid, why, sizeof(why));
    if (rc != 0)
        return s_connect_fail(&o, rc, "%s", why);
    rc = s_connect_fd(path, o.timeout_ms, &fd);
    if (rc != 0)
        return s_connect_fail(&o, rc, "cannot connect to %s: %s", path, kb_client_strerror(rc));
    /* Before a byte is sent: a request names the tenant, and a stranger must not even learn that.
     */
    rc = kb_client__peer_check(fd, path, o.server_uid, o.peer_uid, why, sizeof(why));
    if (rc != 0) {
        close(fd);
        return s_connect_fail(&o, rc, "%s", why);
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return s_connect_fail(&o, -ENOMEM, "out of memory");
    }
    c->fd = fd;
    c->timeout_ms = o.timeout_ms;
    c->next_id = 1;
    *out = c;
    return 0;
}

int kb_client_connect(const char *path, int timeout_ms, struct kb_client **out)
{
    struct kb_client_options opt = {.size = sizeof(opt), .timeout_ms = timeout_ms};

    return kb_client_connect_opts(path, &opt, out);
}

void kb_client_close(struct kb_client *c)
{
    if (c == NULL)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    free(c);
}

void kb_client_set_timeout(struct kb_client *c, int timeout_ms)
{
    c->timeout_ms = timeout_ms;
}

/* -- bytes ------------------------------------------------------------------------------------ */

static int64_t s_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on the socket until deadline (-1: forever). Returns 0, -ETIMEDOUT, -errno. */
static int s_wait(struct kb_client *c, short events, int64_t deadline)
{
    struct pollfd pfd = {.fd = c->fd, .events = events};
    int64_t left;
    int n;

    for (;;) {
        left = deadline < 0 ? -1 : deadline - s_now_ms();
        if (deadline >= 0 && left < 0)
            left = 0;
        n = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
        if (n > 0)
            return 0;
        if (n == 0 && deadline >= 0 && s_now_ms() >= deadline)
            return -ETIMEDOUT;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

static int64_t s_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : s_now_ms() + timeout_ms;
}

/* Writes all of data, waiting at most the handle's timeout. */
static int s_write_all(struct kb_client *c, const char *data, size_t len)
{
    int64_t deadline = s_deadline(c->timeout_ms);
    ssize_t n;
    int rc;

    while (len > 0) {
        n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
            continue;
        }
        if (errno == EPIPE || errno == ECONNRESET)
            return KB_CLIENT_ECLOSED;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -errno;
        rc = s_wait(c, POLLOUT, deadline);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Room for at least one more chunk, moving unread bytes to the front first. */
static int s_make_room(struct kb_client *c)
{
    size_t cap;
    char *p;

    if (c->start > 0) {
        memmove(c->buf, c->buf + c->start, c->len - c->start);
        c->len -= c->start;
        c->start = 0;
    }
    if (c->cap - c->len >= S_READ_CHUNK)
        return 0;
    cap = c->cap == 0 ? 2 * S_READ_CHUNK : 2 * c->cap;
    p = realloc(c->buf, cap);
    if (p == NULL)
        return -ENOMEM;
    c->buf = p;
    c->cap = cap;
    return 0;
}

/*
 * The next line from the broker, without its '\n', borrowed until the next read. Waits at most
 * timeout_ms (< 0: forever) for it. Returns 0, -ETIMEDOUT (nothing is lost: a partial line stays
 * buffered), KB_CLIENT_ECLOSED, KB_CLIENT_EPROTO (longer than KB_PROTO_MAX_REPLY), -errno.
 */
int kb_client_read_line(struct kb_client *c, int timeout_ms, const char **line, size_t *len)
{
    int64_t deadline = s_deadline(timeout_ms);
    char *nl;
    ssize_t n;
    int rc;

    c->start += c->consumed;
    c->consumed = 0;
    for (;;) {
        nl = c->len > c->start + c->scanned
                 ? memchr(c->buf + c->start + c->scanned, '\n', c->len - c->start - c->scanned)
                 : NULL;
        if (nl != NULL) {
            *line = c->buf + c->start;
            *len = (size_t)(nl - *line);
            c->consumed = *len + 1;
            c->scanned = 0;
            return 0;
        }
        c->scanned = c->len - c->start;
        if (c->scanned > KB_PROTO_MAX_REPLY)
            return KB_CLIENT_EPROTO;
        rc = s_make_room(c);
        if (rc == 0)
            rc = s_wait(c, POLLIN, deadline);
        if (rc != 0)
            return rc;
        n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n == 0)
            return KB_CLIENT_ECLOSED;
        if (n < 0 && errno == ECONNRESET)
            return KB_CLIENT_ECLOSED;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -errno;
        if (n > 0)
            c->len += (size_t)n;
    }
}

/* -- one exchange ----------------------------------------------------------------------------- */

static int s_usable(struct kb_client *c)
{
    if (c->watching)
        return kb_client_fail(c, -EBUSY, "the connection is subscribed to events (watch)");
    if (c->broken)
        return kb_client_fail(c, -ENOTCONN,
                              "the connection was abandoned after an earlier failure; reconnect");
    return 0;
}

/* Reads lines until the reply to req arrives; events of req go to on_event. */
static int s_await(struct kb_client *c, const struct kb_proto_request *req,
                   kb_client_event_fn on_event, void *ctx, struct kb_proto_reply *reply)
{
    char why[256];
    const char *line;
    size_t len;
    int rc;

    for (;;) {
        rc = kb_client_read_line(c, c->timeout_ms, &line, &len);
        if (rc != 0)
            return s_break(c, rc, "reading the reply");
        rc = kb_proto_parse_reply(line, len, reply, why, sizeof(why));
        if (rc != 0) {
            c->broken = true;
            return kb_client_fail(c, rc == KB_ENOMEM ? -ENOMEM : KB_CLIENT_EPROTO,
                                  "malformed reply from the broker: %s", why);
        }
        if (reply->kind == KB_PROTO_REPLY_EVENT) {
            if (on_event != NULL && strcmp(reply->id, req->id) == 0)
                on_event(ctx, reply, line, len);
            kb_proto_reply_cleanup(reply);
            continue;
        }
        /* An error the broker could not tie to a request carries id null. */
        if (strcmp(reply->id, req->id) != 0 &&
            !(reply->kind == KB_PROTO_REPLY_ERROR && strcmp(reply->id, "null") == 0)) {
            kb_proto_reply_cleanup(reply);
            c->broken = true;
            return kb_client_fail(c, KB_CLIENT_EPROTO, "reply id does not match request id %s",
                                  req->id);
        }
        return 0;
    }
}

int kb_client_send(struct kb_client *c, struct kb_proto_request *req)
{
    char *line = NULL;
    size_t len = 0;
    /* An ack goes on a subscribed connection: that is where it belongs. */
    int rc = req->op == KB_PROTO_OP_ACK && c->watching && !c->broken ? 0 : s_usable(c);

    if (rc != 0)
        return rc;
    snprintf(req->id, sizeof(req->id), "%" PRIu64, c->next_id++);
    rc = kb_proto_format_request(req, &line, &len);
    if (rc != 0)
        return kb_client_fail(c, rc == KB_ENOMEM ? -ENOMEM : -EINVAL,
                              rc == KB_ENOMEM ? "out of memory"
                                              : "invalid request (a tenant name must be 1 to 64 "
                                                "characters of A-Z a-z 0-9 + = , . @ _ -, a "
                                                "version id 32 to 64 of A-Z a-z 0-9 - _)");
    rc = s_write_all(c, line, len);
    free(line);
    return rc != 0 ? s_break(c, rc, "sending the request") : 0;
}

int kb_client_exchange(struct kb_client *c, struct kb_proto_request *req,
                       kb_client_event_fn on_event, void *ctx, struct kb_proto_reply *reply)
{
    int rc;

    memset(reply, 0, sizeof(*reply));
    rc = kb_client_send(c, req);
    if (rc != 0)
        return rc;
    rc = s_await(c, req, on_event, ctx, reply);
    if (rc != 0 || reply->kind != KB_PROTO_REPLY_ERROR)
        return rc;
    /* After line_too_long the broker closes: framing is lost. */
    c->broken = reply->code == KB_PROTO_ELINE_TOO_LONG;
    c->last.err = KB_CLIENT_EREMOTE;
    snprintf(c->last.code, sizeof(c->last.code), "%s", reply->code_name);
    snprintf(c->last.message, sizeof(c->last.message), "%s", reply->message);
    kb_proto_reply_cleanup(reply);
    return KB_CLIENT_EREMOTE;
}

/* -- watch ------------------------------------------------------------------------------------ */

int kb_client_watch_start(struct kb_client *c, const char *const *tenants, size_t count)
{
    struct kb_proto_request req = {
        .op = KB_PROTO_OP_WATCH, .tenants = tenants, .tenant_count = count};
    struct kb_proto_reply reply;
    int rc = kb_client_exchange(c, &req, NULL, NULL, &reply);

    if (rc == 0)
        c->watching = true;
    kb_proto_reply_cleanup(&reply);
    return rc;
}

/* Copies the string member key of obj into out (cap bytes). */
static int s_event_field(struct json_object *obj, const char *key, bool required, char *out,
                         size_t cap)
{
    struct json_object *v = NULL;

    out[0] = '\0';
    if (!json_object_object_get_ex(obj, key, &v) || v == NULL)
        return required ? KB_CLIENT_EPROTO : 0;
    if (!json_object_is_type(v, json_type_string) || (size_t)json_object_get_string_len(v) >= cap)
        return KB_CLIENT_EPROTO;
    memcpy(out, json_object_get_string(v), (size_t)json_object_get_string_len(v) + 1);
    return 0;
}

static int s_fill_event(const struct kb_proto_reply *r, struct kb_client_event *ev)
{
    static const char *const names[] = {"",
                                        "rotated",
                                        "provisioned",
                                        "revoked",
                                        "rolled_back",
                                        "rotation_failed",
                                        "key_deactivated",
                                        "key_deleted"};
    int rc;

    memset(ev, 0, sizeof(*ev));
    rc = s_event_field(r->body, "event", true, ev->event, sizeof(ev->event));
    for (int k = KB_CLIENT_EVENT_ROTATED; rc == 0 && k <= KB_CLIENT_EVENT_KEY_DELETED; k++) {
        if (strcmp(ev->event, names[k]) == 0)
            ev->kind = (enum kb_client_event_kind)k;
    }
    if (rc == 0)
        rc = s_event_field(r->body, "tenant", true, ev->tenant, sizeof(ev->tenant));
    if (rc == 0)
        rc = s_event_field(r->body, "arn", ev->kind != KB_CLIENT_EVENT_OTHER, ev->arn,
                           sizeof(ev->arn));
    if (rc == 0)
        rc = s_event_field(r->body, "version_id", false, ev->version_id, sizeof(ev->version_id));
    if (rc == 0)
        rc = s_event_field(r->body, "ts", false, ev->ts, sizeof(ev->ts));
    return rc;
}

/* One line of a subscription: 0 and *ev, 1 for a line to skip, or an error. */
static int s_watch_line(struct kb_client *c, const char *line, size_t len,
                        struct kb_client_event *ev)
{
    struct kb_proto_reply r;
    char why[256];
    int rc = kb_proto_parse_reply(line, len, &r, why, sizeof(why));

    if (rc != 0) {
        c->broken = true;
        return kb_client_fail(c, KB_CLIENT_EPROTO, "malformed event from the broker: %s", why);
    }
    if (r.kind == KB_PROTO_REPLY_ERROR) {
        rc = kb_client_fail(c, KB_CLIENT_EREMOTE, "%s", r.message);
        snprintf(c->last.code, sizeof(c->last.code), "%s", r.code_name);
    } else if (r.kind == KB_PROTO_REPLY_RESULT || strcmp(r.event, "progress") == 0) {
        rc = 1;
    } else if (s_fill_event(&r, ev) != 0) {
        c->broken = true;
        rc = kb_client_fail(c, KB_CLIENT_EPROTO, "malformed \"%s\" event from the broker",
                            ev->event);
    }
    kb_proto_reply_cleanup(&r);
    return rc;
}

int kb_client_watch_next(struct kb_client *c, int timeout_ms, struct kb_client_event *ev)
{
    const char *line;
    size_t len;
    int rc;

    if (!c->watching)
        return kb_client_fail(c, -EINVAL, "kb_client_watch_start has not succeeded");
    if (c->broken)
        return kb_client_fail(c, -ENOTCONN, "the subscription was lost; reconnect");
    do {
        rc = kb_client_read_line(c, timeout_ms, &line, &len);
        if (rc == -ETIMEDOUT)
            return kb_client_fail(c, rc, "no event within %d ms", timeout_ms);
        if (rc != 0)
            return s_break(c, rc, NULL);
        rc = s_watch_line(c, line, len, ev);
    } while (rc == 1);
    return rc;
}
