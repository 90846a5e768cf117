/*
 * server_log.c - the server's log lines: every authorization decision and connection event.
 *
 * Every decision is logged (DESIGN.md I3). Denials and admin ops get one line each, at once.
 * A client that repeats a read op (get, list, status, watch) on one connection would otherwise
 * cost a log line per request - more than the request itself - so the first allow of each
 * (op, tenant) on a connection is logged at once and the repeats are folded into one line per
 * second with "count" (and a last one when the connection closes): every allow is accounted for,
 * with its peer. Denials cannot be folded like that (each names its own op and tenant), but one
 * uid must not be able to write the log full: each uid has a budget of KB_SRV_DENY_LOG_RATE
 * denial lines a second, and the denials over it are counted and logged as one summary line per
 * second with their count (and when the uid's last connection closes). Every denial is still
 * counted in the metrics and emitted on the event bus. This file must never log a request line or
 * any value a peer sent other than a tenant name the codec validated.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "server/server_internal.h"

#define S_FOLD_MS 1000u

struct s_ids {
    char uid[16], gid[16], pid[16];
};

static void s_ids(const struct kb_srv_conn *c, struct s_ids *ids)
{
    snprintf(ids->uid, sizeof(ids->uid), "%" PRIu32, c->peer.uid);
    snprintf(ids->gid, sizeof(ids->gid), "%" PRIu32, c->peer.gid);
    snprintf(ids->pid, sizeof(ids->pid), "%ld", (long)c->peer.pid);
}

void kb_srv_log_peer(enum kb_log_level level, const char *event, const struct kb_srv_conn *c,
                     const char *why)
{
    struct s_ids ids;

    if (!kb_log_enabled(level))
        return;
    s_ids(c, &ids);
    kb_log(level, event, "uid", ids.uid, "gid", ids.gid, "pid", ids.pid, "reason", why, NULL);
}

static void s_line(const struct kb_srv_conn *c, enum kb_proto_op op, const char *tenant, bool allow,
                   uint64_t count)
{
    enum kb_log_level level = allow ? KB_LOG_INFO : KB_LOG_WARN;
    char n[24];
    struct s_ids ids;

    if (!kb_log_enabled(level))
        return;
    s_ids(c, &ids);
    snprintf(n, sizeof(n), "%" PRIu64, count);
    kb_log(level, "authz", "op", kb_proto_op_name(op), "tenant", tenant, "uid", ids.uid, "gid",
           ids.gid, "pid", ids.pid, "result", allow ? "allow" : "deny", "count",
           count > 1 ? n : NULL, NULL);
}

void kb_srv_log_adopt(const struct kb_srv_conn *c, const char *tenant)
{
    struct s_ids ids;

    s_ids(c, &ids);
    kb_log(KB_LOG_WARN, "adopt requested", "tenant", tenant, "uid", ids.uid, "gid", ids.gid, "pid",
           ids.pid, NULL);
}

static bool s_foldable(enum kb_proto_op op)
{
    return op == KB_PROTO_OP_GET || op == KB_PROTO_OP_LIST || op == KB_PROTO_OP_STATUS ||
           op == KB_PROTO_OP_WATCH;
}

/* The fold slot of (op, tenant) on c; a free one is claimed; NULL when all are taken. */
static struct kb_srv_fold *s_slot(struct kb_srv_conn *c, enum kb_proto_op op, const char *tenant,
                                  bool *is_new)
{
    const char *name = tenant != NULL ? tenant : "";

    *is_new = false;
    for (size_t i = 0; i < KB_SRV_FOLDS; i++) {
        struct kb_srv_fold *f = &c->folds[i];

        if (f->op == KB_PROTO_OP_NONE) {
            f->op = op;
            memcpy(f->tenant, name, strlen(name) + 1);
            *is_new = true;
            return f;
        }
        if (f->op == op && strcmp(f->tenant, name) == 0)
            return f;
    }
    return NULL;
}

/* Whether a denial line fits in the uid's budget; counts it in the summary when not. */
static bool s_deny_budget(struct kb_srv_conn *c)
{
    struct kb_srv_rate *r = c->rate;

    if (r == NULL || kb_server_bucket_take(&r->deny_log, KB_SRV_DENY_LOG_RATE,
                                           KB_SRV_DENY_LOG_BURST, uv_now(c->srv->loop)))
        return true;
    r->denials_unlogged++;
    c->srv->metrics.denials_unlogged++;
    return false;
}

void kb_srv_log_denials(struct kb_srv_rate *r, uint64_t now_ms, bool force)
{
    char uid[16], n[24], msg[96];

    if (r->denials_unlogged == 0 || (!force && now_ms - r->denials_summarised_ms < S_FOLD_MS))
        return;
    r->denials_summarised_ms = now_ms;
    snprintf(uid, sizeof(uid), "%" PRIu32, r->uid);
    snprintf(n, sizeof(n), "%" PRIu64, r->denials_unlogged);
    r->denials_unlogged = 0;
    snprintf(msg, sizeof(msg), "denials past this uid's log budget of %d lines a second",
             KB_SRV_DENY_LOG_RATE);
    kb_log(KB_LOG_WARN, "authz-denials-summarised", "uid", uid, "result", "deny", "count", n,
           "message", msg, NULL);
}

void kb_srv_log_authz(struct kb_srv_conn *c, const struct kb_proto_request *req, bool allow)
{
    const char *tenant = req->has_tenant ? req->tenant : NULL;
    struct kb_srv_fold *f;
    bool is_new;

    if (!allow && kb_log_enabled(KB_LOG_WARN) && !s_deny_budget(c))
        return;
    if (!allow || !s_foldable(req->op) || !kb_log_enabled(KB_LOG_INFO)) {
        s_line(c, req->op, tenant, allow, 1);
        return;
    }
    f = s_slot(c, req->op, tenant, &is_new);
    if (f == NULL || is_new) {
        s_line(c, req->op, tenant, true, 1);
        return;
    }
    f->pending++;
}

void kb_srv_log_flush(struct kb_srv_conn *c, uint64_t now_ms, bool force)
{
    if (!force && now_ms - c->folds_flushed_ms < S_FOLD_MS)
        return;
    c->folds_flushed_ms = now_ms;
    for (size_t i = 0; i < KB_SRV_FOLDS; i++) {
        struct kb_srv_fold *f = &c->folds[i];

        if (f->pending == 0)
            continue;
        s_line(c, f->op, f->tenant[0] != '\0' ? f->tenant : NULL, true, f->pending);
        f->pending = 0;
    }
}
