/* codec.c: hex and base64 (see codec.h).
 *
 * Both decoders look characters up in a 256-entry table holding value + 1 (0: not in the
 * alphabet), so that a bad byte, NUL included, is one test and no branch on character ranges.
 * The base64url decoder is strict because a token is compared by its MAC, not its text: with a
 * lenient decoder, flipping an unused bit of the MAC's last character would give a second token
 * with the same valid MAC. */
#include "antre/codec.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

static const char hex_digits[] = "0123456789abcdef";
static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Value + 1 of each hex digit (either case); 0 for every other byte. */
static const uint8_t hex_table[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

/* Value + 1 of each base64 character: the 62 letters and digits both alphabets share, then
 * one table per alphabet with its own two (`-` `_` for url, `+` `/` standard), so the decoder's
 * loop is one lookup per character and no test of which alphabet it is in. */
#define B64_ROW(c, v) [c] = (v) + 1
#define B64_COMMON_ROWS                                                                            \
    B64_ROW('A', 0), B64_ROW('B', 1), B64_ROW('C', 2), B64_ROW('D', 3), B64_ROW('E', 4),           \
        B64_ROW('F', 5), B64_ROW('G', 6), B64_ROW('H', 7), B64_ROW('I', 8), B64_ROW('J', 9),       \
        B64_ROW('K', 10), B64_ROW('L', 11), B64_ROW('M', 12), B64_ROW('N', 13), B64_ROW('O', 14),  \
        B64_ROW('P', 15), B64_ROW('Q', 16), B64_ROW('R', 17), B64_ROW('S', 18), B64_ROW('T', 19),  \
        B64_ROW('U', 20), B64_ROW('V', 21), B64_ROW('W', 22), B64_ROW('X', 23), B64_ROW('Y', 24),  \
        B64_ROW('Z', 25), B64_ROW('a', 26), B64_ROW('b', 27), B64_ROW('c', 28), B64_ROW('d', 29),  \
        B64_ROW('e', 30), B64_ROW('f', 31), B64_ROW('g', 32), B64_ROW('h', 33), B64_ROW('i', 34),  \
        B64_ROW('j', 35), B64_ROW('k', 36), B64_ROW('l', 37), B64_ROW('m', 38), B64_ROW('n', 39),  \
        B64_ROW('o', 40), B64_ROW('p', 41), B64_ROW('q', 42), B64_ROW('r', 43), B64_ROW('s', 44),  \
        B64_ROW('t', 45), B64_ROW('u', 46), B64_ROW('v', 47), B64_ROW('w', 48), B64_ROW('x', 49),  \
        B64_ROW('y', 50), B64_ROW('z', 51), B64_ROW('0', 52), B64_ROW('1', 53), B64_ROW('2', 54),  \
        B64_ROW('3', 55), B64_ROW('4', 56), B64_ROW('5', 57), B64_ROW('6', 58), B64_ROW('7', 59),  \
        B64_ROW('8', 60), B64_ROW('9', 61)
static const uint8_t b64url_table[256] = {B64_COMMON_ROWS, B64_ROW('-', 62), B64_ROW('_', 63)};
static const uint8_t b64std_table[256] = {B64_COMMON_ROWS, B64_ROW('+', 62), B64_ROW('/', 63)};

ssize_t codec_hex_encode(const void *in, size_t len, char *out, size_t outlen)
{
    const uint8_t *b = in;
    if (!out || len > SSIZE_MAX / 2 || outlen < 2 * len + 1) return -1;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex_digits[b[i] >> 4];
        out[2 * i + 1] = hex_digits[b[i] & 15];
    }
    out[2 * len] = '\0';
    return (ssize_t)(2 * len);
}

ssize_t codec_hex_decode(const char *in, size_t len, void *out, size_t outcap)
{
    const unsigned char *s = (const unsigned char *)in;
    uint8_t *o = out;
    if (len % 2 || len / 2 > outcap || len / 2 > SSIZE_MAX) return -1;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hex_table[s[2 * i]] - 1, lo = hex_table[s[2 * i + 1]] - 1;
        if ((hi | lo) < 0) return -1;
        o[i] = (uint8_t)(hi << 4 | lo);
    }
    return (ssize_t)(len / 2);
}

ssize_t codec_b64url_encode(const void *in, size_t len, char *out, size_t outlen)
{
    const uint8_t *b = in;
    size_t need = CODEC_B64URL_LEN(len);
    if (!out || len > SSIZE_MAX / 2 || outlen < need + 1) return -1;
    char *p = out;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
        *p++ = b64url_alphabet[v >> 18];
        *p++ = b64url_alphabet[(v >> 12) & 63];
        *p++ = b64url_alphabet[(v >> 6) & 63];
        *p++ = b64url_alphabet[v & 63];
    }
    if (len - i >= 1) {
        uint32_t v = (uint32_t)b[i] << 16 | (len - i == 2 ? (uint32_t)b[i + 1] << 8 : 0);
        *p++ = b64url_alphabet[v >> 18];
        *p++ = b64url_alphabet[(v >> 12) & 63];
        if (len - i == 2) *p++ = b64url_alphabet[(v >> 6) & 63];
    }
    *p = '\0';
    return (ssize_t)(p - out);
}

/* Decode LEN characters of S (no padding; LEN % 4 != 1 checked by the caller) into O; -1 on a
 * character outside the alphabet whose TABLE is given or, when STRICT, a non-zero unused bit. */
static ssize_t b64_body(const unsigned char *s, size_t len, uint8_t *o, const uint8_t *table,
                        int strict)
{
    uint8_t *start = o;
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
        int a = table[s[i]] - 1, b = table[s[i + 1]] - 1, c = table[s[i + 2]] - 1,
            d = table[s[i + 3]] - 1;
        if ((a | b | c | d) < 0) return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        *o++ = (uint8_t)(v >> 16);
        *o++ = (uint8_t)(v >> 8);
        *o++ = (uint8_t)v;
    }
    size_t rest = len - i;
    if (rest >= 2) {
        int a = table[s[i]] - 1, b = table[s[i + 1]] - 1;
        int c = rest == 3 ? table[s[i + 2]] - 1 : 0;
        if ((a | b | c) < 0) return -1;
        /* Two characters carry 12 bits for one byte: the low 4 of B are unused. Three carry
         * 18 bits for two bytes: the low 2 of C are unused. */
        if (strict && ((rest == 2 && (b & 0x0f)) || (rest == 3 && (c & 0x03)))) return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
        *o++ = (uint8_t)(v >> 16);
        if (rest == 3) *o++ = (uint8_t)(v >> 8);
    }
    return (ssize_t)(o - start);
}

ssize_t codec_b64url_decode(const char *in, size_t len, void *out, size_t outcap)
{
    if (len % 4 == 1 || CODEC_B64URL_DECODED_LEN(len) > outcap || len > SSIZE_MAX) return -1;
    return b64_body((const unsigned char *)in, len, out, b64url_table, 1);
}

ssize_t codec_b64_decode(const char *in, size_t len, void *out, size_t outcap)
{
    if (len % 4 || len > SSIZE_MAX) return -1;
    size_t body = len;
    if (body && in[body - 1] == '=') body--;
    if (body && in[body - 1] == '=') body--;
    /* Padding fills the last quantum only: at most two `=`, leaving 2 or 3 characters. */
    if ((len - body) && body % 4 < 2) return -1;
    if (CODEC_B64URL_DECODED_LEN(body) > outcap) return -1;
    return b64_body((const unsigned char *)in, body, out, b64std_table, 0);
}

int codec_decimal_u64(const char *in, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 19) return -1;
    for (size_t i = 0; i < len; i++) {
        if (in[i] < '0' || in[i] > '9') return -1;
        v = v * 10 + (uint64_t)(in[i] - '0');
    }
    *out = v;
    return 0;
}
