/*
 * jsonwire.c - secret-safe json-c serialization and parsing, and bounded field readers.
 *
 * Both secret-safe paths lean on two documented printbuf properties of json-c (0.13 and later):
 * an object reuses its printbuf for every serialization (printbuf_reset keeps the capacity), and
 * the tokener accumulates every string in its own printbuf, which printbuf_memset can grow ahead
 * of time. The tokener's `pb`, `stack` and `depth` fields are public but marked "do not access":
 * they are read here, and only here, because json-c offers no other way to size or wipe that
 * buffer, or to reach the values a malformed body leaves behind before json-c frees them.
 */
#include "aws/jsonwire.h"

#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awstime.h"
#include "common/err.h"

#define S_FLAGS     (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define S_MAX_DEPTH 16
/* json-c escapes one byte as at most 6 ("\u001f"). */
#define S_ESCAPE_MAX 6

/* Grows slot's storage and obj's printbuf to their worst case for a secret of len bytes. */
static int s_presize(struct json_object *obj, struct json_object *slot, size_t len)
{
    size_t worst = len * S_ESCAPE_MAX;
    char *placeholder;
    size_t n = 0;
    int ok;

    if (len > INT_MAX / S_ESCAPE_MAX - 1)
        return KB_EINVAL;
    placeholder = malloc(worst + 1);
    if (placeholder == NULL)
        return KB_ENOMEM;
    memset(placeholder, 'x', worst);
    placeholder[worst] = '\0';
    ok = json_object_set_string_len(slot, placeholder, (int)worst);
    free(placeholder);
    if (!ok || json_object_to_json_string_length(obj, S_FLAGS, &n) == NULL)
        return KB_ENOMEM;
    return 0;
}

int kb_jsonw_serialize(struct json_object *obj, struct json_object *slot, struct kb_secret *secret,
                       kb_jsonw_use_fn use, void *arg)
{
    const char *text;
    size_t len = 0, slen = 0;
    int rc;

    if (secret != NULL) {
        const char *s;

        if (slot == NULL || !json_object_is_type(slot, json_type_string))
            return KB_EINVAL;
        rc = s_presize(obj, slot, kb_secret_len(secret));
        if (rc != 0)
            return rc;
        /* Fits in the placeholder's storage: copied in place, nothing reallocated. */
        s = kb_secret_open(secret, &slen);
        json_object_set_string_len(slot, s, (int)slen);
        kb_secret_close(secret);
    }
    text = json_object_to_json_string_length(obj, S_FLAGS, &len);
    rc = text != NULL ? use(arg, text, len) : KB_ENOMEM;
    if (secret != NULL) {
        if (text != NULL)
            sodium_memzero((char *)(uintptr_t)text, len);
        kb_jsonw_wipe_string(slot);
    }
    return rc;
}

void kb_jsonw_wipe_string(struct json_object *str)
{
    /* json_object_get_string returns the object's own storage; it is ours to overwrite. */
    if (str != NULL && json_object_is_type(str, json_type_string))
        sodium_memzero((char *)(uintptr_t)json_object_get_string(str),
                       (size_t)json_object_get_string_len(str));
}

/* Wipes every string under o, keys excepted (they are field names). */
static void s_wipe_tree(struct json_object *o, int depth)
{
    if (o == NULL || depth > S_MAX_DEPTH + 1)
        return;
    switch (json_object_get_type(o)) {
    case json_type_string:
        kb_jsonw_wipe_string(o);
        break;
    case json_type_object: {
        json_object_object_foreach(o, key, val)
        {
            (void)key;
            s_wipe_tree(val, depth + 1);
        }
        break;
    }
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(o); i++)
            s_wipe_tree(json_object_array_get_idx(o, i), depth + 1);
        break;
    default:
        break;
    }
}

void kb_jsonw_free(struct json_object *obj, bool sensitive)
{
    if (sensitive)
        s_wipe_tree(obj, 0);
    json_object_put(obj);
}

/* A malformed body leaves the values parsed so far on the tokener's stack, and
 * json_tokener_free() releases them unwiped: wipe them first. */
static void s_wipe_stack(struct json_tokener *tok)
{
    for (int i = 0; i <= tok->depth && i < tok->max_depth; i++)
        s_wipe_tree(tok->stack[i].current, 0);
}

static bool s_only_space(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    }
    return true;
}

int kb_jsonw_parse(struct kb_svc_parse *p, const char *body, size_t len, bool sensitive,
                   struct json_object **out)
{
    struct json_tokener *tok;
    struct json_object *obj = NULL;
    enum json_tokener_error jerr;
    size_t end;

    *out = NULL;
    if (len == 0 || body == NULL)
        return kb_svc_fail(p, KB_EPARSE, "response body empty, a JSON object expected");
    if (len > INT_MAX - 16)
        return kb_svc_fail(p, KB_EPARSE, "response body too large");
    tok = json_tokener_new_ex(S_MAX_DEPTH);
    if (tok == NULL)
        return kb_svc_fail(p, KB_ENOMEM, "out of memory");
    if (sensitive) {
        if (printbuf_memset(tok->pb, 0, 0, (int)len + 1) != 0) {
            json_tokener_free(tok);
            return kb_svc_fail(p, KB_ENOMEM, "out of memory");
        }
        printbuf_reset(tok->pb);
    }
    obj = json_tokener_parse_ex(tok, body, (int)len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    if (sensitive) {
        sodium_memzero(tok->pb->buf, (size_t)tok->pb->size);
        if (obj == NULL)
            s_wipe_stack(tok);
    }
    json_tokener_free(tok);
    if (obj == NULL || jerr != json_tokener_success || !s_only_space(body + end, len - end)) {
        kb_jsonw_free(obj, sensitive);
        return kb_svc_fail(p, KB_EPARSE, "response is not valid JSON (%s)",
                           jerr == json_tokener_continue  ? "truncated"
                           : jerr != json_tokener_success ? json_tokener_error_desc(jerr)
                                                          : "data after the object");
    }
    if (!json_object_is_type(obj, json_type_object)) {
        kb_jsonw_free(obj, sensitive);
        return kb_svc_fail(p, KB_EPARSE, "response is not a JSON object");
    }
    *out = obj;
    return 0;
}

/* The member key of obj, or NULL when absent or JSON null. */
static struct json_object *s_get(struct json_object *obj, const char *key)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(obj, key, &v))
        return NULL;
    return v;
}

static int s_copy_str(struct kb_svc_parse *p, struct json_object *v, const char *what, size_t max,
                      bool required, const char **out)
{
    size_t len;

    if (!json_object_is_type(v, json_type_string))
        return kb_svc_fail(p, KB_EPARSE, "response field %s is not a string", what);
    len = (size_t)json_object_get_string_len(v);
    if (len == 0 && required)
        return kb_svc_fail(p, KB_EPARSE, "response field %s empty", what);
    if (len > max)
        return kb_svc_fail(p, KB_EPARSE, "response field %s longer than %zu bytes", what, max);
    *out = kb_svc_strndup(p->arena, json_object_get_string(v), len);
    return *out != NULL ? 0 : kb_svc_fail(p, KB_ENOMEM, "out of memory");
}

int kb_jsonw_str(struct kb_svc_parse *p, struct json_object *obj, const char *key, size_t max,
                 bool required, const char **out)
{
    struct json_object *v = s_get(obj, key);

    *out = NULL;
    if (v == NULL)
        return required ? kb_svc_fail(p, KB_EPARSE, "response field %s missing", key) : 0;
    return s_copy_str(p, v, key, max, required, out);
}

int kb_jsonw_time(struct kb_svc_parse *p, struct json_object *obj, const char *key, bool required,
                  time_t *out)
{
    struct json_object *v = s_get(obj, key);
    double d;

    *out = 0;
    if (v == NULL)
        return required ? kb_svc_fail(p, KB_EPARSE, "response field %s missing", key) : 0;
    /* A string is a date too (wire.h's rule): some implementations write ISO 8601 there. */
    if (json_object_is_type(v, json_type_string)) {
        if (kb_awstime_parse(json_object_get_string(v), false, out) != 0)
            return kb_svc_fail(p, KB_EPARSE, "response field %s is not a date", key);
        return 0;
    }
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
        return kb_svc_fail(p, KB_EPARSE, "response field %s is not a date", key);
    d = json_object_get_double(v);
    /* Up to the year 9999: anything else is not a date AWS would send. */
    if (!isfinite(d) || d < 0 || d > 253402300799.0)
        return kb_svc_fail(p, KB_EPARSE, "response field %s is not a date", key);
    *out = (time_t)d;
    return 0;
}

int kb_jsonw_string_array(struct kb_svc_parse *p, struct json_object *arr, const char *what,
                          size_t max, const char *const **out, size_t *count)
{
    const char **items;
    size_t n;
    int rc = 0;

    *out = NULL;
    *count = 0;
    if (!json_object_is_type(arr, json_type_array))
        return kb_svc_fail(p, KB_EPARSE, "response field %s is not an array", what);
    n = json_object_array_length(arr);
    if (n > 1000)
        return kb_svc_fail(p, KB_EPARSE, "response field %s has too many items", what);
    items = kb_svc_alloc(p->arena, n * sizeof(*items));
    if (items == NULL)
        return kb_svc_fail(p, KB_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = s_copy_str(p, json_object_array_get_idx(arr, i), what, max, true, &items[i]);
    if (rc != 0)
        return rc;
    *out = items;
    *count = n;
    return 0;
}

int kb_jsonw_strings(struct kb_svc_parse *p, struct json_object *obj, const char *key, size_t max,
                     bool required, const char *const **out, size_t *count)
{
    struct json_object *arr = s_get(obj, key);

    *out = NULL;
    *count = 0;
    if (arr == NULL)
        return required ? kb_svc_fail(p, KB_EPARSE, "response field %s missing", key) : 0;
    return kb_jsonw_string_array(p, arr, key, max, out, count);
}

int kb_jsonw_tags(struct kb_svc_parse *p, struct json_object *obj, const char *key,
                  const struct kb_aws_tag **out, size_t *count)
{
    struct json_object *arr = s_get(obj, key);
    struct kb_aws_tag *tags;
    size_t n;
    int rc = 0;

    *out = NULL;
    *count = 0;
    if (arr == NULL)
        return 0;
    if (!json_object_is_type(arr, json_type_array))
        return kb_svc_fail(p, KB_EPARSE, "response field %s is not an array", key);
    n = json_object_array_length(arr);
    if (n > 1000)
        return kb_svc_fail(p, KB_EPARSE, "response field %s has too many items", key);
    tags = kb_svc_alloc(p->arena, n * sizeof(*tags));
    if (tags == NULL)
        return kb_svc_fail(p, KB_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct json_object *t = json_object_array_get_idx(arr, i);

        if (!json_object_is_type(t, json_type_object))
            return kb_svc_fail(p, KB_EPARSE, "response field %s holds a non-object", key);
        rc = kb_jsonw_str(p, t, "Key", 512, true, &tags[i].key);
        if (rc == 0)
            rc = kb_jsonw_str(p, t, "Value", 1024, false, &tags[i].value);
        if (rc == 0 && tags[i].value == NULL)
            tags[i].value = "";
    }
    if (rc != 0)
        return rc;
    *out = tags;
    *count = n;
    return 0;
}

int kb_jsonw_add(struct json_object *obj, const char *key, struct json_object *v)
{
    if (v == NULL)
        return KB_ENOMEM;
    if (json_object_object_add(obj, key, v) != 0) {
        json_object_put(v);
        return KB_ENOMEM;
    }
    return 0;
}

int kb_jsonw_add_str(struct json_object *obj, const char *key, const char *value)
{
    return kb_jsonw_add(obj, key, json_object_new_string(value));
}

int kb_jsonw_add_tags(struct json_object *obj, const char *key, const struct kb_aws_tag *tags,
                      size_t count)
{
    struct json_object *arr = json_object_new_array();
    int rc = kb_jsonw_add(obj, key, arr);

    for (size_t i = 0; i < count && rc == 0; i++) {
        struct json_object *t = json_object_new_object();

        if (t == NULL || json_object_array_add(arr, t) != 0) {
            json_object_put(t);
            return KB_ENOMEM;
        }
        rc = kb_jsonw_add_str(t, "Key", tags[i].key);
        if (rc == 0)
            rc = kb_jsonw_add_str(t, "Value", tags[i].value);
    }
    return rc;
}

int kb_jsonw_add_strings(struct json_object *obj, const char *key, const char *const *values,
                         size_t count)
{
    struct json_object *arr = json_object_new_array();
    int rc = kb_jsonw_add(obj, key, arr);

    for (size_t i = 0; i < count && rc == 0; i++) {
        struct json_object *v = json_object_new_string(values[i]);

        if (v == NULL || json_object_array_add(arr, v) != 0) {
            json_object_put(v);
            rc = KB_ENOMEM;
        }
    }
    return rc;
}
