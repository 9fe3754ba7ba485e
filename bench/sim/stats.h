/* stats.h: what one antre-bench run measured. The engine (applicant.c, main.c) fills it while
 * the run goes; scrape.c adds what the deployment says about itself; report*.c read it. Plain
 * data, owned by main.c, no pointers into other modules except the arrays noted. */
#ifndef ANTRE_BENCH_STATS_H
#define ANTRE_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "hist.h"

/* The endpoints an applicant calls, in the order of the flow. */
enum endpoint {
    EP_PAGE,       /* GET /rooms/{room} */
    EP_JOIN,       /* POST /v1/rooms/{room}/join */
    EP_STATUS,     /* GET /v1/rooms/{room}/status (the poll) */
    EP_REDEEM,     /* POST /v1/rooms/{room}/redeem */
    EP_REGISTER,   /* POST /v1/registrations */
    EP_UPLOAD,     /* PUT /v1/registrations/{id}/documents/{kind} */
    EP_TUS_CREATE, /* POST /v1/uploads */
    EP_TUS_PATCH,  /* PATCH /v1/uploads/{id} */
    EP_VERIFY,     /* POST /v1/registrations/{id}/verifications */
    EP_CONFIRM,    /* POST /v1/verifications/{id}/confirm */
    EP_CHECKLIST,  /* GET /v1/registrations/{id} */
    EP_LEAVE,      /* POST /v1/rooms/{room}/leave (the session ends) */
    EP_COUNT
};

/* The name of endpoint E as reports print it ("join", "status", ...). */
const char *stats_endpoint_name(enum endpoint e);

#define STATS_STATUS_MAX 600

struct endpoint_stats {
    uint64_t requests;                 /* answered or failed */
    uint64_t status[STATS_STATUS_MAX]; /* answers by HTTP status */
    uint64_t transport_errors;         /* connect/reset/timeout: no answer */
    uint64_t unexpected;               /* errors other than 429/503 with Retry-After and the
                                          4xx the applicant provoked on purpose */
    struct hist latency_us;
};

/* One second of the run (index = second from the start). */
struct second_stats {
    uint32_t arrivals;  /* applicants that arrived in this second */
    uint32_t waiting;   /* applicants in the waiting room at its end */
    uint32_t admitted;  /* applicants admitted in this second */
    uint32_t active;    /* admitted applicants still walking the flow at its end */
    uint32_t completed; /* applicants whose checklist became final in this second */
    uint32_t abandoned;
    uint32_t uploads;     /* uploads answered 202 in this second */
    uint32_t requests;    /* requests answered in this second */
    uint32_t p99_us;      /* p99 latency of those requests */
    int64_t queue_len[3]; /* upload, verify, register stream backlog (-1: not sampled) */
};

enum queue_kind { QUEUE_UPLOAD, QUEUE_VERIFY, QUEUE_REGISTER, QUEUE_COUNT };

struct queue_stats {
    uint64_t accepted;  /* jobs the bench was told 202 for */
    uint64_t processed; /* jobs the deployment says it finished (Redis / the worker's metrics) */
    uint64_t lost;      /* accepted - processed - still pending at the end (must be 0) */
};

/* A counter the deployment reports (/metrics) beside what the bench saw. */
struct metric_check {
    char name[128]; /* e.g. "antre_http_requests_total{route=\"join\"}" (summed as noted) */
    double before, after;
    double bench; /* what the bench counted over the same run */
};

#define STATS_MAX_METRIC_CHECKS 64

struct run_stats {
    double wall_s;       /* from the first arrival to the end of the run */
    double self_cpu_s;   /* the bench's own user + system CPU */
    int self_bottleneck; /* 1 when the bench used over 90 % of a core for long */

    struct endpoint_stats ep[EP_COUNT];

    uint64_t arrived, admitted, completed, abandoned, failed; /* applicants */
    struct hist queue_ms;            /* time in the waiting room of admitted applicants */
    double admit_per_min_configured; /* the room's admit_rate_per_min (0: unknown) */
    double max_active;               /* the room's max_active (--max-active; 0: unknown) */
    /* the gateway's antre_room_active and antre_room_pending after the run (-1: not scraped) */
    double room_active, room_pending;
    double room_places; /* antre_room_admitted's rise over the run: places admitted (-1: unknown) */

    /* For fairness: arrival and admission order of each admitted applicant (malloc'd arrays
     * of n_order entries, owned by the stats; freed by stats_free). */
    uint64_t *arrival_order, *admission_order;
    size_t n_order, cap_order;

    struct queue_stats queues[QUEUE_COUNT];
    uint64_t codes_sent_email, codes_sent_sms, codes_read_back, codes_confirmed;

    struct second_stats *seconds; /* malloc'd, nseconds entries (grown by stats_second) */
    size_t nseconds, cap_seconds;

    struct metric_check checks[STATS_MAX_METRIC_CHECKS];
    size_t nchecks;

    /* The current second's latencies, for seconds[].p99_us (stats.c's own; freed by
     * stats_free). */
    struct hist *sec_latency;
    size_t sec_latency_at;
};

void stats_init(struct run_stats *s);
void stats_free(struct run_stats *s);
/* The record of second SEC (grown and zeroed as needed; queue_len set to -1). */
struct second_stats *stats_second(struct run_stats *s, size_t sec);
/* Record one answer of endpoint E: STATUS (0 for a transport error), latency in microseconds,
 * whether it was UNEXPECTED, at second SEC of the run. Counts seconds[SEC].requests, its
 * p99_us, and seconds[SEC].uploads for an EP_UPLOAD answered 202 (a tus upload's completion,
 * its last PATCH's 204, is for the caller to count there). */
void stats_answer(struct run_stats *s, enum endpoint e, int status, uint64_t latency_us,
                  int unexpected, size_t sec);
/* Record that the applicant that arrived ARRIVAL_SEQ-th was admitted ADMISSION_SEQ-th (the
 * orders only: s->admitted and seconds[].admitted are the caller's to count). */
void stats_admitted(struct run_stats *s, uint64_t arrival_seq, uint64_t admission_seq);

#endif
