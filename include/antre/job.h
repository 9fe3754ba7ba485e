/* job.h: the job contract between the gateway (producer) and the worker (consumer), in one
 * place: the queues, their streams, the fields of an entry, what makes a job's effect happen
 * once, the consumer group, and the dead-letter format.
 *
 * Queues. One Redis stream per queue (key names are built in keys.c, keys_stream):
 *   upload    a finished document to check and store;  fields upload_id, registration_id, kind
 *   register  a registration to forward downstream;    fields registration_id
 *   verify    a one-time code to send;                  fields verification_id, registration_id,
 *                                                      channel
 * Every field is required, each once; no other field is allowed. Ids are the gateway's
 * (ident.h: JOB_ID_LEN lower-case hex digits); kind is ktp|selfie; channel is email|sms.
 * An entry carries references only: what a job needs beyond them (the spool file's path, the
 * registration's fields) is in the upload or registration record, written by the same script
 * that adds the entry (common/lua/intake.lua), so the entry and its record appear together.
 *
 * Idempotency. Delivery is at least once (a worker may die after the effect and before XACK),
 * so every effect is keyed by the job's idempotency id (job_idempotency_id): the upload id for
 * `upload` (the document is stored, and its record updated, once per upload), the registration
 * id for `register` (sent downstream as Idempotency-Key), the verification id for `verify` (a
 * resend is a new verification, so a new effect; one verification's message is sent once). The stream entry's own id is not it: the gateway may queue one upload twice after a
 * lost reply, as two entries.
 *
 * Consumers. One consumer group per stream, JOB_GROUP; consumer name "host:pid".
 *
 * Dead letters. After too many deliveries an entry moves to its queue's dead-letter stream
 * (keys_stream_dead: `antre:{intake}:dead:NAME`) as one entry whose fields are
 *   original_id  the stream id of the entry that failed ("1733530000000-0")
 *   attempts     deliveries made (decimal)
 *   last_error   the last failure, at most JOB_ERROR_MAX bytes (longer is cut)
 *   failed_at    Unix time in milliseconds when it was moved (decimal)
 * followed by the original entry's fields unchanged, so that job_dead_parse gives back the job
 * to replay. */
#ifndef ANTRE_JOB_H
#define ANTRE_JOB_H

#include <stddef.h>
#include <stdint.h>

enum job_queue { JOB_UPLOAD, JOB_REGISTER, JOB_VERIFY, JOB__QUEUES };

#define JOB_GROUP "workers"

/* Field names of entries (the only spelling: producers, the worker and tests use these). */
#define JOB_F_UPLOAD_ID "upload_id"
#define JOB_F_REGISTRATION_ID "registration_id"
#define JOB_F_KIND "kind"
#define JOB_F_CHANNEL "channel"
#define JOB_F_VERIFICATION_ID "verification_id"
/* Field names a dead letter adds. */
#define JOB_F_ORIGINAL_ID "original_id"
#define JOB_F_ATTEMPTS "attempts"
#define JOB_F_LAST_ERROR "last_error"
#define JOB_F_FAILED_AT "failed_at"

#define JOB_ID_LEN 32        /* an upload or registration id */
#define JOB_VALUE_MAX 64     /* longest value of an entry's own field */
#define JOB_ERROR_MAX 512    /* longest last_error kept */
#define JOB_STREAM_ID_MAX 41 /* "<ms>-<seq>": two 20-digit numbers and a dash */
#define JOB_FIELDS_MAX 3     /* fields of the largest entry */
/* Items job_argv writes at most: the count, then field/value pairs. */
#define JOB_ARGV_MAX (1 + 2 * JOB_FIELDS_MAX)

/* One job. Only the fields of its queue are meaningful (the others are ""). */
struct job {
    enum job_queue queue;
    char upload_id[JOB_ID_LEN + 1];
    char registration_id[JOB_ID_LEN + 1];
    char verification_id[JOB_ID_LEN + 1];
    char kind[8];    /* ktp | selfie */
    char channel[8]; /* email | sms */
};

/* A dead letter: the failed job and why. */
struct job_dead {
    struct job job;
    char original_id[JOB_STREAM_ID_MAX + 1];
    uint32_t attempts;
    char last_error[JOB_ERROR_MAX + 1];
    int64_t failed_at_ms;
};

/* The queue's name ("upload", "register", "verify"), or NULL for a value out of range. */
const char *job_queue_name(enum job_queue q);

/* The queue named NAME (LEN bytes) into *Q. 0, or -1 for an unknown name. */
int job_queue_from_name(const char *name, size_t len, enum job_queue *q);

/* The stream key of Q and of its dead letters, into BUF (KEYS_MAX bytes). Their length. */
int job_stream_key(char *buf, enum job_queue q);
int job_dead_key(char *buf, enum job_queue q);
/* Q's delayed-retry set and drain-rate key (keys.h: keys_queue_delayed, keys_queue_rate). */
int job_delayed_key(char *buf, enum job_queue q);
int job_rate_key(char *buf, enum job_queue q);

/* The entry of J as field/value pairs: FV[0], FV[1], ... point to the names (static) and to J's
 * strings (valid while J is). CAP is FV's size (2 * JOB_FIELDS_MAX is enough). Returns the
 * number of items written (twice the field count), or -1 when J is not a valid job (a value
 * missing or malformed) or CAP is too small; ERR says which. */
int job_fields(const struct job *j, const char **fv, int cap, char *err, size_t errlen);

/* As job_fields, but first the item count as a decimal string in COUNT, for intake.lua (which
 * takes "N, field, value, ..." and passes the pairs to XADD). OUT holds JOB_ARGV_MAX items. */
int job_argv(const struct job *j, char count[4], const char **out, char *err, size_t errlen);

/* Parse an entry of queue Q from N items (field, value, field, value, ...): FV[i] of LENS[i]
 * bytes each, not necessarily NUL-terminated (e.g. the elements of an XREADGROUP reply). 0 with
 * *J filled, or -1 with the reason in ERR: an odd count, a missing, repeated or unknown field, a
 * value longer than JOB_VALUE_MAX or malformed. */
int job_parse(enum job_queue q, const char *const *fv, const size_t *lens, size_t n, struct job *j,
              char *err, size_t errlen);

/* The id that makes J's effect happen once (see the top), into BUF (LEN bytes; JOB_ID_LEN + 8
 * is enough). Its length, or -1 when it does not fit. */
int job_idempotency_id(const struct job *j, char *buf, size_t len);

/* The dead letter D as field/value pairs for XADD: its own four fields, then the job's. NUMS
 * holds the decimal strings of attempts and failed_at that FV points to. FV holds CAP items
 * (8 + 2 * JOB_FIELDS_MAX is enough). Item count, or -1 as job_fields. */
int job_dead_fields(const struct job_dead *d, char nums[2][24], const char **fv, int cap, char *err,
                    size_t errlen);

/* Parse a dead letter of queue Q (as job_parse, with the four dead-letter fields required
 * too). 0, or -1 with the reason in ERR. */
int job_dead_parse(enum job_queue q, const char *const *fv, const size_t *lens, size_t n,
                   struct job_dead *d, char *err, size_t errlen);

#endif
