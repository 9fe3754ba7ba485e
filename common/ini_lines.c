/* ini_lines.c: inih fed through our own line reader (ini_lines.h): line numbers, over-long and
 * malformed lines refused one by one, and indentation stripped or read as a continuation. */
#include "antre/ini_lines.h"

#include <ini.h>
#include <stdio.h>
#include <string.h>

#define SYNTAX_ERROR "syntax error (expected [section] or name = value)"

/* inih's reader over STREAM (a struct ini_lines): one physical line into STR (NUM bytes). */
static char *read_line(char *str, int num, void *stream)
{
    struct ini_lines *l = stream;
    char *r = fgets(str, num, l->f);
    if (!r) return NULL;
    l->line++;
    size_t n = strlen(r);
    if (n && r[n - 1] != '\n' && !feof(l->f)) {
        int ch = fgetc(l->f);
        if (ch != EOF && ch != '\n') {
            char reason[160];
            snprintf(reason, sizeof reason, "line longer than %d bytes%s%s%s", num - 2,
                     l->too_long_hint ? " (" : "", l->too_long_hint ? l->too_long_hint : "",
                     l->too_long_hint ? ")" : "");
            l->refuse(l->arg, reason);
            while ((ch = fgetc(l->f)) != EOF && ch != '\n') {
            }
            strcpy(r, "#\n");
            return r;
        }
    }
    size_t lead = strspn(r, " \t");
    char first = r[lead];
    if (first == '\n' || first == '\r' || first == 0 || first == '#' || first == ';') return r;
    l->indented = lead > 0;
    if (lead && l->may_continue) return r; /* inih passes it on under the previous name */
    if (lead) memmove(r, r + lead, strlen(r + lead) + 1);
    if (first == '[') l->may_continue = 0;
    if (first == '[' ? !strchr(r, ']') : !strpbrk(r, "=:")) {
        l->refuse(l->arg, SYNTAX_ERROR);
        strcpy(r, "#\n");
    }
    return r;
}

int ini_lines_parse(struct ini_lines *l, const char *path,
                    int (*handler)(void *user, const char *section, const char *name,
                                   const char *value),
                    void *user)
{
    l->f = fopen(path, "r");
    if (!l->f) return -1;
    l->line = 0;
    int r = ini_parse_stream(read_line, l, handler, user);
    int read_error = ferror(l->f);
    fclose(l->f);
    l->f = NULL;
    if (r > 0) {
        l->line = r; /* a syntax error the reader did not foresee */
        l->refuse(l->arg, SYNTAX_ERROR);
    } else if (r < 0 || read_error) {
        l->refuse(l->arg, "cannot read the file");
    }
    return 0;
}
