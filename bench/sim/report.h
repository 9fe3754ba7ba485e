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

/* The capacity verdict in plain words ("this deployment holds N waiting applicants polling
 * every S seconds, admits R per minute, and takes U uploads per minute at p99 < 50 ms; X ran
 * out first") into BUF. */
void report_verdict(char *buf, size_t len, const struct profile *p, const struct run_stats *s);

/* Print the change from OLD (an earlier report_json, e.g. read back from a file) to NEW. */
void report_compare(FILE *out, const json_t *old, const json_t *new_);

#endif
