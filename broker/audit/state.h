/*
 * state.h - the audit chain's state file: what the broker needs to continue its chain after a
 * restart, and in HMAC mode the one key it holds, the current epoch's K_e (chain.h).
 *
 * `kbctl audit init` writes the first state (epoch 0, K_0, seq 0, h_0) beside the verifier's key
 * file; the writer rewrites it (0600, atomically: temporary file, fsync, rename) whenever the
 * epoch changes, a file is opened and at a clean stop. One JSON object:
 *
 *   {"v":1,"chain":"hmac-sha256","chain_id":"<32 hex>","key_id":"<16 hex>","epoch":E,
 *    "epoch_started_ms":T,"seq":N,"h":"<64 hex>","key":"<64 hex of K_E>"}
 *
 * ("key" and "key_id" only in HMAC mode). seq and h are those of the last record the state
 * knows of; the log file's last line is newer when records were written since.
 * Pure: parsing and formatting only; the file itself is the writer's and kbctl's business. The
 * key never leaves guarded memory except for the moment json-c or the hex encoder holds it, and
 * those copies are wiped.
 */
#ifndef KB_AUDIT_STATE_H
#define KB_AUDIT_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "audit/chain.h"

struct kb_secret;

#define KB_AUDIT_CHAIN_ID_LEN 32 /* hex of 16 random bytes */
#define KB_AUDIT_STATE_MAX    4096

struct kb_audit_state {
    enum kb_audit_mode mode;
    char chain_id[KB_AUDIT_CHAIN_ID_LEN + 1];
    char key_id[KB_AUDIT_KEY_ID_LEN + 1]; /* "" in SHA256 mode */
    uint64_t epoch;
    int64_t epoch_started_ms;
    uint64_t seq;
    uint8_t h[KB_AUDIT_HASH_LEN];
    struct kb_secret *key; /* K_epoch (KB_AUDIT_KEY_LEN bytes) in HMAC mode, else NULL; owned */
};

/*
 * Parses a state file's text. Returns 0 and fills out (free its key with
 * kb_audit_state_cleanup), or KB_EPARSE with a sentence naming the field in why[0..why_len) (never
 * a value), or KB_ENOMEM. The parser's copies of the text are wiped.
 */
int kb_audit_state_parse(const char *text, size_t len, struct kb_audit_state *out, char *why,
                         size_t why_len);

/* The state's text, "\n"-terminated, in a new guarded secret (it holds the key): caller frees with
 * kb_secret_destroy. Returns 0 and *out, KB_EINVAL (HMAC mode without a key of
 * KB_AUDIT_KEY_LEN bytes) or KB_ENOMEM. */
int kb_audit_state_format(const struct kb_audit_state *st, struct kb_secret **out);

/* Destroys st->key; the rest is plain data. */
void kb_audit_state_cleanup(struct kb_audit_state *st);

/*
 * A new chain's first state: a random chain id, epoch 0 started at now_ms, seq 0, h_0; in HMAC
 * mode k0 (KB_AUDIT_KEY_LEN bytes, the caller's) becomes K_0 and its key id is computed. Returns
 * 0 or KB_ENOMEM. Used by `kbctl audit init` and by the writer for a new SHA256 chain.
 */
int kb_audit_state_init(struct kb_audit_state *st, enum kb_audit_mode mode, const uint8_t *k0,
                        int64_t now_ms);

#endif
