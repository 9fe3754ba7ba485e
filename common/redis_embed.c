/* redis_embed.c: start, join and stop the private redis-server of `[redis] url = embedded`.
 *
 * The server listens only on `<dir>/redis.sock` and keeps an AOF in `<dir>`. Whoever finds the
 * socket silent starts it (fork + exec, own session) and owns it; whoever finds it answering
 * joins it. A flock on `<dir>/redis.lock` makes "probe, then start" atomic between processes, so
 * a gateway and a worker started together never launch two servers over one AOF. Start and stop
 * block and run at start-up or shut-down only; the owner's restart of a dead server
 * (redis_embed_tick) waits only for fork + exec, so it may run on an event loop. */
#include "antre/redis_embed.h"

#include "antre/conf.h"

#include "antre/errbuf.h"
#include "antre/fileutil.h"
#include "antre/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SOCK_NAME "redis.sock"
#define SUN_PATH_MAX 108     /* sizeof(((struct sockaddr_un *)0)->sun_path), NUL included */
#define PROBE_TIMEOUT_MS 200 /* per PING attempt while probing or waiting */
#define POLL_MS 20           /* sleep between attempts */
#define ABORT_GRACE_MS 1000  /* SIGTERM grace for a server that failed to come up */
#define LOG_TAIL_BYTES 2048  /* how much of redis.log to read for an error */
#define LOG_TAIL_LINES 5

enum probe { PROBE_NONE, PROBE_BUSY, PROBE_READY };

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long long ms)
{
    if (ms <= 0) return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Append "; redis.log ends: a | b | c" to ERR, keeping the end of the log (where the fatal line
 * is) when ERR is too small for all of it. */
static void append_log_tail(char *err, size_t errlen, const char *logpath)
{
    if (!err || errlen == 0) return;
    int fd = open(logpath, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char buf[LOG_TAIL_BYTES + 1];
    struct stat st;
    off_t from = 0;
    if (fstat(fd, &st) == 0 && st.st_size > LOG_TAIL_BYTES) from = st.st_size - LOG_TAIL_BYTES;
    ssize_t n = pread(fd, buf, LOG_TAIL_BYTES, from);
    close(fd);
    if (n <= 0) return;
    buf[n] = '\0';

    /* Drop trailing newlines and a partial first line, then keep the last lines. */
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
    char *start = buf;
    if (from > 0) {
        char *nl = strchr(buf, '\n');
        if (nl) start = nl + 1;
    }
    int lines = 0;
    for (char *p = buf + n; p > start; p--) {
        if (p[-1] == '\n' && ++lines == LOG_TAIL_LINES) {
            start = p;
            break;
        }
    }
    if (*start == '\0') return;

    /* One line in ERR: newlines become " | ". */
    char flat[LOG_TAIL_BYTES * 3 + 1];
    size_t k = 0;
    for (char *p = start; *p && k + 3 < sizeof flat; p++) {
        if (*p == '\r') continue;
        if (*p == '\n') {
            memcpy(flat + k, " | ", 3);
            k += 3;
        } else {
            flat[k++] = *p;
        }
    }
    flat[k] = '\0';

    size_t used = strlen(err);
    static const char lead[] = "; redis.log ends: ";
    if (used + sizeof lead + 4 > errlen) return; /* no room for anything useful */
    size_t room = errlen - used - sizeof lead;   /* bytes left for the tail, NUL excluded */
    const char *tail = flat;
    const char *dots = "";
    if (k > room) {
        tail = flat + (k - room + 3);
        dots = "...";
    }
    snprintf(err + used, errlen - used, "%s%s%s", lead, dots, tail);
}

/* OUT = DIR/NAME. DIR is already known to be short (its socket path fits sun_path), so this
 * cannot fail in practice; the check keeps it honest. */
static int path_in(char *out, size_t outlen, const char *dir, const char *name)
{
    int n = snprintf(out, outlen, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* Resolve DIR against the working directory, create it, and canonicalise it into OUT. */
static int resolve_dir(const char *dir, char *out, size_t outlen, char *err, size_t errlen)
{
    char abs[PATH_MAX];
    if (dir[0] == '/') {
        if (snprintf(abs, sizeof abs, "%s", dir) >= (int)sizeof abs) goto too_long;
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) {
            errbuf_set(err, errlen, "cannot resolve data dir %s: getcwd: %s", dir, strerror(errno));
            return -1;
        }
        if (snprintf(abs, sizeof abs, "%s/%s", cwd, dir) >= (int)sizeof abs) goto too_long;
    }
    char why[PATH_MAX + 64];
    if (fileutil_mkdir_p(abs, 0700, why, sizeof why) < 0) {
        errbuf_set(err, errlen, "data dir: %s", why);
        return -1;
    }
    char *real = realpath(abs, NULL);
    if (!real) {
        errbuf_set(err, errlen, "cannot resolve data dir %s: %s", abs, strerror(errno));
        return -1;
    }
    int n = snprintf(out, outlen, "%s", real);
    free(real);
    if (n >= (int)outlen) goto too_long;
    return 0;
too_long:
    errbuf_set(err, errlen, "data dir path too long: %s", dir);
    return -1;
}

/* Find BIN like execvp would, so that "not found" is a clear error before any fork. */
static int find_bin(const char *bin, char *out, size_t outlen, char *err, size_t errlen)
{
    struct stat st;
    if (strchr(bin, '/')) {
        if (stat(bin, &st) < 0) {
            errbuf_set(err, errlen, "redis server binary %s: %s", bin, strerror(errno));
            return -1;
        }
        if (!S_ISREG(st.st_mode) || access(bin, X_OK) < 0) {
            errbuf_set(err, errlen, "redis server binary %s is not an executable file", bin);
            return -1;
        }
        if (snprintf(out, outlen, "%s", bin) >= (int)outlen) {
            errbuf_set(err, errlen, "redis server binary path too long: %s", bin);
            return -1;
        }
        return 0;
    }
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        int n = len ? snprintf(out, outlen, "%.*s/%s", (int)len, p, bin)
                    : snprintf(out, outlen, "%s", bin); /* empty entry = cwd */
        if (n < (int)outlen && stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
            return 0;
        if (!colon) break;
        p = colon + 1;
    }
    errbuf_set(err, errlen,
               "redis server binary %s not found in PATH (install the Debian package "
               "redis-server or set its path)",
               bin);
    return -1;
}

/* Does a Redis answer PING on SOCK? NONE: nothing listens (no file, or a stale one). BUSY:
 * something accepted the connection but did not say PONG (loading, or not Redis). READY: PONG. */
static enum probe probe(const char *sock)
{
    struct timeval tv = {0, PROBE_TIMEOUT_MS * 1000};
    redisContext *c = redisConnectUnixWithTimeout(sock, tv);
    if (!c) return PROBE_NONE;
    if (c->err) {
        redisFree(c);
        return PROBE_NONE;
    }
    enum probe p = PROBE_BUSY;
    if (redisSetTimeout(c, tv) == REDIS_OK) {
        redisReply *r = redisCommand(c, "PING");
        if (r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0) p = PROBE_READY;
        if (r) freeReplyObject(r);
    }
    redisFree(c);
    return p;
}

/* The pid in <dir>/redis.pid if it is a live (not zombie) redis-server, else 0. */
static pid_t live_pidfile_server(const char *dir)
{
    char path[PATH_MAX], buf[512];
    if (path_in(path, sizeof path, dir, "redis.pid") < 0) return 0;
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    long pid = 0;
    int ok = fscanf(f, "%ld", &pid) == 1;
    fclose(f);
    if (!ok || pid <= 0 || pid > INT_MAX) return 0;

    /* /proc/PID/stat reads "PID (COMM) STATE ...". */
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    f = fopen(path, "re");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *open_paren = strchr(buf, '(');
    char *close_paren = strrchr(buf, ')');
    if (!open_paren || !close_paren || close_paren < open_paren || close_paren[1] != ' ') return 0;
    if (close_paren[2] == 'Z' || close_paren[2] == 'X') return 0;
    *close_paren = '\0';
    if (strncmp(open_paren + 1, "redis-server", 12) != 0) return 0;
    return (pid_t)pid;
}

/* Take the start lock of DIR, waiting until DEADLINE. Returns the locked fd or -1. */
static int lock_dir(const char *dir, long long deadline, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (path_in(path, sizeof path, dir, "redis.lock") < 0) {
        errbuf_set(err, errlen, "data dir path too long: %s", dir);
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        errbuf_set(err, errlen, "cannot open lock file %s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            errbuf_set(err, errlen, "cannot lock %s: %s", path, strerror(errno));
            break;
        }
        if (now_ms() >= deadline) {
            errbuf_set(err, errlen,
                       "timed out waiting for another process starting redis (lock %s)", path);
            break;
        }
        sleep_ms(POLL_MS);
    }
    close(fd);
    return -1;
}

static void unlock_dir(int fd)
{
    if (fd < 0) return;
    flock(fd, LOCK_UN);
    close(fd);
}

/* Move FD to a number above 2 so that the child's dup2 onto 0..2 cannot clobber it (possible
 * when the caller runs with a standard descriptor closed). */
static int fd_above_stdio(int fd)
{
    if (fd < 0 || fd > 2) return fd;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return nfd;
}

/* In the child, after fork: only async-signal-safe calls until exec. */
static void close_fds_except(int keep, int maxfd)
{
    if (keep > 3 && close_range(3, (unsigned)keep - 1, 0) == 0 &&
        close_range((unsigned)keep + 1, ~0U, 0) == 0)
        return;
    if (keep == 3 && close_range(4, ~0U, 0) == 0) return;
    for (int fd = 3; fd < maxfd; fd++)
        if (fd != keep) close(fd);
}

/* Fork and exec BIN ARGV in a new session with stdin from /dev/null and stdout/stderr appended
 * to LOGPATH. Returns the child's pid once exec succeeded, or -1 (child reaped) with ERR set. */
static pid_t spawn(const char *bin, char *const argv[], const char *logpath, char *err,
                   size_t errlen)
{
    int nullfd = -1, logfd = -1, pfd[2] = {-1, -1};
    pid_t pid = -1;

    long maxfd = sysconf(_SC_OPEN_MAX);
    if (maxfd < 0 || maxfd > 65536) maxfd = 65536;

    nullfd = fd_above_stdio(open("/dev/null", O_RDWR | O_CLOEXEC));
    logfd = fd_above_stdio(open(logpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (nullfd < 0 || logfd < 0) {
        errbuf_set(err, errlen, "cannot open /dev/null or %s: %s", logpath, strerror(errno));
        goto out;
    }
    /* The exec-status pipe: closed by a successful exec (O_CLOEXEC), else it carries errno. */
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        errbuf_set(err, errlen, "pipe: %s", strerror(errno));
        goto out;
    }
    pfd[0] = fd_above_stdio(pfd[0]);
    pfd[1] = fd_above_stdio(pfd[1]);
    if (pfd[0] < 0 || pfd[1] < 0) {
        errbuf_set(err, errlen, "pipe: %s", strerror(errno));
        goto out;
    }

    pid = fork();
    if (pid < 0) {
        errbuf_set(err, errlen, "fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        /* Why: a blocked signal mask and SIG_IGN dispositions survive exec. A caller that
         * blocks SIGTERM (e.g. for signalfd) would otherwise hand Redis a mask under which our
         * own stop request never arrives. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++) sigaction(s, &dfl, NULL);

        /* Own session: no controlling terminal, so Ctrl-C and SIGHUP from the terminal reach
         * antre, which drains and then stops Redis itself. */
        setsid();
        /* Why: redis-server creates its AOF, RDB and appendonlydir with the umask it inherits;
         * they hold personal data, so nobody but the owner may read them. */
        umask(077);
        dup2(nullfd, STDIN_FILENO);
        dup2(logfd, STDOUT_FILENO);
        dup2(logfd, STDERR_FILENO);
        close_fds_except(pfd[1], (int)maxfd);
        execv(bin, argv);
        int e = errno;
        ssize_t w = write(pfd[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }

    close(pfd[1]);
    pfd[1] = -1;
    int child_errno = 0;
    ssize_t n;
    while ((n = read(pfd[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR) {
    }
    if (n == (ssize_t)sizeof child_errno) {
        errbuf_set(err, errlen, "cannot execute %s: %s", bin, strerror(child_errno));
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        pid = -1;
    }

out:
    if (nullfd >= 0) close(nullfd);
    if (logfd >= 0) close(logfd);
    if (pfd[0] >= 0) close(pfd[0]);
    if (pfd[1] >= 0) close(pfd[1]);
    return pid;
}

/* Has PID exited? 1 with *STATUS set, 2 exited but the status was taken by someone else (SIGCHLD
 * ignored), 0 still running. */
static int reaped(pid_t pid, int *status)
{
    pid_t w;
    while ((w = waitpid(pid, status, WNOHANG)) < 0 && errno == EINTR) {
    }
    if (w == pid) return 1;
    if (w < 0 && errno == ECHILD && kill(pid, 0) < 0 && errno == ESRCH) return 2;
    return 0;
}

static void describe_status(char *buf, size_t len, int how, int status)
{
    if (how == 2) snprintf(buf, len, "unknown");
    else if (WIFEXITED(status)) snprintf(buf, len, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) snprintf(buf, len, "signal %d", WTERMSIG(status));
    else snprintf(buf, len, "status 0x%x", (unsigned)status);
}

/* SIGTERM PID, wait up to TIMEOUT_MS, then SIGKILL; always reaps. Returns 0 when it exited by
 * itself with status 0, 1 when it exited otherwise, 2 when it had to be killed. */
static int terminate(pid_t pid, int timeout_ms, char *desc, size_t desclen)
{
    int status = 0, how;
    kill(pid, SIGTERM);
    long long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        if ((how = reaped(pid, &status)) != 0) {
            describe_status(desc, desclen, how, status);
            /* Status unknown (reaped elsewhere) but gone within the grace time: count as clean. */
            if (how == 2 || (WIFEXITED(status) && WEXITSTATUS(status) == 0)) return 0;
            return 1;
        }
        long long left = deadline - now_ms();
        if (left <= 0) break;
        sleep_ms(left < POLL_MS ? left : POLL_MS);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    snprintf(desc, desclen, "killed");
    return 2;
}

/* Fork and exec redis-server on DIR (see redis_embed.h for its options); does not wait for it
 * to answer. Returns its pid, or -1 with ERR set. */
static pid_t spawn_server(const char *bin, const char *dir, const char *sock,
                          const char *appendfsync, char *err, size_t errlen)
{
    char logpath[PATH_MAX], pidpath[PATH_MAX];
    if (path_in(logpath, sizeof logpath, dir, "redis.log") < 0 ||
        path_in(pidpath, sizeof pidpath, dir, "redis.pid") < 0) {
        errbuf_set(err, errlen, "data dir path too long: %s", dir);
        return -1;
    }
    char *argv[] = {
        (char *)bin,
        "--port",
        "0",
        "--unixsocket",
        (char *)sock,
        "--unixsocketperm",
        "700",
        "--protected-mode",
        "yes",
        "--appendonly",
        "yes",
        "--appendfsync",
        (char *)appendfsync,
        "--dir",
        (char *)dir,
        "--save",
        "",
        "--daemonize",
        "no",
        "--logfile",
        logpath,
        "--pidfile",
        pidpath,
        NULL,
    };
    return spawn(bin, argv, logpath, err, errlen);
}

/* Start redis-server on DIR and wait until it answers PING or DEADLINE passes. */
static pid_t start_server(const char *bin, const char *dir, const char *sock,
                          const char *appendfsync, long long deadline, char *err, size_t errlen)
{
    char logpath[PATH_MAX];
    if (path_in(logpath, sizeof logpath, dir, "redis.log") < 0) {
        errbuf_set(err, errlen, "data dir path too long: %s", dir);
        return -1;
    }
    pid_t pid = spawn_server(bin, dir, sock, appendfsync, err, errlen);
    if (pid < 0) return -1;

    for (;;) {
        int status = 0, how = reaped(pid, &status);
        if (how != 0) {
            char desc[64];
            describe_status(desc, sizeof desc, how, status);
            errbuf_set(err, errlen, "%s exited during start-up (%s)", bin, desc);
            append_log_tail(err, errlen, logpath);
            return -1;
        }
        if (probe(sock) == PROBE_READY) return pid;
        if (now_ms() >= deadline) break;
        sleep_ms(POLL_MS);
    }
    char desc[64];
    terminate(pid, ABORT_GRACE_MS, desc, sizeof desc);
    errbuf_set(err, errlen, "%s did not answer PING on %s in time (stopped: %s)", bin, sock, desc);
    append_log_tail(err, errlen, logpath);
    return -1;
}

/* Take away the group and other bits of PATH (a file: 0600 at most, a directory: 0700 at most)
 * and log the fix. Returns 1 when PATH is a directory to walk into. */
static int make_private(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0 || S_ISLNK(st.st_mode)) return 0;
    int isdir = S_ISDIR(st.st_mode);
    if (!isdir && !S_ISREG(st.st_mode)) return 0; /* the socket has its own mode (700) */
    mode_t was = st.st_mode & 07777;
    if (was & 077) {
        mode_t want = was & 0700;
        if (chmod(path, want) == 0)
            log_warn("redis_embed: made private path=%s mode=%04o was=%04o", path, (unsigned)want,
                     (unsigned)was);
        else
            log_error("redis_embed: cannot make private path=%s mode=%04o err=%s", path,
                      (unsigned)was, strerror(errno));
    }
    return isdir;
}

/* Make DIR and what it holds (files, and the files of its subdirectories, e.g. Redis'
 * appendonlydir) private before a server is started on it: earlier versions left them 0755 and
 * 0644, and the AOF holds personal data. DEPTH bounds the walk. */
static void make_tree_private(const char *dir, int depth)
{
    if (!make_private(dir) || depth <= 0) return;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char path[PATH_MAX];
        if (path_in(path, sizeof path, dir, e->d_name) < 0) continue;
        make_tree_private(path, depth - 1);
    }
    closedir(d);
}

/* Write PID into DIR/redis.pid (redis-server writes the same a moment later): until it does, a
 * process that takes the start lock after ours must see that a server runs on DIR. */
static void write_pidfile(const char *dir, pid_t pid)
{
    char path[PATH_MAX], text[32];
    if (path_in(path, sizeof path, dir, "redis.pid") < 0) return;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return;
    int n = snprintf(text, sizeof text, "%d\n", (int)pid);
    if (fileutil_write_all(fd, text, (size_t)n) < 0)
        log_warn("redis_embed: cannot write %s err=%s", path, strerror(errno));
    close(fd);
}

int redis_embed_start(const struct redis_embed_opts *o, struct redis_embed *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (err && errlen) err[0] = '\0';

    const char *bin_name = o->server_bin && *o->server_bin ? o->server_bin : "redis-server";
    const char *fsync = o->appendfsync && *o->appendfsync ? o->appendfsync : "everysec";
    int timeout_ms = o->start_timeout_ms > 0 ? o->start_timeout_ms : 5000;
    long long deadline = now_ms() + timeout_ms;

    if (!o->dir || !*o->dir) {
        errbuf_set(err, errlen, "no data dir given");
        return -1;
    }
    if (strcmp(fsync, "everysec") != 0 && strcmp(fsync, "always") != 0) {
        errbuf_set(err, errlen, "appendfsync must be everysec or always, not %s", fsync);
        return -1;
    }

    char dir[PATH_MAX], sock[PATH_MAX];
    if (resolve_dir(o->dir, dir, sizeof dir, err, errlen) < 0) return -1;
    size_t socklen = (size_t)snprintf(sock, sizeof sock, "%s/" SOCK_NAME, dir);
    if (socklen >= sizeof sock || socklen >= SUN_PATH_MAX || socklen >= sizeof out->socket_path) {
        errbuf_set(err, errlen,
                   "unix socket path is %zu bytes, the limit is %d: %s (use a shorter data dir)",
                   socklen, SUN_PATH_MAX - 1, sock);
        return -1;
    }

    int lockfd = lock_dir(dir, deadline, err, errlen);
    if (lockfd < 0) return -1;

    int rc = -1;
    pid_t pid = 0;
    enum probe p = probe(sock);
    /* BUSY is a server still loading its AOF (it answers -LOADING): wait for it, then join. */
    while (p == PROBE_BUSY && now_ms() < deadline) {
        sleep_ms(POLL_MS);
        p = probe(sock);
    }
    if (p == PROBE_BUSY) {
        errbuf_set(err, errlen, "something listens on %s but does not answer PING with PONG", sock);
        goto out;
    }
    if (p == PROBE_NONE) {
        /* Why: a second server on this dir would replace the socket and write the same AOF. */
        pid_t other = live_pidfile_server(dir);
        if (other > 0) {
            errbuf_set(err, errlen,
                       "redis-server pid=%d runs on %s but does not answer on %s; stop it first",
                       (int)other, dir, sock);
            goto out;
        }
        if (find_bin(bin_name, out->bin, sizeof out->bin, err, errlen) < 0) goto out;
        make_tree_private(dir, 2);
        pid = start_server(out->bin, dir, sock, fsync, deadline, err, errlen);
        if (pid < 0) goto out;
        out->owner = 1;
        out->started_ms = now_ms();
        memcpy(out->dir, dir, strlen(dir) + 1);             /* fits: shorter than the socket path */
        memcpy(out->appendfsync, fsync, strlen(fsync) + 1); /* "everysec" or "always" */
    }

    out->pid = pid;
    memcpy(out->socket_path, sock, socklen + 1);
    memcpy(out->url, "unix:", 5); /* fits: socklen < SUN_PATH_MAX < sizeof url - 5 */
    memcpy(out->url + 5, sock, socklen + 1);
    rc = 0;
    if (pid > 0)
        log_info("redis_embed: started redis-server pid=%d socket=%s appendfsync=%s", (int)pid,
                 sock, fsync);
    else log_info("redis_embed: joined running redis-server socket=%s", sock);
out:
    unlock_dir(lockfd);
    if (rc < 0) memset(out, 0, sizeof *out);
    return rc;
}

/* Set RE's next restart attempt after one more death (or failed restart) at NOW: the delay
 * doubles with each quick death in a row and starts again from the minimum once the server had
 * stayed up REDIS_EMBED_STABLE_MS. Returns the delay. */
static long long schedule_restart(struct redis_embed *re, long long now)
{
    if (now - re->started_ms >= REDIS_EMBED_STABLE_MS) re->quick_deaths = 0;
    long long delay = REDIS_EMBED_RESTART_MIN_MS;
    for (int i = 0; i < re->quick_deaths && delay < REDIS_EMBED_RESTART_MAX_MS; i++) delay *= 2;
    if (delay > REDIS_EMBED_RESTART_MAX_MS) delay = REDIS_EMBED_RESTART_MAX_MS;
    re->quick_deaths++;
    re->restart_at_ms = now + delay;
    return delay;
}

/* RE's server ended (HOW and STATUS as reaped() gives them): log it and schedule the restart. */
static void note_death(struct redis_embed *re, int how, int status)
{
    long long now = now_ms(), up = now - re->started_ms;
    char desc[64];
    describe_status(desc, sizeof desc, how, status);
    pid_t pid = re->pid;
    re->pid = 0;
    long long delay = schedule_restart(re, now);
    log_error("redis_embed: redis-server pid=%d died (%s) up_ms=%lld; restarting in %lld ms "
              "socket=%s",
              (int)pid, desc, up, delay, re->socket_path);
}

int redis_embed_stop(struct redis_embed *re, int timeout_ms)
{
    if (!re) return 0;
    re->owner = 0;
    re->restart_at_ms = 0;
    if (re->pid <= 0) return 0;
    pid_t pid = re->pid;
    re->pid = 0;

    long long t0 = now_ms();
    char desc[64];
    int r = terminate(pid, timeout_ms, desc, sizeof desc);
    long long ms = now_ms() - t0;
    if (r == 0) {
        log_info("redis_embed: stopped redis-server pid=%d ms=%lld", (int)pid, ms);
        return 0;
    }
    if (r == 2)
        log_warn("redis_embed: redis-server ignored SIGTERM, killed pid=%d timeout_ms=%d", (int)pid,
                 timeout_ms);
    else
        log_warn("redis_embed: redis-server exited badly on SIGTERM pid=%d status=%s ms=%lld",
                 (int)pid, desc, ms);
    return -1;
}

const char *redis_embed_for(const struct conf_redis *r, struct redis_embed *re, char *err,
                            size_t errlen)
{
    memset(re, 0, sizeof *re);
    if (strcmp(r->url, "embedded") != 0) return r->url;
    struct redis_embed_opts o = {.server_bin = r->server_bin,
                                 .dir = r->dir,
                                 .appendfsync = r->appendfsync,
                                 .start_timeout_ms = 10000};
    if (redis_embed_start(&o, re, err, errlen) < 0) return NULL;
    return re->url;
}

/* Start RE's server again on its dir, AOF and socket, without waiting for it to answer. */
static void restart(struct redis_embed *re)
{
    char err[512];
    long long now = now_ms();
    /* The lock is only tried: a process holding it is starting a server on this dir itself. */
    int lockfd = lock_dir(re->dir, now, err, sizeof err);
    if (lockfd < 0) {
        re->restart_at_ms = now + REDIS_EMBED_RESTART_MIN_MS;
        return;
    }
    enum probe p = probe(re->socket_path);
    pid_t other = p == PROBE_NONE ? live_pidfile_server(re->dir) : 0;
    if (p != PROBE_NONE || other > 0) {
        /* Someone found the socket silent and started a server first: two on one AOF would
         * corrupt it, so this one is joined and whoever started it owns it. */
        log_warn("redis_embed: another redis-server serves socket=%s pid=%d; joining it, no "
                 "longer its owner",
                 re->socket_path, (int)other);
        re->owner = 0;
        re->restart_at_ms = 0;
        unlock_dir(lockfd);
        return;
    }
    make_tree_private(re->dir, 2);
    pid_t pid = spawn_server(re->bin, re->dir, re->socket_path, re->appendfsync, err, sizeof err);
    if (pid < 0) {
        re->started_ms = now; /* a start that died at once: the delay keeps growing */
        long long delay = schedule_restart(re, now);
        log_error("redis_embed: restart failed: %s; retrying in %lld ms", err, delay);
    } else {
        write_pidfile(re->dir, pid);
        re->pid = pid;
        re->started_ms = now;
        re->restart_at_ms = 0;
        re->restarts++;
        log_warn("redis_embed: restarted redis-server pid=%d restarts=%u socket=%s appendfsync=%s",
                 (int)pid, re->restarts, re->socket_path, re->appendfsync);
    }
    unlock_dir(lockfd);
}

int redis_embed_tick(struct redis_embed *re)
{
    if (!re || !re->owner) return 0;
    if (re->pid > 0) {
        int status = 0, how = reaped(re->pid, &status);
        if (how == 0) return 0;
        note_death(re, how, status);
    }
    if (re->restart_at_ms && now_ms() >= re->restart_at_ms) restart(re);
    return re->owner && re->pid <= 0;
}

int redis_embed_reaped(struct redis_embed *re, pid_t pid, int status)
{
    if (!re || !re->owner || pid <= 0 || pid != re->pid) return 0;
    note_death(re, 1, status);
    return 1;
}
