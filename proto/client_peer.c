/*
 * client_peer.c - who may serve the broker's socket: the broker-user setting
 * (KEYBROKER_SERVER_UID or an option), the accepted set of uids, and the SO_PEERCRED check that
 * kb_client_connect runs before a single byte is sent.
 *
 * The rule is in keybroker/client.h. A refusal is the whole point: the check never falls back to
 * accepting (a malformed setting, a failed SO_PEERCRED and an unknown user all refuse), and it
 * never asks the user database unless a setting names a user or the cheap cases did not match.
 */
#include "client_internal.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define S_UID_MAX   4294967294u /* (uid_t)-1 means "no uid" to the kernel */
#define S_PWBUF_MIN 4096
#define S_PWBUF_MAX (1u << 20)

static void s_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_why(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || whylen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* The uid of user name: 0 and *uid, -ENOENT (no such user), or another -errno. */
static int s_user_uid(const char *name, uint32_t *uid)
{
    struct passwd pw, *found = NULL;
    size_t cap = S_PWBUF_MIN;
    char *buf = NULL;
    int rc;

    for (;;) {
        char *p = realloc(buf, cap);

        if (p == NULL) {
            rc = -ENOMEM;
            break;
        }
        buf = p;
        rc = getpwnam_r(name, &pw, buf, cap, &found);
        if (rc != ERANGE || cap >= S_PWBUF_MAX)
            break;
        cap *= 2;
    }
    if (rc > 0)
        rc = -rc;
    else if (rc == 0 && found == NULL)
        rc = -ENOENT;
    else if (rc == 0)
        *uid = (uint32_t)found->pw_uid;
    free(buf);
    return rc;
}

int kb_client_server_uid_parse(const char *spec, uint32_t *uid)
{
    uint64_t v = 0;
    size_t i;

    if (spec == NULL || spec[0] == '\0' || uid == NULL)
        return -EINVAL;
    for (i = 0; spec[i] >= '0' && spec[i] <= '9'; i++) {
        v = v * 10 + (uint64_t)(spec[i] - '0');
        if (v > S_UID_MAX)
            return -EINVAL;
    }
    if (spec[i] == '\0') {
        *uid = (uint32_t)v;
        return 0;
    }
    return s_user_uid(spec, uid) == 0 ? 0 : -EINVAL;
}

/* The packaged broker's system user, when there is one. */
static bool s_system_user(uint32_t server_uid)
{
    uint32_t uid;

    return s_user_uid(KB_CLIENT_SERVER_USER, &uid) == 0 && uid >= 1 &&
           uid <= KB_CLIENT_SYSTEM_UID_MAX && uid == server_uid;
}

int kb_client_server_trusted(uint32_t server_uid, uint32_t client_uid, const char *spec, char *why,
                             size_t whylen)
{
    const char *env = getenv(KB_CLIENT_SERVER_UID_ENV);
    bool from_env = spec == NULL;
    uint32_t broker = 0;
    bool has_broker;

    if (from_env)
        spec = env != NULL ? env : "";
    has_broker = spec[0] != '\0';
    if (has_broker && kb_client_server_uid_parse(spec, &broker) != 0) {
        if (from_env)
            s_why(why, whylen,
                  "%s=%s is neither a uid (a decimal number) nor the name of a user: fix it or "
                  "unset it",
                  KB_CLIENT_SERVER_UID_ENV, spec);
        else
            s_why(why, whylen,
                  "the broker's user '%s' is neither a uid (a decimal number) nor the name of a "
                  "user",
                  spec);
        return -EINVAL;
    }
    if (server_uid == 0 || server_uid == client_uid || (has_broker && server_uid == broker) ||
        s_system_user(server_uid))
        return 0;
    s_why(why, whylen,
          "the socket is served by uid %u, not root, your own uid or the broker's user: refusing "
          "it (if uid %u is the broker, set %s=%u)",
          (unsigned)server_uid, (unsigned)server_uid, KB_CLIENT_SERVER_UID_ENV,
          (unsigned)server_uid);
    return KB_CLIENT_EPEER;
}

int kb_client__peer_check(int fd, const char *path, const char *spec, uint32_t *peer_uid, char *why,
                          size_t whylen)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int rc;

    errno = 0;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred)) {
        rc = errno != 0 ? -errno : -EPROTO;
        s_why(why, whylen, "%s: cannot learn who serves the socket (SO_PEERCRED): %s", path,
              kb_client_strerror(rc));
        return rc;
    }
    if (peer_uid != NULL)
        *peer_uid = (uint32_t)cred.uid;
    rc = kb_client_server_trusted((uint32_t)cred.uid, (uint32_t)geteuid(), spec, why, whylen);
    if (rc == KB_CLIENT_EPEER)
        s_why(why, whylen,
              "%s is served by uid %u, not root, your own uid or the broker's user: refusing it "
              "(if uid %u is the broker, set %s=%u)",
              path, (unsigned)cred.uid, (unsigned)cred.uid, KB_CLIENT_SERVER_UID_ENV,
              (unsigned)cred.uid);
    return rc;
}
