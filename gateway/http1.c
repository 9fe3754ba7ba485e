/* http1.c: the strict HTTP/1.1 request parser (see http1.h).
 *
 * A state machine over bytes, with the long runs (the request-target, field names, field
 * values, body bytes) scanned in bulk: a 256-entry class table, and for values and targets 16
 * bytes at a time with SSE2 where the compiler has it. A status poll's head is mostly one long
 * Authorization value, so the value scan is the hot loop of the gateway's parsing.
 *
 * Why strict: a front proxy and this gateway must agree on where each request ends. Every
 * leniency (a bare LF ending a line, a CR followed by anything, a folded Transfer-Encoding, chunk
 * data not followed by CRLF) is a byte sequence the two may frame differently, which is how
 * request smuggling starts. RFC 9112 allows a recipient to accept a bare LF as a line end
 * (section 2.2); we do not, as nginx does not in its strict mode: no client we serve sends one,
 * and a proxy that does not accept it either would frame such bytes differently. */
#include "http1.h"

#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "antre/codec.h"

enum state {
    S_METHOD,
    S_LEAD_LF, /* an empty line before the request line (RFC 9112 2.2: ignored) */
    S_PREV_LF, /* the last LF of the previous head, answered at its head */
    S_TARGET,
    S_VERSION,
    S_LINE_LF,     /* after the request line's CR */
    S_FIELD_START, /* start of a field line, or the CR of the empty line */
    S_NAME,
    S_OWS, /* whitespace after the colon */
    S_VALUE,
    S_FIELD_LF, /* after a field line's CR */
    S_HEAD_LF,  /* after the empty line's CR */
    S_BODY_WAIT,
    S_HEAD_FINAL_LF, /* the body is set: consume the head's last LF */
    S_BODY_LENGTH,
    S_CHUNK_SIZE,
    S_CHUNK_BWS,
    S_CHUNK_EXT,
    S_CHUNK_LF,
    S_CHUNK_DATA,
    S_CHUNK_DATA_CR,
    S_CHUNK_DATA_LF,
    S_DONE,
    S_ERROR,
};

/* Byte classes. */
enum { C_TCHAR = 1, C_VALUE = 2, C_TARGET = 4, C_HEX = 8, C_REGNAME = 16 };

static unsigned char cls[256];

static void classes_init(void)
{
    if (cls['a']) return;
    for (int c = 0x21; c < 0x7f; c++) {
        cls[c] |= C_VALUE | C_TARGET;
        if (!strchr("\"(),/:;<=>?@[\\]{}", c)) cls[c] |= C_TCHAR;
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
            cls[c] |= C_HEX;
    }
    cls['#'] &= (unsigned char)~C_TARGET; /* a fragment is never sent (RFC 9112 3.2) */
    /* reg-name: unreserved and sub-delims (RFC 3986 3.2.2) */
    for (int c = 0; c < 0x80; c++)
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            (c && strchr("-._~!$&'()*+,;=", c)))
            cls[c] |= C_REGNAME;
    cls[' '] |= C_VALUE;
    cls['\t'] |= C_VALUE;
    for (int c = 0x80; c < 0x100; c++) cls[c] |= C_VALUE; /* obs-text */
}

int http1_is_tchar(unsigned char c)
{
    classes_init();
    return cls[c] & C_TCHAR;
}

static const char *const method_names[HTTP1_METHOD_COUNT] = {
    [HTTP1_NO_METHOD] = "-",     [HTTP1_GET] = "GET",     [HTTP1_HEAD] = "HEAD",
    [HTTP1_POST] = "POST",       [HTTP1_PUT] = "PUT",     [HTTP1_DELETE] = "DELETE",
    [HTTP1_OPTIONS] = "OPTIONS", [HTTP1_PATCH] = "PATCH", [HTTP1_TRACE] = "TRACE",
    [HTTP1_CONNECT] = "CONNECT",
};

const char *http1_method_name(unsigned method)
{
    return method < HTTP1_METHOD_COUNT ? method_names[method] : "-";
}

void http1_init(struct http1_parser *p)
{
    classes_init();
    memset(p, 0, sizeof *p);
    p->state = S_METHOD;
}

void http1_next(struct http1_parser *p)
{
    uint8_t was = p->state, body = p->body;
    http1_init(p);
    if (was == S_BODY_WAIT || was == S_HEAD_FINAL_LF) {
        /* The previous request was answered at its head, its last LF still unread. */
        p->state = S_PREV_LF;
        if (was == S_HEAD_FINAL_LF && body != HTTP1_BODY_NONE) {
            /* and its body too: what follows is no request (the connection closes then) */
            p->state = S_ERROR;
            p->error = HTTP1_ERR_SYNTAX;
            p->reason = "the previous request's body was not read";
        }
    }
}

static size_t fail(struct http1_parser *p, enum http1_event *ev, const char *reason)
{
    p->error = p->in_trailer || p->state >= S_CHUNK_SIZE ? HTTP1_ERR_CHUNK : HTTP1_ERR_SYNTAX;
    p->reason = reason;
    p->state = S_ERROR;
    *ev = HTTP1_ERROR;
    return 0;
}

/* Bytes of S[0..N) that may stand in a field value. */
static size_t scan_value(const unsigned char *s, size_t n)
{
    size_t i = 0;
#ifdef __SSE2__
    /* A byte stops the run if it is below 0x20 (HTAB is checked after) or DEL: flipping the top
     * bit makes the unsigned "below 0x20" a signed "below 0xa0". */
    const __m128i flip = _mm_set1_epi8((char)0x80);
    const __m128i low = _mm_set1_epi8((char)(0x20 ^ 0x80));
    const __m128i del = _mm_set1_epi8(0x7f);
    while (i + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i stop =
            _mm_or_si128(_mm_cmplt_epi8(_mm_xor_si128(v, flip), low), _mm_cmpeq_epi8(v, del));
        unsigned m = (unsigned)_mm_movemask_epi8(stop);
        if (!m) {
            i += 16;
            continue;
        }
        i += (size_t)__builtin_ctz(m);
        if (s[i] != '\t') return i;
        i++;
    }
#endif
    while (i + 4 <= n && (cls[s[i]] & cls[s[i + 1]] & cls[s[i + 2]] & cls[s[i + 3]] & C_VALUE))
        i += 4;
    while (i < n && (cls[s[i]] & C_VALUE)) i++;
    return i;
}

/* Bytes of S[0..N) that may stand in a request-target. */
static size_t scan_target(const unsigned char *s, size_t n)
{
    size_t i = 0;
#ifdef __SSE2__
    const __m128i space = _mm_set1_epi8(0x20);
    const __m128i del = _mm_set1_epi8(0x7f);
    const __m128i hash = _mm_set1_epi8('#');
    while (i + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        /* signed: bytes from 0x80 are negative, so "above SP and below DEL" is visible ASCII */
        __m128i ok = _mm_and_si128(_mm_cmpgt_epi8(v, space), _mm_cmplt_epi8(v, del));
        unsigned m = ((unsigned)_mm_movemask_epi8(ok) ^ 0xffffu) |
                     (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, hash));
        if (m) return i + (size_t)__builtin_ctz(m);
        i += 16;
    }
#endif
    while (i < n && (cls[s[i]] & C_TARGET)) i++;
    return i;
}

static size_t scan_name(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (cls[s[i]] & C_TCHAR)) i++;
    return i;
}

static int method_lookup(const char *s, size_t n)
{
    for (int m = HTTP1_GET; m < HTTP1_METHOD_COUNT; m++)
        if (method_names[m][0] == s[0] && strncmp(method_names[m], s, n) == 0 &&
            method_names[m][n] == 0)
            return m;
    return HTTP1_NO_METHOD;
}

static int hexval(unsigned char c)
{
    if (c <= '9') return c - '0';
    return (c | 0x20) - 'a' + 10;
}

/* A span event: consume N bytes from AT. */
static size_t span_out(enum http1_event *ev, enum http1_event what, struct http1_span *span,
                       const char *at, size_t n)
{
    *ev = what;
    span->at = at;
    span->len = n;
    return n;
}

size_t http1_parse(struct http1_parser *p, const char *data, size_t len, enum http1_event *ev,
                   struct http1_span *span)
{
    const unsigned char *s = (const unsigned char *)data;
    size_t i = 0;
    span->at = NULL;
    span->len = 0;
    if (p->state == S_ERROR) {
        *ev = HTTP1_ERROR;
        return 0;
    }
    if (p->state == S_DONE) {
        *ev = HTTP1_DONE;
        return 0;
    }
    if (p->state == S_BODY_WAIT) {
        *ev = HTTP1_HEAD_END;
        return 0;
    }
    while (i < len) {
        unsigned char c = s[i];
        switch (p->state) {
        case S_METHOD:
            if (c == '\r' && p->tok_len == 0) {
                p->state = S_LEAD_LF;
                i++;
                break;
            }
            if (c == ' ') {
                int m = method_lookup(p->tok, p->tok_len);
                if (m == HTTP1_NO_METHOD) return fail(p, ev, "unknown request method");
                p->method = (uint8_t)m;
                p->tok_len = 0;
                p->state = S_TARGET;
                i++;
                break;
            }
            if (!(cls[c] & C_TCHAR) || p->tok_len == 7)
                return fail(p, ev, "unknown request method");
            p->tok[p->tok_len++] = (char)c;
            i++;
            break;
        case S_TARGET: {
            if (p->target_len == 0) {
                /* origin-form, absolute-form, or "*" (RFC 9112 3.2); CONNECT's authority-form
                 * starts with a letter or digit and is refused by the caller */
                int alpha = (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
                if (c != '/' && c != '*' && !alpha && !(c >= '0' && c <= '9'))
                    return fail(p, ev, "bad request target");
                p->target_first = (char)c;
            }
            size_t n = scan_target(s + i, len - i);
            if (n) {
                unsigned t = p->target_len + (n > 255 ? 255 : (unsigned)n);
                p->target_len = (uint8_t)(t > 255 ? 255 : t);
                return span_out(ev, HTTP1_TARGET, span, data + i, n) + i;
            }
            if (c != ' ') return fail(p, ev, "bad character in the request target");
            if (p->target_first == '*' && (p->target_len != 1 || p->method != HTTP1_OPTIONS))
                return fail(p, ev, "bad request target");
            p->state = S_VERSION;
            i++;
            break;
        }
        case S_VERSION:
            if (p->tok_len < 8) {
                p->tok[p->tok_len++] = (char)c;
                i++;
                break;
            }
            if (c == '\n') return fail(p, ev, "bare LF as a line end");
            if (c != '\r' || memcmp(p->tok, "HTTP/", 5) != 0 || p->tok[5] < '0' ||
                p->tok[5] > '9' || p->tok[6] != '.' || p->tok[7] < '0' || p->tok[7] > '9')
                return fail(p, ev, "bad HTTP version");
            p->http_major = (unsigned short)(p->tok[5] - '0');
            p->http_minor = (unsigned short)(p->tok[7] - '0');
            p->state = S_LINE_LF;
            i++;
            break;
        case S_PREV_LF:
        case S_LEAD_LF:
            if (c != '\n') return fail(p, ev, "CR not followed by LF");
            p->state = S_METHOD;
            i++;
            break;
        case S_LINE_LF:
        case S_FIELD_LF:
            if (c != '\n') return fail(p, ev, "CR not followed by LF");
            i++;
            if (p->state == S_FIELD_LF) {
                p->state = S_FIELD_START;
                *ev = HTTP1_FIELD_END;
                return i;
            }
            p->state = S_FIELD_START;
            break;
        case S_FIELD_START:
            if (c == '\r') {
                p->state = S_HEAD_LF;
                i++;
                break;
            }
            if (c == ' ' || c == '\t')
                return fail(p, ev, "a field line starts with whitespace (obs-fold)");
            if (c == '\n') return fail(p, ev, "bare LF as a line end");
            if (!(cls[c] & C_TCHAR)) return fail(p, ev, "bad character in a field name");
            p->state = S_NAME;
            break;
        case S_NAME: {
            size_t n = scan_name(s + i, len - i);
            if (n) return span_out(ev, HTTP1_NAME, span, data + i, n) + i;
            if (c == ' ' || c == '\t')
                return fail(p, ev, "whitespace between a field name and the colon");
            if (c != ':') return fail(p, ev, "bad character in a field name");
            p->state = S_OWS;
            i++;
            break;
        }
        case S_OWS:
            if (c == ' ' || c == '\t') {
                i++;
                break;
            }
            p->state = S_VALUE;
            break;
        case S_VALUE: {
            size_t n = scan_value(s + i, len - i);
            if (n) return span_out(ev, HTTP1_VALUE, span, data + i, n) + i;
            if (c == '\n') return fail(p, ev, "bare LF as a line end");
            if (c != '\r') return fail(p, ev, "control character in a field value");
            p->state = S_FIELD_LF;
            i++;
            break;
        }
        case S_HEAD_LF:
            if (c != '\n') return fail(p, ev, "CR not followed by LF");
            if (p->in_trailer) {
                p->state = S_DONE;
                *ev = HTTP1_DONE;
                return i + 1;
            }
            /* The last LF stays unconsumed until the body is set: the caller always has a byte
             * left to feed after the head, and the bodiless message completes on it. */
            p->state = S_BODY_WAIT;
            *ev = HTTP1_HEAD_END;
            return i;
        case S_HEAD_FINAL_LF:
            i++;
            if (p->body == HTTP1_BODY_CHUNKED) {
                p->state = S_CHUNK_SIZE;
                p->chunk_empty = 1;
                break;
            }
            if (p->body == HTTP1_BODY_LENGTH && p->remaining) {
                p->state = S_BODY_LENGTH;
                break;
            }
            p->state = S_DONE;
            *ev = HTTP1_DONE;
            return i;
        case S_BODY_LENGTH: {
            size_t n = len - i < p->remaining ? len - i : (size_t)p->remaining;
            p->remaining -= n;
            if (!p->remaining) p->state = S_DONE;
            return span_out(ev, HTTP1_BODY, span, data + i, n) + i;
        }
        case S_CHUNK_SIZE:
        case S_CHUNK_BWS:
        case S_CHUNK_EXT:
            if (++p->chunk_line > HTTP1_CHUNK_LINE_MAX)
                return fail(p, ev, "chunk-size line too long");
            i++;
            if (c == '\r') {
                if (p->chunk_empty || p->state == S_CHUNK_BWS)
                    return fail(p, ev, "bad chunk-size line");
                p->state = S_CHUNK_LF;
            } else if (p->state == S_CHUNK_EXT) {
                if (!(cls[c] & C_VALUE))
                    return fail(p, ev, "control character in a chunk extension");
            } else if (c == ';' && !p->chunk_empty) {
                p->state = S_CHUNK_EXT;
            } else if (c == ' ' && !p->chunk_empty) {
                /* BWS before ';' (RFC 9112 7.1.1), spaces only: http-parser, the reference of
                 * our differential fuzzing, refuses a tab there */
                p->state = S_CHUNK_BWS;
            } else if (p->state == S_CHUNK_SIZE && (cls[c] & C_HEX)) {
                if (p->remaining >> 60) return fail(p, ev, "chunk size too large");
                p->remaining = (p->remaining << 4) | (uint64_t)hexval(c);
                p->chunk_empty = 0;
            } else {
                return fail(p, ev, "bad chunk-size line");
            }
            break;
        case S_CHUNK_LF:
            if (c != '\n') return fail(p, ev, "CR not followed by LF");
            i++;
            p->chunk_line = 0;
            if (p->remaining) {
                p->state = S_CHUNK_DATA;
            } else {
                p->in_trailer = 1; /* the last chunk: trailer fields, then the empty line */
                p->state = S_FIELD_START;
                *ev = HTTP1_TRAILERS;
                return i;
            }
            break;
        case S_CHUNK_DATA: {
            size_t n = len - i < p->remaining ? len - i : (size_t)p->remaining;
            p->remaining -= n;
            if (!p->remaining) p->state = S_CHUNK_DATA_CR;
            return span_out(ev, HTTP1_BODY, span, data + i, n) + i;
        }
        case S_CHUNK_DATA_CR:
            if (c != '\r') return fail(p, ev, "chunk data not followed by CRLF");
            p->state = S_CHUNK_DATA_LF;
            i++;
            break;
        case S_CHUNK_DATA_LF:
            if (c != '\n') return fail(p, ev, "chunk data not followed by CRLF");
            p->state = S_CHUNK_SIZE;
            p->chunk_empty = 1;
            i++;
            break;
        case S_DONE: *ev = HTTP1_DONE; return i;
        default: return fail(p, ev, "parser state");
        }
    }
    if (p->state == S_DONE) {
        *ev = HTTP1_DONE;
        return i;
    }
    *ev = HTTP1_MORE;
    return i;
}

void http1_set_body(struct http1_parser *p, enum http1_body kind, uint64_t length)
{
    if (p->state != S_BODY_WAIT) return;
    p->body = (uint8_t)kind;
    p->remaining = kind == HTTP1_BODY_LENGTH ? length : 0;
    p->state = S_HEAD_FINAL_LF;
}

int http1_content_length(const char *s, size_t n, uint64_t *out)
{
    return codec_decimal_u64(s, n, out);
}

int http1_host_valid(const char *s, size_t n)
{
    size_t i = 0;
    classes_init();
    if (n == 0) return 0;
    if (s[0] == '[') {
        /* IP-literal: IPv6address or IPvFuture; hex digits, ':' and '.' (and the "v" of
         * IPvFuture's sub-delims are not worth accepting here) */
        for (i = 1; i < n && s[i] != ']'; i++)
            if (!(cls[(unsigned char)s[i]] & C_HEX) && s[i] != ':' && s[i] != '.') return 0;
        if (i == n || i == 1) return 0;
        i++;
    } else {
        /* reg-name (an IPv4 address is one too): unreserved, pct-encoded, sub-delims */
        for (; i < n && s[i] != ':'; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '%') {
                if (i + 2 >= n || !(cls[(unsigned char)s[i + 1]] & C_HEX) ||
                    !(cls[(unsigned char)s[i + 2]] & C_HEX))
                    return 0;
                i += 2;
            } else if (!(cls[c] & C_REGNAME)) {
                return 0;
            }
        }
        if (i == 0) return 0;
    }
    if (i == n) return 1;
    if (s[i] != ':' || n - i - 1 > 5) return 0;
    for (i++; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

int http1_absolute_target(const char *s, size_t n, size_t *auth_off, size_t *auth_len,
                          size_t *path_off)
{
    size_t i;
    if (n >= 7 && strncasecmp(s, "http://", 7) == 0) i = 7;
    else if (n >= 8 && strncasecmp(s, "https://", 8) == 0) i = 8;
    else return -1;
    size_t a = i;
    while (i < n && s[i] != '/' && s[i] != '?') i++;
    if (!http1_host_valid(s + a, i - a)) return -1; /* also refuses userinfo ('@') */
    *auth_off = a;
    *auth_len = i - a;
    *path_off = i;
    return 0;
}

int http1_list_has(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t start = i;
        while (i < n && v[i] != ',') i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t')) end--;
        if (end - start == tl && strncasecmp(v + start, token, tl) == 0) return 1;
    }
    return 0;
}
