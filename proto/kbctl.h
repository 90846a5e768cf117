/*
 * kbctl.h - what kbctl's files share: the parsed command line, the exit codes and the helpers
 * that turn a libkeybroker failure into a message and an exit code.
 */
#ifndef KB_KBCTL_H
#define KB_KBCTL_H

#include <stdbool.h>

#include "keybroker/client.h"

/* Exit codes (documented in --help and PROTOCOL.md). */
enum {
    KBCTL_EXIT_OK = 0,
    KBCTL_EXIT_BROKER = 1,    /* the broker reported an error, or its answer was malformed */
    KBCTL_EXIT_USAGE = 2,     /* bad command line */
    KBCTL_EXIT_CONNECT = 3,   /* cannot connect, timeout, connection lost */
    KBCTL_EXIT_FORBIDDEN = 4, /* the broker said "forbidden" */
    KBCTL_EXIT_AWS = 5,       /* credential-process: AWS refused or could not be reached */
};

struct kbctl {
    const char *socket;       /* NULL: $KEYBROKER_SOCKET, else the default */
    const char *server_uid;   /* --server-uid (checked); NULL: $KEYBROKER_SERVER_UID */
    bool json;                /* print the broker's JSON */
    int timeout_ms;           /* 0: the command's default */
    bool delete_bucket;       /* revoke */
    bool force_delete_secret; /* revoke */
    bool rollback;            /* rotate */
    bool ack;                 /* watch: acknowledge each version it prints */
};

/* Connects as the options say, refusing a socket served by an untrusted uid; on failure prints
 * why and returns KBCTL_EXIT_CONNECT (KBCTL_EXIT_USAGE for a malformed $KEYBROKER_SERVER_UID). */
int kbctl_connect(const struct kbctl *k, struct kb_client **out);

/* Prints a failed call's reason (what: "get billing") and returns its exit code. */
int kbctl_fail(struct kb_client *c, int rc, const char *what);

/* `kbctl credential-process TENANT` (kbctl_credproc.c). */
int kbctl_credential_process(const struct kbctl *k, const char *tenant);

/* `kbctl audit ...` (kbctl_audit.c): the whole command line, which has options of its own.
 * Returns its exit code (0 intact or done, 1 tampering found, 2 usage, I/O or AWS error). */
int kbctl_audit(int argc, char **argv);

#endif
