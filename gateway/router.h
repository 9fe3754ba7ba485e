/* router.h: method + path patterns with {parameters} mapped to handlers.
 *
 * Patterns are literal segments and `{name}` segments, e.g. "/v1/rooms/{room}/status". A GET
 * route also answers HEAD. A path that matches with another method gives 405 and the Allow
 * list. Routes are few, so matching is a scan; each route gets a small id for metrics. */
#ifndef ANTRE_ROUTER_H
#define ANTRE_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#define ROUTER_MAX_PARAMS 4
#define ROUTER_MAX_ROUTES 63

struct conn;
struct request;

struct route_params {
    int n;
    struct {
        const char *name;
        const char *value; /* not NUL-terminated; borrowed from the request */
        size_t len;
    } p[ROUTER_MAX_PARAMS];
};

/* A handler must answer exactly once with a reply_* function, now or later (after Redis). */
typedef void route_fn(struct conn *c, struct request *r, const struct route_params *params);

/* Optional: called when the head is complete, after the limits and the session gate and before
 * any body byte is read. It may refuse by answering (reply_*) and returning -1 (the body stays
 * unread and the connection closes), or take the body itself by setting r->body_fn/body_arg
 * (a streaming sink; see conn_set_abort for clean-up if the client goes away) and return 0.
 * It may also decide later (after Redis) by returning 1 without answering: the connection waits
 * in HEAD_WAIT (conn.h), body unread, until the route calls conn_head_continue or answers. The
 * route must then set an abort hook (conn_set_abort): if the client goes away or the header
 * timeout passes first, the hook runs and the connection is freed, so the route's pending
 * callback must find it gone (and not touch it). A hook that answers returns -1, never 1. */
typedef int route_head_fn(struct conn *c, struct request *r, const struct route_params *params);

enum route_flags {
    ROUTE_NO_RATE_LIMIT = 1, /* health probes are not counted against the client's rate */
    ROUTE_NEEDS_SESSION = 2, /* the router's gate (router_set_gate) runs before the body */
    ROUTE_FORM = 4,          /* a no-JavaScript form route: errors answer HTML (reply.h) */
};

struct route {
    const char *method; /* "GET", "POST", ... */
    const char *pattern;
    route_fn *fn;
    route_head_fn *head; /* optional, see route_head_fn */
    const char *name;    /* metrics label */
    int64_t max_body;    /* body bytes accepted; 0 = [gateway] max_body_bytes */
    unsigned flags;
    int id; /* set by router_add: 1..ROUTER_MAX_ROUTES (0 = no route) */
};

struct router;

enum router_result { ROUTER_FOUND, ROUTER_NOT_FOUND, ROUTER_BAD_METHOD };

/* Free with router_free. */
struct router *router_new(void);
void router_free(struct router *rt);

/* Register ROUTE (copied). ID_BASE lets two routers (public, admin) share one id space: ids are
 * id_base + index + 1. Returns the id, or -1 when the pattern is malformed or the table full. */
int router_add(struct router *rt, const struct route *route);
void router_set_id_base(struct router *rt, int id_base);

/* Find the route for METHOD and PATH (the path only, no query). On ROUTER_FOUND *OUT and
 * PARAMS are set (PARAMS borrow from PATH). On ROUTER_BAD_METHOD, ALLOW receives the methods
 * that the path accepts ("GET, HEAD"). */
enum router_result router_match(const struct router *rt, const char *method, const char *path,
                                size_t pathlen, const struct route **out,
                                struct route_params *params, char *allow, size_t allowlen);

/* Install GATE (may be NULL) as RT's session gate: conn.c calls it, with the route_head_fn
 * contract (it may also decide later: return 1, then conn_head_continue or answer), for every
 * route flagged ROUTE_NEEDS_SESSION, before the route's own head hook. On
 * success it leaves the session facts in the connection's application context (gate.h). The
 * server installs it at start-up (routes.c); a router without one refuses such routes. */
void router_set_gate(struct router *rt, route_head_fn *gate);
route_head_fn *router_gate(const struct router *rt);

/* Route I (0-based) or NULL past the end: for metrics labels. */
const struct route *router_route_at(const struct router *rt, int i);

#endif
