/*
 * fuzz_xml.c - libFuzzer target for the expat-based reader of IAM/STS/S3 responses (xml.h),
 * with a secret path so the guarded-memory branch is exercised too.
 */
#include <stdint.h>
#include <stdlib.h>

#include "aws/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const secret_paths[] = {
        "CreateAccessKeyResponse/CreateAccessKeyResult/AccessKey/SecretAccessKey",
    };
    struct kb_xml_doc *doc = NULL;
    char errbuf[256];

    if (kb_xml_parse((const char *)data, size, secret_paths, 1, &doc, errbuf, sizeof(errbuf)) == 0)
        kb_xml_free(doc);
    return 0;
}
