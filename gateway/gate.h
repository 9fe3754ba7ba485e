/* gate.h: the application's per-request context on a connection, and the session facts the
 * session gate leaves there.
 *
 * The connection carries CONN_APP_BYTES of context whose type it does not know (conn_app) and
 * zeroes it before every request; this header gives that area its type. The gate installed on
 * the public router (wroom_gate, routes.c) fills the session facts for routes flagged
 * ROUTE_NEEDS_SESSION; handlers read them through gate_session. */
#ifndef ANTRE_GATE_H
#define ANTRE_GATE_H

#include <stdint.h>

struct conn;

/* What a valid session token says, checked by the gate before the route ran. */
struct session {
    char room[33];
    char sid[33];
    char owner[33];     /* who owns what this session creates: the applicant's hash when the
                           join named one, else the session id */
    int64_t expires_ms; /* wall clock, ms since the epoch */
};

/* The per-request context (lives in the connection, no allocation). */
struct gate_ctx {
    struct session session; /* set by the gate; zero on routes without ROUTE_NEEDS_SESSION */
    char applicant[17];     /* the applicant hash to put in tokens issued now, or "" */
};

/* C's per-request context (borrowed from C; valid until the request is answered). */
struct gate_ctx *gate_ctx(struct conn *c);

/* The session facts of C's request: filled by the gate on ROUTE_NEEDS_SESSION routes. */
const struct session *gate_session(const struct conn *c);

#endif
