/* test_fileutil.c: unit tests of mkdir -p, write_all and the directory fsync
 * (common/fileutil.c), on real files in a fresh mkdtemp directory removed by the teardown.
 * Criterion runs each test in its own process, so umask() is allowed. */
#include "antre/fileutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tmpdir.h"

static char tmp[TMPDIR_LEN];
static char err[512];

static void setup(void)
{
    tmpdir_make(tmp, "fileutil");
    err[0] = '\0';
}

static void teardown(void) { tmpdir_remove(tmp); }

TestSuite(fileutil, .init = setup, .fini = teardown, .timeout = 30);

static mode_t mode_of(const char *p)
{
    struct stat st;
    cr_assert_eq(stat(p, &st), 0, "stat %s: %s", p, strerror(errno));
    cr_assert(S_ISDIR(st.st_mode), "%s is not a directory", p);
    return st.st_mode & 07777;
}

Test(fileutil, mkdir_p_makes_every_level_with_the_mode)
{
    char p[256];
    umask(077); /* would turn 0750 into 0700 without the chmod */
    snprintf(p, sizeof p, "%s/a/b//c/", tmp);
    cr_assert_eq(fileutil_mkdir_p(p, 0750, err, sizeof err), 0, "%s", err);
    snprintf(p, sizeof p, "%s/a", tmp);
    cr_assert_eq(mode_of(p), 0750);
    snprintf(p, sizeof p, "%s/a/b/c", tmp);
    cr_assert_eq(mode_of(p), 0750);

    /* Existing directories are fine and keep their mode; the temp dir stays 0700. */
    cr_assert_eq(fileutil_mkdir_p(p, 0755, err, sizeof err), 0, "%s", err);
    cr_assert_eq(mode_of(p), 0750);
    cr_assert_eq(mode_of(tmp), 0700);

    /* Relative paths work from the working directory. */
    cr_assert_eq(chdir(tmp), 0);
    cr_assert_eq(fileutil_mkdir_p("rel/x", 0700, err, sizeof err), 0, "%s", err);
    cr_assert_eq(mode_of("rel/x"), 0700);
    cr_assert_eq(fileutil_mkdir_p("/", 0700, err, sizeof err), 0, "%s", err);
}

Test(fileutil, mkdir_p_failures_name_the_directory)
{
    char p[256], f[256];
    snprintf(f, sizeof f, "%s/file", tmp);
    int fd = open(f, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    close(fd);

    snprintf(p, sizeof p, "%s/file/sub", tmp);
    errno = 0;
    cr_assert_eq(fileutil_mkdir_p(p, 0700, err, sizeof err), -1);
    cr_assert_eq(errno, ENOTDIR);
    cr_assert(strstr(err, "cannot create directory") && strstr(err, "/file:"), "%s", err);
    cr_assert_eq(fileutil_mkdir_p(f, 0700, err, sizeof err), -1);
    cr_assert_eq(errno, ENOTDIR);

    cr_assert_eq(fileutil_mkdir_p("", 0700, err, sizeof err), -1);
    cr_assert_eq(fileutil_mkdir_p(NULL, 0700, NULL, 0), -1);
    char longp[5000];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    cr_assert_eq(fileutil_mkdir_p(longp, 0700, err, sizeof err), -1);
    cr_assert_eq(errno, ENAMETOOLONG);

    /* A read-only parent: EACCES (unless we are root, who may write anywhere). */
    if (geteuid() != 0) {
        snprintf(p, sizeof p, "%s/ro", tmp);
        cr_assert_eq(mkdir(p, 0500), 0);
        snprintf(p, sizeof p, "%s/ro/x/y", tmp);
        cr_assert_eq(fileutil_mkdir_p(p, 0700, err, sizeof err), -1);
        cr_assert_eq(errno, EACCES);
        cr_assert(strstr(err, "/ro/x") != NULL, "%s", err);
    }
}

Test(fileutil, mkdir_parents_of_a_file)
{
    char p[256], d[256];
    snprintf(p, sizeof p, "%s/k/e/y/secret", tmp);
    cr_assert_eq(fileutil_mkdir_parents(p, 0700, err, sizeof err), 0, "%s", err);
    snprintf(d, sizeof d, "%s/k/e/y", tmp);
    cr_assert_eq(mode_of(d), 0700);
    snprintf(d, sizeof d, "%s/k/e/y/secret", tmp);
    cr_assert_eq(access(d, F_OK), -1, "the file itself must not be made");
    cr_assert_eq(fileutil_mkdir_parents("secret", 0700, err, sizeof err), 0);
    cr_assert_eq(fileutil_mkdir_parents("/secret", 0700, err, sizeof err), 0);
}

Test(fileutil, write_all_through_a_pipe_in_pieces)
{
    /* A pipe holds 64 KB: a 1 MB write is necessarily partial, and a reader drains it. */
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    size_t n = 1 << 20;
    unsigned char *buf = malloc(n), *back = malloc(n);
    for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)(i * 7 + i / 251);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(pfd[0]);
        _exit(fileutil_write_all(pfd[1], buf, n) == 0 ? 0 : 1);
    }
    close(pfd[1]);
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(pfd[0], back + got, n - got);
        cr_assert_gt(r, 0);
        got += (size_t)r;
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cr_assert_eq(memcmp(buf, back, n), 0);
    close(pfd[0]);
    free(buf);
    free(back);
}

Test(fileutil, write_all_reports_errors)
{
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    close(pfd[0]);
    signal(SIGPIPE, SIG_IGN);
    errno = 0;
    cr_assert_eq(fileutil_write_all(pfd[1], "x", 1), -1);
    cr_assert_eq(errno, EPIPE);
    close(pfd[1]);
    cr_assert_eq(fileutil_write_all(-1, "x", 1), -1);
    cr_assert_eq(errno, EBADF);
    cr_assert_eq(fileutil_write_all(-1, "x", 0), 0, "nothing to write is a success");

    char f[256];
    snprintf(f, sizeof f, "%s/out", tmp);
    int fd = open(f, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_eq(fileutil_write_all(fd, "hello", 5), 0);
    close(fd);
    struct stat st;
    cr_assert_eq(stat(f, &st), 0);
    cr_assert_eq(st.st_size, 5);
}

Test(fileutil, fsync_parent)
{
    char f[256];
    snprintf(f, sizeof f, "%s/file", tmp);
    cr_assert_eq(fileutil_fsync_parent(f), 0, "%s", strerror(errno));
    cr_assert_eq(fileutil_fsync_parent("/etc"), 0, "the parent of /etc is /");
    cr_assert_eq(chdir(tmp), 0);
    cr_assert_eq(fileutil_fsync_parent("file"), 0);
    snprintf(f, sizeof f, "%s/missing/file", tmp);
    cr_assert_eq(fileutil_fsync_parent(f), -1);
    cr_assert_eq(errno, ENOENT);
}
