/* hist.h: a latency histogram of fixed size (no allocation after hist_init): log-linear buckets
 * (powers of two, each split in HIST_SUB linear sub-buckets), so any value from 1 to about 2^40
 * is kept within 1/HIST_SUB (about 1.6 %) of itself. Values are unsigned integers in whatever
 * unit the caller picks (antre-bench records microseconds). Not thread-safe; merge per-thread
 * copies with hist_merge. */
#ifndef ANTRE_BENCH_HIST_H
#define ANTRE_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB 64
#define HIST_POW 41

struct hist {
    uint64_t count;
    uint64_t min, max; /* exact; min is UINT64_MAX while empty */
    double sum;
    uint64_t buckets[HIST_POW][HIST_SUB];
};

void hist_init(struct hist *h);
void hist_add(struct hist *h, uint64_t v);
/* Add every value of SRC to DST. */
void hist_merge(struct hist *dst, const struct hist *src);
/* The value at quantile Q (0..1): the upper bound of the bucket holding it, never above max;
 * 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);
double hist_mean(const struct hist *h);
/* The share (0..1) of the values whose bucket lies wholly at or below V (values within 1/64
 * above V may be left out); 0 when empty. */
double hist_share_below(const struct hist *h, uint64_t v);

#endif
