/* test_http_client.c: the worker's libcurl client against a real HTTP server, and the
 * downstream helpers of register.c (signature, reason).
 *
 * The server is libevent's evhttp on a free loopback port of the same event_base the client
 * runs on, so one loop drives both and a test needs no thread. It answers by path: /ok (200,
 * echoing what it got), /big (a body of 100000 bytes), /hang (never answers), /slow429 (429 with
 * Retry-After). The loop is driven in slices with a bound on the total time: the bounds are
 * hang guards, not speed checks. */
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../worker/http_client.h"
#include "../../worker/register.h"

static struct event_base *base;
static struct evhttp *srv;
static int port;
static char seen_method[16], seen_idem[64], seen_body[256];

static void on_http(struct evhttp_request *req, void *arg)
{
    (void)arg;
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *out = evbuffer_new();
    if (!strcmp(uri, "/hang")) {
        evbuffer_free(out);
        return; /* never answered */
    }
    if (!strcmp(uri, "/ok")) {
        enum evhttp_cmd_type t = evhttp_request_get_command(req);
        snprintf(seen_method, sizeof seen_method, "%s", t == EVHTTP_REQ_POST ? "POST" : "other");
        const char *k =
            evhttp_find_header(evhttp_request_get_input_headers(req), "Idempotency-Key");
        snprintf(seen_idem, sizeof seen_idem, "%s", k ? k : "");
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(in);
        if (n >= sizeof seen_body) n = sizeof seen_body - 1;
        evbuffer_remove(in, seen_body, n);
        seen_body[n] = 0;
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/json");
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "7");
        evbuffer_add_printf(out, "{\"reference\":\"R-1\"}");
        evhttp_send_reply(req, 200, "OK", out);
    } else if (!strcmp(uri, "/big")) {
        char *big = malloc(100000);
        memset(big, 'x', 100000);
        evbuffer_add(out, big, 100000);
        free(big);
        evhttp_send_reply(req, 200, "OK", out);
    } else {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "2");
        evhttp_send_reply(req, 429, "Too Many Requests", out);
    }
    evbuffer_free(out);
}

static void setup(void)
{
    base = event_base_new();
    srv = evhttp_new(base);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(srv, "127.0.0.1", 0);
    cr_assert_not_null(bs);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
    port = ntohs(sa.sin_port);
    evhttp_set_gencb(srv, on_http, NULL);
    seen_method[0] = seen_idem[0] = seen_body[0] = 0;
}

static void teardown(void)
{
    evhttp_free(srv);
    event_base_free(base);
}

TestSuite(http_client, .init = setup, .fini = teardown, .timeout = 30);

/* One request's outcome, as its callback saw it. */
struct got {
    int calls;
    int status;
    char err[256];
    char body[512];
    size_t body_len;
    char retry_after[HTTP_CLIENT_HEADER_MAX], content_type[HTTP_CLIENT_HEADER_MAX];
    struct http_client *free_me; /* freed from inside the callback when set */
};

static int inside_request; /* set while http_client_request runs */

static void on_done(void *arg, const struct http_response *resp, const char *err)
{
    struct got *g = arg;
    cr_assert(!inside_request, "a callback from inside http_client_request");
    g->calls++;
    if (err) snprintf(g->err, sizeof g->err, "%s", err);
    if (resp) {
        g->status = resp->status;
        g->body_len = resp->body_len;
        snprintf(g->body, sizeof g->body, "%s", resp->body);
        snprintf(g->retry_after, sizeof g->retry_after, "%s", resp->retry_after);
        snprintf(g->content_type, sizeof g->content_type, "%s", resp->content_type);
    }
    if (g->free_me) http_client_free(g->free_me);
}

/* Run the loop until every one of N outcomes has a call, or MAX_MS passed. */
static void run_until(struct got *g, int n, int max_ms)
{
    for (int waited = 0; waited < max_ms; waited += 10) {
        int all = 1;
        for (int i = 0; i < n; i++) all &= g[i].calls > 0;
        if (all) return;
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
}

static int start(struct http_client *c, const char *path, const char *body, size_t max,
                 int timeout_ms, struct got *g)
{
    char url[128], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    const char *headers[] = {"Content-Type: application/json", "Idempotency-Key: reg-1", NULL};
    struct http_request req = {.method = "POST",
                               .url = url,
                               .headers = headers,
                               .body = body,
                               .body_len = body ? strlen(body) : 0,
                               .timeout_ms = timeout_ms,
                               .max_response_bytes = max};
    inside_request = 1;
    int r = http_client_request(c, &req, on_done, g, err, sizeof err);
    inside_request = 0;
    return r;
}

static struct http_client *client(int max_in_flight)
{
    char err[256];
    struct http_client_opts o = {.max_in_flight = max_in_flight};
    struct http_client *c = http_client_new(base, &o, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    return c;
}

Test(http_client, answer_with_body_and_headers)
{
    struct http_client *c = client(0);
    struct got g = {0};
    cr_assert_eq(start(c, "/ok", "{\"a\":1}", 0, 5000, &g), 0);
    cr_assert_eq(http_client_in_flight(c), 1);
    run_until(&g, 1, 10000);
    cr_assert_eq(g.calls, 1);
    cr_assert_str_empty(g.err);
    cr_assert_eq(g.status, 200);
    cr_assert_str_eq(g.body, "{\"reference\":\"R-1\"}");
    cr_assert_eq(g.body_len, strlen(g.body));
    cr_assert_str_eq(g.retry_after, "7");
    cr_assert_str_eq(g.content_type, "application/json");
    cr_assert_str_eq(seen_method, "POST");
    cr_assert_str_eq(seen_idem, "reg-1");
    cr_assert_str_eq(seen_body, "{\"a\":1}");
    cr_assert_eq(http_client_in_flight(c), 0);
    /* the connection is reused for a second request */
    struct got g2 = {0};
    cr_assert_eq(start(c, "/429", "{}", 0, 5000, &g2), 0);
    run_until(&g2, 1, 10000);
    cr_assert_eq(g2.status, 429);
    cr_assert_str_eq(g2.retry_after, "2");
    cr_assert_str_neq(g2.content_type, "application/json", "not the first answer's");
    http_client_free(c);
    cr_assert_eq(g.calls, 1);
}

Test(http_client, too_large_is_an_error)
{
    struct http_client *c = client(0);
    struct got g = {0};
    cr_assert_eq(start(c, "/big", NULL, 1000, 5000, &g), 0);
    run_until(&g, 1, 10000);
    cr_assert_eq(g.calls, 1);
    cr_assert_str_eq(g.err, "response too large");
    struct got ok = {0};
    cr_assert_eq(start(c, "/big", NULL, 200000, 5000, &ok), 0);
    run_until(&ok, 1, 10000);
    cr_assert_str_empty(ok.err);
    cr_assert_eq(ok.body_len, 100000);
    http_client_free(c);
}

Test(http_client, timeout)
{
    struct http_client *c = client(0);
    struct got g = {0};
    cr_assert_eq(start(c, "/hang", "{}", 0, 200, &g), 0);
    run_until(&g, 1, 10000);
    cr_assert_eq(g.calls, 1);
    cr_assert_str_eq(g.err, "timeout");
    http_client_free(c);
    cr_assert_eq(g.calls, 1, "no second callback at free");
}

Test(http_client, connect_refused)
{
    /* a port that was free a moment ago and has no listener */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s, (struct sockaddr *)&sa, sizeof sa);
    socklen_t sl = sizeof sa;
    getsockname(s, (struct sockaddr *)&sa, &sl);
    close(s);
    struct http_client *c = client(0);
    struct got g = {0};
    int saved = port;
    port = ntohs(sa.sin_port);
    cr_assert_eq(start(c, "/x", "{}", 0, 5000, &g), 0);
    port = saved;
    run_until(&g, 1, 10000);
    cr_assert_eq(g.calls, 1);
    cr_assert(!strncmp(g.err, "connect failed: ", 16), "%s", g.err);
    cr_assert_null(strstr(g.err, "/x"), "the path is not in the error: %s", g.err);
    http_client_free(c);
}

Test(http_client, cap_and_bad_urls_are_refused_at_once)
{
    struct http_client *c = client(2);
    struct got g[3] = {0};
    char err[256];
    struct got bad = {0};
    struct http_request req = {.url = "file:///etc/passwd"};
    cr_assert_eq(http_client_request(c, &req, on_done, &bad, err, sizeof err), -1);
    cr_assert_str_eq(err, "the URL is not http:// or https://");
    cr_assert_eq(start(c, "/hang", NULL, 0, 5000, &g[0]), 0);
    cr_assert_eq(start(c, "/hang", NULL, 0, 5000, &g[1]), 0);
    cr_assert_eq(start(c, "/hang", NULL, 0, 5000, &g[2]), -1);
    run_until(g, 2, 100);
    cr_assert_eq(g[0].calls + g[1].calls + g[2].calls + bad.calls, 0);
    /* freeing fails what is in flight, once each, and nothing else */
    http_client_free(c);
    cr_assert_eq(g[0].calls, 1);
    cr_assert_eq(g[1].calls, 1);
    cr_assert_str_eq(g[0].err, "closed");
    cr_assert_eq(g[2].calls + bad.calls, 0);
}

Test(http_client, free_from_inside_a_callback)
{
    struct http_client *c = client(0);
    struct got g[2] = {0};
    g[0].free_me = c;
    cr_assert_eq(start(c, "/429", NULL, 0, 5000, &g[0]), 0);
    cr_assert_eq(start(c, "/hang", NULL, 0, 5000, &g[1]), 0);
    run_until(g, 1, 10000);
    cr_assert_eq(g[0].calls, 1);
    cr_assert_eq(g[0].status, 429);
    cr_assert_eq(g[1].calls, 1, "the other request failed by the free");
    cr_assert_str_eq(g[1].err, "closed");
    run_until(g, 2, 50); /* the loop runs on without the client */
}

Test(http_client_retry_after, seconds_and_dates)
{
    time_t now = 1792567680; /* Wed, 21 Oct 2026 07:28:00 GMT */
    cr_assert_eq(http_client_retry_after("2", now), 2);
    cr_assert_eq(http_client_retry_after(" 120 ", now), 120);
    cr_assert_eq(http_client_retry_after("0", now), 0);
    cr_assert_eq(http_client_retry_after("Wed, 21 Oct 2026 07:28:10 GMT", now), 10);
    cr_assert_eq(http_client_retry_after("Wed, 21 Oct 2026 07:27:00 GMT", now), 0);
    cr_assert_eq(http_client_retry_after("", now), -1);
    cr_assert_eq(http_client_retry_after(NULL, now), -1);
    cr_assert_eq(http_client_retry_after("1.5", now), -1);
    cr_assert_eq(http_client_retry_after("soon", now), -1);
    cr_assert_eq(http_client_retry_after("99999999999999999999999", now), INT64_C(1) << 40);
}

Test(register, signature_format)
{
    uint8_t key[32];
    for (int i = 0; i < 32; i++) key[i] = (uint8_t)i;
    char out[128];
    const char *body = "{\"id\":\"r1\"}";
    /* the value Python's hmac.new(bytes(range(32)), b'1765000000.' + body, sha256) gives */
    cr_assert_eq(register_sign(key, sizeof key, 1765000000, body, strlen(body), out, sizeof out),
                 (int)strlen("t=1765000000,v1=") + 64);
    cr_assert_str_eq(out, "t=1765000000,v1="
                          "926177797113e5096f85f7db4e9727aedf1d323531b84fc132a37b771d17f7e6");
    memset(key, 'k', sizeof key);
    cr_assert_gt(register_sign(key, sizeof key, 0, "", 0, out, sizeof out), 0);
    cr_assert_str_eq(out,
                     "t=0,v1=67d00a1429874f76679ba3ea3f0679df1b5fcf956587601e3270c0dd4d884e60");
    cr_assert_eq(register_sign(key, sizeof key, 0, "", 0, out, 20), -1, "too small");
}

Test(register, reason_is_bounded_and_clean)
{
    char out[REGISTER_REASON_MAX + 1];
    const char *b = "{\"reason\":\"  NIK\\n\\ttidak\\u0007 ditemukan  \"}";
    register_reason(b, strlen(b), 422, out, sizeof out);
    cr_assert_str_eq(out, "NIK tidak ditemukan");
    b = "{\"message\":\"m\",\"error\":\"e\"}";
    register_reason(b, strlen(b), 400, out, sizeof out);
    cr_assert_str_eq(out, "m");
    b = "{\"error\":{\"message\":\"nested\"}}";
    register_reason(b, strlen(b), 409, out, sizeof out);
    cr_assert_str_eq(out, "nested");
    register_reason("not json", 8, 400, out, sizeof out);
    cr_assert_str_eq(out, "refused by the registry (HTTP 400)");
    b = "{\"reason\":\" \\n \"}";
    register_reason(b, strlen(b), 403, out, sizeof out);
    cr_assert_str_eq(out, "refused by the registry (HTTP 403)");
    /* cut at a character boundary: "é" is two bytes, never split */
    char big[1200] = "{\"reason\":\"";
    for (int i = 0; i < 300; i++) strcat(big, "\xc3\xa9");
    strcat(big, "\"}");
    register_reason(big, strlen(big), 422, out, sizeof out);
    cr_assert_eq(strlen(out), REGISTER_REASON_MAX);
    char small[8];
    register_reason(big, strlen(big), 422, small, sizeof small);
    cr_assert_eq(strlen(small), 6, "7 bytes would split a character: %zu", strlen(small));
}
