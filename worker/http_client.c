/* http_client.c: HTTP requests on the worker's libcurl loop (see http_client.h; the
 * multi/libevent plumbing is curl_loop.c's). This file sets up each easy handle (protocols,
 * timeouts, TLS checks, headers, body), keeps the response body up to its bound and the headers
 * it reports, and turns libcurl's result into the callback's answer or short error string. */
#include "http_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "curl_loop.h"

#define DEFAULT_MAX_IN_FLIGHT 64
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_CONNECT_TIMEOUT_MS 3000
#define DEFAULT_MAX_RESPONSE 65536

struct req {
    struct curl_slist *headers;
    char *body; /* the request body, owned (libcurl does not copy CURLOPT_POSTFIELDS) */
    size_t body_len;
    http_client_cb *cb;
    void *arg;
    char *resp; /* response body, up to max bytes + NUL */
    size_t len, max;
    int too_large; /* the body went past max: the transfer was cut */
    struct http_response out;
    char errbuf[CURL_ERROR_SIZE];
};

struct http_client {
    struct curl_loop *loop;
    int max_in_flight;
    char user_agent[128];
    int freeing; /* inside http_client_free: a callback's second free is ignored */
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct req *r = arg;
    size_t len = size * n;
    if (len > r->max - r->len) {
        r->too_large = 1;
        return 0; /* CURLE_WRITE_ERROR: the transfer stops here */
    }
    memcpy(r->resp + r->len, p, len);
    r->len += len;
    r->resp[r->len] = 0;
    return len;
}

/* Keep the header value of LINE (LEN bytes) in OUT when its name is NAME. */
static void keep_header(const char *line, size_t len, const char *name, char *out)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':') return;
    const char *v = line + nl + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vl = (size_t)(end - v);
    if (vl >= HTTP_CLIENT_HEADER_MAX) vl = HTTP_CLIENT_HEADER_MAX - 1;
    memcpy(out, v, vl);
    out[vl] = 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct req *r = arg;
    size_t len = size * n;
    /* A new status line (after a 100 Continue, say): the headers kept so far were not the
     * final response's. */
    if (len >= 5 && !strncmp(p, "HTTP/", 5)) {
        r->out.retry_after[0] = 0;
        r->out.content_type[0] = 0;
    }
    keep_header(p, len, "retry-after", r->out.retry_after);
    keep_header(p, len, "content-type", r->out.content_type);
    return len;
}

static void req_free(struct req *r)
{
    curl_slist_free_all(r->headers);
    if (r->body) explicit_bzero(r->body, r->body_len); /* it may hold a code */
    free(r->body);
    free(r->resp);
    free(r);
}

/* The loop finished R's transfer with CODE: its callback, then its memory. */
static void on_done(void *arg, CURL *easy, int code)
{
    struct req *r = arg;
    char why[CURL_ERROR_SIZE + 64];
    const char *err = NULL;
    if (code == CURL_LOOP_CLOSED) err = "closed";
    else if (r->too_large || code == CURLE_FILESIZE_EXCEEDED) err = "response too large";
    else if (code == CURLE_OPERATION_TIMEDOUT) err = "timeout";
    else if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
             code == CURLE_COULDNT_RESOLVE_PROXY) {
        /* libcurl's detail names the host and port, never the path or credentials. */
        snprintf(why, sizeof why, "connect failed: %s",
                 r->errbuf[0] ? r->errbuf : curl_easy_strerror((CURLcode)code));
        err = why;
    } else if (code != CURLE_OK) {
        snprintf(why, sizeof why, "%s", curl_easy_strerror((CURLcode)code));
        err = why;
    }
    if (!err) {
        long status = 0;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        r->out.status = (int)status;
        r->out.body = r->resp;
        r->out.body_len = r->len;
    }
    /* The client is not touched after the callback: it may free it. */
    r->cb(r->arg, err ? NULL : &r->out, err);
    req_free(r);
}

struct http_client *http_client_new(struct event_base *base, const struct http_client_opts *opts,
                                    char *err, size_t errlen)
{
    struct http_client *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->max_in_flight =
        opts && opts->max_in_flight > 0 ? opts->max_in_flight : DEFAULT_MAX_IN_FLIGHT;
    snprintf(c->user_agent, sizeof c->user_agent, "%s",
             opts && opts->user_agent ? opts->user_agent : "antre-worker");
    c->loop = curl_loop_new(base, err, errlen);
    if (!c->loop) {
        free(c);
        return NULL;
    }
    return c;
}

int http_client_request(struct http_client *c, const struct http_request *req, http_client_cb *cb,
                        void *arg, char *err, size_t errlen)
{
    if (curl_loop_running(c->loop) >= c->max_in_flight) {
        snprintf(err, errlen, "too many requests in flight (%d)", curl_loop_running(c->loop));
        return -1;
    }
    if (!req->url ||
        (strncasecmp(req->url, "http://", 7) && strncasecmp(req->url, "https://", 8))) {
        snprintf(err, errlen, "the URL is not http:// or https://");
        return -1;
    }
    struct req *r = calloc(1, sizeof *r);
    if (!r) abort();
    r->cb = cb;
    r->arg = arg;
    r->max = req->max_response_bytes ? req->max_response_bytes : DEFAULT_MAX_RESPONSE;
    r->resp = malloc(r->max + 1);
    CURL *e = curl_easy_init();
    if (!r->resp || !e) abort();
    r->resp[0] = 0;
    CURLcode rc = curl_loop_setup(e, req->url, "http,https",
                                  req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS,
                                  req->connect_timeout_ms > 0 ? req->connect_timeout_ms
                                                              : DEFAULT_CONNECT_TIMEOUT_MS,
                                  r->errbuf);
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val);                                    \
    } while (0)
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_USERAGENT, c->user_agent);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, r);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, r);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max);
    if (req->body) {
        r->body = malloc(req->body_len ? req->body_len : 1);
        if (!r->body) abort();
        memcpy(r->body, req->body, req->body_len);
        r->body_len = req->body_len;
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        SET(CURLOPT_POSTFIELDS, r->body);
    }
    if (req->method && strcmp(req->method, req->body ? "POST" : "GET"))
        SET(CURLOPT_CUSTOMREQUEST, req->method);
    /* No "Expect: 100-continue": a round trip for nothing on the small bodies sent here. */
    r->headers = curl_slist_append(NULL, "Expect:");
    for (const char *const *h = req->headers; h && *h && r->headers; h++)
        r->headers = curl_slist_append(r->headers, *h);
    if (!r->headers) abort();
    SET(CURLOPT_HTTPHEADER, r->headers);
#undef SET
    if (curl_loop_start(c->loop, e, rc, on_done, r, err, errlen) < 0) {
        req_free(r);
        return -1;
    }
    return 0;
}

int http_client_in_flight(const struct http_client *c) { return curl_loop_running(c->loop); }

void http_client_free(struct http_client *c)
{
    if (!c || c->freeing) return;
    c->freeing = 1;
    /* Every request in flight gets "closed" here; the loop's memory goes when the dispatch
     * that may be running returns. */
    curl_loop_free(c->loop);
    free(c);
}

int64_t http_client_retry_after(const char *v, time_t now)
{
    if (!v) return -1;
    while (*v == ' ' || *v == '\t') v++;
    if (!*v) return -1;
    if (*v >= '0' && *v <= '9') {
        int64_t s = 0;
        const char *p = v;
        for (; *p >= '0' && *p <= '9'; p++)
            if (s < INT64_C(1) << 40) s = s * 10 + (*p - '0');
        while (*p == ' ' || *p == '\t') p++;
        if (*p) return -1;
        return s > INT64_C(1) << 40 ? INT64_C(1) << 40 : s;
    }
    time_t t = curl_getdate(v, NULL);
    if (t == (time_t)-1) return -1;
    return t > now ? (int64_t)(t - now) : 0;
}
