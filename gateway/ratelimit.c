/* ratelimit.c: per-client-IP GCRA rate limiter in a fixed-size, set-associative table shared
 * by every gateway process.
 *
 * GCRA in one paragraph: requests are spaced by the emission interval T = 1/rate; a burst of
 * BURST requests is tolerated as tau = T * (BURST - 1) of lead. Each client keeps its
 * theoretical arrival time TAT, the time at which it would have paid off all its past
 * requests. A request at NOW is allowed if TAT - tau <= NOW, and then TAT = max(TAT, NOW) + T;
 * otherwise it is refused, changes nothing, and may be retried at TAT - tau. A TAT <= NOW
 * says no more than "never seen": such an entry can be forgotten without changing any answer.
 * Times are integer nanoseconds, so long runs accumulate no rounding error.
 *
 * The table is an array of 16-byte slots {key, TAT} cut into sets of 8 slots, each set with its
 * lock on cache lines of its own. A client's set is chosen by SipHash-1-3 of its key under a random 128-bit key, so
 * an attacker choosing source addresses cannot aim them all at one set. A check scans only its
 * set: O(1), no allocation.
 *
 * Sharing across processes: the table is one MAP_SHARED mapping made before the processes fork,
 * so a client gets one allowance whichever process its connections land on. Each set carries a
 * process-shared, robust mutex, held only while the set is scanned and one TAT updated (a few
 * dozen instructions, never across a syscall). Why a lock rather than a CAS on the TAT: the key
 * and the TAT of a slot change together when a slot is reused, and a 128-bit CAS is not portable
 * across processes; a lock per set of 8 slots is almost never contended. Why robust: a process
 * that dies holding it (killed in those few instructions) hands it to the next locker with
 * EOWNERDEAD; the set is then at worst one TAT stale, which the clamp below bounds. */
#include "ratelimit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#define SET_SLOTS 8                 /* slots per set: the probe window */
#define TAU_MAX ((uint64_t)1 << 62) /* bound on tau, so that sums stay far from overflow */
#define NS_PER_MS 1000000u

/* An empty slot has tat == 0: a stored TAT is always >= T >= 1 ns. */
struct slot {
    uint64_t key;
    uint64_t tat;
};

/* One set: its lock and its slots, alone on their cache lines. */
struct set {
    _Alignas(64) pthread_mutex_t lock;
    struct slot slots[SET_SLOTS];
};

/* The shared mapping: how many slots ever held a client, then the sets. */
struct shared {
    _Alignas(64) _Atomic uint64_t slots_used;
    struct set sets[];
};

/* The handle is private to each process (forked with it): the hash key and the mapping are the
 * same in every process; the settings follow each process's configuration, and the counters
 * (but slots_used) are this process's. */
struct ratelimit {
    struct shared *sh;
    size_t map_bytes;
    size_t set_mask; /* number of sets - 1 */
    uint64_t k0, k1; /* hash key */
    uint64_t t_ns;   /* emission interval T */
    uint64_t tau_ns; /* burst tolerance tau */
    struct ratelimit_stats stats;
};

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    uint64_t s = a + b;
    return s < a ? UINT64_MAX : s;
}

/* Turn RATE and BURST into T and tau, in ns. Returns 0, or -1 if they are out of range. */
static int intervals(double rate, int burst, uint64_t *t_ns, uint64_t *tau_ns)
{
    if (!(rate > 0) || !isfinite(rate) || burst < 1) return -1;
    if (rate < RATELIMIT_RATE_MIN) rate = RATELIMIT_RATE_MIN;
    if (rate > RATELIMIT_RATE_MAX) rate = RATELIMIT_RATE_MAX;
    uint64_t t = (uint64_t)(1e9 / rate + 0.5); /* <= 1e15, about 2^50 */
    if (t < 1) t = 1;
    uint64_t n = (uint64_t)burst - 1;
    *t_ns = t;
    *tau_ns = n > TAU_MAX / t ? TAU_MAX : n * t;
    return 0;
}

/* --- Keys ------------------------------------------------------------------------------------ */

/* Why IPv4 keys can share the 64-bit space of IPv6 /64 prefixes: IPv4 address a.b.c.d is stored
 * as 0000:ffff:aabb:ccdd, which read as an IPv6 /64 prefix lies in ::/8, reserved by RFC 4291
 * and never routed: no client can connect from there. (The prefix of ::1 is 0, not in this
 * range either.) So a slot needs no family tag and stays 16 bytes. */
#define V4_KEY_TAG ((uint64_t)0xffff << 32)

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int ratelimit_client_key(const struct sockaddr *sa, uint64_t *key)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        *key = V4_KEY_TAG | ntohl(in->sin_addr.s_addr);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        const uint8_t *b = in6->sin6_addr.s6_addr;
        uint64_t k = 0;
        if (memcmp(b, v4mapped_prefix, sizeof v4mapped_prefix) == 0) {
            for (int i = 12; i < 16; i++) k = k << 8 | b[i];
            *key = V4_KEY_TAG | k;
        } else {
            for (int i = 0; i < 8; i++) k = k << 8 | b[i]; /* the /64 prefix */
            *key = k;
        }
        return 0;
    }
    return -1;
}

/* --- SipHash-1-3 of one 64-bit word -------------------------------------------------------- */

static uint64_t rotl(uint64_t x, int b) { return x << b | x >> (64 - b); }

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1, v1 = rotl(v1, 13), v1 ^= v0, v0 = rotl(v0, 32);                                  \
        v2 += v3, v3 = rotl(v3, 16), v3 ^= v2;                                                     \
        v0 += v3, v3 = rotl(v3, 21), v3 ^= v0;                                                     \
        v2 += v1, v1 = rotl(v1, 17), v1 ^= v2, v2 = rotl(v2, 32);                                  \
    } while (0)

/* SipHash-1-3 (one compression round, three finalization rounds): the hash Python uses for str
 * and bytes, good enough for a hash table facing adversarial input, and cheap for one word. */
uint64_t ratelimit_hash(uint64_t k0, uint64_t k1, uint64_t m)
{
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    uint64_t last = (uint64_t)8 << 56; /* message length, no tail bytes */

    v3 ^= m;
    SIPROUND;
    v0 ^= m;
    v3 ^= last;
    SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* --- Public functions ----------------------------------------------------------------------- */

static int random_bytes(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

struct ratelimit *ratelimit_new(double rate, int burst, size_t capacity)
{
    uint64_t t_ns, tau_ns, key[2];
    if (intervals(rate, burst, &t_ns, &tau_ns) < 0 || capacity < 1 ||
        capacity > SIZE_MAX / 4 / sizeof(struct set)) {
        errno = EINVAL;
        return NULL;
    }
    size_t n = SET_SLOTS;
    while (n < capacity) n <<= 1;
    if (random_bytes(key, sizeof key) < 0) return NULL;

    size_t nsets = n / SET_SLOTS;
    size_t bytes = sizeof(struct shared) + nsets * sizeof(struct set);
    /* MAP_ANONYMOUS memory is zeroed: every slot starts empty. */
    struct shared *sh =
        mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) return NULL;
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    for (size_t i = 0; i < nsets; i++) pthread_mutex_init(&sh->sets[i].lock, &ma);
    pthread_mutexattr_destroy(&ma);

    struct ratelimit *rl = calloc(1, sizeof *rl);
    if (rl == NULL) abort();
    rl->sh = sh;
    rl->map_bytes = bytes;
    rl->set_mask = nsets - 1;
    rl->k0 = key[0];
    rl->k1 = key[1];
    rl->t_ns = t_ns;
    rl->tau_ns = tau_ns;
    return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (rl == NULL) return;
    munmap(rl->sh, rl->map_bytes);
    free(rl);
}

void ratelimit_set(struct ratelimit *rl, double rate, int burst)
{
    uint64_t t_ns, tau_ns;
    if (intervals(rate, burst, &t_ns, &tau_ns) < 0) return;
    rl->t_ns = t_ns;
    rl->tau_ns = tau_ns;
}

static long check_set(struct ratelimit *rl, struct slot *set, uint64_t key, uint64_t now_ns);

long ratelimit_check(struct ratelimit *rl, const struct sockaddr *sa, uint64_t now_ns)
{
    uint64_t key;
    if (ratelimit_client_key(sa, &key) < 0) return 0;

    uint64_t h = ratelimit_hash(rl->k0, rl->k1, key);
    struct set *st = &rl->sh->sets[h & rl->set_mask];
    int lrc = pthread_mutex_lock(&st->lock);
    if (lrc == EOWNERDEAD) pthread_mutex_consistent(&st->lock);
    else if (lrc != 0) return 0; /* cannot happen with a consistent robust mutex: fail open */
    long ms = check_set(rl, st->slots, key, now_ns);
    pthread_mutex_unlock(&st->lock);
    return ms;
}

/* The body of ratelimit_check for client KEY in SET, under the set's lock. */
static long check_set(struct ratelimit *rl, struct slot *set, uint64_t key, uint64_t now_ns)
{
    /* One pass over the set finds the client, else the first slot that can be reused (empty, or
     * expired: TAT <= now), else the live entry with the smallest TAT. Slots never become empty
     * again once used, so the client cannot sit beyond the first empty slot: the scan stops
     * there. */
    struct slot *hit = NULL, *reuse = NULL, *victim = &set[0];
    for (int i = 0; i < SET_SLOTS; i++) {
        struct slot *s = &set[i];
        if (s->tat == 0) {
            if (reuse == NULL) reuse = s;
            break;
        }
        if (s->key == key) {
            hit = s;
            break;
        }
        if (s->tat <= now_ns) {
            if (reuse == NULL) reuse = s;
        } else if (s->tat < victim->tat) {
            victim = s;
        }
    }

    if (hit == NULL) {
        /* Why evict the smallest TAT: it is the entry closest to expiring by itself, so
         * forgetting it loses the least. A client being limited has a TAT near now + tau, while
         * each address of a flood of new ones sits at about now + T: with BURST >= 2 the busy
         * client is never the victim while it keeps hitting its limit. */
        if (reuse == NULL) {
            reuse = victim;
            rl->stats.evictions++;
        } else if (reuse->tat == 0) {
            atomic_fetch_add_explicit(&rl->sh->slots_used, 1, memory_order_relaxed);
        }
        reuse->key = key;
        reuse->tat = sat_add(now_ns, rl->t_ns); /* a new client is always allowed */
        rl->stats.allowed++;
        return 0;
    }

    /* Why clamp: under fixed settings an allowed request leaves TAT <= now + tau + T, so this is
     * a no-op; after ratelimit_set() lowered the rate or burst, or if now went backwards, it
     * caps the client's debt at one full allowance under the current settings. */
    uint64_t tat = hit->tat;
    uint64_t horizon = sat_add(now_ns, rl->tau_ns); /* allowed iff TAT <= now + tau */
    uint64_t cap = sat_add(horizon, rl->t_ns);
    if (tat > cap) tat = cap;

    if (tat > horizon) {
        hit->tat = tat;
        rl->stats.refused++;
        uint64_t ms = (tat - horizon + NS_PER_MS - 1) / NS_PER_MS; /* >= 1 */
        return ms > (uint64_t)LONG_MAX ? LONG_MAX : (long)ms;
    }
    hit->tat = sat_add(tat > now_ns ? tat : now_ns, rl->t_ns);
    rl->stats.allowed++;
    return 0;
}

void ratelimit_get_stats(const struct ratelimit *rl, struct ratelimit_stats *out)
{
    *out = rl->stats;
    out->slots_used = (size_t)atomic_load_explicit(&rl->sh->slots_used, memory_order_relaxed);
}
