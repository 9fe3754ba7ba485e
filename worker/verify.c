/* verify.c: the verify queue's handler: one verification code to one contact, by email
 * (smtp_client.c, mail.c, dkim.c) or SMS (an HTTP provider through http_client.c).
 *
 * One job (verification_id, registration_id, channel) goes:
 *   1. A fresh code (vcode_generate, [verify] code_digits digits) and its MAC (vcode_mac, key from
 *      the pepper of [gateway] secret_file, as the gateway derives it).
 *   2. common/lua/verify_send.lua 'claim': nothing is sent, and the job is acknowledged, when the
 *      record is gone, expired, replaced by a newer verification or no longer `queued` (sent,
 *      failed, verified or burned by an earlier delivery): an expired code is never sent late,
 *      and a message whose 'sent' was recorded is never sent again. Else the channel's drain
 *      rate ([smtp] rate, [sms] rate: GCRA in Redis shared by every worker) gives a slot or a
 *      wait; a wait is spent here, on a timer, and the claim asked again (not as a queue retry,
 *      which would use up the job's attempts), unless it would pass half the visibility
 *      timeout. The claim stores the MAC (only ever a MAC: the code is never in Redis), and
 *      returns the destination as the gateway stored it: sealed (seal.h), opened here.
 *   3. The message: composed from the templates, DKIM-signed, sent; or the SMS body posted.
 *      The code's buffers are wiped as soon as the message holds it, and the message's when it
 *      is sent.
 *   4. The answer: accepted (SMTP 2xx, HTTP 2xx) → 'sent' (provider id: the SMTP server's
 *      reply line, the SMS provider's id_field) then the acknowledgement; refused for good
 *      (SMTP 5xx, HTTP 4xx other than 408 and 429) → 'failed' with the reason in plain words
 *      and a code (smtp_550, http_400), acknowledged; anything else (SMTP 4xx, HTTP 5xx, 408, 429
 *      after its Retry-After, timeouts, connect errors, a login refused, STARTTLS missing) →
 *      retried with the queue's backoff, with a new code at the next delivery.
 * A worker killed between the server's acceptance and 'sent' sends again at the next delivery
 * (at least once); killed after 'sent', it sends nothing more. An outcome Redis could not record
 * is asked again (SETTLE_TRIES times, SETTLE_PAUSE_MS apart) before the job is retried. Nothing of the code, the address,
 * the number, the login or the URLs is logged. */
#include "verify.h"

#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "antre/clock.h"
#include "antre/keyfile.h"
#include "antre/keys.h"
#include "antre/log.h"
#include "antre/lua_scripts.h"
#include "antre/script.h"
#include "antre/seal.h"
#include "antre/vcode.h"
#include "dkim.h"
#include "http_client.h"
#include "mail.h"
#include "smtp_client.h"
#include "textline.h"

#define RETRY_AFTER_MAX_S 3600
#define LOGIN_MAX 512
#define HEADERS_MAX 32
#define PROVIDER_ID_MAX 120
#define REASON_MAX 300
#define SETTLE_TRIES 20     /* attempts at recording an outcome before the job is retried */
#define SETTLE_PAUSE_MS 250 /* between them */

struct verify_ctx {
    struct verify_stats *stats; /* what was sent, refused and dropped, per channel */
    struct event_base *base;
    struct rconn *rc;
    const struct conf *conf;
    struct http_client *http;
    struct smtp_client *smtp;
    struct mail_templates *tmpl;
    struct dkim_signer *dkim;
    int has_key;
    uint8_t key[VCODE_KEY_BYTES];
    struct seal_keys *seal;  /* opens the verification's sealed destination (seal.h) */
    uint64_t seal_loaded_ns; /* when SEAL was read (seal_keys_refresh) */
    char user[LOGIN_MAX], password[LOGIN_MAX]; /* user[0] == 0: no login */
    char *headers[HEADERS_MAX + 1];            /* [sms] headers_file, NULL-terminated */
};

/* One job on its way. */
struct delivery {
    struct verify_ctx *v;
    struct queue_job *qj;
    int sms;
    char code[VCODE_DIGITS_MAX + 1];
    char mac[VCODE_MAC_HEX + 1];
    char dest[CONF_STR];
    char lang[4];
    int64_t expires_ms;
    int64_t waited_ms; /* spent waiting for the channel's rate */
    struct event *timer;
    char op[8]; /* the outcome to record: "sent" or "failed", with its arguments */
    char arg1[REASON_MAX], arg2[24];
    int settle_tries;
};

static struct script verify_script;

static void delivery_free(struct delivery *d)
{
    OPENSSL_cleanse(d->code, sizeof d->code);
    if (d->timer) event_free(d->timer);
    free(d);
}

/* ---- loading ------------------------------------------------------------------------------- */

static int load_key(struct verify_ctx *v, char *err, size_t errlen)
{
    struct keyfile kf;
    if (keyfile_load(v->conf->gateway.secret_file, &kf, err, errlen) < 0) return -1;
    if (!kf.has_pepper) {
        keyfile_clear(&kf);
        snprintf(err, errlen, "%s: no pepper line (verification codes need it)",
                 v->conf->gateway.secret_file);
        return -1;
    }
    vcode_key(kf.pepper, v->key);
    v->seal = seal_keys_new(&kf, err, errlen);
    v->seal_loaded_ns = clock_now_ns();
    v->has_key = v->seal != NULL;
    keyfile_clear(&kf);
    return v->has_key ? 0 : -1;
}

/* The first line of PATH into OUT (OUTLEN bytes), line end removed. */
static int read_line(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return -1;
    }
    out[0] = 0;
    char *ok = fgets(out, (int)outlen, f);
    fclose(f);
    if (!ok) {
        snprintf(err, errlen, "%s: empty", path);
        return -1;
    }
    out[strcspn(out, "\r\n")] = 0;
    return 0;
}

static int load_login(struct verify_ctx *v, char *err, size_t errlen)
{
    const char *path = v->conf->smtp.login_file;
    if (!path[0]) {
        v->user[0] = 0;
        return 0;
    }
    char line[2 * LOGIN_MAX];
    if (read_line(path, line, sizeof line, err, errlen) < 0) return -1;
    char *colon = strchr(line, ':');
    int bad = !colon || colon == line || (size_t)(colon - line) >= LOGIN_MAX ||
              strlen(colon + 1) >= LOGIN_MAX;
    if (!bad) {
        *colon = 0;
        snprintf(v->user, sizeof v->user, "%s", line);
        snprintf(v->password, sizeof v->password, "%s", colon + 1);
    }
    OPENSSL_cleanse(line, sizeof line);
    if (bad) snprintf(err, errlen, "%s: the first line must be user:password", path);
    return bad ? -1 : 0;
}

static int load_headers(struct verify_ctx *v, char *err, size_t errlen)
{
    const char *path = v->conf->sms.headers_file;
    if (!path[0]) return 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return -1;
    }
    char line[1024];
    int n = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        if (n == HEADERS_MAX || !strchr(line, ':')) {
            snprintf(err, errlen, "%s: %s", path,
                     n == HEADERS_MAX ? "too many headers" : "a line is not Name: value");
            rc = -1;
            break;
        }
        v->headers[n] = strdup(line);
        if (!v->headers[n++]) abort();
    }
    OPENSSL_cleanse(line, sizeof line);
    fclose(f);
    return rc;
}

struct verify_ctx *verify_new(struct event_base *base, struct rconn *rc, const struct conf *conf,
                              struct verify_stats *stats, char *err, size_t errlen)
{
    if (!verify_script.src) script_init(&verify_script, lua_verify_send);
    struct verify_ctx *v = calloc(1, sizeof *v);
    if (!v) abort();
    v->base = base;
    v->rc = rc;
    v->conf = conf;
    v->stats = stats;
    v->http = http_client_new(base, &(struct http_client_opts){.max_in_flight = 1024}, err, errlen);
    v->smtp = v->http ? smtp_client_new(base, err, errlen) : NULL;
    if (!v->smtp) goto fail;
    if (!conf->smtp.url[0] && !conf->sms.url[0]) return v; /* nothing to send with */
    if (conf->smtp.url[0] && !strchr(conf->smtp.from, '@')) {
        snprintf(err, errlen, "[smtp] from must be the sender's address (name@domain)");
        goto fail;
    }
    if (load_key(v, err, errlen) < 0 || load_login(v, err, errlen) < 0 ||
        load_headers(v, err, errlen) < 0)
        goto fail;
    v->tmpl = mail_templates_load(conf->smtp.templates_dir, err, errlen);
    if (!v->tmpl) goto fail;
    if (conf->smtp.dkim_key_file[0]) {
        v->dkim = dkim_signer_new(conf->smtp.dkim_domain, conf->smtp.dkim_selector,
                                  conf->smtp.dkim_key_file, err, errlen);
        if (!v->dkim) goto fail;
    }
    log_info("verify: ready email=%s sms=%s dkim=%s", conf->smtp.url[0] ? "on" : "off",
             conf->sms.url[0] ? "on" : "off", v->dkim ? "on" : "off");
    return v;
fail:
    verify_free(v);
    return NULL;
}

int verify_reload(struct verify_ctx *v, char *err, size_t errlen)
{
    if (!v->has_key) return 0;
    struct verify_ctx tmp = {.conf = v->conf};
    if (load_key(&tmp, err, errlen) < 0 || load_login(&tmp, err, errlen) < 0) {
        seal_keys_free(tmp.seal);
        OPENSSL_cleanse(&tmp, sizeof tmp);
        return -1;
    }
    seal_keys_free(v->seal);
    v->seal = tmp.seal;
    v->seal_loaded_ns = tmp.seal_loaded_ns;
    memcpy(v->key, tmp.key, sizeof v->key);
    memcpy(v->user, tmp.user, sizeof v->user);
    memcpy(v->password, tmp.password, sizeof v->password);
    OPENSSL_cleanse(&tmp, sizeof tmp);
    return 0;
}

void verify_free(struct verify_ctx *v)
{
    if (!v) return;
    smtp_client_free(v->smtp);
    http_client_free(v->http);
    mail_templates_free(v->tmpl);
    dkim_signer_free(v->dkim);
    seal_keys_free(v->seal);
    for (int i = 0; v->headers[i]; i++) {
        OPENSSL_cleanse(v->headers[i], strlen(v->headers[i]));
        free(v->headers[i]);
    }
    OPENSSL_cleanse(v, sizeof *v);
    free(v);
}

/* ---- the record's updates ------------------------------------------------------------------ */

static int call(struct delivery *d, rconn_cb *cb, const char *const *args, int nargs)
{
    struct queue_job *qj = d->qj;
    char ver[KEYS_MAX], reg[KEYS_MAX], rate[KEYS_MAX];
    keys_verification(ver, qj->job.verification_id);
    keys_registration(reg, qj->job.registration_id);
    /* the channel's drain-rate key, beside the queues' own (keys_queue_rate) */
    snprintf(rate, sizeof rate, "antre:{intake}:rate:send:%s", d->sms ? "sms" : "email");
    const char *keys[] = {ver, reg, rate};
    return script_call(d->v->rc, &verify_script, cb, d, 3, keys, nargs, args);
}

static void settle(struct delivery *d);

static void on_settle_again(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    settle(arg);
}

static void on_settled(void *arg, const redisReply *r, const char *err)
{
    struct delivery *d = arg;
    if (err || !r || r->type != REDIS_REPLY_ARRAY) {
        /* The message went (or was refused for good) and the record could not say so yet.
         * Asking again (Redis reconnects within a second or so) keeps the send from being
         * repeated; a retry of the job would make and send a new code. */
        if (++d->settle_tries < SETTLE_TRIES && (!err || strcmp(err, "closed"))) {
            if (!d->timer) d->timer = evtimer_new(d->v->base, on_settle_again, d);
            else evtimer_assign(d->timer, d->v->base, on_settle_again, d);
            struct timeval tv = {0, SETTLE_PAUSE_MS * 1000};
            evtimer_add(d->timer, &tv);
            return;
        }
        char why[300];
        snprintf(why, sizeof why, "redis: %s", err ? err : "unexpected reply");
        queue_done(d->qj, QUEUE_RETRY, why);
    } else {
        int ch = d->sms ? VERIFY_SMS : VERIFY_EMAIL;
        if (!strcmp(d->op, "sent")) d->v->stats->sent[ch]++;
        else d->v->stats->failed[ch]++;
        queue_done(d->qj, QUEUE_DONE, NULL);
    }
    delivery_free(d);
}

/* Record the outcome kept in D (sent or failed). */
static void settle(struct delivery *d)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)clock_wall_ms());
    const char *args[] = {d->op, d->qj->job.verification_id, now, d->arg1, d->arg2};
    if (call(d, on_settled, args, strcmp(d->op, "sent") ? 5 : 4) < 0)
        on_settled(d, NULL, "not connected");
}

static void settle_sent(struct delivery *d, const char *provider_id)
{
    snprintf(d->op, sizeof d->op, "sent");
    snprintf(d->arg1, sizeof d->arg1, "%s", provider_id);
    log_info("verify: sent channel=%s entry=%s", d->sms ? "sms" : "email", d->qj->id);
    settle(d);
}

static void settle_failed(struct delivery *d, const char *reason, const char *code)
{
    snprintf(d->op, sizeof d->op, "failed");
    snprintf(d->arg1, sizeof d->arg1, "%s", reason);
    snprintf(d->arg2, sizeof d->arg2, "%s", code);
    log_warn("verify: send failed for good channel=%s entry=%s code=%s", d->sms ? "sms" : "email",
             d->qj->id, code);
    settle(d);
}

static void retry(struct delivery *d, int64_t after_ms, const char *why)
{
    queue_retry_after(d->qj, after_ms, why);
    delivery_free(d);
}

/* ---- email --------------------------------------------------------------------------------- */

static void on_smtp(void *arg, int code, const char *reply, const char *err)
{
    struct delivery *d = arg;
    char why[REASON_MAX + 64], line[SMTP_CLIENT_REPLY_MAX + 1];
    textline_clean(reply, line, sizeof line);
    if (!err && code >= 200 && code < 300) {
        line[PROVIDER_ID_MAX] = 0;
        settle_sent(d, line);
        return;
    }
    if (code >= 500 && code < 600 && code != 530 && code != 535 && code != 534) {
        /* a refusal for good; a refused login (530, 534, 535) is the operator's to fix */
        char reason[REASON_MAX], ecode[16];
        snprintf(reason, sizeof reason, "the mail server refused the message (%s)",
                 line[0] ? line : "no reason given");
        snprintf(ecode, sizeof ecode, "smtp_%d", code);
        settle_failed(d, reason, ecode);
        return;
    }
    snprintf(why, sizeof why, "smtp: %s%s%s", err ? err : "refused", line[0] ? ": " : "", line);
    retry(d, 0, why);
}

static void send_email(struct delivery *d)
{
    struct verify_ctx *v = d->v;
    const struct conf *c = v->conf;
    int64_t now = clock_wall_ms();
    struct mail_fields f = {.lang = d->lang,
                            .code = d->code,
                            .programme = c->programme.name,
                            .sender_name = c->programme.sender_name,
                            .from = c->smtp.from,
                            .to = d->dest,
                            .minutes = (int)((d->expires_ms - now + 59999) / 60000),
                            .now_s = now / 1000};
    size_t len = 0;
    char *msg = mail_compose(v->tmpl, &f, &len);
    OPENSSL_cleanse(d->code, sizeof d->code);
    if (!msg) {
        settle_failed(d, "the email address cannot be written in a message", "bad_address");
        return;
    }
    char err[300];
    char *sig = NULL;
    if (v->dkim && !(sig = dkim_signer_sign(v->dkim, msg, len, err, sizeof err))) {
        mail_free(msg, len);
        retry(d, 0, err);
        return;
    }
    size_t slen = sig ? strlen(sig) : 0;
    char *all = malloc(slen + len + 1);
    if (!all) abort();
    if (sig) memcpy(all, sig, slen);
    memcpy(all + slen, msg, len);
    all[slen + len] = 0;
    free(sig);
    mail_free(msg, len);
    struct smtp_send s = {.url = c->smtp.url,
                          .starttls = c->smtp.starttls,
                          .user = v->user[0] ? v->user : NULL,
                          .password = v->password,
                          .from = c->smtp.from,
                          .to = d->dest,
                          .msg = all,
                          .msg_len = slen + len,
                          .timeout_ms = c->smtp.timeout_ms};
    int rc = smtp_client_send(v->smtp, &s, on_smtp, d, err, sizeof err);
    mail_free(all, slen + len);
    if (rc < 0) retry(d, 0, err);
}

/* ---- SMS ----------------------------------------------------------------------------------- */

char *verify_sms_body(const char *body_template, const char *number, const char *text,
                      const char *reference)
{
    static const char *const names[] = {"{{number}}", "{{text}}", "{{reference}}"};
    const char *vals[] = {number, text, reference};
    size_t cap = strlen(body_template) + 1, len = 0;
    char *esc[3];
    for (int i = 0; i < 3; i++) {
        /* a JSON string's inside: json_dumps of the string, without its quotes */
        json_t *s = json_string(vals[i] ? vals[i] : "");
        char *q = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
        json_decref(s);
        if (!q) q = strdup("\"\"");
        if (!q) abort();
        size_t ql = strlen(q);
        memmove(q, q + 1, ql - 2);
        q[ql - 2] = 0;
        esc[i] = q;
        cap += 8 * (ql + 1); /* each name may appear a few times; grown below if not */
    }
    char *out = malloc(cap);
    if (!out) abort();
    for (const char *p = body_template; *p;) {
        int k = -1;
        for (int i = 0; i < 3 && k < 0; i++)
            if (!strncmp(p, names[i], strlen(names[i]))) k = i;
        const char *piece = k >= 0 ? esc[k] : p;
        size_t n = k >= 0 ? strlen(esc[k]) : 1;
        if (len + n + 1 > cap) {
            cap = 2 * (len + n + 1);
            char *o = malloc(cap);
            if (!o) abort();
            memcpy(o, out, len);
            OPENSSL_cleanse(out, len);
            free(out);
            out = o;
        }
        memcpy(out + len, piece, n);
        len += n;
        p += k >= 0 ? strlen(names[k]) : 1;
    }
    out[len] = 0;
    for (int i = 0; i < 3; i++) {
        OPENSSL_cleanse(esc[i], strlen(esc[i]));
        free(esc[i]);
    }
    return out;
}

/* The value at PATH ("a" or "a.b") of DOC as a short printable string into OUT; "" if none. */
static void field_of(json_t *doc, const char *path, char *out, size_t outlen)
{
    out[0] = 0;
    char p[64];
    snprintf(p, sizeof p, "%s", path);
    json_t *v = doc;
    for (char *save = NULL, *t = strtok_r(p, ".", &save); t && v; t = strtok_r(NULL, ".", &save))
        v = json_is_object(v) ? json_object_get(v, t) : NULL;
    if (json_is_integer(v)) snprintf(out, outlen, "%lld", (long long)json_integer_value(v));
    else if (json_is_string(v)) textline_clean(json_string_value(v), out, outlen);
}

static void on_sms(void *arg, const struct http_response *resp, const char *err)
{
    struct delivery *d = arg;
    char why[300];
    if (err) {
        snprintf(why, sizeof why, "sms: %s", err);
        retry(d, 0, why);
        return;
    }
    int st = resp->status;
    if (st >= 200 && st < 300) {
        char id[PROVIDER_ID_MAX + 1];
        json_t *doc = json_loadb(resp->body, resp->body_len, 0, NULL);
        field_of(doc, d->v->conf->sms.id_field, id, sizeof id);
        json_decref(doc);
        settle_sent(d, id);
        return;
    }
    if (st >= 400 && st < 500 && st != 408 && st != 429) {
        char reason[REASON_MAX], code[16];
        snprintf(reason, sizeof reason,
                 "the SMS provider refused the message (HTTP %d); check the phone number", st);
        snprintf(code, sizeof code, "http_%d", st);
        settle_failed(d, reason, code);
        return;
    }
    int64_t after = http_client_retry_after(resp->retry_after, time(NULL));
    if (after > RETRY_AFTER_MAX_S) after = RETRY_AFTER_MAX_S;
    snprintf(why, sizeof why, "sms: HTTP %d%s", st, after >= 0 ? " (Retry-After)" : "");
    retry(d, after > 0 ? after * 1000 : 0, why);
}

static void send_sms(struct delivery *d)
{
    struct verify_ctx *v = d->v;
    const struct conf *c = v->conf;
    int64_t now = clock_wall_ms();
    struct mail_fields f = {.lang = d->lang,
                            .code = d->code,
                            .programme = c->programme.name,
                            .minutes = (int)((d->expires_ms - now + 59999) / 60000),
                            .now_s = now / 1000};
    char *text = mail_sms_text(v->tmpl, &f);
    OPENSSL_cleanse(d->code, sizeof d->code);
    char *body = verify_sms_body(c->sms.body_template, d->dest, text, d->qj->job.verification_id);
    mail_free(text, 0);
    size_t blen = strlen(body);
    char err[300];
    struct http_request req = {.method = c->sms.method,
                               .url = c->sms.url,
                               .headers = (const char *const *)v->headers,
                               .body = body,
                               .body_len = blen,
                               .timeout_ms = c->sms.timeout_ms};
    const char *ct[HEADERS_MAX + 2] = {"Content-Type: application/json"};
    int n = 1;
    for (int i = 0; v->headers[i]; i++) ct[n++] = v->headers[i];
    ct[n] = NULL;
    req.headers = ct;
    int rc = http_client_request(v->http, &req, on_sms, d, err, sizeof err);
    mail_free(body, blen);
    if (rc < 0) retry(d, 0, err);
}

/* ---- the claim ----------------------------------------------------------------------------- */

static void claim(struct delivery *d);

static void on_wait_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    claim(arg);
}

static void on_claim(void *arg, const redisReply *r, const char *err)
{
    struct delivery *d = arg;
    struct queue_job *qj = d->qj;
    char why[300];
    if (err || !r || r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        snprintf(why, sizeof why, "redis: %s",
                 err                                 ? err
                 : r && r->type == REDIS_REPLY_ERROR ? r->str
                                                     : "unexpected reply");
        retry(d, 0, why);
        return;
    }
    const char *what = r->element[0]->str;
    if (!strcmp(what, "drop")) {
        log_info("verify: not sent channel=%s entry=%s why=%s", d->sms ? "sms" : "email", qj->id,
                 r->element[1]->str);
        d->v->stats->dropped[d->sms ? VERIFY_SMS : VERIFY_EMAIL]++;
        queue_done(qj, QUEUE_DONE, NULL);
        delivery_free(d);
        return;
    }
    if (!strcmp(what, "wait")) {
        int64_t ms = strtoll(r->element[1]->str, NULL, 10);
        /* a wait past half the visibility timeout goes back to the queue */
        if (d->waited_ms + ms > (int64_t)d->v->conf->queue[JOB_VERIFY].visibility_timeout_s * 500) {
            retry(d, ms, "waiting for the channel's rate");
            return;
        }
        d->waited_ms += ms;
        if (!d->timer) d->timer = evtimer_new(d->v->base, on_wait_over, d);
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        evtimer_add(d->timer, &tv);
        return;
    }
    if (strcmp(what, "send") || r->elements < 4) {
        retry(d, 0, "verify_send.lua: unexpected reply");
        return;
    }
    /* The gateway stores the destination sealed (seal.h), bound to this verification. */
    char dest[SEAL_PLAIN_MAX + 1];
    const char *vid = d->qj->job.verification_id;
    int n = seal_open(d->v->seal, vid, "destination", r->element[1]->str, r->element[1]->len, dest,
                      sizeof dest);
    if (n == SEAL_UNKNOWN_KEY) {
        int got = seal_keys_refresh(&d->v->seal, d->v->conf->gateway.secret_file,
                                    &d->v->seal_loaded_ns, why, sizeof why);
        if (got < 0) log_error("verify: %s", why);
        if (got > 0)
            n = seal_open(d->v->seal, vid, "destination", r->element[1]->str, r->element[1]->len,
                          dest, sizeof dest);
    }
    if (n < 0) {
        snprintf(why, sizeof why, "cannot open the destination: %s", seal_error_str(n));
        retry(d, 0, why);
        return;
    }
    textline_clean(dest, d->dest, sizeof d->dest);
    OPENSSL_cleanse(dest, sizeof dest);
    snprintf(d->lang, sizeof d->lang, "%s", r->element[2]->str);
    d->expires_ms = strtoll(r->element[3]->str, NULL, 10);
    if (d->sms) send_sms(d);
    else send_email(d);
}

static void claim(struct delivery *d)
{
    char now[24], rate[32];
    snprintf(now, sizeof now, "%lld", (long long)clock_wall_ms());
    snprintf(rate, sizeof rate, "%.6f", d->sms ? d->v->conf->sms.rate : d->v->conf->smtp.rate);
    const char *args[] = {"claim", d->qj->job.verification_id, now, d->mac, rate};
    if (call(d, on_claim, args, 5) < 0) retry(d, 0, "redis: not connected");
}

void verify_handle(void *ctx, struct queue_job *qj)
{
    struct verify_ctx *v = ctx;
    struct delivery *d = calloc(1, sizeof *d);
    if (!d) abort();
    d->v = v;
    d->qj = qj;
    d->sms = !strcmp(qj->job.channel, "sms");
    const char *url = d->sms ? v->conf->sms.url : v->conf->smtp.url;
    if (url[0] && (!v->has_key || !v->tmpl)) {
        /* a channel turned on by a reload: its key and templates load at start */
        retry(d, 0, "the channel was turned on by a reload: restart the worker");
        return;
    }
    if (!url[0]) {
        settle_failed(d,
                      d->sms ? "sending codes by SMS is not set up; try email"
                             : "sending codes by email is not set up; try SMS",
                      "not_configured");
        return;
    }
    if (vcode_generate(v->conf->verify.code_digits, d->code, sizeof d->code) < 0) {
        retry(d, 0, "no random bytes");
        return;
    }
    vcode_mac(v->key, qj->job.verification_id, d->code, strlen(d->code), d->mac);
    claim(d);
}
