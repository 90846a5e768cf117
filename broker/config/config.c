/*
 * config.c - loading keybrokerd's configuration: read, parse, validate, collect every problem.
 *
 * The steps of a load: bound the size and refuse NUL bytes, parse strictly with json-c (depth
 * limited, UTF-8 checked; syntax errors get a line and column), scan the text for duplicate keys
 * (json-c silently keeps the last), then walk the sections (config_broker.c, config_aws.c,
 * config_tenants.c), whose readers add one line per problem. Only this file reads a file; the
 * rest of the loader works on the bytes it is given. It must never print: the caller decides
 * where the error lines go.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "common/err.h"

static int s_errors_append(struct kb_config_errors *e, const char *line)
{
    char *copy = strdup(line);

    if (copy == NULL) {
        return KB_ENOMEM;
    }
    if (e->count == e->cap) {
        size_t cap = e->cap == 0 ? 16 : e->cap * 2;
        char **lines = realloc(e->lines, cap * sizeof *lines);
        if (lines == NULL) {
            free(copy);
            return KB_ENOMEM;
        }
        e->lines = lines;
        e->cap = cap;
    }
    e->lines[e->count++] = copy;
    return 0;
}

void kb_config__error(struct kb_config__ctx *c, const char *path, const char *fmt, ...)
{
    char msg[2048];
    char line[sizeof msg + KB_CONFIG__PATH_MAX + 4];
    va_list ap;

    if (c->errors->count >= KB_CONFIG_MAX_ERRORS) {
        c->errors->dropped++;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "%s: %s", path, msg);
    if (s_errors_append(c->errors, line) != 0) {
        c->oom = true;
    }
}

void kb_config_errors_destroy(struct kb_config_errors *errors)
{
    if (errors == NULL) {
        return;
    }
    for (size_t i = 0; i < errors->count; i++) {
        free(errors->lines[i]);
    }
    free(errors->lines);
    free(errors);
}

void kb_config__position(const char *text, size_t len, size_t off, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

/* Strict parse of the whole text. Returns the root, or NULL after reporting the syntax error. */
static struct json_object *s_parse(struct kb_config__ctx *c, const char *text, size_t len)
{
    struct json_tokener *tok = json_tokener_new_ex(KB_CONFIG_MAX_DEPTH);
    struct json_object *root = NULL;
    enum json_tokener_error jerr;
    size_t off;
    size_t line;
    size_t col;

    if (tok == NULL) {
        c->oom = true;
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    root = json_tokener_parse_ex(tok, text, (int)len);
    off = json_tokener_get_parse_end(tok);
    jerr = json_tokener_get_error(tok);
    if (jerr == json_tokener_continue) {
        /* A number or literal at the very end needs a terminator to be complete. */
        root = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        off = len;
    }
    if (jerr != json_tokener_success) {
        kb_config__position(text, len, off, &line, &col);
        kb_config__error(c, "(root)", "invalid JSON at line %zu, column %zu: %s", line, col,
                         json_tokener_error_desc(jerr));
        json_object_put(root);
        root = NULL;
    } else if (root == NULL) {
        /* The document is the literal null. */
        kb_config__error(c, "(root)", "must be a JSON object, not null");
    }
    json_tokener_free(tok);
    return root;
}

static void s_walk(struct kb_config__ctx *c, struct json_object *root, struct kb_config *cfg)
{
    static const char *const keys[] = {"broker", "aws", "tenants", NULL};
    struct json_object *broker = NULL;
    struct json_object *aws = NULL;
    struct json_object *tenants = NULL;

    if (!json_object_is_type(root, json_type_object)) {
        kb_config__error(c, "(root)", "must be a JSON object, not %s", kb_config__type_name(root));
        return;
    }
    kb_config__check_keys(c, "", root, keys);
    broker = kb_config__object(c, "", root, "broker");
    aws = kb_config__object(c, "", root, "aws");
    tenants = kb_config__array(c, "", root, "tenants");
    /* aws before tenants: tenant names are checked with aws's prefixes, tags and overlap. */
    kb_config__broker(c, broker, cfg);
    kb_config__aws(c, aws, cfg);
    kb_config__tenants(c, tenants, cfg);
}

static int s_cmp_name(const void *a, const void *b)
{
    const struct kb_tenant *x = *(const struct kb_tenant *const *)a;
    const struct kb_tenant *y = *(const struct kb_tenant *const *)b;

    return strcmp(x->name, y->name);
}

/* The name index of a valid config (its names are unique). */
static int s_index(struct kb_config *cfg)
{
    const struct kb_tenant **by_name = calloc(cfg->ntenants + 1, sizeof(*by_name));

    if (by_name == NULL)
        return KB_ENOMEM;
    for (size_t i = 0; i < cfg->ntenants; i++)
        by_name[i] = &cfg->tenants[i];
    qsort(by_name, cfg->ntenants, sizeof(*by_name), s_cmp_name);
    cfg->by_name = by_name;
    return 0;
}

static int s_finish(struct kb_config__ctx *c, struct kb_config *cfg, struct kb_config **cfg_out,
                    struct kb_config_errors **errors_out)
{
    char line[128];

    if (!c->oom && c->errors->dropped > 0) {
        snprintf(line, sizeof line, "(and %zu more problems not shown)", c->errors->dropped);
        c->oom = s_errors_append(c->errors, line) != 0;
    }
    if (c->oom) {
        kb_config_destroy(cfg);
        kb_config_errors_destroy(c->errors);
        return KB_ENOMEM;
    }
    if (c->errors->count > 0) {
        kb_config_destroy(cfg);
        *errors_out = c->errors;
        return KB_ECONFIG;
    }
    if (s_index(cfg) != 0) {
        kb_config_destroy(cfg);
        kb_config_errors_destroy(c->errors);
        return KB_ENOMEM;
    }
    kb_config_errors_destroy(c->errors);
    *cfg_out = cfg;
    return 0;
}

int kb_config_load_string(const char *text, size_t len, const struct kb_config_resolver *resolver,
                          struct kb_config **cfg_out, struct kb_config_errors **errors_out)
{
    struct kb_config__ctx c = {.resolver = resolver};
    struct kb_config *cfg = NULL;
    struct json_object *root = NULL;
    const char *nul;

    if (cfg_out == NULL || errors_out == NULL || (text == NULL && len > 0)) {
        return KB_EINVAL;
    }
    *cfg_out = NULL;
    *errors_out = NULL;
    c.errors = calloc(1, sizeof *c.errors);
    cfg = calloc(1, sizeof *cfg);
    if (c.errors == NULL || cfg == NULL) {
        free(c.errors);
        free(cfg);
        return KB_ENOMEM;
    }
    nul = len > 0 ? memchr(text, '\0', len) : NULL;
    if (len > KB_CONFIG_MAX_SIZE) {
        kb_config__error(&c, "(root)",
                         "the configuration is %zu bytes long: at most %d are allowed", len,
                         KB_CONFIG_MAX_SIZE);
    } else if (nul != NULL) {
        kb_config__error(&c, "(root)", "invalid JSON: NUL byte at offset %zu",
                         (size_t)(nul - text));
    } else {
        root = s_parse(&c, text == NULL ? "" : text, len);
    }
    if (root != NULL && kb_config__scan_duplicates(&c, text, len)) {
        s_walk(&c, root, cfg);
    }
    json_object_put(root);
    return s_finish(&c, cfg, cfg_out, errors_out);
}

/* Reads at most KB_CONFIG_MAX_SIZE + 1 bytes so that a larger file is noticed. */
static int s_read_fd(int fd, char **buf_out, size_t *len_out)
{
    size_t cap = KB_CONFIG_MAX_SIZE + 1;
    size_t len = 0;
    char *buf = malloc(cap);

    if (buf == NULL) {
        return KB_ENOMEM;
    }
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int rc = -errno;
            free(buf);
            return rc;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    *buf_out = buf;
    *len_out = len;
    return 0;
}

int kb_config_load_fd(int fd, const struct kb_config_resolver *resolver, struct kb_config **cfg_out,
                      struct kb_config_errors **errors_out)
{
    char *buf = NULL;
    size_t len = 0;
    int rc;

    if (fd < 0 || cfg_out == NULL || errors_out == NULL) {
        return KB_EINVAL;
    }
    *cfg_out = NULL;
    *errors_out = NULL;
    rc = s_read_fd(fd, &buf, &len);
    if (rc == 0) {
        rc = kb_config_load_string(buf, len, resolver, cfg_out, errors_out);
    }
    free(buf);
    return rc;
}

int kb_config_load_file(const char *path, const struct kb_config_resolver *resolver,
                        struct kb_config **cfg_out, struct kb_config_errors **errors_out)
{
    int fd, rc;

    if (path == NULL || cfg_out == NULL || errors_out == NULL) {
        return KB_EINVAL;
    }
    *cfg_out = NULL;
    *errors_out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    rc = kb_config_load_fd(fd, resolver, cfg_out, errors_out);
    close(fd);
    return rc;
}

int kb_config_check_file_owner(uint32_t file_uid, uint32_t file_mode, uint32_t euid, char *why,
                               size_t whylen)
{
    if ((file_mode & 022u) != 0) {
        snprintf(why, whylen,
                 "it is writable by %s (mode %04o): whoever can write it chooses the tenants, the "
                 "ACLs and the AWS endpoint; chmod go-w it",
                 (file_mode & 022u) == 022u ? "group and others"
                 : (file_mode & 002u) != 0  ? "others"
                                            : "its group",
                 (unsigned)(file_mode & 07777u));
        return KB_ECONFIG;
    }
    if (file_uid != 0 && file_uid != euid) {
        snprintf(why, whylen,
                 "it is owned by uid %u, not by root or the broker's user (uid %u): chown it",
                 (unsigned)file_uid, (unsigned)euid);
        return KB_ECONFIG;
    }
    return 0;
}

int kb_config_check_socket_mode(uint32_t mode, char *why, size_t whylen)
{
    if ((mode & 07u) == 0) {
        return 0;
    }
    snprintf(why, whylen,
             "\"%04o\" lets every local user connect to the socket (other: %s%s%s): use \"0660\" "
             "with broker.socket.group and the tenants' clients ACLs",
             (unsigned)mode, (mode & 4u) != 0 ? "r" : "-", (mode & 2u) != 0 ? "w" : "-",
             (mode & 1u) != 0 ? "x" : "-");
    return KB_ECONFIG;
}

static void s_tenant_free(struct kb_tenant *t)
{
    free(t->name);
    free(t->bucket);
    free(t->prefix);
    for (size_t i = 0; i < t->nactions; i++) {
        free(t->actions[i]);
    }
    free(t->actions);
    kb_config__acl_free(&t->clients);
    kb_config__tags_free(&t->tags);
    free(t->user_name);
    free(t->secret_name);
}

static void s_broker_free(struct kb_config_broker *b)
{
    free(b->socket.path);
    kb_config__acl_free(&b->admin);
    free(b->audit.path);
    free(b->audit.state);
    free(b->audit.anchor.bucket);
    free(b->audit.anchor.prefix);
    for (size_t i = 0; i < b->nplugins; i++) {
        free(b->plugins[i].name);
        free(b->plugins[i].path);
        free(b->plugins[i].config_json);
        for (size_t a = 0; a < b->plugins[i].argc; a++)
            free(b->plugins[i].argv[a]);
        free(b->plugins[i].argv);
        free(b->plugins[i].facility);
    }
    free(b->plugins);
    free(b->plugin_user);
}

static void s_aws_free(struct kb_config_aws *a)
{
    free(a->region);
    free(a->profile);
    free(a->endpoint_url);
    for (size_t i = 0; i < KB_AWS_SERVICE_COUNT; i++) {
        free(a->service_url[i]);
    }
    free(a->ca_bundle);
    free(a->name_prefix);
    free(a->iam_path);
    free(a->permissions_boundary);
    free(a->secret_prefix);
    free(a->kms_key_id);
    kb_config__tags_free(&a->tags);
}

void kb_config_destroy(struct kb_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    s_broker_free(&cfg->broker);
    s_aws_free(&cfg->aws);
    for (size_t i = 0; i < cfg->ntenants; i++) {
        s_tenant_free(&cfg->tenants[i]);
    }
    free(cfg->tenants);
    free(cfg->by_name);
    free(cfg);
}

static int s_cmp_key(const void *key, const void *elem)
{
    return strcmp(key, (*(const struct kb_tenant *const *)elem)->name);
}

const struct kb_tenant *kb_config_tenant(const struct kb_config *cfg, const char *name)
{
    const struct kb_tenant *const *hit;

    if (cfg == NULL || name == NULL) {
        return NULL;
    }
    if (cfg->by_name != NULL) {
        hit = bsearch(name, cfg->by_name, cfg->ntenants, sizeof(*cfg->by_name), s_cmp_key);
        return hit != NULL ? *hit : NULL;
    }
    for (size_t i = 0; i < cfg->ntenants; i++) {
        if (strcmp(cfg->tenants[i].name, name) == 0) {
            return &cfg->tenants[i];
        }
    }
    return NULL;
}

static int s_cmp_id(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a;
    uint32_t y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static bool s_has_id(const uint32_t *ids, size_t n, uint32_t id)
{
    return n > 0 && bsearch(&id, ids, n, sizeof *ids, s_cmp_id) != NULL;
}

bool kb_config_acl_match(const struct kb_acl *acl, uint32_t uid, uint32_t gid,
                         const uint32_t *groups, size_t ngroups)
{
    if (acl == NULL) {
        return false;
    }
    if (s_has_id(acl->uids, acl->nuids, uid) || s_has_id(acl->gids, acl->ngids, gid)) {
        return true;
    }
    for (size_t i = 0; groups != NULL && i < ngroups; i++) {
        if (s_has_id(acl->gids, acl->ngids, groups[i])) {
            return true;
        }
    }
    return false;
}
