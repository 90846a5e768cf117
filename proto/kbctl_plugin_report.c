/*
 * kbctl_plugin_report.c - what `kbctl plugin check` prints: as text, the plugin's descriptor,
 * one line per event and round as each is answered, then the refusal or the helper's shutdown
 * and the verdict; with --json, one object with all of it at the end. Also the verdict itself:
 * a check passes only when the plugin loaded, every event was ok in both rounds and the helper
 * shut down cleanly (fini ran and it exited 0).
 */
#include "kbctl_plugin_internal.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static const char *const s_outcome_names[] = {"ok",        "failed",         "crashed",    "exited",
                                              "timed_out", "protocol_error", "not_started"};
static const char *const s_outcome_text[] = {"ok",        "failed",         "crashed",    "exited",
                                             "timed out", "protocol error", "not started"};

const char *kbctl_plugin__outcome_name(enum kbctl_plugin_outcome o)
{
    return s_outcome_names[o];
}

const char *kbctl_plugin__outcome_text(enum kbctl_plugin_outcome o)
{
    return s_outcome_text[o];
}

static void s_add_str(struct json_object *o, const char *key, const char *value)
{
    if (value != NULL)
        json_object_object_add(o, key, json_object_new_string(value));
}

static bool s_shutdown_ok(const struct kbctl_plugin_check *st)
{
    return st->shutdown.outcome == KBCTL_OUTCOME_EXITED && st->shutdown.code == 0;
}

/* Whether the check passed, and the verdict's sentence. */
bool kbctl_plugin__verdict(const struct kbctl_plugin_check *st, char *buf, size_t len)
{
    size_t n = 0;

    if (st->load.outcome == KBCTL_OUTCOME_FAILED) {
        snprintf(buf, len, "refused: keybrokerd would not load this plugin");
        return false;
    }
    if (st->load.outcome != KBCTL_OUTCOME_OK) {
        snprintf(buf, len, "loading did not complete: %s (%s)",
                 kbctl_plugin__outcome_text(st->load.outcome), st->load.detail);
        return false;
    }
    for (size_t i = 0; i < st->nresults; i++) {
        const struct kbctl_plugin_result *r = &st->results[i];

        if (r->outcome != KBCTL_OUTCOME_OK) {
            snprintf(buf, len, "%s %s in round %d%s", r->hook,
                     kbctl_plugin__outcome_text(r->outcome), r->round,
                     st->helper_died ? "; the helper died and was not restarted" : "");
            return false;
        }
        n++;
    }
    if (!s_shutdown_ok(st)) {
        snprintf(buf, len, "every event was ok, but the helper's shutdown (fini) %s: %s",
                 kbctl_plugin__outcome_text(st->shutdown.outcome), st->shutdown.detail);
        return false;
    }
    snprintf(buf, len, "ok: loaded, %zu event%s handled in %d rounds, shut down cleanly", n,
             n == 1 ? "" : "s", KBCTL_PLUGIN_ROUNDS);
    return true;
}

static const char *s_or(const char *s, const char *fallback)
{
    return s != NULL && s[0] != '\0' ? s : fallback;
}

void kbctl_plugin__print_event(const struct kbctl_plugin_check *st,
                               const struct kbctl_plugin_result *r)
{
    if (st->opt->json)
        return;
    printf("round %d  %-16s %s", r->round, r->hook, kbctl_plugin__outcome_text(r->outcome));
    if (r->outcome != KBCTL_OUTCOME_OK)
        printf(": %s", r->detail);
    else if (r->detail[0] != '\0')
        printf(" (%s)", r->detail);
    printf("  %lld ms\n", (long long)r->ms);
    fflush(stdout);
}

void kbctl_plugin__print_descriptor(const struct kbctl_plugin_check *st)
{
    struct json_object *hooks = NULL;

    printf("file         %s\n", st->path);
    printf("name         %s\n", s_or(kbctl_plugin__str(st->loaded, "plugin"), "-"));
    printf("version      %s\n", s_or(kbctl_plugin__str(st->loaded, "version"), "-"));
    printf("abi          %s\n", s_or(kbctl_plugin__str(st->loaded, "abi"), "-"));
    printf("description  %s\n", s_or(kbctl_plugin__str(st->loaded, "description"), "-"));
    printf("hooks       ");
    if (json_object_object_get_ex(st->loaded, "hooks", &hooks) &&
        json_object_is_type(hooks, json_type_array) && json_object_array_length(hooks) > 0) {
        for (size_t i = 0; i < json_object_array_length(hooks); i++)
            printf(" %s", s_or(json_object_get_string(json_object_array_get_idx(hooks, i)), "?"));
    } else {
        printf(" (none: no event is sent)");
    }
    printf("\n");
    fflush(stdout);
}

static void s_print_text_end(const struct kbctl_plugin_check *st)
{
    char verdict[KBCTL_PLUGIN_DETAIL_MAX + 128];
    bool ok = kbctl_plugin__verdict(st, verdict, sizeof(verdict));

    if (st->load.outcome == KBCTL_OUTCOME_FAILED) {
        printf("file         %s\n", st->path);
        printf("refused      %s\n", st->load.detail);
    } else if (st->load.outcome != KBCTL_OUTCOME_OK) {
        printf("file         %s\n", st->path);
        printf("load         %s: %s\n", kbctl_plugin__outcome_text(st->load.outcome),
               st->load.detail);
    } else if (!st->helper_died) {
        printf("shutdown     %s",
               s_shutdown_ok(st) ? "ok" : kbctl_plugin__outcome_text(st->shutdown.outcome));
        if (!s_shutdown_ok(st))
            printf(": %s", st->shutdown.detail);
        printf("\n");
    }
    printf("verdict      %s%s\n", ok ? "" : "FAIL: ", verdict);
}

static struct json_object *s_result_json(const struct kbctl_plugin_result *r, bool with_hook)
{
    struct json_object *o = json_object_new_object();

    if (o == NULL)
        return NULL;
    if (with_hook) {
        json_object_object_add(o, "round", json_object_new_int(r->round));
        json_object_object_add(o, "hook", json_object_new_string(r->hook));
    }
    json_object_object_add(o, "result",
                           json_object_new_string(kbctl_plugin__outcome_name(r->outcome)));
    if (r->outcome == KBCTL_OUTCOME_CRASHED)
        json_object_object_add(o, "signal", json_object_new_int(r->code));
    if (r->outcome == KBCTL_OUTCOME_EXITED)
        json_object_object_add(o, "status", json_object_new_int(r->code));
    if (r->outcome == KBCTL_OUTCOME_OK && r->detail[0] != '\0')
        json_object_object_add(o, "message", json_object_new_string(r->detail));
    else if (r->outcome != KBCTL_OUTCOME_OK)
        json_object_object_add(o, "error", json_object_new_string(r->detail));
    json_object_object_add(o, "ms", json_object_new_int64(r->ms));
    return o;
}

static void s_print_json(const struct kbctl_plugin_check *st)
{
    struct json_object *o = json_object_new_object(), *events = json_object_new_array(), *v;
    char verdict[KBCTL_PLUGIN_DETAIL_MAX + 128];
    bool ok = kbctl_plugin__verdict(st, verdict, sizeof(verdict));

    if (o == NULL || events == NULL) {
        json_object_put(o);
        json_object_put(events);
        fprintf(stderr, "kbctl: plugin check: out of memory\n");
        return;
    }
    json_object_object_add(o, "file", json_object_new_string(st->path));
    json_object_object_add(o, "loaded",
                           json_object_new_boolean(st->load.outcome == KBCTL_OUTCOME_OK));
    json_object_object_add(o, "load", s_result_json(&st->load, false));
    if (st->load.outcome == KBCTL_OUTCOME_OK && (v = json_object_new_object()) != NULL) {
        static const char *const keys[] = {"plugin", "version", "abi", "description"};
        static const char *const as[] = {"name", "version", "abi", "description"};
        struct json_object *hooks = NULL;

        for (size_t i = 0; i < 4; i++)
            s_add_str(v, as[i], kbctl_plugin__str(st->loaded, keys[i]));
        if (json_object_object_get_ex(st->loaded, "hooks", &hooks))
            json_object_object_add(v, "hooks", json_object_get(hooks));
        json_object_object_add(o, "plugin", v);
    }
    json_object_object_add(o, "rounds", json_object_new_int(KBCTL_PLUGIN_ROUNDS));
    for (size_t i = 0; i < st->nresults; i++)
        json_object_array_add(events, s_result_json(&st->results[i], true));
    json_object_object_add(o, "events", events);
    json_object_object_add(o, "helper_died", json_object_new_boolean(st->helper_died));
    if (st->load.outcome == KBCTL_OUTCOME_OK && !st->helper_died)
        json_object_object_add(o, "shutdown", s_result_json(&st->shutdown, false));
    json_object_object_add(o, "ok", json_object_new_boolean(ok));
    json_object_object_add(o, "verdict", json_object_new_string(verdict));
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

void kbctl_plugin__print_end(const struct kbctl_plugin_check *st)
{
    if (st->opt->json)
        s_print_json(st);
    else
        s_print_text_end(st);
}
