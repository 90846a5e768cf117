/*
 * chain.h - the audit log's format and its pure cryptographic core: how a record line is linked
 * to the one before it, how it is tagged, how the epoch key evolves. The writer (writer.c) and the
 * verifier (verify.c, `kbctl audit verify`) both use exactly these functions, so the format has
 * one definition. No I/O, no clock, no allocation beyond OpenSSL's contexts.
 *
 * The format (version 1)
 * ----------------------
 * An audit log is a sequence of lines, each one JSON object in UTF-8 ending in "\n". A line is a
 * *body* - the record - followed by its chain fields, always the last members and always in this
 * exact text form:
 *
 *     <body without its closing "}">,"h":"<64 hex>","tag":"<64 hex>"}\n     (chain "hmac-sha256")
 *     <body without its closing "}">,"h":"<64 hex>"}\n                      (chain "sha256")
 *
 * so a reader finds them by length, and the body is the line's prefix followed by "}". The body
 * starts with {"seq":N,"epoch":E,"ts":"...","event":"..." (record.c writes it; see record.h).
 *
 *   h_0   = 32 zero bytes                         (before seq 1, the first record of a chain)
 *   h_i   = SHA-256(h_{i-1} || body_i)            (h_{i-1} as 32 raw bytes, body_i as its bytes)
 *   tag_i = HMAC-SHA-256(K_e, h_i)                (e = the record's "epoch"; lowercase hex)
 *   K_0   = 32 random bytes from `kbctl audit init`, kept by the verifier off the host
 *   K_e+1 = HKDF-SHA-256(IKM = K_e, no salt, info = "keybroker audit epoch key" || be64(e + 1))
 *
 * Because HKDF is one-way, whoever holds K_e (a root attacker reading the broker's state file
 * now) can tag records of epoch e and later, never of an earlier one: records of a sealed epoch
 * cannot be changed without the tags failing under K_0's derivation. The broker keeps only the
 * current K_e and wipes K_e-1 once the "seal" record of epoch e-1 is written and tagged.
 *
 * Records the writer makes itself (their "event"):
 *   "audit_open"  first record of every file the writer opens, and written again whenever it
 *                 opens the log (start after a restart appends to the same file; a retry after a
 *                 failed write), so also in the middle of a file: "chain", "chain_id", "key_id",
 *                 "prev_h" (hex of h_{seq-1}, so a file verifies on its own), "epoch_seconds",
 *                 "reason" ("start" | "reopen" | "retry"), "cut_bytes" (a partial last line
 *                 left by a crash, cut before this record; 0 when none)
 *   "seal"        closes epoch e, tagged with K_e, written every epoch even when idle; "records"
 *                 (records of epoch e, the seal included). The next record is of epoch e + 1.
 *   "audit_lost"  records dropped because the backlog overflowed while writing failed: "count"
 *   "stop"        the broker stopped cleanly
 * Everything else is a decision or a step (record.h).
 *
 * Rules a verifier applies (verify.c): seq starts at 1 with h_0 and grows by exactly 1; every
 * line ends with the chain fields of one chain mode and its h recomputes; with K_0 every tag
 * verifies under K_epoch; epoch never decreases; it grows by exactly 1 and only right after a
 * "seal" of the previous epoch; no record of epoch e follows the seal of e; each file of a set
 * begins with "audit_open" whose prev_h is the h of the line before it (the previous file's last
 * line); chain_id and key_id never change within a chain.
 */
#ifndef KB_AUDIT_CHAIN_H
#define KB_AUDIT_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KB_AUDIT_HASH_LEN 32
#define KB_AUDIT_KEY_LEN  32
#define KB_AUDIT_HEX_LEN  64 /* hex of a hash, tag or key, without NUL */
/* Key id: hex of the first 8 bytes of HMAC-SHA-256(K_0, "keybroker audit key id"). */
#define KB_AUDIT_KEY_ID_LEN 16
/* Longest line the writer makes and the verifier accepts, "\n" included. */
#define KB_AUDIT_LINE_MAX (64 * 1024)

enum kb_audit_mode {
    KB_AUDIT_MODE_SHA256, /* hash chain only: "chain":"sha256" */
    KB_AUDIT_MODE_HMAC,   /* hash chain + epoch-key tags: "chain":"hmac-sha256" */
};

/* "sha256" | "hmac-sha256". Static string. */
const char *kb_audit_mode_name(enum kb_audit_mode mode);

/* The mode named name[0..len); returns 0, or KB_EINVAL for any other text. */
int kb_audit_mode_from_name(const char *name, size_t len, enum kb_audit_mode *out);

/* Length of the chain suffix of a line in mode, "\n" excluded: ,"h":"<64>","tag":"<64>"} or
 * ,"h":"<64>"}. */
size_t kb_audit_suffix_len(enum kb_audit_mode mode);

/* out = SHA-256(prev || body[0..body_len) || close), where close (may be NULL) is appended to
 * the body ("}" when the body is a line's prefix). Returns 0 or KB_ENOMEM. */
int kb_audit_link(const uint8_t prev[KB_AUDIT_HASH_LEN], const char *body, size_t body_len,
                  const char *close, uint8_t out[KB_AUDIT_HASH_LEN]);

/* out = HMAC-SHA-256(key, h). Returns 0 or KB_ENOMEM. */
int kb_audit_tag(const uint8_t key[KB_AUDIT_KEY_LEN], const uint8_t h[KB_AUDIT_HASH_LEN],
                 uint8_t out[KB_AUDIT_HASH_LEN]);

/* out = K_{next_epoch} from key = K_{next_epoch - 1} (the derivation above). out may be key
 * (evolved in place; OpenSSL's copy is wiped). Returns 0, KB_EINVAL for next_epoch 0, or
 * KB_ENOMEM. */
int kb_audit_key_next(const uint8_t key[KB_AUDIT_KEY_LEN], uint64_t next_epoch,
                      uint8_t out[KB_AUDIT_KEY_LEN]);

/* out (KB_AUDIT_KEY_ID_LEN + 1 bytes) = the key id of K_0, NUL-terminated. */
int kb_audit_key_id(const uint8_t k0[KB_AUDIT_KEY_LEN], char out[KB_AUDIT_KEY_ID_LEN + 1]);

/* Writes the lowercase hex of bytes[0..n) and a NUL into out (2n + 1 bytes). */
void kb_audit_hex(const uint8_t *bytes, size_t n, char *out);

/* Reads exactly 2n lowercase or uppercase hex digits from hex[0..hex_len) into out. Returns 0 or
 * KB_EPARSE (wrong length, a non-hex character). */
int kb_audit_unhex(const char *hex, size_t hex_len, uint8_t *out, size_t n);

/*
 * Makes a line from a record body (a JSON object text: '{' ... '}', no newline):
 * computes h = link(prev, body), tag = HMAC(key, h) when key is non-NULL (mode HMAC; NULL: mode
 * SHA256), and writes <body minus "}">,"h":"..."[,"tag":"..."]}\n into out (cap bytes). *len
 * receives the line's length; h_out (may be NULL) the new h. Returns 0, KB_EINVAL (body does not
 * end in "}"), KB_ETOOBIG (out too small or the line longer than KB_AUDIT_LINE_MAX), KB_ENOMEM.
 */
int kb_audit_make_line(const uint8_t prev[KB_AUDIT_HASH_LEN], const uint8_t *key, const char *body,
                       size_t body_len, char *out, size_t cap, size_t *len,
                       uint8_t h_out[KB_AUDIT_HASH_LEN]);

/*
 * The same for many lines in a row, with OpenSSL contexts made once (a fresh context per line
 * costs more than the hashing): the writer's hot path. A maker belongs to one thread at a time.
 * kb_audit_maker_new: returns 0 and *out (free with kb_audit_maker_free, which wipes the key
 * copy OpenSSL keeps) or KB_ENOMEM. kb_audit_maker_key sets the HMAC key (32 bytes, borrowed for
 * the call; NULL: SHA256 mode, no tag); returns 0 or KB_ENOMEM. kb_audit_maker_line is
 * kb_audit_make_line with the maker's key, and also gives the tag (tag_out may be NULL).
 */
struct kb_audit_maker;
int kb_audit_maker_new(struct kb_audit_maker **out);
void kb_audit_maker_free(struct kb_audit_maker *m);
int kb_audit_maker_key(struct kb_audit_maker *m, const uint8_t *key);
int kb_audit_maker_line(struct kb_audit_maker *m, const uint8_t prev[KB_AUDIT_HASH_LEN],
                        const char *body, size_t body_len, char *out, size_t cap, size_t *len,
                        uint8_t h_out[KB_AUDIT_HASH_LEN], uint8_t tag_out[KB_AUDIT_HASH_LEN]);

/* The chain fields of one line, as split_line found them. */
struct kb_audit_line_parts {
    enum kb_audit_mode mode;
    size_t body_len; /* the body is line[0..body_len) followed by "}" */
    uint8_t h[KB_AUDIT_HASH_LEN];
    uint8_t tag[KB_AUDIT_HASH_LEN]; /* mode HMAC only */
};

/*
 * Splits line[0..len) (without its "\n") into body and chain fields, trying the HMAC suffix and
 * then the SHA256 one. Returns 0, or KB_EPARSE when neither suffix is there (the line was cut,
 * its end changed, or it is no audit line; the hex must be lowercase, as written). Only the
 * suffix is read: whether the body is a record is the verifier's question.
 */
int kb_audit_split_line(const char *line, size_t len, struct kb_audit_line_parts *out);

/* Whether the line's h is link(prev, body + "}"). Returns 1 (yes), 0 (no) or a negative error. */
int kb_audit_check_link(const uint8_t prev[KB_AUDIT_HASH_LEN], const char *line,
                        const struct kb_audit_line_parts *p);

/* Whether tag is HMAC(key, h), compared in constant time. Returns 1, 0 or a negative error. */
int kb_audit_check_tag(const uint8_t key[KB_AUDIT_KEY_LEN], const uint8_t h[KB_AUDIT_HASH_LEN],
                       const uint8_t tag[KB_AUDIT_HASH_LEN]);

#endif
