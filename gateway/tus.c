/* tus.c: resumable uploads, tus 1.0.0 at /v1/uploads.
 *
 * Extensions offered: creation, expiration, checksum (sha1, md5, sha256), termination; and
 * X-HTTP-Method-Override on POST /v1/uploads/{id} (core protocol). Not offered:
 * creation-with-upload, creation-defer-length, concatenation, checksum-trailer.
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
 * Spool files are local: an upload must be resumed on the machine that received its first
 * bytes (any process there). Ids are owner-marked (ident.h): someone else's upload or
 * registration is refused from the head alone.
 *
 * Concurrency: one request writes an upload at a time. Within a process a new PATCH takes the
 * upload over from an older one still streaming (a phone whose connection died without a FIN
 * would hold it until the body timeout); across processes the data file is flock()ed and a
 * second writer gets 409 upload_locked, which tus-js-client retries.
 *
 * Budget: creation reserves the whole Upload-Length (and one upload slot) from this process's
 * spool budget, and the reservation is held while the upload is unfinished, between PATCHes
 * too, until it completes, is terminated or expires. A started upload thus always has room to
 * finish; the price is that an abandoned upload holds its share until tus_expiry_s passes, so
 * keep that short during a wave. A reservation belongs to the process that made it: when
 * another process completes, terminates or expires the upload, the owner notices at its next
 * sweep (tus-ID.info is gone) and gives the reservation back.
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
#include "tus.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "antre/codec.h"
#include "antre/keys.h"
#include "antre/log.h"
#include "antre/rconn.h"
#include "conn.h"
#include "gate.h"
#include "gateway.h"
#include "ident.h"
#include "reply.h"
#include "request.h"
#include "router.h"
#include "spool.h"

#define TUS_VERSION "1.0.0"
#define TUS_EXTENSIONS "creation,expiration,checksum,termination"
#define TUS_ALGORITHMS "sha1,md5,sha256"
#define META_MAX 1024            /* Upload-Metadata bytes kept (and echoed by HEAD) */
#define PATH_LEN (CONF_STR + 64)
#define NAME_LEN 64
#define SIG_LEN 8                /* bytes that identify a PNG (a JPEG needs 3) */
#define PATCH_MAX_BODY (1LL << 30) /* the real bound is the upload's remaining length */

/* What tus-ID.info holds. */
struct info {
    uint64_t length;
    int64_t expires;                  /* Unix seconds */
    char reg[IDENT_LEN + 1];
    char kind[8];                     /* ktp | selfie */
    char content_type[16];            /* as declared by `filetype`, or "" */
    char metadata[META_MAX + 1];      /* Upload-Metadata as the client sent it */
};

/* A request working on one upload: a PATCH streaming its body, or any request queuing a
 * complete upload or terminating one. Listed while alive, so that one upload has one writer
 * per process. */
enum job_kind { JOB_PATCH, JOB_HEAD, JOB_DELETE };

struct job {
    struct job *next;
    struct conn *c;
    struct gw *gw;
    enum job_kind kind;
    char id[IDENT_LEN + 1];
    struct info info;
    int lockfd;                       /* holds the flock on the data file; -1 none */
    struct spool *sp;                 /* the data file, while a PATCH body streams */
    uint64_t start;                   /* the offset when the PATCH began */
    EVP_MD_CTX *md;                   /* Upload-Checksum being computed, or NULL */
    unsigned char want[EVP_MAX_MD_SIZE];
    unsigned wantlen;
    unsigned char sig[SIG_LEN];       /* first bytes of the upload (PATCH at offset 0) */
    size_t siglen;
    unsigned bad_type : 1;            /* the first bytes are not a JPEG or PNG */
    unsigned finishing : 1;           /* queuing or removing: cannot be taken over */
    char content_type[16];            /* detected from the bytes at completion */
};

/* One upload's share of this process's spool budget. */
struct resv {
    struct resv *next;
    uint64_t bytes;
    char id[IDENT_LEN + 1];
};

static struct job *jobs;
static struct resv *resvs;
static struct event *sweep_ev;

/* ---- small helpers ------------------------------------------------------------------------ */

static void file_name(char *out, size_t len, const char *id, int info)
{
    snprintf(out, len, info ? "tus-%s.info" : "tus-%s", id);
}

static void file_path(struct gw *gw, char *out, size_t len, const char *id, int info)
{
    snprintf(out, len, info ? "%s/tus-%s.info" : "%s/tus-%s", gw->conf.upload.spool_dir, id);
}

static int64_t now_s(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec;
}

/* An RFC 7231 date (IMF-fixdate), independent of the locale. */
static void http_date(int64_t t, char out[40])
{
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* A header's value without surrounding blanks, or NULL. */
static const char *header(const struct request *r, const char *name, size_t *len)
{
    const char *v = request_header(r, name, len);
    if (!v) return NULL;
    while (*len && (*v == ' ' || *v == '\t')) v++, (*len)--;
    while (*len && (v[*len - 1] == ' ' || v[*len - 1] == '\t')) (*len)--;
    return v;
}

/* A non-negative decimal integer of at most 18 digits. 0, or -1. */
static int parse_uint(const char *v, size_t len, uint64_t *out)
{
    if (len == 0 || len > 18) return -1;
    uint64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    *out = n;
    return 0;
}

/* "image/jpeg" or "image/png" from the first LEN bytes of a file, or NULL. */
static const char *sniff(const unsigned char *b, size_t len)
{
    static const unsigned char png[SIG_LEN] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return "image/jpeg";
    if (len >= SIG_LEN && memcmp(b, png, SIG_LEN) == 0) return "image/png";
    return NULL;
}

/* Could bytes starting with these LEN (< SIG_LEN) still become a JPEG or PNG? */
static int sniff_possible(const unsigned char *b, size_t len)
{
    static const unsigned char png[SIG_LEN] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const unsigned char jpg[3] = {0xff, 0xd8, 0xff};
    return memcmp(b, png, len) == 0 || memcmp(b, jpg, len < 3 ? len : 3) == 0;
}

static void ignore_reply(void *arg, const redisReply *r, const char *err)
{
    (void)arg;
    (void)r;
    if (err) log_warn("tus: redis command failed err=%s", err);
}

/* ---- answers ------------------------------------------------------------------------------ */

/* Every tus answer carries Tus-Resumable, errors included. */
static void fail(struct conn *c, enum error_id e, const char *field, json_t *extra)
{
    reply_header(c, "Tus-Resumable", TUS_VERSION);
    reply_err(c, e, field, extra);
}

/* As fail, with a message more precise than the catalogue's. */
static void fail_msg(struct conn *c, enum error_id e, const char *field, const char *msg_id,
                     const char *msg_en, json_t *extra)
{
    reply_header(c, "Tus-Resumable", TUS_VERSION);
    reply_err_msg(c, e, field, msg_id, msg_en, extra);
}

static void fail_unknown(struct conn *c) { fail(c, ERR_UNKNOWN_UPLOAD, NULL, NULL); }
static void fail_expired(struct conn *c) { fail(c, ERR_UPLOAD_EXPIRED, NULL, NULL); }
static void fail_locked(struct conn *c) { fail(c, ERR_UPLOAD_LOCKED, NULL, NULL); }
static void fail_complete(struct conn *c) { fail(c, ERR_UPLOAD_COMPLETE, NULL, NULL); }
static void fail_internal(struct conn *c) { fail(c, ERR_INTERNAL_ERROR, NULL, NULL); }

static void fail_type(struct conn *c)
{
    fail_msg(c, ERR_UNSUPPORTED_MEDIA_TYPE, NULL,
             "Foto harus berformat JPEG atau PNG; simpan ulang foto sebagai JPEG lalu unggah lagi.",
             "The photo must be a JPEG or PNG; save it as a JPEG and upload again.", NULL);
}

/* Redis is not connected, or a command failed or timed out. */
static void redis_down(struct conn *c)
{
    reply_header(c, "Tus-Resumable", TUS_VERSION);
    reply_redis_refusal(c, RCONN_REFUSED_CLOSED);
}

/* A command was refused before it was sent (budget spent, or not connected). */
static void redis_refused(struct conn *c)
{
    reply_header(c, "Tus-Resumable", TUS_VERSION);
    reply_redis_refusal(c, rconn_last_refusal(c->gw->redis));
}

/* 412 unless the request speaks tus 1.0.0. */
static int version_ok(struct conn *c, const struct request *r)
{
    size_t len;
    const char *v = header(r, "tus-resumable", &len);
    if (v && len == strlen(TUS_VERSION) && memcmp(v, TUS_VERSION, len) == 0) return 1;
    reply_header(c, "Tus-Version", TUS_VERSION);
    fail(c, ERR_TUS_VERSION_UNSUPPORTED, "Tus-Resumable", NULL);
    return 0;
}

/* The {id} of the path: 0 with ID filled, or -1 after answering 404 (not an upload id) or
 * 403 (another applicant's). */
static int upload_id(struct conn *c, char id[IDENT_LEN + 1])
{
    size_t len;
    const char *v = conn_param(c, "id", &len);
    if (!v || !ident_valid(v, len)) {
        fail_unknown(c);
        return -1;
    }
    if (!ident_owned(c->gw, "upl", v, len, gate_session(c)->owner)) {
        fail_msg(c, ERR_NOT_OWNER, NULL, "Unggahan ini bukan milik sesi Anda; mulai unggahan baru.",
                 "This upload does not belong to your session; start a new upload.", NULL);
        return -1;
    }
    memcpy(id, v, IDENT_LEN);
    id[IDENT_LEN] = 0;
    return 0;
}

/* ---- files -------------------------------------------------------------------------------- */

/* Read tus-ID.info. 0, or -1 when it is missing or unreadable (logged). */
static int read_info(struct gw *gw, const char *id, struct info *in)
{
    char path[PATH_LEN];
    file_path(gw, path, sizeof path, id, 1);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        if (access(path, F_OK) == 0) log_warn("tus: unreadable %s: %s", path, je.text);
        return -1;
    }
    json_int_t length = 0, expires = 0;
    const char *reg = "", *kind = "", *ct = "", *meta = "";
    int rc = json_unpack(j, "{s:I, s:I, s:s, s:s, s:s, s:s}", "length", &length, "expires",
                         &expires, "registration_id", &reg, "kind", &kind, "content_type", &ct,
                         "metadata", &meta);
    if (rc == 0 && length > 0 && strlen(reg) == IDENT_LEN && strlen(kind) < sizeof in->kind &&
        strlen(ct) < sizeof in->content_type && strlen(meta) <= META_MAX) {
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

static int write_info(struct gw *gw, const char *id, const struct info *in, char *err,
                      size_t errlen)
{
    json_t *j = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s}", "length", (json_int_t)in->length,
                          "expires", (json_int_t)in->expires, "registration_id", in->reg,
                          "kind", in->kind, "content_type", in->content_type, "metadata",
                          in->metadata);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) abort();
    char name[NAME_LEN];
    file_name(name, sizeof name, id, 1);
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
static int data_size(struct gw *gw, const char *id, uint64_t *size)
{
    char path[PATH_LEN];
    struct stat st;
    file_path(gw, path, sizeof path, id, 0);
    if (stat(path, &st) < 0) return -1;
    *size = (uint64_t)st.st_size;
    return 0;
}

/* Open upload ID's data file and lock it. The fd holding the lock; -1 when another request
 * holds it; -2 when the file is gone. */
static int lock_data(struct gw *gw, const char *id)
{
    char path[PATH_LEN];
    file_path(gw, path, sizeof path, id, 0);
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
static void truncate_data(struct gw *gw, const char *id, uint64_t len)
{
    char path[PATH_LEN];
    file_path(gw, path, sizeof path, id, 0);
    if (truncate(path, (off_t)len) < 0)
        log_error("tus: truncate failed path=%s err=%s", path, strerror(errno));
}

/* The content type the first bytes of the data file show, or NULL. */
static const char *sniff_file(struct gw *gw, const char *id)
{
    char path[PATH_LEN];
    unsigned char b[SIG_LEN];
    file_path(gw, path, sizeof path, id, 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    ssize_t n = pread(fd, b, sizeof b, 0);
    close(fd);
    return n > 0 ? sniff(b, (size_t)n) : NULL;
}

/* ---- reservations ------------------------------------------------------------------------- */

static void resv_add(const char *id, uint64_t bytes)
{
    struct resv *v = calloc(1, sizeof *v);
    if (!v) abort();
    memcpy(v->id, id, IDENT_LEN + 1);
    v->bytes = bytes;
    v->next = resvs;
    resvs = v;
}

/* Give back upload ID's reservation if this process holds it. */
static void resv_release(struct gw *gw, const char *id)
{
    for (struct resv **pp = &resvs; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->id, id) != 0) continue;
        struct resv *v = *pp;
        *pp = v->next;
        spool_budget_release(gw, v->bytes);
        free(v);
        return;
    }
}

/* ---- jobs --------------------------------------------------------------------------------- */

static struct job *job_find(const char *id)
{
    for (struct job *j = jobs; j; j = j->next)
        if (strcmp(j->id, id) == 0) return j;
    return NULL;
}

static struct job *job_new(struct conn *c, enum job_kind kind, const char *id,
                           const struct info *in)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j) abort();
    j->c = c;
    j->gw = c->gw;
    j->kind = kind;
    memcpy(j->id, id, IDENT_LEN + 1);
    if (in) j->info = *in;
    j->lockfd = -1;
    j->next = jobs;
    jobs = j;
    return j;
}

/* Unlist J, release its lock and free it. An open spool file is closed as it is. */
static void job_free(struct job *j)
{
    for (struct job **pp = &jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    if (j->sp) spool_close(j->sp);
    if (j->md) EVP_MD_CTX_free(j->md);
    if (j->lockfd >= 0) close(j->lockfd);
    free(j);
}

/* Remove upload ID: its files, its record and this process's reservation. The caller holds
 * its lock (or knows nobody can). */
static void remove_upload(struct gw *gw, const char *id)
{
    char path[PATH_LEN], key[KEYS_MAX];
    file_path(gw, path, sizeof path, id, 0);
    unlink(path);
    file_path(gw, path, sizeof path, id, 1);
    unlink(path);
    keys_upload(key, id);
    rconn_command(gw->redis, ignore_reply, NULL, "DEL %s", key);
    resv_release(gw, id);
}

/* Remove an expired upload unless a request is working on it. */
static void expire_upload(struct gw *gw, const char *id)
{
    if (job_find(id)) return;
    int fd = lock_data(gw, id);
    if (fd == -1) return;
    remove_upload(gw, id);
    if (fd >= 0) close(fd);
    log_info("tus: expired id=%s", id);
}

/* ---- OPTIONS ------------------------------------------------------------------------------ */

static void options_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)r;
    (void)p;
    char max[24];
    snprintf(max, sizeof max, "%lld", (long long)c->gw->conf.upload.max_bytes);
    reply_header(c, "Tus-Resumable", TUS_VERSION);
    reply_header(c, "Tus-Version", TUS_VERSION);
    reply_header(c, "Tus-Extension", TUS_EXTENSIONS);
    reply_header(c, "Tus-Max-Size", max);
    reply_header(c, "Tus-Checksum-Algorithm", TUS_ALGORITHMS);
    reply_raw(c, 204, NULL, "", 0);
}

/* Head hook of the routes that take no body (creation, HEAD, DELETE). */
static int plain_head(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)p;
    if (!version_ok(c, r)) return -1;
    if (r->chunked || r->content_length > 0) {
        fail(c, ERR_BODY_NOT_ACCEPTED, NULL, NULL);
        return -1;
    }
    return 0;
}

/* ---- creation ----------------------------------------------------------------------------- */

struct create {
    struct conn *c;
    struct info info;
    char id[IDENT_LEN + 1];
};

static void fail_metadata(struct conn *c, const char *field, const char *msg_id,
                          const char *msg_en)
{
    fail_msg(c, ERR_INVALID_METADATA, field, msg_id, msg_en, NULL);
}

/* Parse Upload-Metadata (V, LEN; V may be NULL) into IN: registration_id and kind required,
 * filetype optional; other keys are kept and echoed but not used. 0, or -1 after answering. */
static int parse_metadata(struct conn *c, const char *v, size_t len, struct info *in)
{
    int have_reg = 0, have_kind = 0, have_type = 0;
    if (len > META_MAX) {
        fail_metadata(c, NULL, "Upload-Metadata terlalu panjang (maksimal 1024 byte).",
                      "Upload-Metadata is too long (at most 1024 bytes).");
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e) {
            fail_metadata(c, NULL, "Upload-Metadata memuat karakter yang tidak sah.",
                          "Upload-Metadata has characters that are not allowed.");
            return -1;
        }
    if (len) memcpy(in->metadata, v, len);
    in->metadata[len] = 0;

    const char *p = v, *end = v ? v + len : NULL;
    while (p && p < end) {
        const char *pe = memchr(p, ',', (size_t)(end - p));
        if (!pe) pe = end;
        const char *k = p;
        while (k < pe && *k == ' ') k++;
        const char *ke = k;
        while (ke < pe && *ke != ' ') ke++;
        const char *val = ke;
        while (val < pe && *val == ' ') val++;
        const char *ve = pe;
        while (ve > val && ve[-1] == ' ') ve--;
        p = pe + 1;
        if (ke == k) {
            fail_metadata(c, NULL, "Upload-Metadata memuat kunci kosong.",
                          "Upload-Metadata has an empty key.");
            return -1;
        }
        unsigned char dec[192];
        ssize_t dl = codec_b64_decode(val, (size_t)(ve - val), dec, sizeof dec - 1);
        if (dl < 0) {
            fail_metadata(c, NULL, "Nilai Upload-Metadata harus berupa Base64.",
                          "Upload-Metadata values must be Base64.");
            return -1;
        }
        dec[dl] = 0;
        size_t kl = (size_t)(ke - k);
        if (kl == 15 && memcmp(k, "registration_id", 15) == 0) {
            if (have_reg++ || !ident_valid((const char *)dec, dl)) {
                fail_metadata(c, "registration_id",
                              "registration_id tidak valid; pakai id dari pendaftaran Anda.",
                              "registration_id is not valid; use the id of your registration.");
                return -1;
            }
            memcpy(in->reg, dec, IDENT_LEN + 1);
        } else if (kl == 4 && memcmp(k, "kind", 4) == 0) {
            if (have_kind++ || (strcmp((char *)dec, "ktp") && strcmp((char *)dec, "selfie"))) {
                fail_metadata(c, "kind", "kind harus ktp atau selfie.",
                              "kind must be ktp or selfie.");
                return -1;
            }
            strcpy(in->kind, (char *)dec);
        } else if (kl == 8 && memcmp(k, "filetype", 8) == 0) {
            if (have_type++) {
                fail_metadata(c, "filetype", "filetype disebut lebih dari sekali.",
                              "filetype is given more than once.");
                return -1;
            }
            if (strcmp((char *)dec, "image/jpeg") && strcmp((char *)dec, "image/png")) {
                fail_type(c);
                return -1;
            }
            strcpy(in->content_type, (char *)dec);
        }
    }
    if (!have_reg) {
        fail_metadata(c, "registration_id",
                      "Sebutkan registration_id di Upload-Metadata.",
                      "Name the registration_id in Upload-Metadata.");
        return -1;
    }
    if (!have_kind) {
        fail_metadata(c, "kind", "Sebutkan kind (ktp atau selfie) di Upload-Metadata.",
                      "Name the kind (ktp or selfie) in Upload-Metadata.");
        return -1;
    }
    if (!ident_owned(c->gw, "reg", in->reg, IDENT_LEN, gate_session(c)->owner)) {
        fail_msg(c, ERR_NOT_OWNER, "registration_id", "Pendaftaran ini bukan milik sesi Anda.",
                 "This registration does not belong to your session.", NULL);
        return -1;
    }
    return 0;
}

static void unlink_files(struct gw *gw, const char *id)
{
    char path[PATH_LEN];
    file_path(gw, path, sizeof path, id, 0);
    unlink(path);
    file_path(gw, path, sizeof path, id, 1);
    unlink(path);
}

static void on_created(void *arg, const redisReply *rep, const char *err)
{
    struct create *cr = arg;
    struct conn *c = cr->c;
    struct gw *gw = c->gw;
    if (err || !rep || rep->type != REDIS_REPLY_INTEGER) {
        log_warn("tus: record not written id=%s err=%s", cr->id,
                 err ? err : rep && rep->str ? rep->str : "?");
        unlink_files(gw, cr->id);
        spool_budget_release(gw, cr->info.length);
        redis_down(c);
        free(cr);
        return;
    }
    resv_add(cr->id, cr->info.length);
    log_info("tus: created id=%s registration=%s kind=%s length=%llu", cr->id, cr->info.reg,
             cr->info.kind, (unsigned long long)cr->info.length);
    char loc[64], date[40];
    snprintf(loc, sizeof loc, "/v1/uploads/%s", cr->id);
    http_date(cr->info.expires, date);
    reply_header(c, "Tus-Resumable", TUS_VERSION);
    reply_header(c, "Location", loc);
    reply_header(c, "Upload-Expires", date);
    reply_json(c, 201, json_pack("{s:s, s:s, s:s, s:I}", "upload_id", cr->id, "state",
                                 "receiving", "status_url", loc, "expires_at",
                                 (json_int_t)cr->info.expires));
    free(cr);
}

static void on_registration(void *arg, const redisReply *rep, const char *err)
{
    struct create *cr = arg;
    struct conn *c = cr->c;
    struct gw *gw = c->gw;
    if (err || !rep || rep->type != REDIS_REPLY_INTEGER) {
        spool_budget_release(gw, cr->info.length);
        redis_down(c);
        free(cr);
        return;
    }
    if (rep->integer == 0) {
        spool_budget_release(gw, cr->info.length);
        fail_msg(c, ERR_UNKNOWN_REGISTRATION, "registration_id",
                 "Pendaftaran ini tidak ditemukan; daftar dulu, lalu unggah dokumen.",
                 "This registration was not found; register first, then upload documents.", NULL);
        free(cr);
        return;
    }
    char errbuf[256], name[NAME_LEN];
    struct spool *s = NULL;
    if (ident_new(gw, "upl", gate_session(c)->owner, cr->id) < 0) {
        snprintf(errbuf, sizeof errbuf, "no pepper in the key file");
        goto broken;
    }
    cr->info.expires = now_s() + gw->conf.upload.tus_expiry_s;
    /* The .info first: a data file without one would look like a finished upload. */
    if (write_info(gw, cr->id, &cr->info, errbuf, sizeof errbuf) < 0) goto broken;
    file_name(name, sizeof name, cr->id, 0);
    if (!(s = spool_open(gw, name, 0, errbuf, sizeof errbuf))) {
        unlink_files(gw, cr->id);
        goto broken;
    }
    char path[PATH_LEN], key[KEYS_MAX], length[24], expires[24], created[24];
    snprintf(path, sizeof path, "%s", spool_path(s));
    spool_close(s);
    keys_upload(key, cr->id);
    snprintf(length, sizeof length, "%llu", (unsigned long long)cr->info.length);
    snprintf(expires, sizeof expires, "%lld", (long long)cr->info.expires);
    snprintf(created, sizeof created, "%lld", (long long)now_s());
    const char *argv[] = {"HSET", key, "state", "receiving", "protocol", "tus",
                          "length", length, "registration_id", cr->info.reg,
                          "kind", cr->info.kind, "content_type", cr->info.content_type,
                          "metadata", cr->info.metadata, "expires", expires,
                          "created_at", created, "path", path};
    if (rconn_command_argv(gw->redis, on_created, cr, (int)(sizeof argv / sizeof argv[0]), argv,
                           NULL) < 0) {
        unlink_files(gw, cr->id);
        spool_budget_release(gw, cr->info.length);
        redis_refused(c);
        free(cr);
    }
    return;

broken:
    log_error("tus: cannot create upload: %s", errbuf);
    spool_budget_release(gw, cr->info.length);
    fail_internal(c);
    free(cr);
}

static void create_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)p;
    struct gw *gw = c->gw;
    size_t len;
    const char *v;
    uint64_t length;
    if (header(r, "upload-defer-length", &len)) {
        fail(c, ERR_DEFER_LENGTH_UNSUPPORTED, "Upload-Defer-Length", NULL);
        return;
    }
    if (!(v = header(r, "upload-length", &len))) {
        fail(c, ERR_UPLOAD_LENGTH_REQUIRED, "Upload-Length", NULL);
        return;
    }
    if (parse_uint(v, len, &length) < 0 || length == 0) {
        fail(c, ERR_INVALID_UPLOAD_LENGTH, "Upload-Length", NULL);
        return;
    }
    uint64_t max = (uint64_t)gw->conf.upload.max_bytes;
    if (length > max) {
        char id_msg[160], en_msg[160], mb[32];
        if (max % (1024 * 1024) == 0) snprintf(mb, sizeof mb, "%llu MB",
                                               (unsigned long long)(max / (1024 * 1024)));
        else snprintf(mb, sizeof mb, "%llu byte", (unsigned long long)max);
        snprintf(id_msg, sizeof id_msg, "Foto lebih dari %s; kecilkan lalu unggah lagi.", mb);
        snprintf(en_msg, sizeof en_msg, "The photo is over %s; make it smaller and upload again.",
                 mb);
        fail_msg(c, ERR_FILE_TOO_LARGE, "Upload-Length", id_msg, en_msg,
                 json_pack("{s:I}", "max_bytes", (json_int_t)max));
        return;
    }
    struct create *cr = calloc(1, sizeof *cr);
    if (!cr) abort();
    cr->c = c;
    cr->info.length = length;
    v = header(r, "upload-metadata", &len);
    if (parse_metadata(c, v, v ? len : 0, &cr->info) < 0) {
        free(cr);
        return;
    }
    if (spool_budget_take(gw, length) < 0) {
        free(cr);
        fail(c, ERR_UPLOAD_BUDGET, NULL, NULL);
        return;
    }
    char key[KEYS_MAX];
    keys_registration(key, cr->info.reg);
    if (rconn_command(gw->redis, on_registration, cr, "EXISTS %s", key) < 0) {
        spool_budget_release(gw, length);
        free(cr);
        redis_refused(c);
    }
}

/* ---- completion --------------------------------------------------------------------------- */

static void answer_head(struct conn *c, const struct info *in, uint64_t offset, int receiving)
{
    char n[24], date[40];
    reply_header(c, "Tus-Resumable", TUS_VERSION);
    snprintf(n, sizeof n, "%llu", (unsigned long long)offset);
    reply_header(c, "Upload-Offset", n);
    snprintf(n, sizeof n, "%llu", (unsigned long long)in->length);
    reply_header(c, "Upload-Length", n);
    if (receiving) {
        http_date(in->expires, date);
        reply_header(c, "Upload-Expires", date);
    }
    if (in->metadata[0]) reply_header(c, "Upload-Metadata", in->metadata);
    reply_header(c, "Cache-Control", "no-store");
    reply_raw(c, 200, NULL, "", 0);
}

/* The job is in Redis: the upload is no longer receiving. */
static void queued(struct job *j)
{
    struct gw *gw = j->gw;
    struct conn *c = j->c;
    char path[PATH_LEN];
    file_path(gw, path, sizeof path, j->id, 1);
    unlink(path);
    resv_release(gw, j->id);
    log_info("tus: complete id=%s bytes=%llu type=%s", j->id,
             (unsigned long long)j->info.length, j->content_type);
    if (j->kind == JOB_HEAD) {
        answer_head(c, &j->info, j->info.length, 0);
    } else {
        char n[24];
        snprintf(n, sizeof n, "%llu", (unsigned long long)j->info.length);
        reply_header(c, "Tus-Resumable", TUS_VERSION);
        reply_header(c, "Upload-Offset", n);
        reply_raw(c, 204, NULL, "", 0);
    }
    job_free(j);
}

/* Queuing failed: the upload stays complete-but-unqueued for the next HEAD or PATCH. */
static void finalize_failed(struct job *j, const char *why)
{
    log_warn("tus: not queued id=%s err=%s", j->id, why);
    redis_down(j->c);
    job_free(j);
}

static void on_enqueued(void *arg, const redisReply *rep, const char *err)
{
    struct job *j = arg;
    if (err || !rep || rep->type == REDIS_REPLY_ERROR) {
        finalize_failed(j, err ? err : rep && rep->str ? rep->str : "?");
        return;
    }
    queued(j);
}

static void on_state(void *arg, const redisReply *rep, const char *err)
{
    struct job *j = arg;
    if (err || !rep || (rep->type != REDIS_REPLY_STRING && rep->type != REDIS_REPLY_NIL)) {
        finalize_failed(j, err ? err : "unexpected reply");
        return;
    }
    /* An earlier attempt whose answer was lost (timeout) may have queued it already: queue a
     * job once. */
    if (rep->type == REDIS_REPLY_STRING && strcmp(rep->str, "receiving") != 0) {
        queued(j);
        return;
    }
    char path[PATH_LEN];
    file_path(j->gw, path, sizeof path, j->id, 0);
    if (spool_enqueue(j->gw, j->id, j->info.reg, j->info.kind, path, j->info.length,
                      j->content_type, on_enqueued, j) < 0)
        finalize_failed(j, "refused");
}

/* All bytes are in and on disk, and J holds the lock: check what they are, then queue the
 * job. Answers J's request. */
static void finalize(struct job *j)
{
    struct gw *gw = j->gw;
    j->finishing = 1;
    uint64_t size;
    if (data_size(gw, j->id, &size) < 0 || size != j->info.length) {
        log_error("tus: complete upload has the wrong size id=%s", j->id);
        remove_upload(gw, j->id);
        fail_internal(j->c);
        job_free(j);
        return;
    }
    const char *ct = sniff_file(gw, j->id);
    if (!ct) {
        log_info("tus: not a JPEG or PNG id=%s", j->id);
        remove_upload(gw, j->id);
        fail_type(j->c);
        job_free(j);
        return;
    }
    snprintf(j->content_type, sizeof j->content_type, "%s", ct);
    char key[KEYS_MAX];
    keys_upload(key, j->id);
    if (rconn_command(gw->redis, on_state, j, "HGET %s state", key) < 0)
        finalize_failed(j, "refused");
}

/* ---- HEAD --------------------------------------------------------------------------------- */

struct lookup {
    struct conn *c;
};

static void on_record(void *arg, const redisReply *rep, const char *err)
{
    struct lookup *lk = arg;
    struct conn *c = lk->c;
    free(lk);
    if (err || !rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3) {
        redis_down(c);
        return;
    }
    const redisReply *st = rep->element[0], *len = rep->element[1], *meta = rep->element[2];
    struct info in;
    memset(&in, 0, sizeof in);
    /* Still "receiving" but no files here: terminated or expired (record not removed), or
     * received by another machine. Either way nothing here to resume. */
    if (st->type != REDIS_REPLY_STRING || strcmp(st->str, "receiving") == 0 ||
        len->type != REDIS_REPLY_STRING || parse_uint(len->str, len->len, &in.length) < 0) {
        fail_unknown(c);
        return;
    }
    if (meta->type == REDIS_REPLY_STRING && meta->len <= META_MAX) {
        int ok = 1;
        for (size_t i = 0; i < meta->len; i++)
            if ((unsigned char)meta->str[i] < 0x20 || (unsigned char)meta->str[i] > 0x7e) ok = 0;
        if (ok) memcpy(in.metadata, meta->str, meta->len);
    }
    answer_head(c, &in, in.length, 0);
}

static void head_upload(struct conn *c, const char *id)
{
    struct gw *gw = c->gw;
    struct info in;
    uint64_t size;
    if (read_info(gw, id, &in) < 0) {
        /* Not receiving here: a finished upload's record tells its length. */
        struct lookup *lk = calloc(1, sizeof *lk);
        if (!lk) abort();
        lk->c = c;
        char key[KEYS_MAX];
        keys_upload(key, id);
        if (rconn_command(gw->redis, on_record, lk, "HMGET %s state length metadata", key) < 0) {
            free(lk);
            redis_refused(c);
        }
        return;
    }
    if (in.expires <= now_s()) {
        expire_upload(gw, id);
        fail_expired(c);
        return;
    }
    if (data_size(gw, id, &size) < 0) {
        fail_unknown(c);
        return;
    }
    if (size < in.length) {
        answer_head(c, &in, size, 1);
        return;
    }
    /* Complete but not yet queued (Redis failed at the last step, or the connection dropped
     * after the last byte): queue it now, and say "complete" only once it is. */
    if (job_find(id)) {
        fail(c, ERR_UPLOAD_FINISHING, NULL, NULL);
        return;
    }
    int fd = lock_data(gw, id);
    if (fd == -2) {
        fail_unknown(c);
        return;
    }
    if (fd == -1) {
        fail(c, ERR_UPLOAD_FINISHING, NULL, NULL);
        return;
    }
    struct job *j = job_new(c, JOB_HEAD, id, &in);
    j->lockfd = fd;
    finalize(j);
}

static void head_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)r;
    (void)p;
    char id[IDENT_LEN + 1];
    if (upload_id(c, id) == 0) head_upload(c, id);
}

/* ---- PATCH -------------------------------------------------------------------------------- */

/* Body sink: append to the data file, hashing the chunk when a checksum was sent. */
static int patch_sink(void *arg, const char *data, size_t len)
{
    struct job *j = arg;
    if (j->bad_type) return 0; /* read and dropped: the answer will be 415 */
    if (j->start == 0 && j->siglen < SIG_LEN) {
        size_t take = len < SIG_LEN - j->siglen ? len : SIG_LEN - j->siglen;
        memcpy(j->sig + j->siglen, data, take);
        j->siglen += take;
        if (!sniff(j->sig, j->siglen) && !sniff_possible(j->sig, j->siglen)) {
            j->bad_type = 1;
            return 0;
        }
    }
    if (j->md && EVP_DigestUpdate(j->md, data, len) != 1) abort();
    if (spool_write(j->sp, data, len) < 0) {
        request_fail(&j->c->req, 500, "internal_error", "spool write failed");
        return -1;
    }
    return 0;
}

/* The PATCH ended without an answer (client gone, body timeout, limit): keep what came,
 * except a chunk that had to be whole (checksum) or was not an image. */
static void patch_abort(struct conn *c, void *arg)
{
    (void)c;
    struct job *j = arg;
    uint64_t got = j->sp ? spool_size(j->sp) : j->start;
    if (j->md || j->bad_type) {
        truncate_data(j->gw, j->id, j->start);
        got = j->start;
    }
    if (j->sp) {
        spool_close(j->sp); /* no fsync on the loop for a partial chunk: see the top */
        j->sp = NULL;
    }
    log_info("tus: PATCH cut off id=%s offset=%llu kept=%llu", j->id,
             (unsigned long long)j->start, (unsigned long long)(got - j->start));
    job_free(j);
}

static const EVP_MD *checksum_md(const char *name, size_t len)
{
    if (len == 4 && memcmp(name, "sha1", 4) == 0) return EVP_sha1();
    if (len == 3 && memcmp(name, "md5", 3) == 0) return EVP_md5();
    if (len == 6 && memcmp(name, "sha256", 6) == 0) return EVP_sha256();
    return NULL;
}

static int patch_head(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)p;
    struct gw *gw = c->gw;
    char id[IDENT_LEN + 1];
    size_t len;
    const char *v;
    uint64_t offset;
    const EVP_MD *md = NULL;
    unsigned char want[EVP_MAX_MD_SIZE];
    ssize_t wantlen = 0;

    if (!version_ok(c, r) || upload_id(c, id) < 0) return -1;
    v = header(r, "content-type", &len);
    if (!v || len != 31 || strncasecmp(v, "application/offset+octet-stream", 31) != 0) {
        fail_msg(c, ERR_UNSUPPORTED_MEDIA_TYPE, "Content-Type",
                 "PATCH harus memakai Content-Type: application/offset+octet-stream.",
                 "PATCH must use Content-Type: application/offset+octet-stream.", NULL);
        return -1;
    }
    if (!(v = header(r, "upload-offset", &len)) || parse_uint(v, len, &offset) < 0) {
        fail(c, ERR_INVALID_UPLOAD_OFFSET, "Upload-Offset", NULL);
        return -1;
    }
    if ((v = header(r, "upload-checksum", &len))) {
        const char *sp = memchr(v, ' ', len);
        md = sp ? checksum_md(v, (size_t)(sp - v)) : NULL;
        if (!md) {
            fail(c, ERR_CHECKSUM_ALGORITHM_UNSUPPORTED, "Upload-Checksum", NULL);
            return -1;
        }
        const char *b = sp + 1;
        wantlen = codec_b64_decode(b, len - (size_t)(b - v), want, sizeof want);
        if (wantlen < 0 || wantlen != EVP_MD_size(md)) {
            fail(c, ERR_INVALID_CHECKSUM, "Upload-Checksum", NULL);
            return -1;
        }
    }

    struct info in;
    if (read_info(gw, id, &in) < 0) {
        uint64_t size;
        if (data_size(gw, id, &size) == 0) fail_complete(c);
        else fail_unknown(c);
        return -1;
    }
    if (in.expires <= now_s()) {
        expire_upload(gw, id);
        fail_expired(c);
        return -1;
    }
    struct job *old = job_find(id);
    if (old && old->finishing) {
        fail_locked(c);
        return -1;
    }
    /* A newer PATCH for the same upload means the client gave up on the older one (its
     * connection died without telling us): close that one; its bytes so far are kept. */
    if (old) {
        log_info("tus: PATCH takes over id=%s", id);
        conn_close(old->c);
    }
    int fd = lock_data(gw, id);
    if (fd == -1) {
        fail_locked(c);
        return -1;
    }
    if (fd == -2) {
        fail_unknown(c);
        return -1;
    }
    char name[NAME_LEN], err[256];
    file_name(name, sizeof name, id, 0);
    struct spool *s = spool_open(gw, name, 1, err, sizeof err);
    if (!s) {
        log_error("tus: %s", err);
        close(fd);
        fail_internal(c);
        return -1;
    }
    uint64_t size = spool_size(s);
    if (offset != size) {
        spool_close(s);
        close(fd);
        char n[24];
        snprintf(n, sizeof n, "%llu", (unsigned long long)size);
        reply_header(c, "Upload-Offset", n);
        fail(c, ERR_OFFSET_MISMATCH, "Upload-Offset",
             json_pack("{s:I}", "offset", (json_int_t)size));
        return -1;
    }
    uint64_t remaining = in.length > size ? in.length - size : 0;
    if (r->content_length_seen && r->content_length > remaining) {
        spool_close(s);
        close(fd);
        fail(c, ERR_UPLOAD_LENGTH_EXCEEDED, NULL,
             json_pack("{s:I}", "remaining", (json_int_t)remaining));
        return -1;
    }

    struct job *j = job_new(c, JOB_PATCH, id, &in);
    j->lockfd = fd;
    j->sp = s;
    j->start = size;
    if (md) {
        j->md = EVP_MD_CTX_new();
        if (!j->md || EVP_DigestInit_ex(j->md, md, NULL) != 1) abort();
        memcpy(j->want, want, (size_t)wantlen);
        j->wantlen = (unsigned)wantlen;
    }
    r->body_max = remaining;
    r->body_fn = patch_sink;
    r->body_arg = j;
    conn_set_abort(c, patch_abort, j);
    return 0;
}

static void patch_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)p;
    struct job *j = r->body_arg;
    struct gw *gw = c->gw;
    conn_set_abort(c, NULL, NULL); /* from here this function answers */
    if (j->bad_type) {
        remove_upload(gw, j->id);
        fail_type(c);
        job_free(j);
        return;
    }
    if (j->md) {
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned dl = 0;
        if (EVP_DigestFinal_ex(j->md, d, &dl) != 1) abort();
        if (dl != j->wantlen || CRYPTO_memcmp(d, j->want, dl) != 0) {
            spool_close(j->sp);
            j->sp = NULL;
            truncate_data(gw, j->id, j->start);
            char n[24];
            snprintf(n, sizeof n, "%llu", (unsigned long long)j->start);
            reply_header(c, "Upload-Offset", n);
            fail(c, ERR_CHECKSUM_MISMATCH, "Upload-Checksum",
                 json_pack("{s:I}", "offset", (json_int_t)j->start));
            job_free(j);
            return;
        }
    }
    uint64_t offset = spool_size(j->sp);
    struct spool *s = j->sp;
    j->sp = NULL;
    if (offset < j->info.length) {
        spool_close(s); /* a partial chunk is not fsynced: see the top */
    } else if (spool_finish(s) < 0) { /* the data file is gone with the error */
        remove_upload(gw, j->id);
        fail_internal(c);
        job_free(j);
        return;
    }
    if (offset < j->info.length) {
        char n[24], date[40];
        snprintf(n, sizeof n, "%llu", (unsigned long long)offset);
        http_date(j->info.expires, date);
        reply_header(c, "Tus-Resumable", TUS_VERSION);
        reply_header(c, "Upload-Offset", n);
        reply_header(c, "Upload-Expires", date);
        reply_raw(c, 204, NULL, "", 0);
        job_free(j);
        return;
    }
    finalize(j);
}

/* ---- DELETE (termination) ----------------------------------------------------------------- */

static void on_deleted(void *arg, const redisReply *rep, const char *err)
{
    struct job *j = arg;
    if (err || !rep || rep->type != REDIS_REPLY_INTEGER) {
        redis_down(j->c);
        job_free(j);
        return;
    }
    unlink_files(j->gw, j->id);
    resv_release(j->gw, j->id);
    log_info("tus: terminated id=%s", j->id);
    reply_header(j->c, "Tus-Resumable", TUS_VERSION);
    reply_raw(j->c, 204, NULL, "", 0);
    job_free(j);
}

static void delete_upload(struct conn *c, const char *id)
{
    struct gw *gw = c->gw;
    struct info in;
    uint64_t size;
    if (read_info(gw, id, &in) < 0) {
        if (data_size(gw, id, &size) == 0) fail_complete(c);
        else fail_unknown(c);
        return;
    }
    struct job *old = job_find(id);
    if (old && old->finishing) {
        fail_locked(c);
        return;
    }
    if (old) conn_close(old->c);
    int fd = lock_data(gw, id);
    if (fd == -1) {
        fail_locked(c);
        return;
    }
    struct job *j = job_new(c, JOB_DELETE, id, &in);
    j->lockfd = fd >= 0 ? fd : -1; /* no data file: the rest is removed all the same */
    j->finishing = 1;
    char key[KEYS_MAX];
    keys_upload(key, id);
    if (rconn_command(gw->redis, on_deleted, j, "DEL %s", key) < 0) {
        redis_refused(c);
        job_free(j);
    }
}

static void delete_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)r;
    (void)p;
    char id[IDENT_LEN + 1];
    if (upload_id(c, id) == 0) delete_upload(c, id);
}

/* ---- X-HTTP-Method-Override --------------------------------------------------------------- */

/* The method a POST /v1/uploads/{id} stands for: "PATCH", "DELETE", "HEAD" or NULL. */
static const char *override_method(const struct request *r)
{
    size_t len;
    const char *v = header(r, "x-http-method-override", &len);
    if (!v) return NULL;
    if (len == 5 && strncasecmp(v, "PATCH", 5) == 0) return "PATCH";
    if (len == 6 && strncasecmp(v, "DELETE", 6) == 0) return "DELETE";
    if (len == 4 && strncasecmp(v, "HEAD", 4) == 0) return "HEAD";
    return NULL;
}

static int override_head(struct conn *c, struct request *r, const struct route_params *p)
{
    const char *m = override_method(r);
    if (m && strcmp(m, "PATCH") == 0) return patch_head(c, r, p);
    if (m) return plain_head(c, r, p);
    reply_header(c, "Allow", "HEAD, PATCH, DELETE");
    fail_msg(c, ERR_METHOD_NOT_ALLOWED, "X-HTTP-Method-Override",
             "POST ke alamat unggahan harus memakai X-HTTP-Method-Override: PATCH, DELETE atau "
             "HEAD.",
             "A POST to an upload's address must carry X-HTTP-Method-Override: PATCH, DELETE or "
             "HEAD.",
             NULL);
    return -1;
}

static void override_route(struct conn *c, struct request *r, const struct route_params *p)
{
    const char *m = override_method(r); /* never NULL here: override_head refused that */
    if (m && strcmp(m, "PATCH") == 0) patch_route(c, r, p);
    else if (m && strcmp(m, "DELETE") == 0) delete_route(c, r, p);
    else head_route(c, r, p);
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
    int64_t now = now_s();
    DIR *d = opendir(gw->conf.upload.spool_dir);
    if (d) {
        struct dirent *e;
        char id[IDENT_LEN + 1];
        struct info in;
        while ((e = readdir(d))) {
            if (!info_name(e->d_name, id)) continue;
            if (read_info(gw, id, &in) == 0) {
                if (in.expires <= now) expire_upload(gw, id);
                continue;
            }
            /* Unreadable (a crash while it was written): judge by the file's age. */
            char path[PATH_LEN];
            struct stat st;
            file_path(gw, path, sizeof path, id, 1);
            if (stat(path, &st) == 0 && (int64_t)st.st_mtime + gw->conf.upload.tus_expiry_s <= now)
                expire_upload(gw, id);
        }
        closedir(d);
    }
    /* Reservations of uploads that another process completed, terminated or expired. */
    for (struct resv *v = resvs, *next; v; v = next) {
        next = v->next;
        char path[PATH_LEN];
        file_path(gw, path, sizeof path, v->id, 1);
        if (access(path, F_OK) < 0 && errno == ENOENT) resv_release(gw, v->id);
    }
}

static int sweep_interval_s(struct gw *gw)
{
    int s = gw->conf.upload.tus_expiry_s / 4;
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

/* ---- public ------------------------------------------------------------------------------- */

void tus_init(struct gw *gw)
{
    sweep_ev = evtimer_new(gw->base, sweep_cb, gw);
    if (!sweep_ev) abort();
    struct timeval tv = {sweep_interval_s(gw), 0};
    evtimer_add(sweep_ev, &tv);
}

void tus_free(struct gw *gw)
{
    (void)gw;
    if (sweep_ev) event_free(sweep_ev);
    sweep_ev = NULL;
    while (jobs) job_free(jobs);
    while (resvs) {
        struct resv *v = resvs;
        resvs = v->next;
        free(v);
    }
}

int tus_offset(struct gw *gw, const char *id, uint64_t *offset)
{
    char path[PATH_LEN];
    if (!ident_valid(id, strlen(id))) return -1;
    file_path(gw, path, sizeof path, id, 1);
    if (access(path, F_OK) < 0) return -1;
    return data_size(gw, id, offset);
}

void tus_register(struct router *rt)
{
    router_add(rt, &(struct route){.method = "OPTIONS", .pattern = "/v1/uploads",
                                   .fn = options_route, .name = "tus_options"});
    router_add(rt, &(struct route){.method = "POST", .pattern = "/v1/uploads",
                                   .fn = create_route, .head = plain_head, .name = "tus_create",
                                   .flags = ROUTE_NEEDS_SESSION});
    router_add(rt, &(struct route){.method = "HEAD", .pattern = "/v1/uploads/{id}",
                                   .fn = head_route, .head = plain_head, .name = "tus_head",
                                   .flags = ROUTE_NEEDS_SESSION});
    router_add(rt, &(struct route){.method = "PATCH", .pattern = "/v1/uploads/{id}",
                                   .fn = patch_route, .head = patch_head, .name = "tus_patch",
                                   .max_body = PATCH_MAX_BODY, .flags = ROUTE_NEEDS_SESSION});
    router_add(rt, &(struct route){.method = "DELETE", .pattern = "/v1/uploads/{id}",
                                   .fn = delete_route, .head = plain_head, .name = "tus_delete",
                                   .flags = ROUTE_NEEDS_SESSION});
    router_add(rt, &(struct route){.method = "POST", .pattern = "/v1/uploads/{id}",
                                   .fn = override_route, .head = override_head,
                                   .name = "tus_override", .max_body = PATCH_MAX_BODY,
                                   .flags = ROUTE_NEEDS_SESSION});
}
