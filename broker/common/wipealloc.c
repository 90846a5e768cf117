/*
 * wipealloc.c - a size-remembering allocator that zeroes blocks before freeing them, for libcurl
 * (curl_global_init_mem) and OpenSSL (CRYPTO_set_mem_functions).
 *
 * Each block carries its size in a 16-byte header (keeping malloc's alignment for the caller).
 * realloc never grows in place: it copies into a new block and wipes the old one, because a
 * realloc that moves would otherwise leave the old bytes behind. This module must never inspect
 * or log the contents of a block.
 */
#include "common/wipealloc.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define S_HDR 16 /* >= sizeof(size_t), and keeps 16-byte alignment */

static int s_installed;
static int s_result;

static void *s_alloc(size_t n)
{
    unsigned char *p;

    if (n > SIZE_MAX - S_HDR)
        return NULL;
    p = malloc(n + S_HDR);
    if (p == NULL)
        return NULL;
    memcpy(p, &n, sizeof(n));
    return p + S_HDR;
}

static size_t s_size(void *q)
{
    size_t n;

    memcpy(&n, (unsigned char *)q - S_HDR, sizeof(n));
    return n;
}

static void s_free(void *q)
{
    if (q == NULL)
        return;
    sodium_memzero(q, s_size(q));
    free((unsigned char *)q - S_HDR);
}

static void *s_realloc(void *q, size_t n)
{
    void *r;
    size_t old;

    if (q == NULL)
        return s_alloc(n);
    old = s_size(q);
    r = s_alloc(n);
    if (r == NULL)
        return NULL;
    memcpy(r, q, old < n ? old : n);
    s_free(q);
    return r;
}

static void *s_calloc(size_t count, size_t size)
{
    void *p;

    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    p = s_alloc(count * size);
    if (p != NULL)
        memset(p, 0, count * size);
    return p;
}

static char *s_strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *p = s_alloc(len);

    if (p != NULL)
        memcpy(p, s, len);
    return p;
}

/* OpenSSL's signatures carry the caller's file and line, unused here. */
static void *s_ossl_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return s_alloc(n);
}

static void *s_ossl_realloc(void *q, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return s_realloc(q, n);
}

static void s_ossl_free(void *q, const char *file, int line)
{
    (void)file;
    (void)line;
    s_free(q);
}

int kb_wipealloc_install(void)
{
    /* One loop thread per process calls this before any other thread exists. */
    if (s_installed)
        return s_result;
    s_installed = 1;
    s_result = 0;
    if (CRYPTO_set_mem_functions(s_ossl_malloc, s_ossl_realloc, s_ossl_free) != 1)
        s_result = KB_EINVAL;
    if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, s_alloc, s_free, s_realloc, s_strdup, s_calloc) !=
        CURLE_OK)
        s_result = KB_EINVAL;
    return s_result;
}
