/* supervisor.c: see supervisor.h.
 *
 * The parent runs no event loop: it blocks the signals it cares about and takes them one at a
 * time with sigtimedwait(), which is both simpler and safer than handlers that must only set
 * flags. Children restore the default signal state before running the program's callback. */
#include "antre/supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "antre/log.h"
#include "antre/program.h"

#define FAST_DEATH_S 2 /* a child dying sooner than this after start is "crash-looping" */
#define RESTART_DELAY_MAX_S 8
#define STOP_MARGIN_MS 5000

struct child {
    pid_t pid;
    time_t started;
    time_t restart_at; /* 0: not waiting to restart */
    int fast_deaths;
};

/* Fork child SLOT; its pid, or 0 when fork failed (the caller retries later). */
static pid_t start_child(const struct supervisor_opts *o, struct conf *conf, int slot,
                         const sigset_t *old_mask)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        log_error("supervisor: fork failed err=%s; retrying in 1 s", strerror(errno));
        return 0;
    }
    if (pid == 0) {
        /* The child keeps TERM, INT and HUP blocked until its loop handles them
         * (supervisor_child_ready): a SIGHUP sent while it starts waits instead of killing it. */
        sigset_t mask = *old_mask;
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        signal(SIGCHLD, SIG_DFL);
        sigprocmask(SIG_SETMASK, &mask, NULL);
        /* A supervisor killed outright (SIGKILL, OOM) sends its children SIGTERM: they drain
         * and exit rather than run on as orphans nobody restarts or stops. A parent already
         * gone before the prctl is seen by getppid. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent) _exit(1);
        _exit(o->run(conf, slot, o->arg));
    }
    log_info("supervisor: started %s process=%d pid=%d", o->what, slot, (int)pid);
    return pid;
}

static void describe_exit(int status, char *buf, size_t len)
{
    if (WIFEXITED(status)) snprintf(buf, len, "exit=%d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) snprintf(buf, len, "signal=%s", strsignal(WTERMSIG(status)));
    else snprintf(buf, len, "status=%d", status);
}

int supervisor_run(struct conf *conf, const struct supervisor_opts *o)
{
    int n = o->processes;
    if (n < 1 || n > SUPERVISOR_MAX_CHILDREN) {
        log_error("supervisor: %d %s processes is out of bounds (1-%d)", n, o->what,
                  SUPERVISOR_MAX_CHILDREN);
        return 1;
    }
    struct child kids[SUPERVISOR_MAX_CHILDREN];
    memset(kids, 0, sizeof kids);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &old);

    for (int i = 0; i < n; i++) {
        kids[i].pid = start_child(o, conf, i, &old);
        kids[i].started = time(NULL);
        if (!kids[i].pid) kids[i].restart_at = kids[i].started + 1;
    }

    int stopping = 0, failed = 0;
    struct timespec stop_deadline = {0, 0};
    for (;;) {
        int alive = 0;
        for (int i = 0; i < n; i++) alive += kids[i].pid > 0;
        if (stopping && alive == 0) break;

        struct timespec wait = {0, 200 * 1000 * 1000};
        siginfo_t info;
        int sig = sigtimedwait(&set, &info, &wait);
        time_t now = time(NULL);

        if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping) {
                log_info("supervisor: stopping %d %s processes", alive, o->what);
                stopping = 1;
                clock_gettime(CLOCK_MONOTONIC, &stop_deadline);
                int ms = o->drain_timeout_ms(conf) + STOP_MARGIN_MS;
                stop_deadline.tv_sec += ms / 1000 + 1;
                for (int i = 0; i < n; i++)
                    if (kids[i].pid > 0) kill(kids[i].pid, SIGTERM);
            }
        } else if (sig == SIGHUP) {
            program_reload(conf, "supervisor", 0);
            for (int i = 0; i < n; i++)
                if (kids[i].pid > 0) kill(kids[i].pid, SIGHUP);
        }

        /* Reap every child that ended (SIGCHLD may stand for several). */
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            int mine = 0;
            for (int i = 0; i < n; i++) mine |= kids[i].pid == pid;
            if (!mine && o->other_ended) o->other_ended(pid, status, o->arg);
            for (int i = 0; i < n; i++) {
                if (kids[i].pid != pid) continue;
                kids[i].pid = 0;
                if (o->child_ended) o->child_ended(i, o->arg);
                char how[64];
                describe_exit(status, how, sizeof how);
                if (stopping) {
                    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
                    log_info("supervisor: %s process=%d stopped %s", o->what, i, how);
                    break;
                }
                kids[i].fast_deaths =
                    now - kids[i].started < FAST_DEATH_S ? kids[i].fast_deaths + 1 : 0;
                int delay = kids[i].fast_deaths ? 1 << (kids[i].fast_deaths - 1) : 0;
                if (delay > RESTART_DELAY_MAX_S) delay = RESTART_DELAY_MAX_S;
                log_error("supervisor: %s process=%d pid=%d died %s; restarting in %d s", o->what,
                          i, (int)pid, how, delay);
                kids[i].restart_at = now + delay;
                break;
            }
        }
        if (o->tick) o->tick(o->arg);

        if (!stopping) {
            for (int i = 0; i < n; i++) {
                if (kids[i].pid || !kids[i].restart_at || now < kids[i].restart_at) continue;
                kids[i].restart_at = 0;
                kids[i].pid = start_child(o, conf, i, &old);
                kids[i].started = now;
                if (!kids[i].pid) kids[i].restart_at = now + 1;
            }
        } else {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            if (t.tv_sec > stop_deadline.tv_sec) {
                for (int i = 0; i < n; i++)
                    if (kids[i].pid > 0) {
                        log_warn("supervisor: %s process=%d did not stop; killing", o->what, i);
                        kill(kids[i].pid, SIGKILL);
                    }
                failed = 1;
                stop_deadline.tv_sec = t.tv_sec + 3600; /* kill once; keep reaping */
            }
        }
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return failed;
}

void supervisor_child_ready(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}
