/* test_redis_embed.c: redis_embed against the real redis-server.
 *
 * Each test works in its own mkdtemp directory; the teardown stops every server the test started
 * (and, as a last resort, whatever redis.pid names) and removes the directory, also when an
 * assertion failed. Criterion runs each test in its own process, so chdir() is allowed. */
#include "antre/redis_embed.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tmpdir.h"

static char tmp[TMPDIR_LEN];
static struct redis_embed re[3];
static char err[1024];

static void setup(void)
{
    memset(re, 0, sizeof re);
    err[0] = '\0';
    tmpdir_make(tmp, "re");
}

/* Kill whatever PIDFILE names if it still runs (a server the test lost track of). */
static void kill_pidfile(const char *pidfile)
{
    FILE *f = fopen(pidfile, "r");
    if (!f) return;
    int pid = 0;
    if (fscanf(f, "%d", &pid) == 1 && pid > 1 && kill(pid, 0) == 0) kill(pid, SIGKILL);
    fclose(f);
}

static void teardown(void)
{
    for (int i = 0; i < 3; i++) redis_embed_stop(&re[i], 3000);
    char path[128];
    snprintf(path, sizeof path, "%s/redis.pid", tmp);
    kill_pidfile(path);
    snprintf(path, sizeof path, "%s/var/redis/redis.pid", tmp);
    kill_pidfile(path);
    snprintf(path, sizeof path, "%s/fake.pid", tmp);
    kill_pidfile(path);
    tmpdir_remove(tmp);
}

TestSuite(redis_embed, .init = setup, .fini = teardown, .timeout = 30);

static struct redis_embed_opts opts(const char *fsync)
{
    struct redis_embed_opts o = {
        .server_bin = "redis-server",
        .dir = tmp,
        .appendfsync = fsync,
        .start_timeout_ms = 5000,
    };
    return o;
}

static redisContext *connect_sock(const char *sock)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectUnixWithTimeout(sock, tv);
    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    if (c) redisSetTimeout(c, tv);
    return c;
}

static bool answers_ping(const char *sock)
{
    redisContext *c = connect_sock(sock);
    if (!c) return false;
    redisReply *r = redisCommand(c, "PING");
    bool ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
    if (r) freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* CONFIG GET NAME into OUT; false when it could not be read. */
static bool config_get(const char *sock, const char *name, char *out, size_t outlen)
{
    redisContext *c = connect_sock(sock);
    if (!c) return false;
    redisReply *r = redisCommand(c, "CONFIG GET %s", name);
    bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
              r->element[1]->type == REDIS_REPLY_STRING;
    if (ok) snprintf(out, outlen, "%s", r->element[1]->str);
    if (r) freeReplyObject(r);
    redisFree(c);
    return ok;
}

static bool gone(pid_t pid) { return kill(pid, 0) < 0 && errno == ESRCH; }

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_script(const char *path, const char *body)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(body, f);
    fclose(f);
    chmod(path, 0700);
}

Test(redis_embed, start_answers_with_aof_and_no_tcp_then_stops)
{
    struct redis_embed_opts o = opts("everysec");
    cr_assert_eq(redis_embed_start(&o, &re[0], err, sizeof err), 0, "start: %s", err);
    pid_t pid = re[0].pid;
    cr_assert_gt(pid, 0);

    char want[128];
    snprintf(want, sizeof want, "%s/redis.sock", tmp);
    cr_assert_str_eq(re[0].socket_path, want);
    snprintf(want, sizeof want, "unix:%s/redis.sock", tmp);
    cr_assert_str_eq(re[0].url, want);

    cr_assert(answers_ping(re[0].socket_path));
    char v[64];
    cr_assert(config_get(re[0].socket_path, "appendonly", v, sizeof v));
    cr_assert_str_eq(v, "yes");
    cr_assert(config_get(re[0].socket_path, "appendfsync", v, sizeof v));
    cr_assert_str_eq(v, "everysec");
    cr_assert(config_get(re[0].socket_path, "port", v, sizeof v));
    cr_assert_str_eq(v, "0");
    cr_assert(config_get(re[0].socket_path, "save", v, sizeof v));
    cr_assert_str_eq(v, "");
    cr_assert(config_get(re[0].socket_path, "unixsocketperm", v, sizeof v));
    cr_assert_str_eq(v, "700");

    struct stat st;
    cr_assert_eq(stat(re[0].socket_path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700, "socket mode %o", st.st_mode & 0777);

    cr_assert_eq(redis_embed_stop(&re[0], 5000), 0);
    cr_assert_eq(re[0].pid, 0);
    cr_assert(gone(pid), "redis-server pid=%d still exists", (int)pid);
    cr_assert_not(answers_ping(re[0].socket_path));
    cr_assert_eq(redis_embed_stop(&re[0], 5000), 0, "second stop is a no-op");
}

Test(redis_embed, second_start_joins_and_joiner_stop_keeps_server)
{
    struct redis_embed_opts o = opts("everysec");
    cr_assert_eq(redis_embed_start(&o, &re[0], err, sizeof err), 0, "start: %s", err);
    cr_assert_gt(re[0].pid, 0);

    cr_assert_eq(redis_embed_start(&o, &re[1], err, sizeof err), 0, "join: %s", err);
    cr_assert_eq(re[1].pid, 0);
    cr_assert_str_eq(re[1].socket_path, re[0].socket_path);
    cr_assert_str_eq(re[1].url, re[0].url);

    cr_assert_eq(redis_embed_stop(&re[1], 1000), 0);
    cr_assert_eq(kill(re[0].pid, 0), 0);
    cr_assert(answers_ping(re[0].socket_path));

    pid_t pid = re[0].pid;
    cr_assert_eq(redis_embed_stop(&re[0], 5000), 0);
    cr_assert(gone(pid));
}

Test(redis_embed, appendfsync_always_is_honoured)
{
    struct redis_embed_opts o = opts("always");
    cr_assert_eq(redis_embed_start(&o, &re[0], err, sizeof err), 0, "start: %s", err);
    char v[64];
    cr_assert(config_get(re[0].socket_path, "appendfsync", v, sizeof v));
    cr_assert_str_eq(v, "always");
    cr_assert(config_get(re[0].socket_path, "appendonly", v, sizeof v));
    cr_assert_str_eq(v, "yes");
}

Test(redis_embed, bad_appendfsync_is_refused)
{
    struct redis_embed_opts o = opts("sometimes");
    cr_assert_lt(redis_embed_start(&o, &re[0], err, sizeof err), 0);
    cr_assert_not_null(strstr(err, "appendfsync"), "err: %s", err);
    cr_assert_eq(re[0].pid, 0);
}

Test(redis_embed, missing_binary_path_fails_fast)
{
    struct redis_embed_opts o = opts("everysec");
    o.server_bin = "/nonexistent/redis-server";
    long long t0 = now_ms();
    cr_assert_lt(redis_embed_start(&o, &re[0], err, sizeof err), 0);
    cr_assert_lt(now_ms() - t0, 2000);
    cr_assert_not_null(strstr(err, "/nonexistent/redis-server"), "err: %s", err);
    cr_assert_not_null(strstr(err, "No such file"), "err: %s", err);
    cr_assert_eq(re[0].pid, 0);
}

Test(redis_embed, missing_binary_in_path_fails_fast)
{
    struct redis_embed_opts o = opts("everysec");
    o.server_bin = "antre-no-such-redis-server";
    long long t0 = now_ms();
    cr_assert_lt(redis_embed_start(&o, &re[0], err, sizeof err), 0);
    cr_assert_lt(now_ms() - t0, 2000);
    cr_assert_not_null(strstr(err, "not found in PATH"), "err: %s", err);
}

Test(redis_embed, non_executable_binary_is_refused)
{
    char path[128];
    snprintf(path, sizeof path, "%s/not-exec", tmp);
    write_script(path, "#!/bin/sh\n");
    chmod(path, 0600);
    struct redis_embed_opts o = opts("everysec");
    o.server_bin = path;
    cr_assert_lt(redis_embed_start(&o, &re[0], err, sizeof err), 0);
    cr_assert_not_null(strstr(err, "not an executable"), "err: %s", err);
}

Test(redis_embed, early_exit_reports_status_and_log_tail)
{
    char path[128];
    snprintf(path, sizeof path, "%s/fails.sh", tmp);
    write_script(path, "#!/bin/sh\necho 'fake: fatal config error' >&2\nexit 3\n");
    struct redis_embed_opts o = opts("everysec");
    o.server_bin = path;
    long long t0 = now_ms();
    cr_assert_lt(redis_embed_start(&o, &re[0], err, sizeof err), 0);
    cr_assert_lt(now_ms() - t0, 2000);
    cr_assert_not_null(strstr(err, "exited during start-up (exit 3)"), "err: %s", err);
    cr_assert_not_null(strstr(err, "fake: fatal config error"), "err: %s", err);
    cr_assert_null(strchr(err, '\n'), "err is one line: %s", err);
}

Test(redis_embed, log_tail_fits_a_small_err_buffer)
{
    char path[128];
    snprintf(path, sizeof path, "%s/fails.sh", tmp);
    write_script(path, "#!/bin/sh\nfor i in 1 2 3 4 5 6 7 8 9; do echo \"line $i padding padding "
                       "padding padding\" >&2; done\necho LAST >&2\nexit 1\n");
    struct redis_embed_opts o = opts("everysec");
    o.server_bin = path;
    char small[120];
    memset(small, 'x', sizeof small);
    cr_assert_lt(redis_embed_start(&o, &re[0], small, sizeof small), 0);
    cr_assert_lt(strlen(small), sizeof small);
    size_t n = strlen(small);
    cr_assert(n >= 4 && strcmp(small + n - 4, "LAST") == 0, "keeps the end: %s", small);
}

Test(redis_embed, start_timeout_kills_and_reaps_the_child)
{
    char path[128], script[256];
    snprintf(path, sizeof path, "%s/hangs.sh", tmp);
    /* Ignores SIGTERM, so the abort path must fall back to SIGKILL. */
    snprintf(script, sizeof script,
             "#!/bin/sh\necho $$ > %s/fake.pid\ntrap '' TERM\nexec sleep 30\n", tmp);
    write_script(path, script);
    struct redis_embed_opts o = opts("everysec");
    o.server_bin = path;
    o.start_timeout_ms = 300;
    long long t0 = now_ms();
    cr_assert_lt(redis_embed_start(&o, &re[0], err, sizeof err), 0);
    cr_assert_lt(now_ms() - t0, 4000);
    cr_assert_not_null(strstr(err, "did not answer PING"), "err: %s", err);
    cr_assert_not_null(strstr(err, "killed"), "err: %s", err);

    snprintf(path, sizeof path, "%s/fake.pid", tmp);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    int pid = 0;
    cr_assert_eq(fscanf(f, "%d", &pid), 1);
    fclose(f);
    cr_assert(gone(pid), "child pid=%d still exists", pid);
}

Test(redis_embed, data_survives_stop_and_start)
{
    struct redis_embed_opts o = opts("everysec");
    cr_assert_eq(redis_embed_start(&o, &re[0], err, sizeof err), 0, "start: %s", err);
    redisContext *c = connect_sock(re[0].socket_path);
    cr_assert_not_null(c);
    redisReply *r = redisCommand(c, "SET antre:test hello");
    cr_assert(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
    pid_t first = re[0].pid;
    cr_assert_eq(redis_embed_stop(&re[0], 5000), 0);
    cr_assert(gone(first));

    cr_assert_eq(redis_embed_start(&o, &re[0], err, sizeof err), 0, "restart: %s", err);
    cr_assert_gt(re[0].pid, 0);
    c = connect_sock(re[0].socket_path);
    cr_assert_not_null(c);
    r = redisCommand(c, "GET antre:test");
    cr_assert(r && r->type == REDIS_REPLY_STRING, "GET gave no string");
    cr_assert_str_eq(r->str, "hello");
    freeReplyObject(r);
    redisFree(c);
}

Test(redis_embed, stale_socket_file_is_replaced)
{
    char path[128];
    snprintf(path, sizeof path, "%s/redis.sock", tmp);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    cr_assert_lt(strlen(path), sizeof sa.sun_path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd); /* the file stays; nothing listens */
    cr_assert_not(answers_ping(path));

    struct redis_embed_opts o = opts("everysec");
    cr_assert_eq(redis_embed_start(&o, &re[0], err, sizeof err), 0, "start: %s", err);
    cr_assert_gt(re[0].pid, 0);
    cr_assert(answers_ping(path));
}

Test(redis_embed, relative_dir_is_resolved_and_created_0700)
{
    cr_assert_eq(chdir(tmp), 0);
    struct redis_embed_opts o = opts("everysec");
    o.dir = "var/redis";
    cr_assert_eq(redis_embed_start(&o, &re[0], err, sizeof err), 0, "start: %s", err);
    char want[160];
    snprintf(want, sizeof want, "%s/var/redis/redis.sock", tmp);
    cr_assert_str_eq(re[0].socket_path, want);
    cr_assert_eq(re[0].socket_path[0], '/');

    struct stat st;
    snprintf(want, sizeof want, "%s/var", tmp);
    cr_assert_eq(stat(want, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700, "var mode %o", st.st_mode & 0777);
    snprintf(want, sizeof want, "%s/var/redis", tmp);
    cr_assert_eq(stat(want, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700, "var/redis mode %o", st.st_mode & 0777);
    snprintf(want, sizeof want, "%s/var/redis/redis.log", tmp);
    cr_assert_eq(stat(want, &st), 0, "redis.log exists");
    cr_assert(answers_ping(re[0].socket_path));
}

Test(redis_embed, too_long_socket_path_is_a_clear_error)
{
    char dir[200];
    snprintf(dir, sizeof dir, "%s/%s", tmp,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
             "aaaaaaaaaa");
    struct redis_embed_opts o = opts("everysec");
    o.dir = dir;
    cr_assert_lt(redis_embed_start(&o, &re[0], err, sizeof err), 0);
    cr_assert_not_null(strstr(err, "unix socket path"), "err: %s", err);
    cr_assert_not_null(strstr(err, "limit is 107"), "err: %s", err);
    cr_assert_eq(re[0].pid, 0);
}

Test(redis_embed, stop_kills_a_server_that_does_not_exit)
{
    struct redis_embed_opts o = opts("everysec");
    cr_assert_eq(redis_embed_start(&o, &re[0], err, sizeof err), 0, "start: %s", err);
    pid_t pid = re[0].pid;
    cr_assert_eq(kill(pid, SIGSTOP), 0); /* SIGTERM stays pending, SIGKILL still works */
    long long t0 = now_ms();
    cr_assert_lt(redis_embed_stop(&re[0], 300), 0);
    cr_assert_lt(now_ms() - t0, 3000);
    cr_assert_eq(re[0].pid, 0);
    cr_assert(gone(pid));
}

Test(redis_embed, live_server_that_does_not_answer_is_not_doubled)
{
    struct redis_embed_opts o = opts("everysec");
    cr_assert_eq(redis_embed_start(&o, &re[0], err, sizeof err), 0, "start: %s", err);
    /* Its socket file vanishes (e.g. someone cleaned the dir): it runs but nobody can reach it. */
    cr_assert_eq(unlink(re[0].socket_path), 0);
    o.start_timeout_ms = 500;
    cr_assert_lt(redis_embed_start(&o, &re[1], err, sizeof err), 0);
    cr_assert_not_null(strstr(err, "does not answer"), "err: %s", err);
    cr_assert_eq(re[1].pid, 0);
    cr_assert_eq(kill(re[0].pid, 0), 0);
}

Test(redis_embed, concurrent_starts_make_one_server)
{
    int go[2], report[2], done[2];
    cr_assert_eq(pipe(go), 0);
    cr_assert_eq(pipe(report), 0);
    cr_assert_eq(pipe(done), 0);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        char c;
        struct redis_embed mine;
        char cerr[512];
        struct redis_embed_opts co = opts("everysec");
        if (read(go[0], &c, 1) != 1) _exit(2);
        int rc = redis_embed_start(&co, &mine, cerr, sizeof cerr);
        int msg[2] = {rc, (int)mine.pid};
        if (write(report[1], msg, sizeof msg) != (ssize_t)sizeof msg) _exit(2);
        if (read(done[0], &c, 1) != 1) {
        }
        redis_embed_stop(&mine, 3000);
        _exit(0);
    }
    struct redis_embed_opts o = opts("everysec");
    cr_assert_eq(write(go[1], "g", 1), 1);
    int rc = redis_embed_start(&o, &re[0], err, sizeof err);
    int msg[2] = {-9, -9};
    cr_assert_eq(read(report[0], msg, sizeof msg), (ssize_t)sizeof msg);

    cr_expect_eq(rc, 0, "parent start: %s", err);
    cr_expect_eq(msg[0], 0, "child start failed");
    cr_expect_eq((re[0].pid > 0) + (msg[1] > 0), 1, "owners: parent pid=%d child pid=%d",
                 (int)re[0].pid, msg[1]);
    cr_expect(answers_ping(re[0].socket_path));

    /* Stop the child's server (if it owns it) before ours, then reap the child. */
    cr_assert_eq(write(done[1], "d", 1), 1);
    int status;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (msg[1] > 0) cr_assert(gone(msg[1]));
}

/* --- the owner's restart of a dead server (redis_embed_tick, redis_embed_reaped) ------------ */

/* Call redis_embed_tick on RE every 5 ms until PRED(RE) holds or MS pass. */
static bool tick_until(struct redis_embed *r, bool (*pred)(const struct redis_embed *), int ms)
{
    long long end = now_ms() + ms;
    while (now_ms() < end) {
        redis_embed_tick(r);
        if (pred(r)) return true;
        usleep(5000);
    }
    return false;
}

static bool restarted_and_answers(const struct redis_embed *r)
{
    return r->pid > 0 && answers_ping(r->socket_path);
}

static bool is_down(const struct redis_embed *r) { return r->pid == 0; }

static void set_key(const char *sock, const char *key, const char *val)
{
    redisContext *c = connect_sock(sock);
    cr_assert_not_null(c);
    redisReply *r = redisCommand(c, "SET %s %s", key, val);
    cr_assert(r && r->type == REDIS_REPLY_STATUS, "SET failed");
    freeReplyObject(r);
    redisFree(c);
}

static bool key_is(const char *sock, const char *key, const char *val)
{
    redisContext *c = connect_sock(sock);
    if (!c) return false;
    redisReply *r = redisCommand(c, "GET %s", key);
    bool ok = r && r->type == REDIS_REPLY_STRING && strcmp(r->str, val) == 0;
    if (r) freeReplyObject(r);
    redisFree(c);
    return ok;
}

Test(redis_embed, killed_server_is_restarted_on_the_same_socket_with_its_data)
{
    struct redis_embed_opts o = opts("everysec");
    cr_assert_eq(redis_embed_start(&o, &re[0], err, sizeof err), 0, "start: %s", err);
    cr_assert_eq(re[0].owner, 1);
    cr_assert_eq(redis_embed_tick(&re[0]), 0, "a running server needs nothing");
    /* Acknowledged with everysec, then the process (not the machine) dies: the write(2) Redis
     * made before answering is in the page cache and in the AOF after the restart. */
    set_key(re[0].socket_path, "antre:k", "v1");
    pid_t first = re[0].pid;
    cr_assert_eq(kill(first, SIGKILL), 0);
    long long t0 = now_ms();
    cr_assert(tick_until(&re[0], restarted_and_answers, 5000), "not restarted");
    cr_assert_geq(now_ms() - t0, REDIS_EMBED_RESTART_MIN_MS - 5, "restarted before its delay");
    cr_assert_neq(re[0].pid, first);
    cr_assert(gone(first), "the killed server was not reaped");
    cr_assert_eq(re[0].restarts, 1u);
    cr_assert(key_is(re[0].socket_path, "antre:k", "v1"), "the acknowledged write was lost");
    cr_assert_eq(redis_embed_tick(&re[0]), 0);

    /* Stopped by its owner: it stays stopped. */
    pid_t second = re[0].pid;
    cr_assert_eq(redis_embed_stop(&re[0], 5000), 0);
    cr_assert(gone(second));
    cr_assert_eq(re[0].owner, 0);
    for (int i = 0; i < 20; i++) cr_assert_eq(redis_embed_tick(&re[0]), 0);
    cr_assert_eq(re[0].pid, 0);
    cr_assert_not(answers_ping(re[0].socket_path));
}

Test(redis_embed, restart_delay_doubles_per_quick_death_and_resets_after_a_stable_run)
{
    struct redis_embed_opts o = opts("everysec");
    cr_assert_eq(redis_embed_start(&o, &re[0], err, sizeof err), 0, "start: %s", err);
    char real_bin[sizeof re[0].bin];
    memcpy(real_bin, re[0].bin, sizeof real_bin);
    /* From now on every restart runs a server that exits at once. */
    char fake[128];
    snprintf(fake, sizeof fake, "%s/failing", tmp);
    write_script(fake, "#!/bin/sh\nexit 3\n");
    snprintf(re[0].bin, sizeof re[0].bin, "%s", fake);

    cr_assert_eq(kill(re[0].pid, SIGKILL), 0);
    int want[] = {50, 100, 200, 400, 800};
    long long last = -1;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        /* Tick until the next death is noticed, then read the delay it scheduled. */
        long long end = now_ms() + 5000;
        while (!(re[0].pid == 0 && re[0].restart_at_ms && re[0].restart_at_ms != last)) {
            cr_assert_lt(now_ms(), end, "death %zu not noticed", i);
            redis_embed_tick(&re[0]);
            usleep(1000);
        }
        long long delay = re[0].restart_at_ms - now_ms();
        cr_assert(delay <= want[i] && delay > want[i] / 2, "death %zu: delay %lld, want %d", i,
                  delay, want[i]);
        last = re[0].restart_at_ms;
        cr_assert_eq(redis_embed_tick(&re[0]), 1, "down while waiting");
    }

    /* The real binary again; after it has stayed up long enough the delay is back to 50 ms. */
    memcpy(re[0].bin, real_bin, sizeof real_bin);
    re[0].restart_at_ms = now_ms();
    cr_assert(tick_until(&re[0], restarted_and_answers, 5000), "not restarted");
    re[0].started_ms -= REDIS_EMBED_STABLE_MS;
    cr_assert_eq(kill(re[0].pid, SIGKILL), 0);
    cr_assert(tick_until(&re[0], is_down, 3000));
    long long delay = re[0].restart_at_ms - now_ms();
    cr_assert(delay <= 50 && delay > 25, "delay after a stable run %lld", delay);
    cr_assert(tick_until(&re[0], restarted_and_answers, 5000), "not restarted");
}

Test(redis_embed, a_status_reaped_elsewhere_is_handed_over)
{
    struct redis_embed_opts o = opts("everysec");
    cr_assert_eq(redis_embed_start(&o, &re[0], err, sizeof err), 0, "start: %s", err);
    pid_t pid = re[0].pid;
    cr_assert_eq(redis_embed_reaped(&re[0], pid + 100000, 0), 0, "not its pid");
    cr_assert_eq(kill(pid, SIGKILL), 0);
    /* As a supervisor's waitpid(-1) would. */
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert_eq(redis_embed_reaped(&re[0], pid, status), 1);
    cr_assert_eq(re[0].pid, 0);
    cr_assert_gt(re[0].restart_at_ms, 0);
    cr_assert_eq(redis_embed_reaped(&re[0], pid, status), 0, "told twice");
    cr_assert(tick_until(&re[0], restarted_and_answers, 5000), "not restarted");
}

Test(redis_embed, joiner_never_restarts_and_owner_yields_to_a_newer_server)
{
    struct redis_embed_opts o = opts("everysec");
    cr_assert_eq(redis_embed_start(&o, &re[0], err, sizeof err), 0, "start: %s", err);
    cr_assert_eq(redis_embed_start(&o, &re[1], err, sizeof err), 0, "join: %s", err);
    cr_assert_eq(re[1].owner, 0);
    pid_t first = re[0].pid;
    cr_assert_eq(kill(first, SIGKILL), 0);
    usleep(100000);
    for (int i = 0; i < 10; i++) cr_assert_eq(redis_embed_tick(&re[1]), 0);
    cr_assert_not(answers_ping(re[0].socket_path), "the joiner started a server");

    /* Before the owner notices, another program finds the socket silent and starts one. */
    cr_assert_eq(redis_embed_start(&o, &re[2], err, sizeof err), 0, "third: %s", err);
    cr_assert_gt(re[2].pid, 0);
    long long end = now_ms() + 2000;
    while (re[0].owner && now_ms() < end) {
        redis_embed_tick(&re[0]);
        usleep(5000);
    }
    cr_assert_eq(re[0].owner, 0, "two servers on one dir");
    cr_assert_eq(re[0].pid, 0);
    cr_assert(gone(first));
    cr_assert(answers_ping(re[2].socket_path));
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    cr_assert_eq(lstat(path, &st), 0, "%s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

Test(redis_embed, files_are_private_and_old_ones_are_fixed)
{
    char sub[128], old[160], aof[512];
    snprintf(sub, sizeof sub, "%s/appendonlydir", tmp);
    cr_assert_eq(mkdir(sub, 0755), 0);
    cr_assert_eq(chmod(sub, 0755), 0);
    cr_assert_eq(chmod(tmp, 0755), 0);
    snprintf(old, sizeof old, "%s/old.aof", sub);
    int fd = open(old, O_WRONLY | O_CREAT, 0644);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(chmod(old, 0644), 0);

    struct redis_embed_opts o = opts("always");
    cr_assert_eq(redis_embed_start(&o, &re[0], err, sizeof err), 0, "start: %s", err);
    set_key(re[0].socket_path, "antre:k", "v");
    cr_assert_eq(mode_of(tmp), 0700);
    cr_assert_eq(mode_of(sub), 0700);
    cr_assert_eq(mode_of(old), 0600);
    /* What redis-server made itself, under the umask it was given. */
    DIR *d = opendir(sub);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(aof, sizeof aof, "%s/%s", sub, e->d_name);
        cr_expect_eq(mode_of(aof) & 077, 0, "%s is %o", aof, mode_of(aof));
        n++;
    }
    closedir(d);
    cr_assert_geq(n, 3, "the AOF files were not made");

    /* A restarted server keeps them so. */
    cr_assert_eq(chmod(old, 0644), 0);
    cr_assert_eq(kill(re[0].pid, SIGKILL), 0);
    cr_assert(tick_until(&re[0], restarted_and_answers, 5000), "not restarted");
    cr_assert_eq(mode_of(old), 0600);
}

Test(redis_embed, restarts_that_cannot_exec_back_off_too)
{
    struct redis_embed_opts o = opts("everysec");
    cr_assert_eq(redis_embed_start(&o, &re[0], err, sizeof err), 0, "start: %s", err);
    /* It ran long enough: its death starts at the shortest delay; then the binary is gone, and
     * every failed restart waits longer than the one before. */
    re[0].started_ms -= 2 * REDIS_EMBED_STABLE_MS;
    snprintf(re[0].bin, sizeof re[0].bin, "%s/no-such-redis-server", tmp);
    cr_assert_eq(kill(re[0].pid, SIGKILL), 0);
    cr_assert(tick_until(&re[0], is_down, 3000));
    long long prev = re[0].restart_at_ms - now_ms();
    cr_assert(prev <= 50 && prev > 25, "first delay %lld", prev);
    for (int i = 0; i < 3; i++) {
        long long at = re[0].restart_at_ms;
        while (re[0].restart_at_ms == at) {
            cr_assert_lt(now_ms(), at + 3000, "restart %d not attempted", i);
            cr_assert_eq(redis_embed_tick(&re[0]), 1);
            usleep(1000);
        }
        cr_assert_eq(re[0].pid, 0);
        long long delay = re[0].restart_at_ms - now_ms();
        cr_assert(2 * delay > 3 * prev, "failed restart %d: delay %lld after %lld", i, delay, prev);
        prev = delay;
    }
}
