/* reply.h: building answers: status line, headers, JSON bodies and the error format.
 *
 * Every answer carries Date, Content-Length, X-Request-Id and (when the connection will close)
 * Connection: close. Errors come from the catalogue (errors.h) and are
 * {"error": {"code", "message", ...}} with the message in the language of Accept-Language
 * (Indonesian unless English is preferred). Each function answers the connection's current
 * request exactly once. */
#ifndef ANTRE_REPLY_H
#define ANTRE_REPLY_H

#include <jansson.h>
#include <stddef.h>

#include "antre/rconn.h"
#include "errors.h"

struct conn;

/* Add a response header to the next answer (copied). */
void reply_header(struct conn *c, const char *name, const char *value);

/* Answer with BODY of LEN bytes and CONTENT_TYPE (NULL for none). */
void reply_raw(struct conn *c, int status, const char *content_type, const char *body, size_t len);

/* Answer with JSON (takes ownership of BODY; NULL means no body). */
void reply_json(struct conn *c, int status, json_t *body);

/* Answer with error E of the catalogue (errors.h): its status, its message in the request's
 * language, Retry-After (header and "retry_after_s") when the entry has one, and its metrics
 * refusal counted here, once. FIELD may be NULL. EXTRA (taken; may be NULL) is merged into the
 * error object. On a no-JavaScript form route (ROUTE_FORM) the answer is the form handler's HTML
 * page instead of JSON (reply_set_form_handler). */
void reply_err(struct conn *c, enum error_id e, const char *field, json_t *extra);

/* As reply_err, with a computed RETRY_AFTER_S (> 0) in place of the table's default. */
void reply_err_retry(struct conn *c, enum error_id e, const char *field, json_t *extra,
                     int retry_after_s);

/* As reply_err, with a more precise message than the table's (both languages, not NULL). */
void reply_err_msg(struct conn *c, enum error_id e, const char *field, const char *msg_id,
                   const char *msg_en, json_t *extra);

/* Counter argument of reply_err_full: the table's refusal reason. */
#define REPLY_REFUSAL_TABLE (-2)

/* The general form of the above. MSG_ID/MSG_EN NULL and RETRY_AFTER_S 0 take the table's.
 * REFUSAL: REPLY_REFUSAL_TABLE, an enum metrics_refusal that replaces the table's (a timeout
 * of the body rather than the head), or ERRORS_NO_REFUSAL when the answer reports a state
 * rather than refuses a request (/readyz). */
void reply_err_full(struct conn *c, enum error_id e, const char *field, const char *msg_id,
                    const char *msg_en, json_t *extra, int retry_after_s, int refusal);

/* The one answer to a Redis refusal. WHY: rconn_last_refusal() after a refused
 * rconn_command(), or RCONN_REFUSED_CLOSED when Redis is not connected or a command failed or
 * timed out. Budget spent (too many commands in flight): 503 overloaded, counted as
 * redis_budget; otherwise 503 redis_unavailable, counted as redis_down. */
void reply_redis_refusal(struct conn *c, enum rconn_refusal why);

/* A 422 refusal of one field from common/validate.c (its own codes and messages, not the
 * catalogue's). EXTRA (taken; may be NULL) is merged into the error object. */
struct validate_error;
void reply_field_error(struct conn *c, const struct validate_error *ve, json_t *extra);

/* The HTML answer of a no-JavaScript form route: STATUS with MSG_ID/MSG_EN shown on the page.
 * Retry-After, when due, is already among the answer's headers. Installed by page.c. */
typedef void (*reply_form_fn)(struct conn *c, int status, const char *msg_id, const char *msg_en);
void reply_set_form_handler(reply_form_fn fn);

/* The reason phrase of STATUS ("Not Found"). */
const char *reply_status_text(int status);

#endif
