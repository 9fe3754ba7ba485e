/* routes.c: the one list of what each listener serves.
 *
 * The server installs these routes at start-up, and the documentation test installs the same
 * ones to check docs/api.md against them: a route exists in exactly one place. */
#include "routes.h"

#include "page.h"
#include "registration.h"
#include "router.h"
#include "tus.h"
#include "upload.h"
#include "verify.h"
#include "wroom.h"

void routes_install(struct router *pub, struct router *admin)
{
    router_set_id_base(admin, 48);
    health_register(pub);
    router_set_gate(pub, wroom_gate);
    wroom_register(pub);
    page_register(pub);
    verify_register(pub); /* POST /v1/registrations/recover before GET .../{id} */
    registration_register(pub);
    tus_register(pub); /* before upload_register: a GET route also answers HEAD */
    upload_register(pub);
    upload_set_offset_source(tus_offset);
    admin_register(admin);
}
