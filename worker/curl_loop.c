/* curl_loop.c: libcurl's multi interface driven by libevent (see curl_loop.h).
 *
 * libcurl owns the transfers; this file only tells it about readiness and time. For every
 * socket libcurl wants watched (CURLMOPT_SOCKETFUNCTION) there is one persistent event, made
 * again when the wanted direction changes and freed on CURL_POLL_REMOVE; libcurl's single
 * timeout (CURLMOPT_TIMERFUNCTION) is one evtimer. Both end in curl_multi_socket_action, after
 * which finished transfers are collected with curl_multi_info_read and their callbacks called.
 *
 * Why the timer callback never calls curl_multi_socket_action itself: libcurl asks for a zero
 * timeout from inside curl_multi_add_handle, and acting from there would re-enter libcurl (and
 * could call a transfer's callback from inside curl_loop_add, which the contract forbids). A zero
 * timeout is simply an evtimer due at the next loop iteration.
 *
 * Freeing from inside a callback: curl_loop_free fails every transfer still running, then, when
 * it is called while callbacks are being dispatched, leaves the last release of the multi handle
 * and of the struct to the dispatch loop, which stops at once. */
#include "curl_loop.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>

struct sock {
    struct curl_loop *l;
    curl_socket_t fd;
    struct event *ev;
    struct sock *next, *prev;
};

struct xfer {
    struct curl_loop *l;
    CURL *easy;
    curl_loop_done_fn *done;
    void *arg;
    struct xfer *next, *prev;
};

struct curl_loop {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    int running;
    struct xfer *xfers; /* running */
    struct sock *socks; /* watched */
    int dispatching;    /* inside collect(): a free is finished there */
    int freed;          /* curl_loop_free was called */
};

static void collect(struct curl_loop *l);

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct curl_loop *l = arg;
    int running;
    curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect(l);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct curl_loop *l = userp;
    if (timeout_ms < 0) {
        evtimer_del(l->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(l->timer, &tv);
    return 0;
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
    struct sock *s = arg;
    struct curl_loop *l = s->l;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    /* S may be freed inside this call (CURL_POLL_REMOVE): only L is used afterwards. */
    curl_multi_socket_action(l->multi, fd, flags, &running);
    collect(l);
}

static void sock_free(struct sock *s)
{
    struct curl_loop *l = s->l;
    if (s->ev) event_free(s->ev);
    if (s->prev) s->prev->next = s->next;
    else l->socks = s->next;
    if (s->next) s->next->prev = s->prev;
    free(s);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct curl_loop *l = userp;
    struct sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) sock_free(s);
        curl_multi_assign(l->multi, fd, NULL);
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) abort();
        s->l = l;
        s->fd = fd;
        s->next = l->socks;
        if (l->socks) l->socks->prev = s;
        l->socks = s;
        curl_multi_assign(l->multi, fd, s);
    }
    if (s->ev) event_free(s->ev);
    short ev =
        EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    s->ev = event_new(l->base, fd, ev, on_socket, s);
    if (!s->ev) abort();
    event_add(s->ev, NULL);
    return 0;
}

/* Take X out of the multi handle and the list; its easy handle stays for the callback. */
static void xfer_unlink(struct xfer *x)
{
    struct curl_loop *l = x->l;
    curl_multi_remove_handle(l->multi, x->easy);
    if (x->prev) x->prev->next = x->next;
    else l->xfers = x->next;
    if (x->next) x->next->prev = x->prev;
    l->running--;
}

/* Unlink X, call its callback with CODE, then release it. */
static void xfer_finish(struct xfer *x, int code)
{
    xfer_unlink(x);
    x->done(x->arg, x->easy, code);
    curl_easy_cleanup(x->easy);
    free(x);
}

static void loop_release(struct curl_loop *l)
{
    curl_multi_cleanup(l->multi);
    while (l->socks) sock_free(l->socks);
    event_free(l->timer);
    free(l);
}

static void collect(struct curl_loop *l)
{
    l->dispatching++;
    CURLMsg *m;
    int left;
    while (!l->freed && (m = curl_multi_info_read(l->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        struct xfer *x = NULL;
        CURLcode code = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x) xfer_finish(x, (int)code);
    }
    l->dispatching--;
    if (l->freed && !l->dispatching) loop_release(l);
}

struct curl_loop *curl_loop_new(struct event_base *base, char *err, size_t errlen)
{
    static int global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
            snprintf(err, errlen, "libcurl: global initialisation failed");
            return NULL;
        }
        global_done = 1;
    }
    struct curl_loop *l = calloc(1, sizeof *l);
    if (!l) abort();
    l->base = base;
    l->multi = curl_multi_init();
    l->timer = evtimer_new(base, on_timer, l);
    if (!l->multi || !l->timer) {
        snprintf(err, errlen, "libcurl: cannot create a multi handle");
        if (l->multi) curl_multi_cleanup(l->multi);
        if (l->timer) event_free(l->timer);
        free(l);
        return NULL;
    }
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
    return l;
}

int curl_loop_add(struct curl_loop *l, CURL *easy, curl_loop_done_fn *done, void *arg, char *err,
                  size_t errlen)
{
    if (l->freed) {
        snprintf(err, errlen, "closed");
        curl_easy_cleanup(easy);
        return -1;
    }
    struct xfer *x = calloc(1, sizeof *x);
    if (!x) abort();
    x->l = l;
    x->easy = easy;
    x->done = done;
    x->arg = arg;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    x->next = l->xfers;
    if (l->xfers) l->xfers->prev = x;
    l->xfers = x;
    l->running++;
    CURLMcode mc = curl_multi_add_handle(l->multi, easy);
    if (mc != CURLM_OK) {
        snprintf(err, errlen, "libcurl: %s", curl_multi_strerror(mc));
        xfer_unlink(x);
        curl_easy_cleanup(easy);
        free(x);
        return -1;
    }
    return 0;
}

CURLcode curl_loop_setup(CURL *e, const char *url, const char *protocols, long timeout_ms,
                         long connect_timeout_ms, char *errbuf)
{
    CURLcode rc = curl_easy_setopt(e, CURLOPT_URL, url);
    if (rc == CURLE_OK) rc = curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, protocols);
    if (rc == CURLE_OK) rc = curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (rc == CURLE_OK) rc = curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    if (rc == CURLE_OK) rc = curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (rc == CURLE_OK) rc = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (rc == CURLE_OK) rc = curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    if (rc == CURLE_OK) rc = curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    return rc;
}

int curl_loop_start(struct curl_loop *l, CURL *easy, CURLcode setup, curl_loop_done_fn *done,
                    void *arg, char *err, size_t errlen)
{
    if (setup == CURLE_OK) return curl_loop_add(l, easy, done, arg, err, errlen);
    snprintf(err, errlen, "libcurl: %s", curl_easy_strerror(setup));
    curl_easy_cleanup(easy);
    return -1;
}

int curl_loop_running(const struct curl_loop *l) { return l->running; }

void curl_loop_free(struct curl_loop *l)
{
    if (!l || l->freed) return;
    l->freed = 1;
    /* Each transfer is unlinked before its callback, so a callback that looks at the loop sees
     * it shrinking and nothing is failed twice. */
    while (l->xfers) xfer_finish(l->xfers, CURL_LOOP_CLOSED);
    if (l->dispatching) return; /* collect() finishes the free */
    loop_release(l);
}
