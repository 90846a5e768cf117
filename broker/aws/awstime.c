/*
 * awstime.c - the timestamp forms of awstime.h.
 *
 * timegm() does the calendar arithmetic; what is written here is the reading of the text and the
 * range checks timegm() would silently normalise ("February 30" -> March 2).
 */
#include "aws/awstime.h"

#include <stdint.h>
#include <string.h>

#include "common/err.h"

#define S_MAX_EPOCH 253402300799LL /* 9999-12-31T23:59:59Z */

/* Reads exactly n decimal digits at *p and advances it. */
static bool s_digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        char ch = (*p)[i];

        if (ch < '0' || ch > '9')
            return false;
        v = v * 10 + (ch - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool s_expect(const char **p, const char *any_of)
{
    if (**p == '\0' || strchr(any_of, **p) == NULL)
        return false;
    (*p)++;
    return true;
}

static int s_days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return month == 2 && leap ? 29 : days[month - 1];
}

/* "+HH:MM", "-HH:MM", "+HHMM" or "-HHMM" into seconds east of UTC. */
static bool s_offset(const char **p, long *offset)
{
    int sign, hh, mm;

    if (**p != '+' && **p != '-')
        return false;
    sign = **p == '-' ? -1 : 1;
    (*p)++;
    if (!s_digits(p, 2, &hh))
        return false;
    if (**p == ':')
        (*p)++;
    if (!s_digits(p, 2, &mm) || hh > 23 || mm > 59)
        return false;
    *offset = sign * (hh * 3600L + mm * 60L);
    return true;
}

struct s_fields {
    int year, mon, day, hh, mi, ss;
    long offset; /* seconds east of UTC */
};

static int s_make(const struct s_fields *f, time_t *out)
{
    struct tm tm;
    time_t t;

    if (f->year < 1970 || f->mon < 1 || f->mon > 12 || f->day < 1 ||
        f->day > s_days_in_month(f->year, f->mon) || f->hh > 23 || f->mi > 59 || f->ss > 60)
        return KB_EPARSE;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = f->year - 1900;
    tm.tm_mon = f->mon - 1;
    tm.tm_mday = f->day;
    tm.tm_hour = f->hh;
    tm.tm_min = f->mi;
    tm.tm_sec = f->ss; /* a leap second 60 rolls over to the next minute */
    t = timegm(&tm);
    if (t == (time_t)-1)
        return KB_EPARSE;
    *out = t - f->offset;
    return 0;
}

/* An optional ".digits" (fractions of a second are dropped): false for a "." without digits. */
static bool s_fraction(const char **p)
{
    if (**p != '.')
        return true;
    (*p)++;
    if (**p < '0' || **p > '9')
        return false;
    while (**p >= '0' && **p <= '9')
        (*p)++;
    return true;
}

/* HH:MM:SS */
static bool s_clock(const char **p, struct s_fields *f)
{
    return s_digits(p, 2, &f->hh) && s_expect(p, ":") && s_digits(p, 2, &f->mi) &&
           s_expect(p, ":") && s_digits(p, 2, &f->ss);
}

static int s_iso(const char *s, bool strict, time_t *out)
{
    struct s_fields f = {0};
    const char *p = s;

    if (!s_digits(&p, 4, &f.year) || !s_expect(&p, "-") || !s_digits(&p, 2, &f.mon) ||
        !s_expect(&p, "-") || !s_digits(&p, 2, &f.day) || !s_expect(&p, strict ? "Tt" : "Tt ") ||
        !s_clock(&p, &f))
        return KB_EPARSE;
    if (!s_fraction(&p))
        return KB_EPARSE;
    if (*p == 'Z' || *p == 'z')
        p++;
    else if (*p == '+' || *p == '-') {
        if (!s_offset(&p, &f.offset))
            return KB_EPARSE;
    } else if (strict)
        return KB_EPARSE; /* no zone */
    if (*p != '\0')
        return KB_EPARSE;
    return s_make(&f, out);
}

/* [Www, ]D[D] Mon YYYY HH:MM:SS ZONE */
static int s_rfc822(const char *s, time_t *out)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    struct s_fields f = {0};
    const char *p = s;
    const char *m;

    if (p[0] != '\0' && p[1] != '\0' && p[2] != '\0' && p[3] == ',') {
        p += 4;
        while (*p == ' ')
            p++;
    }
    if (!s_digits(&p, 2, &f.day) && !s_digits(&p, 1, &f.day))
        return KB_EPARSE;
    if (!s_expect(&p, " ") || strlen(p) < 3)
        return KB_EPARSE;
    m = strstr(months, (char[4]){p[0], p[1], p[2], '\0'});
    if (m == NULL || (m - months) % 3 != 0)
        return KB_EPARSE;
    f.mon = (int)(m - months) / 3 + 1;
    p += 3;
    if (!s_expect(&p, " ") || !s_digits(&p, 4, &f.year) || !s_expect(&p, " ") || !s_clock(&p, &f) ||
        !s_expect(&p, " "))
        return KB_EPARSE;
    if (strcmp(p, "GMT") == 0 || strcmp(p, "UTC") == 0 || strcmp(p, "UT") == 0 ||
        strcmp(p, "Z") == 0)
        return s_make(&f, out);
    if (!s_offset(&p, &f.offset) || *p != '\0')
        return KB_EPARSE;
    return s_make(&f, out);
}

/* Seconds since the epoch, an optional fraction dropped. */
static int s_epoch(const char *s, time_t *out)
{
    long long v = 0;
    const char *p = s;

    if (*p < '0' || *p > '9')
        return KB_EPARSE;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > S_MAX_EPOCH)
            return KB_EPARSE;
    }
    if (!s_fraction(&p))
        return KB_EPARSE;
    if (*p != '\0')
        return KB_EPARSE;
    *out = (time_t)v;
    return 0;
}

int kb_awstime_parse(const char *s, bool strict, time_t *out)
{
    time_t t = 0;
    int rc;

    if (s == NULL || s[0] == '\0')
        return KB_EPARSE;
    rc = s_iso(s, strict, &t);
    if (rc != 0 && !strict) {
        size_t digits = strspn(s, "0123456789");

        /* "2026-..." is a failed ISO date, not an epoch; "Thu, ..." or "3 Dec ..." is RFC 822. */
        if (s[digits] == '\0' || s[digits] == '.')
            rc = s_epoch(s, &t);
        else
            rc = s_rfc822(s, &t);
    }
    if (rc == 0)
        *out = t;
    return rc;
}
