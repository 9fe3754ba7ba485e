/* tus.c: resumable uploads, tus 1.0.0 at /v1/uploads.
 *
 * Extensions offered: creation, expiration, checksum (sha1, md5, sha256), termination; and
 * X-HTTP-Method-Override on POST /v1/uploads/{id} (core protocol). Not offered:
 * creation-with-upload, creation-defer-length, concatenation, checksum-trailer.
 *
 * Storage (the files of an upload still receiving, its offset, locks, its share of the spool
 * bytes, expiry and its record in Redis) is tus_store.c's; its top comment says where things
 * live. This file speaks the protocol: it checks headers, parses Upload-Metadata
 * (tus_metadata_parse), streams PATCH bodies, and answers.
 *
 * Budgets (spool.h): a PATCH holds one of its process's upload slots while it streams, never an
 * idle upload; its head asks Redis to count the upload's bytes again (spool.lua 'renew'), so
 * an upload idle past [upload] tus_idle_s resumes only when there is room, and one replaced
 * by a newer creation of the same registration and kind is found gone (404). Creation is one
 * script (owner, registration, the session's unfinished uploads, bytes, record).
 *
 * Completion: when the last byte is in, the data file is fsynced (off the loop, syncer.h; the
 * upload cannot be taken over meanwhile) and the same job as a single-shot upload is queued
 * (spool_enqueue: record -> processing, the registration's pointer, the `upload` stream entry).
 * Only once Redis confirmed that is tus-ID.info removed and the PATCH answered 204; an upload
 * left complete but unqueued is queued by the next HEAD or PATCH, so a client never hears
 * "complete" for an upload whose job is not in Redis.
 *
 * Spool files are local: an upload must be resumed on the machine that received its first
 * bytes (any process there). Ids are owner-marked (ident.h): someone else's upload or
 * registration is refused from the head alone.
 *
 * Concurrency: one request writes an upload at a time. Within a process a new PATCH takes the
 * upload over from an older one still streaming (a phone whose connection died without a FIN
 * would hold it until the body timeout); across processes the data file is flock()ed and a
 * second writer gets 409 upload_locked, which tus-js-client retries.
 */
#include "tus.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/util.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
#include "tus_store.h"
#include "upload.h"

#define TUS_EXTENSIONS "creation,expiration,checksum,termination"
#define TUS_ALGORITHMS "sha1,md5,sha256"
#define PATH_LEN (CONF_STR + 64)
#define NAME_LEN 64
#define SIG_LEN SNIFF_MAX          /* first bytes kept: enough for any ftyp brand (sniff.h) */
#define PATCH_MAX_BODY (1LL << 30) /* the real bound is the upload's remaining length */

/* A request working on one upload: a PATCH streaming its body, or any request queuing a
 * complete upload or terminating one. Listed while alive, so that one upload has one writer
 * per process. */
enum op_kind { OP_PATCH, OP_HEAD, OP_DELETE };

struct op {
    struct op *next;
    struct conn *c;
    struct gw *gw;
    enum op_kind kind;
    char id[IDENT_LEN + 1];
    struct tus_info info;
    int lockfd;       /* holds the flock on the data file; -1 none */
    struct spool *sp; /* the data file, while a PATCH body streams */
    uint64_t start;   /* the offset when the PATCH began */
    EVP_MD_CTX *md;   /* Upload-Checksum being computed, or NULL */
    unsigned char want[EVP_MAX_MD_SIZE];
    unsigned wantlen;
    unsigned char sig[SIG_LEN]; /* the upload's first bytes, while under SIG_LEN are known */
    size_t siglen;
    unsigned sig_on : 1;    /* the PATCH began inside the first SIG_LEN bytes: check them */
    unsigned bad_type : 1;  /* the first bytes cannot be a photo type we take (upload.h) */
    unsigned finishing : 1; /* queuing or removing: cannot be taken over */
    unsigned slot : 1;      /* holds one of the process's upload slots (a PATCH) */
    char content_type[16];  /* detected from the bytes at completion */
};

static struct op *ops;

/* ---- small helpers ------------------------------------------------------------------------ */

static int64_t now_s(void) { return (int64_t)time(NULL); }

/* An RFC 7231 date (IMF-fixdate) of T into OUT. */
static void http_date(int64_t t, char out[40])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    evutil_date_rfc1123(out, 40, &tm);
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

/* The upload's bytes are of type DETECTED, not a photo we take; IN's filetype was DECLARED. */
static void fail_type(struct conn *c, const struct tus_info *in, enum sniff_type detected)
{
    reply_header(c, "Tus-Resumable", TUS_VERSION);
    upload_refuse_content(c, in->content_type, detected);
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

/* ---- ops --------------------------------------------------------------------------------- */

static struct op *op_find(const char *id)
{
    for (struct op *j = ops; j; j = j->next)
        if (strcmp(j->id, id) == 0) return j;
    return NULL;
}

static struct op *op_new(struct conn *c, enum op_kind kind, const char *id,
                         const struct tus_info *in)
{
    struct op *j = calloc(1, sizeof *j);
    if (!j) abort();
    j->c = c;
    j->gw = c->gw;
    j->kind = kind;
    memcpy(j->id, id, IDENT_LEN + 1);
    if (in) j->info = *in;
    j->lockfd = -1;
    j->next = ops;
    ops = j;
    return j;
}

/* Unlist J, release its lock and free it. An open spool file is closed as it is. */
static void op_free(struct op *j)
{
    for (struct op **pp = &ops; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    if (j->sp) spool_close(j->sp);
    if (j->slot) spool_slot_release(j->gw);
    if (j->md) EVP_MD_CTX_free(j->md);
    if (j->lockfd >= 0) close(j->lockfd);
    free(j);
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
    struct tus_info info;
    char id[IDENT_LEN + 1];
};

static int meta_fail(struct tus_meta_error *e, enum error_id code, const char *field,
                     const char *msg_id, const char *msg_en)
{
    e->code = code;
    e->field = field;
    e->msg_id = msg_id;
    e->msg_en = msg_en;
    return -1;
}

/* The decoded value DEC (DL bytes, may hold NULs) is exactly the string WANT. */
static int value_is(const unsigned char *dec, size_t dl, const char *want)
{
    return dl == strlen(want) && memcmp(dec, want, dl) == 0;
}

int tus_metadata_parse(const char *v, size_t len, struct tus_info *in, struct tus_meta_error *e)
{
    int have_reg = 0, have_kind = 0, have_type = 0;
    if (len > TUS_META_MAX)
        return meta_fail(e, ERR_INVALID_METADATA, NULL,
                         "Upload-Metadata terlalu panjang (maksimal 1024 byte).",
                         "Upload-Metadata is too long (at most 1024 bytes).");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
            return meta_fail(e, ERR_INVALID_METADATA, NULL,
                             "Upload-Metadata memuat karakter yang tidak sah.",
                             "Upload-Metadata has characters that are not allowed.");
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
        if (ke == k)
            return meta_fail(e, ERR_INVALID_METADATA, NULL, "Upload-Metadata memuat kunci kosong.",
                             "Upload-Metadata has an empty key.");
        unsigned char dec[192];
        ssize_t n = codec_b64_decode(val, (size_t)(ve - val), dec, sizeof dec - 1);
        if (n < 0)
            return meta_fail(e, ERR_INVALID_METADATA, NULL,
                             "Nilai Upload-Metadata harus berupa Base64.",
                             "Upload-Metadata values must be Base64.");
        size_t dl = (size_t)n, kl = (size_t)(ke - k);
        dec[dl] = 0;
        /* Values are compared with their length: a decoded NUL must not cut "ktp\0..." to
         * "ktp". */
        if (kl == 15 && memcmp(k, "registration_id", 15) == 0) {
            if (have_reg++ || !ident_valid((const char *)dec, dl))
                return meta_fail(e, ERR_INVALID_METADATA, "registration_id",
                                 "registration_id tidak valid; pakai id dari pendaftaran Anda.",
                                 "registration_id is not valid; use the id of your "
                                 "registration.");
            memcpy(in->reg, dec, IDENT_LEN + 1);
        } else if (kl == 4 && memcmp(k, "kind", 4) == 0) {
            if (have_kind++ || (!value_is(dec, dl, "ktp") && !value_is(dec, dl, "selfie")))
                return meta_fail(e, ERR_INVALID_METADATA, "kind", "kind harus ktp atau selfie.",
                                 "kind must be ktp or selfie.");
            memcpy(in->kind, dec, dl + 1);
        } else if (kl == 8 && memcmp(k, "filetype", 8) == 0) {
            if (have_type++)
                return meta_fail(e, ERR_INVALID_METADATA, "filetype",
                                 "filetype disebut lebih dari sekali.",
                                 "filetype is given more than once.");
            /* Empty (a browser that does not know the file's type) says nothing, like
             * application/octet-stream: the bytes decide at completion. */
            const char *t = dl ? upload_declared((const char *)dec, dl) : "";
            if (!t)
                return meta_fail(e, ERR_UNSUPPORTED_MEDIA_TYPE, "filetype", UPLOAD_TYPE_MSG_ID,
                                 UPLOAD_TYPE_MSG_EN);
            snprintf(in->content_type, sizeof in->content_type, "%s", t);
        }
    }
    if (!have_reg)
        return meta_fail(e, ERR_INVALID_METADATA, "registration_id",
                         "Sebutkan registration_id di Upload-Metadata.",
                         "Name the registration_id in Upload-Metadata.");
    if (!have_kind)
        return meta_fail(e, ERR_INVALID_METADATA, "kind",
                         "Sebutkan kind (ktp atau selfie) di Upload-Metadata.",
                         "Name the kind (ktp or selfie) in Upload-Metadata.");
    return 0;
}

/* Parse Upload-Metadata (V, LEN; V may be NULL) into IN. 0, or -1 after answering. (Whose the
 * registration is, the record decides: on_created.) */
static int parse_metadata(struct conn *c, const char *v, size_t len, struct tus_info *in)
{
    struct tus_meta_error e;
    if (tus_metadata_parse(v, len, in, &e) < 0) {
        /* A filetype we do not take answers as any other wrong type, with no field. */
        if (e.code == ERR_UNSUPPORTED_MEDIA_TYPE) {
            reply_header(c, "Tus-Resumable", TUS_VERSION);
            upload_refuse_declared(c);
        } else fail_msg(c, e.code, e.field, e.msg_id, e.msg_en, NULL);
        return -1;
    }
    return 0;
}

/* The record is in Redis: make the upload's files (the .info first: a data file without one
 * would look like a finished upload) and answer 201. */
static void make_files(struct create *cr)
{
    struct conn *c = cr->c;
    struct gw *gw = c->gw;
    char errbuf[256], name[NAME_LEN];
    struct spool *s = NULL;
    if (tus_store_write_info(gw, cr->id, &cr->info, errbuf, sizeof errbuf) < 0) goto broken;
    tus_store_name(name, sizeof name, cr->id, 0);
    if (!(s = spool_open(gw, name, 0, errbuf, sizeof errbuf))) goto broken;
    spool_close(s);
    log_info("tus: created id=%s registration=%s kind=%s length=%llu", cr->id, cr->info.reg,
             cr->info.kind, (unsigned long long)cr->info.length);
    char loc[64], date[40];
    snprintf(loc, sizeof loc, "/v1/uploads/%s", cr->id);
    http_date(cr->info.expires, date);
    reply_header(c, "Tus-Resumable", TUS_VERSION);
    reply_header(c, "Location", loc);
    reply_header(c, "Upload-Expires", date);
    reply_json(c, 201,
               json_pack("{s:s, s:s, s:s, s:I}", "upload_id", cr->id, "state", "receiving",
                         "status_url", loc, "expires_at", (json_int_t)cr->info.expires));
    free(cr);
    return;

broken:
    log_error("tus: cannot create upload: %s", errbuf);
    tus_store_remove(gw, cr->id);
    fail_internal(c);
    free(cr);
}

static void ignore_reply(void *arg, const redisReply *r, const char *err)
{
    (void)arg;
    (void)r;
    if (err) log_warn("tus: redis command failed err=%s", err);
}

/* Upload ID was replaced by a newer one of the same document: its files go, unless a request
 * of this process or another is working on it (its next PATCH then finds it gone). */
static void drop_replaced(struct gw *gw, const char *id)
{
    if (!ident_valid(id, strlen(id)) || op_find(id)) return;
    int fd = tus_store_lock(gw, id);
    if (fd == -1) return;
    tus_store_unlink(gw, id);
    if (fd >= 0) close(fd);
    log_info("tus: replaced by a newer upload id=%s", id);
}

/* The owner, the registration, the session's uploads and the budget are checked, and the record
 * written (spool.lua 'tus_create'): make the files and answer, or refuse. */
static void on_created(void *arg, const redisReply *rep, const char *err)
{
    struct create *cr = arg;
    struct conn *c = cr->c;
    struct gw *gw = c->gw;
    const char *w = spool_reply_word(rep, err);
    if (!w) {
        log_warn("tus: record not written id=%s err=%s", cr->id,
                 err               ? err
                 : rep && rep->str ? rep->str
                                   : "?");
        /* A timed-out script may still run: undo it after (its lease would lapse anyway). */
        tus_store_record_delete(gw, cr->id, ignore_reply, NULL);
        redis_down(c);
        free(cr);
        return;
    }
    if (!strcmp(w, "not_owner")) {
        fail_msg(c, ERR_NOT_OWNER, "registration_id", "Pendaftaran ini bukan milik sesi Anda.",
                 "This registration does not belong to your session.", NULL);
    } else if (!strcmp(w, "unknown_registration")) {
        fail_msg(c, ERR_UNKNOWN_REGISTRATION, "registration_id",
                 "Pendaftaran ini tidak ditemukan; daftar dulu, lalu unggah dokumen.",
                 "This registration was not found; register first, then upload documents.", NULL);
    } else if (!strcmp(w, "too_many")) {
        fail(c, ERR_TOO_MANY_UPLOADS, NULL,
             json_pack("{s:i}", "max_unfinished", gw->conf.upload.tus_per_session));
    } else if (strcmp(w, "created") != 0) {
        fail(c, ERR_UPLOAD_BUDGET, NULL, NULL);
    } else {
        for (size_t i = 1; i < rep->elements; i++)
            if (rep->element[i]->type == REDIS_REPLY_STRING)
                drop_replaced(gw, rep->element[i]->str);
        make_files(cr);
        return;
    }
    free(cr);
}

/* The head's checks passed: one script checks the owner, the registration, the session's
 * unfinished uploads and the budget, and writes the record. */
static void create_upload(struct conn *c, struct create *cr)
{
    struct gw *gw = c->gw;
    const char *owner = gate_session(c)->owner;
    if (ident_new(gw, "upl", owner, cr->id) < 0) {
        log_error("tus: cannot create upload: no pepper in the key file");
        fail_internal(c);
        free(cr);
        return;
    }
    cr->info.expires = now_s() + gw->conf.upload.tus_expiry_s;
    char path[PATH_LEN];
    tus_store_path(gw, path, sizeof path, cr->id, 0);
    int marked = ident_owned(gw, "reg", cr->info.reg, IDENT_LEN, owner);
    if (tus_store_record_create(gw, cr->id, &cr->info, path, owner, marked, on_created, cr) < 0) {
        free(cr);
        redis_refused(c);
    }
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
        if (max % (1024 * 1024) == 0)
            snprintf(mb, sizeof mb, "%llu MB", (unsigned long long)(max / (1024 * 1024)));
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
    create_upload(c, cr);
}

/* ---- completion --------------------------------------------------------------------------- */

static void answer_head(struct conn *c, const struct tus_info *in, uint64_t offset, int receiving)
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
static void queued(struct op *j)
{
    struct gw *gw = j->gw;
    struct conn *c = j->c;
    char path[PATH_LEN];
    tus_store_path(gw, path, sizeof path, j->id, 1);
    unlink(path);
    log_info("tus: complete id=%s bytes=%llu type=%s", j->id, (unsigned long long)j->info.length,
             j->content_type);
    if (j->kind == OP_HEAD) {
        answer_head(c, &j->info, j->info.length, 0);
    } else {
        char n[24];
        snprintf(n, sizeof n, "%llu", (unsigned long long)j->info.length);
        reply_header(c, "Tus-Resumable", TUS_VERSION);
        reply_header(c, "Upload-Offset", n);
        reply_raw(c, 204, NULL, "", 0);
    }
    op_free(j);
}

/* Queuing failed: the upload stays complete-but-unqueued for the next HEAD or PATCH. */
static void finalize_failed(struct op *j, const char *why)
{
    log_warn("tus: not queued id=%s err=%s", j->id, why);
    redis_down(j->c);
    op_free(j);
}

static void on_enqueued(void *arg, const redisReply *rep, const char *err)
{
    struct op *j = arg;
    const char *outcome = spool_enqueue_outcome(rep, err);
    if (!outcome) {
        /* The script may still run: the files stay (the next HEAD or PATCH sees the record). */
        finalize_failed(j, err ? err : rep && rep->str ? rep->str : "?");
        return;
    }
    if (!strcmp(outcome, "not_owner")) {
        /* A recovery moved the registration while the upload came: its bytes go, no job (the
         * script gave the budget back). */
        log_info("tus: registration changed owner id=%s", j->id);
        tus_store_unlink(j->gw, j->id);
        reply_header(j->c, "Tus-Resumable", TUS_VERSION);
        upload_refuse_not_owner(j->c);
        op_free(j);
        return;
    }
    if (!strcmp(outcome, "superseded")) {
        /* A newer upload of this document came first: complete, but no job; its status says
         * superseded. */
        char path[PATH_LEN];
        tus_store_path(j->gw, path, sizeof path, j->id, 0);
        unlink(path);
    } else spool_enqueued_cleanup(j->gw, rep);
    queued(j);
}

static void on_state(void *arg, const redisReply *rep, const char *err)
{
    struct op *j = arg;
    if (err || !rep || (rep->type != REDIS_REPLY_STRING && rep->type != REDIS_REPLY_NIL)) {
        finalize_failed(j, err ? err : "unexpected reply");
        return;
    }
    /* An earlier attempt whose answer was lost (timeout) may have queued it already: queue a
     * job once. */
    if (rep->type == REDIS_REPLY_STRING && strcmp(rep->str, "receiving") != 0 &&
        strcmp(rep->str, "superseded") != 0) {
        queued(j);
        return;
    }
    char path[PATH_LEN];
    tus_store_path(j->gw, path, sizeof path, j->id, 0);
    if (spool_enqueue(j->gw, j->id, j->info.reg, gate_session(j->c)->owner, j->info.kind, path,
                      j->info.length, j->content_type, "", on_enqueued, j) < 0)
        finalize_failed(j, "refused");
}

/* All bytes are in and on disk, and J holds the lock: check what they are, then queue the
 * job. Answers J's request. */
static void finalize(struct op *j)
{
    struct gw *gw = j->gw;
    j->finishing = 1;
    uint64_t size;
    if (tus_store_size(gw, j->id, &size) < 0 || size != j->info.length) {
        log_error("tus: complete upload has the wrong size id=%s", j->id);
        tus_store_remove(gw, j->id);
        fail_internal(j->c);
        op_free(j);
        return;
    }
    enum sniff_type t = tus_store_sniff(gw, j->id);
    if (!upload_type_taken(t)) {
        log_info("tus: not a photo type we take id=%s type=%s", j->id,
                 sniff_mime(t) ? sniff_mime(t) : "unknown");
        tus_store_remove(gw, j->id);
        fail_type(j->c, &j->info, t);
        op_free(j);
        return;
    }
    snprintf(j->content_type, sizeof j->content_type, "%s", sniff_mime(t));
    if (tus_store_record_state(gw, j->id, on_state, j) < 0) finalize_failed(j, "refused");
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
    struct tus_info in;
    memset(&in, 0, sizeof in);
    /* Still "receiving" but no files here: terminated or expired (record not removed), or
     * received by another machine. Either way nothing here to resume. */
    if (st->type != REDIS_REPLY_STRING || strcmp(st->str, "receiving") == 0 ||
        len->type != REDIS_REPLY_STRING || parse_uint(len->str, len->len, &in.length) < 0) {
        fail_unknown(c);
        return;
    }
    if (meta->type == REDIS_REPLY_STRING && meta->len <= TUS_META_MAX) {
        int ok = 1;
        for (size_t i = 0; i < meta->len; i++)
            if ((unsigned char)meta->str[i] < 0x20 || (unsigned char)meta->str[i] > 0x7e) ok = 0;
        if (ok) memcpy(in.metadata, meta->str, meta->len);
    }
    answer_head(c, &in, in.length, 0);
}

/* Answer HEAD for upload ID from its record in Redis: one that is no longer receiving here. */
static void head_from_record(struct conn *c, const char *id)
{
    struct lookup *lk = calloc(1, sizeof *lk);
    if (!lk) abort();
    lk->c = c;
    if (tus_store_record_lookup(c->gw, id, on_record, lk) < 0) {
        free(lk);
        redis_refused(c);
    }
}

static void head_upload(struct conn *c, const char *id)
{
    struct gw *gw = c->gw;
    struct tus_info in;
    uint64_t size;
    if (tus_store_read_info(gw, id, &in) < 0) {
        /* Not receiving here: a finished upload's record tells its length. */
        head_from_record(c, id);
        return;
    }
    if (in.expires <= now_s()) {
        tus_store_expire(gw, id);
        fail_expired(c);
        return;
    }
    if (tus_store_size(gw, id, &size) < 0) {
        /* The info file outlived its data: the upload was queued and a worker has taken the
         * file (the process that queued it died before removing the info, or its enqueue
         * answered late). The record knows whether it is complete. */
        head_from_record(c, id);
        return;
    }
    if (size < in.length) {
        answer_head(c, &in, size, 1);
        return;
    }
    /* Complete but not yet queued (Redis failed at the last step, or the connection dropped
     * after the last byte): queue it now, and say "complete" only once it is. */
    if (op_find(id)) {
        fail(c, ERR_UPLOAD_FINISHING, NULL, NULL);
        return;
    }
    int fd = tus_store_lock(gw, id);
    if (fd == -2) {
        fail_unknown(c);
        return;
    }
    if (fd == -1) {
        fail(c, ERR_UPLOAD_FINISHING, NULL, NULL);
        return;
    }
    struct op *j = op_new(c, OP_HEAD, id, &in);
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
    struct op *j = arg;
    if (j->bad_type) return 0; /* read and dropped: the answer will be 415 */
    if (j->sig_on && j->siglen < SIG_LEN) {
        size_t take = len < SIG_LEN - j->siglen ? len : SIG_LEN - j->siglen;
        memcpy(j->sig + j->siglen, data, take);
        j->siglen += take;
        if (!upload_could_be_taken(j->sig, j->siglen)) {
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

/* A PATCH of unfinished upload J ended: its bytes stay counted for [upload] tus_idle_s from
 * now, not for as long as the chunk could have taken. */
static void patch_ended(struct op *j)
{
    if (j->slot) tus_store_renew(j->gw, j->id, j->info.length, 0, 0, ignore_reply, NULL);
}

/* The PATCH ended without an answer (client gone, body timeout, limit): keep what came,
 * except a chunk that had to be whole (checksum) or was not an image. */
static void patch_abort(struct conn *c, void *arg)
{
    (void)c;
    struct op *j = arg;
    uint64_t got = j->sp ? spool_size(j->sp) : j->start;
    if (j->md || j->bad_type) {
        tus_store_truncate(j->gw, j->id, j->start);
        got = j->start;
    }
    if (j->sp) {
        spool_close(j->sp); /* no fsync on the loop for a partial chunk: see the top */
        j->sp = NULL;
    }
    log_info("tus: PATCH cut off id=%s offset=%llu kept=%llu", j->id, (unsigned long long)j->start,
             (unsigned long long)(got - j->start));
    patch_ended(j);
    op_free(j);
}

/* A PATCH head waiting for spool.lua 'renew'. */
struct renewal {
    struct op *j; /* NULL once the request ended while it waited */
};

static void renew_abort(struct conn *c, void *arg)
{
    (void)c;
    struct renewal *w = arg;
    op_free(w->j);
    w->j = NULL;
}

/* The upload's bytes are counted again, or not: take the chunk, or refuse. */
static void on_renewed(void *arg, const redisReply *rep, const char *err)
{
    struct renewal *w = arg;
    struct op *j = w->j;
    free(w);
    if (!j) return;
    struct conn *c = j->c;
    conn_set_abort(c, NULL, NULL);
    const char *word = spool_reply_word(rep, err);
    if (word && !strcmp(word, "ok")) {
        c->req.body_fn = patch_sink;
        c->req.body_arg = j;
        conn_set_abort(c, patch_abort, j);
        conn_head_continue(c);
        return;
    }
    if (!word) {
        redis_down(c);
    } else if (!strcmp(word, "gone")) {
        const char *st = rep->elements > 1 && rep->element[1]->type == REDIS_REPLY_STRING
                             ? rep->element[1]->str
                             : "";
        if (!strcmp(st, "processing") || !strcmp(st, "accepted") || !strcmp(st, "rejected")) {
            /* Queued already (the answer to that was lost): no longer receiving. */
            char path[PATH_LEN];
            tus_store_path(j->gw, path, sizeof path, j->id, 1);
            unlink(path);
            fail_complete(c);
        } else {
            tus_store_unlink(j->gw, j->id);
            log_info("tus: PATCH on an upload no longer receiving id=%s state=%s", j->id, st);
            if (!strcmp(st, "superseded"))
                fail_msg(c, ERR_UNKNOWN_UPLOAD, NULL,
                         "Unggahan ini sudah diganti oleh unggahan yang lebih baru dari dokumen "
                         "yang sama.",
                         "This upload was replaced by a newer upload of the same document.", NULL);
            else fail_unknown(c);
        }
    } else {
        fail(c, ERR_UPLOAD_BUDGET, NULL, NULL);
    }
    op_free(j);
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

    struct tus_info in;
    if (tus_store_read_info(gw, id, &in) < 0) {
        uint64_t size;
        if (tus_store_size(gw, id, &size) == 0) fail_complete(c);
        else fail_unknown(c);
        return -1;
    }
    if (in.expires <= now_s()) {
        tus_store_expire(gw, id);
        fail_expired(c);
        return -1;
    }
    struct op *old = op_find(id);
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
    int fd = tus_store_lock(gw, id);
    if (fd == -1) {
        fail_locked(c);
        return -1;
    }
    if (fd == -2) {
        fail_unknown(c);
        return -1;
    }
    char name[NAME_LEN], err[256];
    tus_store_name(name, sizeof name, id, 0);
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

    if (spool_slot_take(gw) < 0) {
        spool_close(s);
        close(fd);
        fail(c, ERR_UPLOAD_BUDGET, NULL, NULL);
        return -1;
    }
    struct op *j = op_new(c, OP_PATCH, id, &in);
    j->slot = 1;
    j->lockfd = fd;
    j->sp = s;
    j->start = size;
    /* A PATCH that starts inside the first SIG_LEN bytes carries on the early type check with
     * the bytes already on disk (an earlier PATCH may have sent only a few). */
    if (size < SIG_LEN && (size == 0 || pread(fd, j->sig, (size_t)size, 0) == (ssize_t)size)) {
        j->siglen = (size_t)size;
        j->sig_on = 1;
    }
    if (md) {
        j->md = EVP_MD_CTX_new();
        if (!j->md || EVP_DigestInit_ex(j->md, md, NULL) != 1) abort();
        memcpy(j->want, want, (size_t)wantlen);
        j->wantlen = (unsigned)wantlen;
    }
    r->body_max = remaining;
    /* The upload's bytes are counted again (an idle upload's lease may have lapsed) while the
     * head waits. */
    struct renewal *w = calloc(1, sizeof *w);
    if (!w) abort();
    w->j = j;
    if (tus_store_renew(gw, id, in.length, remaining, 1, on_renewed, w) < 0) {
        free(w);
        op_free(j);
        redis_refused(c);
        return -1;
    }
    conn_set_abort(c, renew_abort, w);
    return 1;
}

/* The complete upload's data file is on disk, or could not be made so (then it is gone). */
static void patch_synced(void *arg, int rc)
{
    struct op *j = arg;
    if (rc < 0) {
        tus_store_remove(j->gw, j->id);
        fail_internal(j->c);
        op_free(j);
        return;
    }
    finalize(j);
}

static void patch_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)p;
    struct op *j = r->body_arg;
    struct gw *gw = c->gw;
    conn_set_abort(c, NULL, NULL); /* from here this function answers */
    if (j->bad_type) {
        tus_store_remove(gw, j->id);
        fail_type(c, &j->info, sniff_bytes(j->sig, j->siglen));
        op_free(j);
        return;
    }
    if (j->md) {
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned dl = 0;
        if (EVP_DigestFinal_ex(j->md, d, &dl) != 1) abort();
        if (dl != j->wantlen || CRYPTO_memcmp(d, j->want, dl) != 0) {
            spool_close(j->sp);
            j->sp = NULL;
            tus_store_truncate(gw, j->id, j->start);
            char n[24];
            snprintf(n, sizeof n, "%llu", (unsigned long long)j->start);
            reply_header(c, "Upload-Offset", n);
            fail(c, ERR_CHECKSUM_MISMATCH, "Upload-Checksum",
                 json_pack("{s:I}", "offset", (json_int_t)j->start));
            op_free(j);
            return;
        }
    }
    uint64_t offset = spool_size(j->sp);
    struct spool *s = j->sp;
    j->sp = NULL;
    if (offset >= j->info.length) {
        /* The last byte is in: the fsync runs off the loop (syncer.h), and the upload cannot
         * be taken over meanwhile. */
        j->finishing = 1;
        spool_finish_async(gw, s, patch_synced, j);
        return;
    }
    spool_close(s); /* a partial chunk is not fsynced: see the top */
    char n[24], date[40];
    snprintf(n, sizeof n, "%llu", (unsigned long long)offset);
    http_date(j->info.expires, date);
    reply_header(c, "Tus-Resumable", TUS_VERSION);
    reply_header(c, "Upload-Offset", n);
    reply_header(c, "Upload-Expires", date);
    reply_raw(c, 204, NULL, "", 0);
    patch_ended(j);
    op_free(j);
}

/* ---- DELETE (termination) ----------------------------------------------------------------- */

static void on_deleted(void *arg, const redisReply *rep, const char *err)
{
    struct op *j = arg;
    if (!spool_reply_word(rep, err)) {
        redis_down(j->c);
        op_free(j);
        return;
    }
    tus_store_unlink(j->gw, j->id);
    log_info("tus: terminated id=%s", j->id);
    reply_header(j->c, "Tus-Resumable", TUS_VERSION);
    reply_raw(j->c, 204, NULL, "", 0);
    op_free(j);
}

static void delete_upload(struct conn *c, const char *id)
{
    struct gw *gw = c->gw;
    struct tus_info in;
    uint64_t size;
    if (tus_store_read_info(gw, id, &in) < 0) {
        if (tus_store_size(gw, id, &size) == 0) fail_complete(c);
        else fail_unknown(c);
        return;
    }
    struct op *old = op_find(id);
    if (old && old->finishing) {
        fail_locked(c);
        return;
    }
    if (old) conn_close(old->c);
    int fd = tus_store_lock(gw, id);
    if (fd == -1) {
        fail_locked(c);
        return;
    }
    struct op *j = op_new(c, OP_DELETE, id, &in);
    j->lockfd = fd >= 0 ? fd : -1; /* no data file: the rest is removed all the same */
    j->finishing = 1;
    if (tus_store_record_delete(gw, id, on_deleted, j) < 0) {
        redis_refused(c);
        op_free(j);
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

/* ---- public ------------------------------------------------------------------------------- */

/* The sweep's hook: a request of this process is working on upload ID. */
static int busy(const char *id) { return op_find(id) != NULL; }

void tus_init(struct gw *gw) { tus_store_init(gw, busy); }

void tus_free(struct gw *gw)
{
    while (ops) op_free(ops);
    tus_store_free(gw);
}

int tus_offset(struct gw *gw, const char *id, uint64_t *offset)
{
    char path[PATH_LEN];
    if (!ident_valid(id, strlen(id))) return -1;
    tus_store_path(gw, path, sizeof path, id, 1);
    if (access(path, F_OK) < 0) return -1;
    return tus_store_size(gw, id, offset);
}

void tus_register(struct router *rt)
{
    router_add(rt, &(struct route){.method = "OPTIONS",
                                   .pattern = "/v1/uploads",
                                   .fn = options_route,
                                   .name = "tus_options"});
    router_add(rt, &(struct route){.method = "POST",
                                   .pattern = "/v1/uploads",
                                   .fn = create_route,
                                   .head = plain_head,
                                   .name = "tus_create",
                                   .flags = ROUTE_NEEDS_SESSION});
    router_add(rt, &(struct route){.method = "HEAD",
                                   .pattern = "/v1/uploads/{id}",
                                   .fn = head_route,
                                   .head = plain_head,
                                   .name = "tus_head",
                                   .flags = ROUTE_NEEDS_SESSION});
    router_add(rt, &(struct route){.method = "PATCH",
                                   .pattern = "/v1/uploads/{id}",
                                   .fn = patch_route,
                                   .head = patch_head,
                                   .name = "tus_patch",
                                   .max_body = PATCH_MAX_BODY,
                                   .flags = ROUTE_NEEDS_SESSION});
    router_add(rt, &(struct route){.method = "DELETE",
                                   .pattern = "/v1/uploads/{id}",
                                   .fn = delete_route,
                                   .head = plain_head,
                                   .name = "tus_delete",
                                   .flags = ROUTE_NEEDS_SESSION});
    router_add(rt, &(struct route){.method = "POST",
                                   .pattern = "/v1/uploads/{id}",
                                   .fn = override_route,
                                   .head = override_head,
                                   .name = "tus_override",
                                   .max_body = PATCH_MAX_BODY,
                                   .flags = ROUTE_NEEDS_SESSION});
}
