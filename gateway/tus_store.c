/* tus_store.c: the storage of resumable uploads (tus.c speaks the protocol).
 *
 * Where things live. An upload ID that is still receiving has two files in [upload] spool_dir:
 *   tus-ID       the bytes received so far, appended to; its size IS the upload's offset;
 *   tus-ID.info  what a PATCH must know before reading a body (Upload-Length, registration,
 *                kind, expiry, metadata), as JSON, so a chunk is checked and streamed to disk
 *                without waiting on Redis;
 * and a record in Redis (keys_upload: state receiving, protocol tus, length, ...) for the
 * status route. When the last byte is in, the file is fsynced and the same job as a single-shot
 * upload is queued (spool_enqueue: record -> processing, the registration's pointer, the
 * `upload` stream entry). Only once Redis confirmed that is tus-ID.info removed and the PATCH
 * answered 204. So "tus-ID.info exists" means "receiving, or complete but not yet queued"; an
 * upload left complete but unqueued (Redis failed at the last step, or the connection dropped
 * after the last byte) is queued by the next HEAD or PATCH, so a client never hears "complete"
 * for an upload whose job is not in Redis. tus-ID itself stays for the worker (the job's path).
 *
 * Concurrency: one request writes an upload at a time. Within a process a new PATCH takes the
 * upload over from an older one still streaming (a phone whose connection died without a FIN
 * would hold it until the body timeout); across processes the data file is flock()ed and a
 * second writer gets 409 upload_locked, which tus-js-client retries.
 *
 * Budget: an upload holds one of its process's slots ([upload] max_concurrent) only while a
 * PATCH streams, never while idle. Its bytes are counted in Redis with every other upload's
 * (spool.h, common/lua/spool.lua): creation reserves the whole Upload-Length with a lease of
 * [upload] tus_idle_s, and each PATCH renews it (asking again for the room, so an upload whose
 * lease lapsed while idle resumes only when there is room). An idle upload thus gives its bytes
 * back after tus_idle_s but may still resume until it expires. Creation also keeps the
 * session's set of unfinished uploads: a new upload of the same registration and kind replaces
 * the older (recorded 'superseded'; its next PATCH finds it gone), and a session holds at most
 * [upload] tus_per_session.
 *
 * Expiry: Upload-Expires = creation + [upload] tus_expiry_s, fixed. A request on an expired
 * upload gets 410 and removes it; a timer sweeps the rest every min(60 s, tus_expiry_s / 4).
 *
 * Durability of chunks: the offset is the data file's size, so whatever a crash leaves on disk
 * is exactly what HEAD reports and the client resumes from there; a partial chunk is therefore
 * not fsynced (the event loop does not wait for the disk), only the finished upload is, before
 * its job is queued. Bytes received before a dropped connection are kept for the resume. A
 * chunk sent with Upload-Checksum is all or nothing: cut off or mismatched, it is truncated
 * away. */
#include "tus_store.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "antre/keys.h"
#include "antre/log.h"
#include "gateway.h"
#include "spool.h"

#define PATH_LEN (CONF_STR + 64)
#define NAME_LEN 64

static struct event *sweep_ev;
static int (*busy_fn)(const char *id);

void tus_store_name(char *out, size_t len, const char *id, int info)
{
    snprintf(out, len, info ? "tus-%s.info" : "tus-%s", id);
}

void tus_store_path(struct gw *gw, char *out, size_t len, const char *id, int info)
{
    snprintf(out, len, info ? "%s/tus-%s.info" : "%s/tus-%s", gw->conf.upload.spool_dir, id);
}

static void ignore_reply(void *arg, const redisReply *r, const char *err)
{
    (void)arg;
    (void)r;
    if (err) log_warn("tus: redis command failed err=%s", err);
}

/* ---- files -------------------------------------------------------------------------------- */

/* Read tus-ID.info. 0, or -1 when it is missing or unreadable (logged). */
int tus_store_read_info(struct gw *gw, const char *id, struct tus_info *in)
{
    char path[PATH_LEN];
    tus_store_path(gw, path, sizeof path, id, 1);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        if (access(path, F_OK) == 0) log_warn("tus: unreadable %s: %s", path, je.text);
        return -1;
    }
    json_int_t length = 0, expires = 0;
    const char *reg = "", *kind = "", *ct = "", *meta = "";
    int rc =
        json_unpack(j, "{s:I, s:I, s:s, s:s, s:s, s:s}", "length", &length, "expires", &expires,
                    "registration_id", &reg, "kind", &kind, "content_type", &ct, "metadata", &meta);
    if (rc == 0 && length > 0 && strlen(reg) == IDENT_LEN && strlen(kind) < sizeof in->kind &&
        strlen(ct) < sizeof in->content_type && strlen(meta) <= TUS_META_MAX) {
        memset(in, 0, sizeof *in);
        in->length = (uint64_t)length;
        in->expires = (int64_t)expires;
        strcpy(in->reg, reg);
        strcpy(in->kind, kind);
        strcpy(in->content_type, ct);
        strcpy(in->metadata, meta);
    } else {
        log_warn("tus: malformed %s", path);
        rc = -1;
    }
    json_decref(j);
    return rc;
}

int tus_store_write_info(struct gw *gw, const char *id, const struct tus_info *in, char *err,
                         size_t errlen)
{
    json_t *j = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s}", "length", (json_int_t)in->length,
                          "expires", (json_int_t)in->expires, "registration_id", in->reg, "kind",
                          in->kind, "content_type", in->content_type, "metadata", in->metadata);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) abort();
    char name[NAME_LEN];
    tus_store_name(name, sizeof name, id, 1);
    struct spool *s = spool_open(gw, name, 0, err, errlen);
    if (!s) {
        free(text);
        return -1;
    }
    int rc = spool_write(s, text, strlen(text));
    free(text);
    if (rc < 0) {
        snprintf(err, errlen, "cannot write %s", spool_path(s));
        spool_discard(s);
        return -1;
    }
    spool_close(s);
    return 0;
}

/* Size of the data file. 0, or -1 when it is missing. */
int tus_store_size(struct gw *gw, const char *id, uint64_t *size)
{
    char path[PATH_LEN];
    struct stat st;
    tus_store_path(gw, path, sizeof path, id, 0);
    if (stat(path, &st) < 0) return -1;
    *size = (uint64_t)st.st_size;
    return 0;
}

/* Open upload ID's data file and lock it. The fd holding the lock; -1 when another request
 * holds it; -2 when the file is gone. */
int tus_store_lock(struct gw *gw, const char *id)
{
    char path[PATH_LEN];
    tus_store_path(gw, path, sizeof path, id, 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -2;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int busy = errno == EWOULDBLOCK;
        close(fd);
        return busy ? -1 : -2;
    }
    /* The file may have been removed (and another made) between open and flock: a lock on an
     * unlinked file protects nothing. */
    struct stat a, b;
    if (fstat(fd, &a) < 0 || stat(path, &b) < 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
        close(fd);
        return -2;
    }
    return fd;
}

/* Cut the data file back to LEN bytes (a discarded chunk). */
void tus_store_truncate(struct gw *gw, const char *id, uint64_t len)
{
    char path[PATH_LEN];
    tus_store_path(gw, path, sizeof path, id, 0);
    if (truncate(path, (off_t)len) < 0)
        log_error("tus: truncate failed path=%s err=%s", path, strerror(errno));
}

enum sniff_type tus_store_sniff(struct gw *gw, const char *id)
{
    char path[PATH_LEN];
    tus_store_path(gw, path, sizeof path, id, 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return SNIFF_UNKNOWN;
    enum sniff_type t = sniff_fd(fd);
    close(fd);
    return t;
}

/* Remove upload ID: its files, its record and its bytes. The caller holds its lock (or knows
 * nobody can). */
void tus_store_remove(struct gw *gw, const char *id)
{
    tus_store_unlink(gw, id);
    tus_store_record_delete(gw, id, ignore_reply, NULL);
}

/* Remove an expired upload unless a request is working on it. */
void tus_store_expire(struct gw *gw, const char *id)
{
    if (busy_fn && busy_fn(id)) return;
    int fd = tus_store_lock(gw, id);
    if (fd == -1) return;
    tus_store_remove(gw, id);
    if (fd >= 0) close(fd);
    log_info("tus: expired id=%s", id);
}

void tus_store_unlink(struct gw *gw, const char *id)
{
    char path[PATH_LEN];
    tus_store_path(gw, path, sizeof path, id, 0);
    unlink(path);
    tus_store_path(gw, path, sizeof path, id, 1);
    unlink(path);
}

/* ---- expiry sweep ------------------------------------------------------------------------- */

/* 1 when NAME is "tus-<id>.info"; ID receives the id. */
static int info_name(const char *name, char id[IDENT_LEN + 1])
{
    size_t n = strlen(name);
    if (n != 4 + IDENT_LEN + 5 || strncmp(name, "tus-", 4) != 0 ||
        strcmp(name + 4 + IDENT_LEN, ".info") != 0 || !ident_valid(name + 4, IDENT_LEN))
        return 0;
    memcpy(id, name + 4, IDENT_LEN);
    id[IDENT_LEN] = 0;
    return 1;
}

static void sweep(struct gw *gw)
{
    int64_t now = (int64_t)time(NULL);
    DIR *d = opendir(gw->conf.upload.spool_dir);
    if (d) {
        struct dirent *e;
        char id[IDENT_LEN + 1];
        struct tus_info in;
        while ((e = readdir(d))) {
            if (!info_name(e->d_name, id)) continue;
            if (tus_store_read_info(gw, id, &in) == 0) {
                if (in.expires <= now) tus_store_expire(gw, id);
                continue;
            }
            /* Unreadable (a crash while it was written): judge by the file's age. */
            char path[PATH_LEN];
            struct stat st;
            tus_store_path(gw, path, sizeof path, id, 1);
            if (stat(path, &st) == 0 && (int64_t)st.st_mtime + gw->conf.upload.tus_expiry_s <= now)
                tus_store_expire(gw, id);
        }
        closedir(d);
    }
    /* Orphan spool files: one process of the machine looks. */
    if (gw->slot == 0) spool_reap(gw);
}

static int sweep_interval_s(struct gw *gw)
{
    int s = gw->conf.upload.tus_expiry_s / 4;
    if (s > gw->conf.upload.orphan_grace_s) s = gw->conf.upload.orphan_grace_s;
    return s > 60 ? 60 : s < 1 ? 1 : s;
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw *gw = arg;
    sweep(gw);
    struct timeval tv = {sweep_interval_s(gw), 0};
    evtimer_add(sweep_ev, &tv);
}

/* ---- the record in Redis ------------------------------------------------------------------ */

int tus_store_record_create(struct gw *gw, const char *id, const struct tus_info *in,
                            const char *path, const char *owner, int marked, rconn_cb *cb,
                            void *arg)
{
    const struct conf_upload *u = &gw->conf.upload;
    char kreg[KEYS_MAX], kupl[KEYS_MAX], ksess[KEYS_MAX], length[24], expires[24], created[24],
        limit[24], lease[24], per[16];
    keys_registration(kreg, in->reg);
    keys_upload(kupl, id);
    keys_tus_session(ksess, owner);
    snprintf(length, sizeof length, "%llu", (unsigned long long)in->length);
    snprintf(expires, sizeof expires, "%lld", (long long)in->expires);
    snprintf(created, sizeof created, "%lld", (long long)time(NULL));
    snprintf(limit, sizeof limit, "%lld", (long long)u->spool_max_bytes);
    snprintf(lease, sizeof lease, "%lld", (long long)u->tus_idle_s * 1000);
    snprintf(per, sizeof per, "%d", u->tus_per_session);
    const char *keys[] = {kreg, kupl, ksess};
    const char *args[] = {"tus_create",
                          id,
                          owner,
                          marked ? "1" : "0",
                          length,
                          limit,
                          lease,
                          expires,
                          per,
                          in->reg,
                          in->kind,
                          "state",
                          "receiving",
                          "protocol",
                          "tus",
                          "length",
                          length,
                          "registration_id",
                          in->reg,
                          "kind",
                          in->kind,
                          "content_type",
                          in->content_type,
                          "metadata",
                          in->metadata,
                          "expires",
                          expires,
                          "created_at",
                          created,
                          "path",
                          path};
    return spool_script(gw, cb, arg, 3, keys, (int)(sizeof args / sizeof args[0]), args);
}

int tus_store_record_delete(struct gw *gw, const char *id, rconn_cb *cb, void *arg)
{
    char key[KEYS_MAX];
    keys_upload(key, id);
    const char *keys[] = {key};
    const char *args[] = {"tus_drop", id};
    return spool_script(gw, cb, arg, 1, keys, 2, args);
}

int tus_store_renew(struct gw *gw, const char *id, uint64_t length, uint64_t remaining,
                    int streaming, rconn_cb *cb, void *arg)
{
    int64_t ms = (int64_t)gw->conf.upload.tus_idle_s * 1000;
    if (streaming) ms += spool_lease_ms(gw, remaining);
    char key[KEYS_MAX], nbytes[24], limit[24], lease[24];
    keys_upload(key, id);
    snprintf(nbytes, sizeof nbytes, "%llu", (unsigned long long)length);
    snprintf(limit, sizeof limit, "%lld", (long long)gw->conf.upload.spool_max_bytes);
    snprintf(lease, sizeof lease, "%lld", (long long)ms);
    const char *keys[] = {key};
    const char *args[] = {"renew", id, nbytes, limit, lease};
    return spool_script(gw, cb, arg, 1, keys, 5, args);
}

int tus_store_record_state(struct gw *gw, const char *id, rconn_cb *cb, void *arg)
{
    char key[KEYS_MAX];
    keys_upload(key, id);
    return rconn_command(gw->redis, cb, arg, "HGET %s state", key);
}

int tus_store_record_lookup(struct gw *gw, const char *id, rconn_cb *cb, void *arg)
{
    char key[KEYS_MAX];
    keys_upload(key, id);
    return rconn_command(gw->redis, cb, arg, "HMGET %s state length metadata", key);
}

/* ---- start and stop ----------------------------------------------------------------------- */

void tus_store_init(struct gw *gw, int (*busy)(const char *id))
{
    busy_fn = busy;
    sweep_ev = evtimer_new(gw->base, sweep_cb, gw);
    if (!sweep_ev) abort();
    struct timeval tv = {sweep_interval_s(gw), 0};
    evtimer_add(sweep_ev, &tv);
}

void tus_store_free(struct gw *gw)
{
    (void)gw;
    if (sweep_ev) event_free(sweep_ev);
    sweep_ev = NULL;
}
