/* reply.h: building answers: status line, headers, JSON bodies and DESIGN.md's error format.
 *
 * Every answer carries Date, Content-Length, X-Request-Id and (when the connection will close)
 * Connection: close. Errors are {"error": {"code", "message", ...}} with the message in the
 * language of Accept-Language (Indonesian unless English is preferred). Each function answers
 * the connection's current request exactly once. */
#ifndef ANTRE_REPLY_H
#define ANTRE_REPLY_H

#include <jansson.h>
#include <stddef.h>

struct conn;

/* Add a response header to the next answer (copied). */
void reply_header(struct conn *c, const char *name, const char *value);

/* Answer with BODY of LEN bytes and CONTENT_TYPE (NULL for none). */
void reply_raw(struct conn *c, int status, const char *content_type, const char *body,
               size_t len);

/* Answer with JSON (takes ownership of BODY; NULL means no body). */
void reply_json(struct conn *c, int status, json_t *body);

/* Answer with an error. MSG_ID / MSG_EN: the message in Indonesian / English. FIELD may be NULL.
 * EXTRA (taken; may be NULL) is merged into the error object. RETRY_AFTER_S > 0 adds
 * Retry-After and "retry_after_s" (required on 429 and 503). */
void reply_error(struct conn *c, int status, const char *code, const char *field,
                 const char *msg_id, const char *msg_en, json_t *extra, int retry_after_s);

/* Answer with an error whose messages come from the built-in table of generic codes
 * (bad_request, not_found, uri_too_long, ...). */
void reply_error_code(struct conn *c, int status, const char *code, int retry_after_s);

/* The reason phrase of STATUS ("Not Found"). */
const char *reply_status_text(int status);

/* Write a complete error answer (generic CODE, Indonesian message) to FD without a connection
 * object: used when refusing a connection over max_connections. Non-blocking; best effort;
 * the caller closes FD. */
struct gw;
void reply_refuse_fd(struct gw *gw, int fd, int status, const char *code, int retry_after_s);

#endif
