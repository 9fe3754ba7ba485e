/* gateway.h: the state one gateway process shares between its modules.
 *
 * One `struct gw` per process, owned by server.c. Everything here is per process; what must be
 * shared across processes lives in Redis, in signed tokens, in the metrics slots, or in the
 * per-IP tables mapped before the fork (ratelimit.c, peerlimit.c). */
#ifndef ANTRE_GATEWAY_H
#define ANTRE_GATEWAY_H

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

#include "antre/cidr.h"
#include "antre/conf.h"
#include "request.h"

struct event_base;
struct event;
struct evconnlistener;
struct router;
struct rconn;
struct ratelimit;
struct peerlimit;
struct metrics_slot;
struct accesslog;
struct conn;
struct wroom;
struct token_keys;

struct gw {
    struct event_base *base;
    struct conf conf; /* the running configuration (swapped on reload) */
    int slot;         /* this process's index (metrics, request ids) */

    struct router *router;       /* public listener */
    struct router *admin_router; /* admin listener */
    struct evconnlistener *listener;
    struct evconnlistener *admin_listener;
    struct event *backoff_timer; /* re-enables accepting after EMFILE */
    struct event *tick;          /* every 100 ms: clock, Date, gauges, drain check */
    struct event *sig_term, *sig_int, *sig_hup;

    struct rconn *redis;
    struct ratelimit *ratelimit; /* NULL while per_ip_rate = 0 (shared by the processes) */
    struct peerlimit *peerlimit; /* per-IP connection counts (shared by the processes) */
    struct metrics_slot *metrics;
    struct accesslog *accesslog;

    struct wroom *rooms;     /* the waiting rooms (wroom.c) */
    struct token_keys *keys; /* ticket and session signing keys */
    int ping_busy;           /* a liveness PING is in flight */
    uint64_t last_ping_ns;

    struct conn *conns; /* every open connection (for drain and shutdown) */
    int nconns;
    int nadmin;    /* of which on the admin listener */
    int nrefusing; /* refused at accept, still lingering (not in nconns) */
    int draining;
    struct timeval drain_deadline;

    struct request_limits limits; /* from conf, shared by every connection */
    struct cidr_list trusted;     /* [gateway] trusted_proxies, parsed (proxy.h) */

    /* Common timeouts (O(1) timer queues), rebuilt when a reload changes a duration. */
    const struct timeval *tv_header, *tv_body, *tv_idle;
    const struct timeval *tv_write;
    const struct timeval *tv_linger; /* how long a closing connection waits for the client */

    /* Cached per tick / per loop: the Date header and a request-id prefix. */
    char date[40];
    time_t date_sec;
    char reqid_prefix[9];
    uint64_t reqid_seq;
};

#endif
