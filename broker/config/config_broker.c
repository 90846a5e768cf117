/*
 * config_broker.c - the "broker" section: socket, admin ACL, audit, plugins, limits.
 *
 * Everything the daemon itself needs to start serving; nothing here concerns AWS. Values are
 * checked for what the daemon will do with them (a socket path must fit sun_path, a mode is an
 * octal string because a JSON 660 is not 0660). This file must never touch the filesystem: paths
 * are checked for shape only, existence is the daemon's business at start-up.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "config/config.h"
#include "config/config_internal.h"

#define S_DEFAULT_SOCKET "/run/keybroker/keybroker.sock"
#define S_PATH_MAX       4096

static void s_mode(struct kb_config__ctx *c, const char *parent, struct json_object *sock,
                   uint32_t *mode)
{
    char path[KB_CONFIG__PATH_MAX];
    char q[KB_CONFIG__QUOTE_SIZE];
    bool present;
    struct json_object *v = kb_config__member(sock, "mode", &present);

    *mode = 0660;
    if (!present) {
        return;
    }
    kb_config__path_key(path, sizeof path, parent, "mode");
    if (!json_object_is_type(v, json_type_string)) {
        kb_config__error(c, path, "must be an octal string like \"0660\", not %s",
                         kb_config__type_name(v));
    } else if (kb_config_parse_mode(json_object_get_string(v), mode) != 0 ||
               strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
        kb_config__error(
            c, path, "%s is not a valid mode: use an octal string from \"0000\" to \"0777\"",
            kb_config__quote(q, json_object_get_string(v), (size_t)json_object_get_string_len(v)));
        *mode = 0660;
    }
}

static void s_socket(struct kb_config__ctx *c, struct json_object *broker,
                     struct kb_config_socket *sock)
{
    static const char *const keys[] = {"path", "mode", "group", NULL};
    const char *base = "broker.socket";
    char path[KB_CONFIG__PATH_MAX];
    struct json_object *v = kb_config__object(c, "broker", broker, "socket");
    struct json_object *group;
    bool present;

    if (v != NULL) {
        kb_config__check_keys(c, base, v, keys);
    }
    if (kb_config__string(c, base, v, "path", 0, S_DEFAULT_SOCKET, &sock->path) &&
        sock->path != NULL) {
        kb_config__path_key(path, sizeof path, base, "path");
        kb_config__check_abs_path(c, path, sock->path, sizeof((struct sockaddr_un *)0)->sun_path);
    }
    s_mode(c, base, v, &sock->mode);
    group = kb_config__member(v, "group", &present);
    if (group != NULL) {
        kb_config__path_key(path, sizeof path, base, "group");
        sock->has_group = kb_config__group_id(c, path, group, &sock->gid);
    }
}

static void s_admin(struct kb_config__ctx *c, struct json_object *broker, struct kb_acl *acl)
{
    struct json_object *v;
    bool present;

    (void)kb_config__member(broker, "admin", &present);
    v = kb_config__object(c, "broker", broker, "admin");
    if (!present) {
        /* Without an admin section, root alone administers the broker. */
        acl->uids = kb_config__calloc(c, 1, sizeof *acl->uids);
        acl->nuids = acl->uids != NULL ? 1 : 0;
        return;
    }
    kb_config__acl(c, "broker.admin", v, acl);
}

static void s_log_level(struct kb_config__ctx *c, struct json_object *broker,
                        enum kb_log_level *level)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char q[KB_CONFIG__QUOTE_SIZE];
    char *s = NULL;

    *level = KB_LOG_INFO;
    if (!kb_config__string(c, "broker", broker, "log_level", 0, "info", &s) || s == NULL) {
        free(s);
        return;
    }
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (strcmp(s, names[i]) == 0) {
            *level = (enum kb_log_level)i;
            free(s);
            return;
        }
    }
    kb_config__error(c, "broker.log_level",
                     "%s is not a valid log level: use \"debug\", \"info\", \"warn\" or \"error\"",
                     kb_config__quote(q, s, strlen(s)));
    free(s);
}

static void s_limits(struct kb_config__ctx *c, struct json_object *broker,
                     struct kb_config_limits *l)
{
    static const char *const keys[] = {"max_connections",
                                       "max_connections_per_uid",
                                       "admin_reserved_connections",
                                       "idle_timeout",
                                       "request_timeout",
                                       "max_inflight_per_connection",
                                       "requests_per_second_per_uid",
                                       "max_watches_per_uid",
                                       "watch_ring_events",
                                       NULL};
    const char *base = "broker.limits";
    struct json_object *v = kb_config__object(c, "broker", broker, "limits");
    bool present;

    if (v != NULL) {
        kb_config__check_keys(c, base, v, keys);
    }
    kb_config__uint(c, base, v, "max_connections", 1, 65536, 1024, &l->max_connections);
    kb_config__uint(c, base, v, "max_connections_per_uid", 1, 65536, 64,
                    &l->max_connections_per_uid);
    (void)kb_config__member(v, "admin_reserved_connections", &present);
    /* The default leaves three quarters of the slots to everyone else on a small limit. */
    kb_config__uint(c, base, v, "admin_reserved_connections", 0, 65535,
                    l->max_connections / 4 < 16 ? l->max_connections / 4 : 16,
                    &l->admin_reserved_connections);
    if (present && l->admin_reserved_connections >= l->max_connections) {
        kb_config__error(c, "broker.limits.admin_reserved_connections",
                         "%u leaves no connection for anyone but admins: it must be less than "
                         "broker.limits.max_connections (%u)",
                         l->admin_reserved_connections, l->max_connections);
    }
    kb_config__duration(c, base, v, "idle_timeout", 0, 1, 86400, 60, &l->idle_timeout);
    kb_config__duration(c, base, v, "request_timeout", 0, 1, 3600, 10, &l->request_timeout);
    kb_config__uint(c, base, v, "max_inflight_per_connection", 1, 1024, 16,
                    &l->max_inflight_per_connection);
    kb_config__uint(c, base, v, "requests_per_second_per_uid", 1, 100000, 200,
                    &l->requests_per_second_per_uid);
    kb_config__uint(c, base, v, "max_watches_per_uid", 0, 65536, 32, &l->max_watches_per_uid);
    kb_config__uint(c, base, v, "watch_ring_events", 16, 1000000, 4096, &l->watch_ring_events);
}

static void s_reconcile(struct kb_config__ctx *c, struct json_object *broker,
                        struct kb_config_reconcile *r)
{
    static const char *const keys[] = {"interval", "retry_initial", "retry_max", NULL};
    const char *base = "broker.reconcile";
    struct json_object *v = kb_config__object(c, "broker", broker, "reconcile");
    char a[32], b[32];

    if (v != NULL) {
        kb_config__check_keys(c, base, v, keys);
    }
    kb_config__duration(c, base, v, "interval", KB_CONFIG__NULLABLE, 60, 30 * 86400, 3600,
                        &r->interval);
    kb_config__duration(c, base, v, "retry_initial", 0, 1, 3600, 5, &r->retry_initial);
    if (kb_config__duration(c, base, v, "retry_max", 0, 1, 86400, 300, &r->retry_max) &&
        r->retry_max < r->retry_initial) {
        kb_config__fmt_duration(a, sizeof a, r->retry_max);
        kb_config__fmt_duration(b, sizeof b, r->retry_initial);
        kb_config__error(c, "broker.reconcile.retry_max",
                         "%s is shorter than broker.reconcile.retry_initial (%s)", a, b);
    }
}

static void s_follow(struct kb_config__ctx *c, struct json_object *broker,
                     struct kb_config_follow *f)
{
    static const char *const keys[] = {"interval", NULL};
    struct json_object *v = kb_config__object(c, "broker", broker, "follow");

    if (v != NULL) {
        kb_config__check_keys(c, "broker.follow", v, keys);
    }
    kb_config__duration(c, "broker.follow", v, "interval", 0, 1, 86400, 60, &f->interval);
}

void kb_config__broker(struct kb_config__ctx *c, struct json_object *v, struct kb_config *cfg)
{
    static const char *const keys[] = {"socket",      "admin",       "audit",     "plugins",
                                       "plugin_user", "concurrency", "log_level", "limits",
                                       "reconcile",   "follow",      NULL};
    struct kb_config_broker *b = &cfg->broker;

    if (v != NULL) {
        kb_config__check_keys(c, "broker", v, keys);
    }
    s_socket(c, v, &b->socket);
    s_admin(c, v, &b->admin);
    kb_config__audit(c, v, &b->audit);
    kb_config__plugins(c, v, b);
    kb_config__uint(c, "broker", v, "concurrency", 1, 256, 8, &b->concurrency);
    s_log_level(c, v, &b->log_level);
    s_limits(c, v, &b->limits);
    s_reconcile(c, v, &b->reconcile);
    s_follow(c, v, &b->follow);
}
