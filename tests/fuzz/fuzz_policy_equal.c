/*
 * fuzz_policy_equal.c - libFuzzer target for kb_policy_equal and kb_policy_size, which read
 * policy documents returned by IAM and S3 (untrusted). Input: two documents separated by '\n'.
 * Equality must be symmetric.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    const char *a, *b = "{}";
    char *sep;
    bool eq1 = false, eq2 = false;
    int r1, r2;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    a = buf;
    sep = memchr(buf, '\n', size);
    if (sep != NULL) {
        *sep = '\0';
        b = sep + 1;
    }
    r1 = kb_policy_equal(a, b, &eq1);
    r2 = kb_policy_equal(b, a, &eq2);
    if (r1 == 0 && r2 == 0 && eq1 != eq2)
        abort();
    (void)kb_policy_size(a);
    free(buf);
    return 0;
}
