/* program.c: the common command line and configuration start-up (see program.h). */
#include "antre/program.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "antre/log.h"

static void usage(const struct program *p, FILE *f)
{
    fprintf(f, "usage: %s [-c FILE] [-t]%s\n", p->name, p->jobs_help ? " [-j N]" : "");
    fprintf(f, "  -c FILE  configuration file (default conf/antre.conf)\n"
               "  -t       check the configuration file, print ok or the errors, and exit\n");
    if (p->jobs_help) fprintf(f, "  -j N     %s (1-%d)\n", p->jobs_help, PROGRAM_MAX_JOBS);
}

/* -j's argument as 1..PROGRAM_MAX_JOBS, or 0 when it is anything else. */
static int parse_jobs(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < 1 || v > PROGRAM_MAX_JOBS) return 0;
    return (int)v;
}

static void set_level(const struct conf *conf)
{
    log_set_level((enum log_level)log_level_parse(conf->log.level));
}

int program_start(struct program *p, int argc, char **argv)
{
    p->conf_path = "conf/antre.conf";
    p->jobs = 0;
    p->exit_status = 0;
    int check_only = 0, opt;
    const char *opts = p->jobs_help ? "c:thj:" : "c:th";
    while ((opt = getopt(argc, argv, opts)) != -1) {
        switch (opt) {
        case 'c': p->conf_path = optarg; break;
        case 't': check_only = 1; break;
        case 'j':
            p->jobs = parse_jobs(optarg);
            if (p->jobs) break;
            fprintf(stderr, "%s: -j %s: not a number from 1 to %d\n", p->name, optarg,
                    PROGRAM_MAX_JOBS);
            usage(p, stderr);
            p->exit_status = 2;
            return -1;
        case 'h': usage(p, stdout); return -1;
        default:
            usage(p, stderr);
            p->exit_status = 2;
            return -1;
        }
    }
    log_set_name(p->name);

    char err[8192];
    if (conf_load(p->conf, p->conf_path, err, sizeof err) < 0) {
        fputs(err, stderr);
        if (!check_only)
            log_error("main: configuration has errors; not starting path=%s", p->conf_path);
        p->exit_status = 1;
        return -1;
    }
    if (check_only && p->check && p->check(p->conf, err, sizeof err) < 0) {
        fputs(err, stderr);
        p->exit_status = 1;
        return -1;
    }
    if (check_only) {
        puts("ok");
        return -1;
    }
    set_level(p->conf);
    return 0;
}

int program_reload(struct conf *conf, const char *component, int log_notes)
{
    struct conf *fresh = malloc(sizeof *fresh);
    char err[8192], note[4096];
    if (!fresh) abort();
    if (conf_load(fresh, conf->path, err, sizeof err) < 0) {
        /* One log line per error so each names its file:line. */
        for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n"))
            log_error("%s: reload refused, keeping the running configuration: %s", component, line);
        free(fresh);
        return -1;
    }
    if (conf_reload_merge(conf, fresh, note, sizeof note) > 0 && log_notes)
        for (char *line = strtok(note, "\n"); line; line = strtok(NULL, "\n"))
            log_warn("%s: reload: %s", component, line);
    *conf = *fresh;
    free(fresh);
    set_level(conf);
    return 0;
}
