/* redis_embed.h: the private redis-server behind `[redis] url = embedded`.
 *
 * The first antre process on a machine to call redis_embed_start() forks and owns a redis-server
 * that listens only on the unix socket `<dir>/redis.sock` (mode 700, no TCP port) and keeps its
 * data in `<dir>` with AOF on; every later caller (another program, or a restarted one) finds the
 * socket answering and joins it instead. Only the owner stops it, with redis_embed_stop(), and
 * only the owner restarts it when it dies (redis_embed_tick(), redis_embed_reaped()): same dir,
 * same AOF, same socket, so the clients' reconnect loops find it again.
 *
 * The server's files are private: the dir is 0700 (an existing one is fixed and the fix logged),
 * and redis-server runs under umask 077 so its AOF and RDB files are 0600 (existing files are
 * chmod-ed at every start).
 *
 * redis_embed_start() and redis_embed_stop() block (fork, exec, short sleeps, synchronous
 * hiredis): call them at start-up and shut-down, never from the event loop. redis_embed_tick()
 * and redis_embed_reaped() never wait for Redis (only for fork + exec). Not thread-safe; call
 * from one thread. */
#ifndef ANTRE_REDIS_EMBED_H
#define ANTRE_REDIS_EMBED_H

#include <stddef.h>
#include <sys/types.h>

struct redis_embed_opts {
    const char *server_bin; /* "redis-server" (searched in PATH) or a path; NULL = "redis-server" */
    const char *dir;        /* data dir, e.g. "var/redis"; created (mode 0700, parents too) */
    const char *appendfsync; /* "everysec" or "always"; NULL = "everysec" */
    int start_timeout_ms;    /* how long to wait for it to answer PING; <= 0 = 5000 */
};

#define REDIS_EMBED_RESTART_MIN_MS 50   /* first restart delay after a death */
#define REDIS_EMBED_RESTART_MAX_MS 4000 /* the delay doubles per quick death up to this */
#define REDIS_EMBED_STABLE_MS 10000     /* up this long: the next death is not "quick" */

struct redis_embed {
    pid_t pid;             /* >0 while OUR server runs; 0 when joined, stopped or dead */
    char socket_path[256]; /* absolute path of the unix socket, e.g. /abs/var/redis/redis.sock */
    char url[300];         /* "unix:/abs/var/redis/redis.sock" to hand to the client */
    /* The owner's restart state (all zero when joined). */
    int owner;               /* 1: we started it, restart it when it dies, stop it at the end */
    char dir[256];           /* the resolved data dir */
    char bin[1024];          /* the resolved server binary */
    char appendfsync[16];    /* what it was started with */
    long long started_ms;    /* monotonic ms of the last (re)start */
    long long restart_at_ms; /* monotonic ms of the next restart attempt; 0: none due */
    int quick_deaths;        /* deaths in a row within REDIS_EMBED_STABLE_MS of a start */
    unsigned restarts;       /* restarts so far */
};

/* Make sure a private redis-server answers on `<o->dir>/redis.sock`, starting one if needed.
 *
 * O->dir is created if missing (mode 0700, parents too) and resolved to an absolute, symlink-free
 * path; relative paths are taken from the current working directory, so every antre program
 * started from the same directory with the same config finds the same server. The socket path
 * must be shorter than 108 bytes (the limit of sun_path).
 *
 * Before a server is started, O->dir and what it holds (two levels down: appendonlydir) lose
 * their group and other permission bits (each fix logged), and the server runs under umask 077.
 *
 * If the socket already answers PING, the server is joined: OUT->pid = 0 and nothing is started
 * (the running server keeps the appendfsync it was started with). Otherwise redis-server is
 * started in its own session (so a Ctrl-C to the terminal does not reach it; the owner stops it
 * after draining) with:
 *   --port 0 --unixsocket <dir>/redis.sock --unixsocketperm 700 --protected-mode yes
 *   --appendonly yes --appendfsync <x> --dir <dir> --save "" --daemonize no
 *   --logfile <dir>/redis.log --pidfile <dir>/redis.pid
 * and waited for until it answers PING (not just -LOADING), up to o->start_timeout_ms. A stale
 * socket file with nothing behind it is replaced by the new server. Concurrent starters on one
 * machine are serialised by flock(2) on `<dir>/redis.lock`, so only one of them starts a server
 * and the others join it.
 *
 * Refuses (rather than start a second server writing the same AOF) when `<dir>/redis.pid` names
 * a live redis-server that does not answer on the socket.
 *
 * No parent-death signal is set: if the owner dies without calling redis_embed_stop() (SIGKILL,
 * crash), the server keeps running for the processes that joined it, and the next
 * redis_embed_start() on that dir joins it, so nobody owns it any more. Stop such a server with
 * `redis-cli -s <dir>/redis.sock shutdown` (AOF keeps the data either way). Likewise, when the
 * owner stops the server, processes that joined it lose their Redis; stop the owner last.
 *
 * The child resets signal dispositions and the signal mask, gets /dev/null as stdin and
 * `<dir>/redis.log` as stdout/stderr, and inherits no other descriptor. If the caller sets
 * SIGCHLD to SIG_IGN, the exit status of the server cannot be reported.
 *
 * Arguments: O options (strings are not kept after the call); OUT filled on success (zeroed
 * on failure, so redis_embed_stop() on it is safe even after a failed start; OUT->owner is 1 when
 * this call started the server); ERR/ERRLEN receive a
 * one-line reason on failure (with the last lines of redis.log when the server failed to come
 * up). Errors are not logged here: the caller logs ERR. Success (start or join) is logged.
 *
 * Returns 0 on success, -1 on failure (a child that was started is killed and reaped). */
int redis_embed_start(const struct redis_embed_opts *o, struct redis_embed *out, char *err,
                      size_t errlen);

/* Stop the server RE owns: SIGTERM (Redis fsyncs its AOF and exits), wait up to TIMEOUT_MS for
 * it to exit, then SIGKILL; the child is always reaped. Does nothing when RE->pid is 0 (joined,
 * dead and not yet restarted, or already stopped). Sets RE->pid and RE->owner to 0 (no restart
 * after this), so calling it twice is harmless. Logs the outcome.
 *
 * Returns 0 when the server exited by itself after SIGTERM (or there was nothing to stop), -1
 * when it had to be killed or exited with a failure status. Blocks up to TIMEOUT_MS plus the
 * time to reap a killed process. */
int redis_embed_stop(struct redis_embed *re, int timeout_ms);

/* For the owner, called often (every turn of a supervisor, every tick of an event loop): notice
 * that the server ended (waitpid WNOHANG on RE->pid), log how, and once its delay has passed
 * start it again on the same dir, AOF and socket. The delay is REDIS_EMBED_RESTART_MIN_MS
 * doubling with each quick death (one within REDIS_EMBED_STABLE_MS of its start) up to
 * REDIS_EMBED_RESTART_MAX_MS. A restart does not wait for Redis to load its AOF: the clients'
 * reconnect loops find it when it answers. When another process started a server on the dir in
 * the meantime (it answers, or its pidfile names a live redis-server), RE joins it and gives up
 * ownership. Does nothing when RE is not the owner.
 *
 * Returns 1 while the server is down (dead, or a restart is waiting), 0 otherwise. */
int redis_embed_tick(struct redis_embed *re);

/* Tell RE that PID ended with STATUS (from a waitpid(-1) of the caller's, e.g. a supervisor
 * reaping its children), so the status is not lost. Returns 1 when PID was RE's server (its death
 * is logged and a restart is scheduled for redis_embed_tick()), 0 otherwise. */
int redis_embed_reaped(struct redis_embed *re, pid_t pid, int status);

struct conf_redis;

/* The Redis URL a program should use for the [redis] section R: R's own URL, or, for
 * `url = embedded`, the private server started (or joined) with R's server_bin, dir and
 * appendfsync, described in RE (stop it with redis_embed_stop). Returns the URL (owned by R or
 * RE), or NULL with the reason in ERR. */
const char *redis_embed_for(const struct conf_redis *r, struct redis_embed *re, char *err,
                            size_t errlen);

#endif
