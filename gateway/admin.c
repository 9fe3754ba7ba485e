/* admin.c: the admin listener's routes. GET /metrics gives Prometheus text summed over every
 * gateway process. When [gateway] admin_token_file names a file, every admin route needs
 * `Authorization: Bearer <token>`, compared in constant time; without it the admin listener is
 * open, which is why it listens on loopback by default. */
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "antre/bearer.h"
#include "antre/log.h"
#include "conn.h"
#include "gateway.h"
#include "metrics.h"
#include "reply.h"
#include "routes.h"

static struct bearer admin_token;

int admin_load_token(struct gw *gw)
{
    char err[CONF_STR + 100];
    if (bearer_load(&admin_token, gw->conf.gateway.admin_token_file, err, sizeof err) < 0) {
        log_error("admin: admin_token_file: %s", err);
        return -1;
    }
    return 0;
}

/* 1 when the request may use the admin API. */
static int authorised(struct request *r)
{
    size_t len = 0;
    const char *v = request_header(r, "authorization", &len);
    return bearer_allows(&admin_token, v, len);
}

static void metrics_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)p;
    if (!authorised(r)) {
        reply_header(c, "WWW-Authenticate", "Bearer");
        reply_err(c, ERR_UNAUTHORIZED, NULL, NULL);
        return;
    }
    struct evbuffer *out = evbuffer_new();
    metrics_render(out, c->gw->router, c->gw->admin_router);
    size_t len = evbuffer_get_length(out);
    const char *text = (const char *)evbuffer_pullup(out, -1);
    reply_raw(c, 200, "text/plain; version=0.0.4; charset=utf-8", text ? text : "", len);
    evbuffer_free(out);
}

void admin_register(struct router *rt)
{
    router_add(rt, &(struct route){.method = "GET",
                                   .pattern = "/metrics",
                                   .fn = metrics_route,
                                   .name = "metrics"});
}
