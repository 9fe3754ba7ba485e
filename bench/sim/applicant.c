/* applicant.c: the virtual applicant's state machine (see applicant.h) and the photos it sends.
 * One struct applicant per person; each request's answer moves it to its next step, each wait
 * is a timer; nothing blocks. The request in flight is kept so that a retry resends it as is. */
#include "applicant.h"

#include <event2/event.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <vips/vips.h>

#include "client.h"
#include "sink.h"

enum step {
    S_PAGE,
    S_JOIN,
    S_STATUS,
    S_REGISTER,
    S_PUT,
    S_TUS_CREATE,
    S_TUS_PATCH,
    S_VERIFY,
    S_CODE_WAIT,
    S_CONFIRM,
    S_CHECKLIST,
    S_LEAVE
};

enum photo_plan { P_GOOD, P_OVERSIZE, P_CORRUPT, P_WRONG };

struct applicant {
    struct bench *b;
    uint64_t seq, arrived_us, step_us;
    enum step step;
    enum endpoint ep;
    struct event *timer;
    void (*after)(struct applicant *);
    int attempts, retrier, provoking, waiting, active;
    int hammer_left, invalid_first, wrong_code_first, use_tus, use_email, reupload;
    double abandon_at_s; /* seconds after arrival; 0: never */
    /* the request in flight, kept for a retry */
    const char *method;
    char path[192];
    char headers[1200];
    const void *body;
    size_t len;
    char json[1024];
    /* what the flow learnt */
    char ticket[700], session[700];
    char reg_id[40], ver_id[40], upload_id[40];
    char nik[17], kk[17], phone[16], phone_intl[16], email[64], birth[11];
    int doc, force_good; /* doc 0: ktp, 1: selfie */
    enum photo_plan plan;
    const unsigned char *photo;
    size_t photo_len;
    size_t tus_off;
    uint64_t uploads_accepted;
    char code[16];
};

static const double retry_default_s = 1.0;
static const size_t tus_chunk = 1024 * 1024;

uint64_t applicant_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

double applicant_rand(struct bench *b)
{
    uint64_t x = b->rng ? b->rng : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    b->rng = x;
    return (double)((x * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

static int chance(struct bench *b, double p) { return applicant_rand(b) < p; }

static size_t run_sec(struct bench *b)
{
    uint64_t now = applicant_now_us();
    return now > b->t0_us ? (size_t)((now - b->t0_us) / 1000000u) : 0;
}

static struct second_stats *this_second(struct bench *b) { return stats_second(b->s, run_sec(b)); }

/* ---- photos ---- */

/* A JPEG of W x H from vips: noise over a gradient (sharp, mid-grey), at quality Q. */
static int make_jpeg(int w, int h, int q, unsigned char **out, size_t *len)
{
    VipsImage *noise = NULL, *grad = NULL, *sum = NULL, *u8 = NULL;
    int rc = -1;
    void *buf = NULL;
    if (vips_gaussnoise(&noise, w, h, "mean", 0.0, "sigma", 24.0, NULL)) goto done;
    if (vips_xyz(&grad, w, h, NULL)) goto done;
    VipsImage *gx = NULL;
    if (vips_extract_band(grad, &gx, 0, NULL)) goto done;
    VipsImage *gs = NULL;
    if (vips_linear1(gx, &gs, 100.0 / w, 80.0, NULL)) {
        g_object_unref(gx);
        goto done;
    }
    g_object_unref(gx);
    if (vips_add(noise, gs, &sum, NULL)) {
        g_object_unref(gs);
        goto done;
    }
    g_object_unref(gs);
    if (vips_cast_uchar(sum, &u8, NULL)) goto done;
    if (vips_jpegsave_buffer(u8, &buf, len, "Q", q, NULL)) goto done;
    *out = buf;
    rc = 0;
done:
    if (noise) g_object_unref(noise);
    if (grad) g_object_unref(grad);
    if (sum) g_object_unref(sum);
    if (u8) g_object_unref(u8);
    return rc;
}

/* BASE grown to about TARGET bytes with comment segments after SOI (still a valid JPEG). */
static unsigned char *pad_jpeg(const unsigned char *base, size_t blen, size_t target, size_t *len)
{
    size_t extra = target > blen ? target - blen : 0;
    size_t nseg = (extra + 65532) / 65533;
    unsigned char *p = malloc(blen + extra + nseg * 4 + 4);
    if (!p) abort();
    size_t at = 0;
    memcpy(p, base, 2); /* SOI */
    at = 2;
    while (extra > 0) {
        size_t n = extra > 65533 ? 65533 : extra;
        p[at++] = 0xff, p[at++] = 0xfe;
        p[at++] = (unsigned char)((n + 2) >> 8), p[at++] = (unsigned char)((n + 2) & 0xff);
        memset(p + at, 'x', n);
        at += n;
        extra -= n;
    }
    memcpy(p + at, base + 2, blen - 2);
    *len = at + blen - 2;
    return p;
}

int applicant_photos_make(struct applicant_photos *ph, const struct profile *p, uint64_t max_bytes,
                          char *err, size_t errlen)
{
    memset(ph, 0, sizeof *ph);
    unsigned char *base;
    size_t blen;
    if (make_jpeg(1011, 640, 70, &base, &blen)) {
        snprintf(err, errlen, "photos: vips could not make a JPEG: %s", vips_error_buffer());
        vips_error_clear();
        return -1;
    }
    double lo = p->photo_kb_min > 1 ? p->photo_kb_min : 1,
           hi = p->photo_kb_max > lo ? p->photo_kb_max : lo;
    for (int i = 0; i < APPLICANT_PHOTO_SIZES; i++) {
        double kb = lo * pow(hi / lo, (double)i / (APPLICANT_PHOTO_SIZES - 1));
        size_t target = (size_t)(kb * 1024);
        if (max_bytes && target > max_bytes) target = (size_t)max_bytes;
        ph->jpeg[i] = pad_jpeg(base, blen, target, &ph->jpeg_len[i]);
    }
    ph->corrupt_len = blen / 2;
    ph->corrupt = malloc(ph->corrupt_len);
    if (!ph->corrupt) abort();
    memcpy(ph->corrupt, base, ph->corrupt_len);
    ph->oversize =
        pad_jpeg(base, blen, (size_t)(max_bytes ? max_bytes : 10 << 20) + 4096, &ph->oversize_len);
    g_free(base);
    return 0;
}

void applicant_photos_free(struct applicant_photos *ph)
{
    for (int i = 0; i < APPLICANT_PHOTO_SIZES; i++) free(ph->jpeg[i]);
    free(ph->corrupt);
    free(ph->oversize);
    memset(ph, 0, sizeof *ph);
}

static const char pdf[] = "%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n"
                          "2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\n"
                          "trailer <</Root 1 0 R>>\n%%EOF\n";

/* ---- the machine ---- */

static void send_req(struct applicant *a);
static void do_join(struct applicant *a);
static void do_status(struct applicant *a);
static void do_register(struct applicant *a);
static void do_upload(struct applicant *a);
static void do_verify(struct applicant *a);
static void do_code_wait(struct applicant *a);
static void do_checklist(struct applicant *a);

enum outcome { O_COMPLETED, O_ABANDONED, O_FAILED };

static void do_leave(struct applicant *a);

/* The applicant is gone: its memory goes. */
static void finish(struct applicant *a)
{
    a->b->live--;
    event_free(a->timer);
    free(a);
}

/* The applicant is done (counted now). One that was admitted ends its session with leave, as
 * the registration site is told to (docs/api.md), at the profile's p_leave; one that abandons
 * while waiting simply stops, its ticket left to expire, as people do. */
static void done(struct applicant *a, enum outcome o)
{
    struct bench *b = a->b;
    struct second_stats *sec = this_second(b);
    if (a->waiting) b->waiting--, a->waiting = 0;
    if (a->active) b->active--, a->active = 0;
    if (o == O_COMPLETED) b->s->completed++, sec->completed++;
    else if (o == O_ABANDONED) b->s->abandoned++, sec->abandoned++;
    else b->s->failed++;
    if (o != O_ABANDONED && a->session[0] && chance(b, b->p->p_leave)) return do_leave(a);
    finish(a);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct applicant *a = arg;
    a->after(a);
}

/* Run FN after S seconds, jittered by the profile's poll_jitter. */
static void wait_then(struct applicant *a, double s, void (*fn)(struct applicant *))
{
    double j = a->b->p->poll_jitter;
    s *= 1.0 + j * (2.0 * applicant_rand(a->b) - 1.0);
    if (s < 0.01) s = 0.01;
    a->after = fn;
    struct timeval tv = {(time_t)s, (suseconds_t)((s - floor(s)) * 1e6)};
    evtimer_add(a->timer, &tv);
}

static void abandon(struct applicant *a) { done(a, O_ABANDONED); }

/* Wait S seconds in the waiting room, unless the applicant gives up first. */
static void wait_in_room(struct applicant *a, double s, void (*fn)(struct applicant *))
{
    double waited = (double)(applicant_now_us() - a->arrived_us) / 1e6;
    if (a->abandon_at_s > 0 && waited + s >= a->abandon_at_s) {
        double left = a->abandon_at_s - waited;
        a->after = abandon;
        if (left < 0) left = 0;
        struct timeval tv = {(time_t)left, (suseconds_t)((left - floor(left)) * 1e6)};
        evtimer_add(a->timer, &tv);
        return;
    }
    wait_then(a, s, fn);
}

static void request(struct applicant *a, enum step st, enum endpoint ep, const char *method,
                    const void *body, size_t len)
{
    a->step = st;
    a->ep = ep;
    a->method = method;
    a->body = body;
    a->len = len;
    a->attempts = 0;
    send_req(a);
}

static void auth(struct applicant *a, const char *token, const char *more)
{
    snprintf(a->headers, sizeof a->headers, "Authorization: Bearer %s\r\n%s", token,
             more ? more : "");
}

static void on_answer(const struct client_resp *r, void *arg);

static void send_req(struct applicant *a)
{
    a->step_us = applicant_now_us();
    client_request(a->b->cl, a->method, a->path, a->headers, a->body, a->len, on_answer, a);
}

static void resend(struct applicant *a) { send_req(a); }

/* A refused request (transport error, 5xx, 429): retry it when this applicant does, honouring
 * Retry-After; else give up. */
static void refused(struct applicant *a, const struct client_resp *r)
{
    if (a->retrier && a->attempts < a->b->p->max_retries) {
        a->attempts++;
        wait_then(a, r->retry_after_s > 0 ? r->retry_after_s : retry_default_s, resend);
        return;
    }
    done(a, O_FAILED);
}

static int json_str(json_t *doc, const char *key, char *out, size_t n)
{
    const char *v = json_string_value(json_object_get(doc, key));
    if (!v || strlen(v) >= n) return -1;
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

static void admitted(struct applicant *a)
{
    struct bench *b = a->b;
    if (a->waiting) b->waiting--, a->waiting = 0;
    a->active = 1;
    b->active++;
    b->s->admitted++;
    this_second(b)->admitted++;
    stats_admitted(b->s, a->seq, b->admission_seq++);
    hist_add(&b->s->queue_ms, (applicant_now_us() - a->arrived_us) / 1000u);
    do_register(a);
}

/* A waiting-room answer (join or status): admitted, waiting, or refused. */
static void room_answer(struct applicant *a, const struct client_resp *r, json_t *doc)
{
    const char *state = json_string_value(json_object_get(doc, "state"));
    if ((r->status == 200 || r->status == 202) && state && !strcmp(state, "admitted")) {
        if (json_str(doc, "session", a->session, sizeof a->session)) return done(a, O_FAILED);
        return admitted(a);
    }
    if ((r->status == 200 || r->status == 202) && state) {
        json_str(doc, "ticket", a->ticket, sizeof a->ticket);
        if (a->step == S_JOIN && a->hammer_left > 0) {
            a->hammer_left--;
            return do_join(a);
        }
        if (!a->waiting) a->waiting = 1, a->b->waiting++;
        double after = json_number_value(json_object_get(doc, "poll_after_s"));
        if (after <= 0) after = r->retry_after_s > 0 ? r->retry_after_s : 2;
        return wait_in_room(a, after, do_status);
    }
    if (r->status == 0 || r->status >= 500 || r->status == 429) return refused(a, r);
    done(a, O_FAILED);
}

static void on_answer(const struct client_resp *r, void *arg)
{
    struct applicant *a = arg;
    struct bench *b = a->b;
    int expected = (r->status >= 200 && r->status < 300) ||
                   ((r->status == 429 || r->status == 503) && r->retry_after_s >= 0) ||
                   (a->provoking && r->status >= 400 && r->status < 500);
    stats_answer(b->s, a->ep, r->status, r->latency_us, !expected, run_sec(b));
    json_t *doc = r->body_len ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
    int provoked = a->provoking;
    switch (a->step) {
    case S_PAGE: do_join(a); break;
    case S_JOIN:
    case S_STATUS: room_answer(a, r, doc); break;
    case S_REGISTER:
        if (provoked && r->status == 422) {
            a->invalid_first = 0;
            do_register(a);
        } else if (r->status == 202 && !json_str(doc, "id", a->reg_id, sizeof a->reg_id)) {
            if (!r->replayed) b->s->queues[QUEUE_REGISTER].accepted++;
            a->doc = 0;
            do_upload(a);
        } else if (r->status == 0 || r->status >= 500 || r->status == 429) refused(a, r);
        else done(a, O_FAILED);
        break;
    case S_PUT:
    case S_TUS_PATCH:
        if ((a->step == S_PUT && r->status == 202) ||
            (a->step == S_TUS_PATCH && r->status == 204 && r->upload_offset >= 0)) {
            if (a->step == S_TUS_PATCH && (size_t)r->upload_offset < a->photo_len) {
                a->tus_off = (size_t)r->upload_offset;
                do_upload(a);
                break;
            }
            b->s->queues[QUEUE_UPLOAD].accepted++;
            if (a->step == S_TUS_PATCH) this_second(b)->uploads++; /* stats_answer counts PUTs */
            a->uploads_accepted++;
            if (a->reupload) a->reupload = 0; /* the same photo again, as a second attempt */
            else a->doc++;
            a->photo = NULL;
            if (a->doc < 2) do_upload(a);
            else do_verify(a);
        } else if (a->step == S_TUS_PATCH && r->status == 409 && r->upload_offset >= 0) {
            a->tus_off = (size_t)r->upload_offset;
            do_upload(a);
        } else if (provoked && (r->status == 413 || r->status == 415)) {
            a->force_good = 1; /* told why: send a good photo */
            a->photo = NULL;
            do_upload(a);
        } else if (r->status == 0 || r->status >= 500 || r->status == 429) refused(a, r);
        else done(a, O_FAILED);
        break;
    case S_TUS_CREATE:
        if (r->status == 201 && !json_str(doc, "upload_id", a->upload_id, sizeof a->upload_id)) {
            a->tus_off = 0;
            do_upload(a);
        } else if (provoked && (r->status == 413 || r->status == 415)) {
            a->force_good = 1;
            a->photo = NULL;
            do_upload(a);
        } else if (r->status == 0 || r->status >= 500 || r->status == 429) refused(a, r);
        else done(a, O_FAILED);
        break;
    case S_VERIFY:
        if (r->status == 202 && !json_str(doc, "verification_id", a->ver_id, sizeof a->ver_id)) {
            b->s->queues[QUEUE_VERIFY].accepted++;
            if (a->use_email) b->s->codes_sent_email++;
            else b->s->codes_sent_sms++;
            a->step_us = applicant_now_us();
            a->step = S_CODE_WAIT;
            wait_then(a, 0.2, do_code_wait);
        } else if (r->status == 0 || r->status >= 500 || r->status == 429) refused(a, r);
        else done(a, O_FAILED);
        break;
    case S_CONFIRM:
        if (r->status == 200) {
            b->s->codes_confirmed++;
            a->step_us = applicant_now_us();
            do_checklist(a);
        } else if (provoked && r->status == 422) {
            a->wrong_code_first = 0;
            do_code_wait(a);
        } else if (r->status == 409 && strstr(r->body, "code_not_sent")) {
            wait_then(a, 1.0, do_code_wait);
        } else if (r->status == 0 || r->status >= 500 || r->status == 429) refused(a, r);
        else done(a, O_FAILED);
        break;
    case S_CHECKLIST: {
        if (r->status != 200 || !doc) {
            if (r->status == 0 || r->status >= 500 || r->status == 429) refused(a, r);
            else done(a, O_FAILED);
            break;
        }
        json_t *checks = json_object_get(doc, "checks");
        const char *k = json_string_value(json_object_get(json_object_get(checks, "ktp"), "state"));
        const char *s =
            json_string_value(json_object_get(json_object_get(checks, "selfie"), "state"));
        const char *g =
            json_string_value(json_object_get(json_object_get(checks, "registry"), "state"));
        const char *c = json_string_value(
            json_object_get(json_object_get(checks, a->use_email ? "email" : "phone"), "state"));
#define DECIDED(x) ((x) && (!strcmp((x), "accepted") || !strcmp((x), "rejected")))
        if (DECIDED(k) && DECIDED(s) && DECIDED(g) && c && !strcmp(c, "verified")) {
            b->finals[QUEUE_UPLOAD] += a->uploads_accepted;
            b->finals[QUEUE_REGISTER]++;
            done(a, O_COMPLETED);
        } else if ((double)(applicant_now_us() - a->step_us) / 1e6 > b->p->checklist_timeout_s)
            done(a, O_FAILED);
        else wait_then(a, b->p->checklist_poll_s > 0 ? b->p->checklist_poll_s : 1, do_checklist);
#undef DECIDED
        break;
    }
    case S_LEAVE: finish(a); break; /* 204; anything else changes nothing now */
    case S_CODE_WAIT: break;
    }
    json_decref(doc);
}

static void do_page(struct applicant *a)
{
    a->provoking = 0;
    snprintf(a->path, sizeof a->path, "/rooms/%s", a->b->p->room);
    a->headers[0] = 0;
    request(a, S_PAGE, EP_PAGE, "GET", NULL, 0);
}

/* Unpadded base64url of IN (N bytes) into OUT (room for 4 * N / 3 + 4). */
static void b64url(const unsigned char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n) v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = t[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = t[v & 63];
    }
    out[o] = 0;
}

/* The join's body: {"applicant": an HS256 token for this applicant} (docs/api.md, "Applicant
 * tokens"), sub its NIK, aud the room, valid for 5 minutes. */
static void applicant_token_body(struct applicant *a)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char claims[160], signing[400], mac64[48];
    snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"aud\":\"%s\",\"exp\":%lld}", a->nik,
             a->b->p->room, (long long)time(NULL) + 300);
    char h64[64], c64[224];
    b64url((const unsigned char *)header, strlen(header), h64);
    b64url((const unsigned char *)claims, strlen(claims), c64);
    snprintf(signing, sizeof signing, "%s.%s", h64, c64);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), a->b->applicant_key, (int)a->b->applicant_key_len,
         (const unsigned char *)signing, strlen(signing), mac, &maclen);
    b64url(mac, maclen, mac64);
    snprintf(a->json, sizeof a->json, "{\"applicant\":\"%s.%s\"}", signing, mac64);
}

static void do_join(struct applicant *a)
{
    a->provoking = 0;
    snprintf(a->path, sizeof a->path, "/v1/rooms/%s/join", a->b->p->room);
    if (!a->b->applicant_key) {
        a->headers[0] = 0;
        request(a, S_JOIN, EP_JOIN, "POST", NULL, 0);
        return;
    }
    snprintf(a->headers, sizeof a->headers, "Content-Type: application/json\r\n");
    applicant_token_body(a);
    request(a, S_JOIN, EP_JOIN, "POST", a->json, strlen(a->json));
}

static void do_status(struct applicant *a)
{
    a->provoking = 0;
    snprintf(a->path, sizeof a->path, "/v1/rooms/%s/status", a->b->p->room);
    auth(a, a->ticket, NULL);
    request(a, S_STATUS, EP_STATUS, "GET", NULL, 0);
}

static void do_register(struct applicant *a)
{
    snprintf(a->path, sizeof a->path, "/v1/registrations");
    auth(a, a->session, "Content-Type: application/json\r\n");
    a->provoking = a->invalid_first;
    snprintf(a->json, sizeof a->json,
             "{\"nik\":\"%s\",\"kk\":\"%s\",\"name\":\"Siti Rahayu\",\"birth_date\":\"%s\","
             "\"email\":\"%s\",\"phone\":\"%s\"}",
             a->invalid_first ? "31740512059" : a->nik, a->kk, a->birth, a->email, a->phone);
    request(a, S_REGISTER, EP_REGISTER, "POST", a->json, strlen(a->json));
}

static void b64(const char *in, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n) v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)in[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = 0;
}

/* Pick the next photo of this document: its plan (good unless told to fix one), bytes, type. */
static void pick_photo(struct applicant *a)
{
    struct bench *b = a->b;
    const struct profile *p = b->p;
    const struct applicant_photos *ph = &b->photos;
    double r = applicant_rand(b);
    a->plan = P_GOOD;
    if (!a->force_good) {
        if (r < p->p_oversize) a->plan = P_OVERSIZE;
        else if (r < p->p_oversize + p->p_corrupt) a->plan = P_CORRUPT;
        else if (r < p->p_oversize + p->p_corrupt + p->p_wrong_format) a->plan = P_WRONG;
    }
    a->force_good = 0;
    a->upload_id[0] = 0;
    a->tus_off = 0;
    switch (a->plan) {
    case P_OVERSIZE: a->photo = ph->oversize, a->photo_len = ph->oversize_len; break;
    case P_CORRUPT: a->photo = ph->corrupt, a->photo_len = ph->corrupt_len; break;
    case P_WRONG: a->photo = (const unsigned char *)pdf, a->photo_len = sizeof pdf - 1; break;
    case P_GOOD: {
        int i = (int)(applicant_rand(b) * APPLICANT_PHOTO_SIZES);
        a->photo = ph->jpeg[i], a->photo_len = ph->jpeg_len[i];
        break;
    }
    }
}

static void do_upload(struct applicant *a)
{
    const char *kind = a->doc ? "selfie" : "ktp";
    if (!a->photo) pick_photo(a);
    const char *ctype = a->plan == P_WRONG ? "application/pdf" : "image/jpeg";
    if (!a->use_tus) {
        a->provoking = a->plan == P_OVERSIZE || a->plan == P_WRONG;
        snprintf(a->path, sizeof a->path, "/v1/registrations/%s/documents/%s", a->reg_id, kind);
        char more[128];
        /* As curl does, a large body asks first, so a refused one is not sent at all. */
        snprintf(more, sizeof more, "Content-Type: %s\r\n%s", ctype,
                 a->photo_len > (1u << 20) ? "Expect: 100-continue\r\n" : "");
        auth(a, a->session, more);
        request(a, S_PUT, EP_UPLOAD, "PUT", a->photo, a->photo_len);
        return;
    }
    if (!a->upload_id[0]) {
        a->provoking = a->plan == P_OVERSIZE || a->plan == P_WRONG;
        char rid[64], k[16], ft[48], more[400];
        b64(a->reg_id, rid);
        b64(kind, k);
        b64(ctype, ft);
        snprintf(more, sizeof more,
                 "Tus-Resumable: 1.0.0\r\nUpload-Length: %zu\r\n"
                 "Upload-Metadata: registration_id %s,kind %s,filetype %s\r\n",
                 a->photo_len, rid, k, ft);
        snprintf(a->path, sizeof a->path, "/v1/uploads");
        auth(a, a->session, more);
        request(a, S_TUS_CREATE, EP_TUS_CREATE, "POST", NULL, 0);
        return;
    }
    a->provoking = 0;
    size_t n = a->photo_len - a->tus_off;
    if (n > tus_chunk) n = tus_chunk;
    char more[160];
    snprintf(more, sizeof more,
             "Tus-Resumable: 1.0.0\r\nUpload-Offset: %zu\r\n"
             "Content-Type: application/offset+octet-stream\r\n",
             a->tus_off);
    snprintf(a->path, sizeof a->path, "/v1/uploads/%s", a->upload_id);
    auth(a, a->session, more);
    request(a, S_TUS_PATCH, EP_TUS_PATCH, "PATCH", a->photo + a->tus_off, n);
}

static void do_verify(struct applicant *a)
{
    a->provoking = 0;
    snprintf(a->path, sizeof a->path, "/v1/registrations/%s/verifications", a->reg_id);
    auth(a, a->session, "Content-Type: application/json\r\n");
    snprintf(a->json, sizeof a->json, "{\"channel\":\"%s\"}", a->use_email ? "email" : "sms");
    request(a, S_VERIFY, EP_VERIFY, "POST", a->json, strlen(a->json));
}

/* Look for the code in the sinks (a phone or a mailbox), then confirm it. */
static void do_code_wait(struct applicant *a)
{
    struct bench *b = a->b;
    const char *code = NULL;
    if (b->sink) {
        code = sink_code_for(b->sink, a->use_email ? a->email : a->phone);
        if (!code && !a->use_email) code = sink_code_for(b->sink, a->phone_intl);
    }
    if (!code) {
        a->step = S_CODE_WAIT;
        if ((double)(applicant_now_us() - a->step_us) / 1e6 > b->p->checklist_timeout_s)
            return done(a, O_FAILED);
        return wait_then(a, 0.25, do_code_wait);
    }
    if (!a->code[0]) {
        b->s->codes_read_back++;
        b->finals[QUEUE_VERIFY]++;
    }
    snprintf(a->code, sizeof a->code, "%s", code);
    char sent[16];
    snprintf(sent, sizeof sent, "%s", code);
    a->provoking = a->wrong_code_first;
    if (a->wrong_code_first) { /* a typo in the last digit */
        size_t n = strlen(sent);
        if (n) sent[n - 1] = sent[n - 1] == '9' ? '0' : (char)(sent[n - 1] + 1);
        a->provoking = 1;
    }
    snprintf(a->path, sizeof a->path, "/v1/verifications/%s/confirm", a->ver_id);
    auth(a, a->session, "Content-Type: application/json\r\n");
    snprintf(a->json, sizeof a->json, "{\"code\":\"%s\"}", sent);
    request(a, S_CONFIRM, EP_CONFIRM, "POST", a->json, strlen(a->json));
}

static void do_checklist(struct applicant *a)
{
    a->provoking = 0;
    snprintf(a->path, sizeof a->path, "/v1/registrations/%s", a->reg_id);
    auth(a, a->session, NULL);
    request(a, S_CHECKLIST, EP_CHECKLIST, "GET", NULL, 0);
}

static void do_leave(struct applicant *a)
{
    a->provoking = 0;
    snprintf(a->path, sizeof a->path, "/v1/rooms/%s/leave", a->b->p->room);
    auth(a, a->session, NULL);
    request(a, S_LEAVE, EP_LEAVE, "POST", NULL, 0);
}

/* This applicant's own identity: a NIK that passes validation, a KK, a phone and an email. */
static void identity(struct applicant *a)
{
    static const int provinces[] = {11, 12, 31, 32, 33, 34, 35, 36, 51, 52, 61, 71, 73, 81, 91};
    uint64_t h = (a->b->nonce ^ (a->seq * 0x9e3779b97f4a7c15ull)) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
    int prov = provinces[h % (sizeof provinces / sizeof provinces[0])];
    int regency = 1 + (int)((h >> 8) % 99), district = 1 + (int)((h >> 16) % 99);
    int year = 1970 + (int)((h >> 24) % 30), month = 1 + (int)((h >> 32) % 12);
    int day = 1 + (int)((h >> 40) % 28), female = (int)((h >> 48) & 1);
    int serial = 1 + (int)(a->seq % 9999);
    snprintf(a->nik, sizeof a->nik, "%02d%02d%02d%02d%02d%02d%04d", prov, regency, district,
             day + (female ? 40 : 0), month, year % 100, serial);
    snprintf(a->kk, sizeof a->kk, "%02d%02d%02d%010llu", prov, regency, district,
             (unsigned long long)(1 + (h >> 20) % 9999999999ull));
    snprintf(a->birth, sizeof a->birth, "%04d-%02d-%02d", year, month, day);
    unsigned long long ph = (a->b->nonce * 7919u + a->seq) % 100000000ull;
    snprintf(a->phone, sizeof a->phone, "0812%08llu", ph);
    snprintf(a->phone_intl, sizeof a->phone_intl, "+62812%08llu", ph);
    snprintf(a->email, sizeof a->email, "pelamar%llx.%llu@gmail.com",
             (unsigned long long)(a->b->nonce & 0xffffff), (unsigned long long)a->seq);
}

void applicant_start(struct bench *b, uint64_t seq)
{
    const struct profile *p = b->p;
    struct applicant *a = calloc(1, sizeof *a);
    if (!a) abort();
    a->b = b;
    a->seq = seq;
    a->arrived_us = applicant_now_us();
    a->timer = evtimer_new(b->base, on_timer, a);
    if (!a->timer) abort();
    b->live++;
    b->s->arrived++;
    this_second(b)->arrivals++;
    a->retrier = chance(b, p->p_retry);
    a->hammer_left = chance(b, p->p_hammer) ? (p->hammer_joins > 1 ? p->hammer_joins - 1 : 1) : 0;
    if (chance(b, p->p_abandon))
        a->abandon_at_s =
            -log(1.0 - applicant_rand(b)) * (p->abandon_mean_s > 0 ? p->abandon_mean_s : 60);
    a->invalid_first = chance(b, p->p_invalid);
    a->wrong_code_first = chance(b, p->p_wrong_code);
    a->use_tus = chance(b, p->p_tus);
    a->use_email = chance(b, p->p_verify_email);
    a->reupload = chance(b, p->p_reupload);
    identity(a);
    if (chance(b, p->p_page)) do_page(a);
    else do_join(a);
}
