/* http_client.c: libcurl's multi interface driven by libevent (see http_client.h).
 *
 * libcurl owns the transfers; this file only tells it about readiness and time. For every
 * socket libcurl wants watched (CURLMOPT_SOCKETFUNCTION) there is one persistent event, made
 * again when the wanted direction changes and freed on CURL_POLL_REMOVE; libcurl's single
 * timeout (CURLMOPT_TIMERFUNCTION) is one evtimer. Both end in curl_multi_socket_action, after
 * which finished transfers are collected with curl_multi_info_read and their callbacks called.
 *
 * Why the timer callback never calls curl_multi_socket_action itself: libcurl asks for a zero
 * timeout from inside curl_multi_add_handle, and acting from there would re-enter libcurl (and
 * could call a request's callback from inside http_client_request, which the contract forbids).
 * A zero timeout is simply an evtimer due at the next loop iteration.
 *
 * Freeing from inside a callback: http_client_free fails every request still in flight, then,
 * when it is called while callbacks are being dispatched, leaves the last release of the multi
 * handle and of the struct to the dispatch loop, which stops at once. */
#include "http_client.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_MAX_IN_FLIGHT 64
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_CONNECT_TIMEOUT_MS 3000
#define DEFAULT_MAX_RESPONSE 65536

struct sock {
    struct http_client *c;
    curl_socket_t fd;
    struct event *ev;
    struct sock *next, *prev;
};

struct req {
    struct http_client *c;
    CURL *easy;
    struct curl_slist *headers;
    char *body; /* the request body, owned (libcurl does not copy CURLOPT_POSTFIELDS) */
    http_client_cb *cb;
    void *arg;
    char *resp; /* response body, up to max bytes + NUL */
    size_t len, max;
    int too_large; /* the body went past max: the transfer was cut */
    struct http_response out;
    char errbuf[CURL_ERROR_SIZE];
    struct req *next, *prev;
};

struct http_client {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    int max_in_flight;
    int in_flight;
    char user_agent[128];
    struct req *reqs;   /* in flight */
    struct sock *socks; /* watched */
    int dispatching;    /* inside collect(): a free is finished there */
    int freed;          /* http_client_free was called */
};

static void collect(struct http_client *c);

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct http_client *c = arg;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect(c);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct http_client *c = userp;
    if (timeout_ms < 0) {
        evtimer_del(c->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
    return 0;
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
    struct sock *s = arg;
    struct http_client *c = s->c;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    /* S may be freed inside this call (CURL_POLL_REMOVE): only C is used afterwards. */
    curl_multi_socket_action(c->multi, fd, flags, &running);
    collect(c);
}

static void sock_free(struct sock *s)
{
    struct http_client *c = s->c;
    if (s->ev) event_free(s->ev);
    if (s->prev) s->prev->next = s->next;
    else c->socks = s->next;
    if (s->next) s->next->prev = s->prev;
    free(s);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct http_client *c = userp;
    struct sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) sock_free(s);
        curl_multi_assign(c->multi, fd, NULL);
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) abort();
        s->c = c;
        s->fd = fd;
        s->next = c->socks;
        if (c->socks) c->socks->prev = s;
        c->socks = s;
        curl_multi_assign(c->multi, fd, s);
    }
    if (s->ev) event_free(s->ev);
    short ev =
        EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    s->ev = event_new(c->base, fd, ev, on_socket, s);
    if (!s->ev) abort();
    event_add(s->ev, NULL);
    return 0;
}

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

static void req_unlink_free(struct req *r)
{
    struct http_client *c = r->c;
    curl_multi_remove_handle(c->multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    if (r->prev) r->prev->next = r->next;
    else c->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
    c->in_flight--;
    free(r->body);
    free(r->resp);
    free(r);
}

/* Finish R with CODE: its callback, then its memory. */
static void finish(struct req *r, CURLcode code)
{
    char why[CURL_ERROR_SIZE + 64];
    const char *err = NULL;
    if (r->too_large || code == CURLE_FILESIZE_EXCEEDED) err = "response too large";
    else if (code == CURLE_OPERATION_TIMEDOUT) err = "timeout";
    else if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
             code == CURLE_COULDNT_RESOLVE_PROXY) {
        /* libcurl's detail names the host and port, never the path or credentials. */
        snprintf(why, sizeof why, "connect failed: %s",
                 r->errbuf[0] ? r->errbuf : curl_easy_strerror(code));
        err = why;
    } else if (code != CURLE_OK) {
        snprintf(why, sizeof why, "%s", curl_easy_strerror(code));
        err = why;
    }
    if (!err) {
        long status = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        r->out.status = (int)status;
        r->out.body = r->resp;
        r->out.body_len = r->len;
    }
    http_client_cb *cb = r->cb;
    void *arg = r->arg;
    struct http_client *c = r->c; /* alive until collect() returns */
    /* The callback sees R's response; R is released afterwards, unless the callback freed the
     * client, which released it already. */
    r->cb = NULL;
    cb(arg, err ? NULL : &r->out, err);
    if (!c->freed) req_unlink_free(r);
}

static void collect(struct http_client *c)
{
    c->dispatching++;
    CURLMsg *m;
    int left;
    while (!c->freed && (m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        struct req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r && r->cb) finish(r, m->data.result);
    }
    c->dispatching--;
    if (c->freed && !c->dispatching) {
        curl_multi_cleanup(c->multi);
        while (c->socks) sock_free(c->socks);
        event_free(c->timer);
        free(c);
    }
}

struct http_client *http_client_new(struct event_base *base, const struct http_client_opts *opts,
                                    char *err, size_t errlen)
{
    static int global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
            snprintf(err, errlen, "libcurl: global initialisation failed");
            return NULL;
        }
        global_done = 1;
    }
    struct http_client *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->base = base;
    c->max_in_flight =
        opts && opts->max_in_flight > 0 ? opts->max_in_flight : DEFAULT_MAX_IN_FLIGHT;
    snprintf(c->user_agent, sizeof c->user_agent, "%s",
             opts && opts->user_agent ? opts->user_agent : "antre-worker");
    c->multi = curl_multi_init();
    c->timer = evtimer_new(base, on_timer, c);
    if (!c->multi || !c->timer) {
        snprintf(err, errlen, "libcurl: cannot create a multi handle");
        if (c->multi) curl_multi_cleanup(c->multi);
        if (c->timer) event_free(c->timer);
        free(c);
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    return c;
}

int http_client_request(struct http_client *c, const struct http_request *req, http_client_cb *cb,
                        void *arg, char *err, size_t errlen)
{
    if (c->freed) {
        snprintf(err, errlen, "closed");
        return -1;
    }
    if (c->in_flight >= c->max_in_flight) {
        snprintf(err, errlen, "too many requests in flight (%d)", c->in_flight);
        return -1;
    }
    if (!req->url ||
        (strncasecmp(req->url, "http://", 7) && strncasecmp(req->url, "https://", 8))) {
        snprintf(err, errlen, "the URL is not http:// or https://");
        return -1;
    }
    struct req *r = calloc(1, sizeof *r);
    if (!r) abort();
    r->c = c;
    r->cb = cb;
    r->arg = arg;
    r->max = req->max_response_bytes ? req->max_response_bytes : DEFAULT_MAX_RESPONSE;
    r->resp = malloc(r->max + 1);
    r->easy = curl_easy_init();
    if (!r->resp || !r->easy) abort();
    r->resp[0] = 0;
    CURL *e = r->easy;
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val);                                    \
    } while (0)
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_TIMEOUT_MS, (long)(req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS));
    SET(CURLOPT_CONNECTTIMEOUT_MS,
        (long)(req->connect_timeout_ms > 0 ? req->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS));
    SET(CURLOPT_USERAGENT, c->user_agent);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, r);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, r);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_PRIVATE, r);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max);
    if (req->body) {
        r->body = malloc(req->body_len ? req->body_len : 1);
        if (!r->body) abort();
        memcpy(r->body, req->body, req->body_len);
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
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "libcurl: %s", curl_easy_strerror(rc));
        curl_easy_cleanup(e);
        curl_slist_free_all(r->headers);
        free(r->body);
        free(r->resp);
        free(r);
        return -1;
    }
    r->next = c->reqs;
    if (c->reqs) c->reqs->prev = r;
    c->reqs = r;
    c->in_flight++;
    CURLMcode mc = curl_multi_add_handle(c->multi, e);
    if (mc != CURLM_OK) {
        snprintf(err, errlen, "libcurl: %s", curl_multi_strerror(mc));
        req_unlink_free(r);
        return -1;
    }
    return 0;
}

int http_client_in_flight(const struct http_client *c) { return c->in_flight; }

void http_client_free(struct http_client *c)
{
    if (!c || c->freed) return;
    c->freed = 1;
    /* Each request is unlinked before its callback, so a callback that looks at the client
     * sees it shrinking and nothing is failed twice. */
    while (c->reqs) {
        struct req *r = c->reqs;
        http_client_cb *cb = r->cb;
        void *arg = r->arg;
        r->cb = NULL;
        req_unlink_free(r);
        if (cb) cb(arg, NULL, "closed");
    }
    if (c->dispatching) return; /* collect() finishes the free */
    curl_multi_cleanup(c->multi);
    while (c->socks) sock_free(c->socks);
    event_free(c->timer);
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
