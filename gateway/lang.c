/* lang.c: Accept-Language parsing (see lang.h). Weights are kept as thousandths so no
 * floating point (strtod would read past a value that is not NUL-terminated, and would accept
 * "nan", "inf" and exponents that are no qvalue). */
#include "lang.h"

enum { L_OTHER, L_EN, L_ID, L_ANY };

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int is_ows(char c) { return c == ' ' || c == '\t'; }

static int lower(char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* A qvalue at P (up to END): "0" ["." 0*3DIGIT] or "1" ["." 0*3"0"]. Returns its thousandths
 * and moves *P past it, or returns -1. */
static int parse_qvalue(const char **p, const char *end)
{
    const char *s = *p;
    if (s == end || (*s != '0' && *s != '1')) return -1;
    int whole = *s++ - '0', frac = 0, scale = 100;
    if (s < end && *s == '.') {
        s++;
        for (int i = 0; i < 3 && s < end && is_digit(*s); i++, s++) {
            frac += (*s - '0') * scale;
            scale /= 10;
        }
    }
    if (s < end && is_digit(*s)) return -1; /* a fourth decimal, or "01" */
    if (whole == 1 && frac != 0) return -1;
    *p = s;
    return whole * 1000 + frac;
}

/* One list element from S to E (no comma inside). Returns which language it names (L_*) and
 * puts its weight in *Q, or returns -1 when it is malformed. */
static int parse_element(const char *s, const char *e, int *q)
{
    while (s < e && is_ows(*s)) s++;
    while (e > s && is_ows(e[-1])) e--;
    const char *tag = s;
    if (s < e && *s == '*') {
        s++;
    } else {
        /* 1*8ALPHA *("-" 1*8alphanum) */
        int n = 0;
        while (s < e && is_alpha(*s) && n < 9) s++, n++;
        if (n == 0 || n > 8) return -1;
        while (s < e && *s == '-') {
            s++;
            n = 0;
            while (s < e && (is_alpha(*s) || is_digit(*s)) && n < 9) s++, n++;
            if (n == 0 || n > 8) return -1;
        }
    }
    size_t tl = (size_t)(s - tag);
    *q = 1000;
    while (s < e && is_ows(*s)) s++;
    if (s < e) {
        if (*s++ != ';') return -1;
        while (s < e && is_ows(*s)) s++;
        if (e - s < 2 || lower(s[0]) != 'q' || s[1] != '=') return -1;
        s += 2;
        *q = parse_qvalue(&s, e);
        if (*q < 0 || s != e) return -1;
    }
    if (tl == 1 && tag[0] == '*') return L_ANY;
    if (tl == 2 || (tl > 2 && tag[2] == '-')) {
        int a = lower(tag[0]), b = lower(tag[1]);
        if (a == 'e' && b == 'n') return L_EN;
        if (a == 'i' && (b == 'd' || b == 'n')) return L_ID;
    }
    return L_OTHER;
}

int lang_prefers_english(const char *v, size_t len)
{
    /* best[lang]: the highest weight of a range naming LANG, -1 when none does */
    int best[4] = {-1, -1, -1, -1};
    const char *end = v + len;
    while (v < end) {
        const char *comma = v;
        while (comma < end && *comma != ',') comma++;
        int q, l = parse_element(v, comma, &q);
        if (l >= 0 && q > best[l]) best[l] = q;
        v = comma < end ? comma + 1 : end;
    }
    int any = best[L_ANY] < 0 ? 0 : best[L_ANY];
    int en = best[L_EN] >= 0 ? best[L_EN] : any;
    int id = best[L_ID] >= 0 ? best[L_ID] : any;
    return en > id;
}
