/*
 * config.h - keybrokerd's JSON configuration, loaded and validated into a plain struct.
 *
 * kb_config_load_file() / kb_config_load_string() parse the document with json-c, walk it against
 * the schema below and report EVERY problem, one printable line each ("<json path>: <what is
 * wrong>"), so an operator fixes a file in one pass. Apart from reading the file and resolving
 * user and group names (both replaceable for tests), this module is pure: it never opens a
 * socket, never talks to AWS, never logs (the caller prints the error lines) and never aborts on
 * its input, whatever bytes it is given (the loader is fuzzed).
 *
 * Schema. Every key is optional unless marked required; unknown keys are errors at every level;
 * null is accepted only where the default is null (or where null has a stated meaning).
 * Durations are an integer number of seconds or a string "<n>s", "<n>m", "<n>h" or "<n>d".
 *
 * {
 *   "broker": {
 *     "socket": {
 *       "path":  "/run/keybroker/keybroker.sock"  absolute, shorter than sun_path (108 bytes)
 *       "mode":  "0660"      octal STRING "000".."0777" (a JSON number is refused: 660 != 0660)
 *       "group": null        group name or gid (integer or digits) owning the socket; null = ours
 *     },
 *     "admin": {             who may provision/rotate/revoke/metrics. Absent: {"uids": [0]};
 *                            present: taken as written (absent members are empty)
 *       "uids": [0], "gids": [], "users": [], "groups": []
 *                            ids 0..4294967294; names resolved to ids at load (unknown = error)
 *     },
 *     "audit": {             the tamper-evident audit log (broker/audit/chain.h has the format)
 *       "path": null            absolute path of the audit log; null = no audit log
 *       "state": null           absolute path of the chain's state file (0600; in hmac-sha256
 *                               mode it holds the current epoch key); null = path + ".state"
 *       "chain": "hmac-sha256"  "hmac-sha256": the state file must exist, made by `kbctl audit
 *                               init` (the verifier keeps K_0); "sha256": a plain hash chain,
 *                               its state made by the broker when absent
 *       "epoch": "15m"          1s..1d, how long an epoch key lives; every epoch is sealed
 *       "fsync": "interval"     "always" (each batch of records is fsync'd before the next) or
 *                               "interval"
 *       "fsync_interval": "1s"  1s..1h
 *       "fail_closed": false    while a record cannot be written, deny every request (and start
 *                               no job) with "unavailable"; service resumes by itself
 *       "max_backlog": 100000   1000..10000000 records kept in memory while writing fails;
 *                               more are counted in an "audit_lost" record
 *       "anchor": null          or {"bucket": (required, an S3 bucket with Object Lock),
 *                               "prefix": "keybroker-audit/", "interval": "5m" (1s..1d),
 *                               "retention": "365d" (1d..36500d, COMPLIANCE mode),
 *                               "required": false (refuse provision/rotate/revoke while more than
 *                               max_unanchored records wait), "max_unanchored": 10000 (1..10^9)}
 *     },
 *     "plugins": [              [] by default: rotation hooks, each run in a helper process of its
 *                               own (plugins/README.md)
 *       {"name": "pager"        required, [a-z0-9_-], 1..64, unique
 *        "type": "shared"       "shared" (a .so built against keybroker/plugin.h), "exec" or
 *                               "syslog" (the built-ins)
 *        "path": "/usr/lib/keybroker/plugins/pager.so"  shared: required, absolute
 *        "config": {...}        shared: any JSON object, handed to the plugin
 *        "argv": ["/usr/local/bin/on-rotate", "--quiet"]  exec: required, 1..64 strings,
 *                               argv[0] absolute
 *        "facility": "daemon"   syslog: "daemon", "auth", "authpriv", "user", "local0".."local7"
 *        "hooks": ["*"]         hook names (pre_finish, post_rotate, provisioned, revoked,
 *                               rotation_failed, key_deactivated, key_deleted, access_denied)
 *                               or "*" for all; syslog also "audit" (every event on the bus,
 *                               what the audit log records; a syslog plugin's default is "*"
 *                               and "audit")
 *        "mode": "best_effort"  or "required": a failure at pre_finish aborts the rotation
 *        "deadline": "10s"}     1s..10m, how long one event may take before the helper is killed
 *     ],
 *     "plugin_user": "nobody"   the plugin helpers' user when keybrokerd starts as root
 *     "concurrency": 8          tenants provisioned/rotated at once, 1..256
 *     "log_level": "info"       "debug" | "info" | "warn" | "error"
 *     "limits": {
 *       "max_connections": 1024              1..65536
 *       "max_connections_per_uid": 64        1..65536, connections one uid may hold (admins: any)
 *       "admin_reserved_connections": 16     0..max_connections-1, slots only admins may take;
 *                                            default min(16, max_connections / 4)
 *       "idle_timeout": "60s"                1s..1d
 *       "request_timeout": "10s"             1s..1h, from a request line's first byte to its
 *                                            newline, however the bytes trickle in
 *       "max_inflight_per_connection": 16    1..1024
 *       "requests_per_second_per_uid": 200   1..100000
 *       "max_watches_per_uid": 32            0..65536, watch subscriptions one uid holds at once
 *       "watch_ring_events": 4096            16..1000000, recent events kept in memory so that a
 *                                            watch can resume ("since"); older: a reset snapshot
 *     },
 *     "reconcile": {
 *       "interval": "1h"        1m..30d or null (never): every tenant is provisioned again
 *                               (drift repaired) this often, healthy or not
 *       "retry_initial": "5s"   1s..1h, a failed tenant is retried after this, then after
 *                               twice as long each time (with jitter) ...
 *       "retry_max": "5m"       1s..1d, ... up to this (not shorter than retry_initial)
 *     },
 *     "follow": {
 *       "interval": "60s"       1s..1d: how often a broker that follows tenants (tenants[].rotate
 *                               false) lists their secrets (one ListSecrets pass, 100 a page,
 *                               filtered by keybroker's tag and aws.secret_prefix), each wait
 *                               jittered +-10%; a failed pass is retried sooner, with the
 *                               broker.reconcile.retry_* backoff, when that is shorter
 *     }
 *   },
 *   "aws": {
 *     "region": null         [a-z0-9-], 1..63; null = AWS_REGION / AWS_DEFAULT_REGION / profile
 *     "profile": null        printable ASCII without [ ], 1..128; null = AWS_PROFILE / default
 *     "endpoint_url": null   http:// or https:// URL (tests, VPC endpoints); null = AWS's
 *     "endpoints": {"iam": null, "s3": null, "secretsmanager": null, "sts": null}
 *                            per-service URL overrides, same syntax
 *     "s3_force_path_style": false
 *     "ca_bundle": null      absolute path of a PEM bundle; null = AWS_CA_BUNDLE / the system's
 *     "max_attempts": 3      1..10, AWS "standard" retry attempts per call
 *     "name_prefix": "kb-"   IAM user = name_prefix + tenant name; IAM user-name charset, 0..63
 *     "iam_path": "/keybroker/"  IAM path of the users: "/" ... "/", 1..512, chars 0x21..0x7E
 *     "permissions_boundary": null  arn:<partition>:iam::<12 digits|aws>:policy/[<path>/]<name>
 *     "secret_prefix": "keybroker/"  secret name = secret_prefix + tenant name
 *     "kms_key_id": null     key id (UUID or mrk-...), "alias/<name>", or a KMS key/alias ARN
 *                            (same region as aws.region when both are set); null =
 * aws/secretsmanager "tags": {}             extra tags on every resource, string values
 *     "probe_timeout": "60s"        1s..1h, readiness probe of a new key
 *     "orphan_key_min_age": "10m"   1m..30d, an unreferenced key younger than this is left alone
 *     "recovery_window_days": 30    7..30, when a tenant's secret is deleted
 *     "overlap": "1h"               0s..30d, how long AWSPREVIOUS keys stay active after rotation
 *     "retire": "1d"                0s..30d, how long a deactivated AWSPREVIOUS key is kept (a
 *                                   rollback can reactivate it) before it is deleted
 *     "overlap_ends_on_ack": true   the superseded key is deactivated as soon as every watch
 *                                   subscriber of the tenant on this broker acknowledged the new
 *                                   version (at least one subscriber), not only after overlap;
 *                                   false when applications on other hosts use the tenant's key
 *                                   and do not watch this broker
 *     "deny_insecure_transport": true  each bucket's policy denies requests without TLS, and
 *                            keybroker keeps it so; false = keybroker neither reads nor writes
 *                            bucket policies (for emulators that apply a bucket policy's Deny
 *                            without its condition, e.g. moto 5.2, where the statement would deny
 *                            everything; never on AWS)
 *   },
 *   "tenants": [             [] by default (zero tenants is a valid, idle broker)
 *     {"name": "billing"     required, [A-Za-z0-9+=,.@_-], 1..64, unique ignoring case (as IAM);
 *                            name_prefix + name <= 64 characters; secret_prefix + name a valid
 *                            Secrets Manager name (1..512, [A-Za-z0-9/_+=.@-])
 *      "bucket": "acme-billing-data"  required, S3 general purpose bucket naming rules, unique
 *      "prefix": ""          object key prefix the tenant is confined to; "" = whole bucket.
 *                            No leading "/", no ".." segment, <= 512 bytes, no control
 *                            characters, no '*', '?' or '$' (IAM wildcards and variables).
 *                            "reports" also matches "reports-old/x": end it with "/" to mean a
 *                            folder. Must be "" with access "admin".
 *      "access": "read-only" required: "read-only" | "read-write" | "admin" |
 *                            {"actions": ["s3:GetObject", ...]} (s3:<letters and *>, no duplicates)
 *      "clients": {"uids": [], "gids": [], "users": [], "groups": []}  who may learn the ARN
 *      "rotate_every": "30d" 1h..365d and longer than aws.overlap; null = never
 *      "rotate": true        this host is the tenant's rotator: it provisions, rotates and
 *                            revokes it. false: this host follows it - it never makes an IAM, S3
 *                            or STS call for the tenant (no provisioning, no repair, no probe),
 *                            learns its ARN and AWSCURRENT version from Secrets Manager
 *                            (broker.follow) and answers provision/rotate/revoke of it with
 *                            not_supported
 *      "tags": {}            the tenant's own tags, on top of aws.tags (the tenant's value wins)
 *     }
 *   ]
 * }
 * Tags: keys 1..128 characters, values 0..256, letters, digits, spaces and _.:/=+-@ (non-ASCII
 * UTF-8 is accepted as letters; lengths count characters), no "aws:" prefix (any case, keys and
 * values), the "keybroker:" prefix is reserved for the broker's own tags, keys unique ignoring
 * case (IAM ignores it), and at most 48 user tags per resource (AWS's 50 minus keybroker:tenant
 * and keybroker:managed).
 *
 * Documents: at most KB_CONFIG_MAX_SIZE bytes, strict JSON (no comments, no trailing commas),
 * valid UTF-8, no NUL byte, nesting at most KB_CONFIG_MAX_DEPTH. json-c keeps only the last of
 * duplicate keys, so a separate scan of the text reports every duplicate key as an error; the
 * same scan refuses the single-quoted keys json-c 0.16 lets through even in strict mode.
 */
#ifndef KB_CONFIG_H
#define KB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/endpoints.h"
#include "common/log.h"

#define KB_CONFIG_MAX_SIZE  (1024 * 1024)
#define KB_CONFIG_MAX_DEPTH 32
/* Error lines past this many are summarised in one last line. */
#define KB_CONFIG_MAX_ERRORS 200
/* AWS allows 50 tags per resource; keybroker:tenant and keybroker:managed take two. */
#define KB_CONFIG_MAX_USER_TAGS 48

enum kb_access { KB_ACCESS_READ_ONLY, KB_ACCESS_READ_WRITE, KB_ACCESS_ADMIN, KB_ACCESS_CUSTOM };

/* Who may do something: a peer matches when its uid is in uids, or its primary group or one of
 * its supplementary groups is in gids. Names in the file were resolved at load; both arrays are
 * sorted and hold no duplicates. */
struct kb_acl {
    uint32_t *uids;
    size_t nuids;
    uint32_t *gids;
    size_t ngids;
};

struct kb_tag {
    char *key;
    char *value;
};

/* Ordered as in the file; keys are unique. */
struct kb_tags {
    struct kb_tag *items;
    size_t count;
};

/* The hooks a plugin may be given (keybroker/plugin.h's enum kb_plugin_hook, in order), and
 * after them "audit": every event on the bus (what the audit log records), for the syslog
 * built-in only. */
#define KB_CONFIG_PLUGIN_HOOKS 8
#define KB_CONFIG_PLUGIN_AUDIT 8

/* "pre_finish", "post_rotate", ..., "access_denied" for 0..7, "audit" for 8; NULL past the end.
 * Static. */
const char *kb_config_plugin_hook_name(unsigned hook);
/* The number of the hook named name, or -1. */
int kb_config_plugin_hook_parse(const char *name);

/* What a rotation hook is (broker/plugin/: each runs in a helper process of its own). */
enum kb_plugin_type {
    KB_PLUGIN_SHARED, /* a shared object built against keybroker/plugin.h */
    KB_PLUGIN_EXEC,   /* the exec built-in: a command per event */
    KB_PLUGIN_SYSLOG, /* the syslog built-in */
};

struct kb_plugin_config {
    char *name;
    enum kb_plugin_type type;
    char *path;        /* shared: absolute path of the .so; else NULL */
    char *config_json; /* shared: compact JSON object text, "{}" when absent; else NULL */
    char **argv;       /* exec: argc strings, argv[0] absolute; else NULL */
    size_t argc;
    char *facility;    /* syslog: "daemon" (default), "auth", ...; else NULL */
    uint32_t hooks;    /* KB_PLUGIN_HOOK_MASK bits of keybroker/plugin.h ("*": all 8), and
                          1 << KB_CONFIG_PLUGIN_AUDIT (syslog only; its default with "*") */
    bool required;     /* mode "required": a failure at pre_finish aborts the rotation */
    uint64_t deadline; /* seconds one event may take */
};

struct kb_tenant {
    char *name;
    char *bucket;
    char *prefix; /* "" = the whole bucket */
    enum kb_access access;
    char **actions; /* KB_ACCESS_CUSTOM: the listed actions as written; NULL otherwise */
    size_t nactions;
    struct kb_acl clients;
    uint64_t rotate_every; /* seconds; 0 = never */
    bool rotate;
    /* The effective user tags of the tenant's resources: aws.tags overlaid with the tenant's own
     * (a tenant value wins), in file order. keybroker's two managed tags are not included. */
    struct kb_tags tags;
    /* Derived at load, so every module uses the same names (DESIGN.md section 5). */
    char *user_name;   /* aws.name_prefix + name */
    char *secret_name; /* aws.secret_prefix + name */
};

struct kb_config_socket {
    char *path;
    uint32_t mode;  /* permission bits, <= 0777 */
    bool has_group; /* false: leave the socket's group alone */
    uint32_t gid;
};

enum kb_config_fsync { KB_CONFIG_FSYNC_INTERVAL, KB_CONFIG_FSYNC_ALWAYS };

struct kb_config_anchor {
    char *bucket; /* NULL: no anchoring */
    char *prefix;
    uint64_t interval;  /* seconds */
    uint64_t retention; /* seconds */
    bool required;
    uint32_t max_unanchored;
};

struct kb_config_audit {
    char *path;  /* NULL: no audit log */
    char *state; /* path + ".state" when absent; NULL only without a path */
    bool hmac;   /* chain "hmac-sha256" (else "sha256") */
    uint64_t epoch;
    enum kb_config_fsync fsync;
    uint64_t fsync_interval; /* seconds */
    bool fail_closed;
    uint32_t max_backlog;
    struct kb_config_anchor anchor;
};

struct kb_config_limits {
    uint32_t max_connections;
    uint32_t max_connections_per_uid;    /* admins are not capped */
    uint32_t admin_reserved_connections; /* of max_connections, only admins may take these */
    uint64_t idle_timeout;               /* seconds */
    uint64_t request_timeout; /* seconds from a request line's first byte to its newline */
    uint32_t max_inflight_per_connection;
    uint32_t requests_per_second_per_uid;
    uint32_t max_watches_per_uid; /* watch subscriptions open at once, per uid; 0: none */
    uint32_t watch_ring_events;   /* recent events kept for watch resumption (since) */
};

/* When tenants are provisioned again by themselves (the engine). Seconds. */
struct kb_config_reconcile {
    uint64_t interval;      /* every tenant, healthy or not; 0: never */
    uint64_t retry_initial; /* a failed tenant's first retry; doubled (jittered) each time */
    uint64_t retry_max;     /* the longest wait between retries */
};

/* How a broker follows the tenants it does not rotate (engine/follow.c). Seconds. */
struct kb_config_follow {
    uint64_t interval; /* between two ListSecrets passes, jittered +-10% */
};

struct kb_config_broker {
    struct kb_config_socket socket;
    struct kb_acl admin;
    struct kb_config_audit audit;
    struct kb_plugin_config *plugins;
    size_t nplugins;
    char *plugin_user; /* the helpers' user when keybrokerd starts as root; default "nobody" */
    uint32_t concurrency;
    enum kb_log_level log_level;
    struct kb_config_limits limits;
    struct kb_config_reconcile reconcile;
    struct kb_config_follow follow;
};

/* NULL strings mean "not set" (the AWS client then falls back to the environment). */
struct kb_config_aws {
    char *region;
    char *profile;
    char *endpoint_url;
    char *service_url[KB_AWS_SERVICE_COUNT]; /* aws.endpoints, indexed by enum kb_aws_service */
    bool s3_force_path_style;
    char *ca_bundle;
    uint32_t max_attempts;
    char *name_prefix; /* never NULL, may be "" */
    char *iam_path;
    char *permissions_boundary;
    char *secret_prefix; /* never NULL, may be "" */
    char *kms_key_id;
    struct kb_tags tags;
    uint64_t probe_timeout;      /* seconds */
    uint64_t orphan_key_min_age; /* seconds */
    uint32_t recovery_window_days;
    uint64_t overlap; /* seconds */
    uint64_t retire;  /* seconds a deactivated superseded key is kept (rollback) before deletion */
    bool overlap_ends_on_ack; /* every subscriber's ack ends the overlap early */
    bool deny_insecure_transport;
};

struct kb_config {
    struct kb_config_broker broker;
    struct kb_config_aws aws;
    struct kb_tenant *tenants;
    size_t ntenants;
    /* tenants sorted by name (strcmp), for kb_config_tenant; NULL in a config built by hand */
    const struct kb_tenant **by_name;
};

/* The problems found in a document, one printable line each (ASCII; values from the file are
 * quoted with their non-printable and non-ASCII bytes escaped). */
struct kb_config_errors {
    char **lines;
    size_t count;
    size_t cap;
    size_t dropped; /* problems past KB_CONFIG_MAX_ERRORS (already summarised in the last line) */
};

/* Name resolution for the ACLs and the socket group. Each callback returns 0 and sets *id, or
 * KB_ENOTFOUND when the name does not exist, or another negative code when the lookup itself
 * failed. ctx is passed through. */
struct kb_config_resolver {
    int (*user)(void *ctx, const char *name, uint32_t *uid);
    int (*group)(void *ctx, const char *name, uint32_t *gid);
    void *ctx;
};

/*
 * Parses and validates the len bytes of text (need not be NUL-terminated). resolver: NULL uses
 * getpwnam_r/getgrnam_r. On success returns 0, *cfg_out is the config (caller frees with
 * kb_config_destroy) and *errors_out is NULL. On an invalid document returns KB_ECONFIG,
 * *cfg_out is NULL and *errors_out holds at least one line (caller frees with
 * kb_config_errors_destroy). Returns KB_EINVAL for NULL arguments and KB_ENOMEM when memory runs
 * out (then both outputs are NULL).
 */
int kb_config_load_string(const char *text, size_t len, const struct kb_config_resolver *resolver,
                          struct kb_config **cfg_out, struct kb_config_errors **errors_out);

/* Reads the file at path (at most KB_CONFIG_MAX_SIZE bytes) and loads it as above. A file that
 * cannot be read returns its negative errno (UV_E* compatible) with both outputs NULL; a file
 * that is too large returns KB_ECONFIG with one error line. */
int kb_config_load_file(const char *path, const struct kb_config_resolver *resolver,
                        struct kb_config **cfg_out, struct kb_config_errors **errors_out);

/* The same from an open file (read from its current offset; fd stays open), for a caller that
 * checked the file it opened (fstat) before reading it. */
int kb_config_load_fd(int fd, const struct kb_config_resolver *resolver, struct kb_config **cfg_out,
                      struct kb_config_errors **errors_out);

/* Whether a config file with this owner and mode may be trusted by a broker running as euid: not
 * writable by group or others, owned by root or euid. 0, or KB_ECONFIG with the reason in why
 * ("<file> is not safe: <why>"). */
int kb_config_check_file_owner(uint32_t file_uid, uint32_t file_mode, uint32_t euid, char *why,
                               size_t whylen);

/* Whether broker.socket.mode keeps "other" out (no bit of 0007). 0, or KB_ECONFIG with why. */
int kb_config_check_socket_mode(uint32_t mode, char *why, size_t whylen);

/* Frees cfg and everything it owns. NULL is allowed. */
void kb_config_destroy(struct kb_config *cfg);

/* Frees the error list. NULL is allowed. */
void kb_config_errors_destroy(struct kb_config_errors *errors);

/* The tenant called name (exact match), or NULL. Borrowed from cfg. O(log n) in a loaded config:
 * every request on the socket names its tenant. */
const struct kb_tenant *kb_config_tenant(const struct kb_config *cfg, const char *name);

/* Whether a peer with this uid, primary gid and ngroups supplementary groups matches acl. */
bool kb_config_acl_match(const struct kb_acl *acl, uint32_t uid, uint32_t gid,
                         const uint32_t *groups, size_t ngroups);

/*
 * The pure rules, also used on their own (the protocol, kbctl, tests). Each returns 0 when value
 * is valid, or KB_ECONFIG and writes into why (NUL-terminated, truncated to whylen; why may be
 * NULL) the reason, worded to follow "<value> is not a valid <thing>: ".
 */
int kb_config_check_bucket(const char *name, char *why, size_t whylen);
int kb_config_check_tenant_name(const char *name, char *why, size_t whylen);
int kb_config_check_iam_user_name(const char *name, char *why, size_t whylen);
int kb_config_check_secret_name(const char *name, char *why, size_t whylen);
int kb_config_check_iam_path(const char *path, char *why, size_t whylen);
int kb_config_check_prefix(const char *prefix, char *why, size_t whylen);
int kb_config_check_s3_action(const char *action, char *why, size_t whylen);
/* partition_out/region_out (may be NULL) receive the ARN's partition/region; sizes >= 64. */
int kb_config_check_policy_arn(const char *arn, char *partition_out, char *why, size_t whylen);
int kb_config_check_kms_key(const char *key, char *partition_out, char *region_out, char *why,
                            size_t whylen);
/* is_key: a tag key (1..128) or a tag value (0..256). */
int kb_config_check_tag(const char *text, bool is_key, char *why, size_t whylen);

/* "90", "90s", "15m", "12h", "30d" -> seconds. Returns 0 or KB_EINVAL (syntax or overflow). */
int kb_config_parse_duration(const char *text, uint64_t *seconds);
/* "660", "0660" -> 0660 (at most 0777). Returns 0 or KB_EINVAL. */
int kb_config_parse_mode(const char *text, uint32_t *mode);

#endif
