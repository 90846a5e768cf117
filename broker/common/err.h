/*
 * err.h - keybroker's own error codes.
 *
 * Every function that can fail returns int: 0 on success or a negative code. System and libuv
 * errors pass through unchanged (UV_E* == -errno); keybroker's own codes live below -10000 so they
 * never collide with an errno. kb_strerror() and kb_err_name() describe either kind. This module
 * must never allocate or log: it is called from error paths.
 */
#ifndef KB_ERR_H
#define KB_ERR_H

#include <stddef.h>

/* X(name, value, message) */
#define KB_ERR_MAP(X)                                                                              \
    X(KB_EINVAL, -10001, "invalid argument")                                                       \
    X(KB_ENOMEM, -10002, "out of memory")                                                          \
    X(KB_EPARSE, -10003, "malformed input")                                                        \
    X(KB_EAWS, -10004, "AWS returned an error")                                                    \
    X(KB_ENET, -10005, "network error")                                                            \
    X(KB_ETIMEDOUT, -10006, "timed out")                                                           \
    X(KB_ENOCREDS, -10007, "no AWS credentials found")                                             \
    X(KB_ECONFIG, -10008, "invalid configuration")                                                 \
    X(KB_ETOOBIG, -10009, "input too large")                                                       \
    X(KB_ECANCELED, -10010, "operation canceled")                                                  \
    X(KB_ENOTFOUND, -10011, "not found")                                                           \
    X(KB_EDENIED, -10012, "permission denied")                                                     \
    X(KB_EFOREIGN, -10013, "resource exists but is not managed by keybroker")                      \
    X(KB_ETLS, -10014, "TLS error")                                                                \
    X(KB_EHOOK, -10015, "a required rotation hook failed")

enum kb_err {
#define KB_X_ENUM(name, value, msg) name = value,
    KB_ERR_MAP(KB_X_ENUM)
#undef KB_X_ENUM
};

/* Describes err (a keybroker code or a negative errno). Returns a static string: caller does not
 * free. Unknown codes yield "unknown error". */
const char *kb_strerror(int err);

/* The symbolic name of err ("KB_EAWS", "ENOENT", ...). Static string; caller does not free. */
const char *kb_err_name(int err);

/* Formats a message into msg (msglen bytes; nothing when msg is NULL or msglen 0) and returns rc:
 * `return kb_err_msg(why, whylen, KB_EINVAL, "...", ...);` in the pure checkers. */
int kb_err_msg(char *msg, size_t msglen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
