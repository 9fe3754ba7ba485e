/* wroom_priv.h: what the waiting room's files share, private to them (wroom*.c).
 *
 *   wroom.c          the rooms, their Redis script and the controller tick; lifecycle, routes
 *   wroom_ticket.c   signing and reading tickets and sessions; their cookies
 *   wroom_view.c     what a ticket shows now (position, ETA, poll interval) and the answers
 *   wroom_join.c     joins: batching per loop iteration, binding an applicant to one place
 *   wroom_status.c   status polls and redeeming, leaving, the room's public facts
 *   wroom_form.c     the no-JavaScript form routes (join, continue) and their redirects
 *   wroom_gate.c     the session gate installed on the public router, and the session route
 *
 * Token payloads (signed by common/token.c, readable by anyone holding them):
 *   ticket     "T|<room>|<place>|<issued unix s>[|<applicant>]"
 *   pre-queue  "P|<room>|<number>|<issued unix s>[|<applicant>]"
 *   session    "S|<room>|<session id>|<expiry unix ms>[|<applicant>]"
 * where <applicant> (16 hex) is a prefix of the HMAC of the applicant token's `sub`
 * (applicant.h), present when the join named one: what a session creates (a registration) then belongs to the applicant and
 * survives a new session; otherwise it belongs to the session. */
#ifndef ANTRE_WROOM_PRIV_H
#define ANTRE_WROOM_PRIV_H

#include <event2/util.h>
#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "antre/conf.h"
#include "antre/keys.h"
#include "antre/rconn.h"
#include "antre/shuffle.h"
#include "wroom.h"

struct applicant_key;
struct conn;
struct event;
struct gw;
struct metrics_room;
struct request;
struct route_params;

struct join_req {
    struct conn *c;
    struct join_req *next;
};

struct wroom {
    struct gw *gw;
    struct wroom *next;
    struct conf_room conf;
    int removed; /* gone from the config: answers 404, freed at exit */
    int idx;     /* metrics slot index */
    char keys[KEYS_ROOM__COUNT][KEYS_MAX];

    /* The cache: the last controller answer. */
    int have;
    uint64_t fresh_ns;
    int opened;
    int64_t head, tail, active, pending, P, pre, redeemed, expired, admitted;
    double ema; /* admissions per second, smoothed */
    int have_seed;
    uint8_t seed[SHUFFLE_SEED_BYTES];
    char seed_hex[65], commitment[65];
    struct shuffle shuf;
    int shuf_ready;
    int tick_busy;

    /* Joins of this loop iteration (wroom_join.c). */
    struct join_req *batch, **batch_tail;
    int nbatch;
    struct event *flush;

    /* Verifies applicant tokens (applicant.h); NULL: joins naming an applicant are refused. */
    struct applicant_key *applicant_key;
};

enum ticket_kind { TK_PLACE = 'T', TK_PRE = 'P', TK_SESSION = 'S' };

struct ticket {
    char kind;
    char room[CONF_ROOM_NAME];
    uint64_t num;   /* place, pre-queue number */
    char sid[33];   /* session id */
    int64_t t;      /* issued (s) or expiry (ms) */
    char owner[17]; /* applicant hash prefix, or "" */
};

/* ---- wroom.c ---------------------------------------------------------------------------- */

/* NBYTES (<= 32) random bytes as hex into OUT (2 * NBYTES + 1 bytes). */
void wroom_random_hex(char *out, size_t nbytes);
/* The room named NAME (LEN bytes), or NULL (also when removed from the configuration). */
struct wroom *wroom_find(struct gw *gw, const char *name, size_t len);
/* 1 when W's cache is older than 1 s (or never filled). */
int wroom_is_stale(const struct wroom *w);
/* scheduled, prequeue, open, paused or closed, by the schedule and the controller's word. */
const char *wroom_state(const struct wroom *w);
/* W's counters in this process's metrics slot. */
struct metrics_room *wroom_metrics(const struct wroom *w);
/* The room named by the route's {room}, or NULL after answering 404. */
struct wroom *wroom_of_route(struct conn *c);
/* Redis is not connected, or a command failed or timed out: 503. */
void wroom_redis_down(struct conn *c);
/* A command was refused before it was sent (budget spent, or not connected): 503. */
void wroom_redis_busy(struct conn *c);
/* Call room.lua's OP for W with the per-op key OPKEY (may be "") and NEXTRA more arguments.
 * 0 sent (CB(ARG) called once), -1 refused (see rconn_last_refusal). */
int wroom_call(struct wroom *w, const char *op, const char *opkey, rconn_cb *cb, void *arg,
               int nextra, const char *const *extra);
/* Element I of an array reply as an integer (0 when absent) or a string ("" when absent). */
int64_t wroom_elem_int(const redisReply *r, size_t i);
const char *wroom_elem_str(const redisReply *r, size_t i);
/* 1 (and logged) when a script call WHAT failed; 0 when R is an answer. */
int wroom_script_failed(const char *what, const redisReply *r, const char *err);
/* Note the pre-queue seed as Redis holds it (hex): its commitment is published at once. */
void wroom_learn_seed(struct wroom *w, const char *seed);

/* ---- wroom_ticket.c --------------------------------------------------------------------- */

/* Sign a ticket of KIND for place or number NUM in ROOM, carrying C's applicant. 0 or -1. */
int wroom_ticket_sign(struct conn *c, char kind, const char *room, uint64_t num, char *out,
                      size_t outlen);
/* Sign a session SID of ROOM expiring at EXP_MS, carrying C's applicant. 0 or -1. */
int wroom_ticket_sign_session(struct conn *c, const char *room, const char *sid, int64_t exp_ms,
                              char *out, size_t outlen);
/* Verify TOK (LEN bytes, may be NULL) and parse its payload into T. 0 ok, -1 invalid. */
int wroom_ticket_parse(struct gw *gw, const char *tok, size_t len, struct ticket *t);
/* Add a Set-Cookie NAME=VALUE (HttpOnly, SameSite=Lax, Path=/) to C's next answer. */
void wroom_ticket_cookie(struct conn *c, const char *name, const char *value, int max_age_s);
/* Parse a session record "sid:expiry_ms" (room.lua) into SID (33 bytes) and *EXP. -1 when
 * REC is not one (e.g. "left"). */
int wroom_ticket_session_record(const char *rec, char sid[33], int64_t *exp);

/* ---- wroom_view.c ----------------------------------------------------------------------- */

/* Seconds until the next poll for an ETA of ETA_S, with +-20% jitter. */
int wroom_view_poll_after(double eta_s);
/* The place of pre-queue number I once the draw is known; -1 before. */
int64_t wroom_view_pre_place(struct wroom *w, uint64_t i);
/* Answer "waiting" at PLACE with STATUS, setting TICKET (may be NULL) as cookie. */
void wroom_view_waiting(struct conn *c, struct wroom *w, uint64_t place, const char *ticket,
                        int status);
/* Answer "prequeue" with STATUS, setting TICKET (may be NULL) as cookie. */
void wroom_view_prequeue(struct conn *c, struct wroom *w, const char *ticket, int status);
/* Answer "admitted" with a signed session SID expiring at EXP_MS (and its cookie). */
void wroom_view_session(struct conn *c, struct wroom *w, const char *sid, int64_t exp_ms);

/* ---- wroom_join.c, wroom_status.c, wroom_form.c, wroom_gate.c: routes -------------------- */

/* Runs the joins batched in this loop iteration (W's flush event). */
void wroom_join_flush(evutil_socket_t fd, short what, void *arg);
void wroom_join_route(struct conn *c, struct request *r, const struct route_params *p);
void wroom_status_route(struct conn *c, struct request *r, const struct route_params *p);
void wroom_status_leave(struct conn *c, struct request *r, const struct route_params *p);
void wroom_status_facts(struct conn *c, struct request *r, const struct route_params *p);
void wroom_form_continue(struct conn *c, struct request *r, const struct route_params *p);
void wroom_gate_session_route(struct conn *c, struct request *r, const struct route_params *p);
/* On a form route: answer 303 back to W's page (cookies already set) and return 1; else 0. */
int wroom_form_redirect(struct conn *c, const struct wroom *w);
/* An admitted answer with the signed SESSION (its cookie already set): on the continue route,
 * 303 on to W's continue_url (handoff.h); on another form route, back to the page. 1 when
 * answered, 0 when the route is not a form route. */
int wroom_form_admitted(struct conn *c, const struct wroom *w, const char *session);

#endif
