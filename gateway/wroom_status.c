/* wroom_status.c: status polls (answered from the cache; a reached place is redeemed for a
 * session once), leaving a room, and a room's public facts (schedule, rates, seed). */
#include "wroom_priv.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antre/keys.h"
#include "conn.h"
#include "gate.h"
#include "metrics.h"
#include "reply.h"
#include "router.h"

struct redeem_call {
    struct conn *c;
    struct wroom *w;
    uint64_t place;
};

static void ticket_expired(struct conn *c)
{
    if (conn_route_has(c, ROUTE_FORM)) { /* back to the page, which offers to join again */
        wroom_ticket_cookie(c, "antre_ticket", "", 0);
        char loc[64];
        size_t rl;
        const char *rn = conn_param(c, "room", &rl);
        snprintf(loc, sizeof loc, "/rooms/%.*s", (int)(rl < 32 ? rl : 32), rn);
        reply_header(c, "Location", loc);
        reply_raw(c, 303, NULL, "", 0);
        return;
    }
    reply_err(c, ERR_TICKET_EXPIRED, NULL, NULL);
}

static void on_redeem_reply(void *arg, const redisReply *r, const char *err)
{
    struct redeem_call *rc = arg;
    struct conn *c = rc->c;
    struct wroom *w = rc->w;
    if (wroom_script_failed("redeem", r, err)) {
        wroom_redis_down(c);
        free(rc);
        return;
    }
    const char *kind = wroom_elem_str(r, 0);
    if (!strcmp(kind, "new") || !strcmp(kind, "same")) {
        char sid[33];
        int64_t exp;
        if (wroom_ticket_session_record(wroom_elem_str(r, 1), sid, &exp) < 0) {
            wroom_metrics(w)->expired410++;
            ticket_expired(c); /* "left": the holder gave the place up */
        } else {
            if (!strcmp(kind, "new")) wroom_metrics(w)->redeems++;
            wroom_view_session(c, w, sid, exp);
        }
    } else if (!strcmp(kind, "waiting")) {
        wroom_view_waiting(c, w, rc->place, NULL, 200);
    } else {
        wroom_metrics(w)->expired410++;
        ticket_expired(c);
    }
    free(rc);
}

static void invalid_ticket(struct conn *c)
{
    if (conn_route_has(c, ROUTE_FORM)) {
        ticket_expired(c); /* the same way back to the page */
        return;
    }
    reply_err(c, ERR_INVALID_TICKET, NULL, NULL);
}

void wroom_status_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)p;
    size_t tlen;
    struct wroom *w = wroom_of_route(c);
    if (!w) return;
    wroom_metrics(w)->polls++;
    const char *tok = wroom_ticket_token(r, "antre_ticket", &tlen);
    struct ticket t;
    if (!tok || wroom_ticket_parse(c->gw, tok, tlen, &t) < 0 || t.kind == TK_SESSION ||
        strcmp(t.room, w->conf.name) != 0) {
        invalid_ticket(c);
        return;
    }
    if (wroom_is_stale(w)) wroom_metrics(w)->stale++;
    memcpy(gate_ctx(c)->applicant, t.owner, sizeof t.owner); /* both 17 bytes, NUL-ended */
    int64_t place = t.kind == TK_PLACE ? (int64_t)t.num : wroom_view_pre_place(w, t.num);
    if (place < 0) {
        if (w->opened && t.num >= (uint64_t)w->P) { /* a number the draw never saw */
            invalid_ticket(c);
            return;
        }
        wroom_view_prequeue(c, w, NULL, 200);
        return;
    }
    if (place >= w->head) {
        wroom_view_waiting(c, w, (uint64_t)place, NULL, 200);
        return;
    }
    /* The place has been reached: exchange the ticket for a session (once; a retry gets the
     * same session back). */
    struct redeem_call *rc = calloc(1, sizeof *rc);
    if (!rc) abort();
    rc->c = c;
    rc->w = w;
    rc->place = (uint64_t)place;
    char key[KEYS_MAX], pl[24];
    keys_room_redeem(key, w->conf.name, (uint64_t)place);
    snprintf(pl, sizeof pl, "%lld", (long long)place);
    char sid[33];
    wroom_random_hex(sid, 16);
    const char *extra[2] = {pl, sid};
    if (wroom_call(w, "redeem", key, on_redeem_reply, rc, 2, extra) < 0) {
        free(rc);
        wroom_redis_busy(c);
    }
}

static void on_leave_reply(void *arg, const redisReply *r, const char *err)
{
    struct conn *c = arg;
    if (wroom_script_failed("leave", r, err)) {
        wroom_redis_down(c);
        return;
    }
    wroom_ticket_cookie(c, "antre_ticket", "", 0);
    wroom_ticket_cookie(c, "antre_session", "", 0);
    reply_raw(c, 204, NULL, "", 0);
}

void wroom_status_leave(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)p;
    size_t tlen;
    struct wroom *w = wroom_of_route(c);
    if (!w) return;
    struct ticket t;
    const char *tok = wroom_ticket_token(r, "antre_session", &tlen);
    if (!tok || wroom_ticket_parse(c->gw, tok, tlen, &t) < 0 || t.kind != TK_SESSION)
        tok = wroom_ticket_token(r, "antre_ticket", &tlen);
    if (!tok || wroom_ticket_parse(c->gw, tok, tlen, &t) < 0 || strcmp(t.room, w->conf.name) != 0) {
        invalid_ticket(c);
        return;
    }
    char key[KEYS_MAX] = "", num[24], exp[24] = "0";
    const char *extra[3] = {NULL, NULL, exp};
    if (t.kind == TK_SESSION) {
        /* Ended for every gateway: the gate refuses it from the next request on, until its
         * expiry (from the token). */
        extra[0] = "session";
        extra[1] = t.sid;
        snprintf(exp, sizeof exp, "%lld", (long long)t.t);
    } else {
        int64_t place = t.kind == TK_PLACE ? (int64_t)t.num : wroom_view_pre_place(w, t.num);
        if (place < 0) {
            /* A pre-queue ticket before the draw: its place, unknown yet, will be admitted and
             * expire unredeemed, which the controller credits back. */
            wroom_ticket_cookie(c, "antre_ticket", "", 0);
            reply_raw(c, 204, NULL, "", 0);
            return;
        }
        keys_room_redeem(key, w->conf.name, (uint64_t)place);
        snprintf(num, sizeof num, "%lld", (long long)place);
        extra[0] = "place";
        extra[1] = num;
    }
    wroom_metrics(w)->left++;
    if (wroom_call(w, "leave", key, on_leave_reply, c, 3, extra) < 0) wroom_redis_busy(c);
}

void wroom_status_facts(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)r;
    (void)p;
    struct wroom *w = wroom_of_route(c);
    if (!w) return;
    json_t *j = json_pack("{s:s, s:s, s:s, s:f, s:f, s:I, s:I, s:I, s:b}", "room", w->conf.name,
                          "state", wroom_state(w), "mode", w->conf.mode, "admit_rate_per_min",
                          w->conf.admit_rate_per_min, "admission_rate_per_min", w->ema * 60.0,
                          "waiting", (json_int_t)(w->tail > w->head ? w->tail - w->head : 0),
                          "admitted", (json_int_t)w->admitted, "active", (json_int_t)w->active,
                          "stale", wroom_is_stale(w));
    json_object_set_new(j, "max_active", json_integer(w->conf.max_active));
    json_object_set_new(j, "prequeue_from",
                        w->conf.prequeue_from_text[0] ? json_string(w->conf.prequeue_from_text)
                                                      : json_null());
    json_object_set_new(j, "opens_at",
                        w->conf.opens_at_text[0] ? json_string(w->conf.opens_at_text)
                                                 : json_null());
    json_object_set_new(j, "closes_at",
                        w->conf.closes_at_text[0] ? json_string(w->conf.closes_at_text)
                                                  : json_null());
    if (w->have_seed) {
        json_object_set_new(j, "seed_commitment", json_string(w->commitment));
        if (w->opened) {
            json_object_set_new(j, "seed", json_string(w->seed_hex));
            json_object_set_new(j, "prequeue_size", json_integer(w->P));
        }
    }
    reply_json(c, 200, j);
}
