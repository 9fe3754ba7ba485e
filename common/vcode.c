/* vcode.c: one-time verification codes (see vcode.h). */
#include "antre/vcode.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

#include "antre/codec.h"

#define KEY_LABEL "antre/verification-code/v1"
#define VID_MAX 64  /* longest verification id MACed */
#define CODE_MAX 64 /* longest submitted code MACed */

int vcode_generate(int digits, char *out, size_t outlen)
{
    if (digits < VCODE_DIGITS_MIN || digits > VCODE_DIGITS_MAX || outlen < (size_t)digits + 1)
        return -1;
    unsigned char pool[32];
    size_t have = 0, used = 0;
    for (int i = 0; i < digits;) {
        if (used == have) {
            if (RAND_bytes(pool, sizeof pool) != 1) {
                OPENSSL_cleanse(out, outlen);
                OPENSSL_cleanse(pool, sizeof pool);
                return -1;
            }
            have = sizeof pool;
            used = 0;
        }
        unsigned char b = pool[used++];
        if (b >= 250) continue; /* 250 = 25 * 10: below it every digit is equally likely */
        out[i++] = (char)('0' + b % 10);
    }
    out[digits] = '\0';
    OPENSSL_cleanse(pool, sizeof pool);
    return 0;
}

void vcode_key(const uint8_t *pepper, uint8_t key[VCODE_KEY_BYTES])
{
    unsigned int n = VCODE_KEY_BYTES;
    HMAC(EVP_sha256(), pepper, 32, (const unsigned char *)KEY_LABEL, sizeof KEY_LABEL - 1, key, &n);
}

void vcode_mac(const uint8_t key[VCODE_KEY_BYTES], const char *vid, const char *code, size_t len,
               char hex[VCODE_MAC_HEX + 1])
{
    /* "vid:code"; both are bounded (an id, a code): anything longer is cut, which only a
     * malformed code can be, and vcode_check refuses those anyway. */
    char msg[VID_MAX + 1 + CODE_MAX];
    size_t vl = strnlen(vid, VID_MAX), cl = len < CODE_MAX ? len : CODE_MAX;
    memcpy(msg, vid, vl);
    msg[vl] = ':';
    memcpy(msg + vl + 1, code, cl);
    unsigned char mac[32];
    unsigned int n = sizeof mac;
    if (!HMAC(EVP_sha256(), key, VCODE_KEY_BYTES, (const unsigned char *)msg, vl + 1 + cl, mac, &n))
        memset(mac, 0, sizeof mac); /* cannot happen with a working OpenSSL; matches nothing */
    codec_hex_encode(mac, sizeof mac, hex, VCODE_MAC_HEX + 1);
    OPENSSL_cleanse(msg, sizeof msg);
    OPENSSL_cleanse(mac, sizeof mac);
}

int vcode_check(const uint8_t key[VCODE_KEY_BYTES], const char *vid, const char *stored,
                size_t stored_len, int digits, const char *code, size_t len)
{
    static const char dummy[VCODE_MAC_HEX + 1] =
        "0000000000000000000000000000000000000000000000000000000000000000";
    int well_formed = len == (size_t)digits && len <= CODE_MAX;
    for (size_t i = 0; i < len; i++) well_formed &= code[i] >= '0' && code[i] <= '9';
    if (!stored || stored_len != VCODE_MAC_HEX) {
        stored = dummy;
        well_formed = 0;
    }
    char got[VCODE_MAC_HEX + 1];
    vcode_mac(key, vid, code, len, got);
    int same = CRYPTO_memcmp(got, stored, VCODE_MAC_HEX) == 0;
    OPENSSL_cleanse(got, sizeof got);
    return same & well_formed;
}
