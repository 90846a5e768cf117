/*
 * server_authz.h - who may do what on the client socket: the pure decisions behind every op.
 *
 * A peer is what the kernel says about the other end of a connection (SO_PEERCRED and
 * SO_PEERGROUPS at accept); the config's ACLs hold numbers only (names were resolved at load).
 * Rules (DESIGN.md I3):
 *   - get, list, status and watch see a tenant only when the peer matches its clients ACL
 *     (list, status and watch without names are filtered, not refused); being admin does not
 *     add tenants: need to know holds for operators too;
 *   - provision, rotate, revoke and metrics need the admin ACL;
 *   - a tenant that does not exist is refused exactly like one the peer may not see, so that the
 *     answer is no oracle of which tenants exist.
 * This module decides only: it never logs, counts or does I/O (the server does, for every
 * decision), and it must never allow anything on a lookup failure.
 */
#ifndef KB_SERVER_AUTHZ_H
#define KB_SERVER_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/codec.h"
#include "config/config.h"

/* The kernel's credentials of a connected peer, taken once at accept. */
struct kb_server_peer {
    uint32_t uid;
    uint32_t gid;
    pid_t pid;
    const uint32_t *groups; /* supplementary groups; borrowed (the connection owns them) */
    size_t ngroups;
};

/* Whether op needs the admin ACL. */
bool kb_server_op_is_admin(enum kb_proto_op op);

/* Whether peer matches the admin ACL. */
bool kb_server_authz_admin(const struct kb_config *cfg, const struct kb_server_peer *peer);

/* Whether peer may learn the ARN of the tenant called name (false when there is no such
 * tenant). */
bool kb_server_authz_tenant(const struct kb_config *cfg, const char *name,
                            const struct kb_server_peer *peer);

/* Whether tenant t appears in peer's list, status and watch answers (its clients ACL). */
bool kb_server_authz_visible(const struct kb_tenant *t, const struct kb_server_peer *peer);

/*
 * The decision for one request, before the op runs. For an op that names one tenant (get,
 * rotate, revoke; status/provision when they name one) the tenant must exist and be allowed;
 * for list, status and watch without names the op is allowed and the answer is filtered; a watch
 * with names needs every name allowed. Returns true (allow) or false (deny).
 */
bool kb_server_authz_request(const struct kb_config *cfg, const struct kb_proto_request *req,
                             const struct kb_server_peer *peer);

#endif
