/* rconn.h: the asynchronous Redis client that the gateway and the worker share.
 *
 * One struct rconn is one connection to one Redis server, driven by a libevent event_base and
 * hiredis' async API. It is a small state machine (closed, connecting, connected) that:
 *   - connects at once and reconnects by itself after any loss, with exponential backoff and
 *     jitter between backoff_min_ms and backoff_max_ms (reset after a successful connect);
 *   - counts a connection usable only once Redis answered a handshake (AUTH when the URL has a
 *     password, SELECT when db != 0, then PING), and gives up on an attempt not usable within
 *     timeout_ms; a refused AUTH is logged as an error (never with the password) and the
 *     attempt counts as failed, retried with backoff like any other;
 *   - puts a timer on every command: a command not answered within timeout_ms is failed with
 *     "timeout", and because that means Redis is stuck the connection is then dropped, so every
 *     other command in flight fails with "disconnected" and the reconnect loop starts;
 *   - never leaves a callback hanging: every accepted command gets exactly one callback;
 *   - refuses commands at once (no callback) while not connected or when max_pending commands
 *     are already in flight, and counts each refusal.
 *
 * What the caller must know:
 *   - Not thread-safe: use one rconn from the thread that runs its event_base.
 *   - The program must ignore SIGPIPE (hiredis writes with write(2)).
 *   - Every command has the same timeout_ms, and a timeout drops the connection: a blocking
 *     command (BLPOP, XREADGROUP BLOCK ms, WAIT) must block for clearly less than timeout_ms.
 *   - "timeout" and "disconnected" do not mean Redis did not run the command: it may have. Only
 *     retry commands that are idempotent (or made so, e.g. by a job id).
 *   - Pub/sub and MONITOR are refused (their replies do not map one-to-one onto commands). */
#ifndef ANTRE_RCONN_H
#define ANTRE_RCONN_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

struct event_base;
struct rconn; /* opaque */

enum rconn_state {
    RCONN_CLOSED,     /* no connection: waiting for the next attempt, or freed */
    RCONN_CONNECTING, /* an attempt is under way: connect, AUTH, SELECT (when db != 0), PING */
    RCONN_CONNECTED,  /* usable: commands are accepted */
};

/* Why the last rconn_command*() call returned -1 (see rconn_last_refusal()). */
enum rconn_refusal {
    RCONN_REFUSED_NONE = 0, /* the last call was accepted */
    RCONN_REFUSED_CLOSED,   /* not connected (or the rconn is being freed) */
    RCONN_REFUSED_BUDGET,   /* max_pending commands already in flight */
    RCONN_REFUSED_INVALID,  /* bad format string, no arguments, or pub/sub / MONITOR */
};

struct rconn_opts {
    const char *url;    /* a redis:// or unix: URL (see rconn_url_parse()); copied */
    int timeout_ms;     /* per-command timeout, and connect + handshake timeout; 0: 1000 */
    int max_pending;    /* most commands in flight at once; 0: 1024 */
    int backoff_min_ms; /* first reconnect delay; 0: 50 */
    int backoff_max_ms; /* largest reconnect delay; 0: 2000 */
};

/* Callback of one command. ARG is the caller's pointer given with the command.
 * On success REPLY is the reply and ERR is NULL. REPLY is borrowed: it is valid only during the
 * call; copy what you need. A Redis error reply (REDIS_REPLY_ERROR, e.g. NOSCRIPT, WRONGTYPE) is
 * a reply, not a failure: the caller decides what it means.
 * On failure REPLY is NULL and ERR is a short static string:
 *   "timeout"       no reply within timeout_ms (the connection is dropped right after);
 *   "disconnected"  the connection was lost before the reply came;
 *   "closed"        rconn_free() was called before the reply came.
 * The callback may call rconn_command*() (it is refused while not connected) and rconn_free(). */
typedef void rconn_cb(void *arg, const redisReply *reply, const char *err);

#define RCONN_URL_MAX 1024 /* longest URL accepted, NUL included */
#define RCONN_HOST_MAX 256
#define RCONN_PATH_MAX 108 /* sizeof sun_path */
#define RCONN_USER_MAX 128
#define RCONN_PASSWORD_MAX 512

/* A parsed Redis URL (see rconn_url_parse()). Holds the password in clear: wipe it with
 * explicit_bzero() when done with it. */
struct rconn_url {
    int embedded;                      /* 1 for "embedded": the caller starts a redis-server */
    char host[RCONN_HOST_MAX];         /* TCP: name, IPv4 or IPv6 (no brackets); else empty */
    int port;                          /* TCP: 1-65535 (default 6379); else 0 */
    char path[RCONN_PATH_MAX];         /* unix: absolute socket path; else empty */
    char user[RCONN_USER_MAX];         /* ACL user, percent-decoded; empty: the default user */
    char password[RCONN_PASSWORD_MAX]; /* percent-decoded; empty: no AUTH */
    int db;                            /* SELECTed after connecting when not 0 */
};

/* Parse a Redis URL, the one parser of them (the config check uses it too). Accepted forms:
 *   embedded                                      a private redis-server (see redis_embed.h);
 *                                                 rconn_new() refuses it
 *   redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]    HOST a name, an IPv4 address or a bracketed
 *                                                 IPv6 address ("[::1]"); PORT 1-65535, default
 *                                                 6379; DB >= 0, default 0; USER and PASSWORD
 *                                                 may hold %XX escapes (a '@' or ':' in a
 *                                                 password: %40, %3A). ":PASSWORD@" alone sends
 *                                                 `AUTH PASSWORD`, "USER:PASSWORD@" sends
 *                                                 `AUTH USER PASSWORD`; a user without a
 *                                                 password is refused.
 *   unix:/ABSOLUTE/PATH[?db=DB]
 * OUT (may be NULL for a verdict only) is filled on success only. Returns 0, or -1 with a
 * one-line reason in ERR (ERRLEN bytes, always terminated) that shows the URL with its password
 * replaced by "***" (see rconn_url_redact()). */
int rconn_url_parse(const char *url, struct rconn_url *out, char *err, size_t errlen);

/* Copy URL into OUT (OUTLEN bytes, always terminated when OUTLEN > 0) with the password of a
 * redis:// URL replaced by "***", for log lines and error messages. Returns the length the
 * whole redacted URL has (as snprintf: a value >= OUTLEN means it was cut). */
size_t rconn_url_redact(const char *url, char *out, size_t outlen);

/* Create a client on BASE and start the first connect attempt at once (a failed attempt is
 * retried with backoff: an unreachable Redis is not an error here). The URL and the other
 * options are copied; BASE must outlive the rconn. A host name is resolved with a blocking
 * getaddrinfo(3) at every attempt, so prefer an IP address or a name in /etc/hosts.
 * Returns the client, to be freed with rconn_free(), or NULL with the reason in ERR when the
 * URL or an option is invalid. */
struct rconn *rconn_new(struct event_base *base, const struct rconn_opts *opts, char *err,
                        size_t errlen);

/* Free RC in any state. Every command still in flight has its callback called first with
 * "closed" (before rconn_free returns); the state callback is not called. Safe to call from
 * inside any rconn callback (command or state callback): the memory is then released when that
 * callback returns, and RC must not be used after the call either way. NULL is ignored. */
void rconn_free(struct rconn *rc);

/* Send one command, built from a hiredis printf-like FMT ("%s" C string, "%b" pointer + size_t
 * length, "%d"/"%lld" integers, ...). Arguments are copied before the call returns.
 * Returns 0 when queued: CB(ARG, ...) will be called exactly once, later (never from inside
 * this call), with the reply or with a failure. Returns -1 when refused at once: CB is NOT
 * called; rconn_last_refusal() says why (not connected, budget spent, invalid command) and
 * the matching counter of the stats is bumped (refused_closed, refused_budget, errors). */
int rconn_command(struct rconn *rc, rconn_cb *cb, void *arg, const char *fmt, ...);

/* Same as rconn_command() with the command given as ARGC arguments ARGV[i] of ARGVLEN[i] bytes
 * each (ARGVLEN NULL: each is a C string). Binary-safe; arguments are copied. */
int rconn_command_argv(struct rconn *rc, rconn_cb *cb, void *arg, int argc, const char **argv,
                       const size_t *argvlen);

/* Why the last rconn_command*() call on RC returned -1; RCONN_REFUSED_NONE after an accepted
 * call. */
enum rconn_refusal rconn_last_refusal(const struct rconn *rc);

/* Current state. Commands are accepted only in RCONN_CONNECTED. */
enum rconn_state rconn_state(const struct rconn *rc);

/* Number of accepted commands whose callback has not been called yet. */
int rconn_pending(const struct rconn *rc);

/* Set (or with CB NULL clear) the state callback: CB(ARG, RCONN_CONNECTED) each time a
 * connection becomes usable (after the handshake), e.g. to load Lua scripts again, and
 * CB(ARG, RCONN_CLOSED) each time a usable connection is lost. It is called from the event loop
 * shortly after the change (never from inside an rconn_* call), so rconn_state() may already
 * have moved on; calls come in the order of the changes. Set it right after rconn_new() to hear
 * of the first connect too. CB may call rconn_command*() and rconn_free(). */
void rconn_set_state_cb(struct rconn *rc, void (*cb)(void *arg, enum rconn_state st), void *arg);

/* Counters since rconn_new(), never reset. */
struct rconn_stats {
    uint64_t connects;       /* connections that became usable (RCONN_CONNECTED) */
    uint64_t disconnects;    /* usable connections lost (by error, Redis closing, timeout) */
    uint64_t timeouts;       /* commands failed with "timeout" */
    uint64_t refused_budget; /* commands refused: max_pending in flight */
    uint64_t refused_closed; /* commands refused: not connected */
    uint64_t commands;       /* commands accepted */
    uint64_t errors;         /* accepted commands that failed (err != NULL), timeouts included,
                                plus commands refused for a bad format */
};

/* Copy the counters of RC into OUT. */
void rconn_get_stats(const struct rconn *rc, struct rconn_stats *out);

#endif
