/*
 * config_plugins.c - the "broker.plugins" section (rotation hooks, each run in a helper process
 * of its own: broker/plugin/) and "broker.plugin_user", the helpers' user when keybrokerd starts
 * as root.
 *
 * Shape only, like the rest of the loader: whether a plugin file exists, who owns it and whether
 * it loads is the helper's check when the daemon starts it; whether the user exists is the
 * daemon's. The hook names live here because the config is the lowest layer that needs them;
 * the plugin host reads them through kb_config_plugin_hook_name.
 */
#include <string.h>

#include "config/config.h"
#include "config/config_internal.h"

#define S_PATH_MAX     4096
#define S_ARGV_MAX     64
#define S_ARG_MAX      4096
#define S_DEADLINE_DEF 10
#define S_DEADLINE_MAX 600

static const char *const s_hooks[KB_CONFIG_PLUGIN_AUDIT + 1] = {
    "pre_finish",      "post_rotate", "provisioned",   "revoked", "rotation_failed",
    "key_deactivated", "key_deleted", "access_denied", "audit",
};

static const char *const s_facilities[] = {"daemon", "auth",   "authpriv", "user",   "local0",
                                           "local1", "local2", "local3",   "local4", "local5",
                                           "local6", "local7", NULL};

const char *kb_config_plugin_hook_name(unsigned hook)
{
    return hook <= KB_CONFIG_PLUGIN_AUDIT ? s_hooks[hook] : NULL;
}

int kb_config_plugin_hook_parse(const char *name)
{
    for (unsigned i = 0; name != NULL && i <= KB_CONFIG_PLUGIN_AUDIT; i++) {
        if (strcmp(s_hooks[i], name) == 0)
            return (int)i;
    }
    return -1;
}

static bool s_name_ok(const char *s)
{
    size_t len = strlen(s);

    if (len < 1 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '-'))
            return false;
    }
    return true;
}

static void s_type(struct kb_config__ctx *c, const char *base, struct json_object *v,
                   enum kb_plugin_type *out)
{
    char path[KB_CONFIG__PATH_MAX];
    char *type = NULL;

    *out = KB_PLUGIN_SHARED;
    if (!kb_config__string(c, base, v, "type", 0, "shared", &type) || type == NULL)
        return;
    if (strcmp(type, "exec") == 0) {
        *out = KB_PLUGIN_EXEC;
    } else if (strcmp(type, "syslog") == 0) {
        *out = KB_PLUGIN_SYSLOG;
    } else if (strcmp(type, "shared") != 0) {
        kb_config__path_key(path, sizeof path, base, "type");
        kb_config__error(c, path,
                         "must be \"shared\" (a .so built against keybroker/plugin.h), \"exec\" "
                         "or \"syslog\"");
    }
    free(type);
}

static void s_hooks_of(struct kb_config__ctx *c, const char *base, struct json_object *v,
                       enum kb_plugin_type type, uint32_t *out)
{
    char path[KB_CONFIG__PATH_MAX], item[KB_CONFIG__PATH_MAX], q[KB_CONFIG__QUOTE_SIZE];
    bool present;
    struct json_object *hooks = kb_config__member(v, "hooks", &present);
    size_t n;

    *out = (1u << KB_CONFIG_PLUGIN_HOOKS) - 1u;
    if (type == KB_PLUGIN_SYSLOG)
        *out |= 1u << KB_CONFIG_PLUGIN_AUDIT;
    if (!present)
        return;
    hooks = kb_config__array(c, base, v, "hooks");
    if (hooks == NULL)
        return;
    kb_config__path_key(path, sizeof path, base, "hooks");
    n = json_object_array_length(hooks);
    if (n == 0) {
        kb_config__error(c, path, "must name at least one hook (or \"*\")");
        return;
    }
    *out = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name;
        int hook;

        kb_config__path_index(item, sizeof item, path, i);
        name = kb_config__as_string(c, item, json_object_array_get_idx(hooks, i));
        if (name == NULL)
            continue;
        if (strcmp(name, "*") == 0) {
            *out = (1u << KB_CONFIG_PLUGIN_HOOKS) - 1u;
            continue;
        }
        hook = kb_config_plugin_hook_parse(name);
        if (hook == KB_CONFIG_PLUGIN_AUDIT && type != KB_PLUGIN_SYSLOG)
            kb_config__error(c, item, "\"audit\" (every event) is for type \"syslog\" only");
        else if (hook < 0)
            kb_config__error(c, item,
                             "%s is not a hook: use pre_finish, post_rotate, provisioned, "
                             "revoked, rotation_failed, key_deactivated, key_deleted, "
                             "access_denied, \"*\" or (syslog) audit",
                             kb_config__quote(q, name, strlen(name)));
        else
            *out |= 1u << hook;
    }
}

static void s_argv(struct kb_config__ctx *c, const char *base, struct json_object *v,
                   struct kb_plugin_config *pl)
{
    char path[KB_CONFIG__PATH_MAX], item[KB_CONFIG__PATH_MAX];
    struct json_object *argv = kb_config__array(c, base, v, "argv");
    size_t n = argv != NULL ? json_object_array_length(argv) : 0;

    kb_config__path_key(path, sizeof path, base, "argv");
    if (argv == NULL) {
        if (kb_config__member(v, "argv", &(bool){false}) == NULL)
            kb_config__error(c, path, "required key is missing (type \"exec\")");
        return;
    }
    if (n == 0 || n > S_ARGV_MAX) {
        kb_config__error(c, path, "must hold 1 to %d strings", S_ARGV_MAX);
        return;
    }
    pl->argv = kb_config__calloc(c, n, sizeof *pl->argv);
    if (pl->argv == NULL)
        return;
    pl->argc = n;
    for (size_t i = 0; i < n; i++) {
        const char *arg;

        kb_config__path_index(item, sizeof item, path, i);
        arg = kb_config__as_string(c, item, json_object_array_get_idx(argv, i));
        if (arg == NULL)
            continue;
        if (i == 0)
            kb_config__check_abs_path(c, item, arg, S_PATH_MAX);
        else if (strlen(arg) >= S_ARG_MAX)
            kb_config__error(c, item, "must be shorter than %d bytes", S_ARG_MAX);
        pl->argv[i] = kb_config__strdup(c, arg);
    }
}

static void s_facility(struct kb_config__ctx *c, const char *base, struct json_object *v,
                       char **out)
{
    char path[KB_CONFIG__PATH_MAX], q[KB_CONFIG__QUOTE_SIZE];

    if (!kb_config__string(c, base, v, "facility", 0, "daemon", out) || *out == NULL)
        return;
    for (size_t i = 0; s_facilities[i] != NULL; i++) {
        if (strcmp(*out, s_facilities[i]) == 0)
            return;
    }
    kb_config__path_key(path, sizeof path, base, "facility");
    kb_config__error(c, path,
                     "%s is not a syslog facility: use daemon, auth, authpriv, user or "
                     "local0..local7",
                     kb_config__quote(q, *out, strlen(*out)));
}

/* The members that only one type takes are reported on the others. */
static void s_foreign(struct kb_config__ctx *c, const char *base, struct json_object *v,
                      const char *key, const char *type)
{
    char path[KB_CONFIG__PATH_MAX];
    bool present = false;

    (void)kb_config__member(v, key, &present);
    if (!present)
        return;
    kb_config__path_key(path, sizeof path, base, key);
    kb_config__error(c, path, "applies to type \"%s\" only", type);
}

static void s_mode(struct kb_config__ctx *c, const char *base, struct json_object *v,
                   bool *required)
{
    char path[KB_CONFIG__PATH_MAX];
    char *mode = NULL;

    *required = false;
    if (!kb_config__string(c, base, v, "mode", 0, "best_effort", &mode) || mode == NULL)
        return;
    if (strcmp(mode, "required") == 0) {
        *required = true;
    } else if (strcmp(mode, "best_effort") != 0) {
        kb_config__path_key(path, sizeof path, base, "mode");
        kb_config__error(c, path,
                         "must be \"best_effort\" (a failure is logged) or \"required\" (a "
                         "failure at pre_finish aborts the rotation)");
    }
    free(mode);
}

static void s_plugin(struct kb_config__ctx *c, const char *base, struct json_object *v,
                     struct kb_plugin_config *pl)
{
    static const char *const keys[] = {"name",     "type",  "path", "config",   "argv",
                                       "facility", "hooks", "mode", "deadline", NULL};
    char path[KB_CONFIG__PATH_MAX], q[KB_CONFIG__QUOTE_SIZE];
    struct json_object *conf;

    if (!json_object_is_type(v, json_type_object)) {
        kb_config__error(c, base, "must be an object, not %s", kb_config__type_name(v));
        return;
    }
    kb_config__check_keys(c, base, v, keys);
    kb_config__path_key(path, sizeof path, base, "name");
    if (kb_config__string(c, base, v, "name", KB_CONFIG__REQUIRED, NULL, &pl->name) &&
        pl->name != NULL && !s_name_ok(pl->name))
        kb_config__error(c, path,
                         "%s is not a valid plugin name: use 1 to 64 lowercase letters, digits, "
                         "'_' or '-'",
                         kb_config__quote(q, pl->name, strlen(pl->name)));
    s_type(c, base, v, &pl->type);
    s_hooks_of(c, base, v, pl->type, &pl->hooks);
    s_mode(c, base, v, &pl->required);
    kb_config__duration(c, base, v, "deadline", 0, 1, S_DEADLINE_MAX, S_DEADLINE_DEF,
                        &pl->deadline);
    switch (pl->type) {
    case KB_PLUGIN_SHARED:
        kb_config__path_key(path, sizeof path, base, "path");
        if (kb_config__string(c, base, v, "path", KB_CONFIG__REQUIRED, NULL, &pl->path) &&
            pl->path != NULL)
            kb_config__check_abs_path(c, path, pl->path, S_PATH_MAX);
        conf = kb_config__object(c, base, v, "config");
        pl->config_json = kb_config__strdup(
            c, conf == NULL ? "{}"
                            : json_object_to_json_string_ext(
                                  conf, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        s_foreign(c, base, v, "argv", "exec");
        s_foreign(c, base, v, "facility", "syslog");
        break;
    case KB_PLUGIN_EXEC:
        s_argv(c, base, v, pl);
        s_foreign(c, base, v, "path", "shared");
        s_foreign(c, base, v, "config", "shared");
        s_foreign(c, base, v, "facility", "syslog");
        break;
    case KB_PLUGIN_SYSLOG:
        s_facility(c, base, v, &pl->facility);
        s_foreign(c, base, v, "path", "shared");
        s_foreign(c, base, v, "config", "shared");
        s_foreign(c, base, v, "argv", "exec");
        break;
    }
}

void kb_config__plugins(struct kb_config__ctx *c, struct json_object *broker,
                        struct kb_config_broker *b)
{
    char path[KB_CONFIG__PATH_MAX], q[KB_CONFIG__QUOTE_SIZE];
    struct json_object *v = kb_config__array(c, "broker", broker, "plugins");
    size_t n = v != NULL ? json_object_array_length(v) : 0;

    if (kb_config__string(c, "broker", broker, "plugin_user", 0, "nobody", &b->plugin_user) &&
        b->plugin_user != NULL &&
        (b->plugin_user[0] == '\0' || strlen(b->plugin_user) > 32 ||
         strcmp(b->plugin_user, "root") == 0))
        kb_config__error(c, "broker.plugin_user",
                         "must be the name of an unprivileged user (not root), 1..32 characters");
    if (n == 0)
        return;
    b->plugins = kb_config__calloc(c, n, sizeof *b->plugins);
    if (b->plugins == NULL)
        return;
    b->nplugins = n;
    for (size_t i = 0; i < n && !c->oom; i++) {
        kb_config__path_index(path, sizeof path, "broker.plugins", i);
        s_plugin(c, path, json_object_array_get_idx(v, i), &b->plugins[i]);
        for (size_t k = 0; k < i && b->plugins[i].name != NULL; k++) {
            if (b->plugins[k].name != NULL && strcmp(b->plugins[k].name, b->plugins[i].name) == 0)
                kb_config__error(
                    c, path, "the name %s is taken by broker.plugins[%zu]",
                    kb_config__quote(q, b->plugins[i].name, strlen(b->plugins[i].name)), k);
        }
    }
}
