/* report.h: what a run measured, in three forms people read: a table on the terminal, JSON
 * (the same numbers, for --compare and for tools) and an SVG chart over time; plus a capacity
 * verdict in plain words. */
#ifndef ANTRE_BENCH_REPORT_H
#define ANTRE_BENCH_REPORT_H

#include <jansson.h>
#include <stdio.h>

#include "profile.h"
#include "stats.h"

/* The summary table (per endpoint: requests, status codes, p50/p90/p99/max; applicants;
 * time in queue; admission rate against the configured one; fairness; unexpected errors;
 * jobs accepted, processed, lost; the deployment's counters against the bench's; the bench's
 * own CPU) and the verdict, to OUT. */
void report_table(FILE *out, const struct profile *p, const struct run_stats *s);

/* The same as a JSON object (new reference). */
json_t *report_json(const struct profile *p, const struct run_stats *s);

/* The chart over time (arrivals, waiting, admitted per second, active, queue lengths, p99
 * latency) as a standalone SVG document to OUT. */
void report_svg(FILE *out, const struct profile *p, const struct run_stats *s);

/* Bytes that always hold a verdict (its figures, the why and every added sentence). */
#define REPORT_VERDICT_MAX 1536

/* The capacity verdict in plain words ("this deployment holds N waiting applicants polling
 * every S seconds, admits R per minute, and takes U uploads per minute at p99 < 50 ms; X ran
 * out first") into BUF (REPORT_VERDICT_MAX bytes always suffice). */
void report_verdict(char *buf, size_t len, const struct profile *p, const struct run_stats *s);

/* Print the change from OLD (an earlier report_json, e.g. read back from a file) to NEW. */
void report_compare(FILE *out, const json_t *old, const json_t *new_);

/* What the table, the JSON, the chart and the verdict derive from the stats alike (report.c
 * computes it once; latencies in milliseconds). */
enum report_bottleneck {
    BOTTLENECK_NONE,
    BOTTLENECK_REDIS,
    BOTTLENECK_WORKER,
    BOTTLENECK_DOWNSTREAM,
    BOTTLENECK_GATEWAY,
    BOTTLENECK_ROOM, /* the room's max_active: admissions waited for sessions to end */
};

struct report_latency {
    double p50, p90, p99, max, mean; /* ms; all 0 without a value */
    uint64_t count;
};

#define REPORT_FAST_MS 50.0 /* the latency the verdict's upload rate is held to */

/* The bands of the time-in-queue distribution: the share of admitted applicants who waited
 * at most MS milliseconds ("10s", "1min", ...). */
#define REPORT_QUEUE_BANDS 5
struct report_band {
    const char *label;
    double ms;
};
extern const struct report_band report_queue_bands[REPORT_QUEUE_BANDS];

struct report_summary {
    struct report_latency ep[EP_COUNT];      /* per endpoint */
    struct report_latency all;               /* every request */
    struct report_latency uploads;           /* single-shot uploads and tus chunks */
    struct report_latency queue;             /* time in the waiting room of admitted applicants */
    double queue_within[REPORT_QUEUE_BANDS]; /* share of them within each band */
    uint64_t requests, unexpected, transport_errors;
    double requests_per_s; /* over the seconds with answers */
    double admit_per_min;  /* measured while applicants waited (else over the run) */
    double tau;            /* Kendall's tau, NAN when undefined */
    uint64_t peak_waiting; /* the most applicants waiting at the end of a second */
    /* Of the run's seconds (but the last) that ended with applicants waiting (queued_secs), those
     * whose admissions over the last 10 s ran under half the configured rate (stalled_secs). */
    uint64_t queued_secs, stalled_secs;
    double poll_s;               /* mean seconds between a waiting applicant's polls (0: none) */
    double uploads_per_min;      /* the best minute's uploads */
    double uploads_per_min_fast; /* the best minute with every second's p99 under 50 ms */
    uint64_t accepted, processed, lost; /* jobs over every queue */
    size_t metric_diffs;                /* s->checks where the deployment and the bench differ */
    enum report_bottleneck bottleneck;
    char why[384]; /* the measurement that named the bottleneck, in words */
};

/* Fill SUM from P and S. */
void report_summarize(const struct profile *p, const struct run_stats *s,
                      struct report_summary *sum);
/* "none", "redis", "worker", "downstream", "gateway", "room". */
const char *report_bottleneck_name(enum report_bottleneck b);
/* Whether check C differs between the deployment (after - before) and the bench (a check whose
 * bench count is NAN is the deployment's alone and never differs). */
int report_check_differs(const struct metric_check *c);

#endif
