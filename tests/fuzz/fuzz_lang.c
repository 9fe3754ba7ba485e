/* fuzz_lang.c: libFuzzer target for Accept-Language parsing (gateway/lang.c).
 *
 * The input is a header value, given to lang_prefers_english() in a buffer of exactly its size
 * (so a read past the value is caught by ASan under libFuzzer, and by the replay's private heap
 * copy). Checked with abort():
 *   - the answer is 0 or 1, and the same when the value is followed by more bytes in memory
 *     (the parser must stop at LEN, not at a NUL or a delimiter past it);
 *   - it agrees with reference(), a plain rewrite of the rules in lang.h written another way
 *     (a NUL-terminated copy split with strtok_r, the qvalue read by strtod after a format
 *     check), for inputs without a NUL byte. */
#include "../../gateway/lang.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
    return s;
}

/* RANGE is "*" or 1-8 letters then any number of "-" and 1-8 letters or digits. */
static int range_ok(const char *r)
{
    if (!strcmp(r, "*")) return 1;
    size_t n = strspn(r, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
    if (n < 1 || n > 8) return 0;
    r += n;
    while (*r == '-') {
        r++;
        n = strspn(r, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
        if (n < 1 || n > 8) return 0;
        r += n;
    }
    return *r == 0;
}

/* Thousandths of the qvalue Q, or -1. */
static int qvalue(const char *q)
{
    size_t n = strlen(q);
    if (n < 1 || n > 5) return -1;
    if (q[0] != '0' && q[0] != '1') return -1;
    if (n > 1 && q[1] != '.') return -1;
    for (size_t i = 2; i < n; i++)
        if (!isdigit((unsigned char)q[i]) || (q[0] == '1' && q[i] != '0')) return -1;
    return (int)(strtod(q, NULL) * 1000 + 0.5);
}

static int reference(const char *v, size_t len)
{
    char *s = malloc(len + 1);
    if (!s) abort();
    memcpy(s, v, len);
    s[len] = 0;
    int en = -1, id = -1, any = -1;
    char *save = NULL;
    for (char *el = strtok_r(s, ",", &save); el; el = strtok_r(NULL, ",", &save)) {
        char *semi = strchr(el, ';');
        int q = 1000;
        if (semi) {
            *semi = 0;
            char *p = trim(semi + 1);
            if (tolower((unsigned char)p[0]) != 'q' || p[1] != '=') continue;
            q = qvalue(p + 2);
            if (q < 0) continue;
        }
        char *r = trim(el);
        if (!range_ok(r)) continue;
        for (char *c = r; *c; c++) *c = (char)tolower((unsigned char)*c);
        int *w = NULL;
        if (!strcmp(r, "*")) w = &any;
        else if (!strcmp(r, "en") || !strncmp(r, "en-", 3)) w = &en;
        else if (!strcmp(r, "id") || !strncmp(r, "id-", 3) || !strcmp(r, "in") ||
                 !strncmp(r, "in-", 3))
            w = &id;
        if (w && q > *w) *w = q;
    }
    free(s);
    if (any < 0) any = 0;
    if (en < 0) en = any;
    if (id < 0) id = any;
    return en > id;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *v = (const char *)data;
    int got = lang_prefers_english(v, size);
    CHECK(got == 0 || got == 1);

    /* The same value with more bytes after it: ",en", digits, a NUL. */
    static const char tails[][4] = {",en", "5", "1", ";q="};
    char *longer = malloc(size + 4);
    if (!longer) abort();
    memcpy(longer, data, size);
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        memcpy(longer + size, tails[i], 4);
        CHECK(lang_prefers_english(longer, size) == got);
    }
    free(longer);

    if (!memchr(data, 0, size)) {
        int want = reference(v, size);
        if (got != want) {
            fprintf(stderr, "fuzz_lang: %.*s: lang %d, reference %d\n", (int)size, v, got, want);
            abort();
        }
    }
    return 0;
}
