/* test_conf.c: unit tests of the directive table, the INI loader and the reload merge
 * (common/conf.c).
 *
 * Every test writes its file into a private temporary directory, so the expected errors can
 * name the exact path and line. The shipped conf/antre.conf is read twice: by conf_load, and by
 * a small independent reader here, so the file and the table cannot drift apart. */
#include "antre/conf.h"
#include "antre/rconn.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];
static char cfpath[320];
static int nfiles;

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/antre-test-conf-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
    nfiles = 0;
}

static void teardown(void)
{
    char p[400];
    for (int i = 0; i < nfiles; i++) {
        snprintf(p, sizeof p, "%s/%d.conf", tmpdir, i);
        unlink(p);
    }
    rmdir(tmpdir);
}

TestSuite(conf, .init = setup, .fini = teardown);

/* Write TEXT to a fresh file; its path is left in cfpath. */
static const char *write_file(const char *text)
{
    snprintf(cfpath, sizeof cfpath, "%s/%d.conf", tmpdir, nfiles++);
    FILE *f = fopen(cfpath, "w");
    cr_assert_not_null(f, "fopen %s: %s", cfpath, strerror(errno));
    cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    cr_assert_eq(fclose(f), 0);
    return cfpath;
}

/* Load TEXT; returns conf_load's result, with the errors in ERR. */
static int load(struct conf *c, const char *text, char *err, size_t errlen)
{
    const char *p = write_file(text);
    return conf_load(c, p, err, errlen);
}

/* How many lines ERR holds. */
static int count_lines(const char *err)
{
    int n = 0;
    for (const char *s = err; *s; s++) n += *s == '\n';
    return n;
}

/* Assert that ERR holds exactly the line "PATH:LINE: REST" (REST is the full remainder). */
static void assert_has_line(const char *err, int line, const char *rest)
{
    char want[1200];
    snprintf(want, sizeof want, "%s:%d: %s\n", cfpath, line, rest);
    /* match at the start of a line */
    const char *s = err;
    int found = 0;
    while ((s = strstr(s, want)) != NULL) {
        if (s == err || s[-1] == '\n') {
            found = 1;
            break;
        }
        s++;
    }
    cr_assert(found, "expected error line\n  %s\nin\n%s", want, err);
}

/* Load a one-directive file "[SECTION]\nNAME = VALUE\n" that must fail with REASON on line 2. */
static void expect_error(const char *section, const char *name, const char *value,
                         const char *reason)
{
    char text[600], err[2048], rest[900];
    struct conf c;
    snprintf(text, sizeof text, "[%s]\n%s = %s\n", section, name, value);
    cr_assert_eq(load(&c, text, err, sizeof err), -1, "%s = %s should be refused", name, value);
    snprintf(rest, sizeof rest, "[%s] %s: %s", section, name, reason);
    assert_has_line(err, 2, rest);
    cr_assert_eq(count_lines(err), 1, "one error only, got:\n%s", err);
}

/* Load a one-directive file that must succeed; C receives the result. */
static void expect_ok(struct conf *c, const char *section, const char *name, const char *value)
{
    char text[600], err[2048];
    snprintf(text, sizeof text, "[%s]\n%s = %s\n", section, name, value);
    int r = load(c, text, err, sizeof err);
    cr_assert_eq(r, 0, "%s = %s should load, got:\n%s", name, value, err);
    cr_assert_str_empty(err);
}

/* The repository root, from this file's path as the compiler saw it (relative or absolute). */
static void repo_path(char *out, size_t outlen, const char *rel)
{
    const char *me = __FILE__;
    const char *tail = strstr(me, "tests/unit/test_conf.c");
    cr_assert_not_null(tail);
    snprintf(out, outlen, "%.*s%s", (int)(tail - me), me, rel);
}

/* The section to write for a table section: "room.*" stands for any [room.NAME]. */
static const char *file_section(const char *table_section)
{
    return strcmp(table_section, "room.*") == 0 ? "room.t" : table_section;
}

/* A and B agree outside their rooms. */
static int same_outside_rooms(const struct conf *a, const struct conf *b)
{
    return memcmp(a, b, offsetof(struct conf, rooms)) == 0;
}

/* A room named NAME with every default, as the loader builds it. */
static void default_room(struct conf_room *out, const char *name)
{
    char text[128], err[1024];
    struct conf c;
    snprintf(text, sizeof text, "[room.%s]\nmode = fifo\n", name);
    int r = load(&c, text, err, sizeof err);
    cr_assert_eq(r, 0, "%s", err);
    cr_assert_eq(c.nrooms, 1);
    *out = c.rooms[0];
}

/* ---- defaults ---------------------------------------------------------------------------- */

Test(conf, defaults)
{
    struct conf c;
    conf_defaults(&c); /* aborts if a default does not parse */
    cr_assert_str_eq(c.path, "");
    cr_assert_str_eq(c.gateway.listen.text, "127.0.0.1:8080");
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&c.gateway.listen.sa;
    cr_assert_eq(s4->sin_family, AF_INET);
    cr_assert_eq(ntohs(s4->sin_port), 8080);
    cr_assert_eq(ntohl(s4->sin_addr.s_addr), INADDR_LOOPBACK);
    cr_assert_eq(c.gateway.listen.salen, sizeof(struct sockaddr_in));
    cr_assert_str_eq(c.gateway.admin_listen.text, "127.0.0.1:8081");
    cr_assert_str_eq(c.gateway.admin_token_file, "");
    cr_assert_eq(c.gateway.processes, 1);
    cr_assert_eq(c.gateway.backlog, 4096);
    cr_assert_eq(c.gateway.max_connections, 20000);
    cr_assert_eq(c.gateway.max_url_bytes, 4096);
    cr_assert_eq(c.gateway.max_header_bytes, 16384);
    cr_assert_eq(c.gateway.max_headers, 64);
    cr_assert_eq(c.gateway.max_body_bytes, 65536);
    cr_assert_eq(c.gateway.header_timeout_ms, 10000);
    cr_assert_eq(c.gateway.body_timeout_ms, 30000);
    cr_assert_eq(c.gateway.idle_timeout_ms, 60000);
    cr_assert_eq(c.gateway.write_timeout_ms, 30000);
    cr_assert_eq(c.gateway.drain_timeout_ms, 10000);
    cr_assert_eq(c.gateway.per_ip_rate, 0.0);
    cr_assert_eq(c.gateway.per_ip_burst, 20);
    cr_assert_eq(c.gateway.per_ip_table_size, 65536);
    cr_assert_str_eq(c.gateway.access_log, "off");
    cr_assert_str_eq(c.gateway.secret_file, "var/secret");
    cr_assert_str_eq(c.log.level, "info");
    cr_assert_str_eq(c.redis.url, "embedded");
    cr_assert_eq(c.redis.timeout_ms, 1000);
    cr_assert_eq(c.redis.max_pending, 10000);
    cr_assert_str_eq(c.redis.appendfsync, "everysec");
    cr_assert_str_eq(c.redis.server_bin, "redis-server");
    cr_assert_str_eq(c.redis.dir, "var/redis");
    cr_assert_eq(c.worker.processes, 1);
    cr_assert_str_eq(c.worker.admin_listen.text, "127.0.0.1:8082");
    cr_assert_eq(c.worker.drain_timeout_ms, 10000);
}

/* Every directive's default, written to a file, loads to the defaults; every directive has a
 * help line. */
Test(conf, every_default_loads_from_a_file)
{
    const struct conf_directive_info *d;
    struct conf_room room_t;
    default_room(&room_t, "t");
    size_t n = 0;
    for (size_t i = 0; (d = conf_directive_at(i)) != NULL; i++, n++) {
        cr_assert_not_null(d->section);
        cr_assert_not_null(d->name);
        cr_assert_not_null(d->def);
        cr_assert(d->help && d->help[0], "[%s] %s has no help", d->section, d->name);
        cr_assert(d->reloadable == 0 || d->reloadable == 1);
        char section[64], name[64], def[CONF_STR];
        snprintf(section, sizeof section, "%s", file_section(d->section));
        snprintf(name, sizeof name, "%s", d->name);
        snprintf(def, sizeof def, "%s", d->def);
        struct conf c, dc;
        expect_ok(&c, section, name, def);
        conf_defaults(&dc);
        memcpy(dc.path, c.path, sizeof dc.path);
        cr_assert(same_outside_rooms(&c, &dc), "[%s] %s = %s differs from the default", section,
                  name, def);
        if (strncmp(section, "room.", 5) == 0) {
            cr_assert_eq(c.nrooms, 1);
            cr_assert(memcmp(&c.rooms[0], &room_t, sizeof room_t) == 0,
                      "[%s] %s = %s differs from the default", section, name, def);
        } else {
            cr_assert_eq(c.nrooms, 0);
        }
    }
    cr_assert_geq(n, 30, "the table lists %zu directives", n);
    cr_assert_null(conf_directive_at(n));
    cr_assert_null(conf_directive_at(n + 1000));
}

Test(conf, room_defaults)
{
    struct conf_room r;
    default_room(&r, "gelombang-1");
    cr_assert_str_eq(r.name, "gelombang-1");
    cr_assert_str_eq(r.mode, "fifo");
    cr_assert_eq(conf_room_mode(&r), ROOM_MODE_FIFO);
    cr_assert_eq(r.admit_rate_per_min, 600.0);
    cr_assert_eq(r.max_active, 1000);
    cr_assert_eq(r.session_ttl_s, 1800);
    cr_assert_eq(r.redeem_window_s, 300);
    cr_assert_eq(r.paused, 0);
    cr_assert_eq(r.prequeue_from, 0);
    cr_assert_eq(r.opens_at, 0);
    cr_assert_eq(r.closes_at, 0);
    struct conf c;
    conf_defaults(&c);
    cr_assert_eq(c.nrooms, 0, "no room unless the file has one");
}

/* ---- the shipped file -------------------------------------------------------------------- */

struct fileline {
    char section[64];
    char name[64];
    char value[CONF_STR];
    int line;
};

/* Read conf/antre.conf with a reader independent of inih: sections and `name = value` lines. */
static int read_shipped(const char *path, struct fileline *out, int max)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
    char buf[1024], section[64] = "";
    int n = 0, line = 0;
    while (fgets(buf, sizeof buf, f)) {
        line++;
        size_t len = strlen(buf);
        cr_assert(len && buf[len - 1] == '\n', "%s:%d: line too long or unterminated", path, line);
        buf[--len] = 0;
        if (len && buf[len - 1] == '\r') buf[--len] = 0;
        char *s = buf;
        while (*s == ' ' || *s == '\t') s++;
        if (!*s || *s == '#' || *s == ';') continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            cr_assert_not_null(close, "%s:%d: bad section line", path, line);
            *close = 0;
            snprintf(section, sizeof section, "%s", s + 1);
            continue;
        }
        char *eq = strchr(s, '=');
        cr_assert_not_null(eq, "%s:%d: not name = value: %s", path, line, s);
        char *ne = eq;
        while (ne > s && (ne[-1] == ' ' || ne[-1] == '\t')) ne--;
        char *v = eq + 1;
        while (*v == ' ' || *v == '\t') v++;
        char *ve = v + strlen(v);
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        cr_assert_lt(n, max);
        cr_assert(section[0], "%s:%d: directive outside a section", path, line);
        snprintf(out[n].section, sizeof out[n].section, "%s", section);
        snprintf(out[n].name, sizeof out[n].name, "%.*s", (int)(ne - s), s);
        snprintf(out[n].value, sizeof out[n].value, "%.*s", (int)(ve - v), v);
        out[n].line = line;
        n++;
    }
    fclose(f);
    return n;
}

Test(conf, shipped_file_lists_every_directive_with_its_default)
{
    char path[512];
    repo_path(path, sizeof path, "conf/antre.conf");
    struct fileline lines[256];
    int n = read_shipped(path, lines, 256);

    /* [room.NAME] sections stand for the table's "room.*"; count the rooms */
    char rooms[CONF_MAX_ROOMS][64];
    int nrooms = 0;
    for (int j = 0; j < n; j++) {
        if (strncmp(lines[j].section, "room.", 5) != 0) continue;
        int known = 0;
        for (int k = 0; k < nrooms; k++) known |= strcmp(rooms[k], lines[j].section + 5) == 0;
        if (!known) {
            cr_assert_lt(nrooms, CONF_MAX_ROOMS);
            snprintf(rooms[nrooms++], sizeof rooms[0], "%s", lines[j].section + 5);
        }
        snprintf(lines[j].section, sizeof lines[j].section, "room.*");
    }
    cr_expect_geq(nrooms, 1, "%s shows no [room.NAME] section", path);

    /* table -> file: each directive exactly once (once per room), set to its default */
    const struct conf_directive_info *d;
    size_t ndir = 0, nroomdir = 0;
    for (size_t i = 0; (d = conf_directive_at(i)) != NULL; i++, ndir++) {
        int is_room = strcmp(d->section, "room.*") == 0;
        nroomdir += is_room;
        int found = 0;
        for (int j = 0; j < n; j++) {
            if (strcmp(lines[j].section, d->section) || strcmp(lines[j].name, d->name)) continue;
            found++;
            cr_expect_str_eq(lines[j].value, d->def, "%s:%d: [%s] %s = '%s', default is '%s'", path,
                             lines[j].line, d->section, d->name, lines[j].value, d->def);
        }
        cr_expect_eq(found, is_room ? nrooms : 1, "[%s] %s appears %d times in %s", d->section,
                     d->name, found, path);
    }
    /* file -> table: nothing in the file that the table does not know */
    for (int j = 0; j < n; j++) {
        int known = 0;
        for (size_t i = 0; (d = conf_directive_at(i)) != NULL; i++)
            if (!strcmp(lines[j].section, d->section) && !strcmp(lines[j].name, d->name)) known = 1;
        cr_expect(known, "%s:%d: [%s] %s is not in the table", path, lines[j].line,
                  lines[j].section, lines[j].name);
    }
    cr_expect_eq((size_t)n, ndir - nroomdir + (size_t)nrooms * nroomdir,
                 "%s has %d directives, the table %zu", path, n, ndir);

    /* and conf_load agrees: the file loads to exactly the defaults, rooms included */
    struct conf c, dc;
    char err[4096];
    int r = conf_load(&c, path, err, sizeof err);
    cr_assert_eq(r, 0, "conf_load %s:\n%s", path, err);
    cr_assert_str_empty(err);
    cr_assert_str_eq(c.path, path);
    conf_defaults(&dc);
    memcpy(dc.path, c.path, sizeof dc.path);
    cr_assert(same_outside_rooms(&c, &dc), "%s does not load to the defaults", path);
    cr_assert_eq(c.nrooms, nrooms);
    for (int k = 0; k < nrooms; k++) {
        struct conf_room want;
        default_room(&want, rooms[k]);
        const struct conf_room *got = conf_room_find(&c, rooms[k], strlen(rooms[k]));
        cr_assert_not_null(got, "room %s", rooms[k]);
        cr_assert(memcmp(got, &want, sizeof want) == 0, "room %s is not all defaults", rooms[k]);
    }
}

/* Directives marked "(restart to change)" in the shipped file are exactly the non-reloadable
 * ones, so operators are told the truth. */
Test(conf, shipped_file_marks_restart_only_directives)
{
    char path[512];
    repo_path(path, sizeof path, "conf/antre.conf");
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char buf[1024], prev[1024] = "", section[64] = "";
    while (fgets(buf, sizeof buf, f)) {
        buf[strcspn(buf, "\n")] = 0;
        if (buf[0] == '[') {
            snprintf(section, sizeof section, "%.*s", (int)strcspn(buf + 1, "]"), buf + 1);
            if (strncmp(section, "room.", 5) == 0) snprintf(section, sizeof section, "room.*");
        } else if (buf[0] && buf[0] != '#' && buf[0] != ';' && strchr(buf, '=')) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)strcspn(buf, " \t="), buf);
            const struct conf_directive_info *d;
            for (size_t i = 0; (d = conf_directive_at(i)) != NULL; i++) {
                if (strcmp(d->section, section) || strcmp(d->name, name)) continue;
                int marked = strstr(prev, "(restart to change)") != NULL;
                cr_expect_eq(marked, !d->reloadable,
                             "[%s] %s: reloadable=%d but its comment says '%s'", section, name,
                             d->reloadable, prev);
            }
        }
        snprintf(prev, sizeof prev, "%s", buf);
    }
    fclose(f);
}

/* ---- single-directive errors ------------------------------------------------------------- */

Test(conf, unknown_directive)
{
    expect_error("gateway", "max_conections", "10", "unknown directive");
}

Test(conf, downstream_url_is_http_or_empty)
{
    expect_error("downstream", "url", "ftp://reg.example/in",
                 "must start with http:// or https:// (or be empty)");
    expect_error("downstream", "url", "reg.example/in",
                 "must start with http:// or https:// (or be empty)");
    struct conf c;
    conf_defaults(&c);
    cr_assert_str_empty(c.downstream.url, "the default accepts registrations locally");
    cr_assert_eq(c.downstream.max_response_bytes, 65536);
    cr_assert_eq(c.queue[1].rate, 23.0, "the civil registry's historical quota");
}

Test(conf, unknown_section) { expect_error("gatway", "max_connections", "10", "unknown section"); }

Test(conf, bad_integer)
{
    expect_error("gateway", "max_connections", "12x", "'12x' is not an integer");
    expect_error("gateway", "max_connections", "ten", "'ten' is not an integer");
    expect_error("gateway", "max_connections", "1.5", "'1.5' is not an integer");
    expect_error("gateway", "max_connections", "", "'' is not an integer");
    expect_error("gateway", "max_connections", "99999999999999999999",
                 "'99999999999999999999' is not an integer");
}

Test(conf, integer_bounds)
{
    struct conf c;
    expect_error("gateway", "max_connections", "0", "0 is out of bounds [1, 1000000]");
    expect_error("gateway", "max_connections", "1000001", "1000001 is out of bounds [1, 1000000]");
    expect_error("gateway", "max_connections", "-5", "-5 is out of bounds [1, 1000000]");
    expect_error("gateway", "header_timeout_ms", "99", "99 is out of bounds [100, 600000]");
    expect_error("gateway", "processes", "65", "65 is out of bounds [1, 64]");
    expect_error("redis", "timeout_ms", "9", "9 is out of bounds [10, 60000]");
    /* both ends are inclusive */
    expect_ok(&c, "gateway", "max_connections", "1");
    cr_assert_eq(c.gateway.max_connections, 1);
    expect_ok(&c, "gateway", "max_connections", "1000000");
    cr_assert_eq(c.gateway.max_connections, 1000000);
    expect_ok(&c, "gateway", "header_timeout_ms", "100");
    cr_assert_eq(c.gateway.header_timeout_ms, 100);
    expect_ok(&c, "gateway", "drain_timeout_ms", "0");
    cr_assert_eq(c.gateway.drain_timeout_ms, 0);
}

Test(conf, sizes)
{
    struct conf c;
    expect_ok(&c, "gateway", "max_body_bytes", "64k");
    cr_assert_eq(c.gateway.max_body_bytes, 65536);
    expect_ok(&c, "gateway", "max_body_bytes", "64K");
    cr_assert_eq(c.gateway.max_body_bytes, 65536);
    expect_ok(&c, "gateway", "max_body_bytes", "2M");
    cr_assert_eq(c.gateway.max_body_bytes, 2 * 1024 * 1024);
    expect_ok(&c, "gateway", "max_body_bytes", "1G");
    cr_assert_eq(c.gateway.max_body_bytes, 1073741824);
    expect_ok(&c, "gateway", "max_body_bytes", "12345");
    cr_assert_eq(c.gateway.max_body_bytes, 12345);
    expect_ok(&c, "gateway", "max_body_bytes", "0");
    cr_assert_eq(c.gateway.max_body_bytes, 0);
}

Test(conf, bad_sizes)
{
    const char *reason = "is not a size (bytes, or with k, M, G)";
    const char *bad[] = {"12x", "1.5M", "64kb", "-1", "", "99999999999999999999", "1k2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char r[128];
        snprintf(r, sizeof r, "'%s' %s", bad[i], reason);
        expect_error("gateway", "max_body_bytes", bad[i], r);
    }
    expect_error("gateway", "max_body_bytes", "2G", "2147483648 is out of bounds [0, 1073741824]");
    expect_error("gateway", "max_body_bytes", "1073741825",
                 "1073741825 is out of bounds [0, 1073741824]");
}

/* A suffix with no number is not a size (it must not read as 0 bytes). */
Test(conf, size_suffix_alone_is_not_a_size)
{
    expect_error("gateway", "max_body_bytes", "k", "'k' is not a size (bytes, or with k, M, G)");
    expect_error("gateway", "max_body_bytes", "M", "'M' is not a size (bytes, or with k, M, G)");
}

Test(conf, doubles)
{
    struct conf c;
    expect_ok(&c, "gateway", "per_ip_rate", "2.5");
    cr_assert_eq(c.gateway.per_ip_rate, 2.5);
    expect_ok(&c, "gateway", "per_ip_rate", "1e6");
    cr_assert_eq(c.gateway.per_ip_rate, 1e6);
    expect_error("gateway", "per_ip_rate", "fast", "'fast' is not a number");
    expect_error("gateway", "per_ip_rate", "2.5/s", "'2.5/s' is not a number");
    expect_error("gateway", "per_ip_rate", "nan", "'nan' is not a number");
    expect_error("gateway", "per_ip_rate", "inf", "'inf' is not a number");
    expect_error("gateway", "per_ip_rate", "-1", "-1 is out of bounds [0, 1e+06]");
    expect_error("gateway", "per_ip_rate", "1e7", "1e+07 is out of bounds [0, 1e+06]");
}

Test(conf, addresses)
{
    struct conf c;
    expect_ok(&c, "gateway", "listen", "[::1]:8080");
    cr_assert_str_eq(c.gateway.listen.text, "[::1]:8080");
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&c.gateway.listen.sa;
    cr_assert_eq(s6->sin6_family, AF_INET6);
    cr_assert_eq(ntohs(s6->sin6_port), 8080);
    cr_assert(memcmp(&s6->sin6_addr, &in6addr_loopback, sizeof in6addr_loopback) == 0);
    cr_assert_eq(c.gateway.listen.salen, sizeof(struct sockaddr_in6));

    expect_ok(&c, "gateway", "listen", "*:8080");
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&c.gateway.listen.sa;
    cr_assert_eq(s4->sin_family, AF_INET);
    cr_assert_eq(ntohs(s4->sin_port), 8080);
    cr_assert_eq(s4->sin_addr.s_addr, htonl(INADDR_ANY));
    cr_assert_str_eq(c.gateway.listen.text, "*:8080");

    expect_ok(&c, "gateway", "listen", "10.1.2.3:1");
    cr_assert_eq(ntohl(s4->sin_addr.s_addr), 0x0a010203u);
    cr_assert_eq(ntohs(s4->sin_port), 1);

    expect_ok(&c, "gateway", "listen", "localhost:9000");
    cr_assert_eq(s4->sin_family, AF_INET);
    cr_assert_eq(ntohl(s4->sin_addr.s_addr), INADDR_LOOPBACK);
    cr_assert_eq(ntohs(s4->sin_port), 9000);

    expect_ok(&c, "worker", "admin_listen", "[::1]:0");
    cr_assert_eq(((const struct sockaddr_in6 *)&c.worker.admin_listen.sa)->sin6_family, AF_INET6);
}

Test(conf, bad_addresses)
{
    expect_error("gateway", "listen", "127.0.0.1", "expected host:port");
    expect_error("gateway", "listen", "127.0.0.1:", "bad port '' (0-65535)");
    expect_error("gateway", "listen", "127.0.0.1:65536", "bad port '65536' (0-65535)");
    expect_error("gateway", "listen", "127.0.0.1:80x", "bad port '80x' (0-65535)");
    expect_error("gateway", "listen", "127.0.0.1:-1", "bad port '-1' (0-65535)");
    expect_error("gateway", "listen", "example.com:80",
                 "'example.com' is not a numeric IPv4/IPv6 address, localhost or *");
    expect_error("gateway", "listen", "256.1.1.1:80",
                 "'256.1.1.1' is not a numeric IPv4/IPv6 address, localhost or *");
    expect_error("gateway", "listen", "[::1]8080", "expected [v6addr]:port");
    expect_error("gateway", "listen", "[::1:8080", "expected [v6addr]:port");
    expect_error("gateway", "listen", "[::g]:8080",
                 "'::g' is not a numeric IPv4/IPv6 address, localhost or *");
    expect_error("worker", "admin_listen",
                 "127.0.0.1:80000000000000000000000000000000000000000000000000000000000000",
                 "address too long");
}

Test(conf, bad_enum)
{
    expect_error("log", "level", "verbose", "'verbose' is not one of: debug info warn error");
    expect_error("redis", "appendfsync", "no", "'no' is not one of: everysec always");
    expect_error("redis", "appendfsync", "Always", "'Always' is not one of: everysec always");
    struct conf c;
    expect_ok(&c, "redis", "appendfsync", "always");
    cr_assert_str_eq(c.redis.appendfsync, "always");
    expect_ok(&c, "log", "level", "debug");
    cr_assert_str_eq(c.log.level, "debug");
    expect_error("gateway", "log_level", "debug", "unknown directive");
}

#define WANT_URL "(want embedded, redis://[user[:password]@]host[:port][/db] or unix:/path[?db=N])"

/* `[redis] url` is checked by the client's own parser (rconn_url_parse), so -t accepts exactly
 * what the client connects to. */
Test(conf, redis_urls)
{
    expect_error("redis", "url", "redis://h:0", "bad port in 'redis://h:0' (want 1-65535)");
    expect_error("redis", "url", "redis://h:65536", "bad port in 'redis://h:65536' (want 1-65535)");
    expect_error("redis", "url", "redis://:6379", "missing host in 'redis://:6379'");
    expect_error("redis", "url", "redis://h:1/-1", "bad database number in 'redis://h:1/-1'");
    expect_error("redis", "url", "unix:relative",
                 "socket path must be absolute in 'unix:relative'");
    expect_error("redis", "url", "unix:", "missing socket path in 'unix:'");
    expect_error("redis", "url", "unix:/x?foo=1",
                 "unknown parameter in 'unix:/x?foo=1' (only db=N)");
    expect_error("redis", "url", "http://x", "unsupported redis url 'http://x' " WANT_URL);
    expect_error("redis", "url", "Embedded", "unsupported redis url 'Embedded' " WANT_URL);
    expect_error("redis", "url", "", "must not be empty");
    /* A user needs a password, and a refused URL never shows its password. */
    expect_error("redis", "url", "redis://u@h",
                 "a user without a password in 'redis://u@h' (want user:password@ or :password@)");
    expect_error("redis", "url", "redis://u:hunter2@h:0",
                 "bad port in 'redis://u:***@h:0' (want 1-65535)");

    const char *good[] = {"embedded",
                          "redis://127.0.0.1",
                          "redis://127.0.0.1:6379",
                          "redis://h:6379/0",
                          "redis://h:6379/15",
                          "redis://h:6379/99",
                          "redis://[::1]:6379/3",
                          "redis://u:p@h:6379",
                          "redis://:p%40ss@h",
                          "unix:/tmp/redis.sock",
                          "unix:/tmp/redis.sock?db=2"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct conf c;
        expect_ok(&c, "redis", "url", good[i]);
        cr_assert_str_eq(c.redis.url, good[i]);
    }

    /* -t and the client agree: every URL above gets the same verdict from rconn_url_parse. */
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_assert_eq(rconn_url_parse(good[i], NULL, NULL, 0), 0, "%s", good[i]);
    cr_assert_eq(rconn_url_parse("unix:/x?foo=1", NULL, NULL, 0), -1);
}

Test(conf, strings)
{
    struct conf c;
    expect_ok(&c, "gateway", "access_log", "-");
    cr_assert_str_eq(c.gateway.access_log, "-");
    expect_ok(&c, "gateway", "admin_token_file", "");
    cr_assert_str_eq(c.gateway.admin_token_file, "");
    expect_error("gateway", "secret_file", "", "must not be empty");
    expect_error("redis", "dir", "", "must not be empty");
}

Test(conf, set_twice)
{
    struct conf c;
    char err[2048];
    cr_assert_eq(load(&c, "[gateway]\nmax_connections = 5\n\n# again\nmax_connections = 6\n", err,
                      sizeof err),
                 -1);
    assert_has_line(err, 5, "[gateway] max_connections: set twice (first at line 2)");
    cr_assert_eq(count_lines(err), 1, "%s", err);
}

/* The same name in two sections is two directives, not one set twice. */
Test(conf, same_name_in_two_sections)
{
    struct conf c;
    char err[2048];
    int r = load(&c, "[gateway]\nprocesses = 3\n[worker]\nprocesses = 5\n", err, sizeof err);
    cr_assert_eq(r, 0, "%s", err);
    cr_assert_eq(c.gateway.processes, 3);
    cr_assert_eq(c.worker.processes, 5);
}

Test(conf, directive_outside_any_section)
{
    struct conf c;
    char err[2048];
    cr_assert_eq(load(&c, "# comment\nmax_connections = 5\n[gateway]\n", err, sizeof err), -1);
    assert_has_line(err, 2, "[] max_connections: directive outside any section");
    cr_assert_eq(count_lines(err), 1, "%s", err);
}

Test(conf, line_too_long)
{
    struct conf c;
    char err[2048], text[2048];
    char longc[301], longv[601];
    memset(longc, 'x', sizeof longc - 1);
    longc[sizeof longc - 1] = 0;
    memset(longv, 'a', sizeof longv - 1);
    longv[sizeof longv - 1] = 0;
    /* line 2: a 302-byte comment; line 4: a 613-byte directive; line 5 must still be line 5 */
    snprintf(text, sizeof text,
             "[gateway]\n# %s\nmax_connections = 7\naccess_log = %s\nmax_headers = 3\n", longc,
             longv);
    cr_assert_eq(load(&c, text, err, sizeof err), -1);
    assert_has_line(err, 2, "line longer than 198 bytes");
    assert_has_line(err, 4, "line longer than 198 bytes");
    assert_has_line(err, 5, "[gateway] max_headers: 3 is out of bounds [4, 1024]");
    cr_assert_eq(count_lines(err), 3, "%s", err);
    cr_assert_eq(c.gateway.max_connections, 7, "the line after a long one is still read");
    cr_assert_str_eq(c.gateway.access_log, "off", "the long line is not applied");
}

/* A long line that ends the file without a newline is reported too. */
Test(conf, line_too_long_at_end_of_file)
{
    struct conf c;
    char err[2048], text[1024];
    char longv[401];
    memset(longv, 'b', sizeof longv - 1);
    longv[sizeof longv - 1] = 0;
    snprintf(text, sizeof text, "[gateway]\nmax_connections = 7\naccess_log = %s", longv);
    cr_assert_eq(load(&c, text, err, sizeof err), -1);
    assert_has_line(err, 3, "line longer than 198 bytes");
    cr_assert_eq(count_lines(err), 1, "%s", err);
}

Test(conf, line_just_short_enough)
{
    struct conf c;
    char err[2048], text[1024];
    /* "access_log = " is 13 bytes; with 185 more the line is 198 bytes plus its newline */
    char v[186];
    memset(v, 'c', sizeof v - 1);
    v[sizeof v - 1] = 0;
    snprintf(text, sizeof text, "[gateway]\naccess_log = %s\nmax_connections = 9\n", v);
    int r = load(&c, text, err, sizeof err);
    cr_assert_eq(r, 0, "%s", err);
    cr_assert_str_eq(c.gateway.access_log, v);
    cr_assert_eq(c.gateway.max_connections, 9);
}

Test(conf, syntax_error)
{
    struct conf c;
    char err[2048];
    cr_assert_eq(load(&c, "[gateway]\nmax_connections = 5\nthis is not a directive\n", err,
                      sizeof err),
                 -1);
    assert_has_line(err, 3, "syntax error (expected [section] or name = value)");
    cr_assert_eq(count_lines(err), 1, "%s", err);

    cr_assert_eq(load(&c, "[gateway\nmax_connections = 5\n", err, sizeof err), -1);
    assert_has_line(err, 1, "syntax error (expected [section] or name = value)");
}

/* Every problem in a file is reported, each with its own line, in one pass. */
Test(conf, multiple_errors_all_reported)
{
    struct conf c;
    char err[4096];
    const char *text = "# antre\n"                 /* 1 */
                       "[gateway]\n"               /* 2 */
                       "max_connections = lots\n"  /* 3 */
                       "listen = 127.0.0.1:8090\n" /* 4 */
                       "max_headers = 2\n"         /* 5 */
                       "bogus = 1\n"               /* 6 */
                       "\n"                        /* 7 */
                       "[redis]\n"                 /* 8 */
                       "url = http://x\n"          /* 9 */
                       "appendfsync = sometimes\n" /* 10 */
                       "[nosuch]\n"                /* 11 */
                       "a = b\n"                   /* 12 */
                       "[gateway]\n"               /* 13 */
                       "max_connections = 10\n"    /* 14 */
                       "max_body_bytes = 3Q\n";    /* 15 */
    cr_assert_eq(load(&c, text, err, sizeof err), -1);
    assert_has_line(err, 3, "[gateway] max_connections: 'lots' is not an integer");
    assert_has_line(err, 5, "[gateway] max_headers: 2 is out of bounds [4, 1024]");
    assert_has_line(err, 6, "[gateway] bogus: unknown directive");
    assert_has_line(err, 9, "[redis] url: unsupported redis url 'http://x' " WANT_URL);
    assert_has_line(err, 10, "[redis] appendfsync: 'sometimes' is not one of: everysec always");
    assert_has_line(err, 12, "[nosuch] a: unknown section");
    assert_has_line(err, 14, "[gateway] max_connections: set twice (first at line 3)");
    assert_has_line(err, 15,
                    "[gateway] max_body_bytes: '3Q' is not a size (bytes, or with k, M, G)");
    cr_assert_eq(count_lines(err), 8, "%s", err);
    /* in file order */
    const char *p3 = strstr(err, ":3: "), *p15 = strstr(err, ":15: ");
    cr_assert(p3 && p15 && p3 < p15, "%s", err);
}

/* Two syntax errors are two errors: the operator fixes the file in one pass. */
Test(conf, multiple_syntax_errors_all_reported)
{
    struct conf c;
    char err[4096];
    const char *text = "[gateway]\n"           /* 1 */
                       "oops\n"                /* 2 */
                       "max_connections = 0\n" /* 3 */
                       "again oops\n";         /* 4 */
    cr_assert_eq(load(&c, text, err, sizeof err), -1);
    assert_has_line(err, 2, "syntax error (expected [section] or name = value)");
    assert_has_line(err, 3, "[gateway] max_connections: 0 is out of bounds [1, 1000000]");
    assert_has_line(err, 4, "syntax error (expected [section] or name = value)");
    cr_assert_eq(count_lines(err), 3, "%s", err);
}

/* Checks across directives name both. */
Test(conf, cross_checks)
{
    struct conf c;
    char err[2048];
    cr_assert_eq(load(&c, "[gateway]\nlisten = 127.0.0.1:9000\nadmin_listen = 127.0.0.1:9000\n",
                      err, sizeof err),
                 -1);
    cr_assert_not_null(strstr(err, "[gateway] admin_listen: same address as listen"), "%s", err);
    cr_assert_eq(count_lines(err), 1, "%s", err);

    cr_assert_eq(load(&c, "[gateway]\nmax_url_bytes = 8192\nmax_header_bytes = 4096\n", err,
                      sizeof err),
                 -1);
    cr_assert_not_null(strstr(err, "[gateway] max_url_bytes: larger than max_header_bytes (4096)"),
                       "%s", err);
}

/* Errors that do not fit in ERR are dropped whole; ERR stays a valid string. */
Test(conf, error_buffer_small)
{
    struct conf c;
    char err[64];
    memset(err, 'Z', sizeof err);
    cr_assert_eq(load(&c, "[gateway]\nmax_connections = x\nmax_headers = y\n", err, sizeof err),
                 -1);
    cr_assert_lt(strlen(err), sizeof err);
    cr_assert(err[0] == 0 || err[strlen(err) - 1] == '\n', "partial line: %s", err);
}

Test(conf, missing_file)
{
    struct conf c;
    char err[1024], path[400];
    snprintf(path, sizeof path, "%s/does-not-exist.conf", tmpdir);
    cr_assert_eq(conf_load(&c, path, err, sizeof err), -1);
    char want[600];
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory\n", path);
    cr_assert_str_eq(err, want);
}

Test(conf, empty_file_is_the_defaults)
{
    struct conf c, dc;
    char err[1024];
    cr_assert_eq(load(&c, "", err, sizeof err), 0, "%s", err);
    conf_defaults(&dc);
    memcpy(dc.path, c.path, sizeof dc.path);
    cr_assert(memcmp(&c, &dc, sizeof c) == 0);
}

Test(conf, comments_and_spacing)
{
    struct conf c;
    char err[1024];
    int r = load(&c,
                 "; semicolon comment\n# hash comment\n\n[gateway]\n  max_connections=42\n"
                 "max_headers   =   8   ; inline comment\n",
                 err, sizeof err);
    cr_assert_eq(r, 0, "%s", err);
    cr_assert_eq(c.gateway.max_connections, 42);
    cr_assert_eq(c.gateway.max_headers, 8);
}

/* ---- rooms -------------------------------------------------------------------------------- */

Test(conf, rooms_load)
{
    struct conf c;
    char err[2048];
    int r = load(&c,
                 "[room.gelombang-1]\nmode = passthrough\nadmit_rate_per_min = 12.5\n"
                 "max_active = 50\npaused = yes\nopens_at = 2026-11-28T20:00:00+07:00\n"
                 "closes_at = 2026-11-28T21:00:00.250Z\n"
                 "[room.b_2]\nmode = reject\npaused = off\n",
                 err, sizeof err);
    cr_assert_eq(r, 0, "%s", err);
    cr_assert_eq(c.nrooms, 2);
    const struct conf_room *g = conf_room_find(&c, "gelombang-1", 11);
    cr_assert_not_null(g);
    cr_assert_eq(conf_room_mode(g), ROOM_MODE_PASSTHROUGH);
    cr_assert_eq(g->admit_rate_per_min, 12.5);
    cr_assert_eq(g->max_active, 50);
    cr_assert_eq(g->paused, 1);
    cr_assert_eq(g->opens_at, 1795870800000LL);
    cr_assert_eq(g->closes_at, 1795870800000LL + 3600 * 1000 + 7 * 3600 * 1000 + 250);
    cr_assert_str_eq(g->opens_at_text, "2026-11-28T20:00:00+07:00");
    cr_assert_eq(g->session_ttl_s, 1800, "unset directives keep their default");
    const struct conf_room *b = conf_room_find(&c, "b_2xyz", 3);
    cr_assert_eq(b, &c.rooms[1]);
    cr_assert_eq(conf_room_mode(b), ROOM_MODE_REJECT);
    cr_assert_eq(b->paused, 0);
    cr_assert_null(conf_room_find(&c, "b_", 2));
    cr_assert_null(conf_room_find(&c, "gelombang", 9));
}

Test(conf, room_errors)
{
    expect_error("room.Besar", "mode", "fifo", "room name may hold only a-z, 0-9, - and _");
    expect_error("room.a.b", "mode", "fifo", "room name may hold only a-z, 0-9, - and _");
    expect_error("room.", "mode", "fifo", "room name must be 1-32 characters");
    expect_error("room.abcdefghijabcdefghijabcdefghijabc", "mode", "fifo",
                 "room name must be 1-32 characters");
    expect_error("room.x", "mode", "lifo", "'lifo' is not one of: fifo passthrough reject");
    expect_error("room.x", "paused", "maybe", "'maybe' is not yes or no");
    expect_error("room.x", "max_active", "0", "0 is out of bounds [1, 10000000]");
    expect_error("room.x", "admit_rate_per_min", "0", "0 is out of bounds [0.01, 1e+07]");
    expect_error("room.x", "size", "3", "unknown directive");
    expect_error("room.x", "opens_at", "tomorrow",
                 "'tomorrow' is not an RFC 3339 time (2026-11-28T20:00:00+07:00)");
    expect_error("room.x", "opens_at", "2026-02-30T00:00:00Z",
                 "'2026-02-30T00:00:00Z' is not an RFC 3339 time (2026-11-28T20:00:00+07:00)");
    expect_error("room.x", "opens_at", "2026-11-28T20:00:00",
                 "'2026-11-28T20:00:00' is not an RFC 3339 time (2026-11-28T20:00:00+07:00)");
    /* a name of exactly 32 characters is fine */
    struct conf c;
    expect_ok(&c, "room.abcdefghijabcdefghijabcdefghij", "mode", "fifo");
    cr_assert_str_eq(c.rooms[0].name, "abcdefghijabcdefghijabcdefghij");
}

Test(conf, room_time_order)
{
    struct conf c;
    char err[2048];
    cr_assert_eq(load(&c, "[room.x]\nprequeue_from = 2030-01-01T00:00:00Z\n", err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "[room.x] prequeue_from: needs opens_at"), "%s", err);
    cr_assert_eq(load(&c,
                      "[room.x]\nprequeue_from = 2030-01-02T00:00:00Z\n"
                      "opens_at = 2030-01-01T00:00:00Z\n",
                      err, sizeof err),
                 -1);
    cr_assert_not_null(strstr(err, "[room.x] prequeue_from: must be before opens_at"), "%s", err);
    cr_assert_eq(load(&c,
                      "[room.x]\nopens_at = 2030-01-01T00:00:00Z\n"
                      "closes_at = 2030-01-01T00:00:00Z\n",
                      err, sizeof err),
                 -1);
    cr_assert_not_null(strstr(err, "[room.x] closes_at: must be after opens_at"), "%s", err);
    cr_assert_eq(load(&c,
                      "[room.x]\nprequeue_from = 2029-12-31T00:00:00Z\n"
                      "opens_at = 2030-01-01T00:00:00Z\ncloses_at = 2030-01-01T00:00:01Z\n",
                      err, sizeof err),
                 0, "%s", err);
}

Test(conf, too_many_rooms)
{
    char text[4096], err[4096];
    size_t len = 0;
    for (int i = 0; i <= CONF_MAX_ROOMS; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "[room.r%d]\nmode = fifo\n", i);
    struct conf c;
    cr_assert_eq(load(&c, text, err, sizeof err), -1);
    char want[64];
    snprintf(want, sizeof want, "[room.r%d] mode: more than %d rooms", CONF_MAX_ROOMS,
             CONF_MAX_ROOMS);
    assert_has_line(err, 2 * CONF_MAX_ROOMS + 2, want);
    cr_assert_eq(count_lines(err), 1, "%s", err);
}

/* A room's directive set twice is an error, as anywhere else in the file. */
Test(conf, room_directive_set_twice)
{
    struct conf c;
    char err[2048];
    cr_assert_eq(load(&c, "[room.x]\nmode = fifo\nmax_active = 5\nmode = reject\n", err,
                      sizeof err),
                 -1, "accepted");
    assert_has_line(err, 4, "[room.x] mode: set twice (first at line 2)");
}

/* Two [room.x] headers name one room: their directives merge, and a repeat is still a repeat. */
Test(conf, room_section_reopened)
{
    struct conf c;
    char err[2048];
    int r = load(&c,
                 "[room.x]\nmode = reject\n[gateway]\nmax_connections = 5\n[room.x]\n"
                 "max_active = 7\n",
                 err, sizeof err);
    cr_assert_eq(r, 0, "%s", err);
    cr_assert_eq(c.nrooms, 1);
    cr_assert_str_eq(c.rooms[0].mode, "reject");
    cr_assert_eq(c.rooms[0].max_active, 7);
}

Test(conf, time_parse)
{
    int64_t ms;
    cr_assert_eq(conf_time_parse("2026-11-28T20:00:00+07:00", &ms), 0);
    cr_assert_eq(ms, 1795870800000LL);
    cr_assert_eq(conf_time_parse("2026-11-28T13:00:00Z", &ms), 0);
    cr_assert_eq(ms, 1795870800000LL);
    cr_assert_eq(conf_time_parse("2026-11-28T13:00:00.5z", &ms), 0);
    cr_assert_eq(ms, 1795870800500LL);
    cr_assert_eq(conf_time_parse("2026-11-28T13:00:00.123456Z", &ms), 0);
    cr_assert_eq(ms, 1795870800123LL);
    cr_assert_eq(conf_time_parse("2030-01-01T00:00:00-05:30", &ms), 0);
    cr_assert_eq(ms, 1893475800000LL);
    const char *bad[] = {"",
                         "2026-11-28",
                         "2026-11-28 20:00:00Z",
                         "2026-13-01T00:00:00Z",
                         "2026-11-31T00:00:00Z",
                         "2026-11-28T24:00:00Z",
                         "2026-11-28T20:00:00+7:00",
                         "2026-11-28T20:00:00+07:00x",
                         "2026-11-28T20:00:00.Z",
                         "2026-11-28T20:00:00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(conf_time_parse(bad[i], &ms), -1, "'%s' accepted", bad[i]);
}

/* ---- reload -------------------------------------------------------------------------------- */

Test(conf, reload_keeps_restart_only_values)
{
    struct conf old, newc;
    char err[2048], note[1024];
    conf_defaults(&old);
    int r = load(&newc,
                 "[gateway]\nlisten = 127.0.0.1:9090\nprocesses = 4\nmax_connections = 5\n"
                 "per_ip_rate = 3.5\nmax_body_bytes = 2M\n[log]\nlevel = debug\n"
                 "[redis]\ntimeout_ms = 2000\n[worker]\ndrain_timeout_ms = 500\n",
                 err, sizeof err);
    cr_assert_eq(r, 0, "%s", err);
    int changed = conf_reload_merge(&old, &newc, note, sizeof note);
    cr_assert_eq(changed, 3, "note:\n%s", note);
    cr_assert_not_null(
        strstr(note, "[gateway] listen: changed in the file; takes effect after a restart\n"), "%s",
        note);
    cr_assert_not_null(
        strstr(note, "[gateway] processes: changed in the file; takes effect after a restart\n"),
        "%s", note);
    cr_assert_not_null(
        strstr(note, "[redis] timeout_ms: changed in the file; takes effect after a restart\n"),
        "%s", note);
    cr_assert_eq(count_lines(note), 3, "%s", note);
    /* restart-only: the running values, address included */
    cr_assert_str_eq(newc.gateway.listen.text, "127.0.0.1:8080");
    cr_assert_eq(ntohs(((const struct sockaddr_in *)&newc.gateway.listen.sa)->sin_port), 8080);
    cr_assert_eq(newc.gateway.processes, 1);
    cr_assert_eq(newc.redis.timeout_ms, 1000);
    /* reloadable: the new values */
    cr_assert_eq(newc.gateway.max_connections, 5);
    cr_assert_str_eq(newc.log.level, "debug");
    cr_assert_eq(newc.gateway.per_ip_rate, 3.5);
    cr_assert_eq(newc.gateway.max_body_bytes, 2 * 1024 * 1024);
    cr_assert_eq(newc.worker.drain_timeout_ms, 500);
}

Test(conf, reload_without_restart_only_changes)
{
    struct conf old, newc;
    char err[2048], note[256];
    conf_defaults(&old);
    int r =
        load(&newc, "[gateway]\nmax_connections = 5\nlisten = 127.0.0.1:8080\n", err, sizeof err);
    cr_assert_eq(r, 0, "%s", err);
    memset(note, 'Z', sizeof note);
    cr_assert_eq(conf_reload_merge(&old, &newc, note, sizeof note), 0);
    cr_assert_str_empty(note);
    cr_assert_eq(newc.gateway.max_connections, 5);
}

/* Every restart-only directive of the table is kept and reported; every reloadable one is
 * let through. Driven by the table, so a new directive is covered without editing this test. */
Test(conf, reload_merge_follows_the_table)
{
    const struct conf_directive_info *d;
    struct conf old;
    conf_defaults(&old);
    for (size_t i = 0; (d = conf_directive_at(i)) != NULL; i++) {
        char section[64], name[64], def[CONF_STR], value[CONF_STR + 8], extra[128] = "";
        snprintf(section, sizeof section, "%s", file_section(d->section));
        snprintf(name, sizeof name, "%s", d->name);
        snprintf(def, sizeof def, "%s", d->def);
        int reloadable = d->reloadable;
        /* a value different from the default, valid for its type */
        if (strcmp(name, "listen") == 0) snprintf(value, sizeof value, "127.0.0.1:18080");
        else if (strstr(name, "admin_listen")) snprintf(value, sizeof value, "127.0.0.1:18081");
        else if (strcmp(name, "level") == 0) snprintf(value, sizeof value, "warn");
        else if (strcmp(name, "appendfsync") == 0) snprintf(value, sizeof value, "always");
        else if (strcmp(name, "mode") == 0) snprintf(value, sizeof value, "reject");
        else if (strcmp(name, "paused") == 0 || strcmp(name, "reject_blurry") == 0)
            snprintf(value, sizeof value, "yes");
        else if (strcmp(name, "starttls") == 0) snprintf(value, sizeof value, "no");
        else if (strcmp(name, "proxy_protocol") == 0) snprintf(value, sizeof value, "on");
        else if (strcmp(name, "trusted_proxies") == 0)
            snprintf(value, sizeof value, "10.0.0.0/8, ::1");
        else if (strcmp(name, "method") == 0) snprintf(value, sizeof value, "PUT");
        else if (strcmp(name, "url") == 0)
            snprintf(value, sizeof value, "%s",
                     !strcmp(section, "smtp")    ? "smtp://mail.example:587"
                     : !strcmp(section, "redis") ? "unix:/tmp/x.sock"
                                                 : "https://reg.example/in");
        else if (strcmp(name, "continue_url") == 0) snprintf(value, sizeof value, "/daftar");
        else if (strcmp(name, "prequeue_from") == 0) {
            snprintf(value, sizeof value, "2030-01-01T00:00:00Z");
            snprintf(extra, sizeof extra, "opens_at = 2030-01-02T00:00:00Z\n");
        } else if (strcmp(name, "opens_at") == 0 || strcmp(name, "closes_at") == 0)
            snprintf(value, sizeof value, "2030-01-01T00:00:00+07:00");
        else if (def[0] >= '0' && def[0] <= '9') {
            long long v = atoll(def);
            size_t dl = strlen(def);
            const char *unit = (def[dl - 1] >= 'A' && def[dl - 1] <= 'z') ? def + dl - 1 : "";
            snprintf(value, sizeof value, "%lld%s", v > 100 || unit[0] ? v - 1 : v + 1, unit);
        } else snprintf(value, sizeof value, "%s-other", def);

        char text[600], err[2048], note[512];
        snprintf(text, sizeof text, "[%s]\n%s = %s\n%s", section, name, value, extra);
        struct conf newc;
        int r = load(&newc, text, err, sizeof err);
        cr_assert_eq(r, 0, "[%s] %s = %s: %s", section, name, value, err);
        struct conf loaded = newc;
        int changed = conf_reload_merge(&old, &newc, note, sizeof note);
        struct conf want;
        conf_defaults(&want);
        memcpy(want.path, newc.path, sizeof want.path);
        if (reloadable) {
            cr_expect_eq(changed, 0, "[%s] %s is reloadable: %s", section, name, note);
            cr_expect_str_empty(note);
            cr_expect(memcmp(&loaded, &newc, sizeof newc) == 0, "[%s] %s = %s was not let through",
                      section, name, value);
        } else {
            char line[256];
            snprintf(line, sizeof line,
                     "[%s] %s: changed in the file; takes effect after a restart\n", section, name);
            cr_expect_eq(changed, 1, "[%s] %s = %s: changed %d: %s", section, name, value, changed,
                         note);
            cr_expect_str_eq(note, line);
            cr_expect(memcmp(&want, &newc, sizeof want) == 0,
                      "[%s] %s: the running value was not kept", section, name);
        }
    }
}

/* [queue.NAME]: each queue its own settings, in queue[] by enum job_queue order; the register
 * queue's rate defaults to 23/s; every one reloadable. */
Test(conf, queue_sections)
{
    struct conf c;
    conf_defaults(&c);
    cr_assert_eq(c.queue[1].rate, 23.0);
    cr_assert_eq(c.queue[0].rate, 0.0);
    cr_assert_eq(c.queue[1].max_attempts, 8);
    expect_ok(&c, "queue.register", "rate", "20");
    cr_assert_eq(c.queue[1].rate, 20.0);
    cr_assert_eq(c.queue[0].rate, 0.0);
    expect_ok(&c, "queue.upload", "concurrency", "3");
    cr_assert_eq(c.queue[0].concurrency, 3);
    cr_assert_eq(c.queue[1].concurrency, 16);
    expect_ok(&c, "queue.verify", "backoff_max_ms", "1000");
    cr_assert_eq(c.queue[2].backoff_max_ms, 1000);
    expect_error("queue.register", "concurrency", "0", "0 is out of bounds [1, 10000]");
    expect_error("queue.register", "rate", "-1", "-1 is out of bounds [0, 1e+06]");
    expect_error("queue.mail", "rate", "1", "unknown section");
    const struct conf_directive_info *d;
    for (size_t i = 0; (d = conf_directive_at(i)) != NULL; i++)
        if (!strncmp(d->section, "queue.", 6))
            cr_assert(d->reloadable, "[%s] %s", d->section, d->name);
}

Test(conf, trusted_proxies_are_checked_at_load_with_the_line_and_reason)
{
    struct conf c;
    expect_ok(&c, "gateway", "trusted_proxies", "127.0.0.1/32, 10.0.0.0/8 ::1/128");
    cr_assert_str_eq(c.gateway.trusted_proxies, "127.0.0.1/32, 10.0.0.0/8 ::1/128");
    expect_ok(&c, "gateway", "trusted_proxies", "");
    expect_error("gateway", "trusted_proxies", "10.0.0.0/33",
                 "'10.0.0.0/33': the prefix length must be 0-32");
    expect_error("gateway", "trusted_proxies", "10.0.0.1/8",
                 "'10.0.0.1/8' has bits set after its /8 prefix");
    expect_error("gateway", "trusted_proxies", "127.0.0.1/32, lb.example",
                 "'lb.example' is not a numeric IPv4 or IPv6 address");
    expect_ok(&c, "gateway", "proxy_protocol", "on");
    cr_assert_eq(c.gateway.proxy_protocol, 1);
}
