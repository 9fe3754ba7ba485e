/* registration.h: the registration routes (see registration.c). */
#ifndef ANTRE_REGISTRATION_H
#define ANTRE_REGISTRATION_H

struct router;

/* POST /v1/registrations and GET /v1/registrations/{id}, both behind the session gate. */
void registration_register(struct router *rt);

#endif
