/* http_client.h: the worker's asynchronous HTTP client (libcurl's multi interface on libevent).
 *
 * One struct http_client runs any number of requests at once on one event_base: libcurl tells
 * it which sockets to watch and when to wake up (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION), the
 * client turns that into one libevent event per socket and one timer, and finished transfers
 * are read with curl_multi_info_read. Connections are kept and reused between requests.
 *
 * The contract, as for rconn (include/antre/rconn.h):
 *   - every request has a total timeout and a connect timeout of its own; a request that does
 *     not finish in time fails with "timeout";
 *   - every accepted request gets exactly one callback, later, never from inside
 *     http_client_request();
 *   - a request is refused at once (no callback) when max_in_flight requests are already in
 *     flight or the request is invalid;
 *   - the response body is kept up to the request's max_response_bytes: a larger one fails the
 *     request with "response too large" (the transfer is cut there, nothing more is read);
 *   - http_client_free() calls the callback of every request still in flight with "closed".
 *
 * What the caller must know:
 *   - Not thread-safe: use it from the thread that runs its event_base.
 *   - Only http:// and https:// are allowed; redirects are not followed (a 3xx is an answer);
 *     TLS peers are verified against the system's CA store (host name included).
 *   - A request that failed ("timeout", "connect failed: ...") may still have reached the
 *     server: only retry what the server can recognise as a repeat (Idempotency-Key).
 *   - Error strings never hold the URL (it may carry credentials) nor any header value. */
#ifndef WORKER_HTTP_CLIENT_H
#define WORKER_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct event_base;
struct http_client; /* opaque */

struct http_client_opts {
    int max_in_flight;      /* most requests in flight at once; 0: 64 */
    const char *user_agent; /* User-Agent header (copied); NULL: "antre-worker" */
};

/* One request. Everything is copied by http_client_request() before it returns. */
struct http_request {
    const char *method;         /* "GET", "POST", ... */
    const char *url;            /* http:// or https:// */
    const char *const *headers; /* "Name: value" lines, NULL-terminated; may be NULL */
    const char *body;           /* request body, BODY_LEN bytes; NULL: none */
    size_t body_len;
    int timeout_ms;            /* whole request, connect included; 0: 10000 */
    int connect_timeout_ms;    /* TCP + TLS connect; 0: 3000 */
    size_t max_response_bytes; /* longest body kept; 0: 65536 */
};

#define HTTP_CLIENT_HEADER_MAX 256 /* longest response header value kept */

/* The answer to one request, borrowed: valid only during the callback. */
struct http_response {
    int status;       /* HTTP status code */
    const char *body; /* BODY_LEN bytes, NUL-terminated */
    size_t body_len;
    char retry_after[HTTP_CLIENT_HEADER_MAX];  /* Retry-After value, "" when absent */
    char content_type[HTTP_CLIENT_HEADER_MAX]; /* Content-Type value, "" when absent */
};

/* Callback of one request. ARG is the pointer given with it. On an answer (any status) RESP is
 * the response and ERR is NULL. On failure RESP is NULL and ERR a short string: "timeout",
 * "connect failed: ...", "response too large", "closed" (http_client_free), or another
 * libcurl failure. The callback may start requests and may call http_client_free(). */
typedef void http_client_cb(void *arg, const struct http_response *resp, const char *err);

/* A client on BASE (which must outlive it). Returns it, to be freed with http_client_free(), or
 * NULL with the reason in ERR (ERRLEN bytes) when libcurl cannot be set up. */
struct http_client *http_client_new(struct event_base *base, const struct http_client_opts *opts,
                                    char *err, size_t errlen);

/* Start REQ. Returns 0 when accepted: CB(ARG, ...) will be called exactly once, later. Returns
 * -1 when refused at once (CB is not called), with the reason in ERR: too many in flight, a URL
 * that is not http(s), or libcurl refusing an option. */
int http_client_request(struct http_client *c, const struct http_request *req, http_client_cb *cb,
                        void *arg, char *err, size_t errlen);

/* Requests in flight (accepted, callback not called yet). */
int http_client_in_flight(const struct http_client *c);

/* Free C: the callback of every request in flight is called first with "closed". Safe to call
 * from inside a callback (the memory is then released when the callback returns). NULL is
 * ignored. */
void http_client_free(struct http_client *c);

/* The delay a Retry-After value V asks for, in seconds from NOW (Unix seconds): either
 * delay-seconds ("120") or an HTTP date ("Wed, 21 Oct 2026 07:28:00 GMT"; a past date is 0).
 * Returns -1 when V is empty or neither. */
int64_t http_client_retry_after(const char *v, time_t now);

#endif
