/* client.h: antre-bench's HTTP/1.1 client on libevent bufferevents, for loopback targets. One
 * client per target keeps a pool of keep-alive connections and hands each request to an idle
 * one (or a new one, up to the pool's size; beyond that requests wait in order), so thousands of
 * virtual applicants share a few hundred sockets and no thread. Every request has a timeout and
 * a bound on its answer; latency runs from the request's first byte written to its last byte
 * read. A transport failure (connect, reset, timeout, an answer too large or malformed) is
 * reported as status 0. */
#ifndef ANTRE_BENCH_CLIENT_H
#define ANTRE_BENCH_CLIENT_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct client;

/* What came back. Borrowed: valid only during the callback. */
struct client_resp {
    int status;          /* 0: transport error */
    uint64_t latency_us; /* first byte written to the last byte read */
    const char *body;    /* NUL-terminated copy of the body ("" when none) */
    size_t body_len;
    int retry_after_s;     /* Retry-After in seconds, -1 when absent */
    int64_t upload_offset; /* Upload-Offset, -1 when absent */
    int replayed;          /* Idempotent-Replayed: true */
    const char *error;     /* why a transport error happened ("" otherwise) */
};

typedef void (*client_cb)(const struct client_resp *r, void *arg);

/* A pool of at most MAX_CONNS connections to HOST:PORT (numeric IPv4) on BASE; each request
 * times out after TIMEOUT_MS and fails when its answer exceeds MAX_RESP bytes. NULL with ERR
 * set on a bad address. */
struct client *client_new(struct event_base *base, const char *host, int port, int max_conns,
                          int timeout_ms, size_t max_resp, char *err, size_t errlen);
/* Close every connection; pending requests are dropped without their callbacks. */
void client_free(struct client *c);

/* Send METHOD PATH with HEADERS (extra header lines, each ending "\r\n", or NULL; with
 * "Expect: 100-continue" among them the body waits for the server's 100) and BODY of LEN
 * bytes (NULL, 0: none; Content-Length is added whenever BODY is given or the method is
 * POST/PUT/PATCH). BODY is not copied: it must stay valid until CB runs. CB runs exactly once,
 * never from inside client_request. */
void client_request(struct client *c, const char *method, const char *path, const char *headers,
                    const void *body, size_t len, client_cb cb, void *arg);

/* Connections open, and requests waiting for one. */
int client_open_conns(const struct client *c);
size_t client_queued(const struct client *c);

#endif
