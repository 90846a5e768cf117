/*
 * verify.c - the streaming verifier (verify.h): each line is checked against the one before it,
 * in the order chain.h's rules give; the first that fails is the finding. Then the lines after
 * it are only read for their seq, to say whether the bad line was dropped, swapped, moved,
 * duplicated or changed in place (verify.h).
 *
 * Speed: a log of millions of lines must verify in seconds, so the hot path keeps one SHA-256
 * context and one HMAC context keyed with the current epoch key, instead of chain.c's one-shot
 * calls (which fetch the algorithm and allocate a context per call: 3.3 us a line against 0.9).
 * They compute exactly chain.c's h and tag; the unit tests build every chain they verify with
 * chain.c. The slow paths (the first key, the later-key probe) use chain.c itself.
 */
#include "audit/verify.h"

#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/verify_internal.h"
#include "common/err.h"

#define KB_AUDIT__RING           4096 /* recent records' h, to recognise a copy of one of them */
#define S_LATER_KEYS             64
#define S_MAX_START              ((uint64_t)1 << 24)
#define KB_AUDIT__DETAIL(v, ...) snprintf((v)->r.detail, sizeof((v)->r.detail), __VA_ARGS__)

static const uint8_t s_h0[KB_AUDIT_HASH_LEN];

const char *kb_audit_reason_name(enum kb_audit_reason reason)
{
    static const char *const names[] = {
#define KB_X_NAME(name, text) text,
        KB_AUDIT_REASON_MAP(KB_X_NAME)
#undef KB_X_NAME
    };

    if ((size_t)reason >= sizeof(names) / sizeof(names[0]))
        return "unknown";
    return names[reason];
}

/* -- set-up ---------------------------------------------------------------------------------- */

int kb_audit_verify_new(const struct kb_audit_verify_opts *opts, struct kb_audit_verify **out)
{
    struct kb_audit_verify *v;
    const char *prefix = opts->anchor_prefix != NULL ? opts->anchor_prefix : "";

    *out = NULL;
    if (opts->chain_id != NULL &&
        (strlen(opts->chain_id) != KB_AUDIT_CHAIN_ID_LEN ||
         strspn(opts->chain_id, "0123456789abcdef") != KB_AUDIT_CHAIN_ID_LEN))
        return KB_EINVAL;
    if (sodium_init() < 0)
        return KB_ENOMEM;
    v = calloc(1, sizeof(*v));
    if (v == NULL)
        return KB_ENOMEM;
    v->later_keys = opts->later_keys ? opts->later_keys : S_LATER_KEYS;
    v->max_start = opts->max_start_epoch ? opts->max_start_epoch : S_MAX_START;
    v->now_ms = opts->now_ms;
    if (opts->chain_id != NULL)
        memcpy(v->want_chain_id, opts->chain_id, KB_AUDIT_CHAIN_ID_LEN + 1);
    v->ring = calloc(KB_AUDIT__RING, sizeof(*v->ring));
    v->anchors.prefix = malloc(strlen(prefix) + 1);
    v->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    v->mdctx = EVP_MD_CTX_new();
    if (opts->k0 != NULL) {
        v->keys = sodium_malloc(sizeof(*v->keys));
        v->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        v->macctx = v->mac != NULL ? EVP_MAC_CTX_new(v->mac) : NULL;
        if (v->keys != NULL)
            memcpy(v->keys->k0, opts->k0, KB_AUDIT_KEY_LEN);
    }
    if (v->ring == NULL || v->anchors.prefix == NULL || v->md == NULL || v->mdctx == NULL ||
        (opts->k0 != NULL && (v->keys == NULL || v->macctx == NULL))) {
        kb_audit_verify_destroy(v);
        return KB_ENOMEM;
    }
    memcpy(v->anchors.prefix, prefix, strlen(prefix) + 1);
    *out = v;
    return 0;
}

void kb_audit_verify_destroy(struct kb_audit_verify *v)
{
    if (v == NULL)
        return;
    if (v->keys != NULL)
        sodium_free(v->keys);    /* wipes */
    EVP_MAC_CTX_free(v->macctx); /* cleanses its copy of the key */
    EVP_MAC_free(v->mac);
    EVP_MD_CTX_free(v->mdctx);
    EVP_MD_free(v->md);
    kb_audit__anchors_cleanup(&v->anchors);
    for (size_t i = 0; i < v->nnames; i++)
        free(v->names[i]);
    free(v->names);
    free(v->ring);
    free(v->ref.copy);
    free(v);
}

int kb_audit_verify_add_anchor_object(struct kb_audit_verify *v, const char *key,
                                      const char *version_id, bool delete_marker, const char *body,
                                      size_t body_len)
{
    if (v->all_lines > 0 || v->anchors.sorted)
        return KB_EINVAL;
    return kb_audit__anchors_add(&v->anchors, key, version_id != NULL ? version_id : "",
                                 delete_marker, body, body_len);
}

int kb_audit_verify_begin_file(struct kb_audit_verify *v, const char *name)
{
    size_t n = strlen(name);
    char **names;

    if (v->in_file || v->finished)
        return KB_EINVAL;
    names = realloc(v->names, (v->nnames + 1) * sizeof(*names));
    if (names == NULL)
        return KB_ENOMEM;
    v->names = names;
    v->names[v->nnames] = malloc(n + 1);
    if (v->names[v->nnames] == NULL)
        return KB_ENOMEM;
    memcpy(v->names[v->nnames++], name, n + 1);
    v->in_file = true;
    v->file_line = 0;
    v->r.files++;
    return 0;
}

int kb_audit_verify_end_file(struct kb_audit_verify *v)
{
    if (!v->in_file)
        return KB_EINVAL;
    if (v->file_line == 0)
        v->r.empty_files++;
    v->in_file = false;
    return 0;
}

/* -- the hot path's hash and tag ------------------------------------------------------------- */

/* h = SHA-256(prev || a[0..alen) || b[0..blen) || "}"): chain.c's kb_audit_link, with the body
 * in two pieces (the seq rewrite check splices a number into it). */
static bool s_hash(struct kb_audit_verify *v, const uint8_t *prev, const char *a, size_t alen,
                   const char *b, size_t blen, uint8_t out[KB_AUDIT_HASH_LEN])
{
    unsigned int n = 0;

    return EVP_DigestInit_ex(v->mdctx, v->md, NULL) == 1 &&
           EVP_DigestUpdate(v->mdctx, prev, KB_AUDIT_HASH_LEN) == 1 &&
           EVP_DigestUpdate(v->mdctx, a, alen) == 1 &&
           (blen == 0 || EVP_DigestUpdate(v->mdctx, b, blen) == 1) &&
           EVP_DigestUpdate(v->mdctx, "}", 1) == 1 && EVP_DigestFinal_ex(v->mdctx, out, &n) == 1 &&
           n == KB_AUDIT_HASH_LEN;
}

/* Whether the line's h is the link of prev and its body. */
bool kb_audit__links(struct kb_audit_verify *v, const uint8_t *prev, const char *line,
                     const struct kb_audit_line_parts *p)
{
    uint8_t h[KB_AUDIT_HASH_LEN];

    return s_hash(v, prev, line, p->body_len, NULL, 0, h) && memcmp(h, p->h, sizeof(h)) == 0;
}

static bool s_rekey(struct kb_audit_verify *v)
{
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };

    return EVP_MAC_init(v->macctx, v->keys->cur, KB_AUDIT_KEY_LEN, params) == 1;
}

/* Whether tag = HMAC(K_epoch, h) (chain.c's kb_audit_check_tag with the key already set). */
static bool s_tag_ok(struct kb_audit_verify *v, const struct kb_audit_line_parts *p)
{
    uint8_t want[KB_AUDIT_HASH_LEN];
    size_t n = 0;
    bool ok = EVP_MAC_init(v->macctx, NULL, 0, NULL) == 1 &&
              EVP_MAC_update(v->macctx, p->h, sizeof(p->h)) == 1 &&
              EVP_MAC_final(v->macctx, want, &n, sizeof(want)) == 1 && n == sizeof(want) &&
              sodium_memcmp(want, p->tag, sizeof(want)) == 0;

    sodium_memzero(want, sizeof(want));
    return ok;
}

/* The d in 1..later_keys whose epoch key K_{epoch+d} tags the line, or 0. */
static unsigned s_later_key(struct kb_audit_verify *v, uint64_t epoch,
                            const struct kb_audit_line_parts *p)
{
    unsigned found = 0;

    memcpy(v->keys->tmp, v->keys->cur, KB_AUDIT_KEY_LEN);
    for (unsigned d = 1; d <= v->later_keys && found == 0; d++) {
        if (kb_audit_key_next(v->keys->tmp, epoch + d, v->keys->tmp) != 0)
            break;
        if (kb_audit_check_tag(v->keys->tmp, p->h, p->tag) == 1)
            found = d;
    }
    sodium_memzero(v->keys->tmp, KB_AUDIT_KEY_LEN);
    return found;
}

/* -- findings -------------------------------------------------------------------------------- */

/* Records the finding at the current line (its seq when known); the detail is set after. */
void kb_audit__find(struct kb_audit_verify *v, enum kb_audit_reason reason, bool seq_known,
                    uint64_t seq)
{
    v->found = true;
    v->r.reason = reason;
    v->r.file = v->names[v->nnames - 1];
    v->r.line = v->file_line;
    v->r.seq_known = seq_known;
    v->r.seq = seq_known ? seq : 0;
}

/* -- the checks ------------------------------------------------------------------------------ */

static bool s_lower_hex(struct kb_audit__span s, size_t len)
{
    if (s.p == NULL || s.len != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!((s.p[i] >= '0' && s.p[i] <= '9') || (s.p[i] >= 'a' && s.p[i] <= 'f')))
            return false;
    }
    return true;
}

/* An audit_open's own members, well-formed; false with the detail set. */
static bool s_open_fields(struct kb_audit_verify *v, const struct kb_audit__body *b,
                          enum kb_audit_mode *mode, uint8_t prev_h[KB_AUDIT_HASH_LEN])
{
    if (b->chain.p == NULL || kb_audit_mode_from_name(b->chain.p, b->chain.len, mode) != 0) {
        KB_AUDIT__DETAIL(v, "audit_open: \"chain\" must be \"sha256\" or \"hmac-sha256\"");
        return false;
    }
    if (!s_lower_hex(b->chain_id, KB_AUDIT_CHAIN_ID_LEN)) {
        KB_AUDIT__DETAIL(v, "audit_open: \"chain_id\" must be %d lowercase hex digits",
                         KB_AUDIT_CHAIN_ID_LEN);
        return false;
    }
    if (*mode == KB_AUDIT_MODE_HMAC ? !s_lower_hex(b->key_id, KB_AUDIT_KEY_ID_LEN)
                                    : b->key_id.p != NULL) {
        KB_AUDIT__DETAIL(v,
                         "audit_open: \"key_id\" must be %d lowercase hex digits in chain "
                         "hmac-sha256 and absent in chain sha256",
                         KB_AUDIT_KEY_ID_LEN);
        return false;
    }
    if (!s_lower_hex(b->prev_h, KB_AUDIT_HEX_LEN) ||
        kb_audit_unhex(b->prev_h.p, b->prev_h.len, prev_h, KB_AUDIT_HASH_LEN) != 0) {
        KB_AUDIT__DETAIL(v, "audit_open: \"prev_h\" must be %d lowercase hex digits",
                         KB_AUDIT_HEX_LEN);
        return false;
    }
    return true;
}

static void s_copy_span(char *out, size_t cap, struct kb_audit__span s)
{
    size_t n = s.p != NULL && s.len < cap ? s.len : 0;

    if (n > 0)
        memcpy(out, s.p, n);
    out[n] = '\0';
}

/* The set's first line. Returns 0 (go on), 1 (a finding) or a negative error. */
static int s_start(struct kb_audit_verify *v, const char *line, const struct kb_audit_line_parts *p,
                   const struct kb_audit__body *b)
{
    enum kb_audit_mode mode;
    uint8_t prev[KB_AUDIT_HASH_LEN];
    char kid[KB_AUDIT_KEY_ID_LEN + 1];

    if (!kb_audit__span_is(b->event, "audit_open")) {
        kb_audit__find(v, KB_AUDIT_DROPPED, true, b->seq);
        KB_AUDIT__DETAIL(
            v,
            "the first file does not begin with an audit_open record: the records before "
            "seq %" PRIu64 " are missing",
            b->seq);
        return 1;
    }
    if (!s_open_fields(v, b, &mode, prev)) {
        kb_audit__find(v, KB_AUDIT_MALFORMED, true, b->seq);
        return 1;
    }
    if (p->mode != mode) {
        kb_audit__find(v, KB_AUDIT_CHAIN_CHANGED, true, b->seq);
        KB_AUDIT__DETAIL(v, "its chain fields are those of %s, its audit_open says %s",
                         kb_audit_mode_name(p->mode), kb_audit_mode_name(mode));
        return 1;
    }
    /* The line itself first: a changed key_id or chain_id is a changed line, not a wrong key. */
    if (!kb_audit__links(v, prev, line, p)) {
        kb_audit__find(v, KB_AUDIT_CHANGED, true, b->seq);
        KB_AUDIT__DETAIL(v, "h does not recompute: the line was changed after it was written");
        return 1;
    }
    v->r.have_chain = true;
    v->r.mode = mode;
    s_copy_span(v->r.chain_id, sizeof(v->r.chain_id), b->chain_id);
    s_copy_span(v->r.key_id, sizeof(v->r.key_id), b->key_id);
    if (b->has_epoch_seconds)
        v->r.epoch_seconds = b->epoch_seconds;
    if (v->keys != NULL) {
        if (mode == KB_AUDIT_MODE_SHA256) {
            kb_audit__find(v, KB_AUDIT_WRONG_KEY, true, b->seq);
            KB_AUDIT__DETAIL(
                v, "the log is a sha256 chain (no tags) but a key file was given: the key's "
                   "chain is hmac-sha256 (was the log replaced by an unkeyed one?)");
            return 1;
        }
        if (kb_audit_key_id(v->keys->k0, kid) != 0)
            return KB_ENOMEM;
        if (strcmp(kid, v->r.key_id) != 0) {
            kb_audit__find(v, KB_AUDIT_WRONG_KEY, true, b->seq);
            KB_AUDIT__DETAIL(v, "the log's key id is %s, the key file's is %s", v->r.key_id, kid);
            return 1;
        }
    }
    if (v->want_chain_id[0] != '\0' && strcmp(v->want_chain_id, v->r.chain_id) != 0) {
        kb_audit__find(v, KB_AUDIT_WRONG_KEY, true, b->seq);
        KB_AUDIT__DETAIL(v, "the log is chain %s, the key file is of chain %s", v->r.chain_id,
                         v->want_chain_id);
        return 1;
    }
    if (b->seq == 0 || (b->seq == 1 && (memcmp(prev, s_h0, sizeof(prev)) != 0 || b->epoch != 0))) {
        kb_audit__find(v, KB_AUDIT_SPLICED, true, b->seq);
        KB_AUDIT__DETAIL(v, "a chain begins at seq 1, epoch 0, after h_0 (a prev_h of zeros)");
        return 1;
    }
    if (v->keys != NULL) {
        if (b->epoch > v->max_start) {
            kb_audit__find(v, KB_AUDIT_EPOCH_GAP, true, b->seq);
            KB_AUDIT__DETAIL(v,
                             "the files start at epoch %" PRIu64 ", beyond the %" PRIu64
                             " epochs the verifier derives keys for",
                             b->epoch, v->max_start);
            return 1;
        }
        memcpy(v->keys->cur, v->keys->k0, KB_AUDIT_KEY_LEN);
        for (uint64_t e = 1; e <= b->epoch; e++) {
            if (kb_audit_key_next(v->keys->cur, e, v->keys->cur) != 0)
                return KB_ENOMEM;
        }
        if (!s_rekey(v))
            return KB_ENOMEM;
    }
    v->started = true;
    memcpy(v->prev, prev, sizeof(prev));
    memcpy(v->start_prev, prev, sizeof(prev));
    v->expect = b->seq;
    v->epoch = b->epoch;
    /* The writer counts an epoch's records from its first, or from its own start after a
     * restart (writer_work.c), so a seal's count is checkable from either. */
    v->count_known = b->seq == 1 || kb_audit__span_is(b->reason, "start");
    v->r.writer_cut_bytes += b->cut_bytes;
    v->r.first_seq = b->seq;
    v->r.first_epoch = b->epoch;
    kb_audit__anchors_start(&v->anchors, v->r.chain_id, &v->r);
    return 0;
}

/* An audit_open after the first: the same chain, continuing the line before it. */
static int s_reopen(struct kb_audit_verify *v, const struct kb_audit__body *b, bool file_start)
{
    enum kb_audit_mode mode;
    uint8_t prev[KB_AUDIT_HASH_LEN];

    if (!s_open_fields(v, b, &mode, prev)) {
        kb_audit__find(v, KB_AUDIT_MALFORMED, true, b->seq);
        return 1;
    }
    if (mode != v->r.mode || !kb_audit__span_is(b->chain_id, v->r.chain_id) ||
        (mode == KB_AUDIT_MODE_HMAC && !kb_audit__span_is(b->key_id, v->r.key_id))) {
        kb_audit__find(v, KB_AUDIT_CHAIN_CHANGED, true, b->seq);
        KB_AUDIT__DETAIL(v, "this audit_open changes the chain's %s",
                         mode != v->r.mode                                ? "mode"
                         : !kb_audit__span_is(b->chain_id, v->r.chain_id) ? "chain_id"
                                                                          : "key_id");
        return 1;
    }
    if (memcmp(prev, v->prev, sizeof(prev)) != 0) {
        kb_audit__find(v, KB_AUDIT_SPLICED, true, b->seq);
        KB_AUDIT__DETAIL(v,
                         "its audit_open's prev_h is not the h of the line before it: it does not "
                         "continue %s",
                         file_start ? "the previous file" : "the chain");
        return 1;
    }
    if (b->has_epoch_seconds)
        v->r.epoch_seconds = b->epoch_seconds;
    if (kb_audit__span_is(b->reason, "start")) {
        v->epoch_records = 0; /* the writer's count of the epoch restarts here */
        v->count_known = true;
    }
    v->r.writer_cut_bytes += b->cut_bytes;
    return 0;
}

/* The epoch rules: +1 only right after a seal, nothing of an epoch after its seal. */
static int s_epoch(struct kb_audit_verify *v, const struct kb_audit__body *b)
{
    if (b->epoch == v->epoch) {
        if (!v->sealed)
            return 0;
        kb_audit__find(v, KB_AUDIT_AFTER_SEAL, true, b->seq);
        KB_AUDIT__DETAIL(v,
                         "a record of epoch %" PRIu64 " after the seal of epoch %" PRIu64
                         " (seq %" PRIu64 ")",
                         b->epoch, v->epoch, v->r.last_seal_seq);
        return 1;
    }
    if (b->epoch == v->epoch + 1 && v->sealed) {
        if (v->keys != NULL &&
            (kb_audit_key_next(v->keys->cur, b->epoch, v->keys->cur) != 0 || !s_rekey(v)))
            return KB_ENOMEM;
        v->epoch = b->epoch;
        v->sealed = false;
        v->count_known = true;
        v->epoch_records = 0;
        return 0;
    }
    if (b->epoch == v->epoch + 1) {
        kb_audit__find(v, KB_AUDIT_NO_SEAL, true, b->seq);
        KB_AUDIT__DETAIL(v, "epoch %" PRIu64 " begins without the seal of epoch %" PRIu64, b->epoch,
                         v->epoch);
    } else if (b->epoch > v->epoch) {
        kb_audit__find(v, KB_AUDIT_EPOCH_GAP, true, b->seq);
        KB_AUDIT__DETAIL(v,
                         "epoch jumps from %" PRIu64 " to %" PRIu64 ": epoch%s %" PRIu64
                         "..%" PRIu64 " %s missing",
                         v->epoch, b->epoch, b->epoch - v->epoch > 2 ? "s" : "", v->epoch + 1,
                         b->epoch - 1, b->epoch - v->epoch > 2 ? "are" : "is");
    } else {
        kb_audit__find(v, KB_AUDIT_EPOCH_GAP, true, b->seq);
        KB_AUDIT__DETAIL(v, "epoch goes back from %" PRIu64 " to %" PRIu64, v->epoch, b->epoch);
    }
    return 1;
}

/* An audit_open that does not link to the line before it but is consistent in itself (its h
 * links its own prev_h and body): a file of another chain, or of another branch of this one -
 * spliced, not changed. Returns 1 (the finding) or 0 (not such a line). */
static int s_foreign(struct kb_audit_verify *v, const char *line,
                     const struct kb_audit_line_parts *p, const struct kb_audit__body *b,
                     bool file_start)
{
    enum kb_audit_mode mode;
    uint8_t prev[KB_AUDIT_HASH_LEN];
    bool other;

    if (!s_open_fields(v, b, &mode, prev) || !kb_audit__links(v, prev, line, p))
        return 0;
    other = !kb_audit__span_is(b->chain_id, v->r.chain_id);
    if (!other && b->seq != v->expect)
        return 0; /* the same chain further on: lines are missing */
    kb_audit__find(v, KB_AUDIT_SPLICED, true, b->seq);
    if (other)
        KB_AUDIT__DETAIL(v, "this %s is of chain %.*s, the lines before it of chain %s",
                         file_start ? "file" : "audit_open", (int)b->chain_id.len, b->chain_id.p,
                         v->r.chain_id);
    else
        KB_AUDIT__DETAIL(v,
                         "its audit_open's prev_h is not the h of the line before it: it does "
                         "not continue %s (another branch of the chain)",
                         file_start ? "the previous file" : "the chain");
    return 1;
}

/* A line after the set's first. Returns 0 (go on), 1 (a finding) or a negative error. */
static int s_continue(struct kb_audit_verify *v, const char *line, size_t len,
                      const struct kb_audit_line_parts *p, const struct kb_audit__body *b)
{
    bool file_start = v->file_line == 1, open = kb_audit__span_is(b->event, "audit_open");
    bool linked = kb_audit__links(v, v->prev, line, p);
    int rc;

    if (!linked && open && (rc = s_foreign(v, line, p, b, file_start)) != 0)
        return rc;
    if (b->seq != v->expect) {
        rc = kb_audit__seq_anomaly(v, line, len, p, b, file_start);
        return rc < 0 ? rc : 1;
    }
    if (!linked) {
        kb_audit__find(v, KB_AUDIT_CHANGED, true, b->seq);
        KB_AUDIT__DETAIL(v, "h does not recompute: the line was changed after it was written");
        return 1;
    }
    if (p->mode != v->r.mode) {
        kb_audit__find(v, KB_AUDIT_CHAIN_CHANGED, true, b->seq);
        KB_AUDIT__DETAIL(v, "the line has the chain fields of %s in a %s chain (a tag was %s)",
                         kb_audit_mode_name(p->mode), kb_audit_mode_name(v->r.mode),
                         p->mode == KB_AUDIT_MODE_SHA256 ? "removed" : "added");
        return 1;
    }
    if (open && (rc = s_reopen(v, b, file_start)) != 0)
        return rc;
    if ((rc = s_epoch(v, b)) != 0)
        return rc;
    if (file_start && !open) {
        kb_audit__find(v, KB_AUDIT_SPLICED, true, b->seq);
        KB_AUDIT__DETAIL(v, "the file does not begin with an audit_open record (it continues the "
                            "chain, but the writer begins every file with one)");
        return 1;
    }
    return 0;
}

/* Every line's last checks (tag, anchors, the seal's count), then the record is intact. */
static int s_tail(struct kb_audit_verify *v, const struct kb_audit_line_parts *p,
                  const struct kb_audit__body *b, bool first)
{
    bool seal = kb_audit__span_is(b->event, "seal");
    bool lost = kb_audit__span_is(b->event, "audit_lost");
    struct kb_audit__ring_entry *slot;
    unsigned d;

    if (v->keys != NULL && v->r.mode == KB_AUDIT_MODE_HMAC && !s_tag_ok(v, p)) {
        d = s_later_key(v, b->epoch, p);
        kb_audit__find(v, d > 0 ? KB_AUDIT_LATER_KEY : KB_AUDIT_BAD_TAG, true, b->seq);
        if (d > 0)
            KB_AUDIT__DETAIL(
                v,
                "its tag verifies under the key of epoch %" PRIu64
                ", not under that of its epoch %" PRIu64
                ": it was tagged after its epoch ended, by someone who held a later key",
                b->epoch + d, b->epoch);
        else
            KB_AUDIT__DETAIL(v,
                             "its tag is not HMAC(K_%" PRIu64 ", h): it was written or changed "
                             "without the key of its epoch",
                             b->epoch);
        return 1;
    }
    if (kb_audit__anchors_check(&v->anchors, b->seq, b->epoch, p, first, &v->r, v->r.detail,
                                sizeof(v->r.detail)) != KB_AUDIT_OK) {
        char detail[sizeof(v->r.detail)];

        memcpy(detail, v->r.detail, sizeof(detail));
        kb_audit__find(v, KB_AUDIT_ANCHOR_MISMATCH, true, b->seq);
        memcpy(v->r.detail, detail, sizeof(detail));
        return 1;
    }
    if ((seal && !b->has_records) || (lost && !b->has_count)) {
        kb_audit__find(v, KB_AUDIT_MALFORMED, true, b->seq);
        KB_AUDIT__DETAIL(v, "a %s record without its \"%s\"", seal ? "seal" : "audit_lost",
                         seal ? "records" : "count");
        return 1;
    }
    if (seal && v->count_known && b->records != v->epoch_records + 1) {
        uint64_t have = v->epoch_records + 1;

        kb_audit__find(v, b->records > have ? KB_AUDIT_DROPPED : KB_AUDIT_CHANGED, true, b->seq);
        KB_AUDIT__DETAIL(v,
                         "the seal of epoch %" PRIu64 " counts %" PRIu64
                         " records, the log has %" PRIu64 " of that epoch: records were %s",
                         b->epoch, b->records, have,
                         b->records > have ? "removed and the chain recomputed" : "added");
        return 1;
    }
    /* intact */
    v->epoch_records++;
    v->sealed = seal;
    if (seal) {
        v->r.sealed = true;
        v->r.seals++;
        v->r.last_seal_seq = b->seq;
        v->r.last_seal_epoch = b->epoch;
        s_copy_span(v->r.last_seal_ts, sizeof(v->r.last_seal_ts), b->ts);
    }
    if (lost)
        v->r.records_lost += b->count;
    v->r.records++;
    v->r.last_seq = b->seq;
    v->r.last_epoch = b->epoch;
    s_copy_span(v->r.last_ts, sizeof(v->r.last_ts), b->ts);
    v->r.ends_with_stop = kb_audit__span_is(b->event, "stop");
    v->r.tags_verified = v->keys != NULL && v->r.mode == KB_AUDIT_MODE_HMAC;
    v->last_ok_file = v->nnames - 1;
    v->last_ok_line = v->file_line;
    memcpy(v->prev, p->h, sizeof(v->prev));
    slot = &v->ring[b->seq % KB_AUDIT__RING];
    slot->seq = b->seq;
    memcpy(slot->h, p->h, sizeof(slot->h));
    v->expect = b->seq + 1;
    return 0;
}

/* A line of a file, before any finding. Returns 0, 1 (a finding) or a negative error. */
static int s_check(struct kb_audit_verify *v, const char *line, size_t len, bool newline)
{
    struct kb_audit_line_parts p;
    struct kb_audit__body b;
    const char *why = NULL;
    uint64_t seq = 0;
    bool first = !v->started, known;
    int rc;

    if (!newline) {
        known = kb_audit__seq_of(line, len, &seq);
        kb_audit__find(v, KB_AUDIT_CUT, known, seq);
        KB_AUDIT__DETAIL(
            v,
            "the file ends inside a line (%zu bytes without a \"\\n\"): it was cut short, "
            "or a write was torn",
            len);
        return 1;
    }
    if (len >= KB_AUDIT_LINE_MAX) {
        known = kb_audit__seq_of(line, len, &seq);
        kb_audit__find(v, KB_AUDIT_MALFORMED, known, seq);
        KB_AUDIT__DETAIL(v, "the line is longer than a record can be (%d bytes)",
                         KB_AUDIT_LINE_MAX - 1);
        return 1;
    }
    if (kb_audit__split_strict(line, len, &p) != 0) {
        known = kb_audit__seq_of(line, len, &seq);
        kb_audit__find(v, KB_AUDIT_MALFORMED, known, seq);
        KB_AUDIT__DETAIL(v, "the line does not end with the chain fields ,\"h\":\"<64 lowercase "
                            "hex>\"[,\"tag\":\"<64 lowercase hex>\"]}");
        return 1;
    }
    if (kb_audit__body_scan(line, p.body_len, false, &b, &why) != 0) {
        bool changed = v->started && !kb_audit__links(v, v->prev, line, &p);

        known = kb_audit__seq_of(line, p.body_len, &seq);
        kb_audit__find(v, changed ? KB_AUDIT_CHANGED : KB_AUDIT_MALFORMED, known, seq);
        KB_AUDIT__DETAIL(v, "%s%s",
                         changed ? "h does not recompute, and the record is not well-formed: "
                                 : "the record is not well-formed: ",
                         why);
        return 1;
    }
    rc = first ? s_start(v, line, &p, &b) : s_continue(v, line, len, &p, &b);
    if (rc != 0)
        return rc;
    return s_tail(v, &p, &b, first);
}

int kb_audit_verify_line(struct kb_audit_verify *v, const char *line, size_t len, bool newline)
{
    int rc;

    if (!v->in_file)
        return KB_EINVAL;
    if (!newline && len == 0)
        return 0; /* nothing after the last "\n" */
    v->file_line++;
    v->all_lines++;
    if (v->found) {
        if (v->ref.on)
            kb_audit__refine(v, line, len);
        return 0;
    }
    rc = s_check(v, line, len, newline);
    return rc < 0 ? rc : 0;
}

int kb_audit_line_seq(const char *line, size_t len, uint64_t *seq)
{
    return kb_audit__seq_of(line, len, seq) ? 0 : KB_EPARSE;
}
