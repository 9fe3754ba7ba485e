/* slots.h: per-process slots in shared memory, for counters that several processes write.
 *
 * The parent maps N zeroed slots of a size the program chooses before it forks; each process
 * writes only its own slot (no locks on the hot path) and any process can read or sum them all.
 * A reader may see a counter one increment old: harmless for monitoring. */
#ifndef ANTRE_SLOTS_H
#define ANTRE_SLOTS_H

#include <stddef.h>
#include <stdint.h>

struct slots {
    unsigned char *base;
    size_t size; /* bytes per slot */
    int n;
};

/* Map N (>= 1) zeroed slots of SIZE bytes each, shared with children forked later.
 * 0 ok, -1 (mmap failed; S is left empty). Release with slots_unmap. */
int slots_map(struct slots *s, int n, size_t size);

/* Unmap S (in the calling process only); S becomes empty. Safe on an empty S. */
void slots_unmap(struct slots *s);

/* Slot I (0..n-1) of S. */
void *slots_at(const struct slots *s, int i);

/* Add, word by word, the 64-bit counters at bytes [OFF, OFF + LEN) of every slot to OUT
 * (LEN / 8 words; OFF and LEN multiples of 8). Signed gauges sum correctly too (two's
 * complement). OUT is not cleared first. */
void slots_sum(const struct slots *s, size_t off, size_t len, uint64_t *out);

#endif
