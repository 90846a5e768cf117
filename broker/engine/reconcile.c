/*
 * reconcile.c - the pure decisions of reconcile.h.
 */
#include "engine/reconcile.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/uuid.h"

#define S_PROBE_BASE_MS 250u
#define S_PROBE_CAP_MS  5000u

static const char *s_tag(const struct kb_aws_tag *tags, size_t count, const char *key)
{
    for (size_t i = 0; i < count; i++) {
        if (tags[i].key != NULL && strcmp(tags[i].key, key) == 0)
            return tags[i].value != NULL ? tags[i].value : "";
    }
    return NULL;
}

bool kb_rc_tags_ours(const struct kb_aws_tag *tags, size_t count, const char *tenant)
{
    const char *managed = s_tag(tags, count, KB_RC_TAG_MANAGED);
    const char *owner = s_tag(tags, count, KB_RC_TAG_TENANT);

    return tenant != NULL && managed != NULL && strcmp(managed, "true") == 0 && owner != NULL &&
           strcmp(owner, tenant) == 0;
}

bool kb_rc_tags_keybroker(const struct kb_aws_tag *tags, size_t count)
{
    return s_tag(tags, count, KB_RC_TAG_MANAGED) != NULL ||
           s_tag(tags, count, KB_RC_TAG_TENANT) != NULL;
}

void kb_rc_intent_value(const char *bucket, time_t now, char out[KB_RC_INTENT_SIZE])
{
    snprintf(out, KB_RC_INTENT_SIZE, "%s %lld", bucket, (long long)now);
}

bool kb_rc_has_intent(const struct kb_aws_tag *tags, size_t count)
{
    return s_tag(tags, count, KB_RC_TAG_CREATING) != NULL;
}

bool kb_rc_intent_ok(const struct kb_aws_tag *tags, size_t count, const char *bucket, time_t now)
{
    const char *v = s_tag(tags, count, KB_RC_TAG_CREATING);
    size_t n = strlen(bucket);
    char *end = NULL;
    long long when;

    if (v == NULL || strncmp(v, bucket, n) != 0 || v[n] != ' ' || v[n + 1] < '0' || v[n + 1] > '9')
        return false;
    errno = 0;
    when = strtoll(v + n + 1, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    return when <= (long long)now + 300 && (long long)now - when <= KB_RC_INTENT_MAX_AGE;
}

int kb_rc_tenant_tags(const struct kb_tenant *t, struct kb_aws_tag **out, size_t *count)
{
    struct kb_aws_tag *tags = calloc(t->tags.count + 2, sizeof(*tags));

    *out = NULL;
    *count = 0;
    if (tags == NULL)
        return KB_ENOMEM;
    tags[0] = (struct kb_aws_tag){KB_RC_TAG_TENANT, t->name};
    tags[1] = (struct kb_aws_tag){KB_RC_TAG_MANAGED, "true"};
    for (size_t i = 0; i < t->tags.count; i++)
        tags[i + 2] = (struct kb_aws_tag){t->tags.items[i].key, t->tags.items[i].value};
    *out = tags;
    *count = t->tags.count + 2;
    return 0;
}

size_t kb_rc_tags_missing(const struct kb_aws_tag *have, size_t nhave,
                          const struct kb_aws_tag *want, size_t nwant, size_t *missing)
{
    size_t n = 0;

    for (size_t i = 0; i < nwant; i++) {
        const char *v = s_tag(have, nhave, want[i].key);

        if (v == NULL || strcmp(v, want[i].value != NULL ? want[i].value : "") != 0)
            missing[n++] = i;
    }
    return n;
}

bool kb_rc_pab_ok(const struct kb_s3_public_access_block *pab)
{
    return pab != NULL && pab->block_public_acls && pab->ignore_public_acls &&
           pab->block_public_policy && pab->restrict_public_buckets;
}

bool kb_rc_encryption_ok(const struct kb_s3_bucket_encryption *enc, const char *kms_key_id)
{
    if (enc == NULL || enc->sse_algorithm == NULL)
        return false;
    if (kms_key_id == NULL)
        return strcmp(enc->sse_algorithm, "AES256") == 0;
    return strcmp(enc->sse_algorithm, "aws:kms") == 0 && enc->kms_key_id != NULL &&
           strcmp(enc->kms_key_id, kms_key_id) == 0;
}

bool kb_rc_ownership_ok(const char *object_ownership)
{
    return object_ownership != NULL && strcmp(object_ownership, "BucketOwnerEnforced") == 0;
}

bool kb_rc_grants_list(const struct kb_tenant *t)
{
    if (t->access != KB_ACCESS_CUSTOM)
        return true;
    /* IAM matches actions ignoring case, with * and ? as wildcards. */
    for (size_t i = 0; i < t->nactions; i++) {
        if (t->actions[i] != NULL && fnmatch(t->actions[i], "s3:ListBucket", FNM_CASEFOLD) == 0)
            return true;
    }
    return false;
}

/* -- access keys ------------------------------------------------------------------------------- */

static bool s_is(const char *label_version, const char *version)
{
    return label_version[0] != '\0' && strcmp(label_version, version) == 0;
}

int kb_rc_plan_keys(const struct kb_rc_snapshot *s, time_t now, uint64_t min_age,
                    struct kb_rc_plan *out)
{
    size_t used;

    if (s == NULL || out == NULL || s->nkeys > KB_RC_MAX_KEYS)
        return KB_EINVAL;
    memset(out, 0, sizeof(*out));
    out->current = -1;
    out->waiting = -1;
    for (size_t i = 0; i < s->nkeys; i++) {
        char version[KB_UUID_STR_SIZE];
        int rc = kb_uuid_key_version(s->tenant, s->keys[i].id, version);

        if (rc != 0)
            return rc;
        if (s_is(s->current, version))
            out->current = (int)i;
        if (s_is(s->current, version) || s_is(s->pending, version) || s_is(s->previous, version)) {
            out->referenced |= 1u << i;
            continue;
        }
        /* A key dated in the future (clock skew) counts as young. */
        if (now >= s->keys[i].created && (uint64_t)(now - s->keys[i].created) >= min_age) {
            out->del[out->ndel++] = i;
        } else {
            if (out->waiting < 0)
                out->waiting = (int)i;
            out->nyoung++;
        }
    }
    used = s->nkeys - out->ndel;
    if (out->current >= 0 && s->keys[out->current].status == KB_IAM_KEY_ACTIVE)
        out->action = KB_RC_READY;
    else if (used < KB_RC_KEY_SLOTS)
        out->action = KB_RC_CREATE;
    else if (out->nyoung > 0)
        out->action = KB_RC_WAIT;
    else
        out->action = KB_RC_NO_SLOT;
    return 0;
}

/* -- AWS answers ------------------------------------------------------------------------------- */

bool kb_rc_is_code(const struct kb_aws_error *err, const char *code)
{
    return err != NULL && err->err == KB_EAWS && strcmp(err->code, code) == 0;
}

bool kb_rc_create_tags_refused(const struct kb_aws_error *err)
{
    static const char *const codes[] = {"MalformedXML", "InvalidArgument", "InvalidRequest",
                                        "NotImplemented"};

    if (err == NULL || err->err != KB_EAWS || (err->status != 400 && err->status != 501))
        return false;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (strcmp(err->code, codes[i]) == 0)
            return true;
    }
    return false;
}

bool kb_rc_store_surely_failed(const struct kb_aws_error *err)
{
    static const char *const maybe[] = {"ThrottlingException",     "Throttling",
                                        "TooManyRequests",         "RequestTimeout",
                                        "RequestTimeoutException", "RequestLimitExceeded"};

    if (err == NULL || err->err != KB_EAWS || err->status < 400 || err->status >= 500 ||
        err->status == 408 || err->status == 429)
        return false;
    for (size_t i = 0; i < sizeof(maybe) / sizeof(maybe[0]); i++) {
        if (strcmp(err->code, maybe[i]) == 0)
            return false;
    }
    return true;
}

uint64_t kb_rc_probe_backoff_ms(unsigned n, uint32_t rnd)
{
    uint64_t step = S_PROBE_BASE_MS;

    for (unsigned i = 0; i < n && step < S_PROBE_CAP_MS; i++)
        step *= 2;
    if (step > S_PROBE_CAP_MS)
        step = S_PROBE_CAP_MS;
    return step / 2 + (step / 2) * rnd / UINT32_MAX;
}

/* rnd / UINT32_MAX of span, without overflow for any span below 2^32 ms (49 days). */
static uint64_t s_scale(uint64_t span, uint32_t rnd)
{
    return span * rnd / UINT32_MAX;
}

uint64_t kb_rc_retry_delay_ms(unsigned failures, uint64_t initial_s, uint64_t max_s, uint32_t rnd)
{
    uint64_t cap = max_s * 1000u, step = initial_s * 1000u, delay;

    if (step > cap)
        step = cap;
    for (unsigned i = 1; i < failures && step < cap; i++)
        step *= 2;
    if (step > cap)
        step = cap;
    /* +-25%: from three quarters of the step to five quarters of it, but never past the cap. */
    delay = step - step / 4 + s_scale(step / 2, rnd);
    return delay < cap ? delay : cap;
}

uint64_t kb_rc_reconcile_delay_ms(uint64_t interval_s, uint32_t rnd)
{
    uint64_t base = interval_s * 1000u;

    return base - base / 10 + s_scale(base / 5, rnd);
}
