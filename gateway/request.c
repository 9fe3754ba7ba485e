/* request.c: http-parser driven request parsing with antre's limits (see request.h).
 *
 * Why our own checks on top of http-parser: its only header limit is a compile-time 80 KB, it
 * has no URL or header-count limit, and request smuggling defences (Content-Length together with
 * Transfer-Encoding, two differing Content-Lengths, a Transfer-Encoding other than chunked) must
 * be explicit and must close the connection, whatever the parser version tolerates. */
#include "request.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { PAUSE_NONE, PAUSE_HEAD, PAUSE_COMPLETE };

#define ARENA_MIN 512

static int fail(struct request *r, int status, const char *code, const char *reason)
{
    if (!r->status) {
        r->status = status;
        r->code = code;
        r->reason = reason;
    }
    return -1;
}

void request_fail(struct request *r, int status, const char *code, const char *reason)
{
    fail(r, status, code, reason);
}

/* Append bytes to the arena (the item being parsed is always the last one). */
static int arena_append(struct request *r, const char *at, size_t len)
{
    size_t need = (size_t)r->arena_len + len;
    if (need > r->limits->max_header_bytes)
        return fail(r, 431, "headers_too_large", "request head larger than max_header_bytes");
    if (need > r->arena_cap) {
        size_t cap = r->arena_cap ? r->arena_cap : ARENA_MIN;
        while (cap < need) cap *= 2;
        if (cap > r->limits->max_header_bytes) cap = r->limits->max_header_bytes;
        char *a = realloc(r->arena, cap);
        if (!a) abort();
        r->arena = a;
        r->arena_cap = (uint32_t)cap;
    }
    memcpy(r->arena + r->arena_len, at, len);
    r->arena_len += (uint32_t)len;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct request *r = p->data;
    if ((size_t)r->url_len + len > r->limits->max_url_bytes)
        return fail(r, 414, "uri_too_long", "request target longer than max_url_bytes");
    if (r->url_len == 0) r->url_off = r->arena_len;
    if (arena_append(r, at, len) < 0) return -1;
    r->url_len += (uint32_t)len;
    return 0;
}

/* Trailer fields of a chunked body come after the head, whose URL and headers handlers have
 * already borrowed: they are counted against the head limit but never stored (storing could
 * move the arena under those pointers), and they carry no meaning for us. */
static int trailer_bytes(struct request *r, size_t len)
{
    r->trailer_bytes += len;
    if (r->trailer_bytes > r->limits->max_header_bytes)
        return fail(r, 431, "headers_too_large", "chunked trailers larger than max_header_bytes");
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct request *r = p->data;
    if (r->head_done) return trailer_bytes(r, len);
    if (r->nheaders == 0 || r->in_value) {
        if (r->nheaders >= r->limits->max_headers)
            return fail(r, 431, "too_many_headers", "more request headers than max_headers");
        if (r->nheaders == r->headers_cap) {
            int cap = r->headers_cap ? r->headers_cap * 2 : 16;
            if (cap > r->limits->max_headers) cap = r->limits->max_headers;
            struct request_header *h = realloc(r->headers, (size_t)cap * sizeof *h);
            if (!h) abort();
            r->headers = h;
            r->headers_cap = cap;
        }
        struct request_header *h = &r->headers[r->nheaders++];
        h->name_off = r->arena_len;
        h->name_len = 0;
        h->value_off = 0;
        h->value_len = 0;
        r->in_value = 0;
    }
    /* Only token characters in a name: "Transfer-Encoding : chunked" must not be read as
     * chunked by the parser while our checks look for an exact name (RFC 9112 5.1). */
    static unsigned char token_char[256];
    if (!token_char['a']) {
        for (int ch = 0x21; ch < 0x7f; ch++) token_char[ch] = 1;
        for (const char *d = "\"(),/:;<=>?@[\\]{}"; *d; d++) token_char[(unsigned char)*d] = 0;
    }
    for (size_t i = 0; i < len; i++)
        if (!token_char[(unsigned char)at[i]])
            return fail(r, 400, "bad_request", "invalid character in a header name");
    if (arena_append(r, at, len) < 0) return -1;
    r->headers[r->nheaders - 1].name_len += (uint32_t)len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct request *r = p->data;
    if (r->head_done) return trailer_bytes(r, len);
    struct request_header *h = &r->headers[r->nheaders - 1];
    if (!r->in_value) {
        h->value_off = r->arena_len;
        r->in_value = 1;
    }
    if (arena_append(r, at, len) < 0) return -1;
    h->value_len += (uint32_t)len;
    return 0;
}

static int name_is(const struct request *r, const struct request_header *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && strncasecmp(r->arena + h->name_off, name, n) == 0;
}

/* A header value without the optional whitespace http-parser leaves at its end. */
static size_t value_len(const struct request *r, const struct request_header *h)
{
    size_t n = h->value_len;
    while (n && (r->arena[h->value_off + n - 1] == ' ' || r->arena[h->value_off + n - 1] == '\t'))
        n--;
    return n;
}

static int value_is(const struct request *r, const struct request_header *h, const char *v)
{
    size_t n = strlen(v);
    return value_len(r, h) == n && strncasecmp(r->arena + h->value_off, v, n) == 0;
}

/* Parse a Content-Length value strictly: digits only. */
static int parse_length(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 19) return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct request *r = p->data;
    uint64_t first_len = 0;
    for (int i = 0; i < r->nheaders; i++) {
        const struct request_header *h = &r->headers[i];
        if (name_is(r, h, "content-length")) {
            uint64_t v;
            if (parse_length(r->arena + h->value_off, value_len(r, h), &v) < 0)
                return fail(r, 400, "bad_content_length", "Content-Length is not a number");
            if (r->content_length_seen++ && v != first_len)
                return fail(r, 400, "conflicting_content_length",
                            "two different Content-Length headers");
            first_len = v;
        } else if (name_is(r, h, "transfer-encoding")) {
            r->transfer_encoding_seen++;
            if (!value_is(r, h, "chunked"))
                return fail(r, 400, "unsupported_transfer_encoding",
                            "only Transfer-Encoding: chunked is accepted");
        } else if (name_is(r, h, "expect")) {
            if (value_is(r, h, "100-continue")) r->expect_continue = 1;
            else r->expect_other = 1;
        }
    }
    if (r->transfer_encoding_seen && r->content_length_seen)
        return fail(r, 400, "conflicting_length",
                    "both Content-Length and Transfer-Encoding are present");
    if (r->transfer_encoding_seen > 1)
        return fail(r, 400, "unsupported_transfer_encoding", "Transfer-Encoding repeated");
    if (p->method == HTTP_CONNECT) return fail(r, 400, "bad_request", "CONNECT is not supported");
    /* We speak no other protocol: an Upgrade request is an ordinary request whose body, if it
     * declares one, is read as a body (http-parser would otherwise stop at the head). */
    p->upgrade = 0;
    r->content_length = first_len;
    r->chunked = r->transfer_encoding_seen > 0;
    r->method = p->method;
    r->keep_alive = http_should_keep_alive(p);
    r->head_done = 1;
    http_parser_pause(p, 1);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct request *r = p->data;
    r->body_bytes += len;
    if (r->body_bytes > r->body_max)
        return fail(r, 413, "body_too_large", "request body larger than this route accepts");
    if (r->body_fn && r->body_fn(r->body_arg, at, len) < 0) {
        if (!r->status) fail(r, 500, "internal_error", "body sink failed");
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct request *r = p->data;
    r->head_done = 2;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void clear_facts(struct request *r)
{
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
    r->body_fn = NULL;
    r->body_arg = NULL;
    r->body_max = 0;
    r->body_bytes = 0;
    r->arena_len = 0;
    r->url_off = r->url_len = 0;
    r->nheaders = 0;
    r->head_bytes = 0;
    r->trailer_bytes = 0;
    r->in_value = 0;
    r->method = 0;
    r->keep_alive = 0;
    r->chunked = 0;
    r->content_length_seen = 0;
    r->transfer_encoding_seen = 0;
    r->expect_continue = 0;
    r->expect_other = 0;
    r->content_length = 0;
    r->head_done = 0;
    r->status = 0;
    r->code = NULL;
    r->reason = NULL;
}

void request_init(struct request *r, const struct request_limits *limits)
{
    r->limits = limits;
    r->arena = NULL;
    r->arena_cap = 0;
    r->headers = NULL;
    r->headers_cap = 0;
    clear_facts(r);
}

void request_reset(struct request *r) { clear_facts(r); }

void request_release(struct request *r)
{
    free(r->arena);
    free(r->headers);
    request_init(r, r->limits);
}

void request_resume(struct request *r) { http_parser_pause(&r->parser, 0); }

size_t request_footprint(const struct request *r)
{
    return r->arena_cap + (size_t)r->headers_cap * sizeof(struct request_header);
}

enum request_event request_feed(struct request *r, const char *data, size_t len, size_t *used)
{
    int was_head = r->head_done;
    size_t n = http_parser_execute(&r->parser, &settings, data, len);
    *used = n;
    if (!was_head) r->head_bytes += n;
    if (r->status) return REQUEST_ERROR;
    enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
    if (!was_head && r->head_bytes > r->limits->max_header_bytes) {
        fail(r, 431, "headers_too_large", "request head larger than max_header_bytes");
        return REQUEST_ERROR;
    }
    if (e == HPE_PAUSED) return r->head_done == 2 ? REQUEST_COMPLETE : REQUEST_HEAD;
    if (e == HPE_OK) return REQUEST_MORE;
    switch (e) {
    case HPE_HEADER_OVERFLOW: fail(r, 431, "headers_too_large", "request head too large"); break;
    case HPE_UNEXPECTED_CONTENT_LENGTH: {
        /* http-parser refuses a repeated Content-Length, and a Transfer-Encoding after a
         * Content-Length, before our own check in on_headers_complete sees them. */
        int te = 0;
        for (int i = 0; i < r->nheaders; i++) te |= name_is(r, &r->headers[i], "transfer-encoding");
        if (te) fail(r, 400, "conflicting_length", "both Content-Length and Transfer-Encoding");
        else fail(r, 400, "conflicting_content_length", "more than one Content-Length header");
        break;
    }
    case HPE_INVALID_CONTENT_LENGTH:
        fail(r, 400, "bad_content_length", "Content-Length is not a number");
        break;
    case HPE_INVALID_METHOD: fail(r, 400, "bad_request", "unknown request method"); break;
    case HPE_INVALID_VERSION: fail(r, 400, "bad_request", "bad HTTP version"); break;
    default: fail(r, 400, "bad_request", http_errno_description(e)); break;
    }
    return REQUEST_ERROR;
}

const char *request_url(const struct request *r, size_t *len)
{
    *len = r->url_len;
    return r->arena ? r->arena + r->url_off : "";
}

const char *request_path(const struct request *r, size_t *len)
{
    const char *u = request_url(r, len);
    const char *q = memchr(u, '?', *len);
    if (q) *len = (size_t)(q - u);
    return u;
}

const char *request_query(const struct request *r, size_t *len)
{
    size_t ulen;
    const char *u = request_url(r, &ulen);
    const char *q = memchr(u, '?', ulen);
    if (!q) {
        *len = 0;
        return NULL;
    }
    *len = ulen - (size_t)(q + 1 - u);
    return q + 1;
}

const char *request_header(const struct request *r, const char *name, size_t *len)
{
    for (int i = 0; i < r->nheaders; i++) {
        const struct request_header *h = &r->headers[i];
        if (name_is(r, h, name)) {
            *len = h->value_len;
            return r->arena + h->value_off;
        }
    }
    *len = 0;
    return NULL;
}

const char *request_header_next(const struct request *r, const char *name, int *pos, size_t *len)
{
    for (int i = *pos; i < r->nheaders; i++) {
        const struct request_header *h = &r->headers[i];
        if (name_is(r, h, name)) {
            *pos = i + 1;
            *len = h->value_len;
            return r->arena + h->value_off;
        }
    }
    *pos = r->nheaders;
    *len = 0;
    return NULL;
}

const char *request_method_name(const struct request *r)
{
    return http_method_str((enum http_method)r->method);
}
