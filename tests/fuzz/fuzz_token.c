/* fuzz_token.c: libFuzzer target for signed tokens (common/token.c): tickets and sessions.
 *
 * Three key sets are loaded once from key files written to a temporary directory (removed at
 * once): A signs with k2 and also holds k1 and a pepper; A1 holds the same two keys but signs
 * with k1 and has no pepper; B holds a k2 with another key. The first input byte picks a mode,
 * the rest is its input. Checked with abort():
 *   mode 0, verify: the rest is a token given to token_verify() under A, in a buffer of exactly
 *     its size. The result is 0 or a known error; with PAYLOAD NULL it is the same; nothing is
 *     written on refusal; an accepted token is exactly what A (kid k2) or A1 (kid k1) signs for
 *     its payload (one encoding per token), and a payload buffer one byte short is refused as
 *     too large without being written. Also: codec_b64url_decode() of the rest, when it
 *     succeeds, encodes back to the same characters.
 *   mode 1, round trip: the rest is a payload. token_sign() under A refuses an empty or too
 *     large payload (leaving ""), and a buffer one byte short; otherwise it writes
 *     TOKEN_LEN(2, len) characters, which A and A1 accept with the same payload and B refuses
 *     as a bad signature; changing any one byte, or dropping the last, is refused.
 *   mode 2, hmac: token_hmac() under A is deterministic and differs for another message; A1
 *     (no pepper) refuses and zeroes its output. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "antre/codec.h"
#include "antre/token.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define K1 "k1 6b1c0d2e3f405162738495a6b7c8d9eafb0c1d2e3f405162738495a6b7c8d9ea\n"
#define K2 "k2 0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0\n"
#define K2B "k2 3333333333333333333333333333333333333333333333333333333333333333\n"
#define PEPPER "pepper 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"

static struct token_keys *key_a, *key_a1, *key_b;

static struct token_keys *load(const char *dir, const char *name, const char *text)
{
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        fprintf(stderr, "fuzz_token: %s: %s\n", path, strerror(errno));
        abort();
    }
    close(fd);
    struct token_keys *k = NULL;
    if (token_keys_load(path, &k, err, sizeof err) < 0) {
        fprintf(stderr, "fuzz_token: %s\n", err);
        abort();
    }
    unlink(path);
    return k;
}

static void load_keys(void)
{
    char dir[] = "/tmp/antre_fuzz_token_XXXXXX";
    if (!mkdtemp(dir)) abort();
    key_a = load(dir, "a", PEPPER K2 K1);
    key_a1 = load(dir, "a1", K1 K2);
    key_b = load(dir, "b", K2B);
    rmdir(dir);
    CHECK(!strcmp(token_keys_signing_kid(key_a), "k2"));
    CHECK(!strcmp(token_keys_signing_kid(key_a1), "k1"));
}

static int known_error(int rc)
{
    return rc == TOKEN_MALFORMED || rc == TOKEN_BAD_VERSION || rc == TOKEN_UNKNOWN_KEY ||
           rc == TOKEN_BAD_SIGNATURE || rc == TOKEN_TOO_LARGE;
}

static void verify_mode(const char *tok, size_t len)
{
    static uint8_t payload[TOKEN_PAYLOAD_MAX + 16];
    memset(payload, 0xA5, sizeof payload);
    size_t plen = 12345;
    int rc = token_verify(key_a, tok, len, payload, sizeof payload, &plen);
    CHECK(rc == 0 || known_error(rc));
    CHECK(token_verify(key_a, tok, len, NULL, 0, NULL) == rc);
    CHECK(token_error_str(rc) != NULL);
    if (rc < 0) {
        CHECK(plen == 12345);
        for (size_t i = 0; i < sizeof payload; i++) CHECK(payload[i] == 0xA5);
    } else {
        CHECK(plen >= 1 && plen <= TOKEN_PAYLOAD_MAX);
        for (size_t i = plen; i < sizeof payload; i++) CHECK(payload[i] == 0xA5);
        /* the one encoding: signing the payload again gives the same token */
        CHECK(len > 4 && tok[3] == 'k' && (tok[4] == '1' || tok[4] == '2'));
        char again[TOKEN_BUF_SIZE];
        int n = token_sign(tok[4] == '2' ? key_a : key_a1, payload, plen, again, sizeof again);
        CHECK(n > 0 && (size_t)n == len && !memcmp(again, tok, len));
        /* a payload buffer one byte short */
        uint8_t small[TOKEN_PAYLOAD_MAX];
        memset(small, 0x5A, sizeof small);
        size_t slen = 777;
        CHECK(token_verify(key_a, tok, len, small, plen - 1, &slen) == TOKEN_TOO_LARGE);
        CHECK(slen == 777);
        for (size_t i = 0; i < sizeof small; i++) CHECK(small[i] == 0x5A);
    }

    /* strict base64url: a successful decode encodes back to the same characters */
    uint8_t *dec = malloc(CODEC_B64URL_DECODED_LEN(len) + 1);
    if (!dec) abort();
    ssize_t d = codec_b64url_decode(tok, len, dec, CODEC_B64URL_DECODED_LEN(len));
    CHECK(d >= -1);
    if (d >= 0) {
        CHECK((size_t)d == CODEC_B64URL_DECODED_LEN(len));
        char *enc = malloc(len + 1);
        if (!enc) abort();
        CHECK(codec_b64url_encode(dec, (size_t)d, enc, len + 1) == (ssize_t)len);
        CHECK(memcmp(enc, tok, len) == 0 && enc[len] == 0);
        if (len > 0) CHECK(codec_b64url_encode(dec, (size_t)d, enc, len) == -1);
        free(enc);
        if (d > 0) CHECK(codec_b64url_decode(tok, len, dec, (size_t)d - 1) == -1);
    }
    free(dec);
}

static void round_trip_mode(const uint8_t *p, size_t len, uint64_t h)
{
    char tok[TOKEN_BUF_SIZE];
    int n = token_sign(key_a, p, len, tok, sizeof tok);
    if (len == 0 || len > TOKEN_PAYLOAD_MAX) {
        CHECK(n == -1 && tok[0] == 0);
        return;
    }
    CHECK(n > 0 && (size_t)n == TOKEN_LEN(2, len) && tok[n] == 0 && strlen(tok) == (size_t)n);
    char short_buf[TOKEN_BUF_SIZE];
    CHECK(token_sign(key_a, p, len, short_buf, (size_t)n) == -1 && short_buf[0] == 0);

    uint8_t out[TOKEN_PAYLOAD_MAX];
    size_t olen = 0;
    CHECK(token_verify(key_a, tok, (size_t)n, out, sizeof out, &olen) == 0);
    CHECK(olen == len && !memcmp(out, p, len));
    olen = 0;
    CHECK(token_verify(key_a1, tok, (size_t)n, out, sizeof out, &olen) == 0 && olen == len);
    CHECK(token_verify(key_b, tok, (size_t)n, NULL, 0, NULL) == TOKEN_BAD_SIGNATURE);

    /* one byte changed, wherever it is and whatever it becomes, is refused */
    size_t at = (size_t)(h % (uint64_t)n);
    uint8_t flip = (uint8_t)(h >> 32);
    if (!flip) flip = 1;
    char orig = tok[at];
    tok[at] = (char)(orig ^ flip);
    CHECK(token_verify(key_a, tok, (size_t)n, NULL, 0, NULL) < 0);
    tok[at] = orig;
    CHECK(token_verify(key_a, tok, (size_t)n - 1, NULL, 0, NULL) < 0);
}

static void hmac_mode(const uint8_t *p, size_t len)
{
    uint8_t a[TOKEN_HMAC_BYTES], b[TOKEN_HMAC_BYTES], z[TOKEN_HMAC_BYTES];
    CHECK(token_hmac(key_a, p, len, a) == 0);
    CHECK(token_hmac(key_a, p, len, b) == 0 && !memcmp(a, b, sizeof a));
    if (len > 0) {
        CHECK(token_hmac(key_a, p, len - 1, b) == 0 && memcmp(a, b, sizeof a) != 0);
    }
    memset(b, 0xFF, sizeof b);
    memset(z, 0, sizeof z);
    CHECK(token_hmac(key_a1, p, len, b) == -1 && !memcmp(b, z, sizeof z));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!key_a) load_keys();
    if (size == 0) return 0;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 1099511628211ull;
    const uint8_t *rest = data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0: verify_mode((const char *)rest, n); break;
    case 1: round_trip_mode(rest, n, h); break;
    default: hmac_mode(rest, n); break;
    }
    return 0;
}
