/*
 * codec.h - the client wire protocol v1 (proto/PROTOCOL.md) as a pure codec.
 *
 * The broker's server parses each request line with kb_proto_parse_request() and answers with the
 * kb_proto_format_*() functions; libkeybroker builds requests with kb_proto_format_request() and
 * reads every line the broker sends with kb_proto_parse_reply(). Nothing here does I/O, logs,
 * keeps state between calls or is not thread-safe; the fuzzer and the unit tests call it directly.
 *
 * Ownership, once for the whole header: every `const char *` argument is borrowed for the call
 * only. Parsed requests live in caller storage (fixed buffers plus, for a watch list, one malloc'd
 * block released by kb_proto_request_cleanup()). Formatted lines are malloc'd, end with '\n', are
 * NUL-terminated after it, and the caller frees them with free().
 *
 * This module must never put key material on the wire: no response struct below has a field that
 * could carry a secret, and it must stay that way (test_codec checks every key it can emit).
 * Error messages it writes may quote a field name the peer sent (truncated, escaped by json-c),
 * never a field value.
 */
#ifndef KB_PROTO_CODEC_H
#define KB_PROTO_CODEC_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define KB_PROTO_VERSION      1
#define KB_PROTO_MAX_LINE     65536 /* bytes of one request line, including its '\n' */
#define KB_PROTO_MAX_TENANT   64    /* bytes (ASCII) of a tenant name */
#define KB_PROTO_MAX_VERSION  64    /* bytes of a version id (Secrets Manager: 32..64) */
#define KB_PROTO_MAX_ID_CHARS 128   /* code points of a string id */
/* A serialized id and its NUL: 128 code points json-c escapes as "\u001f" (6 bytes), 2 quotes. */
#define KB_PROTO_ID_SIZE    776
#define KB_PROTO_MAX_WATCH  1024 /* names in one watch request's "tenants" */
#define KB_PROTO_MAX_DEPTH  8    /* nesting of a request (it needs 2) or a reply (status: 4) */
#define KB_PROTO_MAX_REPLY  (16u * 1024u * 1024u) /* what a client accepts for one reply line */
#define KB_PROTO_MSG_SIZE   512                   /* an error message and its NUL */
#define KB_PROTO_ID_INT_MAX 9007199254740991LL    /* 2^53 - 1: every JSON reader keeps it exact */
/* A watch epoch on the wire: 16 lowercase hex digits (a 64-bit id, one per broker start), and
 * its NUL. */
#define KB_PROTO_EPOCH_SIZE 17

/* X(enum suffix, wire name) */
#define KB_PROTO_OP_MAP(X)                                                                         \
    X(GET, "get")                                                                                  \
    X(LIST, "list")                                                                                \
    X(STATUS, "status")                                                                            \
    X(PROVISION, "provision")                                                                      \
    X(ROTATE, "rotate")                                                                            \
    X(REVOKE, "revoke")                                                                            \
    X(WATCH, "watch")                                                                              \
    X(METRICS, "metrics")                                                                          \
    X(ACK, "ack")

enum kb_proto_op {
    KB_PROTO_OP_NONE = 0,
#define KB_X_OP(name, wire) KB_PROTO_OP_##name,
    KB_PROTO_OP_MAP(KB_X_OP)
#undef KB_X_OP
        KB_PROTO_OP_COUNT
};

/* X(enum suffix, wire code, default message). The wire codes are stable API. */
#define KB_PROTO_ERR_MAP(X)                                                                        \
    X(BAD_JSON, "bad_json", "the line is not one JSON object")                                     \
    X(BAD_UTF8, "bad_utf8", "the line is not valid UTF-8")                                         \
    X(BAD_REQUEST, "bad_request", "malformed request")                                             \
    X(UNKNOWN_OP, "unknown_op", "unknown op")                                                      \
    X(UNSUPPORTED_VERSION, "unsupported_version", "unsupported protocol version")                  \
    X(LINE_TOO_LONG, "line_too_long", "request line longer than 65536 bytes")                      \
    X(FORBIDDEN, "forbidden", "not permitted")                                                     \
    X(NOT_READY, "not_ready", "the tenant is not ready")                                           \
    X(BUSY, "busy", "too many requests in flight on this connection")                              \
    X(RATE_LIMITED, "rate_limited", "too many requests")                                           \
    X(NOT_SUPPORTED, "not_supported", "not supported by this broker")                              \
    X(UNAVAILABLE, "unavailable", "the broker cannot do this now")                                 \
    X(AWS_ERROR, "aws_error", "AWS returned an error")                                             \
    X(INTERNAL, "internal", "internal error")

enum kb_proto_err {
    KB_PROTO_OK = 0,
#define KB_X_ERR(name, wire, msg) KB_PROTO_E##name,
    KB_PROTO_ERR_MAP(KB_X_ERR)
#undef KB_X_ERR
    /* Only in parsed replies: a code this codec does not know (a newer broker's). */
    KB_PROTO_EUNKNOWN,
};

/* Wire name of an op ("get"); NULL for KB_PROTO_OP_NONE or out of range. Static string. */
const char *kb_proto_op_name(enum kb_proto_op op);

/* The op named name[0..len), or KB_PROTO_OP_NONE. */
enum kb_proto_op kb_proto_op_from_name(const char *name, size_t len);

/* Wire code of an error ("bad_json"); "ok" for KB_PROTO_OK, "internal" for anything unknown.
 * Static string. */
const char *kb_proto_err_name(enum kb_proto_err code);

/* The default human message of an error code. Static string. */
const char *kb_proto_err_message(enum kb_proto_err code);

/* The code named name, or KB_PROTO_EUNKNOWN. */
enum kb_proto_err kb_proto_err_from_name(const char *name);

/* Whether s[0..len) is a valid version id: 32..64 bytes of [A-Za-z0-9_-] (a Secrets Manager
 * VersionId / ClientRequestToken). s may be NULL (then false). */
bool kb_proto_version_valid(const char *s, size_t len);

/* Whether s[0..len) is a valid tenant name: 1..64 bytes of [A-Za-z0-9+=,.@_-]. s may be NULL
 * (then false); it is only read. */
bool kb_proto_tenant_valid(const char *s, size_t len);

/* -- requests ---------------------------------------------------------------------------------- */

/* A parsed request. Caller storage; after a successful parse release it with
 * kb_proto_request_cleanup(). Zero it (or parse into it) before formatting. */
struct kb_proto_request {
    enum kb_proto_op op;
    /* The id as JSON text to echo verbatim: "null" when absent, "42", "\"abc\"". */
    char id[KB_PROTO_ID_SIZE];
    bool has_tenant; /* get/rotate/revoke: always; status/provision: when named */
    char tenant[KB_PROTO_MAX_TENANT + 1];
    bool delete_bucket;       /* revoke */
    bool force_delete_secret; /* revoke */
    bool adopt_bucket;        /* provision, with a tenant: take its untagged bucket under
                                 management (kbctl adopt) */
    bool rollback;            /* rotate: move AWSCURRENT back (kbctl rotate --rollback) */
    /* ack: the version the client now uses (required): 32..64 of [A-Za-z0-9_-] */
    char version_id[KB_PROTO_MAX_VERSION + 1];
    /* watch: the names to watch; NULL and 0 mean every tenant the peer may see. When parsed, the
     * array and its strings are one malloc'd block owned by the request; when formatting, the
     * caller's (borrowed). */
    const char *const *tenants;
    size_t tenant_count;
    void *owned_; /* the parser's block; private */
    /* watch: "since":{"epoch":"<16 hex>","seq":N}, the last event the client saw (resume). */
    bool has_since;
    char since_epoch[KB_PROTO_EPOCH_SIZE];
    uint64_t since_seq;
};

/* Why a line was refused, ready to send back with kb_proto_format_error(). */
struct kb_proto_error {
    enum kb_proto_err code;
    char id[KB_PROTO_ID_SIZE];       /* JSON text; "null" when it could not be read */
    char message[KB_PROTO_MSG_SIZE]; /* a sentence for humans; quotes at most a field name */
};

/*
 * Parses one request line: line[0..len) without its '\n' (a trailing '\r' is allowed whitespace).
 * Returns 0 and a request in *req (release it with kb_proto_request_cleanup); KB_EPARSE when the
 * line is refused (err says why; req holds nothing to release); KB_ENOMEM (err says "internal").
 * A line of KB_PROTO_MAX_LINE bytes or more (it cannot fit with its '\n') is line_too_long; the
 * caller's framer should refuse such lines before buffering them whole.
 */
int kb_proto_parse_request(const char *line, size_t len, struct kb_proto_request *req,
                           struct kb_proto_error *err);

/* Frees what a parse allocated and zeroes *req. NULL and zeroed requests are fine. */
void kb_proto_request_cleanup(struct kb_proto_request *req);

/* Serializes a request: {"v":1,"id":..,"op":..,...} + '\n'. req->id "" or "null" omits the id.
 * Returns 0 and *out / *len (bytes, '\n' included; caller frees *out), KB_EINVAL for a request the
 * parser would refuse (bad tenant name, missing field, bad id text), KB_ENOMEM. */
int kb_proto_format_request(const struct kb_proto_request *req, char **out, size_t *len);

/* -- responses (the server's side) ------------------------------------------------------------ */
/*
 * Every formatter takes the request's id as JSON text (kb_proto_request.id; NULL means null) and
 * returns 0 with a malloc'd line in *out (caller frees with free()) and its length with the '\n'
 * in *len; KB_EINVAL when a required string is NULL, a tenant name is invalid or id is not a
 * JSON string, integer or null; KB_ENOMEM. Timestamps are formatted as ISO-8601 UTC
 * ("2024-05-01T12:00:00Z"); 0 means null.
 */

/* get: every string but version_id and prefix (NULL: "") is required. */
struct kb_proto_tenant_info {
    const char *tenant;
    const char *arn;
    const char *bucket;
    const char *prefix;
    const char *region;
    const char *version_id; /* NULL: null (no version yet) */
    time_t last_rotation;   /* 0: null */
    const char *state;
};
int kb_proto_format_get(const char *id, const struct kb_proto_tenant_info *t, char **out,
                        size_t *len);

/* list */
struct kb_proto_list_entry {
    const char *tenant;
    const char *bucket;
    const char *state;
};
int kb_proto_format_list(const char *id, const struct kb_proto_list_entry *tenants, size_t count,
                         char **out, size_t *len);

/* status */
/* A watch subscriber that has not acknowledged the tenant's current version. */
struct kb_proto_waiting_peer {
    uint32_t uid;
    int32_t pid;
    const char *version_id; /* the version it acknowledged last; NULL: none (null) */
};
struct kb_proto_status_entry {
    const char *tenant;
    const char *state;   /* "ready", "provisioning", "pending", "error" */
    const char *message; /* NULL: omitted */
    bool probed_ok;      /* adds "probe":"probed-ok" */
    /* Admins only (has_subscribers): "subscribers": N and "waiting_ack": [{"uid","pid",
     * "version_id"}], the subscribers still on another version than version_id. */
    bool has_subscribers;
    size_t subscribers;
    const struct kb_proto_waiting_peer *waiting;
    size_t nwaiting;
};
struct kb_proto_status {
    const char *version;
    uint64_t uptime_seconds;
    const struct kb_proto_status_entry *tenants;
    size_t count;
};
int kb_proto_format_status(const char *id, const struct kb_proto_status *s, char **out,
                           size_t *len);

/* The outcome for one tenant: provision's list, rotate's and revoke's result. */
struct kb_proto_tenant_state {
    const char *tenant;
    const char *state;
    const char *message; /* NULL: omitted */
};
/* provision's final response: {"tenants":[...]} */
int kb_proto_format_provision(const char *id, const struct kb_proto_tenant_state *tenants,
                              size_t count, char **out, size_t *len);
/* rotate and revoke: {"tenant","state"[,"message"]} */
int kb_proto_format_tenant_state(const char *id, const struct kb_proto_tenant_state *t, char **out,
                                 size_t *len);

/* watch's acknowledgement: {"watching":[names]} */
int kb_proto_format_watching(const char *id, const char *const *names, size_t count, char **out,
                             size_t *len);
/* The same with the stream's position: {"watching":[names],"epoch":"..","seq":N} (epoch NULL:
 * omitted, as kb_proto_format_watching). */
int kb_proto_format_watching_at(const char *id, const char *const *names, size_t count,
                                const char *epoch, uint64_t seq, char **out, size_t *len);

/* ack: {"tenant","version_id","current":bool,"waiting":N} - whether version_id is the tenant's
 * AWSCURRENT, and how many subscribers of the tenant have still to acknowledge it. */
struct kb_proto_ack {
    const char *tenant;
    const char *version_id;
    bool current;
    size_t waiting;
};
int kb_proto_format_ack(const char *id, const struct kb_proto_ack *a, char **out, size_t *len);

/* metrics: {"text": Prometheus text format} */
int kb_proto_format_metrics(const char *id, const char *text, char **out, size_t *len);

/* A provision progress line (before the final response of the same id). */
struct kb_proto_progress {
    const char *tenant;
    const char *step;    /* "create-bucket", "create-user", ... */
    const char *state;   /* "start", "done", "error" */
    const char *message; /* NULL: omitted */
};
int kb_proto_format_progress(const char *id, const struct kb_proto_progress *p, char **out,
                             size_t *len);

/* A watch event pushed to subscribers (no id). */
enum kb_proto_event_kind {
    KB_PROTO_EVENT_ROTATED = 1,
    KB_PROTO_EVENT_PROVISIONED,
    KB_PROTO_EVENT_REVOKED,
    KB_PROTO_EVENT_ROLLED_BACK,
    KB_PROTO_EVENT_ROTATION_FAILED,
    KB_PROTO_EVENT_KEY_DEACTIVATED,
    KB_PROTO_EVENT_KEY_DELETED,
    KB_PROTO_EVENT_KIND_END
};
struct kb_proto_event {
    enum kb_proto_event_kind kind;
    const char *tenant;
    const char *arn;
    const char *version_id; /* NULL: null (revoked) */
    time_t ts;
    const char *epoch;   /* NULL: no "epoch" nor "seq" member */
    uint64_t seq;        /* with epoch */
    const char *message; /* NULL: omitted (rotated: the superseded version; failed: why) */
};
int kb_proto_format_event(const struct kb_proto_event *ev, char **out, size_t *len);

/* One tenant of a reset snapshot. */
struct kb_proto_watch_state {
    const char *tenant;
    const char *arn;        /* NULL: null (nothing provisioned) */
    const char *version_id; /* NULL: null */
    const char *state;
};
/* A reset line: {"v":1,"event":"reset","epoch","seq","reason","tenants":[{..}]}: the client's
 * position could not be resumed (reason: "epoch", the broker restarted; "gap", the events after
 * it are no longer held), so here is the current state and the position to resume from. */
int kb_proto_format_reset(const char *epoch, uint64_t seq, const char *reason,
                          const struct kb_proto_watch_state *tenants, size_t count, char **out,
                          size_t *len);
/* The last line of a subscription the broker ends: {"v":1,"event":"closed","reason":..}. */
int kb_proto_format_closed(const char *reason, char **out, size_t *len);

/* Whether s is an epoch as the wire carries it: exactly 16 lowercase hex digits. */
bool kb_proto_epoch_valid(const char *s, size_t len);

/* Wire name of an event kind ("rotated"), NULL when out of range. Static string. */
const char *kb_proto_event_name(enum kb_proto_event_kind kind);

/* An error response. message NULL: the code's default message. */
int kb_proto_format_error(const char *id, enum kb_proto_err code, const char *message, char **out,
                          size_t *len);

/* -- replies (the client's side) -------------------------------------------------------------- */

enum kb_proto_reply_kind {
    KB_PROTO_REPLY_RESULT = 1, /* "ok":true */
    KB_PROTO_REPLY_ERROR,      /* "ok":false */
    KB_PROTO_REPLY_EVENT,      /* "event": progress or a watch event */
};

/* One line from the broker. Caller storage; release with kb_proto_reply_cleanup(). */
struct kb_proto_reply {
    enum kb_proto_reply_kind kind;
    char id[KB_PROTO_ID_SIZE]; /* JSON text, "null" when absent */
    /* RESULT: the "result" object; EVENT: the whole line's object. Borrowed from root. */
    struct json_object *body;
    const char *event;      /* EVENT: "progress", "rotated", ...; borrowed from root */
    enum kb_proto_err code; /* ERROR: KB_PROTO_EUNKNOWN for a code this codec does not know */
    char code_name[32];     /* ERROR: the code as sent (truncated) */
    char message[KB_PROTO_MSG_SIZE]; /* ERROR: the broker's message (truncated) */
    struct json_object *root;        /* owned */
};

/*
 * Parses one line the broker sent (without its '\n', at most KB_PROTO_MAX_REPLY bytes). Returns 0
 * and *r (release with kb_proto_reply_cleanup), KB_EPARSE when the line is not a v1 reply (why, of
 * whylen bytes, says how; may be NULL) or KB_ENOMEM. r holds nothing to release on error.
 */
int kb_proto_parse_reply(const char *line, size_t len, struct kb_proto_reply *r, char *why,
                         size_t whylen);

/* Releases r's JSON tree and zeroes *r. NULL and zeroed replies are fine. */
void kb_proto_reply_cleanup(struct kb_proto_reply *r);

#endif
