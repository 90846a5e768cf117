/*
 * builtin_syslog.c - the "syslog" built-in: every event becomes one syslog message (the event's
 * JSON with its hook), at LOG_WARNING for rotation_failed and access_denied and LOG_NOTICE
 * otherwise, under the ident "keybroker" and the configured facility.
 *
 * It never fails an event: syslog(3) has no way to say a message was lost, and a rotation must
 * not wait on a log. Like the rest of the helper it never holds a secret or an AWS credential.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "common/err.h"
#include "plugin/helper_internal.h"
#include "plugin/wire.h"

static const struct {
    const char *name;
    int facility;
} s_facilities[] = {
    {"daemon", LOG_DAEMON}, {"auth", LOG_AUTH},     {"authpriv", LOG_AUTHPRIV},
    {"user", LOG_USER},     {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1},
    {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4},
    {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
};

struct s_syslog {
    struct kb_helper *h;
    char description[64];
};

static int s_syslog_load(struct kb_helper *h, struct json_object *msg, void **impl,
                         struct kb_helper_info *info, char *why, size_t whylen)
{
    const char *name = "daemon";
    struct s_syslog *sl;
    int facility = -1;

    if (kb_helper__str(msg, "facility", &name) < 0)
        return kb_err_msg(why, whylen, KB_EINVAL, "\"facility\" is not a string");
    for (size_t i = 0; i < sizeof(s_facilities) / sizeof(s_facilities[0]); i++) {
        if (strcmp(s_facilities[i].name, name) == 0) {
            facility = s_facilities[i].facility;
            name = s_facilities[i].name;
        }
    }
    if (facility < 0)
        return kb_err_msg(why, whylen, KB_EINVAL,
                          "unknown syslog facility '%.64s' (known: daemon, auth, authpriv, user, "
                          "local0 to local7)",
                          name);
    sl = calloc(1, sizeof(*sl));
    if (sl == NULL)
        return kb_err_msg(why, whylen, KB_ENOMEM, "out of memory");
    sl->h = h;
    snprintf(sl->description, sizeof(sl->description), "logs every event to syslog (%s)", name);
    /* LOG_NDELAY: connect now, while the socket can still be reached, not at the first event. */
    openlog("keybroker", LOG_PID | LOG_NDELAY, facility);
    *impl = sl;
    *info = (struct kb_helper_info){
        .plugin = "syslog",
        .version = "builtin",
        .description = sl->description,
        .abi = "1.1",
        .hooks = (1u << KB_PLUGIN_HOOKS) - 1,
    };
    return 0;
}

static void s_syslog_event(void *impl, const struct kb_helper_event *hev)
{
    struct s_syslog *sl = impl;
    uint32_t hook = hev->ev->hook;
    int priority = hook == KB_PLUGIN_HOOK_ROTATION_FAILED || hook == KB_PLUGIN_HOOK_ACCESS_DENIED
                       ? LOG_WARNING
                   : hook == KB_PLUGIN_WIRE_AUDIT ? LOG_INFO
                                                  : LOG_NOTICE;

    syslog(priority, "%s", hev->json);
    kb_helper__done(sl->h, true, NULL);
}

static void s_syslog_unload(void *impl)
{
    closelog();
    free(impl);
}

const struct kb_helper_kind kb_helper__syslog = {
    .name = "syslog",
    .load = s_syslog_load,
    .event = s_syslog_event,
    .unload = s_syslog_unload,
};
