/* supervisor.h: the parent of a program's N processes (`[gateway] processes`,
 * `[worker] processes`). */
#ifndef ANTRE_SUPERVISOR_H
#define ANTRE_SUPERVISOR_H

#include <sys/types.h>

#include "antre/conf.h"

#define SUPERVISOR_MAX_CHILDREN 64

/* Runs in a freshly forked child with the default signal state: process number SLOT
 * (0..processes-1) with the current configuration CONF. Its return value is the child's exit
 * status (0 after a clean stop on SIGTERM/SIGINT). */
typedef int (*supervisor_child_fn)(const struct conf *conf, int slot, void *arg);

struct supervisor_opts {
    const char *what; /* names the children in log lines: "gateway", "worker" */
    int processes;    /* children to run, 1..SUPERVISOR_MAX_CHILDREN */
    /* How long a child may drain after SIGTERM, read from the configuration when stopping (so
     * a reload's value counts); the children are killed after it plus a margin. */
    int (*drain_timeout_ms)(const struct conf *conf); /* required */
    supervisor_child_fn run;                          /* required */
    void *arg;                                        /* passed to RUN (borrowed) */
    /* Optional: called in the supervisor when child SLOT has ended (reaped), before its
     * replacement is forked, to clear what the dead process left in shared memory. */
    void (*child_ended)(int slot, void *arg);
    /* Optional: called with PID and its wait STATUS when the supervisor reaped a process that is
     * not one of its children (another child of this process, e.g. the embedded redis-server
     * forked before supervisor_run): its status would be lost otherwise. */
    void (*other_ended)(pid_t pid, int status, void *arg);
    /* Optional: called on every turn of the loop (at least every 200 ms and after each signal),
     * after the ended processes were reaped, also while stopping. Must not block for long. */
    void (*tick)(void *arg);
};

/* Fork O->processes children running O->run and keep them running: a child that dies unasked
 * is restarted (with a growing delay if it keeps dying at start-up). SIGHUP re-reads the
 * configuration here (so restarted children get the current one) and is passed on;
 * SIGTERM/SIGINT are passed on and the children are waited for (SIGKILL after the drain
 * timeout plus a margin). Returns 0 when all children stopped cleanly, 1 otherwise (or when
 * O->processes is out of bounds). CONF is updated in place by reloads. */
int supervisor_run(struct conf *conf, const struct supervisor_opts *o);

/* Called by a process once its event loop handles SIGTERM, SIGINT and SIGHUP: a child of the
 * supervisor starts with them blocked, so one sent while it starts is delivered now instead of
 * killing it. Harmless outside the supervisor. */
void supervisor_child_ready(void);

#endif
