/* request.c: HTTP/1.1 request parsing with antre's limits (see request.h).
 *
 * http1.c reads the syntax; this layer stores the target and the fields in one bounded arena,
 * applies max_url_bytes, max_header_bytes and max_headers as bytes arrive (414/431), and at the
 * end of the head applies the rules on what the fields mean, each refused with 400 and a close:
 *   - framing: Content-Length together with Transfer-Encoding, two Content-Lengths, a
 *     Transfer-Encoding other than exactly "chunked" (or repeated, or in HTTP/1.0: RFC 9112 6.1
 *     calls that faulty framing) - each one a way for two parsers to disagree where the body
 *     ends;
 *   - Host (RFC 9112 3.2): missing in HTTP/1.1, repeated, or not a valid uri-host[:port]; in
 *     absolute-form the target's authority replaces it;
 *   - singletons: a field the gateway reads one value of (Authorization, Cookie, Content-Type,
 *     ...) sent twice, where a front proxy may have read the other one. */
#include "request.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

static int on_target(struct request *r, const char *at, size_t len)
{
    if ((size_t)r->url_len + len > r->limits->max_url_bytes)
        return fail(r, 414, "uri_too_long", "request target longer than max_url_bytes");
    if (r->url_len == 0) r->url_off = r->arena_len;
    if (arena_append(r, at, len) < 0) return -1;
    r->url_len += (uint32_t)len;
    return 0;
}

static int on_name(struct request *r, const char *at, size_t len)
{
    if (r->field != 1) {
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
        r->field = 1;
    }
    if (arena_append(r, at, len) < 0) return -1;
    r->headers[r->nheaders - 1].name_len += (uint32_t)len;
    return 0;
}

static int on_value(struct request *r, const char *at, size_t len)
{
    struct request_header *h = &r->headers[r->nheaders - 1];
    if (r->field != 2) {
        h->value_off = r->arena_len;
        r->field = 2;
    }
    if (arena_append(r, at, len) < 0) return -1;
    h->value_len += (uint32_t)len;
    return 0;
}

static int name_is(const struct request *r, const struct request_header *h, const char *name);

/* The field line ended: its value loses the whitespace before the line end (RFC 9110 5.5).
 * A tab there after Content-Length or Transfer-Encoding is refused: http-parser, and so likely
 * other lenient parsers in front of us, does not read those values as we would. */
static int on_field_end(struct request *r)
{
    struct request_header *h = &r->headers[r->nheaders - 1];
    int tab = 0;
    if (r->field != 2) h->value_off = r->arena_len;
    r->field = 0;
    for (char c;
         h->value_len && ((c = r->arena[h->value_off + h->value_len - 1]) == ' ' || c == '\t');
         h->value_len--)
        tab |= c == '\t';
    if (tab && name_is(r, h, "content-length"))
        return fail(r, 400, "bad_content_length", "a tab after the Content-Length value");
    if (tab && name_is(r, h, "transfer-encoding"))
        return fail(r, 400, "unsupported_transfer_encoding",
                    "a tab after the Transfer-Encoding value");
    return 0;
}

static int name_is(const struct request *r, const struct request_header *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && strncasecmp(r->arena + h->name_off, name, n) == 0;
}

static int value_is(const struct request *r, const struct request_header *h, const char *v)
{
    size_t n = strlen(v);
    return h->value_len == n && strncasecmp(r->arena + h->value_off, v, n) == 0;
}

/* The fields whose meaning the head checks need, and the singletons: fields the gateway reads
 * one value of (request_header() gives the first), so a second one is refused rather than
 * leaving a front proxy and the gateway to each pick their own. */
enum field_kind {
    F_OTHER,
    F_CONTENT_LENGTH,
    F_TRANSFER_ENCODING,
    F_HOST,
    F_EXPECT,
    F_CONNECTION,
    F_SINGLETON,
};

#define FIELD(name, kind)                                                                          \
    {                                                                                              \
        name, sizeof name - 1, kind                                                                \
    }
static const struct {
    const char *name;
    size_t len;
    enum field_kind kind;
} known_fields[] = {
    FIELD("content-length", F_CONTENT_LENGTH),
    FIELD("transfer-encoding", F_TRANSFER_ENCODING),
    FIELD("host", F_HOST),
    FIELD("expect", F_EXPECT),
    FIELD("connection", F_CONNECTION),
    FIELD("authorization", F_SINGLETON),
    FIELD("cookie", F_SINGLETON),
    FIELD("content-type", F_SINGLETON),
    FIELD("origin", F_SINGLETON),
    FIELD("idempotency-key", F_SINGLETON),
    FIELD("upload-offset", F_SINGLETON),
    FIELD("upload-length", F_SINGLETON),
    FIELD("upload-metadata", F_SINGLETON),
    FIELD("upload-checksum", F_SINGLETON),
    FIELD("tus-resumable", F_SINGLETON),
};
#define NKNOWN (sizeof known_fields / sizeof known_fields[0])

static enum field_kind field_kind(const struct request *r, const struct request_header *h,
                                  size_t *which)
{
    for (size_t k = 0; k < NKNOWN; k++)
        if (h->name_len == known_fields[k].len &&
            strncasecmp(r->arena + h->name_off, known_fields[k].name, known_fields[k].len) == 0) {
            *which = k;
            return known_fields[k].kind;
        }
    return F_OTHER;
}

/* Absolute-form (RFC 9112 3.2.2): the path starts after the authority, and the authority is
 * the Host (the received Host value is ignored). */
static int absolute_form(struct request *r, struct request_header *host)
{
    size_t auth_off, auth_len, path_off;
    if (http1_absolute_target(r->arena + r->url_off, r->url_len, &auth_off, &auth_len, &path_off) <
        0)
        return fail(r, 400, "bad_request", "request target is neither a path nor an http URI");
    r->path_skip = (uint32_t)path_off;
    if (host) {
        host->value_off = r->url_off + (uint32_t)auth_off;
        host->value_len = (uint32_t)auth_len;
    }
    return 0;
}

static int head_complete(struct request *r)
{
    const struct http1_parser *p = &r->parser;
    uint64_t first_len = 0;
    int hosts = 0, close = 0, keep = 0;
    struct request_header *host = NULL;
    unsigned seen = 0; /* singletons seen, one bit per known_fields entry */
    for (int i = 0; i < r->nheaders; i++) {
        struct request_header *h = &r->headers[i];
        size_t k = 0;
        switch (field_kind(r, h, &k)) {
        case F_OTHER: break;
        case F_CONTENT_LENGTH: {
            uint64_t v;
            if (http1_content_length(r->arena + h->value_off, h->value_len, &v) < 0)
                return fail(r, 400, "bad_content_length", "Content-Length is not a number");
            if (r->content_length_seen++)
                return fail(r, 400, "conflicting_content_length",
                            "more than one Content-Length header");
            first_len = v;
            break;
        }
        case F_TRANSFER_ENCODING:
            r->transfer_encoding_seen++;
            if (!value_is(r, h, "chunked"))
                return fail(r, 400, "unsupported_transfer_encoding",
                            "only Transfer-Encoding: chunked is accepted");
            break;
        case F_HOST:
            if (hosts++) return fail(r, 400, "duplicate_header", "more than one Host header");
            host = h;
            break;
        case F_EXPECT:
            if (value_is(r, h, "100-continue")) r->expect_continue = 1;
            else r->expect_other = 1;
            break;
        case F_CONNECTION:
            close |= http1_list_has(r->arena + h->value_off, h->value_len, "close");
            keep |= http1_list_has(r->arena + h->value_off, h->value_len, "keep-alive");
            break;
        case F_SINGLETON:
            if (seen & (1u << k))
                return fail(r, 400, "duplicate_header", "a single-valued header is repeated");
            seen |= 1u << k;
            break;
        }
    }
    if (r->transfer_encoding_seen && r->content_length_seen)
        return fail(r, 400, "conflicting_length",
                    "both Content-Length and Transfer-Encoding are present");
    if (r->transfer_encoding_seen > 1)
        return fail(r, 400, "unsupported_transfer_encoding", "Transfer-Encoding repeated");
    if (r->transfer_encoding_seen && !(p->http_major == 1 && p->http_minor >= 1))
        return fail(r, 400, "unsupported_transfer_encoding",
                    "Transfer-Encoding in a request older than HTTP/1.1");
    if (p->method == HTTP1_CONNECT) return fail(r, 400, "bad_request", "CONNECT is not supported");
    char first = r->url_len ? r->arena[r->url_off] : 0;
    if (first != '/' && first != '*' && absolute_form(r, host) < 0) return -1;
    if (!host && p->http_major == 1 && p->http_minor == 1)
        return fail(r, 400, "missing_host", "an HTTP/1.1 request without Host");
    if (host && !r->path_skip && !http1_host_valid(r->arena + host->value_off, host->value_len))
        return fail(r, 400, "invalid_host", "the Host header is not a valid host");

    r->content_length = first_len;
    r->chunked = r->transfer_encoding_seen > 0;
    r->method = p->method;
    if (p->http_major == 1 && p->http_minor == 1) r->keep_alive = !close;
    else if (p->http_major == 1 && p->http_minor == 0) r->keep_alive = keep && !close;
    else r->keep_alive = 0;
    r->head_done = 1;
    if (r->chunked) http1_set_body(&r->parser, HTTP1_BODY_CHUNKED, 0);
    else if (first_len) http1_set_body(&r->parser, HTTP1_BODY_LENGTH, first_len);
    else http1_set_body(&r->parser, HTTP1_BODY_NONE, 0);
    return 0;
}

static int on_body(struct request *r, const char *at, size_t len)
{
    r->body_bytes += len;
    if (r->body_bytes > r->body_max)
        return fail(r, 413, "body_too_large", "request body larger than this route accepts");
    if (r->body_fn && r->body_fn(r->body_arg, at, len) < 0) {
        if (!r->status) fail(r, 500, "internal_error", "body sink failed");
        return -1;
    }
    return 0;
}

static void clear_facts(struct request *r)
{
    r->body_fn = NULL;
    r->body_arg = NULL;
    r->body_max = 0;
    r->body_bytes = 0;
    r->arena_len = 0;
    r->url_off = r->url_len = 0;
    r->nheaders = 0;
    r->head_bytes = 0;
    r->trailer_bytes = 0;
    r->field = 0;
    r->trailer_name_len = 0;
    r->paused = 0;
    r->path_skip = 0;
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
    http1_init(&r->parser);
    r->arena = NULL;
    r->arena_cap = 0;
    r->headers = NULL;
    r->headers_cap = 0;
    clear_facts(r);
}

void request_reset(struct request *r)
{
    /* after a refusal, a fresh start (tests and tools reuse a request that way) */
    if (r->status) http1_init(&r->parser);
    else http1_next(&r->parser);
    clear_facts(r);
}

void request_release(struct request *r)
{
    free(r->arena);
    free(r->headers);
    r->arena = NULL;
    r->arena_cap = 0;
    r->headers = NULL;
    r->headers_cap = 0;
    request_reset(r);
}

void request_resume(struct request *r)
{
    if (r->head_done == 1) r->paused = 0;
}

size_t request_footprint(const struct request *r)
{
    return r->arena_cap + (size_t)r->headers_cap * sizeof(struct request_header);
}

/* Count N raw bytes against the head limit, or (after the last chunk, the same bytes however
 * they arrive) the trailer limit.
 * Trailer fields are never stored: the URL and headers are borrowed from the arena by now,
 * and trailers carry no meaning for us. */
static int count_raw(struct request *r, size_t n)
{
    if (!r->head_done) {
        r->head_bytes += n;
        if (r->head_bytes > r->limits->max_header_bytes)
            return fail(r, 431, "headers_too_large", "request head larger than max_header_bytes");
    } else if (r->parser.in_trailer) {
        r->trailer_bytes += n;
        if (r->trailer_bytes > r->limits->max_header_bytes)
            return fail(r, 431, "headers_too_large",
                        "chunked trailers larger than max_header_bytes");
    }
    return 0;
}

/* A trailer field is discarded, but a framing field there is refused: it has no business
 * outside the head (RFC 9110 6.5.1), and a parser that honours it would frame differently. */
static int on_trailer_name(struct request *r, const char *at, size_t len)
{
    for (size_t i = 0; i < len; i++, r->trailer_name_len++)
        if (r->trailer_name_len < sizeof r->trailer_name)
            r->trailer_name[r->trailer_name_len] = at[i];
    return 0;
}

static int on_trailer_end(struct request *r)
{
    size_t n = r->trailer_name_len;
    r->trailer_name_len = 0;
    if ((n == 14 && strncasecmp(r->trailer_name, "content-length", 14) == 0) ||
        (n == 17 && strncasecmp(r->trailer_name, "transfer-encoding", 17) == 0))
        return fail(r, 400, "invalid_chunk", "a framing field in the chunked trailer");
    return 0;
}

static int parse_error(struct request *r)
{
    if (r->parser.error == HTTP1_ERR_CHUNK) return fail(r, 400, "invalid_chunk", r->parser.reason);
    return fail(r, 400, "bad_request", r->parser.reason ? r->parser.reason : "bad request");
}

enum request_event request_feed(struct request *r, const char *data, size_t len, size_t *used)
{
    size_t off = 0;
    *used = 0;
    if (r->status) return REQUEST_ERROR;
    if (r->paused) return r->head_done == 2 ? REQUEST_COMPLETE : REQUEST_HEAD;
    for (;;) {
        enum http1_event ev;
        struct http1_span sp;
        int head = !r->head_done;
        size_t n = http1_parse(&r->parser, data + off, len - off, &ev, &sp);
        off += n;
        if (ev != HTTP1_TRAILERS && count_raw(r, n) < 0) break;
        int rc = 0;
        switch (ev) {
        case HTTP1_MORE: *used = off; return REQUEST_MORE;
        case HTTP1_TARGET: rc = on_target(r, sp.at, sp.len); break;
        case HTTP1_NAME:
            rc = head ? on_name(r, sp.at, sp.len) : on_trailer_name(r, sp.at, sp.len);
            break;
        case HTTP1_VALUE: rc = head ? on_value(r, sp.at, sp.len) : 0; break;
        case HTTP1_FIELD_END: rc = head ? on_field_end(r) : on_trailer_end(r); break;
        case HTTP1_HEAD_END:
            if (head_complete(r) < 0) {
                rc = -1;
                break;
            }
            r->paused = 1;
            *used = off;
            return REQUEST_HEAD;
        case HTTP1_BODY: rc = on_body(r, sp.at, sp.len); break;
        case HTTP1_TRAILERS: break;
        case HTTP1_DONE:
            r->head_done = 2;
            r->paused = 1;
            *used = off;
            return REQUEST_COMPLETE;
        case HTTP1_ERROR: rc = parse_error(r); break;
        }
        if (rc < 0) break;
    }
    *used = off;
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
    u += r->path_skip;
    *len -= r->path_skip;
    const char *q = memchr(u, '?', *len);
    if (q) *len = (size_t)(q - u);
    if (*len == 0 && r->path_skip) {
        *len = 1;
        return "/";
    }
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

const char *request_method_name(const struct request *r) { return http1_method_name(r->method); }
