/* page.c: the waiting page GET /rooms/{room} and its no-JavaScript join POST /rooms/{room}/join.
 *
 * The page shows what the applicant's ticket (cookie antre_ticket) means now: not joined yet (a
 * join button, a plain HTML form), waiting (position, ETA, progress, the room's state), in the
 * pre-queue (when the room opens, and that places are drawn fairly then), or admitted: a link on
 * to the registration site when the room has a continue_url (through GET /rooms/{room}/continue,
 * which redeems the ticket and carries the session there, wroom_form.c and handoff.c), else
 * what the session is for (the API), never a link back to the page itself. Everything comes
 * from the waiting room's cache (wroom_view_ticket): rendering sends no Redis command.
 * Indonesian unless ?lang=en, or Accept-Language prefers English (?lang=id wins over the header).
 *
 * The no-JavaScript form routes (the join here, continue in wroom_form.c) answer their errors with
 * this page too, under the error's status and with its message shown (form_error).
 *
 * Operators customise the page through a template, waiting.html in the templates directory,
 * compiled when it is loaded (at start and on SIGHUP), never on the request path, by the
 * template engine of common/tmpl.c (a small part of Mustache; the names it may use are below).
 * Names are checked when the template is loaded, so a typo is reported with its line instead of
 * rendering as nothing. A template that cannot be loaded at start leaves a plain built-in page
 * in service; one that cannot be reloaded leaves the previous one. */
#include "page.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "antre/log.h"
#include "antre/tmpl.h"
#include "conn.h"
#include "gateway.h"
#include "reply.h"
#include "router.h"
#include "wroom.h"

#define TEMPLATE_FILE "waiting.html"
#define TEMPLATE_MAX (256 * 1024)
#define PATH_LEN 1024
#define ERR_LEN (PATH_LEN + 512)

/* ---- the names a template may use ------------------------------------------------------- */

enum var_id {
    V_PROGRAMME,       /* [programme] name */
    V_ROOM,            /* the room's name */
    V_LANG,            /* "id" or "en" */
    V_OTHER_LANG,      /* the language the switch link offers */
    V_OTHER_LANG_NAME, /* "English" or "Bahasa Indonesia" */
    V_LANG_QUERY,      /* "?lang=en" when the language was chosen by the query, else "" */
    V_STATE,           /* none, waiting, prequeue, admitted, unknown */
    V_ROOM_STATE,      /* scheduled, prequeue, open, paused, closed ("" for an unknown room) */
    V_ROOM_STATE_TEXT, /* the room's state in words, in the page's language */
    V_POSITION,        /* 1 = next */
    V_WAITING,         /* people waiting in the room */
    V_ETA,             /* the wait in words ("sekitar 3 menit") */
    V_ETA_S,           /* the wait in seconds, "" when unknown */
    V_POLL_AFTER_S,    /* when to ask again */
    V_REFRESH_S,       /* the no-JavaScript refresh interval (with flag refresh) */
    V_PROGRESS_PCT,    /* 0..100 */
    V_OPENS_AT,        /* "2026-11-28 20:00 UTC" ("" when the room has no opening time) */
    V_OPENS_AT_ISO,    /* "2026-11-28T20:00:00Z" */
    V_CONTINUE_URL,    /* the continue route: redeems the ticket, then on to continue_url */
    V_ERROR_MESSAGE,   /* why a no-JavaScript form was refused (with flag has_error) */
    V_COUNT
};

enum flag_id {
    F_LANG_ID,
    F_LANG_EN,
    F_STATE_NONE,
    F_STATE_WAITING,
    F_STATE_PREQUEUE,
    F_STATE_ADMITTED,
    F_UNKNOWN_ROOM,
    F_REFRESH, /* the page should refresh itself without JavaScript */
    F_STALE,   /* the data may be out of date (Redis unreachable) */
    F_ROOM_SCHEDULED,
    F_ROOM_PREQUEUE,
    F_ROOM_OPEN,
    F_ROOM_PAUSED,
    F_ROOM_CLOSED,
    F_CAN_JOIN, /* the room takes joins now (pre-queue, open or paused) */
    F_HAS_ETA,
    F_HAS_OPENS_AT,
    F_HAS_SESSION,  /* admitted by a session cookie (already redeemed) */
    F_HAS_ERROR,    /* a form route refused: error_message says why */
    F_HAS_CONTINUE, /* the room has a continue_url: the way on is a link to continue_url */
    F_COUNT
};

static const char *const var_names[V_COUNT] = {
    "programme",    "room",     "lang",         "other_lang",      "other_lang_name",
    "lang_query",   "state",    "room_state",   "room_state_text", "position",
    "waiting",      "eta",      "eta_s",        "poll_after_s",    "refresh_s",
    "progress_pct", "opens_at", "opens_at_iso", "continue_url",    "error_message",
};

static const char *const flag_names[F_COUNT] = {
    "lang_id",        "lang_en",      "state_none",  "state_waiting", "state_prequeue",
    "state_admitted", "unknown_room", "refresh",     "stale",         "room_scheduled",
    "room_prequeue",  "room_open",    "room_paused", "room_closed",   "can_join",
    "has_eta",        "has_opens_at", "has_session", "has_error",     "has_continue",
};

static const struct tmpl_names names = {var_names, V_COUNT, flag_names, F_COUNT};

static struct tmpl *current;
static char *templates_dir;

/* ---- loading ---------------------------------------------------------------------------- */

/* Used when waiting.html cannot be loaded at start: every state, no script, no styling. */
static const char builtin_template[] =
    "<!DOCTYPE html>\n<html lang=\"{{lang}}\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "{{#refresh}}<meta http-equiv=\"refresh\" content=\"{{refresh_s}}\">{{/refresh}}"
    "<title>{{#lang_id}}Antrean{{/lang_id}}{{#lang_en}}Queue{{/lang_en}} {{room}}</title>"
    "</head><body><main><p><strong>{{programme}}</strong></p>"
    "<p><a href=\"?lang={{other_lang}}\" lang=\"{{other_lang}}\">{{other_lang_name}}</a></p>"
    "<h1>{{#lang_id}}Antrean pendaftaran{{/lang_id}}{{#lang_en}}Registration queue{{/lang_en}}"
    " {{room}}</h1>"
    "{{#unknown_room}}<p>{{#lang_id}}Antrean ini tidak ada.{{/lang_id}}"
    "{{#lang_en}}There is no such queue.{{/lang_en}}</p>{{/unknown_room}}"
    "{{^unknown_room}}<p>{{#lang_id}}Status antrean{{/lang_id}}{{#lang_en}}Queue status"
    "{{/lang_en}}: {{room_state_text}}</p>{{/unknown_room}}"
    "{{#has_error}}<p role=\"alert\">{{error_message}}</p>{{/has_error}}"
    "{{#stale}}<p>{{#lang_id}}Data mungkin tidak terbaru.{{/lang_id}}"
    "{{#lang_en}}The data may be out of date.{{/lang_en}}</p>{{/stale}}"
    "{{#state_none}}{{#can_join}}"
    "<form method=\"post\" action=\"/rooms/{{room}}/join{{lang_query}}\">"
    "<button type=\"submit\">{{#lang_id}}Masuk antrean{{/lang_id}}{{#lang_en}}Join the queue"
    "{{/lang_en}}</button></form>{{/can_join}}{{/state_none}}"
    "{{#state_waiting}}<p aria-live=\"polite\">{{#lang_id}}Posisi Anda{{/lang_id}}"
    "{{#lang_en}}Your position{{/lang_en}}: <strong>{{position}}</strong></p>"
    "<p>{{#lang_id}}Perkiraan waktu tunggu{{/lang_id}}{{#lang_en}}Estimated wait{{/lang_en}}: "
    "{{eta}}</p><p><progress max=\"100\" value=\"{{progress_pct}}\"></progress> "
    "{{progress_pct}}%</p>{{/state_waiting}}"
    "{{#state_prequeue}}<p>{{#lang_id}}Antrean dibuka pada {{opens_at}}; tempat Anda akan "
    "diundi secara adil saat itu.{{/lang_id}}{{#lang_en}}The queue opens at {{opens_at}}; your "
    "place will be drawn fairly at opening.{{/lang_en}}</p>{{/state_prequeue}}"
    "{{#state_admitted}}{{#has_continue}}<p><a id=\"continue\" href=\"{{continue_url}}\">"
    "{{#lang_id}}Lanjutkan pendaftaran{{/lang_id}}{{#lang_en}}Continue registration{{/lang_en}}"
    "</a></p>{{/has_continue}}{{^has_continue}}<p id=\"session-use\">{{#lang_id}}Anda sudah "
    "diterima. Pendaftaran, unggahan dokumen, dan verifikasi dibuat dengan sesi ini melalui API "
    "pendaftaran.{{/lang_id}}{{#lang_en}}You have been admitted. Registrations, documents and "
    "verification are made with this session through the registration API.{{/lang_en}}</p>"
    "{{^has_session}}<p><a id=\"redeem\" href=\"{{continue_url}}\">{{#lang_id}}Aktifkan sesi "
    "Anda{{/lang_id}}{{#lang_en}}Activate your session{{/lang_en}}</a></p>{{/has_session}}"
    "{{/has_continue}}{{/state_admitted}}"
    "</main></body></html>\n";

static const char *dir_or_default(void)
{
    return templates_dir && templates_dir[0] ? templates_dir : PAGE_TEMPLATES_DIR;
}

/* Read and compile DIR/waiting.html. NULL on error (ERR set). */
static int builtin_in_use; /* no template file was found at start */

static struct tmpl *load_file(char *err, size_t errlen)
{
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/%s", dir_or_default(), TEMPLATE_FILE);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *text = malloc(TEMPLATE_MAX + 1);
    if (!text) abort();
    size_t len = fread(text, 1, TEMPLATE_MAX + 1, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || len > TEMPLATE_MAX) {
        snprintf(err, errlen, "%s: %s", path, failed ? "read error" : "larger than 256 KiB");
        free(text);
        return NULL;
    }
    text[len] = 0;
    char why[256];
    struct tmpl *t = tmpl_compile(text, len, &names, why, sizeof why);
    if (!t) snprintf(err, errlen, "%s: %s", path, why);
    free(text);
    return t;
}

void page_set_dir(const char *dir)
{
    free(templates_dir);
    templates_dir = dir && dir[0] ? strdup(dir) : NULL;
}

int page_reload(void)
{
    char err[ERR_LEN], path[PATH_LEN];
    snprintf(path, sizeof path, "%s/%s", dir_or_default(), TEMPLATE_FILE);
    if (builtin_in_use && access(path, F_OK) < 0) return 0; /* still no template: nothing to do */
    struct tmpl *t = load_file(err, sizeof err);
    if (!t) {
        log_error("page: template not reloaded, keeping the page in use: %s", err);
        return -1;
    }
    tmpl_free(current);
    current = t;
    builtin_in_use = 0;
    log_info("page: template loaded path=%s/%s", dir_or_default(), TEMPLATE_FILE);
    return 0;
}

void page_free(void)
{
    tmpl_free(current);
    current = NULL;
    free(templates_dir);
    templates_dir = NULL;
}

static void load_initial(void)
{
    char err[ERR_LEN];
    struct tmpl *t = load_file(err, sizeof err);
    if (!t) {
        log_warn("page: %s; serving the built-in waiting page", err);
        builtin_in_use = 1;
        char why[256];
        t = tmpl_compile(builtin_template, sizeof builtin_template - 1, &names, why, sizeof why);
        if (!t) { /* a bug in this file, caught by the tests */
            log_error("page: built-in template: %s", why);
            abort();
        }
    } else {
        log_info("page: template loaded path=%s/%s", dir_or_default(), TEMPLATE_FILE);
    }
    tmpl_free(current);
    current = t;
}

/* ---- the page --------------------------------------------------------------------------- */

/* The wait in words. Kept in step with etaText() in waiting.html's script. */
static void eta_words(char *out, size_t n, int eta_s, int en)
{
    if (eta_s < 0) {
        snprintf(out, n, "%s", en ? "cannot be estimated yet" : "belum dapat diperkirakan");
    } else if (eta_s < 60) {
        snprintf(out, n, "%s", en ? "less than a minute" : "kurang dari 1 menit");
    } else if (eta_s < 3600) {
        int m = (eta_s + 59) / 60;
        if (en) snprintf(out, n, "about %d minute%s", m, m == 1 ? "" : "s");
        else snprintf(out, n, "sekitar %d menit", m);
    } else {
        int h = eta_s / 3600, m = (eta_s % 3600 + 59) / 60;
        if (m == 60) h++, m = 0;
        if (en) snprintf(out, n, "about %d h %d min", h, m);
        else snprintf(out, n, "sekitar %d jam %d menit", h, m);
    }
}

/* The room's state in words. Kept in step with waiting.html's script. */
static const char *room_state_words(const char *st, int en)
{
    static const struct {
        const char *state, *id, *en;
    } words[] = {
        {"scheduled", "Belum dibuka", "Not open yet"},
        {"prequeue", "Pra-antrean: urutan diundi saat dibuka", "Pre-queue: order drawn at opening"},
        {"open", "Dibuka", "Open"},
        {"paused", "Dijeda sementara", "Paused for now"},
        {"closed", "Ditutup", "Closed"},
    };
    for (size_t i = 0; st && i < sizeof words / sizeof words[0]; i++)
        if (!strcmp(st, words[i].state)) return en ? words[i].en : words[i].id;
    return "";
}

/* The lang= parameter of the query: 1 en, 0 id, -1 absent or another value. */
static int query_lang(const struct request *r)
{
    size_t qlen;
    const char *q = request_query(r, &qlen);
    for (const char *p = q, *end = q + qlen; p && p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        size_t n = (size_t)(stop - p);
        if (n == 7 && !memcmp(p, "lang=en", 7)) return 1;
        if (n == 7 && !memcmp(p, "lang=id", 7)) return 0;
        p = amp ? amp + 1 : end;
    }
    return -1;
}

/* The page for the ticket and session cookies of R. STATUS 0: 200 (404 for an unknown room);
 * otherwise a refused form route's status, with MSG_ID/MSG_EN shown in the page's language. */
static void render_page(struct conn *c, struct request *r, int status, const char *msg_id,
                        const char *msg_en)
{
    size_t rlen, tlen;
    const char *rn = conn_param(c, "room", &rlen);
    char room[64];
    snprintf(room, sizeof room, "%.*s", (int)(rlen < sizeof room ? rlen : sizeof room - 1), rn);

    struct wroom_view v;
    int by_session = 0;
    const char *tok = wroom_ticket_token(r, "antre_ticket", &tlen);
    wroom_view_ticket(c->gw, rn, rlen, tok, tok ? tlen : 0, &v);
    if (!strcmp(v.state, "invalid")) {
        /* Admitted and redeemed: the ticket cookie is gone and a session cookie is there. */
        tok = wroom_ticket_token(r, "antre_session", &tlen);
        if (tok) {
            struct wroom_view sv;
            wroom_view_ticket(c->gw, rn, rlen, tok, tlen, &sv);
            if (!strcmp(sv.state, "admitted")) v = sv, by_session = 1;
        }
    }

    int ql = query_lang(r);
    int en = ql >= 0 ? ql : c->lang_en;
    const char *state = v.state;
    int unknown = !strcmp(state, "unknown_room");
    if (unknown) state = "unknown";
    else if (!strcmp(state, "invalid")) state = "none";
    const char *rs = v.room_state ? v.room_state : "";

    int flags[F_COUNT] = {0};
    flags[F_LANG_ID] = !en;
    flags[F_LANG_EN] = en;
    flags[F_STATE_NONE] = !strcmp(state, "none");
    flags[F_STATE_WAITING] = !strcmp(state, "waiting");
    flags[F_STATE_PREQUEUE] = !strcmp(state, "prequeue");
    flags[F_STATE_ADMITTED] = !strcmp(state, "admitted");
    flags[F_UNKNOWN_ROOM] = unknown;
    flags[F_STALE] = v.stale && !unknown;
    flags[F_ROOM_SCHEDULED] = !strcmp(rs, "scheduled");
    flags[F_ROOM_PREQUEUE] = !strcmp(rs, "prequeue");
    flags[F_ROOM_OPEN] = !strcmp(rs, "open");
    flags[F_ROOM_PAUSED] = !strcmp(rs, "paused");
    flags[F_ROOM_CLOSED] = !strcmp(rs, "closed");
    flags[F_CAN_JOIN] = flags[F_ROOM_PREQUEUE] || flags[F_ROOM_OPEN] || flags[F_ROOM_PAUSED];
    flags[F_HAS_ETA] = flags[F_STATE_WAITING] && v.eta_s >= 0;
    flags[F_HAS_OPENS_AT] = v.opens_at_ms > 0;
    flags[F_HAS_SESSION] = by_session;
    flags[F_HAS_ERROR] = msg_id && msg_en;
    const struct conf_room *cr = conf_room_find(&c->gw->conf, rn, rlen);
    flags[F_HAS_CONTINUE] = cr && cr->continue_url[0];

    /* Without JavaScript the page asks again by itself: at poll_after_s while a ticket waits,
     * every 30 s while the room has not opened yet (to offer the join button when it does).
     * The template puts the meta refresh inside <noscript>, and no Refresh header is sent: a
     * page whose script polls the API must not also be reloaded. */
    int refresh = 0;
    if (flags[F_STATE_WAITING] || flags[F_STATE_PREQUEUE]) refresh = v.poll_after_s;
    else if (flags[F_STATE_NONE] && flags[F_ROOM_SCHEDULED]) refresh = 30;
    if (refresh > 60) refresh = 60;
    flags[F_REFRESH] = refresh > 0;

    char position[24], waiting[24], eta[64], eta_s[16], poll[16], refresh_s[16], pct[8];
    char opens[40] = "", opens_iso[32] = "";
    snprintf(position, sizeof position, "%lld", (long long)v.position);
    snprintf(waiting, sizeof waiting, "%lld", (long long)v.waiting);
    eta_words(eta, sizeof eta, flags[F_STATE_WAITING] ? v.eta_s : -1, en);
    if (v.eta_s >= 0) snprintf(eta_s, sizeof eta_s, "%d", v.eta_s);
    else eta_s[0] = 0;
    snprintf(poll, sizeof poll, "%d", v.poll_after_s);
    snprintf(refresh_s, sizeof refresh_s, "%d", refresh);
    double prog = v.progress < 0 ? 0 : v.progress > 1 ? 1 : v.progress;
    snprintf(pct, sizeof pct, "%d", (int)(prog * 100));
    if (v.opens_at_ms > 0) {
        time_t s = (time_t)(v.opens_at_ms / 1000);
        struct tm tm;
        gmtime_r(&s, &tm);
        strftime(opens, sizeof opens, "%Y-%m-%d %H:%M UTC", &tm);
        strftime(opens_iso, sizeof opens_iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }

    const char *vars[V_COUNT];
    vars[V_PROGRAMME] = c->gw->conf.programme.name;
    vars[V_ROOM] = room;
    vars[V_LANG] = en ? "en" : "id";
    vars[V_OTHER_LANG] = en ? "id" : "en";
    vars[V_OTHER_LANG_NAME] = en ? "Bahasa Indonesia" : "English";
    vars[V_LANG_QUERY] = ql < 0 ? "" : en ? "?lang=en" : "?lang=id";
    vars[V_STATE] = state;
    vars[V_ROOM_STATE] = rs;
    vars[V_ROOM_STATE_TEXT] = room_state_words(rs, en);
    vars[V_POSITION] = position;
    vars[V_WAITING] = waiting;
    vars[V_ETA] = eta;
    vars[V_ETA_S] = eta_s;
    vars[V_POLL_AFTER_S] = poll;
    vars[V_REFRESH_S] = refresh_s;
    vars[V_PROGRESS_PCT] = pct;
    vars[V_OPENS_AT] = opens;
    vars[V_OPENS_AT_ISO] = opens_iso;
    /* One way on, whatever is held: the continue route redeems an admitted ticket (the
     * no-JavaScript path; the script redeems through the status API itself) and sends a
     * session on to continue_url. Never the page itself, never a guessed "/". */
    char cont[96];
    snprintf(cont, sizeof cont, "/rooms/%s/continue", room);
    vars[V_CONTINUE_URL] = cont;
    vars[V_ERROR_MESSAGE] = flags[F_HAS_ERROR] ? (en ? msg_en : msg_id) : "";

    struct tmpl_out out = {0};
    tmpl_render(current, vars, flags, &out);
    /* The page is personal (it reflects the ticket cookie): never cached, never framed. */
    reply_header(c, "Cache-Control", "no-store");
    reply_header(c, "Content-Language", en ? "en" : "id");
    reply_header(c, "Vary", "Accept-Language, Cookie");
    reply_header(c, "X-Content-Type-Options", "nosniff");
    reply_header(c, "Referrer-Policy", "same-origin");
    reply_header(c, "Content-Security-Policy",
                 "frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'");
    if (!status) status = unknown ? 404 : 200;
    reply_raw(c, status, "text/html; charset=utf-8", out.p ? out.p : "", out.len);
    free(out.p);
}

static void page_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)p;
    render_page(c, r, 0, NULL, NULL);
}

/* The form routes' errors (reply_set_form_handler): the page again, with the message, under
 * the error's status; never JSON, which a browser without JavaScript would show raw. */
static void form_error(struct conn *c, int status, const char *msg_id, const char *msg_en)
{
    render_page(c, &c->req, status, msg_id, msg_en);
}

void page_register(struct router *rt)
{
    if (!current) load_initial();
    reply_set_form_handler(form_error);
    router_add(rt, &(struct route){.method = "GET",
                                   .pattern = "/rooms/{room}",
                                   .fn = page_route,
                                   .name = "room_page"});
    router_add(rt, &(struct route){.method = "POST",
                                   .pattern = "/rooms/{room}/join",
                                   .fn = wroom_form_join,
                                   .name = "room_join_form",
                                   .max_body = 1024,
                                   .flags = ROUTE_FORM});
}
