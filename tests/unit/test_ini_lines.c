/* test_ini_lines.c: unit tests of the INI line reader (common/ini_lines.c): every refusal at
 * its own line, indentation stripped or read as a continuation as the caller says, and a
 * section line ending a continuation. */
#include "antre/ini_lines.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "tmpdir.h"

static char tmp[TMPDIR_LEN];

static void setup(void) { tmpdir_make(tmp, "ini_lines"); }
static void teardown(void) { tmpdir_remove(tmp); }

TestSuite(ini_lines, .init = setup, .fini = teardown);

/* What a parse saw: "section.name=value@line" per value, "!line:reason" per refusal. */
struct seen {
    struct ini_lines l;
    char log[4096];
    int continue_after; /* 1: every value may be continued (as a profile's points) */
};

static void note(struct seen *s, const char *text)
{
    size_t used = strlen(s->log);
    snprintf(s->log + used, sizeof s->log - used, "%s\n", text);
}

static void refuse(void *arg, const char *reason)
{
    struct seen *s = arg;
    char t[256];
    snprintf(t, sizeof t, "!%d:%s", s->l.line, reason);
    note(s, t);
}

static int on_value(void *user, const char *section, const char *name, const char *value)
{
    struct seen *s = user;
    char t[512];
    snprintf(t, sizeof t, "%s.%s=%s@%d%s", section, name, value, s->l.line,
             s->l.indented && s->l.may_continue ? " (continued)" : "");
    note(s, t);
    s->l.may_continue = s->continue_after;
    return 1;
}

static const char *parse(struct seen *s, const char *text, int continue_after, const char *hint)
{
    memset(s, 0, sizeof *s);
    s->continue_after = continue_after;
    s->l.refuse = refuse;
    s->l.arg = s;
    s->l.too_long_hint = hint;
    const char *path = tmpdir_write(tmp, "t.ini", text, 0600);
    cr_assert_eq(ini_lines_parse(&s->l, path, on_value, s), 0);
    return s->log;
}

Test(ini_lines, indentation_is_stripped_unless_a_value_may_continue)
{
    struct seen s;
    const char *text = "[a]\nx = 1\n  y = 2\n\t# a comment\n\n[b]\nz = 3\n";
    cr_assert_str_eq(parse(&s, text, 0, NULL), "a.x=1@2\na.y=2@3\nb.z=3@7\n");
    /* the same text with continuations: the indented line is x's second line */
    cr_assert_str_eq(parse(&s, text, 1, NULL), "a.x=1@2\na.x=y = 2@3 (continued)\nb.z=3@7\n");
}

Test(ini_lines, a_section_line_ends_a_continuation)
{
    struct seen s;
    cr_assert_str_eq(parse(&s, "[a]\nx = 1\n[b]\n  y = 2\n", 1, NULL), "a.x=1@2\nb.y=2@4\n");
}

Test(ini_lines, every_bad_line_is_refused_at_its_own_line_and_the_rest_is_read)
{
    struct seen s;
    const char *log = parse(&s, "[a\nnot a directive\nx = 1\n[b]\nalso bad\ny = 2\n", 0, NULL);
    cr_assert_str_eq(log,
                     "!1:syntax error (expected [section] or name = value)\n"
                     "!2:syntax error (expected [section] or name = value)\n"
                     ".x=1@3\n" /* outside any section: its header was refused */
                     "!5:syntax error (expected [section] or name = value)\n"
                     "b.y=2@6\n",
                     "%s", log);
}

Test(ini_lines, an_over_long_line_is_refused_whole_with_the_hint)
{
    struct seen s;
    char text[1400];
    snprintf(text, sizeof text, "[a]\nx = %01200d\ny = 2\n", 7);
    const char *log = parse(&s, text, 0, "continue a value on an indented line");
    cr_assert(strstr(log, "!2:line longer than ") != NULL, "%s", log);
    cr_assert(strstr(log, "bytes (continue a value on an indented line)\n") != NULL, "%s", log);
    /* nothing of the long line reaches the handler, and the next line is read as line 3 */
    cr_assert(strstr(log, "a.x=") == NULL, "%s", log);
    cr_assert(strstr(log, "a.y=2@3\n") != NULL, "%s", log);
    log = parse(&s, text, 0, NULL);
    cr_assert(strstr(log, " bytes\n") != NULL, "%s", log);
}

Test(ini_lines, a_missing_file_is_reported_to_the_caller)
{
    struct ini_lines l;
    memset(&l, 0, sizeof l);
    char path[TMPDIR_LEN + 16];
    snprintf(path, sizeof path, "%s/none.ini", tmp);
    cr_assert_eq(ini_lines_parse(&l, path, on_value, NULL), -1);
}
