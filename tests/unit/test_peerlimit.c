/* test_peerlimit.c: unit tests of the per-client connection counts (gateway/peerlimit.c),
 * shared by processes forked after peerlimit_new(), each counting in its own table. */
#include "peerlimit.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define K1 0x0000ffffc0000201ull /* the keys of 192.0.2.1 and 192.0.2.2 */
#define K2 0x0000ffffc0000202ull

static struct peerlimit *new_pl(int nprocs, size_t capacity)
{
    struct peerlimit *pl = peerlimit_new(nprocs, capacity);
    cr_assert_not_null(pl, "peerlimit_new: %s", strerror(errno));
    return pl;
}

/* Run FN(PL, ARG) in a child attached as SLOT; return its exit status. */
static int in_child(struct peerlimit *pl, int slot, int (*fn)(struct peerlimit *, int), int arg)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        peerlimit_attach(pl, slot);
        _exit(fn(pl, arg));
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* Charge K1 N times with a limit of 5; exit with how many were charged (the child then
 * "crashes": it never releases). */
static int charge_n(struct peerlimit *pl, int n)
{
    int ok = 0;
    for (int i = 0; i < n; i++) ok += peerlimit_charge(pl, K1, 5) == PEERLIMIT_CHARGED;
    return ok;
}

Test(peerlimit, limit_holds_across_processes)
{
    struct peerlimit *pl = new_pl(2, 64);
    peerlimit_attach(pl, 0);
    cr_assert_eq(in_child(pl, 1, charge_n, 3), 3);
    cr_assert_eq(peerlimit_count(pl, K1), 3);
    cr_assert_eq(peerlimit_charge(pl, K1, 5), PEERLIMIT_CHARGED);
    cr_assert_eq(peerlimit_charge(pl, K1, 5), PEERLIMIT_CHARGED);
    cr_assert_eq(peerlimit_charge(pl, K1, 5), PEERLIMIT_OVER);
    cr_assert_eq(peerlimit_count(pl, K1), 5);
    /* another client is unaffected */
    cr_assert_eq(peerlimit_charge(pl, K2, 5), PEERLIMIT_CHARGED);
    /* a release makes room again */
    peerlimit_release(pl, K1);
    cr_assert_eq(peerlimit_count(pl, K1), 4);
    cr_assert_eq(peerlimit_charge(pl, K1, 5), PEERLIMIT_CHARGED);
    cr_assert_eq(peerlimit_count(pl, K1), 5);
    peerlimit_free(pl);
}

/* A process that died holding connections leaves counts behind until a process attaches in
 * its slot: the replacement clears them. */
Test(peerlimit, restart_in_slot_clears_its_counts)
{
    struct peerlimit *pl = new_pl(3, 64);
    peerlimit_attach(pl, 0);
    cr_assert_eq(in_child(pl, 2, charge_n, 4), 4);
    cr_assert_eq(peerlimit_count(pl, K1), 4);
    cr_assert_eq(in_child(pl, 2, charge_n, 0), 0); /* the replacement attaches */
    cr_assert_eq(peerlimit_count(pl, K1), 0);
    peerlimit_free(pl);
}

Test(peerlimit, released_entries_are_reused_and_a_full_set_is_untracked)
{
    struct peerlimit *pl = new_pl(1, 1); /* rounded up to one set of 8 */
    peerlimit_attach(pl, 0);
    for (uint64_t k = 1; k <= 8; k++) cr_assert_eq(peerlimit_charge(pl, k, 2), PEERLIMIT_CHARGED);
    cr_assert_eq(peerlimit_charge(pl, 9, 2), PEERLIMIT_UNTRACKED);
    cr_assert_eq(peerlimit_charge(pl, 3, 2),
                 PEERLIMIT_CHARGED); /* an existing entry still counts */
    cr_assert_eq(peerlimit_charge(pl, 3, 2), PEERLIMIT_OVER);
    peerlimit_release(pl, 5);
    cr_assert_eq(peerlimit_count(pl, 5), 0);
    cr_assert_eq(peerlimit_charge(pl, 9, 2), PEERLIMIT_CHARGED);
    /* releasing what was never charged changes nothing */
    peerlimit_release(pl, 77);
    cr_assert_eq(peerlimit_count(pl, 9), 1);
    peerlimit_free(pl);
}

Test(peerlimit, bad_arguments)
{
    cr_assert_null(peerlimit_new(0, 64));
    cr_assert_null(peerlimit_new(65, 64));
    cr_assert_null(peerlimit_new(1, 0));
}
