/* admin.h: the worker's admin listener, GET /metrics (see admin.c). */
#ifndef WORKER_ADMIN_H
#define WORKER_ADMIN_H

#include <stddef.h>

#include "antre/conf.h"
#include "antre/job.h"
#include "antre/rconn.h"
#include "antre/slots.h"
#include "queue.h"
#include "upload.h"
#include "verify.h"

/* What one worker process counts, in its shared-memory slot. */
struct admin_slot {
    struct queue_stats q[JOB__QUEUES];
    struct upload_stats photo; /* the upload queue's verdicts (upload.c) */
    struct verify_stats code;  /* the verify queue's codes (verify.c) */
};

struct event_base;
struct admin;
struct bearer;

/* Listen on ADDR (with SO_REUSEPORT: every worker process listens, any may answer) and serve
 * GET /metrics: the counters of every slot of SLOTS (borrowed) summed, and each queue's lag,
 * pending and oldest pending age read from Redis through RC at scrape time. NULL with the reason
 * in ERR when the address cannot be bound. TOKEN (borrowed; its owner may reload it) is the
 * bearer token a scrape must show (none loaded: open). Free with admin_free. */
struct admin *admin_new(struct event_base *base, const struct conf_addr *addr, struct rconn *rc,
                        const struct slots *slots, const struct bearer *token, char *err,
                        size_t errlen);

void admin_free(struct admin *a);

#endif
