/*
 * creds_profile.c - profiles in the shared files ~/.aws/config and ~/.aws/credentials.
 *
 * The files are read whole into memory (they are small and local), parsed with inih through a
 * reader of our own, and merged: the config file names its sections "[profile x]" (and
 * "[default]"), the credentials file "[x]", and the credentials file's values win. Debian's
 * libinih 55 takes its options from globals at run time; they are set for one parse and restored:
 * lines up to 16 KiB (its 200-byte default cuts a session token in two), no inline comments (as
 * botocore, whose configparser keeps "a ; b" in a value: a credential_process may hold ';'), and
 * multi-line values (an indented line continues the previous key, as in "s3 =" blocks: we only
 * ever see it under that key's name).
 *
 * This module must never log, and it leaves no copy of a secret in unguarded memory: the file's
 * bytes and inih's line buffer are wiped, and secret values go straight into kb_secrets.
 */
#include "aws/creds_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"

#define S_MAX_FILE (1024 * 1024)
#define S_MAX_LINE (16 * 1024)

/* Lines starting with these are comments (inih wants a mutable string). */
static char s_comment_prefixes[] = ";#";

/* The state of one file's parse, shared by the reader and the handler. */
struct s_parse {
    const char *name; /* the profile wanted */
    bool config_style;
    struct kb_creds_profile *p;
    int err;
    /* the reader's position in the file's bytes */
    const char *cur;
    const char *end;
    int line;
    bool too_long;
};

/* inih's options at the time of a parse. */
struct s_ini_options {
    int max_line;
    bool use_stack, multiline, inline_comments, stop_on_first_error, no_value, bom;
    char *start_comment_prefixes;
};

static void s_ini_options_swap(struct s_ini_options *o)
{
    struct s_ini_options cur = {ini_max_line,
                                ini_use_stack,
                                ini_allow_multiline,
                                ini_allow_inline_comments,
                                ini_stop_on_first_error,
                                ini_allow_no_value,
                                ini_allow_bom,
                                ini_start_comment_prefixes};

    ini_max_line = o->max_line;
    ini_use_stack = o->use_stack;
    ini_allow_multiline = o->multiline;
    ini_allow_inline_comments = o->inline_comments;
    ini_stop_on_first_error = o->stop_on_first_error;
    ini_allow_no_value = o->no_value;
    ini_allow_bom = o->bom;
    ini_start_comment_prefixes = o->start_comment_prefixes;
    *o = cur;
}

/* Hands inih one line at a time. Its line buffer lives on its stack; the last call (end of
 * input) wipes it while it is still alive. */
static char *s_reader(char *str, int num, void *stream)
{
    struct s_parse *ps = stream;
    size_t avail = (size_t)(ps->end - ps->cur);
    const char *nl;
    size_t n;

    if (avail == 0 || ps->too_long || num < 2) {
        sodium_memzero(str, (size_t)num);
        return NULL;
    }
    nl = memchr(ps->cur, '\n', avail);
    n = nl != NULL ? (size_t)(nl - ps->cur) + 1 : avail;
    if (n > (size_t)num - 1) {
        ps->too_long = true;
        ps->line++;
        sodium_memzero(str, (size_t)num);
        return NULL;
    }
    memcpy(str, ps->cur, n);
    str[n] = '\0';
    ps->cur += n;
    ps->line++;
    return str;
}

/* Trims spaces and tabs at both ends of s[0..len) in place; returns the trimmed length. */
static size_t s_trim(const char **s, size_t len)
{
    while (len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        len--;
    }
    while (len > 0 && ((*s)[len - 1] == ' ' || (*s)[len - 1] == '\t'))
        len--;
    return len;
}

/* Does section name the profile we want, in this file's style? */
static bool s_section_matches(const struct s_parse *ps, const char *section)
{
    const char *s = section;
    size_t len = s_trim(&s, strlen(section));

    if (ps->config_style) {
        if (len == 7 && memcmp(s, "default", 7) == 0)
            return strcmp(ps->name, "default") == 0;
        if (len < 8 || memcmp(s, "profile", 7) != 0 || (s[7] != ' ' && s[7] != '\t'))
            return false;
        s += 7;
        len = s_trim(&s, len - 7);
    }
    return len == strlen(ps->name) && memcmp(s, ps->name, len) == 0;
}

/* Replaces *slot with a copy of value (NULL when value is empty). */
static int s_set_string(char **slot, const char *value)
{
    free(*slot);
    *slot = NULL;
    if (value[0] == '\0')
        return 0;
    *slot = strdup(value);
    return *slot != NULL ? 0 : KB_ENOMEM;
}

static int s_set_secret(struct kb_secret **slot, const char *value)
{
    kb_secret_destroy(*slot);
    *slot = NULL;
    if (value[0] == '\0')
        return 0;
    *slot = kb_secret_new(value, strlen(value));
    return *slot != NULL ? 0 : KB_ENOMEM;
}

static int s_handler(void *user, const char *section, const char *name, const char *value)
{
    struct s_parse *ps = user;
    struct kb_creds_profile *p = ps->p;
    int rc = 0;

    if (!s_section_matches(ps, section))
        return 1;
    p->found = true;
    if (strcasecmp(name, "aws_access_key_id") == 0)
        rc = s_set_string(&p->access_key_id, value);
    else if (strcasecmp(name, "aws_secret_access_key") == 0)
        rc = s_set_secret(&p->secret_access_key, value);
    else if (strcasecmp(name, "aws_session_token") == 0)
        rc = s_set_secret(&p->session_token, value);
    else if (strcasecmp(name, "credential_process") == 0)
        rc = s_set_string(&p->credential_process, value);
    else if (strcasecmp(name, "region") == 0)
        rc = s_set_string(&p->region, value);
    else if (strcasecmp(name, "role_arn") == 0)
        p->role_arn = value[0] != '\0';
    else if (strcasecmp(name, "sso_session") == 0 || strcasecmp(name, "sso_start_url") == 0)
        p->sso = value[0] != '\0';
    if (rc != 0 && ps->err == 0)
        ps->err = rc;
    return rc == 0;
}

/* Reads path whole. *buf_out is NULL (and 0 returned) when the file does not exist. The caller
 * wipes and frees the buffer. */
static int s_read_file(const char *path, char **buf_out, size_t *len_out)
{
    struct stat st;
    size_t cap, len = 0;
    char *buf = NULL;
    int fd, rc = 0;

    *buf_out = NULL;
    *len_out = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto cleanup;
    }
    if (S_ISREG(st.st_mode) && st.st_size > S_MAX_FILE) {
        rc = KB_ETOOBIG;
        goto cleanup;
    }
    cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 4096 : 65536;
    buf = malloc(cap);
    if (buf == NULL) {
        rc = KB_ENOMEM;
        goto cleanup;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            goto cleanup;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == cap) {
            rc = KB_ETOOBIG; /* grew while we read it, or an endless device */
            goto cleanup;
        }
    }
    *buf_out = buf;
    *len_out = len;
    buf = NULL;
cleanup:
    if (buf != NULL) {
        sodium_memzero(buf, len);
        free(buf);
    }
    close(fd);
    return rc;
}

/* Parses one file into p. */
static int s_parse_file(const char *path, bool config_style, const char *name,
                        struct kb_creds_profile *p, char *why, size_t whylen)
{
    struct s_ini_options opts = {S_MAX_LINE + 3, true,  true, false,
                                 false,          false, true, s_comment_prefixes};
    struct s_parse ps = {.name = name, .config_style = config_style, .p = p};
    char *buf = NULL;
    size_t len = 0;
    int rc, line;

    rc = s_read_file(path, &buf, &len);
    if (rc != 0) {
        snprintf(why, whylen, "cannot read %s: %s", path, kb_strerror(rc));
        return rc;
    }
    if (buf == NULL)
        return 0;
    ps.cur = buf;
    ps.end = buf + len;
    s_ini_options_swap(&opts);
    line = ini_parse_stream(s_reader, &ps, s_handler, &ps);
    s_ini_options_swap(&opts);
    sodium_memzero(buf, len);
    free(buf);
    if (ps.err != 0) {
        snprintf(why, whylen, "%s: %s", path, kb_strerror(ps.err));
        return ps.err;
    }
    if (ps.too_long) {
        snprintf(why, whylen, "%s: line %d is longer than %d bytes", path, ps.line, S_MAX_LINE);
        return KB_ETOOBIG;
    }
    if (line != 0) {
        snprintf(why, whylen, "%s: line %d is malformed", path, line);
        return KB_EPARSE;
    }
    return 0;
}

int kb_creds_profile_load(const char *name, const char *credentials_path, const char *config_path,
                          struct kb_creds_profile *out, char *why, size_t whylen)
{
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (config_path != NULL)
        rc = s_parse_file(config_path, true, name, out, why, whylen);
    if (rc == 0 && credentials_path != NULL)
        rc = s_parse_file(credentials_path, false, name, out, why, whylen);
    if (rc != 0)
        kb_creds_profile_cleanup(out);
    return rc;
}

void kb_creds_profile_cleanup(struct kb_creds_profile *p)
{
    free(p->access_key_id);
    kb_secret_destroy(p->secret_access_key);
    kb_secret_destroy(p->session_token);
    free(p->credential_process);
    free(p->region);
    memset(p, 0, sizeof(*p));
}

int kb_creds_profile_path(const char *env_value, const char *home, const char *file, char *out,
                          size_t outlen)
{
    int n;

    if (env_value != NULL && env_value[0] != '\0' && strncmp(env_value, "~/", 2) != 0) {
        n = snprintf(out, outlen, "%s", env_value);
    } else if (home == NULL || home[0] == '\0') {
        return KB_ENOTFOUND;
    } else if (env_value != NULL && env_value[0] != '\0') {
        n = snprintf(out, outlen, "%s%s", home, env_value + 1);
    } else {
        n = snprintf(out, outlen, "%s/.aws/%s", home, file);
    }
    return n >= 0 && (size_t)n < outlen ? 0 : KB_ETOOBIG;
}

int kb_creds_profile_region(const char *profile, char *out, size_t outlen)
{
    const char *env_profile = getenv("AWS_PROFILE");
    const char *home = getenv("HOME");
    const char *name = "default";
    char cred_path[4096], conf_path[4096], why[KB_CREDS_WHY_LEN];
    struct kb_creds_profile p;
    bool have_cred, have_conf;
    int rc;

    if (outlen == 0)
        return KB_EINVAL;
    out[0] = '\0';
    if (profile != NULL && profile[0] != '\0')
        name = profile;
    else if (env_profile != NULL && env_profile[0] != '\0')
        name = env_profile;
    have_cred = kb_creds_profile_path(getenv("AWS_SHARED_CREDENTIALS_FILE"), home, "credentials",
                                      cred_path, sizeof(cred_path)) == 0;
    have_conf = kb_creds_profile_path(getenv("AWS_CONFIG_FILE"), home, "config", conf_path,
                                      sizeof(conf_path)) == 0;
    rc = kb_creds_profile_load(name, have_cred ? cred_path : NULL, have_conf ? conf_path : NULL, &p,
                               why, sizeof(why));
    if (rc != 0)
        return rc == KB_ENOMEM ? rc : KB_EPARSE;
    if (p.region != NULL && (size_t)snprintf(out, outlen, "%s", p.region) >= outlen) {
        out[0] = '\0';
        rc = KB_ETOOBIG;
    }
    kb_creds_profile_cleanup(&p);
    return rc;
}
