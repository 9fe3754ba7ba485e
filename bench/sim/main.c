/* main.c: antre-bench, the surge simulator. Loads an arrival profile, starts the sinks the
 * deployment sends codes and registrations to, lets virtual applicants arrive at the profile's
 * rate (Poisson within each second) and walk the API, prints a progress line each second, then
 * waits for them (bounded), reads the deployment's /metrics again and writes the report: a table
 * on stdout, report.json and report.svg in --out.
 *
 *   antre-bench -c conf/bench/PROFILE.ini --target http://127.0.0.1:8080 [options]
 */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <vips/vips.h>

#include "applicant.h"
#include "client.h"
#include "profile.h"
#include "report.h"
#include "scrape.h"
#include "sink.h"
#include "stats.h"

struct opts {
    const char *profile, *target, *admin, *worker_admin, *token_file, *out, *compare;
    const char *sink_http, *sink_smtp, *applicant_key;
    double duration, scale, grace_s, admit_per_min, max_active;
    uint64_t seed, max_applicants, max_upload_bytes;
    int connections, timeout_ms;
};

struct run {
    struct opts *o;
    struct bench b;
    struct profile p;
    struct run_stats s;
    struct event *tick;
    size_t sec;         /* seconds ticked so far */
    uint64_t scheduled; /* arrivals scheduled (whether or not they began yet) */
    uint64_t fired;     /* arrival timers that ran */
    uint64_t started;   /* arrivals begun */
    uint64_t end_us;    /* the deadline to wait for applicants after arrivals stop */
    double cpu_last;    /* the bench's CPU seconds at the last tick */
    int hot_seconds;    /* consecutive seconds over 90 % of a core */
    uint64_t last_requests;
    int stopping;
};

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { (void)sig, interrupted = 1; }

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* A Poisson draw of mean M (Knuth for small means, a rounded normal for large ones). */
static uint64_t poisson(struct bench *b, double m)
{
    if (m <= 0) return 0;
    if (m > 30) {
        double u1 = applicant_rand(b), u2 = applicant_rand(b);
        double z = sqrt(-2.0 * log(1.0 - u1)) * cos(2 * M_PI * u2);
        double v = floor(m + sqrt(m) * z + 0.5);
        return v > 0 ? (uint64_t)v : 0;
    }
    double l = exp(-m), p = 1;
    uint64_t k = 0;
    do {
        k++;
        p *= applicant_rand(b);
    } while (p > l);
    return k - 1;
}

static void on_arrival(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct run *r = arg;
    r->fired++;
    if (!r->stopping) applicant_start(&r->b, r->started++);
}

/* The worker's backlog per queue (lag + pending), or -1 each when it cannot be read. */
static void sample_queues(struct run *r, int64_t out[QUEUE_COUNT], int timeout_ms, double *done)
{
    static const char *const names[QUEUE_COUNT] = {"queue=\"upload\"", "queue=\"verify\"",
                                                   "queue=\"register\""};
    for (int q = 0; q < QUEUE_COUNT; q++) out[q] = -1;
    if (!r->o->worker_admin) return;
    struct metrics_doc d;
    char err[256];
    if (scrape_metrics(r->o->worker_admin, r->o->token_file, timeout_ms, &d, err, sizeof err))
        return;
    for (int q = 0; q < QUEUE_COUNT; q++) {
        const char *l[2] = {names[q], NULL};
        out[q] = (int64_t)(scrape_sum(&d, "antre_worker_queue_lag", l) +
                           scrape_sum(&d, "antre_worker_queue_pending", l));
    }
    if (done) *done = scrape_sum(&d, "antre_worker_jobs_processed_total", NULL);
    scrape_free(&d);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct run *r = arg;
    struct bench *b = &r->b;
    double t = (double)r->sec;
    uint64_t cap = r->p.max_applicants;
    /* This second's arrivals, each at a random moment within it. */
    if (!r->stopping && t < r->p.duration_s) {
        double mean = 0.5 * (profile_rate_at(&r->p, t) + profile_rate_at(&r->p, t + 1));
        uint64_t n = poisson(b, mean);
        if (cap && r->scheduled + n > cap) n = cap > r->scheduled ? cap - r->scheduled : 0;
        for (uint64_t i = 0; i < n; i++) {
            double at = applicant_rand(b);
            struct timeval tv = {0, (suseconds_t)(at * 1e6)};
            event_base_once(b->base, -1, EV_TIMEOUT, on_arrival, r, &tv);
        }
        r->scheduled += n;
    }
    /* The second just ended. */
    if (r->sec > 0) {
        struct second_stats *ss = stats_second(&r->s, r->sec - 1);
        ss->waiting = (uint32_t)b->waiting;
        ss->active = (uint32_t)b->active;
        sample_queues(r, ss->queue_len, 300, NULL);
        double cpu = cpu_seconds(), used = cpu - r->cpu_last;
        r->cpu_last = cpu;
        r->hot_seconds = used > 0.9 ? r->hot_seconds + 1 : 0;
        if (r->hot_seconds == 5) {
            r->s.self_bottleneck = 1;
            fprintf(stderr,
                    "\nantre-bench: warning: the bench itself uses %.0f%% of a core: it may "
                    "be the bottleneck, not the deployment (try --scale lower)\n",
                    used * 100);
        }
        uint64_t reqs = 0;
        for (int e = 0; e < EP_COUNT; e++) reqs += r->s.ep[e].requests;
        fprintf(stderr,
                "\r%4zus arrived %llu waiting %llu admitted %llu active %llu completed %llu "
                "req/s %llu p99 %.1fms cpu %.0f%%   ",
                r->sec, (unsigned long long)r->s.arrived, (unsigned long long)b->waiting,
                (unsigned long long)r->s.admitted, (unsigned long long)b->active,
                (unsigned long long)r->s.completed, (unsigned long long)(reqs - r->last_requests),
                ss->p99_us / 1000.0, used * 100);
        r->last_requests = reqs;
    }
    r->sec++;
    if (interrupted && !r->stopping) {
        fprintf(stderr, "\nantre-bench: interrupted: no more arrivals; waiting 10 s for the "
                        "applicants\n");
        r->stopping = 1;
        r->end_us = applicant_now_us() + 10 * 1000000u;
    }
    int arrivals_over =
        r->stopping || r->sec >= (size_t)ceil(r->p.duration_s) || (cap && r->scheduled >= cap);
    if (arrivals_over && !r->end_us)
        r->end_us = applicant_now_us() + (uint64_t)(r->o->grace_s * 1e6);
    if (arrivals_over && r->fired >= r->scheduled &&
        (b->live == 0 || applicant_now_us() >= r->end_us)) {
        /* The few milliseconds of the second now begun (the timer fires a little late) keep
         * the figures of the one before, not zeros. */
        if (r->s.nseconds > r->sec - 1) {
            struct second_stats *last = stats_second(&r->s, r->sec - 1);
            last->waiting = (uint32_t)b->waiting;
            last->active = (uint32_t)b->active;
        }
        event_base_loopbreak(b->base);
        return;
    }
    struct timeval tv = {1, 0};
    evtimer_add(r->tick, &tv);
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int scrape_or_warn(const char *url, const char *token, struct metrics_doc *d)
{
    char err[256];
    if (!url) return 0;
    if (scrape_metrics(url, token, 3000, d, err, sizeof err) == 0) return 1;
    fprintf(stderr, "antre-bench: %s\n", err);
    return 0;
}

/* Wait (bounded) for the worker to drain what the run queued, so that "lost" means lost. */
static void wait_worker_drained(struct run *r, double max_s)
{
    uint64_t end = applicant_now_us() + (uint64_t)(max_s * 1e6);
    double last = -2;
    while (r->o->worker_admin && applicant_now_us() < end) {
        int64_t q[QUEUE_COUNT];
        double done = -1;
        sample_queues(r, q, 2000, &done);
        /* Redis 7.0 cannot tell a stream's lag once entries were deleted: the worker then
         * shows only what it holds, so wait while its processed count still moves too. */
        int busy = done != last;
        last = done;
        for (int i = 0; i < QUEUE_COUNT; i++) busy |= q[i] != 0; /* -1: not read, ask again */
        if (!busy) return;
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    }
}

static int write_reports(struct run *r)
{
    const char *dir = r->o->out;
    mkdir(dir, 0755);
    char path[4096];
    json_t *j = report_json(&r->p, &r->s);
    snprintf(path, sizeof path, "%s/report.json", dir);
    if (json_dump_file(j, path, JSON_INDENT(2)) != 0) {
        fprintf(stderr, "antre-bench: cannot write %s\n", path);
        json_decref(j);
        return -1;
    }
    snprintf(path, sizeof path, "%s/report.svg", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "antre-bench: cannot write %s: %s\n", path, strerror(errno));
        json_decref(j);
        return -1;
    }
    report_svg(f, &r->p, &r->s);
    fclose(f);
    if (r->o->compare) {
        json_error_t e;
        json_t *old = json_load_file(r->o->compare, 0, &e);
        if (!old) fprintf(stderr, "antre-bench: --compare %s: %s\n", r->o->compare, e.text);
        else {
            report_compare(stdout, old, j);
            json_decref(old);
        }
    }
    json_decref(j);
    fprintf(stderr, "antre-bench: report in %s/report.json and %s/report.svg\n", dir, dir);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: antre-bench -c PROFILE.ini --target http://127.0.0.1:8080 [options]\n"
            "  --duration S          arrivals stop after S seconds (default: the profile's)\n"
            "  --scale X             every arrival rate times X (default 1)\n"
            "  --max-applicants N    at most N applicants arrive\n"
            "  --seed N              the random seed (default: from the clock)\n"
            "  --admin URL           the gateway's admin listener (http://127.0.0.1:8081/metrics)\n"
            "  --worker-admin URL    the worker's admin listener (http://127.0.0.1:8082/metrics)\n"
            "  --admin-token FILE    bearer token for both /metrics\n"
            "  --out DIR             where report.json and report.svg go (default build/bench)\n"
            "  --compare OLD.json    print the change against an earlier report\n"
            "  --sink-http ADDR      the HTTP sink (SMS, downstream) listens here (127.0.0.1:0)\n"
            "  --sink-smtp ADDR      the SMTP sink listens here (127.0.0.1:0)\n"
            "  --connections N       keep-alive connections to the target (default 256)\n"
            "  --timeout-ms N        per request (default 30000)\n"
            "  --grace S             wait at most S seconds for applicants after arrivals stop\n"
            "  --admit-rate N        the room's admit_rate_per_min, for the report\n"
            "  --max-active N        the room's max_active, for the verdict\n"
            "  --max-upload-bytes N  the deployment's [upload] max_bytes (default 10485760)\n"
            "  --applicant-key FILE  the room's HS256 applicant_key_file: joins carry tokens\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longs[] = {{"config", 1, 0, 'c'},
                                          {"target", 1, 0, 't'},
                                          {"duration", 1, 0, 'd'},
                                          {"scale", 1, 0, 's'},
                                          {"admin", 1, 0, 'a'},
                                          {"worker-admin", 1, 0, 'w'},
                                          {"admin-token", 1, 0, 'k'},
                                          {"out", 1, 0, 'o'},
                                          {"compare", 1, 0, 'C'},
                                          {"seed", 1, 0, 'S'},
                                          {"max-applicants", 1, 0, 'm'},
                                          {"sink-http", 1, 0, 'H'},
                                          {"sink-smtp", 1, 0, 'M'},
                                          {"connections", 1, 0, 'n'},
                                          {"timeout-ms", 1, 0, 'T'},
                                          {"grace", 1, 0, 'g'},
                                          {"admit-rate", 1, 0, 'r'},
                                          {"max-active", 1, 0, 'A'},
                                          {"max-upload-bytes", 1, 0, 'U'},
                                          {"applicant-key", 1, 0, 'K'},
                                          {"help", 0, 0, 'h'},
                                          {0, 0, 0, 0}};
    *o = (struct opts){.target = "http://127.0.0.1:8080",
                       .out = "build/bench",
                       .scale = 1,
                       .sink_http = "127.0.0.1:0",
                       .sink_smtp = "127.0.0.1:0",
                       .connections = 256,
                       .timeout_ms = 30000,
                       .grace_s = -1,
                       .max_upload_bytes = 10u << 20,
                       .seed = (uint64_t)time(NULL)};
    int c;
    while ((c = getopt_long(argc, argv, "c:h", longs, NULL)) != -1) switch (c) {
        case 'c': o->profile = optarg; break;
        case 't': o->target = optarg; break;
        case 'd': o->duration = atof(optarg); break;
        case 's': o->scale = atof(optarg); break;
        case 'a': o->admin = optarg; break;
        case 'w': o->worker_admin = optarg; break;
        case 'k': o->token_file = optarg; break;
        case 'o': o->out = optarg; break;
        case 'C': o->compare = optarg; break;
        case 'S': o->seed = strtoull(optarg, NULL, 10); break;
        case 'm': o->max_applicants = strtoull(optarg, NULL, 10); break;
        case 'H': o->sink_http = optarg; break;
        case 'M': o->sink_smtp = optarg; break;
        case 'n': o->connections = atoi(optarg); break;
        case 'T': o->timeout_ms = atoi(optarg); break;
        case 'g': o->grace_s = atof(optarg); break;
        case 'r': o->admit_per_min = atof(optarg); break;
        case 'A': o->max_active = atof(optarg); break;
        case 'U': o->max_upload_bytes = strtoull(optarg, NULL, 10); break;
        case 'K': o->applicant_key = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    if (!o->profile || o->scale <= 0) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* Append "/metrics" to an admin URL given as http://host:port. */
static const char *metrics_url(const char *u, char *buf, size_t n)
{
    if (!u) return NULL;
    const char *rest = strncmp(u, "http://", 7) == 0 ? strchr(u + 7, '/') : NULL;
    if (rest) return u;
    snprintf(buf, n, "%s/metrics", u);
    return buf;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o)) return 2;
    char admin_buf[256], worker_buf[256];
    o.admin = metrics_url(o.admin, admin_buf, sizeof admin_buf);
    o.worker_admin = metrics_url(o.worker_admin, worker_buf, sizeof worker_buf);
    static struct run r;
    r.o = &o;
    char err[512];
    if (profile_load(o.profile, &r.p, err, sizeof err)) {
        fprintf(stderr, "antre-bench: %s\n", err);
        return 2;
    }
    if (o.scale != 1) profile_scale(&r.p, o.scale);
    if (o.duration > 0) profile_set_duration(&r.p, o.duration);
    if (o.max_applicants) r.p.max_applicants = o.max_applicants;
    if (o.grace_s < 0) o.grace_s = r.p.checklist_timeout_s + 30;
    char host[64];
    int port;
    if (sscanf(o.target, "http://%63[0-9.]:%d", host, &port) != 2) {
        fprintf(stderr, "antre-bench: --target must be http://IPv4:PORT: %s\n", o.target);
        return 2;
    }
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (VIPS_INIT(argv[0])) {
        fprintf(stderr, "antre-bench: libvips would not start\n");
        return 1;
    }
    struct bench *b = &r.b;
    b->base = event_base_new();
    b->p = &r.p;
    b->s = &r.s;
    b->rng = o.seed * 0x9e3779b97f4a7c15ull + 1;
    b->nonce = o.seed;
    b->max_upload_bytes = o.max_upload_bytes;
    static unsigned char key[4096];
    if (o.applicant_key) {
        FILE *kf = fopen(o.applicant_key, "rb");
        size_t kn = kf ? fread(key, 1, sizeof key, kf) : 0;
        if (kf) fclose(kf);
        while (kn && (key[kn - 1] == '\n' || key[kn - 1] == '\r' || key[kn - 1] == ' ')) kn--;
        if (kn < 32) {
            fprintf(stderr,
                    "antre-bench: --applicant-key %s: not an HS256 secret of 32 bytes or "
                    "more\n",
                    o.applicant_key);
            return 2;
        }
        b->applicant_key = key;
        b->applicant_key_len = kn;
    }
    stats_init(&r.s);
    r.s.admit_per_min_configured = o.admit_per_min;
    r.s.max_active = o.max_active;
    if (applicant_photos_make(&b->photos, &r.p, o.max_upload_bytes, err, sizeof err)) {
        fprintf(stderr, "antre-bench: %s\n", err);
        return 1;
    }
    b->sink = sink_start(b->base, o.sink_http, o.sink_smtp, err, sizeof err);
    if (!b->sink) {
        fprintf(stderr, "antre-bench: %s\n", err);
        return 1;
    }
    fprintf(stderr,
            "antre-bench: sinks: [sms] url = http://127.0.0.1:%d/sms   [downstream] url = "
            "http://127.0.0.1:%d/downstream   [smtp] url = smtp://127.0.0.1:%d (starttls = no)\n",
            sink_http_port(b->sink), sink_http_port(b->sink), sink_smtp_port(b->sink));
    b->cl = client_new(b->base, host, port, o.connections, o.timeout_ms, 1 << 20, err, sizeof err);
    if (!b->cl) {
        fprintf(stderr, "antre-bench: %s\n", err);
        return 2;
    }
    fprintf(stderr, "antre-bench: profile %s, %.0f s, about %.0f applicants, room %s, target %s\n",
            r.p.name, r.p.duration_s, profile_expected_arrivals(&r.p), r.p.room, o.target);

    struct metrics_doc gw0 = {0}, gw1 = {0}, wk0 = {0}, wk1 = {0};
    int have_gw0 = scrape_or_warn(o.admin, o.token_file, &gw0);
    int have_wk0 = scrape_or_warn(o.worker_admin, o.token_file, &wk0);

    b->t0_us = applicant_now_us();
    r.cpu_last = cpu_seconds();
    double cpu0 = r.cpu_last;
    r.tick = evtimer_new(b->base, on_tick, &r);
    event_active(r.tick, EV_TIMEOUT, 0);
    event_base_dispatch(b->base);
    fprintf(stderr, "\n");
    r.s.wall_s = (double)(applicant_now_us() - b->t0_us) / 1e6;
    r.s.self_cpu_s = cpu_seconds() - cpu0;
    if (b->live)
        fprintf(stderr, "antre-bench: %llu applicants were still walking when the run ended\n",
                (unsigned long long)b->live);

    wait_worker_drained(&r, 30);
    int have_gw1 = scrape_or_warn(o.admin, o.token_file, &gw1);
    int have_wk1 = scrape_or_warn(o.worker_admin, o.token_file, &wk1);
    scrape_compare(&r.s, have_gw0 && have_gw1 ? &gw0 : NULL, have_gw1 ? &gw1 : NULL,
                   have_wk0 && have_wk1 ? &wk0 : NULL, have_wk1 ? &wk1 : NULL);
    /* Lost: accepted, but neither processed, dead-lettered (failed for good, and said so) nor
     * still queued. Without the worker's figures, processed is what the checklists showed. */
    int64_t pending[QUEUE_COUNT];
    sample_queues(&r, pending, 3000, NULL);
    static const char *const qlabels[QUEUE_COUNT] = {"queue=\"upload\"", "queue=\"verify\"",
                                                     "queue=\"register\""};
    for (int q = 0; q < QUEUE_COUNT; q++) {
        struct queue_stats *qs = &r.s.queues[q];
        double dead = 0;
        if (have_wk0 && have_wk1) {
            const char *l[2] = {qlabels[q], NULL};
            dead = scrape_sum(&wk1, "antre_worker_jobs_dead_lettered_total", l) -
                   scrape_sum(&wk0, "antre_worker_jobs_dead_lettered_total", l);
        } else qs->processed = b->finals[q];
        if (pending[q] < 0 && o.worker_admin)
            fprintf(stderr, "antre-bench: the worker's backlog could not be read at the end: "
                            "jobs still queued count as lost\n");
        uint64_t left =
            (pending[q] > 0 ? (uint64_t)pending[q] : 0) + (dead > 0 ? (uint64_t)dead : 0);
        qs->lost = qs->accepted > qs->processed + left ? qs->accepted - qs->processed - left : 0;
    }

    report_table(stdout, &r.p, &r.s);
    int rc = write_reports(&r) ? 1 : 0;

    scrape_free(&gw0), scrape_free(&gw1), scrape_free(&wk0), scrape_free(&wk1);
    event_free(r.tick);
    client_free(b->cl);
    sink_free(b->sink);
    applicant_photos_free(&b->photos);
    stats_free(&r.s);
    event_base_free(b->base);
    vips_shutdown();
    return rc;
}
