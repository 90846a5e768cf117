/*
 * fuzz_config.c - libFuzzer target for the config loader (untrusted: an operator's file) and the
 * policy builder behind it. A config that loads must produce a policy for every tenant that
 * compares equal to itself; a refused one must carry printable error lines.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "common/err.h"
#include "config/policy.h"

/* Name resolution without /etc: only "root" exists. */
static int s_resolve(void *ctx, const char *name, uint32_t *id)
{
    (void)ctx;
    if (strcmp(name, "root") == 0) {
        *id = 0;
        return 0;
    }
    return KB_ENOTFOUND;
}

static const struct kb_config_resolver s_resolver = {s_resolve, s_resolve, NULL};

static void s_check_policies(const struct kb_config *cfg)
{
    for (size_t i = 0; i < cfg->ntenants; i++) {
        char *policy = NULL;
        bool equal = false;

        if (kb_policy_tenant(&cfg->tenants[i], kb_policy_partition(cfg->aws.region), &policy, NULL,
                             0) != 0)
            abort();
        if (kb_policy_equal(policy, policy, &equal) != 0 || !equal)
            abort();
        free(policy);
    }
}

static void s_check_errors(const struct kb_config_errors *errors)
{
    for (size_t i = 0; i < errors->count; i++)
        for (const unsigned char *c = (const unsigned char *)errors->lines[i]; *c; c++)
            if (*c < 0x20 || *c >= 0x7f)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kb_config *cfg = NULL;
    struct kb_config_errors *errors = NULL;
    int rc = kb_config_load_string((const char *)data, size, &s_resolver, &cfg, &errors);

    if (rc == 0) {
        if (cfg == NULL || errors != NULL)
            abort();
        s_check_policies(cfg);
    } else if (rc == KB_ECONFIG) {
        if (cfg != NULL || errors == NULL || errors->count == 0)
            abort();
        s_check_errors(errors);
    } else if (rc != KB_ENOMEM) {
        abort();
    }
    kb_config_destroy(cfg);
    kb_config_errors_destroy(errors);
    return 0;
}
