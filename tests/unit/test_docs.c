/* test_docs.c: docs/api.md against the routers (gateway/routes.c).
 *
 * The server's two routers are built here exactly as server_run builds them, with
 * routes_install(), and every registered (method, pattern) must have its heading
 * "### `METHOD PATTERN`" in docs/api.md, and every such heading must be a registered route: a
 * route added without documentation, or documentation left behind by a removed route, fails.
 * The checker itself is tried on altered copies of the document (one heading dropped, one
 * invented), so a checker that cannot fail fails too. Unit tests run from the repository root. */
#include "../../gateway/routes.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../gateway/router.h"

#define API_MD "docs/api.md"
#define HEADING "### `"
#define MAX_HEADINGS 128
#define LINE_MAX_LEN 512

struct headings {
    char items[MAX_HEADINGS][LINE_MAX_LEN];
    int used[MAX_HEADINGS];
    int n;
};

static struct router *pub, *admin;

static void setup(void)
{
    pub = router_new();
    admin = router_new();
    routes_install(pub, admin);
}

static void teardown(void)
{
    router_free(pub);
    router_free(admin);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (unit tests run from the repository root)", path);
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[4096];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (!buf) buf = calloc(1, 1);
    buf[len] = 0;
    return buf;
}

/* The "METHOD PATTERN" of every line "### `METHOD PATTERN`..." in TEXT. */
static void collect(const char *text, struct headings *h)
{
    memset(h, 0, sizeof *h);
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len > strlen(HEADING) && strncmp(line, HEADING, strlen(HEADING)) == 0) {
            const char *start = line + strlen(HEADING);
            const char *close = memchr(start, '`', len - strlen(HEADING));
            cr_assert_not_null(close, "heading without its closing backquote: %.*s", (int)len,
                               line);
            size_t n = (size_t)(close - start);
            cr_assert_lt(n, LINE_MAX_LEN);
            cr_assert_lt(h->n, MAX_HEADINGS);
            memcpy(h->items[h->n], start, n);
            h->items[h->n][n] = 0;
            h->n++;
        }
        line = nl ? nl + 1 : NULL;
    }
}

/* Mismatches between the routes of RT and H, each printed; matched headings are marked. */
static int check_router(const struct router *rt, struct headings *h, const char *which)
{
    int bad = 0;
    const struct route *r;
    for (int i = 0; (r = router_route_at(rt, i)); i++) {
        char want[LINE_MAX_LEN];
        snprintf(want, sizeof want, "%s %s", r->method, r->pattern);
        int found = 0;
        for (int k = 0; k < h->n; k++)
            if (strcmp(h->items[k], want) == 0) found = 1, h->used[k] = 1;
        if (!found) {
            fprintf(stderr, "test_docs: %s route `%s` has no heading \"### `%s`\" in %s\n", which,
                    want, want, API_MD);
            bad++;
        }
    }
    return bad;
}

/* Every mismatch between the routers and the document TEXT, both ways. */
static int mismatches(const char *text)
{
    static struct headings h;
    collect(text, &h);
    int bad = check_router(pub, &h, "public") + check_router(admin, &h, "admin");
    for (int k = 0; k < h.n; k++) {
        if (h.used[k]) continue;
        fprintf(stderr, "test_docs: %s documents `%s`, which no router registers\n", API_MD,
                h.items[k]);
        bad++;
    }
    return bad;
}

TestSuite(docs, .init = setup, .fini = teardown);

Test(docs, every_route_documented_and_every_documented_route_registered)
{
    char *text = read_file(API_MD);
    int n = 0;
    while (router_route_at(pub, n)) n++;
    cr_assert_gt(n, 10, "the public router has only %d routes", n);
    cr_assert_not_null(router_route_at(admin, 0), "the admin router has no route");
    cr_assert_eq(mismatches(text), 0, "docs/api.md and gateway/routes.c disagree (see above)");
    free(text);
}

Test(docs, one_heading_per_route)
{
    char *text = read_file(API_MD);
    static struct headings h;
    collect(text, &h);
    for (int a = 0; a < h.n; a++)
        for (int b = a + 1; b < h.n; b++)
            cr_expect_neq(strcmp(h.items[a], h.items[b]), 0, "`%s` is documented twice",
                          h.items[a]);
    free(text);
}

Test(docs, a_missing_route_is_caught)
{
    char *text = read_file(API_MD);
    /* Blank out the heading of the first public route. */
    const struct route *r = router_route_at(pub, 0);
    char heading[LINE_MAX_LEN];
    snprintf(heading, sizeof heading, HEADING "%s %s`", r->method, r->pattern);
    char *at = strstr(text, heading);
    cr_assert_not_null(at, "no heading for %s %s", r->method, r->pattern);
    at[0] = 'x';
    cr_assert_gt(mismatches(text), 0, "a route without a heading went unnoticed");
    free(text);
}

Test(docs, an_unregistered_heading_is_caught)
{
    char *text = read_file(API_MD);
    int before = mismatches(text);
    size_t len = strlen(text);
    static const char extra[] = "\n### `GET /v1/not/a/route/{x}`\n";
    text = realloc(text, len + sizeof extra);
    cr_assert_not_null(text);
    memcpy(text + len, extra, sizeof extra);
    cr_assert_eq(mismatches(text), before + 1,
                 "a heading for an unregistered route went unnoticed");
    free(text);
}

Test(docs, error_catalogue_present)
{
    char *text = read_file(API_MD);
    const char *cat = strstr(text, "\n## Error catalogue\n");
    cr_assert_not_null(cat, "docs/api.md has no \"## Error catalogue\" section");
    /* Codes every answer path uses; the full list is kept by hand beside the table. */
    static const char *const codes[] = {"not_found",         "method_not_allowed", "rate_limited",
                                        "redis_unavailable", "overloaded",         "internal_error",
                                        "not_admitted",      "invalid_ticket",     "unknown_room"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char row[64];
        snprintf(row, sizeof row, "| `%s` |", codes[i]);
        cr_expect_not_null(strstr(cat, row), "the error catalogue has no row for %s", codes[i]);
    }
    free(text);
}
