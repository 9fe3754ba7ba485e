/* register.h: the register queue's handler (see register.c). */
#ifndef WORKER_REGISTER_H
#define WORKER_REGISTER_H

#include <stddef.h>
#include <stdint.h>

#include "antre/conf.h"
#include "antre/rconn.h"
#include "queue.h"

struct event_base;
struct register_ctx; /* opaque */
struct seal_keys;

#define REGISTER_REASON_MAX 200 /* longest downstream reason kept, in bytes */

/* The handler's context on BASE and RC (both borrowed, must outlive it). CONF is borrowed and
 * read at every job (the process's live configuration: a reload changes [downstream] url and
 * timeouts for the next jobs). The sealing keys of [gateway] secret_file are read now (and again
 * when a record names a kid they lack, at most once a second). With [downstream] signing_key_file, its first key is loaded now
 * (the file is created as keyfile_load does when absent). Returns the context, to be freed with
 * register_free, or NULL with the reason in ERR (ERRLEN bytes). */
struct register_ctx *register_new(struct event_base *base, struct rconn *rc,
                                  const struct conf *conf, char *err, size_t errlen);

/* Free R: deliveries in flight fail with "closed" (their jobs are retried, or forgotten after
 * queue_abandon). Call before the queue is freed. NULL is ignored. */
void register_free(struct register_ctx *r);

/* The handler for queue_new(JOB_REGISTER): CTX is a struct register_ctx. */
void register_handle(void *ctx, struct queue_job *qj);

/* The X-Antre-Signature value of BODY (LEN bytes) sent at Unix time T, signed with KEY (KEYLEN
 * bytes): "t=<T>,v1=<64 lower-case hex digits of HMAC-SHA256(KEY, "<T>.<BODY>")>", written with
 * its NUL to OUT (OUTLEN bytes). Returns its length, or -1 when OUT is too small. */
int register_sign(const uint8_t *key, size_t keylen, int64_t t, const char *body, size_t len,
                  char *out, size_t outlen);

/* The JSON body sent downstream for registration ID whose record REC is an HGETALL reply: id,
 * nik, kk, name, birth_date, email, phone (opened with KEYS: the gateway stores them sealed,
 * seal.h; a value stored in clear is sent as it is), created_at (Unix seconds) and
 * birth_date_mismatch_confirmed, as far as the record has them. Free with free(). NULL when a
 * personal field does not open, with the enum seal_error in *WHY (0 otherwise). */
char *register_body(const char *id, const redisReply *rec, const struct seal_keys *keys, int *why);

/* The reason a refusing downstream gave, from its JSON body BODY (LEN bytes): the string
 * `reason`, `message` or `error` (or `error.message`), as one clean line of at most OUTLEN - 1
 * bytes (control characters removed, cut at a character boundary); "refused by the registry
 * (HTTP STATUS)" when there is none. */
void register_reason(const char *body, size_t len, int status, char *out, size_t outlen);

#endif
