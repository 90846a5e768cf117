/*
 * wire.c - the hook names of wire.h: the config's table (config/config.h), which is the lowest
 * layer that needs them, in the order of keybroker/plugin.h's enum kb_plugin_hook.
 */
#include "config/config.h"
#include "plugin/wire.h"

_Static_assert(KB_PLUGIN_HOOKS == KB_CONFIG_PLUGIN_HOOKS, "one list of hooks");
_Static_assert(KB_PLUGIN_WIRE_AUDIT == KB_CONFIG_PLUGIN_AUDIT, "one audit hook");

const char *kb_plugin_hook_name(unsigned hook)
{
    return kb_config_plugin_hook_name(hook);
}

int kb_plugin_hook_parse(const char *name)
{
    return kb_config_plugin_hook_parse(name);
}
