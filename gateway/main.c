/* main.c: antre-gateway's command line.
 *
 *   antre-gateway [-c FILE] [-t]
 *
 * Loads the configuration (common/program.c: every error printed as file:line), starts the
 * embedded Redis when `[redis] url = embedded`, then runs one gateway process in place or a
 * supervisor with N children, and stops the embedded Redis last, after the gateways have
 * drained. While they run, the process that started the embedded Redis (the supervisor, or the
 * single gateway process on its 100 ms tick) reaps it when it dies and restarts it
 * (redis_embed_tick). */
#include <stdio.h>

#include "antre/conf.h"
#include "antre/log.h"
#include "antre/program.h"
#include "antre/redis_embed.h"
#include "antre/supervisor.h"
#include "applicant.h"
#include "metrics.h"
#include "server.h"

/* The embedded Redis this process started (owner) or joined; zero for a redis:// URL. */
static struct redis_embed embedded;

static void embedded_tick(void *arg)
{
    (void)arg;
    redis_embed_tick(&embedded);
}

static void other_ended(pid_t pid, int status, void *arg)
{
    (void)arg;
    redis_embed_reaped(&embedded, pid, status);
}

static int run_child(const struct conf *conf, int slot, void *arg)
{
    return server_run(conf, slot, arg, 1);
}

static void child_ended(int slot, void *arg)
{
    (void)arg;
    server_child_ended(slot);
}

static int drain_timeout_ms(const struct conf *conf) { return conf->gateway.drain_timeout_ms; }

int main(int argc, char **argv)
{
    static struct conf conf;
    struct program prog = {.name = "antre-gateway", .conf = &conf, .check = applicant_check_conf};
    if (program_start(&prog, argc, argv) < 0) return prog.exit_status;

    char err[512];
    struct redis_embed *re = &embedded;
    const char *url = redis_embed_for(&conf.redis, re, err, sizeof err);
    if (!url) {
        log_error("main: embedded redis: %s", err);
        return 1;
    }

    int n = conf.gateway.processes;
    if (metrics_init(n) < 0) {
        log_error("main: cannot map the metrics slots");
        redis_embed_stop(re, 10000);
        return 1;
    }
    if (server_init_shared(&conf, n) < 0) {
        redis_embed_stop(re, 10000);
        return 1;
    }
    struct supervisor_opts so = {.what = "gateway",
                                 .processes = n,
                                 .drain_timeout_ms = drain_timeout_ms,
                                 .run = run_child,
                                 .arg = (void *)url,
                                 .child_ended = child_ended,
                                 .other_ended = other_ended,
                                 .tick = embedded_tick};
    if (n == 1 && re->owner) server_set_tick_hook(embedded_tick, NULL);
    int rc = n == 1 ? server_run(&conf, 0, url, 0) : supervisor_run(&conf, &so);
    redis_embed_stop(re, 10000);
    return rc;
}
