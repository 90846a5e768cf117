/*
 * rotate.h - what the two files of the rotate kind share (rotate.c: reading AWS, the plan, the
 * superseded key's window steps, the action and the kind; rotate_key.c: the new key, storing it
 * as AWSPENDING, resuming from AWSPENDING, the probe, and the label moves): the kind's state and
 * the entry points across the two files. rotate.c's header has the steps and the argument.
 */
#ifndef KB_ROTATE_H
#define KB_ROTATE_H

#include <stdbool.h>
#include <time.h>

#include "aws/secretsmanager.h"
#include "common/secret.h"
#include "common/uuid.h"
#include "engine/job.h"
#include "engine/probe.h"
#include "engine/reconcile.h"
#include "events/events.h"

#define KB_ROT_S_USER    "user"
#define KB_ROT_S_SECRET  "secret"
#define KB_ROT_S_KEYS    "access-keys"
#define KB_ROT_S_STALE   "pending-label"
#define KB_ROT_S_RECORD  "record-superseded"
#define KB_ROT_S_DEACT   "deactivate-key"
#define KB_ROT_S_DELETE  "delete-key"
#define KB_ROT_S_CREATE  "create-key"
#define KB_ROT_S_STORE   "store-key"
#define KB_ROT_S_READ    "read-pending"
#define KB_ROT_S_MOVE    "move-current"
#define KB_ROT_S_UNPEND  "remove-pending"
#define KB_ROT_S_TAG     "superseded-tag"
#define KB_ROT_S_ROTATE  "rotate"
#define KB_ROT_S_REACT   "reactivate-key"
#define KB_ROT_S_READ_PV "read-previous"
#define KB_ROT_S_BACK    "rollback"
#define KB_ROT_S_HOOK    "pre-finish"
#define KB_ROT_S_CURRENT "AWSCURRENT"
#define KB_ROT_S_PENDING "AWSPENDING"

/* A label call (move or removal) that failed is checked against DescribeSecret: done after all
 * when the labels are as wanted (another rotator did it), else the failure stands. */
struct kb_rot_verify {
    const char *step;
    void (*then)(struct kb_job *j);
    bool (*done)(struct kb_job *j, const struct kb_sm_description *d);
};

/* The rotate kind's state. */
struct kb_rot {
    char secret_arn[1024];
    bool superseded_known;
    time_t superseded_at;
    struct kb_rc_snapshot snap;
    struct kb_rc_rotate_plan plan;
    char old_version[64];
    char new_key[128];
    char new_version[64];         /* a KB_UUID_STR_SIZE id, sized like the labels */
    struct kb_secret *new_secret; /* from CreateAccessKey / GetSecretValue until the probe */
    struct kb_probe probe;
    bool probing;
    char store_error[768];
    char store_request_id[96];
    bool wanted;   /* a rotation was asked for or found due: a failure emits rotation_failed */
    bool cut_over; /* every subscriber acknowledged AWSCURRENT (the plan's cut_over) */
    const char *read_step; /* the step reading the key to probe: read-pending, read-previous */
    const struct kb_rot_verify *verify; /* the label check in flight */
    struct kb_aws_error label_error;    /* the failed label call's error, while it is checked */
    char rotation_id[KB_UUID_STR_SIZE]; /* random, one per pass: every event of the pass has it */
};

static inline struct kb_rot *kb_rot(struct kb_job *j)
{
    return kb_job_state(j);
}

/* rotate.c: ends the job (rotation_failed when it failed and a rotation was wanted). */
void kb_rot__end(struct kb_job *j);
/* rotate.c: kb_job_fail_aws at step, then kb_rot__end. */
void kb_rot__fail_end(struct kb_job *j, const char *step, const struct kb_aws_error *err);
/* rotate.c: a rotation event of kind on the bus (arn the secret's, version, message). */
void kb_rot__emit(struct kb_job *j, enum kb_event_kind kind, const char *version,
                  const char *message);
/* rotate.c: TagResource keybroker:superseded = "<version> <now>" (cb gets j). */
int kb_rot__tag_superseded(struct kb_job *j, const char *version, kb_aws_done_cb cb);
/* rotate_key.c: the actions. CreateAccessKey onwards; GetSecretValue(AWSPENDING) onwards; only
 * the removal of AWSPENDING from the AWSCURRENT version; a rollback from GetSecretValue of the
 * AWSPREVIOUS version (new_key, new_version: its key and version; old_version: AWSCURRENT's) on:
 * the probe, the move of AWSCURRENT back, the supersede tag of old_version, "rolled_back". Each
 * ends the job, later. */
void kb_rot__create(struct kb_job *j);
void kb_rot__read_pending(struct kb_job *j);
void kb_rot__unpend(struct kb_job *j);
void kb_rot__read_previous(struct kb_job *j);

#endif
