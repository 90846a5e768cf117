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
 * The probe is a step any kind can run: it takes the key, and the step to run next as a callback.
 * The new key's secret is only handed to the signer (the client copies it per request, in
 * guarded memory); this file never formats or logs it, and never deletes the key.
 */
#include "engine/probe.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "aws/s3.h"
#include "aws/sts.h"
#include "common/err.h"
#include "common/log.h"
#include "engine/reconcile.h"

#define S_STEP "probe"

static void s_attempt(struct kb_probe *p);

static void s_finish(struct kb_probe *p)
{
    p->next(p->job);
}

static void on_timer(void *arg)
{
    struct kb_probe *p = arg;
    struct kb_job *j = p->job;

    /* Canceled while waiting: send nothing more (the client may be closing). */
    if (kb_job_canceled(j)) {
        kb_job_fail(j, S_STEP, NULL, "canceled; the key is stored");
        s_finish(p);
    } else {
        s_attempt(p);
    }
    kb_job_unref(j);
}

static void s_note(char *dst, size_t len, const char *leg, const struct kb_aws_error *err)
{
    kb_strf(dst, len, "%s: %s%s%s", leg, err->code[0] != '\0' ? err->code : kb_err_name(err->err),
            err->message[0] != '\0' ? ": " : "", err->message);
}

static void s_round_done(struct kb_probe *p)
{
    struct kb_job *j = p->job;
    uint64_t now = kb_job_now(j), delay;
    char msg[160];

    if (p->sts_ok && p->s3_ok) {
        kb_job_set_probe(j, "probed-ok");
        snprintf(msg, sizeof(msg), "probed-ok after %u attempt%s in %.1fs", p->attempt,
                 p->attempt == 1 ? "" : "s", (double)(now - p->started) / 1000.0);
        kb_job_event(j, S_STEP, KB_ENGINE_DONE, msg, NULL);
        s_finish(p);
        return;
    }
    if (kb_job_canceled(j)) {
        kb_job_fail(j, S_STEP, NULL, "canceled; the key is stored");
        s_finish(p);
        return;
    }
    if (now >= p->deadline) {
        kb_job_set_probe(j, "timed-out");
        kb_job_fail(j, S_STEP, NULL,
                    "readiness probe with the new key timed out after %llus (IAM propagation); "
                    "the key is stored and stays in place for the next attempt (last answers: "
                    "%s; %s)",
                    (unsigned long long)j->cfg->aws.probe_timeout, p->sts, p->s3);
        s_finish(p);
        return;
    }
    delay = kb_rc_probe_backoff_ms(p->attempt - 1, randombytes_random());
    if (delay > p->deadline - now)
        delay = p->deadline - now; /* one last attempt at the deadline */
    kb_log(KB_LOG_DEBUG, "probe-wait", "tenant", j->t->name, "step", S_STEP, "sts", p->sts, "s3",
           p->s3, NULL);
    kb_job_timer_start(j, delay, on_timer, p);
}

static void s_leg_done(struct kb_probe *p)
{
    if (--p->inflight == 0)
        s_round_done(p);
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
    struct kb_probe *p = ctx;
    struct kb_job *j = p->job;

    kb_job_log_call(j, S_STEP, "GetCallerIdentity", err, KB_RID(id));
    if (err != NULL)
        s_note(p->sts, sizeof(p->sts), "sts", err);
    else if (!s_is_user(j, id->arn))
        kb_strf(p->sts, sizeof(p->sts), "sts: the key belongs to %s", id->arn);
    else
        kb_strf(p->sts, sizeof(p->sts), "sts: ok");
    p->sts_ok = p->sts_ok || (err == NULL && s_is_user(j, id->arn));
    s_leg_done(p);
    kb_job_unref(j);
}

static void on_s3(void *ctx, const struct kb_aws_error *err, const struct kb_s3_object_list *l)
{
    struct kb_probe *p = ctx;
    struct kb_job *j = p->job;

    kb_job_log_call(j, S_STEP, "ListObjectsV2", err, KB_RID(l));
    if (err == NULL || (kb_rc_is_code(err, "AccessDenied") && !kb_rc_grants_list(j->t))) {
        p->s3_ok = true;
        kb_strf(p->s3, sizeof(p->s3), "s3: ok");
    } else {
        s_note(p->s3, sizeof(p->s3), "s3", err);
    }
    s_leg_done(p);
    kb_job_unref(j);
}

/* One leg's call has been handed to the client (rc 0: its callback holds a reference and a count
 * of the round) or could not be (the leg's note says why; the round goes on without it). */
static void s_leg_sent(struct kb_probe *p, int rc, char *note, size_t len, const char *leg)
{
    if (rc == 0) {
        kb_job_ref(p->job);
        p->inflight++;
    } else {
        kb_strf(note, len, "%s: could not send: %s", leg, kb_strerror(rc));
    }
}

static void s_attempt(struct kb_probe *p)
{
    struct kb_job *j = p->job;

    p->attempt++;
    p->inflight = 1; /* this function's own hold: no round ends while it sends */
    if (!p->sts_ok) {
        struct kb_sts_get_caller_identity_input in = {&p->creds, 1};

        s_leg_sent(p, kb_sts_get_caller_identity(j->client, &in, on_sts, p), p->sts, sizeof(p->sts),
                   "sts");
    }
    if (!p->s3_ok) {
        struct kb_s3_list_objects_input in = {j->t->bucket, j->t->prefix, 0, &p->creds, 1};

        s_leg_sent(p, kb_s3_list_objects_v2(j->client, &in, on_s3, p), p->s3, sizeof(p->s3), "s3");
    }
    s_leg_done(p);
}

void kb_probe_start(struct kb_probe *p, struct kb_job *j, const char *key_id,
                    struct kb_secret *secret, void (*next)(struct kb_job *j))
{
    uint64_t now = kb_job_now(j);

    kb_job_event(j, S_STEP, KB_ENGINE_START, NULL, NULL);
    p->job = j;
    p->next = next;
    snprintf(p->creds.access_key_id, sizeof(p->creds.access_key_id), "%s", key_id);
    snprintf(p->creds.source, sizeof(p->creds.source), "probe");
    /* The secret moves into the probe's credentials (the client copies them per request). */
    p->creds.secret_access_key = secret;
    p->started = now;
    p->deadline = now + j->cfg->aws.probe_timeout * 1000u;
    kb_strf(p->sts, sizeof(p->sts), "sts: no answer yet");
    kb_strf(p->s3, sizeof(p->s3), "s3: no answer yet");
    s_attempt(p);
}

void kb_probe_cleanup(struct kb_probe *p)
{
    kb_credentials_cleanup(&p->creds);
}
