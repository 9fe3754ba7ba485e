/* fairness.h: how fair a waiting room was: Kendall's tau between the order applicants arrived
 * in and the order they were admitted in (1: first come, first served; 0: a lottery; -1:
 * reversed). */
#ifndef ANTRE_BENCH_FAIRNESS_H
#define ANTRE_BENCH_FAIRNESS_H

#include <stddef.h>
#include <stdint.h>

/* Kendall's tau-b of the N pairs (X[i], Y[i]), ties handled as tau-b does, in O(N log N)
 * (Knight's algorithm: sort by X then Y, count discordant pairs by merge sort on Y). Returns NAN
 * when N < 2 or when either side is all ties. X and Y are not modified. */
double fairness_kendall_tau(const uint64_t *x, const uint64_t *y, size_t n);

#endif
