/* test_bench_sink.c: unit tests of antre-bench's sinks (bench/sim/sink.c) on a real event loop
 * and real loopback sockets.
 *
 * What the real worker sends is sent by the worker's own code: the SMS body by
 * verify_sms_body() with the default [sms] body_template and the shipped .sms template, through
 * the worker's libcurl HTTP client; the email by mail_compose() with the shipped templates,
 * through the worker's libcurl SMTP client (starttls off). Then a plain socket speaks SMTP to
 * reach what libcurl never sends (refusals, base64, dot-stuffing, limits). The .c is included to
 * reach the bounded table. */
#include "sink.c"

#include <criterion/criterion.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../worker/http_client.h"
#include "../../worker/mail.h"
#include "../../worker/smtp_client.h"
#include "../../worker/verify.h"

#define SMS_TEMPLATE "{\"to\":\"{{number}}\",\"text\":\"{{text}}\",\"reference\":\"{{reference}}\"}"

static struct event_base *base;
static struct event *tick; /* wakes the loop so that EVLOOP_ONCE returns */
static struct sink *sink;

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void setup(void)
{
    base = event_base_new();
    cr_assert_not_null(base);
    tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 10000};
    event_add(tick, &tv);
    char err[256];
    sink = sink_start(base, "127.0.0.1:0", "127.0.0.1:0", err, sizeof err);
    cr_assert_not_null(sink, "%s", err);
    cr_assert_gt(sink_http_port(sink), 0);
    cr_assert_gt(sink_smtp_port(sink), 0);
}

static void teardown(void)
{
    sink_free(sink);
    event_free(tick);
    event_base_free(base);
}

TestSuite(bench_sink, .init = setup, .fini = teardown);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run the loop until *DONE, at most 10 s. */
static void run_until(const int *done)
{
    double end = now_s() + 10;
    while (!*done && now_s() < end) event_base_loop(base, EVLOOP_ONCE);
    cr_assert(*done, "timed out");
}

/* ---- HTTP through the worker's client ---- */

struct answer {
    int done, status;
    char body[512];
};

static void on_answer(void *arg, const struct http_response *resp, const char *err)
{
    struct answer *a = arg;
    a->done = 1;
    cr_assert_null(err, "%s", err);
    a->status = resp->status;
    snprintf(a->body, sizeof a->body, "%s", resp->body);
}

static struct answer request(const char *method, const char *path, const char *const *headers,
                             const char *body)
{
    static struct http_client *hc;
    char err[256], url[128];
    if (!hc) {
        hc = http_client_new(base, NULL, err, sizeof err);
        cr_assert_not_null(hc, "%s", err);
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", sink_http_port(sink), path);
    struct http_request req = {.method = method,
                               .url = url,
                               .headers = headers,
                               .body = body,
                               .body_len = body ? strlen(body) : 0};
    struct answer a = {0};
    cr_assert_eq(http_client_request(hc, &req, on_answer, &a, err, sizeof err), 0, "%s", err);
    run_until(&a.done);
    http_client_free(hc);
    hc = NULL;
    return a;
}

static struct mail_templates *shipped(void)
{
    char err[512];
    struct mail_templates *t = mail_templates_load("conf/templates", err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    return t;
}

/* Send CODE by SMS to NUMBER as the worker does; returns the answer. */
static struct answer send_sms(const char *lang, const char *number, const char *code)
{
    struct mail_templates *t = shipped();
    struct mail_fields f = {.lang = lang,
                            .code = code,
                            .programme = "Kartu Prakerja 2026",
                            .minutes = 10,
                            .now_s = 1765000000};
    char *text = mail_sms_text(t, &f);
    char *body = verify_sms_body(SMS_TEMPLATE, number, text, "ver-1");
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    struct answer a = request("POST", "/sms", headers, body);
    free(body);
    mail_free(text, 0);
    mail_templates_free(t);
    return a;
}

Test(bench_sink, sms_code_read_back_by_the_number_as_typed)
{
    cr_assert_null(sink_code_for(sink, "081234567890"));
    struct answer a = send_sms("id", "+6281234567890", "048213");
    cr_assert_eq(a.status, 200, "%d %s", a.status, a.body);
    cr_assert_str_eq(a.body, "{\"message_id\":\"sink-1\"}");
    /* the worker sends +62..., the applicant typed 08... */
    cr_assert_str_eq(sink_code_for(sink, "081234567890"), "048213");
    cr_assert_str_eq(sink_code_for(sink, "+62 812-3456-7890"), "048213");
    cr_assert_str_eq(sink_code_for(sink, "+6281234567890"), "048213");
    cr_assert_null(sink_code_for(sink, "081234567891"));

    /* a newer code replaces the older one; the English text too */
    a = send_sms("en", "+6281234567890", "7305");
    cr_assert_eq(a.status, 200);
    cr_assert_str_eq(sink_code_for(sink, "081234567890"), "7305");
    struct sink_counts n;
    sink_counts(sink, &n);
    cr_assert_eq(n.sms, 2);
    cr_assert_eq(n.emails, 0);
}

Test(bench_sink, sms_refusals)
{
    static const char *const json[] = {"Content-Type: application/json", NULL};
    struct answer a = request("POST", "/sms", json, "not json");
    cr_assert_eq(a.status, 400);
    a = request("POST", "/sms", json, "{\"to\":\"+6281234567890\",\"text\":\"no code here\"}");
    cr_assert_eq(a.status, 400);
    a = request("GET", "/sms", NULL, NULL);
    cr_assert_eq(a.status, 405);
    a = request("POST", "/nowhere", json, "{}");
    cr_assert_eq(a.status, 404);
    /* PUT is a method [sms] may use */
    a = request("PUT", "/sms", json, "{\"to\":\"0811111111\",\"text\":\"Kode 99887766.\"}");
    cr_assert_eq(a.status, 200, "%d %s", a.status, a.body);
    cr_assert_str_eq(sink_code_for(sink, "+62811111111"), "99887766");
    struct sink_counts n;
    sink_counts(sink, &n);
    cr_assert_eq(n.sms, 1);
}

Test(bench_sink, downstream_idempotency)
{
    const char *body = "{\"birth_date\":\"1990-05-17\",\"id\":\"r1\",\"nik\":\"3171234567890123\","
                       "\"phone\":\"+6281234567890\",\"created_at\":1765000000}";
    static const char *const k1[] = {"Content-Type: application/json", "Idempotency-Key: r1", NULL};
    static const char *const k2[] = {"Content-Type: application/json", "Idempotency-Key: r2", NULL};
    static const char *const none[] = {"Content-Type: application/json", NULL};
    struct answer a = request("POST", "/downstream", k1, body);
    cr_assert_eq(a.status, 201);
    cr_assert_str_eq(a.body, "{\"reference\":\"ds-1\"}");
    a = request("POST", "/downstream", k2, body);
    cr_assert_str_eq(a.body, "{\"reference\":\"ds-2\"}");
    /* a redelivery is answered as the first time */
    a = request("POST", "/downstream", k1, body);
    cr_assert_eq(a.status, 201);
    cr_assert_str_eq(a.body, "{\"reference\":\"ds-1\"}");
    a = request("POST", "/downstream", none, body);
    cr_assert_eq(a.status, 400);
    a = request("POST", "/downstream", k2, "[1,2]");
    cr_assert_eq(a.status, 400);
    struct sink_counts n;
    sink_counts(sink, &n);
    cr_assert_eq(n.downstream, 2);
    cr_assert_eq(n.downstream_redelivered, 1);
}

/* ---- email through the worker's SMTP client ---- */

/* libcurl waits for the answer to the end of DATA inside the call (a blocking wait in its SMTP
 * "done" phase), so the worker's client cannot share a thread with the sink: it runs on a loop
 * of its own in a second thread, as the worker runs in a process of its own. */
struct mailer {
    const char *url, *lang, *code;
    int code_got; /* the server's reply code */
    char err[256];
    atomic_int done;
};

static void on_sent(void *arg, int code, const char *reply, const char *err)
{
    struct mailer *m = arg;
    m->code_got = code;
    if (err) snprintf(m->err, sizeof m->err, "%s (%s)", err, reply);
}

static void *mailer_run(void *arg)
{
    struct mailer *m = arg;
    struct event_base *b = event_base_new();
    struct mail_templates *t = mail_templates_load("conf/templates", m->err, sizeof m->err);
    struct smtp_client *sc = b && t ? smtp_client_new(b, m->err, sizeof m->err) : NULL;
    struct mail_fields f = {.lang = m->lang,
                            .code = m->code,
                            .programme = "Kartu Prakerja 2026",
                            .sender_name = "Kartu Prakerja",
                            .from = "noreply@prakerja.example",
                            .to = "Siti.Aminah@Example.COM",
                            .minutes = 10,
                            .now_s = 1765000000};
    size_t len = 0;
    char *msg = sc ? mail_compose(t, &f, &len) : NULL;
    if (msg) {
        struct smtp_send s = {.url = m->url,
                              .starttls = 0,
                              .from = f.from,
                              .to = f.to,
                              .msg = msg,
                              .msg_len = len,
                              .timeout_ms = 8000};
        if (smtp_client_send(sc, &s, on_sent, m, m->err, sizeof m->err) == 0)
            while (smtp_client_in_flight(sc)) event_base_loop(b, EVLOOP_ONCE);
    }
    mail_free(msg, len);
    smtp_client_free(sc);
    mail_templates_free(t);
    if (b) event_base_free(b);
    atomic_store(&m->done, 1);
    return NULL;
}

Test(bench_sink, email_from_the_worker)
{
    char url[64];
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", sink_smtp_port(sink));
    const char *langs[] = {"id", "en"}, *codes[] = {"503917", "000042"};
    for (int i = 0; i < 2; i++) {
        struct mailer m = {.url = url, .lang = langs[i], .code = codes[i]};
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, mailer_run, &m), 0);
        double end = now_s() + 10;
        while (!atomic_load(&m.done) && now_s() < end) event_base_loop(base, EVLOOP_ONCE);
        pthread_join(th, NULL);
        cr_assert_eq(m.code_got, 250, "%d %s", m.code_got, m.err);
        cr_assert_eq(m.err[0], 0, "%s", m.err);
        /* the address as the applicant typed it; its domain in any case */
        cr_assert_str_eq(sink_code_for(sink, "Siti.Aminah@example.com"), codes[i]);
        cr_assert_str_eq(sink_code_for(sink, " Siti.Aminah@EXAMPLE.com "), codes[i]);
    }
    cr_assert_null(sink_code_for(sink, "siti.aminah@example.com")); /* local part kept as sent */
    struct sink_counts n;
    sink_counts(sink, &n);
    cr_assert_eq(n.emails, 2);
}

/* ---- SMTP over a plain socket ---- */

static int smtp_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(sink_smtp_port(sink))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Read the server's whole next reply (up to its last line "NNN text") into OUT while running
 * the loop; "" when the server closed. */
static void smtp_reply(int fd, char *out, size_t outlen)
{
    size_t n = 0;
    double end = now_s() + 10;
    out[0] = 0;
    while (now_s() < end) {
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        ssize_t r = recv(fd, out + n, outlen - 1 - n, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            if (r < 0) out[0] = 0;
            return;
        }
        if (r > 0) {
            n += (size_t)r;
            out[n] = 0;
            /* complete when the last line ends and has a space after its code */
            if (n >= 2 && out[n - 1] == '\n') {
                char *last = out + n - 2;
                while (last > out && last[-1] != '\n') last--;
                if (strlen(last) > 3 && last[3] == ' ') return;
            }
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 5);
    }
    cr_assert_fail("no reply, have: %s", out);
}

/* Write all of TEXT while running the loop. */
static void smtp_write(int fd, const char *text, size_t len)
{
    size_t off = 0;
    double end = now_s() + 10;
    while (off < len && now_s() < end) {
        ssize_t w = send(fd, text + off, len - off, MSG_NOSIGNAL);
        if (w > 0) off += (size_t)w;
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        if (w < 0) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, 5);
        }
    }
    cr_assert_eq(off, len);
}

/* Send LINE (CRLF added) and assert that the reply starts with WANT. */
static void chat(int fd, const char *line, const char *want)
{
    char buf[4096];
    char out[1100];
    snprintf(out, sizeof out, "%s\r\n", line);
    smtp_write(fd, out, strlen(out));
    smtp_reply(fd, buf, sizeof buf);
    cr_assert(!strncmp(buf, want, strlen(want)), "%s: want %s, got %s", line, want, buf);
}

Test(bench_sink, smtp_conversation)
{
    int fd = smtp_connect();
    char buf[4096];
    smtp_reply(fd, buf, sizeof buf);
    cr_assert(!strncmp(buf, "220 ", 4), "%s", buf);
    chat(fd, "MAIL FROM:<a@example.com>", "503"); /* EHLO first */
    chat(fd, "EHLO tester", "250-");
    chat(fd, "RCPT TO:<x@example.com>", "503"); /* MAIL first */
    chat(fd, "DATA", "503");
    chat(fd, "MAIL FROM:a@example.com", "501");
    chat(fd, "MAIL FROM:<a@example.com> SIZE=999999999", "552");
    chat(fd, "mail from:<a@example.com> SIZE=1000", "250");
    chat(fd, "MAIL FROM:<a@example.com>", "503"); /* nested */
    chat(fd, "RCPT TO:<>", "501");
    chat(fd, "RCPT TO:<Budi@Example.com>", "250");
    chat(fd, "RCPT TO:<ani@example.com>", "250");
    chat(fd, "DATA", "354");
    /* one text/plain part in base64, the code on a line of its own; headers are not read */
    chat(fd,
         "Subject: 2026\r\nMessage-ID: <1234567890.1765000000@x>\r\n"
         "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
         "S29kZSBBbmRhOg0KDQogICAgMjcx\r\nODI4DQoNCkJlcmxha3UgMTAgbWVuaXQuDQo=\r\n.",
         "250");
    cr_assert_null(sink_code_for(sink, "budi@example.com")); /* the local part is kept as sent */
    cr_assert_str_eq(sink_code_for(sink, "Budi@example.com"), "271828");
    cr_assert_str_eq(sink_code_for(sink, "ani@example.com"), "271828");
    /* a dot-stuffed ".." line is text, not the end */
    chat(fd, "MAIL FROM:<a@example.com>", "250");
    chat(fd, "RCPT TO:<dots@example.com>", "250");
    chat(fd, "DATA", "354");
    chat(fd, "\r\n..\r\nKode 161803\r\n.", "250");
    cr_assert_str_eq(sink_code_for(sink, "dots@example.com"), "161803");
    chat(fd, "NOOP", "250");
    chat(fd, "MAIL FROM:<a@example.com>", "250");
    chat(fd, "RSET", "250");
    chat(fd, "RCPT TO:<ani@example.com>", "503"); /* RSET forgot the MAIL */
    chat(fd, "VRFY ani", "502");
    chat(fd, "EHLOX", "502");
    /* a multipart message in quoted-printable whose code line is broken softly */
    chat(fd, "HELO tester", "250 ");
    chat(fd, "MAIL FROM:<a@example.com>", "250");
    chat(fd, "RCPT TO:<ani@example.com>", "250");
    chat(fd, "DATA", "354");
    chat(fd,
         "Content-Type: multipart/alternative;\r\n boundary=\"b1\"\r\n\r\n"
         "--b1\r\nContent-Type: text/html\r\n\r\n<p style=\"color:#123456\">999999</p>\r\n"
         "--b1\r\nContent-Type: text/plain; charset=UTF-8\r\n"
         "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
         "Kode Kartu Prakerja 2026 Anda:=\r\n\r\n    31=\r\n4159\r\n\r\nBerlaku 10 menit=3D\r\n"
         "--b1--\r\n.",
         "250");
    cr_assert_str_eq(sink_code_for(sink, "ani@example.com"), "314159");
    /* HTML only: its tags do not pass for a code */
    chat(fd, "MAIL FROM:<a@example.com>", "250");
    chat(fd, "RCPT TO:<html@example.com>", "250");
    chat(fd, "DATA", "354");
    chat(fd,
         "Content-Type: text/html\r\n\r\n<b style=\"color:#654321\">Kode: <i>112358</i></b>\r\n.",
         "250");
    cr_assert_str_eq(sink_code_for(sink, "html@example.com"), "112358");
    chat(fd, "QUIT", "221");
    smtp_reply(fd, buf, sizeof buf);
    cr_assert_str_eq(buf, ""); /* closed */
    close(fd);
    struct sink_counts n;
    sink_counts(sink, &n);
    cr_assert_eq(n.emails, 4);
}

Test(bench_sink, smtp_limits)
{
    int fd = smtp_connect();
    char buf[4096];
    smtp_reply(fd, buf, sizeof buf);
    chat(fd, "EHLO tester", "250");
    chat(fd, "MAIL FROM:<a@example.com>", "250");
    chat(fd, "RCPT TO:<big@example.com>", "250");
    chat(fd, "DATA", "354");
    /* a message over SINK_MESSAGE_MAX is refused, and the connection goes on */
    char line[100];
    memset(line, 'x', 78);
    memcpy(line + 78, "\r\n", 3);
    smtp_write(fd, "\r\nKode 123456\r\n", 15);
    for (int i = 0; i < SINK_MESSAGE_MAX / 80 + 10; i++) smtp_write(fd, line, 80);
    chat(fd, ".", "552");
    cr_assert_null(sink_code_for(sink, "big@example.com"));
    chat(fd, "NOOP", "250");
    /* a line over SINK_LINE_MAX closes the connection */
    char lng[SINK_LINE_MAX + 10];
    memset(lng, 'a', sizeof lng - 3);
    memcpy(lng + sizeof lng - 3, "\r\n", 3);
    smtp_write(fd, lng, strlen(lng));
    smtp_reply(fd, buf, sizeof buf);
    cr_assert(!strncmp(buf, "500", 3), "%s", buf);
    smtp_reply(fd, buf, sizeof buf);
    cr_assert_str_eq(buf, "");
    close(fd);

    /* too many refused commands close it too */
    fd = smtp_connect();
    smtp_reply(fd, buf, sizeof buf);
    for (int i = 1; i < SINK_SMTP_ERRORS_MAX; i++) chat(fd, "BOGUS", "502");
    chat(fd, "BOGUS", "421");
    smtp_reply(fd, buf, sizeof buf);
    cr_assert_str_eq(buf, "");
    close(fd);
    struct sink_counts n;
    sink_counts(sink, &n);
    cr_assert_eq(n.emails, 0);
}

Test(bench_sink, code_in_text)
{
    char code[SINK_CODE_MAX + 1];
    /* the longest run of 4-10 digits, the first of equals */
    const char *sms = "048213 adalah kode verifikasi Kartu Prakerja 2026 Anda, berlaku 10 menit.";
    cr_assert_eq(code_in_text(sms, strlen(sms), code), 0);
    cr_assert_str_eq(code, "048213");
    const char *en = "Your Prakerja 2026 code: 5120";
    cr_assert_eq(code_in_text(en, strlen(en), code), 0);
    cr_assert_str_eq(code, "2026"); /* equals: the first (why an email's code line wins) */
    const char *line = "Kode Prakerja 20261 Anda:\r\n\r\n    5120\r\n\r\nBerlaku 10 menit";
    cr_assert_eq(code_in_text(line, strlen(line), code), 0);
    cr_assert_str_eq(code, "5120");
    const char *none = "nothing 123 here 12345678901";
    cr_assert_eq(code_in_text(none, strlen(none), code), -1);
}

Test(bench_sink, table_bounded_oldest_out)
{
    struct table t;
    cr_assert_eq(table_init(&t, 4), 0);
    char key[16];
    for (int i = 0; i < 6; i++) {
        snprintf(key, sizeof key, "k%d", i);
        table_put(&t, key)->num = (uint64_t)i;
    }
    cr_assert_null(table_find(&t, "k0"));
    cr_assert_null(table_find(&t, "k1"));
    for (int i = 2; i < 6; i++) {
        snprintf(key, sizeof key, "k%d", i);
        cr_assert_not_null(table_find(&t, key), "%s", key);
    }
    /* putting k2 again makes it the newest: k3 leaves next, not k2 */
    table_put(&t, "k2")->num = 22;
    table_put(&t, "k6");
    cr_assert_null(table_find(&t, "k3"));
    cr_assert_eq(table_find(&t, "k2")->num, 22);
    table_put(&t, "k7");
    table_put(&t, "k8");
    cr_assert_not_null(table_find(&t, "k2"));
    cr_assert_null(table_find(&t, "k4"));
    cr_assert_null(table_find(&t, "k5"));
    table_free(&t);
}
