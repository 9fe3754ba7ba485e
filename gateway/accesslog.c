/* accesslog.c: see accesslog.h. */
#include "accesslog.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "antre/log.h"

#define AL_BUF 65536
#define AL_FLUSH_AT (AL_BUF - 1024)

struct accesslog {
    char path[256];
    int fd;
    int own_fd;
    struct event *timer;
    size_t len;
    char stamp[32];
    time_t stamp_sec;
    char buf[AL_BUF];
};

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    accesslog_flush(arg);
}

static int open_file(struct accesslog *al, char *err, size_t errlen)
{
    if (strcmp(al->path, "-") == 0) {
        al->fd = STDERR_FILENO;
        al->own_fd = 0;
        return 0;
    }
    int fd = open(al->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open access log %s: %s", al->path, strerror(errno));
        return -1;
    }
    al->fd = fd;
    al->own_fd = 1;
    return 0;
}

struct accesslog *accesslog_new(struct event_base *base, const char *path, char *err, size_t errlen)
{
    struct accesslog *al = calloc(1, sizeof *al);
    if (!al) abort();
    snprintf(al->path, sizeof al->path, "%s", path);
    if (open_file(al, err, errlen) < 0) {
        free(al);
        return NULL;
    }
    struct timeval sec = {1, 0};
    al->timer = event_new(base, -1, EV_PERSIST, on_timer, al);
    event_add(al->timer, &sec);
    return al;
}

void accesslog_flush(struct accesslog *al)
{
    size_t off = 0;
    while (off < al->len) {
        ssize_t w = write(al->fd, al->buf + off, al->len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            log_warn("accesslog: write failed path=%s err=%s; %zu bytes dropped", al->path,
                     strerror(errno), al->len - off);
            break;
        }
        off += (size_t)w;
    }
    al->len = 0;
}

int accesslog_reopen(struct accesslog *al)
{
    accesslog_flush(al);
    int old = al->fd, own = al->own_fd;
    char err[300];
    if (open_file(al, err, sizeof err) < 0) {
        log_warn("accesslog: %s; keeping the old file", err);
        al->fd = old;
        al->own_fd = own;
        return -1;
    }
    if (own) close(old);
    return 0;
}

void accesslog_free(struct accesslog *al)
{
    if (!al) return;
    accesslog_flush(al);
    event_free(al->timer);
    if (al->own_fd) close(al->fd);
    free(al);
}

void accesslog_write(struct accesslog *al, const char *client, const char *method, const char *path,
                     size_t pathlen, int status, uint64_t usec, const char *reqid)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (tv.tv_sec != al->stamp_sec) {
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        strftime(al->stamp, sizeof al->stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
        al->stamp_sec = tv.tv_sec;
    }
    if (pathlen > 512) pathlen = 512;
    if (al->len > AL_FLUSH_AT) accesslog_flush(al);
    /* Paths are printed with %.*s but may hold any byte: replace what would break the line. */
    char safe[513];
    for (size_t i = 0; i < pathlen; i++) {
        unsigned char ch = (unsigned char)path[i];
        safe[i] = (ch < 0x21 || ch == '"' || ch == '\\' || ch >= 0x7f) ? '?' : (char)ch;
    }
    int n = snprintf(al->buf + al->len, AL_BUF - al->len, "%s %s \"%s %.*s\" %d %.6f %s\n", client,
                     al->stamp, method, (int)pathlen, safe, status, (double)usec / 1e6, reqid);
    if (n > 0 && al->len + (size_t)n < AL_BUF) al->len += (size_t)n;
}
