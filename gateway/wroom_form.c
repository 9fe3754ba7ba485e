/* wroom_form.c: the no-JavaScript form routes of the waiting page: POST /rooms/{room}/join
 * (same-origin check, an existing place kept) and GET /rooms/{room}/continue, the page's way on
 * (it redeems an admitted ticket and sends the session to the room's continue_url, through the
 * signed hand-off of handoff.h when that is another origin), and the 303 redirect back to the
 * page that every other form answer ends with. */
#include "wroom_priv.h"

#include <stdio.h>
#include <string.h>

#include "antre/clock.h"
#include "conn.h"
#include "handoff.h"
#include "reply.h"
#include "request.h"
#include "router.h"

/* A form post from the waiting page gets its cookies and a redirect back to the page. */
int wroom_form_redirect(struct conn *c, const struct wroom *w)
{
    if (!conn_route_has(c, ROUTE_FORM)) return 0;
    char loc[64];
    snprintf(loc, sizeof loc, "/rooms/%s", w->conf.name);
    reply_header(c, "Location", loc);
    reply_raw(c, 303, NULL, "", 0);
    return 1;
}

/* 1 when ORIGIN (an Origin header value) names the host the request was sent to. */
static int same_origin(struct request *r)
{
    size_t ol, hl;
    const char *o = request_header(r, "origin", &ol);
    if (!o) return 1; /* not a cross-site browser post (browsers send Origin on POST) */
    const char *h = request_header(r, "host", &hl);
    const char *sep = o ? memchr(o, ':', ol) : NULL;
    if (!h || !sep || sep + 3 > o + ol || memcmp(sep, "://", 3) != 0) return 0;
    const char *oh = sep + 3;
    return (size_t)(o + ol - oh) == hl && memcmp(oh, h, hl) == 0;
}

void wroom_form_join(struct conn *c, struct request *r, const struct route_params *p)
{
    if (!same_origin(r)) {
        reply_err(c, ERR_CROSS_SITE, NULL, NULL);
        return;
    }
    /* Already holding a place or a session here (a resubmitted form, the back button): keep
     * it rather than join again at the end of the queue. */
    size_t rlen, tlen;
    const char *rn = conn_param(c, "room", &rlen);
    struct wroom_view v;
    const char *tok = wroom_ticket_token(r, "antre_ticket", &tlen);
    wroom_view_ticket(c->gw, rn, rlen, tok, tok ? tlen : 0, &v);
    if (!strcmp(v.state, "invalid")) {
        tok = wroom_ticket_token(r, "antre_session", &tlen);
        if (tok) wroom_view_ticket(c->gw, rn, rlen, tok, tlen, &v);
    }
    struct wroom *w = wroom_find(c->gw, rn, rlen);
    if (w && strcmp(v.state, "invalid") != 0 && wroom_form_redirect(c, w)) return;
    wroom_join_route(c, r, p);
}

/* Send the holder of SESSION (LEN bytes) on to W's continue_url. 1 when answered (the 303, or
 * 500 when the hand-off cannot be signed: logged in handoff.c); 0, nothing sent, when SESSION is
 * not a live session of W. */
static int send_on(struct conn *c, const struct wroom *w, const char *session, size_t len)
{
    struct ticket t;
    int64_t now_ms = clock_wall_ms();
    if (wroom_ticket_parse(c->gw, session, len, &t) < 0 || t.kind != TK_SESSION ||
        strcmp(t.room, w->conf.name) != 0 || t.t <= now_ms)
        return 0;
    char loc[HANDOFF_LOCATION_MAX];
    if (handoff_location(&w->conf, session, len, t.sid, t.owner, t.t / 1000, now_ms / 1000, loc,
                         sizeof loc) < 0) {
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        return 1;
    }
    /* The target may carry a token: never cached, never passed on as a Referer. */
    reply_header(c, "Location", loc);
    reply_header(c, "Cache-Control", "no-store");
    reply_header(c, "Referrer-Policy", "no-referrer");
    reply_raw(c, 303, NULL, "", 0);
    return 1;
}

int wroom_form_admitted(struct conn *c, const struct wroom *w, const char *session)
{
    if (!conn_route_has(c, ROUTE_FORM)) return 0;
    /* Only "continue" goes on; a join admitted at once comes back to the page, which shows the
     * way on (the applicant asked to join, not to leave the page). */
    int is_continue = strcmp(request_method_name(&c->req), "POST") != 0;
    if (is_continue && w->conf.continue_url[0] && send_on(c, w, session, strlen(session))) return 1;
    return wroom_form_redirect(c, w);
}

/* The page's "continue": with a live session cookie and a continue_url, straight on; else
 * redeem the ticket cookie (as a status poll would), which goes on once admitted
 * (wroom_form_admitted) and back to the page otherwise. */
void wroom_form_continue(struct conn *c, struct request *r, const struct route_params *p)
{
    size_t rlen, tlen;
    const char *rn = conn_param(c, "room", &rlen);
    struct wroom *w = wroom_find(c->gw, rn, rlen);
    const char *tok =
        w && w->conf.continue_url[0] ? wroom_ticket_token(r, "antre_session", &tlen) : NULL;
    if (tok && send_on(c, w, tok, tlen)) return;
    wroom_status_route(c, r, p);
}
