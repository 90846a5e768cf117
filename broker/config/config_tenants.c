/*
 * config_tenants.c - the "tenants" section: one bucket, one IAM user, one secret per tenant.
 *
 * Besides each tenant's own fields this file checks what only shows when the pieces meet: the
 * IAM user name (aws.name_prefix + name) and the secret name (aws.secret_prefix + name) must fit
 * AWS's limits, names must be unique ignoring case (IAM does), buckets unique, the tag total
 * within AWS's 50, rotation longer than the overlap window, and the generated policy within
 * IAM's size limit. Uniqueness uses json-c hash tables, so a huge document stays linear. This
 * file must never report a tenant problem without the tenant's JSON path.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "common/err.h"
#include "config/policy.h"

/* Seen names and buckets: json-c objects used as hash sets, value = the first tenant's index. */
struct s_seen {
    struct json_object *names;
    struct json_object *buckets;
};

static char *s_concat(struct kb_config__ctx *c, const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    char *s = malloc(la + lb + 1);

    if (s == NULL) {
        c->oom = true;
        return NULL;
    }
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

static void s_derived_names(struct kb_config__ctx *c, const char *path, const struct kb_config *cfg,
                            struct kb_tenant *t)
{
    char why[256];
    char q[KB_CONFIG__QUOTE_SIZE];
    size_t len;

    t->user_name = s_concat(c, cfg->aws.name_prefix, t->name);
    t->secret_name = s_concat(c, cfg->aws.secret_prefix, t->name);
    if (t->user_name == NULL || t->secret_name == NULL) {
        return;
    }
    len = strlen(t->user_name);
    if (len > 64 && !c->bad_name_prefix) {
        kb_config__error(c, path,
                         "the IAM user name %s (aws.name_prefix + name) is %zu characters long: "
                         "IAM allows at most 64",
                         kb_config__quote(q, t->user_name, len), len);
    }
    if (!c->bad_secret_prefix &&
        kb_config_check_secret_name(t->secret_name, why, sizeof why) != 0) {
        kb_config__error(c, path,
                         "the secret name %s (aws.secret_prefix + name) is not valid for Secrets "
                         "Manager: %s",
                         kb_config__quote(q, t->secret_name, strlen(t->secret_name)), why);
    }
}

/* Reports name or bucket s when set already holds it (key = s, lowercased for names). */
static void s_unique(struct kb_config__ctx *c, struct json_object *set, const char *path,
                     const char *s, bool fold_case, size_t index)
{
    char q[KB_CONFIG__QUOTE_SIZE];
    struct json_object *first = NULL;
    char *key = kb_config__strdup(c, s);

    if (key == NULL || set == NULL) {
        free(key);
        return;
    }
    for (char *p = key; fold_case && *p != '\0'; p++) {
        *p = (char)tolower((unsigned char)*p);
    }
    kb_config__quote(q, s, strlen(s));
    if (json_object_object_get_ex(set, key, &first)) {
        if (fold_case) {
            kb_config__error(c, path,
                             "duplicate tenant name %s: tenants[%d] has the same name (IAM user "
                             "names ignore case)",
                             q, json_object_get_int(first));
        } else {
            kb_config__error(c, path, "duplicate bucket %s: tenants[%d] uses it too", q,
                             json_object_get_int(first));
        }
    } else if (json_object_object_add(set, key, json_object_new_int((int32_t)index)) != 0) {
        c->oom = true;
    }
    free(key);
}

static void s_name(struct kb_config__ctx *c, const char *base, struct json_object *v,
                   const struct kb_config *cfg, struct kb_tenant *t)
{
    char path[KB_CONFIG__PATH_MAX];
    char why[256];
    char q[KB_CONFIG__QUOTE_SIZE];

    kb_config__path_key(path, sizeof path, base, "name");
    if (!kb_config__string(c, base, v, "name", KB_CONFIG__REQUIRED, NULL, &t->name) ||
        t->name == NULL) {
        return;
    }
    if (kb_config_check_tenant_name(t->name, why, sizeof why) != 0) {
        kb_config__error(c, path, "%s is not a valid tenant name: %s",
                         kb_config__quote(q, t->name, strlen(t->name)), why);
        return;
    }
    if (cfg->aws.name_prefix != NULL && cfg->aws.secret_prefix != NULL) {
        s_derived_names(c, path, cfg, t);
    }
}

static void s_bucket_and_prefix(struct kb_config__ctx *c, const char *base, struct json_object *v,
                                struct kb_tenant *t)
{
    char path[KB_CONFIG__PATH_MAX];
    char why[256];
    char q[KB_CONFIG__QUOTE_SIZE];

    kb_config__path_key(path, sizeof path, base, "bucket");
    if (kb_config__string(c, base, v, "bucket", KB_CONFIG__REQUIRED, NULL, &t->bucket) &&
        t->bucket != NULL && kb_config_check_bucket(t->bucket, why, sizeof why) != 0) {
        kb_config__error(c, path, "%s is not a valid S3 bucket name: %s",
                         kb_config__quote(q, t->bucket, strlen(t->bucket)), why);
    }
    kb_config__path_key(path, sizeof path, base, "prefix");
    if (kb_config__string(c, base, v, "prefix", 0, "", &t->prefix) && t->prefix != NULL &&
        kb_config_check_prefix(t->prefix, why, sizeof why) != 0) {
        kb_config__error(c, path, "%s is not a valid object key prefix: %s",
                         kb_config__quote(q, t->prefix, strlen(t->prefix)), why);
    }
}

static void s_action(struct kb_config__ctx *c, const char *path, struct json_object *v,
                     struct json_object *seen, struct kb_tenant *t)
{
    char why[256];
    char q[KB_CONFIG__QUOTE_SIZE];
    const char *s = kb_config__as_string(c, path, v);
    char *folded;

    if (s == NULL) {
        return;
    }
    kb_config__quote(q, s, strlen(s));
    if (kb_config_check_s3_action(s, why, sizeof why) != 0) {
        kb_config__error(c, path, "%s is not a valid S3 action: %s", q, why);
        return;
    }
    folded = kb_config__strdup(c, s);
    if (folded == NULL) {
        return;
    }
    for (char *p = folded; *p != '\0'; p++) {
        *p = (char)tolower((unsigned char)*p);
    }
    if (json_object_object_get_ex(seen, folded, NULL)) {
        kb_config__error(c, path, "duplicate action %s (IAM ignores case in action names)", q);
    } else if (json_object_object_add(seen, folded, NULL) != 0) {
        c->oom = true;
    } else if ((t->actions[t->nactions] = kb_config__strdup(c, s)) != NULL) {
        t->nactions++;
    }
    free(folded);
}

static void s_custom_access(struct kb_config__ctx *c, const char *path, struct json_object *v,
                            struct kb_tenant *t)
{
    static const char *const keys[] = {"actions", NULL};
    char base[KB_CONFIG__PATH_MAX];
    char p[KB_CONFIG__PATH_MAX];
    struct json_object *actions;
    struct json_object *seen;
    size_t n;

    t->access = KB_ACCESS_CUSTOM;
    kb_config__check_keys(c, path, v, keys);
    kb_config__path_key(base, sizeof base, path, "actions");
    if (!json_object_object_get_ex(v, "actions", NULL)) {
        kb_config__error(c, base, "required key is missing");
        return;
    }
    actions = kb_config__array(c, path, v, "actions");
    n = actions != NULL ? json_object_array_length(actions) : 0;
    if (actions != NULL && n == 0) {
        kb_config__error(c, base, "must list at least one action");
    }
    if (n == 0) {
        return;
    }
    t->actions = kb_config__calloc(c, n, sizeof *t->actions);
    seen = json_object_new_object();
    if (seen == NULL) {
        c->oom = true;
    }
    for (size_t i = 0; i < n && t->actions != NULL && !c->oom; i++) {
        kb_config__path_index(p, sizeof p, base, i);
        s_action(c, p, json_object_array_get_idx(actions, i), seen, t);
    }
    json_object_put(seen);
}

static void s_access(struct kb_config__ctx *c, const char *base, struct json_object *v,
                     struct kb_tenant *t)
{
    static const char *const levels[] = {"read-only", "read-write", "admin"};
    char path[KB_CONFIG__PATH_MAX];
    char q[KB_CONFIG__QUOTE_SIZE];
    bool present;
    struct json_object *a = kb_config__member(v, "access", &present);
    const char *s;

    kb_config__path_key(path, sizeof path, base, "access");
    t->access = KB_ACCESS_READ_ONLY;
    if (!present) {
        kb_config__error(c, path, "required key is missing");
        return;
    }
    if (json_object_is_type(a, json_type_object)) {
        s_custom_access(c, path, a, t);
        return;
    }
    if (!json_object_is_type(a, json_type_string)) {
        kb_config__error(c, path, "must be a string or an object, not %s", kb_config__type_name(a));
        return;
    }
    s = json_object_get_string(a);
    for (size_t i = 0; i < sizeof levels / sizeof *levels; i++) {
        if (strcmp(s, levels[i]) == 0 && strlen(s) == (size_t)json_object_get_string_len(a)) {
            t->access = (enum kb_access)i;
            return;
        }
    }
    kb_config__error(c, path,
                     "%s is not a valid access level: use \"read-only\", \"read-write\", "
                     "\"admin\" or {\"actions\": [...]}",
                     kb_config__quote(q, s, (size_t)json_object_get_string_len(a)));
}

static void s_tags(struct kb_config__ctx *c, const char *base, struct json_object *v,
                   const struct kb_config *cfg, struct kb_tenant *t)
{
    char path[KB_CONFIG__PATH_MAX];
    const struct kb_tags *global = &cfg->aws.tags;
    struct json_object *own = kb_config__object(c, base, v, "tags");

    t->tags.items = kb_config__calloc(c, global->count, sizeof *t->tags.items);
    for (size_t i = 0; t->tags.items != NULL && i < global->count && !c->oom; i++) {
        t->tags.items[i].key = kb_config__strdup(c, global->items[i].key);
        t->tags.items[i].value = kb_config__strdup(c, global->items[i].value);
        t->tags.count++;
    }
    if (own == NULL || c->oom) {
        return;
    }
    kb_config__path_key(path, sizeof path, base, "tags");
    kb_config__tags(c, path, own, &t->tags);
    if (t->tags.count > KB_CONFIG_MAX_USER_TAGS) {
        kb_config__error(c, path,
                         "%zu tags together with aws.tags: at most %d are allowed (AWS allows 50 "
                         "per resource and keybroker adds keybroker:tenant and keybroker:managed)",
                         t->tags.count, KB_CONFIG_MAX_USER_TAGS);
    }
}

static void s_rotation(struct kb_config__ctx *c, const char *base, struct json_object *v,
                       const struct kb_config *cfg, struct kb_tenant *t)
{
    char path[KB_CONFIG__PATH_MAX];
    char every[32];
    char overlap[32];

    if (kb_config__duration(c, base, v, "rotate_every", KB_CONFIG__NULLABLE, 3600, 365 * 86400,
                            30 * 86400, &t->rotate_every) &&
        t->rotate_every != 0 && t->rotate_every <= cfg->aws.overlap) {
        kb_config__path_key(path, sizeof path, base, "rotate_every");
        kb_config__fmt_duration(every, sizeof every, t->rotate_every);
        kb_config__fmt_duration(overlap, sizeof overlap, cfg->aws.overlap);
        kb_config__error(c, path,
                         "%s must be longer than aws.overlap (%s): the previous key stays active "
                         "that long after each rotation",
                         every, overlap);
    }
    kb_config__bool(c, base, v, "rotate", true, &t->rotate);
}

/* Builds the tenant's policy once, so a custom access list too long for IAM fails now. */
static void s_policy_size(struct kb_config__ctx *c, const char *base, const struct kb_config *cfg,
                          const struct kb_tenant *t)
{
    char path[KB_CONFIG__PATH_MAX];
    char msg[256];
    char *json = NULL;
    int rc = kb_policy_tenant(t, kb_policy_partition(cfg->aws.region), &json, msg, sizeof msg);

    free(json);
    if (rc == KB_ENOMEM) {
        c->oom = true;
    } else if (rc != 0) {
        kb_config__path_key(path, sizeof path, base, "access");
        kb_config__error(c, path, "%s", msg);
    }
}

static void s_tenant(struct kb_config__ctx *c, const char *base, struct json_object *v,
                     const struct kb_config *cfg, struct kb_tenant *t)
{
    static const char *const keys[] = {"name",         "bucket", "prefix", "access", "clients",
                                       "rotate_every", "rotate", "tags",   NULL};
    char path[KB_CONFIG__PATH_MAX];
    size_t before = c->errors->count + c->errors->dropped;

    if (!json_object_is_type(v, json_type_object)) {
        kb_config__error(c, base, "must be an object, not %s", kb_config__type_name(v));
        return;
    }
    kb_config__check_keys(c, base, v, keys);
    s_name(c, base, v, cfg, t);
    s_bucket_and_prefix(c, base, v, t);
    s_access(c, base, v, t);
    if (t->access == KB_ACCESS_ADMIN && t->prefix != NULL && t->prefix[0] != '\0') {
        kb_config__path_key(path, sizeof path, base, "prefix");
        kb_config__error(c, path,
                         "must be empty with \"access\": \"admin\" (admin is granted on the whole "
                         "bucket)");
    }
    kb_config__path_key(path, sizeof path, base, "clients");
    kb_config__acl(c, path, kb_config__object(c, base, v, "clients"), &t->clients);
    s_rotation(c, base, v, cfg, t);
    s_tags(c, base, v, cfg, t);
    if (!c->oom && c->errors->count + c->errors->dropped == before) {
        s_policy_size(c, base, cfg, t);
    }
}

void kb_config__tenants(struct kb_config__ctx *c, struct json_object *v, struct kb_config *cfg)
{
    char base[KB_CONFIG__PATH_MAX];
    char path[KB_CONFIG__PATH_MAX];
    struct s_seen seen = {json_object_new_object(), json_object_new_object()};
    size_t n = v != NULL ? json_object_array_length(v) : 0;

    if (seen.names == NULL || seen.buckets == NULL) {
        c->oom = true;
    }
    cfg->tenants = kb_config__calloc(c, n, sizeof *cfg->tenants);
    for (size_t i = 0; i < n && cfg->tenants != NULL && !c->oom; i++) {
        struct kb_tenant *t = &cfg->tenants[i];
        kb_config__path_index(base, sizeof base, "tenants", i);
        cfg->ntenants++;
        s_tenant(c, base, json_object_array_get_idx(v, i), cfg, t);
        if (t->user_name != NULL) { /* the name is valid */
            kb_config__path_key(path, sizeof path, base, "name");
            s_unique(c, seen.names, path, t->name, true, i);
        }
        if (t->bucket != NULL) {
            kb_config__path_key(path, sizeof path, base, "bucket");
            s_unique(c, seen.buckets, path, t->bucket, false, i);
        }
    }
    json_object_put(seen.names);
    json_object_put(seen.buckets);
}
