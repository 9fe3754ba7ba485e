/* pool.h: a small fixed pool of threads for CPU-bound jobs (the photo checks), whose
 * completions come back on the libevent loop thread (see pool.c).
 *
 * Threads: pool_new, pool_submit, pool_stop and pool_free are called on the loop thread only.
 * A job's WORK function runs on a pool thread and must touch nothing the loop owns; its DONE
 * function runs on the loop thread (or inside pool_free), exactly once per accepted job. */
#ifndef WORKER_POOL_H
#define WORKER_POOL_H

#include <stddef.h>

struct event_base;
struct pool;

/* How a job ended, as its DONE function hears it. */
enum pool_status {
    POOL_RAN,       /* WORK ran to its end; DONE runs on the loop thread */
    POOL_CANCELLED, /* pool_free came first: WORK did not run, or its end was not delivered */
};

typedef void pool_work_fn(void *arg);
typedef void pool_done_fn(void *arg, enum pool_status st);

/* A pool of THREADS threads (1-64) on BASE with room for QUEUE_MAX jobs waiting (running ones
 * not counted). THREAD_EXIT, when not NULL, runs on each pool thread just before it ends (for
 * a library's per-thread clean-up). NULL with the reason in ERR when a thread or the wake-up
 * pipe cannot be made. Free with pool_free. */
struct pool *pool_new(struct event_base *base, int threads, int queue_max,
                      void (*thread_exit)(void), char *err, size_t errlen);

/* Queue a job: WORK(ARG) on a pool thread, then DONE(ARG, POOL_RAN) on the loop thread. Returns
 * 0, or -1 when the queue is full or the pool is stopped (neither function is then called). */
int pool_submit(struct pool *p, pool_work_fn *work, pool_done_fn *done, void *arg);

/* Jobs submitted whose DONE has not run yet. */
int pool_pending(const struct pool *p);

/* From now on no DONE runs on the loop and no job is accepted: what is queued or running is
 * left to pool_free, which reports it POOL_CANCELLED (a drain that timed out). */
void pool_stop(struct pool *p);

/* Stop the pool: jobs not started are dropped, running ones finish (their WORK is not
 * interrupted), every thread is joined, then each job whose DONE has not run gets
 * DONE(ARG, POOL_CANCELLED), on the calling thread. NULL is ignored. */
void pool_free(struct pool *p);

/* The default thread count: the online CPUs, at most MAX (at least 1). */
int pool_default_threads(int max);

#endif
