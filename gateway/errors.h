/* errors.h: the gateway's error catalogue: every error code it answers with, in one table.
 *
 * An entry gives the code's HTTP status, its message in Indonesian and English, the metrics
 * refusal reason it is counted under (or none) and its default Retry-After. Answers name an
 * entry by its id (ERR_NOT_FOUND), so the compiler checks every call site; reply_err() (reply.h)
 * takes the status, message, counter and Retry-After from here. The table is data only: it
 * links without the connection or reply code (unit tests, the docs test).
 *
 * The per-field validation codes of common/validate.c (422 with "field") are not here: they
 * are listed by validate_code_count()/validate_code_at() (antre/validate.h). */
#ifndef ANTRE_ERRORS_H
#define ANTRE_ERRORS_H

#include <stddef.h>

/* One id per code, in table order (errors_at(ERR_X) is ERR_X's entry). */
enum error_id {
    /* the request itself (parser and connection) */
    ERR_BAD_REQUEST,
    ERR_BAD_CONTENT_LENGTH,
    ERR_CONFLICTING_LENGTH,
    ERR_CONFLICTING_CONTENT_LENGTH,
    ERR_UNSUPPORTED_TRANSFER_ENCODING,
    ERR_INVALID_CHUNK,
    ERR_MISSING_HOST,
    ERR_INVALID_HOST,
    ERR_DUPLICATE_HEADER,
    ERR_HTTP_VERSION_NOT_SUPPORTED,
    ERR_NOT_FOUND,
    ERR_METHOD_NOT_ALLOWED,
    ERR_URI_TOO_LONG,
    ERR_HEADERS_TOO_LARGE,
    ERR_TOO_MANY_HEADERS,
    ERR_BODY_TOO_LARGE,
    ERR_LENGTH_REQUIRED,
    ERR_EXPECTATION_FAILED,
    ERR_REQUEST_TIMEOUT,
    ERR_UNSUPPORTED_MEDIA_TYPE,
    ERR_INVALID_JSON,
    ERR_INVALID_FIELD,
    /* load and availability */
    ERR_RATE_LIMITED,
    ERR_TOO_MANY_CONNECTIONS,
    ERR_TOO_MANY_CONNECTIONS_PER_IP,
    ERR_SHUTTING_DOWN,
    ERR_REDIS_UNAVAILABLE,
    ERR_OVERLOADED,
    ERR_UPLOAD_BUDGET,
    ERR_INTERNAL_ERROR,
    /* admin */
    ERR_UNAUTHORIZED,
    /* waiting room */
    ERR_UNKNOWN_ROOM,
    ERR_ROOM_NOT_OPEN,
    ERR_ROOM_CLOSED,
    ERR_ROOM_UNAVAILABLE,
    ERR_CROSS_SITE,
    ERR_INVALID_TICKET,
    ERR_TICKET_EXPIRED,
    ERR_NOT_ADMITTED,
    ERR_SESSION_EXPIRED,
    ERR_SESSION_ENDED,
    ERR_INVALID_APPLICANT_TOKEN,
    ERR_APPLICANT_BINDING_OFF,
    /* registrations */
    ERR_DUPLICATE_NIK,
    ERR_NOT_OWNER,
    ERR_UNKNOWN_REGISTRATION,
    ERR_INVALID_IDEMPOTENCY_KEY,
    ERR_IDEMPOTENCY_IN_FLIGHT,
    ERR_IDEMPOTENCY_KEY_REUSED,
    /* verification codes */
    ERR_RESEND_TOO_SOON,
    ERR_SEND_LIMIT,
    ERR_UNKNOWN_VERIFICATION,
    ERR_WRONG_CODE,
    ERR_TOO_MANY_ATTEMPTS,
    ERR_CODE_EXPIRED,
    ERR_CODE_REPLACED,
    ERR_CODE_NOT_SENT,
    ERR_ALREADY_VERIFIED,
    /* uploads (single PUT and tus) */
    ERR_UNKNOWN_DOCUMENT,
    ERR_UNKNOWN_UPLOAD,
    ERR_FILE_TOO_LARGE,
    ERR_UPLOAD_EXPIRED,
    ERR_UPLOAD_LOCKED,
    ERR_UPLOAD_COMPLETE,
    ERR_UPLOAD_FINISHING,
    ERR_TOO_MANY_UPLOADS,
    ERR_TUS_VERSION_UNSUPPORTED,
    ERR_BODY_NOT_ACCEPTED,
    ERR_INVALID_METADATA,
    ERR_DEFER_LENGTH_UNSUPPORTED,
    ERR_UPLOAD_LENGTH_REQUIRED,
    ERR_INVALID_UPLOAD_LENGTH,
    ERR_INVALID_UPLOAD_OFFSET,
    ERR_OFFSET_MISMATCH,
    ERR_UPLOAD_LENGTH_EXCEEDED,
    ERR_CHECKSUM_ALGORITHM_UNSUPPORTED,
    ERR_INVALID_CHECKSUM,
    ERR_CHECKSUM_MISMATCH,
    ERR__COUNT
};

/* No metrics refusal counter for this code. */
#define ERRORS_NO_REFUSAL (-1)

struct error_def {
    const char *code;            /* snake_case, stable: clients branch on it */
    int status;                  /* HTTP status */
    const char *msg_id, *msg_en; /* what happened and what to do */
    int refusal;                 /* enum metrics_refusal counted when answered, or -1 */
    int retry_after_s;           /* default Retry-After (> 0 on every 429 and 503), else 0 */
};

/* Number of entries (ERR__COUNT). */
size_t errors_count(void);

/* Entry I (0 <= I < errors_count(), an enum error_id), or NULL past the end. Static storage. */
const struct error_def *errors_at(size_t i);

/* The entry whose code is CODE, or NULL. Static storage. */
const struct error_def *errors_find(const char *code);

#endif
