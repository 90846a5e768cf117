/*
 * testplugin.c - the test plugins (kbtp*.so): one source, built with different definitions into
 * each variant tests/plugins/CMakeLists.txt lists, that behaves as its "config" says.
 *
 *   out       a file: "init <the host's abi_minor>" at init, then one line per event
 *             "<hook> <tenant> <version_id> <rotation_id>" ("-" for what is absent)
 *   behavior  ok | fail | segv | loop | exit | slow (sleep slow_ms, then ok)
 *   on        the hook the behavior applies to (the others: ok); absent = every hook
 *   slow_ms   for slow; default 1000
 *   init      "fail": init returns 5 (the plugin refuses to load)
 *   echo      a config key: init also writes "config <key>=<value>" and "json <config_json>"
 *   log_fini  "true": fini writes "fini"
 *
 * Definitions: KBTP_ABI_MAJOR, KBTP_ABI_MINOR (default the header's), KBTP_SIZE_1_0 (a 1.0
 * descriptor: size ends before description), KBTP_BIG (the descriptor inside a bigger struct of
 * a future minor), KBTP_NO_ENTRY (exports no entry symbol), KBTP_HOOKS (the hooks mask; default
 * every hook).
 *
 * Like every plugin it includes only <keybroker/plugin.h> and links nothing of keybroker. It is
 * a test fixture: it never sees a secret, and must never be installed.
 */
#include <keybroker/plugin.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef KBTP_ABI_MAJOR
#define KBTP_ABI_MAJOR KB_PLUGIN_ABI_MAJOR
#endif
#ifndef KBTP_ABI_MINOR
#define KBTP_ABI_MINOR KB_PLUGIN_ABI_MINOR
#endif

#ifndef KBTP_HOOKS
#define KBTP_HOOKS ((1u << (KB_PLUGIN_HOOK_ACCESS_DENIED + 1)) - 1)
#endif

#define KBTP_EXPORT __attribute__((visibility("default")))

struct kbtp {
    char out[1024];
    char behavior[16];
    char on[32];
    long slow_ms;
    int log_fini;
};

static void s_copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src != NULL ? src : "");
}

static void s_append(const struct kbtp *tp, const char *line)
{
    int fd;

    if (tp->out[0] == '\0')
        return;
    fd = open(tp->out, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (write(fd, line, strlen(line)) < 0) {
        /* nothing to do: the test sees the line missing */
    }
    close(fd);
}

static int s_init(struct kb_plugin_ctx *ctx, const struct kb_plugin_host *host, void **state)
{
    struct kbtp *tp = calloc(1, sizeof(*tp));
    const char *slow, *init, *echo;
    char line[2048];

    if (tp == NULL)
        return 1;
    s_copy(tp->out, sizeof(tp->out), host->config(ctx, "out"));
    s_copy(tp->behavior, sizeof(tp->behavior), host->config(ctx, "behavior"));
    s_copy(tp->on, sizeof(tp->on), host->config(ctx, "on"));
    slow = host->config(ctx, "slow_ms");
    tp->slow_ms = slow != NULL ? strtol(slow, NULL, 10) : 1000;
    tp->log_fini = host->config(ctx, "log_fini") != NULL;
    snprintf(line, sizeof(line), "init %u\n", (unsigned)host->abi_minor);
    s_append(tp, line);
    echo = host->config(ctx, "echo");
    if (echo != NULL) {
        const char *value = host->config(ctx, echo);
        const char *(*config_json)(struct kb_plugin_ctx *) = NULL;

        snprintf(line, sizeof(line), "config %s=%s\n", echo, value != NULL ? value : "(null)");
        s_append(tp, line);
        if (KB_PLUGIN_HAS(host, lookup) && host->lookup != NULL)
            config_json =
                (const char *(*)(struct kb_plugin_ctx *))host->lookup(ctx, "config_json", 1);
        snprintf(line, sizeof(line), "json %s\n", config_json != NULL ? config_json(ctx) : "-");
        s_append(tp, line);
    }
    init = host->config(ctx, "init");
    if (init != NULL && strcmp(init, "fail") == 0) {
        free(tp);
        return 5;
    }
    host->log(ctx, KB_PLUGIN_LOG_INFO, "kbtp ready");
    *state = tp;
    return 0;
}

static void s_fini(void *state)
{
    struct kbtp *tp = state;

    if (tp->log_fini)
        s_append(tp, "fini\n");
    free(tp);
}

static const char *s_or_dash(const char *s)
{
    return s != NULL ? s : "-";
}

static int s_on_event(void *state, const struct kb_plugin_event *ev, char *err, size_t errlen)
{
    struct kbtp *tp = state;
    const char *rotation = KB_PLUGIN_HAS(ev, rotation_id) ? ev->rotation_id : NULL;
    char line[1024];

    snprintf(line, sizeof(line), "%s %s %s %s\n", ev->hook_name, s_or_dash(ev->tenant),
             s_or_dash(ev->version_id), s_or_dash(rotation));
    s_append(tp, line);
    if (tp->on[0] != '\0' && strcmp(tp->on, ev->hook_name) != 0)
        return 0;
    if (strcmp(tp->behavior, "fail") == 0) {
        snprintf(err, errlen, "kbtp failed on %s", ev->hook_name);
        return 1;
    }
    if (strcmp(tp->behavior, "segv") == 0) {
        /* Die by the signal even where a sanitizer would catch it and exit instead. */
        signal(SIGSEGV, SIG_DFL);
        raise(SIGSEGV);
    }
    if (strcmp(tp->behavior, "loop") == 0) {
        for (;;)
            sleep(1);
    }
    if (strcmp(tp->behavior, "exit") == 0)
        exit(3);
    if (strcmp(tp->behavior, "slow") == 0) {
        struct timespec ts = {tp->slow_ms / 1000, tp->slow_ms % 1000 * 1000000L};

        nanosleep(&ts, NULL);
    }
    return 0;
}

#define KBTP_DESCRIPTOR_FIELDS                                                                     \
    .abi_major = KBTP_ABI_MAJOR, .abi_minor = KBTP_ABI_MINOR, .name = "kbtp", .version = "1.0.0",  \
    .hooks = KBTP_HOOKS, .init = s_init, .fini = s_fini, .on_event = s_on_event,                   \
    .description = "the keybroker test plugin"

#ifdef KBTP_BIG
/* A plugin of a later minor: its descriptor has fields this keybroker does not know. */
struct kbtp_descriptor_future {
    struct kb_plugin_descriptor d;
    const char *future_text;
    uint64_t future_flags;
};
static const struct kbtp_descriptor_future s_future = {
    .d = {.size = sizeof(struct kbtp_descriptor_future), KBTP_DESCRIPTOR_FIELDS},
    .future_text = "from the future",
    .future_flags = ~0ull,
};
#define KBTP_DESCRIPTOR (&s_future.d)
#else
#ifdef KBTP_SIZE_1_0
/* A 1.0 plugin: the description is set here only to show that the host does not read it. */
#define KBTP_SIZE KB_PLUGIN_DESCRIPTOR_SIZE_1_0
#else
#define KBTP_SIZE sizeof(struct kb_plugin_descriptor)
#endif
static const struct kb_plugin_descriptor s_descriptor = {
    .size = KBTP_SIZE,
    KBTP_DESCRIPTOR_FIELDS,
};
#define KBTP_DESCRIPTOR (&s_descriptor)
#endif

#ifdef KBTP_NO_ENTRY
KBTP_EXPORT const struct kb_plugin_descriptor *kbtp_not_the_entry(void)
{
    return KBTP_DESCRIPTOR;
}
#else
KBTP_EXPORT const struct kb_plugin_descriptor *
keybroker_plugin_entry(const struct kb_plugin_host *host)
{
    (void)host;
    return KBTP_DESCRIPTOR;
}
#endif
