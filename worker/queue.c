/* queue.c: one queue's consumer loop in a worker process.
 *
 * Reading. Every read is one call of common/lua/queue.lua 'fetch', sent by a timer (polling, so
 * no command ever blocks on Redis): it takes at most `concurrency` minus the jobs in hand, as the
 * queue's drain rate allows (GCRA in Redis, shared by every worker process): first retries whose
 * time has come, then this consumer's own pending entries (XREADGROUP from id 0, once at start),
 * then entries idle past visibility_timeout_s in other consumers' hands when the reaper timer
 * asked for it (a dead worker's jobs), then new entries ('>'). A reaping read also removes the
 * consumers of dead workers from the group once they hold nothing pending (XGROUP DELCONSUMER),
 * so the group lists only live ones. A full read polls again at once,
 * a short one after POLL_IDLE_MS, a refused one after the wait the rate gave.
 *
 * Outcomes. Success: XACK + XDEL (one script). Failure: the entry stays pending and its id goes
 * to the delayed set, due after base * 2^(attempt-1) ms (at most backoff_max_ms), with jitter
 * (a random time in the upper half); 'fetch' XCLAIMs it back when due, which counts a delivery.
 * After max_attempts deliveries, or at once for a malformed entry or a permanent failure, the
 * entry is XADDed to the dead-letter stream with job_dead_fields and XACKed + XDELed, in one
 * script. A reply lost to a Redis failure acknowledges nothing: the entry stays pending and is
 * reclaimed after visibility_timeout_s, and the handlers are idempotent (job.h).
 *
 * Stopping. queue_stop ends reading; jobs in hand still finish. queue_abandon (drain timeout)
 * makes queue_done forget jobs without acknowledging them. */
#include "queue.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antre/clock.h"
#include "antre/keys.h"
#include "antre/log.h"
#include "antre/lua_scripts.h"
#include "antre/script.h"

#define POLL_IDLE_MS 100
#define POLL_ERROR_MS 500
#define FETCH_MAX 100 /* most entries one read takes */

struct queue {
    struct event_base *base;
    struct rconn *rc;
    enum job_queue which;
    const struct conf_queue *conf;
    char consumer[300];
    queue_handler_fn *fn;
    void *ctx;
    struct queue_stats *stats;
    char stream[KEYS_MAX], delayed[KEYS_MAX], rate[KEYS_MAX], dead[KEYS_MAX];
    char cursor[JOB_STREAM_ID_MAX + 1]; /* own pending entries read up to here; "" when done */
    struct event *poll_ev, *reap_ev;
    int ready;     /* the group exists on this connection */
    int fetching;  /* a 'fetch' is in flight */
    int reap;      /* the next fetch reclaims idle entries */
    int stopping;  /* no more reads */
    int abandoned; /* no more acknowledgements */
    int in_hand;   /* jobs handed out and not yet finished (their last script included) */
};

static struct script queue_script;

static void schedule(struct queue *q, int ms)
{
    if (q->stopping) return;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(q->poll_ev, &tv);
}

static void on_fetch(void *arg, const redisReply *r, const char *err);

static void poll_now(struct queue *q)
{
    if (q->stopping || q->fetching || !q->ready) return;
    int room = q->conf->concurrency - q->in_hand;
    if (room <= 0) return; /* a finishing job polls again */
    if (room > FETCH_MAX) room = FETCH_MAX;
    char now[24], want[12], rate[32], idle[24];
    snprintf(now, sizeof now, "%lld", (long long)clock_wall_ms());
    snprintf(want, sizeof want, "%d", room);
    snprintf(rate, sizeof rate, "%.6f", q->conf->rate);
    snprintf(idle, sizeof idle, "%lld",
             q->reap ? (long long)q->conf->visibility_timeout_s * 1000 : 0LL);
    const char *keys[] = {q->stream, q->delayed, q->rate};
    const char *args[] = {"fetch", JOB_GROUP, q->consumer, now, want, rate, q->cursor, idle};
    if (script_call(q->rc, &queue_script, on_fetch, q, 3, keys, 8, args) < 0) {
        schedule(q, POLL_ERROR_MS);
        return;
    }
    q->fetching = 1;
    q->reap = 0;
}

static void on_poll_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    poll_now(arg);
}

static void on_reap_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct queue *q = arg;
    q->reap = 1;
    int s = q->conf->visibility_timeout_s / 2;
    struct timeval tv = {s < 1 ? 1 : s, 0};
    event_add(q->reap_ev, &tv);
    poll_now(q);
}

static const redisReply *at(const redisReply *r, size_t i, int type)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements) return NULL;
    return r->element[i]->type == type ? r->element[i] : NULL;
}

/* The continuation of an acknowledging script: what it did is counted, the job forgotten. */
struct finish {
    struct queue *q;
    struct queue_job *qj; /* NULL for a malformed entry dead-lettered at read */
    enum queue_outcome outcome;
    char id[JOB_STREAM_ID_MAX + 1];
};

static void on_finished(void *arg, const redisReply *r, const char *err)
{
    struct finish *f = arg;
    struct queue *q = f->q;
    const char *qn = job_queue_name(q->which);
    if (err || !r || r->type == REDIS_REPLY_ERROR)
        log_warn("queue: could not record an outcome; the entry stays pending queue=%s id=%s "
                 "err=%s",
                 qn, f->id,
                 err ? err
                 : r ? r->str
                     : "?");
    else if (f->outcome == QUEUE_DONE) q->stats->processed++;
    else if (f->outcome == QUEUE_RETRY) q->stats->retried++;
    else if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) q->stats->dead++;
    if (f->qj) {
        q->in_hand--;
        q->stats->in_flight--;
        free(f->qj);
    }
    free(f);
    poll_now(q);
}

static void send_finish(struct queue *q, struct finish *f, int nkeys, const char **keys, int nargs,
                        const char **args)
{
    if (!q->abandoned &&
        script_call(q->rc, &queue_script, on_finished, f, nkeys, keys, nargs, args) == 0)
        return;
    if (f->qj) {
        q->in_hand--;
        q->stats->in_flight--;
        free(f->qj);
    }
    free(f);
}

/* Dead-letter entry ID (fields FV, N items, as delivered) after ATTEMPTS with ERROR. */
static void dead_letter(struct queue *q, struct finish *f, int attempts, const char *error,
                        const char *const *fv, int n)
{
    char nattempts[24], failed_at[24];
    snprintf(nattempts, sizeof nattempts, "%d", attempts);
    snprintf(failed_at, sizeof failed_at, "%lld", (long long)clock_wall_ms());
    char last[JOB_ERROR_MAX + 1];
    snprintf(last, sizeof last, "%s", error);
    const char *keys[] = {q->stream, q->delayed, q->dead};
    const char *args[3 + 8 + 2 * JOB_FIELDS_MAX + 2] = {"dead", JOB_GROUP, f->id};
    int k = 3;
    args[k++] = JOB_F_ORIGINAL_ID;
    args[k++] = f->id;
    args[k++] = JOB_F_ATTEMPTS;
    args[k++] = nattempts;
    args[k++] = JOB_F_LAST_ERROR;
    args[k++] = last;
    args[k++] = JOB_F_FAILED_AT;
    args[k++] = failed_at;
    for (int i = 0; i < n && k < (int)(sizeof args / sizeof args[0]); i++) args[k++] = fv[i];
    log_warn("queue: dead-lettered queue=%s id=%s attempts=%d error=%s", job_queue_name(q->which),
             f->id, attempts, last);
    send_finish(q, f, 3, keys, k, args);
}

/* queue_done, with a retry due no earlier than MIN_DELAY_MS from now. */
static void finish_job(struct queue_job *qj, enum queue_outcome o, const char *error,
                       int64_t min_delay_ms)
{
    struct queue *q = qj->q;
    struct finish *f = calloc(1, sizeof *f);
    if (!f) abort();
    f->q = q;
    f->qj = qj;
    snprintf(f->id, sizeof f->id, "%s", qj->id);
    if (o != QUEUE_DONE) q->stats->failed++;
    if (o == QUEUE_RETRY && qj->attempts >= q->conf->max_attempts) o = QUEUE_PERMANENT;
    f->outcome = o;
    const char *keys[] = {q->stream, q->delayed, q->dead};
    if (o == QUEUE_DONE) {
        const char *args[] = {"ack", JOB_GROUP, qj->id};
        send_finish(q, f, 2, keys, 3, args);
    } else if (o == QUEUE_RETRY) {
        /* Exponential backoff, then a random time in its upper half so that jobs that failed
         * together do not all come back together. */
        int64_t delay = q->conf->backoff_base_ms;
        for (int i = 1; i < qj->attempts && delay < q->conf->backoff_max_ms; i++) delay *= 2;
        if (delay > q->conf->backoff_max_ms) delay = q->conf->backoff_max_ms;
        delay = delay / 2 + (delay > 1 ? random() % (delay / 2 + 1) : 0);
        if (delay < min_delay_ms) delay = min_delay_ms;
        char due[24];
        snprintf(due, sizeof due, "%lld", (long long)(clock_wall_ms() + delay));
        log_info("queue: retry queue=%s id=%s attempt=%d in_ms=%lld error=%s",
                 job_queue_name(q->which), qj->id, qj->attempts, (long long)delay,
                 error ? error : "");
        const char *args[] = {"retry", JOB_GROUP, qj->id, due};
        send_finish(q, f, 2, keys, 4, args);
    } else {
        const char *fv[2 * JOB_FIELDS_MAX];
        char err[128];
        int n = job_fields(&qj->job, fv, 2 * JOB_FIELDS_MAX, err, sizeof err);
        dead_letter(q, f, qj->attempts, error ? error : "failed", fv, n < 0 ? 0 : n);
    }
}

void queue_done(struct queue_job *qj, enum queue_outcome o, const char *error)
{
    finish_job(qj, o, error, 0);
}

void queue_retry_after(struct queue_job *qj, int64_t min_delay_ms, const char *error)
{
    finish_job(qj, QUEUE_RETRY, error, min_delay_ms);
}

/* Hand the entry E ({id, deliveries, {field, value, ...}}) to the handler, or dead-letter it. */
static void start_entry(struct queue *q, const redisReply *e)
{
    const redisReply *id = at(e, 0, REDIS_REPLY_STRING), *cnt = at(e, 1, REDIS_REPLY_INTEGER),
                     *fields = at(e, 2, REDIS_REPLY_ARRAY);
    if (!id || !cnt || !fields || id->len > JOB_STREAM_ID_MAX) return;
    struct queue_job *qj = calloc(1, sizeof *qj);
    if (!qj) abort();
    qj->q = q;
    memcpy(qj->id, id->str, id->len);
    qj->attempts = (int)cnt->integer;
    const char *fv[2 * JOB_FIELDS_MAX + 2];
    size_t lens[2 * JOB_FIELDS_MAX + 2];
    size_t n = fields->elements;
    char err[256] = "";
    int ok = n <= sizeof fv / sizeof fv[0];
    for (size_t i = 0; ok && i < n; i++) {
        if (fields->element[i]->type != REDIS_REPLY_STRING) ok = 0;
        else {
            fv[i] = fields->element[i]->str;
            lens[i] = fields->element[i]->len;
        }
    }
    if (!ok) snprintf(err, sizeof err, "malformed entry: too many fields");
    else if (job_parse(q->which, fv, lens, n, &qj->job, err, sizeof err) < 0) ok = 0;
    if (!ok || qj->attempts > q->conf->max_attempts) {
        /* Malformed entries never become valid; an entry delivered too often (its workers kept
         * dying) is given up too. Either way it is dead-lettered now, with its fields as they
         * were delivered. */
        struct finish *f = calloc(1, sizeof *f);
        if (!f) abort();
        f->q = q;
        f->outcome = QUEUE_PERMANENT;
        memcpy(f->id, qj->id, sizeof f->id);
        char why[300];
        if (ok) snprintf(why, sizeof why, "delivered %d times without finishing", qj->attempts);
        else snprintf(why, sizeof why, "malformed entry: %s", err);
        q->stats->failed++;
        const char *raw[2 * JOB_FIELDS_MAX + 2];
        int m = 0;
        for (size_t i = 0; i < n && m < (int)(sizeof raw / sizeof raw[0]); i++)
            if (fields->element[i]->type == REDIS_REPLY_STRING) raw[m++] = fields->element[i]->str;
        dead_letter(q, f, qj->attempts, why, raw, m & ~1);
        free(qj);
        return;
    }
    q->in_hand++;
    q->stats->in_flight++;
    q->fn(q->ctx, qj);
}

static void on_fetch(void *arg, const redisReply *r, const char *err)
{
    struct queue *q = arg;
    q->fetching = 0;
    if (q->abandoned) return; /* shutting down: the connection is being freed */
    const redisReply *wait = at(r, 0, REDIS_REPLY_INTEGER), *es = at(r, 1, REDIS_REPLY_ARRAY),
                     *cur = at(r, 2, REDIS_REPLY_STRING);
    if (err || !wait || !es || !cur) {
        if (r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "NOGROUP")) q->ready = 0;
        log_warn("queue: read failed queue=%s err=%s", job_queue_name(q->which),
                 err                                 ? err
                 : r && r->type == REDIS_REPLY_ERROR ? r->str
                                                     : "unexpected reply");
        if (!q->ready) queue_connected(q);
        else schedule(q, POLL_ERROR_MS);
        return;
    }
    snprintf(q->cursor, sizeof q->cursor, "%.*s", (int)cur->len, cur->str);
    const redisReply *removed = at(r, 3, REDIS_REPLY_ARRAY);
    for (size_t i = 0; removed && i < removed->elements; i++)
        if (removed->element[i]->type == REDIS_REPLY_STRING)
            log_info("queue: removed the consumer of a dead worker queue=%s consumer=%.*s",
                     job_queue_name(q->which), (int)removed->element[i]->len,
                     removed->element[i]->str);
    int want = q->conf->concurrency - q->in_hand;
    if (want > FETCH_MAX) want = FETCH_MAX;
    for (size_t i = 0; i < es->elements; i++) start_entry(q, es->element[i]);
    if (wait->integer > 0) schedule(q, (int)wait->integer);
    else if ((int)es->elements >= want) schedule(q, 0);
    else schedule(q, POLL_IDLE_MS);
}

static void on_group(void *arg, const redisReply *r, const char *err)
{
    struct queue *q = arg;
    if (q->abandoned) return;
    if (err || !r || (r->type == REDIS_REPLY_ERROR && !strstr(r->str, "BUSYGROUP"))) {
        log_warn("queue: cannot create the consumer group queue=%s err=%s",
                 job_queue_name(q->which),
                 err ? err
                 : r ? r->str
                     : "?");
        struct timeval tv = {0, POLL_ERROR_MS * 1000};
        event_add(q->poll_ev, &tv); /* the poll timer retries through queue_connected */
        return;
    }
    q->ready = 1;
    poll_now(q);
}

void queue_connected(struct queue *q)
{
    q->ready = 0;
    if (q->stopping) return;
    if (rconn_command(q->rc, on_group, q, "XGROUP CREATE %s %s 0 MKSTREAM", q->stream, JOB_GROUP) <
        0)
        schedule(q, POLL_ERROR_MS);
}

static void on_poll_or_group(evutil_socket_t fd, short what, void *arg)
{
    struct queue *q = arg;
    if (!q->ready) queue_connected(q);
    else on_poll_timer(fd, what, arg);
}

struct queue *queue_new(struct event_base *base, struct rconn *rc, enum job_queue which,
                        const struct conf_queue *conf, const char *consumer, queue_handler_fn *fn,
                        void *ctx, struct queue_stats *stats)
{
    if (!queue_script.src) script_init(&queue_script, lua_queue);
    struct queue *q = calloc(1, sizeof *q);
    if (!q) abort();
    q->base = base;
    q->rc = rc;
    q->which = which;
    q->conf = conf;
    snprintf(q->consumer, sizeof q->consumer, "%s", consumer);
    q->fn = fn;
    q->ctx = ctx;
    q->stats = stats;
    q->stats->in_flight = 0; /* a slot reused after a crash: nothing is in hand here yet */
    job_stream_key(q->stream, which);
    job_delayed_key(q->delayed, which);
    job_rate_key(q->rate, which);
    job_dead_key(q->dead, which);
    snprintf(q->cursor, sizeof q->cursor, "0");
    q->poll_ev = evtimer_new(base, on_poll_or_group, q);
    q->reap_ev = evtimer_new(base, on_reap_timer, q);
    if (!q->poll_ev || !q->reap_ev) abort();
    struct timeval tv = {0, 0};
    event_add(q->reap_ev, &tv); /* reap once at start: a dead predecessor's jobs */
    return q;
}

void queue_stop(struct queue *q)
{
    q->stopping = 1;
    event_del(q->poll_ev);
    event_del(q->reap_ev);
}

int queue_in_hand(const struct queue *q) { return q->in_hand; }

void queue_abandon(struct queue *q) { q->abandoned = 1; }

void queue_free(struct queue *q)
{
    if (!q) return;
    event_free(q->poll_ev);
    event_free(q->reap_ev);
    free(q);
}
