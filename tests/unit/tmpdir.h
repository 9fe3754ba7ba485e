/* tmpdir.h: a unit test's own temporary directory: made fresh in the suite's setup, removed
 * with all it holds in the teardown (which Criterion runs even after a failed assertion), and a
 * helper to write a small file into it with a given mode. Header-only: every test binary is one
 * translation unit. */
#ifndef ANTRE_TESTS_TMPDIR_H
#define ANTRE_TESTS_TMPDIR_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMPDIR_LEN 64

/* Make a fresh directory /tmp/antre_STEM_XXXXXX into DIR (TMPDIR_LEN bytes); asserts. */
static inline void tmpdir_make(char dir[TMPDIR_LEN], const char *stem)
{
    snprintf(dir, TMPDIR_LEN, "/tmp/antre_%s_XXXXXX", stem);
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static inline int tmpdir_remove_entry(const char *path, const struct stat *sb, int flag,
                                      struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Remove DIR and everything below it (symlinks are removed, not followed). "" is ignored. */
static inline void tmpdir_remove(const char *dir)
{
    if (dir[0]) nftw(dir, tmpdir_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write TEXT to DIR/NAME (replacing it) with MODE; returns the path, in a static buffer that
 * the next four calls leave alone. Asserts. */
static inline const char *tmpdir_write(const char *dir, const char *name, const char *text,
                                       mode_t mode)
{
    static char paths[4][256];
    static int slot;
    char *path = paths[slot++ % 4];
    snprintf(path, 256, "%s/%s", dir, name);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    size_t len = strlen(text);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    cr_assert_eq(fchmod(fd, mode), 0);
    close(fd);
    return path;
}

#endif
