/*
 * kbctl_audit_verify.c - `kbctl audit verify FILE... [--key K0FILE] [--anchors URI] [--json]`:
 * orders the files by their first seq, feeds their lines to the pure verifier (audit/verify.h),
 * and prints its finding, what was verified and the undetectable window, as text or one JSON
 * object.
 *
 * K_0 is read from the key file into guarded memory with jsonwire's secret-safe parser and
 * handed to the verifier, which keeps its own guarded copy; every buffer that held it is wiped.
 * The files are read with read(2) in large blocks: a million-line log is read, hashed and tagged
 * in a few seconds.
 */
#include "kbctl_audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/chain.h"
#include "audit/state.h"
#include "audit/verify.h"
#include "aws/jsonwire.h"
#include "common/err.h"

#define S_KEY_FILE_MAX 4096
#define S_BLOCK        (1u << 20)

/* -- the key file ---------------------------------------------------------------------------- */

static bool s_hex_member(struct json_object *o, const char *key, size_t len)
{
    struct json_object *v = NULL;

    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) &&
           (size_t)json_object_get_string_len(v) == len &&
           strspn(json_object_get_string(v), "0123456789abcdef") == len;
}

/* Reads the key file's fields into k0 (guarded, KB_AUDIT_KEY_LEN) and chain_id. */
static int s_key_fields(struct json_object *o, uint8_t *k0, char *chain_id, const char **why)
{
    struct json_object *v = NULL;
    char kid[KB_AUDIT_KEY_ID_LEN + 1];

    if (!json_object_object_get_ex(o, "v", &v) || !json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) != 1) {
        *why = "\"v\" must be 1";
        return KB_EPARSE;
    }
    if (!s_hex_member(o, "chain_id", KB_AUDIT_CHAIN_ID_LEN) ||
        !s_hex_member(o, "key_id", KB_AUDIT_KEY_ID_LEN) ||
        !s_hex_member(o, "key", KB_AUDIT_HEX_LEN)) {
        *why = "\"chain_id\", \"key_id\" and \"key\" must be 32, 16 and 64 lowercase hex digits";
        return KB_EPARSE;
    }
    json_object_object_get_ex(o, "key", &v);
    if (kb_audit_unhex(json_object_get_string(v), KB_AUDIT_HEX_LEN, k0, KB_AUDIT_KEY_LEN) != 0 ||
        kb_audit_key_id(k0, kid) != 0) {
        *why = "\"key\" must be 64 hex digits";
        return KB_EPARSE;
    }
    json_object_object_get_ex(o, "key_id", &v);
    if (strcmp(kid, json_object_get_string(v)) != 0) {
        *why = "its key does not match its key_id: the file is damaged";
        return KB_EPARSE;
    }
    json_object_object_get_ex(o, "chain_id", &v);
    memcpy(chain_id, json_object_get_string(v), KB_AUDIT_CHAIN_ID_LEN + 1);
    return 0;
}

static int s_read_key(const char *path, uint8_t *k0, char *chain_id)
{
    struct kb_svc_parse p = {.operation = "key file"};
    char *text = sodium_malloc(S_KEY_FILE_MAX);
    struct json_object *o = NULL;
    const char *why = NULL;
    struct stat sb;
    ssize_t n = -1;
    int fd, rc = KBCTL_AUDIT_ERROR;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (text == NULL || fd < 0 || fstat(fd, &sb) != 0 || sb.st_size >= S_KEY_FILE_MAX ||
        (n = read(fd, text, S_KEY_FILE_MAX - 1)) < 0 || n != sb.st_size) {
        fprintf(stderr, "kbctl: audit verify: cannot read the key file %s: %s\n", path,
                fd < 0 || n < 0 ? strerror(errno) : "not a key file (too large or changing)");
        goto done;
    }
    if ((sb.st_mode & 077) != 0)
        fprintf(stderr,
                "kbctl: audit verify: warning: the key file %s can be read by others "
                "(mode %03o): whoever reads it can forge the whole chain\n",
                path, (unsigned)(sb.st_mode & 0777));
    if (kb_jsonw_parse(&p, text, (size_t)n, true, &o) != 0)
        why = "not one JSON object";
    else if (s_key_fields(o, k0, chain_id, &why) == 0)
        rc = KBCTL_AUDIT_OK;
    if (why != NULL)
        fprintf(stderr, "kbctl: audit verify: %s is not a key file of `kbctl audit init`: %s\n",
                path, why);
done:
    kb_jsonw_free(o, true);
    if (fd >= 0)
        close(fd);
    if (text != NULL)
        sodium_free(text);
    return rc;
}

/* -- the files ------------------------------------------------------------------------------- */

struct s_file {
    const char *path;
    int rank; /* 0: the first line has no seq (read first: it is the finding), 1: by seq, 2: empty
               */
    uint64_t first;
    size_t index;
};

static int s_cmp(const void *x, const void *y)
{
    const struct s_file *a = x, *b = y;

    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    if (a->first != b->first)
        return a->first < b->first ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* The seq of the file's first line, for the order (a failure to read is an I/O error). */
static int s_peek(struct s_file *f, char *buf)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, KB_AUDIT_LINE_MAX) : -1;
    const char *nl;

    if (n < 0) {
        fprintf(stderr, "kbctl: audit verify: cannot read %s: %s\n", f->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return KBCTL_AUDIT_ERROR;
    }
    close(fd);
    nl = memchr(buf, '\n', (size_t)n);
    f->rank = n == 0 ? 2 : 1;
    if (n > 0 &&
        kb_audit_line_seq(buf, nl != NULL ? (size_t)(nl - buf) : (size_t)n, &f->first) != 0)
        f->rank = 0;
    return KBCTL_AUDIT_OK;
}

/* Feeds one file's lines. A line longer than a record can be is passed cut at
 * KB_AUDIT_LINE_MAX bytes (the verifier calls it malformed) and the rest of it skipped. */
static int s_feed(struct kb_audit_verify *v, const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t have = 0;
    bool skipping = false;
    int rc = 0;

    if (fd < 0)
        goto io;
    rc = kb_audit_verify_begin_file(v, path);
    while (rc == 0) {
        ssize_t n = read(fd, buf + have, cap - have);
        size_t start = 0;
        char *nl;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto io;
        if (n == 0)
            break;
        have += (size_t)n;
        while (rc == 0 && (nl = memchr(buf + start, '\n', have - start)) != NULL) {
            size_t len = (size_t)(nl - (buf + start));

            if (!skipping)
                rc = kb_audit_verify_line(v, buf + start, len, true);
            skipping = false;
            start += len + 1;
        }
        if (rc == 0 && !skipping && have - start >= KB_AUDIT_LINE_MAX) {
            rc = kb_audit_verify_line(v, buf + start, KB_AUDIT_LINE_MAX, true);
            skipping = true;
        }
        if (skipping) {
            start = have;
        }
        memmove(buf, buf + start, have - start);
        have -= start;
    }
    if (rc == 0 && have > 0 && !skipping)
        rc = kb_audit_verify_line(v, buf, have, false);
    if (rc == 0)
        rc = kb_audit_verify_end_file(v);
    close(fd);
    if (rc != 0)
        fprintf(stderr, "kbctl: audit verify: %s: %s\n", path, kb_strerror(rc));
    return rc == 0 ? KBCTL_AUDIT_OK : KBCTL_AUDIT_ERROR;
io:
    fprintf(stderr, "kbctl: audit verify: cannot read %s: %s\n", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return KBCTL_AUDIT_ERROR;
}

static int s_order_and_feed(struct kb_audit_verify *v, int nfiles, char **files,
                            struct s_file *order)
{
    size_t cap = S_BLOCK + KB_AUDIT_LINE_MAX;
    char *buf = malloc(cap);
    int rc = KBCTL_AUDIT_OK;

    if (buf == NULL) {
        fprintf(stderr, "kbctl: audit verify: out of memory\n");
        return KBCTL_AUDIT_ERROR;
    }
    for (int i = 0; rc == KBCTL_AUDIT_OK && i < nfiles; i++) {
        order[i] = (struct s_file){.path = files[i], .index = (size_t)i};
        rc = s_peek(&order[i], buf);
    }
    if (rc == KBCTL_AUDIT_OK)
        qsort(order, (size_t)nfiles, sizeof(*order), s_cmp);
    for (int i = 0; rc == KBCTL_AUDIT_OK && i < nfiles; i++)
        rc = s_feed(v, order[i].path, buf, cap);
    free(buf);
    return rc;
}

/* -- the report ------------------------------------------------------------------------------ */

static void s_print_finding(const struct kb_audit_verify_result *r)
{
    if (r->reason == KB_AUDIT_OK) {
        printf("intact: %zu file%s, %" PRIu64 " records\n", r->files, r->files == 1 ? "" : "s",
               r->records);
        return;
    }
    if (r->file == NULL)
        printf("%s: %s: %s\n", r->reason == KB_AUDIT_CUT ? "files" : "anchors",
               kb_audit_reason_name(r->reason), r->detail);
    else if (r->seq_known)
        printf("%s:%" PRIu64 " (seq %" PRIu64 "): %s: %s\n", r->file, r->line, r->seq,
               kb_audit_reason_name(r->reason), r->detail);
    else
        printf("%s:%" PRIu64 ": %s: %s\n", r->file, r->line, kb_audit_reason_name(r->reason),
               r->detail);
}

static void s_print_text(const struct kb_audit_verify_result *r, const struct s_file *order,
                         int nfiles, bool anchors)
{
    s_print_finding(r);
    if (r->have_chain) {
        printf("chain:    %s %s", kb_audit_mode_name(r->mode), r->chain_id);
        if (r->mode == KB_AUDIT_MODE_HMAC)
            printf(", key id %s; %s", r->key_id,
                   r->tags_verified ? "tags verified with the key file"
                                    : "tags NOT checked (no --key)");
        printf("\n");
    }
    printf("files:   ");
    for (int i = 0; i < nfiles; i++)
        printf(" %s", order[i].path);
    printf(" (in chain order%s)\n", r->empty_files > 0 ? "; empty ones last" : "");
    if (r->records > 0) {
        printf("records:  %" PRIu64 " intact%s: seq %" PRIu64 "..%" PRIu64 ", epochs %" PRIu64
               "..%" PRIu64 ", %" PRIu64 " seal%s",
               r->records, r->reason == KB_AUDIT_OK ? "" : " before the finding", r->first_seq,
               r->last_seq, r->first_epoch, r->last_epoch, r->seals, r->seals == 1 ? "" : "s");
        if (r->sealed)
            printf(" (the last: seq %" PRIu64 ", epoch %" PRIu64 ", %s)", r->last_seal_seq,
                   r->last_seal_epoch, r->last_seal_ts);
        printf("; the last record at %s%s\n", r->last_ts,
               r->ends_with_stop ? " (a clean stop)" : "");
    }
    if (r->records_lost > 0)
        printf("lost:     %" PRIu64 " records the broker could not write (audit_lost)\n",
               r->records_lost);
    if (r->writer_cut_bytes > 0)
        printf("cut:      the broker cut %" PRIu64 " bytes of partial lines after crashes "
               "(audit_open cut_bytes)\n",
               r->writer_cut_bytes);
    if (!anchors)
        printf("anchors:  not checked (no --anchors)\n");
    else if (r->anchored)
        printf("anchors:  %" PRIu64 " matched, the last at seq %" PRIu64 " (%s)",
               r->anchors_matched, r->last_anchor_seq, r->last_anchor_ts);
    else
        printf("anchors:  none matched a verified record");
    if (anchors)
        printf("; %" PRIu64 " older than these files, %" PRIu64 " of other chains, %" PRIu64
               " rewritten\n",
               r->anchors_before_start, r->anchors_other_chains, r->anchors_rewritten);
    printf("window:   %s\n", r->window);
}

static void s_add(struct json_object *o, const char *key, struct json_object *v)
{
    json_object_object_add(o, key, v);
}

static struct json_object *s_str_or_null(const char *s, bool set)
{
    return set ? json_object_new_string(s) : NULL;
}

static void s_print_json(const struct kb_audit_verify_result *r, const struct s_file *order,
                         int nfiles, bool anchors)
{
    struct json_object *o = json_object_new_object(), *files = json_object_new_array(),
                       *an = json_object_new_object(), *w = json_object_new_object(),
                       *seal = r->sealed ? json_object_new_object() : NULL;

    for (int i = 0; i < nfiles; i++)
        json_object_array_add(files, json_object_new_string(order[i].path));
    s_add(o, "ok", json_object_new_boolean(r->reason == KB_AUDIT_OK));
    s_add(o, "reason", json_object_new_string(kb_audit_reason_name(r->reason)));
    s_add(o, "file", s_str_or_null(r->file, r->file != NULL));
    s_add(o, "line", r->line > 0 ? json_object_new_int64((int64_t)r->line) : NULL);
    s_add(o, "seq", r->seq_known ? json_object_new_int64((int64_t)r->seq) : NULL);
    s_add(o, "detail", s_str_or_null(r->detail, r->reason != KB_AUDIT_OK));
    s_add(o, "chain", s_str_or_null(kb_audit_mode_name(r->mode), r->have_chain));
    s_add(o, "chain_id", s_str_or_null(r->chain_id, r->have_chain));
    s_add(o, "key_id", s_str_or_null(r->key_id, r->have_chain && r->key_id[0] != '\0'));
    s_add(o, "epoch_seconds",
          r->epoch_seconds > 0 ? json_object_new_int64(r->epoch_seconds) : NULL);
    s_add(o, "files", files);
    s_add(o, "empty_files", json_object_new_int64((int64_t)r->empty_files));
    s_add(o, "records", json_object_new_int64((int64_t)r->records));
    s_add(o, "first_seq", r->records ? json_object_new_int64((int64_t)r->first_seq) : NULL);
    s_add(o, "last_seq", r->records ? json_object_new_int64((int64_t)r->last_seq) : NULL);
    s_add(o, "first_epoch", r->records ? json_object_new_int64((int64_t)r->first_epoch) : NULL);
    s_add(o, "last_epoch", r->records ? json_object_new_int64((int64_t)r->last_epoch) : NULL);
    s_add(o, "seals", json_object_new_int64((int64_t)r->seals));
    if (seal != NULL) {
        s_add(seal, "seq", json_object_new_int64((int64_t)r->last_seal_seq));
        s_add(seal, "epoch", json_object_new_int64((int64_t)r->last_seal_epoch));
        s_add(seal, "ts", json_object_new_string(r->last_seal_ts));
    }
    s_add(o, "last_seal", seal);
    s_add(o, "last_ts", s_str_or_null(r->last_ts, r->records > 0));
    s_add(o, "ends_with_stop", json_object_new_boolean(r->ends_with_stop));
    s_add(o, "stale", json_object_new_boolean(r->stale));
    s_add(o, "records_lost", json_object_new_int64((int64_t)r->records_lost));
    s_add(o, "writer_cut_bytes", json_object_new_int64((int64_t)r->writer_cut_bytes));
    s_add(o, "tags_verified", json_object_new_boolean(r->tags_verified));
    s_add(an, "checked", json_object_new_boolean(anchors));
    s_add(an, "matched", json_object_new_int64((int64_t)r->anchors_matched));
    s_add(an, "last_seq", r->anchored ? json_object_new_int64((int64_t)r->last_anchor_seq) : NULL);
    s_add(an, "last_ts", s_str_or_null(r->last_anchor_ts, r->anchored));
    s_add(an, "before_start", json_object_new_int64((int64_t)r->anchors_before_start));
    s_add(an, "other_chains", json_object_new_int64((int64_t)r->anchors_other_chains));
    s_add(an, "rewritten", json_object_new_int64((int64_t)r->anchors_rewritten));
    s_add(o, "anchors", an);
    s_add(w, "rewritable_from_seq",
          r->window_data.rewritable_from_seq
              ? json_object_new_int64((int64_t)r->window_data.rewritable_from_seq)
              : NULL);
    s_add(w, "droppable_from_seq",
          r->window_data.droppable_from_seq
              ? json_object_new_int64((int64_t)r->window_data.droppable_from_seq)
              : NULL);
    s_add(w, "needs_epoch_key", json_object_new_boolean(r->window_data.needs_epoch_key));
    s_add(w, "text", json_object_new_string(r->window));
    s_add(o, "window", w);
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

/* -- the command ----------------------------------------------------------------------------- */

int kbctl_audit_verify(const struct kbctl_audit_opts *o, int nfiles, char **files)
{
    struct kb_audit_verify_opts vo = {0};
    struct kb_audit_verify_result r;
    struct kb_audit_verify *v = NULL;
    struct s_file *order = calloc((size_t)nfiles, sizeof(*order));
    char chain_id[KB_AUDIT_CHAIN_ID_LEN + 1], bucket[64];
    uint8_t *k0 = NULL;
    size_t objects = 0;
    struct timespec now;
    int rc = KBCTL_AUDIT_ERROR;

    if (order == NULL || sodium_init() < 0) {
        fprintf(stderr, "kbctl: audit verify: cannot initialize\n");
        goto done;
    }
    if (o->key != NULL) {
        k0 = sodium_malloc(KB_AUDIT_KEY_LEN);
        if (k0 == NULL || s_read_key(o->key, k0, chain_id) != KBCTL_AUDIT_OK)
            goto done;
        vo.k0 = k0;
        vo.chain_id = chain_id;
    }
    if (o->anchors != NULL &&
        kbctl_audit_s3_uri(o->anchors, bucket, sizeof(bucket), &vo.anchor_prefix) != 0)
        goto done;
    clock_gettime(CLOCK_REALTIME, &now);
    vo.now_ms = (int64_t)now.tv_sec * 1000 + (int64_t)(now.tv_nsec / 1000000);
    if (kb_audit_verify_new(&vo, &v) != 0) {
        fprintf(stderr, "kbctl: audit verify: out of memory\n");
        goto done;
    }
    if (k0 != NULL) {
        sodium_free(k0); /* the verifier holds its own guarded copy */
        k0 = NULL;
    }
    if (o->anchors != NULL &&
        kbctl_audit_anchors(v, bucket, vo.anchor_prefix, o->timeout_ms, &objects) != 0)
        goto done;
    if (s_order_and_feed(v, nfiles, files, order) != KBCTL_AUDIT_OK)
        goto done;
    if (kb_audit_verify_finish(v, &r) != 0) {
        fprintf(stderr, "kbctl: audit verify: internal error\n");
        goto done;
    }
    if (o->json)
        s_print_json(&r, order, nfiles, o->anchors != NULL);
    else
        s_print_text(&r, order, nfiles, o->anchors != NULL);
    rc = r.reason == KB_AUDIT_OK ? KBCTL_AUDIT_OK : KBCTL_AUDIT_FOUND;
done:
    kb_audit_verify_destroy(v);
    if (k0 != NULL)
        sodium_free(k0);
    free(order);
    return rc;
}
