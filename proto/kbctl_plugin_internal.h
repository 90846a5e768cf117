/*
 * kbctl_plugin_internal.h - what the files of `kbctl plugin check` share:
 *   kbctl_plugin.c         the command line, the sample events and the steps of a check
 *   kbctl_plugin_helper.c  the throw-away helper process and the wire to it (plugin/wire.h)
 *   kbctl_plugin_report.c  the report, as text or one JSON object, and the verdict
 * Nothing here talks to the broker or holds a secret: the events are made up.
 */
#ifndef KB_KBCTL_PLUGIN_INTERNAL_H
#define KB_KBCTL_PLUGIN_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "plugin/wire.h"

struct json_object;

#define KBCTL_PLUGIN_ROUNDS     2 /* the sample sequence is replayed this many times */
#define KBCTL_PLUGIN_SAMPLES    8 /* one sample event per hook */
#define KBCTL_PLUGIN_DETAIL_MAX 512

/* What became of loading, one event, or the helper's shutdown. */
enum kbctl_plugin_outcome {
    KBCTL_OUTCOME_OK,          /* "loaded"/"done" with ok:true; shutdown: see code */
    KBCTL_OUTCOME_FAILED,      /* ok:false: the plugin's (or the loader's) error */
    KBCTL_OUTCOME_CRASHED,     /* the helper died of a signal (code) */
    KBCTL_OUTCOME_EXITED,      /* the helper exited (code: its status) */
    KBCTL_OUTCOME_TIMED_OUT,   /* no answer within the deadline and grace: killed */
    KBCTL_OUTCOME_PROTOCOL,    /* a line that is not the answer asked for: killed */
    KBCTL_OUTCOME_NOT_STARTED, /* socketpair or fork failed */
};

struct kbctl_plugin_result {
    int round;        /* 1-based; 0 for loading and shutdown */
    const char *hook; /* static; NULL for loading and shutdown */
    enum kbctl_plugin_outcome outcome;
    int code; /* CRASHED: the signal; EXITED: the status */
    char detail[KBCTL_PLUGIN_DETAIL_MAX];
    int64_t ms;
};

/* The throw-away helper: kbctl itself as `kbctl --plugin-host`, its socket on fd 3. */
struct kbctl_plugin_helper {
    bool drop; /* kbctl runs as root: the child becomes run_uid/run_gid before exec */
    uid_t run_uid;
    gid_t run_gid;
    pid_t pid; /* -1 once reaped */
    int fd;    /* kbctl's end of the socket, -1 once closed */
    char buf[KB_PLUGIN_WIRE_MAX];
    size_t len;
};

struct kbctl_plugin_options {
    const char *file;
    struct json_object *config; /* --config (owned), or NULL */
    int deadline_ms;
    const char *user; /* --user, or NULL */
    bool json;
};

/* One check: owns the helper and every result. */
struct kbctl_plugin_check {
    const struct kbctl_plugin_options *opt;
    char path[PATH_MAX]; /* the file's realpath */
    char name[65];       /* the load message's name: the file's, without .so */
    struct kbctl_plugin_helper helper;
    unsigned next_id;
    struct json_object *loaded; /* the "loaded" line (owned), or NULL */
    struct kbctl_plugin_result load;
    struct kbctl_plugin_result results[KBCTL_PLUGIN_ROUNDS * KBCTL_PLUGIN_SAMPLES];
    size_t nresults;
    struct kbctl_plugin_result shutdown; /* how the helper ended after the socket closed */
    bool helper_died;                    /* during load or an event: nothing more was sent */
};

int64_t kbctl_plugin__now_ms(void);

/* Sets r's outcome, code and detail (a sentence, truncated to fit). */
void kbctl_plugin__set(struct kbctl_plugin_result *r, enum kbctl_plugin_outcome o, int code,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A string member of o, or NULL (borrowed from o). */
const char *kbctl_plugin__str(struct json_object *o, const char *key);

/* -- kbctl_plugin_helper.c -- */

/* Starts the helper (h->drop and the user set by the caller). Returns 0 with h->pid and h->fd,
 * or -1 with r saying why (NOT_STARTED). */
int kbctl_plugin__spawn(struct kbctl_plugin_helper *h, struct kbctl_plugin_result *r);

/* Sends o as one line. Returns 0, or -1 when the helper is gone (or the line is too long). */
int kbctl_plugin__send(struct kbctl_plugin_helper *h, struct json_object *o);

/* The next line, parsed, within timeout_ms: 0 and *out (a JSON object; caller puts it), or -1
 * with r saying what happened instead: the helper died (it is reaped), timed out, or sent
 * something that is not a JSON object line (both killed). */
int kbctl_plugin__receive(struct kbctl_plugin_helper *h, int timeout_ms,
                          struct kbctl_plugin_result *r, struct json_object **out);

/* Waits up to grace_ms for the helper to end (then kills it) and records how it ended in r
 * (unless NULL). Nothing when it was reaped already. */
void kbctl_plugin__reap(struct kbctl_plugin_helper *h, int grace_ms, struct kbctl_plugin_result *r);

/* Kills the helper (SIGKILL) and reaps it, as the broker does with one that overran its
 * deadline or broke the protocol. */
void kbctl_plugin__kill(struct kbctl_plugin_helper *h);

/* Closes kbctl's end of the socket: the helper calls the plugin's fini and exits. */
void kbctl_plugin__close(struct kbctl_plugin_helper *h);

/* -- kbctl_plugin_report.c -- */

/* "ok", "failed", ... (JSON) and "ok", "failed", "timed out", ... (text). Static. */
const char *kbctl_plugin__outcome_name(enum kbctl_plugin_outcome o);
const char *kbctl_plugin__outcome_text(enum kbctl_plugin_outcome o);

/* Whether the check passed; buf (len bytes) gets the verdict's sentence. */
bool kbctl_plugin__verdict(const struct kbctl_plugin_check *st, char *buf, size_t len);

/* Text mode, as the check goes: the descriptor once loaded, then each event's line. Nothing
 * with --json. */
void kbctl_plugin__print_descriptor(const struct kbctl_plugin_check *st);
void kbctl_plugin__print_event(const struct kbctl_plugin_check *st,
                               const struct kbctl_plugin_result *r);

/* The end of the report: the refusal or the shutdown and the verdict (text), or the whole
 * report as one JSON object (--json). */
void kbctl_plugin__print_end(const struct kbctl_plugin_check *st);

#endif
