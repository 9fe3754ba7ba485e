/* syncer.c: a pool of fsync threads reporting back to the event loop (see syncer.h).
 *
 * Jobs wait in one FIFO queue that every thread takes from; finished jobs go to a done list.
 * A thread that finds the done list empty writes one byte to the pipe; the loop drains the pipe
 * first and then takes the whole list, so a batch of results costs the loop one wake-up and no
 * job is ever missed (one appended after the loop took the list finds it empty and writes). */
#include "syncer.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "antre/log.h"
#include "gateway.h"

/* An fsync needs little stack; the default (8 MB of address space each) is waste. */
#define SYNCER_STACK (256 * 1024)

struct sync_job {
    int fd;
    int err;
    syncer_done_fn *done;
    void *arg;
    struct sync_job *next;
};

struct job_list {
    struct sync_job *head, **tail;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
static struct job_list todo = {NULL, &todo.head};
static struct job_list done_list = {NULL, &done_list.head};
static int wake_pipe[2] = {-1, -1};
static struct event *wake_ev;
static pid_t started_pid;

static void list_push(struct job_list *l, struct sync_job *j)
{
    j->next = NULL;
    *l->tail = j;
    l->tail = &j->next;
}

static void *sync_thread(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (!todo.head) pthread_cond_wait(&work, &lock);
        struct sync_job *j = todo.head;
        todo.head = j->next;
        if (!todo.head) todo.tail = &todo.head;
        pthread_mutex_unlock(&lock);

        j->err = fsync(j->fd) < 0 ? errno : 0;

        pthread_mutex_lock(&lock);
        int was_empty = done_list.head == NULL;
        list_push(&done_list, j);
        pthread_mutex_unlock(&lock);
        if (was_empty) {
            char one = 1;
            ssize_t w;
            do w = write(wake_pipe[1], &one, 1);
            while (w < 0 && errno == EINTR);
            /* EAGAIN: the pipe is full of wake-ups already, the loop will come. */
        }
    }
    return NULL;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    char sink[256];
    while (read(fd, sink, sizeof sink) > 0) continue;
    pthread_mutex_lock(&lock);
    struct sync_job *j = done_list.head;
    done_list.head = NULL;
    done_list.tail = &done_list.head;
    pthread_mutex_unlock(&lock);
    while (j) {
        struct sync_job *next = j->next;
        j->done(j->arg, j->err);
        free(j);
        j = next;
    }
}

/* Undo a start that failed half-way. */
static void unwatch(void)
{
    if (wake_ev) event_free(wake_ev);
    wake_ev = NULL;
    close(wake_pipe[0]);
    close(wake_pipe[1]);
    wake_pipe[0] = wake_pipe[1] = -1;
}

/* Start the pipe and the threads in this process (a forked child starts its own: threads do
 * not survive a fork). 0, or -1 when not even one thread could be started. */
static int start(struct gw *gw)
{
    if (started_pid == getpid()) return 0;
    /* What a parent left (its pipe, its event, its queued jobs) is not this process's. */
    todo.head = done_list.head = NULL;
    todo.tail = &todo.head;
    done_list.tail = &done_list.head;
    if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        log_error("syncer: cannot create a pipe err=%s", strerror(errno));
        return -1;
    }
    wake_ev = event_new(gw->base, wake_pipe[0], EV_READ | EV_PERSIST, on_wake, NULL);
    if (!wake_ev || event_add(wake_ev, NULL) < 0) {
        log_error("syncer: cannot watch the pipe");
        unwatch();
        return -1;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, SYNCER_STACK);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int n = 0;
    for (int i = 0; i < SYNCER_THREADS; i++) {
        pthread_t t;
        if (pthread_create(&t, &attr, sync_thread, NULL) == 0) n++;
    }
    pthread_attr_destroy(&attr);
    if (n == 0) {
        log_error("syncer: cannot start a thread");
        unwatch();
        return -1;
    }
    if (n < SYNCER_THREADS) log_warn("syncer: started %d of %d threads", n, SYNCER_THREADS);
    started_pid = getpid();
    return 0;
}

int syncer_submit(struct gw *gw, int fd, syncer_done_fn *done, void *arg)
{
    if (start(gw) < 0) return -1;
    struct sync_job *j = calloc(1, sizeof *j);
    if (!j) abort();
    j->fd = fd;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&lock);
    list_push(&todo, j);
    pthread_cond_signal(&work);
    pthread_mutex_unlock(&lock);
    return 0;
}
