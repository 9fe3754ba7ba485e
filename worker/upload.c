/* upload.c: the upload queue's handler: one uploaded photo checked, stored and its verdict
 * recorded.
 *
 * A job's life, all on the loop thread except step 2:
 *   1. HGETALL the upload record (written by common/lua/spool.lua 'commit': registration_id,
 *      kind, path, bytes, content_type, state). A path that is not a file directly in [upload]
 *      spool_dir is never read nor deleted: the job is dead-lettered at once. Already accepted
 *      or rejected (a redelivery of a job whose verdict was recorded before its acknowledgement
 *      was lost), or superseded (the applicant sent the same document again before this one
 *      was checked: the gateway removed its file): the spool file is removed if still there,
 *      its bytes given back, and the job is done without checking anything. No record: a
 *      retryable failure (it ends in the dead-letter stream after max_attempts).
 *   2. photo_process (worker/photo.h) on the thread pool (worker/pool.c), with the [upload] rules
 *      of the live configuration at that moment. A spool file that is gone is a verdict
 *      (rejected, missing_file: upload again), not an error; any other failure to judge the
 *      photo (full disk, libvips) is retried with its error.
 *   3. common/lua/upload.lua 'record' writes the verdict, only while the record is still
 *      'processing' and still the registration's current document of that kind: a second
 *      delivery running at the same time, or an upload the applicant has since replaced,
 *      changes nothing. The stored JPEG is content-addressed, so a photo checked twice is still
 *      stored once.
 *   4. Only then is the spool file deleted, its bytes given back to the spool budget that the
 *      gateways share (common/lua/spool.lua 'release': the upload's entry is removed once,
 *      however often it is asked), and the job acknowledged. A worker that dies between any two
 *      steps leaves the entry pending; the next delivery finds either a processing record and
 *      the spool file (steps 2-4 again) or a final record (step 1, which removes and releases
 *      again: a no-op when done before).
 * When the drain after SIGTERM times out, the pool is stopped before any verdict of a running
 * job reaches step 3, so no record is marked final by a job that is then left pending. */
#include "upload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

#include "antre/clock.h"
#include "antre/keys.h"
#include "antre/log.h"
#include "antre/lua_scripts.h"
#include "antre/script.h"

#define PATH_MAX_LEN 4096

struct upload {
    struct rconn *rc;
    struct pool *pool;
    const struct conf *conf;
    struct upload_stats *stats;
};

/* One job on its way: what the thread needs is copied in, so a reload on the loop thread never
 * changes it under the thread's feet. */
struct upload_job {
    struct upload *u;
    struct queue_job *qj;
    enum photo_kind kind;
    char path[PATH_MAX_LEN];
    char store_dir[CONF_STR];
    struct photo_opts opts;
    /* Written by the pool thread, read on the loop thread after its DONE. */
    int rc;
    int missing; /* the spool file is gone */
    struct photo_result res;
    char err[512];
};

static struct script upload_script, spool_script;

static const char *const decision_reasons[UPLOAD_DECISIONS] =
    {"none",    "unsupported_type", "too_many_pixels", "too_small",
     "corrupt", "blurry",           "missing_file",    "other"};

static const char hint_missing_id[] =
    "File foto tidak ditemukan di server kami. Unggah foto Anda lagi.";
static const char hint_missing_en[] = "We could not find your photo file on our side. Please "
                                      "upload it again.";

const char *upload_decision_name(int i, const char **state)
{
    if (i < 0 || i >= UPLOAD_DECISIONS) return NULL;
    *state = i == 0 ? "accepted" : "rejected";
    return decision_reasons[i];
}

void upload_thread_exit(void) { vips_thread_shutdown(); }

struct upload *upload_new(struct rconn *rc, struct pool *pool, const struct conf *conf,
                          struct upload_stats *stats)
{
    if (!upload_script.src) script_init(&upload_script, lua_upload);
    if (!spool_script.src) script_init(&spool_script, lua_spool);
    struct upload *u = calloc(1, sizeof *u);
    if (!u) abort();
    u->rc = rc;
    u->pool = pool;
    u->conf = conf;
    u->stats = stats;
    return u;
}

void upload_free(struct upload *u) { free(u); }

/* Remove the spool file of a job whose verdict is recorded; one that is gone already is fine. */
static void remove_spool(const char *path)
{
    if (path[0] && unlink(path) < 0 && errno != ENOENT)
        log_warn("upload: cannot remove the spool file path=%s err=%s", path, strerror(errno));
}

static void finish(struct upload_job *j, enum queue_outcome o, const char *why)
{
    queue_done(j->qj, o, why);
    free(j);
}

static void retry_redis(struct upload_job *j, const redisReply *r, const char *err);

static void on_released(void *arg, const redisReply *r, const char *err)
{
    struct upload_job *j = arg;
    if (err || !r || r->type == REDIS_REPLY_ERROR) {
        /* The next delivery finds the record final and asks again. */
        retry_redis(j, r, err);
        return;
    }
    finish(j, QUEUE_DONE, NULL);
}

/* The verdict is recorded (or none was needed): remove the spool file, give its bytes back to
 * the spool budget, and finish the job. */
static void done_with_file(struct upload_job *j)
{
    remove_spool(j->path);
    char kbytes[KEYS_MAX], kleases[KEYS_MAX];
    keys_spool_bytes(kbytes);
    keys_spool_leases(kleases);
    const char *keys[] = {kbytes, kleases};
    const char *args[] = {"release", j->qj->job.upload_id};
    if (script_call(j->u->rc, &spool_script, on_released, j, 2, keys, 2, args) < 0)
        finish(j, QUEUE_RETRY, "redis: not connected");
}

/* Retry J after a Redis failure: ERR from the connection, or R an error or unexpected reply. */
static void retry_redis(struct upload_job *j, const redisReply *r, const char *err)
{
    char why[300];
    snprintf(why, sizeof why, "redis: %s",
             err                                 ? err
             : r && r->type == REDIS_REPLY_ERROR ? r->str
                                                 : "unexpected reply");
    finish(j, QUEUE_RETRY, why);
}

static void count(struct upload *u, const struct photo_result *r)
{
    int i = UPLOAD_DECISIONS - 1;
    if (r->state == PHOTO_ACCEPTED) i = 0;
    else
        for (int k = 1; k < UPLOAD_DECISIONS - 1; k++)
            if (r->reason && !strcmp(r->reason, decision_reasons[k])) i = k;
    u->stats->decisions[i]++;
    for (int k = 0; k < PHOTO_WARN__COUNT; k++)
        if (r->quality.warnings & (1u << k)) u->stats->warnings[k]++;
}

static void on_recorded(void *arg, const redisReply *r, const char *err)
{
    struct upload_job *j = arg;
    if (err || !r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        retry_redis(j, r, err);
        return;
    }
    const char *what = r->element[0]->str;
    if (!strcmp(what, "recorded")) {
        count(j->u, &j->res);
        log_info("upload: recorded upload=%s state=%s reason=%s bytes_stored=%lld",
                 j->qj->job.upload_id, j->res.state == PHOTO_ACCEPTED ? "accepted" : "rejected",
                 j->res.reason ? j->res.reason : "none", (long long)j->res.bytes_stored);
    } else {
        log_info("upload: verdict not recorded (%s) upload=%s", what, j->qj->job.upload_id);
    }
    done_with_file(j);
}

/* The quality measures as compact JSON into BUF. */
static void quality_json(const struct photo_quality *q, char *buf, size_t len)
{
    int n = snprintf(buf, len,
                     "{\"sharpness\":%.1f,\"brightness\":%.1f,\"aspect\":%.3f,"
                     "\"warnings\":[",
                     q->sharpness, q->brightness, q->aspect);
    int first = 1;
    for (int k = 0; k < PHOTO_WARN__COUNT && n > 0 && (size_t)n < len; k++)
        if (q->warnings & (1u << k)) {
            n += snprintf(buf + n, len - (size_t)n, "%s\"%s\"", first ? "" : ",",
                          photo_warning_name(1u << k));
            first = 0;
        }
    if (n > 0 && (size_t)n < len) snprintf(buf + n, len - (size_t)n, "]}");
}

static void record(struct upload_job *j)
{
    struct photo_result *r = &j->res;
    char kupl[KEYS_MAX], kreg[KEYS_MAX], width[16], height[16], bytes[24], now[24], quality[256];
    keys_upload(kupl, j->qj->job.upload_id);
    keys_registration(kreg, j->qj->job.registration_id);
    snprintf(width, sizeof width, "%d", r->width);
    snprintf(height, sizeof height, "%d", r->height);
    snprintf(bytes, sizeof bytes, "%lld", (long long)r->bytes_stored);
    snprintf(now, sizeof now, "%lld", (long long)clock_wall_ms());
    const char *args[32] = {"record", j->qj->job.upload_id, j->qj->job.kind};
    int n = 3;
#define PAIR(name, value)                                                                          \
    do {                                                                                           \
        args[n++] = (name);                                                                        \
        args[n++] = (value);                                                                       \
    } while (0)
    PAIR("state", r->state == PHOTO_ACCEPTED ? "accepted" : "rejected");
    if (r->reason) PAIR("reason", r->reason);
    if (r->hint_id) PAIR("hint_id", r->hint_id);
    if (r->hint_en) PAIR("hint_en", r->hint_en);
    if (r->state == PHOTO_ACCEPTED) {
        PAIR("sha256", r->sha256);
        PAIR("bytes_stored", bytes);
    }
    if (r->width > 0) {
        PAIR("width", width);
        PAIR("height", height);
    }
    if (r->quality.aspect > 0) { /* measured: the photo was decoded */
        quality_json(&r->quality, quality, sizeof quality);
        PAIR("quality", quality);
    }
    PAIR("processed_at", now);
#undef PAIR
    const char *keys[] = {kupl, kreg};
    if (script_call(j->u->rc, &upload_script, on_recorded, j, 2, keys, n, args) < 0)
        finish(j, QUEUE_RETRY, "redis: not connected");
}

/* On a pool thread. */
static void work(void *arg)
{
    struct upload_job *j = arg;
    j->rc = photo_process(&j->opts, j->path, j->kind, &j->res, j->err, sizeof j->err);
    struct stat st;
    if (j->rc < 0 && stat(j->path, &st) < 0 && errno == ENOENT) j->missing = 1;
}

static void on_checked(void *arg, enum pool_status st)
{
    struct upload_job *j = arg;
    if (st == POOL_CANCELLED) {
        /* Shutting down: the entry stays pending (queue_done acknowledges nothing now). */
        finish(j, QUEUE_RETRY, "worker stopped before the photo was checked");
        return;
    }
    if (j->missing) {
        memset(&j->res, 0, sizeof j->res);
        j->res.state = PHOTO_REJECTED;
        j->res.reason = "missing_file";
        j->res.hint_id = hint_missing_id;
        j->res.hint_en = hint_missing_en;
    } else if (j->rc < 0) {
        log_warn("upload: cannot check the photo; retrying upload=%s attempt=%d err=%s",
                 j->qj->job.upload_id, j->qj->attempts, j->err);
        finish(j, QUEUE_RETRY, j->err);
        return;
    }
    record(j);
}

/* The value of field NAME in the HGETALL reply R, or NULL. */
static const redisReply *hfield(const redisReply *r, const char *name)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && !strcmp(r->element[i]->str, name) &&
            r->element[i + 1]->type == REDIS_REPLY_STRING)
            return r->element[i + 1];
    return NULL;
}

/* 1 when PATH names a file directly inside DIR (the configured spool directory, as the gateway
 * spells it in the record): DIR, one slash, then a name with no slash that is not "." or "..". */
static int in_spool_dir(const char *dir, const char *path)
{
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') dl--;
    if (strncmp(path, dir, dl) != 0 || path[dl] != '/') return 0;
    const char *name = path + dl + 1;
    return name[0] && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..");
}

static void on_record_read(void *arg, const redisReply *r, const char *err)
{
    struct upload_job *j = arg;
    if (err || !r || r->type != REDIS_REPLY_ARRAY) {
        retry_redis(j, r, err);
        return;
    }
    if (r->elements == 0) {
        finish(j, QUEUE_RETRY, "upload record not found");
        return;
    }
    const redisReply *state = hfield(r, "state"), *path = hfield(r, "path");
    if (!path || path->len == 0 || path->len >= sizeof j->path) {
        finish(j, QUEUE_PERMANENT, "upload record has no usable path");
        return;
    }
    memcpy(j->path, path->str, path->len);
    j->path[path->len] = '\0';
    if (!in_spool_dir(j->u->conf->upload.spool_dir, j->path)) {
        /* Never read or delete a file the gateway could not have written: a record naming
         * another place is damaged or forged. */
        log_error("upload: record names a file outside [upload] spool_dir; not touched "
                  "upload=%s",
                  j->qj->job.upload_id);
        finish(j, QUEUE_PERMANENT, "upload record's path is outside [upload] spool_dir");
        return;
    }
    if (state && (!strcmp(state->str, "accepted") || !strcmp(state->str, "rejected") ||
                  !strcmp(state->str, "superseded"))) {
        done_with_file(j);
        return;
    }
    /* The rules of the configuration as it is now; the thread gets its own copy of the one
     * string it borrows. */
    photo_opts_from_conf(&j->opts, j->u->conf);
    snprintf(j->store_dir, sizeof j->store_dir, "%s", j->opts.store_dir);
    j->opts.store_dir = j->store_dir;
    if (pool_submit(j->u->pool, work, on_checked, j) < 0)
        finish(j, QUEUE_RETRY, "photo pool full or stopped");
}

void upload_handle(void *ctx, struct queue_job *qj)
{
    struct upload *u = ctx;
    struct upload_job *j = calloc(1, sizeof *j);
    if (!j) abort();
    j->u = u;
    j->qj = qj;
    j->kind = !strcmp(qj->job.kind, "selfie") ? PHOTO_SELFIE : PHOTO_KTP;
    char key[KEYS_MAX];
    keys_upload(key, qj->job.upload_id);
    if (rconn_command(u->rc, on_record_read, j, "HGETALL %s", key) < 0)
        finish(j, QUEUE_RETRY, "redis: not connected");
}
