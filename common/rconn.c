/* rconn.c: the asynchronous Redis client of the gateway and the worker (see rconn.h).
 *
 * A thin layer over hiredis 0.14's async API and its libevent adapter. hiredis 0.14 has no
 * connect timeout and no command timeout in async mode, so both are libevent timers here:
 * one timer for the connect attempt (armed until the connection is usable, handshake included),
 * and one per command, armed with a common timeout so that adding it is O(1).
 *
 * Lifetimes, which are the subtle part:
 *   - hiredis owns the redisAsyncContext and frees it itself after an error, calling first every
 *     pending reply callback with a NULL reply, then the disconnect callback. So the first NULL
 *     reply (or the disconnect callback, or a failed connect callback) is our cue that the
 *     context is going away; we then "detach" it (rc->ac = NULL, ac->data = NULL) so that
 *     nothing of ours reaches it again and later hiredis callbacks for it are ignored.
 *   - redisAsyncFree() may be called from a reply callback (hiredis defers the free until the
 *     callback returns) and from our own libevent callbacks (it frees at once), but never from
 *     the connect or disconnect callbacks, where it would free the context under hiredis' feet.
 *     So no user code runs from those two: state changes are told through a deferred event.
 *   - Every command is a struct rcmd that hiredis holds as privdata from the moment it accepts
 *     the command until it calls on_reply() exactly once; only on_reply() frees it. The user
 *     callback may be called earlier (timeout, rconn_free), so each rcmd records whether it was.
 *   - A user callback may call rconn_free(). Every frame of ours that calls user code counts
 *     itself in rc->busy; rconn_free() then tears everything down at once but leaves the final
 *     free() of the struct to the outermost frame, which checks rc->dead after each call out. */
#include "antre/rconn.h"

#include "antre/log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#define DEFAULT_PORT 6379
#define DEFAULT_TIMEOUT_MS 1000
#define DEFAULT_MAX_PENDING 1024
#define DEFAULT_BACKOFF_MIN_MS 50
#define DEFAULT_BACKOFF_MAX_MS 2000
#define NOTE_MAX 8

_Static_assert(RCONN_PATH_MAX == sizeof(((struct sockaddr_un *)0)->sun_path),
               "RCONN_PATH_MAX must be the size of sun_path");

/* One command hiredis holds for us (see the lifetime notes above). */
struct rcmd {
    TAILQ_ENTRY(rcmd) link; /* in rc->cmds while rc is alive */
    struct rconn *rc;       /* NULL once orphaned by rconn_free() */
    rconn_cb *cb;
    void *arg;
    int done; /* the user callback has been called */
    /* The timer, a struct event of event_get_struct_event_size() bytes: one allocation per
     * command, without depending on libevent's struct layout. */
    _Alignas(max_align_t) unsigned char timer[];
};

TAILQ_HEAD(rcmd_list, rcmd);

struct rconn {
    struct event_base *base;
    enum rconn_state state;
    char *url;          /* for log lines: the password replaced by "***" */
    struct rconn_url u; /* where to connect and how to log in */
    int timeout_ms, max_pending, backoff_min_ms, backoff_max_ms;
    struct timeval timeout_tv;
    const struct timeval *cmd_tv; /* common-timeout form of timeout_tv */

    redisAsyncContext *ac; /* the current context, NULL when detached */
    unsigned gen;          /* bumped at every connect attempt */
    struct event *connect_timer, *retry_timer, *notify_ev;
    int failed;       /* failed connect attempts since the last successful connect */
    int backoff_step; /* retries scheduled since then: the backoff exponent */
    uint64_t rng;

    struct rcmd_list cmds; /* every rcmd hiredis holds for us, oldest first */
    int pending;           /* rcmds whose user callback has not been called */
    enum rconn_refusal refusal;
    struct rconn_stats stats;

    void (*state_cb)(void *arg, enum rconn_state st);
    void *state_arg;
    enum rconn_state notes[NOTE_MAX]; /* state changes not yet told to state_cb */
    int note_first, note_count;

    int busy; /* frames of ours on the stack that call user code */
    int dead; /* rconn_free() was called */
};

static void connect_start(struct rconn *rc);

/* --- small helpers ------------------------------------------------------------------------ */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static struct event *cmd_timer(struct rcmd *cmd) { return (struct event *)(void *)cmd->timer; }

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        log_error("rconn: out of memory bytes=%zu", n);
        abort();
    }
    return p;
}

/* xorshift64*: jitter only, no need for quality. */
static uint32_t rng_next(struct rconn *rc)
{
    uint64_t x = rc->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rc->rng = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

/* Leave a frame that may have called user code; destroys RC when it was the outermost frame of
 * a freed rconn. Returns 1 when RC is gone. */
static void destroy(struct rconn *rc);
static int leave(struct rconn *rc)
{
    if (--rc->busy == 0 && rc->dead) {
        destroy(rc);
        return 1;
    }
    return 0;
}

/* --- URL ---------------------------------------------------------------------------------- */

/* Parse 1-10 decimal digits at *S into a value <= MAX; advances *S. */
static int parse_uint(const char **s, long max, int *out)
{
    const char *p = *s;
    long v = 0;
    int n = 0;
    while (isdigit((unsigned char)*p) && n < 10) {
        v = v * 10 + (*p - '0');
        p++;
        n++;
    }
    if (n == 0 || isdigit((unsigned char)*p) || v > max) return -1;
    *s = p;
    *out = (int)v;
    return 0;
}

static int host_char_ok(int c, int bracketed)
{
    if (bracketed) return isxdigit(c) || c == ':' || c == '.' || c == '%';
    return isalnum(c) || c == '.' || c == '-' || c == '_';
}

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode N bytes of S into OUT (CAP bytes, NUL-terminated). -1 on a bad escape, an
 * escaped NUL, or when it does not fit. */
static int unescape(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n) return -1;
            int hi = hex_digit((unsigned char)s[i + 1]), lo = hex_digit((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0 || (hi | lo) == 0) return -1;
            c = hi << 4 | lo;
            i += 2;
        }
        if (o + 1 >= cap) return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

size_t rconn_url_redact(const char *url, char *out, size_t outlen)
{
    if (!out || outlen == 0) return 0;
    if (!url) url = "";
    const char *rest = strncmp(url, "redis://", 8) == 0 ? url + 8 : NULL;
    const char *at = rest ? strrchr(rest, '@') : NULL;
    const char *colon = at ? memchr(rest, ':', (size_t)(at - rest)) : NULL;
    int n;
    if (colon) /* the password is everything between the first ':' and the last '@' */
        n = snprintf(out, outlen, "%.*s:***%s", (int)(colon - url), url, at);
    else n = snprintf(out, outlen, "%s", url);
    return n < 0 ? 0 : (size_t)n;
}

/* The redis:// part after the scheme: [user[:password]@]host[:port][/db]. U is zeroed. */
static int parse_tcp(const char *url, const char *s, struct rconn_url *u, char *err, size_t errlen)
{
    const char *at = strrchr(s, '@');
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        const char *ue = colon ? colon : at;
        if (unescape(s, (size_t)(ue - s), u->user, sizeof u->user) < 0)
            return fail(err, errlen, "bad or too long user name in '%s'", url);
        if (colon &&
            unescape(colon + 1, (size_t)(at - colon - 1), u->password, sizeof u->password) < 0)
            return fail(err, errlen, "bad or too long password in '%s' (escape with %%XX)", url);
        if (!u->password[0])
            return fail(err, errlen, "%s in '%s' (want user:password@ or :password@)",
                        u->user[0] ? "a user without a password" : "empty credentials", url);
        s = at + 1;
    }
    int bracketed = *s == '[';
    size_t n;
    if (bracketed) {
        const char *end = strchr(++s, ']');
        if (!end) return fail(err, errlen, "missing ']' after IPv6 address in '%s'", url);
        n = (size_t)(end - s);
    } else {
        n = strcspn(s, ":/");
    }
    if (n == 0) return fail(err, errlen, "missing host in '%s'", url);
    if (n >= sizeof u->host) return fail(err, errlen, "host too long in '%s'", url);
    for (size_t i = 0; i < n; i++)
        if (!host_char_ok((unsigned char)s[i], bracketed))
            return fail(err, errlen, "bad character in host of '%s'", url);
    memcpy(u->host, s, n);
    u->host[n] = '\0';
    s += n + (bracketed ? 1 : 0);
    u->port = DEFAULT_PORT;
    if (*s == ':') {
        s++;
        if (parse_uint(&s, 65535, &u->port) < 0 || u->port == 0)
            return fail(err, errlen, "bad port in '%s' (want 1-65535)", url);
    }
    if (*s == '/') {
        s++;
        if (*s && parse_uint(&s, 1000000000, &u->db) < 0)
            return fail(err, errlen, "bad database number in '%s'", url);
    }
    if (*s)
        return fail(err, errlen,
                    "unexpected text in '%s' (want redis://[user[:password]@]"
                    "host[:port][/db])",
                    url);
    return 0;
}

/* The unix: part after the scheme: /path[?db=N]. U is zeroed. */
static int parse_unix(const char *url, const char *s, struct rconn_url *u, char *err, size_t errlen)
{
    if (strncmp(s, "//", 2) == 0) s += 2; /* also accept unix:///path */
    const char *q = strchr(s, '?');
    size_t n = q ? (size_t)(q - s) : strlen(s);
    if (n == 0) return fail(err, errlen, "missing socket path in '%s'", url);
    if (s[0] != '/') return fail(err, errlen, "socket path must be absolute in '%s'", url);
    if (n >= sizeof u->path)
        return fail(err, errlen, "socket path longer than %zu bytes in '%s'", sizeof u->path - 1,
                    url);
    memcpy(u->path, s, n);
    u->path[n] = '\0';
    if (q) {
        s = q + 1;
        if (strncmp(s, "db=", 3) != 0)
            return fail(err, errlen, "unknown parameter in '%s' (only db=N)", url);
        s += 3;
        if (parse_uint(&s, 1000000000, &u->db) < 0 || *s)
            return fail(err, errlen, "bad database number in '%s'", url);
    }
    return 0;
}

int rconn_url_parse(const char *url, struct rconn_url *out, char *err, size_t errlen)
{
    struct rconn_url u;
    char shown[RCONN_URL_MAX];
    int rc;

    memset(&u, 0, sizeof u);
    if (err && errlen) err[0] = '\0';
    if (!url || !*url) return fail(err, errlen, "empty redis url");
    if (strlen(url) >= RCONN_URL_MAX)
        return fail(err, errlen, "redis url longer than %d bytes", RCONN_URL_MAX - 1);
    /* Every message shows the URL with its password replaced. */
    rconn_url_redact(url, shown, sizeof shown);
    if (strcmp(url, "embedded") == 0) {
        u.embedded = 1;
        rc = 0;
    } else if (strncmp(url, "redis://", 8) == 0) {
        rc = parse_tcp(shown, url + 8, &u, err, errlen);
    } else if (strncmp(url, "unix:", 5) == 0) {
        rc = parse_unix(shown, url + 5, &u, err, errlen);
    } else {
        rc = fail(err, errlen,
                  "unsupported redis url '%s' (want embedded, "
                  "redis://[user[:password]@]host[:port][/db] or unix:/path[?db=N])",
                  shown);
    }
    if (rc == 0 && out) *out = u;
    explicit_bzero(&u, sizeof u);
    return rc;
}

/* --- state changes ------------------------------------------------------------------------ */

/* Queue a state change for the state callback; told from notify_cb, never from here, because
 * this runs inside hiredis' connect and disconnect callbacks. */
static void note_state(struct rconn *rc, enum rconn_state st)
{
    if (!rc->state_cb || rc->dead) return;
    if (rc->note_count == NOTE_MAX) { /* cannot happen in practice: drop the oldest */
        rc->note_first = (rc->note_first + 1) % NOTE_MAX;
        rc->note_count--;
    }
    rc->notes[(rc->note_first + rc->note_count) % NOTE_MAX] = st;
    rc->note_count++;
    event_active(rc->notify_ev, EV_TIMEOUT, 1);
}

static void notify_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rconn *rc = arg;
    (void)fd;
    (void)what;
    rc->busy++;
    while (rc->note_count > 0 && !rc->dead) {
        enum rconn_state st = rc->notes[rc->note_first];
        rc->note_first = (rc->note_first + 1) % NOTE_MAX;
        rc->note_count--;
        if (rc->state_cb) rc->state_cb(rc->state_arg, st);
    }
    leave(rc);
}

/* Forget the current context: nothing of ours touches it again, and hiredis callbacks still to
 * come for it (NULL replies, disconnect) see ac->data == NULL and are ignored. */
static redisAsyncContext *detach(struct rconn *rc)
{
    redisAsyncContext *ac = rc->ac;
    rc->ac = NULL;
    if (ac) ac->data = NULL;
    return ac;
}

/* Exponential backoff with jitter: the n-th retry waits a random time in
 * [max(min, c/2), c] where c = min(backoff_max, backoff_min * 2^n). */
static void schedule_retry(struct rconn *rc)
{
    long c = rc->backoff_min_ms;
    for (int i = 0; i < rc->backoff_step && c < rc->backoff_max_ms; i++) c *= 2;
    if (c > rc->backoff_max_ms) c = rc->backoff_max_ms;
    long lo = c / 2 < rc->backoff_min_ms ? rc->backoff_min_ms : c / 2;
    long ms = lo + (long)(rng_next(rc) % (uint32_t)(c - lo + 1));
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    rc->backoff_step++;
    evtimer_add(rc->retry_timer, &tv);
}

/* A connect attempt failed (the context is already detached or was never attached). Only the
 * first failure of a streak is logged above debug: Redis being down is logged once, not at every
 * retry. */
static void attempt_failed(struct rconn *rc, const char *reason)
{
    rc->state = RCONN_CLOSED;
    evtimer_del(rc->connect_timer);
    rc->failed++;
    if (rc->failed == 1)
        log_warn("rconn: connect failed url=%s reason=%s (retrying with backoff)", rc->url, reason);
    else log_debug("rconn: connect failed url=%s reason=%s failed=%d", rc->url, reason, rc->failed);
    schedule_retry(rc);
}

static void became_connected(struct rconn *rc)
{
    evtimer_del(rc->connect_timer);
    rc->state = RCONN_CONNECTED;
    rc->stats.connects++;
    log_info("rconn: connected url=%s failed_attempts=%d", rc->url, rc->failed);
    rc->failed = 0;
    rc->backoff_step = 0;
    note_state(rc, RCONN_CONNECTED);
}

/* The current context is gone or going (already detached). No user code runs here: it may be
 * called from inside hiredis' disconnect callback. */
static void went_down(struct rconn *rc, const char *reason)
{
    if (rc->state == RCONN_CONNECTED) {
        rc->state = RCONN_CLOSED;
        rc->stats.disconnects++;
        log_warn("rconn: connection lost url=%s reason=%s pending=%d", rc->url, reason,
                 rc->pending);
        note_state(rc, RCONN_CLOSED);
        schedule_retry(rc);
    } else if (rc->state == RCONN_CONNECTING) {
        attempt_failed(rc, reason);
    }
}

/* --- hiredis callbacks -------------------------------------------------------------------- */

/* Mark the AUTH and SELECT steps of the handshake (privdata); the final PING step has NULL. */
static char handshake_auth, handshake_select;

/* Replies to the handshake sent once connected: AUTH when the URL has a password, SELECT when
 * db != 0, then PING, pipelined. Only the PING answer makes the connection usable: a TCP connect
 * alone succeeds even against a paused Redis (the kernel completes it), and a Redis loading its
 * data answers -LOADING to PING (though not to SELECT). When AUTH is refused the commands after
 * it are refused too (NOAUTH); the first refusal frees the context, so only it is reported. */
static void on_handshake(redisAsyncContext *ac, void *r, void *privdata)
{
    struct rconn *rc = ac->data;
    redisReply *reply = r;
    if (!rc) return;
    if (!reply) { /* hiredis is tearing the context down */
        detach(rc);
        went_down(rc, ac->errstr[0] ? ac->errstr : "disconnected during handshake");
    } else if (reply->type == REDIS_REPLY_ERROR) {
        char reason[160];
        const char *step = privdata == &handshake_auth     ? "AUTH"
                           : privdata == &handshake_select ? "SELECT"
                                                           : "PING";
        /* Redis' error text never repeats the password (WRONGPASS, NOAUTH, ERR AUTH <password>
         * called without any password configured...). */
        snprintf(reason, sizeof reason, "%s refused: %s", step, reply->str);
        if (privdata == &handshake_auth && rc->failed == 0) /* once a streak, as below */
            log_error("rconn: redis refused the credentials url=%s user=%s reason=%s (check the "
                      "password in [redis] url)",
                      rc->url, rc->u.user[0] ? rc->u.user : "default", reply->str);
        detach(rc);
        redisAsyncFree(ac); /* in a reply callback: hiredis frees it when we return */
        attempt_failed(rc, reason);
    } else if (privdata == NULL) {
        became_connected(rc);
    }
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    struct rconn *rc = cac->data;
    redisAsyncContext *ac = (redisAsyncContext *)cac; /* hiredis' own pointer, not const */
    int rv = REDIS_OK;
    if (!rc) return;
    if (status != REDIS_OK) { /* hiredis frees the context after we return */
        detach(rc);
        went_down(rc, ac->errstr[0] ? ac->errstr : "connect failed");
        return;
    }
    /* Still CONNECTING until the handshake answers; the connect timer (timeout_ms) covers it.
     * If hiredis refuses the command, the connect timer cleans up. */
    if (rc->u.password[0] && rc->u.user[0])
        rv = redisAsyncCommand(ac, on_handshake, &handshake_auth, "AUTH %s %s", rc->u.user,
                               rc->u.password);
    else if (rc->u.password[0])
        rv = redisAsyncCommand(ac, on_handshake, &handshake_auth, "AUTH %s", rc->u.password);
    if (rv == REDIS_OK && rc->u.db)
        rv = redisAsyncCommand(ac, on_handshake, &handshake_select, "SELECT %d", rc->u.db);
    if (rv == REDIS_OK) rv = redisAsyncCommand(ac, on_handshake, NULL, "PING");
    if (rv != REDIS_OK) log_error("rconn: could not queue handshake url=%s", rc->url);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    struct rconn *rc = cac->data;
    if (!rc) return;
    rc->ac = NULL; /* hiredis frees the context after we return */
    went_down(rc, status == REDIS_OK ? "closed" : (cac->errstr[0] ? cac->errstr : "error"));
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct rcmd *cmd = privdata;
    struct rconn *rc = cmd->rc;
    const redisReply *reply = r;

    if (!rc) { /* orphaned by rconn_free(): its callback was already called */
        free(cmd);
        return;
    }
    TAILQ_REMOVE(&rc->cmds, cmd, link);
    event_del(cmd_timer(cmd));
    if (!reply && rc->ac == ac) { /* first sign that hiredis is tearing the context down */
        detach(rc);
        went_down(rc, ac->errstr[0] ? ac->errstr : "disconnected");
    }
    if (!cmd->done) {
        cmd->done = 1;
        rc->pending--;
        if (!reply) rc->stats.errors++;
        rc->busy++;
        cmd->cb(cmd->arg, reply, reply ? NULL : "disconnected");
        free(cmd);
        leave(rc);
        return;
    }
    free(cmd); /* a late reply (or teardown) for a command already answered */
}

/* --- our timers --------------------------------------------------------------------------- */

static void connect_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rconn *rc = arg;
    (void)fd;
    (void)what;
    if (rc->state != RCONN_CONNECTING) return;
    redisAsyncContext *ac = detach(rc);
    attempt_failed(rc, "connect timeout");
    /* Not inside hiredis: frees at once. No user command can be pending while connecting. */
    if (ac) redisAsyncFree(ac);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    connect_start(arg);
}

/* Why drop the connection on a timeout: a command not answered in time means Redis is stuck
 * (paused, swapping, a slow script) or the network is gone; replies come in order, so every
 * later command on this connection is stuck behind it too. Failing them all now and
 * reconnecting bounds how long any caller waits to about timeout_ms. */
static void cmd_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rcmd *cmd = arg;
    struct rconn *rc = cmd->rc;
    unsigned gen = rc->gen;
    (void)fd;
    (void)what;

    cmd->done = 1;
    rc->pending--;
    rc->stats.timeouts++;
    rc->stats.errors++;
    log_warn("rconn: command timed out url=%s timeout_ms=%d pending=%d (dropping connection)",
             rc->url, rc->timeout_ms, rc->pending);
    rc->busy++;
    cmd->cb(cmd->arg, NULL, "timeout"); /* cmd may be freed from here on (rconn_free) */
    if (!rc->dead && rc->ac && rc->gen == gen) {
        redisAsyncContext *ac = detach(rc);
        went_down(rc, "command timeout");
        /* Not inside hiredis: frees at once, failing every other pending command through
         * on_reply() with "disconnected" (their callbacks may call rconn_free). */
        redisAsyncFree(ac);
    }
    leave(rc);
}

/* --- connecting --------------------------------------------------------------------------- */

static void connect_start(struct rconn *rc)
{
    redisAsyncContext *ac;

    rc->state = RCONN_CONNECTING;
    rc->gen++;
    ac = rc->u.path[0] ? redisAsyncConnectUnix(rc->u.path)
                       : redisAsyncConnect(rc->u.host, rc->u.port);
    if (!ac) {
        log_error("rconn: out of memory creating context url=%s", rc->url);
        abort();
    }
    if (ac->err) {
        char reason[128];
        snprintf(reason, sizeof reason, "%s", ac->errstr);
        redisAsyncFree(ac);
        attempt_failed(rc, reason);
        return;
    }
    if (!rc->u.path[0]) redisEnableKeepAlive(&ac->c);
    ac->data = rc;
    rc->ac = ac;
    redisLibeventAttach(ac, rc->base);
    /* After attaching: setting the connect callback arms the write event that detects it. */
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    evtimer_add(rc->connect_timer, &rc->timeout_tv);
}

/* --- public API --------------------------------------------------------------------------- */

struct rconn *rconn_new(struct event_base *base, const struct rconn_opts *opts, char *err,
                        size_t errlen)
{
    struct rconn *rc;
    struct rconn_url u;
    char shown[RCONN_URL_MAX];

    if (!base || !opts) {
        fail(err, errlen, "rconn_new: missing event base or options");
        return NULL;
    }
    if (rconn_url_parse(opts->url, &u, err, errlen) < 0) return NULL;
    if (u.embedded) {
        fail(err, errlen,
             "redis url 'embedded' must be replaced by the embedded server's "
             "socket before connecting");
        return NULL;
    }
    if (opts->timeout_ms < 0 || opts->max_pending < 0 || opts->backoff_min_ms < 0 ||
        opts->backoff_max_ms < 0) {
        explicit_bzero(&u, sizeof u);
        fail(err, errlen, "redis timeout, max_pending and backoff must not be negative");
        return NULL;
    }

    rc = xmalloc(sizeof *rc);
    memset(rc, 0, sizeof *rc);
    rc->base = base;
    rc->state = RCONN_CLOSED;
    rconn_url_redact(opts->url, shown, sizeof shown);
    rc->url = xmalloc(strlen(shown) + 1);
    memcpy(rc->url, shown, strlen(shown) + 1);
    rc->u = u;
    explicit_bzero(&u, sizeof u);
    rc->timeout_ms = opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    rc->max_pending = opts->max_pending ? opts->max_pending : DEFAULT_MAX_PENDING;
    rc->backoff_min_ms = opts->backoff_min_ms ? opts->backoff_min_ms : DEFAULT_BACKOFF_MIN_MS;
    rc->backoff_max_ms = opts->backoff_max_ms ? opts->backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
    if (rc->backoff_max_ms < rc->backoff_min_ms) rc->backoff_max_ms = rc->backoff_min_ms;
    rc->timeout_tv.tv_sec = rc->timeout_ms / 1000;
    rc->timeout_tv.tv_usec = (rc->timeout_ms % 1000) * 1000;
    rc->cmd_tv = event_base_init_common_timeout(base, &rc->timeout_tv);
    if (!rc->cmd_tv) rc->cmd_tv = &rc->timeout_tv;
    TAILQ_INIT(&rc->cmds);

    struct timeval now;
    gettimeofday(&now, NULL);
    rc->rng = ((uint64_t)now.tv_sec << 20) ^ (uint64_t)now.tv_usec ^ (uint64_t)(uintptr_t)rc ^
              ((uint64_t)getpid() << 40);
    if (!rc->rng) rc->rng = 0x9E3779B97F4A7C15ULL;

    rc->connect_timer = evtimer_new(base, connect_timeout_cb, rc);
    rc->retry_timer = evtimer_new(base, retry_cb, rc);
    rc->notify_ev = event_new(base, -1, 0, notify_cb, rc);
    if (!rc->connect_timer || !rc->retry_timer || !rc->notify_ev) {
        log_error("rconn: out of memory creating events url=%s", rc->url);
        abort();
    }
    connect_start(rc);
    return rc;
}

static void destroy(struct rconn *rc)
{
    event_free(rc->connect_timer);
    event_free(rc->retry_timer);
    event_free(rc->notify_ev);
    free(rc->url);
    explicit_bzero(&rc->u, sizeof rc->u);
    free(rc);
}

void rconn_free(struct rconn *rc)
{
    struct rcmd *cmd;

    if (!rc || rc->dead) return;
    rc->dead = 1;
    rc->state = RCONN_CLOSED;
    rc->note_count = 0;
    event_del(rc->connect_timer);
    event_del(rc->retry_timer);
    event_del(rc->notify_ev);
    log_debug("rconn: closing url=%s pending=%d", rc->url, rc->pending);

    rc->busy++;
    /* Orphan every command: hiredis still holds each and frees it through on_reply(). */
    while ((cmd = TAILQ_FIRST(&rc->cmds)) != NULL) {
        TAILQ_REMOVE(&rc->cmds, cmd, link);
        event_del(cmd_timer(cmd));
        cmd->rc = NULL;
        if (!cmd->done) {
            cmd->done = 1;
            rc->pending--;
            rc->stats.errors++;
            cmd->cb(cmd->arg, NULL, "closed");
        }
    }
    if (rc->ac) {
        redisAsyncContext *ac = detach(rc);
        /* At once, or when the reply callback we are inside returns. */
        redisAsyncFree(ac);
    }
    leave(rc);
}

static int refuse(struct rconn *rc, enum rconn_refusal why)
{
    rc->refusal = why;
    if (why == RCONN_REFUSED_CLOSED) rc->stats.refused_closed++;
    else if (why == RCONN_REFUSED_BUDGET) rc->stats.refused_budget++;
    else rc->stats.errors++;
    return -1;
}

/* Commands whose replies do not map one-to-one onto commands would break the "exactly one
 * callback" rule and confuse hiredis' reply matching. */
static int command_allowed(const char *buf, int len)
{
    static const char *banned[] = {"subscribe",    "psubscribe",   "ssubscribe", "unsubscribe",
                                   "punsubscribe", "sunsubscribe", "monitor"};
    const char *end = buf + len, *p;
    long argc, namelen;
    char *next;

    if (len < 4 || buf[0] != '*') return 0;
    argc = strtol(buf + 1, &next, 10);
    if (argc < 1 || next + 3 > end || next[0] != '\r' || next[2] != '$') return 0;
    namelen = strtol(next + 3, &next, 10);
    p = next + 2;
    if (namelen < 1 || p + namelen > end) return 0;
    for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++)
        if ((size_t)namelen == strlen(banned[i]) && strncasecmp(p, banned[i], (size_t)namelen) == 0)
            return 0;
    return 1;
}

/* Send the formatted command BUF (LEN bytes, or LEN < 0: formatting failed); frees BUF. */
static int send_formatted(struct rconn *rc, rconn_cb *cb, void *arg, char *buf, int len)
{
    struct rcmd *cmd;

    if (len < 0 || !buf || !command_allowed(buf, len)) {
        if (buf) redisFreeCommand(buf);
        log_debug("rconn: command refused as invalid url=%s", rc->url);
        return refuse(rc, RCONN_REFUSED_INVALID);
    }
    cmd = xmalloc(sizeof *cmd + event_get_struct_event_size());
    memset(cmd, 0, sizeof *cmd);
    cmd->cb = cb;
    cmd->arg = arg;
    cmd->rc = rc;
    event_assign(cmd_timer(cmd), rc->base, -1, 0, cmd_timeout_cb, cmd);
    if (redisAsyncFormattedCommand(rc->ac, on_reply, cmd, buf, (size_t)len) != REDIS_OK) {
        redisFreeCommand(buf);
        free(cmd);
        return refuse(rc, RCONN_REFUSED_CLOSED);
    }
    redisFreeCommand(buf); /* hiredis copied it into its output buffer */
    TAILQ_INSERT_TAIL(&rc->cmds, cmd, link);
    event_add(cmd_timer(cmd), rc->cmd_tv);
    rc->pending++;
    rc->stats.commands++;
    rc->refusal = RCONN_REFUSED_NONE;
    return 0;
}

/* The checks before any work: connected, not freed, budget left. */
static int admit(struct rconn *rc)
{
    if (rc->dead || rc->state != RCONN_CONNECTED || !rc->ac)
        return refuse(rc, RCONN_REFUSED_CLOSED);
    if (rc->pending >= rc->max_pending) return refuse(rc, RCONN_REFUSED_BUDGET);
    return 0;
}

int rconn_command(struct rconn *rc, rconn_cb *cb, void *arg, const char *fmt, ...)
{
    char *buf = NULL;
    int len;
    va_list ap;

    if (!cb || !fmt) return refuse(rc, RCONN_REFUSED_INVALID);
    if (admit(rc) < 0) return -1;
    va_start(ap, fmt);
    len = redisvFormatCommand(&buf, fmt, ap);
    va_end(ap);
    return send_formatted(rc, cb, arg, buf, len);
}

int rconn_command_argv(struct rconn *rc, rconn_cb *cb, void *arg, int argc, const char **argv,
                       const size_t *argvlen)
{
    char *buf = NULL;
    int len;

    if (!cb || argc < 1 || !argv) return refuse(rc, RCONN_REFUSED_INVALID);
    if (admit(rc) < 0) return -1;
    len = redisFormatCommandArgv(&buf, argc, argv, argvlen);
    return send_formatted(rc, cb, arg, buf, len);
}

enum rconn_refusal rconn_last_refusal(const struct rconn *rc) { return rc->refusal; }

enum rconn_state rconn_state(const struct rconn *rc) { return rc->dead ? RCONN_CLOSED : rc->state; }

int rconn_pending(const struct rconn *rc) { return rc->pending; }

void rconn_set_state_cb(struct rconn *rc, void (*cb)(void *arg, enum rconn_state st), void *arg)
{
    rc->state_cb = cb;
    rc->state_arg = arg;
    if (!cb) rc->note_count = 0;
}

void rconn_get_stats(const struct rconn *rc, struct rconn_stats *out) { *out = rc->stats; }
