/*
 * verify.h - the audit log's verifier: reads a chain's lines in order and names the first line
 * that breaks a rule of chain.h, with a stable reason and a sentence; then says what the checks
 * it could make cannot see (the window in which tampering would be undetectable). Also the
 * anchor objects' key names and bodies, which the writer makes and `kbctl audit verify` reads.
 *
 * Pure, like chain.c: no I/O, no clock (the caller gives "now" when it wants a staleness note),
 * never a log. The only secret is K_0 (and the epoch keys derived from it), held in guarded
 * memory for the verifier's lifetime and wiped by kb_audit_verify_destroy; a derived key that is
 * no longer needed is overwritten at once.
 *
 * Use:
 *     kb_audit_verify_new(&opts, &v);
 *     kb_audit_verify_add_anchor_object(v, ...);       each anchor object version, before any line
 *     for each file, in chain order (the caller orders them by their first seq, kb_audit_line_seq):
 *         kb_audit_verify_begin_file(v, name);
 *         kb_audit_verify_line(v, line, len, true);     each line without its "\n"
 *         kb_audit_verify_line(v, rest, n, false);      a last line without "\n" (it was cut)
 *         kb_audit_verify_end_file(v);
 *     kb_audit_verify_finish(v, &result);
 *     kb_audit_verify_destroy(v);
 *
 * After the first bad line the verifier only reads the seq of the lines that follow, to tell
 * the kinds of bad line apart (a dropped line from a swap or a moved one, a copy from a line
 * changed in place); it checks nothing else, so the result names exactly one line.
 */
#ifndef KB_AUDIT_VERIFY_H
#define KB_AUDIT_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/chain.h"
#include "audit/state.h"

/* What is wrong; stable names (kb_audit_reason_name) for scripts and the --json output. */
#define KB_AUDIT_REASON_MAP(X)                                                                     \
    X(KB_AUDIT_OK, "ok")                     /* intact */                                          \
    X(KB_AUDIT_MALFORMED, "malformed")       /* not an audit line: no chain fields, bad JSON */    \
    X(KB_AUDIT_CHANGED, "changed")           /* h does not recompute: the line was edited */       \
    X(KB_AUDIT_DROPPED, "dropped")           /* seq jumps: lines are missing */                    \
    X(KB_AUDIT_SWAPPED, "swapped")           /* two lines exchanged places */                      \
    X(KB_AUDIT_DUPLICATED, "duplicated")     /* a copy of another line */                          \
    X(KB_AUDIT_OUT_OF_ORDER, "out_of_order") /* a line moved elsewhere */                          \
    X(KB_AUDIT_CUT, "cut")                   /* a last line without its "\n", no record at all */  \
    X(KB_AUDIT_BAD_TAG, "bad_tag")           /* the tag is not HMAC(K_epoch, h) */                 \
    X(KB_AUDIT_LATER_KEY, "later_key")       /* tagged with a later epoch's key */                 \
    X(KB_AUDIT_EPOCH_GAP, "epoch_gap")       /* epoch skips or goes back */                        \
    X(KB_AUDIT_NO_SEAL, "no_seal")           /* a new epoch without the seal of the last */        \
    X(KB_AUDIT_AFTER_SEAL, "after_seal")     /* a record of an epoch after its seal */             \
    X(KB_AUDIT_SPLICED, "spliced")           /* a file that does not continue the one before */    \
    X(KB_AUDIT_CHAIN_CHANGED, "chain_changed") /* mode, chain_id or key_id changed */              \
    X(KB_AUDIT_WRONG_KEY, "wrong_key")         /* the log is not of the given key file's chain */  \
    X(KB_AUDIT_TRUNCATED_BEFORE_ANCHOR, "truncated_before_anchor")                                 \
    X(KB_AUDIT_ANCHOR_MISMATCH, "anchor_mismatch")   /* an anchor disagrees with the log */        \
    X(KB_AUDIT_ANCHOR_REWRITTEN, "anchor_rewritten") /* an anchor key with 2+ versions, deleted */

enum kb_audit_reason {
#define KB_X_ENUM(name, text) name,
    KB_AUDIT_REASON_MAP(KB_X_ENUM)
#undef KB_X_ENUM
};

/* "changed", ... Static string; "unknown" for a value outside the enum. */
const char *kb_audit_reason_name(enum kb_audit_reason reason);

/* -- anchors --------------------------------------------------------------------------------- */

/* Longest log file basename an anchor names. */
#define KB_AUDIT_ANCHOR_FILE_MAX 255
/* Longest anchor body kb_audit_anchor_parse accepts. */
#define KB_AUDIT_ANCHOR_BODY_MAX 2048

/* One anchor: the chain head at seq, as the writer put it in S3. */
struct kb_audit_anchor {
    char chain_id[KB_AUDIT_CHAIN_ID_LEN + 1];
    char file[KB_AUDIT_ANCHOR_FILE_MAX + 1]; /* the log file's basename when it was written */
    uint64_t seq;
    uint64_t epoch;
    uint8_t h[KB_AUDIT_HASH_LEN];
    uint8_t tag[KB_AUDIT_HASH_LEN];
    bool has_tag; /* chain hmac-sha256 */
    char ts[25];  /* RFC 3339 with milliseconds, "2026-12-04T03:28:01.123Z" */
};

/*
 * The object key of the anchor of seq in chain chain_id: "<prefix><chain_id>/<seq as 20-digit
 * zero-padded decimal>.json", written with a NUL into out[0..cap). prefix (may be "" or NULL) is
 * used as given: end it with "/" for a folder. Returns 0, KB_EINVAL (chain_id not 32 lowercase
 * hex digits) or KB_ETOOBIG (cap too small). Stable: the writer and kbctl share it.
 */
int kb_audit_anchor_key(const char *prefix, const char *chain_id, uint64_t seq, char *out,
                        size_t cap);

/* Reads the chain id and seq from an object key made by kb_audit_anchor_key with prefix.
 * Returns 0, or KB_EPARSE when key is not such a name. */
int kb_audit_anchor_key_parse(const char *prefix, const char *key, size_t key_len,
                              char chain_id[KB_AUDIT_CHAIN_ID_LEN + 1], uint64_t *seq);

/* The anchor's body, {"v":1,"chain_id":..,"file":..,"seq":N,"epoch":E,"h":..,"tag":..,"ts":..}
 * ("tag" only when a->has_tag), without a newline or NUL, into out[0..cap); *len its length.
 * Returns 0, KB_EINVAL (a field the parser would refuse) or KB_ETOOBIG. */
int kb_audit_anchor_body(const struct kb_audit_anchor *a, char *out, size_t cap, size_t *len);

/* Parses an anchor body. Returns 0 and fills out, or KB_EPARSE with a sentence naming the field
 * in why[0..why_len), or KB_ENOMEM. Unknown members are refused, so that a body says one thing. */
int kb_audit_anchor_parse(const char *body, size_t len, struct kb_audit_anchor *out, char *why,
                          size_t why_len);

/* -- the verifier ---------------------------------------------------------------------------- */

struct kb_audit_verify;

struct kb_audit_verify_opts {
    /* K_0 (KB_AUDIT_KEY_LEN bytes, borrowed for the call: copied into guarded memory), or NULL:
     * in chain hmac-sha256 the tags are then not checked, and the result says so. */
    const uint8_t *k0;
    /* The key file's chain id, checked against the log's; NULL: not checked. */
    const char *chain_id;
    /* How many later epochs' keys a failing tag is tried with, to tell later_key from bad_tag.
     * 0: 64. */
    unsigned later_keys;
    /* The highest epoch a set of files may start at: its key is derived from K_0 one HKDF step
     * (about 5 us) per epoch. 0: 2^24 (32 years of one-minute epochs, ~80 s to derive). */
    uint64_t max_start_epoch;
    /* The caller's clock (ms since the Unix epoch) for the note that a log's last record is
     * older than one epoch; 0: no note. */
    int64_t now_ms;
    /* The S3 key prefix the anchor objects were listed under (kb_audit_anchor_key's prefix);
     * NULL: "". */
    const char *anchor_prefix;
};

/* A new verifier. Returns 0 and *out (caller frees with kb_audit_verify_destroy), KB_EINVAL
 * (chain_id not 32 hex digits) or KB_ENOMEM. */
int kb_audit_verify_new(const struct kb_audit_verify_opts *opts, struct kb_audit_verify **out);

/* Wipes the keys and frees v and every string its result points to. NULL is allowed. */
void kb_audit_verify_destroy(struct kb_audit_verify *v);

/*
 * One version of an object listed under the anchor prefix (ListObjectVersions, every page):
 * key and version_id borrowed for the call; body[0..body_len) the version's content (GetObject
 * with its versionId), NULL for a delete marker. Add every version of every key, before the
 * first line. Objects of other chains are counted and otherwise ignored; an object that is not
 * an anchor under this prefix is reported (anchor_mismatch), as is a key with more than one
 * version or a delete marker (anchor_rewritten). Returns 0, KB_EINVAL (after the first line) or
 * KB_ENOMEM.
 */
int kb_audit_verify_add_anchor_object(struct kb_audit_verify *v, const char *key,
                                      const char *version_id, bool delete_marker, const char *body,
                                      size_t body_len);

/* Starts the next file of the set; name (borrowed for the call, copied) is what results name.
 * Returns 0, KB_EINVAL (a file already open) or KB_ENOMEM. */
int kb_audit_verify_begin_file(struct kb_audit_verify *v, const char *name);

/*
 * The file's next line, line[0..len) without its "\n" (borrowed for the call). newline false:
 * the file's last bytes, which had no "\n" (the verifier reports them as cut). A line longer than
 * KB_AUDIT_LINE_MAX - 1 may be passed cut short at KB_AUDIT_LINE_MAX bytes: it is malformed
 * either way. Returns 0 (also for a bad line: see the result), KB_EINVAL (no file open) or
 * KB_ENOMEM.
 */
int kb_audit_verify_line(struct kb_audit_verify *v, const char *line, size_t len, bool newline);

/* Ends the current file. Returns 0 or KB_EINVAL (no file open). */
int kb_audit_verify_end_file(struct kb_audit_verify *v);

/* Who can still change what, given what was verified (see kb_audit_verify_result.window). */
struct kb_audit_window {
    /* The first seq whose record could be rewritten, with every later one, without the checks
     * made here noticing, by someone who holds the host now: in hmac-sha256 with the key, the
     * records after the last seal and after the last anchor; otherwise after the last anchor. 0:
     * nothing was verified. */
    uint64_t rewritable_from_seq;
    /* The first seq from which the end of the log could be dropped without trace (a clean cut at
     * a line boundary): after the last anchor; without anchors, any record (first_seq). */
    uint64_t droppable_from_seq;
    bool needs_epoch_key; /* rewriting needs the current epoch key (hmac-sha256, tags checked) */
};

/* What the verifier found. Strings point into the verifier: valid until
 * kb_audit_verify_destroy. */
struct kb_audit_verify_result {
    enum kb_audit_reason reason; /* KB_AUDIT_OK when everything checked was intact */
    const char *file;            /* the first bad line's file; NULL for an anchor-only finding */
    uint64_t line;               /* its 1-based number in that file; 0 with file NULL */
    bool seq_known;              /* the line's seq could be read */
    uint64_t seq;
    char detail[400]; /* a sentence: what does not hold there */

    bool have_chain; /* an audit_open was read: mode, chain_id, key_id are set */
    enum kb_audit_mode mode;
    char chain_id[KB_AUDIT_CHAIN_ID_LEN + 1];
    char key_id[KB_AUDIT_KEY_ID_LEN + 1];
    int64_t epoch_seconds; /* from the last audit_open; 0: unknown */
    size_t files;          /* files begun */
    size_t empty_files;    /* files without a line */
    /* Records verified intact (before the first bad line), their seq and epoch range. */
    uint64_t records;
    uint64_t first_seq, last_seq;
    uint64_t first_epoch, last_epoch;
    uint64_t seals;
    uint64_t records_lost;     /* the sum of the audit_lost records' counts */
    uint64_t writer_cut_bytes; /* partial lines the writer cut after crashes (audit_open) */
    char last_ts[25];          /* of the last intact record; "" when none */
    bool ends_with_stop;       /* the last intact record is a "stop" (a clean stop) */
    bool stale;                /* now_ms is more than one epoch after last_ts */
    bool tags_verified; /* every intact record's tag was checked with the key (hmac-sha256) */
    bool sealed;        /* a seal was verified: */
    uint64_t last_seal_seq, last_seal_epoch;
    char last_seal_ts[25];
    /* Anchors of this chain (object versions) that matched a verified record, the last of them,
     * those before first_seq (not checkable here), those of other chains, and the anchor keys
     * that were rewritten (2+ versions or a delete marker). */
    uint64_t anchors_matched;
    bool anchored;
    uint64_t last_anchor_seq;
    char last_anchor_ts[25];
    uint64_t anchors_before_start, anchors_other_chains, anchors_rewritten;
    struct kb_audit_window window_data;
    char window[900]; /* the window as sentences */
};

/*
 * Ends the verification: checks what only the end can show (anchors beyond the last record,
 * rewritten anchors) and fills out. Returns 0 or KB_EINVAL (a file still open). Call once.
 */
int kb_audit_verify_finish(struct kb_audit_verify *v, struct kb_audit_verify_result *out);

/* The seq of line[0..len) (a record's first member), for ordering files. Returns 0 or
 * KB_EPARSE. */
int kb_audit_line_seq(const char *line, size_t len, uint64_t *seq);

#endif
