/*
 * hello.c - an example keybroker rotation-hook plugin, built out of tree against the installed
 * <keybroker/plugin.h> alone (see the Makefile beside it, and plugins/README.md in keybroker's
 * source for the whole contract).
 *
 * It logs every event it gets through host->log and, when its configuration names a file
 * ("config": {"out": "/var/lib/hello/events"}), appends one line per event to it:
 *
 *   HOOK TENANT VERSION_ID
 *
 * It subscribes to pre_finish, post_rotate, rotation_failed and key_deleted. At pre_finish it
 * approves every rotation, unless "deny" names the tenant: then it fails the event, which aborts
 * that rotation when the plugin is configured with "mode": "required" (and is only logged with
 * the default, best_effort).
 *
 * Try it without a broker: make && kbctl plugin check ./hello.so --config '{"out":"/tmp/ev"}'
 *
 * What it shows of the ABI rules: it sets descriptor.size to the size of the header it was built
 * with; it reads the 1.1 event fields (previous_version_id, rotation_id) only after
 * KB_PLUGIN_HAS says the host filled them; and it looks the optional "config_json" function up
 * by name, and only when the host table has lookup at all (a 1.0 host has not).
 */
#include <keybroker/plugin.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hello {
    struct kb_plugin_ctx *ctx;
    const struct kb_plugin_host *host;
    const char *out;  /* the "out" file, or NULL; borrowed from the host until fini */
    const char *deny; /* the "deny" tenant, or NULL; the same */
};

typedef const char *(*hello_config_json_fn)(struct kb_plugin_ctx *ctx);

static void hello_log(const struct hello *h, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One line into the broker's log (the host copies it). */
static void hello_log(const struct hello *h, int level, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    h->host->log(h->ctx, level, line);
}

static int hello_init(struct kb_plugin_ctx *ctx, const struct kb_plugin_host *host, void **state)
{
    struct hello *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return 1;
    h->ctx = ctx;
    h->host = host;
    h->out = host->config(ctx, "out");
    h->deny = host->config(ctx, "deny");
    /* Optional host functions are looked up by name: a host without lookup (ABI 1.0), or
     * without this name, leaves the plugin to do without. */
    if (KB_PLUGIN_HAS(host, lookup) && host->lookup != NULL) {
        kb_plugin_fn fn = host->lookup(ctx, "config_json", 1);

        if (fn != NULL) {
            const char *json = ((hello_config_json_fn)fn)(ctx);

            hello_log(h, KB_PLUGIN_LOG_DEBUG, "hello: configuration %s",
                      json != NULL ? json : "{}");
        }
    }
    hello_log(h, KB_PLUGIN_LOG_INFO, "hello: ready%s%s", h->out != NULL ? ", appending to " : "",
              h->out != NULL ? h->out : "");
    *state = h;
    return 0;
}

static void hello_fini(void *state)
{
    free(state);
}

/* Appends "HOOK TENANT VERSION_ID" to the out file. Returns 0, or non-zero with err set. */
static int hello_append(const struct hello *h, const struct kb_plugin_event *ev, char *err,
                        size_t errlen)
{
    FILE *f = fopen(h->out, "a");
    int failed;

    if (f == NULL) {
        snprintf(err, errlen, "hello: cannot open %s: %s", h->out, strerror(errno));
        return 1;
    }
    fprintf(f, "%s %s %s\n", ev->hook_name, ev->tenant != NULL ? ev->tenant : "-",
            ev->version_id != NULL ? ev->version_id : "-");
    failed = ferror(f);
    if (fclose(f) != 0 || failed) {
        snprintf(err, errlen, "hello: cannot write %s", h->out);
        return 1;
    }
    return 0;
}

static int hello_event(void *state, const struct kb_plugin_event *ev, char *err, size_t errlen)
{
    const struct hello *h = state;
    const char *previous = NULL, *rotation = NULL;

    /* Fields after 1.0's are read only when the host filled them. */
    if (KB_PLUGIN_HAS(ev, previous_version_id))
        previous = ev->previous_version_id;
    if (KB_PLUGIN_HAS(ev, rotation_id))
        rotation = ev->rotation_id;
    hello_log(h, KB_PLUGIN_LOG_INFO, "hello: %s of tenant %s, version %s (rotation %s)",
              ev->hook_name, ev->tenant != NULL ? ev->tenant : "-",
              ev->version_id != NULL ? ev->version_id : "-", rotation != NULL ? rotation : "-");
    if (ev->hook == KB_PLUGIN_HOOK_PRE_FINISH && previous != NULL)
        hello_log(h, KB_PLUGIN_LOG_DEBUG, "hello: AWSCURRENT would leave %s", previous);
    if (h->out != NULL && hello_append(h, ev, err, errlen) != 0)
        return 1;
    if (ev->hook == KB_PLUGIN_HOOK_PRE_FINISH && h->deny != NULL && ev->tenant != NULL &&
        strcmp(ev->tenant, h->deny) == 0) {
        snprintf(err, errlen, "hello: rotations of tenant %s are denied by configuration",
                 ev->tenant);
        return 1;
    }
    return 0;
}

static const struct kb_plugin_descriptor hello_descriptor = {
    .size = sizeof(struct kb_plugin_descriptor),
    .abi_major = KB_PLUGIN_ABI_MAJOR,
    .abi_minor = KB_PLUGIN_ABI_MINOR,
    .name = "hello",
    .version = "1.0",
    .hooks = KB_PLUGIN_HOOK_MASK(KB_PLUGIN_HOOK_PRE_FINISH) |
             KB_PLUGIN_HOOK_MASK(KB_PLUGIN_HOOK_POST_ROTATE) |
             KB_PLUGIN_HOOK_MASK(KB_PLUGIN_HOOK_ROTATION_FAILED) |
             KB_PLUGIN_HOOK_MASK(KB_PLUGIN_HOOK_KEY_DELETED),
    .init = hello_init,
    .fini = hello_fini,
    .on_event = hello_event,
    .description = "logs rotation events and appends them to the file its \"out\" names",
};

const struct kb_plugin_descriptor *keybroker_plugin_entry(const struct kb_plugin_host *host)
{
    /* A host of another major may lay the table out differently: refuse rather than guess. */
    if (host->abi_major != KB_PLUGIN_ABI_MAJOR)
        return NULL;
    return &hello_descriptor;
}
