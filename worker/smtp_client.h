/* smtp_client.h: the worker's asynchronous SMTP client: one message per send, through libcurl on
 * the worker's loop (curl_loop.c), as http_client.h does for HTTP.
 *
 * TLS: an smtps:// URL speaks TLS from the first byte; an smtp:// URL upgrades with STARTTLS
 * and fails when the server does not offer it, unless the send says `starttls = 0` (a relay on
 * the same host). Peers are verified against the system's CA store, host name included.
 *
 * The contract: every accepted send gets exactly one callback, later, with the server's last
 * SMTP reply code (0 when there was none: no connection, a timeout); smtp_client_free calls the
 * callback of every send still running with "closed". Error strings never hold the URL, the login
 * or the message. Not thread-safe. */
#ifndef WORKER_SMTP_CLIENT_H
#define WORKER_SMTP_CLIENT_H

#include <stddef.h>

struct event_base;
struct smtp_client; /* opaque */

/* One message to send. Everything is copied by smtp_client_send() before it returns. */
struct smtp_send {
    const char *url;      /* smtp://host[:port] or smtps://host[:port] */
    int starttls;         /* smtp:// only: 1 = STARTTLS required, 0 = plain text */
    const char *user;     /* login; NULL: none */
    const char *password; /* with USER */
    const char *from;     /* envelope sender (MAIL FROM), a bare address */
    const char *to;       /* the one recipient (RCPT TO), a bare address */
    const char *msg;      /* the whole message, CRLF line ends, MSG_LEN bytes */
    size_t msg_len;
    int timeout_ms;         /* whole send, connect included; 0: 30000 */
    int connect_timeout_ms; /* 0: 5000 */
};

#define SMTP_CLIENT_REPLY_MAX 200 /* longest server reply line kept */

/* The outcome of one send. CODE is the server's last reply code (250 on success; 4xx/5xx on a
 * refusal; 0 when the server never answered). ERR is NULL on success, else a short reason
 * ("timeout", "connect failed: ...", "closed", or libcurl's words). REPLY is the server's last
 * reply line (cleaned of control characters; "" when none), valid during the call only. */
typedef void smtp_client_cb(void *arg, int code, const char *reply, const char *err);

/* A client on BASE (which must outlive it), or NULL with the reason in ERR. */
struct smtp_client *smtp_client_new(struct event_base *base, char *err, size_t errlen);

/* Start S. 0 when accepted: CB(ARG, ...) is called exactly once, later. -1 when refused at once
 * (CB not called), with the reason in ERR (a URL that is not smtp(s)://, libcurl refusing). */
int smtp_client_send(struct smtp_client *c, const struct smtp_send *s, smtp_client_cb *cb,
                     void *arg, char *err, size_t errlen);

/* Sends running. */
int smtp_client_in_flight(const struct smtp_client *c);

/* Free C: every send running gets "closed" first. Safe from inside a callback. NULL ignored. */
void smtp_client_free(struct smtp_client *c);

#endif
