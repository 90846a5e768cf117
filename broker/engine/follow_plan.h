/*
 * follow_plan.h - the pure decisions of a follower broker (engine/follow.c; DESIGN.md section 12):
 * which ListSecrets entry is the secret of which followed tenant, which versions it labels
 * AWSCURRENT and AWSPREVIOUS, and - from what the follower knew before a poll and what the poll
 * listed - the tenant's new known state and the one event the change means (provisioned,
 * rotated, rolled_back, revoked, or none).
 *
 * Pure code: no I/O, no clock, no logging. A follower never sees a secret value: nothing here
 * could hold one.
 */
#ifndef KB_FOLLOW_PLAN_H
#define KB_FOLLOW_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "aws/secretsmanager.h"
#include "config/config.h"

#define KB_FOLLOW_VERSION_SIZE 64 /* as kb_tenant_status.version_id; longer ids are not kept */

/* What the follower knows about one followed tenant between two polls. */
enum kb_follow_seen {
    KB_FOLLOW_UNSEEN, /* never listed with an AWSCURRENT version by this process */
    KB_FOLLOW_READY,  /* listed with an AWSCURRENT version: served */
    KB_FOLLOW_GONE,   /* was ready, then no longer listed (deleted or scheduled for deletion) */
};

struct kb_follow_known {
    enum kb_follow_seen seen;
    char current[KB_FOLLOW_VERSION_SIZE];  /* AWSCURRENT's version id; "" unless READY */
    char previous[KB_FOLLOW_VERSION_SIZE]; /* AWSPREVIOUS's; "" when none */
};

/* What one complete ListSecrets pass showed of the tenant. */
struct kb_follow_listed {
    bool listed;      /* its secret was listed: ours (kb_follow_entry_tenant), not being deleted */
    bool arn_changed; /* under another ARN than the one served (the secret was re-created) */
    char current[KB_FOLLOW_VERSION_SIZE];
    char previous[KB_FOLLOW_VERSION_SIZE];
};

enum kb_follow_change {
    KB_FOLLOW_NONE,        /* nothing an application must hear of (AWSPREVIOUS may have moved) */
    KB_FOLLOW_PROVISIONED, /* first seen with an AWSCURRENT version, or re-created */
    KB_FOLLOW_ROTATED,     /* AWSCURRENT moved to a version that was not the known AWSPREVIOUS */
    KB_FOLLOW_ROLLED_BACK, /* AWSCURRENT moved back to the known AWSPREVIOUS version */
    KB_FOLLOW_REVOKED,     /* was ready, its secret is no longer listed */
};

/*
 * The followed tenant whose secret e is, or NULL: e names exactly aws.secret_prefix + the name of
 * a tenant of cfg whose tenants[].rotate is false, carries keybroker's tags for that tenant
 * (kb_rc_tags_ours), has an ARN and is not scheduled for deletion (DeletedDate). Anything else -
 * another broker's secret, a rotator tenant's, a foreign secret with a look-alike name - is not
 * the follower's business. Returned pointer borrowed from cfg.
 */
const struct kb_tenant *kb_follow_entry_tenant(const struct kb_config *cfg,
                                               const struct kb_sm_list_entry *e);

/* The version ids labelled AWSCURRENT and AWSPREVIOUS among versions ("" when none, or when the
 * id does not fit KB_FOLLOW_VERSION_SIZE). */
void kb_follow_labels(const struct kb_sm_version *versions, size_t count,
                      char current[KB_FOLLOW_VERSION_SIZE], char previous[KB_FOLLOW_VERSION_SIZE]);

/*
 * One tenant's step after a complete pass: from old (what was known) and listed (what the pass
 * showed) writes the new known state into *out (which may be old) and returns the change:
 *  - listed with an AWSCURRENT version: READY; PROVISIONED when it was not ready or the ARN
 *    changed, ROLLED_BACK when AWSCURRENT is the version known as AWSPREVIOUS, ROTATED when it is
 *    any other new version, NONE when it is the same;
 *  - listed without an AWSCURRENT version (its rotator has not stored a key yet): unchanged, NONE;
 *  - not listed: GONE and REVOKED when it was READY, else unchanged and NONE.
 */
enum kb_follow_change kb_follow_step(const struct kb_follow_known *old,
                                     const struct kb_follow_listed *listed,
                                     struct kb_follow_known *out);

#endif
