/* ident.h: identifiers that carry their owner's mark (registrations, uploads).
 *
 * An id is 16 random hex digits followed by 16 hex digits of HMAC(pepper, kind|random|owner).
 * Checking that a request's session owns an id is then a computation, not a Redis lookup, so
 * an upload from someone else is refused (403) from the head alone, before any body byte. */
#ifndef ANTRE_IDENT_H
#define ANTRE_IDENT_H

#include <stddef.h>

struct gw;

#define IDENT_LEN 32

/* Make a new id of KIND ("reg", "upl") for OWNER into OUT (IDENT_LEN + 1 bytes). 0, or -1
 * when the key file has no pepper. */
int ident_new(struct gw *gw, const char *kind, const char *owner, char *out);

/* 1 when ID (LEN bytes) is a well-formed id of KIND made for OWNER, else 0. Constant time in
 * the mark. */
int ident_owned(struct gw *gw, const char *kind, const char *id, size_t len, const char *owner);

/* 1 when ID (LEN bytes) has the shape of an id (32 lower-case hex digits). */
int ident_valid(const char *id, size_t len);

#endif
