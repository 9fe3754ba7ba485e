/* curl_loop.h: libcurl's multi interface driven by libevent, shared by the worker's HTTP
 * client (http_client.c) and SMTP client (smtp_client.c).
 *
 * A loop runs any number of easy handles at once on one event_base: libcurl tells it which
 * sockets to watch and when to wake up (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION), the loop turns
 * that into one libevent event per socket and one timer, and finished transfers are read with
 * curl_multi_info_read. Connections are kept and reused between transfers of one loop.
 *
 * The contract:
 *   - every transfer accepted by curl_loop_add gets exactly one done callback, later, never from
 *     inside curl_loop_add;
 *   - the easy handle belongs to the loop from curl_loop_add on: the callback may read it
 *     (curl_easy_getinfo) and the loop cleans it up when the callback returns;
 *   - curl_loop_free calls the callback of every transfer still running with CURL_LOOP_CLOSED.
 *
 * Not thread-safe: use it from the thread that runs its event_base. */
#ifndef WORKER_CURL_LOOP_H
#define WORKER_CURL_LOOP_H

#include <curl/curl.h>

struct event_base;
struct curl_loop; /* opaque */

#define CURL_LOOP_CLOSED (-1) /* the CODE of a transfer ended by curl_loop_free */

/* A finished transfer: CODE is its CURLcode (CURLE_OK on success) or CURL_LOOP_CLOSED. EASY is
 * borrowed for the call. The callback may add transfers and may call curl_loop_free. */
typedef void curl_loop_done_fn(void *arg, CURL *easy, int code);

/* A loop on BASE (which must outlive it), or NULL with the reason in ERR (ERRLEN bytes). */
struct curl_loop *curl_loop_new(struct event_base *base, char *err, size_t errlen);

/* Run EASY (set up by the caller, CURLOPT_PRIVATE excepted: the loop uses it). Returns 0 when
 * accepted: DONE(ARG, EASY, code) is called exactly once, later. Returns -1 when libcurl refuses
 * it (reason in ERR): EASY is then cleaned up and DONE is not called. */
int curl_loop_add(struct curl_loop *l, CURL *easy, curl_loop_done_fn *done, void *arg, char *err,
                  size_t errlen);

/* The options every transfer of the worker sets on EASY: URL, the PROTOCOLS allowed ("http,https"),
 * no signals, TLS peers verified (host name included), the whole transfer's TIMEOUT_MS and the
 * CONNECT_TIMEOUT_MS, and libcurl's detail of a failure in ERRBUF (CURL_ERROR_SIZE bytes,
 * borrowed until the transfer ends). Returns the first option libcurl refused, or CURLE_OK. */
CURLcode curl_loop_setup(CURL *easy, const char *url, const char *protocols, long timeout_ms,
                         long connect_timeout_ms, char *errbuf);

/* curl_loop_add(L, EASY, ...) when SETUP (the result of setting EASY's options) is CURLE_OK;
 * otherwise EASY is cleaned up and -1 returned with "libcurl: <why>" in ERR. */
int curl_loop_start(struct curl_loop *l, CURL *easy, CURLcode setup, curl_loop_done_fn *done,
                    void *arg, char *err, size_t errlen);

/* Transfers running (accepted, callback not called yet). */
int curl_loop_running(const struct curl_loop *l);

/* Free L: the callback of every transfer still running is called first with CURL_LOOP_CLOSED.
 * Safe to call from inside a callback (the memory is then released when the dispatch that
 * called it returns). NULL is ignored. */
void curl_loop_free(struct curl_loop *l);

#endif
