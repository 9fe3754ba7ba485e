/* metrics.c: shared-memory slots and the Prometheus text rendering (see metrics.h). */
#include "metrics.h"

#include <event2/buffer.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "router.h"

static struct metrics_slot *slots;
static int nslots_mapped;

/* Status codes get a fixed index so the per-route table stays small; others count as "other". */
static const int status_codes[METRICS_STATUSES - 1] = {
    100, 200, 201, 202, 204, 301, 304, 400, 401, 403, 404, 405, 408, 409, 410, 411,
    412, 413, 414, 415, 417, 422, 429, 431, 460, 500, 501, 502, 503, 504, 505};

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
static const uint64_t bucket_us[METRICS_BUCKETS - 1] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 5000000};

static const char *const refusal_names[REFUSE__COUNT] = {
    [REFUSE_MAX_CONNECTIONS] = "max_connections",
    [REFUSE_RATE_LIMITED] = "rate_limited",
    [REFUSE_URI_TOO_LONG] = "uri_too_long",
    [REFUSE_HEADERS_TOO_LARGE] = "headers_too_large",
    [REFUSE_BODY_TOO_LARGE] = "body_too_large",
    [REFUSE_HEADER_TIMEOUT] = "header_timeout",
    [REFUSE_BODY_TIMEOUT] = "body_timeout",
    [REFUSE_BAD_REQUEST] = "bad_request",
    [REFUSE_SMUGGLING] = "smuggling",
    [REFUSE_REDIS_BUDGET] = "redis_budget",
    [REFUSE_REDIS_DOWN] = "redis_down",
    [REFUSE_DRAINING] = "draining",
    [REFUSE_ACCEPT_BACKOFF] = "accept_backoff",
    [REFUSE_UPLOAD_BUDGET] = "upload_budget",
};

int metrics_init(int nslots)
{
    size_t len = (size_t)nslots * sizeof(struct metrics_slot);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return -1;
    slots = p;
    nslots_mapped = nslots;
    return 0;
}

struct metrics_slot *metrics_attach(int i)
{
    struct metrics_slot *s = &slots[i];
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

uint64_t metrics_refusals_total(enum metrics_refusal why)
{
    uint64_t t = 0;
    for (int i = 0; i < nslots_mapped; i++) t += slots[i].refusals[why];
    return t;
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

/* Per-room series: counters summed over processes, gauges taken from the process whose
 * controller answered last (they all read the same Redis state). */
static void render_rooms(struct evbuffer *out)
{
    static const struct {
        const char *name, *type, *help;
        size_t off;
        int gauge;
    } series[] = {
#define C(f, h) {"antre_room_" #f "_total", "counter", h, offsetof(struct metrics_room, f), 0}
#define G(f, h) {"antre_room_" #f, "gauge", h, offsetof(struct metrics_room, f), 1}
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
        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", series[s].name, series[s].help,
                            series[s].name, series[s].type);
        for (int r = 0; r < METRICS_ROOMS; r++) {
            const char *name = slots[0].rooms[r].name;
            int64_t v = 0;
            int any = 0;
            for (int i = 0; i < nslots_mapped; i++) {
                const struct metrics_room *m = &slots[i].rooms[r];
                if (!m->name[0]) continue;
                name = m->name;
                any = 1;
                int64_t x = *(const int64_t *)((const char *)m + series[s].off);
                if (series[s].gauge) v = x > v ? x : v;
                else v += x;
            }
            if (any)
                evbuffer_add_printf(out, "%s{room=\"%s\"} %lld\n", series[s].name, name,
                                    (long long)v);
        }
    }
    evbuffer_add_printf(out, "# HELP antre_room_admit_rate_per_second Smoothed admission rate.\n"
                             "# TYPE antre_room_admit_rate_per_second gauge\n");
    for (int r = 0; r < METRICS_ROOMS; r++)
        for (int i = 0; i < nslots_mapped; i++) {
            const struct metrics_room *m = &slots[i].rooms[r];
            if (!m->name[0]) continue;
            evbuffer_add_printf(out, "antre_room_admit_rate_per_second{room=\"%s\"} %.3f\n",
                                m->name, (double)m->admit_rate_milli / 1000.0);
            break;
        }
}

void metrics_render(struct evbuffer *out, const struct router *pub, const struct router *admin)
{
    struct metrics_slot sum;
    memset(&sum, 0, sizeof sum);
    /* Sum the slots. Readers may see a counter one increment old: harmless for monitoring. */
    for (int i = 0; i < nslots_mapped; i++) {
        const volatile struct metrics_slot *s = &slots[i];
        sum.conns_open += s->conns_open;
        sum.conns_total += s->conns_total;
        for (int r = 0; r < METRICS_ROUTES; r++)
            for (int c = 0; c < METRICS_STATUSES; c++) sum.requests[r][c] += s->requests[r][c];
        for (int b = 0; b < METRICS_BUCKETS; b++) sum.latency_bucket[b] += s->latency_bucket[b];
        sum.latency_count += s->latency_count;
        sum.latency_sum_us += s->latency_sum_us;
        for (int f = 0; f < REFUSE__COUNT; f++) sum.refusals[f] += s->refusals[f];
        sum.redis_pending += s->redis_pending;
        sum.redis_timeouts += s->redis_timeouts;
        sum.redis_reconnects += s->redis_reconnects;
        sum.reloads_ok += s->reloads_ok;
        sum.reloads_failed += s->reloads_failed;
    }
    evbuffer_add_printf(out,
                        "# HELP antre_connections_open Open client connections.\n"
                        "# TYPE antre_connections_open gauge\n"
                        "antre_connections_open %lld\n"
                        "# HELP antre_connections_total Client connections accepted.\n"
                        "# TYPE antre_connections_total counter\n"
                        "antre_connections_total %llu\n",
                        (long long)sum.conns_open, (unsigned long long)sum.conns_total);
    evbuffer_add_printf(out, "# HELP antre_http_requests_total Requests answered, by route and "
                             "status.\n# TYPE antre_http_requests_total counter\n");
    for (int r = 0; r < METRICS_ROUTES; r++)
        for (int c = 0; c < METRICS_STATUSES; c++) {
            if (!sum.requests[r][c]) continue;
            char code[8];
            if (c < METRICS_STATUSES - 1) snprintf(code, sizeof code, "%d", status_codes[c]);
            else snprintf(code, sizeof code, "other");
            evbuffer_add_printf(out, "antre_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                                route_name(pub, admin, r), code,
                                (unsigned long long)sum.requests[r][c]);
        }
    evbuffer_add_printf(out, "# HELP antre_http_request_duration_seconds Time from a complete "
                             "request head to the answer.\n"
                             "# TYPE antre_http_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int b = 0; b < METRICS_BUCKETS; b++) {
        cum += sum.latency_bucket[b];
        if (b < METRICS_BUCKETS - 1)
            evbuffer_add_printf(out,
                                "antre_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                                (double)bucket_us[b] / 1e6, (unsigned long long)cum);
        else
            evbuffer_add_printf(out,
                                "antre_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                                (unsigned long long)cum);
    }
    evbuffer_add_printf(out,
                        "antre_http_request_duration_seconds_sum %.6f\n"
                        "antre_http_request_duration_seconds_count %llu\n",
                        (double)sum.latency_sum_us / 1e6, (unsigned long long)sum.latency_count);
    evbuffer_add_printf(out, "# HELP antre_refusals_total Requests or connections refused, by "
                             "reason.\n# TYPE antre_refusals_total counter\n");
    for (int f = 0; f < REFUSE__COUNT; f++)
        evbuffer_add_printf(out, "antre_refusals_total{reason=\"%s\"} %llu\n", refusal_names[f],
                            (unsigned long long)sum.refusals[f]);
    render_rooms(out);
    evbuffer_add_printf(out, "# HELP antre_redis_connected Whether each gateway process is "
                             "connected to Redis.\n# TYPE antre_redis_connected gauge\n");
    for (int i = 0; i < nslots_mapped; i++)
        evbuffer_add_printf(out, "antre_redis_connected{process=\"%d\"} %lld\n", i,
                            (long long)slots[i].redis_connected);
    evbuffer_add_printf(out,
                        "# HELP antre_redis_pending_commands Redis commands in flight.\n"
                        "# TYPE antre_redis_pending_commands gauge\n"
                        "antre_redis_pending_commands %lld\n"
                        "# HELP antre_redis_timeouts_total Redis commands that timed out.\n"
                        "# TYPE antre_redis_timeouts_total counter\n"
                        "antre_redis_timeouts_total %llu\n"
                        "# HELP antre_redis_connects_total Successful Redis (re)connections.\n"
                        "# TYPE antre_redis_connects_total counter\n"
                        "antre_redis_connects_total %llu\n"
                        "# HELP antre_config_reloads_total Configuration reloads, by result.\n"
                        "# TYPE antre_config_reloads_total counter\n"
                        "antre_config_reloads_total{result=\"ok\"} %llu\n"
                        "antre_config_reloads_total{result=\"failed\"} %llu\n",
                        (long long)sum.redis_pending, (unsigned long long)sum.redis_timeouts,
                        (unsigned long long)sum.redis_reconnects,
                        (unsigned long long)sum.reloads_ok,
                        (unsigned long long)sum.reloads_failed);
}
