/*
 * config_rules.c - the naming and format rules of AWS and of keybroker, as pure predicates.
 *
 * Each check answers "is this string acceptable where AWS (or the broker) will use it?" and, when
 * it is not, says why in a sentence the config loader appends to "<value> is not a valid <thing>:
 * ". The rules follow AWS's documentation (S3 bucket naming, IAM names and paths, ARNs, Secrets
 * Manager names, tag syntax). This file must never allocate, do I/O or depend on the loader's
 * state: it is called with untrusted input from several places.
 */
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "common/err.h"

#define S_IAM_NAME_CHARS    "+=,.@_-"
#define S_SECRET_NAME_CHARS "/_+=.@-"
#define S_TAG_CHARS         " _.:/=+-@"

static bool s_is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool s_is_alpha(char c)
{
    return s_is_lower(c) || (c >= 'A' && c <= 'Z');
}

static bool s_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool s_is_hex(char c)
{
    return s_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool s_all(const char *s, size_t len, bool (*pred)(char))
{
    for (size_t i = 0; i < len; i++) {
        if (!pred(s[i])) {
            return false;
        }
    }
    return true;
}

/* Every byte is an ASCII letter, a digit, or one of extra. */
static bool s_charset(const char *s, size_t len, const char *extra)
{
    for (size_t i = 0; i < len; i++) {
        if (!s_is_alpha(s[i]) && !s_is_digit(s[i]) && (s[i] == '\0' || !strchr(extra, s[i]))) {
            return false;
        }
    }
    return true;
}

static bool s_starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool s_starts_with_nocase(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static bool s_ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

bool kb_config__utf8_chars(const char *s, size_t len, size_t *chars)
{
    size_t n = 0;

    for (size_t i = 0; i < len; n++) {
        unsigned char c = (unsigned char)s[i];
        size_t more = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : 3;
        unsigned long cp = more == 0   ? c
                           : more == 1 ? c & 0x1Fu
                           : more == 2 ? c & 0x0Fu
                                       : c & 0x07u;

        if ((c >= 0x80 && c < 0xC2) || c > 0xF4 || len - i <= more) {
            return false;
        }
        for (size_t k = 1; k <= more; k++) {
            unsigned char cc = (unsigned char)s[i + k];
            if ((cc & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (cc & 0x3Fu);
        }
        if ((more == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (more == 3 && (cp < 0x10000 || cp > 0x10FFFF))) {
            return false;
        }
        i += more + 1;
    }
    if (chars != NULL) {
        *chars = n;
    }
    return true;
}

/* a.b.c.d with 1..3 digits each: what S3 means by "formatted as an IP address". */
static bool s_looks_like_ipv4(const char *s)
{
    int parts = 0;
    size_t digits = 0;

    for (;; s++) {
        if (s_is_digit(*s)) {
            digits++;
            continue;
        }
        if ((*s != '.' && *s != '\0') || digits == 0 || digits > 3) {
            return false;
        }
        parts++;
        digits = 0;
        if (*s == '\0') {
            return parts == 4;
        }
    }
}

static bool s_bucket_char(char c)
{
    return s_is_lower(c) || s_is_digit(c) || c == '.' || c == '-';
}

int kb_config_check_bucket(const char *name, char *why, size_t whylen)
{
    static const char *const reserved_prefixes[] = {"xn--", "sthree-", "amzn-s3-demo-"};
    static const char *const reserved_suffixes[] = {"-s3alias", "--ol-s3", ".mrap", "--x-s3",
                                                    "--table-s3"};
    size_t len = strlen(name);

    if (len < 3 || len > 63) {
        return kb_config__why(why, whylen, "it must be 3 to 63 characters long (it has %zu)", len);
    }
    if (!s_all(name, len, s_bucket_char)) {
        return kb_config__why(why, whylen,
                              "only lowercase letters, digits, dots and hyphens are allowed");
    }
    if (!s_bucket_char(name[0]) || name[0] == '.' || name[0] == '-' || name[len - 1] == '.' ||
        name[len - 1] == '-') {
        return kb_config__why(why, whylen,
                              "it must begin and end with a lowercase letter or a digit");
    }
    if (strstr(name, "..") != NULL) {
        return kb_config__why(why, whylen, "it must not contain two adjacent dots");
    }
    if (s_looks_like_ipv4(name)) {
        return kb_config__why(why, whylen, "it must not be formatted as an IP address");
    }
    for (size_t i = 0; i < sizeof reserved_prefixes / sizeof *reserved_prefixes; i++) {
        if (s_starts_with(name, reserved_prefixes[i])) {
            return kb_config__why(why, whylen, "the prefix \"%s\" is reserved by S3",
                                  reserved_prefixes[i]);
        }
    }
    for (size_t i = 0; i < sizeof reserved_suffixes / sizeof *reserved_suffixes; i++) {
        if (s_ends_with(name, len, reserved_suffixes[i])) {
            return kb_config__why(why, whylen, "the suffix \"%s\" is reserved by S3",
                                  reserved_suffixes[i]);
        }
    }
    return 0;
}

int kb_config_check_iam_user_name(const char *name, char *why, size_t whylen)
{
    size_t len = strlen(name);

    if (len < 1 || len > 64) {
        return kb_config__why(why, whylen, "it must be 1 to 64 characters long (it has %zu)", len);
    }
    if (!s_charset(name, len, S_IAM_NAME_CHARS)) {
        return kb_config__why(why, whylen,
                              "only letters, digits and the characters " S_IAM_NAME_CHARS
                              " are allowed");
    }
    return 0;
}

int kb_config_check_tenant_name(const char *name, char *why, size_t whylen)
{
    /* The tenant name becomes part of the IAM user name, so it obeys the same rules. */
    return kb_config_check_iam_user_name(name, why, whylen);
}

int kb_config_check_secret_name(const char *name, char *why, size_t whylen)
{
    size_t len = strlen(name);

    if (len < 1 || len > 512) {
        return kb_config__why(why, whylen, "it must be 1 to 512 characters long (it has %zu)", len);
    }
    if (!s_charset(name, len, S_SECRET_NAME_CHARS)) {
        return kb_config__why(why, whylen,
                              "only letters, digits and the characters " S_SECRET_NAME_CHARS
                              " are allowed");
    }
    return 0;
}

static bool s_iam_path_char(char c)
{
    return c >= 0x21 && c <= 0x7E;
}

int kb_config_check_iam_path(const char *path, char *why, size_t whylen)
{
    size_t len = strlen(path);

    if (len < 1 || len > 512) {
        return kb_config__why(why, whylen, "it must be 1 to 512 characters long (it has %zu)", len);
    }
    if (path[0] != '/' || path[len - 1] != '/') {
        return kb_config__why(why, whylen, "it must begin and end with \"/\"");
    }
    if (!s_all(path, len, s_iam_path_char)) {
        return kb_config__why(why, whylen,
                              "only printable ASCII characters other than space are allowed");
    }
    return 0;
}

static bool s_has_dotdot_segment(const char *s)
{
    for (const char *seg = s;;) {
        const char *end = strchr(seg, '/');
        size_t n = end != NULL ? (size_t)(end - seg) : strlen(seg);
        if (n == 2 && seg[0] == '.' && seg[1] == '.') {
            return true;
        }
        if (end == NULL) {
            return false;
        }
        seg = end + 1;
    }
}

int kb_config_check_prefix(const char *prefix, char *why, size_t whylen)
{
    size_t len = strlen(prefix);

    if (len > 512) {
        return kb_config__why(why, whylen, "it must be at most 512 bytes long (it has %zu)", len);
    }
    if (!kb_config__utf8_chars(prefix, len, NULL)) {
        return kb_config__why(why, whylen, "it must be valid UTF-8");
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)prefix[i] < 0x20 || prefix[i] == 0x7F) {
            return kb_config__why(why, whylen, "control characters are not allowed");
        }
        if (prefix[i] == '*' || prefix[i] == '?' || prefix[i] == '$') {
            return kb_config__why(why, whylen,
                                  "'*', '?' and '$' are not allowed (IAM policies would read them "
                                  "as wildcards or variables)");
        }
    }
    if (prefix[0] == '/') {
        return kb_config__why(why, whylen, "it must not begin with \"/\"");
    }
    if (s_has_dotdot_segment(prefix)) {
        return kb_config__why(why, whylen, "it must not contain a \"..\" segment");
    }
    return 0;
}

static bool s_action_char(char c)
{
    return s_is_alpha(c) || c == '*';
}

int kb_config_check_s3_action(const char *action, char *why, size_t whylen)
{
    size_t len = strlen(action);

    if (!s_starts_with(action, "s3:")) {
        return kb_config__why(why, whylen, "it must begin with \"s3:\"");
    }
    if (len == 3 || len > 128 || !s_all(action + 3, len - 3, s_action_char)) {
        return kb_config__why(why, whylen,
                              "the action after \"s3:\" must be 1 to 125 letters or '*' "
                              "wildcards");
    }
    return 0;
}

/* "aws", "aws-cn", "aws-us-gov", "aws-iso-b", ...: aws(-[a-z]+)*, at most 32 bytes. */
bool kb_config__check_partition(const char *s, size_t len)
{
    if (len < 3 || len > 32 || memcmp(s, "aws", 3) != 0) {
        return false;
    }
    for (size_t i = 3; i < len; i++) {
        if (s[i] == '-' ? (i + 1 == len || s[i + 1] == '-') : !s_is_lower(s[i])) {
            return false;
        }
    }
    return true;
}

bool kb_config__check_region(const char *s, size_t len)
{
    if (len < 1 || len > 63) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!s_is_lower(s[i]) && !s_is_digit(s[i]) && s[i] != '-') {
            return false;
        }
    }
    return true;
}

/* Splits an ARN into its six fields; the last one (the resource) keeps any further colons. */
static bool s_split_arn(const char *arn, const char *field[6], size_t flen[6])
{
    const char *p = arn;

    for (int i = 0; i < 5; i++) {
        const char *colon = strchr(p, ':');
        if (colon == NULL) {
            return false;
        }
        field[i] = p;
        flen[i] = (size_t)(colon - p);
        p = colon + 1;
    }
    field[5] = p;
    flen[5] = strlen(p);
    return flen[0] == 3 && memcmp(field[0], "arn", 3) == 0;
}

static void s_copy_field(char *out, const char *s, size_t len)
{
    /* Callers pass 64-byte buffers and fields already checked to be at most 63 bytes. */
    if (out != NULL) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
}

static bool s_is_account(const char *s, size_t len)
{
    return len == 12 && s_all(s, len, s_is_digit);
}

int kb_config_check_policy_arn(const char *arn, char *partition_out, char *why, size_t whylen)
{
    const char *f[6];
    size_t n[6];
    const char *name;

    if (strlen(arn) > 2048 || !s_split_arn(arn, f, n)) {
        return kb_config__why(why, whylen,
                              "expected arn:<partition>:iam::<account>:policy/[<path>/]<name>");
    }
    if (!kb_config__check_partition(f[1], n[1])) {
        return kb_config__why(why, whylen, "the partition must be \"aws\" or \"aws-<name>\"");
    }
    if (n[2] != 3 || memcmp(f[2], "iam", 3) != 0 || n[3] != 0) {
        return kb_config__why(why, whylen, "it must be an IAM ARN: arn:<partition>:iam::...");
    }
    if (!s_is_account(f[4], n[4]) && !(n[4] == 3 && memcmp(f[4], "aws", 3) == 0)) {
        return kb_config__why(why, whylen, "the account must be 12 digits or \"aws\"");
    }
    if (!s_starts_with(f[5], "policy/") || !s_all(f[5], n[5], s_iam_path_char)) {
        return kb_config__why(why, whylen,
                              "the resource must be policy/[<path>/]<name> in printable ASCII");
    }
    name = strrchr(f[5], '/') + 1;
    if (strlen(name) < 1 || strlen(name) > 128 ||
        !s_charset(name, strlen(name), S_IAM_NAME_CHARS)) {
        return kb_config__why(
            why, whylen,
            "the policy name must be 1 to 128 letters, digits or " S_IAM_NAME_CHARS " characters");
    }
    s_copy_field(partition_out, f[1], n[1]);
    return 0;
}

/* 1234abcd-12ab-34cd-56ef-1234567890ab or mrk-<32 hex> (a multi-Region key). */
static bool s_is_key_id(const char *s)
{
    static const size_t dash_at[] = {8, 13, 18, 23};
    size_t len = strlen(s);

    if (s_starts_with(s, "mrk-")) {
        return len == 36 && s_all(s + 4, 32, s_is_hex);
    }
    if (len != 36) {
        return false;
    }
    for (size_t i = 0, d = 0; i < len; i++) {
        if (d < 4 && i == dash_at[d]) {
            d++;
            if (s[i] != '-') {
                return false;
            }
        } else if (!s_is_hex(s[i])) {
            return false;
        }
    }
    return true;
}

/* alias/<name>: [A-Za-z0-9/_-], 1..256 bytes in all. */
static bool s_is_alias(const char *s, size_t len)
{
    return len > 6 && len <= 256 && s_starts_with(s, "alias/") && s_charset(s + 6, len - 6, "/_-");
}

int kb_config_check_kms_key(const char *key, char *partition_out, char *region_out, char *why,
                            size_t whylen)
{
    const char *f[6];
    size_t n[6];
    bool ok;

    if (partition_out != NULL) {
        partition_out[0] = '\0';
    }
    if (region_out != NULL) {
        region_out[0] = '\0';
    }
    if (!s_starts_with(key, "arn:")) {
        if (s_is_key_id(key) || s_is_alias(key, strlen(key))) {
            return 0;
        }
        return kb_config__why(why, whylen, "use a key id, alias/<name>, or a KMS key or alias ARN");
    }
    ok = s_split_arn(key, f, n) && kb_config__check_partition(f[1], n[1]) && n[2] == 3 &&
         memcmp(f[2], "kms", 3) == 0 && kb_config__check_region(f[3], n[3]) &&
         s_is_account(f[4], n[4]);
    if (!ok) {
        return kb_config__why(why, whylen,
                              "expected arn:<partition>:kms:<region>:<12-digit account>:key/<id> "
                              "or ...:alias/<name>");
    }
    if (!(s_starts_with(f[5], "key/") && s_is_key_id(f[5] + 4)) && !s_is_alias(f[5], n[5])) {
        return kb_config__why(why, whylen, "the resource must be key/<key id> or alias/<name>");
    }
    s_copy_field(partition_out, f[1], n[1]);
    s_copy_field(region_out, f[3], n[3]);
    return 0;
}

static bool s_tag_chars(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        /* Non-ASCII bytes belong to UTF-8 letters (\p{L}); the caller has validated UTF-8. */
        if ((unsigned char)s[i] < 0x80 && !s_charset(s + i, 1, S_TAG_CHARS)) {
            return false;
        }
    }
    return true;
}

int kb_config_check_tag(const char *text, bool is_key, char *why, size_t whylen)
{
    size_t len = strlen(text);
    size_t chars = 0;

    if (!kb_config__utf8_chars(text, len, &chars)) {
        return kb_config__why(why, whylen, "it must be valid UTF-8");
    }
    if (is_key && (chars < 1 || chars > 128)) {
        return kb_config__why(why, whylen, "tag keys must be 1 to 128 characters long (it has %zu)",
                              chars);
    }
    if (!is_key && chars > 256) {
        return kb_config__why(why, whylen,
                              "tag values must be at most 256 characters long (it has %zu)", chars);
    }
    if (!s_tag_chars(text, len)) {
        return kb_config__why(why, whylen,
                              "only letters, digits, spaces and the characters _.:/=+-@ are "
                              "allowed");
    }
    if (s_starts_with_nocase(text, "aws:")) {
        return kb_config__why(why, whylen, "the \"aws:\" prefix is reserved by AWS");
    }
    if (is_key && s_starts_with_nocase(text, "keybroker:")) {
        return kb_config__why(why, whylen,
                              "the \"keybroker:\" prefix is reserved for keybroker's own tags");
    }
    return 0;
}

int kb_config_parse_duration(const char *text, uint64_t *seconds)
{
    uint64_t n = 0;
    uint64_t unit = 1;
    const char *p = text;

    if (!s_is_digit(*p)) {
        return KB_EINVAL;
    }
    for (; s_is_digit(*p); p++) {
        uint64_t digit = (uint64_t)(*p - '0');
        if (n > UINT64_MAX / 10 || (n == UINT64_MAX / 10 && digit > UINT64_MAX % 10)) {
            return KB_EINVAL;
        }
        n = n * 10 + digit;
    }
    switch (*p) {
    case '\0':
        break;
    case 's':
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    default:
        return KB_EINVAL;
    }
    if (*p != '\0' && p[1] != '\0') {
        return KB_EINVAL;
    }
    if (n > UINT64_MAX / unit) {
        return KB_EINVAL;
    }
    *seconds = n * unit;
    return 0;
}

int kb_config_parse_mode(const char *text, uint32_t *mode)
{
    size_t len = strlen(text);
    uint32_t m = 0;

    if (len < 3 || len > 4) {
        return KB_EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '7') {
            return KB_EINVAL;
        }
        m = m * 8 + (uint32_t)(text[i] - '0');
    }
    if (m > 0777) {
        return KB_EINVAL;
    }
    *mode = m;
    return 0;
}
