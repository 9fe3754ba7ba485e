/* textline.c: text from outside (a provider's reply, a downstream's reason) made safe to keep
 * and show as one line (see textline.h). */
#include "textline.h"

void textline_clean(const char *s, char *out, size_t outlen)
{
    if (!s) s = "";
    size_t o = 0;
    int space = 1; /* drop leading spaces */
    for (; *s && o + 1 < outlen; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch == 0x7f || ch == ' ') {
            if (!space) out[o++] = ' ';
            space = 1;
            continue;
        }
        out[o++] = (char)ch;
        space = 0;
    }
    if (*s) { /* cut: drop the last character when only part of it fits */
        size_t k = o;
        while (k > 0 && ((unsigned char)out[k - 1] & 0xC0) == 0x80) k--;
        unsigned char lead = k > 0 ? (unsigned char)out[k - 1] : 0;
        size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
        if (k > 0 && o - (k - 1) < need) o = k - 1;
    }
    while (o > 0 && out[o - 1] == ' ') o--;
    out[o] = 0;
}
