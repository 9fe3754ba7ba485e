/* tmpl.h: a small part of Mustache, compiled once and rendered many times.
 *
 *   {{name}}              a value, HTML-escaped
 *   {{#flag}}...{{/flag}} the block only when FLAG is true
 *   {{^flag}}...{{/flag}} the block only when FLAG is false
 *   {{! text }}           a comment (ends at the first }})
 *
 * Spaces inside the braces are ignored. Names are [a-z0-9_]{1,32} and must be among the names
 * the caller declares (values and flags are two lists), so a typo is refused with its line when
 * the template is compiled instead of rendering as nothing. Sections nest at most
 * TMPL_MAX_DEPTH deep. Rendering never fails and sends nothing but the template's text and
 * the escaped values: it is meant for the request path (the gateway's waiting page) and for
 * the worker's emails. */
#ifndef ANTRE_TMPL_H
#define ANTRE_TMPL_H

#include <stddef.h>

#define TMPL_MAX_DEPTH 16
#define TMPL_NAME_MAX 32

/* The names a template may use: VARS[NVARS] values, FLAGS[NFLAGS] flags. Their index is the
 * index into the arrays given to tmpl_render. Borrowed: must outlive the templates. */
struct tmpl_names {
    const char *const *vars;
    int nvars;
    const char *const *flags;
    int nflags;
};

struct tmpl;

/* A growing output buffer: P (malloc'd; free it with free) holds LEN bytes, not terminated.
 * Start from {0}. */
struct tmpl_out {
    char *p;
    size_t len, cap;
};

/* Compile TEXT (LEN bytes, copied; may hold any byte) against NAMES (borrowed). Returns the
 * template (free with tmpl_free), or NULL with "line N: reason" in ERR. */
struct tmpl *tmpl_compile(const char *text, size_t len, const struct tmpl_names *names, char *err,
                          size_t errlen);

/* Free T (NULL is fine). */
void tmpl_free(struct tmpl *t);

/* Append T rendered with VARS (NVARS of the names' values, NUL-terminated; NULL renders as "")
 * and FLAGS (NFLAGS of them, nonzero = true) to OUT. Memory exhaustion aborts. */
void tmpl_render(const struct tmpl *t, const char *const *vars, const int *flags,
                 struct tmpl_out *out);

#endif
