/*
 * jsonwire.h - json-c as the typed calls use it: serialization and parsing that leave no copy of a
 * secret in freed memory, and bounded field extraction into a call's arena (svc.h).
 *
 * json-c grows its buffers with realloc(), which would release unwiped copies of whatever they
 * held. The two secret-safe paths below make sure a buffer that will hold a secret is already big
 * enough before the secret is written into it, so it never moves, and wipe it afterwards:
 * serialization runs once with a harmless placeholder of the worst-case escaped size, then again
 * with the secret; parsing sizes the tokener's string buffer to the whole body up front.
 * Pure code: no I/O, no logging, never echoes a value in a message.
 */
#ifndef KB_JSONWIRE_H
#define KB_JSONWIRE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/secret.h"
#include "aws/svc.h"

/* Called with the serialized body, valid only during the call (it is wiped right after). */
typedef int (*kb_jsonw_use_fn)(void *arg, const char *body, size_t len);

/*
 * Serializes obj (compact, '/' not escaped) and hands the text to use. When secret is non-NULL,
 * slot must be a json string member of obj: it gets the secret's bytes only for the final
 * serialization, and both the text and slot's storage are wiped after use returns (slot is left
 * holding zero bytes of the same length). Returns what use returned, or KB_ENOMEM / KB_EINVAL.
 */
int kb_jsonw_serialize(struct json_object *obj, struct json_object *slot, struct kb_secret *secret,
                       kb_jsonw_use_fn use, void *arg);

/* Parses body[0..len) as one JSON object (nothing but whitespace after it). When sensitive, no
 * json-c buffer that held part of the text is released unwiped (see above), also when the body is
 * malformed. Returns 0 and *out (caller frees with kb_jsonw_free(obj, sensitive)), or an error
 * after kb_svc_fail. */
int kb_jsonw_parse(struct kb_svc_parse *p, const char *body, size_t len, bool sensitive,
                   struct json_object **out);

/* Wipes every string value under obj when sensitive, then releases it. NULL is allowed. */
void kb_jsonw_free(struct json_object *obj, bool sensitive);

/* Wipes the bytes of a json string in place (json-c frees them later without wiping). */
void kb_jsonw_wipe_string(struct json_object *str);

/*
 * Fields of a parsed object. key names the field in failure messages. Each returns 0 or an error
 * after kb_svc_fail(): KB_EPARSE for a required field that is missing or empty, a value of the
 * wrong type or longer than max; KB_ENOMEM.
 */
/* A string copied into the arena; absent optional fields (and JSON null) yield NULL. */
int kb_jsonw_str(struct kb_svc_parse *p, struct json_object *obj, const char *key, size_t max,
                 bool required, const char **out);
/* A timestamp: epoch seconds (a JSON number, fraction dropped) or a string in any form of
 * awstime.h; absent optional fields yield 0.
 */
int kb_jsonw_time(struct kb_svc_parse *p, struct json_object *obj, const char *key, bool required,
                  time_t *out);
/* An array of strings (each at most max bytes); absent optional arrays yield none. */
int kb_jsonw_strings(struct kb_svc_parse *p, struct json_object *obj, const char *key, size_t max,
                     bool required, const char *const **out, size_t *count);
/* The same on an array value; what names it in messages. */
int kb_jsonw_string_array(struct kb_svc_parse *p, struct json_object *arr, const char *what,
                          size_t max, const char *const **out, size_t *count);
/* An array of {"Key":..,"Value":..}; absent arrays yield none. */
int kb_jsonw_tags(struct kb_svc_parse *p, struct json_object *obj, const char *key,
                  const struct kb_aws_tag **out, size_t *count);

/* Builders: add key -> v (taken; NULL means an allocation failed) / string / tag array / string
 * array to obj. Return 0 or KB_ENOMEM. */
int kb_jsonw_add(struct json_object *obj, const char *key, struct json_object *v);
int kb_jsonw_add_str(struct json_object *obj, const char *key, const char *value);
int kb_jsonw_add_tags(struct json_object *obj, const char *key, const struct kb_aws_tag *tags,
                      size_t count);
int kb_jsonw_add_strings(struct json_object *obj, const char *key, const char *const *values,
                         size_t count);

#endif
