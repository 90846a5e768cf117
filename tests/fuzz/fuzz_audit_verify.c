/*
 * fuzz_audit_verify.c - libFuzzer target for the audit verifier (broker/audit/verify*.c): any
 * bytes as one or more log files, with and without K_0, with an anchor object or not; and as an
 * anchor body on its own.
 *
 * Input: byte 0 holds flags - bit 0: verify with the fuzz chain's K_0; bit 1: the first chunk is
 * an anchor object's body (under the fuzz chain's key name of the seq it names); bit 2: that key
 * also has a delete marker; bit 3: probe only 2 later keys. The rest is split at NUL bytes into
 * files (at most 8), each fed line by line, a last line without "\n" as cut. The seeds
 * (corpus/audit_verify) are chains kb_audit_gen.h made with seed 1, whose K_0 this target derives
 * the same way, so mutations start from logs that verify.
 *
 * Beyond "no crash, no leak, no undefined behaviour" it checks the verifier's promises: a finding
 * names a file and a line of it that was fed (or none, for the end's findings), its seq is that
 * line's when the line's seq can be read, its detail and window are sentences; an anchor body
 * that parses formats back to exactly its bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kb_audit_gen.h"

#define S_CHECK(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define S_FILES 8

static struct tl_gen s_gen;

static void s_anchor_alone(const uint8_t *data, size_t size)
{
    struct kb_audit_anchor a;
    char why[160], body[KB_AUDIT_ANCHOR_BODY_MAX];
    size_t len = 0;

    if (kb_audit_anchor_parse((const char *)data, size, &a, why, sizeof(why)) != 0) {
        S_CHECK(why[0] != '\0');
        return;
    }
    S_CHECK(kb_audit_anchor_body(&a, body, sizeof(body), &len) == 0);
    if (size > 0 && data[size - 1] == '\n')
        size--;
    S_CHECK(len == size && memcmp(body, data, len) == 0);
}

/* Feeds one file; returns its number of lines. */
static uint64_t s_feed(struct kb_audit_verify *v, const char *name, const char *p, size_t n)
{
    uint64_t lines = 0;

    S_CHECK(kb_audit_verify_begin_file(v, name) == 0);
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t len = nl != NULL ? (size_t)(nl - p) : n;

        S_CHECK(kb_audit_verify_line(v, p, len > KB_AUDIT_LINE_MAX ? KB_AUDIT_LINE_MAX : len,
                                     nl != NULL) == 0);
        lines++;
        if (nl == NULL)
            break;
        p += len + 1;
        n -= len + 1;
    }
    S_CHECK(kb_audit_verify_end_file(v) == 0);
    return lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[S_FILES] = {"f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7"};
    struct kb_audit_verify_opts o = {
        .anchor_prefix = "p/", .max_start_epoch = 64, .now_ms = TL_T0_MS + 86400000};
    struct kb_audit_verify_result r;
    struct kb_audit_verify *v = NULL;
    uint64_t lines[S_FILES] = {0};
    const char *p, *end;
    size_t nfiles = 0;
    unsigned flags;

    if (s_gen.chain_id[0] == '\0') {
        struct tl_set set;

        tl_gen_init(&s_gen, &set, KB_AUDIT_MODE_HMAC, 1);
    }
    s_anchor_alone(data, size);
    if (size == 0)
        return 0;
    flags = data[0];
    p = (const char *)data + 1;
    end = (const char *)data + size;
    o.k0 = flags & 1 ? s_gen.k0 : NULL;
    o.later_keys = flags & 8 ? 2 : 0;
    S_CHECK(kb_audit_verify_new(&o, &v) == 0);
    if (flags & 2) {
        const char *z = memchr(p, '\0', (size_t)(end - p));
        size_t len = z != NULL ? (size_t)(z - p) : (size_t)(end - p);
        struct kb_audit_anchor a;
        char key[128], why[160];
        uint64_t seq = 1;

        if (kb_audit_anchor_parse(p, len, &a, why, sizeof(why)) == 0)
            seq = a.seq;
        S_CHECK(kb_audit_anchor_key("p/", s_gen.chain_id, seq, key, sizeof(key)) == 0);
        S_CHECK(kb_audit_verify_add_anchor_object(v, key, "v1", false, p, len) == 0);
        if (flags & 4)
            S_CHECK(kb_audit_verify_add_anchor_object(v, key, "dm", true, NULL, 0) == 0);
        p = z != NULL ? z + 1 : end;
    }
    while (p < end && nfiles < S_FILES) {
        const char *z = memchr(p, '\0', (size_t)(end - p));
        size_t len = z != NULL ? (size_t)(z - p) : (size_t)(end - p);

        lines[nfiles] = s_feed(v, names[nfiles], p, len);
        nfiles++;
        p = z != NULL ? z + 1 : end;
    }
    S_CHECK(kb_audit_verify_finish(v, &r) == 0);
    S_CHECK(kb_audit_reason_name(r.reason)[0] != 'u'); /* not "unknown" */
    S_CHECK(r.files == nfiles);
    if (r.reason == KB_AUDIT_OK) {
        S_CHECK(r.file == NULL && r.line == 0 && r.records > 0);
        S_CHECK(r.first_seq <= r.last_seq && r.last_seq - r.first_seq + 1 == r.records);
    } else {
        S_CHECK(strlen(r.detail) > 0 && strlen(r.detail) < sizeof(r.detail));
        if (r.file != NULL) {
            size_t f = (size_t)(r.file[1] - '0');

            S_CHECK(f < nfiles && r.line >= 1);
            S_CHECK(r.line <= lines[f] + (r.reason == KB_AUDIT_TRUNCATED_BEFORE_ANCHOR));
        } else {
            S_CHECK(r.line == 0);
        }
    }
    S_CHECK(strlen(r.window) > 0 && strlen(r.window) < sizeof(r.window));
    S_CHECK(r.records == 0 || r.window_data.droppable_from_seq >= r.first_seq);
    kb_audit_verify_destroy(v);
    return 0;
}
