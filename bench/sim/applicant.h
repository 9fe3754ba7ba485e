/* applicant.h: antre-bench's virtual applicants. Each is a small state machine on the bench's
 * event loop that walks the real API as a person does (docs/api.md): open the waiting page or
 * join (some hammer join), poll the ticket honouring poll_after_s / Retry-After with jitter,
 * register (some with invalid data first), upload a KTP photo and a selfie (one PUT or tus; some
 * too large, corrupt or not a photo), ask for a verification code, read it back from the sinks,
 * confirm it (some type a wrong one first), then poll the checklist until it is final. Some
 * abandon while waiting; some retry refused requests. Everything lands in struct run_stats. */
#ifndef ANTRE_BENCH_APPLICANT_H
#define ANTRE_BENCH_APPLICANT_H

#include <stddef.h>
#include <stdint.h>

#include "profile.h"
#include "stats.h"

struct event_base;
struct client;
struct sink;

#define APPLICANT_PHOTO_SIZES 12

/* The photos applicants send, made once at start (real JPEGs of plausible size). */
struct applicant_photos {
    unsigned char *jpeg[APPLICANT_PHOTO_SIZES]; /* sizes spread log-uniformly over the profile's */
    size_t jpeg_len[APPLICANT_PHOTO_SIZES];
    unsigned char *corrupt; /* a JPEG cut short */
    size_t corrupt_len;
    unsigned char *oversize; /* over max_bytes (only its head matters: refused at the head) */
    size_t oversize_len;
};

/* The shared state of a run: the loop, the client, the sinks, the profile, what is counted. */
struct bench {
    struct event_base *base;
    struct client *cl;
    struct sink *sink; /* NULL: codes cannot be read back (applicants stop after asking) */
    const struct profile *p;
    struct run_stats *s;
    struct applicant_photos photos;
    uint64_t t0_us;            /* the run's start (CLOCK_MONOTONIC) */
    uint64_t nonce;            /* makes this run's NIKs, phones and emails its own */
    uint64_t rng;              /* xorshift state */
    uint64_t max_upload_bytes; /* the deployment's [upload] max_bytes (oversize goes past it) */
    uint64_t admission_seq;
    /* the room's HS256 applicant key (--applicant-key): joins then carry a signed applicant
     * token, sub = the applicant's NIK; NULL: anonymous joins */
    const unsigned char *applicant_key;
    size_t applicant_key_len;
    uint64_t live, waiting, active; /* applicants now: all, in the waiting room, admitted */
    uint64_t finals[QUEUE_COUNT];   /* jobs seen finished in checklists (processed, fallback) */
};

/* Make the photos for profile P (sizes from photo_kb_min..max) and MAX_BYTES. 0, or -1 with ERR. */
int applicant_photos_make(struct applicant_photos *ph, const struct profile *p, uint64_t max_bytes,
                          char *err, size_t errlen);
void applicant_photos_free(struct applicant_photos *ph);

/* Monotonic microseconds. */
uint64_t applicant_now_us(void);
/* A uniform double in [0, 1) from B's generator. */
double applicant_rand(struct bench *b);

/* A new applicant, the SEQ-th to arrive (0-based), starts walking now. */
void applicant_start(struct bench *b, uint64_t seq);

#endif
