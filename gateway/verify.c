/* verify.c: POST /v1/registrations/{id}/verifications, and what the verification routes share.
 *
 * Asking for a code writes a verification record (state `queued`; docs/design.md,
 * "Verification codes"), points the registration's contact at it (C_verification, C_state
 * `sending`), burns the contact's previous verification and queues the `verify` job, all in one
 * script (common/lua/verify.lua, 'create'), so the record and its job appear together. The
 * worker makes the code, stores only its MAC and sends it: no code passes through here.
 *
 * Sends are throttled per destination (keyed by an HMAC of the address, never the address)
 * and per registration, each by two GCRA limits in Redis: one per [verify] resend_interval_s,
 * and at most max_sends_per_day in any 24 hours. The daily limit is answered first
 * (send_limit): when it is spent, waiting for the interval would not help.
 *
 * Ownership is the registration record's `owner` field, not only the id's mark: a recovery
 * (verify_recover.c) moves a registration to a new session by changing that field. */
#include "verify.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "antre/codec.h"
#include "antre/keys.h"
#include "antre/log.h"
#include "antre/lua_scripts.h"
#include "antre/script.h"
#include "antre/seal.h"
#include "antre/token.h"
#include "conn.h"
#include "gate.h"
#include "gateway.h"
#include "registration.h"
#include "reply.h"
#include "router.h"
#include "verify_mask.h"
#include "verify_priv.h"

static struct script script;

const struct script *verify_script(void)
{
    if (!script.src) script_init(&script, lua_verify);
    return &script;
}

int64_t verify_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

json_t *verify_body(struct conn *c)
{
    size_t len;
    const char *body = conn_body(c, &len);
    json_t *doc = body ? json_loadb(body, len, 0, NULL) : NULL;
    if (!json_is_object(doc)) {
        json_decref(doc);
        reply_err(c, ERR_INVALID_JSON, NULL, NULL);
        return NULL;
    }
    return doc;
}

const char *verify_channel(struct conn *c, json_t *doc)
{
    const char *v = json_string_value(json_object_get(doc, "channel"));
    if (v && !strcmp(v, "email")) return "email";
    if (v && !strcmp(v, "sms")) return "sms";
    reply_err_msg(c, ERR_INVALID_FIELD, "channel", "Kolom channel harus \"email\" atau \"sms\".",
                  "The field channel must be \"email\" or \"sms\".", NULL);
    return NULL;
}

int verify_hmac_hex(struct conn *c, const char *label, const char *value, char hex[65])
{
    char msg[512];
    uint8_t h[TOKEN_HMAC_BYTES];
    int n = snprintf(msg, sizeof msg, "%s\n%s", label, value);
    if (n < 0 || (size_t)n >= sizeof msg || token_hmac(c->gw->keys, msg, (size_t)n, h) < 0) {
        log_error("verify: cannot hash a %s (no pepper in the key file?)", label);
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        return -1;
    }
    codec_hex_encode(h, sizeof h, hex, 65);
    return 0;
}

const char *verify_num(char buf[24], long long v)
{
    snprintf(buf, 24, "%lld", v);
    return buf;
}

int64_t verify_keep_ms(struct conn *c, int64_t now_ms)
{
    return now_ms + (int64_t)c->gw->conf.verify.code_ttl_s * 1000 + VERIFY_DAY_MS;
}

int verify_call(struct conn *c, int nkeys, const char *const *keys, const char *const *args,
                int nhead, const struct verify_new *n, rconn_cb *cb, void *arg)
{
    char snow[24], sexp[24], dest[SEAL_BUF_SIZE];
    /* The address or number is stored sealed (seal.h), bound to this verification. */
    if (seal_field(token_keys_seal(c->gw->keys), n->vid, "destination", n->destination,
                   strlen(n->destination), dest, sizeof dest) < 0) {
        log_error("verify: cannot seal a destination");
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        return -1;
    }
    const char *rec[] = {"registration_id",
                         n->rid,
                         "channel",
                         n->channel,
                         "purpose",
                         n->purpose,
                         "owner",
                         n->owner,
                         "destination",
                         dest,
                         "masked",
                         n->masked,
                         "lang",
                         c->lang_en ? "en" : "id",
                         "created_ms",
                         verify_num(snow, n->now_ms),
                         "expires_ms",
                         verify_num(sexp,
                                    n->now_ms + (int64_t)c->gw->conf.verify.code_ttl_s * 1000),
                         "attempts",
                         "0",
                         "state",
                         "queued"};
    const int nrec = (int)(sizeof rec / sizeof rec[0]);
    struct job j = {.queue = JOB_VERIFY};
    snprintf(j.verification_id, sizeof j.verification_id, "%s", n->vid);
    snprintf(j.registration_id, sizeof j.registration_id, "%s", n->job_rid);
    snprintf(j.channel, sizeof j.channel, "%s", n->channel);
    const char *argv[SCRIPT_MAX_ARGS];
    char njob[4], err[128];
    if (nhead + JOB_ARGV_MAX + nrec > SCRIPT_MAX_ARGS - nkeys) {
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        return -1;
    }
    memcpy(argv, args, (size_t)nhead * sizeof *argv);
    int k = job_argv(&j, njob, argv + nhead, err, sizeof err);
    if (k < 0) {
        log_error("verify: %s", err);
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        return -1;
    }
    k += nhead;
    memcpy(argv + k, rec, (size_t)nrec * sizeof *argv);
    k += nrec;
    if (script_call(c->gw->redis, verify_script(), cb, arg, nkeys, keys, k, argv) < 0) {
        reply_redis_refusal(c, rconn_last_refusal(c->gw->redis));
        return -1;
    }
    return 0;
}

static int ceil_s(long long ms) { return ms <= 0 ? 0 : (int)((ms + 999) / 1000); }

void verify_answer_created(struct conn *c, const char *vid, const char *channel, const char *masked,
                           int expires_in_s, long long resend_ms)
{
    json_t *out = json_pack("{s:s, s:s, s:i, s:i}", "verification_id", vid, "channel", channel,
                            "expires_in_s", expires_in_s, "resend_after_s", ceil_s(resend_ms));
    if (masked) json_object_set_new(out, "destination", json_string(masked));
    reply_json(c, 202, out);
}

void verify_refuse_wait(struct conn *c, int e, long long wait_ms)
{
    int s = ceil_s(wait_ms);
    reply_err_retry(c, (enum error_id)e, NULL, NULL, s > 0 ? s : 1);
}

/* ---- POST /v1/registrations/{id}/verifications ------------------------------------------- */

struct create {
    struct conn *c;
    char rid[IDENT_LEN + 1];
    char vid[IDENT_LEN + 1];
    const char *channel; /* static */
    char masked[VERIFY_MASKED_MAX];
};

static void on_created(void *arg, const redisReply *r, const char *err)
{
    struct create *cr = arg;
    struct conn *c = cr->c;
    const char *st = !err && r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
                             r->element[0]->type == REDIS_REPLY_STRING
                         ? r->element[0]->str
                         : NULL;
    long long ms = st && r->elements >= 2 ? r->element[1]->integer : 0;
    if (!st) {
        log_warn("verify: create failed err=%s", err ? err : r && r->str ? r->str : "?");
        reply_redis_refusal(c, RCONN_REFUSED_CLOSED);
    } else if (!strcmp(st, "created")) {
        log_info("verify: queued vid=%s registration=%s channel=%s", cr->vid, cr->rid, cr->channel);
        verify_answer_created(c, cr->vid, cr->channel, cr->masked, c->gw->conf.verify.code_ttl_s,
                              ms);
    } else if (!strcmp(st, "send_limit")) verify_refuse_wait(c, ERR_SEND_LIMIT, ms);
    else if (!strcmp(st, "resend_too_soon")) verify_refuse_wait(c, ERR_RESEND_TOO_SOON, ms);
    else if (!strcmp(st, "busy")) verify_refuse_wait(c, ERR_RESEND_TOO_SOON, 1000);
    else if (!strcmp(st, "not_owner")) reply_err(c, ERR_NOT_OWNER, NULL, NULL);
    else reply_err(c, ERR_UNKNOWN_REGISTRATION, NULL, NULL);
    free(cr);
}

/* The reply to HMGET owner email phone email_verification phone_verification. */
static void on_registration(void *arg, const redisReply *r, const char *err)
{
    struct create *cr = arg;
    struct conn *c = cr->c;
    if (err || !r || r->type != REDIS_REPLY_ARRAY || r->elements != 5) {
        reply_redis_refusal(c, RCONN_REFUSED_CLOSED);
        free(cr);
        return;
    }
    const char *owner = gate_session(c)->owner;
    const redisReply *o = r->element[0];
    if (o->type != REDIS_REPLY_STRING) {
        /* As GET /v1/registrations/{id}: someone else's id is 403, one of ours that is gone 404. */
        if (ident_owned(c->gw, "reg", cr->rid, IDENT_LEN, owner))
            reply_err(c, ERR_UNKNOWN_REGISTRATION, NULL, NULL);
        else reply_err(c, ERR_NOT_OWNER, NULL, NULL);
        free(cr);
        return;
    }
    if (o->len != strlen(owner) || CRYPTO_memcmp(o->str, owner, o->len) != 0) {
        reply_err(c, ERR_NOT_OWNER, NULL, NULL);
        free(cr);
        return;
    }
    int sms = !strcmp(cr->channel, "sms");
    const redisReply *d = r->element[sms ? 2 : 1], *prev = r->element[sms ? 4 : 3];
    const char *prev_vid = prev->type == REDIS_REPLY_STRING ? prev->str : "";
    char dest[SEAL_PLAIN_MAX + 1] = ""; /* stored sealed (registration.h) */
    if (d->type == REDIS_REPLY_STRING && registration_open(c->gw, cr->rid, sms ? "phone" : "email",
                                                           d->str, d->len, dest, sizeof dest) < 0) {
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        free(cr);
        return;
    }
    char dest_hex[65], kreg[KEYS_MAX], kver[KEYS_MAX], kprev[KEYS_MAX], kthd[KEYS_MAX],
        kthr[KEYS_MAX], kstream[KEYS_MAX];
    if (!dest[0] || strlen(prev_vid) > IDENT_LEN) {
        log_error("verify: registration %s has no %s to send to", cr->rid, sms ? "phone" : "email");
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        free(cr);
        return;
    }
    char label[16];
    snprintf(label, sizeof label, "vdest-%s", cr->channel);
    if (verify_hmac_hex(c, label, dest, dest_hex) < 0) {
        free(cr);
        return;
    }
    if (ident_new(c->gw, "ver", owner, cr->vid) < 0) {
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        free(cr);
        return;
    }
    if (sms) verify_mask_phone(dest, cr->masked, sizeof cr->masked);
    else verify_mask_email(dest, cr->masked, sizeof cr->masked);
    keys_registration(kreg, cr->rid);
    keys_verification(kver, cr->vid);
    if (prev_vid[0]) keys_verification(kprev, prev_vid);
    else memcpy(kprev, kver, sizeof kprev);
    keys_verify_throttle(kthd, "dest", dest_hex);
    /* Per registration and channel: verifying the email, then the phone, is no resend. */
    char reg_channel[IDENT_LEN + 8];
    snprintf(reg_channel, sizeof reg_channel, "%s:%s", cr->rid, cr->channel);
    keys_verify_throttle(kthr, "reg", reg_channel);
    job_stream_key(kstream, JOB_VERIFY);

    const struct conf_verify *v = &c->gw->conf.verify;
    int64_t now = verify_now_ms();
    long long day_t = VERIFY_DAY_MS / v->max_sends_per_day;
    char snow[24], sint[24], sdt[24], sdtau[24], skeep[24];
    const char *keys[6] = {kreg, kver, kprev, kthd, kthr, kstream};
    const char *args[10] = {"create",
                            owner,
                            sms ? "phone" : "email",
                            prev_vid,
                            cr->vid,
                            verify_num(snow, now),
                            verify_num(sint, (long long)v->resend_interval_s * 1000),
                            verify_num(sdt, day_t),
                            verify_num(sdtau, VERIFY_DAY_MS - day_t),
                            verify_num(skeep, verify_keep_ms(c, now))};
    struct verify_new n = {.vid = cr->vid,
                           .channel = cr->channel,
                           .purpose = "verify",
                           .owner = owner,
                           .destination = dest,
                           .masked = cr->masked,
                           .rid = cr->rid,
                           .job_rid = cr->rid,
                           .now_ms = now};
    if (verify_call(c, 6, keys, args, 10, &n, on_created, cr) < 0) free(cr);
}

static void create_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)r;
    (void)p;
    size_t len;
    const char *id = conn_param(c, "id", &len);
    if (!ident_valid(id, len)) {
        reply_err(c, ERR_UNKNOWN_REGISTRATION, NULL, NULL);
        return;
    }
    json_t *doc = verify_body(c);
    if (!doc) return;
    const char *channel = verify_channel(c, doc);
    json_decref(doc);
    if (!channel) return;
    struct create *cr = calloc(1, sizeof *cr);
    if (!cr) abort();
    cr->c = c;
    cr->channel = channel;
    memcpy(cr->rid, id, IDENT_LEN);
    char key[KEYS_MAX];
    keys_registration(key, cr->rid);
    if (rconn_command(c->gw->redis, on_registration, cr,
                      "HMGET %s owner email phone email_verification phone_verification",
                      key) < 0) {
        reply_redis_refusal(c, rconn_last_refusal(c->gw->redis));
        free(cr);
    }
}

void verify_register(struct router *rt)
{
    verify_script();
    /* Before registration_register's GET /v1/registrations/{id}: recover is a literal. */
    router_add(rt, &(struct route){.method = "POST",
                                   .pattern = "/v1/registrations/recover",
                                   .fn = verify_recover_route,
                                   .name = "registration_recover",
                                   .max_body = 1024,
                                   .flags = ROUTE_NEEDS_SESSION});
    router_add(rt, &(struct route){.method = "POST",
                                   .pattern = "/v1/registrations/{id}/verifications",
                                   .fn = create_route,
                                   .name = "verification_create",
                                   .max_body = 1024,
                                   .flags = ROUTE_NEEDS_SESSION});
    router_add(rt, &(struct route){.method = "POST",
                                   .pattern = "/v1/verifications/{id}/confirm",
                                   .fn = verify_confirm_route,
                                   .name = "verification_confirm",
                                   .max_body = 1024,
                                   .flags = ROUTE_NEEDS_SESSION});
}
