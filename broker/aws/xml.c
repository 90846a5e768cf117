/*
 * xml.c - expat callbacks that build the element tree of xml.h, with secret elements read into
 * guarded memory.
 *
 * The parse keeps a cursor on the element being read. Character data is appended to the cursor's
 * text, or, for a secret element, to a sodium_malloc'd buffer that becomes a struct kb_secret when
 * the element ends. Text seen in an element that turns out to have children (indentation between
 * elements) is dropped: AWS responses have no mixed content. Every limit and every refusal stops
 * the parser through s_fail(), which keeps the first reason.
 *
 * Expat gets s_mm_*, an allocator that remembers each block's size and wipes the block before
 * freeing it: expat copies the document into its own buffer and decoded text into its pools, and
 * those copies may hold a secret.
 */
#include "aws/xml.h"

#include <expat.h>
#include <limits.h>
#include <sodium.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

struct kb_xml_node {
    struct kb_xml_node *parent;
    struct kb_xml_node *first;
    struct kb_xml_node *last;
    struct kb_xml_node *next;
    char *text; /* malloc'd, NUL-terminated; NULL while empty */
    size_t text_len;
    size_t text_cap;
    struct kb_secret *secret; /* secret elements only, until taken */
    bool is_secret;
    char name[]; /* local name, NUL-terminated */
};

struct kb_xml_doc {
    struct kb_xml_node *root;
    /* parse state */
    XML_Parser parser;
    struct kb_xml_node *cur;
    size_t depth;
    size_t nodes;
    const char *const *secret_paths;
    size_t secret_count;
    char *guard; /* sodium_malloc'd KB_XML_MAX_SECRET bytes while a secret element is open */
    size_t guard_len;
    int err;
    char msg[128];
};

/* -- a wiping allocator for expat ------------------------------------------------------------- */

#define S_MM_HDR (alignof(max_align_t) > sizeof(size_t) ? alignof(max_align_t) : sizeof(size_t))

static void *s_mm_malloc(size_t n)
{
    unsigned char *p;

    if (n > SIZE_MAX - S_MM_HDR)
        return NULL;
    p = malloc(n + S_MM_HDR);
    if (p == NULL)
        return NULL;
    memcpy(p, &n, sizeof(n));
    return p + S_MM_HDR;
}

static size_t s_mm_size(void *ptr)
{
    size_t n;

    memcpy(&n, (unsigned char *)ptr - S_MM_HDR, sizeof(n));
    return n;
}

static void s_mm_free(void *ptr)
{
    unsigned char *p;

    if (ptr == NULL)
        return;
    p = (unsigned char *)ptr - S_MM_HDR;
    sodium_memzero(p, s_mm_size(ptr) + S_MM_HDR);
    free(p);
}

/* Never realloc() in place: the old block would be released unwiped when it moves. */
static void *s_mm_realloc(void *ptr, size_t n)
{
    void *q;
    size_t old;

    if (ptr == NULL)
        return s_mm_malloc(n);
    q = s_mm_malloc(n);
    if (q == NULL)
        return NULL;
    old = s_mm_size(ptr);
    memcpy(q, ptr, old < n ? old : n);
    s_mm_free(ptr);
    return q;
}

static const XML_Memory_Handling_Suite s_mm = {s_mm_malloc, s_mm_realloc, s_mm_free};

/* -- the tree --------------------------------------------------------------------------------- */

static void s_node_free(struct kb_xml_node *n)
{
    while (n != NULL) {
        struct kb_xml_node *next = n->next;

        s_node_free(n->first);
        free(n->text);
        kb_secret_destroy(n->secret);
        free(n);
        n = next;
    }
}

static void s_fail(struct kb_xml_doc *d, int err, const char *what)
{
    if (d->err == 0) {
        d->err = err;
        snprintf(d->msg, sizeof(d->msg), "line %lu: %s",
                 (unsigned long)XML_GetCurrentLineNumber(d->parser), what);
    }
    XML_StopParser(d->parser, XML_FALSE);
}

/* True when the path from the root to n is exactly path ("A/B/C"). */
static bool s_path_matches(const struct kb_xml_node *n, const char *path)
{
    size_t end = strlen(path);

    while (n != NULL) {
        size_t start = end;

        while (start > 0 && path[start - 1] != '/')
            start--;
        if (strlen(n->name) != end - start || memcmp(n->name, path + start, end - start) != 0)
            return false;
        n = n->parent;
        if (start == 0)
            return n == NULL;
        end = start - 1;
    }
    return false;
}

static bool s_is_secret_path(const struct kb_xml_doc *d, const struct kb_xml_node *n)
{
    for (size_t i = 0; i < d->secret_count; i++) {
        if (s_path_matches(n, d->secret_paths[i]))
            return true;
    }
    return false;
}

static struct kb_xml_node *s_node_new(const char *qname)
{
    const char *colon = strrchr(qname, ':');
    const char *local = colon != NULL ? colon + 1 : qname;
    size_t len = strlen(local);
    struct kb_xml_node *n = calloc(1, sizeof(*n) + len + 1);

    if (n != NULL)
        memcpy(n->name, local, len + 1);
    return n;
}

static void s_attach(struct kb_xml_doc *d, struct kb_xml_node *n)
{
    struct kb_xml_node *p = d->cur;

    n->parent = p;
    if (p == NULL) {
        d->root = n;
    } else {
        /* The parent has children: whatever text it collected was indentation. */
        free(p->text);
        p->text = NULL;
        p->text_len = p->text_cap = 0;
        if (p->last != NULL)
            p->last->next = n;
        else
            p->first = n;
        p->last = n;
    }
    d->cur = n;
}

static void XMLCALL s_on_start(void *ud, const XML_Char *qname, const XML_Char **attrs)
{
    struct kb_xml_doc *d = ud;
    struct kb_xml_node *n;

    (void)attrs;
    if (d->cur != NULL && d->cur->is_secret) {
        s_fail(d, KB_EPARSE, "element inside a secret element");
        return;
    }
    if (d->depth >= KB_XML_MAX_DEPTH || d->nodes >= KB_XML_MAX_NODES) {
        s_fail(d, KB_ETOOBIG, d->depth >= KB_XML_MAX_DEPTH ? "too deep" : "too many elements");
        return;
    }
    n = s_node_new(qname);
    if (n == NULL) {
        s_fail(d, KB_ENOMEM, "out of memory");
        return;
    }
    s_attach(d, n);
    d->depth++;
    d->nodes++;
    if (d->secret_count > 0 && s_is_secret_path(d, n)) {
        n->is_secret = true;
        d->guard = sodium_malloc(KB_XML_MAX_SECRET);
        d->guard_len = 0;
        if (d->guard == NULL)
            s_fail(d, KB_ENOMEM, "out of memory");
    }
}

static void s_close_secret(struct kb_xml_doc *d, struct kb_xml_node *n)
{
    if (d->guard == NULL)
        return;
    if (n->secret == NULL) {
        n->secret = kb_secret_new(d->guard, d->guard_len);
        if (n->secret == NULL)
            s_fail(d, KB_ENOMEM, "out of memory");
    }
    sodium_free(d->guard); /* wipes */
    d->guard = NULL;
    d->guard_len = 0;
}

static void XMLCALL s_on_end(void *ud, const XML_Char *qname)
{
    struct kb_xml_doc *d = ud;
    struct kb_xml_node *n = d->cur;

    (void)qname;
    if (n == NULL)
        return;
    if (n->is_secret)
        s_close_secret(d, n);
    d->cur = n->parent;
    d->depth--;
}

static void s_append_secret(struct kb_xml_doc *d, const char *s, size_t len)
{
    if (d->guard == NULL)
        return;
    if (len > KB_XML_MAX_SECRET - d->guard_len) {
        s_fail(d, KB_ETOOBIG, "secret element too long");
        return;
    }
    memcpy(d->guard + d->guard_len, s, len);
    d->guard_len += len;
}

static void s_append_text(struct kb_xml_doc *d, struct kb_xml_node *n, const char *s, size_t len)
{
    if (len > KB_XML_MAX_TEXT - n->text_len) {
        s_fail(d, KB_ETOOBIG, "element text too long");
        return;
    }
    if (n->text_len + len + 1 > n->text_cap) {
        size_t cap = n->text_cap > 0 ? n->text_cap : 64;
        char *t;

        while (cap < n->text_len + len + 1)
            cap *= 2;
        t = realloc(n->text, cap);
        if (t == NULL) {
            s_fail(d, KB_ENOMEM, "out of memory");
            return;
        }
        n->text = t;
        n->text_cap = cap;
    }
    memcpy(n->text + n->text_len, s, len);
    n->text_len += len;
    n->text[n->text_len] = '\0';
}

static void XMLCALL s_on_text(void *ud, const XML_Char *s, int len)
{
    struct kb_xml_doc *d = ud;
    struct kb_xml_node *n = d->cur;

    if (n == NULL || len <= 0)
        return;
    if (n->is_secret)
        s_append_secret(d, s, (size_t)len);
    else if (n->first == NULL)
        s_append_text(d, n, s, (size_t)len);
}

static void XMLCALL s_on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                                 const XML_Char *pubid, int has_internal_subset)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal_subset;
    s_fail(ud, KB_EPARSE, "DOCTYPE not allowed");
}

static void s_set_error(char *errbuf, size_t errlen, const char *msg)
{
    if (errbuf != NULL && errlen > 0)
        snprintf(errbuf, errlen, "%s", msg);
}

static int s_run(struct kb_xml_doc *d, const char *body, size_t len)
{
    enum XML_Status st;

    XML_SetUserData(d->parser, d);
    XML_SetElementHandler(d->parser, s_on_start, s_on_end);
    XML_SetCharacterDataHandler(d->parser, s_on_text);
    XML_SetStartDoctypeDeclHandler(d->parser, s_on_doctype);
    st = XML_Parse(d->parser, body, (int)len, XML_TRUE);
    if (d->err != 0)
        return d->err;
    if (st != XML_STATUS_OK) {
        snprintf(d->msg, sizeof(d->msg), "line %lu: %s",
                 (unsigned long)XML_GetCurrentLineNumber(d->parser),
                 XML_ErrorString(XML_GetErrorCode(d->parser)));
        return KB_EPARSE;
    }
    return d->root != NULL ? 0 : KB_EPARSE;
}

int kb_xml_parse(const char *body, size_t len, const char *const *secret_paths, size_t secret_count,
                 struct kb_xml_doc **out, char *errbuf, size_t errlen)
{
    struct kb_xml_doc *d = NULL;
    int rc = KB_EINVAL;

    s_set_error(errbuf, errlen, "");
    *out = NULL;
    if ((body == NULL && len > 0) || len > INT_MAX || secret_count > KB_XML_MAX_SECRET_PATHS ||
        (secret_count > 0 && secret_paths == NULL) || sodium_init() < 0)
        goto done;
    rc = KB_ENOMEM;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        goto done;
    d->secret_paths = secret_paths;
    d->secret_count = secret_count;
    d->parser = XML_ParserCreate_MM(NULL, &s_mm, NULL);
    if (d->parser == NULL)
        goto done;
    rc = s_run(d, body != NULL ? body : "", len);
done:
    if (d != NULL) {
        if (rc != 0)
            s_set_error(errbuf, errlen, d->msg[0] != '\0' ? d->msg : kb_strerror(rc));
        if (d->parser != NULL)
            XML_ParserFree(d->parser);
        d->parser = NULL;
        if (d->guard != NULL)
            sodium_free(d->guard);
        d->guard = NULL;
        d->secret_paths = NULL;
        if (rc == 0)
            *out = d;
        else
            kb_xml_free(d);
    } else if (rc != 0) {
        s_set_error(errbuf, errlen, kb_strerror(rc));
    }
    return rc;
}

void kb_xml_free(struct kb_xml_doc *doc)
{
    if (doc == NULL)
        return;
    s_node_free(doc->root);
    free(doc);
}

const struct kb_xml_node *kb_xml_root(const struct kb_xml_doc *doc)
{
    return doc->root;
}

const char *kb_xml_name(const struct kb_xml_node *n)
{
    return n->name;
}

const char *kb_xml_text(const struct kb_xml_node *n, size_t *len_out)
{
    if (len_out != NULL)
        *len_out = n->text != NULL ? n->text_len : 0;
    return n->text != NULL ? n->text : "";
}

const struct kb_xml_node *kb_xml_child(const struct kb_xml_node *n, const char *name)
{
    for (const struct kb_xml_node *c = n->first; c != NULL; c = c->next) {
        if (name == NULL || strcmp(c->name, name) == 0)
            return c;
    }
    return NULL;
}

const struct kb_xml_node *kb_xml_next(const struct kb_xml_node *n)
{
    for (const struct kb_xml_node *c = n->next; c != NULL; c = c->next) {
        if (strcmp(c->name, n->name) == 0)
            return c;
    }
    return NULL;
}

const struct kb_xml_node *kb_xml_next_any(const struct kb_xml_node *n)
{
    return n->next;
}

const struct kb_xml_node *kb_xml_path(const struct kb_xml_node *n, const char *path)
{
    char step[256];

    while (n != NULL && *path != '\0') {
        const char *slash = strchr(path, '/');
        size_t len = slash != NULL ? (size_t)(slash - path) : strlen(path);

        if (len == 0 || len >= sizeof(step))
            return NULL;
        memcpy(step, path, len);
        step[len] = '\0';
        n = kb_xml_child(n, step);
        path += len + (slash != NULL ? 1 : 0);
    }
    return n;
}

size_t kb_xml_count(const struct kb_xml_node *n, const char *name)
{
    size_t count = 0;

    for (const struct kb_xml_node *c = n->first; c != NULL; c = c->next) {
        if (name == NULL || strcmp(c->name, name) == 0)
            count++;
    }
    return count;
}

bool kb_xml_is_secret(const struct kb_xml_node *n)
{
    return n->is_secret;
}

struct kb_secret *kb_xml_take_secret(struct kb_xml_doc *doc, const struct kb_xml_node *n)
{
    /* The nodes are doc's: holding doc mutably is the licence to change one of them. */
    struct kb_xml_node *m = (struct kb_xml_node *)(uintptr_t)n;
    struct kb_secret *s;

    (void)doc;
    if (m == NULL || !m->is_secret)
        return NULL;
    s = m->secret;
    m->secret = NULL;
    return s;
}
