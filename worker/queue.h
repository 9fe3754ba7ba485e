/* queue.h: one queue's consumer in a worker process (see queue.c for how it reads, retries,
 * reclaims and dead-letters). */
#ifndef WORKER_QUEUE_H
#define WORKER_QUEUE_H

#include <stdint.h>

#include "antre/conf.h"
#include "antre/job.h"
#include "antre/rconn.h"

struct event_base;
struct queue;

/* Counters of one queue in one process, in the process's shared-memory slot (admin.c sums
 * them). All are 64-bit words so slots_sum can add them. */
struct queue_stats {
    uint64_t processed; /* jobs done and acknowledged */
    uint64_t failed;    /* attempts that failed (each one, retried or not) */
    uint64_t retried;   /* failed attempts put back for a later retry */
    uint64_t dead;      /* entries moved to the dead-letter stream */
    int64_t in_flight;  /* jobs in hand now (gauge) */
};

/* One job in hand: the entry's id, its parsed job and how many times it was delivered. */
struct queue_job {
    struct queue *q;
    char id[JOB_STREAM_ID_MAX + 1];
    struct job job;
    int attempts;
};

enum queue_outcome {
    QUEUE_DONE,      /* the effect happened: acknowledge and delete */
    QUEUE_RETRY,     /* may work later: back off, then deliver again (dead after max_attempts) */
    QUEUE_PERMANENT, /* will never work: dead-letter now */
};

/* A queue's handler: start the work of QJ; call queue_done(QJ, ...) exactly once, later or
 * from inside this call. CTX is the pointer given to queue_new. */
typedef void queue_handler_fn(void *ctx, struct queue_job *qj);

/* A consumer of queue Q on RC. CONF points to the live [queue.NAME] settings (a reload that
 * changes them takes effect at the next read). CONSUMER is copied ("host:pid"). STATS is
 * written by the queue (borrowed; typically in a shared slot). Free with queue_free. */
struct queue *queue_new(struct event_base *base, struct rconn *rc, enum job_queue q,
                        const struct conf_queue *conf, const char *consumer, queue_handler_fn *fn,
                        void *ctx, struct queue_stats *stats);

/* Redis is (again) usable: create the group if needed (XGROUP CREATE ... MKSTREAM) and read. */
void queue_connected(struct queue *q);

/* Stop reading new entries (SIGTERM); jobs in hand still finish and are acknowledged. */
void queue_stop(struct queue *q);

/* Jobs in hand, and (after queue_stop) whether the queue has nothing left in flight at all. */
int queue_in_hand(const struct queue *q);

/* Finish QJ with outcome O (ERROR: why it failed, copied; NULL for QUEUE_DONE). Frees QJ. After
 * queue_abandon it only forgets QJ (the entry stays pending, to be reclaimed). */
void queue_done(struct queue_job *qj, enum queue_outcome o, const char *error);

/* queue_done(QJ, QUEUE_RETRY, ERROR) with the retry due no earlier than MIN_DELAY_MS from now
 * (the usual backoff when that is longer), for a dependency that said when to come back
 * (Retry-After). After max_attempts deliveries QJ is dead-lettered as with queue_done. */
void queue_retry_after(struct queue_job *qj, int64_t min_delay_ms, const char *error);

/* From now on, queue_done acknowledges nothing (the drain timed out, or Redis is going away). */
void queue_abandon(struct queue *q);

/* Free Q; call after queue_abandon and after every job's queue_done. NULL is ignored. */
void queue_free(struct queue *q);

#endif
