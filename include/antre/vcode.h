/* vcode.h: one-time verification codes (issue 9), shared by the gateway (which checks them)
 * and the worker (which makes and sends them).
 *
 * A code is VCODE_DIGITS_MIN..VCODE_DIGITS_MAX decimal digits from RAND_bytes with rejection
 * sampling (a byte of 250 or more is drawn again, so every digit is uniform). It is never stored:
 * only its MAC is, bound to the verification id, so a MAC copied to another verification does not
 * confirm it:
 *
 *     key = HMAC-SHA256(pepper, "antre/verification-code/v1")
 *     mac = hex(HMAC-SHA256(key, verification_id ":" code))
 *
 * The pepper is the key file's (keyfile.h), which the gateway and the worker both load; it never
 * changes during a wave, so a code sent before a signing-key rotation still confirms after it. */
#ifndef ANTRE_VCODE_H
#define ANTRE_VCODE_H

#include <stddef.h>
#include <stdint.h>

#define VCODE_DIGITS_MIN 4
#define VCODE_DIGITS_MAX 10
#define VCODE_KEY_BYTES 32
#define VCODE_MAC_HEX 64 /* hex digits of a MAC (plus a NUL: 65 bytes) */

/* A fresh code of DIGITS digits into OUT (DIGITS + 1 bytes at least, NUL-terminated). 0, or -1
 * when DIGITS is out of bounds, OUT too small or RAND_bytes failed (nothing usable in OUT). */
int vcode_generate(int digits, char *out, size_t outlen);

/* The code MAC key from the key file's PEPPER (KEYFILE_KEY_BYTES). */
void vcode_key(const uint8_t *pepper, uint8_t key[VCODE_KEY_BYTES]);

/* The MAC of CODE (LEN bytes) for verification VID, as 64 lower-case hex digits and a NUL. */
void vcode_mac(const uint8_t key[VCODE_KEY_BYTES], const char *vid, const char *code, size_t len,
               char hex[VCODE_MAC_HEX + 1]);

/* 1 when CODE (LEN bytes) is the code whose MAC for VID is STORED (STORED_LEN hex digits, as
 * vcode_mac writes them), else 0. The comparison takes the same time wherever the MACs differ
 * (CRYPTO_memcmp); a CODE that is not all digits, or of another length than DIGITS, is compared
 * all the same (against a MAC it cannot match), so its answer takes as long. STORED NULL (no
 * such verification) is compared against a fixed dummy MAC, also in the same time. */
int vcode_check(const uint8_t key[VCODE_KEY_BYTES], const char *vid, const char *stored,
                size_t stored_len, int digits, const char *code, size_t len);

#endif
