/* main.c: antre-worker's command line.
 *
 *   antre-worker [-c FILE] [-t]
 *
 * For now the worker connects to Redis (starting or joining the embedded one), logs its
 * connection state, and waits for SIGTERM/SIGINT; the queue consumers come with the intake
 * issues. It shares the gateway's configuration file. */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "antre/conf.h"
#include "antre/log.h"
#include "antre/rconn.h"
#include "antre/redis_embed.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: antre-worker [-c FILE] [-t]\n"
               "  -c FILE  configuration file (default conf/antre.conf)\n"
               "  -t       check the configuration file, print ok or the errors, and exit\n");
}

static void on_redis_state(void *arg, enum rconn_state st)
{
    (void)arg;
    if (st == RCONN_CONNECTED) log_info("worker: redis connected; waiting for work");
    else log_warn("worker: redis connection lost; reconnecting");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    log_info("worker: %s received; stopping", strsignal((int)sig));
    event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv)
{
    const char *path = "conf/antre.conf";
    int check_only = 0, opt;
    while ((opt = getopt(argc, argv, "c:th")) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 't': check_only = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    log_set_name("antre-worker");
    static struct conf conf;
    char err[8192];
    if (conf_load(&conf, path, err, sizeof err) < 0) {
        fputs(err, stderr);
        return 1;
    }
    if (check_only) {
        puts("ok");
        return 0;
    }
    log_set_level((enum log_level)log_level_parse(conf.gateway.log_level));
    signal(SIGPIPE, SIG_IGN);

    struct redis_embed re;
    const char *url = redis_embed_for(&conf.redis, &re, err, sizeof err);
    if (!url) {
        log_error("worker: embedded redis: %s", err);
        return 1;
    }

    struct event_base *base = event_base_new();
    struct rconn_opts ro = {.url = url,
                            .timeout_ms = conf.redis.timeout_ms,
                            .max_pending = conf.redis.max_pending};
    struct rconn *rc = rconn_new(base, &ro, err, sizeof err);
    if (!rc) {
        log_error("worker: redis: %s", err);
        event_base_free(base);
        redis_embed_stop(&re, 10000);
        return 1;
    }
    rconn_set_state_cb(rc, on_redis_state, NULL);
    struct event *st = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *si = evsignal_new(base, SIGINT, on_signal, base);
    event_add(st, NULL);
    event_add(si, NULL);
    log_info("worker: started redis=%s", strncmp(url, "unix:", 5) == 0 ? "unix" : "tcp");
    event_base_dispatch(base);
    rconn_free(rc);
    event_free(st);
    event_free(si);
    event_base_free(base);
    redis_embed_stop(&re, 10000);
    log_info("worker: stopped");
    return 0;
}
