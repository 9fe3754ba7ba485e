/* test_slots.c: unit tests of the shared-memory slots (common/slots.c).
 *
 * The slots must be shared with a child forked after mapping (what a supervisor's children
 * write, the parent reads), start zeroed, keep slots apart, and sum word by word over every
 * slot, signed gauges included. */
#include "antre/slots.h"

#include <criterion/criterion.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

struct counters {
    uint64_t hits;
    int64_t gauge;
    uint64_t by_kind[3];
    int64_t pid; /* not summed */
};

Test(slots, zeroed_and_apart)
{
    struct slots s;
    cr_assert_eq(slots_map(&s, 4, sizeof(struct counters)), 0);
    for (int i = 0; i < 4; i++) {
        struct counters *c = slots_at(&s, i);
        cr_assert_eq(c->hits, 0);
        cr_assert_eq(c->pid, 0);
        c->hits = (uint64_t)i + 1;
    }
    for (int i = 0; i < 4; i++)
        cr_assert_eq(((struct counters *)slots_at(&s, i))->hits, (uint64_t)i + 1);
    slots_unmap(&s);
    cr_assert_null(s.base);
    slots_unmap(&s); /* twice is harmless */
}

Test(slots, refuses_nothing_to_map)
{
    struct slots s;
    cr_assert_eq(slots_map(&s, 0, 8), -1);
    cr_assert_eq(slots_map(&s, 2, 0), -1);
    cr_assert_null(s.base);
}

Test(slots, a_forked_child_writes_what_the_parent_reads)
{
    struct slots s;
    cr_assert_eq(slots_map(&s, 3, sizeof(struct counters)), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct counters *c = slots_at(&s, 1);
        c->hits = 41;
        c->gauge = -7;
        c->by_kind[2] = 5;
        c->pid = getpid();
        _exit(0);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const struct counters *c = slots_at(&s, 1);
    cr_assert_eq(c->hits, 41);
    cr_assert_eq(c->pid, pid);
    cr_assert_eq(((struct counters *)slots_at(&s, 0))->hits, 0, "slot 0 untouched");
    slots_unmap(&s);
}

Test(slots, sum_adds_every_slot_word_by_word)
{
    struct slots s;
    cr_assert_eq(slots_map(&s, 3, sizeof(struct counters)), 0);
    for (int i = 0; i < 3; i++) {
        struct counters *c = slots_at(&s, i);
        c->hits = 10u * (uint64_t)(i + 1); /* 10 20 30 */
        c->gauge = i == 2 ? -50 : 5;       /* 5 5 -50 */
        c->by_kind[i] = 1;
        c->pid = 1000 + i;
    }
    struct counters sum = {.pid = 0};
    sum.hits = 1; /* not cleared: sums add to what is there */
    slots_sum(&s, 0, offsetof(struct counters, pid), (uint64_t *)(void *)&sum);
    cr_assert_eq(sum.hits, 61);
    cr_assert_eq(sum.gauge, -40);
    cr_assert_eq(sum.by_kind[0], 1);
    cr_assert_eq(sum.by_kind[1], 1);
    cr_assert_eq(sum.by_kind[2], 1);
    cr_assert_eq(sum.pid, 0, "words past LEN are not summed");

    uint64_t kinds[3] = {0, 0, 0};
    slots_sum(&s, offsetof(struct counters, by_kind), sizeof kinds, kinds);
    cr_assert(kinds[0] == 1 && kinds[1] == 1 && kinds[2] == 1, "an inner range from OFF");
    slots_unmap(&s);
}
