/*
 * err.c - names and messages for keybroker's error codes and for negative errno values.
 */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

const char *kb_strerror(int err)
{
    if (err == 0)
        return "success";
    switch (err) {
#define KB_X_MSG(name, value, msg)                                                                 \
    case name:                                                                                     \
        return msg;
        KB_ERR_MAP(KB_X_MSG)
#undef KB_X_MSG
    default:
        break;
    }
    if (err < 0 && err > -4096)
        return uv_strerror(err);
    return "unknown error";
}

const char *kb_err_name(int err)
{
    switch (err) {
#define KB_X_NAME(name, value, msg)                                                                \
    case name:                                                                                     \
        return #name;
        KB_ERR_MAP(KB_X_NAME)
#undef KB_X_NAME
    default:
        break;
    }
    if (err < 0 && err > -4096)
        return uv_err_name(err);
    return "KB_EUNKNOWN";
}

int kb_err_msg(char *msg, size_t msglen, int rc, const char *fmt, ...)
{
    va_list ap;

    if (msg != NULL && msglen > 0) {
        va_start(ap, fmt);
        vsnprintf(msg, msglen, fmt, ap);
        va_end(ap);
    }
    return rc;
}
