/* slots.c: shared-memory slots (see slots.h). */
#include "antre/slots.h"

#include <sys/mman.h>

int slots_map(struct slots *s, int n, size_t size)
{
    s->base = NULL;
    s->size = 0;
    s->n = 0;
    if (n < 1 || size == 0) return -1;
    void *p =
        mmap(NULL, (size_t)n * size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return -1;
    s->base = p;
    s->size = size;
    s->n = n;
    return 0;
}

void slots_unmap(struct slots *s)
{
    if (s->base) munmap(s->base, (size_t)s->n * s->size);
    s->base = NULL;
    s->size = 0;
    s->n = 0;
}

void *slots_at(const struct slots *s, int i) { return s->base + (size_t)i * s->size; }

void slots_sum(const struct slots *s, size_t off, size_t len, uint64_t *out)
{
    size_t words = len / sizeof(uint64_t);
    for (int i = 0; i < s->n; i++) {
        /* volatile: other processes write these while we read */
        const volatile uint64_t *w =
            (const volatile uint64_t *)(s->base + (size_t)i * s->size + off);
        for (size_t k = 0; k < words; k++) out[k] += w[k];
    }
}
