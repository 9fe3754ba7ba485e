/* conn.h: one client connection, an explicit state machine over a socket that it reads itself
 * (in pieces sized to what it expects: a large body comes in up to 256 KB at a time) and writes
 * through a bufferevent.
 *
 *   IDLE  --first byte-->  HEAD  --head complete-->  BODY  --message complete-->  HANDLE
 *   HANDLE --reply_*() queued the answer--> IDLE (keep-alive: parse what is already buffered,
 *   so pipelined requests are answered in order) or CLOSING (flush, then close).
 *
 * Timers: a new connection must complete its first head within header_timeout_ms of the accept
 * (one that sends nothing is closed then); between keep-alive requests IDLE waits
 * idle_timeout_ms, and a later HEAD must complete within header_timeout_ms of its first byte
 * (slowloris); BODY may pause at most body_timeout_ms, and must be whole within
 * body_total_timeout_ms of the head plus one second per body_min_rate bytes received (a slow
 * trickle is cut, a large upload at any real rate is not); a write that makes no progress for
 * write_timeout_ms closes the connection.
 *
 * Refusals at accept (max_connections, per_ip_max_connections, draining) are connections too
 * (conn_refuse): the 503 is written, then the connection half-closes and lingers briefly so the
 * client reads the answer rather than a reset. They do not count as open connections; at most
 * a bounded number linger at once, beyond which they close right after the answer. While a handler waits on Redis (HANDLE) the
 * connection is never freed: a peer that goes away is noted and the free happens at reply.
 *
 * HEAD_WAIT: a route's head hook, or the session gate before it, decides asynchronously
 * (returned 1, see route_head_fn). The body is not parsed meanwhile and no 100 Continue is
 * sent; the route then calls conn_head_continue (on to BODY, or from the gate on to the route's
 * hook, as if it had returned 0) or refuses by answering. The
 * decision must come within header_timeout_ms (else 408 and close). Unlike HANDLE, a client that
 * fails or goes away frees the connection at once: the route's abort hook (conn_set_abort) runs
 * first and must make the pending callback find the connection gone. A client that only
 * half-closes is answered, then the connection closes.
 *
 * With proxy_protocol on, a public connection reads its PROXY header (proxy.h) before any HTTP
 * byte, under the header timeout, still IDLE: an invalid one closes it unanswered. Who the client
 * is (conn_client) is settled per connection by that header and per request by X-Forwarded-For
 * from trusted_proxies. */
#ifndef ANTRE_CONN_H
#define ANTRE_CONN_H

#include <event2/event_struct.h>
#include <netinet/in.h>
#include <stdint.h>

#include "errors.h"
#include "request.h"
#include "router.h"

struct gw;
struct bufferevent;
struct evbuffer;

/* Bytes of per-request application context a connection carries (conn_app). */
#define CONN_APP_BYTES 160

enum conn_state { CONN_IDLE, CONN_HEAD, CONN_HEAD_WAIT, CONN_BODY, CONN_HANDLE, CONN_CLOSING };

struct conn {
    struct gw *gw;
    struct bufferevent *bev; /* writes the answers (and holds the socket) */
    struct event rd;         /* the socket is readable (conn.c reads it itself) */
    struct evbuffer *in;     /* read, not yet parsed (the bufferevent's input buffer) */
    struct event timer;
    struct conn *prev, *next; /* gw->conns list */
    enum conn_state state;
    unsigned admin : 1;       /* accepted on the admin listener */
    unsigned close_after : 1; /* answer with Connection: close, then close */
    unsigned head_only : 1;   /* HEAD request: no body in the answer */
    unsigned peer_gone : 1;   /* the peer closed or failed while we were busy */
    unsigned in_input : 1;    /* inside conn input processing (no re-entry) */
    unsigned lang_en : 1;     /* messages in English (Accept-Language) */
    unsigned head_timer : 1;  /* the header deadline of this request is armed */
    unsigned lingering : 1;   /* answered and half-closed: waiting for the client's FIN */
    unsigned peer_eof : 1;    /* the peer half-closed while the head was pending */
    unsigned wait_close : 1;  /* HEAD_WAIT: close_after as it was before the head hook */
    unsigned wait_body : 1;   /* HEAD_WAIT: the request has a body */
    unsigned proxy_wait : 1;  /* a PROXY protocol header is still to be read (proxy.h) */
    unsigned proxied : 1;     /* SRC holds the client the PROXY header named */
    unsigned forwarded : 1;   /* CLIENT holds this request's X-Forwarded-For client */
    unsigned https : 1;       /* a trusted proxy says this request came over https */
    unsigned wait_gate : 1;   /* HEAD_WAIT: for the session gate (the route's hook comes next) */
    unsigned kept : 1;        /* answered a request: IDLE now waits idle_timeout_ms */
    unsigned charged : 1;     /* counted in the per-IP connection counts (client_key) */
    unsigned refusing : 1;    /* refused at accept: answered, lingering (gw->nrefusing) */
    unsigned refuse_fast : 1; /* refused over the lingering budget: close after the answer */
    unsigned body_rate : 1;   /* the body timer is armed for the overall deadline */
    unsigned reading : 1;     /* input wanted (rd is added unless INPUT_HIGH_WATER waits) */
    struct request req;
    const struct route *route;
    struct route_params params;
    struct evbuffer *body;      /* the buffered request body (lazily created) */
    struct sockaddr_in6 peer;   /* AF_INET peers are stored as struct sockaddr_in */
    struct sockaddr_in6 src;    /* proxied: the connection's client from its PROXY header */
    struct sockaddr_in6 client; /* forwarded: this request's client (X-Forwarded-For) */
    uint64_t t_head_ns;         /* when the head completed (latency) */
    uint64_t t_body_ns;         /* when the body began (body_total_timeout_ms) */
    uint64_t client_key;        /* the per-IP key charged (ratelimit_client_key) */
    char reqid[65];
    char *extra;         /* extra response headers for the next reply (malloc'd) */
    size_t linger_bytes; /* input discarded while lingering */
    void (*abort_fn)(struct conn *c, void *arg); /* see conn_set_abort */
    void *abort_arg;
    uint16_t extra_len, extra_cap;
    int status; /* status of the answer being sent */
    /* The application's per-request context (gate.h), whose type the connection does not
     * know: carried inline (no allocation per request) and zeroed when the request ends. */
    union {
        unsigned char bytes[CONN_APP_BYTES];
        uint64_t align_u64;
        void *align_ptr;
    } app;
};

/* Take over FD (non-blocking, accepted from a listener) as a new connection. ADMIN selects the
 * admin router. Returns NULL (and closes FD) if the bufferevent cannot be created. */
struct conn *conn_new(struct gw *gw, int fd, const struct sockaddr *sa, int socklen, int admin);

/* Close now (shutdown or drain deadline). Safe in any state. */
void conn_close(struct conn *c);

/* Draining: close C if it is idle; otherwise mark it to close after its current answer. */
void conn_drain(struct conn *c);

/* The route's head hook returned 1 (pending) and now accepts the head: go on as if it had
 * returned 0 (100 Continue when asked, the body timer, parsing what is buffered). C must be in
 * HEAD_WAIT; the route must not touch C after the call (the request may be answered and C freed
 * within it). To refuse instead, the route just answers (reply_*): with a body the connection
 * closes after the answer, the body unread, as for a refusal returned by the hook. */
void conn_head_continue(struct conn *c);

/* Called by reply.c once an answer has been queued on C's output. */
void conn_answered(struct conn *c);

/* The buffered request body, made contiguous; *LEN its size (0 and "" when none). */
const char *conn_body(struct conn *c, size_t *len);

/* Register FN(C, ARG) to run if C's current request ends without an answer (the client went
 * away or a limit cut the body): a streaming sink removes its partial file there. Cleared when
 * the request is answered. */
void conn_set_abort(struct conn *c, void (*fn)(struct conn *c, void *arg), void *arg);

/* The value of route parameter NAME, *LEN its length, or NULL. */
const char *conn_param(const struct conn *c, const char *name, size_t *len);

/* The application's per-request context: CONN_APP_BYTES bytes, zero before every request
 * (calloc, then cleared when one is answered), typed and owned by the application (gate.h):
 * the connection only carries and clears it. */
void *conn_app(struct conn *c);
const void *conn_app_const(const struct conn *c);

/* 1 when the current request's route carries FLAG (enum route_flags), else 0. */
int conn_route_has(const struct conn *c, unsigned flag);

/* The TCP peer's address as text (behind a load balancer, the balancer's; for the client, see
 * conn_client_text). */
void conn_peer_text(const struct conn *c, char *buf, size_t len);

/* The client address of C's current request: the X-Forwarded-For client when the request came
 * through trusted proxies, else the PROXY protocol source, else the TCP peer (proxy.h). Every
 * per-client decision (rate limits, logs, throttles) uses this, never c->peer. Borrowed from
 * C: valid until the next request; AF_INET addresses are struct sockaddr_in. */
const struct sockaddr *conn_client(const struct conn *c);

/* conn_client(C) as text (for logs and per-address keys). */
void conn_client_text(const struct conn *c, char *buf, size_t len);

/* 1 when a trusted proxy says C's current request came over https (X-Forwarded-Proto): its
 * cookies get Secure. */
int conn_https(const struct conn *c);

/* Count C against its client's open connections ([gateway] per_ip_max_connections, across all
 * processes), first releasing the count C already holds, if any (so it also re-keys C once its PROXY header named the client). Returns 0 when C may go on (counted, or not countable: the limit
 * is off, the address is not IP, the table is full), or 1 when the client is at its limit: C
 * is then counted nowhere, and the caller refuses it (conn_refuse with
 * ERR_TOO_MANY_CONNECTIONS_PER_IP). The count is released when C is freed. */
int conn_charge_client(struct conn *c);

/* Answer C, a connection that has sent no request yet, with the 503 E (Retry-After from the
 * catalogue) and close it: half-close, then read and discard for a short linger, so the answer
 * is not destroyed by a reset. C stops counting as an open connection. Lingering refusals are
 * bounded in number (beyond, C closes right after the answer, discarding what input already
 * arrived). The caller must not use C afterwards. */
void conn_refuse(struct conn *c, enum error_id e);

#endif
