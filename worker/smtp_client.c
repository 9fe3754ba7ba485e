/* smtp_client.c: SMTP sends on the worker's libcurl loop (see smtp_client.h).
 *
 * libcurl speaks the protocol (EHLO, STARTTLS, AUTH, MAIL FROM, RCPT TO, DATA); this file gives
 * it the message from memory (CURLOPT_READFUNCTION), and keeps the server's refusal or last reply
 * line from the protocol trace (CURLOPT_DEBUGFUNCTION, CURLINFO_HEADER_IN: the server's
 * replies; nothing sent by us, so neither the login nor the message, is looked at) so that a
 * refusal can be explained.
 * The reply code is libcurl's CURLINFO_RESPONSE_CODE: the last one the server gave. */
#include "smtp_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "curl_loop.h"

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_CONNECT_TIMEOUT_MS 5000

struct smtp_client {
    struct curl_loop *loop;
    int freeing;
};

struct send {
    smtp_client_cb *cb;
    void *arg;
    char *msg; /* owned copy */
    size_t len, off;
    struct curl_slist *rcpt;
    char reply[SMTP_CLIENT_REPLY_MAX + 1];
    int refused; /* REPLY is a 4xx or 5xx line */
    char errbuf[CURL_ERROR_SIZE];
};

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
    struct send *s = arg;
    size_t left = s->len - s->off, want = size * n;
    if (want > left) want = left;
    memcpy(buf, s->msg + s->off, want);
    s->off += want;
    return want;
}

/* Keep the server's first refusal (a 4xx or 5xx line), or else its last line, as one clean
 * line: the QUIT's "221 Bye" that follows a refusal does not hide it. */
static int on_debug(CURL *easy, curl_infotype type, char *data, size_t size, void *arg)
{
    (void)easy;
    struct send *s = arg;
    if (type != CURLINFO_HEADER_IN || s->refused) return 0;
    size_t o = 0;
    for (size_t i = 0; i < size && o < SMTP_CLIENT_REPLY_MAX; i++) {
        unsigned char ch = (unsigned char)data[i];
        if (ch == '\r' || ch == '\n') break;
        s->reply[o++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    if (o) s->reply[o] = 0;
    s->refused = o && (s->reply[0] == '4' || s->reply[0] == '5');
    return 0;
}

static void send_free(struct send *s)
{
    curl_slist_free_all(s->rcpt);
    if (s->msg) {
        memset(s->msg, 0, s->len); /* it holds a code */
        free(s->msg);
    }
    free(s);
}

static void on_done(void *arg, CURL *easy, int code)
{
    struct send *s = arg;
    char why[CURL_ERROR_SIZE + 64];
    const char *err = NULL;
    long reply = 0;
    if (code != CURL_LOOP_CLOSED) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &reply);
    if (code == CURL_LOOP_CLOSED) err = "closed";
    else if (code == CURLE_OPERATION_TIMEDOUT) err = "timeout";
    else if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST) {
        snprintf(why, sizeof why, "connect failed: %s",
                 s->errbuf[0] ? s->errbuf : curl_easy_strerror((CURLcode)code));
        err = why;
    } else if (code != CURLE_OK) {
        snprintf(why, sizeof why, "%s",
                 s->errbuf[0] ? s->errbuf : curl_easy_strerror((CURLcode)code));
        err = why;
    }
    s->cb(s->arg, (int)reply, s->reply, err);
    send_free(s);
}

struct smtp_client *smtp_client_new(struct event_base *base, char *err, size_t errlen)
{
    struct smtp_client *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->loop = curl_loop_new(base, err, errlen);
    if (!c->loop) {
        free(c);
        return NULL;
    }
    return c;
}

int smtp_client_send(struct smtp_client *c, const struct smtp_send *m, smtp_client_cb *cb,
                     void *arg, char *err, size_t errlen)
{
    int tls = m->url && !strncasecmp(m->url, "smtps://", 8);
    if (!m->url || (!tls && strncasecmp(m->url, "smtp://", 7))) {
        snprintf(err, errlen, "the URL is not smtp:// or smtps://");
        return -1;
    }
    struct send *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->cb = cb;
    s->arg = arg;
    s->len = m->msg_len;
    s->msg = malloc(m->msg_len ? m->msg_len : 1);
    CURL *e = curl_easy_init();
    if (!s->msg || !e) abort();
    memcpy(s->msg, m->msg, m->msg_len);
    char addr[CURL_ERROR_SIZE];
    snprintf(addr, sizeof addr, "<%s>", m->to);
    s->rcpt = curl_slist_append(NULL, addr);
    if (!s->rcpt) abort();
    snprintf(addr, sizeof addr, "<%s>", m->from);
    CURLcode rc = curl_loop_setup(e, m->url, "smtp,smtps",
                                  m->timeout_ms > 0 ? m->timeout_ms : DEFAULT_TIMEOUT_MS,
                                  m->connect_timeout_ms > 0 ? m->connect_timeout_ms
                                                            : DEFAULT_CONNECT_TIMEOUT_MS,
                                  s->errbuf);
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val);                                    \
    } while (0)
    if (!tls && m->starttls) SET(CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    if (m->user) {
        SET(CURLOPT_USERNAME, m->user);
        SET(CURLOPT_PASSWORD, m->password ? m->password : "");
    }
    SET(CURLOPT_MAIL_FROM, addr);
    SET(CURLOPT_MAIL_RCPT, s->rcpt);
    SET(CURLOPT_UPLOAD, 1L);
    SET(CURLOPT_READFUNCTION, on_read);
    SET(CURLOPT_READDATA, s);
    SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)s->len);
    SET(CURLOPT_DEBUGFUNCTION, on_debug);
    SET(CURLOPT_DEBUGDATA, s);
    SET(CURLOPT_VERBOSE, 1L); /* feeds on_debug only; nothing is printed */
#undef SET
    if (curl_loop_start(c->loop, e, rc, on_done, s, err, errlen) < 0) {
        send_free(s);
        return -1;
    }
    return 0;
}

int smtp_client_in_flight(const struct smtp_client *c) { return curl_loop_running(c->loop); }

void smtp_client_free(struct smtp_client *c)
{
    if (!c || c->freeing) return;
    c->freeing = 1;
    curl_loop_free(c->loop);
    free(c);
}
