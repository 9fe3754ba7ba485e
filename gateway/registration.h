/* registration.h: the registration routes (see registration.c). */
#ifndef ANTRE_REGISTRATION_H
#define ANTRE_REGISTRATION_H

#include <stddef.h>

#include "antre/keys.h"

struct gw;
struct router;

/* POST /v1/registrations and GET /v1/registrations/{id}, both behind the session gate. */
void registration_register(struct router *rt);

/* The dedupe key of NIK (keys_nik of its HMAC under the key file's pepper: never the NIK in
 * clear) into KEY, and the HMAC in hex into HEX. 0, or -1 when the key file has no pepper. */
int registration_nik_key(struct gw *gw, const char *nik, char key[KEYS_MAX], char hex[65]);

/* The personal fields of a registration record, stored sealed (seal.h: AES-256-GCM under the
 * key file's first key, bound to the record's id and the field's name): nik, kk, name,
 * birth_date, email, phone. */
#define REGISTRATION_SEALED_N 6
extern const char *const registration_sealed[REGISTRATION_SEALED_N];

/* Open V (VLEN bytes), the value of field FIELD of registration ID as stored, into OUT (OUTLEN
 * bytes, NUL-terminated; SEAL_PLAIN_MAX + 1 always suffices); a value stored in clear (before
 * sealing) is copied. Returns the clear length, or -1 when it does not open (logged once with
 * the id, the field and why, never the value: the caller answers 500). */
int registration_open(struct gw *gw, const char *id, const char *field, const char *v, size_t vlen,
                      char *out, size_t outlen);

#endif
