/*
 * reconcile.h - the pure decisions behind provisioning and revoking a tenant (DESIGN.md sections
 * 5-7): is a resource ours, which of our tags it lacks, whether a bucket setting is as configured,
 * and - over a snapshot of a user's access keys and the secret's staging labels - which key is
 * current, which keys are orphans old enough to delete, and whether a new key may be created.
 * Also the two judgements the key step makes about AWS answers: whether a failed store certainly
 * did not happen (so its key may be deleted at once), and the probe's backoff. And the engine's
 * background schedule: a failed tenant's retry backoff and the periodic reconcile's jitter.
 *
 * Pure code: no I/O, no clock (the caller passes "now"), no logging, never a secret.
 */
#ifndef KB_RECONCILE_H
#define KB_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "aws/awserr.h"
#include "config/config.h"
#include "aws/iam.h"
#include "aws/s3.h"
#include "aws/svc.h"

#define KB_RC_TAG_TENANT  "keybroker:tenant"
#define KB_RC_TAG_MANAGED "keybroker:managed"

/* The record of a bucket creation in progress, on the tenant's IAM user (provision_bucket.c):
 * written before an untagged CreateBucket, removed once the bucket carries keybroker's tags. */
#define KB_RC_TAG_CREATING   "keybroker:creating-bucket"
#define KB_RC_INTENT_MAX_AGE (24 * 3600) /* seconds: an older record adopts nothing */
#define KB_RC_INTENT_SIZE    96

/* IAM allows 2 keys per user; a snapshot keeps a few more so a surprise is still seen. */
#define KB_RC_MAX_KEYS  8
#define KB_RC_KEY_SLOTS 2

/* Whether tags carry keybroker:managed=true and keybroker:tenant=tenant (the only resources the
 * broker adopts or deletes). */
bool kb_rc_tags_ours(const struct kb_aws_tag *tags, size_t count, const char *tenant);

/* The tags of every resource of tenant t: keybroker:tenant, keybroker:managed, then t->tags.
 * Returns 0 and *out (caller frees the array with free(); the strings are borrowed from t) with
 * *count entries, or KB_ENOMEM. */
int kb_rc_tenant_tags(const struct kb_tenant *t, struct kb_aws_tag **out, size_t *count);

/* Writes into missing[] (room for nwant) the indexes of the wanted tags that have lacks or holds
 * with another value, and returns how many. Keys compare exactly. */
size_t kb_rc_tags_missing(const struct kb_aws_tag *have, size_t nhave,
                          const struct kb_aws_tag *want, size_t nwant, size_t *missing);

/* Whether tags hold keybroker:tenant or keybroker:managed at all (a resource some keybroker
 * manages, for this tenant or another). */
bool kb_rc_tags_keybroker(const struct kb_aws_tag *tags, size_t count);

/* The value of the creation record of bucket at now: "<bucket> <unix seconds>". */
void kb_rc_intent_value(const char *bucket, time_t now, char out[KB_RC_INTENT_SIZE]);

/* Whether tags (the IAM user's) hold a creation record of exactly bucket, written at most
 * KB_RC_INTENT_MAX_AGE before now and at most 5 minutes after it (clock skew). */
bool kb_rc_intent_ok(const struct kb_aws_tag *tags, size_t count, const char *bucket, time_t now);

/* Whether tags hold a creation record at all (of any bucket, any age). */
bool kb_rc_has_intent(const struct kb_aws_tag *tags, size_t count);

/* Bucket settings as configured: all four Block Public Access flags on; SSE-S3 when kms_key_id is
 * NULL, else aws:kms with exactly that key; BucketOwnerEnforced. */
bool kb_rc_pab_ok(const struct kb_s3_public_access_block *pab);
bool kb_rc_encryption_ok(const struct kb_s3_bucket_encryption *enc, const char *kms_key_id);
bool kb_rc_ownership_ok(const char *object_ownership);

/* Whether the tenant's policy grants s3:ListBucket on its bucket (so the probe must list
 * successfully; a custom access without it only has to be recognised by S3). */
bool kb_rc_grants_list(const struct kb_tenant *t);

/* -- access keys ------------------------------------------------------------------------------- */

struct kb_rc_key {
    char id[128];
    enum kb_iam_key_status status;
    time_t created;
};

/* What the broker knows about a tenant's keys: ListAccessKeys and DescribeSecret's labels. */
struct kb_rc_snapshot {
    const char *tenant;
    struct kb_rc_key keys[KB_RC_MAX_KEYS];
    size_t nkeys;
    char current[64];  /* the version id labelled AWSCURRENT, "" when none */
    char pending[64];  /* AWSPENDING */
    char previous[64]; /* AWSPREVIOUS */
};

enum kb_rc_action {
    KB_RC_READY,   /* AWSCURRENT holds an active key of the user: nothing to write */
    KB_RC_CREATE,  /* create a key and store it as AWSCURRENT */
    KB_RC_WAIT,    /* no free slot while a young unreferenced key holds one: retry later */
    KB_RC_NO_SLOT, /* both slots hold keys the secret references: rotation must free one */
};

struct kb_rc_plan {
    enum kb_rc_action action;
    int current;                /* index of the AWSCURRENT key in the snapshot, -1 */
    size_t del[KB_RC_MAX_KEYS]; /* unreferenced keys at least min_age old: delete them */
    size_t ndel;
    int waiting;         /* the first unreferenced key younger than min_age, -1 */
    size_t nyoung;       /* unreferenced keys younger than min_age (left alone) */
    unsigned referenced; /* bit i: key i is the key of a labelled version */
};

/* Which key of the snapshot each label names (a key is named by kb_uuid_key_version(tenant,
 * key)): indexes, -1 when none; bit i of referenced: key i is named by one of the three. */
struct kb_rc_labels {
    int current, pending, previous;
    unsigned referenced;
};
int kb_rc_label_keys(const struct kb_rc_snapshot *s, struct kb_rc_labels *out);

/* Appends ListAccessKeys's keys to s (at most KB_RC_MAX_KEYS in all; the rest are not kept). */
void kb_rc_snap_keys(struct kb_rc_snapshot *s, const struct kb_iam_access_keys *ks);

/*
 * Plans the key step. A key is referenced when kb_uuid_key_version(tenant, key) is the version
 * labelled AWSCURRENT, AWSPENDING or AWSPREVIOUS (AWSPREVIOUS keys stay referenced here: retiring
 * them after the overlap is rotation's step 7, not provisioning's). An unreferenced key is an
 * orphan: deleted once now - created >= min_age, left alone (a concurrent creator may be about
 * to store it) but counted in the two slots while younger. Returns 0, or KB_EINVAL.
 */
int kb_rc_plan_keys(const struct kb_rc_snapshot *s, time_t now, uint64_t min_age,
                    struct kb_rc_plan *out);

/* -- rotation (DESIGN.md section 8) ------------------------------------------------------------ */

/* When a version stopped being AWSCURRENT, on the tenant's secret: written by rotation right after
 * it moved AWSCURRENT away from that version ("<version id> <unix seconds>"). The windows of the
 * superseded (AWSPREVIOUS) key count from it. A superseded version the tag does not name (the
 * broker died between the move and the tag) is recorded as superseded when the broker first sees
 * it so: later than the move, so the windows only grow. */
#define KB_RC_TAG_SUPERSEDED  "keybroker:superseded"
#define KB_RC_SUPERSEDED_SIZE 96

/* The tag's value for version superseded at when. */
void kb_rc_superseded_value(const char *version, time_t when, char out[KB_RC_SUPERSEDED_SIZE]);

/* Whether tags record exactly version as superseded; then *when is the time. */
bool kb_rc_superseded_at(const struct kb_aws_tag *tags, size_t count, const char *version,
                         time_t *when);

/* The extra wait after rotate_every before a key is rotated by the schedule: 0..rotate_every/10,
 * fixed per (tenant, key) so that a fleet's tenants (provisioned together) spread out, and every
 * broker and every restart picks the same moment for the same key. */
uint64_t kb_rc_rotate_jitter(const char *tenant, const char *key_id, uint64_t rotate_every);

enum kb_rc_window_step {
    KB_RC_WIN_NONE,
    KB_RC_WIN_RECORD,     /* AWSPREVIOUS's supersede time is not recorded: tag it with now */
    KB_RC_WIN_DEACTIVATE, /* past aws.overlap: UpdateAccessKey Inactive */
    KB_RC_WIN_DELETE,     /* past aws.overlap + aws.retire: DeleteAccessKey */
};

enum kb_rc_rotate_action {
    KB_RC_ROT_NONE,   /* no rotation wanted (not requested, not due) */
    KB_RC_ROT_CREATE, /* a slot is free (after the window step's delete): create, store, probe */
    KB_RC_ROT_RESUME, /* AWSPENDING holds an existing key: probe it, then move AWSCURRENT */
    KB_RC_ROT_FINISH, /* AWSPENDING is on the AWSCURRENT version: remove it from there */
    KB_RC_ROT_REFUSE, /* wanted but not possible: see refusal; nothing is changed */
};

enum kb_rc_refusal {
    KB_RC_REFUSE_NONE,
    KB_RC_REFUSE_NO_CURRENT,    /* AWSCURRENT holds no active key of the user: provision first */
    KB_RC_REFUSE_YOUNG_ORPHAN,  /* a key no version references, younger than orphan_key_min_age,
                                   holds the slot (maybe another broker's rotation in flight) */
    KB_RC_REFUSE_ORPHAN,        /* an older unreferenced key holds it: provisioning deletes it */
    KB_RC_REFUSE_PREVIOUS_KEPT, /* the superseded key is inside overlap + retire (rollback) */
    KB_RC_REFUSE_NO_SLOT,       /* anything else: both slots hold keys the versions reference */
};

struct kb_rc_rotate_in {
    const struct kb_rc_snapshot *snap;
    bool superseded_known; /* the secret's tag records snap->previous's supersede time */
    time_t superseded_at;
    time_t now;
    uint64_t overlap, retire, min_age, rotate_every; /* seconds; rotate_every 0: never */
    bool requested;                                  /* on demand (kbctl rotate) */
    /* Every subscriber of the tenant acknowledged snap->current (the server's watch streams,
     * kb_engine_cut_over): the superseded key is deactivated now instead of after overlap. */
    bool cut_over;
};

struct kb_rc_rotate_plan {
    int current, pending, previous; /* key indexes in the snapshot, -1 */
    bool stale_pending; /* AWSPENDING is on a version whose key is gone: remove the label */
    enum kb_rc_window_step window; /* for the previous key */
    enum kb_rc_rotate_action action;
    enum kb_rc_refusal refusal;
    int blocker;       /* REFUSE: the key that holds the slot, -1 */
    time_t rotate_at;  /* when the schedule rotates the current key (0: never / no key) */
    time_t window_at;  /* when the previous key's next window step is due (0: none) */
    time_t next;       /* when a background pass should run: now when something is due now, else
                          the earliest of rotate_at, window_at and a young orphan's coming of age;
                          0: never */
    time_t next_after; /* the same, once this plan's steps are carried out (a rotation: the new
                          previous key's overlap) */
};

/*
 * Plans a rotation pass over a snapshot (keys and labels, as kb_rc_plan_keys reads them). Keys
 * are named by version (kb_uuid_key_version). Order of the steps a pass takes: remove a stale
 * AWSPENDING, the previous key's window step, then the action. A key slot is freed only by the
 * DELETE window step, i.e. only a key recorded as superseded and past overlap + retire; an
 * unreferenced key is never deleted here, whatever its age ("never the oldest"). An AWSPENDING
 * that names an existing key is an interrupted rotation: resumed even when none is requested.
 * Returns 0, or KB_EINVAL.
 */
int kb_rc_plan_rotate(const struct kb_rc_rotate_in *in, struct kb_rc_rotate_plan *out);

/* -- rollback (DESIGN.md section 8, step 7) ---------------------------------------------------- */

enum kb_rc_rollback_refusal {
    KB_RC_RB_OK,
    KB_RC_RB_NO_CURRENT,  /* AWSCURRENT names no key of the user */
    KB_RC_RB_NO_PREVIOUS, /* no AWSPREVIOUS version: nothing to roll back to */
    KB_RC_RB_DELETED,     /* AWSPREVIOUS's key no longer exists (deleted after aws.retire) */
    KB_RC_RB_IN_FLIGHT,   /* AWSPENDING is set: a rotation is unfinished */
};

struct kb_rc_rollback_plan {
    enum kb_rc_rollback_refusal refusal;
    int current, previous; /* key indexes in the snapshot, -1 */
    bool reactivate;       /* the AWSPREVIOUS key is Inactive: UpdateAccessKey Active first */
};

/* Plans moving AWSCURRENT back to the AWSPREVIOUS version: possible while that version's key
 * exists (active inside aws.overlap, inactive until aws.retire is over) and no rotation is
 * unfinished. Returns 0 (see refusal), or KB_EINVAL. */
int kb_rc_plan_rollback(const struct kb_rc_snapshot *s, struct kb_rc_rollback_plan *out);

/* -- AWS answers ------------------------------------------------------------------------------- */

/* Whether err is AWS's error code (KB_EAWS with that exact code). */
bool kb_rc_is_code(const struct kb_aws_error *err, const char *code);

/* Whether a failed CreateBucket was refused because the endpoint does not know Tags in
 * CreateBucketConfiguration (added by AWS in 2025): a 400 or 501 with MalformedXML,
 * InvalidArgument, InvalidRequest or NotImplemented, as moto, LocalStack, MinIO and Ceph answer. */
bool kb_rc_create_tags_refused(const struct kb_aws_error *err);

/* Whether a failed CreateSecret/PutSecretValue certainly did not store anything: AWS answered a
 * 4xx that is neither throttling nor a timeout. A 5xx, a network error or a timeout may hide a
 * request that was carried out; its key must not be deleted before the secret has been read. */
bool kb_rc_store_surely_failed(const struct kb_aws_error *err);

/* The probe's wait before attempt n+1 (n >= 0): exponential from 250 ms, capped at 5 s, with
 * "equal jitter": half the step fixed, the other half scaled by rnd / UINT32_MAX. */
uint64_t kb_rc_probe_backoff_ms(unsigned n, uint32_t rnd);

/* -- background schedule (engine.c) ------------------------------------------------------------ */

/*
 * The wait before the retry of a tenant whose last `failures` (>= 1) provisions in a row failed:
 * initial_s doubled for each failure after the first, capped at max_s, with +-25% jitter (rnd /
 * UINT32_MAX picks the point in [0.75, 1.25] of the step) and never longer than max_s. Bounded:
 * at least 0.75 * min(initial_s, max_s) and at most max_s. A success resets the count, so the
 * next failure waits about initial_s again. Seconds in, milliseconds out. failures 0 counts as 1.
 */
uint64_t kb_rc_retry_delay_ms(unsigned failures, uint64_t initial_s, uint64_t max_s, uint32_t rnd);

/* The wait before a healthy tenant's next periodic reconcile: interval_s with -10%..+10% jitter
 * (rnd as above), so that the tenants provisioned together, and a fleet of brokers started
 * together, do not all call AWS in the same second. 0: never (returns 0). */
uint64_t kb_rc_reconcile_delay_ms(uint64_t interval_s, uint32_t rnd);

#endif
