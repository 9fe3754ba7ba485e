/* errbuf.h: filling the caller's error buffer (STYLE: functions that fail put detail in an
 * `err` buffer the caller passes). */
#ifndef ANTRE_ERRBUF_H
#define ANTRE_ERRBUF_H

#include <stddef.h>

/* Format into ERR (ERRLEN bytes, always terminated; cut if too long). ERR may be NULL. */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
