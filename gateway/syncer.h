/* syncer.h: fsync off the event loop, several at once.
 *
 * A finished upload is fsynced before its job is queued and before the 202, and an fsync waits
 * for the disk: on the loop it would stall every other connection. So a small pool of threads
 * per gateway process (SYNCER_THREADS, started on first use, i.e. after the fork) takes files
 * from a queue and fsyncs them; each result comes back through a pipe the process's event loop
 * watches, so no libevent call ever crosses threads.
 *
 * Why a pool and not one thread: with one, the fsyncs of concurrent uploads wait behind each
 * other (each one a round trip to the disk), so at high concurrency the 202s queue behind the
 * disk's latency rather than its bandwidth. With several in flight the file system and the
 * device work on them together (block requests merged, one journal commit for several files). */
#ifndef ANTRE_GATEWAY_SYNCER_H
#define ANTRE_GATEWAY_SYNCER_H

struct gw;

/* Threads per gateway process that fsync at once. */
#define SYNCER_THREADS 4

/* Called from the loop of the process that submitted, once per job: ERR is 0, or the errno
 * value of the failed fsync. */
typedef void syncer_done_fn(void *arg, int err);

/* fsync FD on a sync thread, then call DONE(ARG, err) from GW's loop. FD stays the caller's: it
 * must stay open until DONE runs and is not closed by the syncer. Returns 0 (queued; DONE will
 * be called exactly once), or -1 when the threads or their pipe could not be started (logged;
 * nothing queued, DONE never called). */
int syncer_submit(struct gw *gw, int fd, syncer_done_fn *done, void *arg);

#endif
