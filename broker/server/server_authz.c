/*
 * server_authz.c - the socket's authorization rules (see server_authz.h for the rules).
 *
 * Every function answers from the config and the peer's kernel credentials only. Deny is the
 * default: an unknown op, an unknown tenant or a missing ACL all answer false.
 */
#include "server/server_authz.h"

bool kb_server_op_is_admin(enum kb_proto_op op)
{
    return op == KB_PROTO_OP_PROVISION || op == KB_PROTO_OP_ROTATE || op == KB_PROTO_OP_REVOKE ||
           op == KB_PROTO_OP_METRICS;
}

static bool s_match(const struct kb_acl *acl, const struct kb_server_peer *peer)
{
    return kb_config_acl_match(acl, peer->uid, peer->gid, peer->groups, peer->ngroups);
}

bool kb_server_authz_admin(const struct kb_config *cfg, const struct kb_server_peer *peer)
{
    return s_match(&cfg->broker.admin, peer);
}

bool kb_server_authz_tenant(const struct kb_config *cfg, const char *name,
                            const struct kb_server_peer *peer)
{
    const struct kb_tenant *t = kb_config_tenant(cfg, name);

    return t != NULL && s_match(&t->clients, peer);
}

bool kb_server_authz_visible(const struct kb_tenant *t, const struct kb_server_peer *peer)
{
    return s_match(&t->clients, peer);
}

/* A watch: every name it lists must be a tenant the peer may see the ARN of. */
static bool s_watch(const struct kb_config *cfg, const struct kb_proto_request *req,
                    const struct kb_server_peer *peer)
{
    for (size_t i = 0; i < req->tenant_count; i++) {
        if (!kb_server_authz_tenant(cfg, req->tenants[i], peer))
            return false;
    }
    return true;
}

bool kb_server_authz_request(const struct kb_config *cfg, const struct kb_proto_request *req,
                             const struct kb_server_peer *peer)
{
    const struct kb_tenant *t = NULL;

    if (req->has_tenant) {
        t = kb_config_tenant(cfg, req->tenant);
        if (t == NULL)
            return false;
    }
    switch (req->op) {
    case KB_PROTO_OP_GET:
    case KB_PROTO_OP_ACK:
        return t != NULL && s_match(&t->clients, peer);
    case KB_PROTO_OP_LIST:
        return true;
    case KB_PROTO_OP_STATUS:
        return t == NULL || kb_server_authz_visible(t, peer);
    case KB_PROTO_OP_WATCH:
        return s_watch(cfg, req, peer);
    case KB_PROTO_OP_PROVISION:
    case KB_PROTO_OP_ROTATE:
    case KB_PROTO_OP_REVOKE:
    case KB_PROTO_OP_METRICS:
        return kb_server_authz_admin(cfg, peer);
    case KB_PROTO_OP_NONE:
    case KB_PROTO_OP_COUNT:
        break;
    }
    return false;
}
