/* verify_recover.c: POST /v1/registrations/recover, a way back in for a locked-out NIK.
 *
 * A registration whose session expired (or whose answer was lost) keeps its NIK taken: a new
 * session gets 409 duplicate_nik. Here the new session names the NIK and a channel; a code goes
 * to that contact on file, through a `recover` verification owned by the new session, and
 * confirming it (verify_confirm.c) makes the new session the registration's owner.
 *
 * The answer must not tell whether the NIK is registered: it is the same 202 either way (no
 * masked destination), and the work is the same: the NIK's dedupe key is read, then a
 * registration record (a decoy key that does not exist when the NIK is unknown), then one
 * script writes a verification record either way ('recover' in verify.lua). Only a real one
 * gets a job, so a decoy is never sent; confirming it answers wrong_code like a real recovery
 * whose code was not received. The limits are per NIK (its HMAC) and per client address (an
 * IPv6 client by its /64), both counted whether the NIK exists or not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antre/keys.h"
#include "antre/log.h"
#include "antre/seal.h"
#include "antre/validate.h"
#include "conn.h"
#include "gate.h"
#include "gateway.h"
#include "ratelimit.h"
#include "registration.h"
#include "reply.h"
#include "router.h"
#include "verify_mask.h"
#include "verify_priv.h"

struct recover {
    struct conn *c;
    const char *channel; /* static */
    char vid[IDENT_LEN + 1];
    char rid[IDENT_LEN + 1]; /* "" when the NIK is unknown */
    char knik[KEYS_MAX];
    char nik_hex[65];
};

static void on_recover(void *arg, const redisReply *r, const char *err)
{
    struct recover *rc = arg;
    struct conn *c = rc->c;
    if (err || !r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        log_warn("verify: recover failed err=%s", err ? err : r && r->str ? r->str : "?");
        reply_redis_refusal(c, RCONN_REFUSED_CLOSED);
    } else {
        const char *st = r->element[0]->str;
        long long ms = r->element[1]->integer;
        if (!strcmp(st, "created"))
            verify_answer_created(c, rc->vid, rc->channel, NULL, c->gw->conf.verify.code_ttl_s, ms);
        else if (!strcmp(st, "nik_limit")) verify_refuse_wait(c, ERR_SEND_LIMIT, ms);
        else verify_refuse_wait(c, ERR_RATE_LIMITED, ms);
    }
    free(rc);
}

/* The reply to HMGET email phone email_verification phone_verification of the registration
 * (or of the decoy key). */
static void on_contact(void *arg, const redisReply *r, const char *err)
{
    struct recover *rc = arg;
    struct conn *c = rc->c;
    if (err || !r || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        reply_redis_refusal(c, RCONN_REFUSED_CLOSED);
        free(rc);
        return;
    }
    int sms = !strcmp(rc->channel, "sms");
    const redisReply *d = r->element[sms ? 1 : 0], *p = r->element[sms ? 3 : 2];
    char dest[SEAL_PLAIN_MAX + 1] = ""; /* stored sealed (registration.h); none for a decoy */
    if (rc->rid[0] && d->type == REDIS_REPLY_STRING &&
        registration_open(c->gw, rc->rid, sms ? "phone" : "email", d->str, d->len, dest,
                          sizeof dest) < 0) {
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        free(rc);
        return;
    }
    const char *prev = p->type == REDIS_REPLY_STRING && ident_valid(p->str, p->len) ? p->str : "";
    char masked[VERIFY_MASKED_MAX], addr[64], addr_hex[65];
    if (sms) verify_mask_phone(dest, masked, sizeof masked);
    else verify_mask_email(dest, masked, sizeof masked);
    /* The address as the per-IP limits key it: an IPv6 client by its /64, which one host owns
     * whole, so walking through its addresses asks no more often. */
    uint64_t ckey;
    if (ratelimit_client_key(conn_client(c), &ckey) == 0)
        snprintf(addr, sizeof addr, "%016llx", (unsigned long long)ckey);
    else conn_client_text(c, addr, sizeof addr);
    if (verify_hmac_hex(c, "vaddr", addr, addr_hex) < 0) {
        free(rc);
        return;
    }
    const struct conf_verify *v = &c->gw->conf.verify;
    char kreg[KEYS_MAX], kver[KEYS_MAX], ktn[KEYS_MAX], kta[KEYS_MAX], kstream[KEYS_MAX],
        kprev[KEYS_MAX];
    keys_registration(kreg, rc->rid[0] ? rc->rid : rc->vid);
    keys_verification(kver, rc->vid);
    keys_verification(kprev, prev[0] ? prev : rc->vid);
    keys_verify_throttle(ktn, "rnik", rc->nik_hex);
    keys_verify_throttle(kta, "raddr", addr_hex);
    job_stream_key(kstream, JOB_VERIFY);
    int64_t now = verify_now_ms();
    long long nik_t = VERIFY_DAY_MS / v->recover_per_nik_day;
    long long addr_t = 3600000LL / v->recover_per_addr_hour;
    char snow[24], snt[24], sntau[24], sat[24], satau[24], skeep[24];
    const char *keys[7] = {rc->knik, kreg, kver, ktn, kta, kstream, kprev};
    const char *args[11] = {"recover",
                            rc->rid,
                            verify_num(snow, now),
                            verify_num(snt, nik_t),
                            verify_num(sntau, VERIFY_DAY_MS - nik_t),
                            verify_num(sat, addr_t),
                            verify_num(satau, 3600000LL - addr_t),
                            verify_num(skeep, verify_keep_ms(c, now)),
                            sms ? "phone" : "email",
                            prev,
                            rc->vid};
    /* A decoy's job names the decoy key's id; it is never added (verify.lua). */
    struct verify_new n = {.vid = rc->vid,
                           .channel = rc->channel,
                           .purpose = "recover",
                           .owner = gate_session(c)->owner,
                           .destination = dest,
                           .masked = masked,
                           .rid = rc->rid,
                           .job_rid = rc->rid[0] ? rc->rid : rc->vid,
                           .now_ms = now};
    if (verify_call(c, 7, keys, args, 11, &n, on_recover, rc) < 0) free(rc);
}

static void on_nik(void *arg, const redisReply *r, const char *err)
{
    struct recover *rc = arg;
    struct conn *c = rc->c;
    if (err || !r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
        reply_redis_refusal(c, RCONN_REFUSED_CLOSED);
        free(rc);
        return;
    }
    if (r->type == REDIS_REPLY_STRING && ident_valid(r->str, r->len))
        memcpy(rc->rid, r->str, IDENT_LEN);
    char kreg[KEYS_MAX];
    keys_registration(kreg, rc->rid[0] ? rc->rid : rc->vid);
    if (rconn_command(c->gw->redis, on_contact, rc,
                      "HMGET %s email phone email_verification phone_verification", kreg) < 0) {
        reply_redis_refusal(c, rconn_last_refusal(c->gw->redis));
        free(rc);
    }
}

void verify_recover_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)r;
    (void)p;
    json_t *doc = verify_body(c);
    if (!doc) return;
    const char *channel = verify_channel(c, doc);
    if (!channel) {
        json_decref(doc);
        return;
    }
    struct validate_error e;
    memset(&e, 0, sizeof e);
    const char *nik = json_string_value(json_object_get(doc, "nik"));
    if (!nik) {
        json_decref(doc);
        reply_err_msg(c, ERR_INVALID_FIELD, "nik", "Kolom nik wajib diisi dengan NIK Anda.",
                      "The field nik is required: your NIK.", NULL);
        return;
    }
    if (validate_nik(nik, &e) < 0) {
        json_decref(doc);
        reply_field_error(c, &e, NULL);
        return;
    }
    struct recover *rc = calloc(1, sizeof *rc);
    if (!rc) abort();
    rc->c = c;
    rc->channel = channel;
    int bad = registration_nik_key(c->gw, nik, rc->knik, rc->nik_hex);
    json_decref(doc);
    if (bad || ident_new(c->gw, "ver", gate_session(c)->owner, rc->vid) < 0) {
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        free(rc);
        return;
    }
    if (rconn_command(c->gw->redis, on_nik, rc, "GET %s", rc->knik) < 0) {
        reply_redis_refusal(c, rconn_last_refusal(c->gw->redis));
        free(rc);
    }
}
