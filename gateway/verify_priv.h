/* verify_priv.h: what verify.c, verify_confirm.c and verify_recover.c share (not a public
 * interface: the routes are verify.h's). */
#ifndef ANTRE_VERIFY_PRIV_H
#define ANTRE_VERIFY_PRIV_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "antre/job.h"
#include "antre/rconn.h"
#include "ident.h"

struct conn;
struct gw;
struct script;

#define VERIFY_DAY_MS 86400000LL
#define VERIFY_MASKED_MAX 96

/* The embedded common/lua/verify.lua (initialised on first use). */
const struct script *verify_script(void);

/* Unix time in ms. */
int64_t verify_now_ms(void);

/* The JSON object body of C's request (free with json_decref), or NULL after answering 400
 * invalid_json. */
json_t *verify_body(struct conn *c);

/* The "channel" member of DOC: "email" or "sms" (static), or NULL after answering 422
 * invalid_field. */
const char *verify_channel(struct conn *c, json_t *doc);

/* HMAC under the key file's pepper of LABEL "\n" VALUE, as 64 hex digits and a NUL into HEX, so
 * that no contact, NIK or address is a key name in clear. 0, or -1 (no pepper) after answering
 * 500. */
int verify_hmac_hex(struct conn *c, const char *label, const char *value, char hex[65]);

/* A verification record to write (docs/design.md, "Verification codes"), all borrowed. */
struct verify_new {
    const char *vid, *channel, *purpose, *owner, *destination, *masked;
    const char *rid;     /* the record's registration_id ("" for a recovery decoy) */
    const char *job_rid; /* the job's registration_id (a valid id even for a decoy) */
    int64_t now_ms;
};

/* V as a decimal string in BUF (24 bytes), which is returned. */
const char *verify_num(char buf[24], long long v);

/* Run verify.lua on C's Redis with NKEYS KEYS and the arguments ARGS[0..NHEAD-1], then the job
 * entry of N (job_argv), then N's record as field/value pairs (state queued, expires_ms = now
 * + [verify] code_ttl_s). 0, or -1 after answering (a malformed job: 500; Redis refused: 503).
 * CB gets ARG as rconn_command_argv says. */
int verify_call(struct conn *c, int nkeys, const char *const *keys, const char *const *args,
                int nhead, const struct verify_new *n, rconn_cb *cb, void *arg);

/* Until when a record made at NOW_MS is kept (its expiry and a day, for the checklist). */
int64_t verify_keep_ms(struct conn *c, int64_t now_ms);

/* The 202 of a new verification: its id, CHANNEL, expires_in_s, resend_after_s (from
 * RESEND_MS, rounded up) and MASKED as "destination" when not NULL. */
void verify_answer_created(struct conn *c, const char *vid, const char *channel, const char *masked,
                           int expires_in_s, long long resend_ms);

/* Answer 429 E with Retry-After WAIT_MS rounded up to seconds (at least 1). */
void verify_refuse_wait(struct conn *c, int e, long long wait_ms);

/* POST /v1/verifications/{id}/confirm and POST /v1/registrations/recover. */
struct request;
struct route_params;
void verify_confirm_route(struct conn *c, struct request *r, const struct route_params *p);
void verify_recover_route(struct conn *c, struct request *r, const struct route_params *p);

#endif
