/* test_router.c: unit tests of method + path matching with {parameters} (gateway/router.c).
 *
 * No connection is needed: handlers are never called here, only matched. Paths are passed with
 * an explicit length and, where it matters, without a terminating NUL, the way the request
 * parser hands them over. */
#include "../../gateway/router.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static struct router *rt;

/* Stand-in handlers: only their addresses matter. */
static void h_health(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)c, (void)r, (void)p;
}
static void h_room(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)c, (void)r, (void)p;
}
static void h_room_post(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)c, (void)r, (void)p;
}
static void h_seat(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)c, (void)r, (void)p;
}

static int add(const char *method, const char *pattern, route_fn *fn, const char *name)
{
    struct route r = {.method = method, .pattern = pattern, .fn = fn, .name = name};
    return router_add(rt, &r);
}

static void setup(void)
{
    rt = router_new();
    cr_assert_eq(add("GET", "/healthz", h_health, "healthz"), 1);
    cr_assert_eq(add("GET", "/v1/rooms/{room}", h_room, "room"), 2);
    cr_assert_eq(add("POST", "/v1/rooms/{room}", h_room_post, "room_post"), 3);
    cr_assert_eq(add("PUT", "/v1/rooms/{room}/seats/{seat}", h_seat, "seat"), 4);
    cr_assert_eq(add("POST", "/v1/register", h_room_post, "register"), 5);
    cr_assert_eq(add("GET", "/v1/list/", h_health, "list"), 6);
}

static void teardown(void) { router_free(rt); }

TestSuite(router, .init = setup, .fini = teardown);

/* Match METHOD PATH (copied into a buffer without a NUL after it). */
static enum router_result m(const char *method, const char *path, const struct route **out,
                            struct route_params *params, char *allow, size_t allowlen)
{
    static char buf[512];
    size_t len = strlen(path);
    cr_assert_lt(len, sizeof buf);
    memcpy(buf, path, len);
    memset(buf + len, '#', sizeof buf - len); /* no NUL after the path */
    *out = NULL;
    return router_match(rt, method, buf, len, out, params, allow, allowlen);
}

/* The value of parameter NAME, conn-free: a name points into the pattern just after '{' and
 * runs up to '}'. */
static const char *param(const struct route_params *p, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (int i = 0; i < p->n; i++)
        if (strncmp(p->p[i].name, name, n) == 0 && p->p[i].name[n] == '}') {
            *len = p->p[i].len;
            return p->p[i].value;
        }
    *len = 0;
    return NULL;
}

static void assert_param(const struct route_params *p, const char *name, const char *want)
{
    size_t len;
    const char *v = param(p, name, &len);
    cr_assert_not_null(v, "no parameter %s", name);
    cr_assert_eq(len, strlen(want), "%s: length %zu, want '%s'", name, len, want);
    cr_assert(memcmp(v, want, len) == 0, "%s = '%.*s', want '%s'", name, (int)len, v, want);
}

Test(router, literal)
{
    const struct route *r;
    struct route_params p;
    char allow[64];
    cr_assert_eq(m("GET", "/healthz", &r, &p, allow, sizeof allow), ROUTER_FOUND);
    cr_assert_not_null(r);
    cr_assert_eq(r->fn, h_health);
    cr_assert_str_eq(r->name, "healthz");
    cr_assert_eq(r->id, 1);
    cr_assert_eq(p.n, 0);
    cr_assert_eq(m("POST", "/v1/register", &r, &p, allow, sizeof allow), ROUTER_FOUND);
    cr_assert_str_eq(r->name, "register");
    cr_assert_eq(r->id, 5);
}

Test(router, one_param)
{
    const struct route *r;
    struct route_params p;
    char allow[64];
    cr_assert_eq(m("GET", "/v1/rooms/kelas-7a", &r, &p, allow, sizeof allow), ROUTER_FOUND);
    cr_assert_eq(r->fn, h_room);
    cr_assert_eq(p.n, 1);
    assert_param(&p, "room", "kelas-7a");
    /* the name points into the pattern, after '{', up to '}' */
    cr_assert(strncmp(p.p[0].name, "room}", 5) == 0, "name is '%s'", p.p[0].name);
    cr_assert_eq(p.p[0].name, r->pattern + strlen("/v1/rooms/{"));

    cr_assert_eq(m("POST", "/v1/rooms/x", &r, &p, allow, sizeof allow), ROUTER_FOUND);
    cr_assert_eq(r->fn, h_room_post);
    assert_param(&p, "room", "x");
}

/* Parameter values borrow from the path given, not from a copy. */
Test(router, params_borrow_the_path)
{
    const char *path = "/v1/rooms/abc?ignored";
    const struct route *r;
    struct route_params p;
    char allow[64];
    cr_assert_eq(router_match(rt, "GET", path, strlen("/v1/rooms/abc"), &r, &p, allow,
                              sizeof allow),
                 ROUTER_FOUND);
    cr_assert_eq(p.p[0].value, path + strlen("/v1/rooms/"));
    cr_assert_eq(p.p[0].len, 3);
}

Test(router, several_params)
{
    const struct route *r;
    struct route_params p;
    char allow[64];
    cr_assert_eq(m("PUT", "/v1/rooms/r-12/seats/42", &r, &p, allow, sizeof allow), ROUTER_FOUND);
    cr_assert_eq(r->fn, h_seat);
    cr_assert_eq(p.n, 2);
    assert_param(&p, "room", "r-12");
    assert_param(&p, "seat", "42");
    cr_assert(strncmp(p.p[0].name, "room}", 5) == 0);
    cr_assert(strncmp(p.p[1].name, "seat}", 5) == 0);
    /* a prefix or an extension of a name is not the name */
    size_t len;
    cr_assert_null(param(&p, "roo", &len));
    cr_assert_null(param(&p, "rooms", &len));
    cr_assert_null(param(&p, "seats", &len));
    cr_assert_null(param(&p, "", &len));
}

Test(router, max_params)
{
    struct router *r2 = router_new();
    struct route r = {.method = "GET", .pattern = "/{a}/{b}/{c}/{d}", .fn = h_room, .name = "x"};
    cr_assert_gt(router_add(r2, &r), 0);
    struct route_params p;
    const struct route *out;
    char allow[32];
    const char *path = "/1/22/333/4444";
    cr_assert_eq(router_match(r2, "GET", path, strlen(path), &out, &p, allow, sizeof allow),
                 ROUTER_FOUND);
    cr_assert_eq(p.n, 4);
    assert_param(&p, "a", "1");
    assert_param(&p, "b", "22");
    assert_param(&p, "c", "333");
    assert_param(&p, "d", "4444");
    struct route too_many = {.method = "GET",
                             .pattern = "/{a}/{b}/{c}/{d}/{e}",
                             .fn = h_room,
                             .name = "y"};
    cr_assert_eq(router_add(r2, &too_many), -1);
    router_free(r2);
}

Test(router, head_matches_get)
{
    const struct route *r;
    struct route_params p;
    char allow[64];
    cr_assert_eq(m("HEAD", "/healthz", &r, &p, allow, sizeof allow), ROUTER_FOUND);
    cr_assert_eq(r->fn, h_health);
    cr_assert_eq(m("HEAD", "/v1/rooms/z", &r, &p, allow, sizeof allow), ROUTER_FOUND);
    cr_assert_eq(r->fn, h_room, "HEAD takes the GET route, not the POST one");
    assert_param(&p, "room", "z");
    /* HEAD does not match a POST-only path */
    cr_assert_eq(m("HEAD", "/v1/register", &r, &p, allow, sizeof allow), ROUTER_BAD_METHOD);
    cr_assert_str_eq(allow, "POST");
}

Test(router, method_not_allowed_lists_allow)
{
    const struct route *r;
    struct route_params p;
    char allow[64];
    cr_assert_eq(m("DELETE", "/v1/rooms/abc", &r, &p, allow, sizeof allow), ROUTER_BAD_METHOD);
    cr_assert_str_eq(allow, "GET, HEAD, POST");
    cr_assert_eq(m("POST", "/healthz", &r, &p, allow, sizeof allow), ROUTER_BAD_METHOD);
    cr_assert_str_eq(allow, "GET, HEAD");
    cr_assert_eq(m("GET", "/v1/register", &r, &p, allow, sizeof allow), ROUTER_BAD_METHOD);
    cr_assert_str_eq(allow, "POST");
    cr_assert_eq(m("GET", "/v1/rooms/a/seats/b", &r, &p, allow, sizeof allow), ROUTER_BAD_METHOD);
    cr_assert_str_eq(allow, "PUT");
    /* methods are case-sensitive */
    cr_assert_eq(m("get", "/healthz", &r, &p, allow, sizeof allow), ROUTER_BAD_METHOD);
    cr_assert_str_eq(allow, "GET, HEAD");
}

/* A small Allow buffer is never overrun and stays a string. */
Test(router, allow_buffer_small)
{
    const struct route *r;
    struct route_params p;
    char allow[8];
    memset(allow, 'Z', sizeof allow);
    cr_assert_eq(m("DELETE", "/v1/rooms/abc", &r, &p, allow, sizeof allow), ROUTER_BAD_METHOD);
    cr_assert_lt(strlen(allow), sizeof allow);
    cr_assert_eq(m("DELETE", "/v1/rooms/abc", &r, &p, NULL, 0), ROUTER_BAD_METHOD);
}

Test(router, not_found)
{
    const struct route *r;
    struct route_params p;
    char allow[64];
    const char *paths[] = {"/",           "/health",        "/healthzz",         "/v1",
                           "/v1/rooms",   "/v1/rooms/a/b",  "/v1/rooms/a/seats", "/V1/register",
                           "/v1/registe", "/v1/register/x", "healthz",           ""};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        memset(allow, 'Z', sizeof allow);
        cr_assert_eq(m("GET", paths[i], &r, &p, allow, sizeof allow), ROUTER_NOT_FOUND, "%s",
                     paths[i]);
        cr_assert_str_eq(allow, "", "%s", paths[i]);
    }
}

Test(router, trailing_slash_matters)
{
    const struct route *r;
    struct route_params p;
    char allow[64];
    cr_assert_eq(m("GET", "/healthz/", &r, &p, allow, sizeof allow), ROUTER_NOT_FOUND);
    cr_assert_eq(m("GET", "/v1/rooms/abc/", &r, &p, allow, sizeof allow), ROUTER_NOT_FOUND);
    cr_assert_eq(m("GET", "/v1/list/", &r, &p, allow, sizeof allow), ROUTER_FOUND);
    cr_assert_str_eq(r->name, "list");
    cr_assert_eq(m("GET", "/v1/list", &r, &p, allow, sizeof allow), ROUTER_NOT_FOUND);
}

Test(router, empty_param_not_matched)
{
    const struct route *r;
    struct route_params p;
    char allow[64];
    cr_assert_eq(m("GET", "/v1/rooms/", &r, &p, allow, sizeof allow), ROUTER_NOT_FOUND);
    cr_assert_eq(m("PUT", "/v1/rooms//seats/1", &r, &p, allow, sizeof allow), ROUTER_NOT_FOUND);
    cr_assert_eq(m("PUT", "/v1/rooms/a/seats/", &r, &p, allow, sizeof allow), ROUTER_NOT_FOUND);
    cr_assert_eq(m("PUT", "/v1/rooms/a/seats//", &r, &p, allow, sizeof allow), ROUTER_NOT_FOUND);
}

/* The path length is the end: nothing after it is read, even if it would match. */
Test(router, path_length_is_respected)
{
    const struct route *r;
    struct route_params p;
    char allow[64];
    const char *path = "/healthzXYZ";
    cr_assert_eq(router_match(rt, "GET", path, 8, &r, &p, allow, sizeof allow), ROUTER_FOUND);
    cr_assert_eq(router_match(rt, "GET", path, 7, &r, &p, allow, sizeof allow), ROUTER_NOT_FOUND);
    const char *room = "/v1/rooms/abcdef";
    cr_assert_eq(router_match(rt, "GET", room, 12, &r, &p, allow, sizeof allow), ROUTER_FOUND);
    assert_param(&p, "room", "ab");
}

/* Odd bytes in a segment are a value like any other (decoding is the handler's business). */
Test(router, param_values_taken_verbatim)
{
    const struct route *r;
    struct route_params p;
    char allow[64];
    cr_assert_eq(m("GET", "/v1/rooms/a%2Fb", &r, &p, allow, sizeof allow), ROUTER_FOUND);
    assert_param(&p, "room", "a%2Fb");
    cr_assert_eq(m("GET", "/v1/rooms/{room}", &r, &p, allow, sizeof allow), ROUTER_FOUND);
    assert_param(&p, "room", "{room}");
}

Test(router, first_route_wins)
{
    struct router *r2 = router_new();
    struct route a = {.method = "GET", .pattern = "/x/{id}", .fn = h_room, .name = "param"};
    struct route b = {.method = "GET", .pattern = "/x/me", .fn = h_health, .name = "literal"};
    cr_assert_eq(router_add(r2, &a), 1);
    cr_assert_eq(router_add(r2, &b), 2);
    const struct route *out;
    struct route_params p;
    char allow[32];
    cr_assert_eq(router_match(r2, "GET", "/x/me", 5, &out, &p, allow, sizeof allow), ROUTER_FOUND);
    cr_assert_str_eq(out->name, "param");
    router_free(r2);
}

Test(router, ids_and_route_at)
{
    cr_assert_str_eq(router_route_at(rt, 0)->name, "healthz");
    cr_assert_eq(router_route_at(rt, 0)->id, 1);
    cr_assert_str_eq(router_route_at(rt, 5)->name, "list");
    cr_assert_null(router_route_at(rt, 6));
    cr_assert_null(router_route_at(rt, -1));

    struct router *admin = router_new();
    router_set_id_base(admin, 6);
    struct route mt = {.method = "GET", .pattern = "/metrics", .fn = h_health, .name = "metrics"};
    cr_assert_eq(router_add(admin, &mt), 7);
    cr_assert_eq(router_route_at(admin, 0)->id, 7);
    router_free(admin);
}

Test(router, table_full)
{
    struct router *r2 = router_new();
    struct route x = {.method = "GET", .pattern = "/x", .fn = h_health, .name = "x"};
    for (int i = 0; i < ROUTER_MAX_ROUTES; i++) cr_assert_eq(router_add(r2, &x), i + 1);
    cr_assert_eq(router_add(r2, &x), -1);
    router_free(r2);
}

/* router_add refuses malformed patterns (its header promises -1). */
Test(router, malformed_patterns_refused)
{
    struct router *r2 = router_new();
    const char *bad[] = {"healthz", "", "/a/{x", "/a/{}", "/a/x}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct route x = {.method = "GET", .pattern = bad[i], .fn = h_health, .name = "x"};
        cr_expect_eq(router_add(r2, &x), -1, "pattern '%s' accepted", bad[i]);
    }
    router_free(r2);
}

/* An empty router finds nothing and lists nothing. */
Test(router, empty_router)
{
    struct router *r2 = router_new();
    const struct route *out = NULL;
    struct route_params p;
    char allow[16] = "junk";
    cr_assert_eq(router_match(r2, "GET", "/", 1, &out, &p, allow, sizeof allow), ROUTER_NOT_FOUND);
    cr_assert_null(out);
    cr_assert_str_eq(allow, "");
    router_free(r2);
}

static int g_gate(struct conn *c, struct request *r, const struct route_params *p)
{
    (void)c, (void)r, (void)p;
    return 0;
}

/* The session gate is per router: none until the server installs one, then that one. */
Test(router, gate_is_installed_per_router)
{
    struct router *r2 = router_new();
    cr_assert_null(router_gate(rt));
    cr_assert_null(router_gate(r2));
    router_set_gate(rt, g_gate);
    cr_assert_eq(router_gate(rt), g_gate);
    cr_assert_null(router_gate(r2));
    router_set_gate(rt, NULL);
    cr_assert_null(router_gate(rt));
    router_free(r2);
}
