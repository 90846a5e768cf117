/*
 * keybroker/client.h - libkeybroker, the C client of keybrokerd's Unix socket (protocol v1,
 * PROTOCOL.md).
 *
 * A struct kb_client is one connection. Calls are blocking, one request at a time, each bounded
 * by a timeout (poll(2)); there is no event loop and no thread inside. A handle is not
 * thread-safe: use one per thread, or lock around it.
 *
 * What the broker returns is metadata only: a tenant's secret ARN, bucket, region and version
 * id. The secret itself is never on this socket; read it from AWS Secrets Manager with your own
 * AWS identity (or let `kbctl credential-process` do that).
 *
 * Who serves the socket: a socket path is only a name, and whoever could put a socket of their
 * own there could hand out their own ARNs. So after connecting, the library asks the kernel which
 * uid serves the socket (SO_PEERCRED: the uid of the process that listens, or of systemd for a
 * socket it passes in) and refuses it (KB_CLIENT_EPEER) unless it is one of:
 *   - 0 (root);
 *   - the caller's own effective uid (a process with your uid can act as you anyway);
 *   - the broker's user as configured: kb_client_options.server_uid, else $KEYBROKER_SERVER_UID
 *     (a decimal uid or a user name; unset or empty: none; anything else is an error, -EINVAL);
 *   - the uid of the user named KB_CLIENT_SERVER_USER ("keybroker") when it exists and is a
 *     system user (uid 1 to KB_CLIENT_SYSTEM_UID_MAX), as packages create it.
 * Nothing else is accepted, and the check cannot be switched off.
 *
 * Errors: every int function returns 0 or a negative code: -errno for system errors (-ENOENT: no
 * socket at that path, -ECONNREFUSED: nobody listening, -EACCES, -ETIMEDOUT, -ENOMEM, -EINVAL for
 * a bad argument), or one of the KB_CLIENT_E* codes below. kb_client_strerror() describes either;
 * kb_client_last_error() adds the broker's stable error code and message.
 *
 * Ownership: string arguments are borrowed for the call. Results are allocated by the library and
 * freed by the caller with the matching _free function (NULL is fine). Nothing returned here holds
 * a secret.
 */
#ifndef KEYBROKER_CLIENT_H
#define KEYBROKER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KB_CLIENT_DEFAULT_SOCKET  "/run/keybroker/keybroker.sock"
#define KB_CLIENT_SOCKET_ENV      "KEYBROKER_SOCKET"
#define KB_CLIENT_DEFAULT_TIMEOUT 10000 /* ms */
#define KB_CLIENT_SERVER_UID_ENV  "KEYBROKER_SERVER_UID"
#define KB_CLIENT_SERVER_USER     "keybroker" /* the packaged broker's system user */
#define KB_CLIENT_SYSTEM_UID_MAX  999         /* the end of the system uid range */

/* The library's own codes (below -20000, never an errno). */
#define KB_CLIENT_EREMOTE -20001 /* the broker answered with an error: see kb_client_last_error */
#define KB_CLIENT_EPROTO  -20002 /* the broker's reply is not protocol v1 */
#define KB_CLIENT_ECLOSED -20003 /* the broker closed the connection */
#define KB_CLIENT_EPEER   -20004 /* the socket is served by a uid this client does not trust */

struct kb_client;

/* The last failure on a handle. */
struct kb_client_error {
    int err;           /* the code the call returned */
    char code[32];     /* KB_CLIENT_EREMOTE: the broker's stable code ("forbidden", "not_ready",
                          ... see PROTOCOL.md); "" otherwise */
    char message[512]; /* the broker's message, or a description of the local failure */
};

/* Describes err (a KB_CLIENT_E* code or a negative errno). Static string; caller does not free. */
const char *kb_client_strerror(int err);

/* The socket path a NULL path means: $KEYBROKER_SOCKET when set and not empty, else
 * KB_CLIENT_DEFAULT_SOCKET. Borrowed from the environment or static; do not free. */
const char *kb_client_socket_path(void);

/*
 * Connects to the broker at path (NULL or "": kb_client_socket_path()) within timeout_ms
 * (<= 0: KB_CLIENT_DEFAULT_TIMEOUT), which also becomes the handle's timeout for each reply.
 * Returns 0 and *out (close with kb_client_close), -ENOENT, -ECONNREFUSED, -EACCES,
 * -ENAMETOOLONG (path longer than a Unix socket address allows), -ETIMEDOUT, -ENOMEM,
 * KB_CLIENT_EPEER (served by an untrusted uid: see the top of this file), -EINVAL (a malformed
 * $KEYBROKER_SERVER_UID), ... kb_client_connect_opts says more about a failure.
 */
int kb_client_connect(const char *path, int timeout_ms, struct kb_client **out);

/* kb_client_connect_opts's options. Zero what you do not set; set size to sizeof(struct
 * kb_client_options) so that a later library, which may add fields at the end, reads only the
 * fields your program knows. */
struct kb_client_options {
    size_t size;
    int timeout_ms;         /* as kb_client_connect's timeout_ms */
    const char *server_uid; /* the broker's user (see the top of this file): a decimal uid or a
                               user name; NULL: $KEYBROKER_SERVER_UID; "": none, not even the
                               environment's */
    uint32_t *peer_uid;     /* NULL, or where the uid serving the socket is stored once connected
                               (also when it is refused) */
    struct kb_client_error *error; /* NULL, or caller storage that a failed connect fills with
                                      its code and a message naming the path (and the uid) */
};

/*
 * kb_client_connect with options. Returns what kb_client_connect returns, and KB_CLIENT_EPEER
 * when the socket is served by a uid not in the accepted set (the connection is closed), -EINVAL
 * when the broker's user (opt->server_uid or $KEYBROKER_SERVER_UID) is neither a uid nor a known
 * user name, or opt is NULL or its size too small.
 */
int kb_client_connect_opts(const char *path, const struct kb_client_options *opt,
                           struct kb_client **out);

/*
 * The uid a broker-user setting names: all decimal digits, a uid (0 to 4294967294); anything
 * else, a user name looked up in the user database. Returns 0 and *uid, or -EINVAL (empty, out
 * of range, no such user).
 */
int kb_client_server_uid_parse(const char *spec, uint32_t *uid);

/*
 * Whether a client running with effective uid client_uid accepts a socket served by server_uid,
 * by the rule at the top of this file; spec is as kb_client_options.server_uid (NULL reads
 * $KEYBROKER_SERVER_UID). The setting is parsed first, so a malformed one is refused even for a
 * root broker. Returns 0 (accepted), KB_CLIENT_EPEER (refused), or -EINVAL (malformed setting).
 * why (whylen bytes; may be NULL) gets a sentence on a failure.
 */
int kb_client_server_trusted(uint32_t server_uid, uint32_t client_uid, const char *spec, char *why,
                             size_t whylen);

/* Closes the connection and frees c. NULL is fine. */
void kb_client_close(struct kb_client *c);

/* How long a call waits for each line of the broker's answer (and to write its request), in ms;
 * < 0 waits forever. A call that times out leaves the connection unusable (-ENOTCONN after). */
void kb_client_set_timeout(struct kb_client *c, int timeout_ms);

/* The handle's last failure. Borrowed until the next call on c. */
const struct kb_client_error *kb_client_last_error(const struct kb_client *c);

/* -- the calls -------------------------------------------------------------------------------- */

/* get: what a client needs to read its tenant's secret. Strings are NUL-terminated. */
struct kb_client_tenant {
    char *tenant;
    char *arn; /* the Secrets Manager secret's ARN */
    char *bucket;
    char *prefix; /* "" when the tenant has the whole bucket */
    char *region;
    char *version_id;    /* the AWSCURRENT version, NULL when there is none yet */
    char *last_rotation; /* ISO-8601 UTC, NULL when never rotated */
    char *state;
};
/* Returns 0 and *out (free with kb_client_tenant_free), KB_CLIENT_EREMOTE ("forbidden" also for a
 * tenant that does not exist, "not_ready", ...), or a transport error. */
int kb_client_get(struct kb_client *c, const char *tenant, struct kb_client_tenant **out);
void kb_client_tenant_free(struct kb_client_tenant *t);

/* list: the tenants this peer may see. */
struct kb_client_list_entry {
    char *tenant;
    char *bucket;
    char *state;
};
struct kb_client_list {
    struct kb_client_list_entry *tenants;
    size_t count;
};
int kb_client_list(struct kb_client *c, struct kb_client_list **out);
void kb_client_list_free(struct kb_client_list *l);

/* status: the broker and its tenants (one tenant when tenant is not NULL). */
struct kb_client_status_entry {
    char *tenant;
    char *state;    /* "ready", "provisioning", "pending", "degraded", "error", "revoking",
                       "revoked" */
    char *message;  /* NULL when none */
    bool probed_ok; /* the readiness probe of the current key succeeded */
    /* Only in an admin's status (has_subscribers): the tenant's watch subscribers, and those
     * that have not acknowledged its current version (uid, pid, the version they acknowledged
     * last or NULL). */
    bool has_subscribers;
    size_t subscribers;
    struct kb_client_waiting_peer {
        uint32_t uid;
        int32_t pid;
        char *version_id;
    } * waiting;
    size_t nwaiting;
};
struct kb_client_status {
    char *version;
    uint64_t uptime_seconds;
    struct kb_client_status_entry *tenants;
    size_t count;
};
int kb_client_status(struct kb_client *c, const char *tenant, struct kb_client_status **out);
void kb_client_status_free(struct kb_client_status *s);

/* The outcome of provision (one entry per tenant), rotate and revoke (one entry). */
struct kb_client_tenant_state {
    char *tenant;
    char *state;
    char *message; /* NULL when none */
};
struct kb_client_states {
    struct kb_client_tenant_state *tenants;
    size_t count;
};
void kb_client_states_free(struct kb_client_states *s);

/* A provision progress line, borrowed until the callback returns. */
struct kb_client_progress {
    const char *tenant;
    const char *step;    /* "create-bucket", "create-user", ... */
    const char *state;   /* "start", "done", "error" */
    const char *message; /* NULL when none */
};
typedef void (*kb_client_progress_cb)(void *ctx, const struct kb_client_progress *p);

/* provision (admin): tenant NULL provisions every configured tenant. progress (may be NULL) runs
 * for each progress line as it arrives, before the call returns. */
int kb_client_provision(struct kb_client *c, const char *tenant, kb_client_progress_cb progress,
                        void *ctx, struct kb_client_states **out);
/* provision (admin) of one tenant whose bucket exists without keybroker's tags (an operator's
 * own bucket): the broker tags it, puts its settings under management (Block Public Access,
 * encryption, BucketOwnerEnforced, its bucket policy) and logs and announces the adoption. A
 * bucket tagged for another tenant is still refused. Otherwise like kb_client_provision. */
int kb_client_adopt(struct kb_client *c, const char *tenant, kb_client_progress_cb progress,
                    void *ctx, struct kb_client_states **out);
/* rotate (admin) */
int kb_client_rotate(struct kb_client *c, const char *tenant, struct kb_client_states **out);
/* rotate with rollback (admin): moves AWSCURRENT back to the superseded version while its key
 * still exists (reactivating it when it was deactivated); refused with the reason (state
 * "degraded", message) once the key was deleted or when there is nothing to roll back to. */
int kb_client_rollback(struct kb_client *c, const char *tenant, struct kb_client_states **out);
/* revoke (admin): deletes the tenant's keys, policy and user and schedules its secret's deletion;
 * delete_bucket also deletes its bucket when empty, force_delete_secret skips the recovery
 * window. */
int kb_client_revoke(struct kb_client *c, const char *tenant, bool delete_bucket,
                     bool force_delete_secret, struct kb_client_states **out);
/* metrics (admin): Prometheus text format in *text (caller frees with free()). */
int kb_client_metrics(struct kb_client *c, char **text);

/*
 * Any request, for tools that want the broker's JSON as is. op is the wire name ("get");
 * tenant, tenants (watch), the revoke flags and adopt_bucket are sent when set. Each line that
 * arrives before the final response (provision progress) goes to on_line (may be NULL) as raw JSON
 * without its newline, borrowed until it returns. On success *result_json is the "result" object as
 * compact JSON (caller frees with free()). Returns 0, -EINVAL (unknown op, bad tenant name, op
 * "watch": use kb_client_watch_start), KB_CLIENT_EREMOTE, or a transport error.
 */
struct kb_client_request {
    const char *op;
    const char *tenant;         /* NULL: none */
    const char *const *tenants; /* watch only */
    size_t tenant_count;
    bool delete_bucket;       /* revoke only */
    bool force_delete_secret; /* revoke only */
    bool adopt_bucket;        /* provision only, with a tenant (kb_client_adopt) */
    bool rollback;            /* rotate only (kb_client_rollback) */
};
typedef void (*kb_client_line_cb)(void *ctx, const char *line, size_t len);
int kb_client_call(struct kb_client *c, const struct kb_client_request *req,
                   kb_client_line_cb on_line, void *ctx, char **result_json);

/* -- watch ------------------------------------------------------------------------------------ */

enum kb_client_event_kind {
    KB_CLIENT_EVENT_OTHER = 0, /* an event this library does not know (see .event) */
    KB_CLIENT_EVENT_ROTATED,
    KB_CLIENT_EVENT_PROVISIONED,
    KB_CLIENT_EVENT_REVOKED,
    KB_CLIENT_EVENT_ROLLED_BACK,
    KB_CLIENT_EVENT_ROTATION_FAILED,
    KB_CLIENT_EVENT_KEY_DEACTIVATED,
    KB_CLIENT_EVENT_KEY_DELETED,
    KB_CLIENT_EVENT_RESET,  /* kb_client_watch_read only: the position could not be resumed */
    KB_CLIENT_EVENT_CLOSED, /* kb_client_watch_read only: the broker ended the subscription */
};

/* One pushed event. Caller storage, filled by kb_client_watch_next. */
struct kb_client_event {
    enum kb_client_event_kind kind;
    char event[32]; /* the wire name: "rotated", ... */
    char tenant[65];
    char arn[2048];
    char version_id[128]; /* "" when the event has none */
    char ts[40];          /* ISO-8601 UTC */
};

/*
 * Subscribes this connection to events for tenants (NULL/0: every tenant this peer may see).
 * After it succeeds the connection only carries events: the only calls allowed on c are
 * kb_client_watch_next and kb_client_close (others return -EBUSY). Returns 0,
 * KB_CLIENT_EREMOTE ("forbidden" for a tenant this peer may not see), or a transport error.
 */
int kb_client_watch_start(struct kb_client *c, const char *const *tenants, size_t count);

/*
 * Waits up to timeout_ms (< 0: forever) for the next event. Returns 0 and *ev; -ETIMEDOUT when
 * none came in time (the subscription stays usable); KB_CLIENT_ECLOSED when the broker closed the
 * connection; KB_CLIENT_EREMOTE when it sent an error instead; KB_CLIENT_EPROTO.
 */
int kb_client_watch_next(struct kb_client *c, int timeout_ms, struct kb_client_event *ev);

/* -- a resuming watch ------------------------------------------------------------------------- */
/*
 * A watch that survives its connection. Every event carries the broker's epoch (one per broker
 * start) and a seq (PROTOCOL.md section 5). When the connection drops, kb_client_watch_read
 * reconnects by itself - after retry_initial_ms, then doubling up to retry_max_ms between
 * attempts - and subscribes again with "since" its last position, so no event is lost and none
 * is repeated (seqs may have gaps: the broker numbers the events of every tenant). When the
 * broker cannot resume (it restarted, or the events were no longer held), the next event is a
 * KB_CLIENT_EVENT_RESET with the current state of every watched tenant. After give_up_ms without
 * a connection the read fails with the last connect error. A KB_CLIENT_EVENT_CLOSED (the
 * broker withdrew access) is final: the watch does not reconnect, and later reads return
 * KB_CLIENT_ECLOSED.
 */
struct kb_client_watch;

/* Zero what you do not set; size = sizeof(struct kb_client_watch_options), as
 * kb_client_options. */
struct kb_client_watch_options {
    size_t size;
    const char *path;                        /* NULL or "": kb_client_socket_path() */
    const struct kb_client_options *connect; /* NULL: defaults; used for every connection */
    const char *const *tenants;              /* NULL/0: every tenant this peer may see */
    size_t count;
    int retry_initial_ms; /* first wait before reconnecting; 0: 100 */
    int retry_max_ms;     /* longest wait between attempts; 0: 5000 */
    int give_up_ms;       /* time without a connection before a read fails; 0: 60000; < 0: never */
    const char *since_epoch; /* resume from a position saved earlier (epoch and seq of the last
                                event handled); NULL: from now */
    uint64_t since_seq;
};

/* One tenant of a reset snapshot. */
struct kb_client_watch_tenant {
    char tenant[65];
    char arn[2048];       /* "" when the tenant has no secret yet */
    char version_id[128]; /* "" when none */
    char state[32];
};

/* What kb_client_watch_read fills. Set size = sizeof(struct kb_client_watch_event) first: a later
 * library fills only the fields your program knows. */
struct kb_client_watch_event {
    size_t size;
    enum kb_client_event_kind kind;
    char event[32]; /* the wire name: "rotated", "reset", "closed", ... */
    char tenant[65];
    char arn[2048];
    char version_id[128];
    char ts[40];
    char message[512]; /* rotated: the superseded version; rotation_failed: why; "" when none */
    char epoch[17];    /* the position after this event ("" from a broker without epochs) */
    uint64_t seq;
    char reason[256]; /* reset: "epoch", "gap" or "too_large"; closed: the broker's sentence */
    const struct kb_client_watch_tenant *tenants; /* reset: the snapshot, borrowed until the next
                                                     read on this watch */
    size_t count;
    unsigned reconnects; /* how often this watch has reconnected so far */
};

/* Connects and subscribes (the first connection must succeed: no retry here). Returns 0 and *out
 * (free with kb_client_watch_close), or what kb_client_connect_opts / kb_client_watch_start
 * return (-EINVAL for bad options). error (may be NULL) gets a message on failure. */
int kb_client_watch_open(const struct kb_client_watch_options *opt, struct kb_client_watch **out,
                         struct kb_client_error *error);

/* Waits up to timeout_ms (< 0: forever) for the next event, reconnecting as needed. Returns 0 and
 * *ev; -ETIMEDOUT (the watch stays usable); KB_CLIENT_ECLOSED after a closed event; after
 * give_up_ms without a connection, the last connect error; KB_CLIENT_EREMOTE when a resubscribe
 * was refused (e.g. "forbidden"). */
int kb_client_watch_read(struct kb_client_watch *w, int timeout_ms,
                         struct kb_client_watch_event *ev);

/* The last failure on w. Borrowed until the next call on w. */
const struct kb_client_error *kb_client_watch_last_error(const struct kb_client_watch *w);

/*
 * Acknowledges that this program now uses version_id of tenant (after a "rotated" or
 * "rolled_back" event, or the version of a reset snapshot, once the new credentials are in use):
 * when every subscriber of the tenant has acknowledged the tenant's current version, the broker
 * deactivates the superseded key without waiting for its overlap window (aws.overlap_ends_on_ack).
 * The ack is sent on the watch's connection without waiting for an answer, and sent again after
 * every reconnect (the broker forgets a connection's acks when it closes). Returns 0, or -EINVAL
 * for a malformed tenant or version id (32..64 of A-Z a-z 0-9 - _), -ENOMEM.
 */
int kb_client_watch_ack(struct kb_client_watch *w, const char *tenant, const char *version_id);

/* Closes the connection and frees w. NULL is fine. */
void kb_client_watch_close(struct kb_client_watch *w);

#ifdef __cplusplus
}
#endif

#endif
