/* profile.h: an arrival profile of antre-bench (conf/bench/NAME.ini): when virtual applicants
 * arrive and how they behave. One INI file per profile, read with inih; every key is optional
 * with the default named in conf/bench/README.md, every error is reported as file:line: reason.
 *
 *   [profile]  name, description (what it models and the real figures it was scaled from),
 *              duration_s, room (the gateway room to join), max_applicants (0 = no cap)
 *   [arrivals] points = "t_s:per_s, t_s:per_s, ..." (a piecewise-linear arrival rate, applicants
 *              per second, between increasing times; 0 before the first and after the last)
 *   [behaviour] the probabilities (0..1) and sizes of what an applicant does (fields below)
 */
#ifndef ANTRE_BENCH_PROFILE_H
#define ANTRE_BENCH_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#define PROFILE_MAX_POINTS 64
#define PROFILE_NAME_MAX 64
#define PROFILE_TEXT_MAX 1024

struct profile_point {
    double t_s;   /* seconds from the start */
    double per_s; /* arrivals per second at t_s */
};

struct profile {
    char name[PROFILE_NAME_MAX];
    char description[PROFILE_TEXT_MAX];
    char room[PROFILE_NAME_MAX]; /* default "gelombang" */
    double duration_s;           /* arrivals stop after it; the run then lets applicants finish */
    uint64_t max_applicants;     /* 0: no cap */
    size_t npoints;
    struct profile_point points[PROFILE_MAX_POINTS];

    /* behaviour */
    double p_page;         /* opens the waiting page (GET /rooms/{room}) before joining */
    double p_hammer;       /* hammers join at the opening: several joins before polling */
    int hammer_joins;      /* joins a hammering applicant sends (>= 2) */
    double p_abandon;      /* leaves while waiting ... */
    double abandon_mean_s; /* ... after an exponential time with this mean */
    double p_leave;        /* ends its session with leave once done (final or given up) */
    double poll_jitter;    /* each wait is poll_after_s (or Retry-After) x (1 +- jitter) */
    double p_retry;        /* retries a refused request (5xx, 429, transport error) */
    int max_retries;       /* per request */
    double p_invalid;      /* sends an invalid registration first (fixes it after the 422) */
    double p_tus;          /* uploads with tus (else one PUT) */
    double p_oversize;     /* a photo over the upload limit (413) */
    double p_corrupt;      /* a photo whose bytes are damaged (rejected by the worker) */
    double p_wrong_format; /* a file that is not a photo we take (415) */
    double photo_kb_min;   /* photo sizes drawn log-uniformly in [min, max] KB */
    double photo_kb_max;
    double p_reupload;          /* uploads a photo again (a second attempt) */
    double p_verify_email;      /* asks for an email code (else SMS), reads it back, confirms */
    double p_wrong_code;        /* types a wrong code first */
    double checklist_poll_s;    /* how often the checklist is polled until final */
    double checklist_timeout_s; /* gives up waiting for a final checklist after this */
};

/* Fill P with every default. */
void profile_defaults(struct profile *p);

/* Read the INI file PATH into P (defaults first). 0, or -1 with "file:line: reason" in ERR. */
int profile_load(const char *path, struct profile *p, char *err, size_t errlen);

/* Shrink (or grow) P to a machine: every arrival rate and max_applicants times SCALE (> 0). */
void profile_scale(struct profile *p, double scale);

/* Override the duration (arrival points after it are cut, the rate at it interpolated). */
void profile_set_duration(struct profile *p, double duration_s);

/* The arrival rate (per second) at T_S seconds from the start. */
double profile_rate_at(const struct profile *p, double t_s);

/* Expected arrivals over the whole profile (the integral of the rate, capped by max_applicants). */
double profile_expected_arrivals(const struct profile *p);

#endif
