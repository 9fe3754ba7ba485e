/* main.c: antre-worker's command line.
 *
 *   antre-worker [-c FILE] [-t] [-j N]
 *
 * For now each worker process connects to Redis (starting or joining the embedded one), logs
 * its connection state, re-reads the configuration on SIGHUP, and waits for SIGTERM/SIGINT; the
 * queue consumers come with the worker issue. It shares the gateway's configuration file and
 * start-up (common/program.c). With `[worker] processes` (or -j N) above 1, a supervisor
 * (common/supervisor.c) runs that many worker processes and restarts crashed ones. */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "antre/conf.h"
#include "antre/log.h"
#include "antre/program.h"
#include "antre/rconn.h"
#include "antre/redis_embed.h"
#include "antre/supervisor.h"

struct worker {
    struct conf conf;
    struct event_base *base;
    int slot;
};

static void on_redis_state(void *arg, enum rconn_state st)
{
    const struct worker *w = arg;
    if (st == RCONN_CONNECTED)
        log_info("worker: redis connected; waiting for work process=%d", w->slot);
    else log_warn("worker: redis connection lost; reconnecting process=%d", w->slot);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct worker *w = arg;
    (void)what;
    if (sig == SIGHUP) {
        if (program_reload(&w->conf, "worker", 1) == 0)
            log_info("worker: configuration reloaded path=%s", w->conf.path);
        return;
    }
    log_info("worker: %s received; stopping", strsignal((int)sig));
    event_base_loopexit(w->base, NULL);
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
    char err[512];
    struct rconn_opts ro = {.url = url,
                            .timeout_ms = conf->redis.timeout_ms,
                            .max_pending = conf->redis.max_pending};
    struct rconn *rc = rconn_new(w.base, &ro, err, sizeof err);
    if (rc) {
        rconn_set_state_cb(rc, on_redis_state, &w);
        log_info("worker: started redis=%s process=%d",
                 strncmp(url, "unix:", 5) == 0 ? "unix" : "tcp", slot);
        event_base_dispatch(w.base);
        rconn_free(rc);
    } else {
        log_error("worker: redis: %s", err);
    }
    for (int i = 0; i < 3; i++) event_free(ev[i]);
    event_base_free(w.base);
    if (!rc) return 1;
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
    struct redis_embed re;
    const char *url = redis_embed_for(&conf.redis, &re, err, sizeof err);
    if (!url) {
        log_error("worker: embedded redis: %s", err);
        return 1;
    }
    struct supervisor_opts so = {.what = "worker",
                                 .processes = conf.worker.processes,
                                 .drain_timeout_ms = drain_timeout_ms,
                                 .run = worker_process,
                                 .arg = (void *)url};
    int rc = so.processes == 1 ? worker_process(&conf, 0, (void *)url) : supervisor_run(&conf, &so);
    redis_embed_stop(&re, 10000);
    return rc;
}
