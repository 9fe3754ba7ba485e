/* test_token.c: unit tests of signed tokens (common/token.c) over real key files; the key file
 * itself (syntax, permissions, creation) is tested in test_keyfile.c.
 *
 * Each test works in its own mkdtemp directory, removed by the teardown even when an assertion
 * failed. Expected MACs come from OpenSSL's one-shot HMAC() and published test vectors (RFC 4231,
 * RFC 4648), never from the code under test. Criterion runs each test in its own process, so
 * umask() and fork() are allowed; forked children only call _exit(). */
#include "antre/token.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <poll.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tmpdir.h"

/* Three fixed keys and a pepper, as they appear in a key file. */
#define HEX1 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define HEX2 "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f"
#define HEX3 "5555555555555555555555555555555555555555555555555555555555555555"
#define PEPPER "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"

static char tmp[TMPDIR_LEN];
static char err[1024];

static void setup(void)
{
    err[0] = '\0';
    tmpdir_make(tmp, "token");
}

static void teardown(void) { tmpdir_remove(tmp); }

TestSuite(token, .init = setup, .fini = teardown, .timeout = 60);

/* Write TEXT to TMP/NAME with MODE; returns the path (tmpdir_write). */
static const char *write_keyfile(const char *name, const char *text, mode_t mode)
{
    return tmpdir_write(tmp, name, text, mode);
}

static struct token_keys *load_text(const char *name, const char *text)
{
    const char *path = write_keyfile(name, text, 0600);
    struct token_keys *k = NULL;
    cr_assert_eq(token_keys_load(path, &k, err, sizeof err), 0, "load %s: %s", path, err);
    cr_assert_not_null(k);
    return k;
}

static void unhex(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static void tohex(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", in[i]);
}

/* base64url of IN by OpenSSL's standard encoder, translated to the url alphabet, no padding. */
static size_t ref_b64url(const uint8_t *in, size_t len, char *out)
{
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    while (n > 0 && out[n - 1] == '=') n--;
    out[n] = '\0';
    for (int i = 0; i < n; i++) {
        if (out[i] == '+') out[i] = '-';
        if (out[i] == '/') out[i] = '_';
    }
    return (size_t)n;
}

/* A token over PAYLOAD signed by hand with KEYHEX under KID, independently of token_sign(). */
static size_t forge(const char *keyhex, const char *kid, const uint8_t *payload, size_t len,
                    char *out, size_t outlen)
{
    uint8_t key[32], mac[32];
    unhex(keyhex, key, 32);
    char *b64 = malloc(len * 2 + 8);
    ref_b64url(payload, len, b64);
    int n = snprintf(out, outlen, "v1.%s.%s", kid, b64);
    free(b64);
    cr_assert_lt((size_t)n, outlen);
    unsigned maclen = 0;
    cr_assert_not_null(HMAC(EVP_sha256(), key, 32, (const uint8_t *)out, (size_t)n, mac, &maclen));
    char mac64[64];
    ref_b64url(mac, 32, mac64);
    n += snprintf(out + n, outlen - (size_t)n, ".%s", mac64);
    cr_assert_lt((size_t)n, outlen);
    return (size_t)n;
}

static int verify_str(const struct token_keys *k, const char *tok)
{
    uint8_t buf[TOKEN_PAYLOAD_MAX];
    size_t len = 0;
    return token_verify(k, tok, strlen(tok), buf, sizeof buf, &len);
}

/* ---- HMAC ---- */

Test(token, hmac_rfc4231_known_answers)
{
    /* HMAC zero-pads a short key to the block size, so the 4-byte key "Jefe" of RFC 4231 test
     * case 2 and the same bytes followed by 28 zero bytes are one key: it can be a pepper. */
    char text[512];
    snprintf(text, sizeof text,
             "pepper 4a656665%056d\n"
             "k1 %s\n",
             0, HEX1);
    struct token_keys *k = load_text("kat2", text);
    uint8_t mac[32];
    char hex[65];
    const char *msg = "what do ya want for nothing?";
    cr_assert_eq(token_hmac(k, msg, strlen(msg), mac), 0);
    tohex(mac, 32, hex);
    cr_assert_str_eq(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* The state is reused: the same again, then something else, then the same again. */
    cr_assert_eq(token_hmac(k, msg, strlen(msg), mac), 0);
    tohex(mac, 32, hex);
    cr_assert_str_eq(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    token_keys_free(k);

    /* Test case 1: key = 20 bytes of 0x0b, data "Hi There". */
    snprintf(text, sizeof text,
             "pepper 0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b%024d\n"
             "k1 %s\n",
             0, HEX1);
    k = load_text("kat1", text);
    cr_assert_eq(token_hmac(k, "Hi There", 8, mac), 0);
    tohex(mac, 32, hex);
    cr_assert_str_eq(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    token_keys_free(k);
}

Test(token, hmac_matches_openssl_oneshot)
{
    struct token_keys *k = load_text("keys", "pepper " PEPPER "\nk1 " HEX1 "\n");
    uint8_t pepper[32], msg[300], mine[32], ref[32];
    unhex(PEPPER, pepper, 32);
    for (size_t len = 0; len < sizeof msg; len += 7) {
        cr_assert_eq(RAND_bytes(msg, (int)sizeof msg), 1);
        unsigned rl = 0;
        cr_assert_not_null(HMAC(EVP_sha256(), pepper, 32, msg, len, ref, &rl));
        cr_assert_eq(token_hmac(k, msg, len, mine), 0);
        cr_assert_eq(memcmp(mine, ref, 32), 0, "length %zu", len);
    }
    token_keys_free(k);
}

Test(token, hmac_without_pepper_fails_and_survives_rotation)
{
    struct token_keys *np = load_text("nopepper", "k1 " HEX1 "\n");
    uint8_t a[32], b[32];
    cr_assert_eq(token_keys_has_pepper(np), 0);
    cr_assert_eq(token_hmac(np, "x", 1, a), -1);

    struct token_keys *k1 = load_text("a", "pepper " PEPPER "\nk1 " HEX1 "\n");
    struct token_keys *k2 =
        load_text("b", "k2 " HEX2 "\n# rotated\npepper " PEPPER "\nk1 " HEX1 "\n");
    struct token_keys *k3 = load_text("c", "pepper " HEX3 "\nk1 " HEX1 "\n");
    cr_assert_eq(token_keys_has_pepper(k1), 1);
    cr_assert_eq(token_hmac(k1, "applicant-42", 12, a), 0);
    cr_assert_eq(token_hmac(k2, "applicant-42", 12, b), 0);
    cr_assert_eq(memcmp(a, b, 32), 0, "identifier digest changed when the signing key rotated");
    cr_assert_eq(token_keys_pepper_equal(k1, k2), 1);
    cr_assert_eq(token_keys_pepper_equal(k1, k3), 0);
    cr_assert_eq(token_keys_pepper_equal(k1, np), 0);
    cr_assert_eq(token_keys_pepper_equal(np, np), 1);
    token_keys_free(np);
    token_keys_free(k1);
    token_keys_free(k2);
    token_keys_free(k3);
}

/* ---- tokens ---- */

Test(token, sign_verify_round_trip)
{
    struct token_keys *k = load_text("keys", "kid_1-A " HEX1 "\n");
    cr_assert_str_eq(token_keys_signing_kid(k), "kid_1-A");
    cr_assert_eq(token_keys_count(k), 1);
    uint8_t in[TOKEN_PAYLOAD_MAX], out[TOKEN_PAYLOAD_MAX];
    char tok[TOKEN_BUF_SIZE], ref[TOKEN_BUF_SIZE];
    for (size_t len = 1; len <= TOKEN_PAYLOAD_MAX; len++) {
        cr_assert_eq(RAND_bytes(in, (int)len), 1);
        int n = token_sign(k, in, len, tok, sizeof tok);
        cr_assert_eq(n, (int)TOKEN_LEN(7, len), "length %zu", len);
        cr_assert_eq(strlen(tok), (size_t)n);
        /* Exactly the documented format: compare with a token made by hand. */
        forge(HEX1, "kid_1-A", in, len, ref, sizeof ref);
        cr_assert_str_eq(tok, ref);
        size_t got = 0;
        memset(out, 0, sizeof out);
        cr_assert_eq(token_verify(k, tok, (size_t)n, out, sizeof out, &got), 0, "length %zu", len);
        cr_assert_eq(got, len);
        cr_assert_eq(memcmp(in, out, len), 0);
    }
    /* The longest token fits TOKEN_MAX_LEN when the kid is as long as allowed. */
    token_keys_free(k);
    k = load_text("long", "abcdefghijklmnop " HEX1 "\n");
    int n = token_sign(k, in, TOKEN_PAYLOAD_MAX, tok, sizeof tok);
    cr_assert_eq(n, TOKEN_MAX_LEN);
    cr_assert_eq(n, 747);
    cr_assert_eq(token_verify(k, tok, (size_t)n, out, sizeof out, NULL), 0);
    /* Verify-only: no payload buffer. */
    size_t got = 0;
    cr_assert_eq(token_verify(k, tok, (size_t)n, NULL, 0, &got), 0);
    cr_assert_eq(got, TOKEN_PAYLOAD_MAX);
    token_keys_free(k);
}

Test(token, sign_refuses_bad_sizes)
{
    struct token_keys *k = load_text("keys", "k1 " HEX1 "\n");
    uint8_t in[TOKEN_PAYLOAD_MAX + 1] = {1, 2, 3};
    char tok[TOKEN_BUF_SIZE + 8];
    cr_assert_eq(token_sign(k, in, 0, tok, sizeof tok), -1);
    cr_assert_str_eq(tok, "");
    cr_assert_eq(token_sign(k, in, TOKEN_PAYLOAD_MAX + 1, tok, sizeof tok), -1);
    size_t need = TOKEN_LEN(2, 3);
    cr_assert_eq(token_sign(k, in, 3, tok, need), -1, "no room for the NUL");
    cr_assert_str_eq(tok, "");
    cr_assert_eq(token_sign(k, in, 3, tok, need + 1), (int)need);
    token_keys_free(k);
}

Test(token, every_single_byte_alteration_fails)
{
    struct token_keys *k = load_text("keys", "k1 " HEX1 "\nk2 " HEX2 "\n");
    /* A ticket-like payload: room id, place, expiry. */
    const uint8_t payload[] = {'T', 1, 0, 0, 0, 0, 0, 0x2a, 0x17, 0xff, 0x66, 0x00, 0x12, 0x34};
    char tok[TOKEN_BUF_SIZE], alt[TOKEN_BUF_SIZE];
    int n = token_sign(k, payload, sizeof payload, tok, sizeof tok);
    cr_assert_gt(n, 0);
    cr_assert_eq(verify_str(k, tok), 0);
    /* Every other value of every byte: bit flips, case changes, other base64url digits (those
     * that differ only in the unused low bits of the last MAC character included), dots, NULs. */
    int tried = 0;
    for (int i = 0; i < n; i++) {
        for (int v = 0; v < 256; v++) {
            if ((char)v == tok[i]) continue;
            memcpy(alt, tok, (size_t)n + 1);
            alt[i] = (char)v;
            int rc = token_verify(k, alt, (size_t)n, NULL, 0, NULL);
            cr_assert_lt(rc, 0, "position %d changed to 0x%02x verified", i, (unsigned)v);
            tried++;
        }
        /* Deleting or duplicating the byte fails too. */
        memcpy(alt, tok, (size_t)i);
        memcpy(alt + i, tok + i + 1, (size_t)(n - i));
        cr_assert_lt(token_verify(k, alt, (size_t)n - 1, NULL, 0, NULL), 0, "deleted %d", i);
        memcpy(alt, tok, (size_t)i + 1);
        memcpy(alt + i + 1, tok + i, (size_t)(n - i) + 1);
        cr_assert_lt(token_verify(k, alt, (size_t)n + 1, NULL, 0, NULL), 0, "duplicated %d", i);
    }
    cr_assert_eq(tried, 255 * n);
    token_keys_free(k);
}

Test(token, kids_unknown_wrong_and_removed)
{
    struct token_keys *k = load_text("keys", "k1 " HEX1 "\nk2 " HEX2 "\n");
    uint8_t p[] = "place 17";
    char tok[TOKEN_BUF_SIZE], alt[TOKEN_BUF_SIZE + 64];
    cr_assert_eq(token_sign(k, p, sizeof p, tok, sizeof tok), (int)TOKEN_LEN(2, sizeof p));
    cr_assert_eq(strncmp(tok, "v1.k1.", 6), 0);

    /* A kid nobody knows. */
    snprintf(alt, sizeof alt, "v1.k9.%s", tok + 6);
    cr_assert_eq(verify_str(k, alt), TOKEN_UNKNOWN_KEY);
    snprintf(alt, sizeof alt, "v1.k1x.%s", tok + 6);
    cr_assert_eq(verify_str(k, alt), TOKEN_UNKNOWN_KEY);
    /* The kid of another key we hold: its key does not make this MAC. */
    snprintf(alt, sizeof alt, "v1.k2.%s", tok + 6);
    cr_assert_eq(verify_str(k, alt), TOKEN_BAD_SIGNATURE);
    /* Same kid, different key (another deployment): refused. */
    struct token_keys *other = load_text("other", "k1 " HEX3 "\n");
    cr_assert_eq(verify_str(other, tok), TOKEN_BAD_SIGNATURE);
    /* The key removed from the file: refused as unknown. */
    struct token_keys *removed = load_text("removed", "k2 " HEX2 "\n");
    cr_assert_eq(verify_str(removed, tok), TOKEN_UNKNOWN_KEY);
    /* A kid with a character kids never have. */
    snprintf(alt, sizeof alt, "v1.k!.%s", tok + 6);
    cr_assert_eq(verify_str(k, alt), TOKEN_MALFORMED);
    snprintf(alt, sizeof alt, "v1.abcdefghijklmnopq.%s", tok + 6);
    cr_assert_eq(verify_str(k, alt), TOKEN_MALFORMED);
    token_keys_free(k);
    token_keys_free(other);
    token_keys_free(removed);
}

Test(token, rotation_keeps_old_tokens_valid)
{
    struct token_keys *old = load_text("v1", "k1 " HEX1 "\n");
    uint8_t p[] = {9, 8, 7, 6, 5};
    char t_old[TOKEN_BUF_SIZE], t_new[TOKEN_BUF_SIZE];
    cr_assert_gt(token_sign(old, p, sizeof p, t_old, sizeof t_old), 0);

    /* Step 1: a new key is prepended; it signs, the old one still verifies. */
    struct token_keys *both = load_text("v2", "# rotated today\nk2 " HEX2 "\nk1 " HEX1 "\n");
    cr_assert_str_eq(token_keys_signing_kid(both), "k2");
    cr_assert_eq(token_keys_count(both), 2);
    cr_assert_gt(token_sign(both, p, sizeof p, t_new, sizeof t_new), 0);
    cr_assert_eq(strncmp(t_new, "v1.k2.", 6), 0);
    uint8_t out[16];
    size_t len = 0;
    cr_assert_eq(token_verify(both, t_old, strlen(t_old), out, sizeof out, &len), 0);
    cr_assert_eq(len, sizeof p);
    cr_assert_eq(memcmp(out, p, sizeof p), 0);
    cr_assert_eq(verify_str(both, t_new), 0);
    /* A process still on the old file does not know k2 yet. */
    cr_assert_eq(verify_str(old, t_new), TOKEN_UNKNOWN_KEY);

    /* Step 2: the old key is removed once its tokens have expired. */
    struct token_keys *last = load_text("v3", "k2 " HEX2 "\n");
    cr_assert_eq(verify_str(last, t_new), 0);
    cr_assert_eq(verify_str(last, t_old), TOKEN_UNKNOWN_KEY);
    token_keys_free(old);
    token_keys_free(both);
    token_keys_free(last);
}

Test(token, malformed_tokens)
{
    struct token_keys *k = load_text("keys", "k1 " HEX1 "\n");
    uint8_t p[] = "abcdef";
    char tok[TOKEN_BUF_SIZE], alt[2048];
    int n = token_sign(k, p, 6, tok, sizeof tok);
    cr_assert_gt(n, 0);
    const char *pay = strchr(tok + 3, '.') + 1; /* payload part */
    const char *mac = strrchr(tok, '.') + 1;    /* mac part */
    int paylen = (int)(mac - 1 - pay);

    /* Every truncation fails. */
    for (int i = 0; i < n; i++)
        cr_assert_lt(token_verify(k, tok, (size_t)i, NULL, 0, NULL), 0, "prefix of %d", i);

    static const char *garbage[] = {
        "",       ".",       "...",      "....",        "v1",       "v1.",          "v1.k1",
        "v1.k1.", "v1.k1..", "v1.k1...", "hello world", "Bearer x", "\xff\xfe\xfd", "v1.k1.YWJj.",
    };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
        cr_assert_eq(verify_str(k, garbage[i]), TOKEN_MALFORMED, "\"%s\"", garbage[i]);

    /* Empty parts, one at a time. */
    snprintf(alt, sizeof alt, "v1..%s", pay);
    cr_assert_eq(verify_str(k, alt), TOKEN_MALFORMED);
    snprintf(alt, sizeof alt, "v1.k1..%s", mac);
    cr_assert_eq(verify_str(k, alt), TOKEN_MALFORMED);
    snprintf(alt, sizeof alt, "v1.k1.%.*s.", paylen, pay);
    cr_assert_eq(verify_str(k, alt), TOKEN_MALFORMED);
    snprintf(alt, sizeof alt, ".k1.%s", pay);
    cr_assert_eq(verify_str(k, alt), TOKEN_MALFORMED);

    /* Extra dots anywhere. */
    snprintf(alt, sizeof alt, "%s.", tok);
    cr_assert_eq(verify_str(k, alt), TOKEN_MALFORMED);
    snprintf(alt, sizeof alt, ".%s", tok);
    cr_assert_eq(verify_str(k, alt), TOKEN_MALFORMED);
    snprintf(alt, sizeof alt, "v1.k1.%.*s.x.%s", paylen, pay, mac);
    cr_assert_eq(verify_str(k, alt), TOKEN_MALFORMED);
    snprintf(alt, sizeof alt, "v1.k1.%.*s..%s", paylen, pay, mac);
    cr_assert_eq(verify_str(k, alt), TOKEN_MALFORMED);

    /* Versions. */
    snprintf(alt, sizeof alt, "v2%s", tok + 2);
    cr_assert_eq(verify_str(k, alt), TOKEN_BAD_VERSION);
    snprintf(alt, sizeof alt, "V1%s", tok + 2);
    cr_assert_eq(verify_str(k, alt), TOKEN_BAD_VERSION);
    snprintf(alt, sizeof alt, "v10%s", tok + 2);
    cr_assert_eq(verify_str(k, alt), TOKEN_BAD_VERSION);

    /* Padding, a short or long MAC, a NUL inside. */
    snprintf(alt, sizeof alt, "%s=", tok);
    cr_assert_eq(verify_str(k, alt), TOKEN_MALFORMED);
    snprintf(alt, sizeof alt, "%.*s", n - 1, tok);
    cr_assert_eq(verify_str(k, alt), TOKEN_MALFORMED);
    snprintf(alt, sizeof alt, "%sA", tok);
    cr_assert_eq(verify_str(k, alt), TOKEN_MALFORMED);
    memcpy(alt, tok, (size_t)n + 1);
    alt[8] = '\0';
    cr_assert_eq(token_verify(k, alt, (size_t)n, NULL, 0, NULL), TOKEN_MALFORMED);
    token_keys_free(k);
}

Test(token, too_large)
{
    struct token_keys *k = load_text("keys", "k1 " HEX1 "\n");
    char tok[TOKEN_BUF_SIZE], big[2048];
    uint8_t p[TOKEN_PAYLOAD_MAX + 1];
    memset(p, 0xa5, sizeof p);

    /* A correctly signed token whose payload is one byte over the limit. */
    size_t n = forge(HEX1, "k1", p, TOKEN_PAYLOAD_MAX + 1, big, sizeof big);
    cr_assert_leq(n, TOKEN_MAX_LEN);
    cr_assert_eq(token_verify(k, big, n, NULL, 0, NULL), TOKEN_TOO_LARGE);
    /* The same at the limit is fine. */
    n = forge(HEX1, "k1", p, TOKEN_PAYLOAD_MAX, big, sizeof big);
    cr_assert_eq(token_verify(k, big, n, NULL, 0, NULL), 0);

    /* Longer than any token can be. */
    memset(big, 'A', sizeof big);
    memcpy(big, "v1.k1.", 6);
    big[TOKEN_MAX_LEN - 44] = '.';
    cr_assert_eq(token_verify(k, big, TOKEN_MAX_LEN + 1, NULL, 0, NULL), TOKEN_TOO_LARGE);
    cr_assert_eq(token_verify(k, big, 1500, NULL, 0, NULL), TOKEN_TOO_LARGE);

    /* An authentic payload that does not fit the caller's buffer: nothing written. */
    int tn = token_sign(k, p, 100, tok, sizeof tok);
    cr_assert_gt(tn, 0);
    uint8_t out[99];
    size_t len = 12345;
    memset(out, 0x11, sizeof out);
    cr_assert_eq(token_verify(k, tok, (size_t)tn, out, sizeof out, &len), TOKEN_TOO_LARGE);
    cr_assert_eq(len, 12345);
    cr_assert_eq(out[0], 0x11);
    uint8_t out100[100];
    cr_assert_eq(token_verify(k, tok, (size_t)tn, out100, sizeof out100, &len), 0);
    cr_assert_eq(len, 100);

    /* A forged payload is never written out either. */
    tok[10] ^= 1;
    len = 777;
    memset(out100, 0x22, sizeof out100);
    cr_assert_eq(token_verify(k, tok, (size_t)tn, out100, sizeof out100, &len),
                 TOKEN_BAD_SIGNATURE);
    cr_assert_eq(len, 777);
    cr_assert_eq(out100[0], 0x22);
    token_keys_free(k);
}

Test(token, error_strings)
{
    cr_assert_str_eq(token_error_str(0), "ok");
    cr_assert_str_eq(token_error_str(TOKEN_MALFORMED), "malformed");
    cr_assert_str_eq(token_error_str(TOKEN_BAD_VERSION), "bad version");
    cr_assert_str_eq(token_error_str(TOKEN_UNKNOWN_KEY), "unknown key");
    cr_assert_str_eq(token_error_str(TOKEN_BAD_SIGNATURE), "bad signature");
    cr_assert_str_eq(token_error_str(TOKEN_TOO_LARGE), "too large");
    cr_assert_str_eq(token_error_str(-99), "unknown error");
}

/* ---- the key file ---- */

/* Names in DIR other than "." and "..", counted. */
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

Test(token, concurrent_creators_agree)
{
    enum { ROUNDS = 20, PROCS = 4 };
    for (int round = 0; round < ROUNDS; round++) {
        char dir[256], path[300];
        snprintf(dir, sizeof dir, "%s/r%d", tmp, round);
        snprintf(path, sizeof path, "%s/secret", dir);
        int go[2], res[PROCS][2];
        cr_assert_eq(pipe(go), 0);
        pid_t pid[PROCS];
        for (int i = 0; i < PROCS; i++) {
            cr_assert_eq(pipe(res[i]), 0);
            pid[i] = fork();
            cr_assert_geq(pid[i], 0);
            if (pid[i] == 0) {
                /* Wait for the start signal (the parent closing the pipe), then race. */
                close(go[1]);
                char c;
                while (read(go[0], &c, 1) < 0 && errno == EINTR) {
                }
                struct token_keys *k = NULL;
                char line[1024] = "ERR";
                char e[512];
                if (token_keys_load(path, &k, e, sizeof e) == 0) {
                    uint8_t h[32];
                    char hex[65], tok[TOKEN_BUF_SIZE];
                    token_hmac(k, "applicant", 9, h);
                    tohex(h, 32, hex);
                    token_sign(k, "x", 1, tok, sizeof tok);
                    snprintf(line, sizeof line, "%s %s %s\n", token_keys_signing_kid(k), hex, tok);
                } else {
                    snprintf(line, sizeof line, "ERR %s\n", e);
                }
                ssize_t w = write(res[i][1], line, strlen(line));
                _exit(w > 0 ? 0 : 1);
            }
            close(res[i][1]);
        }
        close(go[0]);
        close(go[1]); /* start */

        char first[256] = "";
        struct token_keys *k = NULL;
        for (int i = 0; i < PROCS; i++) {
            char line[1024] = "";
            struct pollfd pfd = {.fd = res[i][0], .events = POLLIN};
            cr_assert_eq(poll(&pfd, 1, 10000), 1, "creator %d hangs", i);
            ssize_t r = read(res[i][0], line, sizeof line - 1);
            close(res[i][0]);
            int st = 0;
            cr_assert_eq(waitpid(pid[i], &st, 0), pid[i]);
            cr_assert(r > 0 && strncmp(line, "ERR", 3) != 0, "creator %d: %s", i, line);
            char kid[32], hex[80], tok[TOKEN_BUF_SIZE];
            cr_assert_eq(sscanf(line, "%31s %79s %747s", kid, hex, tok), 3);
            if (i == 0) {
                snprintf(first, sizeof first, "%s %s", kid, hex);
                cr_assert_eq(token_keys_load(path, &k, err, sizeof err), 0, "%s", err);
            } else {
                char mine[256];
                snprintf(mine, sizeof mine, "%s %s", kid, hex);
                cr_assert_str_eq(mine, first, "round %d: creators disagree", round);
            }
            cr_assert_eq(verify_str(k, tok), 0, "round %d: token of creator %d", round, i);
        }
        token_keys_free(k);
        check_created(dir, path);
    }
}
