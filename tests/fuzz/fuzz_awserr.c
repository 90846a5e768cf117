/*
 * fuzz_awserr.c - libFuzzer target for kb_awserr_parse: AWS error documents (XML and JSON) are
 * untrusted bytes from the network. The first byte picks the HTTP status family, the rest is the
 * body. Checks that every output string is NUL-terminated within its field.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awserr_parse.h"

static void s_check_terminated(const char *field, size_t size)
{
    if (memchr(field, '\0', size) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = {400, 403, 404, 409, 500, 503, 301, 200};
    struct kb_awserr_input in;
    struct kb_aws_error out;

    if (size == 0)
        return 0;
    memset(&in, 0, sizeof(in));
    memset(&out, 0, sizeof(out));
    in.status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
    in.body = (const char *)data + 1;
    in.body_len = size - 1;
    in.request_id = (data[0] & 0x10) ? "req-123" : NULL;
    in.error_type = (data[0] & 0x20) ? "com.amazon.coral#ThrottlingException" : NULL;
    (void)kb_awserr_parse(&in, &out);
    s_check_terminated(out.code, sizeof(out.code));
    s_check_terminated(out.message, sizeof(out.message));
    s_check_terminated(out.request_id, sizeof(out.request_id));
    return 0;
}
