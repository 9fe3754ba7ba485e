/* wroom_gate.c: the session gate that the server installs on the public router
 * (router_set_gate in routes.c): it checks the session token before a protected route runs and
 * leaves the session facts in the request's context (gate.h); and GET /v1/rooms/{room}/session,
 * which shows them. */
#include "wroom_priv.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "antre/clock.h"
#include "conn.h"
#include "gate.h"
#include "reply.h"
#include "tus.h"

/* Before a refusal: a tus client (it sends Tus-Resumable on every request but OPTIONS) gets it
 * back, as the protocol asks of every answer. */
static void tus_echo(struct conn *c, struct request *r)
{
    size_t len;
    if (request_header(r, "tus-resumable", &len)) reply_header(c, "Tus-Resumable", TUS_VERSION);
}

int wroom_gate(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)p;
    size_t tlen;
    const char *tok = wroom_ticket_token(r, "antre_session", &tlen);
    struct ticket t;
    if (!tok || wroom_ticket_parse(c->gw, tok, tlen, &t) < 0 || t.kind != TK_SESSION ||
        !wroom_find(c->gw, t.room, strlen(t.room))) {
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
    return 0;
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
