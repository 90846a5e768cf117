/*
 * follow.h - what engine.c and follow.c share: the follower of the tenants this broker does not
 * rotate (tenants[].rotate false; DESIGN.md section 12).
 *
 * The follower is the engine's, started by kb_engine_start_background (the daemon's) when the
 * config has at least one followed tenant. It owns one timer and at most one ListSecrets call at
 * a time; it outlives the engine just long enough for that call to end (kb_follow__destroy
 * detaches it), so the engine never waits for it.
 */
#ifndef KB_FOLLOW_H
#define KB_FOLLOW_H

struct kb_engine;
struct kb_follow;

/* The followed tenants' status before any pass: pending, "followed by this broker" (so that a
 * --provision-only run or a daemon before its first pass says why). Called by kb_engine_new. */
void kb_follow__init_status(struct kb_engine *e);

/* Starts following (the first pass runs at once, later on the loop) when e's config has a
 * followed tenant, and sets e->follow; nothing when it has none or e->follow is set. Returns 0
 * or KB_ENOMEM. */
int kb_follow__start(struct kb_engine *e);

/* No further pass starts; a page in flight is dropped when it ends. NULL is allowed. */
void kb_follow__stop(struct kb_follow *f);

/* Detaches f from its engine (it touches the engine no more) and frees it once its timer has
 * closed and its call in flight, if any, has ended. NULL is allowed. */
void kb_follow__destroy(struct kb_follow *f);

#endif
