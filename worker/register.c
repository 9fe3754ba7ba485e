/* register.c: the register queue's handler: forwards each registration downstream.
 *
 * Without a downstream (`[downstream] url` empty, the embedded default) a registration is
 * accepted locally: common/lua/register.lua 'accept' sets the record's state to accepted (the
 * checklist of GET /v1/registrations/{id} shows it as its `registry` check), keyed by the job's
 * idempotency id, so a second delivery changes nothing.
 *
 * With a downstream, each job reads the registration record, POSTs the applicant's fields as
 * JSON (register_body) through the HTTP client (http_client.c) with `Idempotency-Key: <the
 * registration id>` and, with `[downstream] signing_key_file`, `X-Antre-Signature:
 * t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">` (register_sign). The queue runtime starts the
 * jobs at `[queue.register] rate` (GCRA shared by every worker), retries included, so the
 * downstream never sees more than that. The answer decides:
 *   2xx                      accepted ('accept'), with the answer's `reference` when it has one;
 *   5xx, 429, 408, timeout,  retried (QUEUE_RETRY), no sooner than a Retry-After asks (seconds or
 *   connect failure, other  an HTTP date, at most RETRY_AFTER_MAX_S);
 *   failures
 *   other 4xx                rejected ('reject') with the downstream's reason (its JSON
 *                            `reason`, `message` or `error`, cleaned and cut to
 *                            REGISTER_REASON_MAX bytes), and done;
 *   1xx, 3xx                 retried (redirects are not followed: a misconfiguration, which
 *                            ends in the dead-letter stream after max_attempts).
 * A record already accepted or rejected is not sent again. A job naming no registration is a
 * retryable failure (the record may not be visible yet after a fail-over): it ends in the
 * dead-letter stream after max_attempts. Nothing of the applicant's data, the URL or the key is
 * logged. */
#include "register.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "antre/clock.h"
#include "antre/codec.h"
#include "antre/keyfile.h"
#include "antre/keys.h"
#include "antre/log.h"
#include "antre/lua_scripts.h"
#include "antre/script.h"
#include "antre/seal.h"
#include "http_client.h"
#include "textline.h"

#define RETRY_AFTER_MAX_S 3600 /* a longer Retry-After is cut to this */
#define REFERENCE_MAX 64

struct register_ctx {
    struct rconn *rc;
    struct seal_keys *seal;  /* opens the record's personal fields ([gateway] secret_file) */
    uint64_t seal_loaded_ns; /* when SEAL was last read (an unknown kid reads it again) */
    const struct conf *conf; /* live: a reload changes url and timeouts for the next jobs */
    struct http_client *http;
    int signing;
    uint8_t key[KEYFILE_KEY_BYTES];
};

/* One job on its way: the job and the context, until the last callback. */
struct delivery {
    struct register_ctx *r;
    struct queue_job *qj;
    char idem[JOB_ID_LEN + 8];
    int status;
    char reason[REGISTER_REASON_MAX + 1];
};

static struct script register_script;

struct register_ctx *register_new(struct event_base *base, struct rconn *rc,
                                  const struct conf *conf, char *err, size_t errlen)
{
    if (!register_script.src) script_init(&register_script, lua_register);
    struct register_ctx *r = calloc(1, sizeof *r);
    if (!r) abort();
    r->rc = rc;
    r->conf = conf;
    if (seal_keys_load(conf->gateway.secret_file, &r->seal, err, errlen) < 0) {
        free(r);
        return NULL;
    }
    r->seal_loaded_ns = clock_now_ns();
    if (conf->downstream.signing_key_file[0]) {
        struct keyfile kf;
        if (keyfile_load(conf->downstream.signing_key_file, &kf, err, errlen) < 0) {
            seal_keys_free(r->seal);
            free(r);
            return NULL;
        }
        memcpy(r->key, kf.keys[0].key, sizeof r->key);
        r->signing = 1;
        log_info("register: signing bodies kid=%s", kf.keys[0].kid);
        keyfile_clear(&kf);
    }
    struct http_client_opts ho = {.max_in_flight = 1024, .user_agent = "antre-worker"};
    r->http = http_client_new(base, &ho, err, errlen);
    if (!r->http) {
        seal_keys_free(r->seal);
        explicit_bzero(r->key, sizeof r->key);
        free(r);
        return NULL;
    }
    return r;
}

void register_free(struct register_ctx *r)
{
    if (!r) return;
    http_client_free(r->http);
    seal_keys_free(r->seal);
    explicit_bzero(r->key, sizeof r->key);
    free(r);
}

int register_sign(const uint8_t *key, size_t keylen, int64_t t, const char *body, size_t len,
                  char *out, size_t outlen)
{
    char ts[24];
    int tl = snprintf(ts, sizeof ts, "%lld.", (long long)t);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *msg = malloc((size_t)tl + len + 1);
    if (!msg) abort();
    memcpy(msg, ts, (size_t)tl);
    memcpy(msg + tl, body, len);
    unsigned char *ok =
        HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)msg, (size_t)tl + len, md, &mdlen);
    free(msg);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    if (!ok || codec_hex_encode(md, mdlen, hex, sizeof hex) < 0) return -1;
    int n = snprintf(out, outlen, "t=%lld,v1=%s", (long long)t, hex);
    explicit_bzero(md, sizeof md);
    return n > 0 && (size_t)n < outlen ? n : -1;
}

/* The record's fields the downstream gets, as named in the record and in the JSON. The rest
 * (owner, room, states, upload ids, bookkeeping) stays here. */
static const char *const sent_fields[] = {"nik", "kk", "name", "birth_date", "email", "phone"};

char *register_body(const char *id, const redisReply *rec, const struct seal_keys *keys, int *why)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    *why = 0;
    for (size_t i = 0; rec && rec->type == REDIS_REPLY_ARRAY && i + 1 < rec->elements; i += 2) {
        const redisReply *k = rec->element[i], *v = rec->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        for (size_t f = 0; f < sizeof sent_fields / sizeof sent_fields[0]; f++) {
            if (strcmp(k->str, sent_fields[f])) continue;
            char clear[SEAL_PLAIN_MAX + 1]; /* stored sealed by the gateway (seal.h) */
            int n = seal_open(keys, id, sent_fields[f], v->str, v->len, clear, sizeof clear);
            if (n < 0) {
                OPENSSL_cleanse(clear, sizeof clear);
                json_decref(o);
                *why = n;
                return NULL;
            }
            json_object_set_new(o, sent_fields[f], json_stringn(clear, (size_t)n));
            OPENSSL_cleanse(clear, sizeof clear);
        }
        if (!strcmp(k->str, "created_at"))
            json_object_set_new(o, "created_at", json_integer(strtoll(v->str, NULL, 10)));
        if (!strcmp(k->str, "confirm_mismatch"))
            json_object_set_new(o, "birth_date_mismatch_confirmed",
                                json_boolean(!strcmp(v->str, "1")));
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (!s) abort();
    return s;
}

void register_reason(const char *body, size_t len, int status, char *out, size_t outlen)
{
    json_t *doc = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    const char *s = NULL;
    static const char *const names[] = {"reason", "message", "error"};
    for (size_t i = 0; !s && json_is_object(doc) && i < 3; i++) {
        json_t *v = json_object_get(doc, names[i]);
        if (json_is_string(v)) s = json_string_value(v);
        else if (json_is_object(v)) { /* {"error": {"message": "..."}} */
            json_t *m = json_object_get(v, "message");
            if (!json_is_string(m)) m = json_object_get(v, "reason");
            if (json_is_string(m)) s = json_string_value(m);
        }
    }
    if (s) textline_clean(s, out, outlen);
    if (!s || !out[0]) snprintf(out, outlen, "refused by the registry (HTTP %d)", status);
    json_decref(doc);
}

/* The answer's `reference` (a string or an integer) into OUT when it is short and printable
 * ASCII without spaces; "" otherwise. */
static void reference_of(const struct http_response *resp, char *out, size_t outlen)
{
    out[0] = 0;
    json_t *doc = json_loadb(resp->body, resp->body_len, 0, NULL);
    json_t *v = json_is_object(doc) ? json_object_get(doc, "reference") : NULL;
    if (json_is_integer(v)) snprintf(out, outlen, "%lld", (long long)json_integer_value(v));
    else if (json_is_string(v) && json_string_length(v) < outlen) {
        const char *s = json_string_value(v);
        int ok = 1;
        for (const char *p = s; *p; p++) ok &= *p > 0x20 && *p < 0x7f;
        if (ok) snprintf(out, outlen, "%s", s);
    }
    json_decref(doc);
}

/* ---- the record's update ----------------------------------------------------------------- */

static void on_script(void *arg, const redisReply *r, const char *err)
{
    struct delivery *d = arg;
    struct queue_job *qj = d->qj;
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
    free(d);
}

/* Run register.lua OP on D's record with the extra arguments EXTRA (N of them). */
static void settle(struct delivery *d, const char *op, const char *const *extra, int n)
{
    char key[KEYS_MAX], now[24];
    keys_registration(key, d->qj->job.registration_id);
    snprintf(now, sizeof now, "%lld", (long long)clock_wall_ms());
    const char *keys[] = {key};
    const char *args[6] = {op, d->idem, now};
    for (int i = 0; i < n && i < 3; i++) args[3 + i] = extra[i];
    if (script_call(d->r->rc, &register_script, on_script, d, 1, keys, 3 + n, args) < 0) {
        queue_done(d->qj, QUEUE_RETRY, "redis: not connected");
        free(d);
    }
}

/* ---- delivery ---------------------------------------------------------------------------- */

static void on_response(void *arg, const struct http_response *resp, const char *err)
{
    struct delivery *d = arg;
    struct queue_job *qj = d->qj;
    char why[300];
    if (err) {
        snprintf(why, sizeof why, "downstream: %s", err);
        queue_done(qj, QUEUE_RETRY, why);
        free(d);
        return;
    }
    int st = resp->status;
    if (st >= 200 && st < 300) {
        char ref[REFERENCE_MAX + 1];
        reference_of(resp, ref, sizeof ref);
        const char *extra[] = {ref};
        settle(d, "accept", extra, 1);
        return;
    }
    if (st >= 400 && st < 500 && st != 408 && st != 429) {
        char status[12];
        snprintf(status, sizeof status, "%d", st);
        register_reason(resp->body, resp->body_len, st, d->reason, sizeof d->reason);
        log_info("register: rejected by the downstream id=%s status=%d", qj->job.registration_id,
                 st);
        const char *extra[] = {status, d->reason};
        settle(d, "reject", extra, 2);
        return;
    }
    int64_t after = http_client_retry_after(resp->retry_after, time(NULL));
    if (after > RETRY_AFTER_MAX_S) after = RETRY_AFTER_MAX_S;
    snprintf(why, sizeof why, "downstream: HTTP %d%s", st, after >= 0 ? " (Retry-After)" : "");
    queue_retry_after(qj, after > 0 ? after * 1000 : 0, why);
    free(d);
}

static void on_record(void *arg, const redisReply *rec, const char *err)
{
    struct delivery *d = arg;
    struct queue_job *qj = d->qj;
    struct register_ctx *r = d->r;
    const struct conf_downstream *ds = &r->conf->downstream;
    char why[300];
    if (err || !rec || rec->type != REDIS_REPLY_ARRAY) {
        snprintf(why, sizeof why, "redis: %s",
                 err                                     ? err
                 : rec && rec->type == REDIS_REPLY_ERROR ? rec->str
                                                         : "unexpected reply");
        queue_done(qj, QUEUE_RETRY, why);
        free(d);
        return;
    }
    if (rec->elements == 0) {
        queue_done(qj, QUEUE_RETRY, "registration not found");
        free(d);
        return;
    }
    for (size_t i = 0; i + 1 < rec->elements; i += 2)
        if (!strcmp(rec->element[i]->str, "state") &&
            (!strcmp(rec->element[i + 1]->str, "accepted") ||
             !strcmp(rec->element[i + 1]->str, "rejected"))) {
            queue_done(qj, QUEUE_DONE, NULL); /* settled by an earlier delivery */
            free(d);
            return;
        }
    if (!ds->url[0]) { /* the URL was emptied by a reload meanwhile */
        const char *extra[] = {""};
        settle(d, "accept", extra, 1);
        return;
    }
    int sealed;
    char *body = register_body(qj->job.registration_id, rec, r->seal, &sealed);
    if (!body && sealed == SEAL_UNKNOWN_KEY) {
        /* Sealed under a key line added since we read the key file: read it again. */
        int got = seal_keys_refresh(&r->seal, r->conf->gateway.secret_file, &r->seal_loaded_ns, why,
                                    sizeof why);
        if (got < 0) log_error("register: %s", why);
        if (got > 0) body = register_body(qj->job.registration_id, rec, r->seal, &sealed);
    }
    if (!body) {
        snprintf(why, sizeof why, "cannot open the record's personal fields: %s",
                 seal_error_str(sealed));
        queue_done(qj, QUEUE_RETRY, why);
        free(d);
        return;
    }
    size_t blen = strlen(body);
    char idem_h[JOB_ID_LEN + 40], sig_h[200], sig[180];
    snprintf(idem_h, sizeof idem_h, "Idempotency-Key: %s", d->idem);
    const char *headers[4] = {"Content-Type: application/json", idem_h, NULL, NULL};
    if (r->signing) {
        if (register_sign(r->key, sizeof r->key, (int64_t)time(NULL), body, blen, sig, sizeof sig) <
            0)
            abort(); /* the buffer is large enough for any time stamp */
        snprintf(sig_h, sizeof sig_h, "X-Antre-Signature: %s", sig);
        headers[2] = sig_h;
    }
    struct http_request req = {.method = "POST",
                               .url = ds->url,
                               .headers = headers,
                               .body = body,
                               .body_len = blen,
                               .timeout_ms = ds->timeout_ms,
                               .connect_timeout_ms = ds->connect_timeout_ms,
                               .max_response_bytes = (size_t)ds->max_response_bytes};
    int rc = http_client_request(r->http, &req, on_response, d, why, sizeof why);
    free(body);
    if (rc < 0) {
        char msg[320];
        snprintf(msg, sizeof msg, "downstream: %s", why);
        queue_done(qj, QUEUE_RETRY, msg);
        free(d);
    }
}

void register_handle(void *ctx, struct queue_job *qj)
{
    struct register_ctx *r = ctx;
    struct delivery *d = calloc(1, sizeof *d);
    if (!d) abort();
    d->r = r;
    d->qj = qj;
    if (job_idempotency_id(&qj->job, d->idem, sizeof d->idem) < 0) {
        queue_done(qj, QUEUE_PERMANENT, "no idempotency id");
        free(d);
        return;
    }
    if (!r->conf->downstream.url[0]) {
        const char *extra[] = {""};
        settle(d, "accept", extra, 1);
        return;
    }
    char key[KEYS_MAX];
    keys_registration(key, qj->job.registration_id);
    if (rconn_command(r->rc, on_record, d, "HGETALL %s", key) < 0) {
        queue_done(qj, QUEUE_RETRY, "redis: not connected");
        free(d);
    }
}
