/* wroom.c: the waiting rooms of a gateway process (see wroom.h and docs/design.md, "The waiting
 * room"): the rooms of the configuration and their Redis state cache, refreshed by the
 * controller script (common/lua/room.lua) every 100 ms; the script's calling convention; the
 * routes; start-up, reload and shutdown. The other jobs live in wroom_*.c (wroom_priv.h). */
#include "wroom_priv.h"

#include <event2/event.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antre/clock.h"
#include "antre/codec.h"
#include "antre/log.h"
#include "antre/lua_scripts.h"
#include "antre/script.h"
#include "antre/token.h"
#include "applicant.h"
#include "conn.h"
#include "gateway.h"
#include "handoff.h"
#include "metrics.h"
#include "reply.h"
#include "router.h"

#define TICK_MS 100
#define STALE_NS (1000ull * 1000 * 1000) /* cache older than 1 s is stale */

static struct script room_script;
static struct event *tick_ev;

void wroom_random_hex(char *out, size_t nbytes)
{
    unsigned char b[32];
    if (nbytes > sizeof b || RAND_bytes(b, (int)nbytes) != 1) abort();
    codec_hex_encode(b, nbytes, out, 2 * nbytes + 1);
}

struct wroom *wroom_find(struct gw *gw, const char *name, size_t len)
{
    for (struct wroom *w = gw->rooms; w; w = w->next)
        if (!w->removed && strlen(w->conf.name) == len && memcmp(w->conf.name, name, len) == 0)
            return w;
    return NULL;
}

int wroom_is_stale(const struct wroom *w)
{
    return !w->have || clock_now_ns() - w->fresh_ns > STALE_NS;
}

/* scheduled, prequeue, open, paused or closed, by the schedule and the controller's word. */
const char *wroom_state(const struct wroom *w)
{
    int64_t now = clock_wall_ms();
    if (w->conf.closes_at && now >= w->conf.closes_at) return "closed";
    if (!w->opened && w->conf.opens_at && now < w->conf.opens_at)
        return w->conf.prequeue_from && now >= w->conf.prequeue_from ? "prequeue" : "scheduled";
    return w->conf.paused ? "paused" : "open";
}

struct metrics_room *wroom_metrics(const struct wroom *w) { return &w->gw->metrics->rooms[w->idx]; }

/* The room named by the route's {room}, or NULL after answering 404. */
struct wroom *wroom_of_route(struct conn *c)
{
    size_t rlen;
    const char *rn = conn_param(c, "room", &rlen);
    struct wroom *w = wroom_find(c->gw, rn, rlen);
    if (!w) reply_err(c, ERR_UNKNOWN_ROOM, "room", NULL);
    return w;
}

/* Redis is not connected, or a command failed or timed out. */
void wroom_redis_down(struct conn *c) { reply_redis_refusal(c, RCONN_REFUSED_CLOSED); }

/* A command was refused before it was sent (budget spent, or not connected). */
void wroom_redis_busy(struct conn *c) { reply_redis_refusal(c, rconn_last_refusal(c->gw->redis)); }

/* W's admit_burst: as configured, or by default (0) one second of the rate, at least 1. */
static int room_burst(const struct wroom *w)
{
    if (w->conf.admit_burst > 0) return w->conf.admit_burst;
    double b = w->conf.admit_rate_per_min / 60.0;
    return b < 1.0 ? 1 : b > 1e7 ? 10000000 : (int)b;
}

/* Call room.lua's OP for W with the per-op key OPKEY (may be "") and extra arguments. */
int wroom_call(struct wroom *w, const char *op, const char *opkey, rconn_cb *cb, void *arg,
               int nextra, const char *const *extra)
{
    char rate[32], maxa[16], win[24], opens[24], pre[24], seed[65], ttl[24], burst[16];
    snprintf(rate, sizeof rate, "%.6f", w->conf.admit_rate_per_min);
    snprintf(maxa, sizeof maxa, "%d", w->conf.max_active);
    snprintf(win, sizeof win, "%lld", (long long)w->conf.redeem_window_s * 1000);
    snprintf(opens, sizeof opens, "%lld", (long long)w->conf.opens_at);
    snprintf(pre, sizeof pre, "%lld", (long long)w->conf.prequeue_from);
    snprintf(ttl, sizeof ttl, "%lld", (long long)w->conf.session_ttl_s * 1000);
    snprintf(burst, sizeof burst, "%d", room_burst(w));
    wroom_random_hex(seed, 32);
    const char *keys[9];
    for (int i = 0; i < 7; i++) keys[i] = w->keys[i];
    keys[7] = opkey[0] ? opkey : w->keys[KEYS_ROOM_CTL];
    keys[8] = w->keys[KEYS_ROOM_ENDED];
    const char *args[SCRIPT_MAX_ARGS];
    int n = 0;
    args[n++] = op;
    args[n++] = rate;
    args[n++] = maxa;
    args[n++] = win;
    args[n++] = w->conf.paused ? "1" : "0";
    args[n++] = opens;
    args[n++] = pre;
    args[n++] = seed;
    args[n++] = ttl;
    args[n++] = burst;
    for (int i = 0; i < nextra && n < SCRIPT_MAX_ARGS - 9; i++) args[n++] = extra[i];
    return script_call(w->gw->redis, &room_script, cb, arg, 9, keys, n, args);
}

int64_t wroom_elem_int(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements) return 0;
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER) return e->integer;
    if (e->type == REDIS_REPLY_STRING) return strtoll(e->str, NULL, 10);
    return 0;
}

const char *wroom_elem_str(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements) return "";
    const redisReply *e = r->element[i];
    return e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS ? e->str : "";
}

int wroom_script_failed(const char *what, const redisReply *r, const char *err)
{
    if (err) {
        if (strcmp(err, "closed") != 0) /* "closed": shutting down, nothing to report */
            log_warn("wroom: %s failed err=%s", what, err);
        return 1;
    }
    if (!r || r->type == REDIS_REPLY_ERROR) {
        log_error("wroom: %s failed redis=%s", what, r ? r->str : "no reply");
        return 1;
    }
    return 0;
}

/* The pre-queue seed, as Redis holds it (the first gateway to propose one won): its commitment
 * is published at once, the seed itself only after opening. */
void wroom_learn_seed(struct wroom *w, const char *seed)
{
    if (w->have_seed || strlen(seed) != 64 || shuffle_seed_hex_parse(seed, w->seed) < 0) return;
    w->have_seed = 1;
    snprintf(w->seed_hex, sizeof w->seed_hex, "%s", seed);
    shuffle_commitment(w->seed, w->commitment);
}

static void on_tick_reply(void *arg, const redisReply *r, const char *err)
{
    struct wroom *w = arg;
    w->tick_busy = 0;
    if (wroom_script_failed("tick", r, err) || r->type != REDIS_REPLY_ARRAY || r->elements < 13)
        return;
    int was_opened = w->opened;
    w->opened = wroom_elem_int(r, 0) == 1;
    w->head = wroom_elem_int(r, 1);
    w->tail = wroom_elem_int(r, 2);
    w->active = wroom_elem_int(r, 3);
    w->pending = wroom_elem_int(r, 4);
    w->ema = (double)wroom_elem_int(r, 5) / 1000.0;
    w->P = wroom_elem_int(r, 7);
    w->pre = wroom_elem_int(r, 8);
    w->redeemed = wroom_elem_int(r, 9);
    w->expired = wroom_elem_int(r, 10);
    w->admitted = wroom_elem_int(r, 11);
    wroom_learn_seed(w, wroom_elem_str(r, 12));
    if (w->opened && w->have_seed && w->P > 0 && !w->shuf_ready) {
        if (shuffle_init(&w->shuf, w->seed, (uint64_t)w->P) == 0) w->shuf_ready = 1;
    }
    if (w->opened && !was_opened && w->have)
        log_info("wroom: room opened room=%s prequeue=%lld", w->conf.name, (long long)w->P);
    w->have = 1;
    w->fresh_ns = clock_now_ns();
    struct metrics_room *m = wroom_metrics(w);
    m->waiting = w->tail - w->head;
    m->admitted = w->admitted;
    m->active = w->active;
    m->pending = w->pending;
    m->redeemed = w->redeemed;
    m->expired = w->expired;
    m->admit_rate_milli = (int64_t)(w->ema * 1000);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw *gw = arg;
    if (rconn_state(gw->redis) != RCONN_CONNECTED) return;
    for (struct wroom *w = gw->rooms; w; w = w->next) {
        if (w->removed || w->tick_busy) continue;
        if (conf_room_mode(&w->conf) == ROOM_MODE_PASSTHROUGH) continue;
        if (wroom_call(w, "tick", "", on_tick_reply, w, 0, NULL) == 0) w->tick_busy = 1;
    }
}

void wroom_register(struct router *rt)
{
    router_add(rt, &(struct route){.method = "POST",
                                   .pattern = "/v1/rooms/{room}/join",
                                   .fn = wroom_join_route,
                                   .name = "room_join",
                                   .max_body = 4096});
    router_add(rt, &(struct route){.method = "GET",
                                   .pattern = "/v1/rooms/{room}/status",
                                   .fn = wroom_status_route,
                                   .name = "room_status"});
    router_add(rt, &(struct route){.method = "POST",
                                   .pattern = "/v1/rooms/{room}/leave",
                                   .fn = wroom_status_leave,
                                   .name = "room_leave",
                                   .max_body = 4096});
    router_add(rt, &(struct route){.method = "GET",
                                   .pattern = "/v1/rooms/{room}",
                                   .fn = wroom_status_facts,
                                   .name = "room_facts"});
    router_add(rt, &(struct route){.method = "GET",
                                   .pattern = "/rooms/{room}/continue",
                                   .fn = wroom_form_continue,
                                   .name = "page_continue",
                                   .flags = ROUTE_FORM});
    router_add(rt, &(struct route){.method = "GET",
                                   .pattern = "/v1/rooms/{room}/session",
                                   .fn = wroom_gate_session_route,
                                   .name = "room_session",
                                   .flags = ROUTE_NEEDS_SESSION});
}

static struct wroom *room_new(struct gw *gw, const struct conf_room *cr, int idx)
{
    struct wroom *w = calloc(1, sizeof *w);
    if (!w) abort();
    w->gw = gw;
    w->conf = *cr;
    w->idx = idx;
    for (int k = 0; k < KEYS_ROOM__COUNT; k++) keys_room(w->keys[k], cr->name, (enum keys_room)k);
    w->batch_tail = &w->batch;
    w->flush = event_new(gw->base, -1, 0, wroom_join_flush, w);
    snprintf(gw->metrics->rooms[idx].name, sizeof gw->metrics->rooms[idx].name, "%s", cr->name);
    return w;
}

static int load_keys(struct gw *gw)
{
    if (handoff_reload(&gw->conf) < 0 && !gw->keys) return -1; /* at start: refuse to run */
    char err[512];
    struct token_keys *k;
    if (token_keys_load(gw->conf.gateway.secret_file, &k, err, sizeof err) < 0) {
        log_error("wroom: signing keys: %s", err);
        return -1;
    }
    if (gw->keys && !token_keys_pepper_equal(gw->keys, k)) {
        log_error("wroom: the pepper in %s changed; keeping the running keys (changing it "
                  "during a wave would let applicants join twice)",
                  gw->conf.gateway.secret_file);
        token_keys_free(k);
        return -1;
    }
    token_keys_free(gw->keys);
    gw->keys = k;
    return 0;
}

/* (Re)load W's applicant key from its applicant_key_file ("" turns binding off). On failure the
 * running key, if any, is kept and -1 returned, after logging the reason (never the key). */
static int load_applicant_key(struct wroom *w)
{
    struct applicant_key *k = NULL;
    const char *path = w->conf.applicant_key_file;
    char err[CONF_STR + 300];
    if (path[0] && applicant_key_load(path, &k, err, sizeof err) < 0) {
        log_error("wroom: applicant_key_file room=%s: %s%s", w->conf.name, err,
                  w->applicant_key ? "; keeping the running key" : "");
        return -1;
    }
    if (k)
        log_info("wroom: applicant tokens room=%s alg=%s path=%s", w->conf.name,
                 applicant_alg_name(applicant_key_alg(k)), path);
    else if (w->applicant_key)
        log_info("wroom: applicant binding off room=%s (no applicant_key_file)", w->conf.name);
    applicant_key_free(w->applicant_key);
    w->applicant_key = k;
    return 0;
}

int wroom_init(struct gw *gw)
{
    script_init(&room_script, lua_room);
    if (load_keys(gw) < 0) return -1;
    if (!token_keys_has_pepper(gw->keys))
        log_warn("wroom: %s has no pepper line; joins naming an applicant are refused",
                 gw->conf.gateway.secret_file);
    struct wroom **tail = &gw->rooms;
    for (int i = 0; i < gw->conf.nrooms; i++) {
        *tail = room_new(gw, &gw->conf.rooms[i], i);
        if (load_applicant_key(*tail) < 0) return -1;
        tail = &(*tail)->next;
    }
    tick_ev = event_new(gw->base, -1, EV_PERSIST, on_tick, gw);
    struct timeval tv = {0, TICK_MS * 1000};
    event_add(tick_ev, &tv);
    return 0;
}

void wroom_reload(struct gw *gw)
{
    load_keys(gw);
    for (struct wroom *w = gw->rooms; w; w = w->next) w->removed = 1;
    for (int i = 0; i < gw->conf.nrooms; i++) {
        const struct conf_room *cr = &gw->conf.rooms[i];
        struct wroom *w, **tail = &gw->rooms;
        for (w = gw->rooms; w; w = w->next) {
            tail = &w->next;
            if (!strcmp(w->conf.name, cr->name)) break;
        }
        if (w) {
            w->conf = *cr;
            w->removed = 0;
            load_applicant_key(w);
            continue;
        }
        int idx = 0;
        for (struct wroom *x = gw->rooms; x; x = x->next) idx = x->idx + 1 > idx ? x->idx + 1 : idx;
        if (idx >= METRICS_ROOMS) {
            log_error("wroom: too many rooms over this process's life; restart to add %s",
                      cr->name);
            continue;
        }
        *tail = room_new(gw, cr, idx);
        load_applicant_key(*tail);
        log_info("wroom: room added room=%s", cr->name);
    }
}

void wroom_free(struct gw *gw)
{
    if (tick_ev) event_free(tick_ev);
    tick_ev = NULL;
    for (struct wroom *w = gw->rooms, *next; w; w = next) {
        next = w->next;
        for (struct join_req *j = w->batch, *jn; j; j = jn) {
            jn = j->next;
            free(j);
        }
        event_free(w->flush);
        if (w->shuf_ready) shuffle_clear(&w->shuf);
        applicant_key_free(w->applicant_key);
        free(w);
    }
    gw->rooms = NULL;
    token_keys_free(gw->keys);
    gw->keys = NULL;
    handoff_free();
}
