/* wroom_form.c: the no-JavaScript form routes of the waiting page: POST /rooms/{room}/join
 * (same-origin check, an existing place kept) and GET /rooms/{room}/continue, and the 303
 * redirect back to the page that every form answer ends with. */
#include "wroom_priv.h"

#include <stdio.h>
#include <string.h>

#include "conn.h"
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

/* The no-JavaScript "continue": redeem the ticket cookie (as a status poll would) and go back
 * to the page with the session cookie set. */
void wroom_form_continue(struct conn *c, struct request *r, const struct route_params *p)
{
    wroom_status_route(c, r, p);
}
