/* fuzz_tmpl.c: libFuzzer target for the template engine (common/tmpl.c).
 *
 * The input's first byte chooses the flags (bit i = flag i true); the rest is a template,
 * compiled from a buffer of exactly its size (a read past it is caught by ASan under
 * libFuzzer, and by the replay's private heap copy). Checked with abort():
 *   - compile either succeeds or fails with a non-empty message that fits its buffer;
 *   - it agrees with reference(), a recursive rewrite of the rules in tmpl.h that parses and
 *     renders in one pass: the same templates are refused, and the accepted ones render to the
 *     same bytes (values hold every character that must be escaped);
 *   - no value's raw '<', '"' or '\'' reaches the output unless the template's text has one. */
#include "antre/tmpl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const vars[] = {"name", "room", "x"};
static const char *const flags[] = {"on", "off", "en"};
static const char *const values[] = {"<b>\"Siti\" & 'Budi'</b>", "", "w-1"};
#define NV 3
#define NF 3

/* ---- the reference ------------------------------------------------------------------------ */

struct ref {
    const char *s;
    size_t len;
    const int *fl;
    char *out;
    size_t olen, ocap;
};

static void emit(struct ref *r, const char *p, size_t n)
{
    if (!n) return;
    if (r->olen + n > r->ocap) {
        r->ocap = (r->olen + n) * 2 + 64;
        r->out = realloc(r->out, r->ocap);
        if (!r->out) abort();
    }
    memcpy(r->out + r->olen, p, n);
    r->olen += n;
}

static void emit_value(struct ref *r, const char *v)
{
    static const char *const esc[256] =
        {['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;", ['"'] = "&quot;", ['\''] = "&#39;"};
    for (; *v; v++) {
        const char *e = esc[(unsigned char)*v];
        if (e) emit(r, e, strlen(e));
        else emit(r, v, 1);
    }
}

static int find(const char *const *list, int n, const char *name, size_t len)
{
    for (int i = 0; i < n; i++)
        if (strlen(list[i]) == len && strncmp(list[i], name, len) == 0) return i;
    return -1;
}

static int name_ok(const char *p, size_t n)
{
    if (n < 1 || n > TMPL_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789_", p[i]) || !p[i]) return 0;
    return 1;
}

/* Parse from *POS until the end (CLOSING -1) or the {{/flag}} of flag CLOSING, emitting when
 * ON. Returns 0, or -1 when the template is malformed. */
static int section(struct ref *r, size_t *pos, int closing, int depth, int on)
{
    for (;;) {
        size_t i = *pos;
        while (i + 1 < r->len && !(r->s[i] == '{' && r->s[i + 1] == '{')) i++;
        if (i + 1 >= r->len) i = r->len; /* no further tag */
        if (on) emit(r, r->s + *pos, i - *pos);
        if (i == r->len) return closing < 0 ? 0 : -1;
        size_t j = i + 2;
        while (j + 1 < r->len && !(r->s[j] == '}' && r->s[j + 1] == '}')) j++;
        if (j + 1 >= r->len) return -1;
        *pos = j + 2;
        size_t a = i + 2, b = j;
        while (a < b && r->s[a] == ' ') a++;
        while (b > a && r->s[b - 1] == ' ') b--;
        char sigil = a < b ? r->s[a] : 0;
        if (sigil == '!') continue;
        if (sigil != '#' && sigil != '^' && sigil != '/') sigil = 0;
        else a++;
        if (!name_ok(r->s + a, b - a)) return -1;
        if (!sigil) {
            int v = find(vars, NV, r->s + a, b - a);
            if (v < 0) return -1;
            if (on) emit_value(r, values[v]);
            continue;
        }
        int f = find(flags, NF, r->s + a, b - a);
        if (f < 0) return -1;
        if (sigil == '/') return f == closing ? 0 : -1;
        if (depth + 1 > TMPL_MAX_DEPTH) return -1;
        int inner = on && (sigil == '#' ? r->fl[f] != 0 : r->fl[f] == 0);
        if (section(r, pos, f, depth + 1, inner) < 0) return -1;
    }
}

/* ---- the target --------------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int fl[NF];
    for (int i = 0; i < NF; i++) fl[i] = (data[0] >> i) & 1;
    size_t len = size - 1;
    char *text = malloc(len ? len : 1);
    if (!text) abort();
    memcpy(text, data + 1, len);

    const struct tmpl_names names = {vars, NV, flags, NF};
    char err[128];
    memset(err, 'X', sizeof err);
    struct tmpl *t = tmpl_compile(text, len, &names, err, sizeof err);

    struct ref r = {text, len, fl, NULL, 0, 0};
    size_t pos = 0;
    int ok = section(&r, &pos, -1, 0, 1) == 0;
    if (!t) {
        CHECK(memchr(err, 0, sizeof err) != NULL && err[0]);
        CHECK(!ok);
    } else {
        CHECK(ok);
        const char *const v[] = {values[0], values[1], values[2]};
        struct tmpl_out out = {0};
        tmpl_render(t, v, fl, &out);
        CHECK(out.len == r.olen);
        CHECK(out.len == 0 || memcmp(out.p, r.out, out.len) == 0);
        if (!memchr(text, '<', len) && !memchr(text, '"', len) && !memchr(text, '\'', len))
            CHECK(!out.len || (!memchr(out.p, '<', out.len) && !memchr(out.p, '"', out.len) &&
                               !memchr(out.p, '\'', out.len)));
        free(out.p);
        tmpl_free(t);
    }
    free(r.out);
    free(text);
    return 0;
}
