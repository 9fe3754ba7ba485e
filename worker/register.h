/* register.h: the register queue's handler (see register.c). */
#ifndef WORKER_REGISTER_H
#define WORKER_REGISTER_H

#include "antre/rconn.h"
#include "queue.h"

/* The handler for queue_new(JOB_REGISTER): CTX is the process's struct rconn. */
void register_handle(void *ctx, struct queue_job *qj);

#endif
