/*
 * config_read.c - typed readers of JSON members and the wording of the loader's messages.
 *
 * The section walkers read every member through these functions, so a problem is always worded
 * the same way ("must be a string, not an integer", "unknown key", "required key is missing",
 * "... is out of range: must be between ...") and the JSON path in front of it is built in one
 * place. Values from the file are quoted with kb_config__quote, which escapes everything that is
 * not printable ASCII, so an error line is safe to print on any terminal. Nothing here may
 * abort or trust the shape of the document.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_internal.h"

char *kb_config__strdup(struct kb_config__ctx *c, const char *s)
{
    char *copy = strdup(s);

    if (copy == NULL) {
        c->oom = true;
    }
    return copy;
}

void *kb_config__calloc(struct kb_config__ctx *c, size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size);

    if (p == NULL) {
        c->oom = true;
    }
    return p;
}

static bool s_plain_key(const char *key)
{
    if (*key == '\0') {
        return false;
    }
    for (; *key != '\0'; key++) {
        char ch = *key;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

void kb_config__path_key(char *out, size_t outlen, const char *parent, const char *key)
{
    char quoted[KB_CONFIG__QUOTE_SIZE];

    if (s_plain_key(key)) {
        snprintf(out, outlen, "%s%s%s", parent, parent[0] != '\0' ? "." : "", key);
    } else {
        snprintf(out, outlen, "%s[%s]", parent, kb_config__quote(quoted, key, strlen(key)));
    }
}

void kb_config__path_index(char *out, size_t outlen, const char *parent, size_t index)
{
    snprintf(out, outlen, "%s[%zu]", parent, index);
}

const char *kb_config__quote(char *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = len > KB_CONFIG__QUOTE_MAX ? KB_CONFIG__QUOTE_MAX : len;
    size_t o = 0;

    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch >= 0x20 && ch < 0x7F) {
            out[o++] = (char)ch;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 0xF];
        }
    }
    out[o++] = '"';
    if (n < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

const char *kb_config__type_name(struct json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
        return "null";
    case json_type_boolean:
        return "a boolean";
    case json_type_double:
        return "a number";
    case json_type_int:
        return "an integer";
    case json_type_object:
        return "an object";
    case json_type_array:
        return "an array";
    case json_type_string:
        return "a string";
    }
    return "an unknown type";
}

void kb_config__fmt_duration(char *out, size_t outlen, uint64_t seconds)
{
    static const struct {
        uint64_t size;
        char unit;
    } units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}};

    for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
        if (seconds > 0 && seconds % units[i].size == 0) {
            snprintf(out, outlen, "%" PRIu64 "%c", seconds / units[i].size, units[i].unit);
            return;
        }
    }
    snprintf(out, outlen, "%" PRIu64 "s", seconds);
}

void kb_config__check_keys(struct kb_config__ctx *c, const char *path, struct json_object *obj,
                           const char *const *allowed)
{
    char p[KB_CONFIG__PATH_MAX];

    json_object_object_foreach(obj, key, val)
    {
        size_t i = 0;
        (void)val;
        while (allowed[i] != NULL && strcmp(allowed[i], key) != 0) {
            i++;
        }
        if (allowed[i] == NULL) {
            kb_config__path_key(p, sizeof p, path, key);
            kb_config__error(c, p, "unknown key");
        }
    }
}

struct json_object *kb_config__member(struct json_object *obj, const char *key, bool *present)
{
    struct json_object *v = NULL;

    *present = obj != NULL && json_object_object_get_ex(obj, key, &v);
    return *present ? v : NULL;
}

const char *kb_config__as_string(struct kb_config__ctx *c, const char *path, struct json_object *v)
{
    const char *s;

    if (!json_object_is_type(v, json_type_string)) {
        kb_config__error(c, path, "must be a string, not %s", kb_config__type_name(v));
        return NULL;
    }
    s = json_object_get_string(v);
    if (strlen(s) != (size_t)json_object_get_string_len(v)) {
        kb_config__error(c, path, "must not contain a NUL character");
        return NULL;
    }
    return s;
}

bool kb_config__as_uint(struct kb_config__ctx *c, const char *path, struct json_object *v,
                        uint32_t min, uint32_t max, uint32_t *out)
{
    int64_t n;

    if (!json_object_is_type(v, json_type_int)) {
        kb_config__error(c, path, "must be an integer, not %s", kb_config__type_name(v));
        return false;
    }
    /* json-c saturates integers beyond int64 (and keeps uint64 ones), so range checks hold. */
    n = json_object_get_int64(v);
    if (n < (int64_t)min || n > (int64_t)max) {
        kb_config__error(c, path, "%s is out of range: must be between %" PRIu32 " and %" PRIu32,
                         json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN), min, max);
        return false;
    }
    *out = (uint32_t)n;
    return true;
}

/* Common head of the member readers: the value, or NULL with *done set when the member is
 * absent, null-and-nullable, or null-and-not (reported). */
static struct json_object *s_begin(struct kb_config__ctx *c, const char *path,
                                   struct json_object *obj, const char *key, unsigned flags,
                                   const char *type, bool *done, bool *ok)
{
    bool present;
    struct json_object *v = kb_config__member(obj, key, &present);

    *done = true;
    *ok = true;
    if (!present) {
        if (flags & KB_CONFIG__REQUIRED) {
            kb_config__error(c, path, "required key is missing");
            *ok = false;
        }
        return NULL;
    }
    if (v == NULL && !(flags & KB_CONFIG__NULLABLE)) {
        kb_config__error(c, path, "must be %s, not null", type);
        *ok = false;
        return NULL;
    }
    *done = v == NULL;
    return v;
}

bool kb_config__string(struct kb_config__ctx *c, const char *parent, struct json_object *obj,
                       const char *key, unsigned flags, const char *def, char **out)
{
    char path[KB_CONFIG__PATH_MAX];
    bool done;
    bool ok;
    struct json_object *v;
    const char *s;

    kb_config__path_key(path, sizeof path, parent, key);
    v = s_begin(c, path, obj, key, flags, "a string", &done, &ok);
    if (done) {
        bool present;
        (void)kb_config__member(obj, key, &present);
        /* An accepted null stores NULL; absence and errors store the default. */
        *out = (ok && present) || def == NULL ? NULL : kb_config__strdup(c, def);
        return ok;
    }
    s = kb_config__as_string(c, path, v);
    if (s == NULL) {
        s = def;
    }
    *out = s != NULL ? kb_config__strdup(c, s) : NULL;
    return s != NULL && s != def;
}

bool kb_config__bool(struct kb_config__ctx *c, const char *parent, struct json_object *obj,
                     const char *key, bool def, bool *out)
{
    char path[KB_CONFIG__PATH_MAX];
    bool done;
    bool ok;
    struct json_object *v;

    kb_config__path_key(path, sizeof path, parent, key);
    *out = def;
    v = s_begin(c, path, obj, key, 0, "a boolean", &done, &ok);
    if (done) {
        return ok;
    }
    if (!json_object_is_type(v, json_type_boolean)) {
        kb_config__error(c, path, "must be a boolean, not %s", kb_config__type_name(v));
        return false;
    }
    *out = json_object_get_boolean(v);
    return true;
}

bool kb_config__uint(struct kb_config__ctx *c, const char *parent, struct json_object *obj,
                     const char *key, uint32_t min, uint32_t max, uint32_t def, uint32_t *out)
{
    char path[KB_CONFIG__PATH_MAX];
    bool done;
    bool ok;
    struct json_object *v;

    kb_config__path_key(path, sizeof path, parent, key);
    *out = def;
    v = s_begin(c, path, obj, key, 0, "an integer", &done, &ok);
    if (done) {
        return ok;
    }
    return kb_config__as_uint(c, path, v, min, max, out);
}

/* Seconds from an integer or a "<n>[smhd]" string; false after reporting a wrong value. */
static bool s_duration_value(struct kb_config__ctx *c, const char *path, struct json_object *v,
                             uint64_t *secs, char *shown, size_t shownlen)
{
    char q[KB_CONFIG__QUOTE_SIZE];

    if (json_object_is_type(v, json_type_int)) {
        int64_t n = json_object_get_int64(v);
        snprintf(shown, shownlen, "%s", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        *secs = n < 0 ? UINT64_MAX : (uint64_t)n;
        return true;
    }
    if (!json_object_is_type(v, json_type_string)) {
        kb_config__error(c, path,
                         "must be a duration (a number of seconds or a string like \"30d\"), "
                         "not %s",
                         kb_config__type_name(v));
        return false;
    }
    kb_config__quote(q, json_object_get_string(v), (size_t)json_object_get_string_len(v));
    if (kb_config_parse_duration(json_object_get_string(v), secs) != 0 ||
        strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
        kb_config__error(c, path,
                         "%s is not a valid duration: use a number of seconds or a string like "
                         "\"90s\", \"15m\", \"12h\" or \"30d\"",
                         q);
        return false;
    }
    snprintf(shown, shownlen, "%s", q);
    return true;
}

bool kb_config__duration(struct kb_config__ctx *c, const char *parent, struct json_object *obj,
                         const char *key, unsigned flags, uint64_t min, uint64_t max, uint64_t def,
                         uint64_t *out)
{
    char path[KB_CONFIG__PATH_MAX];
    char shown[KB_CONFIG__QUOTE_SIZE];
    char lo[32];
    char hi[32];
    bool done;
    bool ok;
    uint64_t secs = 0;
    struct json_object *v;

    kb_config__path_key(path, sizeof path, parent, key);
    *out = def;
    v = s_begin(c, path, obj, key, flags, "a duration", &done, &ok);
    if (done) {
        bool present;
        (void)kb_config__member(obj, key, &present);
        if (ok && present) {
            *out = 0; /* an accepted null */
        }
        return ok;
    }
    if (!s_duration_value(c, path, v, &secs, shown, sizeof shown)) {
        return false;
    }
    if (secs < min || secs > max) {
        kb_config__fmt_duration(lo, sizeof lo, min);
        kb_config__fmt_duration(hi, sizeof hi, max);
        kb_config__error(c, path, "%s is out of range: must be between %s and %s", shown, lo, hi);
        return false;
    }
    *out = secs;
    return true;
}

static struct json_object *s_typed(struct kb_config__ctx *c, const char *parent,
                                   struct json_object *obj, const char *key, enum json_type type,
                                   const char *name)
{
    char path[KB_CONFIG__PATH_MAX];
    bool done;
    bool ok;
    struct json_object *v;

    kb_config__path_key(path, sizeof path, parent, key);
    v = s_begin(c, path, obj, key, 0, name, &done, &ok);
    if (done) {
        return NULL;
    }
    if (!json_object_is_type(v, type)) {
        kb_config__error(c, path, "must be %s, not %s", name, kb_config__type_name(v));
        return NULL;
    }
    return v;
}

struct json_object *kb_config__object(struct kb_config__ctx *c, const char *parent,
                                      struct json_object *obj, const char *key)
{
    return s_typed(c, parent, obj, key, json_type_object, "an object");
}

struct json_object *kb_config__array(struct kb_config__ctx *c, const char *parent,
                                     struct json_object *obj, const char *key)
{
    return s_typed(c, parent, obj, key, json_type_array, "an array");
}

bool kb_config__check_abs_path(struct kb_config__ctx *c, const char *path, const char *s,
                               size_t maxlen)
{
    char q[KB_CONFIG__QUOTE_SIZE];
    size_t len = strlen(s);

    kb_config__quote(q, s, len);
    if (s[0] != '/') {
        kb_config__error(c, path, "%s is not a valid path: it must be absolute", q);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F) {
            kb_config__error(c, path, "%s is not a valid path: control characters are not allowed",
                             q);
            return false;
        }
    }
    if (len >= maxlen) {
        kb_config__error(c, path, "%s is too long: %zu bytes, the limit is %zu", q, len,
                         maxlen - 1);
        return false;
    }
    return true;
}
