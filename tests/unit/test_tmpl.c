/* test_tmpl.c: unit tests of the template engine (common/tmpl.c): values and escaping,
 * sections and inverted sections, nesting, comments, and every way a template is refused
 * (unknown names, malformed tags, unbalanced or too deep sections) with its line. */
#include "antre/tmpl.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const vars[] = {"name", "room", "x1_y"};
static const char *const flags[] = {"on", "off", "en"};
static const struct tmpl_names names = {vars, 3, flags, 3};

/* Compile SRC (must succeed), render with VALS and FLAGS, return the text (static buffer). */
static const char *render(const char *src, const char *const *vals, const int *fl)
{
    static char text[4096];
    char err[256] = "";
    struct tmpl *t = tmpl_compile(src, strlen(src), &names, err, sizeof err);
    cr_assert_not_null(t, "compile '%s': %s", src, err);
    struct tmpl_out out = {0};
    tmpl_render(t, vals, fl, &out);
    cr_assert_lt(out.len, sizeof text);
    memcpy(text, out.p ? out.p : "", out.len);
    text[out.len] = 0;
    free(out.p);
    tmpl_free(t);
    return text;
}

/* Compile SRC, which must be refused; return the error (static buffer). */
static const char *refused(const char *src)
{
    static char err[256];
    err[0] = 0;
    struct tmpl *t = tmpl_compile(src, strlen(src), &names, err, sizeof err);
    cr_assert_null(t, "'%s' was accepted", src);
    cr_assert(err[0], "no error for '%s'", src);
    return err;
}

static const char *const V[] = {"Siti", "w1", "z"};
static const int ON[] = {1, 0, 0};

Test(tmpl, text_and_values)
{
    cr_assert_str_eq(render("", V, ON), "");
    cr_assert_str_eq(render("plain text, no tags", V, ON), "plain text, no tags");
    cr_assert_str_eq(render("hi {{name}} in {{ room }}{{x1_y}}", V, ON), "hi Siti in w1z");
    cr_assert_str_eq(render("{{name}}{{name}}", V, ON), "SitiSiti");
    /* A lone brace or a closing pair outside a tag is text. */
    cr_assert_str_eq(render("a { b } c }} d", V, ON), "a { b } c }} d");
}

Test(tmpl, values_are_html_escaped_and_null_is_empty)
{
    const char *const v[] = {"<a href=\"x\">&'</a>", NULL, ""};
    cr_assert_str_eq(render("[{{name}}][{{room}}][{{x1_y}}]", v, ON),
                     "[&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;][][]");
    /* The template's own text is not escaped: it is the operator's HTML. */
    cr_assert_str_eq(render("<b>&amp;</b>", v, ON), "<b>&amp;</b>");
}

Test(tmpl, sections_and_inverted_sections)
{
    int fl[] = {1, 0, 0};
    cr_assert_str_eq(render("{{#on}}yes{{/on}}{{#off}}no{{/off}}", V, fl), "yes");
    cr_assert_str_eq(render("{{^on}}no{{/on}}{{^off}}yes{{/off}}", V, fl), "yes");
    cr_assert_str_eq(render("{{#on}}{{name}}{{/on}}|{{#off}}{{name}}{{/off}}", V, fl), "Siti|");
    fl[0] = 7; /* any nonzero value is true */
    cr_assert_str_eq(render("{{#on}}t{{/on}}{{^on}}f{{/on}}", V, fl), "t");
    /* The same flag twice, and empty sections. */
    cr_assert_str_eq(render("{{#on}}{{/on}}{{#on}}a{{/on}}{{#on}}b{{/on}}", V, fl), "ab");
}

Test(tmpl, nesting)
{
    int fl[] = {1, 0, 1};
    cr_assert_str_eq(render("{{#on}}a{{#en}}b{{^off}}c{{/off}}{{/en}}d{{/on}}", V, fl), "abcd");
    fl[2] = 0;
    cr_assert_str_eq(render("{{#on}}a{{#en}}b{{^off}}c{{/off}}{{/en}}d{{/on}}", V, fl), "ad");
    /* A false outer section skips everything inside, whatever the inner flags say. */
    cr_assert_str_eq(render("{{#off}}{{#on}}x{{/on}}{{^on}}y{{/on}}{{/off}}z", V, fl), "z");
    /* The deepest nesting allowed renders. */
    char src[1024] = "", tail[1024] = "";
    for (int i = 0; i < TMPL_MAX_DEPTH; i++) {
        strcat(src, "{{#on}}");
        strcat(tail, "{{/on}}");
    }
    strcat(src, "deep");
    strcat(src, tail);
    cr_assert_str_eq(render(src, V, ON), "deep");
}

Test(tmpl, comments_and_spaces)
{
    cr_assert_str_eq(render("a{{! a comment with {{name}}}}b", V, ON), "a}}b");
    cr_assert_str_eq(render("a{{!}}b{{ ! spaced }}c", V, ON), "abc");
    cr_assert_str_eq(render("{{  #on  }}x{{  /on }}", V, ON), "x");
}

Test(tmpl, unknown_names_are_refused_with_their_line)
{
    cr_assert_str_eq(refused("a\nb\n{{nmae}}"), "line 3: unknown value {{nmae}}");
    cr_assert(strstr(refused("{{on}}"), "unknown value {{on}} (a flag: use it as"));
    cr_assert_str_eq(refused("\n{{#name}}x{{/name}}"), "line 2: unknown flag {{#name}}");
    cr_assert_str_eq(refused("{{^nope}}"), "line 1: unknown flag {{^nope}}");
}

Test(tmpl, malformed_tags_are_refused)
{
    cr_assert_str_eq(refused("x {{name"), "line 1: {{ is never closed by }}");
    cr_assert_str_eq(refused("{{}}"), "line 1: malformed tag {{}}");
    cr_assert_str_eq(refused("{{ }}"), "line 1: malformed tag {{ }}");
    cr_assert_str_eq(refused("{{#}}"), "line 1: malformed tag {{#}}");
    cr_assert_str_eq(refused("\n\n{{Name}}"), "line 3: malformed tag {{Name}}");
    cr_assert_str_eq(refused("{{na me}}"), "line 1: malformed tag {{na me}}");
    cr_assert_str_eq(refused("{{&name}}"), "line 1: malformed tag {{&name}}");
    /* A name longer than TMPL_NAME_MAX, and bytes that are not printable, shown as '?'. */
    cr_assert(strstr(refused("{{aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}}"), "malformed tag"));
    cr_assert_str_eq(refused("{{a\x01\xff}}"), "line 1: malformed tag {{a??}}");
    /* A NUL byte inside the text is text; inside a tag it is malformed. */
    char err[128];
    struct tmpl *t = tmpl_compile("a\0b{{name}}", 11, &names, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    struct tmpl_out out = {0};
    tmpl_render(t, V, ON, &out);
    cr_assert_eq(out.len, 7);
    cr_assert(memcmp(out.p, "a\0bSiti", 7) == 0);
    free(out.p);
    tmpl_free(t);
    cr_assert_null(tmpl_compile("{{na\0me}}", 9, &names, err, sizeof err));
}

Test(tmpl, unbalanced_sections_are_refused)
{
    cr_assert_str_eq(refused("{{#on}}x\n"), "{{#on}} is never closed");
    cr_assert_str_eq(refused("x{{/on}}"), "line 1: {{/on}} closes nothing");
    cr_assert_str_eq(refused("{{#on}}\n{{#en}}{{/on}}{{/en}}"), "line 2: {{/on}} closes {{en}}");
    cr_assert_str_eq(refused("{{^off}}{{/on}}"), "line 1: {{/on}} closes {{off}}");
}

Test(tmpl, nesting_deeper_than_the_limit_is_refused)
{
    char src[1024] = "";
    for (int i = 0; i <= TMPL_MAX_DEPTH; i++) strcat(src, "{{#on}}\n");
    char want[64];
    snprintf(want, sizeof want, "line %d: sections nested deeper than %d", TMPL_MAX_DEPTH + 1,
             TMPL_MAX_DEPTH);
    cr_assert_str_eq(refused(src), want);
}

Test(tmpl, errors_fit_a_small_buffer_and_render_appends)
{
    char err[8];
    cr_assert_null(tmpl_compile("{{nope}}", 8, &names, err, sizeof err));
    cr_assert_eq(strlen(err), sizeof err - 1);
    struct tmpl *t = tmpl_compile("{{name}}", 8, &names, err, sizeof err);
    cr_assert_not_null(t);
    struct tmpl_out out = {0};
    for (int i = 0; i < 2000; i++) tmpl_render(t, V, ON, &out); /* grows past 4 KiB */
    cr_assert_eq(out.len, 8000);
    cr_assert(memcmp(out.p + 7996, "Siti", 4) == 0);
    free(out.p);
    tmpl_free(t);
    tmpl_free(NULL);
}
