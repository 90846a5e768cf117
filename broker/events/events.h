/*
 * events.h - the event bus: the one place where the engine and the server emit what happened and
 * where consumers (the watch fan-out today; the audit log and the plugin host next) subscribe.
 *
 * An emitter fills a struct kb_event on its stack and calls kb_events_emit(); every subscriber
 * whose mask has the event's kind is called at once, in the order they subscribed, on the
 * broker's loop. A subscriber must not block (hand slow work to the threadpool) and may not keep
 * a pointer from the event past its callback. Events carry names, ids, states, messages and peer
 * credentials - never key material: no field could hold a secret, and emitters must not put one
 * in a message.
 */
#ifndef KB_EVENTS_H
#define KB_EVENTS_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

enum kb_event_kind {
    KB_EVENT_STEP,            /* a job step started, finished, was skipped or failed */
    KB_EVENT_PROVISIONED,     /* a tenant reached READY: arn, version_id */
    KB_EVENT_REVOKED,         /* a tenant was revoked: arn (the secret's, before its deletion) */
    KB_EVENT_AUTHZ,           /* a socket request was authorized or refused: peer, op, tenant */
    KB_EVENT_ADOPTED,         /* a bucket without keybroker's tags was taken under management: arn
                                 (the bucket's), message (why: an operator's adopt, or a creation
                                 this broker recorded before it crashed), request_id */
    KB_EVENT_ROTATED,         /* a new version became AWSCURRENT: arn, version_id (the new one),
                                 message (the superseded version id) */
    KB_EVENT_ROLLED_BACK,     /* AWSCURRENT moved back to the previous version: arn, version_id */
    KB_EVENT_ROTATION_FAILED, /* a rotation ended without moving AWSCURRENT: arn, message */
    KB_EVENT_KEY_DEACTIVATED, /* the superseded key was made Inactive: arn, version_id (its) */
    KB_EVENT_KEY_DELETED,     /* the superseded key was deleted: arn, version_id (its) */
    KB_EVENT_AWS_CALL,        /* a job's AWS call ended: step, service, operation, result ("ok" |
                                 "error"), code (AWS's error code or keybroker's, on error),
                                 message, request_id */
    KB_EVENT_PLUGIN,          /* a rotation hook handled an event: plugin, step (the hook),
                                 result ("ok" | "error"), message (why it failed), tenant,
                                 rotation_id */
    KB_EVENT_KIND_COUNT
};

#define KB_EVENT_MASK(kind) (1u << (kind))
#define KB_EVENT_MASK_ALL   ((1u << KB_EVENT_KIND_COUNT) - 1u)

/* The peer of a socket request, as the kernel reported it at accept. */
struct kb_event_peer {
    uid_t uid;
    gid_t gid;
    pid_t pid;
};

/* One event. Every pointer is borrowed until the subscriber returns; a field that does not apply
 * to the kind is NULL (strings) or 0. */
struct kb_event {
    enum kb_event_kind kind;
    time_t ts;
    const char *tenant;     /* NULL for an authz decision of a request without a tenant */
    const char *op;         /* job kind ("provision", "revoke") or request op ("get", ...) */
    const char *step;       /* STEP: "bucket", "create-key", ... */
    const char *result;     /* STEP: "start" | "done" | "skip" | "error"; AUTHZ: "allow" | "deny" */
    const char *message;    /* STEP: "" when none; ADOPTED */
    const char *request_id; /* STEP, ADOPTED: of the AWS call that decided it; "" when none */
    const char *arn;        /* PROVISIONED, REVOKED, ADOPTED, and the rotation kinds */
    const char *version_id; /* PROVISIONED (NULL when unknown), the rotation kinds */
    const struct kb_event_peer *peer; /* AUTHZ */
    const char *service;              /* AWS_CALL: "iam" | "s3" | "secretsmanager" | "sts" */
    const char *operation;            /* AWS_CALL: "CreateAccessKey" */
    const char *code;                 /* AWS_CALL: "" when the call succeeded */
    const char *previous_version_id;  /* ROTATED, ROLLED_BACK: the version AWSCURRENT left */
    const char *rotation_id;          /* the rotation kinds: one random id per rotation pass */
    const char *plugin;               /* PLUGIN: the plugin's configured name */
};

/* "step", "provisioned", "revoked", "authz", "adopted", "rotated", "rolled_back",
 * "rotation_failed", "key_deactivated", "key_deleted", "aws_call", "plugin". Static string. */
const char *kb_event_kind_name(enum kb_event_kind kind);

typedef void (*kb_event_cb)(void *ctx, const struct kb_event *ev);

struct kb_events;
struct kb_events_sub;

/* Creates a bus. Returns 0 and *out (free with kb_events_destroy) or KB_ENOMEM. */
int kb_events_new(struct kb_events **out);

/* Frees the bus and every subscription still on it. Emitters and subscribers must be done with
 * it. NULL is allowed. */
void kb_events_destroy(struct kb_events *bus);

/* Calls cb(ctx, ev) for every later event whose kind is in mask (KB_EVENT_MASK bits). Returns 0
 * and *out, the handle for kb_events_unsubscribe (owned by the bus), or KB_EINVAL / KB_ENOMEM. */
int kb_events_subscribe(struct kb_events *bus, unsigned mask, kb_event_cb cb, void *ctx,
                        struct kb_events_sub **out);

/* Ends a subscription: cb is not called again, even for an event being emitted now. NULL is
 * allowed. */
void kb_events_unsubscribe(struct kb_events *bus, struct kb_events_sub *sub);

/* Hands ev (borrowed for the call) to every subscriber of its kind; ev->ts 0 means now. bus may
 * be NULL (nothing happens): a module used without a broker emits nowhere. */
void kb_events_emit(struct kb_events *bus, const struct kb_event *ev);

#endif
