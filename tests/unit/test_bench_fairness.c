/* test_bench_fairness.c: unit tests of antre-bench's fairness statistic (bench/sim/fairness.c):
 * Kendall's tau-b of identical and reversed orders, small examples worked by hand, ties, and
 * random orders of a few thousand with and without ties, each against tau-b computed here by
 * brute force over every pair (O(n^2), from the definition). */
#include "fairness.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

TestSuite(bench_fairness, .timeout = 60);

/* tau-b from its definition: (concordant - discordant) / sqrt((n0 - ties in x)(n0 - ties in y)). */
static double brute_tau_b(const uint64_t *x, const uint64_t *y, size_t n)
{
    double conc = 0, disc = 0, tx = 0, ty = 0, n0 = (double)n * (double)(n - 1) / 2;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            int dx = (x[i] > x[j]) - (x[i] < x[j]);
            int dy = (y[i] > y[j]) - (y[i] < y[j]);
            if (dx == 0) tx++;
            if (dy == 0) ty++;
            if (dx * dy > 0) conc++;
            if (dx * dy < 0) disc++;
        }
    if (n < 2 || tx == n0 || ty == n0) return NAN;
    return (conc - disc) / sqrt((n0 - tx) * (n0 - ty));
}

static void shuffle(uint64_t *v, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rand() % i;
        uint64_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

Test(bench_fairness, identical_order_is_one)
{
    uint64_t x[1000], y[1000];
    for (int i = 0; i < 1000; i++) x[i] = y[i] = (uint64_t)i * 3;
    cr_assert_float_eq(fairness_kendall_tau(x, y, 1000), 1.0, 1e-12);
    /* The order matters, not the values, nor the order the pairs are listed in. */
    for (int i = 0; i < 1000; i++) y[i] = 5000 + (uint64_t)i * (uint64_t)i;
    cr_assert_float_eq(fairness_kendall_tau(x, y, 1000), 1.0, 1e-12);
}

Test(bench_fairness, reversed_order_is_minus_one)
{
    uint64_t x[777], y[777];
    for (int i = 0; i < 777; i++) {
        x[i] = (uint64_t)i;
        y[i] = 777 - (uint64_t)i;
    }
    cr_assert_float_eq(fairness_kendall_tau(x, y, 777), -1.0, 1e-12);
}

Test(bench_fairness, undefined_is_nan)
{
    uint64_t x[3] = {1, 2, 3}, same[3] = {7, 7, 7};
    cr_assert(isnan(fairness_kendall_tau(x, x, 0)));
    cr_assert(isnan(fairness_kendall_tau(x, x, 1)));
    cr_assert(isnan(fairness_kendall_tau(x, same, 3)));
    cr_assert(isnan(fairness_kendall_tau(same, x, 3)));
}

Test(bench_fairness, small_examples)
{
    /* Two items: one pair, concordant or discordant. */
    uint64_t a[2] = {1, 2}, b[2] = {2, 1};
    cr_assert_float_eq(fairness_kendall_tau(a, a, 2), 1.0, 1e-12);
    cr_assert_float_eq(fairness_kendall_tau(a, b, 2), -1.0, 1e-12);

    /* 1 2 3 4 5 against 3 1 2 5 4: pairs (1,2) (1,3) (4,5) discordant, 7 concordant: 4/10. */
    uint64_t x[5] = {1, 2, 3, 4, 5}, y[5] = {3, 1, 2, 5, 4};
    cr_assert_float_eq(fairness_kendall_tau(x, y, 5), 0.4, 1e-12);
    cr_assert_float_eq(fairness_kendall_tau(x, y, 5), brute_tau_b(x, y, 5), 1e-12);
    /* Symmetric in its arguments. */
    cr_assert_float_eq(fairness_kendall_tau(y, x, 5), 0.4, 1e-12);

    /* Ties (the textbook example): x = 1 2 2 3, y = 1 3 2 3. Pairs: (1,2) c, (1,3) c, (1,4) c,
     * (2,3) tied x, (2,4) tied y, (3,4) c: 4 concordant, 0 discordant, one tie each side:
     * 4 / sqrt(5 * 5) = 0.8. */
    uint64_t tx[4] = {1, 2, 2, 3}, ty[4] = {1, 3, 2, 3};
    cr_assert_float_eq(fairness_kendall_tau(tx, ty, 4), 0.8, 1e-12);
    cr_assert_float_eq(brute_tau_b(tx, ty, 4), 0.8, 1e-12);

    /* A pair tied on both sides counts in neither. */
    uint64_t dx[4] = {1, 1, 2, 3}, dy[4] = {5, 5, 4, 6};
    cr_assert_float_eq(fairness_kendall_tau(dx, dy, 4), brute_tau_b(dx, dy, 4), 1e-12);

    /* Inputs are left as they were. */
    cr_assert_eq(y[0], 3);
    cr_assert_eq(y[4], 4);
}

Test(bench_fairness, random_permutations_against_brute_force)
{
    srand(2026);
    size_t sizes[] = {2, 3, 7, 64, 500, 3000, 4096};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        uint64_t *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
        for (int round = 0; round < 3; round++) {
            for (size_t i = 0; i < n; i++) x[i] = y[i] = i;
            shuffle(x, n);
            shuffle(y, n);
            if (round == 1) { /* nearly in order: a few swaps */
                for (size_t i = 0; i < n; i++) y[i] = x[i];
                for (size_t s = 0; s < n / 20 + 1; s++) {
                    size_t i = (size_t)rand() % n, j = (size_t)rand() % n;
                    uint64_t t = y[i];
                    y[i] = y[j];
                    y[j] = t;
                }
            }
            double want = brute_tau_b(x, y, n), got = fairness_kendall_tau(x, y, n);
            if (isnan(want)) {
                cr_assert(isnan(got), "n=%zu round=%d: %g for NaN", n, round, got);
                continue;
            }
            cr_assert_float_eq(got, want, 1e-9, "n=%zu round=%d: %.12f for %.12f", n, round, got,
                               want);
        }
        free(x);
        free(y);
    }
}

Test(bench_fairness, random_with_ties_against_brute_force)
{
    srand(99);
    size_t sizes[] = {5, 50, 1000, 3500};
    uint64_t ranges[] = {2, 5, 40, 100000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
            size_t n = sizes[k];
            uint64_t *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
            for (size_t i = 0; i < n; i++) {
                x[i] = (uint64_t)rand() % ranges[r];
                /* y follows x loosely, so that tau is neither 0 nor 1. */
                y[i] = (x[i] + (uint64_t)rand() % (ranges[r] / 2 + 1)) % (ranges[r] + 1);
            }
            double want = brute_tau_b(x, y, n), got = fairness_kendall_tau(x, y, n);
            if (isnan(want)) cr_assert(isnan(got));
            else
                cr_assert_float_eq(got, want, 1e-9, "n=%zu range=%lu: %.12f for %.12f", n,
                                   (unsigned long)ranges[r], got, want);
            free(x);
            free(y);
        }
}

Test(bench_fairness, large_input_is_fast)
{
    /* 2 million pairs: O(n^2) would take hours; the test's timeout is the check. */
    size_t n = 2000000;
    uint64_t *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        x[i] = i;
        y[i] = i ^ 1; /* neighbours swapped: n/2 discordant pairs */
    }
    double n0 = (double)n * (double)(n - 1) / 2;
    cr_assert_float_eq(fairness_kendall_tau(x, y, n), (n0 - n) / n0, 1e-12);
    free(x);
    free(y);
}
