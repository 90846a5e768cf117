/*
 * kb_audit_gen.h - makes audit chains for the verifier's tests and fuzz seeds the way the writer
 * does (writer_work.c): record.c builds each body, chain.c links and tags it, every file begins
 * with an audit_open, every epoch ends with a seal counting its records, a restart writes "stop"
 * and then an audit_open "start" (the writer's count of the epoch starts again there). Plus the
 * tools the property test mutates chains with: copy, delete, insert, swap, re-chain from a line
 * with chosen keys, anchors of a line.
 *
 * Deterministic: everything random comes from tl_rand (splitmix64) and the seed. Test code: keys
 * are plain arrays.
 */
#ifndef KB_AUDIT_GEN_H
#define KB_AUDIT_GEN_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/chain.h"
#include "audit/record.h"
#include "audit/state.h"
#include "audit/verify.h"

#define TL_FILES_MAX  8
#define TL_EPOCHS_MAX 80
#define TL_T0_MS      ((int64_t)1796000000000) /* 2026-11-30 */

struct tl_line {
    char *s; /* without "\n", NUL-terminated */
    size_t len;
};

struct tl_file {
    char name[32];
    struct tl_line *l;
    size_t n, cap;
    bool cut; /* its last line has no "\n" */
};

struct tl_set {
    struct tl_file f[TL_FILES_MAX];
    size_t nf;
};

struct tl_gen {
    enum kb_audit_mode mode;
    uint8_t k0[KB_AUDIT_KEY_LEN];
    uint8_t keys[TL_EPOCHS_MAX][KB_AUDIT_KEY_LEN]; /* K_0 .. K_79 */
    char chain_id[KB_AUDIT_CHAIN_ID_LEN + 1];
    char key_id[KB_AUDIT_KEY_ID_LEN + 1];
    uint64_t seq, epoch, epoch_records;
    uint8_t h[KB_AUDIT_HASH_LEN];
    int64_t ts;
    int epoch_seconds;
    uint64_t rng;
    struct tl_set *set;
    FILE *sink; /* non-NULL: lines are written here (with "\n") instead of kept in set */
};

static inline uint64_t tl_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A number in [lo, hi]. */
static inline uint64_t tl_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
    return lo + tl_rand(s) % (hi - lo + 1);
}

static inline void tl_die(const char *what)
{
    fprintf(stderr, "kb_audit_gen: %s\n", what);
    abort();
}

static inline void tl_push(struct tl_file *f, size_t at, const char *s, size_t len)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->l = realloc(f->l, f->cap * sizeof(*f->l));
        if (f->l == NULL)
            tl_die("out of memory");
    }
    memmove(&f->l[at + 1], &f->l[at], (f->n - at) * sizeof(*f->l));
    f->l[at].s = malloc(len + 1);
    if (f->l[at].s == NULL)
        tl_die("out of memory");
    memcpy(f->l[at].s, s, len);
    f->l[at].s[len] = '\0';
    f->l[at].len = len;
    f->n++;
}

static inline void tl_set_free(struct tl_set *set)
{
    for (size_t i = 0; i < set->nf; i++) {
        for (size_t j = 0; j < set->f[i].n; j++)
            free(set->f[i].l[j].s);
        free(set->f[i].l);
    }
    memset(set, 0, sizeof(*set));
}

static inline void tl_set_copy(struct tl_set *dst, const struct tl_set *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->nf = src->nf;
    for (size_t i = 0; i < src->nf; i++) {
        memcpy(dst->f[i].name, src->f[i].name, sizeof(dst->f[i].name));
        dst->f[i].cut = src->f[i].cut;
        for (size_t j = 0; j < src->f[i].n; j++)
            tl_push(&dst->f[i], j, src->f[i].l[j].s, src->f[i].l[j].len);
    }
}

static inline size_t tl_total(const struct tl_set *set)
{
    size_t n = 0;

    for (size_t i = 0; i < set->nf; i++)
        n += set->f[i].n;
    return n;
}

/* The line at global index gi: its file and index there. */
static inline void tl_pos(const struct tl_set *set, size_t gi, size_t *f, size_t *i)
{
    for (size_t k = 0; k < set->nf; k++) {
        if (gi < set->f[k].n) {
            *f = k;
            *i = gi;
            return;
        }
        gi -= set->f[k].n;
    }
    tl_die("tl_pos: beyond the set");
}

static inline struct tl_line *tl_at(struct tl_set *set, size_t gi)
{
    size_t f, i;

    tl_pos(set, gi, &f, &i);
    return &set->f[f].l[i];
}

static inline void tl_delete(struct tl_set *set, size_t gi)
{
    size_t f, i;

    tl_pos(set, gi, &f, &i);
    free(set->f[f].l[i].s);
    memmove(&set->f[f].l[i], &set->f[f].l[i + 1], (set->f[f].n - i - 1) * sizeof(struct tl_line));
    set->f[f].n--;
}

/* Line fields as the verifier reads them. */
static inline uint64_t tl_seq(const struct tl_line *l)
{
    uint64_t seq = 0;

    if (kb_audit_line_seq(l->s, l->len, &seq) != 0)
        tl_die("tl_seq: unreadable");
    return seq;
}

static inline uint64_t tl_num_after(const struct tl_line *l, const char *key)
{
    const char *p = strstr(l->s, key);

    return p != NULL ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static inline uint64_t tl_epoch(const struct tl_line *l)
{
    return tl_num_after(l, ",\"epoch\":");
}

static inline bool tl_is(const struct tl_line *l, const char *event)
{
    char want[64];

    snprintf(want, sizeof(want), "\"event\":\"%s\"", event);
    return strstr(l->s, want) != NULL;
}

/* -- making a chain ------------------------------------------------------------------------- */

static inline void tl_gen_init(struct tl_gen *g, struct tl_set *set, enum kb_audit_mode mode,
                               uint64_t seed)
{
    uint8_t id[KB_AUDIT_CHAIN_ID_LEN / 2];

    memset(g, 0, sizeof(*g));
    memset(set, 0, sizeof(*set));
    g->set = set;
    g->mode = mode;
    g->rng = seed;
    g->ts = TL_T0_MS + (int64_t)tl_range(&g->rng, 0, 86400000);
    g->epoch_seconds = 600;
    for (size_t i = 0; i < sizeof(g->k0); i++)
        g->k0[i] = (uint8_t)tl_rand(&g->rng);
    for (size_t i = 0; i < sizeof(id); i++)
        id[i] = (uint8_t)tl_rand(&g->rng);
    kb_audit_hex(id, sizeof(id), g->chain_id);
    memcpy(g->keys[0], g->k0, KB_AUDIT_KEY_LEN);
    for (uint64_t e = 1; e < TL_EPOCHS_MAX; e++) {
        if (kb_audit_key_next(g->keys[e - 1], e, g->keys[e]) != 0)
            tl_die("kb_audit_key_next");
    }
    if (kb_audit_key_id(g->k0, g->key_id) != 0)
        tl_die("kb_audit_key_id");
}

/* Appends the record r as the writer would: seq + 1, the current epoch, now. */
static inline void tl_gen_add(struct tl_gen *g, const struct kb_audit_record *r)
{
    static char body[KB_AUDIT_LINE_MAX], line[KB_AUDIT_LINE_MAX];
    struct tl_file *f = &g->set->f[g->set->nf - 1];
    size_t blen = 0, llen = 0;

    if (g->epoch >= TL_EPOCHS_MAX)
        tl_die("too many epochs");
    g->ts += (int64_t)tl_range(&g->rng, 1, 20000);
    if (kb_audit_record_body(r, g->seq + 1, g->epoch, g->ts, body, sizeof(body), &blen) != 0 ||
        kb_audit_make_line(g->h, g->mode == KB_AUDIT_MODE_HMAC ? g->keys[g->epoch] : NULL, body,
                           blen, line, sizeof(line), &llen, g->h) != 0)
        tl_die("making a line");
    g->seq++;
    g->epoch_records++;
    if (g->sink != NULL) {
        if (fwrite(line, 1, llen, g->sink) != llen)
            tl_die("writing a line");
        return;
    }
    tl_push(f, f->n, line, llen - 1);
}

/* A new file (or, new_file false, a restart in the same one) beginning with an audit_open. */
static inline void tl_gen_open(struct tl_gen *g, const char *reason, bool new_file)
{
    char prev[KB_AUDIT_HEX_LEN + 1];
    struct kb_audit_field f[7];
    struct kb_audit_record r = {.event = "audit_open", .fields = f};
    size_t n = 0;

    if (new_file) {
        struct tl_file *nf = &g->set->f[g->set->nf];

        if (g->set->nf == TL_FILES_MAX)
            tl_die("too many files");
        snprintf(nf->name, sizeof(nf->name), "audit.log.%zu", g->set->nf);
        g->set->nf++;
    }
    if (strcmp(reason, "start") == 0)
        g->epoch_records = 0; /* the writer counts the epoch again after a restart */
    kb_audit_hex(g->h, sizeof(g->h), prev);
    f[n++] = (struct kb_audit_field){"chain", kb_audit_mode_name(g->mode), 0};
    f[n++] = (struct kb_audit_field){"chain_id", g->chain_id, 0};
    if (g->mode == KB_AUDIT_MODE_HMAC)
        f[n++] = (struct kb_audit_field){"key_id", g->key_id, 0};
    f[n++] = (struct kb_audit_field){"prev_h", prev, 0};
    f[n++] = (struct kb_audit_field){"epoch_seconds", NULL, g->epoch_seconds};
    f[n++] = (struct kb_audit_field){"reason", reason, 0};
    f[n++] = (struct kb_audit_field){"cut_bytes", NULL, 0};
    r.nfields = n;
    tl_gen_add(g, &r);
}

static inline void tl_gen_seal(struct tl_gen *g)
{
    struct kb_audit_field f = {"records", NULL, (int64_t)g->epoch_records + 1};
    struct kb_audit_record r = {.event = "seal", .fields = &f, .nfields = 1};

    tl_gen_add(g, &r);
    g->epoch++;
    g->epoch_records = 0;
}

/* One decision or step, in the mix a busy broker writes. */
static inline void tl_gen_random(struct tl_gen *g)
{
    static const char *const tenants[] = {"alpha", "beta", "gamma", "billing-eu", "reports"};
    static const char *const steps[][3] = {
        {"create_user", "iam", "CreateUser"},
        {"put_policy", "iam", "PutUserPolicy"},
        {"create_key", "iam", "CreateAccessKey"},
        {"create_bucket", "s3", "CreateBucket"},
        {"put_secret", "secretsmanager", "PutSecretValue"},
        {"probe", "sts", "GetCallerIdentity"},
    };
    struct kb_audit_peer peer = {(uid_t)tl_range(&g->rng, 0, 5000),
                                 (gid_t)tl_range(&g->rng, 0, 5000),
                                 (pid_t)tl_range(&g->rng, 2, 99999)};
    const char *tenant = tenants[tl_rand(&g->rng) % 5];
    char rid[40], arn[128], ver[40];
    struct kb_audit_record r = {0};
    uint64_t k = tl_rand(&g->rng) % 100;
    struct kb_audit_field lost = {"count", NULL, (int64_t)tl_range(&g->rng, 1, 50)};

    snprintf(rid, sizeof(rid), "%08" PRIx64 "-5b2c-4d1e-9f00-%012" PRIx64,
             (uint64_t)(tl_rand(&g->rng) & 0xffffffffu),
             (uint64_t)(tl_rand(&g->rng) & 0xffffffffffffu));
    snprintf(arn, sizeof(arn), "arn:aws:secretsmanager:us-east-1:123456789012:secret:kb/%s-Ab12Cd",
             tenant);
    snprintf(ver, sizeof(ver), "%016" PRIx64, tl_rand(&g->rng));
    r.tenant = tenant;
    if (k < 50) {
        r.event = "authz";
        r.op = k < 40 ? "get" : k < 45 ? "watch" : "rotate";
        r.result = k % 7 == 0 ? "deny" : "allow";
        r.error = k % 7 == 0 ? "forbidden" : NULL;
        r.peer = &peer;
    } else if (k < 85) {
        const char *const *s = steps[k % 6];

        r.event = "step";
        r.op = k < 75 ? "provision" : "rotate";
        r.step = s[0];
        r.result = k % 11 == 0 ? "error" : "done";
        r.aws = (struct kb_audit_aws){s[1], s[2], rid, k % 11 == 0 ? "Throttling" : NULL};
    } else if (k < 95) {
        r.event = k < 90 ? "rotated" : "provisioned";
        r.op = k < 90 ? "rotate" : "provision";
        r.result = "ok";
        r.arn = arn;
        r.version_id = ver;
    } else if (k < 98 || tl_rand(&g->rng) % 20 != 0) {
        r.event = "config_reload";
        r.result = "ok";
        r.tenant = NULL;
    } else {
        r.event = "audit_lost";
        r.tenant = NULL;
        r.fields = &lost;
        r.nfields = 1;
    }
    tl_gen_add(g, &r);
}

/*
 * A realistic chain: epochs epochs (the last one open, not sealed), each with lo..hi records,
 * spread over files files (rotations between records), with a restart (stop, then audit_open
 * "start" in the same file) in about one epoch of five.
 */
static inline void tl_gen_chain(struct tl_gen *g, struct tl_set *set, enum kb_audit_mode mode,
                                uint64_t seed, unsigned epochs, unsigned files, unsigned lo,
                                unsigned hi)
{
    uint64_t counts[TL_EPOCHS_MAX], total = 0, made = 0;
    uint64_t rot[TL_FILES_MAX];
    unsigned next_rot = 0;

    tl_gen_init(g, set, mode, seed);
    for (unsigned e = 0; e < epochs; e++) {
        counts[e] = tl_range(&g->rng, lo, hi);
        total += counts[e];
    }
    for (unsigned i = 0; i + 1 < files; i++)
        rot[i] = total * (i + 1) / files + tl_range(&g->rng, 0, lo);
    tl_gen_open(g, "start", true);
    for (unsigned e = 0; e < epochs; e++) {
        bool restart = tl_rand(&g->rng) % 5 == 0;

        for (uint64_t i = 0; i < counts[e]; i++, made++) {
            if (next_rot + 1 < files && made >= rot[next_rot]) {
                tl_gen_open(g, "reopen", true);
                next_rot++;
            }
            if (restart && i == counts[e] / 2) {
                struct kb_audit_record stop = {.event = "stop"};

                tl_gen_add(g, &stop);
                tl_gen_open(g, "start", false);
            }
            tl_gen_random(g);
        }
        if (e + 1 < epochs)
            tl_gen_seal(g);
    }
    while (g->set->nf < files)
        tl_gen_open(g, "reopen", true);
}

/* -- mutating ------------------------------------------------------------------------------- */

/* The h of line gi (h_0 for gi = -1). */
static inline void tl_h_of(struct tl_set *set, long gi, uint8_t h[KB_AUDIT_HASH_LEN])
{
    struct kb_audit_line_parts p;

    if (gi < 0) {
        memset(h, 0, KB_AUDIT_HASH_LEN);
        return;
    }
    if (kb_audit_split_line(tl_at(set, (size_t)gi)->s, tl_at(set, (size_t)gi)->len, &p) != 0)
        tl_die("tl_h_of: not a line");
    memcpy(h, p.h, KB_AUDIT_HASH_LEN);
}

/* Which key tags a record of epoch e in a re-chain: the real one, or only what the holder of
 * K_held can derive (K_held for every earlier epoch, the real key from it on). */
static inline const uint8_t *tl_key_for(const struct tl_gen *g, uint64_t e, long held)
{
    if (g->mode != KB_AUDIT_MODE_HMAC)
        return NULL;
    if (held >= 0 && e < (uint64_t)held)
        return g->keys[held];
    return g->keys[e];
}

/*
 * Rewrites every line from gi on as an attacker who rewrites the chain would: each body (with
 * edit applied to line gi when non-NULL; seq renumbered from the line before when renumber) is
 * linked again from the h before it (audit_open's prev_h updated), and tagged with
 * tl_key_for(held). The bodies are otherwise kept.
 */
static inline void tl_rechain(struct tl_gen *g, struct tl_set *set, size_t gi, long held,
                              bool renumber, void (*edit)(char *body, size_t *len))
{
    static char body[KB_AUDIT_LINE_MAX], out[KB_AUDIT_LINE_MAX];
    uint8_t h[KB_AUDIT_HASH_LEN];
    size_t total = tl_total(set);
    uint64_t seq = gi > 0 ? tl_seq(tl_at(set, gi - 1)) : 0;

    tl_h_of(set, (long)gi - 1, h);
    for (size_t k = gi; k < total; k++) {
        struct tl_line *l = tl_at(set, k);
        struct kb_audit_line_parts p;
        size_t blen, olen = 0;
        char *ph;

        if (kb_audit_split_line(l->s, l->len, &p) != 0)
            tl_die("tl_rechain: not a line");
        memcpy(body, l->s, p.body_len);
        body[p.body_len] = '}';
        blen = p.body_len + 1;
        body[blen] = '\0';
        if (renumber) {
            char pre[64], *rest = strstr(body, ",\"epoch\":");
            int n = snprintf(pre, sizeof(pre), "{\"seq\":%" PRIu64, ++seq);
            size_t rlen = blen - (size_t)(rest - body);

            memmove(body + n, rest, rlen + 1);
            memcpy(body, pre, (size_t)n);
            blen = (size_t)n + rlen;
        }
        if ((ph = strstr(body, "\"prev_h\":\"")) != NULL)
            kb_audit_hex(h, sizeof(h), ph + 10), ph[10 + KB_AUDIT_HEX_LEN] = '"';
        if (k == gi && edit != NULL)
            edit(body, &blen);
        if (kb_audit_make_line(
                h, tl_key_for(g, tl_num_after(&(struct tl_line){body, blen}, ",\"epoch\":"), held),
                body, blen, out, sizeof(out), &olen, h) != 0)
            tl_die("tl_rechain: make_line");
        free(l->s);
        l->s = malloc(olen);
        memcpy(l->s, out, olen - 1);
        l->s[olen - 1] = '\0';
        l->len = olen - 1;
    }
}

/* The anchor of line gi, as the writer would put it in S3. */
static inline void tl_anchor_of(struct tl_gen *g, struct tl_set *set, size_t gi,
                                struct kb_audit_anchor *a)
{
    struct tl_line *l = tl_at(set, gi);
    struct kb_audit_line_parts p;
    size_t f, i;

    memset(a, 0, sizeof(*a));
    if (kb_audit_split_line(l->s, l->len, &p) != 0)
        tl_die("tl_anchor_of: not a line");
    tl_pos(set, gi, &f, &i);
    memcpy(a->chain_id, g->chain_id, sizeof(a->chain_id));
    snprintf(a->file, sizeof(a->file), "audit.log");
    a->seq = tl_seq(l);
    a->epoch = tl_epoch(l);
    memcpy(a->h, p.h, sizeof(a->h));
    memcpy(a->tag, p.tag, sizeof(a->tag));
    a->has_tag = p.mode == KB_AUDIT_MODE_HMAC;
    kb_audit_format_ts(TL_T0_MS + (int64_t)a->seq * 1000, a->ts);
}

#endif
