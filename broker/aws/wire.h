/*
 * wire.h - the encodings the typed AWS calls share: a growable request body, Query API form
 * fields and S3 object paths (URL-encoded by libcurl), XML text escaping, Content-MD5 (OpenSSL
 * MD5 + libsodium base64), URL-decoding, and bounded field extraction from a parsed XML
 * response (xml.h) into a call's arena (svc.h).
 *
 * Pure code: no I/O, no logging. A body buffer marked sensitive is wiped whenever its storage is
 * released, so it may hold a secret.
 *
 * How responses are read - the rule for every parser of the typed calls (XML here and in xml.h,
 * JSON in jsonwire.h): tolerant where it is harmless, strict where security depends on it.
 *   Tolerant, as botocore is: XML namespaces present, absent or prefixed (names are local);
 *   elements and JSON members a parser does not know are ignored; optional fields may be missing;
 *   booleans as kb_wire_xml_bool says; timestamps in every form of awstime.h; JSON timestamps as
 *   epoch numbers or as strings. Different AWS implementations (moto, LocalStack, S3-compatible
 *   stores, older partitions) differ exactly there.
 *   Strict: what the broker stores, hands out or acts on as an identity - access key ids
 *   (kb_wire_key_id_ok: IAM's pattern [\w]+, 16..128), secret access keys (printable ASCII, no
 *   space), ARNs (kb_wire_arn_ok: arn:partition:service:region:account:resource), secret version
 *   ids and staging labels (non-empty, bounded), and required fields. A response that breaks one of
 *   these is KB_EPARSE, and the call's caller stores nothing from it.
 */
#ifndef KB_WIRE_H
#define KB_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "aws/svc.h"
#include "aws/xml.h"

/* Lengths the parsers accept (bytes), a little above AWS's own limits. */
#define KB_WIRE_MAX_ID        256  /* access key ids, version ids, request tokens, statuses */
#define KB_WIRE_MAX_NAME      1024 /* user, policy, secret, bucket names; paths; regions */
#define KB_WIRE_MAX_ARN       2048
#define KB_WIRE_MAX_TAG_KEY   512 /* 128 Unicode characters */
#define KB_WIRE_MAX_TAG_VALUE 1024
#define KB_WIRE_MAX_DOC       131072 /* policy documents (IAM and S3) */
#define KB_WIRE_MAX_ITEMS     1000   /* list members in one response */
#define KB_WIRE_MAX_TAGS      50     /* tags in one request (AWS's limit) */

/* A growable NUL-terminated buffer. An allocation failure makes it sticky-failed: later appends do
 * nothing, so a builder appends freely and checks kb_wire_buf_status() once. */
struct kb_wire_buf {
    char *ptr;
    size_t len;
    size_t cap;
    bool failed;
    bool sensitive; /* wipe storage when it moves or is freed */
};

void kb_wire_buf_init(struct kb_wire_buf *b, bool sensitive);
void kb_wire_buf_add(struct kb_wire_buf *b, const char *s, size_t len);
void kb_wire_buf_adds(struct kb_wire_buf *b, const char *s);
/* 0, or KB_ENOMEM when an append failed. */
int kb_wire_buf_status(const struct kb_wire_buf *b);
/* Wipes (when sensitive) and frees the storage; b may be reused after kb_wire_buf_init. */
void kb_wire_buf_free(struct kb_wire_buf *b);

/* Appends "&key=value" ("key=value" on an empty buffer) to an application/x-www-form-urlencoded
 * body (IAM, STS): both halves percent-encoded by curl_easy_escape (everything but RFC 3986's
 * unreserved characters), a space written '+' as the form encoding (and botocore) writes it.
 * AWS reads "%20" as well; moto 5.2 re-encodes the parsed form before it checks the payload
 * hash, so it refuses the signature of a body with "%20" in it. */
void kb_wire_form_add(struct kb_wire_buf *b, const char *key, const char *value);

/* The same for a URL's query string (S3): a space stays "%20", since SigV4 reads '+' in a query
 * as a literal '+'. */
void kb_wire_query_add(struct kb_wire_buf *b, const char *key, const char *value);

/* Appends key as the path of an S3 object, "/" + key, each '/'-separated segment percent-encoded
 * by curl_easy_escape: every byte but RFC 3986's unreserved characters (SigV4's URI encoding,
 * which S3 signs as sent), the '/' kept between segments ("a b/c" -> "/a%20b/c"). */
void kb_wire_path_add(struct kb_wire_buf *b, const char *key);

/* Appends s with & < > " ' escaped as XML entities. */
void kb_wire_xml_text(struct kb_wire_buf *b, const char *s);
/* Appends <name>escaped text</name>. */
void kb_wire_xml_elem(struct kb_wire_buf *b, const char *name, const char *text);

/* Base64 of the MD5 of body: 24 characters + NUL. */
#define KB_WIRE_MD5_B64_SIZE 25
/* Writes the Content-MD5 header value of body[0..len) into out. Returns 0 or KB_ETLS when OpenSSL
 * has no MD5 (a FIPS-only provider). */
int kb_wire_content_md5(const void *body, size_t len, char out[KB_WIRE_MD5_B64_SIZE]);

/* URL-decodes s[0..len) ("%7B" -> "{", "+" stays "+") into the arena. Returns the copy or NULL
 * (out of memory, or a decoded NUL byte). *out_len gets its length when non-NULL. */
char *kb_wire_url_decode(struct kb_svc_arena *a, const char *s, size_t len, size_t *out_len);

/* The same with '+' read as a space first, as application/x-www-form-urlencoded text is (S3's
 * listings with encoding-type=url write a space '+' and a '+' "%2B"; botocore reads them with
 * unquote_plus). */
char *kb_wire_form_decode(struct kb_svc_arena *a, const char *s, size_t len, size_t *out_len);

/* True when s is an IAM access key id: 16..128 characters of [A-Za-z0-9_] (the model's [\w]+). */
bool kb_wire_key_id_ok(const char *s);

/* True when s looks like an ARN: "arn:" partition ":" service ":" region ":" account ":"
 * resource, partition and service [a-z0-9-]+ and non-empty, region [a-z0-9-]*, account digits
 * (AWS's are 12), "aws" or empty, a non-empty resource; at most KB_WIRE_MAX_ARN bytes, no control
 * character, no space. */
bool kb_wire_arn_ok(const char *s);

/* True when s is a non-empty string of at most max bytes. */
bool kb_wire_str_ok(const char *s, size_t max);

/* True when tags[0..count) fit every service's tag rules: 1..KB_WIRE_MAX_TAGS tags (or none when
 * not required), each with a non-empty key of at most KB_WIRE_MAX_TAG_KEY bytes and a value
 * (possibly empty) of at most KB_WIRE_MAX_TAG_VALUE bytes. */
bool kb_wire_tags_ok(const struct kb_aws_tag *tags, size_t count, bool required);

/*
 * Field extraction from parsed XML. path is relative to n ("CreateUserResult/User/UserName") and
 * names the field in the failure message. Each returns 0 or a negative code after kb_svc_fail():
 * KB_EPARSE when a required field is missing or empty, longer than max, or malformed; KB_ENOMEM.
 */
/* Copies the text into the arena; an optional field that is absent yields NULL. */
int kb_wire_xml_str(struct kb_svc_parse *p, const struct kb_xml_node *n, const char *path,
                    size_t max, bool required, const char **out);
/* Like kb_wire_xml_str, then kb_wire_arn_ok / kb_wire_key_id_ok ("is not an ARN"). A key id is
 * always required. */
int kb_wire_xml_arn(struct kb_svc_parse *p, const struct kb_xml_node *n, const char *path,
                    bool required, const char **out);
int kb_wire_xml_key_id(struct kb_svc_parse *p, const struct kb_xml_node *n, const char *path,
                       const char **out);
/* True when s holds a secret access key: 1..1024 bytes of printable ASCII without space. */
bool kb_wire_secret_key_ok(struct kb_secret *s);
/* A timestamp in any form awstime.h reads (lenient); an optional absent field yields 0. */
int kb_wire_xml_time(struct kb_svc_parse *p, const struct kb_xml_node *n, const char *path,
                     bool required, time_t *out);
/* botocore's reading: "true" in any case is true, every other text (also "False", "", "1") is
 * false; an optional absent field yields false. Where false is the unsafe reading (a Block Public
 * Access flag), that only ever causes a repair, never trust. */
int kb_wire_xml_bool(struct kb_svc_parse *p, const struct kb_xml_node *n, const char *path,
                     bool required, bool *out);
/* The tags in the list element at path whose items are named item ("member" for IAM, "Tag" for
 * S3), each with Key and Value children. An absent list yields no tags. */
int kb_wire_xml_tags(struct kb_svc_parse *p, const struct kb_xml_node *n, const char *path,
                     const char *item, struct kb_aws_tag **tags, size_t *count);
/* Parses body as XML whose root must be named root; secret_path (may be NULL) is read into guarded
 * memory (see xml.h). Returns 0 and *doc (caller frees with kb_xml_free), or an error after
 * kb_svc_fail(). */
int kb_wire_xml_doc(struct kb_svc_parse *p, const struct kb_aws_response *resp, const char *root,
                    const char *secret_path, struct kb_xml_doc **doc);

#endif
