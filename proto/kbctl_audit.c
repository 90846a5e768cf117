/*
 * kbctl_audit.c - `kbctl audit`: its command line and help, and `audit init`, which makes a new
 * chain's first key K_0 (the key file, for the verifier to keep off the host) and the broker's
 * state file. `audit verify` is kbctl_audit_verify.c's.
 *
 * The audit commands have options of their own, so kbctl.c hands them the whole command line
 * before its own parser sees it. Nothing here talks to the broker.
 *
 * K_0 lives only in guarded memory here (sodium_malloc), and so do the texts that carry it; they
 * go to their files with write(2), never through stdio, and are wiped after.
 */
#include "kbctl.h"
#include "kbctl_audit.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/chain.h"
#include "audit/state.h"
#include "common/err.h"
#include "common/secret.h"

static const char s_usage[] =
    "Usage: kbctl audit init --state PATH --key-out PATH [--chain hmac-sha256|sha256] [--force]\n"
    "       kbctl audit verify FILE... [--key K0FILE] [--anchors s3://BUCKET/PREFIX] [--json]\n";

static const char s_help_init[] =
    "init: starts a new audit chain.\n"
    "  Makes the chain's first key K_0 (32 random bytes), writes it to --key-out as\n"
    "  {\"v\":1,\"chain_id\":..,\"key_id\":..,\"key\":..} and the broker's first state to\n"
    "  --state (the file broker.audit.state names), both 0600. Move the key file off this\n"
    "  host at once and keep it for `audit verify --key`: the broker never needs it, and\n"
    "  whoever holds it can forge the whole chain. The state file holds the current epoch's\n"
    "  key (K_0 itself until the first epoch ends); the broker replaces it at every epoch.\n"
    "  --chain sha256 makes a chain without tags (no key file): anyone who can write the log\n"
    "  can then rewrite it; only anchors bound that.\n"
    "  --force   replace existing files (the old chain then no longer continues: keep its key\n"
    "            file to verify its records)\n";

static const char s_help_verify[] =
    "verify: checks audit files and names the first bad line.\n"
    "  FILE... are one chain's files in any order (a log and its rotated files: audit.log,\n"
    "  audit.log.1, ...; uncompressed); they are read in the order of their first seq.\n"
    "  Prints `FILE:LINE (seq N): REASON: DETAIL` for the first line that breaks the chain, or\n"
    "  that the files are intact, then what was verified and the window in which tampering\n"
    "  would not be seen (who could still rewrite or drop which records). REASON is one of\n"
    "  malformed changed dropped swapped duplicated out_of_order cut bad_tag later_key\n"
    "  epoch_gap no_seal after_seal spliced chain_changed wrong_key truncated_before_anchor\n"
    "  anchor_mismatch anchor_rewritten.\n"
    "  --key K0FILE   the key file of `audit init`: the tags are checked with K_0 and the epoch\n"
    "                 keys derived from it. Without it a hmac-sha256 chain's tags are not\n"
    "                 checked, and the report says so.\n"
    "  --anchors s3://BUCKET/PREFIX\n"
    "                 also reads the anchors the broker wrote (broker.audit.anchor): every\n"
    "                 object version under PREFIX, delete markers included, with YOUR OWN AWS\n"
    "                 credentials, region and endpoint (environment, ~/.aws files, or the\n"
    "                 profile $KEYBROKER_AWS_PROFILE names). A log cut before an anchor, an\n"
    "                 anchor that disagrees with the log and an anchor key with a second\n"
    "                 version or a delete marker are reported.\n"
    "  --json         print one JSON object with every field of the result instead\n"
    "  --timeout SECS each AWS call of --anchors (default 30)\n";

static const char s_help_tail[] =
    "\nExit status:\n"
    "  0  intact (verify), done (init)\n"
    "  1  verify: tampering or an inconsistency was found (the first bad line is named)\n"
    "  2  usage error, a file that cannot be read or written, or an AWS error (--anchors)\n";

static void s_help(FILE *out, const char *sub)
{
    fputs(s_usage, out);
    fputs("\nThe audit log's tools; nothing here talks to the broker.\n\n", out);
    if (sub == NULL || strcmp(sub, "init") == 0)
        fputs(s_help_init, out);
    if (sub == NULL)
        fputc('\n', out);
    if (sub == NULL || strcmp(sub, "verify") == 0)
        fputs(s_help_verify, out);
    fputs(s_help_tail, out);
}

/* -- init ------------------------------------------------------------------------------------ */

static int s_fsync_dir(const char *path)
{
    char *copy = strdup(path);
    int fd, rc = 0;

    if (copy == NULL)
        return -ENOMEM;
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -errno;
    if (fsync(fd) != 0)
        rc = -errno;
    close(fd);
    return rc;
}

static int s_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Writes text to path, 0600, through a temporary file in the same directory, fsync'd and renamed
 * into place (not over an existing file unless replace), the directory fsync'd. */
static int s_write_file(const char *path, const char *text, size_t len, bool replace)
{
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    int fd, rc;

    if (tmp == NULL)
        return -ENOMEM;
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp.XXXXXX", 12);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        free(tmp);
        return rc;
    }
    rc = fchmod(fd, 0600) == 0 ? 0 : -errno;
    if (rc == 0)
        rc = s_write_all(fd, text, len);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && renameat2(AT_FDCWD, tmp, AT_FDCWD, path, replace ? 0 : RENAME_NOREPLACE) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    else
        rc = s_fsync_dir(path);
    free(tmp);
    return rc;
}

/* {"v":1,"chain_id":..,"key_id":..,"key":..}\n in guarded memory (caller sodium_free's it). */
static char *s_key_text(const struct kb_audit_state *st, const uint8_t *k0, size_t *len)
{
    static const char a[] = "{\"v\":1,\"chain_id\":\"", b[] = "\",\"key_id\":\"",
                      c[] = "\",\"key\":\"", d[] = "\"}\n";
    size_t cap = sizeof(a) + sizeof(b) + sizeof(c) + sizeof(d) + KB_AUDIT_CHAIN_ID_LEN +
                 KB_AUDIT_KEY_ID_LEN + KB_AUDIT_HEX_LEN + 1;
    char *t = sodium_malloc(cap);
    size_t n = 0;

    if (t == NULL)
        return NULL;
#define S_PUT(s, l) (memcpy(t + n, (s), (l)), n += (l))
    S_PUT(a, sizeof(a) - 1);
    S_PUT(st->chain_id, KB_AUDIT_CHAIN_ID_LEN);
    S_PUT(b, sizeof(b) - 1);
    S_PUT(st->key_id, KB_AUDIT_KEY_ID_LEN);
    S_PUT(c, sizeof(c) - 1);
    kb_audit_hex(k0, KB_AUDIT_KEY_LEN, t + n);
    n += KB_AUDIT_HEX_LEN;
    S_PUT(d, sizeof(d) - 1);
#undef S_PUT
    *len = n;
    return t;
}

static bool s_exists(const char *path)
{
    struct stat sb;

    return lstat(path, &sb) == 0;
}

static int s_init_usage(const char *why)
{
    fprintf(stderr, "kbctl: audit init: %s (see 'kbctl audit --help')\n", why);
    return KBCTL_AUDIT_ERROR;
}

/* Writes both files; on a failure of the second, removes the first if this call made it. */
static int s_init_write(const struct kbctl_audit_opts *o, const struct kb_audit_state *st,
                        const uint8_t *k0)
{
    struct kb_secret *state = NULL;
    const char *text;
    char *key = NULL;
    size_t klen = 0, slen = 0;
    int rc = kb_audit_state_format(st, &state);

    if (rc == 0 && st->mode == KB_AUDIT_MODE_HMAC)
        rc = (key = s_key_text(st, k0, &klen)) != NULL ? 0 : KB_ENOMEM;
    if (rc != 0) {
        fprintf(stderr, "kbctl: audit init: %s\n", kb_strerror(rc));
        goto done;
    }
    if (key != NULL && (rc = s_write_file(o->key_out, key, klen, o->force)) != 0) {
        fprintf(stderr, "kbctl: audit init: cannot write the key file %s: %s\n", o->key_out,
                rc == -EEXIST ? "it exists (--force replaces it)" : strerror(-rc));
        goto done;
    }
    text = kb_secret_open(state, &slen);
    rc = s_write_file(o->state, text, slen, o->force);
    kb_secret_close(state);
    if (rc != 0) {
        fprintf(stderr, "kbctl: audit init: cannot write the state file %s: %s\n", o->state,
                rc == -EEXIST ? "it exists (--force replaces it)" : strerror(-rc));
        if (key != NULL && !o->force)
            unlink(o->key_out);
    }
done:
    if (key != NULL)
        sodium_free(key); /* wipes */
    kb_secret_destroy(state);
    return rc == 0 ? KBCTL_AUDIT_OK : KBCTL_AUDIT_ERROR;
}

int kbctl_audit_init(const struct kbctl_audit_opts *o)
{
    enum kb_audit_mode mode = KB_AUDIT_MODE_HMAC;
    struct kb_audit_state st;
    struct timespec now;
    uint8_t *k0 = NULL;
    int rc;

    if (o->chain != NULL && kb_audit_mode_from_name(o->chain, strlen(o->chain), &mode) != 0)
        return s_init_usage("--chain is hmac-sha256 or sha256");
    if (o->state == NULL)
        return s_init_usage("--state PATH is required (the broker's broker.audit.state)");
    if (mode == KB_AUDIT_MODE_HMAC && o->key_out == NULL)
        return s_init_usage("--key-out PATH is required for a hmac-sha256 chain");
    if (mode == KB_AUDIT_MODE_SHA256 && o->key_out != NULL)
        return s_init_usage("--key-out is for hmac-sha256 only: a sha256 chain has no key");
    if (o->key_out != NULL && strcmp(o->key_out, o->state) == 0)
        return s_init_usage("--key-out and --state must be two files");
    if (!o->force && (s_exists(o->state) || (o->key_out != NULL && s_exists(o->key_out)))) {
        fprintf(stderr,
                "kbctl: audit init: %s exists; a broker may be writing its chain. --force "
                "starts a new chain there (keep the old key file to verify the old records)\n",
                s_exists(o->state) ? o->state : o->key_out);
        return KBCTL_AUDIT_ERROR;
    }
    if (sodium_init() < 0 ||
        (mode == KB_AUDIT_MODE_HMAC && (k0 = sodium_malloc(KB_AUDIT_KEY_LEN)) == NULL)) {
        fprintf(stderr, "kbctl: audit init: cannot initialize libsodium\n");
        return KBCTL_AUDIT_ERROR;
    }
    if (k0 != NULL)
        randombytes_buf(k0, KB_AUDIT_KEY_LEN);
    clock_gettime(CLOCK_REALTIME, &now);
    rc = kb_audit_state_init(&st, mode, k0,
                             (int64_t)now.tv_sec * 1000 + (int64_t)(now.tv_nsec / 1000000));
    if (rc != 0) {
        fprintf(stderr, "kbctl: audit init: %s\n", kb_strerror(rc));
        rc = KBCTL_AUDIT_ERROR;
    } else {
        rc = s_init_write(o, &st, k0);
    }
    if (rc == KBCTL_AUDIT_OK) {
        printf("new %s audit chain %s", kb_audit_mode_name(mode), st.chain_id);
        if (mode == KB_AUDIT_MODE_HMAC)
            printf(" (key id %s)", st.key_id);
        printf("\nstate file: %s (0600): name it in broker.audit.state%s\n", o->state,
               mode == KB_AUDIT_MODE_HMAC ? "; it holds the current epoch key" : "");
        if (mode == KB_AUDIT_MODE_HMAC)
            printf("key file:   %s (0600): K_0, for `kbctl audit verify --key`. Move it OFF "
                   "this host now: the broker never needs it, and whoever holds it can forge "
                   "the whole chain\n",
                   o->key_out);
        else
            printf("no key file: a sha256 chain is not tagged; anyone who can write the log can "
                   "rewrite it (anchors bound that)\n");
    }
    kb_audit_state_cleanup(&st);
    if (k0 != NULL)
        sodium_free(k0);
    return rc;
}

/* -- the command line ------------------------------------------------------------------------ */

enum {
    S_OPT_STATE = 300,
    S_OPT_KEY_OUT,
    S_OPT_CHAIN,
    S_OPT_FORCE,
    S_OPT_KEY,
    S_OPT_ANCHORS,
    S_OPT_JSON,
    S_OPT_TIMEOUT,
};

static const struct option s_options[] = {
    {"state", required_argument, NULL, S_OPT_STATE},
    {"key-out", required_argument, NULL, S_OPT_KEY_OUT},
    {"chain", required_argument, NULL, S_OPT_CHAIN},
    {"force", no_argument, NULL, S_OPT_FORCE},
    {"key", required_argument, NULL, S_OPT_KEY},
    {"anchors", required_argument, NULL, S_OPT_ANCHORS},
    {"json", no_argument, NULL, S_OPT_JSON},
    {"timeout", required_argument, NULL, S_OPT_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int s_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int s_usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "kbctl: audit: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'kbctl audit --help')\n");
    return KBCTL_AUDIT_ERROR;
}

static int s_timeout(const char *arg, int *ms)
{
    char *end = NULL;
    long secs;

    errno = 0;
    secs = strtol(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || secs <= 0 || secs > 86400)
        return -1;
    *ms = (int)secs * 1000;
    return 0;
}

/* Parses the options (anywhere on the line); returns -1 after printing a usage error. */
static int s_parse(int argc, char **argv, struct kbctl_audit_opts *o, bool *help)
{
    int opt;

    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", s_options, NULL)) != -1) {
        switch (opt) {
        case S_OPT_STATE:
            o->state = optarg;
            break;
        case S_OPT_KEY_OUT:
            o->key_out = optarg;
            break;
        case S_OPT_CHAIN:
            o->chain = optarg;
            break;
        case S_OPT_FORCE:
            o->force = true;
            break;
        case S_OPT_KEY:
            o->key = optarg;
            break;
        case S_OPT_ANCHORS:
            o->anchors = optarg;
            break;
        case S_OPT_JSON:
            o->json = true;
            break;
        case S_OPT_TIMEOUT:
            if (s_timeout(optarg, &o->timeout_ms) != 0) {
                s_usage_error("--timeout wants whole seconds, 1 to 86400");
                return -1;
            }
            break;
        case 'h':
            *help = true;
            break;
        default:
            s_usage_error("unknown option or missing argument: %s", argv[optind - 1]);
            return -1;
        }
    }
    return 0;
}

int kbctl_audit(int argc, char **argv)
{
    struct kbctl_audit_opts o = {.timeout_ms = 30000};
    bool help = false;
    char **args;
    int nargs;
    const char *sub;

    if (s_parse(argc, argv, &o, &help) != 0)
        return KBCTL_AUDIT_ERROR;
    args = argv + optind + 1; /* after "audit" */
    nargs = argc - optind - 1;
    sub = nargs > 0 ? args[0] : NULL;
    if (sub != NULL && strcmp(sub, "init") != 0 && strcmp(sub, "verify") != 0)
        return s_usage_error("unknown audit command '%s'", sub);
    if (help) {
        s_help(stdout, sub);
        return KBCTL_AUDIT_OK;
    }
    if (sub == NULL) {
        s_help(stderr, NULL);
        return KBCTL_AUDIT_ERROR;
    }
    if (strcmp(sub, "init") == 0) {
        if (nargs > 1)
            return s_usage_error("init takes no arguments, only options: %s", args[1]);
        if (o.key != NULL || o.anchors != NULL || o.json)
            return s_usage_error("--key, --anchors and --json are for verify");
        return kbctl_audit_init(&o);
    }
    if (o.state != NULL || o.key_out != NULL || o.chain != NULL || o.force)
        return s_usage_error("--state, --key-out, --chain and --force are for init");
    if (nargs < 2)
        return s_usage_error("verify wants at least one FILE");
    return kbctl_audit_verify(&o, nargs - 1, args + 1);
}
