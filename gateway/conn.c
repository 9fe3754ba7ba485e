/* conn.c: the connection state machine (see conn.h for the states and timers).
 *
 * The connection reads its socket itself into its input buffer (read_some) and parses straight
 * out of it (evbuffer_peek, no copy), draining what the parser consumed. Answers are queued
 * with reply_*(), which calls conn_answered(): that is where a keep-alive connection goes back
 * to IDLE and the next pipelined request, if already buffered, is parsed at once. */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "accesslog.h"
#include "antre/clock.h"
#include "antre/codec.h"
#include "antre/log.h"
#include "gateway.h"
#include "lang.h"
#include "metrics.h"
#include "peerlimit.h"
#include "proxy.h"
#include "ratelimit.h"
#include "reply.h"

/* Stop reading while this much input waits (a client pipelining faster than we answer). */
#define INPUT_HIGH_WATER (256 * 1024)
/* A closing connection discards at most this much more input before it just closes. */
#define LINGER_MAX_BYTES (64 * 1024)
/* Stop parsing new requests while this much output waits to be written. */
#define OUTPUT_HIGH_WATER (1024 * 1024)
/* Refusals lingering at once: max_connections / REFUSING_SHARE + REFUSING_MIN (see conn_refuse). */
#define REFUSING_SHARE 4
#define REFUSING_MIN 256
#define NS_PER_MS 1000000ull

/* One read takes up to READ_BODY bytes while a body is due, else up to READ_HEAD. Why the
 * connection reads its socket itself instead of through its bufferevent: libevent 2.1 reads at
 * most 4 KB per readv, each after an ioctl(FIONREAD), so a 1 MB upload cost over 500 syscalls
 * and as many turns of the loop; read here, it takes a handful, and the spool writes the pieces
 * as they come (large pieces skip its copy). The sizes sit a little under a power of two
 * because libevent rounds a buffer chain, its own header included, up to one. */
#define READ_CHAIN_SLACK 128
#define READ_HEAD (16 * 1024 - READ_CHAIN_SLACK)
#define READ_BODY (256 * 1024 - READ_CHAIN_SLACK)

enum timer_kind { TIMER_NONE, TIMER_IDLE, TIMER_HEAD, TIMER_BODY };

static void conn_free(struct conn *c);
static void process_input(struct conn *c);
static void head_route(struct conn *c, int has_body);
static void arm(struct conn *c, const struct timeval *tv);
static void refuse_and_close(struct conn *c, enum error_id e, int retry_after_s, int refusal);

/* Watch the socket for input while C wants it (c->reading) and less than INPUT_HIGH_WATER waits
 * unparsed (a client pipelining faster than we answer); a lingering connection only discards. */
static void read_update(struct conn *c)
{
    if (c->reading && (c->lingering || evbuffer_get_length(c->in) < INPUT_HIGH_WATER))
        event_add(&c->rd, NULL);
    else event_del(&c->rd);
}

static void read_on(struct conn *c)
{
    c->reading = 1;
    read_update(c);
}

static void read_off(struct conn *c)
{
    c->reading = 0;
    event_del(&c->rd);
}

/* The last answer is out: close so that the client still gets it. close() on a socket with
 * unread bytes sends RST, which can destroy the answer at the client before it is read (a
 * refused body, a slowloris's last bytes); so half-close (FIN after the answer), then read
 * and discard until the client closes or a short linger time passes. */
static void finish_close(struct conn *c)
{
    if (c->peer_gone || c->lingering) {
        conn_free(c);
        return;
    }
    if (c->refuse_fast) {
        /* Over the lingering budget: discard what already arrived (a close with unread input
         * is what sends the reset), send the FIN, and go. */
        int fd = event_get_fd(&c->rd);
        char sink[4096];
        for (int i = 0; i < 4 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++) continue;
        shutdown(fd, SHUT_WR);
        conn_free(c);
        return;
    }
    c->lingering = 1;
    shutdown(event_get_fd(&c->rd), SHUT_WR);
    evbuffer_drain(c->in, evbuffer_get_length(c->in));
    read_on(c);
    arm(c, c->gw->tv_linger);
}

/* Write what is queued straight to the socket. Only what the kernel did not take waits for a
 * write event: the common case (the whole answer fits) then costs no epoll_ctl and no write
 * timer, which is most of what separated us from nginx per request. */
static void flush_now(struct conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_get_length(out) == 0 || (bufferevent_get_enabled(c->bev) & EV_WRITE)) return;
    /* A socket bufferevent keeps the front of its output frozen outside its own write
     * callback; thaw it for this write as that callback does. */
    evbuffer_unfreeze(out, 1);
    int n = evbuffer_write(out, bufferevent_getfd(c->bev));
    evbuffer_freeze(out, 1);
    /* Anything left, or an error, goes through the bufferevent: it writes the rest, applies
     * the write timeout and reports errors to event_cb. */
    if (evbuffer_get_length(out) > 0 || n < 0) bufferevent_enable(c->bev, EV_WRITE);
}

static void arm(struct conn *c, const struct timeval *tv) { event_add(&c->timer, tv); }

static void set_idle(struct conn *c)
{
    c->state = CONN_IDLE;
    arm(c, c->gw->tv_idle);
}

static void addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)len);
    else snprintf(buf, len, "unix");
}

void conn_peer_text(const struct conn *c, char *buf, size_t len)
{
    addr_text((const struct sockaddr *)&c->peer, buf, len);
}

/* The connection's client: the PROXY header's source, else the TCP peer. */
static const struct sockaddr *conn_src(const struct conn *c)
{
    return (const struct sockaddr *)(c->proxied ? &c->src : &c->peer);
}

static void release_client(struct conn *c)
{
    if (c->charged) peerlimit_release(c->gw->peerlimit, c->client_key);
    c->charged = 0;
}

int conn_charge_client(struct conn *c)
{
    struct gw *gw = c->gw;
    release_client(c);
    int max = gw->conf.gateway.per_ip_max_connections;
    uint64_t key;
    /* Behind the PROXY protocol the client is known only from its header (read_proxy_header
     * charges then); a trusted proxy's own connections carry many clients, each limited per
     * request by its X-Forwarded-For address instead. */
    if (max <= 0 || !gw->peerlimit || c->proxy_wait) return 0;
    const struct sockaddr *who = conn_src(c);
    if (!c->proxied && gw->trusted.n > 0 && cidr_list_match(&gw->trusted, who)) return 0;
    if (ratelimit_client_key(who, &key) < 0) return 0;
    enum peerlimit_result r = peerlimit_charge(gw->peerlimit, key, max);
    if (r == PEERLIMIT_OVER) return 1;
    if (r == PEERLIMIT_CHARGED) c->client_key = key, c->charged = 1;
    return 0;
}

const struct sockaddr *conn_client(const struct conn *c)
{
    return c->forwarded ? (const struct sockaddr *)&c->client : conn_src(c);
}

void conn_client_text(const struct conn *c, char *buf, size_t len)
{
    addr_text(conn_client(c), buf, len);
}

int conn_https(const struct conn *c) { return c->https; }

/* Who sent this request: behind trusted proxies, the X-Forwarded-For client (proxy.h). */
static void resolve_client(struct conn *c)
{
    const struct cidr_list *t = &c->gw->trusted;
    if (t->n == 0 || c->admin) return;
    int https;
    c->forwarded = proxy_request_client(t, conn_src(c), &c->req, &c->client, &https) ? 1 : 0;
    c->https = https ? 1 : 0;
}

/* A client-supplied X-Request-Id is kept when it is short and plain; otherwise we make one. */
static void set_request_id(struct conn *c)
{
    size_t len;
    const char *v = request_header(&c->req, "x-request-id", &len);
    if (v && len > 0 && len < sizeof c->reqid) {
        size_t i;
        for (i = 0; i < len; i++) {
            char ch = v[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.'))
                break;
        }
        if (i == len) {
            memcpy(c->reqid, v, len);
            c->reqid[len] = 0;
            return;
        }
    }
    struct gw *gw = c->gw;
    uint64_t seq = ++gw->reqid_seq;
    uint8_t low48[6]; /* the sequence's low 48 bits, big-endian: 12 hex digits */
    for (int i = 0; i < 6; i++) low48[i] = (uint8_t)(seq >> (40 - 8 * i));
    memcpy(c->reqid, gw->reqid_prefix, 8);
    codec_hex_encode(low48, sizeof low48, c->reqid + 8, sizeof c->reqid - 8);
}

static int body_sink(void *arg, const char *data, size_t len)
{
    struct conn *c = arg;
    if (!c->body) c->body = evbuffer_new();
    if (!c->body) abort();
    return evbuffer_add(c->body, data, len);
}

const char *conn_body(struct conn *c, size_t *len)
{
    *len = c->body ? evbuffer_get_length(c->body) : 0;
    if (!*len) return "";
    return (const char *)evbuffer_pullup(c->body, -1);
}

void conn_set_abort(struct conn *c, void (*fn)(struct conn *c, void *arg), void *arg)
{
    c->abort_fn = fn;
    c->abort_arg = arg;
}

/* The request ends unanswered or refused mid-way: let a streaming sink clean up. */
static void run_abort(struct conn *c)
{
    void (*fn)(struct conn *, void *) = c->abort_fn;
    c->abort_fn = NULL;
    if (fn) fn(c, c->abort_arg);
}

const char *conn_param(const struct conn *c, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (int i = 0; i < c->params.n; i++)
        if (strncmp(c->params.p[i].name, name, nl) == 0 && c->params.p[i].name[nl] == '}') {
            *len = c->params.p[i].len;
            return c->params.p[i].value;
        }
    *len = 0;
    return NULL;
}

void *conn_app(struct conn *c) { return c->app.bytes; }

const void *conn_app_const(const struct conn *c) { return c->app.bytes; }

int conn_route_has(const struct conn *c, unsigned flag)
{
    return c->route && (c->route->flags & flag) ? 1 : 0;
}

/* Refuse the current request and close after the answer (the rest of its bytes stay unread). */
static void refuse_and_close(struct conn *c, enum error_id e, int retry_after_s, int refusal)
{
    if (!c->reqid[0]) set_request_id(c);
    c->close_after = 1;
    read_off(c);
    reply_err_full(c, e, NULL, NULL, NULL, NULL, retry_after_s, refusal);
}

/* Arm the body timer: the pause allowance (body_timeout_ms), or less when the body's overall
 * deadline comes sooner. Why the deadline grows with what arrived (Apache mod_reqtimeout's
 * MinRate): a fixed total would cut a 10 MB photo sent from a slow phone, while a per-pause
 * timeout alone lets 1 byte every few seconds hold the connection for ever. Each byte received
 * buys 1 / body_min_rate seconds beyond the body_total_timeout_ms grace, so any client sending
 * faster than body_min_rate on average is never cut, and a trickle is cut soon after the grace.
 * Returns 0, or -1 when the deadline has passed already. */
static int arm_body(struct conn *c)
{
    const struct conf_gateway *g = &c->gw->conf.gateway;
    uint64_t now = clock_now_ns();
    uint64_t due = c->t_body_ns + (uint64_t)g->body_total_timeout_ms * NS_PER_MS;
    if (g->body_min_rate > 0) due += c->req.body_bytes * 1000000000ull / (uint64_t)g->body_min_rate;
    uint64_t pause = (uint64_t)g->body_timeout_ms * NS_PER_MS;
    if (due <= now) return -1;
    if (due - now >= pause) {
        c->body_rate = 0;
        arm(c, c->gw->tv_body); /* the common timeout: O(1) */
        return 0;
    }
    uint64_t left = due - now;
    struct timeval tv = {(time_t)(left / 1000000000ull),
                         (suseconds_t)(left % 1000000000ull / 1000)};
    c->body_rate = 1;
    arm(c, &tv);
    return 0;
}

/* The body is late: cut it with a 408 (counted as a pause or as too slow overall). */
static void body_late(struct conn *c, int too_slow)
{
    run_abort(c);
    refuse_and_close(c, ERR_REQUEST_TIMEOUT, 0,
                     too_slow ? REFUSE_BODY_MIN_RATE : REFUSE_BODY_TIMEOUT);
}

/* The head is accepted: ask for the body (100-continue) and let the parser go on. */
static void head_go(struct conn *c, int has_body)
{
    struct request *r = &c->req;
    if (has_body) {
        if (r->expect_continue) {
            evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
            flush_now(c);
        }
        c->state = CONN_BODY;
        c->t_body_ns = clock_now_ns();
        arm_body(c);
    }
    request_resume(r);
}

static void on_head(struct conn *c)
{
    struct gw *gw = c->gw;
    struct request *r = &c->req;
    size_t len;
    const char *v;

    c->t_head_ns = clock_now_ns();
    v = request_header(r, "accept-language", &len);
    c->lang_en = v ? lang_prefers_english(v, len) : 0;
    c->head_only = r->method == HTTP1_HEAD;
    set_request_id(c);
    resolve_client(c);
    if (gw->draining) c->close_after = 1;
    int has_body = r->chunked || r->content_length > 0;

    size_t plen;
    const char *path = request_path(r, &plen);
    if (plen == 0 || path[0] != '/') {
        refuse_and_close(c, ERR_BAD_REQUEST, 0, REPLY_REFUSAL_TABLE);
        return;
    }
    if (r->parser.http_major != 1 || r->parser.http_minor > 1) {
        refuse_and_close(c, ERR_HTTP_VERSION_NOT_SUPPORTED, 0, REPLY_REFUSAL_TABLE);
        return;
    }
    char allow[128];
    const struct router *rt = c->admin ? gw->admin_router : gw->router;
    enum router_result found = router_match(rt, request_method_name(r), path, plen, &c->route,
                                            &c->params, allow, sizeof allow);
    if (found != ROUTER_FOUND) c->route = NULL;

    /* Every public request counts against its client's rate, unknown paths included (scanners);
     * health probes are exempt so a load balancer never sees 429. */
    if (gw->ratelimit && !c->admin && !(c->route && (c->route->flags & ROUTE_NO_RATE_LIMIT))) {
        long ms = ratelimit_check(gw->ratelimit, conn_client(c), clock_now_ns());
        if (ms > 0) {
            int secs = (int)((ms + 999) / 1000);
            if (has_body) refuse_and_close(c, ERR_RATE_LIMITED, secs, REPLY_REFUSAL_TABLE);
            else reply_err_retry(c, ERR_RATE_LIMITED, NULL, NULL, secs);
            return;
        }
    }
    if (found == ROUTER_BAD_METHOD) {
        reply_header(c, "Allow", allow);
        if (has_body) refuse_and_close(c, ERR_METHOD_NOT_ALLOWED, 0, REPLY_REFUSAL_TABLE);
        else reply_err(c, ERR_METHOD_NOT_ALLOWED, NULL, NULL);
        return;
    }
    if (found == ROUTER_NOT_FOUND) {
        if (has_body) refuse_and_close(c, ERR_NOT_FOUND, 0, REPLY_REFUSAL_TABLE);
        else reply_err(c, ERR_NOT_FOUND, NULL, NULL);
        return;
    }
    if (c->route->flags & ROUTE_NEEDS_SESSION) {
        /* The gate the server installed on this router answers its refusal itself; a body, if
         * any, stays unread and the connection closes. No gate installed: refuse (fail closed). */
        route_head_fn *gate = router_gate(rt);
        unsigned was = c->close_after;
        if (has_body) c->close_after = 1, read_off(c);
        if (!gate) {
            log_error("conn: route %s needs a session but no gate is installed", c->route->name);
            reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
            return;
        }
        int rc = gate(c, r, &c->params);
        if (rc < 0) return;
        if (rc > 0) { /* the gate asks Redis: HEAD_WAIT, then conn_head_continue or a refusal */
            c->state = CONN_HEAD_WAIT;
            c->wait_close = was;
            c->wait_body = has_body ? 1 : 0;
            c->wait_gate = 1;
            arm(c, gw->tv_header);
            return;
        }
        c->close_after = was;
        if (has_body) read_on(c);
    }
    head_route(c, has_body);
}

/* The head passed the gate (if any): the route's body limits and its own head hook. */
static void head_route(struct conn *c, int has_body)
{
    struct gw *gw = c->gw;
    struct request *r = &c->req;
    int64_t max = c->route->max_body ? c->route->max_body : gw->conf.gateway.max_body_bytes;
    if (r->content_length_seen && r->content_length > (uint64_t)max) {
        refuse_and_close(c, ERR_BODY_TOO_LARGE, 0, REPLY_REFUSAL_TABLE);
        return;
    }
    if (r->expect_other) {
        refuse_and_close(c, ERR_EXPECTATION_FAILED, 0, REPLY_REFUSAL_TABLE);
        return;
    }
    r->body_max = (uint64_t)max;
    r->body_fn = body_sink;
    r->body_arg = c;
    if (c->route->head) {
        /* The route may refuse from the head alone, stream the body itself, or decide later. */
        unsigned was = c->close_after;
        if (has_body) c->close_after = 1;
        int rc = c->route->head(c, r, &c->params);
        if (rc < 0) {
            if (c->state != CONN_CLOSING && has_body) read_off(c);
            return;
        }
        if (rc > 0) {
            /* Pending (conn_head_continue): the body stays unparsed, the header timeout runs
             * again for the decision. */
            c->state = CONN_HEAD_WAIT;
            c->wait_close = was;
            c->wait_body = has_body ? 1 : 0;
            arm(c, gw->tv_header);
            return;
        }
        c->close_after = was;
    }
    head_go(c, has_body);
}

void conn_head_continue(struct conn *c)
{
    if (c->state != CONN_HEAD_WAIT) abort();
    c->close_after = c->wait_close || c->gw->draining || c->peer_eof;
    c->state = CONN_HEAD;
    if (c->wait_gate) {
        /* The gate let it through: the route's part of the head comes next, and may answer,
         * so C is held as during input processing (no free inside; process_input ends it). */
        unsigned was_in = c->in_input;
        c->wait_gate = 0;
        c->in_input = 1;
        if (c->wait_body) read_on(c);
        head_route(c, c->wait_body);
        c->in_input = was_in;
    } else {
        head_go(c, c->wait_body);
    }
    if (!c->in_input) process_input(c);
}

static void on_error(struct conn *c)
{
    struct request *r = &c->req;
    run_abort(c);
    if (!c->reqid[0] || c->state == CONN_HEAD) set_request_id(c);
    log_debug("conn: request refused status=%d code=%s reason=%s", r->status, r->code, r->reason);
    /* The parser's codes are catalogue codes; one without a refusal reason of its own (a body
     * sink's internal_error) is counted as a bad request, as every parser refusal is. */
    const struct error_def *d = errors_find(r->code);
    enum error_id e = d ? (enum error_id)(d - errors_at(0)) : ERR_BAD_REQUEST;
    refuse_and_close(c, e, 0, d && d->refusal >= 0 ? REPLY_REFUSAL_TABLE : REFUSE_BAD_REQUEST);
}

static void on_complete(struct conn *c)
{
    /* The timer may stay armed: it does nothing in HANDLE, and the answer re-arms it. */
    c->state = CONN_HANDLE;
    c->route->fn(c, &c->req, &c->params);
}

void conn_answered(struct conn *c)
{
    struct gw *gw = c->gw;
    c->abort_fn = NULL;
    flush_now(c);
    uint64_t usec = c->t_head_ns ? (clock_now_ns() - c->t_head_ns) / 1000 : 0;
    metrics_request(gw->metrics, c->route ? c->route->id : 0, c->status, usec);
    if (gw->accesslog) {
        char client[64];
        size_t plen;
        const char *path = request_path(&c->req, &plen);
        conn_client_text(c, client, sizeof client);
        accesslog_write(gw->accesslog, client,
                        c->req.head_done ? request_method_name(&c->req) : "-", path, plen,
                        c->status, usec, c->reqid);
    }
    c->t_head_ns = 0;
    c->forwarded = c->https = 0; /* the next request on a proxy's connection may be another's */
    c->kept = 1;
    if (c->close_after || c->peer_gone) {
        c->state = CONN_CLOSING;
        event_del(&c->timer);
        read_off(c);
        if (!c->in_input &&
            (c->peer_gone || evbuffer_get_length(bufferevent_get_output(c->bev)) == 0))
            finish_close(c);
        return;
    }
    if (evbuffer_get_length(c->in) == 0 && request_footprint(&c->req) > 2048) {
        /* Nothing pipelined behind: an idle connection gives large buffers back, so thousands
         * of idle keep-alive connections cost little (small ones are kept: reallocating them on
         * every request costs more than they weigh). */
        request_release(&c->req);
        if (c->body) evbuffer_free(c->body);
        c->body = NULL;
        free(c->extra);
        c->extra = NULL;
        c->extra_cap = 0;
    } else {
        request_reset(&c->req);
        if (c->body) evbuffer_drain(c->body, evbuffer_get_length(c->body));
    }
    c->route = NULL;
    c->params.n = 0;
    c->reqid[0] = 0;
    memset(&c->app, 0, sizeof c->app);
    set_idle(c);
    if (!c->in_input) process_input(c);
}

/* Parse what is buffered, acting on each event, until more input is needed or an answer is
 * pending. */
static void process_input(struct conn *c)
{
    struct evbuffer *in = c->in;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    c->in_input = 1;
    while ((c->state == CONN_IDLE || c->state == CONN_HEAD || c->state == CONN_BODY) &&
           evbuffer_get_length(in) > 0) {
        if (c->state == CONN_IDLE) {
            if (evbuffer_get_length(out) > OUTPUT_HIGH_WATER) break; /* resumed by write_cb */
            c->state = CONN_HEAD;
            /* The first head's deadline has run since the accept (conn_new). */
            c->head_timer = !c->kept;
        }
        struct evbuffer_iovec v[16];
        int nv = evbuffer_peek(in, -1, NULL, v, 16);
        if (nv > 16) nv = 16;
        size_t total = 0;
        enum request_event ev = REQUEST_MORE;
        for (int i = 0; i < nv && ev == REQUEST_MORE; i++) {
            size_t used = 0;
            ev = request_feed(&c->req, v[i].iov_base, v[i].iov_len, &used);
            total += used;
        }
        evbuffer_drain(in, total);
        switch (ev) {
        case REQUEST_MORE: break;
        case REQUEST_HEAD: on_head(c); break;
        case REQUEST_COMPLETE: on_complete(c); break;
        case REQUEST_ERROR: on_error(c); break;
        }
    }
    c->in_input = 0;
    if (c->state == CONN_CLOSING && (c->peer_gone || evbuffer_get_length(out) == 0)) {
        finish_close(c);
        return;
    }
    if (c->state == CONN_BODY && c->peer_eof) {
        /* The client closed while its head was pending and sent not all of the body. */
        conn_free(c);
        return;
    }
    /* A head still incomplete gets header_timeout_ms from its first byte; later bytes do not
     * extend it (that is what cuts a slowloris client). A body may pause body_timeout_ms. */
    if (c->state == CONN_HEAD && !c->head_timer) {
        arm(c, c->gw->tv_header);
        c->head_timer = 1;
    } else if (c->state == CONN_BODY && arm_body(c) < 0) {
        body_late(c, 1); /* C may be gone now */
        return;
    }
    read_update(c); /* parsing may have brought the input under INPUT_HIGH_WATER */
}

/* proxy_protocol: the connection's first bytes must be a PROXY header (from a trusted peer when
 * trusted_proxies is set) naming the client. 0: read, go on; 1: more bytes needed; -1: refused
 * and C freed (no answer: the peer is a balancer, not an HTTP client). */
static int read_proxy_header(struct conn *c)
{
    struct gw *gw = c->gw;
    struct evbuffer *in = c->in;
    size_t len = evbuffer_get_length(in);
    if (len > PROXY_HEADER_MAX) len = PROXY_HEADER_MAX;
    struct proxy_header h;
    const char *why = "peer not in trusted_proxies";
    enum proxy_result rc = PROXY_INVALID;
    if (gw->trusted.n == 0 || cidr_list_match(&gw->trusted, (const struct sockaddr *)&c->peer))
        rc = proxy_parse(evbuffer_pullup(in, (ssize_t)len), len, &h, &why);
    if (rc == PROXY_MORE) return 1;
    if (rc == PROXY_INVALID) {
        char peer[64];
        conn_peer_text(c, peer, sizeof peer);
        proxy_log_refused(peer, why);
        metrics_refusal(gw->metrics, REFUSE_PROXY_HEADER);
        conn_free(c);
        return -1;
    }
    evbuffer_drain(in, h.len);
    c->proxy_wait = 0;
    if (h.has_addr) {
        c->src = h.src;
        c->proxied = 1;
    }
    /* The connection's client is known from here on (conn_client): count its connections. */
    if (!c->admin && conn_charge_client(c) > 0) {
        conn_refuse(c, ERR_TOO_MANY_CONNECTIONS_PER_IP);
        return -1;
    }
    return 0;
}

/* How much one read may take: a body's rest up to READ_BODY, else READ_HEAD, and never
 * past INPUT_HIGH_WATER of unparsed input. */
static size_t read_want(const struct conn *c)
{
    const struct request *r = &c->req;
    size_t want = READ_HEAD;
    if (c->state == CONN_BODY) {
        uint64_t left = r->chunked ? READ_BODY : r->content_length - r->body_bytes;
        if (left > want) want = left < READ_BODY ? (size_t)left : READ_BODY;
    }
    size_t len = evbuffer_get_length(c->in);
    if (len + want > INPUT_HIGH_WATER) want = len < INPUT_HIGH_WATER ? INPUT_HIGH_WATER - len : 0;
    return want;
}

/* One recv into C's input buffer, with no copy: bytes read (> 0), 0 at EOF, or -1 (errno). */
static ssize_t read_some(struct conn *c, int fd)
{
    size_t want = read_want(c);
    struct evbuffer_iovec v[2];
    int nv = want ? evbuffer_reserve_space(c->in, (ev_ssize_t)want, v, 2) : 0;
    if (nv <= 0) { /* full: read_update watches again once parsing made room */
        event_del(&c->rd);
        errno = EAGAIN;
        return -1;
    }
    size_t room = 0;
    for (int i = 0; i < nv; i++) {
        if (v[i].iov_len > want - room) v[i].iov_len = want - room;
        room += v[i].iov_len;
    }
    ssize_t n;
    /* recv when one piece will do: a little cheaper in the kernel than readv. */
    do n = nv == 1 ? recv(fd, v[0].iov_base, v[0].iov_len, 0) : readv(fd, (struct iovec *)v, nv);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        evbuffer_commit_space(c->in, v, 0);
        return n;
    }
    size_t left = (size_t)n;
    for (int i = 0; i < nv; i++) {
        if (v[i].iov_len > left) v[i].iov_len = left;
        left -= v[i].iov_len;
    }
    evbuffer_commit_space(c->in, v, nv);
    return n;
}

/* Lingering: read and discard until the client closes, up to a point. */
static void linger_read(struct conn *c, int fd)
{
    char sink[16 * 1024];
    ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n > 0) c->linger_bytes += (size_t)n;
    /* The client closed or failed, or is still pushing a refused body: not worth more reading. */
    if (n <= 0 || c->linger_bytes > LINGER_MAX_BYTES) conn_free(c);
}

static void on_eof(struct conn *c);
static void on_failed(struct conn *c);

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    if (c->lingering) {
        linger_read(c, fd);
        return;
    }
    ssize_t n = read_some(c, fd);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
        read_off(c);
        if (n == 0) on_eof(c);
        else on_failed(c);
        return;
    }
    if (evbuffer_get_length(c->in) >= INPUT_HIGH_WATER) event_del(&c->rd);
    if (c->proxy_wait && read_proxy_header(c) != 0) return;
    process_input(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    bufferevent_disable(bev, EV_WRITE); /* all written: back to writing directly */
    if (c->state == CONN_CLOSING) {
        finish_close(c);
        return;
    }
    if (c->state == CONN_IDLE && evbuffer_get_length(c->in) > 0) process_input(c);
}

/* The peer will send no more (read_cb saw EOF; reading is off). */
static void on_eof(struct conn *c)
{
    /* An answer in progress still goes out. */
    if (c->state == CONN_HANDLE) {
        c->close_after = 1;
        return;
    }
    if (c->state == CONN_HEAD_WAIT) {
        /* What it sent before closing may be all of the request: the decision goes on, and the
         * connection closes after it (or at once when the body is short). */
        c->peer_eof = 1;
        c->close_after = 1;
        return;
    }
    if (c->state == CONN_CLOSING && evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) return;
    conn_free(c);
}

/* A read or a write failed, or a write made no progress for write_timeout_ms. */
static void on_failed(struct conn *c)
{
    if (c->state == CONN_HANDLE) {
        c->peer_gone = 1;
        read_off(c);
        bufferevent_disable(c->bev, EV_WRITE);
        return;
    }
    conn_free(c);
}

/* The bufferevent only writes: what it reports is a write error or timeout. */
static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) on_eof(arg);
    else on_failed(arg);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    switch (c->state) {
    case CONN_HEAD:
        refuse_and_close(c, ERR_REQUEST_TIMEOUT, 0, REFUSE_HEADER_TIMEOUT); /* C may be gone now */
        break;
    case CONN_BODY:
        body_late(c, c->body_rate); /* C may be gone now */
        break;
    case CONN_HEAD_WAIT: /* the decision did not come (the route's abort hook drops it) */
        run_abort(c);
        refuse_and_close(c, ERR_REQUEST_TIMEOUT, 0, REFUSE_HEADER_TIMEOUT); /* C may be gone now */
        break;
    case CONN_HANDLE: break;
    case CONN_IDLE:
        /* Nothing sent since the accept: cut quietly (nothing was asked), but counted. */
        if (!c->kept) metrics_refusal(c->gw->metrics, REFUSE_HEADER_TIMEOUT);
        conn_free(c);
        break;
    case CONN_CLOSING: conn_free(c); break;
    }
}

struct conn *conn_new(struct gw *gw, int fd, const struct sockaddr *sa, int socklen, int admin)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->gw = gw;
    c->admin = admin ? 1 : 0;
    if (socklen > 0 && (size_t)socklen <= sizeof c->peer) memcpy(&c->peer, sa, (size_t)socklen);
    int one = 1;
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->bev = bufferevent_socket_new(gw->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        evutil_closesocket(fd);
        free(c);
        return NULL;
    }
    /* The input buffer is the bufferevent's own, which it never fills (its reading stays off):
     * no second buffer per connection. A socket bufferevent keeps its input frozen at the end
     * outside its own read callback; thawed for good here, as read_some adds to it. */
    c->in = bufferevent_get_input(c->bev);
    evbuffer_unfreeze(c->in, 0);
    bufferevent_setcb(c->bev, NULL, write_cb, event_cb, c);
    bufferevent_set_timeouts(c->bev, NULL, gw->tv_write);
    /* Writing is enabled only while an answer could not be written at once (flush_now); a new
     * socket bufferevent starts with it enabled. Its reading stays off: read_cb reads. */
    bufferevent_disable(c->bev, EV_WRITE);
    event_assign(&c->rd, gw->base, fd, EV_READ | EV_PERSIST, read_cb, c);
    read_on(c);
    evtimer_assign(&c->timer, gw->base, timer_cb, c);
    request_init(&c->req, &gw->limits);
    c->next = gw->conns;
    if (gw->conns) gw->conns->prev = c;
    gw->conns = c;
    gw->nconns++;
    gw->nadmin += c->admin;
    gw->metrics->conns_open++;
    gw->metrics->conns_total++;
    /* The first head is due header_timeout_ms after the accept, not after its first byte: a
     * connection that sends nothing is a slowloris too, and must not hold its slot for
     * idle_timeout_ms (process_input keeps this deadline when the first byte comes). */
    c->state = CONN_IDLE;
    arm(c, gw->tv_header);
    if (!c->admin && gw->conf.gateway.proxy_protocol)
        c->proxy_wait = 1; /* the PROXY header comes first, within that same deadline */
    return c;
}

void conn_refuse(struct conn *c, enum error_id e)
{
    struct gw *gw = c->gw;
    release_client(c);
    if (!c->refusing) {
        c->refusing = 1;
        gw->nconns--;
        gw->nadmin -= c->admin;
        gw->metrics->conns_open--;
        gw->nrefusing++;
    }
    /* Why a budget: each lingering refusal holds a descriptor for up to the linger time, and
     * refusals come fastest exactly when the gateway is full or attacked. */
    if (gw->nrefusing > gw->conf.gateway.max_connections / REFUSING_SHARE + REFUSING_MIN)
        c->refuse_fast = 1;
    refuse_and_close(c, e, 0, REPLY_REFUSAL_TABLE); /* C may be gone now */
}

static void conn_free(struct conn *c)
{
    struct gw *gw = c->gw;
    run_abort(c);
    if (c->prev) c->prev->next = c->next;
    else gw->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    release_client(c);
    if (c->refusing) {
        gw->nrefusing--;
    } else {
        gw->nconns--;
        gw->nadmin -= c->admin;
        gw->metrics->conns_open--;
    }
    event_del(&c->timer);
    event_del(&c->rd);
    bufferevent_free(c->bev);
    request_release(&c->req);
    if (c->body) evbuffer_free(c->body);
    free(c->extra);
    free(c);
}

void conn_close(struct conn *c)
{
    if (c->state == CONN_HANDLE) {
        /* A handler still holds C: it is freed when the handler answers. */
        c->peer_gone = 1;
        read_off(c);
        bufferevent_disable(c->bev, EV_WRITE);
        return;
    }
    conn_free(c);
}

void conn_drain(struct conn *c)
{
    if (c->state == CONN_IDLE) conn_free(c);
    else c->close_after = 1;
}
