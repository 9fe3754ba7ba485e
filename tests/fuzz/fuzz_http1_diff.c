/* fuzz_http1_diff.c: differential libFuzzer target: the gateway's parser against http-parser.
 *
 * The input is a byte stream as a client would send it on one connection. It is parsed by
 * gateway/request.c (over gateway/http1.c), driven as gateway/conn.c drives it, and by Debian's
 * http-parser (the parser the gateway used before, lenient), each recording the requests it
 * accepted. For every request ours accepted (checked with abort()):
 *   - http-parser accepted it too: ours is never more lenient;
 *   - both read the same method, request-target, version, header fields (names as sent, values
 *     without surrounding whitespace; in absolute-form ours replaces Host by the target's
 *     authority, so Host is not compared there) and body.
 * Requests only http-parser accepts are where ours is stricter, which is the point.
 *
 * One exception, an http-parser bug this target found: a field whose name starts with
 * "Transfer-Encoding" and goes on ("Transfer-Encoding1: chunked") is taken for a
 * Transfer-Encoding that does not end in chunked, and the request refused
 * (HPE_INVALID_TRANSFER_ENCODING, or HPE_UNEXPECTED_CONTENT_LENGTH next to a Content-Length).
 * Ours reads it as the unknown field it is; such a refusal by http-parser, of a request without
 * a field named exactly Transfer-Encoding, is not counted as ours being more lenient.
 * FUZZ_HTTP1_VERBOSE=1 prints both sides. http-parser is linked into the fuzz targets only. */
#include <http_parser.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../gateway/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (64 * 1024)
#define MAX_MSGS 16
#define MAX_FIELDS 64

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_http1_diff: %s:%d: check failed: %s\n", __FILE__, __LINE__,      \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A byte string inside one side's store. */
struct str {
    uint32_t off, len;
};

struct msg {
    char method[16];
    int major, minor;
    int absolute; /* ours: absolute-form target */
    struct str url;
    struct str names[MAX_FIELDS], values[MAX_FIELDS];
    int nfields; /* -1: more than MAX_FIELDS */
    struct str body;
};

/* What one parser accepted: complete requests, their bytes in STORE. */
struct side {
    struct msg msgs[MAX_MSGS];
    int n;
    char store[4 * MAX_INPUT];
    size_t used;
    int in_msg; /* http-parser: a message has begun */
    int in_value;
    int head_done; /* http-parser: field callbacks now are trailers (not compared) */
};

static struct side ours, theirs;
static enum http_errno their_error; /* how http-parser stopped */

static uint32_t put(struct side *s, const char *p, size_t n)
{
    CHECK(s->used + n <= sizeof s->store);
    memcpy(s->store + s->used, p, n);
    s->used += n;
    return (uint32_t)(s->used - n);
}

/* Append to STR, which must be the last thing stored. */
static void grow(struct side *s, struct str *x, const char *p, size_t n)
{
    uint32_t at = put(s, p, n);
    if (x->len == 0) x->off = at;
    x->len += (uint32_t)n;
}

static struct str trimmed(const struct side *s, struct str x)
{
    while (x.len && (s->store[x.off] == ' ' || s->store[x.off] == '\t')) x.off++, x.len--;
    while (x.len && (s->store[x.off + x.len - 1] == ' ' || s->store[x.off + x.len - 1] == '\t'))
        x.len--;
    return x;
}

static int same(const struct side *a, struct str x, const struct side *b, struct str y)
{
    return x.len == y.len && memcmp(a->store + x.off, b->store + y.off, x.len) == 0;
}

static int is_host(const struct side *s, struct str name)
{
    return name.len == 4 && strncasecmp(s->store + name.off, "host", 4) == 0;
}

/* ---- ours ---------------------------------------------------------------------------------- */

static const struct request_limits limits = {
    .max_url_bytes = MAX_INPUT,
    .max_header_bytes = MAX_INPUT,
    .max_headers = MAX_FIELDS,
};

static int our_body(void *arg, const char *p, size_t n)
{
    struct msg *m = arg;
    grow(&ours, &m->body, p, n);
    return 0;
}

static void parse_ours(const char *in, size_t size)
{
    struct request r;
    memset(&r, 0, sizeof r);
    request_init(&r, &limits);
    size_t off = 0;
    while (ours.n < MAX_MSGS) {
        size_t used = 0;
        enum request_event ev = request_feed(&r, in + off, size - off, &used);
        off += used;
        if (ev == REQUEST_MORE || ev == REQUEST_ERROR) break;
        struct msg *m = &ours.msgs[ours.n];
        if (ev == REQUEST_HEAD) {
            memset(m, 0, sizeof *m);
            r.body_fn = our_body;
            r.body_arg = m;
            r.body_max = UINT64_MAX;
            request_resume(&r);
            continue;
        }
        /* REQUEST_COMPLETE: the head is still in the arena */
        snprintf(m->method, sizeof m->method, "%s", request_method_name(&r));
        m->major = r.parser.http_major;
        m->minor = r.parser.http_minor;
        m->absolute = r.path_skip > 0;
        size_t ulen;
        const char *u = request_url(&r, &ulen);
        m->url.off = put(&ours, u, ulen);
        m->url.len = (uint32_t)ulen;
        m->nfields = r.nheaders;
        for (int i = 0; i < r.nheaders; i++) {
            const struct request_header *h = &r.headers[i];
            m->names[i].off = put(&ours, r.arena + h->name_off, h->name_len);
            m->names[i].len = h->name_len;
            m->values[i].off = put(&ours, r.arena + h->value_off, h->value_len);
            m->values[i].len = h->value_len;
        }
        ours.n++;
        request_reset(&r);
    }
    request_release(&r);
}

/* ---- http-parser --------------------------------------------------------------------------- */

static struct msg *cur(void) { return &theirs.msgs[theirs.n]; }

static int hp_begin(http_parser *p)
{
    (void)p;
    if (theirs.n >= MAX_MSGS) return -1;
    memset(cur(), 0, sizeof *cur());
    theirs.in_msg = 1;
    theirs.in_value = 0;
    theirs.head_done = 0;
    return 0;
}

static int hp_url(http_parser *p, const char *at, size_t n)
{
    (void)p;
    grow(&theirs, &cur()->url, at, n);
    return 0;
}

static int hp_field(http_parser *p, const char *at, size_t n)
{
    (void)p;
    struct msg *m = cur();
    if (m->nfields < 0 || theirs.head_done) return 0;
    if (m->nfields == 0 || theirs.in_value) {
        if (m->nfields == MAX_FIELDS) {
            m->nfields = -1;
            return 0;
        }
        m->nfields++;
        theirs.in_value = 0;
    }
    grow(&theirs, &m->names[m->nfields - 1], at, n);
    return 0;
}

static int hp_value(http_parser *p, const char *at, size_t n)
{
    (void)p;
    struct msg *m = cur();
    if (m->nfields <= 0 || theirs.head_done) return 0;
    theirs.in_value = 1;
    grow(&theirs, &m->values[m->nfields - 1], at, n);
    return 0;
}

static int hp_headers_complete(http_parser *p)
{
    struct msg *m = cur();
    snprintf(m->method, sizeof m->method, "%s", http_method_str((enum http_method)p->method));
    m->major = p->http_major;
    m->minor = p->http_minor;
    p->upgrade = 0; /* as the gateway did: a declared body is read as a body */
    theirs.head_done = 1;
    return 0;
}

static int hp_body(http_parser *p, const char *at, size_t n)
{
    (void)p;
    grow(&theirs, &cur()->body, at, n);
    return 0;
}

static int hp_complete(http_parser *p)
{
    (void)p;
    theirs.n++;
    theirs.in_msg = 0;
    return 0;
}

static const http_parser_settings hp_settings = {
    .on_message_begin = hp_begin,
    .on_url = hp_url,
    .on_header_field = hp_field,
    .on_header_value = hp_value,
    .on_headers_complete = hp_headers_complete,
    .on_body = hp_body,
    .on_message_complete = hp_complete,
};

static void parse_theirs(const char *in, size_t size)
{
    http_parser p;
    http_parser_init(&p, HTTP_REQUEST);
    http_parser_execute(&p, &hp_settings, in, size);
    their_error = HTTP_PARSER_ERRNO(&p);
}

/* Whether http-parser's bug explains its refusal of ours' request I: a field whose name starts
 * with "Transfer-Encoding" and goes on, and none named exactly that. */
static int te_name_bug(int i)
{
    const struct msg *m = &ours.msgs[i];
    int prefix = 0;
    for (int f = 0; f < m->nfields; f++) {
        const struct str *n = &m->names[f];
        if (n->len < 17 || strncasecmp(ours.store + n->off, "transfer-encoding", 17) != 0) continue;
        if (n->len == 17) return 0;
        prefix = 1;
    }
    return prefix && (their_error == HPE_INVALID_TRANSFER_ENCODING ||
                      their_error == HPE_UNEXPECTED_CONTENT_LENGTH);
}

/* ---- compare ------------------------------------------------------------------------------- */

static void dump_str(const char *what, const struct side *s, struct str x)
{
    fprintf(stderr, "    %s %u \"", what, x.len);
    for (uint32_t i = 0; i < x.len && i < 200; i++) {
        unsigned char c = (unsigned char)s->store[x.off + i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') fputc(c, stderr);
        else fprintf(stderr, "\\x%02x", c);
    }
    fprintf(stderr, "\"\n");
}

static void dump(const char *name, const struct side *s)
{
    fprintf(stderr, "%s: %d requests\n", name, s->n);
    for (int i = 0; i < s->n; i++) {
        const struct msg *m = &s->msgs[i];
        fprintf(stderr, "  %d: %s HTTP/%d.%d, %d fields\n", i, m->method, m->major, m->minor,
                m->nfields);
        dump_str("target", s, m->url);
        for (int f = 0; f < m->nfields; f++) {
            dump_str("name", s, m->names[f]);
            dump_str("value", s, trimmed(s, m->values[f]));
        }
        dump_str("body", s, m->body);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("FUZZ_HTTP1_VERBOSE") != NULL;
    if (size == 0 || size > MAX_INPUT) return 0;
    ours.n = theirs.n = 0;
    ours.used = theirs.used = 0;
    theirs.in_msg = 0;
    parse_ours((const char *)data, size);
    parse_theirs((const char *)data, size);
    if (verbose) {
        dump("ours", &ours);
        dump("http-parser", &theirs);
    }
    /* http-parser stops at MAX_MSGS (its callback refuses the next): compare what both saw */
    if (ours.n > theirs.n && theirs.n < MAX_MSGS) CHECK(te_name_bug(theirs.n));
    for (int i = 0; i < ours.n && i < theirs.n; i++) {
        const struct msg *a = &ours.msgs[i], *b = &theirs.msgs[i];
        CHECK(strcmp(a->method, b->method) == 0);
        CHECK(a->major == b->major && a->minor == b->minor);
        CHECK(same(&ours, a->url, &theirs, b->url));
        CHECK(a->nfields == b->nfields);
        for (int f = 0; f < a->nfields; f++) {
            CHECK(same(&ours, a->names[f], &theirs, b->names[f]));
            if (a->absolute && is_host(&ours, a->names[f])) continue;
            CHECK(
                same(&ours, trimmed(&ours, a->values[f]), &theirs, trimmed(&theirs, b->values[f])));
        }
        CHECK(same(&ours, a->body, &theirs, b->body));
    }
    return 0;
}
