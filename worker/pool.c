/* pool.c: a fixed pool of threads for CPU-bound jobs, handing each completion back to the
 * libevent loop thread (the contract is in pool.h).
 *
 * Two lists under one mutex: jobs waiting for a thread (bounded by queue_max, so a burst is
 * refused instead of growing without limit) and jobs whose work has ended. A thread that puts
 * the first job on the ended list writes one byte to a pipe the loop watches; the loop then
 * drains the pipe and takes the whole list, so no libevent call ever crosses threads (as in
 * gateway/spool.c). A byte is written only on the empty-to-non-empty step, so the pipe holds at
 * most a few bytes and its non-blocking writer never loses a wake-up: when a write would block,
 * a wake-up is already waiting.
 *
 * Shutdown never waits for a queue to empty: pool_free drops what has not started, lets the
 * running work end (libvips cannot be interrupted mid-call), joins the threads and reports
 * every undelivered job cancelled, so its owner frees it and acknowledges nothing. */
#include "pool.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POOL_THREADS_MAX 64

struct pool_job {
    pool_work_fn *work;
    pool_done_fn *done;
    void *arg;
    struct pool_job *next;
};

struct job_list {
    struct pool_job *head, **tail;
    int n;
};

struct pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct job_list waiting, ended; /* under LOCK */
    int shutdown;                   /* under LOCK: threads end */
    int queue_max;
    int pending; /* loop thread only: submitted, DONE not yet run */
    int stopped; /* loop thread only: no more deliveries or submissions */
    int nthreads;
    pthread_t threads[POOL_THREADS_MAX];
    void (*thread_exit)(void);
    int wake[2]; /* pipe: [0] watched by the loop, [1] written by the threads */
    struct event *wake_ev;
};

static void list_init(struct job_list *l)
{
    l->head = NULL;
    l->tail = &l->head;
    l->n = 0;
}

static void list_push(struct job_list *l, struct pool_job *j)
{
    j->next = NULL;
    *l->tail = j;
    l->tail = &j->next;
    l->n++;
}

static struct pool_job *list_pop(struct job_list *l)
{
    struct pool_job *j = l->head;
    if (!j) return NULL;
    l->head = j->next;
    if (!l->head) l->tail = &l->head;
    l->n--;
    return j;
}

static void *pool_thread(void *arg)
{
    struct pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->shutdown && !p->waiting.head) pthread_cond_wait(&p->cond, &p->lock);
        if (p->shutdown) break;
        struct pool_job *j = list_pop(&p->waiting);
        pthread_mutex_unlock(&p->lock);
        j->work(j->arg);
        pthread_mutex_lock(&p->lock);
        int first = p->ended.head == NULL;
        list_push(&p->ended, j);
        if (first) {
            ssize_t w;
            do w = write(p->wake[1], "", 1);
            while (w < 0 && errno == EINTR);
        }
    }
    pthread_mutex_unlock(&p->lock);
    if (p->thread_exit) p->thread_exit();
    return NULL;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct pool *p = arg;
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    if (p->stopped) return;
    pthread_mutex_lock(&p->lock);
    struct pool_job *j = p->ended.head;
    list_init(&p->ended);
    pthread_mutex_unlock(&p->lock);
    while (j) {
        struct pool_job *next = j->next;
        p->pending--;
        j->done(j->arg, POOL_RAN);
        free(j);
        j = next;
        /* A DONE may have stopped the pool: the rest stays for pool_free to cancel. */
        if (p->stopped && j) {
            pthread_mutex_lock(&p->lock);
            while (j) {
                next = j->next;
                list_push(&p->ended, j);
                j = next;
            }
            pthread_mutex_unlock(&p->lock);
        }
    }
}

int pool_default_threads(int max)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    return n > max ? max : (int)n;
}

struct pool *pool_new(struct event_base *base, int threads, int queue_max,
                      void (*thread_exit)(void), char *err, size_t errlen)
{
    if (threads < 1 || threads > POOL_THREADS_MAX || queue_max < 1) {
        snprintf(err, errlen, "pool: bad size threads=%d queue_max=%d", threads, queue_max);
        return NULL;
    }
    struct pool *p = calloc(1, sizeof *p);
    if (!p) abort();
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    list_init(&p->waiting);
    list_init(&p->ended);
    p->queue_max = queue_max;
    p->thread_exit = thread_exit;
    if (pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "pool: pipe: %s", strerror(errno));
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->cond);
        free(p);
        return NULL;
    }
    p->wake_ev = event_new(base, p->wake[0], EV_READ | EV_PERSIST, on_wake, p);
    if (!p->wake_ev) abort();
    event_add(p->wake_ev, NULL);
    for (int i = 0; i < threads; i++) {
        int rc = pthread_create(&p->threads[i], NULL, pool_thread, p);
        if (rc != 0) {
            snprintf(err, errlen, "pool: pthread_create: %s", strerror(rc));
            pool_free(p);
            return NULL;
        }
        p->nthreads++;
    }
    return p;
}

int pool_submit(struct pool *p, pool_work_fn *work, pool_done_fn *done, void *arg)
{
    if (p->stopped) return -1;
    pthread_mutex_lock(&p->lock);
    if (p->waiting.n >= p->queue_max) {
        pthread_mutex_unlock(&p->lock);
        return -1;
    }
    struct pool_job *j = calloc(1, sizeof *j);
    if (!j) abort();
    j->work = work;
    j->done = done;
    j->arg = arg;
    list_push(&p->waiting, j);
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    p->pending++;
    return 0;
}

int pool_pending(const struct pool *p) { return p->pending; }

void pool_stop(struct pool *p)
{
    p->stopped = 1;
    event_del(p->wake_ev);
}

void pool_free(struct pool *p)
{
    if (!p) return;
    p->stopped = 1;
    pthread_mutex_lock(&p->lock);
    p->shutdown = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);
    /* Every thread is gone: the lists are ours alone. */
    struct job_list *lists[2] = {&p->ended, &p->waiting};
    for (int k = 0; k < 2; k++) {
        struct pool_job *j;
        while ((j = list_pop(lists[k]))) {
            p->pending--;
            j->done(j->arg, POOL_CANCELLED);
            free(j);
        }
    }
    event_free(p->wake_ev);
    close(p->wake[0]);
    close(p->wake[1]);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p);
}
