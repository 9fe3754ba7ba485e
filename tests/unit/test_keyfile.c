/* test_keyfile.c: unit tests of the signing-key file (common/keyfile.c): its syntax, its
 * permissions, and its creation when absent.
 *
 * Each test works in its own mkdtemp directory, removed by the teardown even when an assertion
 * failed. Criterion runs each test in its own process, so umask() is allowed. That processes
 * racing to create the file agree on one, and that tokens survive a reload, is tested through
 * the token API in test_token.c. */
#include "antre/keyfile.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tmpdir.h"

#define HEX1 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define HEX2 "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f"
#define HEX3 "5555555555555555555555555555555555555555555555555555555555555555"
#define PEPPER "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"

static char tmp[TMPDIR_LEN];
static char err[1024];

static void setup(void)
{
    err[0] = '\0';
    tmpdir_make(tmp, "keyfile");
}

static void teardown(void) { tmpdir_remove(tmp); }

TestSuite(keyfile, .init = setup, .fini = teardown, .timeout = 60);

/* Write TEXT to TMP/NAME with MODE; returns the path (tmpdir_write). */
static const char *write_keyfile(const char *name, const char *text, mode_t mode)
{
    return tmpdir_write(tmp, name, text, mode);
}

static void tohex(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", in[i]);
}

/* KEY must be the 32 bytes that HEX (either case) spells; checked with sscanf, not the codec. */
static void assert_key(const uint8_t *key, const char *hex)
{
    for (size_t i = 0; i < KEYFILE_KEY_BYTES; i++) {
        unsigned v;
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        cr_assert_eq(key[i], v, "byte %zu", i);
    }
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "opendir %s: %s", dir, strerror(errno));
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static void check_created(const char *dir, const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
    cr_assert(S_ISREG(st.st_mode));
    cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0700, "dir mode %o", st.st_mode & 07777);
    cr_assert_eq(count_entries(dir), 1, "temporary files left in %s", dir);
}

Test(keyfile, creates_missing_file)
{
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "%s/var/deeper", tmp);
    snprintf(path, sizeof path, "%s/secret", dir);
    for (int pass = 0; pass < 2; pass++) {
        /* Created 0600/0700 whatever the umask says. */
        umask(pass == 0 ? 0 : 0277);
        struct keyfile k, again;
        cr_assert_eq(keyfile_load(path, &k, err, sizeof err), 0, "%s", err);
        umask(022);
        check_created(dir, path);
        cr_assert_eq(k.n, 1);
        cr_assert_eq(k.has_pepper, 1);
        regex_t re;
        cr_assert_eq(regcomp(&re, "^k[0-9]{8}-[0-9a-f]{4}$", REG_EXTENDED | REG_NOSUB), 0);
        cr_assert_eq(regexec(&re, k.keys[0].kid, 0, NULL, 0), 0, "kid %s", k.keys[0].kid);
        regfree(&re);
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        char date[16];
        strftime(date, sizeof date, "%Y%m%d", &tm);
        cr_assert_eq(strncmp(k.keys[0].kid + 1, date, 8), 0);
        cr_assert_neq(memcmp(k.keys[0].key, k.pepper, KEYFILE_KEY_BYTES), 0);

        /* The file holds what was returned: loading again gives the same bytes, and the file's
         * text has them in lower-case hex. */
        cr_assert_eq(keyfile_load(path, &again, err, sizeof err), 0, "%s", err);
        cr_assert_str_eq(again.keys[0].kid, k.keys[0].kid);
        cr_assert_eq(memcmp(again.keys[0].key, k.keys[0].key, KEYFILE_KEY_BYTES), 0);
        cr_assert_eq(memcmp(again.pepper, k.pepper, KEYFILE_KEY_BYTES), 0);
        char text[2048], hex[65];
        FILE *f = fopen(path, "r");
        size_t tl = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[tl] = '\0';
        tohex(k.keys[0].key, KEYFILE_KEY_BYTES, hex);
        cr_assert_not_null(strstr(text, hex));
        keyfile_clear(&k);
        keyfile_clear(&again);
        unlink(path);
        rmdir(dir);
    }
    /* Two fresh files get different keys. */
    char p2[300];
    snprintf(p2, sizeof p2, "%s/other", tmp);
    struct keyfile a, b;
    cr_assert_eq(keyfile_load(path, &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(keyfile_load(p2, &b, err, sizeof err), 0, "%s", err);
    cr_assert_neq(memcmp(a.keys[0].key, b.keys[0].key, KEYFILE_KEY_BYTES), 0);
    cr_assert_neq(memcmp(a.pepper, b.pepper, KEYFILE_KEY_BYTES), 0);
    keyfile_clear(&a);
    keyfile_clear(&b);

    /* A directory that cannot be made (a dangling symlink in its place, which open(2) reports
     * as missing): the message names it. */
    char link[300], bad[320];
    snprintf(link, sizeof link, "%s/dangling", tmp);
    cr_assert_eq(symlink("/nonexistent/antre", link), 0);
    snprintf(bad, sizeof bad, "%s/sub/secret", link);
    cr_assert_eq(keyfile_load(bad, &a, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "cannot create directory"), "%s", err);
    cr_assert_not_null(strstr(err, "/dangling"), "%s", err);
    cr_assert_null(a.keys);
}

Test(keyfile, kid_syntax)
{
    cr_assert_eq(keyfile_kid_valid("k1", 2), 1);
    cr_assert_eq(keyfile_kid_valid("A-z_09", 6), 1);
    cr_assert_eq(keyfile_kid_valid("abcdefghijklmnop", 16), 1);
    cr_assert_eq(keyfile_kid_valid("abcdefghijklmnopq", 17), 0);
    cr_assert_eq(keyfile_kid_valid("", 0), 0);
    cr_assert_eq(keyfile_kid_valid("k.1", 3), 0);
    cr_assert_eq(keyfile_kid_valid("k 1", 3), 0);
    cr_assert_eq(keyfile_kid_valid("k1\0", 3), 0);
    keyfile_clear(NULL);
}

Test(keyfile, refuses_group_or_other_access)
{
    static const mode_t bad[] = {0644, 0640, 0604, 0660, 0602, 0620, 0601, 0610, 0666};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *path = write_keyfile("secret", "k1 " HEX1 "\n", bad[i]);
        struct keyfile k;
        memset(&k, 0x5a, sizeof k);
        err[0] = '\0';
        cr_assert_eq(keyfile_load(path, &k, err, sizeof err), -1, "mode %o accepted", bad[i]);
        cr_assert_null(k.keys);
        cr_assert_eq(k.n, 0);
        char want[400];
        snprintf(want, sizeof want, "chmod 600 %s", path);
        cr_assert_not_null(strstr(err, want), "err: %s", err);
        cr_assert_not_null(strstr(err, path), "err: %s", err);
        cr_assert_null(strstr(err, HEX1));
    }
    /* Owner-only modes are fine. */
    static const mode_t good[] = {0600, 0400};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const char *path = write_keyfile("secret", "k1 " HEX1 "\n", good[i]);
        struct keyfile k;
        cr_assert_eq(keyfile_load(path, &k, err, sizeof err), 0, "mode %o: %s", good[i], err);
        keyfile_clear(&k);
    }
    /* Not a regular file: a directory, a FIFO (which must not block the load). */
    struct keyfile k;
    cr_assert_eq(keyfile_load(tmp, &k, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "not a regular file"), "err: %s", err);
    char fifo[300];
    snprintf(fifo, sizeof fifo, "%s/fifo", tmp);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    cr_assert_eq(keyfile_load(fifo, &k, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "not a regular file"), "err: %s", err);
    cr_assert_eq(keyfile_load("", &k, err, sizeof err), -1);
}

Test(keyfile, key_file_syntax)
{
    /* Comments, blank lines, CRLF, trailing comments, upper-case hex. */
    struct keyfile k;
    const char *okpath = write_keyfile("ok",
                                       "# header\r\n"
                                       "\r\n"
                                       "   \t\n"
                                       "  k2\t" HEX2 "   # newest\r\n"
                                       "pepper " PEPPER "\n"
                                       "k1 " HEX1 "",
                                       0600);
    cr_assert_eq(keyfile_load(okpath, &k, err, sizeof err), 0, "%s", err);
    cr_assert_eq(k.n, 2);
    cr_assert_str_eq(k.keys[0].kid, "k2");
    cr_assert_eq(k.keys[0].kidlen, 2);
    cr_assert_eq(k.keys[0].line, 4);
    assert_key(k.keys[0].key, HEX2);
    cr_assert_str_eq(k.keys[1].kid, "k1");
    cr_assert_eq(k.keys[1].line, 6);
    assert_key(k.keys[1].key, HEX1);
    cr_assert_eq(k.has_pepper, 1);
    assert_key(k.pepper, PEPPER);
    keyfile_clear(&k);
    cr_assert_null(k.keys);
    cr_assert_eq(k.n, 0);
    cr_assert_eq(k.has_pepper, 0);

    /* No pepper line: has_pepper 0 and a zero pepper. */
    okpath = write_keyfile("ok2", "k1 " HEX1 "\n", 0600);
    cr_assert_eq(keyfile_load(okpath, &k, err, sizeof err), 0, "%s", err);
    cr_assert_eq(k.has_pepper, 0);
    static const uint8_t zero[KEYFILE_KEY_BYTES];
    cr_assert_eq(memcmp(k.pepper, zero, sizeof zero), 0);
    keyfile_clear(&k);

    /* Many keys (the array grows). */
    char many[4096] = "";
    for (int i = 0; i < 40; i++) {
        char line[100];
        snprintf(line, sizeof line, "kid%d %s\n", i, i % 2 ? HEX1 : HEX2);
        strcat(many, line);
    }
    okpath = write_keyfile("many", many, 0600);
    cr_assert_eq(keyfile_load(okpath, &k, err, sizeof err), 0, "%s", err);
    cr_assert_eq(k.n, 40);
    cr_assert_str_eq(k.keys[39].kid, "kid39");
    assert_key(k.keys[39].key, HEX1);
    assert_key(k.keys[38].key, HEX2);
    keyfile_clear(&k);

    static const struct {
        const char *text, *want;
    } bad[] = {
        {"k1 " HEX1 "\nk2 " HEX2 "x\n",
         ":2: key must be 64 hex digits (32 bytes); this one has 65"},
        {"# c\n\nk1 0123\n", ":3: key must be 64 hex digits"},
        {"k1 " HEX1 "\nk2 "
         "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
         ":2: key has a character that is not a hex digit"},
        {"k1\n", ":1: expected `<kid> <64 hex digits>`"},
        {"k1 " HEX1 " extra\n",
         ":1: expected `<kid> <64 hex digits>` (or `pepper <64 hex digits>`), found 3 fields"},
        {"\n\n\n\nk.1 " HEX1 "\n", ":5: kid must be 1-16 characters of A-Z a-z 0-9 _ -"},
        {"abcdefghijklmnopq " HEX1 "\n", ":1: kid must be 1-16"},
        {"k1 " HEX1 "\nk2 " HEX2 "\nk1 " HEX3 "\n", ":3: duplicate kid \"k1\" (first on line 1)"},
        {"pepper " PEPPER "\nk1 " HEX1 "\npepper " HEX3 "\n",
         ":3: second pepper line (the first is on line 1)"},
        {"pepper 00\nk1 " HEX1 "\n", ":1: pepper must be 64 hex digits"},
        {"k1 0000000000000000000000000000000000000000000000000000000000000000\n",
         ":1: key is all zero bytes"},
        {"# only comments\n\n", ": no key line"},
        {"", ": no key line"},
        {"pepper " PEPPER "\n", ": no key line"},
        {HEX1 "\n", ":1: expected `<kid> <64 hex digits>`"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *path = write_keyfile("bad", bad[i].text, 0600);
        struct keyfile kk;
        err[0] = '\0';
        cr_assert_eq(keyfile_load(path, &kk, err, sizeof err), -1, "case %zu accepted", i);
        cr_assert_null(kk.keys);
        char want[512];
        snprintf(want, sizeof want, "%s%s", path, bad[i].want);
        cr_assert_not_null(strstr(err, want), "case %zu: got \"%s\", want \"%s\"", i, err, want);
        /* Key material never appears in an error. */
        cr_assert_null(strstr(err, HEX1), "case %zu leaks a key: %s", i, err);
        cr_assert_null(strstr(err, HEX2), "case %zu leaks a key: %s", i, err);
        cr_assert_null(strstr(err, "0123456789abcdef0123"), "case %zu leaks a key: %s", i, err);
        cr_assert_null(strstr(err, PEPPER), "case %zu leaks a key: %s", i, err);
    }

    /* A NUL byte in the file. */
    char path[300];
    snprintf(path, sizeof path, "%s/nul", tmp);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_eq(write(fd, "k1 \0", 4), 4);
    close(fd);
    struct keyfile kk;
    cr_assert_eq(keyfile_load(path, &kk, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "NUL"), "err: %s", err);
}
