/* token.c: signed tokens `v1.<kid>.<payload>.<mac>` and the key file behind them.
 *
 * A status poll verifies a ticket and answers from cached state, so verification is the hot path
 * of the waiting room. OpenSSL 3's one-shot HMAC() fetches the algorithm and derives the padded
 * key blocks on every call (about 1.7 us here), and even a re-initialised EVP_MAC_CTX pays the
 * provider layer on every use; instead each key's inner and outer SHA-256 states are computed
 * once at load and copied per MAC (struct hmac_state). One struct token_keys still serves one
 * thread at a time (see token.h).
 *
 * Base64url decoding is strict (codec.h) so that a token has exactly one spelling.
 *
 * The key file is parsed by hand (it is four lines, not worth inih's sections) and created, when
 * absent, under a temporary O_EXCL name and published with link(2) so that concurrent starters
 * agree on one file and nobody reads a half-written one. */
/* The low-level SHA256_* calls are deprecated in OpenSSL 3 but remain the cheapest way to reuse
 * precomputed HMAC states; see struct hmac_state. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "antre/token.h"

#include "antre/codec.h"
#include "antre/errbuf.h"
#include "antre/fileutil.h"
#include "antre/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdarg.h>
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
#define MAC_B64_LEN CODEC_B64URL_LEN(TOKEN_HMAC_BYTES) /* 43 */
#define PAYLOAD_B64_MAX CODEC_B64URL_LEN(TOKEN_PAYLOAD_MAX) /* 683 */

struct token_key {
    char kid[TOKEN_KID_MAX + 1];
    size_t kidlen;
    int line;         /* line of the key file, for duplicate-kid errors */
    struct hmac_state *mac; /* HMAC-SHA256 with both key blocks absorbed */
};

struct token_keys {
    struct token_key *keys; /* keys[0] signs */
    size_t n;
    struct hmac_state *pepper;                 /* NULL when the file has no pepper line */
    uint8_t pepper_id[TOKEN_HMAC_BYTES]; /* SHA-256 of the pepper, to compare peppers */
};

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        log_error("token: out of memory bytes=%zu", n);
        abort();
    }
    return q;
}

/* ---- HMAC ---- */

/* A context of HMAC keyed with KEY (TOKEN_KEY_BYTES), or NULL when OpenSSL fails. */
/* HMAC-SHA256 with the key's inner and outer blocks absorbed once at load; every MAC then
 * copies the two states (a struct copy) instead of going through EVP_MAC's provider layer, which
 * measured several times dearer per call on OpenSSL 3 (the status poll's main cost). */
struct hmac_state {
    SHA256_CTX inner, outer;
};

static void mac_free(struct hmac_state *c)
{
    if (!c) return;
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
}

static struct hmac_state *mac_new(const uint8_t *key)
{
    struct hmac_state *c = malloc(sizeof *c);
    if (!c) abort();
    uint8_t pad[64];
    memset(pad, 0x36, sizeof pad);
    for (int i = 0; i < TOKEN_KEY_BYTES; i++) pad[i] ^= key[i];
    SHA256_Init(&c->inner);
    SHA256_Update(&c->inner, pad, sizeof pad);
    memset(pad, 0x5c, sizeof pad);
    for (int i = 0; i < TOKEN_KEY_BYTES; i++) pad[i] ^= key[i];
    SHA256_Init(&c->outer);
    SHA256_Update(&c->outer, pad, sizeof pad);
    OPENSSL_cleanse(pad, sizeof pad);
    return c;
}

static int mac_compute(struct hmac_state *c, const void *msg, size_t len,
                       uint8_t out[TOKEN_HMAC_BYTES])
{
    /* HMAC(K, m) = H((K^opad) || H((K^ipad) || m)), both key blocks absorbed at load. */
    SHA256_CTX h = c->inner;
    uint8_t inner[SHA256_DIGEST_LENGTH];
    SHA256_Update(&h, msg, len);
    SHA256_Final(inner, &h);
    h = c->outer;
    SHA256_Update(&h, inner, sizeof inner);
    SHA256_Final(out, &h);
    OPENSSL_cleanse(&h, sizeof h);
    return 0;
}

/* ---- keys ---- */

static bool kid_valid(const char *s, size_t len)
{
    if (len < 1 || len > TOKEN_KID_MAX) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

void token_keys_free(struct token_keys *k)
{
    if (!k) return;
    for (size_t i = 0; i < k->n; i++) mac_free(k->keys[i].mac);
    free(k->keys);
    mac_free(k->pepper);
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

const char *token_keys_signing_kid(const struct token_keys *k) { return k->keys[0].kid; }

size_t token_keys_count(const struct token_keys *k) { return k->n; }

int token_keys_has_pepper(const struct token_keys *k) { return k->pepper != NULL; }

int token_keys_pepper_equal(const struct token_keys *a, const struct token_keys *b)
{
    if (!a->pepper || !b->pepper) return !a->pepper && !b->pepper;
    return CRYPTO_memcmp(a->pepper_id, b->pepper_id, sizeof a->pepper_id) == 0;
}

/* Parse one key value: exactly 64 hex digits into OUT. Returns 0, or -1 with a reason in *WHY
 * (a static string that never quotes the value). */
static int parse_key(const char *s, uint8_t out[TOKEN_KEY_BYTES], const char **why)
{
    if (strlen(s) != 2 * TOKEN_KEY_BYTES) {
        *why = "must be 64 hex digits (32 bytes)";
        return -1;
    }
    if (codec_hex_decode(s, 2 * TOKEN_KEY_BYTES, out, TOKEN_KEY_BYTES) != TOKEN_KEY_BYTES) {
        *why = "has a character that is not a hex digit";
        return -1;
    }
    uint8_t any = 0;
    for (size_t i = 0; i < TOKEN_KEY_BYTES; i++) any |= out[i];
    if (!any) {
        *why = "is all zero bytes; make a random one with `openssl rand -hex 32`";
        return -1;
    }
    return 0;
}

/* Parse the key file text BUF (NUL-terminated, modified in place) into K. */
static int parse_keys(struct token_keys *k, char *buf, const char *path, char *err, size_t errlen)
{
    uint8_t key[TOKEN_KEY_BYTES];
    int rc = -1, pepper_line = 0, lineno = 0;
    size_t cap = 0;
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
        if (!is_pepper && !kid_valid(field[0], kidlen)) {
            errbuf_set(err, errlen, "%s:%d: kid must be 1-%d characters of A-Z a-z 0-9 _ -", path,
                   lineno, TOKEN_KID_MAX);
            goto out;
        }
        size_t vlen = strlen(field[1]);
        if (vlen != 2 * TOKEN_KEY_BYTES) {
            errbuf_set(err, errlen, "%s:%d: %s must be 64 hex digits (32 bytes); this one has %zu",
                   path, lineno, is_pepper ? "pepper" : "key", vlen);
            goto out;
        }
        if (parse_key(field[1], key, &why) < 0) {
            errbuf_set(err, errlen, "%s:%d: %s %s", path, lineno, is_pepper ? "pepper" : "key", why);
            goto out;
        }
        if (is_pepper) {
            if (pepper_line) {
                errbuf_set(err, errlen, "%s:%d: second pepper line (the first is on line %d)", path,
                       lineno, pepper_line);
                goto out;
            }
            pepper_line = lineno;
            k->pepper = mac_new(key);
            if (!k->pepper) goto openssl;
            if (!EVP_Digest(key, sizeof key, k->pepper_id, NULL, EVP_sha256(), NULL)) goto openssl;
            continue;
        }
        for (size_t i = 0; i < k->n; i++) {
            if (k->keys[i].kidlen == kidlen && memcmp(k->keys[i].kid, field[0], kidlen) == 0) {
                errbuf_set(err, errlen, "%s:%d: duplicate kid \"%s\" (first on line %d)", path, lineno,
                       field[0], k->keys[i].line);
                goto out;
            }
        }
        if (k->n == cap) {
            cap = cap ? 2 * cap : 4;
            k->keys = xrealloc(k->keys, cap * sizeof *k->keys);
        }
        struct token_key *tk = &k->keys[k->n];
        memset(tk, 0, sizeof *tk);
        memcpy(tk->kid, field[0], kidlen);
        tk->kidlen = kidlen;
        tk->line = lineno;
        tk->mac = mac_new(key);
        if (!tk->mac) goto openssl;
        k->n++;
    }
    if (k->n == 0) {
        errbuf_set(err, errlen,
               "%s: no key line; add one such as `k1 <output of openssl rand -hex 32>`", path);
        goto out;
    }
    rc = 0;
    goto out;
openssl:
    errbuf_set(err, errlen, "%s: OpenSSL could not set up HMAC-SHA256", path);
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
    uint8_t rnd[2 * TOKEN_KEY_BYTES + 6];
    char text[1024], tmp[PATH_MAX], kid[TOKEN_KID_MAX + 1], hex[2 * TOKEN_KEY_BYTES + 1];
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
    const uint8_t *pepper = rnd, *key = rnd + TOKEN_KEY_BYTES, *extra = rnd + 2 * TOKEN_KEY_BYTES;

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
    codec_hex_encode(pepper, TOKEN_KEY_BYTES, hex, sizeof hex);
    n += snprintf(text + n, sizeof text - (size_t)n, "%s %s\n", PEPPER_WORD, hex);
    codec_hex_encode(key, TOKEN_KEY_BYTES, hex, sizeof hex);
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
        log_info("token: created key file path=%s kid=%s", path, kid);
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
    char *buf = xrealloc(NULL, KEYFILE_MAX_BYTES + 1);
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

int token_keys_load(const char *path, struct token_keys **out, char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen) err[0] = '\0';
    if (!path || !*path) {
        errbuf_set(err, errlen, "token key file: empty path");
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

    struct token_keys *k = xrealloc(NULL, sizeof *k);
    memset(k, 0, sizeof *k);
    int rc = parse_keys(k, buf, path, err, errlen);
    OPENSSL_cleanse(buf, len);
    free(buf);
    if (rc < 0) {
        token_keys_free(k);
        return -1;
    }
    *out = k;
    return 0;
}

/* ---- tokens ---- */

int token_sign(const struct token_keys *k, const void *payload, size_t len, char *out,
               size_t outlen)
{
    if (out && outlen > 0) out[0] = '\0';
    if (!k || !payload || !out || len == 0 || len > TOKEN_PAYLOAD_MAX) return -1;
    const struct token_key *key = &k->keys[0];
    size_t total = TOKEN_LEN(key->kidlen, len);
    if (outlen < total + 1) return -1;

    char *p = out;
    memcpy(p, "v1.", 3);
    p += 3;
    memcpy(p, key->kid, key->kidlen);
    p += key->kidlen;
    *p++ = '.';
    p += codec_b64url_encode(payload, len, p, outlen - (size_t)(p - out));
    uint8_t mac[TOKEN_HMAC_BYTES];
    if (mac_compute(key->mac, out, (size_t)(p - out), mac) < 0) {
        out[0] = '\0';
        return -1;
    }
    *p++ = '.';
    p += codec_b64url_encode(mac, sizeof mac, p, outlen - (size_t)(p - out));
    return (int)(p - out);
}

int token_verify(const struct token_keys *k, const char *tok, size_t toklen, void *payload,
                 size_t payload_cap, size_t *payload_len)
{
    if (toklen > TOKEN_MAX_LEN) return TOKEN_TOO_LARGE;
    if (!tok || toklen == 0) return TOKEN_MALFORMED;

    /* Four non-empty parts: version, kid, payload, mac. */
    const char *end = tok + toklen;
    const char *d1 = memchr(tok, '.', toklen);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;
    const char *d3 = d2 ? memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) : NULL;
    if (!d3 || memchr(d3 + 1, '.', (size_t)(end - d3 - 1))) return TOKEN_MALFORMED;
    if (d1 == tok || d2 == d1 + 1 || d3 == d2 + 1 || d3 + 1 == end) return TOKEN_MALFORMED;

    if (d1 - tok != 2 || tok[0] != 'v' || tok[1] != '1') return TOKEN_BAD_VERSION;

    const char *kid = d1 + 1;
    size_t kidlen = (size_t)(d2 - kid);
    if (!kid_valid(kid, kidlen)) return TOKEN_MALFORMED;

    const char *pl64 = d2 + 1;
    size_t pl64len = (size_t)(d3 - pl64);
    if (pl64len > PAYLOAD_B64_MAX) return TOKEN_TOO_LARGE;
    uint8_t body[TOKEN_PAYLOAD_MAX];
    ssize_t bodylen = codec_b64url_decode(pl64, pl64len, body, sizeof body);
    if (bodylen < 0) return TOKEN_MALFORMED;

    const char *mac64 = d3 + 1;
    uint8_t got[TOKEN_HMAC_BYTES];
    if ((size_t)(end - mac64) != MAC_B64_LEN ||
        codec_b64url_decode(mac64, MAC_B64_LEN, got, sizeof got) != TOKEN_HMAC_BYTES)
        return TOKEN_MALFORMED;

    const struct token_key *key = NULL;
    for (size_t i = 0; i < k->n; i++) {
        if (k->keys[i].kidlen == kidlen && memcmp(k->keys[i].kid, kid, kidlen) == 0) {
            key = &k->keys[i];
            break;
        }
    }
    if (!key) return TOKEN_UNKNOWN_KEY;

    uint8_t want[TOKEN_HMAC_BYTES];
    if (mac_compute(key->mac, tok, (size_t)(d3 - tok), want) < 0) return TOKEN_BAD_SIGNATURE;
    if (CRYPTO_memcmp(got, want, sizeof want) != 0) return TOKEN_BAD_SIGNATURE;

    if (payload) {
        if ((size_t)bodylen > payload_cap) return TOKEN_TOO_LARGE;
        memcpy(payload, body, (size_t)bodylen);
    }
    if (payload_len) *payload_len = (size_t)bodylen;
    return 0;
}

const char *token_error_str(int rc)
{
    switch (rc) {
    case 0: return "ok";
    case TOKEN_MALFORMED: return "malformed";
    case TOKEN_BAD_VERSION: return "bad version";
    case TOKEN_UNKNOWN_KEY: return "unknown key";
    case TOKEN_BAD_SIGNATURE: return "bad signature";
    case TOKEN_TOO_LARGE: return "too large";
    default: return "unknown error";
    }
}

int token_hmac(const struct token_keys *k, const void *msg, size_t len,
               uint8_t out[TOKEN_HMAC_BYTES])
{
    if (!k->pepper) {
        memset(out, 0, TOKEN_HMAC_BYTES);
        return -1;
    }
    if (mac_compute(k->pepper, msg, len, out) < 0) {
        memset(out, 0, TOKEN_HMAC_BYTES);
        return -1;
    }
    return 0;
}
