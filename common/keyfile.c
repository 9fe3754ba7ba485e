/* keyfile.c: the signing-key file (see keyfile.h): reading and checking it, and creating it
 * when absent.
 *
 * The file is parsed by hand (it is four lines, not worth inih's sections) and created, when
 * absent, under a temporary O_EXCL name and published with link(2) so that concurrent starters
 * agree on one file and nobody reads a half-written one. Key bytes only ever sit in buffers
 * that are wiped before they are freed: the key array grows by copy-and-wipe, never realloc. */
#include "antre/keyfile.h"

#include "antre/codec.h"
#include "antre/errbuf.h"
#include "antre/fileutil.h"
#include "antre/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEYFILE_MAX_BYTES 65536 /* a key file is a few lines; refuse anything this big */
#define PEPPER_WORD "pepper"
#define BLANKS " \t\r\v\f"

/* Memory exhaustion aborts (see STYLE). */
static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) abort();
    return p;
}

/* Double the key array of K (copy, then wipe the old one: it holds keys). */
static void grow(struct keyfile *k)
{
    size_t ncap = k->cap ? 2 * k->cap : 4;
    struct keyfile_key *nk = xmalloc(ncap * sizeof *nk);
    if (k->keys) {
        memcpy(nk, k->keys, k->n * sizeof *nk);
        OPENSSL_cleanse(k->keys, k->cap * sizeof *nk);
        free(k->keys);
    }
    k->keys = nk;
    k->cap = ncap;
}

int keyfile_kid_valid(const char *s, size_t len)
{
    if (len < 1 || len > KEYFILE_KID_MAX) return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Parse one key value: exactly 64 hex digits into OUT. Returns 0, or -1 with a reason in *WHY
 * (a static string that never quotes the value). */
static int parse_key(const char *s, uint8_t out[KEYFILE_KEY_BYTES], const char **why)
{
    if (strlen(s) != 2 * KEYFILE_KEY_BYTES) {
        *why = "must be 64 hex digits (32 bytes)";
        return -1;
    }
    if (codec_hex_decode(s, 2 * KEYFILE_KEY_BYTES, out, KEYFILE_KEY_BYTES) != KEYFILE_KEY_BYTES) {
        *why = "has a character that is not a hex digit";
        return -1;
    }
    uint8_t any = 0;
    for (size_t i = 0; i < KEYFILE_KEY_BYTES; i++) any |= out[i];
    if (!any) {
        *why = "is all zero bytes; make a random one with `openssl rand -hex 32`";
        return -1;
    }
    return 0;
}

/* Parse the key file text BUF (NUL-terminated, modified in place) into K. */
static int parse_keys(struct keyfile *k, char *buf, const char *path, char *err, size_t errlen)
{
    uint8_t key[KEYFILE_KEY_BYTES];
    int rc = -1, pepper_line = 0, lineno = 0;
    char *line = buf;
    while (line && *line) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';

        /* Split on blanks; a third field is only counted, never shown. */
        char *field[3] = {NULL, NULL, NULL};
        int nf = 0;
        char *save = NULL;
        for (char *f = strtok_r(line, BLANKS, &save); f; f = strtok_r(NULL, BLANKS, &save)) {
            if (nf < 3) field[nf] = f;
            nf++;
        }
        line = next;
        if (nf == 0) continue;
        if (nf != 2) {
            errbuf_set(err, errlen,
                       "%s:%d: expected `<kid> <64 hex digits>` (or `pepper <64 hex digits>`), "
                       "found %d field%s",
                       path, lineno, nf, nf == 1 ? "" : "s");
            goto out;
        }
        const char *why = NULL;
        bool is_pepper = strcmp(field[0], PEPPER_WORD) == 0;
        size_t kidlen = strlen(field[0]);
        if (!is_pepper && !keyfile_kid_valid(field[0], kidlen)) {
            errbuf_set(err, errlen, "%s:%d: kid must be 1-%d characters of A-Z a-z 0-9 _ -", path,
                       lineno, KEYFILE_KID_MAX);
            goto out;
        }
        size_t vlen = strlen(field[1]);
        if (vlen != 2 * KEYFILE_KEY_BYTES) {
            errbuf_set(err, errlen, "%s:%d: %s must be 64 hex digits (32 bytes); this one has %zu",
                       path, lineno, is_pepper ? "pepper" : "key", vlen);
            goto out;
        }
        if (parse_key(field[1], key, &why) < 0) {
            errbuf_set(err, errlen, "%s:%d: %s %s", path, lineno, is_pepper ? "pepper" : "key",
                       why);
            goto out;
        }
        if (is_pepper) {
            if (pepper_line) {
                errbuf_set(err, errlen, "%s:%d: second pepper line (the first is on line %d)", path,
                           lineno, pepper_line);
                goto out;
            }
            pepper_line = lineno;
            k->has_pepper = 1;
            memcpy(k->pepper, key, sizeof key);
            continue;
        }
        for (size_t i = 0; i < k->n; i++) {
            if (k->keys[i].kidlen == kidlen && memcmp(k->keys[i].kid, field[0], kidlen) == 0) {
                errbuf_set(err, errlen, "%s:%d: duplicate kid \"%s\" (first on line %d)", path,
                           lineno, field[0], k->keys[i].line);
                goto out;
            }
        }
        if (k->n == k->cap) grow(k);
        struct keyfile_key *kk = &k->keys[k->n];
        memset(kk, 0, sizeof *kk);
        memcpy(kk->kid, field[0], kidlen);
        kk->kidlen = kidlen;
        kk->line = lineno;
        memcpy(kk->key, key, sizeof key);
        k->n++;
    }
    if (k->n == 0) {
        errbuf_set(err, errlen,
                   "%s: no key line; add one such as `k1 <output of openssl rand -hex 32>`", path);
        goto out;
    }
    rc = 0;
out:
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

/* Create the key file PATH with a fresh pepper and key, unless someone else creates it first.
 * Returns 0 when PATH exists afterwards (ours or theirs), -1 with ERR set otherwise.
 *
 * Why link(2): with O_CREAT|O_EXCL on PATH itself, a process that lost the race could open the
 * file between the winner's open and write and read it empty. Writing a private temporary file
 * (O_EXCL, so a planted file or symlink is never followed) and linking it to PATH publishes the
 * whole file at once, and link fails with EEXIST instead of replacing a file that appeared. */
static int create_keyfile(const char *path, char *err, size_t errlen)
{
    uint8_t rnd[2 * KEYFILE_KEY_BYTES + 6];
    char text[1024], tmp[PATH_MAX], kid[KEYFILE_KID_MAX + 1], hex[2 * KEYFILE_KEY_BYTES + 1];
    int rc = -1, fd = -1;
    bool tmp_made = false;

    char why[PATH_MAX + 64];
    if (fileutil_mkdir_parents(path, 0700, why, sizeof why) < 0) {
        errbuf_set(err, errlen, "%s: %s", path, why);
        return -1;
    }
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        errbuf_set(err, errlen, "%s: RAND_bytes failed: cannot make a key", path);
        return -1;
    }
    const uint8_t *pepper = rnd, *key = rnd + KEYFILE_KEY_BYTES,
                  *extra = rnd + 2 * KEYFILE_KEY_BYTES;

    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char date[16] = "";
    strftime(date, sizeof date, "%Y%m%d", &tm);
    snprintf(kid, sizeof kid, "k%.8s-%02x%02x", date, extra[0], extra[1]);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);

    int n = snprintf(text, sizeof text,
                     "# antre token keys, created %s. Keep this file private (chmod 600).\n"
                     "# A line is `<kid> <64 hex digits>` (make one: openssl rand -hex 32); the\n"
                     "# FIRST key signs new tokens, every key verifies. To rotate, add a new\n"
                     "# line at the top, delete old lines once the tokens they signed expired.\n"
                     "# The pepper hashes applicant identifiers: never change it during a wave.\n",
                     when);
    codec_hex_encode(pepper, KEYFILE_KEY_BYTES, hex, sizeof hex);
    n += snprintf(text + n, sizeof text - (size_t)n, "%s %s\n", PEPPER_WORD, hex);
    codec_hex_encode(key, KEYFILE_KEY_BYTES, hex, sizeof hex);
    n += snprintf(text + n, sizeof text - (size_t)n, "%s %s\n", kid, hex);
    if ((size_t)n >= sizeof text) { /* cannot happen: the text is fixed but for the date */
        errbuf_set(err, errlen, "%s: key file text too long", path);
        goto out;
    }

    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%02x%02x%02x%02x", path, (long)getpid(),
                         extra[2], extra[3], extra[4], extra[5]) >= sizeof tmp) {
        errbuf_set(err, errlen, "%s: path too long", path);
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        errbuf_set(err, errlen, "%s: cannot create key file: %s: %s", path, tmp, strerror(errno));
        goto out;
    }
    tmp_made = true;
    if (fchmod(fd, 0600) < 0 || fileutil_write_all(fd, text, (size_t)n) < 0 || fsync(fd) < 0) {
        errbuf_set(err, errlen, "%s: cannot write key file: %s: %s", path, tmp, strerror(errno));
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        errbuf_set(err, errlen, "%s: cannot write key file: %s: %s", path, tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (link(tmp, path) == 0) {
        (void)fileutil_fsync_parent(path); /* best effort: the file is complete either way */
        log_info("keyfile: created key file path=%s kid=%s", path, kid);
    } else if (errno != EEXIST) {
        errbuf_set(err, errlen,
                   "%s: cannot create key file (link from %s: %s); create it by hand: "
                   "printf 'pepper %%s\\nk1 %%s\\n' "
                   "$(openssl rand -hex 32) $(openssl rand -hex 32) > %s; chmod 600 %s",
                   path, tmp, strerror(errno), path, path);
        goto out;
    } /* else: another process created it first; the caller reads theirs */
    rc = 0;
out:
    if (fd >= 0) close(fd);
    if (tmp_made) unlink(tmp);
    OPENSSL_cleanse(rnd, sizeof rnd);
    OPENSSL_cleanse(text, sizeof text);
    OPENSSL_cleanse(hex, sizeof hex);
    return rc;
}

/* Read the whole key file open on FD into a fresh NUL-terminated buffer. */
static char *read_keyfile(int fd, const char *path, size_t *lenp, char *err, size_t errlen)
{
    char *buf = xmalloc(KEYFILE_MAX_BYTES + 1);
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, KEYFILE_MAX_BYTES + 1 - len);
        if (r < 0) {
            if (errno == EINTR) continue;
            errbuf_set(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0) break;
        len += (size_t)r;
        if (len > KEYFILE_MAX_BYTES) {
            errbuf_set(err, errlen, "%s: larger than %d bytes; is this really the key file?", path,
                       KEYFILE_MAX_BYTES);
            goto fail;
        }
    }
    if (memchr(buf, '\0', len)) {
        errbuf_set(err, errlen, "%s: contains a NUL byte; a key file is text", path);
        goto fail;
    }
    buf[len] = '\0';
    *lenp = len;
    return buf;
fail:
    OPENSSL_cleanse(buf, KEYFILE_MAX_BYTES + 1);
    free(buf);
    return NULL;
}

int keyfile_load(const char *path, struct keyfile *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (err && errlen) err[0] = '\0';
    if (!path || !*path) {
        errbuf_set(err, errlen, "key file: empty path");
        return -1;
    }
    /* O_NONBLOCK: a FIFO in the key file's place must not hang start-up (it is refused below;
     * reads of a regular file ignore the flag). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT) {
        if (create_keyfile(path, err, errlen) < 0) return -1;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    }
    if (fd < 0) {
        errbuf_set(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }

    struct stat st;
    if (fstat(fd, &st) < 0) {
        errbuf_set(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        errbuf_set(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & 077) {
        errbuf_set(err, errlen,
                   "%s: readable or writable by group or others (mode %04o); a key file must be "
                   "private: run `chmod 600 %s`",
                   path, (unsigned)(st.st_mode & 07777), path);
        close(fd);
        return -1;
    }
    size_t len = 0;
    char *buf = read_keyfile(fd, path, &len, err, errlen);
    close(fd);
    if (!buf) return -1;

    int rc = parse_keys(out, buf, path, err, errlen);
    OPENSSL_cleanse(buf, len);
    free(buf);
    if (rc < 0) keyfile_clear(out);
    return rc;
}

void keyfile_clear(struct keyfile *kf)
{
    if (!kf) return;
    if (kf->keys) OPENSSL_cleanse(kf->keys, kf->cap * sizeof *kf->keys);
    free(kf->keys);
    OPENSSL_cleanse(kf, sizeof *kf);
}
