/* http1.h: a strict, resumable HTTP/1.1 request parser (RFC 9110, RFC 9112): the syntax only.
 *
 * One pass over whatever bytes have arrived, in the manner of h2o's picohttpparser but
 * resumable byte by byte: the caller feeds a buffer, the parser consumes up to the next event
 * and returns it, with a span that points into the caller's buffer (a piece of the target, a
 * field name or value, body bytes). A token split across two buffers comes as two spans. The
 * parser keeps no copy and holds no heap memory; bounds are the caller's business (request.c
 * applies antre's limits) except for a chunk-size line, which is bounded here.
 *
 * What it refuses (HTTP1_ERROR), where lenient parsers accept: a bare LF or a CR not followed
 * by LF anywhere in the head or the chunked framing, obs-fold (a field line starting with
 * whitespace), whitespace between a field name and its colon, a byte outside the field-value
 * grammar (a control character other than HTAB, DEL), a method it does not know, a
 * request-target byte outside visible ASCII or a '#', anything but one SP between the parts
 * of the request line, a version other than "HTTP/" DIGIT "." DIGIT, a chunk size that is not
 * hex or overflows 64 bits, a chunk-size line longer than HTTP1_CHUNK_LINE_MAX, a control
 * character in a chunk extension, and chunk data not followed by CRLF.
 *
 * What it leaves to the caller: the meaning of the fields (Host, Content-Length,
 * Transfer-Encoding, Connection); after HTTP1_HEAD_END the caller says how the body is framed
 * with http1_set_body(). The helpers below parse those field values by the same grammar. */
#ifndef ANTRE_HTTP1_H
#define ANTRE_HTTP1_H

#include <stddef.h>
#include <stdint.h>

/* Longest chunk-size line (size, extensions, CRLF) accepted. */
#define HTTP1_CHUNK_LINE_MAX 1024

/* The methods the gateway knows (0: none parsed yet). */
enum http1_method {
    HTTP1_NO_METHOD,
    HTTP1_GET,
    HTTP1_HEAD,
    HTTP1_POST,
    HTTP1_PUT,
    HTTP1_DELETE,
    HTTP1_OPTIONS,
    HTTP1_PATCH,
    HTTP1_TRACE,
    HTTP1_CONNECT,
    HTTP1_METHOD_COUNT
};

enum http1_event {
    HTTP1_MORE,      /* all input consumed; need more bytes */
    HTTP1_TARGET,    /* span: a piece of the request-target */
    HTTP1_NAME,      /* span: a piece of a field name (head or trailer) */
    HTTP1_VALUE,     /* span: a piece of a field value, leading whitespace skipped (trailing
                      * whitespace is included: the caller trims it at HTTP1_FIELD_END) */
    HTTP1_FIELD_END, /* a field line ended */
    HTTP1_HEAD_END,  /* the head is complete; call http1_set_body() before feeding more */
    HTTP1_BODY,      /* span: body bytes (chunked framing removed) */
    HTTP1_TRAILERS,  /* the last chunk is read: field lines from here on are trailers */
    HTTP1_DONE,      /* the message is complete; feeding consumes nothing until http1_init() */
    HTTP1_ERROR,     /* refused: see error and reason; sticky */
};

enum http1_error {
    HTTP1_ERR_NONE,
    HTTP1_ERR_SYNTAX, /* the request line or a field line breaks the grammar */
    HTTP1_ERR_CHUNK,  /* the chunked framing breaks the grammar */
};

enum http1_body { HTTP1_BODY_NONE, HTTP1_BODY_LENGTH, HTTP1_BODY_CHUNKED };

/* The parser's state; plain data, no heap. */
struct http1_parser {
    uint8_t state;
    uint8_t method;     /* enum http1_method */
    uint8_t in_trailer; /* field lines now are chunked trailers */
    uint8_t target_len; /* bytes of the target seen so far, capped at 255 (to tell "*") */
    uint8_t tok_len;    /* bytes of the method or version gathered in tok */
    char tok[8];
    char target_first;   /* first byte of the target */
    uint8_t chunk_empty; /* the chunk-size line has no digit yet */
    uint8_t body;        /* enum http1_body, from http1_set_body() */
    uint16_t chunk_line; /* bytes of the chunk-size line so far */
    unsigned short http_major, http_minor;
    uint64_t remaining; /* body bytes left: of the Content-Length, or of the current chunk */
    enum http1_error error;
    const char *reason; /* English detail, static */
};

/* A piece of the caller's buffer. */
struct http1_span {
    const char *at;
    size_t len;
};

/* Prepare P for a new message (also after HTTP1_DONE or an error). */
void http1_init(struct http1_parser *p);

/* Prepare P for the next message on the same connection. Where the previous one stopped at
 * HTTP1_HEAD_END (answered from its head), its last LF is expected first; if it had a body, the
 * parser refuses whatever comes (the body would otherwise be read as a request). */
void http1_next(struct http1_parser *p);

/* Parse from DATA[0..LEN): consume up to the next event, store it in *EV (and its bytes in
 * *SPAN for the span events) and return the number of bytes consumed. The caller feeds the
 * bytes not consumed again, with whatever arrived after them. */
size_t http1_parse(struct http1_parser *p, const char *data, size_t len, enum http1_event *ev,
                   struct http1_span *span);

/* After HTTP1_HEAD_END: the body is framed as KIND (LENGTH bytes for HTTP1_BODY_LENGTH). */
void http1_set_body(struct http1_parser *p, enum http1_body kind, uint64_t length);

/* "GET", ... for an enum http1_method; "-" for none. */
const char *http1_method_name(unsigned method);

/* RFC 9110 token character. */
int http1_is_tchar(unsigned char c);

/* A Content-Length value: 1 to 19 digits, nothing else. 0 and *OUT, or -1. */
int http1_content_length(const char *s, size_t n, uint64_t *out);

/* Whether a Host value (uri-host [":" port], RFC 9110 7.2) is valid: a non-empty reg-name,
 * IPv4 address or bracketed IP literal, then an optional port of up to 5 digits. */
int http1_host_valid(const char *s, size_t n);

/* Split an absolute-form target ("http://authority/path?query", http or https, RFC 9112
 * 3.2.2): the authority (valid as http1_host_valid, no userinfo) at S+*AUTH_OFF for *AUTH_LEN
 * bytes, the path and query from S+*PATH_OFF. 0, or -1 if it is not such a target. */
int http1_absolute_target(const char *s, size_t n, size_t *auth_off, size_t *auth_len,
                          size_t *path_off);

/* Whether the comma-separated list V (a Connection value) holds TOKEN (lower case), case
 * insensitively. */
int http1_list_has(const char *v, size_t n, const char *token);

#endif
