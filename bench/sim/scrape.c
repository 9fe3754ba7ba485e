/* scrape.c: reads a /metrics document (Prometheus text) over a plain blocking socket with a
 * deadline, parses its samples, and sets the deployment's counters beside the bench's own. */
#include "scrape.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SCRAPE_MAX (4u << 20)

static int fail(char *err, size_t errlen, const char *what, const char *a)
{
    snprintf(err, errlen, "scrape: %s %s", what, a);
    return -1;
}

static long ms_left(const struct timespec *end)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (end->tv_sec - now.tv_sec) * 1000 + (end->tv_nsec - now.tv_nsec) / 1000000;
}

/* Wait for FD to be ready for EVENTS before END. 0, or -1 when the time is up. */
static int ready(int fd, short events, const struct timespec *end)
{
    long left = ms_left(end);
    if (left <= 0) return -1;
    struct pollfd p = {.fd = fd, .events = events};
    return poll(&p, 1, (int)left) == 1 ? 0 : -1;
}

static void add_sample(struct metrics_doc *doc, const char *name, size_t n, double v)
{
    if (doc->n == doc->cap) {
        doc->cap = doc->cap ? doc->cap * 2 : 256;
        doc->samples = realloc(doc->samples, doc->cap * sizeof *doc->samples);
        if (!doc->samples) abort();
    }
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, name, n);
    s[n] = 0;
    doc->samples[doc->n].name = s;
    doc->samples[doc->n].value = v;
    doc->n++;
}

/* Parse the text exposition format: "name{labels} value [timestamp]", # lines skipped. */
static void parse(struct metrics_doc *doc, char *text)
{
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        if (*line == '#' || *line == 0) continue;
        char *brace = strchr(line, '{'), *sp;
        if (brace && (sp = strchr(brace, '}'))) sp = strchr(sp, ' ');
        else sp = strchr(line, ' ');
        if (!sp) continue;
        char *end;
        double v = strtod(sp + 1, &end);
        if (end == sp + 1) continue;
        add_sample(doc, line, (size_t)(sp - line), v);
    }
}

int scrape_metrics(const char *url, const char *token_file, int timeout_ms, struct metrics_doc *doc,
                   char *err, size_t errlen)
{
    memset(doc, 0, sizeof *doc);
    char host[64];
    int port;
    char path[256] = "/metrics";
    if (sscanf(url, "http://%63[0-9.]:%d%255s", host, &port, path) < 2)
        return fail(err, errlen, "not http://IPv4:PORT/path:", url);
    char token[512] = "";
    if (token_file) {
        FILE *f = fopen(token_file, "r");
        if (!f) return fail(err, errlen, "cannot read the token file", token_file);
        if (!fgets(token, sizeof token, f)) token[0] = 0;
        fclose(f);
        token[strcspn(token, "\r\n")] = 0;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) return fail(err, errlen, "bad address", host);
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += timeout_ms / 1000;
    end.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (end.tv_nsec >= 1000000000) end.tv_sec++, end.tv_nsec -= 1000000000;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(err, errlen, "socket:", strerror(errno));
    char *buf = NULL;
    int rc = -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        fail(err, errlen, "connection refused:", url);
        goto out;
    }
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\n%s%s%sConnection: close\r\n\r\n", path, host,
                     token[0] ? "Authorization: Bearer " : "", token, token[0] ? "\r\n" : "");
    explicit_bzero(token, sizeof token);
    for (int off = 0; off < n;) {
        if (ready(fd, POLLOUT, &end)) {
            fail(err, errlen, "timed out:", url);
            goto out;
        }
        ssize_t w = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) {
            fail(err, errlen, "could not send to", url);
            goto out;
        }
        if (w > 0) off += (int)w;
    }
    explicit_bzero(req, sizeof req);
    size_t len = 0, cap = 65536;
    buf = malloc(cap + 1);
    if (!buf) abort();
    for (;;) {
        if (ready(fd, POLLIN, &end)) {
            fail(err, errlen, "timed out:", url);
            goto out;
        }
        if (len == cap) {
            if (cap >= SCRAPE_MAX) {
                fail(err, errlen, "answer too large from", url);
                goto out;
            }
            cap *= 2;
            buf = realloc(buf, cap + 1);
            if (!buf) abort();
        }
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r == 0) break;
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            fail(err, errlen, "connection error from", url);
            goto out;
        }
        len += (size_t)r;
    }
    buf[len] = 0;
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || status != 200) {
        snprintf(err, errlen, "scrape: %s answered %d", url, status);
        goto out;
    }
    char *body = strstr(buf, "\r\n\r\n");
    if (!body) {
        fail(err, errlen, "no body from", url);
        goto out;
    }
    parse(doc, body + 4);
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}

void scrape_free(struct metrics_doc *doc)
{
    for (size_t i = 0; i < doc->n; i++) free(doc->samples[i].name);
    free(doc->samples);
    memset(doc, 0, sizeof *doc);
}

double scrape_sum(const struct metrics_doc *doc, const char *name, const char *const *labels)
{
    double sum = 0;
    if (!doc) return 0;
    size_t nl = strlen(name);
    for (size_t i = 0; i < doc->n; i++) {
        const char *s = doc->samples[i].name;
        if (strncmp(s, name, nl) != 0 || (s[nl] != 0 && s[nl] != '{')) continue;
        int ok = 1;
        for (const char *const *l = labels; l && *l && ok; l++) ok = strstr(s + nl, *l) != NULL;
        if (ok) sum += doc->samples[i].value;
    }
    return sum;
}

/* The gateway's route name of each endpoint (the .name of router_add in gateway/). */
static const char *const route_of[EP_COUNT] = {
    [EP_PAGE] = "room_page",
    [EP_JOIN] = "room_join",
    [EP_STATUS] = "room_status",
    [EP_REDEEM] = NULL,
    [EP_REGISTER] = "registration_create",
    [EP_UPLOAD] = "upload_put",
    [EP_TUS_CREATE] = "tus_create",
    [EP_TUS_PATCH] = "tus_patch",
    [EP_VERIFY] = "verification_create",
    [EP_CONFIRM] = "verification_confirm",
    [EP_CHECKLIST] = "registration_status",
    [EP_LEAVE] = "room_leave",
};
static const char *const queue_names[QUEUE_COUNT] = {"upload", "verify", "register"};

static void check(struct run_stats *s, const struct metrics_doc *before,
                  const struct metrics_doc *after, const char *name, const char *label,
                  const char *label2, double bench)
{
    if (s->nchecks >= STATS_MAX_METRIC_CHECKS) return;
    const char *labels[3] = {label, label2, NULL};
    struct metric_check *c = &s->checks[s->nchecks++];
    snprintf(c->name, sizeof c->name, "%s{%s%s%s}", name, label ? label : "", label2 ? "," : "",
             label2 ? label2 : "");
    c->before = scrape_sum(before, name, labels);
    c->after = scrape_sum(after, name, labels);
    c->bench = bench;
}

void scrape_compare(struct run_stats *s, const struct metrics_doc *gw_before,
                    const struct metrics_doc *gw_after, const struct metrics_doc *wk_before,
                    const struct metrics_doc *wk_after)
{
    char label[96];
    if (gw_after)
        for (int e = 0; e < EP_COUNT; e++) {
            if (!route_of[e] || !s->ep[e].requests) continue;
            snprintf(label, sizeof label, "route=\"%s\"", route_of[e]);
            check(s, gw_before, gw_after, "antre_http_requests_total", label, NULL,
                  (double)(s->ep[e].requests - s->ep[e].transport_errors));
        }
    if (gw_after) { /* the room's gauges (a bench deployment serves one room) */
        s->room_active = scrape_sum(gw_after, "antre_room_active", NULL);
        s->room_pending = scrape_sum(gw_after, "antre_room_pending", NULL);
        if (gw_before)
            s->room_places = s->room_active >= 0
                                 ? scrape_sum(gw_after, "antre_room_admitted", NULL) -
                                       scrape_sum(gw_before, "antre_room_admitted", NULL)
                                 : -1;
    }
    if (!wk_after) return;
    for (int q = 0; q < QUEUE_COUNT; q++) {
        snprintf(label, sizeof label, "queue=\"%s\"", queue_names[q]);
        check(s, wk_before, wk_after, "antre_worker_jobs_processed_total", label, NULL,
              (double)s->queues[q].accepted);
        const char *l[2] = {label, NULL};
        double d = scrape_sum(wk_after, "antre_worker_jobs_processed_total", l) -
                   scrape_sum(wk_before, "antre_worker_jobs_processed_total", l);
        s->queues[q].processed = d > 0 ? (uint64_t)d : 0;
    }
    check(s, wk_before, wk_after, "antre_worker_codes_total", "channel=\"sms\"", "outcome=\"sent\"",
          (double)s->codes_sent_sms);
    check(s, wk_before, wk_after, "antre_worker_codes_total", "channel=\"email\"",
          "outcome=\"sent\"", (double)s->codes_sent_email);
}
