/* stats.c: the record of one antre-bench run (stats.h): the per-endpoint counters and
 * histograms, the per-second series (grown on demand), the arrival and admission orders the
 * fairness statistic is computed from.
 *
 * Each second's p99 comes from a histogram of that second's latencies alone (one, reused: the
 * run's answers arrive in time order, so a second is over once an answer of a later one comes).
 * A second's p99 is exact once a later second has begun; the p99 of the second still running is
 * refreshed while it is small and then every SEC_REFRESH answers, which bounds what each answer
 * costs (a quantile walks every bucket) and leaves the run's last second at most SEC_REFRESH - 1
 * answers behind. */
#include "stats.h"

#include <stdlib.h>
#include <string.h>

#define SEC_REFRESH 128

static const char *const endpoint_names[EP_COUNT] = {
    [EP_PAGE] = "page",
    [EP_JOIN] = "join",
    [EP_STATUS] = "status",
    [EP_REDEEM] = "redeem",
    [EP_REGISTER] = "register",
    [EP_UPLOAD] = "upload",
    [EP_TUS_CREATE] = "tus_create",
    [EP_TUS_PATCH] = "tus_patch",
    [EP_VERIFY] = "verify",
    [EP_CONFIRM] = "confirm",
    [EP_CHECKLIST] = "checklist",
    [EP_LEAVE] = "leave",
};

const char *stats_endpoint_name(enum endpoint e)
{
    if ((unsigned)e >= EP_COUNT) return "?";
    return endpoint_names[e];
}

void stats_init(struct run_stats *s)
{
    memset(s, 0, sizeof *s);
    for (int e = 0; e < EP_COUNT; e++) hist_init(&s->ep[e].latency_us);
    hist_init(&s->queue_ms);
    s->room_active = s->room_pending = s->room_places = -1;
}

void stats_free(struct run_stats *s)
{
    free(s->arrival_order);
    free(s->admission_order);
    free(s->seconds);
    free(s->sec_latency);
    s->arrival_order = s->admission_order = NULL;
    s->seconds = NULL;
    s->sec_latency = NULL;
    s->n_order = s->cap_order = s->nseconds = s->cap_seconds = 0;
}

struct second_stats *stats_second(struct run_stats *s, size_t sec)
{
    if (sec >= s->cap_seconds) {
        size_t cap = s->cap_seconds ? s->cap_seconds : 64;
        while (cap <= sec) cap *= 2;
        struct second_stats *grown = realloc(s->seconds, cap * sizeof *grown);
        if (!grown) abort();
        s->seconds = grown;
        s->cap_seconds = cap;
    }
    for (; s->nseconds <= sec; s->nseconds++) {
        struct second_stats *n = &s->seconds[s->nseconds];
        memset(n, 0, sizeof *n);
        for (int q = 0; q < QUEUE_COUNT; q++) n->queue_len[q] = -1;
    }
    return &s->seconds[sec];
}

/* Write the p99 of the second the per-second histogram holds into its record. */
static void sec_p99_store(struct run_stats *s)
{
    if (!s->sec_latency || s->sec_latency->count == 0) return;
    uint64_t p99 = hist_quantile(s->sec_latency, 0.99);
    stats_second(s, s->sec_latency_at)->p99_us = p99 > UINT32_MAX ? UINT32_MAX : (uint32_t)p99;
}

void stats_answer(struct run_stats *s, enum endpoint e, int status, uint64_t latency_us,
                  int unexpected, size_t sec)
{
    if ((unsigned)e >= EP_COUNT) return;
    struct endpoint_stats *ep = &s->ep[e];
    ep->requests++;
    if (status > 0 && status < STATS_STATUS_MAX) ep->status[status]++;
    else ep->transport_errors++;
    if (unexpected) ep->unexpected++;
    hist_add(&ep->latency_us, latency_us);

    struct second_stats *now = stats_second(s, sec);
    now->requests++;
    if (e == EP_UPLOAD && status == 202) now->uploads++;

    if (!s->sec_latency) {
        s->sec_latency = malloc(sizeof *s->sec_latency);
        if (!s->sec_latency) abort();
        hist_init(s->sec_latency);
        s->sec_latency_at = sec;
    }
    if (sec < s->sec_latency_at) return; /* a late answer of a second already closed */
    if (sec > s->sec_latency_at) {
        /* An answer of a later second: the earlier one is over. */
        sec_p99_store(s);
        hist_init(s->sec_latency);
        s->sec_latency_at = sec;
    }
    hist_add(s->sec_latency, latency_us);
    uint64_t n = s->sec_latency->count;
    if (n <= SEC_REFRESH || n % SEC_REFRESH == 0) sec_p99_store(s);
}

void stats_admitted(struct run_stats *s, uint64_t arrival_seq, uint64_t admission_seq)
{
    if (s->n_order == s->cap_order) {
        size_t cap = s->cap_order ? s->cap_order * 2 : 1024;
        uint64_t *a = realloc(s->arrival_order, cap * sizeof *a);
        if (!a) abort();
        s->arrival_order = a;
        uint64_t *b = realloc(s->admission_order, cap * sizeof *b);
        if (!b) abort();
        s->admission_order = b;
        s->cap_order = cap;
    }
    s->arrival_order[s->n_order] = arrival_seq;
    s->admission_order[s->n_order] = admission_seq;
    s->n_order++;
}
