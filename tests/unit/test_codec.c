/* test_codec.c: unit tests of the hex and base64 codec (common/codec.c).
 *
 * Expected encodings come from RFC 4648's test vectors and from OpenSSL's EVP_EncodeBlock and
 * EVP_DecodeBlock, never from the code under test. */
#include "antre/codec.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Standard padded base64 of LEN bytes of IN by OpenSSL, NUL-terminated; returns its length. */
static size_t ref_b64(const uint8_t *in, size_t len, char *out)
{
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/* Base64url without padding by OpenSSL (standard, then the two characters swapped). */
static size_t ref_b64url(const uint8_t *in, size_t len, char *out)
{
    size_t n = ref_b64(in, len, out);
    while (n > 0 && out[n - 1] == '=') n--;
    out[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (out[i] == '+') out[i] = '-';
        if (out[i] == '/') out[i] = '_';
    }
    return n;
}

/* ---- hex ---- */

Test(codec, hex_encode_lower_case_and_bounded)
{
    static const uint8_t b[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff};
    char out[32];
    cr_assert_eq(codec_hex_encode(b, sizeof b, out, sizeof out), 16);
    cr_assert_str_eq(out, "00017f80abcdefff");
    cr_assert_eq(codec_hex_encode(b, 0, out, 1), 0);
    cr_assert_str_eq(out, "");

    /* Exactly 2*LEN + 1 is enough; one byte less is refused and nothing is written. */
    memset(out, 'x', sizeof out);
    cr_assert_eq(codec_hex_encode(b, 4, out, 8), -1);
    cr_assert_eq(out[0], 'x');
    cr_assert_eq(codec_hex_encode(b, 4, out, 9), 8);
    cr_assert_str_eq(out, "00017f80");
    cr_assert_eq(codec_hex_encode(b, 1, NULL, 3), -1);
}

Test(codec, hex_decode_strict)
{
    uint8_t out[8];
    cr_assert_eq(codec_hex_decode("00017f80ABcdEFff", 16, out, sizeof out), 8);
    static const uint8_t want[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff};
    cr_assert_eq(memcmp(out, want, 8), 0);
    cr_assert_eq(codec_hex_decode("", 0, out, 0), 0);

    static const char *bad[] = {"0", "abc", "0g", "g0", " 0", "0 ", "0x12", "+1", "\n0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(codec_hex_decode(bad[i], strlen(bad[i]), out, sizeof out), -1, "%s", bad[i]);
    cr_assert_eq(codec_hex_decode("0\0", 2, out, sizeof out), -1);
    /* OUTCAP too small: refused before writing. */
    memset(out, 0x5a, sizeof out);
    cr_assert_eq(codec_hex_decode("0102", 4, out, 1), -1);
    cr_assert_eq(out[0], 0x5a);
}

Test(codec, hex_round_trip_every_length)
{
    uint8_t in[64], back[64];
    char text[130], ref[130];
    for (size_t len = 0; len <= sizeof in; len++) {
        cr_assert_eq(RAND_bytes(in, (int)sizeof in), 1);
        for (size_t i = 0; i < len; i++) snprintf(ref + 2 * i, 3, "%02x", in[i]);
        ref[2 * len] = '\0';
        cr_assert_eq(codec_hex_encode(in, len, text, sizeof text), (ssize_t)CODEC_HEX_LEN(len));
        cr_assert_str_eq(text, ref);
        cr_assert_eq(codec_hex_decode(text, 2 * len, back, len), (ssize_t)len);
        cr_assert_eq(memcmp(back, in, len), 0);
    }
}

/* ---- base64url ---- */

Test(codec, b64url_rfc4648_vectors)
{
    static const struct {
        const char *in, *out;
    } v[] = {
        {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
    };
    char out[80];
    uint8_t back[64];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t len = strlen(v[i].in);
        cr_assert_eq(codec_b64url_encode(v[i].in, len, out, sizeof out), (ssize_t)strlen(v[i].out));
        cr_assert_str_eq(out, v[i].out);
        cr_assert_eq(codec_b64url_decode(v[i].out, strlen(v[i].out), back, sizeof back),
                     (ssize_t)len, "decode %s", v[i].out);
        cr_assert_eq(memcmp(back, v[i].in, len), 0);
    }

    /* The url alphabet: 62 and 63 are '-' and '_' (standard base64 would say '+' and '/'). */
    static const uint8_t fbff[] = {0xfb, 0xff}, fffffe[] = {0xff, 0xff, 0xfe};
    cr_assert_eq(codec_b64url_encode(fbff, 2, out, sizeof out), 3);
    cr_assert_str_eq(out, "-_8");
    cr_assert_eq(codec_b64url_encode(fffffe, 3, out, sizeof out), 4);
    cr_assert_str_eq(out, "___-");

    /* 48 bytes whose encoding is the whole alphabet, in order. */
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    cr_assert_eq(codec_b64url_decode(alpha, 64, back, sizeof back), 48);
    cr_assert_eq(codec_b64url_encode(back, 48, out, sizeof out), 64);
    cr_assert_str_eq(out, alpha);
}

Test(codec, b64url_matches_openssl_for_every_length)
{
    uint8_t in[200], back[200];
    char mine[300], ref[300];
    for (size_t len = 0; len <= sizeof in; len++) {
        cr_assert_eq(RAND_bytes(in, (int)sizeof in), 1);
        size_t rl = ref_b64url(in, len, ref);
        cr_assert_eq(rl, CODEC_B64URL_LEN(len));
        cr_assert_eq(codec_b64url_encode(in, len, mine, sizeof mine), (ssize_t)rl);
        cr_assert_str_eq(mine, ref, "length %zu", len);
        cr_assert_eq(CODEC_B64URL_DECODED_LEN(rl), len);
        cr_assert_eq(codec_b64url_decode(mine, rl, back, len), (ssize_t)len, "length %zu", len);
        cr_assert_eq(memcmp(back, in, len), 0);
    }
}

Test(codec, b64url_decode_is_strict)
{
    uint8_t out[16];
    static const char *bad[] = {
        "Zg==",  /* padding */
        "Zm8=",  /* padding */
        "Z",     /* length % 4 == 1 */
        "Zm9vY", /* length % 4 == 1 */
        "Zh",    /* 'h' leaves unused bits set: not the canonical spelling of "f" */
        "Zm9",   /* '9' leaves unused bits set: "fo" is Zm8 */
        "Zm+v",  /* standard alphabet */
        "Zm/v",  /* standard alphabet */
        "Zm9v\n", "Zm 9v", "Zm.v",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(codec_b64url_decode(bad[i], strlen(bad[i]), out, sizeof out), -1, "%s",
                     bad[i]);
    cr_assert_eq(codec_b64url_decode("Zm9\0v", 5, out, sizeof out), -1);
    /* Too small an output buffer: -1, before writing. */
    memset(out, 0x5a, sizeof out);
    cr_assert_eq(codec_b64url_decode("Zm9vYmFy", 8, out, 5), -1);
    cr_assert_eq(out[0], 0x5a);
    cr_assert_eq(codec_b64url_decode("Zm9vYmFy", 8, out, 6), 6);
    /* Too small an encode buffer: -1 (the NUL needs a byte too). */
    char enc[16];
    cr_assert_eq(codec_b64url_encode("foobar", 6, enc, 8), -1);
    cr_assert_eq(codec_b64url_encode("foobar", 6, enc, 9), 8);
}

/* ---- standard base64, padded (tus) ---- */

Test(codec, b64_rfc4648_vectors)
{
    static const struct {
        const char *in, *out;
    } v[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    uint8_t back[16];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t len = strlen(v[i].in);
        cr_assert_eq(codec_b64_decode(v[i].out, strlen(v[i].out), back, sizeof back), (ssize_t)len,
                     "%s", v[i].out);
        cr_assert_eq(memcmp(back, v[i].in, len), 0);
    }
    static const uint8_t fbff[] = {0xfb, 0xff};
    cr_assert_eq(codec_b64_decode("+/8=", 4, back, sizeof back), 2);
    cr_assert_eq(memcmp(back, fbff, 2), 0);
}

Test(codec, b64_matches_openssl_for_every_length)
{
    uint8_t in[100], back[100];
    char ref[200];
    for (size_t len = 0; len <= sizeof in; len++) {
        cr_assert_eq(RAND_bytes(in, (int)sizeof in), 1);
        size_t rl = ref_b64(in, len, ref);
        cr_assert_eq(codec_b64_decode(ref, rl, back, len), (ssize_t)len, "length %zu", len);
        cr_assert_eq(memcmp(back, in, len), 0);
        if (len) cr_assert_eq(codec_b64_decode(ref, rl, back, len - 1), -1, "length %zu", len);
    }
}

Test(codec, b64_decode_refuses_bad_input)
{
    uint8_t out[16];
    static const char *bad[] = {
        "Zg",               /* no padding */
        "Zg=",              /* length not a multiple of 4 */
        "Z===",             /* three padding characters */
        "====", "Zg==Zg==", /* padding in the middle */
        "Z=g=", "Zm-v",     /* url alphabet */
        "Zm_v", "Zm9v\n",   "Zm 9", "Zm.v",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(codec_b64_decode(bad[i], strlen(bad[i]), out, sizeof out), -1, "%s", bad[i]);
    cr_assert_eq(codec_b64_decode("Zm\0v", 4, out, sizeof out), -1);
    /* Output bound: "foobar" needs 6 bytes. */
    memset(out, 0x5a, sizeof out);
    cr_assert_eq(codec_b64_decode("Zm9vYmFy", 8, out, 5), -1);
    cr_assert_eq(out[0], 0x5a);
    cr_assert_eq(codec_b64_decode("Zm9vYg==", 8, out, 4), 4);
}

Test(codec, decimal_reads_1_to_19_digits_and_nothing_else)
{
    uint64_t v = 7;
    cr_assert_eq(codec_decimal_u64("0", 1, &v), 0);
    cr_assert_eq(v, 0);
    cr_assert_eq(codec_decimal_u64("1796650075880|x", 13, &v), 0); /* LEN bytes only */
    cr_assert_eq(v, 1796650075880ull);
    cr_assert_eq(codec_decimal_u64("9999999999999999999", 19, &v), 0);
    cr_assert_eq(v, 9999999999999999999ull);
    v = 7;
    static const char *bad[] = {"", "10000000000000000000", "-1", "+1", " 1", "1 ", "1a", "0x1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(codec_decimal_u64(bad[i], strlen(bad[i]), &v), -1, "%s", bad[i]);
    cr_assert_eq(v, 7); /* untouched by a refusal */
}
