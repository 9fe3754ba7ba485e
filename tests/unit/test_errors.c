/* test_errors.c: the gateway's error catalogue (gateway/errors.c), the validators' list of
 * codes (common/validate.c), and docs/api.md's "Error catalogue" against the table.
 *
 * The docs test reads docs/api.md relative to the repository root (where `make unit-test` runs
 * the tests): the section headed "## Error catalogue" must have exactly one row
 * "| `code` | status | ..." per catalogue entry, with the entry's status. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antre/validate.h"
#include "errors.h"
#include "metrics.h"

static int snake_case(const char *s)
{
    if (!s || !islower((unsigned char)s[0])) return 0;
    for (const char *p = s; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_')) return 0;
    return s[strlen(s) - 1] != '_' && !strstr(s, "__");
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = 0;
    fclose(f);
    return buf;
}

Test(errors, every_entry_is_complete)
{
    cr_assert_eq(errors_count(), (size_t)ERR__COUNT);
    for (size_t i = 0; i < errors_count(); i++) {
        const struct error_def *d = errors_at(i);
        cr_assert_not_null(d);
        cr_assert(d->code != NULL, "entry %zu has no code (a hole in the table)", i);
        cr_assert(snake_case(d->code), "code %s is not snake_case", d->code);
        cr_assert(d->status >= 400 && d->status <= 599, "%s: status %d", d->code, d->status);
        cr_assert(d->msg_id && d->msg_id[0], "%s: no Indonesian message", d->code);
        cr_assert(d->msg_en && d->msg_en[0], "%s: no English message", d->code);
        cr_assert(strcmp(d->msg_id, d->msg_en) != 0, "%s: one message twice", d->code);
        cr_assert(d->refusal == ERRORS_NO_REFUSAL ||
                      (d->refusal >= 0 && d->refusal < REFUSE__COUNT),
                  "%s: refusal %d", d->code, d->refusal);
        if (d->status == 429 || d->status == 503)
            cr_assert(d->retry_after_s > 0, "%s: %d without Retry-After", d->code, d->status);
        else cr_assert_eq(d->retry_after_s, 0, "%s: Retry-After on %d", d->code, d->status);
        for (size_t j = 0; j < i; j++)
            cr_assert(strcmp(errors_at(j)->code, d->code) != 0, "code %s twice", d->code);
    }
    cr_assert_null(errors_at(errors_count()));
}

Test(errors, find_by_code)
{
    for (size_t i = 0; i < errors_count(); i++)
        cr_assert_eq(errors_find(errors_at(i)->code), errors_at(i));
    const struct error_def *d = errors_find("redis_unavailable");
    cr_assert_not_null(d);
    cr_assert_eq(d->status, 503);
    cr_assert_eq(d->refusal, REFUSE_REDIS_DOWN);
    cr_assert_eq(errors_find("overloaded")->refusal, REFUSE_REDIS_BUDGET);
    cr_assert_eq(errors_find("unsupported_media_type")->status, 415);
    cr_assert_null(errors_find("unsupported_type"));
    cr_assert_null(errors_find("not_your_upload"));
    cr_assert_null(errors_find("upload_busy"));
    cr_assert_null(errors_find(""));
    cr_assert_null(errors_find(NULL));
}

/* Every catalogue code the request parser (gateway/request.c) may set: the connection answers
 * its refusals through errors_find. */
Test(errors, parser_codes_are_in_the_table)
{
    FILE *f = fopen("gateway/request.c", "r");
    cr_assert_not_null(f, "run from the repository root");
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "fail(r, ");
        if (!p) continue;
        int status;
        char code[64];
        if (sscanf(p, "fail(r, %d, \"%63[a-z_]\"", &status, code) != 2) continue;
        const struct error_def *d = errors_find(code);
        cr_assert_not_null(d, "parser code %s is not in the catalogue", code);
        cr_assert_eq(d->status, status, "parser answers %s with %d, the table %d", code, status,
                     d->status);
        n++;
    }
    fclose(f);
    cr_assert_gt(n, 5);
}

Test(errors, validate_codes_are_listed)
{
    size_t n = validate_code_count();
    cr_assert_gt(n, 10);
    for (size_t i = 0; i < n; i++) {
        cr_assert(snake_case(validate_code_at(i)), "%s", validate_code_at(i));
        for (size_t j = 0; j < i; j++)
            cr_assert(strcmp(validate_code_at(i), validate_code_at(j)) != 0, "%s twice",
                      validate_code_at(i));
    }
    cr_assert_null(validate_code_at(n));
    /* Every snake_case literal with an underscore in validate.c is a code it may set (the
     * field name birth_date aside): each must be listed. */
    char *src = read_all("common/validate.c");
    cr_assert_not_null(src, "run from the repository root");
    int seen = 0;
    for (char *q = strchr(src, '"'); q; q = strchr(q, '"')) {
        char *e = strchr(q + 1, '"');
        if (!e) break;
        *e = 0;
        const char *lit = q + 1;
        q = e + 1;
        if (!snake_case(lit) || !strchr(lit, '_') || !strcmp(lit, "birth_date")) continue;
        int found = 0;
        for (size_t i = 0; i < n; i++) found |= strcmp(validate_code_at(i), lit) == 0;
        cr_assert(found, "validate.c sets %s, which validate_code_at does not list", lit);
        seen++;
    }
    free(src);
    cr_assert_gt(seen, 20);
}

/* ---- docs/api.md --------------------------------------------------------------------------- */

Test(errors, docs_list_the_table)
{
    char *doc = read_all("docs/api.md");
    cr_assert_not_null(doc, "docs/api.md not found (run from the repository root)");
    char *sec = strstr(doc, "\n## Error catalogue\n");
    cr_assert_not_null(sec, "docs/api.md has no \"## Error catalogue\" section");
    sec += 1;
    char *end = strstr(sec + 3, "\n## ");
    if (end) end[1] = 0;
    int *rows = calloc(errors_count(), sizeof *rows);
    cr_assert_not_null(rows);
    for (char *line = sec; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        char code[64];
        int status;
        if (sscanf(line, "| `%63[^`]` | %d |", code, &status) == 2) {
            const struct error_def *d = errors_find(code);
            cr_assert_not_null(d, "docs/api.md lists %s, which the gateway does not answer", code);
            cr_assert_eq(d->status, status, "docs/api.md: %s is %d, not %d", code, d->status,
                         status);
            rows[d - errors_at(0)]++;
        }
        line = nl ? nl + 1 : NULL;
    }
    for (size_t i = 0; i < errors_count(); i++)
        cr_assert_eq(rows[i], 1, "docs/api.md lists %s %d times, not once", errors_at(i)->code,
                     rows[i]);
    free(rows);
    free(doc);
}
