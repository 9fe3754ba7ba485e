/* admin.c: the worker's admin listener. It answers GET /metrics only (404 otherwise), one
 * request per connection, in Prometheus text: per queue, the counters every worker process keeps
 * in its shared-memory slot (summed), and what Redis knows (XINFO GROUPS lag and pending, the
 * oldest pending entry's age, retries waiting), read by common/lua/queue.lua 'stats' when the
 * scrape comes, and the photo decisions by state and reason (upload.c). Without Redis the
 * counters are still given and antre_worker_redis_up is 0. With [worker] admin_token_file set,
 * a scrape needs `Authorization: Bearer <token>` (compared in constant time, common/bearer.c;
 * 401 otherwise). Listens on loopback by default; it takes no input beyond a request head of at
 * most HEAD_MAX bytes, and drops a client that does not send it within a few seconds. */
#include "admin.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "antre/bearer.h"
#include "antre/clock.h"
#include "antre/keys.h"
#include "antre/lua_scripts.h"
#include "antre/prom.h"
#include "antre/script.h"

#define HEAD_MAX 8192

struct admin {
    struct evconnlistener *lev;
    struct rconn *rc;
    const struct slots *slots;
    const struct bearer *token;
};

/* One scrape: its connection, and the Redis figures of each queue once they come. */
struct scrape {
    struct admin *a;
    struct bufferevent *bev;
    int nleft;    /* 'stats' calls still out */
    int ndone;    /* replies so far (they come in the order of the calls: one connection) */
    int redis_ok; /* every call answered */
    int64_t figs[JOB__QUEUES][4]; /* lag, pending, oldest age ms, delayed; -1 unknown */
};

static struct script stats_script;

static void close_after_write(struct bufferevent *bev, void *arg)
{
    (void)arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) bufferevent_free(bev);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    struct scrape *s = arg;
    if (s && s->nleft) {
        s->bev = NULL; /* the figures still come; the answer has nowhere to go */
        bufferevent_free(bev);
        return;
    }
    free(s);
    bufferevent_free(bev);
}

static void answer(struct bufferevent *bev, int status, const char *ctype, struct evbuffer *body)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                        "%sConnection: close\r\n\r\n",
                        status,
                        status == 200   ? "OK"
                        : status == 401 ? "Unauthorized"
                                        : "Not Found",
                        ctype, body ? evbuffer_get_length(body) : 0,
                        status == 401 ? "WWW-Authenticate: Bearer\r\n" : "");
    if (body) evbuffer_add_buffer(out, body);
    bufferevent_setcb(bev, NULL, close_after_write, on_event, NULL);
    bufferevent_disable(bev, EV_READ);
}

static void family(struct evbuffer *b, const char *name, enum prom_type t, const char *help,
                   const int64_t *v)
{
    prom_family(b, name, t, help);
    for (int i = 0; i < JOB__QUEUES; i++) {
        struct prom_label l = {"queue", job_queue_name((enum job_queue)i)};
        if (t == PROM_COUNTER) prom_u64(b, name, &l, 1, (uint64_t)v[i]);
        else prom_i64(b, name, &l, 1, v[i]);
    }
}

/* Photo decisions by state and reason, and warnings on accepted photos, every process summed. */
static void render_photo(struct evbuffer *b, const struct upload_stats *p)
{
    prom_family(b, "antre_worker_photo_decisions_total", PROM_COUNTER,
                "photo verdicts recorded, by state and reason");
    for (int i = 0; i < UPLOAD_DECISIONS; i++) {
        const char *state;
        const char *reason = upload_decision_name(i, &state);
        struct prom_label l[2] = {{"state", state}, {"reason", reason}};
        prom_u64(b, "antre_worker_photo_decisions_total", l, 2, p->decisions[i]);
    }
    prom_family(b, "antre_worker_photo_warnings_total", PROM_COUNTER,
                "photo verdicts recorded with a quality warning, by warning");
    for (int k = 0; k < PHOTO_WARN__COUNT; k++) {
        struct prom_label l = {"warning", photo_warning_name(1u << k)};
        prom_u64(b, "antre_worker_photo_warnings_total", &l, 1, p->warnings[k]);
    }
}

/* Verification codes by channel and outcome, every process summed. */
static void render_codes(struct evbuffer *b, const struct verify_stats *v)
{
    static const char *const channels[VERIFY__CHANNELS] = {"email", "sms"};
    prom_family(
        b, "antre_worker_codes_total", PROM_COUNTER,
        "verification codes by channel and outcome (sent, failed for good, dropped unsent)");
    for (int c = 0; c < VERIFY__CHANNELS; c++) {
        const struct {
            const char *name;
            uint64_t n;
        } out[] = {{"sent", v->sent[c]}, {"failed", v->failed[c]}, {"dropped", v->dropped[c]}};
        for (size_t k = 0; k < sizeof out / sizeof out[0]; k++) {
            struct prom_label l[2] = {{"channel", channels[c]}, {"outcome", out[k].name}};
            prom_u64(b, "antre_worker_codes_total", l, 2, out[k].n);
        }
    }
}

static void render(struct scrape *s)
{
    struct admin_slot sum;
    memset(&sum, 0, sizeof sum);
    slots_sum(s->a->slots, 0, sizeof sum, (uint64_t *)&sum);
    struct evbuffer *b = evbuffer_new();
    int64_t v[JOB__QUEUES];
#define EACH(expr)                                                                                 \
    for (int i = 0; i < JOB__QUEUES; i++) v[i] = (int64_t)(expr)
    EACH(sum.q[i].processed);
    family(b, "antre_worker_jobs_processed_total", PROM_COUNTER, "jobs done and acknowledged", v);
    EACH(sum.q[i].failed);
    family(b, "antre_worker_jobs_failed_total", PROM_COUNTER,
           "attempts that failed, retried or not", v);
    EACH(sum.q[i].retried);
    family(b, "antre_worker_jobs_retried_total", PROM_COUNTER,
           "failed attempts put back for a later retry", v);
    EACH(sum.q[i].dead);
    family(b, "antre_worker_jobs_dead_lettered_total", PROM_COUNTER,
           "entries moved to the dead-letter stream", v);
    EACH(sum.q[i].in_flight);
    family(b, "antre_worker_jobs_in_flight", PROM_GAUGE, "jobs in hand now, all processes", v);
    render_photo(b, &sum.photo);
    render_codes(b, &sum.code);
    prom_family(b, "antre_worker_redis_up", PROM_GAUGE,
                "1 when Redis answered this scrape's queue figures");
    prom_i64(b, "antre_worker_redis_up", NULL, 0, s->redis_ok);
    if (s->redis_ok) {
        static const char *const names[4][2] =
            {{"antre_worker_queue_lag", "entries not yet delivered to the group (XINFO lag)"},
             {"antre_worker_queue_pending", "entries delivered and not acknowledged"},
             {"antre_worker_queue_oldest_pending_age_seconds",
              "age of the oldest pending entry (0 when none)"},
             {"antre_worker_queue_delayed", "pending entries waiting for a retry"}};
        for (int k = 0; k < 4; k++) {
            prom_family(b, names[k][0], PROM_GAUGE, names[k][1]);
            for (int i = 0; i < JOB__QUEUES; i++) {
                struct prom_label l = {"queue", job_queue_name((enum job_queue)i)};
                if (s->figs[i][k] < 0) continue; /* unknown (no group yet, or lag unknown) */
                if (k == 2) prom_double(b, names[k][0], &l, 1, (double)s->figs[i][k] / 1000.0);
                else prom_i64(b, names[k][0], &l, 1, s->figs[i][k]);
            }
        }
    }
    answer(s->bev, 200, "text/plain; version=0.0.4; charset=utf-8", b);
    evbuffer_free(b);
}

static void on_stats(void *arg, const redisReply *r, const char *err)
{
    struct scrape *s = arg;
    int qi = s->ndone++;
    if (err || !r || r->type != REDIS_REPLY_ARRAY || r->elements != 4) s->redis_ok = 0;
    else
        for (int k = 0; k < 4; k++)
            s->figs[qi][k] =
                r->element[k]->type == REDIS_REPLY_INTEGER ? r->element[k]->integer : -1;
    if (--s->nleft) return;
    if (!s->bev) {
        free(s);
        return;
    }
    render(s);
    free(s);
}

static void start_scrape(struct scrape *s)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)clock_wall_ms());
    s->redis_ok = 1;
    for (int i = 0; i < JOB__QUEUES; i++) {
        char stream[KEYS_MAX], delayed[KEYS_MAX];
        job_stream_key(stream, (enum job_queue)i);
        job_delayed_key(delayed, (enum job_queue)i);
        const char *keys[] = {stream, delayed};
        const char *args[] = {"stats", JOB_GROUP, now};
        if (script_call(s->a->rc, &stats_script, on_stats, s, 2, keys, 3, args) < 0) {
            s->redis_ok = 0;
            break;
        }
        s->nleft++;
    }
    if (s->nleft) return;
    render(s);
    free(s);
}

/* The value of header NAME (lower case) in HEAD (a NUL-terminated request head), without the
 * spaces around it, and its length in *LEN; NULL when absent. */
static const char *header_value(const char *head, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l; l = strstr(l, "\r\n")) {
        l += 2;
        if (strncasecmp(l, name, nl) != 0 || l[nl] != ':') continue;
        const char *v = l + nl + 1, *e = strstr(v, "\r\n");
        if (!e) e = v + strlen(v);
        while (v < e && (*v == ' ' || *v == '\t')) v++;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t')) e--;
        *len = (size_t)(e - v);
        return v;
    }
    return NULL;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct scrape *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0) {
        if (evbuffer_get_length(in) > HEAD_MAX) on_event(bev, BEV_EVENT_ERROR, s);
        return;
    }
    char head[HEAD_MAX + 1];
    size_t n = evbuffer_copyout(in, head, (size_t)end.pos < HEAD_MAX ? (size_t)end.pos : HEAD_MAX);
    head[n] = '\0';
    bufferevent_disable(bev, EV_READ);
    if (strncmp(head, "GET /metrics ", 13) != 0 && strncmp(head, "GET /metrics?", 13) != 0) {
        answer(bev, 404, "text/plain", NULL);
        free(s);
        return;
    }
    size_t alen = 0;
    const char *auth = header_value(head, "authorization", &alen);
    if (!bearer_allows(s->a->token, auth, alen)) {
        answer(bev, 401, "text/plain", NULL);
        free(s);
        return;
    }
    bufferevent_setcb(bev, NULL, NULL, on_event, s);
    start_scrape(s);
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)sa;
    (void)salen;
    struct admin *a = arg;
    struct bufferevent *bev =
        bufferevent_socket_new(evconnlistener_get_base(lev), fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        evutil_closesocket(fd);
        return;
    }
    struct scrape *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->a = a;
    s->bev = bev;
    struct timeval tv = {5, 0};
    bufferevent_set_timeouts(bev, &tv, &tv);
    bufferevent_setcb(bev, on_read, NULL, on_event, s);
    bufferevent_enable(bev, EV_READ);
}

struct admin *admin_new(struct event_base *base, const struct conf_addr *addr, struct rconn *rc,
                        const struct slots *slots, const struct bearer *token, char *err,
                        size_t errlen)
{
    if (!stats_script.src) script_init(&stats_script, lua_queue);
    struct admin *a = calloc(1, sizeof *a);
    if (!a) abort();
    a->rc = rc;
    a->slots = slots;
    a->token = token;
    unsigned flags =
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE_PORT;
    a->lev = evconnlistener_new_bind(base, on_accept, a, flags, 64,
                                     (const struct sockaddr *)&addr->sa, (int)addr->salen);
    if (!a->lev) {
        snprintf(err, errlen, "cannot listen on %s", addr->text);
        free(a);
        return NULL;
    }
    return a;
}

void admin_free(struct admin *a)
{
    if (!a) return;
    evconnlistener_free(a->lev);
    free(a);
}
