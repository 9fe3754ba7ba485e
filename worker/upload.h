/* upload.h: the upload queue's handler: each uploaded photo checked on the thread pool and its
 * verdict recorded (see upload.c). */
#ifndef WORKER_UPLOAD_H
#define WORKER_UPLOAD_H

#include <stdint.h>

#include "antre/conf.h"
#include "antre/rconn.h"
#include "photo.h"
#include "pool.h"
#include "queue.h"

/* Decisions counted by upload_stats.decisions, by index: 0 accepted, then each rejection
 * reason (upload_decision_name), the last one for a reason this list does not know. */
#define UPLOAD_DECISIONS 8

/* Photo decisions of one process, in its shared-memory slot (64-bit words, for slots_sum). */
struct upload_stats {
    uint64_t decisions[UPLOAD_DECISIONS]; /* verdicts recorded, by state + reason */
    uint64_t warnings[PHOTO_WARN__COUNT]; /* accepted photos recorded with each warning bit */
};

struct upload;

/* The handler's context: it reads the upload records through RC, runs the checks on POOL and
 * takes the rules from CONF's [upload] at each job (so a reload applies to the next job). All
 * borrowed; STATS is written. Free with upload_free (after every job's queue_done). */
struct upload *upload_new(struct rconn *rc, struct pool *pool, const struct conf *conf,
                          struct upload_stats *stats);

void upload_free(struct upload *u);

/* The handler for queue_new(JOB_UPLOAD): CTX is a struct upload. */
void upload_handle(void *ctx, struct queue_job *qj);

/* Decision I's state ("accepted" or "rejected") into *STATE and its reason ("none" when
 * accepted, "other" for the last), or NULL when I is out of range. Static strings. */
const char *upload_decision_name(int i, const char **state);

/* For pool_new's THREAD_EXIT: frees what libvips keeps per thread. */
void upload_thread_exit(void);

#endif
