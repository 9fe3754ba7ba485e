/* scrape.h: what the deployment says about itself. Reads the gateway's and the worker's
 * /metrics (Prometheus text, over their admin listeners, with a bearer token when given)
 * before and after a run, and samples the queues' backlogs during it, so that the report can
 * set the deployment's own figures beside the bench's and say where they differ. */
#ifndef ANTRE_BENCH_SCRAPE_H
#define ANTRE_BENCH_SCRAPE_H

#include <stddef.h>

#include "stats.h"

/* One /metrics document, parsed: every sample's full name with its labels, and its value. */
struct metrics_doc {
    size_t n, cap;
    struct metrics_sample {
        char *name; /* e.g. antre_http_requests_total{route="join",status="200"} */
        double value;
    } * samples;
};

/* GET URL (http://host:port/metrics) with "Authorization: Bearer <the first line of
 * TOKEN_FILE>" when TOKEN_FILE is not NULL, within TIMEOUT_MS; parse it into DOC. 0, or -1
 * with ERR set. Blocking: call it before and after the run, not while it runs. */
int scrape_metrics(const char *url, const char *token_file, int timeout_ms, struct metrics_doc *doc,
                   char *err, size_t errlen);
void scrape_free(struct metrics_doc *doc);

/* The sum of every sample named NAME (before the labels) whose labels contain each of the
 * LABELS ("k=\"v\"" strings, NULL-terminated; NULL: all). */
double scrape_sum(const struct metrics_doc *doc, const char *name, const char *const *labels);

/* Compare BEFORE/AFTER documents of the gateway and the worker (either may be NULL when not
 * scraped) with what the bench counted in S, and fill s->checks (requests per endpoint, jobs
 * per queue, codes sent), s->queues[].processed, s->room_active / room_pending from the
 * gateway's room gauges after the run and s->room_places from antre_room_admitted's rise
 * (summed over rooms: a bench deployment serves one). */
void scrape_compare(struct run_stats *s, const struct metrics_doc *gw_before,
                    const struct metrics_doc *gw_after, const struct metrics_doc *wk_before,
                    const struct metrics_doc *wk_after);

#endif
