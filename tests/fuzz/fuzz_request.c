/* fuzz_request.c: libFuzzer target for the request parsing path (gateway/request.c).
 *
 * The input is a byte stream as a client would send it on one connection. It is parsed the
 * way gateway/conn.c drives the parser (feed what arrived; at HEAD set a body sink and resume;
 * at COMPLETE reset and go on with the rest; at ERROR stop), three times over:
 *   1. all bytes at once,
 *   2. in pieces whose sizes are taken from the first bytes of the input,
 *   3. one byte at a time (short inputs only).
 * Limits are small (and one of three sets, chosen by a hash of the input) so every limit is
 * reachable. Checked with abort():
 *   - a feed never consumes more than given; REQUEST_MORE consumes everything;
 *   - the sink never receives more than body_max bytes;
 *   - after COMPLETE the URL, path, query and every header lie inside the arena, the path is a
 *     prefix of the URL and the query its tail; the URL did not move since HEAD;
 *   - an error has a known status and a code;
 *   - the three ways accept and refuse the same requests, with the same URLs and bodies (how
 *     bytes arrive must not change what the gateway decides).
 * FUZZ_REQUEST_NO_DIFF=1 skips that last comparison (to hunt for other bugs past a known
 * difference); FUZZ_REQUEST_VERBOSE=1 prints what each way decided. */
#include "../../gateway/request.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REQUESTS 64   /* requests recorded per way; more are parsed but not compared */
#define BYTEWISE_MAX 4096 /* way 3 only for inputs up to this size */

static const struct request_limits limit_sets[3] = {
    {.max_url_bytes = 64, .max_header_bytes = 512, .max_headers = 4},
    {.max_url_bytes = 128, .max_header_bytes = 1024, .max_headers = 8},
    {.max_url_bytes = 300, .max_header_bytes = 2048, .max_headers = 16},
};
static const uint64_t body_maxes[4] = {0, 16, 100, 4096};

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_request: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

/* What one request came to, for comparing the ways. */
struct rec {
    int ev; /* REQUEST_COMPLETE or REQUEST_ERROR */
    int status;
    const char *code;
    size_t end; /* input offset just after it (COMPLETE) */
    uint64_t url_hash;
    uint64_t body_hash;
    uint64_t body_len;
    int keep_alive;
    int chunked;
    unsigned method;
};

struct way {
    struct rec recs[MAX_REQUESTS];
    int n;     /* requests recorded */
    int total; /* requests finished (may exceed MAX_REQUESTS) */
};

struct sink {
    uint64_t body_max;
    uint64_t len;
    uint64_t hash;
};

static int sink_fn(void *arg, const char *data, size_t len)
{
    struct sink *s = arg;
    CHECK(len > 0);
    s->len += len;
    CHECK(s->len <= s->body_max);
    s->hash = fnv(s->hash, data, len);
    return 0;
}

static int inside(const struct request *r, const char *p, size_t len)
{
    if (len == 0) return 1;
    return r->arena && p >= r->arena && p + len <= r->arena + r->arena_len;
}

/* Invariants of a completed request. */
static void check_complete(const struct request *r, const char *url_at_head, size_t ulen_at_head)
{
    size_t ulen, plen, qlen;
    const char *u = request_url(r, &ulen);
    const char *p = request_path(r, &plen);
    const char *q = request_query(r, &qlen);
    CHECK(r->head_done == 2);
    CHECK(inside(r, u, ulen));
    CHECK(r->path_skip <= ulen);
    /* the path starts after the authority in absolute-form; an empty one there reads "/" */
    const char *ps = u + r->path_skip;
    size_t pl = plen;
    if (p != ps) {
        CHECK(r->path_skip > 0 && plen == 1 && p[0] == '/');
        pl = 0;
    }
    CHECK(pl <= ulen - r->path_skip);
    CHECK(ulen <= r->limits->max_url_bytes);
    CHECK(r->arena_len <= r->limits->max_header_bytes);
    CHECK(r->arena_len <= r->arena_cap);
    if (q) {
        CHECK(inside(r, q, qlen));
        CHECK(q == ps + pl + 1 && q + qlen == u + ulen);
        CHECK(ps[pl] == '?');
    } else {
        CHECK(qlen == 0 && pl == ulen - r->path_skip);
    }
    CHECK(memchr(p, '?', plen) == NULL);
    CHECK(u == url_at_head && ulen == ulen_at_head);
    CHECK(r->nheaders >= 0 && r->nheaders <= r->limits->max_headers);
    for (int i = 0; i < r->nheaders; i++) {
        const struct request_header *h = &r->headers[i];
        CHECK((size_t)h->name_off + h->name_len <= r->arena_len);
        CHECK(h->value_len == 0 || (size_t)h->value_off + h->value_len <= r->arena_len);
    }
    CHECK(!(r->chunked && r->content_length_seen));
    CHECK(r->body_bytes <= r->body_max);
    CHECK(request_method_name(r) != NULL);
}

static void check_error(const struct request *r)
{
    CHECK(r->code && r->code[0] && r->reason);
    CHECK(r->status == 400 || r->status == 413 || r->status == 414 || r->status == 431);
    if (r->status == 413) CHECK(strcmp(r->code, "body_too_large") == 0);
    if (r->status == 414) CHECK(strcmp(r->code, "uri_too_long") == 0);
    if (r->status == 431)
        CHECK(strcmp(r->code, "headers_too_large") == 0 ||
              strcmp(r->code, "too_many_headers") == 0);
}

/* Parse DATA arriving in pieces: piece i has size piece(i) (0 = everything left). */
static void parse(struct request *r, const uint8_t *data, size_t size, const uint8_t *sizes,
                  size_t nsizes, int bytewise, uint64_t body_max, struct way *w)
{
    const char *in = (const char *)data;
    size_t off = 0, arrived = 0, piece = 0;
    struct sink s = {.body_max = body_max, .len = 0, .hash = 14695981039346656037ull};
    const char *url_at_head = NULL;
    size_t ulen_at_head = 0;
    int heads = 0;
    memset(w, 0, sizeof *w);
    /* every round consumes a byte, lets bytes arrive, or ends the loop */
    for (size_t rounds = 0; rounds < 4 * size + 16; rounds++) {
        if (off == arrived) {
            if (arrived == size) return;
            size_t step = size;
            if (bytewise) step = 1;
            else if (nsizes) step = 1 + (size_t)(sizes[piece++ % nsizes] % 61);
            arrived = arrived + step > size ? size : arrived + step;
            continue;
        }
        size_t used = (size_t)-1;
        enum request_event ev = request_feed(r, in + off, arrived - off, &used);
        CHECK(used <= arrived - off);
        off += used;
        switch (ev) {
        case REQUEST_MORE:
            CHECK(off == arrived);
            CHECK(r->status == 0);
            break;
        case REQUEST_HEAD:
            CHECK(r->head_done == 1 && heads == 0);
            CHECK(r->status == 0);
            heads = 1;
            url_at_head = request_url(r, &ulen_at_head);
            s.len = 0;
            s.hash = 14695981039346656037ull;
            r->body_fn = sink_fn;
            r->body_arg = &s;
            r->body_max = body_max;
            request_resume(r);
            break;
        case REQUEST_COMPLETE:
        case REQUEST_ERROR: {
            struct rec rec;
            memset(&rec, 0, sizeof rec);
            rec.ev = ev;
            if (ev == REQUEST_COMPLETE) {
                CHECK(heads == 1);
                check_complete(r, url_at_head, ulen_at_head);
                size_t ulen;
                const char *u = request_url(r, &ulen);
                rec.url_hash = fnv(14695981039346656037ull, u, ulen);
                rec.body_hash = s.hash;
                rec.body_len = s.len;
                rec.keep_alive = r->keep_alive;
                rec.chunked = r->chunked;
                rec.method = r->method;
                rec.end = off;
            } else {
                check_error(r);
                rec.status = r->status;
                rec.code = r->code;
            }
            if (w->n < MAX_REQUESTS) w->recs[w->n++] = rec;
            w->total++;
            if (ev == REQUEST_ERROR) return;
            request_reset(r);
            heads = 0;
            url_at_head = NULL;
            break;
        }
        default: CHECK(!"unknown event");
        }
    }
    CHECK(!"parse loop did not end");
}

static void dump(const char *name, const struct request_limits *l, uint64_t body_max,
                 const struct way *w)
{
    fprintf(stderr,
            "%s (max_url_bytes %zu, max_header_bytes %zu, max_headers %d, body_max %llu):"
            " %d requests\n",
            name, l->max_url_bytes, l->max_header_bytes, l->max_headers,
            (unsigned long long)body_max, w->total);
    for (int i = 0; i < w->n; i++) {
        const struct rec *x = &w->recs[i];
        if (x->ev == REQUEST_COMPLETE)
            fprintf(stderr, "  %d: COMPLETE end %zu method %u body %llu keep_alive %d\n", i, x->end,
                    x->method, (unsigned long long)x->body_len, x->keep_alive);
        else fprintf(stderr, "  %d: ERROR %d %s\n", i, x->status, x->code);
    }
}

static void compare(const struct way *a, const struct way *b)
{
    CHECK(a->total == b->total);
    CHECK(a->n == b->n);
    for (int i = 0; i < a->n; i++) {
        const struct rec *x = &a->recs[i], *y = &b->recs[i];
        CHECK(x->ev == y->ev);
        /* A request with two faults (a URL both too long and malformed, a head both too large
         * and with too many headers) may be refused for either, depending on where the input
         * broke: http-parser hands over a token only when it ends or the input does. What
         * must not change is whether it is refused, and which request it is. */
        if (x->ev != REQUEST_COMPLETE) continue;
        CHECK(x->end == y->end);
        CHECK(x->url_hash == y->url_hash);
        CHECK(x->body_len == y->body_len);
        CHECK(x->body_hash == y->body_hash);
        CHECK(x->keep_alive == y->keep_alive);
        CHECK(x->chunked == y->chunked);
        CHECK(x->method == y->method);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int no_diff = -1, verbose;
    if (no_diff < 0) {
        no_diff = getenv("FUZZ_REQUEST_NO_DIFF") != NULL;
        verbose = getenv("FUZZ_REQUEST_VERBOSE") != NULL;
    }
    if (size == 0) return 0;

    uint64_t h = fnv(14695981039346656037ull, data, size);
    const struct request_limits *limits = &limit_sets[h % 3];
    uint64_t body_max = body_maxes[(h >> 8) % 4];

    static struct way whole, pieces, bytes;
    struct request r;
    memset(&r, 0, sizeof r);
    request_init(&r, limits);

    parse(&r, data, size, NULL, 0, 0, body_max, &whole);
    /* the same struct is reused after a release, as an idle connection does */
    request_release(&r);
    parse(&r, data, size, data, size < 8 ? size : 8, 0, body_max, &pieces);
    request_release(&r);
    if (size <= BYTEWISE_MAX) {
        parse(&r, data, size, NULL, 0, 1, body_max, &bytes);
        request_release(&r);
    }
    if (verbose) {
        dump("whole", limits, body_max, &whole);
        dump("pieces", limits, body_max, &pieces);
        if (size <= BYTEWISE_MAX) dump("bytewise", limits, body_max, &bytes);
    }
    if (!no_diff) {
        compare(&whole, &pieces);
        if (size <= BYTEWISE_MAX) compare(&whole, &bytes);
    }
    CHECK(r.arena == NULL && r.headers == NULL);
    return 0;
}
