/* wroom.h: the waiting room inside one gateway process (wroom.c and the wroom_*.c files, which
 * share gateway/wroom_priv.h).
 *
 * Each configured room keeps a cache of its Redis state (head, tail, capacity, admission rate,
 * pre-queue seed), refreshed by the controller script that this process runs every 100 ms. A
 * status poll verifies the ticket and answers from that cache: no Redis command. Joins arriving
 * in one loop iteration share one INCRBY (or one script call on the fast path). */
#ifndef ANTRE_WROOM_H
#define ANTRE_WROOM_H

#include <stddef.h>
#include <stdint.h>

struct gw;
struct conn;
struct request;
struct router;
struct route_params;

/* Create the rooms of gw->conf, load the signing keys and start the controller timers.
 * 0 ok, -1 (logged). */
int wroom_init(struct gw *gw);

/* Apply a reloaded configuration (rooms added, changed or removed) and re-read the key file. */
void wroom_reload(struct gw *gw);

/* Free everything (shutdown). */
void wroom_free(struct gw *gw);

/* Register the waiting-room API routes. */
void wroom_register(struct router *rt);

/* What a ticket shows now, for the waiting page. STATE is "waiting", "prequeue", "admitted"
 * (place reached: the page redeems through the API), "invalid" or "unknown_room". */
struct wroom_view {
    const char *state;
    const char *room_state; /* scheduled, prequeue, open, paused, closed */
    int64_t position;       /* 1 = next; 0 when not waiting */
    int64_t waiting;        /* people waiting in the room */
    int eta_s;
    int poll_after_s;
    int stale; /* answered from a cache older than 1 s (Redis unreachable) */
    int64_t opens_at_ms;
    double progress; /* 0..1: places admitted so far / the applicant's place + 1 */
    int has_session; /* admitted and holding a session (not only an admitted ticket) */
};

/* Fill V for TICKET (LEN bytes, may be NULL) in room ROOM (RLEN bytes). */
void wroom_view_ticket(struct gw *gw, const char *room, size_t rlen, const char *ticket, size_t len,
                       struct wroom_view *v);

/* The no-JavaScript join: joins C's applicant to ROOM (the route's {room}) like the API, but
 * answers 303 to the waiting page with the ticket (or session) cookie set. */
void wroom_form_join(struct conn *c, struct request *r, const struct route_params *p);

/* The session gate (a route_head_fn that routes.c installs with router_set_gate): checks the
 * session token of C's request (Bearer or cookie antre_session) and fills C's session facts
 * (gate_session), then returns 1 while it asks Redis whether the session left (one ZSCORE; it
 * then calls conn_head_continue, or answers 401 session_expired or 503); 0 in a passthrough
 * room (no Redis); on a bad token answers 401 not_admitted / session_expired itself and returns
 * -1. Called before any body is read. */
int wroom_gate(struct conn *c, struct request *r, const struct route_params *p);

/* Extract a token named NAME ("antre_ticket", "antre_session") from the request: the Bearer
 * token of Authorization, else the cookie. Returns a pointer into the request or NULL. */
const char *wroom_ticket_token(struct request *r, const char *cookie, size_t *len);

#endif
