/* upload.c: single-shot document uploads (PUT .../documents/{kind}) and GET /v1/uploads/{id}.
 *
 * A KTP or selfie photo arrives as the whole body of one PUT. Everything that can be decided
 * from the head is decided there, before a body byte is read, so a refused phone does not send
 * megabytes for nothing: the owner of the registration first, then the document kind, the
 * length (411 without one), the size limit (413), a declared type that is not a photo we take
 * (415; see upload.h), whether Redis can take the job, and the upload budgets (503 +
 * Retry-After): a slot of this process, held while the body streams, and the spool bytes shared
 * by every gateway process (spool.h). One script while the head waits (conn_head_continue)
 * checks the owner (the record's `owner` field, which a recovery moves to a new session,
 * verify_recover.c, or the id's mark (ident.h) for a record without one) and reserves the
 * body's length; a head that fails its own checks reserves nothing and is answered after the
 * owner check, in the order above. The enqueue script checks that owner again, so a recovery
 * between the head and the end is refused too (403, no job, no file). An accepted body streams
 * into a spool file named by a fresh upload id, never whole in memory. When it is complete its
 * first bytes decide its type (sniff.h): one of the five taken types, whatever was declared,
 * recorded as the job's content_type (else 415 naming what it is); the file is fsynced, the job
 * is queued by one script (upload record, the registration's pointer, the `upload` stream
 * entry, the bytes counted as waiting for a worker, the older upload of the same document
 * superseded and its file removed), and only then does the applicant hear 202. A client that
 * goes away mid-body leaves no file and no job: the abort hook removes the file and gives the
 * budgets back. When the enqueue script's answer is lost (a timeout: it may still run), the
 * applicant hears 503 but the file stays for the job that may come (spool_reap.c removes it if
 * none does).
 *
 * GET /v1/uploads/{id} reads the upload record that the enqueue script wrote and the worker
 * updates (processing, then accepted or rejected with a reason and a hint, or superseded). */
#include "upload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "antre/keys.h"
#include "antre/log.h"
#include "antre/rconn.h"
#include "antre/sniff.h"
#include "conn.h"
#include "gate.h"
#include "gateway.h"
#include "ident.h"
#include "metrics.h"
#include "reply.h"
#include "router.h"
#include "spool.h"

#define MAGIC_LEN SNIFF_MAX /* the first bytes, kept for sniff_bytes */

/* One upload in progress, from the head to the answer. Freed by exactly one of: the abort hook
 * (the request ended unanswered), a refusal at completion, or the enqueue callback. */
struct upload {
    struct conn *c; /* NULL once the client went away while the head waited */
    struct gw *gw;
    struct spool *spool;
    int slot;      /* holds one of this process's upload slots */
    int reserved;  /* holds a reservation of the spool-bytes budget (Redis) */
    uint64_t max;  /* [upload] max_bytes when the head arrived */
    uint64_t want; /* bytes to reserve: Content-Length, or max when chunked */
    uint64_t received;
    const char *ctype; /* declared (upload_declared), "" or NULL; at completion the detected */
    const char *kind;  /* "ktp" or "selfie" (static) */
    char reg_id[IDENT_LEN + 1];
    char id[IDENT_LEN + 1];   /* the upload id, also the spool file's name */
    char fence[32];           /* when the upload began, by Redis' clock (spool.lua) */
    char path[CONF_STR + 80]; /* the spool file, kept after spool_finish for the job */
    unsigned char magic[MAGIC_LEN];
    size_t nmagic;
};

/* Free U, giving back its slot, and its reservation when GIVE_BACK (no job can come of it). */
static void upload_end(struct upload *u, int give_back)
{
    if (u->slot) spool_slot_release(u->gw);
    if (u->reserved && give_back) spool_unreserve(u->gw, u->id);
    free(u);
}

/* ---- messages ---------------------------------------------------------------------------- */

#define MIB (1024ULL * 1024)

/* BYTES as "12,3 MB" (DEC ',') or "12.3 MB" (DEC '.'); under 1 MB as "512 KB". UP rounds up
 * (a photo's size is never shown below the limit it broke), else down (a limit is never shown
 * above what it is). */
static void fmt_size(char *buf, size_t len, uint64_t bytes, int up, char dec)
{
    if (bytes < MIB) {
        unsigned long long kb = up ? (bytes + 1023) / 1024 : bytes / 1024;
        snprintf(buf, len, "%llu KB", kb);
        return;
    }
    unsigned long long tenths = up ? (bytes * 10 + MIB - 1) / MIB : bytes * 10 / MIB;
    if (tenths % 10) snprintf(buf, len, "%llu%c%llu MB", tenths / 10, dec, tenths % 10);
    else snprintf(buf, len, "%llu MB", tenths / 10);
}

static void refuse_too_large(struct conn *c, uint64_t size, uint64_t max)
{
    char sid[32], sen[32], mid[32], men[32], msg_id[160], msg_en[160];
    fmt_size(sid, sizeof sid, size, 1, ',');
    fmt_size(sen, sizeof sen, size, 1, '.');
    fmt_size(mid, sizeof mid, max, 0, ',');
    fmt_size(men, sizeof men, max, 0, '.');
    snprintf(msg_id, sizeof msg_id,
             "Foto berukuran %s; batasnya %s. Kecilkan foto itu lalu unggah lagi.", sid, mid);
    snprintf(msg_en, sizeof msg_en,
             "The photo is %s; the limit is %s. Make it smaller and upload again.", sen, men);
    reply_err_msg(c, ERR_FILE_TOO_LARGE, NULL, msg_id, msg_en,
                  json_pack("{s:I, s:I}", "size_bytes", (json_int_t)size, "max_bytes",
                            (json_int_t)max));
}

/* ---- the photo types taken (upload.h) ----------------------------------------------------- */

static const enum sniff_type taken[] = {SNIFF_JPEG, SNIFF_PNG, SNIFF_WEBP, SNIFF_HEIC, SNIFF_HEIF};
#define NTAKEN (sizeof taken / sizeof taken[0])

int upload_type_taken(enum sniff_type t)
{
    for (size_t i = 0; i < NTAKEN; i++)
        if (t == taken[i]) return 1;
    return 0;
}

int upload_could_be_taken(const void *b, size_t len)
{
    for (size_t i = 0; i < NTAKEN; i++)
        if (sniff_could_be(b, len, taken[i])) return 1;
    return 0;
}

const char *upload_declared(const char *v, size_t len)
{
    static const char octet[] = "application/octet-stream";
    for (size_t i = 0; i < NTAKEN; i++) {
        const char *m = sniff_mime(taken[i]);
        if (len == strlen(m) && strncasecmp(v, m, len) == 0) return m;
    }
    if (len == sizeof octet - 1 && strncasecmp(v, octet, len) == 0) return octet;
    return NULL;
}

json_t *upload_accepted_json(void)
{
    json_t *a = json_array();
    for (size_t i = 0; i < NTAKEN; i++) json_array_append_new(a, json_string(sniff_mime(taken[i])));
    return a;
}

void upload_refuse_declared(struct conn *c)
{
    reply_err_msg(c, ERR_UNSUPPORTED_MEDIA_TYPE, NULL, UPLOAD_TYPE_MSG_ID, UPLOAD_TYPE_MSG_EN,
                  json_pack("{s:o}", "accepted", upload_accepted_json()));
}

void upload_refuse_content(struct conn *c, const char *declared, enum sniff_type detected)
{
    const char *what_id = "Isi berkas ini bukan foto yang bisa kami baca.";
    const char *what_en = "This file is not a photo we can read.";
    if (detected == SNIFF_PDF) {
        what_id = "Berkas ini PDF, bukan foto.";
        what_en = "This file is a PDF, not a photo.";
    } else if (detected == SNIFF_AVIF) {
        what_id = "Foto AVIF tidak diterima.";
        what_en = "AVIF photos are not accepted.";
    }
    char msg_id[512], msg_en[512];
    snprintf(msg_id, sizeof msg_id, "%s %s %s", what_id, UPLOAD_TAKEN_ID, UPLOAD_HOW_ID);
    snprintf(msg_en, sizeof msg_en, "%s %s %s", what_en, UPLOAD_TAKEN_EN, UPLOAD_HOW_EN);
    reply_err_msg(c, ERR_UNSUPPORTED_MEDIA_TYPE, NULL, msg_id, msg_en,
                  json_pack("{s:o, s:s?, s:s?}", "accepted", upload_accepted_json(), "declared",
                            declared && declared[0] ? declared : NULL, "detected",
                            sniff_mime(detected)));
}

static void refuse_not_owner(struct conn *c, const char *what_id, const char *what_en)
{
    char msg_id[160], msg_en[160];
    snprintf(msg_id, sizeof msg_id, "%s ini bukan milik sesi Anda; buka dari sesi yang membuatnya.",
             what_id);
    snprintf(msg_en, sizeof msg_en,
             "This %s does not belong to your session; use the session that created it.", what_en);
    reply_err_msg(c, ERR_NOT_OWNER, NULL, msg_id, msg_en, NULL);
}

/* ---- PUT /v1/registrations/{id}/documents/{kind} ------------------------------------------ */

/* What a Content-Type value (V, LEN bytes; parameters and blanks allowed) declares: see
 * upload_declared; "" for an empty value, which says nothing. */
static const char *declared_type(const char *v, size_t len)
{
    const char *end = v + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    const char *semi = memchr(v, ';', (size_t)(end - v));
    if (semi) end = semi;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
    return end == v ? "" : upload_declared(v, (size_t)(end - v));
}

void upload_refuse_not_owner(struct conn *c) { refuse_not_owner(c, "Pendaftaran", "registration"); }

/* The client went away, the body timed out or broke a limit: no file, no job. */
static void put_abort(struct conn *c, void *arg)
{
    (void)c;
    struct upload *u = arg;
    log_debug("upload: abandoned upload=%s received=%llu", u->id, (unsigned long long)u->received);
    if (u->spool) spool_discard(u->spool);
    upload_end(u, 1);
}

/* The body sink: every decoded piece of the body goes straight to the spool file. */
static int put_sink(void *arg, const char *data, size_t len)
{
    struct upload *u = arg;
    struct request *r = &u->c->req;
    if (u->received + len > u->max) {
        /* Only a chunked body gets here: a Content-Length over the limit was refused at the
         * head. */
        request_fail(r, 413, "file_too_large", "document larger than [upload] max_bytes");
        return -1;
    }
    while (u->nmagic < MAGIC_LEN && len > 0) {
        size_t take = MAGIC_LEN - u->nmagic < len ? MAGIC_LEN - u->nmagic : len;
        memcpy(u->magic + u->nmagic, data, take);
        u->nmagic += take;
        if (spool_write(u->spool, data, take) < 0) goto fail;
        u->received += take;
        data += take;
        len -= take;
    }
    if (len > 0) {
        if (spool_write(u->spool, data, len) < 0) goto fail;
        u->received += len;
    }
    return 0;
fail:
    request_fail(r, 500, "internal_error", "spool write failed");
    return -1;
}

/* The head's own checks after the owner's, in order: kind, length, size, declared type, Redis,
 * a free slot. 0 with U's kind, ctype, max and want set; or -1, after answering when ANSWER.
 * Run once quietly before the owner is known (to learn what to reserve), and again after. */
static int put_checks(struct conn *c, struct request *r, struct upload *u, int answer)
{
    struct gw *gw = c->gw;
    size_t kindlen, ctlen;
    const char *kind = conn_param(c, "kind", &kindlen);
    u->kind = NULL;
    if (kind && kindlen == 3 && memcmp(kind, "ktp", 3) == 0) u->kind = "ktp";
    else if (kind && kindlen == 6 && memcmp(kind, "selfie", 6) == 0) u->kind = "selfie";
    if (!u->kind) {
        if (answer) reply_err(c, ERR_UNKNOWN_DOCUMENT, NULL, NULL);
        return -1;
    }
    if (!r->content_length_seen && !r->chunked) {
        if (answer) reply_err(c, ERR_LENGTH_REQUIRED, NULL, NULL);
        return -1;
    }
    u->max = (uint64_t)gw->conf.upload.max_bytes;
    if (r->content_length_seen && r->content_length > u->max) {
        if (answer) refuse_too_large(c, r->content_length, u->max);
        return -1;
    }
    const char *ct = request_header(r, "content-type", &ctlen);
    /* No Content-Type, or an empty one, says nothing, like application/octet-stream: the bytes
     * decide. */
    u->ctype = ct ? declared_type(ct, ctlen) : NULL;
    if (ct && !u->ctype) {
        if (answer) upload_refuse_declared(c);
        return -1;
    }
    /* Without Redis the job could not be queued: say so before the applicant sends it all. */
    if (rconn_state(gw->redis) != RCONN_CONNECTED) {
        if (answer) reply_redis_refusal(c, RCONN_REFUSED_CLOSED);
        return -1;
    }
    /* A chunked body may run up to the limit, so that much is reserved for it. */
    u->want = r->chunked ? u->max : r->content_length;
    if (!spool_slot_free(gw)) {
        if (answer) reply_err(c, ERR_UPLOAD_BUDGET, NULL, NULL);
        return -1;
    }
    return 0;
}

/* The rest of the head, once the owner is known and the bytes reserved: take a slot and open
 * the spool file. 0 with U ready for the body, or -1 after answering (U is the caller's). */
static int put_start(struct conn *c, struct request *r, struct upload *u)
{
    if (spool_slot_take(c->gw) < 0) {
        reply_err(c, ERR_UPLOAD_BUDGET, NULL, NULL);
        return -1;
    }
    u->slot = 1;
    char err[256];
    if (!(u->spool = spool_open(c->gw, u->id, 0, err, sizeof err))) {
        log_error("upload: cannot start an upload err=%s", err);
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        return -1;
    }
    spool_buffer(u->spool); /* read by no one until finished: 64 KB writes */
    snprintf(u->path, sizeof u->path, "%s", spool_path(u->spool));
    r->body_fn = put_sink;
    r->body_arg = u;
    conn_set_abort(c, put_abort, u);
    return 0;
}

/* The client went away (or the head timed out) while Redis was asked. */
static void head_abort(struct conn *c, void *arg)
{
    (void)c;
    struct upload *u = arg;
    u->c = NULL; /* head_read frees U */
}

/* The owner check and the reservation are in (spool.lua 'reserve'): refuse, or take the body. */
static void head_read(void *arg, const redisReply *reply, const char *err)
{
    struct upload *u = arg;
    struct conn *c = u->c;
    const char *w = spool_reply_word(reply, err);
    /* A timed-out script may still reserve: give back what it may have taken (a no-op when it
     * took nothing). */
    u->reserved = !w || !strcmp(w, "reserved");
    if (!c) {
        upload_end(u, 1);
        return;
    }
    conn_set_abort(c, NULL, NULL);
    if (!w || (strcmp(w, "not_owner") && strcmp(w, "checked") && strcmp(w, "full") &&
               strcmp(w, "reserved"))) {
        upload_end(u, 1);
        reply_redis_refusal(c, RCONN_REFUSED_CLOSED);
        return;
    }
    if (!strcmp(w, "not_owner")) {
        upload_end(u, 1);
        refuse_not_owner(c, "Pendaftaran", "registration");
        return;
    }
    if (put_checks(c, &c->req, u, 1) < 0) {
        upload_end(u, 1);
        return;
    }
    if (strcmp(w, "reserved") != 0) { /* "full", or "checked" by a head that now passes */
        upload_end(u, 1);
        reply_err(c, ERR_UPLOAD_BUDGET, NULL, NULL);
        return;
    }
    if (reply->elements > 1 && reply->element[1]->type == REDIS_REPLY_STRING)
        snprintf(u->fence, sizeof u->fence, "%s", reply->element[1]->str);
    if (put_start(c, &c->req, u) < 0) {
        upload_end(u, 1);
        return;
    }
    conn_head_continue(c);
}

/* The owner comes first (then kind, length, size, type, Redis, budget: put_checks), checked in
 * Redis while the head waits by the same script that reserves the body's bytes. */
static int put_head(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)p;
    struct gw *gw = c->gw;
    size_t idlen;
    const char *id = conn_param(c, "id", &idlen);
    /* Not an id at all: no registration to own. (A valid id's mark decides nothing yet: a
     * recovery gives the registration to a session that has no mark on it.) */
    if (!id || !ident_valid(id, idlen)) {
        refuse_not_owner(c, "Pendaftaran", "registration");
        return -1;
    }
    struct upload *u = calloc(1, sizeof *u);
    if (!u) abort();
    u->c = c;
    u->gw = gw;
    memcpy(u->reg_id, id, IDENT_LEN);
    const char *owner = gate_session(c)->owner;
    if (ident_new(gw, "upl", owner, u->id) < 0) {
        log_error("upload: cannot start an upload err=no pepper in the key file");
        free(u);
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        return -1;
    }
    /* Bytes are reserved only for a head that passes its own checks; one that fails them is
     * answered after the owner check, in order. */
    int64_t want = put_checks(c, r, u, 0) == 0 ? (int64_t)u->want : -1;
    int marked = ident_owned(gw, "reg", u->reg_id, IDENT_LEN, owner);
    if (spool_reserve(gw, u->id, u->reg_id, owner, marked, want, head_read, u) < 0) {
        free(u);
        reply_redis_refusal(c, rconn_last_refusal(gw->redis));
        return -1;
    }
    conn_set_abort(c, head_abort, u);
    return 1;
}

static void put_enqueued(void *arg, const redisReply *reply, const char *err)
{
    struct upload *u = arg;
    struct conn *c = u->c;
    const char *outcome = spool_enqueue_outcome(reply, err);
    if (!outcome) {
        /* The script may still run (a timeout: Redis stalled and runs it when it resumes), so
         * the file stays for its job, and the reservation with it; when no job comes, the
         * reaper removes the file after [upload] orphan_grace_s and the lease lapses. The
         * applicant hears 503 and sends the photo again: the newer upload supersedes this
         * one if it was queued after all. */
        log_warn("upload: enqueue failed, file kept upload=%s err=%s", u->id,
                 err                   ? err
                 : reply && reply->str ? reply->str
                                       : "?");
        upload_end(u, 0);
        reply_redis_refusal(c, RCONN_REFUSED_CLOSED);
        return;
    }
    if (!strcmp(outcome, "not_owner")) {
        /* A recovery moved the registration while the body came: no job, no file (the script
         * gave the bytes back). */
        log_info("upload: registration changed owner upload=%s", u->id);
        spool_unlink(c->gw, u->path);
        upload_end(u, 0);
        refuse_not_owner(c, "Pendaftaran", "registration");
        return;
    }
    const char *state = "processing";
    if (!strcmp(outcome, "superseded")) {
        /* A newer upload of this document was queued first: this one is recorded superseded
         * and its file goes. */
        spool_unlink(c->gw, u->path);
        state = "superseded";
    } else spool_enqueued_cleanup(c->gw, reply);
    char status_url[64];
    snprintf(status_url, sizeof status_url, "/v1/uploads/%s", u->id);
    json_t *body =
        json_pack("{s:s, s:s, s:s}", "upload_id", u->id, "state", state, "status_url", status_url);
    log_debug("upload: queued upload=%s registration=%s kind=%s bytes=%llu state=%s", u->id,
              u->reg_id, u->kind, (unsigned long long)u->received, state);
    upload_end(u, 0);
    reply_json(c, 202, body);
}

/* The spool file is on disk (or could not be made so): queue the job, answer in its reply. */
static void put_synced(void *arg, int rc)
{
    struct upload *u = arg;
    struct conn *c = u->c;
    if (rc < 0) {
        upload_end(u, 1);
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        return;
    }
    if (spool_enqueue(c->gw, u->id, u->reg_id, gate_session(c)->owner, u->kind, u->path,
                      u->received, u->ctype, u->fence, put_enqueued, u) < 0) {
        /* Refused before it was sent: no job can come of it. */
        spool_unlink(c->gw, u->path);
        upload_end(u, 1);
        reply_redis_refusal(c, rconn_last_refusal(c->gw->redis));
    }
}

static void put_done(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)p;
    struct upload *u = r->body_arg;
    /* From here this handler owns U until it answers. */
    conn_set_abort(c, NULL, NULL);
    /* The bytes decide: a photo declared image/heic whose brand says HEIF, or declared
     * image/jpeg and saved as PNG, is taken as what it is, and the job records that. */
    enum sniff_type t = sniff_bytes(u->magic, u->nmagic);
    if (!upload_type_taken(t)) {
        spool_discard(u->spool);
        const char *declared = u->ctype;
        upload_end(u, 1);
        upload_refuse_content(c, declared, t);
        return;
    }
    u->ctype = sniff_mime(t);
    struct spool *s = u->spool;
    u->spool = NULL;
    /* The fsync runs off the loop; the job is queued once the bytes are on disk. */
    spool_finish_async(c->gw, s, put_synced, u);
}

/* ---- GET /v1/uploads/{id} ----------------------------------------------------------------- */

/* Fields of the upload record shown to the applicant; numbers become JSON integers. */
static const struct {
    const char *name;
    int number;
} shown[] = {
    {"state", 0}, {"registration_id", 0}, {"kind", 0},  {"offset", 1}, {"reason", 0},
    {"hint", 0},  {"sha256", 0},          {"width", 1}, {"height", 1}, {"bytes_stored", 1},
};

json_t *upload_status_json(const char *upload_id, const redisReply *rec, int lang_en)
{
    /* The worker writes its hint in both languages; the applicant reads theirs (an older
     * record's single `hint` is shown as it is). */
    const char *hint_field = lang_en ? "hint_en" : "hint_id";
    if (!rec || rec->type != REDIS_REPLY_ARRAY || rec->elements < 2) return NULL;
    json_t *o = json_object();
    json_object_set_new(o, "upload_id", json_string(upload_id));
    for (size_t i = 0; i + 1 < rec->elements; i += 2) {
        const redisReply *f = rec->element[i], *v = rec->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        if (!strcmp(f->str, hint_field)) {
            json_object_set_new(o, "hint", json_stringn(v->str, v->len));
            continue;
        }
        if (!strcmp(f->str, "quality")) {
            json_t *q = json_loadb(v->str, v->len, 0, NULL);
            if (json_is_object(q)) json_object_set_new(o, "quality", q);
            else json_decref(q);
            continue;
        }
        for (size_t k = 0; k < sizeof shown / sizeof shown[0]; k++) {
            if (strcmp(f->str, shown[k].name) != 0) continue;
            char *end;
            long long n = shown[k].number ? strtoll(v->str, &end, 10) : 0;
            if (!strcmp(f->str, "hint") && json_object_get(o, "hint")) break;
            if (shown[k].number && v->len > 0 && *end == 0)
                json_object_set_new(o, f->str, json_integer(n));
            else json_object_set_new(o, f->str, json_stringn(v->str, v->len));
            break;
        }
    }
    if (!json_object_get(o, "state")) json_object_set_new(o, "state", json_string("processing"));
    return o;
}

static int (*offset_source)(struct gw *gw, const char *id, uint64_t *offset);

void upload_set_offset_source(int (*fn)(struct gw *gw, const char *id, uint64_t *offset))
{
    offset_source = fn;
}

struct status_req {
    struct conn *c;
    char id[IDENT_LEN + 1];
};

static void unknown_upload(struct conn *c) { reply_err(c, ERR_UNKNOWN_UPLOAD, NULL, NULL); }

static void status_reply(void *arg, const redisReply *reply, const char *err)
{
    struct status_req *s = arg;
    struct conn *c = s->c;
    if (err || !reply || reply->type == REDIS_REPLY_ERROR) {
        log_warn("upload: status read failed upload=%s err=%s", s->id,
                 err                   ? err
                 : reply && reply->str ? reply->str
                                       : "?");
        free(s);
        reply_redis_refusal(c, RCONN_REFUSED_CLOSED);
        return;
    }
    json_t *body = upload_status_json(s->id, reply, c->lang_en);
    if (!body) {
        free(s);
        unknown_upload(c);
        return;
    }
    /* A resumable upload's record is not written per chunk; its progress is the spool file. */
    uint64_t off;
    const char *state = json_string_value(json_object_get(body, "state"));
    if (state && strcmp(state, "receiving") == 0 && offset_source &&
        offset_source(c->gw, s->id, &off) == 0)
        json_object_set_new(body, "offset", json_integer((json_int_t)off));
    free(s);
    reply_json(c, 200, body);
}

static void status_get(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)r;
    (void)p;
    size_t idlen;
    const char *id = conn_param(c, "id", &idlen);
    if (!id || !ident_valid(id, idlen)) {
        unknown_upload(c);
        return;
    }
    if (!ident_owned(c->gw, "upl", id, idlen, gate_session(c)->owner)) {
        refuse_not_owner(c, "Unggahan", "upload");
        return;
    }
    struct status_req *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->c = c;
    memcpy(s->id, id, IDENT_LEN);
    char key[KEYS_MAX];
    keys_upload(key, s->id);
    if (rconn_command(c->gw->redis, status_reply, s, "HGETALL %s", key) < 0) {
        free(s);
        reply_redis_refusal(c, rconn_last_refusal(c->gw->redis));
    }
}

void upload_register(struct router *rt)
{
    router_add(rt, &(struct route){.method = "PUT",
                                   .pattern = "/v1/registrations/{id}/documents/{kind}",
                                   .fn = put_done,
                                   .head = put_head,
                                   .name = "upload_put",
                                   .max_body = 1LL << 30,
                                   .flags = ROUTE_NEEDS_SESSION});
    router_add(rt, &(struct route){.method = "GET",
                                   .pattern = "/v1/uploads/{id}",
                                   .fn = status_get,
                                   .name = "upload_status",
                                   .flags = ROUTE_NEEDS_SESSION});
}
