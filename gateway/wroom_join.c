/* wroom_join.c: joining a room. Joins arriving in one loop iteration share one INCRBY (or one
 * script call on the fast path, which may admit at once); a join that names an applicant, with
 * an applicant token the room's key verifies (applicant.h), is bound to that applicant's one
 * place in the room (the same place from any device). */
#include "wroom_priv.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antre/clock.h"
#include "antre/codec.h"
#include "antre/token.h"
#include "applicant.h"
#include "conn.h"
#include "gate.h"
#include "gateway.h"
#include "metrics.h"
#include "reply.h"
#include "router.h"

#define FAST_BATCH_MAX 40 /* session ids per fast-path script call */

/* The answer to one join whose place is PLACE (or, when SID is set, admitted at once). */
static void answer_join(struct conn *c, struct wroom *w, int64_t place, const char *sid,
                        int64_t exp_ms)
{
    wroom_metrics(w)->joins++;
    if (sid) {
        wroom_view_session(c, w, sid, exp_ms);
        return;
    }
    char tok[TOKEN_BUF_SIZE];
    if (wroom_ticket_sign(c, TK_PLACE, w->conf.name, (uint64_t)place, tok, sizeof tok) < 0) {
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        return;
    }
    /* The cache may lag this join's own INCRBY: a fresh place is never "admitted" here. */
    if (w->tail < place + 1) w->tail = place + 1;
    wroom_view_waiting(c, w, (uint64_t)(place >= w->head ? place : w->head), tok, 202);
}

static void answer_join_pre(struct conn *c, struct wroom *w, int64_t number)
{
    wroom_metrics(w)->joins++;
    char tok[TOKEN_BUF_SIZE];
    if (wroom_ticket_sign(c, TK_PRE, w->conf.name, (uint64_t)number, tok, sizeof tok) < 0) {
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        return;
    }
    wroom_view_prequeue(c, w, tok, 202);
}

static void room_not_open(struct conn *c, struct wroom *w)
{
    json_t *extra = json_pack("{s:s}", "opens_at", w->conf.opens_at_text);
    reply_err(c, ERR_ROOM_NOT_OPEN, NULL, extra);
}

struct batch_call {
    struct wroom *w;
    struct join_req *reqs;
    int n;
    int fast;
    char sids[FAST_BATCH_MAX][33];
};

static void batch_fail(struct batch_call *b, const char *why)
{
    for (struct join_req *j = b->reqs, *next; j; j = next) {
        next = j->next;
        if (!strcmp(why, "budget")) wroom_redis_busy(j->c);
        else wroom_redis_down(j->c);
        free(j);
    }
    free(b);
}

static void on_join_reply(void *arg, const redisReply *r, const char *err)
{
    struct batch_call *b = arg;
    struct wroom *w = b->w;
    if (err || !r || r->type == REDIS_REPLY_ERROR) {
        wroom_script_failed("join", r, err);
        batch_fail(b, "down");
        return;
    }
    int64_t first = 0, k = 0, exp = 0;
    const char *kind = "open";
    if (r->type == REDIS_REPLY_INTEGER) { /* plain INCRBY: the new tail counter */
        first = w->P + r->integer - b->n;
    } else {
        kind = wroom_elem_str(r, 0);
        if (!strcmp(kind, "pre")) {
            first = wroom_elem_int(r, 1);
            wroom_learn_seed(w, wroom_elem_str(r, 2));
        } else if (!strcmp(kind, "open")) {
            k = wroom_elem_int(r, 1);
            first = wroom_elem_int(r, 2);
            exp = wroom_elem_int(r, 4);
            if (!w->opened) w->P = wroom_elem_int(r, 3);
        }
    }
    int i = 0;
    for (struct join_req *j = b->reqs, *next; j; j = next, i++) {
        next = j->next;
        if (!strcmp(kind, "pre")) answer_join_pre(j->c, w, first + i);
        else if (!strcmp(kind, "closed")) room_not_open(j->c, w);
        else answer_join(j->c, w, first + i, i < k ? b->sids[i] : NULL, exp);
        free(j);
    }
    if (!strcmp(kind, "open") && k > 0 && w->head < first + k) w->head = first + k;
    free(b);
}

static void send_batch(struct wroom *w, struct join_req *reqs, int n)
{
    struct batch_call *b = calloc(1, sizeof *b);
    if (!b) abort();
    b->w = w;
    b->reqs = reqs;
    b->n = n;
    int rc;
    int fast = w->have && w->opened && w->tail <= w->head && !w->conf.paused &&
               w->active + w->pending < w->conf.max_active;
    if (w->have && w->opened && !fast) {
        rc = rconn_command(w->gw->redis, on_join_reply, b, "INCRBY %s %d", w->keys[KEYS_ROOM_TAIL],
                           n);
    } else {
        /* Not yet known to be open (pre-queue or opening), or the fast path may admit. */
        char nbuf[16];
        snprintf(nbuf, sizeof nbuf, "%d", n);
        const char *extra[2 + FAST_BATCH_MAX];
        extra[0] = nbuf;
        extra[1] = "1";
        for (int i = 0; i < n; i++) {
            wroom_random_hex(b->sids[i], 16);
            extra[2 + i] = b->sids[i];
        }
        rc = wroom_call(w, "join", "", on_join_reply, b, 2 + n, extra);
    }
    if (rc < 0)
        batch_fail(b, rconn_last_refusal(w->gw->redis) == RCONN_REFUSED_BUDGET ? "budget" : "down");
}

/* Every join of this loop iteration, in arrival order, as few calls as possible. */
void wroom_join_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wroom *w = arg;
    while (w->batch) {
        int n = 0;
        struct join_req *head = w->batch, *j = head, *prev = NULL;
        while (j && n < FAST_BATCH_MAX) prev = j, j = j->next, n++;
        prev->next = NULL;
        w->batch = j;
        w->nbatch -= n;
        send_batch(w, head, n);
    }
    w->batch_tail = &w->batch;
}

struct bind_call {
    struct conn *c;
    struct wroom *w;
    char sid[33];
};

static void on_bind_reply(void *arg, const redisReply *r, const char *err)
{
    struct bind_call *b = arg;
    struct conn *c = b->c;
    struct wroom *w = b->w;
    if (wroom_script_failed("bind", r, err)) {
        wroom_redis_down(c);
        free(b);
        return;
    }
    const char *kind = wroom_elem_str(r, 0);
    if (!strcmp(kind, "bound")) {
        /* The applicant already holds a place here: the same place, from any device. */
        const char *v = wroom_elem_str(r, 1);
        if (v[0] == 'p') {
            answer_join_pre(c, w, strtoll(v + 1, NULL, 10));
        } else if (v[0] == 's') {
            char sid[33];
            int64_t exp = 0;
            if (wroom_ticket_session_record(v + 1, sid, &exp) == 0 && exp > clock_wall_ms())
                wroom_view_session(c, w, sid, exp);
            else reply_err(c, ERR_SESSION_ENDED, NULL, NULL);
        } else {
            answer_join(c, w, strtoll(v, NULL, 10), NULL, 0);
        }
    } else if (!strcmp(kind, "pre")) {
        wroom_learn_seed(w, wroom_elem_str(r, 2));
        answer_join_pre(c, w, wroom_elem_int(r, 1));
    } else if (!strcmp(kind, "open")) {
        int64_t k = wroom_elem_int(r, 1);
        answer_join(c, w, wroom_elem_int(r, 2), k ? b->sid : NULL, wroom_elem_int(r, 4));
    } else {
        room_not_open(c, w);
    }
    free(b);
}

static int bind_applicant(struct conn *c, struct wroom *w, const char *sub, size_t len)
{
    uint8_t h[TOKEN_HMAC_BYTES];
    if (applicant_hash(c->gw->keys, w->conf.name, sub, len, h) < 0) return -1;
    codec_hex_encode(h + 16, 8, gate_ctx(c)->applicant, sizeof gate_ctx(c)->applicant);
    char key[KEYS_MAX], field[21];
    keys_room_applicant(key, w->conf.name, h, field);
    struct bind_call *b = calloc(1, sizeof *b);
    if (!b) abort();
    b->c = c;
    b->w = w;
    wroom_random_hex(b->sid, 16);
    const char *extra[2] = {field, b->sid};
    if (wroom_call(w, "bind", key, on_bind_reply, b, 2, extra) < 0) {
        free(b);
        wroom_redis_busy(c);
    }
    return 0;
}

/* Verify the applicant token TOKEN (LEN bytes) of a join to W: its `sub` into SUB and 0, or -1
 * after answering 400 (no key configured, or a refused token, with the reason). */
static int verify_applicant(struct conn *c, struct wroom *w, const char *token, size_t len,
                            char *sub, size_t subcap, size_t *sublen)
{
    if (!w->applicant_key) {
        reply_err(c, ERR_APPLICANT_BINDING_OFF, "applicant", NULL);
        return -1;
    }
    const char *aud = w->conf.applicant_audience[0] ? w->conf.applicant_audience : w->conf.name;
    uint64_t reused0, verified0, reused1, verified1;
    applicant_key_cache_stats(w->applicant_key, &reused0, &verified0);
    int rc = applicant_verify(w->applicant_key, token, len, aud, clock_wall_ms() / 1000, sub,
                              subcap, sublen);
    applicant_key_cache_stats(w->applicant_key, &reused1, &verified1);
    struct metrics_room *m = wroom_metrics(w);
    if (rc <= 0 && -rc < METRICS_TOKEN_RESULTS) m->tokens[-rc]++;
    m->token_sigs_reused += reused1 - reused0;
    m->token_sigs_verified += verified1 - verified0;
    if (rc == APPLICANT_OK) return 0;
    const char *msg_id, *msg_en;
    applicant_result_msg(rc, &msg_id, &msg_en);
    reply_err_msg(c, ERR_INVALID_APPLICANT_TOKEN, "applicant", msg_id, msg_en,
                  json_pack("{s:s}", "reason", applicant_result_str(rc)));
    return -1;
}

void wroom_join_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)p;
    (void)r;
    struct wroom *w = wroom_of_route(c);
    if (!w) return;
    size_t blen;
    const char *body = conn_body(c, &blen);
    const char *applicant = NULL;
    size_t alen = 0;
    json_t *doc = NULL;
    if (blen && !conn_route_has(c, ROUTE_FORM)) { /* a form post's fields are not used */
        json_error_t je;
        doc = json_loadb(body, blen, 0, &je);
        if (!doc || !json_is_object(doc)) {
            json_decref(doc);
            reply_err(c, ERR_INVALID_JSON, NULL, NULL);
            return;
        }
        json_t *a = json_object_get(doc, "applicant");
        if (a)
            applicant = json_is_string(a) ? json_string_value(a) : "", alen = json_string_length(a);
    }
    char sub[APPLICANT_SUB_MAX + 1];
    size_t sublen = 0;
    if (applicant && verify_applicant(c, w, applicant, alen, sub, sizeof sub, &sublen) < 0) {
        json_decref(doc);
        return;
    }
    const char *st = wroom_state(w);
    enum conf_room_mode mode = conf_room_mode(&w->conf);
    if (!strcmp(st, "closed")) {
        json_decref(doc);
        reply_err(c, ERR_ROOM_CLOSED, NULL, NULL);
        return;
    }
    if (!strcmp(st, "scheduled")) {
        json_decref(doc);
        room_not_open(c, w);
        return;
    }
    if (mode == ROOM_MODE_REJECT) {
        json_decref(doc);
        reply_err(c, ERR_ROOM_UNAVAILABLE, NULL, NULL);
        return;
    }
    if (mode == ROOM_MODE_PASSTHROUGH) {
        /* Emergency bypass: everyone is admitted at once, no Redis involved. */
        char sid[33];
        wroom_random_hex(sid, 16);
        json_decref(doc);
        wroom_metrics(w)->joins++;
        wroom_view_session(c, w, sid, clock_wall_ms() + (int64_t)w->conf.session_ttl_s * 1000);
        return;
    }
    if (rconn_state(c->gw->redis) != RCONN_CONNECTED) {
        json_decref(doc);
        wroom_redis_down(c);
        return;
    }
    if (applicant) {
        json_decref(doc);
        if (bind_applicant(c, w, sub, sublen) < 0) reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        return;
    }
    json_decref(doc);
    struct join_req *j = calloc(1, sizeof *j);
    if (!j) abort();
    j->c = c;
    *w->batch_tail = j;
    w->batch_tail = &j->next;
    if (w->nbatch++ == 0) event_active(w->flush, EV_TIMEOUT, 0);
}
