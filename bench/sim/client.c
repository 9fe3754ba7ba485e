/* client.c: antre-bench's HTTP/1.1 client: a pool of keep-alive connections per target on
 * libevent bufferevents, requests queued in order when every connection is busy, answers read
 * by Content-Length, chunked coding or until close, with a timer and a size bound on each. */
#include "client.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define HEAD_MAX 65536

struct req {
    struct req *next;
    char *head; /* the request line and headers, ready to write */
    const void *body;
    size_t len;
    int is_head; /* HEAD: no body in the answer */
    int retried; /* sent again once after a stale keep-alive connection failed */
    int expect;  /* Expect: 100-continue: the body waits for the 100 */
    client_cb cb;
    void *arg;
};

enum conn_state {
    C_IDLE,
    C_HEAD,
    C_BODY,
    C_CHUNK_SIZE,
    C_CHUNK_DATA,
    C_CHUNK_END,
    C_TRAILER,
    C_EOF
};

struct conn {
    struct client *c;
    struct conn *next_idle;
    struct bufferevent *bev;
    struct event *timer;
    struct req *req;
    enum conn_state state;
    int used;        /* has answered a request before (a keep-alive reuse) */
    int got_bytes;   /* some of this request's answer arrived */
    int close_after; /* Connection: close, or HTTP/1.0 */
    int body_held;   /* the body waits for 100 Continue */
    uint64_t sent_us;
    size_t need;
    struct evbuffer *body;
    struct client_resp resp;
};

struct client {
    struct event_base *base;
    struct sockaddr_in addr;
    int max_conns, nconns, timeout_ms;
    size_t max_resp, nqueued;
    struct conn *idle;
    struct req *qhead, *qtail;
    struct event *pump;
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void req_free(struct req *r)
{
    free(r->head);
    free(r);
}

static void conn_free(struct conn *k)
{
    struct client *c = k->c;
    for (struct conn **p = &c->idle; *p; p = &(*p)->next_idle)
        if (*p == k) {
            *p = k->next_idle;
            break;
        }
    if (k->bev) bufferevent_free(k->bev);
    event_free(k->timer);
    evbuffer_free(k->body);
    free(k);
    c->nconns--;
    event_active(c->pump, EV_TIMEOUT, 0);
}

/* Hand the answer (or the failure) to the request's owner. */
static void finish(struct conn *k, int status, const char *error)
{
    struct req *r = k->req;
    k->req = NULL;
    event_del(k->timer);
    struct client_resp *resp = &k->resp;
    resp->status = status;
    resp->error = error ? error : "";
    resp->latency_us = now_us() - k->sent_us;
    evbuffer_add(k->body, "", 1);
    resp->body_len = evbuffer_get_length(k->body) - 1;
    resp->body = (const char *)evbuffer_pullup(k->body, -1);
    if (status == 0) resp->body = "", resp->body_len = 0;
    r->cb(resp, r->arg);
    req_free(r);
    evbuffer_drain(k->body, evbuffer_get_length(k->body));
    k->state = C_IDLE;
    k->used = 1;
    if (status == 0 || k->close_after) {
        conn_free(k);
        return;
    }
    k->next_idle = k->c->idle;
    k->c->idle = k;
    event_active(k->c->pump, EV_TIMEOUT, 0);
}

static void fail(struct conn *k, const char *why)
{
    struct client *c = k->c;
    struct req *r = k->req;
    /* A keep-alive connection the server closed while idle: the request never reached it. */
    if (r && k->used && !k->got_bytes && !r->retried && strcmp(why, "timeout") != 0) {
        k->req = NULL;
        r->retried = 1;
        r->next = c->qhead;
        c->qhead = r;
        if (!c->qtail) c->qtail = r;
        c->nqueued++;
        conn_free(k);
        return;
    }
    if (r) {
        k->close_after = 1;
        finish(k, 0, why);
        return;
    }
    conn_free(k);
}

static int header_is(const char *line, size_t n, const char *name, const char **val)
{
    size_t l = strlen(name);
    if (n <= l || strncasecmp(line, name, l) != 0 || line[l] != ':') return 0;
    const char *v = line + l + 1;
    while (*v == ' ' || *v == '\t') v++;
    *val = v;
    return 1;
}

/* Parse the head in H (NUL-terminated, without the blank line). 0, or -1 when malformed. */
static int parse_head(struct conn *k, char *h)
{
    struct client_resp *r = &k->resp;
    int minor;
    if (sscanf(h, "HTTP/1.%d %d", &minor, &r->status) != 2 || r->status < 100 || r->status > 599)
        return -1;
    k->close_after = minor == 0;
    r->retry_after_s = -1;
    r->upload_offset = -1;
    r->replayed = 0;
    long long clen = -1;
    int chunked = 0;
    for (char *line = strstr(h, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        char *end = strstr(line, "\r\n");
        size_t n = end ? (size_t)(end - line) : strlen(line);
        const char *v;
        if (header_is(line, n, "content-length", &v)) clen = atoll(v);
        else if (header_is(line, n, "transfer-encoding", &v))
            chunked = strncasecmp(v, "chunked", 7) == 0;
        else if (header_is(line, n, "connection", &v))
            k->close_after |= strncasecmp(v, "close", 5) == 0;
        else if (header_is(line, n, "retry-after", &v)) r->retry_after_s = atoi(v);
        else if (header_is(line, n, "upload-offset", &v)) r->upload_offset = atoll(v);
        else if (header_is(line, n, "idempotent-replayed", &v))
            r->replayed = strncasecmp(v, "true", 4) == 0;
    }
    if (r->status < 200) {
        k->state = C_HEAD; /* 100 Continue: the real answer follows */
        if (r->status == 100 && k->body_held) {
            k->body_held = 0;
            evbuffer_add_reference(bufferevent_get_output(k->bev), k->req->body, k->req->len, NULL,
                                   NULL);
        }
        return 0;
    }
    if (k->body_held) k->close_after = 1; /* refused before the body: the server closes */
    if (k->req->is_head || r->status == 204 || r->status == 304) {
        k->need = 0;
        k->state = C_BODY;
    } else if (chunked) k->state = C_CHUNK_SIZE;
    else if (clen >= 0) {
        if ((size_t)clen > k->c->max_resp) return -1;
        k->need = (size_t)clen;
        k->state = C_BODY;
    } else {
        k->state = C_EOF;
        k->close_after = 1;
    }
    return 0;
}

/* Move up to N bytes of the input into the body, minding the bound. */
static int take(struct conn *k, struct evbuffer *in, size_t n)
{
    if (evbuffer_get_length(k->body) + n > k->c->max_resp) return -1;
    evbuffer_remove_buffer(in, k->body, n);
    return 0;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *k = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (!k->req) { /* bytes nobody asked for: the connection cannot be trusted */
        conn_free(k);
        return;
    }
    k->got_bytes = 1;
    for (;;) {
        size_t have = evbuffer_get_length(in);
        switch (k->state) {
        case C_IDLE: return;
        case C_HEAD: {
            struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
            if (p.pos < 0) {
                if (have > HEAD_MAX) return fail(k, "answer head too large");
                return;
            }
            char *h = malloc((size_t)p.pos + 1);
            evbuffer_remove(in, h, (size_t)p.pos);
            h[p.pos] = 0;
            evbuffer_drain(in, 4);
            int rc = parse_head(k, h);
            free(h);
            if (rc) return fail(k, "malformed or oversized answer");
            break;
        }
        case C_BODY:
            if (have < k->need) {
                if (take(k, in, have)) return fail(k, "answer too large");
                k->need -= have;
                return;
            }
            if (take(k, in, k->need)) return fail(k, "answer too large");
            return finish(k, k->resp.status, NULL);
        case C_CHUNK_SIZE:
        case C_CHUNK_END:
        case C_TRAILER: {
            size_t n;
            char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT);
            if (!line) {
                if (have > 4096) return fail(k, "chunk line too long");
                return;
            }
            enum conn_state st = k->state;
            unsigned long long size = strtoull(line, NULL, 16);
            free(line);
            if (st == C_CHUNK_END) k->state = C_CHUNK_SIZE;
            else if (st == C_TRAILER) {
                if (n == 0) return finish(k, k->resp.status, NULL);
            } else if (size == 0) k->state = C_TRAILER;
            else if (size > k->c->max_resp) return fail(k, "answer too large");
            else {
                k->need = (size_t)size;
                k->state = C_CHUNK_DATA;
            }
            break;
        }
        case C_CHUNK_DATA: {
            size_t n = have < k->need ? have : k->need;
            if (take(k, in, n)) return fail(k, "answer too large");
            k->need -= n;
            if (k->need) return;
            k->state = C_CHUNK_END;
            break;
        }
        case C_EOF:
            if (take(k, in, have)) return fail(k, "answer too large");
            return;
        }
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *k = arg;
    if (what & BEV_EVENT_CONNECTED) {
        /* Head and body go in separate writes: without this, Nagle holds the body's tail for
         * the server's delayed ACK (40 ms on Linux), which would be measured as the gateway's. */
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return;
    }
    if (k->req && k->state == C_EOF) {
        finish(k, k->resp.status, NULL);
        return;
    }
    fail(k, (what & BEV_EVENT_EOF) ? "connection closed" : "connection error");
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    fail(arg, "timeout");
}

static struct conn *conn_new(struct client *c)
{
    struct conn *k = calloc(1, sizeof *k);
    if (!k) abort();
    k->c = c;
    k->body = evbuffer_new();
    k->timer = evtimer_new(c->base, on_timeout, k);
    k->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!k->body || !k->timer || !k->bev) abort();
    bufferevent_setcb(k->bev, on_read, NULL, on_event, k);
    bufferevent_enable(k->bev, EV_READ | EV_WRITE);
    c->nconns++;
    if (bufferevent_socket_connect(k->bev, (struct sockaddr *)&c->addr, sizeof c->addr) < 0) {
        /* The error event does not come for a failed connect(2) call: fail on the next turn. */
        k->close_after = 1;
    }
    return k;
}

static void send_on(struct conn *k, struct req *r)
{
    k->req = r;
    k->state = C_HEAD;
    k->got_bytes = 0;
    k->need = 0;
    memset(&k->resp, 0, sizeof k->resp);
    struct evbuffer *out = bufferevent_get_output(k->bev);
    evbuffer_add(out, r->head, strlen(r->head));
    k->body_held = r->len && r->expect;
    if (r->len && !r->expect) evbuffer_add_reference(out, r->body, r->len, NULL, NULL);
    k->sent_us = now_us();
    struct timeval tv = {k->c->timeout_ms / 1000, (k->c->timeout_ms % 1000) * 1000};
    evtimer_add(k->timer, &tv);
}

static void on_pump(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct client *c = arg;
    while (c->qhead) {
        struct conn *k = c->idle;
        if (k) c->idle = k->next_idle;
        else if (c->nconns < c->max_conns) k = conn_new(c);
        else return;
        struct req *r = c->qhead;
        c->qhead = r->next;
        if (!c->qhead) c->qtail = NULL;
        c->nqueued--;
        send_on(k, r);
    }
}

struct client *client_new(struct event_base *base, const char *host, int port, int max_conns,
                          int timeout_ms, size_t max_resp, char *err, size_t errlen)
{
    struct client *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->addr.sin_family = AF_INET;
    c->addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &c->addr.sin_addr) != 1 || port <= 0 || port > 65535) {
        snprintf(err, errlen, "client: not a numeric IPv4 address and port: %s:%d", host, port);
        free(c);
        return NULL;
    }
    c->base = base;
    c->max_conns = max_conns > 0 ? max_conns : 1;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
    c->max_resp = max_resp;
    c->pump = event_new(base, -1, 0, on_pump, c);
    if (!c->pump) abort();
    return c;
}

void client_free(struct client *c)
{
    if (!c) return;
    while (c->idle) conn_free(c->idle);
    while (c->qhead) {
        struct req *r = c->qhead;
        c->qhead = r->next;
        req_free(r);
    }
    event_free(c->pump);
    free(c);
}

void client_request(struct client *c, const char *method, const char *path, const char *headers,
                    const void *body, size_t len, client_cb cb, void *arg)
{
    struct req *r = calloc(1, sizeof *r);
    if (!r) abort();
    int with_len =
        body || !strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH");
    char clen[48] = "";
    if (with_len) snprintf(clen, sizeof clen, "Content-Length: %zu\r\n", len);
    size_t n = strlen(method) + strlen(path) + (headers ? strlen(headers) : 0) + 128;
    r->head = malloc(n);
    if (!r->head) abort();
    snprintf(r->head, n, "%s %s HTTP/1.1\r\nHost: bench\r\n%s%s\r\n", method, path,
             headers ? headers : "", clen);
    r->body = body;
    r->len = body ? len : 0;
    r->is_head = !strcmp(method, "HEAD");
    r->expect = headers && strcasestr(headers, "expect: 100-continue") != NULL;
    r->cb = cb;
    r->arg = arg;
    if (c->qtail) c->qtail->next = r;
    else c->qhead = r;
    c->qtail = r;
    c->nqueued++;
    event_active(c->pump, EV_TIMEOUT, 0);
}

int client_open_conns(const struct client *c) { return c->nconns; }
size_t client_queued(const struct client *c) { return c->nqueued; }
