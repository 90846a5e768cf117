/*
 * server.c - the listener: making the socket file safely (directory check, stale-socket
 * detection, a private directory, mode and group, an atomic rename) or adopting systemd's
 * socket, accepting, the sweep timer, watch events, and shutdown.
 *
 * Who may replace the socket. A client finds the broker by path, so whoever can put a socket of
 * their own at that path can answer in the broker's name (hand out their own ARNs). That is
 * anyone who can write the socket's directory and remove entries of others: its owner, and
 * group/other writers when the directory has no sticky bit. So s_dir_check refuses a directory
 * not owned by root or keybrokerd's own euid, and one writable by group or others without the
 * sticky bit, naming what is wrong and how to fix it; keybrokerd then does not start. Only the
 * direct parent is checked (whoever can rename an ancestor could still move it; an ancestor is
 * normally /run or a package's directory). A socket systemd passes in (LISTEN_FDS) is systemd's
 * business and is not checked. Clients check the other end: libkeybroker refuses a socket served
 * by an unexpected uid (SO_PEERCRED, proto/client.c).
 *
 * Making the file. Linux applies neither fchmod nor fchown on a socket descriptor to the bound
 * inode, so mode and group can only be set by path, and a path in a directory others can write
 * to (a sticky /tmp) can be swapped for a symlink between bind and chmod: root would then chmod
 * or chown a file of the attacker's choice. Hence every step but bind works relative to a
 * directory descriptor, and the file gets its final name only when it is finished:
 *   1. open the socket's directory and check it (above);
 *   2. refuse a path that is not a socket or that a live broker serves; remove a stale socket
 *      (connect gives ECONNREFUSED);
 *   3. mkdirat a directory of ours with a random name (S_PRIV_PREFIX + 6 characters), mode 0700:
 *      nobody else can enter it, and in a sticky or unshared directory nobody else can rename
 *      or remove it either;
 *   4. bind S_PRIV_SOCKET inside it under a umask that gives the configured mode from the start,
 *      check through the directory's descriptor that the socket is there, then fchownat and
 *      fchmodat it there (nobody else can reach it) and record its dev/ino;
 *   5. renameat2(RENAME_NOREPLACE) it to the configured name (link + unlink where the file
 *      system lacks that rename): atomic, and it never replaces anything, a symlink planted in
 *      the meantime included (EEXIST: refused);
 *   6. remove the private directory, whatever happened (and our socket in it when it never got
 *      its name). A failure therefore leaves neither a directory nor a half-made socket.
 * At shutdown the file is removed only while it is still the inode recorded in step 4 (a rename
 * keeps the inode). Only a kill -9 inside steps 3 to 6 can leave a private directory behind; the
 * next start removes such leftovers of its own uid once they are a minute old (s_sweep_private).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "server/server_internal.h"

#define S_BACKLOG   4096
#define S_LISTEN_FD 3 /* SD_LISTEN_FDS_START */

int kb_server_new(uv_loop_t *loop, const struct kb_server_options *opt, struct kb_server **out)
{
    const char *path;
    struct kb_server *s;
    int rc = KB_ENOMEM;

    if (loop == NULL || opt == NULL || opt->cfg == NULL || out == NULL)
        return KB_EINVAL;
    *out = NULL;
    path = opt->socket_path != NULL ? opt->socket_path : opt->cfg->broker.socket.path;
    if (path == NULL || path[0] == '\0')
        return KB_EINVAL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return KB_ENOMEM;
    s->loop = loop;
    s->cfg = opt->cfg;
    s->engine = opt->engine;
    s->aws = opt->aws;
    s->events = opt->events;
    s->admit = opt->admit;
    s->admit_ctx = opt->admit_ctx;
    s->audit_stats = opt->audit_stats;
    s->max_queued = opt->max_queued != 0 ? opt->max_queued : KB_SERVER_MAX_QUEUED;
    s->write_stall_ms = opt->write_stall_ms != 0 ? opt->write_stall_ms : KB_SERVER_WRITE_STALL;
    s->use_listen_fds = opt->use_listen_fds;
    s->path = strdup(path);
    s->version = strdup(opt->version != NULL ? opt->version : "0");
    s->region = strdup(opt->region != NULL ? opt->region : "");
    s->get_cache = calloc(opt->cfg->ntenants + 1, sizeof(*s->get_cache));
    if (s->path == NULL || s->version == NULL || s->region == NULL || s->get_cache == NULL)
        goto cleanup;
    rc = kb_srv_watch_subscribe(s);
    if (rc != 0)
        goto cleanup;
    rc = uv_timer_init(loop, &s->sweep);
    if (rc != 0)
        goto cleanup;
    s->sweep.data = s;
    s->sweep_open = true;
    s->pending = 1;
    s->started_ms = uv_now(loop);
    s->started = time(NULL);
    *out = s;
    return 0;
cleanup:
    kb_srv_watch_unsubscribe(s);
    free(s->path);
    free(s->version);
    free(s->region);
    free(s->get_cache);
    free(s);
    return rc;
}

const char *kb_server_path(const struct kb_server *s)
{
    return s->path;
}

/* -- accept and sweep -------------------------------------------------------------------------- */

static void on_connection(uv_stream_t *listener, int status)
{
    struct kb_server *s = listener->data;

    if (s->closing)
        return;
    if (status < 0) {
        kb_log(KB_LOG_WARN, "accept", "error", uv_strerror(status), NULL);
        return;
    }
    kb_srv_conn_accept(s);
}

static void on_sweep(uv_timer_t *t)
{
    struct kb_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    struct kb_srv_conn *c = s->conns, *next;

    for (; c != NULL; c = next) {
        next = c->next; /* the sweep may close c, which unlinks it */
        kb_srv_conn_sweep(c, now);
    }
}

/* -- binding ----------------------------------------------------------------------------------- */

#define S_SUN_PATH    sizeof(((struct sockaddr_un *)0)->sun_path)
#define S_PRIV_PREFIX ".kb-"
#define S_PRIV_RANDOM 6 /* random characters after the prefix */
/* Names tried before giving up: each collision is astronomically rare. */
#define S_PRIV_TRIES  100
#define S_PRIV_SOCKET "s" /* the socket's name inside the private directory */
#define S_PRIV_STALE  60  /* seconds: an older private directory of ours is left by a crash */

/* One bind of s->path, step by step (see the header comment). Owns its descriptors and the
 * private directory until s_bind_cleanup. */
struct s_bind {
    struct kb_server *s;
    const struct kb_config_socket *cs;
    char *errbuf;
    size_t errlen;
    char dir[S_SUN_PATH]; /* the socket's directory, as configured */
    const char *base;     /* the socket's name in dir (points into s->path) */
    int dirfd;
    char priv[sizeof(S_PRIV_PREFIX) + S_PRIV_RANDOM]; /* its name in dir; "" until made */
    int privfd;
    char tmp[S_SUN_PATH]; /* the path bound: dir/priv/S_PRIV_SOCKET */
    bool in_priv;         /* a socket file of ours is at priv/S_PRIV_SOCKET */
    dev_t dev;
    ino_t ino;
};

static int s_bind_fail(struct s_bind *b, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_bind_fail(struct s_bind *b, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(b->errbuf, b->errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* The directory and the name of s->path. */
static int s_split(struct s_bind *b)
{
    const char *path = b->s->path, *slash = strrchr(path, '/');
    size_t dirlen;

    if (strlen(path) >= S_SUN_PATH)
        return s_bind_fail(b, KB_EINVAL, "socket path %s is too long", path);
    b->base = slash != NULL ? slash + 1 : path;
    if (b->base[0] == '\0' || strcmp(b->base, ".") == 0 || strcmp(b->base, "..") == 0)
        return s_bind_fail(b, KB_EINVAL, "socket path %s does not name a file", path);
    dirlen = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);
    if (dirlen == 0)
        memcpy(b->dir, ".", 2);
    else
        snprintf(b->dir, sizeof(b->dir), "%.*s", (int)dirlen, path);
    /* dir/.kb-XXXXXX/s must fit a socket address too. */
    if (strlen(b->dir) + 1 + strlen(S_PRIV_PREFIX) + S_PRIV_RANDOM + 1 + strlen(S_PRIV_SOCKET) >=
        S_SUN_PATH)
        return s_bind_fail(b, KB_EINVAL,
                           "socket path %s: the directory name %s is too long to make the socket "
                           "safely (keybrokerd binds in a private directory inside it first); "
                           "use a shorter directory",
                           path, b->dir);
    return 0;
}

/*
 * Is dir (st) a place where only trusted users can replace the socket? Its owner must be root or
 * keybrokerd's own euid (an owner can always rename or remove any entry), and group or other
 * write access needs the sticky bit (without it, a writer can unlink the socket and bind its own).
 */
static int s_dir_check(struct s_bind *b, const struct stat *st)
{
    uid_t euid = geteuid();
    mode_t w = st->st_mode & (S_IWGRP | S_IWOTH);

    if (st->st_uid != 0 && st->st_uid != euid)
        return s_bind_fail(
            b, KB_EDENIED,
            "socket directory %s is owned by uid %u, not root or keybrokerd's own uid %u: its "
            "owner could replace the socket and answer clients in the broker's name; make it "
            "owned by root or uid %u (chown), or put broker.socket.path in a directory of its "
            "own such as /run/keybroker",
            b->dir, (unsigned)st->st_uid, (unsigned)euid, (unsigned)euid);
    if (w != 0 && !(st->st_mode & S_ISVTX))
        return s_bind_fail(
            b, KB_EDENIED,
            "socket directory %s is writable by %s (mode %04o) without the sticky bit: another "
            "user could remove the socket and bind their own in its place; remove that write "
            "access (chmod go-w %s) or set the sticky bit (chmod +t %s), or put "
            "broker.socket.path in a directory of its own such as /run/keybroker",
            b->dir,
            w == (S_IWGRP | S_IWOTH) ? "group and others"
            : (w & S_IWGRP)          ? "group"
                                     : "others",
            (unsigned)(st->st_mode & 07777), b->dir, b->dir);
    return 0;
}

/* Opens the socket's directory (every later step but bind works relative to it) and checks it. */
static int s_open_dir(struct s_bind *b)
{
    struct stat st;

    b->dirfd = open(b->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (b->dirfd < 0 || fstat(b->dirfd, &st) != 0)
        return s_bind_fail(b, -errno, "cannot open the socket directory %s: %s", b->dir,
                           uv_strerror(-errno));
    return s_dir_check(b, &st);
}

/* Is someone serving the path? 0: nothing there (or a stale socket, removed); KB_EINVAL: a live
 * broker, or not a socket. */
static int s_check_path(struct s_bind *b)
{
    const char *path = b->s->path;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    int fd, rc;

    if (fstatat(b->dirfd, b->base, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT
                   ? 0
                   : s_bind_fail(b, -errno, "cannot inspect %s: %s", path, uv_strerror(-errno));
    if (!S_ISSOCK(st.st_mode))
        return s_bind_fail(b, KB_EINVAL, "%s exists and is not a socket: refusing to replace it",
                           path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
    close(fd);
    if (rc == -ECONNREFUSED) {
        kb_log(KB_LOG_INFO, "socket", "path", path, "message", "replacing a stale socket", NULL);
        if (unlinkat(b->dirfd, b->base, 0) == 0 || errno == ENOENT)
            return 0;
        return s_bind_fail(b, -errno, "cannot remove the stale socket %s: %s", path,
                           uv_strerror(-errno));
    }
    if (rc == 0 || rc == -EAGAIN || rc == -EINPROGRESS)
        return s_bind_fail(b, KB_EINVAL, "another keybrokerd serves %s", path);
    return s_bind_fail(b, rc, "cannot probe %s: %s", path, uv_strerror(rc));
}

/* Whether name has the shape of a private directory's name. */
static bool s_priv_name(const char *name)
{
    size_t plen = strlen(S_PRIV_PREFIX);

    return strncmp(name, S_PRIV_PREFIX, plen) == 0 && strlen(name) == plen + S_PRIV_RANDOM;
}

/* Removes the private directories an earlier start left when it was killed between making one
 * and removing it: only directories of ours (owner euid) with a private directory's name, older
 * than S_PRIV_STALE seconds (a live bind keeps its own for microseconds, so a concurrent start of
 * another broker in the same directory is never disturbed), and in each only a socket called
 * S_PRIV_SOCKET. Anything else is left alone; a failure here never stops the start. */
static void s_sweep_private(struct s_bind *b)
{
    int fd = dup(b->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    time_t now = time(NULL);
    struct dirent *e;

    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        int pfd;

        if (!s_priv_name(e->d_name) ||
            fstatat(b->dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode) ||
            st.st_uid != geteuid() || st.st_mtime > now - S_PRIV_STALE)
            continue;
        pfd = openat(b->dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (pfd < 0)
            continue;
        if (fstatat(pfd, S_PRIV_SOCKET, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode))
            (void)unlinkat(pfd, S_PRIV_SOCKET, 0);
        close(pfd);
        if (unlinkat(b->dirfd, e->d_name, AT_REMOVEDIR) == 0)
            kb_log(KB_LOG_INFO, "socket", "directory", b->dir, "removed", e->d_name, "message",
                   "removed a private directory left by an earlier start", NULL);
    }
    closedir(d);
}

/* A fresh directory of ours, mode 0700, in dir under a random name (mkdtemp relative to dirfd). */
static int s_make_private(struct s_bind *b)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const size_t plen = strlen(S_PRIV_PREFIX);
    unsigned char rnd[S_PRIV_RANDOM];
    struct stat st;
    int rc = -EEXIST;

    for (int i = 0; i < S_PRIV_TRIES && rc == -EEXIST; i++) {
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
            return s_bind_fail(b, -errno, "cannot read random bytes: %s", uv_strerror(-errno));
        memcpy(b->priv, S_PRIV_PREFIX, plen);
        for (size_t k = 0; k < S_PRIV_RANDOM; k++)
            b->priv[plen + k] = chars[rnd[k] % (sizeof(chars) - 1)];
        b->priv[plen + S_PRIV_RANDOM] = '\0';
        rc = mkdirat(b->dirfd, b->priv, 0700) == 0 ? 0 : -errno;
    }
    if (rc != 0) {
        b->priv[0] = '\0';
        return s_bind_fail(b, rc, "cannot create a private directory in %s: %s", b->dir,
                           uv_strerror(rc));
    }
    /* Nobody else can write dir's entries of ours (the directory check), so this is the one
     * just made; the checks only make that assumption loud. */
    b->privfd = openat(b->dirfd, b->priv, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (b->privfd < 0 || fstat(b->privfd, &st) != 0 || st.st_uid != geteuid() ||
        fchmod(b->privfd, 0700) != 0)
        return s_bind_fail(b, KB_EINVAL, "the private directory %s/%s is not the one just made",
                           b->dir, b->priv);
    /* s_split made sure it fits */
    if ((size_t)snprintf(b->tmp, sizeof(b->tmp), "%s/%s/%s", b->dir, b->priv, S_PRIV_SOCKET) >=
        sizeof(b->tmp))
        return s_bind_fail(b, KB_EINVAL, "socket path %s is too long", b->s->path);
    return 0;
}

/* Binds inside the private directory with the configured mode from the start (umask), then sets
 * group and mode exactly: nobody else can reach the file yet. */
static int s_bind_private(struct s_bind *b)
{
    struct stat st;
    mode_t old;
    int rc;

    old = umask((mode_t)(~b->cs->mode & 0777));
    rc = uv_pipe_bind(&b->s->listener, b->tmp);
    umask(old);
    if (rc != 0)
        return s_bind_fail(b, rc, "cannot bind a socket in %s: %s", b->dir, uv_strerror(rc));
    /* The path bound is the only one not relative to a descriptor: the socket must be in the
     * directory opened above. */
    if (fstatat(b->privfd, S_PRIV_SOCKET, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISSOCK(st.st_mode))
        return s_bind_fail(b, KB_EINVAL, "the socket bound at %s is not in the private directory",
                           b->tmp);
    b->in_priv = true;
    if (b->cs->has_group &&
        fchownat(b->privfd, S_PRIV_SOCKET, (uid_t)-1, (gid_t)b->cs->gid, AT_SYMLINK_NOFOLLOW) != 0)
        return s_bind_fail(b, -errno, "cannot set the group of %s to %u: %s", b->s->path,
                           (unsigned)b->cs->gid, uv_strerror(-errno));
    if (fchmodat(b->privfd, S_PRIV_SOCKET, (mode_t)b->cs->mode, 0) != 0)
        return s_bind_fail(b, -errno, "cannot set the mode of %s: %s", b->s->path,
                           uv_strerror(-errno));
    if (fstatat(b->privfd, S_PRIV_SOCKET, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return s_bind_fail(b, -errno, "cannot inspect %s: %s", b->tmp, uv_strerror(-errno));
    b->dev = st.st_dev;
    b->ino = st.st_ino;
    return 0;
}

/* Gives the finished socket its name without replacing anything: renameat2(RENAME_NOREPLACE),
 * or link + unlink where the file system has no such rename. */
static int s_place(struct s_bind *b)
{
    struct stat st;
    int rc;

    rc = renameat2(b->privfd, S_PRIV_SOCKET, b->dirfd, b->base, RENAME_NOREPLACE) == 0 ? 0 : -errno;
    if (rc == -EINVAL || rc == -ENOSYS || rc == -ENOTSUP) {
        rc = linkat(b->privfd, S_PRIV_SOCKET, b->dirfd, b->base, 0) == 0 ? 0 : -errno;
        if (rc == 0)
            (void)unlinkat(b->privfd, S_PRIV_SOCKET, 0);
    }
    if (rc == -EEXIST)
        return s_bind_fail(b, rc,
                           "%s appeared while keybrokerd was making its socket (another process "
                           "races for that name): nothing was replaced",
                           b->s->path);
    if (rc != 0)
        return s_bind_fail(b, rc, "cannot move the socket to %s: %s", b->s->path, uv_strerror(rc));
    /* After link + unlink, a failed unlink leaves the old name for s_bind_cleanup. */
    b->in_priv = fstatat(b->privfd, S_PRIV_SOCKET, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (fstatat(b->dirfd, b->base, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != b->dev ||
        st.st_ino != b->ino)
        return s_bind_fail(b, KB_EINVAL, "%s is not the socket just made", b->s->path);
    b->s->bound = true;
    b->s->bound_dev = b->dev;
    b->s->bound_ino = b->ino;
    return 0;
}

/* Removes the private directory (and our socket in it, when it never got its name). */
static void s_bind_cleanup(struct s_bind *b)
{
    if (b->in_priv)
        (void)unlinkat(b->privfd, S_PRIV_SOCKET, 0);
    if (b->priv[0] != '\0' && unlinkat(b->dirfd, b->priv, AT_REMOVEDIR) != 0)
        kb_log(KB_LOG_WARN, "socket", "path", b->dir, "message",
               "cannot remove keybrokerd's private directory", "name", b->priv, NULL);
    if (b->privfd >= 0)
        close(b->privfd);
    if (b->dirfd >= 0)
        close(b->dirfd);
}

static int s_bind(struct kb_server *s, char *errbuf, size_t errlen)
{
    struct s_bind b = {.s = s,
                       .cs = &s->cfg->broker.socket,
                       .errbuf = errbuf,
                       .errlen = errlen,
                       .dirfd = -1,
                       .privfd = -1};
    int rc = s_split(&b);

    if (rc == 0)
        rc = s_open_dir(&b);
    if (rc == 0)
        rc = s_check_path(&b);
    if (rc == 0) {
        s_sweep_private(&b);
        rc = s_make_private(&b);
    }
    if (rc == 0)
        rc = s_bind_private(&b);
    if (rc == 0)
        rc = s_place(&b);
    s_bind_cleanup(&b);
    return rc;
}

/* systemd socket activation: LISTEN_PID is us and LISTEN_FDS >= 1. The variables are removed so
 * that children do not think the socket is theirs. */
static bool s_listen_fds(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    char *end = NULL;
    long p, n;
    bool ours = false;

    if (pid != NULL && fds != NULL) {
        errno = 0;
        p = strtol(pid, &end, 10);
        ours = errno == 0 && end != pid && *end == '\0' && p == (long)getpid();
        end = NULL;
        n = strtol(fds, &end, 10);
        ours = ours && errno == 0 && end != fds && *end == '\0' && n >= 1;
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return ours;
}

static int s_adopt(struct kb_server *s, char *errbuf, size_t errlen)
{
    int type = 0, domain = 0;
    socklen_t len = sizeof(type);
    char name[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    size_t namelen = sizeof(name);
    int rc;

    if (getsockopt(S_LISTEN_FD, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM ||
        (len = sizeof(domain), getsockopt(S_LISTEN_FD, SOL_SOCKET, SO_DOMAIN, &domain, &len)) !=
            0 ||
        domain != AF_UNIX) {
        snprintf(errbuf, errlen, "LISTEN_FDS: fd 3 is not a Unix stream socket");
        return KB_EINVAL;
    }
    (void)fcntl(S_LISTEN_FD, F_SETFD, FD_CLOEXEC);
    rc = uv_pipe_open(&s->listener, S_LISTEN_FD);
    if (rc != 0) {
        snprintf(errbuf, errlen, "LISTEN_FDS: cannot use fd 3: %s", uv_strerror(rc));
        return rc;
    }
    s->inherited = true;
    if (uv_pipe_getsockname(&s->listener, name, &namelen) == 0 && namelen > 0) {
        char *copy = strdup(name);

        if (copy != NULL) {
            free(s->path);
            s->path = copy;
        }
    }
    return 0;
}

int kb_server_listen(struct kb_server *s, char *errbuf, size_t errlen)
{
    int rc;

    errbuf[0] = '\0';
    rc = uv_pipe_init(s->loop, &s->listener, 0);
    if (rc != 0) {
        snprintf(errbuf, errlen, "cannot create the socket: %s", uv_strerror(rc));
        return rc;
    }
    s->listener.data = s;
    s->listener_open = true;
    s->pending++;
    rc = s->use_listen_fds && s_listen_fds() ? s_adopt(s, errbuf, errlen)
                                             : s_bind(s, errbuf, errlen);
    if (rc != 0)
        return rc;
    rc = uv_listen((uv_stream_t *)&s->listener, S_BACKLOG, on_connection);
    if (rc != 0) {
        snprintf(errbuf, errlen, "cannot listen on %s: %s", s->path, uv_strerror(rc));
        return rc;
    }
    rc = uv_timer_start(&s->sweep, on_sweep, KB_SRV_SWEEP_MS, KB_SRV_SWEEP_MS);
    if (rc != 0) {
        snprintf(errbuf, errlen, "cannot start the sweep timer: %s", uv_strerror(rc));
        return rc;
    }
    kb_log(KB_LOG_INFO, "listening", "path", s->path, "activation",
           s->inherited ? "systemd" : "bound", NULL);
    return 0;
}

/* -- shutdown ---------------------------------------------------------------------------------- */

void kb_srv_release(struct kb_server *s)
{
    struct kb_srv_rate *r, *next;
    kb_server_closed_cb cb;
    void *ctx;

    if (--s->pending > 0 || !s->closing)
        return;
    for (r = s->rates; r != NULL; r = next) {
        next = r->next;
        free(r);
    }
    cb = s->closed_cb;
    ctx = s->closed_ctx;
    kb_srv_get_cache_free(s->get_cache, s->cfg->ntenants);
    free(s->path);
    free(s->version);
    free(s->region);
    free(s);
    if (cb != NULL)
        cb(ctx);
}

static void on_handle_closed(uv_handle_t *h)
{
    kb_srv_release(h->data);
}

/* Removes the socket file if it is still the one bound here. */
static void s_unlink(struct kb_server *s)
{
    struct stat st;

    if (!s->bound || s->inherited)
        return;
    if (lstat(s->path, &st) == 0 && st.st_dev == s->bound_dev && st.st_ino == s->bound_ino)
        unlink(s->path);
}

void kb_server_close(struct kb_server *s, kb_server_closed_cb closed, void *ctx)
{
    if (s == NULL || s->closing)
        return;
    s->closing = true;
    kb_srv_watch_unsubscribe(s);
    s->closed_cb = closed;
    s->closed_ctx = ctx;
    s_unlink(s);
    while (s->conns != NULL)
        kb_srv_conn_close(s->conns, NULL);
    kb_srv_jobs_abandon(s);
    if (s->listener_open)
        uv_close((uv_handle_t *)&s->listener, on_handle_closed);
    uv_close((uv_handle_t *)&s->sweep, on_handle_closed);
}
