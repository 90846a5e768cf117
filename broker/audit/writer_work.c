/*
 * writer_work.c - the audit writer's threadpool side: the log file, the chain and the state file.
 *
 * One work at a time runs kb_audit__work_run over a batch of queued entries: it numbers, chains
 * and tags each record into one buffer, appends the buffer with write(2), fsyncs when the policy,
 * a seal or a stop asks, and then rewrites the state file. A batch is all or nothing: when a
 * write or fsync fails, the file is cut back to its size before the batch, the chain (and the
 * epoch key) is put back as it was, and the loop retries the same entries later - so the file
 * never holds a line the chain does not continue from, and a record is never numbered twice.
 * kb_audit__recover runs once on the loop at start, before any work.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit_internal.h"
#include "audit/record.h"
#include "common/err.h"
#include "common/secret.h"
#include "config/config.h"

#define S_TAIL_MAX (2 * KB_AUDIT_LINE_MAX)

static int64_t s_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kb_audit__free_entries(struct kb_audit__entry *e)
{
    while (e != NULL) {
        struct kb_audit__entry *next = e->next;

        free(e);
        e = next;
    }
}

/* -- the state file ---------------------------------------------------------------------------- */

static int s_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The directory part of path into out ("." when none). */
static void s_dirname(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);

    if (n == 0 || n >= cap) {
        snprintf(out, cap, "%s", n == 0 ? "." : "/");
        return;
    }
    memcpy(out, path, n);
    out[n] = '\0';
}

int kb_audit__write_state(struct kb_audit *a)
{
    struct kb_audit_state st = {.mode = a->chain.mode,
                                .epoch = a->chain.epoch,
                                .epoch_started_ms = a->chain.epoch_started_ms,
                                .seq = a->chain.seq,
                                .key = a->chain.key};
    struct kb_secret *text = NULL;
    char tmp[PATH_MAX], dir[PATH_MAX];
    const char *p;
    size_t n = 0;
    int fd, rc;

    memcpy(st.chain_id, a->chain.chain_id, sizeof(st.chain_id));
    memcpy(st.key_id, a->chain.key_id, sizeof(st.key_id));
    memcpy(st.h, a->chain.h, sizeof(st.h));
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", a->cfg->state) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    rc = kb_audit_state_format(&st, &text);
    if (rc != 0)
        return -ENOMEM;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = -errno;
    } else {
        p = kb_secret_open(text, &n);
        rc = fchmod(fd, 0600) != 0 ? -errno : s_write_all(fd, p, n);
        kb_secret_close(text);
        if (rc == 0 && fsync(fd) != 0)
            rc = -errno;
        if (close(fd) != 0 && rc == 0)
            rc = -errno;
        if (rc == 0 && rename(tmp, a->cfg->state) != 0)
            rc = -errno;
        if (rc != 0)
            (void)unlink(tmp);
    }
    kb_secret_destroy(text);
    if (rc == 0) {
        /* The rename is only durable once the directory is. */
        s_dirname(a->cfg->state, dir, sizeof(dir));
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            (void)fsync(fd);
            close(fd);
        }
    }
    return rc;
}

/* -- lines ------------------------------------------------------------------------------------- */

/* Room for one more line of up to KB_AUDIT_LINE_MAX bytes in a->out. */
static int s_reserve(struct kb_audit *a, size_t used)
{
    size_t want = used + KB_AUDIT_LINE_MAX + 64;
    char *p;

    if (want <= a->out_cap)
        return 0;
    p = realloc(a->out, want * 2);
    if (p == NULL)
        return -ENOMEM;
    a->out = p;
    a->out_cap = want * 2;
    return 0;
}

/* Appends the next line (members: the body from "ts" on) to a->out at *used, advancing the chain.
 * key: K_epoch's bytes, open for the batch (NULL in SHA256 mode). */
static int s_line(struct kb_audit *a, size_t *used, const uint8_t *key, const char *members,
                  size_t mlen)
{
    struct kb_audit__chain *c = &a->chain;
    char *at;
    int p, rc = s_reserve(a, *used);
    size_t len = 0;

    if (rc != 0)
        return rc;
    at = a->out + *used;
    p = kb_audit_record_prefix(c->seq + 1, c->epoch, at, a->out_cap - *used);
    if (p < 0 || (size_t)p + mlen > KB_AUDIT_LINE_MAX - 256)
        return -E2BIG;
    memcpy(at + p, members, mlen);
    /* The maker holds key (set by s_build and s_seal) in its HMAC context. */
    (void)key;
    rc = kb_audit_maker_line(a->maker, c->h, at, (size_t)p + mlen, at, a->out_cap - *used, &len,
                             c->h, c->tag);
    if (rc != 0)
        return rc == KB_ENOMEM ? -ENOMEM : -E2BIG;
    c->seq++;
    c->epoch_records++;
    *used += len;
    a->res.lines++;
    return 0;
}

/* A line of the writer's own: event with fields, at ts_ms. */
static int s_own_line(struct kb_audit *a, size_t *used, const uint8_t *key, int64_t ts_ms,
                      const char *event, const struct kb_audit_field *fields, size_t nfields)
{
    struct kb_audit_record r = {.event = event, .fields = fields, .nfields = nfields};
    char members[2048];
    size_t n = 0;
    int rc = kb_audit_record_members(&r, ts_ms, members, sizeof(members), &n);

    return rc != 0 ? -ENOMEM : s_line(a, used, key, members, n);
}

static int s_open_line(struct kb_audit *a, size_t *used, const uint8_t *key)
{
    char prev[KB_AUDIT_HEX_LEN + 1];
    struct kb_audit_field f[7];
    size_t n = 0;

    kb_audit_hex(a->chain.h, sizeof(a->chain.h), prev);
    f[n++] = (struct kb_audit_field){"chain", kb_audit_mode_name(a->chain.mode), 0};
    f[n++] = (struct kb_audit_field){"chain_id", a->chain.chain_id, 0};
    if (a->chain.mode == KB_AUDIT_MODE_HMAC)
        f[n++] = (struct kb_audit_field){"key_id", a->chain.key_id, 0};
    f[n++] = (struct kb_audit_field){"prev_h", prev, 0};
    f[n++] = (struct kb_audit_field){"epoch_seconds", NULL, (int64_t)a->cfg->epoch};
    f[n++] = (struct kb_audit_field){"reason", a->file.open_reason, 0};
    f[n++] = (struct kb_audit_field){"cut_bytes", NULL, (int64_t)a->file.cut_bytes};
    return s_own_line(a, used, key, s_now_ms(), "audit_open", f, n);
}

/* -- the batch --------------------------------------------------------------------------------- */

/* Keys made or retired by one batch: on success the retired ones are destroyed, on failure the
 * made ones, and the chain goes back to its snapshot. */
struct s_keys {
    struct kb_secret *made[8];
    struct kb_secret *retired[8];
    size_t nmade, nretired;
};

/* Seals the epoch: the seal line under K_e, then K_e+1. *key is re-pointed at the new key's
 * bytes (the old key's are closed). */
static int s_seal(struct kb_audit *a, size_t *used, const uint8_t **key, int64_t ts_ms,
                  struct s_keys *k)
{
    struct kb_audit__chain *c = &a->chain;
    struct kb_audit_field f = {"records", NULL, (int64_t)c->epoch_records + 1};
    uint8_t next[KB_AUDIT_KEY_LEN];
    struct kb_secret *nk;
    int rc = s_own_line(a, used, *key, ts_ms, "seal", &f, 1);

    if (rc != 0)
        return rc;
    if (c->mode == KB_AUDIT_MODE_HMAC) {
        if (k->nmade == 8 || k->nretired == 8)
            return -EAGAIN; /* the rest waits for the next batch */
        rc = kb_audit_key_next(*key, c->epoch + 1, next);
        nk = rc == 0 ? kb_secret_new(next, sizeof(next)) : NULL;
        sodium_memzero(next, sizeof(next));
        if (nk == NULL)
            return -ENOMEM;
        kb_secret_close(c->key);
        k->retired[k->nretired++] = c->key;
        k->made[k->nmade++] = nk;
        c->key = nk;
        *key = (const uint8_t *)kb_secret_open(nk, NULL);
        if (kb_audit_maker_key(a->maker, *key) != 0)
            return -ENOMEM;
    }
    c->epoch++;
    c->epoch_records = 0;
    c->epoch_started_ms = ts_ms;
    a->state_dirty = true;
    return 0;
}

static int s_open_file(struct kb_audit *a)
{
    int fd = open(a->cfg->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    struct stat st;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    a->file.fd = fd;
    return 0;
}

/* Lines for every entry of the batch into a->out; *stop and *sync report what was asked. An
 * -EAGAIN leaves the rest of the batch for the next work (entries after *done). */
static int s_build(struct kb_audit *a, size_t *used, bool *sync, bool *stop, struct s_keys *k,
                   struct kb_audit__entry **done)
{
    const uint8_t *key = NULL;
    int rc = 0;

    if (a->maker == NULL && kb_audit_maker_new(&a->maker) != 0)
        return -ENOMEM;
    if (a->chain.mode == KB_AUDIT_MODE_HMAC)
        key = (const uint8_t *)kb_secret_open(a->chain.key, NULL);
    if (kb_audit_maker_key(a->maker, key) != 0)
        rc = -ENOMEM;
    if (rc == 0 && a->file.open_reason != NULL)
        rc = s_open_line(a, used, key);
    for (struct kb_audit__entry *e = a->batch; rc == 0 && e != NULL; e = e->next) {
        struct kb_audit_field f = {"count", NULL, (int64_t)e->n};

        switch (e->kind) {
        case KB_AUDIT__RECORD:
            rc = s_line(a, used, key, e->members, e->len);
            break;
        case KB_AUDIT__SEAL:
            rc = s_seal(a, used, &key, e->ts_ms, k);
            *sync = true;
            break;
        case KB_AUDIT__LOST:
            rc = s_own_line(a, used, key, e->ts_ms, "audit_lost", &f, 1);
            break;
        case KB_AUDIT__SYNC:
        case KB_AUDIT__REOPEN:
            *sync = true;
            break;
        case KB_AUDIT__STOP:
            rc = s_own_line(a, used, key, e->ts_ms, "stop", NULL, 0);
            *sync = *stop = true;
            break;
        }
        if (rc == 0)
            *done = e;
    }
    if (key != NULL)
        kb_secret_close(a->chain.key);
    return rc;
}

void kb_audit__work_run(struct kb_audit *a)
{
    struct kb_audit__chain snap = a->chain;
    struct kb_audit__entry *done = NULL;
    struct s_keys k = {.nmade = 0};
    bool sync = a->cfg->fsync == KB_CONFIG_FSYNC_ALWAYS, stop = false;
    size_t used = 0;
    struct stat st;
    int rc = 0;

    memset(&a->res, 0, sizeof(a->res));
    if (a->batch != NULL && a->batch->kind == KB_AUDIT__REOPEN && a->file.fd >= 0) {
        (void)fsync(a->file.fd);
        close(a->file.fd);
        a->file.fd = -1;
        a->file.open_reason = "reopen";
    }
    if (a->file.fd < 0) {
        if (a->file.open_reason == NULL)
            a->file.open_reason = "retry";
        rc = s_open_file(a);
        a->res.what = "open";
    }
    if (rc == 0 && fstat(a->file.fd, &st) != 0) {
        rc = -errno;
        a->res.what = "stat";
    }
    if (rc == 0) {
        a->res.what = "format";
        rc = s_build(a, &used, &sync, &stop, &k, &done);
        if (rc == -EAGAIN)
            rc = 0; /* done marks how far the batch went */
        else if (rc == 0)
            done = NULL; /* all of it */
    }
    sync = sync || a->state_dirty;
    if (rc == 0) {
        a->res.what = "write";
        rc = s_write_all(a->file.fd, a->out, used);
    }
    if (rc == 0 && sync) {
        a->res.what = "fsync";
        rc = fsync(a->file.fd) != 0 ? -errno : 0;
    }
    if (rc != 0) {
        /* Undo: the file as before the batch, the chain and its key as before it. */
        if (a->file.fd >= 0) {
            if (used > 0)
                (void)ftruncate(a->file.fd, st.st_size);
            close(a->file.fd);
            a->file.fd = -1;
        }
        for (size_t i = 0; i < k.nmade; i++)
            kb_secret_destroy(k.made[i]);
        a->chain = snap;
        a->state_dirty = a->state_dirty || k.nmade > 0;
        a->res.err = rc;
        a->res.lines = 0;
        return;
    }
    for (size_t i = 0; i < k.nretired; i++)
        kb_secret_destroy(k.retired[i]); /* K_e is gone once its seal is on disk */
    a->file.open_reason = NULL;
    a->file.cut_bytes = 0;
    a->res.synced = sync;
    a->res.partial = done;
    if (a->state_dirty && sync) {
        a->res.state_err = kb_audit__write_state(a);
        a->state_dirty = a->res.state_err != 0;
    }
    if (stop && a->file.fd >= 0) {
        close(a->file.fd);
        a->file.fd = -1;
    }
}

/* -- recovery at start --------------------------------------------------------------------------
 */

static int s_why(char *why, size_t n, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int s_why(char *why, size_t n, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return rc;
}

/* Reads the state file into st; *exists false when there is none. */
static int s_read_state(struct kb_audit *a, struct kb_audit_state *st, bool *exists, char *why,
                        size_t n)
{
    const char *path = a->cfg->state;
    char text[KB_AUDIT_STATE_MAX + 1], reason[160];
    struct stat sb;
    ssize_t got;
    int fd, rc;

    *exists = false;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0)
        return s_why(why, n, -errno, "broker.audit.state: cannot open %s: %s", path,
                     strerror(errno));
    *exists = true;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return s_why(why, n, KB_ECONFIG, "broker.audit.state: %s is not a regular file", path);
    }
    if (sb.st_uid != geteuid() || (sb.st_mode & 077) != 0) {
        close(fd);
        return s_why(why, n, KB_ECONFIG,
                     "broker.audit.state: %s must be owned by uid %u and readable by nobody else "
                     "(it is uid %u, mode %04o; it holds the current epoch key): chmod 0600",
                     path, (unsigned)geteuid(), (unsigned)sb.st_uid,
                     (unsigned)(sb.st_mode & 07777));
    }
    got = read(fd, text, sizeof(text));
    close(fd);
    if (got < 0 || got > KB_AUDIT_STATE_MAX) {
        sodium_memzero(text, sizeof(text));
        return s_why(why, n, KB_ECONFIG, "broker.audit.state: cannot read %s", path);
    }
    rc = kb_audit_state_parse(text, (size_t)got, st, reason, sizeof(reason));
    sodium_memzero(text, sizeof(text));
    if (rc != 0)
        return s_why(why, n, KB_ECONFIG, "broker.audit.state: %s is not a valid state file: %s",
                     path, rc == KB_EPARSE ? reason : kb_strerror(rc));
    return 0;
}

/* What the log's last complete line says. */
struct s_last {
    bool have;
    uint64_t seq, epoch;
    bool seal;
    enum kb_audit_mode mode;
    uint8_t h[KB_AUDIT_HASH_LEN];
    uint8_t tag[KB_AUDIT_HASH_LEN];
};

static int s_parse_last(const char *line, size_t len, struct s_last *last)
{
    struct kb_audit_line_parts p;
    struct json_object *o, *v;
    char *body;
    int rc = KB_EPARSE;

    if (kb_audit_split_line(line, len, &p) != 0)
        return KB_EPARSE;
    body = malloc(p.body_len + 2);
    if (body == NULL)
        return KB_ENOMEM;
    memcpy(body, line, p.body_len);
    memcpy(body + p.body_len, "}", 2);
    o = json_tokener_parse(body);
    free(body);
    if (o != NULL && json_object_object_get_ex(o, "seq", &v) &&
        json_object_is_type(v, json_type_int) && json_object_get_int64(v) > 0) {
        last->seq = (uint64_t)json_object_get_int64(v);
        if (json_object_object_get_ex(o, "epoch", &v) && json_object_is_type(v, json_type_int) &&
            json_object_get_int64(v) >= 0) {
            last->epoch = (uint64_t)json_object_get_int64(v);
            last->seal = json_object_object_get_ex(o, "event", &v) &&
                         json_object_is_type(v, json_type_string) &&
                         strcmp(json_object_get_string(v), "seal") == 0;
            last->mode = p.mode;
            memcpy(last->h, p.h, sizeof(p.h));
            memcpy(last->tag, p.tag, sizeof(p.tag));
            last->have = true;
            rc = 0;
        }
    }
    json_object_put(o);
    return rc;
}

/* Cuts a partial last line (a crash mid-write) and reads the last complete one. */
static int s_tail(struct kb_audit *a, struct s_last *last, char *why, size_t n)
{
    const char *path = a->cfg->path;
    struct stat st;
    char *buf;
    size_t got, end, start;
    off_t from;
    ssize_t r;
    int rc = 0;

    memset(last, 0, sizeof(*last));
    if (fstat(a->file.fd, &st) != 0)
        return s_why(why, n, -errno, "broker.audit.path: cannot stat %s", path);
    if (st.st_size == 0)
        return 0;
    buf = malloc(S_TAIL_MAX);
    if (buf == NULL)
        return KB_ENOMEM;
    from = st.st_size > S_TAIL_MAX ? st.st_size - S_TAIL_MAX : 0;
    r = pread(a->file.fd, buf, (size_t)(st.st_size - from), from);
    if (r < 0 || r != st.st_size - from) {
        free(buf);
        return s_why(why, n, KB_ECONFIG, "broker.audit.path: cannot read the end of %s", path);
    }
    got = (size_t)r;
    end = got;
    while (end > 0 && buf[end - 1] != '\n')
        end--;
    if (end < got) {
        /* A partial line: the broker died while writing it. Cut it (it was never a record that
         * anyone relied on) and say so in the next audit_open. */
        if ((end == 0 && from > 0) || got - end > KB_AUDIT_LINE_MAX) {
            free(buf);
            return s_why(why, n, KB_ECONFIG,
                         "broker.audit.path: %s ends with more than %d bytes without a newline: "
                         "it is not an audit log this broker wrote; move it aside",
                         path, KB_AUDIT_LINE_MAX);
        }
        if (ftruncate(a->file.fd, from + (off_t)end) != 0) {
            free(buf);
            return s_why(why, n, -errno,
                         "broker.audit.path: cannot cut the partial last line "
                         "of %s: %s",
                         path, strerror(errno));
        }
        a->file.cut_bytes = got - end;
    }
    if (end > 0) {
        start = end - 1;
        while (start > 0 && buf[start - 1] != '\n')
            start--;
        if (start == 0 && from > 0)
            rc = KB_EPARSE;
        else
            rc = s_parse_last(buf + start, end - 1 - start, last);
        if (rc != 0)
            rc = s_why(why, n, KB_ECONFIG,
                       "broker.audit.path: the last line of %s is not an audit record: keep the "
                       "file for the auditor, move it aside and start again",
                       path);
    }
    free(buf);
    return rc;
}

/* Moves the state's key forward from its epoch to epoch (the log got further than the state). */
static int s_derive_to(struct kb_audit_state *st, uint64_t epoch)
{
    uint8_t k[KB_AUDIT_KEY_LEN];
    const char *p;
    struct kb_secret *nk;
    int rc = 0;

    if (st->mode != KB_AUDIT_MODE_HMAC || st->epoch == epoch) {
        st->epoch = epoch;
        return 0;
    }
    p = kb_secret_open(st->key, NULL);
    memcpy(k, p, sizeof(k));
    kb_secret_close(st->key);
    for (uint64_t e = st->epoch + 1; rc == 0 && e <= epoch; e++)
        rc = kb_audit_key_next(k, e, k);
    nk = rc == 0 ? kb_secret_new(k, sizeof(k)) : NULL;
    sodium_memzero(k, sizeof(k));
    if (nk == NULL)
        return KB_ENOMEM;
    kb_secret_destroy(st->key);
    st->key = nk;
    st->epoch = epoch;
    return 0;
}

static int s_chain_from(struct kb_audit *a, struct kb_audit_state *st, const struct s_last *last,
                        char *why, size_t n)
{
    struct kb_audit__chain *c = &a->chain;
    int64_t now = s_now_ms();
    int rc = 0;

    if (last->have && last->mode != st->mode)
        return s_why(why, n, KB_ECONFIG,
                     "broker.audit: %s is a %s chain but the state file %s is of a %s chain",
                     a->cfg->path, kb_audit_mode_name(last->mode), a->cfg->state,
                     kb_audit_mode_name(st->mode));
    if (last->have && last->seq >= st->seq) {
        if (last->epoch < st->epoch)
            return s_why(why, n, KB_ECONFIG,
                         "broker.audit: the last record of %s (seq %" PRIu64 ", epoch %" PRIu64
                         ") is of an earlier epoch than the state file %s (epoch %" PRIu64
                         "): one of them was replaced; keep both for the auditor",
                         a->cfg->path, last->seq, last->epoch, a->cfg->state, st->epoch);
        if (last->epoch > st->epoch)
            st->epoch_started_ms = now; /* when it began is not recorded; from now, then */
        rc = s_derive_to(st, last->epoch);
        a->state_dirty = a->state_dirty || last->seq > st->seq;
        st->seq = last->seq;
        memcpy(st->h, last->h, sizeof(st->h));
        memcpy(c->tag, last->tag, sizeof(c->tag));
        if (rc == 0 && last->seal) {
            /* The seal of the epoch is written: the next record is of the next epoch. */
            rc = s_derive_to(st, last->epoch + 1);
            st->epoch_started_ms = now;
            a->state_dirty = true;
        }
    }
    if (rc != 0)
        return s_why(why, n, rc, "broker.audit: %s", kb_strerror(rc));
    c->mode = st->mode;
    memcpy(c->chain_id, st->chain_id, sizeof(c->chain_id));
    memcpy(c->key_id, st->key_id, sizeof(c->key_id));
    c->seq = st->seq;
    c->epoch = st->epoch;
    c->epoch_records = 0;
    c->epoch_started_ms = st->epoch_started_ms;
    memcpy(c->h, st->h, sizeof(c->h));
    c->key = st->key;
    st->key = NULL;
    return 0;
}

int kb_audit__recover(struct kb_audit *a, char *why, size_t n)
{
    enum kb_audit_mode want = a->cfg->hmac ? KB_AUDIT_MODE_HMAC : KB_AUDIT_MODE_SHA256;
    struct kb_audit_state st;
    struct s_last last;
    bool exists = false;
    int rc;

    memset(&st, 0, sizeof(st));
    rc = s_read_state(a, &st, &exists, why, n);
    if (rc != 0)
        return rc;
    if (!exists && want == KB_AUDIT_MODE_HMAC)
        return s_why(why, n, KB_ECONFIG,
                     "broker.audit.state: %s does not exist: create it and the verifier's key "
                     "with `kbctl audit init --state %s --key-out FILE` (keep FILE off this host), "
                     "or set broker.audit.chain to \"sha256\" for a plain hash chain",
                     a->cfg->state, a->cfg->state);
    if (!exists) {
        rc = kb_audit_state_init(&st, KB_AUDIT_MODE_SHA256, NULL, s_now_ms());
        a->state_dirty = true;
    }
    if (rc == 0 && st.mode != want)
        rc = s_why(why, n, KB_ECONFIG,
                   "broker.audit.chain is \"%s\" but the state file %s is of a %s chain",
                   kb_audit_mode_name(want), a->cfg->state, kb_audit_mode_name(st.mode));
    if (rc == 0) {
        rc = s_open_file(a);
        if (rc != 0)
            rc = s_why(why, n, rc, "broker.audit.path: cannot open %s: %s", a->cfg->path,
                       strerror(-rc));
    }
    if (rc == 0)
        rc = s_tail(a, &last, why, n);
    if (rc == 0)
        rc = s_chain_from(a, &st, &last, why, n);
    kb_audit_state_cleanup(&st);
    if (rc != 0 && a->file.fd >= 0) {
        close(a->file.fd);
        a->file.fd = -1;
    }
    a->file.open_reason = "start";
    return rc;
}
