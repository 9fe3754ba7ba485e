/* job.c: the job contract (see job.h). One table says which fields each queue's entries have
 * and what their values may be; building, parsing and the dead-letter format all read it. */
#include "antre/job.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antre/keys.h"

enum value_kind { V_ID, V_KIND, V_CHANNEL };

struct field {
    const char *name;
    size_t off;  /* of the value's buffer in struct job */
    size_t size; /* that buffer's size */
    enum value_kind v;
};

#define FIELD(n, m, k)                                                                             \
    {                                                                                              \
        n, offsetof(struct job, m), sizeof(((struct job *)0)->m), k                                \
    }

static const struct field upload_fields[] = {
    FIELD(JOB_F_UPLOAD_ID, upload_id, V_ID),
    FIELD(JOB_F_REGISTRATION_ID, registration_id, V_ID),
    FIELD(JOB_F_KIND, kind, V_KIND),
};
static const struct field register_fields[] = {
    FIELD(JOB_F_REGISTRATION_ID, registration_id, V_ID),
};
static const struct field verify_fields[] = {
    FIELD(JOB_F_VERIFICATION_ID, verification_id, V_ID),
    FIELD(JOB_F_REGISTRATION_ID, registration_id, V_ID),
    FIELD(JOB_F_CHANNEL, channel, V_CHANNEL),
};

static const struct {
    const char *name;
    enum keys_intake stream;
    const struct field *fields;
    int nfields;
} queues[JOB__QUEUES] = {
    [JOB_UPLOAD] = {"upload", KEYS_STREAM_UPLOAD, upload_fields, 3},
    [JOB_REGISTER] = {"register", KEYS_STREAM_REGISTER, register_fields, 1},
    [JOB_VERIFY] = {"verify", KEYS_STREAM_VERIFY, verify_fields, 3},
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int valid_queue(enum job_queue q) { return (unsigned)q < JOB__QUEUES; }

const char *job_queue_name(enum job_queue q) { return valid_queue(q) ? queues[q].name : NULL; }

int job_queue_from_name(const char *name, size_t len, enum job_queue *q)
{
    for (int i = 0; i < JOB__QUEUES; i++)
        if (strlen(queues[i].name) == len && memcmp(queues[i].name, name, len) == 0) {
            *q = (enum job_queue)i;
            return 0;
        }
    return -1;
}

int job_stream_key(char *buf, enum job_queue q) { return keys_stream(buf, queues[q].stream); }

int job_dead_key(char *buf, enum job_queue q) { return keys_stream_dead(buf, queues[q].stream); }

int job_delayed_key(char *buf, enum job_queue q)
{
    return keys_queue_delayed(buf, queues[q].stream);
}

int job_rate_key(char *buf, enum job_queue q) { return keys_queue_rate(buf, queues[q].stream); }

/* Is V (LEN bytes) a good value for a field of kind K? */
static int value_ok(enum value_kind k, const char *v, size_t len)
{
    switch (k) {
    case V_ID:
        if (len != JOB_ID_LEN) return 0;
        for (size_t i = 0; i < len; i++)
            if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f'))) return 0;
        return 1;
    case V_KIND:
        return (len == 3 && memcmp(v, "ktp", 3) == 0) || (len == 6 && memcmp(v, "selfie", 6) == 0);
    case V_CHANNEL:
        return (len == 5 && memcmp(v, "email", 5) == 0) || (len == 3 && memcmp(v, "sms", 3) == 0);
    }
    return 0;
}

int job_fields(const struct job *j, const char **fv, int cap, char *err, size_t errlen)
{
    if (!valid_queue(j->queue)) return fail(err, errlen, "job: unknown queue %d", (int)j->queue);
    const struct field *f = queues[j->queue].fields;
    int n = queues[j->queue].nfields;
    if (cap < 2 * n) return fail(err, errlen, "job: room for %d items, %d needed", cap, 2 * n);
    for (int i = 0; i < n; i++) {
        const char *v = (const char *)j + f[i].off;
        size_t len = strnlen(v, f[i].size);
        if (len == f[i].size || !value_ok(f[i].v, v, len))
            return fail(err, errlen, "job: %s: bad %s", queues[j->queue].name, f[i].name);
        fv[2 * i] = f[i].name;
        fv[2 * i + 1] = v;
    }
    return 2 * n;
}

int job_argv(const struct job *j, char count[4], const char **out, char *err, size_t errlen)
{
    int n = job_fields(j, out + 1, JOB_ARGV_MAX - 1, err, errlen);
    if (n < 0) return -1;
    _Static_assert(2 * JOB_FIELDS_MAX <= 9, "the count is one digit");
    count[0] = (char)('0' + n);
    count[1] = 0;
    out[0] = count;
    return n + 1;
}

/* Read the job fields of queue Q from FV into J; a field not of Q is refused unless EXTRA
 * (a dead letter's own) says it is taken care of: EXTRA(name, len) returns 1 for those. */
static int parse_fields(enum job_queue q, const char *const *fv, const size_t *lens, size_t n,
                        struct job *j, int (*extra)(const char *, size_t), char *err, size_t errlen)
{
    if (!valid_queue(q)) return fail(err, errlen, "job: unknown queue %d", (int)q);
    if (n % 2) return fail(err, errlen, "job: %s: odd number of items (%zu)", queues[q].name, n);
    memset(j, 0, sizeof *j);
    j->queue = q;
    const struct field *f = queues[q].fields;
    int nf = queues[q].nfields;
    unsigned seen = 0;
    for (size_t i = 0; i < n; i += 2) {
        const char *name = fv[i], *v = fv[i + 1];
        size_t nl = lens[i], vl = lens[i + 1];
        int k = 0;
        while (k < nf && !(strlen(f[k].name) == nl && memcmp(f[k].name, name, nl) == 0)) k++;
        if (k == nf) {
            if (extra && extra(name, nl)) continue;
            return fail(err, errlen, "job: %s: unknown field %.*s", queues[q].name,
                        (int)(nl > 40 ? 40 : nl), name);
        }
        if (seen & (1u << k))
            return fail(err, errlen, "job: %s: %s given twice", queues[q].name, f[k].name);
        seen |= 1u << k;
        if (vl > JOB_VALUE_MAX || vl >= f[k].size || !value_ok(f[k].v, v, vl))
            return fail(err, errlen, "job: %s: bad %s", queues[q].name, f[k].name);
        memcpy((char *)j + f[k].off, v, vl);
    }
    for (int k = 0; k < nf; k++)
        if (!(seen & (1u << k)))
            return fail(err, errlen, "job: %s: missing %s", queues[q].name, f[k].name);
    return 0;
}

int job_parse(enum job_queue q, const char *const *fv, const size_t *lens, size_t n, struct job *j,
              char *err, size_t errlen)
{
    return parse_fields(q, fv, lens, n, j, NULL, err, errlen);
}

int job_idempotency_id(const struct job *j, char *buf, size_t len)
{
    int n;
    switch (j->queue) {
    case JOB_UPLOAD: n = snprintf(buf, len, "%s", j->upload_id); break;
    case JOB_REGISTER: n = snprintf(buf, len, "%s", j->registration_id); break;
    case JOB_VERIFY: n = snprintf(buf, len, "%s", j->verification_id); break;
    default: return -1;
    }
    return n < 0 || (size_t)n >= len ? -1 : n;
}

/* ---- dead letters ------------------------------------------------------------------------- */

static const char *const dead_names[4] = {JOB_F_ORIGINAL_ID, JOB_F_ATTEMPTS, JOB_F_LAST_ERROR,
                                          JOB_F_FAILED_AT};

static int dead_name(const char *name, size_t len)
{
    for (int i = 0; i < 4; i++)
        if (strlen(dead_names[i]) == len && memcmp(dead_names[i], name, len) == 0) return 1;
    return 0;
}

/* A stream entry id: "<ms>-<seq>", both decimal. */
static int stream_id_ok(const char *v, size_t len)
{
    size_t dash = 0, i;
    for (i = 0; i < len; i++) {
        if (v[i] == '-' && !dash && i > 0) dash = i;
        else if (v[i] < '0' || v[i] > '9') return 0;
    }
    return dash && dash + 1 < len && len <= JOB_STREAM_ID_MAX;
}

int job_dead_fields(const struct job_dead *d, char nums[2][24], const char **fv, int cap, char *err,
                    size_t errlen)
{
    size_t ol = strnlen(d->original_id, sizeof d->original_id);
    if (!stream_id_ok(d->original_id, ol))
        return fail(err, errlen, "job: dead letter: bad %s", JOB_F_ORIGINAL_ID);
    if (cap < 8) return fail(err, errlen, "job: room for %d items, 8 or more needed", cap);
    snprintf(nums[0], 24, "%" PRIu32, d->attempts);
    snprintf(nums[1], 24, "%" PRId64, d->failed_at_ms);
    const char *vals[4] = {d->original_id, nums[0], d->last_error, nums[1]};
    for (int i = 0; i < 4; i++) {
        fv[2 * i] = dead_names[i];
        fv[2 * i + 1] = vals[i];
    }
    int n = job_fields(&d->job, fv + 8, cap - 8, err, errlen);
    return n < 0 ? -1 : 8 + n;
}

/* A decimal number of at most 18 digits into *OUT. 0, or -1. */
static int parse_num(const char *v, size_t len, int64_t *out)
{
    if (len == 0 || len > 18) return -1;
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        n = n * 10 + (v[i] - '0');
    }
    *out = n;
    return 0;
}

int job_dead_parse(enum job_queue q, const char *const *fv, const size_t *lens, size_t n,
                   struct job_dead *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    if (parse_fields(q, fv, lens, n, &d->job, dead_name, err, errlen) < 0) return -1;
    unsigned seen = 0;
    for (size_t i = 0; i < n; i += 2) {
        int k = 0;
        while (k < 4 &&
               !(strlen(dead_names[k]) == lens[i] && memcmp(dead_names[k], fv[i], lens[i]) == 0))
            k++;
        if (k == 4) continue;
        if (seen & (1u << k))
            return fail(err, errlen, "job: dead letter: %s given twice", dead_names[k]);
        seen |= 1u << k;
        const char *v = fv[i + 1];
        size_t vl = lens[i + 1];
        int64_t num;
        int ok = 1;
        if (k == 0) {
            ok = stream_id_ok(v, vl);
            if (ok) memcpy(d->original_id, v, vl);
        } else if (k == 2) {
            ok = vl <= JOB_ERROR_MAX;
            if (ok) memcpy(d->last_error, v, vl);
        } else {
            ok = parse_num(v, vl, &num) == 0 && (k != 1 || num <= UINT32_MAX);
            if (ok && k == 1) d->attempts = (uint32_t)num;
            if (ok && k == 3) d->failed_at_ms = num;
        }
        if (!ok) return fail(err, errlen, "job: dead letter: bad %s", dead_names[k]);
    }
    for (int k = 0; k < 4; k++)
        if (!(seen & (1u << k)))
            return fail(err, errlen, "job: dead letter: missing %s", dead_names[k]);
    return 0;
}
