/* report.c: what a run measured, summarized once (report_summarize, which report_json.c and
 * report_svg.c use too), printed as a table that fits a 100-column terminal, and the capacity
 * verdict in plain words.
 *
 * How the verdict decides which part ran out first. The rules look at what the bench measured
 * and what the deployment said about itself (s->checks), in this order, and the first that
 * matches names the part; the order puts the part that causes a symptom before the parts the
 * symptom shows up in:
 *   1. Redis: a deployment counter whose name holds "redis" and "timeout", "budget", "error" or
 *      "connects" (antre_redis_timeouts_total, antre_refusals_total{reason="redis_budget"},
 *      reconnections) went up during the run. Redis trouble also slows the gateway, so it is
 *      looked at before the gateway's latency.
 *   2. Worker: jobs were lost, or the upload or register stream's backlog grew over the last
 *      third of the arrivals (its mean over the last quarter of those samples exceeds the mean
 *      over the first quarter by more than max(10, half of it)): the worker did not keep up with
 *      what the gateway accepted. The gateway's latency does not depend on the worker, so this
 *      comes before it.
 *   3. Downstream: the verify stream's backlog grew the same way (its pace is the SMS and email
 *      providers'), or fewer than 90 % of the codes the deployment was asked to send were read
 *      back from the sinks.
 *   4. Room: over the run (but its last, partial second; admissions must keep the rate for as
 *      long as anyone waits, arrivals or not), applicants waited while admissions ran under
 *      half the configured rate (admissions over the last 10 s, at the end of each second that
 *      ended with anyone waiting) in at least 20 % of those seconds (and at least 5 of them),
 *      and, when the bench knows max_active (--max-active) and read the gateway's gauges after
 *      the run,
 *      antre_room_active + antre_room_pending stood at 90 % of max_active or more: sessions held
 *      the slots and admissions waited for sessions to end. A slow worker or downstream keeps
 *      sessions longer and so fills the room, which is why they come first; the gateway's
 *      latency does not stop admissions, so it comes after. Without max_active the rule rests on
 *      the series alone and says the room admitted under its rate while applicants waited.
 *   5. Gateway: the p99 of every request exceeded 50 ms (the verdict's figure), more than 0.1 %
 *      of requests got no answer (connect, reset, timeout), or connections were refused at
 *      max_connections. When admissions kept the configured rate meanwhile, the waiting room
 *      itself held and it is the gateway's CPU that answered slowly.
 *   6. None: "nothing ran out at this load".
 * The bench's own CPU is not one of the parts: when it was saturated the verdict says so first,
 * as every figure is then a floor. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fairness.h"
#include "report.h"

#define WIDTH 100

static const char *const bottleneck_names[] = {
    [BOTTLENECK_NONE] = "none",       [BOTTLENECK_REDIS] = "redis",
    [BOTTLENECK_WORKER] = "worker",   [BOTTLENECK_DOWNSTREAM] = "downstream",
    [BOTTLENECK_GATEWAY] = "gateway", [BOTTLENECK_ROOM] = "room",
};

const struct report_band report_queue_bands[REPORT_QUEUE_BANDS] = {
    {"10s", 10e3}, {"1min", 60e3}, {"5min", 300e3}, {"15min", 900e3}, {"1h", 3600e3},
};

const char *report_bottleneck_name(enum report_bottleneck b)
{
    if ((unsigned)b >= sizeof bottleneck_names / sizeof bottleneck_names[0]) return "?";
    return bottleneck_names[b];
}

int report_check_differs(const struct metric_check *c)
{
    if (isnan(c->bench)) return 0;
    return fabs((c->after - c->before) - c->bench) > 0.5;
}

/* H's figures, divided by DIV (1000 for microseconds to milliseconds). */
static void latency_of(const struct hist *h, double div, struct report_latency *l)
{
    l->count = h->count;
    l->p50 = (double)hist_quantile(h, 0.50) / div;
    l->p90 = (double)hist_quantile(h, 0.90) / div;
    l->p99 = (double)hist_quantile(h, 0.99) / div;
    l->max = h->count ? (double)h->max / div : 0;
    l->mean = hist_mean(h) / div;
}

/* Whether NAME contains any of the NULL-terminated WORDS. */
static int name_has(const char *name, const char *const *words)
{
    for (; *words; words++)
        if (strstr(name, *words)) return 1;
    return 0;
}

/* Whether a deployment counter holding WORD (and any of ALSO, when not NULL) went up. */
static const struct metric_check *check_rose(const struct run_stats *s, const char *word,
                                             const char *const *also)
{
    for (size_t i = 0; i < s->nchecks && i < STATS_MAX_METRIC_CHECKS; i++) {
        const struct metric_check *c = &s->checks[i];
        if (!strstr(c->name, word) || (also && !name_has(c->name, also))) continue;
        if (c->after - c->before > 0) return c;
    }
    return NULL;
}

/* Whether queue Q's backlog grew over seconds [FROM, TO): mean of the last quarter of its
 * samples against the first quarter's, into *START and *END. */
static int backlog_grew(const struct run_stats *s, int q, size_t from, size_t to, double *start,
                        double *end)
{
    size_t n = 0;
    for (size_t i = from; i < to && i < s->nseconds; i++) n += s->seconds[i].queue_len[q] >= 0;
    if (n < 4) return 0;
    size_t quarter = n / 4, k = 0, a = 0, b = 0;
    double sa = 0, sb = 0;
    for (size_t i = from; i < to && i < s->nseconds; i++) {
        int64_t v = s->seconds[i].queue_len[q];
        if (v < 0) continue;
        if (k < quarter) sa += (double)v, a++;
        if (k >= n - quarter) sb += (double)v, b++;
        k++;
    }
    *start = sa / (double)a;
    *end = sb / (double)b;
    double margin = *start / 2 > 10 ? *start / 2 : 10;
    return *end > *start + margin;
}

static const char *const queue_names[QUEUE_COUNT] = {"upload", "verify", "register"};

/* The end of the arrival period: the run goes on after it while applicants finish. */
static size_t arrival_end(const struct profile *p, const struct run_stats *s)
{
    size_t end = s->nseconds;
    if (p && p->duration_s > 0 && (size_t)p->duration_s < end) end = (size_t)p->duration_s;
    return end;
}

#define STALL_WINDOW_S 10 /* admissions are judged over this many seconds */

/* Rule 4 (see the top): count the seconds of [0, END) that ended with applicants waiting and
 * those of them whose admissions over the last STALL_WINDOW_S seconds ran under half the
 * configured rate, into SUM. */
static void count_stalls(const struct run_stats *s, size_t end, struct report_summary *sum)
{
    double half = s->admit_per_min_configured / 2;
    uint64_t win = 0;
    for (size_t i = 0; i < end && i < s->nseconds; i++) {
        win += s->seconds[i].admitted;
        if (i >= STALL_WINDOW_S) win -= s->seconds[i - STALL_WINDOW_S].admitted;
        if (s->seconds[i].waiting == 0) continue;
        size_t len = i + 1 < STALL_WINDOW_S ? i + 1 : STALL_WINDOW_S;
        sum->queued_secs++;
        if (half > 0 && 60.0 * (double)win / (double)len < half) sum->stalled_secs++;
    }
}

/* Whether rule 4 names the room (its why into SUM). */
static int room_stalled(const struct run_stats *s, struct report_summary *sum)
{
    if (s->admit_per_min_configured <= 0 || sum->stalled_secs < 5 ||
        sum->stalled_secs * 5 < sum->queued_secs)
        return 0;
    char how[128];
    snprintf(how, sizeof how,
             "admissions ran under half of %lld/min in %" PRIu64 " of the %" PRIu64
             " s with applicants waiting",
             (long long)s->admit_per_min_configured, sum->stalled_secs, sum->queued_secs);
    if (s->max_active > 0 && s->room_active >= 0) {
        double held = s->room_active + (s->room_pending > 0 ? s->room_pending : 0);
        if (held < 0.9 * s->max_active) return 0;
        sum->bottleneck = BOTTLENECK_ROOM;
        snprintf(sum->why, sizeof sum->why,
                 "the room's max_active: sessions held the slots; admissions waited for sessions "
                 "to end; %s, and %lld active + %lld pending of max_active %lld after the run",
                 how, (long long)s->room_active,
                 (long long)(s->room_pending > 0 ? s->room_pending : 0), (long long)s->max_active);
        return 1;
    }
    sum->bottleneck = BOTTLENECK_ROOM;
    snprintf(sum->why, sizeof sum->why,
             "the room admitted under its rate while applicants waited: %s", how);
    return 1;
}

static void find_bottleneck(const struct profile *p, const struct run_stats *s,
                            struct report_summary *sum)
{
    static const char *const redis_trouble[] = {"timeout", "budget", "error", "connects", NULL};
    const struct metric_check *c = check_rose(s, "redis", redis_trouble);
    if (c) {
        sum->bottleneck = BOTTLENECK_REDIS;
        snprintf(sum->why, sizeof sum->why, "%.60s rose by %.0f", c->name, c->after - c->before);
        return;
    }
    if (sum->lost > 0) {
        sum->bottleneck = BOTTLENECK_WORKER;
        snprintf(sum->why, sizeof sum->why, "%" PRIu64 " accepted jobs were lost", sum->lost);
        return;
    }
    /* The last third of the arrivals (the run goes on after them while applicants finish and
     * the backlogs drain, which would hide a growth). */
    size_t end = arrival_end(p, s);
    size_t from = end * 2 / 3;
    if (end - from < 4) from = 0;
    static const int worker_queues[] = {QUEUE_UPLOAD, QUEUE_REGISTER};
    for (size_t i = 0; i < 2; i++) {
        double a, b;
        int q = worker_queues[i];
        if (backlog_grew(s, q, from, end, &a, &b)) {
            sum->bottleneck = BOTTLENECK_WORKER;
            snprintf(sum->why, sizeof sum->why,
                     "the %s backlog grew from %.0f to %.0f jobs over seconds %zu-%zu",
                     queue_names[q], a, b, from, end);
            return;
        }
    }
    double a, b;
    if (backlog_grew(s, QUEUE_VERIFY, from, end, &a, &b)) {
        sum->bottleneck = BOTTLENECK_DOWNSTREAM;
        snprintf(sum->why, sizeof sum->why,
                 "the verify backlog grew from %.0f to %.0f jobs over seconds %zu-%zu", a, b, from,
                 end);
        return;
    }
    uint64_t sent = s->codes_sent_email + s->codes_sent_sms;
    if (sent > 0 && (double)s->codes_read_back < 0.9 * (double)sent) {
        sum->bottleneck = BOTTLENECK_DOWNSTREAM;
        snprintf(sum->why, sizeof sum->why, "%" PRIu64 " of %" PRIu64 " codes were delivered",
                 s->codes_read_back, sent);
        return;
    }
    if (room_stalled(s, sum)) return;
    int kept_rate =
        s->admit_per_min_configured > 0 && sum->admit_per_min >= 0.9 * s->admit_per_min_configured;
    const char *while_ = kept_rate ? ", while admissions kept the configured rate" : "";
    static const char *const conn_refusal[] = {"max_connections", NULL};
    if (sum->all.p99 > REPORT_FAST_MS) {
        sum->bottleneck = BOTTLENECK_GATEWAY;
        snprintf(sum->why, sizeof sum->why, "p99 of every request %.0f ms > %.0f ms%s",
                 sum->all.p99, REPORT_FAST_MS, while_);
    } else if (sum->transport_errors * 1000 > sum->requests) {
        sum->bottleneck = BOTTLENECK_GATEWAY;
        snprintf(sum->why, sizeof sum->why, "%" PRIu64 " of %" PRIu64 " requests got no answer",
                 sum->transport_errors, sum->requests);
    } else if ((c = check_rose(s, "refusals", conn_refusal)) != NULL) {
        sum->bottleneck = BOTTLENECK_GATEWAY;
        snprintf(sum->why, sizeof sum->why, "%.0f connections refused at max_connections",
                 c->after - c->before);
    } else {
        sum->bottleneck = BOTTLENECK_NONE;
        snprintf(sum->why, sizeof sum->why, "nothing ran out at this load");
    }
}

/* The per-second figures: admission rate, peak waiting, poll interval, best minutes of uploads. */
static void summarize_seconds(const struct run_stats *s, struct report_summary *sum)
{
    uint64_t queued_secs = 0, queued_admitted = 0, all_admitted = 0, waiting_secs = 0;
    uint64_t answered_secs = 0;
    for (size_t i = 0; i < s->nseconds; i++) {
        const struct second_stats *x = &s->seconds[i];
        if (x->waiting > 0) queued_secs++, queued_admitted += x->admitted;
        all_admitted += x->admitted;
        waiting_secs += x->waiting;
        answered_secs += x->requests > 0;
        if (x->waiting > sum->peak_waiting) sum->peak_waiting = x->waiting;
    }
    /* A second that ends with applicants still waiting admitted at the room's full rate;
     * without a queue the room admits whoever comes, which says nothing about the rate. */
    if (queued_secs > 0) sum->admit_per_min = 60.0 * (double)queued_admitted / (double)queued_secs;
    else if (s->nseconds > 0)
        sum->admit_per_min = 60.0 * (double)all_admitted / (double)s->nseconds;
    if (s->ep[EP_STATUS].requests > 0)
        sum->poll_s = (double)waiting_secs / (double)s->ep[EP_STATUS].requests;
    if (answered_secs > 0) sum->requests_per_s = (double)sum->requests / (double)answered_secs;

    /* The best minute (the whole run when shorter), and the best one whose every second with
     * answers had its p99 under REPORT_FAST_MS. */
    size_t w = s->nseconds < 60 ? s->nseconds : 60;
    uint64_t win = 0, best = 0, best_fast = 0;
    size_t slow = 0; /* seconds over the latency in the window */
    for (size_t i = 0; i < s->nseconds; i++) {
        const struct second_stats *x = &s->seconds[i];
        win += x->uploads;
        slow += x->requests > 0 && x->p99_us >= REPORT_FAST_MS * 1000;
        if (i >= w) {
            const struct second_stats *o = &s->seconds[i - w];
            win -= o->uploads;
            slow -= o->requests > 0 && o->p99_us >= REPORT_FAST_MS * 1000;
        }
        if (i + 1 < w) continue;
        if (win > best) best = win;
        if (slow == 0 && win > best_fast) best_fast = win;
    }
    if (w > 0) {
        sum->uploads_per_min = 60.0 * (double)best / (double)w;
        sum->uploads_per_min_fast = 60.0 * (double)best_fast / (double)w;
    }
}

void report_summarize(const struct profile *p, const struct run_stats *s,
                      struct report_summary *sum)
{
    memset(sum, 0, sizeof *sum);
    struct hist all, uploads;
    hist_init(&all);
    hist_init(&uploads);
    for (int e = 0; e < EP_COUNT; e++) {
        const struct endpoint_stats *ep = &s->ep[e];
        latency_of(&ep->latency_us, 1000, &sum->ep[e]);
        hist_merge(&all, &ep->latency_us);
        if (e == EP_UPLOAD || e == EP_TUS_PATCH) hist_merge(&uploads, &ep->latency_us);
        sum->requests += ep->requests;
        sum->unexpected += ep->unexpected;
        sum->transport_errors += ep->transport_errors;
    }
    latency_of(&all, 1000, &sum->all);
    latency_of(&uploads, 1000, &sum->uploads);
    latency_of(&s->queue_ms, 1, &sum->queue);
    for (int b = 0; b < REPORT_QUEUE_BANDS; b++)
        sum->queue_within[b] = hist_share_below(&s->queue_ms, (uint64_t)report_queue_bands[b].ms);
    sum->tau = fairness_kendall_tau(s->arrival_order, s->admission_order, s->n_order);
    for (int q = 0; q < QUEUE_COUNT; q++) {
        sum->accepted += s->queues[q].accepted;
        sum->processed += s->queues[q].processed;
        sum->lost += s->queues[q].lost;
    }
    for (size_t i = 0; i < s->nchecks && i < STATS_MAX_METRIC_CHECKS; i++)
        sum->metric_diffs += report_check_differs(&s->checks[i]);
    summarize_seconds(s, sum);
    count_stalls(s, s->nseconds > 0 ? s->nseconds - 1 : 0, sum);
    find_bottleneck(p, s, sum);
}

/* --- the table --- */

/* A latency in ms, in WIDTH characters, with the precision its size deserves. */
static void put_ms(FILE *out, int width, double ms)
{
    if (ms < 10) fprintf(out, " %*.2f", width - 1, ms);
    else if (ms < 1000) fprintf(out, " %*.1f", width - 1, ms);
    else fprintf(out, " %*.0f", width - 1, ms);
}

/* A duration given in ms, as people read it ("850 ms", "12.4 s", "7.5 min"). */
static const char *human_ms(char *buf, size_t len, double ms)
{
    if (ms < 1000) snprintf(buf, len, "%.0f ms", ms);
    else if (ms < 120000) snprintf(buf, len, "%.1f s", ms / 1000);
    else snprintf(buf, len, "%.1f min", ms / 60000);
    return buf;
}

/* p50, p90, p99 and max of L, ending the line. */
static void put_latencies(FILE *out, const struct report_latency *l)
{
    put_ms(out, 8, l->p50);
    put_ms(out, 8, l->p90);
    put_ms(out, 8, l->p99);
    put_ms(out, 9, l->max);
    fputc('\n', out);
}

static double pct(double part, double whole) { return whole > 0 ? 100.0 * part / whole : 0; }

static void rule(FILE *out, const char *title)
{
    int n = fprintf(out, "-- %s ", title);
    for (; n < WIDTH - 1; n++) fputc('-', out);
    fputc('\n', out);
}

/* Answers of EP by status class: 2xx, 3xx (only in the list of codes), 4xx but 429, 429, 5xx. */
static void status_classes(const struct endpoint_stats *ep, uint64_t cls[5])
{
    memset(cls, 0, 5 * sizeof cls[0]);
    for (int st = 100; st < STATS_STATUS_MAX; st++) {
        uint64_t n = ep->status[st];
        if (st == 429) cls[3] += n;
        else if (st >= 200 && st < 300) cls[0] += n;
        else if (st >= 300 && st < 400) cls[1] += n;
        else if (st >= 400 && st < 500) cls[2] += n;
        else if (st >= 500) cls[4] += n;
    }
}

static void table_endpoints(FILE *out, const struct run_stats *s, const struct report_summary *sum)
{
    rule(out, "requests per endpoint (latency in ms; 4xx without 429; neterr: no answer)");
    fprintf(out, "%-10s %9s %8s %6s %6s %6s %6s %6s %7s %7s %7s %8s\n", "endpoint", "requests",
            "2xx", "4xx", "429", "5xx", "neterr", "unexp", "p50", "p90", "p99", "max");
    for (int e = 0; e < EP_COUNT; e++) {
        const struct endpoint_stats *ep = &s->ep[e];
        if (ep->requests == 0) continue;
        uint64_t c[5];
        status_classes(ep, c);
        fprintf(out,
                "%-10s %9" PRIu64 " %8" PRIu64 " %6" PRIu64 " %6" PRIu64 " %6" PRIu64 " %6" PRIu64
                " %6" PRIu64,
                stats_endpoint_name((enum endpoint)e), ep->requests, c[0], c[2], c[3], c[4],
                ep->transport_errors, ep->unexpected);
        put_latencies(out, &sum->ep[e]);
    }
    fprintf(out, "%-10s %9" PRIu64 "%44s", "all", sum->requests, "");
    put_latencies(out, &sum->all);

    /* Every status code, endpoint by endpoint, wrapped at the width. */
    fprintf(out, "status codes:\n");
    for (int e = 0; e < EP_COUNT; e++) {
        const struct endpoint_stats *ep = &s->ep[e];
        if (ep->requests == 0) continue;
        int col = fprintf(out, "  %-10s", stats_endpoint_name((enum endpoint)e));
        for (int st = 0; st < STATS_STATUS_MAX; st++) {
            uint64_t n = st ? ep->status[st] : ep->transport_errors;
            if (n == 0) continue;
            char item[48];
            if (st) snprintf(item, sizeof item, " %d:%" PRIu64, st, n);
            else snprintf(item, sizeof item, " neterr:%" PRIu64, n);
            if (col + (int)strlen(item) >= WIDTH) col = fprintf(out, "\n  %-10s", "");
            col += fprintf(out, "%s", item);
        }
        fputc('\n', out);
    }
}

static void table_applicants(FILE *out, const struct run_stats *s, const struct report_summary *sum)
{
    char a[32], b[32], c[32], d[32], m[32];
    rule(out, "applicants");
    fprintf(out,
            "arrived %" PRIu64 "   admitted %" PRIu64 "   completed %" PRIu64
            "   abandoned %" PRIu64 "   failed %" PRIu64 "\n",
            s->arrived, s->admitted, s->completed, s->abandoned, s->failed);
    fprintf(out, "time in queue (%" PRIu64 " admitted): p50 %s  p90 %s  p99 %s  max %s  mean %s\n",
            sum->queue.count, human_ms(a, sizeof a, sum->queue.p50),
            human_ms(b, sizeof b, sum->queue.p90), human_ms(c, sizeof c, sum->queue.p99),
            human_ms(d, sizeof d, sum->queue.max), human_ms(m, sizeof m, sum->queue.mean));
    fprintf(out, "waited at most:");
    for (int i = 0; i < REPORT_QUEUE_BANDS; i++)
        fprintf(out, "  %s %.1f %%", report_queue_bands[i].label, 100 * sum->queue_within[i]);
    fputc('\n', out);
    if (s->admit_per_min_configured > 0)
        fprintf(out, "admission rate: %.1f/min measured, %.1f/min configured (%+.1f %%)\n",
                sum->admit_per_min, s->admit_per_min_configured,
                pct(sum->admit_per_min - s->admit_per_min_configured, s->admit_per_min_configured));
    else
        fprintf(out, "admission rate: %.1f/min measured (configured rate unknown)\n",
                sum->admit_per_min);
    if (isnan(sum->tau))
        fprintf(out, "fairness: Kendall's tau undefined (%zu admissions recorded)\n", s->n_order);
    else
        fprintf(out,
                "fairness: Kendall's tau %.4f between arrival and admission order over %zu "
                "(1 = FIFO, 0 = lottery)\n",
                sum->tau, s->n_order);
    fprintf(out,
            "errors: %" PRIu64 " unexpected (%.3f %% of %" PRIu64 " requests), %" PRIu64
            " without answer\n        (429 and 503 with Retry-After are the deployment "
            "shedding load as designed: not errors)\n",
            sum->unexpected, pct((double)sum->unexpected, (double)sum->requests), sum->requests,
            sum->transport_errors);
    fprintf(out,
            "codes: %" PRIu64 " by email, %" PRIu64 " by SMS, %" PRIu64 " read back, %" PRIu64
            " confirmed\n",
            s->codes_sent_email, s->codes_sent_sms, s->codes_read_back, s->codes_confirmed);
}

static void table_jobs(FILE *out, const struct run_stats *s, const struct report_summary *sum)
{
    rule(out, "jobs (accepted: answered 202; processed: per the deployment)");
    fprintf(out, "%-10s %12s %12s %12s\n", "queue", "accepted", "processed", "lost");
    for (int q = 0; q < QUEUE_COUNT; q++)
        fprintf(out, "%-10s %12" PRIu64 " %12" PRIu64 " %12" PRIu64 "%s\n", queue_names[q],
                s->queues[q].accepted, s->queues[q].processed, s->queues[q].lost,
                s->queues[q].lost ? "   <-- LOST" : "");
    if (sum->lost > 0) {
        char bangs[WIDTH];
        memset(bangs, '!', WIDTH - 1);
        bangs[WIDTH - 1] = '\0';
        fprintf(out,
                "\n%s\n!!!  %" PRIu64 " JOBS LOST: accepted with 202, never processed, no "
                "longer pending\n%s\n",
                bangs, sum->lost, bangs);
    }
}

static void table_checks(FILE *out, const struct run_stats *s, const struct report_summary *sum)
{
    if (s->nchecks == 0) return;
    rule(out, "the deployment's /metrics (after - before) beside the bench's count");
    fprintf(out, "%-48s %12s %12s\n", "counter", "deployment", "bench");
    for (size_t i = 0; i < s->nchecks && i < STATS_MAX_METRIC_CHECKS; i++) {
        const struct metric_check *c = &s->checks[i];
        char name[49];
        size_t n = strnlen(c->name, sizeof c->name);
        if (n > 48) snprintf(name, sizeof name, "%.45s...", c->name);
        else snprintf(name, sizeof name, "%.*s", (int)n, c->name);
        fprintf(out, "%-48s %12.0f", name, c->after - c->before);
        if (isnan(c->bench)) fprintf(out, " %12s\n", "-");
        else if (report_check_differs(c))
            fprintf(out, " %12.0f  DIFFERS by %+.0f\n", c->bench, c->after - c->before - c->bench);
        else fprintf(out, " %12.0f\n", c->bench);
    }
    if (sum->metric_diffs)
        fprintf(out, "%zu counter(s) differ between the deployment and the bench\n",
                sum->metric_diffs);
}

void report_table(FILE *out, const struct profile *p, const struct run_stats *s)
{
    struct report_summary sum;
    report_summarize(p, s, &sum);
    fprintf(out, "antre-bench report: %s\n", p && p->name[0] ? p->name : "(unnamed profile)");
    fprintf(out, "run %.1f s; %.0f requests/s; the bench's own CPU %.1f s (%.0f %% of a core)\n",
            s->wall_s, sum.requests_per_s, s->self_cpu_s, pct(s->self_cpu_s, s->wall_s));
    if (s->self_bottleneck)
        fprintf(out, "WARNING: the bench used over 90 %% of a core for long: it was the "
                     "bottleneck, the figures below are a floor\n");
    table_endpoints(out, s, &sum);
    table_applicants(out, s, &sum);
    table_jobs(out, s, &sum);
    table_checks(out, s, &sum);
    rule(out, "verdict");
    char verdict[REPORT_VERDICT_MAX];
    report_verdict(verdict, sizeof verdict, p, s);
    /* Wrapped at the width, between words. */
    const char *w = verdict;
    while (*w) {
        size_t n = strlen(w);
        if (n >= WIDTH) {
            n = WIDTH - 1;
            while (n > 0 && w[n] != ' ') n--;
            if (n == 0) n = WIDTH - 1;
        }
        fprintf(out, "%.*s\n", (int)n, w);
        w += n;
        while (*w == ' ') w++;
    }
}

/* Append to BUF (of LEN, holding *AT characters) what FMT says; cut at the end. */
static void append(char *buf, size_t len, size_t *at, const char *fmt, ...)
{
    if (*at >= len) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *at, len - *at, fmt, ap);
    va_end(ap);
    if (n > 0) *at += (size_t)n < len - *at ? (size_t)n : len - *at - 1;
}

void report_verdict(char *buf, size_t len, const struct profile *p, const struct run_stats *s)
{
    if (len == 0) return;
    buf[0] = '\0';
    struct report_summary sum;
    report_summarize(p, s, &sum);
    size_t at = 0;
    if (s->self_bottleneck)
        append(buf, len, &at,
               "Warning: the bench itself used over 90 %% of a core, so these figures are a "
               "floor. ");
    if (sum.peak_waiting > 0)
        append(buf, len, &at,
               "This deployment holds %" PRIu64 " waiting applicants polling every %.1f s, ",
               sum.peak_waiting, sum.poll_s);
    else append(buf, len, &at, "No applicant had to wait at this load; this deployment ");
    append(buf, len, &at, "admits %.0f per minute", sum.admit_per_min);
    if (s->admit_per_min_configured > 0)
        append(buf, len, &at, " (configured %.0f)", s->admit_per_min_configured);
    if (sum.uploads_per_min <= 0) append(buf, len, &at, ", and took no uploads. ");
    else if (sum.uploads_per_min_fast > 0)
        append(buf, len, &at, ", and takes %.0f uploads per minute at p99 < %.0f ms. ",
               sum.uploads_per_min_fast, REPORT_FAST_MS);
    else
        append(buf, len, &at,
               ", and took up to %.0f uploads per minute, but never a minute at p99 < %.0f ms "
               "(upload p99 %.0f ms). ",
               sum.uploads_per_min, REPORT_FAST_MS, sum.uploads.p99);
    if (sum.bottleneck == BOTTLENECK_NONE) append(buf, len, &at, "Nothing ran out at this load.");
    else
        append(buf, len, &at, "Ran out first: %s (%s).", report_bottleneck_name(sum.bottleneck),
               sum.why);
    /* The room admits places at its rate, the bench counts applicants: say where the rest of
     * the places went when they are more than a tenth more. */
    if (s->room_places > 0 && s->room_places > 1.1 * (double)s->admitted)
        append(buf, len, &at,
               " The room admitted %.0f places and %" PRIu64
               " applicants got in: the other %.0f (%.0f %%) went to hammering applicants' extra "
               "joins and places never redeemed, each admitted in turn at the configured rate "
               "and holding a max_active slot until its redeem window passed.",
               s->room_places, s->admitted, s->room_places - (double)s->admitted,
               pct(s->room_places - (double)s->admitted, s->room_places));
    if (sum.lost > 0) append(buf, len, &at, " %" PRIu64 " JOBS WERE LOST.", sum.lost);
    if (sum.metric_diffs > 0)
        append(buf, len, &at,
               " The deployment's own counters differ from the bench's in %zu place%s (see the "
               "table).",
               sum.metric_diffs, sum.metric_diffs == 1 ? "" : "s");
}
