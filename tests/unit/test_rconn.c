/* test_rconn.c: the async Redis client against a real redis-server.
 *
 * Each test of the "rconn" suite starts /usr/bin/redis-server on a free TCP port and a unix
 * socket in a fresh temporary directory, and kills it (by PID) and removes the directory in
 * the fini hook, which Criterion runs even when an assertion fails. Should a test crash, the
 * server dies with it (PR_SET_PDEATHSIG) and the runner removes the directory at the end (the
 * directory is named after the runner's PID).
 *
 * The event loop is only ever driven in slices ended by event_base_loopexit(), with a bound on
 * the total time, so a test cannot hang: the bounds are hang guards, not speed checks. */
#include "antre/log.h"
#include "antre/rconn.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#define REDIS_SERVER "/usr/bin/redis-server"

static struct event_base *base;
static pid_t redis_pid;
static int redis_port;
static char redis_dir[64];
static char redis_sock[128];

/* --- the redis-server under test ---------------------------------------------------------- */

static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Start redis-server on redis_port (same directory on a restart) and wait until it answers. */
static void redis_start(void)
{
    char port[16], log_path[128];
    snprintf(port, sizeof port, "%d", redis_port);
    snprintf(log_path, sizeof log_path, "%s/redis.log", redis_dir);

    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execl(REDIS_SERVER, "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--dir", redis_dir, "--unixsocket", redis_sock,
              "--unixsocketperm", "700", "--daemonize", "no", (char *)NULL);
        _exit(127);
    }
    redis_pid = pid;

    double deadline = now_s() + 10;
    for (;;) {
        int status;
        cr_assert(waitpid(pid, &status, WNOHANG) == 0, "redis-server exited (see %s)", log_path);
        struct timeval tv = {0, 200000};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
            if (r) freeReplyObject(r);
            redisFree(c);
            if (ok && access(redis_sock, F_OK) == 0) return;
        } else if (c) {
            redisFree(c);
        }
        cr_assert(now_s() < deadline, "redis-server did not answer within 10 s");
        usleep(20000);
    }
}

static void redis_kill(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGKILL); /* works on a SIGSTOPped process too */
        waitpid(redis_pid, NULL, 0);
        redis_pid = 0;
    }
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    log_set_name("test_rconn");
    /* Quiet: the tests provoke every warning on purpose. TEST_LOG=debug shows the lines. */
    const char *level = getenv("TEST_LOG");
    int lv = level ? log_level_parse(level) : -1;
    log_set_level(lv >= 0 ? (enum log_level)lv : (enum log_level)(LOG_ERROR + 1));
    base = event_base_new();
    cr_assert(base);
    snprintf(redis_dir, sizeof redis_dir, "/tmp/rconn-test-%d-XXXXXX", (int)getppid());
    cr_assert(mkdtemp(redis_dir), "mkdtemp: %s", strerror(errno));
    snprintf(redis_sock, sizeof redis_sock, "%s/redis.sock", redis_dir);
    redis_port = free_port();
    redis_start();
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static void teardown(void)
{
    redis_kill();
    if (redis_dir[0]) {
        remove_dir(redis_dir);
        redis_dir[0] = '\0';
    }
    if (base) event_base_free(base);
    base = NULL;
}

TestSuite(rconn, .init = setup, .fini = teardown, .timeout = 60);

/* In the runner, after all tests: directories left by crashed tests (fini did not run). */
ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    char pattern[64];
    glob_t g;
    (void)stats;
    snprintf(pattern, sizeof pattern, "/tmp/rconn-test-%d-*", (int)getpid());
    if (glob(pattern, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) remove_dir(g.gl_pathv[i]);
        globfree(&g);
    }
}

/* --- driving the loop --------------------------------------------------------------------- */

typedef int cond_fn(void *ctx);

/* Run the loop in 10 ms slices until COND(CTX) holds or LIMIT_S seconds passed; returns
 * whether COND held. COND NULL: just run for LIMIT_S. */
static int run_until(cond_fn *cond, void *ctx, double limit_s)
{
    double deadline = now_s() + limit_s;
    while (!(cond && cond(ctx))) {
        if (now_s() >= deadline) return 0;
        struct timeval slice = {0, 10000};
        event_base_loopexit(base, &slice);
        event_base_dispatch(base);
    }
    return 1;
}

static int is_connected(void *rc) { return rconn_state(rc) == RCONN_CONNECTED; }
static int is_not_connected(void *rc) { return rconn_state(rc) != RCONN_CONNECTED; }

/* One command's outcome. */
struct res {
    int calls;
    char err[32];
    int type;
    long long integer;
    char str[512];
    size_t len;
    struct rconn **free_rc; /* when set: rconn_free(*free_rc) from the callback */
};

static void rec_cb(void *arg, const redisReply *reply, const char *err)
{
    struct res *r = arg;
    r->calls++;
    if (err) {
        cr_assert_null(reply);
        snprintf(r->err, sizeof r->err, "%s", err);
    } else {
        cr_assert_not_null(reply);
        r->type = reply->type;
        r->integer = reply->integer;
        if (reply->str) {
            r->len = reply->len;
            size_t n = reply->len < sizeof r->str - 1 ? reply->len : sizeof r->str - 1;
            memcpy(r->str, reply->str, n);
            r->str[n] = '\0';
        }
    }
    if (r->free_rc && *r->free_rc) {
        rconn_free(*r->free_rc);
        *r->free_rc = NULL;
    }
}

static int answered(void *arg) { return ((struct res *)arg)->calls > 0; }

struct res_set {
    struct res *r;
    int n;
};
static int all_answered(void *arg)
{
    struct res_set *s = arg;
    for (int i = 0; i < s->n; i++)
        if (s->r[i].calls == 0) return 0;
    return 1;
}

static struct rconn *connect_url(const char *url, int timeout_ms, int max_pending)
{
    char err[256] = "";
    struct rconn_opts o = {.url = url,
                           .timeout_ms = timeout_ms,
                           .max_pending = max_pending,
                           .backoff_min_ms = 20,
                           .backoff_max_ms = 300};
    struct rconn *rc = rconn_new(base, &o, err, sizeof err);
    cr_assert_not_null(rc, "rconn_new(%s): %s", url, err);
    return rc;
}

static struct rconn *connect_tcp(int db, int timeout_ms, int max_pending)
{
    char url[128];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/%d", redis_port, db);
    struct rconn *rc = connect_url(url, timeout_ms, max_pending);
    cr_assert(run_until(is_connected, rc, 10), "no connection to %s", url);
    return rc;
}

/* Issue one command and wait for its answer. */
static struct res sync_cmd(struct rconn *rc, const char *fmt, const char *a1, const char *a2)
{
    struct res r = {0};
    cr_assert_eq(rconn_command(rc, rec_cb, &r, fmt, a1, a2), 0, "refused: %s", fmt);
    cr_assert(run_until(answered, &r, 10), "no answer to %s", fmt);
    cr_assert_eq(r.calls, 1);
    return r;
}

/* --- url parsing (no server needed, but the fixture is cheap) ----------------------------- */

Test(rconn_url, good_urls)
{
    struct rconn_url u;
    char err[256];

    cr_assert_eq(rconn_url_parse("redis://127.0.0.1:6380/3", &u, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(u.host, "127.0.0.1");
    cr_assert_eq(u.port, 6380);
    cr_assert_eq(u.db, 3);
    cr_assert_str_eq(u.path, "");
    cr_assert_str_eq(u.user, "");
    cr_assert_str_eq(u.password, "");
    cr_assert_eq(u.embedded, 0);

    cr_assert_eq(rconn_url_parse("redis://redis.local", &u, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(u.host, "redis.local");
    cr_assert_eq(u.port, 6379);
    cr_assert_eq(u.db, 0);

    cr_assert_eq(rconn_url_parse("redis://127.0.0.1", &u, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(u.host, "127.0.0.1");
    cr_assert_eq(u.port, 6379);

    cr_assert_eq(rconn_url_parse("redis://[::1]:7000/", &u, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(u.host, "::1");
    cr_assert_eq(u.port, 7000);
    cr_assert_eq(u.db, 0);

    cr_assert_eq(rconn_url_parse("unix:/run/redis/redis.sock?db=5", &u, err, sizeof err), 0, "%s",
                 err);
    cr_assert_str_eq(u.path, "/run/redis/redis.sock");
    cr_assert_str_eq(u.host, "");
    cr_assert_eq(u.port, 0);
    cr_assert_eq(u.db, 5);

    cr_assert_eq(rconn_url_parse("unix:///tmp/r.sock", &u, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(u.path, "/tmp/r.sock");
    cr_assert_eq(u.db, 0);

    cr_assert_eq(rconn_url_parse("embedded", &u, err, sizeof err), 0, "%s", err);
    cr_assert_eq(u.embedded, 1);
    cr_assert_str_eq(u.host, "");

    /* OUT may be NULL (config validation only wants the verdict). */
    cr_assert_eq(rconn_url_parse("redis://h:1/0", NULL, NULL, 0), 0);
}

Test(rconn_url, credentials)
{
    struct rconn_url u;
    char err[256];

    /* Password only: AUTH password (the default user). */
    cr_assert_eq(rconn_url_parse("redis://:s3cret@h:6379", &u, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(u.user, "");
    cr_assert_str_eq(u.password, "s3cret");
    cr_assert_str_eq(u.host, "h");
    cr_assert_eq(u.port, 6379);

    /* User and password: AUTH user password. */
    cr_assert_eq(rconn_url_parse("redis://u:p@h:6379", &u, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(u.user, "u");
    cr_assert_str_eq(u.password, "p");
    cr_assert_str_eq(u.host, "h");

    /* Percent escapes; a ':' in the password is kept (the first ':' splits); an IPv6 host and
     * a database after credentials. */
    cr_assert_eq(rconn_url_parse("redis://app%2Dw:p%40ss:w%3Ard@[::1]:7000/2", &u, err, sizeof err),
                 0, "%s", err);
    cr_assert_str_eq(u.user, "app-w");
    cr_assert_str_eq(u.password, "p@ss:w:rd");
    cr_assert_str_eq(u.host, "::1");
    cr_assert_eq(u.port, 7000);
    cr_assert_eq(u.db, 2);

    /* An unescaped '@' in the password: the last '@' ends the credentials. */
    cr_assert_eq(rconn_url_parse("redis://:a@b@h", &u, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(u.password, "a@b");
    cr_assert_str_eq(u.host, "h");
}

Test(rconn_url, errors_never_show_the_password)
{
    static const char *bad[] = {
        "redis://u:hunter2@h:0",   "redis://u:hunter2@h:6379/x", "redis://u:hunter2@",
        "redis://u:hunter2@ho st", "redis://:hunter2%zz@h",      "redis://u:hunter2@h:6379?x=1",
        "redis://u:hunter2%00@h",
    };
    char err[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(rconn_url_parse(bad[i], NULL, err, sizeof err), -1, "accepted '%s'", bad[i]);
        cr_assert(err[0] != '\0');
        cr_assert_null(strstr(err, "hunter2"), "password shown: %s", err);
    }

    char out[128];
    cr_assert_eq(rconn_url_redact("redis://u:hunter2@h:1/2", out, sizeof out),
                 strlen("redis://u:***@h:1/2"));
    cr_assert_str_eq(out, "redis://u:***@h:1/2");
    rconn_url_redact("redis://:a@b@h", out, sizeof out);
    cr_assert_str_eq(out, "redis://:***@h");
    rconn_url_redact("redis://h:1", out, sizeof out);
    cr_assert_str_eq(out, "redis://h:1");
    rconn_url_redact("unix:/tmp/r.sock", out, sizeof out);
    cr_assert_str_eq(out, "unix:/tmp/r.sock");
    char tiny[10];
    cr_assert_eq(rconn_url_redact("redis://u:hunter2@host", tiny, sizeof tiny),
                 strlen("redis://u:***@host"));
    cr_assert_str_eq(tiny, "redis://u");
}

Test(rconn_url, bad_urls)
{
    static const char *bad[] = {
        "",
        "Embedded",
        "localhost:6379",
        "http://127.0.0.1:6379",
        "redis://",
        "redis://:6379",
        "redis://host:0",
        "redis://host:65536",
        "redis://host:12ab",
        "redis://host:",
        "redis://host:6379/x",
        "redis://host:6379/-1",
        "redis://host:6379/1/2",
        "redis://host:6379?db=1",
        "redis://user@host:6379",
        "redis://user:@host:6379",
        "redis://:@host:6379",
        "redis://@host:6379",
        "redis://u:p%4@host",
        "redis://ho st:6379",
        "redis://[::1:6379",
        "unix:",
        "unix:relative/path.sock",
        "unix:/x?foo=1",
        "unix:/tmp/r.sock?db=",
        "unix:/tmp/r.sock?db=x",
        "unix:/tmp/r.sock?db=1x",
        "unix:/tmp/r.sock?timeout=1",
        "unix:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock",
    };
    struct rconn_url u;
    char err[256];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        memset(&u, 0x5a, sizeof u);
        cr_assert_eq(rconn_url_parse(bad[i], &u, err, sizeof err), -1, "accepted bad url '%s'",
                     bad[i]);
        cr_assert(err[0] != '\0', "no message for '%s'", bad[i]);
        cr_assert_eq(u.host[0], 0x5a, "output written on failure for '%s'", bad[i]);
    }
    cr_assert_eq(rconn_url_parse(NULL, &u, err, sizeof err), -1);

    /* A URL longer than the limit is an error, not a truncation. */
    char longurl[RCONN_URL_MAX + 16];
    memset(longurl, 'a', sizeof longurl);
    memcpy(longurl, "redis://", 8);
    longurl[sizeof longurl - 1] = '\0';
    cr_assert_eq(rconn_url_parse(longurl, &u, err, sizeof err), -1);

    struct event_base *b = event_base_new();
    /* "embedded" is a valid url, but not one the client connects to. */
    struct rconn_opts e = {.url = "embedded"};
    cr_assert_null(rconn_new(b, &e, err, sizeof err));
    cr_assert(strstr(err, "embedded") != NULL, "%s", err);
    event_base_free(b);

    /* rconn_new refuses a bad url with the same message and creates nothing. */
    b = event_base_new();
    struct rconn_opts o = {.url = "redis://host:99999"};
    cr_assert_null(rconn_new(b, &o, err, sizeof err));
    cr_assert(strstr(err, "port") != NULL, "%s", err);
    event_base_free(b);
}

/* --- round trips -------------------------------------------------------------------------- */

Test(rconn, ping_set_get_round_trip)
{
    struct rconn *rc = connect_tcp(0, 2000, 16);
    struct res r;

    r = sync_cmd(rc, "PING", NULL, NULL);
    cr_assert_str_eq(r.err, "");
    cr_assert_eq(r.type, REDIS_REPLY_STATUS);
    cr_assert_str_eq(r.str, "PONG");

    r = sync_cmd(rc, "SET %s %s", "rconn:k", "hello");
    cr_assert_eq(r.type, REDIS_REPLY_STATUS);
    cr_assert_str_eq(r.str, "OK");

    r = sync_cmd(rc, "GET %s", "rconn:k", NULL);
    cr_assert_eq(r.type, REDIS_REPLY_STRING);
    cr_assert_str_eq(r.str, "hello");

    /* argv form, binary-safe. */
    const char *argv[] = {"SET", "rconn:bin", "a\0b"};
    size_t argvlen[] = {3, 9, 3};
    struct res rb = {0};
    cr_assert_eq(rconn_command_argv(rc, rec_cb, &rb, 3, argv, argvlen), 0);
    cr_assert(run_until(answered, &rb, 10));
    cr_assert_eq(rb.type, REDIS_REPLY_STATUS);
    const char *get[] = {"GET", "rconn:bin"};
    memset(&rb, 0, sizeof rb);
    cr_assert_eq(rconn_command_argv(rc, rec_cb, &rb, 2, get, NULL), 0);
    cr_assert(run_until(answered, &rb, 10));
    cr_assert_eq(rb.type, REDIS_REPLY_STRING);
    cr_assert_eq(rb.len, 3);
    cr_assert_eq(memcmp(rb.str, "a\0b", 3), 0);

    /* A Redis error is a reply, not a failure. */
    r = sync_cmd(rc, "INCR %s", "rconn:k", NULL);
    cr_assert_str_eq(r.err, "");
    cr_assert_eq(r.type, REDIS_REPLY_ERROR);

    /* Invalid commands are refused at once, without a callback. */
    struct res ri = {0};
    cr_assert_eq(rconn_command(rc, rec_cb, &ri, "SUBSCRIBE %s", "ch"), -1);
    cr_assert_eq(rconn_last_refusal(rc), RCONN_REFUSED_INVALID);
    cr_assert_eq(rconn_command(rc, rec_cb, &ri, ""), -1);
    cr_assert_eq(rconn_last_refusal(rc), RCONN_REFUSED_INVALID);
    cr_assert_eq(rconn_command_argv(rc, rec_cb, &ri, 0, get, NULL), -1);
    cr_assert_eq(rconn_command(rc, rec_cb, &ri, "PING"), 0);
    cr_assert_eq(rconn_last_refusal(rc), RCONN_REFUSED_NONE);
    cr_assert(run_until(answered, &ri, 10));
    cr_assert_eq(ri.calls, 1);

    struct rconn_stats st;
    rconn_get_stats(rc, &st);
    cr_assert_eq(st.connects, 1);
    cr_assert_eq(st.disconnects, 0);
    cr_assert_eq(st.commands, 7);
    cr_assert_eq(st.timeouts, 0);
    cr_assert_eq(rconn_pending(rc), 0);
    rconn_free(rc);
}

Test(rconn, unix_socket_and_select_db)
{
    char url[256];
    snprintf(url, sizeof url, "unix:%s?db=2", redis_sock);
    struct rconn *ux = connect_url(url, 2000, 16);
    cr_assert(run_until(is_connected, ux, 10), "no connection over %s", url);
    struct res r = sync_cmd(ux, "SET %s %s", "rconn:db", "two");
    cr_assert_str_eq(r.str, "OK");

    /* The key is in db 2 only: seen over TCP with /2, not with /0. */
    struct rconn *db2 = connect_tcp(2, 2000, 16);
    struct rconn *db0 = connect_tcp(0, 2000, 16);
    r = sync_cmd(db2, "GET %s", "rconn:db", NULL);
    cr_assert_eq(r.type, REDIS_REPLY_STRING);
    cr_assert_str_eq(r.str, "two");
    r = sync_cmd(db0, "GET %s", "rconn:db", NULL);
    cr_assert_eq(r.type, REDIS_REPLY_NIL);
    r = sync_cmd(ux, "CLIENT %s", "INFO", NULL);
    cr_assert(strstr(r.str, "db=2") != NULL);
    rconn_free(ux);
    rconn_free(db2);
    rconn_free(db0);
}

/* AUTH is the first command of every connect: with the right password (default user, then an
 * ACL user) the connection becomes usable; with a wrong one it never does, and it is retried. */
Test(rconn, auth_password_and_acl_user)
{
    struct rconn *admin = connect_tcp(0, 2000, 16);
    struct res r = sync_cmd(admin, "ACL SETUSER app on >apppw ~* &* +@all", NULL, NULL);
    cr_assert_str_eq(r.str, "OK");
    r = sync_cmd(admin, "CONFIG SET requirepass %s", "s3cret%", NULL);
    cr_assert_str_eq(r.str, "OK");

    char url[256];
    snprintf(url, sizeof url, "redis://:s3cret%%25@127.0.0.1:%d/1", redis_port);
    struct rconn *ok = connect_url(url, 2000, 16);
    cr_assert(run_until(is_connected, ok, 10), "no connection with the password");
    r = sync_cmd(ok, "CLIENT %s", "INFO", NULL);
    cr_assert(strstr(r.str, "user=default") != NULL, "%s", r.str);
    cr_assert(strstr(r.str, "db=1") != NULL, "%s", r.str);

    snprintf(url, sizeof url, "redis://app:apppw@127.0.0.1:%d", redis_port);
    struct rconn *acl = connect_url(url, 2000, 16);
    cr_assert(run_until(is_connected, acl, 10), "no connection as the ACL user");
    r = sync_cmd(acl, "ACL %s", "WHOAMI", NULL);
    cr_assert_str_eq(r.str, "app");

    snprintf(url, sizeof url, "redis://app:wrong@127.0.0.1:%d", redis_port);
    struct rconn *bad = connect_url(url, 2000, 16);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", redis_port);
    struct rconn *none = connect_url(url, 2000, 16);
    run_until(NULL, NULL, 0.5);
    cr_assert_neq(rconn_state(bad), RCONN_CONNECTED);
    cr_assert_neq(rconn_state(none), RCONN_CONNECTED, "PING without AUTH counted as usable");
    struct rconn_stats st;
    rconn_get_stats(bad, &st);
    cr_assert_eq(st.connects, 0);
    cr_assert_eq(rconn_command(bad, rec_cb, &r, "PING"), -1);
    cr_assert_eq(rconn_last_refusal(bad), RCONN_REFUSED_CLOSED);

    /* The admin connection predates requirepass and stays authenticated; undo for teardown. */
    r = sync_cmd(admin, "CONFIG SET requirepass %s", "", NULL);
    rconn_free(bad);
    rconn_free(none);
    rconn_free(acl);
    rconn_free(ok);
    rconn_free(admin);
}

Test(rconn, select_refused_never_connects)
{
    char url[128];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/999999", redis_port); /* > databases */
    struct rconn *rc = connect_url(url, 500, 16);
    cr_assert_not(run_until(is_connected, rc, 1), "connected to a database that does not exist");
    struct res r = {0};
    cr_assert_eq(rconn_command(rc, rec_cb, &r, "PING"), -1);
    cr_assert_eq(rconn_last_refusal(rc), RCONN_REFUSED_CLOSED);
    struct rconn_stats st;
    rconn_get_stats(rc, &st);
    cr_assert_eq(st.connects, 0);
    cr_assert_eq(st.refused_closed, 1);
    rconn_free(rc);
}

/* --- failures ----------------------------------------------------------------------------- */

Test(rconn, refused_while_not_connected)
{
    char url[128];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", free_port()); /* nobody listens */
    struct rconn *rc = connect_url(url, 500, 16);
    run_until(NULL, NULL, 0.2);
    cr_assert_neq(rconn_state(rc), RCONN_CONNECTED);
    struct res r = {0};
    cr_assert_eq(rconn_command(rc, rec_cb, &r, "PING"), -1);
    cr_assert_eq(rconn_last_refusal(rc), RCONN_REFUSED_CLOSED);
    run_until(NULL, NULL, 0.1);
    cr_assert_eq(r.calls, 0);
    struct rconn_stats st;
    rconn_get_stats(rc, &st);
    cr_assert_eq(st.refused_closed, 1);
    cr_assert_eq(st.commands, 0);
    rconn_free(rc);

    /* A unix socket that does not exist fails inside the connect call itself. */
    snprintf(url, sizeof url, "unix:%s/nosuch.sock", redis_dir);
    rc = connect_url(url, 500, 16);
    cr_assert_neq(rconn_state(rc), RCONN_CONNECTED);
    run_until(NULL, NULL, 0.2);
    cr_assert_neq(rconn_state(rc), RCONN_CONNECTED);
    cr_assert_eq(rconn_command(rc, rec_cb, &r, "PING"), -1);
    cr_assert_eq(r.calls, 0);
    rconn_free(rc);
}

Test(rconn, pending_budget)
{
    struct rconn *rc = connect_tcp(0, 2000, 2);
    struct res r[3] = {{0}};
    cr_assert_eq(rconn_command(rc, rec_cb, &r[0], "PING"), 0);
    cr_assert_eq(rconn_command(rc, rec_cb, &r[1], "PING"), 0);
    cr_assert_eq(rconn_pending(rc), 2);
    cr_assert_eq(rconn_command(rc, rec_cb, &r[2], "PING"), -1);
    cr_assert_eq(rconn_last_refusal(rc), RCONN_REFUSED_BUDGET);

    struct res_set two = {r, 2};
    cr_assert(run_until(all_answered, &two, 10));
    cr_assert_eq(r[2].calls, 0);
    cr_assert_eq(rconn_pending(rc), 0);
    struct rconn_stats st;
    rconn_get_stats(rc, &st);
    cr_assert_eq(st.refused_budget, 1);
    cr_assert_eq(st.commands, 2);

    /* Budget back: accepted again. */
    cr_assert_eq(rconn_command(rc, rec_cb, &r[2], "PING"), 0);
    cr_assert(run_until(answered, &r[2], 10));
    cr_assert_str_eq(r[2].str, "PONG");
    rconn_free(rc);
}

/* State callback recorder. */
struct states {
    enum rconn_state seen[16];
    int n;
};
static void state_cb(void *arg, enum rconn_state st)
{
    struct states *s = arg;
    if (s->n < 16) s->seen[s->n++] = st;
}

Test(rconn, timeout_drops_connection_then_recovers)
{
    struct rconn *rc = connect_tcp(0, 300, 16);
    struct states states = {.n = 0};
    rconn_set_state_cb(rc, state_cb, &states);

    cr_assert_eq(kill(redis_pid, SIGSTOP), 0);
    struct res r[3] = {{0}};
    cr_assert_eq(rconn_command(rc, rec_cb, &r[0], "SET %s %s", "rconn:t", "1"), 0);
    cr_assert_eq(rconn_command(rc, rec_cb, &r[1], "PING"), 0);
    cr_assert_eq(rconn_command(rc, rec_cb, &r[2], "PING"), 0);
    struct res_set all = {r, 3};
    cr_assert(run_until(all_answered, &all, 10), "commands hang while redis is stopped");
    cr_assert_str_eq(r[0].err, "timeout");
    cr_assert_str_eq(r[1].err, "disconnected");
    cr_assert_str_eq(r[2].err, "disconnected");
    cr_assert_neq(rconn_state(rc), RCONN_CONNECTED);
    cr_assert_eq(rconn_pending(rc), 0);

    /* While Redis stays stopped, attempts are abandoned after timeout_ms and retried: the
     * kernel completes the TCP connect, but the handshake never answers. */
    cr_assert_not(run_until(is_connected, rc, 1.0), "connected to a stopped redis");
    struct res refused = {0};
    cr_assert_eq(rconn_command(rc, rec_cb, &refused, "PING"), -1);
    cr_assert_eq(rconn_last_refusal(rc), RCONN_REFUSED_CLOSED);

    cr_assert_eq(kill(redis_pid, SIGCONT), 0);
    cr_assert(run_until(is_connected, rc, 10), "no reconnect after SIGCONT");
    struct res ok = sync_cmd(rc, "PING", NULL, NULL);
    cr_assert_str_eq(ok.str, "PONG");

    /* No callback ran twice, even if late replies came. */
    run_until(NULL, NULL, 0.2);
    for (int i = 0; i < 3; i++) cr_assert_eq(r[i].calls, 1);

    struct rconn_stats st;
    rconn_get_stats(rc, &st);
    cr_assert_eq(st.timeouts, 1);
    cr_assert_eq(st.disconnects, 1);
    cr_assert_eq(st.connects, 2);
    cr_assert_eq(st.errors, 3);
    cr_assert_geq(states.n, 2);
    cr_assert_eq(states.seen[0], RCONN_CLOSED);
    cr_assert_eq(states.seen[states.n - 1], RCONN_CONNECTED);
    rconn_free(rc);
}

Test(rconn, connect_timeout_retries_until_redis_answers)
{
    cr_assert_eq(kill(redis_pid, SIGSTOP), 0);
    char url[128];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", redis_port);
    struct rconn *rc = connect_url(url, 200, 16);
    cr_assert_not(run_until(is_connected, rc, 1.0));
    cr_assert_eq(kill(redis_pid, SIGCONT), 0);
    cr_assert(run_until(is_connected, rc, 10), "no connect after SIGCONT");
    struct rconn_stats st;
    rconn_get_stats(rc, &st);
    cr_assert_eq(st.connects, 1);
    rconn_free(rc);
}

Test(rconn, redis_killed_then_restarted)
{
    struct rconn *rc = connect_tcp(0, 5000, 16);
    struct states states = {.n = 0};
    rconn_set_state_cb(rc, state_cb, &states);

    struct res r[3] = {{0}};
    for (int i = 0; i < 3; i++) cr_assert_eq(rconn_command(rc, rec_cb, &r[i], "PING"), 0);
    redis_kill();
    struct res_set all = {r, 3};
    cr_assert(run_until(all_answered, &all, 10), "pending commands hang after redis died");
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(r[i].calls, 1);
        cr_assert_str_eq(r[i].err, "disconnected");
    }
    cr_assert(run_until(is_not_connected, rc, 10));
    enum rconn_state s = rconn_state(rc);
    cr_assert(s == RCONN_CLOSED || s == RCONN_CONNECTING);
    run_until(NULL, NULL, 0.3); /* a few failed attempts */
    cr_assert_neq(rconn_state(rc), RCONN_CONNECTED);

    redis_start();
    cr_assert(run_until(is_connected, rc, 5), "no reconnect after redis restarted");
    struct res ok = sync_cmd(rc, "PING", NULL, NULL);
    cr_assert_str_eq(ok.str, "PONG");

    struct rconn_stats st;
    rconn_get_stats(rc, &st);
    cr_assert_eq(st.disconnects, 1);
    cr_assert_eq(st.connects, 2);
    cr_assert_eq(st.timeouts, 0);
    cr_assert_eq(states.n, 2);
    cr_assert_eq(states.seen[0], RCONN_CLOSED);
    cr_assert_eq(states.seen[1], RCONN_CONNECTED);
    rconn_free(rc);
}

/* --- rconn_free --------------------------------------------------------------------------- */

Test(rconn, free_fails_pending_with_closed)
{
    struct rconn *rc = connect_tcp(0, 2000, 16);
    struct res r[3] = {{0}};
    for (int i = 0; i < 3; i++) cr_assert_eq(rconn_command(rc, rec_cb, &r[i], "PING"), 0);
    rconn_free(rc);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(r[i].calls, 1);
        cr_assert_str_eq(r[i].err, "closed");
    }
    run_until(NULL, NULL, 0.1);
    for (int i = 0; i < 3; i++) cr_assert_eq(r[i].calls, 1);
}

/* Open file descriptors of this process. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d, "opendir /proc/self/fd: %s", strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

static void count_state_cb(void *arg, enum rconn_state st)
{
    (void)st;
    ++*(int *)arg;
}

/* Free RC (whose state callback counts into *STATE_CALLS, which held STATE_BEFORE calls) and
 * check it left nothing behind: no state callback, no fd beyond FDS, no event on the base. */
static void free_and_check(struct rconn *rc, int *state_calls, int state_before, int fds)
{
    rconn_free(rc);
    run_until(NULL, NULL, 0.1);
    cr_assert_eq(*state_calls, state_before, "state callback called after rconn_free");
    cr_assert_eq(count_fds(), fds, "a descriptor was left open");
    cr_assert_eq(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), 0,
                 "an event (timer or socket) was left on the base");
}

/* rconn_free() in each state: connecting (before the loop ran, or between attempts), connected
 * idle, connected with commands in flight. Meant to be run under ASan too (make SANITIZE=1),
 * which catches a use after free or a leak on these paths; the asserts below catch the rest. */
Test(rconn, free_in_any_state)
{
    char url[128];
    int fds = count_fds(), calls = 0;
    struct rconn *rc;

    /* Connecting, nobody listens: before the loop ran, then between or inside attempts. */
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", free_port());
    for (int ran = 0; ran < 2; ran++) {
        rc = connect_url(url, 500, 16);
        rconn_set_state_cb(rc, count_state_cb, &calls);
        if (ran) run_until(NULL, NULL, 0.1);
        struct res r = {0};
        cr_assert_eq(rconn_command(rc, rec_cb, &r, "PING"), -1);
        free_and_check(rc, &calls, 0, fds);
        cr_assert_eq(r.calls, 0);
    }

    /* Connecting to a live server, before the loop ran. */
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/1", redis_port);
    rc = connect_url(url, 500, 16);
    rconn_set_state_cb(rc, count_state_cb, &calls);
    cr_assert_neq(rconn_state(rc), RCONN_CONNECTED);
    free_and_check(rc, &calls, 0, fds);

    /* Connected and idle. */
    rc = connect_url(url, 2000, 16);
    rconn_set_state_cb(rc, count_state_cb, &calls);
    cr_assert(run_until(is_connected, rc, 10));
    run_until(NULL, NULL, 0.05);
    cr_assert_eq(calls, 1);
    free_and_check(rc, &calls, 1, fds);

    /* Connected with commands in flight: each callback called once, with "closed". */
    calls = 0;
    rc = connect_url(url, 2000, 16);
    rconn_set_state_cb(rc, count_state_cb, &calls);
    cr_assert(run_until(is_connected, rc, 10));
    run_until(NULL, NULL, 0.05);
    struct res r[2] = {{0}};
    cr_assert_eq(rconn_command(rc, rec_cb, &r[0], "PING"), 0);
    cr_assert_eq(rconn_command(rc, rec_cb, &r[1], "BLPOP %s %d", "nothing-comes", 5), 0);
    free_and_check(rc, &calls, 1, fds);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(r[i].calls, 1, "callback %d called %d times", i, r[i].calls);
        cr_assert_str_eq(r[i].err, "closed");
    }

    rconn_free(NULL);
    cr_assert_eq(count_fds(), fds);
}

Test(rconn, free_from_reply_callback)
{
    struct rconn *rc = connect_tcp(0, 2000, 16);
    struct res r[3] = {{0}};
    r[0].free_rc = &rc;
    for (int i = 0; i < 3; i++) cr_assert_eq(rconn_command(rc, rec_cb, &r[i], "PING"), 0);
    struct res_set all = {r, 3};
    cr_assert(run_until(all_answered, &all, 10));
    cr_assert_null(rc);
    cr_assert_str_eq(r[0].str, "PONG");
    cr_assert_str_eq(r[1].err, "closed");
    cr_assert_str_eq(r[2].err, "closed");
    run_until(NULL, NULL, 0.1);
    for (int i = 0; i < 3; i++) cr_assert_eq(r[i].calls, 1);
}

Test(rconn, free_from_timeout_callback)
{
    struct rconn *rc = connect_tcp(0, 200, 16);
    struct res r[2] = {{0}};
    r[0].free_rc = &rc;
    kill(redis_pid, SIGSTOP);
    for (int i = 0; i < 2; i++) cr_assert_eq(rconn_command(rc, rec_cb, &r[i], "PING"), 0);
    struct res_set all = {r, 2};
    cr_assert(run_until(all_answered, &all, 10));
    cr_assert_null(rc);
    cr_assert_str_eq(r[0].err, "timeout");
    cr_assert_str_eq(r[1].err, "closed");
    kill(redis_pid, SIGCONT);
}

Test(rconn, free_from_disconnected_callback)
{
    struct rconn *rc = connect_tcp(0, 5000, 16);
    struct res r[3] = {{0}};
    r[1].free_rc = &rc;
    for (int i = 0; i < 3; i++) cr_assert_eq(rconn_command(rc, rec_cb, &r[i], "PING"), 0);
    redis_kill();
    struct res_set all = {r, 3};
    cr_assert(run_until(all_answered, &all, 10));
    cr_assert_null(rc);
    cr_assert_str_eq(r[0].err, "disconnected");
    cr_assert_str_eq(r[1].err, "disconnected");
    cr_assert_str_eq(r[2].err, "closed");
}

struct free_on_state {
    struct rconn *rc;
    int calls;
};
static void free_state_cb(void *arg, enum rconn_state st)
{
    struct free_on_state *f = arg;
    f->calls++;
    if (st == RCONN_CLOSED) {
        rconn_free(f->rc);
        f->rc = NULL;
    }
}

Test(rconn, free_from_state_callback)
{
    struct free_on_state f = {.rc = connect_tcp(0, 5000, 16)};
    rconn_set_state_cb(f.rc, free_state_cb, &f);
    redis_kill();
    double deadline = now_s() + 10;
    while (f.rc && now_s() < deadline) run_until(NULL, NULL, 0.05);
    cr_assert_null(f.rc, "state callback not called after redis died");
    cr_assert_eq(f.calls, 1);
}

/* A callback that issues a new command while the connection is going down is refused, and the
 * reconnect loop still works. */
static void reissue_cb(void *arg, const redisReply *reply, const char *err)
{
    struct rconn *rc = arg;
    (void)reply;
    cr_assert_not_null(err);
    cr_assert_eq(rconn_command(rc, reissue_cb, rc, "PING"), -1);
    cr_assert_eq(rconn_last_refusal(rc), RCONN_REFUSED_CLOSED);
}

Test(rconn, command_from_failure_callback_is_refused)
{
    struct rconn *rc = connect_tcp(0, 5000, 16);
    for (int i = 0; i < 3; i++) cr_assert_eq(rconn_command(rc, reissue_cb, rc, "PING"), 0);
    redis_kill();
    cr_assert(run_until(is_not_connected, rc, 10));
    cr_assert_eq(rconn_pending(rc), 0);
    redis_start();
    cr_assert(run_until(is_connected, rc, 10));
    rconn_free(rc);
}
