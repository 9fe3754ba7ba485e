/* proxy.h: who the client is when the gateway sits behind a load balancer.
 *
 * Two sources, both believed only from the operator's trusted_proxies (cidr.h):
 *   - the PROXY protocol header (HAProxy's v1 text and v2 binary forms) that a TCP balancer
 *     sends before any byte of the client's, read once per connection (proxy_parse);
 *   - the X-Forwarded-For / X-Forwarded-Proto headers an HTTP proxy adds, read per request
 *     (proxy_request_client).
 * The parsing functions are pure: bytes in, a result out, no allocation, no I/O. `Forwarded:`
 * (RFC 7239) is not read. */
#ifndef ANTRE_GATEWAY_PROXY_H
#define ANTRE_GATEWAY_PROXY_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "antre/cidr.h"

struct request;

/* The longest v1 header, CRLF included (the specification's bound). */
#define PROXY_V1_MAX 107
/* The longest v2 address block accepted (the specification allows 65535; addresses take at most
 * 216 bytes, the rest is TLVs, which a sane balancer keeps short). */
#define PROXY_V2_MAX_LEN 1024
/* The most bytes a header can take: read no further before deciding. */
#define PROXY_HEADER_MAX (16 + PROXY_V2_MAX_LEN)

enum proxy_result {
    PROXY_INVALID = -1, /* not a PROXY header, or a malformed or oversized one */
    PROXY_MORE = 0,     /* a valid beginning: more bytes are needed */
    PROXY_OK = 1,       /* a whole header */
};

struct proxy_header {
    size_t len;              /* bytes the header takes (drain them) */
    int has_addr;            /* 1: SRC is the client; 0 (LOCAL, UNKNOWN, UNSPEC): keep the peer */
    struct sockaddr_in6 src; /* an IPv4 source is stored as struct sockaddr_in */
};

/* Parse the PROXY header at the start of BUF (LEN bytes, everything received so far). On
 * PROXY_OK fills *OUT; on PROXY_INVALID sets *WHY to a static English reason (for logs). A
 * result of PROXY_MORE with LEN >= PROXY_HEADER_MAX cannot happen: every prefix that long is
 * decided. Accepted: v1 TCP4, TCP6 and UNKNOWN; v2 LOCAL, and PROXY over TCP/IPv4, TCP/IPv6 or
 * UNSPEC (the address block is skipped, TLVs included). Anything else is invalid. */
enum proxy_result proxy_parse(const uint8_t *buf, size_t len, struct proxy_header *out,
                              const char **why);

/* A piece of text inside a request (not NUL-terminated). */
struct proxy_span {
    const char *p;
    size_t len;
};

/* The client address for a request from SRC (the peer, or the PROXY source), given the values
 * of its X-Forwarded-For headers in order (VALS, N; taken together as one comma-separated
 * list). When SRC is not in TRUSTED (or TRUSTED is empty) the headers are ignored. Otherwise the
 * list is walked from the right: a trusted address moves on to the next hop left; the first
 * address that is not trusted is the client; when every hop is trusted, the leftmost is. An
 * element that is not an address (IPv4, IPv6, optionally [bracketed] and with a :port; empty
 * elements are skipped) stops the walk: the request is from the last trusted hop reached (SRC
 * itself when the rightmost element is bad), since nothing beyond it can be believed.
 * Writes the result to *OUT (an IPv4 result as struct sockaddr_in, port 0) and returns 1 when
 * it is not SRC, else copies SRC and returns 0. */
int proxy_xff_client(const struct cidr_list *trusted, const struct sockaddr *src,
                     const struct proxy_span *vals, int n, struct sockaddr_in6 *out);

/* 1 when an element of the X-Forwarded-Proto values VALS (N) is "https" (any case). Believe it
 * only from a trusted peer; a false https only makes the client's cookies Secure. */
int proxy_xfp_https(const struct proxy_span *vals, int n);

/* The client of request R arriving from SRC: proxy_xff_client over R's X-Forwarded-For headers
 * (at most the last 16 are read) into *OUT; *HTTPS from X-Forwarded-Proto when SRC is trusted,
 * else 0. Returns as proxy_xff_client. */
int proxy_request_client(const struct cidr_list *trusted, const struct sockaddr *src,
                         const struct request *r, struct sockaddr_in6 *out, int *https);

/* Log a refused PROXY header from PEER (text) for WHY: at debug every time, and at warn at most
 * once a minute per process with the number refused since the last warning, so a scanner
 * cannot flood the log. */
void proxy_log_refused(const char *peer, const char *why);

#endif
