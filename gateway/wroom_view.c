/* wroom_view.c: what a ticket shows now, from the cached room state and without Redis: the
 * position, ETA, progress and poll interval (with jitter), for the waiting page
 * (wroom_view_ticket) and for the API's waiting, pre-queue and admitted answers. */
#include "wroom_priv.h"

#include <jansson.h>
#include <math.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "antre/clock.h"
#include "antre/token.h"
#include "conn.h"
#include "reply.h"

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
    if (!jitter_state &&
        (RAND_bytes((unsigned char *)&jitter_state, sizeof jitter_state) != 1 || !jitter_state))
        jitter_state = 0x9e3779b97f4a7c15ull ^ (uint64_t)clock_wall_ms();
    jitter_state ^= jitter_state >> 12;
    jitter_state ^= jitter_state << 25;
    jitter_state ^= jitter_state >> 27;
    return (double)((jitter_state * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

int wroom_view_poll_after(double eta_s)
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
    v->poll_after_s = wroom_view_poll_after(eta < 0 ? 60 : eta);
    v->progress = place + 1 > 0 ? (double)w->head / (double)(place + 1) : 0;
    if (v->progress > 1) v->progress = 1;
}

/* The place of a pre-queue number once the draw is known; -1 before. */
int64_t wroom_view_pre_place(struct wroom *w, uint64_t i)
{
    if (!w->opened || !w->shuf_ready || i >= (uint64_t)w->P) return -1;
    return shuffle_ctx_place(&w->shuf, i);
}

void wroom_view_ticket(struct gw *gw, const char *room, size_t rlen, const char *tok, size_t len,
                       struct wroom_view *v)
{
    memset(v, 0, sizeof *v);
    struct wroom *w = wroom_find(gw, room, rlen);
    if (!w) {
        v->state = "unknown_room";
        return;
    }
    v->room_state = wroom_state(w);
    v->stale = wroom_is_stale(w);
    v->opens_at_ms = w->conf.opens_at;
    v->waiting = w->tail > w->head ? w->tail - w->head : 0;
    v->eta_s = -1;
    struct ticket t;
    if (tok && wroom_ticket_parse(gw, tok, len, &t) == 0 && t.kind == TK_SESSION &&
        strcmp(t.room, w->conf.name) == 0 && t.t > clock_wall_ms()) {
        v->state = "admitted", v->has_session = 1, v->poll_after_s = 1, v->progress = 1;
        return;
    }
    if (!tok || wroom_ticket_parse(gw, tok, len, &t) < 0 || t.kind == TK_SESSION ||
        strcmp(t.room, w->conf.name) != 0) {
        v->state = "invalid";
        v->poll_after_s = 5;
        return;
    }
    int64_t place = t.kind == TK_PLACE ? (int64_t)t.num : wroom_view_pre_place(w, t.num);
    if (place < 0) {
        v->state = "prequeue";
        int64_t until = w->conf.opens_at ? (w->conf.opens_at - clock_wall_ms()) / 1000 : 0;
        v->poll_after_s = wroom_view_poll_after(until > 0 ? (double)until : 2);
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

static size_t waiting_json(char *out, size_t len, const struct wroom *w, const struct wroom_view *v,
                           const char *ticket)
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
    sb_str(&b,
           v->stale ? ",\"stale\":true,\"room_state\":\"" : ",\"stale\":false,\"room_state\":\"");
    sb_str(&b, wroom_state(w));
    sb_str(&b, "\"");
    if (ticket) {
        sb_str(&b, ",\"ticket\":\"");
        sb_str(&b, ticket);
        sb_str(&b, "\"");
    }
    sb_str(&b, "}");
    return b.len < b.cap ? b.len : 0;
}

void wroom_view_waiting(struct conn *c, struct wroom *w, uint64_t place, const char *ticket,
                        int status)
{
    struct wroom_view v;
    memset(&v, 0, sizeof v);
    v.stale = wroom_is_stale(w);
    fill_view_waiting(w, place, &v);
    char ra[16];
    struct sb rb = {ra, 0, sizeof ra};
    sb_int(&rb, v.poll_after_s);
    ra[rb.len] = 0;
    reply_header(c, "Retry-After", ra);
    if (ticket) wroom_ticket_cookie(c, "antre_ticket", ticket, 7 * 86400);
    if (wroom_form_redirect(c, w)) return;
    char body[TOKEN_BUF_SIZE + 256];
    reply_raw(c, status, "application/json", body, waiting_json(body, sizeof body, w, &v, ticket));
}

void wroom_view_prequeue(struct conn *c, struct wroom *w, const char *ticket, int status)
{
    int64_t until = w->conf.opens_at ? (w->conf.opens_at - clock_wall_ms()) / 1000 : 0;
    int pa = wroom_view_poll_after(until > 0 ? (double)until : 2);
    char ra[16];
    snprintf(ra, sizeof ra, "%d", pa);
    reply_header(c, "Retry-After", ra);
    if (ticket) wroom_ticket_cookie(c, "antre_ticket", ticket, 7 * 86400);
    if (wroom_form_redirect(c, w)) return;
    json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:s}", "state", "prequeue", "room", w->conf.name,
                          "opens_at", w->conf.opens_at_text, "poll_after_s", pa, "seed_commitment",
                          w->commitment);
    if (ticket) json_object_set_new(j, "ticket", json_string(ticket));
    reply_json(c, status, j);
}

void wroom_view_session(struct conn *c, struct wroom *w, const char *sid, int64_t exp_ms)
{
    char tok[TOKEN_BUF_SIZE];
    if (wroom_ticket_sign_session(c, w->conf.name, sid, exp_ms, tok, sizeof tok) < 0) {
        reply_err(c, ERR_INTERNAL_ERROR, NULL, NULL);
        return;
    }
    int64_t left_s = (exp_ms - clock_wall_ms()) / 1000;
    wroom_ticket_cookie(c, "antre_session", tok, left_s > 0 ? (int)left_s : 0);
    wroom_ticket_cookie(c, "antre_ticket", "", 0);
    if (wroom_form_admitted(c, w, tok)) return;
    char exp[32];
    time_t s = (time_t)(exp_ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    reply_json(c, 200,
               json_pack("{s:s, s:s, s:s, s:s}", "state", "admitted", "room", w->conf.name,
                         "session", tok, "expires_at", exp));
}
