/*
 * config_acl.c - the config's access lists (uids, gids, user and group names) and tag sets.
 *
 * Names are resolved to ids once, at load, through the caller's resolver or getpwnam_r /
 * getgrnam_r: the broker then decides on numbers only (peer credentials carry numbers), and an
 * unknown name is a configuration error rather than a silent "nobody matches". This file must
 * never cache a lookup across loads or treat a failed lookup as "not found".
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "common/err.h"

#define S_ID_MAX      4294967294u /* (uid_t)-1 means "no change" to chown and friends */
#define S_NSS_BUF_MAX (1024 * 1024)

/* getpwnam_r / getgrnam_r with a buffer that grows on ERANGE. */
static int s_nss_lookup(const char *name, bool user, uint32_t *id)
{
    size_t size = 1024;
    char *buf = NULL;
    int rc = 0;

    for (;;) {
        char *grown = realloc(buf, size);
        int err;
        if (grown == NULL) {
            rc = KB_ENOMEM;
            break;
        }
        buf = grown;
        if (user) {
            struct passwd pw;
            struct passwd *res = NULL;
            err = getpwnam_r(name, &pw, buf, size, &res);
            if (err == 0 && res != NULL) {
                *id = (uint32_t)pw.pw_uid;
            }
            rc = err != 0 ? -err : res == NULL ? KB_ENOTFOUND : 0;
        } else {
            struct group gr;
            struct group *res = NULL;
            err = getgrnam_r(name, &gr, buf, size, &res);
            if (err == 0 && res != NULL) {
                *id = (uint32_t)gr.gr_gid;
            }
            rc = err != 0 ? -err : res == NULL ? KB_ENOTFOUND : 0;
        }
        if (rc != -ERANGE || size >= S_NSS_BUF_MAX) {
            break;
        }
        size *= 2;
    }
    free(buf);
    /* Some NSS modules report an unknown name as ENOENT, ESRCH or EBADF instead of a NULL
     * result (getpwnam_r(3)). */
    return rc == -ENOENT || rc == -ESRCH || rc == -EBADF || rc == -EPERM ? KB_ENOTFOUND : rc;
}

static int s_resolve(struct kb_config__ctx *c, const char *name, bool user, uint32_t *id)
{
    const struct kb_config_resolver *r = c->resolver;

    if (r != NULL && user && r->user != NULL) {
        return r->user(r->ctx, name, id);
    }
    if (r != NULL && !user && r->group != NULL) {
        return r->group(r->ctx, name, id);
    }
    return s_nss_lookup(name, user, id);
}

static bool s_name_to_id(struct kb_config__ctx *c, const char *path, const char *name, bool user,
                         uint32_t *id)
{
    char q[KB_CONFIG__QUOTE_SIZE];
    int rc = name[0] == '\0' ? KB_ENOTFOUND : s_resolve(c, name, user, id);

    if (rc == 0) {
        return true;
    }
    kb_config__quote(q, name, strlen(name));
    if (rc == KB_ENOMEM) {
        c->oom = true;
    } else if (rc == KB_ENOTFOUND) {
        kb_config__error(c, path, "unknown %s %s", user ? "user" : "group", q);
    } else {
        kb_config__error(c, path, "cannot look up %s %s: %s", user ? "user" : "group", q,
                         kb_strerror(rc));
    }
    return false;
}

bool kb_config__group_id(struct kb_config__ctx *c, const char *path, struct json_object *v,
                         uint32_t *gid)
{
    const char *s;
    char *end = NULL;
    unsigned long long n;

    if (json_object_is_type(v, json_type_int)) {
        return kb_config__as_uint(c, path, v, 0, S_ID_MAX, gid);
    }
    if (!json_object_is_type(v, json_type_string)) {
        kb_config__error(c, path, "must be a group name or a gid, not %s", kb_config__type_name(v));
        return false;
    }
    s = kb_config__as_string(c, path, v);
    if (s == NULL) {
        return false;
    }
    if (s[0] >= '0' && s[0] <= '9') {
        errno = 0;
        n = strtoull(s, &end, 10);
        if (errno == 0 && *end == '\0' && n <= S_ID_MAX) {
            *gid = (uint32_t)n;
            return true;
        }
    }
    return s_name_to_id(c, path, s, false, gid);
}

static int s_cmp_id(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a;
    uint32_t y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static size_t s_sort_unique(uint32_t *ids, size_t n)
{
    size_t out = 0;

    if (n == 0) {
        return 0;
    }
    qsort(ids, n, sizeof *ids, s_cmp_id);
    for (size_t i = 0; i < n; i++) {
        if (out == 0 || ids[out - 1] != ids[i]) {
            ids[out++] = ids[i];
        }
    }
    return out;
}

static size_t s_array_len(struct json_object *a)
{
    return a != NULL ? json_object_array_length(a) : 0;
}

/* Appends the ids of `numbers` (integers) and `names` (resolved) to ids[*n...]. */
static void s_acl_ids(struct kb_config__ctx *c, const char *path, struct json_object *numbers,
                      const char *numbers_key, struct json_object *names, const char *names_key,
                      bool user, uint32_t *ids, size_t *n)
{
    char base[KB_CONFIG__PATH_MAX];
    char p[KB_CONFIG__PATH_MAX];

    kb_config__path_key(base, sizeof base, path, numbers_key);
    for (size_t i = 0; i < s_array_len(numbers); i++) {
        kb_config__path_index(p, sizeof p, base, i);
        if (kb_config__as_uint(c, p, json_object_array_get_idx(numbers, i), 0, S_ID_MAX,
                               &ids[*n])) {
            (*n)++;
        }
    }
    kb_config__path_key(base, sizeof base, path, names_key);
    for (size_t i = 0; i < s_array_len(names); i++) {
        const char *name;
        kb_config__path_index(p, sizeof p, base, i);
        name = kb_config__as_string(c, p, json_object_array_get_idx(names, i));
        if (name != NULL && s_name_to_id(c, p, name, user, &ids[*n])) {
            (*n)++;
        }
    }
}

void kb_config__acl(struct kb_config__ctx *c, const char *path, struct json_object *v,
                    struct kb_acl *acl)
{
    static const char *const keys[] = {"uids", "gids", "users", "groups", NULL};
    struct json_object *uids;
    struct json_object *gids;
    struct json_object *users;
    struct json_object *groups;

    if (v == NULL) {
        return;
    }
    kb_config__check_keys(c, path, v, keys);
    uids = kb_config__array(c, path, v, "uids");
    gids = kb_config__array(c, path, v, "gids");
    users = kb_config__array(c, path, v, "users");
    groups = kb_config__array(c, path, v, "groups");
    acl->uids = kb_config__calloc(c, s_array_len(uids) + s_array_len(users), sizeof *acl->uids);
    acl->gids = kb_config__calloc(c, s_array_len(gids) + s_array_len(groups), sizeof *acl->gids);
    if (acl->uids == NULL || acl->gids == NULL) {
        return;
    }
    s_acl_ids(c, path, uids, "uids", users, "users", true, acl->uids, &acl->nuids);
    s_acl_ids(c, path, gids, "gids", groups, "groups", false, acl->gids, &acl->ngids);
    acl->nuids = s_sort_unique(acl->uids, acl->nuids);
    acl->ngids = s_sort_unique(acl->gids, acl->ngids);
}

void kb_config__acl_free(struct kb_acl *acl)
{
    free(acl->uids);
    free(acl->gids);
    acl->uids = NULL;
    acl->gids = NULL;
    acl->nuids = 0;
    acl->ngids = 0;
}

/* The index of the tag whose key equals key ignoring case (IAM treats keys that way), or
 * tags->count. */
static size_t s_tag_find(const struct kb_tags *tags, const char *key)
{
    size_t i = 0;

    while (i < tags->count && strcasecmp(tags->items[i].key, key) != 0) {
        i++;
    }
    return i;
}

/* Checks one tag; false after reporting it. */
static bool s_tag_ok(struct kb_config__ctx *c, const char *p, const char *key, const char *value)
{
    char why[256];
    char q[KB_CONFIG__QUOTE_SIZE];

    if (kb_config_check_tag(key, true, why, sizeof why) != 0) {
        kb_config__error(c, p, "%s is not a valid tag key: %s",
                         kb_config__quote(q, key, strlen(key)), why);
        return false;
    }
    if (kb_config_check_tag(value, false, why, sizeof why) != 0) {
        kb_config__error(c, p, "%s is not a valid tag value: %s",
                         kb_config__quote(q, value, strlen(value)), why);
        return false;
    }
    return true;
}

void kb_config__tags(struct kb_config__ctx *c, const char *path, struct json_object *v,
                     struct kb_tags *tags)
{
    char p[KB_CONFIG__PATH_MAX];
    bool replaced[KB_CONFIG_MAX_USER_TAGS] = {false};
    size_t base = tags->count; /* tags before this object (aws.tags under a tenant's) */
    size_t n = (size_t)json_object_object_length(v);
    struct kb_tag *items;

    if (n > KB_CONFIG_MAX_USER_TAGS || base > KB_CONFIG_MAX_USER_TAGS) {
        kb_config__error(c, path,
                         "%zu tags: at most %d are allowed (AWS allows 50 per resource "
                         "and keybroker adds keybroker:tenant and keybroker:managed)",
                         n, KB_CONFIG_MAX_USER_TAGS);
        return;
    }
    items = realloc(tags->items, (base + n == 0 ? 1 : base + n) * sizeof *items);
    if (items == NULL) {
        c->oom = true;
        return;
    }
    tags->items = items;
    json_object_object_foreach(v, key, val)
    {
        const char *value;
        size_t at;
        if (c->oom) {
            return;
        }
        kb_config__path_key(p, sizeof p, path, key);
        value = kb_config__as_string(c, p, val);
        if (value == NULL || !s_tag_ok(c, p, key, value)) {
            continue;
        }
        at = s_tag_find(tags, key);
        if (at < tags->count && (at >= base || replaced[at])) {
            kb_config__error(c, p,
                             "tag key differs only in case from another one (IAM ignores "
                             "case in tag keys)");
            continue;
        }
        if (at < tags->count) {
            /* The tenant's tag replaces the aws.tags one, taking the tenant's spelling. */
            free(tags->items[at].key);
            free(tags->items[at].value);
            replaced[at] = true;
        } else {
            tags->count++;
        }
        tags->items[at].key = kb_config__strdup(c, key);
        tags->items[at].value = kb_config__strdup(c, value);
    }
}

void kb_config__tags_free(struct kb_tags *tags)
{
    for (size_t i = 0; i < tags->count; i++) {
        free(tags->items[i].key);
        free(tags->items[i].value);
    }
    free(tags->items);
    tags->items = NULL;
    tags->count = 0;
}
