/* accesslog.h: a buffered access log that stays off the hot path.
 *
 * Lines are formatted into an in-memory buffer and written in large blocks on a timer (every
 * second) or when the buffer passes 64 KB, with O_APPEND so the gateway processes can share one
 * file. Reopened on SIGHUP (log rotation). Never logs query strings, tokens or bodies. */
#ifndef ANTRE_ACCESSLOG_H
#define ANTRE_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

struct accesslog;
struct event_base;

/* PATH: a file, "-" for standard error. Returns NULL (with ERR) when the file cannot be
 * opened. Free with accesslog_free (flushes). */
struct accesslog *accesslog_new(struct event_base *base, const char *path, char *err,
                                size_t errlen);
void accesslog_free(struct accesslog *al);

/* Reopen the file (after rotation). 0 ok, -1 keeps the old one. */
int accesslog_reopen(struct accesslog *al);

/* One line: client address (conn_client), method, path (without query), status, body bytes out, duration, request id. */
void accesslog_write(struct accesslog *al, const char *client, const char *method, const char *path,
                     size_t pathlen, int status, uint64_t usec, const char *reqid);

/* Write out what is buffered now. */
void accesslog_flush(struct accesslog *al);

#endif
