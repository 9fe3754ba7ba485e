/* server.h: one gateway process: its event loop, listeners, signals, reload and drain. */
#ifndef ANTRE_SERVER_H
#define ANTRE_SERVER_H

#include "antre/conf.h"

/* Map the per-client state that NPROCS gateway processes share (the rate limiter's table and
 * the per-IP connection counts) from CONF. Call once, before forking the processes (server_run
 * calls it itself for a single process when it was not called). 0, or -1 (logged). */
int server_init_shared(const struct conf *conf, int nprocs);

/* In the supervisor, once process SLOT has died: forget the connections it had counted in the
 * shared per-IP table (they closed with it). */
void server_child_ended(int slot);

/* Have FN(ARG) called on every 100 ms tick of the gateway process that server_run runs next in
 * this process (main uses it to restart the embedded Redis it owns when it runs one process in
 * place). FN must not block for long. */
void server_set_tick_hook(void (*fn)(void *arg), void *arg);

/* Run a gateway process with CONF (copied) as process slot SLOT, talking to Redis at
 * REDIS_URL (an embedded URL already resolved to unix:/...). REUSEPORT: bind with SO_REUSEPORT
 * (several processes share the port). Returns when drained after SIGTERM/SIGINT: 0, or 1 when
 * it could not start (the reason is logged). */
int server_run(const struct conf *conf, int slot, const char *redis_url, int reuseport);

#endif
