/* test_request.c: unit tests of the request parser and its limits (gateway/request.c).
 *
 * The tests drive request_feed/request_resume/request_reset the way a connection does: bytes
 * arrive in pieces, what was not consumed is fed again after a pause, HEAD is answered by
 * setting a body sink and resuming, COMPLETE by resetting for the next pipelined request. The
 * same request is fed whole, byte by byte and split at every offset, and must give the same
 * result every time. */
#include "../../gateway/request.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The smallest limits the config allows, so each limit is easy to cross. */
static const struct request_limits small = {
    .max_url_bytes = 64,
    .max_header_bytes = 512,
    .max_headers = 4,
};

static const struct request_limits roomy = {
    .max_url_bytes = 4096,
    .max_header_bytes = 16384,
    .max_headers = 64,
};

/* A body sink that keeps what it gets. */
struct sink {
    char data[8192];
    size_t len;
    int calls;
    int fail_at; /* fail when this many bytes would be exceeded (0 = never) */
};

static int sink_fn(void *arg, const char *data, size_t len)
{
    struct sink *s = arg;
    s->calls++;
    if (s->fail_at && s->len + len > (size_t)s->fail_at) return -1;
    cr_assert_leq(s->len + len, sizeof s->data, "sink overflow");
    memcpy(s->data + s->len, data, len);
    s->len += len;
    return 0;
}

/* What one request came to. */
struct outcome {
    enum request_event ev; /* REQUEST_COMPLETE, REQUEST_ERROR or REQUEST_MORE (ran out) */
    int heads;             /* REQUEST_HEAD events seen */
    size_t consumed;       /* bytes of the input consumed in total */
    int status;
    char code[64];
    char url[8192];
    char method[16];
    int keep_alive, chunked, expect_continue;
    uint64_t content_length;
    struct sink body;
};

/* Feed DATA[0..LEN) to R as it would arrive: in pieces of STEP bytes, or (STEP 0) the first
 * CUT bytes then the rest, or (both 0) all at once. At HEAD a sink allowing BODY_MAX bytes is
 * set. Runs until the message completes, fails or the input runs out. Starts at offset *OFF and
 * advances it by what was consumed. */
static void run_split(struct request *r, const char *data, size_t len, size_t *off, size_t step,
                      size_t cut, uint64_t body_max, struct outcome *o)
{
    memset(o, 0, sizeof *o);
    o->ev = REQUEST_MORE;
    size_t start = *off;
    size_t arrived = step ? start + step : cut ? start + cut : len;
    if (arrived > len) arrived = len;
    /* each round either consumes a byte, lets a byte arrive, or ends: bounded */
    for (size_t rounds = 0; rounds < 4 * len + 16; rounds++) {
        if (*off == arrived) {
            if (arrived == len) break;
            arrived = step ? arrived + step : len;
            if (arrived > len) arrived = len;
            continue;
        }
        size_t used = 12345;
        enum request_event ev = request_feed(r, data + *off, arrived - *off, &used);
        cr_assert_leq(used, arrived - *off, "consumed more than given");
        *off += used;
        if (ev == REQUEST_MORE) {
            cr_assert_eq(*off, arrived, "MORE must consume everything");
            continue;
        }
        if (ev == REQUEST_HEAD) {
            o->heads++;
            cr_assert_eq(o->heads, 1, "HEAD twice");
            cr_assert_eq(r->head_done, 1);
            r->body_fn = sink_fn;
            r->body_arg = &o->body;
            r->body_max = body_max;
            request_resume(r);
            continue;
        }
        o->ev = ev;
        if (ev == REQUEST_ERROR) {
            o->status = r->status;
            snprintf(o->code, sizeof o->code, "%s", r->code ? r->code : "(null)");
        } else {
            cr_assert_eq(ev, REQUEST_COMPLETE);
            cr_assert_eq(o->heads, 1, "COMPLETE without HEAD");
            size_t ulen;
            const char *u = request_url(r, &ulen);
            cr_assert_lt(ulen, sizeof o->url);
            memcpy(o->url, u, ulen);
            o->url[ulen] = 0;
            snprintf(o->method, sizeof o->method, "%s", request_method_name(r));
            o->keep_alive = r->keep_alive;
            o->chunked = r->chunked;
            o->expect_continue = r->expect_continue;
            o->content_length = r->content_length;
        }
        break;
    }
    o->consumed = *off - start;
    if (o->heads) cr_assert_leq(o->body.len, body_max, "the sink got more than body_max");
}

static void run(struct request *r, const char *data, size_t len, size_t *off, size_t step,
                uint64_t body_max, struct outcome *o)
{
    run_split(r, data, len, off, step, 0, body_max, o);
}

/* One request from a fresh parser with LIMITS, fed in pieces of STEP. R is left as it ended
 * (the caller releases it). */
static void one(struct request *r, const struct request_limits *limits, const char *data,
                size_t step, uint64_t body_max, struct outcome *o)
{
    size_t off = 0;
    request_init(r, limits);
    run(r, data, strlen(data), &off, step, body_max, o);
}

static void assert_same(const struct outcome *a, const struct outcome *b, const char *what)
{
    cr_assert_eq(a->ev, b->ev, "%s: event %d vs %d (%s vs %s)", what, a->ev, b->ev, a->code,
                 b->code);
    cr_assert_eq(a->status, b->status, "%s: status", what);
    cr_assert_str_eq(a->code, b->code, "%s: code", what);
    cr_assert_str_eq(a->url, b->url, "%s: url", what);
    cr_assert_str_eq(a->method, b->method, "%s: method", what);
    cr_assert_eq(a->keep_alive, b->keep_alive, "%s: keep_alive", what);
    cr_assert_eq(a->chunked, b->chunked, "%s: chunked", what);
    cr_assert_eq(a->content_length, b->content_length, "%s: content_length", what);
    if (a->ev != REQUEST_ERROR) {
        /* on an error, how much of the body got through depends on where the input broke */
        cr_assert_eq(a->body.len, b->body.len, "%s: body length", what);
        cr_assert(memcmp(a->body.data, b->body.data, a->body.len) == 0, "%s: body", what);
    }
    if (a->ev == REQUEST_COMPLETE) cr_assert_eq(a->consumed, b->consumed, "%s: consumed", what);
}

/* Parse DATA whole, byte by byte and split in two at every offset: all the same. The whole
 * parse is left in *WHOLE. */
static void parse_every_way(const struct request_limits *limits, const char *data,
                            uint64_t body_max, struct outcome *whole)
{
    struct request r;
    size_t len = strlen(data);
    one(&r, limits, data, 0, body_max, whole);
    request_release(&r);

    struct outcome *o = malloc(sizeof *o);
    cr_assert_not_null(o);
    one(&r, limits, data, 1, body_max, o);
    request_release(&r);
    assert_same(whole, o, "byte at a time");

    for (size_t cut = 1; cut < len; cut++) {
        size_t off = 0;
        request_init(&r, limits);
        run_split(&r, data, len, &off, 0, cut, body_max, o);
        char what[64];
        snprintf(what, sizeof what, "split at %zu", cut);
        assert_same(whole, o, what);
        request_release(&r);
    }
    free(o);
}

/* ---- the basics ---------------------------------------------------------------------------- */

Test(request, simple_get)
{
    const char *req = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
    struct request r;
    request_init(&r, &roomy);
    size_t used;
    enum request_event ev = request_feed(&r, req, strlen(req), &used);
    cr_assert_eq(ev, REQUEST_HEAD);
    cr_assert_lt(used, strlen(req));
    cr_assert_eq(r.head_done, 1);
    cr_assert_str_eq(request_method_name(&r), "GET");
    size_t len;
    const char *u = request_url(&r, &len);
    cr_assert_eq(len, 8);
    cr_assert(memcmp(u, "/healthz", 8) == 0);
    cr_assert_eq(r.keep_alive, 1);
    cr_assert_eq(r.chunked, 0);
    cr_assert_eq(r.content_length, 0);
    cr_assert_eq(r.nheaders, 1);

    /* paused: feeding again without resume consumes nothing */
    size_t used2 = 99;
    ev = request_feed(&r, req + used, strlen(req) - used, &used2);
    cr_assert_eq(used2, 0);
    cr_assert_eq(ev, REQUEST_HEAD);

    request_resume(&r);
    ev = request_feed(&r, req + used, strlen(req) - used, &used2);
    cr_assert_eq(ev, REQUEST_COMPLETE);
    cr_assert_eq(used + used2, strlen(req));
    cr_assert_eq(r.head_done, 2);
    request_release(&r);
}

Test(request, headers_case_insensitive)
{
    const char *req = "GET / HTTP/1.1\r\nHost: example\r\nX-Request-Id: abc-123\r\n"
                      "accept-language: en-US,en;q=0.8\r\nX-Empty:\r\n\r\n";
    struct request r;
    struct outcome o;
    one(&r, &roomy, req, 0, 0, &o);
    cr_assert_eq(o.ev, REQUEST_COMPLETE);
    size_t len;
    const char *v = request_header(&r, "x-request-id", &len);
    cr_assert_not_null(v);
    cr_assert_eq(len, 7);
    cr_assert(memcmp(v, "abc-123", 7) == 0);
    v = request_header(&r, "X-REQUEST-ID", &len);
    cr_assert_not_null(v);
    cr_assert_eq(len, 7);
    v = request_header(&r, "Accept-Language", &len);
    cr_assert_not_null(v);
    cr_assert_eq(len, strlen("en-US,en;q=0.8"));
    cr_assert(memcmp(v, "en-US,en;q=0.8", len) == 0);
    v = request_header(&r, "host", &len);
    cr_assert_not_null(v);
    cr_assert(len == 7 && memcmp(v, "example", 7) == 0);
    v = request_header(&r, "x-empty", &len);
    cr_assert_not_null(v, "a header with an empty value is present");
    cr_assert_eq(len, 0);
    /* a prefix of a name is not the name */
    cr_assert_null(request_header(&r, "x-request", &len));
    cr_assert_eq(len, 0);
    cr_assert_null(request_header(&r, "x-request-id-2", &len));
    cr_assert_null(request_header(&r, "missing", &len));
    request_release(&r);
}

/* The first of two same-named headers wins. */
Test(request, header_first_wins)
{
    const char *req = "GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\nx-a: two\r\n\r\n";
    struct request r;
    struct outcome o;
    one(&r, &roomy, req, 1, 0, &o);
    cr_assert_eq(o.ev, REQUEST_COMPLETE);
    size_t len;
    const char *v = request_header(&r, "X-A", &len);
    cr_assert(v && len == 3 && memcmp(v, "one", 3) == 0);
    request_release(&r);
}

/* Header names and values split across feeds are joined. */
Test(request, header_split_across_feeds)
{
    const char *req =
        "GET /a?b=c HTTP/1.1\r\nHost: h\r\nX-Long-Header-Name: a fairly long value here\r\n\r\n";
    struct outcome whole;
    parse_every_way(&roomy, req, 0, &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE);
    struct request r;
    struct outcome o;
    one(&r, &roomy, req, 1, 0, &o);
    size_t len;
    const char *v = request_header(&r, "x-long-header-name", &len);
    cr_assert(v && len == strlen("a fairly long value here"));
    cr_assert(memcmp(v, "a fairly long value here", len) == 0);
    request_release(&r);
}

Test(request, url_path_query)
{
    struct request r;
    struct outcome o;
    size_t len;
    const char *p;

    one(&r, &roomy, "GET /v1/rooms/abc?x=1&y=2 HTTP/1.1\r\nHost: h\r\n\r\n", 0, 0, &o);
    cr_assert_eq(o.ev, REQUEST_COMPLETE);
    cr_assert_str_eq(o.url, "/v1/rooms/abc?x=1&y=2");
    p = request_path(&r, &len);
    cr_assert(len == 13 && memcmp(p, "/v1/rooms/abc", 13) == 0);
    p = request_query(&r, &len);
    cr_assert_not_null(p);
    cr_assert(len == 7 && memcmp(p, "x=1&y=2", 7) == 0);
    request_release(&r);

    one(&r, &roomy, "GET /plain HTTP/1.1\r\nHost: h\r\n\r\n", 0, 0, &o);
    p = request_path(&r, &len);
    cr_assert(len == 6 && memcmp(p, "/plain", 6) == 0);
    cr_assert_null(request_query(&r, &len));
    cr_assert_eq(len, 0);
    request_release(&r);

    /* an empty query is present but empty */
    one(&r, &roomy, "GET /q? HTTP/1.1\r\nHost: h\r\n\r\n", 0, 0, &o);
    p = request_path(&r, &len);
    cr_assert(len == 2 && memcmp(p, "/q", 2) == 0);
    p = request_query(&r, &len);
    cr_assert_not_null(p);
    cr_assert_eq(len, 0);
    request_release(&r);

    /* only the first '?' splits */
    one(&r, &roomy, "GET /s?a=?b HTTP/1.1\r\nHost: h\r\n\r\n", 1, 0, &o);
    p = request_path(&r, &len);
    cr_assert(len == 2 && memcmp(p, "/s", 2) == 0);
    p = request_query(&r, &len);
    cr_assert(p && len == 4 && memcmp(p, "a=?b", 4) == 0);
    request_release(&r);

    /* an absolute-form target is kept as sent */
    one(&r, &roomy, "GET http://h/x?y HTTP/1.1\r\nHost: h\r\n\r\n", 0, 0, &o);
    cr_assert_eq(o.ev, REQUEST_COMPLETE);
    cr_assert_str_eq(o.url, "http://h/x?y");
    request_release(&r);
}

/* Before any request, the accessors are safe and empty. */
Test(request, accessors_before_parsing)
{
    struct request r;
    memset(&r, 0, sizeof r);
    request_init(&r, &roomy);
    size_t len = 99;
    request_url(&r, &len);
    cr_assert_eq(len, 0);
    request_path(&r, &len);
    cr_assert_eq(len, 0);
    cr_assert_null(request_query(&r, &len));
    cr_assert_null(request_header(&r, "host", &len));
    request_release(&r);
}

Test(request, keep_alive)
{
    struct request r;
    struct outcome o;
    one(&r, &roomy, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 0, 0, &o);
    cr_assert_eq(o.keep_alive, 1, "1.1 keeps alive by default");
    request_release(&r);
    one(&r, &roomy, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 0, 0, &o);
    cr_assert_eq(o.keep_alive, 0);
    request_release(&r);
    one(&r, &roomy, "GET / HTTP/1.1\r\nHost: h\r\nconnection: Close\r\n\r\n", 0, 0, &o);
    cr_assert_eq(o.keep_alive, 0);
    request_release(&r);
    one(&r, &roomy, "GET / HTTP/1.0\r\n\r\n", 0, 0, &o);
    cr_assert_eq(o.ev, REQUEST_COMPLETE);
    cr_assert_eq(o.keep_alive, 0, "1.0 closes by default");
    request_release(&r);
    one(&r, &roomy, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0, 0, &o);
    cr_assert_eq(o.keep_alive, 1);
    request_release(&r);
}

Test(request, byte_at_a_time_same_result)
{
    const char *req = "POST /v1/register?src=app HTTP/1.1\r\nHost: h\r\nContent-Type: "
                      "application/json\r\nContent-Length: 17\r\n\r\n{\"name\":\"budi\"}\r\n";
    struct outcome whole;
    parse_every_way(&roomy, req, 1000, &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE);
    cr_assert_eq(whole.consumed, strlen(req));
    cr_assert_str_eq(whole.method, "POST");
    cr_assert_str_eq(whole.url, "/v1/register?src=app");
    cr_assert_eq(whole.content_length, 17);
    cr_assert_eq(whole.body.len, 17);
    cr_assert(memcmp(whole.body.data, "{\"name\":\"budi\"}\r\n", 17) == 0);
}

Test(request, pipelined_two_requests)
{
    const char *a = "GET /first HTTP/1.1\r\nHost: h\r\nX-First: 1\r\n\r\n";
    const char *b = "POST /second?q HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
    char buf[512];
    snprintf(buf, sizeof buf, "%s%s", a, b);
    size_t len = strlen(buf);
    for (size_t step = 0; step <= 7; step++) {
        struct request r;
        struct outcome o;
        size_t off = 0;
        request_init(&r, &roomy);
        run(&r, buf, len, &off, step, 100, &o);
        cr_assert_eq(o.ev, REQUEST_COMPLETE, "step %zu", step);
        cr_assert_eq(off, strlen(a), "step %zu: first request consumed exactly", step);
        cr_assert_str_eq(o.url, "/first");
        cr_assert_str_eq(o.method, "GET");

        /* paused at COMPLETE: nothing more is consumed until reset */
        size_t used = 99;
        cr_assert_eq(request_feed(&r, buf + off, len - off, &used), REQUEST_COMPLETE);
        cr_assert_eq(used, 0);

        request_reset(&r);
        run(&r, buf, len, &off, step, 100, &o);
        cr_assert_eq(o.ev, REQUEST_COMPLETE, "step %zu: %s", step, o.code);
        cr_assert_eq(off, len);
        cr_assert_eq(o.consumed, strlen(b));
        cr_assert_str_eq(o.url, "/second?q");
        cr_assert_str_eq(o.method, "POST");
        cr_assert_eq(o.body.len, 3);
        cr_assert(memcmp(o.body.data, "abc", 3) == 0);
        size_t hl;
        cr_assert_null(request_header(&r, "x-first", &hl), "headers of the first are gone");
        cr_assert_not_null(request_header(&r, "content-length", &hl));
        request_release(&r);
    }
}

/* Many pipelined requests in one buffer, each parsed after a reset. */
Test(request, pipelined_many)
{
    char buf[4096];
    size_t len = 0;
    for (int i = 0; i < 20; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len,
                                "GET /r/%d HTTP/1.1\r\nHost: h\r\n\r\n", i);
    struct request r;
    request_init(&r, &small);
    size_t off = 0;
    for (int i = 0; i < 20; i++) {
        struct outcome o;
        run(&r, buf, len, &off, 0, 0, &o);
        cr_assert_eq(o.ev, REQUEST_COMPLETE, "request %d", i);
        char want[32];
        snprintf(want, sizeof want, "/r/%d", i);
        cr_assert_str_eq(o.url, want);
        request_reset(&r);
    }
    cr_assert_eq(off, len);
    request_release(&r);
}

/* ---- bodies -------------------------------------------------------------------------------- */

Test(request, content_length_body)
{
    const char *req = "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world";
    struct outcome whole;
    parse_every_way(&roomy, req, 11, &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE);
    cr_assert_eq(whole.content_length, 11);
    cr_assert_eq(whole.chunked, 0);
    cr_assert_eq(whole.body.len, 11);
    cr_assert(memcmp(whole.body.data, "hello world", 11) == 0);
}

Test(request, content_length_zero)
{
    const char *req = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
    struct outcome whole;
    parse_every_way(&roomy, req, 0, &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE);
    cr_assert_eq(whole.body.len, 0);
    cr_assert_eq(whole.body.calls, 0);
}

Test(request, chunked_body)
{
    const char *req = "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n"
                      "1;ext=val\r\n,\r\n"
                      "6;a;b=\"q\"\r\n world\r\n"
                      "A\r\n0123456789\r\n"
                      "0\r\n\r\n";
    struct outcome whole;
    parse_every_way(&roomy, req, 100, &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE, "%s", whole.code);
    cr_assert_eq(whole.consumed, strlen(req));
    cr_assert_eq(whole.chunked, 1);
    cr_assert_eq(whole.body.len, 22);
    cr_assert(memcmp(whole.body.data, "hello, world0123456789", 22) == 0);
}

Test(request, chunked_te_case_insensitive)
{
    const char *req =
        "POST /up HTTP/1.1\r\nHost: h\r\ntransfer-encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    struct outcome whole;
    parse_every_way(&roomy, req, 100, &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE, "%s", whole.code);
    cr_assert_eq(whole.chunked, 1);
    cr_assert_eq(whole.body.len, 3);
}

/* Trailer fields after the last chunk are accepted, and the request target and headers read at
 * HEAD stay where they were (the connection borrows them, e.g. as route parameters). */
Test(request, chunked_trailers_keep_head_pointers)
{
    char req[2048];
    char pad[700];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = 0;
    snprintf(
        req, sizeof req,
        "POST /v1/rooms/r1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX-Id: 7\r\n\r\n"
        "3\r\nabc\r\n0\r\nX-Trailer: %s\r\n\r\n",
        pad);
    struct request r;
    request_init(&r, &roomy);
    size_t len = strlen(req), off = 0, used;
    enum request_event ev = request_feed(&r, req, len, &used);
    cr_assert_eq(ev, REQUEST_HEAD);
    off += used;
    size_t ulen, hlen;
    const char *url_at_head = request_url(&r, &ulen);
    const char *id_at_head = request_header(&r, "x-id", &hlen);
    cr_assert_not_null(id_at_head);
    struct sink s;
    memset(&s, 0, sizeof s);
    r.body_fn = sink_fn;
    r.body_arg = &s;
    r.body_max = 100;
    request_resume(&r);
    ev = request_feed(&r, req + off, len - off, &used);
    cr_assert_eq(ev, REQUEST_COMPLETE, "%s", r.code ? r.code : "");
    off += used;
    cr_assert_eq(off, len);
    cr_assert_eq(s.len, 3);
    cr_assert_eq(request_url(&r, &ulen), url_at_head, "the URL moved during the body");
    cr_assert_eq(request_header(&r, "x-id", &hlen), id_at_head, "a header moved during the body");
    request_release(&r);
}

Test(request, chunked_body_over_max_is_413)
{
    const char *req = "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n";
    struct outcome whole;
    parse_every_way(&roomy, req, 10, &whole);
    cr_assert_eq(whole.ev, REQUEST_ERROR);
    cr_assert_eq(whole.status, 413);
    cr_assert_str_eq(whole.code, "body_too_large");
    cr_assert_leq(whole.body.len, 10, "never more than body_max reaches the sink");

    /* exactly at the limit is fine */
    parse_every_way(&roomy, req, 16, &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE);
    cr_assert_eq(whole.body.len, 16);
}

Test(request, content_length_body_over_max_is_413)
{
    const char *req =
        "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\n\r\n01234567890123456789";
    struct outcome whole;
    parse_every_way(&roomy, req, 19, &whole);
    cr_assert_eq(whole.ev, REQUEST_ERROR);
    cr_assert_eq(whole.status, 413);
    cr_assert_str_eq(whole.code, "body_too_large");
    cr_assert_leq(whole.body.len, 19);
}

/* A sink that refuses stops the parse with the status it set, or 500 when it set none. */
Test(request, sink_failure)
{
    const char *req = "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789";
    struct request r;
    struct outcome o;
    request_init(&r, &roomy);
    size_t used, off = 0, len = strlen(req);
    cr_assert_eq(request_feed(&r, req, len, &used), REQUEST_HEAD);
    off += used;
    memset(&o.body, 0, sizeof o.body);
    o.body.fail_at = 4;
    r.body_fn = sink_fn;
    r.body_arg = &o.body;
    r.body_max = 100;
    request_resume(&r);
    cr_assert_eq(request_feed(&r, req + off, len - off, &used), REQUEST_ERROR);
    cr_assert_eq(r.status, 500);
    cr_assert_str_eq(r.code, "internal_error");
    request_release(&r);
}

/* ---- limits -------------------------------------------------------------------------------- */

static void url_request(char *buf, size_t buflen, size_t urllen)
{
    char url[256];
    cr_assert_lt(urllen, sizeof url);
    url[0] = '/';
    memset(url + 1, 'u', urllen - 1);
    url[urllen] = 0;
    snprintf(buf, buflen, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", url);
}

Test(request, url_at_limit_ok)
{
    char req[512];
    url_request(req, sizeof req, small.max_url_bytes);
    struct outcome whole;
    parse_every_way(&small, req, 0, &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE, "%s", whole.code);
    cr_assert_eq(strlen(whole.url), small.max_url_bytes);
}

Test(request, url_too_long_is_414)
{
    char req[512];
    url_request(req, sizeof req, small.max_url_bytes + 1);
    struct outcome whole;
    parse_every_way(&small, req, 0, &whole);
    cr_assert_eq(whole.ev, REQUEST_ERROR);
    cr_assert_eq(whole.status, 414);
    cr_assert_str_eq(whole.code, "uri_too_long");
}

/* A head made of N headers "X-Hn: VALUE", padded to about TOTAL bytes. */
static void big_head(char *buf, size_t buflen, int nheaders, size_t value_len)
{
    size_t len = (size_t)snprintf(buf, buflen, "GET / HTTP/1.1\r\nHost: h\r\n");
    char v[2048];
    cr_assert_lt(value_len, sizeof v);
    memset(v, 'v', value_len);
    v[value_len] = 0;
    for (int i = 0; i < nheaders; i++) {
        len += (size_t)snprintf(buf + len, buflen - len, "X-H%d: %s\r\n", i, v);
        cr_assert_lt(len, buflen);
    }
    len += (size_t)snprintf(buf + len, buflen - len, "\r\n");
    cr_assert_lt(len, buflen);
}

Test(request, headers_within_limit_ok)
{
    char req[4096];
    big_head(req, sizeof req, 3, 100); /* about 350 bytes, 4 headers with Host */
    cr_assert_lt(strlen(req), small.max_header_bytes);
    struct outcome whole;
    parse_every_way(&small, req, 0, &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE, "%s", whole.code);
}

Test(request, headers_too_large_is_431)
{
    char req[4096];
    big_head(req, sizeof req, 3, 400); /* about 1.2 KB > 512 */
    struct outcome whole;
    parse_every_way(&small, req, 0, &whole);
    cr_assert_eq(whole.ev, REQUEST_ERROR);
    cr_assert_eq(whole.status, 431);
    cr_assert_str_eq(whole.code, "headers_too_large");
}

/* One huge header value is refused too (not only many). */
Test(request, one_huge_header_is_431)
{
    char req[4096];
    big_head(req, sizeof req, 1, 1500);
    struct outcome whole;
    parse_every_way(&small, req, 0, &whole);
    cr_assert_eq(whole.ev, REQUEST_ERROR);
    cr_assert_eq(whole.status, 431);
    cr_assert_str_eq(whole.code, "headers_too_large");
}

/* max_header_bytes counts the bytes of the head as sent, however they arrive: whitespace the
 * parser skips (here before a header value) counts too, whether the head comes byte by byte or
 * in one read. */
Test(request, raw_head_bytes_count_whole_or_split)
{
    char req[2048];
    char spaces[801];
    memset(spaces, ' ', sizeof spaces - 1);
    spaces[sizeof spaces - 1] = 0;
    snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: h\r\nX-Pad:%sv\r\n\r\n", spaces);
    cr_assert_gt(strlen(req), small.max_header_bytes);
    struct outcome whole;
    parse_every_way(&small, req, 0, &whole);
    cr_assert_eq(whole.ev, REQUEST_ERROR);
    cr_assert_eq(whole.status, 431);
    cr_assert_str_eq(whole.code, "headers_too_large");
}

Test(request, headers_at_count_limit_ok)
{
    const char *req = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    struct outcome whole;
    parse_every_way(&small, req, 0, &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE, "%s", whole.code);
}

Test(request, too_many_headers_is_431)
{
    const char *req = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n";
    struct outcome whole;
    parse_every_way(&small, req, 0, &whole);
    cr_assert_eq(whole.ev, REQUEST_ERROR);
    cr_assert_eq(whole.status, 431);
    cr_assert_str_eq(whole.code, "too_many_headers");
}

/* ---- smuggling ----------------------------------------------------------------------------- */

/* REQ is refused with STATUS/CODE every way; NO_BODY: before any body byte reached the sink. */
static void refused(const char *req, int status, const char *code, int no_body)
{
    struct outcome whole;
    parse_every_way(&roomy, req, 1000, &whole);
    cr_assert_eq(whole.ev, REQUEST_ERROR, "expected %d %s for:\n%s", status, code, req);
    cr_assert_eq(whole.status, status, "for:\n%s", req);
    cr_assert_str_eq(whole.code, code, "for:\n%s", req);
    if (no_body) cr_assert_eq(whole.body.len, 0, "no body byte reaches the sink");
}

static void expect_refused(const char *req, int status, const char *code)
{
    refused(req, status, code, 1);
}

/* Refused in the body (chunked framing): the chunks before the fault may have been passed on. */
static void expect_refused_in_body(const char *req, int status, const char *code)
{
    refused(req, status, code, 0);
}

Test(request, content_length_with_transfer_encoding)
{
    expect_refused(
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\n",
        400, "conflicting_length");
    expect_refused(
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
        "0\r\n\r\n",
        400, "conflicting_length");
}

Test(request, two_differing_content_lengths)
{
    expect_refused(
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400,
        "conflicting_content_length");
}

/* Repeated equal Content-Lengths may be accepted or refused (RFC 9110 8.6); we refuse any
 * repeat, as http-parser did: a sender that repeats framing headers is not one to trust. */
Test(request, two_equal_content_lengths_refused)
{
    expect_refused(
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello", 400,
        "conflicting_content_length");
}

Test(request, transfer_encoding_other_than_chunked)
{
    expect_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
                   "unsupported_transfer_encoding");
    expect_refused(
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400,
        "unsupported_transfer_encoding");
    expect_refused(
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
        "\r\n\r\n0\r\n\r\n",
        400, "unsupported_transfer_encoding");
}

Test(request, bad_content_length)
{
    expect_refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5a\r\n\r\nhello", 400,
                   "bad_content_length");
    expect_refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", 400,
                   "bad_content_length");
    expect_refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400,
                   "bad_content_length");
    expect_refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400,
                   "bad_content_length");
}

Test(request, bad_content_length_status_is_400)
{
    /* whatever the code, a malformed length is a 400 and an error */
    const char *bad[] = {"5a", "abc", "-1", "1 2", "+5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char req[256];
        snprintf(req, sizeof req, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %s\r\n\r\nhello",
                 bad[i]);
        struct outcome whole;
        parse_every_way(&roomy, req, 1000, &whole);
        cr_assert_eq(whole.ev, REQUEST_ERROR, "Content-Length: %s accepted", bad[i]);
        cr_assert_eq(whole.status, 400, "Content-Length: %s", bad[i]);
        cr_assert_eq(whole.body.len, 0);
    }
}

/* Whitespace between a field name and its colon must be refused (RFC 9112 5.1): otherwise
 * "Content-Length : 5" is a harmless unknown header here but a length to another parser. */
Test(request, whitespace_before_colon_is_400)
{
    expect_refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\nhello", 400,
                   "bad_request");
    expect_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
                   400, "bad_request");
    expect_refused("GET / HTTP/1.1\r\nHost: h\r\nHo st: a\r\n\r\n", 400, "bad_request");
}

/* Optional whitespace after a value is not part of it (RFC 9110 5.5): a valid length or
 * coding followed by a space is accepted. */
Test(request, trailing_whitespace_after_length_and_coding)
{
    struct outcome whole;
    parse_every_way(&roomy, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 \r\n\r\nhello", 100,
                    &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE, "refused: %d %s", whole.status, whole.code);
    cr_assert_eq(whole.content_length, 5);
    cr_assert_eq(whole.body.len, 5);
    parse_every_way(&roomy,
                    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked  \r\n\r\n0\r\n\r\n",
                    100, &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE, "refused: %d %s", whole.status, whole.code);
    cr_assert_eq(whole.chunked, 1);
    /* but not a tab after either (http-parser refuses those; see request.c) */
    expect_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n",
                   400, "unsupported_transfer_encoding");
    expect_refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 \t\r\n\r\nhello", 400,
                   "bad_content_length");
}

/* A declared body is always read as a body, never parsed as the next request, whatever the
 * method: CONNECT and Upgrade requests included (parsers that speak them end those at the head). */
Test(request, declared_body_never_parsed_as_a_request)
{
    const char *reqs[] = {
        "CONNECT h:443 HTTP/1.1\r\nHost: h\r\nContent-Length: 23\r\n\r\nGET /admin "
        "HTTP/1.1\r\n\r\n",
        ("POST / HTTP/1.1\r\nHost: h\r\nUpgrade: x\r\nConnection: upgrade\r\nContent-Length: "
         "23\r\n\r\n"
         "GET /admin HTTP/1.1\r\n\r\n"),
        "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 23\r\n\r\nGET /admin HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        struct outcome whole;
        parse_every_way(&roomy, reqs[i], 100, &whole);
        if (whole.ev == REQUEST_COMPLETE) {
            cr_assert_eq(whole.consumed, strlen(reqs[i]), "request %zu: body left unread", i);
            cr_assert_eq(whole.body.len, 23, "request %zu", i);
        } else {
            cr_assert_eq(whole.ev, REQUEST_ERROR, "request %zu", i);
            cr_assert(whole.status >= 400 && whole.status < 500, "request %zu: %d", i,
                      whole.status);
        }
    }
}

/* ---- Expect, methods, versions -------------------------------------------------------------- */

Test(request, expect_continue)
{
    struct request r;
    struct outcome o;
    one(&r, &roomy,
        "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok", 0, 10,
        &o);
    cr_assert_eq(o.ev, REQUEST_COMPLETE);
    cr_assert_eq(o.expect_continue, 1);
    cr_assert_eq(r.expect_other, 0);
    request_release(&r);

    one(&r, &roomy,
        "POST / HTTP/1.1\r\nHost: h\r\nexpect: 100-Continue\r\nContent-Length: 2\r\n\r\nok", 0, 10,
        &o);
    cr_assert_eq(o.expect_continue, 1);
    request_release(&r);

    one(&r, &roomy,
        "POST / HTTP/1.1\r\nHost: h\r\nExpect: something\r\nContent-Length: 2\r\n\r\nok", 0, 10,
        &o);
    cr_assert_eq(o.expect_continue, 0);
    cr_assert_eq(r.expect_other, 1);
    request_release(&r);

    one(&r, &roomy, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok", 0, 10, &o);
    cr_assert_eq(o.expect_continue, 0);
    cr_assert_eq(r.expect_other, 0);
    request_release(&r);
}

/* At HEAD, before any body byte, the connection sees the flag and the length. */
Test(request, expect_continue_visible_at_head)
{
    const char *req =
        "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n";
    struct request r;
    request_init(&r, &roomy);
    size_t used;
    cr_assert_eq(request_feed(&r, req, strlen(req), &used), REQUEST_HEAD);
    cr_assert_eq(r.expect_continue, 1);
    cr_assert_eq(r.content_length, 4);
    cr_assert_eq(r.content_length_seen, 1);
    request_resume(&r);
    size_t used2;
    cr_assert_eq(request_feed(&r, req + used, strlen(req) - used, &used2), REQUEST_MORE);
    cr_assert_eq(used + used2, strlen(req));
    request_release(&r);
}

Test(request, methods)
{
    const char *m[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        char req[128];
        snprintf(req, sizeof req, "%s /m HTTP/1.1\r\nHost: h\r\n\r\n", m[i]);
        struct request r;
        struct outcome o;
        one(&r, &roomy, req, 0, 0, &o);
        cr_assert_eq(o.ev, REQUEST_COMPLETE, "%s", m[i]);
        cr_assert_str_eq(o.method, m[i]);
        request_release(&r);
    }
}

Test(request, bad_method_is_400)
{
    expect_refused("FOO / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request");
    expect_refused("get / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request");
    expect_refused("\x01\x02\x03 / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request");
}

Test(request, bad_version_is_400)
{
    expect_refused("GET / HTTP/9.x\r\n\r\n", 400, "bad_request");
    expect_refused("GET / HTTP/1.1 extra\r\n\r\n", 400, "bad_request");
}

/* The letters of "HTTP" in the version are checked (Debian's http-parser, built non-strict, did
 * not); the version numbers are checked by the connection (505). */

/* A request line without a version (HTTP/0.9 style) is either refused here or shows version
 * 0.9, which the connection refuses with 505 (it only speaks HTTP/1.x): never taken as 1.x. */
Test(request, missing_version_not_taken_as_http1)
{
    const char *reqs[] = {"GET /\r\n\r\n", "POST /\r\nContent-Length: 2\r\n\r\nt="};
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        struct request r;
        request_init(&r, &roomy);
        size_t used;
        enum request_event ev = request_feed(&r, reqs[i], strlen(reqs[i]), &used);
        if (ev == REQUEST_ERROR) {
            cr_assert_eq(r.status, 400);
        } else {
            cr_assert_eq(ev, REQUEST_HEAD, "%s", reqs[i]);
            cr_assert_neq(r.parser.http_major, 1, "%s taken as HTTP/1.x", reqs[i]);
        }
        request_release(&r);
    }
}

Test(request, bad_request_line_is_400)
{
    expect_refused("GET\r\n\r\n", 400, "bad_request");
    expect_refused("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request");
    expect_refused("GET / HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n", 400, "bad_request");
}

/* After an error the parser stays failed: more input does not revive it. */
Test(request, error_is_sticky)
{
    struct request r;
    request_init(&r, &roomy);
    size_t used;
    const char *bad = "FOO / HTTP/1.1\r\nHost: h\r\n\r\n";
    cr_assert_eq(request_feed(&r, bad, strlen(bad), &used), REQUEST_ERROR);
    const char *good = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    cr_assert_eq(request_feed(&r, good, strlen(good), &used), REQUEST_ERROR);
    cr_assert_eq(r.status, 400);
    request_release(&r);
}

/* request_fail from outside keeps the first reason. */
Test(request, request_fail_first_reason_wins)
{
    struct request r;
    request_init(&r, &roomy);
    request_fail(&r, 413, "body_too_large", "x");
    request_fail(&r, 400, "bad_request", "y");
    cr_assert_eq(r.status, 413);
    cr_assert_str_eq(r.code, "body_too_large");
    request_release(&r);
}

/* ---- reuse ---------------------------------------------------------------------------------- */

Test(request, release_then_reuse)
{
    struct request r;
    struct outcome o;
    one(&r, &roomy, "GET /one HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n", 0, 0, &o);
    cr_assert_eq(o.ev, REQUEST_COMPLETE);
    cr_assert_not_null(r.arena);
    request_release(&r);
    cr_assert_null(r.arena);
    cr_assert_null(r.headers);
    cr_assert_eq(r.arena_cap, 0);
    cr_assert_eq(r.nheaders, 0);

    /* a released request parses again without request_init */
    size_t off = 0;
    const char *req = "POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi";
    run(&r, req, strlen(req), &off, 3, 10, &o);
    cr_assert_eq(o.ev, REQUEST_COMPLETE);
    cr_assert_str_eq(o.url, "/two");
    cr_assert_eq(o.body.len, 2);
    size_t hl;
    cr_assert_null(request_header(&r, "x-a", &hl));
    request_release(&r);
    request_release(&r); /* twice is harmless */
}

/* After an error, reset gives a working parser again (for tests and tools). */
Test(request, reset_after_error)
{
    struct request r;
    struct outcome o;
    one(&r, &small, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", 0,
        0, &o);
    cr_assert_eq(o.ev, REQUEST_ERROR);
    request_reset(&r);
    cr_assert_eq(r.status, 0);
    cr_assert_null(r.code);
    size_t off = 0;
    const char *req = "GET /ok HTTP/1.1\r\nHost: h\r\n\r\n";
    run(&r, req, strlen(req), &off, 0, 0, &o);
    cr_assert_eq(o.ev, REQUEST_COMPLETE);
    cr_assert_str_eq(o.url, "/ok");
    request_release(&r);
}

/* The arena is kept across keep-alive requests (no new allocation for a same-sized request). */
Test(request, arena_kept_across_reset)
{
    struct request r;
    struct outcome o;
    one(&r, &roomy, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 0, 0, &o);
    char *arena = r.arena;
    uint32_t cap = r.arena_cap;
    cr_assert_not_null(arena);
    request_reset(&r);
    size_t off = 0;
    const char *req = "GET /b HTTP/1.1\r\nHost: i\r\n\r\n";
    run(&r, req, strlen(req), &off, 0, 0, &o);
    cr_assert_eq(o.ev, REQUEST_COMPLETE);
    cr_assert_eq(r.arena, arena);
    cr_assert_eq(r.arena_cap, cap);
    request_release(&r);
}

/* ---- strictness (issue 10 item 8): what lenient parsers accept and this one refuses -------- */

/* Each of these is refused the same way whole, byte by byte and split at every offset
 * (expect_refused parses every way). */

/* Chunk data must be followed by CRLF: "2\r\n{}XX0\r\n\r\n" would otherwise end the body at
 * "XX" for us and somewhere else for a proxy. */
Test(request, chunk_data_not_followed_by_crlf)
{
    expect_refused_in_body("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "2\r\n{}XX0\r\n\r\n",
                           400, "invalid_chunk");
    expect_refused_in_body("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "2\r\n{}\n0\r\n\r\n",
                           400, "invalid_chunk");
    expect_refused_in_body("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "2\r\n{}\rX0\r\n\r\n",
                           400, "invalid_chunk");
}

Test(request, bad_chunk_size_lines)
{
    const char *lines[] = {
        "10000000000000000\r\n", /* 2^64: overflows */
        "fffffffffffffffff\r\n", /* 17 hex digits */
        "-1\r\n",
        "0x5\r\n",
        " 5\r\n",
        "5 \r\n",    /* BWS only before a chunk extension */
        "5\t;a\r\n", /* and only spaces */
        "\r\n",
        ";x\r\n",
        "5\n",
        "5\rX",
        "5;a=\x01\r\n",
        "g\r\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        char req[256];
        snprintf(
            req, sizeof req,
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n%shello\r\n0\r\n\r\n",
            lines[i]);
        struct outcome whole;
        parse_every_way(&roomy, req, 1000, &whole);
        cr_assert_eq(whole.ev, REQUEST_ERROR, "chunk line %zu accepted", i);
        cr_assert_eq(whole.status, 400, "chunk line %zu", i);
        cr_assert_str_eq(whole.code, "invalid_chunk", "chunk line %zu", i);
    }
}

/* A chunk-size line is bounded (leading zeros and extensions included). */
Test(request, chunk_line_bounded)
{
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;");
    memset(req + n, 'e', HTTP1_CHUNK_LINE_MAX);
    snprintf(req + n + HTTP1_CHUNK_LINE_MAX, sizeof req - (size_t)n - HTTP1_CHUNK_LINE_MAX,
             "\r\nhello\r\n0\r\n\r\n");
    expect_refused(req, 400, "invalid_chunk");
    n = snprintf(req, sizeof req,
                 "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
    memset(req + n, '0', HTTP1_CHUNK_LINE_MAX + 1);
    snprintf(req + n + HTTP1_CHUNK_LINE_MAX + 1, sizeof req - (size_t)n - HTTP1_CHUNK_LINE_MAX - 1,
             "5\r\nhello\r\n0\r\n\r\n");
    expect_refused(req, 400, "invalid_chunk");
    /* leading zeros within the bound are a number like any other */
    struct outcome whole;
    parse_every_way(&roomy,
                    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "00000005 ;a=b;c=\"d e\"\r\nhello\r\n000\r\n\r\n",
                    100, &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE, "%s", whole.code);
    cr_assert_eq(whole.body.len, 5);
}

/* Trailer fields are checked like header fields, bounded by max_header_bytes, and discarded. */
Test(request, trailers_checked_bounded_discarded)
{
    struct outcome whole;
    const char *ok = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3\r\nabc\r\n0\r\nX-T: 1\r\nY-T: 2\r\n\r\n";
    parse_every_way(&roomy, ok, 100, &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE, "%s", whole.code);
    cr_assert_eq(whole.consumed, strlen(ok));
    expect_refused_in_body("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "3\r\nabc\r\n0\r\nX-T: 1\n\r\n",
                           400, "invalid_chunk");
    expect_refused_in_body("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "3\r\nabc\r\n0\r\nX-T : 1\r\n\r\n",
                           400, "invalid_chunk");
    expect_refused_in_body("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "3\r\nabc\r\n0\r\n\rX",
                           400, "invalid_chunk");
    /* framing fields have no place in a trailer */
    expect_refused_in_body("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "3\r\nabc\r\n0\r\ncontent-length: 5\r\n\r\n",
                           400, "invalid_chunk");
    expect_refused_in_body("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "3\r\nabc\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n",
                           400, "invalid_chunk");
    parse_every_way(&roomy,
                    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "3\r\nabc\r\n0\r\nContent-Lengthy: 5\r\n\r\n",
                    100, &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE, "%s", whole.code);
    char req[2048];
    char pad[600];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = 0;
    snprintf(req, sizeof req,
             "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3\r\nabc\r\n0\r\nX-T: %s\r\n\r\n",
             pad);
    parse_every_way(&small, req, 100, &whole);
    cr_assert_eq(whole.ev, REQUEST_ERROR);
    cr_assert_eq(whole.status, 431);
}

/* A CR ends a line only when LF follows; a bare LF ends none. */
Test(request, cr_without_lf_and_bare_lf)
{
    expect_refused("GET / HTTP/1.1\r\nHost: h\rX-A: b\r\n\r\n", 400, "bad_request");
    expect_refused("GET / HTTP/1.1\r\nHost: h\r\n\rX-A: b\r\n\r\n", 400, "bad_request");
    expect_refused("GET / HTTP/1.1\rHost: h\r\n\r\n", 400, "bad_request");
    expect_refused("GET / HTTP/1.1\nHost: h\n\n", 400, "bad_request");
    expect_refused("GET / HTTP/1.1\r\nHost: h\nX-A: b\r\n\r\n", 400, "bad_request");
    expect_refused("GET / HTTP/1.1\r\nHost: h\r\n\n", 400, "bad_request");
    expect_refused("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request");
}

/* An empty line before the request line is ignored (RFC 9112 2.2), as a CRLF after a body. */
Test(request, empty_line_before_request_line)
{
    struct outcome whole;
    parse_every_way(&roomy, "\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n", 0, &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE, "%s", whole.code);
    cr_assert_str_eq(whole.url, "/x");
}

/* obs-fold (RFC 9112 5.2): a line starting with whitespace is refused, never joined; so a folded
 * Transfer-Encoding can mean nothing. Whitespace before the first field too (RFC 9112 2.2). */
Test(request, obs_fold_refused)
{
    expect_refused("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400, "bad_request");
    expect_refused("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n", 400, "bad_request");
    expect_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"
                   "0\r\n\r\n",
                   400, "bad_request");
    expect_refused("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400, "bad_request");
}

/* Host (RFC 9112 3.2): an HTTP/1.1 request needs exactly one, and a valid one. */
Test(request, host_missing_duplicate_invalid)
{
    expect_refused("GET / HTTP/1.1\r\n\r\n", 400, "missing_host");
    expect_refused("GET / HTTP/1.1\r\nX-Host: h\r\n\r\n", 400, "missing_host");
    expect_refused("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, "duplicate_header");
    expect_refused("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400, "duplicate_header");
    const char *bad[] = {"",   "a b",  "a/b", "u@h", "h:80:80", "h:123456", "h:8x",   "[zz]",
                         "[]", "[::1", "%zz", "a%2", ":80",     "a\"b",     "a,b,c\\"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char req[256];
        snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", bad[i]);
        expect_refused(req, 400, "invalid_host");
    }
    const char *good[] = {"example.com", "example.com:8080", "127.0.0.1", "[::1]:80",
                          "a-b_c.~d",    "xn--bcher-kva.de", "h:",        "%41b"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char req[256];
        snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: %s \r\n\r\n", good[i]);
        struct outcome whole;
        parse_every_way(&roomy, req, 0, &whole);
        cr_assert_eq(whole.ev, REQUEST_COMPLETE, "Host: %s refused: %s", good[i], whole.code);
    }
    /* HTTP/1.0 needs none, but one it sends is checked */
    struct outcome whole;
    parse_every_way(&roomy, "GET / HTTP/1.0\r\n\r\n", 0, &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE, "%s", whole.code);
    expect_refused("GET / HTTP/1.0\r\nHost: a b\r\n\r\n", 400, "invalid_host");
    expect_refused("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400, "duplicate_header");
}

/* Absolute-form (RFC 9112 3.2.2): accepted; the path is what follows the authority, and the
 * authority replaces the Host received. */
Test(request, absolute_form)
{
    struct request r;
    struct outcome o;
    size_t len;
    const char *v;
    one(&r, &roomy, "GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: other\r\n\r\n", 1, 0,
        &o);
    cr_assert_eq(o.ev, REQUEST_COMPLETE, "%s", o.code);
    cr_assert_str_eq(o.url, "http://example.com:8080/a/b?c=d");
    v = request_path(&r, &len);
    cr_assert(len == 4 && memcmp(v, "/a/b", 4) == 0);
    v = request_query(&r, &len);
    cr_assert(v && len == 3 && memcmp(v, "c=d", 3) == 0);
    v = request_header(&r, "host", &len);
    cr_assert(v && len == 16 && memcmp(v, "example.com:8080", 16) == 0);
    request_release(&r);

    one(&r, &roomy, "GET HTTPS://h?q HTTP/1.1\r\nHost: h\r\n\r\n", 0, 0, &o);
    cr_assert_eq(o.ev, REQUEST_COMPLETE, "%s", o.code);
    v = request_path(&r, &len);
    cr_assert(len == 1 && v[0] == '/', "an empty path is /");
    v = request_query(&r, &len);
    cr_assert(v && len == 1 && v[0] == 'q');
    request_release(&r);

    /* the received Host is ignored, so it may be anything, but must be there, once */
    struct outcome whole;
    parse_every_way(&roomy, "GET http://h/ HTTP/1.1\r\nHost: not valid\r\n\r\n", 0, &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE, "%s", whole.code);
    expect_refused("GET http://h/ HTTP/1.1\r\n\r\n", 400, "missing_host");
    expect_refused("GET http://h/ HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n", 400, "duplicate_header");
    expect_refused("GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request");
    expect_refused("GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request");
    expect_refused("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request");
    expect_refused("GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request");
}

/* Singletons: two Authorization headers (or Cookie, Content-Type, ...) are refused, not
 * resolved to the first. */
Test(request, duplicate_singletons)
{
    const char *names[] = {"Authorization",   "Cookie",        "Content-Type",  "Origin",
                           "Idempotency-Key", "Upload-Offset", "Upload-Length", "Tus-Resumable"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char req[256];
        snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: h\r\n%s: a\r\nX-B: c\r\n%s: b\r\n\r\n",
                 names[i], names[i]);
        expect_refused(req, 400, "duplicate_header");
    }
    /* other repeated fields are fine (the first is read) */
    struct outcome whole;
    parse_every_way(&roomy, "GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\nAccept: b\r\n\r\n", 0,
                    &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE, "%s", whole.code);
}

/* Transfer-Encoding: exactly "chunked", once, and only from HTTP/1.1 (RFC 9112 6.1). */
Test(request, transfer_encoding_exactly_chunked)
{
    expect_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"
                   "0\r\n\r\n",
                   400, "unsupported_transfer_encoding");
    expect_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
                   400, "unsupported_transfer_encoding");
    expect_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n0\r\n\r\n", 400,
                   "unsupported_transfer_encoding");
    expect_refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
                   "unsupported_transfer_encoding");
}

/* The request line: a method it knows, one SP, a target of visible ASCII without '#', one SP,
 * "HTTP/" DIGIT "." DIGIT, CRLF. */
Test(request, request_line_bytes)
{
    const char *bad[] = {
        "GET  / HTTP/1.1\r\n",    "GET /  HTTP/1.1\r\n",     "GET / HTTP/1.1 \r\n",
        "GET\t/ HTTP/1.1\r\n",    "GET /a\x01 HTTP/1.1\r\n", "GET /a\x7f HTTP/1.1\r\n",
        "GET /\x80 HTTP/1.1\r\n", "GET /a#f HTTP/1.1\r\n",   "GET / http/1.1\r\n",
        "GET / HTTP/1.10\r\n",    "GET / HTTP/11\r\n",       "GET / HTTP/1.1x\r\n",
        "GETS / HTTP/1.1\r\n",    "PROPFIND / HTTP/1.1\r\n", "GET/ HTTP/1.1\r\n",
        " GET / HTTP/1.1\r\n",    "GET * HTTP/1.1\r\n",      "OPTIONS *x HTTP/1.1\r\n",
        "GET .. HTTP/1.1\r\n",    "GET / HTTP/1.1\r\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char req[256];
        snprintf(req, sizeof req, "%sHost: h\r\n\r\n", bad[i]);
        expect_refused(req, 400, "bad_request");
    }
    struct outcome whole;
    parse_every_way(&roomy, "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 0, &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE, "%s", whole.code);
    cr_assert_str_eq(whole.url, "*");
    /* the characters browsers leave unescaped are accepted */
    parse_every_way(&roomy, "GET /a'b\"c<i>&x|{}^`\\?q=[1] HTTP/1.1\r\nHost: h\r\n\r\n", 0, &whole);
    cr_assert_eq(whole.ev, REQUEST_COMPLETE, "%s", whole.code);
}

/* Field values: no control character but HTAB; obs-text is accepted. */
Test(request, control_characters_in_values)
{
    const char *bad[] = {"a\x01z", "a\x0bz", "a\x1fz", "a\x7fz", "\x7f", "a\rz"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char req[256];
        snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: h\r\nX-V: %s\r\n\r\n", bad[i]);
        expect_refused(req, 400, "bad_request");
    }
    struct request r;
    struct outcome o;
    one(&r, &roomy, "GET / HTTP/1.1\r\nHost: h\r\nX-V: \t a\tb \xc3\xa9 \t\r\n\r\n", 1, 0, &o);
    cr_assert_eq(o.ev, REQUEST_COMPLETE, "%s", o.code);
    size_t len;
    const char *v = request_header(&r, "x-v", &len);
    cr_assert(v && len == 6 && memcmp(v, "a\tb \xc3\xa9", 6) == 0, "surrounding OWS trimmed");
    request_release(&r);
    expect_refused("GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", 400, "bad_request");
    expect_refused("GET / HTTP/1.1\r\nHost: h\r\nX\x01: v\r\n\r\n", 400, "bad_request");
}

/* The value scan works in blocks of 16 bytes: a bad byte at every position of a long value is
 * found, and a long good value (a bearer token) is kept whole. */
Test(request, long_values_every_position)
{
    char v[200];
    for (size_t len = 1; len < 70; len++) {
        for (size_t pos = 0; pos < len; pos++) {
            memset(v, 'x', len);
            v[len] = 0;
            v[pos] = pos % 2 ? '\x7f' : '\x02';
            char req[512];
            snprintf(req, sizeof req,
                     "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer %s\r\n\r\n", v);
            struct request r;
            struct outcome o;
            one(&r, &roomy, req, 0, 0, &o);
            cr_assert_eq(o.ev, REQUEST_ERROR, "len %zu pos %zu", len, pos);
            request_release(&r);
            v[pos] = pos % 3 ? '\t' : '\xff';
            snprintf(req, sizeof req,
                     "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer %sz\r\n\r\n", v);
            one(&r, &roomy, req, 0, 0, &o);
            cr_assert_eq(o.ev, REQUEST_COMPLETE, "len %zu pos %zu: %s", len, pos, o.code);
            size_t n;
            const char *got = request_header(&r, "authorization", &n);
            cr_assert_eq(n, 7 + len + 1);
            cr_assert(memcmp(got + 7, v, len) == 0);
            request_release(&r);
        }
    }
}

/* Connection is a list: "close" anywhere in it closes; HTTP/1.0 keeps alive only on request. */
Test(request, connection_tokens)
{
    struct request r;
    struct outcome o;
    one(&r, &roomy, "GET / HTTP/1.1\r\nHost: h\r\nConnection: TE, close\r\n\r\n", 0, 0, &o);
    cr_assert_eq(o.keep_alive, 0);
    request_release(&r);
    one(&r, &roomy, "GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", 0, 0, &o);
    cr_assert_eq(o.keep_alive, 1);
    request_release(&r);
    one(&r, &roomy, "GET / HTTP/1.0\r\nConnection: upgrade ,Keep-Alive\r\n\r\n", 0, 0, &o);
    cr_assert_eq(o.keep_alive, 1);
    request_release(&r);
    one(&r, &roomy, "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", 0, 0,
        &o);
    cr_assert_eq(o.keep_alive, 0);
    request_release(&r);
}

/* A request answered from its head (a 404 for a GET) is reset without being resumed: the next
 * request on the connection parses from the byte after its head. One with a body left unread
 * is never followed by a request parsed from that body. */
Test(request, reset_after_answer_at_head)
{
    const char *two = "GET /nope HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    for (int release = 0; release < 2; release++) {
        struct request r;
        request_init(&r, &roomy);
        size_t used, off = 0, len = strlen(two);
        cr_assert_eq(request_feed(&r, two, len, &used), REQUEST_HEAD);
        off += used;
        if (release) request_release(&r);
        else request_reset(&r);
        struct outcome o;
        run(&r, two, len, &off, 0, 0, &o);
        cr_assert_eq(o.ev, REQUEST_COMPLETE, "%s", o.code);
        cr_assert_str_eq(o.url, "/b");
        cr_assert_eq(off, len);
        request_release(&r);
    }
    const char *body = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 32\r\n\r\n"
                       "GET /admin HTTP/1.1\r\nHost: h\r\n\r\n";
    struct request r;
    request_init(&r, &roomy);
    size_t used, len = strlen(body);
    cr_assert_eq(request_feed(&r, body, len, &used), REQUEST_HEAD);
    request_reset(&r);
    cr_assert_eq(request_feed(&r, body + used, len - used, &used), REQUEST_ERROR);
    request_release(&r);
}

/* A request refused at the end of its head (missing Host) leaves no state behind: reset or
 * release, and the next parse starts afresh. */
Test(request, reuse_after_refused_head)
{
    for (int release = 0; release < 2; release++) {
        struct request r;
        struct outcome o;
        one(&r, &roomy, "GET / HTTP/1.1\r\n\r\n", 0, 0, &o);
        cr_assert_eq(o.ev, REQUEST_ERROR);
        cr_assert_str_eq(o.code, "missing_host");
        if (release) request_release(&r);
        else request_reset(&r);
        size_t off = 0;
        const char *req = "GET /ok HTTP/1.1\r\nHost: h\r\n\r\n";
        run(&r, req, strlen(req), &off, 0, 0, &o);
        cr_assert_eq(o.ev, REQUEST_COMPLETE, "%s", o.code);
        request_release(&r);
    }
}

/* The trailer section counts against max_header_bytes from the byte after the last chunk's
 * line to its empty line, the same however the bytes arrive: at the limit it passes, one byte
 * more is 431. */
Test(request, trailer_limit_exact)
{
    for (size_t extra = 0; extra < 2; extra++) {
        char pad[600];
        size_t padlen = small.max_header_bytes - 9 + extra; /* "X-T: " pad CRLF CRLF */
        memset(pad, 'p', padlen);
        pad[padlen] = 0;
        char req[1024];
        snprintf(req, sizeof req,
                 "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "3\r\nabc\r\n0\r\nX-T: %s\r\n\r\n",
                 pad);
        struct outcome whole;
        parse_every_way(&small, req, 100, &whole);
        if (extra) {
            cr_assert_eq(whole.ev, REQUEST_ERROR);
            cr_assert_eq(whole.status, 431);
        } else {
            cr_assert_eq(whole.ev, REQUEST_COMPLETE, "%s", whole.code);
        }
    }
}
