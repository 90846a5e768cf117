/*
 * secret.h - a secret value (an AWS secret access key, a session token) in guarded memory.
 *
 * The bytes live in libsodium's guarded allocation (guard pages, canary, mlock) and are kept
 * PROT_NONE while idle; kb_secret_open() makes them readable for the duration of one use and
 * kb_secret_close() locks them again. This module must never log, print or copy a secret into
 * unguarded memory; callers that do so for a moment (an HMAC key schedule, a request body) wipe
 * their copy with sodium_memzero().
 */
#ifndef KB_SECRET_H
#define KB_SECRET_H

#include <stddef.h>

struct kb_secret;

/* Copies len bytes of data into a new guarded secret (NUL-terminated internally). Returns NULL on
 * allocation failure. The caller still owns and wipes data. Caller frees with kb_secret_destroy. */
struct kb_secret *kb_secret_new(const void *data, size_t len);

/* Wipes and frees s. NULL is allowed. */
void kb_secret_destroy(struct kb_secret *s);

/* Makes the bytes readable and returns them (NUL-terminated); *len_out receives the length when
 * non-NULL. Borrowed until kb_secret_close(s). Opens nest: each open needs its close. */
const char *kb_secret_open(struct kb_secret *s, size_t *len_out);

/* Locks the bytes again (PROT_NONE) once the last open is closed. */
void kb_secret_close(struct kb_secret *s);

/* Length in bytes, readable without opening. */
size_t kb_secret_len(const struct kb_secret *s);

/* A new secret holding the same bytes. Caller frees with kb_secret_destroy. */
struct kb_secret *kb_secret_dup(struct kb_secret *s);

/* Constant-time equality of the secret with data[0..len). Returns 1 if equal. */
int kb_secret_equals(struct kb_secret *s, const void *data, size_t len);

/* Removes each named variable from the environment after overwriting its value where it lies
 * (the initial environment is on the stack, and /proc/PID/environ shows that memory for the
 * process's lifetime: unsetenv alone would leave the value there). names ends with NULL. Not
 * thread-safe (like setenv): call before any thread reads the environment. */
void kb_secret_scrub_env(const char *const *names);

#endif
