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
static struct script spool_lua;

int spool_slot_take(struct gw *gw)
{
    if (!spool_slot_free(gw)) return -1;
    uploads_now++;
    return 0;
}

void spool_slot_release(struct gw *gw)
{
    (void)gw;
    if (uploads_now > 0) uploads_now--;
}

int spool_slot_free(struct gw *gw) { return uploads_now < gw->conf.upload.max_concurrent; }

int64_t spool_lease_ms(struct gw *gw, uint64_t bytes)
{
    const struct conf_gateway *g = &gw->conf.gateway;
    int64_t ms = g->body_total_timeout_ms + 10000 + gw->conf.redis.timeout_ms;
    if (g->body_min_rate > 0) ms += (int64_t)(bytes * 1000 / (uint64_t)g->body_min_rate);
    return ms;
}

int spool_script(struct gw *gw, rconn_cb *cb, void *arg, int nkeys, const char *const *keys,
                 int nargs, const char *const *args)
{
    if (!spool_lua.src) script_init(&spool_lua, lua_spool);
    char kbytes[KEYS_MAX], kleases[KEYS_MAX];
    keys_spool_bytes(kbytes);
    keys_spool_leases(kleases);
    const char *all[8] = {kbytes, kleases};
    if (nkeys > 6) abort();
    for (int i = 0; i < nkeys; i++) all[2 + i] = keys[i];
    return script_call(gw->redis, &spool_lua, cb, arg, 2 + nkeys, all, nargs, args);
}

int spool_reserve(struct gw *gw, const char *upload_id, const char *reg_id, const char *owner,
                  int marked, int64_t bytes, rconn_cb *cb, void *arg)
{
    char kreg[KEYS_MAX], nbytes[24] = "", limit[24], lease[24];
    keys_registration(kreg, reg_id);
    if (bytes >= 0) snprintf(nbytes, sizeof nbytes, "%lld", (long long)bytes);
    snprintf(limit, sizeof limit, "%lld", (long long)gw->conf.upload.spool_max_bytes);
    snprintf(lease, sizeof lease, "%lld",
             (long long)spool_lease_ms(gw, bytes > 0 ? (uint64_t)bytes : 0));
    const char *keys[] = {kreg};
    const char *args[] = {"reserve", upload_id, owner, marked ? "1" : "0", nbytes, limit, lease};
    return spool_script(gw, cb, arg, 1, keys, 7, args);
}

const char *spool_reply_word(const redisReply *r, const char *err)
{
    if (err || !r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return NULL;
    return r->element[0]->str;
}

static void unreserved(void *arg, const redisReply *r, const char *err)
{
    char *id = arg;
    if (err || !r || r->type == REDIS_REPLY_ERROR)
        log_warn("spool: bytes not given back (the lease lapses) upload=%s err=%s", id,
                 err           ? err
                 : r && r->str ? r->str
                               : "?");
    free(id);
}

void spool_unreserve(struct gw *gw, const char *upload_id)
{
    char *id = strdup(upload_id);
    if (!id) abort();
    const char *args[] = {"release", upload_id};
    if (spool_script(gw, unreserved, id, 0, NULL, 2, args) < 0) unreserved(id, NULL, "refused");
}

void spool_unlink(struct gw *gw, const char *path)
{
    const char *dir = gw->conf.upload.spool_dir;
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') dl--;
    if (strncmp(path, dir, dl) != 0 || path[dl] != '/') return;
    const char *name = path + dl + 1;
    if (!name[0] || strchr(name, '/') || name[0] == '.') return;
    if (unlink(path) < 0 && errno != ENOENT)
        log_warn("spool: cannot remove path=%s err=%s", path, strerror(errno));
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
    struct spool *s = calloc(1, sizeof *s);
    if (!s) abort();
    snprintf(s->path, sizeof s->path, "%s/%s", dir, name);
    int flags = O_WRONLY | O_CLOEXEC | (append ? O_APPEND : O_CREAT | O_EXCL);
    s->fd = open(s->path, flags, 0600);
    if (s->fd < 0 && errno == ENOENT && !append) {
        /* The directory is made by the first upload, and again if it was removed since: not
         * on every upload (a mkdir -p is a stat and a mkdir per path component). */
        if (fileutil_mkdir_p(dir, 0700, err, errlen) < 0) {
            free(s);
            return NULL;
        }
        s->fd = open(s->path, flags, 0600);
    }
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
                  const char *fence, rconn_cb *cb, void *arg)
{
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
    char kupl[KEYS_MAX], kreg[KEYS_MAX], kstream[KEYS_MAX], ksess[KEYS_MAX], nbytes[24], now[24];
    keys_upload(kupl, upload_id);
    keys_registration(kreg, reg_id);
    job_stream_key(kstream, JOB_UPLOAD);
    keys_tus_session(ksess, owner);
    snprintf(nbytes, sizeof nbytes, "%llu", (unsigned long long)bytes);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(now, sizeof now, "%lld", (long long)tv.tv_sec);
    const char *keys[4] = {kupl, kreg, kstream, ksess};
    const char *args[6 + JOB_ARGV_MAX + 12] = {"commit", upload_id, kind, owner, nbytes, fence};
    int n = 6;
    for (int i = 0; i < nj; i++) args[n++] = jobv[i];
    const char *rec[] = {"registration_id", reg_id, "kind",         kind,         "path",      path,
                         "bytes",           nbytes, "content_type", content_type, "queued_at", now};
    for (size_t i = 0; i < sizeof rec / sizeof rec[0]; i++) args[n++] = rec[i];
    return spool_script(gw, cb, arg, 4, keys, n, args);
}

const char *spool_enqueue_outcome(const redisReply *reply, const char *err)
{
    const char *w = spool_reply_word(reply, err);
    static const char *const known[] = {"ok", "queued", "superseded", "not_owner"};
    for (size_t i = 0; w && i < sizeof known / sizeof known[0]; i++)
        if (strcmp(w, known[i]) == 0) return known[i];
    return NULL;
}

void spool_enqueued_cleanup(struct gw *gw, const redisReply *reply)
{
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[1]->type == REDIS_REPLY_STRING && reply->element[1]->len > 0) {
        log_info("spool: superseded file removed path=%s", reply->element[1]->str);
        spool_unlink(gw, reply->element[1]->str);
    }
}
