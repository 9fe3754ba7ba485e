/* register.c: the register queue's handler.
 *
 * Without a downstream (`[downstream] url` empty, the embedded default; the HTTP client comes
 * later) a registration is accepted locally: common/lua/register.lua 'accept' sets the record's
 * state to accepted (the checklist of GET /v1/registrations/{id} shows it as its `registry`
 * check), keyed by the job's idempotency id, so a second delivery changes nothing. A job naming
 * no registration is a retryable failure (the record may not be visible yet after a fail-over):
 * it ends in the dead-letter stream after max_attempts. */
#include "register.h"

#include <stdio.h>
#include <string.h>

#include "antre/clock.h"
#include "antre/keys.h"
#include "antre/lua_scripts.h"
#include "antre/script.h"

static struct script register_script;

static void on_accept(void *arg, const redisReply *r, const char *err)
{
    struct queue_job *qj = arg;
    char why[300];
    if (err) {
        snprintf(why, sizeof why, "redis: %s", err);
        queue_done(qj, QUEUE_RETRY, why);
    } else if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
               r->element[0]->type != REDIS_REPLY_STRING) {
        snprintf(why, sizeof why, "redis: %s",
                 r && r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        queue_done(qj, QUEUE_RETRY, why);
    } else if (!strcmp(r->element[0]->str, "missing")) {
        queue_done(qj, QUEUE_RETRY, "registration not found");
    } else {
        queue_done(qj, QUEUE_DONE, NULL);
    }
}

void register_handle(void *ctx, struct queue_job *qj)
{
    struct rconn *rc = ctx;
    if (!register_script.src) script_init(&register_script, lua_register);
    char key[KEYS_MAX], idem[JOB_ID_LEN + 8], now[24];
    keys_registration(key, qj->job.registration_id);
    if (job_idempotency_id(&qj->job, idem, sizeof idem) < 0) {
        queue_done(qj, QUEUE_PERMANENT, "no idempotency id");
        return;
    }
    snprintf(now, sizeof now, "%lld", (long long)clock_wall_ms());
    const char *keys[] = {key};
    const char *args[] = {"accept", idem, now};
    if (script_call(rc, &register_script, on_accept, qj, 1, keys, 3, args) < 0)
        queue_done(qj, QUEUE_RETRY, "redis: not connected");
}
