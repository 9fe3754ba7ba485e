/* report_json.c: the report as JSON (every number of the table under stable keys, the verdict,
 * and the per-second series), and --compare: the main figures of an earlier report beside a new
 * one's, with the change in percent.
 *
 * The keys (a report read back by a later version must still compare, so they only ever grow):
 *   profile {name, description, room, duration_s}
 *   run {wall_s, self_cpu_s, self_cpu_pct, self_bottleneck, requests_per_s}
 *   endpoints {<name>: {requests, status {"<code>": n}, transport_errors, unexpected,
 *              latency_ms {p50, p90, p99, max, mean}}}, all_requests {requests, latency_ms}
 *   applicants {arrived, admitted, completed, abandoned, failed}
 *   queue_time_ms {count, p50, p90, p99, max, mean, share_within {"10s", "1min", "5min",
 *                  "15min", "1h"}}
 *   admission {per_min_measured, per_min_configured, max_active (null: unknown),
 *              room_active, room_pending (the gateway's gauges after the run; null: not read),
 *              places (antre_room_admitted's rise), stalled_s (seconds applicants waited
 *              while admissions ran under half the rate)}
 *   fairness {kendall_tau (null when undefined), admissions}
 *   errors {requests, unexpected, transport}
 *   codes {sent_email, sent_sms, read_back, confirmed}
 *   jobs {<queue>: {accepted, processed, lost}, accepted, processed, lost}
 *   metrics [{name, before, after, delta, bench (null: the deployment's alone), differs}]
 *   verdict {text, bottleneck, why, waiting_peak, poll_s, admit_per_min, uploads_per_min,
 *            uploads_per_min_fast}
 *   series {arrivals, waiting, admitted, active, completed, abandoned, uploads, requests,
 *           p99_ms, queue_upload, queue_verify, queue_register (null where not sampled)}
 * A number that is not finite is written as null. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "report.h"

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *count(uint64_t v) { return json_integer((json_int_t)v); }

static json_t *latency_json(const struct report_latency *l)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o}", "p50", num(l->p50), "p90", num(l->p90), "p99",
                     num(l->p99), "max", num(l->max), "mean", num(l->mean));
}

static json_t *endpoints_json(const struct run_stats *s, const struct report_summary *sum)
{
    json_t *eps = json_object();
    for (int e = 0; e < EP_COUNT; e++) {
        const struct endpoint_stats *ep = &s->ep[e];
        json_t *status = json_object();
        for (int st = 1; st < STATS_STATUS_MAX; st++) {
            if (!ep->status[st]) continue;
            char key[8];
            snprintf(key, sizeof key, "%d", st);
            json_object_set_new(status, key, count(ep->status[st]));
        }
        json_object_set_new(eps, stats_endpoint_name((enum endpoint)e),
                            json_pack("{s:o, s:o, s:o, s:o, s:o}", "requests", count(ep->requests),
                                      "status", status, "transport_errors",
                                      count(ep->transport_errors), "unexpected",
                                      count(ep->unexpected), "latency_ms",
                                      latency_json(&sum->ep[e])));
    }
    return eps;
}

static json_t *jobs_json(const struct run_stats *s, const struct report_summary *sum)
{
    static const char *const names[QUEUE_COUNT] = {"upload", "verify", "register"};
    json_t *jobs = json_pack("{s:o, s:o, s:o}", "accepted", count(sum->accepted), "processed",
                             count(sum->processed), "lost", count(sum->lost));
    for (int q = 0; q < QUEUE_COUNT; q++)
        json_object_set_new(jobs, names[q],
                            json_pack("{s:o, s:o, s:o}", "accepted", count(s->queues[q].accepted),
                                      "processed", count(s->queues[q].processed), "lost",
                                      count(s->queues[q].lost)));
    return jobs;
}

static json_t *metrics_json(const struct run_stats *s)
{
    json_t *list = json_array();
    for (size_t i = 0; i < s->nchecks && i < STATS_MAX_METRIC_CHECKS; i++) {
        const struct metric_check *c = &s->checks[i];
        char name[sizeof c->name + 1];
        snprintf(name, sizeof name, "%.*s", (int)sizeof c->name, c->name);
        json_array_append_new(list, json_pack("{s:s, s:o, s:o, s:o, s:o, s:b}", "name", name,
                                              "before", num(c->before), "after", num(c->after),
                                              "delta", num(c->after - c->before), "bench",
                                              num(c->bench), "differs", report_check_differs(c)));
    }
    return list;
}

/* The per-second series, one array per figure. */
static json_t *series_json(const struct run_stats *s)
{
    static const char *const names[] = {"arrivals",     "waiting",      "admitted",
                                        "active",       "completed",    "abandoned",
                                        "uploads",      "requests",     "p99_ms",
                                        "queue_upload", "queue_verify", "queue_register"};
    enum { NSERIES = sizeof names / sizeof names[0] };
    json_t *arr[NSERIES];
    for (int k = 0; k < NSERIES; k++) arr[k] = json_array();
    for (size_t i = 0; i < s->nseconds; i++) {
        const struct second_stats *x = &s->seconds[i];
        uint32_t plain[] = {x->arrivals,  x->waiting,   x->admitted, x->active,
                            x->completed, x->abandoned, x->uploads,  x->requests};
        int k = 0;
        for (; k < 8; k++) json_array_append_new(arr[k], json_integer(plain[k]));
        json_array_append_new(arr[k++], json_real(x->p99_us / 1000.0));
        for (int q = 0; q < QUEUE_COUNT; q++, k++)
            json_array_append_new(arr[k], x->queue_len[q] < 0 ? json_null()
                                                              : json_integer(x->queue_len[q]));
    }
    json_t *series = json_object();
    for (int k = 0; k < NSERIES; k++) json_object_set_new(series, names[k], arr[k]);
    return series;
}

json_t *report_json(const struct profile *p, const struct run_stats *s)
{
    struct report_summary sum;
    report_summarize(p, s, &sum);
    char verdict[REPORT_VERDICT_MAX];
    report_verdict(verdict, sizeof verdict, p, s);
    json_t *root = json_object();
    json_object_set_new(root, "profile",
                        json_pack("{s:s, s:s, s:s, s:o}", "name", p ? p->name : "", "description",
                                  p ? p->description : "", "room", p ? p->room : "", "duration_s",
                                  num(p ? p->duration_s : NAN)));
    json_object_set_new(root, "run",
                        json_pack("{s:o, s:o, s:o, s:b, s:o}", "wall_s", num(s->wall_s),
                                  "self_cpu_s", num(s->self_cpu_s), "self_cpu_pct",
                                  num(s->wall_s > 0 ? 100 * s->self_cpu_s / s->wall_s : 0),
                                  "self_bottleneck", s->self_bottleneck, "requests_per_s",
                                  num(sum.requests_per_s)));
    json_object_set_new(root, "endpoints", endpoints_json(s, &sum));
    json_object_set_new(root, "all_requests",
                        json_pack("{s:o, s:o}", "requests", count(sum.requests), "latency_ms",
                                  latency_json(&sum.all)));
    json_object_set_new(root, "applicants",
                        json_pack("{s:o, s:o, s:o, s:o, s:o}", "arrived", count(s->arrived),
                                  "admitted", count(s->admitted), "completed", count(s->completed),
                                  "abandoned", count(s->abandoned), "failed", count(s->failed)));
    json_t *queue = latency_json(&sum.queue);
    json_object_set_new(queue, "count", count(sum.queue.count));
    json_t *within = json_object();
    for (int b = 0; b < REPORT_QUEUE_BANDS; b++)
        json_object_set_new(within, report_queue_bands[b].label, num(sum.queue_within[b]));
    json_object_set_new(queue, "share_within", within);
    json_object_set_new(root, "queue_time_ms", queue);
    json_object_set_new(root, "admission",
                        json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "per_min_measured",
                                  num(sum.admit_per_min), "per_min_configured",
                                  num(s->admit_per_min_configured), "max_active",
                                  num(s->max_active > 0 ? s->max_active : NAN), "room_active",
                                  num(s->room_active >= 0 ? s->room_active : NAN), "room_pending",
                                  num(s->room_pending >= 0 ? s->room_pending : NAN), "places",
                                  num(s->room_places >= 0 ? s->room_places : NAN), "stalled_s",
                                  count(sum.stalled_secs)));
    json_object_set_new(root, "fairness",
                        json_pack("{s:o, s:o}", "kendall_tau", num(sum.tau), "admissions",
                                  count(s->n_order)));
    json_object_set_new(root, "errors",
                        json_pack("{s:o, s:o, s:o}", "requests", count(sum.requests), "unexpected",
                                  count(sum.unexpected), "transport", count(sum.transport_errors)));
    json_object_set_new(root, "codes",
                        json_pack("{s:o, s:o, s:o, s:o}", "sent_email", count(s->codes_sent_email),
                                  "sent_sms", count(s->codes_sent_sms), "read_back",
                                  count(s->codes_read_back), "confirmed",
                                  count(s->codes_confirmed)));
    json_object_set_new(root, "jobs", jobs_json(s, &sum));
    json_object_set_new(root, "metrics", metrics_json(s));
    json_object_set_new(root, "verdict",
                        json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "text", verdict,
                                  "bottleneck", report_bottleneck_name(sum.bottleneck), "why",
                                  sum.why, "waiting_peak", count(sum.peak_waiting), "poll_s",
                                  num(sum.poll_s), "admit_per_min", num(sum.admit_per_min),
                                  "uploads_per_min", num(sum.uploads_per_min),
                                  "uploads_per_min_fast", num(sum.uploads_per_min_fast)));
    json_object_set_new(root, "series", series_json(s));
    return root;
}

/* --- compare --- */

/* The number at PATH ("a.b.c") in ROOT, NAN when missing or not a number. */
static double at_path(const json_t *root, const char *path)
{
    char key[64];
    const json_t *v = root;
    while (v && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof key) return NAN;
        memcpy(key, path, n);
        key[n] = '\0';
        v = json_object_get(v, key);
        path += n + (path[n] == '.');
    }
    return v && json_is_number(v) ? json_number_value(v) : NAN;
}

/* V as the compare table prints it, in 12 characters ("-" when missing). */
static void put_figure(FILE *out, double v)
{
    if (isnan(v)) fprintf(out, " %12s", "-");
    else if (v == floor(v) && fabs(v) < 1e12) fprintf(out, " %12.0f", v);
    else if (fabs(v) >= 100) fprintf(out, " %12.1f", v);
    else fprintf(out, " %12.4g", v);
}

static void compare_line(FILE *out, const char *label, double old, double new_)
{
    fprintf(out, "%-28s", label);
    put_figure(out, old);
    fprintf(out, " →");
    put_figure(out, new_);
    if (isnan(old) || isnan(new_)) fprintf(out, "\n");
    else if (old == new_) fprintf(out, "   (same)\n");
    else if (old == 0) fprintf(out, "   (was 0)\n");
    else fprintf(out, "   %+.1f %%\n", 100.0 * (new_ - old) / fabs(old));
}

void report_compare(FILE *out, const json_t *old, const json_t *new_)
{
    const char *on = json_string_value(json_object_get(json_object_get(old, "profile"), "name"));
    const char *nn = json_string_value(json_object_get(json_object_get(new_, "profile"), "name"));
    fprintf(out, "compare: %s (old) → %s (new)\n", on ? on : "?", nn ? nn : "?");
    static const struct {
        const char *label, *path;
    } figures[] = {
        {"requests/s", "run.requests_per_s"},
        {"p99 all requests (ms)", "all_requests.latency_ms.p99"},
        {"admitted/min", "admission.per_min_measured"},
        {"uploads/min at p99 < 50 ms", "verdict.uploads_per_min_fast"},
        {"waiting peak", "verdict.waiting_peak"},
        {"Kendall's tau", "fairness.kendall_tau"},
        {"completed applicants", "applicants.completed"},
        {"unexpected errors", "errors.unexpected"},
        {"jobs lost", "jobs.lost"},
        {"bench CPU (% of a core)", "run.self_cpu_pct"},
    };
    for (size_t i = 0; i < sizeof figures / sizeof figures[0]; i++)
        compare_line(out, figures[i].label, at_path(old, figures[i].path),
                     at_path(new_, figures[i].path));
    double lost = at_path(new_, "jobs.lost");
    if (lost > 0) fprintf(out, "!!! the new run LOST %.0f jobs (must be 0) !!!\n", lost);
    /* p99 per endpoint, for every endpoint either report has answers of. */
    for (int e = 0; e < EP_COUNT; e++) {
        const char *name = stats_endpoint_name((enum endpoint)e);
        char path[96], label[64];
        snprintf(path, sizeof path, "endpoints.%s.requests", name);
        double ro = at_path(old, path), rn = at_path(new_, path);
        if (!(ro > 0) && !(rn > 0)) continue;
        snprintf(path, sizeof path, "endpoints.%s.latency_ms.p99", name);
        snprintf(label, sizeof label, "p99 %s (ms)", name);
        compare_line(out, label, at_path(old, path), at_path(new_, path));
    }
    const char *ob =
        json_string_value(json_object_get(json_object_get(old, "verdict"), "bottleneck"));
    const char *nb =
        json_string_value(json_object_get(json_object_get(new_, "verdict"), "bottleneck"));
    fprintf(out, "%-28s %12s → %12s\n", "ran out first", ob ? ob : "-", nb ? nb : "-");
}
