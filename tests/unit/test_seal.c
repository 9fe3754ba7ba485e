/* test_seal.c: unit tests of sealed personal fields (common/seal.c): round trips, what must not
 * open (another key, another record or field, altered bytes), bounds, and key rotation through
 * real key files.
 *
 * Keys are built from struct keyfile values written here, or loaded from key files in a mkdtemp
 * directory that the teardown removes. */
#include "antre/seal.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antre/codec.h"
#include "tmpdir.h"

#define HEX1 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define HEX2 "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f"
#define ID1 "0123456789abcdef0123456789abcdef"
#define ID2 "fedcba9876543210fedcba9876543210"

static char tmp[TMPDIR_LEN];
static char err[512];

static void setup(void)
{
    err[0] = 0;
    tmpdir_make(tmp, "seal");
}

static void teardown(void) { tmpdir_remove(tmp); }

TestSuite(seal, .init = setup, .fini = teardown, .timeout = 60);

/* Keys from key file text TEXT (written to TMP/NAME, mode 0600). */
static struct seal_keys *load(const char *name, const char *text)
{
    struct seal_keys *k = NULL;
    const char *path = tmpdir_write(tmp, name, text, 0600);
    cr_assert_eq(seal_keys_load(path, &k, err, sizeof err), 0, "%s", err);
    cr_assert_not_null(k);
    return k;
}

static int seal_str(const struct seal_keys *k, const char *id, const char *field, const char *v,
                    char out[SEAL_BUF_SIZE])
{
    return seal_field(k, id, field, v, strlen(v), out, SEAL_BUF_SIZE);
}

static int open_str(const struct seal_keys *k, const char *id, const char *field, const char *v,
                    char out[SEAL_PLAIN_MAX + 1])
{
    return seal_open(k, id, field, v, strlen(v), out, SEAL_PLAIN_MAX + 1);
}

Test(seal, round_trip_of_each_field)
{
    struct seal_keys *k = load("secret", "pepper " HEX2 "\nk1 " HEX1 "\n");
    const char *values[][2] = {{"nik", "3171011205900001"},
                               {"kk", "3171010101010001"},
                               {"name", "Siti Aminah"},
                               {"birth_date", "1990-05-12"},
                               {"email", "siti@example.com"},
                               {"phone", "+6281234567890"},
                               {"name", ""}};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char s[SEAL_BUF_SIZE], o[SEAL_PLAIN_MAX + 1];
        int n = seal_str(k, ID1, values[i][0], values[i][1], s);
        cr_assert_eq((size_t)n, SEAL_LEN(2, strlen(values[i][1])), "%s", values[i][0]);
        cr_assert_eq(strlen(s), (size_t)n);
        cr_assert_eq(strncmp(s, "s1.k1.", 6), 0, "%s", s);
        cr_assert(seal_is_sealed(s, strlen(s)));
        if (values[i][1][0]) cr_assert_null(strstr(s, values[i][1]), "clear text in %s", s);
        cr_assert_eq(open_str(k, ID1, values[i][0], s, o), (int)strlen(values[i][1]));
        cr_assert_str_eq(o, values[i][1]);
    }
    /* A fresh nonce every time: the same value seals differently. */
    char a[SEAL_BUF_SIZE], b[SEAL_BUF_SIZE];
    seal_str(k, ID1, "nik", "3171011205900001", a);
    seal_str(k, ID1, "nik", "3171011205900001", b);
    cr_assert_str_neq(a, b);
    cr_assert_str_eq(seal_keys_kid(k), "k1");
    seal_keys_free(k);
}

Test(seal, a_value_in_clear_is_read_as_it_is)
{
    struct seal_keys *k = load("secret", "k1 " HEX1 "\n");
    char o[SEAL_PLAIN_MAX + 1];
    cr_assert_eq(open_str(k, ID1, "email", "siti@example.com", o), 16);
    cr_assert_str_eq(o, "siti@example.com");
    cr_assert_not(seal_is_sealed("siti@example.com", 16));
    /* Too long for OUT: refused, OUT left empty. */
    cr_assert_eq(seal_open(k, ID1, "email", "siti@example.com", 16, o, 8), SEAL_TOO_LARGE);
    cr_assert_str_eq(o, "");
    seal_keys_free(k);
}

Test(seal, wrong_key_does_not_open)
{
    struct seal_keys *k1 = load("a", "k1 " HEX1 "\n");
    struct seal_keys *other = load("b", "k1 " HEX2 "\n"); /* same kid, another key */
    struct seal_keys *k2 = load("c", "k2 " HEX1 "\n");    /* same key bytes, another kid */
    char s[SEAL_BUF_SIZE], o[SEAL_PLAIN_MAX + 1];
    seal_str(k1, ID1, "email", "siti@example.com", s);
    cr_assert_eq(open_str(other, ID1, "email", s, o), SEAL_BAD_TAG);
    cr_assert_str_eq(o, "");
    cr_assert_eq(open_str(k2, ID1, "email", s, o), SEAL_UNKNOWN_KEY);
    /* Renaming the kid in the value to one the file has does not help: the kid is bound. */
    char renamed[SEAL_BUF_SIZE];
    snprintf(renamed, sizeof renamed, "s1.k2.%s", s + 6);
    cr_assert_eq(open_str(k2, ID1, "email", renamed, o), SEAL_BAD_TAG);
    seal_keys_free(k1);
    seal_keys_free(other);
    seal_keys_free(k2);
}

Test(seal, wrong_record_or_field_does_not_open)
{
    struct seal_keys *k = load("secret", "k1 " HEX1 "\n");
    char s[SEAL_BUF_SIZE], o[SEAL_PLAIN_MAX + 1];
    seal_str(k, ID1, "email", "siti@example.com", s);
    cr_assert_eq(open_str(k, ID2, "email", s, o), SEAL_BAD_TAG);
    cr_assert_eq(open_str(k, ID1, "phone", s, o), SEAL_BAD_TAG);
    cr_assert_eq(open_str(k, ID1, "emai", s, o), SEAL_BAD_TAG);
    cr_assert_str_eq(o, "");
    cr_assert_eq(open_str(k, ID1, "email", s, o), 16);
    seal_keys_free(k);
}

Test(seal, altered_bytes_do_not_open)
{
    struct seal_keys *k = load("secret", "k1 " HEX1 "\n");
    char s[SEAL_BUF_SIZE], o[SEAL_PLAIN_MAX + 1];
    int n = seal_str(k, ID1, "nik", "3171011205900001", s);
    /* Flip one bit of every byte of nonce, ciphertext and tag in turn. */
    uint8_t raw[64];
    ssize_t rl = codec_b64url_decode(s + 6, (size_t)n - 6, raw, sizeof raw);
    cr_assert_eq(rl, SEAL_NONCE_BYTES + 16 + SEAL_TAG_BYTES);
    for (ssize_t i = 0; i < rl; i++) {
        uint8_t bad[64];
        char t[SEAL_BUF_SIZE] = "s1.k1.";
        memcpy(bad, raw, (size_t)rl);
        bad[i] ^= 0x01;
        codec_b64url_encode(bad, (size_t)rl, t + 6, sizeof t - 6);
        cr_assert_eq(open_str(k, ID1, "nik", t, o), SEAL_BAD_TAG, "byte %zd", i);
        cr_assert_str_eq(o, "");
    }
    /* A cut tag, a truncated value, junk after the prefix. */
    char cut[SEAL_BUF_SIZE];
    snprintf(cut, sizeof cut, "%.*s", n - 4, s);
    cr_assert_lt(open_str(k, ID1, "nik", cut, o), 0);
    cr_assert_eq(open_str(k, ID1, "nik", "s1.k1.AAAA", o), SEAL_MALFORMED);
    cr_assert_eq(open_str(k, ID1, "nik", "s1.k1", o), SEAL_MALFORMED);
    cr_assert_eq(open_str(k, ID1, "nik", "s1.k!.AAAA", o), SEAL_MALFORMED);
    cr_assert_eq(open_str(k, ID1, "nik", "s1.k1.@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@", o),
                 SEAL_MALFORMED);
    seal_keys_free(k);
}

Test(seal, bounds)
{
    struct seal_keys *k = load("secret", "k1 " HEX1 "\n");
    char big[SEAL_PLAIN_MAX + 2], s[SEAL_BUF_SIZE], o[SEAL_PLAIN_MAX + 1];
    memset(big, 'a', sizeof big);
    cr_assert_eq(seal_field(k, ID1, "name", big, SEAL_PLAIN_MAX + 1, s, sizeof s), SEAL_TOO_LARGE);
    cr_assert_str_eq(s, "");
    int n = seal_field(k, ID1, "name", big, SEAL_PLAIN_MAX, s, sizeof s);
    cr_assert_gt(n, 0);
    cr_assert_leq((size_t)n, SEAL_MAX);
    cr_assert_eq(seal_open(k, ID1, "name", s, (size_t)n, o, sizeof o), SEAL_PLAIN_MAX);
    cr_assert_eq(seal_open(k, ID1, "name", s, (size_t)n, o, SEAL_PLAIN_MAX), SEAL_TOO_LARGE);
    /* OUT one byte short of the sealed form. */
    char small[SEAL_BUF_SIZE];
    cr_assert_eq(seal_field(k, ID1, "nik", "1234", 4, small, SEAL_LEN(2, 4)), SEAL_TOO_LARGE);
    cr_assert_eq(seal_field(k, ID1, "nik", "1234", 4, small, SEAL_LEN(2, 4) + 1),
                 (int)SEAL_LEN(2, 4));
    /* A value longer than any sealed value is refused before decoding. */
    char huge[2 * SEAL_BUF_SIZE];
    memset(huge, 'A', sizeof huge);
    memcpy(huge, "s1.k1.", 6);
    cr_assert_eq(seal_open(k, ID1, "name", huge, sizeof huge, o, sizeof o), SEAL_TOO_LARGE);
    seal_keys_free(k);
}

Test(seal, rotation)
{
    /* Before: k1 alone seals. */
    struct seal_keys *old = load("secret1", "pepper " HEX2 "\nk1 " HEX1 "\n");
    char s_old[SEAL_BUF_SIZE], s_new[SEAL_BUF_SIZE], o[SEAL_PLAIN_MAX + 1];
    seal_str(old, ID1, "phone", "+6281234567890", s_old);
    /* A new key line on top: it seals new values, and k1's still open. */
    struct seal_keys *rot = load("secret2", "pepper " HEX2 "\nk2 " HEX2 "\nk1 " HEX1 "\n");
    cr_assert_str_eq(seal_keys_kid(rot), "k2");
    seal_str(rot, ID2, "phone", "+6281298765432", s_new);
    cr_assert_eq(strncmp(s_new, "s1.k2.", 6), 0, "%s", s_new);
    cr_assert_eq(open_str(rot, ID1, "phone", s_old, o), 14);
    cr_assert_str_eq(o, "+6281234567890");
    cr_assert_eq(open_str(rot, ID2, "phone", s_new, o), 14);
    cr_assert_str_eq(o, "+6281298765432");
    /* A process still on the old file meets the new kid: unknown key (it reads the file again). */
    cr_assert_eq(open_str(old, ID2, "phone", s_new, o), SEAL_UNKNOWN_KEY);
    /* k1 deleted: what it sealed no longer opens. */
    struct seal_keys *gone = load("secret3", "pepper " HEX2 "\nk2 " HEX2 "\n");
    cr_assert_eq(open_str(gone, ID1, "phone", s_old, o), SEAL_UNKNOWN_KEY);
    cr_assert_eq(open_str(gone, ID2, "phone", s_new, o), 14);
    seal_keys_free(old);
    seal_keys_free(rot);
    seal_keys_free(gone);
}

Test(seal, the_key_is_derived_not_the_key_line)
{
    /* Sealed under HKDF(key line), not the line itself: AES-256-GCM with the raw line's bytes
     * must not open it. */
    struct seal_keys *k = load("secret", "k1 " HEX1 "\n");
    char s[SEAL_BUF_SIZE];
    int n = seal_str(k, ID1, "nik", "3171011205900001", s);
    uint8_t raw[64], key[32], clear[16];
    ssize_t rl = codec_b64url_decode(s + 6, (size_t)n - 6, raw, sizeof raw);
    cr_assert_eq(codec_hex_decode(HEX1, 64, key, sizeof key), 32);
    const char aad[] = "s1\0k1\0" ID1 "\0nik";
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l = 0;
    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw);
    EVP_DecryptUpdate(ctx, NULL, &l, (const uint8_t *)aad, (int)sizeof aad - 1);
    EVP_DecryptUpdate(ctx, clear, &l, raw + 12, (int)rl - 28);
    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, raw + rl - 16);
    cr_assert_leq(EVP_DecryptFinal_ex(ctx, clear + l, &l), 0);
    EVP_CIPHER_CTX_free(ctx);
    seal_keys_free(k);
}

Test(seal, errors_are_named)
{
    cr_assert_str_eq(seal_error_str(SEAL_BAD_TAG), "bad tag");
    cr_assert_str_eq(seal_error_str(SEAL_UNKNOWN_KEY), "unknown key");
    cr_assert_str_eq(seal_error_str(3), "ok");
    struct keyfile none = {0};
    cr_assert_null(seal_keys_new(&none, err, sizeof err));
    cr_assert_str_neq(err, "");
}

Test(seal, refresh_reads_the_file_again_at_most_once_a_second)
{
    const char *path = tmpdir_write(tmp, "secret", "k1 " HEX1 "\n", 0600);
    struct seal_keys *k = NULL;
    cr_assert_eq(seal_keys_load(path, &k, err, sizeof err), 0, "%s", err);
    uint64_t loaded = 0;
    /* A new key line on top, sealing a value the old keys do not know. */
    struct seal_keys *rot = load("secret2", "k2 " HEX2 "\nk1 " HEX1 "\n");
    char s[SEAL_BUF_SIZE], o[SEAL_PLAIN_MAX + 1];
    seal_str(rot, ID1, "email", "siti@example.com", s);
    cr_assert_eq(open_str(k, ID1, "email", s, o), SEAL_UNKNOWN_KEY);
    unlink(path);
    tmpdir_write(tmp, "secret", "k2 " HEX2 "\nk1 " HEX1 "\n", 0600);
    cr_assert_eq(seal_keys_refresh(&k, path, &loaded, err, sizeof err), 1, "%s", err);
    cr_assert_eq(open_str(k, ID1, "email", s, o), 16);
    /* Right after: not read again. */
    cr_assert_eq(seal_keys_refresh(&k, path, &loaded, err, sizeof err), 0);
    /* A file that does not load keeps the keys in use. */
    loaded = 0;
    unlink(path);
    tmpdir_write(tmp, "secret", "k2 nothex\n", 0600);
    cr_assert_eq(seal_keys_refresh(&k, path, &loaded, err, sizeof err), -1);
    cr_assert_eq(open_str(k, ID1, "email", s, o), 16);
    seal_keys_free(k);
    seal_keys_free(rot);
}
