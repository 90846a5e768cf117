/*
 * awstime.h - the timestamps AWS implementations write, read with botocore's tolerance.
 *
 * The rule (it applies to every timestamp keybroker reads from a response): a time is a date, so
 * any of the spellings botocore's parser takes for a well-formed date is accepted, and the
 * instant is exact - a zone offset is applied, never dropped. What is not a date (trailing junk, a
 * day 31 in a 30-day month, hour 24) stays an error, because the key step compares key ages
 * against aws.orphan_key_min_age and a misread age could delete a key another broker is about to
 * store.
 *
 *   ISO 8601    "2026-12-03T07:00:00Z", "...T07:00:00.123456Z", "...T07:00:00+01:00",
 *               "...T07:00:00+0100", and in lenient mode also "...T07:00:00" (no zone: UTC, as
 *               botocore assumes) and a space for the T ("2026-12-03 07:00:00+00:00", Python's
 *               str(datetime), which moto writes)
 *   RFC 822     "Thu, 03 Dec 2026 07:00:00 GMT" (HTTP dates; also "UTC", "Z", "+0000", and
 *               without the weekday), lenient mode only
 *   epoch       "1796281200" or "1796281200.5" (seconds, as JSON protocols write numbers),
 *               lenient mode only; fractions are dropped
 *
 * Years 1970..9999. Pure code, no locale: month and day names are English whatever LC_TIME says.
 */
#ifndef KB_AWSTIME_H
#define KB_AWSTIME_H

#include <stdbool.h>
#include <time.h>

/* Parses s (NUL-terminated) into seconds since the epoch. strict: ISO 8601 with a zone only (the
 * credential providers' Expiration); otherwise every form above. Returns 0 and *out, or
 * KB_EPARSE (then *out is untouched). */
int kb_awstime_parse(const char *s, bool strict, time_t *out);

#endif
