/* test_program.c: unit tests of the common start-up (common/program.c).
 *
 * program_start must run on a good file, stop with status 0 after -t and -h, 1 on a file with
 * errors, 2 on a bad command line; -j exists only where the program offers it and takes 1..64.
 * program_reload must keep the running configuration when the file has errors, apply what may
 * change, keep what needs a restart, and follow [log] level. */
#include "antre/program.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];
static struct conf conf;

static void setup(void)
{
    snprintf(path, sizeof path, "/tmp/antre-test-program-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
    close(fd);
    cr_redirect_stdout();
    cr_redirect_stderr();
}

static void teardown(void) { unlink(path); }

static void write_conf(const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* program_start with the NULL-terminated arguments after the program name. */
static int start(struct program *p, const char *jobs_help, ...)
{
    char *argv[16];
    int argc = 0;
    argv[argc++] = (char *)"antre-test";
    va_list ap;
    va_start(ap, jobs_help);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 15;) argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    memset(p, 0, sizeof *p);
    p->name = "antre-test";
    p->conf = &conf;
    p->jobs_help = jobs_help;
    optind = 0; /* glibc: start getopt afresh */
    return program_start(p, argc, argv);
}

TestSuite(program, .init = setup, .fini = teardown);

Test(program, runs_on_a_good_file)
{
    struct program p;
    write_conf("[gateway]\nmax_headers = 32\n[log]\nlevel = warn\n");
    cr_assert_eq(start(&p, NULL, "-c", path, NULL), 0);
    cr_assert_str_eq(p.conf_path, path);
    cr_assert_eq(conf.gateway.max_headers, 32);
    cr_assert_str_eq(conf.log.level, "warn");
    cr_assert_eq(p.jobs, 0);
}

Test(program, check_only)
{
    struct program p;
    write_conf("[gateway]\nmax_headers = 32\n");
    cr_assert_eq(start(&p, NULL, "-t", "-c", path, NULL), -1);
    cr_assert_eq(p.exit_status, 0);
    fflush(stdout);
    cr_assert_stdout_eq_str("ok\n");
}

Test(program, errors_stop_with_1)
{
    struct program p;
    write_conf("[gateway]\nmax_headers = many\n[log]\nlevel = loud\n");
    cr_assert_eq(start(&p, NULL, "-t", "-c", path, NULL), -1);
    cr_assert_eq(p.exit_status, 1);
    cr_assert_eq(start(&p, NULL, "-c", path, NULL), -1, "not -t: still not started");
    cr_assert_eq(p.exit_status, 1);
}

Test(program, help_and_bad_options)
{
    struct program p;
    cr_assert_eq(start(&p, NULL, "-h", NULL), -1);
    cr_assert_eq(p.exit_status, 0);
    cr_assert_eq(start(&p, NULL, "-x", NULL), -1);
    cr_assert_eq(p.exit_status, 2);
    cr_assert_eq(start(&p, NULL, "-j", "2", NULL), -1, "-j only where offered");
    cr_assert_eq(p.exit_status, 2);
}

Test(program, jobs)
{
    struct program p;
    write_conf("");
    cr_assert_eq(start(&p, "processes", "-j", "3", "-c", path, NULL), 0);
    cr_assert_eq(p.jobs, 3);
    cr_assert_eq(start(&p, "processes", "-j", "64", "-c", path, NULL), 0);
    cr_assert_eq(p.jobs, 64);
    const char *bad[] = {"0", "65", "-1", "3x", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(start(&p, "processes", "-j", bad[i], "-c", path, NULL), -1, "-j '%s'", bad[i]);
        cr_assert_eq(p.exit_status, 2, "-j '%s'", bad[i]);
    }
}

Test(program, reload)
{
    struct program p;
    write_conf("[gateway]\nmax_headers = 32\nprocesses = 2\n");
    cr_assert_eq(start(&p, NULL, "-c", path, NULL), 0);

    write_conf("[gateway]\nmax_headers = oops\n");
    cr_assert_eq(program_reload(&conf, "test", 1), -1);
    cr_assert_eq(conf.gateway.max_headers, 32, "errors: the running configuration stays");

    write_conf("[gateway]\nmax_headers = 48\nprocesses = 4\n[log]\nlevel = error\n");
    cr_assert_eq(program_reload(&conf, "test", 1), 0);
    cr_assert_eq(conf.gateway.max_headers, 48, "reloadable: applied");
    cr_assert_eq(conf.gateway.processes, 2, "restart-only: kept");
    cr_assert_str_eq(conf.log.level, "error");
    cr_assert_str_eq(conf.path, path);
}
