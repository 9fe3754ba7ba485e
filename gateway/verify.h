/* verify.h: the routes of one-time verification codes (issue 9; docs/api.md, "Routes:
 * verification codes"): asking for a code to a registration's email or phone, confirming a
 * code, and recovering a registration by its NIK from a new session. */
#ifndef ANTRE_VERIFY_H
#define ANTRE_VERIFY_H

struct router;

/* POST /v1/registrations/{id}/verifications, POST /v1/verifications/{id}/confirm and
 * POST /v1/registrations/recover, all behind the session gate. */
void verify_register(struct router *rt);

#endif
