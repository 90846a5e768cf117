/*
 * sigv4_key.c - the secret side of SigV4 signing: SHA-256 and HMAC-SHA256 helpers, signing-key
 * derivation and the per-signer cache of derived keys. Part of the sigv4 module (see
 * sigv4_internal.h); pure, no I/O.
 *
 * A signing key is derived once per (date, region, service, access key id) and cached in the
 * signer's guarded area, which is sodium_malloc'd and readable only inside
 * kb__sigv4_sign_string_to_sign() (sigv4.c opens it only to wipe it). This file must never log or
 * print a secret or a key, and never copy the secret access key, an intermediate key or a signing
 * key into unguarded memory: the secret is opened only while a key is derived, every temporary
 * lives in the guarded area and is wiped after use, and the HMAC context is re-keyed with zeros
 * after each signature.
 */
#include "aws/sigv4_internal.h"

#include <openssl/evp.h>
#include <sodium.h>
#include <string.h>

#include "common/err.h"

static const unsigned char s_zero_key[KB__SIGV4_KEY_LEN];

/* ---- digests ------------------------------------------------------------------------------ */

int kb__sigv4_sha256(struct kb_sigv4_signer *sg, const void *p, size_t n,
                     unsigned char out[KB__SIGV4_KEY_LEN])
{
    unsigned int len = 0;

    if (EVP_DigestInit_ex2(sg->md, sg->sha256, NULL) != 1 || EVP_DigestUpdate(sg->md, p, n) != 1 ||
        EVP_DigestFinal_ex(sg->md, out, &len) != 1 || len != KB__SIGV4_KEY_LEN)
        return KB_ETLS;
    return 0;
}

static int s_hmac(struct kb_sigv4_signer *sg, const unsigned char *key, size_t key_len,
                  const void *msg, size_t n, unsigned char out[KB__SIGV4_KEY_LEN])
{
    size_t len = 0;

    if (EVP_MAC_init(sg->mac, key, key_len, NULL) != 1 || EVP_MAC_update(sg->mac, msg, n) != 1 ||
        EVP_MAC_final(sg->mac, out, &len, KB__SIGV4_KEY_LEN) != 1 || len != KB__SIGV4_KEY_LEN)
        return KB_ETLS;
    return 0;
}

/* The HMAC context keeps a copy of its last key and the pad states derived from it; re-keying
 * it with zeros leaves nothing of a signing key behind in OpenSSL's memory. */
static void s_scrub_mac(struct kb_sigv4_signer *sg)
{
    (void)EVP_MAC_init(sg->mac, s_zero_key, sizeof(s_zero_key), NULL);
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"),
 * every intermediate in guarded memory (writable: the caller opened it read-write). */
static int s_derive_signing_key(struct kb__sigv4_state *st, unsigned char out[KB__SIGV4_KEY_LEN])
{
    struct kb_sigv4_signer *sg = st->sg;
    struct kb__sigv4_guarded *g = sg->guarded;
    const char *region = st->p->region, *service = st->p->service;
    const char *secret;
    size_t len;
    int rc;

    secret = kb_secret_open(st->creds->secret_access_key, &len);
    memcpy(g->k_secret, "AWS4", 4);
    memcpy(g->k_secret + 4, secret, len);
    kb_secret_close(st->creds->secret_access_key);

    rc = s_hmac(sg, g->k_secret, 4 + len, sg->date, 8, g->k_date);
    if (rc == 0)
        rc = s_hmac(sg, g->k_date, KB__SIGV4_KEY_LEN, region, strlen(region), g->k_region);
    if (rc == 0)
        rc = s_hmac(sg, g->k_region, KB__SIGV4_KEY_LEN, service, strlen(service), g->k_service);
    if (rc == 0)
        rc = s_hmac(sg, g->k_service, KB__SIGV4_KEY_LEN, "aws4_request", 12, out);
    sodium_memzero(g->k_secret, sizeof(g->k_secret));
    sodium_memzero(g->k_date, sizeof(g->k_date));
    sodium_memzero(g->k_region, sizeof(g->k_region));
    sodium_memzero(g->k_service, sizeof(g->k_service));
    if (rc != 0)
        sodium_memzero(out, KB__SIGV4_KEY_LEN);
    return rc;
}

static bool s_fits(const char *s, size_t size)
{
    return strlen(s) < size;
}

/* The slot caching this call's scope, or -1. *cacheable is false when a name is too long. */
static int s_cache_find(struct kb__sigv4_state *st, bool *cacheable)
{
    struct kb_sigv4_signer *sg = st->sg;
    const char *akid = st->creds->access_key_id;
    int i;

    *cacheable = s_fits(st->p->region, sizeof(sg->slots[0].region)) &&
                 s_fits(st->p->service, sizeof(sg->slots[0].service)) &&
                 s_fits(akid, sizeof(sg->slots[0].access_key_id));
    if (!*cacheable)
        return -1;
    for (i = 0; i < KB__SIGV4_CACHE_SLOTS; i++) {
        const struct kb__sigv4_cache_slot *s = &sg->slots[i];

        if (s->used && memcmp(s->date, sg->date, 8) == 0 && strcmp(s->region, st->p->region) == 0 &&
            strcmp(s->service, st->p->service) == 0 && strcmp(s->access_key_id, akid) == 0)
            return i;
    }
    return -1;
}

/* An unused slot, else the least recently used one (yesterday's keys age out this way). */
static int s_cache_victim(const struct kb_sigv4_signer *sg)
{
    int i, victim = 0;

    for (i = 0; i < KB__SIGV4_CACHE_SLOTS; i++) {
        if (!sg->slots[i].used)
            return i;
        if (sg->slots[i].last_use < sg->slots[victim].last_use)
            victim = i;
    }
    return victim;
}

static void s_cache_fill(struct kb__sigv4_state *st, int i)
{
    struct kb__sigv4_cache_slot *s = &st->sg->slots[i];

    memcpy(s->date, st->sg->date, sizeof(s->date));
    memcpy(s->region, st->p->region, strlen(st->p->region) + 1);
    memcpy(s->service, st->p->service, strlen(st->p->service) + 1);
    memcpy(s->access_key_id, st->creds->access_key_id, strlen(st->creds->access_key_id) + 1);
    s->used = true;
}

/* Finds or derives the signing key and signs the string to sign. The guarded area is readable
 * only inside this function. */
int kb__sigv4_sign_string_to_sign(struct kb__sigv4_state *st)
{
    struct kb_sigv4_signer *sg = st->sg;
    unsigned char mac[KB__SIGV4_KEY_LEN];
    bool cacheable;
    int slot, rc;

    slot = s_cache_find(st, &cacheable);
    if (slot >= 0) {
        if (sodium_mprotect_readonly(sg->guarded) != 0)
            return KB_ENOMEM;
        sg->stats.key_cache_hits++;
    } else {
        if (sodium_mprotect_readwrite(sg->guarded) != 0)
            return KB_ENOMEM;
        slot = cacheable ? s_cache_victim(sg) : KB__SIGV4_CACHE_SLOTS;
        if (slot < KB__SIGV4_CACHE_SLOTS)
            sg->slots[slot].used = false;
        rc = s_derive_signing_key(st, sg->guarded->keys[slot]);
        if (rc != 0) {
            sodium_mprotect_noaccess(sg->guarded);
            return rc;
        }
        if (slot < KB__SIGV4_CACHE_SLOTS)
            s_cache_fill(st, slot);
        sg->stats.key_derivations++;
    }
    if (slot < KB__SIGV4_CACHE_SLOTS)
        sg->slots[slot].last_use = ++sg->clock;
    rc = s_hmac(sg, sg->guarded->keys[slot], KB__SIGV4_KEY_LEN, kb__sigv4_buf_str(&sg->sts),
                sg->sts.len, mac);
    if (slot == KB__SIGV4_CACHE_SLOTS)
        sodium_memzero(sg->guarded->keys[slot], KB__SIGV4_KEY_LEN);
    sodium_mprotect_noaccess(sg->guarded);
    s_scrub_mac(sg);
    if (rc == 0)
        sodium_bin2hex(sg->signature, sizeof(sg->signature), mac, sizeof(mac));
    return rc;
}
