/* wroom.c: the waiting room in a gateway process (see wroom.h and DESIGN.md, "The waiting
 * room"). Atomic steps run in Redis (common/lua/room.lua); this file batches joins, signs and
 * checks tickets and sessions, answers polls from the cached controller state, and keeps the
 * pre-queue draw (seed, commitment, permutation).
 *
 * Token payloads (signed by common/token.c, readable by anyone holding them):
 *   ticket     "T|<room>|<place>|<issued unix s>[|<applicant>]"
 *   pre-queue  "P|<room>|<number>|<issued unix s>[|<applicant>]"
 *   session    "S|<room>|<session id>|<expiry unix ms>[|<applicant>]"
 * where <applicant> (16 hex) is a prefix of the applicant identifier's HMAC, present when the
 * join named one: what a session creates (a registration) then belongs to the applicant and
 * survives a new session; otherwise it belongs to the session. */
#include "wroom.h"

#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <math.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "antre/clock.h"
#include "antre/codec.h"
#include "antre/keys.h"
#include "antre/log.h"
#include "antre/lua_scripts.h"
#include "antre/rconn.h"
#include "antre/script.h"
#include "antre/shuffle.h"
#include "antre/token.h"
#include "conn.h"
#include "gateway.h"
#include "metrics.h"
#include "reply.h"
#include "router.h"

#define TICK_MS 100
#define STALE_NS (1000ull * 1000 * 1000) /* cache older than 1 s is stale */
#define FAST_BATCH_MAX 40                 /* session ids per fast-path script call */
#define APPLICANT_MAX 256

struct join_req {
    struct conn *c;
    struct join_req *next;
};

struct wroom {
    struct gw *gw;
    struct wroom *next;
    struct conf_room conf;
    int removed;                       /* gone from the config: answers 404, freed at exit */
    int idx;                           /* metrics slot index */
    char keys[KEYS_ROOM__COUNT][KEYS_MAX];

    /* The cache: the last controller answer. */
    int have;
    uint64_t fresh_ns;
    int opened;
    int64_t head, tail, active, pending, P, pre, redeemed, expired, admitted;
    double ema;                        /* admissions per second, smoothed */
    int have_seed;
    uint8_t seed[SHUFFLE_SEED_BYTES];
    char seed_hex[65], commitment[65];
    struct shuffle shuf;
    int shuf_ready;
    int tick_busy;

    /* Joins of this loop iteration. */
    struct join_req *batch, **batch_tail;
    int nbatch;
    struct event *flush;
};

static struct script room_script;
static struct event *tick_ev;

static void random_hex(char *out, size_t nbytes)
{
    unsigned char b[32];
    if (nbytes > sizeof b || RAND_bytes(b, (int)nbytes) != 1) abort();
    codec_hex_encode(b, nbytes, out, 2 * nbytes + 1);
}

static struct wroom *find_room(struct gw *gw, const char *name, size_t len)
{
    for (struct wroom *w = gw->rooms; w; w = w->next)
        if (!w->removed && strlen(w->conf.name) == len && memcmp(w->conf.name, name, len) == 0)
            return w;
    return NULL;
}

static int is_stale(const struct wroom *w)
{
    return !w->have || clock_now_ns() - w->fresh_ns > STALE_NS;
}

/* scheduled, prequeue, open, paused or closed, by the schedule and the controller's word. */
static const char *room_state(const struct wroom *w)
{
    int64_t now = clock_wall_ms();
    if (w->conf.closes_at && now >= w->conf.closes_at) return "closed";
    if (!w->opened && w->conf.opens_at && now < w->conf.opens_at)
        return w->conf.prequeue_from && now >= w->conf.prequeue_from ? "prequeue" : "scheduled";
    return w->conf.paused ? "paused" : "open";
}

static struct metrics_room *mroom(const struct wroom *w)
{
    return &w->gw->metrics->rooms[w->idx];
}

/* ---- tokens ---------------------------------------------------------------------------- */

enum ticket_kind { TK_PLACE = 'T', TK_PRE = 'P', TK_SESSION = 'S' };

struct ticket {
    char kind;
    char room[CONF_ROOM_NAME];
    uint64_t num;            /* place, pre-queue number */
    char sid[33];            /* session id */
    int64_t t;               /* issued (s) or expiry (ms) */
    char owner[17];          /* applicant hash prefix, or "" */
};

static int sign(struct gw *gw, const char *payload, char *out, size_t outlen)
{
    return token_sign(gw->keys, payload, strlen(payload), out, outlen);
}

static int sign_ticket(struct conn *c, char kind, const char *room, uint64_t num, char *out,
                       size_t outlen)
{
    char p[128];
    snprintf(p, sizeof p, "%c|%s|%llu|%lld%s%s", kind, room, (unsigned long long)num,
             (long long)(clock_wall_ms() / 1000), c->applicant[0] ? "|" : "", c->applicant);
    return sign(c->gw, p, out, outlen);
}

static int sign_session(struct conn *c, const char *room, const char *sid, int64_t exp_ms,
                        char *out, size_t outlen)
{
    char p[160];
    snprintf(p, sizeof p, "S|%s|%s|%lld%s%s", room, sid, (long long)exp_ms,
             c->applicant[0] ? "|" : "", c->applicant);
    return sign(c->gw, p, out, outlen);
}

/* Verify TOK and parse its payload into T. 0 ok, -1 invalid. */
static int parse_token(struct gw *gw, const char *tok, size_t len, struct ticket *t)
{
    char p[TOKEN_PAYLOAD_MAX + 1];
    size_t plen;
    if (!tok || token_verify(gw->keys, tok, len, p, sizeof p - 1, &plen) < 0) return -1;
    p[plen] = 0;
    char *save, *kind = strtok_r(p, "|", &save), *room = strtok_r(NULL, "|", &save);
    char *a = strtok_r(NULL, "|", &save), *b = strtok_r(NULL, "|", &save);
    char *o = strtok_r(NULL, "|", &save);
    if (!kind || !room || !a || !b || kind[1] || strlen(room) >= sizeof t->room) return -1;
    if (o && strlen(o) >= sizeof t->owner) return -1;
    snprintf(t->owner, sizeof t->owner, "%s", o ? o : "");
    t->kind = kind[0];
    snprintf(t->room, sizeof t->room, "%s", room);
    t->t = strtoll(b, NULL, 10);
    if (t->kind == TK_SESSION) {
        if (strlen(a) >= sizeof t->sid) return -1;
        snprintf(t->sid, sizeof t->sid, "%s", a);
        return 0;
    }
    if (t->kind != TK_PLACE && t->kind != TK_PRE) return -1;
    t->num = strtoull(a, NULL, 10);
    return 0;
}

const char *wroom_token(struct request *r, const char *cookie, size_t *len)
{
    size_t n;
    const char *v = request_header(r, "authorization", &n);
    if (v && n > 7 && strncasecmp(v, "Bearer ", 7) == 0) {
        *len = n - 7;
        return v + 7;
    }
    v = request_header(r, "cookie", &n);
    size_t cl = strlen(cookie);
    for (const char *p = v, *end = v + n; p && p < end;) {
        while (p < end && (*p == ' ' || *p == ';')) p++;
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        if ((size_t)(stop - p) > cl && memcmp(p, cookie, cl) == 0 && p[cl] == '=') {
            *len = (size_t)(stop - p - (ptrdiff_t)cl - 1);
            return p + cl + 1;
        }
        p = semi ? semi + 1 : end;
    }
    return NULL;
}

static void set_cookie(struct conn *c, const char *name, const char *value, int max_age_s)
{
    char v[TOKEN_BUF_SIZE + 128];
    snprintf(v, sizeof v, "%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax", name, value,
             max_age_s);
    reply_header(c, "Set-Cookie", v);
}

/* The room named by the route's {room}, or NULL after answering 404. */
static struct wroom *room_of_route(struct conn *c)
{
    size_t rlen;
    const char *rn = conn_param(c, "room", &rlen);
    struct wroom *w = find_room(c->gw, rn, rlen);
    if (!w)
        reply_err(c, ERR_UNKNOWN_ROOM, "room", NULL);
    return w;
}

/* ---- answers ---------------------------------------------------------------------------- */

/* A form post from the waiting page gets its cookies and a redirect back to the page. */
static int form_redirect(struct conn *c, const struct wroom *w)
{
    if (!c->form) return 0;
    char loc[64];
    snprintf(loc, sizeof loc, "/rooms/%s", w->conf.name);
    reply_header(c, "Location", loc);
    reply_raw(c, 303, NULL, "", 0);
    return 1;
}

static double admit_rate_per_s(const struct wroom *w)
{
    double cfg = w->conf.admit_rate_per_min / 60.0;
    /* Until the smoothed rate has settled, trust the configured one. */
    return w->ema > cfg * 0.05 ? w->ema : cfg;
}

/* Poll interval: a few seconds near the front, up to 30 s far back, with +-20% jitter so that
 * polls from a crowd that joined together spread out. */
/* Jitter needs spread, not secrecy: a xorshift generator seeded once per process (OpenSSL's
 * RAND_bytes costs a getpid() and thousands of instructions per call on the poll path). */
static uint64_t jitter_state;

static double jitter_unit(void)
{
    if (!jitter_state && (RAND_bytes((unsigned char *)&jitter_state, sizeof jitter_state) != 1 ||
                          !jitter_state))
        jitter_state = 0x9e3779b97f4a7c15ull ^ (uint64_t)clock_wall_ms();
    jitter_state ^= jitter_state >> 12;
    jitter_state ^= jitter_state << 25;
    jitter_state ^= jitter_state >> 27;
    return (double)((jitter_state * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

static int poll_after(double eta_s)
{
    double base = eta_s / 10.0;
    if (base < 2) base = 2;
    if (base > 30) base = 30;
    double j = base * (0.8 + 0.4 * jitter_unit());
    return j < 1 ? 1 : (int)lround(j);
}

static void fill_view_waiting(const struct wroom *w, uint64_t place, struct wroom_view *v)
{
    v->state = "waiting";
    v->position = (int64_t)place - w->head + 1;
    double eta = w->conf.paused ? -1 : (double)v->position / admit_rate_per_s(w);
    v->eta_s = eta < 0 ? -1 : (int)ceil(eta);
    v->poll_after_s = poll_after(eta < 0 ? 60 : eta);
    v->progress = place + 1 > 0 ? (double)w->head / (double)(place + 1) : 0;
    if (v->progress > 1) v->progress = 1;
}

/* The place of a pre-queue number once the draw is known; -1 before. */
static int64_t pre_place(struct wroom *w, uint64_t i)
{
    if (!w->opened || !w->shuf_ready || i >= (uint64_t)w->P) return -1;
    return shuffle_ctx_place(&w->shuf, i);
}

void wroom_view_ticket(struct gw *gw, const char *room, size_t rlen, const char *tok,
                       size_t len, struct wroom_view *v)
{
    memset(v, 0, sizeof *v);
    struct wroom *w = find_room(gw, room, rlen);
    if (!w) {
        v->state = "unknown_room";
        return;
    }
    v->room_state = room_state(w);
    v->stale = is_stale(w);
    v->opens_at_ms = w->conf.opens_at;
    v->waiting = w->tail > w->head ? w->tail - w->head : 0;
    v->eta_s = -1;
    struct ticket t;
    if (tok && parse_token(gw, tok, len, &t) == 0 && t.kind == TK_SESSION &&
        strcmp(t.room, w->conf.name) == 0 && t.t > clock_wall_ms()) {
        v->state = "admitted", v->has_session = 1, v->poll_after_s = 1, v->progress = 1;
        return;
    }
    if (!tok || parse_token(gw, tok, len, &t) < 0 || t.kind == TK_SESSION ||
        strcmp(t.room, w->conf.name) != 0) {
        v->state = "invalid";
        v->poll_after_s = 5;
        return;
    }
    int64_t place = t.kind == TK_PLACE ? (int64_t)t.num : pre_place(w, t.num);
    if (place < 0) {
        v->state = "prequeue";
        int64_t until = w->conf.opens_at ? (w->conf.opens_at - clock_wall_ms()) / 1000 : 0;
        v->poll_after_s = poll_after(until > 0 ? (double)until : 2);
        return;
    }
    if (place >= w->head) fill_view_waiting(w, (uint64_t)place, v);
    else v->state = "admitted", v->poll_after_s = 1, v->progress = 1;
}

/* The waiting answer is the hot path of a wave (every poll): written directly rather than
 * through jansson. Every value is a number or a string we made (room names are [a-z0-9_-],
 * tickets base64url), so nothing needs escaping. */
struct sb { /* a bounded string builder: what does not fit is cut, and len says so */
    char *p;
    size_t len, cap;
};

static void sb_str(struct sb *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n < b->cap) memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_int(struct sb *b, long long v)
{
    char tmp[24];
    int n = 0;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do tmp[n++] = (char)('0' + u % 10), u /= 10;
    while (u);
    if (v < 0) tmp[n++] = '-';
    while (n && b->len + 1 < b->cap) b->p[b->len++] = tmp[--n];
}

static size_t waiting_json(char *out, size_t len, const struct wroom *w,
                           const struct wroom_view *v, const char *ticket)
{
    struct sb b = {out, 0, len};
    sb_str(&b, "{\"state\":\"waiting\",\"room\":\"");
    sb_str(&b, w->conf.name);
    sb_str(&b, "\",\"position\":");
    sb_int(&b, v->position);
    sb_str(&b, ",\"eta_s\":");
    if (v->eta_s < 0) sb_str(&b, "null");
    else sb_int(&b, v->eta_s);
    sb_str(&b, ",\"poll_after_s\":");
    sb_int(&b, v->poll_after_s);
    sb_str(&b, v->stale ? ",\"stale\":true,\"room_state\":\"" : ",\"stale\":false,\"room_state\":\"");
    sb_str(&b, room_state(w));
    sb_str(&b, "\"");
    if (ticket) {
        sb_str(&b, ",\"ticket\":\"");
        sb_str(&b, ticket);
        sb_str(&b, "\"");
    }
    sb_str(&b, "}");
    return b.len < b.cap ? b.len : 0;
}

static void answer_waiting(struct conn *c, struct wroom *w, uint64_t place, const char *ticket,
                           int status)
{
    struct wroom_view v;
    memset(&v, 0, sizeof v);
    v.stale = is_stale(w);
    fill_view_waiting(w, place, &v);
    char ra[16];
    snprintf(ra, sizeof ra, "%d", v.poll_after_s);
    reply_header(c, "Retry-After", ra);
    if (ticket) set_cookie(c, "antre_ticket", ticket, 7 * 86400);
    if (form_redirect(c, w)) return;
    char body[TOKEN_BUF_SIZE + 256];
    reply_raw(c, status, "application/json", body, waiting_json(body, sizeof body, w, &v, ticket));
}

static void answer_prequeue(struct conn *c, struct wroom *w, const char *ticket, int status)
{
    int64_t until = w->conf.opens_at ? (w->conf.opens_at - clock_wall_ms()) / 1000 : 0;
    int pa = poll_after(until > 0 ? (double)until : 2);
    char ra[16];
    snprintf(ra, sizeof ra, "%d", pa);
    reply_header(c, "Retry-After", ra);
    if (ticket) set_cookie(c, "antre_ticket", ticket, 7 * 86400);
    if (form_redirect(c, w)) return;
    json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:s}", "state", "prequeue", "room", w->conf.name,
                          "opens_at", w->conf.opens_at_text, "poll_after_s", pa,
                          "seed_commitment", w->commitment);
    if (ticket) json_object_set_new(j, "ticket", json_string(ticket));
    reply_json(c, status, j);
}

static void answer_session(struct conn *c, struct wroom *w, const char *sid, int64_t exp_ms)
{
    char tok[TOKEN_BUF_SIZE];
    if (sign_session(c, w->conf.name, sid, exp_ms, tok, sizeof tok) < 0) {
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        return;
    }
    int64_t left_s = (exp_ms - clock_wall_ms()) / 1000;
    set_cookie(c, "antre_session", tok, left_s > 0 ? (int)left_s : 0);
    set_cookie(c, "antre_ticket", "", 0);
    if (form_redirect(c, w)) return;
    char exp[32];
    time_t s = (time_t)(exp_ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    reply_json(c, 200, json_pack("{s:s, s:s, s:s, s:s}", "state", "admitted", "room",
                                 w->conf.name, "session", tok, "expires_at", exp));
}

/* Redis is not connected, or a command failed or timed out. */
static void redis_down(struct conn *c)
{
    reply_redis_refusal(c, RCONN_REFUSED_CLOSED);
}

/* A command was refused before it was sent (budget spent, or not connected). */
static void redis_busy(struct conn *c)
{
    reply_redis_refusal(c, rconn_last_refusal(c->gw->redis));
}

/* ---- the script ------------------------------------------------------------------------- */

/* Call room.lua's OP for W with the per-op key OPKEY (may be "") and extra arguments. */
static int call_room(struct wroom *w, const char *op, const char *opkey, rconn_cb *cb, void *arg,
                     int nextra, const char *const *extra)
{
    char rate[32], maxa[16], win[24], opens[24], pre[24], seed[65], ttl[24];
    snprintf(rate, sizeof rate, "%.6f", w->conf.admit_rate_per_min);
    snprintf(maxa, sizeof maxa, "%d", w->conf.max_active);
    snprintf(win, sizeof win, "%lld", (long long)w->conf.redeem_window_s * 1000);
    snprintf(opens, sizeof opens, "%lld", (long long)w->conf.opens_at);
    snprintf(pre, sizeof pre, "%lld", (long long)w->conf.prequeue_from);
    snprintf(ttl, sizeof ttl, "%lld", (long long)w->conf.session_ttl_s * 1000);
    random_hex(seed, 32);
    const char *keys[8];
    for (int i = 0; i < 7; i++) keys[i] = w->keys[i];
    keys[7] = opkey[0] ? opkey : w->keys[KEYS_ROOM_CTL];
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
    for (int i = 0; i < nextra && n < SCRIPT_MAX_ARGS - 8; i++) args[n++] = extra[i];
    return script_call(w->gw->redis, &room_script, cb, arg, 8, keys, n, args);
}

static int64_t elem_int(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements) return 0;
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER) return e->integer;
    if (e->type == REDIS_REPLY_STRING) return strtoll(e->str, NULL, 10);
    return 0;
}

static const char *elem_str(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements) return "";
    const redisReply *e = r->element[i];
    return e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS ? e->str : "";
}

static int script_failed(const char *what, const redisReply *r, const char *err)
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

/* ---- controller tick -------------------------------------------------------------------- */

/* The pre-queue seed, as Redis holds it (the first gateway to propose one won): its commitment
 * is published at once, the seed itself only after opening. */
static void learn_seed(struct wroom *w, const char *seed)
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
    if (script_failed("tick", r, err) || r->type != REDIS_REPLY_ARRAY || r->elements < 13) return;
    int was_opened = w->opened;
    w->opened = elem_int(r, 0) == 1;
    w->head = elem_int(r, 1);
    w->tail = elem_int(r, 2);
    w->active = elem_int(r, 3);
    w->pending = elem_int(r, 4);
    w->ema = (double)elem_int(r, 5) / 1000.0;
    w->P = elem_int(r, 7);
    w->pre = elem_int(r, 8);
    w->redeemed = elem_int(r, 9);
    w->expired = elem_int(r, 10);
    w->admitted = elem_int(r, 11);
    learn_seed(w, elem_str(r, 12));
    if (w->opened && w->have_seed && w->P > 0 && !w->shuf_ready) {
        if (shuffle_init(&w->shuf, w->seed, (uint64_t)w->P) == 0) w->shuf_ready = 1;
    }
    if (w->opened && !was_opened && w->have)
        log_info("wroom: room opened room=%s prequeue=%lld", w->conf.name, (long long)w->P);
    w->have = 1;
    w->fresh_ns = clock_now_ns();
    struct metrics_room *m = mroom(w);
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
        if (call_room(w, "tick", "", on_tick_reply, w, 0, NULL) == 0) w->tick_busy = 1;
    }
}

/* ---- join ------------------------------------------------------------------------------- */

/* The answer to one join whose place is PLACE (or, when SID is set, admitted at once). */
static void answer_join(struct conn *c, struct wroom *w, int64_t place, const char *sid,
                        int64_t exp_ms)
{
    mroom(w)->joins++;
    if (sid) {
        answer_session(c, w, sid, exp_ms);
        return;
    }
    char tok[TOKEN_BUF_SIZE];
    if (sign_ticket(c, TK_PLACE, w->conf.name, (uint64_t)place, tok, sizeof tok) < 0) {
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        return;
    }
    /* The cache may lag this join's own INCRBY: a fresh place is never "admitted" here. */
    if (w->tail < place + 1) w->tail = place + 1;
    answer_waiting(c, w, (uint64_t)(place >= w->head ? place : w->head), tok, 202);
}

static void answer_join_pre(struct conn *c, struct wroom *w, int64_t number)
{
    mroom(w)->joins++;
    char tok[TOKEN_BUF_SIZE];
    if (sign_ticket(c, TK_PRE, w->conf.name, (uint64_t)number, tok, sizeof tok) < 0) {
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        return;
    }
    answer_prequeue(c, w, tok, 202);
}

static void room_not_open(struct conn *c, struct wroom *w)
{
    json_t *extra = json_pack("{s:s}", "opens_at", w->conf.opens_at_text);
    reply_err(c, ERR_ROOM_NOT_OPEN, NULL, extra);
}

struct batch_call {
    struct wroom *w;
    struct join_req *reqs;
    int n;
    int fast;
    char sids[FAST_BATCH_MAX][33];
};

static void batch_fail(struct batch_call *b, const char *why)
{
    for (struct join_req *j = b->reqs, *next; j; j = next) {
        next = j->next;
        if (!strcmp(why, "budget")) redis_busy(j->c);
        else redis_down(j->c);
        free(j);
    }
    free(b);
}

static void on_join_reply(void *arg, const redisReply *r, const char *err)
{
    struct batch_call *b = arg;
    struct wroom *w = b->w;
    if (err || !r || r->type == REDIS_REPLY_ERROR) {
        script_failed("join", r, err);
        batch_fail(b, "down");
        return;
    }
    int64_t first = 0, k = 0, exp = 0;
    const char *kind = "open";
    if (r->type == REDIS_REPLY_INTEGER) { /* plain INCRBY: the new tail counter */
        first = w->P + r->integer - b->n;
    } else {
        kind = elem_str(r, 0);
        if (!strcmp(kind, "pre")) {
            first = elem_int(r, 1);
            learn_seed(w, elem_str(r, 2));
        } else if (!strcmp(kind, "open")) {
            k = elem_int(r, 1);
            first = elem_int(r, 2);
            exp = elem_int(r, 4);
            if (!w->opened) w->P = elem_int(r, 3);
        }
    }
    int i = 0;
    for (struct join_req *j = b->reqs, *next; j; j = next, i++) {
        next = j->next;
        if (!strcmp(kind, "pre")) answer_join_pre(j->c, w, first + i);
        else if (!strcmp(kind, "closed")) room_not_open(j->c, w);
        else answer_join(j->c, w, first + i, i < k ? b->sids[i] : NULL, exp);
        free(j);
    }
    if (!strcmp(kind, "open") && k > 0 && w->head < first + k) w->head = first + k;
    free(b);
}

static void send_batch(struct wroom *w, struct join_req *reqs, int n)
{
    struct batch_call *b = calloc(1, sizeof *b);
    if (!b) abort();
    b->w = w;
    b->reqs = reqs;
    b->n = n;
    int rc;
    int fast = w->have && w->opened && w->tail <= w->head && !w->conf.paused &&
               w->active + w->pending < w->conf.max_active;
    if (w->have && w->opened && !fast) {
        rc = rconn_command(w->gw->redis, on_join_reply, b, "INCRBY %s %d",
                           w->keys[KEYS_ROOM_TAIL], n);
    } else {
        /* Not yet known to be open (pre-queue or opening), or the fast path may admit. */
        char nbuf[16];
        snprintf(nbuf, sizeof nbuf, "%d", n);
        const char *extra[2 + FAST_BATCH_MAX];
        extra[0] = nbuf;
        extra[1] = "1";
        for (int i = 0; i < n; i++) {
            random_hex(b->sids[i], 16);
            extra[2 + i] = b->sids[i];
        }
        rc = call_room(w, "join", "", on_join_reply, b, 2 + n, extra);
    }
    if (rc < 0) batch_fail(b, rconn_last_refusal(w->gw->redis) == RCONN_REFUSED_BUDGET
                                  ? "budget" : "down");
}

/* Every join of this loop iteration, in arrival order, as few calls as possible. */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wroom *w = arg;
    while (w->batch) {
        int n = 0;
        struct join_req *head = w->batch, *j = head, *prev = NULL;
        while (j && n < FAST_BATCH_MAX) prev = j, j = j->next, n++;
        prev->next = NULL;
        w->batch = j;
        w->nbatch -= n;
        send_batch(w, head, n);
    }
    w->batch_tail = &w->batch;
}

/* Parse a session record "sid:expiry_ms" (room.lua) into SID (33 bytes) and *EXP. -1 when
 * REC is not one (e.g. "left"). */
static int session_record(const char *rec, char sid[33], int64_t *exp)
{
    const char *colon = strchr(rec, ':');
    size_t sl = colon ? (size_t)(colon - rec) : 0;
    if (!colon || sl == 0 || sl >= 33) return -1;
    memcpy(sid, rec, sl);
    sid[sl] = 0;
    *exp = strtoll(colon + 1, NULL, 10);
    return 0;
}

struct bind_call {
    struct conn *c;
    struct wroom *w;
    char sid[33];
};

static void on_bind_reply(void *arg, const redisReply *r, const char *err)
{
    struct bind_call *b = arg;
    struct conn *c = b->c;
    struct wroom *w = b->w;
    if (err || !r || r->type == REDIS_REPLY_ERROR) {
        script_failed("bind", r, err);
        redis_down(c);
        free(b);
        return;
    }
    const char *kind = elem_str(r, 0);
    if (!strcmp(kind, "bound")) {
        /* The applicant already holds a place here: the same place, from any device. */
        const char *v = elem_str(r, 1);
        if (v[0] == 'p') {
            answer_join_pre(c, w, strtoll(v + 1, NULL, 10));
        } else if (v[0] == 's') {
            char sid[33];
            int64_t exp = 0;
            if (session_record(v + 1, sid, &exp) == 0 && exp > clock_wall_ms())
                answer_session(c, w, sid, exp);
            else reply_err(c, ERR_SESSION_ENDED, NULL, NULL);
        } else {
            answer_join(c, w, strtoll(v, NULL, 10), NULL, 0);
        }
    } else if (!strcmp(kind, "pre")) {
        learn_seed(w, elem_str(r, 2));
        answer_join_pre(c, w, elem_int(r, 1));
    } else if (!strcmp(kind, "open")) {
        int64_t k = elem_int(r, 1);
        answer_join(c, w, elem_int(r, 2), k ? b->sid : NULL, elem_int(r, 4));
    } else {
        room_not_open(c, w);
    }
    free(b);
}

static int bind_applicant(struct conn *c, struct wroom *w, const char *id, size_t len)
{
    uint8_t h[TOKEN_HMAC_BYTES];
    char msg[APPLICANT_MAX + CONF_ROOM_NAME + 2];
    /* Hash room and identifier together: one identifier has unrelated hashes in two rooms. */
    int ml = snprintf(msg, sizeof msg, "%s\n%.*s", w->conf.name, (int)len, id);
    if (token_hmac(c->gw->keys, msg, (size_t)ml, h) < 0) return -1;
    codec_hex_encode(h + 16, 8, c->applicant, sizeof c->applicant);
    char key[KEYS_MAX], field[21];
    keys_room_applicant(key, w->conf.name, h, field);
    struct bind_call *b = calloc(1, sizeof *b);
    if (!b) abort();
    b->c = c;
    b->w = w;
    random_hex(b->sid, 16);
    const char *extra[2] = {field, b->sid};
    if (call_room(w, "bind", key, on_bind_reply, b, 2, extra) < 0) {
        free(b);
        redis_busy(c);
    }
    return 0;
}

static void join_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)p;
    (void)r;
    struct wroom *w = room_of_route(c);
    if (!w) return;
    size_t blen;
    const char *body = conn_body(c, &blen);
    const char *applicant = NULL;
    size_t alen = 0;
    json_t *doc = NULL;
    if (blen && !c->form) { /* a form post's fields are not used */
        json_error_t je;
        doc = json_loadb(body, blen, 0, &je);
        if (!doc || !json_is_object(doc)) {
            json_decref(doc);
            reply_err(c, ERR_INVALID_JSON, NULL, NULL);
            return;
        }
        json_t *a = json_object_get(doc, "applicant");
        if (a && (!json_is_string(a) || json_string_length(a) < 1 ||
                  json_string_length(a) > APPLICANT_MAX)) {
            json_decref(doc);
            reply_err_msg(c, ERR_INVALID_FIELD, "applicant",
                          "applicant harus berupa teks 1-256 karakter.",
                          "applicant must be a string of 1-256 characters.", NULL);
            return;
        }
        if (a) applicant = json_string_value(a), alen = json_string_length(a);
    }
    const char *st = room_state(w);
    enum conf_room_mode mode = conf_room_mode(&w->conf);
    if (!strcmp(st, "closed")) {
        json_decref(doc);
        reply_err(c, ERR_ROOM_CLOSED, NULL, NULL);
        return;
    }
    if (!strcmp(st, "scheduled")) {
        json_decref(doc);
        room_not_open(c, w);
        return;
    }
    if (mode == ROOM_MODE_REJECT) {
        json_decref(doc);
        reply_err(c, ERR_ROOM_UNAVAILABLE, NULL, NULL);
        return;
    }
    if (mode == ROOM_MODE_PASSTHROUGH) {
        /* Emergency bypass: everyone is admitted at once, no Redis involved. */
        char sid[33];
        random_hex(sid, 16);
        json_decref(doc);
        mroom(w)->joins++;
        answer_session(c, w, sid, clock_wall_ms() + (int64_t)w->conf.session_ttl_s * 1000);
        return;
    }
    if (rconn_state(c->gw->redis) != RCONN_CONNECTED) {
        json_decref(doc);
        redis_down(c);
        return;
    }
    if (applicant) {
        char id[APPLICANT_MAX + 1];
        memcpy(id, applicant, alen);
        json_decref(doc);
        if (bind_applicant(c, w, id, alen) < 0) reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        return;
    }
    json_decref(doc);
    struct join_req *j = calloc(1, sizeof *j);
    if (!j) abort();
    j->c = c;
    *w->batch_tail = j;
    w->batch_tail = &j->next;
    if (w->nbatch++ == 0) event_active(w->flush, EV_TIMEOUT, 0);
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

void wroom_join_form(struct conn *c, struct request *r, const struct route_params *p)
{
    c->form = 1;
    if (!same_origin(r)) {
        reply_err(c, ERR_CROSS_SITE, NULL, NULL);
        return;
    }
    /* Already holding a place or a session here (a resubmitted form, the back button): keep
     * it rather than join again at the end of the queue. */
    size_t rlen, tlen;
    const char *rn = conn_param(c, "room", &rlen);
    struct wroom_view v;
    const char *tok = wroom_token(r, "antre_ticket", &tlen);
    wroom_view_ticket(c->gw, rn, rlen, tok, tok ? tlen : 0, &v);
    if (!strcmp(v.state, "invalid")) {
        tok = wroom_token(r, "antre_session", &tlen);
        if (tok) wroom_view_ticket(c->gw, rn, rlen, tok, tlen, &v);
    }
    struct wroom *w = find_room(c->gw, rn, rlen);
    if (w && strcmp(v.state, "invalid") != 0 && form_redirect(c, w)) return;
    join_route(c, r, p);
}

static void status_route(struct conn *c, struct request *r, const struct route_params *p);

/* The no-JavaScript "continue": redeem the ticket cookie (as a status poll would) and go back
 * to the page with the session cookie set. */
static void continue_route(struct conn *c, struct request *r, const struct route_params *p)
{
    c->form = 1;
    status_route(c, r, p);
}

/* ---- status, leave, facts ---------------------------------------------------------------- */

struct redeem_call {
    struct conn *c;
    struct wroom *w;
    uint64_t place;
};

static void ticket_expired(struct conn *c)
{
    if (c->form) { /* back to the page, which offers to join again */
        set_cookie(c, "antre_ticket", "", 0);
        char loc[64];
        size_t rl;
        const char *rn = conn_param(c, "room", &rl);
        snprintf(loc, sizeof loc, "/rooms/%.*s", (int)(rl < 32 ? rl : 32), rn);
        reply_header(c, "Location", loc);
        reply_raw(c, 303, NULL, "", 0);
        return;
    }
    reply_err(c, ERR_TICKET_EXPIRED, NULL, NULL);
}

static void on_redeem_reply(void *arg, const redisReply *r, const char *err)
{
    struct redeem_call *rc = arg;
    struct conn *c = rc->c;
    struct wroom *w = rc->w;
    if (err || !r || r->type == REDIS_REPLY_ERROR) {
        script_failed("redeem", r, err);
        redis_down(c);
        free(rc);
        return;
    }
    const char *kind = elem_str(r, 0);
    if (!strcmp(kind, "new") || !strcmp(kind, "same")) {
        char sid[33];
        int64_t exp;
        if (session_record(elem_str(r, 1), sid, &exp) < 0) {
            mroom(w)->expired410++;
            ticket_expired(c); /* "left": the holder gave the place up */
        } else {
            if (!strcmp(kind, "new")) mroom(w)->redeems++;
            answer_session(c, w, sid, exp);
        }
    } else if (!strcmp(kind, "waiting")) {
        answer_waiting(c, w, rc->place, NULL, 200);
    } else {
        mroom(w)->expired410++;
        ticket_expired(c);
    }
    free(rc);
}

static void invalid_ticket(struct conn *c)
{
    if (c->form) {
        ticket_expired(c); /* the same way back to the page */
        return;
    }
    reply_err(c, ERR_INVALID_TICKET, NULL, NULL);
}

static void status_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)p;
    size_t tlen;
    struct wroom *w = room_of_route(c);
    if (!w) return;
    mroom(w)->polls++;
    const char *tok = wroom_token(r, "antre_ticket", &tlen);
    struct ticket t;
    if (!tok || parse_token(c->gw, tok, tlen, &t) < 0 || t.kind == TK_SESSION ||
        strcmp(t.room, w->conf.name) != 0) {
        invalid_ticket(c);
        return;
    }
    if (is_stale(w)) mroom(w)->stale++;
    snprintf(c->applicant, sizeof c->applicant, "%s", t.owner);
    int64_t place = t.kind == TK_PLACE ? (int64_t)t.num : pre_place(w, t.num);
    if (place < 0) {
        if (w->opened && t.num >= (uint64_t)w->P) { /* a number the draw never saw */
            invalid_ticket(c);
            return;
        }
        answer_prequeue(c, w, NULL, 200);
        return;
    }
    if (place >= w->head) {
        answer_waiting(c, w, (uint64_t)place, NULL, 200);
        return;
    }
    /* The place has been reached: exchange the ticket for a session (once; a retry gets the
     * same session back). */
    struct redeem_call *rc = calloc(1, sizeof *rc);
    if (!rc) abort();
    rc->c = c;
    rc->w = w;
    rc->place = (uint64_t)place;
    char key[KEYS_MAX], pl[24];
    keys_room_redeem(key, w->conf.name, (uint64_t)place);
    snprintf(pl, sizeof pl, "%lld", (long long)place);
    char sid[33];
    random_hex(sid, 16);
    const char *extra[2] = {pl, sid};
    if (call_room(w, "redeem", key, on_redeem_reply, rc, 2, extra) < 0) {
        free(rc);
        redis_busy(c);
    }
}

static void on_leave_reply(void *arg, const redisReply *r, const char *err)
{
    struct conn *c = arg;
    if (script_failed("leave", r, err)) {
        redis_down(c);
        return;
    }
    set_cookie(c, "antre_ticket", "", 0);
    set_cookie(c, "antre_session", "", 0);
    reply_raw(c, 204, NULL, "", 0);
}

static void leave_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)p;
    size_t tlen;
    struct wroom *w = room_of_route(c);
    if (!w) return;
    struct ticket t;
    const char *tok = wroom_token(r, "antre_session", &tlen);
    if (!tok || parse_token(c->gw, tok, tlen, &t) < 0 || t.kind != TK_SESSION)
        tok = wroom_token(r, "antre_ticket", &tlen);
    if (!tok || parse_token(c->gw, tok, tlen, &t) < 0 || strcmp(t.room, w->conf.name) != 0) {
        invalid_ticket(c);
        return;
    }
    char key[KEYS_MAX] = "", num[24];
    const char *extra[2];
    if (t.kind == TK_SESSION) {
        extra[0] = "session";
        extra[1] = t.sid;
    } else {
        int64_t place = t.kind == TK_PLACE ? (int64_t)t.num : pre_place(w, t.num);
        if (place < 0) {
            /* A pre-queue ticket before the draw: its place, unknown yet, will be admitted and
             * expire unredeemed, which the controller credits back. */
            set_cookie(c, "antre_ticket", "", 0);
            reply_raw(c, 204, NULL, "", 0);
            return;
        }
        keys_room_redeem(key, w->conf.name, (uint64_t)place);
        snprintf(num, sizeof num, "%lld", (long long)place);
        extra[0] = "place";
        extra[1] = num;
    }
    mroom(w)->left++;
    if (call_room(w, "leave", key, on_leave_reply, c, 2, extra) < 0) redis_busy(c);
}

static void facts_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)r;
    (void)p;
    struct wroom *w = room_of_route(c);
    if (!w) return;
    json_t *j = json_pack("{s:s, s:s, s:s, s:f, s:f, s:I, s:I, s:I, s:b}", "room", w->conf.name,
                          "state", room_state(w), "mode", w->conf.mode, "admit_rate_per_min",
                          w->conf.admit_rate_per_min, "admission_rate_per_min", w->ema * 60.0,
                          "waiting", (json_int_t)(w->tail > w->head ? w->tail - w->head : 0),
                          "admitted", (json_int_t)w->admitted, "active", (json_int_t)w->active,
                          "stale", is_stale(w));
    json_object_set_new(j, "max_active", json_integer(w->conf.max_active));
    json_object_set_new(j, "prequeue_from", w->conf.prequeue_from_text[0]
                                                ? json_string(w->conf.prequeue_from_text)
                                                : json_null());
    json_object_set_new(j, "opens_at", w->conf.opens_at_text[0]
                                           ? json_string(w->conf.opens_at_text) : json_null());
    json_object_set_new(j, "closes_at", w->conf.closes_at_text[0]
                                            ? json_string(w->conf.closes_at_text) : json_null());
    if (w->have_seed) {
        json_object_set_new(j, "seed_commitment", json_string(w->commitment));
        if (w->opened) {
            json_object_set_new(j, "seed", json_string(w->seed_hex));
            json_object_set_new(j, "prequeue_size", json_integer(w->P));
        }
    }
    reply_json(c, 200, j);
}

int wroom_gate(struct conn *c, struct request *r)
{
    size_t tlen;
    const char *tok = wroom_token(r, "antre_session", &tlen);
    struct ticket t;
    if (!tok || parse_token(c->gw, tok, tlen, &t) < 0 || t.kind != TK_SESSION ||
        !find_room(c->gw, t.room, strlen(t.room))) {
        reply_err(c, ERR_NOT_ADMITTED, NULL, NULL);
        return -1;
    }
    size_t rlen;
    const char *rn = conn_param(c, "room", &rlen);
    if (rn && (strlen(t.room) != rlen || memcmp(t.room, rn, rlen) != 0)) {
        reply_err_msg(c, ERR_NOT_ADMITTED, NULL, "Sesi ini untuk antrean lain.",
                      "This session belongs to another queue.", NULL);
        return -1;
    }
    if (t.t <= clock_wall_ms()) {
        reply_err(c, ERR_SESSION_EXPIRED, NULL, NULL);
        return -1;
    }
    snprintf(c->session.room, sizeof c->session.room, "%s", t.room);
    snprintf(c->session.sid, sizeof c->session.sid, "%s", t.sid);
    snprintf(c->session.owner, sizeof c->session.owner, "%s", t.owner[0] ? t.owner : t.sid);
    c->session.expires_ms = t.t;
    return 0;
}

static void session_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)r;
    (void)p;
    char exp[32];
    time_t s = (time_t)(c->session.expires_ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    reply_json(c, 200, json_pack("{s:s, s:s, s:s}", "state", "admitted", "room",
                                 c->session.room, "expires_at", exp));
}

void wroom_register(struct router *rt)
{
    router_add(rt, &(struct route){.method = "POST", .pattern = "/v1/rooms/{room}/join",
                                   .fn = join_route, .name = "room_join", .max_body = 4096});
    router_add(rt, &(struct route){.method = "GET", .pattern = "/v1/rooms/{room}/status",
                                   .fn = status_route, .name = "room_status"});
    router_add(rt, &(struct route){.method = "POST", .pattern = "/v1/rooms/{room}/leave",
                                   .fn = leave_route, .name = "room_leave", .max_body = 4096});
    router_add(rt, &(struct route){.method = "GET", .pattern = "/v1/rooms/{room}",
                                   .fn = facts_route, .name = "room_facts"});
    router_add(rt, &(struct route){.method = "GET", .pattern = "/rooms/{room}/continue",
                                   .fn = continue_route, .name = "page_continue",
                                   .flags = ROUTE_FORM});
    router_add(rt, &(struct route){.method = "GET", .pattern = "/v1/rooms/{room}/session",
                                   .fn = session_route, .name = "room_session",
                                   .flags = ROUTE_NEEDS_SESSION});
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static struct wroom *room_new(struct gw *gw, const struct conf_room *cr, int idx)
{
    struct wroom *w = calloc(1, sizeof *w);
    if (!w) abort();
    w->gw = gw;
    w->conf = *cr;
    w->idx = idx;
    for (int k = 0; k < KEYS_ROOM__COUNT; k++) keys_room(w->keys[k], cr->name, (enum keys_room)k);
    w->batch_tail = &w->batch;
    w->flush = event_new(gw->base, -1, 0, on_flush, w);
    snprintf(gw->metrics->rooms[idx].name, sizeof gw->metrics->rooms[idx].name, "%s", cr->name);
    return w;
}

static int load_keys(struct gw *gw)
{
    char err[512];
    struct token_keys *k;
    if (token_keys_load(gw->conf.gateway.secret_file, &k, err, sizeof err) < 0) {
        log_error("wroom: signing keys: %s", err);
        return -1;
    }
    if (gw->keys && !token_keys_pepper_equal(gw->keys, k)) {
        log_error("wroom: the pepper in %s changed; keeping the running keys (changing it "
                  "during a wave would let applicants join twice)", gw->conf.gateway.secret_file);
        token_keys_free(k);
        return -1;
    }
    token_keys_free(gw->keys);
    gw->keys = k;
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
        free(w);
    }
    gw->rooms = NULL;
    token_keys_free(gw->keys);
    gw->keys = NULL;
}
