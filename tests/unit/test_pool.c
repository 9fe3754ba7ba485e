/* test_pool.c: unit tests of the worker's thread pool (worker/pool.c) with a real libevent loop
 * and real threads: work runs off the loop thread, every completion comes back on it exactly
 * once, the waiting list is bounded, and stopping and freeing report what was not delivered as
 * cancelled. */
#include <criterion/criterion.h>
#include <event2/event.h>
#include <pthread.h>
#include <string.h>

#include "../../worker/pool.h"

static pthread_t loop_thread;

struct tjob {
    int ran_off_loop; /* written by WORK */
    int done_ran, done_cancelled, done_on_loop;
    int *finished; /* counter of DONE calls, shared */
    struct event_base *base;
    int stop_at;
    /* a blocking job waits for GO */
    pthread_mutex_t *m;
    pthread_cond_t *c;
    int *started, *go;
};

static void work(void *arg)
{
    struct tjob *j = arg;
    j->ran_off_loop = !pthread_equal(pthread_self(), loop_thread);
    if (j->m) {
        pthread_mutex_lock(j->m);
        *j->started = 1;
        pthread_cond_broadcast(j->c);
        while (!*j->go) pthread_cond_wait(j->c, j->m);
        pthread_mutex_unlock(j->m);
    }
}

static void done(void *arg, enum pool_status st)
{
    struct tjob *j = arg;
    if (st == POOL_RAN) j->done_ran++;
    else j->done_cancelled++;
    j->done_on_loop = pthread_equal(pthread_self(), loop_thread);
    if (++*j->finished == j->stop_at && j->base) event_base_loopbreak(j->base);
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

Test(pool, work_off_the_loop_completions_on_it_once_each)
{
    loop_thread = pthread_self();
    struct event_base *base = event_base_new();
    char err[128];
    struct pool *p = pool_new(base, 3, 1000, NULL, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    enum { N = 500 };
    static struct tjob jobs[N];
    int finished = 0;
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct tjob){.finished = &finished, .base = base, .stop_at = N};
        cr_assert_eq(pool_submit(p, work, done, &jobs[i]), 0);
    }
    cr_assert_eq(pool_pending(p), N);
    struct event *guard = evtimer_new(base, on_guard, base);
    struct timeval tv = {20, 0};
    event_add(guard, &tv);
    event_base_dispatch(base);
    cr_assert_eq(finished, N);
    cr_assert_eq(pool_pending(p), 0);
    for (int i = 0; i < N; i++) {
        cr_assert(jobs[i].ran_off_loop, "job %d ran on the loop thread", i);
        cr_assert_eq(jobs[i].done_ran, 1);
        cr_assert_eq(jobs[i].done_cancelled, 0);
        cr_assert(jobs[i].done_on_loop);
    }
    pool_free(p);
    cr_assert_eq(finished, N, "pool_free reported a delivered job again");
    event_free(guard);
    event_base_free(base);
}

Test(pool, bounded_then_freed_with_every_job_cancelled_once)
{
    loop_thread = pthread_self();
    struct event_base *base = event_base_new();
    char err[128];
    struct pool *p = pool_new(base, 1, 2, NULL, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    int started = 0, go = 0, finished = 0;
    struct tjob blocker = {.finished = &finished, .m = &m, .c = &c, .started = &started, .go = &go};
    struct tjob w[3];
    cr_assert_eq(pool_submit(p, work, done, &blocker), 0);
    pthread_mutex_lock(&m);
    while (!started) pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
    /* The one thread is busy: two may wait, the third is refused. */
    for (int i = 0; i < 3; i++) w[i] = (struct tjob){.finished = &finished};
    cr_assert_eq(pool_submit(p, work, done, &w[0]), 0);
    cr_assert_eq(pool_submit(p, work, done, &w[1]), 0);
    cr_assert_eq(pool_submit(p, work, done, &w[2]), -1);
    pool_stop(p);
    cr_assert_eq(pool_submit(p, work, done, &w[2]), -1, "a stopped pool took a job");
    pthread_mutex_lock(&m);
    go = 1;
    pthread_cond_broadcast(&c);
    pthread_mutex_unlock(&m);
    /* The loop runs, but a stopped pool delivers nothing to it. */
    struct timeval tv = {0, 100000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    cr_assert_eq(finished, 0);
    pool_free(p);
    cr_assert_eq(finished, 3);
    cr_assert_eq(blocker.done_cancelled, 1);
    cr_assert_eq(w[0].done_cancelled + w[0].done_ran, 1);
    cr_assert_eq(w[1].done_cancelled, 1);
    cr_assert_eq(w[2].done_cancelled + w[2].done_ran, 0);
    event_base_free(base);
}

Test(pool, default_threads_capped)
{
    int n = pool_default_threads(4);
    cr_assert(n >= 1 && n <= 4, "%d", n);
    cr_assert_eq(pool_default_threads(1), 1);
}
