/*
 * awserr_parse.h - turns an AWS error response into a struct kb_aws_error (awserr.h).
 *
 * A pure function of the response's bytes: XML error documents (Query APIs:
 * <ErrorResponse><Error><Code/><Message/></Error><RequestId/></ErrorResponse>; S3:
 * <Error><Code/><Message/><RequestId/></Error>; namespaced or not) are read with expat, JSON ones
 * ({"__type": "prefix#Code", "message"|"Message": ...}) with json-c. It never logs and holds no
 * state, so it can be fuzzed directly with untrusted bytes.
 */
#ifndef KB_AWSERR_PARSE_H
#define KB_AWSERR_PARSE_H

#include <stddef.h>

#include "aws/awserr.h"

/* What the parser looks at. Everything is borrowed for the duration of the call; NULL is unset. */
struct kb_awserr_input {
    long status;      /* HTTP status */
    const char *body; /* need not be NUL-terminated; may be NULL when body_len is 0 */
    size_t body_len;
    const char *request_id; /* the x-amzn-RequestId or x-amz-request-id header */
    const char *error_type; /* the x-amzn-ErrorType header (JSON services), if any */
};

/*
 * Fills out: err = KB_EAWS, status, and code / message / request_id from the body when it is an
 * AWS error document, from the headers for the request id, and otherwise from the HTTP status
 * (code: the status text without spaces as the Go SDK names it, e.g. 404 "NotFound", 403
 * "Forbidden", 301 "PermanentRedirect", 400 "BadRequest"; message: the status text, "Not Found";
 * botocore would use "404" as the code). operation and attempts are left as they were. Strings
 * that do not fit are truncated. Returns 0 when the response named an error code (in the body,
 * or in x-amzn-ErrorType), KB_EPARSE when it did not: the body was empty, not an error document
 * or malformed (out is then filled from the status).
 */
int kb_awserr_parse(const struct kb_awserr_input *in, struct kb_aws_error *out);

/* The code kb_awserr_parse falls back to for status ("NotFound" for 404, ...), or NULL for a
 * status it has no name for (kb_awserr_parse then uses the number, "418"). Static string. */
const char *kb_awserr_status_code(long status);

/* The HTTP reason phrase of status ("Not Found"), "" when unknown. Static string. */
const char *kb_awserr_status_text(long status);

#endif
