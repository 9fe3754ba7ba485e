/* registration.h: the registration routes (see registration.c). */
#ifndef ANTRE_REGISTRATION_H
#define ANTRE_REGISTRATION_H

#include "antre/keys.h"

struct gw;
struct router;

/* POST /v1/registrations and GET /v1/registrations/{id}, both behind the session gate. */
void registration_register(struct router *rt);

/* The dedupe key of NIK (keys_nik of its HMAC under the key file's pepper: never the NIK in
 * clear) into KEY, and the HMAC in hex into HEX. 0, or -1 when the key file has no pepper. */
int registration_nik_key(struct gw *gw, const char *nik, char key[KEYS_MAX], char hex[65]);

#endif
