/*
 * test_loader.c - the plugin loader (broker/plugin/loader.c): the ownership and permission rules
 * on a plugin file and its directories (real files in a temporary directory under /tmp, whose
 * sticky bit is the allowed exception), and loading the test plugins of tests/plugins: ABI
 * minors older and newer than ours load, another major and a file without the entry symbol are
 * refused, config values reach the plugin as strings.
 */
#include "kb_test.h"

#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "plugin/loader.h"

struct fx {
    char dir[64];
    char why[512];
};

static int s_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/kbtl.XXXXXX");
    if (mkdtemp(fx->dir) == NULL || chmod(fx->dir, 0755) != 0)
        return -1;
    *state = fx;
    return 0;
}

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int s_teardown(void **state)
{
    struct fx *fx = *state;

    nftw(fx->dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* Writes a file of mode `mode` (exactly: no umask) at dir/name; returns its path in out. */
static void s_file(const char *dir, const char *name, mode_t mode, char *out, size_t len)
{
    int fd;

    snprintf(out, len, "%s/%s", dir, name);
    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
    assert_int_equal(chmod(out, mode), 0);
}

/* Copies a test plugin into dir (its build directory need not pass the checks). */
static void s_plugin(const char *dir, const char *so, char *out, size_t len)
{
    char src[PATH_MAX], buf[65536];
    int in, fd;
    ssize_t n;

    snprintf(src, sizeof(src), "%s/%s", KB_TEST_PLUGIN_DIR, so);
    snprintf(out, len, "%s/%s", dir, so);
    in = open(src, O_RDONLY | O_CLOEXEC);
    assert_true(in >= 0);
    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    while ((n = read(in, buf, sizeof(buf))) > 0)
        assert_int_equal(write(fd, buf, (size_t)n), n);
    close(in);
    close(fd);
    assert_int_equal(chmod(out, 0644), 0);
}

static uid_t s_me(void)
{
    return getuid();
}

static void test_group_writable_file(void **state)
{
    struct fx *fx = *state;
    char path[PATH_MAX], want[PATH_MAX + 64];

    s_file(fx->dir, "p.so", 0664, path, sizeof(path));
    assert_int_equal(kb_plugin_check_path(path, s_me(), fx->why, sizeof(fx->why)), KB_EDENIED);
    snprintf(want, sizeof(want), "%s is group-writable (mode 0664)", path);
    assert_string_equal(fx->why, want);
}

static void test_world_writable_file(void **state)
{
    struct fx *fx = *state;
    char path[PATH_MAX];

    s_file(fx->dir, "p.so", 0646, path, sizeof(path));
    assert_int_equal(kb_plugin_check_path(path, s_me(), fx->why, sizeof(fx->why)), KB_EDENIED);
    assert_non_null(strstr(fx->why, path));
    assert_non_null(strstr(fx->why, "world-writable"));
}

static void test_group_writable_dir(void **state)
{
    struct fx *fx = *state;
    char sub[PATH_MAX], path[PATH_MAX], real[PATH_MAX], want[PATH_MAX + 64];

    snprintf(sub, sizeof(sub), "%s/lib", fx->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(chmod(sub, 0775), 0);
    s_file(sub, "p.so", 0644, path, sizeof(path));
    assert_non_null(realpath(sub, real));
    assert_int_equal(kb_plugin_check_path(path, s_me(), fx->why, sizeof(fx->why)), KB_EDENIED);
    snprintf(want, sizeof(want), "%s is group-writable (mode 0775)", real);
    assert_string_equal(fx->why, want);
}

/* The file's own directory gets no sticky allowance: anyone could put a file there. */
static void test_sticky_own_dir(void **state)
{
    struct fx *fx = *state;
    char path[PATH_MAX];

    s_file(fx->dir, "p.so", 0644, path, sizeof(path));
    assert_int_equal(chmod(fx->dir, 01777), 0);
    assert_int_equal(kb_plugin_check_path(path, s_me(), fx->why, sizeof(fx->why)), KB_EDENIED);
    assert_non_null(strstr(fx->why, "world-writable (mode 1777)"));
}

static void test_wrong_owner(void **state)
{
    struct fx *fx = *state;
    char path[PATH_MAX], want[PATH_MAX + 64];

    if (getuid() != 0) {
        print_message("skipped: chown to another uid needs root\n");
        skip();
    }
    s_file(fx->dir, "p.so", 0644, path, sizeof(path));
    assert_int_equal(chown(path, 12345, (gid_t)-1), 0);
    assert_int_equal(kb_plugin_check_path(path, 0, fx->why, sizeof(fx->why)), KB_EDENIED);
    snprintf(want, sizeof(want), "%s is owned by uid 12345 (allowed: root or uid 0)", path);
    assert_string_equal(fx->why, want);
    /* The configured owner may own it. */
    assert_int_equal(kb_plugin_check_path(path, 12345, fx->why, sizeof(fx->why)), 0);
    /* ... but not a directory above it it does not own. */
    assert_int_equal(chown(fx->dir, 23456, (gid_t)-1), 0);
    assert_int_equal(kb_plugin_check_path(path, 12345, fx->why, sizeof(fx->why)), KB_EDENIED);
    assert_non_null(strstr(fx->why, "is owned by uid 23456"));
}

/* /tmp is world-writable and sticky: allowed above the file's directory. */
static void test_ok_under_tmp(void **state)
{
    struct fx *fx = *state;
    char path[PATH_MAX];

    s_file(fx->dir, "p.so", 0644, path, sizeof(path));
    assert_int_equal(kb_plugin_check_path(path, s_me(), fx->why, sizeof(fx->why)), 0);
    s_file(fx->dir, "q.so", 0755, path, sizeof(path));
    assert_int_equal(kb_plugin_check_path(path, s_me(), fx->why, sizeof(fx->why)), 0);
}

static void test_not_a_file(void **state)
{
    struct fx *fx = *state;
    char path[PATH_MAX], link[PATH_MAX];

    assert_int_equal(kb_plugin_check_path("lib/p.so", 0, fx->why, sizeof(fx->why)), KB_EINVAL);
    assert_string_equal(fx->why, "lib/p.so is not an absolute path");
    s_file(fx->dir, "p.so", 0644, path, sizeof(path));
    snprintf(link, sizeof(link), "%s/l.so", fx->dir);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(kb_plugin_check_path(link, s_me(), fx->why, sizeof(fx->why)), KB_EDENIED);
    assert_non_null(strstr(fx->why, "is a symbolic link"));
    assert_int_equal(kb_plugin_check_path(fx->dir, s_me(), fx->why, sizeof(fx->why)), KB_EDENIED);
    assert_non_null(strstr(fx->why, "is not a regular file"));
    snprintf(path, sizeof(path), "%s/missing.so", fx->dir);
    assert_int_equal(kb_plugin_check_path(path, s_me(), fx->why, sizeof(fx->why)), KB_EDENIED);
    assert_non_null(strstr(fx->why, "No such file"));
}

static char *s_slurp(const char *path)
{
    static char buf[8192];
    FILE *f = fopen(path, "re");
    size_t n;

    if (f == NULL)
        return NULL;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_load_current(void **state)
{
    struct fx *fx = *state;
    const struct kb_plugin_descriptor *d;
    struct kb_plugin_loaded *p;
    struct json_object *config;
    char path[PATH_MAX], out[PATH_MAX], cfg[PATH_MAX + 128], want[2 * PATH_MAX], err[512];
    struct kb_plugin_event ev = {
        .size = sizeof(ev),
        .hook = KB_PLUGIN_HOOK_POST_ROTATE,
        .hook_name = "post_rotate",
        .tenant = "billing",
        .version_id = "v2",
        .rotation_id = "r1",
    };

    s_plugin(fx->dir, "kbtp.so", path, sizeof(path));
    snprintf(out, sizeof(out), "%s/out", fx->dir);
    snprintf(cfg, sizeof(cfg),
             "{\"out\":\"%s\",\"n\":5,\"flag\":true,\"obj\":{\"a\":[1]},\"echo\":\"n\"}", out);
    config = json_tokener_parse(cfg);
    assert_non_null(config);
    assert_int_equal(kb_plugin_load("cfg", path, s_me(), config, &p, fx->why, sizeof(fx->why)), 0);
    json_object_put(config); /* copied */
    d = kb_plugin_loaded_descriptor(p);
    assert_string_equal(d->name, "kbtp");
    assert_string_equal(d->version, "1.0.0");
    assert_string_equal(d->description, "the keybroker test plugin");
    assert_int_equal(d->abi_minor, 1);
    assert_int_equal(d->hooks, 0xff);
    assert_int_equal(kb_plugin_loaded_init(p, fx->why, sizeof(fx->why)), 0);
    assert_int_equal(kb_plugin_loaded_event(p, &ev, err, sizeof(err)), 0);
    kb_plugin_unload(p);
    /* Values as strings (5 as its JSON text), the whole object through lookup("config_json"),
     * then the event. */
    snprintf(want, sizeof(want), "init 1\nconfig n=5\njson %s\npost_rotate billing v2 r1\n", cfg);
    assert_string_equal(s_slurp(out), want);
}

static void test_load_minor0(void **state)
{
    struct fx *fx = *state;
    struct kb_plugin_loaded *p;
    char path[PATH_MAX];

    s_plugin(fx->dir, "kbtp_minor0.so", path, sizeof(path));
    assert_int_equal(kb_plugin_load("old", path, s_me(), NULL, &p, fx->why, sizeof(fx->why)), 0);
    assert_int_equal(kb_plugin_loaded_descriptor(p)->abi_minor, 0);
    assert_int_equal(kb_plugin_loaded_descriptor(p)->size, KB_PLUGIN_DESCRIPTOR_SIZE_1_0);
    /* Set in the plugin's struct, but past the size it declared: never read. */
    assert_null(kb_plugin_loaded_descriptor(p)->description);
    assert_string_equal(kb_plugin_loaded_descriptor(p)->name, "kbtp");
    kb_plugin_unload(p);
}

static void test_load_minor9(void **state)
{
    struct fx *fx = *state;
    struct kb_plugin_loaded *p;
    char path[PATH_MAX];

    s_plugin(fx->dir, "kbtp_minor9.so", path, sizeof(path));
    assert_int_equal(kb_plugin_load("new", path, s_me(), NULL, &p, fx->why, sizeof(fx->why)), 0);
    assert_int_equal(kb_plugin_loaded_descriptor(p)->abi_minor, 9);
    assert_int_equal(kb_plugin_loaded_descriptor(p)->size, sizeof(struct kb_plugin_descriptor));
    assert_string_equal(kb_plugin_loaded_descriptor(p)->description, "the keybroker test plugin");
    assert_int_equal(kb_plugin_loaded_init(p, fx->why, sizeof(fx->why)), 0);
    kb_plugin_unload(p);
}

static void test_load_major2(void **state)
{
    struct fx *fx = *state;
    struct kb_plugin_loaded *p = (void *)1;
    char path[PATH_MAX];

    s_plugin(fx->dir, "kbtp_major2.so", path, sizeof(path));
    assert_int_equal(kb_plugin_load("two", path, s_me(), NULL, &p, fx->why, sizeof(fx->why)),
                     KB_EDENIED);
    assert_null(p);
    assert_string_equal(fx->why, "built for plugin ABI 2.x, this keybroker speaks 1.x");
    assert_non_null(strstr(fx->why, "ABI 2"));
}

static void test_load_no_entry(void **state)
{
    struct fx *fx = *state;
    struct kb_plugin_loaded *p;
    char path[PATH_MAX];

    s_plugin(fx->dir, "kbtp_noentry.so", path, sizeof(path));
    assert_int_equal(kb_plugin_load("none", path, s_me(), NULL, &p, fx->why, sizeof(fx->why)),
                     KB_EDENIED);
    assert_non_null(strstr(fx->why, "does not export keybroker_plugin_entry"));
}

/* What is loaded is what was checked: a plugin file others may write is never mapped. */
static void test_load_checks(void **state)
{
    struct fx *fx = *state;
    struct kb_plugin_loaded *p;
    char path[PATH_MAX], want[PATH_MAX + 64];

    s_plugin(fx->dir, "kbtp.so", path, sizeof(path));
    assert_int_equal(chmod(path, 0666), 0);
    assert_int_equal(kb_plugin_load("w", path, s_me(), NULL, &p, fx->why, sizeof(fx->why)),
                     KB_EDENIED);
    snprintf(want, sizeof(want), "%s is world-writable (mode 0666)", path);
    assert_string_equal(fx->why, want);
    /* Not a shared object at all: dlopen's reason. */
    s_file(fx->dir, "junk.so", 0644, path, sizeof(path));
    assert_int_equal(kb_plugin_load("j", path, s_me(), NULL, &p, fx->why, sizeof(fx->why)),
                     KB_EDENIED);
    assert_non_null(strstr(fx->why, "cannot load"));
}

static void test_init_refuses(void **state)
{
    struct fx *fx = *state;
    struct kb_plugin_loaded *p;
    struct json_object *config = json_tokener_parse("{\"init\":\"fail\"}");
    char path[PATH_MAX];

    s_plugin(fx->dir, "kbtp.so", path, sizeof(path));
    assert_int_equal(kb_plugin_load("i", path, s_me(), config, &p, fx->why, sizeof(fx->why)), 0);
    json_object_put(config);
    assert_int_equal(kb_plugin_loaded_init(p, fx->why, sizeof(fx->why)), KB_EDENIED);
    assert_string_equal(fx->why, "init returned 5");
    kb_plugin_unload(p); /* no fini: init did not succeed */
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_group_writable_file, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_world_writable_file, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_group_writable_dir, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_sticky_own_dir, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_owner, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_ok_under_tmp, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_not_a_file, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_load_current, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_load_minor0, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_load_minor9, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_load_major2, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_load_no_entry, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_load_checks, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_init_refuses, s_setup, s_teardown),
    };

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
