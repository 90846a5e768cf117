/*
 * probe.c - the readiness probe of a new access key (DESIGN.md section 7): sts:GetCallerIdentity
 * and an S3 read of the tenant's bucket, both signed with the NEW key, retried with jittered
 * exponential backoff (250 ms doubling to 5 s, reconcile.h) until aws.probe_timeout. IAM is
 * eventually consistent: a key works everywhere 5-20 s after CreateAccessKey on real AWS.
 *
 * Each probe request is one HTTP attempt (max_attempts 1): this loop owns the timing. The S3 leg
 * is ListObjectsV2 within the tenant's prefix with max-keys 0 rather than HeadBucket: HeadBucket
 * needs s3:ListBucket without an s3:prefix condition, which a prefix-confined tenant does not
 * have. For a custom access that grants no listing, an AccessDenied answer (S3 knew the key and
 * judged the request) is the proof. The result is reported as "probed-ok", not as a guarantee;
 * a timeout fails the job but leaves the stored key in place for the next attempt.
 *
 * The new key's secret is only handed to the signer (the client copies it per request, in
 * guarded memory); this file never formats or logs it, and never deletes the key.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "common/err.h"
#include "common/log.h"
#include "aws/s3.h"
#include "aws/sts.h"

#define S_STEP "probe"

static void s_attempt(struct kb_job *j);

static void on_timer(uv_timer_t *timer)
{
    struct kb_job *j = timer->data;

    /* Canceled while waiting: send nothing more (the client may be closing). */
    if (j->e->canceled) {
        kb_job_fail(j, S_STEP, NULL, "canceled; the key is stored");
        kb_prov_key_probed(j);
    } else {
        s_attempt(j);
    }
    kb_job_unref(j);
}

static void s_note(char *dst, size_t len, const char *leg, const struct kb_aws_error *err)
{
    kb_strf(dst, len, "%s: %s%s%s", leg, err->code[0] != '\0' ? err->code : kb_err_name(err->err),
            err->message[0] != '\0' ? ": " : "", err->message);
}

static void s_round_done(struct kb_job *j)
{
    struct kb_tenant_status *st = kb_job_status(j);
    uint64_t now = uv_now(j->e->loop), delay;
    char msg[160];

    if (j->sts_ok && j->s3_ok) {
        snprintf(st->probe, sizeof(st->probe), "probed-ok");
        snprintf(msg, sizeof(msg), "probed-ok after %u attempt%s in %.1fs", j->probe_attempt,
                 j->probe_attempt == 1 ? "" : "s", (double)(now - j->probe_started) / 1000.0);
        kb_job_event(j, S_STEP, KB_ENGINE_DONE, msg, NULL);
        kb_prov_key_probed(j);
        return;
    }
    if (j->e->canceled) {
        kb_job_fail(j, S_STEP, NULL, "canceled; the key is stored");
        kb_prov_key_probed(j);
        return;
    }
    if (now >= j->probe_deadline) {
        snprintf(st->probe, sizeof(st->probe), "timed-out");
        kb_job_fail(j, S_STEP, NULL,
                    "readiness probe with the new key timed out after %llus (IAM propagation); "
                    "the key is stored and stays in place for the next attempt (last answers: "
                    "%s; %s)",
                    (unsigned long long)j->e->cfg->aws.probe_timeout, j->probe_sts, j->probe_s3);
        kb_prov_key_probed(j);
        return;
    }
    delay = kb_rc_probe_backoff_ms(j->probe_attempt - 1, randombytes_random());
    if (delay > j->probe_deadline - now)
        delay = j->probe_deadline - now; /* one last attempt at the deadline */
    kb_log(KB_LOG_DEBUG, "probe-wait", "tenant", j->t->name, "step", S_STEP, "sts", j->probe_sts,
           "s3", j->probe_s3, NULL);
    kb_job_ref(j); /* held by the timer */
    uv_timer_start(&j->timer, on_timer, delay, 0);
}

static void s_leg_done(struct kb_job *j)
{
    if (--j->probe_inflight == 0)
        s_round_done(j);
}

/* The identity must be the tenant's user (".../user<path><name>"). */
static bool s_is_user(const struct kb_job *j, const char *arn)
{
    size_t alen = strlen(arn), ulen = strlen(j->t->user_name);

    return strstr(arn, ":user/") != NULL && alen > ulen && arn[alen - ulen - 1] == '/' &&
           strcmp(arn + alen - ulen, j->t->user_name) == 0;
}

static void on_sts(void *ctx, const struct kb_aws_error *err, const struct kb_sts_identity *id)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, S_STEP, "GetCallerIdentity", err, KB_RID(id));
    if (err != NULL)
        s_note(j->probe_sts, sizeof(j->probe_sts), "sts", err);
    else if (!s_is_user(j, id->arn))
        kb_strf(j->probe_sts, sizeof(j->probe_sts), "sts: the key belongs to %s", id->arn);
    else
        kb_strf(j->probe_sts, sizeof(j->probe_sts), "sts: ok");
    j->sts_ok = j->sts_ok || (err == NULL && s_is_user(j, id->arn));
    s_leg_done(j);
    kb_job_unref(j);
}

static void on_s3(void *ctx, const struct kb_aws_error *err, const struct kb_s3_object_list *l)
{
    struct kb_job *j = ctx;

    kb_job_log_call(j, S_STEP, "ListObjectsV2", err, KB_RID(l));
    if (err == NULL || (kb_rc_is_code(err, "AccessDenied") && !kb_rc_grants_list(j->t))) {
        j->s3_ok = true;
        kb_strf(j->probe_s3, sizeof(j->probe_s3), "s3: ok");
    } else {
        s_note(j->probe_s3, sizeof(j->probe_s3), "s3", err);
    }
    s_leg_done(j);
    kb_job_unref(j);
}

static void s_send_failed(struct kb_job *j, char *dst, size_t len, const char *leg, int rc)
{
    kb_job_unref(j);
    kb_strf(dst, len, "%s: could not send: %s", leg, kb_strerror(rc));
}

static void s_attempt(struct kb_job *j)
{
    int rc;

    j->probe_attempt++;
    j->probe_inflight = 1; /* this function's own hold: no round ends while it sends */
    if (!j->sts_ok) {
        struct kb_sts_get_caller_identity_input in = {&j->probe_creds, 1};

        kb_job_ref(j);
        j->probe_inflight++;
        rc = kb_sts_get_caller_identity(j->e->client, &in, on_sts, j);
        if (rc != 0) {
            j->probe_inflight--;
            s_send_failed(j, j->probe_sts, sizeof(j->probe_sts), "sts", rc);
        }
    }
    if (!j->s3_ok) {
        struct kb_s3_list_objects_input in = {j->t->bucket, j->t->prefix, 0, &j->probe_creds, 1};

        kb_job_ref(j);
        j->probe_inflight++;
        rc = kb_s3_list_objects_v2(j->e->client, &in, on_s3, j);
        if (rc != 0) {
            j->probe_inflight--;
            s_send_failed(j, j->probe_s3, sizeof(j->probe_s3), "s3", rc);
        }
    }
    s_leg_done(j);
}

void kb_probe_start(struct kb_job *j)
{
    uint64_t now = uv_now(j->e->loop);

    kb_job_event(j, S_STEP, KB_ENGINE_START, NULL, NULL);
    snprintf(j->probe_creds.access_key_id, sizeof(j->probe_creds.access_key_id), "%s", j->new_key);
    snprintf(j->probe_creds.source, sizeof(j->probe_creds.source), "probe");
    /* The secret moves into the probe's credentials (the client copies them per request). */
    j->probe_creds.secret_access_key = j->new_secret;
    j->new_secret = NULL;
    uv_timer_init(j->e->loop, &j->timer);
    j->timer.data = j;
    j->timer_open = true;
    j->probe_started = now;
    j->probe_deadline = now + j->e->cfg->aws.probe_timeout * 1000u;
    kb_strf(j->probe_sts, sizeof(j->probe_sts), "sts: no answer yet");
    kb_strf(j->probe_s3, sizeof(j->probe_s3), "s3: no answer yet");
    s_attempt(j);
}
