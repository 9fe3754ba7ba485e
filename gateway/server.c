/* server.c: one gateway process (see server.h).
 *
 * Owns the event loop and everything hung on it: the public and admin listeners (accepting,
 * refusing above max_connections or per_ip_max_connections, backing off on EMFILE), the Redis
 * client, the per-IP limiter and connection counts (shared with the other processes),
 * the access log, the 100 ms tick (cached Date, gauges, drain), and the signals: SIGHUP reloads
 * the configuration, SIGTERM/SIGINT drain and stop. */
#include "server.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accesslog.h"
#include "antre/clock.h"
#include "antre/codec.h"
#include "antre/log.h"
#include "antre/program.h"
#include "antre/rconn.h"
#include "antre/supervisor.h"
#include "conn.h"
#include "gateway.h"
#include "metrics.h"
#include "page.h"
#include "peerlimit.h"
#include "ratelimit.h"
#include "reply.h"
#include "router.h"
#include "routes.h"
#include "tus.h"
#include "wroom.h"

#define ADMIN_EXTRA_CONNS 64 /* admin connections allowed beyond max_connections */
#define ACCEPT_BACKOFF_MS 100
#define PEER_TABLE_PER_CONN 4 /* per-IP count entries per connection a process may hold */

/* server_set_tick_hook's callback: NULL, or called on every tick. */
static void (*tick_hook)(void *arg);
static void *tick_hook_arg;

void server_set_tick_hook(void (*fn)(void *arg), void *arg)
{
    tick_hook = fn;
    tick_hook_arg = arg;
}

/* The per-IP state every process shares, mapped by server_init_shared before the fork. */
static struct ratelimit *shared_ratelimit;
static struct peerlimit *shared_peerlimit;

int server_init_shared(const struct conf *conf, int nprocs)
{
    const struct conf_gateway *g = &conf->gateway;
    /* Made whatever per_ip_rate says, so that a reload turning it on shares it too. */
    shared_ratelimit = ratelimit_new(1, 1, (size_t)g->per_ip_table_size);
    size_t cap = (size_t)g->max_connections * PEER_TABLE_PER_CONN;
    if (cap < (size_t)g->per_ip_table_size) cap = (size_t)g->per_ip_table_size;
    shared_peerlimit = peerlimit_new(nprocs, cap);
    if (!shared_ratelimit || !shared_peerlimit) {
        log_error("server: cannot map the per-IP tables err=%s", strerror(errno));
        return -1;
    }
    return 0;
}

void server_child_ended(int slot)
{
    if (shared_peerlimit) peerlimit_clear_slot(shared_peerlimit, slot);
}

/* Refresh gw->date (the Date header every answer carries) when the second changed. */
static void update_date(struct gw *gw)
{
    time_t now = time(NULL);
    if (now == gw->date_sec) return;
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(gw->date, sizeof gw->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    gw->date_sec = now;
}

static const struct timeval *common_timeout(struct gw *gw, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return event_base_init_common_timeout(gw->base, &tv);
}

/* Derive everything the connections read from the configuration. */
static void apply_conf(struct gw *gw)
{
    const struct conf_gateway *g = &gw->conf.gateway;
    gw->limits.max_url_bytes = (size_t)g->max_url_bytes;
    gw->limits.max_header_bytes = (size_t)g->max_header_bytes;
    gw->limits.max_headers = g->max_headers;
    gw->tv_header = common_timeout(gw, g->header_timeout_ms);
    gw->tv_body = common_timeout(gw, g->body_timeout_ms);
    gw->tv_idle = common_timeout(gw, g->idle_timeout_ms);
    gw->tv_write = common_timeout(gw, g->write_timeout_ms);
    gw->tv_linger = common_timeout(gw, 2000);
    cidr_list_parse(g->trusted_proxies, &gw->trusted, NULL, 0); /* checked at load */

    gw->ratelimit = NULL;
    if (g->per_ip_rate > 0) {
        ratelimit_set(shared_ratelimit, g->per_ip_rate, g->per_ip_burst);
        gw->ratelimit = shared_ratelimit;
    }
}

/* Open, reopen or close the access log to match the configuration. */
static void apply_accesslog(struct gw *gw, const char *old_path)
{
    const char *path = gw->conf.gateway.access_log;
    int off = strcmp(path, "off") == 0 || !path[0];
    if (gw->accesslog && (off || strcmp(path, old_path) != 0)) {
        accesslog_free(gw->accesslog);
        gw->accesslog = NULL;
    } else if (gw->accesslog) {
        accesslog_reopen(gw->accesslog);
        return;
    }
    if (off) return;
    char err[300];
    gw->accesslog = accesslog_new(gw->base, path, err, sizeof err);
    if (!gw->accesslog) log_error("server: %s; access log off", err);
}

static void reload(struct gw *gw)
{
    char old_log[CONF_STR];
    snprintf(old_log, sizeof old_log, "%s", gw->conf.gateway.access_log);
    if (program_reload(&gw->conf, "server", 1) < 0) {
        gw->metrics->reloads_failed++;
        return;
    }
    apply_conf(gw);
    apply_accesslog(gw, old_log);
    admin_load_token(gw);
    wroom_reload(gw);
    if (page_reload() < 0) gw->metrics->reloads_failed++;
    gw->metrics->reloads_ok++;
    log_info("server: configuration reloaded path=%s", gw->conf.path);
}

static void begin_drain(struct gw *gw)
{
    if (gw->draining) return;
    gw->draining = 1;
    log_info("server: draining connections=%d timeout_ms=%d", gw->nconns,
             gw->conf.gateway.drain_timeout_ms);
    /* Close the listening sockets so new connections go to another process or are refused. */
    if (gw->listener) evconnlistener_free(gw->listener);
    if (gw->admin_listener) evconnlistener_free(gw->admin_listener);
    gw->listener = gw->admin_listener = NULL;
    struct timeval now;
    gettimeofday(&now, NULL);
    int ms = gw->conf.gateway.drain_timeout_ms;
    struct timeval d = {ms / 1000, (ms % 1000) * 1000};
    timeradd(&now, &d, &gw->drain_deadline);
    for (struct conn *c = gw->conns, *next; c; c = next) {
        next = c->next;
        conn_drain(c);
    }
}

static void on_ping(void *arg, const redisReply *reply, const char *err)
{
    (void)reply;
    (void)err;
    struct gw *gw = arg;
    gw->ping_busy = 0;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw *gw = arg;
    update_date(gw);
    if (tick_hook) tick_hook(tick_hook_arg);
    /* A Redis that stopped answering (SIGSTOP, a dead host without RST) is only noticed through
     * a command timing out: keep one liveness PING in flight every second. */
    uint64_t now_ns = clock_now_ns();
    if (!gw->ping_busy && rconn_state(gw->redis) == RCONN_CONNECTED &&
        now_ns - gw->last_ping_ns > 1000000000ull) {
        gw->last_ping_ns = now_ns;
        if (rconn_command(gw->redis, on_ping, gw, "PING") == 0) gw->ping_busy = 1;
    }
    gw->metrics->redis_connected = rconn_state(gw->redis) == RCONN_CONNECTED;
    gw->metrics->redis_pending = rconn_pending(gw->redis);
    struct rconn_stats rs;
    rconn_get_stats(gw->redis, &rs);
    gw->metrics->redis_timeouts = rs.timeouts;
    gw->metrics->redis_reconnects = rs.connects;
    if (!gw->draining) return;
    struct timeval now;
    gettimeofday(&now, NULL);
    if (gw->nconns > 0 && timercmp(&now, &gw->drain_deadline, <)) return;
    if (gw->nconns > 0) {
        log_warn("server: drain timeout; closing connections=%d", gw->nconns);
        for (struct conn *c = gw->conns, *next; c; c = next) {
            next = c->next;
            conn_close(c);
        }
    }
    event_base_loopexit(gw->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct gw *gw = arg;
    if (sig == SIGHUP) reload(gw);
    else begin_drain(gw);
}

static void accept_any(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                       int socklen, void *arg, int admin)
{
    (void)l;
    struct gw *gw = arg;
    /* Admin connections have their own small allowance, so an operator can still read
     * /metrics while the public side is full. */
    int over = admin ? gw->nadmin >= ADMIN_EXTRA_CONNS
                     : gw->nconns - gw->nadmin >= gw->conf.gateway.max_connections;
    struct conn *c = conn_new(gw, fd, sa, socklen, admin);
    if (!c) return;
    /* A refusal is answered on a connection of its own, which lingers so that the client reads
     * the 503 instead of a reset (conn_refuse bounds how many linger). */
    if (gw->draining || over)
        conn_refuse(c, gw->draining ? ERR_SHUTTING_DOWN : ERR_TOO_MANY_CONNECTIONS);
    else if (!admin && conn_charge_client(c) > 0) conn_refuse(c, ERR_TOO_MANY_CONNECTIONS_PER_IP);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    accept_any(l, fd, sa, socklen, arg, 0);
}

static void on_admin_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                            int socklen, void *arg)
{
    accept_any(l, fd, sa, socklen, arg, 1);
}

static void on_backoff_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw *gw = arg;
    if (gw->listener) evconnlistener_enable(gw->listener);
    if (gw->admin_listener) evconnlistener_enable(gw->admin_listener);
}

/* Out of descriptors (EMFILE/ENFILE) or memory: stop accepting for a moment instead of
 * spinning on a listener that stays readable. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    struct gw *gw = arg;
    int e = EVUTIL_SOCKET_ERROR();
    if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        metrics_refusal(gw->metrics, REFUSE_ACCEPT_BACKOFF);
        log_warn("server: accept failed err=%s; pausing accepts for %d ms", strerror(e),
                 ACCEPT_BACKOFF_MS);
        if (gw->listener) evconnlistener_disable(gw->listener);
        if (gw->admin_listener) evconnlistener_disable(gw->admin_listener);
        struct timeval tv = {0, ACCEPT_BACKOFF_MS * 1000};
        event_add(gw->backoff_timer, &tv);
        return;
    }
    log_warn("server: accept failed err=%s", strerror(e));
}

static struct evconnlistener *listen_on(struct gw *gw, const struct conf_addr *a,
                                        evconnlistener_cb cb, int reuseport)
{
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
    if (reuseport) flags |= LEV_OPT_REUSEABLE_PORT;
    struct evconnlistener *l =
        evconnlistener_new_bind(gw->base, cb, gw, flags, gw->conf.gateway.backlog,
                                (const struct sockaddr *)&a->sa, (int)a->salen);
    if (!l) {
        log_error("server: cannot listen addr=%s err=%s", a->text, strerror(errno));
        return NULL;
    }
    evconnlistener_set_error_cb(l, on_accept_error);
    return l;
}

static void on_redis_state(void *arg, enum rconn_state st)
{
    struct gw *gw = arg;
    gw->metrics->redis_connected = st == RCONN_CONNECTED;
    if (st == RCONN_CONNECTED) log_info("server: redis connected");
    else log_warn("server: redis connection lost; reconnecting");
}

int server_run(const struct conf *conf, int slot, const char *redis_url, int reuseport)
{
    int rc = 1;
    struct gw *gw = calloc(1, sizeof *gw);
    if (!gw) abort();
    gw->conf = *conf;
    gw->slot = slot;
    signal(SIGPIPE, SIG_IGN);

    /* Debian's hiredis libevent adapter re-arms its events on every read and write: the epoll
     * changelist folds those into one epoll_ctl per loop (measured: +10-15%). */
    struct event_config *cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    gw->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!gw->base) {
        log_error("server: cannot create the event loop");
        free(gw);
        return 1;
    }
    gw->metrics = metrics_attach(slot);
    if (!shared_ratelimit && server_init_shared(conf, 1) < 0) {
        event_base_free(gw->base);
        free(gw);
        return 1;
    }
    /* Counts a crashed predecessor in this slot left behind are cleared here. */
    peerlimit_attach(shared_peerlimit, slot);
    gw->peerlimit = shared_peerlimit;
    unsigned char rnd[4];
    if (RAND_bytes(rnd, sizeof rnd) != 1) memset(rnd, 0, sizeof rnd);
    codec_hex_encode(rnd, sizeof rnd, gw->reqid_prefix, sizeof gw->reqid_prefix);
    update_date(gw);
    apply_conf(gw);
    apply_accesslog(gw, "");
    if (admin_load_token(gw) < 0) goto out;

    gw->router = router_new();
    gw->admin_router = router_new();
    routes_install(gw->router, gw->admin_router);

    char err[256];
    struct rconn_opts ro = {.url = redis_url,
                            .timeout_ms = conf->redis.timeout_ms,
                            .max_pending = conf->redis.max_pending,
                            .backoff_max_ms = 1000};
    gw->redis = rconn_new(gw->base, &ro, err, sizeof err);
    if (!gw->redis) {
        log_error("server: redis: %s", err);
        goto out;
    }
    rconn_set_state_cb(gw->redis, on_redis_state, gw);
    if (wroom_init(gw) < 0) goto out;
    tus_init(gw);

    gw->listener = listen_on(gw, &conf->gateway.listen, on_accept, reuseport);
    gw->admin_listener = listen_on(gw, &conf->gateway.admin_listen, on_admin_accept, reuseport);
    if (!gw->listener || !gw->admin_listener) goto out;

    gw->backoff_timer = evtimer_new(gw->base, on_backoff_done, gw);
    gw->tick = event_new(gw->base, -1, EV_PERSIST, on_tick, gw);
    struct timeval tick = {0, 100000};
    event_add(gw->tick, &tick);
    gw->sig_term = evsignal_new(gw->base, SIGTERM, on_signal, gw);
    gw->sig_int = evsignal_new(gw->base, SIGINT, on_signal, gw);
    gw->sig_hup = evsignal_new(gw->base, SIGHUP, on_signal, gw);
    event_add(gw->sig_term, NULL);
    event_add(gw->sig_int, NULL);
    event_add(gw->sig_hup, NULL);
    supervisor_child_ready();

    log_info("server: listening addr=%s admin=%s process=%d", conf->gateway.listen.text,
             conf->gateway.admin_listen.text, slot);
    event_base_dispatch(gw->base);
    log_info("server: stopped process=%d", slot);
    rc = 0;

out:
    for (struct conn *c = gw->conns, *next; c; c = next) {
        next = c->next;
        conn_close(c);
    }
    if (gw->listener) evconnlistener_free(gw->listener);
    if (gw->admin_listener) evconnlistener_free(gw->admin_listener);
    /* Redis first: its pending callbacks (ticks, joins) still use the rooms. */
    if (gw->redis) rconn_free(gw->redis);
    tus_free(gw);
    wroom_free(gw);
    page_free();
    if (gw->accesslog) accesslog_free(gw->accesslog);
    if (gw->backoff_timer) event_free(gw->backoff_timer);
    if (gw->tick) event_free(gw->tick);
    if (gw->sig_term) event_free(gw->sig_term);
    if (gw->sig_int) event_free(gw->sig_int);
    if (gw->sig_hup) event_free(gw->sig_hup);
    if (gw->router) router_free(gw->router);
    if (gw->admin_router) router_free(gw->admin_router);
    event_base_free(gw->base);
    free(gw);
    return rc;
}
