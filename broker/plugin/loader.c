/*
 * loader.c - loads a plugin shared object safely and checks that it speaks our ABI; also the
 * helper's "shared" kind, which runs such a plugin's hooks.
 *
 * Why the checks: whoever can replace a plugin file, or a directory on its path, can run code as
 * the helper's user the next time the broker starts it. So the file and every directory above it
 * must be owned by root or by the plugin's configured owner and writable by nobody else; the file
 * is opened once, without following a link, the open file is checked again, and that same open
 * file is what dlopen maps (through /proc/self/fd), so nothing can be swapped in between.
 *
 * Why the descriptor is copied: a plugin built against another minor has a descriptor of another
 * size. We copy the bytes it says it has (never more than we know) into a zeroed struct, so an
 * older plugin's missing fields read as NULL/0 and a newer one's extra fields are ignored. A
 * plugin of another major may have moved any field after abi_minor, so nothing past it is read.
 *
 * This file never holds a secret or an AWS credential; the plugin gets only the host table.
 */
#include "plugin/loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "plugin/helper_internal.h"
#include "plugin/wire.h"

#define S_NAME_MAX 64
#define S_ERR_MAX  512 /* the err buffer a plugin's on_event gets */

struct s_kv {
    char *key;
    char *value;
};

/* What a plugin's struct kb_plugin_ctx really is: what the host functions answer from. */
struct kb_plugin_ctx {
    char *label;
    struct s_kv *kv; /* the "config" members as strings */
    size_t nkv;
    char *config_json; /* the whole "config" object, "{}" when none */
};

struct kb_plugin_loaded {
    struct kb_plugin_ctx ctx;
    struct kb_plugin_host host;       /* valid until fini returns, as plugin.h promises */
    struct kb_plugin_descriptor desc; /* the validated copy */
    void *dl;
    void *state; /* init()'s */
    bool inited;
    char abi[16]; /* "1.9": the plugin's, for "loaded" */
};

/* --- the path checks --------------------------------------------------------------------- */

/* Owner and write bits of one file or directory. sticky_ok: a directory above the file's own,
 * where a sticky bit makes others' write access harmless - in a sticky directory only an
 * entry's owner (or the directory's) can rename or remove it, so nobody else can replace the
 * directory we go through next. The file's own directory gets no such allowance: anyone could
 * still create a file there under a name the configuration is about to use. */
static int s_check_stat(const char *path, const struct stat *st, uid_t owner_uid, bool sticky_ok,
                        char *why, size_t whylen)
{
    unsigned mode = (unsigned)(st->st_mode & 07777);

    if (st->st_uid != 0 && st->st_uid != owner_uid)
        return kb_err_msg(why, whylen, KB_EDENIED,
                          "%s is owned by uid %u (allowed: root or uid %u)", path,
                          (unsigned)st->st_uid, (unsigned)owner_uid);
    if (sticky_ok && (st->st_mode & S_ISVTX) != 0)
        return 0;
    if ((st->st_mode & S_IWOTH) != 0)
        return kb_err_msg(why, whylen, KB_EDENIED, "%s is world-writable (mode %04o)", path, mode);
    if ((st->st_mode & S_IWGRP) != 0)
        return kb_err_msg(why, whylen, KB_EDENIED, "%s is group-writable (mode %04o)", path, mode);
    return 0;
}

static int s_check_file(const char *path, const struct stat *st, uid_t owner_uid, char *why,
                        size_t whylen)
{
    if (S_ISLNK(st->st_mode))
        return kb_err_msg(why, whylen, KB_EDENIED, "%s is a symbolic link", path);
    if (!S_ISREG(st->st_mode))
        return kb_err_msg(why, whylen, KB_EDENIED, "%s is not a regular file", path);
    return s_check_stat(path, st, owner_uid, false, why, whylen);
}

/* Every directory from dir (resolved, absolute, cut shorter as it goes) up to "/". */
static int s_check_dirs(char *dir, uid_t owner_uid, char *why, size_t whylen)
{
    for (bool own = true;; own = false) {
        struct stat st;
        char *slash;
        int rc;

        if (lstat(dir, &st) != 0)
            return kb_err_msg(why, whylen, KB_EDENIED, "%s: %s", dir, strerror(errno));
        if (!S_ISDIR(st.st_mode))
            return kb_err_msg(why, whylen, KB_EDENIED, "%s is not a directory", dir);
        rc = s_check_stat(dir, &st, owner_uid, !own, why, whylen);
        if (rc != 0 || strcmp(dir, "/") == 0)
            return rc;
        /* "/usr" goes up to "/": keep the root's slash. */
        slash = strrchr(dir, '/');
        if (slash == dir)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
}

/* Checks path and writes the path to open (its directory resolved) into real. */
static int s_check(const char *path, uid_t owner_uid, char *real, size_t reallen, char *why,
                   size_t whylen)
{
    char dir[PATH_MAX], resolved[PATH_MAX];
    const char *base;
    struct stat st;
    int rc;

    if (path == NULL || path[0] != '/')
        return kb_err_msg(why, whylen, KB_EINVAL, "%s is not an absolute path",
                          path != NULL ? path : "(none)");
    base = strrchr(path, '/') + 1;
    if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return kb_err_msg(why, whylen, KB_EINVAL, "%s does not name a file", path);
    if ((size_t)(base - path) >= sizeof(dir))
        return kb_err_msg(why, whylen, KB_EINVAL, "%s is too long", path);
    memcpy(dir, path, (size_t)(base - path));
    dir[base - path] = '\0';
    if (realpath(dir, resolved) == NULL)
        return kb_err_msg(why, whylen, KB_EDENIED, "%s: %s", dir, strerror(errno));
    if ((size_t)snprintf(real, reallen, "%s%s%s", resolved, strcmp(resolved, "/") == 0 ? "" : "/",
                         base) >= reallen)
        return kb_err_msg(why, whylen, KB_EINVAL, "%s is too long", path);
    if (lstat(real, &st) != 0)
        return kb_err_msg(why, whylen, KB_EDENIED, "%s: %s", path, strerror(errno));
    rc = s_check_file(path, &st, owner_uid, why, whylen);
    if (rc == 0)
        rc = s_check_dirs(resolved, owner_uid, why, whylen);
    return rc;
}

int kb_plugin_check_path(const char *path, uid_t owner_uid, char *why, size_t whylen)
{
    char real[PATH_MAX];

    return s_check(path, owner_uid, real, sizeof(real), why, whylen);
}

/* --- the host table ---------------------------------------------------------------------- */

static void s_host_log(struct kb_plugin_ctx *ctx, int level, const char *msg)
{
    static const enum kb_log_level levels[] = {KB_LOG_ERROR, KB_LOG_WARN, KB_LOG_INFO,
                                               KB_LOG_DEBUG};
    enum kb_log_level lv = KB_LOG_INFO;

    if (ctx == NULL || msg == NULL)
        return;
    if (level >= 0 && (size_t)level < sizeof(levels) / sizeof(levels[0]))
        lv = levels[level];
    kb_log(lv, "plugin-log", "plugin", ctx->label, "message", msg, NULL);
}

static const char *s_host_config(struct kb_plugin_ctx *ctx, const char *key)
{
    for (size_t i = 0; ctx != NULL && key != NULL && i < ctx->nkv; i++) {
        if (strcmp(ctx->kv[i].key, key) == 0)
            return ctx->kv[i].value;
    }
    return NULL;
}

static const char *s_host_config_json(struct kb_plugin_ctx *ctx)
{
    return ctx != NULL ? ctx->config_json : NULL;
}

static kb_plugin_fn s_host_lookup(struct kb_plugin_ctx *ctx, const char *name, uint16_t min_minor)
{
    /* Each name is available from the minor that introduced it; asking for it at a later minor
     * means wanting a meaning this host does not know yet. */
    if (name != NULL && strcmp(name, "config_json") == 0 && min_minor <= 1)
        return (kb_plugin_fn)s_host_config_json;
    return NULL;
}

/* The "config" members as strings: string values as they are, any other value as its JSON
 * text, so a plugin reads every value the same way. */
static int s_copy_config(struct kb_plugin_ctx *ctx, struct json_object *config)
{
    const int flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
    const char *text;
    size_t n;

    if (config == NULL) {
        ctx->config_json = strdup("{}");
        return ctx->config_json != NULL ? 0 : KB_ENOMEM;
    }
    text = json_object_to_json_string_ext(config, flags);
    ctx->config_json = text != NULL ? strdup(text) : NULL;
    n = (size_t)json_object_object_length(config);
    ctx->kv = calloc(n > 0 ? n : 1, sizeof(*ctx->kv));
    if (ctx->config_json == NULL || ctx->kv == NULL)
        return KB_ENOMEM;
    json_object_object_foreach(config, key, val)
    {
        struct s_kv *kv = &ctx->kv[ctx->nkv];

        text = json_object_is_type(val, json_type_string)
                   ? json_object_get_string(val)
                   : json_object_to_json_string_ext(val, flags);
        kv->key = strdup(key);
        kv->value = text != NULL ? strdup(text) : NULL;
        ctx->nkv++;
        if (kv->key == NULL || kv->value == NULL)
            return KB_ENOMEM;
    }
    return 0;
}

/* --- the descriptor ---------------------------------------------------------------------- */

static bool s_name_ok(const char *name)
{
    size_t len;

    if (name == NULL)
        return false;
    len = strnlen(name, S_NAME_MAX + 1);
    if (len == 0 || len > S_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Copies and checks what the entry function returned. */
static int s_take_descriptor(struct kb_plugin_loaded *p, const struct kb_plugin_descriptor *d,
                             char *why, size_t whylen)
{
    const uint32_t known = (1u << KB_PLUGIN_HOOKS) - 1;
    size_t size;

    if (d == NULL)
        return kb_err_msg(why, whylen, KB_EDENIED, "%s returned NULL", KB_PLUGIN_ENTRY_SYMBOL);
    /* size and the two ABI numbers are where every major keeps them. */
    size = d->size;
    if (size < offsetof(struct kb_plugin_descriptor, name))
        return kb_err_msg(why, whylen, KB_EDENIED, "descriptor size %zu is too small", size);
    if (d->abi_major != KB_PLUGIN_ABI_MAJOR)
        return kb_err_msg(why, whylen, KB_EDENIED,
                          "built for plugin ABI %u.x, this keybroker speaks %u.x",
                          (unsigned)d->abi_major, (unsigned)KB_PLUGIN_ABI_MAJOR);
    if (size < KB_PLUGIN_DESCRIPTOR_SIZE_1_0)
        return kb_err_msg(why, whylen, KB_EDENIED,
                          "descriptor size %zu is smaller than ABI 1.0's %zu", size,
                          (size_t)KB_PLUGIN_DESCRIPTOR_SIZE_1_0);
    memset(&p->desc, 0, sizeof(p->desc));
    memcpy(&p->desc, d, size < sizeof(p->desc) ? size : sizeof(p->desc));
    p->desc.size = (uint32_t)(size < sizeof(p->desc) ? size : sizeof(p->desc));
    if (!s_name_ok(p->desc.name))
        return kb_err_msg(why, whylen, KB_EDENIED,
                          "descriptor name is not 1 to %d characters of [A-Za-z0-9._-]",
                          S_NAME_MAX);
    if (p->desc.on_event == NULL)
        return kb_err_msg(why, whylen, KB_EDENIED, "descriptor has no on_event");
    if ((p->desc.hooks & ~known) != 0)
        return kb_err_msg(why, whylen, KB_EDENIED, "descriptor asks for unknown hooks (0x%x)",
                          (unsigned)(p->desc.hooks & ~known));
    snprintf(p->abi, sizeof(p->abi), "%u.%u", (unsigned)p->desc.abi_major,
             (unsigned)p->desc.abi_minor);
    return 0;
}

/* --- loading ----------------------------------------------------------------------------- */

/* Opens the checked path and maps exactly the file that was opened. */
static int s_open(struct kb_plugin_loaded *p, const char *path, const char *real, uid_t owner_uid,
                  char *why, size_t whylen)
{
    char proc[64];
    struct stat st;
    int fd, rc;

    fd = open(real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return kb_err_msg(why, whylen, KB_EDENIED, "%s: %s", path, strerror(errno));
    rc = fstat(fd, &st) != 0 ? kb_err_msg(why, whylen, KB_EDENIED, "%s: %s", path, strerror(errno))
                             : s_check_file(path, &st, owner_uid, why, whylen);
    if (rc == 0) {
        /* The helper loads one plugin, so no earlier object of this /proc name is mapped (glibc
         * would hand that one back by name); kb_plugin_unload unmaps it again. */
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        p->dl = dlopen(proc, RTLD_NOW | RTLD_LOCAL);
        if (p->dl == NULL) {
            const char *e = dlerror();

            rc = kb_err_msg(why, whylen, KB_EDENIED, "cannot load %s: %s", path,
                            e != NULL ? e : "dlopen failed");
        }
    }
    close(fd);
    return rc;
}

int kb_plugin_load(const char *label, const char *path, uid_t owner_uid, struct json_object *config,
                   struct kb_plugin_loaded **out, char *why, size_t whylen)
{
    char real[PATH_MAX];
    struct kb_plugin_loaded *p;
    kb_plugin_entry_fn entry;
    void *sym;
    int rc;

    *out = NULL;
    rc = s_check(path, owner_uid, real, sizeof(real), why, whylen);
    if (rc != 0)
        return rc;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return kb_err_msg(why, whylen, KB_ENOMEM, "out of memory");
    p->ctx.label = strdup(label != NULL ? label : "plugin");
    rc = p->ctx.label != NULL ? s_copy_config(&p->ctx, config) : KB_ENOMEM;
    if (rc != 0) {
        kb_err_msg(why, whylen, rc, "out of memory");
        goto out;
    }
    p->host = (struct kb_plugin_host){
        .size = sizeof(struct kb_plugin_host),
        .abi_major = KB_PLUGIN_ABI_MAJOR,
        .abi_minor = KB_PLUGIN_ABI_MINOR,
        .log = s_host_log,
        .config = s_host_config,
        .lookup = s_host_lookup,
    };
    rc = s_open(p, path, real, owner_uid, why, whylen);
    if (rc != 0)
        goto out;
    dlerror();
    sym = dlsym(p->dl, KB_PLUGIN_ENTRY_SYMBOL);
    if (sym == NULL) {
        rc = kb_err_msg(why, whylen, KB_EDENIED, "%s does not export %s", path,
                        KB_PLUGIN_ENTRY_SYMBOL);
        goto out;
    }
    entry = (kb_plugin_entry_fn)sym;
    rc = s_take_descriptor(p, entry(&p->host), why, whylen);
out:
    if (rc != 0) {
        kb_plugin_unload(p);
        return rc;
    }
    *out = p;
    return 0;
}

const struct kb_plugin_descriptor *kb_plugin_loaded_descriptor(const struct kb_plugin_loaded *p)
{
    return &p->desc;
}

int kb_plugin_loaded_init(struct kb_plugin_loaded *p, char *why, size_t whylen)
{
    int rc;

    if (p->inited)
        return 0;
    rc = p->desc.init != NULL ? p->desc.init(&p->ctx, &p->host, &p->state) : 0;
    if (rc != 0)
        return kb_err_msg(why, whylen, KB_EDENIED, "init returned %d", rc);
    p->inited = true;
    return 0;
}

int kb_plugin_loaded_event(struct kb_plugin_loaded *p, const struct kb_plugin_event *ev, char *err,
                           size_t errlen)
{
    int rc;

    if (errlen > 0)
        err[0] = '\0';
    rc = p->desc.on_event(p->state, ev, err, errlen);
    if (errlen > 0)
        err[errlen - 1] = '\0';
    return rc;
}

void kb_plugin_unload(struct kb_plugin_loaded *p)
{
    if (p == NULL)
        return;
    if (p->inited && p->desc.fini != NULL)
        p->desc.fini(p->state);
    if (p->dl != NULL)
        dlclose(p->dl);
    for (size_t i = 0; i < p->ctx.nkv; i++) {
        free(p->ctx.kv[i].key);
        free(p->ctx.kv[i].value);
    }
    free(p->ctx.kv);
    free(p->ctx.config_json);
    free(p->ctx.label);
    free(p);
}

/* --- the helper's "shared" kind ---------------------------------------------------------- */

/* The loaded plugin and the helper it answers to. */
struct s_shared {
    struct kb_plugin_loaded *p;
    struct kb_helper *h;
};

static int s_shared_load(struct kb_helper *h, struct json_object *msg, void **impl,
                         struct kb_helper_info *info, char *why, size_t whylen)
{
    struct json_object *config = NULL;
    const char *path = NULL;
    struct s_shared *s;
    int64_t owner = 0;
    int rc;

    if (kb_helper__str(msg, "path", &path) != 1)
        return kb_err_msg(why, whylen, KB_EINVAL, "no \"path\" of the plugin file");
    if (kb_helper__int(msg, "owner_uid", &owner) < 0 || owner < 0 || owner > (int64_t)UINT32_MAX)
        return kb_err_msg(why, whylen, KB_EINVAL, "\"owner_uid\" is not a uid");
    if (json_object_object_get_ex(msg, "config", &config) && config != NULL &&
        !json_object_is_type(config, json_type_object))
        return kb_err_msg(why, whylen, KB_EINVAL, "\"config\" is not an object");
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return kb_err_msg(why, whylen, KB_ENOMEM, "out of memory");
    s->h = h;
    rc = kb_plugin_load(kb_helper__name(h), path, (uid_t)owner, config, &s->p, why, whylen);
    if (rc == 0)
        rc = kb_plugin_loaded_init(s->p, why, whylen);
    if (rc != 0) {
        kb_plugin_unload(s->p);
        free(s);
        return rc;
    }
    *impl = s;
    *info = (struct kb_helper_info){
        .plugin = s->p->desc.name,
        .version = s->p->desc.version,
        .description = s->p->desc.description,
        .abi = s->p->abi,
        .hooks = s->p->desc.hooks,
    };
    return 0;
}

static void s_shared_event(void *impl, const struct kb_helper_event *hev)
{
    struct s_shared *s = impl;
    char err[S_ERR_MAX], text[64];
    int rc;

    /* The broker sends only what the plugin asked for; answering "not subscribed" keeps a
     * mismatch visible without running code that never said it handles this hook. */
    if ((s->p->desc.hooks & KB_PLUGIN_HOOK_MASK(hev->ev->hook)) == 0) {
        kb_helper__done(s->h, true, "not subscribed");
        return;
    }
    rc = kb_plugin_loaded_event(s->p, hev->ev, err, sizeof(err));
    if (rc == 0) {
        kb_helper__done(s->h, true, NULL);
        return;
    }
    if (err[0] == '\0') {
        snprintf(text, sizeof(text), "returned %d", rc);
        kb_helper__done(s->h, false, text);
        return;
    }
    kb_helper__done(s->h, false, err);
}

static void s_shared_unload(void *impl)
{
    struct s_shared *s = impl;

    kb_plugin_unload(s->p);
    free(s);
}

const struct kb_helper_kind kb_helper__shared = {
    .name = "shared",
    .load = s_shared_load,
    .event = s_shared_event,
    .unload = s_shared_unload,
};
