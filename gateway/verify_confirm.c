/* verify_confirm.c: POST /v1/verifications/{id}/confirm.
 *
 * One script call counts the attempt and hands back the stored MAC (common/lua/verify.lua,
 * 'attempt': counting in Redis makes concurrent guesses count too, and a record is never
 * checked more than [verify] max_attempts times); the MAC is checked here with vcode_check, in
 * constant time. A right code makes a second call ('verified'); the wrong code that spends the
 * last attempt burns the code ('burn') and answers 429 too_many_attempts.
 *
 * An unknown id and someone else's id answer alike, 404 unknown_verification, after the same
 * work as a wrong code: the same script call (which finds nothing), a compare against a dummy
 * MAC, and an answer of the same kind. So neither the status nor the time tells whether a
 * verification exists. The code itself is never logged. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antre/keys.h"
#include "antre/log.h"
#include "antre/script.h"
#include "antre/token.h"
#include "antre/vcode.h"
#include "conn.h"
#include "gate.h"
#include "gateway.h"
#include "reply.h"
#include "router.h"
#include "verify_priv.h"

#define CODE_MAX 32

/* vcode_key's derivation, under the pepper that token_hmac holds (vcode.h): the gateway keeps
 * the pepper only inside its token keys. */
#define VCODE_KEY_LABEL "antre/verification-code/v1"

struct confirm {
    struct conn *c;
    char vid[IDENT_LEN + 1];
    char rid[IDENT_LEN + 1];
    char code[CODE_MAX + 1];
    size_t code_len;
    char mac[VCODE_MAC_HEX + 1];
};

static void confirm_free(struct confirm *cf)
{
    OPENSSL_cleanse(cf->code, sizeof cf->code);
    free(cf);
}

static void on_verified(void *arg, const redisReply *r, const char *err)
{
    struct confirm *cf = arg;
    struct conn *c = cf->c;
    if (err || !r || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
        reply_redis_refusal(c, RCONN_REFUSED_CLOSED);
    } else if (strcmp(r->element[0]->str, "ok") != 0) {
        /* Replaced or burned between the attempt and now: the code no longer counts. */
        reply_err(c, ERR_CODE_REPLACED, NULL, NULL);
    } else {
        log_info("verify: verified vid=%s registration=%s", cf->vid, cf->rid);
        reply_json(c, 200,
                   json_pack("{s:s, s:s, s:s}", "verification_id", cf->vid, "state", "verified",
                             "registration_id", cf->rid));
    }
    confirm_free(cf);
}

static void ignore_reply(void *arg, const redisReply *r, const char *err)
{
    (void)arg;
    (void)r;
    (void)err;
}

/* The MAC key: the same bytes as vcode_key(pepper). 0, or -1 without a pepper. */
static int code_key(struct conn *c, uint8_t key[VCODE_KEY_BYTES])
{
    return token_hmac(c->gw->keys, VCODE_KEY_LABEL, sizeof VCODE_KEY_LABEL - 1, key);
}

static void checked(struct confirm *cf, int ok, long attempts)
{
    struct conn *c = cf->c;
    const struct conf_verify *v = &c->gw->conf.verify;
    char kver[KEYS_MAX], kreg[KEYS_MAX], now[24];
    keys_verification(kver, cf->vid);
    if (ok) {
        keys_registration(kreg, cf->rid);
        snprintf(now, sizeof now, "%lld", (long long)verify_now_ms());
        const char *keys[2] = {kver, kreg};
        const char *args[4] = {"verified", cf->mac, now, cf->vid};
        if (script_call(c->gw->redis, verify_script(), on_verified, cf, 2, keys, 4, args) < 0) {
            reply_redis_refusal(c, rconn_last_refusal(c->gw->redis));
            confirm_free(cf);
        }
        return;
    }
    long left = v->max_attempts - attempts;
    if (left <= 0) {
        const char *keys[1] = {kver};
        const char *args[2] = {"burn", "attempts"};
        script_call(c->gw->redis, verify_script(), ignore_reply, NULL, 1, keys, 2, args);
        log_info("verify: burned vid=%s after %ld wrong codes", cf->vid, attempts);
        reply_err(c, ERR_TOO_MANY_ATTEMPTS, NULL, NULL);
    } else {
        reply_err(c, ERR_WRONG_CODE, "code", json_pack("{s:i}", "attempts_left", (int)left));
    }
    confirm_free(cf);
}

static void on_attempt(void *arg, const redisReply *r, const char *err)
{
    struct confirm *cf = arg;
    struct conn *c = cf->c;
    if (err || !r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        reply_redis_refusal(c, RCONN_REFUSED_CLOSED);
        confirm_free(cf);
        return;
    }
    const char *st = r->element[0]->str;
    uint8_t key[VCODE_KEY_BYTES];
    int have_key = code_key(c, key) == 0;
    int digits = c->gw->conf.verify.code_digits;
    if (!strcmp(st, "check") && r->elements == 4) {
        const redisReply *mac = r->element[1];
        const char *stored = mac->len == VCODE_MAC_HEX ? mac->str : NULL;
        if (stored) memcpy(cf->mac, stored, VCODE_MAC_HEX + 1);
        snprintf(cf->rid, sizeof cf->rid, "%s", r->element[3]->str);
        int ok = have_key && vcode_check(key, cf->vid, stored, stored ? VCODE_MAC_HEX : 0, digits,
                                         cf->code, cf->code_len);
        OPENSSL_cleanse(key, sizeof key);
        checked(cf, ok, atol(r->element[2]->str));
        return;
    }
    if (!strcmp(st, "missing")) {
        /* The same compare as a wrong code, against vcode_check's dummy MAC. */
        volatile int sink = vcode_check(key, cf->vid, NULL, 0, digits, cf->code, cf->code_len);
        (void)sink;
        OPENSSL_cleanse(key, sizeof key);
        reply_err(c, ERR_UNKNOWN_VERIFICATION, NULL, NULL);
        confirm_free(cf);
        return;
    }
    OPENSSL_cleanse(key, sizeof key);
    if (!strcmp(st, "expired")) reply_err(c, ERR_CODE_EXPIRED, NULL, NULL);
    else if (!strcmp(st, "verified")) reply_err(c, ERR_ALREADY_VERIFIED, NULL, NULL);
    else if (!strcmp(st, "burned") && r->elements >= 2 && !strcmp(r->element[1]->str, "attempts"))
        reply_err(c, ERR_TOO_MANY_ATTEMPTS, NULL, NULL);
    else if (!strcmp(st, "burned")) reply_err(c, ERR_CODE_REPLACED, NULL, NULL);
    else if (!strcmp(st, "not_sent") && r->elements == 3 &&
             !strcmp(r->element[1]->str, "send_failed")) {
        const char *why = r->element[2]->str;
        json_t *extra = why[0] ? json_pack("{s:s}", "reason", why) : NULL;
        reply_err_msg(c, ERR_CODE_NOT_SENT, NULL,
                      "Kode tidak dapat dikirim; periksa alamat Anda lalu minta kode baru.",
                      "The code could not be sent; check your address, then ask for a new code.",
                      extra);
    } else if (!strcmp(st, "not_sent")) reply_err(c, ERR_CODE_NOT_SENT, NULL, NULL);
    else reply_redis_refusal(c, RCONN_REFUSED_CLOSED);
    confirm_free(cf);
}

void verify_confirm_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)r;
    (void)p;
    size_t len;
    const char *id = conn_param(c, "id", &len);
    if (!ident_valid(id, len)) {
        reply_err(c, ERR_UNKNOWN_VERIFICATION, NULL, NULL);
        return;
    }
    json_t *doc = verify_body(c);
    if (!doc) return;
    json_t *code = json_object_get(doc, "code");
    if (!json_is_string(code)) {
        json_decref(doc);
        reply_err_msg(c, ERR_INVALID_FIELD, "code", "Kolom code wajib diisi dengan kode Anda.",
                      "The field code is required: the code you received.", NULL);
        return;
    }
    struct confirm *cf = calloc(1, sizeof *cf);
    if (!cf) abort();
    cf->c = c;
    memcpy(cf->vid, id, IDENT_LEN);
    /* A longer code is wrong whatever it holds; it is checked (and counted) all the same, cut. */
    cf->code_len = json_string_length(code);
    if (cf->code_len > CODE_MAX) cf->code_len = CODE_MAX;
    memcpy(cf->code, json_string_value(code), cf->code_len);
    json_decref(doc);
    char kver[KEYS_MAX], now[24], max[12];
    keys_verification(kver, cf->vid);
    snprintf(now, sizeof now, "%lld", (long long)verify_now_ms());
    snprintf(max, sizeof max, "%d", c->gw->conf.verify.max_attempts);
    const char *keys[1] = {kver};
    const char *args[4] = {"attempt", gate_session(c)->owner, now, max};
    if (script_call(c->gw->redis, verify_script(), on_attempt, cf, 1, keys, 4, args) < 0) {
        reply_redis_refusal(c, rconn_last_refusal(c->gw->redis));
        confirm_free(cf);
    }
}
