/*
 * config_internal.h - what the config loader's files share: the load context, the error list,
 * JSON-path formatting and the typed member readers.
 *
 * Not a public header: only broker/config*.c include it. Every reader reports its own problem
 * (type, range, syntax) into the context and stores a default, so a section is walked to its end
 * whatever it holds and the caller learns about every problem at once.
 */
#ifndef KB_CONFIG_INTERNAL_H
#define KB_CONFIG_INTERNAL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "common/err.h"

#if defined(__GNUC__)
#define KB_CONFIG__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define KB_CONFIG__PRINTF(f, a)
#endif

/* A JSON path ("tenants[1].clients.users[0]") always fits: segments are truncated. */
#define KB_CONFIG__PATH_MAX 512
/* A value quoted into a message: at most this many input bytes, then "...". */
#define KB_CONFIG__QUOTE_MAX  100
#define KB_CONFIG__QUOTE_SIZE (4 * KB_CONFIG__QUOTE_MAX + 8)

struct kb_config__ctx {
    struct kb_config_errors *errors;
    const struct kb_config_resolver *resolver;
    bool oom; /* an allocation failed: the load ends with KB_ENOMEM */
    /* An invalid aws.name_prefix / aws.secret_prefix was reported already: the names derived
     * from it are not checked again for every tenant. */
    bool bad_name_prefix;
    bool bad_secret_prefix;
};

/* Flags of the member readers. */
#define KB_CONFIG__REQUIRED 0x1u /* absent -> "missing required key" */
#define KB_CONFIG__NULLABLE 0x2u /* null is accepted and means "unset" */

/* Adds "<path>: <message>" to the error list (or counts it past KB_CONFIG_MAX_ERRORS). */
void kb_config__error(struct kb_config__ctx *c, const char *path, const char *fmt, ...)
    KB_CONFIG__PRINTF(3, 4);

/* Writes parent + ".key" (or "key" at the root, or "[\"k.e y\"]" for a key that is not a plain
 * identifier) into out. */
void kb_config__path_key(char *out, size_t outlen, const char *parent, const char *key);
/* Writes parent + "[index]" into out. */
void kb_config__path_index(char *out, size_t outlen, const char *parent, size_t index);
/* Writes s[0..len) as a double-quoted string into out (KB_CONFIG__QUOTE_SIZE bytes), escaping
 * '"', '\\', control and non-ASCII bytes, truncated with "..." past KB_CONFIG__QUOTE_MAX bytes.
 * Returns out. */
const char *kb_config__quote(char *out, const char *s, size_t len);
/* The 1-based line and column of byte offset off in text[0..len); columns count UTF-8
 * characters. */
void kb_config__position(const char *text, size_t len, size_t off, size_t *line, size_t *col);
/* "a string", "an integer", ... for "must be X, not Y" messages. */
const char *kb_config__type_name(struct json_object *v);
/* "90s" style rendering of a number of seconds, for range messages. */
void kb_config__fmt_duration(char *out, size_t outlen, uint64_t seconds);

/* Reports every member of obj whose key is not in allowed (NULL-terminated). */
void kb_config__check_keys(struct kb_config__ctx *c, const char *path, struct json_object *obj,
                           const char *const *allowed);

/* The member, or NULL when absent. *present tells "absent" from "null". */
struct json_object *kb_config__member(struct json_object *obj, const char *key, bool *present);

/* Member readers: they read obj[key], report problems under parent.key and store the value, or
 * the default when the member is absent or wrong. Strings are strdup'd (freed with the config);
 * a NULL default stores NULL. Each returns false exactly when it reported a problem. */
bool kb_config__string(struct kb_config__ctx *c, const char *parent, struct json_object *obj,
                       const char *key, unsigned flags, const char *def, char **out);
bool kb_config__bool(struct kb_config__ctx *c, const char *parent, struct json_object *obj,
                     const char *key, bool def, bool *out);
bool kb_config__uint(struct kb_config__ctx *c, const char *parent, struct json_object *obj,
                     const char *key, uint32_t min, uint32_t max, uint32_t def, uint32_t *out);
/* flags: KB_CONFIG__NULLABLE makes null store 0. */
bool kb_config__duration(struct kb_config__ctx *c, const char *parent, struct json_object *obj,
                         const char *key, unsigned flags, uint64_t min, uint64_t max, uint64_t def,
                         uint64_t *out);
/* An object member that must be an object when present; NULL when absent or wrong. */
struct json_object *kb_config__object(struct kb_config__ctx *c, const char *parent,
                                      struct json_object *obj, const char *key);
/* An array member; NULL when absent or wrong. */
struct json_object *kb_config__array(struct kb_config__ctx *c, const char *parent,
                                     struct json_object *obj, const char *key);
/* A JSON value as a C string without NUL inside; reports otherwise. NULL when not a string. */
const char *kb_config__as_string(struct kb_config__ctx *c, const char *path, struct json_object *v);
/* A JSON integer in min..max; reports otherwise. */
bool kb_config__as_uint(struct kb_config__ctx *c, const char *path, struct json_object *v,
                        uint32_t min, uint32_t max, uint32_t *out);
/* Checks that s is an absolute path without control characters, shorter than maxlen bytes;
 * reports under path otherwise. */
bool kb_config__check_abs_path(struct kb_config__ctx *c, const char *path, const char *s,
                               size_t maxlen);
/* A heap copy that records an allocation failure in c. */
char *kb_config__strdup(struct kb_config__ctx *c, const char *s);
/* calloc that records an allocation failure in c. */
void *kb_config__calloc(struct kb_config__ctx *c, size_t n, size_t size);

/* Reads an ACL object ({"uids", "gids", "users", "groups"}) at path into acl. */
void kb_config__acl(struct kb_config__ctx *c, const char *path, struct json_object *v,
                    struct kb_acl *acl);
/* Resolves a group given as a name, digits or an integer. */
bool kb_config__group_id(struct kb_config__ctx *c, const char *path, struct json_object *v,
                         uint32_t *gid);
void kb_config__acl_free(struct kb_acl *acl);

/* Reads a tags object at path into tags (appending; a key already there gets the new value). */
void kb_config__tags(struct kb_config__ctx *c, const char *path, struct json_object *v,
                     struct kb_tags *tags);
void kb_config__tags_free(struct kb_tags *tags);

/* Sections. */
void kb_config__broker(struct kb_config__ctx *c, struct json_object *v, struct kb_config *cfg);
/* broker.audit (config_audit.c), into audit. */
void kb_config__plugins(struct kb_config__ctx *c, struct json_object *broker,
                        struct kb_config_broker *b);
void kb_config__audit(struct kb_config__ctx *c, struct json_object *broker,
                      struct kb_config_audit *audit);
void kb_config__aws(struct kb_config__ctx *c, struct json_object *v, struct kb_config *cfg);
void kb_config__tenants(struct kb_config__ctx *c, struct json_object *v, struct kb_config *cfg);

/* Reports every duplicate object key of text[0..len), which json-c has accepted in strict
 * mode. Returns false when the text is not plain JSON after all (a single-quoted key, reported)
 * or memory ran out: the document is then not walked. */
bool kb_config__scan_duplicates(struct kb_config__ctx *c, const char *text, size_t len);

/* Rules shared by the sections (config_rules.c). */
/* Formats why and returns KB_ECONFIG. */
#define kb_config__why(why, whylen, ...) kb_err_msg((why), (whylen), KB_ECONFIG, __VA_ARGS__)
bool kb_config__utf8_chars(const char *s, size_t len, size_t *chars);
bool kb_config__check_partition(const char *s, size_t len);
bool kb_config__check_region(const char *s, size_t len);

#endif
