/* main.c: antre-gateway's command line.
 *
 *   antre-gateway [-c FILE] [-t]
 *
 * Loads the configuration (every error printed as file:line), starts the embedded Redis when
 * `[redis] url = embedded`, then runs one gateway process in place or a supervisor with N
 * children, and stops the embedded Redis last, after the gateways have drained. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "antre/conf.h"
#include "antre/log.h"
#include "antre/redis_embed.h"
#include "metrics.h"
#include "server.h"
#include "supervisor.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: antre-gateway [-c FILE] [-t]\n"
               "  -c FILE  configuration file (default conf/antre.conf)\n"
               "  -t       check the configuration file, print ok or the errors, and exit\n");
}

int main(int argc, char **argv)
{
    const char *path = "conf/antre.conf";
    int check_only = 0;
    int opt;
    while ((opt = getopt(argc, argv, "c:th")) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 't': check_only = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    log_set_name("antre-gateway");

    static struct conf conf;
    char err[8192];
    if (conf_load(&conf, path, err, sizeof err) < 0) {
        fputs(err, stderr);
        if (check_only) return 1;
        log_error("main: configuration has errors; not starting path=%s", path);
        return 1;
    }
    if (check_only) {
        puts("ok");
        return 0;
    }
    log_set_level((enum log_level)log_level_parse(conf.gateway.log_level));

    struct redis_embed re;
    const char *url = redis_embed_for(&conf.redis, &re, err, sizeof err);
    if (!url) {
        log_error("main: embedded redis: %s", err);
        return 1;
    }

    int n = conf.gateway.processes;
    if (metrics_init(n) < 0) {
        log_error("main: cannot map the metrics slots");
        redis_embed_stop(&re, 10000);
        return 1;
    }
    int rc = n == 1 ? server_run(&conf, 0, url, 0) : supervisor_run(&conf, url);
    redis_embed_stop(&re, 10000);
    return rc;
}
