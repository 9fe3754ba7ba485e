/* router.c: pattern matching over path segments (see router.h). */
#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct router {
    struct route routes[ROUTER_MAX_ROUTES];
    int n;
    int id_base;
    route_head_fn *gate;
};

struct router *router_new(void)
{
    struct router *rt = calloc(1, sizeof *rt);
    if (!rt) abort();
    return rt;
}

void router_free(struct router *rt) { free(rt); }

void router_set_id_base(struct router *rt, int id_base) { rt->id_base = id_base; }

void router_set_gate(struct router *rt, route_head_fn *gate) { rt->gate = gate; }

route_head_fn *router_gate(const struct router *rt) { return rt->gate; }

int router_add(struct router *rt, const struct route *route)
{
    if (rt->n >= ROUTER_MAX_ROUTES || route->pattern[0] != '/') return -1;
    int params = 0;
    /* A parameter is a whole segment "{name}" with a non-empty name; braces nowhere else. */
    for (const char *p = route->pattern; *p; p++) {
        if (*p == '}') return -1;
        if (*p != '{') continue;
        const char *close = strchr(p, '}');
        if (p[-1] != '/' || !close || close == p + 1 || (close[1] && close[1] != '/')) return -1;
        for (const char *q = p + 1; q < close; q++)
            if (*q == '{' || *q == '/') return -1;
        params++;
        p = close;
    }
    if (params > ROUTER_MAX_PARAMS) return -1;
    rt->routes[rt->n] = *route;
    rt->routes[rt->n].id = rt->id_base + rt->n + 1;
    return rt->routes[rt->n++].id;
}

const struct route *router_route_at(const struct router *rt, int i)
{
    return i >= 0 && i < rt->n ? &rt->routes[i] : NULL;
}

/* Match PATTERN against PATH segment by segment; fills PARAMS. */
static int match(const char *pattern, const char *path, size_t pathlen, struct route_params *params)
{
    const char *end = path + pathlen;
    params->n = 0;
    while (*pattern && path < end) {
        if (*pattern == '{') {
            const char *close = strchr(pattern, '}');
            const char *seg_end = memchr(path, '/', (size_t)(end - path));
            if (!seg_end) seg_end = end;
            if (seg_end == path || !close) return 0; /* empty parameter */
            int i = params->n++;
            params->p[i].name = pattern + 1; /* up to '}': callers compare with strncmp */
            params->p[i].value = path;
            params->p[i].len = (size_t)(seg_end - path);
            pattern = close + 1;
            path = seg_end;
            continue;
        }
        if (*pattern != *path) return 0;
        pattern++;
        path++;
    }
    return *pattern == 0 && path == end;
}

enum router_result router_match(const struct router *rt, const char *method, const char *path,
                                size_t pathlen, const struct route **out,
                                struct route_params *params, char *allow, size_t allowlen)
{
    int path_known = 0;
    size_t used = 0;
    struct route_params scratch;
    int head = strcmp(method, "HEAD") == 0;
    if (allowlen) allow[0] = 0;
    for (int i = 0; i < rt->n; i++) {
        const struct route *r = &rt->routes[i];
        if (!match(r->pattern, path, pathlen, &scratch)) continue;
        if (strcmp(r->method, method) == 0 || (head && strcmp(r->method, "GET") == 0)) {
            *out = r;
            *params = scratch;
            return ROUTER_FOUND;
        }
        path_known = 1;
        if (used < allowlen) {
            int w = snprintf(allow + used, allowlen - used, "%s%s%s", used ? ", " : "", r->method,
                             strcmp(r->method, "GET") == 0 ? ", HEAD" : "");
            if (w > 0) used += (size_t)w;
        }
    }
    return path_known ? ROUTER_BAD_METHOD : ROUTER_NOT_FOUND;
}
