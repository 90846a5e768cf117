/*
 * secret.c - guarded secret storage on libsodium.
 *
 * The header struct is ordinary memory (length and open count only); the bytes are a separate
 * sodium_malloc() area, so the guard pages sit right around the secret itself.
 */
#include "common/secret.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct kb_secret {
    char *bytes; /* sodium_malloc'd, len + 1 bytes, PROT_NONE while opens == 0 */
    size_t len;
    unsigned opens;
};

static int s_sodium_ready(void)
{
    /* sodium_init() is idempotent and thread-safe; it returns 1 when already initialised. */
    return sodium_init() >= 0;
}

struct kb_secret *kb_secret_new(const void *data, size_t len)
{
    struct kb_secret *s;

    if (!s_sodium_ready() || len == (size_t)-1)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->bytes = sodium_malloc(len + 1);
    if (s->bytes == NULL) {
        free(s);
        return NULL;
    }
    if (len > 0)
        memcpy(s->bytes, data, len);
    s->bytes[len] = '\0';
    s->len = len;
    sodium_mprotect_noaccess(s->bytes);
    return s;
}

void kb_secret_destroy(struct kb_secret *s)
{
    if (s == NULL)
        return;
    /* sodium_free() makes the area writable, wipes it and unmaps it. */
    sodium_free(s->bytes);
    free(s);
}

const char *kb_secret_open(struct kb_secret *s, size_t *len_out)
{
    if (s->opens++ == 0)
        sodium_mprotect_readonly(s->bytes);
    if (len_out != NULL)
        *len_out = s->len;
    return s->bytes;
}

void kb_secret_close(struct kb_secret *s)
{
    if (s->opens > 0 && --s->opens == 0)
        sodium_mprotect_noaccess(s->bytes);
}

size_t kb_secret_len(const struct kb_secret *s)
{
    return s->len;
}

struct kb_secret *kb_secret_dup(struct kb_secret *s)
{
    size_t len;
    const char *p = kb_secret_open(s, &len);
    struct kb_secret *copy = kb_secret_new(p, len);

    kb_secret_close(s);
    return copy;
}

int kb_secret_equals(struct kb_secret *s, const void *data, size_t len)
{
    int eq;

    if (len != s->len)
        return 0;
    eq = sodium_memcmp(kb_secret_open(s, NULL), data, len) == 0;
    kb_secret_close(s);
    return eq;
}

extern char **environ;

void kb_secret_scrub_env(const char *const *names)
{
    for (; *names != NULL; names++) {
        size_t n = strlen(*names);

        for (char **e = environ; e != NULL && *e != NULL; e++) {
            if (strncmp(*e, *names, n) == 0 && (*e)[n] == '=')
                sodium_memzero(*e + n + 1, strlen(*e + n + 1));
        }
        unsetenv(*names);
    }
}
