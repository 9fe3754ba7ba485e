/* ratelimit.h: per-client-IP request rate limiting for the gateway, in shared memory.
 *
 * Each client is allowed RATE requests per second on average and up to BURST requests at once,
 * by the generic cell rate algorithm (GCRA): the whole state of a client is one 64-bit
 * theoretical arrival time (TAT). A client is an IPv4 address (/32) or an IPv6 /64 prefix (a
 * host owns a whole /64, so keying by /128 would be trivially evaded); an IPv4-mapped IPv6
 * address (::ffff:a.b.c.d) is that IPv4 address.
 *
 * Clients live in a fixed-size table allocated once by ratelimit_new(): memory is bounded
 * whatever the number of clients, and a check allocates nothing and costs O(1). When the table
 * is full, the client closest to being forgotten anyway is evicted (see ratelimit.c), so a
 * flood of distinct addresses cannot flush out a busy client that is being limited.
 *
 * The table is shared: made by ratelimit_new() before the gateway processes fork, it holds one
 * allowance per client for all of them (each set of slots has a process-shared robust lock, held
 * for a few instructions; see ratelimit.c). The handle itself (settings, counters) is each
 * process's own copy. */
#ifndef ANTRE_GATEWAY_RATELIMIT_H
#define ANTRE_GATEWAY_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct ratelimit; /* opaque */

/* Accepted range of RATE (requests per second). Values outside it are clamped: at most one
 * request per emission interval of 1 ns, at least one per 10^6 s (about 11.6 days). */
#define RATELIMIT_RATE_MIN 1e-6
#define RATELIMIT_RATE_MAX 1e9

/* Create a limiter allowing RATE requests per second (> 0, finite) per client with bursts of
 * up to BURST requests (>= 1), remembering up to CAPACITY clients (>= 1; rounded up to a power
 * of two, and to at least 8). Memory used is about 24 bytes per slot, all mapped here, shared
 * (MAP_SHARED) with processes forked afterwards.
 * The hash key is drawn from getrandom(2), which may block once, early after boot, until the
 * kernel's pool is initialized: call at startup, not on the event loop.
 * Returns the limiter, to free with ratelimit_free(); or NULL with errno EINVAL (bad RATE,
 * BURST or CAPACITY) or the error of getrandom(2). Aborts if memory is exhausted. */
struct ratelimit *ratelimit_new(double rate, int burst, size_t capacity);

/* Free RL and unmap its table (in the calling process). RL may be NULL. */
void ratelimit_free(struct ratelimit *rl);

/* Change the rate and burst of RL (on a configuration reload), keeping what is known of every
 * client. Arguments are as for ratelimit_new(); if RATE is not > 0 and finite or BURST < 1, the
 * call changes nothing (validate the configuration before). A client that had used up its
 * allowance under the old settings starts under the new ones with at most a used-up allowance:
 * lowering the burst does not leave it refused for longer than the new settings would. */
void ratelimit_set(struct ratelimit *rl, double rate, int burst);

/* Account one request of the client at SA (borrowed, read only during the call; AF_INET or
 * AF_INET6, with the length of its family) at time NOW_NS, in nanoseconds of a monotonic
 * clock chosen by the caller (CLOCK_MONOTONIC in the gateway, cached once per loop iteration;
 * synthetic in tests). NOW_NS should not go backwards; if it does, no answer is worse than
 * the one below.
 * Returns 0 if the request is allowed (and counts it against the client), or > 0 if it is
 * refused: the number of milliseconds, rounded up, until the client's next request would be
 * allowed, never more than one emission interval (1000 / RATE ms); for Retry-After, round up
 * to seconds. A refused request costs the client nothing.
 * An address of another family (AF_UNIX...) is not limited: returns 0 and counts nothing. */
long ratelimit_check(struct ratelimit *rl, const struct sockaddr *sa, uint64_t now_ns);

/* Counters since ratelimit_new(), for /metrics: this process's, but slots_used (the table's). */
struct ratelimit_stats {
    uint64_t allowed;   /* requests allowed */
    uint64_t refused;   /* requests refused */
    uint64_t evictions; /* clients forgotten before their state had expired, to make room */
    size_t slots_used;  /* slots holding a client, expired or not (at most the capacity) */
};

/* Copy the counters of RL into *OUT. */
void ratelimit_get_stats(const struct ratelimit *rl, struct ratelimit_stats *out);

/* Set *KEY to the client key of SA: an IPv4 address (or IPv4-mapped IPv6 address) as
 * 0000:ffff:aabb:ccdd, an IPv6 address as its /64 prefix. Returns 0, or -1 for a family that is
 * not keyed (AF_UNIX...). Also the key of the per-client connection counts (peerlimit.h). */
int ratelimit_client_key(const struct sockaddr *sa, uint64_t *key);

/* SipHash-1-3 of the one 64-bit word M under the 128-bit key (K0, K1). */
uint64_t ratelimit_hash(uint64_t k0, uint64_t k1, uint64_t m);

#endif
