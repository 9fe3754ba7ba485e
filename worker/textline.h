/* textline.h: text from outside made safe to keep and show as one line (textline.c). */
#ifndef WORKER_TEXTLINE_H
#define WORKER_TEXTLINE_H

#include <stddef.h>

/* Copy S (NULL: "") into OUT (OUTLEN bytes, at least 1) as one clean line: control characters
 * become spaces, runs of spaces one, no leading or trailing space, cut at a UTF-8 character
 * boundary. Used for what other systems say (a downstream's reason, an SMTP reply, a provider's
 * message id) before it goes into a record, a log line or the applicant's checklist. */
void textline_clean(const char *s, char *out, size_t outlen);

#endif
