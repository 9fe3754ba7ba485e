/* peerlimit.c: per-client connection counts in shared memory (see peerlimit.h).
 *
 * Layout: NPROCS tables of N 8-byte entries, one after the other in one MAP_SHARED mapping.
 * Table p is written only by the process attached as slot p. An entry is
 * (tag << 16 | count) with count >= 1, or 0 when free; tag is 48 bits of SipHash of the client
 * key (the set index comes from the other 16 low bits and the mask), so two clients share an
 * entry only if 48 hash bits collide within one set: about 2^-48 per pair, negligible. */
#include "peerlimit.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ratelimit.h"

#define SET_ENTRIES 8 /* entries per set: one 64-byte cache line */
#define COUNT_MASK 0xffffull

struct peerlimit {
    _Atomic uint64_t *base; /* NPROCS tables of N entries */
    size_t n;               /* entries per table (power of two, >= SET_ENTRIES) */
    size_t set_mask;        /* sets per table - 1 */
    int nprocs;
    int slot; /* this process's table */
    uint64_t k0, k1;
};

struct peerlimit *peerlimit_new(int nprocs, size_t capacity)
{
    if (nprocs < 1 || nprocs > 64 || capacity < 1 || capacity > ((size_t)1 << 26)) {
        errno = EINVAL;
        return NULL;
    }
    size_t n = SET_ENTRIES;
    while (n < capacity) n <<= 1;
    uint64_t key[2];
    if (RAND_bytes((unsigned char *)key, sizeof key) != 1) {
        errno = EIO;
        return NULL;
    }
    size_t bytes = (size_t)nprocs * n * sizeof(uint64_t);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    struct peerlimit *pl = calloc(1, sizeof *pl);
    if (!pl) abort();
    pl->base = p;
    pl->n = n;
    pl->set_mask = n / SET_ENTRIES - 1;
    pl->nprocs = nprocs;
    pl->k0 = key[0];
    pl->k1 = key[1];
    return pl;
}

void peerlimit_free(struct peerlimit *pl)
{
    if (!pl) return;
    munmap((void *)pl->base, (size_t)pl->nprocs * pl->n * sizeof(uint64_t));
    free(pl);
}

void peerlimit_clear_slot(struct peerlimit *pl, int slot)
{
    if (slot < 0 || slot >= pl->nprocs) abort();
    _Atomic uint64_t *t = pl->base + (size_t)slot * pl->n;
    for (size_t i = 0; i < pl->n; i++) atomic_store_explicit(&t[i], 0, memory_order_relaxed);
}

void peerlimit_attach(struct peerlimit *pl, int slot)
{
    peerlimit_clear_slot(pl, slot);
    pl->slot = slot;
}

/* The set of client KEY in table P, and the tag its entries carry. */
static _Atomic uint64_t *set_of(const struct peerlimit *pl, int p, uint64_t key, uint64_t *tag)
{
    uint64_t h = ratelimit_hash(pl->k0, pl->k1, key);
    *tag = h >> 16;
    return pl->base + (size_t)p * pl->n + (size_t)(h & pl->set_mask) * SET_ENTRIES;
}

/* The count of the entry tagged TAG in SET (0 if none); *AT the entry, or NULL. */
static uint64_t find(_Atomic uint64_t *set, uint64_t tag, _Atomic uint64_t **at)
{
    for (int i = 0; i < SET_ENTRIES; i++) {
        uint64_t e = atomic_load_explicit(&set[i], memory_order_relaxed);
        if (e && e >> 16 == tag) {
            if (at) *at = &set[i];
            return e & COUNT_MASK;
        }
    }
    if (at) *at = NULL;
    return 0;
}

int peerlimit_count(const struct peerlimit *pl, uint64_t key)
{
    uint64_t total = 0, tag;
    for (int p = 0; p < pl->nprocs; p++) {
        _Atomic uint64_t *set = set_of(pl, p, key, &tag);
        total += find(set, tag, NULL);
    }
    return (int)total;
}

enum peerlimit_result peerlimit_charge(struct peerlimit *pl, uint64_t key, int max)
{
    if (peerlimit_count(pl, key) >= max) return PEERLIMIT_OVER;
    uint64_t tag;
    _Atomic uint64_t *set = set_of(pl, pl->slot, key, &tag), *at;
    uint64_t mine = find(set, tag, &at);
    if (at) {
        if (mine == COUNT_MASK) return PEERLIMIT_UNTRACKED;
        atomic_store_explicit(at, tag << 16 | (mine + 1), memory_order_relaxed);
        return PEERLIMIT_CHARGED;
    }
    for (int i = 0; i < SET_ENTRIES; i++)
        if (atomic_load_explicit(&set[i], memory_order_relaxed) == 0) {
            atomic_store_explicit(&set[i], tag << 16 | 1, memory_order_relaxed);
            return PEERLIMIT_CHARGED;
        }
    return PEERLIMIT_UNTRACKED;
}

void peerlimit_release(struct peerlimit *pl, uint64_t key)
{
    uint64_t tag;
    _Atomic uint64_t *set = set_of(pl, pl->slot, key, &tag), *at;
    uint64_t mine = find(set, tag, &at);
    if (!at) return;
    atomic_store_explicit(at, mine > 1 ? tag << 16 | (mine - 1) : 0, memory_order_relaxed);
}
