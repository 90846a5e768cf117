/*
 * verify_body.c - reads a record body for the verifier: the fixed header record.c writes first,
 * then (optionally) the rest of the object, checked to be JSON and searched for the members the
 * verifier reads (verify_internal.h).
 *
 * A hand-written scanner rather than json-c: it runs on every line of logs of millions of lines
 * and allocates nothing (json-c costs more than the hash and the tag together). It is strict
 * where being lenient would let one line mean two things: the header's members come first and in
 * record.c's order, and a member the verifier reads may not appear a second time (a parser that
 * keeps the last duplicate would read another seq than this one).
 */
#include <string.h>

#include "audit/verify_internal.h"
#include "common/err.h"

#define S_DEPTH_MAX 32

struct s_scan {
    const char *p;
    const char *end;
    const char *why;
};

static bool s_fail(struct s_scan *s, const char *why)
{
    if (s->why == NULL)
        s->why = why;
    return false;
}

static bool s_lit(struct s_scan *s, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return false;
    s->p += n;
    return true;
}

/* A non-negative integer without sign, fraction or leading zeros, at most INT64_MAX (record.c
 * writes int64). */
static bool s_uint(struct s_scan *s, uint64_t *out)
{
    uint64_t v = 0;
    const char *start = s->p;

    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
        unsigned d = (unsigned)(*s->p - '0');

        if (v > ((uint64_t)INT64_MAX - d) / 10)
            return s_fail(s, "an integer is too large");
        v = v * 10 + d;
        s->p++;
    }
    if (s->p == start)
        return s_fail(s, "an integer was expected");
    if (*start == '0' && s->p - start > 1)
        return s_fail(s, "an integer has a leading zero");
    if (s->p < s->end && (*s->p == '.' || *s->p == 'e' || *s->p == 'E'))
        return s_fail(s, "an integer was expected");
    *out = v;
    return true;
}

/* One UTF-8 sequence starting at s->p (its first byte >= 0x80): no overlong forms, surrogates or
 * code points beyond U+10FFFF. */
static bool s_utf8(struct s_scan *s)
{
    const unsigned char *u = (const unsigned char *)s->p;
    size_t left = (size_t)(s->end - s->p), n;
    uint32_t cp;

    if (u[0] >= 0xc2 && u[0] <= 0xdf) {
        n = 2;
        cp = u[0] & 0x1fu;
    } else if (u[0] >= 0xe0 && u[0] <= 0xef) {
        n = 3;
        cp = u[0] & 0x0fu;
    } else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
        n = 4;
        cp = u[0] & 0x07u;
    } else {
        return s_fail(s, "a string is not UTF-8");
    }
    if (left < n)
        return s_fail(s, "a string is not UTF-8");
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xc0) != 0x80)
            return s_fail(s, "a string is not UTF-8");
        cp = cp << 6 | (u[i] & 0x3fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return s_fail(s, "a string is not UTF-8");
    s->p += n;
    return true;
}

static int s_hex4(const char *p)
{
    int v = 0;

    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* A byte that stands for itself in a JSON string: printable ASCII but '"' and '\\'. */
static inline bool s_plain(unsigned char c)
{
    return (unsigned)(c - 0x20) < 0x60 && c != '"' && c != '\\';
}

/* A JSON string at s->p (its opening quote). out (may be NULL) receives the text between the
 * quotes when it holds no escape; p NULL when it does. */
static bool s_string(struct s_scan *s, struct kb_audit__span *out)
{
    const char *start;
    bool escaped = false;

    if (!s_lit(s, "\""))
        return s_fail(s, "a string was expected");
    start = s->p;
    for (;;) {
        unsigned char c;

        while (s->p < s->end && s_plain((unsigned char)*s->p))
            s->p++; /* the common case, without the checks below */
        if (s->p >= s->end)
            return s_fail(s, "a string is not closed");
        c = (unsigned char)*s->p;
        if (c == '"')
            break;
        if (c < 0x20)
            return s_fail(s, "a string holds a control character");
        if (c == '\\') {
            escaped = true;
            if (s->end - s->p < 2)
                return s_fail(s, "a string is not closed");
            c = (unsigned char)s->p[1];
            if (c == 'u') {
                if (s->end - s->p < 6 || s_hex4(s->p + 2) < 0)
                    return s_fail(s, "a string has a bad \\u escape");
                s->p += 6;
            } else if (strchr("\"\\/bfnrt", c) != NULL && c != '\0') {
                s->p += 2;
            } else {
                return s_fail(s, "a string has a bad escape");
            }
        } else if (c >= 0x80) {
            if (!s_utf8(s))
                return false;
        } else {
            s->p++;
        }
    }
    if (out != NULL) {
        out->p = escaped ? NULL : start;
        out->len = escaped ? 0 : (size_t)(s->p - start);
    }
    s->p++; /* the closing quote */
    return true;
}

static bool s_number(struct s_scan *s)
{
    const char *p = s->p;

    if (p < s->end && *p == '-')
        p++;
    if (p >= s->end || *p < '0' || *p > '9')
        return s_fail(s, "a value was expected");
    if (*p == '0')
        p++;
    else
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    if (p < s->end && *p == '.') {
        const char *d = ++p;

        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
        if (p == d)
            return s_fail(s, "a number is malformed");
    }
    if (p < s->end && (*p == 'e' || *p == 'E')) {
        const char *d;

        p++;
        if (p < s->end && (*p == '+' || *p == '-'))
            p++;
        d = p;
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
        if (p == d)
            return s_fail(s, "a number is malformed");
    }
    s->p = p;
    return true;
}

static bool s_value(struct s_scan *s, int depth);

/* An object or array after its opening bracket, up to and including its closing one. No
 * whitespace anywhere: record.c writes none, and a reader that allowed it would accept lines the
 * writer cannot have made. */
static bool s_container(struct s_scan *s, int depth, char close)
{
    if (depth > S_DEPTH_MAX)
        return s_fail(s, "the record nests too deeply");
    if (s_lit(s, close == '}' ? "}" : "]"))
        return true;
    for (;;) {
        if (close == '}') {
            if (!s_string(s, NULL) || !(s_lit(s, ":") || s_fail(s, "a ':' was expected")))
                return false;
        }
        if (!s_value(s, depth + 1))
            return false;
        if (s_lit(s, ","))
            continue;
        if (s_lit(s, close == '}' ? "}" : "]"))
            return true;
        return s_fail(s, "a ',' or a closing bracket was expected");
    }
}

static bool s_value(struct s_scan *s, int depth)
{
    if (s->p >= s->end)
        return s_fail(s, "a value was expected");
    switch (*s->p) {
    case '"':
        return s_string(s, NULL);
    case '{':
        s->p++;
        return s_container(s, depth, '}');
    case '[':
        s->p++;
        return s_container(s, depth, ']');
    case 't':
        return s_lit(s, "true") || s_fail(s, "a value was expected");
    case 'f':
        return s_lit(s, "false") || s_fail(s, "a value was expected");
    case 'n':
        return s_lit(s, "null") || s_fail(s, "a value was expected");
    default:
        return s_number(s);
    }
}

/* "2026-12-04T03:28:01.123Z": the shape only (record.c's kb_audit_format_ts). */
static bool s_ts_shape(struct kb_audit__span ts)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";

    if (ts.p == NULL || ts.len != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; i < ts.len; i++) {
        if (shape[i] == 'd' ? ts.p[i] < '0' || ts.p[i] > '9' : ts.p[i] != shape[i])
            return false;
    }
    return true;
}

static bool s_header(struct s_scan *s, struct kb_audit__body *b, const char *base)
{
    const char *d;

    if (!s_lit(s, "{\"seq\":"))
        return s_fail(s, "the record does not begin with {\"seq\":");
    d = s->p;
    if (!s_uint(s, &b->seq))
        return false;
    b->seq_off = (size_t)(d - base);
    b->seq_len = (size_t)(s->p - d);
    if (!s_lit(s, ",\"epoch\":"))
        return s_fail(s, "\"epoch\" does not follow \"seq\"");
    if (!s_uint(s, &b->epoch))
        return false;
    if (!s_lit(s, ",\"ts\":"))
        return s_fail(s, "\"ts\" does not follow \"epoch\"");
    if (!s_string(s, &b->ts))
        return false;
    if (!s_ts_shape(b->ts))
        return s_fail(s, "\"ts\" is not a UTC time with milliseconds");
    if (!s_lit(s, ",\"event\":"))
        return s_fail(s, "\"event\" does not follow \"ts\"");
    if (!s_string(s, &b->event))
        return false;
    if (b->event.p == NULL || b->event.len == 0)
        return s_fail(s, "\"event\" is empty or escaped");
    return true;
}

/* The members the verifier reads after the header, with their types. */
enum { S_STR, S_INT };
struct s_member {
    const char *key;
    int type;
    size_t off; /* of the span or the integer in struct kb_audit__body */
    size_t has_off;
};
#define S_NOHAS ((size_t)-1)
static const struct s_member s_members[] = {
    {"chain", S_STR, offsetof(struct kb_audit__body, chain), S_NOHAS},
    {"chain_id", S_STR, offsetof(struct kb_audit__body, chain_id), S_NOHAS},
    {"key_id", S_STR, offsetof(struct kb_audit__body, key_id), S_NOHAS},
    {"prev_h", S_STR, offsetof(struct kb_audit__body, prev_h), S_NOHAS},
    {"reason", S_STR, offsetof(struct kb_audit__body, reason), S_NOHAS},
    {"epoch_seconds", S_INT, offsetof(struct kb_audit__body, epoch_seconds),
     offsetof(struct kb_audit__body, has_epoch_seconds)},
    {"records", S_INT, offsetof(struct kb_audit__body, records),
     offsetof(struct kb_audit__body, has_records)},
    {"count", S_INT, offsetof(struct kb_audit__body, count),
     offsetof(struct kb_audit__body, has_count)},
    {"cut_bytes", S_INT, offsetof(struct kb_audit__body, cut_bytes),
     offsetof(struct kb_audit__body, has_cut_bytes)},
    /* the header's: present once already */
    {"seq", -1, 0, S_NOHAS},
    {"ts", -1, 0, S_NOHAS},
    {"epoch", -1, 0, S_NOHAS},
    {"event", -1, 0, S_NOHAS},
};
#define S_NMEMBERS (sizeof(s_members) / sizeof(s_members[0]))

static bool s_member_value(struct s_scan *s, struct kb_audit__body *b, const struct s_member *m,
                           bool *seen)
{
    char *base = (char *)b;

    if (m->type < 0 || *seen)
        return s_fail(s, "a member the verifier reads is there twice");
    *seen = true;
    if (m->type == S_STR) {
        struct kb_audit__span *span = (struct kb_audit__span *)(base + m->off);

        if (!s_string(s, span))
            return false;
        if (span->p == NULL)
            return s_fail(s, "a member the verifier reads is escaped");
        return true;
    }
    {
        uint64_t v;

        if (!s_uint(s, &v))
            return false;
        if (m->off == offsetof(struct kb_audit__body, epoch_seconds))
            b->epoch_seconds = (int64_t)v;
        else
            memcpy(base + m->off, &v, sizeof(v));
        *(bool *)(base + m->has_off) = true;
        return true;
    }
}

static bool s_rest(struct s_scan *s, struct kb_audit__body *b)
{
    bool seen[S_NMEMBERS] = {false};

    while (s->p < s->end) {
        struct kb_audit__span key;
        const struct s_member *m = NULL;
        size_t i;

        if (!s_lit(s, ","))
            return s_fail(s, "a ',' was expected between members");
        if (!s_string(s, &key))
            return false;
        if (!s_lit(s, ":"))
            return s_fail(s, "a ':' was expected");
        for (i = 0; key.p != NULL && i < S_NMEMBERS; i++) {
            if (kb_audit__span_is(key, s_members[i].key)) {
                m = &s_members[i];
                break;
            }
        }
        if (m != NULL ? !s_member_value(s, b, m, &seen[i]) : !s_value(s, 1))
            return false;
    }
    return true;
}

bool kb_audit__span_is(struct kb_audit__span span, const char *s)
{
    size_t n = strlen(s);

    return span.p != NULL && span.len == n && memcmp(span.p, s, n) == 0;
}

bool kb_audit__seq_of(const char *line, size_t len, uint64_t *seq)
{
    struct s_scan s = {.p = line, .end = line + len};

    return s_lit(&s, "{\"seq\":") && s_uint(&s, seq) && s.p < s.end && *s.p == ',';
}

int kb_audit__body_scan(const char *body, size_t len, bool header_only, struct kb_audit__body *out,
                        const char **why)
{
    struct s_scan s = {.p = body, .end = body + len};

    memset(out, 0, sizeof(*out));
    if (s_header(&s, out, body) && (header_only || s_rest(&s, out)))
        return 0;
    *why = s.why != NULL ? s.why : "the record is malformed";
    return KB_EPARSE;
}

/* -- the chain fields ------------------------------------------------------------------------ */

/* Lowercase hex digits' values, -1 for every other byte: a table, because the digits of a hash
 * are random and a branch per digit mispredicts half the time. */
// clang-format off
#define S_X16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
static const int8_t s_hexval[256] = {
    S_X16(-1), S_X16(-1), S_X16(-1),                                 /* 0x00 .. 0x2f */
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  -1, -1, -1, -1, -1, -1,  /* 0x30 */
    S_X16(-1), S_X16(-1),                                            /* 0x40 .. 0x5f */
    -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1,  /* 0x60 */
    S_X16(-1), S_X16(-1), S_X16(-1), S_X16(-1), S_X16(-1),           /* 0x70 .. 0xbf */
    S_X16(-1), S_X16(-1), S_X16(-1), S_X16(-1),                      /* 0xc0 .. 0xff */
};
// clang-format on

static bool s_unhex_lower(const char *hex, uint8_t *out, size_t n)
{
    int bad = 0;

    for (size_t i = 0; i < n; i++) {
        int hi = s_hexval[(unsigned char)hex[2 * i]], lo = s_hexval[(unsigned char)hex[2 * i + 1]];

        bad |= hi | lo;
        out[i] = (uint8_t)(((unsigned)hi & 0xfu) << 4 | ((unsigned)lo & 0xfu));
    }
    return bad >= 0;
}

static bool s_suffix(const char *line, size_t len, enum kb_audit_mode mode,
                     struct kb_audit_line_parts *p)
{
    size_t slen = kb_audit_suffix_len(mode);
    const char *s;

    if (len < slen + 1)
        return false;
    s = line + len - slen;
    if (memcmp(s, ",\"h\":\"", 6) != 0 || !s_unhex_lower(s + 6, p->h, sizeof(p->h)))
        return false;
    s += 6 + KB_AUDIT_HEX_LEN;
    if (mode == KB_AUDIT_MODE_HMAC) {
        if (memcmp(s, "\",\"tag\":\"", 9) != 0 || !s_unhex_lower(s + 9, p->tag, sizeof(p->tag)))
            return false;
        s += 9 + KB_AUDIT_HEX_LEN;
    }
    if (memcmp(s, "\"}", 2) != 0)
        return false;
    p->mode = mode;
    p->body_len = len - slen;
    return true;
}

int kb_audit__split_strict(const char *line, size_t len, struct kb_audit_line_parts *out)
{
    memset(out, 0, sizeof(*out));
    if (s_suffix(line, len, KB_AUDIT_MODE_HMAC, out) ||
        s_suffix(line, len, KB_AUDIT_MODE_SHA256, out))
        return 0;
    return KB_EPARSE;
}
