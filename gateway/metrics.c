/* metrics.c: the gateway's counters and their Prometheus rendering (see metrics.h). */
#include "metrics.h"

#include <event2/buffer.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "antre/prom.h"
#include "antre/slots.h"
#include "applicant.h"
#include "router.h"

/* The summed part of a slot is read as 64-bit words (see slots_sum). */
#define SUMMED_BYTES offsetof(struct metrics_slot, pid)
_Static_assert(SUMMED_BYTES % sizeof(uint64_t) == 0, "summed slot part is 64-bit words");

static struct slots slots;

/* Status codes get a fixed index so the per-route table stays small; others count as "other". */
static const int status_codes[METRICS_STATUSES - 1] = {100, 200, 201, 202, 204, 301, 304, 400,
                                                       401, 403, 404, 405, 408, 409, 410, 411,
                                                       412, 413, 414, 415, 417, 422, 429, 431,
                                                       460, 500, 501, 502, 503, 504, 505};

static int status_index(int status)
{
    static signed char index[600];
    static int ready;
    if (!ready) {
        memset(index, METRICS_STATUSES - 1, sizeof index);
        for (int i = 0; i < METRICS_STATUSES - 1; i++) index[status_codes[i]] = (signed char)i;
        ready = 1;
    }
    return status >= 0 && status < 600 ? index[status] : METRICS_STATUSES - 1;
}

/* Upper bounds of the latency buckets, in microseconds (the last is +Inf). */
static const uint64_t bucket_us[METRICS_BUCKETS - 1] = {50,     100,    250,    500,     1000,
                                                        2500,   5000,   10000,  25000,   50000,
                                                        100000, 250000, 500000, 1000000, 5000000};

static const char *const refusal_names[REFUSE__COUNT] = {
    [REFUSE_MAX_CONNECTIONS] = "max_connections",
    [REFUSE_PER_IP_CONNECTIONS] = "per_ip_connections",
    [REFUSE_RATE_LIMITED] = "rate_limited",
    [REFUSE_URI_TOO_LONG] = "uri_too_long",
    [REFUSE_HEADERS_TOO_LARGE] = "headers_too_large",
    [REFUSE_BODY_TOO_LARGE] = "body_too_large",
    [REFUSE_HEADER_TIMEOUT] = "header_timeout",
    [REFUSE_BODY_TIMEOUT] = "body_timeout",
    [REFUSE_BODY_MIN_RATE] = "body_min_rate",
    [REFUSE_BAD_REQUEST] = "bad_request",
    [REFUSE_SMUGGLING] = "smuggling",
    [REFUSE_REDIS_BUDGET] = "redis_budget",
    [REFUSE_REDIS_DOWN] = "redis_down",
    [REFUSE_DRAINING] = "draining",
    [REFUSE_ACCEPT_BACKOFF] = "accept_backoff",
    [REFUSE_UPLOAD_BUDGET] = "upload_budget",
    [REFUSE_PROXY_HEADER] = "proxy_header",
};

int metrics_init(int nslots) { return slots_map(&slots, nslots, sizeof(struct metrics_slot)); }

static struct metrics_slot *slot_at(int i) { return slots_at(&slots, i); }

struct metrics_slot *metrics_attach(int i)
{
    struct metrics_slot *s = slot_at(i);
    s->conns_open = 0;
    s->redis_connected = 0;
    s->redis_pending = 0;
    s->pid = getpid();
    return s;
}

void metrics_request(struct metrics_slot *s, int route_id, int status, uint64_t usec)
{
    if (route_id < 0 || route_id >= METRICS_ROUTES) route_id = 0;
    s->requests[route_id][status_index(status)]++;
    int b = 0;
    while (b < METRICS_BUCKETS - 1 && usec > bucket_us[b]) b++;
    s->latency_bucket[b]++;
    s->latency_count++;
    s->latency_sum_us += usec;
}

static const char *route_name(const struct router *pub, const struct router *admin, int id)
{
    for (int k = 0; k < 2; k++) {
        const struct router *rt = k ? admin : pub;
        const struct route *r;
        for (int i = 0; rt && (r = router_route_at(rt, i)); i++)
            if (r->id == id) return r->name;
    }
    return "none";
}

/* A family of one unlabelled sample. */
static void family_u64(struct evbuffer *out, const char *name, enum prom_type type,
                       const char *help, uint64_t v)
{
    prom_family(out, name, type, help);
    prom_u64(out, name, NULL, 0, v);
}

/* Room R's counter at byte offset OFF of struct metrics_room, summed over the processes; its
 * name into *NAME (NULL when no process has the room). */
static uint64_t room_sum(int r, size_t off, const char **name)
{
    uint64_t v = 0;
    *name = NULL;
    for (int i = 0; i < slots.n; i++) {
        const struct metrics_room *m = &slot_at(i)->rooms[r];
        if (!m->name[0]) continue;
        *name = m->name;
        v += *(const uint64_t *)((const char *)m + off);
    }
    return v;
}

_Static_assert(-APPLICANT_WRONG_AUDIENCE == METRICS_TOKEN_RESULTS - 1,
               "metrics_room.tokens[] holds every applicant_verify() result");

/* Applicant tokens per room: by result (applicant.h's reason words), and how their signatures
 * were settled (libjwt, or the verdict kept for a token seen before). */
static void render_room_tokens(struct evbuffer *out)
{
    prom_family(out, "antre_room_applicant_tokens_total", PROM_COUNTER,
                "Applicant tokens of joins, by result (ok, or why refused).");
    for (int r = 0; r < METRICS_ROOMS; r++)
        for (int k = 0; k < METRICS_TOKEN_RESULTS; k++) {
            const char *name;
            uint64_t v =
                room_sum(r, offsetof(struct metrics_room, tokens) + (size_t)k * sizeof(uint64_t),
                         &name);
            if (!name) break;
            prom_u64(out, "antre_room_applicant_tokens_total",
                     (struct prom_label[]){{"room", name}, {"result", applicant_result_str(-k)}}, 2,
                     v);
        }
    prom_family(out, "antre_room_applicant_token_signatures_total", PROM_COUNTER,
                "Applicant token signatures settled, by libjwt (verified) or by the verdict kept "
                "for a token seen before (reused).");
    static const struct {
        const char *by;
        size_t off;
    } sigs[] = {{"verified", offsetof(struct metrics_room, token_sigs_verified)},
                {"reused", offsetof(struct metrics_room, token_sigs_reused)}};
    for (int r = 0; r < METRICS_ROOMS; r++)
        for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++) {
            const char *name;
            uint64_t v = room_sum(r, sigs[k].off, &name);
            if (!name) break;
            prom_u64(out, "antre_room_applicant_token_signatures_total",
                     (struct prom_label[]){{"room", name}, {"by", sigs[k].by}}, 2, v);
        }
}

/* Per-room series: counters summed over processes, gauges taken from the process whose
 * controller answered last (they all read the same Redis state). */
static void render_rooms(struct evbuffer *out)
{
    static const struct {
        const char *name, *help;
        size_t off;
        int gauge;
    } series[] = {
#define C(f, h) {"antre_room_" #f "_total", h, offsetof(struct metrics_room, f), 0}
#define G(f, h)                                                                                    \
    {                                                                                              \
        "antre_room_" #f, h, offsetof(struct metrics_room, f), 1                                   \
    }
        C(joins, "Joins answered."),
        C(polls, "Status polls."),
        C(stale, "Status polls answered from a stale cache (Redis unreachable)."),
        C(redeems, "Tickets exchanged for a session."),
        C(expired410, "Admitted tickets refused as expired (410)."),
        C(left, "Leaves."),
        G(waiting, "Applicants waiting."),
        G(admitted, "Places admitted so far."),
        G(active, "Live sessions."),
        G(pending, "Admitted, not yet redeemed, within the redeem window."),
        G(redeemed, "Places redeemed so far."),
        G(expired, "Admitted places never redeemed (ghosts)."),
#undef C
#undef G
    };
    for (size_t s = 0; s < sizeof series / sizeof series[0]; s++) {
        prom_family(out, series[s].name, series[s].gauge ? PROM_GAUGE : PROM_COUNTER,
                    series[s].help);
        for (int r = 0; r < METRICS_ROOMS; r++) {
            const char *name = NULL;
            int64_t v = 0;
            for (int i = 0; i < slots.n; i++) {
                const struct metrics_room *m = &slot_at(i)->rooms[r];
                if (!m->name[0]) continue;
                name = m->name;
                int64_t x = *(const int64_t *)((const char *)m + series[s].off);
                if (series[s].gauge) v = x > v ? x : v;
                else v += x;
            }
            if (name) prom_i64(out, series[s].name, &(struct prom_label){"room", name}, 1, v);
        }
    }
    render_room_tokens(out);
    prom_family(out, "antre_room_admit_rate_per_second", PROM_GAUGE, "Smoothed admission rate.");
    for (int r = 0; r < METRICS_ROOMS; r++)
        for (int i = 0; i < slots.n; i++) {
            const struct metrics_room *m = &slot_at(i)->rooms[r];
            if (!m->name[0]) continue;
            prom_double(out, "antre_room_admit_rate_per_second",
                        &(struct prom_label){"room", m->name}, 1,
                        (double)m->admit_rate_milli / 1000.0);
            break;
        }
}

static void render_requests(struct evbuffer *out, const struct metrics_slot *sum,
                            const struct router *pub, const struct router *admin)
{
    prom_family(out, "antre_http_requests_total", PROM_COUNTER,
                "Requests answered, by route and status.");
    for (int r = 0; r < METRICS_ROUTES; r++)
        for (int c = 0; c < METRICS_STATUSES; c++) {
            if (!sum->requests[r][c]) continue;
            char code[8];
            if (c < METRICS_STATUSES - 1) snprintf(code, sizeof code, "%d", status_codes[c]);
            else snprintf(code, sizeof code, "other");
            struct prom_label l[] = {{"route", route_name(pub, admin, r)}, {"status", code}};
            prom_u64(out, "antre_http_requests_total", l, 2, sum->requests[r][c]);
        }
    prom_family(out, "antre_http_request_duration_seconds", PROM_HISTOGRAM,
                "Time from a complete request head to the answer.");
    uint64_t cum = 0;
    for (int b = 0; b < METRICS_BUCKETS; b++) {
        cum += sum->latency_bucket[b];
        char le[32] = "+Inf";
        if (b < METRICS_BUCKETS - 1) snprintf(le, sizeof le, "%g", (double)bucket_us[b] / 1e6);
        prom_u64(out, "antre_http_request_duration_seconds_bucket", &(struct prom_label){"le", le},
                 1, cum);
    }
    prom_double(out, "antre_http_request_duration_seconds_sum", NULL, 0,
                (double)sum->latency_sum_us / 1e6);
    prom_u64(out, "antre_http_request_duration_seconds_count", NULL, 0, sum->latency_count);
}

void metrics_render(struct evbuffer *out, const struct router *pub, const struct router *admin)
{
    struct metrics_slot sum;
    memset(&sum, 0, sizeof sum);
    slots_sum(&slots, 0, SUMMED_BYTES, (uint64_t *)(void *)&sum);

    prom_family(out, "antre_connections_open", PROM_GAUGE, "Open client connections.");
    prom_i64(out, "antre_connections_open", NULL, 0, sum.conns_open);
    family_u64(out, "antre_connections_total", PROM_COUNTER, "Client connections accepted.",
               sum.conns_total);
    render_requests(out, &sum, pub, admin);
    prom_family(out, "antre_refusals_total", PROM_COUNTER,
                "Requests or connections refused, by reason.");
    for (int f = 0; f < REFUSE__COUNT; f++)
        prom_u64(out, "antre_refusals_total", &(struct prom_label){"reason", refusal_names[f]}, 1,
                 sum.refusals[f]);
    render_rooms(out);
    prom_family(out, "antre_redis_connected", PROM_GAUGE,
                "Whether each gateway process is connected to Redis.");
    for (int i = 0; i < slots.n; i++) {
        char process[16];
        snprintf(process, sizeof process, "%d", i);
        prom_i64(out, "antre_redis_connected", &(struct prom_label){"process", process}, 1,
                 slot_at(i)->redis_connected);
    }
    prom_family(out, "antre_redis_pending_commands", PROM_GAUGE, "Redis commands in flight.");
    prom_i64(out, "antre_redis_pending_commands", NULL, 0, sum.redis_pending);
    family_u64(out, "antre_redis_timeouts_total", PROM_COUNTER, "Redis commands that timed out.",
               sum.redis_timeouts);
    family_u64(out, "antre_redis_connects_total", PROM_COUNTER, "Successful Redis (re)connections.",
               sum.redis_reconnects);
    prom_family(out, "antre_config_reloads_total", PROM_COUNTER,
                "Configuration reloads, by result.");
    prom_u64(out, "antre_config_reloads_total", &(struct prom_label){"result", "ok"}, 1,
             sum.reloads_ok);
    prom_u64(out, "antre_config_reloads_total", &(struct prom_label){"result", "failed"}, 1,
             sum.reloads_failed);
}
