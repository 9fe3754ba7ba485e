/* sink.c: the SMS provider, the downstream registry and the mail server antre-bench plays for
 * the deployment it measures (see sink.h), on the bench's event loop.
 *
 * HTTP (evhttp: this is the bench's own sink, not the gateway, so the convenience is worth its
 * cost): POST or PUT /sms takes the worker's [sms] body_template JSON (default
 * {"to":...,"text":...,"reference":...}), keeps the code found in the text under the number and
 * answers 200 {"message_id":"sink-N"}; POST /downstream takes a registration with its
 * Idempotency-Key and answers 201 {"reference":"ds-N"}, the same reference again for a repeated
 * key (docs/operations.md, "The downstream").
 *
 * SMTP: a small plain-text server (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; the worker
 * must use `starttls = no`), lines of at most SINK_LINE_MAX bytes, messages of at most
 * SINK_MESSAGE_MAX, an idle timeout, a cap on connections. The code is read from the message's
 * text/plain part (quoted-printable or base64, as the worker's mail.c writes it; the HTML part
 * only when there is no plain one) and kept under each RCPT address.
 *
 * Destinations are kept in their normal form (validate.h: a phone as +62..., an email with its
 * domain lowercased), so an applicant finds its code under the number as it typed it (0812...).
 * Memory is bounded: both tables hold at most SINK_TABLE_MAX entries, the oldest leaving first. */
#include "sink.h"

#include "antre/codec.h"
#include "antre/conf.h"
#include "antre/validate.h"

#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define SINK_TABLE_MAX 200000         /* codes kept, and downstream keys remembered */
#define SINK_HTTP_BODY_MAX 65536      /* a request body; larger: 413 */
#define SINK_LINE_MAX 1000            /* an SMTP line, CRLF included (RFC 5321's limit) */
#define SINK_MESSAGE_MAX (256 * 1024) /* an email; larger: 552 */
#define SINK_RCPT_MAX 16              /* recipients of one message */
#define SINK_SMTP_CONNS_MAX 512       /* SMTP connections at once; more: 421 and close */
#define SINK_SMTP_ERRORS_MAX 20       /* refused commands before the connection is closed */
#define SINK_TIMEOUT_S 30             /* idle HTTP and SMTP connections are closed after it */
#define SINK_CODE_MAX 10              /* [verify] code_digits is 4 to 10 */
#define SINK_KEY_MAX 256

/* ---- a bounded table: key -> code or number, oldest out ----------------------------------- */

struct entry {
    char *key; /* NULL: a free slot */
    int32_t next;
    uint64_t num;
    char code[SINK_CODE_MAX + 1];
};

struct table {
    struct entry *ring; /* insertion order; HEAD is the next slot written */
    uint32_t cap, head;
    int32_t *buckets; /* heads of the chains, -1: empty */
    uint32_t mask;
};

static uint64_t hash_of(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int table_init(struct table *t, uint32_t cap)
{
    uint32_t n = 16;
    while (n < cap) n <<= 1;
    t->cap = cap;
    t->head = 0;
    t->mask = n - 1;
    t->ring = calloc(cap, sizeof *t->ring);
    t->buckets = malloc((size_t)n * sizeof *t->buckets);
    if (!t->ring || !t->buckets) return -1;
    for (uint32_t i = 0; i < n; i++) t->buckets[i] = -1;
    return 0;
}

static void table_free(struct table *t)
{
    if (t->ring)
        for (uint32_t i = 0; i < t->cap; i++) free(t->ring[i].key);
    free(t->ring);
    free(t->buckets);
    t->ring = NULL;
    t->buckets = NULL;
}

static struct entry *table_find(const struct table *t, const char *key)
{
    for (int32_t i = t->buckets[hash_of(key) & t->mask]; i >= 0; i = t->ring[i].next)
        if (!strcmp(t->ring[i].key, key)) return &t->ring[i];
    return NULL;
}

/* Take slot I out of its chain and free its key. */
static void table_unlink(struct table *t, int32_t i)
{
    struct entry *e = &t->ring[i];
    int32_t *link = &t->buckets[hash_of(e->key) & t->mask];
    while (*link != i) link = &t->ring[*link].next;
    *link = e->next;
    free(e->key);
    e->key = NULL;
}

/* A fresh entry for KEY, the newest: an older one of the same key is dropped, and when the
 * table is full the oldest entry leaves. */
static struct entry *table_put(struct table *t, const char *key)
{
    struct entry *old = table_find(t, key);
    if (old) table_unlink(t, (int32_t)(old - t->ring));
    int32_t i = (int32_t)t->head;
    t->head = (t->head + 1) % t->cap;
    struct entry *e = &t->ring[i];
    if (e->key) table_unlink(t, i);
    e->key = strdup(key);
    if (!e->key) abort();
    e->num = 0;
    e->code[0] = 0;
    uint32_t b = (uint32_t)(hash_of(key) & t->mask);
    e->next = t->buckets[b];
    t->buckets[b] = i;
    return e;
}

/* ---- the sinks -------------------------------------------------------------------------- */

struct smtp_conn;

struct sink {
    struct event_base *base;
    struct evhttp *http;
    struct evconnlistener *smtp;
    int http_port, smtp_port;
    struct table codes, downstream;
    struct sink_counts counts;
    struct smtp_conn *conns; /* open SMTP connections */
    int nconns;
};

/* The normal form of DEST (a phone number or an email address) into OUT. */
static void normalise(const char *dest, char *out, size_t outlen)
{
    struct validate_error e;
    int r;
    if (strchr(dest, '@')) r = validate_email(dest, 1, out, outlen, &e);
    else r = validate_phone(dest, out, outlen, &e);
    if (r != 0 || !out[0]) snprintf(out, outlen, "%s", dest);
}

static void keep_code(struct sink *s, const char *dest, const char *code)
{
    char key[SINK_KEY_MAX];
    normalise(dest, key, sizeof key);
    struct entry *e = table_put(&s->codes, key);
    snprintf(e->code, sizeof e->code, "%s", code);
}

/* The verification code in TEXT (LEN bytes) into CODE (SINK_CODE_MAX + 1 bytes): a line that is
 * only 4-10 digits (the email's code line), else the longest run of 4-10 digits (the first of
 * equals: a 6-digit code beats the programme's year and the minutes). 0, or -1 when none. */
static int code_in_text(const char *text, size_t len, char *code)
{
    size_t best = 0, best_at = 0;
    for (size_t i = 0; i < len;) {
        if (!isdigit((unsigned char)text[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && isdigit((unsigned char)text[j])) j++;
        size_t n = j - i;
        if (n >= 4 && n <= SINK_CODE_MAX) {
            size_t a = i, z = j;
            while (a > 0 && (text[a - 1] == ' ' || text[a - 1] == '\t')) a--;
            while (z < len && (text[z] == ' ' || text[z] == '\t' || text[z] == '\r')) z++;
            int alone = (a == 0 || text[a - 1] == '\n') && (z == len || text[z] == '\n');
            if (alone) {
                best = n;
                best_at = i;
                break;
            }
            if (n > best) {
                best = n;
                best_at = i;
            }
        }
        i = j;
    }
    if (!best) return -1;
    memcpy(code, text + best_at, best);
    code[best] = 0;
    return 0;
}

/* ---- HTTP: /sms and /downstream ------------------------------------------------------------ */

/* Answer REQ with STATUS and the JSON text BODY. */
static void reply_json(struct evhttp_request *req, int status, const char *reason, const char *body)
{
    struct evbuffer *out = evbuffer_new();
    if (!out) abort();
    evbuffer_add(out, body, strlen(body));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, reason, out);
    evbuffer_free(out);
}

/* Answer REQ with STATUS and {"error":"WHY"} (WHY needs no JSON escaping). */
static void reply_error(struct evhttp_request *req, int status, const char *reason, const char *why)
{
    char body[160];
    snprintf(body, sizeof body, "{\"error\":\"%s\"}", why);
    reply_json(req, status, reason, body);
}

/* The request's body as a JSON object, or NULL (answered with 400 or 413). */
static json_t *json_body(struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > SINK_HTTP_BODY_MAX) {
        reply_error(req, 413, "Payload Too Large", "body too large");
        return NULL;
    }
    json_error_t je;
    json_t *doc = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, &je);
    if (!json_is_object(doc)) {
        json_decref(doc);
        reply_error(req, 400, "Bad Request", "the body is not a JSON object");
        return NULL;
    }
    return doc;
}

/* The first of NAMES that DOC holds as a string. */
static const char *string_field(json_t *doc, const char *const *names)
{
    for (; *names; names++) {
        const char *v = json_string_value(json_object_get(doc, *names));
        if (v) return v;
    }
    return NULL;
}

static int method_is(struct evhttp_request *req, int allowed)
{
    if (evhttp_request_get_command(req) & allowed) return 1;
    reply_error(req, 405, "Method Not Allowed", "method not allowed");
    return 0;
}

static void on_sms(struct evhttp_request *req, void *arg)
{
    static const char *const number_names[] = {"to", "number", "msisdn", "phone", NULL};
    static const char *const text_names[] = {"text", "message", "body", "content", NULL};
    struct sink *s = arg;
    if (!method_is(req, EVHTTP_REQ_POST | EVHTTP_REQ_PUT)) return;
    json_t *doc = json_body(req);
    if (!doc) return;
    const char *number = string_field(doc, number_names);
    const char *text = string_field(doc, text_names);
    char code[SINK_CODE_MAX + 1];
    if (!number || !*number || !text || code_in_text(text, strlen(text), code) < 0) {
        json_decref(doc);
        reply_error(req, 400, "Bad Request", "no number, or no code in the text");
        return;
    }
    keep_code(s, number, code);
    json_decref(doc);
    char body[64];
    snprintf(body, sizeof body, "{\"message_id\":\"sink-%llu\"}",
             (unsigned long long)++s->counts.sms);
    reply_json(req, 200, "OK", body);
}

static void on_downstream(struct evhttp_request *req, void *arg)
{
    struct sink *s = arg;
    if (!method_is(req, EVHTTP_REQ_POST)) return;
    const char *key = evhttp_find_header(evhttp_request_get_input_headers(req), "Idempotency-Key");
    if (!key || !*key || strlen(key) >= SINK_KEY_MAX) {
        reply_error(req, 400, "Bad Request", "no Idempotency-Key");
        return;
    }
    json_t *doc = json_body(req);
    if (!doc) return;
    json_decref(doc);
    struct entry *e = table_find(&s->downstream, key);
    if (e) {
        s->counts.downstream_redelivered++;
    } else {
        e = table_put(&s->downstream, key);
        e->num = ++s->counts.downstream;
    }
    char body[64];
    snprintf(body, sizeof body, "{\"reference\":\"ds-%llu\"}", (unsigned long long)e->num);
    reply_json(req, 201, "Created", body);
}

static void on_other(struct evhttp_request *req, void *arg)
{
    (void)arg;
    reply_error(req, 404, "Not Found", "not found");
}

/* ---- SMTP --------------------------------------------------------------------------------- */

enum smtp_state { SMTP_COMMAND, SMTP_DATA, SMTP_CLOSING };

struct smtp_conn {
    struct sink *s;
    struct bufferevent *bev;
    struct smtp_conn *prev, *next;
    enum smtp_state state;
    int greeted, has_from, nrcpt, errors;
    char *rcpt[SINK_RCPT_MAX];
    struct evbuffer *msg;
    int too_big;
};

static void smtp_reset(struct smtp_conn *c)
{
    for (int i = 0; i < c->nrcpt; i++) free(c->rcpt[i]);
    c->nrcpt = 0;
    c->has_from = 0;
    c->too_big = 0;
    evbuffer_drain(c->msg, evbuffer_get_length(c->msg));
}

static void smtp_close(struct smtp_conn *c)
{
    smtp_reset(c);
    if (c->prev) c->prev->next = c->next;
    else c->s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->s->nconns--;
    bufferevent_free(c->bev);
    evbuffer_free(c->msg);
    free(c);
}

static void smtp_say(struct smtp_conn *c, const char *line)
{
    bufferevent_write(c->bev, line, strlen(line));
    bufferevent_write(c->bev, "\r\n", 2);
}

/* Answer, and close after it is written. */
static void smtp_say_bye(struct smtp_conn *c, const char *line)
{
    smtp_say(c, line);
    c->state = SMTP_CLOSING;
    bufferevent_disable(c->bev, EV_READ);
}

static void smtp_refuse(struct smtp_conn *c, const char *line)
{
    if (++c->errors >= SINK_SMTP_ERRORS_MAX) smtp_say_bye(c, "421 4.7.0 too many errors, closing");
    else smtp_say(c, line);
}

/* The address in "<addr> params" at P, into OUT; -1 when there is none. */
static int smtp_address(const char *p, char *out, size_t outlen)
{
    while (*p == ' ') p++;
    if (*p != '<') return -1;
    const char *end = strchr(p, '>');
    if (!end || (size_t)(end - p - 1) >= outlen) return -1;
    memcpy(out, p + 1, (size_t)(end - p - 1));
    out[end - p - 1] = 0;
    return 0;
}

/* ---- reading the message: MIME parts, quoted-printable, base64 ---- */

/* The value of header NAME in HEAD (HLEN bytes of "Name: value" lines, folded lines joined) into
 * OUT; -1 when absent. */
static int header_value(const char *head, size_t hlen, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name), o = 0;
    for (size_t i = 0; i < hlen;) {
        size_t eol = i;
        while (eol < hlen && head[eol] != '\n') eol++;
        if (eol - i > nlen && head[i + nlen] == ':' && !strncasecmp(head + i, name, nlen)) {
            size_t v = i + nlen + 1;
            for (;;) {
                for (; v < eol && o + 1 < outlen; v++)
                    if (head[v] != '\r') out[o++] = head[v];
                /* a folded line continues the value */
                if (eol + 1 < hlen && (head[eol + 1] == ' ' || head[eol + 1] == '\t')) {
                    v = eol + 1;
                    eol = v;
                    while (eol < hlen && head[eol] != '\n') eol++;
                    continue;
                }
                break;
            }
            out[o] = 0;
            return 0;
        }
        i = eol + 1;
    }
    return -1;
}

/* Parameter NAME (e.g. boundary) of a header value V, unquoted, into OUT. */
static int header_param(const char *v, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    for (const char *p = strchr(v, ';'); p; p = strchr(p + 1, ';')) {
        const char *q = p + 1;
        while (*q == ' ' || *q == '\t') q++;
        if (strncasecmp(q, name, nlen) || q[nlen] != '=') continue;
        q += nlen + 1;
        size_t n = 0;
        if (*q == '"') {
            q++;
            while (q[n] && q[n] != '"') n++;
        } else {
            while (q[n] && q[n] != ';' && q[n] != ' ' && q[n] != '\t') n++;
        }
        if (n == 0 || n >= outlen) return -1;
        memcpy(out, q, n);
        out[n] = 0;
        return 0;
    }
    return -1;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode BODY (LEN bytes) by its Content-Transfer-Encoding CTE into a new buffer (*OUTLEN
 * bytes, NUL-terminated); NULL when base64 does not decode. */
static char *decode_body(const char *body, size_t len, const char *cte, size_t *outlen)
{
    char *out = malloc(len + 1);
    if (!out) abort();
    size_t o = 0;
    if (!strcasecmp(cte, "quoted-printable")) {
        for (size_t i = 0; i < len; i++) {
            if (body[i] != '=') {
                out[o++] = body[i];
                continue;
            }
            if (i + 1 < len && body[i + 1] == '\n') {
                i++; /* a soft line break */
            } else if (i + 2 < len && body[i + 1] == '\r' && body[i + 2] == '\n') {
                i += 2;
            } else if (i + 2 < len && hexval(body[i + 1]) >= 0 && hexval(body[i + 2]) >= 0) {
                out[o++] = (char)(hexval(body[i + 1]) * 16 + hexval(body[i + 2]));
                i += 2;
            } else {
                out[o++] = '=';
            }
        }
    } else if (!strcasecmp(cte, "base64")) {
        char *chars = malloc(len + 1);
        if (!chars) abort();
        size_t n = 0;
        for (size_t i = 0; i < len; i++)
            if (!isspace((unsigned char)body[i])) chars[n++] = body[i];
        ssize_t r = codec_b64_decode(chars, n, out, len + 1);
        free(chars);
        if (r < 0) {
            free(out);
            return NULL;
        }
        o = (size_t)r;
    } else {
        memcpy(out, body, len);
        o = len;
    }
    out[o] = 0;
    *outlen = o;
    return out;
}

/* HTML's tags blanked out (in place), so that no attribute's digits pass for a code. */
static void strip_tags(char *s, size_t len)
{
    int in_tag = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '<') in_tag = 1;
        int was = in_tag;
        if (s[i] == '>') in_tag = 0;
        if (was) s[i] = ' ';
    }
}

/* The code of the MIME entity ENT (LEN bytes: headers, a blank line, the body) into CODE.
 * WANT_HTML is 0 for the first pass (text/plain only) and 1 for the fallback. DEPTH bounds
 * nested multiparts. 0, or -1 when none. */
static int entity_code(const char *ent, size_t len, int want_html, int depth, char *code)
{
    const char *sep = memmem(ent, len, "\r\n\r\n", 4), *body;
    size_t hlen;
    if (len >= 2 && ent[0] == '\r' && ent[1] == '\n') { /* no headers */
        hlen = 0;
        body = ent + 2;
    } else if (sep) {
        hlen = (size_t)(sep - ent) + 2;
        body = sep + 4;
    } else { /* headers only */
        hlen = len;
        body = ent + len;
    }
    size_t blen = len - (size_t)(body - ent);
    char type[256] = "text/plain", cte[64] = "7bit", boundary[128];
    header_value(ent, hlen, "Content-Type", type, sizeof type);
    header_value(ent, hlen, "Content-Transfer-Encoding", cte, sizeof cte);
    for (char *p = cte; *p; p++)
        if (*p == ' ' || *p == '\t') memmove(p, p + 1, strlen(p));
    const char *t = type;
    while (*t == ' ') t++;
    if (!strncasecmp(t, "multipart/", 10)) {
        if (depth >= 3 || header_param(t, "boundary", boundary, sizeof boundary) < 0) return -1;
        char delim[160];
        int dl = snprintf(delim, sizeof delim, "\r\n--%s", boundary);
        /* the first delimiter may open the body without a CRLF before it */
        const char *p = blen >= (size_t)dl - 2 && !memcmp(body, delim + 2, (size_t)dl - 2)
                            ? body - 2
                            : memmem(body, blen, delim, (size_t)dl);
        const char *end = body + blen;
        while (p && p + dl <= end) {
            const char *part = p + dl;
            if (part + 2 <= end && part[0] == '-' && part[1] == '-') break; /* the closing one */
            const char *eol = memchr(part, '\n', (size_t)(end - part));
            if (!eol) break;
            part = eol + 1;
            const char *next = memmem(part, (size_t)(end - part), delim, (size_t)dl);
            size_t plen = (size_t)((next ? next : end) - part);
            if (entity_code(part, plen, want_html, depth + 1, code) == 0) return 0;
            p = next;
        }
        return -1;
    }
    int html = !strncasecmp(t, "text/html", 9);
    if (strncasecmp(t, "text/", 5) || html != want_html) return -1;
    size_t dlen;
    char *text = decode_body(body, blen, cte, &dlen);
    if (!text) return -1;
    if (html) strip_tags(text, dlen);
    int r = code_in_text(text, dlen, code);
    free(text);
    return r;
}

/* The code of the email MSG (LEN bytes): its plain text first, else its HTML. */
static int message_code(const char *msg, size_t len, char *code)
{
    if (entity_code(msg, len, 0, 0, code) == 0) return 0;
    return entity_code(msg, len, 1, 0, code);
}

static void smtp_end_of_data(struct smtp_conn *c)
{
    if (c->too_big) {
        smtp_refuse(c, "552 5.3.4 message too big");
    } else {
        size_t len = evbuffer_get_length(c->msg);
        const char *msg = (const char *)evbuffer_pullup(c->msg, -1);
        char code[SINK_CODE_MAX + 1];
        if (msg && message_code(msg, len, code) == 0)
            for (int i = 0; i < c->nrcpt; i++) keep_code(c->s, c->rcpt[i], code);
        char line[64];
        snprintf(line, sizeof line, "250 2.0.0 queued as sink-%llu",
                 (unsigned long long)++c->s->counts.emails);
        smtp_say(c, line);
    }
    smtp_reset(c);
    c->state = SMTP_COMMAND;
}

static void smtp_data_line(struct smtp_conn *c, const char *line, size_t len)
{
    if (len == 1 && line[0] == '.') {
        smtp_end_of_data(c);
        return;
    }
    if (line[0] == '.') { /* dot-stuffing undone */
        line++;
        len--;
    }
    if (evbuffer_get_length(c->msg) + len + 2 > SINK_MESSAGE_MAX) c->too_big = 1;
    if (c->too_big) return;
    evbuffer_add(c->msg, line, len);
    evbuffer_add(c->msg, "\r\n", 2);
}

static void smtp_command(struct smtp_conn *c, char *line)
{
    char verb[5] = {0};
    for (int i = 0; i < 4 && line[i]; i++) verb[i] = (char)toupper((unsigned char)line[i]);
    if (strlen(line) > 4 && line[4] != ' ') verb[0] = 0; /* "EHLOX" is no EHLO */
    const char *arg = strlen(line) > 4 ? line + 4 : "";
    char addr[SINK_KEY_MAX];
    if (!strcmp(verb, "EHLO") || !strcmp(verb, "HELO")) {
        smtp_reset(c);
        c->greeted = 1;
        if (verb[0] == 'H') {
            smtp_say(c, "250 antre-bench");
            return;
        }
        char size[64];
        snprintf(size, sizeof size, "250-SIZE %d", SINK_MESSAGE_MAX);
        smtp_say(c, "250-antre-bench sink");
        smtp_say(c, size);
        smtp_say(c, "250-8BITMIME");
        smtp_say(c, "250 PIPELINING");
    } else if (!strcmp(verb, "MAIL")) {
        if (!c->greeted) {
            smtp_refuse(c, "503 5.5.1 EHLO first");
            return;
        }
        if (c->has_from) {
            smtp_refuse(c, "503 5.5.1 nested MAIL");
            return;
        }
        if (strncasecmp(arg, " FROM:", 6) || smtp_address(arg + 6, addr, sizeof addr) < 0) {
            smtp_refuse(c, "501 5.5.4 syntax: MAIL FROM:<address>");
            return;
        }
        const char *sz = strcasestr(arg, " SIZE=");
        if (sz && strtoull(sz + 6, NULL, 10) > SINK_MESSAGE_MAX) {
            smtp_refuse(c, "552 5.3.4 message too big");
            return;
        }
        c->has_from = 1;
        smtp_say(c, "250 2.1.0 ok");
    } else if (!strcmp(verb, "RCPT")) {
        if (!c->has_from) {
            smtp_refuse(c, "503 5.5.1 MAIL first");
            return;
        }
        if (strncasecmp(arg, " TO:", 4) || smtp_address(arg + 4, addr, sizeof addr) < 0 ||
            !addr[0]) {
            smtp_refuse(c, "501 5.5.4 syntax: RCPT TO:<address>");
            return;
        }
        if (c->nrcpt == SINK_RCPT_MAX) {
            smtp_refuse(c, "452 4.5.3 too many recipients");
            return;
        }
        c->rcpt[c->nrcpt] = strdup(addr);
        if (!c->rcpt[c->nrcpt]) abort();
        c->nrcpt++;
        smtp_say(c, "250 2.1.5 ok");
    } else if (!strcmp(verb, "DATA")) {
        if (!c->nrcpt) {
            smtp_refuse(c, "503 5.5.1 RCPT first");
            return;
        }
        c->state = SMTP_DATA;
        smtp_say(c, "354 end data with <CR><LF>.<CR><LF>");
    } else if (!strcmp(verb, "RSET")) {
        smtp_reset(c);
        smtp_say(c, "250 2.0.0 ok");
    } else if (!strcmp(verb, "NOOP")) {
        smtp_say(c, "250 2.0.0 ok");
    } else if (!strcmp(verb, "QUIT")) {
        smtp_say_bye(c, "221 2.0.0 bye");
    } else {
        smtp_refuse(c, "502 5.5.2 command not implemented");
    }
}

static void smtp_on_read(struct bufferevent *bev, void *arg)
{
    struct smtp_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (c->state != SMTP_CLOSING) {
        size_t eol_len = 0;
        struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
        size_t have = evbuffer_get_length(in);
        if ((eol.pos < 0 && have >= SINK_LINE_MAX) ||
            (eol.pos >= 0 && (size_t)eol.pos + eol_len > SINK_LINE_MAX)) {
            smtp_say_bye(c, "500 5.5.2 line too long");
            return;
        }
        if (eol.pos < 0) return;
        char line[SINK_LINE_MAX + 1];
        size_t len = (size_t)eol.pos;
        evbuffer_remove(in, line, len);
        evbuffer_drain(in, eol_len);
        line[len] = 0;
        if (c->state == SMTP_DATA) smtp_data_line(c, line, len);
        else if (memchr(line, 0, len)) smtp_refuse(c, "500 5.5.2 NUL in command");
        else smtp_command(c, line);
    }
}

static void smtp_on_write(struct bufferevent *bev, void *arg)
{
    struct smtp_conn *c = arg;
    if (c->state == SMTP_CLOSING && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        smtp_close(c);
}

static void smtp_on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct smtp_conn *c = arg;
    if (what & BEV_EVENT_TIMEOUT) {
        if (c->state == SMTP_CLOSING) {
            smtp_close(c);
            return;
        }
        smtp_say_bye(c, "421 4.4.2 timeout, closing");
        bufferevent_enable(c->bev, EV_WRITE);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) smtp_close(c);
}

static void smtp_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                           int salen, void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    struct sink *s = arg;
    if (s->nconns >= SINK_SMTP_CONNS_MAX) {
        static const char busy[] = "421 4.3.2 too many connections\r\n";
        ssize_t w = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
        evutil_closesocket(fd);
        return;
    }
    struct smtp_conn *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->s = s;
    c->msg = evbuffer_new();
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->msg || !c->bev) abort();
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    struct timeval tv = {SINK_TIMEOUT_S, 0};
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    bufferevent_setcb(c->bev, smtp_on_read, smtp_on_write, smtp_on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    smtp_say(c, "220 antre-bench sink ESMTP");
}

/* ---- start and stop ----------------------------------------------------------------------- */

static int bound_port(evutil_socket_t fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* A listener on LISTEN (host:port), or NULL with ERR set. */
static struct evconnlistener *listen_on(struct sink *s, const char *what, const char *listen,
                                        evconnlistener_cb cb, char *err, size_t errlen)
{
    struct conf_addr a;
    char why[200];
    if (conf_addr_parse(&a, listen, why, sizeof why) < 0) {
        snprintf(err, errlen, "sink: %s listen %s: %s", what, listen, why);
        return NULL;
    }
    struct evconnlistener *l =
        evconnlistener_new_bind(s->base, cb, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 1024,
                                (struct sockaddr *)&a.sa, (int)a.salen);
    if (!l) snprintf(err, errlen, "sink: %s listen %s: %s", what, listen, strerror(errno));
    return l;
}

struct sink *sink_start(struct event_base *base, const char *http_listen, const char *smtp_listen,
                        char *err, size_t errlen)
{
    struct sink *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->base = base;
    if (table_init(&s->codes, SINK_TABLE_MAX) < 0 || table_init(&s->downstream, SINK_TABLE_MAX) < 0)
        abort();
    if (http_listen) {
        struct evconnlistener *l = listen_on(s, "HTTP", http_listen, NULL, err, errlen);
        if (!l) goto fail;
        s->http = evhttp_new(base);
        if (!s->http) abort();
        /* evhttp takes the listener over: it is freed with s->http */
        if (!evhttp_bind_listener(s->http, l)) {
            evconnlistener_free(l);
            snprintf(err, errlen, "sink: HTTP listen %s: evhttp refused it", http_listen);
            goto fail;
        }
        s->http_port = bound_port(evconnlistener_get_fd(l));
        evhttp_set_max_body_size(s->http, SINK_HTTP_BODY_MAX);
        evhttp_set_max_headers_size(s->http, 16384);
        evhttp_set_timeout(s->http, SINK_TIMEOUT_S);
        evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT);
        evhttp_set_cb(s->http, "/sms", on_sms, s);
        evhttp_set_cb(s->http, "/downstream", on_downstream, s);
        evhttp_set_gencb(s->http, on_other, s);
    }
    if (smtp_listen) {
        s->smtp = listen_on(s, "SMTP", smtp_listen, smtp_on_accept, err, errlen);
        if (!s->smtp) goto fail;
        s->smtp_port = bound_port(evconnlistener_get_fd(s->smtp));
    }
    return s;
fail:
    sink_free(s);
    return NULL;
}

void sink_free(struct sink *s)
{
    if (!s) return;
    while (s->conns) smtp_close(s->conns);
    if (s->smtp) evconnlistener_free(s->smtp);
    if (s->http) evhttp_free(s->http);
    table_free(&s->codes);
    table_free(&s->downstream);
    free(s);
}

int sink_http_port(const struct sink *s) { return s->http_port; }

int sink_smtp_port(const struct sink *s) { return s->smtp_port; }

const char *sink_code_for(const struct sink *s, const char *destination)
{
    char key[SINK_KEY_MAX];
    normalise(destination, key, sizeof key);
    const struct entry *e = table_find(&s->codes, key);
    return e ? e->code : NULL;
}

void sink_counts(const struct sink *s, struct sink_counts *out) { *out = s->counts; }
