/*
 * config_audit.c - the "broker.audit" section: where the audit log and its chain state live, how
 * the chain is keyed, sealed, synced and anchored, and whether a write failure denies service.
 *
 * Shape only, like the rest of the loader: whether the state file exists (hmac-sha256 needs one
 * made by `kbctl audit init`) and the bucket has Object Lock is the daemon's check at start.
 */
#include <string.h>

#include "config/config.h"
#include "config/config_internal.h"

#define S_PATH_MAX   4096
#define S_PREFIX_MAX 512

static void s_path(struct kb_config__ctx *c, struct json_object *audit, const char *key, char **out)
{
    char path[KB_CONFIG__PATH_MAX];

    if (kb_config__string(c, "broker.audit", audit, key, KB_CONFIG__NULLABLE, NULL, out) &&
        *out != NULL) {
        kb_config__path_key(path, sizeof path, "broker.audit", key);
        kb_config__check_abs_path(c, path, *out, S_PATH_MAX);
    }
}

/* "hmac-sha256" | "sha256" into *hmac (default hmac-sha256). */
static void s_chain(struct kb_config__ctx *c, struct json_object *audit, bool *hmac)
{
    char *chain = NULL;

    *hmac = true;
    if (!kb_config__string(c, "broker.audit", audit, "chain", 0, "hmac-sha256", &chain) ||
        chain == NULL)
        return;
    if (strcmp(chain, "sha256") == 0)
        *hmac = false;
    else if (strcmp(chain, "hmac-sha256") != 0)
        kb_config__error(c, "broker.audit.chain",
                         "must be \"hmac-sha256\" (a forward-secure keyed chain, the default) or "
                         "\"sha256\" (a plain hash chain)");
    free(chain);
}

static void s_fsync(struct kb_config__ctx *c, struct json_object *audit, enum kb_config_fsync *out)
{
    char *mode = NULL;

    *out = KB_CONFIG_FSYNC_INTERVAL;
    if (!kb_config__string(c, "broker.audit", audit, "fsync", 0, "interval", &mode) || mode == NULL)
        return;
    if (strcmp(mode, "always") == 0)
        *out = KB_CONFIG_FSYNC_ALWAYS;
    else if (strcmp(mode, "interval") != 0)
        kb_config__error(c, "broker.audit.fsync", "must be \"interval\" or \"always\"");
    free(mode);
}

/* An object key prefix: printable ASCII, no leading "/", no ".." segment. "" is allowed. */
static bool s_prefix_ok(const char *s)
{
    size_t len = strlen(s);

    if (len > S_PREFIX_MAX || s[0] == '/' || strstr(s, "..") != NULL)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '\\')
            return false;
    }
    return true;
}

static void s_anchor(struct kb_config__ctx *c, struct json_object *audit,
                     struct kb_config_anchor *a)
{
    static const char *const keys[] = {"bucket",   "prefix",         "interval", "retention",
                                       "required", "max_unanchored", NULL};
    const char *base = "broker.audit.anchor";
    char why[256];
    bool present;
    struct json_object *v = kb_config__member(audit, "anchor", &present);

    a->interval = 300;
    a->retention = 365 * 86400;
    a->max_unanchored = 10000;
    if (v == NULL)
        return; /* absent or null: no anchoring */
    v = kb_config__object(c, "broker.audit", audit, "anchor");
    if (v == NULL)
        return;
    kb_config__check_keys(c, base, v, keys);
    if (kb_config__string(c, base, v, "bucket", KB_CONFIG__REQUIRED, NULL, &a->bucket) &&
        a->bucket != NULL && kb_config_check_bucket(a->bucket, why, sizeof why) != 0)
        kb_config__error(c, "broker.audit.anchor.bucket", "%s", why);
    if (kb_config__string(c, base, v, "prefix", 0, "keybroker-audit/", &a->prefix) &&
        a->prefix != NULL && !s_prefix_ok(a->prefix))
        kb_config__error(c, "broker.audit.anchor.prefix",
                         "must be at most 512 printable ASCII characters without spaces, \"\\\", "
                         "a leading \"/\" or \"..\"");
    kb_config__duration(c, base, v, "interval", 0, 1, 86400, 300, &a->interval);
    kb_config__duration(c, base, v, "retention", 0, 86400, 36500ull * 86400, 365 * 86400,
                        &a->retention);
    kb_config__bool(c, base, v, "required", false, &a->required);
    kb_config__uint(c, base, v, "max_unanchored", 1, 1000000000, 10000, &a->max_unanchored);
}

void kb_config__audit(struct kb_config__ctx *c, struct json_object *broker,
                      struct kb_config_audit *audit)
{
    static const char *const keys[] = {
        "path",           "state",       "chain",       "epoch",  "fsync",
        "fsync_interval", "fail_closed", "max_backlog", "anchor", NULL};
    struct json_object *v = kb_config__object(c, "broker", broker, "audit");
    size_t n;

    if (v != NULL)
        kb_config__check_keys(c, "broker.audit", v, keys);
    s_path(c, v, "path", &audit->path);
    s_path(c, v, "state", &audit->state);
    s_chain(c, v, &audit->hmac);
    kb_config__duration(c, "broker.audit", v, "epoch", 0, 1, 86400, 900, &audit->epoch);
    s_fsync(c, v, &audit->fsync);
    kb_config__duration(c, "broker.audit", v, "fsync_interval", 0, 1, 3600, 1,
                        &audit->fsync_interval);
    kb_config__bool(c, "broker.audit", v, "fail_closed", false, &audit->fail_closed);
    kb_config__uint(c, "broker.audit", v, "max_backlog", 1000, 10000000, 100000,
                    &audit->max_backlog);
    s_anchor(c, v, &audit->anchor);
    if (audit->path == NULL) {
        if (audit->state != NULL || audit->anchor.bucket != NULL)
            kb_config__error(c, "broker.audit.path",
                             "is required when broker.audit.state or broker.audit.anchor is set");
        return;
    }
    if (audit->state == NULL) {
        n = strlen(audit->path) + sizeof(".state");
        audit->state = kb_config__calloc(c, n, 1);
        if (audit->state != NULL) {
            memcpy(audit->state, audit->path, n - sizeof(".state"));
            memcpy(audit->state + n - sizeof(".state"), ".state", sizeof(".state"));
        }
    }
    if (audit->state != NULL && strcmp(audit->state, audit->path) == 0)
        kb_config__error(c, "broker.audit.state", "must not be the audit log itself");
}
