/* spool.c: see spool.h. */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "antre/keys.h"
#include "antre/log.h"
#include "antre/lua_scripts.h"
#include "antre/script.h"
#include "gateway.h"
#include "metrics.h"

static int uploads_now;
static uint64_t bytes_now;
static struct script intake_script;

int spool_budget_take(struct gw *gw, uint64_t bytes)
{
    const struct conf_upload *u = &gw->conf.upload;
    if (uploads_now >= u->max_concurrent || bytes_now + bytes > (uint64_t)u->spool_max_bytes) {
        metrics_refusal(gw->metrics, REFUSE_UPLOAD_BUDGET);
        return -1;
    }
    uploads_now++;
    bytes_now += bytes;
    return 0;
}

void spool_budget_release(struct gw *gw, uint64_t bytes)
{
    (void)gw;
    if (uploads_now > 0) uploads_now--;
    bytes_now = bytes_now > bytes ? bytes_now - bytes : 0;
}

void spool_budget_usage(int *uploads, uint64_t *bytes)
{
    *uploads = uploads_now;
    *bytes = bytes_now;
}

struct spool {
    int fd;
    uint64_t size;
    char path[CONF_STR + 80];
};

/* Make DIR and its parents (mode 0700). */
static int make_dirs(const char *dir)
{
    char p[CONF_STR];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0700) < 0 && errno != EEXIST) return -1;
        *s = '/';
    }
    return mkdir(p, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

struct spool *spool_open(struct gw *gw, const char *name, int append, char *err, size_t errlen)
{
    const char *dir = gw->conf.upload.spool_dir;
    if (strchr(name, '/') || name[0] == '.') {
        snprintf(err, errlen, "bad spool name");
        return NULL;
    }
    if (make_dirs(dir) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    struct spool *s = calloc(1, sizeof *s);
    if (!s) abort();
    snprintf(s->path, sizeof s->path, "%s/%s", dir, name);
    int flags = O_WRONLY | O_CLOEXEC | (append ? O_APPEND : O_CREAT | O_EXCL);
    s->fd = open(s->path, flags, 0600);
    if (s->fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", s->path, strerror(errno));
        free(s);
        return NULL;
    }
    struct stat st;
    s->size = fstat(s->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    return s;
}

int spool_write(struct spool *s, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t w = write(s->fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            log_error("spool: write failed path=%s err=%s", s->path, strerror(errno));
            return -1;
        }
        p += w;
        len -= (size_t)w;
        s->size += (uint64_t)w;
    }
    return 0;
}

uint64_t spool_size(const struct spool *s) { return s->size; }

const char *spool_path(const struct spool *s) { return s->path; }

int spool_finish(struct spool *s)
{
    /* The one blocking call the gateway allows itself on the loop: a 202 promises the bytes
     * are on disk. */
    int rc = fsync(s->fd);
    if (rc < 0) log_error("spool: fsync failed path=%s err=%s", s->path, strerror(errno));
    close(s->fd);
    if (rc < 0) unlink(s->path);
    free(s);
    return rc < 0 ? -1 : 0;
}

void spool_close(struct spool *s)
{
    close(s->fd);
    free(s);
}

void spool_discard(struct spool *s)
{
    close(s->fd);
    unlink(s->path);
    free(s);
}

int spool_enqueue(struct gw *gw, const char *upload_id, const char *reg_id, const char *kind,
                  const char *path, uint64_t bytes, const char *content_type, rconn_cb *cb,
                  void *arg)
{
    if (!intake_script.src) script_init(&intake_script, lua_intake);
    char kupl[KEYS_MAX], kreg[KEYS_MAX], kstream[KEYS_MAX], nbytes[24], now[24];
    keys_upload(kupl, upload_id);
    keys_registration(kreg, reg_id);
    keys_stream(kstream, KEYS_STREAM_UPLOAD);
    snprintf(nbytes, sizeof nbytes, "%llu", (unsigned long long)bytes);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(now, sizeof now, "%lld", (long long)tv.tv_sec);
    const char *keys[3] = {kupl, kreg, kstream};
    const char *args[] = {"upload", upload_id, reg_id, kind,
                          "registration_id", reg_id, "kind", kind, "path", path,
                          "bytes", nbytes, "content_type", content_type, "queued_at", now};
    return script_call(gw->redis, &intake_script, cb, arg, 3, keys,
                       (int)(sizeof args / sizeof args[0]), args);
}
