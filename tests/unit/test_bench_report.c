/* test_bench_report.c: unit tests of antre-bench's run record and report (bench/sim/stats.c,
 * report.c, report_json.c, report_svg.c), from synthetic runs built here second by second: a
 * wave that rises to a peak and decays, a room admitting 10 a second, applicants polling every
 * 5 s, and for each case the one thing that runs out (a slow gateway, a growing upload backlog,
 * a growing verify backlog, Redis timeouts, lost jobs, a room whose max_active is held). Checked: the per-second series and
 * p99, the JSON's totals and quantiles against the histograms, --compare's changes, the SVG
 * well-formed (balanced tags, every number finite), the verdict naming the bottleneck.
 * With BENCH_REPORT_KEEP=DIR set, the normal case's table, JSON and SVG are left in DIR to be
 * looked at. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "stats.h"

enum scenario {
    NORMAL,
    SLOW_GATEWAY,
    UPLOAD_BACKLOG,
    VERIFY_BACKLOG,
    REDIS,
    LOST,
    SELF_BOUND,
    ROOM_FULL /* from second 40 the room admits 1 a second: its sessions hold max_active */
};

static struct run_stats st;
static struct profile prof;

/* Latency of the I-th answer of a run whose typical answer takes BASE microseconds: spread
 * over [BASE, 2 BASE), one in fifty at 4 BASE. */
static uint64_t latency(uint64_t base, uint64_t i)
{
    return i % 50 == 0 ? 4 * base : base + base * (i % 97) / 97;
}

/* The run of scenario SC, 120 s, arrivals for the first 90. */
static void synth(enum scenario sc)
{
    memset(&prof, 0, sizeof prof);
    snprintf(prof.name, sizeof prof.name, "wave <opening> & \"test\"");
    snprintf(prof.room, sizeof prof.room, "gelombang");
    prof.duration_s = 90;
    stats_init(&st);
    st.admit_per_min_configured = 600;
    uint64_t base = sc == SLOW_GATEWAY ? 40000 : 2000, n = 0, waiting = 0, arrived = 0;
    uint64_t admitted = 0, active = 0;
    for (size_t t = 0; t < 120; t++) {
        struct second_stats *x = stats_second(&st, t);
        uint64_t arrivals = t >= 90 ? 0 : t < 20 ? 3 * t : 60 - (t - 20) * 60 / 70;
        for (uint64_t a = 0; a < arrivals; a++) {
            stats_answer(&st, EP_JOIN, a % 40 == 0 ? 429 : 202, latency(base, n++), 0, t);
            arrived++;
        }
        waiting += arrivals;
        /* Every waiting applicant polls every 5 s. */
        for (uint64_t w = 0; w < waiting / 5; w++)
            stats_answer(&st, EP_STATUS, 200, latency(base, n++), 0, t);
        uint64_t cap = sc == ROOM_FULL && t >= 40 ? 1 : 10;
        uint64_t adm = waiting < cap ? waiting : cap;
        for (uint64_t a = 0; a < adm; a++) {
            /* FIFO but for every tenth admission, swapped with the one before. */
            uint64_t seq = admitted + a;
            stats_admitted(&st, seq % 10 == 9 ? seq - 1 : seq % 10 == 8 ? seq + 1 : seq, seq);
            hist_add(&st.queue_ms, 1000 * (waiting / 10 + 1));
            stats_answer(&st, EP_REDEEM, 200, latency(base, n++), 0, t);
            stats_answer(&st, EP_REGISTER, 202, latency(base, n++), 0, t);
            stats_answer(&st, EP_UPLOAD, 202, latency(3 * base, n++), 0, t);
            stats_answer(&st, EP_UPLOAD, 202, latency(3 * base, n++), 0, t);
            stats_answer(&st, EP_VERIFY, 202, latency(base, n++), 0, t);
            stats_answer(&st, EP_CONFIRM, a == 0 ? 500 : 200, latency(base, n++), a == 0, t);
        }
        if (t == 60) stats_answer(&st, EP_CHECKLIST, 0, 30000000, 1, t);
        waiting -= adm;
        admitted += adm;
        active = active + adm - (active > 5 ? 5 : active);
        x->arrivals = (uint32_t)arrivals;
        x->waiting = (uint32_t)waiting;
        x->admitted = (uint32_t)adm;
        x->active = (uint32_t)active;
        x->completed = (uint32_t)(adm > 1 ? adm - 1 : adm);
        x->abandoned = t % 7 == 0;
        if (t % 2 == 0) {
            /* Sampled every other second. */
            int64_t grow = t > 30 && t < 100 ? (int64_t)(t - 30) * 3 : 0;
            x->queue_len[QUEUE_UPLOAD] = (int64_t)(t % 5) + (sc == UPLOAD_BACKLOG ? grow : 0);
            x->queue_len[QUEUE_VERIFY] = (int64_t)(t % 3) + (sc == VERIFY_BACKLOG ? grow : 0);
            x->queue_len[QUEUE_REGISTER] = (int64_t)(t % 4);
        }
    }
    st.wall_s = 120;
    st.self_cpu_s = sc == SELF_BOUND ? 115 : 14;
    st.self_bottleneck = sc == SELF_BOUND;
    st.arrived = arrived;
    st.admitted = admitted;
    st.completed = admitted - 40;
    st.abandoned = 17;
    st.failed = 3;
    st.queues[QUEUE_UPLOAD].accepted = 2 * admitted;
    st.queues[QUEUE_UPLOAD].processed = 2 * admitted - (sc == LOST ? 3 : 0);
    st.queues[QUEUE_UPLOAD].lost = sc == LOST ? 3 : 0;
    st.queues[QUEUE_REGISTER].accepted = st.queues[QUEUE_REGISTER].processed = admitted;
    st.queues[QUEUE_VERIFY].accepted = st.queues[QUEUE_VERIFY].processed = admitted;
    st.codes_sent_sms = admitted;
    st.codes_read_back = admitted;
    st.codes_confirmed = admitted - 5;
    struct metric_check *c = &st.checks[st.nchecks++];
    snprintf(c->name, sizeof c->name, "antre_http_requests_total{route=\"join\"}");
    c->before = 1000;
    c->after = 1000 + (double)st.ep[EP_JOIN].requests;
    c->bench = (double)st.ep[EP_JOIN].requests;
    c = &st.checks[st.nchecks++];
    snprintf(c->name, sizeof c->name, "antre_worker_jobs_processed_total{queue=\"upload\"}");
    c->before = 0;
    c->after = (double)st.queues[QUEUE_UPLOAD].processed - 2;
    c->bench = (double)st.queues[QUEUE_UPLOAD].processed;
    c = &st.checks[st.nchecks++];
    snprintf(c->name, sizeof c->name, "antre_redis_timeouts_total");
    c->before = 4;
    c->after = sc == REDIS ? 19 : 4;
    c->bench = NAN;
    /* The room's gauges after the run: full when its sessions held it, else mostly free. */
    st.max_active = 1000;
    st.room_active = sc == ROOM_FULL ? 985 : 300;
    st.room_pending = sc == ROOM_FULL ? 12 : 0;
}

static void teardown(void) { stats_free(&st); }

TestSuite(bench_report, .fini = teardown);

/* Everything FN writes to a stream, as a malloc'd string. */
#define CAPTURE(buf, call)                                                                         \
    do {                                                                                           \
        size_t len_;                                                                               \
        FILE *out = open_memstream(&(buf), &len_);                                                 \
        cr_assert(out);                                                                            \
        call;                                                                                      \
        fclose(out);                                                                               \
    } while (0)

static char *verdict_of(enum scenario sc)
{
    static char buf[1024];
    stats_free(&st);
    synth(sc);
    report_verdict(buf, sizeof buf, &prof, &st);
    return buf;
}

Test(bench_report, stats_series_and_p99)
{
    stats_init(&st);
    struct second_stats *x = stats_second(&st, 200);
    cr_assert_eq(st.nseconds, 201);
    cr_assert_eq(x->requests, 0);
    cr_assert_eq(st.seconds[0].queue_len[QUEUE_VERIFY], -1);
    cr_assert_eq(st.seconds[200].queue_len[QUEUE_UPLOAD], -1);
    /* Second 3: 1000 answers, 1..1000 ms; second 4: one of 7 ms. */
    for (uint64_t i = 1; i <= 1000; i++) stats_answer(&st, EP_STATUS, 200, i * 1000, 0, 3);
    stats_answer(&st, EP_UPLOAD, 202, 7000, 0, 4);
    stats_answer(&st, EP_UPLOAD, 0, 9000, 1, 4);
    uint32_t p99 = st.seconds[3].p99_us;
    cr_assert(p99 >= 990000 && p99 <= 990000 + 990000 / 64, "p99 %u", p99);
    cr_assert_eq(st.seconds[3].requests, 1000);
    cr_assert_eq(st.seconds[4].requests, 2);
    cr_assert_eq(st.seconds[4].uploads, 1);
    cr_assert(st.seconds[4].p99_us >= 9000 && st.seconds[4].p99_us <= 9000 + 9000 / 64);
    cr_assert_eq(st.ep[EP_UPLOAD].transport_errors, 1);
    cr_assert_eq(st.ep[EP_UPLOAD].unexpected, 1);
    cr_assert_eq(st.ep[EP_UPLOAD].status[202], 1);
    cr_assert_eq(st.ep[EP_STATUS].latency_us.count, 1000);
    for (uint64_t i = 0; i < 5000; i++) stats_admitted(&st, i, 4999 - i);
    cr_assert_eq(st.n_order, 5000);
    cr_assert_eq(st.admission_order[4999], 0);
    cr_assert_str_eq(stats_endpoint_name(EP_TUS_PATCH), "tus_patch");
    cr_assert_str_eq(stats_endpoint_name(EP_CHECKLIST), "checklist");
    cr_assert_str_eq(stats_endpoint_name(EP_LEAVE), "leave");
}

Test(bench_report, json_totals_and_quantiles)
{
    synth(NORMAL);
    json_t *j = report_json(&prof, &st);
    cr_assert(j);
    json_t *join = json_object_get(json_object_get(j, "endpoints"), "join");
    cr_assert_eq(json_integer_value(json_object_get(join, "requests")), st.ep[EP_JOIN].requests);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(join, "status"), "429")),
                 st.ep[EP_JOIN].status[429]);
    cr_assert_gt(st.ep[EP_JOIN].status[429], 0);
    json_t *lat = json_object_get(join, "latency_ms");
    cr_assert_float_eq(json_real_value(json_object_get(lat, "p99")),
                       hist_quantile(&st.ep[EP_JOIN].latency_us, 0.99) / 1000.0, 1e-9);
    cr_assert_float_eq(json_real_value(json_object_get(lat, "max")),
                       st.ep[EP_JOIN].latency_us.max / 1000.0, 1e-9);
    /* A p99 within the histogram's 1/64 of the exact one: 2 ms spread over 2..4, the top 2 %
     * at 8 ms. */
    double p50 = json_real_value(json_object_get(lat, "p50"));
    cr_assert(p50 >= 2.9 && p50 <= 3.1 * (1 + 1.0 / 64), "p50 %g", p50);

    uint64_t total = 0;
    for (int e = 0; e < EP_COUNT; e++) total += st.ep[e].requests;
    json_t *all = json_object_get(j, "all_requests");
    cr_assert_eq(json_integer_value(json_object_get(all, "requests")), total);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "errors"), "unexpected")),
                 st.ep[EP_CONFIRM].unexpected + st.ep[EP_CHECKLIST].unexpected);
    json_t *ap = json_object_get(j, "applicants");
    cr_assert_eq(json_integer_value(json_object_get(ap, "arrived")), st.arrived);
    cr_assert_eq(json_integer_value(json_object_get(ap, "admitted")), st.admitted);
    json_t *jobs = json_object_get(j, "jobs");
    cr_assert_eq(json_integer_value(json_object_get(jobs, "lost")), 0);
    cr_assert_eq(json_integer_value(json_object_get(jobs, "accepted")), 4 * st.admitted);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(jobs, "upload"), "accepted")),
                 2 * st.admitted);
    json_t *adm = json_object_get(j, "admission");
    cr_assert_float_eq(json_real_value(json_object_get(adm, "per_min_measured")), 600, 1e-9);
    double tau = json_real_value(json_object_get(json_object_get(j, "fairness"), "kendall_tau"));
    cr_assert(tau > 0.99 && tau < 1, "tau %g", tau);
    json_t *q = json_object_get(j, "queue_time_ms");
    cr_assert_eq(json_integer_value(json_object_get(q, "count")), st.queue_ms.count);
    /* Waits of 1..191 s (the queue's length / 10 + 1): none within 1 s, all within 5 min. */
    json_t *within = json_object_get(q, "share_within");
    cr_assert_eq(json_real_value(json_object_get(within, "5min")), 1.0);
    double w10 = json_real_value(json_object_get(within, "10s"));
    double w60 = json_real_value(json_object_get(within, "1min"));
    cr_assert(w10 > 0 && w10 < w60 && w60 < 1, "%g %g", w10, w60);

    json_t *series = json_object_get(j, "series");
    cr_assert_eq(json_array_size(json_object_get(series, "arrivals")), 120);
    uint64_t sum = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(series, "arrivals"), i, v) sum += json_integer_value(v);
    cr_assert_eq(sum, st.arrived);
    cr_assert(json_is_null(json_array_get(json_object_get(series, "queue_upload"), 1)));
    cr_assert(json_is_integer(json_array_get(json_object_get(series, "queue_upload"), 2)));

    json_t *metrics = json_object_get(j, "metrics");
    cr_assert_eq(json_array_size(metrics), 3);
    cr_assert(json_is_false(json_object_get(json_array_get(metrics, 0), "differs")));
    cr_assert(json_is_true(json_object_get(json_array_get(metrics, 1), "differs")));
    cr_assert(json_is_null(json_object_get(json_array_get(metrics, 2), "bench")));
    cr_assert_str_eq(json_string_value(
                         json_object_get(json_object_get(j, "verdict"), "bottleneck")),
                     "none");

    /* It is valid JSON with no NaN (jansson refuses to write one). */
    char *text = json_dumps(j, JSON_COMPACT);
    cr_assert(text);
    json_t *back = json_loads(text, 0, NULL);
    cr_assert(back);
    json_decref(back);
    free(text);
    json_decref(j);
}

Test(bench_report, compare_prints_changes)
{
    synth(NORMAL);
    json_t *old = report_json(&prof, &st);
    stats_free(&st);
    synth(SLOW_GATEWAY);
    json_t *new_ = report_json(&prof, &st);
    char *out_s = NULL;
    CAPTURE(out_s, report_compare(out, old, new_));
    /* The latencies are 20 times the old ones (the histogram's buckets move them a little). */
    char *line = strstr(out_s, "p99 join (ms)");
    cr_assert(line, "%s", out_s);
    cr_assert(strstr(line, "→"), "%s", out_s);
    double pct = 0;
    const char *p = strchr(line, '%');
    cr_assert(p);
    while (p > line && p[-1] != ' ') p--;
    while (p > line && p[-1] == ' ') p--;
    while (p > line && p[-1] != ' ') p--;
    pct = strtod(p, NULL);
    cr_assert(pct > 1800 && pct < 2000, "%g in %s", pct, out_s);
    cr_assert(strstr(out_s, "admitted/min"), "%s", out_s);
    cr_assert(strstr(out_s, "Kendall's tau"), "%s", out_s);
    cr_assert(strstr(out_s, "jobs lost"), "%s", out_s);
    cr_assert(strstr(out_s, "requests/s"), "%s", out_s);
    cr_assert(strstr(out_s, "none") && strstr(out_s, "gateway"), "%s", out_s);
    free(out_s);

    json_decref(new_);
    stats_free(&st);
    synth(LOST);
    new_ = report_json(&prof, &st);
    CAPTURE(out_s, report_compare(out, old, new_));
    cr_assert(strstr(out_s, "LOST 3 jobs"), "%s", out_s);
    free(out_s);

    /* Against itself nothing changes. */
    CAPTURE(out_s, report_compare(out, old, old));
    cr_assert_null(strstr(out_s, " %\n"), "%s", out_s);
    cr_assert(strstr(out_s, "(same)"), "%s", out_s);
    free(out_s);
    json_decref(old);
    json_decref(new_);
}

/* Check that the tags of the XML document DOC nest and close, and return how many. */
static int check_balanced(const char *doc)
{
    const char *stack[64];
    size_t lens[64];
    int depth = 0, tags = 0;
    for (const char *p = strchr(doc, '<'); p; p = strchr(p + 1, '<')) {
        const char *end = strchr(p, '>');
        cr_assert(end, "unterminated tag");
        if (p[1] == '?' || p[1] == '!') continue;
        tags++;
        if (p[1] == '/') {
            size_t n = strcspn(p + 2, " >");
            cr_assert_gt(depth, 0, "close without open at %.40s", p);
            depth--;
            cr_assert(lens[depth] == n && strncmp(stack[depth], p + 2, n) == 0,
                      "</%.*s> closes <%.*s>", (int)n, p + 2, (int)lens[depth], stack[depth]);
        } else if (end[-1] != '/') {
            cr_assert_lt(depth, 64);
            stack[depth] = p + 1;
            lens[depth] = strcspn(p + 1, " >/");
            depth++;
        }
        /* No raw '<' or '&' inside a tag's attributes. */
        for (const char *q = p + 1; q < end; q++) cr_assert_neq(*q, '<');
    }
    cr_assert_eq(depth, 0, "%d tags left open", depth);
    return tags;
}

static void check_svg(const char *svg)
{
    cr_assert(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 "), "%.200s",
              svg);
    cr_assert_gt(check_balanced(svg), 50);
    /* Every number finite. */
    for (const char *p = svg; *p; p++) {
        if (strncasecmp(p, "nan", 3) == 0 || strncasecmp(p, "inf", 3) == 0) {
            /* Only inside words of the text, never as a number. */
            cr_assert(p > svg && isalpha((unsigned char)p[-1]), "a non-finite number at %.40s",
                      p > svg + 20 ? p - 20 : svg);
        }
    }
    /* Text escaped: the profile's name holds < > & ". */
    cr_assert(strstr(svg, "wave &lt;opening&gt; &amp; &quot;test&quot;"));
    cr_assert_null(strstr(svg, "<opening>"));
    cr_assert(strstr(svg, "<script") == NULL && strstr(svg, "@import") == NULL &&
              strstr(svg, "href") == NULL);
    for (const char *t = "arrivals/s\0admitted/s\0waiting\0active\0upload\0verify\0register\0p99\0";
         *t; t += strlen(t) + 1)
        cr_assert(strstr(svg, t), "legend %s missing", t);
}

Test(bench_report, svg_well_formed)
{
    synth(NORMAL);
    char *svg = NULL;
    CAPTURE(svg, report_svg(out, &prof, &st));
    check_svg(svg);
    free(svg);

    /* A run with nothing in it still draws finite axes. */
    stats_free(&st);
    stats_init(&st);
    CAPTURE(svg, report_svg(out, &prof, &st));
    check_svg(svg);
    free(svg);

    /* A single second, with a NaN-prone wall time. */
    stats_second(&st, 0)->arrivals = 3;
    st.wall_s = NAN;
    CAPTURE(svg, report_svg(out, &prof, &st));
    check_svg(svg);
    free(svg);
}

Test(bench_report, table_fits_and_holds_the_figures)
{
    synth(LOST);
    char *t = NULL;
    CAPTURE(t, report_table(out, &prof, &st));
    int line = 0;
    for (char *p = t; *p; line++) {
        size_t n = strcspn(p, "\n"), cols = 0;
        for (size_t i = 0; i < n; i++) cols += ((unsigned char)p[i] & 0xc0) != 0x80;
        cr_assert_leq(cols, 100, "line %d is %zu columns: %.*s", line, cols, (int)n, p);
        p += n + (p[n] == '\n');
    }
    cr_assert(strstr(t, "JOBS LOST"), "%s", t);
    cr_assert(strstr(t, "DIFFERS by +2") || strstr(t, "DIFFERS by -2"), "%s", t);
    cr_assert(strstr(t, "join"));
    cr_assert(strstr(t, "checklist"));
    cr_assert(strstr(t, "429:"), "%s", t);
    cr_assert(strstr(t, "neterr:1"), "%s", t);
    cr_assert(strstr(t, "Kendall's tau 0.9"), "%s", t);
    cr_assert(strstr(t, "600.0/min configured"), "%s", t);
    cr_assert(strstr(t, "waited at most:  10s "), "%s", t);
    free(t);
}

Test(bench_report, verdict_names_the_bottleneck)
{
    char *v = verdict_of(NORMAL);
    cr_assert(strstr(v, "Nothing ran out at this load."), "%s", v);
    cr_assert(strstr(v, "admits 600 per minute (configured 600)"), "%s", v);
    cr_assert(strstr(v, "polling every"), "%s", v);
    cr_assert(strstr(v, "uploads per minute at p99 < 50 ms"), "%s", v);
    cr_assert_null(strstr(v, "Warning"));
    cr_assert(strstr(v, "counters differ from the bench's in 1 place "), "%s", v);

    v = verdict_of(SLOW_GATEWAY);
    cr_assert(strstr(v, "Ran out first: gateway"), "%s", v);
    cr_assert(strstr(v, "kept the configured rate"), "%s", v);
    cr_assert(strstr(v, "never a minute at p99 < 50 ms"), "%s", v);

    v = verdict_of(UPLOAD_BACKLOG);
    cr_assert(strstr(v, "Ran out first: worker (the upload backlog grew"), "%s", v);

    v = verdict_of(VERIFY_BACKLOG);
    cr_assert(strstr(v, "Ran out first: downstream (the verify backlog grew"), "%s", v);

    v = verdict_of(REDIS);
    cr_assert(strstr(v, "Ran out first: redis (antre_redis_timeouts_total rose by 15)"), "%s", v);

    v = verdict_of(LOST);
    cr_assert(strstr(v, "Ran out first: worker (3 accepted jobs were lost)"), "%s", v);
    cr_assert(strstr(v, "3 JOBS WERE LOST"), "%s", v);

    v = verdict_of(ROOM_FULL);
    cr_assert(strstr(v, "Ran out first: room (the room's max_active: sessions held the slots; "
                        "admissions waited for sessions to end; admissions ran under half of "
                        "600/min in "),
              "%s", v);
    cr_assert(strstr(v, "985 active + 12 pending of max_active 1000 after the run)."), "%s", v);
    cr_assert(strstr(v, "(configured 600)"), "%s", v);
    cr_assert_null(strstr(v, "places"), "%s", v); /* the room's places not read: no word */
    /* Twice as many places as applicants got in: the verdict says where the rest went. */
    st.room_places = 2.0 * (double)st.admitted;
    static char buf[REPORT_VERDICT_MAX];
    report_verdict(buf, sizeof buf, &prof, &st);
    char want[160];
    snprintf(want, sizeof want,
             "The room admitted %llu places and %llu applicants got in: the other %llu (50 %%) "
             "went to hammering applicants' extra joins",
             (unsigned long long)(2 * st.admitted), (unsigned long long)st.admitted,
             (unsigned long long)st.admitted);
    cr_assert(strstr(buf, want), "%s", buf);

    v = verdict_of(SELF_BOUND);
    cr_assert(strstr(v, "Warning: the bench itself"), "%s", v);
    cr_assert(strstr(v, "Nothing ran out at this load."), "%s", v);

    /* A short buffer is cut, never overrun. */
    char small[40];
    memset(small, 'x', sizeof small);
    report_verdict(small, 20, &prof, &st);
    cr_assert_lt(strlen(small), 20);
    cr_assert_eq(small[25], 'x');
}

/* The room rule (report.c's rule 4) on its own: a room that admits at its rate is never named,
 * whatever its gauges; one that stalls is named with max_active when its gauges stand at it, from
 * the series alone without max_active, and not at all when the gauges say the room had space. */
Test(bench_report, room_rule)
{
    struct report_summary sum;
    stats_free(&st);
    synth(NORMAL);
    st.room_active = 1000;
    report_summarize(&prof, &st, &sum);
    cr_assert_eq(sum.bottleneck, BOTTLENECK_NONE, "%s", sum.why);
    cr_assert_gt(sum.queued_secs, 60);
    cr_assert_eq(sum.stalled_secs, 0);

    stats_free(&st);
    synth(ROOM_FULL);
    report_summarize(&prof, &st, &sum);
    cr_assert_eq(sum.bottleneck, BOTTLENECK_ROOM);
    cr_assert_str_eq(report_bottleneck_name(sum.bottleneck), "room");
    /* From second 40 the room admits 1 a second while applicants wait to the end; the 10 s
     * window falls under 300 a minute at second 45 (seconds 36-39 at 10 and 40-45 at 1: 276
     * a minute), so seconds 45 to 118 stall (the last, 119, is the partial one and not looked at). */
    cr_assert_eq(sum.stalled_secs, 118 - 45 + 1, "%llu", (unsigned long long)sum.stalled_secs);
    cr_assert_eq(sum.queued_secs, 118 - 4 + 1); /* from second 4, 12 arrive and 10 get in */
    cr_assert_geq(sum.stalled_secs * 5, sum.queued_secs);
    json_t *j = report_json(&prof, &st);
    json_t *adm = json_object_get(j, "admission");
    cr_assert_eq(json_integer_value(json_object_get(adm, "stalled_s")),
                 (json_int_t)sum.stalled_secs);
    cr_assert_float_eq(json_real_value(json_object_get(adm, "max_active")), 1000, 1e-9);
    cr_assert_float_eq(json_real_value(json_object_get(adm, "room_pending")), 12, 1e-9);
    cr_assert_str_eq(json_string_value(
                         json_object_get(json_object_get(j, "verdict"), "bottleneck")),
                     "room");
    json_decref(j);

    st.max_active = 0; /* not told: the series alone */
    report_summarize(&prof, &st, &sum);
    cr_assert_eq(sum.bottleneck, BOTTLENECK_ROOM);
    cr_assert(strstr(sum.why, "the room admitted under its rate while applicants waited: "), "%s",
              sum.why);
    cr_assert_null(strstr(sum.why, "max_active"), "%s", sum.why);

    st.max_active = 1000;
    st.room_active = 400, st.room_pending = 0; /* the room had space: not its capacity */
    report_summarize(&prof, &st, &sum);
    cr_assert_neq(sum.bottleneck, BOTTLENECK_ROOM, "%s", sum.why);

    st.room_active = -1; /* the gauges were not read: the series alone */
    report_summarize(&prof, &st, &sum);
    cr_assert_eq(sum.bottleneck, BOTTLENECK_ROOM);

    st.admit_per_min_configured = 0; /* no rate to hold it to */
    report_summarize(&prof, &st, &sum);
    cr_assert_neq(sum.bottleneck, BOTTLENECK_ROOM, "%s", sum.why);
}

/* Write the table, JSON and SVG of scenario SC into DIR as NAME.txt, .json, .svg. */
static void keep(const char *dir, const char *name, enum scenario sc)
{
    stats_free(&st);
    synth(sc);
    char path[512];
    snprintf(path, sizeof path, "%s/%s.svg", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    report_svg(f, &prof, &st);
    fclose(f);
    snprintf(path, sizeof path, "%s/%s.txt", dir, name);
    f = fopen(path, "w");
    cr_assert(f);
    report_table(f, &prof, &st);
    fclose(f);
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    json_t *j = report_json(&prof, &st);
    json_dump_file(j, path, JSON_INDENT(1));
    json_decref(j);
}

Test(bench_report, keep_for_a_look)
{
    const char *dir = getenv("BENCH_REPORT_KEEP");
    if (!dir) return;
    keep(dir, "report", NORMAL);
    keep(dir, "report-backlog", UPLOAD_BACKLOG);
    keep(dir, "report-slow", SLOW_GATEWAY);
}
