/*
 * kbctl_plugin.h - `kbctl plugin check`, which loads a rotation-hook plugin in a throw-away
 * helper process, as keybrokerd would, and replays sample events through it; and the helper
 * itself, `kbctl --plugin-host`, which that check starts. Nothing here talks to the broker.
 */
#ifndef KB_KBCTL_PLUGIN_H
#define KB_KBCTL_PLUGIN_H

/* Exit codes of `kbctl plugin` (its own: see kbctl_plugin.c's help). */
enum {
    KBCTL_PLUGIN_OK = 0,    /* loaded, and every sample event was handled in both rounds */
    KBCTL_PLUGIN_FAIL = 1,  /* refused, or an event failed, crashed, exited or timed out */
    KBCTL_PLUGIN_USAGE = 2, /* bad command line */
};

/* `kbctl plugin ...`: the whole command line (argv borrowed), whose options are its own.
 * Prints the report on stdout, usage errors on stderr; returns the exit code. */
int kbctl_plugin(int argc, char **argv);

/* `kbctl --plugin-host`: runs the plugin helper on fd 3 until the parent closes it (the same
 * helper as `keybrokerd --plugin-host`). Returns the process's exit code. */
int kbctl_plugin_host(void);

#endif
