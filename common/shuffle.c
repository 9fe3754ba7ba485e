/* shuffle.c: the pre-queue draw, a keyed permutation of [0, P) (see include/antre/shuffle.h for
 * the exact algorithm, which is a public contract: tests/system/shuffle_ref.py recomputes it).
 *
 * HMAC-SHA256 is assembled here from two SHA-256 contexts whose first block (the key XOR ipad,
 * the key XOR opad) is absorbed once per seed; each round then copies them and hashes 34 + 32
 * bytes, one compression each. OpenSSL 3's one-shot HMAC() fetches the algorithm and rebuilds
 * the key schedule on every call and is several times slower.
 *
 * A round value F(r, x) depends only on r (8 values) and the k-bit half x, so a context with a
 * cache computes each of them at most once: placing all of P = 10^6 tickets then needs 8192
 * HMACs instead of about 8.4 million. */
#include "antre/shuffle.h"

#include "antre/codec.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define TAG "antre-prequeue-v1"
#define TAG_LEN (sizeof TAG - 1)
#define BLOCK 64       /* SHA-256 block size */
#define CACHE_MAX_K 16 /* cache round values up to 8 * 2^16 * 4 bytes = 2 MB */

static EVP_MD_CTX *md_ctx_new(void)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c == NULL) abort(); /* memory exhaustion */
    return c;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int b = 7; b >= 0; b--, v >>= 8) p[b] = (uint8_t)v;
}

/* Absorb SEED zero-padded to one block and XORed with PAD into a fresh SHA-256 context C. */
static int absorb_key(EVP_MD_CTX *c, const uint8_t seed[SHUFFLE_SEED_BYTES], uint8_t pad)
{
    uint8_t block[BLOCK];
    memset(block, pad, sizeof block);
    for (int b = 0; b < SHUFFLE_SEED_BYTES; b++) block[b] ^= seed[b];
    int ok = EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(c, block, sizeof block) == 1;
    OPENSSL_cleanse(block, sizeof block);
    return ok ? 0 : -1;
}

static int init(struct shuffle *s, const uint8_t seed[SHUFFLE_SEED_BYTES], uint64_t P, int cached)
{
    memset(s, 0, sizeof *s);
    if (P == 0 || P > SHUFFLE_MAX_P) return -1;
    unsigned k = 1;
    while (k < 32 && (UINT64_C(1) << (2 * k)) < P) k++;
    s->P = P;
    s->k = k;
    s->mask = (UINT64_C(1) << k) - 1;
    s->inner = md_ctx_new();
    s->outer = md_ctx_new();
    s->tmp = md_ctx_new();
    if (absorb_key(s->inner, seed, 0x36) < 0 || absorb_key(s->outer, seed, 0x5c) < 0) {
        shuffle_clear(s);
        return -1;
    }
    if (cached && k <= CACHE_MAX_K) {
        s->cache = calloc((size_t)SHUFFLE_ROUNDS << k, sizeof *s->cache);
        if (s->cache == NULL) abort(); /* memory exhaustion */
    }
    return 0;
}

int shuffle_init(struct shuffle *s, const uint8_t seed[SHUFFLE_SEED_BYTES], uint64_t P)
{
    return init(s, seed, P, 1);
}

void shuffle_clear(struct shuffle *s)
{
    /* EVP_MD_CTX_free cleanses the digest state (which holds the keyed midstates). */
    EVP_MD_CTX_free(s->inner);
    EVP_MD_CTX_free(s->outer);
    EVP_MD_CTX_free(s->tmp);
    free(s->cache); /* round values reveal nothing of the seed beyond the draw itself */
    memset(s, 0, sizeof *s);
}

/* The round function F(r, x) of the header; 0 or -1 (libcrypto failure), result in *OUT. */
static int round_f(struct shuffle *s, unsigned r, uint64_t x, uint64_t *out)
{
    uint32_t *slot = s->cache != NULL ? &s->cache[(uint64_t)r << s->k | x] : NULL;
    if (slot != NULL && *slot != 0) {
        *out = *slot - 1;
        return 0;
    }
    uint8_t msg[TAG_LEN + 1 + 8 + 8];
    uint8_t ih[32], oh[32];
    memcpy(msg, TAG, TAG_LEN);
    msg[TAG_LEN] = (uint8_t)r;
    put_be64(msg + TAG_LEN + 1, s->P);
    put_be64(msg + TAG_LEN + 9, x);
    /* HMAC = SHA-256((S ^ opad) || SHA-256((S ^ ipad) || M)); the pad blocks are pre-absorbed. */
    if (EVP_MD_CTX_copy_ex(s->tmp, s->inner) != 1 ||
        EVP_DigestUpdate(s->tmp, msg, sizeof msg) != 1 ||
        EVP_DigestFinal_ex(s->tmp, ih, NULL) != 1 || EVP_MD_CTX_copy_ex(s->tmp, s->outer) != 1 ||
        EVP_DigestUpdate(s->tmp, ih, sizeof ih) != 1 || EVP_DigestFinal_ex(s->tmp, oh, NULL) != 1)
        return -1;
    uint64_t v = 0;
    for (int b = 0; b < 8; b++) v = v << 8 | oh[b];
    *out = v & s->mask;
    if (slot != NULL) *slot = (uint32_t)*out + 1; /* k <= 16, so F + 1 fits */
    return 0;
}

/* One pass of the network over [0, 2^(2k)), forward (E) or backward (D). */
static int network(struct shuffle *s, uint64_t v, int backward, uint64_t *out)
{
    uint64_t L = v >> s->k, R = v & s->mask, f;
    for (unsigned n = 0; n < SHUFFLE_ROUNDS; n++) {
        if (!backward) {
            if (round_f(s, n, R, &f) < 0) return -1;
            uint64_t t = L ^ f;
            L = R;
            R = t;
        } else {
            unsigned r = SHUFFLE_ROUNDS - 1 - n;
            if (round_f(s, r, L, &f) < 0) return -1;
            uint64_t t = R ^ f;
            R = L;
            L = t;
        }
    }
    *out = L << s->k | R;
    return 0;
}

/* Cycle walking: apply the network until the value falls below P.
 *
 * Why it ends: the network permutes [0, 2^(2k)), so the walk from v < P follows v's cycle and
 * meets v again at the latest; the cycle is at most 2^(2k) long, which bounds the loop. On
 * average 2^(2k)/P < 4 passes are needed. */
static int64_t walk(struct shuffle *s, uint64_t v, int backward)
{
    if (s->P == 0 || v >= s->P) return -1;
    uint64_t domain = UINT64_C(1) << (2 * s->k);
    for (uint64_t n = 0; n < domain; n++) {
        if (network(s, v, backward, &v) < 0) return -1;
        if (v < s->P) return (int64_t)v;
    }
    return -1; /* unreachable: a permutation brings v back below P within its cycle */
}

int64_t shuffle_ctx_place(struct shuffle *s, uint64_t i) { return walk(s, i, 0); }

int64_t shuffle_ctx_inverse(struct shuffle *s, uint64_t j) { return walk(s, j, 1); }

static int64_t one_shot(const uint8_t seed[SHUFFLE_SEED_BYTES], uint64_t P, uint64_t v,
                        int backward)
{
    if (P == 0 || P > SHUFFLE_MAX_P || v >= P) return -1;
    struct shuffle s;
    if (init(&s, seed, P, 0) < 0) return -1; /* one place: a cache would only cost */
    int64_t r = walk(&s, v, backward);
    shuffle_clear(&s);
    return r;
}

int64_t shuffle_place(const uint8_t seed[SHUFFLE_SEED_BYTES], uint64_t P, uint64_t i)
{
    return one_shot(seed, P, i, 0);
}

int64_t shuffle_inverse(const uint8_t seed[SHUFFLE_SEED_BYTES], uint64_t P, uint64_t j)
{
    return one_shot(seed, P, j, 1);
}

void shuffle_commitment(const uint8_t seed[SHUFFLE_SEED_BYTES], char hex_out[65])
{
    uint8_t h[32];
    unsigned len = 0;
    if (EVP_Digest(seed, SHUFFLE_SEED_BYTES, h, &len, EVP_sha256(), NULL) != 1 || len != 32)
        abort(); /* SHA-256 of 32 bytes fails only when libcrypto is broken */
    codec_hex_encode(h, sizeof h, hex_out, 65);
}

void shuffle_seed_hex(const uint8_t seed[SHUFFLE_SEED_BYTES], char hex_out[65])
{
    codec_hex_encode(seed, SHUFFLE_SEED_BYTES, hex_out, 65);
}

int shuffle_seed_hex_parse(const char *hex, uint8_t seed[SHUFFLE_SEED_BYTES])
{
    uint8_t b[SHUFFLE_SEED_BYTES];
    if (hex == NULL || strnlen(hex, 2 * SHUFFLE_SEED_BYTES + 1) != 2 * SHUFFLE_SEED_BYTES ||
        codec_hex_decode(hex, 2 * SHUFFLE_SEED_BYTES, b, sizeof b) != SHUFFLE_SEED_BYTES) {
        OPENSSL_cleanse(b, sizeof b);
        return -1;
    }
    memcpy(seed, b, sizeof b);
    OPENSSL_cleanse(b, sizeof b);
    return 0;
}
