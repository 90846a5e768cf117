/*
 * verify_internal.h - what the verifier's files share (not part of kb_audit's API): the record
 * body scanner (verify_body.c), the anchor bookkeeping (verify_anchor.c) and the verifier's
 * state (verify.c).
 */
#ifndef KB_AUDIT_VERIFY_INTERNAL_H
#define KB_AUDIT_VERIFY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>

#include "audit/verify.h"

/* -- the body scanner (verify_body.c) -------------------------------------------------------- */

/* A string member's text between its quotes (no escapes in it), or p NULL when absent. */
struct kb_audit__span {
    const char *p;
    size_t len;
};

/* The members of a record body the verifier reads. */
struct kb_audit__body {
    uint64_t seq;
    size_t seq_off, seq_len; /* where seq's digits are in the body */
    uint64_t epoch;
    struct kb_audit__span ts, event;
    /* audit_open */
    struct kb_audit__span chain, chain_id, key_id, prev_h, reason;
    bool has_epoch_seconds;
    int64_t epoch_seconds;
    /* seal, audit_lost */
    bool has_records, has_count, has_cut_bytes;
    uint64_t records, count, cut_bytes;
};

/*
 * Reads body[0..len), a line's body without its closing "}" (chain.h): the fixed header
 * {"seq":N,"epoch":E,"ts":"...","event":"..." and then, when full, every other member, checking
 * the whole object is JSON (strings UTF-8, nesting bounded) and that no member the verifier reads
 * is there twice. header_only: stop after the header (what ordering files and telling bad lines
 * apart need). Returns 0, or KB_EPARSE with *why a static phrase.
 */
int kb_audit__body_scan(const char *body, size_t len, bool header_only, struct kb_audit__body *out,
                        const char **why);

/* chain.c's kb_audit_split_line, but strict: the hex digits lowercase, as chain.c writes them
 * (its parser also reads uppercase, which would let a line change without its h or tag
 * changing). Returns 0 or KB_EPARSE. */
int kb_audit__split_strict(const char *line, size_t len, struct kb_audit_line_parts *out);

/* Whether span equals the NUL-terminated s. */
bool kb_audit__span_is(struct kb_audit__span span, const char *s);

/* -- anchors (verify_anchor.c) --------------------------------------------------------------- */

/* One listed object version. */
struct kb_audit__anchor_obj {
    char *key;
    char *version_id;
    bool delete_marker;
    bool parsed;                              /* a is the body's anchor */
    bool this_chain;                          /* set once the log's chain id is known */
    char why[160];                            /* when not parsed and not a delete marker */
    char chain_id[KB_AUDIT_CHAIN_ID_LEN + 1]; /* from the key ("" when the key is no anchor's) */
    uint64_t seq;                             /* from the key */
    struct kb_audit_anchor a;
};

struct kb_audit__anchors {
    struct kb_audit__anchor_obj *objs;
    size_t n, cap;
    char *prefix;
    size_t next; /* the next object (in seq order) a record has not passed yet */
    bool sorted; /* filtered to the chain and sorted by seq */
};

/* Adds one object version (kb_audit_verify_add_anchor_object). */
int kb_audit__anchors_add(struct kb_audit__anchors *an, const char *key, const char *version_id,
                          bool delete_marker, const char *body, size_t body_len);

/* Once the chain id is known: marks the objects of this chain and sorts them by seq (those of
 * other chains last); counts rewritten keys and other chains' objects into r. */
void kb_audit__anchors_start(struct kb_audit__anchors *an, const char *chain_id,
                             struct kb_audit_verify_result *r);

/*
 * Checks the record at seq (epoch, its chain fields p) against the anchors of that seq, counting
 * those before it into r->anchors_before_start when first is true (the set's first record).
 * Returns KB_AUDIT_OK or KB_AUDIT_ANCHOR_MISMATCH with a sentence in detail.
 */
enum kb_audit_reason kb_audit__anchors_check(struct kb_audit__anchors *an, uint64_t seq,
                                             uint64_t epoch, const struct kb_audit_line_parts *p,
                                             bool first, struct kb_audit_verify_result *r,
                                             char *detail, size_t detail_len);

/* After the last record: the first anchor of this chain beyond last_seq (NULL: none) and the
 * first malformed or rewritten object (NULL: none). */
const struct kb_audit__anchor_obj *kb_audit__anchors_beyond(const struct kb_audit__anchors *an,
                                                            uint64_t last_seq);
const struct kb_audit__anchor_obj *kb_audit__anchors_bad(const struct kb_audit__anchors *an,
                                                         bool *rewritten);

void kb_audit__anchors_cleanup(struct kb_audit__anchors *an);

/* -- the verifier's state (verify.c) -------------------------------------------------------- */

#define KB_AUDIT__RING           4096 /* recent records' h, to recognise a copy of one of them */
#define KB_AUDIT__DETAIL(v, ...) snprintf((v)->r.detail, sizeof((v)->r.detail), __VA_ARGS__)

struct kb_audit__keys {
    uint8_t k0[KB_AUDIT_KEY_LEN];
    uint8_t cur[KB_AUDIT_KEY_LEN]; /* K_epoch */
    uint8_t tmp[KB_AUDIT_KEY_LEN]; /* the later-key probe's */
};

struct kb_audit__ring_entry {
    uint64_t seq; /* 0: empty */
    uint8_t h[KB_AUDIT_HASH_LEN];
};

/* What is kept of the first bad line while the lines after it are read (kb_audit__refine). */
struct kb_audit__refine {
    bool on;
    uint64_t pos;  /* its position among all lines fed */
    uint64_t s, e; /* its seq, and the seq that belonged there */
    uint8_t h[KB_AUDIT_HASH_LEN];
    char *copy;
    size_t copy_len;
    bool e_seen;
    uint64_t e_dist; /* lines from the bad line to the first line of seq e */
    bool file_start;
};

struct kb_audit_verify {
    struct kb_audit__keys *keys; /* sodium_malloc'd; NULL without K_0 */
    char want_chain_id[KB_AUDIT_CHAIN_ID_LEN + 1];
    unsigned later_keys;
    uint64_t max_start;
    int64_t now_ms;
    EVP_MD *md;
    EVP_MD_CTX *mdctx;
    EVP_MAC *mac;
    EVP_MAC_CTX *macctx; /* keyed with keys->cur once the chain is known */
    struct kb_audit__anchors anchors;

    char **names;
    size_t nnames;
    bool in_file, finished;
    uint64_t file_line, all_lines;

    bool started; /* the set's first audit_open was read */
    uint8_t prev[KB_AUDIT_HASH_LEN];
    uint64_t expect; /* the next record's seq */
    uint64_t epoch;
    bool sealed;      /* the last record is the seal of epoch */
    bool count_known; /* the epoch's first record is in the set */
    uint64_t epoch_records;
    uint8_t start_prev[KB_AUDIT_HASH_LEN];
    struct kb_audit__ring_entry *ring;
    size_t last_ok_file; /* where the last intact record is: names[last_ok_file], line */
    uint64_t last_ok_line;

    bool found;
    struct kb_audit__refine ref;
    struct kb_audit_verify_result r;
};

/* Records the finding at the current line (with its seq when known); the caller then writes the
 * detail. */
void kb_audit__find(struct kb_audit_verify *v, enum kb_audit_reason reason, bool seq_known,
                    uint64_t seq);

/* Whether the line's h is the link of prev and its body (chain.c's kb_audit_check_link). */
bool kb_audit__links(struct kb_audit_verify *v, const uint8_t *prev, const char *line,
                     const struct kb_audit_line_parts *p);

/* The seq of a line (or of a body): its first member, {"seq":N, even when the rest is not
 * well-formed (verify_body.c). */
bool kb_audit__seq_of(const char *line, size_t len, uint64_t *seq);

/* -- telling bad lines apart (verify_refine.c) ----------------------------------------------- */

/* A record whose seq is not the expected one, the lines before it intact: the finding, either
 * final (changed, duplicated, out_of_order) or to be refined by the lines that follow. Returns 0
 * or KB_ENOMEM. */
int kb_audit__seq_anomaly(struct kb_audit_verify *v, const char *line, size_t len,
                          const struct kb_audit_line_parts *p, const struct kb_audit__body *b,
                          bool file_start);

/* A line after the first bad one, while v->ref.on. */
void kb_audit__refine(struct kb_audit_verify *v, const char *line, size_t len);

/* The refined finding's reason and sentence (at the end). */
void kb_audit__refine_end(struct kb_audit_verify *v);

/* -- the end (verify_report.c) --------------------------------------------------------------- */

/* Fills r->window_data and r->window from the rest of r. */
void kb_audit__window(struct kb_audit_verify_result *r);

#endif
