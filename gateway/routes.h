/* routes.h: the route tables of the public and admin listeners, and their handlers. */
#ifndef ANTRE_ROUTES_H
#define ANTRE_ROUTES_H

struct gw;
struct router;

/* Install every route: the public listener's on PUB, the admin listener's on ADMIN. */
void routes_install(struct router *pub, struct router *admin);

/* /healthz and /readyz (health.c). */
void health_register(struct router *rt);

/* The admin listener's routes: /metrics (admin.c). */
void admin_register(struct router *rt);

/* Load or reload the admin bearer token from [gateway] admin_token_file. 0 ok, -1 (logged). */
int admin_load_token(struct gw *gw);

#endif
