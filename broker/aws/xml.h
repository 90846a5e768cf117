/*
 * xml.h - a small reader for the XML responses of IAM, STS and S3, on expat.
 *
 * kb_xml_parse() turns one response body into a compact read-only tree of elements (names without
 * namespace prefixes, the character data of leaf elements, no attributes) that the typed service
 * parsers walk with kb_xml_child()/kb_xml_path(). The caller names the elements whose text is a
 * secret ("CreateAccessKeyResponse/CreateAccessKeyResult/AccessKey/SecretAccessKey"): their text
 * goes from expat's character-data callback straight into a sodium-guarded buffer and ends as a
 * struct kb_secret on the node; it never exists as an ordinary heap string. Expat itself is given
 * an allocator that wipes every block it frees, so the parser's internal copies of the document
 * (its input buffer, its text pools) do not outlive the parse either.
 *
 * Hostile input is expected: a DOCTYPE (and with it every entity declaration) is refused, and the
 * depth, the number of elements and the text of one element are bounded. This module does no I/O
 * and must never log or print a document, a text or a secret.
 */
#ifndef KB_XML_H
#define KB_XML_H

#include <stdbool.h>
#include <stddef.h>

#include "common/secret.h"

#define KB_XML_MAX_DEPTH        32         /* element nesting */
#define KB_XML_MAX_NODES        100000     /* elements in one document */
#define KB_XML_MAX_TEXT         (1u << 20) /* bytes of character data in one element */
#define KB_XML_MAX_SECRET       4096       /* bytes of text in one secret element */
#define KB_XML_MAX_SECRET_PATHS 4          /* secret paths per parse */

struct kb_xml_doc;
struct kb_xml_node;

/*
 * Parses body[0..len) (need not be NUL-terminated). secret_paths lists secret_count ('/'-separated
 * element paths from the root, prefixes stripped, at most KB_XML_MAX_SECRET_PATHS; borrowed for the
 * call). Returns 0 and *out (the caller frees it with kb_xml_free), KB_EPARSE for a malformed
 * document or a DOCTYPE, KB_ETOOBIG when a limit above is passed, KB_EINVAL for bad arguments or
 * KB_ENOMEM. On failure errbuf (may be NULL) says why and where, never quoting the document.
 */
int kb_xml_parse(const char *body, size_t len, const char *const *secret_paths, size_t secret_count,
                 struct kb_xml_doc **out, char *errbuf, size_t errlen);

/* Frees doc, destroying the secrets nobody took. NULL is allowed. */
void kb_xml_free(struct kb_xml_doc *doc);

/* The root element. Borrowed until kb_xml_free(doc), like every node and string below. */
const struct kb_xml_node *kb_xml_root(const struct kb_xml_doc *doc);

/* The element's local name (without "prefix:"). */
const char *kb_xml_name(const struct kb_xml_node *n);

/* The element's character data, exactly as decoded by expat (not trimmed); "" for an element with
 * child elements, an empty element and a secret element. *len_out gets the length when non-NULL. */
const char *kb_xml_text(const struct kb_xml_node *n, size_t *len_out);

/* The first child element named name, or the first child of any name when name is NULL; NULL when
 * there is none. */
const struct kb_xml_node *kb_xml_child(const struct kb_xml_node *n, const char *name);

/* The next sibling with the same name as n, or NULL. */
const struct kb_xml_node *kb_xml_next(const struct kb_xml_node *n);

/* The next sibling of any name, or NULL. */
const struct kb_xml_node *kb_xml_next_any(const struct kb_xml_node *n);

/* Follows path ("A/B/C", relative to n, each step the first child of that name); NULL when a step
 * is missing. "" yields n. */
const struct kb_xml_node *kb_xml_path(const struct kb_xml_node *n, const char *path);

/* Number of children named name (NULL: all children). */
size_t kb_xml_count(const struct kb_xml_node *n, const char *name);

/* True when n is one of the secret elements named at parse time. */
bool kb_xml_is_secret(const struct kb_xml_node *n);

/* Takes the secret of a secret element out of doc: the caller owns it and frees it with
 * kb_secret_destroy. Returns NULL when n is not a secret element or its secret was taken. */
struct kb_secret *kb_xml_take_secret(struct kb_xml_doc *doc, const struct kb_xml_node *n);

#endif
