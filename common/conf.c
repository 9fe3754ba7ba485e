/* conf.c: the directive table, the INI loader (inih through ini_lines.h) and the reload merge.
 *
 * The table below is the single declaration of every directive. Loading always starts from the
 * defaults (each default string goes through the same parser as the file, so a bad default is
 * caught by the unit tests), then applies the file line by line, collecting every error rather
 * than stopping at the first, so an operator fixes a file in one pass. */
#include "antre/conf.h"

#include "antre/cidr.h"
#include "antre/ini_lines.h"
#include "antre/rconn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum dtype { T_INT, T_SIZE, T_DOUBLE, T_STR, T_ADDR, T_ENUM, T_BOOL, T_TIME };

struct directive {
    const char *section;
    const char *name;
    enum dtype type;
    double min, max; /* bounds for numbers; max length for strings */
    const char *def;
    int reloadable;
    size_t offset;              /* into struct conf (or struct conf_room for room_table) */
    size_t size;                /* of the field, for the reload comparison */
    const char *const *choices; /* T_ENUM: NULL-terminated */
    int (*check)(const char *v, char *err, size_t errlen);
    const char *help;
};

#define F(field) offsetof(struct conf, field), sizeof(((struct conf *)0)->field)

static const char *const fsync_choices[] = {"everysec", "always", NULL};
static const char *const level_choices[] = {"debug", "info", "warn", "error", NULL};
static const char *const mode_choices[] = {"fifo", "passthrough", "reject", NULL};
static const char *const sms_method_choices[] = {"POST", "PUT", NULL};

static int check_redis_url(const char *v, char *err, size_t errlen);
static int check_downstream_url(const char *v, char *err, size_t errlen);
static int check_smtp_url(const char *v, char *err, size_t errlen);
static int check_continue_url(const char *v, char *err, size_t errlen);

#define MAX_INT 2147483647.0
static const struct directive table[] = {
    {"gateway", "listen", T_ADDR, 0, 0, "127.0.0.1:8080", 0, F(gateway.listen), NULL, NULL,
     "public HTTP listener (host:port, [v6]:port or *:port)"},
    {"gateway", "admin_listen", T_ADDR, 0, 0, "127.0.0.1:8081", 0, F(gateway.admin_listen), NULL,
     NULL, "admin listener for /metrics (keep it on loopback)"},
    {"gateway", "admin_token_file", T_STR, 0, CONF_STR - 1, "", 1, F(gateway.admin_token_file),
     NULL, NULL,
     "file holding the admin bearer token (empty: no token; keep admin_listen on loopback)"},
    {"gateway", "processes", T_INT, 1, 64, "1", 0, F(gateway.processes), NULL, NULL,
     "gateway processes sharing the port (SO_REUSEPORT); a parent restarts crashed ones"},
    {"gateway", "backlog", T_INT, 16, 65535, "4096", 0, F(gateway.backlog), NULL, NULL,
     "listen(2) backlog"},
    {"gateway", "trusted_proxies", T_STR, 0, CONF_STR - 1, "", 1, F(gateway.trusted_proxies), NULL,
     cidr_list_check,
     "address blocks of the proxies whose X-Forwarded-For and PROXY headers are believed "
     "(10.0.0.0/8, ::1/128; empty: none)"},
    {"gateway", "proxy_protocol", T_BOOL, 0, 0, "off", 1, F(gateway.proxy_protocol), NULL, NULL,
     "on: every public connection starts with a PROXY protocol v1 or v2 header (else closed)"},
    {"gateway", "max_connections", T_INT, 1, 1000000, "20000", 1, F(gateway.max_connections), NULL,
     NULL, "open connections per process; above it a short 503 and close"},
    {"gateway", "max_url_bytes", T_INT, 64, 65536, "4096", 1, F(gateway.max_url_bytes), NULL, NULL,
     "longest request target (414 above it)"},
    {"gateway", "max_header_bytes", T_INT, 512, 1048576, "16384", 1, F(gateway.max_header_bytes),
     NULL, NULL, "bytes of request line and headers (431 above)"},
    {"gateway", "max_headers", T_INT, 4, 1024, "64", 1, F(gateway.max_headers), NULL, NULL,
     "number of request headers (431 above it)"},
    {"gateway", "max_body_bytes", T_SIZE, 0, 1073741824.0, "65536", 1, F(gateway.max_body_bytes),
     NULL, NULL, "request body bytes for routes without their own limit (413 above it)"},
    {"gateway", "header_timeout_ms", T_INT, 100, 600000, "10000", 1, F(gateway.header_timeout_ms),
     NULL, NULL, "whole request head must arrive within this (cuts slowloris clients)"},
    {"gateway", "body_timeout_ms", T_INT, 100, 3600000, "30000", 1, F(gateway.body_timeout_ms),
     NULL, NULL, "longest pause between two pieces of a request body"},
    {"gateway", "idle_timeout_ms", T_INT, 100, 3600000, "60000", 1, F(gateway.idle_timeout_ms),
     NULL, NULL, "idle keep-alive connections are closed after this"},
    {"gateway", "write_timeout_ms", T_INT, 100, 600000, "30000", 1, F(gateway.write_timeout_ms),
     NULL, NULL, "a response that makes no progress for this long closes the connection"},
    {"gateway", "drain_timeout_ms", T_INT, 0, 600000, "10000", 1, F(gateway.drain_timeout_ms), NULL,
     NULL, "on shutdown, how long in-flight requests may finish"},
    {"gateway", "per_ip_rate", T_DOUBLE, 0, 1e6, "0", 1, F(gateway.per_ip_rate), NULL, NULL,
     "requests per second per client IP (IPv6 per /64); 0 = off"},
    {"gateway", "per_ip_burst", T_INT, 1, 1000000, "20", 1, F(gateway.per_ip_burst), NULL, NULL,
     "requests a client may send at once before per_ip_rate applies"},
    {"gateway", "per_ip_table_size", T_INT, 1024, 16777216, "65536", 0,
     F(gateway.per_ip_table_size), NULL, NULL, "client slots the per-IP limiter keeps"},
    {"gateway", "per_ip_max_connections", T_INT, 0, 65535, "100", 1,
     F(gateway.per_ip_max_connections), NULL, NULL,
     "open connections per client IP (IPv6 per /64) across all processes; above it a 503; 0 = "
     "off (clients behind one carrier NAT share it)"},
    {"gateway", "body_min_rate", T_INT, 0, 1000000000, "1024", 1, F(gateway.body_min_rate), NULL,
     NULL, "each body byte received extends body_total_timeout_ms by 1/this seconds; 0 = none"},
    {"gateway", "body_total_timeout_ms", T_INT, 100, 3600000, "20000", 1,
     F(gateway.body_total_timeout_ms), NULL, NULL,
     "a request body must arrive within this, plus its size / body_min_rate seconds"},
    {"gateway", "access_log", T_STR, 0, CONF_STR - 1, "off", 1, F(gateway.access_log), NULL, NULL,
     "access log file, '-' for standard error, 'off' for none (reopened on SIGHUP)"},
    {"gateway", "secret_file", T_STR, 1, CONF_STR - 1, "var/secret", 0, F(gateway.secret_file),
     NULL, NULL, "signing keys for tickets and sessions (created 0600 if absent)"},

    {"log", "level", T_ENUM, 0, 0, "info", 1, F(log.level), level_choices, NULL,
     "debug, info, warn or error (every program)"},

    {"programme", "name", T_STR, 1, CONF_PROGRAMME_NAME - 1, "antre", 1, F(programme.name), NULL,
     NULL, "the programme's name, shown on the waiting page and in the registration checklist"},
    {"programme", "sender_name", T_STR, 0, CONF_PROGRAMME_NAME - 1, "", 1, F(programme.sender_name),
     NULL, NULL,
     "whom verification emails come from, named in the checklist's hints (empty: name)"},

    {"redis", "url", T_STR, 1, CONF_STR - 1, "embedded", 0, F(redis.url), NULL, check_redis_url,
     "embedded (a private redis-server), redis://[user[:password]@]host[:port][/db] or unix:/path"},
    {"redis", "timeout_ms", T_INT, 10, 60000, "1000", 0, F(redis.timeout_ms), NULL, NULL,
     "every Redis command and connect times out after this"},
    {"redis", "max_pending", T_INT, 1, 1000000, "10000", 0, F(redis.max_pending), NULL, NULL,
     "commands in flight per process; above it requests get 503"},
    {"redis", "appendfsync", T_ENUM, 0, 0, "everysec", 0, F(redis.appendfsync), fsync_choices, NULL,
     "embedded Redis AOF fsync policy: everysec or always"},
    {"redis", "server_bin", T_STR, 1, CONF_STR - 1, "redis-server", 0, F(redis.server_bin), NULL,
     NULL, "embedded: the redis-server program"},
    {"redis", "dir", T_STR, 1, CONF_STR - 1, "var/redis", 0, F(redis.dir), NULL, NULL,
     "embedded: data directory (AOF, unix socket, log)"},

    {"upload", "max_bytes", T_SIZE, 1024, 1073741824.0, "10M", 1, F(upload.max_bytes), NULL, NULL,
     "largest KTP/selfie photo accepted (413 above it); larger than store_max_bytes is shrunk"},
    {"upload", "max_concurrent", T_INT, 1, 100000, "50", 1, F(upload.max_concurrent), NULL, NULL,
     "uploads in progress per gateway process; above it 503 + Retry-After"},
    {"upload", "spool_max_bytes", T_SIZE, 1048576, 1099511627776.0, "512M", 1,
     F(upload.spool_max_bytes), NULL, NULL,
     "bytes being received or waiting for a worker, per gateway process; above it 503"},
    {"upload", "spool_dir", T_STR, 1, CONF_STR - 1, "var/spool", 0, F(upload.spool_dir), NULL, NULL,
     "where uploads are received (fsynced before 202)"},
    {"upload", "store_dir", T_STR, 1, CONF_STR - 1, "var/store", 0, F(upload.store_dir), NULL, NULL,
     "where the worker stores checked documents by SHA-256"},
    {"upload", "store_max_bytes", T_SIZE, 1024, 1073741824.0, "2M", 1, F(upload.store_max_bytes),
     NULL, NULL, "stored documents are shrunk to at most this"},
    {"upload", "min_width", T_INT, 1, 100000, "600", 1, F(upload.min_width), NULL, NULL,
     "smallest photo width in pixels"},
    {"upload", "min_height", T_INT, 1, 100000, "400", 1, F(upload.min_height), NULL, NULL,
     "smallest photo height in pixels"},
    {"upload", "max_pixels", T_SIZE, 1, 1073741824.0, "50000000", 1, F(upload.max_pixels), NULL,
     NULL, "largest photo in pixels (decompression bombs are refused)"},
    {"upload", "reject_blurry", T_BOOL, 0, 0, "no", 1, F(upload.reject_blurry), NULL, NULL,
     "yes: a photo warned blurry is rejected instead of accepted with the warning"},
    {"upload", "min_sharpness", T_DOUBLE, 0, 1e6, "50", 1, F(upload.min_sharpness), NULL, NULL,
     "below it a photo is warned blurry (variance of the Laplacian, grey, long side 640)"},
    {"upload", "min_brightness", T_DOUBLE, 0, 255, "60", 1, F(upload.min_brightness), NULL, NULL,
     "mean grey level (0-255) below which a photo is warned too_dark"},
    {"upload", "max_brightness", T_DOUBLE, 0, 255, "215", 1, F(upload.max_brightness), NULL, NULL,
     "mean grey level (0-255) above which a photo is warned overexposed"},
    {"upload", "ktp_aspect_tolerance", T_DOUBLE, 0, 10, "0.25", 1, F(upload.ktp_aspect_tolerance),
     NULL, NULL, "KTP photo warned when its side ratio is this far (relative) from a card's 1.586"},
    {"upload", "tus_expiry_s", T_INT, 60, 2592000, "86400", 1, F(upload.tus_expiry_s), NULL, NULL,
     "unfinished resumable (tus) uploads are removed after this"},
    {"upload", "tus_idle_s", T_INT, 1, 86400, "600", 1, F(upload.tus_idle_s), NULL, NULL,
     "a resumable upload with no PATCH for this long gives its reserved bytes back (it may "
     "resume)"},
    {"upload", "tus_per_session", T_INT, 1, 1000, "4", 1, F(upload.tus_per_session), NULL, NULL,
     "unfinished resumable uploads one session may hold (one per registration and document kind)"},
    {"upload", "orphan_grace_s", T_INT, 1, 604800, "600", 1, F(upload.orphan_grace_s), NULL, NULL,
     "a spool file with no job, or whose upload is decided or replaced, is removed this old"},

    {"registration", "min_age_years", T_INT, 0, 150, "18", 1, F(registration.min_age_years), NULL,
     NULL, "youngest applicant accepted, in completed years"},
    {"registration", "max_age_years", T_INT, 0, 150, "64", 1, F(registration.max_age_years), NULL,
     NULL, "oldest applicant accepted, in completed years"},
    {"registration", "idempotency_ttl_s", T_INT, 60, 604800, "86400", 1,
     F(registration.idempotency_ttl_s), NULL, NULL,
     "how long the answer to an Idempotency-Key is kept (per session)"},

    {"verify", "code_digits", T_INT, 4, 10, "6", 1, F(verify.code_digits), NULL, NULL,
     "digits of a verification code"},
    {"verify", "code_ttl_s", T_INT, 2, 86400, "600", 1, F(verify.code_ttl_s), NULL, NULL,
     "a verification code confirms for this long after it was asked for"},
    {"verify", "resend_interval_s", T_INT, 1, 86400, "60", 1, F(verify.resend_interval_s), NULL,
     NULL, "one code per this many seconds to a destination and for a registration"},
    {"verify", "max_sends_per_day", T_INT, 1, 1000, "5", 1, F(verify.max_sends_per_day), NULL, NULL,
     "codes to a destination and for a registration in any 24 hours"},
    {"verify", "max_attempts", T_INT, 1, 100, "5", 1, F(verify.max_attempts), NULL, NULL,
     "wrong confirms after which a code is burned"},
    {"verify", "recover_per_nik_day", T_INT, 1, 1000, "3", 1, F(verify.recover_per_nik_day), NULL,
     NULL, "recovery codes asked for one NIK in any 24 hours"},
    {"verify", "recover_per_addr_hour", T_INT, 1, 1000000, "20", 1, F(verify.recover_per_addr_hour),
     NULL, NULL, "recovery requests from one client address in any hour"},

    {"worker", "processes", T_INT, 1, 64, "1", 0, F(worker.processes), NULL, NULL,
     "worker processes"},
    {"worker", "admin_listen", T_ADDR, 0, 0, "127.0.0.1:8082", 0, F(worker.admin_listen), NULL,
     NULL, "worker admin listener (/metrics)"},
    {"worker", "drain_timeout_ms", T_INT, 0, 600000, "10000", 1, F(worker.drain_timeout_ms), NULL,
     NULL, "on shutdown, how long jobs in hand may finish"},
    {"worker", "admin_token_file", T_STR, 0, CONF_STR - 1, "", 1, F(worker.admin_token_file), NULL,
     NULL,
     "file holding the bearer token /metrics needs (empty: no token; keep admin_listen on "
     "loopback)"},
    {"worker", "photo_threads", T_INT, 0, 64, "0", 0, F(worker.photo_threads), NULL, NULL,
     "threads checking photos in each worker process (0: the online CPUs, at most 4)"},

    {"downstream", "url", T_STR, 0, CONF_STR - 1, "", 1, F(downstream.url), NULL,
     check_downstream_url,
     "where registrations are POSTed (http:// or https://); empty: accepted locally"},
    {"downstream", "timeout_ms", T_INT, 100, 600000, "10000", 1, F(downstream.timeout_ms), NULL,
     NULL, "one delivery attempt, connect included; a timeout is retried"},
    {"downstream", "connect_timeout_ms", T_INT, 100, 600000, "3000", 1,
     F(downstream.connect_timeout_ms), NULL, NULL, "TCP and TLS connect of one attempt"},
    {"downstream", "max_response_bytes", T_SIZE, 1024, 16777216.0, "64K", 1,
     F(downstream.max_response_bytes), NULL, NULL,
     "longest answer read from the downstream; a longer one is a failed attempt"},
    {"downstream", "signing_key_file", T_STR, 0, CONF_STR - 1, "", 0,
     F(downstream.signing_key_file), NULL, NULL,
     "key file (as secret_file) whose first key signs each body (X-Antre-Signature); empty: none"},

    {"smtp", "url", T_STR, 0, CONF_STR - 1, "", 1, F(smtp.url), NULL, check_smtp_url,
     "the mail server: smtps://host:465 (TLS from the start) or smtp://host:587; empty: no email"},
    {"smtp", "starttls", T_BOOL, 0, 0, "yes", 1, F(smtp.starttls), NULL, NULL,
     "an smtp:// URL must switch to TLS with STARTTLS (no: plain text, for a relay on this host)"},
    {"smtp", "login_file", T_STR, 0, CONF_STR - 1, "", 0, F(smtp.login_file), NULL, NULL,
     "file whose first line is user:password for the mail server; empty: no login"},
    {"smtp", "from", T_STR, 0, CONF_STR - 1, "", 1, F(smtp.from), NULL, NULL,
     "the sender's address (its domain names the Message-ID); the name is [programme] "
     "sender_name"},
    {"smtp", "dkim_domain", T_STR, 0, CONF_STR - 1, "", 0, F(smtp.dkim_domain), NULL, NULL,
     "the DKIM signing domain (d=); empty: mail is not signed"},
    {"smtp", "dkim_selector", T_STR, 0, 63, "", 0, F(smtp.dkim_selector), NULL, NULL,
     "the DKIM selector (s=): the public key is at SELECTOR._domainkey.DOMAIN"},
    {"smtp", "dkim_key_file", T_STR, 0, CONF_STR - 1, "", 0, F(smtp.dkim_key_file), NULL, NULL,
     "the RSA private key (PEM) that signs (rsa-sha256, relaxed/relaxed)"},
    {"smtp", "templates_dir", T_STR, 1, CONF_STR - 1, "conf/templates", 0, F(smtp.templates_dir),
     NULL, NULL, "where verify-code.LANG.subject, .txt, .html and .sms are (LANG: id, en)"},
    {"smtp", "timeout_ms", T_INT, 1000, 600000, "30000", 1, F(smtp.timeout_ms), NULL, NULL,
     "one send, connect included; a timeout is retried"},
    {"smtp", "rate", T_DOUBLE, 0, 1e6, "0", 1, F(smtp.rate), NULL, NULL,
     "emails sent per second, shared by every worker process (0: unlimited)"},

    {"sms", "url", T_STR, 0, CONF_STR - 1, "", 1, F(sms.url), NULL, check_downstream_url,
     "the SMS provider's API (http:// or https://); empty: no SMS"},
    {"sms", "method", T_ENUM, 0, 0, "POST", 1, F(sms.method), sms_method_choices, NULL,
     "the HTTP method of a send"},
    {"sms", "headers_file", T_STR, 0, CONF_STR - 1, "", 0, F(sms.headers_file), NULL, NULL,
     "file of `Name: value` lines sent with every request (an API key stays out of this file)"},
    {"sms", "body_template", T_STR, 0, CONF_STR - 1,
     "{\"to\":\"{{number}}\",\"text\":\"{{text}}\",\"reference\":\"{{reference}}\"}", 1,
     F(sms.body_template), NULL, NULL,
     "the JSON body; {{number}}, {{text}} and {{reference}} (the verification id) are filled in"},
    {"sms", "id_field", T_STR, 0, 63, "message_id", 1, F(sms.id_field), NULL, NULL,
     "the field of the provider's JSON answer holding its message id (a.b for a nested one)"},
    {"sms", "timeout_ms", T_INT, 100, 600000, "10000", 1, F(sms.timeout_ms), NULL, NULL,
     "one request, connect included; a timeout is retried"},
    {"sms", "rate", T_DOUBLE, 0, 1e6, "0", 1, F(sms.rate), NULL, NULL,
     "SMS sent per second, shared by every worker process (0: unlimited)"},

/* [queue.NAME]: one block of rows per queue (I is its enum job_queue), all reloadable. */
/* clang-format off */
#define QROW(sec, i, field, type, lo, hi, def, help) \
    {sec, #field, type, lo, hi, def, 1, F(queue[i].field), NULL, NULL, help}
#define QUEUE_ROWS(sec, i, rate_def, conc_def) \
    QROW(sec, i, rate, T_DOUBLE, 0, 1e6, rate_def, \
         "jobs started per second, shared by every worker process (0: unlimited)"), \
    QROW(sec, i, concurrency, T_INT, 1, 10000, conc_def, \
         "jobs in hand at once, per worker process"), \
    QROW(sec, i, max_attempts, T_INT, 1, 1000, "8", \
         "deliveries before a job moves to the dead-letter stream"), \
    QROW(sec, i, visibility_timeout_s, T_INT, 1, 86400, "60", \
         "a job idle this long in a worker's hands is taken over by another"), \
    QROW(sec, i, backoff_base_ms, T_INT, 1, 3600000, "500", \
         "first retry delay, doubled per attempt, with jitter"), \
    QROW(sec, i, backoff_max_ms, T_INT, 1, 86400000, "60000", "largest retry delay")
    QUEUE_ROWS("queue.upload", 0, "0", "4"),
    QUEUE_ROWS("queue.register", 1, "23", "16"),
    QUEUE_ROWS("queue.verify", 2, "0", "8"),
#undef QUEUE_ROWS
#undef QROW
    /* clang-format on */
};
#define NTABLE (sizeof table / sizeof table[0])

#define R(field) offsetof(struct conf_room, field), sizeof(((struct conf_room *)0)->field)
/* [room.NAME]: every directive may change on reload (rooms may also be added or removed). */
static const struct directive room_table[] = {
    {"room.*", "mode", T_ENUM, 0, 0, "fifo", 1, R(mode), mode_choices, NULL,
     "fifo (a fair queue), passthrough (admit everyone at once), reject (refuse joins)"},
    {"room.*", "admit_rate_per_min", T_DOUBLE, 0.01, 1e7, "600", 1, R(admit_rate_per_min), NULL,
     NULL, "applicants admitted per minute"},
    {"room.*", "admit_burst", T_INT, 0, 10000000, "0", 1, R(admit_burst), NULL, NULL,
     "admissions at once beyond the rate, e.g. an empty room's first joins (0: one second of "
     "admit_rate_per_min, at least 1)"},
    {"room.*", "max_active", T_INT, 1, 10000000, "1000", 1, R(max_active), NULL, NULL,
     "most sessions at once (active + admitted but not yet redeemed)"},
    {"room.*", "session_ttl_s", T_INT, 10, 86400, "1800", 1, R(session_ttl_s), NULL, NULL,
     "how long an admitted applicant's session lasts"},
    {"room.*", "continue_url", T_STR, 0, CONF_STR - 1, "", 1, R(continue_url), NULL,
     check_continue_url,
     "where the page sends an admitted applicant: https:// URL (http:// on loopback) or /path"},
    {"room.*", "handoff_key_file", T_STR, 0, CONF_STR - 1, "", 1, R(handoff_key_file), NULL, NULL,
     "key file (as secret_file) signing the hand-off to a continue_url of another origin"},
    {"room.*", "redeem_window_s", T_INT, 1, 86400, "300", 1, R(redeem_window_s), NULL, NULL,
     "an admitted ticket must be redeemed within this, or it expires (410)"},
    {"room.*", "paused", T_BOOL, 0, 0, "no", 1, R(paused), NULL, NULL,
     "yes: admit no one for now (joins still get places)"},
    {"room.*", "prequeue_from", T_TIME, 0, 0, "", 1, R(prequeue_from), NULL, NULL,
     "RFC 3339; from then until opens_at joiners get pre-queue tickets, shuffled at opening"},
    {"room.*", "opens_at", T_TIME, 0, 0, "", 1, R(opens_at), NULL, NULL,
     "RFC 3339; admission starts (empty: open now)"},
    {"room.*", "closes_at", T_TIME, 0, 0, "", 1, R(closes_at), NULL, NULL,
     "RFC 3339; joins refused from then on (empty: never)"},
    {"room.*", "applicant_key_file", T_STR, 0, CONF_STR - 1, "", 1, R(applicant_key_file), NULL,
     NULL,
     "verifies applicant tokens (JWT) that bind a join to one applicant: a PEM public key "
     "(RS256/ES256) or a shared secret (HS256); empty: joins naming an applicant are refused"},
    {"room.*", "applicant_audience", T_STR, 0, CONF_STR - 1, "", 1, R(applicant_audience), NULL,
     NULL, "the aud claim an applicant token must carry (empty: the room's name)"},
};
#define NROOMTABLE (sizeof room_table / sizeof room_table[0])

const struct conf_directive_info *conf_directive_at(size_t i)
{
    static struct conf_directive_info info;
    const struct directive *d;
    if (i < NTABLE) d = &table[i];
    else if (i < NTABLE + NROOMTABLE) d = &room_table[i - NTABLE];
    else return NULL;
    info.section = d->section;
    info.name = d->name;
    info.def = d->def;
    info.help = d->help;
    info.reloadable = d->reloadable;
    return &info;
}

const struct conf_room *conf_room_find(const struct conf *c, const char *name, size_t len)
{
    for (int i = 0; i < c->nrooms; i++)
        if (strlen(c->rooms[i].name) == len && memcmp(c->rooms[i].name, name, len) == 0)
            return &c->rooms[i];
    return NULL;
}

enum conf_room_mode conf_room_mode(const struct conf_room *r)
{
    if (strcmp(r->mode, "passthrough") == 0) return ROOM_MODE_PASSTHROUGH;
    if (strcmp(r->mode, "reject") == 0) return ROOM_MODE_REJECT;
    return ROOM_MODE_FIFO;
}

int conf_time_parse(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return -1;
    const char *p = s + n;
    int frac_ms = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3) frac_ms = frac_ms * 10 + (*p - '0');
        if (!digits) return -1;
        while (digits < 3) frac_ms *= 10, digits++;
    }
    long off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5 || oh > 23 || om > 59)
            return -1;
        off = (oh * 60L + om) * 60L * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p) return -1;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (tm.tm_mday != d) return -1; /* 31 February and friends */
    *ms = ((int64_t)t - off) * 1000 + frac_ms;
    return 0;
}

/* The client's own parser (rconn.h), so that `-t` accepts exactly the URLs the client does. */
static int check_redis_url(const char *v, char *err, size_t errlen)
{
    return rconn_url_parse(v, NULL, err, errlen);
}

static int check_downstream_url(const char *v, char *err, size_t errlen)
{
    if (!v[0] || !strncasecmp(v, "http://", 7) || !strncasecmp(v, "https://", 8)) return 0;
    /* The value is not quoted back: a URL may carry credentials. */
    snprintf(err, errlen, "must start with http:// or https:// (or be empty)");
    return -1;
}

static int check_smtp_url(const char *v, char *err, size_t errlen)
{
    if (!v[0] || !strncasecmp(v, "smtp://", 7) || !strncasecmp(v, "smtps://", 8)) return 0;
    snprintf(err, errlen, "must start with smtp:// or smtps:// (or be empty)");
    return -1;
}

/* A loopback host of an http:// continue_url: localhost, 127.0.0.0/8 or [::1]. */
static int loopback_host(const char *h, size_t n)
{
    if ((n == 9 && !memcmp(h, "localhost", 9)) || (n == 5 && !memcmp(h, "[::1]", 5))) return 1;
    char buf[16];
    struct in_addr a;
    if (n >= sizeof buf) return 0;
    memcpy(buf, h, n);
    buf[n] = 0;
    return inet_pton(AF_INET, buf, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* [room.*] continue_url: empty, a same-origin path, or an absolute URL whose origin is written
 * as browsers write location.origin (it becomes the hand-off token's audience, compared as
 * text by the site). The fragment is the gateway's, for the token. */
static int check_continue_url(const char *v, char *err, size_t errlen)
{
    if (!v[0]) return 0;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr("\"'<>\\`#{}|^", *p)) {
            snprintf(err, errlen,
                     "must not hold spaces, quotes, < > \\ ` { } | ^, control characters or a "
                     "fragment (#: the hand-off token goes there)");
            return -1;
        }
    if (v[0] == '/') {
        if (v[1] == '/') {
            snprintf(err, errlen, "a path must not start with // (that names another host)");
            return -1;
        }
        return 0;
    }
    int https = !strncmp(v, "https://", 8);
    if (!https && strncmp(v, "http://", 7) != 0) {
        snprintf(err, errlen,
                 "must be an https:// URL, an http:// URL on a loopback host, or a path "
                 "starting with / (lowercase scheme)");
        return -1;
    }
    const char *host = v + (https ? 8 : 7);
    size_t alen = strcspn(host, "/?");
    size_t hlen = alen;
    if (host[0] == '[') {
        const char *close = memchr(host, ']', alen);
        hlen = close ? (size_t)(close - host) + 1 : alen;
    } else {
        const char *colon = memchr(host, ':', alen);
        if (colon) hlen = (size_t)(colon - host);
    }
    const char *port = host + hlen;
    size_t plen = alen - hlen;
    int bad_host = hlen == 0 || memchr(host, '@', alen) != NULL;
    for (size_t i = 0; i < hlen && !bad_host; i++) bad_host = host[i] >= 'A' && host[i] <= 'Z';
    int bad_port = plen && (plen < 2 || port[0] != ':' || plen > 6 ||
                            strspn(port + 1, "0123456789") < plen - 1 || port[1] == '0' ||
                            atoi(port + 1) > 65535);
    if (bad_host || bad_port) {
        snprintf(err, errlen,
                 "the origin must be written as browsers write it: a lowercase host, no user or "
                 "password, a port only when it is not the scheme's default");
        return -1;
    }
    if ((https && plen == 4 && !memcmp(port, ":443", 4)) ||
        (!https && plen == 3 && !memcmp(port, ":80", 3))) {
        snprintf(err, errlen, "leave out the scheme's default port (%.*s)", (int)plen, port);
        return -1;
    }
    if ((size_t)(host - v) + alen > 100) {
        snprintf(err, errlen, "the origin (scheme://host:port) is longer than 100 characters");
        return -1;
    }
    if (!https && !loopback_host(host, hlen)) {
        snprintf(err, errlen,
                 "http:// only for a loopback host (localhost, 127.x.x.x, [::1]): "
                 "use https://");
        return -1;
    }
    return 0;
}

int conf_addr_parse(struct conf_addr *a, const char *text, char *err, size_t errlen)
{
    char host[CONF_ADDR];
    const char *port;
    if (strlen(text) >= sizeof a->text) {
        snprintf(err, errlen, "address too long");
        return -1;
    }
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "expected [v6addr]:port");
            return -1;
        }
        size_t n = (size_t)(close - text - 1);
        memcpy(host, text + 1, n);
        host[n] = 0;
        port = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon) {
            snprintf(err, errlen, "expected host:port");
            return -1;
        }
        size_t n = (size_t)(colon - text);
        memcpy(host, text, n);
        host[n] = 0;
        port = colon + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535) {
        snprintf(err, errlen, "bad port '%s' (0-65535)", port);
        return -1;
    }
    memset(&a->sa, 0, sizeof a->sa);
    if (strcmp(host, "*") == 0 || host[0] == 0) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&a->sa;
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        s4->sin_port = htons((uint16_t)p);
        a->salen = sizeof *s4;
    } else if (strcmp(host, "localhost") == 0 ||
               inet_pton(AF_INET, host, &((struct sockaddr_in *)&a->sa)->sin_addr) == 1) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&a->sa;
        if (host[0] == 'l') s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)p);
        a->salen = sizeof *s4;
    } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&a->sa)->sin6_addr) == 1) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->sa;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)p);
        a->salen = sizeof *s6;
    } else {
        snprintf(err, errlen, "'%s' is not a numeric IPv4/IPv6 address, localhost or *", host);
        return -1;
    }
    snprintf(a->text, sizeof a->text, "%s", text);
    return 0;
}

/* Parse V as directive D into C. 0 ok, -1 with the reason in ERR. */
static int set_value(void *base, const struct directive *d, const char *v, char *err, size_t errlen)
{
    char *field = (char *)base + d->offset;
    char *end;
    switch (d->type) {
    case T_INT: {
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (!*v || *end || errno) {
            snprintf(err, errlen, "'%s' is not an integer", v);
            return -1;
        }
        if (n < d->min || n > d->max) {
            snprintf(err, errlen, "%lld is out of bounds [%.0f, %.0f]", n, d->min, d->max);
            return -1;
        }
        *(int *)field = (int)n;
        return 0;
    }
    case T_SIZE: {
        errno = 0;
        long long n = strtoll(v, &end, 10);
        int digits = end != v;
        long long mult = 1;
        if (*end == 'k' || *end == 'K') mult = 1024, end++;
        else if (*end == 'm' || *end == 'M') mult = 1024 * 1024, end++;
        else if (*end == 'g' || *end == 'G') mult = 1024LL * 1024 * 1024, end++;
        if (!digits || *end || errno || n < 0 || n > (long long)(d->max / (double)mult) + 1) {
            snprintf(err, errlen, "'%s' is not a size (bytes, or with k, M, G)", v);
            return -1;
        }
        n *= mult;
        if (n < d->min || n > d->max) {
            snprintf(err, errlen, "%lld is out of bounds [%.0f, %.0f]", n, d->min, d->max);
            return -1;
        }
        *(int64_t *)field = n;
        return 0;
    }
    case T_DOUBLE: {
        errno = 0;
        double x = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(x)) {
            snprintf(err, errlen, "'%s' is not a number", v);
            return -1;
        }
        if (x < d->min || x > d->max) {
            snprintf(err, errlen, "%g is out of bounds [%g, %g]", x, d->min, d->max);
            return -1;
        }
        *(double *)field = x;
        return 0;
    }
    case T_STR:
        if (strlen(v) < (size_t)d->min) {
            snprintf(err, errlen, "must not be empty");
            return -1;
        }
        if (strlen(v) > (size_t)d->max) {
            snprintf(err, errlen, "longer than %.0f bytes", d->max);
            return -1;
        }
        if (d->check && d->check(v, err, errlen) < 0) return -1;
        snprintf(field, d->size, "%s", v);
        return 0;
    case T_ENUM:
        for (const char *const *ch = d->choices; *ch; ch++)
            if (strcmp(*ch, v) == 0) {
                snprintf(field, d->size, "%s", v);
                return 0;
            }
        {
            size_t off = (size_t)snprintf(err, errlen, "'%s' is not one of:", v);
            for (const char *const *ch = d->choices; *ch && off < errlen; ch++)
                off += (size_t)snprintf(err + off, errlen - off, " %s", *ch);
        }
        return -1;
    case T_ADDR: return conf_addr_parse((struct conf_addr *)field, v, err, errlen);
    case T_BOOL:
        if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1") ||
            !strcasecmp(v, "on")) {
            *(int *)field = 1;
            return 0;
        }
        if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0") ||
            !strcasecmp(v, "off")) {
            *(int *)field = 0;
            return 0;
        }
        snprintf(err, errlen, "'%s' is not yes or no", v);
        return -1;
    case T_TIME: {
        /* The text is kept beside the value (the field after the int64 in struct conf_room). */
        int64_t ms = 0;
        if (v[0] && conf_time_parse(v, &ms) < 0) {
            snprintf(err, errlen, "'%s' is not an RFC 3339 time (2026-11-28T20:00:00+07:00)", v);
            return -1;
        }
        *(int64_t *)field = ms;
        return 0;
    }
    }
    return -1;
}

void conf_defaults(struct conf *c)
{
    char err[256];
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NTABLE; i++)
        if (set_value(c, &table[i], table[i].def, err, sizeof err) < 0) abort();
}

/* State of one load: the file is read through our own line reader so errors carry a line. */
struct load {
    struct conf *c;
    const char *path;
    struct ini_lines lines; /* the reader; lines.line is the line errors name (0: the file) */
    int errors;
    char *err;
    size_t errlen;
    unsigned char seen[NTABLE];
    int seen_line[NTABLE];
    int room_seen_line[CONF_MAX_ROOMS][NROOMTABLE];
};

static void add_error(struct load *ld, const char *section, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_error(struct load *ld, const char *section, const char *name, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    ld->errors++;
    size_t used = strlen(ld->err);
    char line[900];
    int n;
    char where[300];
    /* Checks across directives run after the file is read: they name the file, not a line. */
    if (ld->lines.line > 0) snprintf(where, sizeof where, "%s:%d", ld->path, ld->lines.line);
    else snprintf(where, sizeof where, "%s", ld->path);
    if (name) n = snprintf(line, sizeof line, "%s: [%s] %s: %s\n", where, section, name, reason);
    else n = snprintf(line, sizeof line, "%s: %s\n", where, reason);
    if (n > 0 && used + (size_t)n < ld->errlen) memcpy(ld->err + used, line, (size_t)n + 1);
}

/* ini_lines' refusals (over-long lines, syntax errors), at the line it names. */
static void refuse_line(void *arg, const char *reason) { add_error(arg, "", NULL, "%s", reason); }

/* Find or create the room of SECTION "room.NAME". NULL (error reported) when invalid. */
static struct conf_room *room_of(struct load *ld, const char *section, const char *name)
{
    const char *rn = section + 5;
    size_t len = strlen(rn);
    if (len == 0 || len >= CONF_ROOM_NAME) {
        add_error(ld, section, name, "room name must be 1-%d characters", CONF_ROOM_NAME - 1);
        return NULL;
    }
    for (size_t i = 0; i < len; i++)
        if (!((rn[i] >= 'a' && rn[i] <= 'z') || (rn[i] >= '0' && rn[i] <= '9') || rn[i] == '-' ||
              rn[i] == '_')) {
            add_error(ld, section, name, "room name may hold only a-z, 0-9, - and _");
            return NULL;
        }
    struct conf *c = ld->c;
    for (int i = 0; i < c->nrooms; i++)
        if (strcmp(c->rooms[i].name, rn) == 0) return &c->rooms[i];
    if (c->nrooms == CONF_MAX_ROOMS) {
        add_error(ld, section, name, "more than %d rooms", CONF_MAX_ROOMS);
        return NULL;
    }
    struct conf_room *r = &c->rooms[c->nrooms++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", rn);
    char err[256];
    for (size_t i = 0; i < NROOMTABLE; i++)
        if (set_value(r, &room_table[i], room_table[i].def, err, sizeof err) < 0) abort();
    return r;
}

static void time_text(struct conf_room *r, const char *name, const char *value)
{
    char *dst = !strcmp(name, "prequeue_from") ? r->prequeue_from_text
                : !strcmp(name, "opens_at")    ? r->opens_at_text
                : !strcmp(name, "closes_at")   ? r->closes_at_text
                                               : NULL;
    if (dst) snprintf(dst, sizeof r->opens_at_text, "%s", value);
}

static int on_room_directive(struct load *ld, const char *section, const char *name,
                             const char *value)
{
    struct conf_room *r = room_of(ld, section, name);
    if (!r) return 1;
    int ri = (int)(r - ld->c->rooms);
    for (size_t i = 0; i < NROOMTABLE; i++) {
        if (strcmp(room_table[i].name, name) != 0) continue;
        if (ld->room_seen_line[ri][i]) {
            add_error(ld, section, name, "set twice (first at line %d)", ld->room_seen_line[ri][i]);
            return 1;
        }
        ld->room_seen_line[ri][i] = ld->lines.line;
        char reason[400];
        if (set_value(r, &room_table[i], value, reason, sizeof reason) < 0)
            add_error(ld, section, name, "%s", reason);
        else if (room_table[i].type == T_TIME) time_text(r, name, value);
        return 1;
    }
    add_error(ld, section, name, "unknown directive");
    return 1;
}

static int on_directive(void *user, const char *section, const char *name, const char *value)
{
    struct load *ld = user;
    if (!name) return 1; /* a section header alone */
    if (strncmp(section, "room.", 5) == 0) return on_room_directive(ld, section, name, value);
    int known_section = 0;
    for (size_t i = 0; i < NTABLE; i++) {
        if (strcmp(table[i].section, section) != 0) continue;
        known_section = 1;
        if (strcmp(table[i].name, name) != 0) continue;
        if (ld->seen[i]) {
            add_error(ld, section, name, "set twice (first at line %d)", ld->seen_line[i]);
            return 1;
        }
        ld->seen[i] = 1;
        ld->seen_line[i] = ld->lines.line;
        char reason[400];
        if (set_value(ld->c, &table[i], value, reason, sizeof reason) < 0)
            add_error(ld, section, name, "%s", reason);
        return 1;
    }
    if (!section[0]) add_error(ld, "", name, "directive outside any section");
    else if (!known_section) add_error(ld, section, name, "unknown section");
    else add_error(ld, section, name, "unknown directive");
    return 1; /* keep going: report every error */
}

/* Is A a loopback address (127.0.0.0/8, ::1, or ::ffff:127.x.x.x)? */
static int addr_is_loopback(const struct conf_addr *a)
{
    if (a->sa.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->sa;
        return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    }
    if (a->sa.ss_family == AF_INET6) {
        const struct in6_addr *x = &((const struct sockaddr_in6 *)&a->sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(x) || (IN6_IS_ADDR_V4MAPPED(x) && x->s6_addr[12] == 127);
    }
    return 0;
}

/* An admin listener that anyone on the network can reach must ask for a token: refused, naming
 * the admin_listen line, when it is not on loopback and no admin_token_file is set. */
static void check_admin_open(struct load *ld, const char *section, const struct conf_addr *a,
                             const char *token_file)
{
    if (token_file[0] || addr_is_loopback(a)) return;
    for (size_t i = 0; i < NTABLE; i++)
        if (!strcmp(table[i].section, section) && !strcmp(table[i].name, "admin_listen"))
            ld->lines.line = ld->seen_line[i];
    add_error(ld, section, "admin_listen",
              "%s is not a loopback address and admin_token_file is not set: anyone who reaches "
              "it could use the admin listener without a token (set admin_token_file, or listen "
              "on 127.0.0.1)",
              a->text);
    ld->lines.line = 0;
}

/* Checks that involve more than one directive. */
static void check_whole(struct load *ld)
{
    struct conf *c = ld->c;
    ld->lines.line = 0;
    check_admin_open(ld, "gateway", &c->gateway.admin_listen, c->gateway.admin_token_file);
    check_admin_open(ld, "worker", &c->worker.admin_listen, c->worker.admin_token_file);
    if (c->gateway.max_url_bytes > c->gateway.max_header_bytes)
        add_error(ld, "gateway", "max_url_bytes", "larger than max_header_bytes (%d)",
                  c->gateway.max_header_bytes);
    if (strcmp(c->gateway.listen.text, c->gateway.admin_listen.text) == 0)
        add_error(ld, "gateway", "admin_listen", "same address as listen");
    if (c->registration.min_age_years > c->registration.max_age_years)
        add_error(ld, "registration", "min_age_years", "larger than max_age_years (%d)",
                  c->registration.max_age_years);
    for (int i = 0; i < c->nrooms; i++) {
        const struct conf_room *r = &c->rooms[i];
        char sec[64];
        snprintf(sec, sizeof sec, "room.%s", r->name);
        if (r->prequeue_from && !r->opens_at) add_error(ld, sec, "prequeue_from", "needs opens_at");
        if (r->prequeue_from && r->opens_at && r->prequeue_from >= r->opens_at)
            add_error(ld, sec, "prequeue_from", "must be before opens_at");
        if (r->closes_at && r->opens_at && r->closes_at <= r->opens_at)
            add_error(ld, sec, "closes_at", "must be after opens_at");
        if (r->continue_url[0] && r->continue_url[0] != '/' && !r->handoff_key_file[0])
            add_error(ld, sec, "continue_url", "another origin: needs handoff_key_file");
    }
}

int conf_load(struct conf *c, const char *path, char *err, size_t errlen)
{
    struct load ld;
    memset(&ld, 0, sizeof ld);
    err[0] = 0;
    conf_defaults(c);
    snprintf(c->path, sizeof c->path, "%s", path);
    ld.c = c;
    ld.path = path;
    ld.err = err;
    ld.errlen = errlen;
    /* Indentation is stripped: an indented line is a directive of its own, never the
     * continuation of the previous value. */
    ld.lines.refuse = refuse_line;
    ld.lines.arg = &ld;
    if (ini_lines_parse(&ld.lines, path, on_directive, &ld) < 0) {
        snprintf(err, errlen, "%s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    check_whole(&ld);
    return ld.errors ? -1 : 0;
}

int conf_reload_merge(const struct conf *old, struct conf *newc, char *note, size_t notelen)
{
    int changed = 0;
    size_t used = 0;
    note[0] = 0;
    for (size_t i = 0; i < NTABLE; i++) {
        const struct directive *d = &table[i];
        if (d->reloadable) continue;
        const char *o = (const char *)old + d->offset;
        char *n = (char *)newc + d->offset;
        int differs = d->type == T_ADDR ? strcmp(((const struct conf_addr *)o)->text,
                                                 ((struct conf_addr *)n)->text) != 0
                      : (d->type == T_STR || d->type == T_ENUM) ? strcmp(o, n) != 0
                                                                : memcmp(o, n, d->size) != 0;
        if (!differs) continue;
        changed++;
        memcpy(n, o, d->size);
        int w = snprintf(note + used, notelen - used,
                         "[%s] %s: changed in the file; takes effect after a restart\n", d->section,
                         d->name);
        if (w > 0 && used + (size_t)w < notelen) used += (size_t)w;
    }
    return changed;
}
