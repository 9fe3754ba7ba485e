/* ini_lines.h: how antre reads its INI files (the configuration, antre-bench's profiles): inih
 * parses, fed through our own line reader so that every refusal names its line and none is
 * silent.
 *
 * inih alone reports only the first syntax error, splits a line longer than its buffer into two
 * lines, and takes any indented line as the continuation of the previous value. The reader here
 * counts physical lines, refuses an over-long line whole, reports every line that is neither a
 * section, a value nor a comment, and decides what indentation means: stripped (the
 * configuration: an indented directive is a directive), or a continuation of the previous value
 * while the caller says one may continue (a profile's long `points` list). A refused line reaches
 * inih as a comment, so parsing goes on and every error of a file is reported at once. */
#ifndef ANTRE_INI_LINES_H
#define ANTRE_INI_LINES_H

#include <stdio.h>

struct ini_lines {
    FILE *f;
    /* The physical line last read, from 1 (0 before the first); callers may set it to name
     * another line in an error reported after the file was read. */
    int line;
    /* The line last read started with blanks. */
    int indented;
    /* Set by the caller between lines: 1 when the next indented line continues the value just
     * given (inih then hands it on under the same name), 0 when indentation is stripped. A
     * section line sets it back to 0. */
    int may_continue;
    /* Appended to "line longer than N bytes" (e.g. how to continue a value), or NULL. */
    const char *too_long_hint;
    /* Each refusal, with L->line naming its line: REASON is a short English sentence. */
    void (*refuse)(void *arg, const char *reason);
    void *arg;
};

/* Parse the file PATH with inih, reading it through L (f and line are set here; the other
 * fields are the caller's), calling HANDLER(USER, section, name, value) for each value as
 * inih's ini_handler does. Refusals go to L->refuse: over-long lines, syntax errors, a read
 * error. Returns 0 when the file was read (refused lines included: count them in REFUSE), -1
 * when it could not be opened (errno set, nothing reported). */
int ini_lines_parse(struct ini_lines *l, const char *path,
                    int (*handler)(void *user, const char *section, const char *name,
                                   const char *value),
                    void *user);

#endif
