/*
 * follow_plan.c - the pure decisions of a follower broker (follow_plan.h): entry matching, the
 * labels of a listed secret, and the known state's step after a pass. No I/O, no clock.
 */
#include "engine/follow_plan.h"

#include <stdio.h>
#include <string.h>

#include "engine/reconcile.h"

const struct kb_tenant *kb_follow_entry_tenant(const struct kb_config *cfg,
                                               const struct kb_sm_list_entry *e)
{
    const char *prefix = cfg->aws.secret_prefix != NULL ? cfg->aws.secret_prefix : "";
    size_t plen = strlen(prefix);
    const struct kb_tenant *t;

    if (e->name == NULL || e->arn == NULL || e->arn[0] == '\0' || e->deleted_date != 0 ||
        strncmp(e->name, prefix, plen) != 0 || e->name[plen] == '\0')
        return NULL;
    t = kb_config_tenant(cfg, e->name + plen); /* exact, O(log n) */
    if (t == NULL || t->rotate)
        return NULL;
    return kb_rc_tags_ours(e->tags, e->tag_count, t->name) ? t : NULL;
}

static void s_keep(char out[KB_FOLLOW_VERSION_SIZE], const char *id)
{
    if (strlen(id) < KB_FOLLOW_VERSION_SIZE)
        snprintf(out, KB_FOLLOW_VERSION_SIZE, "%s", id);
}

void kb_follow_labels(const struct kb_sm_version *versions, size_t count,
                      char current[KB_FOLLOW_VERSION_SIZE], char previous[KB_FOLLOW_VERSION_SIZE])
{
    current[0] = '\0';
    previous[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        for (size_t j = 0; j < versions[i].stage_count; j++) {
            if (strcmp(versions[i].stages[j], "AWSCURRENT") == 0)
                s_keep(current, versions[i].version_id);
            else if (strcmp(versions[i].stages[j], "AWSPREVIOUS") == 0)
                s_keep(previous, versions[i].version_id);
        }
    }
}

enum kb_follow_change kb_follow_step(const struct kb_follow_known *old,
                                     const struct kb_follow_listed *listed,
                                     struct kb_follow_known *out)
{
    struct kb_follow_known next = *old;
    enum kb_follow_change change = KB_FOLLOW_NONE;

    if (listed->listed && listed->current[0] != '\0') {
        if (old->seen != KB_FOLLOW_READY || listed->arn_changed)
            change = KB_FOLLOW_PROVISIONED;
        else if (strcmp(listed->current, old->current) == 0)
            change = KB_FOLLOW_NONE;
        else if (old->previous[0] != '\0' && strcmp(listed->current, old->previous) == 0)
            change = KB_FOLLOW_ROLLED_BACK;
        else
            change = KB_FOLLOW_ROTATED;
        next.seen = KB_FOLLOW_READY;
        memcpy(next.current, listed->current, sizeof(next.current));
        memcpy(next.previous, listed->previous, sizeof(next.previous));
    } else if (!listed->listed && old->seen == KB_FOLLOW_READY) {
        change = KB_FOLLOW_REVOKED;
        next.seen = KB_FOLLOW_GONE;
        next.current[0] = '\0';
        next.previous[0] = '\0';
    }
    *out = next;
    return change;
}
