/* spool.c: see spool.h. */
#include "spool.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "antre/fileutil.h"
#include "antre/job.h"
#include "antre/keys.h"
#include "antre/log.h"
#include "antre/lua_scripts.h"
#include "antre/script.h"
#include "gateway.h"
#include "syncer.h"

static int uploads_now;
static uint64_t bytes_now;
static struct script intake_script;

int spool_budget_take(struct gw *gw, uint64_t bytes)
{
    const struct conf_upload *u = &gw->conf.upload;
    if (uploads_now >= u->max_concurrent || bytes_now + bytes > (uint64_t)u->spool_max_bytes) {
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

#define SPOOL_BUF (64 * 1024)

struct spool {
    int fd;
    uint64_t size; /* bytes written, buffered ones included */
    int buffered;  /* spool_buffer() was called */
    char *buf;     /* small pieces are gathered into 64 KB writes */
    size_t blen;
    char path[CONF_STR + 80];
};

/* fileutil_write_all, and the one log line of a failed spool write. */
static int write_all(struct spool *s, const char *p, size_t len)
{
    if (fileutil_write_all(s->fd, p, len) == 0) return 0;
    log_error("spool: write failed path=%s err=%s", s->path, strerror(errno));
    return -1;
}

static int flush_buf(struct spool *s)
{
    int rc = s->blen ? write_all(s, s->buf, s->blen) : 0;
    s->blen = 0;
    return rc;
}

static void spool_release(struct spool *s)
{
    close(s->fd);
    free(s->buf);
    free(s);
}

struct spool *spool_open(struct gw *gw, const char *name, int append, char *err, size_t errlen)
{
    const char *dir = gw->conf.upload.spool_dir;
    if (strchr(name, '/') || name[0] == '.') {
        snprintf(err, errlen, "bad spool name");
        return NULL;
    }
    if (fileutil_mkdir_p(dir, 0700, err, errlen) < 0) return NULL;
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
    /* Bodies arrive in pieces of a few KB; one write(2) each would cost more than the copy. */
    s->size += len;
    if (!s->buffered) return write_all(s, data, len);
    if (s->blen + len > SPOOL_BUF && flush_buf(s) < 0) return -1;
    if (len >= SPOOL_BUF) return write_all(s, data, len);
    if (!s->buf && !(s->buf = malloc(SPOOL_BUF))) abort();
    memcpy(s->buf + s->blen, data, len);
    s->blen += len;
    return 0;
}

uint64_t spool_size(const struct spool *s) { return s->size; }

void spool_buffer(struct spool *s) { s->buffered = 1; }

const char *spool_path(const struct spool *s) { return s->path; }

int spool_finish(struct spool *s)
{
    int rc = flush_buf(s);
    if (rc == 0 && (rc = fsync(s->fd)) < 0)
        log_error("spool: fsync failed path=%s err=%s", s->path, strerror(errno));
    if (rc < 0) unlink(s->path);
    spool_release(s);
    return rc < 0 ? -1 : 0;
}

/* ---- fsync off the loop -------------------------------------------------------------------
 * The fsync runs on one of the process's sync threads (syncer.h); the file is closed and DONE
 * called back on the loop. */

struct sync_wait {
    struct spool *s;
    void (*done)(void *arg, int rc);
    void *arg;
};

static void on_synced(void *arg, int err)
{
    struct sync_wait *w = arg;
    struct spool *s = w->s;
    if (err) {
        log_error("spool: fsync failed path=%s err=%s", s->path, strerror(err));
        unlink(s->path);
    }
    spool_release(s);
    w->done(w->arg, err ? -1 : 0);
    free(w);
}

void spool_finish_async(struct gw *gw, struct spool *s, void (*done)(void *arg, int rc), void *arg)
{
    struct sync_wait *w = malloc(sizeof *w);
    if (!w) abort();
    *w = (struct sync_wait){s, done, arg};
    if (flush_buf(s) < 0 || syncer_submit(gw, s->fd, on_synced, w) < 0) {
        free(w);
        unlink(s->path);
        spool_release(s);
        done(arg, -1);
    }
}

void spool_close(struct spool *s)
{
    flush_buf(s);
    spool_release(s);
}

void spool_discard(struct spool *s)
{
    unlink(s->path);
    spool_release(s);
}

int spool_enqueue(struct gw *gw, const char *upload_id, const char *reg_id, const char *owner,
                  const char *kind, const char *path, uint64_t bytes, const char *content_type,
                  rconn_cb *cb, void *arg)
{
    if (!intake_script.src) script_init(&intake_script, lua_intake);
    /* The stream entry is the job contract's (job.h); the record holds the rest. */
    struct job job = {.queue = JOB_UPLOAD};
    snprintf(job.upload_id, sizeof job.upload_id, "%s", upload_id);
    snprintf(job.registration_id, sizeof job.registration_id, "%s", reg_id);
    snprintf(job.kind, sizeof job.kind, "%s", kind);
    char njob[4], err[128];
    const char *jobv[JOB_ARGV_MAX];
    int nj = job_argv(&job, njob, jobv, err, sizeof err);
    if (nj < 0) {
        log_error("spool: %s", err);
        return -1;
    }
    char kupl[KEYS_MAX], kreg[KEYS_MAX], kstream[KEYS_MAX], nbytes[24], now[24];
    keys_upload(kupl, upload_id);
    keys_registration(kreg, reg_id);
    job_stream_key(kstream, JOB_UPLOAD);
    snprintf(nbytes, sizeof nbytes, "%llu", (unsigned long long)bytes);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(now, sizeof now, "%lld", (long long)tv.tv_sec);
    const char *keys[3] = {kupl, kreg, kstream};
    const char *args[5 + JOB_ARGV_MAX + 12] = {"upload", upload_id, reg_id, kind, owner};
    int n = 5;
    for (int i = 0; i < nj; i++) args[n++] = jobv[i];
    const char *rec[] = {"registration_id", reg_id, "kind",         kind,         "path",      path,
                         "bytes",           nbytes, "content_type", content_type, "queued_at", now};
    for (size_t i = 0; i < sizeof rec / sizeof rec[0]; i++) args[n++] = rec[i];
    return script_call(gw->redis, &intake_script, cb, arg, 3, keys, n, args);
}
