/* health.c: GET /healthz (the process answers) and GET /readyz (it can do useful work: Redis is
 * connected and it is not shutting down), both exempt from the per-IP rate limit so load
 * balancer probes never get 429. */
#include <string.h>

#include "antre/rconn.h"
#include "conn.h"
#include "gateway.h"
#include "reply.h"
#include "routes.h"

static void healthz(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)r;
    (void)p;
    static const char body[] = "{\"status\":\"ok\"}";
    reply_raw(c, 200, "application/json", body, sizeof body - 1);
}

static void readyz(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)r;
    (void)p;
    if (c->gw->draining) {
        /* A state reported to the load balancer, not a refused request: not counted. */
        reply_err_full(c, ERR_SHUTTING_DOWN, NULL, NULL, NULL, NULL, 0, ERRORS_NO_REFUSAL);
        return;
    }
    if (rconn_state(c->gw->redis) != RCONN_CONNECTED) {
        reply_err_full(c, ERR_REDIS_UNAVAILABLE, NULL, NULL, NULL, NULL, 1, ERRORS_NO_REFUSAL);
        return;
    }
    static const char body[] = "{\"status\":\"ready\",\"redis\":\"connected\"}";
    reply_raw(c, 200, "application/json", body, sizeof body - 1);
}

void health_register(struct router *rt)
{
    router_add(rt, &(struct route){.method = "GET",
                                   .pattern = "/healthz",
                                   .fn = healthz,
                                   .name = "healthz",
                                   .flags = ROUTE_NO_RATE_LIMIT});
    router_add(rt, &(struct route){.method = "GET",
                                   .pattern = "/readyz",
                                   .fn = readyz,
                                   .name = "readyz",
                                   .flags = ROUTE_NO_RATE_LIMIT});
}
