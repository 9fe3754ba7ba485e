/* test_bench_hist.c: unit tests of antre-bench's latency histogram (bench/sim/hist.c): exact
 * count, min, max and mean; quantiles of known distributions within 1/64 of the exact value
 * (computed here by sorting every value); merge; the empty histogram. */
#include "hist.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

static struct hist h;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The exact value at quantile Q of the sorted V[0..n): the smallest value with at least
 * ceil(q n) values at or below it. */
static uint64_t exact_quantile(const uint64_t *v, size_t n, double q)
{
    size_t rank = (size_t)ceil(q * (double)n);
    if (rank == 0) rank = 1;
    return v[rank - 1];
}

/* Check every usual quantile of V (n values, added to a fresh histogram) against the exact
 * ones: never below, and above by at most 1/64. */
static void check_quantiles(uint64_t *v, size_t n)
{
    hist_init(&h);
    for (size_t i = 0; i < n; i++) hist_add(&h, v[i]);
    qsort(v, n, sizeof *v, cmp_u64);
    cr_assert_eq(h.count, n);
    cr_assert_eq(h.min, v[0]);
    cr_assert_eq(h.max, v[n - 1]);
    static const double qs[] = {0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        uint64_t want = exact_quantile(v, n, qs[i]);
        uint64_t got = hist_quantile(&h, qs[i]);
        cr_assert_geq(got, want, "q=%g: %lu below the exact %lu", qs[i], (unsigned long)got,
                      (unsigned long)want);
        cr_assert_leq((double)(got - want), (double)want / 64.0, "q=%g: %lu for the exact %lu",
                      qs[i], (unsigned long)got, (unsigned long)want);
    }
}

Test(bench_hist, empty)
{
    hist_init(&h);
    cr_assert_eq(h.count, 0);
    cr_assert_eq(h.min, UINT64_MAX);
    cr_assert_eq(h.max, 0);
    cr_assert_eq(hist_quantile(&h, 0.5), 0);
    cr_assert_eq(hist_quantile(&h, 0.99), 0);
    cr_assert_eq(hist_mean(&h), 0);
}

Test(bench_hist, one_value)
{
    hist_init(&h);
    hist_add(&h, 123456);
    cr_assert_eq(h.count, 1);
    cr_assert_eq(h.min, 123456);
    cr_assert_eq(h.max, 123456);
    /* The bucket's upper bound is clamped to the exact max. */
    cr_assert_eq(hist_quantile(&h, 0.5), 123456);
    cr_assert_eq(hist_quantile(&h, 0), 123456);
    cr_assert_eq(hist_quantile(&h, 1), 123456);
    cr_assert_float_eq(hist_mean(&h), 123456.0, 1e-9);
}

Test(bench_hist, small_values_exact)
{
    hist_init(&h);
    for (uint64_t v = 0; v < 64; v++) hist_add(&h, v);
    cr_assert_eq(h.min, 0);
    cr_assert_eq(h.max, 63);
    /* Below HIST_SUB every value has its own bucket. */
    cr_assert_eq(hist_quantile(&h, 0.5), 31);
    cr_assert_eq(hist_quantile(&h, 0.25), 15);
    cr_assert_eq(hist_quantile(&h, 1.0 / 64), 0);
    cr_assert_float_eq(hist_mean(&h), 31.5, 1e-9);
}

Test(bench_hist, uniform)
{
    size_t n = 100000;
    uint64_t *v = malloc(n * sizeof *v);
    srand(12);
    for (size_t i = 0; i < n; i++) v[i] = 1000 + (uint64_t)rand() % 1000000;
    check_quantiles(v, n);
    free(v);
}

Test(bench_hist, exponential)
{
    size_t n = 100000;
    uint64_t *v = malloc(n * sizeof *v);
    srand(34);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double u = ((double)rand() + 1) / ((double)RAND_MAX + 2);
        v[i] = (uint64_t)(-log(u) * 20000.0);
        sum += (double)v[i];
    }
    check_quantiles(v, n);
    cr_assert_float_eq(hist_mean(&h), sum / (double)n, 1e-6 * sum / (double)n);
    free(v);
}

Test(bench_hist, log_uniform_wide)
{
    /* From 1 to about 2^45: every octave of the histogram. */
    size_t n = 50000;
    uint64_t *v = malloc(n * sizeof *v);
    srand(56);
    for (size_t i = 0; i < n; i++) {
        double e = 45.0 * (double)rand() / (double)RAND_MAX;
        v[i] = (uint64_t)exp2(e);
    }
    check_quantiles(v, n);
    free(v);
}

Test(bench_hist, every_bucket_edge)
{
    /* Values at and around each power of two keep the error bound. */
    uint64_t v[3 * 46];
    size_t n = 0;
    for (int b = 0; b < 46; b++) {
        uint64_t p = (uint64_t)1 << b;
        v[n++] = p;
        v[n++] = p + 1;
        v[n++] = p - 1 + (p >> 1);
    }
    check_quantiles(v, n);
    for (size_t i = 0; i < n; i++) {
        hist_init(&h);
        hist_add(&h, v[i]);
        hist_add(&h, v[i]);
        hist_add(&h, UINT64_MAX / 2);
        uint64_t got = hist_quantile(&h, 0.5);
        cr_assert_geq(got, v[i]);
        cr_assert_leq((double)(got - v[i]), (double)v[i] / 64.0, "%lu -> %lu", (unsigned long)v[i],
                      (unsigned long)got);
    }
}

Test(bench_hist, huge_values_kept_exact_at_the_ends)
{
    hist_init(&h);
    hist_add(&h, 5);
    hist_add(&h, UINT64_MAX - 1);
    cr_assert_eq(h.max, UINT64_MAX - 1);
    cr_assert_eq(hist_quantile(&h, 1), UINT64_MAX - 1);
    cr_assert_eq(hist_quantile(&h, 0.5), 5);
}

Test(bench_hist, merge)
{
    static struct hist a, b, all;
    hist_init(&a);
    hist_init(&b);
    hist_init(&all);
    srand(78);
    for (int i = 0; i < 20000; i++) {
        uint64_t x = (uint64_t)rand() % 50000, y = 40000 + (uint64_t)rand() % 90000;
        hist_add(&a, x);
        hist_add(&b, y);
        hist_add(&all, x);
        hist_add(&all, y);
    }
    hist_merge(&a, &b);
    cr_assert_eq(a.count, all.count);
    cr_assert_eq(a.min, all.min);
    cr_assert_eq(a.max, all.max);
    cr_assert_float_eq(a.sum, all.sum, 1e-6);
    for (double q = 0.05; q < 1; q += 0.05)
        cr_assert_eq(hist_quantile(&a, q), hist_quantile(&all, q));

    /* Merging an empty one changes nothing, and into an empty one copies. */
    static struct hist empty;
    hist_init(&empty);
    hist_merge(&a, &empty);
    cr_assert_eq(a.count, all.count);
    cr_assert_eq(a.min, all.min);
    hist_merge(&empty, &all);
    cr_assert_eq(empty.count, all.count);
    cr_assert_eq(empty.min, all.min);
    cr_assert_eq(empty.max, all.max);
    cr_assert_eq(hist_quantile(&empty, 0.99), hist_quantile(&all, 0.99));
}
