/* fuzz_applicant.c: libFuzzer target for applicant tokens (gateway/applicant.c): what a client
 * sends as a join's "applicant".
 *
 * An HS256 key is loaded once from a key file written to a temporary directory (removed at
 * once). The first input byte picks a mode, the rest is its input. Checked with abort():
 *   mode 0, token: the rest is a token given to applicant_verify() in a buffer of exactly its
 *     size. The result is one of enum applicant_result; on success `sub` is 1-256 bytes, NUL-
 *     terminated, of the length reported, and a second call agrees.
 *   mode 1, claims: the rest is a claims text, signed here as an HS256 token with the key
 *     (OpenSSL's HMAC, not the code under test), so that the claim checks, not the signature,
 *     decide. Accepted claims are a JSON object whose "sub" is the `sub` returned; and the same
 *     token with one signature character changed is refused. */
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "antre/codec.h"
#include "applicant.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzz-applicant-shared-secret-0123456789abcdef"
#define AUD "w"
#define NOW 1800000000

static struct applicant_key *key;

static void load_key(void)
{
    char dir[] = "/tmp/antre_fuzz_applicant_XXXXXX", path[128], err[512];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/secret", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0 && write(fd, SECRET, strlen(SECRET)) == (ssize_t)strlen(SECRET));
    close(fd);
    if (applicant_key_load(path, &key, err, sizeof err) < 0) {
        fprintf(stderr, "fuzz_applicant: %s\n", err);
        abort();
    }
    unlink(path);
    rmdir(dir);
}

/* Verify TOK (LEN bytes, copied into a buffer of exactly that size); checks the result's shape
 * and returns it, with `sub` in SUB. */
static int verify(const char *tok, size_t len, char sub[APPLICANT_SUB_MAX + 1])
{
    char *copy = malloc(len ? len : 1);
    CHECK(copy != NULL);
    memcpy(copy, tok, len);
    size_t n = 0;
    int rc = applicant_verify(key, copy, len, AUD, NOW, sub, APPLICANT_SUB_MAX + 1, &n);
    free(copy);
    CHECK(rc <= APPLICANT_OK && rc >= APPLICANT_WRONG_AUDIENCE);
    CHECK(strcmp(applicant_result_str(rc), "unknown") != 0);
    if (rc == APPLICANT_OK) CHECK(n >= 1 && n <= APPLICANT_SUB_MAX && strlen(sub) == n);
    return rc;
}

static void token_mode(const char *tok, size_t len)
{
    char sub[APPLICANT_SUB_MAX + 1], again[APPLICANT_SUB_MAX + 1];
    int rc = verify(tok, len, sub);
    CHECK(verify(tok, len, again) == rc);
    if (rc == APPLICANT_OK) CHECK(strcmp(sub, again) == 0);
}

static void claims_mode(const char *claims, size_t len)
{
    static const char head[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    static char tok[APPLICANT_TOKEN_MAX + 64];
    if (CODEC_B64URL_LEN(sizeof head - 1) + CODEC_B64URL_LEN(len) + 50 > APPLICANT_TOKEN_MAX)
        return;
    ssize_t n = codec_b64url_encode(head, sizeof head - 1, tok, sizeof tok);
    CHECK(n > 0);
    size_t at = (size_t)n;
    tok[at++] = '.';
    n = codec_b64url_encode(claims, len, tok + at, sizeof tok - at);
    CHECK(n >= 0);
    at += (size_t)n;
    unsigned char mac[32];
    unsigned int ml = 0;
    CHECK(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)tok, at, mac,
               &ml) != NULL);
    tok[at++] = '.';
    n = codec_b64url_encode(mac, ml, tok + at, sizeof tok - at);
    CHECK(n > 0);
    at += (size_t)n;

    char sub[APPLICANT_SUB_MAX + 1];
    int rc = verify(tok, at, sub);
    CHECK(rc != APPLICANT_WRONG_ALG && rc != APPLICANT_BAD_SIGNATURE);
    if (rc != APPLICANT_OK) return;
    json_t *c = json_loadb(claims, len, JSON_REJECT_DUPLICATES, NULL);
    CHECK(json_is_object(c));
    CHECK(strcmp(json_string_value(json_object_get(c, "sub")), sub) == 0);
    json_decref(c);
    tok[at - 2] = tok[at - 2] == 'A' ? 'B' : 'A';
    CHECK(verify(tok, at, sub) == APPLICANT_BAD_SIGNATURE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!key) load_key();
    if (size < 1) return 0;
    const char *rest = (const char *)data + 1;
    if (data[0] % 2 == 0) token_mode(rest, size - 1);
    else claims_mode(rest, size - 1);
    return 0;
}
