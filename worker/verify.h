/* verify.h: the verify queue's handler: sends verification codes by email and SMS (see
 * verify.c). */
#ifndef WORKER_VERIFY_H
#define WORKER_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "antre/conf.h"
#include "antre/rconn.h"
#include "queue.h"

struct event_base;
struct verify_ctx; /* opaque */

/* Codes by channel (VERIFY_EMAIL, VERIFY_SMS): sent, refused for good (send_failed), and
 * dropped unsent (expired, replaced or settled before their turn). 64-bit words, kept in the
 * process's shared-memory slot and summed by admin.c. */
enum { VERIFY_EMAIL, VERIFY_SMS, VERIFY__CHANNELS };
struct verify_stats {
    uint64_t sent[VERIFY__CHANNELS];
    uint64_t failed[VERIFY__CHANNELS];
    uint64_t dropped[VERIFY__CHANNELS];
};

/* The handler's context on BASE and RC (borrowed, must outlive it); what it sends is counted in
 * STATS (borrowed; typically in a shared slot). CONF is borrowed and read
 * at every job ([smtp] and [sms] url, from, timeouts, rates, body template change on reload).
 * When [smtp] url or [sms] url is set, loads now (blocking): the code key from the pepper of
 * [gateway] secret_file, the templates of [smtp] templates_dir, [smtp] login_file, the DKIM key
 * and [sms] headers_file. Returns the context (free with verify_free) or NULL with the reason in
 * ERR. */
struct verify_ctx *verify_new(struct event_base *base, struct rconn *rc, const struct conf *conf,
                              struct verify_stats *stats, char *err, size_t errlen);

/* Read the key file's pepper and [smtp] login_file again (SIGHUP). On failure the ones in use
 * stay and -1 is returned with the reason in ERR; else 0. */
int verify_reload(struct verify_ctx *v, char *err, size_t errlen);

/* Free V: sends in flight fail with "closed" (their jobs are retried, or forgotten after
 * queue_abandon). Call before the queue is freed. NULL is ignored. */
void verify_free(struct verify_ctx *v);

/* The handler for queue_new(JOB_VERIFY): CTX is a struct verify_ctx. */
void verify_handle(void *ctx, struct queue_job *qj);

/* BODY_TEMPLATE with {{number}}, {{text}} and {{reference}} replaced by the JSON-escaped
 * values (no quotes added: the template has them). Free with free(). */
char *verify_sms_body(const char *body_template, const char *number, const char *text,
                      const char *reference);

#endif
