/* metrics.h: the gateway's counters, one `struct metrics_slot` per process in shared memory
 * (common/slots.c), rendered as Prometheus text (common/prom.c).
 *
 * Each gateway process writes only its own slot (no locks on the hot path); the admin listener
 * of any process sums every slot, so /metrics shows the whole gateway whichever process answers.
 * The slots are mapped before the processes fork. */
#ifndef ANTRE_METRICS_H
#define ANTRE_METRICS_H

#include <stdint.h>

struct evbuffer;
struct router;

enum metrics_refusal {
    REFUSE_MAX_CONNECTIONS,
    REFUSE_PER_IP_CONNECTIONS,
    REFUSE_RATE_LIMITED,
    REFUSE_URI_TOO_LONG,
    REFUSE_HEADERS_TOO_LARGE,
    REFUSE_BODY_TOO_LARGE,
    REFUSE_HEADER_TIMEOUT,
    REFUSE_BODY_TIMEOUT,
    REFUSE_BODY_MIN_RATE,
    REFUSE_BAD_REQUEST,
    REFUSE_SMUGGLING,
    REFUSE_REDIS_BUDGET,
    REFUSE_REDIS_DOWN,
    REFUSE_DRAINING,
    REFUSE_ACCEPT_BACKOFF,
    REFUSE_UPLOAD_BUDGET,
    REFUSE_PROXY_HEADER, /* proxy_protocol: a connection without a valid PROXY header, closed */
    REFUSE__COUNT
};

#define METRICS_ROUTES 64 /* route ids 0..63; 0 = no route matched */
#define METRICS_STATUSES 32
#define METRICS_BUCKETS 16
#define METRICS_ROOMS 32

#define METRICS_TOKEN_RESULTS 8 /* applicant token results: 0 ok, then -rc of each refusal */

/* One waiting room, as one gateway process sees it. Counters are this process's; gauges come
 * from its last controller answer (the same in every process, so they are not summed). */
struct metrics_room {
    char name[33];
    uint64_t joins, polls, stale, redeems, expired410, left;
    uint64_t tokens[METRICS_TOKEN_RESULTS]; /* applicant tokens by applicant_verify()'s result */
    uint64_t token_sigs_verified, token_sigs_reused; /* by libjwt, or a kept verdict */
    int64_t waiting, admitted, active, pending, redeemed, expired, admit_rate_milli;
};

struct metrics_slot {
    int64_t conns_open;
    uint64_t conns_total;
    uint64_t requests[METRICS_ROUTES][METRICS_STATUSES];
    uint64_t latency_bucket[METRICS_BUCKETS]; /* cumulative counts are computed when rendered */
    uint64_t latency_count;
    uint64_t latency_sum_us;
    uint64_t refusals[REFUSE__COUNT];
    int64_t redis_connected;
    int64_t redis_pending;
    uint64_t redis_timeouts;
    uint64_t redis_reconnects;
    uint64_t reloads_ok, reloads_failed;
    /* everything above is 64-bit words, summed over the slots when rendered */
    int64_t pid;
    struct metrics_room rooms[METRICS_ROOMS];
};

/* Map NSLOTS zeroed slots shared with children forked later. 0 ok, -1 (mmap failed). */
int metrics_init(int nslots);

/* This process's slot (I in 0..nslots-1); its open-connection gauge is reset. */
struct metrics_slot *metrics_attach(int i);

/* Count one answered request. */
void metrics_request(struct metrics_slot *s, int route_id, int status, uint64_t usec);

static inline void metrics_refusal(struct metrics_slot *s, enum metrics_refusal why)
{
    s->refusals[why]++;
}

/* Append the Prometheus text of all slots to OUT. Route labels come from the two routers. */
void metrics_render(struct evbuffer *out, const struct router *pub, const struct router *admin);

#endif
