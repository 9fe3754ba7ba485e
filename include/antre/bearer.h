/* bearer.h: the admin listeners' bearer token (gateway and worker): read from a file named in
 * the configuration, checked in constant time against an `Authorization: Bearer` value. */
#ifndef ANTRE_BEARER_H
#define ANTRE_BEARER_H

#include <stddef.h>

#define BEARER_MIN 16  /* shortest token accepted */
#define BEARER_MAX 255 /* longest token kept */

/* A loaded token; len 0: none configured (every request is allowed). */
struct bearer {
    char token[BEARER_MAX + 1];
    size_t len;
};

/* Load the token in PATH into B (trailing spaces and line ends dropped); PATH "" clears it.
 * Returns 0, or -1 with the reason in ERR (B left as it was): unreadable file, or a token
 * shorter than BEARER_MIN. The token itself is never in ERR. */
int bearer_load(struct bearer *b, const char *path, char *err, size_t errlen);

/* 1 when VALUE (LEN bytes, the Authorization header's value; NULL when absent) is "Bearer
 * <token>" with B's token, compared in constant time; also 1 when B holds no token. */
int bearer_allows(const struct bearer *b, const char *value, size_t len);

#endif
