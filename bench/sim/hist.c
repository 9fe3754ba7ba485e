/* hist.c: the latency histogram of antre-bench (hist.h). A value V below HIST_SUB has a bucket
 * of its own (row 0, column V: exact). Above, V lies between 2^b and 2^(b+1) for b >= 6; that
 * octave is row b - 5, split in HIST_SUB columns of width 2^(b-6), so a bucket's width is at
 * most 1/64 of any value in it and its upper bound is within 1/64 of every value it holds.
 * Row HIST_POW - 1 is the last octave (values up to 2^46 - 1); anything larger is counted
 * there too (the exact max still bounds every quantile). */
#include "hist.h"

#include <string.h>

/* log2 of HIST_SUB: the first octave split in columns starts at 2^SUB_BITS. */
#define SUB_BITS 6

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

static int top_bit(uint64_t v) { return 63 - __builtin_clzll(v); }

static void bucket_of(uint64_t v, unsigned *row, unsigned *col)
{
    if (v < HIST_SUB) {
        *row = 0;
        *col = (unsigned)v;
        return;
    }
    int b = top_bit(v);
    unsigned r = (unsigned)(b - SUB_BITS + 1);
    if (r >= HIST_POW) {
        *row = HIST_POW - 1;
        *col = HIST_SUB - 1;
        return;
    }
    *row = r;
    *col = (unsigned)((v >> (b - SUB_BITS)) - HIST_SUB);
}

/* The largest value bucket (ROW, COL) holds. */
static uint64_t bucket_upper(unsigned row, unsigned col)
{
    if (row == 0) return col;
    unsigned shift = row - 1;
    return (((uint64_t)HIST_SUB + col + 1) << shift) - 1;
}

void hist_add(struct hist *h, uint64_t v)
{
    unsigned row, col;
    bucket_of(v, &row, &col);
    h->buckets[row][col]++;
    h->count++;
    h->sum += (double)v;
    if (v < h->min) h->min = v;
    if (v > h->max) h->max = v;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    if (src->count == 0) return;
    for (unsigned r = 0; r < HIST_POW; r++)
        for (unsigned c = 0; c < HIST_SUB; c++) dst->buckets[r][c] += src->buckets[r][c];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min) dst->min = src->min;
    if (src->max > dst->max) dst->max = src->max;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (h->count == 0) return 0;
    if (!(q > 0)) return h->min; /* also NaN */
    if (q >= 1) return h->max;
    /* The rank of the value wanted: the smallest k with k / count >= q. */
    double want = q * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want) rank++;
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (unsigned r = 0; r < HIST_POW; r++)
        for (unsigned c = 0; c < HIST_SUB; c++) {
            seen += h->buckets[r][c];
            if (seen >= rank) {
                uint64_t v = bucket_upper(r, c);
                if (v > h->max) v = h->max;
                if (v < h->min) v = h->min;
                return v;
            }
        }
    return h->max;
}

double hist_mean(const struct hist *h) { return h->count ? h->sum / (double)h->count : 0; }
