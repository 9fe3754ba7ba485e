/* test_ratelimit.c: unit tests of the per-client-IP GCRA rate limiter (gateway/ratelimit.c).
 *
 * All times are synthetic nanoseconds, so every expectation is exact GCRA arithmetic: with rate
 * R and burst B, a client hammering for D seconds gets B + floor(D * R) requests through.
 * The table is shared by processes forked after ratelimit_new(): the last tests fork. */
#include "ratelimit.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000ull
#define SEC 1000000000ull

/* A socket address for the textual address S, IPv4 or IPv6. */
static struct sockaddr_storage addr(const char *s)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, s, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(40000);
    } else if (inet_pton(AF_INET6, s, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(40001);
    } else {
        cr_assert_fail("bad address %s", s);
    }
    return ss;
}

static long check(struct ratelimit *rl, const char *s, uint64_t now)
{
    struct sockaddr_storage ss = addr(s);
    return ratelimit_check(rl, (const struct sockaddr *)&ss, now);
}

/* Send N requests from S at NOW; return how many were allowed. */
static int burst(struct ratelimit *rl, const char *s, uint64_t now, int n)
{
    int ok = 0;
    for (int i = 0; i < n; i++) ok += check(rl, s, now) == 0;
    return ok;
}

static struct ratelimit *new_rl(double rate, int b, size_t capacity)
{
    struct ratelimit *rl = ratelimit_new(rate, b, capacity);
    cr_assert_not_null(rl, "ratelimit_new: %s", strerror(errno));
    return rl;
}

Test(ratelimit, burst_then_refusal)
{
    struct ratelimit *rl = new_rl(1, 5, 64);
    uint64_t t = 7 * SEC;
    for (int i = 0; i < 5; i++) cr_assert_eq(check(rl, "192.0.2.1", t), 0, "request %d", i);
    cr_assert_gt(check(rl, "192.0.2.1", t), 0);
    cr_assert_gt(check(rl, "192.0.2.1", t), 0);
    /* another client is unaffected */
    cr_assert_eq(check(rl, "192.0.2.2", t), 0);

    struct ratelimit_stats st;
    ratelimit_get_stats(rl, &st);
    cr_assert_eq(st.allowed, 6);
    cr_assert_eq(st.refused, 2);
    cr_assert_eq(st.evictions, 0);
    cr_assert_eq(st.slots_used, 2);
    ratelimit_free(rl);
}

Test(ratelimit, starts_at_time_zero)
{
    struct ratelimit *rl = new_rl(1, 2, 8);
    cr_assert_eq(burst(rl, "192.0.2.1", 0, 3), 2);
    cr_assert_eq(check(rl, "192.0.2.1", 1 * SEC), 0);
    cr_assert_gt(check(rl, "192.0.2.1", 1 * SEC), 0);
    ratelimit_free(rl);
}

Test(ratelimit, refill_after_interval)
{
    struct ratelimit *rl = new_rl(10, 3, 64); /* T = 100 ms */
    uint64_t t = 1 * SEC;
    cr_assert_eq(burst(rl, "198.51.100.1", t, 10), 3);
    cr_assert_gt(check(rl, "198.51.100.1", t + 99 * MS), 0);
    cr_assert_eq(check(rl, "198.51.100.1", t + 100 * MS), 0);
    cr_assert_gt(check(rl, "198.51.100.1", t + 100 * MS), 0);
    cr_assert_eq(burst(rl, "198.51.100.1", t + 250 * MS, 5), 1);
    cr_assert_eq(burst(rl, "198.51.100.1", t + 300 * MS, 5), 1);
    /* after a long idle time, a full burst again, and no more */
    cr_assert_eq(burst(rl, "198.51.100.1", t + 3600 * SEC, 10), 3);
    ratelimit_free(rl);
}

Test(ratelimit, retry_after_ms)
{
    struct ratelimit *rl = new_rl(2, 3, 64); /* T = 500 ms, tau = 1 s */
    uint64_t t = 5 * SEC;
    cr_assert_eq(burst(rl, "203.0.113.5", t, 3), 3); /* TAT = t + 1.5 s */
    cr_assert_eq(check(rl, "203.0.113.5", t), 500);
    cr_assert_eq(check(rl, "203.0.113.5", t + 100 * MS), 400);
    cr_assert_eq(check(rl, "203.0.113.5", t + 499 * MS), 1);
    cr_assert_eq(check(rl, "203.0.113.5", t + 499 * MS + 999999), 1, "rounded up");
    cr_assert_eq(check(rl, "203.0.113.5", t + 500 * MS), 0);
    cr_assert_eq(check(rl, "203.0.113.5", t + 500 * MS), 500);
    ratelimit_free(rl);
}

/* Whatever the arrival pattern, a refusal's delay is exact: one ms earlier is still refused,
 * at the delay the request goes through, and the delay never exceeds one interval. */
Test(ratelimit, retry_after_is_exact_under_random_arrivals)
{
    struct ratelimit *rl = new_rl(7, 4, 64); /* T = 142857143 ns */
    uint64_t t = 1 * SEC, x = 12345;
    int refusals = 0;
    for (int i = 0; i < 20000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        t += (x >> 33) % (60 * MS);
        long r = check(rl, "2001:db8::7", t);
        if (r == 0) continue;
        refusals++;
        cr_assert_leq(r, 143, "delay %ld ms exceeds one interval", r);
        if (r > 1) cr_assert_gt(check(rl, "2001:db8::7", t + (uint64_t)(r - 1) * MS), 0);
        cr_assert_eq(check(rl, "2001:db8::7", t + (uint64_t)r * MS), 0, "at +%ld ms", r);
        t += (uint64_t)r * MS;
    }
    cr_assert_gt(refusals, 1000);
    ratelimit_free(rl);
}

Test(ratelimit, ipv6_keyed_by_64)
{
    struct ratelimit *rl = new_rl(1, 2, 64);
    uint64_t t = 1 * SEC;
    cr_assert_eq(check(rl, "2001:db8:1:2::1", t), 0);
    cr_assert_eq(check(rl, "2001:db8:1:2:ffff:ffff:ffff:fffe", t), 0);
    cr_assert_gt(check(rl, "2001:db8:1:2:a:b:c:d", t), 0, "same /64 shares the bucket");
    cr_assert_eq(burst(rl, "2001:db8:1:3::1", t, 3), 2, "next /64 has its own");
    cr_assert_eq(burst(rl, "2001:db9:1:2::1", t, 3), 2, "other /32, same low bits");
    cr_assert_eq(burst(rl, "::1", t, 3), 2);
    ratelimit_free(rl);
}

Test(ratelimit, ipv4_keyed_by_32)
{
    struct ratelimit *rl = new_rl(1, 2, 64);
    uint64_t t = 1 * SEC;
    cr_assert_eq(burst(rl, "192.0.2.1", t, 3), 2);
    cr_assert_eq(burst(rl, "192.0.2.2", t, 3), 2);
    cr_assert_eq(burst(rl, "192.0.3.1", t, 3), 2);
    ratelimit_free(rl);
}

Test(ratelimit, ipv4_mapped_is_ipv4)
{
    struct ratelimit *rl = new_rl(1, 3, 64);
    uint64_t t = 1 * SEC;
    cr_assert_eq(burst(rl, "192.0.2.7", t, 3), 3);
    cr_assert_gt(check(rl, "::ffff:192.0.2.7", t), 0);
    cr_assert_eq(burst(rl, "::ffff:198.51.100.9", t, 3), 3);
    cr_assert_gt(check(rl, "198.51.100.9", t), 0);
    /* not mapped: the NAT64 prefix is plain IPv6 */
    cr_assert_eq(check(rl, "64:ff9b::192.0.2.7", t), 0);

    struct ratelimit_stats st;
    ratelimit_get_stats(rl, &st);
    cr_assert_eq(st.slots_used, 3);
    ratelimit_free(rl);
}

Test(ratelimit, other_families_are_not_limited)
{
    struct ratelimit *rl = new_rl(1, 1, 64);
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    for (int i = 0; i < 10; i++)
        cr_assert_eq(ratelimit_check(rl, (const struct sockaddr *)&un, 1 * SEC), 0);
    struct ratelimit_stats st;
    ratelimit_get_stats(rl, &st);
    cr_assert_eq(st.allowed + st.refused + st.slots_used, 0);
    ratelimit_free(rl);
}

Test(ratelimit, set_changes_rate_and_keeps_state)
{
    struct ratelimit *rl = new_rl(1, 2, 64);
    uint64_t t = 1 * SEC;
    cr_assert_eq(burst(rl, "192.0.2.1", t, 3), 2);
    cr_assert_eq(burst(rl, "192.0.2.2", t, 1), 1);

    /* faster: 100/s, burst 2; the exhausted client waits 10 ms, not 1 s */
    ratelimit_set(rl, 100, 2);
    cr_assert_eq(check(rl, "192.0.2.1", t), 10);
    cr_assert_eq(check(rl, "192.0.2.1", t + 10 * MS), 0);
    /* state kept: 192.0.2.2 owed 1 s under the old rate; that debt is capped to a used-up
     * allowance under the new settings, which 10/s earns back in 20 ms */
    cr_assert_eq(burst(rl, "192.0.2.2", t + 10 * MS, 5), 0);
    cr_assert_eq(burst(rl, "192.0.2.2", t + 40 * MS, 5), 2);

    /* invalid values change nothing */
    ratelimit_set(rl, 0, 2);
    ratelimit_set(rl, -3, 2);
    ratelimit_set(rl, NAN, 2);
    ratelimit_set(rl, INFINITY, 2);
    ratelimit_set(rl, 1, 0);
    cr_assert_eq(burst(rl, "192.0.2.3", t, 5), 2);
    cr_assert_eq(check(rl, "192.0.2.3", t), 10);

    /* slower: 1/s, burst 1; a client fresh under the old rate gets exactly one */
    ratelimit_set(rl, 1, 1);
    cr_assert_eq(burst(rl, "192.0.2.4", t, 5), 1);
    cr_assert_eq(check(rl, "192.0.2.4", t + 500 * MS), 500);
    cr_assert_eq(check(rl, "192.0.2.4", t + 1 * SEC), 0);
    /* a bigger burst lets the limited client through again at once */
    ratelimit_set(rl, 1, 4);
    cr_assert_eq(burst(rl, "192.0.2.4", t + 1 * SEC, 5), 3);
    ratelimit_free(rl);
}

Test(ratelimit, long_run_synthetic_time)
{
    /* 10/s, burst 5, a request every ms for 100 s: 5 + 100 * 10 */
    struct ratelimit *rl = new_rl(10, 5, 64);
    int ok = 0;
    for (uint64_t t = 0; t <= 100 * SEC; t += 1 * MS) ok += check(rl, "192.0.2.10", t) == 0;
    cr_assert_eq(ok, 1005);

    /* 3/s (T not a whole number of ns), burst 2, irregular arrivals over 1000 s */
    ratelimit_set(rl, 3, 2);
    uint64_t t0 = 200 * SEC, t = t0, x = 99;
    ok = 0;
    while (t <= t0 + 1000 * SEC) {
        ok += check(rl, "2001:db8:42::1", t) == 0;
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        t += (x >> 33) % (5 * MS);
    }
    cr_assert(ok >= 3001 && ok <= 3002, "allowed %d, expected about 2 + 3000", ok);

    struct ratelimit_stats st;
    ratelimit_get_stats(rl, &st);
    cr_assert_eq(st.allowed, 1005 + (uint64_t)ok);
    ratelimit_free(rl);
}

Test(ratelimit, many_clients_each_get_their_rate)
{
    struct ratelimit *rl = new_rl(2, 1, 4096);
    int ok[100] = {0};
    char a[64];
    for (uint64_t t = 0; t < 10 * SEC; t += 50 * MS) {
        for (int c = 0; c < 100; c++) {
            snprintf(a, sizeof a, "10.1.%d.%d", c / 10, c % 10);
            ok[c] += check(rl, a, t) == 0;
        }
    }
    for (int c = 0; c < 100; c++) cr_assert_eq(ok[c], 20, "client %d got %d", c, ok[c]);
    struct ratelimit_stats st;
    ratelimit_get_stats(rl, &st);
    cr_assert_eq(st.evictions, 0);
    ratelimit_free(rl);
}

/* A flood of distinct addresses overflows the table; memory stays at its capacity, and the hot
 * client, whose TAT is far in the future, is not the entry evicted: it stays limited. */
Test(ratelimit, flood_keeps_memory_bounded_and_hot_client_limited)
{
    struct ratelimit *rl = new_rl(10, 10, 200); /* rounded up to 256 slots */
    uint64_t t = 1 * SEC, end = t + 10 * SEC;
    int hot_ok = 0, flood_ok = 0, flood_n = 0;
    unsigned n = 0;
    char a[64];
    for (; t < end; t += 1 * MS) {
        hot_ok += check(rl, "192.0.2.200", t) == 0;
        for (int i = 0; i < 20; i++, n++) {
            if (n % 2)
                snprintf(a, sizeof a, "%u.%u.%u.%u", 11 + (n >> 24) % 200, (n >> 16) & 255,
                         (n >> 8) & 255, n & 255);
            else snprintf(a, sizeof a, "2001:db8:%x:%x::1", (n >> 16) & 0xffff, n & 0xffff);
            flood_ok += check(rl, a, t) == 0;
            flood_n++;
        }
    }
    /* 10 at once, then one per 100 ms until 9.9 s; an eviction while its TAT was still low (in
     * the first ms) could add one or two */
    cr_assert(hot_ok >= 109 && hot_ok <= 111, "hot client allowed %d", hot_ok);
    cr_assert_eq(flood_ok, flood_n, "each new address gets its first request");

    struct ratelimit_stats st;
    ratelimit_get_stats(rl, &st);
    cr_assert_eq(st.slots_used, 256);
    cr_assert_gt(st.evictions, (uint64_t)flood_n / 2);
    cr_assert_eq(st.allowed, (uint64_t)(hot_ok + flood_ok));
    cr_assert_eq(st.refused, (uint64_t)(10000 - hot_ok));

    /* when the flood stops, its entries expire and are reused without eviction */
    uint64_t ev = st.evictions;
    cr_assert_eq(burst(rl, "203.0.113.77", end + 1 * SEC, 12), 10);
    ratelimit_get_stats(rl, &st);
    cr_assert_eq(st.evictions, ev);
    cr_assert_eq(st.slots_used, 256);
    ratelimit_free(rl);
}

Test(ratelimit, extreme_settings)
{
    /* below the minimum rate: one request per 10^6 s */
    struct ratelimit *rl = new_rl(1e-12, 1, 1);
    cr_assert_eq(check(rl, "192.0.2.1", 0), 0);
    cr_assert_eq(check(rl, "192.0.2.1", 0), 1000000000L);
    /* huge burst: tau saturates instead of overflowing */
    ratelimit_set(rl, 1e-12, 2147483647);
    cr_assert_eq(burst(rl, "192.0.2.2", UINT64_MAX - 5, 1000), 1000);
    /* above the maximum rate: 1 ns apart */
    ratelimit_set(rl, 1e12, 1);
    cr_assert_eq(check(rl, "192.0.2.3", 10), 0);
    cr_assert_eq(check(rl, "192.0.2.3", 10), 1);
    cr_assert_eq(check(rl, "192.0.2.3", 11), 0);
    ratelimit_free(rl);
}

Test(ratelimit, invalid_arguments)
{
    const struct {
        double rate;
        int burst;
        size_t capacity;
    } bad[] = {{0, 1, 8}, {-1, 1, 8}, {NAN, 1, 8}, {INFINITY, 1, 8},
               {1, 0, 8}, {1, -5, 8}, {1, 1, 0},   {1, 1, SIZE_MAX}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        cr_assert_null(ratelimit_new(bad[i].rate, bad[i].burst, bad[i].capacity), "case %zu", i);
        cr_assert_eq(errno, EINVAL, "case %zu", i);
    }
    ratelimit_free(NULL);
}

/* Processes forked after ratelimit_new() share one allowance per client: four processes
 * hammering the same client at the same instant get its burst through between them, once. */
Test(ratelimit, one_allowance_across_processes)
{
    struct ratelimit *rl = new_rl(1, 10, 64);
    pid_t kids[4];
    for (int k = 0; k < 4; k++) {
        kids[k] = fork();
        cr_assert_geq(kids[k], 0);
        if (kids[k] == 0) _exit(burst(rl, "192.0.2.9", 5 * SEC, 10));
    }
    int total = 0;
    for (int k = 0; k < 4; k++) {
        int st;
        cr_assert_eq(waitpid(kids[k], &st, 0), kids[k]);
        cr_assert(WIFEXITED(st));
        total += WEXITSTATUS(st);
    }
    cr_assert_eq(total, 10, "4 processes got %d requests through, the burst is 10", total);
    /* the parent sees the spent allowance, and the table slot the children took */
    cr_assert_gt(check(rl, "192.0.2.9", 5 * SEC), 0);
    struct ratelimit_stats st;
    ratelimit_get_stats(rl, &st);
    cr_assert_eq(st.slots_used, 1);
    ratelimit_free(rl);
}

/* A process killed at any instant, also while it holds a set's lock, leaves the limiter
 * usable: the next process to lock the set takes it over (robust mutex) instead of hanging. */
Test(ratelimit, process_killed_mid_check_leaves_no_lock_held, .timeout = 30)
{
    struct ratelimit *rl = new_rl(1e6, 1, 8); /* one set: every check takes the same lock */
    for (int round = 0; round < 20; round++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0)
            for (uint64_t t = SEC;; t += 1000) check(rl, "192.0.2.1", t);
        struct timespec d = {0, (round % 5 + 1) * 1000000L};
        nanosleep(&d, NULL);
        kill(pid, SIGKILL);
        cr_assert_eq(waitpid(pid, NULL, 0), pid);
        /* must return (the test's timeout catches a hang) */
        check(rl, "192.0.2.2", 1);
    }
    cr_assert_eq(check(rl, "198.51.100.1", UINT64_MAX / 2), 0);
    ratelimit_free(rl);
}

Test(ratelimit, client_key_groups_ipv6_by_64_and_maps_ipv4)
{
    struct sockaddr_storage a = addr("2001:db8:1:2:aaaa::1"), b = addr("2001:db8:1:2:bbbb::9");
    struct sockaddr_storage c = addr("2001:db8:1:3::1"), d = addr("192.0.2.5");
    struct sockaddr_storage e = addr("::ffff:192.0.2.5");
    uint64_t ka, kb, kc, kd, ke;
    cr_assert_eq(ratelimit_client_key((const struct sockaddr *)&a, &ka), 0);
    cr_assert_eq(ratelimit_client_key((const struct sockaddr *)&b, &kb), 0);
    cr_assert_eq(ratelimit_client_key((const struct sockaddr *)&c, &kc), 0);
    cr_assert_eq(ratelimit_client_key((const struct sockaddr *)&d, &kd), 0);
    cr_assert_eq(ratelimit_client_key((const struct sockaddr *)&e, &ke), 0);
    cr_assert_eq(ka, kb);
    cr_assert_neq(ka, kc);
    cr_assert_eq(kd, ke);
    cr_assert_neq(kd, ka);
}
