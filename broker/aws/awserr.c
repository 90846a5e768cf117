/*
 * awserr.c - AWS error responses into struct kb_aws_error (see awserr_parse.h).
 *
 * XML (IAM, STS, S3) goes through expat; JSON (Secrets Manager) through json-c. The XML reader is
 * a small state machine over element names (namespace prefixes ignored): it takes <Code> and
 * <Message> whose parent is <Error>, and <RequestId> / <RequestID> anywhere, and only from a
 * document whose root is <ErrorResponse>, <Error> or <Response> (EC2's form). A document type
 * declaration stops the parser (AWS never sends one, and it is how entity expansion attacks
 * start). A document cut short after a complete element keeps what that element said. JSON codes
 * are cleaned as botocore does: everything after a ':' is dropped, then everything up to the
 * last '#'.
 *
 * Pure and stateless: never logs, never keeps a pointer into its input after returning.
 */
#include "aws/awserr_parse.h"

#include <expat.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

#define S_MAX_DEPTH 32

enum s_elem { S_OTHER, S_ROOT_ERROR_RESPONSE, S_ERROR, S_CODE, S_MESSAGE, S_REQUEST_ID };

struct s_xml {
    XML_Parser parser;
    struct kb_aws_error *out;
    enum s_elem stack[S_MAX_DEPTH];
    size_t depth;
    bool root_ok, capturing, got_code;
    char text[512];
    size_t text_len;
};

struct s_status {
    long status;
    const char *code;
    const char *text;
};

static const struct s_status s_statuses[] = {
    {301, "PermanentRedirect", "Moved Permanently"},
    {302, "Found", "Found"},
    {304, "NotModified", "Not Modified"},
    {307, "TemporaryRedirect", "Temporary Redirect"},
    {400, "BadRequest", "Bad Request"},
    {401, "Unauthorized", "Unauthorized"},
    {403, "Forbidden", "Forbidden"},
    {404, "NotFound", "Not Found"},
    {405, "MethodNotAllowed", "Method Not Allowed"},
    {409, "Conflict", "Conflict"},
    {411, "LengthRequired", "Length Required"},
    {412, "PreconditionFailed", "Precondition Failed"},
    {413, "RequestEntityTooLarge", "Request Entity Too Large"},
    {416, "RequestedRangeNotSatisfiable", "Requested Range Not Satisfiable"},
    {429, "TooManyRequests", "Too Many Requests"},
    {500, "InternalServerError", "Internal Server Error"},
    {501, "NotImplemented", "Not Implemented"},
    {502, "BadGateway", "Bad Gateway"},
    {503, "ServiceUnavailable", "Service Unavailable"},
    {504, "GatewayTimeout", "Gateway Timeout"},
};

static const struct s_status *s_status_find(long status)
{
    for (size_t i = 0; i < sizeof(s_statuses) / sizeof(s_statuses[0]); i++) {
        if (s_statuses[i].status == status)
            return &s_statuses[i];
    }
    return NULL;
}

const char *kb_awserr_status_code(long status)
{
    const struct s_status *s = s_status_find(status);

    return s != NULL ? s->code : NULL;
}

const char *kb_awserr_status_text(long status)
{
    const struct s_status *s = s_status_find(status);

    return s != NULL ? s->text : "";
}

/* Copies len bytes of src into dst (size dstlen), truncated, NUL-terminated. */
static void s_set(char *dst, size_t dstlen, const char *src, size_t len)
{
    if (len >= dstlen)
        len = dstlen - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* -- XML ------------------------------------------------------------------------------------ */

static const char *s_local_name(const char *name)
{
    const char *colon = strrchr(name, ':');

    return colon != NULL ? colon + 1 : name;
}

static enum s_elem s_classify(const struct s_xml *x, const char *name)
{
    enum s_elem parent = x->depth > 0 ? x->stack[x->depth - 1] : S_OTHER;

    if (x->depth == 0)
        return strcmp(name, "ErrorResponse") == 0 || strcmp(name, "Response") == 0
                   ? S_ROOT_ERROR_RESPONSE
                   : (strcmp(name, "Error") == 0 ? S_ERROR : S_OTHER);
    if (strcmp(name, "Error") == 0)
        return S_ERROR;
    if (strcmp(name, "RequestId") == 0 || strcmp(name, "RequestID") == 0)
        return S_REQUEST_ID;
    if (parent == S_ERROR && strcmp(name, "Code") == 0)
        return S_CODE;
    if (parent == S_ERROR && strcmp(name, "Message") == 0)
        return S_MESSAGE;
    return S_OTHER;
}

static void XMLCALL s_on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    struct s_xml *x = ud;
    enum s_elem e = s_classify(x, s_local_name(name));

    if (x->depth == 0)
        x->root_ok = e != S_OTHER;
    if (x->depth >= S_MAX_DEPTH || !x->root_ok) {
        XML_StopParser(x->parser, XML_FALSE);
        return;
    }
    x->stack[x->depth++] = e;
    x->capturing = e == S_CODE || e == S_MESSAGE || e == S_REQUEST_ID;
    x->text_len = 0;
}

static void XMLCALL s_on_text(void *ud, const XML_Char *s, int len)
{
    struct s_xml *x = ud;
    size_t room = sizeof(x->text) - 1 - x->text_len;
    size_t n = len > 0 ? (size_t)len : 0;

    if (!x->capturing)
        return;
    if (n > room)
        n = room;
    memcpy(x->text + x->text_len, s, n);
    x->text_len += n;
}

/* The text of an element without surrounding whitespace. */
static void s_commit(struct s_xml *x, char *dst, size_t dstlen)
{
    const char *t = x->text;
    size_t n = x->text_len;

    while (n > 0 && (*t == ' ' || *t == '\n' || *t == '\r' || *t == '\t')) {
        t++;
        n--;
    }
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == '\t'))
        n--;
    if (dst[0] == '\0')
        s_set(dst, dstlen, t, n);
}

static void XMLCALL s_on_end(void *ud, const XML_Char *name)
{
    struct s_xml *x = ud;
    enum s_elem e;

    if (x->depth == 0)
        return;
    e = x->stack[--x->depth];
    if (e == S_CODE) {
        s_commit(x, x->out->code, sizeof(x->out->code));
        x->got_code = x->out->code[0] != '\0';
    } else if (e == S_MESSAGE) {
        s_commit(x, x->out->message, sizeof(x->out->message));
    } else if (e == S_REQUEST_ID) {
        s_commit(x, x->out->request_id, sizeof(x->out->request_id));
    }
    x->capturing = false;
    x->text_len = 0;
}

static void XMLCALL s_on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                                 const XML_Char *pubid, int has_internal_subset)
{
    struct s_xml *x = ud;

    XML_StopParser(x->parser, XML_FALSE);
}

static int s_parse_xml(const char *body, size_t len, struct kb_aws_error *out)
{
    struct s_xml x;
    enum XML_Status st;
    int rc = KB_EPARSE;

    if (len > (size_t)INT_MAX)
        return KB_EPARSE;
    memset(&x, 0, sizeof(x));
    x.out = out;
    x.parser = XML_ParserCreate("UTF-8");
    if (x.parser == NULL)
        return KB_ENOMEM;
    XML_SetUserData(x.parser, &x);
    XML_SetElementHandler(x.parser, s_on_start, s_on_end);
    XML_SetCharacterDataHandler(x.parser, s_on_text);
    XML_SetStartDoctypeDeclHandler(x.parser, s_on_doctype);
    st = XML_Parse(x.parser, body, (int)len, XML_TRUE);
    if (x.got_code)
        rc = 0; /* even when the document is cut short after the code */
    else if (st == XML_STATUS_OK && x.root_ok)
        rc = KB_EPARSE; /* well-formed, but no code in it */
    XML_ParserFree(x.parser);
    return rc;
}

/* -- JSON ----------------------------------------------------------------------------------- */

/* botocore's cleanup of a JSON error code: "prefix#Code:uri" -> "Code". */
static void s_clean_code(const char *raw, char *dst, size_t dstlen)
{
    size_t n = strcspn(raw, ":");
    const char *start = raw;

    for (size_t i = 0; i < n; i++) {
        if (raw[i] == '#')
            start = raw + i + 1;
    }
    s_set(dst, dstlen, start, n - (size_t)(start - raw));
}

static const char *s_json_string(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static int s_parse_json(const char *body, size_t len, const char *error_type,
                        struct kb_aws_error *out)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *root = NULL;
    const char *code, *msg;
    int rc = KB_EPARSE;

    if (tok == NULL)
        return KB_ENOMEM;
    if (len <= (size_t)INT_MAX)
        root = json_tokener_parse_ex(tok, body, (int)len);
    if (root == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        !json_object_is_type(root, json_type_object))
        goto cleanup;
    for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
        if (body[i] != ' ' && body[i] != '\n' && body[i] != '\r' && body[i] != '\t')
            goto cleanup; /* something after the object */
    }
    code = s_json_string(root, "__type");
    if (code == NULL)
        code = s_json_string(root, "code");
    if (code == NULL)
        code = error_type;
    msg = s_json_string(root, "message");
    if (msg == NULL)
        msg = s_json_string(root, "Message");
    if (msg != NULL)
        s_set(out->message, sizeof(out->message), msg, strlen(msg));
    if (code != NULL) {
        s_clean_code(code, out->code, sizeof(out->code));
        rc = out->code[0] != '\0' ? 0 : KB_EPARSE;
    }
cleanup:
    json_object_put(root);
    json_tokener_free(tok);
    return rc;
}

/* -- entry point ---------------------------------------------------------------------------- */

int kb_awserr_parse(const struct kb_awserr_input *in, struct kb_aws_error *out)
{
    const char *p = in->body;
    size_t n = in->body != NULL ? in->body_len : 0;
    int rc = KB_EPARSE;

    out->err = KB_EAWS;
    out->status = in->status;
    out->code[0] = out->message[0] = out->request_id[0] = '\0';
    while (n > 0 && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
        p++;
        n--;
    }
    if (n > 0 && *p == '<')
        rc = s_parse_xml(p, n, out);
    else if (n > 0 && *p == '{')
        rc = s_parse_json(p, n, in->error_type, out);
    if (rc != 0 && out->code[0] == '\0' && in->error_type != NULL && in->error_type[0] != '\0') {
        s_clean_code(in->error_type, out->code, sizeof(out->code));
        rc = out->code[0] != '\0' ? 0 : rc;
    }
    if (rc != 0 && out->code[0] == '\0') {
        const char *c = kb_awserr_status_code(in->status);

        if (c != NULL)
            snprintf(out->code, sizeof(out->code), "%s", c);
        else
            snprintf(out->code, sizeof(out->code), "%ld", in->status);
    }
    if (out->message[0] == '\0')
        snprintf(out->message, sizeof(out->message), "%s", kb_awserr_status_text(in->status));
    if (out->request_id[0] == '\0' && in->request_id != NULL)
        s_set(out->request_id, sizeof(out->request_id), in->request_id, strlen(in->request_id));
    return rc == KB_ENOMEM ? KB_EPARSE : rc;
}
