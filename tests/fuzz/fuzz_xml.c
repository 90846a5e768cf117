/*
 * fuzz_xml.c - libFuzzer target for the expat-based reader of IAM/STS/S3 responses (xml.h),
 * with a secret path so the guarded-memory branch is exercised too, and for one typed parser on
 * top of it: the same bytes as a ListObjectVersions page (s3_object.c: flattened lists, URL-decoded
 * keys, numbers and dates).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/s3.h"
#include "aws/xml.h"

static const uint8_t *s_data;
static size_t s_size;

/* Answers at once with the input as a 200 response: a shortcut only a fuzzer may take (the
 * client always answers later), and safe here because nothing runs after the call returns. */
static int s_send_now(struct kb_aws_client *c, const struct kb_aws_request *req, kb_aws_cb cb,
                      void *ctx)
{
    struct kb_aws_response resp;

    (void)c;
    (void)req;
    memset(&resp, 0, sizeof(resp));
    resp.status = 200;
    resp.body = (const char *)s_data;
    resp.body_len = s_size;
    resp.request_id = "req-fuzz";
    resp.attempts = 1;
    cb(ctx, NULL, &resp);
    return 0;
}

/* Reads every field of a parsed page, so a dangling or unterminated string shows under ASan. */
static void s_on_list(void *ctx, const struct kb_aws_error *err, const struct kb_s3_version_list *l)
{
    size_t *sum = ctx;

    if ((err == NULL) == (l == NULL))
        abort();
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->version_count; i++) {
        *sum += strlen(l->versions[i].key) + strlen(l->versions[i].version_id);
        *sum += l->versions[i].etag != NULL ? strlen(l->versions[i].etag) : 0;
    }
    for (size_t i = 0; i < l->delete_marker_count; i++)
        *sum += strlen(l->delete_markers[i].key) + strlen(l->delete_markers[i].version_id);
    if (l->is_truncated && (l->next_key_marker == NULL || l->next_key_marker[0] == '\0'))
        abort(); /* the parser must refuse a truncated page it cannot continue */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const secret_paths[] = {
        "CreateAccessKeyResponse/CreateAccessKeyResult/AccessKey/SecretAccessKey",
    };
    struct kb_xml_doc *doc = NULL;
    char errbuf[256];
    size_t sum = 0;

    if (kb_xml_parse((const char *)data, size, secret_paths, 1, &doc, errbuf, sizeof(errbuf)) == 0)
        kb_xml_free(doc);
    s_data = data;
    s_size = size;
    kb_svc_set_sender(s_send_now);
    if (kb_s3_list_object_versions(
            NULL, &(struct kb_s3_list_object_versions_input){.bucket = "fuzz-bucket"}, s_on_list,
            &sum) != 0)
        abort();
    kb_svc_set_sender(NULL);
    return 0;
}
