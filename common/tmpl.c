/* tmpl.c: the template engine (see tmpl.h). A template is compiled into a flat list of
 * segments (text, value, section start, section end); a section start knows where its end is,
 * so rendering is one pass that skips false sections without looking at them. */
#include "antre/tmpl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum seg_kind { SEG_TEXT, SEG_VAR, SEG_IF, SEG_UNLESS, SEG_END };

struct seg {
    enum seg_kind kind;
    int id;          /* value or flag index */
    size_t off, len; /* SEG_TEXT: the bytes in tmpl.text */
    int end;         /* SEG_IF / SEG_UNLESS: index of the matching SEG_END */
};

struct tmpl {
    char *text;
    size_t len;
    struct seg *segs;
    int nsegs, cap;
};

void tmpl_free(struct tmpl *t)
{
    if (!t) return;
    free(t->text);
    free(t->segs);
    free(t);
}

static struct seg *add_seg(struct tmpl *t, enum seg_kind kind)
{
    if (t->nsegs == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->segs = realloc(t->segs, (size_t)t->cap * sizeof *t->segs);
        if (!t->segs) abort();
    }
    struct seg *s = &t->segs[t->nsegs++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    return s;
}

static int lookup(const char *const *names, int n, const char *name, size_t len)
{
    for (int i = 0; i < n; i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0) return i;
    return -1;
}

static int line_of(const char *text, size_t off)
{
    int line = 1;
    for (size_t i = 0; i < off; i++)
        if (text[i] == '\n') line++;
    return line;
}

/* Shown in an error: at most 40 bytes of a tag, printable ASCII only. */
static void show(char *out, size_t outlen, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && i < 40 && k + 1 < outlen; i++)
        out[k++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    out[k] = 0;
}

struct tmpl *tmpl_compile(const char *src, size_t len, const struct tmpl_names *nm, char *err,
                          size_t errlen)
{
    struct tmpl *t = calloc(1, sizeof *t);
    if (!t) abort();
    t->text = malloc(len + 1);
    if (!t->text) abort();
    if (len) memcpy(t->text, src, len);
    t->text[len] = 0;
    t->len = len;
    const char *text = t->text;
    int open[TMPL_MAX_DEPTH], depth = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *tag = memmem(text + pos, len - pos, "{{", 2);
        size_t start = tag ? (size_t)(tag - text) : len;
        if (start > pos) {
            struct seg *s = add_seg(t, SEG_TEXT);
            s->off = pos;
            s->len = start - pos;
        }
        if (!tag) break;
        const char *close = memmem(text + start + 2, len - start - 2, "}}", 2);
        if (!close) {
            snprintf(err, errlen, "line %d: {{ is never closed by }}", line_of(text, start));
            goto fail;
        }
        const char *in = text + start + 2, *in_end = close;
        pos = (size_t)(close - text) + 2;
        while (in < in_end && *in == ' ') in++;
        while (in_end > in && in_end[-1] == ' ') in_end--;
        char sigil = in < in_end ? *in : 0;
        if (sigil == '!') continue;
        if (sigil == '#' || sigil == '^' || sigil == '/') in++;
        else sigil = 0;
        size_t nlen = (size_t)(in_end - in);
        for (size_t i = 0; i < nlen; i++) {
            char ch = in[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')) {
                nlen = 0;
                break;
            }
        }
        if (nlen == 0 || nlen > TMPL_NAME_MAX) {
            char raw[48];
            show(raw, sizeof raw, text + start + 2, (size_t)(close - text) - start - 2);
            snprintf(err, errlen, "line %d: malformed tag {{%s}}", line_of(text, start), raw);
            goto fail;
        }
        if (sigil == 0) {
            int id = lookup(nm->vars, nm->nvars, in, nlen);
            if (id < 0) {
                snprintf(err, errlen, "line %d: unknown value {{%.*s}}%s", line_of(text, start),
                         (int)nlen, in,
                         lookup(nm->flags, nm->nflags, in, nlen) >= 0
                             ? " (a flag: use it as {{#name}}...{{/name}})"
                             : "");
                goto fail;
            }
            add_seg(t, SEG_VAR)->id = id;
            continue;
        }
        int id = lookup(nm->flags, nm->nflags, in, nlen);
        if (id < 0) {
            snprintf(err, errlen, "line %d: unknown flag {{%c%.*s}}", line_of(text, start), sigil,
                     (int)nlen, in);
            goto fail;
        }
        if (sigil == '/') {
            if (depth == 0 || t->segs[open[depth - 1]].id != id) {
                snprintf(err, errlen, "line %d: {{/%.*s}} closes %s%s%s", line_of(text, start),
                         (int)nlen, in, depth ? "{{" : "nothing",
                         depth ? nm->flags[t->segs[open[depth - 1]].id] : "", depth ? "}}" : "");
                goto fail;
            }
            add_seg(t, SEG_END)->id = id;
            t->segs[open[--depth]].end = t->nsegs - 1;
            continue;
        }
        if (depth == TMPL_MAX_DEPTH) {
            snprintf(err, errlen, "line %d: sections nested deeper than %d", line_of(text, start),
                     TMPL_MAX_DEPTH);
            goto fail;
        }
        add_seg(t, sigil == '#' ? SEG_IF : SEG_UNLESS)->id = id;
        open[depth++] = t->nsegs - 1;
    }
    if (depth) {
        snprintf(err, errlen, "{{#%s}} is never closed", nm->flags[t->segs[open[depth - 1]].id]);
        goto fail;
    }
    return t;
fail:
    tmpl_free(t);
    return NULL;
}

static void out_add(struct tmpl_out *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void out_add_escaped(struct tmpl_out *b, const char *s)
{
    if (!s) return;
    for (const char *run = s;; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        case 0: break;
        default: continue;
        }
        out_add(b, run, (size_t)(s - run));
        if (!rep) return;
        out_add(b, rep, strlen(rep));
        run = s + 1;
    }
}

void tmpl_render(const struct tmpl *t, const char *const *vars, const int *flags,
                 struct tmpl_out *out)
{
    for (int i = 0; i < t->nsegs; i++) {
        const struct seg *s = &t->segs[i];
        switch (s->kind) {
        case SEG_TEXT: out_add(out, t->text + s->off, s->len); break;
        case SEG_VAR: out_add_escaped(out, vars[s->id]); break;
        case SEG_IF:
            if (!flags[s->id]) i = s->end;
            break;
        case SEG_UNLESS:
            if (flags[s->id]) i = s->end;
            break;
        case SEG_END: break;
        }
    }
}
