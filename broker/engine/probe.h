/*
 * probe.h - the readiness probe of a new access key (probe.c), for any job kind: provisioning
 * runs it after storing a key, rotation will run it before moving AWSCURRENT.
 *
 * The caller embeds a struct kb_probe in its job state and hands it the key; the probe takes the
 * secret (guarded memory, wiped at kb_probe_cleanup), probes until it succeeds or
 * aws.probe_timeout, records the result in the tenant's status ("probed-ok", "timed-out"), fails
 * the job on a timeout or cancel, and then calls next(j): the step to run after it. next runs
 * exactly once, later.
 */
#ifndef KB_PROBE_H
#define KB_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "aws/credentials.h"
#include "common/secret.h"
#include "engine/job.h"

struct kb_probe {
    struct kb_job *job;
    void (*next)(struct kb_job *j);
    struct kb_credentials creds; /* the new key; the secret is owned here */
    uint64_t deadline, started;  /* kb_job_now() ms */
    unsigned attempt, inflight;
    bool sts_ok, s3_ok;
    char sts[384], s3[384]; /* the last answer of each leg */
};

/* Starts probing key_id with secret (taken: destroyed at kb_probe_cleanup) for j's tenant. */
void kb_probe_start(struct kb_probe *p, struct kb_job *j, const char *key_id,
                    struct kb_secret *secret, void (*next)(struct kb_job *j));

/* Destroys the key's secret. Safe on a probe never started, and more than once. */
void kb_probe_cleanup(struct kb_probe *p);

#endif
