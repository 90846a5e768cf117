/*
 * uuid.c - version 5 UUIDs: SHA-1 (OpenSSL) over namespace || name, then the version and variant
 * bits of RFC 4122 section 4.3.
 */
#include "common/uuid.h"

#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

#define S_MAX_NAME 1024

static int s_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int kb_uuid_parse(const char *text, unsigned char out[16])
{
    size_t n = 0;

    if (text == NULL || strlen(text) != KB_UUID_STR_SIZE - 1)
        return KB_EINVAL;
    for (size_t i = 0; i < KB_UUID_STR_SIZE - 1; i++) {
        int hi, lo;

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-')
                return KB_EINVAL;
            continue;
        }
        hi = s_hex(text[i]);
        lo = s_hex(text[i + 1]);
        if (hi < 0 || lo < 0 || n >= 16)
            return KB_EINVAL;
        out[n++] = (unsigned char)(hi << 4 | lo);
        i++;
    }
    return n == 16 ? 0 : KB_EINVAL;
}

void kb_uuid_format(const unsigned char u[16], char out[KB_UUID_STR_SIZE])
{
    snprintf(out, KB_UUID_STR_SIZE,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
             u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
}

int kb_uuid_v5(const unsigned char ns[16], const void *name, size_t len, char out[KB_UUID_STR_SIZE])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx;
    int ok;

    if (ns == NULL || (name == NULL && len > 0) || out == NULL)
        return KB_EINVAL;
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return KB_ENOMEM;
    ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 && EVP_DigestUpdate(ctx, ns, 16) == 1 &&
         (len == 0 || EVP_DigestUpdate(ctx, name, len) == 1) &&
         EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen >= 16;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return KB_ENOMEM;
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50); /* version 5 */
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80); /* variant 10x (RFC 4122) */
    kb_uuid_format(md, out);
    return 0;
}

int kb_uuid_key_version(const char *tenant, const char *access_key_id, char out[KB_UUID_STR_SIZE])
{
    unsigned char ns[16];
    char name[2 * S_MAX_NAME + 2];
    size_t tlen, klen;

    if (tenant == NULL || access_key_id == NULL || out == NULL)
        return KB_EINVAL;
    tlen = strnlen(tenant, S_MAX_NAME + 1);
    klen = strnlen(access_key_id, S_MAX_NAME + 1);
    if (tlen == 0 || klen == 0 || tlen > S_MAX_NAME || klen > S_MAX_NAME ||
        memchr(tenant, '\n', tlen) != NULL)
        return KB_EINVAL;
    if (kb_uuid_parse(KB_UUID_NAMESPACE, ns) != 0)
        return KB_EINVAL;
    memcpy(name, tenant, tlen);
    name[tlen] = '\n';
    memcpy(name + tlen + 1, access_key_id, klen);
    return kb_uuid_v5(ns, name, tlen + 1 + klen, out);
}

void kb_uuid_v4(char out[KB_UUID_STR_SIZE])
{
    unsigned char b[16];

    randombytes_buf(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    kb_uuid_format(b, out);
}
