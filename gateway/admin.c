/* admin.c: the admin listener's routes. GET /metrics gives Prometheus text summed over every
 * gateway process. When [gateway] admin_token_file names a file, every admin route needs
 * `Authorization: Bearer <token>`, compared in constant time; without it the admin listener is
 * open, which is why it listens on loopback by default. */
#include <errno.h>
#include <event2/buffer.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "antre/log.h"
#include "conn.h"
#include "gateway.h"
#include "metrics.h"
#include "reply.h"
#include "routes.h"

static char admin_token[256];
static size_t admin_token_len;

int admin_load_token(struct gw *gw)
{
    const char *path = gw->conf.gateway.admin_token_file;
    if (!path[0]) {
        admin_token_len = 0;
        return 0;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        log_error("admin: cannot read admin_token_file path=%s err=%s", path, strerror(errno));
        return -1;
    }
    char buf[sizeof admin_token];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) n--;
    if (n < 16) {
        log_error("admin: admin_token_file holds fewer than 16 characters path=%s", path);
        return -1;
    }
    memcpy(admin_token, buf, n);
    admin_token_len = n;
    return 0;
}

/* 1 when the request may use the admin API. */
static int authorised(struct conn *c, struct request *r)
{
    if (!admin_token_len) return 1;
    size_t len;
    const char *v = request_header(r, "authorization", &len);
    if (!v || len < 7 || strncmp(v, "Bearer ", 7) != 0) return 0;
    v += 7;
    len -= 7;
    (void)c;
    return len == admin_token_len && CRYPTO_memcmp(v, admin_token, len) == 0;
}

static void metrics_route(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)p;
    if (!authorised(c, r)) {
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
