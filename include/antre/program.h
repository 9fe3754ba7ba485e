/* program.h: the start-up every antre program shares.
 *
 *   antre-NAME [-c FILE] [-t] [-j N]
 *
 * program_start() parses the common options, names the log, loads the configuration (every
 * error printed as file:line on standard error), answers `-t` (prints ok or the errors) and `-h`,
 * and sets the log level from `[log] level`. `-j N` is offered only by programs that run several
 * processes and say which directive it overrides. */
#ifndef ANTRE_PROGRAM_H
#define ANTRE_PROGRAM_H

#include "antre/conf.h"

#define PROGRAM_MAX_JOBS 64

struct program {
    /* set by the caller */
    const char *name;      /* "antre-gateway": shown in the usage and in every log line */
    struct conf *conf;     /* filled by program_start (static storage: it is large) */
    const char *jobs_help; /* NULL: no -j; else its usage line, e.g. "worker processes" */
    /* NULL, or what -t checks beyond the file (key files it names): 0, or -1 with one
     * newline-ended line per error in ERR */
    int (*check)(const struct conf *conf, char *err, size_t errlen);
    /* set by program_start */
    const char *conf_path; /* -c FILE, default conf/antre.conf */
    int jobs;              /* -j N (1..PROGRAM_MAX_JOBS), 0 when not given */
    int exit_status;       /* when program_start returns -1: what main() returns */
};

/* Parse ARGV and load P->conf. Returns 0 when the program should run (configuration loaded,
 * log level set), or -1 when it must exit now with P->exit_status: 0 after -h or a clean -t,
 * 1 when the configuration has errors (printed), 2 on a bad command line (usage printed). */
int program_start(struct program *p, int argc, char **argv);

/* Reload CONF from the file it came from (SIGHUP): on success every restart-only directive
 * keeps its running value (conf_reload_merge; with LOG_NOTES each such change is logged as a
 * warning), CONF is replaced and the log level follows `[log] level`; returns 0. When the file
 * has errors CONF is left as it was, each error is logged on its own line as `COMPONENT: reload
 * refused, ...: file:line: ...`, and -1 is returned. */
int program_reload(struct conf *conf, const char *component, int log_notes);

#endif
