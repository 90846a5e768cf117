/*
 * log.c - one JSON object per line, built with json-c and written in one piece.
 */
#include "common/log.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"

#define S_MAX_PAIRS 32

static enum kb_log_level s_level = KB_LOG_INFO;
static kb_log_sink_fn s_sink;
static void *s_sink_ctx;

static const char *const s_names[] = {"debug", "info", "warn", "error"};

void kb_log_set_level(enum kb_log_level level)
{
    if ((unsigned)level <= KB_LOG_ERROR)
        s_level = level;
}

enum kb_log_level kb_log_get_level(void)
{
    return s_level;
}

bool kb_log_enabled(enum kb_log_level level)
{
    return (unsigned)level <= KB_LOG_ERROR && level >= s_level;
}

int kb_log_parse_level(const char *name, enum kb_log_level *out)
{
    for (size_t i = 0; name != NULL && i < sizeof(s_names) / sizeof(s_names[0]); i++) {
        if (strcmp(name, s_names[i]) == 0) {
            *out = (enum kb_log_level)i;
            return 0;
        }
    }
    return KB_EINVAL;
}

const char *kb_log_level_name(enum kb_log_level level)
{
    return (unsigned)level <= KB_LOG_ERROR ? s_names[level] : "unknown";
}

void kb_log_set_sink(kb_log_sink_fn fn, void *ctx)
{
    s_sink = fn;
    s_sink_ctx = ctx;
}

/* "2026-11-28T01:02:03.456Z" */
static void s_timestamp(char *out, size_t len)
{
    struct timespec ts;
    struct tm tm;
    char base[32];

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gmtime_r(&ts.tv_sec, &tm) == NULL) {
        snprintf(out, len, "1970-01-01T00:00:00.000Z");
        return;
    }
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, len, "%.19s.%03dZ", base, (int)(ts.tv_nsec / 1000000L % 1000));
}

/* stderr gets the line and its newline in one write(2), retried on EINTR and short writes. */
static void s_write_stderr(const char *line, size_t len)
{
    char *buf = malloc(len + 1);
    size_t off = 0;

    if (buf == NULL)
        return;
    memcpy(buf, line, len);
    buf[len] = '\n';
    while (off < len + 1) {
        ssize_t n = write(STDERR_FILENO, buf + off, len + 1 - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    free(buf);
}

static bool s_add(struct json_object *o, const char *key, const char *value)
{
    struct json_object *v;

    if (key == NULL || value == NULL)
        return true;
    v = json_object_new_string(value);
    if (v == NULL)
        return false;
    /* A repeated key keeps the last value, as json-c does. */
    return json_object_object_add(o, key, v) == 0;
}

void kb_log_pairs(enum kb_log_level level, const char *event, const char *const *pairs)
{
    struct json_object *o;
    char ts[40];
    const char *text;
    size_t len;
    bool ok;

    if (!kb_log_enabled(level))
        return;
    o = json_object_new_object();
    if (o == NULL)
        return;
    s_timestamp(ts, sizeof(ts));
    ok = s_add(o, "ts", ts) && s_add(o, "level", kb_log_level_name(level)) &&
         s_add(o, "event", event != NULL ? event : "log");
    for (size_t i = 0; ok && pairs != NULL && pairs[i] != NULL; i += 2)
        ok = s_add(o, pairs[i], pairs[i + 1]);
    text = ok ? json_object_to_json_string_length(
                    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len)
              : NULL;
    if (text != NULL) {
        if (s_sink != NULL)
            s_sink(s_sink_ctx, text, len);
        else
            s_write_stderr(text, len);
    }
    json_object_put(o);
}

void kb_log(enum kb_log_level level, const char *event, ...)
{
    const char *pairs[2 * S_MAX_PAIRS + 1];
    size_t n = 0;
    va_list ap;

    if (!kb_log_enabled(level))
        return;
    va_start(ap, event);
    for (;;) {
        const char *key = va_arg(ap, const char *);

        if (key == NULL || n >= 2 * S_MAX_PAIRS)
            break;
        pairs[n++] = key;
        pairs[n++] = va_arg(ap, const char *);
    }
    va_end(ap);
    pairs[n] = NULL;
    kb_log_pairs(level, event, pairs);
}
