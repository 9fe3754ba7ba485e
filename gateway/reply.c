/* reply.c: answers (see reply.h).
 *
 * Why a hand-built header block: measured here, evhttp's printf-built headers and per-header
 * allocations cost most of its 0.45x of nginx. An answer is one memcpy-built block (status line,
 * headers and, when small, the body) added to the output buffer in one call. */
#include "reply.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "antre/log.h"
#include "antre/validate.h"
#include "conn.h"
#include "gateway.h"
#include "metrics.h"

const char *reply_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 460: return "Checksum Mismatch";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

void reply_header(struct conn *c, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    size_t need = (size_t)c->extra_len + nl + vl + 4;
    if (need > 4096) {
        log_warn("reply: extra headers over 4096 bytes dropped name=%s", name);
        return;
    }
    if (need > c->extra_cap) {
        size_t cap = c->extra_cap ? c->extra_cap : 128;
        while (cap < need) cap *= 2;
        char *e = realloc(c->extra, cap);
        if (!e) abort();
        c->extra = e;
        c->extra_cap = (uint16_t)cap;
    }
    char *p = c->extra + c->extra_len;
    memcpy(p, name, nl);
    p += nl;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, value, vl);
    p += vl;
    *p++ = '\r';
    *p++ = '\n';
    c->extra_len = (uint16_t)(p - c->extra);
}

#define PUT(lit) (memcpy(p, lit, sizeof lit - 1), p += sizeof lit - 1)

static char *put_uint(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do tmp[n++] = (char)('0' + v % 10), v /= 10;
    while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

void reply_raw(struct conn *c, int status, const char *content_type, const char *body, size_t len)
{
    struct gw *gw = c->gw;
    char head[1024 + 4096];
    char *p = head;
    const char *text = reply_status_text(status);
    size_t tl = strlen(text);
    PUT("HTTP/1.1 ");
    p = put_uint(p, (uint64_t)status);
    *p++ = ' ';
    memcpy(p, text, tl);
    p += tl;
    PUT("\r\nServer: antre\r\nDate: ");
    size_t dl = strlen(gw->date);
    memcpy(p, gw->date, dl);
    p += dl;
    if (content_type) {
        size_t cl = strlen(content_type);
        PUT("\r\nContent-Type: ");
        memcpy(p, content_type, cl);
        p += cl;
    }
    if (status != 204 && status != 304 && status >= 200) { /* RFC 9110 8.6 */
        PUT("\r\nContent-Length: ");
        p = put_uint(p, len);
    }
    PUT("\r\nX-Request-Id: ");
    size_t rl = strlen(c->reqid);
    memcpy(p, c->reqid, rl);
    p += rl;
    PUT("\r\n");
    if (c->extra_len) {
        memcpy(p, c->extra, c->extra_len);
        p += c->extra_len;
        c->extra_len = 0;
    }
    if (c->close_after || !c->req.keep_alive) {
        c->close_after = 1;
        PUT("Connection: close\r\n");
    } else if (c->req.parser.http_major == 1 && c->req.parser.http_minor == 0) {
        PUT("Connection: keep-alive\r\n");
    }
    PUT("\r\n");
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int with_body = !c->head_only && len > 0;
    if (with_body && len <= sizeof head - (size_t)(p - head)) {
        memcpy(p, body, len);
        p += len;
        with_body = 0;
    }
    evbuffer_add(out, head, (size_t)(p - head));
    if (with_body) evbuffer_add(out, body, len);
    c->status = status;
    conn_answered(c);
}

void reply_json(struct conn *c, int status, json_t *body)
{
    if (!body) {
        reply_raw(c, status, NULL, "", 0);
        return;
    }
    char stack[2048];
    size_t n = json_dumpb(body, stack, sizeof stack, JSON_COMPACT);
    if (n <= sizeof stack) {
        json_decref(body);
        reply_raw(c, status, "application/json", stack, n);
        return;
    }
    char *heap = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!heap) abort();
    reply_raw(c, status, "application/json", heap, strlen(heap));
    free(heap);
}

/* The JSON error answer: {"error": {"code", "message", "field"?, "retry_after_s"?, EXTRA...}}. */
static void send_error(struct conn *c, int status, const char *code, const char *field,
                       const char *msg_id, const char *msg_en, json_t *extra, int retry_after_s)
{
    json_t *err = json_object();
    json_object_set_new(err, "code", json_string(code));
    json_object_set_new(err, "message", json_string(c->lang_en ? msg_en : msg_id));
    if (field) json_object_set_new(err, "field", json_string(field));
    if (retry_after_s > 0) json_object_set_new(err, "retry_after_s", json_integer(retry_after_s));
    if (extra) {
        json_object_update(err, extra);
        json_decref(extra);
    }
    json_t *root = json_object();
    json_object_set_new(root, "error", err);
    reply_json(c, status, root);
}

static reply_form_fn form_fn;

void reply_set_form_handler(reply_form_fn fn) { form_fn = fn; }

void reply_err_full(struct conn *c, enum error_id e, const char *field, const char *msg_id,
                    const char *msg_en, json_t *extra, int retry_after_s, int refusal)
{
    const struct error_def *d = errors_at((size_t)e);
    if (!d) {
        log_error("reply: no catalogue entry id=%d", (int)e);
        d = errors_at(ERR_INTERNAL_ERROR);
    }
    if (!msg_id || !msg_en) msg_id = d->msg_id, msg_en = d->msg_en;
    if (retry_after_s <= 0) retry_after_s = d->retry_after_s;
    if (refusal == REPLY_REFUSAL_TABLE) refusal = d->refusal;
    if (refusal >= 0 && refusal < REFUSE__COUNT)
        metrics_refusal(c->gw->metrics, (enum metrics_refusal)refusal);
    if (retry_after_s > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", retry_after_s);
        reply_header(c, "Retry-After", v);
    }
    if (form_fn && conn_route_has(c, ROUTE_FORM)) {
        /* A browser without JavaScript: back to the page with the message, never JSON. */
        json_decref(extra);
        form_fn(c, d->status, msg_id, msg_en);
        return;
    }
    send_error(c, d->status, d->code, field, msg_id, msg_en, extra, retry_after_s);
}

void reply_err(struct conn *c, enum error_id e, const char *field, json_t *extra)
{
    reply_err_full(c, e, field, NULL, NULL, extra, 0, REPLY_REFUSAL_TABLE);
}

void reply_err_retry(struct conn *c, enum error_id e, const char *field, json_t *extra,
                     int retry_after_s)
{
    reply_err_full(c, e, field, NULL, NULL, extra, retry_after_s, REPLY_REFUSAL_TABLE);
}

void reply_err_msg(struct conn *c, enum error_id e, const char *field, const char *msg_id,
                   const char *msg_en, json_t *extra)
{
    reply_err_full(c, e, field, msg_id, msg_en, extra, 0, REPLY_REFUSAL_TABLE);
}

void reply_redis_refusal(struct conn *c, enum rconn_refusal why)
{
    reply_err(c, why == RCONN_REFUSED_BUDGET ? ERR_OVERLOADED : ERR_REDIS_UNAVAILABLE, NULL, NULL);
}

void reply_field_error(struct conn *c, const struct validate_error *ve, json_t *extra)
{
    if (form_fn && conn_route_has(c, ROUTE_FORM)) {
        json_decref(extra);
        form_fn(c, 422, ve->msg_id, ve->msg_en);
        return;
    }
    send_error(c, 422, ve->code, ve->field, ve->msg_id, ve->msg_en, extra, 0);
}
