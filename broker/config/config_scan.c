/*
 * config_scan.c - finds duplicate object keys, which json-c resolves silently.
 *
 * json-c keeps the last value of a repeated key and offers no hook to notice it, yet a config
 * with two "access" members is almost certainly a mistake that must not pass unnoticed. So, after
 * json-c has accepted the text as strict JSON, this scan walks the same bytes once more, tracking
 * only containers, keys and array indexes, and reports "<path>: duplicate key" for each repeat
 * (keys are compared after unescaping, as json-c sees them). It relies on the text being valid:
 * it must never be called on text json-c rejected, and it must never recurse (a stack of frames
 * bounded by KB_CONFIG_MAX_DEPTH holds the state).
 */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_internal.h"

struct s_frame {
    bool object;
    bool expect_key;          /* object: the next string is a key */
    size_t index;             /* array: the element being read */
    struct json_object *keys; /* object: the keys seen so far, as a json-c object used as a set */
    char path[KB_CONFIG__PATH_MAX];
    char child[KB_CONFIG__PATH_MAX]; /* object: the path of the current member */
};

/* The end of the string token starting at text[i] == '"': the index of its closing quote. */
static size_t s_string_end(const char *text, size_t len, size_t i)
{
    for (i++; i < len && text[i] != '"'; i++) {
        if (text[i] == '\\') {
            i++;
        }
    }
    return i;
}

/* The key as json-c stores it (unescaped, cut at a NUL), or NULL when out of memory. Caller
 * frees. */
static char *s_decode_key(const char *raw, size_t rawlen)
{
    struct json_tokener *tok;
    struct json_object *str = NULL;
    char *key = NULL;

    if (memchr(raw, '\\', rawlen) == NULL) {
        return strndup(raw + 1, rawlen - 2);
    }
    /* An escaped key: let json-c unescape the token exactly as it did when parsing. */
    tok = json_tokener_new();
    if (tok != NULL) {
        str = json_tokener_parse_ex(tok, raw, (int)rawlen);
        if (json_object_is_type(str, json_type_string)) {
            key = strdup(json_object_get_string(str));
        }
        json_object_put(str);
        json_tokener_free(tok);
    }
    return key;
}

static void s_key(struct kb_config__ctx *c, struct s_frame *f, const char *raw, size_t rawlen)
{
    char *key = s_decode_key(raw, rawlen);

    if (key == NULL) {
        c->oom = true;
        return;
    }
    kb_config__path_key(f->child, sizeof f->child, f->path, key);
    if (json_object_object_get_ex(f->keys, key, NULL)) {
        kb_config__error(c, f->child, "duplicate key");
    } else if (json_object_object_add(f->keys, key, NULL) != 0) {
        c->oom = true;
    }
    free(key);
}

static bool s_push(struct kb_config__ctx *c, struct s_frame *frames, size_t *depth, bool object)
{
    struct s_frame *parent = *depth > 0 ? &frames[*depth - 1] : NULL;
    struct s_frame *f;

    if (*depth > KB_CONFIG_MAX_DEPTH) {
        return false; /* cannot happen after json-c's depth check; stop rather than overflow */
    }
    f = &frames[(*depth)++];
    memset(f, 0, offsetof(struct s_frame, path));
    f->object = object;
    f->expect_key = object;
    if (parent == NULL) {
        f->path[0] = '\0';
    } else if (parent->object) {
        memcpy(f->path, parent->child, sizeof f->path);
    } else {
        kb_config__path_index(f->path, sizeof f->path, parent->path, parent->index);
    }
    if (object) {
        f->keys = json_object_new_object();
        if (f->keys == NULL) {
            c->oom = true;
            return false;
        }
    }
    return true;
}

/* json-c 0.16 accepts a single-quoted key even in strict mode; JSON does not. */
static void s_single_quote(struct kb_config__ctx *c, const char *text, size_t off)
{
    size_t line;
    size_t col;

    kb_config__position(text, off, off, &line, &col);
    kb_config__error(c, "(root)", "invalid JSON at line %zu, column %zu: single-quoted string",
                     line, col);
}

/* The scan's state: the open containers, innermost last. */
struct s_scan {
    struct s_frame *frames;
    size_t depth;
};

/* Handles the byte at text[*i] and moves *i to the last byte it consumed. Returns false when the
 * scan must stop (a single-quoted key, reported; out of memory). */
static bool s_step(struct kb_config__ctx *c, struct s_scan *s, const char *text, size_t len,
                   size_t *i)
{
    struct s_frame *top = s->depth > 0 ? &s->frames[s->depth - 1] : NULL;
    size_t end;

    switch (text[*i]) {
    case '{':
    case '[':
        return s_push(c, s->frames, &s->depth, text[*i] == '{');
    case '}':
    case ']':
        if (top != NULL) {
            json_object_put(top->keys);
            top->keys = NULL;
            s->depth--;
        }
        return true;
    case ',':
        if (top != NULL && top->object) {
            top->expect_key = true;
        } else if (top != NULL) {
            top->index++;
        }
        return true;
    case '"':
        end = s_string_end(text, len, *i);
        if (end < len && top != NULL && top->object && top->expect_key) {
            top->expect_key = false;
            s_key(c, top, text + *i, end - *i + 1);
        }
        *i = end;
        return !c->oom;
    case '\'':
        /* Outside a string, json-c only lets this through as a key's opening quote, and the
         * scan cannot follow such a string. */
        s_single_quote(c, text, *i);
        return false;
    default:
        return true;
    }
}

bool kb_config__scan_duplicates(struct kb_config__ctx *c, const char *text, size_t len)
{
    struct s_scan s = {calloc(KB_CONFIG_MAX_DEPTH + 1, sizeof *s.frames), 0};
    bool ok = true;

    if (s.frames == NULL) {
        c->oom = true;
        return false;
    }
    for (size_t i = 0; ok && i < len; i++) {
        ok = s_step(c, &s, text, len, &i);
    }
    while (s.depth > 0) {
        json_object_put(s.frames[--s.depth].keys);
    }
    free(s.frames);
    return ok && !c->oom;
}
