/*
 * writer.c - the audit writer's loop side: the bus subscriber that turns events into records, the
 * queue, the one threadpool work that writes it (writer_work.c), the epoch and fsync timers, the
 * retry after a failure, admission (fail_closed, anchor.required) and the orderly close.
 *
 * The loop never touches the file or the chain while a work runs; it hands the work a batch (the
 * whole queue, up to a reopen) and learns the outcome in after_work. A failed batch goes back to
 * the head of the queue, so records are written in the order they were made or not at all.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit_internal.h"
#include "common/container.h"
#include "common/err.h"
#include "common/log.h"
#include "common/secret.h"
#include "config/config.h"
#include "events/events.h"

#define S_RETRY_MS      1000
#define S_CLOSE_RETRIES 5
#define S_MEMBERS_MAX   (16 * 1024)
/* Records made within this many ms go to the file in one work: a threadpool round trip per
 * record would cost the loop more (wake-ups, context switches) than the record itself ... */
#define S_FLUSH_MS 5
/* ... unless this many wait already. */
#define S_FLUSH_NOW 4096

static int64_t s_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_kick(struct kb_audit *a);
static void s_schedule(struct kb_audit *a);

/* -- the queue --------------------------------------------------------------------------------- */

static struct kb_audit__entry *s_entry(enum kb_audit__entry_kind kind, size_t len)
{
    struct kb_audit__entry *e = malloc(sizeof(*e) + len);

    if (e != NULL) {
        memset(e, 0, sizeof(*e));
        e->kind = kind;
        e->ts_ms = s_now_ms();
    }
    return e;
}

static void s_push(struct kb_audit *a, struct kb_audit__entry *e)
{
    *a->tail = e;
    a->tail = &e->next;
    if (e->kind == KB_AUDIT__RECORD)
        a->queued++;
    if (e->kind == KB_AUDIT__STOP)
        s_kick(a);
    else
        s_schedule(a);
}

/* A control entry (seal, sync, reopen, lost, stop): never refused for the backlog. */
static void s_control(struct kb_audit *a, enum kb_audit__entry_kind kind, uint64_t n)
{
    struct kb_audit__entry *e = s_entry(kind, 0);

    if (e == NULL) {
        kb_log(KB_LOG_ERROR, "audit: out of memory queueing a control record", NULL);
        return;
    }
    e->n = n;
    s_push(a, e);
}

void kb_audit__queue(struct kb_audit *a, const struct kb_audit_record *r)
{
    char members[S_MEMBERS_MAX];
    struct kb_audit_record shorter;
    struct kb_audit__entry *e;
    int64_t now;
    size_t len = 0;
    int rc;

    if (a->closing)
        return; /* after the stop record: nothing more is written */
    if (a->queued >= a->cfg->max_backlog) {
        /* Writing has been failing for a while: count what is dropped, say so when it works. */
        a->lost_pending++;
        a->lost++;
        return;
    }
    now = s_now_ms();
    rc = kb_audit_record_members(r, now, members, sizeof(members), &len);
    if (rc == KB_ETOOBIG) {
        shorter = *r;
        shorter.error = "(message longer than an audit record holds)";
        rc = kb_audit_record_members(&shorter, now, members, sizeof(members), &len);
    }
    e = rc == 0 ? s_entry(KB_AUDIT__RECORD, len) : NULL;
    if (e == NULL) {
        a->lost_pending++;
        a->lost++;
        return;
    }
    memcpy(e->members, members, len);
    e->len = len;
    e->ts_ms = now;
    s_push(a, e);
}

void kb_audit_record(struct kb_audit *a, const struct kb_audit_record *r)
{
    if (a != NULL)
        kb_audit__queue(a, r);
}

bool kb_audit__sync(struct kb_audit *a)
{
    if (a->closing || (!a->dirty && !a->working && a->head == NULL))
        return false; /* everything written is on disk */
    if (!a->sync_queued) {
        a->sync_queued = true;
        s_control(a, KB_AUDIT__SYNC, 0);
    }
    return true;
}

void kb_audit_reopen(struct kb_audit *a)
{
    if (a != NULL && !a->closing)
        s_control(a, KB_AUDIT__REOPEN, 0);
}

/* -- the bus ----------------------------------------------------------------------------------- */

static void on_event(void *ctx, const struct kb_event *ev)
{
    struct kb_audit *a = ctx;
    struct kb_audit_peer peer;
    struct kb_audit_field f[3];
    const char *msg = ev->message != NULL && ev->message[0] != '\0' ? ev->message : NULL;
    struct kb_audit_record r = {
        .event = kb_event_kind_name(ev->kind),
        .tenant = ev->tenant,
        .op = ev->op,
        .step = ev->step,
        .result = ev->result,
        .arn = ev->arn,
        .version_id = ev->version_id,
    };

    if (ev->peer != NULL) {
        peer = (struct kb_audit_peer){ev->peer->uid, ev->peer->gid, ev->peer->pid};
        r.peer = &peer;
    }
    switch (ev->kind) {
    case KB_EVENT_AWS_CALL:
        r.aws = (struct kb_audit_aws){ev->service, ev->operation, ev->request_id, ev->code};
        r.error = msg != NULL && ev->code != NULL && ev->code[0] != '\0' ? msg : NULL;
        break;
    case KB_EVENT_STEP:
        /* The step's deciding call is its own "aws_call" record; keep its id here too. */
        if (ev->request_id != NULL && ev->request_id[0] != '\0')
            r.aws = (struct kb_audit_aws){.service = "", .request_id = ev->request_id};
        r.error = msg;
        break;
    case KB_EVENT_ADOPTED:
        if (ev->request_id != NULL && ev->request_id[0] != '\0')
            r.aws = (struct kb_audit_aws){.service = "", .request_id = ev->request_id};
        f[r.nfields++] = (struct kb_audit_field){"reason", msg != NULL ? msg : "", 0};
        break;
    case KB_EVENT_ROTATED:
        if (msg != NULL)
            f[r.nfields++] = (struct kb_audit_field){"superseded_version_id", msg, 0};
        break;
    case KB_EVENT_PLUGIN:
        f[r.nfields++] = (struct kb_audit_field){"plugin", ev->plugin != NULL ? ev->plugin : "", 0};
        r.error = msg;
        break;
    default:
        r.error = msg;
        break;
    }
    /* One id for every record of one rotation pass. */
    if (ev->rotation_id != NULL && ev->kind != KB_EVENT_STEP && ev->kind != KB_EVENT_AWS_CALL)
        f[r.nfields++] = (struct kb_audit_field){"rotation_id", ev->rotation_id, 0};
    r.fields = r.nfields > 0 ? f : NULL;
    kb_audit__queue(a, &r);
}

/* -- the work ---------------------------------------------------------------------------------- */

static void on_work(uv_work_t *req)
{
    kb_audit__work_run(container_of(req, struct kb_audit, work));
}

static void s_finish_close(struct kb_audit *a);
static void on_retry(uv_timer_t *t);

/* Puts list (a batch's unwritten part) back at the head of the queue. */
static void s_requeue(struct kb_audit *a, struct kb_audit__entry *list)
{
    struct kb_audit__entry *last = list;
    uint64_t n = 0;

    if (list == NULL)
        return;
    for (struct kb_audit__entry *e = list; e != NULL; e = e->next) {
        n += e->kind == KB_AUDIT__RECORD;
        last = e;
    }
    last->next = a->head;
    if (a->head == NULL)
        a->tail = &last->next;
    a->head = list;
    a->queued += n;
}

static bool s_has_stop(const struct kb_audit__entry *e, const struct kb_audit__entry *until)
{
    for (; e != NULL; e = e->next) {
        if (e->kind == KB_AUDIT__STOP)
            return true;
        if (e == until)
            break;
    }
    return false;
}

static void s_failed(struct kb_audit *a)
{
    char err[160];

    a->write_errors++;
    a->last_error = a->res.err;
    a->last_what = a->res.what;
    snprintf(err, sizeof(err), "%s", kb_strerror(a->res.err));
    if (!a->failing)
        kb_log(KB_LOG_ERROR, "audit: cannot write the audit log; retrying every second", "path",
               a->cfg->path, "step", a->res.what, "error", err,
               a->cfg->fail_closed ? "fail_closed" : NULL, "requests are refused meanwhile", NULL);
    a->failing = true;
    s_requeue(a, a->batch);
    a->batch = NULL;
    if (a->closing && ++a->close_retries > S_CLOSE_RETRIES) {
        char n[32];

        snprintf(n, sizeof(n), "%" PRIu64, a->queued);
        kb_log(KB_LOG_ERROR, "audit: giving up at stop; these records were not written", "records",
               n, "path", a->cfg->path, NULL);
        s_finish_close(a);
        return;
    }
    a->retry_armed = true;
    uv_timer_start(&a->retry_timer, on_retry, S_RETRY_MS, 0);
}

static void s_succeeded(struct kb_audit *a)
{
    /* A copy: a work this function starts (s_control may) writes a->res from its thread. */
    const struct kb_audit__result res = a->res;
    struct kb_audit__entry *rest = NULL;
    bool stopped;

    if (a->failing)
        kb_log(KB_LOG_INFO, "audit: writing the audit log again", "path", a->cfg->path, NULL);
    a->failing = false;
    a->last_error = 0;
    a->written += res.lines;
    a->pos = (struct kb_audit__pos){.seq = a->chain.seq, .epoch = a->chain.epoch};
    memcpy(a->pos.h, a->chain.h, sizeof(a->pos.h));
    memcpy(a->pos.tag, a->chain.tag, sizeof(a->pos.tag));
    if (res.synced) {
        a->sync_queued = false;
        a->synced_pos = a->pos;
        a->dirty = false;
    } else if (res.lines > 0) {
        a->dirty = true;
    }
    if (res.state_err != 0 && !a->state_failing) {
        char err[160];

        /* Once per episode: the next batches that fsync try again. */
        snprintf(err, sizeof(err), "%s", kb_strerror(res.state_err));
        kb_log(KB_LOG_ERROR, "audit: cannot rewrite the state file (the log is written)", "path",
               a->cfg->state, "error", err, NULL);
    }
    if (res.synced)
        a->state_failing = res.state_err != 0;
    if (res.partial != NULL) {
        rest = res.partial->next;
        res.partial->next = NULL;
    }
    stopped = s_has_stop(a->batch, NULL);
    kb_audit__free_entries(a->batch);
    a->batch = NULL;
    s_requeue(a, rest);
    if (a->lost_pending > 0 && !stopped) {
        uint64_t n = a->lost_pending;

        a->lost_pending = 0;
        s_control(a, KB_AUDIT__LOST, n);
    }
    if (stopped) {
        s_finish_close(a);
        return;
    }
    if (a->anchor != NULL && res.synced)
        kb_audit__anchor_poke(a); /* an anchor due waits for the fsync of what is written */
}

static void on_after_work(uv_work_t *req, int status)
{
    struct kb_audit *a = container_of(req, struct kb_audit, work);

    (void)status;
    a->working = false;
    if (a->res.err != 0)
        s_failed(a);
    else
        s_succeeded(a);
    s_schedule(a);
}

static void on_flush(uv_timer_t *t)
{
    struct kb_audit *a = container_of(t, struct kb_audit, flush_timer);

    a->flush_armed = false;
    s_kick(a);
}

/* Starts a work soon: at once when the queue is long or the writer closing, else after
 * S_FLUSH_MS, so that the records of those ms share one work. */
static void s_schedule(struct kb_audit *a)
{
    if (a->finished || a->working || a->retry_armed || a->head == NULL || a->flush_armed)
        return;
    if (a->queued >= S_FLUSH_NOW || a->closing) {
        s_kick(a);
        return;
    }
    a->flush_armed = true;
    uv_timer_start(&a->flush_timer, on_flush, S_FLUSH_MS, 0);
}

/* Starts a work over the queue: a reopen first if one heads it, then everything up to the next
 * reopen (one file per work). */
static void s_kick(struct kb_audit *a)
{
    struct kb_audit__entry **cut;

    if (a->finished || a->working || a->retry_armed || a->head == NULL)
        return;
    cut = &a->head->next;
    while (*cut != NULL && (*cut)->kind != KB_AUDIT__REOPEN)
        cut = &(*cut)->next;
    a->batch = a->head;
    a->head = *cut;
    *cut = NULL;
    if (a->head == NULL)
        a->tail = &a->head;
    for (struct kb_audit__entry *e = a->batch; e != NULL; e = e->next)
        a->queued -= e->kind == KB_AUDIT__RECORD;
    a->working = true;
    if (uv_queue_work(a->loop, &a->work, on_work, on_after_work) != 0) {
        a->working = false;
        a->res = (struct kb_audit__result){.err = KB_ENOMEM, .what = "queue"};
        s_failed(a);
    }
}

/* -- timers ------------------------------------------------------------------------------------ */

static void on_seal(uv_timer_t *t)
{
    struct kb_audit *a = container_of(t, struct kb_audit, seal_timer);

    s_control(a, KB_AUDIT__SEAL, 0);
}

static void on_sync(uv_timer_t *t)
{
    struct kb_audit *a = container_of(t, struct kb_audit, sync_timer);

    (void)kb_audit__sync(a);
}

static void on_retry(uv_timer_t *t)
{
    struct kb_audit *a = container_of(t, struct kb_audit, retry_timer);

    a->retry_armed = false;
    s_schedule(a);
}

/* -- open, admit, stats, close ----------------------------------------------------------------- */

int kb_audit_open(uv_loop_t *loop, const struct kb_config_audit *cfg, struct kb_events *bus,
                  struct kb_aws_client *aws, struct kb_audit **out, char *why, size_t why_len)
{
    struct kb_audit *a = calloc(1, sizeof(*a));
    uint64_t epoch_ms = cfg->epoch * 1000, first;
    int64_t left;
    int rc;

    *out = NULL;
    if (a == NULL)
        return KB_ENOMEM;
    a->loop = loop;
    a->cfg = cfg;
    a->bus = bus;
    a->aws = aws;
    a->tail = &a->head;
    a->file.fd = -1;
    rc = kb_audit__recover(a, why, why_len);
    if (rc != 0) {
        kb_secret_destroy(a->chain.key);
        free(a);
        return rc;
    }
    a->pos = (struct kb_audit__pos){.seq = a->chain.seq, .epoch = a->chain.epoch};
    memcpy(a->pos.h, a->chain.h, sizeof(a->pos.h));
    memcpy(a->pos.tag, a->chain.tag, sizeof(a->pos.tag));
    a->synced_pos = a->pos;
    uv_timer_init(loop, &a->seal_timer);
    uv_timer_init(loop, &a->sync_timer);
    uv_timer_init(loop, &a->retry_timer);
    uv_timer_init(loop, &a->flush_timer);
    a->handles_open = 4;
    /* The epoch in progress ends epoch seconds after it began, then every epoch seconds. */
    left = a->chain.epoch_started_ms + (int64_t)epoch_ms - s_now_ms();
    first = left <= 0 ? 0 : (uint64_t)left;
    uv_timer_start(&a->seal_timer, on_seal, first > epoch_ms ? epoch_ms : first, epoch_ms);
    if (cfg->fsync == KB_CONFIG_FSYNC_INTERVAL)
        uv_timer_start(&a->sync_timer, on_sync, cfg->fsync_interval * 1000,
                       cfg->fsync_interval * 1000);
    rc = kb_events_subscribe(bus, KB_EVENT_MASK_ALL, on_event, a, &a->sub);
    if (rc == 0 && cfg->anchor.bucket != NULL)
        rc = kb_audit__anchor_start(a);
    if (rc != 0) {
        snprintf(why, why_len, "broker.audit: %s", kb_strerror(rc));
        kb_events_unsubscribe(bus, a->sub);
        a->sub = NULL;
        kb_audit_close(a, NULL, NULL);
        return rc;
    }
    *out = a;
    return 0;
}

int kb_audit_admit(const struct kb_audit *a, enum kb_audit_gate gate, char *why, size_t why_len)
{
    bool anchoring = false;
    uint64_t anchored;

    if (a == NULL)
        return 0;
    if (a->cfg->fail_closed && (a->failing || a->queued >= a->cfg->max_backlog)) {
        snprintf(why, why_len,
                 "the audit log cannot be written (%s %s: %s) and broker.audit.fail_closed is "
                 "set, so nothing that must be recorded is done; the broker retries every second",
                 a->last_what != NULL ? a->last_what : "write", a->cfg->path,
                 a->failing ? kb_strerror(a->last_error) : "backlog full");
        return KB_EDENIED;
    }
    anchored = kb_audit__anchored(a, &anchoring);
    if (gate == KB_AUDIT_GATE_CHANGE && anchoring && a->cfg->anchor.required &&
        a->pos.seq - anchored > a->cfg->anchor.max_unanchored) {
        snprintf(why, why_len,
                 "%" PRIu64 " audit records wait to be anchored in s3://%s/%s "
                 "(broker.audit.anchor.required, max_unanchored %u): provisioning, rotation and "
                 "revocation resume once an anchor is written",
                 a->pos.seq - anchored, a->cfg->anchor.bucket, a->cfg->anchor.prefix,
                 a->cfg->anchor.max_unanchored);
        return KB_EDENIED;
    }
    return 0;
}

void kb_audit_stats(const struct kb_audit *a, struct kb_audit_stats *out)
{
    bool anchoring = false;

    memset(out, 0, sizeof(*out));
    if (a == NULL)
        return;
    out->queued = a->queued;
    out->written = a->written;
    out->lost = a->lost;
    out->last_seq = a->pos.seq;
    out->epoch = a->pos.epoch;
    out->anchored = kb_audit__anchored(a, &anchoring);
    out->unanchored = anchoring ? a->pos.seq - out->anchored : 0;
    out->write_errors = a->write_errors;
    out->failing = a->failing;
    out->last_error = a->last_error;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct kb_audit *a = h->data;

    kb_audit__handle_closed(a);
}

void kb_audit__handle_closed(struct kb_audit *a)
{
    if (--a->handles_open > 0)
        return;
    kb_audit__free_entries(a->head);
    kb_audit__free_entries(a->batch);
    kb_secret_destroy(a->chain.key);
    if (a->file.fd >= 0)
        close(a->file.fd);
    free(a->out);
    kb_audit_maker_free(a->maker); /* wipes OpenSSL's copy of the epoch key */
    if (a->close_done != NULL)
        a->close_done(a->close_ctx);
    free(a);
}

static void s_finish_close(struct kb_audit *a)
{
    uv_timer_t *timers[] = {&a->seal_timer, &a->sync_timer, &a->retry_timer, &a->flush_timer};

    if (a->finished)
        return;
    a->finished = true;
    if (a->anchor != NULL)
        kb_audit__anchor_stop(a);
    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
        timers[i]->data = a;
        uv_close((uv_handle_t *)timers[i], on_handle_closed);
    }
}

void kb_audit_close(struct kb_audit *a, void (*done)(void *ctx), void *ctx)
{
    if (a == NULL) {
        if (done != NULL)
            done(ctx);
        return;
    }
    a->close_done = done;
    a->close_ctx = ctx;
    kb_events_unsubscribe(a->bus, a->sub);
    a->sub = NULL;
    uv_timer_stop(&a->seal_timer);
    uv_timer_stop(&a->sync_timer);
    a->closing = true;
    s_control(a, KB_AUDIT__STOP, 0);
}
