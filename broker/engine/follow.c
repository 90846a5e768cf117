/*
 * follow.c - the follower: a broker that is not a tenant's rotator (tenants[].rotate false) learns
 * the tenant's ARN and AWSCURRENT version from Secrets Manager and tells its own subscribers what
 * changed (DESIGN.md section 12, issue 12 item 5).
 *
 * One pass is one ListSecrets walk, 100 secrets a page, filtered by keybroker's tag key and by
 * aws.secret_prefix (a prefix match), so its cost grows with pages, not tenants: a fleet of
 * followers makes ceil(secrets / 100) calls each per broker.follow.interval, and no IAM, S3 or
 * STS call at all. The pass collects what each page shows of each followed tenant; only a
 * complete pass is applied (follow_plan.h decides the new state and the event), so a failed page
 * - an AWS error, a malformed answer - changes nothing already known: the last known version is
 * still served, the failure is logged with its request id and counted, and the next pass comes
 * after the interval, or sooner with the retry backoff (broker.reconcile.retry_*). Passes never
 * overlap: the timer is armed only when a pass has ended. Each wait is jittered +-10%.
 *
 * A follower never reads a secret value (no GetSecretValue): nothing here holds key material.
 * The statuses it writes are the engine's (engine_internal.h), which no job of a followed tenant
 * ever touches: the engine refuses every job for it.
 */
#include "engine/follow.h"

#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "engine/engine_internal.h"
#include "engine/follow_plan.h"
#include "engine/reconcile.h"
#include "events/events.h"

#define S_PAGE 100 /* ListSecrets' largest page */

/* One tenant as the follower sees it: what it knew after the last complete pass, and what the
 * pass in progress has listed. Unused for the tenants this broker rotates. */
struct s_tenant {
    struct kb_follow_known known;
    struct kb_follow_listed pass;
    char *pass_arn;      /* the listed ARN when it differs from the one served (owned) */
    time_t pass_rotated; /* when AWSPREVIOUS was superseded (its keybroker:superseded tag), 0 */
};

struct kb_follow {
    struct kb_engine *e; /* NULL once detached (kb_follow__destroy) */
    uv_timer_t timer;
    unsigned refs;            /* the timer until its close callback, and a call in flight */
    bool stopped;             /* canceled: no further pass */
    bool in_flight;           /* a ListSecrets page is out */
    unsigned failures;        /* passes failed in a row */
    struct s_tenant *tenants; /* cfg->ntenants */
    size_t followed;
    /* The pass in progress. */
    uint64_t pass_start; /* loop ms */
    unsigned pass_calls;
    size_t pass_listed;
    struct kb_engine_follow_stats stats;
};

static void s_unref(struct kb_follow *f)
{
    if (--f->refs > 0)
        return;
    free(f->tenants); /* the pass's ARNs went when it was detached */
    free(f);
}

static void s_free_pass_arns(struct kb_follow *f, size_t ntenants)
{
    for (size_t i = 0; i < ntenants; i++) {
        free(f->tenants[i].pass_arn);
        f->tenants[i].pass_arn = NULL;
    }
}

void kb_follow__init_status(struct kb_engine *e)
{
    for (size_t i = 0; i < e->cfg->ntenants; i++) {
        if (!e->cfg->tenants[i].rotate)
            kb_engine__set_message(&e->tenants[i], "followed by this broker: its rotator "
                                                   "provisions it; not polled yet");
    }
}

/* -- applying a complete pass ------------------------------------------------------------------ */

static void s_emit(struct kb_follow *f, enum kb_event_kind kind, const struct kb_tenant *t,
                   const char *arn, const char *version, const char *message)
{
    struct kb_event ev = {.kind = kind,
                          .tenant = t->name,
                          .op = "follow",
                          .arn = arn,
                          .version_id = version,
                          .message = message};

    kb_events_emit(f->e->events, &ev);
}

/* The status of a tenant not (or no longer) served: why. */
static void s_waiting(struct kb_engine_tenant *et, const struct kb_tenant *t,
                      const struct s_tenant *ft)
{
    char msg[640];

    if (ft->known.seen == KB_FOLLOW_GONE)
        snprintf(msg, sizeof(msg),
                 "secret %s is no longer listed (deleted or scheduled for deletion): its rotator "
                 "revoked it",
                 t->secret_name);
    else if (ft->pass.listed)
        snprintf(msg, sizeof(msg),
                 "waiting for the tenant's rotator: secret %s has no AWSCURRENT version yet",
                 t->secret_name);
    else
        snprintf(msg, sizeof(msg), "waiting for the tenant's rotator: secret %s not found",
                 t->secret_name);
    kb_engine__set_message(et, msg);
}

/* Tenant i after a complete pass: its new status, then its event (subscribers that read the
 * status on the event see the new one). */
static void s_apply(struct kb_follow *f, size_t i)
{
    struct kb_engine *e = f->e;
    const struct kb_tenant *t = &e->cfg->tenants[i];
    struct kb_engine_tenant *et = &e->tenants[i];
    struct s_tenant *ft = &f->tenants[i];
    struct kb_follow_known old = ft->known;
    enum kb_follow_change change;
    char msg[160], *gone_arn = NULL;

    ft->pass.arn_changed = ft->pass_arn != NULL && old.seen == KB_FOLLOW_READY;
    change = kb_follow_step(&old, &ft->pass, &ft->known);
    if (ft->known.seen != KB_FOLLOW_READY) {
        if (change == KB_FOLLOW_REVOKED) {
            gone_arn = et->secret_arn; /* ownership moves: the revoked event names it */
            et->secret_arn = NULL;
            kb_engine__set_arn(et, "");
            et->status.version_id[0] = '\0';
            et->status.probe[0] = '\0';
            et->status.state = KB_TENANT_REVOKED;
        }
        s_waiting(et, t, ft);
        if (change == KB_FOLLOW_REVOKED) {
            kb_log(KB_LOG_INFO, "follow-revoked", "tenant", t->name, NULL);
            s_emit(f, KB_EVENT_REVOKED, t, gone_arn, NULL, NULL);
        }
        free(gone_arn);
        return;
    }
    et->status.state = KB_TENANT_READY;
    if (ft->pass_arn != NULL)
        kb_engine__set_arn(et, ft->pass_arn);
    snprintf(et->status.version_id, sizeof(et->status.version_id), "%s", ft->known.current);
    snprintf(et->status.probe, sizeof(et->status.probe), "not-probed");
    /* The rotator records when it superseded AWSPREVIOUS: that is when AWSCURRENT took over. */
    et->status.last_rotation = ft->pass_rotated;
    snprintf(msg, sizeof(msg), "followed: version %s is AWSCURRENT", ft->known.current);
    kb_engine__set_message(et, msg);
    switch (change) {
    case KB_FOLLOW_PROVISIONED:
        kb_log(KB_LOG_INFO, "follow-provisioned", "tenant", t->name, "version_id",
               ft->known.current, NULL);
        s_emit(f, KB_EVENT_PROVISIONED, t, et->status.secret_arn, ft->known.current, NULL);
        break;
    case KB_FOLLOW_ROTATED:
    case KB_FOLLOW_ROLLED_BACK:
        kb_log(KB_LOG_INFO, change == KB_FOLLOW_ROTATED ? "follow-rotated" : "follow-rolled-back",
               "tenant", t->name, "version_id", ft->known.current, "previous_version_id",
               old.current, NULL);
        s_emit(f, change == KB_FOLLOW_ROTATED ? KB_EVENT_ROTATED : KB_EVENT_ROLLED_BACK, t,
               et->status.secret_arn, ft->known.current, old.current);
        break;
    default:
        break;
    }
}

/* -- the schedule ------------------------------------------------------------------------------ */

static void on_timer(uv_timer_t *timer);

static void s_arm(struct kb_follow *f, bool failed)
{
    const struct kb_config_broker *b = &f->e->cfg->broker;
    uint64_t delay = kb_rc_reconcile_delay_ms(b->follow.interval, randombytes_random()), retry;

    if (failed) {
        retry = kb_rc_retry_delay_ms(f->failures, b->reconcile.retry_initial,
                                     b->reconcile.retry_max, randombytes_random());
        delay = retry < delay ? retry : delay;
    }
    if (!f->stopped)
        uv_timer_start(&f->timer, on_timer, delay, 0);
}

static void s_pass_done(struct kb_follow *f)
{
    struct kb_engine *e = f->e;
    uint64_t ms = uv_now(e->loop) - f->pass_start;
    char calls[16], listed[32], elapsed[32];

    for (size_t i = 0; i < e->cfg->ntenants; i++) {
        if (!e->cfg->tenants[i].rotate)
            s_apply(f, i);
    }
    s_free_pass_arns(f, e->cfg->ntenants);
    f->failures = 0;
    f->stats.polls_ok++;
    f->stats.last_poll_ms = ms;
    f->stats.last_poll_calls = f->pass_calls;
    snprintf(calls, sizeof(calls), "%u", f->pass_calls);
    snprintf(listed, sizeof(listed), "%zu", f->pass_listed);
    snprintf(elapsed, sizeof(elapsed), "%" PRIu64, ms);
    kb_log(KB_LOG_DEBUG, "follow-poll", "result", "ok", "calls", calls, "listed", listed, "ms",
           elapsed, NULL);
    s_arm(f, false);
}

static void s_pass_failed(struct kb_follow *f, const struct kb_aws_error *err, int rc)
{
    char calls[16], attempt[16];

    s_free_pass_arns(f, f->e->cfg->ntenants);
    if (f->failures < UINT_MAX)
        f->failures++;
    f->stats.polls_error++;
    snprintf(calls, sizeof(calls), "%u", f->pass_calls);
    snprintf(attempt, sizeof(attempt), "%u", f->failures);
    kb_log(KB_LOG_WARN, "follow-poll", "result", "error", "operation", "ListSecrets", "code",
           err != NULL && err->code[0] != '\0' ? err->code
                                               : kb_err_name(err != NULL ? err->err : rc),
           "message", err != NULL ? err->message : kb_strerror(rc), "request_id",
           err != NULL && err->request_id[0] != '\0' ? err->request_id : NULL, "calls", calls,
           "failures", attempt, "note", "nothing known changed; retried at the next pass", NULL);
    s_arm(f, true);
}

/* -- one pass ---------------------------------------------------------------------------------- */

static int s_send_page(struct kb_follow *f, const char *next_token);

/* What one page shows: the entries that are followed tenants' secrets. */
static void s_take_page(struct kb_follow *f, const struct kb_sm_secret_list *list)
{
    struct kb_engine *e = f->e;

    for (size_t k = 0; k < list->count; k++) {
        const struct kb_sm_list_entry *en = &list->secrets[k];
        const struct kb_tenant *t = kb_follow_entry_tenant(e->cfg, en);
        struct s_tenant *ft;
        size_t i;

        if (t == NULL)
            continue;
        i = (size_t)(t - e->cfg->tenants);
        ft = &f->tenants[i];
        ft->pass.listed = true;
        kb_follow_labels(en->versions, en->version_count, ft->pass.current, ft->pass.previous);
        ft->pass_rotated = 0;
        if (ft->pass.previous[0] != '\0')
            kb_rc_superseded_at(en->tags, en->tag_count, ft->pass.previous, &ft->pass_rotated);
        free(ft->pass_arn);
        ft->pass_arn = NULL;
        if (strcmp(en->arn, e->tenants[i].status.secret_arn) != 0)
            ft->pass_arn = strdup(en->arn); /* NULL (no memory): served ARN kept this pass */
        f->pass_listed++;
    }
}

static void on_page(void *ctx, const struct kb_aws_error *err, const struct kb_sm_secret_list *list)
{
    struct kb_follow *f = ctx;
    int rc = 0;

    f->in_flight = false;
    if (f->e == NULL || f->stopped) {
        if (f->e != NULL)
            s_free_pass_arns(f, f->e->cfg->ntenants);
        s_unref(f);
        return;
    }
    if (err != NULL) {
        s_pass_failed(f, err, err->err);
    } else {
        s_take_page(f, list);
        if (list->next_token != NULL)
            rc = s_send_page(f, list->next_token);
        else
            s_pass_done(f);
        if (rc != 0)
            s_pass_failed(f, NULL, rc);
    }
    s_unref(f);
}

static int s_send_page(struct kb_follow *f, const char *next_token)
{
    static const char *const tag_key[] = {KB_RC_TAG_TENANT};
    const char *prefix = f->e->cfg->aws.secret_prefix;
    const char *const name[] = {prefix};
    const struct kb_sm_filter filters[] = {{"tag-key", tag_key, 1}, {"name", name, 1}};
    struct kb_sm_list_secrets_input in = {
        .filters = filters,
        .filter_count = prefix != NULL && prefix[0] != '\0' ? 2 : 1,
        .max_results = S_PAGE,
        .next_token = next_token,
    };
    int rc = kb_sm_list_secrets(f->e->client, &in, on_page, f);

    if (rc == 0) {
        f->refs++;
        f->in_flight = true;
        f->pass_calls++;
        f->stats.calls++;
    }
    return rc;
}

static void on_timer(uv_timer_t *timer)
{
    struct kb_follow *f = timer->data;
    int rc;

    if (f->e == NULL || f->stopped || f->in_flight)
        return;
    for (size_t i = 0; i < f->e->cfg->ntenants; i++) {
        f->tenants[i].pass.listed = false;
        f->tenants[i].pass.current[0] = '\0';
        f->tenants[i].pass.previous[0] = '\0';
    }
    f->pass_start = uv_now(f->e->loop);
    f->pass_calls = 0;
    f->pass_listed = 0;
    rc = s_send_page(f, NULL);
    if (rc != 0)
        s_pass_failed(f, NULL, rc);
}

/* -- life -------------------------------------------------------------------------------------- */

int kb_follow__start(struct kb_engine *e)
{
    struct kb_follow *f;
    size_t followed = 0;
    char n[32], interval[32];

    if (e->follow != NULL)
        return 0;
    for (size_t i = 0; i < e->cfg->ntenants; i++)
        followed += !e->cfg->tenants[i].rotate;
    if (followed == 0)
        return 0;
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return KB_ENOMEM;
    f->tenants = calloc(e->cfg->ntenants, sizeof(*f->tenants));
    if (f->tenants == NULL) {
        free(f);
        return KB_ENOMEM;
    }
    f->e = e;
    f->followed = followed;
    f->stats.followed = followed;
    f->refs = 1; /* the timer */
    uv_timer_init(e->loop, &f->timer);
    f->timer.data = f;
    e->follow = f;
    snprintf(n, sizeof(n), "%zu", followed);
    snprintf(interval, sizeof(interval), "%" PRIu64, e->cfg->broker.follow.interval);
    kb_log(KB_LOG_INFO, "follow-start", "tenants", n, "interval_s", interval, NULL);
    uv_timer_start(&f->timer, on_timer, 0, 0); /* the first pass, later on the loop */
    return 0;
}

void kb_follow__stop(struct kb_follow *f)
{
    if (f == NULL)
        return;
    f->stopped = true;
    uv_timer_stop(&f->timer);
}

static void on_timer_closed(uv_handle_t *h)
{
    s_unref(h->data);
}

void kb_follow__destroy(struct kb_follow *f)
{
    if (f == NULL)
        return;
    kb_follow__stop(f);
    if (f->e != NULL)
        s_free_pass_arns(f, f->e->cfg->ntenants);
    f->e = NULL;
    uv_close((uv_handle_t *)&f->timer, on_timer_closed);
}

void kb_engine_follow_stats(const struct kb_engine *e, struct kb_engine_follow_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (e == NULL)
        return;
    if (e->follow != NULL) {
        *out = e->follow->stats;
        out->on = true;
        return;
    }
    for (size_t i = 0; i < e->cfg->ntenants; i++)
        out->followed += !e->cfg->tenants[i].rotate;
}
