/*
 * log.h - keybrokerd's structured log: one JSON object per line on stderr.
 *
 *   {"ts":"2026-11-28T01:02:03.456Z","level":"info","event":"step","tenant":"billing",
 *    "step":"create-bucket","result":"done","request_id":"...","message":"..."}
 *
 * "ts", "level" and "event" come first, then the caller's key/value pairs in order. json-c does
 * the escaping, so a value from AWS or a config file can never break a line. Each line is handed
 * to the sink in one piece (stderr: one write(2)), so lines from concurrent work never interleave.
 *
 * This module must never be given a secret: callers pass names, ids, codes and AWS error
 * messages only (the typed AWS calls hand out no secret except CreateAccessKey's kb_secret, which
 * is never formatted). It never allocates a secret and never aborts.
 */
#ifndef KB_LOG_H
#define KB_LOG_H

#include <stdbool.h>
#include <stddef.h>

/* Severity, lowest first (broker.log_level of the config names one). */
enum kb_log_level { KB_LOG_DEBUG, KB_LOG_INFO, KB_LOG_WARN, KB_LOG_ERROR };

/* The threshold: events below it are dropped. Default KB_LOG_INFO. */
void kb_log_set_level(enum kb_log_level level);
enum kb_log_level kb_log_get_level(void);
bool kb_log_enabled(enum kb_log_level level);

/* "debug" | "info" | "warn" | "error" -> level. Returns 0 or KB_EINVAL. */
int kb_log_parse_level(const char *name, enum kb_log_level *out);
/* The name of a level. Static string. */
const char *kb_log_level_name(enum kb_log_level level);

/* Where finished lines go: fn(ctx, line, len) gets one line without its newline, borrowed for the
 * call. NULL restores stderr. Tests use it; not thread-safe. */
typedef void (*kb_log_sink_fn)(void *ctx, const char *line, size_t len);
void kb_log_set_sink(kb_log_sink_fn fn, void *ctx);

/*
 * Logs one event: level, an event name ("step", "aws-call", "drift", ...) and key/value pairs of
 * strings, terminated by a NULL key. A NULL value omits its key. All strings are borrowed for the
 * call. Out of memory drops the line.
 *   kb_log(KB_LOG_INFO, "step", "tenant", t, "step", "bucket", "result", "done", NULL);
 */
void kb_log(enum kb_log_level level, const char *event, ...) __attribute__((sentinel));

/* The same with a NULL-terminated array of 2n strings (key, value, key, value, ..., NULL). */
void kb_log_pairs(enum kb_log_level level, const char *event, const char *const *pairs);

#endif
