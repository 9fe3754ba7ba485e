/* fairness.c: Kendall's tau-b between two orders (fairness.h), by Knight's algorithm.
 *
 * With n0 = n(n-1)/2 pairs, n1 the pairs tied in X, n2 the pairs tied in Y, n3 the pairs tied
 * in both and D the discordant pairs (neither tied):
 *
 *   tau_b = (n0 - n1 - n2 + n3 - 2 D) / sqrt((n0 - n1) (n0 - n2))
 *
 * since concordant - discordant = (n0 - n1 - n2 + n3 - D) - D. Sorting the pairs by X, then by
 * Y within equal X, leaves every discordant pair as an inversion of Y (a larger Y before a
 * smaller one), and no pair tied in X or in Y is one; a merge sort on Y counts the inversions in
 * O(n log n) and leaves Y sorted, where n2 is then counted in one pass. */
#include "fairness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct pair {
    uint64_t x, y;
};

static int by_x_then_y(const void *a, const void *b)
{
    const struct pair *p = a, *q = b;
    if (p->x != q->x) return p->x < q->x ? -1 : 1;
    if (p->y != q->y) return p->y < q->y ? -1 : 1;
    return 0;
}

/* Sort V[0..n) by y (stable), merging into TMP (n entries) and back; return how many
 * inversions it undid. */
static uint64_t merge_count(struct pair *v, struct pair *tmp, size_t n)
{
    uint64_t swaps = 0;
    /* Bottom-up, so that no recursion depth depends on N. */
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                if (v[j].y < v[i].y) {
                    /* v[j] jumps every element left in the left run. */
                    swaps += mid - i;
                    tmp[k++] = v[j++];
                } else {
                    tmp[k++] = v[i++];
                }
            }
            while (i < mid) tmp[k++] = v[i++];
            while (j < hi) tmp[k++] = v[j++];
        }
        memcpy(v, tmp, n * sizeof *v);
    }
    return swaps;
}

enum tie { TIE_X, TIE_Y, TIE_XY };

static int tied(const struct pair *a, const struct pair *b, enum tie on)
{
    switch (on) {
    case TIE_X: return a->x == b->x;
    case TIE_Y: return a->y == b->y;
    default: return a->x == b->x && a->y == b->y;
    }
}

/* The pairs tied ON among V[0..n), sorted so that tied elements are adjacent. */
static uint64_t tied_pairs(const struct pair *v, size_t n, enum tie on)
{
    uint64_t ties = 0, run = 1;
    for (size_t i = 1; i <= n; i++) {
        if (i < n && tied(&v[i], &v[i - 1], on)) {
            run++;
        } else {
            ties += run * (run - 1) / 2;
            run = 1;
        }
    }
    return ties;
}

double fairness_kendall_tau(const uint64_t *x, const uint64_t *y, size_t n)
{
    if (n < 2) return NAN;
    struct pair *v = malloc(n * sizeof *v);
    struct pair *tmp = malloc(n * sizeof *tmp);
    if (!v || !tmp) abort();
    for (size_t i = 0; i < n; i++) v[i] = (struct pair){x[i], y[i]};
    qsort(v, n, sizeof *v, by_x_then_y);

    uint64_t n0 = (uint64_t)n * (n - 1) / 2;
    uint64_t n1 = tied_pairs(v, n, TIE_X);
    uint64_t n3 = tied_pairs(v, n, TIE_XY);
    uint64_t d = merge_count(v, tmp, n);
    uint64_t n2 = tied_pairs(v, n, TIE_Y);
    free(v);
    free(tmp);

    if (n1 == n0 || n2 == n0) return NAN;
    double num = (double)n0 - (double)n1 - (double)n2 + (double)n3 - 2.0 * (double)d;
    double den = sqrt((double)(n0 - n1) * (double)(n0 - n2));
    double tau = num / den;
    /* Rounding may step a hair outside [-1, 1]. */
    if (tau > 1) tau = 1;
    if (tau < -1) tau = -1;
    return tau;
}
