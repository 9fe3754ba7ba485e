/* test_shuffle.c: unit tests of the pre-queue draw (common/shuffle.c).
 *
 * The permutation must be a bijection of [0, P) with a working inverse, depend on the seed, show
 * no rank correlation with join order, and match the published algorithm bit for bit: the
 * known answers below were produced by the independent Python reference
 * (tests/system/shuffle_ref.py), which tests/system/test_shuffle_ref.py checks against the same
 * numbers. */
#include "antre/shuffle.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* SHA-256("antre test seed") */
static const char *TAG_SEED = "8bdb318aecabf204e6536985b97b4a7ea6fc72f045af4394e219c7307791477a";
/* 00 01 02 ... 1f */
static const char *COUNT_SEED = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char *ZERO_SEED = "0000000000000000000000000000000000000000000000000000000000000000";

static void seed_of(const char *hex, uint8_t seed[32])
{
    cr_assert_eq(shuffle_seed_hex_parse(hex, seed), 0, "bad test seed %s", hex);
}

/* Deterministic, well-spread seeds for the statistical tests (splitmix64). */
static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void seed_from_counter(uint64_t n, uint8_t seed[32])
{
    uint64_t x = n * 1000003 + 17;
    for (int w = 0; w < 4; w++) {
        uint64_t v = splitmix(&x);
        for (int b = 0; b < 8; b++) seed[w * 8 + b] = (uint8_t)(v >> (8 * b));
    }
}

/* Check that SEED permutes [0, P): every place in range and hit once, and inverse undoes it. */
static void check_bijection(const uint8_t seed[32], uint64_t P)
{
    struct shuffle s;
    cr_assert_eq(shuffle_init(&s, seed, P), 0, "init P=%llu", (unsigned long long)P);
    uint8_t *seen = calloc(P, 1);
    cr_assert_not_null(seen);
    for (uint64_t i = 0; i < P; i++) {
        int64_t p = shuffle_ctx_place(&s, i);
        cr_assert(p >= 0 && (uint64_t)p < P, "P=%llu i=%llu: place %lld out of range",
                  (unsigned long long)P, (unsigned long long)i, (long long)p);
        cr_assert_eq(seen[p], 0, "P=%llu: place %lld given twice", (unsigned long long)P,
                     (long long)p);
        seen[p] = 1;
        int64_t back = shuffle_ctx_inverse(&s, (uint64_t)p);
        cr_assert_eq(back, (int64_t)i, "P=%llu: inverse(place(%llu)) = %lld", (unsigned long long)P,
                     (unsigned long long)i, (long long)back);
    }
    free(seen);
    shuffle_clear(&s);
}

/* Spearman's rank correlation between pre-queue number i and place(i) over [0, P). Both are
 * permutations of 0..P-1 (no ties), so the ranks are the values themselves and
 * rho = 1 - 6 * sum (i - place(i))^2 / (P (P^2 - 1)). */
static double spearman(const uint8_t seed[32], uint64_t P)
{
    struct shuffle s;
    cr_assert_eq(shuffle_init(&s, seed, P), 0);
    double sum = 0;
    for (uint64_t i = 0; i < P; i++) {
        int64_t p = shuffle_ctx_place(&s, i);
        cr_assert(p >= 0);
        double d = (double)i - (double)p;
        sum += d * d;
    }
    shuffle_clear(&s);
    double n = (double)P;
    return 1.0 - 6.0 * sum / (n * (n * n - 1.0));
}

Test(shuffle, bijection_small_P)
{
    uint8_t a[32], b[32];
    seed_of(TAG_SEED, a);
    seed_of(ZERO_SEED, b);
    for (uint64_t P = 1; P <= 300; P++) {
        check_bijection(a, P);
        check_bijection(b, P);
    }
}

Test(shuffle, bijection_larger_P)
{
    uint8_t seed[32];
    seed_of(COUNT_SEED, seed);
    const uint64_t sizes[] = {1000, 4096, 4097, 100000};
    for (size_t n = 0; n < sizeof sizes / sizeof sizes[0]; n++) check_bijection(seed, sizes[n]);
}

Test(shuffle, one_shot_matches_context)
{
    uint8_t seed[32];
    seed_of(TAG_SEED, seed);
    struct shuffle s;
    cr_assert_eq(shuffle_init(&s, seed, 777), 0);
    for (uint64_t i = 0; i < 777; i += 7) {
        int64_t p = shuffle_ctx_place(&s, i);
        cr_assert_eq(shuffle_place(seed, 777, i), p);
        cr_assert_eq(shuffle_inverse(seed, 777, (uint64_t)p), (int64_t)i);
    }
    shuffle_clear(&s);
}

Test(shuffle, cached_context_matches_uncached)
{
    /* 10^6 and 2^32 use the round-value cache (k = 10, 16); 2^32 + 1 does not (k = 17). */
    uint8_t seed[32];
    seed_of(COUNT_SEED, seed);
    const uint64_t sizes[] = {1000000, UINT64_C(1) << 32, (UINT64_C(1) << 32) + 1};
    for (size_t n = 0; n < sizeof sizes / sizeof sizes[0]; n++) {
        uint64_t P = sizes[n];
        struct shuffle s;
        cr_assert_eq(shuffle_init(&s, seed, P), 0);
        for (uint64_t x = 0; x < 300; x++) {
            /* spread over [0, P), with repeats so cached entries are hit */
            uint64_t i = (x % 150) * (P / 150) + (x % 7);
            int64_t p = shuffle_ctx_place(&s, i);
            cr_assert_eq(p, shuffle_place(seed, P, i), "P=%llu i=%llu", (unsigned long long)P,
                         (unsigned long long)i);
            cr_assert_eq(shuffle_ctx_inverse(&s, (uint64_t)p), (int64_t)i);
        }
        shuffle_clear(&s);
    }
}

Test(shuffle, bad_input)
{
    uint8_t seed[32];
    seed_of(TAG_SEED, seed);
    cr_assert_eq(shuffle_place(seed, 0, 0), -1, "P = 0");
    cr_assert_eq(shuffle_inverse(seed, 0, 0), -1, "P = 0");
    cr_assert_eq(shuffle_place(seed, 10, 10), -1, "i = P");
    cr_assert_eq(shuffle_place(seed, 10, UINT64_MAX), -1, "huge i");
    cr_assert_eq(shuffle_inverse(seed, 10, 10), -1, "j = P");
    cr_assert_eq(shuffle_place(seed, SHUFFLE_MAX_P + 1, 0), -1, "P > 2^40");
    cr_assert_eq(shuffle_place(seed, UINT64_MAX, 0), -1, "P = 2^64 - 1");

    struct shuffle s;
    cr_assert_eq(shuffle_init(&s, seed, 0), -1);
    shuffle_clear(&s); /* harmless after a failed init */
    cr_assert_eq(shuffle_init(&s, seed, SHUFFLE_MAX_P + 1), -1);
    shuffle_clear(&s);
    cr_assert_eq(shuffle_init(&s, seed, 5), 0);
    cr_assert_eq(shuffle_ctx_place(&s, 5), -1);
    cr_assert_eq(shuffle_ctx_inverse(&s, 5), -1);
    shuffle_clear(&s);
    shuffle_clear(&s); /* twice is harmless */
}

Test(shuffle, one_ticket_gets_place_zero)
{
    uint8_t seed[32];
    for (uint64_t n = 0; n < 5; n++) {
        seed_from_counter(n, seed);
        cr_assert_eq(shuffle_place(seed, 1, 0), 0);
        cr_assert_eq(shuffle_inverse(seed, 1, 0), 0);
    }
}

Test(shuffle, largest_P)
{
    uint8_t seed[32];
    seed_of(COUNT_SEED, seed);
    const uint64_t P = SHUFFLE_MAX_P;
    const uint64_t is[] = {0, 1, P / 2, P - 2, P - 1};
    for (size_t n = 0; n < sizeof is / sizeof is[0]; n++) {
        int64_t p = shuffle_place(seed, P, is[n]);
        cr_assert(p >= 0 && (uint64_t)p < P);
        cr_assert_eq(shuffle_inverse(seed, P, (uint64_t)p), (int64_t)is[n]);
    }
}

Test(shuffle, seed_changes_the_order)
{
    const uint64_t P = 1000;
    uint8_t a[32], b[32];
    seed_of(TAG_SEED, a);
    memcpy(b, a, sizeof b);
    b[31] ^= 1; /* one bit apart */
    uint8_t c[32];
    seed_of(COUNT_SEED, c);
    const uint8_t *others[] = {b, c};
    for (size_t o = 0; o < 2; o++) {
        int same = 0;
        for (uint64_t i = 0; i < P; i++)
            same += shuffle_place(a, P, i) == shuffle_place(others[o], P, i);
        /* Two independent permutations agree on about one position; 20 would be absurd. */
        cr_assert_lt(same, 20, "seed %zu: %d of %llu places equal", o, same, (unsigned long long)P);
    }
}

Test(shuffle, no_rank_correlation_fixed_seed)
{
    uint8_t seed[32];
    seed_of(TAG_SEED, seed);
    double rho = spearman(seed, 1000);
    cr_assert_lt(fabs(rho), 0.1, "rho = %f", rho);
}

Test(shuffle, no_rank_correlation_many_seeds)
{
    /* For a uniformly random permutation of 1000, rho has standard deviation 1/sqrt(999), so
     * |rho| >= 0.1 is a 3.2-sigma event (p ~ 0.0016 per seed). */
    int good = 0;
    double worst = 0;
    for (uint64_t n = 0; n < 20; n++) {
        uint8_t seed[32];
        seed_from_counter(n, seed);
        double rho = spearman(seed, 1000);
        if (fabs(rho) < 0.1) good++;
        if (fabs(rho) > worst) worst = fabs(rho);
    }
    cr_assert_geq(good, 19, "only %d of 20 seeds have |rho| < 0.1 (worst %f)", good, worst);
}

/* Known answers from tests/system/shuffle_ref.py, e.g.
 *   python3 tests/system/shuffle_ref.py 8bdb...477a 1000 0 1 499 999 */
struct kat {
    const char *seed;
    uint64_t P, i, place;
};

static const struct kat KATS[] = {
    {"zero", 1, 0, 0},
    {"zero", 2, 0, 0},
    {"zero", 2, 1, 1},
    {"count", 5, 0, 3},
    {"count", 5, 4, 2},
    {"tag", 1000, 0, 882},
    {"tag", 1000, 1, 685},
    {"tag", 1000, 499, 771},
    {"tag", 1000, 999, 278},
    {"zero", 4096, 0, 697},
    {"zero", 4096, 4095, 3991},
    {"count", 4097, 0, 1126},
    {"count", 4097, 4096, 438},
    {"tag", 1000000, 0, 370984},
    {"tag", 1000000, 123456, 348250},
    {"tag", 1000000, 999999, 898291},
    {"count", UINT64_C(1099511627776), 0, UINT64_C(404408859439)},
    {"count", UINT64_C(1099511627776), UINT64_C(1099511627775), UINT64_C(1060578158632)},
    {"tag", UINT64_C(1099511627775), UINT64_C(12345678901), UINT64_C(208354128372)},
};

static const char *seed_hex(const char *name)
{
    if (strcmp(name, "zero") == 0) return ZERO_SEED;
    if (strcmp(name, "count") == 0) return COUNT_SEED;
    return TAG_SEED;
}

Test(shuffle, known_answers_from_python_reference)
{
    for (size_t n = 0; n < sizeof KATS / sizeof KATS[0]; n++) {
        const struct kat *k = &KATS[n];
        uint8_t seed[32];
        seed_of(seed_hex(k->seed), seed);
        int64_t p = shuffle_place(seed, k->P, k->i);
        cr_assert_eq(p, (int64_t)k->place, "seed %s P=%llu i=%llu: got %lld, want %llu", k->seed,
                     (unsigned long long)k->P, (unsigned long long)k->i, (long long)p,
                     (unsigned long long)k->place);
        cr_assert_eq(shuffle_inverse(seed, k->P, k->place), (int64_t)k->i);
        struct shuffle s; /* and through a (cached) context */
        cr_assert_eq(shuffle_init(&s, seed, k->P), 0);
        cr_assert_eq(shuffle_ctx_place(&s, k->i), (int64_t)k->place);
        cr_assert_eq(shuffle_ctx_inverse(&s, k->place), (int64_t)k->i);
        shuffle_clear(&s);
    }
}

Test(shuffle, known_full_orders_from_python_reference)
{
    static const int64_t count10[10] = {2, 1, 6, 7, 9, 3, 5, 4, 8, 0};
    static const int64_t tag17[17] = {13, 1, 14, 9, 2, 10, 12, 15, 8, 0, 7, 3, 5, 16, 4, 11, 6};
    static const int64_t tag64[64] = {10, 47, 54, 14, 5,  48, 46, 58, 49, 8,  24, 21, 39,
                                      16, 40, 60, 63, 11, 15, 20, 43, 27, 0,  29, 31, 12,
                                      23, 56, 45, 26, 35, 52, 13, 55, 32, 30, 51, 53, 34,
                                      33, 42, 9,  38, 44, 1,  25, 28, 3,  59, 37, 57, 50,
                                      4,  62, 6,  2,  61, 7,  17, 18, 41, 36, 22, 19};
    uint8_t c[32], t[32];
    seed_of(COUNT_SEED, c);
    seed_of(TAG_SEED, t);
    for (int i = 0; i < 10; i++) cr_assert_eq(shuffle_place(c, 10, i), count10[i], "i=%d", i);
    for (int i = 0; i < 17; i++) cr_assert_eq(shuffle_place(t, 17, i), tag17[i], "i=%d", i);
    for (int i = 0; i < 64; i++) cr_assert_eq(shuffle_place(t, 64, i), tag64[i], "i=%d", i);
}

Test(shuffle, commitment)
{
    uint8_t seed[32];
    char hex[65];
    seed_of(ZERO_SEED, seed);
    shuffle_commitment(seed, hex);
    cr_assert_str_eq(hex, "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925");
    seed_of(COUNT_SEED, seed);
    shuffle_commitment(seed, hex);
    cr_assert_str_eq(hex, "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd");
    seed_of(TAG_SEED, seed);
    shuffle_commitment(seed, hex);
    cr_assert_str_eq(hex, "81f55c99f285ff63ba93eceb3f8f2a75ecb80f123c069585189823489af85a4a");
}

Test(shuffle, seed_hex_round_trip)
{
    uint8_t seed[32], again[32];
    char hex[65];
    seed_of("8BDB318AECABF204E6536985b97b4a7ea6fc72f045af4394e219c7307791477A", seed);
    shuffle_seed_hex(seed, hex);
    cr_assert_str_eq(hex, TAG_SEED, "formatted lowercase");
    cr_assert_eq(shuffle_seed_hex_parse(hex, again), 0);
    cr_assert_arr_eq(seed, again, 32);
}

Test(shuffle, seed_hex_rejects_bad_text)
{
    uint8_t seed[32], before[32];
    memset(seed, 0xab, sizeof seed);
    memcpy(before, seed, sizeof seed);
    const char *bad[] = {
        "",
        "00",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1",   /* 63 digits */
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f0", /* 65 digits */
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g",  /* non-hex */
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
        " 00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "0x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    };
    for (size_t n = 0; n < sizeof bad / sizeof bad[0]; n++) {
        cr_assert_eq(shuffle_seed_hex_parse(bad[n], seed), -1, "accepted \"%s\"", bad[n]);
        cr_assert_arr_eq(seed, before, 32, "seed changed by a refused parse");
    }
    cr_assert_eq(shuffle_seed_hex_parse(NULL, seed), -1);
}
