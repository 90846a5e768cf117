/*
 * sigv4_text.c - the text side of SigV4 signing: growable buffers, character classes, URI
 * encoding and path normalization. Part of the sigv4 module (see sigv4_internal.h); pure, no I/O.
 *
 * Every buffer here may carry the session token, so storage is wiped before it is freed or
 * replaced. This file must never log, print or copy what it handles anywhere but the buffer it was
 * asked to write, and never touches the secret access key or a derived key (those live in
 * sigv4_key.c's guarded memory). Percent-encoding writes its two uppercase digits from a table:
 * that is RFC 3986's escape format, not a digest's hex form, which always comes from
 * sodium_bin2hex().
 */
#include "aws/sigv4_internal.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffers ---------------------------------------------------------------------------- */

static bool s_buf_reserve(struct kb__sigv4_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (b->failed)
        return false;
    if (b->cap - b->len > extra)
        return true;
    if (extra > SIZE_MAX / 2 - b->len - 1) {
        b->failed = true;
        return false;
    }
    need = b->len + extra + 1;
    cap = b->cap > 0 ? b->cap : 128;
    while (cap < need)
        cap *= 2;
    p = malloc(cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    p[0] = '\0';
    if (b->ptr != NULL) {
        memcpy(p, b->ptr, b->len + 1);
        sodium_memzero(b->ptr, b->cap);
        free(b->ptr);
    }
    b->ptr = p;
    b->cap = cap;
    return true;
}

void kb__sigv4_buf_reset(struct kb__sigv4_buf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->ptr != NULL)
        b->ptr[0] = '\0';
}

void kb__sigv4_buf_free(struct kb__sigv4_buf *b)
{
    if (b->ptr != NULL) {
        sodium_memzero(b->ptr, b->cap);
        free(b->ptr);
    }
    memset(b, 0, sizeof(*b));
}

const char *kb__sigv4_buf_str(const struct kb__sigv4_buf *b)
{
    return b->ptr != NULL ? b->ptr : "";
}

void kb__sigv4_buf_add(struct kb__sigv4_buf *b, const char *p, size_t n)
{
    if (!s_buf_reserve(b, n))
        return;
    memcpy(b->ptr + b->len, p, n);
    b->len += n;
    b->ptr[b->len] = '\0';
}

void kb__sigv4_buf_adds(struct kb__sigv4_buf *b, const char *s)
{
    kb__sigv4_buf_add(b, s, strlen(s));
}

void kb__sigv4_buf_addc(struct kb__sigv4_buf *b, char c)
{
    kb__sigv4_buf_add(b, &c, 1);
}

void kb__sigv4_buf_add_buf(struct kb__sigv4_buf *b, const struct kb__sigv4_buf *src)
{
    kb__sigv4_buf_add(b, kb__sigv4_buf_str(src), src->len);
}

void kb__sigv4_buf_add_hex(struct kb__sigv4_buf *b, const unsigned char bin[KB__SIGV4_KEY_LEN])
{
    if (!s_buf_reserve(b, KB__SIGV4_HEX_LEN))
        return;
    sodium_bin2hex(b->ptr + b->len, KB__SIGV4_HEX_LEN + 1, bin, KB__SIGV4_KEY_LEN);
    b->len += KB__SIGV4_HEX_LEN;
}

/* ---- character classes and encodings ------------------------------------------------------ */

static bool s_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* RFC 9110 token characters: what a header name or a method may contain. */
static bool s_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool s_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool s_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

bool kb__sigv4_all(const char *s, bool (*ok)(unsigned char))
{
    for (; *s != '\0'; s++)
        if (!ok((unsigned char)*s))
            return false;
    return true;
}

bool kb__sigv4_token_string(const char *s)
{
    return s != NULL && *s != '\0' && kb__sigv4_all(s, s_tchar);
}

/* A credential scope part (access key id, region, service): no '/', space or control byte. */
static bool s_scope_char(unsigned char c)
{
    return c > 0x20 && c != 0x7f && c != '/';
}

bool kb__sigv4_scope_string(const char *s)
{
    return s != NULL && *s != '\0' && kb__sigv4_all(s, s_scope_char);
}

/* Header values may span lines; anything else below 0x20 (and DEL) is refused. */
bool kb__sigv4_value_char(unsigned char c)
{
    return !s_ctl(c) || s_space(c);
}

bool kb__sigv4_no_ctl_char(unsigned char c)
{
    return !s_ctl(c);
}

bool kb__sigv4_lower_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool kb__sigv4_ascii_caseeq(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;

        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return *a == *b;
}

void kb__sigv4_buf_add_lower(struct kb__sigv4_buf *b, const char *s, size_t n)
{
    size_t i;

    if (!s_buf_reserve(b, n))
        return;
    for (i = 0; i < n; i++) {
        char c = s[i];

        b->ptr[b->len++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    b->ptr[b->len] = '\0';
}

static const char s_digits[] = "0123456789ABCDEF";

/* SigV4's UriEncode of one byte into o (room for 3): unreserved bytes stay, the rest is %XX. */
static char *s_encode_byte(char *o, unsigned char c, bool keep_slash)
{
    if (s_unreserved(c) || (keep_slash && c == '/')) {
        *o++ = (char)c;
    } else {
        *o++ = '%';
        *o++ = s_digits[c >> 4];
        *o++ = s_digits[c & 0x0f];
    }
    return o;
}

/* Reserves room for n bytes to encode (3 each) and returns where they go, or NULL. */
static char *s_buf_encode_room(struct kb__sigv4_buf *b, size_t n)
{
    if (n > SIZE_MAX / 3) {
        b->failed = true;
        return NULL;
    }
    return s_buf_reserve(b, 3 * n) ? b->ptr + b->len : NULL;
}

static void s_buf_encode_done(struct kb__sigv4_buf *b, char *o)
{
    *o = '\0';
    b->len = (size_t)(o - b->ptr);
}

void kb__sigv4_buf_add_encoded(struct kb__sigv4_buf *b, const char *p, size_t n, bool keep_slash)
{
    char *o = s_buf_encode_room(b, n);
    size_t i;

    if (o == NULL)
        return;
    for (i = 0; i < n; i++)
        o = s_encode_byte(o, (unsigned char)p[i], keep_slash);
    s_buf_encode_done(b, o);
}

/* A query key or value as sent may be encoded or not ("%E1%88%B4" or raw UTF-8): decode each
 * valid %XX escape, then encode canonically, so both spellings sign alike. '+' stays a literal
 * '+' (AWS does not read it as a space). */
void kb__sigv4_buf_add_recoded(struct kb__sigv4_buf *b, const char *p, size_t n)
{
    char *o = s_buf_encode_room(b, n);
    unsigned char c;
    size_t i = 0, got;

    if (o == NULL)
        return;
    while (i < n) {
        if (p[i] == '%' && n - i >= 3 &&
            sodium_hex2bin(&c, 1, p + i + 1, 2, NULL, &got, NULL) == 0 && got == 1) {
            i += 3;
        } else {
            c = (unsigned char)p[i++];
        }
        o = s_encode_byte(o, c, false);
    }
    s_buf_encode_done(b, o);
}

/* Trims the value and collapses each run of whitespace (line breaks included) to one space. */
void kb__sigv4_buf_add_trimmed(struct kb__sigv4_buf *b, const char *v)
{
    size_t n = strlen(v);
    char *o, *start;
    bool gap = false;

    if (!s_buf_reserve(b, n))
        return;
    start = o = b->ptr + b->len;
    for (; *v != '\0'; v++) {
        if (s_space((unsigned char)*v)) {
            gap = o != start;
            continue;
        }
        if (gap)
            *o++ = ' ';
        gap = false;
        *o++ = *v;
    }
    *o = '\0';
    b->len = (size_t)(o - b->ptr);
}

/* Removes "." and ".." segments and empty ones ("//"); keeps a trailing slash. The result is
 * never longer than the input plus one byte. */
void kb__sigv4_normalize_path(struct kb__sigv4_buf *out, const char *p, size_t n)
{
    size_t i = 0, start, seg, len = 0;
    char *o;

    kb__sigv4_buf_reset(out);
    if (!s_buf_reserve(out, n + 1))
        return;
    o = out->ptr;
    while (i < n) {
        while (i < n && p[i] == '/')
            i++;
        start = i;
        while (i < n && p[i] != '/')
            i++;
        seg = i - start;
        if (seg == 0 || (seg == 1 && p[start] == '.'))
            continue;
        if (seg == 2 && p[start] == '.' && p[start + 1] == '.') {
            while (len > 0 && o[len - 1] != '/')
                len--;
            if (len > 0)
                len--;
            continue;
        }
        o[len++] = '/';
        memcpy(o + len, p + start, seg);
        len += seg;
    }
    if (len == 0 || (n > 0 && p[n - 1] == '/'))
        o[len++] = '/';
    o[len] = '\0';
    out->len = len;
}
