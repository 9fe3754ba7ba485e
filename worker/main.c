/* main.c: antre-worker's command line.
 *
 *   antre-worker [-c FILE] [-t] [-j N]
 *
 * Each worker process connects to Redis (starting or joining the embedded one), runs a consumer
 * (queue.c) for every queue that has a handler (`upload`, upload.c: photos checked on the
 * process's thread pool, pool.c, of [worker] photo_threads threads; `register`, register.c,
 * which forwards registrations to [downstream] url through the libcurl client of
 * http_client.c; `verify`, verify.c, which sends verification codes by email and SMS), serves
 * /metrics on [worker] admin_listen (admin.c), re-reads the
 * configuration on SIGHUP ([queue.NAME] changes take effect at the next read, [upload] rules at
 * the next photo), and on SIGTERM/SIGINT stops reading, lets the jobs in hand finish for up to
 * [worker] drain_timeout_ms, then abandons the rest (a photo still on the pool finishes on its
 * thread, but its verdict is neither recorded nor acknowledged: the entry stays pending), and
 * exits 0. It shares the gateway's configuration file and start-up (common/program.c). With
 * `[worker] processes` (or -j N) above 1, a supervisor (common/supervisor.c) runs that many
 * worker processes and restarts crashed ones; libvips (photo_init) and the pool start in each
 * process, after the fork. The process that started the embedded Redis (the supervisor, or the
 * single worker process on a 100 ms timer) restarts it when it dies (redis_embed_tick); a worker
 * that joined the gateway's reconnects to it by itself (rconn). */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "antre/bearer.h"
#include "antre/clock.h"
#include "antre/conf.h"
#include "antre/log.h"
#include "antre/program.h"
#include "antre/rconn.h"
#include "antre/redis_embed.h"
#include "antre/slots.h"
#include "antre/supervisor.h"
#include "photo.h"
#include "pool.h"
#include "queue.h"
#include "register.h"
#include "upload.h"
#include "verify.h"

struct worker {
    struct conf conf;
    struct event_base *base;
    int slot;
    struct rconn *rc;
    struct queue *queues[JOB__QUEUES]; /* NULL: no handler for that queue yet */
    struct pool *pool;                 /* the photo checks' threads */
    struct upload *upload;             /* the upload queue's handler */
    struct register_ctx *reg;          /* the register queue's handler (the downstream) */
    struct verify_ctx *verify;         /* the verify queue's sender */
    struct admin *admin;               /* /metrics; NULL when its address could not be bound */
    struct event *drain_ev;
    int64_t drain_deadline_ms;
    struct bearer admin_token; /* what /metrics asks for ([worker] admin_token_file) */
};

/* The embedded Redis this process started (owner) or joined; zero for a redis:// URL. Its
 * restarts are checked on worker_process's loop only when that runs in place (one process):
 * with several, the supervisor checks them. */
static struct redis_embed embedded;
static int embedded_on_loop;

/* Counters of every worker process, mapped before the fork (admin.h: struct admin_slot). */
static struct slots worker_slots;

/* The handler of each queue; NULL: the queue is not consumed (yet). */
static queue_handler_fn *const handlers[JOB__QUEUES] =
    {[JOB_UPLOAD] = upload_handle, [JOB_REGISTER] = register_handle, [JOB_VERIFY] = verify_handle};

/* Photo jobs waiting for a pool thread, at most (beyond it a job is retried later). The jobs in
 * hand are bounded first by [queue.upload] concurrency. */
#define POOL_QUEUE_MAX 4096
#define PHOTO_THREADS_AUTO_MAX 4

static void on_redis_state(void *arg, enum rconn_state st)
{
    struct worker *w = arg;
    if (st == RCONN_CONNECTED) {
        log_info("worker: redis connected; waiting for work process=%d", w->slot);
        for (int i = 0; i < JOB__QUEUES; i++)
            if (w->queues[i]) queue_connected(w->queues[i]);
    } else log_warn("worker: redis connection lost; reconnecting process=%d", w->slot);
}

static void embedded_tick(void *arg)
{
    (void)arg;
    redis_embed_tick(&embedded);
}

static void on_embedded_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    embedded_tick(arg);
}

static void other_ended(pid_t pid, int status, void *arg)
{
    (void)arg;
    redis_embed_reaped(&embedded, pid, status);
}

static int in_hand(const struct worker *w)
{
    int n = 0;
    for (int i = 0; i < JOB__QUEUES; i++)
        if (w->queues[i]) n += queue_in_hand(w->queues[i]);
    return n;
}

/* While draining: stop once nothing is in hand, or at the deadline leave what is (it stays
 * pending, to be reclaimed by another worker after visibility_timeout_s). */
static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    int n = in_hand(w);
    if (n && clock_wall_ms() < w->drain_deadline_ms) {
        struct timeval tv = {0, 20000};
        event_add(w->drain_ev, &tv);
        return;
    }
    if (n) log_warn("worker: drain timeout; leaving jobs pending jobs=%d process=%d", n, w->slot);
    /* No verdict of a photo still on the pool may be recorded from now on: its job is left. */
    if (w->pool) pool_stop(w->pool);
    for (int i = 0; i < JOB__QUEUES; i++)
        if (w->queues[i]) queue_abandon(w->queues[i]);
    event_base_loopexit(w->base, NULL);
}

/* Load [worker] admin_token_file; on failure the token in use stays. 0, or -1 (logged). */
static int load_admin_token(struct worker *w)
{
    char err[CONF_STR + 100];
    if (bearer_load(&w->admin_token, w->conf.worker.admin_token_file, err, sizeof err) == 0)
        return 0;
    log_error("worker: admin_token_file: %s process=%d", err, w->slot);
    return -1;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct worker *w = arg;
    (void)what;
    if (sig == SIGHUP) {
        if (program_reload(&w->conf, "worker", 1) == 0) {
            load_admin_token(w);
            char err[CONF_STR + 200];
            if (w->verify && verify_reload(w->verify, err, sizeof err) < 0)
                log_error("worker: verify: %s; keeping the keys in use", err);
            log_info("worker: configuration reloaded path=%s", w->conf.path);
        }
        return;
    }
    if (w->drain_deadline_ms) return; /* already draining */
    log_info("worker: %s received; stopping", strsignal((int)sig));
    for (int i = 0; i < JOB__QUEUES; i++)
        if (w->queues[i]) queue_stop(w->queues[i]);
    w->drain_deadline_ms = clock_wall_ms() + w->conf.worker.drain_timeout_ms;
    on_drain_tick(-1, 0, w);
}

/* Start W's parts on its loop: libvips and the photo pool (here, in the process that uses them,
 * before any pool thread exists), the Redis connection to URL, each queue's handler and
 * consumer, the admin listener. 0, or -1 with the reason in ERR; worker_stop undoes whatever was
 * started either way. */
static int worker_start(struct worker *w, const char *url, char *err, size_t errlen)
{
    const struct conf *conf = &w->conf;
    if (photo_init(NULL, err, errlen) < 0) return -1;
    int threads = conf->worker.photo_threads ? conf->worker.photo_threads
                                             : pool_default_threads(PHOTO_THREADS_AUTO_MAX);
    w->pool = pool_new(w->base, threads, POOL_QUEUE_MAX, upload_thread_exit, err, errlen);
    if (!w->pool) return -1;
    struct rconn_opts ro = {.url = url,
                            .timeout_ms = conf->redis.timeout_ms,
                            .max_pending = conf->redis.max_pending};
    char why[400];
    if (!(w->rc = rconn_new(w->base, &ro, why, sizeof why))) {
        snprintf(err, errlen, "redis: %s", why);
        return -1;
    }
    struct admin_slot *stats = slots_at(&worker_slots, w->slot);
    w->upload = upload_new(w->rc, w->pool, &w->conf, &stats->photo);
    if (!(w->reg = register_new(w->base, w->rc, &w->conf, why, sizeof why))) {
        snprintf(err, errlen, "downstream: %s", why);
        return -1;
    }
    if (!(w->verify = verify_new(w->base, w->rc, &w->conf, &stats->code, why, sizeof why))) {
        snprintf(err, errlen, "verify: %s", why);
        return -1;
    }
    void *ctx[JOB__QUEUES] =
        {[JOB_UPLOAD] = w->upload, [JOB_REGISTER] = w->reg, [JOB_VERIFY] = w->verify};
    char host[256] = "localhost", consumer[300];
    gethostname(host, sizeof host - 1);
    snprintf(consumer, sizeof consumer, "%s:%ld", host, (long)getpid());
    srandom((unsigned)getpid() ^ (unsigned)time(NULL));
    for (int i = 0; i < JOB__QUEUES; i++)
        if (handlers[i])
            w->queues[i] = queue_new(w->base, w->rc, (enum job_queue)i, &w->conf.queue[i], consumer,
                                     handlers[i], ctx[i], &stats->q[i]);
    w->admin = admin_new(w->base, &conf->worker.admin_listen, w->rc, &worker_slots, &w->admin_token,
                         why, sizeof why);
    if (!w->admin)
        log_error("worker: admin listener: %s; /metrics is off process=%d", why, w->slot);
    rconn_set_state_cb(w->rc, on_redis_state, w);
    log_info("worker: started redis=%s process=%d consumer=%s photo_threads=%d",
             strncmp(url, "unix:", 5) == 0 ? "unix" : "tcp", w->slot, consumer, threads);
    return 0;
}

/* Undo worker_start, whatever part of it ran. Every job still in hand is abandoned: no verdict of
 * a photo still on the pool is delivered (pool_stop), queue_done acknowledges nothing, running
 * photo work ends on its thread and what was not delivered is reported cancelled (pool_free,
 * before rconn_free: a cancelled job calls no Redis); freeing the connection then calls its
 * pending callbacks with "closed". */
static void worker_stop(struct worker *w)
{
    if (w->pool) pool_stop(w->pool);
    for (int i = 0; i < JOB__QUEUES; i++)
        if (w->queues[i]) queue_abandon(w->queues[i]);
    pool_free(w->pool);
    w->pool = NULL;
    if (w->rc) rconn_free(w->rc);
    w->rc = NULL;
    register_free(w->reg);
    verify_free(w->verify);
    admin_free(w->admin);
    for (int i = 0; i < JOB__QUEUES; i++) queue_free(w->queues[i]);
    upload_free(w->upload);
}

/* One worker process (slot SLOT) with its own copy of CONF. 0 after SIGTERM/SIGINT, 1 when it
 * could not start. */
static int worker_process(const struct conf *conf, int slot, void *arg)
{
    const char *url = arg;
    static struct worker w;
    w.conf = *conf;
    w.slot = slot;
    signal(SIGPIPE, SIG_IGN);
    if (load_admin_token(&w) < 0) return 1;
    w.base = event_base_new();
    if (!w.base) {
        log_error("worker: cannot create the event loop");
        return 1;
    }
    /* Signals first: a SIGTERM that arrives while Redis is being reached still stops cleanly. */
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    struct event *ev[3];
    for (int i = 0; i < 3; i++) {
        ev[i] = evsignal_new(w.base, sigs[i], on_signal, &w);
        event_add(ev[i], NULL);
    }
    supervisor_child_ready();
    char err[512];
    w.drain_ev = evtimer_new(w.base, on_drain_tick, &w);
    struct event *embedded_ev = NULL;
    if (embedded_on_loop) {
        embedded_ev = event_new(w.base, -1, EV_PERSIST, on_embedded_timer, NULL);
        struct timeval tv = {0, 100000};
        event_add(embedded_ev, &tv);
    }
    int ok = worker_start(&w, url, err, sizeof err) == 0;
    if (ok) event_base_dispatch(w.base);
    else log_error("worker: %s process=%d", err, slot);
    worker_stop(&w);
    if (embedded_ev) event_free(embedded_ev);
    event_free(w.drain_ev);
    for (int i = 0; i < 3; i++) event_free(ev[i]);
    event_base_free(w.base);
    if (!ok) return 1;
    log_info("worker: stopped process=%d", slot);
    return 0;
}

static int drain_timeout_ms(const struct conf *conf) { return conf->worker.drain_timeout_ms; }

int main(int argc, char **argv)
{
    static struct conf conf;
    struct program prog = {.name = "antre-worker",
                           .conf = &conf,
                           .jobs_help = "worker processes (overrides [worker] processes)"};
    if (program_start(&prog, argc, argv) < 0) return prog.exit_status;
    if (prog.jobs) conf.worker.processes = prog.jobs;

    char err[512];
    if (slots_map(&worker_slots, conf.worker.processes, sizeof(struct admin_slot)) < 0) {
        log_error("worker: cannot map the metrics slots");
        return 1;
    }
    struct redis_embed *re = &embedded;
    const char *url = redis_embed_for(&conf.redis, re, err, sizeof err);
    if (!url) {
        log_error("worker: embedded redis: %s", err);
        return 1;
    }
    struct supervisor_opts so = {.what = "worker",
                                 .processes = conf.worker.processes,
                                 .drain_timeout_ms = drain_timeout_ms,
                                 .run = worker_process,
                                 .arg = (void *)url,
                                 .other_ended = other_ended,
                                 .tick = embedded_tick};
    embedded_on_loop = so.processes == 1 && re->owner;
    int rc = so.processes == 1 ? worker_process(&conf, 0, (void *)url) : supervisor_run(&conf, &so);
    redis_embed_stop(re, 10000);
    return rc;
}
