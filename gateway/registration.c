/* registration.c: POST /v1/registrations and GET /v1/registrations/{id}.
 *
 * A registration is validated field by field (common/validate.c: every refusal names its field
 * and says what to fix, in Indonesian and English), deduplicated by an HMAC of the NIK (never
 * the NIK in clear as a key), and written with its `register` stream entry by one script
 * (common/lua/intake.lua) before the 202. An Idempotency-Key makes a retry safe: the same key
 * with the same body gets the first answer again, another body 422, a retry while the first is
 * still being handled 409. Keys are scoped to the applicant (the session's owner) and kept
 * [registration] idempotency_ttl_s.
 *
 * A Redis stall past [redis] timeout_ms answers 503 though Redis may run the script when it
 * resumes; both outcomes stay recoverable. The same session sending the same NIK again gets its
 * existing registration as a replay (the record's `owner` decides, as for the checklist), so an
 * answer lost to a timeout never locks the NIK out. An idempotency claim carries the id its
 * request will create (a fencing token) and its time: a retry that finds it older than its lease
 * (CLAIM_LEASE_TIMEOUTS x timeout_ms) takes it over, and the late script of the timed-out
 * request writes nothing ('fenced').
 *
 * The status checklist reads the record and its documents' upload records and tells the
 * applicant what is done, what is wrong and exactly what to do next, including where each
 * verification code stands (gateway/verify.c, the worker's verify queue). It answers only the
 * record's `owner`: the creating session, or the one that recovered the registration since
 * (gateway/verify_recover.c). */
#include "registration.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "antre/clock.h"
#include "antre/codec.h"
#include "antre/job.h"
#include "antre/keys.h"
#include "antre/log.h"
#include "antre/lua_scripts.h"
#include "antre/rconn.h"
#include "antre/script.h"
#include "antre/seal.h"
#include "antre/token.h"
#include "antre/validate.h"
#include "conn.h"
#include "gate.h"
#include "gateway.h"
#include "ident.h"
#include "metrics.h"
#include "reply.h"
#include "router.h"
#include "verify_mask.h"

#define IDEM_KEY_MAX 128

const char *const registration_sealed[REGISTRATION_SEALED_N] = {"nik",        "kk",    "name",
                                                                "birth_date", "email", "phone"};
#define CLAIM_LEASE_TIMEOUTS 4 /* an idempotency claim's lease, in [redis] timeout_ms */

static struct script intake;

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data, len, md);
    codec_hex_encode(md, sizeof md, out, 65);
}

static void refuse_field(struct conn *c, const struct validate_error *e, json_t *all)
{
    json_t *extra = json_object();
    if (e->suggestion[0]) json_object_set_new(extra, "suggestion", json_string(e->suggestion));
    if (all) json_object_set_new(extra, "errors", all);
    reply_field_error(c, e, extra);
}

/* ---- POST /v1/registrations -------------------------------------------------------------- */

/* A registration being written: what the script needs, kept until its answer. */
struct create {
    struct conn *c;
    char id[IDENT_LEN + 1];
    char idem_key[KEYS_MAX];
    char body_hash[65];
    char answer[256];
    char dup_answer[256];
    char nik[17], kk[17], name[VALIDATE_NAME_MAX], birth[11], email[VALIDATE_EMAIL_MAX + 1];
    char phone[VALIDATE_PHONE_MAX + 1];
    int confirm_mismatch, confirm_email;
};

static void ignore_reply(void *arg, const redisReply *r, const char *err)
{
    (void)arg;
    (void)r;
    (void)err;
}

/* Give up an Idempotency-Key claim whose request got no answer worth keeping (only while it is
 * still this request's: a retry may have taken it over). */
static void release_claim(struct create *cr)
{
    const char *keys[1] = {cr->idem_key};
    const char *args[2] = {"release", cr->id};
    if (cr->idem_key[0])
        script_call(cr->c->gw->redis, &intake, ignore_reply, NULL, 1, keys, 2, args);
}

/* The 202 answer's body for registration ID into OUT. */
static void answer_of(const char *id, char out[256])
{
    snprintf(out, 256, "{\"id\":\"%s\",\"status_url\":\"/v1/registrations/%s\"}", id, id);
}

static void on_registered(void *arg, const redisReply *r, const char *err)
{
    struct create *cr = arg;
    struct conn *c = cr->c;
    if (err || !r || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
        log_warn("registration: write failed err=%s", err ? err : r && r->str ? r->str : "?");
        reply_redis_refusal(c, RCONN_REFUSED_CLOSED);
        release_claim(cr);
        free(cr);
        return;
    }
    const char *st = r->element[0]->str;
    if (!strcmp(st, "duplicate")) {
        reply_raw(c, errors_at(ERR_DUPLICATE_NIK)->status, "application/json", cr->dup_answer,
                  strlen(cr->dup_answer));
    } else if (!strcmp(st, "mine") && r->elements == 2 &&
               r->element[1]->type == REDIS_REPLY_STRING &&
               ident_valid(r->element[1]->str, r->element[1]->len)) {
        /* This session's own registration of this NIK (e.g. the first answer was lost to a
         * Redis timeout): its answer again, as an idempotent replay. */
        char answer[256];
        answer_of(r->element[1]->str, answer);
        log_info("registration: replayed id=%s", r->element[1]->str);
        reply_header(c, "Idempotent-Replayed", "true");
        reply_raw(c, 202, "application/json", answer, strlen(answer));
    } else if (!strcmp(st, "fenced")) {
        /* A retry took the Idempotency-Key over (this request's claim outlived its lease):
         * nothing was written; the retry's answer is the key's. */
        reply_err(c, ERR_IDEMPOTENCY_IN_FLIGHT, NULL, NULL);
    } else {
        log_info("registration: created id=%s", cr->id);
        reply_raw(c, 202, "application/json", cr->answer, strlen(cr->answer));
    }
    free(cr);
}

int registration_nik_key(struct gw *gw, const char *nik, char key[KEYS_MAX], char hex[65])
{
    /* The dedupe key is an HMAC of the NIK, never the NIK itself. */
    uint8_t h[TOKEN_HMAC_BYTES];
    char msg[32];
    int ml = snprintf(msg, sizeof msg, "nik\n%.16s", nik);
    if (token_hmac(gw->keys, msg, (size_t)ml, h) < 0) return -1;
    codec_hex_encode(h, sizeof h, hex, 65);
    keys_nik(key, hex);
    return 0;
}

int registration_open(struct gw *gw, const char *id, const char *field, const char *v, size_t vlen,
                      char *out, size_t outlen)
{
    int rc = seal_open(token_keys_seal(gw->keys), id, field, v, vlen, out, outlen);
    if (rc < 0)
        log_error("registration: cannot open a sealed field id=%s field=%s why=%s", id, field,
                  seal_error_str(rc));
    return rc < 0 ? -1 : rc;
}

static void write_registration(struct create *cr)
{
    struct conn *c = cr->c;
    char nik_hex[65], knik[KEYS_MAX], kreg[KEYS_MAX], kstream[KEYS_MAX], ttl[16], now[24];
    if (registration_nik_key(c->gw, cr->nik, knik, nik_hex) < 0) {
        log_error("registration: the key file has no pepper; cannot hash NIKs");
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        release_claim(cr);
        free(cr);
        return;
    }
    /* The personal fields go to Redis sealed (seal.h), each bound to this record and its name;
     * the dedupe key above is the NIK's HMAC, as before. */
    const char *clear[REGISTRATION_SEALED_N] = {cr->nik,   cr->kk,    cr->name,
                                                cr->birth, cr->email, cr->phone};
    char sealed[REGISTRATION_SEALED_N][SEAL_BUF_SIZE];
    for (int i = 0; i < REGISTRATION_SEALED_N; i++) {
        if (seal_field(token_keys_seal(c->gw->keys), cr->id, registration_sealed[i], clear[i],
                       strlen(clear[i]), sealed[i], sizeof sealed[i]) < 0) {
            log_error("registration: cannot seal field=%s", registration_sealed[i]);
            reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
            release_claim(cr);
            free(cr);
            return;
        }
    }
    keys_registration(kreg, cr->id);
    job_stream_key(kstream, JOB_REGISTER);
    snprintf(ttl, sizeof ttl, "%d", c->gw->conf.registration.idempotency_ttl_s);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(now, sizeof now, "%lld", (long long)tv.tv_sec);
    const char *keys[4] = {cr->idem_key, knik, kreg, kstream};
    const char *args[] = {"register",
                          cr->body_hash,
                          ttl,
                          cr->id,
                          cr->answer,
                          cr->dup_answer,
                          registration_sealed[0],
                          sealed[0],
                          registration_sealed[1],
                          sealed[1],
                          registration_sealed[2],
                          sealed[2],
                          registration_sealed[3],
                          sealed[3],
                          registration_sealed[4],
                          sealed[4],
                          registration_sealed[5],
                          sealed[5],
                          "owner",
                          gate_session(c)->owner,
                          "room",
                          gate_session(c)->room,
                          "created_at",
                          now,
                          "confirm_mismatch",
                          cr->confirm_mismatch ? "1" : "0",
                          "email_state",
                          "unverified",
                          "phone_state",
                          "unverified"};
    /* The stream entry (job.h) goes between the six fixed arguments and the record's fields. */
    struct job job = {.queue = JOB_REGISTER};
    snprintf(job.registration_id, sizeof job.registration_id, "%s", cr->id);
    const char *argv[sizeof args / sizeof args[0] + JOB_ARGV_MAX];
    char njob[4], jerr[128];
    int n = job_argv(&job, njob, argv + 6, jerr, sizeof jerr);
    if (n < 0) {
        log_error("registration: %s", jerr);
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        release_claim(cr);
        free(cr);
        return;
    }
    memcpy(argv, args, 6 * sizeof *argv);
    memcpy(argv + 6 + n, args + 6, (sizeof args / sizeof args[0] - 6) * sizeof *argv);
    n += (int)(sizeof args / sizeof args[0]);
    if (script_call(c->gw->redis, &intake, on_registered, cr, 4, keys, n, argv) < 0) {
        reply_redis_refusal(c, rconn_last_refusal(c->gw->redis));
        free(cr);
    }
}

static void on_claim(void *arg, const redisReply *r, const char *err)
{
    struct create *cr = arg;
    struct conn *c = cr->c;
    if (err || !r || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
        reply_redis_refusal(c, RCONN_REFUSED_CLOSED);
        free(cr);
        return;
    }
    const char *st = r->element[0]->str;
    if (!strcmp(st, "claimed")) {
        if (r->elements > 1) log_info("registration: took over a stale idempotency claim");
        write_registration(cr);
        return;
    }
    if (!strcmp(st, "replay") && r->elements == 3) {
        reply_header(c, "Idempotent-Replayed", "true");
        reply_raw(c, atoi(r->element[1]->str), "application/json", r->element[2]->str,
                  r->element[2]->len);
    } else if (!strcmp(st, "inflight")) {
        reply_err(c, ERR_IDEMPOTENCY_IN_FLIGHT, NULL, NULL);
    } else {
        reply_err(c, ERR_IDEMPOTENCY_KEY_REUSED, "Idempotency-Key", NULL);
    }
    free(cr);
}

/* The string member NAME of DOC (borrowed from DOC), or NULL with E filled: missing, not a
 * string, or holding a NUL (which would reach the validators cut short). Length limits are the
 * validators' business, so each field gets its own code and message. */
static const char *take_string(json_t *doc, const char *name, struct validate_error *e)
{
    json_t *v = json_object_get(doc, name);
    if (v && json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v))
        return json_string_value(v);
    e->field = name;
    e->code = v ? "invalid_field" : "required";
    snprintf(e->msg_id, sizeof e->msg_id,
             v ? "Kolom %s harus berupa teks." : "Kolom %s wajib diisi.", name);
    snprintf(e->msg_en, sizeof e->msg_en,
             v ? "The field %s must be text." : "The field %s is required.", name);
    e->suggestion[0] = 0;
    return NULL;
}

static json_t *error_json(const struct validate_error *e, int en)
{
    json_t *j = json_pack("{s:s, s:s, s:s}", "field", e->field, "code", e->code, "message",
                          en ? e->msg_en : e->msg_id);
    if (e->suggestion[0]) json_object_set_new(j, "suggestion", json_string(e->suggestion));
    return j;
}

static void create_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)p;
    size_t blen, klen = 0;
    const char *body = conn_body(c, &blen);
    const char *idem = request_header(r, "idempotency-key", &klen);
    if (idem && (klen == 0 || klen > IDEM_KEY_MAX)) {
        reply_err(c, ERR_INVALID_IDEMPOTENCY_KEY, "Idempotency-Key", NULL);
        return;
    }
    size_t tl;
    const char *ct = request_header(r, "content-type", &tl);
    size_t base = 0;
    while (ct && base < tl && ct[base] != ';' && ct[base] != ' ') base++;
    if (!ct || base != 16 || strncasecmp(ct, "application/json", 16) != 0) {
        reply_err_msg(c, ERR_UNSUPPORTED_MEDIA_TYPE, NULL,
                      "Kirim data pendaftaran sebagai JSON (Content-Type: application/json).",
                      "Send the registration as JSON (Content-Type: application/json).", NULL);
        return;
    }
    json_error_t je;
    json_t *doc = json_loadb(body, blen, 0, &je);
    if (!doc || !json_is_object(doc)) {
        json_decref(doc);
        reply_err(c, ERR_INVALID_JSON, NULL, NULL);
        return;
    }
    struct create *cr = calloc(1, sizeof *cr);
    if (!cr) abort();
    cr->c = c;
    cr->confirm_mismatch = json_is_true(json_object_get(doc, "confirm_mismatch"));
    cr->confirm_email = json_is_true(json_object_get(doc, "confirm_email"));

    /* Validate every field and report them all, the first as the answer's own field. */
    struct validate_error e, first;
    int nerr = 0;
    json_t *all = json_array();
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    struct validate_limits lim = {c->gw->conf.registration.min_age_years,
                                  c->gw->conf.registration.max_age_years};
    int y = 0, m = 0, d = 0, birth_ok = 0, nik_ok = 0;
#define CHECK(expr)                                                                                \
    do {                                                                                           \
        memset(&e, 0, sizeof e);                                                                   \
        if ((expr) < 0) {                                                                          \
            if (!nerr++) first = e;                                                                \
            json_array_append_new(all, error_json(&e, c->lang_en));                                \
        }                                                                                          \
    } while (0)
    const char *v;
    CHECK(!(v = take_string(doc, "nik", &e)) ? -1 : (nik_ok = validate_nik(v, &e) == 0) ? 0 : -1);
    if (nik_ok) snprintf(cr->nik, sizeof cr->nik, "%s", v);
    CHECK(!(v = take_string(doc, "kk", &e)) ? -1 : validate_kk(v, &e));
    if (v) snprintf(cr->kk, sizeof cr->kk, "%.16s", v);
    CHECK(!(v = take_string(doc, "name", &e)) ? -1
                                              : validate_name(v, cr->name, sizeof cr->name, &e));
    CHECK(!(v = take_string(doc, "birth_date", &e)) ? -1
          : (birth_ok = validate_birth_date(v, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, &lim,
                                            &y, &m, &d, &e) == 0)
              ? 0
              : -1);
    if (birth_ok) snprintf(cr->birth, sizeof cr->birth, "%04d-%02d-%02d", y, m, d);
    if (nik_ok && birth_ok)
        CHECK(validate_nik_matches_birth_date(cr->nik, y, m, d, cr->confirm_mismatch, &e));
    CHECK(!(v = take_string(doc, "email", &e))
              ? -1
              : validate_email(v, cr->confirm_email, cr->email, sizeof cr->email, &e));
    CHECK(!(v = take_string(doc, "phone", &e))
              ? -1
              : validate_phone(v, cr->phone, sizeof cr->phone, &e));
#undef CHECK
    json_decref(doc);
    if (nerr) {
        refuse_field(c, &first, all);
        free(cr);
        return;
    }
    json_decref(all);
    if (rconn_state(c->gw->redis) != RCONN_CONNECTED) {
        reply_redis_refusal(c, RCONN_REFUSED_CLOSED);
        free(cr);
        return;
    }
    if (ident_new(c->gw, "reg", gate_session(c)->owner, cr->id) < 0) {
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        free(cr);
        return;
    }
    answer_of(cr->id, cr->answer);
    const struct error_def *dn = errors_at(ERR_DUPLICATE_NIK);
    json_t *dup = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", dn->code, "field", "nik",
                            "message", c->lang_en ? dn->msg_en : dn->msg_id);
    size_t dl = json_dumpb(dup, cr->dup_answer, sizeof cr->dup_answer - 1, JSON_COMPACT);
    cr->dup_answer[dl < sizeof cr->dup_answer ? dl : 0] = 0;
    json_decref(dup);
    sha256_hex(body, blen, cr->body_hash);
    if (!idem) {
        write_registration(cr);
        return;
    }
    char khash[65];
    sha256_hex(idem, klen, khash);
    keys_idempotency(cr->idem_key, gate_session(c)->owner, khash);
    /* The claim carries the id this request will create (its fencing token) and when it was
     * made. A claim older than CLAIM_LEASE_TIMEOUTS x [redis] timeout_ms belongs to a request
     * that has already been answered 503 (its script could not have been answered in time), so
     * a retry takes it over, and the late script, if Redis ever runs it, writes nothing. */
    char ttl[16], now_ms[24], lease[24];
    snprintf(ttl, sizeof ttl, "%d", c->gw->conf.registration.idempotency_ttl_s);
    snprintf(now_ms, sizeof now_ms, "%lld", (long long)clock_wall_ms());
    snprintf(lease, sizeof lease, "%lld",
             (long long)c->gw->conf.redis.timeout_ms * CLAIM_LEASE_TIMEOUTS);
    const char *keys[1] = {cr->idem_key};
    const char *args[6] = {"claim", cr->body_hash, ttl, cr->id, now_ms, lease};
    if (script_call(c->gw->redis, &intake, on_claim, cr, 1, keys, 6, args) < 0) {
        reply_redis_refusal(c, rconn_last_refusal(c->gw->redis));
        free(cr);
    }
}

/* ---- GET /v1/registrations/{id} ----------------------------------------------------------- */

struct status {
    struct conn *c;
    char id[IDENT_LEN + 1];
    json_t *reg;     /* the record as an object */
    json_t *docs[2]; /* ktp, selfie upload records (or NULL) */
    int waiting;
    int marked; /* the id carries the session owner's mark */
};

static const char *const doc_kinds[2] = {"ktp", "selfie"};

static json_t *hash_to_json(const redisReply *r)
{
    json_t *o = json_object();
    if (r && r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i + 1 < r->elements; i += 2)
            json_object_set_new(o, r->element[i]->str, json_string(r->element[i + 1]->str));
    return o;
}

static const char *field(json_t *o, const char *name)
{
    json_t *v = o ? json_object_get(o, name) : NULL;
    return v && json_is_string(v) ? json_string_value(v) : "";
}

static json_t *check(const char *state, const char *reason, const char *hint)
{
    return json_pack("{s:s, s:s?, s:s}", "state", state, "reason", reason, "hint", hint);
}

/* The worker's hint for upload record U in the applicant's language (hint_en, hint_id; a record
 * written before both were kept has one `hint`), or "". */
static const char *doc_hint(json_t *u, int en)
{
    const char *h = field(u, en ? "hint_en" : "hint_id");
    return h[0] ? h : field(u, "hint");
}

/* CK with the `quality` object of upload record U (the worker's compact JSON) when it has one.
 * Returns CK. */
static json_t *with_quality(json_t *ck, json_t *u)
{
    const char *q = field(u, "quality");
    json_t *j = q[0] ? json_loads(q, 0, NULL) : NULL;
    if (json_is_object(j)) json_object_set_new(ck, "quality", j);
    else json_decref(j);
    return ck;
}

/* The check of contact K (0 email, 1 phone) of ST into CHECKS, its hint into NEXT when the
 * applicant has something to do. The contact's state is written by the gateway (sending,
 * verified; gateway/verify.c) and the worker (code_sent with C_sent_ms, send_failed with
 * C_error in plain words). Returns 1 when the contact is verified. */
static int contact_check(struct status *st, int k, json_t *checks, json_t *next)
{
    struct conn *c = st->c;
    int en = c->lang_en;
    const char *name = k ? "phone" : "email";
    const struct conf_programme *prog = &c->gw->conf.programme;
    const char *sender = prog->sender_name[0] ? prog->sender_name : prog->name;
    char f[32], masked[96], hint[768], when[32] = "";
    snprintf(f, sizeof f, "%s_state", name);
    const char *state = field(st->reg, f);
    const char *value = field(st->reg, name);
    if (k) verify_mask_phone(value, masked, sizeof masked);
    else verify_mask_email(value, masked, sizeof masked);
    if (!strcmp(state, "verified")) {
        json_object_set_new(checks, name, check("verified", NULL, en ? "Done." : "Selesai."));
        return 1;
    }
    snprintf(f, sizeof f, "%s_sent_ms", name);
    time_t sent = (time_t)(atoll(field(st->reg, f)) / 1000);
    struct tm tm;
    if (sent > 0 && gmtime_r(&sent, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(f, sizeof f, "%s_error", name);
    const char *why = field(st->reg, f);
    json_t *ck;
    if (!strcmp(state, "sending")) {
        snprintf(hint, sizeof hint,
                 en ? "A code is being sent to %s; it should arrive within a few minutes."
                    : "Kode sedang dikirim ke %s; seharusnya tiba dalam beberapa menit.",
                 masked);
        ck = check("sending", NULL, hint);
    } else if (!strcmp(state, "code_sent") && sent > 0 &&
               (int64_t)sent * 1000 + (int64_t)c->gw->conf.verify.code_ttl_s * 1000 <
                   clock_wall_ms()) {
        /* sent_ms is after the code was made, so this says "expired" at most the send's delay
         * late, never early. */
        snprintf(hint, sizeof hint,
                 en ? "The code sent to %s at %s (UTC) has expired; ask for a new one."
                    : "Kode yang dikirim ke %s pada %s (UTC) sudah kedaluwarsa; minta kode baru.",
                 masked, when[0] ? when : "?");
        ck = check("code_sent", "code_expired", hint);
        if (when[0]) json_object_set_new(ck, "sent_at", json_string(when));
    } else if (!strcmp(state, "code_sent")) {
        if (k == 0)
            snprintf(hint, sizeof hint,
                     en ? "A code was sent to %s at %s (UTC). If it is not in your inbox, look in "
                          "the spam folder and search for \"%s\"; then enter the code here."
                        : "Kode dikirim ke %s pada %s (UTC). Jika tidak ada di kotak masuk, lihat "
                          "folder spam dan cari \"%s\"; lalu masukkan kodenya di sini.",
                     masked, when[0] ? when : "?", sender);
        else
            snprintf(hint, sizeof hint,
                     en ? "A code was sent by SMS to %s at %s (UTC); enter it here. If it has not "
                          "arrived in 5 minutes, check that the phone has signal and ask again."
                        : "Kode dikirim lewat SMS ke %s pada %s (UTC); masukkan di sini. Jika "
                          "belum tiba dalam 5 menit, pastikan ponsel ada sinyal lalu minta lagi.",
                     masked, when[0] ? when : "?");
        ck = check("code_sent", NULL, hint);
        if (when[0]) json_object_set_new(ck, "sent_at", json_string(when));
    } else if (!strcmp(state, "send_failed")) {
        snprintf(hint, sizeof hint,
                 en ? "The code to %s could not be sent: %s. Check that the %s is right; if it "
                      "is, ask for a new code in a few minutes."
                    : "Kode ke %s tidak dapat dikirim: %s. Pastikan %s benar; jika sudah, minta "
                      "kode baru beberapa menit lagi.",
                 masked, why[0] ? why : (en ? "no reason given" : "tanpa alasan"),
                 k ? (en ? "phone number" : "nomor ponsel")
                   : (en ? "email address" : "alamat email"));
        ck = check("send_failed", why[0] ? why : "send_failed", hint);
    } else if (k == 0) {
        snprintf(hint, sizeof hint,
                 en ? "Request a code to %s. If it does not arrive within 5 minutes, check "
                      "your spam folder for a message from %s, then request again."
                    : "Minta kode ke %s. Jika tidak datang dalam 5 menit, periksa folder spam "
                      "untuk pesan dari %s, lalu minta ulang.",
                 masked, sender);
        ck = check("unverified", "not_verified", hint);
    } else {
        snprintf(hint, sizeof hint,
                 en ? "Request an SMS code to %s; make sure the phone is on and has signal."
                    : "Minta kode SMS ke %s; pastikan ponsel aktif dan ada sinyal.",
                 masked);
        ck = check("unverified", "not_verified", hint);
    }
    json_object_set_new(ck, "destination", json_string(masked));
    json_object_set_new(checks, name, ck);
    json_array_append_new(next, json_string(hint));
    return 0;
}

static void answer_status(struct status *st)
{
    struct conn *c = st->c;
    int en = c->lang_en;
    json_t *checks = json_object(), *next = json_array();
    char hint[512];
    int done = 0;
    const struct conf_programme *prog = &c->gw->conf.programme;

    for (int k = 0; k < 2; k++) {
        if (contact_check(st, k, checks, next)) done++;
    }

    long max_mb = (long)(c->gw->conf.upload.max_bytes / (1024 * 1024));
    for (int k = 0; k < 2; k++) {
        json_t *u = st->docs[k];
        const char *state = u ? field(u, "state") : "";
        const char *what = k ? (en ? "selfie" : "swafoto") : (en ? "KTP photo" : "foto KTP");
        const char *What = k ? (en ? "Selfie" : "Swafoto") : (en ? "KTP photo" : "Foto KTP");
        if (!u || !state[0]) {
            snprintf(hint, sizeof hint,
                     en ? "Upload your %s: a photo from your phone's camera (JPEG, PNG, WebP, "
                          "HEIC or HEIF), up to %ld MB, at least %dx%d pixels, sharp and not "
                          "cropped."
                        : "Unggah %s Anda: foto dari kamera ponsel (JPEG, PNG, WebP, HEIC atau "
                          "HEIF), paling besar %ld MB, minimal %dx%d piksel, tajam dan tidak "
                          "terpotong.",
                     what, max_mb, c->gw->conf.upload.min_width, c->gw->conf.upload.min_height);
            json_object_set_new(checks, doc_kinds[k], check("missing", "not_uploaded", hint));
            json_array_append_new(next, json_string(hint));
        } else if (!strcmp(state, "accepted")) {
            const char *h = doc_hint(u, en), *reason = field(u, "reason");
            json_object_set_new(checks, doc_kinds[k],
                                with_quality(check("accepted", reason[0] ? reason : NULL,
                                                   h[0] ? h
                                                   : en ? "Done."
                                                        : "Selesai."),
                                             u));
            done++;
        } else if (!strcmp(state, "rejected")) {
            const char *h = doc_hint(u, en);
            snprintf(hint, sizeof hint, "%s",
                     h[0] ? h
                     : en ? "The photo could not be used; upload it again."
                          : "Foto tidak dapat dipakai; unggah ulang.");
            json_object_set_new(checks, doc_kinds[k],
                                with_quality(check("rejected",
                                                   field(u, "reason")[0] ? field(u, "reason")
                                                                         : "rejected",
                                                   hint),
                                             u));
            json_array_append_new(next, json_string(hint));
        } else {
            if (en)
                snprintf(hint, sizeof hint,
                         "Your %s is being checked; this page will show the "
                         "result.",
                         what);
            else
                snprintf(hint, sizeof hint,
                         "%s Anda sedang diperiksa; hasilnya akan tampil di "
                         "sini.",
                         What);
            json_object_set_new(checks, doc_kinds[k], check(state, NULL, hint));
        }
    }
    /* The worker's register job (worker/register.c) sets the record's state once the
     * downstream (the registry) accepted or rejected the registration; until then it is being
     * forwarded. It is not one of the applicant's steps, so it does not count towards
     * "complete". A rejection carries the registry's own reason (cleaned and bounded by the
     * worker), shown as it is, and what the applicant can do about it. */
    const char *reg_state = field(st->reg, "state");
    if (!strcmp(reg_state, "accepted"))
        json_object_set_new(checks, "registry",
                            check("accepted", NULL,
                                  en ? "Your registration was received."
                                     : "Pendaftaran Anda diterima."));
    else if (!strcmp(reg_state, "rejected")) {
        const char *why = field(st->reg, "reject_reason");
        snprintf(hint, sizeof hint,
                 en ? "The civil registry did not accept your registration: %s. Check that your "
                      "NIK, KK number, name and date of birth are exactly as on your KTP and KK; "
                      "if they are, contact %s and quote registration %s."
                    : "Dukcapil tidak menerima pendaftaran Anda: %s. Pastikan NIK, nomor KK, "
                      "nama, dan tanggal lahir sama persis dengan KTP dan KK Anda; jika sudah "
                      "benar, hubungi %s dan sebutkan pendaftaran %s.",
                 why[0] ? why : (en ? "no reason given" : "tanpa alasan"), prog->name, st->id);
        json_object_set_new(checks, "registry", check("rejected", why[0] ? why : "rejected", hint));
        json_array_append_new(next, json_string(hint));
    } else
        json_object_set_new(checks, "registry",
                            check("pending", NULL,
                                  en ? "Your registration is being forwarded."
                                     : "Pendaftaran Anda sedang diteruskan."));
    json_t *out =
        json_pack("{s:s, s:s, s:o, s:o}", "id", st->id, "state",
                  done == 4 ? "complete" : "incomplete", "checks", checks, "next_steps", next);
    reply_json(c, 200, out);
}

static void status_free(struct status *st)
{
    json_decref(st->reg);
    json_decref(st->docs[0]);
    json_decref(st->docs[1]);
    free(st);
}

struct doc_call {
    struct status *st;
    int k;
};

static void on_doc(void *arg, const redisReply *r, const char *err)
{
    struct doc_call *dc = arg;
    struct status *st = dc->st;
    if (!err && r && r->type == REDIS_REPLY_ARRAY && r->elements) st->docs[dc->k] = hash_to_json(r);
    free(dc);
    if (--st->waiting) return;
    answer_status(st);
    status_free(st);
}

static void reply_not_owner(struct conn *c)
{
    reply_err_msg(c, ERR_NOT_OWNER, NULL, "Pendaftaran ini bukan milik sesi Anda.",
                  "This registration does not belong to your session.", NULL);
}

static void on_record(void *arg, const redisReply *r, const char *err)
{
    struct status *st = arg;
    struct conn *c = st->c;
    if (err || !r || r->type != REDIS_REPLY_ARRAY) {
        reply_redis_refusal(c, RCONN_REFUSED_CLOSED);
        status_free(st);
        return;
    }
    st->reg = hash_to_json(r);
    /* The record's owner decides (a recovery moves it to a new session: verify_recover.c); a
     * record without one, or no record, falls back on the id's mark. */
    const char *owner = field(st->reg, "owner"), *mine = gate_session(c)->owner;
    int owned = owner[0]
                    ? strlen(owner) == strlen(mine) && CRYPTO_memcmp(owner, mine, strlen(mine)) == 0
                    : st->marked;
    if (!owned || r->elements == 0) {
        if (!owned) reply_not_owner(c);
        else reply_err(c, ERR_UNKNOWN_REGISTRATION, NULL, NULL);
        status_free(st);
        return;
    }
    /* The checklist shows the contacts masked: open them (the other personal fields are not
     * read here). */
    static const char *const contacts[2] = {"email", "phone"};
    for (int k = 0; k < 2; k++) {
        const char *v = field(st->reg, contacts[k]);
        char clear[SEAL_PLAIN_MAX + 1];
        if (!v[0]) continue;
        if (registration_open(c->gw, st->id, contacts[k], v, strlen(v), clear, sizeof clear) < 0) {
            reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
            status_free(st);
            return;
        }
        json_object_set_new(st->reg, contacts[k], json_string(clear));
    }
    /* Read the documents' upload records; answer when both replies are in. */
    st->waiting = 1;
    for (int k = 0; k < 2; k++) {
        char f[32];
        snprintf(f, sizeof f, "%s_upload", doc_kinds[k]);
        const char *uid = field(st->reg, f);
        if (!uid[0]) continue;
        char key[KEYS_MAX];
        keys_upload(key, uid);
        struct doc_call *dc = calloc(1, sizeof *dc);
        if (!dc) abort();
        dc->st = st;
        dc->k = k;
        st->waiting++;
        if (rconn_command(c->gw->redis, on_doc, dc, "HGETALL %s", key) < 0) {
            st->waiting--;
            free(dc);
        }
    }
    if (--st->waiting == 0) {
        answer_status(st);
        status_free(st);
    }
}

static void status_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)r;
    (void)p;
    size_t len;
    const char *id = conn_param(c, "id", &len);
    if (!ident_valid(id, len)) {
        reply_err(c, ERR_UNKNOWN_REGISTRATION, NULL, NULL);
        return;
    }
    struct status *st = calloc(1, sizeof *st);
    if (!st) abort();
    st->c = c;
    st->marked = ident_owned(c->gw, "reg", id, len, gate_session(c)->owner);
    memcpy(st->id, id, IDENT_LEN);
    char key[KEYS_MAX];
    keys_registration(key, st->id);
    if (rconn_command(c->gw->redis, on_record, st, "HGETALL %s", key) < 0) {
        reply_redis_refusal(c, rconn_last_refusal(c->gw->redis));
        status_free(st);
    }
}

void registration_register(struct router *rt)
{
    script_init(&intake, lua_intake);
    router_add(rt, &(struct route){.method = "POST",
                                   .pattern = "/v1/registrations",
                                   .fn = create_route,
                                   .name = "registration_create",
                                   .max_body = 16384,
                                   .flags = ROUTE_NEEDS_SESSION});
    router_add(rt, &(struct route){.method = "GET",
                                   .pattern = "/v1/registrations/{id}",
                                   .fn = status_route,
                                   .name = "registration_status",
                                   .flags = ROUTE_NEEDS_SESSION});
}
