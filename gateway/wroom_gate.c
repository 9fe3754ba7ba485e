/* wroom_gate.c: the session gate that the server installs on the public router
 * (router_set_gate in routes.c): it checks the session token before a protected route runs and
 * leaves the session facts in the request's context (gate.h); and GET /v1/rooms/{room}/session,
 * which shows them.
 *
 * A token proves what a session was given, not that it still holds: a session that left
 * (POST /v1/rooms/{room}/leave, on any gateway) is in the room's ended set in Redis until its
 * expiry. So after the token checks the gate asks Redis one ZSCORE, with the head waiting
 * (HEAD_WAIT, no body byte read): the leave's script has run before its 204 went out, so no
 * gateway lets the session through afterwards. Status polls are not gated and cost nothing. */
#include "wroom_priv.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "antre/clock.h"
#include "conn.h"
#include "gate.h"
#include "gateway.h"
#include "reply.h"
#include "tus.h"

/* Before a refusal: a tus client (it sends Tus-Resumable on every request but OPTIONS) gets it
 * back, as the protocol asks of every answer. */
static void tus_echo(struct conn *c, struct request *r)
{
    size_t len;
    if (request_header(r, "tus-resumable", &len)) reply_header(c, "Tus-Resumable", TUS_VERSION);
}

/* One gate check waiting on Redis; C is NULL once the client went away (gate_abort). */
struct gate_check {
    struct conn *c;
};

static void gate_abort(struct conn *c, void *arg)
{
    (void)c;
    ((struct gate_check *)arg)->c = NULL; /* on_ended_reply frees it */
}

static void on_ended_reply(void *arg, const redisReply *rep, const char *err)
{
    struct gate_check *g = arg;
    struct conn *c = g->c;
    free(g);
    if (!c) return;
    conn_set_abort(c, NULL, NULL);
    if (err || !rep || rep->type == REDIS_REPLY_ERROR) {
        wroom_script_failed("gate", rep, err);
        tus_echo(c, &c->req);
        wroom_redis_down(c);
        return;
    }
    if (rep->type != REDIS_REPLY_NIL) { /* the session left */
        tus_echo(c, &c->req);
        reply_err(c, ERR_SESSION_EXPIRED, NULL, NULL);
        return;
    }
    conn_head_continue(c);
}

int wroom_gate(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)p;
    size_t tlen;
    const char *tok = wroom_ticket_token(r, "antre_session", &tlen);
    struct ticket t;
    struct wroom *w = NULL;
    if (!tok || wroom_ticket_parse(c->gw, tok, tlen, &t) < 0 || t.kind != TK_SESSION ||
        !(w = wroom_find(c->gw, t.room, strlen(t.room)))) {
        tus_echo(c, r);
        reply_err(c, ERR_NOT_ADMITTED, NULL, NULL);
        return -1;
    }
    size_t rlen;
    const char *rn = conn_param(c, "room", &rlen);
    if (rn && (strlen(t.room) != rlen || memcmp(t.room, rn, rlen) != 0)) {
        tus_echo(c, r);
        reply_err_msg(c, ERR_NOT_ADMITTED, NULL, "Sesi ini untuk antrean lain.",
                      "This session belongs to another queue.", NULL);
        return -1;
    }
    if (t.t <= clock_wall_ms()) {
        tus_echo(c, r);
        reply_err(c, ERR_SESSION_EXPIRED, NULL, NULL);
        return -1;
    }
    struct session *s = &gate_ctx(c)->session;
    snprintf(s->room, sizeof s->room, "%s", t.room);
    snprintf(s->sid, sizeof s->sid, "%s", t.sid);
    snprintf(s->owner, sizeof s->owner, "%s", t.owner[0] ? t.owner : t.sid);
    s->expires_ms = t.t;
    /* Passthrough hands out sessions without Redis to whoever asks: nothing to look up. */
    if (conf_room_mode(&w->conf) == ROOM_MODE_PASSTHROUGH) return 0;
    struct gate_check *g = malloc(sizeof *g);
    if (!g) abort();
    g->c = c;
    if (rconn_command(c->gw->redis, on_ended_reply, g, "ZSCORE %s %s", w->keys[KEYS_ROOM_ENDED],
                      t.sid) < 0) {
        free(g);
        tus_echo(c, r);
        wroom_redis_busy(c);
        return -1;
    }
    conn_set_abort(c, gate_abort, g);
    return 1;
}

void wroom_gate_session_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)r;
    (void)p;
    char exp[32];
    time_t s = (time_t)(gate_session(c)->expires_ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    reply_json(c, 200,
               json_pack("{s:s, s:s, s:s}", "state", "admitted", "room", gate_session(c)->room,
                         "expires_at", exp));
}
