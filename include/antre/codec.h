/* codec.h: the one hex, base64 and decimal-digits codec of antre.
 *
 * Hex: encoding writes lower-case digits; decoding takes either case but is otherwise strict (an
 * even number of digits, nothing else). Base64url (RFC 4648 section 5, `-` and `_`) is written
 * and read without padding, strictly: a padding `=`, a length with LEN % 4 == 1 or a non-zero
 * unused bit is refused, so that every byte string has exactly one spelling (tokens rely on it).
 * Standard base64 (`+` and `/`) is only decoded, padded, as tus' Upload-Metadata and
 * Upload-Checksum carry it. Decimal numbers are read strictly too: digits only, no sign, no
 * blank, no more than fit.
 *
 * Every function writes at most the buffer size it is given and returns a length or -1; none
 * allocates. Inputs need not be NUL-terminated. */
#ifndef ANTRE_CODEC_H
#define ANTRE_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Characters of the hex of N bytes (without the NUL). */
#define CODEC_HEX_LEN(n) (2 * (size_t)(n))
/* Characters of base64url without padding for N bytes, and the bytes that N such characters
 * hold (for a valid length: N % 4 != 1). */
#define CODEC_B64URL_LEN(n) (((size_t)(n)*4 + 2) / 3)
#define CODEC_B64URL_DECODED_LEN(n) ((size_t)(n)*3 / 4)

/* Write LEN bytes of IN as 2*LEN lower-case hex digits and a NUL to OUT (OUTLEN bytes).
 * Returns 2*LEN, or -1 when OUTLEN < 2*LEN + 1 (OUT is then left untouched). */
ssize_t codec_hex_encode(const void *in, size_t len, char *out, size_t outlen);

/* Decode LEN hex digits of IN (either case) into OUT (OUTCAP bytes). Returns LEN / 2, or -1
 * when LEN is odd, a character is not a hex digit, or OUTCAP < LEN / 2 (OUT may then hold part
 * of the output when a bad digit was found; nothing is written when OUTCAP is too small). */
ssize_t codec_hex_decode(const char *in, size_t len, void *out, size_t outcap);

/* Write LEN bytes of IN as CODEC_B64URL_LEN(LEN) base64url characters (no padding) and a NUL
 * to OUT (OUTLEN bytes). Returns the number of characters, or -1 when OUTLEN is too small
 * (nothing written then). */
ssize_t codec_b64url_encode(const void *in, size_t len, char *out, size_t outlen);

/* Decode LEN base64url characters of IN (no padding, strict; see the top) into OUT (OUTCAP
 * bytes). Returns the number of bytes, or -1 for a character outside the alphabet, LEN % 4 == 1,
 * a non-zero unused bit (OUT may then hold part of the output), or OUTCAP below
 * CODEC_B64URL_DECODED_LEN(LEN) (checked before anything is written). */
ssize_t codec_b64url_decode(const char *in, size_t len, void *out, size_t outcap);

/* Decode LEN characters of standard, padded base64 (`+`, `/`, LEN a multiple of 4, one or two
 * `=` only at the very end) into OUT (OUTCAP bytes). Unused bits before the padding are
 * ignored, as RFC 4648 allows. Returns the number of bytes (0 for LEN 0), or -1 for bad input
 * or when the output does not fit OUTCAP (checked before anything is written). */
ssize_t codec_b64_decode(const char *in, size_t len, void *out, size_t outcap);

/* The LEN characters of IN as a decimal number into *OUT: 1 to 19 digits and nothing else (so
 * the value always fits). Returns 0, or -1 (OUT untouched). */
int codec_decimal_u64(const char *in, size_t len, uint64_t *out);

#endif
