/* supervisor.h: the parent of `[gateway] processes = N` gateway processes. */
#ifndef ANTRE_SUPERVISOR_H
#define ANTRE_SUPERVISOR_H

#include "antre/conf.h"

/* Fork CONF->gateway.processes children, each running server_run() with SO_REUSEPORT on the
 * shared port, and keep them running: a child that dies unasked is restarted (with a growing
 * delay if it keeps dying at start-up). SIGHUP re-reads the configuration here (so restarted
 * children get the current one) and is passed on; SIGTERM/SIGINT are passed on and the
 * children are waited for (SIGKILL after drain_timeout_ms plus a margin). Returns 0 when all
 * children stopped cleanly, 1 otherwise. CONF is updated by reloads. */
int supervisor_run(struct conf *conf, const char *redis_url);

#endif
