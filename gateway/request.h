/* request.h: one HTTP/1.1 request being parsed, with antre's limits applied as bytes arrive.
 *
 * The layer over the strict syntax parser (http1.h) that stores the head, applies antre's limits
 * and the rules on what the fields mean (framing, Host, singletons). The connection feeds it whatever bytes it has; it stops at two
 * points so the connection can act: once the head is complete (route, authorise, refuse by
 * Content-Length before any body byte is read, answer `Expect: 100-continue`), and once the whole
 * message is complete. Body bytes go to a sink the connection sets. Headers live in one arena
 * bounded by max_header_bytes; the arena is kept across keep-alive requests and given back with
 * request_release() when the connection goes idle. */
#ifndef ANTRE_REQUEST_H
#define ANTRE_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "http1.h"

struct request_limits {
    size_t max_url_bytes;
    size_t max_header_bytes;
    int max_headers;
};

enum request_event {
    REQUEST_MORE,     /* all input consumed; need more bytes */
    REQUEST_HEAD,     /* head complete; parsing paused until request_resume() */
    REQUEST_COMPLETE, /* message complete; paused until request_reset() */
    REQUEST_ERROR,    /* refused: see status/code; the connection must close after answering */
};

struct request_header {
    uint32_t name_off, name_len, value_off, value_len;
};

/* Receives decoded body bytes (chunked framing removed). Return 0, or -1 to stop with the
 * status/code set by request_fail(). */
typedef int request_body_fn(void *arg, const char *data, size_t len);

struct request {
    struct http1_parser parser; /* its http_major/http_minor are the request's version */
    const struct request_limits *limits;
    request_body_fn *body_fn;
    void *body_arg;
    uint64_t body_max;   /* decoded body bytes allowed (checked as chunks arrive) */
    uint64_t body_bytes; /* decoded body bytes seen */

    char *arena; /* URL then header names and values; NUL-separated */
    uint32_t arena_len, arena_cap;
    uint32_t url_off, url_len;
    struct request_header *headers;
    int nheaders, headers_cap;
    size_t head_bytes;     /* raw bytes of request line + headers so far */
    size_t trailer_bytes;  /* bytes of chunked trailer fields (counted, not stored) */
    int field;             /* where the head is: 0 between fields, 1 in a name, 2 in a value */
    char trailer_name[18]; /* the start of the trailer field name being read */
    uint32_t trailer_name_len;
    int paused;         /* at REQUEST_HEAD or REQUEST_COMPLETE until resume/reset */
    uint32_t path_skip; /* bytes of the target before its path ("http://host" in absolute-form) */

    /* Facts gathered from the head. */
    unsigned method; /* enum http1_method */
    int keep_alive;
    int chunked;
    int content_length_seen; /* number of Content-Length headers */
    int transfer_encoding_seen;
    int expect_continue;
    int expect_other; /* an Expect value we do not know */
    uint64_t content_length;
    int head_done;

    /* Why it failed (REQUEST_ERROR). */
    int status;         /* 400, 413, 414, 431, ... */
    const char *code;   /* stable error code, e.g. "headers_too_large" */
    const char *reason; /* English detail for logs and the message */
};

/* Prepare R (zeroed memory or after request_release). LIMITS is borrowed and must outlive R. */
void request_init(struct request *r, const struct request_limits *limits);

/* Feed LEN bytes. *USED is set to the number consumed (drain exactly that many; feed the rest
 * again after request_resume()/request_reset()). Returns what happened. */
enum request_event request_feed(struct request *r, const char *data, size_t len, size_t *used);

/* Continue after REQUEST_HEAD. */
void request_resume(struct request *r);

/* Start the next request on the same connection (after REQUEST_COMPLETE). Keeps the arena. */
void request_reset(struct request *r);

/* Free the arena and header array (idle connection or close). R can be reused after
 * request_init(). */
void request_release(struct request *r);

/* Bytes of heap R holds (arena and header index). */
size_t request_footprint(const struct request *r);

/* Make the current feed fail with STATUS/CODE/REASON (from a body sink). */
void request_fail(struct request *r, int status, const char *code, const char *reason);

/* The request target as sent, its path part (before '?'; in absolute-form the part after the
 * authority, "/" if that is empty) and query (after '?', or NULL). Pointers stay valid until
 * request_reset/request_release. */
const char *request_url(const struct request *r, size_t *len);
const char *request_path(const struct request *r, size_t *len);
const char *request_query(const struct request *r, size_t *len);

/* The value of the first header named NAME (lower case; matched case-insensitively), without
 * surrounding whitespace, or NULL. Host is the target's authority in absolute-form (RFC 9112
 * 3.2.2). Singleton fields (Host, Authorization, Cookie, ...) are never repeated: such a request
 * is refused. */
const char *request_header(const struct request *r, const char *name, size_t *len);

/* The value of the next header named NAME (case-insensitive) at or after position *POS (start
 * with 0), or NULL; *POS moves past it. For headers that may repeat (X-Forwarded-For). */
const char *request_header_next(const struct request *r, const char *name, int *pos, size_t *len);

/* "GET", "POST", ... */
const char *request_method_name(const struct request *r);

#endif
