/* supervisor.c: see supervisor.h.
 *
 * The parent runs no event loop: it blocks the signals it cares about and takes them one at a
 * time with sigtimedwait(), which is both simpler and safer than handlers that must only set
 * flags. Children restore the default signal state before running the server. */
#include "supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "antre/log.h"
#include "server.h"

#define MAX_CHILDREN 64
#define FAST_DEATH_S 2       /* a child dying sooner than this after start is "crash-looping" */
#define RESTART_DELAY_MAX_S 8
#define STOP_MARGIN_MS 5000

struct child {
    pid_t pid;
    time_t started;
    time_t restart_at;   /* 0: not waiting to restart */
    int fast_deaths;
};

static pid_t start_child(struct conf *conf, int slot, const char *redis_url,
                         const sigset_t *old_mask)
{
    pid_t pid = fork();
    if (pid < 0) {
        log_error("supervisor: fork failed err=%s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        signal(SIGCHLD, SIG_DFL);
        sigprocmask(SIG_SETMASK, old_mask, NULL);
        _exit(server_run(conf, slot, redis_url, 1));
    }
    log_info("supervisor: started gateway process=%d pid=%d", slot, (int)pid);
    return pid;
}

static void describe_exit(int status, char *buf, size_t len)
{
    if (WIFEXITED(status)) snprintf(buf, len, "exit=%d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) snprintf(buf, len, "signal=%s", strsignal(WTERMSIG(status)));
    else snprintf(buf, len, "status=%d", status);
}

static void reload(struct conf *conf)
{
    struct conf *fresh = malloc(sizeof *fresh);
    char err[8192], note[4096];
    if (!fresh) abort();
    if (conf_load(fresh, conf->path, err, sizeof err) < 0) {
        for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n"))
            log_error("supervisor: reload refused: %s", line);
    } else {
        conf_reload_merge(conf, fresh, note, sizeof note);
        *conf = *fresh;
    }
    free(fresh);
}

int supervisor_run(struct conf *conf, const char *redis_url)
{
    int n = conf->gateway.processes;
    struct child kids[MAX_CHILDREN];
    memset(kids, 0, sizeof kids);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &old);

    for (int i = 0; i < n; i++) {
        kids[i].pid = start_child(conf, i, redis_url, &old);
        kids[i].started = time(NULL);
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
                log_info("supervisor: stopping %d gateway processes", alive);
                stopping = 1;
                clock_gettime(CLOCK_MONOTONIC, &stop_deadline);
                int ms = conf->gateway.drain_timeout_ms + STOP_MARGIN_MS;
                stop_deadline.tv_sec += ms / 1000 + 1;
                for (int i = 0; i < n; i++)
                    if (kids[i].pid > 0) kill(kids[i].pid, SIGTERM);
            }
        } else if (sig == SIGHUP) {
            reload(conf);
            for (int i = 0; i < n; i++)
                if (kids[i].pid > 0) kill(kids[i].pid, SIGHUP);
        }

        /* Reap every child that ended (SIGCHLD may stand for several). */
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < n; i++) {
                if (kids[i].pid != pid) continue;
                kids[i].pid = 0;
                char how[64];
                describe_exit(status, how, sizeof how);
                if (stopping) {
                    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
                    log_info("supervisor: gateway process=%d stopped %s", i, how);
                    break;
                }
                kids[i].fast_deaths = now - kids[i].started < FAST_DEATH_S
                                          ? kids[i].fast_deaths + 1 : 0;
                int delay = kids[i].fast_deaths ? 1 << (kids[i].fast_deaths - 1) : 0;
                if (delay > RESTART_DELAY_MAX_S) delay = RESTART_DELAY_MAX_S;
                log_error("supervisor: gateway process=%d pid=%d died %s; restarting in %d s", i,
                          (int)pid, how, delay);
                kids[i].restart_at = now + delay;
                break;
            }
        }

        if (!stopping) {
            for (int i = 0; i < n; i++) {
                if (kids[i].pid || !kids[i].restart_at || now < kids[i].restart_at) continue;
                kids[i].restart_at = 0;
                kids[i].pid = start_child(conf, i, redis_url, &old);
                kids[i].started = now;
            }
        } else {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            if (t.tv_sec > stop_deadline.tv_sec) {
                for (int i = 0; i < n; i++)
                    if (kids[i].pid > 0) {
                        log_warn("supervisor: gateway process=%d did not stop; killing", i);
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
