/*
 * provision.h - what the files of the provision kind share (provision.c, provision_bucket.c,
 * provision_user.c, provision_key.c): the kind's state and the entry points of its chains.
 *
 * provision.c starts the bucket chain and the user chain concurrently and owns their join: the
 * user's inline policy (provision_user.c) is written only once both have ended and neither
 * failed, then the key step (provision_key.c) runs. When the bucket was refused and the user is
 * the tenant's, the join removes the policy instead and the job ends. Where the endpoint refuses
 * tags in CreateBucket, the bucket chain parks until the user chain has ended (the creation is
 * recorded on the user first), and the join removes that record before the key step.
 */
#ifndef KB_PROVISION_H
#define KB_PROVISION_H

#include <stdbool.h>
#include <time.h>

#include "aws/svc.h"
#include "common/secret.h"
#include "common/uuid.h"
#include "engine/job.h"
#include "engine/probe.h"
#include "engine/reconcile.h"

struct kb_prov {
    struct kb_aws_tag *tags; /* kb_rc_tenant_tags */
    size_t ntags;
    char *user_policy, *bucket_policy;

    /* the two chains */
    bool bucket_running, user_running;
    bool bucket_fresh, user_fresh;
    bool user_ok;        /* the user chain succeeded: the user exists and is the tenant's */
    bool bucket_refused; /* the bucket exists and is not the tenant's (not just a failure) */
    unsigned user_tries; /* GetUser/CreateUser rounds (a user deleted and re-created meanwhile) */
    size_t setting;
    /* The untagged creation (provision_bucket.c): the bucket chain waits for the user chain,
     * records the creation on the user, and the join removes the record. */
    bool bucket_parked;  /* waiting for the user chain to end */
    bool intent_written; /* this run wrote the creation record */
    bool intent_seen;    /* the user carries one (this run's, an earlier run's) */
    char intent[KB_RC_INTENT_SIZE];
    char create_request_id[96]; /* of the CreateBucket that made the bucket (the step's) */

    /* the key step */
    bool secret_exists;
    char secret_arn[1024];
    time_t secret_changed;
    bool superseded_known; /* the secret's tag records when AWSPREVIOUS was superseded */
    time_t superseded_at;
    struct kb_rc_snapshot snap;
    struct kb_rc_plan plan;
    size_t del_next;
    char new_key[128];
    struct kb_secret *new_secret; /* from CreateAccessKey until the probe takes it */
    char new_version[KB_UUID_STR_SIZE];
    char store_error[768];
    char store_request_id[96]; /* of the failed store call, named by the step's error */

    struct kb_probe probe;
    const struct kb_prov_retag *retag; /* the tag repair in flight (kb_prov__retag) */
};

/* A tag repair that adds the missing tags (TagUser, TagResource: both add or overwrite only the
 * tags they are given). Static, one per resource kind. */
struct kb_prov_retag {
    const char *step;      /* "user-tags" */
    const char *operation; /* "TagUser" */
    const char *drift;     /* the drift line */
    /* Sends the tag call for j (its callback cb gets j). Returns the typed call's rc. */
    int (*send)(struct kb_job *j, const struct kb_aws_tag *tags, size_t n, kb_aws_done_cb cb);
    void (*then)(struct kb_job *j);   /* after the repair */
    void (*unwind)(struct kb_job *j); /* after a failure */
};

static inline struct kb_prov *kb_prov(struct kb_job *j)
{
    return kb_job_state(j);
}

/* provision_bucket.c / provision_user.c: each ends with kb_prov__chain_end(j). */
void kb_prov__bucket_start(struct kb_job *j);
/* provision_bucket.c: the parked bucket chain goes on, the user chain having ended well. */
void kb_prov__bucket_resume(struct kb_job *j);
void kb_prov__user_start(struct kb_job *j);
/* provision.c: called by each chain when it has ended (ok or failed); the join. */
void kb_prov__chain_end(struct kb_job *j);
/* provision.c: repairs the tags missing[0..n) (indexes into kb_prov(j)->tags), then how->then(j);
 * one repair at a time per job (the user chain's, or the key step's after the chains). */
void kb_prov__retag(struct kb_job *j, const struct kb_prov_retag *how, const size_t *missing,
                    size_t n);
/* provision_user.c, after the join: writes or repairs the user's inline policy (both chains
 * succeeded), then kb_prov__policy_end(j). */
void kb_prov__policy_start(struct kb_job *j);
/* provision_user.c, after the join when the bucket chain failed and the user chain succeeded:
 * removes the user's inline policy when the bucket was refused (bucket_refused), writes nothing
 * otherwise; then kb_prov__policy_end(j). */
void kb_prov__policy_withhold(struct kb_job *j);
/* provision.c: the policy step has ended (ok or failed). */
void kb_prov__policy_end(struct kb_job *j);
/* provision_key.c: the key step, after both chains. */
void kb_prov__key_start(struct kb_job *j);

#endif
