/* shuffle.h: the pre-queue draw, a keyed pseudo-random permutation of [0, P).
 *
 * Before a room opens, joiners get pre-queue numbers 0, 1, 2, ... in arrival order. At opening
 * the count P is frozen, a 32-byte seed is drawn, and pre-queue number i gets place
 * shuffle_place(seed, P, i). While the pre-queue is open only the commitment SHA-256(seed) is
 * published; the seed itself is published after the draw, so anyone can check it against the
 * commitment and recompute every place. Arriving first within the pre-queue gains nothing, and
 * the operator cannot pick the order after seeing who joined.
 *
 * Because outsiders must be able to recompute the draw, the algorithm below is the contract;
 * tests/system/shuffle_ref.py is an independent Python reference of it (what an auditor runs),
 * and tests/unit/test_shuffle.c holds answers produced by that reference.
 *
 * THE ALGORITHM ("antre-prequeue-v1")
 *
 *   Inputs: seed S (32 bytes); P, the number of pre-queue tickets, 1 <= P <= 2^40; a pre-queue
 *   number i, 0 <= i < P. Output: its place, 0 <= place < P (0 = front). All integers unsigned.
 *
 *   Domain. k = the smallest integer >= 1 with 2^(2k) >= P; mask = 2^k - 1. The Feistel network
 *   permutes [0, 2^(2k)); a value v is split into L = v >> k (high k bits) and R = v & mask.
 *
 *   Round function, for round r (0..7) and a k-bit half x:
 *     M = "antre-prequeue-v1"    (the 17 ASCII bytes, no terminator)
 *         || r                   (1 byte)
 *         || P                   (8 bytes, big-endian)
 *         || x                   (8 bytes, big-endian)      -- 34 bytes in all
 *     F(r, x) = (the first 8 bytes of HMAC-SHA256(key = S, message = M), read as a big-endian
 *               64-bit integer) AND mask
 *
 *   Network, 8 rounds:
 *     E(v): L = v >> k; R = v & mask;
 *           for r = 0, 1, ..., 7:  (L, R) = (R, L XOR F(r, R));
 *           return (L << k) | R
 *
 *   Cycle walking, since E permutes the larger domain [0, 2^(2k)):
 *     place(i) = v = E(i); while v >= P: v = E(v); return v
 *   This ends because i < P lies on a cycle of E that returns to i; the walk stops at the first
 *   value below P on that cycle. On average it takes 2^(2k)/P < 4 steps.
 *
 *   Inverse: D(v) undoes E: for r = 7, 6, ..., 0:  (L, R) = (R XOR F(r, L), L);
 *     inverse(j) = w = D(j); while w >= P: w = D(w); return w.  inverse(place(i)) == i.
 *
 *   Commitment: the lowercase hex of SHA-256(S), hashing the 32 raw seed bytes (not its hex).
 *   The seed is published as 64 hex digits.
 *
 *   Example: k = 1 for P <= 4, k = 10 for P <= 1048576, k = 20 for P <= 2^40. P = 1 gives 0.
 *
 * Cost: 8 HMAC-SHA256 per network pass, about 1.05 passes per place for P = 10^6. Use a
 * struct shuffle to place many tickets: it computes the HMAC key schedule once and, for
 * P <= 2^32 (k <= 16), remembers each of the 8 * 2^k possible round values the first time it is
 * needed, so a large draw costs little more than its 8 * 2^k HMACs (P = 10^6: 8192). The
 * one-shot functions build and drop an uncached context on each call. */
#ifndef ANTRE_SHUFFLE_H
#define ANTRE_SHUFFLE_H

#include <stdint.h>

struct evp_md_ctx_st; /* OpenSSL's EVP_MD_CTX */

#define SHUFFLE_SEED_BYTES 32
#define SHUFFLE_ROUNDS 8
#define SHUFFLE_MAX_P (UINT64_C(1) << 40)

/* A prepared draw: one seed and one P. Fields are private. Not thread-safe: the scratch digest
 * context is shared by every call; give each thread its own. Copying the struct is not allowed
 * (it owns OpenSSL contexts); release it with shuffle_clear(). */
struct shuffle {
    uint64_t P;
    unsigned k;                  /* half width in bits */
    uint64_t mask;               /* 2^k - 1 */
    struct evp_md_ctx_st *inner; /* SHA-256 after absorbing S XOR ipad (an EVP_MD_CTX) */
    struct evp_md_ctx_st *outer; /* SHA-256 after absorbing S XOR opad */
    struct evp_md_ctx_st *tmp;   /* scratch */
    uint32_t *cache; /* [r << k | x] = F(r, x) + 1, 0 = not yet computed; NULL: no cache */
};

/* Prepare S for SEED and P (1 <= P <= SHUFFLE_MAX_P). Returns 0, or -1 when P is out of range
 * or libcrypto fails (S is then left cleared; shuffle_clear() on it is harmless). Memory
 * exhaustion aborts. Allocates the round-value cache, 32 * 2^k bytes (32 KB for P = 10^6, at
 * most 2 MB), when P <= 2^32. Release with shuffle_clear(). */
int shuffle_init(struct shuffle *s, const uint8_t seed[SHUFFLE_SEED_BYTES], uint64_t P);

/* The place (0-based) of pre-queue number I (0-based) under S, or -1 when I >= P or libcrypto
 * fails. */
int64_t shuffle_ctx_place(struct shuffle *s, uint64_t i);

/* The pre-queue number holding place J under S (the inverse of shuffle_ctx_place), or -1 when
 * J >= P or libcrypto fails. */
int64_t shuffle_ctx_inverse(struct shuffle *s, uint64_t j);

/* Free what shuffle_init() allocated and wipe the key material. S may be all zero (never
 * initialised) or already cleared. */
void shuffle_clear(struct shuffle *s);

/* One-shot shuffle_ctx_place(): the place of pre-queue number I among P under SEED, or -1 on
 * bad input (P == 0, P > SHUFFLE_MAX_P, I >= P). */
int64_t shuffle_place(const uint8_t seed[SHUFFLE_SEED_BYTES], uint64_t P, uint64_t i);

/* One-shot shuffle_ctx_inverse(): the pre-queue number holding place J, or -1 on bad input. */
int64_t shuffle_inverse(const uint8_t seed[SHUFFLE_SEED_BYTES], uint64_t P, uint64_t j);

/* The commitment to SEED: 64 lowercase hex digits of SHA-256 of the 32 seed bytes, and a NUL,
 * written to HEX_OUT. */
void shuffle_commitment(const uint8_t seed[SHUFFLE_SEED_BYTES], char hex_out[65]);

/* SEED as 64 lowercase hex digits and a NUL, written to HEX_OUT (the form it is published in). */
void shuffle_seed_hex(const uint8_t seed[SHUFFLE_SEED_BYTES], char hex_out[65]);

/* Parse HEX (exactly 64 hex digits, either case, nothing else) into SEED. Returns 0, or -1
 * (SEED untouched) when HEX is NULL, has another length or a non-hex character. */
int shuffle_seed_hex_parse(const char *hex, uint8_t seed[SHUFFLE_SEED_BYTES]);

#endif
