/*
 * codec_internal.h - what the codec's two files share: the pre-tokenizer scan, the tokenizer
 * wrapper and the id and message helpers. Private to proto/codec*.c; pure like the codec itself.
 */
#ifndef KB_PROTO_CODEC_INTERNAL_H
#define KB_PROTO_CODEC_INTERNAL_H

#include "codec.h"

/* Serialization flags of every line: compact, '/' not escaped. */
#define KB_PROTO_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/*
 * Checks line[0..len) before json-c sees it, for what json-c 0.16 accepts but JSON and this
 * protocol do not: UTF-8 that is not strict (overlong forms, surrogates, code points above
 * U+10FFFF, truncated sequences) gives KB_PROTO_EBAD_UTF8, wherever it is; single-quoted strings,
 * NaN/Infinity, comments, a byte-order mark and raw control characters inside strings give
 * KB_PROTO_EBAD_JSON. Returns KB_PROTO_OK when the line may be handed to the tokener. msg (msglen
 * bytes) receives a sentence on error.
 */
enum kb_proto_err kb_proto_scan(const char *line, size_t len, char *msg, size_t msglen);

/* Length of the valid multi-byte UTF-8 sequence (2..4 bytes) at p[0..n), or 0 (RFC 3629; table
 * 3-7 of the Unicode standard): no overlong forms, no surrogates, nothing above U+10FFFF. */
size_t kb_proto_utf8_seq(const unsigned char *p, size_t n);

/* Tokenizes a scanned line into one JSON value (nothing but whitespace after it) with the
 * protocol's depth limit. Returns KB_PROTO_OK and *out (caller frees with json_object_put),
 * KB_PROTO_EBAD_JSON (msg says why) or KB_PROTO_EINTERNAL when out of memory. */
enum kb_proto_err kb_proto_tokenize(const char *line, size_t len, struct json_object **out,
                                    char *msg, size_t msglen);

/* Reads an id value (string of at most KB_PROTO_MAX_ID_CHARS code points, integer within
 * +-KB_PROTO_ID_INT_MAX, or null) into out (KB_PROTO_ID_SIZE bytes) as JSON text. Returns 0 or
 * KB_EINVAL (out is then "null"). */
int kb_proto_id_text(struct json_object *v, char *out);

/* Adds "v":1 to obj and, when with_id, "id": the id given as JSON text (NULL, "" and "null" give
 * null). Returns 0, KB_EINVAL for text kb_proto_id_text() would not have written, KB_ENOMEM. */
int kb_proto_add_header(struct json_object *obj, const char *id, int with_id);

/* Serializes obj as one line with '\n' into a malloc'd *out (caller frees). Returns 0 or
 * KB_ENOMEM. Does not release obj. */
int kb_proto_emit(struct json_object *obj, char **out, size_t *len);

/* Copies at most cap - 1 bytes of s[0..len) to out, cut at a UTF-8 character boundary. */
void kb_proto_copy_trunc(char *out, size_t cap, const char *s, size_t len);

/* The top-level fields of a request, and which ops accept each (both parser paths read them). */
enum kb_proto_field {
    KB_PROTO_FIELD_V,
    KB_PROTO_FIELD_ID,
    KB_PROTO_FIELD_OP,
    KB_PROTO_FIELD_TENANT,
    KB_PROTO_FIELD_DELETE_BUCKET,
    KB_PROTO_FIELD_FORCE_DELETE,
    KB_PROTO_FIELD_TENANTS,
    KB_PROTO_FIELD_ADOPT_BUCKET,
    KB_PROTO_FIELD_SINCE,
    KB_PROTO_FIELD_ROLLBACK,
    KB_PROTO_FIELD_VERSION_ID,
    KB_PROTO_FIELD_COUNT
};

#define KB_PROTO_OP_BIT(op) (1u << (op))
/* The ops that need a tenant. */
#define KB_PROTO_TENANT_REQUIRED                                                                   \
    (KB_PROTO_OP_BIT(KB_PROTO_OP_GET) | KB_PROTO_OP_BIT(KB_PROTO_OP_ROTATE) |                      \
     KB_PROTO_OP_BIT(KB_PROTO_OP_REVOKE) | KB_PROTO_OP_BIT(KB_PROTO_OP_ACK))

struct kb_proto_field_rule {
    const char *name;
    unsigned ops; /* KB_PROTO_OP_BIT() of every op that accepts the field */
};
extern const struct kb_proto_field_rule kb_proto_fields[KB_PROTO_FIELD_COUNT];

/* The field named name[0..len), or KB_PROTO_FIELD_COUNT when there is none. */
enum kb_proto_field kb_proto_field_from_name(const char *name, size_t len);

/*
 * The request parser's two paths (kb_proto_parse_request runs the first, then the second when it
 * declines). kb_proto_parse_flat reads a flat request line without json-c and returns true with
 * *req filled - exactly what kb_proto_parse_json gives for the same line - or false, having
 * declined it (*req is then unspecified and holds nothing to release). kb_proto_parse_json is the
 * whole parser on json-c, with kb_proto_parse_request's contract.
 */
bool kb_proto_parse_flat(const char *line, size_t len, struct kb_proto_request *req);
int kb_proto_parse_json(const char *line, size_t len, struct kb_proto_request *req,
                        struct kb_proto_error *err);

#endif
