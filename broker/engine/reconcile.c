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

static uint64_t s_scale(uint64_t span, uint32_t rnd);

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

int kb_rc_label_keys(const struct kb_rc_snapshot *s, struct kb_rc_labels *out)
{
    if (s == NULL || out == NULL || s->nkeys > KB_RC_MAX_KEYS)
        return KB_EINVAL;
    *out = (struct kb_rc_labels){-1, -1, -1, 0};
    for (size_t i = 0; i < s->nkeys; i++) {
        char version[KB_UUID_STR_SIZE];
        int rc = kb_uuid_key_version(s->tenant, s->keys[i].id, version);

        if (rc != 0)
            return rc;
        if (s_is(s->current, version))
            out->current = (int)i;
        else if (s_is(s->pending, version))
            out->pending = (int)i;
        else if (s_is(s->previous, version))
            out->previous = (int)i;
        else
            continue;
        out->referenced |= 1u << i;
    }
    return 0;
}

void kb_rc_snap_keys(struct kb_rc_snapshot *s, const struct kb_iam_access_keys *ks)
{
    for (size_t i = 0; i < ks->count && s->nkeys < KB_RC_MAX_KEYS; i++) {
        struct kb_rc_key *k = &s->keys[s->nkeys++];

        snprintf(k->id, sizeof(k->id), "%s", ks->keys[i].access_key_id);
        k->status = ks->keys[i].status;
        k->created = ks->keys[i].create_date;
    }
}

int kb_rc_plan_keys(const struct kb_rc_snapshot *s, time_t now, uint64_t min_age,
                    struct kb_rc_plan *out)
{
    struct kb_rc_labels l;
    size_t used;
    int rc;

    if (out == NULL)
        return KB_EINVAL;
    rc = kb_rc_label_keys(s, &l);
    if (rc != 0)
        return rc;
    memset(out, 0, sizeof(*out));
    out->current = l.current;
    out->referenced = l.referenced;
    out->waiting = -1;
    for (size_t i = 0; i < s->nkeys; i++) {
        if (l.referenced & (1u << i))
            continue;
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

/* -- rotation ---------------------------------------------------------------------------------- */

void kb_rc_superseded_value(const char *version, time_t when, char out[KB_RC_SUPERSEDED_SIZE])
{
    snprintf(out, KB_RC_SUPERSEDED_SIZE, "%s %lld", version, (long long)when);
}

bool kb_rc_superseded_at(const struct kb_aws_tag *tags, size_t count, const char *version,
                         time_t *when)
{
    const char *v = s_tag(tags, count, KB_RC_TAG_SUPERSEDED);
    size_t n = version != NULL ? strlen(version) : 0;
    char *end = NULL;
    long long t;

    if (v == NULL || n == 0 || strncmp(v, version, n) != 0 || v[n] != ' ' || v[n + 1] < '0' ||
        v[n + 1] > '9')
        return false;
    errno = 0;
    t = strtoll(v + n + 1, &end, 10);
    if (errno != 0 || *end != '\0' || t <= 0)
        return false;
    *when = (time_t)t;
    return true;
}

uint64_t kb_rc_rotate_jitter(const char *tenant, const char *key_id, uint64_t rotate_every)
{
    char version[KB_UUID_STR_SIZE];
    uint32_t h;

    if (rotate_every < 10 || kb_uuid_key_version(tenant, key_id, version) != 0)
        return 0;
    h = (uint32_t)strtoul((char[9]){version[0], version[1], version[2], version[3], version[4],
                                    version[5], version[6], version[7], '\0'},
                          NULL, 16);
    return s_scale(rotate_every / 10, h);
}

static time_t s_min_time(time_t a, time_t b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return a < b ? a : b;
}

/* The previous key's window step at now, and when the next one is due. */
static void s_window(const struct kb_rc_rotate_in *in, const struct kb_rc_key *k,
                     struct kb_rc_rotate_plan *out)
{
    time_t t = in->superseded_at, now = in->now;
    time_t off = t + (time_t)in->overlap, gone = off + (time_t)in->retire;
    bool active = k->status == KB_IAM_KEY_ACTIVE;

    if (!in->superseded_known) {
        out->window = KB_RC_WIN_RECORD;
        out->window_at = now;
        /* Recorded as of now: the first window step then comes after the full windows (at once
         * when every subscriber acknowledged the new version: the next pass deactivates). */
        out->next_after = active && in->cut_over
                              ? now
                              : now + (time_t)(active ? in->overlap : in->overlap + in->retire);
        return;
    }
    if (now >= gone) {
        out->window = KB_RC_WIN_DELETE;
        out->window_at = now;
    } else if (active && (now >= off || in->cut_over)) {
        /* Past the overlap, or every subscriber already uses the new version. */
        out->window = KB_RC_WIN_DEACTIVATE;
        out->window_at = now;
        out->next_after = gone;
    } else {
        out->window_at = active ? off : gone;
        out->next_after = out->window_at;
    }
}

/* Which key holds the slot a rotation needs, and why that refuses it. */
static void s_refuse(const struct kb_rc_rotate_in *in, const unsigned referenced,
                     struct kb_rc_rotate_plan *out)
{
    const struct kb_rc_snapshot *s = in->snap;

    out->action = KB_RC_ROT_REFUSE;
    out->refusal = KB_RC_REFUSE_NO_SLOT;
    for (size_t i = 0; i < s->nkeys; i++) {
        const struct kb_rc_key *k = &s->keys[i];

        if (referenced & (1u << i)) {
            if ((int)i == out->previous && out->refusal == KB_RC_REFUSE_NO_SLOT) {
                out->refusal = KB_RC_REFUSE_PREVIOUS_KEPT;
                out->blocker = (int)i;
            }
            continue;
        }
        /* A key dated in the future (clock skew) counts as young. */
        if (in->now < k->created || (uint64_t)(in->now - k->created) < in->min_age) {
            out->refusal = KB_RC_REFUSE_YOUNG_ORPHAN;
            out->blocker = (int)i;
            out->next = s_min_time(out->next, k->created + (time_t)in->min_age);
            return;
        }
        out->refusal = KB_RC_REFUSE_ORPHAN;
        out->blocker = (int)i;
    }
}

int kb_rc_plan_rotate(const struct kb_rc_rotate_in *in, struct kb_rc_rotate_plan *out)
{
    const struct kb_rc_snapshot *s;
    struct kb_rc_labels l;
    unsigned referenced;
    size_t used;
    bool wanted;
    int rc;

    if (in == NULL || out == NULL)
        return KB_EINVAL;
    rc = kb_rc_label_keys(in->snap, &l);
    if (rc != 0)
        return rc;
    s = in->snap;
    memset(out, 0, sizeof(*out));
    out->current = l.current;
    out->pending = l.pending;
    out->previous = l.previous;
    out->blocker = -1;
    referenced = l.referenced;
    if (out->current < 0 || s->keys[out->current].status != KB_IAM_KEY_ACTIVE) {
        /* Nothing to rotate from: provisioning makes the tenant's key first. */
        out->action = in->requested ? KB_RC_ROT_REFUSE : KB_RC_ROT_NONE;
        out->refusal = in->requested ? KB_RC_REFUSE_NO_CURRENT : KB_RC_REFUSE_NONE;
        return 0;
    }
    out->stale_pending = s->pending[0] != '\0' && out->pending < 0 && !s_is(s->current, s->pending);
    if (in->rotate_every > 0)
        out->rotate_at =
            s->keys[out->current].created + (time_t)in->rotate_every +
            (time_t)kb_rc_rotate_jitter(s->tenant, s->keys[out->current].id, in->rotate_every);
    if (out->previous >= 0)
        s_window(in, &s->keys[out->previous], out);
    wanted = in->requested || (out->rotate_at != 0 && in->now >= out->rotate_at);
    if (s_is(s->current, s->pending)) {
        out->action = KB_RC_ROT_FINISH;
    } else if (out->pending >= 0) {
        out->action = KB_RC_ROT_RESUME;
    } else if (wanted) {
        used = s->nkeys - (out->window == KB_RC_WIN_DELETE ? 1u : 0u);
        if (used < KB_RC_KEY_SLOTS)
            out->action = KB_RC_ROT_CREATE;
        else
            s_refuse(in, referenced, out);
    }
    if (out->action == KB_RC_ROT_RESUME || out->action == KB_RC_ROT_CREATE) {
        /* The new previous key (the current one) gets its windows from the move, about now. */
        out->next_after = in->now + (time_t)in->overlap;
    } else {
        out->next_after = s_min_time(out->next_after, out->rotate_at);
    }
    if (out->window != KB_RC_WIN_NONE || out->stale_pending ||
        (out->action != KB_RC_ROT_NONE && out->action != KB_RC_ROT_REFUSE))
        out->next = in->now;
    else
        out->next = s_min_time(out->next, s_min_time(out->window_at, out->rotate_at));
    if (out->action == KB_RC_ROT_REFUSE && out->refusal == KB_RC_REFUSE_PREVIOUS_KEPT)
        out->next = s_min_time(out->next, out->window_at);
    return 0;
}

/* -- rollback ---------------------------------------------------------------------------------- */

int kb_rc_plan_rollback(const struct kb_rc_snapshot *s, struct kb_rc_rollback_plan *out)
{
    struct kb_rc_labels l;
    int rc;

    if (out == NULL)
        return KB_EINVAL;
    rc = kb_rc_label_keys(s, &l);
    if (rc != 0)
        return rc;
    *out = (struct kb_rc_rollback_plan){KB_RC_RB_OK, l.current, l.previous, false};
    if (s->pending[0] != '\0')
        out->refusal = KB_RC_RB_IN_FLIGHT;
    else if (s->previous[0] == '\0')
        out->refusal = KB_RC_RB_NO_PREVIOUS;
    else if (l.previous < 0)
        out->refusal = KB_RC_RB_DELETED;
    else if (l.current < 0)
        out->refusal = KB_RC_RB_NO_CURRENT;
    else
        out->reactivate = s->keys[l.previous].status != KB_IAM_KEY_ACTIVE;
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
