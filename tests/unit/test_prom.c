/* test_prom.c: unit tests of the Prometheus text helpers (common/prom.c).
 *
 * The text must be exactly the exposition format: HELP and TYPE lines, samples with and without
 * labels, label values escaped (backslash, double quote, newline), HELP escaped without quotes,
 * and numbers as Prometheus parses them. */
#include "antre/prom.h"

#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The text of OUT (a NUL-terminated copy; free it). */
static char *text_of(struct evbuffer *out)
{
    size_t n = evbuffer_get_length(out);
    char *s = malloc(n + 1);
    cr_assert_not_null(s);
    evbuffer_copyout(out, s, n);
    s[n] = 0;
    return s;
}

static void expect_text(struct evbuffer *out, const char *want)
{
    char *got = text_of(out);
    cr_expect_str_eq(got, want);
    free(got);
    evbuffer_drain(out, evbuffer_get_length(out));
}

Test(prom, family_header)
{
    struct evbuffer *out = evbuffer_new();
    prom_family(out, "antre_jobs_total", PROM_COUNTER, "Jobs done.");
    expect_text(out, "# HELP antre_jobs_total Jobs done.\n# TYPE antre_jobs_total counter\n");
    prom_family(out, "g", PROM_GAUGE, "a \"quoted\" back\\slash\nand a newline");
    expect_text(out, "# HELP g a \"quoted\" back\\\\slash\\nand a newline\n# TYPE g gauge\n");
    prom_family(out, "h", PROM_HISTOGRAM, "");
    expect_text(out, "# HELP h \n# TYPE h histogram\n");
    evbuffer_free(out);
}

Test(prom, samples)
{
    struct evbuffer *out = evbuffer_new();
    prom_u64(out, "c", NULL, 0, UINT64_MAX);
    expect_text(out, "c 18446744073709551615\n");
    prom_i64(out, "g", NULL, 0, -42);
    expect_text(out, "g -42\n");
    struct prom_label two[] = {{"route", "join"}, {"status", "200"}};
    prom_u64(out, "r", two, 2, 7);
    expect_text(out, "r{route=\"join\",status=\"200\"} 7\n");
    prom_i64(out, "q", &(struct prom_label){"queue", "upload"}, 1, 0);
    expect_text(out, "q{queue=\"upload\"} 0\n");
    evbuffer_free(out);
}

Test(prom, doubles)
{
    struct evbuffer *out = evbuffer_new();
    prom_double(out, "d", NULL, 0, 0.25);
    expect_text(out, "d 0.25\n");
    prom_double(out, "d", NULL, 0, 123456.789012);
    expect_text(out, "d 123456.789012\n");
    prom_double(out, "d", NULL, 0, 3e-5);
    expect_text(out, "d 3e-05\n");
    prom_double(out, "d", NULL, 0, INFINITY);
    expect_text(out, "d +Inf\n");
    prom_double(out, "d", NULL, 0, -INFINITY);
    expect_text(out, "d -Inf\n");
    prom_double(out, "d", NULL, 0, NAN);
    expect_text(out, "d NaN\n");
    evbuffer_free(out);
}

Test(prom, label_values_are_escaped)
{
    struct evbuffer *out = evbuffer_new();
    prom_u64(out, "x", &(struct prom_label){"reason", "say \"hi\"\\\nbye"}, 1, 1);
    expect_text(out, "x{reason=\"say \\\"hi\\\"\\\\\\nbye\"} 1\n");
    prom_u64(out, "x", &(struct prom_label){"reason", ""}, 1, 1);
    expect_text(out, "x{reason=\"\"} 1\n");
    evbuffer_free(out);
}

Test(prom, escape_into_a_buffer)
{
    char buf[16];
    cr_assert_eq(prom_escape(buf, sizeof buf, "plain"), 5);
    cr_assert_str_eq(buf, "plain");
    cr_assert_eq(prom_escape(buf, sizeof buf, "a\"b\\c\nd"), 10);
    cr_assert_str_eq(buf, "a\\\"b\\\\c\\nd");
    /* exactly full (15 bytes + NUL) fits; one more does not, and the buffer stays a string */
    cr_assert_eq(prom_escape(buf, sizeof buf, "123456789012345"), 15);
    cr_assert_eq(prom_escape(buf, sizeof buf, "1234567890123456"), -1);
    cr_assert_eq(strlen(buf), 15);
    /* an escape is never cut in half */
    cr_assert_eq(prom_escape(buf, sizeof buf, "12345678901234\""), -1);
    cr_assert_str_eq(buf, "12345678901234");
    cr_assert_eq(prom_escape(buf, 0, "x"), -1);
    cr_assert_eq(prom_escape(buf, 1, ""), 0);
    cr_assert_str_eq(buf, "");
}
